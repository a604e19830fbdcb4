//! The batch model: a [`Batch`] owns the bytes it was read from (the chunk), an append-only
//! arena for bytes that processors create, and its [`Event`]s. Event fields are interned
//! [`Key`]s with [`Value`]s; a string value is a [`Span`] into the chunk or the arena, so
//! parsing copies nothing and only rewriting a value writes to the arena.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use smallvec::SmallVec;

/// An interned field name: a small integer from the pipeline's [`KeyTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u32);

impl Key {
    /// `message`: the raw line, set on every event by the line splitter.
    pub const MESSAGE: Key = Key(0);
    /// `_cut`: `true` on each piece of a line longer than `max_line_bytes`.
    pub const CUT: Key = Key(1);

    /// The key's position in its table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The key at position `i` of its table (the inverse of [`Key::index`]).
pub(crate) fn key_at(i: usize) -> Key {
    Key(u32::try_from(i).expect("more than 2^32 field names"))
}

/// The pipeline's symbol table: field name <-> [`Key`]. Append-only and shared by every
/// worker; processors intern the names they use when they are built, so the per-event
/// loop compares integers, never strings.
#[derive(Debug)]
pub struct KeyTable {
    inner: RwLock<KeyTableInner>,
}

#[derive(Debug, Default)]
struct KeyTableInner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, Key>,
    /// Sum of the names' lengths.
    bytes: usize,
}

impl KeyTable {
    /// Most distinct field names a pipeline holds.
    pub const MAX_KEYS: usize = 16_384;
    /// Most bytes their names take together: names come from the data (JSON members, kv
    /// keys, CSV headers), so without this a hostile input of long distinct names could
    /// grow the table to gigabytes.
    pub const MAX_NAME_BYTES: usize = 4 << 20;

    /// A table holding the well-known keys ([`Key::MESSAGE`], [`Key::CUT`]).
    pub fn new() -> Arc<KeyTable> {
        let table = KeyTable {
            inner: RwLock::new(KeyTableInner::default()),
        };
        let message = table.intern("message");
        let cut = table.intern("_cut");
        debug_assert_eq!((message, cut), (Key::MESSAGE, Key::CUT));
        Arc::new(table)
    }

    /// The key for `name`, adding it if it is new. For names known when a pipeline is
    /// built (config keys): panics if the table is full, which only names seen at run time
    /// can cause; those go through [`KeyTable::try_intern`].
    pub fn intern(&self, name: &str) -> Key {
        self.try_intern(name)
            .expect("the key table is full (more than MAX_KEYS distinct field names)")
    }

    /// The key for `name`, adding it if it is new and the table holds fewer than
    /// [`KeyTable::MAX_KEYS`] names and [`KeyTable::MAX_NAME_BYTES`] bytes with it. Parsers intern the names they find in the data this
    /// way: input with endless distinct field names then gets a counted failure instead of
    /// growing memory without bound.
    pub fn try_intern(&self, name: &str) -> Option<Key> {
        if let Some(key) = self.get(name) {
            return Some(key);
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&key) = inner.ids.get(name) {
            return Some(key);
        }
        if inner.names.len() >= Self::MAX_KEYS || inner.bytes + name.len() > Self::MAX_NAME_BYTES {
            return None;
        }
        inner.bytes += name.len();
        let key = Key(u32::try_from(inner.names.len()).expect("MAX_KEYS fits in u32"));
        let name: Arc<str> = Arc::from(name);
        inner.names.push(name.clone());
        inner.ids.insert(name, key);
        Some(key)
    }

    /// The key for `name` if it was interned.
    pub fn get(&self, name: &str) -> Option<Key> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.ids.get(name).copied()
    }

    /// The name of `key`. Panics if `key` comes from another table.
    pub fn name(&self, key: Key) -> Arc<str> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.names[key.index()].clone()
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).names.len()
    }

    /// Never true: the well-known keys are always there.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Which of the batch's buffers a [`Span`] points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// The bytes the batch was read from.
    Chunk,
    /// Bytes written by processors.
    Arena,
}

