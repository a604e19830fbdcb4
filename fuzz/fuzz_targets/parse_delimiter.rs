//! `parse_delimiter` against a model written from its documentation (module and config
//! docs of `engine/core/src/parse/delimiter.rs`): columns split by `separator`, a column
//! that starts with `quote` runs to its closing quote with doubled quotes for one, `trim`
//! removes spaces around values, and `overflow` extends, keeps or discards the columns
//! past the keys.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::model::{KeyTable, Value};
use weir_core::parse::delimiter::{Overflow, ParseDelimiterConfig};
use weir_core::pipeline::Processor;
use weir_fuzz::batch_of_lines;

#[derive(Arbitrary, Debug)]
struct Case {
    separator: u8,
    quote: u8,
    keys: u8,
    overflow: u8,
    trim: bool,
    keep_source: bool,
    text: Vec<u8>,
}

const SEPARATORS: [&str; 5] = [",", "|", "||", "\t", " , "];
const QUOTES: [&str; 3] = ["\"", "'", ""];
const NAMES: [&str; 4] = ["a", "b", "message", "d"];

/// One column starting at `pos`: its value and where the next one starts.
fn column(line: &[u8], pos: usize, sep: &[u8], quote: Option<u8>, trim: bool) -> Option<(Vec<u8>, Option<usize>)> {
    let is_sep = |at: usize| line[at..].starts_with(sep);
    let skip = |mut at: usize| {
        while at < line.len() && line[at] == b' ' && !is_sep(at) {
            at += 1;
        }
        at
    };
    if let Some(q) = quote {
        let at = if trim { skip(pos) } else { pos };
        if line.get(at) == Some(&q) {
            let mut value = Vec::new();
            let mut i = at + 1;
            loop {
                let b = *line.get(i)?;
                if b == q {
                    if line.get(i + 1) == Some(&q) {
                        value.push(q);
                        i += 2;
                        continue;
                    }
                    break;
                }
                value.push(b);
                i += 1;
            }
            let mut after = i + 1;
            if trim {
                after = skip(after);
            }
            return if after == line.len() {
                Some((value, None))
            } else if is_sep(after) {
                Some((value, Some(after + sep.len())))
            } else {
                None
            };
        }
    }
    let end = (pos..line.len()).find(|&i| is_sep(i));
    let (mut from, mut to) = (pos, end.unwrap_or(line.len()));
    if trim {
        while from < to && line[from] == b' ' {
            from += 1;
        }
        while to > from && line[to - 1] == b' ' {
            to -= 1;
        }
    }
    Some((line[from..to].to_vec(), end.map(|e| e + sep.len())))
}

fn model(
    line: &[u8],
    names: &[&str],
    sep: &[u8],
    quote: Option<u8>,
    trim: bool,
    overflow: Overflow,
) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut n = 0;
    loop {
        if n >= names.len() && overflow == Overflow::Discard {
            return Some(out);
        }
        let (value, next) = column(line, pos, sep, quote, trim)?;
        let name = names
            .get(n)
            .map_or_else(|| format!("_column{}", n + 1), |s| s.to_string());
        if n + 1 == names.len() && next.is_some() && overflow == Overflow::Keep {
            out.push((name, line[pos..].to_vec()));
            return Some(out);
        }
        out.push((name, value));
        match next {
            Some(p) => pos = p,
            None => return Some(out),
        }
        n += 1;
    }
}

fuzz_target!(|case: Case| {
    let sep = SEPARATORS[case.separator as usize % SEPARATORS.len()];
    let quote = QUOTES[case.quote as usize % QUOTES.len()];
    let names = &NAMES[..1 + case.keys as usize % NAMES.len()];
    let overflow = [Overflow::Extend, Overflow::Keep, Overflow::Discard][case.overflow as usize % 3];
    let config = ParseDelimiterConfig {
        field: "message".into(),
        keep_source: case.keep_source,
        on_failure: Default::default(),
        error_field: None,
        separator: sep.into(),
        quote: quote.into(),
        keys: names.iter().map(|s| s.to_string()).collect(),
        overflow,
        trim: case.trim,
    };
    let keys = KeyTable::new();
    let mut parser = config.build(&keys).expect("valid settings build");
    let mut batch = batch_of_lines(&case.text);
    parser.process(&mut batch);
    let mut failures = 0;
    for (i, line) in case.text.split(|&b| b == b'\n').enumerate() {
        let event = &batch.events()[i];
        let got: Vec<(String, Vec<u8>)> = event
            .fields()
            .iter()
            .map(|f| {
                let Value::Str(s) = f.value else {
                    panic!("a column is a string")
                };
                (keys.name(f.key).to_string(), batch.bytes(s).to_vec())
            })
            .collect();
        let want = match model(line, names, sep.as_bytes(), quote.bytes().next(), case.trim, overflow) {
            None => {
                failures += 1;
                vec![("message".to_string(), line.to_vec())]
            }
            Some(columns) => {
                let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
                if case.keep_source {
                    fields.push(("message".into(), line.to_vec()));
                }
                for (k, v) in columns {
                    weir_fuzz::set(&mut fields, &k, v);
                }
                fields
            }
        };
        assert_eq!(got, want, "line {:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(parser.take_failures(), failures);
});
