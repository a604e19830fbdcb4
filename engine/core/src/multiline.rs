//! Multiline rules: which lines start, continue or end a record.
//!
//! Patterns are matched at the start of each line (anchored, like `^` in front of them)
//! with regex-automata (a lazy DFA asked only for "is there a match here": linear time,
//! no captures). To test the end of a line, write `.*X$`.
//!
//! The combinations, decided line by line ([`Rules::step`]):
//!
//! | keys | a record is | use case |
//! |---|---|---|
//! | `start` | a `start` line and every line up to the next `start` line | logs whose entries begin with a timestamp; a Java exception under its log line |
//! | `start` + `continue` | a `start` line and the `continue` lines right after it; other lines are single-line records | Python tracebacks (`Traceback ...` then indented frames), Go panics |
//! | `start` + `end` | a `start` line through the next `end` line | blocks with markers (`BEGIN` ... `END`), pretty-printed JSON |
//! | `continue` | a line and the `continue` lines right after it | indented continuation lines (`\tat ...`, `Caused by: ...`) |
//! | `continue` + `end` | as `continue`, and an `end` line closes the record | continuation lines with a terminator line |
//! | `end` | lines up to and including an `end` line | statements terminated by a marker (`.*;$`) |
//!
//! With `start`, lines before the first `start` line (and, with `start` + `continue` or
//! `start` + `end`, lines outside a record) are `unmatched`: kept as single-line records
//! (default) or discarded (counted). A record that reaches `max_lines` or `max_bytes` is
//! closed where it stands, flagged `_cut: true`, and the rest goes on as a new record, also
//! flagged: nothing is lost and memory stays bounded.

use regex_automata::{Anchored, Input, meta};
use serde::Deserialize;

use crate::processors::BuildError;
use crate::units::ByteSize;

/// What to do with lines outside any record when `start` is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Each is a record of its own.
    #[default]
    SingleLine,
    /// They are dropped and counted.
    Discard,
}

/// Ready-made rules for common stack traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Java exceptions: `Exception: ...` / `Error: ...` lines, `\tat ...` frames,
    /// `... N more`, `Caused by:` and `Suppressed:` join the line before them.
    Java,
    /// Python tracebacks: `Traceback (most recent call last):`, indented frames, the final
    /// `SomethingError: ...` line, and chained-exception notes.
    Python,
    /// Go panics: `panic:` / `fatal error:` followed by goroutine dumps.
    Go,
    /// Ruby backtraces: `from file:line:in ...` lines and Ruby 2.x reversed traces.
    Ruby,
}

impl Preset {
    /// (start, continue, end) patterns.
    fn patterns(self) -> (Option<&'static str>, Option<&'static str>, Option<&'static str>) {
        match self {
            Preset::Java => (
                None,
                Some(
                    r"\s+at \S|\s+\.\.\. \d+ (?:more|common frames omitted)|\s*Caused by: |\s*Suppressed: |(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)",
                ),
                None,
            ),
            Preset::Python => (
                None,
                Some(
                    r"Traceback \(most recent call last\):|[ \t]+\S|(?:[\w.]+\.)?\w*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)(?::|$)|During handling of the above exception|The above exception was the direct cause|$",
                ),
                None,
            ),
            Preset::Go => (
                Some(r"panic: |fatal error: |runtime: "),
                Some(r"$|goroutine \d+ \[|\t|\S+\(.*\)$|created by |exit status \d+|\[signal |panic: |\s+"),
                None,
            ),
            Preset::Ruby => (
                None,
                Some(r"\s+from \S|\s+\d+: from \S|Traceback \(most recent call last\):"),
                None,
            ),
        }
    }
}

fn default_max_lines() -> u32 {
    1000
}

fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

/// The `multiline:` option of an input.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line that starts a record.
    #[serde(default)]
    pub start: Option<String>,
    /// A line that continues the current record.
    #[serde(default, rename = "continue")]
    pub continue_: Option<String>,
    /// A line that ends the current record (and belongs to it).
    #[serde(default)]
    pub end: Option<String>,
    /// Ready-made patterns (cannot be combined with start/continue/end).
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Most lines in one record (default 1000).
    #[serde(default = "default_max_lines")]
    pub max_lines: u32,
    /// Most bytes in one record (default 1 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Lines outside records when `start` is set: `single_line` (default) or `discard`.
    #[serde(default)]
    pub unmatched: Unmatched,
}

