//! The admin endpoint: `GET /health` and `GET /metrics` (Prometheus text) on a local
//! address, off unless the pipeline sets `admin: { address: 127.0.0.1:PORT }`.
//!
//! It runs on one thread of its own (tiny_http, blocking); what it answers is rendered by
//! the runtime from the same counters the end-of-run summary reads.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A listening admin endpoint.
pub struct Admin {
    server: tiny_http::Server,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("address", &self.server.server_addr())
            .finish()
    }
}

/// An answer: status, content type, body.
pub type Reply = (u16, &'static str, String);

impl Admin {
    /// Binds `address` (`host:port`).
    pub fn start(address: &str) -> Result<Admin, String> {
        let server = tiny_http::Server::http(address).map_err(|e| format!("cannot listen on `{address}`: {e}"))?;
        tracing::info!(%address, "admin endpoint: /health, /metrics");
        Ok(Admin { server })
    }

    /// Answers requests with `handler(path)` until `finished` is set.
    pub fn serve(&self, finished: &AtomicBool, handler: impl Fn(&str) -> Reply) {
        while !finished.load(Ordering::Relaxed) {
            let request = match self.server.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("admin endpoint: {e}");
                    continue;
                }
            };
            let path = request.url().split('?').next().unwrap_or("").to_string();
            let (status, content_type, body) = if *request.method() == tiny_http::Method::Get {
                handler(&path)
            } else {
                (405, "text/plain", "only GET\n".to_string())
            };
            let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(header);
            if let Err(e) = request.respond(response) {
                tracing::debug!("admin endpoint: cannot answer: {e}");
            }
        }
    }
}

/// Prometheus text exposition, one family at a time.
#[derive(Debug, Default)]
pub struct Metrics {
    out: String,
}

impl Metrics {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family, with `labels` as (name, value) pairs.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_escapes_labels() {
        let mut m = Metrics::default();
        m.family("weir_x_total", "counter", "Things.")
            .sample("weir_x_total", &[("path", "a\"b\\c")], 3.0);
        assert_eq!(
            m.finish(),
            "# HELP weir_x_total Things.\n# TYPE weir_x_total counter\nweir_x_total{path=\"a\\\"b\\\\c\"} 3\n"
        );
    }
}
