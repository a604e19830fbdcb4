//! The host's side of the boundary, over simple owned values: build a flat batch from
//! [`OwnedEvent`]s ([`flatten`]), apply flat edits back to them ([`apply`]), or do both
//! around a plugin ([`run`]). Plugin authors test their plugins natively with [`run`]; the
//! real host does the same over Weir's native batches.

use std::collections::HashMap;

use crate::flat::{self, FormatError};
use crate::plugin::{Error, Plugin, flush_flat, process_flat};
use crate::view::ValueRef;

/// An owned field value.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Bytes, usually UTF-8 text.
    Str(Vec<u8>),
    /// Valid JSON text.
    Json(Vec<u8>),
}

impl OwnedValue {
    /// A copy of `value`.
    pub fn from_ref(value: ValueRef<'_>) -> OwnedValue {
        match value {
            ValueRef::Null => OwnedValue::Null,
            ValueRef::Bool(b) => OwnedValue::Bool(b),
            ValueRef::Int(i) => OwnedValue::Int(i),
            ValueRef::Float(f) => OwnedValue::Float(f),
            ValueRef::Str(b) => OwnedValue::Str(b.to_vec()),
            ValueRef::Json(b) => OwnedValue::Json(b.to_vec()),
        }
    }

    /// A JSON value, from its text.
    pub fn json(text: &str) -> OwnedValue {
        OwnedValue::Json(text.as_bytes().to_vec())
    }
}

impl From<&str> for OwnedValue {
    fn from(s: &str) -> Self {
        OwnedValue::Str(s.as_bytes().to_vec())
    }
}

impl From<i64> for OwnedValue {
    fn from(i: i64) -> Self {
        OwnedValue::Int(i)
    }
}

impl From<f64> for OwnedValue {
    fn from(f: f64) -> Self {
        OwnedValue::Float(f)
    }
}

impl From<bool> for OwnedValue {
    fn from(b: bool) -> Self {
        OwnedValue::Bool(b)
    }
}

/// An owned event: raw bytes, a timestamp and named fields in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedEvent {
    /// The bytes the event was read from.
    pub raw: Vec<u8>,
    /// Nanoseconds since the Unix epoch (UTC), when known.
    pub timestamp: Option<i64>,
    /// The fields, in order; a name appears at most once.
    pub fields: Vec<(String, OwnedValue)>,
    /// The output the event was routed to, if a plugin routed it.
    pub route: Option<String>,
}

impl OwnedEvent {
    /// An event as the line splitter makes it: raw bytes `line` and one field, `message`,
    /// holding the same bytes.
    pub fn line(line: &str) -> OwnedEvent {
        OwnedEvent {
            raw: line.as_bytes().to_vec(),
            timestamp: None,
            fields: vec![("message".to_owned(), OwnedValue::from(line))],
            route: None,
        }
    }

    /// The event with field `name` set to `value` (replaced in place or appended).
    pub fn with(mut self, name: &str, value: impl Into<OwnedValue>) -> OwnedEvent {
        self.set(name, value.into());
        self
    }

    /// The event with timestamp `nanos`.
    pub fn at(mut self, nanos: i64) -> OwnedEvent {
        self.timestamp = Some(nanos);
        self
    }

    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&OwnedValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets `name` to `value`: in place if present, else appended (as the native model does).
    pub fn set(&mut self, name: &str, value: OwnedValue) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<OwnedValue> {
        let at = self.fields.iter().position(|(k, _)| k == name)?;
        Some(self.fields.remove(at).1)
    }
}

/// The flat batch of `events`, as a host builds it: one byte list (a string value equal to
/// its event's raw bytes, like `message`, shares them), a key table of the names used
/// (numbered in order of first use), and the events' fields one after another; the
/// default emit limits.
pub fn flatten(events: &[OwnedEvent]) -> flat::Batch {
    let mut batch = flat::Batch::default();
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut fields = 0;
    for event in events {
        let raw = push(&mut batch.bytes, &event.raw);
        let first_field = fields;
        for (name, value) in &event.fields {
            let key = *ids.entry(name.as_str()).or_insert_with(|| {
                batch.keys.push(name.clone());
                (batch.keys.len() - 1) as u32
            });
            let value = match value {
                OwnedValue::Null => flat::Value::Null,
                OwnedValue::Bool(b) => flat::Value::Boolean(*b),
                OwnedValue::Int(i) => flat::Value::Int(*i),
                OwnedValue::Float(f) => flat::Value::Float(*f),
                OwnedValue::Str(s) if *s == event.raw => flat::Value::Str(raw),
                OwnedValue::Str(s) => flat::Value::Str(push(&mut batch.bytes, s)),
                OwnedValue::Json(s) => flat::Value::Json(push(&mut batch.bytes, s)),
            };
            flat::FieldRow { key, value }.write(&mut batch.fields);
            fields += 1;
        }
        flat::EventRow {
            raw,
            fields: flat::Span::new(first_field, fields - first_field),
            timestamp: event.timestamp,
        }
        .write(&mut batch.events);
    }
    batch
}

