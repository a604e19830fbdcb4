//! What 0.2 plugins can do beyond edits, through real components (`wasm-plugins/`): split
//! one event into many, gather and emit from `flush`, replace raw bytes; the per-call emit
//! limit holds against a plugin that tries to emit ten million events; and 0.1 and 0.2
//! components run side by side in one pipeline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weir_core::encode::{Encoder, JsonEncoder, RawEncoder};
use weir_core::model::{Batch, Buf, Event, KeyTable, Origin, Span, Value};
use weir_core::pipeline::{ComponentStats, Counted, Pipeline, Processor};
use weir_core::processors::RenameFieldsConfig;
use weir_test_plugins as plugins;
use weir_wasm::{FailureKind, PluginConfig, WasmConfig, WasmProcessor};

/// A batch with one event per line (`message` = the line), the `i`-th event at second
/// `times[i]` when given.
fn batch(lines: &[&str], times: &[i64]) -> Batch {
    let mut chunk = Vec::new();
    let mut spans = Vec::new();
    for line in lines {
        spans.push(Span::new(Buf::Chunk, chunk.len(), line.len()));
        chunk.extend_from_slice(line.as_bytes());
        chunk.push(b'\n');
    }
    let mut batch = Batch::new(chunk, Origin::default());
    for (i, span) in spans.into_iter().enumerate() {
        let mut event = Event::from_line(span);
        event.timestamp = times.get(i).map(|s| s * 1_000_000_000);
        batch.push(event);
    }
    batch
}

fn build(path: &str, pairs: &[(&str, &str)], keys: &Arc<KeyTable>) -> WasmProcessor {
    let mut c = WasmConfig::new(path);
    c.config = PluginConfig::from_pairs(pairs.iter().copied());
    c.build(keys).unwrap_or_else(|e| panic!("{path} builds: {e}"))
}

/// The live events as JSON lines (what a `json` output writes).
fn json_lines(batch: &Batch, keys: &Arc<KeyTable>) -> Vec<String> {
    let mut out = Vec::new();
    JsonEncoder::new(keys.clone()).encode(batch, &mut out);
    String::from_utf8(out).unwrap().lines().map(str::to_string).collect()
}

/// The live events' raw bytes (what an `encoding: raw` output writes... of `message`).
fn raw_lines(batch: &Batch) -> Vec<String> {
    batch
        .live()
        .map(|e| String::from_utf8_lossy(batch.bytes(e.raw())).into_owned())
        .collect()
}

