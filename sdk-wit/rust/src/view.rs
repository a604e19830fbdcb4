//! Borrowed views over a flat batch: [`BatchView`], [`EventView`] and [`ValueRef`].
//! Reading copies nothing: strings are slices of the batch's one byte list.

use crate::flat::{self, FormatError};

/// A field name resolved to its id for one batch (ids are local to a batch: see
/// [`BatchView::key`]). Comparing ids is what makes a per-event loop cheap; look names up
/// once per batch, outside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub(crate) u32);

impl Key {
    /// The id as it crosses the boundary.
    pub fn id(self) -> u32 {
        self.0
    }
}

/// Something that names a field: a `&str` (looked up by name in the key table) or a
/// [`Key`] (used as is). Sealed: only these implement it.
pub trait FieldKey: sealed::Sealed {
    /// The key in a batch whose key table is `keys`, if the batch has it.
    #[doc(hidden)]
    fn lookup(&self, keys: &[String]) -> Option<Key>;
    /// The key for an edit: an existing key, or a new one recorded in `edits`.
    #[doc(hidden)]
    fn intern(&self, edits: &mut crate::Edits<'_>) -> Key;
    /// The key for a removal: `None` when no event can have it.
    #[doc(hidden)]
    fn existing(&self, edits: &crate::Edits<'_>) -> Option<Key>;
}

/// The id of `name` in the key table `keys`.
pub(crate) fn find_key(keys: &[String], name: &str) -> Option<Key> {
    keys.iter().position(|k| k == name).map(|i| Key(i as u32))
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for &String {}
    impl Sealed for super::Key {}
}

impl FieldKey for &str {
    fn lookup(&self, keys: &[String]) -> Option<Key> {
        find_key(keys, self)
    }
    fn intern(&self, edits: &mut crate::Edits<'_>) -> Key {
        edits.key(self)
    }
    fn existing(&self, edits: &crate::Edits<'_>) -> Option<Key> {
        edits.existing_key(self)
    }
}

impl FieldKey for &String {
    fn lookup(&self, keys: &[String]) -> Option<Key> {
        find_key(keys, self)
    }
    fn intern(&self, edits: &mut crate::Edits<'_>) -> Key {
        edits.key(self)
    }
    fn existing(&self, edits: &crate::Edits<'_>) -> Option<Key> {
        edits.existing_key(self)
    }
}

impl FieldKey for Key {
    fn lookup(&self, _keys: &[String]) -> Option<Key> {
        Some(*self)
    }
    fn intern(&self, _edits: &mut crate::Edits<'_>) -> Key {
        *self
    }
    fn existing(&self, _edits: &crate::Edits<'_>) -> Option<Key> {
        Some(*self)
    }
}

/// A field value borrowed from a batch (when read) or from the caller (when written with
/// [`Edits::set`](crate::Edits::set)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Bytes, usually UTF-8 text (not guaranteed).
    Str(&'a [u8]),
    /// Bytes that are valid JSON text (a nested object or array kept as text).
    Json(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// The text of a `Str` value that is valid UTF-8.
    pub fn as_str(self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The bytes of a `Str` value.
    pub fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            ValueRef::Str(b) => Some(b),
            _ => None,
        }
    }

    /// The integer of an `Int` value.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            ValueRef::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number of an `Int` or `Float` value, as a float.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The boolean of a `Bool` value.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// True for `Null`.
    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// The value of a field row, its strings resolved in `bytes` then `extra`; `None` when
    /// a span lies outside them.
    #[inline]
    fn resolve(value: flat::Value, bytes: &'a [u8], extra: &'a [u8]) -> Option<ValueRef<'a>> {
        let slice = |s: flat::Span| flat::resolve(bytes, extra, s);
        Some(match value {
            flat::Value::Null => ValueRef::Null,
            flat::Value::Boolean(b) => ValueRef::Bool(b),
            flat::Value::Int(i) => ValueRef::Int(i),
            flat::Value::Float(f) => ValueRef::Float(f),
            flat::Value::Str(s) => ValueRef::Str(slice(s)?),
            flat::Value::Json(s) => ValueRef::Json(slice(s)?),
        })
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    fn from(s: &'a str) -> Self {
        ValueRef::Str(s.as_bytes())
    }
}

impl<'a> From<&'a String> for ValueRef<'a> {
    fn from(s: &'a String) -> Self {
        ValueRef::Str(s.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for ValueRef<'a> {
    fn from(b: &'a [u8]) -> Self {
        ValueRef::Str(b)
    }
}

impl From<i64> for ValueRef<'_> {
    fn from(i: i64) -> Self {
        ValueRef::Int(i)
    }
}

impl From<f64> for ValueRef<'_> {
    fn from(f: f64) -> Self {
        ValueRef::Float(f)
    }
}

impl From<bool> for ValueRef<'_> {
    fn from(b: bool) -> Self {
        ValueRef::Bool(b)
    }
}

