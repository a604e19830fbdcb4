//! Output encoders: JSON lines and raw lines. They write spans straight from the batch
//! into the output buffer; nothing is built per event.
//!
//! JSON strings are escaped like serde_json does (`\"`, `\\`, `\b \f \n \r \t`, other
//! control bytes as `\u00XX`). Bytes that are not valid UTF-8 are replaced by U+FFFD, one
//! per maximal invalid sequence (the rule of `String::from_utf8_lossy`), so the output is
//! always valid JSON.

use std::sync::Arc;

use crate::model::{Batch, Event, Key, KeyTable, Value, key_at};

/// Which events of a batch an output gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Route {
    /// The live events, whatever their route (every output of a pipeline with no
    /// dead-letter output, for tools that show one output).
    #[default]
    Main,
    /// The live events not routed elsewhere: those with no route ([`Event::route`] 0) and
    /// those routed to this output, the pipeline's output number `n - 1`.
    Output(u16),
    /// The events a processor routed to the dead-letter output.
    DeadLetter,
}

/// Encodes events of a batch, appending to `out`.
pub trait Encoder: Send {
    /// Appends every live event of `batch` to `out`.
    fn encode(&mut self, batch: &Batch, out: &mut Vec<u8>) {
        self.encode_route(batch, Route::Main, out)
    }

    /// Appends the events of `batch` that `route` selects to `out`.
    fn encode_route(&mut self, batch: &Batch, route: Route, out: &mut Vec<u8>);

    /// Appends a chunk of whole lines straight from its bytes, as the batch of one plain
    /// event per line that `split_lines` would make of it (no processors ran) would be
    /// encoded: same output, without making the events. Returns the number of events, or
    /// `None` (and `out` unchanged) when the chunk needs the general path: its last byte is
    /// not `\n`, or a line is longer than `max_line_bytes`. `fields` are set on every event
    /// after its message (a source's constant fields, such as an exec input's `stream`).
    fn encode_plain_lines(
        &mut self,
        chunk: &[u8],
        max_line_bytes: usize,
        fields: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        let _ = (chunk, max_line_bytes, fields, out);
        None
    }
}

/// The events of `batch` that `route` selects.
pub fn routed(batch: &Batch, route: Route) -> impl Iterator<Item = &Event> + '_ {
    // One filter (the route's test is the same for every event: predicted), not a boxed
    // iterator per route, whose call per event was about 1 % of a parsed-lines run.
    batch.events().iter().filter(move |e| match route {
        Route::Main => e.is_live(),
        Route::Output(n) => e.is_live() && (e.route() == 0 || e.route() == n),
        Route::DeadLetter => e.is_dead_letter() && !e.is_dropped(),
    })
}

/// One JSON object per event, one per line. The event time, when known, comes first as
/// `timestamp` (RFC 3339, UTC); then the fields in order.
#[derive(Debug)]
pub struct JsonEncoder {
    keys: Arc<KeyTable>,
    /// `,"name":` for each key id seen so far, escaped once.
    prefixes: Vec<Prefix>,
    timestamp_key: Option<Key>,
}

/// A field's `,"name":`, followed by zeros so that it can be copied in whole 16-byte
/// blocks from its first or its second byte (the first field has no comma): a fixed-size
/// copy is one vector move, where a `memcpy` call of a few bytes cost more than the rest
/// of the field on short values.
#[derive(Debug)]
struct Prefix {
    padded: Box<[u8]>,
    len: usize,
}

impl Prefix {
    fn new(name: &str) -> Prefix {
        let mut bytes = vec![b','];
        write_json_str(&mut bytes, name.as_bytes());
        bytes.push(b':');
        let len = bytes.len();
        bytes.resize(len.next_multiple_of(16) + 16, 0);
        Prefix {
            padded: bytes.into_boxed_slice(),
            len,
        }
    }

