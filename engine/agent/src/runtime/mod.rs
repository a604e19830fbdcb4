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
//! - [`control`]: signals, the shutdown deadline, `exit_when`, checkpoint saves.

mod control;
mod memory;
mod metrics;
mod output;
mod plan;
mod readers;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use weir_core::pipeline::StatsSnapshot;

pub use control::Control;
pub use memory::run_in_memory;

use crate::config::{Loaded, Pos, validate};
use plan::Plan;
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
    /// Problems that did not stop the run (unreadable files); the run exits non-zero.
    pub errors: Vec<String>,
    /// With follow-mode inputs: files in the checkpoint store at the end, and checkpoints
    /// of gone files pruned during the run.
    pub checkpoints: Option<(usize, u64)>,
}

/// Runs the pipeline until every input ends, or SIGTERM/SIGINT.
pub fn run(loaded: &Loaded, workers: Option<usize>) -> anyhow::Result<Summary> {
    run_with(loaded, workers, Control::from_signals()?)
}

/// Runs the pipeline until every input ends or `control.stop` is set.
pub fn run_with(loaded: &Loaded, workers: Option<usize>, control: Control) -> anyhow::Result<Summary> {
    validate(loaded)?;
    let cfg = &loaded.config;
    let workers = workers
        .or(cfg.workers.as_ref().map(|w| w.value))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut inputs = readers::sources(readers::readings(loaded)?);
    let mut plan = Plan::new(cfg, workers, inputs.once.iter().map(Vec::len).sum::<usize>().max(4));
    if !inputs.follows.is_empty() {
        plan.open_checkpoints()?;
    }
    for (_, settings) in &mut inputs.follows {
        settings.drain_on_stop = cfg.exit_when.is_some();
    }
    plan.follow_globs = inputs
        .follows
        .iter()
        .map(|(i, s)| (*i, s.paths.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect()))
        .collect();
    let mut sinks = Vec::new();
    for (o, stats) in cfg.outputs.iter().zip(&plan.output_stats) {
        sinks.push(o.value.get().open(stats, &control.abort)?);
    }
    let admin = match &cfg.admin {
        Some(a) => Some(
            crate::admin::Admin::start(&a.value.address.value)
                .map_err(|e| anyhow!("{}", loaded.error(Pos::of(&a.value.address), format!("admin: {e}"))))?,
        ),
        None => None,
    };

    let (work_tx, work_rx) = crossbeam_channel::bounded::<Work>(workers);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Encoded>(workers);
    // Dropped when the inputs are over (or abandoned at shutdown): workers drain and stop.
    let (close_tx, close_rx) = crossbeam_channel::bounded::<()>(0);
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let finished = AtomicBool::new(false);
    // Readers run on their own threads, not joined: one blocked reading stdin must not hold
    // up a shutdown.
    let readers = readers::start(&plan, inputs, &work_tx, &control.stop, &errors)?;
    drop(work_tx);

    let result = std::thread::scope(|s| -> anyhow::Result<()> {
        s.spawn(|| control::close_when_read(readers, close_tx, &control.stop));
        s.spawn(|| control::watchdog(&control, &finished, cfg.shutdown_timeout()));
        if let Some(acks) = &plan.acks {
            s.spawn(|| control::save_checkpoints(acks, &finished, cfg.checkpoint_interval()));
        }
        if let Some(exit_when) = &cfg.exit_when {
            s.spawn(|| control::watch_exit(&exit_when.value, &plan.input_stats, &control.stop, &finished));
        }
        if let Some(admin) = &admin {
            s.spawn(|| admin.serve(&finished, &plan.taps, |path| plan.admin_reply(path)));
        }
        let mut worker_handles = Vec::new();
        for n in 0..workers {
            let (worker, rx, close, tx) = (plan.worker(n)?, work_rx.clone(), close_rx.clone(), done_tx.clone());
            worker_handles.push(s.spawn(move || worker.run(&rx, &close, &tx)));
        }
        drop((done_tx, work_rx, close_rx));
        let (output_txs, output_handles) = output::start(s, sinks, &plan);
        output::dispatch(done_rx, output_txs);
        let failure = output::join(output_handles, &plan, &control.abort, &errors);
        for h in worker_handles {
            h.join().map_err(|_| anyhow!("a worker panicked"))?;
        }
        finished.store(true, Ordering::Relaxed);
        failure
    });
    if let Some(acks) = &plan.acks {
        acks.save();
    }
    result?;
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(plan.summary(errors))
}
