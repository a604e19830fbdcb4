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

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use anyhow::{Context, anyhow};
use weir_core::encode::{Encoder, Route};
use weir_core::frame::{FrameKeys, FrameStats, Framed, Framer, fill_batch};
use weir_core::line::{Chunk, DEFAULT_CHUNK_BYTES, LineOptions, split_lines_into};
use weir_core::model::{Batch, Key, KeyTable, Origin, Value};
use weir_core::parse::OnFailure;
use weir_core::pipeline::{ComponentStats, Counted, Pipeline, StatsSnapshot};
use weir_core::pool::BufferPool;

use crate::acks::{AckPoint, Acks};
use crate::checkpoint::Checkpoints;
use crate::config::{ConfigError, ExitWhen, Loaded, PipelineConfig, Pos};
use crate::guard::{Guard, GuardStats, Slot, WatchedFile, event_hash, fault_point};
use crate::inputs::{FileMode, Framing, SourceFields, container_fields, read_chunks};
use crate::outputs::{Format, OutputStats, Sink, open_sink};
use crate::registry::{InputConfig, OutputConfig};
use crate::tail::{TailChunk, TailPayload, TailSettings, TailStats, Tailer};

/// Checks everything that can be checked without running: the config parsed, and each
/// component's own rules (patterns compile, processors build, names resolve).
pub fn validate(loaded: &Loaded) -> Result<(), ConfigError> {
    let cfg = &loaded.config;
    let top = Pos { line: 1, column: 1 };
    if cfg.inputs.is_empty() {
        return Err(loaded.error(top, "the pipeline has no inputs"));
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
        let at = Pos::of(input);
        match &input.value {
            InputConfig::Stdin(c) => c.validate(at, loaded)?,
            InputConfig::File(c) => c.validate(at, loaded)?,
            InputConfig::KubernetesLogs(c) => c.validate(loaded)?,
        }
    }
    if let Some(e) = &cfg.exit_when {
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
    }
    let keys = KeyTable::new();
    for p in &cfg.processors {
        p.value
            .build(&keys)
            .map_err(|e| loaded.error(Pos::of(p), format!("{}: {e}", p.value.type_name())))?;
    }
    let mut names = HashMap::new();
    for output in &cfg.outputs {
        match &output.value {
            OutputConfig::File(c) => c.validate(loaded)?,
            OutputConfig::Http(c) => c.validate(loaded)?,
            OutputConfig::Stdout(_) => {}
        }
        if let Some(name) = output.value.name()
            && names.insert(name, Pos::of(output)).is_some()
        {
            return Err(loaded.error(Pos::of(output), format!("two outputs are named `{name}`")));
        }
    }
    match &cfg.dead_letter {
        Some(dl) if !names.contains_key(dl.value.as_str()) => {
            return Err(loaded.error(
                Pos::of(dl),
                format!(
                    "dead_letter: no output is named `{}` (give an output `name: {}`)",
                    dl.value, dl.value
                ),
            ));
        }
        Some(_) => {
            if cfg.outputs.len() < 2 {
                return Err(loaded.error(
                    top,
                    "the dead-letter output gets only failed events: the pipeline needs another output too",
                ));
            }
        }
        None => {
            if let Some(p) = cfg
                .processors
                .iter()
                .find(|p| p.value.on_failure() == Some(OnFailure::DeadLetter))
            {
                return Err(loaded.error(
                    Pos::of(p),
                    "on_failure: dead_letter needs the pipeline's `dead_letter: OUTPUT_NAME`",
                ));
            }
        }
    }
    Ok(())
}

/// Counters of one input.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Events made from its lines.
    pub events: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
    /// Lines longer than `max_line_bytes`, cut into flagged pieces.
    pub lines_cut: AtomicU64,
    /// Empty lines skipped (`skip_empty_lines`).
    pub empty_skipped: AtomicU64,
    /// Sources that could not be read.
    pub read_errors: AtomicU64,
    /// Multiline records closed by `max_lines` / `max_bytes`.
    pub records_cut: AtomicU64,
    /// Lines outside records dropped by `unmatched: discard`.
    pub unmatched_discarded: AtomicU64,
    /// Lines not in the input's `format` (kept, with `_error`).
    pub format_errors: AtomicU64,
    /// Container lines whose time is missing or bad (kept without one, with `_error`).
    pub bad_times: AtomicU64,
    /// Container messages that ended before their last piece (kept, with `_error`).
    pub unfinished_messages: AtomicU64,
}

impl InputStats {
    pub(crate) fn add_frame(&self, f: FrameStats) {
        self.lines_cut.fetch_add(f.lines_cut, Ordering::Relaxed);
        self.empty_skipped.fetch_add(f.empty_skipped, Ordering::Relaxed);
        self.records_cut.fetch_add(f.records_cut, Ordering::Relaxed);
        self.unmatched_discarded
            .fetch_add(f.unmatched_discarded, Ordering::Relaxed);
        self.format_errors.fetch_add(f.format_errors, Ordering::Relaxed);
        self.bad_times.fetch_add(f.bad_times, Ordering::Relaxed);
        self.unfinished_messages
            .fetch_add(f.unfinished_messages, Ordering::Relaxed);
    }
}

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

/// One source read to its end: stdin or one file (`mode: once`).
#[derive(Debug)]
struct Source {
    id: u32,
    input: usize,
    path: Option<PathBuf>,
    opts: LineOptions,
    framing: Option<Framing>,
    pod: Option<SourceFields>,
}

/// What a reader hands a worker: plain lines, or records framed by the reader.
#[derive(Debug)]
enum Payload {
    Lines(Chunk),
    Framed(Framed),
}

/// A chunk on its way to a worker.
#[derive(Debug)]
struct Work {
    payload: Payload,
    source: u32,
    input: usize,
    seq: u64,
    opts: LineOptions,
    pod: Option<SourceFields>,
    /// Where the source's checkpoint may go once every output delivered this batch.
    ack: Option<AckPoint>,
}

