//! `parse_regex`: named capture groups become fields, each a span of the input.
//!
//! The pattern is searched once per event (write `^` to anchor it; anchored patterns run
//! an anchored search). When the pattern is one-pass (each byte leaves one way to go on,
//! as in the usual log patterns made of `\S+`, `[^"]*` and literals), captures come from
//! regex-automata's one-pass DFA, the cheapest engine that reports groups; otherwise from
//! `meta::Regex`. Both use a cache and capture slots kept in the parser, so a parse
//! allocates nothing.

use regex_automata::dfa::onepass;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, meta};
use serde::Deserialize;

use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed, default_field};
use crate::model::{Bufs, Key, KeyTable, Span, Value};
use crate::processors::BuildError;

/// `parse_regex`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParseRegexConfig {
    /// The field to parse (default `message`).
    #[serde(default = "default_field")]
    pub field: String,
    /// The pattern (regex-automata syntax; linear time on any input).
    pub pattern: String,
    /// Names for every capture group, in order. Without it, named groups become fields
    /// and unnamed groups are ignored.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Keep the source field on success.
    #[serde(default)]
    pub keep_source: bool,
    /// What to do when the pattern does not match.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Field that receives the failure reason.
    #[serde(default)]
    pub error_field: Option<String>,
}

impl ParseRegexConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = r#"pattern: '^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)'
"#;

    /// Compiles the pattern and resolves the keys.
    pub fn build(&self, keys: &KeyTable) -> Result<FieldParser<RegexParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        let regex =
            meta::Regex::new(&self.pattern).map_err(|e| BuildError(format!("bad pattern `{}`: {e}", self.pattern)))?;
        let info = regex.group_info();
        let groups = info.group_len(regex_automata::PatternID::ZERO);
        let mut names: Vec<Option<Key>> = vec![None; groups];
        match &self.keys {
            Some(list) => {
                if list.len() != groups - 1 {
                    return Err(BuildError(format!(
                        "`keys` has {} names but the pattern has {} capture groups",
                        list.len(),
                        groups - 1
                    )));
                }
                for (i, name) in list.iter().enumerate() {
                    if name.is_empty() {
                        return Err(BuildError("`keys` has an empty name".into()));
                    }
                    names[i + 1] = Some(keys.intern(name));
                }
            }
            None => {
                for (i, name) in info.pattern_names(regex_automata::PatternID::ZERO).enumerate() {
                    names[i] = name.map(|n| keys.intern(n));
                }
                if names.iter().all(Option::is_none) {
                    return Err(BuildError(
                        "the pattern has no named group (`(?P<name>...)`) and no `keys` name its groups".into(),
                    ));
                }
            }
        }
        let anchored = self.pattern.starts_with('^');
        // Not every pattern is one-pass; those that are not use the meta engine.
        let one_pass = if anchored {
            onepass::DFA::new(&self.pattern).ok()
        } else {
            None
        };
        let engine = match one_pass {
            Some(dfa) => {
                let cache = dfa.create_cache();
                let caps = dfa.create_captures();
                Engine::OnePass { dfa, cache, caps }
            }
            None => {
                let cache = regex.create_cache();
                let caps = regex.create_captures();
                Engine::Meta { regex, cache, caps }
            }
        };
        Ok(FieldParser::new("parse_regex", RegexParser { engine, names }, common))
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per parser, never moved in the hot path
enum Engine {
    OnePass {
        dfa: onepass::DFA,
        cache: onepass::Cache,
        caps: Captures,
    },
    Meta {
        regex: meta::Regex,
        cache: meta::Cache,
        caps: Captures,
    },
}

/// Runtime of [`ParseRegexConfig`].
#[derive(Debug)]
pub struct RegexParser {
    engine: Engine,
    /// Field key per capture group (index 0 is the whole match, never a field).
    names: Vec<Option<Key>>,
}

impl RegexParser {
    /// True when captures come from the one-pass DFA.
    pub fn is_one_pass(&self) -> bool {
        matches!(self.engine, Engine::OnePass { .. })
    }
}

const NO_MATCH: ParseFailure = ParseFailure::fixed("the pattern does not match");

