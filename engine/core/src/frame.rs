//! Framing: turning a source's lines into records when a record is more than one line
//! (multiline) or a line is more than a record (container log formats).
//!
//! A [`Framer`] is per source and sequential: it runs where the source is read, sees the
//! chunks in order, and keeps what is unfinished (an open multiline record, a container
//! message split into partial lines) from one chunk to the next. Workers then build
//! batches from its [`Framed`] output in parallel.
//!
//! Zero copy where the bytes allow it: a record made of consecutive raw lines inside one
//! chunk is one span of the chunk (line terminators included), and so is a container
//! message that fits on one line. Bytes are copied only for what cannot be one span: a
//! record still open at the end of a chunk (carried into the next), container partial
//! lines joined together, multiline records over container messages (their lines are
//! separated by prefixes), and Docker `log` strings (JSON-escaped).
//!
//! Container formats:
//! - `cri`: `<RFC 3339 time> <stdout|stderr> <P|F> <content>`; `P` lines are joined, up to
//!   the `F` line, into one message.
//! - `docker` (json-file): `{"log":"...","stream":"stdout","time":"..."}`; a `log` that
//!   does not end with `\n` is a partial (Docker splits at 16 KiB) and is joined with what
//!   follows on the same stream.
//!
//! Each stream (stdout, stderr) has its own partial and multiline state, so the two never
//! interleave inside a record. A line that is not in the format is kept as a record of its
//! own, with `_error` saying why, and counted.

use std::str::FromStr;

use serde::Deserialize;
use simd_json::{Buffers, INPUT_PADDING, Node, Tape, fill_tape_padded};

use crate::line::{Chunk, LineOptions, for_each_line};
use crate::model::{Batch, Buf, Key, Origin, Span, Value};
use crate::multiline::{RuleCaches, Rules, Step, Unmatched};

/// How a source's lines are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Plain lines.
    #[default]
    Raw,
    /// Kubernetes CRI container logs.
    Cri,
    /// Docker json-file container logs.
    Docker,
}

/// Which output stream a container message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Not a container log.
    None = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

/// One record, ready to become an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// The message: a span of the chunk or of the arena.
    pub message: Span,
    /// The container stream.
    pub stream: Stream,
    /// Event time from the container log, in nanoseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// The record was cut by `max_line_bytes`, `max_lines` or `max_bytes`.
    pub cut: bool,
    /// Why the line is not in the source's format.
    pub error: Option<&'static str>,
}

/// A framed chunk: its bytes, the bytes framing had to write, and its records.
#[derive(Debug, Default)]
pub struct Framed {
    /// The chunk's bytes (may be empty: records flushed at the end of input).
    pub data: Vec<u8>,
    /// Offset in the source of `data[0]`.
    pub offset: u64,
    /// Copied or joined record bytes.
    pub arena: Vec<u8>,
    /// The records, in the order they closed.
    pub records: Vec<Record>,
}

/// What framing saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Records made.
    pub records: u64,
    /// Lines longer than `max_line_bytes`, cut.
    pub lines_cut: u64,
    /// Empty lines skipped.
    pub empty_skipped: u64,
    /// Records closed by `max_lines` or `max_bytes`.
    pub records_cut: u64,
    /// Lines outside records that `unmatched: discard` dropped.
    pub unmatched_discarded: u64,
    /// Lines that are not in the source's format.
    pub format_errors: u64,
}

/// The bytes of a record so far.
#[derive(Debug)]
enum Parts {
    /// A span `[start, end)` of the current chunk.
    Span(usize, usize),
    /// Copied bytes.
    Owned(Vec<u8>),
}

#[derive(Debug)]
struct Open {
    parts: Parts,
    lines: u32,
    bytes: usize,
    cut: bool,
    time: Option<i64>,
    /// Source offset of the record's first line.
    since: u64,
    /// What goes between the record's last line and the next one: for raw lines the
    /// bytes that followed it in the input (`\n`, `\r\n`, or nothing between the pieces
    /// of a cut line), so a record is the same bytes whether or not it crossed a chunk;
    /// for container messages `\n`.
    sep: &'static [u8],
}

/// The line terminator at `data[at..]`.
fn terminator_at(data: &[u8], at: usize) -> &'static [u8] {
    match data.get(at..) {
        Some([b'\r', b'\n', ..]) => b"\r\n",
        Some([b'\n', ..]) => b"\n",
        _ => b"",
    }
}

