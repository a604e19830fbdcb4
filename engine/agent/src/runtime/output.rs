//! The output side: the dispatcher that restores each source's order, and one thread per
//! output driving its [`Sink`] (or its disk buffer, `outputs/buffer.rs`) and acknowledging
//! what each flush delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use crossbeam_channel::{Receiver, Sender};

use weir_core::encode::Route;

use super::plan::Plan;
use super::worker::Encoded;
use crate::config::data_dir;
use crate::outputs::buffer::{self, BufferKind, BufferSink};
use crate::outputs::{DeadLetterBatch, DeadLetters, Format, OutputStats, Sink};

/// An output thread: its sink at the end, for the next pipeline after a reload.
pub(super) type OutputThread<'scope> = ScopedJoinHandle<'scope, std::io::Result<Box<dyn Sink>>>;

/// Output `i`'s sink as its thread drives it: behind its disk buffer when it has one
/// (the buffer takes the batches, its drain feeds the sink).
pub(super) fn buffered(plan: &Plan<'_>, i: usize, sink: Box<dyn Sink>) -> std::io::Result<Box<dyn Sink>> {
    let output = plan.cfg.outputs[i].value.get();
    match output.buffer().filter(|b| b.kind == BufferKind::Disk) {
        Some(config) => {
            let dir = buffer::dir(&data_dir(plan.cfg), i, output.name());
            let stats = plan.output_stats[i].clone();
            Ok(Box::new(BufferSink::open(&dir, config, sink, stats)?))
        }
        None => Ok(sink),
    }
}

/// Starts one thread per sink (in the order of `plan.outputs`); returns the channel into
/// each and the threads. With a `dead_letter` output, every other sink gets a way to it
/// ([`Sink::set_dead_letters`]) for the events its destination refuses, until its thread
/// ends.
pub(super) fn start<'scope>(
    s: &'scope Scope<'scope, '_>,
    sinks: Vec<Box<dyn Sink>>,
    plan: &Plan<'_>,
) -> (Vec<Sender<Arc<Encoded>>>, Vec<OutputThread<'scope>>) {
    let dead = plan.outputs.iter().position(|(_, route)| *route == Route::DeadLetter);
    let (refused_tx, refused_rx) = crossbeam_channel::bounded::<DeadLetterBatch>(4);
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for (i, mut sink) in sinks.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::bounded::<Arc<Encoded>>(1);
        txs.push(tx);
        let refused = if Some(i) == dead {
            Some(refused_rx.clone())
        } else {
            sink.set_dead_letters(dead.map(|_| DeadLetters::new(refused_tx.clone())));
            None
        };
        let stats = plan.output_stats[i].clone();
        let format = plan.outputs[i].0;
        let queues = plan.queues.clone();
        handles.push(
            s.spawn(move || OutputLoop::new(i, sink, &stats, &queues.outputs[i]).run(&rx, refused.as_ref(), format)),
        );
    }
    (txs, handles)
}

