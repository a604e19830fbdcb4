//! Follow mode, end to end: the `weir` binary tails files that are appended to, rotated,
//! copytruncated, truncated and deleted, is stopped and killed, and must lose nothing.
//!
//! Every line written is numbered; the output file is read back and each number counted.
//! Each test bounds its own time.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::agent::weir_run;
use support::lines::{assert_exactly_once, counts};
use support::node::Agent;

/// A test's folder: logs, data dir, output, config.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(extra_input: &str) -> Setup {
        Setup::with_output(extra_input, |s| {
            format!("  - type: file\n    path: {}\n    format: raw\n", s.out().display())
        })
    }

    /// With the outputs `outputs` writes (YAML list items).
    fn with_output(extra_input: &str, outputs: impl Fn(&Setup) -> String) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let s = Setup { dir };
        let cfg = format!(
            "data_dir: {data}\ncheckpoint_interval: 50ms\nshutdown_timeout: 5s\n\
             inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n    rotate_wait: 500ms\n{extra_input}\
             outputs:\n{outputs}",
            data = s.path("data").display(),
            logs = s.path("logs").display(),
            outputs = outputs(&s),
        );
        fs::write(s.path("pipeline.yaml"), cfg).unwrap();
        s
    }

    /// The committed offset saved for the file now at `path` (by device and inode).
    fn saved_offset(&self, path: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).ok()?;
        let text = fs::read_to_string(self.path("data/checkpoints.json")).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["files"]
            .as_array()?
            .iter()
            .find(|e| e["dev"] == meta.dev() && e["ino"] == meta.ino())
            .and_then(|e| e["offset"].as_u64())
    }

    /// Waits until the saved checkpoint of `path` covers all of it.
    fn wait_saved_to_end(&self, path: &Path) {
        let size = fs::metadata(path).unwrap().len();
        let start = Instant::now();
        while self.saved_offset(path) != Some(size) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "checkpoint of {} saved at {:?}, not its size {size}",
                path.display(),
                self.saved_offset(path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn log(&self) -> PathBuf {
        self.path("logs/app.log")
    }

    fn out(&self) -> PathBuf {
        self.path("out.log")
    }

    fn start(&self) -> Agent {
        Agent(
            weir_run(&self.path("pipeline.yaml"))
                .stderr(File::create(self.path("stderr.txt")).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    /// How many times each line number is in the output.
    fn counts(&self) -> BTreeMap<u64, u32> {
        counts(&self.out())
    }

    /// Waits until every line in `0..n` is out (at least once); panics after `limit`.
    fn wait_for(&self, n: u64, limit: Duration) -> BTreeMap<u64, u32> {
        let start = Instant::now();
        loop {
            let counts = self.counts();
            if (0..n).all(|i| counts.contains_key(&i)) {
                return counts;
            }
            if start.elapsed() > limit {
                let missing: Vec<u64> = (0..n).filter(|i| !counts.contains_key(i)).take(20).collect();
                let stderr = fs::read_to_string(self.path("stderr.txt")).unwrap_or_default();
                panic!(
                    "after {limit:?}: {} of {n} lines missing, first {missing:?}\nstderr:\n{stderr}",
                    (0..n).filter(|i| !counts.contains_key(i)).count()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn line(n: u64) -> String {
    format!("line-{n:08} {}\n", "x".repeat((n % 50) as usize))
}

fn append(path: &Path, from: u64, to: u64) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut buf = String::new();
    for n in from..to {
        buf.push_str(&line(n));
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// logrotate's rename rotation keeping `keep` old files: app.log.{keep-1} -> app.log.{keep},
/// ..., app.log -> app.log.1. The application then writes to a new app.log.
fn rotate(s: &Setup, keep: u32) {
    for i in (1..keep).rev() {
        let from = s.path(&format!("logs/app.log.{i}"));
        if from.exists() {
            fs::rename(from, s.path(&format!("logs/app.log.{}", i + 1))).unwrap();
        }
    }
    fs::rename(s.log(), s.path("logs/app.log.1")).unwrap();
}

fn terminate(child: &mut Agent) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let limit = Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "the agent did not exit within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn appended_lines_come_out_within_a_second_and_sigterm_exits_zero() {
    let s = Setup::new("");
    append(&s.log(), 0, 10);
    let mut agent = s.start();
    s.wait_for(10, Duration::from_secs(10));
    let t = Instant::now();
    append(&s.log(), 10, 20);
    s.wait_for(20, Duration::from_secs(5));
    let latency = t.elapsed();
    assert!(latency < Duration::from_secs(1), "appended lines took {latency:?}");
    let (status, took) = terminate(&mut agent);
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert_exactly_once(&s.counts(), 20);
}

#[test]
fn restart_resumes_at_the_checkpoint_exactly_once() {
    let s = Setup::new("");
    append(&s.log(), 0, 1000);
    let mut agent = s.start();
    s.wait_for(1000, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    // Written while the agent was down.
    append(&s.log(), 1000, 2000);
    let mut agent = s.start();
    let counts = s.wait_for(2000, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, 2000);
    assert_exactly_once(&s.counts(), 2000);
}

#[test]
fn rename_rotation_at_a_high_rate_loses_nothing() {
    let s = Setup::new("");
    let mut agent = s.start();
    // Rotation starts once the agent is up (a file rotated away before it ever ran is not
    // its to find).
    append(&s.log(), 0, 1);
    s.wait_for(1, Duration::from_secs(10));
    let total = 20_000u64;
    let per_file = 500u64;
    let mut n = 1;
    let mut rotations = 0;
    while n < total {
        // The application writes 500 lines in 5 bursts over about 15 ms, then the file is
        // rotated: a new file every 15 ms or so, the last three kept.
        for _ in 0..5 {
            append(&s.log(), n, n + per_file / 5);
            n += per_file / 5;
            std::thread::sleep(Duration::from_millis(3));
        }
        rotate(&s, 3);
        rotations += 1;
    }
    let counts = s.wait_for(n, Duration::from_secs(20));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, n);
    assert_eq!(rotations, 40);
}

#[test]
fn copytruncate_loses_nothing() {
    let s = Setup::new("");
    let mut agent = s.start();
    // The writer keeps its descriptor (O_APPEND), as an application does under copytruncate.
    let mut writer = OpenOptions::new().create(true).append(true).open(s.log()).unwrap();
    let total = 6_000u64;
    let mut n = 0;
    while n < total {
        for _ in 0..200 {
            writer.write_all(line(n).as_bytes()).unwrap();
            n += 1;
        }
        if n % 1000 == 0 {
            // logrotate's copytruncate: copy, then truncate in place.
            fs::copy(s.log(), s.path("logs/app.log.1")).unwrap();
            writer.set_len(0).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let counts = s.wait_for(total, Duration::from_secs(20));
    assert!(terminate(&mut agent).0.success());
    // At-least-once: a copytruncate may repeat what the copy and the file both had.
    assert_eq!(counts.len() as u64, total);
}

#[test]
fn truncation_is_read_again_from_the_start() {
    let s = Setup::new("");
    append(&s.log(), 0, 500);
    let mut agent = s.start();
    s.wait_for(500, Duration::from_secs(10));
    // Truncated and written again with fewer bytes.
    File::create(s.log()).unwrap();
    append(&s.log(), 500, 600);
    let counts = s.wait_for(600, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, 600);
}

#[test]
fn a_deleted_file_is_read_to_its_end() {
    let s = Setup::new("");
    append(&s.log(), 0, 1);
    let mut agent = s.start();
    s.wait_for(1, Duration::from_secs(10));
    // 200k lines (about 8 MB), deleted at once: the open descriptor still reads them.
    append(&s.log(), 1, 200_000);
    fs::remove_file(s.log()).unwrap();
    let counts = s.wait_for(200_000, Duration::from_secs(30));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, 200_000);
}

#[test]
fn a_new_file_on_a_reused_inode_is_read_from_its_start() {
    use std::os::unix::fs::MetadataExt;
    let s = Setup::new("");
    append(&s.log(), 0, 100);
    let old_ino = fs::metadata(s.log()).unwrap().ino();
    let mut agent = s.start();
    s.wait_for(100, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    // Deleted and replaced by a longer file while the agent is down; the file system may
    // well give the new file the same inode. Its checkpoint must not be reused.
    fs::remove_file(s.log()).unwrap();
    append(&s.log(), 100, 400);
    let reused = fs::metadata(s.log()).unwrap().ino() == old_ino;
    let mut agent = s.start();
    let counts = s.wait_for(400, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, 400);
    eprintln!("inode reused: {reused}");
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let s = Setup::new("");
    let mut agent = s.start();
    append(&s.log(), 0, 1);
    s.wait_for(1, Duration::from_secs(10));
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let kills = 5;
    let mut n = 1u64;
    for _ in 0..kills {
        // Write for a random while, rotating once at a random moment (logrotate keeping five
        // files, so a file rotated while the agent is down is still there to finish), then
        // kill the agent mid-way.
        let until = Instant::now() + Duration::from_millis(200 + next(400));
        let rotate_at = Instant::now() + Duration::from_millis(next(600));
        let mut rotated = false;
        while Instant::now() < until {
            append(&s.log(), n, n + 100);
            n += 100;
            if !rotated && Instant::now() >= rotate_at {
                rotate(&s, 5);
                rotated = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        agent.kill().unwrap();
        agent.wait().unwrap();
        agent = s.start();
    }
    let counts = s.wait_for(n, Duration::from_secs(30));
    assert!(terminate(&mut agent).0.success());
    let duplicates: u64 = counts.values().map(|c| u64::from(c - 1)).sum();
    // A batch is at most one chunk (1 MiB) of lines of at least 15 bytes.
    let one_batch = (1u64 << 20) / 15;
    eprintln!("{n} lines, {kills} kills, {duplicates} duplicates");
    assert!(
        duplicates <= kills * one_batch,
        "{duplicates} duplicates for {kills} kills"
    );
    assert_eq!(counts.len() as u64, n);
}

#[test]
fn sigterm_during_a_large_ingest_then_restart_gives_every_line_exactly_once() {
    let s = Setup::new("");
    let total = 400_000u64; // about 16 MB
    append(&s.log(), 0, total);
    let mut agent = s.start();
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = terminate(&mut agent);
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?} (shutdown_timeout is 5s)"
    );
    let mut agent = s.start();
    let counts = s.wait_for(total, Duration::from_secs(60));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, total);
}

#[test]
fn multiline_records_are_flushed_after_flush_timeout() {
    let s = Setup::new("    multiline: { start: '^line-' , continue: '^\\s' }\n    flush_timeout: 200ms\n");
    let mut agent = s.start();
    let mut f = OpenOptions::new().create(true).append(true).open(s.log()).unwrap();
    f.write_all(b"line-00000000 first\n  at a\n  at b\nline-00000001 second\n  at c\n")
        .unwrap();
    // The second record stays open until flush_timeout: no line comes to close it.
    let t = Instant::now();
    let want = "line-00000000 first\n  at a\n  at b\nline-00000001 second\n  at c\n";
    while fs::read_to_string(s.out()).unwrap_or_default() != want {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "output: {:?}",
            fs::read_to_string(s.out())
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t.elapsed();
    assert!(terminate(&mut agent).0.success());
    assert!(
        took >= Duration::from_millis(150),
        "flushed after {took:?}, before flush_timeout"
    );
}

/// logrotate's copytruncate while the agent is down: the copy holds lines written after the
/// last checkpoint and before the copy, the file starts again. The next start finds the
/// copy by the checkpoint's identity and reads it from the checkpoint: every line once.
#[test]
fn copytruncate_while_the_agent_is_down_reads_the_rest_from_the_copy() {
    let s = Setup::new("");
    append(&s.log(), 0, 500);
    let mut agent = s.start();
    s.wait_for(500, Duration::from_secs(10));
    s.wait_saved_to_end(&s.log());
    agent.kill().unwrap();
    agent.wait().unwrap();
    // Written while the agent is down, then copied and truncated, then written again.
    append(&s.log(), 500, 800);
    fs::copy(s.log(), s.path("logs/app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(s.log())
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&s.log(), 800, 900);
    let mut agent = s.start();
    let counts = s.wait_for(900, Duration::from_secs(10));
    assert!(terminate(&mut agent).0.success());
    assert_exactly_once(&counts, 900);
}

/// A tiny HTTP server whose gate the test opens and closes: open, it answers 200 and keeps
/// the body; closed, it reads the request, keeps the body apart and drops the connection,
/// so the agent's output retries and acknowledges nothing.
struct Gate {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    refused: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gate {
    fn start() -> Gate {
        use std::io::{BufRead, BufReader, Read};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gate = Gate {
            addr: listener.local_addr().unwrap(),
            open: Default::default(),
            accepted: Default::default(),
            refused: Default::default(),
        };
        let (open, accepted, refused) = (gate.open.clone(), gate.accepted.clone(), gate.refused.clone());
        // Runs until the test process ends (the listener is never closed).
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (open, accepted, refused) = (open.clone(), accepted.clone(), refused.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let mut len = None;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((k, v)) = line.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                len = v.trim().parse::<usize>().ok();
                            }
                        }
                        let mut body = vec![0; len.expect("a Content-Length")];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let body = String::from_utf8(body).unwrap();
                        if !open.load(Ordering::SeqCst) {
                            refused.lock().unwrap().push(body);
                            let _ = conn.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        accepted.lock().unwrap().push(body);
                        if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        gate
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many times each line number was accepted.
    fn accepted(&self) -> BTreeMap<u64, u32> {
        let mut counts = BTreeMap::new();
        for body in self.accepted.lock().unwrap().iter() {
            for n in numbers(body) {
                *counts.entry(n).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Whether a refused request held line `n`.
    fn refused_line(&self, n: u64) -> bool {
        self.refused.lock().unwrap().iter().any(|b| numbers(b).contains(&n))
    }

    fn wait_accepted(&self, n: u64, limit: Duration) -> BTreeMap<u64, u32> {
        let start = Instant::now();
        loop {
            let counts = self.accepted();
            if (0..n).all(|i| counts.contains_key(&i)) {
                return counts;
            }
            let missing: Vec<u64> = (0..n).filter(|i| !counts.contains_key(i)).take(10).collect();
            assert!(
                start.elapsed() < limit,
                "after {limit:?}, lines not accepted: {missing:?}..."
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The line numbers in a JSON-lines body of `{"message":"line-N ..."}` events.
fn numbers(body: &str) -> Vec<u64> {
    body.lines()
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap();
            let message = event["message"].as_str().unwrap();
            message[5..13].parse().unwrap()
        })
        .collect()
}

/// The window the issue names: the agent read the bytes that were only in a copytruncate's
/// copy, and truncation moved it to the file's new contents, but the output had not
/// delivered those bytes when the agent was SIGKILLed. The checkpoint must still say they
/// are owed, and the next start must read them from the copy.
///
/// Deterministic: the output (an HTTP server) refuses everything from the copytruncate on,
/// the test waits until the copy's last line was sent (and refused) and checkpoints were
/// saved, kills the agent, then lets the server accept.
#[test]
fn sigkill_before_a_copytruncate_copy_is_delivered_loses_nothing() {
    let gate = Gate::start();
    gate.set_open(true);
    let s = Setup::with_output("", |_| {
        format!(
            "  - type: http\n    uri: http://{}/logs\n    batch: {{ timeout: 10ms }}\n    \
             retry: {{ initial_backoff: 20ms, max_backoff: 100ms }}\n",
            gate.addr
        )
    });
    let mut writer = OpenOptions::new().create(true).append(true).open(s.log()).unwrap();
    let mut agent = s.start();
    for n in 0..500 {
        writer.write_all(line(n).as_bytes()).unwrap();
    }
    gate.wait_accepted(500, Duration::from_secs(10));
    s.wait_saved_to_end(&s.log());

    gate.set_open(false);
    // logrotate copytruncate, with lines 500..800 written just before the copy and not read
    // by the agent yet: they are only in the copy once the file is truncated.
    fs::copy(s.log(), s.path("logs/app.log.1")).unwrap();
    append(&s.path("logs/app.log.1"), 500, 800);
    writer.set_len(0).unwrap();
    for n in 800..900 {
        writer.write_all(line(n).as_bytes()).unwrap();
    }
    let start = Instant::now();
    while !gate.refused_line(799) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the copy's lines were never sent\nstderr:\n{}",
            fs::read_to_string(s.path("stderr.txt")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Several checkpoint saves (every 50 ms) happen in the window.
    std::thread::sleep(Duration::from_millis(300));
    agent.kill().unwrap();
    agent.wait().unwrap();

    gate.set_open(true);
    let mut agent = s.start();
    let counts = gate.wait_accepted(900, Duration::from_secs(15));
    assert!(terminate(&mut agent).0.success());
    // At-least-once after a kill: what was delivered and checkpointed before it (0..500)
    // comes once, the rest may come again, nothing is missing.
    let repeated: Vec<u64> = (0..500).filter(|n| counts[n] > 1).take(10).collect();
    assert!(
        repeated.is_empty(),
        "delivered before the kill, yet repeated: {repeated:?}"
    );
    assert_eq!(counts.len(), 900, "unexpected line numbers");
}
