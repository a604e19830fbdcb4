//! [`run_in_memory`]: the stages of a run on one thread over bytes in memory, for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::anyhow;

use super::Summary;
use super::plan::Plan;
use super::readers::{read_source, readings, sources};
use super::worker::Encoded;
use crate::config::{Loaded, validate};
use crate::outputs::OutputStats;

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
    let readings = readings(loaded)?.into_iter().enumerate().collect();
    let mut source = sources(readings, &plan.input_runs, &AtomicU32::new(0))
        .once
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the first input is not read once"))?
        .1
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
            deliver(&mut outputs, &plan.output_stats, worker.process(work));
            true
        },
    )?;
    // The end of the input is a shutdown: the gathering stages flush once.
    for done in worker.flush() {
        deliver(&mut outputs, &plan.output_stats, done);
    }
    Ok((outputs, plan.summary(Vec::new())))
}

/// Appends a processed batch to each output's bytes and counts its events.
fn deliver(outputs: &mut [Vec<u8>], stats: &[Arc<OutputStats>], done: Encoded) {
    for (i, out) in outputs.iter_mut().enumerate() {
        out.extend_from_slice(&done.per_output[i]);
        stats[i].events.fetch_add(done.events[i], Ordering::Relaxed);
    }
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