#[derive(Debug, Default)]
struct StreamState {
    /// Container partial lines joined so far.
    partial: Vec<u8>,
    partial_open: bool,
    partial_time: Option<i64>,
    /// Source offset of the first partial line.
    partial_since: u64,
    /// The open multiline record.
    open: Option<Open>,
}

/// A complete message: its bytes and, when zero copy is possible, its chunk range.
struct Msg<'a> {
    bytes: &'a [u8],
    range: Option<(usize, usize)>,
    stream: Stream,
    time: Option<i64>,
    cut: bool,
}

/// Frames one source. See the module docs.
pub struct Framer {
    format: Format,
    rules: Option<(Rules, RuleCaches)>,
    opts: LineOptions,
    streams: [StreamState; 3],
    json: JsonScratch,
    stats: FrameStats,
    /// Source offset of the current chunk.
    chunk_offset: u64,
    /// Source offset of the line the current message began on.
    msg_since: u64,
}

impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer")
            .field("format", &self.format)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// simd-json state for Docker lines, reused from line to line.
struct JsonScratch {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    log: Vec<u8>,
}

/// Records in `[range]`-or-owned form are written to `out` through this.
struct Sink<'a> {
    data: &'a [u8],
    arena: &'a mut Vec<u8>,
    records: &'a mut Vec<Record>,
}

impl Sink<'_> {
    fn emit(&mut self, parts: Parts, stream: Stream, timestamp: Option<i64>, cut: bool, error: Option<&'static str>) {
        let message = match parts {
            Parts::Span(a, b) => Span::new(Buf::Chunk, a, b - a),
            Parts::Owned(bytes) => {
                let span = Span::new(Buf::Arena, self.arena.len(), bytes.len());
                self.arena.extend_from_slice(&bytes);
                span
            }
        };
        self.records.push(Record {
            message,
            stream,
            timestamp,
            cut,
            error,
        });
    }
}

impl Framer {
    /// A framer for `format`, with multiline `rules` if any.
    pub fn new(format: Format, rules: Option<Rules>, opts: LineOptions) -> Framer {
        Framer {
            format,
            rules: rules.map(|r| {
                let caches = r.caches();
                (r, caches)
            }),
            opts,
            streams: Default::default(),
            json: JsonScratch {
                input: Vec::new(),
                buffers: Buffers::default(),
                tape: Some(Tape::null().reset()),
                log: Vec::new(),
            },
            stats: FrameStats::default(),
            chunk_offset: 0,
            msg_since: 0,
        }
    }

    /// The source offset of the first byte this framer still holds (an open record, joined
    /// partial lines), or `None` when every line given to it is in a record already out.
    /// A checkpoint may move up to here and no further: a restart from this offset makes
    /// the held records again, whole.
    pub fn held_from(&self) -> Option<u64> {
        self.streams
            .iter()
            .flat_map(|st| {
                [
                    st.partial_open.then_some(st.partial_since),
                    st.open.as_ref().map(|o| o.since),
                ]
            })
            .flatten()
            .min()
    }

    /// What framing saw so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Frames `chunk` into `out` (whose buffers are reused). Records still open at the end
    /// are kept for the next chunk.
    pub fn frame(&mut self, chunk: Chunk, out: &mut Framed) {
        out.data = chunk.data;
        out.offset = chunk.offset;
        self.chunk_offset = chunk.offset;
        out.arena.clear();
        out.records.clear();
        let Framed {
            data, arena, records, ..
        } = out;
        let mut sink = Sink { data, arena, records };
        let opts = self.opts;
        let split = for_each_line(
            data,
            chunk.first_continues_cut,
            chunk.is_cut_piece,
            &opts,
            |start, end, cut| self.line(&mut sink, start, end, cut),
        );
        self.stats.lines_cut += split.lines_cut;
        self.stats.empty_skipped += split.empty_skipped;
        // What stays open refers to this chunk, which is about to go: copy it.
        for st in &mut self.streams {
            if let Some(Open {
                parts: parts @ Parts::Span(..),
                ..
            }) = &mut st.open
            {
                let Parts::Span(a, b) = *parts else { unreachable!() };
                *parts = Parts::Owned(data[a..b].to_vec());
            }
        }
        self.stats.records += records.len() as u64;
    }

