//! The reading side: the sources of every input, one thread per input reading them once
//! to their end, and one per followed input running its [`Tailer`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};
use weir_core::frame::{Format, Framed, Framer};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions};
use weir_core::pool::BufferPool;

use super::plan::Plan;
use super::worker::{Payload, Work};
use crate::config::{ConfigError, Loaded};
use crate::inputs::exec::{ExecPipes, ExecSettings};
use crate::inputs::tail::{TailSettings, Tailer};
use crate::inputs::{
    Framing, InputStats, Offered, Reading, Run, RunContext, SourceChunk, SourceFields, container_fields, read_chunks,
};

/// How each input of the pipeline is read, in order.
pub(super) fn readings(loaded: &Loaded) -> Result<Vec<Reading>, ConfigError> {
    let inputs = &loaded.config.inputs;
    inputs.iter().map(|i| i.value.get().reading(&loaded.file)).collect()
}

/// The inputs to start, by how the runtime starts them; each with its index in the
/// pipeline.
pub(super) struct Inputs {
    /// Inputs whose sources are read once to their end, with their sources, numbered
    /// from `next_source`.
    pub(super) once: Vec<(usize, Vec<Source>)>,
    /// Followed inputs.
    pub(super) follows: Vec<(usize, TailSettings)>,
    /// Inputs that run on their own (network inputs).
    pub(super) runs: Vec<(usize, Box<dyn Run>)>,
    /// The exec input (`weir run --exec`).
    pub(super) execs: Vec<(usize, ExecSettings)>,
}

/// Sorts the inputs by how they are read; `input_runs` gives each input's number in the
/// run (the `input` of its chunks), `next_source` the next free source number.
pub(super) fn sources(readings: Vec<(usize, Reading)>, input_runs: &[usize], next_source: &AtomicU32) -> Inputs {
    let mut inputs = Inputs {
        once: Vec::new(),
        follows: Vec::new(),
        runs: Vec::new(),
        execs: Vec::new(),
    };
    for (index, reading) in readings {
        match reading {
            Reading::Exec(settings) => inputs.execs.push((index, settings)),
            Reading::Follow(settings) => inputs.follows.push((index, settings)),
            Reading::Run(run) => inputs.runs.push((index, run)),
            Reading::Once { paths, opts, framing } => {
                let container = framing.as_ref().is_some_and(|f| f.format != Format::Raw);
                let mut list = Vec::new();
                for path in paths {
                    let pod = match (&path, container) {
                        (Some(p), true) => container_fields(p).map(SourceFields::from),
                        _ => None,
                    };
                    let framing = framing.clone();
                    list.push(Source {
                        id: next_source.fetch_add(1, Ordering::Relaxed),
                        input: input_runs[index],
                        path,
                        opts,
                        framing,
                        pod,
                    });
                }
                inputs.once.push((index, list));
            }
        }
    }
    inputs
}

/// A reader thread: the input it reads (its number in the run), its own stop flag (set
/// by a stop of the run, or by a reload that removes the input), and whether it reads
/// stdin (a read that may block forever: after a stop it is not waited for).
pub(super) struct Reader {
    pub(super) handle: JoinHandle<()>,
    pub(super) input: usize,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) stdin: bool,
}

