//! `parse_delimiter`: splits a CSV-like value into named columns.
//!
//! Columns are separated by `separator` (one or more bytes). A column that starts with
//! `quote` runs to the matching closing quote and may hold separators; a doubled quote
//! inside it stands for one quote. Values are sub-spans of the input (zero copy); only a
//! quoted value with doubled quotes is rewritten, into the arena, once per event.
//! The separator search (`Needle`) and the buffer of unescaped values (`Scratch`) are
//! shared with `parse_kv`.
//!
//! ```text
//! keys: [ip, user, msg]        10.0.0.1,bob,"said ""hi"", left"
//!                          ->  {"ip":"10.0.0.1","user":"bob","msg":"said \"hi\", left"}
//! ```

use std::sync::Arc;

use memchr::memmem::Finder;
use serde::Deserialize;

use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed, default_field};
use crate::model::{Buf, Bufs, Key, KeyTable, Span, Value};
use crate::processors::BuildError;

/// What to do with the columns past the last of `keys`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Each extra column becomes a field `_column{N}`, N its 1-based position in the line
    /// (`a,b,c` with keys `[x, y]` gives `_column3: c`).
    #[default]
    Extend,
    /// The last key gets the rest of the line, raw, from the start of its own column
    /// (quotes and separators as they are): a fixed head and a free-form tail, e.g.
    /// `keys: [time, level, message]` over `t,INFO,disk full, retrying`.
    Keep,
    /// Extra columns are dropped without being parsed.
    Discard,
}

/// `parse_delimiter`: CSV-like columns to fields.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParseDelimiterConfig {
    /// The field to parse (default `message`).
    #[serde(default = "default_field")]
    pub field: String,
    /// Keep the source field after a successful parse (default `false`).
    #[serde(default)]
    pub keep_source: bool,
    /// What to do with an event that does not parse (default `keep`).
    #[serde(default)]
    pub on_failure: OnFailure,
    /// A field that receives the failure reason.
    #[serde(default)]
    pub error_field: Option<String>,
    /// The column separator: one or more bytes (default `,`), e.g. `"\t"` or `"||"`.
    #[serde(default = "comma")]
    pub separator: String,
    /// The quote: one ASCII character (default `"`), or empty to disable quoting.
    #[serde(default = "double_quote")]
    pub quote: String,
    /// Field names of the columns, in order. A line with fewer columns leaves the
    /// missing keys absent.
    pub keys: Vec<String>,
    /// Columns past the last key (default `extend`).
    #[serde(default)]
    pub overflow: Overflow,
    /// Remove spaces around unquoted values, and between a quoted value and its
    /// separators (default `false`).
    #[serde(default)]
    pub trim: bool,
}

fn comma() -> String {
    ",".to_string()
}

fn double_quote() -> String {
    "\"".to_string()
}

impl ParseDelimiterConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "separator: \"|\"\nkeys: [time, level, user, message]\noverflow: keep\n";

    /// Builds the parser. Takes the table as an `Arc` because `overflow: extend` names
    /// columns (`_column{N}`) as lines bring them, so the parser keeps the table.
    pub fn build(&self, keys: &Arc<KeyTable>) -> Result<FieldParser<DelimiterParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        if self.separator.is_empty() {
            return Err(BuildError("`separator` cannot be empty".into()));
        }
        let quote = quote_byte(&self.quote)?;
        if let Some(q) = quote
            && self.separator.as_bytes().contains(&q)
        {
            return Err(BuildError(format!(
                "`quote` ({:?}) cannot be part of `separator` ({:?})",
                self.quote, self.separator
            )));
        }
        if self.keys.is_empty() {
            return Err(BuildError("`keys` needs at least one field name".into()));
        }
        let mut interned = Vec::with_capacity(self.keys.len());
        for (i, name) in self.keys.iter().enumerate() {
            if name.is_empty() {
                return Err(BuildError(format!("`keys`: name {} is empty", i + 1)));
            }
            if self.keys[..i].contains(name) {
                return Err(BuildError(format!("`keys` names `{name}` twice")));
            }
            interned.push(keys.intern(name));
        }
        // Extra columns are named `_column{N}`: a key of that form could come twice.
        let distinct = self.overflow != Overflow::Extend || !self.keys.iter().any(|k| k.starts_with("_column"));
        let parser = DelimiterParser {
            keys: interned,
            distinct,
            separator: Needle::new(self.separator.as_bytes()),
            quote,
            overflow: self.overflow,
            trim: self.trim,
            table: Arc::clone(keys),
            extra_keys: Vec::new(),
            scratch: Scratch::default(),
        };
        Ok(FieldParser::new("parse_delimiter", parser, common))
    }
}

