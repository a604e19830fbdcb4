//! `parse_json` in every mode against serde_json: the same lines are valid or invalid for
//! both, and a valid object gives the fields serde_json reads (flattened with `flatten`),
//! in order, with `keep_source`, `on_failure` and `error_field` applied as documented.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::model::{Key, KeyTable, Value};
use weir_core::parse::OnFailure;
use weir_core::parse::json::ParseJsonConfig;
use weir_core::pipeline::Processor;
use weir_fuzz::{Json, batch_of_lines, encode_and_read, set};

#[derive(Arbitrary, Debug)]
struct Case {
    /// Index into a few separators; `None`: no flatten.
    flatten: Option<u8>,
    keep_source: bool,
    on_failure: u8,
    error_field: bool,
    /// Parse a field other than `message`, copied into the arena (the path where the
    /// parser reads a copy of its input).
    from_arena: bool,
    /// Lines, `\n`-separated: one event each, through one parser (its key caches carry
    /// from event to event).
    text: Vec<u8>,
}

const SEPARATORS: [&str; 4] = [".", "_", "::", "é"];

/// Over this depth serde_json refuses (128) and weir has its own bound: no comparison.
const DEPTH_COMPARED: usize = 100;

fuzz_target!(|case: Case| {
    let flatten = case.flatten.map(|i| SEPARATORS[i as usize % SEPARATORS.len()]);
    let on_failure = [OnFailure::Keep, OnFailure::Drop, OnFailure::DeadLetter][case.on_failure as usize % 3];
    let field = if case.from_arena { "payload" } else { "message" };
    let config = ParseJsonConfig {
        field: field.into(),
        flatten: flatten.map(String::from),
        keep_source: case.keep_source,
        on_failure,
        error_field: case.error_field.then(|| "why".to_string()),
    };
    let keys = KeyTable::new();
    let mut parser = config.build(&keys).expect("a valid config builds");
    let mut batch = batch_of_lines(&case.text);
    let source = keys.intern(field);
    if case.from_arena {
        // The field's bytes are the line's, copied into the arena; `message` stays.
        let lines: Vec<Vec<u8>> = case.text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        for (i, line) in lines.iter().enumerate() {
            let span = batch.push_arena(line);
            let (_, events) = batch.parts_mut();
            events[i].set(source, Value::Str(span));
        }
    }
    parser.process(&mut batch);
    let failures = parser.take_failures();

    let lines: Vec<&[u8]> = case.text.split(|&b| b == b'\n').collect();
    let mut expected_failures = 0;
    let error_name = match (case.error_field, on_failure) {
        (true, _) => Some("why"),
        (false, OnFailure::DeadLetter) => Some("_error"),
        (false, _) => None,
    };
    let mut expected_live = Vec::new();
    let mut compared = true;
    for (i, line) in lines.iter().enumerate() {
        let event = &batch.events()[i];
        let parsed: Result<Json, serde_json::Error> = serde_json::from_slice(line);
        match parsed {
            Ok(Json::Obj(members)) if Json::Obj(members.clone()).depth() <= DEPTH_COMPARED => {
                assert!(
                    event.is_live(),
                    "event {i}: a valid object is not a failure: {:?}",
                    String::from_utf8_lossy(line)
                );
                // What the event must hold: `message` (and the arena copy), then the members.
                let mut fields: Vec<(String, Json)> = Vec::new();
                let text = |b: &[u8]| Json::Str(String::from_utf8_lossy(b).into_owned());
                fields.push(("message".into(), text(line)));
                if case.from_arena {
                    fields.push(("payload".into(), text(line)));
                }
                if !case.keep_source {
                    fields.retain(|(k, _)| k != field);
                }
                let mut flat = Vec::new();
                flatten_into(&members, flatten, None, &mut flat);
                for (k, v) in flat {
                    set(&mut fields, &k, v);
                }
                expected_live.push(Json::Obj(fields));
            }
            // Deep objects (either answer is fair here; the depth bound has its own tests)
            // and serde_json's own limits (nesting 128, floats past f64): no verdict.
            Ok(Json::Obj(_)) => compared = false,
            Err(e) if e.to_string().contains("recursion limit") || e.to_string().contains("out of range") => {
                compared = false
            }
            other => {
                // Invalid JSON, or valid JSON that is not an object: a counted failure.
                expected_failures += 1;
                let why = other
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "not an object".into());
                match on_failure {
                    OnFailure::Keep => assert!(event.is_live(), "event {i} kept"),
                    OnFailure::Drop => assert!(event.is_dropped(), "event {i} dropped"),
                    OnFailure::DeadLetter => assert!(event.is_dead_letter(), "event {i} dead-lettered"),
                }
                assert_eq!(
                    weir_fuzz::str_field(&batch, i, Key::MESSAGE).as_deref(),
                    Some(*line),
                    "event {i}: a failure leaves the source as it was (serde_json: {why})"
                );
                if let Some(name) = error_name {
                    let reason = weir_fuzz::str_field(&batch, i, keys.intern(name)).expect("the error field is set");
                    assert!(reason.starts_with(b"parse_json: "), "reason names the parser");
                } else {
                    assert_eq!(
                        event.fields().len(),
                        1 + usize::from(case.from_arena),
                        "event {i} unchanged ({why})"
                    );
                }
                if event.is_live() {
                    let mut fields = vec![(
                        "message".to_string(),
                        Json::Str(String::from_utf8_lossy(line).into_owned()),
                    )];
                    if case.from_arena {
                        fields.push(("payload".into(), Json::Str(String::from_utf8_lossy(line).into_owned())));
                    }
                    if let Some(name) = error_name {
                        let reason = weir_fuzz::str_field(&batch, i, keys.intern(name)).unwrap();
                        fields.push((name.into(), Json::Str(String::from_utf8(reason).unwrap())));
                    }
                    expected_live.push(Json::Obj(fields));
                }
            }
        }
    }
    if !compared {
        // Deeper than serde_json reads back: the output check would test serde_json.
        return;
    }
    assert_eq!(failures, expected_failures, "failures counted");
    let out = encode_and_read(&batch, &keys);
    assert_eq!(out.len(), expected_live.len(), "live events");
    for (got, want) in out.iter().zip(&expected_live) {
        assert_eq!(got, want);
    }
});

/// The fields of an object's members: with a separator, nested objects become
/// `outer<sep>inner` names (an empty nested object gives none); arrays stay as they are.
/// `prefix` is `None` at the top level (a nested object under an empty name has the
/// prefix `Some("")`, and its members are named `<sep>inner`).
fn flatten_into(members: &[(String, Json)], sep: Option<&str>, prefix: Option<&str>, out: &mut Vec<(String, Json)>) {
    for (name, value) in members {
        let full = match prefix {
            None => name.clone(),
            Some(p) => format!("{p}{}{name}", sep.unwrap_or_default()),
        };
        match (value, sep) {
            (Json::Obj(inner), Some(_)) => flatten_into(inner, sep, Some(&full), out),
            _ => out.push((full, value.clone())),
        }
    }
}
