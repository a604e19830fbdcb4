//! The workers: a chunk in, a batch made of it, the pipeline run over it, the events
//! encoded for every output. A chunk of a file an earlier run died on goes one event at a
//! time (see `delivery::guard`).

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};

use weir_core::encode::{Encoder, Route};
use weir_core::frame::{FrameKeys, fill_batch};
use weir_core::line::{LineOptions, split_lines_into};
use weir_core::model::{Batch, Key, KeyTable, Origin, Value};
use weir_core::pipeline::{Pipeline, Processor};
use weir_core::pool::BufferPool;

use super::plan::Queues;
use crate::admin::tap::Taps;
use crate::delivery::Ack;
use crate::delivery::guard::{Guard, Slot, WatchedFile, event_hash, fault_point};
use crate::inputs::{InputStats, SourceFields};

/// What a reader hands a worker: plain lines, or records framed by the reader.
pub(super) use crate::inputs::ChunkPayload as Payload;

/// A chunk on its way to a worker.
#[derive(Debug)]
pub(super) struct Work {
    pub(super) payload: Payload,
    pub(super) source: u32,
    pub(super) input: usize,
    pub(super) seq: u64,
    pub(super) opts: LineOptions,
    pub(super) pod: Option<SourceFields>,
    /// Where the source's checkpoint may go once every output delivered this batch.
    pub(super) ack: Option<Ack>,
}

/// A processed batch: the bytes encoded for each output. Shared by the output threads;
/// the last one to let go gives the buffers back to the pool.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) source: u32,
    pub(super) seq: u64,
    /// Events per output.
    pub(super) events: Vec<u64>,
    pub(super) per_output: Vec<Vec<u8>>,
    pub(super) pool: Arc<BufferPool>,
    pub(super) ack: Option<Ack>,
    /// Outputs that have not delivered this batch yet.
    pub(super) undelivered: AtomicUsize,
}

