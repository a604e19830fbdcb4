//! `weir run`: the threads a batch goes through.
//!
//! ```text
//! reader thread per input ──Work──▶ worker threads ──Encoded──▶ dispatcher ──▶ output threads
//!   (read, cut at line ends)      (split, pipeline, encode)   (restore order)   (write)
//! ```
//!
//! Every channel is bounded, so a slow output slows reading and memory stays bounded.
//! Workers take chunks in any order; the dispatcher releases each source's batches in
//! sequence, so the output keeps every source's order. [`run_in_memory`] runs the same
//! stages on one thread over bytes in memory, for tests.
//!
//! - [`readers`]: sources, reader and tailer threads;
//! - [`worker`]: a chunk into a batch, the pipeline, the encoders;
//! - [`output`]: the dispatcher and the output threads driving each `Sink`;
//! - [`plan`]: what the stages share, and the summary; [`metrics`]: `/health`, `/metrics`;
//! - [`control`]: signals, the shutdown deadline, `exit_when`, checkpoint saves;
//! - [`reload`]: SIGHUP and `--watch-config`: what a new pipeline keeps of the old.

mod control;
mod exec;
mod memory;
mod metrics;
mod output;
mod plan;
mod readers;
mod reload;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use weir_core::pipeline::StatsSnapshot;

pub use control::Control;
use control::Latch;
pub use exec::{ExecEnd, run_exec};
pub use memory::run_in_memory;
pub use reload::Reloads;

use crate::config::{Loaded, PipelineConfig, Pos, validate};
use crate::inputs::exec::ExecPipes;
use crate::outputs::Sink;
use output::Reorder;
use plan::{Handover, Plan};
use readers::Reader;
use reload::Prepared;
use worker::{Encoded, Work};

/// The counters of one input at the end of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InputSummary {
    /// `inputs[i].type`.
    pub name: String,
    /// Events made.
    pub events: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Lines longer than `max_line_bytes`, cut into flagged pieces.
    pub lines_cut: u64,
    /// Empty lines skipped.
    pub empty_skipped: u64,
    /// Multiline records closed by their limits (flagged `_cut`).
    pub records_cut: u64,
    /// Lines dropped by `unmatched: discard`.
    pub unmatched_discarded: u64,
    /// Lines not in the input's format (kept, with `_error`).
    pub format_errors: u64,
    /// Container lines whose time is missing or bad (kept without one, with `_error`).
    pub bad_times: u64,
    /// Container messages that ended before their last piece (kept, with `_error`).
    pub unfinished_messages: u64,
    /// Sources that could not be read.
    pub read_errors: u64,
}

/// What a run did, for the summary and for tests.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per input: its name and counters.
    pub inputs: Vec<InputSummary>,
    /// Per processor: (name, counters).
    pub processors: Vec<(String, StatsSnapshot)>,
    /// Per output: (name, events, bytes).
    pub outputs: Vec<(String, u64, u64)>,
    /// Per output: events given up at the shutdown deadline.
    pub outputs_undelivered: Vec<u64>,
    /// Problems that did not stop the run (unreadable files); the run exits non-zero.
    pub errors: Vec<String>,
    /// With follow-mode inputs: files in the checkpoint store at the end, and checkpoints
    /// of gone files pruned during the run.
    pub checkpoints: Option<(usize, u64)>,
}

/// Runs the pipeline until every input ends, or SIGTERM/SIGINT; reloads it on SIGHUP, and
/// with `watch_config` when its file changes (see [`reload`]).
pub fn run(loaded: Loaded, workers: Option<usize>, watch_config: bool) -> anyhow::Result<Summary> {
    let reloads = Reloads::new(&loaded.file, watch_config)?;
    run_with(loaded, workers, Control::from_signals()?, reloads, None)
}