/// A processed batch: the bytes encoded for each output. Shared by the output threads;
/// the last one to let go gives the buffers back to the pool.
#[derive(Debug)]
struct Encoded {
    source: u32,
    seq: u64,
    /// Events per output.
    events: Vec<u64>,
    per_output: Vec<Vec<u8>>,
    pool: Arc<BufferPool>,
    ack: Option<(AckPoint, Arc<Acks>)>,
    /// Outputs that have not delivered this batch yet.
    undelivered: AtomicUsize,
}

impl Encoded {
    /// One output delivered this batch; after the last, its checkpoint may move.
    fn delivered(&self) {
        if self.undelivered.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some((point, acks)) = &self.ack
        {
            acks.ack(*point);
        }
    }
}

impl Drop for Encoded {
    fn drop(&mut self) {
        for buf in self.per_output.drain(..) {
            self.pool.give(buf);
        }
    }
}

/// Everything shared by the stages of one run.
struct Plan<'a> {
    cfg: &'a PipelineConfig,
    keys: Arc<KeyTable>,
    input_stats: Vec<Arc<InputStats>>,
    proc_stats: Vec<Arc<ComponentStats>>,
    proc_names: Vec<String>,
    output_stats: Vec<Arc<OutputStats>>,
    /// (format, route) per output.
    outputs: Vec<(Format, Route)>,
    chunk_pool: Arc<BufferPool>,
    output_pool: Arc<BufferPool>,
    frame_keys: FrameKeys,
    /// Follow-mode tailers' counters, per input (empty for other inputs).
    tail_stats: Vec<Arc<TailStats>>,
    /// The checkpoint store, when some input follows files.
    acks: Option<Arc<Acks>>,
    /// The crash-loop guard, with the checkpoint store.
    guard: Option<Arc<Guard>>,
}