/// A malformed row a view read, recorded for the call to fail on (see [`BatchView::new`]).
/// One per thread: a plugin runs one call at a time.
mod malformed {
    use super::FormatError;
    use std::cell::Cell;

    thread_local! {
        static FIRST: Cell<Option<FormatError>> = const { Cell::new(None) };
    }

    /// Records the problem `what` describes, unless one is already recorded.
    #[cold]
    #[inline(never)]
    pub(crate) fn record(what: impl FnOnce() -> String) {
        FIRST.with(|first| {
            let earlier = first.take();
            first.set(Some(earlier.unwrap_or_else(|| FormatError::new(what()))));
        });
    }

    /// The first problem recorded since the last call, if any.
    pub(crate) fn take() -> Option<FormatError> {
        FIRST.with(Cell::take)
    }
}

pub(crate) use malformed::take as take_malformed;

/// A read-only view of a flat batch. Cheap to copy; its accessors never panic (see
/// [`BatchView::new`] for a malformed row).
#[derive(Clone, Copy, Debug)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
    extra: &'a [u8],
    keys: &'a [String],
    events: &'a [u8],
    fields: &'a [u8],
    limits: flat::EmitLimits,
}

impl<'a> BatchView<'a> {
    /// A view of `batch`, after checking that its tables are whole rows.
    ///
    /// Each row is checked when it is read, not here: a plugin that reads one field of ten
    /// checks one, and a check of every row up front was a tenth of a Wasm filter's time.
    /// The host sends well-formed batches; should a row be malformed all the same (a host
    /// bug), reading it gives nothing (no field, empty bytes) and records the problem, and
    /// the call fails as `fatal` naming it ([`process_flat`](crate::process_flat)), so no
    /// edit made from such a read is applied. [`flat::Batch::validate`] checks every row at
    /// once.
    pub fn new(batch: &'a flat::Batch) -> Result<BatchView<'a>, FormatError> {
        batch.whole_rows()?;
        Ok(BatchView {
            bytes: &batch.bytes,
            extra: &batch.extra,
            keys: &batch.keys,
            events: &batch.events,
            fields: &batch.fields,
            limits: batch.limits,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len() / flat::EVENT_ROW
    }

    /// True when the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in order.
    pub fn events(&self) -> Events<'a> {
        Events { batch: *self, next: 0 }
    }

    /// The event at `index`.
    #[inline]
    pub fn event(&self, index: usize) -> Option<EventView<'a>> {
        if index >= self.len() {
            return None;
        }
        let range = flat::EventRow::fields_at(self.events, index);
        let fields = match range.range(self.fields.len() / flat::FIELD_ROW) {
            Some(range) => &self.fields[range.start * flat::FIELD_ROW..range.end * flat::FIELD_ROW],
            None => {
                malformed::record(|| format!("event {index}: field range {range:?} out of the fields"));
                &[]
            }
        };
        Some(EventView {
            bytes: self.bytes,
            extra: self.extra,
            keys: self.keys,
            events: self.events,
            fields,
            index: index as u32,
        })
    }

    /// The key named `name`, if some event of this batch may have it. Linear in the size
    /// of the key table: call it once per batch, then pass the [`Key`] in the event loop.
    pub fn key(&self, name: &str) -> Option<Key> {
        find_key(self.keys, name)
    }

    /// The name of `key`, if it is a key of this batch.
    pub fn key_name(&self, key: Key) -> Option<&'a str> {
        self.keys.get(key.0 as usize).map(String::as_str)
    }