/// Checks a `quote` setting: empty (no quoting) or one ASCII character.
pub(crate) fn quote_byte(quote: &str) -> Result<Option<u8>, BuildError> {
    match quote.as_bytes() {
        [] => Ok(None),
        [q] if q.is_ascii() => Ok(Some(*q)),
        _ => Err(BuildError(format!(
            "`quote` must be one ASCII character, or empty to disable quoting; got {quote:?}"
        ))),
    }
}

/// Runtime of [`ParseDelimiterConfig`].
#[derive(Debug)]
pub struct DelimiterParser {
    keys: Vec<Key>,
    separator: Needle,
    quote: Option<u8>,
    overflow: Overflow,
    trim: bool,
    table: Arc<KeyTable>,
    /// `_column{N}` for N = keys.len() + 1 + i, interned the first time a line has them.
    extra_keys: Vec<Key>,
    /// No line can give one key twice (see [`FieldParse::distinct_keys`]).
    distinct: bool,
    scratch: Scratch,
}

/// Where a parsed value is: a range of the parsed input (zero copy), or of the
/// [`Scratch`] buffer (unescaped).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell {
    /// Bytes `from..from + len` of the input.
    Input { from: usize, len: usize },
    /// Bytes `from..from + len` of the scratch buffer.
    Scratch { from: usize, len: usize },
}

impl DelimiterParser {
    fn parse_line(&mut self, line: &[u8], input: Span, out: &mut Parsed) -> Result<(), ParseFailure> {
        let n_keys = self.keys.len();
        let separators = match self.separator.bytes() {
            &[b] => Positions::new(line, b),
            _ => None,
        };
        let mut pos = 0;
        let mut column = 0;
        loop {
            if column >= n_keys && self.overflow == Overflow::Discard {
                return Ok(());
            }
            let (cell, next) = self.column(line, pos, separators.as_ref())?;
            let key = if column < n_keys {
                self.keys[column]
            } else {
                self.extra_key(column)?
            };
            if column + 1 == n_keys && next.is_some() && self.overflow == Overflow::Keep {
                let rest = input.slice(pos, line.len() - pos);
                out.push(key, Value::Str(rest));
                return Ok(());
            }
            self.scratch.push_field(out, key, cell, input);
            match next {
                Some(n) => pos = n,
                None => return Ok(()),
            }
            column += 1;
        }
    }

    /// The key of 0-based `column` past the keys: `_column{column + 1}`. Fails when the
    /// key table is full (a line with thousands of columns).
    fn extra_key(&mut self, column: usize) -> Result<Key, ParseFailure> {
        let i = column - self.keys.len();
        while self.extra_keys.len() <= i {
            let n = self.keys.len() + self.extra_keys.len() + 1;
            let key = self
                .table
                .try_intern(&format!("_column{n}"))
                .ok_or(super::TOO_MANY_KEYS)?;
            self.extra_keys.push(key);
        }
        Ok(self.extra_keys[i])
    }

    /// Parses the column that starts at `pos`: its value and where the next column
    /// starts (`None` when this one ends the line). `separators`: where the one-byte
    /// separator is in `line`, when the line is short enough to have them indexed.
    fn column(
        &mut self,
        line: &[u8],
        pos: usize,
        separators: Option<&Positions>,
    ) -> Result<(Cell, Option<usize>), ParseFailure> {
        if let Some(q) = self.quote {
            let at = if self.trim { self.skip_spaces(line, pos) } else { pos };
            if line.get(at) == Some(&q) {
                return self.quoted(line, at, q);
            }
        }
        let found = match separators {
            Some(index) => index.next(pos),
            None => self.separator.find(line, pos),
        };
        let (end, next) = match found {
            Some(s) => (s, Some(s + self.separator.len())),
            None => (line.len(), None),
        };
        let (mut from, mut to) = (pos, end);
        if self.trim {
            while from < to && line[from] == b' ' {
                from += 1;
            }
            while to > from && line[to - 1] == b' ' {
                to -= 1;
            }
        }
        Ok((Cell::Input { from, len: to - from }, next))
    }