impl Encoded {
    /// One output delivered this batch; after the last, its checkpoint may move.
    pub(super) fn delivered(&self) {
        if self.undelivered.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(ack) = &self.ack
        {
            ack.delivered();
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

/// One worker: splits a chunk into a batch (its event list reused from chunk to chunk),
/// runs the pipeline, encodes for every output.
pub(super) struct Worker {
    pub(super) batch: Batch,
    pub(super) pipeline: Pipeline,
    pub(super) encoders: Vec<(Box<dyn Encoder>, Route)>,
    pub(super) input_stats: Vec<Arc<InputStats>>,
    pub(super) chunk_pool: Arc<BufferPool>,
    pub(super) output_pool: Arc<BufferPool>,
    pub(super) frame_keys: FrameKeys,
    pub(super) keys: Arc<KeyTable>,
    /// The crash-loop guard and this worker's in-flight slot.
    pub(super) guard: Option<(Arc<Guard>, Slot)>,
    /// A batch of one event, for guarded batches.
    pub(super) single: Batch,
    /// Per input, what turns its raw events into fields first (a Kafka input's
    /// `decoding: json`), if anything.
    pub(super) decoders: Vec<Option<Box<dyn Processor>>>,
    /// The source number of the batches this worker's flushes make (one per worker, from
    /// the top of the range, so it never meets an input's), and the next one's sequence.
    pub(super) flush_source: u32,
    pub(super) flush_seq: u64,
    /// Where `/tap` samples inputs and outputs (processors are tapped in the pipeline).
    pub(super) taps: Arc<Taps>,
    /// Where the work queue's depth is told.
    pub(super) queues: Arc<Queues>,
    /// An input's index in this pipeline by its number in the run (the `input` of its
    /// chunks, see `Plan::input_runs`); `usize::MAX` for one a reload removed.
    pub(super) input_index: Vec<usize>,
}

/// The encoded bytes and event counts of a batch, per output.
pub(super) struct PerOutput {
    pub(super) bufs: Vec<Vec<u8>>,
    pub(super) events: Vec<u64>,
}

impl Worker {
    /// The worker's thread: processes what comes from `rx` and sends it on to `tx`, until
    /// `close` says the inputs are over (then drains what is queued) or a channel is gone.
    pub(super) fn run(mut self, rx: &Receiver<Work>, close: &Receiver<()>, tx: &Sender<Encoded>) {
        // Processors that gather (a plugin that exports `flush`) are flushed on a timer.
        let ticker = match self.pipeline.flush_interval() {
            Some(every) => crossbeam_channel::tick(every),
            None => crossbeam_channel::never(),
        };
        loop {
            crossbeam_channel::select! {
                recv(rx) -> work => match work {
                    Ok(work) => {
                        self.queues.work.store(rx.len() as u64, Ordering::Relaxed);
                        if tx.send(self.process(work)).is_err() { return }
                    }
                    Err(_) => break,
                },
                recv(ticker) -> _ => {
                    for done in self.flush() {
                        if tx.send(done).is_err() {
                            return;
                        }
                    }
                }
                recv(close) -> _ => {
                    // The inputs are over: what is queued is all there is.
                    for _ in 0..rx.len() {
                        let Ok(work) = rx.try_recv() else { break };
                        if tx.send(self.process(work)).is_err() {
                            return;
                        }
                    }
                    break;
                }
            }
        }
        // A last flush of what the gathering stages hold.
        for done in self.flush() {
            if tx.send(done).is_err() {
                return;
            }
        }
    }

    /// Flushes the pipeline's gathering stages: each batch they emit, through the stages
    /// after them, encoded for every output as a batch of the worker's own flush source
    /// (no checkpoint rides on it).
    pub(super) fn flush(&mut self) -> Vec<Encoded> {
        let batches = self.pipeline.flush();
        batches
            .iter()
            .map(|batch| {
                let mut out = self.take_outputs(batch.live_bytes() as usize);
                encode_batch(&mut self.encoders, batch, &mut out, &self.taps);
                let seq = self.flush_seq;
                self.flush_seq += 1;
                self.encoded(self.flush_source, seq, None, out)
            })
            .collect()
    }

    /// A chunk of plain lines through a pipeline with no processors: every encoder writes it
    /// straight from the chunk (see `Encoder::encode_plain_lines`), when all of them can.
    pub(super) fn plain_lines(&mut self, work: &Work) -> Option<Encoded> {
        let Payload::Lines(chunk) = &work.payload else {
            return None;
        };
        if !self.pipeline.stages().is_empty()
            || chunk.first_continues_cut
            || chunk.is_cut_piece
            || work.opts.skip_empty_lines
            || self.taps.wants_events(work.input)
        {
            return None;
        }
        // A source's constant fields (an exec input's `stream`) follow the message.
        let fields: Vec<(&str, &str)> = work
            .pod
            .iter()
            .flat_map(|p| p.iter())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let mut events = Vec::with_capacity(self.encoders.len());
        let mut per_output = Vec::with_capacity(self.encoders.len());
        let mut lines = 0;
        for (encoder, route) in &mut self.encoders {
            let mut out = self.output_pool.take_empty(chunk.data.len() + chunk.data.len() / 4);
            let n = match route {
                // No processor ran: no event is routed.
                Route::Main | Route::Output(_) => {
                    match encoder.encode_plain_lines(&chunk.data, work.opts.max_line_bytes, &fields, &mut out) {
                        Some(n) => n,
                        None => {
                            self.output_pool.give(out);
                            for buf in per_output {
                                self.output_pool.give(buf);
                            }
                            return None;
                        }
                    }
                }
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
            ack: work.ack.clone(),
        })
    }

    /// Processes one chunk: split or fill a batch, run the pipeline, encode for every output.
    /// A chunk of a file that an earlier run died on goes one event at a time (see `guard`).
    pub(super) fn process(&mut self, mut work: Work) -> Encoded {
        work.input = match self.input_index.get(work.input) {
            Some(&i) if i != usize::MAX => i,
            // A reload removes an input only once its reader is done and what it read
            // is processed; a chunk still from it goes on as the first input's.
            _ => {
                tracing::warn!(
                    input = work.input,
                    "a chunk of a removed input: processed as the first input's"
                );
                0
            }
        };
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
    pub(super) fn watch(&mut self, work: &Work) -> Option<(WatchedFile, u64, u64)> {
        let (_, slot) = self.guard.as_mut()?;
        let Some(Ack::File(point, acks)) = &work.ack else {
            return None;
        };
        let file = acks.file(*point)?;
        let (start, len) = match &work.payload {
            Payload::Lines(c) => (c.offset, c.data.len()),
            Payload::Framed(f) => (f.offset, f.data.len()),
        };
        let end = start + len as u64;
        slot.set(&file, start, end, None);
        Some((file, start, end))
    }

    pub(super) fn process_batch(&mut self, work: Work) -> Encoded {
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
        encode_batch(&mut self.encoders, &self.batch, &mut out, &self.taps);
        self.encoded(source, seq, ack, out)
    }

    /// A chunk whose bytes an earlier run died on: each event goes through the pipeline on
    /// its own, named in the slot first, so a second death pins the record; a record pinned
    /// so (quarantined) is set aside instead of processed. Copies the chunk once per event:
    /// slow, and only for the few chunks that need it.
    pub(super) fn process_guarded(&mut self, work: Work, file: &WatchedFile, start: u64, end: u64) -> Encoded {
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
            encode_batch(&mut self.encoders, &one, &mut out, &self.taps);
        }
        self.single = one;
        self.encoded(source, seq, ack, out)
    }

    /// Makes `self.batch` from the chunk (lines split, or framed records), with the pod's
    /// fields; returns the chunk's source, sequence number and ack point.
    pub(super) fn fill(&mut self, work: Work) -> (u32, u64, Option<Ack>) {
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
                let field_keys: Vec<Key> = framed.field_names.iter().map(|n| self.keys.intern(n)).collect();
                let (old_chunk, old_arena, _) = fill_batch(batch, framed, self.frame_keys, &field_keys, origin);
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
        if let Some(decoder) = &mut self.decoders[work.input] {
            decoder.process(&mut self.batch);
            let failed = decoder.take_failures();
            self.input_stats[work.input]
                .format_errors
                .fetch_add(failed, Ordering::Relaxed);
        }
        let tap = self.taps.input(work.input);
        if tap.is_attached() {
            tap.sample(&self.batch, Route::Main);
        }
        (work.source, work.seq, work.ack)
    }

    /// Empty pooled buffers, one per output, for a chunk of `len` bytes.
    pub(super) fn take_outputs(&self, len: usize) -> PerOutput {
        PerOutput {
            bufs: (0..self.encoders.len())
                .map(|_| self.output_pool.take_empty(len + len / 4))
                .collect(),
            events: vec![0; self.encoders.len()],
        }
    }

    pub(super) fn encoded(&self, source: u32, seq: u64, ack: Option<Ack>, out: PerOutput) -> Encoded {
        Encoded {
            source,
            seq,
            undelivered: AtomicUsize::new(out.bufs.len()),
            events: out.events,
            per_output: out.bufs,
            pool: self.output_pool.clone(),
            ack,
        }
    }
}

/// Appends `batch`'s events to every output's buffer, each through its encoder and route,
/// offering them to the output's tap when one is attached.
pub(super) fn encode_batch(
    encoders: &mut [(Box<dyn Encoder>, Route)],
    batch: &Batch,
    out: &mut PerOutput,
    taps: &Taps,
) {
    let outputs = encoders.iter_mut().zip(out.bufs.iter_mut().zip(&mut out.events));
    for (i, ((encoder, route), (buf, events))) in outputs.enumerate() {
        let tap = taps.output(i);
        if tap.is_attached() {
            tap.sample(batch, *route);
        }
        encoder.encode_route(batch, *route, buf);
        *events += weir_core::encode::routed(batch, *route).count() as u64;
    }
}
