//! Every network output against the shared checks of `support/output.rs`: acknowledgements
//! across a SIGKILL, and backpressure with bounded memory. An output adds a `Destination`
//! for its real server here and calls both checks.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::http_server::{Action, Server};
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
