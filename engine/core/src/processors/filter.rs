//! `filter`: keeps the events that satisfy conditions over their fields; the others are
//! dropped (counted by the pipeline's counters as events in minus events out).
//!
//! ```yaml
//! - type: filter
//!   include: { level: '^(ERROR|WARN)$' }   # every listed field must match
//!   exclude: { path: '^/health' }          # no listed field may match
//!   condition:                             # any tree of all / any / not over leaves
//!     any:
//!       - { field: status, matches: '^5' }
//!       - { field: retry, exists: true }
//! ```
//!
//! A leaf tests one field: `matches` (regex, unanchored unless the pattern anchors),
//! `equals` (exact text), `exists: true|false`, or `missing: true|false`. Non-string
//! values are matched by their JSON text (`503`, `true`). A missing field matches nothing.
//! Regexes run through regex-automata's `meta::Regex::is_match` (a lazy DFA: linear time,
//! no captures) with a cache kept in the processor.

use indexmap::IndexMap;
use regex_automata::{Input, meta};
use serde::Deserialize;

use super::BuildError;
use crate::model::{Batch, Bufs, Event, Key, KeyTable, Value};
use crate::pipeline::Processor;

/// One condition: exactly one of `all`, `any`, `not`, or a leaf on `field`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// True when every sub-condition is.
    #[serde(default)]
    pub all: Option<Vec<ConditionConfig>>,
    /// True when some sub-condition is.
    #[serde(default)]
    pub any: Option<Vec<ConditionConfig>>,
    /// True when the sub-condition is not.
    #[serde(default)]
    pub not: Option<Box<ConditionConfig>>,
    /// The field a leaf tests.
    #[serde(default)]
    pub field: Option<String>,
    /// Leaf: the field's text matches this regex.
    #[serde(default)]
    pub matches: Option<String>,
    /// Leaf: the field's text is exactly this.
    #[serde(default)]
    pub equals: Option<String>,
    /// Leaf: the field is present (`true`) or absent (`false`).
    #[serde(default)]
    pub exists: Option<bool>,
    /// Leaf: the field is absent (`true`) or present (`false`).
    #[serde(default)]
    pub missing: Option<bool>,
}

/// `filter`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Field -> regex; an event is kept only if every listed field matches.
    #[serde(default)]
    pub include: IndexMap<String, String>,
    /// Field -> regex; an event is dropped if any listed field matches.
    #[serde(default)]
    pub exclude: IndexMap<String, String>,
    /// A condition the event must satisfy.
    #[serde(default)]
    pub condition: Option<ConditionConfig>,
}

impl FilterConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "include: { level: '^(ERROR|WARN)$' }\nexclude: { path: '^/health' }\n";

    /// Compiles the conditions.
    pub fn build(&self, keys: &KeyTable) -> Result<Filter, BuildError> {
        if self.include.is_empty() && self.exclude.is_empty() && self.condition.is_none() {
            return Err(BuildError("filter needs `include`, `exclude` or `condition`".into()));
        }
        let leaves = |which: &str, map: &IndexMap<String, String>| -> Result<Vec<Cond>, BuildError> {
            map.iter()
                .map(|(field, pattern)| matches(key(keys, field)?, &format!("`{which}.{field}`"), pattern))
                .collect()
        };
        let mut all = leaves("include", &self.include)?;
        let exclude = leaves("exclude", &self.exclude)?;
        if !exclude.is_empty() {
            all.push(Cond::Not(Box::new(Cond::Any(exclude))));
        }
        if let Some(c) = &self.condition {
            all.push(c.build(keys)?);
        }
        let mut cond = if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Cond::All(all)
        };
        let mut caches = Vec::new();
        cond.assign_caches(&mut caches);
        Ok(Filter {
            cond,
            caches,
            text: Vec::new(),
        })
    }
}

fn key(keys: &KeyTable, field: &str) -> Result<Key, BuildError> {
    if field.is_empty() {
        return Err(BuildError("a field name cannot be empty".into()));
    }
    Ok(keys.intern(field))
}

