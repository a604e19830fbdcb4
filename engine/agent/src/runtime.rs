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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use weir_core::encode::{Encoder, Route};
use weir_core::frame::{FrameKeys, FrameStats, Framed, Framer, fill_batch};
use weir_core::line::{Chunk, DEFAULT_CHUNK_BYTES, LineOptions, split_lines_into};
use weir_core::model::{Batch, Key, KeyTable, Origin, Value};
use weir_core::parse::OnFailure;
use weir_core::pipeline::{ComponentStats, Counted, Pipeline, StatsSnapshot};
use weir_core::pool::BufferPool;

use crate::config::{ConfigError, Loaded, PipelineConfig, Pos};
use crate::inputs::{Framing, container_fields, read_chunks};
use crate::outputs::{Format, Sink};
use crate::registry::{InputConfig, OutputConfig};

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
        if let OutputConfig::File(c) = &output.value {
            c.validate(loaded)?;
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
}

impl InputStats {
    fn add_frame(&self, f: FrameStats) {
        self.lines_cut.fetch_add(f.lines_cut, Ordering::Relaxed);
        self.empty_skipped.fetch_add(f.empty_skipped, Ordering::Relaxed);
        self.records_cut.fetch_add(f.records_cut, Ordering::Relaxed);
        self.unmatched_discarded
            .fetch_add(f.unmatched_discarded, Ordering::Relaxed);
        self.format_errors.fetch_add(f.format_errors, Ordering::Relaxed);
    }
}

/// Counters of one output.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Events written.
    pub events: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
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
}

/// Values of the pod metadata fields, from a container log file's name.
type PodFields = Arc<[String; 4]>;
const POD_FIELDS: [&str; 4] = ["pod", "namespace", "container", "container_id"];

