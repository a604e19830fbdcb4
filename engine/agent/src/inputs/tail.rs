//! Follow mode: the file tailer of one `file` or `kubernetes_logs` input.
//!
//! One thread per input runs [`Tailer::run`]: it finds files with the input's globs, reads
//! what they append, and hands chunks of whole lines (or framed records) to the workers,
//! each with the [`AckPoint`] its checkpoint may move to once delivered.
//!
//! # What it promises
//! - **Identity, not path.** A file is device + inode + a signature of its first bytes
//!   ([`FileIdentity`]). A file renamed away (rotation) keeps being read from its open
//!   descriptor; the new file at the old path is a new source, read from its start.
//! - **Nothing read is given up.** A file that left the globs (renamed, deleted) is read to
//!   its end; it is let go only after `rotate_wait` with no new bytes. A file truncated below
//!   the read offset is read again from 0 (counted in `truncations`; bytes it had beyond what
//!   was read, if seen, are counted in `bytes_lost` and logged).
//! - **Checkpoints.** A file seen before resumes at its committed offset; a new file starts
//!   at its head, or at its end with `read_from: tail` if it was there when the agent started.
//!   Bytes held by the framer (an open multiline record, partial container lines) are not
//!   committed until their record is out.
//! - **Bounded descriptors.** At most `max_open_files` are open: when a new file needs one,
//!   the file idle the longest (at its end, still at its path) is closed, and reopened by
//!   identity when it grows.
//! - **Wake-ups.** inotify (the notify crate) on the globs' directories wakes the loop at
//!   once; `poll_interval` polling is the fallback and always on.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use weir_core::frame::{Format, Framed, Framer};
use weir_core::line::{Chunk, LineChunker, LineOptions};
use weir_core::pool::BufferPool;

use serde_saphyr::Spanned;
use weir_core::units::Dur;

use super::kubernetes::Discovery;
use super::{ChunkPayload, Framing, InputStats, ReadFrom, SourceChunk, SourceFields};
use crate::config::error::{ConfigError, Pos};
use crate::delivery::Ack;
use crate::delivery::acks::{AckPoint, Acks};
use crate::delivery::checkpoint::{FileIdentity, SIGNATURE_LEN};

/// How one input tails its files.
#[derive(Debug, Clone)]
pub struct TailSettings {
    /// Glob patterns.
    pub paths: Vec<String>,
    /// Glob patterns left out.
    pub exclude: Vec<glob::Pattern>,
    /// Where files present at start begin when they have no checkpoint.
    pub read_from: ReadFrom,
    /// Line splitting.
    pub opts: LineOptions,
    /// Container format and multiline, if any.
    pub framing: Option<Framing>,
    /// Container logs: pick CRI or Docker per file from its first byte.
    pub detect_format: bool,
    /// Whether to add pod fields from container log file names.
    pub pod_fields: bool,
    /// Kubernetes: which files to read, and their pod fields.
    pub discovery: Option<Arc<Discovery>>,
    /// Polling, rotation, descriptors and flushing.
    pub timing: FollowTiming,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// On `stop`, read every file to its end and send everything, held records and a last
    /// line without a newline included (a job sidecar: nothing comes after).
    pub drain_on_stop: bool,
}

/// The follow-mode knobs `file` and `kubernetes_logs` share, with their defaults applied.
#[derive(Debug, Clone, Copy)]
pub struct FollowTiming {
    /// How often files are checked without a wake-up (default 250ms).
    pub poll_interval: Duration,
    /// How long a file that left the globs is kept after its last new byte (default 5s).
    pub rotate_wait: Duration,
    /// Most files open at once (default 1024).
    pub max_open_files: usize,
    /// An open multiline record (or partial container line) is closed after this long
    /// without new bytes in its file (default 1s).
    pub flush_timeout: Duration,
}

impl FollowTiming {
    /// Checks the knobs as written in an input's config (`what` names the input in errors)
    /// and fills in the defaults.
    pub fn from_config(
        what: &str,
        poll_interval: &Option<Spanned<Dur>>,
        rotate_wait: &Option<Spanned<Dur>>,
        max_open_files: &Option<Spanned<usize>>,
        flush_timeout: &Option<Spanned<Dur>>,
        file: &Path,
    ) -> Result<FollowTiming, ConfigError> {
        let dur = |d: &Option<Spanned<Dur>>, default_ms: u64| match d {
            Some(d) if d.value.0.is_zero() => Err(ConfigError::at(
                file,
                Pos::of(d),
                format!("{what}: a duration here must be more than 0"),
            )),
            Some(d) => Ok(d.value.0),
            None => Ok(Duration::from_millis(default_ms)),
        };
        let max_open_files = match max_open_files {
            Some(m) if m.value == 0 => {
                return Err(ConfigError::at(
                    file,
                    Pos::of(m),
                    format!("{what}: max_open_files must be at least 1"),
                ));
            }
            Some(m) => m.value,
            None => 1024,
        };
        Ok(FollowTiming {
            poll_interval: dur(poll_interval, 250)?,
            rotate_wait: dur(rotate_wait, 5000)?,
            max_open_files,
            flush_timeout: dur(flush_timeout, 1000)?,
        })
    }
}

