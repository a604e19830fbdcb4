//! The `http` output against a local test server that fails on a script (500, 429 with
//! `Retry-After`, dropped connections, 400) and records what it accepted: no event is
//! lost, a flush returns only after delivery, rejections are counted and not retried,
//! the shutdown flag ends retries, memory stays bounded, and `weir run` delivers every
//! line of a file through a flaky server.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;

use support::http_server::{Action, Server, bulk_docs};
use weir::outputs::http::{HttpOutputConfig, HttpSink};
use weir::outputs::{OutputStats, Sink};

/// A sink for `yaml` (an http output config without `type`).
fn sink(yaml: &str) -> (HttpSink, Arc<OutputStats>, Arc<AtomicBool>) {
    let cfg: HttpOutputConfig = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let stats = Arc::new(OutputStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sink = cfg.open(&stats, &stop).unwrap();
    (sink, stats, stop)
}

/// `n` JSON lines numbered from `from`, as one write's bytes.
fn batch(from: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..from + n {
        writeln!(out, r#"{{"message":"line {i:06}","pad":"{}"}}"#, "x".repeat(i % 37)).unwrap();
    }
    out
}

fn numbers(lines: &[String]) -> BTreeSet<usize> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap()["line ".len()..].parse().unwrap()
        })
        .collect()
}

/// Sets `stop` after `after`.
fn stop_after(stop: &Arc<AtomicBool>, after: Duration) -> JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        stop.store(true, Ordering::SeqCst);
    })
}

#[test]
fn flaky_server_then_recovery_delivers_every_line_and_flush_waits_for_it() {
    // Failures of every kind at the start and again in the middle.
    let server = Server::start(|n| match n {
        0 => Action::Status(500, None),
        1 => Action::Drop,
        2 => Action::Status(429, Some(1)),
        3 => Action::Status(503, None),
        4 => Action::Drop,
        5 => Action::Status(408, None),
        20 => Action::Status(502, None),
        21 => Action::Drop,
        22 => Action::Status(429, None),
        _ => Action::Ok,
    });
    let (mut sink, stats, _stop) = sink(&format!(
        "uri: {}\nbatch: {{ max_bytes: 4KiB }}\nretry: {{ initial_backoff: 10ms, max_backoff: 100ms }}\n",
        server.uri("/ingest")
    ));
    let mut written = 0;
    for _ in 0..40 {
        sink.write(&batch(written, 50), 50).unwrap();
        written += 50;
        sink.flush().unwrap();
        assert_eq!(sink.buffered(), 0);
        // Everything written so far has been accepted when flush returns.
        let got = numbers(&server.accepted_lines());
        assert_eq!(got, (0..written).collect(), "after a flush of {written} lines");
    }
    let seen = server.seen();
    assert_eq!(stats.retries.load(Ordering::SeqCst), 9);
    assert_eq!(stats.rejected.load(Ordering::SeqCst), 0);
    // The 429's Retry-After: 1 was honoured.
    assert!(
        seen[3].at - seen[2].at >= Duration::from_millis(950),
        "{:?}",
        seen[3].at - seen[2].at
    );
    // Requests carry whole lines, at most max_bytes (4 KiB) of them.
    for s in &seen {
        assert!(
            s.body.len() <= 4096 && s.body.ends_with(b"\n"),
            "request of {} bytes",
            s.body.len()
        );
        assert_eq!(s.headers["content-type"], "application/x-ndjson");
        assert!(s.headers["user-agent"].starts_with("weir/"));
    }
    // No line was accepted twice (retries are per request, and only failed ones).
    assert_eq!(server.accepted_lines().len(), written);
}

