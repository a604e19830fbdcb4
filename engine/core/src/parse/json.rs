//! `parse_json`: the members of a JSON object become fields.
//!
//! The object is read in place by a validating scanner (`json_scan`): a string member
//! without escapes is a span of the original input (zero copy); one with escapes is
//! unescaped into the arena. Numbers, booleans and null keep their types. Nested objects
//! and arrays stay JSON text: a span of the input when it is already compact (the common
//! case), else re-encoded compactly into the arena (through simd-json's tape); with
//! `flatten: "."`, nested objects become `a.b.c` fields (arrays stay JSON text).
//!
//! Measured (`cargo bench -p weir-perf --bench parse`, JSON lines of the `json` corpus):
//! simd-json to a tape and fields from the tape gave 351 MiB/s; the scanner gives more
//! than twice that, the copy into a padded buffer, the tape and most of the per-member
//! work being gone.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape, fill_tape_padded};

use super::json_scan::{MAX_DEPTH, Scalar, ScanError, Scanner, unescape};
use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed, TOO_MANY_KEYS, default_field};
use crate::encode::write_json_str;
use crate::model::{Bufs, Key, KeyTable, Span, Value};
use crate::processors::BuildError;

/// `parse_json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParseJsonConfig {
    /// The field to parse (default `message`).
    #[serde(default = "default_field")]
    pub field: String,
    /// Flatten nested objects into fields joined with this separator (e.g. ".").
    #[serde(default)]
    pub flatten: Option<String>,
    /// Keep the source field on success.
    #[serde(default)]
    pub keep_source: bool,
    /// What to do when the value is not a JSON object.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Field that receives the failure reason.
    #[serde(default)]
    pub error_field: Option<String>,
}

impl ParseJsonConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "field: message\nflatten: \".\"\n";

    /// Builds the parser; field names found at run time are interned in `keys`.
    pub fn build(&self, keys: &Arc<KeyTable>) -> Result<FieldParser<JsonParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        if self.flatten.as_deref() == Some("") {
            return Err(BuildError("`flatten` separator cannot be empty".into()));
        }
        let parser = JsonParser {
            keys: keys.clone(),
            flatten: self.flatten.clone().map(String::into_bytes),
            scratch: Vec::new(),
            buffers: Some(Buffers::new(4096)),
            tape: Some(Tape::null().reset()),
            key_cache: HashMap::new(),
            recent: Vec::new(),
            text: Vec::new(),
            name: Vec::new(),
        };
        Ok(FieldParser::new("parse_json", parser, common))
    }
}

/// Runtime of [`ParseJsonConfig`].
pub struct JsonParser {
    keys: Arc<KeyTable>,
    flatten: Option<Vec<u8>>,
    /// The input copied and padded for simd-json, which unescapes in place.
    scratch: Vec<u8>,
    /// simd-json's buffers; an `Option` so they can be lent out without building new
    /// ones (a default `Buffers` allocates).
    buffers: Option<Buffers>,
    /// The tape, kept between events for its allocation.
    tape: Option<Tape<'static>>,
    key_cache: HashMap<Box<[u8]>, Key>,
    /// The key seen at each top-level position in the previous object: logs repeat their
    /// shape, so most lookups are one comparison.
    recent: Vec<(Box<[u8]>, Key)>,
    /// Scratch for nested values re-encoded as JSON.
    text: Vec<u8>,
    /// Scratch for flattened names.
    name: Vec<u8>,
}

impl std::fmt::Debug for JsonParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonParser")
            .field("flatten", &self.flatten)
            .finish_non_exhaustive()
    }
}

const NOT_OBJECT: ParseFailure = ParseFailure::fixed("not a JSON object");

