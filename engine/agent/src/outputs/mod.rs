//! Outputs: where encoded events go. One file per output `type`; its config implements
//! [`Output`] (and `config/registry.rs` lists it), and what it opens implements [`Sink`],
//! the contract the runtime's output thread drives: write batches in order, flush when
//! asked, and return `Ok` from a flush only for what is delivered, since every batch
//! written before it is then acknowledged and checkpoints move past it.

pub mod file;
pub mod http;
pub mod kafka;
pub mod stdout;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use serde::Deserialize;
use weir_core::encode::{Encoder, JsonEncoder, RawEncoder};
use weir_core::model::KeyTable;

use crate::config::error::{ConfigError, Pos};

/// What every output `type` provides (its config struct implements it).
pub trait Output {
    /// The output's `name`, if it has one (for `dead_letter` and metrics).
    fn name(&self) -> Option<&str>;

    /// How events are encoded for it.
    fn format(&self) -> Format;

    /// Checks what serde cannot; `at` is where the output is written in the pipeline file
    /// `file`.
    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError>;

    /// Opens its sink. `stats` are the output's counters; `abort` is set when the shutdown
    /// deadline passes, so a sink that is retrying gives up.
    fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>>;
}

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
    /// The output's own metrics by label (per Kafka topic...).
    pub labeled: crate::admin::Labeled,
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
