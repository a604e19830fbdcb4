//! The whole round trip natively: owned events -> flat batch -> views -> edits -> flat
//! edits -> applied result, and the checks on each side of the boundary.

use weir_sdk::flat::{
    self, AFTER_LAST, EVENT_ROW, EmitLimits, EventRow, FIELD_ROW, FieldRow, NO_TIMESTAMP, OP_ROW, Op, OpKind, Span,
    Value,
};
use weir_sdk::testing::{OwnedEvent, OwnedValue, apply, flatten, flush, run};
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

fn event_row(batch: &flat::Batch, i: usize) -> EventRow {
    EventRow::read(&batch.events, i)
}

fn field_row(batch: &flat::Batch, i: usize) -> FieldRow {
    FieldRow::read(&batch.fields, i).expect("a known value tag")
}

/// Rewrites event row `i` of `batch` with `change` applied.
fn change_event(batch: &mut flat::Batch, i: usize, change: impl FnOnce(&mut EventRow)) {
    let mut row = event_row(batch, i);
    change(&mut row);
    let mut bytes = Vec::new();
    row.write(&mut bytes);
    batch.events[i * EVENT_ROW..(i + 1) * EVENT_ROW].copy_from_slice(&bytes);
}

/// Rewrites field row `i` of `batch` with `change` applied.
fn change_field(batch: &mut flat::Batch, i: usize, change: impl FnOnce(&mut FieldRow)) {
    let mut row = field_row(batch, i);
    change(&mut row);
    let mut bytes = Vec::new();
    row.write(&mut bytes);
    batch.fields[i * FIELD_ROW..(i + 1) * FIELD_ROW].copy_from_slice(&bytes);
}

/// The op rows of `edits`, decoded.
fn ops(edits: &flat::Edits) -> Vec<Op> {
    assert_eq!(edits.ops.len() % OP_ROW, 0, "whole rows");
    (0..edits.op_count())
        .map(|i| Op::read(&edits.ops, i).unwrap())
        .collect()
}

/// The op table of `ops`.
fn op_rows(ops: &[Op]) -> Vec<u8> {
    let mut rows = Vec::new();
    ops.iter().for_each(|op| op.write(&mut rows));
    rows
}

fn op(kind: OpKind, event: u32, key: u32, value: Value) -> Op {
    Op {
        kind,
        event,
        key,
        value,
    }
}

fn span(start: u32, len: u32) -> Span {
    Span { start, len }
}

#[test]
fn flatten_shares_the_message_bytes_and_numbers_keys_in_first_use_order() {
    let batch = flatten(&sample());
    assert_eq!(
        batch.keys,
        ["message", "status", "level", "ctx", "ratio", "ok", "gone", "bin"]
    );
    assert_eq!((batch.event_count(), batch.field_count()), (3, 12));
    assert_eq!(batch.events.len(), 3 * EVENT_ROW);
    assert_eq!(batch.fields.len(), 12 * FIELD_ROW);
    // The message field is the raw span itself: no second copy.
    let first = event_row(&batch, 0);
    assert_eq!(
        field_row(&batch, first.fields.start as usize).value,
        Value::Str(first.raw)
    );
    assert_eq!(first.fields, span(0, 3));
    assert_eq!(first.timestamp, Some(7));
    let second = event_row(&batch, 1);
    assert_eq!(second.fields, span(3, 4));
    assert_eq!(second.timestamp, None);
    // An unknown time is `i64::MIN` in the row.
    assert_eq!(&batch.events[EVENT_ROW + 16..2 * EVENT_ROW], NO_TIMESTAMP.to_le_bytes());
    assert_eq!(event_row(&batch, 2).fields, span(7, 5));
    assert_eq!(
        field_row(&batch, 4),
        FieldRow {
            key: 1,
            value: Value::Int(500)
        }
    );
    let raw_bytes: usize = sample().iter().map(|e| e.raw.len()).sum();
    // raw lines + "info" + "error" + the JSON + the two invalid bytes.
    assert_eq!(batch.bytes.len(), raw_bytes + 4 + 5 + 7 + 2);
    assert_eq!(batch.limits, EmitLimits::default());
    assert_eq!(
        EmitLimits::default(),
        EmitLimits {
            events: 65_536,
            bytes: 16 << 20
        }
    );
}