/// Counters of a tailer, added to its input's.
#[derive(Debug, Default)]
pub struct TailStats {
    /// Files opened for the first time.
    pub files_found: AtomicU64,
    /// Files read to their end and let go.
    pub files_released: AtomicU64,
    /// Files open now.
    pub files_open: AtomicU64,
    /// Files truncated under the reader (read again from the start).
    pub truncations: AtomicU64,
    /// Bytes that were in a file but could not be read (truncated or deleted first).
    pub bytes_lost: AtomicU64,
    /// Files that resumed at a checkpoint.
    pub resumed: AtomicU64,
}

struct Tracked {
    path: PathBuf,
    file: Option<File>,
    identity: FileIdentity,
    source: u32,
    generation: u32,
    seq: u64,
    chunker: LineChunker,
    framer: Option<Framer>,
    /// Last time bytes came.
    last_data: Instant,
    /// Size at the last look.
    size: u64,
    /// When the globs stopped showing this file.
    gone_since: Option<Instant>,
    /// Whether the framer holds records not flushed by the timeout.
    held: bool,
    /// The file's first bytes (up to `SIGNATURE_LEN`) as this generation read them, when it
    /// read from offset 0. An identity signed while the file was empty (or shorter than what
    /// was read since) matches any later contents, so these bytes are what shows that the
    /// file was truncated and written again past the read offset under the reader (found by
    /// tests/follow_model.rs: such a rewrite was taken for growth, lines were lost and a
    /// torn line came out), and which copy is a copytruncate's.
    head: Vec<u8>,
    pod: Option<SourceFields>,
    /// The file's line format, when the input frames.
    format: Option<Format>,
}

impl Tracked {
    fn read_offset(&self) -> u64 {
        self.chunker.offset() + self.chunker.pending() as u64
    }
}

/// What [`Tailer::reopen_grown`] found of a file closed to save descriptors.
enum Reopen {
    /// Reopened: it grew.
    Open,
    /// Left closed: it did not grow, or no descriptor is free.
    NotNow,
    /// It left the globs `rotate_wait` ago and did not grow.
    Gone,
}

/// The tailer of one input. See the module docs.
pub struct Tailer {
    settings: TailSettings,
    acks: Arc<Acks>,
    pool: Arc<BufferPool>,
    next_source: Arc<AtomicU32>,
    stats: Arc<TailStats>,
    input: Arc<InputStats>,
    files: HashMap<(u64, u64), Tracked>,
    /// The first scan is over: files found from now on are new, read from their head.
    started: bool,
    wake: Option<(Receiver<bool>, notify::RecommendedWatcher)>,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// A tailer for one input. `next_source` hands out source ids shared by all inputs.
    pub fn new(
        settings: TailSettings,
        acks: Arc<Acks>,
        pool: Arc<BufferPool>,
        next_source: Arc<AtomicU32>,
        stats: Arc<TailStats>,
        input: Arc<InputStats>,
    ) -> Tailer {
        let wake = watch(&settings.paths);
        // Checkpoints of files that moved while the agent was down are what the first scan
        // finds them by: none is pruned before it.
        acks.tailer_starting();
        Tailer {
            settings,
            acks,
            pool,
            next_source,
            stats,
            input,
            files: HashMap::new(),
            started: false,
            wake,
        }
    }

    /// Runs until `stop` is set or `send` fails. Data the framer holds at that point is not
    /// sent: its checkpoint stays before it, so a restart reads it again whole.
    pub fn run(mut self, stop: &AtomicBool, send: &mut dyn FnMut(SourceChunk) -> bool) {
        self.follow(stop, send);
        if self.settings.drain_on_stop {
            let _ = self.drain(send);
        }
        for t in self.files.values() {
            self.count_frames(t);
        }
    }

