//! A model-based property test of follow mode (issue 6, 6d).
//!
//! proptest generates sequences of actions on one log file, `logs/app.log`, tailed by the
//! `weir` binary (file -> file, raw): append numbered lines, rotate by rename (logrotate's
//! numbering, `app.log.1` .. `app.log.3`, the oldest dropped), copytruncate, truncate and
//! write again, delete (the next append creates a new file), and restart the agent (SIGTERM,
//! or SIGKILL, then start again), optionally appending to and rotating the file while the
//! agent is down. A model tracks which line is in which file and which lines must come out.
//! At the end every line the model requires is in the output: exactly once when every stop
//! was a SIGTERM, at least once after a SIGKILL; lines the model lets go may be missing, and
//! with clean stops only, are out at most once.
//!
//! # What the agent can promise, and so what the model requires
//!
//! Destructive actions are done at once, not after waiting for the agent to catch up, so the
//! agent meets them with unread bytes. The model requires a line unless the agent could not
//! possibly have read it:
//! - **Appended lines** are required.
//! - **Rename rotation while the agent runs**: the renamed file is read to its end from the
//!   descriptor the agent holds, so its lines stay required if the agent had opened it. The
//!   evidence the agent opened a file is a line of it in the output (or, since every start
//!   waits for a marker line, that it was at `app.log` when the agent started). A file
//!   rotated away before the agent ever opened it is no longer under the globs, so its lines
//!   not out yet are let go.
//! - **Truncation** (in place, then written again): bytes not out yet may have been cut
//!   before they were read; those lines are let go (the agent counts them in `bytes_lost`).
//!   A let-go line may also come out cut short: the agent read part of it (a write still
//!   going on), then the file was truncated; the piece it read goes out as the last line of
//!   the old contents. Any other torn line fails the test.
//! - **copytruncate**: the agent reads what it had not read from the copy, which it knows by
//!   its first bytes: lines stay required if the agent read some of the file's current
//!   contents (since its last truncation); otherwise it cannot tell the copy is one. The
//!   test then waits until they are out: a SIGTERM right after it could otherwise stop the
//!   agent before it saw the truncation. (The next start would look for the copy by the
//!   checkpoint's identity, but the model does not count on it: an identity that signed no
//!   bytes cannot tell its copy.)
//! - **Deletion**: an opened file is read to its end from its descriptor, so its lines stay
//!   required; the test waits for them, since a stop would close that descriptor and the
//!   bytes would be gone with it. Lines of a file deleted before it was opened are let go.
//! - **Restart**: a SIGTERM drains what was read and saves the checkpoints; the next start
//!   resumes exactly there. Rotated files (`app.log.N`, rotated while the agent ran or while
//!   it was down) are found at start by the identity in their checkpoint (device, inode and
//!   first bytes), so the model reads the checkpoint file to know which ones the agent can
//!   find. After a SIGTERM, every rotated file the agent read from since its last truncation
//!   must be there (the test fails otherwise); a file it never read, or one truncated and
//!   written again and then rotated before the agent looked at it again (its checkpoint
//!   describes the old contents, and a rotated file that does not start as its checkpoint
//!   says may be another file on a reused inode), is not found: its lines not out yet are let
//!   go. After a SIGKILL the last save may be up to `checkpoint_interval` old, so a rotated
//!   file without a checkpoint is let go the same way. So are the lines of a file dropped by
//!   rotation while the agent was down.
//!
//! Each case runs in about a second; the whole test (16 cases) in about 20 s on 2 cores.
//! `WEIR_MODEL_CASES=N` runs more cases. On failure the panic message lists the actions (with
//! what the model let go at each) and the missing and duplicated line numbers.