/// The dispatcher: releases each source's batches in sequence to every output, until the
/// workers are done (or an output is gone). `order` goes on from the pipeline before a
/// reload.
pub(super) fn dispatch(done: Receiver<Encoded>, outputs: Vec<Sender<Arc<Encoded>>>, order: &mut Reorder) {
    while let Ok(batch) = done.recv() {
        for ready in order.push(batch) {
            let ready = Arc::new(ready);
            for tx in &outputs {
                if tx.send(ready.clone()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits for the output threads; returns each one's sink when it ended well. An output
/// that failed after the shutdown deadline (`abort`) is an error of the run (pushed to
/// `errors`: its batches are read again on restart); one that failed before, or
/// panicked, fails the run.
pub(super) fn join(
    handles: Vec<OutputThread<'_>>,
    plan: &Plan<'_>,
    abort: &AtomicBool,
    errors: &Mutex<Vec<String>>,
) -> anyhow::Result<Vec<Option<Box<dyn Sink>>>> {
    let mut failure = None;
    let mut sinks = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let name = plan.output_name(i);
        match h.join() {
            Ok(Ok(sink)) => {
                sinks.push(Some(sink));
                continue;
            }
            Ok(Err(e)) if abort.load(Ordering::Relaxed) => {
                let n = plan.output_stats[i].unacked_batches.load(Ordering::Relaxed);
                let msg = format!(
                    "{name}: {n} batch(es) not delivered before the shutdown deadline ({e}); \
                     they are read again on restart (from the last checkpoint or committed offset)"
                );
                tracing::error!("{msg}");
                errors.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
            }
            Ok(Err(e)) => failure = failure.or(Some(anyhow!("{name}: write failed: {e}"))),
            Err(_) => failure = failure.or(Some(anyhow!("{name} panicked"))),
        }
        sinks.push(None);
    }
    failure.map_or(Ok(sinks), Err)
}

/// What an output thread got.
enum Next {
    Batch(Arc<Encoded>),
    Closed,
    /// Refused events for the dead-letter output (`None`: no other output is left).
    Refused(Option<DeadLetterBatch>),
    /// The oldest written batch is due.
    Timeout,
}

/// One output's thread: writes batches in order, flushes when the sink wants to (see
/// [`Sink`]), and acknowledges what each flush delivered.
struct OutputLoop<'a> {
    /// The output's index (its part of each batch).
    i: usize,
    sink: Box<dyn Sink>,
    stats: &'a OutputStats,
    /// Where the output's queue depth is told: batches waiting and written but unflushed.
    queue: &'a AtomicU64,
    /// Batches written since the last flush.
    pending: Vec<Arc<Encoded>>,
    pending_bytes: usize,
    /// When the oldest of them was written.
    oldest: Option<Instant>,
}

impl<'a> OutputLoop<'a> {
    fn new(i: usize, sink: Box<dyn Sink>, stats: &'a OutputStats, queue: &'a AtomicU64) -> OutputLoop<'a> {
        OutputLoop {
            i,
            sink,
            stats,
            queue,
            pending: Vec::new(),
            pending_bytes: 0,
            oldest: None,
        }
    }

    /// Runs until `rx` closes; for the dead-letter output (`refused` given, the events
    /// other outputs' destinations refused, in `format`), until every other output is done.
    /// Gives the sink back. When it gives up, the events still queued are counted as
    /// undelivered, with those it held.
    fn run(
        self,
        rx: &Receiver<Arc<Encoded>>,
        refused: Option<&Receiver<DeadLetterBatch>>,
        format: Format,
    ) -> std::io::Result<Box<dyn Sink>> {
        let (i, stats) = (self.i, self.stats);
        let result = self.serve(rx, refused, format);
        if result.is_err() {
            let queued: u64 = rx.try_iter().map(|b| b.events[i]).sum();
            stats.undelivered.fetch_add(queued, Ordering::Relaxed);
        }
        result
    }

    fn serve(
        mut self,
        rx: &Receiver<Arc<Encoded>>,
        refused: Option<&Receiver<DeadLetterBatch>>,
        format: Format,
    ) -> std::io::Result<Box<dyn Sink>> {
        let never = crossbeam_channel::never();
        let mut side = refused.unwrap_or(&never);
        let interval = self.sink.flush_interval();
        let flush_bytes = self.sink.flush_bytes();
        loop {
            let queued = rx.len() + self.pending.len();
            self.queue.store(queued as u64, Ordering::Relaxed);
            let wait = self
                .oldest
                .map_or(Duration::from_secs(3600), |t| interval.saturating_sub(t.elapsed()));
            let next = crossbeam_channel::select! {
                recv(rx) -> batch => batch.map_or(Next::Closed, Next::Batch),
                recv(side) -> batch => Next::Refused(batch.ok()),
                default(wait) => Next::Timeout,
            };
            match next {
                Next::Batch(batch) => {
                    self.write(batch)?;
                    let full = flush_bytes > 0 && self.pending_bytes >= flush_bytes;
                    let idle = rx.is_empty() && self.oldest.is_some_and(|t| t.elapsed() >= interval);
                    if !(full || idle) {
                        continue;
                    }
                }
                Next::Closed => break,
                Next::Refused(Some(batch)) => {
                    self.dead_letters(batch, format)?;
                    continue;
                }
                Next::Refused(None) => {
                    side = &never;
                    continue;
                }
                Next::Timeout => {}
            }
            self.flush()?;
        }
        self.flush()?;
        match refused {
            Some(refused) => {
                while let Ok(batch) = refused.recv() {
                    self.dead_letters(batch, format)?;
                }
            }
            // Lets go of the way to the dead-letter output, whose thread waits for that.
            None => self.sink.set_dead_letters(None),
        }
        Ok(self.sink)
    }

    fn write(&mut self, batch: Arc<Encoded>) -> std::io::Result<()> {
        let bytes = &batch.per_output[self.i];
        if let Err(e) = self.sink.write(bytes, batch.events[self.i]) {
            self.stats
                .unacked_batches
                .fetch_add(self.pending.len() as u64 + 1, Ordering::Relaxed);
            let held: u64 = self.pending.iter().map(|b| b.events[self.i]).sum();
            self.stats
                .undelivered
                .fetch_add(held + batch.events[self.i], Ordering::Relaxed);
            return Err(e);
        }
        self.pending_bytes += bytes.len();
        self.pending.push(batch);
        self.oldest.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Flushes the sink and acknowledges the batches written before.
    fn flush(&mut self) -> std::io::Result<()> {
        let (i, stats) = (self.i, self.stats);
        self.pending_bytes = 0;
        self.oldest = None;
        let rejected_before = stats.rejected.load(Ordering::Relaxed);
        if let Err(e) = self.sink.flush() {
            stats
                .unacked_batches
                .fetch_add(self.pending.len() as u64, Ordering::Relaxed);
            let held: u64 = self.pending.iter().map(|b| b.events[i]).sum();
            stats.undelivered.fetch_add(held, Ordering::Relaxed);
            self.pending.clear();
            return Err(e);
        }
        // Events the destination rejected for good are counted there, not as delivered.
        let written: u64 = self.pending.iter().map(|b| b.events[i]).sum();
        let rejected = stats.rejected.load(Ordering::Relaxed) - rejected_before;
        stats
            .events
            .fetch_add(written.saturating_sub(rejected), Ordering::Relaxed);
        for batch in self.pending.drain(..) {
            stats
                .bytes
                .fetch_add(batch.per_output[i].len() as u64, Ordering::Relaxed);
            batch.delivered();
        }
        Ok(())
    }

    /// Writes events another output's destination refused (encoded there as `from`) and
    /// flushes; the refusing output's flush waits for the answer.
    fn dead_letters(&mut self, batch: DeadLetterBatch, to: Format) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for event in &batch.events {
            event.encode(batch.format, to, &mut bytes);
        }
        let n = batch.events.len() as u64;
        let result = self.sink.write(&bytes, n).and_then(|()| self.flush());
        let answer = match &result {
            Ok(()) => {
                self.stats.events.fetch_add(n, Ordering::Relaxed);
                self.stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("the dead_letter output failed: {e}"),
            )),
        };
        let _ = batch.reply.send(answer);
        result
    }
}

/// Restores each source's order: batches come back from the workers in any order.
#[derive(Default)]
pub(super) struct Reorder {
    pub(super) next: HashMap<u32, u64>,
    pub(super) pending: HashMap<u32, BTreeMap<u64, Encoded>>,
}

impl Reorder {
    /// Takes a finished batch; returns the batches now ready, in order.
    pub(super) fn push(&mut self, done: Encoded) -> Vec<Encoded> {
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
