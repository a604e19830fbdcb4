//! Components picked by their `type` key. When `type` comes first, as in every example, the
//! rest of the map is read straight from the YAML, so an unknown key or a wrong value type
//! is reported at its own line:column; when `type` comes later, the map is buffered and
//! errors point at the component.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// A family of components picked by their `type` key (inputs, processors, outputs).
pub trait Tagged: Sized {
    /// "input", "processor" or "output", for messages.
    const WHAT: &'static str;
    /// Every known `type`.
    const TYPES: &'static [&'static str];
    /// Reads the component of type `ty` from the rest of its map.
    fn from_type<'de, D: Deserializer<'de>>(ty: &str, rest: D) -> Result<Self, D::Error>;

    /// The error for a `type` nobody knows.
    fn unknown_type<E: de::Error>(ty: &str) -> E {
        E::custom(format!(
            "unknown {} type `{ty}`, expected one of: {}",
            Self::WHAT,
            Self::TYPES.join(", ")
        ))
    }
}

/// Reads a `type` value and checks it is one of `T::TYPES`.
struct TypeName<T>(std::marker::PhantomData<T>);

impl<'de, T: Tagged> de::DeserializeSeed<'de> for TypeName<T> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let ty = String::deserialize(d)?;
        if T::TYPES.contains(&ty.as_str()) {
            Ok(ty)
        } else {
            Err(T::unknown_type(&ty))
        }
    }
}

/// Deserializes a [`Tagged`] component; see the module docs.
pub fn deserialize_tagged<'de, T: Tagged, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Tagged> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an {} map with a `type` key", T::WHAT)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let Some(first) = map.next_key::<String>()? else {
                return Err(de::Error::custom(format!("{} has no `type`", T::WHAT)));
            };
            if first == "type" {
                // Checked while the value is read, so an unknown type is reported at it.
                let ty: String = map.next_value_seed(TypeName::<T>(std::marker::PhantomData))?;
                return T::from_type(&ty, de::value::MapAccessDeserializer::new(map));
            }
            // `type` comes later: buffer the map, then read it.
            let mut buffered = serde_json::Map::new();
            buffered.insert(first, map.next_value()?);
            while let Some(key) = map.next_key::<String>()? {
                let value: serde_json::Value = map.next_value()?;
                buffered.insert(key, value);
            }
            let ty = match buffered.remove("type") {
                Some(serde_json::Value::String(ty)) => ty,
                Some(other) => {
                    return Err(de::Error::custom(format!("`type` must be a string, found {other}")));
                }
                None => return Err(de::Error::custom(format!("{} has no `type`", T::WHAT))),
            };
            T::from_type(&ty, buffered.into_deserializer()).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
}
