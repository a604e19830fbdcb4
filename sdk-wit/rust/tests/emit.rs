//! What 0.2 adds, through whole plugins: new events (`emit`, `emit_copy`) and where they
//! land, `flush`, and the emit limits with the `refused` count.

use std::collections::BTreeMap;

use weir_sdk::flat::{self, AFTER_LAST, EmitLimits, Op, OpKind, Value};
use weir_sdk::testing::{OwnedEvent, OwnedValue, apply, flatten, flush, run};
use weir_sdk::{BatchView, Config, Edits, Error, Plugin, ValueRef, flush_flat, process_flat};

/// Runs `plugin` over `events` as [`run`] does, under `limits`: the events out and the
/// number of emits refused.
fn run_with<P: Plugin>(plugin: &mut P, mut events: Vec<OwnedEvent>, limits: EmitLimits) -> (Vec<OwnedEvent>, u32) {
    let mut batch = flatten(&events);
    batch.limits = limits;
    let edits = process_flat(plugin, &batch).unwrap();
    apply(&mut events, &batch.keys, limits, &edits).unwrap();
    (events, edits.refused)
}

fn ops(edits: &flat::Edits) -> Vec<Op> {
    (0..edits.op_count())
        .map(|i| Op::read(&edits.ops, i).unwrap())
        .collect()
}

/// The top-level elements of a JSON array, as text (`None` if `text` is not an array).
/// Enough JSON for the test: strings with escapes, nested arrays and objects.
fn array_elements(text: &[u8]) -> Option<Vec<&[u8]>> {
    let text = text.trim_ascii();
    let inner = text.strip_prefix(b"[")?.strip_suffix(b"]")?;
    if inner.trim_ascii().is_empty() {
        return Some(Vec::new());
    }
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0);
    let mut elements = Vec::new();
    for (i, &b) in inner.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                elements.push(inner[start..i].trim_ascii());
                start = i + 1;
            }
            _ => {}
        }
    }
    elements.push(inner[start..].trim_ascii());
    (depth == 0 && !in_string).then_some(elements)
}

/// Splits an event whose `message` is a JSON array into one event per element: each a
/// copy of the event (timestamp and other fields kept) whose `message` and raw bytes are
/// the element (a string element unquoted, anything else as JSON). An empty array leaves
/// no event; a message that is not an array passes.
struct SplitArray;

impl Plugin for SplitArray {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(SplitArray)
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let Some(message) = batch.key("message") else {
            return Ok(());
        };
        for event in batch.events() {
            let Some(elements) = event.get(message).and_then(ValueRef::as_bytes).and_then(array_elements) else {
                continue;
            };
            for element in elements {
                let new = edits.emit_copy(&event);
                match element.strip_prefix(b"\"").and_then(|e| e.strip_suffix(b"\"")) {
                    Some(text) => {
                        edits.set(&new, message, text);
                        edits.set_raw(&new, text);
                    }
                    None => {
                        edits.set(&new, message, ValueRef::Json(element));
                        edits.set_raw(&new, element);
                    }
                }
            }
            edits.drop(&event);
        }
        Ok(())
    }
}

