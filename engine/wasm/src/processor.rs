//! The `wasm` processor: one worker's instance of a plugin, and the conversion between
//! Weir's batches and the flat form that crosses the boundary.
//!
//! Per batch: the live events are flattened into reused lists (keys get batch-local ids;
//! string values stay offsets into the chunk, which is lent to the call as the batch's
//! bytes without a copy; only arena values are copied, after it), the
//! plugin is called once, its edits are checked in full and only then applied (drops mark
//! events, new values are copied into the batch arena in one piece). Nothing is allocated
//! per event on the host side once the buffers have grown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weir_core::model::{Batch, Buf, Event, Key, KeyTable, Span, Value};
use weir_core::pipeline::Processor;
use weir_sdk::flat::{self as rows, EmitLimits, EventRow, FieldRow, Op, OpKind};

use crate::bindings::weir::plugin0_2_0::types;
use crate::bindings_v1::weir::plugin0_1_0::types as v1;
use crate::config::OnError;
use crate::plugin::{Compiled, Failure, FailureKind, Instance, PluginError, describe};
use crate::swap::Current;

/// Counters of one plugin, shared by every worker running it.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls to `process` (retries included).
    pub calls: AtomicU64,
    /// Events sent to the plugin (once per batch, not per retry).
    pub events: AtomicU64,
    /// Instances created (the first per worker, then one after each fatal failure).
    pub instances: AtomicU64,
    /// Retries after a `retryable` error.
    pub retries: AtomicU64,
    /// Calls to `flush`.
    pub flushes: AtomicU64,
    /// Fuel used by the calls, when fuel is on.
    pub fuel_used: AtomicU64,
    /// New versions of the plugin file picked up while running.
    pub reloads: AtomicU64,
    /// New versions of the plugin file that could not run (the previous one went on).
    pub reload_failures: AtomicU64,
    /// Failed batches, by [`FailureKind`] (in the order of [`FailureKind::ALL`]).
    pub failures: [AtomicU64; FailureKind::ALL.len()],
    /// Events the plugin emitted (0.2).
    pub emitted: AtomicU64,
    /// Emits the plugin reported refused because of the per-call limits (0.2): lost events.
    pub emits_refused: AtomicU64,
}

impl PluginStats {
    /// Failed batches of `kind` so far.
    pub fn failures_of(&self, kind: FailureKind) -> u64 {
        self.failures[kind as usize].load(Ordering::Relaxed)
    }
}

/// Key ids sent to a plugin stay stable from batch to batch until the table passes this
/// size; then it starts again from the keys of the batch at hand.
const MAX_LOCAL_KEYS: usize = 1024;

/// Longest field name a plugin may introduce, in bytes. New names stay in the pipeline's key
/// table for good; this keeps the table within its few MiB.
pub const MAX_KEY_BYTES: usize = 256;

/// Deepest nesting of a `json` value a plugin sets. Outputs copy the value as it is, inside
/// the event's object: with one level more, the line stays within the 127 levels that
/// serde_json (and Weir's own `parse_json`) read back.
pub const MAX_JSON_DEPTH: usize = 126;

/// Most field look-ups applying the edits of one call may take, counted from above: a set
/// or a remove scans its event's fields, and each set may add one. Plugins that set a few
/// fields per event need a few look-ups per edit; this much takes about 0.2 s of one core.
/// Without it, a plugin within its memory cap could return millions of sets on an event
/// with thousands of fields and hold the worker for seconds after its own deadline.
pub const MAX_APPLY_STEPS: u64 = 1 << 28;

/// A Wasm plugin as a [`Processor`]: one instance per worker, reused across batches and
/// re-created after a failure that leaves it unusable.
pub struct WasmProcessor {
    plugin: Arc<Compiled>,
    /// The version every worker should run (a replaced file is picked up there), and the
    /// generation of `plugin`.
    current: Arc<Current>,
    generation: u64,
    instance: Option<Instance>,
    host: Host,
    error_key: Key,
    failures: u64,
}

/// The host's side of a call, apart from the plugin: the batch in flat form, the maps
/// between its ids and the pipeline's, and the check and application of edits.
struct Host {
    keys: Arc<KeyTable>,
    /// The flat batch, refilled for every call.
    flat: Flat,
    /// Pipeline key index -> batch-local id (`NONE` when not in `flat.keys`).
    local_of: Vec<u32>,
    /// Batch-local id -> pipeline key.
    core_of: Vec<Key>,
    /// Flat event index -> index in the batch.
    live: Vec<u32>,
    /// Flat event index -> the number of fields of the event (sent or not).
    fields_of: Vec<u32>,
    /// Scratch for [`Host::apply_steps`].
    work: Vec<u64>,
    /// Pipeline keys of the plugin's new keys, for the edits at hand.
    new_keys: Vec<Key>,
    /// When only some fields cross: `sent[key index]` says whether that one does.
    sent: Option<Vec<bool>>,
    /// How many keys `sent` holds: an event's fields are looked at until that many crossed.
    sent_keys: usize,
    /// What one call may emit.
    limits: EmitLimits,
    /// Events made by the ops at hand, with the batch event each follows.
    emitted: Vec<(usize, Event)>,
    /// The outputs `route` ops may name, with their route numbers.
    routes: Vec<(String, u16)>,
}

