//! The [`Edits`] builder: what a plugin changes in a batch, recorded in the flat edit form.

use std::collections::HashMap;

use crate::flat;
use crate::view::{BatchView, EventView, FieldKey, Key, ValueRef, find_key};

/// The changes a plugin makes to one batch: drops, field sets and removals, timestamps.
///
/// Each call appends one flat edit; string values are copied into one byte buffer, and
/// names the batch does not have become new keys. [`Edits::into_flat`] hands the result
/// over as it crosses the boundary. Edits apply in the order they were made.
#[derive(Debug)]
pub struct Edits<'b> {
    keys: &'b [String],
    new_keys: Vec<String>,
    new_ids: HashMap<String, u32>,
    bytes: Vec<u8>,
    edits: Vec<flat::Edit>,
}

impl<'b> Edits<'b> {
    /// No edits yet, for `batch`.
    pub fn new(batch: &BatchView<'b>) -> Edits<'b> {
        Edits {
            keys: batch.keys(),
            new_keys: Vec::new(),
            new_ids: HashMap::new(),
            bytes: Vec::new(),
            edits: Vec::new(),
        }
    }

    /// The key named `name`: the batch's key if it has one, else a new key (made once,
    /// then reused). Call it once per batch to keep name lookups out of the event loop.
    pub fn key(&mut self, name: &str) -> Key {
        if let Some(key) = self.existing_key(name) {
            return key;
        }
        let id = u32::try_from(self.keys.len() + self.new_keys.len()).expect("fewer than 2^32 keys");
        self.new_keys.push(name.to_owned());
        self.new_ids.insert(name.to_owned(), id);
        Key(id)
    }

    /// The key named `name` if the batch has it or an edit already made it.
    pub(crate) fn existing_key(&self, name: &str) -> Option<Key> {
        find_key(self.keys, name).or_else(|| self.new_ids.get(name).map(|&id| Key(id)))
    }

    /// Drops `event`: no later processor or output sees it.
    pub fn drop(&mut self, event: &EventView<'_>) {
        self.edits.push(flat::Edit::Drop(event.index() as u32));
    }

    /// Sets a field of `event` (by name or [`Key`]) to `value`: in place if the event has
    /// it, else appended. Strings are copied into the edit buffer.
    pub fn set<'v>(&mut self, event: &EventView<'_>, key: impl FieldKey, value: impl Into<ValueRef<'v>>) {
        let key = key.intern(self);
        let value = match value.into() {
            ValueRef::Null => flat::Value::Null,
            ValueRef::Bool(b) => flat::Value::Boolean(b),
            ValueRef::Int(i) => flat::Value::Int(i),
            ValueRef::Float(f) => flat::Value::Float(f),
            ValueRef::Str(b) => flat::Value::Str(self.push_bytes(b)),
            ValueRef::Json(b) => flat::Value::Json(self.push_bytes(b)),
        };
        self.push_set(event, key, value);
    }

    /// Sets a string field of `event` to the bytes `write` appends to the buffer it is
    /// given, with no intermediate allocation (e.g. a redacted copy of a value).
    pub fn set_str_with(&mut self, event: &EventView<'_>, key: impl FieldKey, write: impl FnOnce(&mut Vec<u8>)) {
        let key = key.intern(self);
        let start = self.bytes.len();
        write(&mut self.bytes);
        let span = flat::Span::new(start, self.bytes.len() - start);
        self.push_set(event, key, flat::Value::Str(span));
    }

    /// Removes a field of `event` (by name or [`Key`]), if it has it.
    pub fn remove(&mut self, event: &EventView<'_>, key: impl FieldKey) {
        if let Some(key) = key.existing(self) {
            self.edits.push(flat::Edit::Remove(flat::RemoveField {
                event: event.index() as u32,
                key: key.id(),
            }));
        }
    }

    /// Sets the timestamp of `event` (nanoseconds since the Unix epoch, UTC), or clears it
    /// with `None`.
    pub fn set_timestamp(&mut self, event: &EventView<'_>, timestamp: Option<i64>) {
        self.edits.push(flat::Edit::Timestamp(flat::SetTimestamp {
            event: event.index() as u32,
            timestamp,
        }));
    }

    /// Number of edits made so far.
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// True when no edit was made: the batch passes through unchanged.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The edits in flat form, as the WIT `edits` record.
    pub fn into_flat(self) -> flat::Edits {
        flat::Edits {
            bytes: self.bytes,
            new_keys: self.new_keys,
            edits: self.edits,
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> flat::Span {
        let span = flat::Span::new(self.bytes.len(), bytes.len());
        self.bytes.extend_from_slice(bytes);
        span
    }

    fn push_set(&mut self, event: &EventView<'_>, key: Key, value: flat::Value) {
        self.edits.push(flat::Edit::Set(flat::SetField {
            event: event.index() as u32,
            key: key.id(),
            value,
        }));
    }
}
