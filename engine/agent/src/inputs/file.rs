//! `type: file`: lines from the files globs match, followed as they grow and rotate
//! (`mode: follow`, read by [`super::tail::Tailer`]) or read once to their end.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::Format;
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions};
use weir_core::multiline::MultilineConfig;
use weir_core::units::{ByteSize, Dur};

use super::tail::{FollowTiming, TailSettings};
use super::{Framing, Input, ReadFrom, Reading, check_max_line, default_max_line_bytes, framing, line_options};
use crate::config::error::{ConfigError, Pos};

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
    fn check(&self, file: &Path) -> Result<(), ConfigError> {
        if let Some(max) = &self.max_line_bytes {
            check_max_line(max.value, Pos::of(max), file)?;
        }
        framing(self.format, &self.multiline, file)?;
        if self.paths.value.is_empty() {
            return Err(ConfigError::at(
                file,
                Pos::of(&self.paths),
                "file input: `paths` is empty",
            ));
        }
        for pattern in self.paths.value.iter().chain(&self.exclude) {
            glob::Pattern::new(&pattern.value).map_err(|e| {
                ConfigError::at(
                    file,
                    Pos::of(pattern),
                    format!("bad glob pattern `{}`: {e}", pattern.value),
                )
            })?;
        }
        self.timing(file)?;
        if let Some(read_from) = &self.read_from
            && read_from.value == ReadFrom::Tail
            && self.mode() == FileMode::Once
        {
            return Err(ConfigError::at(
                file,
                Pos::of(read_from),
                "file input: `read_from: tail` only makes sense with `mode: follow`; \
                 with `mode: once` it would read nothing",
            ));
        }
        Ok(())
    }

    /// The framing of this input's sources, if they need one.
    fn framing(&self, file: &Path) -> Result<Option<Framing>, ConfigError> {
        framing(self.format, &self.multiline, file)
    }

    fn timing(&self, file: &Path) -> Result<FollowTiming, ConfigError> {
        FollowTiming::from_config(
            "file input",
            &self.poll_interval,
            &self.rotate_wait,
            &self.max_open_files,
            &self.flush_timeout,
            file,
        )
    }

    /// `follow` unless set.
    pub fn mode(&self) -> FileMode {
        self.mode.as_ref().map(|m| m.value).unwrap_or_default()
    }

    /// How follow mode tails this input.
    fn tail_settings(&self, file: &Path) -> Result<TailSettings, ConfigError> {
        let framing = self.framing(file)?;
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
            timing: self.timing(file)?,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
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

impl Input for FileInputConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check(file)
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        if self.mode() == FileMode::Follow {
            return self.tail_settings(file).map(Reading::Follow);
        }
        let files = self.matched_files();
        if files.is_empty() {
            let patterns: Vec<&str> = self.paths.value.iter().map(|p| p.value.as_str()).collect();
            tracing::warn!(?patterns, "file input: no file matches");
        }
        Ok(Reading::Once {
            paths: files.into_iter().map(Some).collect(),
            opts: self.line_options(),
            framing: self.framing(file)?,
        })
    }
}