impl MultilineConfig {
    /// An example.
    pub const EXAMPLE: &'static str = "start: '\\d{4}-\\d{2}-\\d{2}'\nmax_lines: 500\n";

    /// Compiles the patterns.
    pub fn build(&self) -> Result<Rules, BuildError> {
        let (start, cont, end) = match self.preset {
            Some(p) => {
                if self.start.is_some() || self.continue_.is_some() || self.end.is_some() {
                    return Err(BuildError(
                        "multiline: `preset` cannot be combined with start/continue/end".into(),
                    ));
                }
                let (s, c, e) = p.patterns();
                (s.map(String::from), c.map(String::from), e.map(String::from))
            }
            None => (self.start.clone(), self.continue_.clone(), self.end.clone()),
        };
        if start.is_none() && cont.is_none() && end.is_none() {
            return Err(BuildError(
                "multiline needs `start`, `continue`, `end` or a `preset`".into(),
            ));
        }
        if self.max_lines == 0 || self.max_bytes.0 == 0 {
            return Err(BuildError(
                "multiline: max_lines and max_bytes must be at least 1".into(),
            ));
        }
        let compile = |what: &str, p: Option<String>| -> Result<Option<meta::Regex>, BuildError> {
            p.map(|p| crate::pattern::compile(&format!("multiline `{what}`"), &p))
                .transpose()
        };
        Ok(Rules {
            start: compile("start", start)?,
            cont: compile("continue", cont)?,
            end: compile("end", end)?,
            max_lines: self.max_lines,
            max_bytes: usize::try_from(self.max_bytes.0).unwrap_or(usize::MAX),
            unmatched: self.unmatched,
        })
    }
}

/// Compiled multiline rules. Immutable; matching state lives in [`RuleCaches`].
#[derive(Clone, Debug)]
pub struct Rules {
    start: Option<meta::Regex>,
    cont: Option<meta::Regex>,
    end: Option<meta::Regex>,
    /// Most lines in one record.
    pub max_lines: u32,
    /// Most bytes in one record.
    pub max_bytes: usize,
    /// Lines outside records.
    pub unmatched: Unmatched,
}

/// Per-user regex caches for [`Rules`].
#[derive(Debug)]
pub struct RuleCaches {
    start: Option<meta::Cache>,
    cont: Option<meta::Cache>,
    end: Option<meta::Cache>,
}

/// What to do with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Add the line to the open record.
    Append,
    /// Add the line to the open record, then close it.
    AppendClose,
    /// Close the open record (if any), then open a new one with this line.
    Open,
    /// Close the open record (if any); the line is a record of its own.
    Single,
    /// Close the open record (if any); the line is outside any record (`unmatched`).
    Unmatched,
}

fn is_match(re: &Option<meta::Regex>, cache: &mut Option<meta::Cache>, line: &[u8]) -> bool {
    match (re, cache) {
        (Some(re), Some(cache)) => re
            .search_half_with(cache, &Input::new(line).anchored(Anchored::Yes).earliest(true))
            .is_some(),
        _ => false,
    }
}

impl Rules {
    /// Fresh caches for one user of these rules.
    pub fn caches(&self) -> RuleCaches {
        RuleCaches {
            start: self.start.as_ref().map(meta::Regex::create_cache),
            cont: self.cont.as_ref().map(meta::Regex::create_cache),
            end: self.end.as_ref().map(meta::Regex::create_cache),
        }
    }

    /// What to do with `line`, given whether a record is open. Limits are the caller's.
    pub fn step(&self, caches: &mut RuleCaches, line: &[u8], open: bool) -> Step {
        if open {
            if self.end.is_some() && is_match(&self.end, &mut caches.end, line) {
                return Step::AppendClose;
            }
            if self.start.is_none() || !is_match(&self.start, &mut caches.start, line) {
                match &self.cont {
                    None => return Step::Append,
                    Some(_) if is_match(&self.cont, &mut caches.cont, line) => return Step::Append,
                    // Not a continuation: the record closes; the line is judged afresh.
                    Some(_) => return self.fresh(caches, line, false),
                }
            }
            return self.fresh(caches, line, true);
        }
        self.fresh(caches, line, false)
    }

