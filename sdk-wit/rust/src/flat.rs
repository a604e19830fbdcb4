//! The packed form of the WIT types (`weir:plugin/types@0.2.0`): the records as they cross
//! the boundary ([`Batch`], [`Edits`], [`EmitLimits`]) and the fixed-size rows inside their
//! byte lists ([`EventRow`], [`FieldRow`], [`Op`], each [`Value`] a tag and 8 bytes), read
//! and written little-endian here and nowhere else. The guest bindings convert to and from
//! these records by moving the lists; the host (`weir-wasm`) uses the same rows.
//!
//! Nothing here interprets the data; [`BatchView`](crate::BatchView) reads a [`Batch`] and
//! [`Edits`](crate::Edits) writes an [`Edits`]. [`Batch::validate`] and
//! [`Edits::validate`] check every row once, so readers can index without further checks.

use std::fmt;

/// Bytes of one event row: raw span, field range, timestamp.
pub const EVENT_ROW: usize = 24;
/// Bytes of one field row: key id, value.
pub const FIELD_ROW: usize = 16;
/// Bytes of one op row: op, event, key, value.
pub const OP_ROW: usize = 24;
/// The timestamp of an event row whose time is unknown.
pub const NO_TIMESTAMP: i64 = i64::MIN;
/// The event of an `emit` op that places the new event after the batch's last one.
pub const AFTER_LAST: u32 = u32::MAX;

/// A range in a list: `len` items from index `start` (bytes, or field rows).
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

    #[inline]
    fn from_payload(payload: u64) -> Span {
        Span {
            start: payload as u32,
            len: (payload >> 32) as u32,
        }
    }

    #[inline]
    fn payload(self) -> u64 {
        u64::from(self.start) | (u64::from(self.len) << 32)
    }
}

/// A field value whose strings are spans of a byte list (`Batch::bytes` in a batch,
/// `Edits::bytes` in edits).
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

    /// The highest value tag (`json`).
    pub const LAST_TAG: u32 = 5;

    /// The value of a tag and its payload; `None` for an unknown tag.
    #[inline]
    pub fn decode(tag: u32, payload: u64) -> Option<Value> {
        Some(match tag {
            0 => Value::Null,
            1 => Value::Boolean(payload != 0),
            2 => Value::Int(payload as i64),
            3 => Value::Float(f64::from_bits(payload)),
            4 => Value::Str(Span::from_payload(payload)),
            5 => Value::Json(Span::from_payload(payload)),
            _ => return None,
        })
    }

    /// The tag and payload of the value.
    #[inline]
    pub fn encode(self) -> (u32, u64) {
        match self {
            Value::Null => (0, 0),
            Value::Boolean(b) => (1, u64::from(b)),
            Value::Int(i) => (2, i as u64),
            Value::Float(f) => (3, f.to_bits()),
            Value::Str(s) => (4, s.payload()),
            Value::Json(s) => (5, s.payload()),
        }
    }
}

#[inline]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// One event row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRow {
    /// The raw bytes, a span of [`Batch::bytes`].
    pub raw: Span,
    /// The event's fields: a range of field rows.
    pub fields: Span,
    /// Nanoseconds since the Unix epoch (UTC), when known.
    pub timestamp: Option<i64>,
}

impl EventRow {
    /// Row `i` of the event table `rows` (which holds it).
    #[inline]
    pub fn read(rows: &[u8], i: usize) -> EventRow {
        EventRow {
            raw: EventRow::raw_at(rows, i),
            fields: EventRow::fields_at(rows, i),
            timestamp: EventRow::timestamp_at(rows, i),
        }
    }

    /// The raw span of row `i` of the event table `rows`, decoding nothing else.
    #[inline]
    pub fn raw_at(rows: &[u8], i: usize) -> Span {
        let row = &rows[i * EVENT_ROW..][..EVENT_ROW];
        Span {
            start: u32_at(row, 0),
            len: u32_at(row, 4),
        }
    }

    /// The field range of row `i` of the event table `rows`, decoding nothing else.
    #[inline]
    pub fn fields_at(rows: &[u8], i: usize) -> Span {
        let row = &rows[i * EVENT_ROW..][..EVENT_ROW];
        Span {
            start: u32_at(row, 8),
            len: u32_at(row, 12),
        }
    }

