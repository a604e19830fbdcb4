//! `weir run --exec -- CMD` with real child processes: the command's streams become events
//! and are copied unchanged to Weir's own, Weir exits with the command's code once every
//! event is delivered, signals go to the command, orphans are reaped, and a command or a
//! pipeline that cannot run fails before anything starts.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::WEIR;
use support::http_server::{Action, Server};

/// A pipeline writing every event to `out.jsonl` in `dir`, with `extra` at its top level.
fn pipeline(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    let text = format!(
        "data_dir: {data}\n{extra}outputs:\n  - type: file\n    path: {out}\n",
        data = dir.join("data").display(),
        out = dir.join("out.jsonl").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn weir_exec(config: &Path, command: &[&str]) -> Command {
    let mut cmd = Command::new(WEIR);
    cmd.args(["run", "-c"])
        .arg(config)
        .args(["--exec", "--"])
        .args(command)
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn events(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits for `child` at most `limit` (reading its stdout and stderr meanwhile); its output.
fn wait(child: Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().unwrap();
            panic!(
                "weir did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn both_streams_are_delivered_in_order_and_stdout_passes_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(dir.path(), "");
    let script = "i=0; while [ $i -lt 10000 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done; \
                  printf 'last words'; exit 3";
    let out = wait(
        weir_exec(&config, &["sh", "-c", script]).spawn().unwrap(),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // Weir's stdout is what the command wrote there, byte for byte.
    let mut expected = String::new();
    for i in 0..10000 {
        expected += &format!("out {i}\n");
    }
    expected += "last words";
    assert_eq!(out.stdout.len(), expected.len());
    assert!(
        out.stdout == expected.as_bytes(),
        "Weir's stdout differs from the command's"
    );
    // And its stderr has the command's, in order (Weir logs only warnings here).
    let err_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("err ")).collect();
    assert_eq!(err_lines.len(), 10000);

    let events = events(&dir.path().join("out.jsonl"));
    assert_eq!(events.len(), 20001);
    let stream = |name: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["stream"] == name)
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    let mut want_out: Vec<String> = (0..10000).map(|i| format!("out {i}")).collect();
    want_out.push("last words".into());
    assert_eq!(stream("stdout"), want_out);
    assert_eq!(
        stream("stderr"),
        (0..10000).map(|i| format!("err {i}")).collect::<Vec<_>>()
    );
}

#[test]
fn sigterm_goes_to_the_command_and_its_last_words_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(dir.path(), "");
    let script = "trap 'echo trapped; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let child = weir_exec(&config, &["sh", "-c", script]).spawn().unwrap();
    let out_path = dir.path().join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while events(&out_path).is_empty() {
        assert!(Instant::now() < deadline, "`ready` never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    let messages: Vec<Value> = events(&out_path).into_iter().map(|e| e["message"].clone()).collect();
    assert_eq!(messages, ["ready", "trapped"]);

    // A command killed by a signal: 128 + its number.
    let out = wait(
        weir_exec(&config, &["sh", "-c", "kill -9 $$"]).spawn().unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn an_output_down_at_the_end_is_waited_for_and_a_deadline_is_counted() {
    // Down (connections closed unanswered) until 3 s from now, then up: Weir waits for it.
    let dir = tempfile::tempdir().unwrap();
    let up_at = Instant::now() + Duration::from_secs(3);
    let server = Server::start(move |_| {
        if Instant::now() < up_at {
            Action::Drop
        } else {
            Action::Ok
        }
    });
    let http = |timeout: &str| {
        format!(
            "shutdown_timeout: {timeout}\ndata_dir: {data}\noutputs:\n  - type: http\n    uri: {uri}\n    \
             retry: {{ initial_backoff: 50ms, max_backoff: 200ms }}\n",
            data = dir.path().join("data").display(),
            uri = server.uri("/ingest"),
        )
    };
    let config = dir.path().join("http.yaml");
    std::fs::write(&config, http("30s")).unwrap();
    let script = "for i in 1 2 3 4 5; do echo \"line $i\"; done; exit 4";
    let out = wait(
        weir_exec(&config, &["sh", "-c", script]).spawn().unwrap(),
        Duration::from_secs(40),
    );
    assert!(Instant::now() >= up_at, "exited before the output was back");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = server.accepted_lines();
    assert_eq!(lines.len(), 5, "{lines:?}");

    // A deadline shorter than the outage: the command's code, the loss said and counted.
    let down = Server::start(|_| Action::Drop);
    std::fs::write(
        &config,
        http("1s").replace(&server.uri("/ingest"), &down.uri("/ingest")),
    )
    .unwrap();
    let out = wait(
        weir_exec(&config, &["sh", "-c", script]).spawn().unwrap(),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("weir: 5 event(s) not delivered before shutdown_timeout"),
        "{stderr}"
    );
    // ... or a failure, for operators who want the job to fail then.
    std::fs::write(
        &config,
        http("1s").replace(&server.uri("/ingest"), &down.uri("/ingest"))
            + "inputs:\n  - type: exec\n    fail_on_undelivered: true\n",
    )
    .unwrap();
    let out = wait(
        weir_exec(&config, &["sh", "-c", script]).spawn().unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The zombies among the children of `pid`.
fn zombie_children(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == pid.to_string() {
            found.push(stat);
        }
    }
    found
}

#[test]
fn a_background_child_is_let_go_and_orphans_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(dir.path(), "");
    // `sleep 1000` keeps the streams open: let go after `linger` (2 s by default).
    let start = Instant::now();
    let out = wait(
        weir_exec(&config, &["sh", "-c", "sleep 1000 & echo hi"])
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("letting it go"), "{stderr}");
    assert_eq!(events(&dir.path().join("out.jsonl"))[0]["message"], "hi");

    // An orphan (its parent, a subshell, exits at once) ends while Weir runs: reaped.
    let child = weir_exec(
        &config,
        &["sh", "-c", "(sleep 0.2 >/dev/null 2>&1 &); echo started; sleep 1.5"],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(900));
    let zombies = zombie_children(child.id());
    let out = wait(child, Duration::from_secs(20));
    assert!(zombies.is_empty(), "zombies left under weir: {zombies:?}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn nothing_starts_when_the_command_or_the_pipeline_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(dir.path(), "");
    let out = wait(
        weir_exec(&config, &["no-such-command-weir", "x"]).spawn().unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command-weir: command not found"));
    std::fs::write(dir.path().join("not-executable"), "#!/bin/sh\n").unwrap();
    let out = wait(
        weir_exec(&config, &[dir.path().join("not-executable").to_str().unwrap()])
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(126));

    // A broken pipeline file: the error with its place, and the command never runs.
    let marker = dir.path().join("ran");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "outputs:\n  - type: file\n    paht: /tmp/x\n").unwrap();
    let out = wait(
        weir_exec(&broken, &["touch", marker.to_str().unwrap()])
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("broken.yaml:3:5"), "{stderr}");
    assert!(!marker.exists(), "the command ran");

    // A run that cannot start (its output cannot be opened) stops the command it started.
    let unopenable = dir.path().join("unopenable.yaml");
    std::fs::write(
        &unopenable,
        "outputs:
  - type: file
    path: /proc/no/such/out.jsonl
",
    )
    .unwrap();
    let out = wait(
        weir_exec(&unopenable, &["sh", "-c", "while :; do echo x; sleep 0.01; done"])
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the command was stopped"), "{stderr}");
}

#[test]
fn files_the_job_writes_are_read_to_their_end_and_the_command_is_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("job.log");
    let address = support::agent::free_address();
    let config = pipeline(
        dir.path(),
        &format!(
            "admin: {{ address: \"{address}\" }}\ninputs:\n  - type: exec\n  - type: file\n    paths: [\"{}\"]\n    \
             poll_interval: 1s\n",
            log.display()
        ),
    );
    // The job says its pid, waits, then writes 2,000 lines to its file and exits at once.
    let script = format!(
        "echo $$; sleep 1; i=0; while [ $i -lt 2000 ]; do echo \"file $i\"; i=$((i+1)); done > {}",
        log.display()
    );
    let child = weir_exec(&config, &["sh", "-c", &script]).spawn().unwrap();
    let out_path = dir.path().join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(first) = events(&out_path).first() {
            break first["message"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the pid line never arrived");
        std::thread::sleep(Duration::from_millis(10));
    };
    let metrics = support::agent::metrics(&address);
    assert!(
        metrics.keys().any(|k| k.starts_with("weir_exec_command_info")
            && k.contains(&format!("pid=\"{pid}\""))
            && k.contains("command=\"sh -c echo $$")),
        "{metrics:?}"
    );
    let out = wait(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let from_file: Vec<String> = events(&out_path)
        .iter()
        .filter(|e| e.get("stream").is_none())
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(from_file, (0..2000).map(|i| format!("file {i}")).collect::<Vec<_>>());
}