const NONE: u32 = u32::MAX;

/// The flat batch's lists, kept from call to call.
#[derive(Default)]
struct Flat {
    /// Arena bytes the events refer to; in the flat bytes they follow the chunk.
    extra: Vec<u8>,
    /// The chunk and `extra` joined, when `extra` is not empty.
    joined: Vec<u8>,
    keys: Vec<String>,
    /// Event rows ([`rows::EVENT_ROW`] bytes each).
    events: Vec<u8>,
    /// Field rows ([`rows::FIELD_ROW`] bytes each).
    fields: Vec<u8>,
    /// For a 0.1 plugin, the same events and fields as records.
    v1_events: Vec<v1::Event>,
    v1_fields: Vec<v1::Field>,
}

impl std::fmt::Debug for WasmProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmProcessor")
            .field("plugin", &self.plugin.name())
            .finish_non_exhaustive()
    }
}

impl WasmProcessor {
    /// A processor running `plugin`, with a first instance made and initialized now (so a
    /// configuration the plugin rejects is reported when the pipeline is built). With
    /// `only`, just those fields are sent to the plugin.
    pub(crate) fn new(
        current: Arc<Current>,
        keys: Arc<KeyTable>,
        only: Option<Vec<Key>>,
        routes: Vec<(String, u16)>,
    ) -> Result<WasmProcessor, String> {
        let (plugin, generation) = current.get();
        let instance = plugin.instantiate().map_err(|f| match f {
            Failure::Init(e) => format!("plugin {} rejected its config: {}", plugin.name(), describe(&e)),
            Failure::Trap(_, m) => format!("plugin {} failed to start: {m}", plugin.name()),
            Failure::Plugin(e) => format!("plugin {} failed to start: {}", plugin.name(), describe(&e)),
        })?;
        plugin.stats.instances.fetch_add(1, Ordering::Relaxed);
        let error_key = keys.intern("_error");
        Ok(WasmProcessor {
            host: Host::new(keys, only, &plugin.limits, routes),
            plugin,
            current,
            generation,
            instance: Some(instance),
            error_key,
            failures: 0,
        })
    }

    /// The compiled plugin (name, limits, counters).
    pub fn plugin(&self) -> &Arc<Compiled> {
        &self.plugin
    }
}

impl Host {
    fn new(keys: Arc<KeyTable>, only: Option<Vec<Key>>, limits: &crate::Limits, routes: Vec<(String, u16)>) -> Host {
        let sent = only.map(|keys| {
            let mut sent = vec![false; keys.iter().map(|k| k.index() + 1).max().unwrap_or(0)];
            for k in keys {
                sent[k.index()] = true;
            }
            sent
        });
        Host {
            keys,
            flat: Flat::default(),
            local_of: Vec::new(),
            core_of: Vec::new(),
            live: Vec::new(),
            fields_of: Vec::new(),
            work: Vec::new(),
            new_keys: Vec::new(),
            limits: EmitLimits {
                events: limits.emit_events,
                bytes: limits.emit_bytes,
            },
            emitted: Vec::new(),
            routes,
            sent_keys: sent
                .as_ref()
                .map_or(usize::MAX, |sent| sent.iter().filter(|&&s| s).count()),
            sent,
        }
    }