/// The failure for JSON that does not parse, pointing at the byte where it stops.
fn invalid(input: &[u8], e: ScanError) -> ParseFailure {
    let at = e.at;
    if e.too_deep {
        return ParseFailure(format!("JSON nested deeper than {MAX_DEPTH} levels at byte {at}").into());
    }
    match input.get(at) {
        _ if input.is_empty() => ParseFailure::fixed("invalid JSON: empty"),
        Some(&b) if b.is_ascii_graphic() => ParseFailure(format!("invalid JSON at byte {at} (`{}`)", b as char).into()),
        Some(&b) => ParseFailure(format!("invalid JSON at byte {at} (0x{b:02x})").into()),
        None => ParseFailure::fixed("invalid JSON: unexpected end"),
    }
}

/// Number of tape nodes the value at `nodes[0]` takes.
fn node_len(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// Appends the value at the start of `nodes` as compact JSON.
fn write_value(nodes: &[Node<'_>], out: &mut Vec<u8>) {
    match nodes[0] {
        Node::String(s) => write_json_str(out, s.as_bytes()),
        Node::Static(s) => write_static(s, out),
        Node::Object { len, .. } => {
            out.push(b'{');
            let mut i = 1;
            for n in 0..len {
                if n > 0 {
                    out.push(b',');
                }
                if let Node::String(k) = nodes[i] {
                    write_json_str(out, k.as_bytes());
                }
                out.push(b':');
                write_value(&nodes[i + 1..], out);
                i += 1 + node_len(&nodes[i + 1]);
            }
            out.push(b'}');
        }
        Node::Array { len, .. } => {
            out.push(b'[');
            let mut i = 1;
            for n in 0..len {
                if n > 0 {
                    out.push(b',');
                }
                write_value(&nodes[i..], out);
                i += node_len(&nodes[i]);
            }
            out.push(b']');
        }
    }
}

fn write_static(s: StaticNode, out: &mut Vec<u8>) {
    match s {
        StaticNode::I64(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        StaticNode::U64(u) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        StaticNode::F64(f) if f.is_finite() => out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes()),
        StaticNode::F64(_) | StaticNode::Null => out.extend_from_slice(b"null"),
        StaticNode::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
    }
}

impl JsonParser {
    /// The key for `name`; `None` when the key table is full.
    fn intern(&mut self, name: &[u8]) -> Option<Key> {
        if let Some(&k) = self.key_cache.get(name) {
            return Some(k);
        }
        let key = self.keys.try_intern(&String::from_utf8_lossy(name))?;
        if self.key_cache.len() >= 4096 {
            self.key_cache.clear();
        }
        self.key_cache.insert(name.into(), key);
        Some(key)
    }

    fn top_key(&mut self, pos: usize, name: &[u8]) -> Option<Key> {
        if let Some((bytes, key)) = self.recent.get(pos)
            && same_bytes(bytes, name)
        {
            return Some(*key);
        }
        let key = self.intern(name)?;
        if pos < self.recent.len() {
            self.recent[pos] = (name.into(), key);
        } else if pos == self.recent.len() && pos < 256 {
            self.recent.push((name.into(), key));
        }
        Some(key)
    }
}

/// `a == b`, without a call to `memcmp` for the short names of log fields: two
/// overlapping word loads from each end cover a name of 8 to 16 bytes, half-words one of
/// 4 to 7 (a `memcmp` call per member was 3 % of the instructions of a json-filter run).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// Turns a scanned object into fields.
struct Emit<'p> {
    parser: &'p mut JsonParser,
    input: Span,
}

/// Why emitting stopped.
enum Stop {
    Invalid(ScanError),
    /// A name could not be interned: the key table is full.
    Full,
}

impl From<ScanError> for Stop {
    fn from(e: ScanError) -> Stop {
        Stop::Invalid(e)
    }
}

impl Emit<'_> {
    #[inline(always)]
    fn value(&mut self, v: Scalar, bytes: &[u8], bufs: &mut Bufs<'_>) -> Value {
        match v {
            Scalar::Str {
                start,
                end,
                escaped: false,
            } => Value::Str(self.input.slice(start, end - start)),
            Scalar::Str {
                start,
                end,
                escaped: true,
            } => {
                let text = &mut self.parser.text;
                text.clear();
                unescape(&bytes[start..end], text);
                Value::Str(bufs.push(text))
            }
            Scalar::Int(i) => Value::Int(i),
            Scalar::BigUint { start, end } => Value::Json(self.input.slice(start, end - start)),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Null => Value::Null,
            Scalar::Nested {
                start,
                end,
                canonical: true,
            } => Value::Json(self.input.slice(start, end - start)),
            Scalar::Nested {
                start,
                end,
                canonical: false,
            } => {
                let text = &mut self.parser.text;
                text.clear();
                self.parser.compact(&bytes[start..end]);
                Value::Json(bufs.push(&self.parser.text))
            }
        }
    }

    /// Emits the members of the object at the scanner, inside `open` enclosing objects;
    /// `prefix_len` is the length of the flattened name so far (in `parser.name`). With
    /// `flatten` this recurses once per nested object, as deep as [`MAX_DEPTH`] allows.
    fn object(
        &mut self,
        sc: &mut Scanner<'_>,
        bytes: &[u8],
        prefix_len: Option<usize>,
        open: u32,
        bufs: &mut Bufs<'_>,
        out: &mut Parsed,
    ) -> Result<(), Stop> {
        sc.enter(open)?;
        sc.expect(b'{')?;
        sc.ws();
        if sc.eat(b'}') {
            return Ok(());
        }
        let mut pos = 0;
        loop {
            let (start, end, escaped) = sc.string()?;
            sc.ws();
            sc.expect(b':')?;
            sc.ws();
            let unescaped;
            let name: &[u8] = if escaped {
                let mut v = Vec::new();
                unescape(&bytes[start..end], &mut v);
                unescaped = v;
                &unescaped
            } else {
                &bytes[start..end]
            };
            let flatten_here = self.parser.flatten.is_some() && sc.peek() == Some(b'{');
            if prefix_len.is_none() && !flatten_here {
                let key = self.parser.top_key(pos, name).ok_or(Stop::Full)?;
                let v = sc.value(open + 1)?;
                let value = self.value(v, bytes, bufs);
                out.push(key, value);
            } else {
                // A flattened name: prefix + separator + name.
                let at = prefix_len.unwrap_or(0);
                self.parser.name.truncate(at);
                if prefix_len.is_some() {
                    let sep = self.parser.flatten.as_deref().unwrap_or_default().to_vec();
                    self.parser.name.extend_from_slice(&sep);
                }
                self.parser.name.extend_from_slice(name);
                if flatten_here {
                    let len_now = self.parser.name.len();
                    self.object(sc, bytes, Some(len_now), open + 1, bufs, out)?;
                } else {
                    let full = std::mem::take(&mut self.parser.name);
                    let key = self.parser.intern(&full);
                    self.parser.name = full;
                    let key = key.ok_or(Stop::Full)?;
                    let v = sc.value(open + 1)?;
                    let value = self.value(v, bytes, bufs);
                    out.push(key, value);
                }
            }
            pos += 1;
            sc.ws();
            if sc.eat(b',') {
                sc.ws();
                continue;
            }
            sc.expect(b'}')?;
            return Ok(());
        }
    }
}