#[test]
fn a_4xx_is_counted_as_rejected_and_not_retried() {
    let server = Server::start(|n| match n {
        0 => Action::Status(400, None),
        1 => Action::Status(413, None),
        2 => Action::Status(404, None),
        3 => Action::Status(408, None), // retryable
        _ => Action::Ok,
    });
    let (mut sink, stats, _stop) = sink(&format!(
        "uri: {}\nretry: {{ initial_backoff: 10ms, max_backoff: 20ms }}\n",
        server.uri("/")
    ));
    let started = Instant::now();
    for (i, n) in [10, 7, 3].into_iter().enumerate() {
        sink.write(&batch(i * 100, n), n as u64).unwrap();
        sink.flush().unwrap();
    }
    assert_eq!(stats.rejected.load(Ordering::SeqCst), 20);
    assert_eq!(stats.retries.load(Ordering::SeqCst), 0);
    assert_eq!(server.seen().len(), 3, "one request each, none repeated");
    sink.write(&batch(500, 5), 5).unwrap();
    sink.flush().unwrap();
    assert_eq!(stats.retries.load(Ordering::SeqCst), 1, "408 is retried");
    assert_eq!(numbers(&server.accepted_lines()), (500..505).collect());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn stop_ends_a_retrying_flush_promptly_and_keeps_the_data() {
    // Long backoffs, and a Retry-After longer than the test: the wait must be cut short.
    for script in [Action::Status(503, None), Action::Status(429, Some(100)), Action::Drop] {
        let s2 = script.clone();
        let server = Server::start(move |_| s2.clone());
        let (mut sink, stats, stop) = sink(&format!(
            "uri: {}\nretry: {{ initial_backoff: 5s, max_backoff: 60s }}\n",
            server.uri("/")
        ));
        sink.write(&batch(0, 10), 10).unwrap();
        let stopper = stop_after(&stop, Duration::from_millis(300));
        let started = Instant::now();
        let err = sink.flush().expect_err("flush cannot succeed");
        let took = started.elapsed();
        stopper.join().unwrap();
        assert!(
            took < Duration::from_secs(2),
            "{script:?}: flush took {took:?} after stop"
        );
        assert!(err.to_string().contains("10 events undelivered"), "{err}");
        assert!(stats.retries.load(Ordering::SeqCst) >= 1);
        assert_eq!(stats.rejected.load(Ordering::SeqCst), 0);
        // Nothing was dropped: the data is still there, unacknowledged.
        assert_eq!(sink.buffered(), batch(0, 10).len());
        // Once stopped, no more requests.
        let before = server.seen().len();
        assert!(sink.flush().is_err());
        assert_eq!(server.seen().len(), before);
    }
}

#[test]
fn gzip_es_bulk_bodies_and_per_item_failures() {
    // gzip + es_bulk; the second request gets per-item answers: one 429 (sent again),
    // one 400 (rejected), the rest accepted.
    let server = Server::start(|n| match n {
        1 => Action::BulkItems(vec![201, 429, 201, 400, 201]),
        _ => Action::Ok,
    });
    let (mut sink, stats, _stop) = sink(&format!(
        "uri: {}\nencoding: es_bulk\nindex: logs-test\ncompression: gzip\n\
         headers: {{ Authorization: 'ApiKey abc' }}\n\
         retry: {{ initial_backoff: 10ms, max_backoff: 20ms }}\n",
        server.uri("/_bulk")
    ));
    sink.write(&batch(0, 100), 100).unwrap();
    sink.flush().unwrap();
    sink.write(&batch(100, 5), 5).unwrap();
    sink.flush().unwrap();
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        3,
        "{:#?}",
        seen.iter().map(|s| &s.action).collect::<Vec<_>>()
    );
    for s in &seen {
        assert_eq!(s.headers["content-encoding"], "gzip");
        assert_eq!(s.headers["content-type"], "application/x-ndjson");
        assert_eq!(s.headers["authorization"], "ApiKey abc");
        for (action, _) in bulk_docs(std::str::from_utf8(&s.body).unwrap()) {
            assert_eq!(action, serde_json::json!({"index": {"_index": "logs-test"}}));
        }
    }
    // The first body holds the 100 documents exactly, in order.
    let docs: Vec<String> = bulk_docs(std::str::from_utf8(&seen[0].body).unwrap())
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let want: Vec<String> = String::from_utf8(batch(0, 100))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(docs, want);
    // The third request resends only the item that got 429.
    let resent: Vec<String> = bulk_docs(std::str::from_utf8(&seen[2].body).unwrap())
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(numbers(&resent), BTreeSet::from([101]));
    assert_eq!(stats.retries.load(Ordering::SeqCst), 1);
    assert_eq!(stats.rejected.load(Ordering::SeqCst), 1);
    let mut want: BTreeSet<usize> = (0..105).collect();
    want.remove(&103);
    assert_eq!(numbers(&server.accepted_lines()), want);
}