    /// Fills `self.flat` with the live events of `batch`.
    ///
    /// The loop works on locals (the tables borrowed apart, rows written into slices sized
    /// first: the event table for every event, each event's field rows for all its
    /// fields): pushing each row onto a `Vec` made the compiler reload every length and
    /// capacity after each store, which might have changed them.
    fn flatten(&mut self, batch: &Batch) {
        let Host {
            keys,
            flat,
            local_of,
            core_of,
            live,
            fields_of,
            sent,
            sent_keys,
            ..
        } = self;
        let Flat {
            extra,
            keys: names,
            events: event_rows,
            fields: field_rows,
            ..
        } = flat;
        // The row tables and maps keep their length from the last batch and are cut to this
        // one's at the end: resizing them from empty zeroed every byte again on each call.
        extra.clear();
        if names.len() > MAX_LOCAL_KEYS {
            names.clear();
            core_of.clear();
            local_of.iter_mut().for_each(|l| *l = NONE);
        }
        let chunk_len = batch.chunk().len();
        // Sized for every event, cut to the live ones after; field rows grow as needed.
        let most = batch.events().len();
        event_rows.resize(most * rows::EVENT_ROW, 0);
        live.resize(most, 0);
        fields_of.resize(most, 0);
        let (mut fields, mut sent_events) = (0, 0);
        for (i, event) in batch.events().iter().enumerate() {
            if !event.is_live() {
                continue;
            }
            let fields_start = fields;
            let at = fields * rows::FIELD_ROW;
            let room = event.fields().len().min(*sent_keys);
            if field_rows.len() < at + room * rows::FIELD_ROW {
                field_rows.resize(at + room * rows::FIELD_ROW, 0);
            }
            let mut out = field_rows[at..].chunks_exact_mut(rows::FIELD_ROW);
            for field in event.fields() {
                let idx = field.key.index();
                if let Some(sent) = sent
                    && !sent.get(idx).copied().unwrap_or(false)
                {
                    continue;
                }
                let local = match local_of.get(idx) {
                    Some(&local) if local != NONE => local,
                    _ => new_local(keys, field.key, local_of, names, core_of),
                };
                // One dispatch on the value's kind (each arm's `encode` folds to constants):
                // building a `rows::Value` and encoding it matched twice, and those two
                // indirect jumps, mispredicted on mixed field types, were most of this loop.
                let (tag, payload) = match field.value {
                    Value::Str(s) => rows::Value::Str(flat_span(batch, s, chunk_len, extra)).encode(),
                    Value::Int(n) => rows::Value::Int(n).encode(),
                    Value::Float(x) => rows::Value::Float(x).encode(),
                    Value::Json(s) => rows::Value::Json(flat_span(batch, s, chunk_len, extra)).encode(),
                    Value::Bool(b) => rows::Value::Boolean(b).encode(),
                    Value::Null => rows::Value::Null.encode(),
                };
                FieldRow::put(out.next().expect("a row for each field"), local, tag, payload);
                fields += 1;
                // A key appears once per event: with every projected key sent, no more can.
                if fields - fields_start == *sent_keys {
                    break;
                }
            }
            EventRow {
                raw: flat_span(batch, event.raw(), chunk_len, extra),
                fields: rows::Span::new(fields_start, fields - fields_start),
                timestamp: event.timestamp,
            }
            .put(&mut event_rows[sent_events * rows::EVENT_ROW..][..rows::EVENT_ROW]);
            live[sent_events] = i as u32;
            fields_of[sent_events] = event.fields().len() as u32;
            sent_events += 1;
        }
        field_rows.truncate(fields * rows::FIELD_ROW);
        event_rows.truncate(sent_events * rows::EVENT_ROW);
        live.truncate(sent_events);
        fields_of.truncate(sent_events);
    }
}

/// The batch-local id of `key`, first seen in this batch: named in `names`, mapped both ways.
#[cold]
fn new_local(
    keys: &KeyTable,
    key: Key,
    local_of: &mut Vec<u32>,
    names: &mut Vec<String>,
    core_of: &mut Vec<Key>,
) -> u32 {
    let idx = key.index();
    if idx >= local_of.len() {
        local_of.resize(idx + 1, NONE);
    }
    let local = names.len() as u32;
    local_of[idx] = local;
    names.push(keys.name(key).to_string());
    core_of.push(key);
    local
}

