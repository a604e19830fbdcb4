//! The crash-loop guard: a record that kills the agent costs two restarts, then only itself.
//!
//! Why: in follow mode a file's checkpoint moves only after its events are delivered, so a
//! record the process dies on (a bug the fuzzers missed, an abort inside a library, a plugin
//! host fault) is read again at every start and kills the agent again: one hostile line would
//! stop collection on the node for good.
//!
//! How, for files with checkpoints (`file` in follow mode, `kubernetes_logs`):
//! - **Slots.** Each worker has a slot file in `data_dir/inflight/`. Before it processes a
//!   batch it writes there the file's identity and the batch's byte range, and clears it when
//!   the batch is encoded: one positioned write each, no fsync (the process dying leaves the
//!   page cache intact; a machine crash is not a crash loop). A slot still set at start means
//!   the previous run ended while processing that batch.
//! - **Guarded ranges.** Such a batch range becomes *guarded*: batches of that file that
//!   overlap it are processed one event at a time, and the slot names the event in flight (a
//!   hash of its bytes). A SIGKILL from outside costs nothing more than that.
//! - **Quarantine.** An event named in a slot at start was being processed on its own when the
//!   agent died again: it is *quarantined*. Guarded batches no longer process it: it goes to
//!   the `dead_letter` output with `_error` saying why, or, without one, it is dropped; either
//!   way it is counted (`weir_quarantined_events_total`) and logged with its file and bytes.
//! - Both kinds live in `data_dir/suspects.json` (written atomically at start) until the file's
//!   checkpoint passes them, the file is replaced, or a week passes with the file unknown.
//!
//! Limits: inputs without checkpoints (stdin, `mode: once`) are not guarded; the framer runs on
//! the reader thread, outside the slots. A processor that joins consecutive events (the
//! `multiline` processor) sees a guarded batch one event at a time.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use weir_core::model::Batch;

use super::checkpoint::{Checkpoints, FileIdentity, Lookup, fnv1a64};

/// The folder of the slot files, inside the data directory.
pub const INFLIGHT_DIR: &str = "inflight";
/// The suspect list, inside the data directory.
pub const SUSPECTS_FILE: &str = "suspects.json";
/// At most this many suspects are kept (the oldest go first): a bound on the file and on
/// the per-batch lookup, whatever happens.
const MAX_SUSPECTS: usize = 256;
/// A suspect whose file has no checkpoint any more is kept this long (the file may not have
/// been checkpointed yet when the agent died), then forgotten.
const UNKNOWN_FILE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A byte range of a file that was being processed when the agent died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    dev: u64,
    ino: u64,
    signed_len: u32,
    /// The file's signature, 16 hex digits (as in `checkpoints.json`).
    signature: String,
    /// Where the file was, for people.
    pub path: PathBuf,
    /// The batch's first byte.
    pub start: u64,
    /// The batch's end.
    pub end: u64,
    /// Set when one event was in flight on its own: the FNV-1a 64 hash of its raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<u64>,
    /// When it was found (seconds since the Unix epoch).
    #[serde(default)]
    pub found_at: u64,
}

impl Suspect {
    fn new(file: &WatchedFile, start: u64, end: u64, event: Option<u64>) -> Suspect {
        let id = &file.identity;
        Suspect {
            dev: id.dev(),
            ino: id.ino(),
            signed_len: id.signed_len() as u32,
            signature: format!("{:016x}", id.signature()),
            path: file.path.clone(),
            start,
            end,
            event,
            found_at: 0,
        }
    }

    fn identity(&self) -> Option<FileIdentity> {
        let signature = u64::from_str_radix(&self.signature, 16).ok()?;
        Some(FileIdentity::from_stored(
            self.dev,
            self.ino,
            self.signed_len,
            signature,
        ))
    }

    /// Whether this suspect is about `file` and its range meets `start..=end` (ranges of
    /// batches that framing flushed without new bytes are empty, hence the closed test).
    fn meets(&self, file: &FileIdentity, start: u64, end: u64) -> bool {
        self.start <= end
            && start <= self.end
            && self
                .identity()
                .is_some_and(|id| file.same_file_as(&id) || id.same_file_as(file))
    }