#[test]
fn json_lines_gzip_body_is_the_written_lines() {
    let server = Server::start(|_| Action::Ok);
    let (mut sink, _stats, _stop) = sink(&format!(
        "uri: {}\ncompression: gzip\nbatch: {{ max_bytes: 2KiB, timeout: 250ms }}\n",
        server.uri("/logs")
    ));
    assert_eq!(sink.flush_bytes(), 2048);
    assert_eq!(sink.flush_interval(), Duration::from_millis(250));
    let data = batch(0, 200);
    sink.write(&data, 200).unwrap();
    sink.flush().unwrap();
    let seen = server.seen();
    assert!(seen.len() > 1, "split into requests of at most 2KiB");
    let mut joined = Vec::new();
    for s in &seen {
        assert_eq!(s.headers["content-encoding"], "gzip");
        assert!(s.body.len() <= 2048);
        joined.extend_from_slice(&s.body);
    }
    assert_eq!(joined, data);
}

#[test]
fn memory_stays_bounded_while_the_server_is_down() {
    // Nothing listens on this port: every connection is refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let max = 8 << 10;
    let (mut sink, stats, stop) = sink(&format!(
        "uri: http://127.0.0.1:{port}/\nbatch: {{ max_bytes: {max} }}\n\
         retry: {{ initial_backoff: 1ms, max_backoff: 5ms }}\n"
    ));
    let one = batch(0, 20);
    let stopper = stop_after(&stop, Duration::from_millis(500));
    let started = Instant::now();
    let mut writes = 0;
    let mut failed = 0;
    // The output thread's cycle, again and again: writes, and a flush now and then.
    while started.elapsed() < Duration::from_secs(2) && failed < 50 {
        let result = if writes % 5 == 4 {
            sink.flush()
        } else {
            sink.write(&one, 20)
        };
        writes += 1;
        if result.is_err() {
            failed += 1;
        }
        assert!(
            sink.buffered() <= max + one.len(),
            "{} bytes buffered (max_bytes {max} + one batch {})",
            sink.buffered(),
            one.len()
        );
    }
    stopper.join().unwrap();
    assert_eq!(failed, 50, "once stopped, calls fail instead of buffering more");
    assert!(sink.buffered() >= max, "the undelivered data is kept, not dropped");
    assert!(stats.retries.load(Ordering::SeqCst) > 10);
    assert_eq!(stats.rejected.load(Ordering::SeqCst), 0);
}

#[test]
fn weir_run_delivers_every_line_of_a_file_through_a_flaky_server() {
    let dir = tempfile::tempdir().unwrap();
    let lines = 20_000;
    let mut log = String::new();
    for i in 0..lines {
        log.push_str(&format!("line {i:06}\n"));
    }
    std::fs::write(dir.path().join("app.log"), &log).unwrap();
    // Deterministic trouble: the first requests fail in every way, then one in five.
    let server = Server::start(|n| match (n, n % 5) {
        (0, _) => Action::Status(500, None),
        (1, _) => Action::Status(429, Some(1)),
        (2, _) => Action::Drop,
        (_, 0) if n < 60 => Action::Status(503, None),
        (_, 3) if n < 60 => Action::Drop,
        _ => Action::Ok,
    });
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: http\n    uri: {}\n    compression: gzip\n\
             \x20   batch: {{ max_bytes: 16KiB, timeout: 50ms }}\n\
             \x20   retry: {{ initial_backoff: 10ms, max_backoff: 50ms }}\n",
            dir.path().join("app.log").display(),
            server.uri("/ingest")
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(&pipeline)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("weir run did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "weir run failed: {status}\n{stderr}");
    let got = numbers(&server.accepted_lines());
    assert_eq!(got.len(), lines, "every line arrived");
    assert_eq!(got, (0..lines).collect());
    let failures = server.seen().iter().filter(|s| s.action != Action::Ok).count();
    assert!(failures >= 10, "the server failed {failures} requests");
    assert!(stderr.contains("retrying"), "the first failure is logged:\n{stderr}");
}
