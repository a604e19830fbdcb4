//! `type: file`: events appended to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::buffer::BufferConfig;
use super::{Format, Output, OutputStats, Sink};
use crate::config::error::{ConfigError, Pos};

/// `type: file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// A name, for the pipeline's `dead_letter` and for metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// `buffer:`: where batches wait for the destination (default: in memory).
    #[serde(default)]
    pub buffer: Option<BufferConfig>,
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

impl Output for FileOutputConfig {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn buffer(&self) -> Option<&BufferConfig> {
        self.buffer.as_ref()
    }

    fn format(&self) -> Format {
        self.format
    }

    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        if self.path.value.as_os_str().is_empty() {
            return Err(ConfigError::at(
                file,
                Pos::of(&self.path),
                "file output: `path` is empty",
            ));
        }
        Ok(())
    }

    fn open(&self, _stats: &Arc<OutputStats>, _abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>> {
        let sink = FileOutputConfig::open(self)
            .with_context(|| format!("cannot open output file {}", self.path.value.display()))?;
        Ok(Box::new(sink))
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
