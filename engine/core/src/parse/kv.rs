//! `parse_kv`: `key=value` pairs (logfmt) to fields.
//!
//! Pairs are separated by `field_split` (runs of it count as one), a key from its value
//! by the first `value_split`. A value that starts with `quote` runs to the closing
//! quote; inside it `\"` and `\\` stand for `"` and `\` (other backslashes stay as they
//! are). A bare key (`debug` in `level=info debug`) is `true`; `k=` is an empty string.
//! Values are strings, never guessed numbers. Values are sub-spans of the input; only a
//! quoted value with escapes is rewritten, into the arena, once per event.
//!
//! ```text
//! level=info msg="disk \"sda\" full" retry    -> {"level":"info","msg":"disk \"sda\" full","retry":true}
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::delimiter::{Cell, Needle, Scratch, quote_byte};
use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed, default_field};
use crate::model::{Bufs, Key, KeyTable, Span, Value};
use crate::processors::BuildError;

/// `parse_kv`: `key=value` pairs to fields.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParseKvConfig {
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
    /// Between pairs (default a space); repeats count as one.
    #[serde(default = "space")]
    pub field_split: String,
    /// Between a key and its value (default `=`); the first one in a pair counts.
    #[serde(default = "equals")]
    pub value_split: String,
    /// The quote around values: one ASCII character (default `"`), or empty to disable
    /// quoting.
    #[serde(default = "double_quote")]
    pub quote: String,
    /// Prepended to every key (e.g. `kv_` turns `user=bob` into `kv_user`).
    #[serde(default)]
    pub prefix: Option<String>,
}

fn space() -> String {
    " ".to_string()
}

fn equals() -> String {
    "=".to_string()
}

fn double_quote() -> String {
    "\"".to_string()
}

/// Distinct keys a parser remembers; past this the cache starts over, so a line format
/// with unbounded key names cannot grow it without bound.
const KEY_CACHE_CAPACITY: usize = 1024;

impl ParseKvConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "field_split: \"&\"\nprefix: query_\n";

    /// Builds the parser. Takes the table as an `Arc` because keys come from the data:
    /// the parser interns each new key name when it first sees it.
    pub fn build(&self, keys: &Arc<KeyTable>) -> Result<FieldParser<KvParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        let (fs, vs) = (&self.field_split, &self.value_split);
        if fs.is_empty() {
            return Err(BuildError("`field_split` cannot be empty".into()));
        }
        if vs.is_empty() {
            return Err(BuildError("`value_split` cannot be empty".into()));
        }
        if fs.contains(vs.as_str()) || vs.contains(fs.as_str()) {
            return Err(BuildError(format!(
                "`field_split` ({fs:?}) and `value_split` ({vs:?}) must differ, and neither may contain the other"
            )));
        }
        let quote = quote_byte(&self.quote)?;
        if let Some(q) = quote {
            if q == b'\\' {
                return Err(BuildError("`quote` cannot be a backslash (it escapes quotes)".into()));
            }
            if fs.as_bytes().contains(&q) || vs.as_bytes().contains(&q) {
                return Err(BuildError(format!(
                    "`quote` ({:?}) cannot be part of `field_split` or `value_split`",
                    self.quote
                )));
            }
        }
        let parser = KvParser {
            field_split: Needle::new(fs.as_bytes()),
            value_split: Needle::new(vs.as_bytes()),
            quote,
            prefix: self.prefix.clone().unwrap_or_default(),
            table: Arc::clone(keys),
            key_cache: HashMap::new(),
            name: String::new(),
            scratch: Scratch::default(),
        };
        Ok(FieldParser::new("parse_kv", parser, common))
    }
}

