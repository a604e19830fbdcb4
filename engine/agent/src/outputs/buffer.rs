//! Disk buffers: an output's `buffer: { type: disk }`, where batches wait on disk for a
//! destination that is slow or down, so a long outage costs disk instead of memory and the
//! inputs' checkpoints keep moving.
//!
//! [`BufferSink`] stands between the output thread and the output's real [`Sink`]. Its
//! `write` appends the batch as one record to the newest segment file; its `flush` syncs
//! (per `fsync`) and returns `Ok`, so the output thread acknowledges the batch to its
//! source. A drain thread reads the records in order, writes them to the real sink, and
//! only after the sink's flush succeeds moves the persisted read position (the `ack` file)
//! and deletes the segments read to their end. A restart (or a SIGKILL) replays from that
//! position: a record delivered but not yet marked comes again (at-least-once), counted in
//! `weir_buffer_records_replayed_total`.
//!
//! On disk, in `<data_dir>/buffers/<output>/`: segments `00000000000000000001.seg`... and
//! `ack` (`SEGMENT OFFSET`, replaced atomically). A record is a 28-byte header and the
//! batch's encoded bytes:
//!
//! ```text
//! magic u32 "WBR1" | payload length u32 | events u32 | payload CRC-32 u32 |
//! written at (Unix ms) u64 | header CRC-32 u32 (of the 24 bytes before) | payload
//! ```
//!
//! All integers are little-endian. A record whose payload fails its CRC is skipped (its
//! header says how long it is); a header that fails its CRC (or a record cut short by a
//! crash) makes the reader look for the next valid header in the segment. Either way the
//! record is counted in `weir_buffer_records_damaged_total` and delivery goes on.
//!
//! Disk use (segments, headers included) never exceeds `max_size`: when the next record
//! does not fit, `when_full: block` makes the output thread wait for the drain (so
//! backpressure reaches the inputs, as with the memory queue) and `drop_newest` drops the
//! batch, counts its events and acknowledges it. Memory stays bounded: the drain holds one
//! record at a time (plus what the real sink buffers until its flush).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use weir_core::units::ByteSize;

use super::{OutputStats, Sink};

/// `buffer:` of an output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// `memory` (default: the bounded in-memory queue) or `disk`.
    #[serde(rename = "type", default)]
    pub kind: BufferKind,
    /// Most disk the buffer's segments take (default 1GiB; at least 1MiB).
    #[serde(default)]
    pub max_size: Option<MaxSize>,
    /// What a full buffer does with a new batch (default `block`).
    #[serde(default)]
    pub when_full: WhenFull,
    /// When written records are synced to disk before they are acknowledged (default
    /// `interval`: at most once a second).
    #[serde(default)]
    pub fsync: Fsync,
}

impl BufferConfig {
    /// `max_size` in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_size.map_or(1 << 30, |m| m.0)
    }
}

/// `buffer.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferKind {
    /// The bounded in-memory queue between the workers and the output thread.
    #[default]
    Memory,
    /// Segment files under `data_dir`, acknowledged once written.
    Disk,
}

/// `buffer.when_full`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for the destination to take records (backpressure reaches the inputs).
    #[default]
    Block,
    /// Drop the new batch, count its events (`weir_buffer_events_dropped_total`) and
    /// acknowledge it: the inputs never wait, events are lost while the buffer is full.
    DropNewest,
}

/// `buffer.fsync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Before every acknowledgement: nothing acknowledged is lost even if the machine
    /// crashes; the slowest.
    Always,
    /// At most once a second: a process crash loses nothing (the page cache keeps it), a
    /// machine crash may lose the last second.
    #[default]
    Interval,
    /// Never (the kernel writes back when it likes).
    Never,
}

/// `buffer.max_size`: a size of at least 1MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSize(pub u64);

impl<'de> Deserialize<'de> for MaxSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MaxSize, D::Error> {
        let size = ByteSize::deserialize(d)?;
        if size.0 < 1 << 20 {
            return Err(serde::de::Error::custom(format!(
                "buffer max_size {size} is too small: at least 1MiB"
            )));
        }
        Ok(MaxSize(size.0))
    }
}

/// The directory of output `index`'s disk buffer: `<data_dir>/buffers/<name>` for a
/// named output (characters other than letters, digits, `-`, `_` and `.` become `_`),
/// else `<data_dir>/buffers/output-<index>`.
pub fn dir(data_dir: &Path, index: usize, name: Option<&str>) -> PathBuf {
    let leaf = match name {
        Some(n) if !n.is_empty() && n != "." && n != ".." => n
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        _ => format!("output-{index}"),
    };
    data_dir.join("buffers").join(leaf)
}

