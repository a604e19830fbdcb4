//! The `opentelemetry` output against an independent receiver: a Python server that decodes
//! Weir's requests with the `opentelemetry-proto` definitions from PyPI (installed by
//! scripts/test under target/test-tools/python). Protobuf with gzip and OTLP JSON both
//! arrive with the right body, attributes, resource, severity and times.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use support::agent::weir_run;
use support::python::PyServer;

const LINES: usize = 500;

fn python_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/python")
}

/// The receiver of `support/otlp_receiver.py`, stopped when dropped.
struct Receiver {
    server: PyServer,
    record: PathBuf,
}

impl Receiver {
    /// `None` (the test is skipped, or fails under `CI=true`) without the Python packages.
    fn start(test: &str, dir: &Path) -> Option<Receiver> {
        if !python_path().join("opentelemetry/proto").exists() {
            support::skip(
                test,
                &format!(
                    "no opentelemetry-proto Python package at {} (run scripts/install-otel-python.sh)",
                    python_path().display()
                ),
            );
            return None;
        }
        let record = dir.join("received.jsonl");
        let server = PyServer::start("otlp_receiver.py", &[record.as_os_str()], Some(&python_path()));
        Some(Receiver { server, record })
    }

    /// Every request it decoded, as `MessageToDict` gave it.
    fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// A string `AnyValue` of an attribute list.
fn attr<'a>(list: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    list.as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// Sends `LINES` JSON log lines through `weir run` with `encoding` and checks each record.
fn round_trip(test: &str, encoding: &str, compression: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(receiver) = Receiver::start(test, dir.path()) else {
        return;
    };
    let log = dir.path().join("app.log");
    let levels = ["debug", "INFO", "warn", "error"];
    let text: String = (0..LINES)
        .map(|i| {
            format!(
                "{{\"message\":\"request {i}\",\"level\":\"{}\",\"timestamp\":\"2026-12-06T10:00:{:02}.25Z\",\"user\":\"u{i}\",\"bytes\":{i},\"ok\":true}}\n",
                levels[i % 4],
                i % 60
            )
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             processors:\n  - type: parse_json\n    field: message\n\
             \x20 - type: add_fields\n    fields: {{ namespace: shop, pod: web-1, container: nginx }}\n\
             outputs:\n  - type: opentelemetry\n    endpoint: http://127.0.0.1:{}/v1/logs\n\
             \x20   encoding: {encoding}\n    compression: {compression}\n\
             \x20   batch: {{ max_bytes: 16KiB, timeout: 50ms }}\n",
            log.display(),
            receiver.server.port
        ),
    )
    .unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut child = weir_run(&pipeline)
        .env("WEIR_DATA_DIR", dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "weir run did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let requests = receiver.requests();
    assert!(requests.len() > 1, "batches of 16 KiB make several requests");
    let mut seen = vec![false; LINES];
    for request in &requests {
        assert!(
            request.get("error").is_none(),
            "the receiver could not decode: {request}"
        );
        for resource_logs in request["resource_logs"].as_array().unwrap() {
            let resource = &resource_logs["resource"]["attributes"];
            assert_eq!(attr(resource, "k8s.namespace.name").unwrap()["string_value"], "shop");
            assert_eq!(attr(resource, "k8s.pod.name").unwrap()["string_value"], "web-1");
            assert_eq!(attr(resource, "k8s.container.name").unwrap()["string_value"], "nginx");
            let scope_logs = &resource_logs["scope_logs"][0];
            assert_eq!(scope_logs["scope"]["name"], "weir");
            for record in scope_logs["log_records"].as_array().unwrap() {
                let body = record["body"]["string_value"].as_str().unwrap();
                let i: usize = body.strip_prefix("request ").unwrap().parse().unwrap();
                assert!(!seen[i], "record {i} twice");
                seen[i] = true;
                let (text, number) = [
                    ("debug", "SEVERITY_NUMBER_DEBUG"),
                    ("INFO", "SEVERITY_NUMBER_INFO"),
                    ("warn", "SEVERITY_NUMBER_WARN"),
                    ("error", "SEVERITY_NUMBER_ERROR"),
                ][i % 4];
                assert_eq!(record["severity_text"], text);
                assert_eq!(record["severity_number"], number);
                let expected = 1_796_551_200_250_000_000u64 + (i as u64 % 60) * 1_000_000_000;
                assert_eq!(record["time_unix_nano"], expected.to_string(), "record {i}");
                let observed: u128 = record["observed_time_unix_nano"].as_str().unwrap().parse().unwrap();
                assert!(observed >= before, "observed when sent");
                let attributes = &record["attributes"];
                assert_eq!(attr(attributes, "user").unwrap()["string_value"], format!("u{i}"));
                assert_eq!(attr(attributes, "bytes").unwrap()["int_value"], i.to_string());
                assert_eq!(attr(attributes, "ok").unwrap()["bool_value"], true);
                for gone in ["message", "level", "timestamp", "namespace", "pod"] {
                    assert!(attr(attributes, gone).is_none(), "{gone} is not an attribute");
                }
            }
        }
    }
    assert!(seen.iter().all(|s| *s), "every line arrived");
}

#[test]
fn protobuf_with_gzip_is_decoded_by_the_opentelemetry_proto_package() {
    round_trip(
        "protobuf_with_gzip_is_decoded_by_the_opentelemetry_proto_package",
        "protobuf",
        "gzip",
    );
}

#[test]
fn otlp_json_is_parsed_strictly_by_the_opentelemetry_proto_package() {
    round_trip(
        "otlp_json_is_parsed_strictly_by_the_opentelemetry_proto_package",
        "json",
        "none",
    );
}
