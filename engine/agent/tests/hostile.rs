//! Hostile input never takes the agent down, end to end through `weir run` in follow mode:
//! a line nested past the JSON depth limit is a counted failure (it used to overflow a
//! worker's stack with `flatten`), and a record the agent dies on costs two restarts, then
//! only itself (the crash-loop guard, `engine/agent/src/delivery/guard.rs`).
//!
//! The crash is injected with `WEIR_FAULT_ABORT_ON` (debug builds only): the process aborts
//! when an event about to be processed contains the text, as a crash in a processor would.

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use support::agent::{append_to, metrics, weir_run};
use support::node::Agent;

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    /// A follow-mode pipeline over `logs/*.log` with `processors`, JSON lines to `out.json`
    /// and dead letters to `dead.json`, an admin endpoint on a free port.
    fn new(processors: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = Setup { dir, port };
        let cfg = format!(
            "data_dir: {data}\ncheckpoint_interval: 50ms\nshutdown_timeout: 5s\n\
             admin: {{ address: 127.0.0.1:{port} }}\ndead_letter: rejects\n\
             inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n\
             processors:\n{processors}\
             outputs:\n  - type: file\n    path: {out}\n    format: json\n\
             \x20 - type: file\n    name: rejects\n    path: {dead}\n    format: json\n",
            data = s.path("data").display(),
            logs = s.path("logs").display(),
            out = s.path("out.json").display(),
            dead = s.path("dead.json").display(),
        );
        fs::write(s.path("pipeline.yaml"), cfg).unwrap();
        s
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn append(&self, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("logs/app.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn start(&self, abort_on: Option<&str>) -> Agent {
        let mut cmd = weir_run(&self.path("pipeline.yaml"));
        cmd.stderr(append_to(&self.path("stderr.txt")));
        if let Some(text) = abort_on {
            cmd.env("WEIR_FAULT_ABORT_ON", text);
        }
        Agent(cmd.spawn().unwrap())
    }

    fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits until `name` holds at least `n` lines; panics after 30 s.
    fn wait_lines(&self, name: &str, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.lines(name);
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: {} of {n} lines after 30 s; stderr:\n{}",
                lines.len(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("stderr.txt")).unwrap_or_default()
    }

    /// The value of the metric sample `name` (with its labels, if any).
    fn metric(&self, name: &str) -> f64 {
        let start = Instant::now();
        loop {
            let m = metrics(&format!("127.0.0.1:{}", self.port));
            if let Some(v) = m.get(name) {
                return *v;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no {name} in {m:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_exit(agent: &mut Agent, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = agent.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "the agent did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(agent: &mut Agent) -> ExitStatus {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    wait_exit(agent, Duration::from_secs(10))
}

fn nest(levels: usize) -> String {
    r#"{"":"#.repeat(levels) + "1" + &"}".repeat(levels)
}

#[test]
fn a_line_nested_7000_deep_is_a_counted_failure_and_the_agent_goes_on() {
    let s = Setup::new("  - type: parse_json\n    flatten: \".\"\n");
    let hostile = nest(7_000);
    assert!(hostile.len() > 35_000);
    s.append(&format!("{{\"n\":1}}\n{hostile}\n{{\"n\":3}}\n"));
    let mut agent = s.start(None);
    let out = s.wait_lines("out.json", 3);
    assert_eq!(out[0], r#"{"n":1}"#);
    assert!(
        out[1].starts_with(r#"{"message":"{\"\":{\"\":"#),
        "the failed line is kept unchanged: {}",
        &out[1][..60]
    );
    assert_eq!(out[2], r#"{"n":3}"#);
    assert_eq!(
        s.metric("weir_processor_failures_total{component=\"processors[0].parse_json\"}"),
        1.0
    );
    assert!(agent.try_wait().unwrap().is_none(), "the agent is still running");
    s.append("{\"n\":4}\n");
    assert_eq!(s.wait_lines("out.json", 4)[3], r#"{"n":4}"#);
    assert!(stop(&mut agent).success(), "stderr:\n{}", s.stderr());
}

#[test]
fn a_record_the_agent_dies_on_costs_two_restarts_then_only_itself() {
    let s = Setup::new("  - type: parse_json\n");
    let n = 2_000;
    let poison = 1_000;
    let mut text = String::new();
    for i in 0..n {
        if i == poison {
            text.push_str(&format!("{{\"n\":{i},\"POISON\":true}}\n"));
        } else {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
    }
    s.append(&text);

    // First start: dies on the batch holding the record.
    let mut agent = s.start(Some("POISON"));
    let status = wait_exit(&mut agent, Duration::from_secs(30));
    assert!(!status.success(), "the injected abort happened: {status:?}");
    assert!(
        s.path("data/inflight").read_dir().unwrap().next().is_some(),
        "a slot was left set"
    );
    // Second start: the batch goes one event at a time; dies on the record itself.
    let mut agent = s.start(Some("POISON"));
    let status = wait_exit(&mut agent, Duration::from_secs(30));
    assert!(!status.success(), "{status:?}");
    let suspects = fs::read_to_string(s.path("data/suspects.json")).unwrap();
    assert!(suspects.contains("app.log"), "{suspects}");

    // Third start: the record is set aside; everything else is delivered, and the agent goes on.
    let mut agent = s.start(Some("POISON"));
    let out = s.wait_lines("out.json", n - 1);
    let want: Vec<String> = (0..n)
        .filter(|&i| i != poison)
        .map(|i| format!("{{\"n\":{i}}}"))
        .collect();
    assert_eq!(out, want, "every other line, once, in order");
    let dead = s.wait_lines("dead.json", 1);
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].starts_with(r#"{"message":"{\"n\":1000,\"POISON\":true}""#),
        "the record as read, unprocessed: {}",
        dead[0]
    );
    assert!(dead[0].contains("quarantined: the agent died twice"), "{}", dead[0]);
    assert_eq!(s.metric("weir_quarantined_events_total"), 1.0);
    assert_eq!(s.metric("weir_crash_batches_recovered_total"), 1.0);
    assert!(s.metric("weir_guarded_batches_total") >= 1.0);
    assert!(s.stderr().contains("quarantined"), "logged:\n{}", s.stderr());
    s.append("{\"n\":2000}\n");
    assert_eq!(s.wait_lines("out.json", n)[n - 1], r#"{"n":2000}"#);
    assert!(stop(&mut agent).success(), "stderr:\n{}", s.stderr());

    // A clean start after that: nothing in flight, nothing guarded, nothing read twice.
    let mut agent = s.start(None);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.metric("weir_crash_batches_recovered_total"), 0.0);
    assert_eq!(s.metric("weir_guarded_batches_total"), 0.0);
    assert!(
        !s.path("data/suspects.json").exists(),
        "delivered suspects are forgotten"
    );
    assert!(stop(&mut agent).success());
    assert_eq!(s.lines("out.json").len(), n);
}
