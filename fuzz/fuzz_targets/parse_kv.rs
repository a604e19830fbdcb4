//! `parse_kv` against a model written from its documentation (module docs of
//! `engine/core/src/parse/kv.rs`): pairs split by `field_split` (runs count as one), a key
//! from its value by the first `value_split`, quoted values with `\"` and `\\` escapes,
//! bare keys `true`, an empty key or a bad quote a failure; names get the prefix, and a
//! repeated name keeps its first place and its last value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::model::{KeyTable, Value};
use weir_core::parse::kv::ParseKvConfig;
use weir_core::pipeline::Processor;
use weir_fuzz::batch_of_lines;

#[derive(Arbitrary, Debug)]
struct Case {
    field_split: u8,
    value_split: u8,
    quote: u8,
    prefix: bool,
    keep_source: bool,
    text: Vec<u8>,
}

const FIELD_SPLITS: [&str; 5] = [" ", "&", ", ", "||", "\t"];
const VALUE_SPLITS: [&str; 4] = ["=", ":", "=>", "é"];
const QUOTES: [&str; 3] = ["\"", "'", ""];

#[derive(Debug, PartialEq, Clone)]
enum V {
    True,
    Str(Vec<u8>),
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> usize {
    (from..hay.len())
        .find(|&i| hay[i..].starts_with(needle))
        .unwrap_or(hay.len())
}

/// The pairs of `line`, or `None` when it does not parse.
fn model(line: &[u8], fs: &[u8], vs: &[u8], quote: Option<u8>) -> Option<Vec<(Vec<u8>, V)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while line[pos..].starts_with(fs) {
            pos += fs.len();
        }
        if pos >= line.len() {
            return Some(out);
        }
        let f = find(line, fs, pos);
        let v = find(line, vs, pos);
        if f <= v {
            out.push((line[pos..f].to_vec(), V::True));
            pos = f;
            continue;
        }
        if v == pos {
            return None;
        }
        let key = line[pos..v].to_vec();
        pos = v + vs.len();
        match quote {
            Some(q) if line.get(pos) == Some(&q) => {
                let mut value = Vec::new();
                let mut i = pos + 1;
                loop {
                    match *line.get(i)? {
                        b if b == q => break,
                        b'\\' => {
                            let next = *line.get(i + 1)?;
                            if next == q || next == b'\\' {
                                value.push(next);
                                i += 2;
                            } else {
                                value.push(b'\\');
                                i += 1;
                            }
                        }
                        b => {
                            value.push(b);
                            i += 1;
                        }
                    }
                }
                pos = i + 1;
                if pos < line.len() && !line[pos..].starts_with(fs) {
                    return None;
                }
                out.push((key, V::Str(value)));
            }
            _ => {
                let end = find(line, fs, pos);
                out.push((key, V::Str(line[pos..end].to_vec())));
                pos = end;
            }
        }
    }
}

fuzz_target!(|case: Case| {
    let fs = FIELD_SPLITS[case.field_split as usize % FIELD_SPLITS.len()];
    let vs = VALUE_SPLITS[case.value_split as usize % VALUE_SPLITS.len()];
    let quote = QUOTES[case.quote as usize % QUOTES.len()];
    let prefix = if case.prefix { "kv_" } else { "" };
    let config = ParseKvConfig {
        field: "message".into(),
        keep_source: case.keep_source,
        on_failure: Default::default(),
        error_field: None,
        field_split: fs.into(),
        value_split: vs.into(),
        quote: quote.into(),
        prefix: case.prefix.then(|| prefix.to_string()),
    };
    let keys = KeyTable::new();
    let mut parser = config.build(&keys).expect("valid settings build");
    let mut batch = batch_of_lines(&case.text);
    parser.process(&mut batch);
    let mut failures = 0;
    for (i, line) in case.text.split(|&b| b == b'\n').enumerate() {
        let event = &batch.events()[i];
        let got: Vec<(String, V)> = event
            .fields()
            .iter()
            .map(|f| {
                let v = match f.value {
                    Value::Bool(true) => V::True,
                    Value::Str(s) => V::Str(batch.bytes(s).to_vec()),
                    other => panic!("unexpected value {other:?}"),
                };
                (keys.name(f.key).to_string(), v)
            })
            .collect();
        let want = match model(line, fs.as_bytes(), vs.as_bytes(), quote.bytes().next()) {
            None => {
                failures += 1;
                vec![("message".to_string(), V::Str(line.to_vec()))]
            }
            Some(pairs) => {
                let mut fields = Vec::new();
                if case.keep_source {
                    fields.push(("message".to_string(), V::Str(line.to_vec())));
                }
                for (k, v) in pairs {
                    weir_fuzz::set(&mut fields, &format!("{prefix}{}", String::from_utf8_lossy(&k)), v);
                }
                fields
            }
        };
        assert_eq!(got, want, "line {:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(parser.take_failures(), failures);
});