    /// Appends the prefix, without its comma when `first`.
    #[inline(always)]
    fn write(&self, out: &mut Vec<u8>, first: bool) {
        let from = usize::from(first);
        let len = self.len - from;
        if len <= 16 {
            // Most names: one block, without the loop below (a loop of one turn cost more
            // than the copy).
            out.reserve(16);
            let at = out.len();
            // SAFETY: `padded` holds at least `from + 16` bytes (its length is `len` rounded
            // up to 16, plus 16), the capacity 16 more bytes (reserved above); only the
            // first `len` bytes written count, and they are the prefix's.
            unsafe {
                std::ptr::copy_nonoverlapping(self.padded.as_ptr().add(from), out.as_mut_ptr().add(at), 16);
                out.set_len(at + len);
            }
            return;
        }
        let blocks = len.div_ceil(16);
        out.reserve(blocks * 16);
        let at = out.len();
        // SAFETY: `padded` holds `from + 16 * blocks` bytes (its length is `len` rounded up
        // to 16, plus 16), the capacity holds `16 * blocks` more bytes (reserved above), and
        // the two do not overlap. Only the first `len` bytes written count; they are the
        // prefix's.
        unsafe {
            let src = self.padded.as_ptr().add(from);
            let dst = out.as_mut_ptr().add(at);
            for k in 0..blocks {
                std::ptr::copy_nonoverlapping(src.add(16 * k), dst.add(16 * k), 16);
            }
            out.set_len(at + len);
        }
    }
}

impl JsonEncoder {
    /// An encoder resolving field names through `keys`.
    pub fn new(keys: Arc<KeyTable>) -> JsonEncoder {
        JsonEncoder {
            keys,
            prefixes: Vec::new(),
            timestamp_key: None,
        }
    }

    fn refresh(&mut self, key: Key) {
        while self.prefixes.len() <= key.index() {
            let id = self.prefixes.len();
            let name = self.keys.name(key_at(id));
            if &*name == "timestamp" {
                self.timestamp_key = Some(key_at(id));
            }
            self.prefixes.push(Prefix::new(&name));
        }
    }

    fn encode_event(&mut self, batch: &Batch, event: &Event, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        if let Some(ts) = event.timestamp {
            out.extend_from_slice(b"\"timestamp\":\"");
            write_rfc3339(out, ts);
            out.push(b'"');
            first = false;
        }
        for field in event.fields() {
            if self.prefixes.len() <= field.key.index() {
                self.refresh(field.key);
            }
            if event.timestamp.is_some() && Some(field.key) == self.timestamp_key {
                continue;
            }
            self.prefixes[field.key.index()].write(out, first);
            first = false;
            write_value(out, batch, field.value);
        }
        out.extend_from_slice(b"}\n");
    }
}

impl Encoder for JsonEncoder {
    fn encode_route(&mut self, batch: &Batch, route: Route, out: &mut Vec<u8>) {
        out.reserve(batch.chunk().len() + batch.len() * 16);
        for event in routed(batch, route) {
            self.encode_event(batch, event, out);
        }
    }

    fn encode_plain_lines(
        &mut self,
        chunk: &[u8],
        max_line_bytes: usize,
        fields: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        let mut close = Vec::new();
        for (name, value) in fields {
            close.push(b',');
            write_json_str(&mut close, name.as_bytes());
            close.push(b':');
            write_json_str(&mut close, value.as_bytes());
        }
        close.extend_from_slice(b"}\n");
        encode_plain_lines_json(chunk, max_line_bytes, &close, out)
    }
}

