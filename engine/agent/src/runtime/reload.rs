//! Hot reload: SIGHUP, or a change of the pipeline file under `--watch-config`, makes the
//! run load the file again. A file that does not load, validate, or build (processors,
//! new inputs' readings, new outputs' sinks) is refused: the running pipeline goes on and
//! the reason is logged, counted and shown in `/health`. A good one replaces the
//! pipeline (see `runtime::run_with`): components whose YAML did not change are kept
//! (an input's reader goes on with its open files and positions; an output's sink with
//! its connection and disk buffer), removed inputs are stopped and what they read is
//! processed and delivered by the old pipeline before the new one starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};
use weir_core::model::KeyTable;

use super::Control;
use super::control::Latch;
use super::plan::Plan;
use super::readers::Reader;
use crate::config::{self, Loaded, validate};
use crate::inputs::Reading;
use crate::outputs::buffer::{self, BufferKind};
use crate::outputs::{OutputStats, Sink};

/// How often `--watch-config` looks at the file.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// A run's reloads: the request (SIGHUP, the watcher) and what came of them, for
/// `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct Reloads {
    requested: Arc<AtomicBool>,
    /// Ends the file watcher.
    quit: Arc<AtomicBool>,
    /// Reloads applied.
    pub(super) applied: AtomicU64,
    /// Reloads refused (the file did not load, validate or build).
    pub(super) failed: AtomicU64,
    /// The last refusal's reason, until a reload is applied.
    pub(super) last_error: Mutex<Option<String>>,
    /// The SHA-256 of the running pipeline file's text.
    pub(super) sha256: Mutex<String>,
}

impl Reloads {
    /// Reloads on SIGHUP, and with `watch`, when the file's content changes.
    pub fn new(file: &Path, watch: bool) -> anyhow::Result<Arc<Reloads>> {
        let reloads = Arc::new(Reloads::default());
        signal_hook::flag::register(signal_hook::consts::SIGHUP, reloads.requested.clone())
            .context("cannot install the SIGHUP handler")?;
        if watch {
            let (requested, quit, file) = (reloads.requested.clone(), reloads.quit.clone(), file.to_path_buf());
            std::thread::Builder::new()
                .name("weir-watch-config".into())
                .spawn(move || watch_file(&file, &requested, &quit))?;
        }
        Ok(reloads)
    }

    /// Takes a pending request.
    pub(super) fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// The pipeline now running is `loaded`.
    pub(super) fn running(&self, loaded: &Loaded) {
        *self.sha256.lock().unwrap_or_else(|e| e.into_inner()) = sha256(loaded.text.as_bytes());
    }

    pub(super) fn refused(&self, why: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
        tracing::error!("reload refused, the running pipeline goes on: {why}");
    }

    pub(super) fn applied(&self, loaded: &Loaded) {
        self.applied.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.running(loaded);
        let hash = self.sha256.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tracing::info!(file = %loaded.file.display(), sha256 = %hash, "pipeline reloaded");
    }
}

impl Drop for Reloads {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
    }
}

/// The hex SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `--watch-config`: asks for a reload each time the file's content differs from what
/// it last saw (an editor's save, a ConfigMap update swapping a symlink).
fn watch_file(file: &PathBuf, requested: &AtomicBool, quit: &AtomicBool) {
    let read = || std::fs::read(file).ok().map(|b| sha256(&b));
    let mut seen = read();
    while !quit.load(Ordering::Relaxed) {
        std::thread::sleep(WATCH_EVERY);
        let now = read();
        if now.is_some() && now != seen {
            tracing::info!(file = %file.display(), "the pipeline file changed: reloading");
            requested.store(true, Ordering::Relaxed);
            seen = now;
        }
    }
}

/// Which components of the new pipeline are the old one's: per new component, the index
/// of the old one with the same YAML.
#[derive(Debug, Default)]
pub(super) struct Kept {
    pub(super) inputs: Vec<Option<usize>>,
    pub(super) processors: Vec<Option<usize>>,
    pub(super) outputs: Vec<Option<usize>>,
}

