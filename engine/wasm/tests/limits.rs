//! The sandbox's limits against a hand-written hostile component (`limits.wat`: two core
//! modules, each with its own linear memory, doing what the first event's line says): the
//! memory cap holds for the whole instance, and what a plugin hands back is checked before
//! it reaches the batch, so nothing downstream can be made to recurse or grow without bound.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weir_core::encode::{Encoder, JsonEncoder};
use weir_core::model::{Batch, Buf, Event, KeyTable, Origin, Span, Value};
use weir_core::pipeline::Processor;
use weir_core::units::ByteSize;
use weir_wasm::{FailureKind, OnError, WasmConfig, WasmProcessor};

/// `limits.wat` compiled to a component file, once per test run.
fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write_component("limits.wasm", include_str!("limits.wat")))
        .clone()
}

fn write_component(name: &str, text: &str) -> PathBuf {
    let bytes = wat::parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const PAGE: u64 = 64 << 10;
/// The cap the tests run under: 64 pages.
const CAP: u64 = 4 << 20;

fn processor(keys: &Arc<KeyTable>, on_error: OnError) -> WasmProcessor {
    let mut c = WasmConfig::new(plugin());
    c.name = Some("limits".into());
    c.memory = ByteSize(CAP);
    c.on_error = on_error;
    c.build(keys).unwrap_or_else(|e| panic!("limits.wat builds: {e}"))
}

/// A batch of one event whose raw line (and `message`) is `line`.
fn batch(line: &str) -> Batch {
    let mut b = Batch::new(format!("{line}\n").into_bytes(), Origin::default());
    b.push(Event::from_line(Span::new(Buf::Chunk, 0, line.len())));
    b
}

/// The value of `field` on the only live event.
fn field(b: &Batch, keys: &KeyTable, field: &str) -> Option<Value> {
    let key = keys.get(field)?;
    b.live().next()?.get(key)
}

/// The `_error` of the only dead-lettered event.
fn dead_letter_reason(b: &Batch, keys: &KeyTable) -> String {
    let dead: Vec<_> = b.dead_letters().collect();
    assert_eq!(dead.len(), 1, "the event is dead-lettered");
    match dead[0].get(keys.intern("_error")) {
        Some(Value::Str(s)) => String::from_utf8_lossy(b.bytes(s)).into_owned(),
        other => panic!("no _error: {other:?}"),
    }
}

#[test]
fn the_memory_cap_holds_for_all_the_memories_of_an_instance() {
    let keys = KeyTable::new();
    // Both memories start at one page; 31 more each fill the cap exactly.
    let mut p = processor(&keys, OnError::DeadLetter);
    let mut b = batch("grow 31");
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(field(&b, &keys, "pages"), Some(Value::Int((CAP / PAGE) as i64)));

    // One more page each: either memory (33 pages, 2.1 MiB) is under the cap alone, not
    // both together.
    let mut p = processor(&keys, OnError::DeadLetter);
    let mut b = batch("grow 32");
    p.process(&mut b);
    assert_eq!(p.take_failures(), 1);
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Memory), 1);
    let why = dead_letter_reason(&b, &keys);
    let total = (33 + 33) * PAGE;
    assert!(
        why.starts_with("wasm plugin limits: memory: memory cap of 4194304 bytes reached in process")
            && why.contains(&format!("would have held {total} bytes")),
        "{why}"
    );

    // A new instance for the next batch, with its own count.
    let mut next = batch("grow 0");
    p.process(&mut next);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(field(&next, &keys, "pages"), Some(Value::Int(2)));
}

#[test]
fn tables_count_against_the_memory_cap() {
    let keys = KeyTable::new();
    // The two memories hold 2 pages; each table element counts 8 bytes.
    let fits = (CAP - 2 * PAGE) / 8;
    let mut p = processor(&keys, OnError::Drop);
    let mut b = batch(&format!("table {fits}"));
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(field(&b, &keys, "table"), Some(Value::Int(fits as i64)));

    let mut p = processor(&keys, OnError::Drop);
    let mut b = batch(&format!("table {}", fits + 1));
    p.process(&mut b);
    assert_eq!(b.live().count(), 0, "on_error: drop");
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Memory), 1);
}

#[test]
fn an_instance_with_too_many_memories_does_not_start() {
    let keys = KeyTable::new();
    // A third core module with 99 empty memories: 101 in all.
    let many = format!(
        "(core module $many {})\n  (core instance $i (instantiate $many))\n  (core instance $o",
        "(memory 0) ".repeat(weir_wasm::MAX_MEMORIES - 1)
    );
    let text = include_str!("limits.wat").replacen("(core instance $o", &many, 1);
    let mut c = WasmConfig::new(write_component("many-memories.wasm", &text));
    c.name = Some("many".into());
    let err = c.build(&keys).unwrap_err().to_string();
    assert!(
        err.starts_with("plugin many failed to start") && err.contains("memory count"),
        "{err}"
    );
}