/// [`Encoder::encode_plain_lines`] for JSON lines: `{"message":"<line>"<close>` per line
/// (`close`: the constant fields, then `}\n`), in one pass of the string escaper over the
/// whole chunk (a line end is one more byte it stops at). Measured on nginx lines: the
/// per-event work it skips (making events, the field loop, a call per string) was about a
/// seventh of a passthrough run's CPU.
pub fn encode_plain_lines_json(chunk: &[u8], max_line_bytes: usize, close: &[u8], out: &mut Vec<u8>) -> Option<u64> {
    if chunk.last().is_some_and(|&b| b != b'\n') {
        return None;
    }
    const OPEN: &[u8] = b"{\"message\":\"";
    let start_len = out.len();
    out.reserve(chunk.len() + chunk.len() / 8 + SLACK);
    let mut w = Writer { out, len: start_len };
    let mut events = 0;
    let mut i = 0;
    while i < chunk.len() {
        let line_start = i;
        w.extend(OPEN);
        let line_end = loop {
            // The chunk ends with `\n`: a byte to stop at always comes.
            i += w.copy_clean(chunk, i);
            match chunk[i] {
                b'\n' => break i,
                // `\r\n` ends a line; a lone `\r` is escaped like any control byte.
                b'\r' if chunk[i + 1] == b'\n' => {
                    i += 1;
                    break i - 1;
                }
                // Quotes are most of the escapes in access logs: inline.
                b @ (b'"' | b'\\') => {
                    w.extend(&[b'\\', b]);
                    i += 1;
                }
                _ => i = w.escape(chunk, i),
            }
        };
        if line_end - line_start > max_line_bytes {
            // Cut into flagged pieces: the general path's job.
            // SAFETY: `out[..start_len]` was initialized before this call.
            unsafe { w.out.set_len(start_len) };
            return None;
        }
        w.extend(b"\"");
        w.extend(close);
        i += 1;
        events += 1;
    }
    let len = w.len;
    // SAFETY: every byte of `out[..len]` was written (see `Writer`).
    unsafe { w.out.set_len(len) };
    Some(events)
}

/// Appends `value` as JSON. Inlined, with the short path of [`write_json_str`], into the
/// encoder's loop over fields: without the two calls per field an apache-lines run takes
/// 6 % fewer instructions (callgrind).
#[inline(always)]
pub fn write_value(out: &mut Vec<u8>, batch: &Batch, value: Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Value::Float(f) if f.is_finite() => out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes()),
        Value::Float(_) => out.extend_from_slice(b"null"),
        Value::Str(span) => write_json_str_in(out, batch.buffer(span.buf()), span.start(), span.len()),
        Value::Json(span) => out.extend_from_slice(batch.bytes(span)),
    }
}

/// [`write_json_str`] of `buf[start..start + len]`. A string of at most 16 bytes with 16
/// bytes of `buf` from its start (most values of parsed lines: the line goes on after
/// them) is checked and copied as one 16-byte block: one vector compare finds a byte to
/// escape, where the word tests of [`write_short_clean`] took about 50 instructions.
#[inline(always)]
fn write_json_str_in(out: &mut Vec<u8>, buf: &[u8], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len <= 16 && start + 16 <= buf.len() {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            _mm_storeu_si128,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline. The load reads `buf[start..start +
        // 16]` (checked above). The store writes 16 bytes at `at + 1`, inside the capacity
        // reserved for `len + 2 + SLACK` more bytes (SLACK is 16); the length then covers
        // only the quotes and the `len` bytes of the string, all written.
        unsafe {
            let v = _mm_loadu_si128(buf.as_ptr().add(start) as *const __m128i);
            // Signed compare: bytes >= 0x80 are negative, so "< 0x20" flags them too.
            let hits = _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                ),
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
            );
            if (_mm_movemask_epi8(hits) as u32) & ((1u32 << len) - 1) == 0 {
                out.reserve(len + 2 + SLACK);
                let at = out.len();
                let p = out.as_mut_ptr().add(at);
                *p = b'"';
                _mm_storeu_si128(p.add(1) as *mut __m128i, v);
                *p.add(1 + len) = b'"';
                out.set_len(at + len + 2);
                return;
            }
        }
    }
    write_json_str(out, &buf[start..start + len]);
}

/// The `message` field's bytes, one event per line. An event without `message` is
/// written as the raw line it was read from.
#[derive(Debug, Default)]
pub struct RawEncoder;

impl Encoder for RawEncoder {
    fn encode_route(&mut self, batch: &Batch, route: Route, out: &mut Vec<u8>) {
        out.reserve(batch.chunk().len() + batch.len());
        for event in routed(batch, route) {
            match event.get(Key::MESSAGE) {
                Some(Value::Str(span)) | Some(Value::Json(span)) => out.extend_from_slice(batch.bytes(span)),
                Some(other) => write_value(out, batch, other),
                None => out.extend_from_slice(batch.bytes(event.raw())),
            }
            out.push(b'\n');
        }
    }

