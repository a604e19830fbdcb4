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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::lines::counts;
use support::node::Agent;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A test's folder: logs, data dir, output, config.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(extra_input: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let s = Setup { dir };
        let cfg = format!(
            "data_dir: {data}\ncheckpoint_interval: 50ms\nshutdown_timeout: 5s\n\
             inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n    rotate_wait: 500ms\n{extra_input}\
             outputs:\n  - type: file\n    path: {out}\n    format: raw\n",
            data = s.path("data").display(),
            logs = s.path("logs").display(),
            out = s.out().display(),
        );
        fs::write(s.path("pipeline.yaml"), cfg).unwrap();
        s
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
            Command::new(WEIR)
                .args(["run", "-c"])
                .arg(self.path("pipeline.yaml"))
                .env("WEIR_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
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

fn assert_exactly_once(counts: &BTreeMap<u64, u32>, n: u64) {
    let dups: Vec<(u64, u32)> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, c)| (*k, *c))
        .take(10)
        .collect();
    assert!(dups.is_empty(), "duplicated lines (number, times): {dups:?}");
    assert_eq!(counts.len() as u64, n, "unexpected line numbers in the output");
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