impl WasmProcessor {
    /// Calls the plugin on the flat batch (whose bytes are `chunk`, then the arena values),
    /// retrying `retryable` errors. A 0.1 plugin's edits come back as op rows too.
    fn call(&mut self, chunk: &[u8]) -> Result<rows::Edits, Failure> {
        let plugin = &self.plugin;
        let flat = &mut self.host.flat;
        if plugin.is_v1() {
            flat.v1_records();
        }
        // 0.1 has one byte list: the chunk and the arena values joined (a copy of the
        // chunk); 0.2 sends them as two lists.
        let bytes: &[u8] = if flat.extra.is_empty() || !plugin.is_v1() {
            chunk
        } else {
            flat.joined.clear();
            flat.joined.extend_from_slice(chunk);
            flat.joined.extend_from_slice(&flat.extra);
            &flat.joined
        };
        let keys: Vec<&str> = flat.keys.iter().map(String::as_str).collect();
        let limits = self.host.limits;
        let mut retries = 0;
        loop {
            let instance = live_instance(&mut self.instance, plugin)?;
            plugin.stats.calls.fetch_add(1, Ordering::Relaxed);
            let answer = if plugin.is_v1() {
                let batch = v1::Batch {
                    bytes,
                    keys: &keys,
                    events: &flat.v1_events,
                    fields: &flat.v1_fields,
                };
                instance.process_v1(&plugin.limits, batch).map(v1_ops)
            } else {
                let batch = types::Batch {
                    bytes,
                    extra: &flat.extra,
                    keys: &keys,
                    events: &flat.events,
                    fields: &flat.fields,
                    limits: wit_limits(limits),
                };
                instance.process(&plugin.limits, batch).map(from_wit)
            };
            if let Some(fuel) = plugin.limits.fuel
                && let Ok(left) = instance.store.get_fuel()
            {
                plugin
                    .stats
                    .fuel_used
                    .fetch_add(fuel.saturating_sub(left), Ordering::Relaxed);
            }
            match answer {
                Err(Failure::Plugin(PluginError::Retryable(_))) if retries < plugin.retries => {
                    retries += 1;
                    plugin.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }
}

impl Flat {
    /// Fills the 0.1 records from the rows.
    fn v1_records(&mut self) {
        let span = |s: rows::Span| v1::Span {
            start: s.start,
            len: s.len,
        };
        self.v1_fields.clear();
        self.v1_fields.extend((0..self.fields.len() / rows::FIELD_ROW).map(|i| {
            let row = FieldRow::read(&self.fields, i).expect("the host writes known tags");
            let value = match row.value {
                rows::Value::Null => v1::Value::Null,
                rows::Value::Boolean(b) => v1::Value::Boolean(b),
                rows::Value::Int(n) => v1::Value::Int(n),
                rows::Value::Float(x) => v1::Value::Float(x),
                rows::Value::Str(s) => v1::Value::Str(span(s)),
                rows::Value::Json(s) => v1::Value::Json(span(s)),
            };
            v1::Field { key: row.key, value }
        }));
        self.v1_events.clear();
        self.v1_events.extend((0..self.events.len() / rows::EVENT_ROW).map(|i| {
            let row = EventRow::read(&self.events, i);
            v1::Event {
                raw: span(row.raw),
                timestamp: row.timestamp,
                fields: span(row.fields),
            }
        }));
    }
}

/// Appends one op row to `ops`.
fn write_op(ops: &mut Vec<u8>, kind: OpKind, event: u32, key: u32, value: rows::Value) {
    Op {
        kind,
        event,
        key,
        value,
    }
    .write(ops);
}

/// The worker's instance of `plugin`, made (and counted) if it has none.
fn live_instance<'i>(instance: &'i mut Option<Instance>, plugin: &Compiled) -> Result<&'i mut Instance, Failure> {
    if instance.is_none() {
        *instance = Some(plugin.instantiate()?);
        plugin.stats.instances.fetch_add(1, Ordering::Relaxed);
    }
    Ok(instance.as_mut().expect("made above"))
}

/// The emit limits as the WIT record.
fn wit_limits(limits: EmitLimits) -> types::EmitLimits {
    types::EmitLimits {
        events: limits.events,
        bytes: limits.bytes,
    }
}

/// A 0.2 plugin's edits as the SDK's record (the lists move, nothing is copied).
fn from_wit(e: types::Edits) -> rows::Edits {
    rows::Edits {
        bytes: e.bytes,
        new_keys: e.new_keys,
        ops: e.ops,
        refused: e.refused,
    }
}

/// A 0.1 plugin's edits as op rows (0.1's edits are a subset of 0.2's ops).
fn v1_ops(edits: v1::Edits) -> rows::Edits {
    let span = |s: &v1::Span| rows::Span {
        start: s.start,
        len: s.len,
    };
    let value = |v: &v1::Value| match v {
        v1::Value::Null => rows::Value::Null,
        v1::Value::Boolean(b) => rows::Value::Boolean(*b),
        v1::Value::Int(n) => rows::Value::Int(*n),
        v1::Value::Float(x) => rows::Value::Float(*x),
        v1::Value::Str(s) => rows::Value::Str(span(s)),
        v1::Value::Json(s) => rows::Value::Json(span(s)),
    };
    let mut ops = Vec::with_capacity(edits.edits.len() * rows::OP_ROW);
    for edit in &edits.edits {
        let (kind, event, key, value) = match edit {
            v1::Edit::Drop(e) => (OpKind::Drop, *e, 0, rows::Value::Null),
            v1::Edit::Set(s) => (OpKind::Set, s.event, s.key, value(&s.value)),
            v1::Edit::Remove(r) => (OpKind::Remove, r.event, r.key, rows::Value::Null),
            v1::Edit::Timestamp(t) => (
                OpKind::Timestamp,
                t.event,
                0,
                t.timestamp.map_or(rows::Value::Null, rows::Value::Int),
            ),
        };
        write_op(&mut ops, kind, event, key, value);
    }
    rows::Edits {
        bytes: edits.bytes,
        new_keys: edits.new_keys,
        ops,
        refused: 0,
    }
}

impl Host {
    /// Checks `edits` against the flat batch and applies them to `batch` (nothing is
    /// applied unless everything is valid); the number of events they emitted.
    fn check_and_apply(&mut self, batch: &mut Batch, edits: &rows::Edits) -> Result<u64, String> {
        // A filter's answer: drops only, checked and applied in two tight passes.
        if let Some(drops) = edits.only_drops(self.live.len()) {
            let events = batch.parts_mut().1;
            for at in drops {
                events[self.live[at] as usize].mark_dropped();
            }
            return Ok(0);
        }
        let ops = self.check(edits)?;
        self.apply(batch, edits, &ops);
        Ok(ops.iter().filter(|op| op.kind.emits()).count() as u64)
    }

