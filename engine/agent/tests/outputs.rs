//! Every network output against the shared checks of `support/output.rs`: acknowledgements
//! across a SIGKILL, and backpressure with bounded memory. An output adds a `Destination`
//! for its real server here and calls both checks: `http` and `opentelemetry` against a
//! local HTTP server, `kafka` against a real Kafka-protocol broker behind a proxy that cuts
//! the connections.

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

/// The `opentelemetry` output against the same server: the accepted protobuf requests are
/// decoded back into `{"message": body}` lines.
struct Otlp(Http);

impl Destination for Otlp {
    fn output(&self) -> String {
        format!(
            "type: opentelemetry\n    endpoint: {}\n    compression: gzip\n\
             \x20   batch: {{ max_bytes: 256KiB, timeout: 50ms }}\n\
             \x20   retry: {{ initial_backoff: 10ms, max_backoff: 100ms }}\n",
            self.0.server.uri("/v1/logs")
        )
    }

    fn hold(&self, held: bool) {
        self.0.hold(held);
    }

    fn accepted(&self) -> Vec<String> {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        use prost::Message;
        let mut lines = Vec::new();
        for seen in self.0.server.seen().into_iter().filter(|s| s.action == Action::Ok) {
            let request = ExportLogsServiceRequest::decode(seen.body.as_slice()).expect("an OTLP request");
            for resource in &request.resource_logs {
                for record in resource.scope_logs.iter().flat_map(|s| &s.log_records) {
                    let Some(Value::StringValue(body)) = record.body.as_ref().and_then(|b| b.value.as_ref()) else {
                        panic!("a record without a string body: {record:?}");
                    };
                    lines.push(serde_json::json!({ "message": body }).to_string());
                }
            }
        }
        lines
    }
}

#[test]
fn opentelemetry_output_acknowledges_only_what_the_server_accepted() {
    acknowledgements(&Otlp(Http::start()));
}

#[test]
fn opentelemetry_output_slows_reading_while_the_server_refuses() {
    backpressure(&Otlp(Http::start()));
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
