//! `weir top` and `weir tap` against a real `weir run`: an agent follows a file through a
//! `parse_json` processor into a file output while the test appends JSON lines; the tools
//! talk to its admin endpoint. Each test bounds its own time.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::{WEIR, free_address, stop, weir_run};

/// A running agent: `app.log` -> parse_json -> `out.jsonl`, admin endpoint on `address`.
struct Agent {
    dir: tempfile::TempDir,
    address: String,
    child: Option<std::process::Child>,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let address = free_address();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let config = dir.path().join("pipeline.yaml");
        std::fs::write(
            &config,
            format!(
                "data_dir: {data}\nadmin: {{ address: \"{address}\" }}\n\
                 inputs:\n  - type: file\n    paths: [\"{log}\"]\n    poll_interval: 50ms\n\
                 processors:\n  - type: parse_json\n\
                 outputs:\n  - type: file\n    path: {out}\n",
                data = p("data"),
                log = p("app.log"),
                out = p("out.jsonl"),
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("app.log"), "").unwrap();
        let child = weir_run(&config).stderr(Stdio::piped()).spawn().unwrap();
        let agent = Agent {
            dir,
            address,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !agent.healthy() {
            assert!(Instant::now() < deadline, "the admin endpoint did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn healthy(&self) -> bool {
        use std::io::Read;
        let Ok(mut conn) = std::net::TcpStream::connect(&self.address) else {
            return false;
        };
        let _ = conn.write_all(b"GET /health HTTP/1.0\r\n\r\n");
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("app.log")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.jsonl")
    }

    /// `weir ARGS... --admin ADDRESS`, run to its end (bounded by `limit`).
    fn weir(&self, args: &[&str], limit: Duration) -> Output {
        let mut cmd = Command::new(WEIR);
        cmd.args(args).args(["--admin", &self.address]);
        run_bounded(cmd, limit)
    }

    /// Appends numbered JSON lines from a thread, `per_tick` every 10 ms, until told to stop.
    fn feed(&self, per_tick: u64) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let handle = std::thread::spawn({
            let (stop, written, log) = (stop.clone(), written.clone(), self.log());
            move || {
                let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let n = written.load(Ordering::Relaxed);
                    append(&mut f, n..n + per_tick);
                    written.store(n + per_tick, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        Feeder {
            stop,
            written,
            handle: Some(handle),
        }
    }

    /// Waits (up to 20 s) until the output holds `n` events, then checks each of `0..n`
    /// is there once.
    fn assert_delivered_once(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let counts = loop {
            let counts = numbers(&self.out());
            if counts.values().map(|c| u64::from(*c)).sum::<u64>() >= n || Instant::now() > deadline {
                break counts;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(dups.is_empty(), "duplicated events: {dups:?}");
        let missing: Vec<u64> = (0..n).filter(|i| !counts.contains_key(i)).take(5).collect();
        assert!(missing.is_empty(), "missing events (first few): {missing:?}");
        assert_eq!(counts.len() as u64, n);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let (status, stderr) = stop(child);
            if !std::thread::panicking() {
                assert!(status.success(), "weir run failed: {stderr}");
            }
        }
    }
}

/// A thread appending lines; stopped (and joined) when dropped.
struct Feeder {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Feeder {
    /// Stops and returns how many lines were written.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        self.written.load(Ordering::Relaxed)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn append(f: &mut std::fs::File, numbers: std::ops::Range<u64>) {
    let text: String = numbers
        .map(|n| format!("{{\"n\":{n},\"level\":\"info\",\"msg\":\"hello from the test\"}}\n"))
        .collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// How many times each `n` is in the output.
fn numbers(out: &Path) -> BTreeMap<u64, u32> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut counts = BTreeMap::new();
    // The last line may be half written.
    for line in text.lines().filter(|l| l.ends_with('}')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        *counts.entry(v["n"].as_u64().unwrap()).or_insert(0) += 1;
    }
    counts
}

/// Runs `cmd` with its output captured, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    // Read the pipes while waiting, so a chatty child cannot block on a full one.
    let out = std::thread::spawn({
        let mut stdout = child.stdout.take().unwrap();
        move || {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut s).unwrap();
            s
        }
    });
    let err = std::thread::spawn({
        let mut stderr = child.stderr.take().unwrap();
        move || {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut stderr, &mut s).unwrap();
            s
        }
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn tap_shows_what_leaves_each_component_and_keeps_to_its_limit_and_rate() {
    let agent = Agent::start();
    let feeder = agent.feed(20); // about 2,000 events per second

    // After the processor: its fields, the source field gone (it ran).
    let out = agent.weir(&["tap", "parse_json", "--limit", "5"], Duration::from_secs(10));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = json_lines(&out);
    assert_eq!(events.len(), 5, "{events:?}");
    for e in &events {
        assert!(e["n"].is_u64() && e["level"] == "info", "{e}");
        assert!(e.get("message").is_none(), "parse_json removes its source field: {e}");
    }

    // The input: events as read, the raw line in `message`.
    let out = agent.weir(&["tap", "inputs[0].file", "-n", "2"], Duration::from_secs(10));
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{}", String::from_utf8_lossy(&out.stderr));
    let raw: Value = serde_json::from_str(events[0]["message"].as_str().unwrap()).unwrap();
    assert!(raw["n"].is_u64(), "{raw}");

    // The output: what it is given.
    let out = agent.weir(&["tap", "outputs[0].file", "-n", "2"], Duration::from_secs(10));
    let events = json_lines(&out);
    assert_eq!(events.len(), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(events.iter().all(|e| e["n"].is_u64() && e.get("message").is_none()));

    // 5 per second for 2 seconds while thousands flow: one at once, then at most 10.
    let before = numbers(&agent.out()).len();
    let started = Instant::now();
    let out = agent.weir(
        &["tap", "processors[0].parse_json", "--rate", "5/s", "--duration", "2s"],
        Duration::from_secs(10),
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let flowed = numbers(&agent.out()).len() - before;
    let sampled = json_lines(&out).len();
    assert!(flowed > 500, "{flowed} events flowed during the tap");
    assert!((5..=11).contains(&sampled), "{sampled} events sampled at 5/s in 2s");
    assert!(took < Duration::from_secs(4), "a 2s tap took {took:?}");
    let written = feeder.finish();
    agent.assert_delivered_once(written);
}

#[test]
fn tap_of_an_unknown_component_lists_the_components() {
    let agent = Agent::start();
    let out = agent.weir(&["tap", "nope"], Duration::from_secs(10));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown component `nope`"), "{stderr}");
    assert!(
        stderr.contains("inputs[0].file, processors[0].parse_json, outputs[0].file"),
        "{stderr}"
    );

    // Nothing listening: a clear error, for both tools.
    let nobody = free_address();
    for args in [&["tap", "parse_json"][..], &["top", "--once"][..]] {
        let mut cmd = Command::new(WEIR);
        cmd.args(args).args(["--admin", &nobody]);
        let out = run_bounded(cmd, Duration::from_secs(10));
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("no agent answering at {nobody}: is `weir run` running")),
            "{stderr}"
        );
    }
}

#[test]
fn top_once_prints_a_row_per_component_with_rates() {
    let agent = Agent::start();
    let feeder = agent.feed(20);
    std::thread::sleep(Duration::from_millis(300));
    let out = agent.weir(&["top", "--once", "--interval", "500ms"], Duration::from_secs(10));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "--once prints no escapes: {text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("weir top  {}  every 500ms  work queue ", agent.address)),
        "{text}"
    );
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        cells[0],
        [
            "COMPONENT",
            "IN/s",
            "OUT/s",
            "BYTES/s",
            "FAILED",
            "FAILED/s",
            "QUEUE",
            "LAG"
        ],
        "{text}"
    );
    let names: Vec<&str> = cells[1..].iter().map(|c| c[0]).collect();
    assert_eq!(
        names,
        ["inputs[0].file", "processors[0].parse_json", "outputs[0].file"],
        "{text}"
    );
    let rate = |cell: &str| -> f64 {
        let (n, k) = cell.strip_suffix('k').map_or((cell, 1.0), |n| (n, 1e3));
        n.parse::<f64>().unwrap_or(0.0) * k
    };
    for row in &cells[1..] {
        assert!(rate(row[2]) > 100.0, "events/s out of {}: {text}", row[0]);
        assert_eq!(row[5], "0", "no failures: {text}");
    }
    // The file input has a lag in bytes, the output a queue.
    assert!(cells[1].last().unwrap().ends_with('B'), "{text}");
    assert!(cells[3][7].parse::<u64>().is_ok(), "{text}");
    feeder.finish();
}

#[test]
fn nothing_is_lost_while_a_slow_tap_is_attached() {
    let agent = Agent::start();
    // A tap whose reader never reads: its pipe and socket fill, the agent drops samples.
    let mut tap = Command::new(WEIR)
        .args(["tap", "parse_json", "--rate", "100000/s", "--admin", &agent.address])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut f = std::fs::OpenOptions::new().append(true).open(agent.log()).unwrap();
    let n = 60_000;
    for start in (0..n).step_by(5_000) {
        append(&mut f, start..start + 5_000);
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    agent.assert_delivered_once(n);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stuck tap slowed the pipeline"
    );
    let _ = tap.kill();
    let _ = tap.wait();
}
