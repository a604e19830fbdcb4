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
//! - `docker` (json-file): `{"log":"...","stream":"stdout","time":"..."}`; see below for
//!   which pieces are joined.
//!
//! Each stream (stdout, stderr) has its own partial and multiline state, so the two never
//! interleave inside a record.
//!
//! # Docker's partial lines
//!
//! Docker's json-file logger reads a container's output into a 16 KiB buffer and writes a
//! `log` without its final `\n` in exactly two cases: the buffer filled before a newline
//! came (the line goes on in the next pieces, all with the first piece's `time`), or the
//! stream closed (the container ended; nothing follows until it restarts, and then as a
//! new message). So a piece whose `log` lacks the `\n` is joined with what follows on its
//! stream only when it is a full buffer, [`DOCKER_PIECE_BYTES`] or longer (longer when
//! Docker wrote invalid UTF-8 as U+FFFD); a shorter one is a whole message. Joining every
//! piece without a newline (Fluent Bit's rule) would glue a container's last words to the
//! first line of its next run.
//!
//! # Judged, not guessed
//!
//! What does not fit the format is kept, marked with `_error` ([`Record::error`]) and
//! counted ([`FrameStats`]); nothing is dropped and no value is made up:
//! - a line that is not in the format (not JSON, no `log` string, a `stream` other than
//!   stdout/stderr; a CRI line without its stream or `P`/`F` tag) becomes a record of its
//!   own, the whole line (`format_errors`);
//! - a line whose time is missing, empty, not a string or not an RFC 3339 timestamp keeps
//!   its message and stream, with no timestamp (`bad_times`);
//! - a message whose pieces stop before the last one (a line not in the format comes in
//!   between: it ends every open message, as in Fluent Bit; the input ends, or a followed
//!   file stays quiet for `flush_timeout`) goes out as it is (`unfinished_messages`);
//! - a message joined past `max_line_bytes` goes out in pieces of `max_line_bytes`, each
//!   flagged `_cut`, as a long raw line does (`lines_cut`), so joining holds at most
//!   `max_line_bytes` plus one piece per stream.

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
    /// What is wrong with it, for `_error`: its line is not in the source's format, its
    /// time is missing or bad, or its container message ended before its last piece. The
    /// first problem found when several apply.
    pub error: Option<&'static str>,
    /// Where its own fields start in [`Framed::fields`] (one value per name of
    /// [`Framed::field_names`]), for sources that give each record some (a Kafka message's
    /// offset and key); `None` for most.
    pub fields: Option<u32>,
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
    /// Names of the records' own fields ([`Record::fields`]).
    pub field_names: Vec<&'static str>,
    /// Their values (strings in the arena).
    pub fields: Vec<Value>,
}

/// What framing saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Records made.
    pub records: u64,
    /// Lines, and container messages joined from pieces, longer than `max_line_bytes`, cut.
    pub lines_cut: u64,
    /// Empty lines skipped.
    pub empty_skipped: u64,
    /// Records closed by `max_lines` or `max_bytes`.
    pub records_cut: u64,
    /// Lines outside records that `unmatched: discard` dropped.
    pub unmatched_discarded: u64,
    /// Lines that are not in the source's format.
    pub format_errors: u64,
    /// Container lines whose time is missing or not an RFC 3339 timestamp (kept without
    /// a timestamp, marked).
    pub bad_times: u64,
    /// Container messages that ended before their last piece came (kept, marked).
    pub unfinished_messages: u64,
}

/// The size of Docker's json-file buffer: a `log` this long without a final `\n` is the
/// start of a longer line. See the module docs.
pub const DOCKER_PIECE_BYTES: usize = 16 << 10;

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
    error: Option<&'static str>,
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
    /// The first problem among the pieces joined so far.
    partial_error: Option<&'static str>,
    /// The message was cut (a piece line by `max_line_bytes`, or the joined bytes): every
    /// record it still makes is flagged.
    partial_cut: bool,
    /// The joined bytes passed `max_line_bytes` (counted once per message).
    partial_over: bool,
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
    error: Option<&'static str>,
}

