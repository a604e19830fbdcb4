//! Field edits: `add_fields`, `drop_fields`, `rename_fields`.

use indexmap::IndexMap;
use serde::Deserialize;

use super::BuildError;
use crate::model::{Batch, Key, KeyTable, Value};
use crate::pipeline::Processor;

/// A constant from the config.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl<'de> Deserialize<'de> for ConstValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ConstValue, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ConstValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ConstValue, E> {
                Ok(ConstValue::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ConstValue, E> {
                Ok(ConstValue::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ConstValue, E> {
                i64::try_from(v)
                    .map(ConstValue::Int)
                    .map_err(|_| E::custom("integer too large (the maximum is 2^63-1)"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ConstValue, E> {
                Ok(ConstValue::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ConstValue, E> {
                Ok(ConstValue::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `add_fields`: sets constant fields on every event.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddFieldsConfig {
    /// Field name -> value, applied in order.
    pub fields: IndexMap<String, ConstValue>,
    /// Replace a field that already exists (default `true`); when `false`, keep it.
    #[serde(default = "yes")]
    pub overwrite: bool,
}

fn yes() -> bool {
    true
}

impl AddFieldsConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "fields: { env: prod, region: eu-west-1, shard: 3 }\n";

    /// Builds the processor, interning its keys in `keys`.
    pub fn build(&self, keys: &KeyTable) -> Result<AddFields, BuildError> {
        let fields = self
            .fields
            .iter()
            .map(|(name, value)| {
                check_name(name)?;
                Ok((keys.intern(name), value.clone()))
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(AddFields {
            fields,
            overwrite: self.overwrite,
        })
    }
}

fn check_name(name: &str) -> Result<(), BuildError> {
    if name.is_empty() {
        return Err(BuildError("a field name cannot be empty".into()));
    }
    Ok(())
}

/// Runtime of [`AddFieldsConfig`].
#[derive(Debug)]
pub struct AddFields {
    fields: Vec<(Key, ConstValue)>,
    overwrite: bool,
}

impl Processor for AddFields {
    fn process(&mut self, batch: &mut Batch) {
        // Strings go into the arena once per batch; every event points at the same span.
        let values: Vec<(Key, Value)> = self
            .fields
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    ConstValue::Bool(b) => Value::Bool(*b),
                    ConstValue::Int(i) => Value::Int(*i),
                    ConstValue::Float(f) => Value::Float(*f),
                    ConstValue::Str(s) => Value::Str(batch.push_arena(s.as_bytes())),
                };
                (*key, value)
            })
            .collect();
        let (_, events) = batch.live_mut();
        for event in events {
            for &(key, value) in &values {
                if self.overwrite || event.get(key).is_none() {
                    event.set(key, value);
                }
            }
        }
    }
}

/// `drop_fields`: removes fields by name.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DropFieldsConfig {
    /// Names of the fields to remove.
    pub fields: Vec<String>,
}

impl DropFieldsConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "fields: [password, session_id]\n";

    /// Builds the processor, interning its keys in `keys`.
    pub fn build(&self, keys: &KeyTable) -> Result<DropFields, BuildError> {
        let keys = self
            .fields
            .iter()
            .map(|name| {
                check_name(name)?;
                Ok(keys.intern(name))
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(DropFields { keys })
    }
}

/// Runtime of [`DropFieldsConfig`].
#[derive(Debug)]
pub struct DropFields {
    keys: Vec<Key>,
}

impl Processor for DropFields {
    fn process(&mut self, batch: &mut Batch) {
        let (_, events) = batch.live_mut();
        for event in events {
            for &key in &self.keys {
                event.remove(key);
            }
        }
    }
}

/// `rename_fields`: renames fields; an existing field with the new name is replaced.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RenameFieldsConfig {
    /// Old name -> new name, applied in order.
    pub fields: IndexMap<String, String>,
}

impl RenameFieldsConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "fields: { msg: message, lvl: level }\n";

    /// Builds the processor, interning its keys in `keys`.
    pub fn build(&self, keys: &KeyTable) -> Result<RenameFields, BuildError> {
        let pairs = self
            .fields
            .iter()
            .map(|(from, to)| {
                check_name(from)?;
                check_name(to)?;
                Ok((keys.intern(from), keys.intern(to)))
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(RenameFields { pairs })
    }
}

/// Runtime of [`RenameFieldsConfig`].
#[derive(Debug)]
pub struct RenameFields {
    pairs: Vec<(Key, Key)>,
}

impl Processor for RenameFields {
    fn process(&mut self, batch: &mut Batch) {
        let (_, events) = batch.live_mut();
        for event in events {
            for &(from, to) in &self.pairs {
                event.rename(from, to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Buf, Event, Origin, Span};

    fn batch_of(lines: &[&str]) -> Batch {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for l in lines {
            spans.push(Span::new(Buf::Chunk, data.len(), l.len()));
            data.extend_from_slice(l.as_bytes());
        }
        let mut batch = Batch::new(data, Origin::default());
        for s in spans {
            batch.push(Event::from_line(s));
        }
        batch
    }

    #[test]
    fn add_drop_rename() {
        let keys = KeyTable::new();
        let mut batch = batch_of(&["one", "two"]);
        let add = AddFieldsConfig {
            fields: [
                ("env".to_string(), ConstValue::Str("prod".into())),
                ("n".to_string(), ConstValue::Int(3)),
            ]
            .into_iter()
            .collect(),
            overwrite: true,
        };
        add.build(&keys).unwrap().process(&mut batch);
        let rename = RenameFieldsConfig {
            fields: [("env".to_string(), "environment".to_string())].into_iter().collect(),
        };
        rename.build(&keys).unwrap().process(&mut batch);
        DropFieldsConfig {
            fields: vec!["n".into()],
        }
        .build(&keys)
        .unwrap()
        .process(&mut batch);
        let env = keys.get("environment").unwrap();
        for event in batch.events() {
            assert_eq!(event.fields().len(), 2);
            let Some(Value::Str(span)) = event.get(env) else {
                panic!("no environment")
            };
            assert_eq!(batch.bytes(span), b"prod");
            assert_eq!(event.get(keys.intern("n")), None);
            assert_eq!(event.get(keys.intern("env")), None);
        }
    }

    #[test]
    fn add_without_overwrite_keeps_existing() {
        let keys = KeyTable::new();
        let mut batch = batch_of(&["line"]);
        let add = AddFieldsConfig {
            fields: [("message".to_string(), ConstValue::Bool(false))].into_iter().collect(),
            overwrite: false,
        };
        add.build(&keys).unwrap().process(&mut batch);
        assert!(matches!(batch.events()[0].get(Key::MESSAGE), Some(Value::Str(_))));
    }

    #[test]
    fn dropped_events_are_left_alone() {
        let keys = KeyTable::new();
        let mut batch = batch_of(&["a", "b"]);
        batch.parts_mut().1[0].mark_dropped();
        DropFieldsConfig {
            fields: vec!["message".into()],
        }
        .build(&keys)
        .unwrap()
        .process(&mut batch);
        assert!(batch.events()[0].get(Key::MESSAGE).is_some());
        assert!(batch.events()[1].get(Key::MESSAGE).is_none());
    }
}
