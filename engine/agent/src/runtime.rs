//! `weir run`: the threads a batch goes through.
//!
//! ```text
//! reader thread per input ──Work──▶ worker threads ──Encoded──▶ dispatcher ──▶ output threads
//!   (read, cut at line ends)      (split, pipeline, encode)   (restore order)   (write)
//! ```
//!
//! Every channel is bounded, so a slow output slows reading and memory stays bounded.
//! Workers take chunks in any order; the dispatcher releases each source's batches in
//! sequence, so the output keeps every source's order.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use weir_core::line::{Chunk, DEFAULT_CHUNK_BYTES, LineOptions, split_lines_into};
use weir_core::model::{Batch, KeyTable};
use weir_core::pipeline::{ComponentStats, Counted, Pipeline, StatsSnapshot};
use weir_core::pool::BufferPool;

use crate::config::{ConfigError, Loaded, Pos};
use crate::inputs::read_chunks;
use crate::outputs::{Format, Sink};
use crate::registry::{InputConfig, OutputConfig};

/// Checks everything that can be checked without running: the config parsed, and each
/// component's own rules (patterns compile, processors build).
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
    for output in &cfg.outputs {
        if let OutputConfig::File(c) = &output.value {
            c.validate(loaded)?;
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
}

/// Counters of one output.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Events written.
    pub events: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
}

/// What a run did, for the summary and for tests.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per input: (name, events, bytes, lines cut, read errors).
    pub inputs: Vec<(String, u64, u64, u64, u64)>,
    /// Per processor: (name, counters).
    pub processors: Vec<(String, StatsSnapshot)>,
    /// Per output: (name, events, bytes).
    pub outputs: Vec<(String, u64, u64)>,
    /// Problems that did not stop the run (unreadable files); the run exits non-zero.
    pub errors: Vec<String>,
}

/// One source: stdin or one file.
#[derive(Debug)]
struct Source {
    id: u32,
    input: usize,
    path: Option<PathBuf>,
    opts: LineOptions,
}

/// A chunk on its way to a worker.
#[derive(Debug)]
struct Work {
    chunk: Chunk,
    source: u32,
    input: usize,
    seq: u64,
    opts: LineOptions,
}