/// What `weir doctor` tells of a buffer directory: segment bytes and count, and when the
/// oldest segment was last written.
pub fn usage(dir: &Path) -> io::Result<(u64, usize, Option<SystemTime>)> {
    let mut bytes = 0;
    let mut oldest: Option<SystemTime> = None;
    let segments = list_segments(dir)?;
    for (_, path) in &segments {
        let meta = fs::metadata(path)?;
        bytes += meta.len();
        if let Ok(t) = meta.modified() {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
    }
    Ok((bytes, segments.len(), oldest))
}

const MAGIC: &[u8; 4] = b"WBR1";
const HEADER: usize = 28;
const ACK_FILE: &str = "ack";
/// The longest wait between two syncs with `fsync: interval`.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The largest segment file (before its last record).
const MAX_SEGMENT: u64 = 32 << 20;

/// A record's header, as read back.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: u32,
    events: u32,
    crc: u32,
    at_ms: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&self.len.to_le_bytes());
        h[8..12].copy_from_slice(&self.events.to_le_bytes());
        h[12..16].copy_from_slice(&self.crc.to_le_bytes());
        h[16..24].copy_from_slice(&self.at_ms.to_le_bytes());
        let hcrc = crc32fast::hash(&h[..24]);
        h[24..28].copy_from_slice(&hcrc.to_le_bytes());
        h
    }

    /// The header in `h`, if its magic and CRC are right.
    fn decode(h: &[u8]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        if h.len() < HEADER || &h[0..4] != MAGIC || crc32fast::hash(&h[..24]) != u32_at(24) {
            return None;
        }
        Some(Header {
            len: u32_at(4),
            events: u32_at(8),
            crc: u32_at(12),
            at_ms: u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")),
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The segment files in `dir`, oldest first.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            out.push((id, path));
        }
    }
    out.sort();
    Ok(out)
}

/// A position in the buffer: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pos {
    seg: u64,
    off: u64,
}

fn read_ack(dir: &Path) -> Option<Pos> {
    let text = fs::read_to_string(dir.join(ACK_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    let seg = parts.next()?.parse().ok()?;
    let off = parts.next()?.parse().ok()?;
    Some(Pos { seg, off })
}

fn write_ack(dir: &Path, pos: Pos, sync: bool) -> io::Result<()> {
    let tmp = dir.join("ack.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{} {}", pos.seg, pos.off)?;
    if sync {
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join(ACK_FILE))
}

/// A segment on disk: its id and how many bytes of whole records it holds.
#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    len: u64,
}

/// What the writer and the drain share, under [`Shared::state`].
#[derive(Debug, Default)]
struct State {
    /// Oldest first; the last one is the writer's.
    segments: VecDeque<Segment>,
    /// Bytes of every segment, plus the record being written.
    total: u64,
    /// The writer is done (the output thread closed): the drain ends once caught up.
    closed: bool,
    /// The drain stopped (its sink failed): the writer fails too.
    failed: bool,
}

/// Counters of one buffer, also rendered in `/metrics` (the output's labeled families).
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    max_size: u64,
    segment_size: u64,
    fsync: Fsync,
    state: Mutex<State>,
    /// Signalled when a record is appended or the writer closes.
    more: Condvar,
    /// Signalled when segments are deleted or the drain stops.
    space: Condvar,
    stats: Arc<OutputStats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, name: &'static str, help: &'static str, n: u64) {
        self.stats.labeled.add(name, help, &[], n as f64);
    }

    fn gauge(&self, name: &'static str, help: &'static str, v: f64) {
        self.stats.labeled.set(name, help, &[], v);
    }

    fn set_bytes(&self, total: u64) {
        self.gauge(
            "weir_buffer_bytes",
            "Bytes of the disk buffer's segments.",
            total as f64,
        );
    }

    fn damaged(&self) {
        self.count(
            "weir_buffer_records_damaged_total",
            "Disk buffer records skipped because they were damaged (bad checksum, cut short).",
            1,
        );
    }
}

/// The metric names, declared at 0 when a buffer opens.
const COUNTERS: [(&str, &str); 5] = [
    (
        "weir_buffer_records_written_total",
        "Records written to the disk buffer.",
    ),
    (
        "weir_buffer_records_delivered_total",
        "Disk buffer records delivered by the output.",
    ),
    (
        "weir_buffer_records_replayed_total",
        "Disk buffer records a restart delivers again (some may be duplicates).",
    ),
    (
        "weir_buffer_records_damaged_total",
        "Disk buffer records skipped because they were damaged (bad checksum, cut short).",
    ),
    (
        "weir_buffer_events_dropped_total",
        "Events dropped because the disk buffer was full.",
    ),
];

