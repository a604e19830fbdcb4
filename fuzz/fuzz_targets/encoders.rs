//! The JSON-lines and raw encoders (`engine/core/src/encode.rs`) against serde_json: every
//! line the JSON encoder writes is one object serde_json reads, with the event time first
//! (RFC 3339, read back by jiff to the same nanosecond) and every field in order, strings
//! decoding to the original bytes (invalid UTF-8 replaced as `from_utf8_lossy` does),
//! numbers to the same value and nested JSON to the same value; the dead-letter route gets
//! exactly the dead-lettered events; the raw encoder writes each `message` as it is; and
//! the fast paths for plain lines write what the general path writes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::encode::{Encoder, JsonEncoder, RawEncoder, Route};
use weir_core::line::{Chunk, LineOptions, split_lines};
use weir_core::model::{Batch, Buf, Key, KeyTable, Origin, Span, Value};
use weir_fuzz::Json;

#[derive(Arbitrary, Debug)]
enum AJ {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<AJ>),
    Obj(Vec<(String, AJ)>),
}

fn to_json(v: &AJ, depth: u32) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        _ if depth > 6 => J::Null,
        AJ::Null => J::Null,
        AJ::Bool(b) => J::Bool(*b),
        AJ::Int(i) => J::from(*i),
        AJ::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        AJ::Str(s) => J::String(s.clone()),
        AJ::Arr(a) => J::Array(a.iter().map(|x| to_json(x, depth + 1)).collect()),
        AJ::Obj(m) => J::Object(m.iter().map(|(k, x)| (k.clone(), to_json(x, depth + 1))).collect()),
    }
}

#[derive(Arbitrary, Debug)]
enum FV {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A span of the chunk: start and length, wrapped into it.
    ChunkStr(u16, u16),
    ArenaStr(Vec<u8>),
    Json(AJ),
}

#[derive(Arbitrary, Debug)]
struct Ev {
    /// The raw line: a span of the chunk.
    raw: (u16, u16),
    timestamp: Option<i64>,
    fields: Vec<(u8, FV)>,
    /// 0, 1: live; 2: dropped; 3: dead letter.
    state: u8,
}

#[derive(Arbitrary, Debug)]
struct Case {
    chunk: Vec<u8>,
    names: Vec<String>,
    events: Vec<Ev>,
    max_line_bytes: u16,
}

fn span_of(chunk_len: usize, (start, len): (u16, u16)) -> Span {
    if chunk_len == 0 {
        return Span::new(Buf::Chunk, 0, 0);
    }
    let start = usize::from(start) % chunk_len;
    let len = usize::from(len) % (chunk_len - start + 1);
    Span::new(Buf::Chunk, start, len)
}

/// The JSON serde_json reads from what a field must look like once encoded.
fn expected_value(batch: &Batch, value: Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::Num(i.into()),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Num),
        Value::Str(s) => Json::Str(String::from_utf8_lossy(batch.bytes(s)).into_owned()),
        Value::Json(s) => serde_json::from_slice(batch.bytes(s)).expect("the test wrote valid JSON"),
    }
}

