//! Inputs: where bytes come from. One file per input `type`; each implements [`Input`],
//! and `config/registry.rs` lists it. The runtime asks an input how it is read
//! ([`Reading`]): sources read once to their end (stdin, `mode: once` files), each on a
//! thread into a [`LineChunker`] ([`read_chunks`]), or files followed with checkpoints by a
//! [`tail::Tailer`]. Chunks of whole lines go to the workers, numbered so the output keeps
//! each source's order.

pub mod exec;
pub mod file;
pub mod http;
pub mod kafka;
pub mod kubernetes;
pub mod listen;
pub mod opentelemetry;
pub mod stdin;
pub mod syslog;
pub mod tail;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::{Format, FrameStats, Framed};
use weir_core::line::{Chunk, DEFAULT_MAX_LINE_BYTES, LineChunker, LineOptions};
use weir_core::model::KeyTable;
use weir_core::multiline::{MultilineConfig, Rules};
use weir_core::pipeline::Processor;
use weir_core::pool::BufferPool;
use weir_core::units::ByteSize;

use crate::config::error::{ConfigError, Pos};
use crate::delivery::Ack;

/// What every input `type` provides (its config struct implements it).
pub trait Input {
    /// Checks what serde cannot (patterns compile, settings agree); `at` is where the input
    /// is written in the pipeline file `file`.
    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError>;

    /// How the runtime reads it. Called once, when the run starts.
    fn reading(&self, file: &Path) -> Result<Reading, ConfigError>;

    /// What turns its events' raw bytes into fields before the pipeline, if anything (a
    /// Kafka input's `decoding: json`); each worker builds its own. Its failures are
    /// counted as the input's format errors.
    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        let _ = keys;
        None
    }

    /// Credentials in its config (passwords, tokens), kept out of everything Weir prints
    /// ([`crate::secrets`]).
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// How an input is read.
#[derive(Debug)]
pub enum Reading {
    /// Sources read once to their end, each on its own thread: a path, or `None` for stdin.
    Once {
        /// The sources.
        paths: Vec<Option<PathBuf>>,
        /// How lines are split.
        opts: LineOptions,
        /// Multiline or container framing, if the sources need one.
        framing: Option<Framing>,
    },
    /// Files followed as they grow and rotate, with checkpoints (a [`tail::Tailer`]).
    Follow(tail::TailSettings),
    /// A source that runs on its own thread and acknowledges on its own (network inputs).
    Run(Box<dyn Run>),
    /// The standard output and error of the command `weir run --exec` started, each read
    /// to its end on its own thread.
    Exec(exec::ExecSettings),
}

/// An input that runs on its own thread until it ends or `stop` is set, handing over
/// chunks in order per source (network inputs; see [`Reading::Run`]).
pub trait Run: Send + std::fmt::Debug {
    /// Runs it. `send` returns false when the run is over.
    fn run(self: Box<Self>, ctx: RunContext<'_>);
}

/// What the runtime gives a [`Run`] input.
pub struct RunContext<'a> {
    /// Set when the run stops: hand over what is held, settle, return.
    pub stop: &'a AtomicBool,
    /// Source ids: take one per new source (a Kafka partition), so each keeps its order.
    pub next_source: &'a AtomicU32,
    /// Buffers for chunks.
    pub pool: &'a Arc<BufferPool>,
    /// The input's counters.
    pub stats: Arc<InputStats>,
    /// How long a stopping run waits for what it handed over to be delivered.
    pub drain_timeout: Duration,
    /// Hands over a chunk, waiting for room; false when the run is over or stopping (the
    /// chunk was not taken).
    pub send: &'a mut dyn FnMut(SourceChunk) -> bool,
    /// Hands over a chunk if there is room before the deadline (receivers, which must
    /// answer their sender: "later" rather than hold it).
    pub offer: &'a mut dyn FnMut(SourceChunk, Instant) -> Offered,
}

