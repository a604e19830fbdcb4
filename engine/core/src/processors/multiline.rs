//! `multiline` as a processor: merges consecutive events of a batch into records with the
//! same rules as the inputs' `multiline:` option ([`crate::multiline`]), applied to one
//! field (default `message`).
//!
//! A processor sees one batch at a time, so a record that straddles two batches comes out
//! as two events. Prefer the input option, which frames records where the source is read
//! and is exact across chunks; use this processor when the lines to merge only exist after
//! other processing (e.g. a field extracted by `parse_json`). The merged text (lines joined
//! with `\n`) is written to the arena once per record; a record of one line stays as it is.

use serde::Deserialize;

use super::BuildError;
use crate::model::{Batch, Key, KeyTable, Value};
use crate::multiline::{MultilineConfig, RuleCaches, Rules, Step, Unmatched};
use crate::parse::default_field;
use crate::pipeline::Processor;

/// `multiline` (processor): the field, and the same rules as the inputs' option.
///
/// ```yaml
/// - type: multiline
///   field: message
///   rules: { preset: java }
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultilineProcessorConfig {
    /// The field whose lines are merged (default `message`).
    #[serde(default = "default_field")]
    pub field: String,
    /// The rules, as in an input's `multiline:` option.
    pub rules: MultilineConfig,
}

impl MultilineProcessorConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "field: message\nrules: { preset: java }\n";

    /// Compiles the rules.
    pub fn build(&self, keys: &KeyTable) -> Result<MultilineMerge, BuildError> {
        let rules = self.rules.build()?;
        if self.field.is_empty() {
            return Err(BuildError("`field` cannot be empty".into()));
        }
        let caches = rules.caches();
        Ok(MultilineMerge {
            key: keys.intern(&self.field),
            rules,
            caches,
            text: Vec::new(),
        })
    }
}

/// Runtime of [`MultilineProcessorConfig`].
#[derive(Debug)]
pub struct MultilineMerge {
    key: Key,
    rules: Rules,
    caches: RuleCaches,
    /// The open record's text.
    text: Vec<u8>,
}

/// The open record: its first event, lines and whether it was cut.
struct Open {
    first: usize,
    lines: u32,
    cut: bool,
}

impl MultilineMerge {
    fn close(&mut self, batch: &mut Batch, open: Option<Open>) {
        let Some(open) = open else { return };
        if open.lines > 1 {
            let span = batch.push_arena(&self.text);
            let (_, events) = batch.parts_mut();
            events[open.first].set(self.key, Value::Str(span));
        }
        if open.cut {
            let (_, events) = batch.parts_mut();
            events[open.first].set(Key::CUT, Value::Bool(true));
        }
    }
}

impl Processor for MultilineMerge {
    fn process(&mut self, batch: &mut Batch) {
        let mut open: Option<Open> = None;
        for i in 0..batch.len() {
            if !batch.events()[i].is_live() {
                continue;
            }
            let Some(Value::Str(span)) = batch.events()[i].get(self.key) else {
                // Not text: it ends the record and stays as it is.
                let done = open.take();
                self.close(batch, done);
                continue;
            };
            let step = self.rules.step(&mut self.caches, batch.bytes(span), open.is_some());
            match step {
                Step::Append | Step::AppendClose => {
                    let full = open.as_ref().is_some_and(|o| {
                        o.lines >= self.rules.max_lines || self.text.len() + 1 + span.len() > self.rules.max_bytes
                    });
                    if full {
                        let mut done = open.take();
                        if let Some(d) = done.as_mut() {
                            d.cut = true;
                        }
                        self.close(batch, done);
                        self.text.clear();
                        self.text.extend_from_slice(batch.bytes(span));
                        open = Some(Open {
                            first: i,
                            lines: 1,
                            cut: true,
                        });
                    } else {
                        let o = open.as_mut().expect("a record is open");
                        o.lines += 1;
                        self.text.push(b'\n');
                        let bytes = batch.bytes(span).to_vec();
                        self.text.extend_from_slice(&bytes);
                        batch.parts_mut().1[i].mark_dropped();
                    }
                    if step == Step::AppendClose {
                        let done = open.take();
                        self.close(batch, done);
                    }
                }
                Step::Open | Step::Single => {
                    let done = open.take();
                    self.close(batch, done);
                    self.text.clear();
                    self.text.extend_from_slice(batch.bytes(span));
                    open = Some(Open {
                        first: i,
                        lines: 1,
                        cut: false,
                    });
                    if step == Step::Single {
                        let done = open.take();
                        self.close(batch, done);
                    }
                }
                Step::Unmatched => {
                    let done = open.take();
                    self.close(batch, done);
                    if self.rules.unmatched == Unmatched::Discard {
                        batch.parts_mut().1[i].mark_dropped();
                    }
                }
            }
        }
        let done = open.take();
        self.close(batch, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};

    fn merged(cfg: &str, text: &str) -> String {
        let keys = KeyTable::new();
        let cfg: MultilineProcessorConfig = serde_json::from_str(&format!(r#"{{"rules":{cfg}}}"#)).unwrap();
        let mut p = cfg.build(&keys).unwrap();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        let batch = &mut batches[0];
        p.process(batch);
        batch.compact();
        // One event per output line; `\n` inside an event shows as `|`.
        batch
            .events()
            .iter()
            .map(|e| match e.get(Key::MESSAGE) {
                Some(Value::Str(s)) => String::from_utf8_lossy(batch.bytes(s)).replace('\n', "|"),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(" / ")
    }

    #[test]
    fn merges_within_a_batch_like_the_input_option() {
        assert_eq!(merged(r#"{"start":"S"}"#, "x\nS1\na\nb\nS2\n"), "x / S1|a|b / S2");
        assert_eq!(merged(r#"{"start":"S","unmatched":"discard"}"#, "x\nS1\na\n"), "S1|a");
        assert_eq!(
            merged(
                r#"{"preset":"java"}"#,
                "ERR x\njava.lang.Error: e\n\tat a.b(C.java:1)\nnext\n"
            ),
            "ERR x|java.lang.Error: e|\tat a.b(C.java:1) / next"
        );
    }

    #[test]
    fn limits_cut_records() {
        assert_eq!(merged(r#"{"end":"E","max_lines":2}"#, "a\nb\nc\nE\n"), "a|b / c|E");
    }
}