#[test]
fn rows_are_little_endian_at_the_documented_offsets() {
    let mut rows = Vec::new();
    op(OpKind::Set, 0x0102_0304, 7, Value::Str(span(5, 6))).write(&mut rows);
    let mut expected = Vec::new();
    for word in [1u32, 0x0102_0304, 7, 4, 5, 6] {
        expected.extend_from_slice(&word.to_le_bytes());
    }
    assert_eq!(rows, expected);
    let mut rows = Vec::new();
    FieldRow {
        key: 2,
        value: Value::Float(1.5),
    }
    .write(&mut rows);
    let mut expected = [2u32.to_le_bytes(), 3u32.to_le_bytes()].concat();
    expected.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
    assert_eq!(rows, expected);
    // Every value kind reads back as written.
    for value in [
        Value::Null,
        Value::Boolean(true),
        Value::Int(-3),
        Value::Float(-0.25),
        Value::Str(span(1, 2)),
        Value::Json(span(u32::MAX, 0)),
    ] {
        let (tag, payload) = value.encode();
        assert_eq!(Value::decode(tag, payload), Some(value));
    }
    assert_eq!(Value::decode(6, 0), None);
}

#[test]
fn views_read_back_every_event_exactly() {
    let events = sample();
    let batch = flatten(&events);
    let view = BatchView::new(&batch).unwrap();
    assert_eq!(view.len(), 3);
    assert!(!view.is_empty());
    assert_eq!(view.events().len(), 3);
    assert_eq!(view.limits(), EmitLimits::default());
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
    let empty = flat::Batch::default();
    let view = BatchView::new(&empty).unwrap();
    assert!(view.is_empty());
    assert_eq!(view.events().count(), 0);
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

/// Reads all a plugin can: every event's raw bytes and fields; and drops every event (an
/// edit that must not be applied when a read was malformed).
struct ReadAll;

impl Plugin for ReadAll {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(ReadAll)
    }
    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        for event in batch.events() {
            std::hint::black_box(event.raw());
            for field in event.fields() {
                std::hint::black_box(field);
            }
            edits.drop(&event);
        }
        Ok(())
    }
}

