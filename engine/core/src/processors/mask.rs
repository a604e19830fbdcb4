//! `mask`: replaces what a regex matches in a string field, with a constant or a hash.
//!
//! With `after`, only a `pattern` match that starts exactly where an `after` match ends
//! is masked (the "begin + content" desensitizing of LoongCollector): `after:
//! 'password='`, `pattern: '[^&\s]+'` masks the password and leaves the key. An event
//! whose field has no match keeps its value untouched (zero copy); a masked value is
//! written once to the arena. Matches of zero length mask nothing.

use regex_automata::meta::{Cache, Regex};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::BuildError;
use crate::model::{Batch, Key, KeyTable, Value};
use crate::parse::default_field;
use crate::pipeline::Processor;

/// A hash that replaces each match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskHash {
    /// SHA-256 of the matched bytes, as lowercase hex.
    Sha256,
}

/// `mask`: replaces regex matches in a field.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// The field to mask (default `message`). Events without it, or where it is not a
    /// string, are left alone.
    #[serde(default = "default_field")]
    pub field: String,
    /// What to mask: a regex (regex-automata syntax, like the `regex` crate).
    pub pattern: String,
    /// Only mask a `pattern` match that starts where a match of this regex ends.
    #[serde(default)]
    pub after: Option<String>,
    /// The text that replaces each match (default `******`). Not with `hash`.
    #[serde(default)]
    pub replace_with: Option<String>,
    /// Replace each match with its hash instead, so equal secrets stay correlatable.
    #[serde(default)]
    pub hash: Option<MaskHash>,
    /// How many hex digits of the hash to keep, 1 to 64 (default 16). Only with `hash`.
    #[serde(default)]
    pub hash_prefix: Option<usize>,
    /// Mask every match (default `true`); when `false`, only the first.
    #[serde(default = "yes")]
    pub all: bool,
}

fn yes() -> bool {
    true
}

const DEFAULT_REPLACEMENT: &str = "******";
const DEFAULT_HASH_PREFIX: usize = 16;

impl MaskConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "after: 'password='\npattern: '[^&\\s]+'\nhash: sha256\n";

    /// Builds the processor, interning its field in `keys` and compiling its regexes.
    pub fn build(&self, keys: &KeyTable) -> Result<Mask, BuildError> {
        if self.field.is_empty() {
            return Err(BuildError("`field` cannot be empty".into()));
        }
        let pattern = compile("pattern", &self.pattern)?;
        let after = self.after.as_deref().map(|a| compile("after", a)).transpose()?;
        let replacement = match (self.hash, &self.replace_with) {
            (Some(_), Some(_)) => {
                return Err(BuildError("set either `replace_with` or `hash`, not both".into()));
            }
            (Some(MaskHash::Sha256), None) => {
                let digits = self.hash_prefix.unwrap_or(DEFAULT_HASH_PREFIX);
                if !(1..=64).contains(&digits) {
                    return Err(BuildError(format!(
                        "`hash_prefix` must be between 1 and 64 (a SHA-256 has 64 hex digits); got {digits}"
                    )));
                }
                Replacement::Sha256 { digits }
            }
            (None, replace_with) => {
                if self.hash_prefix.is_some() {
                    return Err(BuildError("`hash_prefix` needs `hash`".into()));
                }
                let text = replace_with.as_deref().unwrap_or(DEFAULT_REPLACEMENT);
                Replacement::Constant(text.as_bytes().into())
            }
        };
        Ok(Mask {
            field: keys.intern(&self.field),
            pattern_cache: pattern.create_cache(),
            after_cache: after.as_ref().map(Regex::create_cache),
            pattern,
            after,
            replacement,
            all: self.all,
            out: Vec::new(),
        })
    }
}

/// Compiles the regex of config key `what`, refusing one that only matches empty text
/// (it would never mask anything).
fn compile(what: &str, pattern: &str) -> Result<Regex, BuildError> {
    let name = format!("`{what}`");
    let regex = crate::pattern::compile(&name, pattern)?;
    let hir = syntax::parse(pattern).map_err(|e| BuildError(crate::pattern::explain_syntax(&name, pattern, &e)))?;
    if what == "pattern" && hir.properties().maximum_len() == Some(0) {
        return Err(BuildError(format!(
            "`pattern` ({pattern:?}) only matches empty text, so it would mask nothing"
        )));
    }
    Ok(regex)
}

/// What a match becomes.
#[derive(Debug)]
enum Replacement {
    /// Fixed bytes.
    Constant(Box<[u8]>),
    /// The first `digits` lowercase hex digits of the SHA-256 of the match.
    Sha256 { digits: usize },
}

impl Replacement {
    fn write(&self, matched: &[u8], out: &mut Vec<u8>) {
        match self {
            Replacement::Constant(text) => out.extend_from_slice(text),
            Replacement::Sha256 { digits } => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let digest = Sha256::digest(matched);
                for &byte in digest.iter().take(digits.div_ceil(2)) {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
                if digits % 2 == 1 {
                    out.pop();
                }
            }
        }
    }
}

