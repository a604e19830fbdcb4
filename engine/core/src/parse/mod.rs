//! Parsers: processors that read one field and turn it into fields (or a timestamp).
//!
//! Every parser shares one mechanism, [`FieldParser`]: it takes the source field of each
//! live event, asks the [`FieldParse`] implementation for fields, and on success removes
//! the source (unless `keep_source`) and sets the new fields; on failure it applies the
//! one failure policy of every parser, [`OnFailure`], and counts the failure. Nothing is
//! ever lost silently.
//!
//! Config keys every parser accepts (repeated in each config struct, since serde's
//! `flatten` would lose the line:column of errors): `field` (default `message`; `time` for
//! `parse_timestamp`), `keep_source`, `on_failure`, `error_field`.

pub mod delimiter;
pub mod json;
mod json_scan;
pub mod kv;
pub mod regex;
mod scanner;
pub mod syslog;
pub mod time;

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::{Batch, Bufs, Field, Key, KeyTable, Span, Value};
use crate::pipeline::Processor;
use crate::processors::BuildError;

/// What a parser does with an event whose field does not parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Keep the event unchanged (plus the `error_field`, if set) and count the failure.
    #[default]
    Keep,
    /// Drop the event and count it.
    Drop,
    /// Send the event, with an `_error` field (or `error_field`), to the pipeline's
    /// dead-letter output, and count it.
    DeadLetter,
}

/// Why a value did not parse. Short, for the `_error` field and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFailure(pub Cow<'static, str>);

impl ParseFailure {
    /// A failure with a fixed reason.
    pub const fn fixed(reason: &'static str) -> ParseFailure {
        ParseFailure(Cow::Borrowed(reason))
    }
}

/// The failure of a parser that found a new field name when the pipeline's key table is
/// full ([`KeyTable::MAX_KEYS`]).
pub const TOO_MANY_KEYS: ParseFailure =
    ParseFailure::fixed("too many distinct field names, or too long ones (the key table is full)");

/// What one parse produced: fields to set and, for timestamp parsers, the event time.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Fields to set on the event, in order.
    pub fields: Vec<Field>,
    /// Event time in nanoseconds since the Unix epoch (UTC).
    pub timestamp: Option<i64>,
}

impl Parsed {
    /// Adds field `key` with `value`.
    #[inline]
    pub fn push(&mut self, key: Key, value: Value) {
        self.fields.push(Field { key, value });
    }

    fn clear(&mut self) {
        self.fields.clear();
        self.timestamp = None;
    }
}

/// A parser of one value. Implementations hold their compiled state and per-worker
/// scratch; they allocate nothing per event in the steady state.
pub trait FieldParse: Send {
    /// Parses the bytes of `input` (a span of the batch: sub-spans of it are zero-copy
    /// values; `bufs.push` writes new bytes to the arena) into `out`, which is empty.
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure>;

    /// Called before the events of each batch: spans a parser wrote to the arena belong to
    /// that batch, so a parser that reuses them across events forgets them here.
    fn begin_batch(&mut self) {}

    /// True when the keys of one parse are always distinct from each other (a fixed set,
    /// each key at most once, as a regex's named groups are): an event holding only the
    /// source then takes the parsed fields in one copy, with no check for keys it holds.
    fn distinct_keys(&self) -> bool {
        false
    }
}

/// Whether no key of `keys` is there twice.
pub(crate) fn all_distinct(keys: impl IntoIterator<Item = Key>) -> bool {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter().all(|key| seen.insert(key))
}

/// The settings every parser shares, resolved to keys.
#[derive(Debug, Clone)]
pub struct Common {
    source: Key,
    keep_source: bool,
    on_failure: OnFailure,
    error_key: Option<Key>,
}

