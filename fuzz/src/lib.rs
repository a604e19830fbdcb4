//! Helpers shared by the fuzz targets: batches built straight from bytes, the JSON
//! encoder's output read back, and a JSON value that keeps duplicate member names (the
//! parsers apply members in order, so `{"a":1,"a":2}` must be compared as written, not as
//! serde_json's map, which keeps the last).

use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use weir_core::encode::{Encoder, JsonEncoder};
use weir_core::model::{Batch, Buf, Key, KeyTable, Origin, Span, Value};

/// A batch over `chunk` with one event per `\n`-separated piece (the line splitter is not
/// under test here, so lines may hold any byte, `\r` included).
pub fn batch_of_lines(chunk: &[u8]) -> Batch {
    let mut batch = Batch::new(chunk.to_vec(), Origin::default());
    let mut start = 0;
    for piece in chunk.split(|&b| b == b'\n') {
        let event = batch.new_event(Span::new(Buf::Chunk, start, piece.len()));
        batch.push(event);
        start += piece.len() + 1;
    }
    batch
}

/// The bytes of the string field `key` of every event (dropped ones included).
pub fn str_field(batch: &Batch, event: usize, key: Key) -> Option<Vec<u8>> {
    match batch.events()[event].get(key)? {
        Value::Str(s) | Value::Json(s) => Some(batch.bytes(s).to_vec()),
        _ => None,
    }
}

/// Encodes every live event as a JSON line and reads each back; panics (a finding) when
/// the encoder writes something that is not one JSON object per line.
pub fn encode_and_read(batch: &Batch, keys: &Arc<KeyTable>) -> Vec<Json> {
    let mut out = Vec::new();
    JsonEncoder::new(keys.clone()).encode(batch, &mut out);
    assert!(
        out.is_empty() || out.ends_with(b"\n"),
        "JSON output does not end with a newline"
    );
    let text = std::str::from_utf8(&out).expect("JSON output is valid UTF-8");
    text.lines()
        .map(|line| {
            let v: Json =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("encoder wrote invalid JSON ({e}): {line}"));
            assert!(matches!(v, Json::Obj(_)), "encoder wrote a non-object: {line}");
            v
        })
        .collect()
}

/// A JSON value with object members in order, duplicates kept.
#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Num(a), Json::Num(b)) => same_number(a, b),
            (Json::Str(a), Json::Str(b)) => a == b,
            (Json::Arr(a), Json::Arr(b)) => a == b,
            (Json::Obj(a), Json::Obj(b)) => a == b,
            _ => false,
        }
    }
}

/// Integers compare exactly; anything else as the f64 both sides parse to.
pub fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    a.as_f64() == b.as_f64()
}

impl Json {
    /// Nesting depth (a scalar is 0).
    pub fn depth(&self) -> usize {
        match self {
            Json::Arr(v) => 1 + v.iter().map(Json::depth).max().unwrap_or(0),
            Json::Obj(v) => 1 + v.iter().map(|(_, x)| x.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// The members, for an object.
    pub fn members(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Obj(m) => Some(m),
            _ => None,
        }
    }
}

/// Sets `name` like `Event::set`: in place when present (first position, last value),
/// else appended.
pub fn set<V>(fields: &mut Vec<(String, V)>, name: &str, value: V) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => fields.push((name.to_string(), value)),
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(n)
                    .map(Json::Num)
                    .ok_or_else(|| E::custom("non-finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Json::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = map.next_entry::<String, Json>()? {
                    v.push((k, x));
                }
                Ok(Json::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}