/// The output's sink when it has a disk buffer: see the module docs.
pub struct BufferSink {
    shared: Arc<Shared>,
    when_full: WhenFull,
    /// The writer's segment.
    file: File,
    write_id: u64,
    last_sync: Instant,
    unsynced: bool,
    drain: Option<JoinHandle<()>>,
    /// Events dropped since the last warning, and when it was.
    dropped: u64,
    warned: Option<Instant>,
}

impl std::fmt::Debug for BufferSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferSink").field("dir", &self.shared.dir).finish()
    }
}

impl BufferSink {
    /// Opens (creating it) the buffer in `dir`, in front of `sink`,
    /// and starts the drain thread, which first replays what an earlier run left.
    pub fn open(
        dir: &Path,
        config: &BufferConfig,
        sink: Box<dyn Sink>,
        stats: Arc<OutputStats>,
    ) -> io::Result<BufferSink> {
        if !open_dirs().insert(dir.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("disk buffer {}: already open in this agent", dir.display()),
            ));
        }
        Self::try_open(dir, config, sink, stats).map_err(|e| {
            open_dirs().remove(dir);
            io::Error::new(e.kind(), format!("disk buffer {}: {e}", dir.display()))
        })
    }

    fn try_open(
        dir: &Path,
        config: &BufferConfig,
        sink: Box<dyn Sink>,
        stats: Arc<OutputStats>,
    ) -> io::Result<BufferSink> {
        fs::create_dir_all(dir)?;
        let max_size = config.max_size();
        let found = list_segments(dir)?;
        let ack = read_ack(dir);
        let mut state = State::default();
        for (id, path) in &found {
            if ack.is_some_and(|a| *id < a.seg) {
                // Delivered; its deletion was cut short.
                fs::remove_file(path)?;
                continue;
            }
            let len = fs::metadata(path)?.len();
            state.total += len;
            state.segments.push_back(Segment { id: *id, len });
        }
        let first = state.segments.front().map(|s| s.id);
        let start = match (ack, first) {
            (Some(a), Some(f)) if a.seg == f => a,
            (_, Some(f)) => Pos { seg: f, off: 0 },
            (_, None) => Pos::default(),
        };
        // Segments of earlier runs are never appended to again: a new run starts a new one.
        let write_id = found
            .last()
            .map_or(1, |(id, _)| id + 1)
            .max(ack.map_or(0, |a| a.seg + 1));
        let file = create_segment(dir, write_id)?;
        state.segments.push_back(Segment { id: write_id, len: 0 });
        let replay_until = write_id;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            max_size,
            segment_size: (max_size / 8).clamp(64 << 10, MAX_SEGMENT),
            fsync: config.fsync,
            state: Mutex::new(state),
            more: Condvar::new(),
            space: Condvar::new(),
            stats,
        });
        for (name, help) in COUNTERS {
            shared.count(name, help, 0);
        }
        shared.set_bytes(shared.lock().total);
        let drain_shared = shared.clone();
        let drain = std::thread::Builder::new()
            .name("weir-buffer".into())
            .spawn(move || Drain::new(drain_shared, sink, start, replay_until).run())?;
        Ok(BufferSink {
            shared,
            when_full: config.when_full,
            file,
            write_id,
            last_sync: Instant::now(),
            unsynced: false,
            drain: Some(drain),
            dropped: 0,
            warned: None,
        })
    }

    /// Starts the next segment (the current one can then be deleted once read).
    fn rotate(&mut self, state: &mut State) -> io::Result<()> {
        if self.shared.fsync != Fsync::Never && self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        self.write_id += 1;
        self.file = create_segment(&self.shared.dir, self.write_id)?;
        state.segments.push_back(Segment {
            id: self.write_id,
            len: 0,
        });
        Ok(())
    }

    /// Drops `events` of a batch the buffer has no room for, counted and warned about (at
    /// most every 10 s).
    fn drop_batch(&mut self, events: u64, why: &str) {
        self.shared.count(
            "weir_buffer_events_dropped_total",
            "Events dropped because the disk buffer was full.",
            events,
        );
        self.dropped += events;
        if self.warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                dir = %self.shared.dir.display(),
                "disk buffer: {why}: dropped {} event(s) since the last warning",
                self.dropped
            );
            self.dropped = 0;
            self.warned = Some(Instant::now());
        }
    }

    /// Appends one record; see [`WhenFull`] for a full buffer.
    fn append(&mut self, payload: &[u8], events: u64) -> io::Result<()> {
        let size = (HEADER + payload.len()) as u64;
        let shared = self.shared.clone();
        if size > shared.max_size / 2 || payload.len() > u32::MAX as usize {
            // It could never fit beside what the drain still reads.
            self.drop_batch(events, "a batch larger than half of max_size");
            return Ok(());
        }
        let mut state = shared.lock();
        loop {
            if state.failed {
                return Err(io::Error::other("the disk buffer's output stopped delivering"));
            }
            if state.total + size <= shared.max_size {
                break;
            }
            match self.when_full {
                WhenFull::DropNewest => {
                    drop(state);
                    self.drop_batch(events, "full");
                    return Ok(());
                }
                WhenFull::Block => {
                    // Hand the current segment to the drain, so that once read it can go.
                    if state.segments.back().is_some_and(|s| s.len > 0) {
                        self.rotate(&mut state)?;
                    }
                    state = shared
                        .space
                        .wait_timeout(state, Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        let current = state.segments.back().map_or(0, |s| s.len);
        if current > 0 && current + size > shared.segment_size {
            self.rotate(&mut state)?;
        }
        state.total += size;
        drop(state);
        let header = Header {
            len: payload.len() as u32,
            events: events.min(u64::from(u32::MAX)) as u32,
            crc: crc32fast::hash(payload),
            at_ms: now_ms(),
        };
        let result = self
            .file
            .write_all(&header.encode())
            .and_then(|()| self.file.write_all(payload));
        let mut state = shared.lock();
        match result {
            Ok(()) => {
                if let Some(last) = state.segments.back_mut() {
                    last.len += size;
                }
                self.unsynced = true;
                shared.set_bytes(state.total);
                drop(state);
                shared.count(
                    "weir_buffer_records_written_total",
                    "Records written to the disk buffer.",
                    1,
                );
                shared.more.notify_all();
                Ok(())
            }
            Err(e) => {
                state.total -= size;
                Err(e)
            }
        }
    }

    /// Syncs per `fsync` (`always`: now; `interval`: if the last sync is a second old).
    fn sync(&mut self, force: bool) -> io::Result<()> {
        let due = match self.shared.fsync {
            Fsync::Always => true,
            Fsync::Interval => force || self.last_sync.elapsed() >= SYNC_INTERVAL,
            Fsync::Never => false,
        };
        if due && self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}

fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    File::options().create(true).append(true).open(segment_path(dir, id))
}

impl Sink for BufferSink {
    fn write(&mut self, bytes: &[u8], events: u64) -> io::Result<()> {
        self.append(bytes, events)
    }

    /// Written records are on disk (synced per `fsync`): the batches may be acknowledged.
    fn flush(&mut self) -> io::Result<()> {
        self.sync(false)
    }

    fn flush_bytes(&self) -> usize {
        1 << 20
    }
}

impl Drop for BufferSink {
    /// Closes the writer and waits for the drain: it delivers what is left, or stops when
    /// its sink gives up (the shutdown deadline); what it did not deliver stays on disk.
    fn drop(&mut self) {
        if let Err(e) = self.sync(true) {
            tracing::error!(dir = %self.shared.dir.display(), "disk buffer: cannot sync: {e}");
        }
        self.shared.lock().closed = true;
        self.shared.more.notify_all();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        open_dirs().remove(&self.shared.dir);
    }
}

/// The buffer directories open in this process: one writer and one drain each (a reload
/// that would open one twice is refused, see [`in_use`]).
fn open_dirs() -> MutexGuard<'static, std::collections::BTreeSet<PathBuf>> {
    static OPEN: Mutex<std::collections::BTreeSet<PathBuf>> = Mutex::new(std::collections::BTreeSet::new());
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a disk buffer of this process has `dir` open (its output runs, or a reload
/// removed it and it is still delivering what it holds).
pub fn in_use(dir: &Path) -> bool {
    open_dirs().contains(dir)
}

/// A record read back.
struct Record {
    payload: Vec<u8>,
    events: u64,
    at_ms: u64,
}

/// What the drain's reader found at its position.
enum Next {
    Record(Record),
    /// Nothing more yet.
    Empty,
}

/// The drain thread: reads records in order and delivers them through the real sink.
struct Drain {
    shared: Arc<Shared>,
    sink: Box<dyn Sink>,
    /// Where the next record is read.
    pos: Pos,
    /// Where the last saved position is: everything before it is delivered.
    acked: Pos,
    /// The open segment being read.
    file: Option<(u64, File)>,
    /// Records in segments before this one were written by an earlier run.
    replay_until: u64,
}

impl Drain {
    fn new(shared: Arc<Shared>, sink: Box<dyn Sink>, pos: Pos, replay_until: u64) -> Drain {
        Drain {
            shared,
            sink,
            pos,
            acked: pos,
            file: None,
            replay_until,
        }
    }

    fn run(mut self) {
        let flush_bytes = self.sink.flush_bytes().max(1);
        let interval = self.sink.flush_interval();
        // Written to the sink, not yet flushed: bytes, records, when the first was written.
        let (mut bytes, mut records) = (0usize, 0u64);
        let mut first: Option<Instant> = None;
        loop {
            let next = match self.next() {
                Ok(n) => n,
                Err(e) => {
                    // The segment cannot be read at all: count it and go on with the next.
                    tracing::error!(dir = %self.shared.dir.display(), "disk buffer: cannot read: {e}");
                    self.shared.damaged();
                    self.skip_segment();
                    continue;
                }
            };
            match next {
                Next::Record(r) => {
                    if records == 0 {
                        self.shared
                            .stats
                            .buffer_oldest_ms
                            .store(r.at_ms.max(1), Ordering::Relaxed);
                    }
                    if let Err(e) = self.sink.write(&r.payload, r.events) {
                        return self.fail(e);
                    }
                    bytes += r.payload.len();
                    records += 1;
                    first.get_or_insert_with(Instant::now);
                    if bytes < flush_bytes {
                        continue;
                    }
                }
                Next::Empty => {
                    let closed = self.shared.lock().closed;
                    if records == 0 && self.pos != self.acked {
                        // Moved past the end of a delivered segment: it can go.
                        if let Err(e) = self.delivered() {
                            tracing::error!(dir = %self.shared.dir.display(), "disk buffer: cannot save the read position: {e}");
                        }
                    }
                    if records == 0 {
                        self.shared.stats.buffer_oldest_ms.store(0, Ordering::Relaxed);
                        if closed {
                            return;
                        }
                        self.wait(Duration::from_secs(1));
                        continue;
                    }
                    let waited = first.map_or(Duration::ZERO, |t| t.elapsed());
                    if !closed && waited < interval {
                        self.wait(interval - waited);
                        continue;
                    }
                }
            }
            if let Err(e) = self.sink.flush() {
                return self.fail(e);
            }
            self.shared.count(
                "weir_buffer_records_delivered_total",
                "Disk buffer records delivered by the output.",
                records,
            );
            (bytes, records, first) = (0, 0, None);
            if let Err(e) = self.delivered() {
                tracing::error!(dir = %self.shared.dir.display(), "disk buffer: cannot save the read position: {e}");
            }
        }
    }

    /// Waits for a record to be appended (or the writer to close), at most `most`.
    fn wait(&self, most: Duration) {
        let state = self.shared.lock();
        if state.closed || self.ready(&state) {
            return;
        }
        let _ = self.shared.more.wait_timeout(state, most);
    }

    /// Whether a record may be waiting past the read position.
    fn ready(&self, state: &State) -> bool {
        state
            .segments
            .iter()
            .any(|s| s.id > self.pos.seg || (s.id == self.pos.seg && s.len > self.pos.off))
    }

    /// The sink gave up: what is on disk stays for the next run; the writer fails.
    fn fail(&self, e: io::Error) {
        tracing::error!(dir = %self.shared.dir.display(), "disk buffer: the output failed: {e}; undelivered records stay on disk");
        self.shared.lock().failed = true;
        self.shared.space.notify_all();
    }

    /// Everything read so far is delivered: saves the position, deletes the segments read
    /// to their end.
    fn delivered(&mut self) -> io::Result<()> {
        write_ack(&self.shared.dir, self.pos, self.shared.fsync != Fsync::Never)?;
        self.acked = self.pos;
        let mut gone = Vec::new();
        {
            let mut state = self.shared.lock();
            while state.segments.front().is_some_and(|s| s.id < self.pos.seg) {
                let s = state.segments.pop_front().expect("checked");
                state.total -= s.len;
                gone.push(s.id);
            }
            self.shared.set_bytes(state.total);
        }
        self.shared.space.notify_all();
        for id in gone {
            fs::remove_file(segment_path(&self.shared.dir, id))?;
        }
        Ok(())
    }

    /// Moves past the segment being read (to the next one, if there is one).
    fn skip_segment(&mut self) {
        let state = self.shared.lock();
        match state.segments.iter().find(|s| s.id > self.pos.seg) {
            Some(s) => self.pos = Pos { seg: s.id, off: 0 },
            None => {
                if let Some(s) = state.segments.iter().find(|s| s.id == self.pos.seg) {
                    self.pos.off = s.len;
                }
            }
        }
        self.file = None;
    }

    /// The record at the read position, skipping (and counting) damaged ones.
    fn next(&mut self) -> io::Result<Next> {
        loop {
            let (len, last, later) = {
                let state = self.shared.lock();
                let seg = state.segments.iter().find(|s| s.id >= self.pos.seg).copied();
                let Some(seg) = seg else { return Ok(Next::Empty) };
                if seg.id != self.pos.seg {
                    self.pos = Pos { seg: seg.id, off: 0 };
                }
                let later = state.segments.iter().find(|s| s.id > seg.id).map(|s| s.id);
                let last = state.segments.back().is_some_and(|s| s.id == seg.id);
                (seg.len, last, later)
            };
            if self.pos.off >= len {
                match later {
                    // The writer moved on: this one is read to its end.
                    Some(id) if !last => {
                        self.pos = Pos { seg: id, off: 0 };
                        self.file = None;
                        continue;
                    }
                    _ => return Ok(Next::Empty),
                }
            }
            if self.file.as_ref().is_none_or(|(id, _)| *id != self.pos.seg) {
                let f = File::open(segment_path(&self.shared.dir, self.pos.seg))?;
                self.file = Some((self.pos.seg, f));
            }
            let file = &self.file.as_ref().expect("opened above").1;
            let left = len - self.pos.off;
            let mut h = [0u8; HEADER];
            let header = if left >= HEADER as u64 {
                file.read_exact_at(&mut h, self.pos.off)?;
                Header::decode(&h)
            } else {
                None
            };
            let Some(header) = header.filter(|h| HEADER as u64 + u64::from(h.len) <= left) else {
                // A damaged header, or a record cut short (a crash while it was written).
                self.shared.damaged();
                self.pos.off = resync(file, self.pos.off + 1, len)?;
                continue;
            };
            let mut payload = vec![0u8; header.len as usize];
            file.read_exact_at(&mut payload, self.pos.off + HEADER as u64)?;
            self.pos.off += HEADER as u64 + u64::from(header.len);
            if crc32fast::hash(&payload) != header.crc {
                self.shared.damaged();
                continue;
            }
            if self.pos.seg < self.replay_until {
                self.shared.count(
                    "weir_buffer_records_replayed_total",
                    "Disk buffer records a restart delivers again (some may be duplicates).",
                    1,
                );
            }
            return Ok(Next::Record(Record {
                payload,
                events: u64::from(header.events),
                at_ms: header.at_ms,
            }));
        }
    }
}

/// The offset of the next valid header in `file` from `from` (before `len`), or `len`.
fn resync(file: &File, from: u64, len: u64) -> io::Result<u64> {
    const WINDOW: usize = 64 << 10;
    let mut buf = vec![0u8; WINDOW + HEADER];
    let mut at = from;
    while at + HEADER as u64 <= len {
        let n = ((len - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        let mut i = 0;
        while let Some(found) = memchr::memmem::find(&buf[i..n], MAGIC) {
            let p = i + found;
            if p + HEADER > n {
                break;
            }
            if let Some(h) = Header::decode(&buf[p..p + HEADER])
                && at + (p + HEADER) as u64 + u64::from(h.len) <= len
            {
                return Ok(at + p as u64);
            }
            i = p + 1;
        }
        if n < buf.len() {
            break;
        }
        // The next window overlaps this one by a header, so none is missed at the seam.
        at += WINDOW as u64;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::Output;
    use std::sync::atomic::AtomicU64;

    /// A sink that keeps what was flushed; `fail_until` flushes fail with an error first.
    #[derive(Default, Clone)]
    struct Collect {
        got: Arc<Mutex<Vec<Vec<u8>>>>,
        pending: Vec<Vec<u8>>,
        /// While set, flushes wait (a destination that is down).
        down: Arc<std::sync::atomic::AtomicBool>,
        flushes: Arc<AtomicU64>,
    }

    impl Sink for Collect {
        fn write(&mut self, bytes: &[u8], _events: u64) -> io::Result<()> {
            self.pending.push(bytes.to_vec());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            while self.down.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.got.lock().unwrap().append(&mut self.pending);
            Ok(())
        }
    }

    fn config(max: u64, when_full: WhenFull) -> BufferConfig {
        BufferConfig {
            kind: BufferKind::Disk,
            max_size: Some(MaxSize(max)),
            when_full,
            fsync: Fsync::Interval,
        }
    }

    fn record(i: usize, size: usize) -> Vec<u8> {
        let mut r = format!("record {i} ").into_bytes();
        r.resize(size, b'x');
        r
    }

    fn counter(stats: &OutputStats, name: &str) -> u64 {
        stats.labeled.sum(name).unwrap_or(0.0) as u64
    }

    fn open(dir: &Path, max: u64, when_full: WhenFull, sink: &Collect) -> (BufferSink, Arc<OutputStats>) {
        let stats = Arc::new(OutputStats::default());
        let b = BufferSink::open(dir, &config(max, when_full), Box::new(sink.clone()), stats.clone()).unwrap();
        (b, stats)
    }

    #[test]
    fn records_round_trip_across_segments_and_segments_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        let (mut b, stats) = open(tmp.path(), 1 << 20, WhenFull::Block, &sink);
        // 64KiB segments: 200 records of 2KiB take several.
        let want: Vec<Vec<u8>> = (0..200).map(|i| record(i, 2000)).collect();
        for r in &want {
            b.write(r, 1).unwrap();
            b.flush().unwrap();
        }
        drop(b);
        assert_eq!(*sink.got.lock().unwrap(), want);
        assert_eq!(counter(&stats, "weir_buffer_records_delivered_total"), 200);
        assert_eq!(counter(&stats, "weir_buffer_records_damaged_total"), 0);
        let left = list_segments(tmp.path()).unwrap();
        assert!(left.len() <= 1, "read segments are deleted: {left:?}");
    }

    #[test]
    fn a_reopened_buffer_replays_what_was_not_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        sink.down.store(true, Ordering::Relaxed);
        let (mut b, _) = open(tmp.path(), 1 << 20, WhenFull::Block, &sink);
        let want: Vec<Vec<u8>> = (0..50).map(|i| record(i, 3000)).collect();
        for r in &want {
            b.write(r, 1).unwrap();
        }
        b.flush().unwrap();
        // A crash: the drain never delivers, the writer is gone without closing.
        std::mem::forget(b);
        open_dirs().remove(tmp.path());
        let sink2 = Collect::default();
        let (b2, stats) = open(tmp.path(), 1 << 20, WhenFull::Block, &sink2);
        drop(b2);
        assert_eq!(*sink2.got.lock().unwrap(), want);
        assert_eq!(counter(&stats, "weir_buffer_records_replayed_total"), 50);
        // Delivered and marked: a third run has nothing to replay.
        let sink3 = Collect::default();
        let (b3, stats) = open(tmp.path(), 1 << 20, WhenFull::Block, &sink3);
        drop(b3);
        assert!(sink3.got.lock().unwrap().is_empty());
        assert_eq!(counter(&stats, "weir_buffer_records_replayed_total"), 0);
    }

    /// Writes `n` records of `size` bytes into a fresh buffer whose drain cannot deliver,
    /// then "crashes"; returns the segment files.
    fn leave_records(dir: &Path, n: usize, size: usize) -> Vec<(u64, PathBuf)> {
        let sink = Collect::default();
        sink.down.store(true, Ordering::Relaxed);
        let (mut b, _) = open(dir, 4 << 20, WhenFull::Block, &sink);
        for i in 0..n {
            b.write(&record(i, size), 1).unwrap();
        }
        b.flush().unwrap();
        std::mem::forget(b);
        // The process that held it is gone.
        open_dirs().remove(dir);
        list_segments(dir).unwrap()
    }

    #[test]
    fn damaged_records_are_skipped_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let size = 1000;
        let rec = (HEADER + size) as u64;
        let segments = leave_records(tmp.path(), 40, size);
        let (_, path) = &segments[0];
        let mut bytes = fs::read(path).unwrap();
        assert_eq!(bytes.len() as u64, 40 * rec);
        bytes[(10 * rec + 100) as usize] ^= 0xff; // record 10's payload
        bytes[(20 * rec + 5) as usize] ^= 0xff; // record 20's header (its length)
        bytes.truncate((39 * rec + 50) as usize); // record 39 cut short
        fs::write(path, &bytes).unwrap();

        let sink = Collect::default();
        let (b, stats) = open(tmp.path(), 4 << 20, WhenFull::Block, &sink);
        drop(b);
        let want: Vec<Vec<u8>> = (0..39)
            .filter(|i| *i != 10 && *i != 20)
            .map(|i| record(i, size))
            .collect();
        assert_eq!(*sink.got.lock().unwrap(), want);
        assert_eq!(counter(&stats, "weir_buffer_records_damaged_total"), 3);
    }

    #[test]
    fn garbage_in_a_segment_never_stops_delivery() {
        let tmp = tempfile::tempdir().unwrap();
        let segments = leave_records(tmp.path(), 5, 100);
        let (_, path) = &segments[0];
        let mut bytes = fs::read(path).unwrap();
        bytes.splice(0..0, vec![0xAB; 1000]);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&[0xff; 40]);
        fs::write(path, &bytes).unwrap();
        fs::write(segment_path(tmp.path(), 2), b"WBR1 not a record").unwrap();
        let sink = Collect::default();
        let (b, stats) = open(tmp.path(), 4 << 20, WhenFull::Block, &sink);
        drop(b);
        let want: Vec<Vec<u8>> = (0..5).map(|i| record(i, 100)).collect();
        assert_eq!(*sink.got.lock().unwrap(), want);
        assert!(counter(&stats, "weir_buffer_records_damaged_total") >= 2);
    }

    #[test]
    fn a_full_buffer_drops_the_newest_and_counts_them() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        sink.down.store(true, Ordering::Relaxed);
        let max = 1 << 20;
        let (mut b, stats) = open(tmp.path(), max, WhenFull::DropNewest, &sink);
        for i in 0..300 {
            b.write(&record(i, 10_000), 2).unwrap();
            b.flush().unwrap();
        }
        let on_disk: u64 = list_segments(tmp.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        assert!(on_disk <= max, "{on_disk} bytes on disk");
        let kept = max / (HEADER as u64 + 10_000);
        assert_eq!(counter(&stats, "weir_buffer_events_dropped_total"), (300 - kept) * 2);
        sink.down.store(false, Ordering::Relaxed);
        drop(b);
        assert_eq!(sink.got.lock().unwrap().len() as u64, kept);
    }

    #[test]
    fn a_full_buffer_blocks_until_the_output_takes_records() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        sink.down.store(true, Ordering::Relaxed);
        let max = 1 << 20;
        let (mut b, stats) = open(tmp.path(), max, WhenFull::Block, &sink);
        let kept = max / (HEADER as u64 + 10_000);
        for i in 0..kept {
            b.write(&record(i as usize, 10_000), 1).unwrap();
        }
        let down = sink.down.clone();
        let up = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            down.store(false, Ordering::Relaxed);
        });
        let t = Instant::now();
        b.write(&record(kept as usize, 10_000), 1).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(250), "the write waited for room");
        up.join().unwrap();
        drop(b);
        assert_eq!(sink.got.lock().unwrap().len() as u64, kept + 1);
        assert_eq!(counter(&stats, "weir_buffer_events_dropped_total"), 0);
    }

    #[test]
    fn the_buffer_key_parses_with_its_defaults_and_errors_are_located() {
        let parse = |yaml: &str| {
            serde_saphyr::from_str::<super::super::http::HttpOutputConfig>(yaml)
                .map(|c| c.buffer().cloned())
                .map_err(|e| (e.location().map_or(0, |l| l.line()), e.to_string()))
        };
        let head = "uri: http://x:1/\n";
        assert!(parse(head).unwrap().is_none(), "memory unless said");
        let b = parse(&format!("{head}buffer: {{ type: disk }}\n")).unwrap().unwrap();
        assert_eq!(
            (b.kind, b.when_full, b.fsync),
            (BufferKind::Disk, WhenFull::Block, Fsync::Interval)
        );
        assert_eq!(b.max_size(), 1 << 30);
        let b = parse(&format!(
            "{head}buffer: {{ type: disk, max_size: 2MiB, when_full: drop_newest, fsync: always }}\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (b.max_size(), b.when_full, b.fsync),
            (2 << 20, WhenFull::DropNewest, Fsync::Always)
        );
        let (pos, msg) = parse(&format!("{head}buffer:\n  type: disk\n  max_size: 4KiB\n")).unwrap_err();
        assert_eq!(pos, 4, "{msg}");
        assert!(msg.contains("at least 1MiB"), "{msg}");
        let (pos, msg) = parse(&format!("{head}buffer:\n  type: disk\n  when_ful: block\n")).unwrap_err();
        assert_eq!(pos, 4, "{msg}");
        assert!(msg.contains("when_ful"), "{msg}");
    }

    #[test]
    fn the_buffer_directory_is_named_after_the_output() {
        let d = Path::new("/d");
        assert_eq!(dir(d, 2, None), Path::new("/d/buffers/output-2"));
        assert_eq!(dir(d, 2, Some("es/main")), Path::new("/d/buffers/es_main"));
        assert_eq!(dir(d, 2, Some("..")), Path::new("/d/buffers/output-2"));
    }
}