#[test]
fn a_json_value_that_is_not_json_fails_the_batch() {
    let keys = KeyTable::new();
    let mut p = processor(&keys, OnError::DeadLetter);
    for (text, why) in [
        (r#"{"a":"#, "EOF while parsing"),
        (r#"{"a":1} x"#, "trailing characters"),
        ("nul", "EOF while parsing"),
        (r#"{"a" 1}"#, "expected `:`"),
        ("", "EOF while parsing"),
    ] {
        let mut b = batch(&format!("json {text}"));
        p.process(&mut b);
        assert_eq!(p.take_failures(), 1, "{text}");
        let reason = dead_letter_reason(&b, &keys);
        assert!(
            reason.starts_with("wasm plugin limits: bad_edits: op 0: the json value is not JSON text: ")
                && reason.contains(why),
            "{text}: {reason}"
        );
    }
    assert_eq!(p.plugin().stats().failures_of(FailureKind::BadEdits), 5);
    // Valid text goes through as it is.
    let mut b = batch(r#"json {"a": [1, 2.5, "x", null]}"#);
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    let Some(Value::Json(s)) = field(&b, &keys, "j") else {
        panic!("j is not a json value")
    };
    assert_eq!(b.bytes(s), br#"{"a": [1, 2.5, "x", null]}"#);
    // Brackets inside strings are not nesting, escaped quotes or not.
    let text = format!(r#"["\"{}", "\\", "{}"]"#, "[".repeat(200), "{".repeat(200));
    let mut b = batch(&format!("json {text}"));
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0, "{text}");
}

#[test]
fn a_json_value_nested_past_the_limit_fails_the_batch_and_one_at_the_limit_is_encoded() {
    let keys = KeyTable::new();
    let mut p = processor(&keys, OnError::DeadLetter);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let max = weir_wasm::MAX_JSON_DEPTH;
    let mut b = batch(&format!("json {}", nested(max)));
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    // What an output writes of it, one level deeper, is JSON that serde_json reads back.
    let mut out = Vec::new();
    JsonEncoder::new(keys.clone()).encode(&b, &mut out);
    let line: serde_json::Value = serde_json::from_slice(&out).expect("the encoded event is JSON");
    let mut depth = 0;
    let mut v = &line["j"];
    while let Some(inner) = v.as_array().and_then(|a| a.first()) {
        depth += 1;
        v = inner;
    }
    assert_eq!(depth + 1, max);

    for depth in [max + 1, 100_000] {
        let mut b = batch(&format!("json {}", nested(depth)));
        p.process(&mut b);
        assert_eq!(p.take_failures(), 1);
        let reason = dead_letter_reason(&b, &keys);
        assert!(
            reason.contains(&format!("nested deeper than {max} levels")),
            "{depth}: {reason}"
        );
    }
}

#[test]
fn a_new_key_name_past_the_limit_fails_the_batch() {
    let keys = KeyTable::new();
    let max = weir_wasm::MAX_KEY_BYTES;
    let mut p = processor(&keys, OnError::DeadLetter);
    let name = "k".repeat(max);
    let mut b = batch(&format!("key {name}"));
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(field(&b, &keys, &name), Some(Value::Int(1)));

    let long = "k".repeat(max + 1);
    let mut b = batch(&format!("key {long}"));
    p.process(&mut b);
    assert_eq!(p.take_failures(), 1);
    let reason = dead_letter_reason(&b, &keys);
    assert!(
        reason.contains(&format!("new key 0 is {} bytes long, over the limit of {max}", max + 1)),
        "{reason}"
    );
    assert_eq!(keys.get(&long), None, "never interned");
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn names_that_alias_one_string_cannot_make_the_host_copy_more_than_the_cap() {
    let keys = KeyTable::new();
    let mut p = processor(&keys, OnError::Pass);
    // N names of 1 MiB each, all the same bytes of a 4 MiB instance: the host would copy
    // N MiB. 64 MiB is within wasmtime's own default limit, not within the plugin's cap.
    for n in [64, 4096] {
        let mut b = batch(&format!("alias {n}"));
        p.process(&mut b);
        assert_eq!(p.take_failures(), 1);
        assert_eq!(b.live().count(), 1, "on_error: pass");
    }
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Memory), 2);
    assert!(peak_rss() < 1 << 30, "peak RSS {} bytes", peak_rss());
    // Two names, 2 MiB: copied, then refused as names too long.
    let mut b = batch("alias 2");
    p.process(&mut b);
    assert_eq!(p.plugin().stats().failures_of(FailureKind::BadEdits), 1);
}

#[test]
fn edits_that_would_take_too_long_to_apply_fail_the_batch() {
    let keys = KeyTable::new();
    let mut p = processor(&keys, OnError::DeadLetter);
    // 100 new fields, each set 4 times: the last value stays.
    let mut b = batch("spray 100");
    p.process(&mut b);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(field(&b, &keys, "k0000099"), Some(Value::Int(399)));
    assert_eq!(b.live().next().unwrap().fields().len(), 1 + 100);

    // 16,000 fields on one event, each set 4 times: 64,000 sets that each scan thousands of
    // fields, about a billion look-ups; refused before any is made.
    let start = Instant::now();
    let mut b = batch("spray 16000");
    p.process(&mut b);
    let took = start.elapsed();
    assert_eq!(p.take_failures(), 1);
    let reason = dead_letter_reason(&b, &keys);
    assert!(
        reason.contains("applying the 64000 ops could take")
            && reason.contains(&format!("over the limit of {}", weir_wasm::MAX_APPLY_STEPS)),
        "{reason}"
    );
    assert_eq!(dead_fields(&b), 2, "nothing applied: `message` and `_error` only");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// The number of fields of the only dead-lettered event.
fn dead_fields(b: &Batch) -> usize {
    b.dead_letters().next().unwrap().fields().len()
}
