//! Inputs: where bytes come from. Each source (stdin, one file) is read on its own thread
//! into a [`LineChunker`]; the chunks of whole lines go to the workers, numbered so the
//! output keeps each source's order.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::line::{Chunk, DEFAULT_MAX_LINE_BYTES, LineChunker, LineOptions};
use weir_core::pool::BufferPool;
use weir_core::units::ByteSize;

use crate::config::{ConfigError, Loaded, Pos};

fn default_max_line_bytes() -> ByteSize {
    ByteSize(DEFAULT_MAX_LINE_BYTES as u64)
}

/// `type: stdin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// Drop empty lines.
    #[serde(default)]
    pub skip_empty_lines: bool,
    /// Lines longer than this are cut into flagged pieces (default 1 MiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
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

/// Whether to stop at the end of the files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMode {
    /// Keep reading as files grow, rotate and appear.
    #[default]
    Follow,
    /// Read every matched file to its end, then stop.
    Once,
}

/// `type: file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInputConfig {
    /// Glob patterns of the files to read.
    pub paths: Spanned<Vec<Spanned<String>>>,
    /// Glob patterns of files to leave out.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// `head` (default) or `tail`.
    #[serde(default)]
    pub read_from: Option<Spanned<ReadFrom>>,
    /// `follow` (default) or `once`.
    #[serde(default)]
    pub mode: Option<Spanned<FileMode>>,
    /// Drop empty lines.
    #[serde(default)]
    pub skip_empty_lines: bool,
    /// Lines longer than this are cut into flagged pieces (default 1 MiB).
    #[serde(default)]
    pub max_line_bytes: Option<Spanned<ByteSize>>,
}

fn line_options(max: ByteSize, skip_empty_lines: bool) -> LineOptions {
    LineOptions {
        max_line_bytes: usize::try_from(max.0).unwrap_or(usize::MAX),
        skip_empty_lines,
    }
}

impl StdinConfig {
    /// How lines are split.
    pub fn line_options(&self) -> LineOptions {
        line_options(self.max_line_bytes, self.skip_empty_lines)
    }

    /// Checks what serde cannot.
    pub fn validate(&self, at: Pos, loaded: &Loaded) -> Result<(), ConfigError> {
        check_max_line(self.max_line_bytes, at, loaded)
    }
}

fn check_max_line(max: ByteSize, at: Pos, loaded: &Loaded) -> Result<(), ConfigError> {
    if max.0 == 0 || max.0 > 1 << 30 {
        return Err(loaded.error(
            at,
            format!("max_line_bytes must be between 1 and 1GiB, not {max}"),
        ));
    }
    Ok(())
}

impl FileInputConfig {
    /// How lines are split.
    pub fn line_options(&self) -> LineOptions {
        let max = self
            .max_line_bytes
            .as_ref()
            .map_or_else(default_max_line_bytes, |m| m.value);
        line_options(max, self.skip_empty_lines)
    }

    /// Checks what serde cannot: patterns compile, the mode is available.
    pub fn validate(&self, at: Pos, loaded: &Loaded) -> Result<(), ConfigError> {
        if let Some(max) = &self.max_line_bytes {
            check_max_line(max.value, Pos::of(max), loaded)?;
        }
        if self.paths.value.is_empty() {
            return Err(loaded.error(Pos::of(&self.paths), "file input: `paths` is empty"));
        }
        for pattern in self.paths.value.iter().chain(&self.exclude) {
            glob::Pattern::new(&pattern.value).map_err(|e| {
                loaded.error(
                    Pos::of(pattern),
                    format!("bad glob pattern `{}`: {e}", pattern.value),
                )
            })?;
        }
        let mode = self.mode.as_ref().map(|m| m.value).unwrap_or_default();
        if mode == FileMode::Follow {
            let pos = self.mode.as_ref().map(Pos::of).unwrap_or(at);
            return Err(loaded.error(
                pos,
                "file input: `mode: follow` (the default) is not available in this version; \
                 set `mode: once` to read the files to their end and stop",
            ));
        }
        if let Some(read_from) = &self.read_from
            && read_from.value == ReadFrom::Tail
        {
            return Err(loaded.error(
                Pos::of(read_from),
                "file input: `read_from: tail` only makes sense with `mode: follow`; \
                 with `mode: once` it would read nothing",
            ));
        }
        Ok(())
    }

    /// The files the patterns match now, sorted, without duplicates or excluded ones.
    /// Directories are skipped; unreadable entries are reported by the caller on open.
    pub fn matched_files(&self) -> Vec<PathBuf> {
        let excludes: Vec<glob::Pattern> = self
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(&p.value).ok())
            .collect();
        let mut files = Vec::new();
        for pattern in &self.paths.value {
            let Ok(paths) = glob::glob(&pattern.value) else {
                continue;
            };
            for path in paths.flatten() {
                if path.is_file() && !excludes.iter().any(|x| x.matches_path(&path)) {
                    files.push(path);
                }
            }
        }
        files.sort();
        files.dedup();
        files
    }
}

/// Reads `reader` to its end, handing each chunk of whole lines to `send` with its
/// sequence number. Returns the number of lines the chunker cut, or the first I/O error.
/// Stops early (without error) when `send` returns false.
pub fn read_chunks(
    mut reader: impl Read,
    chunk_bytes: usize,
    opts: &LineOptions,
    pool: &Arc<BufferPool>,
    mut send: impl FnMut(Chunk, u64) -> bool,
) -> std::io::Result<u64> {
    let mut chunker = LineChunker::with_pool(chunk_bytes, opts.max_line_bytes, 0, pool.clone());
    let mut seq = 0;
    let mut flush = false;
    loop {
        while let Some(chunk) = chunker.next_chunk(flush, false) {
            if !send(chunk, seq) {
                return Ok(chunker.lines_cut());
            }
            seq += 1;
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
        if !send(chunk, seq) {
            break;
        }
        seq += 1;
    }
    Ok(chunker.lines_cut())
}
