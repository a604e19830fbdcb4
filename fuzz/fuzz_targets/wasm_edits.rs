//! The Wasm host's check of a plugin's edits (`engine/wasm/src/processor.rs`), without a
//! plugin: arbitrary edits (events, key ids, spans out of range, new keys, drops followed
//! by sets, raw bytes replaced, events emitted and copied, ops on emitted events) against an
//! arbitrary batch are either refused as a whole, leaving the batch untouched, or applied
//! exactly as the WIT contract says (`sdk-wit/wit/types.wit`): never a panic. A model of
//! the contract predicts which, and the result.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::model::{Batch, Buf, Key, KeyTable, Origin, Span, Value};
use weir_wasm::{PlainEdit, PlainValue, check_and_apply_edits};

/// Mostly small indices, sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Idx {
    Small(u8),
    Any(u32),
}

impl Idx {
    fn get(self) -> u32 {
        match self {
            Idx::Small(i) => u32::from(i % 16),
            Idx::Any(i) => i,
        }
    }
}

/// An event number: one of the live batch events, one emitted by an earlier op (or the
/// next one, not emitted yet), or anything (mostly small, in range or not).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum EvIdx {
    Live(u8),
    Emitted(u8),
    Any(Idx),
}

impl EvIdx {
    fn get(self, live: usize, emitted: usize) -> u32 {
        match self {
            EvIdx::Live(i) if live > 0 => (usize::from(i) % live) as u32,
            EvIdx::Live(i) => u32::from(i),
            EvIdx::Emitted(k) => (live + usize::from(k) % (emitted + 1)) as u32,
            EvIdx::Any(i) => i.get(),
        }
    }
}

/// A key id: one of the batch's or the new keys, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum KeyIdx {
    In(u8),
    Any(Idx),
}

impl KeyIdx {
    fn get(self, keys: usize) -> u32 {
        match self {
            KeyIdx::In(k) if keys > 0 => (usize::from(k) % keys) as u32,
            KeyIdx::In(k) => u32::from(k),
            KeyIdx::Any(k) => k.get(),
        }
    }
}

/// A span of the edits' bytes: within them, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ASpan {
    In(u8, u8),
    Any(Idx, Idx),
}