#![cfg(target_os = "linux")]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use weir::delivery::checkpoint::{Checkpoints, FileIdentity, Lookup};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
/// Rotated files kept: `app.log.1` ..= `app.log.KEEP`.
const KEEP: usize = 3;
/// How long to wait for lines the agent owes.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
enum Action {
    /// Append this many lines to `app.log` (created if missing).
    Append(u64),
    /// Rename rotation: `app.log.2` -> `app.log.3`, `app.log.1` -> `app.log.2`,
    /// `app.log` -> `app.log.1`.
    Rotate,
    /// logrotate's copytruncate: shift the numbered files, copy `app.log` to `app.log.1`,
    /// truncate `app.log` in place.
    CopyTruncate,
    /// Truncate `app.log` in place, then write this many lines to it.
    Truncate(u64),
    /// Delete `app.log`.
    Delete,
    /// Stop the agent (SIGTERM, or SIGKILL), append and rotate while it is down, start it.
    Restart {
        kill: bool,
        down_append: u64,
        down_rotate: bool,
    },
}

fn action() -> impl Strategy<Value = Action> {
    // Mostly small appends; sometimes a large one (up to about 1.2 MB) so that a stop
    // often comes while the agent is still reading.
    let lines = prop_oneof![6 => 1u64..400, 1 => 5_000u64..30_000];
    prop_oneof![
        6 => lines.prop_map(Action::Append),
        3 => Just(Action::Rotate),
        2 => Just(Action::CopyTruncate),
        2 => (1u64..300).prop_map(Action::Truncate),
        2 => Just(Action::Delete),
        3 => (prop::bool::weighted(0.3), prop_oneof![1 => Just(0u64), 2 => 1u64..500], any::<bool>())
            .prop_map(|(kill, down_append, down_rotate)| Action::Restart { kill, down_append, down_rotate }),
    ]
}

fn line(n: u64) -> String {
    format!("line-{n:08} {}\n", "x".repeat((n % 50) as usize))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Must be in the output.
    Required,
    /// The agent could not have been sure to read it: may be missing.
    Optional,
}

/// One file (one inode) that has been `app.log`.
#[derive(Debug)]
struct Inc {
    /// Every line ever written to it.
    ever: Vec<u64>,
    /// The lines in it now.
    live: Vec<u64>,
    /// The agent has opened it: a line of it came out.
    opened: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    /// A file rotated by rename.
    Inc(usize),
    /// A copy made by copytruncate (the agent never reads it as a file of its own).
    Copy,
}

/// The output file, read incrementally: how many times each line number came out.
struct Output {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    counts: Vec<u32>,
    /// Output lines that are not whole lines written.
    torn: Vec<String>,
}

impl Output {
    fn refresh(&mut self) {
        let Ok(mut f) = File::open(&self.path) else { return };
        // A run killed in the middle of a write leaves the start of a line at the end of the
        // file, and the next run cuts it off before writing that batch again. If the bytes
        // held here as the unfinished last line are no longer there, they were cut: read
        // again from where they began.
        if !self.partial.is_empty() {
            let start = self.offset - self.partial.len() as u64;
            let mut now = vec![0; self.partial.len()];
            let same = f.seek(SeekFrom::Start(start)).is_ok() && f.read_exact(&mut now).is_ok() && now == self.partial;
            if !same {
                self.offset = start;
                self.partial.clear();
            }
        }
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).unwrap();
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        for l in String::from_utf8(whole).unwrap().lines() {
            let n: Option<usize> = l
                .split_whitespace()
                .next()
                .and_then(|w| w.strip_prefix("line-"))
                .and_then(|d| d.parse().ok());
            // A torn line (a piece of a line, or two pieces joined) is an error of its own:
            // kept to be reported with the actions.
            let Some(n) = n.filter(|&n| Some(l) == line(n as u64).strip_suffix('\n')) else {
                self.torn.push(l.to_string());
                continue;
            };
            if self.counts.len() <= n {
                self.counts.resize(n + 1, 0);
            }
            self.counts[n] += 1;
        }
    }

    fn count(&self, n: u64) -> u32 {
        self.counts.get(n as usize).copied().unwrap_or(0)
    }
}

