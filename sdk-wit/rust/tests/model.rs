//! Property tests: any batch reads back exactly through the views, and any script of edits
//! made with the builder and applied by the host gives what the same operations give when
//! done directly on the events: sets, removals, timestamps, raw bytes and routes on batch
//! events and on emitted ones, drops of either, emits after an event or at the end, copies,
//! and emits past the call's limit (refused and counted).

use proptest::prelude::*;
use weir_sdk::flat::EmitLimits;
use weir_sdk::testing::{OwnedEvent, OwnedValue, apply, flatten};
use weir_sdk::{BatchView, Config, Edits, Error, EventRef, NewEvent, Plugin, ValueRef, process_flat};

/// Names from a small pool, so events share keys and edits hit existing fields; the
/// higher ones never appear in a batch, so edits also make new keys.
fn name() -> impl Strategy<Value = String> {
    (0..8u8).prop_map(|i| if i == 0 { "message".to_owned() } else { format!("k{i}") })
}

fn value() -> impl Strategy<Value = OwnedValue> {
    prop_oneof![
        Just(OwnedValue::Null),
        any::<bool>().prop_map(OwnedValue::Bool),
        any::<i64>().prop_map(OwnedValue::Int),
        (-1e9..1e9f64).prop_map(OwnedValue::Float),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(OwnedValue::Str),
        "[0-9]{0,4}".prop_map(|s| OwnedValue::Json(s.into_bytes())),
    ]
}

fn event() -> impl Strategy<Value = OwnedEvent> {
    let fields = proptest::collection::vec((0..5u8, value()), 0..5);
    ("[a-z ]{0,16}", proptest::option::of(any::<i64>()), fields).prop_map(|(line, ts, fields)| {
        let mut event = OwnedEvent::line(&line);
        event.timestamp = ts;
        for (k, v) in fields {
            event.set(&format!("k{k}"), v);
        }
        event
    })
}

fn limits() -> impl Strategy<Value = EmitLimits> {
    // Mostly room for every emit of a script; sometimes a limit a script reaches.
    prop_oneof![
        3 => Just(EmitLimits::default()),
        1 => (0..4u32).prop_map(|events| EmitLimits { events, ..EmitLimits::default() }),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Drop,
    Set(String, OwnedValue),
    Remove(String),
    Timestamp(Option<i64>),
    Raw(Vec<u8>),
    Route(String),
    /// Emit after the chosen batch event (`true`) or after the last one (`false`).
    Emit(bool, Vec<u8>),
    /// Emit a copy of the chosen batch event.
    EmitCopy,
}

/// A script step: the number that picks the event, and the op. Ops that edit an event
/// pick among the batch's events and every emit tried so far (refused ones included:
/// edits on those do nothing); emits pick a batch event.
fn op() -> impl Strategy<Value = (usize, Op)> {
    let raw = || proptest::collection::vec(any::<u8>(), 0..8);
    let op = prop_oneof![
        2 => Just(Op::Drop),
        6 => (name(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => name().prop_map(Op::Remove),
        1 => proptest::option::of(any::<i64>()).prop_map(Op::Timestamp),
        1 => raw().prop_map(Op::Raw),
        1 => "[a-c]".prop_map(Op::Route),
        2 => (any::<bool>(), raw()).prop_map(|(after, raw)| Op::Emit(after, raw)),
        2 => Just(Op::EmitCopy),
    ];
    (any::<usize>(), op)
}

/// A plugin that performs a fixed script of operations through the SDK.
struct Scripted(Vec<(usize, Op)>);

impl Plugin for Scripted {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Scripted(Vec::new()))
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let n = batch.len();
        let mut emitted: Vec<NewEvent> = Vec::new();
        for (i, op) in &self.0 {
            match op {
                Op::Emit(after, raw) => {
                    let after = if *after { batch.event(i % n.max(1)) } else { None };
                    emitted.push(edits.emit(after.as_ref(), raw));
                }
                Op::EmitCopy => {
                    if let Some(event) = batch.event(i % n.max(1)) {
                        emitted.push(edits.emit_copy(&event));
                    }
                }
                _ if n + emitted.len() == 0 => {}
                _ => match i % (n + emitted.len()) {
                    at if at < n => edit(edits, &batch.event(at).unwrap(), op),
                    at => edit(edits, &emitted[at - n], op),
                },
            }
        }
        Ok(())
    }
}

fn edit(edits: &mut Edits<'_>, event: &impl EventRef, op: &Op) {
    match op {
        Op::Drop => edits.drop(event),
        Op::Set(k, v) => edits.set(event, k, as_ref(v)),
        Op::Remove(k) => edits.remove(event, k),
        Op::Timestamp(ts) => edits.set_timestamp(event, *ts),
        Op::Raw(raw) => edits.set_raw(event, raw),
        Op::Route(output) => edits.route(event, output),
        Op::Emit(..) | Op::EmitCopy => unreachable!("not an edit of an event"),
    }
}

fn as_ref(v: &OwnedValue) -> ValueRef<'_> {
    match v {
        OwnedValue::Null => ValueRef::Null,
        OwnedValue::Bool(b) => ValueRef::Bool(*b),
        OwnedValue::Int(i) => ValueRef::Int(*i),
        OwnedValue::Float(f) => ValueRef::Float(*f),
        OwnedValue::Str(s) => ValueRef::Str(s),
        OwnedValue::Json(s) => ValueRef::Json(s),
    }
}

