//! The output side: the dispatcher that restores each source's order, and one thread per
//! output driving its [`Sink`] and acknowledging what each flush delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use anyhow::anyhow;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::plan::Plan;
use super::worker::Encoded;
use crate::outputs::{OutputStats, Sink};

/// An output thread: what its sink returned at the end.
pub(super) type OutputThread<'scope> = ScopedJoinHandle<'scope, std::io::Result<()>>;

/// Starts one thread per sink (`stats` are the outputs' counters, in the same order); returns
/// the channel into each and the threads.
pub(super) fn start<'scope>(
    s: &'scope Scope<'scope, '_>,
    sinks: Vec<Box<dyn Sink>>,
    stats: &[Arc<OutputStats>],
) -> (Vec<Sender<Arc<Encoded>>>, Vec<OutputThread<'scope>>) {
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for (i, sink) in sinks.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::bounded::<Arc<Encoded>>(1);
        txs.push(tx);
        let stats = stats[i].clone();
        handles.push(s.spawn(move || run_output(i, sink, &rx, &stats)));
    }
    (txs, handles)
}

/// The dispatcher: releases each source's batches in sequence to every output, until the
/// workers are done (or an output is gone).
pub(super) fn dispatch(done: Receiver<Encoded>, outputs: Vec<Sender<Arc<Encoded>>>) {
    let mut order = Reorder::default();
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

/// Waits for the output threads. An output that failed after the shutdown deadline
/// (`abort`) is an error of the run (pushed to `errors`: its batches are read again on
/// restart); one that failed before, or panicked, fails the run.
pub(super) fn join(
    handles: Vec<OutputThread<'_>>,
    plan: &Plan<'_>,
    abort: &AtomicBool,
    errors: &Mutex<Vec<String>>,
) -> anyhow::Result<()> {
    let mut failure = None;
    for (i, h) in handles.into_iter().enumerate() {
        let name = plan.output_name(i);
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) if abort.load(Ordering::Relaxed) => {
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
    failure.map_or(Ok(()), Err)
}

/// One output's thread: writes batches in order, flushes when the sink wants to (see
/// [`Sink`]), and acknowledges what each flush delivered.
pub(super) fn run_output(
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
