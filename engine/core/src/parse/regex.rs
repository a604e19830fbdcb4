//! `parse_regex`: named capture groups become fields, each a span of the input.
//!
//! The pattern is searched once per event (write `^` to anchor it; anchored patterns run
//! an anchored search). The cheapest engine that can answer exactly is chosen once, when
//! the processor is built ([`RegexParser::engine_name`]):
//!
//! 1. `scanner`: an anchored pattern made of runs of a class, literals, and choices
//!    decided by the next character (`^(\S+) \[([^\]]+)\] "([^"]*)" (\d+|-)`) compiles to
//!    a field scanner that walks the line once (see `scanner.rs` for what compiles and why
//!    it gives the regex's answer on every input);
//! 2. `onepass`: an anchored one-pass pattern (each byte leaves one way to go on) uses
//!    regex-automata's one-pass DFA, the cheapest regex engine that reports groups;
//! 3. `meta`: anything else uses `meta::Regex`.
//!
//! All keep their cache and capture slots in the parser, so a parse allocates nothing.
//! On 32 MiB of nginx combined lines (split + parse, one core, `cargo bench -p weir-perf
//! --bench parse`): scanner 587 MiB/s, one-pass 209 MiB/s, meta 198 MiB/s.

use regex_automata::dfa::onepass;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, meta};
use serde::Deserialize;

use super::scanner::{self, Scanner};
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

    /// Compiles the pattern with the cheapest engine that can run it and resolves the keys.
    pub fn build(&self, keys: &KeyTable) -> Result<FieldParser<RegexParser>, BuildError> {
        self.with_engine(keys, EngineChoice::Auto)
    }

    /// Like [`ParseRegexConfig::build`], with the engine chosen by the caller (benches and
    /// tests compare them). Fails when the pattern cannot run on the chosen engine.
    pub fn with_engine(&self, keys: &KeyTable, choice: EngineChoice) -> Result<FieldParser<RegexParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        let regex = crate::pattern::compile("`pattern`", &self.pattern)?;
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
        let scanner = || match Scanner::new(&self.pattern) {
            Ok(scanner) if scanner.group_len() == groups => Ok(scanner),
            Ok(_) => Err("the scanner counts the groups differently".to_string()),
            Err(why) => Err(why.0),
        };
        // Not every pattern is one-pass; those that are not use the meta engine.
        let one_pass = || {
            if anchored {
                onepass::DFA::new(&self.pattern).map_err(|e| e.to_string())
            } else {
                Err("the pattern is not anchored with `^`".to_string())
            }
        };
        let engine = match choice {
            EngineChoice::Auto => match scanner() {
                Ok(scanner) => Engine::scanner(scanner),
                Err(_) => match one_pass() {
                    Ok(dfa) => Engine::one_pass(dfa),
                    Err(_) => Engine::meta(regex),
                },
            },
            EngineChoice::Scanner => Engine::scanner(
                scanner().map_err(|why| BuildError(format!("`{}` cannot run on the scanner: {why}", self.pattern)))?,
            ),
            EngineChoice::OnePass => Engine::one_pass(
                one_pass().map_err(|why| BuildError(format!("`{}` is not one-pass: {why}", self.pattern)))?,
            ),
            EngineChoice::Meta => Engine::meta(regex),
        };
        let distinct = super::all_distinct(names.iter().flatten().copied());
        Ok(FieldParser::new(
            "parse_regex",
            RegexParser {
                engine,
                names,
                distinct,
            },
            common,
        ))
    }
}

/// Which engine runs a `parse_regex` pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// The cheapest that can run the pattern: scanner, else one-pass DFA, else meta.
    #[default]
    Auto,
    /// The field scanner (simple anchored patterns only).
    Scanner,
    /// regex-automata's one-pass DFA (anchored one-pass patterns only).
    OnePass,
    /// `meta::Regex` (any pattern).
    Meta,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per parser, never moved in the hot path
enum Engine {
    Scanner {
        scanner: Scanner,
        /// Two per group: start, end (`scanner::NONE` when absent); then a spare.
        slots: Vec<usize>,
    },
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

impl Engine {
    fn scanner(scanner: Scanner) -> Engine {
        let slots = vec![scanner::NONE; scanner.slot_len()];
        Engine::Scanner { scanner, slots }
    }

    fn one_pass(dfa: onepass::DFA) -> Engine {
        let cache = dfa.create_cache();
        let caps = dfa.create_captures();
        Engine::OnePass { dfa, cache, caps }
    }

    fn meta(regex: meta::Regex) -> Engine {
        let cache = regex.create_cache();
        let caps = regex.create_captures();
        Engine::Meta { regex, cache, caps }
    }
}

/// Runtime of [`ParseRegexConfig`].
#[derive(Debug)]
pub struct RegexParser {
    engine: Engine,
    /// Field key per capture group (index 0 is the whole match, never a field).
    names: Vec<Option<Key>>,
    /// No key is in `names` twice (`keys:` may name one twice).
    distinct: bool,
}

impl RegexParser {
    /// True when captures come from the one-pass DFA.
    pub fn is_one_pass(&self) -> bool {
        matches!(self.engine, Engine::OnePass { .. })
    }

    /// The engine that runs the pattern: `"scanner"`, `"onepass"` or `"meta"`.
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Scanner { .. } => "scanner",
            Engine::OnePass { .. } => "onepass",
            Engine::Meta { .. } => "meta",
        }
    }
}

const NO_MATCH: ParseFailure = ParseFailure::fixed("the pattern does not match");

