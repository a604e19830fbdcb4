//! `type: opentelemetry`: an OTLP/HTTP logs receiver (`POST /v1/logs`, protobuf or JSON,
//! optionally gzip), so applications, collectors and other agents can send to Weir.
//!
//! A request is answered 200 only once its events are inside the pipeline; a full pipeline
//! answers 429 with `Retry-After`, which OTLP exporters retry (see [`listen::Receiver`]).
//!
//! The mapping is the `opentelemetry` output's, reversed: `body` -> `message`, attributes
//! -> fields, the Kubernetes resource attributes -> `namespace`, `pod`, `pod_uid`,
//! `container` (other resource attributes keep their OTLP names), `severity_text` (or the
//! name of `severity_number`) -> `level`, `time_unix_nano` (else
//! `observed_time_unix_nano`) -> the event time, `trace_id` / `span_id` as hex.

use std::path::Path;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as Any};
use prost::Message;
use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::encode::write_json_str;
use weir_core::frame::{Framed, Record, Stream};
use weir_core::model::{Buf, KeyTable, Span};
use weir_core::pipeline::Processor;
use weir_core::units::ByteSize;

use super::listen::{self, Reply};
use super::{Input, Reading, Run, RunContext};
use crate::config::error::{ConfigError, Pos};
use crate::net::tls::TlsConfig;

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
    fn check(&self) -> Result<listen::Checked, (Pos, String)> {
        listen::check(
            "opentelemetry input",
            &self.address,
            &self.max_connections,
            &self.max_body_bytes,
            &self.tls,
        )
    }
}

impl Input for OpentelemetryInputConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check()
            .map(|_| ())
            .map_err(|(pos, msg)| ConfigError::at(file, pos, msg))
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        let (limits, tls) = self.check().map_err(|(pos, msg)| ConfigError::at(file, pos, msg))?;
        Ok(Reading::Run(Box::new(OtlpReceiver(listen::Receiver {
            address: self.address.value.clone(),
            limits,
            tls,
            what: format!("opentelemetry input {}", self.address.value),
            receives: "OTLP/HTTP logs on {scheme}://{address}/v1/logs",
        }))))
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        super::json_decoder(keys, "opentelemetry input")
    }
}

/// The running receiver.
#[derive(Debug)]
struct OtlpReceiver(listen::Receiver);

impl Run for OtlpReceiver {
    fn run(self: Box<Self>, ctx: RunContext<'_>) {
        self.0.run(ctx, Arc::new(decode));
    }
}

/// A request's events, and the 200 to answer once they are in the pipeline.
fn decode(req: &listen::Request) -> Result<(Framed, Reply), Reply> {
    if req.path != "/v1/logs" {
        return Err(Reply::text(404, "OTLP logs are received on /v1/logs\n"));
    }
    let json = match req.content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => false,
        "application/json" => true,
        other => {
            return Err(Reply::text(
                415,
                format!("Content-Type {other:?}: send application/x-protobuf or application/json\n"),
            ));
        }
    };
    let decoded = if json {
        serde_json::from_slice::<ExportLogsServiceRequest>(&req.body).map_err(|e| e.to_string())
    } else {
        ExportLogsServiceRequest::decode(req.body.as_slice()).map_err(|e| e.to_string())
    };
    let request = decoded.map_err(|e| Reply::text(400, format!("not an ExportLogsServiceRequest: {e}\n")))?;
    // An empty ExportLogsServiceResponse: no bytes in protobuf, `{}` in JSON.
    let ok = Reply {
        status: 200,
        content_type: if json {
            "application/json"
        } else {
            "application/x-protobuf"
        },
        body: if json { b"{}".to_vec() } else { Vec::new() },
        retry_after: None,
    };
    Ok((framed(&request), ok))
}