/// A `Matches` leaf; its cache index is assigned once the tree is built. `what` names the
/// pattern in the config, for the error.
fn matches(field: Key, what: &str, pattern: &str) -> Result<Cond, BuildError> {
    let re = crate::pattern::compile(what, pattern)?;
    Ok(Cond::Matches(field, re, usize::MAX))
}

impl ConditionConfig {
    fn build(&self, keys: &KeyTable) -> Result<Cond, BuildError> {
        let kinds = [
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.field.is_some(),
        ];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return Err(BuildError(
                "a condition has exactly one of `all`, `any`, `not`, or `field` with a test".into(),
            ));
        }
        if let Some(list) = &self.all {
            return Ok(Cond::All(list.iter().map(|c| c.build(keys)).collect::<Result<_, _>>()?));
        }
        if let Some(list) = &self.any {
            return Ok(Cond::Any(list.iter().map(|c| c.build(keys)).collect::<Result<_, _>>()?));
        }
        if let Some(c) = &self.not {
            return Ok(Cond::Not(Box::new(c.build(keys)?)));
        }
        let name = self.field.as_deref().expect("checked");
        let field = key(keys, name)?;
        let tests = [
            self.matches.is_some(),
            self.equals.is_some(),
            self.exists.is_some(),
            self.missing.is_some(),
        ];
        if tests.iter().filter(|&&t| t).count() != 1 {
            return Err(BuildError(
                "a field condition has exactly one of `matches`, `equals`, `exists`, `missing`".into(),
            ));
        }
        Ok(if let Some(p) = &self.matches {
            matches(field, &format!("`matches` of the condition on `{name}`"), p)?
        } else if let Some(text) = &self.equals {
            Cond::Equals(field, text.clone().into_bytes())
        } else if let Some(e) = self.exists {
            Cond::Exists(field, e)
        } else {
            Cond::Exists(field, !self.missing.expect("checked"))
        })
    }
}

/// A compiled condition. `Matches` holds its regex and the index of its cache.
#[derive(Debug)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Matches(Key, meta::Regex, usize),
    Equals(Key, Vec<u8>),
    Exists(Key, bool),
}

impl Cond {
    /// Gives every `Matches` leaf its own cache, in tree order.
    fn assign_caches(&mut self, caches: &mut Vec<meta::Cache>) {
        match self {
            Cond::All(v) | Cond::Any(v) => v.iter_mut().for_each(|c| c.assign_caches(caches)),
            Cond::Not(c) => c.assign_caches(caches),
            Cond::Matches(_, re, index) => {
                *index = caches.len();
                caches.push(re.create_cache());
            }
            Cond::Equals(..) | Cond::Exists(..) => {}
        }
    }
}

/// Runtime of [`FilterConfig`].
#[derive(Debug)]
pub struct Filter {
    cond: Cond,
    /// One regex cache per `Matches` leaf, in tree order.
    caches: Vec<meta::Cache>,
    /// Scratch for the text of non-string values.
    text: Vec<u8>,
}

/// Evaluates `cond`, stopping as soon as the answer is known.
fn eval(cond: &Cond, event: &Event, bufs: &Bufs<'_>, caches: &mut [meta::Cache], text: &mut Vec<u8>) -> bool {
    match cond {
        Cond::All(list) => list.iter().all(|c| eval(c, event, bufs, caches, text)),
        Cond::Any(list) => list.iter().any(|c| eval(c, event, bufs, caches, text)),
        Cond::Not(c) => !eval(c, event, bufs, caches, text),
        Cond::Matches(key, re, cache) => match value_text(event.get(*key), bufs, text) {
            Some(bytes) => re
                .search_half_with(&mut caches[*cache], &Input::new(bytes).earliest(true))
                .is_some(),
            None => false,
        },
        Cond::Equals(key, want) => value_text(event.get(*key), bufs, text) == Some(want.as_slice()),
        Cond::Exists(key, want) => event.get(*key).is_some() == *want,
    }
}