impl<'a> Plan<'a> {
    fn new(cfg: &'a PipelineConfig, workers: usize, sources: usize) -> Plan<'a> {
        let dead_letter = cfg.dead_letter.as_ref().map(|d| d.value.as_str());
        let keys = KeyTable::new();
        Plan {
            cfg,
            frame_keys: FrameKeys {
                stream: keys.intern("stream"),
                error: keys.intern("_error"),
            },
            keys,
            input_stats: cfg.inputs.iter().map(|_| Arc::default()).collect(),
            proc_stats: cfg.processors.iter().map(|_| Arc::default()).collect(),
            proc_names: cfg
                .processors
                .iter()
                .enumerate()
                .map(|(i, p)| format!("processors[{i}].{}", p.value.type_name()))
                .collect(),
            output_stats: cfg.outputs.iter().map(|_| Arc::default()).collect(),
            outputs: cfg
                .outputs
                .iter()
                .map(|o| {
                    let route = if o.value.name().is_some() && o.value.name() == dead_letter {
                        Route::DeadLetter
                    } else {
                        Route::Main
                    };
                    (o.value.format(), route)
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
        }
    }

    /// Worker `n`'s own pipeline and encoders.
    fn worker(&self, n: usize) -> anyhow::Result<Worker> {
        let stages = self
            .cfg
            .processors
            .iter()
            .zip(&self.proc_stats)
            .zip(&self.proc_names)
            .map(|((p, stats), name)| {
                let built = p.value.build(&self.keys).map_err(|e| anyhow!("{name}: {e}"))?;
                Ok(Counted::new(name.as_str(), built, stats.clone()))
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
            acks: self.acks.clone(),
            guard: self.guard.as_ref().map(|g| (g.clone(), g.slot(n))),
            single: Batch::default(),
        })
    }

    fn input_name(&self, i: usize) -> String {
        format!("inputs[{i}].{}", self.cfg.inputs[i].value.type_name())
    }

    fn output_name(&self, i: usize) -> String {
        let o = &self.cfg.outputs[i].value;
        format!("outputs[{i}].{}", o.name().unwrap_or(o.type_name()))
    }

    /// What the admin endpoint answers at `path`.
    fn admin_reply(&self, path: &str) -> crate::admin::Reply {
        match path {
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics()),
            "/health" => (200, "application/json", self.health()),
            _ => (404, "text/plain", "not found: try /health or /metrics\n".to_string()),
        }
    }

    /// `/health`: live, and the state of every input and output.
    fn health(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let inputs: Vec<serde_json::Value> = (0..self.input_stats.len())
            .map(|i| {
                let (st, tail) = (&self.input_stats[i], &self.tail_stats[i]);
                serde_json::json!({
                    "name": self.input_name(i),
                    "events": get(&st.events),
                    "bytes": get(&st.bytes),
                    "files_open": get(&tail.files_open),
                    "read_errors": get(&st.read_errors),
                })
            })
            .collect();
        let outputs: Vec<serde_json::Value> = (0..self.output_stats.len())
            .map(|i| {
                let st = &self.output_stats[i];
                serde_json::json!({
                    "name": self.output_name(i),
                    "events": get(&st.events),
                    "retries": get(&st.retries),
                    "rejected": get(&st.rejected),
                })
            })
            .collect();
        let mut body = serde_json::json!({ "status": "ok", "inputs": inputs, "outputs": outputs });
        if let Some(acks) = &self.acks {
            body["checkpoint_age_seconds"] = serde_json::json!(acks.checkpoint_age());
        }
        body.to_string() + "\n"
    }

    /// `/metrics`: every counter, in Prometheus text.
    fn metrics(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let mut m = crate::admin::Metrics::default();
        type InputCounter = fn(&InputStats) -> &AtomicU64;
        let input_counters: [(&str, &str, InputCounter); 8] = [
            ("weir_input_events_total", "Events made by the input.", |s| &s.events),
            ("weir_input_bytes_total", "Bytes read by the input.", |s| &s.bytes),
            (
                "weir_input_lines_cut_total",
                "Lines longer than max_line_bytes, cut.",
                |s| &s.lines_cut,
            ),
            (
                "weir_input_format_errors_total",
                "Lines not in the input's format.",
                |s| &s.format_errors,
            ),
            (
                "weir_input_bad_times_total",
                "Container lines whose time is missing or not a timestamp.",
                |s| &s.bad_times,
            ),
            (
                "weir_input_unfinished_messages_total",
                "Container messages that ended before their last piece.",
                |s| &s.unfinished_messages,
            ),
            ("weir_input_read_errors_total", "Sources that could not be read.", |s| {
                &s.read_errors
            }),
            (
                "weir_input_records_cut_total",
                "Multiline records closed by their limits.",
                |s| &s.records_cut,
            ),
        ];
        for (name, help, f) in input_counters {
            m.family(name, "counter", help);
            for (i, st) in self.input_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.input_name(i))], get(f(st)));
            }
        }
        type TailCounter = fn(&TailStats) -> &AtomicU64;
        let tail_counters: [(&str, &str, &str, TailCounter); 5] = [
            ("weir_files_open", "gauge", "Files the input holds open.", |s| {
                &s.files_open
            }),
            ("weir_files_found_total", "counter", "Files found by the input.", |s| {
                &s.files_found
            }),
            (
                "weir_files_released_total",
                "counter",
                "Files read to their end and let go.",
                |s| &s.files_released,
            ),
            (
                "weir_file_truncations_total",
                "counter",
                "Files truncated under the reader.",
                |s| &s.truncations,
            ),
            (
                "weir_file_bytes_lost_total",
                "counter",
                "Bytes gone before they could be read.",
                |s| &s.bytes_lost,
            ),
        ];
        for (name, kind, help, f) in tail_counters {
            m.family(name, kind, help);
            for (i, st) in self.tail_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.input_name(i))], get(f(st)));
            }
        }
        type ProcCounter = fn(&StatsSnapshot) -> u64;
        let proc_counters: [(&str, &str, ProcCounter); 5] = [
            ("weir_processor_events_in_total", "Events into the processor.", |s| {
                s.events_in
            }),
            ("weir_processor_events_out_total", "Events out of the processor.", |s| {
                s.events_out
            }),
            ("weir_processor_bytes_in_total", "Bytes into the processor.", |s| {
                s.bytes_in
            }),
            ("weir_processor_bytes_out_total", "Bytes out of the processor.", |s| {
                s.bytes_out
            }),
            (
                "weir_processor_failures_total",
                "Events that failed in the processor (parse failures, plugin errors).",
                |s| s.failures,
            ),
        ];
        let snaps: Vec<StatsSnapshot> = self.proc_stats.iter().map(|s| s.snapshot()).collect();
        for (name, help, f) in proc_counters {
            m.family(name, "counter", help);
            for (snap, pname) in snaps.iter().zip(&self.proc_names) {
                m.sample(name, &[("component", pname)], f(snap) as f64);
            }
        }
        type OutCounter = fn(&OutputStats) -> &AtomicU64;
        let out_counters: [(&str, &str, OutCounter); 5] = [
            ("weir_output_events_total", "Events delivered by the output.", |s| {
                &s.events
            }),
            ("weir_output_bytes_total", "Bytes delivered by the output.", |s| {
                &s.bytes
            }),
            (
                "weir_output_retries_total",
                "Attempts repeated after a retryable failure.",
                |s| &s.retries,
            ),
            (
                "weir_output_rejected_total",
                "Events the destination rejected for good.",
                |s| &s.rejected,
            ),
            (
                "weir_output_unacked_batches_total",
                "Batches not delivered before the run stopped.",
                |s| &s.unacked_batches,
            ),
        ];
        for (name, help, f) in out_counters {
            m.family(name, "counter", help);
            for (i, st) in self.output_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.output_name(i))], get(f(st)));
            }
        }
        if let Some(acks) = &self.acks {
            m.family(
                "weir_file_bytes_behind",
                "gauge",
                "Bytes of a followed file not yet delivered.",
            );
            for lag in acks.lag() {
                let path = lag.path.display().to_string();
                m.sample(
                    "weir_file_bytes_behind",
                    &[("path", &path)],
                    lag.size.saturating_sub(lag.committed) as f64,
                );
            }
            m.family(
                "weir_checkpoint_age_seconds",
                "gauge",
                "Seconds since checkpoints were last saved.",
            );
            m.sample(
                "weir_checkpoint_age_seconds",
                &[],
                acks.checkpoint_age().unwrap_or(f64::NAN),
            );
            m.family(
                "weir_checkpoint_save_errors_total",
                "counter",
                "Checkpoint saves that failed.",
            );
            m.sample("weir_checkpoint_save_errors_total", &[], acks.save_errors() as f64);
            m.family("weir_checkpoint_entries", "gauge", "Files in the checkpoint store.");
            m.sample("weir_checkpoint_entries", &[], acks.checkpoint_entries() as f64);
            m.family(
                "weir_checkpoints_pruned_total",
                "counter",
                "Checkpoints dropped because their file was gone for checkpoint_prune_after.",
            );
            m.sample("weir_checkpoints_pruned_total", &[], acks.checkpoints_pruned() as f64);
        }
        if let Some(guard) = &self.guard {
            type GuardCounter = fn(&GuardStats) -> &AtomicU64;
            let guard_counters: [(&str, &str, GuardCounter); 3] = [
                (
                    "weir_crash_batches_recovered_total",
                    "Batches in flight when the previous run ended abnormally (found at start).",
                    |s| &s.recovered,
                ),
                (
                    "weir_guarded_batches_total",
                    "Batches processed one event at a time because an earlier run died on their bytes.",
                    |s| &s.guarded_batches,
                ),
                (
                    "weir_quarantined_events_total",
                    "Events set aside because the agent died twice processing them (to dead_letter when set).",
                    |s| &s.quarantined,
                ),
            ];
            for (name, help, f) in guard_counters {
                m.family(name, "counter", help);
                m.sample(name, &[], get(f(&guard.stats)));
            }
        }
        m.finish()
    }

    fn summary(&self, errors: Vec<String>) -> Summary {
        let cfg = self.cfg;
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
                name: format!("inputs[{i}].{}", cfg.inputs[i].value.type_name()),
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
            let o = &cfg.outputs[i].value;
            summary.outputs.push((
                format!("outputs[{i}].{}", o.name().unwrap_or(o.type_name())),
                st.events.load(Ordering::Relaxed),
                st.bytes.load(Ordering::Relaxed),
            ));
        }
        summary
    }
}