    /// Reads every file to its end and sends all it holds; the files are let go.
    fn drain(&mut self, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<(), ()> {
        self.scan();
        loop {
            let mut progressed = false;
            let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
            for key in keys {
                progressed |= self.poll_file(key, send)?;
            }
            if !progressed {
                break;
            }
        }
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for key in keys {
            let Some(mut t) = self.files.remove(&key) else { continue };
            while let Some(chunk) = t.chunker.next_chunk(true, true) {
                self.send_chunk(&mut t, chunk, send)?;
            }
            self.flush_framer(&mut t, send)?;
            self.acks.release(t.source, t.read_offset());
            self.count_frames(&t);
        }
        Ok(())
    }

    fn follow(&mut self, stop: &AtomicBool, send: &mut dyn FnMut(SourceChunk) -> bool) {
        let mut last_scan: Option<Instant> = None;
        let scan_every = self.settings.timing.poll_interval.max(Duration::from_millis(100)) * 4;
        let mut rescan = true;
        while !stop.load(Ordering::Relaxed) {
            if let Some((rx, _)) = &self.wake {
                while let Ok(structural) = rx.try_recv() {
                    rescan |= structural;
                }
            }
            if rescan || last_scan.is_none_or(|t| t.elapsed() >= scan_every) {
                self.scan();
                last_scan = Some(Instant::now());
                rescan = false;
            }
            let mut progressed = false;
            let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
            for key in keys {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match self.poll_file(key, send) {
                    Ok(p) => progressed |= p,
                    Err(()) => return,
                }
            }
            if progressed {
                continue;
            }
            // Nothing new: wait for a wake-up or the next poll.
            match &self.wake {
                Some((rx, _)) => {
                    if let Ok(structural) = rx.recv_timeout(self.settings.timing.poll_interval) {
                        rescan = structural;
                        // Take what piled up, too.
                        while let Ok(more) = rx.try_recv() {
                            rescan |= more;
                        }
                    }
                }
                None => std::thread::sleep(self.settings.timing.poll_interval),
            }
        }
    }

    /// Finds the files the globs match now: new ones are opened, moved ones noted.
    fn scan(&mut self) {
        let now = Instant::now();
        if let Some(d) = &self.settings.discovery {
            d.refresh();
        }
        let mut found: Vec<(PathBuf, (u64, u64))> = Vec::new();
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        for path in matched(&self.settings.paths, &self.settings.exclude) {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            // The same file through a symlink is read once.
            if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                found.push((path, (meta.dev(), meta.ino())));
            }
        }
        if !self.started {
            self.recover(&found);
        }
        for (path, key) in found {
            if let Some(t) = self.files.get(&key)
                && t.file.is_none()
                && !FileIdentity::of_path(&path).is_ok_and(|id| id.same_file_as(&t.identity))
            {
                // Closed to save descriptors, and its inode now holds another file: the old
                // one was deleted; what it had beyond the read offset is gone.
                let t = self.files.remove(&key).expect("tracked");
                self.lost(&t, "deleted while closed to save descriptors");
                self.acks.release(t.source, t.read_offset());
                self.count_frames(&t);
            }
            if let Some(t) = self.files.get_mut(&key) {
                t.gone_since = None;
                if t.path != path {
                    self.acks.update(t.source, None, Some(&path), t.size);
                    t.path = path;
                }
                continue;
            }
            self.open_new(key, path);
        }
        for (key, t) in &mut self.files {
            if !seen.contains(key) && t.gone_since.is_none() {
                t.gone_since = Some(now);
            }
        }
        if !self.started {
            self.acks.tailer_started();
        }
        self.started = true;
    }