impl JsonParser {
    /// Writes the valid JSON `text` compactly into `self.text` (through simd-json's tape:
    /// rare, for nested values with whitespace, escapes or non-integer numbers).
    fn compact(&mut self, text: &[u8]) {
        let len = text.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(text);
        scratch.resize(len + INPUT_PADDING, 0);
        let mut buffers = self.buffers.take().unwrap_or_else(|| Buffers::new(len));
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        match fill_tape_padded(&mut scratch, len, &mut buffers, &mut tape) {
            Ok(()) => write_value(&tape.0, &mut self.text),
            // The scanner accepted it; should simd-json not, keep the text as it is.
            Err(_) => self.text.extend_from_slice(text),
        }
        self.tape = Some(tape.reset());
        self.buffers = Some(buffers);
        self.scratch = scratch;
    }
}

impl FieldParse for JsonParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        // The input's bytes, readable while the arena grows (strings are unescaped into
        // it): the chunk's own when the field is in the chunk, else a copy (the field was
        // rewritten into the arena by an earlier processor).
        let owned;
        let bytes: &[u8] = match bufs.chunk_bytes(input) {
            Some(b) => b,
            None => {
                owned = bufs.bytes(input).to_vec();
                &owned
            }
        };
        let result = (|| -> Result<(), Stop> {
            let mut sc = Scanner::new(bytes)?;
            sc.ws();
            if sc.peek() != Some(b'{') {
                // Valid JSON that is not an object gets its own reason.
                return match sc.value(0).and_then(|_| sc.finish()) {
                    Ok(()) => Err(Stop::Invalid(ScanError::at(usize::MAX))),
                    Err(e) => Err(e.into()),
                };
            }
            let mut emit = Emit { parser: self, input };
            emit.object(&mut sc, bytes, None, 0, bufs, out)?;
            sc.finish()?;
            Ok(())
        })();
        match result {
            Ok(()) => Ok(()),
            Err(Stop::Full) => Err(TOO_MANY_KEYS),
            Err(Stop::Invalid(ScanError { at: usize::MAX, .. })) => Err(NOT_OBJECT),
            Err(Stop::Invalid(e)) => Err(invalid(bytes, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, JsonEncoder};
    use crate::line::{LineOptions, read_all};
    use crate::model::{Buf, Key};
    use crate::pipeline::Processor;

    fn config() -> ParseJsonConfig {
        ParseJsonConfig {
            field: default_field(),
            flatten: None,
            keep_source: false,
            on_failure: OnFailure::Keep,
            error_field: None,
        }
    }

    /// Runs the parser over `text` and returns the JSON output lines and the failures.
    fn run(cfg: &ParseJsonConfig, text: &str) -> (Vec<String>, u64) {
        let keys = KeyTable::new();
        let mut p = cfg.build(&keys).unwrap();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        let batch = &mut batches[0];
        p.process(batch);
        let mut out = Vec::new();
        JsonEncoder::new(keys).encode(batch, &mut out);
        let lines = String::from_utf8(out).unwrap().lines().map(String::from).collect();
        (lines, p.take_failures())
    }

    #[test]
    fn same_bytes_is_equality() {
        let names: Vec<Vec<u8>> = (0..=40)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                // The name, and the name with each byte changed in turn.
                let mut all = vec![base.clone()];
                for i in 0..n {
                    let mut v = base.clone();
                    v[i] ^= 0x20;
                    all.push(v);
                }
                all
            })
            .collect();
        for a in &names {
            for b in &names {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn typed_members_nested_text_and_escapes() {
        let (out, failures) = run(
            &config(),
            r#"{"level":"info","n":42,"big":18446744073709551615,"f":1.5,"ok":true,"none":null,"nested":{"a":[1,"x\"y"]},"msg":"tab\there é"}"#,
        );
        assert_eq!(failures, 0);
        assert_eq!(
            out[0],
            r#"{"level":"info","n":42,"big":18446744073709551615,"f":1.5,"ok":true,"none":null,"nested":{"a":[1,"x\"y"]},"msg":"tab\there é"}"#
        );
    }

    #[test]
    fn strings_without_escapes_are_spans_of_the_chunk() {
        let keys = KeyTable::new();
        let mut p = config().build(&keys).unwrap();
        let (mut batches, _) = read_all(
            &br#"{"a":"plain","b":"esc\\aped"}"#[..],
            1 << 16,
            &LineOptions::default(),
        )
        .unwrap();
        p.process(&mut batches[0]);
        let ev = &batches[0].events()[0];
        let Some(Value::Str(a)) = ev.get(keys.get("a").unwrap()) else {
            panic!()
        };
        let Some(Value::Str(b)) = ev.get(keys.get("b").unwrap()) else {
            panic!()
        };
        assert_eq!(a.buf(), Buf::Chunk);
        assert_eq!(b.buf(), Buf::Arena);
        assert_eq!(batches[0].bytes(b), br"esc\aped");
    }

    #[test]
    fn flatten_nested_objects() {
        let mut cfg = config();
        cfg.flatten = Some(".".into());
        let (out, _) = run(
            &cfg,
            r#"{"http":{"req":{"method":"GET"},"status":200},"tags":["a"],"x":1}"#,
        );
        assert_eq!(
            out[0],
            r#"{"http.req.method":"GET","http.status":200,"tags":["a"],"x":1}"#
        );
    }

    #[test]
    fn every_kind_of_invalid_json_is_a_counted_failure_that_keeps_the_event() {
        let bad = [
            "",
            "{",
            "}",
            "[1,2]",
            "\"str\"",
            "42",
            "{\"a\":}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":1,}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1} trailing",
            "{\"a\":\"unterminated}",
            "nul\u{1}l",
        ];
        let text = bad.join("\n") + "\n";
        let (out, failures) = run(&config(), &text);
        assert_eq!(failures, bad.len() as u64);
        assert_eq!(out.len(), bad.len());
        assert!(out.iter().all(|l| l.starts_with("{\"message\":")), "{out:?}");
    }

    #[test]
    fn shapes_that_change_between_events_get_the_right_keys() {
        let (out, _) = run(&config(), "{\"a\":1,\"b\":2}\n{\"b\":3,\"a\":4}\n{\"c\":5}\n");
        assert_eq!(out, vec![r#"{"a":1,"b":2}"#, r#"{"b":3,"a":4}"#, r#"{"c":5}"#]);
    }

    #[test]
    fn new_names_beyond_the_key_table_bound_are_counted_failures() {
        let keys = KeyTable::new();
        let mut p = config().build(&keys).unwrap();
        let mut n = 0;
        while keys.len() < KeyTable::MAX_KEYS - 1 {
            keys.try_intern(&format!("filler{n}")).unwrap();
            n += 1;
        }
        let text = "{\"a\":1}\n{\"b\":2}\n{\"a\":3}\n";
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        p.process(&mut batches[0]);
        assert_eq!(p.take_failures(), 1, "`b` finds the table full; `a` took the last name");
        let ev = batches[0].events();
        assert!(ev[0].get(keys.get("a").unwrap()).is_some());
        assert!(ev[1].get(Key::MESSAGE).is_some(), "the failed event is kept unchanged");
        assert!(ev[2].get(keys.get("a").unwrap()).is_some(), "known names still parse");
    }

    #[test]
    fn nesting_past_the_limit_is_a_counted_failure_with_or_without_flatten() {
        // The line that used to overflow a worker's stack with `flatten` (7,000 levels,
        // 35 KB), and the first depth past the limit.
        let nest = |n: usize| r#"{"":"#.repeat(n) + "1" + &"}".repeat(n);
        let text = [nest(7_000), nest(MAX_DEPTH as usize + 1), nest(MAX_DEPTH as usize)].join("\n") + "\n";
        for flatten in [None, Some(".".to_string())] {
            let mut cfg = config();
            cfg.flatten = flatten.clone();
            cfg.error_field = Some("_error".into());
            let (out, failures) = run(&cfg, &text);
            assert_eq!(failures, 2, "flatten {flatten:?}");
            for line in &out[..2] {
                assert!(
                    line.contains(&format!(
                        r#""_error":"parse_json: JSON nested deeper than {MAX_DEPTH} levels at byte"#
                    )),
                    "{}",
                    &line[line.len() - 80..]
                );
            }
            assert!(!out[2].contains("_error"), "{MAX_DEPTH} levels parse: {}", out[2]);
        }
    }

    #[test]
    fn deep_nesting_and_unicode_escapes() {
        let deep = "{\"d\":".repeat(50) + "1" + &"}".repeat(50);
        let (out, failures) = run(&config(), &(deep + "\n{\"u\":\"\\u00e9\\ud83d\\ude00\"}\n"));
        assert_eq!(failures, 0);
        assert!(out[0].starts_with("{\"d\":{\"d\":"));
        assert_eq!(out[1], "{\"u\":\"é😀\"}");
    }
}