    /// The timestamp of row `i` of the event table `rows`, decoding nothing else.
    #[inline]
    pub fn timestamp_at(rows: &[u8], i: usize) -> Option<i64> {
        let timestamp = u64_at(&rows[i * EVENT_ROW..][..EVENT_ROW], 16) as i64;
        (timestamp != NO_TIMESTAMP).then_some(timestamp)
    }

    /// Appends the row to `rows`.
    #[inline]
    pub fn write(&self, rows: &mut Vec<u8>) {
        let mut row = [0u8; EVENT_ROW];
        self.put(&mut row);
        rows.extend_from_slice(&row);
    }

    /// Writes the row into `row`, [`EVENT_ROW`] bytes (a slot of a table the writer sized
    /// first).
    #[inline]
    pub fn put(&self, row: &mut [u8]) {
        row[0..4].copy_from_slice(&self.raw.start.to_le_bytes());
        row[4..8].copy_from_slice(&self.raw.len.to_le_bytes());
        row[8..12].copy_from_slice(&self.fields.start.to_le_bytes());
        row[12..16].copy_from_slice(&self.fields.len.to_le_bytes());
        row[16..24].copy_from_slice(&self.timestamp.unwrap_or(NO_TIMESTAMP).to_le_bytes());
    }
}

/// One field row: a key id and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldRow {
    /// Index into the key table.
    pub key: u32,
    /// The value.
    pub value: Value,
}

impl FieldRow {
    /// The key id of row `i` of the field table `rows`, without decoding the value.
    #[inline]
    pub fn key_at(rows: &[u8], i: usize) -> u32 {
        u32_at(rows, i * FIELD_ROW)
    }

    /// Row `i` of the field table `rows`; `None` when its value's tag is unknown.
    #[inline]
    pub fn read(rows: &[u8], i: usize) -> Option<FieldRow> {
        let at = i * FIELD_ROW;
        let row = &rows[at..at + FIELD_ROW];
        Some(FieldRow {
            key: u32_at(row, 0),
            value: Value::decode(u32_at(row, 4), u64_at(row, 8))?,
        })
    }

    /// Appends the row to `rows`.
    #[inline]
    pub fn write(&self, rows: &mut Vec<u8>) {
        let (tag, payload) = self.value.encode();
        let mut row = [0u8; FIELD_ROW];
        FieldRow::put(&mut row, self.key, tag, payload);
        rows.extend_from_slice(&row);
    }

    /// Writes a row of key `key` and the value whose [`Value::encode`] is `tag` and
    /// `payload` into `row`, [`FIELD_ROW`] bytes (a slot of a table the writer sized
    /// first): for a writer that matches on its own value type once and encodes each arm
    /// (`Value::Str(span).encode()` folds to constants), instead of building a [`Value`]
    /// and matching it again.
    #[inline]
    pub fn put(row: &mut [u8], key: u32, tag: u32, payload: u64) {
        row[0..4].copy_from_slice(&key.to_le_bytes());
        row[4..8].copy_from_slice(&tag.to_le_bytes());
        row[8..16].copy_from_slice(&payload.to_le_bytes());
    }
}

/// What an op row does (see the WIT's `types` interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum OpKind {
    /// Drop the event.
    Drop = 0,
    /// Set a field.
    Set = 1,
    /// Remove a field.
    Remove = 2,
    /// Set (int) or clear (null) the timestamp.
    Timestamp = 3,
    /// Replace the raw bytes (string).
    Raw = 4,
    /// Send the event to the output the string names, only.
    Route = 5,
    /// Emit a new event after batch event `event`, with the string as raw bytes.
    Emit = 6,
    /// Emit a copy of batch event `event` right after it.
    EmitCopy = 7,
}

impl OpKind {
    /// The kind of a row's op number.
    pub fn from_u32(op: u32) -> Option<OpKind> {
        Some(match op {
            0 => OpKind::Drop,
            1 => OpKind::Set,
            2 => OpKind::Remove,
            3 => OpKind::Timestamp,
            4 => OpKind::Raw,
            5 => OpKind::Route,
            6 => OpKind::Emit,
            7 => OpKind::EmitCopy,
            _ => return None,
        })
    }