/// What became of a chunk handed to [`RunContext::offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// It is in the pipeline.
    Taken,
    /// No room before the deadline; it was dropped (the sender is to retry).
    Full,
    /// The run is stopping or over; it was dropped.
    Stopped,
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

/// A chunk of one source, in order, as follow-mode and network inputs hand it over.
#[derive(Debug)]
pub struct SourceChunk {
    /// Lines, or records.
    pub payload: ChunkPayload,
    /// The source id.
    pub source: u32,
    /// Position in the source's sequence (from 0).
    pub seq: u64,
    /// Fields every event of the source gets (pod metadata, Kafka topic and partition).
    pub fields: Option<SourceFields>,
    /// What to tell once every output delivered it.
    pub ack: Option<Ack>,
}

/// Lines or framed records.
#[derive(Debug)]
pub enum ChunkPayload {
    /// A chunk of whole lines.
    Lines(Chunk),
    /// Records framed by the reader (or one message each).
    Framed(Framed),
}

/// Counters of one input.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Events made from its lines.
    pub events: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
    /// Lines longer than `max_line_bytes`, cut into flagged pieces.
    pub lines_cut: AtomicU64,
    /// Empty lines skipped (`skip_empty_lines`).
    pub empty_skipped: AtomicU64,
    /// Sources that could not be read.
    pub read_errors: AtomicU64,
    /// Multiline records closed by `max_lines` / `max_bytes`.
    pub records_cut: AtomicU64,
    /// Lines outside records dropped by `unmatched: discard`.
    pub unmatched_discarded: AtomicU64,
    /// Lines not in the input's `format` (kept, with `_error`).
    pub format_errors: AtomicU64,
    /// Container lines whose time is missing or bad (kept without one, with `_error`).
    pub bad_times: AtomicU64,
    /// Container messages that ended before their last piece (kept, with `_error`).
    pub unfinished_messages: AtomicU64,
    /// The input's own metrics by label (per Kafka partition...).
    pub labeled: crate::admin::Labeled,
}

impl InputStats {
    pub(crate) fn add_frame(&self, f: FrameStats) {
        self.lines_cut.fetch_add(f.lines_cut, Ordering::Relaxed);
        self.empty_skipped.fetch_add(f.empty_skipped, Ordering::Relaxed);
        self.records_cut.fetch_add(f.records_cut, Ordering::Relaxed);
        self.unmatched_discarded
            .fetch_add(f.unmatched_discarded, Ordering::Relaxed);
        self.format_errors.fetch_add(f.format_errors, Ordering::Relaxed);
        self.bad_times.fetch_add(f.bad_times, Ordering::Relaxed);
        self.unfinished_messages
            .fetch_add(f.unfinished_messages, Ordering::Relaxed);
    }
}

/// What turns a message that is a JSON object into the event's fields (`message` parsed,
/// its members become fields; one that is not JSON is kept with `_error`): the decoder of
/// inputs whose messages are JSON (Kafka with `decoding: json`, OpenTelemetry).
pub(crate) fn json_decoder(keys: &Arc<KeyTable>, what: &str) -> Option<Box<dyn Processor>> {
    let json = weir_core::parse::json::ParseJsonConfig {
        field: "message".into(),
        flatten: None,
        keep_source: false,
        on_failure: weir_core::parse::OnFailure::Keep,
        error_field: Some("_error".into()),
    };
    match json.build(keys) {
        Ok(p) => Some(Box::new(p)),
        Err(e) => {
            tracing::error!("{what}: decoding: json: {e}");
            None
        }
    }
}

/// `max_line_bytes` unless set: 1 MiB.
pub(crate) fn default_max_line_bytes() -> ByteSize {
    ByteSize(DEFAULT_MAX_LINE_BYTES as u64)
}

/// Where to start in a file seen for the first time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From the first byte.
    #[default]
    Head,
    /// From the current end (follow mode only).
    Tail,
}

pub(crate) fn line_options(max: ByteSize, skip_empty_lines: bool) -> LineOptions {
    LineOptions {
        max_line_bytes: usize::try_from(max.0).unwrap_or(usize::MAX),
        skip_empty_lines,
    }
}

