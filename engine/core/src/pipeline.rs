//! Processors and the pipeline that chains them.
//!
//! A [`Processor`] works on a whole [`Batch`]: per-batch setup (arena constants, lookups)
//! happens once, outside the per-event loop. A [`Pipeline`] runs its processors in order,
//! each wrapped in a [`Counted`] that records events and bytes in and out and time spent,
//! then compacts the batch once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::model::Batch;

/// A batch-at-a-time transformation. Each worker owns its own instance, so `&mut self`
/// may hold per-worker scratch (caches, buffers).
pub trait Processor: Send {
    /// Transforms `batch` in place. Dropped and dead-lettered events are marked, not
    /// removed; skip them (see [`Batch::live_mut`]).
    fn process(&mut self, batch: &mut Batch);

    /// Events that failed (did not parse, ...) since the last call; the [`Counted`]
    /// wrapper drains this after every batch.
    fn take_failures(&mut self) -> u64 {
        0
    }

    /// How often the processor wants [`Processor::flush`] called; `None` (the default):
    /// never, it holds nothing back.
    fn flush_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Emits into `batch` (empty, with no chunk) what the processor gathered (e.g. counts
    /// per minute): called every [`Processor::flush_interval`] and once at shutdown.
    fn flush(&mut self, batch: &mut Batch) {
        let _ = batch;
    }
}

/// Counters of one component, shared by every worker running it.
#[derive(Debug, Default)]
pub struct ComponentStats {
    /// Events that went in.
    pub events_in: AtomicU64,
    /// Events that came out.
    pub events_out: AtomicU64,
    /// Raw bytes of the events that went in.
    pub bytes_in: AtomicU64,
    /// Raw bytes of the events that came out.
    pub bytes_out: AtomicU64,
    /// Time spent inside the component, in nanoseconds.
    pub nanos: AtomicU64,
    /// Events that failed in the component (e.g. did not parse).
    pub failures: AtomicU64,
}

impl ComponentStats {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            nanos: self.nanos.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// Plain values of [`ComponentStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Events that went in.
    pub events_in: u64,
    /// Events that came out.
    pub events_out: u64,
    /// Raw bytes of the events that went in.
    pub bytes_in: u64,
    /// Raw bytes of the events that came out.
    pub bytes_out: u64,
    /// Time spent inside the component, in nanoseconds.
    pub nanos: u64,
    /// Events that failed in the component.
    pub failures: u64,
}

/// A processor with its counters: the one wrapper every pipeline stage goes through.
pub struct Counted {
    name: Arc<str>,
    inner: Box<dyn Processor>,
    stats: Arc<ComponentStats>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Counted {
    /// Wraps `inner`, counting into `stats` (shared by every worker's copy).
    pub fn new(name: impl Into<Arc<str>>, inner: Box<dyn Processor>, stats: Arc<ComponentStats>) -> Counted {
        Counted {
            name: name.into(),
            inner,
            stats,
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<ComponentStats> {
        &self.stats
    }
}

impl Processor for Counted {
    fn process(&mut self, batch: &mut Batch) {
        let (events_in, bytes_in) = live_totals(batch);
        self.stats.events_in.fetch_add(events_in, Ordering::Relaxed);
        self.stats.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.timed(batch, |p, b| p.process(b));
    }
}

impl Counted {
    /// Runs the inner processor's [`Processor::flush`] into `batch`, counting what it
    /// emits as events out.
    fn flush_into(&mut self, batch: &mut Batch) {
        self.timed(batch, |p, b| p.flush(b));
    }

    /// Runs `step` of the inner processor over `batch`, counting its time, the events that
    /// come out, and its failures.
    fn timed(&mut self, batch: &mut Batch, step: impl FnOnce(&mut dyn Processor, &mut Batch)) {
        let start = Instant::now();
        step(self.inner.as_mut(), batch);
        let nanos = start.elapsed().as_nanos() as u64;
        let (events_out, bytes_out) = live_totals(batch);
        let s = &self.stats;
        s.events_out.fetch_add(events_out, Ordering::Relaxed);
        s.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        s.nanos.fetch_add(nanos, Ordering::Relaxed);
        let failures = self.inner.take_failures();
        if failures > 0 {
            s.failures.fetch_add(failures, Ordering::Relaxed);
        }
    }
}

fn live_totals(batch: &Batch) -> (u64, u64) {
    batch.live().fold((0, 0), |(n, b), e| (n + 1, b + e.raw().len() as u64))
}

/// A chain of processors, run in order over each batch.
#[derive(Debug, Default)]
pub struct Pipeline {
    stages: Vec<Counted>,
}

impl Pipeline {
    /// A pipeline running `stages` in order.
    pub fn new(stages: Vec<Counted>) -> Pipeline {
        Pipeline { stages }
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Counted] {
        &self.stages
    }

    /// Runs every stage over `batch`, then removes the dropped events once.
    pub fn run(&mut self, batch: &mut Batch) {
        for stage in &mut self.stages {
            stage.process(batch);
        }
        batch.compact();
    }

    /// The shortest [`Processor::flush_interval`] of the stages: how often
    /// [`Pipeline::flush`] should run (`None`: never).
    pub fn flush_interval(&self) -> Option<std::time::Duration> {
        self.stages.iter().filter_map(|s| s.inner.flush_interval()).min()
    }

    /// Flushes every stage that flushes, in order: what a stage emits goes through the
    /// stages after it; returns the batches that are not empty after that.
    pub fn flush(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            if self.stages[i].inner.flush_interval().is_none() {
                continue;
            }
            let mut batch = Batch::default();
            self.stages[i].flush_into(&mut batch);
            if batch.is_empty() {
                continue;
            }
            for stage in &mut self.stages[i + 1..] {
                stage.process(&mut batch);
            }
            batch.compact();
            if !batch.is_empty() {
                out.push(batch);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};

    /// Drops every other live event.
    struct DropOdd;
    impl Processor for DropOdd {
        fn process(&mut self, batch: &mut Batch) {
            let (_, events) = batch.live_mut();
            for (i, e) in events.enumerate() {
                if i % 2 == 1 {
                    e.mark_dropped();
                }
            }
        }
    }

    #[test]
    fn counted_stages_report_events_and_bytes_and_pipeline_compacts_once() {
        let (mut batches, _) = read_all(&b"aa\nbbb\nc\ndddd\n"[..], 1 << 16, &LineOptions::default()).unwrap();
        let first = Arc::new(ComponentStats::default());
        let second = Arc::new(ComponentStats::default());
        let mut pipeline = Pipeline::new(vec![
            Counted::new("first", Box::new(DropOdd), first.clone()),
            Counted::new("second", Box::new(DropOdd), second.clone()),
        ]);
        pipeline.run(&mut batches[0]);
        let a = first.snapshot();
        assert_eq!((a.events_in, a.bytes_in, a.events_out, a.bytes_out), (4, 10, 2, 3));
        let b = second.snapshot();
        // The second stage sees only the survivors of the first: "aa" and "c".
        assert_eq!((b.events_in, b.bytes_in, b.events_out, b.bytes_out), (2, 3, 1, 2));
        assert_eq!(batches[0].len(), 1, "dropped events are compacted away");
        assert_eq!(pipeline.stages()[1].name(), "second");
    }
}
