//! Outputs: where encoded events go. Each output runs on its own thread and writes, in
//! order, the bytes the workers encoded for it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

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
    pub fn open(&self) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true);
        if self.append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        options.open(&self.path.value)
    }
}

/// A destination for encoded bytes.
pub trait Sink: Send {
    /// Writes all of `bytes`.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Flushes what is buffered.
    fn flush(&mut self) -> std::io::Result<()>;
}

impl<W: Write + Send> Sink for W {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Write::flush(self)
    }
}