/// Runtime of [`MaskConfig`]. Holds its own regex caches and output buffer, so masking
/// allocates nothing per event once warm.
#[derive(Debug)]
pub struct Mask {
    field: Key,
    pattern: Regex,
    pattern_cache: Cache,
    after: Option<Regex>,
    after_cache: Option<Cache>,
    replacement: Replacement,
    all: bool,
    /// The masked value being built.
    out: Vec<u8>,
}

impl Mask {
    /// Masks `value` into `self.out`; false (and `out` meaningless) when nothing matched.
    fn mask(&mut self, value: &[u8]) -> bool {
        self.out.clear();
        let mut copied = 0;
        let mut from = 0;
        let mut masked = false;
        while let Some((start, end)) = self.next_match(value, from) {
            self.out.extend_from_slice(&value[copied..start]);
            self.replacement.write(&value[start..end], &mut self.out);
            copied = end;
            from = end;
            masked = true;
            if !self.all {
                break;
            }
        }
        if masked {
            self.out.extend_from_slice(&value[copied..]);
        }
        masked
    }

    /// The next non-empty region to mask at or after `from`. Searches run over the whole
    /// value with a start offset, so anchors and word boundaries see the real context.
    fn next_match(&mut self, value: &[u8], mut from: usize) -> Option<(usize, usize)> {
        while from <= value.len() {
            let input = Input::new(value).range(from..);
            match (&self.after, &mut self.after_cache) {
                (None, _) | (_, None) => {
                    let m = self.pattern.search_with(&mut self.pattern_cache, &input)?;
                    if !m.is_empty() {
                        return Some((m.start(), m.end()));
                    }
                    from = m.end() + 1;
                }
                (Some(after), Some(after_cache)) => {
                    let a = after.search_with(after_cache, &input)?;
                    let at = Input::new(value).range(a.end()..).anchored(Anchored::Yes);
                    if let Some(m) = self.pattern.search_with(&mut self.pattern_cache, &at)
                        && !m.is_empty()
                    {
                        return Some((m.start(), m.end()));
                    }
                    from = if a.is_empty() { a.end() + 1 } else { a.end() };
                }
            }
        }
        None
    }
}