fn push(bytes: &mut Vec<u8>, new: &[u8]) -> flat::Span {
    let span = flat::Span::new(bytes.len(), new.len());
    bytes.extend_from_slice(new);
    span
}

/// Applies `edits` (the answer to a batch whose key table is `keys`, with `limits`) to
/// `events`, as the host does: after validating them, in order; ops on a dropped event are
/// ignored, emitted events are placed after the event they follow (in the order they were
/// emitted), and dropped events are removed at the end (keeping order). A route names any
/// output here (the host checks the names against its pipeline).
pub fn apply(
    events: &mut Vec<OwnedEvent>,
    keys: &[String],
    limits: flat::EmitLimits,
    edits: &flat::Edits,
) -> Result<(), FormatError> {
    let ops = edits.validate(events.len(), keys.len(), limits)?;
    let name = |id: u32| match keys.get(id as usize) {
        Some(name) => name.as_str(),
        None => edits.new_keys[id as usize - keys.len()].as_str(),
    };
    let bytes = |s: flat::Span| edits.bytes[s.start as usize..(s.start + s.len) as usize].to_vec();
    let value = |v: flat::Value| match v {
        flat::Value::Null => OwnedValue::Null,
        flat::Value::Boolean(b) => OwnedValue::Bool(b),
        flat::Value::Int(i) => OwnedValue::Int(i),
        flat::Value::Float(f) => OwnedValue::Float(f),
        flat::Value::Str(s) => OwnedValue::Str(bytes(s)),
        flat::Value::Json(s) => OwnedValue::Json(bytes(s)),
    };
    let n = events.len();
    // Emitted events: (the batch event they follow, or n for the end; the event).
    let mut emitted: Vec<(usize, OwnedEvent)> = Vec::new();
    let mut dropped = vec![false; n];
    for op in ops {
        let at = op.event as usize;
        if op.kind.emits() {
            let after = if op.event == flat::AFTER_LAST { n } else { at };
            let event = match op.kind {
                flat::OpKind::EmitCopy => OwnedEvent {
                    route: None,
                    ..events[at].clone()
                },
                _ => OwnedEvent {
                    raw: op.value.span().map(bytes).unwrap_or_default(),
                    ..OwnedEvent::default()
                },
            };
            emitted.push((after, event));
            dropped.push(false);
            continue;
        }
        if dropped[at] {
            continue;
        }
        let event = if at < n {
            &mut events[at]
        } else {
            &mut emitted[at - n].1
        };
        match op.kind {
            flat::OpKind::Drop => dropped[at] = true,
            flat::OpKind::Set => event.set(name(op.key), value(op.value)),
            flat::OpKind::Remove => {
                event.remove(name(op.key));
            }
            flat::OpKind::Timestamp => event.timestamp = op.value_int(),
            flat::OpKind::Raw => event.raw = op.value.span().map(bytes).unwrap_or_default(),
            flat::OpKind::Route => {
                event.route = op.value.span().map(|s| String::from_utf8_lossy(&bytes(s)).into_owned());
            }
            flat::OpKind::Emit | flat::OpKind::EmitCopy => unreachable!("handled above"),
        }
    }
    // Emitted events in the order of the event they follow (stable: in emission order).
    let mut emitted: Vec<(usize, OwnedEvent)> = emitted
        .into_iter()
        .zip(&dropped[n..])
        .filter(|(_, gone)| !**gone)
        .map(|(e, _)| e)
        .collect();
    emitted.sort_by_key(|(after, _)| *after);
    let mut out = Vec::with_capacity(n + emitted.len());
    let mut emitted = emitted.into_iter().peekable();
    for (i, event) in std::mem::take(events).into_iter().enumerate() {
        if !dropped[i] {
            out.push(event);
        }
        while let Some((_, e)) = emitted.next_if(|(after, _)| *after == i) {
            out.push(e);
        }
    }
    out.extend(emitted.map(|(_, e)| e));
    *events = out;
    Ok(())
}

/// Runs `plugin` over `events` through the whole flat round trip ([`flatten`], the
/// plugin's `process` over a [`BatchView`](crate::BatchView), [`apply`]) and returns the
/// events that come out. Edits that break the layout are reported as [`Error::Fatal`].
pub fn run<P: Plugin>(plugin: &mut P, mut events: Vec<OwnedEvent>) -> Result<Vec<OwnedEvent>, Error> {
    let batch = flatten(&events);
    let edits = process_flat(plugin, &batch)?;
    apply(&mut events, &batch.keys, batch.limits, &edits).map_err(|e| Error::fatal(e.to_string()))?;
    Ok(events)
}

/// Calls `plugin`'s `flush` as the host does (over an empty batch) and returns the events
/// it emits.
pub fn flush<P: Plugin>(plugin: &mut P) -> Result<Vec<OwnedEvent>, Error> {
    let batch = flat::Batch::default();
    let edits = flush_flat(plugin, &batch)?;
    let mut events = Vec::new();
    apply(&mut events, &batch.keys, batch.limits, &edits).map_err(|e| Error::fatal(e.to_string()))?;
    Ok(events)
}
