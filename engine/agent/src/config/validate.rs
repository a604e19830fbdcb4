//! The checks of a whole pipeline file that serde cannot make: each component's own rules
//! (patterns compile, processors build) and the rules between them (names resolve,
//! `dead_letter` has an output, `exit_when` is complete).

use std::collections::HashMap;

use weir_core::model::KeyTable;
use weir_core::parse::OnFailure;

use super::{ConfigError, ExitWhen, Loaded, Pos};
use serde_saphyr::Spanned;

/// Checks everything that can be checked without running.
pub fn validate(loaded: &Loaded) -> Result<(), ConfigError> {
    let cfg = &loaded.config;
    let top = Pos { line: 1, column: 1 };
    if cfg.inputs.is_empty() {
        return Err(loaded.error(
            top,
            "the pipeline has no inputs (for `weir run --exec`, whose exec input is implied, check it with `weir check --exec`)",
        ));
    }
    let mut execs = cfg
        .inputs
        .iter()
        .filter(|i| matches!(i.value, crate::config::registry::InputConfig::Exec(_)));
    if let (Some(_), Some(second)) = (execs.next(), execs.next()) {
        return Err(loaded.error(
            Pos::of(second),
            "a pipeline has at most one exec input (it reads the one command of `weir run --exec`)",
        ));
    }
    if cfg.outputs.is_empty() {
        return Err(loaded.error(top, "the pipeline has no outputs"));
    }
    if let Some(w) = &cfg.workers
        && w.value == 0
    {
        return Err(loaded.error(Pos::of(w), "workers must be at least 1"));
    }
    for input in &cfg.inputs {
        input.value.get().validate(Pos::of(input), &loaded.file)?;
    }
    if let Some(e) = &cfg.exit_when {
        exit_when(e, loaded)?;
    }
    let keys = KeyTable::new();
    for p in &cfg.processors {
        p.value
            .build(&keys)
            .map_err(|e| loaded.error(Pos::of(p), format!("{}: {e}", p.value.type_name())))?;
    }
    let mut names = HashMap::new();
    for output in &cfg.outputs {
        output.value.get().validate(Pos::of(output), &loaded.file)?;
        if let Some(name) = output.value.get().name()
            && names.insert(name, Pos::of(output)).is_some()
        {
            return Err(loaded.error(Pos::of(output), format!("two outputs are named `{name}`")));
        }
    }
    dead_letter(loaded, &names)
}

/// `exit_when` names at least one condition, and `process` comes with `idle`.
fn exit_when(e: &Spanned<ExitWhen>, loaded: &Loaded) -> Result<(), ConfigError> {
    let w = &e.value;
    if w.marker_file.is_none() && w.idle.is_none() && !w.sigterm {
        return Err(loaded.error(
            Pos::of(e),
            "exit_when: set `marker_file`, `idle` or `sigterm: true` (any that holds ends the run)",
        ));
    }
    if let Some(p) = &w.process
        && w.idle.is_none()
    {
        return Err(loaded.error(
            Pos::of(p),
            "exit_when: `process` needs `idle` (how long to wait after it ends)",
        ));
    }
    Ok(())
}

/// `dead_letter` names an output (one of `names`) and is not the only one; without it, no
/// processor asks for `on_failure: dead_letter`.
fn dead_letter(loaded: &Loaded, names: &HashMap<&str, Pos>) -> Result<(), ConfigError> {
    let cfg = &loaded.config;
    match &cfg.dead_letter {
        Some(dl) if !names.contains_key(dl.value.as_str()) => Err(loaded.error(
            Pos::of(dl),
            format!(
                "dead_letter: no output is named `{}` (give an output `name: {}`)",
                dl.value, dl.value
            ),
        )),
        Some(_) if cfg.outputs.len() < 2 => Err(loaded.error(
            Pos { line: 1, column: 1 },
            "the dead-letter output gets only failed events: the pipeline needs another output too",
        )),
        Some(_) => Ok(()),
        None => match cfg
            .processors
            .iter()
            .find(|p| p.value.on_failure() == Some(OnFailure::DeadLetter))
        {
            Some(p) => Err(loaded.error(
                Pos::of(p),
                "on_failure: dead_letter needs the pipeline's `dead_letter: OUTPUT_NAME`",
            )),
            None => Ok(()),
        },
    }
}
