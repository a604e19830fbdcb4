//! Line reading and splitting, in two halves so that the expensive half runs on workers.
//!
//! - [`LineChunker`] (reader side, sans-IO): the caller reads into [`LineChunker::spare`]
//!   and commits; the chunker hands out [`Chunk`]s that end on a line boundary, carrying the
//!   unfinished last line to the front of the next buffer (ripgrep's line buffer). Its
//!   buffer never grows past `max(chunk_bytes, max_line_bytes + 2)`: a line that grows past
//!   `max_line_bytes` without a newline is cut, and the piece goes out as its own chunk.
//! - [`split_lines`] (worker side): one memchr pass over a chunk makes one [`Event`] per
//!   line, a span of the chunk; `\r\n` loses its `\r`; lines longer than `max_line_bytes`
//!   are cut into pieces, each flagged with `_cut: true`. Nothing is dropped.

use std::sync::Arc;

use memchr::{memchr_iter, memrchr};

use crate::model::{Batch, Buf, Key, Origin, Span, Value, new_event};
use crate::pool::BufferPool;

/// Default cap on one line, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Default target size of a chunk, in bytes.
pub const DEFAULT_CHUNK_BYTES: usize = 512 << 10;

/// How lines are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineOptions {
    /// Longer lines are cut into pieces of at most this many bytes, each flagged `_cut`.
    pub max_line_bytes: usize,
    /// Drop lines that are empty (after removing the line terminator).
    pub skip_empty_lines: bool,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            skip_empty_lines: false,
        }
    }
}

/// Bytes that end on a line boundary (or are a piece of a cut line), with their position
/// in the source.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes.
    pub data: Vec<u8>,
    /// Offset in the source of `data[0]`.
    pub offset: u64,
    /// The first line continues a line that was cut at the end of the previous chunk.
    pub first_continues_cut: bool,
    /// The chunk is a piece of a line cut at `max_line_bytes`: it has no newline and the
    /// line goes on in the next chunk.
    pub is_cut_piece: bool,
}

/// Turns a stream of reads into [`Chunk`]s of whole lines. See the module docs.
#[derive(Debug)]
pub struct LineChunker {
    /// `buf[..filled]` holds data; the buffer is at most `capacity` long, and only as long
    /// as what [`LineChunker::spare`] has offered (recycled buffers keep the length they
    /// had, so zeroing new room happens about once per buffer, not once per chunk).
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
    filled: usize,
    /// `buf[..scanned]` is known to hold no newline.
    scanned: usize,
    capacity: usize,
    chunk_bytes: usize,
    max_line_bytes: usize,
    /// Offset in the source of `buf[0]`.
    offset: u64,
    /// The line at the front of `buf` continues a cut line.
    in_cut_line: bool,
    /// Lines cut so far (each counted once, however many pieces it made).
    lines_cut: u64,
}

impl LineChunker {
    /// A chunker producing chunks of about `chunk_bytes` (at least 1), cutting lines at
    /// `max_line_bytes` (at least 1), starting at `offset` in the source.
    pub fn new(chunk_bytes: usize, max_line_bytes: usize, offset: u64) -> LineChunker {
        LineChunker::with_pool(chunk_bytes, max_line_bytes, offset, Arc::default())
    }

    /// Like [`LineChunker::new`], taking its buffers from `pool`; give chunks' buffers
    /// back to the same pool when done with them.
    pub fn with_pool(chunk_bytes: usize, max_line_bytes: usize, offset: u64, pool: Arc<BufferPool>) -> LineChunker {
        let chunk_bytes = chunk_bytes.max(1);
        let max_line_bytes = max_line_bytes.max(1);
        LineChunker {
            buf: Vec::new(),
            pool,
            filled: 0,
            scanned: 0,
            capacity: chunk_bytes.max(max_line_bytes + 2),
            chunk_bytes,
            max_line_bytes,
            offset,
            in_cut_line: false,
            lines_cut: 0,
        }
    }

    /// The free part of the buffer, to read into; then call [`LineChunker::commit`].
    /// Empty only if a chunk is ready: call [`LineChunker::next_chunk`] first.
    ///
    /// Up to `chunk_bytes` it offers only what completes a chunk, so a read does not run
    /// past the chunk size: chunks (and the batches and output buffers made from them) stay
    /// about `chunk_bytes`, not the buffer's capacity (which is at least `max_line_bytes`).
    /// Past it (a line longer than the chunk) the rest of the buffer is offered.
    pub fn spare(&mut self) -> &mut [u8] {
        let end = if self.filled < self.chunk_bytes {
            self.chunk_bytes.min(self.capacity)
        } else {
            self.capacity
        };
        if self.buf.len() < end {
            // Only room never offered before is zeroed: a recycled chunk's buffer is
            // already about `chunk_bytes` long. (Zeroing up to `capacity`, which is at
            // least `max_line_bytes`, cost a memset of several times the input.)
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.filled..end]
    }