/// An event of the direct model: where it goes (after batch event `after`, `n` for the
/// end), the event, whether it was dropped.
struct Slot {
    after: usize,
    event: OwnedEvent,
    dropped: bool,
}

/// The script done directly on owned events: what the host should output, and how many
/// emits were refused.
fn direct(events: &[OwnedEvent], script: &[(usize, Op)], limits: EmitLimits) -> (Vec<OwnedEvent>, u32) {
    let n = events.len();
    let mut batch: Vec<Slot> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Slot {
            after: i,
            event: e.clone(),
            dropped: false,
        })
        .collect();
    // Every emit tried, in order: the index in `emitted`, or `None` when refused.
    let mut tried: Vec<Option<usize>> = Vec::new();
    let mut emitted: Vec<Slot> = Vec::new();
    let mut refused = 0;
    for (i, op) in script {
        let new = match op {
            Op::Emit(after, raw) => Some(Slot {
                after: if *after && n > 0 { i % n } else { n },
                event: OwnedEvent {
                    raw: raw.clone(),
                    ..OwnedEvent::default()
                },
                dropped: false,
            }),
            // A copy of the batch event as it is now (its route is not copied).
            Op::EmitCopy if n > 0 => Some(Slot {
                after: i % n,
                event: OwnedEvent {
                    route: None,
                    ..batch[i % n].event.clone()
                },
                dropped: false,
            }),
            Op::EmitCopy => continue,
            _ => None,
        };
        if let Some(new) = new {
            if emitted.len() < limits.events as usize {
                tried.push(Some(emitted.len()));
                emitted.push(new);
            } else {
                tried.push(None);
                refused += 1;
            }
            continue;
        }
        if n + tried.len() == 0 {
            continue;
        }
        let at = i % (n + tried.len());
        let slot = if at < n {
            &mut batch[at]
        } else {
            match tried[at - n] {
                Some(e) => &mut emitted[e],
                None => continue, // a refused emit: nothing to edit
            }
        };
        if slot.dropped {
            continue;
        }
        let event = &mut slot.event;
        match op {
            Op::Drop => slot.dropped = true,
            Op::Set(k, v) => event.set(k, v.clone()),
            Op::Remove(k) => {
                event.remove(k);
            }
            Op::Timestamp(ts) => event.timestamp = *ts,
            Op::Raw(raw) => event.raw = raw.clone(),
            Op::Route(output) => event.route = Some(output.clone()),
            Op::Emit(..) | Op::EmitCopy => unreachable!(),
        }
    }
    // Each batch event, then what was emitted after it in emission order; then the end.
    let mut out = Vec::new();
    for after in 0..=n {
        let emitted_here = emitted.iter().filter(|s| s.after == after);
        for slot in batch.get(after).into_iter().chain(emitted_here) {
            if !slot.dropped {
                out.push(slot.event.clone());
            }
        }
    }
    (out, refused)
}

proptest! {
    #[test]
    fn views_read_back_any_batch(events in proptest::collection::vec(event(), 0..8), limits in limits()) {
        let mut batch = flatten(&events);
        batch.limits = limits;
        let view = BatchView::new(&batch).unwrap();
        prop_assert_eq!(view.limits(), limits);
        prop_assert_eq!(view.len(), events.len());
        let back: Vec<OwnedEvent> = view
            .events()
            .map(|e| OwnedEvent {
                raw: e.raw().to_vec(),
                timestamp: e.timestamp(),
                fields: e.fields().map(|(k, v)| (k.to_owned(), OwnedValue::from_ref(v))).collect(),
                route: None,
            })
            .collect();
        prop_assert_eq!(back, events);
    }

    #[test]
    fn edits_through_the_boundary_match_direct_edits(
        events in proptest::collection::vec(event(), 0..6),
        script in proptest::collection::vec(op(), 0..24),
        limits in limits(),
    ) {
        let (expected, refused) = direct(&events, &script, limits);

        let mut batch = flatten(&events);
        batch.limits = limits;
        let edits = process_flat(&mut Scripted(script), &batch).unwrap();
        prop_assert_eq!(edits.refused, refused);
        let mut got = events;
        apply(&mut got, &batch.keys, limits, &edits).unwrap();
        prop_assert_eq!(got, expected);
    }
}