    /// End of input: closes every open record into `out` (with no chunk bytes).
    pub fn finish(&mut self, out: &mut Framed) {
        out.data.clear();
        out.arena.clear();
        out.records.clear();
        let Framed {
            data,
            arena,
            records,
            offset: _,
        } = out;
        let mut sink = Sink { data, arena, records };
        for stream in [Stream::None, Stream::Stdout, Stream::Stderr] {
            let st = &mut self.streams[stream as usize];
            if st.partial_open {
                // The last part never came: what we have is the message.
                let bytes = std::mem::take(&mut st.partial);
                st.partial_open = false;
                let time = st.partial_time.take();
                self.message(
                    &mut sink,
                    Msg {
                        bytes: &bytes,
                        range: None,
                        stream,
                        time,
                        cut: false,
                    },
                );
            }
            self.close(&mut sink, stream);
        }
        self.stats.records += records.len() as u64;
    }

    /// One line of the chunk.
    fn line(&mut self, sink: &mut Sink<'_>, start: usize, end: usize, cut: bool) {
        let data = sink.data;
        let line = &data[start..end];
        self.msg_since = self.chunk_offset + start as u64;
        match self.format {
            Format::Raw => self.message(
                sink,
                Msg {
                    bytes: line,
                    range: Some((start, end)),
                    stream: Stream::None,
                    time: None,
                    cut,
                },
            ),
            Format::Cri => match parse_cri(line) {
                Some(cri) => {
                    let content = (start + cri.content.0, start + cri.content.1);
                    self.container(
                        sink,
                        &data[content.0..content.1],
                        Some(content),
                        cri.stream,
                        cri.time,
                        cri.partial,
                        cut,
                    );
                }
                None => self.malformed(sink, start, end, "cri: not a CRI log line"),
            },
            Format::Docker => {
                let mut log = std::mem::take(&mut self.json.log);
                match parse_docker(&mut self.json, line, &mut log) {
                    Some((stream, time, partial)) => self.container(sink, &log, None, stream, time, partial, cut),
                    None => self.malformed(sink, start, end, "docker: not a json-file log line"),
                }
                self.json.log = log;
            }
        }
    }

    fn malformed(&mut self, sink: &mut Sink<'_>, start: usize, end: usize, why: &'static str) {
        self.stats.format_errors += 1;
        sink.emit(Parts::Span(start, end), Stream::None, None, false, Some(why));
    }

    /// A container line's content: joined with partials before it, or complete.
    #[allow(clippy::too_many_arguments)]
    fn container(
        &mut self,
        sink: &mut Sink<'_>,
        content: &[u8],
        range: Option<(usize, usize)>,
        stream: Stream,
        time: Option<i64>,
        partial: bool,
        cut: bool,
    ) {
        let st = &mut self.streams[stream as usize];
        if partial || st.partial_open {
            if !st.partial_open {
                st.partial_time = time;
                st.partial.clear();
                st.partial_since = self.msg_since;
            }
            st.partial.extend_from_slice(content);
            st.partial_open = partial;
            if partial {
                return;
            }
            let bytes = std::mem::take(&mut st.partial);
            let time = st.partial_time.take();
            self.msg_since = st.partial_since;
            self.message(
                sink,
                Msg {
                    bytes: &bytes,
                    range: None,
                    stream,
                    time,
                    cut,
                },
            );
            self.streams[stream as usize].partial = bytes;
            return;
        }
        self.message(
            sink,
            Msg {
                bytes: content,
                range,
                stream,
                time,
                cut,
            },
        );
    }

    /// A complete message: a record, or a line of a multiline record.
    fn message(&mut self, sink: &mut Sink<'_>, msg: Msg<'_>) {
        let Some((rules, caches)) = &mut self.rules else {
            let parts = match msg.range {
                Some((a, b)) => Parts::Span(a, b),
                None => Parts::Owned(msg.bytes.to_vec()),
            };
            sink.emit(parts, msg.stream, msg.time, msg.cut, None);
            return;
        };
        let s = msg.stream as usize;
        let step = rules.step(caches, msg.bytes, self.streams[s].open.is_some());
        let (max_lines, max_bytes, unmatched) = (rules.max_lines, rules.max_bytes, rules.unmatched);
        match step {
            Step::Append | Step::AppendClose => {
                let open = self.streams[s].open.as_ref().expect("a record is open");
                if open.lines >= max_lines || open.bytes + 1 + msg.bytes.len() > max_bytes {
                    // Full: close it where it stands; the rest is a new, flagged record.
                    self.stats.records_cut += 1;
                    self.streams[s].open.as_mut().expect("open").cut = true;
                    self.close(sink, msg.stream);
                    self.open(sink.data, msg, true);
                } else {
                    self.append(sink.data, msg);
                }
                if step == Step::AppendClose {
                    self.close(sink, msg_stream(s));
                }
            }
            Step::Open => {
                self.close(sink, msg.stream);
                self.open(sink.data, msg, false);
            }
            Step::Single => {
                self.close(sink, msg.stream);
                self.open(sink.data, msg, false);
                self.close(sink, msg_stream(s));
            }
            Step::Unmatched => {
                self.close(sink, msg.stream);
                match unmatched {
                    Unmatched::SingleLine => {
                        self.open(sink.data, msg, false);
                        self.close(sink, msg_stream(s));
                    }
                    Unmatched::Discard => self.stats.unmatched_discarded += 1,
                }
            }
        }
    }