    /// Whether the op makes a new event.
    pub fn emits(self) -> bool {
        matches!(self, OpKind::Emit | OpKind::EmitCopy)
    }
}

/// One op row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Op {
    /// What it does.
    pub kind: OpKind,
    /// The event: a batch event, an emitted one (numbered after them), or for `emit` the
    /// event the new one follows ([`AFTER_LAST`]: the end).
    pub event: u32,
    /// Key id (`set`, `remove`): a batch key below `batch.keys.len()`, else a new key.
    pub key: u32,
    /// The value; its spans point into [`Edits::bytes`].
    pub value: Value,
}

impl Op {
    /// The integer of the value, for `timestamp` ops (`None` for `null`).
    pub fn value_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// Row `i` of the op table `rows`, or why it is malformed.
    pub fn read(rows: &[u8], i: usize) -> Result<Op, String> {
        let at = i * OP_ROW;
        let row = &rows[at..at + OP_ROW];
        let op = u32_at(row, 0);
        let kind = OpKind::from_u32(op).ok_or_else(|| format!("op {i}: unknown op {op}"))?;
        let tag = u32_at(row, 12);
        let value = Value::decode(tag, u64_at(row, 16)).ok_or_else(|| format!("op {i}: unknown value tag {tag}"))?;
        Ok(Op {
            kind,
            event: u32_at(row, 4),
            key: u32_at(row, 8),
            value,
        })
    }

    /// Appends the row to `rows`.
    #[inline]
    pub fn write(&self, rows: &mut Vec<u8>) {
        let (tag, payload) = self.value.encode();
        let mut row = [0u8; OP_ROW];
        row[0..4].copy_from_slice(&(self.kind as u32).to_le_bytes());
        row[4..8].copy_from_slice(&self.event.to_le_bytes());
        row[8..12].copy_from_slice(&self.key.to_le_bytes());
        row[12..16].copy_from_slice(&tag.to_le_bytes());
        row[16..24].copy_from_slice(&payload.to_le_bytes());
        rows.extend_from_slice(&row);
    }
}

/// WIT `emit-limits`: what one call may emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmitLimits {
    /// Most events emitted in one call.
    pub events: u32,
    /// Most bytes in [`Edits::bytes`].
    pub bytes: u32,
}

impl Default for EmitLimits {
    /// The host's defaults: 65,536 events and 16 MiB per call.
    fn default() -> EmitLimits {
        EmitLimits {
            events: 1 << 16,
            bytes: 16 << 20,
        }
    }
}

/// WIT `batch`: what the host sends on each `process` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The bytes the events refer to.
    pub bytes: Vec<u8>,
    /// More bytes the events refer to: spans from `bytes.len()` on point here.
    pub extra: Vec<u8>,
    /// Field names by id, local to this batch.
    pub keys: Vec<String>,
    /// The event rows ([`EVENT_ROW`] bytes each), in order.
    pub events: Vec<u8>,
    /// The field rows ([`FIELD_ROW`] bytes each) of every event, event after event.
    pub fields: Vec<u8>,
    /// What the call may emit.
    pub limits: EmitLimits,
}

impl Batch {
    /// Number of events.
    pub fn event_count(&self) -> usize {
        self.events.len() / EVENT_ROW
    }

    /// Number of field rows.
    pub fn field_count(&self) -> usize {
        self.fields.len() / FIELD_ROW
    }

    /// Checks the tables' sizes and every span, key id and value tag, so that readers can
    /// index without panicking.
    ///
    /// A well-formed batch (every batch a host sends) is accepted by one pass over the rows
    /// that decodes nothing and never branches on the data ([`Batch::rows_well_formed`]);
    /// only a batch that fails it is walked again, event by event, for the first problem
    /// to report. The guest runs this once per call, over every field row: it was a fifth
    /// of a Wasm filter's time when it decoded each row.
    pub fn validate(&self) -> Result<(), FormatError> {
        self.whole_rows()?;
        if self.rows_well_formed() {
            return Ok(());
        }
        self.first_problem()
    }

