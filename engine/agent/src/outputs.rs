//! Outputs: where encoded events go. Each output runs on its own thread and writes, in
//! order, the bytes the workers encoded for it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::encode::{Encoder, JsonEncoder, RawEncoder};
use weir_core::model::KeyTable;

use crate::config::{ConfigError, Loaded};

/// How events are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// The `message` field as is, one per line.
    Raw,
}

impl Format {
    /// A fresh encoder for this format.
    pub fn encoder(self, keys: &Arc<KeyTable>) -> Box<dyn Encoder> {
        match self {
            Format::Json => Box::new(JsonEncoder::new(keys.clone())),
            Format::Raw => Box::new(RawEncoder),
        }
    }
}

/// `type: stdout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// A name, for the pipeline's `dead_letter` and for metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// `json` (default) or `raw`.
    #[serde(default)]
    pub format: Format,
}

/// `type: file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// A name, for the pipeline's `dead_letter` and for metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// The file to write; created if missing.
    pub path: Spanned<PathBuf>,
    /// `json` (default) or `raw`.
    #[serde(default)]
    pub format: Format,
    /// Append to an existing file (default) or truncate it first.
    #[serde(default = "append_default")]
    pub append: bool,
    /// `fsync` the file before acknowledging what was written (default false: written to
    /// the operating system, which survives a crash of the agent but not of the machine).
    #[serde(default)]
    pub fsync: bool,
}

fn append_default() -> bool {
    true
}

impl FileOutputConfig {
    /// Checks what serde cannot.
    pub fn validate(&self, loaded: &Loaded) -> Result<(), ConfigError> {
        if self.path.value.as_os_str().is_empty() {
            return Err(loaded.error(crate::config::Pos::of(&self.path), "file output: `path` is empty"));
        }
        Ok(())
    }

    /// Opens the file for writing.
    pub fn open(&self) -> std::io::Result<FileSink> {
        let mut options = OpenOptions::new();
        options.create(true);
        if self.append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        Ok(FileSink {
            file: options.open(&self.path.value)?,
            fsync: self.fsync,
            dirty: false,
        })
    }
}

/// Counters of one output, shared with the admin endpoint.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Events delivered (flushed, acknowledged).
    pub events: AtomicU64,
    /// Bytes delivered.
    pub bytes: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Events the destination rejected for good (e.g. an HTTP 400), counted and dropped.
    pub rejected: AtomicU64,
    /// Batches written but never acknowledged (the run stopped first): read again on restart.
    pub unacked_batches: AtomicU64,
}

/// A destination for encoded bytes, driven by one output thread.
///
/// The thread calls [`Sink::write`] once per batch, in order, then [`Sink::flush`] when
/// [`Sink::flush_bytes`] bytes are waiting, when no batch is waiting, or when the oldest
/// written batch is [`Sink::flush_interval`] old. Every batch written before a flush that
/// returned `Ok` is acknowledged: its events count as delivered and the inputs may move
/// their checkpoints past it. A sink therefore returns `Ok` from `flush` only once its
/// data is delivered (written to the file, accepted by the server) or counted in
/// [`OutputStats::rejected`]; it retries retryable failures itself, and gives up with an
/// error only when it cannot go on or when `stop` (the shutdown deadline) is set.
pub trait Sink: Send {
    /// Takes one batch's encoded bytes, holding `events` events. May buffer.
    fn write(&mut self, bytes: &[u8], events: u64) -> std::io::Result<()>;
    /// Delivers everything written so far.
    fn flush(&mut self) -> std::io::Result<()>;
    /// Written bytes at which the output thread flushes without waiting.
    fn flush_bytes(&self) -> usize {
        0
    }
    /// How long written data may wait for more before it is flushed.
    fn flush_interval(&self) -> Duration {
        Duration::ZERO
    }
}

/// Standard output: written per batch; a flush is a `flush` of the stream.
#[derive(Debug)]
pub struct StdoutSink(pub std::io::Stdout);

impl Sink for StdoutSink {
    fn write(&mut self, bytes: &[u8], _events: u64) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A file output: written per batch; a flush adds an `fsync` when the config asks.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    fsync: bool,
    dirty: bool,
}

impl Sink for FileSink {
    fn write(&mut self, bytes: &[u8], _events: u64) -> std::io::Result<()> {
        self.dirty |= !bytes.is_empty();
        self.file.write_all(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.fsync && std::mem::take(&mut self.dirty) {
            self.file.sync_data()?;
        }
        Ok(())
    }
    fn flush_bytes(&self) -> usize {
        if self.fsync { 4 << 20 } else { 0 }
    }
}

/// Opens the sink of one `outputs:` entry. `stats` are the output's counters; `stop` is set
/// when the shutdown deadline passes, so a sink that is retrying gives up.
pub fn open_sink(
    cfg: &crate::registry::OutputConfig,
    stats: &Arc<OutputStats>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Box<dyn Sink>> {
    use anyhow::Context;
    let _ = (stats, stop);
    Ok(match cfg {
        crate::registry::OutputConfig::Stdout(_) => Box::new(StdoutSink(std::io::stdout())),
        crate::registry::OutputConfig::File(c) => Box::new(
            c.open()
                .with_context(|| format!("cannot open output file {}", c.path.value.display()))?,
        ),
        crate::registry::OutputConfig::Http(c) => Box::new(c.open(stats, stop)?),
    })
}