    /// The same file, range and event, whenever found.
    fn same_range(&self, other: &Suspect) -> bool {
        Suspect {
            found_at: 0,
            ..self.clone()
        } == Suspect {
            found_at: 0,
            ..other.clone()
        }
    }

    fn describe(&self) -> String {
        format!("{} bytes {}..{}", self.path.display(), self.start, self.end)
    }
}

/// Counters of the guard, for `/metrics`.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Batches found in flight at start.
    pub recovered: AtomicU64,
    /// Batches processed one event at a time.
    pub guarded_batches: AtomicU64,
    /// Events set aside.
    pub quarantined: AtomicU64,
}

/// The suspects of this run (fixed at start) and the guard's counters.
#[derive(Debug)]
pub struct Guard {
    dir: PathBuf,
    suspects: Vec<Suspect>,
    /// The counters.
    pub stats: GuardStats,
}

/// The file a batch was read from.
#[derive(Debug, Clone)]
pub struct WatchedFile {
    /// Its identity now.
    pub identity: FileIdentity,
    /// Its path now.
    pub path: PathBuf,
}

impl Guard {
    /// Reads what the previous run left in flight in `data_dir`, turns it into suspects (see
    /// the module docs), forgets the suspects `store` says are delivered, saves the list and
    /// empties the slots. Problems are logged, never fatal: the guard is a safety net.
    pub fn recover(data_dir: &Path, store: &Checkpoints) -> Guard {
        let mut suspects = read_suspects(&data_dir.join(SUSPECTS_FILE));
        let in_flight = read_slots(&data_dir.join(INFLIGHT_DIR));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for mut s in in_flight.iter().cloned() {
            s.found_at = now;
            match s.event {
                Some(_) => tracing::error!(
                    record = %s.describe(),
                    "the agent died again while processing one record of a batch it had died on: \
                     the record is quarantined (sent to dead_letter, or dropped and counted)"
                ),
                None => tracing::warn!(
                    batch = %s.describe(),
                    "the previous run ended while processing this batch: it is processed one event \
                     at a time, so a record that kills the agent can be set aside"
                ),
            }
            if !suspects.iter().any(|known| known.same_range(&s)) {
                suspects.push(s);
            }
        }
        let before = suspects.len();
        suspects.retain(|s| still_pending(s, store, now));
        if suspects.len() > MAX_SUSPECTS {
            suspects.drain(..suspects.len() - MAX_SUSPECTS);
        }
        let guard = Guard {
            dir: data_dir.to_path_buf(),
            suspects,
            stats: GuardStats::default(),
        };
        guard.stats.recovered.store(in_flight.len() as u64, Ordering::Relaxed);
        if (!in_flight.is_empty() || guard.suspects.len() != before)
            && let Err(e) = guard.save()
        {
            tracing::error!(dir = %data_dir.display(), "cannot save {SUSPECTS_FILE}: {e}");
        }
        if let Err(e) = fs::remove_dir_all(data_dir.join(INFLIGHT_DIR))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::error!(dir = %data_dir.display(), "cannot empty {INFLIGHT_DIR}/: {e}");
        }
        guard
    }

    /// Writes the suspect list atomically (temporary file, fsync, rename).
    fn save(&self) -> io::Result<()> {
        let path = self.dir.join(SUSPECTS_FILE);
        if self.suspects.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let tmp = self.dir.join(format!("{SUSPECTS_FILE}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(&self.suspects).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Whether some suspect meets the batch `start..end` of `file`.
    pub fn guards(&self, file: &FileIdentity, start: u64, end: u64) -> bool {
        !self.suspects.is_empty() && self.suspects.iter().any(|s| s.meets(file, start, end))
    }

    /// The quarantined record of `file` in `start..end` whose raw bytes hash to `hash`.
    pub fn quarantined(&self, file: &FileIdentity, start: u64, end: u64, hash: u64) -> Option<&Suspect> {
        self.suspects
            .iter()
            .find(|s| s.event == Some(hash) && s.meets(file, start, end))
    }

    /// Worker `n`'s slot (its file is created on first use).
    pub fn slot(&self, n: usize) -> Slot {
        Slot {
            path: self.dir.join(INFLIGHT_DIR).join(format!("worker-{n}")),
            file: None,
            buf: Vec::new(),
            failed: false,
        }
    }
}

/// Whether a suspect still matters: its file's checkpoint has not passed it.
fn still_pending(s: &Suspect, store: &Checkpoints, now: u64) -> bool {
    let Some(id) = s.identity() else { return false };
    match store.lookup(&id) {
        Lookup::Same(e) => e.offset < s.end,
        Lookup::Replaced(_) => false,
        Lookup::Unknown => now.saturating_sub(s.found_at) < UNKNOWN_FILE_TTL.as_secs(),
    }
}

fn read_suspects(path: &Path) -> Vec<Suspect> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), "unreadable suspect list, starting a new one: {e}");
            Vec::new()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::error!(file = %path.display(), "cannot read the suspect list: {e}");
            Vec::new()
        }
    }
}