pub(crate) fn check_max_line(max: ByteSize, at: Pos, file: &Path) -> Result<(), ConfigError> {
    if max.0 == 0 || max.0 > 1 << 30 {
        return Err(ConfigError::at(
            file,
            at,
            format!("max_line_bytes must be between 1 and 1GiB, not {max}"),
        ));
    }
    Ok(())
}

/// How a source's lines become records, when that is more than one line per record.
#[derive(Debug, Clone)]
pub struct Framing {
    /// The line format.
    pub format: Format,
    /// Multiline rules.
    pub rules: Option<Rules>,
}

pub(crate) fn framing(
    format: Format,
    multiline: &Option<Spanned<MultilineConfig>>,
    file: &Path,
) -> Result<Option<Framing>, ConfigError> {
    let rules = match multiline {
        Some(m) => Some(m.value.build().map_err(|e| ConfigError::at(file, Pos::of(m), e.0))?),
        None => None,
    };
    Ok((format != Format::Raw || rules.is_some()).then_some(Framing { format, rules }))
}

/// Fields every event of a source gets (pod metadata from a container log's path), as
/// (field name, value).
pub type SourceFields = Arc<[(&'static str, String)]>;

/// Pod metadata from a Kubernetes container log file name,
/// `<pod>_<namespace>_<container>-<64 hex id>.log` (as in `/var/log/containers/`).
pub fn container_fields(path: &std::path::Path) -> Option<[(&'static str, String); 4]> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    let (pod, rest) = name.split_once('_')?;
    let (namespace, rest) = rest.split_once('_')?;
    let (container, id) = rest.rsplit_once('-')?;
    if pod.is_empty()
        || namespace.is_empty()
        || container.is_empty()
        || id.len() != 64
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Some([
        ("pod", pod.to_string()),
        ("namespace", namespace.to_string()),
        ("container", container.to_string()),
        ("container_id", id.to_string()),
    ])
}

/// Reads `reader` to its end, handing each chunk of whole lines to `send`. Returns the
/// number of lines the chunker cut, or the first I/O error. Stops early (without error)
/// when `send` returns false.
pub fn read_chunks(
    mut reader: impl Read,
    chunk_bytes: usize,
    opts: &LineOptions,
    pool: &Arc<BufferPool>,
    mut send: impl FnMut(Chunk) -> bool,
) -> std::io::Result<u64> {
    let mut chunker = LineChunker::with_pool(chunk_bytes, opts.max_line_bytes, 0, pool.clone());
    let mut flush = false;
    loop {
        while let Some(chunk) = chunker.next_chunk(flush, false) {
            if !send(chunk) {
                return Ok(chunker.lines_cut());
            }
        }
        let spare = chunker.spare();
        let want = spare.len();
        let n = match reader.read(spare) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        chunker.commit(n);
        // A short read means nothing more is there for now (a pipe, a terminal): hand out
        // the whole lines we have instead of waiting for a full chunk.
        flush = n < want;
    }
    while let Some(chunk) = chunker.next_chunk(true, true) {
        if !send(chunk) {
            break;
        }
    }
    Ok(chunker.lines_cut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_file_names() {
        let id = "a".repeat(64);
        let p = PathBuf::from(format!("/var/log/containers/web-7d9f_prod_nginx-{id}.log"));
        let f = container_fields(&p).unwrap();
        assert_eq!(f[0].1, "web-7d9f");
        assert_eq!(f[1].1, "prod");
        assert_eq!(f[2].1, "nginx");
        assert_eq!(f[3].1, id);
        let p = PathBuf::from(format!("/x/my_pod_side-car-{id}.log"));
        assert_eq!(container_fields(&p).unwrap()[2].1, "side-car");
        assert!(container_fields(&PathBuf::from("/var/log/app.log")).is_none());
        assert!(container_fields(&PathBuf::from("/x/a_b_c-123.log")).is_none());
    }
}