/// Runs the pipeline until every input ends or `control.stop` is set, replacing it each
/// time `reloads` asks and the file loads well.
///
/// A reload goes: the new file is prepared (`reload::prepare`: validated, processors
/// built, new inputs' readings and new outputs' sinks opened); the readers of the inputs
/// it does not keep are stopped and joined; the workers drain what is queued and end, the
/// outputs deliver it all; then the next pipeline starts with the kept readers (which
/// went on reading into the work queue meanwhile), the kept sinks, the counters of kept
/// components, and the dispatcher's order.
///
/// `exec`: the streams of the command `weir run --exec` started, for the exec input; the
/// run is then a sidecar's: followed files are read to their end when it stops.
pub fn run_with(
    loaded: Loaded,
    workers: Option<usize>,
    control: Control,
    reloads: Arc<Reloads>,
    mut exec: Option<ExecPipes>,
) -> anyhow::Result<Summary> {
    let sidecar = exec.is_some();
    validate(&loaded)?;
    reloads.running(&loaded);
    let workers_of = |cfg: &PipelineConfig| {
        workers
            .or(cfg.workers.as_ref().map(|w| w.value))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    };
    let admin = match &loaded.config.admin {
        Some(a) => Some(
            crate::admin::Admin::start(&a.value.address.value)
                .map_err(|e| anyhow!("{}", loaded.error(Pos::of(&a.value.address), format!("admin: {e}"))))?,
        ),
        None => None,
    };
    // The work queue and the readers outlive a reload; everything else is per pipeline.
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Work>(workers_of(&loaded.config));
    let readers: Mutex<Vec<Reader>> = Mutex::default();
    let next_source = Arc::new(AtomicU32::new(0));
    let mut next_input_run = loaded.config.inputs.len();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut order = Reorder::default();
    let mut current = Arc::new(loaded);
    let mut carried: Option<(Handover, Prepared)> = None;
    loop {
        let loaded = current.clone();
        let cfg = &loaded.config;
        let workers = workers_of(cfg);
        let mut plan = Plan::new(cfg, workers, 4);
        // Per output: its sink, and whether it is new (not yet behind its disk buffer).
        let (sinks, readings): (Vec<(Box<dyn Sink>, bool)>, _) = match carried.take() {
            None => {
                let mut sinks = Vec::new();
                for (o, stats) in cfg.outputs.iter().zip(&plan.output_stats) {
                    sinks.push((o.value.get().open(stats, &control.abort)?, true));
                }
                (sinks, readers::readings(&loaded)?.into_iter().enumerate().collect())
            }
            Some((handover, prepared)) => {
                let mut kept = plan.take_over(handover, &prepared.kept, &mut next_input_run);
                let mut fresh = vec![false; kept.len()];
                for (i, sink, stats) in prepared.sinks {
                    plan.output_stats[i] = stats;
                    kept[i] = Some(sink);
                    fresh[i] = true;
                }
                let mut sinks = Vec::new();
                for (i, (sink, fresh)) in kept.into_iter().zip(fresh).enumerate() {
                    sinks.push(match sink {
                        Some(sink) => (sink, fresh),
                        None => (
                            cfg.outputs[i].value.get().open(&plan.output_stats[i], &control.abort)?,
                            true,
                        ),
                    });
                }
                (sinks, prepared.readings)
            }
        };
        let mut inputs = readers::sources(readings, &plan.input_runs, &next_source);
        if !inputs.follows.is_empty() && plan.acks.is_none() {
            plan.open_checkpoints()?;
        }
        for (i, settings) in &mut inputs.follows {
            settings.drain_on_stop = cfg.exit_when.is_some() || sidecar;
            let globs = settings
                .paths
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect();
            plan.follow_globs.push((*i, globs));
        }
        let sinks = sinks
            .into_iter()
            .enumerate()
            .map(|(i, (sink, fresh))| {
                if fresh {
                    output::buffered(&plan, i, sink)
                } else {
                    Ok(sink)
                }
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let started = readers::start(&plan, inputs, &work_tx, &next_source, &errors, &mut exec)?;
        readers.lock().unwrap_or_else(|e| e.into_inner()).extend(started);

        let (done_tx, done_rx) = crossbeam_channel::bounded::<Encoded>(workers);
        // Dropped when the inputs are over, abandoned at shutdown, or at a reload: the
        // workers drain what is queued and stop.
        let (close_tx, close_rx) = crossbeam_channel::bounded::<()>(0);
        // `ended`: the pipeline's stages are done (its reloader stops); `finished`: its
        // sinks are closed too (the other helper threads stop).
        let (finished, ended, handoff) = (Latch::default(), Latch::default(), AtomicBool::new(false));
        let result = std::thread::scope(|s| -> anyhow::Result<_> {
            s.spawn(|| control::close_when_read(&readers, close_tx, &control.stop, &handoff, &ended));
            s.spawn(|| control::watchdog(&control, &finished, cfg.shutdown_timeout()));
            let reloader = s.spawn(|| reload::watch(&reloads, &loaded, &plan, &readers, &control, &handoff, &ended));
            if let Some(acks) = &plan.acks {
                s.spawn(|| control::save_checkpoints(acks, &finished, cfg.checkpoint_interval()));
            }
            if let Some(exit_when) = &cfg.exit_when {
                s.spawn(|| control::watch_exit(&exit_when.value, &plan.input_stats, &control.stop, &finished));
            }
            if let Some(admin) = &admin {
                s.spawn(|| admin.serve(finished.flag(), &plan.taps, |path| plan.admin_reply(path, &reloads)));
            }
            let mut worker_handles = Vec::new();
            for n in 0..workers {
                let (worker, rx, close, tx) = (plan.worker(n)?, work_rx.clone(), close_rx.clone(), done_tx.clone());
                worker_handles.push(s.spawn(move || worker.run(&rx, &close, &tx)));
            }
            drop((done_tx, close_rx));
            let (output_txs, output_handles) = output::start(s, sinks, &plan);
            output::dispatch(done_rx, output_txs, &mut order);
            let sinks = output::join(output_handles, &plan, &control.abort, &errors);
            let workers_ok = worker_handles.into_iter().all(|h| h.join().is_ok());
            ended.set();
            let prepared = reloader.join().ok().flatten();
            // Without a reload the sinks close here, while the watchdog still runs: a disk
            // buffer's drain delivers what it holds until the shutdown deadline.
            let sinks = match (sinks, &prepared) {
                (Ok(sinks), None) => {
                    drop(sinks);
                    Ok(Vec::new())
                }
                (sinks, _) => sinks,
            };
            finished.set();
            anyhow::ensure!(workers_ok, "a worker panicked");
            Ok((sinks?, prepared))
        });
        if let Some(acks) = &plan.acks {
            acks.save();
        }
        let (sinks, prepared) = result?;
        match prepared {
            Some(prepared) => {
                reloads.applied(&prepared.loaded);
                current = prepared.loaded.clone();
                carried = Some((plan.hand_over(loaded.clone(), sinks), prepared));
            }
            None => {
                let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
                return Ok(plan.summary(errors));
            }
        }
    }
}
