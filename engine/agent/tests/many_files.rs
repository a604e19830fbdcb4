//! Follow mode with many files and few descriptors: 1,000 files under one glob, tailed with
//! `max_open_files: 64`, lines appended to random files in rounds. Every line must come out
//! exactly once, and the agent's open descriptors (counted in `/proc/<pid>/fd`) must stay
//! under `max_open_files` plus a small allowance for its own (stdio, the output, inotify,
//! the checkpoint file, a directory being listed).
//!
//! The child runs with `RLIMIT_NOFILE` at 256, well under the 1,000 files: an agent that
//! kept every file open would fail to open files (and lose lines) instead of passing.
//!
//! Linux only (`/proc`). Bounded in time: about 25 s on 2 cores in a debug build, most of it
//! the agent catching up (see the note in the test).
//!
//! And 10,000 short-lived files, created, read and deleted in waves: the checkpoint file
//! must stay as small as what is alive, not grow with every file ever seen.

#![cfg(target_os = "linux")]

mod support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::lines;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
const FILES: usize = 1000;
const MAX_OPEN: usize = 64;
/// Descriptors the agent has besides its tailed files: stdin/stdout/stderr, the output file,
/// inotify and the event loop behind it, the checkpoint file while saved, a file opened to
/// check its signature, a directory being listed.
const OWN_FDS: usize = 40;
const RLIMIT: u64 = 256;

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

/// Entries in `/proc/<pid>/fd`; `None` once the process is gone.
fn open_fds(pid: u32) -> Option<usize> {
    fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|d| d.count())
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the agent did not exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tiny deterministic generator (xorshift64): the same files are picked on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, m: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % m
    }
}