    /// The chunk as it is, when its lines end in `\n` alone and none is too long (fields
    /// are not in raw output).
    fn encode_plain_lines(
        &mut self,
        chunk: &[u8],
        max_line_bytes: usize,
        _fields: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        if chunk.last().is_some_and(|&b| b != b'\n') || memchr::memchr(b'\r', chunk).is_some() {
            return None;
        }
        let mut events = 0;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if nl - start > max_line_bytes {
                return None;
            }
            start = nl + 1;
            events += 1;
        }
        out.extend_from_slice(chunk);
        Some(events)
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that needs attention: `"`, `\`, a control byte or a
/// non-ASCII byte. Borrows only run upwards, so the lowest flagged byte is always a real
/// one (bytes above it may be false positives; the caller rescans from there).
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    let control = w.wrapping_sub(LO * 0x20);
    let quote = w ^ (LO * b'"' as u64);
    let backslash = w ^ (LO * b'\\' as u64);
    ((control & !w) | (quote.wrapping_sub(LO) & !quote) | (backslash.wrapping_sub(LO) & !backslash) | w) & HI
}

/// Index of the first byte in `s[from..]` that is `"`, `\`, a control byte or non-ASCII
/// (`s.len()` if none), 8 bytes a step (SWAR). x86_64 scans 16 at a time inside
/// [`write_json_str`]; this is the tail and the portable path.
#[inline]
fn find_special_swar(s: &[u8], mut from: usize) -> usize {
    while from + 8 <= s.len() {
        let w = u64::from_le_bytes(s[from..from + 8].try_into().expect("8 bytes"));
        let hit = special_bytes(w);
        if hit != 0 {
            return from + (hit.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < s.len() && !is_special(s[from]) {
        from += 1;
    }
    from
}

#[inline(always)]
fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b >= 0x80
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string (quotes included). See the module docs for the rules.
///
/// The bytes go straight into `out`'s spare capacity: on x86_64, 16 input bytes are loaded,
/// stored to the output unconditionally, and checked for a byte that needs escaping; the
/// output advances past the clean ones only. Clean text is thus copied with one vector store
/// per 16 bytes instead of a `memcpy` call per stretch between escapes (measured: about 2x
/// on nginx lines, whose quotes split every line into several stretches).
#[inline(always)]
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    // Room for the quotes, the text as is, and one block store past it; an escape checks
    // for its own extra room.
    out.reserve(s.len() + 2 + SLACK);
    if s.len() <= 16 && write_short_clean(out, s) {
        return;
    }
    write_json_str_long(out, s);
}

/// [`write_json_str`] for a string longer than 16 bytes or one to escape; `out` has room
/// for `s.len() + 2 + SLACK` more bytes. Out of line: the short clean string, most values
/// of parsed lines, is written in its caller's loop, without a call.
#[inline(never)]
fn write_json_str_long(out: &mut Vec<u8>, s: &[u8]) {
    let mut w = Writer { out, len: 0 };
    w.len = w.out.len();
    w.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let clean = w.copy_clean(s, i);
        i += clean;
        if i == s.len() {
            break;
        }
        i = w.escape(s, i);
    }
    w.push(b'"');
    let len = w.len;
    // SAFETY: every byte of `out[..len]` was written above (see `Writer`).
    unsafe { out.set_len(len) };
}

/// Spare capacity a block store may write past the text (discarded: `len` does not move).
const SLACK: usize = 16;

/// Appends `"s"` when `s` (at most 16 bytes) needs no escaping, and returns true; returns
/// false, `out` unchanged, when it does. Most values of parsed log lines are short (an
/// address, a status, a method): two overlapping word loads cover the whole value, one
/// check says it is clean, and two word stores write it, with no loop and no `memcpy`
/// call. The caller reserved `s.len() + 2` bytes.
#[inline(always)]
fn write_short_clean(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let n = s.len();
    debug_assert!(n <= 16 && out.capacity() - out.len() >= n + 2);
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes")));
    // Every byte of `s` is in `a` or `b`, and every byte of them is a byte of `s` (a
    // padding byte would be taken for a control byte).
    let (a, b) = match n {
        8.. => (word(0), word(n - 8)),
        4..=7 => {
            let w = half(0) | half(n - 4) << 32;
            (w, w)
        }
        1..=3 => {
            let w = u64::from_le_bytes([s[0], s[n / 2], s[n - 1], s[0], s[0], s[0], s[0], s[0]]);
            (w, w)
        }
        0 => (LO, LO),
    };
    if special_bytes(a) | special_bytes(b) != 0 {
        return false;
    }
    let len = out.len();
    // SAFETY: the capacity holds `n + 2` more bytes (the caller reserved them); each store
    // below writes inside `out[len..len + n + 2]`, and together they write all of it.
    unsafe {
        let p = out.as_mut_ptr().add(len);
        *p = b'"';
        match n {
            8.. => {
                std::ptr::write_unaligned(p.add(1) as *mut u64, a.to_le());
                std::ptr::write_unaligned(p.add(1 + n - 8) as *mut u64, b.to_le());
            }
            4..=7 => {
                std::ptr::write_unaligned(p.add(1) as *mut u32, (a as u32).to_le());
                std::ptr::write_unaligned(p.add(1 + n - 4) as *mut u32, ((a >> 32) as u32).to_le());
            }
            1..=3 => {
                *p.add(1) = s[0];
                *p.add(1 + n / 2) = s[n / 2];
                *p.add(n) = s[n - 1];
            }
            0 => {}
        }
        *p.add(n + 1) = b'"';
        out.set_len(len + n + 2);
    }
    true
}

/// Writes into a `Vec`'s spare capacity. Invariant: `len <= out.capacity()`, every byte of
/// `out[..len]` is initialized, and before each write the capacity holds what it writes.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    len: usize,
}

impl Writer<'_> {
    #[inline(always)]
    fn push(&mut self, b: u8) {
        if self.len == self.out.capacity() {
            self.grow(1);
        }
        // SAFETY: `len < capacity` (checked above).
        unsafe { *self.out.as_mut_ptr().add(self.len) = b };
        self.len += 1;
    }

