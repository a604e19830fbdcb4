//! The options of one plugin entry of a foreign config, taken one by one.
//!
//! A translation asks for each option it knows ([`Opts::str`], [`Opts::bool`],
//! [`Opts::map`]...); a value of the wrong type is reported where it was written. What
//! nobody asked for is reported by [`Opts::finish`], with the reason the caller gives for
//! that option or a general one, so no option is ever dropped without a line in the
//! report.

use super::Report;
use super::tree::{Key, Node, Value};
use crate::config::Pos;

/// Why an option nobody took was left out, when the plugin gives no reason of its own.
const NO_EQUIVALENT: &str = "Weir has no equivalent of this option";

/// A map of scalars: (key, value as text, where the key is), in file order.
pub type TextMap = Vec<(String, String, Pos)>;

/// The options of one plugin entry (or of a map nested in it).
#[derive(Debug)]
pub struct Opts<'a> {
    /// The plugin, for messages: `processors[1] processor_parse_regex_native`.
    pub plugin: String,
    /// The dotted path of this map inside the plugin (`Multiline.`), empty at the top.
    prefix: String,
    entries: &'a [(Key, Node)],
    taken: Vec<bool>,
    /// Where the map is (for options that are missing).
    pub pos: Pos,
}

impl<'a> Opts<'a> {
    /// The options of the map `entries` at `pos`, for plugin `plugin`.
    pub fn new(plugin: impl Into<String>, entries: &'a [(Key, Node)], pos: Pos) -> Opts<'a> {
        Opts {
            plugin: plugin.into(),
            prefix: String::new(),
            entries,
            taken: vec![false; entries.len()],
            pos,
        }
    }

    /// `plugin` and the option's dotted name, for a report line.
    pub fn what(&self, name: &str) -> String {
        format!("{} `{}{name}`", self.plugin, self.prefix)
    }

    /// Takes option `name`, if present.
    pub fn take(&mut self, name: &str) -> Option<(&'a Key, &'a Node)> {
        let i = self
            .entries
            .iter()
            .enumerate()
            .position(|(i, (k, _))| !self.taken[i] && k.name == name)?;
        self.taken[i] = true;
        let (k, v) = &self.entries[i];
        Some((k, v))
    }

    /// Takes option `name` and expects a scalar, read as text (LoongCollector converts
    /// numbers and booleans given where a string is expected). Null counts as absent.
    pub fn str(&mut self, name: &str, report: &mut Report) -> Option<(String, Pos)> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            other => match other.scalar_text() {
                Some(s) => Some((s, k.pos)),
                None => {
                    self.wrong_type(report, k, v, "a string");
                    None
                }
            },
        }
    }

    /// Takes option `name` and expects a boolean (`true`/`false`, or the strings).
    pub fn bool(&mut self, name: &str, report: &mut Report) -> Option<(bool, Pos)> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            Value::Bool(b) => Some((*b, k.pos)),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Some((true, k.pos)),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Some((false, k.pos)),
            _ => {
                self.wrong_type(report, k, v, "true or false");
                None
            }
        }
    }

    /// Takes option `name` and expects an integer (or a string holding one).
    pub fn int(&mut self, name: &str, report: &mut Report) -> Option<(i64, Pos)> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            Value::Int(i) => Some((*i, k.pos)),
            Value::Str(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok().map(|i| (i, k.pos)),
            _ => {
                self.wrong_type(report, k, v, "an integer");
                None
            }
        }
    }

    /// Takes option `name` and expects a list of scalars (a single scalar is a list of one).
    pub fn str_list(&mut self, name: &str, report: &mut Report) -> Option<(Vec<String>, Pos)> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item.value.scalar_text() {
                        Some(s) => out.push(s),
                        None => {
                            self.wrong_type(report, k, v, "a list of strings");
                            return None;
                        }
                    }
                }
                Some((out, k.pos))
            }
            other => match other.scalar_text() {
                Some(s) => Some((vec![s], k.pos)),
                None => {
                    self.wrong_type(report, k, v, "a list of strings");
                    None
                }
            },
        }
    }

    /// Takes option `name` and expects a map of scalars, in file order, each with the
    /// position of its key.
    pub fn str_map(&mut self, name: &str, report: &mut Report) -> Option<(TextMap, Pos)> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            Value::Map(entries) => {
                let mut out = Vec::new();
                for (ek, ev) in entries {
                    match &ev.value {
                        Value::Null => out.push((ek.name.clone(), String::new(), ek.pos)),
                        other => match other.scalar_text() {
                            Some(s) => out.push((ek.name.clone(), s, ek.pos)),
                            None => {
                                self.wrong_type(report, k, v, "a map of strings");
                                return None;
                            }
                        },
                    }
                }
                Some((out, k.pos))
            }
            _ => {
                self.wrong_type(report, k, v, "a map of strings");
                None
            }
        }
    }

    /// Takes option `name` and expects a map: its options, to be taken and finished in
    /// turn.
    pub fn map(&mut self, name: &str, report: &mut Report) -> Option<Opts<'a>> {
        let (k, v) = self.take(name)?;
        match &v.value {
            Value::Null => None,
            Value::Map(entries) => Some(Opts {
                plugin: self.plugin.clone(),
                prefix: format!("{}{name}.", self.prefix),
                entries,
                taken: vec![false; entries.len()],
                pos: k.pos,
            }),
            _ => {
                self.wrong_type(report, k, v, "a map");
                None
            }
        }
    }

    fn wrong_type(&self, report: &mut Report, k: &Key, v: &Node, expected: &str) {
        report.left_out(
            k.pos,
            self.what(&k.name),
            format!(
                "expected {expected}, found {}; LoongCollector would not accept it either",
                v.value.kind()
            ),
        );
    }

    /// Reports every option nobody took: with the reason `reasons` gives for its name, or
    /// as having no Weir equivalent. Options named in `ignored` have no effect in Weir and
    /// are noted, not counted.
    pub fn finish(self, report: &mut Report, reasons: &[(&str, &str)], ignored: &[(&str, &str)]) {
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.taken[i] || k.name == "Type" && self.prefix.is_empty() {
                continue;
            }
            if let Some((_, why)) = ignored.iter().find(|(n, _)| *n == k.name) {
                report.note(k.pos, self.what(&k.name), (*why).to_string());
                continue;
            }
            let why = reasons
                .iter()
                .find(|(n, _)| *n == k.name)
                .map_or(NO_EQUIVALENT, |(_, why)| why);
            report.left_out(k.pos, self.what(&k.name), why.to_string());
        }
    }
}
