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
            // Read too: a partial last line is looked for (see `cut_partial_line`).
            options.append(true).read(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(&self.path.value)?;
        if self.append {
            cut_partial_line(&file, &self.path.value)?;
        }
        Ok(FileSink {
            file,
            fsync: self.fsync,
            dirty: false,
        })
    }
}

/// A file that does not end with a line end was being written when a run was killed (a
/// write cut at a page boundary): the piece after its last `\n` belongs to a batch that was
/// never acknowledged, which is written again whole. The piece is cut off, so it does not
/// join the first line written next.
fn cut_partial_line(file: &File, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(());
    }
    let len = meta.len();
    let mut end = len;
    let mut block = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let piece = &mut block[..(end - start) as usize];
        file.read_exact_at(piece, start)?;
        if let Some(nl) = memchr::memrchr(b'\n', piece) {
            end = start + nl as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        tracing::warn!(
            file = %path.display(),
            bytes = len - end,
            "output file ends with a partial line (a run was killed while writing it): cut off; \
             its batch was not acknowledged and is written again"
        );
        file.set_len(end)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &Path) -> FileOutputConfig {
        serde_saphyr::from_str(&format!("path: {}\n", path.display())).unwrap()
    }

    #[test]
    fn a_partial_last_line_left_by_a_killed_run_is_cut_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut sink = config(&path).open().unwrap();
        sink.write(b"three\nfour\n", 2).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\nfour\n");
        // Whole lines, an empty file, a file with no line end at all.
        for (before, after) in [("a\nb\n", "a\nb\nx\n"), ("", "x\n"), ("no line end", "x\n")] {
            std::fs::write(&path, before).unwrap();
            config(&path).open().unwrap().write(b"x\n", 1).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
        }
    }
}