impl Kept {
    /// Compares the components' YAML (as written, before `${NAME}` expansion): equal
    /// means kept. Outputs are kept only while the dead-letter output stays the same.
    pub(super) fn between(old: &Loaded, new: &Loaded) -> Kept {
        let (Some(old_parts), Some(new_parts)) = (parts(&old.text), parts(&new.text)) else {
            return Kept {
                inputs: vec![None; new.config.inputs.len()],
                processors: vec![None; new.config.processors.len()],
                outputs: vec![None; new.config.outputs.len()],
            };
        };
        let same_dead_letter = old_parts[3] == new_parts[3];
        let pick = |k: usize| {
            let mut taken = vec![false; old_parts[k].len()];
            new_parts[k]
                .iter()
                .map(|c| {
                    let j = (0..old_parts[k].len()).find(|&j| !taken[j] && old_parts[k][j] == *c)?;
                    taken[j] = true;
                    Some(j)
                })
                .collect::<Vec<_>>()
        };
        let mut outputs = pick(2);
        if !same_dead_letter {
            outputs.iter_mut().for_each(|o| *o = None);
        }
        Kept {
            inputs: pick(0),
            processors: pick(1),
            outputs,
        }
    }
}

/// The YAML of a pipeline's inputs, processors, outputs and `dead_letter`, for comparing.
fn parts(text: &str) -> Option<[Vec<Value>; 4]> {
    let doc: Value = serde_saphyr::from_str(text).ok()?;
    let list = |key: &str| match doc.get(key) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let dead = doc.get("dead_letter").cloned().into_iter().collect();
    Some([list("inputs"), list("processors"), list("outputs"), dead])
}

/// A new pipeline, loaded, checked and partly opened, ready to replace the running one.
pub(super) struct Prepared {
    pub(super) loaded: Arc<Loaded>,
    pub(super) kept: Kept,
    /// Per new input (not kept): how it is read.
    pub(super) readings: Vec<(usize, Reading)>,
    /// Per new output (not kept): its sink, opened, and its counters.
    pub(super) sinks: Vec<(usize, Box<dyn Sink>, Arc<OutputStats>)>,
}

/// Loads `file` again and readies what the new pipeline needs that can fail: the error
/// says why it is refused.
pub(super) fn prepare(file: &Path, running: &Loaded, abort: &Arc<AtomicBool>) -> Result<Prepared, String> {
    let loaded = config::load(file).map_err(|e| e.to_string())?;
    validate(&loaded).map_err(|e| e.to_string())?;
    let (old, new) = (&running.config, &loaded.config);
    let dir = |c: &config::PipelineConfig| c.data_dir.as_ref().map(|d| d.value.clone());
    if dir(old) != dir(new) {
        return Err(format!(
            "{}: data_dir cannot change on a reload (checkpoints and buffers live there); restart the agent",
            file.display()
        ));
    }
    let address = |c: &config::PipelineConfig| c.admin.as_ref().map(|a| a.value.address.value.clone());
    if address(old) != address(new) {
        return Err(format!(
            "{}: admin cannot change on a reload; restart the agent",
            file.display()
        ));
    }
    let kept = Kept::between(running, &loaded);
    // Every processor builds (a plugin compiles) before the running pipeline is touched.
    let keys = KeyTable::new();
    for (i, p) in new.processors.iter().enumerate() {
        p.value
            .build(&keys)
            .map_err(|e| format!("{}: processors[{i}].{}: {e}", file.display(), p.value.type_name()))?;
    }
    let mut readings = Vec::new();
    for (i, input) in new.inputs.iter().enumerate() {
        if kept.inputs[i].is_none() {
            readings.push((i, input.value.get().reading(&loaded.file).map_err(|e| e.to_string())?));
        }
    }
    let mut sinks = Vec::new();
    for (i, output) in new.outputs.iter().enumerate() {
        let buffered = output.value.get().buffer().is_some_and(|b| b.kind == BufferKind::Disk);
        let dir = buffer::dir(&config::data_dir(new), i, output.value.get().name());
        if kept.outputs[i].is_none() && buffered && buffer::in_use(&dir) {
            return Err(format!(
                "{}: outputs[{i}]: its disk buffer {} is still open, by the output it belonged to \
                 (running, or removed and still delivering what it holds); give the changed output \
                 another `name:` (another buffer), or restart the agent (the buffer is replayed)",
                file.display(),
                dir.display()
            ));
        }
        if kept.outputs[i].is_none() {
            let stats = Arc::<OutputStats>::default();
            let sink = output
                .value
                .get()
                .open(&stats, abort)
                .map_err(|e| format!("{}: outputs[{i}]: {e}", file.display()))?;
            sinks.push((i, sink, stats));
        }
    }
    Ok(Prepared {
        loaded: Arc::new(loaded),
        kept,
        readings,
        sinks,
    })
}

