//! The Wasm host's check of a plugin's edits (`engine/wasm/src/processor.rs`), without a
//! plugin: arbitrary edits (events, key ids, spans out of range, new keys, drops followed
//! by sets) against an arbitrary batch are either refused as a whole, leaving the batch
//! untouched, or applied exactly as the WIT contract says (`sdk-wit/wit/types.wit`): never
//! a panic. A model of the contract predicts which, and the result.
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

#[derive(Arbitrary, Debug)]
enum AValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Idx, Idx),
    Json(Idx, Idx),
}

#[derive(Arbitrary, Debug)]
enum AEdit {
    Drop(Idx),
    Set(Idx, Idx, AValue),
    Remove(Idx, Idx),
    Timestamp(Idx, Option<i64>),
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
}

const NAMES: [&str; 6] = ["message", "level", "user", "timestamp", "_error", "é"];

#[derive(Debug, Clone, PartialEq)]
enum M {
    Int(i64),
    Float(u64),
    Null,
    Bool(bool),
    Bytes(bool, Vec<u8>),
}

/// An event as the test sees it: dropped or not, time, fields by name.
type Model = (bool, bool, Option<i64>, Vec<(String, M)>);

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
            (e.is_dropped(), e.is_dead_letter(), e.timestamp, fields)
        })
        .collect()
}

fuzz_target!(|case: Case| {
    let keys = KeyTable::new();
    let mut batch = Batch::new(case.chunk.clone(), Origin::default());
    let n = case.chunk.len();
    for ev in case.events.iter().take(16) {
        let raw = Span::new(Buf::Chunk, 0, n);
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
    let edits: Vec<PlainEdit> = case
        .edits
        .iter()
        .take(64)
        .map(|e| match e {
            AEdit::Drop(ev) => PlainEdit::Drop(ev.get()),
            AEdit::Set(ev, key, v) => PlainEdit::Set {
                event: ev.get(),
                key: key.get(),
                value: match v {
                    AValue::Null => PlainValue::Null,
                    AValue::Bool(b) => PlainValue::Bool(*b),
                    AValue::Int(i) => PlainValue::Int(*i),
                    AValue::Float(x) => PlainValue::Float(*x),
                    AValue::Str(s, l) => PlainValue::Str(s.get(), l.get()),
                    AValue::Json(s, l) => PlainValue::Json(s.get(), l.get()),
                },
            },
            AEdit::Remove(ev, key) => PlainEdit::Remove {
                event: ev.get(),
                key: key.get(),
            },
            AEdit::Timestamp(ev, ts) => PlainEdit::Timestamp {
                event: ev.get(),
                timestamp: *ts,
            },
        })
        .collect();

    // The contract, modelled: the live events in order, keys numbered by first use among
    // the fields that cross, then the new keys.
    let before = model_of(&batch, &keys);
    let live: Vec<usize> = (0..batch.len()).filter(|&i| batch.events()[i].is_live()).collect();
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
    let span_ok = |s: u32, l: u32| {
        (s as usize)
            .checked_add(l as usize)
            .is_some_and(|e| e <= case.bytes.len())
    };
    let structural = edits.iter().all(|e| {
        let (ev, key, span) = match *e {
            PlainEdit::Drop(ev) => (ev, None, None),
            PlainEdit::Set { event, key, ref value } => (
                event,
                Some(key),
                match *value {
                    PlainValue::Str(s, l) | PlainValue::Json(s, l) => Some((s, l)),
                    _ => None,
                },
            ),
            PlainEdit::Remove { event, key } => (event, Some(key), None),
            PlainEdit::Timestamp { event, .. } => (event, None, None),
        };
        (ev as usize) < live.len()
            && key.is_none_or(|k| (k as usize) < all_keys)
            && span.is_none_or(|(s, l)| span_ok(s, l))
    }) && case.new_keys.iter().all(|k| k.len() <= weir_wasm::MAX_KEY_BYTES);
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
                let b = &case.bytes[s as usize..(s + l) as usize];
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
        for e in &edits {
            match e {
                PlainEdit::Drop(ev) => want[live[*ev as usize]].0 = true,
                PlainEdit::Set { event, key, value } => {
                    let m = &mut want[live[*event as usize]];
                    if m.0 {
                        continue;
                    }
                    let v = match *value {
                        PlainValue::Null => M::Null,
                        PlainValue::Bool(b) => M::Bool(b),
                        PlainValue::Int(i) => M::Int(i),
                        PlainValue::Float(x) => M::Float(x.to_bits()),
                        PlainValue::Str(s, l) => M::Bytes(false, case.bytes[s as usize..(s + l) as usize].to_vec()),
                        PlainValue::Json(s, l) => {
                            let b = case.bytes[s as usize..(s + l) as usize].to_vec();
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
                PlainEdit::Remove { event, key } => {
                    let m = &mut want[live[*event as usize]];
                    if !m.0 {
                        let name = name_of(*key);
                        m.3.retain(|(k, _)| *k != name);
                    }
                }
                PlainEdit::Timestamp { event, timestamp } => {
                    let m = &mut want[live[*event as usize]];
                    if !m.0 {
                        m.2 = *timestamp;
                    }
                }
            }
        }
    }

    let result = check_and_apply_edits(
        &keys,
        only,
        &mut batch,
        case.bytes.clone(),
        case.new_keys.clone(),
        &edits,
    );
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
                why.starts_with("edit ") || why.starts_with("new key "),
                "the reason names the edit or key: {why}"
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