/// A range of bytes in one of its batch's buffers. Cheap to copy, `Send`, and only
/// meaningful together with the batch it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
    buf: Buf,
}

impl Span {
    /// A span of `len` bytes at `start` in `buf`.
    pub fn new(buf: Buf, start: usize, len: usize) -> Span {
        Span {
            start: u32::try_from(start).expect("batch buffers are smaller than 4 GiB"),
            len: u32::try_from(len).expect("batch buffers are smaller than 4 GiB"),
            buf,
        }
    }

    /// The offset of the first byte.
    pub fn start(self) -> usize {
        self.start as usize
    }

    /// The number of bytes.
    pub fn len(self) -> usize {
        self.len as usize
    }

    /// True when the span holds no bytes.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The offset one past the last byte.
    pub fn end(self) -> usize {
        self.start() + self.len()
    }

    /// Which buffer the span points into.
    pub fn buf(self) -> Buf {
        self.buf
    }

    /// A sub-span `[from, from + len)` relative to this span's start.
    pub fn slice(self, from: usize, len: usize) -> Span {
        debug_assert!(from + len <= self.len());
        Span::new(self.buf, self.start() + from, len)
    }
}

/// A field value. Strings are spans; nested JSON kept as text is a span of JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float; non-finite values encode as `null`.
    Float(f64),
    /// Bytes, usually UTF-8 text; encoders replace invalid UTF-8.
    Str(Span),
    /// Bytes that are already valid JSON (a nested object or array kept as text).
    Json(Span),
}

/// A field: an interned key and its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// The field name.
    pub key: Key,
    /// The field value.
    pub value: Value,
}

impl Field {
    /// The `message` field holding `raw`.
    #[inline]
    fn message(raw: Span) -> Field {
        Field {
            key: Key::MESSAGE,
            value: Value::Str(raw),
        }
    }
}

const DROPPED: u8 = 1;
const DEAD_LETTER: u8 = 2;

/// One log record: the span of its raw bytes, an optional timestamp and a short list of
/// fields, in insertion order.
#[derive(Clone, Debug)]
pub struct Event {
    raw: Span,
    /// Event time in nanoseconds since the Unix epoch (UTC), when known.
    pub timestamp: Option<i64>,
    fields: FieldList,
    flags: u8,
    /// The one output the event goes to (its number in the pipeline plus one), or 0: all.
    route: u16,
}

impl Event {
    /// An event whose raw bytes are `raw` and whose `message` field is that same span.
    pub fn from_line(raw: Span) -> Event {
        Event::with_fields(raw, smallvec::smallvec![Field::message(raw)])
    }

    /// An event over `raw` with no fields (e.g. one a plugin emits and then fills).
    pub fn bare(raw: Span) -> Event {
        Event::with_fields(raw, SmallVec::new())
    }

    /// A live event over `raw` with `fields`, no time and no route.
    #[inline]
    fn with_fields(raw: Span, fields: FieldList) -> Event {
        Event {
            raw,
            timestamp: None,
            fields,
            flags: 0,
            route: 0,
        }
    }

    /// A copy of the event that is live (neither dropped nor dead-lettered) and routed
    /// nowhere in particular, whatever this one is.
    pub fn live_copy(&self) -> Event {
        Event {
            flags: 0,
            route: 0,
            ..self.clone()
        }
    }

    /// The one output the event goes to (its number in the pipeline plus one), or 0 when
    /// it goes to every output (see [`Route::Output`](crate::encode::Route::Output)).
    pub fn route(&self) -> u16 {
        self.route
    }

    /// Sends the event to one output only: its number in the pipeline plus one (0: all).
    pub fn set_route(&mut self, route: u16) {
        self.route = route;
    }