/// One container line's content, as parsed.
struct Piece<'a> {
    content: &'a [u8],
    /// Its chunk range, when the content is the chunk's bytes as they are (CRI).
    range: Option<(usize, usize)>,
    stream: Stream,
    time: Option<i64>,
    /// More pieces of the same message follow on this stream.
    partial: bool,
    /// The line was cut by `max_line_bytes`.
    cut: bool,
    /// What is wrong with the line (its time).
    error: Option<&'static str>,
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
            fields: None,
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

    /// What framing saw so far (since the last [`Framer::take_stats`]).
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// What framing saw since the last take, and zero from now: for a long-lived source
    /// whose counters must reach the metrics while it is read.
    pub fn take_stats(&mut self) -> FrameStats {
        std::mem::take(&mut self.stats)
    }

    /// Frames `chunk` into `out` (whose buffers are reused). Records still open at the end
    /// are kept for the next chunk.
    pub fn frame(&mut self, chunk: Chunk, out: &mut Framed) {
        out.data = chunk.data;
        out.offset = chunk.offset;
        self.chunk_offset = chunk.offset;
        out.arena.clear();
        out.records.clear();
        out.fields.clear();
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

    /// End of input: closes every open record into `out` (with no chunk bytes). A
    /// container message still waiting for pieces goes out as it is, marked unfinished.
    pub fn finish(&mut self, out: &mut Framed) {
        out.data.clear();
        out.arena.clear();
        out.records.clear();
        out.fields.clear();
        let Framed {
            data, arena, records, ..
        } = out;
        let mut sink = Sink { data, arena, records };
        let why = match self.format {
            Format::Cri => "cri: message without its F line (the input ended or went quiet)",
            _ => "docker: message without its last piece (the input ended or went quiet)",
        };
        self.end_partials(&mut sink, why);
        for stream in [Stream::None, Stream::Stdout, Stream::Stderr] {
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
                    error: None,
                },
            ),
            Format::Cri => match parse_cri(line) {
                Ok(cri) => {
                    let content = (start + cri.content.0, start + cri.content.1);
                    let (time, error) = self.judge_time(cri.time);
                    self.container(
                        sink,
                        Piece {
                            content: &data[content.0..content.1],
                            range: Some(content),
                            stream: cri.stream,
                            time,
                            partial: cri.partial,
                            cut,
                            error,
                        },
                    );
                }
                Err(why) => self.malformed(sink, start, end, cut, why),
            },
            Format::Docker => {
                let mut log = std::mem::take(&mut self.json.log);
                match parse_docker(&mut self.json, line, &mut log) {
                    Ok(d) => {
                        let (time, error) = self.judge_time(d.time);
                        self.container(
                            sink,
                            Piece {
                                content: &log,
                                range: None,
                                stream: d.stream,
                                time,
                                partial: d.partial,
                                cut,
                                error,
                            },
                        );
                    }
                    Err(why) => self.malformed(sink, start, end, cut, why),
                }
                self.json.log = log;
            }
        }
    }

    /// A container line's time: the timestamp, or none and why (counted).
    fn judge_time(&mut self, time: Result<i64, &'static str>) -> (Option<i64>, Option<&'static str>) {
        match time {
            Ok(t) => (Some(t), None),
            Err(why) => {
                self.stats.bad_times += 1;
                (None, Some(why))
            }
        }
    }

    /// A line not in the format: a record of its own, the whole line. It cannot be told
    /// which stream it belongs to, so it ends every message still waiting for pieces
    /// (they may have lost the piece this line was).
    fn malformed(&mut self, sink: &mut Sink<'_>, start: usize, end: usize, cut: bool, why: &'static str) {
        self.stats.format_errors += 1;
        let interrupted = match self.format {
            Format::Cri => "cri: message without its F line (a line not in the format came first)",
            _ => "docker: message without its last piece (a line not in the format came first)",
        };
        self.end_partials(sink, interrupted);
        sink.emit(Parts::Span(start, end), Stream::None, None, cut, Some(why));
    }

    /// Sends every container message still waiting for pieces as it is, marked `why`.
    fn end_partials(&mut self, sink: &mut Sink<'_>, why: &'static str) {
        for stream in [Stream::None, Stream::Stdout, Stream::Stderr] {
            let st = &mut self.streams[stream as usize];
            if !st.partial_open {
                continue;
            }
            st.partial_open = false;
            let bytes = std::mem::take(&mut st.partial);
            let (time, cut) = (st.partial_time.take(), st.partial_cut);
            self.stats.unfinished_messages += 1;
            self.msg_since = st.partial_since;
            self.message(
                sink,
                Msg {
                    bytes: &bytes,
                    range: None,
                    stream,
                    time,
                    cut,
                    // The message is incomplete: that matters more than a bad time.
                    error: Some(why),
                },
            );
            self.streams[stream as usize].partial = bytes;
        }
    }

    /// A container line's content: complete, or a piece joined with the others of its
    /// message (on its stream) and sent when the last comes. The joined bytes never pass
    /// `max_line_bytes`: past it, the message goes out in flagged pieces of that size.
    fn container(&mut self, sink: &mut Sink<'_>, piece: Piece<'_>) {
        let s = piece.stream as usize;
        if !piece.partial && !self.streams[s].partial_open {
            self.message(
                sink,
                Msg {
                    bytes: piece.content,
                    range: piece.range,
                    stream: piece.stream,
                    time: piece.time,
                    cut: piece.cut,
                    error: piece.error,
                },
            );
            return;
        }
        let max = self.opts.max_line_bytes.max(1);
        let st = &mut self.streams[s];
        if !st.partial_open {
            st.partial_open = true;
            st.partial.clear();
            st.partial_time = piece.time;
            st.partial_error = None;
            st.partial_cut = false;
            st.partial_over = false;
            st.partial_since = self.msg_since;
        }
        st.partial_error = st.partial_error.or(piece.error);
        st.partial_cut |= piece.cut;
        st.partial.extend_from_slice(piece.content);
        let mut bytes = std::mem::take(&mut st.partial);
        if bytes.len() > max {
            if !st.partial_over {
                st.partial_over = true;
                st.partial_cut = true;
                self.stats.lines_cut += 1;
            }
            let (time, error, since) = (st.partial_time, st.partial_error, st.partial_since);
            let mut at = 0;
            while bytes.len() - at > max {
                self.msg_since = since;
                self.message(
                    sink,
                    Msg {
                        bytes: &bytes[at..at + max],
                        range: None,
                        stream: piece.stream,
                        time,
                        cut: true,
                        error,
                    },
                );
                at += max;
            }
            bytes.drain(..at);
        }
        let st = &mut self.streams[s];
        if piece.partial {
            st.partial = bytes;
            return;
        }
        st.partial_open = false;
        let (time, cut, error) = (st.partial_time.take(), st.partial_cut, st.partial_error.take());
        self.msg_since = st.partial_since;
        self.message(
            sink,
            Msg {
                bytes: &bytes,
                range: None,
                stream: piece.stream,
                time,
                cut,
                error,
            },
        );
        bytes.clear();
        self.streams[s].partial = bytes;
    }

    /// A complete message: a record, or a line of a multiline record.
    fn message(&mut self, sink: &mut Sink<'_>, msg: Msg<'_>) {
        let Some((rules, caches)) = &mut self.rules else {
            let parts = match msg.range {
                Some((a, b)) => Parts::Span(a, b),
                None => Parts::Owned(msg.bytes.to_vec()),
            };
            sink.emit(parts, msg.stream, msg.time, msg.cut, msg.error);
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
            error: msg.error,
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
        open.error = open.error.or(msg.error);
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
            sink.emit(open.parts, stream, open.time, open.cut, open.error);
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
    time: Result<i64, &'static str>,
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
/// A line whose stream and tag are right but whose time is not keeps its content (the
/// error is in `time`); any other departure makes it not a CRI line.
fn parse_cri(line: &[u8]) -> Result<Cri, &'static str> {
    const NOT_CRI: &str = "cri: not a CRI log line (`<time> <stdout|stderr> <P|F> <message>`)";
    let sp1 = memchr::memchr(b' ', line).ok_or(NOT_CRI)?;
    let time = parse_time(&line[..sp1]).ok_or("cri: time is not an RFC 3339 timestamp");
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest).ok_or(NOT_CRI)?;
    let stream = parse_stream(&rest[..sp2]);
    let rest2 = &rest[sp2 + 1..];
    let tag_end = memchr::memchr(b' ', rest2).unwrap_or(rest2.len());
    let tag = &rest2[..tag_end];
    let partial = match tag.split(|&b| b == b':').next() {
        Some(b"P") => Some(true),
        Some(b"F") => Some(false),
        _ => None,
    };
    let (stream, partial) = match (time.is_ok(), stream, partial) {
        (_, Some(stream), Some(partial)) => (stream, partial),
        // Neither the time nor what follows it: not this format at all.
        (false, _, _) => return Err(NOT_CRI),
        (true, None, _) => return Err("cri: stream is not stdout or stderr"),
        (true, Some(_), None) => return Err("cri: tag is not P or F"),
    };
    let content_start = sp1 + 1 + sp2 + 1 + (tag_end + 1).min(rest2.len());
    Ok(Cri {
        time,
        stream,
        partial,
        content: (content_start, line.len()),
    })
}

