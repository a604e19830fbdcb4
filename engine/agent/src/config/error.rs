//! Config errors and positions: the leaf every component's `validate` uses, so a component
//! names what is wrong at the file's line:column without knowing the rest of the config.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

/// A config error a user can fix: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = crate::secrets::redact(&self.message);
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error at `pos` in the pipeline file `file`.
    pub fn at(file: &Path, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// A place in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Pos {
    /// The position a spanned value was written at.
    pub fn of<T>(spanned: &Spanned<T>) -> Pos {
        Pos {
            line: spanned.referenced.line() as u32,
            column: spanned.referenced.column() as u32,
        }
    }
}
