//! The pipeline file: its shape ([`PipelineConfig`]), loading, the checks that need the
//! whole file ([`validate()`]), and errors that name the file and line:column.
//!
//! - [`error`]: `ConfigError` and `Pos`, the leaf module components use;
//! - [`tagged`]: how a map's `type` key picks the component;
//! - [`registry`]: every component `type`, one line each.

pub mod error;
pub mod registry;
pub mod tagged;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use error::{ConfigError, Pos};
use registry::{InputConfig, OutputConfig, ProcessorConfig};
pub use validate::validate;

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where events come from (`weir run --exec` adds its exec input when there is none).
    #[serde(default)]
    pub inputs: Vec<Spanned<InputConfig>>,
    /// What happens to them, in order.
    #[serde(default)]
    pub processors: Vec<Spanned<ProcessorConfig>>,
    /// Where they go; every output gets every event.
    pub outputs: Vec<Spanned<OutputConfig>>,
    /// The `name` of the output that receives events a processor routed to the dead
    /// letter (`on_failure: dead_letter`); that output gets only those.
    #[serde(default)]
    pub dead_letter: Option<Spanned<String>>,
    /// Worker threads running the processors (default: one per core).
    #[serde(default)]
    pub workers: Option<Spanned<usize>>,
    /// Where checkpoints live (default: `$WEIR_DATA_DIR`, else `$XDG_STATE_HOME/weir`, else
    /// `~/.local/state/weir`); created if missing. Follow-mode file inputs keep their
    /// checkpoints there, and outputs with `buffer: {type: disk}` their segments.
    #[serde(default)]
    pub data_dir: Option<Spanned<PathBuf>>,
    /// Most time between two checkpoint saves (default 1s); they are saved on shutdown too.
    #[serde(default)]
    pub checkpoint_interval: Option<Spanned<weir_core::units::Dur>>,
    /// How long a file no input follows must be known gone before its checkpoint is dropped
    /// (default 1h; the rule is in `delivery/acks.rs`). Files that still exist keep theirs.
    #[serde(default)]
    pub checkpoint_prune_after: Option<Spanned<weir_core::units::Dur>>,
    /// On SIGTERM/SIGINT, how long to drain, flush and save before giving up (default 20s).
    #[serde(default)]
    pub shutdown_timeout: Option<Spanned<weir_core::units::Dur>>,
    /// The admin endpoint (`/health`, `/metrics`); off unless set.
    #[serde(default)]
    pub admin: Option<Spanned<AdminConfig>>,
    /// Job sidecar mode: when to read everything to the end, deliver it and exit 0.
    #[serde(default)]
    pub exit_when: Option<Spanned<ExitWhen>>,
}

impl PipelineConfig {
    /// `checkpoint_interval`, default 1s.
    pub fn checkpoint_interval(&self) -> Duration {
        self.checkpoint_interval
            .as_ref()
            .map_or(Duration::from_secs(1), |d| d.value.0)
    }

    /// `checkpoint_prune_after`, default 1h.
    pub fn checkpoint_prune_after(&self) -> Duration {
        self.checkpoint_prune_after
            .as_ref()
            .map_or(crate::delivery::acks::DEFAULT_PRUNE_AFTER, |d| d.value.0)
    }

    /// `shutdown_timeout`, default 20s.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
            .as_ref()
            .map_or(Duration::from_secs(20), |d| d.value.0)
    }
}

/// `exit_when:` (job sidecar mode). Any condition that holds ends the run: every followed
/// file is read to its end, everything is delivered, the process exits 0. SIGTERM then
/// does the same (instead of stopping at the checkpoints).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitWhen {
    /// This file exists (the job's main container writes it when it is done).
    #[serde(default)]
    pub marker_file: Option<Spanned<PathBuf>>,
    /// No input read a byte for this long (and, with `process`, that process is gone).
    #[serde(default)]
    pub idle: Option<Spanned<weir_core::units::Dur>>,
    /// The job ends with SIGTERM (a native sidecar, stopped by the kubelet when the job's
    /// containers are done): nothing else to wait for; SIGTERM reads to the end, delivers,
    /// exits 0.
    #[serde(default)]
    pub sigterm: bool,
    /// With `idle`: the name of a process (as in `/proc/PID/comm`) whose end starts the idle
    /// count; the pod needs `shareProcessNamespace: true` to see it.
    #[serde(default)]
    pub process: Option<Spanned<String>>,
}

/// `admin:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:8686`.
    pub address: Spanned<String>,
}

/// A loaded pipeline file.
#[derive(Debug)]
pub struct Loaded {
    /// Path as given.
    pub file: PathBuf,
    /// The parsed config.
    pub config: PipelineConfig,
    /// The file's text as read (before `${NAME}` expansion): a reload compares components
    /// by it, and `/metrics` shows its hash. Empty for a config made in memory.
    pub text: String,
}

