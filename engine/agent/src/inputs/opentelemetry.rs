//! `type: opentelemetry`: an OTLP/HTTP logs receiver (`POST /v1/logs`, protobuf or JSON,
//! optionally gzip), so applications, collectors and other agents can send to Weir.
//!
//! A request is answered 200 only once its events are inside the pipeline (handed to the
//! workers). When the pipeline has no room for it within [`WAIT_FOR_ROOM`], or the queue
//! of decoded requests (two) is full, the request gets 429 with `Retry-After: 1`, which
//! OTLP exporters retry, and nothing of it is kept: memory does not grow and a retried
//! request is not a duplicate. A stopping agent answers 503. Bodies over `max_body_bytes`
//! get 413.
//!
//! The mapping is the `opentelemetry` output's, reversed: `body` -> `message`, attributes
//! -> fields, the Kubernetes resource attributes -> `namespace`, `pod`, `pod_uid`,
//! `container` (other resource attributes keep their OTLP names), `severity_text` (or the
//! name of `severity_number`) -> `level`, `time_unix_nano` (else
//! `observed_time_unix_nano`) -> the event time, `trace_id` / `span_id` as hex.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use serde_saphyr::Spanned;
use tokio::sync::oneshot;
use weir_core::frame::{Framed, Record, Stream};
use weir_core::model::{Buf, KeyTable, Span};
use weir_core::pipeline::Processor;
use weir_core::units::ByteSize;

use super::listen::{self, Limits, Reply};
use super::{ChunkPayload, Input, Offered, Reading, Run, RunContext, SourceChunk};
use crate::config::error::{ConfigError, Pos};
use crate::net::tls::TlsConfig;

