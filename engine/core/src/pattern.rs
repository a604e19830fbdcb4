//! The regexes a user writes in a pipeline file, compiled with errors that say what is
//! wrong and where.
//!
//! regex-automata's own message for a bad pattern is "error parsing pattern 0": the
//! position and the problem are inside the error, in the regex-syntax error it wraps.
//! [`compile`] brings them out: the config key, the problem, its line and column within
//! the pattern, and the pattern with a caret under the place. The caller adds the file's
//! `line:column` of the config value.
//!
//! ```
//! let err = weir_core::pattern::compile("`pattern`", r"^(?P<ip>\S+) (\d+").unwrap_err();
//! assert_eq!(
//!     err.0,
//!     "`pattern` is not a valid regex: unclosed group, at column 14 of the pattern:\n  \
//!      ^(?P<ip>\\S+) (\\d+\n               ^"
//! );
//! ```

use std::fmt::Write;

use regex_automata::meta;
use regex_syntax::ast::Span;

use crate::processors::BuildError;

/// Compiles `pattern` with the meta engine (the one filters, masks and multiline rules
/// use). `what` names the pattern for the user, as it is written in the config (for
/// example `` `include.level` ``); the error message starts with it.
pub fn compile(what: &str, pattern: &str) -> Result<meta::Regex, BuildError> {
    meta::Regex::new(pattern).map_err(|e| BuildError(explain(what, pattern, &e)))
}

/// The message for `err`, raised compiling `pattern` (named `what`): for a syntax error
/// the problem, where it is in the pattern, and the pattern with a caret under that
/// place; for a pattern too big to compile, the limit.
pub fn explain(what: &str, pattern: &str, err: &meta::BuildError) -> String {
    if let Some(syntax) = err.syntax_error() {
        return explain_syntax(what, pattern, syntax);
    }
    if let Some(limit) = err.size_limit() {
        return format!(
            "{what}: the regex `{pattern}` is too big: compiled, it would pass the limit of {limit} bytes \
             (large counted repetitions such as `{{1000}}`, nested, multiply its size)"
        );
    }
    let mut msg = format!("{what}: the regex `{pattern}` cannot be compiled: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        let _ = write!(msg, ": {e}");
        source = e.source();
    }
    msg
}

/// The message for a regex-syntax error in `pattern`. See [`explain`].
pub fn explain_syntax(what: &str, pattern: &str, err: &regex_syntax::Error) -> String {
    let (problem, span, first) = match err {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span(), e.auxiliary_span().copied()),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span(), None),
        // A kind of error this version does not know: its own text still says what and where.
        other => return format!("{what} is not a valid regex `{pattern}`: {other}"),
    };
    let multi_line = pattern.contains('\n');
    let mut msg = format!("{what} is not a valid regex: {problem}, at ");
    if multi_line {
        let _ = write!(msg, "line {} ", span.start.line);
    }
    let _ = write!(msg, "column {} of the pattern", span.start.column);
    // A duplicate group name also points at the first one.
    if let Some(first) = first {
        let _ = write!(msg, " (the first at column {})", first.start.column);
    }
    msg.push_str(":\n");
    caret(&mut msg, pattern, &span);
    msg
}

/// Writes the pattern's line holding `span` (indented by two spaces), then a line of
/// carets under the span (one at least; up to the end of that line).
fn caret(out: &mut String, pattern: &str, span: &Span) {
    let line = pattern
        .split('\n')
        .nth(span.start.line.saturating_sub(1))
        .unwrap_or(pattern);
    // Tabs would shift the caret by a terminal's tab width: show them as one space.
    let shown: String = line.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
    let width = shown.chars().count();
    let from = span.start.column.saturating_sub(1).min(width);
    let to = if span.end.line == span.start.line {
        span.end.column.saturating_sub(1).min(width)
    } else {
        width
    };
    let _ = write!(
        out,
        "  {shown}\n  {}{}",
        " ".repeat(from),
        "^".repeat(to.saturating_sub(from).max(1))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(pattern: &str) -> String {
        compile("`pattern`", pattern).unwrap_err().0
    }

    #[test]
    fn a_syntax_error_says_what_and_where_with_a_caret() {
        assert_eq!(
            message(r"a{2,1}"),
            "`pattern` is not a valid regex: invalid repetition count range, the start must be <= the end, \
             at column 2 of the pattern:\n  a{2,1}\n   ^^^^^"
        );
        assert_eq!(
            message("(?P<x>a)(?P<x>b)"),
            "`pattern` is not a valid regex: duplicate capture group name, at column 13 of the pattern \
             (the first at column 5):\n  (?P<x>a)(?P<x>b)\n              ^"
        );
        // An error found after parsing (translation into HIR) has its span too.
        assert_eq!(
            message(r"\Ba(?-u:\xFF)"),
            "`pattern` is not a valid regex: pattern can match invalid UTF-8, at column 9 of the pattern:\n  \
             \\Ba(?-u:\\xFF)\n          ^^^^"
        );
    }

    #[test]
    fn columns_count_characters_and_lines_of_a_multi_line_pattern() {
        // `é` is two bytes and one column.
        assert!(message("é(").contains("unclosed group, at column 2 of the pattern:\n  é(\n   ^"));
        let m = message("(?x)\n  a  # first\n  [b\n");
        assert!(
            m.starts_with("`pattern` is not a valid regex: unclosed character class, at line 3 column 3"),
            "{m}"
        );
        assert!(m.ends_with("\n    [b\n    ^"), "{m}");
    }

    #[test]
    fn a_pattern_too_big_names_the_limit() {
        let m = message(r"\w{1000}{1000}");
        assert!(
            m.starts_with("`pattern`: the regex `\\w{1000}{1000}` is too big"),
            "{m}"
        );
        assert!(m.contains("limit of "), "{m}");
    }

    #[test]
    fn a_good_pattern_compiles() {
        assert!(compile("`pattern`", r"^\d{4}-\d{2}").unwrap().is_match("2024-01"));
    }
}