    /// A quoted column whose opening quote is at `open`.
    fn quoted(&mut self, line: &[u8], open: usize, q: u8) -> Result<(Cell, Option<usize>), ParseFailure> {
        let body = open + 1;
        // With doubled quotes, the value is copied in pieces to the scratch buffer.
        let mut unescaped: Option<usize> = None;
        let mut piece = body;
        let mut at = body;
        let close = loop {
            let Some(found) = memchr::memchr(q, &line[at..]) else {
                return Err(ParseFailure::fixed("unterminated quote"));
            };
            let found = at + found;
            if line.get(found + 1) == Some(&q) {
                let bytes = self.scratch.bytes_mut();
                unescaped.get_or_insert(bytes.len());
                bytes.extend_from_slice(&line[piece..=found]);
                piece = found + 2;
                at = found + 2;
            } else {
                break found;
            }
        };
        let cell = match unescaped {
            None => Cell::Input {
                from: body,
                len: close - body,
            },
            Some(from) => {
                let bytes = self.scratch.bytes_mut();
                bytes.extend_from_slice(&line[piece..close]);
                Cell::Scratch {
                    from,
                    len: bytes.len() - from,
                }
            }
        };
        let mut after = close + 1;
        if self.trim {
            after = self.skip_spaces(line, after);
        }
        if after == line.len() {
            Ok((cell, None))
        } else if self.separator.is_at(line, after) {
            Ok((cell, Some(after + self.separator.len())))
        } else {
            Err(ParseFailure::fixed(
                "a closing quote must be followed by the separator or the end",
            ))
        }
    }

    /// Skips spaces from `pos`, stopping at a separator (which may itself hold spaces).
    fn skip_spaces(&self, line: &[u8], mut pos: usize) -> usize {
        while pos < line.len() && line[pos] == b' ' && !self.separator.is_at(line, pos) {
            pos += 1;
        }
        pos
    }
}

impl FieldParse for DelimiterParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        self.scratch.clear();
        self.parse_line(bufs.bytes(input), input, out)?;
        self.scratch.flush(bufs, out);
        Ok(())
    }

    fn distinct_keys(&self) -> bool {
        self.distinct
    }
}

/// A separator: one byte (memchr) or several (memmem, searcher built once).
#[derive(Debug, Clone)]
pub(crate) struct Needle {
    finder: Finder<'static>,
}

impl Needle {
    /// A needle of one or more bytes.
    pub(crate) fn new(bytes: &[u8]) -> Needle {
        debug_assert!(!bytes.is_empty());
        Needle {
            finder: Finder::new(bytes).into_owned(),
        }
    }

    /// The needle's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.finder.needle()
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.finder.needle().len()
    }

    /// The first occurrence at or after `from`, as an offset in `hay`.
    pub(crate) fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let rest = &hay[from..];
        match self.bytes() {
            &[b] => memchr::memchr(b, rest),
            _ => self.finder.find(rest),
        }
        .map(|i| from + i)
    }

    /// True when the needle occurs at `at`.
    pub(crate) fn is_at(&self, hay: &[u8], at: usize) -> bool {
        hay[at..].starts_with(self.bytes())
    }
}

/// Where one byte occurs in a line of up to [`Positions::MAX`] bytes, as a bitmap made in
/// one pass of 16-byte compares; each column's end is then the next set bit. A `memchr`
/// call per column cost more than the rest of the column's work on short columns (about
/// 40 instructions each, callgrind on CSV rows of ten-byte columns).
#[derive(Debug)]
pub(crate) struct Positions {
    words: [u64; 4],
}

impl Positions {
    /// The longest line indexed.
    pub(crate) const MAX: usize = 256;

    /// The positions of `b` in `line`; `None` when the line is longer than [`Self::MAX`].
    #[inline]
    pub(crate) fn new(line: &[u8], b: u8) -> Option<Positions> {
        if line.len() > Self::MAX {
            return None;
        }
        let mut words = [0u64; 4];
        // The bytes before `scanned` are indexed by 16-byte compares, the rest one by one.
        #[cfg(not(target_arch = "x86_64"))]
        let scanned = 0;
        #[cfg(target_arch = "x86_64")]
        let scanned = {
            let blocks = line.len() / 16;
            use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
            // SAFETY: SSE2 is part of the x86_64 baseline; each load reads 16 bytes inside
            // `line` (`16 * k + 16 <= line.len()`).
            unsafe {
                let needle = _mm_set1_epi8(b as i8);
                for k in 0..blocks {
                    let v = _mm_loadu_si128(line.as_ptr().add(16 * k) as *const __m128i);
                    let hits = _mm_movemask_epi8(_mm_cmpeq_epi8(v, needle)) as u16;
                    words[k / 4] |= u64::from(hits) << (16 * (k % 4));
                }
            }
            16 * blocks
        };
        for (i, &c) in line.iter().enumerate().skip(scanned) {
            words[i / 64] |= u64::from(c == b) << (i % 64);
        }
        Some(Positions { words })
    }