    /// A line that is not added to an open record. `is_start` when already known.
    fn fresh(&self, caches: &mut RuleCaches, line: &[u8], is_start: bool) -> Step {
        let opens = match &self.start {
            Some(_) => is_start || is_match(&self.start, &mut caches.start, line),
            None => true,
        };
        if !opens {
            return Step::Unmatched;
        }
        if self.end.is_some() && is_match(&self.end, &mut caches.end, line) {
            return Step::Single;
        }
        Step::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(start: Option<&str>, cont: Option<&str>, end: Option<&str>) -> Rules {
        MultilineConfig {
            start: start.map(String::from),
            continue_: cont.map(String::from),
            end: end.map(String::from),
            preset: None,
            max_lines: 10,
            max_bytes: ByteSize(1000),
            unmatched: Unmatched::SingleLine,
        }
        .build()
        .unwrap()
    }

    /// Groups `lines` into records with the steps alone (no limits).
    fn group(r: &Rules, lines: &[&str]) -> Vec<String> {
        let mut caches = r.caches();
        let mut out: Vec<String> = Vec::new();
        let mut open: Option<String> = None;
        for l in lines {
            match r.step(&mut caches, l.as_bytes(), open.is_some()) {
                Step::Append => open.as_mut().unwrap().push_str(&format!("|{l}")),
                Step::AppendClose => {
                    let mut rec = open.take().unwrap();
                    rec.push_str(&format!("|{l}"));
                    out.push(rec);
                }
                Step::Open => {
                    out.extend(open.take());
                    open = Some(l.to_string());
                }
                Step::Single | Step::Unmatched => {
                    out.extend(open.take());
                    out.push(l.to_string());
                }
            }
        }
        out.extend(open);
        out
    }

    #[test]
    fn every_combination() {
        let lines = ["S1", "a", "b", "S2", "E", "x", "S3", "c"];
        assert_eq!(
            group(&rules(Some("S"), None, None), &lines),
            ["S1|a|b", "S2|E|x", "S3|c"]
        );
        assert_eq!(
            group(&rules(Some("S"), Some("[a-c]"), None), &lines),
            ["S1|a|b", "S2", "E", "x", "S3|c"]
        );
        assert_eq!(
            group(&rules(Some("S"), None, Some("E")), &lines),
            ["S1|a|b", "S2|E", "x", "S3|c"]
        );
        assert_eq!(
            group(&rules(None, Some("[a-c]"), None), &lines),
            ["S1|a|b", "S2", "E", "x", "S3|c"]
        );
        assert_eq!(
            group(&rules(None, Some("[a-c]"), Some("E")), &lines),
            ["S1|a|b", "S2|E", "x", "S3|c"]
        );
        assert_eq!(group(&rules(None, None, Some("E")), &lines), ["S1|a|b|S2|E", "x|S3|c"]);
        assert_eq!(
            group(&rules(None, None, Some(".*2$")), &lines),
            ["S1|a|b|S2", "E|x|S3|c"]
        );
    }

    #[test]
    fn presets_merge_real_traces() {
        let java = MultilineConfig {
            preset: Some(Preset::Java),
            ..serde_json::from_str("{}").unwrap()
        }
        .build()
        .unwrap();
        let trace = [
            "2026-11-25 10:00:00 ERROR request failed",
            "java.lang.IllegalStateException: boom",
            "\tat com.example.Service.run(Service.java:42)",
            "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
            "Caused by: java.io.IOException: disk",
            "\t... 3 more",
            "2026-11-25 10:00:01 INFO next",
        ];
        assert_eq!(group(&java, &trace).len(), 2);
        let python = MultilineConfig {
            preset: Some(Preset::Python),
            ..serde_json::from_str("{}").unwrap()
        }
        .build()
        .unwrap();
        let tb = [
            "ERROR:root:failed",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in <module>",
            "    main()",
            "ValueError: bad value",
            "INFO:root:next",
        ];
        assert_eq!(group(&python, &tb), [tb[..5].join("|"), tb[5].to_string()]);
    }

    #[test]
    fn config_errors() {
        let none: MultilineConfig = serde_json::from_str("{}").unwrap();
        assert!(none.build().unwrap_err().0.contains("needs"));
        let both: MultilineConfig = serde_json::from_str(r#"{"preset":"java","start":"x"}"#).unwrap();
        assert!(both.build().unwrap_err().0.contains("cannot be combined"));
        let bad: MultilineConfig = serde_json::from_str(r#"{"start":"("}"#).unwrap();
        assert_eq!(
            bad.build().unwrap_err().0,
            "multiline `start` is not a valid regex: unclosed group, at column 1 of the pattern:\n  (\n  ^"
        );
    }
}
