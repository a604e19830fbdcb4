//! The plan of a run: what its stages share (the key table, counters, buffer pools, the
//! checkpoint store and crash-loop guard), each worker's own pipeline and encoders, and the
//! summary at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use weir_core::encode::Route;
use weir_core::frame::FrameKeys;
use weir_core::model::{Batch, KeyTable};
use weir_core::pipeline::{ComponentStats, Counted, Pipeline};
use weir_core::pool::BufferPool;

use super::reload::Kept;
use super::worker::Worker;
use super::{InputSummary, Summary};
use crate::admin::tap::{Tapped, Taps};
use crate::config::{Loaded, PipelineConfig, data_dir};
use crate::delivery::acks::Acks;
use crate::delivery::checkpoint::Checkpoints;
use crate::delivery::guard::Guard;
use crate::inputs::InputStats;
use crate::inputs::tail::TailStats;
use crate::outputs::{Format, OutputStats, Sink};

/// The route number of output `i` (see `Route::Output`).
fn route_number(i: usize) -> u16 {
    u16::try_from(i + 1).expect("fewer than 65535 outputs")
}

/// Input `i`'s name in metrics, logs and taps: `inputs[0].file`.
fn input_name(cfg: &PipelineConfig, i: usize) -> String {
    format!("inputs[{i}].{}", cfg.inputs[i].value.type_name())
}

/// Output `i`'s name: `outputs[0].NAME` for a named one, else `outputs[0].TYPE`.
fn output_name(cfg: &PipelineConfig, i: usize) -> String {
    let o = &cfg.outputs[i].value;
    format!("outputs[{i}].{}", o.get().name().unwrap_or(o.type_name()))
}

/// Everything shared by the stages of one run.
pub(super) struct Plan<'a> {
    pub(super) cfg: &'a PipelineConfig,
    pub(super) keys: Arc<KeyTable>,
    pub(super) input_stats: Vec<Arc<InputStats>>,
    pub(super) proc_stats: Vec<Arc<ComponentStats>>,
    pub(super) proc_names: Vec<String>,
    pub(super) output_stats: Vec<Arc<OutputStats>>,
    /// (format, route) per output.
    pub(super) outputs: Vec<(Format, Route)>,
    pub(super) chunk_pool: Arc<BufferPool>,
    pub(super) output_pool: Arc<BufferPool>,
    pub(super) frame_keys: FrameKeys,
    /// Follow-mode tailers' counters, per input (empty for other inputs).
    pub(super) tail_stats: Vec<Arc<TailStats>>,
    /// The checkpoint store, when some input follows files.
    pub(super) acks: Option<Arc<Acks>>,
    /// The crash-loop guard, with the checkpoint store.
    pub(super) guard: Option<Arc<Guard>>,
    /// Where `/tap` samples the events leaving each component.
    pub(super) taps: Arc<Taps>,
    /// Queue depths for `/api/components`.
    pub(super) queues: Arc<Queues>,
    /// Per followed input: its index and its globs, to tell which input a file's lag is.
    pub(super) follow_globs: Vec<(usize, Vec<glob::Pattern>)>,
    /// Per input: its number in the run, the `input` of its chunks. The index in the
    /// config the run started with; an input added by a reload gets the next free one.
    pub(super) input_runs: Vec<usize>,
    /// Per input, when it was kept from before a reload: the config that started its
    /// reader, and its index there (its decoder is built from that component, which may
    /// hold state the reader shares, such as a metadata cache).
    pub(super) input_origins: Vec<Option<(Arc<Loaded>, usize)>>,
}

/// What a run carries from one pipeline to the next at a reload: the counters of the
/// components kept, the sinks of the outputs kept (their connections, their disk buffers),
/// and what every pipeline shares (buffers, the checkpoint store, the crash-loop guard).
pub(super) struct Handover {
    pub(super) loaded: Arc<Loaded>,
    pub(super) input_stats: Vec<Arc<InputStats>>,
    pub(super) tail_stats: Vec<Arc<TailStats>>,
    pub(super) follow_globs: Vec<(usize, Vec<glob::Pattern>)>,
    pub(super) input_runs: Vec<usize>,
    pub(super) input_origins: Vec<Option<(Arc<Loaded>, usize)>>,
    pub(super) proc_stats: Vec<Arc<ComponentStats>>,
    pub(super) output_stats: Vec<Arc<OutputStats>>,
    /// Per output, its sink, when its thread ended well.
    pub(super) sinks: Vec<Option<Box<dyn Sink>>>,
    pub(super) chunk_pool: Arc<BufferPool>,
    pub(super) acks: Option<Arc<Acks>>,
    pub(super) guard: Option<Arc<Guard>>,
}

/// Queue depths, set by the stage that takes from the queue each time it takes.
#[derive(Debug, Default)]
pub(super) struct Queues {
    /// Chunks waiting for a worker (all inputs share the queue), and how many it holds.
    pub(super) work: AtomicU64,
    pub(super) work_capacity: usize,
    /// Per output: batches waiting for it, and written but not yet acknowledged.
    pub(super) outputs: Vec<AtomicU64>,
}