/// Runtime of [`ParseKvConfig`].
#[derive(Debug)]
pub struct KvParser {
    field_split: Needle,
    value_split: Needle,
    quote: Option<u8>,
    prefix: String,
    table: Arc<KeyTable>,
    /// Key bytes as they appear in lines (without the prefix) -> interned key.
    key_cache: HashMap<Box<[u8]>, Key>,
    /// Reused to build `prefix + name` on a cache miss.
    name: String,
    scratch: Scratch,
}

/// The next occurrence of a needle at or after a position, remembered so that a line
/// is searched once per needle (a line of many bare keys would otherwise be searched
/// to its end for `=` at every key).
#[derive(Clone, Copy, Debug)]
struct NextAt(Option<usize>);

impl NextAt {
    /// The first occurrence of `needle` at or after `from`, or `line.len()`.
    fn get(&mut self, needle: &Needle, line: &[u8], from: usize) -> usize {
        match self.0 {
            Some(at) if at >= from => at,
            _ => {
                let at = needle.find(line, from).unwrap_or(line.len());
                self.0 = Some(at);
                at
            }
        }
    }
}

impl KvParser {
    fn parse_line(&mut self, line: &[u8], input: Span, out: &mut Parsed) -> Result<(), ParseFailure> {
        let (mut next_fs, mut next_vs) = (NextAt(None), NextAt(None));
        let mut pos = 0;
        loop {
            while pos < line.len() && self.field_split.is_at(line, pos) {
                pos += self.field_split.len();
            }
            if pos >= line.len() {
                return Ok(());
            }
            let fs = next_fs.get(&self.field_split, line, pos);
            let vs = next_vs.get(&self.value_split, line, pos);
            if fs <= vs {
                // A bare key: no `value_split` before the end of the pair.
                let key = self.key(&line[pos..fs])?;
                out.push(key, Value::Bool(true));
                pos = fs;
                continue;
            }
            if vs == pos {
                return Err(ParseFailure::fixed("empty key"));
            }
            let key = self.key(&line[pos..vs])?;
            pos = vs + self.value_split.len();
            let cell = match self.quote {
                Some(q) if line.get(pos) == Some(&q) => {
                    let (cell, end) = self.quoted(line, pos, q)?;
                    if end < line.len() && !self.field_split.is_at(line, end) {
                        return Err(ParseFailure::fixed(
                            "a closing quote must be followed by `field_split` or the end",
                        ));
                    }
                    pos = end;
                    cell
                }
                _ => {
                    let end = next_fs.get(&self.field_split, line, pos);
                    let cell = Cell::Input {
                        from: pos,
                        len: end - pos,
                    };
                    pos = end;
                    cell
                }
            };
            self.scratch.push_field(out, key, cell, input);
        }
    }

