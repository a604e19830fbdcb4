//! Property tests: any batch reads back exactly through the views, and any sequence of
//! edits made with the builder and applied by the host gives what the same operations give
//! when done directly on the events.

use proptest::prelude::*;
use weir_sdk::testing::{OwnedEvent, OwnedValue, run};
use weir_sdk::{BatchView, Config, Edits, Error, Plugin, ValueRef};

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

#[derive(Clone, Debug)]
enum Op {
    Drop,
    Set(String, OwnedValue),
    Remove(String),
    Timestamp(Option<i64>),
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let op = prop_oneof![
        1 => Just(Op::Drop),
        4 => (name(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => name().prop_map(Op::Remove),
        1 => proptest::option::of(any::<i64>()).prop_map(Op::Timestamp),
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
        for (i, op) in &self.0 {
            let Some(event) = batch.event(i % batch.len().max(1)) else {
                continue;
            };
            match op {
                Op::Drop => edits.drop(&event),
                Op::Set(k, v) => edits.set(&event, k, as_ref(v)),
                Op::Remove(k) => edits.remove(&event, k),
                Op::Timestamp(ts) => edits.set_timestamp(&event, *ts),
            }
        }
        Ok(())
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

proptest! {
    #[test]
    fn views_read_back_any_batch(events in proptest::collection::vec(event(), 0..8)) {
        let batch = weir_sdk::testing::flatten(&events);
        let view = BatchView::new(&batch).unwrap();
        let back: Vec<OwnedEvent> = view
            .events()
            .map(|e| OwnedEvent {
                raw: e.raw().to_vec(),
                timestamp: e.timestamp(),
                fields: e.fields().map(|(k, v)| (k.to_owned(), OwnedValue::from_ref(v))).collect(),
            })
            .collect();
        prop_assert_eq!(back, events);
    }

    #[test]
    fn edits_through_the_boundary_match_direct_edits(
        events in proptest::collection::vec(event(), 0..6),
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let mut expected = events.clone();
        let mut dropped = vec![false; events.len()];
        for (i, op) in &ops {
            if events.is_empty() {
                break;
            }
            let at = i % events.len();
            if dropped[at] {
                continue;
            }
            let event = &mut expected[at];
            match op {
                Op::Drop => dropped[at] = true,
                Op::Set(k, v) => event.set(k, v.clone()),
                Op::Remove(k) => {
                    event.remove(k);
                }
                Op::Timestamp(ts) => event.timestamp = *ts,
            }
        }
        let mut keep = dropped.iter().map(|d| !d);
        expected.retain(|_| keep.next().unwrap());

        let got = run(&mut Scripted(ops), events).unwrap();
        prop_assert_eq!(got, expected);
    }
}