/// The entries of the slot files that are set (a slot holds one JSON line; a cleared one
/// starts with a newline; bytes after the first newline are stale).
fn read_slots(dir: &Path) -> Vec<Suspect> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(bytes) = fs::read(entry.path()) else { continue };
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Suspect>(line) {
            Ok(s) => found.push(s),
            Err(e) => tracing::warn!(file = %entry.path().display(), "ignoring a damaged in-flight slot: {e}"),
        }
    }
    found
}

/// One worker's in-flight slot.
#[derive(Debug)]
pub struct Slot {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    /// Writing failed once (logged): the guard is off for this worker.
    failed: bool,
}

impl Slot {
    /// Records that the batch `start..end` of `file` (or, with `event`, the one event whose
    /// bytes hash to it) is being processed.
    pub fn set(&mut self, file: &WatchedFile, start: u64, end: u64, event: Option<u64>) {
        self.buf.clear();
        if serde_json::to_writer(&mut self.buf, &Suspect::new(file, start, end, event)).is_ok() {
            self.buf.push(b'\n');
            self.write();
        }
    }

    /// Nothing is in flight.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.push(b'\n');
        self.write();
    }

    fn write(&mut self) {
        if self.failed {
            return;
        }
        if self.file.is_none() {
            let opened = self
                .path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| File::options().create(true).write(true).truncate(true).open(&self.path));
            match opened {
                Ok(f) => self.file = Some(f),
                Err(e) => return self.fail(e),
            }
        }
        if let Some(f) = &self.file
            && let Err(e) = f.write_all_at(&self.buf, 0)
        {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.failed = true;
        tracing::error!(file = %self.path.display(), "in-flight slot not writable, the crash-loop guard is off for this worker: {e}");
    }
}

/// The hash that names an event in a slot and in the suspect list.
pub fn event_hash(raw: &[u8]) -> u64 {
    fnv1a64(raw)
}

/// Fault injection for tests, in debug builds only: with `WEIR_FAULT_ABORT_ON=TEXT` in the
/// environment, the process aborts when a live event about to be processed contains TEXT, as
/// a crash inside a processor would. Release builds compile it to nothing.
#[inline]
pub fn fault_point(batch: &Batch) {
    #[cfg(debug_assertions)]
    {
        static NEEDLE: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
        let needle = NEEDLE.get_or_init(|| std::env::var_os("WEIR_FAULT_ABORT_ON").map(|v| v.into_encoded_bytes()));
        if let Some(needle) = needle.as_deref().filter(|n| !n.is_empty())
            && batch
                .live()
                .any(|e| batch.bytes(e.raw()).windows(needle.len()).any(|w| w == needle))
        {
            eprintln!("WEIR_FAULT_ABORT_ON: aborting on purpose");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = batch;
}