/// A json-file line, parsed; its `log` is in the caller's buffer.
struct DockerLine {
    stream: Stream,
    time: Result<i64, &'static str>,
    /// The `log` is a full buffer without its newline: more pieces follow.
    partial: bool,
}

/// Parses a json-file line, unescaping its `log` into `log` (without the final `\n`).
fn parse_docker(json: &mut JsonScratch, line: &[u8], log: &mut Vec<u8>) -> Result<DockerLine, &'static str> {
    let len = line.len();
    let mut input = std::mem::take(&mut json.input);
    input.clear();
    input.extend_from_slice(line);
    input.resize(len + INPUT_PADDING, 0);
    let mut tape = json.tape.take().unwrap_or_else(Tape::null).reset();
    let result = docker_fields(&mut input, len, &mut json.buffers, &mut tape, log);
    json.tape = Some(tape.reset());
    json.input = input;
    result
}

fn docker_fields<'t>(
    input: &'t mut [u8],
    len: usize,
    buffers: &mut Buffers,
    tape: &mut Tape<'t>,
    log: &mut Vec<u8>,
) -> Result<DockerLine, &'static str> {
    const NOT_JSON: &str = "docker: not a JSON object";
    fill_tape_padded(input, len, buffers, tape).map_err(|_| NOT_JSON)?;
    let Some(Node::Object { len: members, .. }) = tape.0.first() else {
        return Err(NOT_JSON);
    };
    // Each is None while absent, then the value's verdict (the last one wins).
    let (mut stream, mut time, mut text) = (None, None, None);
    let mut i = 1;
    for _ in 0..*members {
        let (Node::String(key), value) = (tape.0[i], tape.0[i + 1]) else {
            return Err(NOT_JSON);
        };
        match (key, value) {
            ("log", Node::String(s)) => text = Some(Ok(s)),
            ("log", _) => text = Some(Err("docker: `log` is not a string")),
            ("stream", Node::String(s)) => {
                stream = Some(parse_stream(s.as_bytes()).ok_or("docker: `stream` is not stdout or stderr"))
            }
            ("stream", _) => stream = Some(Err("docker: `stream` is not stdout or stderr")),
            ("time", Node::String(s)) => time = Some(s),
            ("time", _) => time = Some(""),
            _ => {}
        }
        i += 1 + match value {
            Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
            _ => 1,
        };
    }
    let text = text.ok_or("docker: no `log`")??;
    let stream = stream.ok_or("docker: no `stream`")??;
    let time = match time {
        None => Err("docker: no `time`"),
        Some(t) => parse_time(t.as_bytes()).ok_or("docker: `time` is not an RFC 3339 timestamp"),
    };
    let text = text.as_bytes();
    let (text, partial) = match text.strip_suffix(b"\n") {
        Some(line) => (line, false),
        // See the module docs: only a full buffer goes on in the next piece.
        None => (text, text.len() >= DOCKER_PIECE_BYTES),
    };
    log.clear();
    log.extend_from_slice(text);
    Ok(DockerLine { stream, time, partial })
}