impl Common {
    /// Resolves the shared keys: `field`, `keep_source`, `on_failure`, `error_field`.
    /// With `dead_letter` and no `error_field`, failures are described in `_error`.
    pub fn new(
        keys: &KeyTable,
        field: &str,
        keep_source: bool,
        on_failure: OnFailure,
        error_field: Option<&str>,
    ) -> Result<Common, BuildError> {
        if field.is_empty() {
            return Err(BuildError("`field` cannot be empty".into()));
        }
        let error_field = match (error_field, on_failure) {
            (Some(""), _) => return Err(BuildError("`error_field` cannot be empty".into())),
            (Some(name), _) => Some(name),
            (None, OnFailure::DeadLetter) => Some("_error"),
            (None, _) => None,
        };
        Ok(Common {
            source: keys.intern(field),
            keep_source,
            on_failure,
            error_key: error_field.map(|f| keys.intern(f)),
        })
    }

    /// The policy.
    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }
}

/// The default source field of parsers.
pub fn default_field() -> String {
    "message".to_string()
}

/// A [`FieldParse`] run over every live event with the shared failure policy.
#[derive(Debug)]
pub struct FieldParser<P> {
    parser: P,
    common: Common,
    parsed: Parsed,
    failures: u64,
    /// `prefix: reason` written to the error field; the prefix names the processor.
    prefix: &'static str,
}

impl<P: FieldParse> FieldParser<P> {
    /// Wraps `parser`; `name` (the processor type) prefixes failure reasons.
    pub fn new(name: &'static str, parser: P, common: Common) -> FieldParser<P> {
        FieldParser {
            parser,
            common,
            parsed: Parsed::default(),
            failures: 0,
            prefix: name,
        }
    }

    /// The wrapped parser.
    pub fn parser(&self) -> &P {
        &self.parser
    }
}

impl<P: FieldParse> Processor for FieldParser<P> {
    fn process(&mut self, batch: &mut Batch) {
        self.parser.begin_batch();
        let (mut bufs, events) = batch.live_mut();
        let c = &self.common;
        // The usual case: the source is the event's one field and goes, and the parser's
        // keys cannot clash with each other, so the parsed fields replace it as they are.
        let replace = !c.keep_source && self.parser.distinct_keys();
        let mut error = String::new();
        for event in events {
            self.parsed.clear();
            let result = match event.get(c.source) {
                Some(Value::Str(span)) | Some(Value::Json(span)) => {
                    self.parser.parse(span, &mut bufs, &mut self.parsed)
                }
                Some(_) => Err(ParseFailure::fixed("the field is not a string")),
                None => Err(ParseFailure::fixed("the field is missing")),
            };
            match result {
                Ok(()) => {
                    if replace && event.holds_only(c.source) {
                        event.replace_fields(&self.parsed.fields);
                    } else {
                        if !c.keep_source {
                            event.remove(c.source);
                        }
                        event.extend_fields(&self.parsed.fields);
                    }
                    if let Some(ts) = self.parsed.timestamp {
                        event.timestamp = Some(ts);
                    }
                }
                Err(failure) => {
                    self.failures += 1;
                    if let Some(key) = c.error_key {
                        error.clear();
                        error.push_str(self.prefix);
                        error.push_str(": ");
                        error.push_str(&failure.0);
                        let span = bufs.push(error.as_bytes());
                        event.set(key, Value::Str(span));
                    }
                    match c.on_failure {
                        OnFailure::Keep => {}
                        OnFailure::Drop => event.mark_dropped(),
                        OnFailure::DeadLetter => event.mark_dead_letter(),
                    }
                }
            }
        }
    }

    fn take_failures(&mut self) -> u64 {
        std::mem::take(&mut self.failures)
    }
}

