//! The admin endpoint: `GET /health`, `GET /metrics` (Prometheus text), `GET
//! /api/components` (every component's counters as JSON, what `weir top` reads) and `GET
//! /tap` (a sample of the events leaving a component, what `weir tap` reads; see [`tap`])
//! on a local address, off unless the pipeline sets `admin: { address: 127.0.0.1:PORT }`.
//!
//! It runs on one thread of its own (tiny_http, blocking), and each tap streams from a
//! thread of its own; what it answers is rendered by the runtime from the same counters the
//! end-of-run summary reads.

pub mod tap;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
        tracing::info!(%address, "admin endpoint: /health, /metrics, /api/components, /tap");
        Ok(Admin { server })
    }

    /// Answers requests until `finished` is set: `/tap` from `taps`, every other path with
    /// `handler(path)`. Then ends every tap's stream.
    pub fn serve(&self, finished: &AtomicBool, taps: &Arc<tap::Taps>, handler: impl Fn(&str) -> Reply) {
        let bound: Option<SocketAddr> = match self.server.server_addr() {
            tiny_http::ListenAddr::IP(a) => Some(a),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        while !finished.load(Ordering::Relaxed) {
            let request = match self.server.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("admin endpoint: {e}");
                    continue;
                }
            };
            let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
            let (path, query) = (path.to_string(), query.to_string());
            if path == "/tap" && *request.method() == tiny_http::Method::Get {
                tap::answer(request, &query, taps, bound);
                continue;
            }
            let (status, content_type, body) = if *request.method() == tiny_http::Method::Get {
                handler(&path)
            } else {
                (405, "text/plain", "only GET\n".to_string())
            };
            let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
            let response = tiny_http::Response::from_string(crate::secrets::redact(&body))
                .with_status_code(status)
                .with_header(header);
            if let Err(e) = request.respond(response) {
                tracing::debug!("admin endpoint: cannot answer: {e}");
            }
        }
        taps.close();
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

/// Metrics a component keeps by label values (per Kafka topic, per partition), beside its
/// fixed counters; `/metrics` renders them with a `component` label added. Updated once per
/// batch or per statistics report, not per event.
#[derive(Debug, Default)]
pub struct Labeled {
    families: Mutex<BTreeMap<&'static str, LabeledFamily>>,
}

/// A family of [`Labeled`]: its type, help, and value per label set.
#[derive(Debug)]
struct LabeledFamily {
    kind: &'static str,
    help: &'static str,
    values: BTreeMap<Vec<(&'static str, String)>, f64>,
}

impl Labeled {
    fn update(
        &self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.entry(name).or_insert_with(|| LabeledFamily {
            kind,
            help,
            values: BTreeMap::new(),
        });
        let key = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        f(family.values.entry(key).or_insert(0.0));
    }

    /// Adds `delta` to a counter.
    pub fn add(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], delta: f64) {
        self.update(name, "counter", help, labels, |v| *v += delta);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], value: f64) {
        self.update(name, "gauge", help, labels, |v| *v = value);
    }

    /// The sum of a family's values over its label sets, if the component has the family.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        families.get(name).map(|f| f.values.values().sum())
    }

    /// Renders the families of every component (`(component, labeled)`), each family once.
    pub fn render(all: &[(String, &Labeled)], m: &mut Metrics) {
        let locked: Vec<_> = all
            .iter()
            .map(|(c, l)| (c, l.families.lock().unwrap_or_else(|e| e.into_inner())))
            .collect();
        let mut names: Vec<&'static str> = locked.iter().flat_map(|(_, f)| f.keys().copied()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let mut started = false;
            for (component, families) in &locked {
                let Some(family) = families.get(name) else { continue };
                if !started {
                    m.family(name, family.kind, family.help);
                    started = true;
                }
                for (labels, value) in &family.values {
                    let mut all: Vec<(&str, &str)> = vec![("component", component.as_str())];
                    all.extend(labels.iter().map(|(k, v)| (*k, v.as_str())));
                    m.sample(name, &all, *value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labeled_families_are_rendered_once_across_components() {
        let (a, b) = (Labeled::default(), Labeled::default());
        a.add("weir_kafka_messages_total", "Messages.", &[("topic", "x")], 2.0);
        a.add("weir_kafka_messages_total", "Messages.", &[("topic", "x")], 3.0);
        b.add("weir_kafka_messages_total", "Messages.", &[("topic", "y")], 1.0);
        b.set("weir_kafka_queue_depth", "Queued.", &[], 7.0);
        let mut m = Metrics::default();
        Labeled::render(
            &[("outputs[0].kafka".into(), &a), ("outputs[1].kafka".into(), &b)],
            &mut m,
        );
        let text = m.finish();
        assert_eq!(
            text.matches("# TYPE weir_kafka_messages_total counter").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("weir_kafka_messages_total{component=\"outputs[0].kafka\",topic=\"x\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("weir_kafka_messages_total{component=\"outputs[1].kafka\",topic=\"y\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("weir_kafka_queue_depth{component=\"outputs[1].kafka\"} 7"),
            "{text}"
        );
    }

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