/// Keys a framed batch sets.
#[derive(Clone, Copy, Debug)]
pub struct FrameKeys {
    /// `stream` (stdout / stderr).
    pub stream: Key,
    /// `_error`: what is wrong with the record ([`Record::error`]).
    pub error: Key,
}

/// Refills `batch` with the records of `framed`; returns the batch's old chunk and arena
/// buffers, to recycle. `field_keys` are the keys of `framed.field_names`.
pub fn fill_batch(
    batch: &mut Batch,
    framed: Framed,
    keys: FrameKeys,
    field_keys: &[Key],
    origin: Origin,
) -> (Vec<u8>, Vec<u8>, Vec<Record>) {
    let Framed {
        data,
        arena,
        mut records,
        fields,
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
        if let Some(first) = r.fields {
            let values = fields.iter().skip(first as usize);
            for (key, value) in field_keys.iter().zip(values) {
                event.set(*key, *value);
            }
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

    /// What a record says, its bytes resolved.
    #[derive(PartialEq)]
    struct Rec {
        message: String,
        stream: Stream,
        time: Option<i64>,
        cut: bool,
        error: Option<&'static str>,
    }

    impl std::fmt::Debug for Rec {
        /// Long messages as their length and ends, so that a failure stays readable.
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let m = &self.message;
            let message = if m.len() > 60 {
                format!("{}..{} ({} bytes)", &m[..20], &m[m.len() - 20..], m.len())
            } else {
                format!("{m:?}")
            };
            write!(
                f,
                "{message} {:?} {:?} cut={} {:?}",
                self.stream, self.time, self.cut, self.error
            )
        }
    }

    /// Frames `lines`, one chunk per line (so that pieces cross chunks), then finishes;
    /// checks after each chunk that the joined bytes held stay within `max_line_bytes`
    /// plus one piece.
    fn frame_lines(format: Format, max_line_bytes: usize, lines: &[String]) -> (Vec<Rec>, FrameStats) {
        let opts = LineOptions {
            max_line_bytes,
            skip_empty_lines: false,
        };
        let mut framer = Framer::new(format, None, opts);
        let mut out = Framed::default();
        let mut recs = Vec::new();
        let mut offset = 0;
        let collect = |out: &Framed, recs: &mut Vec<Rec>| {
            for r in &out.records {
                let buf = match r.message.buf() {
                    Buf::Chunk => &out.data,
                    _ => &out.arena,
                };
                recs.push(Rec {
                    message: String::from_utf8_lossy(&buf[r.message.start()..r.message.end()]).into_owned(),
                    stream: r.stream,
                    time: r.timestamp,
                    cut: r.cut,
                    error: r.error,
                });
            }
        };
        for line in lines {
            let data = format!("{line}\n");
            framer.frame(chunk(data.as_bytes(), offset), &mut out);
            offset += data.len() as u64;
            collect(&out, &mut recs);
            for st in &framer.streams {
                assert!(
                    st.partial.len() <= max_line_bytes + line.len(),
                    "held {}",
                    st.partial.len()
                );
            }
        }
        framer.finish(&mut out);
        collect(&out, &mut recs);
        (recs, framer.stats())
    }

    fn docker(log: &str, stream: &str, time: &str) -> String {
        format!(
            r#"{{"log":{},"stream":"{stream}","time":{time}}}"#,
            serde_json::to_string(log).unwrap()
        )
    }

    const T0: &str = r#""2026-11-25T10:00:00Z""#;
    const T0_NANOS: i64 = 1_795_600_800_000_000_000;

    fn rec(message: &str, stream: Stream, time: Option<i64>, error: Option<&'static str>) -> Rec {
        Rec {
            message: message.into(),
            stream,
            time,
            cut: false,
            error,
        }
    }

    #[test]
    fn a_docker_time_that_is_not_one_is_marked_and_counted() {
        let lines = [
            r#"{"log":"no time\n","stream":"stdout"}"#.to_string(),
            docker("empty\n", "stdout", r#""""#),
            docker("number\n", "stderr", "1764064800"),
            docker("null\n", "stdout", "null"),
            docker("words\n", "stdout", r#""yesterday""#),
            docker("fine\n", "stdout", T0),
        ];
        let (recs, stats) = frame_lines(Format::Docker, 1 << 20, &lines);
        let bad = Some("docker: `time` is not an RFC 3339 timestamp");
        assert_eq!(
            recs,
            [
                rec("no time", Stream::Stdout, None, Some("docker: no `time`")),
                rec("empty", Stream::Stdout, None, bad),
                rec("number", Stream::Stderr, None, bad),
                rec("null", Stream::Stdout, None, bad),
                rec("words", Stream::Stdout, None, bad),
                rec("fine", Stream::Stdout, Some(T0_NANOS), None),
            ]
        );
        assert_eq!((stats.bad_times, stats.format_errors), (5, 0));
    }

    #[test]
    fn a_docker_line_not_in_the_format_says_which_part_is_wrong() {
        let lines = [
            "[1,2]".to_string(),
            r#"{"stream":"stdout","time":"2026-11-25T10:00:00Z"}"#.into(),
            r#"{"log":7,"stream":"stdout","time":"2026-11-25T10:00:00Z"}"#.into(),
            r#"{"log":"x\n","time":"2026-11-25T10:00:00Z"}"#.into(),
            docker("x\n", "stdin", T0),
        ];
        let (recs, stats) = frame_lines(Format::Docker, 1 << 20, &lines);
        let errors: Vec<_> = recs.iter().map(|r| r.error.unwrap()).collect();
        assert_eq!(
            errors,
            [
                "docker: not a JSON object",
                "docker: no `log`",
                "docker: `log` is not a string",
                "docker: no `stream`",
                "docker: `stream` is not stdout or stderr",
            ]
        );
        assert!(
            recs.iter()
                .zip(&lines)
                .all(|(r, l)| &r.message == l && r.stream == Stream::None)
        );
        assert_eq!((stats.format_errors, stats.bad_times), (5, 0));
    }

    #[test]
    fn docker_joins_full_pieces_only() {
        let a = "a".repeat(DOCKER_PIECE_BYTES);
        let b = "b".repeat(DOCKER_PIECE_BYTES + 2); // U+FFFD for invalid bytes makes a piece longer
        let lines = [
            docker(&a, "stdout", T0),
            docker("short, then the container ended", "stderr", T0),
            docker(&b, "stdout", T0),
            docker("new run\n", "stderr", r#""2026-11-25T10:00:05Z""#),
            docker("end\n", "stdout", r#""2026-11-25T10:00:01Z""#),
        ];
        let (recs, stats) = frame_lines(Format::Docker, 1 << 20, &lines);
        assert_eq!(
            recs,
            [
                rec("short, then the container ended", Stream::Stderr, Some(T0_NANOS), None),
                rec("new run", Stream::Stderr, Some(T0_NANOS + 5_000_000_000), None),
                // The time of the first piece.
                rec(&format!("{a}{b}end"), Stream::Stdout, Some(T0_NANOS), None),
            ]
        );
        assert_eq!(
            stats,
            FrameStats {
                records: 3,
                ..FrameStats::default()
            }
        );
    }

    #[test]
    fn a_line_not_in_the_format_ends_the_open_messages_and_the_end_of_input_too() {
        let a = "a".repeat(DOCKER_PIECE_BYTES);
        let lines = [
            docker(&a, "stdout", T0),
            docker(&a, "stderr", T0),
            "{broken".to_string(),
            docker("rest\n", "stdout", T0),
            docker(&a, "stderr", T0),
        ];
        let (recs, stats) = frame_lines(Format::Docker, 1 << 20, &lines);
        let cut_short = Some("docker: message without its last piece (a line not in the format came first)");
        assert_eq!(
            recs,
            [
                rec(&a, Stream::Stdout, Some(T0_NANOS), cut_short),
                rec(&a, Stream::Stderr, Some(T0_NANOS), cut_short),
                rec("{broken", Stream::None, None, Some("docker: not a JSON object")),
                rec("rest", Stream::Stdout, Some(T0_NANOS), None),
                rec(
                    &a,
                    Stream::Stderr,
                    Some(T0_NANOS),
                    Some("docker: message without its last piece (the input ended or went quiet)")
                ),
            ]
        );
        assert_eq!((stats.unfinished_messages, stats.format_errors), (3, 1));
    }

    #[test]
    fn a_joined_message_past_max_line_bytes_goes_out_in_flagged_pieces() {
        let max = 20_000;
        let a = "a".repeat(DOCKER_PIECE_BYTES);
        let lines = [
            docker(&a, "stdout", "7"),
            docker(&a, "stdout", T0),
            docker("x\n", "stderr", T0),
            docker(&a, "stdout", T0),
            docker("tail\n", "stdout", T0),
        ];
        let (recs, stats) = frame_lines(Format::Docker, max, &lines);
        let whole = format!("{a}{a}{a}tail");
        let bad = Some("docker: `time` is not an RFC 3339 timestamp");
        let piece = |i: usize| Rec {
            message: whole[i * max..((i + 1) * max).min(whole.len())].to_string(),
            stream: Stream::Stdout,
            // The first piece's time, and its mark, go with every record of the message.
            time: None,
            cut: true,
            error: bad,
        };
        assert_eq!(
            recs,
            [
                piece(0),
                rec("x", Stream::Stderr, Some(T0_NANOS), None),
                piece(1),
                piece(2)
            ]
        );
        assert_eq!(recs.iter().map(|r| r.message.len()).sum::<usize>(), whole.len() + 1);
        assert_eq!((stats.lines_cut, stats.bad_times), (1, 1));
    }

    #[test]
    fn cri_lines_are_judged_part_by_part() {
        let lines = [
            "2026-11-25T10:00:00Z stdout P one ".to_string(),
            "yesterday stdout F two".into(),
            "2026-11-25T10:00:00Z stdin F x".into(),
            "2026-11-25T10:00:00Z stdout X x".into(),
            "not a cri line".into(),
            " stderr F no time".into(),
            "2026-11-25T10:00:00Z stderr P open at the end".into(),
        ];
        let (recs, stats) = frame_lines(Format::Cri, 1 << 20, &lines);
        let bad = Some("cri: time is not an RFC 3339 timestamp");
        assert_eq!(
            recs,
            [
                // The bad time of a later piece marks the message; the first piece's time stays.
                rec("one two", Stream::Stdout, Some(T0_NANOS), bad),
                rec(
                    &lines[2],
                    Stream::None,
                    None,
                    Some("cri: stream is not stdout or stderr")
                ),
                rec(&lines[3], Stream::None, None, Some("cri: tag is not P or F")),
                rec(
                    &lines[4],
                    Stream::None,
                    None,
                    Some("cri: not a CRI log line (`<time> <stdout|stderr> <P|F> <message>`)")
                ),
                rec("no time", Stream::Stderr, None, bad),
                rec(
                    "open at the end",
                    Stream::Stderr,
                    Some(T0_NANOS),
                    Some("cri: message without its F line (the input ended or went quiet)")
                ),
            ]
        );
        assert_eq!(
            (stats.bad_times, stats.format_errors, stats.unfinished_messages),
            (2, 3, 1)
        );
    }
}