impl<'a> Plan<'a> {
    pub(super) fn new(cfg: &'a PipelineConfig, workers: usize, sources: usize) -> Plan<'a> {
        let dead_letter = cfg.dead_letter.as_ref().map(|d| d.value.as_str());
        let keys = KeyTable::new();
        // The outputs a plugin may route an event to: the named ones, but the dead-letter.
        let routes: Vec<(String, u16)> = cfg
            .outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let name = o.value.get().name()?;
                (Some(name) != dead_letter).then(|| (name.to_string(), route_number(i)))
            })
            .collect();
        for p in &cfg.processors {
            if let crate::config::registry::ProcessorConfig::Wasm(c) = &p.value {
                c.set_routes(routes.clone());
            }
        }
        let proc_names: Vec<String> = cfg
            .processors
            .iter()
            .enumerate()
            .map(|(i, p)| format!("processors[{i}].{}", p.value.type_name()))
            .collect();
        let taps = Arc::new(Taps::new(
            &keys,
            (0..cfg.inputs.len()).map(|i| input_name(cfg, i)).collect(),
            proc_names.clone(),
            (0..cfg.outputs.len()).map(|i| output_name(cfg, i)).collect(),
        ));
        Plan {
            cfg,
            frame_keys: FrameKeys {
                stream: keys.intern("stream"),
                error: keys.intern("_error"),
            },
            keys,
            input_stats: cfg.inputs.iter().map(|_| Arc::default()).collect(),
            proc_stats: cfg.processors.iter().map(|_| Arc::default()).collect(),
            proc_names,
            output_stats: cfg.outputs.iter().map(|_| Arc::default()).collect(),
            outputs: cfg
                .outputs
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let o = o.value.get();
                    let route = if o.name().is_some() && o.name() == dead_letter {
                        Route::DeadLetter
                    } else {
                        Route::Output(route_number(i))
                    };
                    (o.format(), route)
                })
                .collect(),
            // Buffers in flight are bounded by the channels (work and done queues of
            // `workers`, one batch per worker, one per output queue, what an output holds
            // unflushed): keep about as many spare, so the steady state neither frees nor
            // maps pages. Peak memory is set by what is in flight, not by this cap.
            chunk_pool: Arc::new(BufferPool::new(2 * workers + sources.min(4) + 2)),
            output_pool: Arc::new(BufferPool::new((2 * workers + 4) * cfg.outputs.len())),
            tail_stats: cfg.inputs.iter().map(|_| Arc::default()).collect(),
            acks: None,
            guard: None,
            taps,
            queues: Arc::new(Queues {
                work: AtomicU64::new(0),
                work_capacity: workers,
                outputs: cfg.outputs.iter().map(|_| AtomicU64::new(0)).collect(),
            }),
            follow_globs: Vec::new(),
            input_runs: (0..cfg.inputs.len()).collect(),
            input_origins: cfg.inputs.iter().map(|_| None).collect(),
        }
    }

    /// Takes over from the pipeline before a reload what `kept` says this one keeps (its
    /// inputs' readers go on; its outputs' sinks are reused, returned) and what every
    /// pipeline shares. `next_run` is the number the next new input gets.
    pub(super) fn take_over(
        &mut self,
        mut old: Handover,
        kept: &Kept,
        next_run: &mut usize,
    ) -> Vec<Option<Box<dyn Sink>>> {
        self.chunk_pool = old.chunk_pool;
        self.acks = old.acks;
        self.guard = old.guard;
        for (i, from) in kept.inputs.iter().enumerate() {
            match *from {
                Some(j) => {
                    self.input_stats[i] = old.input_stats[j].clone();
                    self.tail_stats[i] = old.tail_stats[j].clone();
                    self.input_runs[i] = old.input_runs[j];
                    self.input_origins[i] =
                        Some(old.input_origins[j].clone().unwrap_or_else(|| (old.loaded.clone(), j)));
                    if let Some((_, globs)) = old.follow_globs.iter().find(|(k, _)| *k == j) {
                        self.follow_globs.push((i, globs.clone()));
                    }
                }
                None => {
                    self.input_runs[i] = *next_run;
                    *next_run += 1;
                }
            }
        }
        for (i, from) in kept.processors.iter().enumerate() {
            if let Some(j) = *from {
                self.proc_stats[i] = old.proc_stats[j].clone();
            }
        }
        let mut sinks = Vec::new();
        for (i, from) in kept.outputs.iter().enumerate() {
            let sink = from.and_then(|j| {
                self.output_stats[i] = old.output_stats[j].clone();
                old.sinks[j].take()
            });
            sinks.push(sink);
        }
        // The outputs the new pipeline does not keep: a disk buffer's drain delivers what
        // the buffer holds before it lets go, maybe not soon (the destination may be
        // down), so on a thread of its own; an ending run does not wait for it.
        let retired: Vec<Box<dyn Sink>> = old.sinks.into_iter().flatten().collect();
        if !retired.is_empty() {
            let _ = std::thread::Builder::new()
                .name("weir-retire".into())
                .spawn(move || drop(retired));
        }
        sinks
    }

    /// What the next pipeline may take over from this one, with the sinks its output
    /// threads gave back.
    pub(super) fn hand_over(self, loaded: Arc<Loaded>, sinks: Vec<Option<Box<dyn Sink>>>) -> Handover {
        Handover {
            loaded,
            input_stats: self.input_stats,
            tail_stats: self.tail_stats,
            follow_globs: self.follow_globs,
            input_runs: self.input_runs,
            input_origins: self.input_origins,
            proc_stats: self.proc_stats,
            output_stats: self.output_stats,
            sinks,
            chunk_pool: self.chunk_pool,
            acks: self.acks,
            guard: self.guard,
        }
    }

    /// Loads the checkpoint store from `data_dir` (creating it) and recovers the crash-loop
    /// guard: for runs with follow-mode inputs.
    pub(super) fn open_checkpoints(&mut self) -> anyhow::Result<()> {
        let dir = data_dir(self.cfg);
        std::fs::create_dir_all(&dir).with_context(|| format!("data_dir {}: cannot create it", dir.display()))?;
        let store = Checkpoints::load(&dir).map_err(|e| {
            anyhow!("{e}; move the file away to start over (files are then read again from their head, or tail)")
        })?;
        self.guard = Some(Arc::new(Guard::recover(&dir, &store)));
        let prune_after = self.cfg.checkpoint_prune_after();
        self.acks = Some(Arc::new(Acks::new(store).with_prune_after(prune_after)));
        Ok(())
    }

    /// Worker `n`'s own pipeline and encoders.
    pub(super) fn worker(&self, n: usize) -> anyhow::Result<Worker> {
        let stages = self
            .cfg
            .processors
            .iter()
            .zip(&self.proc_stats)
            .zip(&self.proc_names)
            .enumerate()
            .map(|(i, ((p, stats), name))| {
                let built = p.value.build(&self.keys).map_err(|e| anyhow!("{name}: {e}"))?;
                let tapped = Box::new(Tapped::new(built, self.taps.processor(i).clone()));
                Ok(Counted::new(name.as_str(), tapped, stats.clone()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Worker {
            batch: Batch::default(),
            pipeline: Pipeline::new(stages),
            encoders: self.outputs.iter().map(|(f, r)| (f.encoder(&self.keys), *r)).collect(),
            input_stats: self.input_stats.clone(),
            chunk_pool: self.chunk_pool.clone(),
            output_pool: self.output_pool.clone(),
            frame_keys: self.frame_keys,
            keys: self.keys.clone(),
            guard: self.guard.as_ref().map(|g| (g.clone(), g.slot(n))),
            single: Batch::default(),
            decoders: (0..self.cfg.inputs.len())
                .map(|i| match &self.input_origins[i] {
                    Some((loaded, j)) => loaded.config.inputs[*j].value.get().decoder(&self.keys),
                    None => self.cfg.inputs[i].value.get().decoder(&self.keys),
                })
                .collect(),
            input_index: {
                let runs = self.input_runs.iter().max().map_or(0, |m| m + 1);
                let mut index = vec![usize::MAX; runs];
                for (i, run) in self.input_runs.iter().enumerate() {
                    index[*run] = i;
                }
                index
            },
            flush_source: u32::MAX - n as u32,
            flush_seq: 0,
            taps: self.taps.clone(),
            queues: self.queues.clone(),
        })
    }

    pub(super) fn input_name(&self, i: usize) -> String {
        input_name(self.cfg, i)
    }

    pub(super) fn output_name(&self, i: usize) -> String {
        output_name(self.cfg, i)
    }

    pub(super) fn summary(&self, errors: Vec<String>) -> Summary {
        let mut summary = Summary {
            errors,
            checkpoints: self
                .acks
                .as_ref()
                .map(|a| (a.checkpoint_entries(), a.checkpoints_pruned())),
            ..Summary::default()
        };
        for (i, st) in self.input_stats.iter().enumerate() {
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            summary.inputs.push(InputSummary {
                name: self.input_name(i),
                events: get(&st.events),
                bytes: get(&st.bytes),
                lines_cut: get(&st.lines_cut),
                empty_skipped: get(&st.empty_skipped),
                records_cut: get(&st.records_cut),
                unmatched_discarded: get(&st.unmatched_discarded),
                format_errors: get(&st.format_errors),
                bad_times: get(&st.bad_times),
                unfinished_messages: get(&st.unfinished_messages),
                read_errors: get(&st.read_errors),
            });
        }
        for (name, st) in self.proc_names.iter().zip(&self.proc_stats) {
            summary.processors.push((name.clone(), st.snapshot()));
        }
        for (i, st) in self.output_stats.iter().enumerate() {
            summary.outputs_undelivered.push(st.undelivered.load(Ordering::Relaxed));
            summary.outputs.push((
                self.output_name(i),
                st.events.load(Ordering::Relaxed),
                st.bytes.load(Ordering::Relaxed),
            ));
        }
        summary
    }
}
