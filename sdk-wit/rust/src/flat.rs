//! The flat form of the WIT types (`weir:plugin/types@0.1.0`), one Rust type per WIT type,
//! field for field: what the generated bindings convert to and from (moving the lists, not
//! copying them), and what the host builds and reads.
//!
//! Nothing here interprets the data; [`BatchView`](crate::BatchView) reads a [`Batch`] and
//! [`Edits`](crate::Edits) writes an [`Edits`]. The `validate` methods check every index
//! once, so readers can index without further checks.

use std::fmt;

/// WIT `span`: `len` items from index `start`, in a byte list or in the field list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Index of the first item.
    pub start: u32,
    /// Number of items.
    pub len: u32,
}

impl Span {
    /// A span of `len` items from `start`. Panics if either does not fit in a `u32`
    /// (batches are far smaller than 4 GiB).
    pub fn new(start: usize, len: usize) -> Span {
        Span {
            start: u32::try_from(start).expect("flat batch lists are smaller than 4 GiB"),
            len: u32::try_from(len).expect("flat batch lists are smaller than 4 GiB"),
        }
    }

    /// The index range, if it lies within a list of `list_len` items.
    pub fn range(self, list_len: usize) -> Option<std::ops::Range<usize>> {
        let start = self.start as usize;
        let end = start.checked_add(self.len as usize)?;
        (end <= list_len).then_some(start..end)
    }
}

/// WIT `value`: a field value whose strings are spans of a byte list (`Batch::bytes` in a
/// batch, `Edits::bytes` in edits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Bytes, usually UTF-8 text.
    Str(Span),
    /// Bytes that are valid JSON text.
    Json(Span),
}

impl Value {
    /// The byte span of a `Str` or `Json` value.
    pub fn span(self) -> Option<Span> {
        match self {
            Value::Str(s) | Value::Json(s) => Some(s),
            _ => None,
        }
    }
}

/// WIT `field`: a key id and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// Index into the key table.
    pub key: u32,
    /// The value.
    pub value: Value,
}

/// WIT `event`: one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// The raw bytes, a span of [`Batch::bytes`].
    pub raw: Span,
    /// Nanoseconds since the Unix epoch (UTC), when known.
    pub timestamp: Option<i64>,
    /// The event's fields, a span of [`Batch::fields`].
    pub fields: Span,
}

/// WIT `batch`: what the host sends on each `process` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Every byte the events refer to.
    pub bytes: Vec<u8>,
    /// Field names by id, local to this batch.
    pub keys: Vec<String>,
    /// The events, in order.
    pub events: Vec<Event>,
    /// The fields of every event, event after event.
    pub fields: Vec<Field>,
}

impl Batch {
    /// Checks every span and key id, so that readers can index without panicking.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bytes = self.bytes.len();
        for (i, event) in self.events.iter().enumerate() {
            if event.raw.range(bytes).is_none() {
                return Err(FormatError::new(format!(
                    "event {i}: raw span {:?} out of the bytes",
                    event.raw
                )));
            }
            let Some(range) = event.fields.range(self.fields.len()) else {
                return Err(FormatError::new(format!(
                    "event {i}: field span {:?} out of the fields",
                    event.fields
                )));
            };
            for field in &self.fields[range] {
                if field.key as usize >= self.keys.len() {
                    return Err(FormatError::new(format!(
                        "event {i}: key id {} not in the key table",
                        field.key
                    )));
                }
                check_value(field.value, bytes).map_err(|e| FormatError::new(format!("event {i}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// WIT `edit`: one change to one event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edit {
    /// Drop the event at this index.
    Drop(u32),
    /// Set a field.
    Set(SetField),
    /// Remove a field.
    Remove(RemoveField),
    /// Set or clear the timestamp.
    Timestamp(SetTimestamp),
}

impl Edit {
    /// The index of the event the edit applies to.
    pub fn event(self) -> u32 {
        match self {
            Edit::Drop(event) => event,
            Edit::Set(s) => s.event,
            Edit::Remove(r) => r.event,
            Edit::Timestamp(t) => t.event,
        }
    }
}

/// WIT `set-field`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SetField {
    /// Index of the event.
    pub event: u32,
    /// Key id: a batch key below `batch.keys.len()`, else a new key.
    pub key: u32,
    /// The value; its spans point into [`Edits::bytes`].
    pub value: Value,
}

/// WIT `remove-field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoveField {
    /// Index of the event.
    pub event: u32,
    /// Key id, numbered as in [`SetField::key`].
    pub key: u32,
}

/// WIT `set-timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetTimestamp {
    /// Index of the event.
    pub event: u32,
    /// The new timestamp, or `None` to clear it.
    pub timestamp: Option<i64>,
}

/// WIT `edits`: what a plugin returns for a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edits {
    /// The bytes of every string and JSON value in [`Edits::edits`].
    pub bytes: Vec<u8>,
    /// Names of the keys the plugin introduces: id `batch.keys.len() + i` is `new_keys[i]`.
    pub new_keys: Vec<String>,
    /// The changes, applied in order.
    pub edits: Vec<Edit>,
}

impl Edits {
    /// Checks the edits against the batch they answer (`events` events, `keys` keys): every
    /// event index, key id and byte span. The host must call this before applying edits
    /// from a plugin, which it does not trust.
    pub fn validate(&self, events: usize, keys: usize) -> Result<(), FormatError> {
        let all_keys = keys + self.new_keys.len();
        for (i, edit) in self.edits.iter().enumerate() {
            if edit.event() as usize >= events {
                return Err(FormatError::new(format!(
                    "edit {i}: event {} out of a batch of {events}",
                    edit.event()
                )));
            }
            let (key, value) = match *edit {
                Edit::Set(s) => (s.key, Some(s.value)),
                Edit::Remove(r) => (r.key, None),
                Edit::Drop(_) | Edit::Timestamp(_) => continue,
            };
            if key as usize >= all_keys {
                return Err(FormatError::new(format!(
                    "edit {i}: key id {key} out of {all_keys} keys"
                )));
            }
            if let Some(value) = value {
                check_value(value, self.bytes.len()).map_err(|e| FormatError::new(format!("edit {i}: {e}")))?;
            }
        }
        Ok(())
    }
}

fn check_value(value: Value, bytes: usize) -> Result<(), String> {
    match value.span() {
        Some(span) if span.range(bytes).is_none() => Err(format!("value span {span:?} out of {bytes} bytes")),
        _ => Ok(()),
    }
}

/// A flat batch or flat edits that break the layout's rules (an index or span out of
/// range). From the host it is a host bug; from a plugin, a plugin bug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    message: String,
}

impl FormatError {
    fn new(message: String) -> FormatError {
        FormatError { message }
    }

    /// What is wrong, naming the event or edit.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed flat data: {}", self.message)
    }
}

impl std::error::Error for FormatError {}