    /// Checks `edits` against the flat batch and returns their ops, and interns their new
    /// keys into `self.new_keys`. Nothing is applied unless everything is valid.
    fn check(&mut self, edits: &rows::Edits) -> Result<Vec<Op>, String> {
        let events = self.live.len();
        let ops = edits
            .validate(events, self.flat.keys.len(), self.limits)
            .map_err(|e| e.message().to_string())?;
        for (i, op) in ops.iter().enumerate() {
            match (op.kind, op.value) {
                (OpKind::Route, rows::Value::Str(s)) => {
                    let name = &edits.bytes[s.start as usize..][..s.len as usize];
                    if route_of(&self.routes, name).is_none() {
                        let names: Vec<&str> = self.routes.iter().map(|(n, _)| n.as_str()).collect();
                        return Err(format!(
                            "op {i}: route to `{}`: the pipeline has no output of that name (the \
                             outputs a plugin can route to are the named ones but the dead-letter \
                             output: {})",
                            String::from_utf8_lossy(name),
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ));
                    }
                }
                (OpKind::Set, rows::Value::Json(s)) => {
                    if let Err(why) = check_json(&edits.bytes[s.start as usize..][..s.len as usize]) {
                        return Err(format!("op {i}: the json value {why}"));
                    }
                }
                _ => {}
            }
        }
        let steps = self.apply_steps(&ops);
        if steps > MAX_APPLY_STEPS {
            return Err(format!(
                "applying the {} ops could take {steps} field look-ups, over the limit of \
                 {MAX_APPLY_STEPS}",
                ops.len()
            ));
        }
        if let Some((n, name)) = edits.new_keys.iter().enumerate().find(|(_, k)| k.len() > MAX_KEY_BYTES) {
            return Err(format!(
                "new key {n} is {} bytes long, over the limit of {MAX_KEY_BYTES}: `{}...`",
                name.len(),
                name.chars().take(32).collect::<String>()
            ));
        }
        self.new_keys.clear();
        for name in &edits.new_keys {
            match self.keys.try_intern(name) {
                Some(k) => self.new_keys.push(k),
                None => {
                    return Err(format!(
                        "new key `{name}`: the pipeline's key table is full ({} names)",
                        KeyTable::MAX_KEYS
                    ));
                }
            }
        }
        Ok(ops)
    }

    /// An upper bound on the field look-ups [`Host::apply`] makes for `ops`, whose event
    /// numbers are checked: a set or a remove scans its event's fields, and a set may add
    /// one; an emitted copy starts with its source's fields.
    fn apply_steps(&mut self, ops: &[Op]) -> u64 {
        let fields = &mut self.work;
        fields.clear();
        fields.extend(self.fields_of.iter().map(|&n| u64::from(n)));
        let mut steps = 0u64;
        for op in ops {
            match op.kind {
                OpKind::Set => {
                    let n = &mut fields[op.event as usize];
                    steps = steps.saturating_add(*n);
                    *n += 1;
                }
                OpKind::Remove => steps = steps.saturating_add(fields[op.event as usize]),
                OpKind::Emit => fields.push(0),
                OpKind::EmitCopy => {
                    let n = fields[op.event as usize];
                    steps = steps.saturating_add(n);
                    fields.push(n);
                }
                OpKind::Drop | OpKind::Timestamp | OpKind::Raw | OpKind::Route => {}
            }
        }
        steps
    }