    #[inline(always)]
    fn extend(&mut self, bytes: &[u8]) {
        if self.out.capacity() - self.len < bytes.len() {
            self.grow(bytes.len());
        }
        // SAFETY: the capacity holds `bytes.len()` more bytes (checked above); the regions
        // do not overlap (`bytes` is not in `out`'s spare capacity).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.out.as_mut_ptr().add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    #[cold]
    fn grow(&mut self, more: usize) {
        // SAFETY: `out[..len]` is initialized (the invariant); `reserve` keeps it.
        unsafe { self.out.set_len(self.len) };
        self.out.reserve(more + SLACK);
    }

    /// Copies the bytes of `s[from..]` that need no escaping, up to the first that does (or
    /// the end); returns how many.
    #[inline(always)]
    fn copy_clean(&mut self, s: &[u8], from: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
                _mm_set1_epi8, _mm_storeu_si128,
            };
            let mut i = from;
            // SAFETY: SSE2 is part of the x86_64 baseline. Each load reads 16 bytes inside
            // `s` (`i + 16 <= s.len()`). Each store writes 16 bytes at `len`, inside the
            // capacity: checked before the loop and after every advance (a clean block
            // advances input and output alike, so the room that was there for the input's
            // rest, plus SLACK, stays there). The tail's load reads `s[len - 16..]`; its
            // store starts `i - back` bytes before `len`, over output this call wrote from
            // `s[back..i]` (clean bytes copied as they are, as `back >= from`), so it
            // rewrites them unchanged and ends `s.len() - i` bytes past `len`, in the room.
            unsafe {
                let quote = _mm_set1_epi8(b'"' as i8);
                let backslash = _mm_set1_epi8(b'\\' as i8);
                let space = _mm_set1_epi8(0x20);
                if self.out.capacity() - self.len < s.len() - i + SLACK {
                    self.grow(s.len() - i);
                }
                let base = self.out.as_mut_ptr();
                while i + 16 <= s.len() {
                    let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
                    _mm_storeu_si128(base.add(self.len) as *mut __m128i, v);
                    // Signed compare: bytes >= 0x80 are negative, so "< 0x20" flags them too.
                    let hits = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                        _mm_cmplt_epi8(v, space),
                    );
                    let mask = _mm_movemask_epi8(hits) as u32;
                    if mask != 0 {
                        let n = mask.trailing_zeros() as usize;
                        self.len += n;
                        return i + n - from;
                    }
                    i += 16;
                    self.len += 16;
                }
                // The tail: the last sixteen bytes of `s`, when they do not reach back
                // before `from` (their output would overwrite what came before), are
                // stored again over the output of those already copied, and checked;
                // the bytes before `i` are known clean, so the mask is shifted past them.
                if i < s.len() && s.len() >= 16 && s.len() - 16 >= from {
                    let back = s.len() - 16;
                    let v = _mm_loadu_si128(s.as_ptr().add(back) as *const __m128i);
                    let done = i - back;
                    _mm_storeu_si128(base.add(self.len - done) as *mut __m128i, v);
                    let hits = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                        _mm_cmplt_epi8(v, space),
                    );
                    let mask = (_mm_movemask_epi8(hits) as u32) >> done;
                    let n = if mask == 0 {
                        s.len() - i
                    } else {
                        mask.trailing_zeros() as usize
                    };
                    self.len += n;
                    return i + n - from;
                }
            }
            let rest = find_special_swar(s, i);
            self.extend(&s[i..rest]);
            rest - from
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let at = find_special_swar(s, from);
            self.extend(&s[from..at]);
            at - from
        }
    }

    /// Writes the escape for the special byte at `s[at]` (a character, or a replacement for
    /// invalid UTF-8); returns where the input goes on.
    fn escape(&mut self, s: &[u8], at: usize) -> usize {
        let b = s[at];
        match b {
            b'"' => self.extend(b"\\\""),
            b'\\' => self.extend(b"\\\\"),
            b'\n' => self.extend(b"\\n"),
            b'\r' => self.extend(b"\\r"),
            b'\t' => self.extend(b"\\t"),
            0x08 => self.extend(b"\\b"),
            0x0c => self.extend(b"\\f"),
            0x00..=0x1f => self.extend(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]),
            _ => {
                // Non-ASCII: copy one valid UTF-8 character, or replace one maximal invalid
                // sequence. A character is at most 4 bytes long.
                let window = &s[at..(at + 4).min(s.len())];
                let valid = match std::str::from_utf8(window) {
                    Ok(_) => true,
                    Err(e) => e.valid_up_to() > 0,
                };
                if valid {
                    let width = utf8_width(b);
                    self.extend(&s[at..at + width]);
                    return at + width;
                }
                self.extend("\u{FFFD}".as_bytes());
                let bad = std::str::from_utf8(window)
                    .err()
                    .and_then(|e| e.error_len())
                    .unwrap_or(window.len());
                return at + bad;
            }
        }
        at + 1
    }
}