/// The reloader of one pipeline: takes reload requests until the pipeline `ended`; on the
/// first that prepares well, stops and joins the readers of the inputs the new pipeline
/// does not keep (what they read is in the work queue, for this pipeline), then sets
/// `handoff` (the workers drain and end) and returns the new pipeline.
pub(super) fn watch(
    reloads: &Reloads,
    running: &Loaded,
    plan: &Plan<'_>,
    readers: &Mutex<Vec<Reader>>,
    control: &Control,
    handoff: &AtomicBool,
    ended: &Latch,
) -> Option<Prepared> {
    while !ended.is_set() && !control.stop.load(Ordering::Relaxed) {
        if !reloads.take_request() {
            ended.wait(Duration::from_millis(50));
            continue;
        }
        let prepared = match prepare(&running.file, running, &control.abort) {
            Ok(p) => p,
            Err(why) => {
                reloads.refused(&why);
                continue;
            }
        };
        let keep: Vec<usize> = prepared
            .kept
            .inputs
            .iter()
            .flatten()
            .map(|&j| plan.input_runs[j])
            .collect();
        let gone: Vec<Reader> = {
            let mut all = readers.lock().unwrap_or_else(|e| e.into_inner());
            let (gone, stay) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|r| !keep.contains(&r.input));
            *all = stay;
            gone
        };
        for r in &gone {
            r.stop.store(true, Ordering::Relaxed);
        }
        for r in gone {
            // A reader of stdin may be blocked in a read; it sends nothing after its stop.
            if !r.stdin {
                let _ = r.handle.join();
            }
        }
        handoff.store(true, Ordering::Relaxed);
        return Some(prepared);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        Loaded {
            file: "p.yaml".into(),
            config: config::parse(text).unwrap(),
            text: text.to_string(),
        }
    }

    #[test]
    fn components_with_the_same_yaml_are_kept_wherever_they_move() {
        let old = loaded("inputs:\n  - type: stdin\noutputs:\n  - type: stdout\n  - type: file\n    path: /tmp/a\n");
        let new = loaded(
            "inputs:\n  - {type: stdin}\nprocessors:\n  - type: parse_json\n\
             outputs:\n  - type: file\n    path: /tmp/a\n  - type: file\n    path: /tmp/b\n",
        );
        let kept = Kept::between(&old, &new);
        assert_eq!(kept.inputs, vec![Some(0)]);
        assert_eq!(kept.processors, vec![None]);
        assert_eq!(kept.outputs, vec![Some(1), None]);
    }

    #[test]
    fn a_changed_dead_letter_keeps_no_output() {
        let old = loaded("inputs:\n  - type: stdin\noutputs:\n  - type: stdout\n    name: a\n");
        let new = loaded("inputs:\n  - type: stdin\ndead_letter: a\noutputs:\n  - type: stdout\n    name: a\n");
        assert_eq!(Kept::between(&old, &new).outputs, vec![None]);
    }
}