/// One worker: splits a chunk into a batch (its event list reused from chunk to chunk),
/// runs the pipeline, encodes for every output.
struct Worker {
    batch: Batch,
    pipeline: Pipeline,
    encoders: Vec<(Box<dyn Encoder>, Route)>,
    input_stats: Vec<Arc<InputStats>>,
    chunk_pool: Arc<BufferPool>,
    output_pool: Arc<BufferPool>,
    frame_keys: FrameKeys,
    keys: Arc<KeyTable>,
    acks: Option<Arc<Acks>>,
    /// The crash-loop guard and this worker's in-flight slot.
    guard: Option<(Arc<Guard>, Slot)>,
    /// A batch of one event, for guarded batches.
    single: Batch,
}

/// The encoded bytes and event counts of a batch, per output.
struct PerOutput {
    bufs: Vec<Vec<u8>>,
    events: Vec<u64>,
}

impl Worker {
    /// A chunk of plain lines through a pipeline with no processors: every encoder writes it
    /// straight from the chunk (see `Encoder::encode_plain_lines`), when all of them can.
    fn plain_lines(&mut self, work: &Work) -> Option<Encoded> {
        let Payload::Lines(chunk) = &work.payload else {
            return None;
        };
        if !self.pipeline.stages().is_empty()
            || chunk.first_continues_cut
            || chunk.is_cut_piece
            || work.opts.skip_empty_lines
            || work.pod.is_some()
        {
            return None;
        }
        let mut events = Vec::with_capacity(self.encoders.len());
        let mut per_output = Vec::with_capacity(self.encoders.len());
        let mut lines = 0;
        for (encoder, route) in &mut self.encoders {
            let mut out = self.output_pool.take_empty(chunk.data.len() + chunk.data.len() / 4);
            let n = match route {
                Route::Main => match encoder.encode_plain_lines(&chunk.data, work.opts.max_line_bytes, &mut out) {
                    Some(n) => n,
                    None => {
                        self.output_pool.give(out);
                        for buf in per_output {
                            self.output_pool.give(buf);
                        }
                        return None;
                    }
                },
                // No processor ran: nothing is dead-lettered.
                Route::DeadLetter => 0,
            };
            lines = lines.max(n);
            events.push(n);
            per_output.push(out);
        }
        self.input_stats[work.input].events.fetch_add(lines, Ordering::Relaxed);
        Some(Encoded {
            source: work.source,
            seq: work.seq,
            undelivered: AtomicUsize::new(per_output.len()),
            events,
            per_output,
            pool: self.output_pool.clone(),
            ack: work.ack.zip(self.acks.clone()),
        })
    }

    /// Processes one chunk: split or fill a batch, run the pipeline, encode for every output.
    /// A chunk of a file that an earlier run died on goes one event at a time (see `guard`).
    fn process(&mut self, work: Work) -> Encoded {
        let Some((file, start, end)) = self.watch(&work) else {
            return self.process_batch(work);
        };
        let done = if self
            .guard
            .as_ref()
            .is_some_and(|(g, _)| g.guards(&file.identity, start, end))
        {
            self.process_guarded(work, &file, start, end)
        } else {
            self.process_batch(work)
        };
        if let Some((_, slot)) = &mut self.guard {
            slot.clear();
        }
        done
    }

    /// For a chunk of a file with checkpoints: the file and the chunk's byte range, recorded
    /// in this worker's in-flight slot until the chunk is encoded.
    fn watch(&mut self, work: &Work) -> Option<(WatchedFile, u64, u64)> {
        let (_, slot) = self.guard.as_mut()?;
        let file = self.acks.as_ref()?.file(work.ack?)?;
        let (start, len) = match &work.payload {
            Payload::Lines(c) => (c.offset, c.data.len()),
            Payload::Framed(f) => (f.offset, f.data.len()),
        };
        let end = start + len as u64;
        slot.set(&file, start, end, None);
        Some((file, start, end))
    }

    fn process_batch(&mut self, work: Work) -> Encoded {
        if let Some(done) = self.plain_lines(&work) {
            if let Payload::Lines(chunk) = work.payload {
                self.chunk_pool.give(chunk.data);
            }
            return done;
        }
        let (source, seq, ack) = self.fill(work);
        fault_point(&self.batch);
        self.pipeline.run(&mut self.batch);
        let mut out = self.take_outputs(self.batch.chunk().len());
        encode_batch(&mut self.encoders, &self.batch, &mut out);
        self.encoded(source, seq, ack, out)
    }

    /// A chunk whose bytes an earlier run died on: each event goes through the pipeline on
    /// its own, named in the slot first, so a second death pins the record; a record pinned
    /// so (quarantined) is set aside instead of processed. Copies the chunk once per event:
    /// slow, and only for the few chunks that need it.
    fn process_guarded(&mut self, work: Work, file: &WatchedFile, start: u64, end: u64) -> Encoded {
        let Some((guard, _)) = &self.guard else {
            return self.process_batch(work);
        };
        let guard = guard.clone();
        guard.stats.guarded_batches.fetch_add(1, Ordering::Relaxed);
        let (source, seq, ack) = self.fill(work);
        let mut out = self.take_outputs(self.batch.chunk().len());
        let mut one = std::mem::take(&mut self.single);
        for i in 0..self.batch.len() {
            self.batch.copy_event_into(i, &mut one);
            let hash = event_hash(self.batch.bytes(self.batch.events()[i].raw()));
            if let Some(suspect) = guard.quarantined(&file.identity, start, end, hash) {
                guard.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                let raw = one.bytes(one.events()[0].raw());
                tracing::error!(
                    file = %file.path.display(),
                    batch = format!("bytes {}..{}", suspect.start, suspect.end),
                    record = %String::from_utf8_lossy(&raw[..raw.len().min(200)]),
                    "quarantined: the agent died twice processing this record; it is not processed \
                     (sent to dead_letter when the pipeline has one, else dropped) and counted"
                );
                let why = one.push_arena(b"quarantined: the agent died twice while processing this record");
                let (_, events) = one.parts_mut();
                events[0].set(self.frame_keys.error, Value::Str(why));
                events[0].mark_dead_letter();
            } else {
                if let Some((_, slot)) = &mut self.guard {
                    slot.set(file, start, end, Some(hash));
                }
                fault_point(&one);
                self.pipeline.run(&mut one);
            }
            encode_batch(&mut self.encoders, &one, &mut out);
        }
        self.single = one;
        self.encoded(source, seq, ack, out)
    }

