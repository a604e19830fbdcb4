//! A foreign config file read into a plain tree whose every key and value knows its
//! line:column, so a translation can say where each thing it could not carry over was.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::config::Pos;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its line:column in the file.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// A map key and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Its line:column in the file.
    pub pos: Pos,
    /// The key, as text (a number or boolean key is its text).
    pub name: String,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number that is not an integer.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A map, its entries in file order.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// A scalar as the text LoongCollector's JSON conversion would see (`true`, `3`, `x`).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// Why the text is not YAML, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where (0:0 when the parser did not say).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// Reads YAML text into a [`Node`] tree (an empty document is `Null` at 1:1).
pub fn parse(text: &str) -> Result<Node, ParseError> {
    if text.trim().is_empty() {
        return Ok(Node {
            pos: Pos { line: 1, column: 1 },
            value: Value::Null,
        });
    }
    let spanned: Spanned<Value> = serde_saphyr::from_str(text).map_err(|e| ParseError {
        pos: e
            .location()
            .map(|l| Pos {
                line: l.line() as u32,
                column: l.column() as u32,
            })
            .unwrap_or_default(),
        message: crate::config::plain_message(&e),
    })?;
    Ok(node(spanned))
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line() as u32,
        column: s.referenced.column() as u32,
    }
}

fn node(s: Spanned<Value>) -> Node {
    Node {
        pos: pos_of(&s),
        value: s.value,
    }
}

/// A key: any scalar, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(KeyText(String::new())),
            v => v
                .scalar_text()
                .map(KeyText)
                .ok_or_else(|| de::Error::custom(format!("a map key must be a scalar, found {}", v.kind()))),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
                Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Value>>()? {
                    items.push(node(item));
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
                    let key = Key {
                        pos: pos_of(&key),
                        name: key.value.0,
                    };
                    let value = node(map.next_value::<Spanned<Value>>()?);
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn keys_and_values_know_where_they_are() {
        let root = parse("inputs:\n  - Type: input_file\n    FilePaths: [/a/*.log]\n").unwrap();
        let Value::Map(top) = &root.value else { panic!("a map") };
        assert_eq!(top[0].0.name, "inputs");
        assert_eq!(top[0].0.pos, at(1, 1));
        let Value::Seq(items) = &top[0].1.value else {
            panic!("a list")
        };
        let Value::Map(entry) = &items[0].value else {
            panic!("a map")
        };
        assert_eq!(entry[0].0.pos, at(2, 5));
        assert_eq!(entry[0].1.value, Value::Str("input_file".into()));
        assert_eq!(entry[0].1.pos, at(2, 11));
        assert_eq!(entry[1].0.pos, at(3, 5));
        let Value::Seq(paths) = &entry[1].1.value else {
            panic!("a list")
        };
        assert_eq!(paths[0].value, Value::Str("/a/*.log".into()));
    }

    #[test]
    fn scalars_keep_their_types() {
        let root = parse("a: true\nb: -1\nc: 1.5\nd: '1'\ne:\nf: 1.0.0\n").unwrap();
        let Value::Map(m) = root.value else { panic!("a map") };
        let values: Vec<&Value> = m.iter().map(|(_, v)| &v.value).collect();
        assert_eq!(
            values,
            [
                &Value::Bool(true),
                &Value::Int(-1),
                &Value::Float(1.5),
                &Value::Str("1".into()),
                &Value::Null,
                &Value::Str("1.0.0".into()),
            ]
        );
    }

    #[test]
    fn bad_yaml_says_where() {
        let err = parse("inputs:\n  - Type: [a\n").unwrap_err();
        assert!(err.pos.line >= 2, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse("  \n").unwrap().value, Value::Null);
    }
}
