//! `type: stdout`: events to standard output.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Deserialize;

use super::buffer::BufferConfig;
use super::{Format, Output, OutputStats, Sink};
use crate::config::error::{ConfigError, Pos};

/// `type: stdout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// A name, for the pipeline's `dead_letter` and for metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// `buffer:`: where batches wait for the destination (default: in memory).
    #[serde(default)]
    pub buffer: Option<BufferConfig>,
    /// `json` (default) or `raw`.
    #[serde(default)]
    pub format: Format,
}

impl Output for StdoutConfig {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn buffer(&self) -> Option<&BufferConfig> {
        self.buffer.as_ref()
    }

    fn format(&self) -> Format {
        self.format
    }

    fn validate(&self, _at: Pos, _file: &Path) -> Result<(), ConfigError> {
        Ok(())
    }

    fn open(&self, _stats: &Arc<OutputStats>, _abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink(std::io::stdout())))
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