    /// The first position at or after `from`.
    #[inline]
    pub(crate) fn next(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut bits = *self.words.get(w)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(64 * w + bits.trailing_zeros() as usize);
            }
            w += 1;
            bits = *self.words.get(w)?;
        }
    }
}

/// Unescaped values of one event, gathered in a reused buffer and written to the arena
/// with one push once the whole value parsed (the input may itself live in the arena,
/// so the arena cannot grow while the input is borrowed).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    bytes: Vec<u8>,
    /// Indexes of `Parsed::fields` whose spans are offsets in `bytes`, to rebase.
    pending: Vec<usize>,
}

impl Scratch {
    /// Forgets the previous event.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.pending.clear();
    }

    /// The buffer unescaped values are appended to.
    pub(crate) fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Adds `key` with the value `cell` to `out`; `input` is the span that was parsed.
    pub(crate) fn push_field(&mut self, out: &mut Parsed, key: Key, cell: Cell, input: Span) {
        let value = match cell {
            Cell::Input { from, len } => input.slice(from, len),
            Cell::Scratch { from, len } => {
                self.pending.push(out.fields.len());
                Span::new(Buf::Arena, from, len)
            }
        };
        out.push(key, Value::Str(value));
    }

    /// Writes the unescaped values to the arena and points their fields there.
    pub(crate) fn flush(&mut self, bufs: &mut Bufs<'_>, out: &mut Parsed) {
        if self.pending.is_empty() {
            return;
        }
        let base = bufs.push(&self.bytes).start();
        for &i in &self.pending {
            if let Value::Str(s) = out.fields[i].value {
                out.fields[i].value = Value::Str(Span::new(Buf::Arena, base + s.start(), s.len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Batch;

    /// A config with the defaults and `keys`, plus JSON overrides.
    fn config(keys: &[&str], extra: serde_json::Value) -> ParseDelimiterConfig {
        let mut json = serde_json::json!({ "keys": keys });
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        serde_json::from_value(json).unwrap()
    }

    /// Runs `config` over `text` (see `parse::testing::run_twice`): each event as
    /// `name=value` pairs, the failures, the batches and the key table.
    fn run(config: &ParseDelimiterConfig, text: &str) -> (Vec<String>, u64, Vec<Batch>, Arc<KeyTable>) {
        let keys = KeyTable::new();
        let (events, failures, batches) =
            crate::parse::testing::run_twice(|| config.build(&keys).unwrap(), text, |b| render(b, &keys));
        (events, failures, batches, keys)
    }

    fn render(batches: &[Batch], keys: &KeyTable) -> Vec<String> {
        crate::parse::testing::render(batches, keys, false, " | ")
    }

    #[test]
    fn the_separator_index_finds_what_a_scan_finds() {
        // Lines of every length up to the longest indexed, separators at pseudo-random
        // places (some adjacent), the separator also as the first and last byte.
        let mut seed = 7u64;
        for len in 0..=Positions::MAX {
            let line: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if i == 0 || i + 1 == len || (seed >> 60) < 3 {
                        b','
                    } else {
                        b'a' + (seed >> 59) as u8
                    }
                })
                .collect();
            let index = Positions::new(&line, b',').expect("indexed");
            for from in 0..=len {
                let want = line[from..].iter().position(|&c| c == b',').map(|i| from + i);
                assert_eq!(index.next(from), want, "len {len}, from {from}");
            }
        }
        assert!(Positions::new(&[b','; Positions::MAX + 1], b',').is_none());
    }

    #[test]
    fn a_line_longer_than_the_index_splits_the_same() {
        let c = config(&["a", "b", "c"], serde_json::json!({}));
        let long = "x".repeat(Positions::MAX);
        let text = format!("{long},\"q,{long}\",3\n1,\"q,r\",3\n");
        let (events, failures, _, _) = run(&c, &text);
        assert_eq!(failures, 0);
        assert_eq!(
            events,
            [format!("a={long} | b=q,{long} | c=3"), "a=1 | b=q,r | c=3".to_string()]
        );
    }

    #[test]
    fn quotes_embedded_separators_and_doubled_quotes() {
        let c = config(&["a", "b", "c"], serde_json::json!({}));
        let (events, failures, batches, keys) = run(
            &c,
            "1,\"x,y\",3\n\"say \"\"hi\"\"\",,\"\"\n\"\"\"\"\n\"a\"\"b\",\"c\"\"d\"\"\",\"e\"\n",
        );
        assert_eq!(failures, 0);
        assert_eq!(
            events,
            [
                "a=1 | b=x,y | c=3",
                "a=say \"hi\" | b= | c=",
                "a=\"",
                "a=a\"b | b=c\"d\" | c=e",
            ]
        );
        // A value without doubled quotes is a span of the chunk; an unescaped one is in
        // the arena.
        let event = &batches[0].events()[0];
        let Some(Value::Str(b)) = event.get(keys.intern("b")) else {
            panic!()
        };
        assert_eq!(b.buf(), Buf::Chunk);
        let Some(Value::Str(a)) = batches[0].events()[1].get(keys.intern("a")) else {
            panic!()
        };
        assert_eq!(a.buf(), Buf::Arena);
    }

    #[test]
    fn unquoted_values_are_spans_of_the_chunk() {
        let c = config(&["a", "b"], serde_json::json!({}));
        let (_, _, batches, keys) = run(&c, "hello,world\n");
        let event = &batches[0].events()[0];
        for name in ["a", "b"] {
            let Some(Value::Str(s)) = event.get(keys.intern(name)) else {
                panic!()
            };
            assert_eq!(s.buf(), Buf::Chunk);
        }
        assert_eq!(event.get(Key::MESSAGE), None, "the source is removed");
    }

    #[test]
    fn multi_byte_separator() {
        let c = config(&["a", "b", "c"], serde_json::json!({ "separator": "||" }));
        let (events, failures, _, _) = run(&c, "1||2|x||3\n\"p||q\"||||\n");
        assert_eq!(failures, 0);
        assert_eq!(events, ["a=1 | b=2|x | c=3", "a=p||q | b= | c="]);
        let tab = config(&["a", "b"], serde_json::json!({ "separator": "\t" }));
        let (events, _, _, _) = run(&tab, "x y\tz\n");
        assert_eq!(events, ["a=x y | b=z"]);
    }

    #[test]
    fn a_key_named_like_an_extra_column_is_one_field() {
        let (events, failures, _, _) = run(&config(&["a", "_column3"], serde_json::json!({})), "1,2,3\n");
        assert_eq!(failures, 0);
        assert_eq!(events, ["a=1 | _column3=3"]);
    }

    #[test]
    fn fewer_columns_leave_keys_absent_and_empty_values_are_empty() {
        let c = config(&["a", "b", "c"], serde_json::json!({}));
        let (events, failures, _, _) = run(&c, "1\n1,2\n,\n\n");
        assert_eq!(failures, 0);
        assert_eq!(events, ["a=1", "a=1 | b=2", "a= | b=", "a="]);
    }

    #[test]
    fn overflow_extend_keep_discard() {
        let text = "1,2,3,\"4,5\"\n1,2\n1,\"x\"\"y\",3\n";
        let extend = config(&["a", "b"], serde_json::json!({}));
        let (events, _, _, _) = run(&extend, text);
        assert_eq!(
            events,
            [
                "a=1 | b=2 | _column3=3 | _column4=4,5",
                "a=1 | b=2",
                "a=1 | b=x\"y | _column3=3",
            ]
        );
        let keep = config(&["a", "b"], serde_json::json!({ "overflow": "keep" }));
        let (events, _, _, _) = run(&keep, text);
        assert_eq!(events, ["a=1 | b=2,3,\"4,5\"", "a=1 | b=2", "a=1 | b=\"x\"\"y\",3"]);
        let discard = config(&["a", "b"], serde_json::json!({ "overflow": "discard" }));
        let (events, failures, _, _) = run(&discard, &format!("{text}1,2,\"never closed\n"));
        assert_eq!(events, ["a=1 | b=2", "a=1 | b=2", "a=1 | b=x\"y", "a=1 | b=2"]);
        assert_eq!(failures, 0, "discarded columns are not parsed");
    }

    #[test]
    fn trim_spaces_around_unquoted_and_quoted_values() {
        let c = config(&["a", "b", "c"], serde_json::json!({ "trim": true }));
        let (events, failures, _, _) = run(&c, "  1 ,  \" x \"  , 3\n");
        assert_eq!(failures, 0);
        assert_eq!(events, ["a=1 | b= x  | c=3"]);
        // A separator made of spaces is not eaten by trimming.
        let spaced = config(
            &["a", "b", "c"],
            serde_json::json!({ "trim": true, "separator": " | " }),
        );
        let (events, _, _, _) = run(&spaced, "x | \"y\" |  | z\n");
        assert_eq!(events, ["a=x | b=y | c= | _column4=z"]);
        let untrimmed = config(&["a", "b"], serde_json::json!({}));
        let (events, _, _, _) = run(&untrimmed, " 1 , 2\n");
        assert_eq!(events, ["a= 1  | b= 2"]);
    }

    #[test]
    fn quoting_disabled_and_quotes_inside_unquoted_values() {
        let off = config(&["a", "b"], serde_json::json!({ "quote": "" }));
        let (events, _, _, _) = run(&off, "\"x,y\"\n");
        assert_eq!(events, ["a=\"x | b=y\""]);
        let single = config(&["a", "b"], serde_json::json!({ "quote": "'" }));
        let (events, _, _, _) = run(&single, "'x,y',a\"b\n");
        assert_eq!(events, ["a=x,y | b=a\"b"]);
    }

    #[test]
    fn unterminated_quote_fails_and_is_counted() {
        let text = "1,2\n1,\"open\n\"a\"b,c\n";
        let keep = config(&["a", "b"], serde_json::json!({ "error_field": "error" }));
        let (events, failures, _, _) = run(&keep, text);
        assert_eq!(failures, 2);
        assert_eq!(
            events,
            [
                "a=1 | b=2",
                "message=1,\"open | error=parse_delimiter: unterminated quote",
                "message=\"a\"b,c | error=parse_delimiter: a closing quote must be followed by the separator or the end",
            ]
        );
        let drop = config(&["a", "b"], serde_json::json!({ "on_failure": "drop" }));
        let (events, failures, _, _) = run(&drop, text);
        assert_eq!(failures, 2);
        assert_eq!(events, ["a=1 | b=2"]);
    }

    #[test]
    fn keep_source_and_other_field() {
        let c = config(&["x"], serde_json::json!({ "keep_source": true }));
        let (events, _, _, _) = run(&c, "v\n");
        assert_eq!(events, ["message=v | x=v"]);
    }

    #[test]
    fn build_errors() {
        let keys = KeyTable::new();
        let err = |c: ParseDelimiterConfig| c.build(&keys).unwrap_err().0;
        assert!(err(config(&[], serde_json::json!({}))).contains("at least one"));
        assert!(err(config(&["a", ""], serde_json::json!({}))).contains("name 2 is empty"));
        assert!(err(config(&["a", "a"], serde_json::json!({}))).contains("`a` twice"));
        assert!(err(config(&["a"], serde_json::json!({ "separator": "" }))).contains("`separator`"));
        assert!(err(config(&["a"], serde_json::json!({ "quote": "''" }))).contains("one ASCII"));
        assert!(err(config(&["a"], serde_json::json!({ "quote": "«" }))).contains("one ASCII"));
        assert!(err(config(&["a"], serde_json::json!({ "separator": "\"|" }))).contains("part of"));
        assert!(err(config(&["a"], serde_json::json!({ "field": "" }))).contains("`field`"));
        let unknown = serde_json::from_value::<ParseDelimiterConfig>(serde_json::json!({ "keys": ["a"], "sep": "," }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn defaults() {
        let c = config(&["a"], serde_json::json!({}));
        assert_eq!(
            (
                c.field.as_str(),
                c.separator.as_str(),
                c.quote.as_str(),
                c.overflow,
                c.trim,
                c.keep_source
            ),
            ("message", ",", "\"", Overflow::Extend, false, false)
        );
        assert_eq!(c.on_failure, OnFailure::Keep);
    }

    #[test]
    fn example_builds() {
        // The agent's registry test parses EXAMPLE as YAML; this is its JSON twin.
        let c: ParseDelimiterConfig = serde_json::from_value(serde_json::json!({
            "separator": "|", "keys": ["time", "level", "user", "message"], "overflow": "keep"
        }))
        .unwrap();
        c.build(&KeyTable::new()).unwrap();
        assert!(ParseDelimiterConfig::EXAMPLE.contains("overflow: keep"));
    }
}
