//! The whole round trip natively: owned events -> flat batch -> views -> edits -> flat
//! edits -> applied result, and the checks on each side of the boundary.

use weir_sdk::flat::{self, Edit, RemoveField, SetField, SetTimestamp, Span, Value};
use weir_sdk::testing::{OwnedEvent, OwnedValue, apply, flatten, run};
use weir_sdk::{BatchView, Config, Edits, Error, EventView, Plugin, ValueRef, process_flat};

fn sample() -> Vec<OwnedEvent> {
    vec![
        OwnedEvent::line("GET /a 200")
            .with("status", 200)
            .with("level", "info")
            .at(7),
        OwnedEvent::line("GET /b 500")
            .with("status", 500)
            .with("level", "error")
            .with("ctx", OwnedValue::json(r#"{"a":1}"#)),
        OwnedEvent::line("bad \u{e9}")
            .with("ratio", 0.5)
            .with("ok", false)
            .with("gone", OwnedValue::Null)
            .with("bin", OwnedValue::Str(vec![0xff, 0xfe])),
    ]
}

#[test]
fn flatten_shares_the_message_bytes_and_numbers_keys_in_first_use_order() {
    let batch = flatten(&sample());
    assert_eq!(
        batch.keys,
        ["message", "status", "level", "ctx", "ratio", "ok", "gone", "bin"]
    );
    // The message field is the raw span itself: no second copy.
    let first = batch.events[0];
    assert_eq!(batch.fields[first.fields.start as usize].value, Value::Str(first.raw));
    assert_eq!(first.fields, Span { start: 0, len: 3 });
    assert_eq!(batch.events[1].fields, Span { start: 3, len: 4 });
    let raw_bytes: usize = sample().iter().map(|e| e.raw.len()).sum();
    // raw lines + "info" + "error" + the JSON + the two invalid bytes.
    assert_eq!(batch.bytes.len(), raw_bytes + 4 + 5 + 7 + 2);
}

#[test]
fn views_read_back_every_event_exactly() {
    let events = sample();
    let batch = flatten(&events);
    let view = BatchView::new(&batch).unwrap();
    assert_eq!(view.len(), 3);
    assert_eq!(view.events().len(), 3);
    for (event, owned) in view.events().zip(&events) {
        assert_eq!(event.raw(), owned.raw.as_slice());
        assert_eq!(event.timestamp(), owned.timestamp);
        let fields: Vec<(String, OwnedValue)> = event
            .fields()
            .map(|(k, v)| (k.to_owned(), OwnedValue::from_ref(v)))
            .collect();
        assert_eq!(fields, owned.fields);
        assert_eq!(event.field_count(), owned.fields.len());
    }
}

#[test]
fn fields_by_name_or_key() {
    let batch = flatten(&sample());
    let view = BatchView::new(&batch).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| view.event(i).unwrap());
    assert!(view.event(3).is_none());
    assert_eq!(a.get("level"), Some(ValueRef::Str(b"info")));
    assert_eq!(a.get_str("message"), Some("GET /a 200"));
    assert_eq!(a.raw_str(), Some("GET /a 200"));
    assert_eq!(a.get("status").and_then(ValueRef::as_i64), Some(200));
    let level = view.key("level").unwrap();
    assert_eq!(view.key_name(level), Some("level"));
    assert_eq!(b.get(level), Some(ValueRef::Str(b"error")));
    assert_eq!(b.get("ctx"), Some(ValueRef::Json(br#"{"a":1}"#)));
    assert_eq!(c.get(level), None);
    assert_eq!(view.key("nope"), None);
    assert_eq!(a.get("nope"), None);
    assert_eq!(c.get("ratio").and_then(ValueRef::as_f64), Some(0.5));
    assert_eq!(c.get("ok").and_then(ValueRef::as_bool), Some(false));
    assert!(c.get("gone").unwrap().is_null());
    let bin = c.get("bin").unwrap();
    assert_eq!((bin.as_bytes(), bin.as_str()), (Some(&[0xff, 0xfe][..]), None));
    assert_eq!(c.raw_str(), Some("bad \u{e9}"));
    assert_eq!(a.index(), 0);
    assert_eq!(c.index(), 2);
}

/// Breaks one rule of the flat layout.
type BreakBatch = fn(&mut flat::Batch);

#[test]
fn malformed_batches_are_rejected_before_any_read() {
    let good = flatten(&sample());
    let cases: [(&str, BreakBatch); 5] = [
        ("raw span", |b| b.events[1].raw.len = 1_000),
        ("raw span overflow", |b| {
            b.events[0].raw = Span::new(u32::MAX as usize, 2)
        }),
        ("field span", |b| b.events[2].fields.len += 1),
        ("key id", |b| b.fields[4].key = 99),
        ("value span", |b| {
            b.fields[5].value = Value::Json(Span { start: 0, len: 9_999 })
        }),
    ];
    for (what, break_it) in cases {
        let mut batch = good.clone();
        break_it(&mut batch);
        assert!(BatchView::new(&batch).is_err(), "{what}");
        assert!(
            matches!(process_flat(&mut KeepAll, &batch), Err(Error::Fatal(_))),
            "{what}"
        );
    }
}

struct KeepAll;

impl Plugin for KeepAll {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(KeepAll)
    }
    fn process(&mut self, _: &BatchView<'_>, _: &mut Edits<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn a_plugin_that_edits_nothing_returns_empty_edits() {
    let batch = flatten(&sample());
    assert_eq!(process_flat(&mut KeepAll, &batch).unwrap(), flat::Edits::default());
    assert_eq!(run(&mut KeepAll, sample()).unwrap(), sample());
}

#[test]
fn the_builder_produces_exactly_the_flat_edit_form() {
    let batch = flatten(&sample());
    let view = BatchView::new(&batch).unwrap();
    let [a, b, c]: [EventView<'_>; 3] = [0, 1, 2].map(|i| view.event(i).unwrap());
    let mut edits = Edits::new(&view);
    assert!(edits.is_empty());
    edits.set(&a, "level", "warn"); // existing key: id 2, no new key
    edits.set(&a, "region", "eu"); // new key: id 8
    edits.set(&b, "region", 3_i64); // reused
    let owner = String::from("team-a");
    edits.set(&b, &owner, true); // a name as &String: new key 9
    edits.set(&c, "ratio", ValueRef::Json(b"[1]"));
    edits.set_str_with(&c, "masked", |buf| buf.extend_from_slice(b"***")); // new key 10
    edits.remove(&c, "nope"); // no event can have it: no edit
    edits.remove(&a, "status");
    edits.remove(&b, "region"); // made by an earlier edit: removable
    edits.set_timestamp(&a, Some(42));
    edits.set_timestamp(&c, None);
    edits.drop(&b);
    edits.set(&a, "n", ValueRef::Null);
    edits.set(&a, "f", 1.5);
    let key = edits.key("level");
    edits.set(&c, key, "debug");
    assert_eq!(edits.len(), 14);
    let set = |event, key, value| Edit::Set(SetField { event, key, value });
    let span = |start, len| Span { start, len };
    let expected = flat::Edits {
        bytes: b"warneu[1]***debug".to_vec(),
        new_keys: ["region", "team-a", "masked", "n", "f"].map(String::from).to_vec(),
        edits: vec![
            set(0, 2, Value::Str(span(0, 4))),
            set(0, 8, Value::Str(span(4, 2))),
            set(1, 8, Value::Int(3)),
            set(1, 9, Value::Boolean(true)),
            set(2, 4, Value::Json(span(6, 3))),
            set(2, 10, Value::Str(span(9, 3))),
            Edit::Remove(RemoveField { event: 0, key: 1 }),
            Edit::Remove(RemoveField { event: 1, key: 8 }),
            Edit::Timestamp(SetTimestamp {
                event: 0,
                timestamp: Some(42),
            }),
            Edit::Timestamp(SetTimestamp {
                event: 2,
                timestamp: None,
            }),
            Edit::Drop(1),
            set(0, 11, Value::Null),
            set(0, 12, Value::Float(1.5)),
            set(2, 2, Value::Str(span(12, 5))),
        ],
    };
    let flat_edits = edits.into_flat();
    assert_eq!(flat_edits, expected);

    let mut events = sample();
    apply(&mut events, &batch.keys, &flat_edits).unwrap();
    let [a, c] = [&events[0], &events[1]];
    assert_eq!(events.len(), 2, "event 1 was dropped");
    assert_eq!(a.timestamp, Some(42));
    let names: Vec<&str> = a.fields.iter().map(|(k, _)| k.as_str()).collect();
    // `level` was replaced in place, `status` removed, the new fields appended in order.
    assert_eq!(names, ["message", "level", "region", "n", "f"]);
    assert_eq!(a.get("level"), Some(&OwnedValue::from("warn")));
    assert_eq!(a.get("f"), Some(&OwnedValue::Float(1.5)));
    assert_eq!(c.timestamp, None);
    assert_eq!(c.get("ratio"), Some(&OwnedValue::json("[1]")));
    assert_eq!(c.get("masked"), Some(&OwnedValue::from("***")));
    assert_eq!(c.get("level"), Some(&OwnedValue::from("debug")));
}

#[test]
fn edits_apply_in_order_and_ignore_a_dropped_event() {
    let mut events = vec![OwnedEvent::line("a"), OwnedEvent::line("b"), OwnedEvent::line("c")];
    let keys = vec!["message".to_owned()];
    let edits = flat::Edits {
        bytes: b"x".to_vec(),
        // A new key may repeat a batch key: it is the same field.
        new_keys: vec!["k".to_owned(), "message".to_owned()],
        edits: vec![
            Edit::Set(SetField {
                event: 0,
                key: 1,
                value: Value::Int(1),
            }),
            Edit::Remove(RemoveField { event: 0, key: 1 }),
            Edit::Drop(1),
            Edit::Set(SetField {
                event: 1,
                key: 1,
                value: Value::Int(2),
            }),
            Edit::Drop(1),
            Edit::Set(SetField {
                event: 2,
                key: 2,
                value: Value::Str(Span { start: 0, len: 1 }),
            }),
        ],
    };
    apply(&mut events, &keys, &edits).unwrap();
    assert_eq!(
        events,
        [OwnedEvent::line("a"), OwnedEvent::line("c").with("message", "x")]
    );
}

#[test]
fn malformed_edits_are_rejected_before_any_change() {
    let keys = vec!["message".to_owned()];
    let bad = [
        Edit::Drop(3),
        Edit::Timestamp(SetTimestamp {
            event: 9,
            timestamp: None,
        }),
        Edit::Remove(RemoveField { event: 0, key: 2 }),
        Edit::Set(SetField {
            event: 0,
            key: 0,
            value: Value::Str(Span { start: 1, len: 1 }),
        }),
        Edit::Set(SetField {
            event: 0,
            key: 0,
            value: Value::Json(Span {
                start: u32::MAX,
                len: 1,
            }),
        }),
    ];
    for edit in bad {
        let mut events = vec![OwnedEvent::line("a"); 3];
        let edits = flat::Edits {
            bytes: b"x".to_vec(),
            new_keys: vec!["k".to_owned()],
            edits: vec![Edit::Drop(0), edit],
        };
        let err = apply(&mut events, &keys, &edits).unwrap_err();
        assert!(err.message().starts_with("edit 1:"), "{edit:?}: {err}");
        assert_eq!(events.len(), 3, "{edit:?}: nothing applied");
    }
}

/// An enricher: adds a constant field, copies `status` into `code` as text, moves the
/// timestamp, removes `gone`, and fails the batch on request.
struct Enricher {
    region: String,
    shift: i64,
}

impl Plugin for Enricher {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Enricher {
            region: config.require("region")?.to_owned(),
            shift: config.parse_or("shift_ns", 0)?,
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let region = edits.key("region");
        let status = batch.key("status");
        for event in batch.events() {
            if event.raw() == b"retry me" {
                return Err(Error::retryable("try later"));
            }
            edits.set(&event, region, &self.region);
            if let Some(code) = status.and_then(|s| event.get(s)).and_then(ValueRef::as_i64) {
                edits.set_str_with(&event, "code", |buf| buf.extend_from_slice(code.to_string().as_bytes()));
            }
            if let Some(ts) = event.timestamp() {
                edits.set_timestamp(&event, Some(ts + self.shift));
            }
            edits.remove(&event, "gone");
        }
        Ok(())
    }
}

#[test]
fn an_enricher_round_trip() {
    let config: Config = [("region", "eu-west"), ("shift_ns", "1000")].into_iter().collect();
    let mut plugin = Enricher::init(&config).unwrap();
    let out = run(&mut plugin, sample()).unwrap();
    let expected: Vec<OwnedEvent> = sample()
        .into_iter()
        .map(|mut e| {
            e.set("region", "eu-west".into());
            if let Some(OwnedValue::Int(code)) = e.get("status") {
                let code = code.to_string();
                e.set("code", code.as_str().into());
            }
            e.timestamp = e.timestamp.map(|t| t + 1000);
            e.remove("gone");
            e
        })
        .collect();
    assert_eq!(out, expected);
    assert_eq!(out[0].timestamp, Some(1007));

    let failing = vec![OwnedEvent::line("ok"), OwnedEvent::line("retry me")];
    assert_eq!(run(&mut plugin, failing), Err(Error::retryable("try later")));
}

#[test]
fn configuration_errors_are_fatal_and_name_the_key() {
    let missing = Enricher::init(&Config::default()).err().unwrap();
    assert_eq!(missing, Error::fatal("missing config key `region`"));
    let config = Config::new(vec![
        ("region".into(), "a".into()),
        ("shift_ns".into(), "soon".into()),
        ("region".into(), "b".into()),
    ]);
    let bad = Enricher::init(&config).err().unwrap();
    assert!(matches!(&bad, Error::Fatal(m) if m.contains("shift_ns")), "{bad}");
    assert_eq!(config.get("region"), Some("b"), "the last entry wins");
    assert_eq!(config.iter().len(), 3);
    assert_eq!(weir_sdk::init_flat::<KeepAll>(vec![]).map(|_| ()), Ok(()));
}

#[test]
fn errors_say_what_the_host_should_do() {
    assert_eq!(Error::retryable("x").to_string(), "retryable: x");
    assert_eq!(Error::drop_batch("y").to_string(), "drop batch: y");
    assert_eq!(Error::fatal("z").to_string(), "fatal: z");
    assert_eq!(Error::DropBatch("y".into()).message(), "y");
}