    /// The key table: field names by id.
    pub fn keys(&self) -> &'a [String] {
        self.keys
    }

    /// What one call may emit (see [`Edits::emit`](crate::Edits::emit)).
    pub fn limits(&self) -> flat::EmitLimits {
        self.limits
    }
}

/// The events of a batch, in order (see [`BatchView::events`]).
#[derive(Clone, Debug)]
pub struct Events<'a> {
    batch: BatchView<'a>,
    next: usize,
}

impl<'a> Iterator for Events<'a> {
    type Item = EventView<'a>;

    #[inline]
    fn next(&mut self) -> Option<EventView<'a>> {
        let event = self.batch.event(self.next)?;
        self.next += 1;
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Events<'_> {}

/// A read-only view of one event. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    bytes: &'a [u8],
    extra: &'a [u8],
    keys: &'a [String],
    /// The batch's event rows: the event's row is read from them when asked (a plugin
    /// that reads no raw bytes or time never decodes them).
    events: &'a [u8],
    /// The event's field rows.
    fields: &'a [u8],
    index: u32,
}

impl<'a> EventView<'a> {
    /// The event's position in its batch: what edits refer to.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The bytes the event was read from (its raw line or record).
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        let raw = flat::EventRow::raw_at(self.events, self.index as usize);
        flat::resolve(self.bytes, self.extra, raw).unwrap_or_else(|| {
            malformed::record(|| format!("event {}: raw span {raw:?} out of the bytes", self.index));
            &[]
        })
    }

    /// The raw bytes as text, if they are valid UTF-8.
    pub fn raw_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.raw()).ok()
    }

    /// Event time in nanoseconds since the Unix epoch (UTC), when known.
    pub fn timestamp(&self) -> Option<i64> {
        flat::EventRow::timestamp_at(self.events, self.index as usize)
    }

    /// The value of a field, by name (`event.get("level")`) or by [`Key`].
    #[inline]
    pub fn get(&self, key: impl FieldKey) -> Option<ValueRef<'a>> {
        let key = key.lookup(self.keys)?;
        (0..self.field_count())
            .find(|&i| flat::FieldRow::key_at(self.fields, i) == key.0)
            .and_then(|i| self.value(i))
    }

    /// The text of a string field that is valid UTF-8: `get(key)?.as_str()`.
    pub fn get_str(&self, key: impl FieldKey) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    /// The fields in order, as `(name, value)`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)> + 'a {
        let this = *self;
        (0..self.field_count()).map(move |i| {
            let key = flat::FieldRow::key_at(this.fields, i);
            let name = this.keys.get(key as usize).map_or_else(
                || {
                    malformed::record(|| format!("event {}: key id {key} not in the key table", this.index));
                    ""
                },
                String::as_str,
            );
            (name, this.value(i).unwrap_or(ValueRef::Null))
        })
    }

    /// Number of fields.
    pub fn field_count(&self) -> usize {
        self.fields.len() / flat::FIELD_ROW
    }

    /// The value of the event's `i`-th field row; `None` (recorded) when the row is
    /// malformed.
    #[inline]
    fn value(&self, i: usize) -> Option<ValueRef<'a>> {
        let Some(field) = flat::FieldRow::read(self.fields, i) else {
            let row = flat::EventRow::fields_at(self.events, self.index as usize).start as usize + i;
            malformed::record(|| format!("event {}: field {row} has an unknown value tag", self.index));
            return None;
        };
        let value = ValueRef::resolve(field.value, self.bytes, self.extra);
        if value.is_none() {
            malformed::record(|| {
                format!(
                    "event {}: value span {:?} out of the bytes (or across bytes and extra)",
                    self.index,
                    field.value.span().unwrap_or_default()
                )
            });
        }
        value
    }
}