/// Helpers shared by the parsers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::line::{LineOptions, read_all};
    use crate::model::Batch;
    use crate::pipeline::Processor;

    /// Runs a processor from `build` over `text` at a 64 KiB chunk size, then a fresh one at
    /// 7 bytes, and checks both render alike (scratch state must not leak between events or
    /// batches). Returns the rendering, the failures of the first run and its batches.
    pub(crate) fn run_twice<P: Processor>(
        build: impl Fn() -> P,
        text: &str,
        render: impl Fn(&[Batch]) -> Vec<String>,
    ) -> (Vec<String>, u64, Vec<Batch>) {
        let mut parser = build();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        let mut failures = 0;
        for batch in &mut batches {
            parser.process(batch);
            failures += parser.take_failures();
        }
        let events = render(&batches);
        let (mut small, _) = read_all(text.as_bytes(), 7, &LineOptions::default()).unwrap();
        let mut again = build();
        for batch in &mut small {
            again.process(batch);
        }
        assert_eq!(render(&small), events, "chunk size changes the result");
        (events, failures, batches)
    }

    /// Each live event as `name=value` pairs joined by `sep`; string values quoted
    /// (`{:?}`) when `quote` is set, other values as their `Debug` form.
    pub(crate) fn render(batches: &[Batch], keys: &crate::model::KeyTable, quote: bool, sep: &str) -> Vec<String> {
        let mut events = Vec::new();
        for batch in batches {
            for event in batch.live() {
                let fields: Vec<String> = event
                    .fields()
                    .iter()
                    .map(|f| {
                        let v = match f.value {
                            crate::model::Value::Str(s) if quote => {
                                format!("{:?}", String::from_utf8_lossy(batch.bytes(s)))
                            }
                            crate::model::Value::Str(s) => String::from_utf8_lossy(batch.bytes(s)).into_owned(),
                            other => format!("{other:?}"),
                        };
                        format!("{}={v}", keys.name(f.key))
                    })
                    .collect();
                events.push(fields.join(sep));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};

    /// Parses `k=v` with exactly one `=`.
    struct OneKv(Key);
    impl FieldParse for OneKv {
        fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
            let bytes = bufs.bytes(input);
            let eq = bytes
                .iter()
                .position(|&b| b == b'=')
                .ok_or(ParseFailure::fixed("no `=`"))?;
            out.push(self.0, Value::Str(input.slice(eq + 1, bytes.len() - eq - 1)));
            Ok(())
        }
    }

    fn run(on_failure: OnFailure, keep_source: bool, error_field: Option<&str>) -> (Batch, u64, KeyTable) {
        let keys = KeyTable::new();
        let (mut batches, _) = read_all(&b"k=v\nbroken\n"[..], 1 << 10, &LineOptions::default()).unwrap();
        let common = Common::new(&keys, "message", keep_source, on_failure, error_field).unwrap();
        let mut p = FieldParser::new("one_kv", OneKv(keys.intern("k")), common);
        let mut batch = batches.remove(0);
        p.process(&mut batch);
        let failures = p.take_failures();
        (batch, failures, std::sync::Arc::try_unwrap(keys).unwrap())
    }

    #[test]
    fn success_removes_the_source_unless_kept() {
        let (batch, failures, keys) = run(OnFailure::Keep, false, None);
        assert_eq!(failures, 1);
        let ok = &batch.events()[0];
        assert_eq!(ok.get(Key::MESSAGE), None);
        let Some(Value::Str(v)) = ok.get(keys.intern("k")) else {
            panic!()
        };
        assert_eq!(batch.bytes(v), b"v");
        let (batch, _, _) = run(OnFailure::Keep, true, None);
        assert!(batch.events()[0].get(Key::MESSAGE).is_some());
    }

    #[test]
    fn keep_leaves_the_event_unchanged_or_adds_the_error_field() {
        let (batch, _, _) = run(OnFailure::Keep, false, None);
        let bad = &batch.events()[1];
        assert!(bad.is_live());
        assert_eq!(bad.fields().len(), 1);
        let (batch, _, keys) = run(OnFailure::Keep, false, Some("why"));
        let Some(Value::Str(why)) = batch.events()[1].get(keys.intern("why")) else {
            panic!()
        };
        assert_eq!(batch.bytes(why), b"one_kv: no `=`");
    }

    #[test]
    fn drop_and_dead_letter() {
        let (mut batch, failures, _) = run(OnFailure::Drop, false, None);
        assert_eq!(failures, 1);
        batch.compact();
        assert_eq!(batch.len(), 1);
        let (batch, _, keys) = run(OnFailure::DeadLetter, false, None);
        assert_eq!(batch.live().count(), 1);
        let dead: Vec<_> = batch.dead_letters().collect();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].get(keys.intern("_error")).is_some());
    }
}