impl FieldParse for RegexParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        let bytes = bufs.bytes(input);
        let caps = match &mut self.engine {
            Engine::OnePass { dfa, cache, caps } => {
                dfa.captures(cache, Input::new(bytes).anchored(Anchored::Yes), caps);
                caps
            }
            Engine::Meta { regex, cache, caps } => {
                regex.search_captures_with(cache, &Input::new(bytes), caps);
                caps
            }
        };
        if !caps.is_match() {
            return Err(NO_MATCH);
        }
        for (group, key) in self.names.iter().enumerate() {
            if let (Some(key), Some(m)) = (key, caps.get_group(group)) {
                out.fields.push((*key, Value::Str(input.slice(m.start, m.len()))));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};
    use crate::model::{Batch, Buf, Key};
    use crate::pipeline::Processor;

    fn config(pattern: &str) -> ParseRegexConfig {
        ParseRegexConfig {
            field: default_field(),
            pattern: pattern.into(),
            keys: None,
            keep_source: false,
            on_failure: OnFailure::Keep,
            error_field: None,
        }
    }

    fn run(cfg: &ParseRegexConfig, text: &[u8]) -> (Batch, u64, std::sync::Arc<KeyTable>, bool) {
        let keys = KeyTable::new();
        let mut p = cfg.build(&keys).unwrap();
        let (mut batches, _) = read_all(text, 1 << 16, &LineOptions::default()).unwrap();
        let mut batch = batches.remove(0);
        p.process(&mut batch);
        (batch, p.take_failures(), keys, p.parser().is_one_pass())
    }

    fn text(batch: &Batch, ev: usize, keys: &KeyTable, name: &str) -> Option<String> {
        match batch.events()[ev].get(keys.get(name)?)? {
            Value::Str(s) => Some(String::from_utf8_lossy(batch.bytes(s)).into_owned()),
            other => panic!("{other:?}"),
        }
    }

    const NGINX: &[u8] =
        b"10.1.2.3 - - [25/Nov/2026:10:00:01 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"curl\"\nnot a log line\n";

    #[test]
    fn nginx_named_groups_are_zero_copy_spans_via_one_pass() {
        let cfg: ParseRegexConfig = config(
            r#"^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)"#,
        );
        let (batch, failures, keys, one_pass) = run(&cfg, NGINX);
        assert!(one_pass, "an anchored nginx pattern is one-pass");
        assert_eq!(failures, 1);
        assert_eq!(text(&batch, 0, &keys, "ip").as_deref(), Some("10.1.2.3"));
        assert_eq!(
            text(&batch, 0, &keys, "time").as_deref(),
            Some("25/Nov/2026:10:00:01 +0000")
        );
        assert_eq!(text(&batch, 0, &keys, "request").as_deref(), Some("GET / HTTP/1.1"));
        assert_eq!(text(&batch, 0, &keys, "status").as_deref(), Some("200"));
        assert_eq!(batch.events()[0].get(Key::MESSAGE), None, "source removed");
        let Some(Value::Str(span)) = batch.events()[0].get(keys.get("ip").unwrap()) else {
            panic!()
        };
        assert_eq!(span.buf(), Buf::Chunk);
        assert!(batch.events()[1].get(Key::MESSAGE).is_some(), "failure keeps the event");
    }

    #[test]
    fn unanchored_search_and_meta_engine() {
        let (batch, failures, keys, one_pass) = run(&config(r"user=(?P<user>\w+)"), b"a user=bob b\nnobody\n");
        assert!(!one_pass);
        assert_eq!(failures, 1);
        assert_eq!(text(&batch, 0, &keys, "user").as_deref(), Some("bob"));
    }

    #[test]
    fn keys_name_unnamed_groups_and_optional_groups_are_absent() {
        let mut cfg = config(r"^(\w+)(?: (\d+))?$");
        cfg.keys = Some(vec!["word".into(), "num".into()]);
        let (batch, failures, keys, _) = run(&cfg, b"abc 12\nxyz\n");
        assert_eq!(failures, 0);
        assert_eq!(text(&batch, 0, &keys, "num").as_deref(), Some("12"));
        assert_eq!(text(&batch, 1, &keys, "word").as_deref(), Some("xyz"));
        assert_eq!(text(&batch, 1, &keys, "num"), None);
    }

    #[test]
    fn build_errors_say_what_is_wrong() {
        let keys = KeyTable::new();
        let e = config("(?P<a>x").build(&keys).unwrap_err();
        assert!(e.0.contains("bad pattern"), "{e}");
        let e = config("(x)").build(&keys).unwrap_err();
        assert!(e.0.contains("no named group"), "{e}");
        let mut cfg = config("(x)(y)");
        cfg.keys = Some(vec!["a".into()]);
        assert!(cfg.build(&keys).unwrap_err().0.contains("2 capture groups"));
    }

    #[test]
    fn hostile_input_stays_linear() {
        // Catastrophic for backtracking engines; linear here.
        let mut line = vec![b'a'; 20_000];
        line.push(b'\n');
        let (_, failures, _, _) = run(&config(r"^(?P<x>(a+)+)b"), &line);
        assert_eq!(failures, 1);
    }
}