    /// The bytes the event was read from: a span of the chunk, or of the arena once a
    /// processor replaced them ([`Event::set_raw`]).
    pub fn raw(&self) -> Span {
        self.raw
    }

    /// Replaces the event's raw bytes (what `encoding: raw` outputs write).
    pub fn set_raw(&mut self, raw: Span) {
        self.raw = raw;
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The value of `key`.
    pub fn get(&self, key: Key) -> Option<Value> {
        self.fields.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// Sets `key` to `value`, in place if it exists, else appended.
    pub fn set(&mut self, key: Key, value: Value) {
        match self.fields.iter_mut().find(|f| f.key == key) {
            Some(field) => field.value = value,
            None => self.fields.push(Field { key, value }),
        }
    }

    /// Sets every field of `new` in order, like [`Event::set`] one by one, in linear time:
    /// presence is tracked in a bitmap for the first 128 keys of the table (two words: a
    /// shift of a `u128` is a dozen instructions).
    pub fn extend_fields(&mut self, new: &[Field]) {
        let bit = |key: Key| -> (usize, u64) { ((key.0 >> 6) as usize, 1 << (key.0 & 63)) };
        let mut present = [0u64; 2];
        for f in &self.fields {
            if f.key.0 < 128 {
                let (w, b) = bit(f.key);
                present[w] |= b;
            }
        }
        // The common case, new keys all distinct, under 128 and none present (a parser's
        // fields on an event holding only its message): one append of the whole list.
        let mut adding = [0u64; 2];
        let mut clash = false;
        for &Field { key, .. } in new {
            let (w, b) = bit(key);
            clash |= key.0 >= 128 || (adding[w & 1] | present[w & 1]) & b != 0;
            adding[w & 1] |= b;
        }
        if !clash {
            self.append(new);
            return;
        }
        for &Field { key, value } in new {
            let (w, b) = bit(key);
            if key.0 < 128 && present[w & 1] & b == 0 {
                present[w & 1] |= b;
                self.fields.push(Field { key, value });
            } else {
                self.set(key, value);
            }
        }
    }

    /// Whether `key` is the event's one field.
    pub(crate) fn holds_only(&self, key: Key) -> bool {
        matches!(self.fields.as_slice(), [only] if only.key == key)
    }

    /// Replaces every field with `new`, in order. The keys of `new` must be distinct (as
    /// [`FieldParse::distinct_keys`](crate::parse::FieldParse::distinct_keys) promises):
    /// nothing checks them.
    pub(crate) fn replace_fields(&mut self, new: &[Field]) {
        debug_assert!(crate::parse::all_distinct(new.iter().map(|f| f.key)));
        self.fields.clear();
        self.append(new);
    }

    /// Appends `new` as it is, in one copy (the callers know its keys are new).
    #[inline]
    fn append(&mut self, new: &[Field]) {
        self.fields.reserve(new.len());
        let len = self.fields.len();
        // SAFETY: the capacity holds `new.len()` more fields (reserved above), which the
        // copy fills before the length covers them; `new` is not this event's own list.
        unsafe {
            std::ptr::copy_nonoverlapping(new.as_ptr(), self.fields.as_mut_ptr().add(len), new.len());
            self.fields.set_len(len + new.len());
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: Key) -> Option<Value> {
        let at = self.fields.iter().position(|f| f.key == key)?;
        Some(self.fields.remove(at).value)
    }

    /// Renames `from` to `to`, replacing any existing `to`. Returns false if `from` is absent.
    pub fn rename(&mut self, from: Key, to: Key) -> bool {
        if from == to {
            return self.get(from).is_some();
        }
        let Some(at) = self.fields.iter().position(|f| f.key == from) else {
            return false;
        };
        if let Some(old) = self.fields.iter().position(|f| f.key == to) {
            self.fields[old].value = self.fields[at].value;
            self.fields.remove(at);
        } else {
            self.fields[at].key = to;
        }
        true
    }

    /// Marks the event as dropped. The batch compacts once, after the pipeline.
    pub fn mark_dropped(&mut self) {
        self.flags |= DROPPED;
    }

    /// True once [`Event::mark_dropped`] was called.
    pub fn is_dropped(&self) -> bool {
        self.flags & DROPPED != 0
    }

    /// Routes the event to the pipeline's dead-letter output: later processors skip it and
    /// the other outputs never see it.
    pub fn mark_dead_letter(&mut self) {
        self.flags |= DEAD_LETTER;
    }

    /// True once [`Event::mark_dead_letter`] was called.
    pub fn is_dead_letter(&self) -> bool {
        self.flags & DEAD_LETTER != 0
    }

    /// Neither dropped nor dead-lettered: processors and the main outputs see it.
    pub fn is_live(&self) -> bool {
        self.flags & (DROPPED | DEAD_LETTER) == 0
    }
}

/// Most spare field lists a batch keeps: as many as the events of a 512 KiB chunk of
/// 16-byte lines, so every event of a batch of short parsed lines gets one (at 4,096, a
/// chunk of 100-byte apache lines, about 5,200 events, allocated a fifth of its lists
/// anew each batch: 61,662 allocations for 85,532 lines). The lists kept are those the
/// last batch's events held at once, so keeping them adds nothing to the peak.
const MAX_SPARE_LISTS: usize = 32_768;
/// Lists longer than this (an event with hundreds of fields) are freed, not kept.
const MAX_SPARE_FIELDS: usize = 64;

/// Keeps `fields` for reuse if it lives on the heap (inline lists cost nothing to make).
fn keep_field_list(spare: &mut Vec<FieldList>, fields: &mut FieldList) {
    if fields.spilled() && spare.len() < MAX_SPARE_LISTS && fields.capacity() <= MAX_SPARE_FIELDS {
        let mut list = std::mem::take(fields);
        list.clear();
        spare.push(list);
    }
}

/// An event over `raw` whose field list comes from `spare` when there is one.
pub(crate) fn new_event(spare: &mut Vec<FieldList>, raw: Span) -> Event {
    match spare.pop() {
        Some(mut list) => {
            list.push(Field::message(raw));
            Event::with_fields(raw, list)
        }
        None => Event::from_line(raw),
    }
}

/// The batch's byte buffers, borrowed apart from its events so a processor can read
/// values and write the arena while it mutates events.
#[derive(Debug)]
pub struct Bufs<'a> {
    chunk: &'a [u8],
    arena: &'a mut Vec<u8>,
}

impl<'a> Bufs<'a> {
    /// The bytes of `span` when it is in the chunk, borrowed from the batch rather than from
    /// `self`: they stay readable while the arena grows.
    pub fn chunk_bytes(&self, span: Span) -> Option<&'a [u8]> {
        match span.buf {
            Buf::Chunk => Some(&self.chunk[span.start()..span.end()]),
            Buf::Arena => None,
        }
    }

    /// The bytes of `span`.
    pub fn bytes(&self, span: Span) -> &[u8] {
        resolve(self.chunk, self.arena, span)
    }

    /// Appends `bytes` to the arena and returns their span.
    pub fn push(&mut self, bytes: &[u8]) -> Span {
        push_arena(self.arena, bytes)
    }

    /// The whole chunk.
    pub fn chunk(&self) -> &[u8] {
        self.chunk
    }
}

fn resolve<'a>(chunk: &'a [u8], arena: &'a [u8], span: Span) -> &'a [u8] {
    let buf = match span.buf {
        Buf::Chunk => chunk,
        Buf::Arena => arena,
    };
    &buf[span.start()..span.end()]
}

fn push_arena(arena: &mut Vec<u8>, bytes: &[u8]) -> Span {
    let span = Span::new(Buf::Arena, arena.len(), bytes.len());
    arena.extend_from_slice(bytes);
    span
}

/// Where a batch's bytes came from and where they end, for ordering and checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The source (one file or stream) within the run.
    pub source: u32,
    /// Position of this batch among its source's batches, from 0.
    pub seq: u64,
    /// Offset in the source of the chunk's first byte.
    pub offset: u64,
}