    /// Records that `n` bytes were read into [`LineChunker::spare`].
    pub fn commit(&mut self, n: usize) {
        assert!(self.filled + n <= self.buf.len(), "committed more than spare");
        self.filled += n;
    }

    /// Bytes read and not yet handed out.
    pub fn pending(&self) -> usize {
        self.filled
    }

    /// Offset in the source of the next byte that will be handed out.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines cut by this chunker because no newline came within `max_line_bytes`.
    pub fn lines_cut(&self) -> u64 {
        self.lines_cut
    }

    /// The next chunk, if one is ready.
    ///
    /// Without `flush`, a chunk is ready once the buffer holds `chunk_bytes`. With `flush`
    /// (nothing more to read for now), every whole line goes out. With `eof`, the last line
    /// goes out even without a newline.
    pub fn next_chunk(&mut self, flush: bool, eof: bool) -> Option<Chunk> {
        if self.filled == 0 {
            return None;
        }
        let full = self.filled >= self.chunk_bytes.min(self.capacity);
        if !full && !flush && !eof && self.filled < self.capacity {
            return None;
        }
        if let Some(nl) = memrchr(b'\n', &self.buf[self.scanned..self.filled]) {
            return Some(self.take(self.scanned + nl + 1, false));
        }
        self.scanned = self.filled;
        // With `max + 2` bytes and no newline, the line is longer than `max` whatever
        // follows (even if the last byte is the `\r` of a `\r\n`): its first `max` bytes
        // are a piece for sure. Cutting here, and only here, gives the same pieces however
        // the reads arrive.
        if self.filled >= self.max_line_bytes + 2 {
            if !self.in_cut_line {
                self.lines_cut += 1;
            }
            return Some(self.take(self.max_line_bytes, true));
        }
        if eof {
            return Some(self.take(self.filled, false));
        }
        None
    }

    /// Hands out `buf[..len]` and moves the rest to the front of a recycled buffer.
    fn take(&mut self, len: usize, is_cut_piece: bool) -> Chunk {
        let rest = self.filled - len;
        let mut next = self.pool.take();
        if next.len() < rest {
            next.resize(rest, 0);
        }
        next[..rest].copy_from_slice(&self.buf[len..self.filled]);
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(len);
        let chunk = Chunk {
            data,
            offset: self.offset,
            first_continues_cut: self.in_cut_line,
            is_cut_piece,
        };
        self.offset += len as u64;
        self.filled = rest;
        self.scanned = if is_cut_piece { rest } else { 0 };
        self.in_cut_line = is_cut_piece;
        chunk
    }
}

/// What [`split_lines`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitStats {
    /// Events made.
    pub events: u64,
    /// Lines cut because they were longer than `max_line_bytes` and ended in this chunk.
    pub lines_cut: u64,
    /// Empty lines skipped (`skip_empty_lines`).
    pub empty_skipped: u64,
}

/// Makes a batch from `chunk`: one event per line, each a span of the chunk.
pub fn split_lines(chunk: Chunk, opts: &LineOptions, source: u32, seq: u64) -> (Batch, SplitStats) {
    let mut batch = Batch::default();
    let (stats, _) = split_lines_into(&mut batch, chunk, opts, source, seq);
    (batch, stats)
}

/// Refills `batch` from `chunk`, reusing its allocations; returns what the split saw and
/// the batch's previous chunk buffer, to recycle.
pub fn split_lines_into(
    batch: &mut Batch,
    chunk: Chunk,
    opts: &LineOptions,
    source: u32,
    seq: u64,
) -> (SplitStats, Vec<u8>) {
    let origin = Origin {
        source,
        seq,
        offset: chunk.offset,
    };
    let old = batch.reset(chunk.data, origin);
    let stats = split_into(batch, chunk.first_continues_cut, chunk.is_cut_piece, opts);
    (stats, old)
}

fn split_into(batch: &mut Batch, first_cut: bool, is_piece: bool, opts: &LineOptions) -> SplitStats {
    let (data, events, spare) = batch.chunk_and_events();
    let mut stats = for_each_line(data, first_cut, is_piece, opts, |start, end, cut| {
        let mut event = new_event(spare, Span::new(Buf::Chunk, start, end - start));
        if cut {
            event.set(Key::CUT, Value::Bool(true));
        }
        events.push(event);
    });
    stats.events = events.len() as u64;
    stats
}