/// The text a condition sees for a value: the bytes of a string, the JSON of the rest.
fn value_text<'a>(value: Option<Value>, bufs: &'a Bufs<'_>, text: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    match value? {
        Value::Str(s) | Value::Json(s) => Some(bufs.bytes(s)),
        Value::Int(i) => {
            text.clear();
            text.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            Some(text)
        }
        Value::Float(f) => {
            text.clear();
            text.extend_from_slice(ryu::Buffer::new().format(f).as_bytes());
            Some(text)
        }
        Value::Bool(b) => Some(if b { b"true" } else { b"false" }),
        Value::Null => Some(b"null"),
    }
}

impl Processor for Filter {
    fn process(&mut self, batch: &mut Batch) {
        let (bufs, events) = batch.live_mut();
        for event in events {
            if !eval(&self.cond, event, &bufs, &mut self.caches, &mut self.text) {
                event.mark_dropped();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::json::ParseJsonConfig;

    fn kept(cfg: &str, lines: &str) -> Vec<usize> {
        let keys = KeyTable::new();
        let filter: FilterConfig = serde_json::from_str(cfg).unwrap();
        let mut filter = filter.build(&keys).unwrap();
        let json: ParseJsonConfig = serde_json::from_str("{}").unwrap();
        let mut json = json.build(&keys).unwrap();
        let (mut batches, _) =
            crate::line::read_all(lines.as_bytes(), 1 << 16, &crate::line::LineOptions::default()).unwrap();
        let batch = &mut batches[0];
        json.process(batch);
        filter.process(batch);
        batch
            .events()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_live())
            .map(|(i, _)| i)
            .collect()
    }

    const LOGS: &str = r#"{"level":"ERROR","status":503,"path":"/api"}
{"level":"INFO","status":200,"path":"/health"}
{"level":"WARN","status":404,"path":"/api","retry":true}
{"level":"ERROR","path":"/health"}
"#;

    #[test]
    fn include_and_exclude() {
        assert_eq!(kept(r#"{"include":{"level":"^(ERROR|WARN)$"}}"#, LOGS), vec![0, 2, 3]);
        assert_eq!(kept(r#"{"exclude":{"path":"^/health"}}"#, LOGS), vec![0, 2]);
        assert_eq!(
            kept(r#"{"include":{"level":"ERROR"},"exclude":{"path":"health"}}"#, LOGS),
            vec![0]
        );
        // Numbers match by their text; a missing field matches nothing.
        assert_eq!(kept(r#"{"include":{"status":"^5"}}"#, LOGS), vec![0]);
    }

    #[test]
    fn condition_trees() {
        let any = r#"{"condition":{"any":[{"field":"status","matches":"^5"},{"field":"retry","exists":true}]}}"#;
        assert_eq!(kept(any, LOGS), vec![0, 2]);
        let not = r#"{"condition":{"not":{"field":"status","missing":true}}}"#;
        assert_eq!(kept(not, LOGS), vec![0, 1, 2]);
        let all =
            r#"{"condition":{"all":[{"field":"level","equals":"ERROR"},{"not":{"field":"path","equals":"/api"}}]}}"#;
        assert_eq!(kept(all, LOGS), vec![3]);
        let eq_bool = r#"{"condition":{"field":"retry","equals":"true"}}"#;
        assert_eq!(kept(eq_bool, LOGS), vec![2]);
    }

    #[test]
    fn build_errors() {
        let keys = KeyTable::new();
        let bad = |s: &str| {
            serde_json::from_str::<FilterConfig>(s)
                .unwrap()
                .build(&keys)
                .unwrap_err()
                .0
        };
        assert!(bad("{}").contains("needs"));
        assert!(
            bad(r#"{"include":{"a":"("}}"#)
                .starts_with("`include.a` is not a valid regex: unclosed group, at column 1")
        );
        assert!(
            bad(r#"{"exclude":{"b":"x{2,1}"}}"#).starts_with("`exclude.b` is not a valid regex: invalid repetition")
        );
        assert!(
            bad(r#"{"condition":{"not":{"field":"c","matches":"[z-a]"}}}"#)
                .starts_with("`matches` of the condition on `c` is not a valid regex: invalid character class range")
        );
        assert!(bad(r#"{"condition":{"field":"a"}}"#).contains("exactly one of `matches`"));
        assert!(bad(r#"{"condition":{"field":"a","exists":true,"all":[]}}"#).contains("exactly one of `all`"));
    }
}