/// A batch of events and the bytes they point into. Moves between threads as one value.
#[derive(Debug, Default)]
pub struct Batch {
    chunk: Vec<u8>,
    arena: Vec<u8>,
    events: Vec<Event>,
    /// Field lists that outgrew their inline room, emptied and kept for the next events:
    /// an event with many fields costs an allocation once per worker, not once per event.
    spare_fields: Vec<FieldList>,
    /// Where the chunk came from.
    pub origin: Origin,
}

/// An event's fields: inline up to three (a line's message, a container stream and tag),
/// on the heap beyond. Three, not four, keeps an [`Event`] at 112 bytes: at 136, every
/// move of one (a push onto a batch) was a `memcpy` call, 2 % of a parsed-lines run's time.
type FieldList = SmallVec<[Field; 3]>;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(
    std::mem::size_of::<Event>() <= 112,
    "an Event outgrew 112 bytes: see FieldList"
);

impl Batch {
    /// A batch over `chunk`, with no events yet.
    pub fn new(chunk: Vec<u8>, origin: Origin) -> Batch {
        Batch {
            chunk,
            arena: Vec::new(),
            events: Vec::new(),
            spare_fields: Vec::new(),
            origin,
        }
    }

    /// The bytes the batch was read from.
    pub fn chunk(&self) -> &[u8] {
        &self.chunk
    }

