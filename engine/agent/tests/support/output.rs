//! What every output must do with the agent around it, as checks any output's test runs
//! against its own destination (`tests/outputs.rs`): acknowledgements (a checkpoint moves
//! only past what the destination accepted, so nothing is lost across a SIGKILL) and
//! backpressure (a destination that accepts nothing slows reading, with bounded memory, and
//! everything arrives once it recovers).
#![allow(dead_code)] // each user takes what it needs

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use super::agent::{append_to, metrics, weir_run};

/// A destination as an output's test drives it.
pub trait Destination {
    /// The body of the `outputs:` entry that delivers here (YAML lines indented by four
    /// spaces, `type:` first), with `json` encoding.
    fn output(&self) -> String;
    /// While held, the destination accepts nothing (it refuses or fails every attempt): the
    /// output must keep retrying and hold on to the events.
    fn hold(&self, held: bool);
    /// The JSON lines it accepted so far, in the order it accepted them.
    fn accepted(&self) -> Vec<String>;
}

/// How many times each numbered line (`line-00000042 ...` in the `message`) was accepted.
pub fn accepted_counts(dest: &dyn Destination) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for line in dest.accepted() {
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("accepted line is not JSON ({e}): {line}"));
        let message = event["message"].as_str().unwrap_or_default();
        let n: u64 = message
            .strip_prefix("line-")
            .and_then(|m| m.get(..8))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected event {line}"));
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

/// A log of `n` numbered lines of about `width` bytes each.
fn numbered(n: u64, width: usize) -> String {
    let mut log = String::new();
    for i in 0..n {
        let line = format!("line-{i:08} ");
        log.push_str(&line);
        log.push_str(&"x".repeat(width.saturating_sub(line.len() + 1)));
        log.push('\n');
    }
    log
}

/// A pipeline following `log` into `dest`, with its checkpoints in `data` and the admin
/// endpoint at `admin`.
fn pipeline(dir: &Path, log: &Path, dest: &dyn Destination, admin: &str) -> std::path::PathBuf {
    let path = dir.join("pipeline.yaml");
    let yaml = format!(
        "data_dir: {}\ncheckpoint_interval: 50ms\nshutdown_timeout: 2s\nadmin: {{ address: \"{admin}\" }}\n\
         inputs:\n  - type: file\n    paths: [\"{}\"]\noutputs:\n  - {}\n",
        dir.join("data").display(),
        log.display(),
        dest.output().trim_start()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Waits until `done` holds, or panics after `limit` saying `what`. Looks often at first,
/// then every 2 s at most (reading a destination back can be slow).
fn wait_until(limit: Duration, what: &str, stderr: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    while !done() {
        if start.elapsed() >= limit {
            let log = std::fs::read_to_string(stderr).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{what}: not within {limit:?}; the agent's stderr ends with:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn start(config: &Path, stderr: &Path) -> Child {
    weir_run(config).stderr(append_to(stderr)).spawn().unwrap()
}

fn sigterm(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

/// The checkpoint's offset of the only followed file (0 when none is saved).
fn checkpoint_offset(data: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(data.join("checkpoints.json")) else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["files"]
        .as_array()
        .and_then(|f| f.first())
        .and_then(|e| e["offset"].as_u64())
        .unwrap_or(0)
}

/// Acknowledgements: while `dest` accepts nothing, the agent reads the file but its
/// checkpoint stays at 0; killed with SIGKILL and started again with `dest` accepting, every
/// line arrives; stopped and started once more, nothing is sent again.
pub fn acknowledgements(dest: &dyn Destination) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 5_000;
    std::fs::write(&log, numbered(n, 100)).unwrap();
    let admin = free_address();
    let config = pipeline(dir.path(), &log, dest, &admin);
    let stderr = dir.path().join("stderr.log");
    let data = dir.path().join("data");

    dest.hold(true);
    let mut agent = start(&config, &stderr);
    wait_until(Duration::from_secs(20), "the agent reads the file", &stderr, || {
        metrics(&admin)
            .iter()
            .any(|(k, v)| k.starts_with("weir_input_bytes_total") && *v > 0.0)
    });
    std::thread::sleep(Duration::from_millis(500));
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(
        checkpoint_offset(&data),
        0,
        "the checkpoint moved past lines the destination did not accept"
    );
    dest.hold(false);
    assert!(dest.accepted().is_empty(), "a held destination accepted events");

    let mut agent = start(&config, &stderr);
    wait_until(
        Duration::from_secs(60),
        "every line arrives after the restart",
        &stderr,
        || accepted_counts(dest).len() as u64 == n,
    );
    wait_until(
        Duration::from_secs(10),
        "the checkpoint reaches the end",
        &stderr,
        || checkpoint_offset(&data) == std::fs::metadata(&log).unwrap().len(),
    );
    sigterm(&mut agent);
    let delivered = dest.accepted().len();

    let mut agent = start(&config, &stderr);
    std::thread::sleep(Duration::from_secs(1));
    sigterm(&mut agent);
    assert_eq!(
        dest.accepted().len(),
        delivered,
        "a restart sent again what was delivered and checkpointed"
    );
}

/// Backpressure: with `dest` accepting nothing, the agent reads a 64 MiB file only as far
/// as its bounded queues hold, with bounded memory; once `dest` accepts again, every line
/// arrives.
pub fn backpressure(dest: &dyn Destination) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let n = 640_000; // 100 bytes each: 64 MB
    std::fs::write(&log, numbered(n, 100)).unwrap();
    let size = std::fs::metadata(&log).unwrap().len() as f64;
    let admin = free_address();
    let config = pipeline(dir.path(), &log, dest, &admin);
    let stderr = dir.path().join("stderr.log");

    dest.hold(true);
    let mut agent = start(&config, &stderr);
    let read = || {
        metrics(&admin)
            .iter()
            .filter(|(k, _)| k.starts_with("weir_input_bytes_total"))
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    wait_until(Duration::from_secs(20), "the agent reads the file", &stderr, || {
        read() > 0.0
    });
    std::thread::sleep(Duration::from_secs(2));
    let held_read = read();
    assert!(
        held_read < size / 2.0,
        "with the destination holding back, the agent read {held_read} of {size} bytes: reading did not slow"
    );
    let rss = peak_rss_kib(agent.id());
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB while the destination held back");

    dest.hold(false);
    wait_until(
        Duration::from_secs(120),
        "every line arrives once released",
        &stderr,
        || accepted_counts(dest).len() as u64 == n,
    );
    sigterm(&mut agent);
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