    /// Makes `self.batch` from the chunk (lines split, or framed records), with the pod's
    /// fields; returns the chunk's source, sequence number and ack point.
    fn fill(&mut self, work: Work) -> (u32, u64, Option<AckPoint>) {
        let batch = &mut self.batch;
        let stats = &self.input_stats[work.input];
        match work.payload {
            Payload::Lines(chunk) => {
                let (split, old) = split_lines_into(batch, chunk, &work.opts, work.source, work.seq);
                self.chunk_pool.give(old);
                stats.lines_cut.fetch_add(split.lines_cut, Ordering::Relaxed);
                stats.empty_skipped.fetch_add(split.empty_skipped, Ordering::Relaxed);
            }
            Payload::Framed(framed) => {
                let origin = Origin {
                    source: work.source,
                    seq: work.seq,
                    offset: framed.offset,
                };
                let (old_chunk, old_arena, _) = fill_batch(batch, framed, self.frame_keys, origin);
                self.chunk_pool.give(old_chunk);
                self.chunk_pool.give(old_arena);
            }
        }
        stats.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(pod) = &work.pod {
            // Constant per source: into the arena once per batch.
            let fields: Vec<(Key, Value)> = pod
                .iter()
                .map(|(name, v)| (self.keys.intern(name), Value::Str(batch.push_arena(v.as_bytes()))))
                .collect();
            let (_, events) = batch.parts_mut();
            for event in events {
                for (key, value) in &fields {
                    event.set(*key, *value);
                }
            }
        }
        (work.source, work.seq, work.ack)
    }

    /// Empty pooled buffers, one per output, for a chunk of `len` bytes.
    fn take_outputs(&self, len: usize) -> PerOutput {
        PerOutput {
            bufs: (0..self.encoders.len())
                .map(|_| self.output_pool.take_empty(len + len / 4))
                .collect(),
            events: vec![0; self.encoders.len()],
        }
    }

    fn encoded(&self, source: u32, seq: u64, ack: Option<AckPoint>, out: PerOutput) -> Encoded {
        Encoded {
            source,
            seq,
            undelivered: AtomicUsize::new(out.bufs.len()),
            events: out.events,
            per_output: out.bufs,
            pool: self.output_pool.clone(),
            ack: ack.zip(self.acks.clone()),
        }
    }
}

/// Appends `batch`'s events to every output's buffer, each through its encoder and route.
fn encode_batch(encoders: &mut [(Box<dyn Encoder>, Route)], batch: &Batch, out: &mut PerOutput) {
    for ((encoder, route), (buf, events)) in encoders.iter_mut().zip(out.bufs.iter_mut().zip(&mut out.events)) {
        encoder.encode_route(batch, *route, buf);
        *events += match route {
            Route::Main => batch.live().count() as u64,
            Route::DeadLetter => batch.dead_letters().count() as u64,
        };
    }
}

/// Resolves the sources of every input (stdin, or the files the globs match now).
fn resolve_sources(loaded: &Loaded) -> Result<Vec<Vec<Source>>, ConfigError> {
    let cfg = &loaded.config;
    let mut sources = Vec::new();
    let mut next_id = 0u32;
    for (input, spec) in cfg.inputs.iter().enumerate() {
        let (paths, opts, framing): (Vec<Option<PathBuf>>, _, _) = match &spec.value {
            InputConfig::Stdin(c) => (vec![None], c.line_options(), c.framing(loaded)?),
            InputConfig::KubernetesLogs(_) => {
                sources.push(Vec::new());
                continue;
            }
            InputConfig::File(c) if c.mode() == FileMode::Follow => {
                // Followed by a tailer; its files get ids as they are found.
                sources.push(Vec::new());
                continue;
            }
            InputConfig::File(c) => {
                let files = c.matched_files();
                if files.is_empty() {
                    let patterns: Vec<&str> = c.paths.value.iter().map(|p| p.value.as_str()).collect();
                    tracing::warn!(input, ?patterns, "file input: no file matches");
                }
                (
                    files.into_iter().map(Some).collect(),
                    c.line_options(),
                    c.framing(loaded)?,
                )
            }
        };
        let container = framing
            .as_ref()
            .is_some_and(|f| f.format != weir_core::frame::Format::Raw);
        let mut list = Vec::new();
        for path in paths {
            let pod = match (&path, container) {
                (Some(p), true) => container_fields(p).map(SourceFields::from),
                _ => None,
            };
            list.push(Source {
                id: next_id,
                input,
                path,
                opts,
                framing: framing.clone(),
                pod,
            });
            next_id += 1;
        }
        sources.push(list);
    }
    Ok(sources)
}

/// How a run is stopped from outside: `stop` ends reading (SIGTERM, SIGINT, a test);
/// `abort` tells outputs still retrying to give up (the shutdown deadline passed).
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Stop reading, drain, flush, save checkpoints.
    pub stop: Arc<AtomicBool>,
    /// Give up on what is not delivered yet.
    pub abort: Arc<AtomicBool>,
}