    /// The separator after a message ending at `end` of `data`.
    fn sep_after(&self, data: &[u8], range: Option<(usize, usize)>) -> &'static [u8] {
        match (self.format, range) {
            (Format::Raw, Some((_, end))) => terminator_at(data, end),
            _ => b"\n",
        }
    }

    fn open(&mut self, data: &[u8], msg: Msg<'_>, cut: bool) {
        let parts = match msg.range {
            Some((a, b)) => Parts::Span(a, b),
            None => Parts::Owned(msg.bytes.to_vec()),
        };
        let sep = self.sep_after(data, msg.range);
        self.streams[msg.stream as usize].open = Some(Open {
            parts,
            lines: 1,
            bytes: msg.bytes.len(),
            cut: cut || msg.cut,
            time: msg.time,
            since: self.msg_since,
            sep,
        });
    }

    fn append(&mut self, data: &[u8], msg: Msg<'_>) {
        let next_sep = self.sep_after(data, msg.range);
        let open = self.streams[msg.stream as usize]
            .open
            .as_mut()
            .expect("a record is open");
        open.lines += 1;
        open.bytes += open.sep.len() + msg.bytes.len();
        open.cut |= msg.cut;
        match (&mut open.parts, msg.range) {
            // The next bytes of the same chunk: the record stays one span.
            (Parts::Span(_, end), Some((start, b))) if start == *end + open.sep.len() => *end = b,
            (parts, _) => {
                if let Parts::Span(a, b) = *parts {
                    *parts = Parts::Owned(data[a..b].to_vec());
                }
                let Parts::Owned(bytes) = parts else { unreachable!() };
                bytes.extend_from_slice(open.sep);
                bytes.extend_from_slice(msg.bytes);
            }
        }
        open.sep = next_sep;
    }

    fn close(&mut self, sink: &mut Sink<'_>, stream: Stream) {
        if let Some(open) = self.streams[stream as usize].open.take() {
            sink.emit(open.parts, stream, open.time, open.cut, None);
        }
    }
}

fn msg_stream(index: usize) -> Stream {
    match index {
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        _ => Stream::None,
    }
}

struct Cri {
    time: Option<i64>,
    stream: Stream,
    partial: bool,
    /// Content range within the line.
    content: (usize, usize),
}

