//! The pipeline file: its shape, loading, and errors that name the file and line:column.
//!
//! Components are maps whose `type` picks the variant (see [`crate::registry`]). When
//! `type` comes first, as in every example, the rest of the map is read straight from the
//! YAML, so an unknown key or a wrong value type is reported at its own line:column; when
//! `type` comes later, the map is buffered and errors point at the component.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::registry::{InputConfig, OutputConfig, ProcessorConfig};

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where events come from.
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
    /// `~/.local/state/weir`); created if missing. Only follow-mode file inputs use it.
    #[serde(default)]
    pub data_dir: Option<Spanned<PathBuf>>,
    /// Most time between two checkpoint saves (default 1s); they are saved on shutdown too.
    #[serde(default)]
    pub checkpoint_interval: Option<Spanned<weir_core::units::Dur>>,
    /// How long a file no input follows must be known gone before its checkpoint is dropped
    /// (default 1h; the rule is in `acks.rs`). Files that still exist keep theirs.
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
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

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

/// A loaded pipeline file.
#[derive(Debug)]
pub struct Loaded {
    /// Path as given.
    pub file: PathBuf,
    /// The parsed config.
    pub config: PipelineConfig,
}

impl Loaded {
    /// An error at `pos` in this file.
    pub fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// Reads and parses `file`.
pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the pipeline file: {e}"),
    })?;
    let config = parse(&text).map_err(|(pos, message)| ConfigError {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
        message,
    })?;
    Ok(Loaded {
        file: file.to_path_buf(),
        config,
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
fn plain_message(e: &serde_saphyr::Error) -> String {
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

/// A family of components picked by their `type` key (inputs, processors, outputs).
pub trait Tagged: Sized {
    /// "input", "processor" or "output", for messages.
    const WHAT: &'static str;
    /// Every known `type`.
    const TYPES: &'static [&'static str];
    /// Reads the component of type `ty` from the rest of its map.
    fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error>;

    /// The error for a `type` nobody knows.
    fn unknown_type<E: de::Error>(ty: &str) -> E {
        E::custom(format!(
            "unknown {} type `{ty}`, expected one of: {}",
            Self::WHAT,
            Self::TYPES.join(", ")
        ))
    }
}

/// Reads a `type` value and checks it is one of `T::TYPES`.
struct TypeName<T>(std::marker::PhantomData<T>);

impl<'de, T: Tagged> de::DeserializeSeed<'de> for TypeName<T> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let ty = String::deserialize(d)?;
        if T::TYPES.contains(&ty.as_str()) {
            Ok(ty)
        } else {
            Err(T::unknown_type(&ty))
        }
    }
}

/// Deserializes a [`Tagged`] component; see the module docs.
pub fn deserialize_tagged<'de, T: Tagged, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Tagged> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an {} map with a `type` key", T::WHAT)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let Some(first) = map.next_key::<String>()? else {
                return Err(de::Error::custom(format!("{} has no `type`", T::WHAT)));
            };
            if first == "type" {
                // Checked while the value is read, so an unknown type is reported at it.
                let ty: String = map.next_value_seed(TypeName::<T>(std::marker::PhantomData))?;
                return T::from_type(&ty, de::value::MapAccessDeserializer::new(map));
            }
            // `type` comes later: buffer the map, then read it.
            let mut buffered = serde_json::Map::new();
            buffered.insert(first, map.next_value()?);
            while let Some(key) = map.next_key::<String>()? {
                let value: serde_json::Value = map.next_value()?;
                buffered.insert(key, value);
            }
            let ty = match buffered.remove("type") {
                Some(serde_json::Value::String(ty)) => ty,
                Some(other) => {
                    return Err(de::Error::custom(format!("`type` must be a string, found {other}")));
                }
                None => return Err(de::Error::custom(format!("{} has no `type`", T::WHAT))),
            };
            T::from_type(&ty, buffered.into_deserializer()).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
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
        let (pos, msg) = err("inputs:\n  - type: kafka\noutputs: []\n");
        assert_eq!(pos.line, 2);
        assert!(msg.contains("unknown input type `kafka`"), "{msg}");
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
