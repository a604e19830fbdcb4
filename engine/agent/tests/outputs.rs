//! Every network output against the shared checks of `support/output.rs`: acknowledgements
//! across a SIGKILL, and backpressure with bounded memory. An output adds a `Destination`
//! for its real server here and calls both checks: `http` against a local HTTP server,
//! `kafka` against a real Kafka-protocol broker behind a proxy that cuts the connections.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::http_server::{Action, Server};
use support::kafka::Broker;
use support::output::{Destination, acknowledgements, backpressure};

/// The `http` output against the local test server; held, it answers 503.
struct Http {
    server: Server,
    held: Arc<AtomicBool>,
}

impl Http {
    fn start() -> Http {
        let held = Arc::new(AtomicBool::new(false));
        let h = held.clone();
        let server = Server::start(move |_| {
            if h.load(Ordering::SeqCst) {
                Action::Status(503, None)
            } else {
                Action::Ok
            }
        });
        Http { server, held }
    }
}

impl Destination for Http {
    fn output(&self) -> String {
        format!(
            "type: http\n    uri: {}\n    batch: {{ max_bytes: 256KiB, timeout: 50ms }}\n\
             \x20   retry: {{ initial_backoff: 10ms, max_backoff: 100ms }}\n",
            self.server.uri("/ingest")
        )
    }

    fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    fn accepted(&self) -> Vec<String> {
        self.server.accepted_lines()
    }
}

#[test]
fn http_output_acknowledges_only_what_the_server_accepted() {
    acknowledgements(&Http::start());
}

#[test]
fn http_output_slows_reading_while_the_server_refuses() {
    backpressure(&Http::start());
}

/// The `kafka` output against a real broker; held, the proxy in front of it cuts every
/// connection.
struct Kafka {
    broker: Broker,
    topic: &'static str,
}

impl Kafka {
    fn start(test: &str) -> Option<Kafka> {
        let broker = Broker::start(test)?;
        let topic = "logs";
        broker.create_topic(topic, 3);
        Some(Kafka { broker, topic })
    }
}

impl Destination for Kafka {
    fn output(&self) -> String {
        format!(
            "type: kafka\n    bootstrap_servers: {}\n    topic: {}\n    compression: lz4\n",
            self.broker.bootstrap(),
            self.topic
        )
    }

    fn hold(&self, held: bool) {
        self.broker.proxy.cut(held);
    }

    fn accepted(&self) -> Vec<String> {
        self.broker
            .read_topic(self.topic)
            .into_iter()
            .map(|(_, m)| String::from_utf8(m).unwrap())
            .collect()
    }
}

#[test]
fn kafka_output_acknowledges_only_what_the_broker_has() {
    if let Some(kafka) = Kafka::start("kafka_output_acknowledges_only_what_the_broker_has") {
        acknowledgements(&kafka);
    }
}

#[test]
fn kafka_output_slows_reading_while_the_broker_is_cut_off() {
    if let Some(kafka) = Kafka::start("kafka_output_slows_reading_while_the_broker_is_cut_off") {
        backpressure(&kafka);
    }
}
