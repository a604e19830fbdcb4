//! `type: opentelemetry`: events as OTLP/HTTP logs (`ExportLogsServiceRequest`), protobuf
//! (default) or JSON, to a collector's `/v1/logs`.
//!
//! It is the `http` output with another body: batching, gzip, retries with backoff and
//! `Retry-After`, TLS, `auth` and acknowledgements are the http output's
//! ([`super::http`]); this file is the mapping of an event to a `LogRecord`:
//!
//! | OTLP                          | from the event                                              |
//! |-------------------------------|-------------------------------------------------------------|
//! | `body`                        | `message` (a string; another JSON type as its `AnyValue`)   |
//! | `attributes`                  | every other field, JSON types kept (objects as `kvlistValue`) |
//! | `resource.attributes`         | `namespace` -> `k8s.namespace.name`, `pod` -> `k8s.pod.name`, `pod_uid` -> `k8s.pod.uid`, `container` -> `k8s.container.name` |
//! | `severity_text`               | the `severity_field` (default `level`), as written          |
//! | `severity_number`             | from that text: trace 1, debug 5, info 9, warn 13, error 17, fatal 21 (and their usual spellings) |
//! | `time_unix_nano`              | `timestamp` (RFC 3339), else 0 (unknown)                    |
//! | `observed_time_unix_nano`     | when the output built the request                           |
//! | `scope`                       | `weir` and its version                                      |
//!
//! Events with different Kubernetes metadata go into different `ResourceLogs` of the same
//! request. A line that is not a JSON object (it cannot come from Weir's own encoder) is
//! sent whole as the body.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value as Any,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use weir_core::units::Dur;

use super::buffer::BufferConfig;
use super::http::{Body, HttpBatchConfig, HttpCompression, HttpOutputConfig, HttpRetryConfig};
use super::{Format, Output, OutputStats, Sink};
use crate::config::error::{ConfigError, Pos};
use crate::net::auth::HttpAuthConfig;
use crate::net::tls::TlsConfig;

/// Event fields that become resource attributes, and their OTLP names.
const RESOURCE_FIELDS: [(&str, &str); 4] = [
    ("namespace", "k8s.namespace.name"),
    ("pod", "k8s.pod.name"),
    ("pod_uid", "k8s.pod.uid"),
    ("container", "k8s.container.name"),
];

/// How the request body is encoded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpEncoding {
    /// `application/x-protobuf` (the OTLP/HTTP default).
    #[default]
    Protobuf,
    /// `application/json`, OTLP's JSON mapping.
    Json,
}

/// `type: opentelemetry`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpentelemetryOutputConfig {
    /// A name, for the pipeline's `dead_letter`, metrics and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `buffer:`: where batches wait for the destination (default: in memory).
    #[serde(default)]
    pub buffer: Option<BufferConfig>,
    /// The OTLP/HTTP logs URL, e.g. `https://collector:4318/v1/logs`.
    pub endpoint: Spanned<String>,
    /// `protobuf` (default) or `json`.
    #[serde(default)]
    pub encoding: OtlpEncoding,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: HttpCompression,
    /// The field whose value is the severity (default `level`).
    #[serde(default)]
    pub severity_field: Option<String>,
    /// TLS for an `https://` endpoint.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Basic or bearer authentication.
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Request size and wait, as the http output's.
    #[serde(default)]
    pub batch: HttpBatchConfig,
    /// Limit on one request (default 10s).
    #[serde(default)]
    pub request_timeout: Option<Spanned<Dur>>,
    /// Backoff between retries.
    #[serde(default)]
    pub retry: HttpRetryConfig,
}

impl OpentelemetryOutputConfig {
    /// The http output this one is: same client, batching and retries.
    fn http(&self) -> HttpOutputConfig {
        HttpOutputConfig {
            name: self.name.clone(),
            buffer: None,
            uri: self.endpoint.clone(),
            tls: self.tls.clone(),
            auth: self.auth.clone(),
            api_key: None,
            encoding: Default::default(),
            index: None,
            compression: self.compression,
            headers: self.headers.clone(),
            batch: self.batch.clone(),
            request_timeout: self.request_timeout.clone(),
            retry: self.retry.clone(),
            kind: "opentelemetry output",
        }
    }
}