    /// At start: files with a checkpoint whose bytes beyond it are no longer at their path,
    /// because the file was rotated or copytruncated while the agent was down (or killed
    /// before it delivered what it had read of them). Each is looked for in the directory
    /// it was in: the file itself under another name (same device, inode and first bytes),
    /// or else a copy of it (another file that starts with the bytes the checkpoint's
    /// identity signed, longer than the checkpoint). What it has beyond the checkpoint is
    /// read from there; one outside the globs is let go at its end, like any rotated file.
    ///
    /// Runs before the globs' files are opened: opening a copytruncated file replaces its
    /// old checkpoint, and registering the copy first means a checkpoint saved in between
    /// still leads here.
    fn recover(&mut self, found: &[(PathBuf, (u64, u64))]) {
        let in_globs: HashMap<(u64, u64), &PathBuf> = found.iter().map(|(p, k)| (*k, p)).collect();
        for (path, offset, at, how) in self.recovery_plans(&in_globs) {
            let Ok(meta) = std::fs::metadata(&at) else { continue };
            let key = (meta.dev(), meta.ino());
            tracing::info!(
                file = %path.display(),
                from = %at.display(),
                offset,
                "{how} while the agent was down, or before what was read of it was delivered: reading the rest from {}",
                at.display()
            );
            match in_globs.get(&key) {
                // A copy the globs match is followed from here on, like any file.
                Some(&matched) => self.open_at(key, matched.clone(), None, offset),
                // Outside the globs: read to its end, then let go. Its checkpoint keeps the
                // path it was followed at, so a crash before then finds it again here.
                None => {
                    self.open_at(key, at, Some(path), offset);
                    if let Some(t) = self.files.get_mut(&key) {
                        t.gone_since = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// The checkpointed files of [`Tailer::recover`] found again: (checkpointed path,
    /// offset, where the file or its copy is now, "rotated" or "copytruncated").
    fn recovery_plans(&self, in_globs: &HashMap<(u64, u64), &PathBuf>) -> Vec<(PathBuf, u64, PathBuf, &'static str)> {
        let patterns: Vec<glob::Pattern> = self
            .settings
            .paths
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let stored = self.acks.stored();
        let checkpointed: HashSet<(u64, u64)> = stored.iter().map(|(id, _, _)| (id.dev(), id.ino())).collect();
        let mut listings: HashMap<PathBuf, Vec<(PathBuf, std::fs::Metadata)>> = HashMap::new();
        // Files found under another name first: a copy must not be taken for them.
        let mut plans = Vec::new();
        let mut copies_wanted = Vec::new();
        for (identity, path, offset) in stored {
            let key = (identity.dev(), identity.ino());
            if !patterns.iter().any(|p| p.matches_path(&path)) {
                continue;
            }
            if in_globs
                .get(&key)
                .is_some_and(|p| FileIdentity::of_path(p).is_ok_and(|id| id.same_file_as(&identity)))
            {
                continue; // still in the globs: opened by the scan, resumed at its checkpoint
            }
            let Some(dir) = path.parent() else { continue };
            let listing = listings.entry(dir.to_path_buf()).or_insert_with(|| list(dir));
            let renamed = listing
                .iter()
                .find(|(_, m)| (m.dev(), m.ino()) == key)
                .and_then(|(p, m)| {
                    FileIdentity::of_path(p)
                        .is_ok_and(|id| id.same_file_as(&identity))
                        .then(|| (p.clone(), m.len()))
                });
            match renamed {
                Some((moved, len)) if len > offset => plans.push((path, offset, moved, "rotated")),
                Some(_) => {}
                None => copies_wanted.push((identity, path, offset)),
            }
        }
        let mut taken: HashSet<(u64, u64)> = plans
            .iter()
            .filter_map(|(_, _, at, _)| std::fs::metadata(at).ok().map(|m| (m.dev(), m.ino())))
            .collect();
        for (identity, path, offset) in copies_wanted {
            // An empty signature matches any file: such a checkpoint cannot tell its copy.
            if identity.signed_len() == 0 {
                continue;
            }
            let Some(dir) = path.parent() else { continue };
            let excluded = |key| checkpointed.contains(&key) || taken.contains(&key);
            if let Some((copy, m)) = find_copy(&listings[dir], &identity, offset, excluded) {
                taken.insert((m.dev(), m.ino()));
                plans.push((path, offset, copy.clone(), "copytruncated"));
            }
        }
        plans
    }

    fn open_files(&self) -> usize {
        self.files.values().filter(|t| t.file.is_some()).count()
    }

    /// Makes room for one more descriptor: closes the file idle the longest that is at its
    /// end and still at its path. False when none can be closed.
    fn make_room(&mut self) -> bool {
        if self.open_files() < self.settings.timing.max_open_files {
            return true;
        }
        let victim = self
            .files
            .iter()
            .filter(|(_, t)| t.file.is_some() && t.gone_since.is_none() && !t.held && t.size == t.read_offset())
            .min_by_key(|(_, t)| t.last_data)
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                if let Some(t) = self.files.get_mut(&k) {
                    t.file = None;
                    self.stats.files_open.fetch_sub(1, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    /// Opens a file the globs found, at its checkpoint if it has one.
    fn open_new(&mut self, key: (u64, u64), path: PathBuf) {
        self.open(key, path, None, None);
    }

    /// Opens the file at `path` and reads it from `start`, whatever its checkpoint says (a
    /// file found at start by its old checkpoint: see [`Self::recover`]). `shown` is the path
    /// its checkpoint keeps, when not `path`.
    fn open_at(&mut self, key: (u64, u64), path: PathBuf, shown: Option<PathBuf>, start: u64) {
        self.open(key, path, shown, Some(start));
    }

    fn open(&mut self, key: (u64, u64), path: PathBuf, shown: Option<PathBuf>, start: Option<u64>) {
        let pod = match &self.settings.discovery {
            Some(d) => match d.fields(shown.as_ref().unwrap_or(&path)) {
                Some(fields) => Some(fields),
                None => return, // left out by the input's patterns
            },
            None if self.settings.pod_fields => {
                super::container_fields(shown.as_ref().unwrap_or(&path)).map(SourceFields::from)
            }
            None => None,
        };
        if !self.make_room() {
            return; // tried again at the next scan
        }
        let Ok(file) = File::open(&path) else { return };
        let Ok(identity) = FileIdentity::of(&file) else { return };
        if (identity.dev(), identity.ino()) != key {
            return; // replaced between stat and open: the next scan sees the new one
        }
        let size = file.metadata().map_or(0, |m| m.len());
        let start = match start {
            Some(start) => start.min(size),
            None => self.start_of(&identity, &path, size),
        };
        let format = self.detect(&file);
        let mut file = file;
        if file.seek(SeekFrom::Start(start)).is_err() {
            return;
        }
        let path = shown.unwrap_or(path);
        let source = self.next_source.fetch_add(1, Ordering::Relaxed);
        self.acks.register(source, identity.clone(), &path, start);
        self.stats.files_found.fetch_add(1, Ordering::Relaxed);
        self.stats.files_open.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(file = %path.display(), source, start, "tailing");
        self.files.insert(
            key,
            Tracked {
                chunker: self.chunker(start),
                framer: self.framer(format),
                path,
                file: Some(file),
                identity,
                source,
                generation: 0,
                seq: 0,
                last_data: Instant::now(),
                size,
                gone_since: None,
                held: false,
                head: Vec::new(),
                pod,
                format,
            },
        );
    }

    /// Where a file found by the globs starts: its checkpoint; its head when it has none, or
    /// its end with `read_from: tail` when it was there at start. A file that took the place
    /// of a checkpointed one (same device and inode, other first bytes: truncated and written
    /// again, or a new file on a reused inode) came after the agent last looked: its head.
    fn start_of(&self, identity: &FileIdentity, path: &Path, size: u64) -> u64 {
        match self.acks.lookup(identity) {
            Ok(Some(offset)) if offset <= size => {
                self.stats.resumed.fetch_add(1, Ordering::Relaxed);
                offset
            }
            Ok(Some(offset)) => {
                tracing::warn!(file = %path.display(), offset, size, "file is shorter than its checkpoint: truncated while the agent was away; reading it from the start");
                self.stats.truncations.fetch_add(1, Ordering::Relaxed);
                0
            }
            Err(offset) => {
                tracing::debug!(file = %path.display(), offset, "another file than the one checkpointed (truncated and written again, or a reused inode): reading it from the start");
                0
            }
            Ok(None) if !self.started && self.settings.read_from == ReadFrom::Tail => size,
            Ok(None) => 0,
        }
    }

    fn chunker(&self, offset: u64) -> LineChunker {
        LineChunker::with_pool(
            self.settings.chunk_bytes,
            self.settings.opts.max_line_bytes,
            offset,
            self.pool.clone(),
        )
    }

    /// The line format of a file: the input's, or with `detect_format` Docker json-file
    /// when the file starts with `{` and CRI otherwise (an empty file is taken as CRI).
    fn detect(&self, file: &File) -> Option<Format> {
        let framing = self.settings.framing.as_ref()?;
        if !self.settings.detect_format {
            return Some(framing.format);
        }
        let mut first = [0u8; 1];
        match file.read_at(&mut first, 0) {
            Ok(1) if first[0] == b'{' => Some(Format::Docker),
            Ok(1) => Some(Format::Cri),
            _ => None, // empty: decided at the first byte
        }
    }

    fn framer(&self, format: Option<Format>) -> Option<Framer> {
        let framing = self.settings.framing.as_ref()?;
        Some(Framer::new(format?, framing.rules.clone(), self.settings.opts))
    }

    /// Reads what one file has, sends it, and lets the file go when it is done. `Ok(true)`
    /// when bytes came; `Err` when the workers are gone.
    fn poll_file(&mut self, key: (u64, u64), send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<bool, ()> {
        let Some(mut t) = self.files.remove(&key) else {
            return Ok(false);
        };
        let result = self.poll_tracked(&mut t, send);
        match result {
            Ok(Some(progressed)) => {
                self.files.insert(key, t);
                Ok(progressed)
            }
            Ok(None) => Ok(false), // let go
            Err(()) => {
                self.files.insert(key, t);
                Err(())
            }
        }
    }

    /// `Ok(None)` when the file is let go.
    fn poll_tracked(&mut self, t: &mut Tracked, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<Option<bool>, ()> {
        if t.file.is_none() {
            match self.reopen_grown(t) {
                Reopen::Open => {}
                Reopen::NotNow => return Ok(Some(false)),
                Reopen::Gone => return self.closed_and_gone(t, send),
            }
        }
        let Some(file) = t.file.as_mut() else {
            return Ok(Some(false));
        };
        let Ok(meta) = file.metadata() else {
            return Ok(Some(false));
        };
        let size = meta.len();
        if t.format.is_none() && self.settings.framing.is_some() {
            // Found empty: the format is known with the first byte.
            if size == 0 {
                return Ok(Some(false));
            }
            t.format = self.detect(t.file.as_ref().expect("open"));
            t.framer = self.framer(t.format);
        }
        // Truncated: shorter than what was read, or (copytruncate, then written again) its
        // first bytes changed.
        let rewritten = size != t.size && t.read_offset() > 0 && {
            let file = t.file.as_ref().expect("open");
            !FileIdentity::of(file).is_ok_and(|id| id.same_file_as(&t.identity)) || !starts_with(file, &t.head)
        };
        if size < t.read_offset() || rewritten {
            self.truncated(t, size, send)?;
        }
        let (read, read_head) = self.read_available(t, send)?;
        t.size = size.max(t.read_offset());
        let new_identity = self.sign_again(t, read_head);
        if read > 0 || new_identity.is_some() {
            self.acks.update(t.source, new_identity, None, t.size);
        }
        if read > 0 {
            return Ok(Some(true));
        }
        self.quiet(t, send)
    }

    /// A file closed to save descriptors: reopened when it grew and is still the same file
    /// (and a descriptor is free); `Gone` when it did not grow and left the globs
    /// `rotate_wait` ago.
    fn reopen_grown(&mut self, t: &mut Tracked) -> Reopen {
        let grew = std::fs::metadata(&t.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == (t.identity.dev(), t.identity.ino()) && m.len() != t.size);
        if !grew
            && t.gone_since
                .is_some_and(|g| g.elapsed() >= self.settings.timing.rotate_wait)
        {
            return Reopen::Gone;
        }
        if !grew || !self.make_room() {
            return Reopen::NotNow;
        }
        match File::open(&t.path).and_then(|mut f| f.seek(SeekFrom::Start(t.read_offset())).map(|_| f)) {
            Ok(f) if FileIdentity::of(&f).is_ok_and(|id| id.same_file_as(&t.identity)) => {
                t.file = Some(f);
                self.stats.files_open.fetch_add(1, Ordering::Relaxed);
                Reopen::Open
            }
            _ => Reopen::NotNow,
        }
    }

    /// Reads what the open file has, up to a budget, and sends its whole lines (all of
    /// them, once something was read). Returns the bytes read and whether they included the
    /// file's first bytes.
    fn read_available(
        &mut self,
        t: &mut Tracked,
        send: &mut dyn FnMut(SourceChunk) -> bool,
    ) -> Result<(usize, bool), ()> {
        let budget = self.settings.chunk_bytes.max(1 << 16) * 4;
        let mut read = 0usize;
        // Whether this poll read the file's first bytes: the identity, signed when the file
        // was opened (or found truncated), may describe contents replaced before this read.
        let mut read_head = false;
        while read < budget {
            let at = t.read_offset();
            let file = t.file.as_mut().expect("open");
            let spare = t.chunker.spare();
            let n = match file.read(spare) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(file = %t.path.display(), "read failed: {e}");
                    0
                }
            };
            if n == 0 {
                break;
            }
            if !starts_with(file, &t.head) {
                // Truncated and written again between the check above and this read: these
                // bytes are (most likely) the new contents at the old offset, which would make
                // torn lines. Dropped; the file is read again from the start. (Were they the
                // old contents, read just before the truncation, they go with it, like bytes
                // a truncation takes before they are read.)
                let size = file.metadata().map_or(0, |m| m.len());
                self.truncated(t, size, send)?;
                continue;
            }
            if at < SIGNATURE_LEN as u64 && at == t.head.len() as u64 {
                read_head |= at == 0;
                let keep = n.min(SIGNATURE_LEN - t.head.len());
                t.head.extend_from_slice(&spare[..keep]);
            }
            t.chunker.commit(n);
            read += n;
            self.input.bytes.fetch_add(n as u64, Ordering::Relaxed);
            while let Some(chunk) = t.chunker.next_chunk(false, false) {
                self.send_chunk(t, chunk, send)?;
            }
        }
        if read > 0 {
            t.last_data = Instant::now();
            t.held = t.framer.is_some();
            while let Some(chunk) = t.chunker.next_chunk(true, false) {
                self.send_chunk(t, chunk, send)?;
            }
        }
        Ok((read, read_head))
    }

    /// A growing file with a short signature is signed again, so the checkpoint holds the
    /// strongest identity. After reading its first bytes (`read_head`), it is signed again
    /// too, from what was read: truncated and written again between the signing and the
    /// read, it is otherwise checkpointed under an identity of contents never read (found by
    /// tests/follow_model.rs: a restart then took it for another file and read it again).
    /// Returns the new identity, if it changed.
    fn sign_again(&self, t: &mut Tracked, read_head: bool) -> Option<FileIdentity> {
        if (read_head || (!t.identity.is_complete() && t.read_offset() > t.identity.signed_len()))
            && let Ok(id) = FileIdentity::of(t.file.as_ref().expect("open"))
            && (read_head || id.same_file_as(&t.identity))
            && id != t.identity
            && starts_with(t.file.as_ref().expect("open"), &t.head)
        {
            t.identity = id.clone();
            return Some(id);
        }
        None
    }

    /// A file with nothing new: its last record goes out after `flush_timeout`; one that
    /// left the globs and stays quiet `rotate_wait` is done: its last line (even without a
    /// newline) goes out, then it is let go (`None`).
    fn quiet(&mut self, t: &mut Tracked, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<Option<bool>, ()> {
        let idle = t.last_data.elapsed();
        if t.held && idle >= self.settings.timing.flush_timeout {
            t.held = false;
            self.flush_framer(t, send)?;
        }
        if let Some(gone) = t.gone_since
            && gone.elapsed() >= self.settings.timing.rotate_wait
            && idle >= self.settings.timing.rotate_wait
        {
            while let Some(chunk) = t.chunker.next_chunk(true, true) {
                self.send_chunk(t, chunk, send)?;
            }
            self.flush_framer(t, send)?;
            let end = t.read_offset();
            tracing::debug!(file = %t.path.display(), end, "read to its end after it left the globs; let go");
            self.acks.release(t.source, end);
            self.count_frames(t);
            self.stats.files_released.fetch_add(1, Ordering::Relaxed);
            if t.file.take().is_some() {
                self.stats.files_open.fetch_sub(1, Ordering::Relaxed);
            }
            return Ok(None);
        }
        Ok(Some(false))
    }

    /// A file closed to save descriptors left the globs and stayed away `rotate_wait`. It
    /// was closed at its end: renamed within its directory with new bytes, it is reopened
    /// there and read to its end (`Some`); otherwise (deleted, or nothing new) it is let go
    /// (`None`), and its checkpoint with it.
    fn closed_and_gone(
        &mut self,
        t: &mut Tracked,
        send: &mut dyn FnMut(SourceChunk) -> bool,
    ) -> Result<Option<bool>, ()> {
        let key = (t.identity.dev(), t.identity.ino());
        let moved = t
            .path
            .parent()
            .map(list)
            .unwrap_or_default()
            .into_iter()
            .find(|(_, m)| (m.dev(), m.ino()) == key && m.len() > t.read_offset());
        if let Some((moved, _)) = moved
            && self.make_room()
            && let Ok(mut f) = File::open(&moved)
            && FileIdentity::of(&f).is_ok_and(|id| id.same_file_as(&t.identity))
            && f.seek(SeekFrom::Start(t.read_offset())).is_ok()
        {
            tracing::debug!(file = %t.path.display(), now = %moved.display(), "renamed while closed to save descriptors: reading the rest");
            t.file = Some(f);
            self.stats.files_open.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(false));
        }
        tracing::debug!(file = %t.path.display(), end = t.read_offset(), "left the globs while closed to save descriptors; let go");
        // Its last line without a newline goes out, as for any file let go.
        while let Some(chunk) = t.chunker.next_chunk(true, true) {
            self.send_chunk(t, chunk, send)?;
        }
        self.flush_framer(t, send)?;
        self.acks.release(t.source, t.read_offset());
        self.count_frames(t);
        self.stats.files_released.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    fn lost(&self, t: &Tracked, why: &str) {
        let lost = t.size.saturating_sub(t.read_offset());
        if lost > 0 {
            self.stats.bytes_lost.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(file = %t.path.display(), lost, "bytes could not be read: {why}");
        }
    }

    /// copytruncate: the copy sits next to the file and starts with the same bytes. Reads
    /// what it has beyond the read offset (bytes written just before the truncation).
    fn read_copy(&mut self, t: &mut Tracked, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<bool, ()> {
        let Some(dir) = t.path.parent() else { return Ok(false) };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(false);
        };
        let from = t.read_offset();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || meta.len() <= from || (meta.dev(), meta.ino()) == (t.identity.dev(), t.identity.ino())
            {
                continue;
            }
            let Ok(mut copy) = File::open(entry.path()) else {
                continue;
            };
            if !FileIdentity::of(&copy).is_ok_and(|id| id.starts_like(&t.identity))
                || !starts_with(&copy, &t.head)
                || copy.seek(SeekFrom::Start(from)).is_err()
            {
                continue;
            }
            tracing::info!(file = %t.path.display(), copy = %entry.path().display(), from, "copytruncate: reading the rest from the copy");
            loop {
                let spare = t.chunker.spare();
                let n = match copy.read(spare) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                if n == 0 {
                    break;
                }
                t.chunker.commit(n);
                self.input.bytes.fetch_add(n as u64, Ordering::Relaxed);
                while let Some(chunk) = t.chunker.next_chunk(false, false) {
                    self.send_chunk(t, chunk, send)?;
                }
            }
            t.size = t.read_offset();
            return Ok(true);
        }
        Ok(false)
    }

    fn truncated(&mut self, t: &mut Tracked, size: u64, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<(), ()> {
        self.stats.truncations.fetch_add(1, Ordering::Relaxed);
        let copied = self.read_copy(t, send)?;
        // What is left is the end of the old contents: out with it, as at the end of a file.
        while let Some(chunk) = t.chunker.next_chunk(true, true) {
            self.send_chunk(t, chunk, send)?;
        }
        self.flush_framer(t, send)?;
        if !copied {
            // Bytes seen beyond what was read are gone with the truncation.
            self.lost(t, "the file was truncated first");
        }
        tracing::warn!(
            file = %t.path.display(),
            read = t.read_offset(),
            size,
            "file truncated: reading it again from the start"
        );
        let end = t.read_offset();
        let file = t.file.as_mut().expect("open");
        let _ = file.seek(SeekFrom::Start(0));
        let identity = FileIdentity::of(file).unwrap_or_else(|_| t.identity.clone());
        t.identity = identity.clone();
        // The old contents keep their checkpoint until delivered up to `end`: killed before
        // that, the next start finds the copy by it (see `recover`).
        t.generation = self.acks.restart(t.source, identity, end);
        self.count_frames(t);
        t.chunker = self.chunker(0);
        t.framer = self.framer(t.format);
        t.head.clear();
        t.size = size;
        Ok(())
    }

    /// Closes the framer's open records into a batch.
    fn flush_framer(&mut self, t: &mut Tracked, send: &mut dyn FnMut(SourceChunk) -> bool) -> Result<(), ()> {
        let Some(framer) = t.framer.as_mut() else { return Ok(()) };
        if framer.held_from().is_none() {
            return Ok(());
        }
        let mut framed = Framed {
            arena: self.pool.take_empty(0),
            offset: t.chunker.offset(),
            ..Framed::default()
        };
        framer.finish(&mut framed);
        self.input.add_frame(framer.take_stats());
        let ack = AckPoint {
            source: t.source,
            generation: t.generation,
            offset: t.chunker.offset(),
        };
        self.emit(t, ChunkPayload::Framed(framed), ack, send)
    }

    fn send_chunk(
        &mut self,
        t: &mut Tracked,
        chunk: Chunk,
        send: &mut dyn FnMut(SourceChunk) -> bool,
    ) -> Result<(), ()> {
        let end = chunk.offset + chunk.data.len() as u64;
        let (payload, offset) = match t.framer.as_mut() {
            None => (ChunkPayload::Lines(chunk), end),
            Some(framer) => {
                let mut framed = Framed {
                    arena: self.pool.take_empty(0),
                    ..Framed::default()
                };
                framer.frame(chunk, &mut framed);
                // Counted as it goes, so that /metrics shows a followed file's problems.
                self.input.add_frame(framer.take_stats());
                let offset = framer.held_from().unwrap_or(end);
                (ChunkPayload::Framed(framed), offset)
            }
        };
        let ack = AckPoint {
            source: t.source,
            generation: t.generation,
            offset,
        };
        self.emit(t, payload, ack, send)
    }

    fn emit(
        &mut self,
        t: &mut Tracked,
        payload: ChunkPayload,
        ack: AckPoint,
        send: &mut dyn FnMut(SourceChunk) -> bool,
    ) -> Result<(), ()> {
        let chunk = SourceChunk {
            payload,
            source: t.source,
            seq: t.seq,
            ack: Some(Ack::File(ack, self.acks.clone())),
            fields: t.pod.clone(),
        };
        t.seq += 1;
        if send(chunk) { Ok(()) } else { Err(()) }
    }

    /// Adds a framer's counters (and its chunker's cut lines) to the input's.
    fn count_frames(&self, t: &Tracked) {
        self.input.lines_cut.fetch_add(t.chunker.lines_cut(), Ordering::Relaxed);
        if let Some(f) = &t.framer {
            self.input.add_frame(f.stats());
        }
    }
}

/// The entries of `dir` with their metadata (not following links); empty when it cannot
/// be read.
fn list(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok().map(|m| (e.path(), m)))
        .collect()
}

/// Whether `file` starts with `head` (bytes read from its start earlier).
/// The copy of the checkpointed file `identity` in `listing`: a file longer than the
/// checkpoint's `offset` that starts with the bytes the identity signed, not the file
/// itself nor an `excluded` one; the longest, which has the most of what was written
/// before the copy.
fn find_copy<'a>(
    listing: &'a [(PathBuf, std::fs::Metadata)],
    identity: &FileIdentity,
    offset: u64,
    excluded: impl Fn((u64, u64)) -> bool,
) -> Option<&'a (PathBuf, std::fs::Metadata)> {
    listing
        .iter()
        .filter(|(_, m)| {
            let key = (m.dev(), m.ino());
            m.is_file() && m.len() > offset && key != (identity.dev(), identity.ino()) && !excluded(key)
        })
        .filter(|(p, _)| FileIdentity::of_path(p).is_ok_and(|id| id.starts_like(identity)))
        .max_by_key(|(_, m)| m.len())
}

fn starts_with(file: &File, head: &[u8]) -> bool {
    if head.is_empty() {
        return true;
    }
    let mut buf = vec![0u8; head.len()];
    file.read_exact_at(&mut buf, 0).is_ok() && buf == head
}

/// The files the globs match now, sorted, without the excluded ones.
pub fn matched(paths: &[String], exclude: &[glob::Pattern]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in paths {
        let Ok(entries) = glob::glob(pattern) else { continue };
        for p in entries.flatten() {
            if !exclude.iter().any(|x| x.matches_path(&p)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The directory a glob pattern's matches live under: its longest prefix without wildcards.
fn watch_root(pattern: &str) -> (PathBuf, bool) {
    let mut root = PathBuf::new();
    let mut recursive = false;
    let components: Vec<_> = Path::new(pattern).components().collect();
    for (i, c) in components.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            // A wildcard in a directory part (not the last) means nested directories.
            recursive = i + 1 < components.len();
            break;
        }
        if i + 1 == components.len() {
            break; // the file name itself
        }
        root.push(c.as_os_str());
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    (root, recursive)
}

/// Watches the globs' directories; each event wakes the tailer (`true` when files may have
/// appeared, moved or gone). `None` when inotify is not available: polling only.
fn watch(paths: &[String]) -> Option<(Receiver<bool>, notify::RecommendedWatcher)> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            let structural = !matches!(
                event.kind,
                EventKind::Modify(notify::event::ModifyKind::Data(_)) | EventKind::Access(_)
            );
            let _ = tx.try_send(structural);
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("file events unavailable ({e}); polling only");
            return None;
        }
    };
    for pattern in paths {
        let (root, recursive) = watch_root(pattern);
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Err(e) = watcher.watch(&root, mode) {
            tracing::debug!(dir = %root.display(), "cannot watch ({e}); polling it");
        }
    }
    Some((rx, watcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_roots() {
        assert_eq!(watch_root("/var/log/app/*.log"), (PathBuf::from("/var/log/app"), false));
        assert_eq!(
            watch_root("/var/log/pods/*/*/*.log"),
            (PathBuf::from("/var/log/pods"), true)
        );
        assert_eq!(watch_root("/var/log/a.log"), (PathBuf::from("/var/log"), false));
        assert_eq!(watch_root("*.log"), (PathBuf::from("."), false));
    }
}