/// Width of the UTF-8 character starting with the valid lead byte `b`.
#[inline]
fn utf8_width(b: u8) -> usize {
    match b {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Appends `nanos` since the Unix epoch as RFC 3339 in UTC, with 0, 3, 6 or 9 fraction
/// digits (as few as represent it exactly), e.g. `2024-05-01T12:00:00.250Z`.
pub fn write_rfc3339(out: &mut Vec<u8>, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut buf = itoa::Buffer::new();
    let year = buf.format(y);
    if (0..1000).contains(&y) {
        out.extend(std::iter::repeat_n(b'0', 4 - year.len()));
    }
    out.extend_from_slice(year.as_bytes());
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    out.push(b'-');
    two(out, m);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, sod / 3600);
    out.push(b':');
    two(out, sod / 60 % 60);
    out.push(b':');
    two(out, sod % 60);
    let (digits, value) = if frac == 0 {
        (0, 0)
    } else if frac.is_multiple_of(1_000_000) {
        (3, frac / 1_000_000)
    } else if frac.is_multiple_of(1_000) {
        (6, frac / 1_000)
    } else {
        (9, frac)
    };
    if digits > 0 {
        out.push(b'.');
        let mut tmp = [b'0'; 9];
        let mut v = value;
        for slot in tmp[..digits].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&tmp[..digits]);
    }
    out.push(b'Z');
}

