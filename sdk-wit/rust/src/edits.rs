//! The [`Edits`] builder: what a plugin changes in a batch, recorded as op rows.

use std::collections::HashMap;

use crate::flat::{self, OpKind};
use crate::view::{BatchView, EventView, FieldKey, Key, ValueRef, find_key};

/// An event emitted by [`Edits::emit`] or [`Edits::emit_copy`]: set its fields with the
/// same calls as for a batch event (`edits.set(&new, "n", 1)`). When the emit was refused
/// (the call's limit was reached), edits on it do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewEvent(u32);

impl NewEvent {
    const REFUSED: u32 = u32::MAX;

    /// False when the emit was refused because the call's limit was reached.
    pub fn is_emitted(&self) -> bool {
        self.0 != NewEvent::REFUSED
    }
}

/// An event edits can name: one of the batch ([`EventView`]) or one emitted in this call
/// ([`NewEvent`]). Sealed.
pub trait EventRef: sealed::Sealed {
    /// The event's number in the op rows, or `None` for a refused emit.
    #[doc(hidden)]
    fn number(&self) -> Option<u32>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::EventView<'_> {}
    impl Sealed for super::NewEvent {}
}

impl EventRef for EventView<'_> {
    fn number(&self) -> Option<u32> {
        Some(self.index() as u32)
    }
}

impl EventRef for NewEvent {
    fn number(&self) -> Option<u32> {
        self.is_emitted().then_some(self.0)
    }
}

/// The changes a plugin makes to one batch: drops, field sets and removals, timestamps,
/// raw bytes, routes, and new events.
///
/// Each call appends one op row; string values are copied into one byte buffer, and names
/// the batch does not have become new keys. [`Edits::into_flat`] hands the result over as
/// it crosses the boundary. Edits apply in the order they were made.
#[derive(Debug)]
pub struct Edits<'b> {
    keys: &'b [String],
    new_keys: Vec<String>,
    new_ids: HashMap<String, u32>,
    bytes: Vec<u8>,
    ops: Vec<u8>,
    /// Batch events, then the events emitted so far.
    events: u32,
    emitted: u32,
    refused: u32,
    limits: flat::EmitLimits,
}