impl FieldParse for RegexParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        let bytes = bufs.bytes(input);
        let caps = match &mut self.engine {
            Engine::Scanner { scanner, slots } => {
                if !scanner.captures(bytes, slots) {
                    return Err(NO_MATCH);
                }
                for (key, span) in self.names.iter().zip(slots.chunks_exact(2)) {
                    if let Some(key) = key
                        && span[0] != scanner::NONE
                    {
                        out.push(*key, Value::Str(input.slice(span[0], span[1] - span[0])));
                    }
                }
                return Ok(());
            }
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
                out.push(*key, Value::Str(input.slice(m.start, m.len())));
            }
        }
        Ok(())
    }

    fn distinct_keys(&self) -> bool {
        self.distinct
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

    fn run(cfg: &ParseRegexConfig, text: &[u8]) -> (Batch, u64, std::sync::Arc<KeyTable>, &'static str) {
        run_on(cfg, text, EngineChoice::Auto)
    }

    fn run_on(
        cfg: &ParseRegexConfig,
        text: &[u8],
        choice: EngineChoice,
    ) -> (Batch, u64, std::sync::Arc<KeyTable>, &'static str) {
        let keys = KeyTable::new();
        let mut p = cfg.with_engine(&keys, choice).unwrap();
        assert_eq!(p.parser().is_one_pass(), p.parser().engine_name() == "onepass");
        let (mut batches, _) = read_all(text, 1 << 16, &LineOptions::default()).unwrap();
        let mut batch = batches.remove(0);
        p.process(&mut batch);
        (batch, p.take_failures(), keys, p.parser().engine_name())
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
    fn nginx_named_groups_are_zero_copy_spans_on_every_engine() {
        let cfg: ParseRegexConfig = config(
            r#"^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)"#,
        );
        for (choice, name) in [
            (EngineChoice::Auto, "scanner"),
            (EngineChoice::Scanner, "scanner"),
            (EngineChoice::OnePass, "onepass"),
            (EngineChoice::Meta, "meta"),
        ] {
            let (batch, failures, keys, engine) = run_on(&cfg, NGINX, choice);
            assert_eq!(engine, name, "an anchored nginx pattern runs on the scanner by default");
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
    }

    #[test]
    fn each_pattern_gets_the_cheapest_engine_and_forcing_one_says_why_not() {
        let keys = KeyTable::new();
        let engine = |p: &str| config(p).build(&keys).unwrap().parser().engine_name();
        assert_eq!(engine(r"^(?P<a>\S+) (?P<b>\d+|-)$"), "scanner");
        // A repeated group whose iterations the next character decides scans too.
        assert_eq!(engine(r"^(?P<a>a)(?:bc)*d"), "scanner");
        // One-pass but not scannable: a group repeated a bounded number of times.
        assert_eq!(engine(r"^(?P<a>a)(?:bc){2,3}d"), "onepass");
        // Neither: `\S+` may go on into `x`.
        assert_eq!(engine(r"^(?P<a>\S+)x"), "meta");
        assert_eq!(engine(r"(?P<a>\S+)x"), "meta");
        let e = config(r"^(?P<a>\S+)x")
            .with_engine(&keys, EngineChoice::Scanner)
            .unwrap_err();
        assert!(e.0.contains("cannot run on the scanner"), "{e}");
        let e = config(r"(?P<a>\S+)")
            .with_engine(&keys, EngineChoice::OnePass)
            .unwrap_err();
        assert!(e.0.contains("not one-pass"), "{e}");
    }

    #[test]
    fn engines_agree_on_unicode_and_invalid_utf8() {
        let cfg = config(r#"^(?P<w>\w+) (?P<q>"[^"]*") (?P<n>\d+|-)$"#);
        let mut lines = Vec::new();
        lines.extend_from_slice("caf\u{e9} \"Z\u{fc}rich\" \u{663}2\n".as_bytes());
        lines.extend_from_slice("x \"\u{a0}\" -\n".as_bytes());
        lines.extend_from_slice(b"bad \"\xff\" 1\n"); // invalid UTF-8 ends `[^"]*`
        lines.extend_from_slice("\u{e9}\u{a0} \"\" 1\n".as_bytes()); // U+00A0 is no `\w`, no ` `
        let mut seen = Vec::new();
        for choice in [EngineChoice::Scanner, EngineChoice::OnePass, EngineChoice::Meta] {
            let (batch, failures, keys, _) = run_on(&cfg, &lines, choice);
            let fields: Vec<_> = (0..batch.len())
                .map(|ev| ["w", "q", "n"].map(|k| text(&batch, ev, &keys, k)))
                .collect();
            seen.push((failures, fields));
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[0].0, 2, "{:?}", seen[0]);
        assert_eq!(seen[0].1[0][2].as_deref(), Some("\u{663}2"), "`\\d` is Unicode-aware");
    }

    #[test]
    fn unanchored_search_and_meta_engine() {
        let (batch, failures, keys, engine) = run(&config(r"user=(?P<user>\w+)"), b"a user=bob b\nnobody\n");
        assert_eq!(engine, "meta");
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
    fn a_key_named_twice_is_one_field_holding_the_last_group() {
        let mut cfg = config(r"^(\w+) (\w+)$");
        cfg.keys = Some(vec!["word".into(), "word".into()]);
        let (batch, failures, keys, _) = run(&cfg, b"abc def\n");
        assert_eq!(failures, 0);
        assert_eq!(batch.events()[0].fields().len(), 1);
        assert_eq!(text(&batch, 0, &keys, "word").as_deref(), Some("def"));
    }

    #[test]
    fn build_errors_say_what_is_wrong() {
        let keys = KeyTable::new();
        let e = config("(?P<a>x").build(&keys).unwrap_err();
        assert_eq!(
            e.0,
            "`pattern` is not a valid regex: unclosed group, at column 1 of the pattern:\n  (?P<a>x\n  ^"
        );
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