/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default `max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 << 20;
/// Requests decoded and waiting for the pipeline; one more gets 429.
const QUEUE: usize = 2;
/// How long a request may wait for room in the pipeline before it gets 429.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);

/// OTLP resource attributes that become the Kubernetes fields Weir's inputs use.
const RESOURCE_FIELDS: [(&str, &str); 4] = [
    ("k8s.namespace.name", "namespace"),
    ("k8s.pod.name", "pod"),
    ("k8s.pod.uid", "pod_uid"),
    ("k8s.container.name", "container"),
];

/// `type: opentelemetry` (input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpentelemetryInputConfig {
    /// `ip:port` to listen on, e.g. `0.0.0.0:4318`.
    pub address: Spanned<String>,
    /// Connections open at once (default 256); more are closed at once and counted.
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// The largest request body, compressed or not (default 8MiB); larger gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<Spanned<ByteSize>>,
    /// TLS: `crt_file` and `key_file` (and `ca_file` to require client certificates).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl OpentelemetryInputConfig {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self
                .max_connections
                .as_ref()
                .map_or(DEFAULT_MAX_CONNECTIONS, |m| m.value),
            max_body_bytes: self
                .max_body_bytes
                .as_ref()
                .map_or(DEFAULT_MAX_BODY_BYTES, |m| m.value.0)
                .try_into()
                .unwrap_or(usize::MAX),
        }
    }
}

impl Input for OpentelemetryInputConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        let err = |pos, msg: String| ConfigError::at(file, pos, format!("opentelemetry input: {msg}"));
        self.address.value.parse::<SocketAddr>().map_err(|_| {
            err(
                Pos::of(&self.address),
                format!("`address` {:?} is not ip:port (e.g. 0.0.0.0:4318)", self.address.value),
            )
        })?;
        let limits = self.limits();
        if limits.max_connections == 0 {
            let at = self.max_connections.as_ref().map(Pos::of).unwrap_or_default();
            return Err(err(at, "`max_connections` must be more than 0".into()));
        }
        if limits.max_body_bytes == 0 {
            let at = self.max_body_bytes.as_ref().map(Pos::of).unwrap_or_default();
            return Err(err(at, "`max_body_bytes` must be more than 0".into()));
        }
        if let Some(tls) = &self.tls {
            tls.server().map_err(|(pos, msg)| err(pos, msg))?;
        }
        Ok(())
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        self.validate(Pos::default(), file)?;
        let tls = match &self.tls {
            Some(tls) => Some(
                tls.server()
                    .map_err(|(pos, msg)| ConfigError::at(file, pos, format!("opentelemetry input: {msg}")))?,
            ),
            None => None,
        };
        Ok(Reading::Run(Box::new(OtlpReceiver {
            address: self.address.value.clone(),
            limits: self.limits(),
            tls,
        })))
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        super::json_decoder(keys, "opentelemetry input")
    }
}

/// A decoded request on its way to the pipeline, when it may wait until, and where to say
/// whether it got in.
type Queued = (Framed, Instant, oneshot::Sender<Offered>);

/// The running receiver.
#[derive(Debug)]
struct OtlpReceiver {
    address: String,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Run for OtlpReceiver {
    fn run(self: Box<Self>, ctx: RunContext<'_>) {
        let (tx, rx) = crossbeam_channel::bounded::<Queued>(QUEUE);
        let handler: listen::Handler = Arc::new(move |req| {
            let tx = tx.clone();
            Box::pin(async move { receive(req, &tx).await })
        });
        let what = format!("opentelemetry input {}", self.address);
        let listening = match listen::serve(
            &self.address,
            self.limits,
            self.tls.clone(),
            what.clone(),
            ctx.stats.clone(),
            handler,
        ) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{what}: cannot listen: {e}");
                ctx.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "{what}: receiving OTLP/HTTP logs on {scheme}://{}/v1/logs",
            listening.address
        );
        hand_over(&rx, ctx);
        drop(listening);
        // Anything still queued did not get in: its sender hears 503 and retries.
        while let Ok((_, _, reply)) = rx.try_recv() {
            let _ = reply.send(Offered::Stopped);
        }
    }
}

/// Hands each decoded request to the pipeline in order, until the run stops.
fn hand_over(rx: &Receiver<Queued>, ctx: RunContext<'_>) {
    let source = ctx.next_source.fetch_add(1, Ordering::Relaxed);
    let mut seq = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let (framed, deadline, reply) = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(queued) => queued,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let bytes = framed.data.len() as u64;
        let chunk = SourceChunk {
            payload: ChunkPayload::Framed(framed),
            source,
            seq,
            fields: None,
            ack: None,
        };
        let offered = (ctx.offer)(chunk, deadline);
        let _ = reply.send(offered);
        match offered {
            Offered::Taken => {
                seq += 1;
                ctx.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Offered::Full => {}
            Offered::Stopped => return,
        }
    }
}

/// Answers one request: decoded, queued for the pipeline, 200 once it is in.
async fn receive(req: listen::Request, tx: &Sender<Queued>) -> Reply {
    if req.path != "/v1/logs" {
        return Reply::text(404, "OTLP logs are received on /v1/logs\n");
    }
    let json = match req.content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => false,
        "application/json" => true,
        other => {
            return Reply::text(
                415,
                format!("Content-Type {other:?}: send application/x-protobuf or application/json\n"),
            );
        }
    };
    let decoded = if json {
        serde_json::from_slice::<ExportLogsServiceRequest>(&req.body).map_err(|e| e.to_string())
    } else {
        ExportLogsServiceRequest::decode(req.body.as_slice()).map_err(|e| e.to_string())
    };
    let request = match decoded {
        Ok(r) => r,
        Err(e) => return Reply::text(400, format!("not an ExportLogsServiceRequest: {e}\n")),
    };
    let framed = framed(&request);
    if !framed.records.is_empty() {
        let (reply_tx, reply_rx) = oneshot::channel();
        match tx.try_send((framed, Instant::now() + WAIT_FOR_ROOM, reply_tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return full(),
            Err(TrySendError::Disconnected(_)) => return stopping(),
        }
        match reply_rx.await {
            Ok(Offered::Taken) => {}
            Ok(Offered::Full) => return full(),
            Ok(Offered::Stopped) | Err(_) => return stopping(),
        }
    }
    // An empty ExportLogsServiceResponse: no bytes in protobuf, `{}` in JSON.
    Reply {
        status: 200,
        content_type: if json {
            "application/json"
        } else {
            "application/x-protobuf"
        },
        body: if json { b"{}".to_vec() } else { Vec::new() },
        retry_after: None,
    }
}

fn full() -> Reply {
    Reply {
        retry_after: Some(1),
        ..Reply::text(429, "the pipeline is full; retry later\n")
    }
}

fn stopping() -> Reply {
    Reply {
        retry_after: Some(5),
        ..Reply::text(503, "the agent is stopping; retry later\n")
    }
}

/// One record per log record: its JSON object (decoded into fields by the input's
/// decoder) and its time.
fn framed(request: &ExportLogsServiceRequest) -> Framed {
    let mut framed = Framed::default();
    for resource_logs in &request.resource_logs {
        let mut resource = Map::new();
        for kv in resource_logs.resource.iter().flat_map(|r| &r.attributes) {
            let name = RESOURCE_FIELDS
                .iter()
                .find(|(otlp, _)| *otlp == kv.key)
                .map_or(kv.key.as_str(), |(_, field)| field);
            resource.insert(name.to_string(), value(kv));
        }
        for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
            let mut event = resource.clone();
            for kv in &record.attributes {
                event.insert(kv.key.clone(), value(kv));
            }
            let level = match record.severity_text.as_str() {
                "" => severity_name(record.severity_number),
                text => Some(text),
            };
            if let Some(level) = level {
                event.insert("level".into(), Json::String(level.into()));
            }
            for (name, id) in [("trace_id", &record.trace_id), ("span_id", &record.span_id)] {
                if !id.is_empty() {
                    event.insert(name.into(), Json::String(hex(id)));
                }
            }
            event.insert("message".into(), record.body.as_ref().map_or(Json::Null, any));
            let start = framed.data.len();
            serde_json::to_writer(&mut framed.data, &event).expect("JSON values serialize");
            let time = [record.time_unix_nano, record.observed_time_unix_nano]
                .into_iter()
                .find(|t| *t > 0)
                .and_then(|t| i64::try_from(t).ok());
            framed.records.push(Record {
                message: Span::new(Buf::Chunk, start, framed.data.len() - start),
                stream: Stream::None,
                timestamp: time,
                cut: false,
                error: None,
                fields: None,
            });
        }
    }
    framed
}

/// The level name of an OTLP `SeverityNumber` (1-24); `None` for 0 (unspecified).
fn severity_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(kv: &KeyValue) -> Json {
    kv.value.as_ref().map_or(Json::Null, any)
}

/// An OTLP `AnyValue` as JSON; bytes as base64.
fn any(v: &AnyValue) -> Json {
    use base64::Engine as _;
    match &v.value {
        None => Json::Null,
        Some(Any::StringValue(s)) => Json::String(s.clone()),
        Some(Any::BoolValue(b)) => Json::Bool(*b),
        Some(Any::IntValue(i)) => Json::from(*i),
        Some(Any::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Some(Any::ArrayValue(a)) => Json::Array(a.values.iter().map(any).collect()),
        Some(Any::KvlistValue(kvs)) => Json::Object(kvs.values.iter().map(|kv| (kv.key.clone(), value(kv))).collect()),
        Some(Any::BytesValue(b)) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(other) => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(key: &str, v: Any) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn log_records_become_json_events_with_their_time() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("k8s.pod.name", Any::StringValue("web-1".into())),
                        kv("service.name", Any::StringValue("shop".into())),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 1_000,
                            severity_number: 17,
                            body: Some(AnyValue {
                                value: Some(Any::StringValue("boom".into())),
                            }),
                            attributes: vec![kv("n", Any::IntValue(3))],
                            trace_id: vec![0xab; 16],
                            ..Default::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 2_000,
                            severity_text: "Warning".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let framed = framed(&request);
        let event = |i: usize| -> Json {
            let r = &framed.records[i];
            serde_json::from_slice(&framed.data[r.message.start() as usize..][..r.message.len() as usize]).unwrap()
        };
        assert_eq!(framed.records.len(), 2);
        assert_eq!(
            event(0),
            serde_json::json!({"pod": "web-1", "service.name": "shop", "n": 3, "level": "ERROR",
                "trace_id": "ab".repeat(16), "message": "boom"})
        );
        assert_eq!(framed.records[0].timestamp, Some(1_000));
        assert_eq!(event(1)["level"], "Warning");
        assert_eq!(event(1)["message"], Json::Null);
        assert_eq!(framed.records[1].timestamp, Some(2_000), "observed time when no time");
    }
}