#[test]
fn a_plugin_splits_a_json_array_into_one_event_per_element() {
    let events = vec![
        OwnedEvent::line(r#"["a", "b, c", {"x": [1, "]"]}, 3]"#)
            .with("service", "api")
            .at(10),
        OwnedEvent::line("plain line").with("service", "web"),
        OwnedEvent::line("[]"),
        OwnedEvent::line(r#"["only"]"#).with("n", 1_i64),
    ];
    let out = run(&mut SplitArray, events.clone()).unwrap();
    let split = |from: &OwnedEvent, raw: &str, message: OwnedValue| {
        let mut event = from.clone();
        event.raw = raw.as_bytes().to_vec();
        event.set("message", message);
        event
    };
    let expected = vec![
        split(&events[0], "a", "a".into()),
        split(&events[0], "b, c", "b, c".into()),
        split(&events[0], r#"{"x": [1, "]"]}"#, OwnedValue::json(r#"{"x": [1, "]"]}"#)),
        split(&events[0], "3", OwnedValue::json("3")),
        events[1].clone(),
        split(&events[3], "only", "only".into()),
    ];
    assert_eq!(out, expected);
    // The copies keep the event's metadata and its field order (`message` set in place).
    assert!(out[..4].iter().all(|e| e.timestamp == Some(10)));
    assert!(out[..4].iter().all(|e| e.get("service") == Some(&"api".into())));
    let names: Vec<&str> = out[5].fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["message", "n"]);
}

#[test]
fn the_split_rows_are_emit_copies_followed_by_sets_on_the_new_numbers() {
    let batch = flatten(&[OwnedEvent::line("x"), OwnedEvent::line(r#"["p","q"]"#)]);
    let edits = process_flat(&mut SplitArray, &batch).unwrap();
    let kinds: Vec<(OpKind, u32)> = ops(&edits).iter().map(|op| (op.kind, op.event)).collect();
    // Batch events are 0 and 1; the two copies of event 1 are numbered 2 and 3.
    assert_eq!(
        kinds,
        [
            (OpKind::EmitCopy, 1),
            (OpKind::Set, 2),
            (OpKind::Raw, 2),
            (OpKind::EmitCopy, 1),
            (OpKind::Set, 3),
            (OpKind::Raw, 3),
            (OpKind::Drop, 1),
        ]
    );
    assert_eq!(edits.bytes, b"ppqq");
    assert!(edits.new_keys.is_empty(), "`message` is a batch key");
}

/// Counts events per `service` across batches and emits the counts from `flush`, one
/// event per service (in name order), then starts again. Batches pass through unchanged.
#[derive(Default)]
struct CountByService {
    counts: BTreeMap<String, i64>,
}

impl Plugin for CountByService {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(CountByService::default())
    }

    fn process(&mut self, batch: &BatchView<'_>, _: &mut Edits<'_>) -> Result<(), Error> {
        let Some(service) = batch.key("service") else {
            return Ok(());
        };
        for event in batch.events() {
            if let Some(name) = event.get_str(service) {
                *self.counts.entry(name.to_owned()).or_default() += 1;
            }
        }
        Ok(())
    }

    fn flush(&mut self, edits: &mut Edits<'_>) -> Result<(), Error> {
        let (service, count) = (edits.key("service"), edits.key("count"));
        for (name, n) in std::mem::take(&mut self.counts) {
            let event = edits.emit(None, format!("{name} {n}").as_bytes());
            edits.set(&event, service, name.as_str());
            edits.set(&event, count, n);
        }
        Ok(())
    }
}

#[test]
fn a_plugin_emits_its_counts_from_flush() {
    let mut counter = CountByService::init(&Config::default()).unwrap();
    assert_eq!(flush(&mut counter).unwrap(), [], "nothing counted yet");
    let batch = |services: &[&str]| -> Vec<OwnedEvent> {
        services
            .iter()
            .map(|s| OwnedEvent::line("hit").with("service", *s))
            .chain([OwnedEvent::line("no service")])
            .collect()
    };
    for services in [&["api", "web", "api"][..], &["db", "api"]] {
        let events = batch(services);
        assert_eq!(run(&mut counter, events.clone()).unwrap(), events, "passes unchanged");
    }
    let count = |name: &str, n: i64| OwnedEvent {
        raw: format!("{name} {n}").into_bytes(),
        fields: vec![("service".into(), name.into()), ("count".into(), n.into())],
        ..OwnedEvent::default()
    };
    assert_eq!(
        flush(&mut counter).unwrap(),
        [count("api", 3), count("db", 1), count("web", 1)]
    );
    assert_eq!(flush(&mut counter).unwrap(), [], "the counts start again");
    run(&mut counter, batch(&["web"])).unwrap();
    assert_eq!(flush(&mut counter).unwrap(), [count("web", 1)]);
}

#[test]
fn flush_answers_emits_after_the_end_and_ops_on_the_emitted_numbers() {
    let mut counter = CountByService::init(&Config::default()).unwrap();
    run(&mut counter, vec![OwnedEvent::line("x").with("service", "a")]).unwrap();
    // The host's flush batch: no events, its keys and limits only.
    let edits = flush_flat(&mut counter, &flat::Batch::default()).unwrap();
    let rows: Vec<(OpKind, u32, u32)> = ops(&edits).iter().map(|op| (op.kind, op.event, op.key)).collect();
    assert_eq!(
        rows,
        [(OpKind::Emit, AFTER_LAST, 0), (OpKind::Set, 0, 0), (OpKind::Set, 0, 1)]
    );
    assert_eq!(edits.new_keys, ["service", "count"]);
    assert_eq!(ops(&edits)[2].value, Value::Int(1));
    // An emit anywhere but the end, or a copy, cannot answer a flush: there is no event.
    for bad in [
        Op {
            kind: OpKind::Emit,
            event: 0,
            key: 0,
            value: Value::Null,
        },
        Op {
            kind: OpKind::EmitCopy,
            event: 0,
            key: 0,
            value: Value::Null,
        },
    ] {
        let mut rows = Vec::new();
        bad.write(&mut rows);
        let edits = flat::Edits {
            ops: rows,
            ..flat::Edits::default()
        };
        assert!(edits.validate(0, 0, EmitLimits::default()).is_err(), "{bad:?}");
    }
}

/// Emits `copies` copies of every event, and one event at the end of the batch; sets a
/// field on each new event.
struct Fanout {
    copies: usize,
}

impl Plugin for Fanout {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Fanout {
            copies: config.parse_or("copies", 1)?,
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        for event in batch.events() {
            for i in 0..self.copies {
                let copy = edits.emit_copy(&event);
                edits.set(&copy, "copy", i as i64);
                // Edits on a refused emit write nothing.
                assert_eq!(copy.is_emitted(), edits.refused() == 0);
            }
        }
        let end = edits.emit(None, b"end");
        edits.set(&end, "copy", -1_i64);
        Ok(())
    }
}

#[test]
fn emits_past_limits_events_are_refused_and_counted() {
    let events = vec![OwnedEvent::line("a"), OwnedEvent::line("b"), OwnedEvent::line("c")];
    let mut fanout = Fanout::init(&Config::from_iter([("copies", "3")])).unwrap();
    let copy = |line: &str, i: i64| OwnedEvent::line(line).with("copy", i);

    // Room for all: 9 copies and the end event.
    let (out, refused) = run_with(&mut fanout, events.clone(), EmitLimits::default());
    assert_eq!((out.len(), refused), (13, 0));

    // Room for 4: the first 4 emits made, the other 6 (5 copies and the end) refused.
    let limits = EmitLimits {
        events: 4,
        ..EmitLimits::default()
    };
    let (out, refused) = run_with(&mut fanout, events.clone(), limits);
    assert_eq!(refused, 6);
    assert_eq!(
        out,
        [
            OwnedEvent::line("a"),
            copy("a", 0),
            copy("a", 1),
            copy("a", 2),
            OwnedEvent::line("b"),
            copy("b", 0),
            OwnedEvent::line("c"),
        ]
    );
    // The answer has only the rows of the emits made: the host accepts it as is.
    let mut batch = flatten(&events);
    batch.limits = limits;
    let edits = process_flat(&mut fanout, &batch).unwrap();
    let emits = ops(&edits).iter().filter(|op| op.kind.emits()).count();
    assert_eq!((emits, edits.op_count(), edits.refused), (4, 8, 6));

    // No room at all: every emit refused, the batch passes unchanged.
    let none = EmitLimits {
        events: 0,
        ..EmitLimits::default()
    };
    assert_eq!(run_with(&mut fanout, events.clone(), none), (events, 10));
}

/// Emits one event at the end per entry of `raws`, with those raw bytes.
struct EmitRaws(Vec<&'static str>);

impl Plugin for EmitRaws {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(EmitRaws(Vec::new()))
    }

    fn process(&mut self, _: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        for raw in &self.0 {
            edits.emit(None, raw.as_bytes());
        }
        Ok(())
    }
}

#[test]
fn emits_past_limits_bytes_are_refused_and_counted() {
    // 10 bytes: "123456" fits, "12345" would make 11, "1234" makes exactly 10.
    let limits = EmitLimits { events: 10, bytes: 10 };
    let mut plugin = EmitRaws(vec!["123456", "12345", "1234", "x", ""]);
    let (out, refused) = run_with(&mut plugin, vec![], limits);
    let raws: Vec<&[u8]> = out.iter().map(|e| e.raw.as_slice()).collect();
    assert_eq!(raws, [&b"123456"[..], b"1234", b""]);
    assert_eq!(refused, 2);
}

/// Emits and copies in a fixed order, and drops event 1, to show where new events land.
struct Placement;

impl Plugin for Placement {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Placement)
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let [a, b, c] = [0, 1, 2].map(|i| batch.event(i).unwrap());
        edits.emit(Some(&c), b"c1");
        edits.emit(Some(&a), b"a1");
        edits.emit(None, b"end1");
        edits.emit_copy(&a);
        edits.emit(Some(&a), b"a2");
        edits.emit(None, b"end2");
        edits.emit(Some(&c), b"c2");
        // An emit after a dropped event still lands in its place.
        edits.drop(&b);
        edits.emit(Some(&b), b"b1");
        Ok(())
    }
}

#[test]
fn emitted_events_land_after_their_event_in_emission_order() {
    let events = vec![OwnedEvent::line("a"), OwnedEvent::line("b"), OwnedEvent::line("c")];
    let out = run(&mut Placement, events).unwrap();
    let raws: Vec<&str> = out.iter().map(|e| std::str::from_utf8(&e.raw).unwrap()).collect();
    // After each batch event, what was emitted after it in the order emitted; then what
    // was emitted with `emit(None, ..)`, after the last event and after anything emitted
    // after the last event.
    assert_eq!(raws, ["a", "a1", "a", "a2", "b1", "c", "c1", "c2", "end1", "end2"]);
    // The copy is the whole event; the others have no fields.
    assert_eq!(out[2], OwnedEvent::line("a"));
    assert!(
        out.iter()
            .filter(|e| e.raw != b"a" && e.raw != b"c")
            .all(|e| e.fields.is_empty())
    );
}

#[test]
fn emits_after_the_last_event_follow_it_even_when_it_is_dropped() {
    struct DropLast;
    impl Plugin for DropLast {
        fn init(_: &Config) -> Result<Self, Error> {
            Ok(DropLast)
        }
        fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
            let last = batch.event(batch.len() - 1).unwrap();
            let end = edits.emit(None, b"end");
            edits.drop(&last);
            let after = edits.emit(Some(&last), b"after last");
            // A new event can be dropped too, and ops after that are ignored.
            let gone = edits.emit(None, b"gone");
            edits.drop(&gone);
            edits.set(&gone, "k", 1_i64);
            edits.set(&end, "k", 2_i64);
            edits.set_timestamp(&after, Some(3));
            Ok(())
        }
    }
    let out = run(&mut DropLast, vec![OwnedEvent::line("a"), OwnedEvent::line("b")]).unwrap();
    let after = OwnedEvent {
        raw: b"after last".to_vec(),
        ..OwnedEvent::default()
    }
    .at(3);
    let end = OwnedEvent {
        raw: b"end".to_vec(),
        ..OwnedEvent::default()
    }
    .with("k", 2_i64);
    assert_eq!(out, [OwnedEvent::line("a"), after, end]);
}