    /// Applies checked ops to `batch`: emitted events are placed after the event they
    /// follow, in the order they were emitted.
    fn apply(&mut self, batch: &mut Batch, edits: &rows::Edits, ops: &[Op]) {
        let (mut bufs, events) = batch.parts_mut();
        let base = if edits.bytes.is_empty() {
            0
        } else {
            bufs.push(&edits.bytes).start()
        };
        let (core_of, new_keys) = (&self.core_of, &self.new_keys);
        let key_of = |id: u32| -> Key {
            let id = id as usize;
            match core_of.get(id) {
                Some(&k) => k,
                None => new_keys[id - core_of.len()],
            }
        };
        let arena = |s: rows::Span| Span::new(Buf::Arena, base + s.start as usize, s.len as usize);
        let n = self.live.len();
        let emitted = &mut self.emitted;
        emitted.clear();
        for op in ops {
            let at = op.event as usize;
            match op.kind {
                OpKind::Emit => {
                    let raw = op.value.span().map_or(Span::new(Buf::Arena, base, 0), arena);
                    let after = if op.event == rows::AFTER_LAST {
                        usize::MAX
                    } else {
                        self.live[at] as usize
                    };
                    emitted.push((after, Event::bare(raw)));
                    continue;
                }
                OpKind::EmitCopy => {
                    let source = self.live[at] as usize;
                    emitted.push((source, events[source].live_copy()));
                    continue;
                }
                _ => {}
            }
            let event = if at < n {
                &mut events[self.live[at] as usize]
            } else {
                &mut emitted[at - n].1
            };
            if event.is_dropped() {
                continue;
            }
            match (op.kind, op.value) {
                (OpKind::Drop, _) => event.mark_dropped(),
                (OpKind::Set, value) => {
                    let value = match value {
                        rows::Value::Null => Value::Null,
                        rows::Value::Boolean(b) => Value::Bool(b),
                        rows::Value::Int(n) => Value::Int(n),
                        rows::Value::Float(x) => Value::Float(x),
                        rows::Value::Str(span) => Value::Str(arena(span)),
                        rows::Value::Json(span) => Value::Json(arena(span)),
                    };
                    event.set(key_of(op.key), value);
                }
                (OpKind::Remove, _) => {
                    event.remove(key_of(op.key));
                }
                (OpKind::Timestamp, _) => event.timestamp = op.value_int(),
                (OpKind::Raw, rows::Value::Str(span)) => event.set_raw(arena(span)),
                (OpKind::Route, rows::Value::Str(span)) => {
                    let name = &edits.bytes[span.start as usize..][..span.len as usize];
                    event.set_route(route_of(&self.routes, name).expect("checked"));
                }
                _ => unreachable!("checked: {op:?}"),
            }
        }
        batch.insert_events(emitted);
    }
}

impl WasmProcessor {
    /// Counts and logs a failed batch, then applies `policy` to its events.
    fn fail(&mut self, batch: &mut Batch, kind: FailureKind, message: &str, policy: OnError) {
        let plugin = &self.plugin;
        plugin.stats.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
        let events = self.host.live.len() as u64;
        self.failures += events;
        let policy_name = match policy {
            OnError::Pass => "pass",
            OnError::Drop => "drop",
            OnError::DeadLetter => "dead_letter",
        };
        if plugin.first_of(kind) {
            tracing::warn!(
                plugin = plugin.name(),
                kind = kind.name(),
                events,
                on_error = policy_name,
                "wasm plugin failed: {message} (the batch follows on_error; later failures of this kind are counted and logged at debug level)"
            );
        } else {
            tracing::debug!(
                plugin = plugin.name(),
                kind = kind.name(),
                events,
                "wasm plugin failed: {message}"
            );
        }
        match policy {
            OnError::Pass => {}
            OnError::Drop => {
                let events = batch.parts_mut().1;
                for &i in &self.host.live {
                    events[i as usize].mark_dropped();
                }
            }
            OnError::DeadLetter => {
                let reason = format!("wasm plugin {}: {}: {message}", plugin.name(), kind.name());
                let (mut bufs, events) = batch.parts_mut();
                let span = bufs.push(reason.as_bytes());
                for &i in &self.host.live {
                    let event = &mut events[i as usize];
                    event.set(self.error_key, Value::Str(span));
                    event.mark_dead_letter();
                }
            }
        }
    }
}

/// Checks that `text` is JSON text (RFC 8259) nested at most [`MAX_JSON_DEPTH`] deep;
/// else says why, to follow "the json value". Neither check recurses: serde_json skips a
/// value it is not asked to build with a loop, and the depth is counted in one pass.
fn check_json(text: &[u8]) -> Result<(), String> {
    let text =
        std::str::from_utf8(text).map_err(|e| format!("is not UTF-8 (byte {} of {})", e.valid_up_to(), text.len()))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| format!("is not JSON text: {e}"))?;
    // Valid JSON: brackets outside strings are structure.
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (at, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!("is nested deeper than {MAX_JSON_DEPTH} levels (byte {at})"));
                }
            }
            b']' | b'}' => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}

/// The route number of the output named `name`.
fn route_of(routes: &[(String, u16)], name: &[u8]) -> Option<u16> {
    routes.iter().find(|(n, _)| n.as_bytes() == name).map(|&(_, r)| r)
}

/// The span in the flat bytes of `span`: chunk offsets are kept (the chunk comes first,
/// whole); arena bytes are appended to `extra`, which follows it.
fn flat_span(batch: &Batch, span: Span, chunk_len: usize, extra: &mut Vec<u8>) -> rows::Span {
    match span.buf() {
        Buf::Chunk => rows::Span {
            start: span.start() as u32,
            len: span.len() as u32,
        },
        Buf::Arena => {
            let start = chunk_len + extra.len();
            extra.extend_from_slice(batch.bytes(span));
            rows::Span {
                start: start as u32,
                len: span.len() as u32,
            }
        }
    }
}