impl Loaded {
    /// An error at `pos` in this file.
    pub fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.file, pos, message)
    }

    /// For `weir run --exec`: the pipeline's exec input, added (with its defaults) when it
    /// has none.
    pub fn exec_input(&mut self) -> &crate::inputs::exec::ExecConfig {
        fn exec(i: &Spanned<InputConfig>) -> Option<&crate::inputs::exec::ExecConfig> {
            match &i.value {
                InputConfig::Exec(c) => Some(c),
                _ => None,
            }
        }
        if !self.config.inputs.iter().any(|i| exec(i).is_some()) {
            let implied = InputConfig::Exec(crate::inputs::exec::ExecConfig::default());
            let nowhere = serde_saphyr::Location::UNKNOWN;
            self.config.inputs.push(Spanned::new(implied, nowhere, nowhere));
        }
        self.config.inputs.iter().find_map(exec).expect("an exec input")
    }
}

/// Where checkpoints live: the config's `data_dir`, else `$WEIR_DATA_DIR`, else
/// `$XDG_STATE_HOME/weir`, else `~/.local/state/weir`.
pub fn data_dir(cfg: &PipelineConfig) -> PathBuf {
    if let Some(d) = &cfg.data_dir {
        return d.value.clone();
    }
    if let Some(d) = std::env::var_os("WEIR_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("weir");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/weir"),
        None => PathBuf::from("/var/lib/weir"),
    }
}

/// Reads `file`, expands `${NAME}` from the environment (see [`crate::secrets`]) and parses
/// it.
pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the pipeline file: {e}"),
    })?;
    let expanded =
        crate::secrets::expand(&text, |name| std::env::var(name).ok()).map_err(|(line, column, message)| {
            ConfigError {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
    for (name, value) in &expanded.vars {
        crate::secrets::register(value, &format!("${{{name}}}"));
    }
    let config = parse(&expanded.text).map_err(|(pos, message)| ConfigError {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
        message,
    })?;
    for secret in config.inputs.iter().flat_map(|i| i.value.get().secrets()) {
        crate::secrets::register(secret, "***");
    }
    for secret in config.outputs.iter().flat_map(|o| o.value.get().secrets()) {
        crate::secrets::register(secret, "***");
    }
    Ok(Loaded {
        file: file.to_path_buf(),
        config,
        text,
    })
}

/// Parses pipeline YAML; an error comes with its position and message.
pub fn parse(text: &str) -> Result<PipelineConfig, (Pos, String)> {
    serde_saphyr::from_str(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: l.line() as u32,
                column: l.column() as u32,
            })
            .unwrap_or_default();
        (pos, plain_message(&e))
    })
}

/// The error's message without serde-saphyr's own location prefix and snippet: we print
/// `file:line:column: message` ourselves.
pub(crate) fn plain_message(e: &serde_saphyr::Error) -> String {
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 5: unknown field ..." -> "unknown field ..."
    let msg = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((loc, msg)) if loc.contains(" column ") => msg,
        _ => first,
    };
    // "... at line 3, column 5" -> "..."
    match msg.rsplit_once(" at line ") {
        Some((head, tail)) if tail.contains(", column ") => head.to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> (Pos, String) {
        parse(yaml).expect_err("config should be rejected")
    }

    const OK: &str = "inputs:\n  - type: stdin\noutputs:\n  - type: stdout\n";

    #[test]
    fn valid_config_parses() {
        let cfg = parse(OK).unwrap();
        assert_eq!(cfg.inputs.len(), 1);
        assert_eq!(Pos::of(&cfg.inputs[0]), Pos { line: 2, column: 5 });
    }

    #[test]
    fn unknown_key_is_located_at_the_key() {
        let (pos, msg) = err("inputs:\n  - type: stdin\n    skip_empty_line: true\noutputs: []\n");
        assert_eq!(pos, Pos { line: 3, column: 5 });
        assert!(msg.contains("unknown field `skip_empty_line`"), "{msg}");
    }

    #[test]
    fn wrong_value_type_is_located_at_the_value() {
        let (pos, msg) = err("inputs:\n  - type: stdin\n    skip_empty_lines: maybe\noutputs: []\n");
        assert_eq!(pos.line, 3);
        assert!(pos.column >= 23, "{pos:?}");
        assert!(msg.contains("bool"), "{msg}");
    }

    #[test]
    fn unknown_type_names_the_choices() {
        let (pos, msg) = err("inputs:\n  - type: carrier_pigeon\noutputs: []\n");
        assert_eq!(pos.line, 2);
        assert!(msg.contains("unknown input type `carrier_pigeon`"), "{msg}");
        assert!(msg.contains("stdin"), "{msg}");
    }

    #[test]
    fn type_not_first_still_works_and_is_located() {
        let cfg = parse("inputs:\n  - skip_empty_lines: true\n    type: stdin\noutputs:\n  - type: stdout\n").unwrap();
        assert_eq!(cfg.inputs.len(), 1);
        let (pos, msg) = err("inputs:\n  - skip_empty_lines: true\n    typo: 1\n    type: stdin\noutputs: []\n");
        assert_eq!(pos.line, 2);
        assert!(msg.contains("typo"), "{msg}");
    }

    #[test]
    fn malformed_yaml_is_located() {
        let (pos, _) = err("inputs: [\n  - type: stdin\n");
        assert!(pos.line >= 1, "{pos:?}");
    }
}