    /// A quoted value whose opening quote is at `open`: the value and the position
    /// after the closing quote.
    fn quoted(&mut self, line: &[u8], open: usize, q: u8) -> Result<(Cell, usize), ParseFailure> {
        let body = open + 1;
        // With escapes, the value is copied in pieces to the scratch buffer.
        let mut unescaped: Option<usize> = None;
        let mut piece = body;
        let mut at = body;
        let close = loop {
            let Some(found) = memchr::memchr2(q, b'\\', &line[at..]) else {
                return Err(ParseFailure::fixed("unterminated quote"));
            };
            let found = at + found;
            if line[found] == q {
                break found;
            }
            match line.get(found + 1) {
                Some(&c) if c == q || c == b'\\' => {
                    let bytes = self.scratch.bytes_mut();
                    unescaped.get_or_insert(bytes.len());
                    bytes.extend_from_slice(&line[piece..found]);
                    bytes.push(c);
                    piece = found + 2;
                    at = found + 2;
                }
                // Any other escape is kept as it is, backslash included.
                Some(_) => at = found + 1,
                None => return Err(ParseFailure::fixed("unterminated quote")),
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
        Ok((cell, close + 1))
    }

    /// The key for `name` as it appears in the line; interned (with the prefix) once.
    /// Fails when the key table is full.
    fn key(&mut self, name: &[u8]) -> Result<Key, ParseFailure> {
        if let Some(&key) = self.key_cache.get(name) {
            return Ok(key);
        }
        self.name.clear();
        self.name.push_str(&self.prefix);
        self.name.push_str(&String::from_utf8_lossy(name));
        let key = self.table.try_intern(&self.name).ok_or(super::TOO_MANY_KEYS)?;
        if self.key_cache.len() >= KEY_CACHE_CAPACITY {
            self.key_cache.clear();
        }
        self.key_cache.insert(name.into(), key);
        Ok(key)
    }
}

impl FieldParse for KvParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        self.scratch.clear();
        self.parse_line(bufs.bytes(input), input, out)?;
        self.scratch.flush(bufs, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};
    use crate::model::{Batch, Buf};
    use crate::pipeline::Processor;

    fn config(json: serde_json::Value) -> ParseKvConfig {
        serde_json::from_value(json).unwrap()
    }

    /// Runs `config` over `text` (see `parse::testing::run_twice`): each event as
    /// `name=value` pairs, the failures, the batches and the key table.
    fn run(config: &ParseKvConfig, text: &str) -> (Vec<String>, u64, Vec<Batch>, Arc<KeyTable>) {
        let keys = KeyTable::new();
        let (events, failures, batches) =
            crate::parse::testing::run_twice(|| config.build(&keys).unwrap(), text, |b| render(b, &keys));
        (events, failures, batches, keys)
    }

    fn render(batches: &[Batch], keys: &KeyTable) -> Vec<String> {
        crate::parse::testing::render(batches, keys, true, " ")
    }

    #[test]
    fn logfmt_with_quotes_bare_keys_and_empty_values() {
        let c = config(serde_json::json!({}));
        let (events, failures, batches, keys) = run(
            &c,
            "level=info msg=\"disk full, retrying\" debug  n=3 empty= q=\"\"\nk=v=w a==\n",
        );
        assert_eq!(failures, 0);
        assert_eq!(
            events,
            [
                r#"level="info" msg="disk full, retrying" debug=Bool(true) n="3" empty="" q="""#,
                r#"k="v=w" a="=""#,
            ]
        );
        let Some(Value::Str(msg)) = batches[0].events()[0].get(keys.intern("msg")) else {
            panic!()
        };
        assert_eq!(msg.buf(), Buf::Chunk, "a value without escapes is not copied");
    }

    #[test]
    fn escapes_are_unescaped_into_the_arena() {
        let c = config(serde_json::json!({}));
        let (events, failures, batches, keys) = run(&c, r#"a="say \"hi\"" b="back\\slash" c="keep \n as is" d="\\""#);
        assert_eq!(failures, 0);
        assert_eq!(events, [r#"a="say \"hi\"" b="back\\slash" c="keep \\n as is" d="\\""#]);
        let Some(Value::Str(a)) = batches[0].events()[0].get(keys.intern("a")) else {
            panic!()
        };
        assert_eq!(a.buf(), Buf::Arena);
        let Some(Value::Str(c)) = batches[0].events()[0].get(keys.intern("c")) else {
            panic!()
        };
        assert_eq!(c.buf(), Buf::Chunk);
    }

    #[test]
    fn prefix_and_custom_splits() {
        let c = config(serde_json::json!({
            "field_split": "&", "value_split": ":", "quote": "'", "prefix": "q_"
        }));
        let (events, failures, _, keys) = run(&c, "user:bob&&path:'/a&b'&flag&\n");
        assert_eq!(failures, 0);
        assert_eq!(events, [r#"q_user="bob" q_path="/a&b" q_flag=Bool(true)"#]);
        assert_eq!(keys.get("user"), None, "only prefixed names are interned");
        let multi = config(serde_json::json!({ "field_split": ", ", "value_split": " => " }));
        let (events, _, _, _) = run(&multi, "a => 1, b => x y, , c\n");
        assert_eq!(events, [r#"a="1" b="x y" c=Bool(true)"#]);
    }

    #[test]
    fn repeated_keys_and_no_quoting() {
        let c = config(serde_json::json!({ "quote": "" }));
        let (events, _, _, _) = run(&c, "a=\"x y\" a=2\n");
        assert_eq!(events, [r#"a="2" y"=Bool(true)"#]);
    }

    #[test]
    fn failures_are_counted_with_keep_and_drop() {
        let text = "a=1\n=v\nb=\"open\nc=\"x\"y\nd=\"ends with \\\"\n";
        let keep = config(serde_json::json!({ "error_field": "error" }));
        let (events, failures, _, _) = run(&keep, text);
        assert_eq!(failures, 4);
        assert_eq!(
            events,
            [
                r#"a="1""#,
                r#"message="=v" error="parse_kv: empty key""#,
                r#"message="b=\"open" error="parse_kv: unterminated quote""#,
                r#"message="c=\"x\"y" error="parse_kv: a closing quote must be followed by `field_split` or the end""#,
                r#"message="d=\"ends with \\\"" error="parse_kv: unterminated quote""#,
            ]
        );
        let drop = config(serde_json::json!({ "on_failure": "drop" }));
        let (events, failures, _, _) = run(&drop, text);
        assert_eq!(failures, 4);
        assert_eq!(events, [r#"a="1""#]);
    }

    #[test]
    fn an_empty_line_parses_to_nothing() {
        let c = config(serde_json::json!({}));
        let (events, failures, _, _) = run(&c, "\n   \n");
        assert_eq!(failures, 0);
        assert_eq!(events, ["", ""]);
    }

    #[test]
    fn the_key_cache_is_bounded() {
        let keys = KeyTable::new();
        let mut parser = config(serde_json::json!({})).build(&keys).unwrap();
        let text: String = (0..KEY_CACHE_CAPACITY + 10).map(|i| format!("k{i}=v\n")).collect();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        for batch in &mut batches {
            parser.process(batch);
        }
        assert!(parser.parser().key_cache.len() <= KEY_CACHE_CAPACITY);
        let last = batches.last().unwrap().events().last().unwrap();
        let want = keys.get(&format!("k{}", KEY_CACHE_CAPACITY + 9)).unwrap();
        assert_eq!(last.fields()[0].key, want);
    }

    #[test]
    fn build_errors() {
        let keys = KeyTable::new();
        let err = |json| config(json).build(&keys).unwrap_err().0;
        assert!(err(serde_json::json!({ "field_split": "" })).contains("`field_split`"));
        assert!(err(serde_json::json!({ "value_split": "" })).contains("`value_split`"));
        assert!(err(serde_json::json!({ "value_split": " " })).contains("must differ"));
        assert!(err(serde_json::json!({ "field_split": ", ", "value_split": "," })).contains("contain"));
        assert!(err(serde_json::json!({ "quote": "\\" })).contains("backslash"));
        assert!(err(serde_json::json!({ "quote": "=" })).contains("part of"));
        assert!(err(serde_json::json!({ "quote": "ab" })).contains("one ASCII"));
        let unknown = serde_json::from_value::<ParseKvConfig>(serde_json::json!({ "separator": "," }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn defaults_and_example() {
        let c = config(serde_json::json!({}));
        assert_eq!(
            (
                c.field.as_str(),
                c.field_split.as_str(),
                c.value_split.as_str(),
                c.quote.as_str()
            ),
            ("message", " ", "=", "\"")
        );
        assert_eq!((c.prefix, c.keep_source, c.on_failure), (None, false, OnFailure::Keep));
        // The agent's registry test parses EXAMPLE as YAML; this is its JSON twin.
        let example = config(serde_json::json!({ "field_split": "&", "prefix": "query_" }));
        example.build(&KeyTable::new()).unwrap();
        assert!(ParseKvConfig::EXAMPLE.contains("prefix: query_"));
    }
}