impl WasmProcessor {
    /// Between two batches: switches to the version the other workers run, if a new one
    /// was published (the file is looked at here, at most once per second overall).
    fn follow_file(&mut self) {
        self.current.check();
        if self.current.generation() != self.generation {
            (self.plugin, self.generation) = self.current.get();
            self.instance = None;
        }
    }
}

impl Processor for WasmProcessor {
    fn process(&mut self, batch: &mut Batch) {
        self.follow_file();
        self.host.flatten(batch);
        if self.host.live.is_empty() {
            return;
        }
        self.plugin
            .stats
            .events
            .fetch_add(self.host.live.len() as u64, Ordering::Relaxed);
        let on_error = self.plugin.on_error;
        match self.call(batch.chunk()) {
            Ok(edits) => {
                if let Err(message) = self.take_answer(batch, &edits) {
                    self.instance = None;
                    self.fail(batch, FailureKind::BadEdits, &message, on_error);
                }
            }
            Err(Failure::Plugin(PluginError::DropBatch(m))) => {
                self.fail(batch, FailureKind::DropBatch, &m, OnError::Drop);
            }
            Err(Failure::Plugin(PluginError::Retryable(m))) => {
                let message = format!("{m} (after {} retries)", self.plugin.retries);
                self.fail(batch, FailureKind::Retryable, &message, on_error);
            }
            Err(Failure::Plugin(PluginError::Fatal(m))) => {
                self.instance = None;
                self.fail(batch, FailureKind::Fatal, &m, on_error);
            }
            Err(Failure::Trap(kind, m)) => {
                self.instance = None;
                self.fail(batch, kind, &m, on_error);
            }
            Err(Failure::Init(e)) => {
                self.instance = None;
                let message = format!("a new instance failed to start: {}", describe(&e));
                self.fail(batch, FailureKind::Init, &message, on_error);
            }
        }
    }

    fn take_failures(&mut self) -> u64 {
        std::mem::take(&mut self.failures)
    }

    fn flush_interval(&self) -> Option<std::time::Duration> {
        self.plugin.flushes().then_some(self.plugin.limits.flush_interval)
    }

    fn flush(&mut self, batch: &mut Batch) {
        self.follow_file();
        self.host.flatten(batch);
        let plugin = self.plugin.clone();
        let instance = match live_instance(&mut self.instance, &plugin) {
            Ok(instance) => instance,
            Err(f) => return self.flush_failed(f),
        };
        plugin.stats.flushes.fetch_add(1, Ordering::Relaxed);
        let flat = &self.host.flat;
        let keys: Vec<&str> = flat.keys.iter().map(String::as_str).collect();
        let limits = self.host.limits;
        let empty = types::Batch {
            bytes: &[],
            extra: &[],
            keys: &keys,
            events: &[],
            fields: &[],
            limits: wit_limits(limits),
        };
        let edits = match instance.flush(&plugin.limits, empty) {
            Ok(Some(e)) => from_wit(e),
            Ok(None) => return,
            Err(f) => return self.flush_failed(f),
        };
        if let Err(message) = self.take_answer(batch, &edits) {
            self.instance = None;
            self.flush_failed(Failure::Trap(FailureKind::BadEdits, message));
        }
    }
}

impl WasmProcessor {
    /// Counts and logs a failed `flush` (there is no batch to apply `on_error` to: what the
    /// plugin held is lost with the instance when the failure discards it).
    fn flush_failed(&mut self, failure: Failure) {
        let plugin = &self.plugin;
        let (kind, message) = match failure {
            Failure::Trap(kind, m) => {
                self.instance = None;
                (kind, m)
            }
            Failure::Plugin(PluginError::Fatal(m)) => {
                self.instance = None;
                (FailureKind::Fatal, m)
            }
            Failure::Plugin(PluginError::Retryable(m)) => (FailureKind::Retryable, m),
            Failure::Plugin(PluginError::DropBatch(m)) => (FailureKind::DropBatch, m),
            Failure::Init(e) => {
                self.instance = None;
                (
                    FailureKind::Init,
                    format!("a new instance failed to start: {}", describe(&e)),
                )
            }
        };
        plugin.stats.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
        if plugin.first_of(kind) {
            tracing::warn!(
                plugin = plugin.name(),
                kind = kind.name(),
                "wasm plugin failed in flush: {message}"
            );
        } else {
            tracing::debug!(
                plugin = plugin.name(),
                kind = kind.name(),
                "wasm plugin failed in flush: {message}"
            );
        }
    }
}