impl Processor for Mask {
    fn process(&mut self, batch: &mut Batch) {
        let (mut bufs, events) = batch.live_mut();
        for event in events {
            let Some(Value::Str(span)) = event.get(self.field) else {
                continue;
            };
            if self.mask(bufs.bytes(span)) {
                let masked = bufs.push(&self.out);
                event.set(self.field, Value::Str(masked));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};
    use crate::model::Buf;

    fn config(json: serde_json::Value) -> MaskConfig {
        serde_json::from_value(json).unwrap()
    }

    /// Runs `config` over `text`: the `message` of each event (or `-` without one), and
    /// the batches.
    fn run(config: &MaskConfig, text: &str) -> (Vec<String>, Vec<Batch>) {
        let keys = KeyTable::new();
        let mut mask = config.build(&keys).unwrap();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        let field = keys.intern(&config.field);
        let mut lines = Vec::new();
        for batch in &mut batches {
            mask.process(batch);
            assert_eq!(mask.take_failures(), 0, "mask counts no failures");
            for event in batch.live() {
                lines.push(match event.get(field) {
                    Some(Value::Str(s)) => String::from_utf8_lossy(batch.bytes(s)).into_owned(),
                    _ => "-".to_string(),
                });
            }
        }
        (lines, batches)
    }

    #[test]
    fn constant_every_match_and_only_the_first() {
        let c = config(serde_json::json!({ "pattern": r"\d{3}" }));
        let (lines, batches) = run(&c, "a 123 b 4567 c\nnothing here\n");
        assert_eq!(lines, ["a ****** b ******7 c", "nothing here"]);
        let raw = |i: usize| batches[0].events()[i].get(Key::MESSAGE);
        let Some(Value::Str(masked)) = raw(0) else { panic!() };
        assert_eq!(masked.buf(), Buf::Arena);
        assert_eq!(
            raw(1),
            Some(Value::Str(batches[0].events()[1].raw())),
            "no match: untouched"
        );
        let first = config(serde_json::json!({ "pattern": r"\d+", "all": false, "replace_with": "#" }));
        let (lines, _) = run(&first, "1 2 3\n");
        assert_eq!(lines, ["# 2 3"]);
    }

    #[test]
    fn sha256_prefix() {
        // sha256("hello") = 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
        let c = config(serde_json::json!({ "pattern": "hello", "hash": "sha256" }));
        let (lines, _) = run(&c, "say hello, hello\n");
        assert_eq!(lines, ["say 2cf24dba5fb0a30e, 2cf24dba5fb0a30e"]);
        let odd = config(serde_json::json!({ "pattern": "hello", "hash": "sha256", "hash_prefix": 5 }));
        assert_eq!(run(&odd, "hello\n").0, ["2cf24"]);
        let full = config(serde_json::json!({ "pattern": "hello", "hash": "sha256", "hash_prefix": 64 }));
        assert_eq!(
            run(&full, "hello\n").0,
            ["2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"]
        );
    }

    #[test]
    fn after_masks_only_what_follows_it() {
        let c = config(serde_json::json!({ "after": "password=", "pattern": r"[^&\s]+" }));
        let (lines, _) = run(
            &c,
            "user=bob&password=hunter2&x=1 password=abc\npassword=&other=secret\nno password here\n",
        );
        assert_eq!(
            lines,
            [
                "user=bob&password=******&x=1 password=******",
                "password=&other=secret",
                "no password here",
            ]
        );
        let first = config(serde_json::json!({
            "after": "(?i)token: ", "pattern": r"\w+", "all": false, "hash": "sha256", "hash_prefix": 8
        }));
        let (lines, _) = run(&first, "TOKEN: hello token: hello\n");
        assert_eq!(lines, ["TOKEN: 2cf24dba token: hello"]);
    }

    #[test]
    fn anchors_see_the_whole_value() {
        let c = config(serde_json::json!({ "pattern": r"^\w" }));
        assert_eq!(run(&c, "ab cd\n").0, ["******b cd"]);
        let empty_matches = config(serde_json::json!({ "pattern": "x*" }));
        assert_eq!(run(&empty_matches, "axxbx\n").0, ["a******b******"]);
    }

    #[test]
    fn other_field_missing_field_and_non_strings() {
        let keys = KeyTable::new();
        let c = config(serde_json::json!({ "field": "secret", "pattern": "." }));
        let mut mask = c.build(&keys).unwrap();
        let (mut batches, _) = read_all(&b"a\nb\nc\n"[..], 1 << 16, &LineOptions::default()).unwrap();
        let batch = &mut batches[0];
        let secret = keys.intern("secret");
        let span = batch.push_arena(b"xy");
        batch.parts_mut().1[1].set(secret, Value::Str(span));
        batch.parts_mut().1[2].set(secret, Value::Int(7));
        mask.process(batch);
        let events = batch.events();
        assert_eq!(events[0].get(secret), None, "a missing field is skipped");
        let Some(Value::Str(masked)) = events[1].get(secret) else {
            panic!()
        };
        assert_eq!(batch.bytes(masked), b"************");
        assert_eq!(events[2].get(secret), Some(Value::Int(7)));
        assert_eq!(mask.take_failures(), 0);
        let Some(Value::Str(message)) = events[1].get(Key::MESSAGE) else {
            panic!()
        };
        assert_eq!(batch.bytes(message), b"b", "other fields are left alone");
    }

    #[test]
    fn build_errors() {
        let keys = KeyTable::new();
        let err = |json| config(json).build(&keys).unwrap_err().0;
        let invalid = err(serde_json::json!({ "pattern": "a(b" }));
        assert!(
            invalid.starts_with("`pattern` is not a valid regex: unclosed group, at column 2"),
            "{invalid}"
        );
        assert!(err(serde_json::json!({ "pattern": "a", "after": "[" })).starts_with("`after` is not a valid regex"));
        assert!(err(serde_json::json!({ "pattern": "" })).contains("only matches empty"));
        assert!(err(serde_json::json!({ "pattern": "a", "hash": "sha256", "replace_with": "x" })).contains("not both"));
        assert!(
            err(serde_json::json!({ "pattern": "a", "hash": "sha256", "hash_prefix": 0 })).contains("between 1 and 64")
        );
        assert!(
            err(serde_json::json!({ "pattern": "a", "hash": "sha256", "hash_prefix": 65 }))
                .contains("between 1 and 64")
        );
        assert!(err(serde_json::json!({ "pattern": "a", "hash_prefix": 8 })).contains("needs `hash`"));
        assert!(err(serde_json::json!({ "pattern": "a", "field": "" })).contains("`field`"));
        let bad_hash = serde_json::from_value::<MaskConfig>(serde_json::json!({ "pattern": "a", "hash": "md5" }));
        assert!(bad_hash.is_err());
        let unknown = serde_json::from_value::<MaskConfig>(serde_json::json!({ "pattern": "a", "regex": "b" }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let missing = serde_json::from_value::<MaskConfig>(serde_json::json!({}));
        assert!(missing.unwrap_err().to_string().contains("pattern"));
    }

    #[test]
    fn defaults_and_example() {
        let c = config(serde_json::json!({ "pattern": "a" }));
        assert_eq!(
            (c.field.as_str(), c.all, c.after, c.hash),
            ("message", true, None, None)
        );
        // The agent's registry test parses EXAMPLE as YAML; this is its JSON twin.
        let example = config(serde_json::json!({ "after": "password=", "pattern": r"[^&\s]+", "hash": "sha256" }));
        example.build(&KeyTable::new()).unwrap();
        assert!(MaskConfig::EXAMPLE.contains("hash: sha256"));
    }
}