/// (year, month, day) of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).expect("encoder output is UTF-8")
    }

    fn reference(s: &[u8]) -> String {
        serde_json::to_string(&String::from_utf8_lossy(s)).unwrap()
    }

    #[test]
    fn every_single_byte_matches_serde_json() {
        for b in 0..=255u8 {
            assert_eq!(json(&[b]), reference(&[b]), "byte {b:#04x}");
            // The same byte inside a longer string, at every word position.
            for pad in 0..9 {
                let mut s = vec![b'x'; pad];
                s.push(b);
                s.extend_from_slice(b"tail-of-it");
                assert_eq!(json(&s), reference(&s), "byte {b:#04x} after {pad}");
            }
        }
    }

    #[test]
    fn every_length_with_specials_anywhere_matches_serde_json() {
        // Short values take the two-word path, longer ones the block loop and the
        // overlapping tail: every length up to three blocks, clean or with one or two
        // special bytes at every position, written after text already in the buffer.
        for len in 0..=48usize {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut cases = vec![base.clone()];
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x7f, 0x1f, 0xc3, 0xff] {
                    let mut s = base.clone();
                    s[at] = special;
                    cases.push(s.clone());
                    s[len - 1 - at / 2] = b'"';
                    cases.push(s);
                }
            }
            for s in cases {
                let mut out = b"{\"k\":".to_vec();
                write_json_str(&mut out, &s);
                let want = format!("{{\"k\":{}", reference(&s));
                assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?}");
            }
        }
    }

    #[test]
    fn a_string_inside_a_buffer_is_written_as_alone() {
        // The one-block path reads past the string: special bytes after it must not
        // matter, ones inside must; near the buffer's end it falls back.
        let specials = [b'"', b'\\', b'\n', 0x1f, 0x7f, 0xc3, 0xff];
        for len in 0..=18usize {
            for start in [0, 3, 40 - 16, 40 - len] {
                if start + len > 40 {
                    continue;
                }
                // Clean text for the string, special bytes all around it.
                let buf: Vec<u8> = (0..40)
                    .map(|i| {
                        if (start..start + len).contains(&i) {
                            b'a' + (i % 26) as u8
                        } else {
                            specials[i % specials.len()]
                        }
                    })
                    .collect();
                for at in 0..=len {
                    for special in specials {
                        let mut buf = buf.clone();
                        if at < len {
                            buf[start + at] = special;
                        }
                        let s = &buf[start..start + len];
                        let mut out = b"[".to_vec();
                        write_json_str_in(&mut out, &buf, start, len);
                        let want = format!("[{}", reference(s));
                        assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?} at {start}");
                    }
                }
            }
        }
    }

    #[test]
    fn long_strings_with_a_special_byte_anywhere_match_serde_json() {
        let base: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        for at in 0..base.len() {
            for special in [
                &b"\""[..],
                b"\\",
                b"\n",
                b"\x01",
                "é".as_bytes(),
                "日".as_bytes(),
                b"\xff",
                b"\xe2\x82",
            ] {
                let mut s = base.clone();
                s.splice(at..at + 1, special.iter().copied());
                s.extend_from_slice(&base);
                assert_eq!(json(&s), reference(&s), "at {at}, {special:?}");
            }
        }
    }

    #[test]
    fn block_and_swar_scans_find_every_special_at_every_position() {
        let mut s: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        assert_eq!(find_special_swar(&s, 0), s.len());
        for at in 0..s.len() {
            for b in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
                let keep = s[at];
                s[at] = b;
                for from in [0, at.saturating_sub(3), at] {
                    assert_eq!(find_special_swar(&s, from), at);
                }
                // The block scan inside the encoder, at every alignment of the output.
                for pad in 0..17 {
                    let mut out = vec![b'x'; pad];
                    out.shrink_to_fit();
                    write_json_str(&mut out, &s);
                    assert_eq!(&out[pad..], reference(&s).as_bytes(), "at {at}, byte {b:#x}, pad {pad}");
                }
                s[at] = keep;
            }
        }
    }

    #[test]
    fn utf8_and_invalid_sequences_match_lossy_decoding() {
        let cases: &[&[u8]] = &[
            "héllo wörld ✓ 日本語 🎉".as_bytes(),
            b"\xff\xfe",
            b"ab\xe2\x82",
            b"\xe2\x82\xac\xe2\x28\xa1x",
            b"\xf0\x9f\x98",
            b"\xf0\x9f\x98\x80\x80",
            b"\xc0\xaf\xed\xa0\x80",
            b"quote \" back \\ tab \t nul \x00 del \x7f",
        ];
        for s in cases {
            assert_eq!(json(s), reference(s), "{s:?}");
        }
    }

    #[test]
    fn rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_714_564_800_250_000_000, "2024-05-01T12:00:00.250Z"),
            (951_782_400_000_001_000, "2000-02-29T00:00:00.000001Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
        ];
        for (nanos, want) in cases {
            let mut out = Vec::new();
            write_rfc3339(&mut out, nanos);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    /// The chunk-wide path gives the bytes the per-event path gives, or declines.
    fn check_plain_lines(data: &[u8], max: usize) {
        check_plain_lines_with(data, max, &[]);
        check_plain_lines_with(data, max, &[("stream", "stdout"), ("pod", "we\"ird\n")]);
    }

    /// The same, with constant `fields` on every event.
    fn check_plain_lines_with(data: &[u8], max: usize, fields: &[(&str, &str)]) {
        use crate::line::{Chunk, LineOptions, split_lines};
        let opts = LineOptions {
            max_line_bytes: max,
            skip_empty_lines: false,
        };
        let chunk = Chunk {
            data: data.to_vec(),
            offset: 0,
            first_continues_cut: false,
            is_cut_piece: false,
        };
        let (mut batch, _) = split_lines(chunk, &opts, 0, 0);
        let keys = KeyTable::new();
        let values: Vec<(Key, Value)> = fields
            .iter()
            .map(|(k, v)| (keys.intern(k), Value::Str(batch.push_arena(v.as_bytes()))))
            .collect();
        for event in batch.parts_mut().1 {
            for (k, v) in &values {
                event.set(*k, *v);
            }
        }
        for (name, mut enc) in [
            ("json", Box::new(JsonEncoder::new(keys.clone())) as Box<dyn Encoder>),
            ("raw", Box::new(RawEncoder)),
        ] {
            let mut general = b"prefix".to_vec();
            enc.encode(&batch, &mut general);
            let mut fast = b"prefix".to_vec();
            match enc.encode_plain_lines(data, max, fields, &mut fast) {
                Some(events) => {
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&general),
                        "{name}: {data:?}"
                    );
                    assert_eq!(fast, general, "{name}: {data:?}");
                    assert_eq!(events, batch.len() as u64, "{name}");
                }
                None => {
                    assert_eq!(fast, b"prefix", "{name}: declined but wrote");
                    let too_long = data.split(|&b| b == b'\n').any(|l| l.len() > max);
                    assert!(
                        data.last() != Some(&b'\n') || too_long || (name == "raw" && data.contains(&b'\r')),
                        "{name} declined {data:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn plain_lines_fast_path_matches_the_event_path() {
        for data in [
            &b""[..],
            b"\n",
            b"a\n",
            b"a\r\nb\n\n",
            b"lone\rcr\n",
            b"\r\n",
            b"x\r",
            b"GET \"/a\\b\" \x01\x1f tab\there\n",
            b"caf\xc3\xa9 \xe2\x82\n\xff\xfe\n",
            b"no newline at the end",
            b"0123456789abcdef0123456789abcdef0123\"56789\n",
        ] {
            check_plain_lines(data, 1 << 20);
            check_plain_lines(data, 8);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]
        #[test]
        fn plain_lines_fast_path_matches_on_any_bytes(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                &b"\n"[..], b"\r", b"\r\n", b"\"", b"\\", b"\x00", b"\x7f", b"\xc3\xa9", b"\xe2\x82", b"\xff",
                b"abcdefghijklmnopqrstuvwxyz0123456789", b" ", b"\t",
            ]), 0..40),
            max in 1usize..64,
        ) {
            let data: Vec<u8> = parts.concat();
            check_plain_lines(&data, max);
            check_plain_lines(&data, 1 << 20);
        }
    }
}