    /// The whole buffer `buf` (the chunk or the arena), for a reader that may look past a
    /// span's end.
    pub fn buffer(&self, buf: Buf) -> &[u8] {
        match buf {
            Buf::Chunk => &self.chunk,
            Buf::Arena => &self.arena,
        }
    }

    /// The bytes of `span`.
    pub fn bytes(&self, span: Span) -> &[u8] {
        resolve(&self.chunk, &self.arena, span)
    }

    /// Appends `bytes` to the arena and returns their span.
    pub fn push_arena(&mut self, bytes: &[u8]) -> Span {
        push_arena(&mut self.arena, bytes)
    }

    /// All events, dropped ones included until [`Batch::compact`].
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events that are neither dropped nor dead-lettered.
    pub fn live(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.is_live())
    }

    /// The events routed to the dead-letter output (and not dropped).
    pub fn dead_letters(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.is_dead_letter() && !e.is_dropped())
    }

    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Inserts each `(after, event)` right after the batch's event `after` (`usize::MAX`:
    /// at the end); events inserted after the same one keep the order given. Their spans
    /// must point into this batch.
    pub fn insert_events(&mut self, new: &mut Vec<(usize, Event)>) {
        if new.is_empty() {
            return;
        }
        new.sort_by_key(|(after, _)| *after);
        let old = std::mem::take(&mut self.events);
        let mut events = Vec::with_capacity(old.len() + new.len());
        let mut new = new.drain(..).peekable();
        for (i, event) in old.into_iter().enumerate() {
            events.push(event);
            while let Some((_, e)) = new.next_if(|(after, _)| *after == i) {
                events.push(e);
            }
        }
        events.extend(new.map(|(_, e)| e));
        self.events = events;
    }

    /// The buffers and the events, borrowed apart. Processors iterate the events and skip
    /// dropped ones (see [`Batch::live_mut`]).
    pub fn parts_mut(&mut self) -> (Bufs<'_>, &mut [Event]) {
        (
            Bufs {
                chunk: &self.chunk,
                arena: &mut self.arena,
            },
            &mut self.events,
        )
    }

    /// The buffers and an iterator over the live events (see [`Event::is_live`]).
    pub fn live_mut(&mut self) -> (Bufs<'_>, impl Iterator<Item = &mut Event>) {
        let (bufs, events) = self.parts_mut();
        (bufs, events.iter_mut().filter(|e| e.is_live()))
    }

    /// Replaces the arena (e.g. with bytes a framer wrote) and returns the old one.
    pub fn swap_arena(&mut self, arena: Vec<u8>) -> Vec<u8> {
        std::mem::replace(&mut self.arena, arena)
    }

    /// The chunk, the event list and the spare field lists, for the line splitter that
    /// fills a new batch (see [`new_event`]).
    pub(crate) fn chunk_and_events(&mut self) -> (&[u8], &mut Vec<Event>, &mut Vec<FieldList>) {
        (&self.chunk, &mut self.events, &mut self.spare_fields)
    }

    /// Number of events, dropped ones included until [`Batch::compact`].
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Removes dropped events, keeping order. Called once per batch, after the pipeline.
    pub fn compact(&mut self) {
        let spare = &mut self.spare_fields;
        self.events.retain_mut(|e| {
            if e.is_dropped() {
                keep_field_list(spare, &mut e.fields);
                return false;
            }
            true
        });
    }

    /// Empties the event list, keeping the heap field lists for reuse.
    fn recycle_events(&mut self) {
        // In place: moving each event out (`drain`) cost a tenth of the line splitter.
        for e in &mut self.events {
            keep_field_list(&mut self.spare_fields, &mut e.fields);
        }
        self.events.clear();
    }

    /// A new event over `raw` (see [`Event::from_line`]), reusing a spare field list.
    pub fn new_event(&mut self, raw: Span) -> Event {
        new_event(&mut self.spare_fields, raw)
    }

    /// Sum of the raw lengths of the live events.
    pub fn live_bytes(&self) -> u64 {
        self.live().map(|e| e.raw.len() as u64).sum()
    }

    /// Empties the batch for new bytes, keeping the event and arena allocations, and
    /// returns the old chunk (e.g. for a [`BufferPool`](crate::pool::BufferPool)).
    pub fn reset(&mut self, chunk: Vec<u8>, origin: Origin) -> Vec<u8> {
        self.arena.clear();
        self.recycle_events();
        self.origin = origin;
        std::mem::replace(&mut self.chunk, chunk)
    }

    /// Makes `into` a batch of this batch's event `i` alone, over copies of the chunk and
    /// the arena (so every span stays valid), keeping `into`'s allocations. For processing
    /// events one at a time on a rare path: it copies the chunk each time.
    pub fn copy_event_into(&self, i: usize, into: &mut Batch) {
        let mut chunk = std::mem::take(&mut into.chunk);
        chunk.clear();
        chunk.extend_from_slice(&self.chunk);
        into.reset(chunk, self.origin);
        into.arena.extend_from_slice(&self.arena);
        into.events.push(self.events[i].clone());
    }

    /// Gives the chunk's allocation back (e.g. to a reader's buffer pool).
    pub fn into_chunk(self) -> Vec<u8> {
        self.chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_from_the_data_cannot_grow_the_key_table_without_bound() {
        let keys = KeyTable::new();
        let mib = |c: char| c.to_string().repeat(1 << 20);
        for c in ['a', 'b', 'c'] {
            assert!(keys.try_intern(&mib(c)).is_some());
        }
        assert!(keys.try_intern(&mib('d')).is_none(), "past MAX_NAME_BYTES");
        assert!(keys.try_intern(&mib('a')).is_some(), "known names still resolve");
        assert!(keys.try_intern("short").is_some(), "what still fits is taken");
    }

    #[test]
    fn fields_set_get_remove_rename() {
        let keys = KeyTable::new();
        let (a, b) = (keys.intern("a"), keys.intern("b"));
        let mut batch = Batch::new(b"hello world".to_vec(), Origin::default());
        let line = Span::new(Buf::Chunk, 0, 11);
        let mut ev = Event::from_line(line);
        let world = Span::new(Buf::Chunk, 6, 5);
        ev.set(a, Value::Str(world));
        ev.set(b, Value::Int(3));
        ev.set(a, Value::Bool(true));
        assert_eq!(ev.get(a), Some(Value::Bool(true)));
        assert!(ev.rename(a, b));
        assert_eq!(ev.get(b), Some(Value::Bool(true)));
        assert_eq!(ev.get(a), None);
        assert_eq!(ev.fields().len(), 2);
        assert_eq!(ev.remove(Key::MESSAGE), Some(Value::Str(line)));
        let s = batch.push_arena(b"new");
        assert_eq!(batch.bytes(s), b"new");
        assert_eq!(batch.bytes(world), b"world");
        batch.push(ev);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn compaction_keeps_order_and_skips_dropped() {
        let mut batch = Batch::new(b"abc".to_vec(), Origin::default());
        for i in 0..3 {
            batch.push(Event::from_line(Span::new(Buf::Chunk, i, 1)));
        }
        batch.parts_mut().1[1].mark_dropped();
        assert_eq!(batch.live().count(), 2);
        assert_eq!(batch.live_bytes(), 2);
        batch.compact();
        let left: Vec<&[u8]> = batch.events().iter().map(|e| batch.bytes(e.raw())).collect();
        assert_eq!(left, vec![&b"a"[..], b"c"]);
    }

    #[test]
    fn extend_fields_matches_set_one_by_one() {
        let keys = KeyTable::new();
        let k: Vec<Key> = (0..200).map(|i| keys.intern(&format!("k{i}"))).collect();
        let line = Span::new(Buf::Chunk, 0, 1);
        let (int, k) = (Value::Int, &k);
        // Repeats, a key past the bitmap, the message again; distinct new keys in both
        // bitmap words (the one-append path), and one of them already on the event.
        // (new fields, a key already on the event, the fields after)
        type Case<'a> = (&'a [(Key, Value)], Option<Key>, usize);
        let cases: [Case; 4] = [
            (
                &[
                    (k[1], int(1)),
                    (k[150], int(2)),
                    (k[1], int(3)),
                    (Key::MESSAGE, Value::Null),
                    (k[150], int(4)),
                ],
                None,
                3,
            ),
            (&[(k[70], int(1)), (k[2], int(2)), (k[120], int(3))], None, 4),
            (&[(k[70], int(1)), (k[2], int(2)), (k[120], int(3))], Some(k[70]), 4),
            (&[(k[3], int(1)), (k[199], int(2))], None, 3),
        ];
        for (new, existing, len) in cases {
            let mut a = Event::from_line(line);
            let mut b = Event::from_line(line);
            for e in [&mut a, &mut b] {
                if let Some(key) = existing {
                    e.set(key, Value::Bool(true));
                }
            }
            let new_fields: Vec<Field> = new.iter().map(|&(key, value)| Field { key, value }).collect();
            a.extend_fields(&new_fields);
            for &(key, value) in new {
                b.set(key, value);
            }
            assert_eq!(a.fields(), b.fields(), "{new:?} on {existing:?}");
            assert_eq!(a.fields().len(), len, "{new:?} on {existing:?}");
        }
    }

    #[test]
    fn the_table_is_bounded() {
        let keys = KeyTable::new();
        let mut n = keys.len();
        while keys.try_intern(&format!("f{n}")).is_some() {
            n += 1;
        }
        assert_eq!(keys.len(), KeyTable::MAX_KEYS);
        assert_eq!(
            keys.try_intern("message"),
            Some(Key::MESSAGE),
            "known names still resolve"
        );
    }

    #[test]
    fn interning_is_stable() {
        let keys = KeyTable::new();
        assert_eq!(keys.intern("message"), Key::MESSAGE);
        let x = keys.intern("x");
        assert_eq!(keys.intern("x"), x);
        assert_eq!(&*keys.name(x), "x");
        assert_eq!(keys.get("nope"), None);
    }
}