impl Control {
    /// A control wired to SIGTERM and SIGINT: the first sets `stop`, a second `abort`.
    pub fn from_signals() -> anyhow::Result<Control> {
        let control = Control::default();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // Registered first, the conditional one sees the flag before it is set: a
            // second signal sets `abort`.
            signal_hook::flag::register_conditional_default(sig, control.abort.clone())
                .map(|_| ())
                .ok();
            signal_hook::flag::register(sig, control.stop.clone()).context("cannot install a signal handler")?;
        }
        Ok(control)
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
    let sources = resolve_sources(loaded)?;
    let mut plan = Plan::new(cfg, workers, sources.iter().map(Vec::len).sum::<usize>().max(4));
    let mut follows: Vec<(usize, TailSettings)> = cfg
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| match &spec.value {
            InputConfig::File(c) if c.mode() == FileMode::Follow => {
                Some(c.tail_settings(loaded, DEFAULT_CHUNK_BYTES).map(|t| (i, t)))
            }
            InputConfig::KubernetesLogs(c) => Some(c.tail_settings(loaded, DEFAULT_CHUNK_BYTES).map(|t| (i, t))),
            _ => None,
        })
        .collect::<Result<_, _>>()?;
    for (_, settings) in &mut follows {
        settings.drain_on_stop = cfg.exit_when.is_some();
    }
    if !follows.is_empty() {
        let dir = data_dir(cfg);
        std::fs::create_dir_all(&dir).with_context(|| format!("data_dir {}: cannot create it", dir.display()))?;
        let store = Checkpoints::load(&dir).map_err(|e| {
            anyhow!("{e}; move the file away to start over (files are then read again from their head, or tail)")
        })?;
        plan.guard = Some(Arc::new(Guard::recover(&dir, &store)));
        let prune_after = cfg
            .checkpoint_prune_after
            .as_ref()
            .map_or(crate::acks::DEFAULT_PRUNE_AFTER, |d| d.value.0);
        plan.acks = Some(Arc::new(Acks::new(store).with_prune_after(prune_after)));
    }
    let checkpoint_interval = cfg
        .checkpoint_interval
        .as_ref()
        .map_or(Duration::from_secs(1), |d| d.value.0);
    let shutdown_timeout = cfg
        .shutdown_timeout
        .as_ref()
        .map_or(Duration::from_secs(20), |d| d.value.0);
    let mut sinks = Vec::new();
    for (o, stats) in cfg.outputs.iter().zip(&plan.output_stats) {
        sinks.push(open_sink(&o.value, stats, &control.abort)?);
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
    let finished = Arc::new(AtomicBool::new(false));

    // Readers run on their own threads, not joined: one blocked reading stdin must not hold
    // up a shutdown.
    let next_source = Arc::new(AtomicU32::new(sources.iter().map(|l| l.len() as u32).sum()));
    let mut readers: Vec<(std::thread::JoinHandle<()>, bool)> = Vec::new();
    for (input, list) in sources.into_iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let is_stdin = list.iter().any(|s| s.path.is_none());
        let tx = work_tx.clone();
        let stats = plan.input_stats[input].clone();
        let pool = plan.chunk_pool.clone();
        let stop = control.stop.clone();
        let errors = errors.clone();
        readers.push((
            std::thread::Builder::new()
                .name(format!("weir-input-{input}"))
                .spawn(move || {
                    let errs = read_input(&list, &tx, &stats, &pool, &stop);
                    errors.lock().unwrap_or_else(|e| e.into_inner()).extend(errs);
                })?,
            is_stdin,
        ));
    }
    for (input, settings) in follows {
        let tx = work_tx.clone();
        let stop = control.stop.clone();
        let opts = settings.opts;
        let tailer = Tailer::new(
            settings,
            plan.acks.clone().expect("follow inputs have a checkpoint store"),
            plan.chunk_pool.clone(),
            next_source.clone(),
            plan.tail_stats[input].clone(),
            plan.input_stats[input].clone(),
        );
        readers.push((
            std::thread::Builder::new()
                .name(format!("weir-tail-{input}"))
                .spawn(move || {
                    let mut send = |c: TailChunk| {
                        let work = Work {
                            payload: match c.payload {
                                TailPayload::Lines(chunk) => Payload::Lines(chunk),
                                TailPayload::Framed(f) => Payload::Framed(f),
                            },
                            source: c.source,
                            input,
                            seq: c.seq,
                            opts,
                            pod: c.pod,
                            ack: Some(c.ack),
                        };
                        tx.send(work).is_ok()
                    };
                    tailer.run(&stop, &mut send);
                })?,
            false,
        ));
    }
    drop(work_tx);

    let result = std::thread::scope(|s| -> anyhow::Result<()> {
        // The closer: once every reader is done (or, after a stop, every reader that can
        // stop), tell the workers to drain and finish.
        s.spawn(|| {
            let close_tx = close_tx;
            let mut pending = readers;
            loop {
                let stopping = control.stop.load(Ordering::Relaxed);
                // A reader of stdin may be blocked in a read: after a stop it is not waited for.
                pending.retain(|(h, is_stdin)| !(h.is_finished() || stopping && *is_stdin));
                if pending.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(close_tx);
        });
        // The watchdog: after a stop, give the drain `shutdown_timeout`, then abort.
        s.spawn(|| {
            while !finished.load(Ordering::Relaxed) && !control.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let deadline = Instant::now() + shutdown_timeout;
            while !finished.load(Ordering::Relaxed) {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        ?shutdown_timeout,
                        "shutdown_timeout passed: giving up on what is not delivered"
                    );
                    control.abort.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // Checkpoints are saved at most every `checkpoint_interval`, and at the end.
        if let Some(acks) = &plan.acks {
            s.spawn(|| {
                while !finished.load(Ordering::Relaxed) {
                    acks.prune_if_due();
                    acks.save_if_due(checkpoint_interval);
                    std::thread::sleep(checkpoint_interval.min(Duration::from_millis(100)));
                }
            });
        }
        if let Some(exit_when) = &cfg.exit_when {
            s.spawn(|| watch_exit(&exit_when.value, &plan.input_stats, &control.stop, &finished));
        }
        if let Some(admin) = &admin {
            s.spawn(|| admin.serve(&finished, |path| plan.admin_reply(path)));
        }

        let mut worker_handles = Vec::new();
        for n in 0..workers {
            let rx = work_rx.clone();
            let close = close_rx.clone();
            let tx = done_tx.clone();
            let mut worker = plan.worker(n)?;
            worker_handles.push(s.spawn(move || {
                loop {
                    crossbeam_channel::select! {
                        recv(rx) -> work => match work {
                            Ok(work) => if tx.send(worker.process(work)).is_err() { return },
                            Err(_) => return,
                        },
                        recv(close) -> _ => {
                            // The inputs are over: what is queued is all there is.
                            for _ in 0..rx.len() {
                                let Ok(work) = rx.try_recv() else { break };
                                if tx.send(worker.process(work)).is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                    }
                }
            }));
        }
        drop(done_tx);
        drop(work_rx);
        drop(close_rx);

        let mut output_txs = Vec::new();
        let mut output_handles = Vec::new();
        for (i, sink) in sinks.drain(..).enumerate() {
            let (tx, rx) = crossbeam_channel::bounded::<Arc<Encoded>>(1);
            output_txs.push(tx);
            let stats = plan.output_stats[i].clone();
            output_handles.push(s.spawn(move || run_output(i, sink, &rx, &stats)));
        }

        // The dispatcher: release each source's batches in sequence.
        let mut order = Reorder::default();
        'dispatch: while let Ok(done) = done_rx.recv() {
            for ready in order.push(done) {
                let ready = Arc::new(ready);
                for tx in &output_txs {
                    if tx.send(ready.clone()).is_err() {
                        break 'dispatch;
                    }
                }
            }
        }
        drop(done_rx);
        drop(output_txs);

        let mut failure = None;
        for (i, h) in output_handles.into_iter().enumerate() {
            let o = &cfg.outputs[i].value;
            let name = format!("outputs[{i}].{}", o.name().unwrap_or(o.type_name()));
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) if control.abort.load(Ordering::Relaxed) => {
                    let n = plan.output_stats[i].unacked_batches.load(Ordering::Relaxed);
                    errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                        "{name}: {n} batch(es) not delivered before the shutdown deadline ({e}); \
                         they are read again from the last checkpoint on restart"
                    ));
                }
                Ok(Err(e)) => failure = failure.or(Some(anyhow!("{name}: write failed: {e}"))),
                Err(_) => failure = failure.or(Some(anyhow!("{name} panicked"))),
            }
        }
        for h in worker_handles {
            h.join().map_err(|_| anyhow!("a worker panicked"))?;
        }
        finished.store(true, Ordering::Relaxed);
        failure.map_or(Ok(()), Err)
    });
    if let Some(acks) = &plan.acks {
        acks.save();
    }
    result?;
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(plan.summary(errors))
}