/// Line numbers as short ranges, for messages: `3-7, 12, 40-41`.
fn ranges(ns: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ns.len() && out.len() < 30 {
        let mut j = i;
        while j + 1 < ns.len() && ns[j + 1] == ns[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            format!("{}", ns[i])
        } else {
            format!("{}-{}", ns[i], ns[j])
        });
        i = j + 1;
    }
    if i < ns.len() {
        out.push("...".into());
    }
    out.join(", ")
}

struct Harness {
    dir: tempfile::TempDir,
    agent: Option<Child>,
    out: Output,
    need: Vec<Need>,
    incs: Vec<Inc>,
    /// The file at `app.log`, if there is one.
    cur: Option<usize>,
    /// `app.log.1` ..= `app.log.KEEP`.
    slots: [Slot; KEEP],
    killed: bool,
    /// The actions so far, with what the model concluded.
    log: Vec<String>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed case must not leave an agent behind.
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let cfg = format!(
            "data_dir: {data}\ncheckpoint_interval: 50ms\nshutdown_timeout: 5s\n\
             inputs:\n  - type: file\n    paths: [\"{logs}/*.log\"]\n    poll_interval: 50ms\n    rotate_wait: 500ms\n\
             outputs:\n  - type: file\n    path: {out}\n    format: raw\n",
            data = dir.path().join("data").display(),
            logs = dir.path().join("logs").display(),
            out = dir.path().join("out.log").display(),
        );
        fs::write(dir.path().join("pipeline.yaml"), cfg).unwrap();
        let out = Output {
            path: dir.path().join("out.log"),
            offset: 0,
            partial: Vec::new(),
            counts: Vec::new(),
            torn: Vec::new(),
        };
        Harness {
            dir,
            agent: None,
            out,
            need: Vec::new(),
            incs: Vec::new(),
            cur: None,
            slots: [Slot::Empty; KEEP],
            killed: false,
            log: Vec::new(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn log_path(&self) -> PathBuf {
        self.path("logs/app.log")
    }

    fn slot_path(&self, i: usize) -> PathBuf {
        self.path(&format!("logs/app.log.{}", i + 1))
    }

    fn note(&mut self, s: String) {
        self.log.push(format!("      {s}"));
    }

    /// Fails the case with the action log and the agent's stderr.
    fn fail(&self, msg: String) -> ! {
        let stderr = fs::read_to_string(self.path("stderr.txt")).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{msg}\nactions:\n{}\nagent stderr (last lines):\n{}",
            self.log.join("\n"),
            tail.join("\n")
        );
    }

    fn start(&mut self) {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("stderr.txt"))
            .unwrap();
        let child = Command::new(WEIR)
            .args(["run", "-c"])
            .arg(self.path("pipeline.yaml"))
            .env(
                "WEIR_LOG",
                std::env::var("WEIR_MODEL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.agent = Some(child);
        // A marker line: once it is out, the agent has made its first scan (so it has opened
        // the file at `app.log` and found the rotated files it has checkpoints for).
        let marker = self.append(1);
        self.wait_lines(&marker, "the marker line after a start");
    }

    fn stop(&mut self, kill: bool) {
        let mut agent = self.agent.take().expect("running");
        if kill {
            agent.kill().unwrap();
            agent.wait().unwrap();
            self.killed = true;
        } else {
            let t = Instant::now();
            // SAFETY: kill(2) on the pid of a child we own.
            unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
            let status = loop {
                if let Some(status) = agent.try_wait().unwrap() {
                    break status;
                }
                if t.elapsed() > Duration::from_secs(15) {
                    let _ = agent.kill();
                    let _ = agent.wait();
                    self.fail("the agent did not exit within 15 s of SIGTERM".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if !status.success() {
                self.fail(format!("SIGTERM: exit status {status}"));
            }
        }
        self.out.refresh();
    }

    /// Appends `k` lines to `app.log`, creating it if needed; returns their numbers.
    fn append(&mut self, k: u64) -> Vec<u64> {
        let from = self.need.len() as u64;
        let numbers: Vec<u64> = (from..from + k).collect();
        let mut buf = String::new();
        for &n in &numbers {
            buf.push_str(&line(n));
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        f.write_all(buf.as_bytes()).unwrap();
        let cur = match self.cur {
            Some(c) => c,
            None => {
                self.incs.push(Inc {
                    ever: Vec::new(),
                    live: Vec::new(),
                    opened: false,
                });
                self.cur = Some(self.incs.len() - 1);
                self.incs.len() - 1
            }
        };
        self.need.extend(numbers.iter().map(|_| Need::Required));
        self.incs[cur].ever.extend_from_slice(&numbers);
        self.incs[cur].live.extend_from_slice(&numbers);
        numbers
    }

    /// Whether the agent has opened file `i`: a line of it is out. Sticky: the file is open
    /// from then on, or was read to its end, or (after a restart) was opened again at the
    /// first scan or found by its checkpoint (see the restart).
    fn opened(&mut self, i: usize) -> bool {
        if !self.incs[i].opened {
            self.out.refresh();
            let out = &self.out;
            self.incs[i].opened = self.incs[i].ever.iter().any(|&n| out.count(n) > 0);
        }
        self.incs[i].opened
    }

    /// Required lines in file `i` that are not out yet.
    fn unread(&mut self, i: usize) -> Vec<u64> {
        self.out.refresh();
        self.incs[i]
            .live
            .iter()
            .copied()
            .filter(|&n| self.need[n as usize] == Need::Required && self.out.count(n) == 0)
            .collect()
    }

    fn give_up(&mut self, lines: Vec<u64>, why: &str) {
        if lines.is_empty() {
            return;
        }
        for &n in &lines {
            self.need[n as usize] = Need::Optional;
        }
        self.note(format!("let go of {} line(s) {}: {why}", lines.len(), ranges(&lines)));
    }

    /// Waits until every line in `lines` is out.
    fn wait_lines(&mut self, lines: &[u64], what: &str) {
        let t = Instant::now();
        loop {
            self.out.refresh();
            let missing: Vec<u64> = lines.iter().copied().filter(|&n| self.out.count(n) == 0).collect();
            if missing.is_empty() {
                return;
            }
            if t.elapsed() > WAIT {
                self.fail(format!(
                    "waiting for {what}: after {WAIT:?}, {} line(s) missing: {}",
                    missing.len(),
                    ranges(&missing)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Shifts the numbered files up by one (logrotate), dropping `app.log.KEEP`.
    fn shift(&mut self, running: bool) {
        for i in (1..KEEP).rev() {
            if self.slots[i - 1] == Slot::Empty {
                continue;
            }
            if let Slot::Inc(j) = self.slots[i] {
                let unread = self.unread(j);
                if running {
                    // Deleted by this rotation while the agent runs: it reads the rest from
                    // its descriptor (if it opened the file; if not, the lines were let go
                    // when it was rotated), as after a delete: wait for it, or a stop right
                    // after would find nothing left to read.
                    self.wait_lines(
                        &unread,
                        "the rest of a file rotated out (deleted), read from its descriptor",
                    );
                } else {
                    // Deleted while the agent is down: nothing can read it any more.
                    self.give_up(unread, "rotated out (deleted) while the agent was down");
                }
            }
            fs::rename(self.slot_path(i - 1), self.slot_path(i)).unwrap();
            self.slots[i] = self.slots[i - 1];
            self.slots[i - 1] = Slot::Empty;
        }
    }

    /// Rename rotation; returns the file rotated, if `app.log` existed.
    fn rotate(&mut self, running: bool) -> Option<usize> {
        let Some(cur) = self.cur else {
            self.note("no app.log: nothing to rotate".into());
            return None;
        };
        self.shift(running);
        fs::rename(self.log_path(), self.slot_path(0)).unwrap();
        self.slots[0] = Slot::Inc(cur);
        self.cur = None;
        if running && !self.opened(cur) {
            let lost = self.unread(cur);
            self.give_up(lost, "rotated away before the agent opened it");
        }
        Some(cur)
    }

    fn copytruncate(&mut self) {
        let Some(cur) = self.cur else {
            self.note("no app.log: nothing to copytruncate".into());
            return;
        };
        self.shift(true);
        fs::copy(self.log_path(), self.slot_path(0)).unwrap();
        self.slots[0] = Slot::Copy;
        OpenOptions::new()
            .write(true)
            .open(self.log_path())
            .unwrap()
            .set_len(0)
            .unwrap();
        // The agent finds the copy by the first bytes it knows of the file: it must have read
        // some of the file's current contents (since its last truncation), or it cannot tell
        // the copy is one.
        self.out.refresh();
        let read_current = self.incs[cur].live.iter().any(|&n| self.out.count(n) > 0);
        let unread = self.unread(cur);
        self.incs[cur].live.clear();
        if read_current {
            self.wait_lines(&unread, "the rest of a copytruncated file, read from the copy");
        } else {
            self.give_up(
                unread,
                "copytruncated before the agent read any of its current contents",
            );
        }
    }

    fn truncate(&mut self, k: u64) {
        if let Some(cur) = self.cur {
            OpenOptions::new()
                .write(true)
                .open(self.log_path())
                .unwrap()
                .set_len(0)
                .unwrap();
            let lost = self.unread(cur);
            self.give_up(lost, "truncated before they were out (maybe before they were read)");
            self.incs[cur].live.clear();
        }
        self.append(k);
    }

    fn delete(&mut self) {
        let Some(cur) = self.cur else {
            self.note("no app.log: nothing to delete".into());
            return;
        };
        fs::remove_file(self.log_path()).unwrap();
        self.cur = None;
        let opened = self.opened(cur);
        let unread = self.unread(cur);
        if opened {
            self.wait_lines(&unread, "the rest of a deleted file, read from its descriptor");
        } else {
            self.give_up(unread, "deleted before the agent opened it");
        }
    }

    /// Whether the agent's saved checkpoints let it find `path` (a file rotated while it was
    /// down) by identity at its next start.
    fn has_checkpoint(&self, path: &std::path::Path) -> bool {
        let Ok(store) = Checkpoints::load(self.path("data")) else {
            return false;
        };
        let Ok(id) = FileIdentity::of_path(path) else {
            return false;
        };
        matches!(store.lookup(&id), Lookup::Same(_))
    }

    fn restart(&mut self, kill: bool, down_append: u64, down_rotate: bool) {
        self.stop(kill);
        if down_append > 0 {
            self.append(down_append);
        }
        if down_rotate {
            self.rotate(false);
        }
        // At start the agent finds the rotated files (`app.log.N`, not under its globs) by the
        // identities in its checkpoint file: what is there decides what it can still read.
        for i in 0..KEEP {
            let Slot::Inc(j) = self.slots[i] else { continue };
            let unread = self.unread(j);
            if unread.is_empty() || self.has_checkpoint(&self.slot_path(i)) {
                continue;
            }
            if kill {
                // The last save may be up to checkpoint_interval old.
                self.give_up(unread, "rotated, and no checkpoint for it was saved before SIGKILL");
                continue;
            }
            // After a SIGTERM, every file the agent read from has its checkpoint saved, with
            // the identity of its current contents if it read any of them.
            let read_current = self.incs[j].live.iter().any(|&n| self.out.count(n) > 0);
            if read_current {
                self.fail(format!(
                    "after SIGTERM: no checkpoint for app.log.{} (lines {}), which the agent read from",
                    i + 1,
                    ranges(&self.incs[j].live)
                ));
            }
            // Never seen, or truncated and written again (then rotated) before the agent
            // looked at it again: its checkpoint, if any, describes the old contents, and a
            // rotated file that does not start as its checkpoint says is not taken for it (it
            // may be another file on a reused inode).
            self.give_up(
                unread,
                "rotated, and the agent had not read its current contents (no checkpoint for them)",
            );
        }
        self.start();
    }

    fn apply(&mut self, a: &Action) {
        self.log.push(format!("  {a:?}"));
        match *a {
            Action::Append(k) => {
                self.append(k);
            }
            Action::Rotate => {
                self.rotate(true);
            }
            Action::CopyTruncate => self.copytruncate(),
            Action::Truncate(k) => self.truncate(k),
            Action::Delete => self.delete(),
            Action::Restart {
                kill,
                down_append,
                down_rotate,
            } => self.restart(kill, down_append, down_rotate),
        }
    }

    /// Waits for every required line, restarts once more (a clean restart must add
    /// nothing but its marker), and checks the output against the model.
    fn finish(&mut self) {
        let required: Vec<u64> = (0..self.need.len() as u64)
            .filter(|&n| self.need[n as usize] == Need::Required)
            .collect();
        self.wait_lines(&required, "every required line at the end");
        self.log.push("  (end) Restart { kill: false, .. }".into());
        self.restart(false, 0, false);
        // Late duplicates (a rotated file read again) would show within rotate_wait.
        std::thread::sleep(Duration::from_millis(600));
        self.stop(false);

        let mut missing = Vec::new();
        let mut dups = Vec::new();
        let mut optional_out = 0;
        for n in 0..self.need.len() as u64 {
            let c = self.out.count(n);
            match self.need[n as usize] {
                Need::Required if c == 0 => missing.push(n),
                Need::Optional if c > 0 => optional_out += 1,
                _ => {}
            }
            if c > 1 && !self.killed {
                dups.push(n);
            }
        }
        let unknown: Vec<u64> = (self.need.len() as u64..self.out.counts.len() as u64)
            .filter(|&n| self.out.count(n) > 0)
            .collect();
        // A piece of a line may come out when the agent had read part of it (a write still
        // going on) and the file was then truncated: the piece goes out as the last line of
        // the old contents; the rest is lost with the truncation. Only a let-go line may come
        // out so; any other piece is an error (bytes read at a wrong offset, lines joined).
        let torn: Vec<String> = self
            .out
            .torn
            .iter()
            .filter(|l| {
                !(0..self.need.len() as u64)
                    .any(|n| self.need[n as usize] == Need::Optional && line(n).starts_with(l.as_str()))
            })
            .cloned()
            .collect();
        let cut = self.out.torn.len() - torn.len();
        let optional = self.need.iter().filter(|&&n| n == Need::Optional).count();
        self.log.push(format!(
            "  => {} lines, {} let go ({optional_out} of them out anyway, {cut} cut), SIGKILL used: {}",
            self.need.len(),
            optional,
            self.killed
        ));
        if !missing.is_empty() || !dups.is_empty() || !unknown.is_empty() || !torn.is_empty() {
            self.fail(format!(
                "{} required line(s) missing: {}\n{} line(s) duplicated{}: {}\n{} unknown line number(s): {}\n\
                 {} torn line(s): {:?}",
                missing.len(),
                ranges(&missing),
                dups.len(),
                if self.killed { "" } else { " (every stop was a SIGTERM)" },
                ranges(&dups),
                unknown.len(),
                ranges(&unknown),
                torn.len(),
                &torn[..torn.len().min(5)],
            ));
        }
    }
}

fn run_case(actions: &[Action]) {
    let mut h = Harness::new();
    h.log.push("  (start)".into());
    h.start();
    for a in actions {
        h.apply(a);
    }
    h.finish();
    if std::env::var_os("WEIR_MODEL_VERBOSE").is_some() {
        eprintln!("case passed:\n{}", h.log.join("\n"));
    }
}

fn cases() -> u32 {
    std::env::var("WEIR_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// The cases are drawn from a fixed seed, so CI runs the same ones each time (a timing race
/// found by a new seed must not fail an unrelated change); `WEIR_MODEL_SEED=N` (with
/// `WEIR_MODEL_CASES`) explores others.
fn seed() -> proptest::test_runner::RngSeed {
    let seed = std::env::var("WEIR_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0001);
    proptest::test_runner::RngSeed::Fixed(seed)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        rng_seed: seed(),
        // A failing case may wait WAIT before it fails: keep shrinking bounded.
        max_shrink_iters: 16,
        max_shrink_time: 90_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_tailer_follows_its_model(actions in prop::collection::vec(action(), 1..24)) {
        run_case(&actions);
    }
}

/// Found by a random seed in CI: a file the agent had opened was rotated out (deleted) by
/// the next rotation and the agent was killed a few milliseconds later, before it read the
/// rest from its descriptor; nothing could find those lines after the restart. The model
/// required them; it now waits for them when a rotation deletes a file, as after a delete.
#[test]
fn lines_rotated_just_before_a_kill_are_recovered() {
    use Action::*;
    let seq = [
        Append(101),
        Append(377),
        Rotate,
        Rotate,
        Truncate(174),
        Truncate(231),
        CopyTruncate,
        Delete,
        Append(245),
        Append(154),
        CopyTruncate,
        Rotate,
        Rotate,
        Restart {
            kill: true,
            down_append: 397,
            down_rotate: true,
        },
        Append(27191),
        CopyTruncate,
        CopyTruncate,
        Rotate,
        Append(10138),
        Delete,
        Append(27002),
    ];
    run_case(&seq);
}

/// A sequence the property test found (shrunk by hand a little): the agent noticed a
/// truncation while the file was empty, so the identity it held (of an empty file) matched
/// any contents; a truncation and a longer write, landing between a read and the re-signing,
/// was taken for growth: lines were lost and a torn line came out. Fixed in inputs/tail.rs (the
/// tailer keeps the first bytes it read and checks the file still starts with them).
#[test]
fn a_rewrite_after_a_truncation_seen_while_empty_is_not_taken_for_growth() {
    use Action::*;
    let seq = [
        Rotate,
        Restart {
            kill: false,
            down_append: 0,
            down_rotate: true,
        },
        Restart {
            kill: false,
            down_append: 0,
            down_rotate: true,
        },
        Rotate,
        Append(103),
        Delete,
        Append(119),
        Delete,
        Append(183),
        Append(246),
        Append(18392),
        Restart {
            kill: false,
            down_append: 4,
            down_rotate: false,
        },
        Append(182),
        CopyTruncate,
        Truncate(137),
        CopyTruncate,
        Truncate(91),
        Append(6),
        Truncate(159),
    ];
    // Timing decides whether the agent meets the race: three runs (it failed on the first).
    for _ in 0..3 {
        run_case(&seq);
    }
}

/// Another sequence the property test found (once in 95 cases: timing decides): a new file
/// was signed when the agent opened it, then truncated and written again before the agent's
/// first read; the agent read the new contents but kept checkpointing them under the old
/// identity, so after a clean restart it took the file for another one and read it all again
/// (271 duplicates). Fixed in inputs/tail.rs (the file is signed again after its first bytes are read).
#[test]
fn a_file_rewritten_between_its_signing_and_its_first_read_is_not_read_twice() {
    use Action::*;
    let seq = [
        Append(189),
        Delete,
        CopyTruncate,
        Append(386),
        Rotate,
        Rotate,
        Rotate,
        Append(382),
        Rotate,
        Rotate,
        Append(21833),
        Truncate(271),
        Restart {
            kill: false,
            down_append: 8,
            down_rotate: false,
        },
        Truncate(181),
        Delete,
        Truncate(258),
        Append(276),
        Rotate,
        Truncate(256),
        Append(148),
    ];
    for _ in 0..3 {
        run_case(&seq);
    }
}