impl<'b> Edits<'b> {
    /// No edits yet, for `batch`.
    pub fn new(batch: &BatchView<'b>) -> Edits<'b> {
        Edits {
            keys: batch.keys(),
            new_keys: Vec::new(),
            new_ids: HashMap::new(),
            bytes: Vec::new(),
            ops: Vec::new(),
            events: batch.len() as u32,
            emitted: 0,
            refused: 0,
            limits: batch.limits(),
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
    pub fn drop(&mut self, event: &impl EventRef) {
        self.push_op(OpKind::Drop, event, 0, flat::Value::Null);
    }

    /// Sets a field of `event` (by name or [`Key`]) to `value`: in place if the event has
    /// it, else appended. Strings are copied into the edit buffer.
    pub fn set<'v>(&mut self, event: &impl EventRef, key: impl FieldKey, value: impl Into<ValueRef<'v>>) {
        let key = key.intern(self);
        let value = self.push_value(value.into());
        self.push_op(OpKind::Set, event, key.id(), value);
    }

    /// Sets a string field of `event` to the bytes `write` appends to the buffer it is
    /// given, with no intermediate allocation (e.g. a redacted copy of a value).
    pub fn set_str_with(&mut self, event: &impl EventRef, key: impl FieldKey, write: impl FnOnce(&mut Vec<u8>)) {
        let key = key.intern(self);
        let start = self.bytes.len();
        write(&mut self.bytes);
        let span = flat::Span::new(start, self.bytes.len() - start);
        self.push_op(OpKind::Set, event, key.id(), flat::Value::Str(span));
    }

    /// Removes a field of `event` (by name or [`Key`]), if it has it.
    pub fn remove(&mut self, event: &impl EventRef, key: impl FieldKey) {
        if let Some(key) = key.existing(self) {
            self.push_op(OpKind::Remove, event, key.id(), flat::Value::Null);
        }
    }

    /// Sets the timestamp of `event` (nanoseconds since the Unix epoch, UTC), or clears it
    /// with `None`.
    pub fn set_timestamp(&mut self, event: &impl EventRef, timestamp: Option<i64>) {
        let value = timestamp.map_or(flat::Value::Null, flat::Value::Int);
        self.push_op(OpKind::Timestamp, event, 0, value);
    }

    /// Replaces the raw bytes of `event` (what outputs with `encoding: raw` write).
    pub fn set_raw(&mut self, event: &impl EventRef, raw: &[u8]) {
        let span = self.push_bytes(raw);
        self.push_op(OpKind::Raw, event, 0, flat::Value::Str(span));
    }

    /// Sends `event` to the pipeline's output named `output` only, instead of every
    /// output. A name the pipeline does not have fails the batch (the host checks).
    pub fn route(&mut self, event: &impl EventRef, output: &str) {
        let span = self.push_bytes(output.as_bytes());
        self.push_op(OpKind::Route, event, 0, flat::Value::Str(span));
    }

    /// Emits a new event with raw bytes `raw`, no fields and no timestamp, right after
    /// `after` (a batch event; `None`: after the last one). Set its fields with
    /// [`Edits::set`] on the returned [`NewEvent`]. Past the call's limit (see
    /// [`BatchView::limits`]) the emit is refused: it is counted by the host, and
    /// [`NewEvent::is_emitted`] says so.
    pub fn emit(&mut self, after: Option<&EventView<'_>>, raw: &[u8]) -> NewEvent {
        if !self.may_emit(raw.len()) {
            return NewEvent(NewEvent::REFUSED);
        }
        let span = self.push_bytes(raw);
        let at = after.map_or(flat::AFTER_LAST, |e| e.index() as u32);
        self.emit_op(OpKind::Emit, at, flat::Value::Str(span))
    }

    /// Emits a copy of `event` (raw bytes, timestamp and fields) right after it: how one
    /// event splits into several that keep its metadata. Limits as for [`Edits::emit`].
    pub fn emit_copy(&mut self, event: &EventView<'_>) -> NewEvent {
        if !self.may_emit(0) {
            return NewEvent(NewEvent::REFUSED);
        }
        self.emit_op(OpKind::EmitCopy, event.index() as u32, flat::Value::Null)
    }

    /// Emits refused so far because the call's limit was reached.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// Number of op rows so far.
    pub fn len(&self) -> usize {
        self.ops.len() / flat::OP_ROW
    }

    /// True when no edit was made: the batch passes through unchanged.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The edits in flat form, as the WIT `edits` record.
    pub fn into_flat(self) -> flat::Edits {
        flat::Edits {
            bytes: self.bytes,
            new_keys: self.new_keys,
            ops: self.ops,
            refused: self.refused,
        }
    }

    fn may_emit(&mut self, bytes: usize) -> bool {
        let fits = self.emitted < self.limits.events && self.bytes.len() + bytes <= self.limits.bytes as usize;
        if !fits {
            self.refused = self.refused.saturating_add(1);
        }
        fits
    }

    fn emit_op(&mut self, kind: OpKind, event: u32, value: flat::Value) -> NewEvent {
        flat::Op {
            kind,
            event,
            key: 0,
            value,
        }
        .write(&mut self.ops);
        let number = self.events + self.emitted;
        self.emitted += 1;
        NewEvent(number)
    }

    fn push_value(&mut self, value: ValueRef<'_>) -> flat::Value {
        match value {
            ValueRef::Null => flat::Value::Null,
            ValueRef::Bool(b) => flat::Value::Boolean(b),
            ValueRef::Int(i) => flat::Value::Int(i),
            ValueRef::Float(f) => flat::Value::Float(f),
            ValueRef::Str(b) => flat::Value::Str(self.push_bytes(b)),
            ValueRef::Json(b) => flat::Value::Json(self.push_bytes(b)),
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> flat::Span {
        let span = flat::Span::new(self.bytes.len(), bytes.len());
        self.bytes.extend_from_slice(bytes);
        span
    }

    fn push_op(&mut self, kind: OpKind, event: &impl EventRef, key: u32, value: flat::Value) {
        if let Some(event) = event.number() {
            flat::Op {
                kind,
                event,
                key,
                value,
            }
            .write(&mut self.ops);
        }
    }
}
