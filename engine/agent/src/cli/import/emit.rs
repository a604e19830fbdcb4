//! The Weir pipeline an import writes: a small model of `inputs:`, `processors:` and
//! `outputs:` entries, and the YAML text of it.
//!
//! The text is written by hand rather than through a serializer so that it reads like a
//! pipeline a person wrote: block maps, flow lists of scalars, every string quoted (single
//! quotes unless it holds control characters), one comment above each entry naming the
//! source it came from. `${` in a string is written `$${`, which `weir run` reads back as a
//! literal `${` (see `crate::secrets`); only [`Val::Env`] keeps `${NAME}` for expansion.

use std::fmt::Write;

/// A value in the written pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string, taken literally.
    Str(String),
    /// A string whose `${NAME}` parts are environment variables `weir run` expands.
    Env(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<Val>),
    /// A map, in order.
    Map(Vec<(String, Val)>),
}

impl Val {
    /// A literal string.
    pub fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }

    /// A list of literal strings.
    pub fn strs<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Val {
        Val::List(items.into_iter().map(|s| Val::Str(s.into())).collect())
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Val::List(_) | Val::Map(_))
    }
}

/// One entry of `inputs:`, `processors:` or `outputs:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The comment written above it (where it came from).
    pub comment: String,
    /// Its `type`.
    pub kind: &'static str,
    /// The keys after `type`, in order.
    pub fields: Vec<(String, Val)>,
}

impl Component {
    /// A component of type `kind` with no keys yet.
    pub fn new(kind: &'static str, comment: impl Into<String>) -> Component {
        Component {
            comment: comment.into(),
            kind,
            fields: Vec::new(),
        }
    }

    /// Adds `key: value`.
    pub fn set(&mut self, key: &str, value: Val) {
        self.fields.push((key.to_string(), value));
    }

    /// Adds `key: value`, builder style.
    pub fn with(mut self, key: &str, value: Val) -> Component {
        self.set(key, value);
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Val> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A whole pipeline and the comment lines above it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pipeline {
    /// Comment lines at the top (without `# `).
    pub header: Vec<String>,
    /// `inputs:`.
    pub inputs: Vec<Component>,
    /// `processors:`.
    pub processors: Vec<Component>,
    /// `outputs:`.
    pub outputs: Vec<Component>,
}

impl Pipeline {
    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {line}");
            }
        }
        for (name, list) in [
            ("inputs", &self.inputs),
            ("processors", &self.processors),
            ("outputs", &self.outputs),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{name}:");
            for c in list {
                if !c.comment.is_empty() {
                    let _ = writeln!(out, "  # {}", c.comment);
                }
                let _ = writeln!(out, "  - type: {}", c.kind);
                for (key, value) in &c.fields {
                    entry(&mut out, 4, key, value);
                }
            }
        }
        out
    }
}

/// Writes `key: value` at `indent` spaces, nested values below it.
fn entry(out: &mut String, indent: usize, key: &str, value: &Val) {
    let pad = " ".repeat(indent);
    let key = map_key(key);
    match value {
        Val::Map(entries) if !entries.is_empty() => {
            let _ = writeln!(out, "{pad}{key}:");
            for (k, v) in entries {
                entry(out, indent + 2, k, v);
            }
        }
        Val::List(items) if !items.iter().all(Val::is_scalar) => {
            let _ = writeln!(out, "{pad}{key}:");
            for item in items {
                list_item(out, indent + 2, item);
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{key}: {}", inline(value));
        }
    }
}

/// Writes `- item` of a block list at `indent` spaces.
fn list_item(out: &mut String, indent: usize, item: &Val) {
    let pad = " ".repeat(indent);
    match item {
        Val::Map(entries) if !entries.is_empty() => {
            let mut first = true;
            for (k, v) in entries {
                if first {
                    // `- key: value`, the rest of the map aligned under `key`.
                    let mut line = String::new();
                    entry(&mut line, indent + 2, k, v);
                    let _ = write!(out, "{pad}- {}", &line[indent + 2..]);
                    first = false;
                } else {
                    entry(out, indent + 2, k, v);
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}- {}", inline(item));
        }
    }
}

/// A value on one line: a scalar, or a flow list or map.
fn inline(value: &Val) -> String {
    match value {
        Val::Str(s) => scalar(&s.replace("${", "$${")),
        Val::Env(s) => scalar(s),
        Val::Int(i) => i.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::List(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Val::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", map_key(k), inline(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// A map key: bare when it is a plain name, quoted otherwise.
fn map_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(
            key,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "True" | "False" | "Null"
        );
    if plain { key.to_string() } else { quote(key) }
}

/// A string as a YAML scalar: bare when it is a plain word or path that YAML reads back as
/// the same string, quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        );
    if plain { s.to_string() } else { quote(s) }
}

/// A quoted YAML string: single quotes, or double quotes with escapes when the text has
/// characters a single-quoted scalar cannot hold (control characters, line breaks).
pub fn quote(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_block_maps_and_flow_lists() {
        let mut p = Pipeline {
            header: vec!["from x".into(), String::new()],
            ..Pipeline::default()
        };
        p.inputs.push(
            Component::new("file", "input_file, line 2")
                .with("paths", Val::strs(["/a/*.log"]))
                .with("multiline", Val::Map(vec![("start".into(), Val::str(r"\d+"))])),
        );
        p.outputs
            .push(Component::new("stdout", "").with("format", Val::str("json")));
        assert_eq!(
            p.to_yaml(),
            "# from x\n#\ninputs:\n  # input_file, line 2\n  - type: file\n    paths: ['/a/*.log']\n    \
             multiline:\n      start: '\\d+'\noutputs:\n  - type: stdout\n    format: json\n"
        );
    }

    #[test]
    fn lists_of_maps_are_blocks() {
        let mut p = Pipeline::default();
        p.processors.push(Component::new("filter", "").with(
            "condition",
            Val::Map(vec![(
                "any".into(),
                Val::List(vec![
                    Val::Map(vec![("field".into(), Val::str("a")), ("matches".into(), Val::str("x"))]),
                    Val::Map(vec![(
                        "not".into(),
                        Val::Map(vec![("field".into(), Val::str("b")), ("matches".into(), Val::str("y"))]),
                    )]),
                ]),
            )]),
        ));
        let text = p.to_yaml();
        assert_eq!(
            text,
            "processors:\n  - type: filter\n    condition:\n      any:\n        - field: a\n          \
             matches: x\n        - not:\n            field: b\n            matches: 'y'\n"
        );
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["processors"][0]["condition"]["any"][1]["not"]["matches"], "y");
    }

    #[test]
    fn strings_survive_the_round_trip() {
        for s in [
            "it's",
            "a\tb\nc",
            "${HOME}",
            "\"q\" \\ end",
            "",
            "true",
            "- x: y #z",
            "/var/log/a.log",
            "No",
            "1.5",
            "a-b.c",
        ] {
            let text = format!("k: {}\n", inline(&Val::str(s)));
            let expanded = crate::secrets::expand(&text, |_| None).unwrap().text;
            let back: serde_json::Value = serde_saphyr::from_str(&expanded).unwrap();
            assert_eq!(back["k"], s, "{text}");
        }
    }

    #[test]
    fn keys_are_quoted_when_needed() {
        assert_eq!(map_key("status"), "status");
        assert_eq!(map_key("compression.level"), "'compression.level'");
        assert_eq!(map_key("true"), "'true'");
        assert_eq!(map_key("x-db"), "'x-db'");
    }
}
