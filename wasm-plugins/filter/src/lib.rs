//! `filter`: keeps the events whose fields match regexes, like the native `filter`
//! processor's `include` / `exclude` (the Wasm side of the performance comparison in
//! `perf/benches/wasm.rs`).
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/filter.wasm
//!   config:
//!     include: { level: '^(error|warn)$' }   # every listed field must match
//!     exclude: { path: '^/health' }          # no listed field may match
//! ```
//!
//! The host flattens nested maps to dotted keys, so the plugin reads `include.level` and
//! `exclude.path` (the same keys `weir plugin test --config include.level=...` gives).
//! As in the native filter: regexes are unanchored unless they anchor, a non-string value
//! is matched by its JSON text (`503`, `true`), and a missing field matches nothing (so an
//! event missing an `include` field is dropped, one missing an `exclude` field is kept).

use regex::bytes::Regex;
use weir_sdk::{BatchView, Config, Edits, Error, EventView, Plugin, ValueRef};

struct Filter {
    include: Vec<(String, Rule)>,
    exclude: Vec<(String, Rule)>,
    /// Scratch for the text of non-string values.
    text: String,
}

/// A pattern and the answers it gave for recent short values: the fields filters test
/// (levels, services, status codes) take few distinct values, and looking one up among
/// remembered ones is cheaper than running the regex again.
struct Rule {
    re: Regex,
    /// Remembered values of up to 16 bytes, each as words ([`pack`]), in sets of two by a
    /// hash of the words: a look-up compares two entries, without a branch on which one
    /// matched, and never calls `memcmp` (in Wasm, a loop over bytes). A third value in a
    /// set pushes out the older of the two.
    seen: Box<[[Seen; 2]; SETS]>,
}

/// An answer remembered for a value ([`pack`]ed; all zero: none yet).
#[derive(Clone, Copy, Default)]
struct Seen {
    value: [u64; 3],
    hit: bool,
}

/// Sets of remembered values per rule (64 values in all).
const SETS: usize = 32;

/// A value of at most 16 bytes as words that differ for any two different values and are
/// never all zero: the length plus one, and overlapping loads from both ends, which cover
/// every byte of that length.
fn pack(b: &[u8]) -> Option<[u64; 3]> {
    let n = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")));
    let [lo, hi] = match n {
        17.. => return None,
        8.. => [word(0), word(n - 8)],
        4.. => [half(0) | (half(n - 4) << 32), 0],
        1.. => [
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
            0,
        ],
        0 => [0, 0],
    };
    Some([lo, hi, n as u64 + 1])
}

impl Rule {
    fn new(re: Regex) -> Rule {
        Rule {
            re,
            seen: Box::new([[Seen::default(); 2]; SETS]),
        }
    }

    fn is_match(&mut self, bytes: &[u8]) -> bool {
        let Some(p) = pack(bytes) else {
            return self.re.is_match(bytes);
        };
        let mix = (p[0] ^ p[1].rotate_left(23) ^ p[2]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let set = &mut self.seen[(mix >> 59) as usize % SETS];
        let same = |s: &Seen| (s.value[0] == p[0]) & (s.value[1] == p[1]) & (s.value[2] == p[2]);
        let (a, b) = (same(&set[0]), same(&set[1]));
        if a | b {
            return (a & set[0].hit) | (b & set[1].hit);
        }
        let hit = self.re.is_match(bytes);
        set[1] = set[0];
        set[0] = Seen { value: p, hit };
        hit
    }
}

fn compile(key: &str, pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|e| Error::fatal(format!("config `{key}`: bad pattern `{pattern}`: {e}")))
}

impl Plugin for Filter {
    fn init(config: &Config) -> Result<Self, Error> {
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for (key, pattern) in config.iter() {
            let (list, field) = if let Some(field) = key.strip_prefix("include.") {
                (&mut include, field)
            } else if let Some(field) = key.strip_prefix("exclude.") {
                (&mut exclude, field)
            } else {
                return Err(Error::fatal(format!(
                    "unknown config key `{key}` (expected include.FIELD or exclude.FIELD)"
                )));
            };
            if field.is_empty() {
                return Err(Error::fatal(format!("config `{key}`: the field name is empty")));
            }
            list.push((field.to_string(), Rule::new(compile(key, pattern)?)));
        }
        if include.is_empty() && exclude.is_empty() {
            return Err(Error::fatal("filter needs include.FIELD or exclude.FIELD entries"));
        }
        Ok(Filter {
            include,
            exclude,
            text: String::new(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        // Once per batch: a field the batch lacks is missing from every event.
        let mut include: Vec<_> = self.include.iter_mut().map(|(f, rule)| (batch.key(f), rule)).collect();
        let mut exclude: Vec<_> = self.exclude.iter_mut().map(|(f, rule)| (batch.key(f), rule)).collect();
        if include.iter().any(|(key, _)| key.is_none()) {
            // Every event misses an included field: drop them all.
            for event in batch.events() {
                edits.drop(&event);
            }
            return Ok(());
        }
        let text = &mut self.text;
        for event in batch.events() {
            let keep = include
                .iter_mut()
                .all(|(key, rule)| key.is_some_and(|k| field_matches(&event, k, rule, text)))
                && !exclude
                    .iter_mut()
                    .any(|(key, rule)| key.is_some_and(|k| field_matches(&event, k, rule, text)));
            if !keep {
                edits.drop(&event);
            }
        }
        Ok(())
    }
}

/// Whether the field `key` of `event` exists and its text matches `re`.
#[inline]
fn field_matches(event: &EventView<'_>, key: weir_sdk::Key, rule: &mut Rule, text: &mut String) -> bool {
    use std::fmt::Write;
    let Some(value) = event.get(key) else { return false };
    let bytes: &[u8] = match value {
        ValueRef::Str(b) | ValueRef::Json(b) => b,
        ValueRef::Null => b"null",
        ValueRef::Bool(true) => b"true",
        ValueRef::Bool(false) => b"false",
        ValueRef::Int(i) => {
            text.clear();
            let _ = write!(text, "{i}");
            text.as_bytes()
        }
        ValueRef::Float(f) => {
            text.clear();
            let _ = write!(text, "{f}");
            text.as_bytes()
        }
    };
    rule.is_match(bytes)
}

weir_sdk::export!(Filter);