    /// Checks that the event and field tables are whole rows (what
    /// [`BatchView::new`](crate::BatchView::new) checks; the rows are checked as read).
    pub fn whole_rows(&self) -> Result<(), FormatError> {
        if !self.events.len().is_multiple_of(EVENT_ROW) || !self.fields.len().is_multiple_of(FIELD_ROW) {
            return Err(FormatError::new(format!(
                "the event table ({} bytes) or the field table ({} bytes) is not whole rows",
                self.events.len(),
                self.fields.len()
            )));
        }
        Ok(())
    }

    /// Whether every field row (referred to by an event or not) has a known tag, a key id
    /// in the key table and a span within the bytes, and every event row a raw span within
    /// the bytes and a field range within the field table. Stricter than
    /// [`Batch::first_problem`], which looks only at the rows events refer to: a `false`
    /// here sends the batch there.
    fn rows_well_formed(&self) -> bool {
        let bytes = self.bytes.len() as u64;
        let total = bytes + self.extra.len() as u64;
        // A span lies in `bytes`, or wholly in `extra` (see `resolve`).
        let span_ok = |start: u64, len: u64| {
            let end = start + len;
            (end <= total) & ((end <= bytes) | (start >= bytes))
        };
        let keys = self.keys.len() as u64;
        let mut ok = true;
        for row in self.fields.chunks_exact(FIELD_ROW) {
            let key = u64::from(u32_at(row, 0));
            let tag = u32_at(row, 4);
            let payload = u64_at(row, 8);
            let is_span = tag.wrapping_sub(4) < 2;
            ok &= (key < keys) & (tag <= Value::LAST_TAG) & (!is_span | span_ok(payload & 0xffff_ffff, payload >> 32));
        }
        let fields = self.field_count() as u64;
        for row in self.events.chunks_exact(EVENT_ROW) {
            let raw_ok = span_ok(u64::from(u32_at(row, 0)), u64::from(u32_at(row, 4)));
            ok &= raw_ok & (u64::from(u32_at(row, 8)) + u64::from(u32_at(row, 12)) <= fields);
        }
        ok
    }