/// A malformed batch (only a host bug makes one) fails the call that reads the bad row, as
/// `fatal` with the message `Batch::validate` gives for it, and no edit is returned. Tables
/// that are not whole rows fail before the plugin runs; a bad row the plugin never reads
/// does not fail the call (the rows are checked as they are read).
#[test]
fn malformed_batches_fail_the_call_that_reads_them() {
    let good = flatten(&sample());
    let cases: [(&str, BreakBatch, &str); 8] = [
        (
            "raw span",
            |b| change_event(b, 1, |e| e.raw.len = 1_000),
            "event 1: raw span",
        ),
        (
            "raw span overflow",
            |b| change_event(b, 0, |e| e.raw = Span::new(u32::MAX as usize, 2)),
            "event 0: raw span",
        ),
        (
            "field range",
            |b| change_event(b, 2, |e| e.fields.len += 1),
            "event 2: field range",
        ),
        (
            "key id",
            |b| change_field(b, 4, |f| f.key = 99),
            "event 1: key id 99 not in the key table",
        ),
        (
            "value span",
            |b| change_field(b, 5, |f| f.value = Value::Json(span(0, 9_999))),
            "event 1: value span",
        ),
        (
            "unknown value tag",
            |b| b.fields[6 * FIELD_ROW + 4..6 * FIELD_ROW + 8].copy_from_slice(&9u32.to_le_bytes()),
            "event 1: field 6 has an unknown value tag",
        ),
        ("event table not whole rows", |b| b.events.push(0), "not whole rows"),
        (
            "field table not whole rows",
            |b| {
                b.fields.pop();
            },
            "not whole rows",
        ),
    ];
    assert!(BatchView::new(&good).is_ok());
    assert!(process_flat(&mut ReadAll, &good).is_ok());
    for (what, break_it, message) in cases {
        let mut batch = good.clone();
        break_it(&mut batch);
        let err = batch.validate().unwrap_err();
        assert!(err.message().contains(message), "{what}: {err}");
        assert_eq!(err.to_string(), format!("malformed flat data: {}", err.message()));
        match process_flat(&mut ReadAll, &batch) {
            Err(Error::Fatal(m)) => assert_eq!(m, err.to_string(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        let whole = batch.whole_rows().is_ok();
        assert_eq!(BatchView::new(&batch).is_ok(), whole, "{what}");
        assert_eq!(process_flat(&mut KeepAll, &batch).is_ok(), whole, "{what}");
        assert_eq!(weir_sdk::flush_flat(&mut KeepAll, &batch).is_ok(), whole, "{what}");
        // The next call, on a good batch, is not failed by the earlier problem.
        assert!(process_flat(&mut ReadAll, &good).is_ok(), "{what}");
    }
}

/// The quick pass over every row and the walk over the rows events refer to agree: a
/// batch is refused only for a row an event refers to.
#[test]
fn a_malformed_row_no_event_refers_to_is_accepted_as_before() {
    let mut batch = flatten(&sample());
    // A field row after the last event's fields, with an unknown tag and a key id and span
    // out of range: the quick pass fails, the walk finds nothing an event reads.
    flat::FieldRow {
        key: 0,
        value: Value::Int(0),
    }
    .write(&mut batch.fields);
    let at = batch.fields.len() - FIELD_ROW;
    batch.fields[at..at + 4].copy_from_slice(&9_999u32.to_le_bytes());
    batch.fields[at + 4..at + 8].copy_from_slice(&4u32.to_le_bytes());
    batch.fields[at + 8..at + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(BatchView::new(&batch).is_ok());
    // Made an event's row, the same row is refused.
    let events = batch.event_count();
    let fields = batch.field_count();
    change_event(&mut batch, events - 1, |e| {
        e.fields.len = (fields as u32) - e.fields.start
    });
    let err = batch.validate().unwrap_err();
    assert!(err.message().contains("key id 9999 not in the key table"), "{err}");
    match process_flat(&mut ReadAll, &batch) {
        Err(Error::Fatal(m)) => assert!(m.contains("key id 9999 not in the key table"), "{m}"),
        other => panic!("{other:?}"),
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
    // The default `flush` emits nothing.
    assert_eq!(
        weir_sdk::flush_flat(&mut KeepAll, &flat::Batch::default()).unwrap(),
        flat::Edits::default()
    );
    assert_eq!(flush(&mut KeepAll).unwrap(), []);
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
    assert_eq!(edits.refused(), 0);
    let set = |event, key, value| op(OpKind::Set, event, key, value);
    let expected_ops = vec![
        set(0, 2, Value::Str(span(0, 4))),
        set(0, 8, Value::Str(span(4, 2))),
        set(1, 8, Value::Int(3)),
        set(1, 9, Value::Boolean(true)),
        set(2, 4, Value::Json(span(6, 3))),
        set(2, 10, Value::Str(span(9, 3))),
        op(OpKind::Remove, 0, 1, Value::Null),
        op(OpKind::Remove, 1, 8, Value::Null),
        op(OpKind::Timestamp, 0, 0, Value::Int(42)),
        op(OpKind::Timestamp, 2, 0, Value::Null),
        op(OpKind::Drop, 1, 0, Value::Null),
        set(0, 11, Value::Null),
        set(0, 12, Value::Float(1.5)),
        set(2, 2, Value::Str(span(12, 5))),
    ];
    let flat_edits = edits.into_flat();
    assert_eq!(flat_edits.bytes, b"warneu[1]***debug");
    assert_eq!(flat_edits.new_keys, ["region", "team-a", "masked", "n", "f"]);
    assert_eq!(flat_edits.refused, 0);
    assert_eq!(ops(&flat_edits), expected_ops);
    // Byte for byte, the rows are what `Op::write` makes.
    assert_eq!(flat_edits.ops, op_rows(&expected_ops));
    assert_eq!(
        flat_edits.validate(3, batch.keys.len(), batch.limits).unwrap(),
        expected_ops
    );

    let mut events = sample();
    apply(&mut events, &batch.keys, batch.limits, &flat_edits).unwrap();
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
fn the_builder_writes_raw_route_and_emit_rows() {
    let batch = flatten(&sample());
    let view = BatchView::new(&batch).unwrap();
    let [a, b, c]: [EventView<'_>; 3] = [0, 1, 2].map(|i| view.event(i).unwrap());
    let mut edits = Edits::new(&view);
    edits.set_raw(&a, b"GET /a 201");
    edits.route(&b, "errors");
    let extra = edits.emit(Some(&b), b"extra"); // event 3
    edits.set(&extra, "level", "debug");
    let copy = edits.emit_copy(&c); // event 4
    edits.set_timestamp(&copy, Some(5));
    edits.remove(&copy, "bin");
    let end = edits.emit(None, b""); // event 5
    edits.route(&end, "audit");
    edits.set(&end, "count", 2_i64); // new key 8
    assert!([extra, copy, end].iter().all(|e| e.is_emitted()));
    assert_eq!((edits.len(), edits.refused()), (10, 0));
    let flat_edits = edits.into_flat();
    assert_eq!(flat_edits.bytes, b"GET /a 201errorsextradebugaudit");
    assert_eq!(flat_edits.new_keys, ["count"]);
    assert_eq!(
        ops(&flat_edits),
        [
            op(OpKind::Raw, 0, 0, Value::Str(span(0, 10))),
            op(OpKind::Route, 1, 0, Value::Str(span(10, 6))),
            op(OpKind::Emit, 1, 0, Value::Str(span(16, 5))),
            op(OpKind::Set, 3, 2, Value::Str(span(21, 5))),
            op(OpKind::EmitCopy, 2, 0, Value::Null),
            op(OpKind::Timestamp, 4, 0, Value::Int(5)),
            op(OpKind::Remove, 4, 7, Value::Null),
            op(OpKind::Emit, AFTER_LAST, 0, Value::Str(span(26, 0))),
            op(OpKind::Route, 5, 0, Value::Str(span(26, 5))),
            op(OpKind::Set, 5, 8, Value::Int(2)),
        ]
    );
    assert!(OpKind::Emit.emits() && OpKind::EmitCopy.emits() && !OpKind::Raw.emits());

    let mut events = sample();
    apply(&mut events, &batch.keys, batch.limits, &flat_edits).unwrap();
    let [a0, b0, c0] = sample().try_into().unwrap();
    let mut copy = c0.clone().at(5);
    copy.remove("bin");
    let expected = [
        // Raw bytes change, the `message` field does not.
        OwnedEvent {
            raw: b"GET /a 201".to_vec(),
            ..a0
        },
        OwnedEvent {
            route: Some("errors".into()),
            ..b0
        },
        OwnedEvent {
            raw: b"extra".to_vec(),
            fields: vec![("level".into(), "debug".into())],
            ..OwnedEvent::default()
        },
        c0,
        copy,
        OwnedEvent {
            fields: vec![("count".into(), 2_i64.into())],
            route: Some("audit".into()),
            ..OwnedEvent::default()
        },
    ];
    assert_eq!(events, expected);
}

#[test]
fn edits_apply_in_order_and_ignore_a_dropped_event() {
    let mut events = vec![OwnedEvent::line("a"), OwnedEvent::line("b"), OwnedEvent::line("c")];
    let keys = vec!["message".to_owned()];
    let edits = flat::Edits {
        bytes: b"xout".to_vec(),
        // A new key may repeat a batch key: it is the same field.
        new_keys: vec!["k".to_owned(), "message".to_owned()],
        ops: op_rows(&[
            op(OpKind::Set, 0, 1, Value::Int(1)),
            op(OpKind::Remove, 0, 1, Value::Null),
            op(OpKind::Drop, 1, 0, Value::Null),
            op(OpKind::Set, 1, 1, Value::Int(2)),
            op(OpKind::Raw, 1, 0, Value::Str(span(0, 1))),
            op(OpKind::Route, 1, 0, Value::Str(span(1, 3))),
            op(OpKind::Drop, 1, 0, Value::Null),
            op(OpKind::Set, 2, 2, Value::Str(span(0, 1))),
            // An emitted event dropped later never shows; ops after the drop are ignored.
            op(OpKind::Emit, 0, 0, Value::Null),
            op(OpKind::Drop, 3, 0, Value::Null),
            op(OpKind::Set, 3, 1, Value::Int(3)),
            // A timestamp set, then cleared.
            op(OpKind::Timestamp, 0, 0, Value::Int(9)),
            op(OpKind::Timestamp, 0, 0, Value::Null),
        ]),
        refused: 0,
    };
    apply(&mut events, &keys, EmitLimits::default(), &edits).unwrap();
    assert_eq!(
        events,
        [OwnedEvent::line("a"), OwnedEvent::line("c").with("message", "x")]
    );
}

/// The op rows of `ops` with word `word` of row `row` overwritten by `value`.
fn patched(ops: &[Op], row: usize, word: usize, value: u32) -> Vec<u8> {
    let mut rows = op_rows(ops);
    let at = row * OP_ROW + word * 4;
    rows[at..at + 4].copy_from_slice(&value.to_le_bytes());
    rows
}

#[test]
fn malformed_edits_are_rejected_before_any_change() {
    let keys = vec!["message".to_owned()];
    let x = Value::Str(span(0, 1));
    // One bad op after a good one: the message names op 1.
    let bad = [
        (
            op(OpKind::Drop, 3, 0, Value::Null),
            "event 3 out of a batch of 3 events and 0 emitted ones",
        ),
        (op(OpKind::Timestamp, 9, 0, Value::Null), "event 9"),
        (op(OpKind::Remove, 0, 2, Value::Null), "key id 2 out of 2 keys"),
        (op(OpKind::Set, 0, 2, Value::Int(0)), "key id 2 out of 2 keys"),
        (op(OpKind::Set, 0, 0, Value::Str(span(1, 1))), "value span"),
        (op(OpKind::Set, 0, 0, Value::Json(span(u32::MAX, 1))), "value span"),
        (op(OpKind::Raw, 0, 0, Value::Str(span(0, 2))), "value span"),
        (op(OpKind::Timestamp, 0, 0, x), "Timestamp op cannot take the value"),
        (
            op(OpKind::Timestamp, 0, 0, Value::Float(1.0)),
            "Timestamp op cannot take",
        ),
        (op(OpKind::Raw, 0, 0, Value::Null), "Raw op cannot take"),
        (op(OpKind::Route, 0, 0, Value::Json(span(0, 1))), "Route op cannot take"),
        (
            op(OpKind::Emit, 0, 0, Value::Int(1)),
            "Emit op cannot take the value Int(1)",
        ),
        (op(OpKind::Emit, 3, 0, Value::Null), "event 3 out of"),
        (
            op(OpKind::EmitCopy, AFTER_LAST, 0, Value::Null),
            "event 4294967295 out of",
        ),
        // No event has been emitted yet: event 3 does not exist.
        (
            op(OpKind::Set, 3, 0, Value::Int(1)),
            "event 3 out of a batch of 3 events and 0 emitted ones",
        ),
    ];
    let base = |ops: Vec<u8>| flat::Edits {
        bytes: b"x".to_vec(),
        new_keys: vec!["k".to_owned()],
        ops,
        refused: 0,
    };
    let limits = EmitLimits::default();
    // (what, edits, limits, how the message starts, what it says)
    let mut cases: Vec<(String, flat::Edits, EmitLimits, &str, &str)> = bad
        .iter()
        .map(|(bad, message)| {
            let edits = base(op_rows(&[op(OpKind::Drop, 0, 0, Value::Null), *bad]));
            (format!("{bad:?}"), edits, limits, "op 1: ", *message)
        })
        .collect();
    let drop0 = op(OpKind::Drop, 0, 0, Value::Null);
    let emit = op(OpKind::Emit, AFTER_LAST, 0, Value::Null);
    let more = [
        (
            "an op on an emitted event that does not exist yet",
            base(op_rows(&[emit, op(OpKind::Set, 4, 0, x)])),
            limits,
            "op 1: event 4 out of a batch of 3 events and 1 emitted ones",
        ),
        (
            "an op on an emitted event before its emit",
            base(op_rows(&[op(OpKind::Set, 3, 0, x), emit])),
            limits,
            "op 0: event 3",
        ),
        (
            "unknown op",
            base(patched(&[drop0, drop0], 1, 0, 8)),
            limits,
            "op 1: unknown op 8",
        ),
        (
            "unknown value tag",
            base(patched(&[drop0, drop0], 1, 3, 6)),
            limits,
            "op 1: unknown value tag 6",
        ),
        (
            "op table not whole rows",
            base(op_rows(&[drop0, drop0])[..OP_ROW + 1].to_vec()),
            limits,
            "the op table (25 bytes) is not whole rows",
        ),
        (
            "emit past the limit",
            base(op_rows(&[drop0, emit, op(OpKind::EmitCopy, 1, 0, Value::Null)])),
            EmitLimits { events: 1, ..limits },
            "op 2: more than 1 events emitted in one call",
        ),
        (
            "emit with no emit allowed",
            base(op_rows(&[emit])),
            EmitLimits { events: 0, ..limits },
            "op 0: more than 0 events emitted",
        ),
        (
            "bytes past the limit",
            base(op_rows(&[op(OpKind::Set, 0, 0, x)])),
            EmitLimits { bytes: 0, ..limits },
            "1 bytes of values, over the limit of 0 per call",
        ),
    ];
    cases.extend(
        more.into_iter()
            .map(|(what, edits, limits, message)| (what.to_owned(), edits, limits, &message[..4], message)),
    );
    for (what, edits, limits, start, message) in cases {
        let mut events = vec![OwnedEvent::line("a"); 3];
        let err = apply(&mut events, &keys, limits, &edits).unwrap_err();
        assert!(err.message().starts_with(start), "{what}: {err}");
        assert!(err.message().contains(message), "{what}: {err}");
        assert_eq!(events, vec![OwnedEvent::line("a"); 3], "{what}: nothing applied");
    }
    // At the limits exactly, the same shapes pass.
    let edits = base(op_rows(&[drop0, emit, op(OpKind::Set, 3, 0, x)]));
    let mut events = vec![OwnedEvent::line("a"); 3];
    apply(&mut events, &keys, EmitLimits { events: 1, bytes: 1 }, &edits).unwrap();
    let emitted = OwnedEvent::default().with("message", "x");
    assert_eq!(events, [OwnedEvent::line("a"), OwnedEvent::line("a"), emitted]);
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

#[test]
fn spans_past_the_bytes_read_from_extra_and_never_across() {
    // Raw line "ab" in `bytes`; `message` = "xyz" in `extra` (span starting at len(bytes)).
    let mut batch = flat::Batch {
        bytes: b"ab".to_vec(),
        extra: b"xyz".to_vec(),
        keys: vec!["message".to_string()],
        ..flat::Batch::default()
    };
    flat::FieldRow {
        key: 0,
        value: Value::Str(Span { start: 2, len: 3 }),
    }
    .write(&mut batch.fields);
    flat::EventRow {
        raw: Span { start: 0, len: 2 },
        fields: Span { start: 0, len: 1 },
        timestamp: None,
    }
    .write(&mut batch.events);
    let view = BatchView::new(&batch).unwrap();
    let event = view.event(0).unwrap();
    assert_eq!(event.raw(), b"ab");
    assert_eq!(event.get_str("message"), Some("xyz"));
    // A span across the two lists, or past `extra`, is malformed.
    for (start, len) in [(1, 2), (3, 3)] {
        let mut bad = batch.clone();
        bad.fields.clear();
        flat::FieldRow {
            key: 0,
            value: Value::Str(Span { start, len }),
        }
        .write(&mut bad.fields);
        let err = bad.validate().unwrap_err();
        assert!(
            err.message().contains("out of the bytes (or across bytes and extra)"),
            "{err}"
        );
        match process_flat(&mut ReadAll, &bad) {
            Err(Error::Fatal(m)) => assert_eq!(m, err.to_string()),
            other => panic!("{other:?}"),
        }
    }
}