/// Sidecar mode: sets `stop` when a condition of `exit_when` holds.
fn watch_exit(exit_when: &ExitWhen, inputs: &[Arc<InputStats>], stop: &AtomicBool, finished: &AtomicBool) {
    let bytes = || inputs.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum::<u64>();
    let mut last = (bytes(), Instant::now());
    while !finished.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
        if let Some(marker) = &exit_when.marker_file
            && marker.value.exists()
        {
            tracing::info!(marker = %marker.value.display(), "exit_when: marker file found; reading to the end, then exiting");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let now = bytes();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if let Some(idle) = &exit_when.idle {
            let process_gone = exit_when.process.as_ref().is_none_or(|p| !process_running(&p.value));
            if !process_gone {
                last.1 = Instant::now();
            } else if last.1.elapsed() >= idle.value.0 {
                tracing::info!(idle = %idle.value, "exit_when: inputs idle; reading to the end, then exiting");
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process named `name` (its `/proc/PID/comm`) runs.
fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })
}

/// One output's thread: writes batches in order, flushes when the sink wants to (see
/// [`Sink`]), and acknowledges what each flush delivered.
fn run_output(
    i: usize,
    mut sink: Box<dyn Sink>,
    rx: &Receiver<Arc<Encoded>>,
    stats: &OutputStats,
) -> std::io::Result<()> {
    let mut pending: Vec<Arc<Encoded>> = Vec::new();
    let mut pending_bytes = 0usize;
    let mut oldest: Option<Instant> = None;
    let interval = sink.flush_interval();
    let flush_bytes = sink.flush_bytes();
    let flush = |sink: &mut Box<dyn Sink>, pending: &mut Vec<Arc<Encoded>>| -> std::io::Result<()> {
        let rejected_before = stats.rejected.load(Ordering::Relaxed);
        if let Err(e) = sink.flush() {
            stats.unacked_batches.fetch_add(pending.len() as u64, Ordering::Relaxed);
            pending.clear();
            return Err(e);
        }
        // Events the destination rejected for good are counted there, not as delivered.
        let written: u64 = pending.iter().map(|b| b.events[i]).sum();
        let rejected = stats.rejected.load(Ordering::Relaxed) - rejected_before;
        stats
            .events
            .fetch_add(written.saturating_sub(rejected), Ordering::Relaxed);
        for batch in pending.drain(..) {
            stats
                .bytes
                .fetch_add(batch.per_output[i].len() as u64, Ordering::Relaxed);
            batch.delivered();
        }
        Ok(())
    };
    loop {
        let next = match oldest {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => rx.recv_timeout(interval.saturating_sub(t.elapsed())),
        };
        match next {
            Ok(batch) => {
                let bytes = &batch.per_output[i];
                if let Err(e) = sink.write(bytes, batch.events[i]) {
                    stats
                        .unacked_batches
                        .fetch_add(pending.len() as u64 + 1, Ordering::Relaxed);
                    return Err(e);
                }
                pending_bytes += bytes.len();
                pending.push(batch);
                oldest.get_or_insert_with(Instant::now);
                let full = flush_bytes > 0 && pending_bytes >= flush_bytes;
                let idle = rx.is_empty() && oldest.is_some_and(|t| t.elapsed() >= interval);
                if !(full || idle) {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut sink, &mut pending)?;
                return Ok(());
            }
        }
        flush(&mut sink, &mut pending)?;
        pending_bytes = 0;
        oldest = None;
    }
}

/// Restores each source's order: batches come back from the workers in any order.
#[derive(Default)]
struct Reorder {
    next: HashMap<u32, u64>,
    pending: HashMap<u32, BTreeMap<u64, Encoded>>,
}

impl Reorder {
    /// Takes a finished batch; returns the batches now ready, in order.
    fn push(&mut self, done: Encoded) -> Vec<Encoded> {
        let source = done.source;
        let queue = self.pending.entry(source).or_default();
        queue.insert(done.seq, done);
        let want = self.next.entry(source).or_insert(0);
        let mut ready = Vec::new();
        while let Some(batch) = queue.remove(want) {
            *want += 1;
            ready.push(batch);
        }
        ready
    }
}

/// Runs the pipeline of `loaded` on one thread over `input`, as if it came from the first
/// input's single source, delivered in reads that end at the offsets in `cuts` (in
/// increasing order). Returns
/// the bytes each output would get, and the summary. The stages are the ones `run` uses.
pub fn run_in_memory(
    loaded: &Loaded,
    input: &[u8],
    cuts: &[usize],
    chunk_bytes: usize,
) -> anyhow::Result<(Vec<Vec<u8>>, Summary)> {
    validate(loaded)?;
    let cfg = &loaded.config;
    let plan = Plan::new(cfg, 1, 1);
    let mut worker = plan.worker(0)?;
    let mut source = resolve_sources(loaded)?
        .remove(0)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no source"))?;
    source.path = None;
    let mut outputs = vec![Vec::new(); cfg.outputs.len()];
    let reader = CutReader {
        data: input,
        pos: 0,
        cuts,
    };
    read_source(
        reader,
        &source,
        chunk_bytes,
        &plan.chunk_pool,
        &plan.input_stats[0],
        |work| {
            let done = worker.process(work);
            for (i, out) in outputs.iter_mut().enumerate() {
                out.extend_from_slice(&done.per_output[i]);
                plan.output_stats[i].events.fetch_add(done.events[i], Ordering::Relaxed);
            }
            true
        },
    )?;
    Ok((outputs, plan.summary(Vec::new())))
}

/// A reader whose reads end at the given offsets (and at the end).
struct CutReader<'a> {
    data: &'a [u8],
    pos: usize,
    cuts: &'a [usize],
}