/// A processed batch: the bytes encoded for each output. Shared by the output threads;
/// the last one to let go gives the buffers back to the pool.
#[derive(Debug)]
struct Encoded {
    source: u32,
    seq: u64,
    events: u64,
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

/// Runs the pipeline until every input ends.
pub fn run(loaded: &Loaded, workers: Option<usize>) -> anyhow::Result<Summary> {
    validate(loaded)?;
    let cfg = &loaded.config;
    let workers = workers
        .or(cfg.workers.as_ref().map(|w| w.value))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let keys = KeyTable::new();

    let mut sources: Vec<Vec<Source>> = Vec::new();
    let mut next_id = 0u32;
    for (input, spec) in cfg.inputs.iter().enumerate() {
        let mut list = Vec::new();
        match &spec.value {
            InputConfig::Stdin(c) => list.push((None, c.line_options())),
            InputConfig::File(c) => {
                let files = c.matched_files();
                if files.is_empty() {
                    let patterns: Vec<&str> =
                        c.paths.value.iter().map(|p| p.value.as_str()).collect();
                    tracing::warn!(input, ?patterns, "file input: no file matches");
                }
                list.extend(files.into_iter().map(|f| (Some(f), c.line_options())));
            }
        }
        sources.push(
            list.into_iter()
                .map(|(path, opts)| {
                    next_id += 1;
                    Source {
                        id: next_id - 1,
                        input,
                        path,
                        opts,
                    }
                })
                .collect(),
        );
    }

    let input_stats: Vec<Arc<InputStats>> = cfg.inputs.iter().map(|_| Arc::default()).collect();
    let proc_stats: Vec<Arc<ComponentStats>> =
        cfg.processors.iter().map(|_| Arc::default()).collect();
    let output_stats: Vec<Arc<OutputStats>> = cfg.outputs.iter().map(|_| Arc::default()).collect();
    let proc_names: Vec<String> = cfg
        .processors
        .iter()
        .enumerate()
        .map(|(i, p)| format!("processors[{i}].{}", p.value.type_name()))
        .collect();
    let formats: Vec<Format> = cfg
        .outputs
        .iter()
        .map(|o| match &o.value {
            OutputConfig::Stdout(c) => c.format,
            OutputConfig::File(c) => c.format,
        })
        .collect();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for o in &cfg.outputs {
        sinks.push(match &o.value {
            OutputConfig::Stdout(_) => Box::new(std::io::stdout()),
            OutputConfig::File(c) => {
                Box::new(c.open().with_context(|| {
                    format!("cannot open output file {}", c.path.value.display())
                })?)
            }
        });
    }

    let (work_tx, work_rx) = async_channel::bounded::<Work>(workers);
    let (done_tx, done_rx) = async_channel::bounded::<Encoded>(workers);
    // Buffers in flight are bounded by the channels; keep about that many spare.
    let chunk_pool = Arc::new(BufferPool::new(2 * workers + sources.len().min(4) + 2));
    let output_pool = Arc::new(BufferPool::new((2 * workers + 4) * cfg.outputs.len()));
    let mut errors: Vec<String> = Vec::new();

    std::thread::scope(|s| -> anyhow::Result<()> {
        let mut readers = Vec::new();
        for (input, list) in sources.iter().enumerate() {
            let tx = work_tx.clone();
            let stats = input_stats[input].clone();
            let pool = chunk_pool.clone();
            readers.push(s.spawn(move || read_input(list, &tx, &stats, &pool)));
        }
        drop(work_tx);

        let mut worker_handles = Vec::new();
        for _ in 0..workers {
            let rx = work_rx.clone();
            let tx = done_tx.clone();
            let mut pipeline = Pipeline::new(
                cfg.processors
                    .iter()
                    .zip(&proc_stats)
                    .zip(&proc_names)
                    .map(|((p, stats), name)| {
                        let built = p.value.build(&keys).map_err(|e| anyhow!("{name}: {e}"))?;
                        Ok(Counted::new(name.as_str(), built, stats.clone()))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            );
            let mut encoders: Vec<_> = formats.iter().map(|f| f.encoder(&keys)).collect();
            let input_stats = &input_stats;
            let (chunk_pool, output_pool) = (chunk_pool.clone(), output_pool.clone());
            worker_handles.push(s.spawn(move || {
                // One batch per worker, refilled for every chunk: its event list is reused.
                let mut batch = Batch::default();
                while let Ok(work) = rx.recv_blocking() {
                    let (split, old) =
                        split_lines_into(&mut batch, work.chunk, &work.opts, work.source, work.seq);
                    chunk_pool.give(old);
                    let stats = &input_stats[work.input];
                    stats.events.fetch_add(split.events, Ordering::Relaxed);
                    stats
                        .lines_cut
                        .fetch_add(split.lines_cut, Ordering::Relaxed);
                    stats
                        .empty_skipped
                        .fetch_add(split.empty_skipped, Ordering::Relaxed);
                    pipeline.run(&mut batch);
                    let per_output = encoders
                        .iter_mut()
                        .map(|e| {
                            let mut out = output_pool
                                .take_empty(batch.chunk().len() + batch.chunk().len() / 4);
                            e.encode(&batch, &mut out);
                            out
                        })
                        .collect();
                    let done = Encoded {
                        source: work.source,
                        seq: work.seq,
                        events: batch.len() as u64,
                        per_output,
                        pool: output_pool.clone(),
                    };
                    if tx.send_blocking(done).is_err() {
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
            let stats = output_stats[i].clone();
            output_handles.push(s.spawn(move || -> std::io::Result<()> {
                while let Ok(batch) = rx.recv_blocking() {
                    let bytes = &batch.per_output[i];
                    sink.write(bytes)?;
                    stats.events.fetch_add(batch.events, Ordering::Relaxed);
                    stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                sink.flush()
            }));
        }

        // The dispatcher: release each source's batches in sequence.
        let mut next: HashMap<u32, u64> = HashMap::new();
        let mut pending: HashMap<u32, BTreeMap<u64, Encoded>> = HashMap::new();
        'dispatch: while let Ok(done) = done_rx.recv_blocking() {
            let source = done.source;
            pending.entry(source).or_default().insert(done.seq, done);
            let want = next.entry(source).or_insert(0);
            let queue = pending.get_mut(&source).expect("just inserted");
            while let Some(ready) = queue.remove(want) {
                *want += 1;
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
                    return Err(anyhow!(
                        "output {i} ({}): write failed: {e}",
                        output_name(&cfg.outputs[i].value)
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

    let mut summary = Summary {
        errors,
        ..Summary::default()
    };
    for (i, st) in input_stats.iter().enumerate() {
        let name = match &cfg.inputs[i].value {
            InputConfig::Stdin(_) => format!("inputs[{i}].stdin"),
            InputConfig::File(_) => format!("inputs[{i}].file"),
        };
        summary.inputs.push((
            name,
            st.events.load(Ordering::Relaxed),
            st.bytes.load(Ordering::Relaxed),
            st.lines_cut.load(Ordering::Relaxed),
            st.read_errors.load(Ordering::Relaxed),
        ));
    }
    for (name, st) in proc_names.iter().zip(&proc_stats) {
        summary.processors.push((name.clone(), st.snapshot()));
    }
    for (i, st) in output_stats.iter().enumerate() {
        summary.outputs.push((
            format!("outputs[{i}].{}", output_name(&cfg.outputs[i].value)),
            st.events.load(Ordering::Relaxed),
            st.bytes.load(Ordering::Relaxed),
        ));
    }
    Ok(summary)
}

fn output_name(o: &OutputConfig) -> &'static str {
    match o {
        OutputConfig::Stdout(_) => "stdout",
        OutputConfig::File(_) => "file",
    }
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
        let send = |chunk: Chunk, seq: u64| {
            stats
                .bytes
                .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            tx.send_blocking(Work {
                chunk,
                source: source.id,
                input: source.input,
                seq,
                opts: source.opts,
            })
            .is_ok()
        };
        let result = match &source.path {
            None => read_chunks(
                std::io::stdin().lock(),
                DEFAULT_CHUNK_BYTES,
                &source.opts,
                pool,
                send,
            ),
            Some(path) => std::fs::File::open(path)
                .and_then(|f| read_chunks(f, DEFAULT_CHUNK_BYTES, &source.opts, pool, send)),
        };
        match result {
            Ok(cut) => {
                stats.lines_cut.fetch_add(cut, Ordering::Relaxed);
            }
            Err(e) => {
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
    }
    errors
}