fuzz_target!(|case: Case| {
    let keys = KeyTable::new();
    let names: Vec<Key> = std::iter::once("message")
        .chain(std::iter::once("timestamp"))
        .chain(case.names.iter().map(String::as_str))
        .take(16)
        .map(|n| keys.intern(n))
        .collect();
    let mut batch = Batch::new(case.chunk.clone(), Origin::default());
    let chunk_len = case.chunk.len();
    for ev in case.events.iter().take(32) {
        let mut event = batch.new_event(span_of(chunk_len, ev.raw));
        event.timestamp = ev.timestamp;
        for (name, value) in ev.fields.iter().take(8) {
            let key = names[*name as usize % names.len()];
            let value = match value {
                FV::Null => Value::Null,
                FV::Bool(b) => Value::Bool(*b),
                FV::Int(i) => Value::Int(*i),
                FV::Float(f) => Value::Float(*f),
                FV::ChunkStr(s, l) => Value::Str(span_of(chunk_len, (*s, *l))),
                FV::ArenaStr(bytes) => Value::Str(batch.push_arena(bytes)),
                FV::Json(j) => Value::Json(batch.push_arena(to_json(j, 0).to_string().as_bytes())),
            };
            event.set(key, value);
        }
        match ev.state % 4 {
            2 => event.mark_dropped(),
            3 => event.mark_dead_letter(),
            _ => {}
        }
        // Some events routed to one output (1 or 2), the others to all.
        event.set_route(u16::from(ev.state / 4 % 3));
        batch.push(event);
    }

    for route in [Route::Main, Route::Output(1), Route::Output(2), Route::DeadLetter] {
        let selected: Vec<_> = batch
            .events()
            .iter()
            .filter(|e| match route {
                Route::Main => e.is_live(),
                Route::Output(n) => e.is_live() && (e.route() == 0 || e.route() == n),
                Route::DeadLetter => e.is_dead_letter(),
            })
            .collect();
        let mut out = Vec::new();
        JsonEncoder::new(keys.clone()).encode_route(&batch, route, &mut out);
        let text = std::str::from_utf8(&out).expect("JSON output is UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), selected.len(), "one line per event");
        assert!(out.is_empty() || out.ends_with(b"\n"));
        for (line, event) in lines.iter().zip(&selected) {
            let got: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid JSON ({e}): {line}"));
            let Json::Obj(members) = got else {
                panic!("not an object: {line}")
            };
            let mut want = Vec::new();
            if let Some(ts) = event.timestamp {
                want.push(("timestamp".to_string(), None));
                let Json::Str(s) = &members[0].1 else {
                    panic!("timestamp is a string: {line}")
                };
                let read: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("RFC 3339 `{s}`: {e}"));
                assert_eq!(read.as_nanosecond(), i128::from(ts), "{s}");
            }
            for f in event.fields() {
                let name = keys.name(f.key).to_string();
                if event.timestamp.is_some() && name == "timestamp" {
                    continue;
                }
                want.push((name, Some(expected_value(&batch, f.value))));
            }
            assert_eq!(members.len(), want.len(), "members of {line}");
            for ((gk, gv), (wk, wv)) in members.iter().zip(&want) {
                assert_eq!(gk, wk, "{line}");
                if let Some(wv) = wv {
                    assert_eq!(gv, wv, "value of {wk} in {line}");
                }
            }
        }
        // Raw: `message` as it is, else its JSON, else the raw line.
        let mut raw = Vec::new();
        RawEncoder.encode_route(&batch, route, &mut raw);
        let mut want = Vec::new();
        for event in &selected {
            match event.get(Key::MESSAGE) {
                Some(Value::Str(s) | Value::Json(s)) => want.extend_from_slice(batch.bytes(s)),
                Some(v) => weir_core::encode::write_value(&mut want, &batch, v),
                None => want.extend_from_slice(batch.bytes(event.raw())),
            }
            want.push(b'\n');
        }
        assert_eq!(raw, want, "raw output");
    }

    // The plain-lines fast paths write what the general path writes for the same chunk.
    let max_line_bytes = usize::from(case.max_line_bytes % 512) + 1;
    let opts = LineOptions {
        max_line_bytes,
        skip_empty_lines: false,
    };
    let general = |encoder: &mut dyn Encoder| {
        let chunk = Chunk {
            data: case.chunk.clone(),
            offset: 0,
            first_continues_cut: false,
            is_cut_piece: false,
        };
        let (plain, _) = split_lines(chunk, &opts, 0, 0);
        let mut out = Vec::new();
        encoder.encode(&plain, &mut out);
        (out, plain.len() as u64)
    };
    let encoders: [Box<dyn Encoder>; 2] = [Box::new(JsonEncoder::new(KeyTable::new())), Box::new(RawEncoder)];
    for mut encoder in encoders {
        let mut fast = b"kept".to_vec();
        match encoder.encode_plain_lines(&case.chunk, max_line_bytes, &[], &mut fast) {
            Some(n) => {
                let (out, events) = general(&mut *encoder);
                assert_eq!(n, events, "events of the fast path");
                assert_eq!(&fast[4..], &out[..], "fast path output");
            }
            None => assert_eq!(fast, b"kept", "a refused chunk leaves the output as it was"),
        }
    }
});