impl std::io::Read for CutReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // A binary search: a scan from the start made one-byte reads quadratic.
        let next = self.cuts.partition_point(|&c| c <= self.pos);
        let end = self
            .cuts
            .get(next)
            .copied()
            .filter(|&c| c < self.data.len())
            .unwrap_or(self.data.len());
        let n = (end - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads one source to its end: chunks of lines, framed into records when the source
/// needs it, numbered in order and handed to `send` (false stops the reading).
fn read_source(
    reader: impl std::io::Read,
    source: &Source,
    chunk_bytes: usize,
    pool: &Arc<BufferPool>,
    stats: &InputStats,
    mut send: impl FnMut(Work) -> bool,
) -> std::io::Result<()> {
    let mut seq = 0;
    let mut work = |payload: Payload| {
        let w = Work {
            payload,
            source: source.id,
            input: source.input,
            seq,
            opts: source.opts,
            pod: source.pod.clone(),
            ack: None,
        };
        seq += 1;
        send(w)
    };
    match &source.framing {
        None => {
            let cut = read_chunks(reader, chunk_bytes, &source.opts, pool, |chunk| {
                stats.bytes.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
                work(Payload::Lines(chunk))
            })?;
            stats.lines_cut.fetch_add(cut, Ordering::Relaxed);
        }
        Some(framing) => {
            let mut framer = Framer::new(framing.format, framing.rules.clone(), source.opts);
            let mut going = true;
            let new_framed = |pool: &BufferPool| Framed {
                arena: pool.take_empty(0),
                ..Framed::default()
            };
            let cut = read_chunks(reader, chunk_bytes, &source.opts, pool, |chunk| {
                stats.bytes.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
                let mut framed = new_framed(pool);
                framer.frame(chunk, &mut framed);
                going = work(Payload::Framed(framed));
                going
            })?;
            if going {
                let mut framed = new_framed(pool);
                framer.finish(&mut framed);
                if !framed.records.is_empty() {
                    work(Payload::Framed(framed));
                }
            }
            stats.lines_cut.fetch_add(cut, Ordering::Relaxed);
            stats.add_frame(framer.stats());
        }
    }
    Ok(())
}

/// Reads an input's sources one after the other. Returns the problems met (a source that
/// cannot be opened or read is reported and skipped; the others go on).
fn read_input(
    sources: &[Source],
    tx: &Sender<Work>,
    stats: &InputStats,
    pool: &Arc<BufferPool>,
    stop: &AtomicBool,
) -> Vec<String> {
    let mut errors = Vec::new();
    for source in sources {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let send = |work: Work| !stop.load(Ordering::Relaxed) && tx.send(work).is_ok();
        let result = match &source.path {
            None => read_source(std::io::stdin().lock(), source, DEFAULT_CHUNK_BYTES, pool, stats, send),
            Some(path) => {
                std::fs::File::open(path).and_then(|f| read_source(f, source, DEFAULT_CHUNK_BYTES, pool, stats, send))
            }
        };
        if let Err(e) = result {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            let name = source
                .path
                .as_ref()
                .map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
            let msg = format!("cannot read {name}: {e}");
            tracing::error!("{msg}");
            errors.push(msg);
        }
    }
    errors
}