/// One source: stdin or one file.
#[derive(Debug)]
struct Source {
    id: u32,
    input: usize,
    path: Option<PathBuf>,
    opts: LineOptions,
    framing: Option<Framing>,
    pod: Option<PodFields>,
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
    pod: Option<PodFields>,
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
    pod_keys: [Key; 4],
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
            pod_keys: POD_FIELDS.map(|name| keys.intern(name)),
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
            // Buffers in flight are bounded by the channels; keep about that many spare.
            chunk_pool: Arc::new(BufferPool::new(2 * workers + sources.min(4) + 2)),
            output_pool: Arc::new(BufferPool::new((2 * workers + 4) * cfg.outputs.len())),
        }
    }

    /// A worker's own pipeline and encoders.
    fn worker(&self) -> anyhow::Result<Worker> {
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
            pod_keys: self.pod_keys,
        })
    }

    fn summary(&self, errors: Vec<String>) -> Summary {
        let cfg = self.cfg;
        let mut summary = Summary {
            errors,
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
    pod_keys: [Key; 4],
}

impl Worker {
    fn process(&mut self, work: Work) -> Encoded {
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
            let values: Vec<Value> = pod.iter().map(|v| Value::Str(batch.push_arena(v.as_bytes()))).collect();
            let (_, events) = batch.parts_mut();
            for event in events {
                for (key, value) in self.pod_keys.iter().zip(&values) {
                    event.set(*key, *value);
                }
            }
        }
        self.pipeline.run(batch);
        let mut events = Vec::with_capacity(self.encoders.len());
        let mut per_output = Vec::with_capacity(self.encoders.len());
        for (encoder, route) in &mut self.encoders {
            let mut out = self
                .output_pool
                .take_empty(batch.chunk().len() + batch.chunk().len() / 4);
            encoder.encode_route(batch, *route, &mut out);
            events.push(match route {
                Route::Main => batch.live().count() as u64,
                Route::DeadLetter => batch.dead_letters().count() as u64,
            });
            per_output.push(out);
        }
        Encoded {
            source: work.source,
            seq: work.seq,
            events,
            per_output,
            pool: self.output_pool.clone(),
        }
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
                (Some(p), true) => container_fields(p).map(|f| Arc::new(f.map(|(_, v)| v))),
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

/// Runs the pipeline until every input ends.
pub fn run(loaded: &Loaded, workers: Option<usize>) -> anyhow::Result<Summary> {
    validate(loaded)?;
    let cfg = &loaded.config;
    let workers = workers
        .or(cfg.workers.as_ref().map(|w| w.value))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let sources = resolve_sources(loaded)?;
    let plan = Plan::new(cfg, workers, sources.iter().map(Vec::len).sum());
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for o in &cfg.outputs {
        sinks.push(match &o.value {
            OutputConfig::Stdout(_) => Box::new(std::io::stdout()),
            OutputConfig::File(c) => Box::new(
                c.open()
                    .with_context(|| format!("cannot open output file {}", c.path.value.display()))?,
            ),
        });
    }

    let (work_tx, work_rx) = async_channel::bounded::<Work>(workers);
    let (done_tx, done_rx) = async_channel::bounded::<Encoded>(workers);
    let mut errors: Vec<String> = Vec::new();

    std::thread::scope(|s| -> anyhow::Result<()> {
        let mut readers = Vec::new();
        for (input, list) in sources.iter().enumerate() {
            let tx = work_tx.clone();
            let stats = plan.input_stats[input].clone();
            let pool = plan.chunk_pool.clone();
            readers.push(s.spawn(move || read_input(list, &tx, &stats, &pool)));
        }
        drop(work_tx);

        let mut worker_handles = Vec::new();
        for _ in 0..workers {
            let rx = work_rx.clone();
            let tx = done_tx.clone();
            let mut worker = plan.worker()?;
            worker_handles.push(s.spawn(move || {
                while let Ok(work) = rx.recv_blocking() {
                    if tx.send_blocking(worker.process(work)).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(done_tx);
        drop(work_rx);

        let mut output_txs = Vec::new();
        let mut output_handles = Vec::new();
        for (i, mut sink) in sinks.drain(..).enumerate() {
            let (tx, rx) = async_channel::bounded::<Arc<Encoded>>(2);
            output_txs.push(tx);
            let stats = plan.output_stats[i].clone();
            output_handles.push(s.spawn(move || -> std::io::Result<()> {
                while let Ok(batch) = rx.recv_blocking() {
                    let bytes = &batch.per_output[i];
                    sink.write(bytes)?;
                    stats.events.fetch_add(batch.events[i], Ordering::Relaxed);
                    stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                sink.flush()
            }));
        }

        // The dispatcher: release each source's batches in sequence.
        let mut order = Reorder::default();
        'dispatch: while let Ok(done) = done_rx.recv_blocking() {
            for ready in order.push(done) {
                let ready = Arc::new(ready);
                for tx in &output_txs {
                    if tx.send_blocking(ready.clone()).is_err() {
                        break 'dispatch;
                    }
                }
            }
        }
        drop(done_rx);
        drop(output_txs);

        for (i, h) in output_handles.into_iter().enumerate() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let o = &cfg.outputs[i].value;
                    return Err(anyhow!(
                        "output {i} ({}): write failed: {e}",
                        o.name().unwrap_or(o.type_name())
                    ));
                }
                Err(_) => return Err(anyhow!("output {i} panicked")),
            }
        }
        for h in worker_handles {
            h.join().map_err(|_| anyhow!("a worker panicked"))?;
        }
        for h in readers {
            match h.join() {
                Ok(errs) => errors.extend(errs),
                Err(_) => return Err(anyhow!("an input reader panicked")),
            }
        }
        Ok(())
    })?;
    Ok(plan.summary(errors))
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
/// input's single source, delivered in reads that end at the offsets in `cuts`. Returns
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
    let mut worker = plan.worker()?;
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
        let end = self
            .cuts
            .iter()
            .copied()
            .find(|&c| c > self.pos && c < self.data.len())
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
    tx: &async_channel::Sender<Work>,
    stats: &InputStats,
    pool: &Arc<BufferPool>,
) -> Vec<String> {
    let mut errors = Vec::new();
    for source in sources {
        let send = |work: Work| tx.send_blocking(work).is_ok();
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