impl Output for OpentelemetryOutputConfig {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn buffer(&self) -> Option<&BufferConfig> {
        self.buffer.as_ref()
    }

    fn format(&self) -> Format {
        Format::Json
    }

    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError> {
        // The http output's messages call the address `uri`; here it is `endpoint`.
        self.http().validate(at, file).map_err(|mut e| {
            e.message = e.message.replace("`uri`", "`endpoint`");
            e
        })
    }

    fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>> {
        let body = OtlpBody {
            encoding: self.encoding,
            severity_field: self.severity_field.clone().unwrap_or_else(|| "level".into()),
            buf: Vec::new(),
        };
        Ok(Box::new(self.http().open_with(stats, abort, Box::new(body))?))
    }

    fn secrets(&self) -> Vec<&str> {
        let mut found = Vec::new();
        found.extend(self.auth.iter().flat_map(HttpAuthConfig::secrets));
        for (name, value) in self.headers.iter().flat_map(|h| h.value.iter()) {
            if name.eq_ignore_ascii_case("authorization") {
                found.push(value);
            }
        }
        found
    }
}

/// Builds `ExportLogsServiceRequest` bodies from JSON lines.
#[derive(Debug)]
struct OtlpBody {
    encoding: OtlpEncoding,
    severity_field: String,
    buf: Vec<u8>,
}

impl Body for OtlpBody {
    fn encode<'a>(&'a mut self, lines: &'a [u8]) -> &'a [u8] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let request = request(lines, &self.severity_field, now);
        self.buf.clear();
        match self.encoding {
            OtlpEncoding::Protobuf => request.encode(&mut self.buf).expect("a Vec grows to hold any message"),
            OtlpEncoding::Json => serde_json::to_writer(&mut self.buf, &request).expect("OTLP types serialize"),
        }
        &self.buf
    }

    fn content_type(&self) -> &'static str {
        match self.encoding {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }

    fn trim(&mut self, keep: usize) {
        super::http::trim(&mut self.buf, keep);
    }
}

/// The request for `lines` (one JSON object each), observed at `now` (Unix nanoseconds).
fn request(lines: &[u8], severity_field: &str, now: u64) -> ExportLogsServiceRequest {
    // One ResourceLogs per distinct set of resource attributes, in order of appearance.
    let mut groups: Vec<(Vec<KeyValue>, Vec<LogRecord>)> = Vec::new();
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (resource, record) = record(line, severity_field, now);
        match groups.iter_mut().find(|(r, _)| *r == resource) {
            Some((_, records)) => records.push(record),
            None => groups.push((resource, vec![record])),
        }
    }
    let scope = InstrumentationScope {
        name: "weir".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(attributes, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope.clone()),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// One event: its resource attributes and its record.
fn record(line: &[u8], severity_field: &str, now: u64) -> (Vec<KeyValue>, LogRecord) {
    let mut record = LogRecord {
        observed_time_unix_nano: now,
        ..Default::default()
    };
    let fields = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(fields)) => fields,
        _ => {
            record.body = Some(string(String::from_utf8_lossy(line).into_owned()));
            return (Vec::new(), record);
        }
    };
    let mut resource = Vec::new();
    for (key, value) in fields {
        if let Some((_, name)) = RESOURCE_FIELDS.iter().find(|(field, _)| *field == key) {
            resource.push(key_value(name.to_string(), value));
        } else if key == "message" {
            record.body = Some(any(value));
        } else if key == "timestamp"
            && let Some(nanos) = value.as_str().and_then(unix_nanos)
        {
            record.time_unix_nano = nanos;
        } else if key == severity_field && value.is_string() {
            let text = value.as_str().unwrap_or_default();
            record.severity_number = severity_number(text);
            record.severity_text = text.to_string();
        } else {
            record.attributes.push(key_value(key, value));
        }
    }
    (resource, record)
}

/// RFC 3339 to Unix nanoseconds; `None` when it is not one, or before 1970.
fn unix_nanos(text: &str) -> Option<u64> {
    let at: jiff::Timestamp = text.parse().ok()?;
    u64::try_from(at.as_nanosecond()).ok()
}