#[test]
fn a_json_array_in_message_becomes_one_event_per_element() {
    let keys = KeyTable::new();
    let mut split = build(plugins::SPLIT_ARRAY, &[], &keys);
    let host = keys.intern("host");
    let mut b = batch(
        &["before", r#"[{"a":1},"two",3]"#, "[not json", r#"  ["x"]"#, "after"],
        &[10, 11, 12, 13, 14],
    );
    // Metadata on the array event must reach every piece.
    let span = b.push_arena(b"node-1");
    b.parts_mut().1[1].set(host, Value::Str(span));
    split.process(&mut b);
    b.compact();
    assert_eq!(split.take_failures(), 0);
    let lines = json_lines(&b, &keys);
    let ts = |s: i64| format!("1970-01-01T00:00:{s:02}Z");
    assert_eq!(
        lines,
        [
            format!(r#"{{"timestamp":"{}","message":"before"}}"#, ts(10)),
            format!(
                r#"{{"timestamp":"{}","message":{{"a":1}},"host":"node-1","index":0}}"#,
                ts(11)
            ),
            format!(
                r#"{{"timestamp":"{}","message":"two","host":"node-1","index":1}}"#,
                ts(11)
            ),
            format!(r#"{{"timestamp":"{}","message":3,"host":"node-1","index":2}}"#, ts(11)),
            format!(
                r#"{{"timestamp":"{}","message":"[not json","split_error":"not a JSON array: expected ident at line 1 column 3"}}"#,
                ts(12)
            ),
            format!(r#"{{"timestamp":"{}","message":"x","index":0}}"#, ts(13)),
            format!(r#"{{"timestamp":"{}","message":"after"}}"#, ts(14)),
        ]
    );
    // The pieces' raw bytes are the elements' JSON text.
    assert_eq!(
        raw_lines(&b),
        ["before", r#"{"a":1}"#, r#""two""#, "3", "[not json", r#""x""#, "after"]
    );
    assert_eq!(
        split
            .plugin()
            .stats()
            .emitted
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
}

#[test]
fn counts_per_service_and_second_come_out_of_flush_through_the_later_stages() {
    let keys = KeyTable::new();
    let service = keys.intern("service");
    let mut b1 = batch(&["a", "b", "c", "d"], &[100, 100, 100, 101]);
    let mut b2 = batch(&["e", "f"], &[101, 101]);
    for (b, names) in [
        (&mut b1, &["api", "db", "api", "api"][..]),
        (&mut b2, &["db", "api"][..]),
    ] {
        for (i, name) in names.iter().enumerate() {
            let span = b.push_arena(name.as_bytes());
            b.parts_mut().1[i].set(service, Value::Str(span));
        }
    }
    let counter = build(plugins::COUNT_BY_SERVICE, &[("drop_events", "true")], &keys);
    assert_eq!(counter.flush_interval(), Some(Duration::from_secs(1)));
    // A later stage sees what the flush emits: a native processor renames `count`.
    let rename = RenameFieldsConfig {
        fields: [("count".to_string(), "n".to_string())].into_iter().collect(),
    }
    .build(&keys)
    .unwrap();
    let stats = || Arc::new(ComponentStats::default());
    let mut pipeline = Pipeline::new(vec![
        Counted::new("count", Box::new(counter), stats()),
        Counted::new("rename", Box::new(rename), stats()),
    ]);
    pipeline.run(&mut b1);
    pipeline.run(&mut b2);
    assert!(b1.is_empty() && b2.is_empty(), "drop_events: only the counts go on");
    let mut flushed = Vec::new();
    for b in pipeline.flush() {
        flushed.extend(json_lines(&b, &keys));
    }
    let ts = |s: i64| format!("1970-01-01T00:01:{:02}Z", s - 60);
    assert_eq!(
        flushed,
        [
            format!(r#"{{"timestamp":"{}","service":"api","n":2}}"#, ts(100)),
            format!(r#"{{"timestamp":"{}","service":"db","n":1}}"#, ts(100)),
            format!(r#"{{"timestamp":"{}","service":"api","n":2}}"#, ts(101)),
            format!(r#"{{"timestamp":"{}","service":"db","n":1}}"#, ts(101)),
        ]
    );
    // Counted once: the next flush has nothing.
    assert_eq!(pipeline.flush().len(), 0);
}

#[test]
fn a_plugin_emitting_ten_million_events_for_one_is_stopped_at_the_limit_and_counted() {
    let keys = KeyTable::new();
    let mut c = WasmConfig::new(plugins::EMIT_FLOOD);
    c.max_emit_events = 1000;
    let mut flood = c.build(&keys).unwrap();
    let mut b = batch(&["one"], &[]);
    flood.process(&mut b);
    // The first 1,000 were emitted, the other 9,999,000 refused and counted as lost.
    assert_eq!(b.live().count(), 1 + 1000);
    let plugin = flood.plugin().clone();
    let stats = plugin.stats();
    assert_eq!(
        stats.emits_refused.load(std::sync::atomic::Ordering::Relaxed),
        9_999_000
    );
    assert_eq!(stats.failures_of(FailureKind::EmitLimit), 1);
    assert_eq!(flood.take_failures(), 9_999_000);
    // The agent goes on: the same instance answers the next batch (the limit is per call).
    let mut next = batch(&["two", "three"], &[]);
    flood.process(&mut next);
    assert_eq!(next.live().count(), 2 + 1000);
    assert_eq!(
        stats.emits_refused.load(std::sync::atomic::Ordering::Relaxed),
        9_999_000 + 19_999_000
    );
    assert_eq!(stats.instances.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn contract_0_1_and_0_2_components_run_side_by_side() {
    // `limits.wat` is a hand-written 0.1.0 component: `key NAME` sets NAME to 1.
    let v1 = {
        let bytes = wat::parse_str(include_str!("limits.wat")).unwrap();
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("side-by-side-v1.wasm");
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let keys = KeyTable::new();
    let old = WasmConfig::new(&v1).build(&keys).unwrap();
    let new = build(plugins::SPLIT_ARRAY, &[], &keys);
    assert_eq!((old.plugin().version(), new.plugin().version()), ("0.1.0", "0.2.0"));
    let stats = || Arc::new(ComponentStats::default());
    let mut pipeline = Pipeline::new(vec![
        Counted::new("old", Box::new(old), stats()),
        Counted::new("new", Box::new(new), stats()),
    ]);
    let mut b = batch(&["key v1x", r#"[1,2]"#], &[]);
    pipeline.run(&mut b);
    // 0.1 set `v1x` on event 0 (its edits go to event 0); 0.2 split event 1.
    assert_eq!(
        json_lines(&b, &keys),
        [
            r#"{"message":"key v1x","v1x":1}"#,
            r#"{"message":1,"index":0}"#,
            r#"{"message":2,"index":1}"#
        ]
    );
}

#[test]
fn a_raw_encoder_writes_the_replaced_raw_bytes_of_emitted_events() {
    let keys = KeyTable::new();
    let mut split = build(plugins::SPLIT_ARRAY, &[], &keys);
    let mut b = batch(&[r#"["a","b"]"#], &[]);
    split.process(&mut b);
    b.compact();
    // `encoding: raw` writes `message` when it is text: the elements' text.
    let mut out = Vec::new();
    RawEncoder.encode(&b, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "a\nb\n");
}