/// One record per log record: its JSON object (decoded into fields by the input's
/// decoder) and its time. The object is written straight from the protobuf values: the
/// resource's members once per `ResourceLogs`, then the record's attributes, `level`,
/// `trace_id`, `span_id` and `message`. A name written twice keeps its last value (as the
/// JSON decoder reads it): an attribute wins over the resource, `message` over both.
fn framed(request: &ExportLogsServiceRequest) -> Framed {
    let mut framed = Framed::default();
    let mut resource = Vec::new();
    for resource_logs in &request.resource_logs {
        resource.clear();
        for kv in resource_logs.resource.iter().flat_map(|r| &r.attributes) {
            let name = RESOURCE_FIELDS
                .iter()
                .find(|(otlp, _)| *otlp == kv.key)
                .map_or(kv.key.as_str(), |(_, field)| field);
            member(&mut resource, name, kv.value.as_ref());
        }
        for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
            let start = framed.data.len();
            let out = &mut framed.data;
            out.push(b'{');
            out.extend_from_slice(&resource);
            for kv in &record.attributes {
                member(out, &kv.key, kv.value.as_ref());
            }
            let level = match record.severity_text.as_str() {
                "" => severity_name(record.severity_number),
                text => Some(text),
            };
            if let Some(level) = level {
                write_json_str(out, b"level");
                out.push(b':');
                write_json_str(out, level.as_bytes());
                out.push(b',');
            }
            for (name, id) in [("trace_id", &record.trace_id), ("span_id", &record.span_id)] {
                if !id.is_empty() {
                    write_json_str(out, name.as_bytes());
                    out.extend_from_slice(b":\"");
                    for b in id.iter() {
                        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
                    }
                    out.extend_from_slice(b"\",");
                }
            }
            write_json_str(out, b"message");
            out.push(b':');
            write_any(out, record.body.as_ref());
            out.push(b'}');
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

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `"name":value,`.
fn member(out: &mut Vec<u8>, name: &str, value: Option<&AnyValue>) {
    write_json_str(out, name.as_bytes());
    out.push(b':');
    write_any(out, value);
    out.push(b',');
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

/// An OTLP `AnyValue` as JSON (none is `null`; bytes as base64; a double that is not
/// finite as `null`).
fn write_any(out: &mut Vec<u8>, v: Option<&AnyValue>) {
    use base64::Engine as _;
    match v.and_then(|v| v.value.as_ref()) {
        None => out.extend_from_slice(b"null"),
        Some(Any::StringValue(s)) => write_json_str(out, s.as_bytes()),
        Some(Any::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // serde_json writes numbers in place (itoa, ryu); a double that is not finite is null.
        Some(Any::IntValue(i)) => serde_json::to_writer(&mut *out, i).expect("writing to a Vec"),
        Some(Any::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => serde_json::to_writer(&mut *out, &n).expect("writing to a Vec"),
            None => out.extend_from_slice(b"null"),
        },
        Some(Any::ArrayValue(a)) => {
            out.push(b'[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_any(out, Some(v));
            }
            out.push(b']');
        }
        Some(Any::KvlistValue(kvs)) => {
            out.push(b'{');
            for kv in &kvs.values {
                member(out, &kv.key, kv.value.as_ref());
            }
            if out.last() == Some(&b',') {
                out.pop();
            }
            out.push(b'}');
        }
        Some(Any::BytesValue(b)) => {
            write_json_str(out, base64::engine::general_purpose::STANDARD.encode(b).as_bytes());
        }
        Some(other) => write_json_str(out, format!("{other:?}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};
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
                            attributes: vec![
                                kv("n", Any::IntValue(3)),
                                kv("service.name", Any::StringValue("the record's".into())),
                                kv("ratio", Any::DoubleValue(0.25)),
                                kv("nan", Any::DoubleValue(f64::NAN)),
                                kv("raw", Any::BytesValue(vec![0, 255])),
                                kv(
                                    "nested",
                                    Any::KvlistValue(KeyValueList {
                                        values: vec![
                                            kv(
                                                "list",
                                                Any::ArrayValue(ArrayValue {
                                                    values: vec![
                                                        AnyValue {
                                                            value: Some(Any::BoolValue(true)),
                                                        },
                                                        AnyValue {
                                                            value: Some(Any::StringValue("q\"uote".into())),
                                                        },
                                                    ],
                                                }),
                                            ),
                                            kv("empty", Any::KvlistValue(KeyValueList { values: vec![] })),
                                        ],
                                    }),
                                ),
                            ],
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
        use serde_json::Value as Json;
        let event = |i: usize| -> Json {
            let r = &framed.records[i];
            serde_json::from_slice(&framed.data[r.message.start()..][..r.message.len()]).unwrap()
        };
        assert_eq!(framed.records.len(), 2);
        assert_eq!(
            event(0),
            serde_json::json!({"pod": "web-1", "service.name": "the record's", "n": 3, "level": "ERROR",
                "ratio": 0.25, "nan": null, "raw": "AP8=",
                "nested": {"list": [true, "q\"uote"], "empty": {}},
                "trace_id": "ab".repeat(16), "message": "boom"})
        );
        assert_eq!(framed.records[0].timestamp, Some(1_000));
        assert_eq!(event(1)["level"], "Warning");
        assert_eq!(event(1)["message"], Json::Null);
        assert_eq!(framed.records[1].timestamp, Some(2_000), "observed time when no time");
    }
}