#[test]
fn a_thousand_files_with_64_descriptors_every_line_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = dir.path().join("out.log");
    let file = |i: usize| -> PathBuf { logs.join(format!("f{i:04}.log")) };
    let cfg = format!(
        "data_dir: {data}\ncheckpoint_interval: 50ms\nshutdown_timeout: 5s\n\
         inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n    \
         rotate_wait: 500ms\n    max_open_files: {MAX_OPEN}\n\
         outputs:\n  - type: file\n    path: {out}\n    format: raw\n",
        data = dir.path().join("data").display(),
        logs = logs.display(),
        out = out.display(),
    );
    fs::write(dir.path().join("pipeline.yaml"), cfg).unwrap();

    // Every file has a line before the agent starts: all 1,000 are found at once.
    let mut n = 0u64;
    for i in 0..FILES {
        append(&file(i), n, n + 1);
        n += 1;
    }

    let mut cmd = Command::new(WEIR);
    cmd.args(["run", "-c"])
        .arg(dir.path().join("pipeline.yaml"))
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("stderr.txt")).unwrap());
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: RLIMIT as libc::rlim_t,
                rlim_max: RLIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut agent = cmd.spawn().unwrap();

    // Count the agent's descriptors while it runs.
    let pid = agent.id();
    let done = Arc::new(AtomicBool::new(false));
    let max_fds = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, max_fds, samples) = (done.clone(), max_fds.clone(), samples.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(fds) = open_fds(pid) {
                    max_fds.fetch_max(fds, Ordering::Relaxed);
                    samples.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Rounds: 1 to 3 lines to each of 150 random files, every 100 ms; each round touches far
    // more files than may be open, so idle files are closed and reopened all along.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rounds = 30;
    for _ in 0..rounds {
        for _ in 0..150 {
            let i = rng.below(FILES as u64) as usize;
            let k = 1 + rng.below(3);
            append(&file(i), n, n + k);
            n += k;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Wait for every line. Catching up takes most of the test's time: a file that just had
    // data cannot be closed for `flush_timeout` (1 s by default), even without multiline, so
    // with 64 descriptors about 64 files are served per second or so. (With
    // `flush_timeout: 50ms` the whole test takes about 8 s.)
    let limit = Duration::from_secs(45);
    let wait = Instant::now();
    let counts = loop {
        let counts = lines::counts(&out);
        if counts.len() as u64 >= n || wait.elapsed() > limit {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let still_running = agent.try_wait().unwrap().is_none();
    let status = if still_running {
        Some(terminate(&mut agent))
    } else {
        None
    };
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let stderr = fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
    let max_fds = max_fds.load(Ordering::Relaxed);
    eprintln!(
        "{FILES} files, {n} lines, all out after {took:?}; at most {max_fds} descriptors open \
         ({} samples)",
        samples.load(Ordering::Relaxed)
    );

    assert!(still_running, "the agent exited early\nstderr:\n{stderr}");
    let missing: Vec<u64> = (0..n).filter(|i| !counts.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "after {limit:?}: {} of {n} lines missing, first {:?}\nstderr:\n{stderr}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    lines::assert_exactly_once(&lines::counts(&out), n);
    assert!(
        samples.load(Ordering::Relaxed) > 10,
        "too few descriptor samples to mean anything"
    );
    assert!(
        max_fds <= MAX_OPEN + OWN_FDS,
        "{max_fds} descriptors open at once (max_open_files {MAX_OPEN} + {OWN_FDS})"
    );
    let status = status.expect("running");
    assert!(status.success(), "exit status {status}\nstderr:\n{stderr}");
}

/// Entries of `checkpoints.json` (none when it is not there yet), keyed by device and inode,
/// with their offsets.
fn saved_checkpoints(data: &Path) -> std::collections::HashMap<(u64, u64), u64> {
    let Ok(text) = fs::read_to_string(data.join("checkpoints.json")) else {
        return Default::default();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (e["dev"].as_u64().unwrap(), e["ino"].as_u64().unwrap()),
                e["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The acceptance point of issue 17: 10,000 short-lived files, created, read and deleted in
/// waves of 500 (more than `max_open_files`, so some are closed to save descriptors when they
/// are deleted). Once mid-way the agent is SIGKILLed after it delivered a wave, the wave is
/// deleted while it is down, and the restarted agent must prune those checkpoints (gone for
/// `checkpoint_prune_after`). Every line comes out exactly once, `checkpoints.json` never
/// holds more than about a wave, and it ends empty.
#[test]
fn ten_thousand_short_lived_files_leave_a_small_checkpoint_file() {
    const WAVES: usize = 20;
    const PER_WAVE: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out.log");
    let admin = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let cfg = format!(
        "data_dir: {data}\ncheckpoint_interval: 100ms\ncheckpoint_prune_after: 1s\nshutdown_timeout: 5s\n\
         admin: {{ address: \"{admin}\" }}\n\
         inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n    \
         rotate_wait: 200ms\n    flush_timeout: 50ms\n    max_open_files: 256\n\
         outputs:\n  - type: file\n    path: {out}\n    format: raw\n",
        data = data.display(),
        logs = logs.display(),
        out = out.display(),
    );
    fs::write(dir.path().join("pipeline.yaml"), cfg).unwrap();
    let start_agent = || {
        support::node::Agent(
            support::agent::weir_run(&dir.path().join("pipeline.yaml"))
                .stderr(support::agent::append_to(&dir.path().join("stderr.txt")))
                .spawn()
                .unwrap(),
        )
    };
    let stderr = || fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
    let wait_lines = |n: u64, limit: Duration| {
        let start = Instant::now();
        loop {
            let counts = lines::counts(&out);
            if counts.len() as u64 >= n {
                return counts;
            }
            assert!(
                start.elapsed() < limit,
                "after {limit:?}: {} of {n} lines out\nstderr:\n{}",
                counts.len(),
                stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let started = Instant::now();
    let mut agent = start_agent();
    let mut n = 0u64;
    let mut most_entries = 0;
    let mut largest = 0u64;
    let killed_wave = WAVES / 2;
    for wave in 0..WAVES {
        let files: Vec<PathBuf> = (0..PER_WAVE)
            .map(|i| logs.join(format!("w{wave:02}-{i:03}.log")))
            .collect();
        for f in &files {
            append(f, n, n + 2);
            n += 2;
        }
        wait_lines(n, Duration::from_secs(20));
        if wave == killed_wave {
            // Killed after the wave is delivered and checkpointed; the files go while it is
            // down, so only pruning can drop their checkpoints.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let saved = saved_checkpoints(&data);
                let all = files.iter().all(|f| {
                    use std::os::unix::fs::MetadataExt;
                    let m = fs::metadata(f).unwrap();
                    saved.get(&(m.dev(), m.ino())) == Some(&m.len())
                });
                // Earlier waves' files, deleted while it ran, are let go and forgotten first.
                if all && saved.len() == files.len() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "wave {wave} never checkpointed alone and in full ({} entries)",
                    saved.len()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            agent.kill().unwrap();
            agent.wait().unwrap();
            for f in &files {
                fs::remove_file(f).unwrap();
            }
            agent = start_agent();
            // Pruned about checkpoint_prune_after (1s) later. Waited for here: the next
            // wave's files would otherwise take many of the freed inodes, and a new file on
            // a checkpointed inode replaces the stale checkpoint before pruning can.
            let deadline = Instant::now() + Duration::from_secs(10);
            while support::agent::metrics(&admin).get("weir_checkpoints_pruned_total") != Some(&(PER_WAVE as f64)) {
                assert!(
                    Instant::now() < deadline,
                    "the deleted wave's checkpoints were not pruned: {:?}\nstderr:\n{}",
                    support::agent::metrics(&admin).get("weir_checkpoints_pruned_total"),
                    stderr()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            for f in &files {
                fs::remove_file(f).unwrap();
            }
        }
        let entries = saved_checkpoints(&data).len();
        most_entries = most_entries.max(entries);
        largest = largest.max(fs::metadata(data.join("checkpoints.json")).map_or(0, |m| m.len()));
    }
    // Every file is gone: the released ones are forgotten within rotate_wait, the pruned ones
    // within checkpoint_prune_after.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = support::agent::metrics(&admin);
        if m.get("weir_checkpoint_entries") == Some(&0.0) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoint entries left: {:?}\nstderr:\n{}",
            m.get("weir_checkpoint_entries"),
            stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = terminate(&mut agent);
    assert!(status.success(), "exit status {status}\nstderr:\n{}", stderr());
    let counts = lines::counts(&out);
    let size = fs::metadata(data.join("checkpoints.json")).unwrap().len();
    eprintln!(
        "{} files, {n} lines in {:?}; checkpoints.json: {size} bytes at the end, at most {largest} \
         bytes ({most_entries} entries) between waves; {} checkpoints pruned",
        WAVES * PER_WAVE,
        started.elapsed(),
        m["weir_checkpoints_pruned_total"]
    );
    lines::assert_exactly_once(&counts, n);
    assert_eq!(
        m["weir_checkpoints_pruned_total"], PER_WAVE as f64,
        "the wave deleted while the agent was down is pruned, nothing else needs to be"
    );
    assert!(
        most_entries <= 2 * PER_WAVE,
        "{most_entries} entries between waves: the file grows with the files seen"
    );
    assert!(size < 100, "checkpoints.json is {size} bytes with no file left");
}