/// Calls `line(start, end, cut)` for every line of `data`, a chunk's bytes: the line
/// terminator excluded, lines longer than `max_line_bytes` cut into flagged pieces, empty
/// lines skipped if asked. `first_cut`: the first line continues a cut line; `is_piece`:
/// `data` is one piece of a cut line. The one place that defines what a line is.
pub fn for_each_line(
    data: &[u8],
    first_cut: bool,
    is_piece: bool,
    opts: &LineOptions,
    mut line: impl FnMut(usize, usize, bool),
) -> SplitStats {
    let mut stats = SplitStats::default();
    let max = opts.max_line_bytes.max(1);
    let len = data.len();
    // `terminated`: the line ended with `\n`, so a `\r` before it is part of the
    // terminator. `cut`: the line continues a cut line.
    let mut emit = |start: usize, end: usize, terminated: bool, cut: bool, stats: &mut SplitStats| {
        let mut line_end = end;
        if terminated && line_end > start && data[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        if line_end - start <= max {
            if line_end == start && opts.skip_empty_lines && !cut {
                stats.empty_skipped += 1;
                return;
            }
            stats.events += 1;
            line(start, line_end, cut);
            return;
        }
        if !cut {
            stats.lines_cut += 1;
        }
        let mut at = start;
        while at < line_end {
            let piece = max.min(line_end - at);
            stats.events += 1;
            line(at, at + piece, true);
            at += piece;
        }
    };
    if is_piece {
        emit(0, len, false, true, &mut stats);
    } else {
        let mut start = 0;
        let mut first = true;
        for nl in memchr_iter(b'\n', data) {
            emit(start, nl, true, first && first_cut, &mut stats);
            first = false;
            start = nl + 1;
        }
        if start < len {
            emit(start, len, false, first && first_cut, &mut stats);
        }
    }
    stats
}

/// Reads all of `reader`, calling `each` with every batch in order; buffers are recycled
/// between batches, as the agent does (for tools and benches).
pub fn for_each_batch<R: std::io::Read>(
    mut reader: R,
    chunk_bytes: usize,
    opts: &LineOptions,
    mut each: impl FnMut(&mut Batch),
) -> std::io::Result<SplitStats> {
    let pool = Arc::new(BufferPool::new(4));
    let mut chunker = LineChunker::with_pool(chunk_bytes, opts.max_line_bytes, 0, pool.clone());
    let mut batch = Batch::default();
    let mut total = SplitStats::default();
    let mut seq = 0;
    let mut eof = false;
    loop {
        while let Some(chunk) = chunker.next_chunk(eof, eof) {
            let (stats, old) = split_lines_into(&mut batch, chunk, opts, 0, seq);
            pool.give(old);
            seq += 1;
            total.events += stats.events;
            total.lines_cut += stats.lines_cut;
            total.empty_skipped += stats.empty_skipped;
            each(&mut batch);
        }
        if eof {
            break;
        }
        match reader.read(chunker.spare()) {
            Ok(0) => eof = true,
            Ok(n) => chunker.commit(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    total.lines_cut += chunker.lines_cut();
    Ok(total)
}

/// Reads all of `reader` and returns its batches (for tests; the agent drives
/// [`LineChunker`] itself).
pub fn read_all<R: std::io::Read>(
    mut reader: R,
    chunk_bytes: usize,
    opts: &LineOptions,
) -> std::io::Result<(Vec<Batch>, SplitStats)> {
    let mut chunker = LineChunker::new(chunk_bytes, opts.max_line_bytes, 0);
    let mut batches = Vec::new();
    let mut total = SplitStats::default();
    let mut push = |chunk: Chunk, batches: &mut Vec<Batch>| {
        let (batch, stats) = split_lines(chunk, opts, 0, batches.len() as u64);
        total.events += stats.events;
        total.lines_cut += stats.lines_cut;
        total.empty_skipped += stats.empty_skipped;
        batches.push(batch);
    };
    loop {
        while let Some(chunk) = chunker.next_chunk(false, false) {
            push(chunk, &mut batches);
        }
        let n = match reader.read(chunker.spare()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        chunker.commit(n);
    }
    while let Some(chunk) = chunker.next_chunk(true, true) {
        push(chunk, &mut batches);
    }
    total.lines_cut += chunker.lines_cut();
    Ok((batches, total))
}