impl WasmProcessor {
    /// Counts the emits the plugin refused, then checks its edits and applies them to
    /// `batch`, counting the events emitted; the check's reason when they do not pass
    /// (nothing applied).
    fn take_answer(&mut self, batch: &mut Batch, edits: &rows::Edits) -> Result<(), String> {
        if edits.refused > 0 {
            self.refused(edits.refused);
        }
        let emitted = self.host.check_and_apply(batch, edits)?;
        if emitted > 0 {
            self.plugin.stats.emitted.fetch_add(emitted, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Counts emits the plugin refused at the per-call limits (events lost), logging the
    /// first time.
    fn refused(&mut self, refused: u32) {
        let plugin = &self.plugin;
        plugin
            .stats
            .emits_refused
            .fetch_add(u64::from(refused), Ordering::Relaxed);
        plugin.stats.failures[FailureKind::EmitLimit as usize].fetch_add(1, Ordering::Relaxed);
        self.failures += u64::from(refused);
        if plugin.first_of(FailureKind::EmitLimit) {
            tracing::warn!(
                plugin = plugin.name(),
                refused,
                max_events = self.host.limits.events,
                max_bytes = self.host.limits.bytes,
                "wasm plugin emitted past the per-call limit: the events past it are lost and \
                 counted (weir_wasm_plugin_emits_refused_total); later ones are counted only"
            );
        }
    }
}

/// A value of a plugin's edit, in plain Rust types (the WIT bindings are private).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum PlainValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A span of the edits' bytes: start, length.
    Str(u32, u32),
    Json(u32, u32),
}

/// One edit of a plugin, in plain Rust types.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum PlainEdit {
    Drop(u32),
    Set {
        event: u32,
        key: u32,
        value: PlainValue,
    },
    Remove {
        event: u32,
        key: u32,
    },
    Timestamp {
        event: u32,
        timestamp: Option<i64>,
    },
    /// Replace the raw bytes with a span of the edits' bytes.
    Raw {
        event: u32,
        start: u32,
        len: u32,
    },
    /// Emit a new event after `after` (`u32::MAX`: the end) with raw bytes, if given.
    Emit {
        after: u32,
        raw: Option<(u32, u32)>,
    },
    /// Emit a copy of `event` after it.
    EmitCopy {
        event: u32,
    },
}

/// The host's check and application of a plugin's edits, without a plugin: `batch` is
/// flattened as for a call (only the fields in `only`, when given), the edits are checked
/// as a plugin's answer is, and applied when they pass; the check's reason otherwise (the
/// batch is then untouched). For the fuzz targets (`fuzz/`), which feed it arbitrary edits.
#[doc(hidden)]
pub fn check_and_apply_edits(
    keys: &Arc<KeyTable>,
    only: Option<Vec<Key>>,
    batch: &mut Batch,
    bytes: Vec<u8>,
    new_keys: Vec<String>,
    edits: &[PlainEdit],
) -> Result<(), String> {
    let value = |v: &PlainValue| match *v {
        PlainValue::Null => rows::Value::Null,
        PlainValue::Bool(b) => rows::Value::Boolean(b),
        PlainValue::Int(n) => rows::Value::Int(n),
        PlainValue::Float(x) => rows::Value::Float(x),
        PlainValue::Str(start, len) => rows::Value::Str(rows::Span { start, len }),
        PlainValue::Json(start, len) => rows::Value::Json(rows::Span { start, len }),
    };
    let mut ops = Vec::new();
    for edit in edits {
        let (kind, event, key, value) = match edit {
            PlainEdit::Drop(event) => (OpKind::Drop, *event, 0, rows::Value::Null),
            PlainEdit::Set { event, key, value: v } => (OpKind::Set, *event, *key, value(v)),
            PlainEdit::Remove { event, key } => (OpKind::Remove, *event, *key, rows::Value::Null),
            PlainEdit::Timestamp { event, timestamp } => (
                OpKind::Timestamp,
                *event,
                0,
                timestamp.map_or(rows::Value::Null, rows::Value::Int),
            ),
            PlainEdit::Raw { event, start, len } => (
                OpKind::Raw,
                *event,
                0,
                rows::Value::Str(rows::Span {
                    start: *start,
                    len: *len,
                }),
            ),
            PlainEdit::Emit { after, raw } => (
                OpKind::Emit,
                *after,
                0,
                raw.map_or(rows::Value::Null, |(start, len)| {
                    rows::Value::Str(rows::Span { start, len })
                }),
            ),
            PlainEdit::EmitCopy { event } => (OpKind::EmitCopy, *event, 0, rows::Value::Null),
        };
        write_op(&mut ops, kind, event, key, value);
    }
    let edits = rows::Edits {
        bytes,
        new_keys,
        ops,
        refused: 0,
    };
    let limits = crate::Limits {
        timeout: std::time::Duration::from_secs(1),
        memory: 64 << 20,
        fuel: None,
        emit_events: EmitLimits::default().events,
        emit_bytes: EmitLimits::default().bytes,
        flush_interval: std::time::Duration::from_secs(1),
    };
    let mut host = Host::new(keys.clone(), only, &limits, Vec::new());
    host.flatten(batch);
    host.check_and_apply(batch, &edits).map(drop)
}