    /// The first malformed row an event refers to, as an error; `Ok` when there is none.
    fn first_problem(&self) -> Result<(), FormatError> {
        let fields = self.field_count();
        for i in 0..self.event_count() {
            let event = EventRow::read(&self.events, i);
            if self.resolve(event.raw).is_none() {
                return Err(FormatError::new(format!(
                    "event {i}: raw span {:?} out of the bytes",
                    event.raw
                )));
            }
            let Some(range) = event.fields.range(fields) else {
                return Err(FormatError::new(format!(
                    "event {i}: field range {:?} out of the fields",
                    event.fields
                )));
            };
            for f in range {
                let Some(field) = FieldRow::read(&self.fields, f) else {
                    return Err(FormatError::new(format!(
                        "event {i}: field {f} has an unknown value tag"
                    )));
                };
                if field.key as usize >= self.keys.len() {
                    return Err(FormatError::new(format!(
                        "event {i}: key id {} not in the key table",
                        field.key
                    )));
                }
                if let Some(span) = field.value.span()
                    && self.resolve(span).is_none()
                {
                    return Err(FormatError::new(format!(
                        "event {i}: value span {span:?} out of the bytes (or across bytes and extra)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The bytes of `span`: in `bytes`, or in `extra` from `bytes.len()` on; `None` when it
    /// lies outside both or across the two.
    #[inline]
    pub fn resolve(&self, span: Span) -> Option<&[u8]> {
        resolve(&self.bytes, &self.extra, span)
    }
}

/// The bytes of `span` in `bytes` followed by `extra` (see [`Batch::resolve`]).
#[inline]
pub fn resolve<'a>(bytes: &'a [u8], extra: &'a [u8], span: Span) -> Option<&'a [u8]> {
    let start = span.start as usize;
    let end = start.checked_add(span.len as usize)?;
    if end <= bytes.len() {
        Some(&bytes[start..end])
    } else if start >= bytes.len() {
        extra.get(start - bytes.len()..end - bytes.len())
    } else {
        None
    }
}

/// WIT `edits`: what a plugin returns for a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edits {
    /// The bytes of every string and JSON value of the ops.
    pub bytes: Vec<u8>,
    /// Names of the keys the plugin introduces: id `batch.keys.len() + i` is `new_keys[i]`.
    pub new_keys: Vec<String>,
    /// The op rows ([`OP_ROW`] bytes each), applied in order.
    pub ops: Vec<u8>,
    /// Emits refused because of the batch's [`EmitLimits`].
    pub refused: u32,
}

impl Edits {
    /// Number of op rows.
    pub fn op_count(&self) -> usize {
        self.ops.len() / OP_ROW
    }

    /// The events these edits drop, when they are nothing but drops of batch events (what
    /// a filter returns): no value bytes, no new keys, and every op a `drop` whose row
    /// [`Edits::validate`] would accept. Checked in one pass over the rows that decodes
    /// nothing else, before the first index is given; `None` for anything else, which
    /// goes through [`Edits::validate`].
    pub fn only_drops(&self, events: usize) -> Option<impl ExactSizeIterator<Item = usize> + '_> {
        if !self.bytes.is_empty() || !self.new_keys.is_empty() || !self.ops.len().is_multiple_of(OP_ROW) {
            return None;
        }
        let rows = self.ops.chunks_exact(OP_ROW);
        let all_drops = rows.clone().fold(true, |ok, row| {
            ok & (u32_at(row, 0) == OpKind::Drop as u32)
                & ((u32_at(row, 4) as usize) < events)
                & (u32_at(row, 12) <= Value::LAST_TAG)
        });
        all_drops.then(|| rows.map(|row| u32_at(row, 4) as usize))
    }

    /// The ops, decoded, after checking them against the batch they answer (`events`
    /// events, `keys` keys, `limits`): every op, event number, key id, byte span and the
    /// emit limits. A host calls this before applying edits from a plugin, which it does
    /// not trust; the JSON text of `json` values and route names are the host's to check.
    pub fn validate(&self, events: usize, keys: usize, limits: EmitLimits) -> Result<Vec<Op>, FormatError> {
        let err = |m: String| FormatError::new(m);
        if !self.ops.len().is_multiple_of(OP_ROW) {
            return Err(err(format!(
                "the op table ({} bytes) is not whole rows",
                self.ops.len()
            )));
        }
        if self.bytes.len() > limits.bytes as usize {
            return Err(err(format!(
                "{} bytes of values, over the limit of {} per call",
                self.bytes.len(),
                limits.bytes
            )));
        }
        let all_keys = keys + self.new_keys.len();
        let mut emitted = 0usize;
        let mut ops = Vec::with_capacity(self.op_count());
        for i in 0..self.op_count() {
            let op = Op::read(&self.ops, i).map_err(err)?;
            let target = op.event as usize;
            let ok_event = match op.kind {
                OpKind::Emit => op.event == AFTER_LAST || target < events,
                OpKind::EmitCopy => target < events,
                _ => target < events + emitted,
            };
            if !ok_event {
                return Err(err(format!(
                    "op {i}: event {} out of a batch of {events} events and {emitted} emitted ones",
                    op.event
                )));
            }
            if op.kind.emits() {
                emitted += 1;
                if emitted > limits.events as usize {
                    return Err(err(format!(
                        "op {i}: more than {} events emitted in one call",
                        limits.events
                    )));
                }
            }
            if matches!(op.kind, OpKind::Set | OpKind::Remove) && op.key as usize >= all_keys {
                return Err(err(format!("op {i}: key id {} out of {all_keys} keys", op.key)));
            }
            let value_ok = match op.kind {
                OpKind::Drop | OpKind::Remove | OpKind::EmitCopy | OpKind::Set => true,
                OpKind::Timestamp => matches!(op.value, Value::Null | Value::Int(_)),
                OpKind::Raw | OpKind::Route => matches!(op.value, Value::Str(_)),
                OpKind::Emit => matches!(op.value, Value::Null | Value::Str(_)),
            };
            if !value_ok {
                return Err(err(format!(
                    "op {i}: {:?} op cannot take the value {:?}",
                    op.kind, op.value
                )));
            }
            if !matches!(op.kind, OpKind::Drop | OpKind::Remove | OpKind::EmitCopy) {
                check_value(op.value, self.bytes.len()).map_err(|e| err(format!("op {i}: {e}")))?;
            }
            ops.push(op);
        }
        Ok(ops)
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
    pub(crate) fn new(message: String) -> FormatError {
        FormatError { message }
    }

    /// What is wrong, naming the event or op.
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
