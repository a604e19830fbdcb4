//! `${NAME}` in the pipeline file, and keeping secrets out of everything Weir prints.
//!
//! [`expand`] replaces `${NAME}` (and `${NAME:-default}`) in the file's text with the
//! environment variable before the YAML is parsed, so any string, key or number may come
//! from the environment; `$${` stands for a literal `${`, and lines that are YAML comments
//! are left alone. An unset variable without a default is an error naming the variable,
//! the key it was for and its line:column.
//!
//! Every expanded value, and every value of a key that holds a credential (`password`,
//! `token`, `api_key`, an `Authorization` header; [`register`]), is a secret: [`redact`]
//! replaces it with `${NAME}` (or `***` for a value written in the file) and every printer
//! calls it: the log writer, config errors, `weir check`, `weir doctor` and `/health`. A
//! value shorter than [`MIN_SECRET_LEN`] bytes (a worker count, a port) is not hidden: it
//! cannot be a credential, and hiding it would garble every number in the logs.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::RwLock;

/// Values shorter than this are not redacted.
pub const MIN_SECRET_LEN: usize = 4;

/// (value, what it is printed as), longest value first so a secret containing another is
/// replaced whole.
static SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Marks `value` as a secret, printed as `shown` (`${NAME}` or `***`) from now on.
pub fn register(value: &str, shown: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if secrets.iter().any(|(v, _)| v == value) {
        return;
    }
    secrets.push((value.to_string(), shown.to_string()));
    secrets.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
}

/// `text` with every registered secret replaced by its stand-in.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for (value, shown) in secrets.iter() {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), shown));
        }
    }
    out
}

/// A writer that redacts what passes through it: the log subscriber writes each event
/// with one `write`, so a secret is never split across two calls.
#[derive(Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The pipeline file's text after `${...}` expansion, and the variables it used.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The text to parse.
    pub text: String,
    /// (name, value) of each variable used, in order of first use.
    pub vars: Vec<(String, String)>,
}

/// Why an expansion failed, and where: (1-based line, 1-based column, message).
pub type ExpandError = (u32, u32, String);

/// Expands `${NAME}` and `${NAME:-default}` in `text` with `lookup`, line by line so the
/// line numbers of parse errors stay right. See the module docs.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Expanded, ExpandError> {
    let mut out = Expanded {
        text: String::with_capacity(text.len()),
        vars: Vec::new(),
    };
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains('$') {
            out.text.push_str(line);
            continue;
        }
        expand_line(line, n as u32 + 1, &lookup, &mut out)?;
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    line_no: u32,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut Expanded,
) -> Result<(), ExpandError> {
    let mut rest = line;
    let mut column = 1u32;
    while let Some(at) = rest.find('$') {
        out.text.push_str(&rest[..at]);
        column += rest[..at].chars().count() as u32;
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.text.push_str("${");
            rest = after;
            column += 3;
            continue;
        }
        let Some(body) = tail.strip_prefix("${") else {
            out.text.push('$');
            rest = &tail[1..];
            column += 1;
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err((
                line_no,
                column,
                "`${` without a closing `}`; write `$${` for a literal `${`".into(),
            ));
        };
        let (name, default) = match body[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&body[..end], None),
        };
        check_name(name).map_err(|m| (line_no, column, m))?;
        let value = match (lookup(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                let key = key_before(&line[..line.len() - rest.len() + at]);
                return Err((line_no, column, unset_message(name, key)));
            }
        };
        if value.contains(['\n', '\r']) {
            return Err((
                line_no,
                column,
                format!("environment variable {name} holds a line break, which cannot go into the pipeline file"),
            ));
        }
        out.text.push_str(&value);
        if !out.vars.iter().any(|(n, _)| n == name) {
            out.vars.push((name.to_string(), value));
        }
        column += (end + 3) as u32;
        rest = &body[end + 1..];
    }
    out.text.push_str(rest);
    Ok(())
}

/// A variable name: letters, digits and `_`, not starting with a digit.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`${{{name}}}`: a variable name is letters, digits and _ (not starting with a digit); \
             write `$${{` for a literal `${{`"
        ))
    }
}

/// The YAML key on this line before the variable, if any: `password` in
/// `  auth: { user: a, password: "${X`.
fn key_before(prefix: &str) -> Option<&str> {
    let colon = prefix.rfind(": ").or_else(|| prefix.strip_suffix(':').map(str::len))?;
    let head = prefix[..colon].trim_end();
    let start = head
        .rfind(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '-' | '"' | '\''))
        .map_or(0, |i| i + 1);
    let key = &head[start..];
    (!key.is_empty()).then_some(key)
}

fn unset_message(name: &str, key: Option<&str>) -> String {
    let used_by = key.map(|k| format!(" (used by `{k}`)")).unwrap_or_default();
    format!("environment variable {name} is not set{used_by}; set it, or give a default with `${{{name}:-default}}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASS" => Some("s3cr3t-pass".into()),
            "HOST" => Some("es.local".into()),
            "EMPTY" => Some(String::new()),
            "NL" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_replaced_and_recorded() {
        let e = expand("uri: https://${HOST}:9200\npassword: \"${PASS}\" # ${HOST}\n", env).unwrap();
        assert_eq!(
            e.text,
            "uri: https://es.local:9200\npassword: \"s3cr3t-pass\" # es.local\n"
        );
        assert_eq!(
            e.vars,
            vec![
                ("HOST".into(), "es.local".into()),
                ("PASS".into(), "s3cr3t-pass".into())
            ]
        );
    }

    #[test]
    fn defaults_escapes_comments_and_lone_dollars() {
        let e = expand("a: ${NOPE:-x y}\nb: $${HOST} '\\d+$'\n  # ${NOPE}\nc: ${EMPTY}.\n", env).unwrap();
        assert_eq!(e.text, "a: x y\nb: ${HOST} '\\d+$'\n  # ${NOPE}\nc: .\n");
    }

    #[test]
    fn an_unset_variable_names_itself_its_key_and_position() {
        let err = expand("outputs:\n  - auth: { user: a, password: \"${ES_PASSWORD}\" }\n", env).unwrap_err();
        assert_eq!((err.0, err.1), (2, 33));
        assert!(
            err.2.contains("ES_PASSWORD is not set (used by `password`)"),
            "{}",
            err.2
        );
        let err = expand("- ${NOPE}\n", env).unwrap_err();
        assert!(!err.2.contains("used by"), "{}", err.2);
    }

    #[test]
    fn bad_names_unclosed_and_line_breaks_are_errors() {
        assert!(expand("a: ${1X}\n", env).unwrap_err().2.contains("variable name"));
        assert!(expand("a: ${PASS\n", env).unwrap_err().2.contains("closing"));
        assert!(expand("a: ${NL}\n", env).unwrap_err().2.contains("line break"));
    }

    #[test]
    fn registered_secrets_are_redacted_longest_first_and_short_ones_kept() {
        register("redact-me-1234", "${TOKEN}");
        register("redact-me-1234-and-more", "***");
        register("42", "${WORKERS}");
        assert_eq!(
            redact("a redact-me-1234 b redact-me-1234-and-more c 42"),
            "a ${TOKEN} b *** c 42"
        );
        let mut out = Vec::new();
        Redacting(&mut out).write_all(b"x=redact-me-1234\n").unwrap();
        assert_eq!(out, b"x=${TOKEN}\n");
    }
}