/// Starts a thread per input with sources to read once, a tailer thread per followed
/// input, a thread per input that runs on its own and one per stream of the command
/// `weir run --exec` started (`exec`, taken by the exec input); they send their chunks to
/// `tx` until they are done or their stop is set. Problems met reading go to `errors`.
pub(super) fn start(
    plan: &Plan<'_>,
    inputs: Inputs,
    tx: &Sender<Work>,
    next_source: &Arc<AtomicU32>,
    errors: &Arc<Mutex<Vec<String>>>,
    exec: &mut Option<ExecPipes>,
) -> std::io::Result<Vec<Reader>> {
    let mut readers = Vec::new();
    for (input, settings) in inputs.execs {
        let Some(pipes) = exec.take() else {
            return Err(std::io::Error::other(format!(
                "{}: reads the command that `weir run --exec -- CMD` starts; there is none without --exec",
                plan.input_name(input)
            )));
        };
        plan.input_stats[input].labeled.set(
            "weir_exec_command_info",
            "The command weir run --exec started, and its pid.",
            &[("command", &pipes.command), ("pid", &pipes.pid.to_string())],
            1.0,
        );
        for (pipe, stream) in [(pipes.stdout, "stdout"), (pipes.stderr, "stderr")] {
            let source = Source {
                id: next_source.fetch_add(1, Ordering::Relaxed),
                input: plan.input_runs[input],
                path: None,
                opts: settings.opts,
                framing: settings.framing.clone(),
                pod: Some(settings.source_fields(stream)),
            };
            let (tx, errors) = (tx.clone(), errors.clone());
            let (stats, pool) = (plan.input_stats[input].clone(), plan.chunk_pool.clone());
            let handle = std::thread::Builder::new()
                .name(format!("weir-exec-{stream}"))
                .spawn(move || {
                    // No stop: a stream ends at its end, or when it is let go (see
                    // `runtime/exec.rs`); what was read is all sent.
                    let sent = read_source(pipe, &source, DEFAULT_CHUNK_BYTES, &pool, &stats, |w| {
                        tx.send(w).is_ok()
                    });
                    if let Err(e) = sent {
                        stats.read_errors.fetch_add(1, Ordering::Relaxed);
                        let msg = format!("exec: cannot read the command's {stream}: {e}");
                        tracing::error!("{msg}");
                        errors.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
                    }
                })?;
            readers.push(Reader {
                handle,
                input: plan.input_runs[input],
                stop: Arc::default(),
                stdin: false,
            });
        }
    }
    for (input, list) in inputs.once {
        if list.is_empty() {
            continue;
        }
        let stdin = list.iter().any(|s| s.path.is_none());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, errors, flag) = (tx.clone(), errors.clone(), stop.clone());
        let stats = plan.input_stats[input].clone();
        let pool = plan.chunk_pool.clone();
        let handle = std::thread::Builder::new()
            .name(format!("weir-input-{input}"))
            .spawn(move || {
                let errs = read_input(&list, &tx, &stats, &pool, &flag);
                errors.lock().unwrap_or_else(|e| e.into_inner()).extend(errs);
            })?;
        readers.push(Reader {
            handle,
            input: plan.input_runs[input],
            stop,
            stdin,
        });
    }
    for (input, settings) in inputs.follows {
        let opts = settings.opts;
        let tailer = Tailer::new(
            settings,
            plan.acks.clone().expect("follow inputs have a checkpoint store"),
            plan.chunk_pool.clone(),
            next_source.clone(),
            plan.tail_stats[input].clone(),
            plan.input_stats[input].clone(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, flag, run) = (tx.clone(), stop.clone(), plan.input_runs[input]);
        let handle = std::thread::Builder::new()
            .name(format!("weir-tail-{input}"))
            .spawn(move || tailer.run(&flag, &mut |c| tx.send(work(c, run, opts)).is_ok()))?;
        readers.push(Reader {
            handle,
            input: run,
            stop,
            stdin: false,
        });
    }
    for (input, run) in inputs.runs {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, flag, next_source) = (tx.clone(), stop.clone(), next_source.clone());
        let (pool, stats) = (plan.chunk_pool.clone(), plan.input_stats[input].clone());
        let drain_timeout = plan.cfg.shutdown_timeout() * 3 / 4;
        let number = plan.input_runs[input];
        let handle = std::thread::Builder::new()
            .name(format!("weir-input-{input}"))
            .spawn(move || {
                let ctx = RunContext {
                    stop: &flag,
                    next_source: &next_source,
                    pool: &pool,
                    stats,
                    drain_timeout,
                    send: &mut |c| send_until_stopped(&tx, work(c, number, LineOptions::default()), &flag),
                    offer: &mut |c, deadline| offer(&tx, work(c, number, LineOptions::default()), deadline, &flag),
                };
                run.run(ctx);
            })?;
        readers.push(Reader {
            handle,
            input: number,
            stop,
            stdin: false,
        });
    }
    Ok(readers)
}

/// Sends `work`, waiting for room until the run stops (a running input must get back to
/// settling and committing when an output is stuck): false when it stopped first or the
/// workers are gone. Work not taken is not acknowledged, so it is read again.
fn send_until_stopped(tx: &Sender<Work>, mut work: Work, stop: &AtomicBool) -> bool {
    loop {
        match tx.send_timeout(work, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(w)) if !stop.load(Ordering::Relaxed) => work = w,
            Err(_) => return false,
        }
    }
}

/// Sends `work` if there is room before `deadline` and the run goes on.
fn offer(tx: &Sender<Work>, mut work: Work, deadline: Instant, stop: &AtomicBool) -> Offered {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Offered::Stopped;
        }
        let slice = deadline.min(Instant::now() + Duration::from_millis(100));
        match tx.send_deadline(work, slice) {
            Ok(()) => return Offered::Taken,
            Err(SendTimeoutError::Timeout(w)) if Instant::now() < deadline => work = w,
            Err(SendTimeoutError::Timeout(_)) => return Offered::Full,
            Err(SendTimeoutError::Disconnected(_)) => return Offered::Stopped,
        }
    }
}

/// A chunk from a tailer or a running input, on its way to the workers.
fn work(c: SourceChunk, input: usize, opts: LineOptions) -> Work {
    Work {
        payload: c.payload,
        source: c.source,
        input,
        seq: c.seq,
        opts,
        pod: c.fields,
        ack: c.ack,
    }
}

/// One source read to its end: stdin or one file (`mode: once`).
#[derive(Debug)]
pub(super) struct Source {
    pub(super) id: u32,
    pub(super) input: usize,
    pub(super) path: Option<PathBuf>,
    pub(super) opts: LineOptions,
    pub(super) framing: Option<Framing>,
    pub(super) pod: Option<SourceFields>,
}

/// Reads one source to its end: chunks of lines, framed into records when the source
/// needs it, numbered in order and handed to `send` (false stops the reading).
pub(super) fn read_source(
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
pub(super) fn read_input(
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