fn parse_stream(s: &[u8]) -> Option<Stream> {
    match s {
        b"stdout" => Some(Stream::Stdout),
        b"stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

fn parse_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let ts = jiff::Timestamp::from_str(s).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// `<time> <stream> <tag> <content>`; the tag is `P` or `F`, maybe followed by `:...`.
fn parse_cri(line: &[u8]) -> Option<Cri> {
    let sp1 = memchr::memchr(b' ', line)?;
    let time = parse_time(&line[..sp1])?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest)?;
    let stream = parse_stream(&rest[..sp2])?;
    let rest2 = &rest[sp2 + 1..];
    let tag_end = memchr::memchr(b' ', rest2).unwrap_or(rest2.len());
    let tag = &rest2[..tag_end];
    let partial = match tag.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content_start = sp1 + 1 + sp2 + 1 + (tag_end + 1).min(rest2.len());
    Some(Cri {
        time: Some(time),
        stream,
        partial,
        content: (content_start, line.len()),
    })
}

/// Parses a json-file line into `log` (unescaped); returns (stream, time, partial).
fn parse_docker(json: &mut JsonScratch, line: &[u8], log: &mut Vec<u8>) -> Option<(Stream, Option<i64>, bool)> {
    let len = line.len();
    let mut input = std::mem::take(&mut json.input);
    input.clear();
    input.extend_from_slice(line);
    input.resize(len + INPUT_PADDING, 0);
    let mut tape = json.tape.take().unwrap_or_else(Tape::null).reset();
    let mut result = None;
    if fill_tape_padded(&mut input, len, &mut json.buffers, &mut tape).is_ok()
        && let Some(Node::Object { len: members, .. }) = tape.0.first()
    {
        let (mut stream, mut time, mut text) = (None, None, None);
        let mut i = 1;
        for _ in 0..*members {
            let (Node::String(key), value) = (tape.0[i], tape.0[i + 1]) else {
                break;
            };
            match (key, value) {
                ("log", Node::String(s)) => text = Some(s),
                ("stream", Node::String(s)) => stream = parse_stream(s.as_bytes()),
                ("time", Node::String(s)) => time = parse_time(s.as_bytes()),
                _ => {}
            }
            i += 1 + match value {
                Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
                _ => 1,
            };
        }
        if let (Some(stream), Some(text)) = (stream, text) {
            log.clear();
            let text = text.as_bytes();
            let partial = !text.ends_with(b"\n");
            let text = if partial { text } else { &text[..text.len() - 1] };
            log.extend_from_slice(text);
            result = Some((stream, time, partial));
        }
    }
    json.tape = Some(tape.reset());
    json.input = input;
    result
}

/// Keys a framed batch sets.
#[derive(Clone, Copy, Debug)]
pub struct FrameKeys {
    /// `stream` (stdout / stderr).
    pub stream: Key,
    /// `_error`, for lines not in the format.
    pub error: Key,
}

/// Refills `batch` with the records of `framed`; returns the batch's old chunk and arena
/// buffers, to recycle.
pub fn fill_batch(
    batch: &mut Batch,
    framed: Framed,
    keys: FrameKeys,
    origin: Origin,
) -> (Vec<u8>, Vec<u8>, Vec<Record>) {
    let Framed {
        data,
        arena,
        mut records,
        ..
    } = framed;
    let old_chunk = batch.reset(data, origin);
    let old_arena = batch.swap_arena(arena);
    let mut streams: [Option<Span>; 3] = [None; 3];
    for r in &records {
        let mut event = batch.new_event(r.message);
        event.timestamp = r.timestamp;
        if r.stream != Stream::None {
            let span = *streams[r.stream as usize].get_or_insert_with(|| {
                batch.push_arena(if r.stream == Stream::Stdout {
                    b"stdout"
                } else {
                    b"stderr"
                })
            });
            event.set(keys.stream, Value::Str(span));
        }
        if r.cut {
            event.set(Key::CUT, Value::Bool(true));
        }
        if let Some(why) = r.error {
            let span = batch.push_arena(why.as_bytes());
            event.set(keys.error, Value::Str(span));
        }
        batch.push(event);
    }
    records.clear();
    (old_chunk, old_arena, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multiline::MultilineConfig;

    fn chunk(data: &[u8], offset: u64) -> Chunk {
        Chunk {
            data: data.to_vec(),
            offset,
            first_continues_cut: false,
            is_cut_piece: false,
        }
    }

    #[test]
    fn held_from_points_at_the_open_record() {
        let cfg = MultilineConfig {
            start: Some("^S".into()),
            continue_: None,
            end: None,
            preset: None,
            max_lines: 1000,
            max_bytes: crate::units::ByteSize(1 << 20),
            unmatched: Default::default(),
        };
        let mut framer = Framer::new(Format::Raw, Some(cfg.build().unwrap()), LineOptions::default());
        let mut out = Framed::default();
        framer.frame(chunk(b"S1\n a\nS2\n b\n", 100), &mut out);
        assert_eq!(out.records.len(), 1);
        // `S2` opened at 100 + 6 and is still open.
        assert_eq!(framer.held_from(), Some(106));
        framer.frame(chunk(b" c\nS3\n", 112), &mut out);
        assert_eq!(framer.held_from(), Some(115));
        framer.finish(&mut out);
        assert_eq!(framer.held_from(), None);
    }

    #[test]
    fn held_from_covers_cri_partials() {
        let mut framer = Framer::new(Format::Cri, None, LineOptions::default());
        let mut out = Framed::default();
        let p = b"2024-01-01T00:00:00Z stdout P part1\n";
        framer.frame(chunk(p, 0), &mut out);
        assert!(out.records.is_empty());
        assert_eq!(framer.held_from(), Some(0));
        framer.frame(chunk(b"2024-01-01T00:00:00Z stdout F end\n", p.len() as u64), &mut out);
        assert_eq!(out.records.len(), 1);
        assert_eq!(framer.held_from(), None);
    }
}
