//! Inputs: where bytes come from. Each source (stdin, one file) is read on its own thread
//! into a [`LineChunker`]; the chunks of whole lines go to the workers, numbered so the
//! output keeps each source's order.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::Format;
use weir_core::line::{Chunk, DEFAULT_MAX_LINE_BYTES, LineChunker, LineOptions};
use weir_core::multiline::{MultilineConfig, Rules};
use weir_core::pool::BufferPool;

use weir_core::units::{ByteSize, Dur};

use crate::config::{ConfigError, Loaded, Pos};
use crate::tail::{FollowTiming, TailSettings};

fn default_max_line_bytes() -> ByteSize {
    ByteSize(DEFAULT_MAX_LINE_BYTES as u64)
}

/// `type: stdin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// `raw` (default), `cri` or `docker`.
    #[serde(default)]
    pub format: Format,
    /// Merge lines into records (see `weir_core::multiline`).
    #[serde(default)]
    pub multiline: Option<Spanned<MultilineConfig>>,
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
    /// `raw` (default), `cri` or `docker` (container stdout files).
    #[serde(default)]
    pub format: Format,
    /// Merge lines into records (see `weir_core::multiline`).
    #[serde(default)]
    pub multiline: Option<Spanned<MultilineConfig>>,
    /// Drop empty lines.
    #[serde(default)]
    pub skip_empty_lines: bool,
    /// Lines longer than this are cut into flagged pieces (default 1 MiB).
    #[serde(default)]
    pub max_line_bytes: Option<Spanned<ByteSize>>,
    /// Follow mode: how often files are checked when no file event came (default 250ms).
    #[serde(default)]
    pub poll_interval: Option<Spanned<Dur>>,
    /// Follow mode: a file that left the globs (rotated away, deleted) is read to its end and
    /// let go after this long without new bytes (default 5s).
    #[serde(default)]
    pub rotate_wait: Option<Spanned<Dur>>,
    /// Follow mode: most files open at once (default 1024); idle files are closed and
    /// reopened by identity when they grow.
    #[serde(default)]
    pub max_open_files: Option<Spanned<usize>>,
    /// Follow mode: the last multiline record (or partial container line) of a quiet file
    /// goes out after this long without new bytes (default 1s).
    #[serde(default)]
    pub flush_timeout: Option<Spanned<Dur>>,
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
        check_max_line(self.max_line_bytes, at, loaded)?;
        framing(self.format, &self.multiline, loaded).map(|_| ())
    }

    /// The framing of this input's sources, if they need one.
    pub fn framing(&self, loaded: &Loaded) -> Result<Option<Framing>, ConfigError> {
        framing(self.format, &self.multiline, loaded)
    }
}

fn check_max_line(max: ByteSize, at: Pos, loaded: &Loaded) -> Result<(), ConfigError> {
    if max.0 == 0 || max.0 > 1 << 30 {
        return Err(loaded.error(at, format!("max_line_bytes must be between 1 and 1GiB, not {max}")));
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
        framing(self.format, &self.multiline, loaded)?;
        if self.paths.value.is_empty() {
            return Err(loaded.error(Pos::of(&self.paths), "file input: `paths` is empty"));
        }
        for pattern in self.paths.value.iter().chain(&self.exclude) {
            glob::Pattern::new(&pattern.value)
                .map_err(|e| loaded.error(Pos::of(pattern), format!("bad glob pattern `{}`: {e}", pattern.value)))?;
        }
        let _ = at;
        self.timing(loaded)?;
        if let Some(read_from) = &self.read_from
            && read_from.value == ReadFrom::Tail
            && self.mode() == FileMode::Once
        {
            return Err(loaded.error(
                Pos::of(read_from),
                "file input: `read_from: tail` only makes sense with `mode: follow`; \
                 with `mode: once` it would read nothing",
            ));
        }
        Ok(())
    }

    /// The framing of this input's sources, if they need one.
    pub fn framing(&self, loaded: &Loaded) -> Result<Option<Framing>, ConfigError> {
        framing(self.format, &self.multiline, loaded)
    }

    fn timing(&self, loaded: &Loaded) -> Result<FollowTiming, ConfigError> {
        FollowTiming::from_config(
            "file input",
            &self.poll_interval,
            &self.rotate_wait,
            &self.max_open_files,
            &self.flush_timeout,
            loaded,
        )
    }

    /// `follow` unless set.
    pub fn mode(&self) -> FileMode {
        self.mode.as_ref().map(|m| m.value).unwrap_or_default()
    }

    /// How follow mode tails this input.
    pub fn tail_settings(&self, loaded: &Loaded, chunk_bytes: usize) -> Result<TailSettings, ConfigError> {
        let framing = self.framing(loaded)?;
        Ok(TailSettings {
            paths: self.paths.value.iter().map(|p| p.value.clone()).collect(),
            exclude: self
                .exclude
                .iter()
                .filter_map(|p| glob::Pattern::new(&p.value).ok())
                .collect(),
            read_from: self.read_from.as_ref().map(|r| r.value).unwrap_or_default(),
            opts: self.line_options(),
            pod_fields: framing.as_ref().is_some_and(|f| f.format != Format::Raw),
            detect_format: false,
            discovery: None,
            framing,
            timing: self.timing(loaded)?,
            chunk_bytes,
            drain_on_stop: false,
        })
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

/// How a source's lines become records, when that is more than one line per record.
#[derive(Debug, Clone)]
pub struct Framing {
    /// The line format.
    pub format: Format,
    /// Multiline rules.
    pub rules: Option<Rules>,
}

fn framing(
    format: Format,
    multiline: &Option<Spanned<MultilineConfig>>,
    loaded: &Loaded,
) -> Result<Option<Framing>, ConfigError> {
    let rules = match multiline {
        Some(m) => Some(m.value.build().map_err(|e| loaded.error(Pos::of(m), e.0))?),
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
