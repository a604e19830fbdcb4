//! Outputs: where encoded events go. One file per output `type`; its config implements
//! [`Output`] (and `config/registry.rs` lists it), and what it opens implements [`Sink`],
//! the contract the runtime's output thread drives: write batches in order, flush when
//! asked, and return `Ok` from a flush only for what is delivered, since every batch
//! written before it is then acknowledged and checkpoints move past it.

pub mod buffer;
pub mod file;
pub mod http;
pub mod kafka;
pub mod opentelemetry;
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

    /// Its `buffer:` (`None`: the default, in memory).
    fn buffer(&self) -> Option<&buffer::BufferConfig>;

    /// How events are encoded for it.
    fn format(&self) -> Format;

    /// Checks what serde cannot; `at` is where the output is written in the pipeline file
    /// `file`.
    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError>;

    /// Opens its sink. `stats` are the output's counters; `abort` is set when the shutdown
    /// deadline passes, so a sink that is retrying gives up.
    fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>>;

    /// Credentials in its config (passwords, tokens), kept out of everything Weir prints
    /// ([`crate::secrets`]).
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
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
    /// Events given to the output and never delivered: in batches written but not
    /// acknowledged, or still queued, when the output gave up (the shutdown deadline).
    pub undelivered: AtomicU64,
    /// With a disk buffer: when the oldest record not yet delivered was written (Unix ms;
    /// 0 when none), for `weir_buffer_oldest_record_age_seconds` (see [`buffer`]).
    pub buffer_oldest_ms: AtomicU64,
    /// The output's own metrics by label (per Kafka topic...).
    pub labeled: crate::admin::Labeled,
}

/// An event an output could not deliver for good (the destination refused it), on its
/// way to the pipeline's `dead_letter` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event as the refusing output encoded it (one line, without its newline).
    pub line: Vec<u8>,
    /// Why it was refused, for the `_error` field.
    pub reason: String,
}

impl DeadLetter {
    /// Appends the event as the dead-letter output writes it (`to`), from its encoding
    /// in the refusing output (`from`): JSON gets the `_error` field, raw is the message.
    pub fn encode(&self, from: Format, to: Format, out: &mut Vec<u8>) {
        let fields = match from {
            Format::Json => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&self.line).ok(),
            Format::Raw => None,
        };
        let message = || String::from_utf8_lossy(&self.line).into_owned();
        match to {
            Format::Json => {
                let mut event = fields.unwrap_or_else(|| {
                    let mut m = serde_json::Map::new();
                    m.insert("message".into(), message().into());
                    m
                });
                event.insert("_error".into(), self.reason.clone().into());
                serde_json::to_writer(&mut *out, &event).expect("a JSON map always serializes");
            }
            Format::Raw => match fields.as_ref().and_then(|f| f.get("message")) {
                Some(serde_json::Value::String(m)) => out.extend_from_slice(m.as_bytes()),
                _ => out.extend_from_slice(&self.line),
            },
        }
        out.push(b'\n');
    }
}

/// Refused events handed to the dead-letter output's thread, and where its answer goes.
#[derive(Debug)]
pub struct DeadLetterBatch {
    /// The events.
    pub events: Vec<DeadLetter>,
    /// How the refusing output encoded them.
    pub format: Format,
    /// `Ok` once the dead-letter output delivered them.
    pub reply: crossbeam_channel::Sender<std::io::Result<()>>,
}

/// A sink's way to the pipeline's `dead_letter` output (see [`Sink::set_dead_letters`]).
#[derive(Debug, Clone)]
pub struct DeadLetters(crossbeam_channel::Sender<DeadLetterBatch>);

impl DeadLetters {
    /// A handle sending to the dead-letter output's thread.
    pub fn new(tx: crossbeam_channel::Sender<DeadLetterBatch>) -> DeadLetters {
        DeadLetters(tx)
    }

    /// Hands `events` (encoded as `format`) to the dead-letter output and waits until it
    /// has delivered them. A sink calls this before its flush returns `Ok`, so a refused
    /// event is in the dead-letter output before its batch is acknowledged.
    pub fn deliver(&self, format: Format, events: Vec<DeadLetter>) -> std::io::Result<()> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let gone = || std::io::Error::other("the dead_letter output stopped before taking refused events");
        self.0
            .send(DeadLetterBatch { events, format, reply })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
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
    /// Given the pipeline's `dead_letter` output (when it has one and this is another):
    /// a sink that can tell which events its destination refused for good sends them
    /// there with [`DeadLetters::deliver`]. By default refused events are only counted.
    /// `None` lets go of it (the pipeline's output threads are ending, or a reload took
    /// the dead-letter output away).
    fn set_dead_letters(&mut self, _to: Option<DeadLetters>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_is_written_in_the_dead_letter_outputs_format() {
        let json = DeadLetter {
            line: br#"{"message":"hello","level":"info"}"#.to_vec(),
            reason: "kafka refused it: too large".into(),
        };
        let raw = DeadLetter {
            line: b"plain \"line\"".to_vec(),
            reason: "why".into(),
        };
        let enc = |d: &DeadLetter, from, to| {
            let mut out = Vec::new();
            d.encode(from, to, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            enc(&json, Format::Json, Format::Json),
            "{\"_error\":\"kafka refused it: too large\",\"level\":\"info\",\"message\":\"hello\"}\n"
        );
        assert_eq!(enc(&json, Format::Json, Format::Raw), "hello\n");
        assert_eq!(
            enc(&raw, Format::Raw, Format::Json),
            "{\"_error\":\"why\",\"message\":\"plain \\\"line\\\"\"}\n"
        );
        assert_eq!(enc(&raw, Format::Raw, Format::Raw), "plain \"line\"\n");
    }
}