impl ASpan {
    fn get(self, bytes: usize) -> (u32, u32) {
        match self {
            ASpan::In(s, l) => {
                let s = usize::from(s) % (bytes + 1);
                (s as u32, (usize::from(l) % (bytes - s + 1)) as u32)
            }
            ASpan::Any(s, l) => (s.get(), l.get()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(ASpan),
    Json(ASpan),
}

#[derive(Arbitrary, Debug)]
enum AEdit {
    Drop(EvIdx),
    Set(EvIdx, KeyIdx, AValue),
    Remove(EvIdx, KeyIdx),
    Timestamp(EvIdx, Option<i64>),
    Raw(EvIdx, ASpan),
    /// After this event (`None`: at the end), with these raw bytes (`None`: empty).
    Emit(Option<EvIdx>, Option<ASpan>),
    EmitCopy(EvIdx),
}

#[derive(Arbitrary, Debug)]
enum FV {
    Int(i64),
    Str(u8, u8),
    Arena(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Ev {
    fields: Vec<(u8, FV)>,
    /// 0: dropped before the call, 1: dead letter, else live.
    state: u8,
    timestamp: Option<i64>,
    /// Raw bytes in the arena; else a piece of the chunk.
    raw: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct Case {
    chunk: Vec<u8>,
    events: Vec<Ev>,
    /// Only these names cross (as `wasm`'s `fields:` option does).
    only: Option<Vec<u8>>,
    new_keys: Vec<String>,
    edits: Vec<AEdit>,
    bytes: Vec<u8>,
    /// Every event number, key id and span taken into range (the edits are then valid but
    /// for `json` text), so that long scripts are applied too, not only refused.
    fit: bool,
    /// The byte limit, now and then: see [`STRESS`].
    stress: u16,
}

/// `Case::stress` values from which the edits' bytes are padded to the per-call limit
/// (16 MiB), then to one byte past it. (The limit on emits, 65,536 per call, is left to
/// the host's own tests: an unoptimised build takes seconds over that many events.)
const STRESS: u16 = u16::MAX - 1;
const EMIT_LIMIT: usize = 1 << 16;
const BYTES_LIMIT: usize = 16 << 20;

const NAMES: [&str; 6] = ["message", "level", "user", "timestamp", "_error", "é"];

#[derive(Debug, Clone, PartialEq)]
enum M {
    Int(i64),
    Float(u64),
    Null,
    Bool(bool),
    Bytes(bool, Vec<u8>),
}

/// An event as the test sees it: dropped or not, dead letter or not, time, fields by name,
/// raw bytes.
type Model = (bool, bool, Option<i64>, Vec<(String, M)>, Vec<u8>);

fn model_of(batch: &Batch, keys: &KeyTable) -> Vec<Model> {
    batch
        .events()
        .iter()
        .map(|e| {
            let fields = e
                .fields()
                .iter()
                .map(|f| {
                    let v = match f.value {
                        Value::Null => M::Null,
                        Value::Bool(b) => M::Bool(b),
                        Value::Int(i) => M::Int(i),
                        Value::Float(x) => M::Float(x.to_bits()),
                        Value::Str(s) => M::Bytes(false, batch.bytes(s).to_vec()),
                        Value::Json(s) => M::Bytes(true, batch.bytes(s).to_vec()),
                    };
                    (keys.name(f.key).to_string(), v)
                })
                .collect();
            (
                e.is_dropped(),
                e.is_dead_letter(),
                e.timestamp,
                fields,
                batch.bytes(e.raw()).to_vec(),
            )
        })
        .collect()
}

fuzz_target!(|case: Case| {
    let keys = KeyTable::new();
    let mut batch = Batch::new(case.chunk.clone(), Origin::default());
    let n = case.chunk.len();
    for (i, ev) in case.events.iter().take(16).enumerate() {
        let raw = match &ev.raw {
            Some(bytes) => batch.push_arena(bytes),
            None => Span::new(Buf::Chunk, i % (n + 1), n - i % (n + 1)),
        };
        let mut event = batch.new_event(raw);
        event.timestamp = ev.timestamp;
        for (name, v) in ev.fields.iter().take(6) {
            let key = keys.intern(NAMES[*name as usize % NAMES.len()]);
            let value = match v {
                FV::Int(i) => Value::Int(*i),
                FV::Str(s, l) => {
                    let start = if n == 0 { 0 } else { usize::from(*s) % n };
                    let len = usize::from(*l) % (n - start + 1);
                    Value::Str(Span::new(Buf::Chunk, start, len))
                }
                FV::Arena(bytes) => Value::Str(batch.push_arena(bytes)),
            };
            event.set(key, value);
        }
        match ev.state % 4 {
            0 => event.mark_dropped(),
            1 => event.mark_dead_letter(),
            _ => {}
        }
        batch.push(event);
    }
    let only: Option<Vec<Key>> = case.only.as_ref().map(|o| {
        o.iter()
            .map(|i| keys.intern(NAMES[*i as usize % NAMES.len()]))
            .collect()
    });
    let live: Vec<usize> = (0..batch.len()).filter(|&i| batch.events()[i].is_live()).collect();
    // The batch's keys that cross, numbered by first use (as the host numbers them).
    let mut local: Vec<String> = Vec::new();
    for &i in &live {
        for f in batch.events()[i].fields() {
            if only.as_ref().is_some_and(|o| !o.contains(&f.key)) {
                continue;
            }
            let name = keys.name(f.key).to_string();
            if !local.contains(&name) {
                local.push(name);
            }
        }
    }
    let all_keys = local.len() + case.new_keys.len();
    let (n_bytes, mut emitted) = (case.bytes.len(), 0);
    let fit = |n: u32, range: usize| match range {
        0 => n,
        _ if case.fit => (n as usize % range) as u32,
        _ => n,
    };
    let fit_span = |(s, l): (u32, u32)| {
        if case.fit {
            let s = s as usize % (n_bytes + 1);
            (s as u32, (l as usize % (n_bytes - s + 1)) as u32)
        } else {
            (s, l)
        }
    };
    let edits: Vec<PlainEdit> = case
        .edits
        .iter()
        .take(64)
        .map(|e| {
            let ev = |ev: &EvIdx| fit(ev.get(live.len(), emitted), live.len() + emitted);
            // Emits follow, or copy, a batch event.
            let source = |ev: &EvIdx| fit(ev.get(live.len(), emitted), live.len());
            let edit = match e {
                AEdit::Drop(e) => PlainEdit::Drop(ev(e)),
                AEdit::Set(e, key, v) => PlainEdit::Set {
                    event: ev(e),
                    key: fit(key.get(all_keys), all_keys),
                    value: match v {
                        AValue::Null => PlainValue::Null,
                        AValue::Bool(b) => PlainValue::Bool(*b),
                        AValue::Int(i) => PlainValue::Int(*i),
                        AValue::Float(x) => PlainValue::Float(*x),
                        AValue::Str(s) => {
                            let (s, l) = fit_span(s.get(n_bytes));
                            PlainValue::Str(s, l)
                        }
                        AValue::Json(s) => {
                            let (s, l) = fit_span(s.get(n_bytes));
                            PlainValue::Json(s, l)
                        }
                    },
                },
                AEdit::Remove(e, key) => PlainEdit::Remove {
                    event: ev(e),
                    key: fit(key.get(all_keys), all_keys),
                },
                AEdit::Timestamp(e, ts) => PlainEdit::Timestamp {
                    event: ev(e),
                    timestamp: *ts,
                },
                AEdit::Raw(e, span) => {
                    let (start, len) = fit_span(span.get(n_bytes));
                    PlainEdit::Raw {
                        event: ev(e),
                        start,
                        len,
                    }
                }
                AEdit::Emit(after, raw) => PlainEdit::Emit {
                    after: after.as_ref().map_or(u32::MAX, source),
                    raw: raw.map(|s| fit_span(s.get(n_bytes))),
                },
                AEdit::EmitCopy(e) => PlainEdit::EmitCopy { event: source(e) },
            };
            if matches!(edit, PlainEdit::Emit { .. } | PlainEdit::EmitCopy { .. }) {
                emitted += 1;
            }
            edit
        })
        .collect();
    let mut bytes = case.bytes.clone();
    if let Some(over) = case.stress.checked_sub(STRESS) {
        // `vec!` of a byte is one memset, even unoptimised.
        let mut big = vec![b'x'; BYTES_LIMIT + usize::from(over)];
        big[..bytes.len()].copy_from_slice(&bytes);
        bytes = big;
    }

    // The contract, modelled: the live events in order, then the emitted ones in the order
    // of their emits; the batch keys that cross, then the new keys.
    let before = model_of(&batch, &keys);
    let span_ok = |s: u32, l: u32| (s as usize).checked_add(l as usize).is_some_and(|e| e <= bytes.len());
    let structural =
        bytes.len() <= BYTES_LIMIT && case.new_keys.iter().all(|k| k.len() <= weir_wasm::MAX_KEY_BYTES) && {
            // Ops name the batch's events and those emitted by earlier ops; emits follow
            // (or copy) a batch event only.
            let mut emitted = 0usize;
            edits.iter().all(|e| {
                let (ev, targets, key, span) = match *e {
                    PlainEdit::Drop(ev) => (ev, live.len() + emitted, None, None),
                    PlainEdit::Set { event, key, ref value } => (
                        event,
                        live.len() + emitted,
                        Some(key),
                        match *value {
                            PlainValue::Str(s, l) | PlainValue::Json(s, l) => Some((s, l)),
                            _ => None,
                        },
                    ),
                    PlainEdit::Remove { event, key } => (event, live.len() + emitted, Some(key), None),
                    PlainEdit::Timestamp { event, .. } => (event, live.len() + emitted, None, None),
                    PlainEdit::Raw { event, start, len } => (event, live.len() + emitted, None, Some((start, len))),
                    PlainEdit::Emit { after, raw } => {
                        emitted += 1;
                        (if after == u32::MAX { 0 } else { after }, live.len(), None, raw)
                    }
                    PlainEdit::EmitCopy { event } => {
                        emitted += 1;
                        (event, live.len(), None, None)
                    }
                };
                let in_range = if matches!(e, PlainEdit::Emit { after: u32::MAX, .. }) {
                    true
                } else {
                    (ev as usize) < targets
                };
                in_range
                    && emitted <= EMIT_LIMIT
                    && key.is_none_or(|k| (k as usize) < all_keys)
                    && span.is_none_or(|(s, l)| span_ok(s, l))
            })
        };
    // `json` values must be JSON nested at most MAX_JSON_DEPTH deep. serde_json is the
    // judge where it surely agrees (shallow text; for a refusal, UTF-8 without escapes or
    // numbers past f64); elsewhere either answer is accepted, and checked for what it did.
    let json_verdicts: Vec<Option<bool>> = edits
        .iter()
        .filter_map(|e| match *e {
            PlainEdit::Set {
                value: PlainValue::Json(s, l),
                ..
            } if span_ok(s, l) => {
                let b = &bytes[s as usize..(s + l) as usize];
                let shallow = b.iter().filter(|&&c| c == b'[' || c == b'{').count() < 100;
                match serde_json::from_slice::<serde_json::Value>(b) {
                    Ok(_) if shallow => Some(Some(true)),
                    Err(e)
                        if shallow
                            && std::str::from_utf8(b).is_ok()
                            && !b.contains(&b'\\')
                            && !e.to_string().contains("out of range") =>
                    {
                        Some(Some(false))
                    }
                    _ => Some(None),
                }
            }
            _ => None,
        })
        .collect();
    let valid = if !structural || json_verdicts.contains(&Some(false)) {
        Some(false)
    } else if json_verdicts.contains(&None) {
        None
    } else {
        Some(true)
    };
    let mut want = before.clone();
    let mut json_ok = true;
    if structural {
        let name_of = |k: u32| {
            let k = k as usize;
            local
                .get(k)
                .cloned()
                .unwrap_or_else(|| case.new_keys[k - local.len()].clone())
        };
        let slice = |s: u32, l: u32| bytes[s as usize..(s + l) as usize].to_vec();
        // The batch as it is, and the emitted events, each with the batch event it
        // follows (`None`: the end).
        let mut made: Vec<(Option<usize>, Model)> = Vec::new();
        for e in &edits {
            let ev = match *e {
                PlainEdit::Emit { after, raw } => {
                    let raw = raw.map_or(Vec::new(), |(s, l)| slice(s, l));
                    let after = (after != u32::MAX).then(|| live[after as usize]);
                    made.push((after, (false, false, None, Vec::new(), raw)));
                    continue;
                }
                PlainEdit::EmitCopy { event } => {
                    let source = live[event as usize];
                    let (_, _, ts, fields, raw) = want[source].clone();
                    made.push((Some(source), (false, false, ts, fields, raw)));
                    continue;
                }
                PlainEdit::Drop(ev)
                | PlainEdit::Set { event: ev, .. }
                | PlainEdit::Remove { event: ev, .. }
                | PlainEdit::Timestamp { event: ev, .. }
                | PlainEdit::Raw { event: ev, .. } => ev as usize,
            };
            let m = match live.get(ev) {
                Some(&i) => &mut want[i],
                None => &mut made[ev - live.len()].1,
            };
            if m.0 {
                continue;
            }
            match e {
                PlainEdit::Drop(_) => m.0 = true,
                PlainEdit::Set { key, value, .. } => {
                    let v = match *value {
                        PlainValue::Null => M::Null,
                        PlainValue::Bool(b) => M::Bool(b),
                        PlainValue::Int(i) => M::Int(i),
                        PlainValue::Float(x) => M::Float(x.to_bits()),
                        PlainValue::Str(s, l) => M::Bytes(false, slice(s, l)),
                        PlainValue::Json(s, l) => {
                            let b = slice(s, l);
                            json_ok &= serde_json::from_slice::<serde_json::Value>(&b).is_ok()
                                && b.iter().filter(|&&c| c == b'[' || c == b'{').count() < 100;
                            M::Bytes(true, b)
                        }
                    };
                    let name = name_of(*key);
                    match m.3.iter_mut().find(|(k, _)| *k == name) {
                        Some(slot) => slot.1 = v,
                        None => m.3.push((name, v)),
                    }
                }
                PlainEdit::Remove { key, .. } => {
                    let name = name_of(*key);
                    m.3.retain(|(k, _)| *k != name);
                }
                PlainEdit::Timestamp { timestamp, .. } => m.2 = *timestamp,
                PlainEdit::Raw { start, len, .. } => m.4 = slice(*start, *len),
                PlainEdit::Emit { .. } | PlainEdit::EmitCopy { .. } => unreachable!(),
            }
        }
        // Each batch event, then what was emitted after it in the order of the emits; the
        // events emitted at the end last.
        let mut after: Vec<Vec<Model>> = vec![Vec::new(); want.len() + 1];
        for (a, m) in made {
            after[a.unwrap_or(want.len())].push(m);
        }
        let mut placed = Vec::with_capacity(want.len() + after.iter().map(Vec::len).sum::<usize>());
        let mut after = after.into_iter();
        for m in want {
            placed.push(m);
            placed.extend(after.next().expect("one list per batch event"));
        }
        placed.extend(after.next().expect("and one for the end"));
        want = placed;
    }

    let result = check_and_apply_edits(&keys, only, &mut batch, bytes, case.new_keys.clone(), &edits);
    match &result {
        Ok(()) => {
            assert_ne!(valid, Some(false), "invalid edits were applied: {edits:?}");
            assert_eq!(model_of(&batch, &keys), want, "the batch after the edits");
        }
        Err(why) => {
            // A full key table or too many look-ups are refusals the model does not
            // predict; its inputs are far too small for either.
            assert_ne!(valid, Some(true), "valid edits were refused: {why}");
            assert!(
                why.starts_with("op ")
                    || why.starts_with("new key ")
                    || why.contains("bytes of values, over the limit"),
                "the reason names the op or key (or the byte limit): {why}"
            );
            assert_eq!(
                model_of(&batch, &keys),
                before,
                "a refused answer leaves the batch as it was"
            );
        }
    }
    if result.is_ok() && json_ok {
        // Whatever the edits did, the output is still JSON lines that serde_json reads (where
        // it read every `json` value alone).
        let _ = weir_fuzz::encode_and_read(&batch, &keys);
    }
});
