//! Hot reload against a real `weir run`: a followed file gets numbered lines without a
//! pause while the pipeline file changes under the agent, with `--watch-config` or with
//! SIGHUP. Every line must come out exactly once, each reload's pipeline must apply to
//! the lines written once it is reported, and a file that does not validate must leave
//! the running pipeline as it was.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::{free_address, metrics, stop, weir_run};

/// The test's files, and the admin address of its agent.
struct Files {
    dir: tempfile::TempDir,
    address: String,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.log"), "").unwrap();
        Files {
            dir,
            address: free_address(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The pipeline: `app.log` into `main.jsonl`; with `parse` a `parse_regex` that adds
    /// the line's number as `n`; with `extra` a second output, `extra.jsonl`.
    fn pipeline(&self, parse: bool, extra: bool) -> String {
        let mut yaml = format!(
            "data_dir: {data}\nadmin: {{ address: \"{address}\" }}\nworkers: 2\n\
             inputs:\n  - type: file\n    paths: [\"{log}\"]\n    poll_interval: 20ms\n",
            data = self.path("data").display(),
            address = self.address,
            log = self.path("app.log").display(),
        );
        if parse {
            yaml += "processors:\n  - type: parse_regex\n    field: message\n    \
                     pattern: '^line-(?P<n>\\d+) '\n    keep_source: true\n";
        }
        yaml += &format!(
            "outputs:\n  - type: file\n    path: {}\n",
            self.path("main.jsonl").display()
        );
        if extra {
            yaml += &format!("  - type: file\n    path: {}\n", self.path("extra.jsonl").display());
        }
        yaml
    }

    /// Replaces the pipeline file at once (as an editor or a ConfigMap update does).
    fn write_pipeline(&self, yaml: &str) {
        let tmp = self.path("pipeline.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.path("pipeline.yaml")).unwrap();
    }

    fn start(&self, watch: bool) -> Child {
        let mut cmd = weir_run(&self.path("pipeline.yaml"));
        if watch {
            cmd.arg("--watch-config");
        }
        let child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        wait_for("the admin endpoint", || !metrics(&self.address).is_empty());
        child
    }

    fn metric(&self, name: &str) -> f64 {
        metrics(&self.address).get(name).copied().unwrap_or(-1.0)
    }

    /// `GET /health`, parsed.
    fn health(&self) -> Value {
        let mut conn = std::net::TcpStream::connect(&self.address).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }
}

fn sighup(agent: &Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(agent.id() as i32, libc::SIGHUP) };
}

/// Waits up to 20 s for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Appends numbered lines to `log` until told to stop; `written` counts those on disk.
struct Writer {
    written: Arc<AtomicU64>,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(log: &Path) -> Writer {
        let (written, quit) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        let (w, q) = (written.clone(), quit.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !q.load(Ordering::Relaxed) {
                let mut chunk = String::new();
                for _ in 0..50 {
                    chunk += &format!("line-{n:08} written while the pipeline changes\n");
                    n += 1;
                }
                file.write_all(chunk.as_bytes()).unwrap();
                w.store(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Writer {
            written,
            quit,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Stops writing; returns how many lines were written.
    fn finish(mut self) -> u64 {
        self.quit.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written()
    }
}

/// Per line number in `out`: how many times it came out, and whether it had `n` (the
/// parse_regex of the pipelines that have it) the last time.
fn read_output(out: &Path) -> BTreeMap<u64, (u32, bool)> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let message = event["message"].as_str().unwrap();
        let n: u64 = message[5..13].parse().unwrap();
        let parsed = event.get("n").is_some();
        if parsed {
            assert_eq!(event["n"].as_str().unwrap().parse::<u64>().unwrap(), n, "{line}");
        }
        let entry = seen.entry(n).or_insert((0, false));
        entry.0 += 1;
        entry.1 = parsed;
    }
    seen
}

/// Every line in `0..n` exactly once.
fn assert_exactly_once(seen: &BTreeMap<u64, (u32, bool)>, n: u64) {
    let dups: Vec<_> = seen.iter().filter(|(_, (c, _))| *c > 1).take(10).collect();
    assert!(dups.is_empty(), "duplicated lines (number, (times, parsed)): {dups:?}");
    let missing: Vec<u64> = (0..n).filter(|k| !seen.contains_key(k)).take(10).collect();
    assert!(missing.is_empty(), "lines missing (first 10): {missing:?} of {n}");
    assert_eq!(seen.len() as u64, n, "line numbers that were never written");
}

#[test]
fn twenty_reloads_lose_no_line_and_apply_each_pipeline_from_its_reload_on() {
    let files = Files::new();
    files.write_pipeline(&files.pipeline(false, true));
    let agent = files.start(true);
    let first_hash = files.health()["config"]["sha256"].as_str().unwrap().to_string();
    let writer = Writer::start(&files.path("app.log"));
    // Per reload: whether its pipeline parses, and the lines written from when it was
    // reported applied to just before the next file was written.
    let mut windows: Vec<(bool, u64, u64)> = Vec::new();
    let mut since: Option<(bool, u64)> = None;
    for k in 1..=20u32 {
        std::thread::sleep(Duration::from_millis(100));
        let parse = k % 2 == 1;
        if let Some((p, from)) = since.take() {
            windows.push((p, from, writer.written()));
        }
        // Odd reloads gain the processor and lose the second output; even ones go back.
        files.write_pipeline(&files.pipeline(parse, !parse));
        wait_for(&format!("reload {k}"), || {
            files.metric("weir_config_reloads_total") >= f64::from(k)
        });
        assert_eq!(
            files.metric("weir_config_reloads_total"),
            f64::from(k),
            "one reload per change"
        );
        since = Some((parse, writer.written()));
        // The file's hash follows it: the pipelines with the processor differ from the first.
        let hash = files.health()["config"]["sha256"].as_str().unwrap().to_string();
        assert_eq!(hash == first_hash, !parse, "reload {k}: sha256 {hash}");
    }
    std::thread::sleep(Duration::from_millis(100));
    let (p, from) = since.take().unwrap();
    windows.push((p, from, writer.written()));

    // A file that does not validate: refused, said why, the running pipeline goes on.
    let good_hash = files.health()["config"]["sha256"].as_str().unwrap().to_string();
    files.write_pipeline(
        &files
            .pipeline(false, false)
            .replace("type: file\n    path", "type: fiel\n    path"),
    );
    wait_for("the refusal", || {
        files.metric("weir_config_reload_failures_total") == 1.0
    });
    let health = files.health();
    let error = health["config"]["last_reload_error"].as_str().unwrap();
    assert!(error.contains("pipeline.yaml:") && error.contains("fiel"), "{error}");
    assert_eq!(health["config"]["sha256"], good_hash.as_str(), "the old pipeline runs");
    assert_eq!(files.metric("weir_config_last_reload_successful"), 0.0);
    let after_refusal = writer.written();
    std::thread::sleep(Duration::from_millis(300));
    let n = writer.finish();
    wait_for("every line in main.jsonl", || {
        read_output(&files.path("main.jsonl")).len() as u64 >= n
    });
    // The input was never replaced: its counter went on through every reload.
    let events: f64 = metrics(&files.address)
        .iter()
        .filter(|(k, _)| k.starts_with("weir_input_events_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(events, n as f64, "the input's events counter");
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("reload refused"), "{stderr}");

    let seen = read_output(&files.path("main.jsonl"));
    assert_exactly_once(&seen, n);
    for (parse, from, to) in &windows {
        let wrong: Vec<u64> = (*from..*to).filter(|k| seen[k].1 != *parse).take(5).collect();
        assert!(
            wrong.is_empty(),
            "lines {from}..{to} were written after a reload to a pipeline {} parse_regex, \
             but these came out otherwise: {wrong:?}",
            if *parse { "with" } else { "without" }
        );
        assert!(to > from, "no line was written in a window");
    }
    // The last pipeline (20th, even: no processor) still ran after the refusal.
    assert!((after_refusal..n).all(|k| !seen[&k].1));
    // The second output got lines only while a pipeline had it, each at most once.
    let extra = read_output(&files.path("extra.jsonl"));
    assert!(extra.values().all(|(c, _)| *c == 1), "a line twice in extra.jsonl");
    assert!(!extra.is_empty() && (extra.len() as u64) < n);
    for (parse, from, to) in &windows {
        let missing = (*from..*to).filter(|k| !extra.contains_key(k)).count();
        assert!(
            *parse || missing == 0,
            "{missing} lines of {from}..{to} missing in extra.jsonl"
        );
    }
}

#[test]
fn sighup_reloads_and_a_bad_file_leaves_the_running_pipeline() {
    let files = Files::new();
    files.write_pipeline(&files.pipeline(false, false));
    let agent = files.start(false);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(files.path("app.log"))
        .unwrap();
    writeln!(log, "line-00000000 before").unwrap();
    wait_for("line 0", || read_output(&files.path("main.jsonl")).len() == 1);

    // Without --watch-config a change waits for SIGHUP.
    files.write_pipeline(&files.pipeline(true, false));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(files.metric("weir_config_reloads_total"), 0.0);
    sighup(&agent);
    wait_for("the reload", || files.metric("weir_config_reloads_total") == 1.0);
    writeln!(log, "line-00000001 after").unwrap();
    wait_for("line 1", || read_output(&files.path("main.jsonl")).len() == 2);

    // A processor that does not build (a bad regex): refused with its place in the file.
    files.write_pipeline(&files.pipeline(true, false).replace("(?P<n>", "(?P<n"));
    sighup(&agent);
    wait_for("the refusal", || {
        files.metric("weir_config_reload_failures_total") == 1.0
    });
    let error = files.health()["config"]["last_reload_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("pipeline.yaml:"), "{error}");
    writeln!(log, "line-00000002 after the refusal").unwrap();
    wait_for("line 2", || read_output(&files.path("main.jsonl")).len() == 3);

    // Fixed: applied, and the error is gone.
    files.write_pipeline(&files.pipeline(false, false));
    sighup(&agent);
    wait_for("the second reload", || files.metric("weir_config_reloads_total") == 2.0);
    assert!(files.health()["config"]["last_reload_error"].is_null());
    assert_eq!(files.metric("weir_config_last_reload_successful"), 1.0);
    writeln!(log, "line-00000003 last").unwrap();
    wait_for("line 3", || read_output(&files.path("main.jsonl")).len() == 4);
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    let seen = read_output(&files.path("main.jsonl"));
    assert_exactly_once(&seen, 4);
    let parsed: Vec<bool> = seen.values().map(|(_, p)| *p).collect();
    assert_eq!(parsed, [false, true, true, false]);
}

/// Posts numbered NDJSON lines to `address` in batches of 20 until told to stop, each batch
/// again until it gets 200. Returns (lines sent, connections refused, answers other than 200).
fn post_lines(address: String, quit: Arc<AtomicBool>) -> JoinHandle<(u64, u64, u64)> {
    std::thread::spawn(move || {
        let (mut n, mut refused, mut later) = (0u64, 0u64, 0u64);
        while !quit.load(Ordering::Relaxed) {
            let body: String = (n..n + 20)
                .map(|k| format!("{{\"message\":\"line-{k:08} posted\"}}\n"))
                .collect();
            loop {
                let Ok(mut conn) = std::net::TcpStream::connect(&address) else {
                    refused += 1;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let request = format!(
                    "POST / HTTP/1.1\r\nHost: weir\r\nContent-Type: application/x-ndjson\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(request.as_bytes()).unwrap();
                let mut answer = String::new();
                let _ = conn.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    break;
                }
                later += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            n += 20;
        }
        (n, refused, later)
    })
}

#[test]
fn a_kept_listener_keeps_its_socket_through_reloads() {
    let files = Files::new();
    let listen = free_address();
    let pipeline = |parse: bool| {
        files.pipeline(parse, false).replace(
            &format!(
                "  - type: file\n    paths: [\"{}\"]\n    poll_interval: 20ms\n",
                files.path("app.log").display()
            ),
            &format!("  - type: http\n    address: \"{listen}\"\n"),
        )
    };
    files.write_pipeline(&pipeline(false));
    let agent = files.start(false);
    let quit = Arc::new(AtomicBool::new(false));
    let sender = post_lines(listen.clone(), quit.clone());
    for k in 1..=6u32 {
        std::thread::sleep(Duration::from_millis(200));
        files.write_pipeline(&pipeline(k % 2 == 1));
        sighup(&agent);
        wait_for(&format!("reload {k}"), || {
            files.metric("weir_config_reloads_total") == f64::from(k)
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    quit.store(true, Ordering::Relaxed);
    let (n, refused, later) = sender.join().unwrap();
    wait_for("every posted line", || {
        read_output(&files.path("main.jsonl")).len() as u64 >= n
    });
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    assert_eq!(refused, 0, "the listener's socket was closed during a reload");
    assert_exactly_once(&read_output(&files.path("main.jsonl")), n);
    eprintln!("{n} lines posted through 6 reloads; {later} answers asked to send again");
}