/// OTLP's `SeverityNumber` for a level name (case-insensitive); 0 (unspecified) when
/// unknown.
fn severity_number(level: &str) -> i32 {
    match level.to_ascii_lowercase().as_str() {
        "trace" | "finest" | "finer" => 1,
        "debug" | "fine" | "dbg" => 5,
        "info" | "information" | "informational" | "notice" | "inf" => 9,
        "warn" | "warning" | "wrn" => 13,
        "error" | "err" | "severe" => 17,
        "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" => 21,
        _ => 0,
    }
}

fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(Any::StringValue(s)),
    }
}

fn key_value(key: String, value: Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(any(value)),
        ..Default::default()
    }
}

/// A JSON value as an OTLP `AnyValue`; null is the empty value.
fn any(value: Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(Any::BoolValue(b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Any::IntValue(i),
            None => Any::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(s) => Some(Any::StringValue(s)),
        Value::Array(items) => Some(Any::ArrayValue(ArrayValue {
            values: items.into_iter().map(any).collect(),
        })),
        Value::Object(members) => Some(Any::KvlistValue(KeyValueList {
            values: members.into_iter().map(|(k, v)| key_value(k, v)).collect(),
        })),
    };
    AnyValue { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a Any> {
        kvs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
    }

    #[test]
    fn an_event_maps_to_body_attributes_resource_severity_and_times() {
        let lines = concat!(
            r#"{"message":"GET /","level":"WARN","timestamp":"2026-12-06T10:00:00.5Z","status":503,"#,
            r#""ok":false,"tags":["a",1],"http":{"m":"GET"},"namespace":"shop","pod":"web-1","pod_uid":"u1","container":"nginx"}"#,
            "\n",
            r#"{"message":"other pod","pod":"web-2","namespace":"shop","pod_uid":"u2","container":"nginx"}"#,
            "\n",
            r#"{"message":"same pod again","namespace":"shop","pod":"web-1","pod_uid":"u1","container":"nginx"}"#,
            "\nnot json\n"
        );
        let req = request(lines.as_bytes(), "level", 42);
        assert_eq!(req.resource_logs.len(), 3, "web-1, web-2, and no resource");
        let web1 = &req.resource_logs[0];
        let resource = &web1.resource.as_ref().unwrap().attributes;
        assert_eq!(attr(resource, "k8s.pod.name"), Some(&Any::StringValue("web-1".into())));
        assert_eq!(
            attr(resource, "k8s.namespace.name"),
            Some(&Any::StringValue("shop".into()))
        );
        assert_eq!(attr(resource, "k8s.pod.uid"), Some(&Any::StringValue("u1".into())));
        assert_eq!(
            attr(resource, "k8s.container.name"),
            Some(&Any::StringValue("nginx".into()))
        );
        let records = &web1.scope_logs[0].log_records;
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(r.body.as_ref().unwrap().value, Some(Any::StringValue("GET /".into())));
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
        assert_eq!(r.time_unix_nano, 1_796_551_200_500_000_000);
        assert_eq!(r.observed_time_unix_nano, 42);
        assert_eq!(attr(&r.attributes, "status"), Some(&Any::IntValue(503)));
        assert_eq!(attr(&r.attributes, "ok"), Some(&Any::BoolValue(false)));
        assert!(matches!(attr(&r.attributes, "tags"), Some(Any::ArrayValue(a)) if a.values.len() == 2));
        assert!(matches!(attr(&r.attributes, "http"), Some(Any::KvlistValue(kv)) if kv.values[0].key == "m"));
        for gone in ["message", "level", "timestamp", "pod", "namespace"] {
            assert!(attr(&r.attributes, gone).is_none(), "{gone} is not an attribute");
        }
        let raw = &req.resource_logs[2].scope_logs[0].log_records[0];
        assert_eq!(
            raw.body.as_ref().unwrap().value,
            Some(Any::StringValue("not json".into()))
        );
        assert_eq!(req.resource_logs[0].scope_logs[0].scope.as_ref().unwrap().name, "weir");
    }

    #[test]
    fn severity_names() {
        for (text, n) in [
            ("trace", 1),
            ("DEBUG", 5),
            ("Info", 9),
            ("warning", 13),
            ("ERR", 17),
            ("fatal", 21),
            ("x", 0),
        ] {
            assert_eq!(severity_number(text), n, "{text}");
        }
    }
}
