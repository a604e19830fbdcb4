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

use weir_core::model::{Batch, Buf, Key, KeyTable, Span, Value};
use weir_core::pipeline::Processor;

use crate::bindings::weir::plugin::types;
use crate::config::OnError;
use crate::plugin::{Compiled, Failure, FailureKind, Instance, describe};

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
    /// Failed batches, by [`FailureKind`] (in the order of [`FailureKind::ALL`]).
    pub failures: [AtomicU64; FailureKind::ALL.len()],
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
    events: Vec<types::Event>,
    fields: Vec<types::Field>,
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
    pub fn new(plugin: Arc<Compiled>, keys: Arc<KeyTable>, only: Option<Vec<Key>>) -> Result<WasmProcessor, String> {
        let instance = plugin.instantiate().map_err(|f| match f {
            Failure::Init(e) => format!("plugin {} rejected its config: {}", plugin.name(), describe(&e)),
            Failure::Trap(_, m) => format!("plugin {} failed to start: {m}", plugin.name()),
            Failure::Plugin(e) => format!("plugin {} failed to start: {}", plugin.name(), describe(&e)),
        })?;
        plugin.stats.instances.fetch_add(1, Ordering::Relaxed);
        let error_key = keys.intern("_error");
        Ok(WasmProcessor {
            plugin,
            instance: Some(instance),
            host: Host::new(keys, only),
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
    fn new(keys: Arc<KeyTable>, only: Option<Vec<Key>>) -> Host {
        Host {
            keys,
            flat: Flat::default(),
            local_of: Vec::new(),
            core_of: Vec::new(),
            live: Vec::new(),
            fields_of: Vec::new(),
            work: Vec::new(),
            new_keys: Vec::new(),
            sent: only.map(|keys| {
                let mut sent = vec![false; keys.iter().map(|k| k.index() + 1).max().unwrap_or(0)];
                for k in keys {
                    sent[k.index()] = true;
                }
                sent
            }),
        }
    }

    /// Fills `self.flat` with the live events of `batch`.
    fn flatten(&mut self, batch: &Batch) {
        let flat = &mut self.flat;
        flat.extra.clear();
        flat.events.clear();
        flat.fields.clear();
        self.live.clear();
        self.fields_of.clear();
        if flat.keys.len() > MAX_LOCAL_KEYS {
            flat.keys.clear();
            self.core_of.clear();
            self.local_of.iter_mut().for_each(|l| *l = NONE);
        }
        let chunk_len = batch.chunk().len();
        for (i, event) in batch.events().iter().enumerate() {
            if !event.is_live() {
                continue;
            }
            let fields_start = flat.fields.len();
            for field in event.fields() {
                let idx = field.key.index();
                if let Some(sent) = &self.sent
                    && !sent.get(idx).copied().unwrap_or(false)
                {
                    continue;
                }
                if idx >= self.local_of.len() {
                    self.local_of.resize(idx + 1, NONE);
                }
                if self.local_of[idx] == NONE {
                    self.local_of[idx] = flat.keys.len() as u32;
                    flat.keys.push(self.keys.name(field.key).to_string());
                    self.core_of.push(field.key);
                }
                let value = match field.value {
                    Value::Null => types::Value::Null,
                    Value::Bool(b) => types::Value::Boolean(b),
                    Value::Int(n) => types::Value::Int(n),
                    Value::Float(x) => types::Value::Float(x),
                    Value::Str(s) => types::Value::Str(flat_span(batch, s, chunk_len, &mut flat.extra)),
                    Value::Json(s) => types::Value::Json(flat_span(batch, s, chunk_len, &mut flat.extra)),
                };
                flat.fields.push(types::Field {
                    key: self.local_of[idx],
                    value,
                });
            }
            flat.events.push(types::Event {
                raw: flat_span(batch, event.raw(), chunk_len, &mut flat.extra),
                timestamp: event.timestamp,
                fields: types::Span {
                    start: fields_start as u32,
                    len: (flat.fields.len() - fields_start) as u32,
                },
            });
            self.live.push(i as u32);
            self.fields_of.push(event.fields().len() as u32);
        }
    }
}

impl WasmProcessor {
    /// Calls the plugin on the flat batch (whose bytes are `chunk`, then the arena values),
    /// retrying `retryable` errors.
    fn call(&mut self, chunk: &[u8]) -> Result<types::Edits, Failure> {
        let plugin = &self.plugin;
        let flat = &mut self.host.flat;
        let bytes: &[u8] = if flat.extra.is_empty() {
            chunk
        } else {
            flat.joined.clear();
            flat.joined.extend_from_slice(chunk);
            flat.joined.extend_from_slice(&flat.extra);
            &flat.joined
        };
        let keys: Vec<&str> = flat.keys.iter().map(String::as_str).collect();
        let mut retries = 0;
        loop {
            if self.instance.is_none() {
                let instance = plugin.instantiate()?;
                plugin.stats.instances.fetch_add(1, Ordering::Relaxed);
                self.instance = Some(instance);
            }
            let instance = self.instance.as_mut().expect("made above");
            plugin.stats.calls.fetch_add(1, Ordering::Relaxed);
            let batch = types::Batch {
                bytes,
                keys: &keys,
                events: &flat.events,
                fields: &flat.fields,
            };
            match instance.process(&plugin.limits, batch) {
                Err(Failure::Plugin(types::Error::Retryable(_))) if retries < plugin.retries => {
                    retries += 1;
                    plugin.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }
}

impl Host {
    /// Checks `edits` against the flat batch, and interns their new keys into
    /// `self.new_keys`. Nothing is applied unless everything is valid.
    fn check(&mut self, edits: &types::Edits) -> Result<(), String> {
        let events = self.flat.events.len();
        let keys = self.flat.keys.len();
        let all_keys = keys + edits.new_keys.len();
        let bytes = edits.bytes.len();
        let span_ok = |s: &types::Span| {
            (s.start as usize)
                .checked_add(s.len as usize)
                .is_some_and(|end| end <= bytes)
        };
        for (i, edit) in edits.edits.iter().enumerate() {
            let (event, key, value) = match edit {
                types::Edit::Drop(e) => (*e, None, None),
                types::Edit::Set(s) => (s.event, Some(s.key), Some(&s.value)),
                types::Edit::Remove(r) => (r.event, Some(r.key), None),
                types::Edit::Timestamp(t) => (t.event, None, None),
            };
            if event as usize >= events {
                return Err(format!("edit {i}: event {event} out of a batch of {events}"));
            }
            if let Some(key) = key
                && key as usize >= all_keys
            {
                return Err(format!("edit {i}: key id {key} out of {all_keys} keys"));
            }
            if let Some(types::Value::Str(s) | types::Value::Json(s)) = value
                && !span_ok(s)
            {
                return Err(format!(
                    "edit {i}: value span {}+{} out of {bytes} bytes",
                    s.start, s.len
                ));
            }
            if let Some(types::Value::Json(s)) = value
                && let Err(why) = check_json(&edits.bytes[s.start as usize..][..s.len as usize])
            {
                return Err(format!("edit {i}: the json value {why}"));
            }
        }
        let steps = self.apply_steps(edits);
        if steps > MAX_APPLY_STEPS {
            return Err(format!(
                "applying the {} edits could take {steps} field look-ups, over the limit of \
                 {MAX_APPLY_STEPS}",
                edits.edits.len()
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
        Ok(())
    }

    /// An upper bound on the field look-ups [`Host::apply`] makes for `edits`,
    /// whose event indices are checked: a set or a remove scans its event's fields, and a
    /// set may add one.
    fn apply_steps(&mut self, edits: &types::Edits) -> u64 {
        let fields = &mut self.work;
        fields.clear();
        fields.extend(self.fields_of.iter().map(|&n| u64::from(n)));
        let mut steps = 0u64;
        for edit in &edits.edits {
            match edit {
                types::Edit::Set(s) => {
                    let n = &mut fields[s.event as usize];
                    steps = steps.saturating_add(*n);
                    *n += 1;
                }
                types::Edit::Remove(r) => steps = steps.saturating_add(fields[r.event as usize]),
                types::Edit::Drop(_) | types::Edit::Timestamp(_) => {}
            }
        }
        steps
    }

    /// Applies checked edits to `batch`.
    fn apply(&self, batch: &mut Batch, edits: &types::Edits) {
        let (mut bufs, events) = batch.parts_mut();
        let base = if edits.bytes.is_empty() {
            0
        } else {
            bufs.push(&edits.bytes).start()
        };
        let key_of = |id: u32| -> Key {
            let id = id as usize;
            match self.core_of.get(id) {
                Some(&k) => k,
                None => self.new_keys[id - self.core_of.len()],
            }
        };
        let arena = |s: &types::Span| Span::new(Buf::Arena, base + s.start as usize, s.len as usize);
        for edit in &edits.edits {
            match edit {
                types::Edit::Drop(e) => events[self.live[*e as usize] as usize].mark_dropped(),
                types::Edit::Set(s) => {
                    let event = &mut events[self.live[s.event as usize] as usize];
                    if event.is_dropped() {
                        continue;
                    }
                    let value = match &s.value {
                        types::Value::Null => Value::Null,
                        types::Value::Boolean(b) => Value::Bool(*b),
                        types::Value::Int(n) => Value::Int(*n),
                        types::Value::Float(x) => Value::Float(*x),
                        types::Value::Str(span) => Value::Str(arena(span)),
                        types::Value::Json(span) => Value::Json(arena(span)),
                    };
                    event.set(key_of(s.key), value);
                }
                types::Edit::Remove(r) => {
                    let event = &mut events[self.live[r.event as usize] as usize];
                    if !event.is_dropped() {
                        event.remove(key_of(r.key));
                    }
                }
                types::Edit::Timestamp(t) => {
                    let event = &mut events[self.live[t.event as usize] as usize];
                    if !event.is_dropped() {
                        event.timestamp = t.timestamp;
                    }
                }
            }
        }
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

/// The span in the flat bytes of `span`: chunk offsets are kept (the chunk comes first,
/// whole); arena bytes are appended to `extra`, which follows it.
fn flat_span(batch: &Batch, span: Span, chunk_len: usize, extra: &mut Vec<u8>) -> types::Span {
    match span.buf() {
        Buf::Chunk => types::Span {
            start: span.start() as u32,
            len: span.len() as u32,
        },
        Buf::Arena => {
            let start = chunk_len + extra.len();
            extra.extend_from_slice(batch.bytes(span));
            types::Span {
                start: start as u32,
                len: span.len() as u32,
            }
        }
    }
}

impl Processor for WasmProcessor {
    fn process(&mut self, batch: &mut Batch) {
        self.host.flatten(batch);
        if self.host.flat.events.is_empty() {
            return;
        }
        self.plugin
            .stats
            .events
            .fetch_add(self.host.flat.events.len() as u64, Ordering::Relaxed);
        let on_error = self.plugin.on_error;
        match self.call(batch.chunk()) {
            Ok(edits) => match self.host.check(&edits) {
                Ok(()) => self.host.apply(batch, &edits),
                Err(message) => {
                    self.instance = None;
                    self.fail(batch, FailureKind::BadEdits, &message, on_error);
                }
            },
            Err(Failure::Plugin(types::Error::DropBatch(m))) => {
                self.fail(batch, FailureKind::DropBatch, &m, OnError::Drop);
            }
            Err(Failure::Plugin(types::Error::Retryable(m))) => {
                let message = format!("{m} (after {} retries)", self.plugin.retries);
                self.fail(batch, FailureKind::Retryable, &message, on_error);
            }
            Err(Failure::Plugin(types::Error::Fatal(m))) => {
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
    Set { event: u32, key: u32, value: PlainValue },
    Remove { event: u32, key: u32 },
    Timestamp { event: u32, timestamp: Option<i64> },
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
        PlainValue::Null => types::Value::Null,
        PlainValue::Bool(b) => types::Value::Boolean(b),
        PlainValue::Int(n) => types::Value::Int(n),
        PlainValue::Float(x) => types::Value::Float(x),
        PlainValue::Str(start, len) => types::Value::Str(types::Span { start, len }),
        PlainValue::Json(start, len) => types::Value::Json(types::Span { start, len }),
    };
    let edits = types::Edits {
        bytes,
        new_keys,
        edits: edits
            .iter()
            .map(|e| match e {
                PlainEdit::Drop(event) => types::Edit::Drop(*event),
                PlainEdit::Set { event, key, value: v } => types::Edit::Set(types::SetField {
                    event: *event,
                    key: *key,
                    value: value(v),
                }),
                PlainEdit::Remove { event, key } => types::Edit::Remove(types::RemoveField {
                    event: *event,
                    key: *key,
                }),
                PlainEdit::Timestamp { event, timestamp } => types::Edit::Timestamp(types::SetTimestamp {
                    event: *event,
                    timestamp: *timestamp,
                }),
            })
            .collect(),
    };
    let mut host = Host::new(keys.clone(), only);
    host.flatten(batch);
    host.check(&edits)?;
    host.apply(batch, &edits);
    Ok(())
}
