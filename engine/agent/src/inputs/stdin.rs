//! `type: stdin`: lines from standard input until end of file.

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::Format;
use weir_core::line::LineOptions;
use weir_core::multiline::MultilineConfig;
use weir_core::units::ByteSize;

use super::{Input, Reading, check_max_line, default_max_line_bytes, framing, line_options};
use crate::config::error::{ConfigError, Pos};

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

impl StdinConfig {
    /// How lines are split.
    pub fn line_options(&self) -> LineOptions {
        line_options(self.max_line_bytes, self.skip_empty_lines)
    }
}

impl Input for StdinConfig {
    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError> {
        check_max_line(self.max_line_bytes, at, file)?;
        framing(self.format, &self.multiline, file).map(|_| ())
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        Ok(Reading::Once {
            paths: vec![None],
            opts: self.line_options(),
            framing: framing(self.format, &self.multiline, file)?,
        })
    }
}
