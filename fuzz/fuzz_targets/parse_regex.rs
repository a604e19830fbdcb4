//! `parse_regex` against plain regex-automata: for patterns built from the pieces the
//! field scanner compiles (runs of classes, literals, groups, alternations, optional
//! parts, `$`) and for arbitrary patterns, the parser (scanner when the pattern compiles
//! to it, else the one-pass DFA or `meta::Regex`) matches exactly when
//! `meta::Regex::search_captures` does, with the same group spans.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::{Input, PatternID};
use weir_core::model::{KeyTable, Value};
use weir_core::parse::regex::{EngineChoice, ParseRegexConfig};
use weir_core::pipeline::Processor;
use weir_fuzz::batch_of_lines;

const CLASSES: [&str; 14] = [
    r"\S", r"\d", r"\w", r#"[^"]"#, r"[^\]]", "[a-z]", ".", "a", "é", r"\s", "[0-9a-f]", "(?i:k)", "[^ ]", r"[\d.]",
];
const REPEATS: [&str; 8] = ["", "+", "*", "?", "{2}", "{1,3}", "{2,}", "{0,2}"];
const LITERALS: [&str; 12] = [" ", "-", "\"", r"\[", r"\]", "a", "é", "1", "GET", ":", "/", "k"];
/// Pieces of haystacks: the literals' and classes' characters, and awkward bytes.
const HAY: [&[u8]; 20] = [
    b" ",
    b"-",
    b"\"",
    b"[",
    b"]",
    b"a",
    "é".as_bytes(),
    b"1",
    b"GET",
    b":",
    b"/",
    b"k",
    b"K",
    b"z",
    b"\t",
    b"\xff",
    b"\xe9",
    "٣".as_bytes(),
    "\u{a0}".as_bytes(),
    b".",
];

#[derive(Arbitrary, Debug)]
enum Item {
    Lit(u8),
    Run { class: u8, repeat: u8, lazy: bool },
    Group { named: bool, body: Vec<Item> },
    Alt(Vec<Vec<Item>>),
    Opt(Vec<Item>),
    End,
}

#[derive(Arbitrary, Debug)]
struct Case {
    anchored: bool,
    items: Vec<Item>,
    /// An arbitrary pattern instead of the structured one.
    raw: Option<String>,
    /// Haystack pieces: below 200 an index into `HAY`, else the byte itself.
    hay: Vec<Vec<u8>>,
}

fn render(items: &[Item], depth: u32, groups: &mut u32, out: &mut String) {
    if depth > 4 {
        return;
    }
    for item in items {
        match item {
            Item::Lit(i) => out.push_str(LITERALS[*i as usize % LITERALS.len()]),
            Item::Run { class, repeat, lazy } => {
                out.push_str(CLASSES[*class as usize % CLASSES.len()]);
                let r = REPEATS[*repeat as usize % REPEATS.len()];
                out.push_str(r);
                if *lazy && !r.is_empty() {
                    out.push('?');
                }
            }
            Item::Group { named, body } => {
                *groups += 1;
                if *named {
                    out.push_str(&format!("(?P<n{groups}>"));
                } else {
                    out.push('(');
                }
                render(body, depth + 1, groups, out);
                out.push(')');
            }
            Item::Alt(branches) => {
                *groups += 1;
                out.push('(');
                for (i, b) in branches.iter().take(4).enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    render(b, depth + 1, groups, out);
                }
                out.push(')');
            }
            Item::Opt(body) => {
                out.push_str("(?:");
                render(body, depth + 1, groups, out);
                out.push_str(")?");
            }
            Item::End => out.push('$'),
        }
    }
}

fuzz_target!(|case: Case| {
    let pattern = match case.raw {
        Some(p) if p.len() < 200 => p,
        Some(_) => return,
        None => {
            let mut p = String::from(if case.anchored { "^" } else { "" });
            render(&case.items, 0, &mut 0, &mut p);
            p
        }
    };
    let Ok(regex) = meta::Regex::new(&pattern) else {
        return;
    };
    let groups = regex.group_info().group_len(PatternID::ZERO);
    if groups > 40 {
        return;
    }
    let names: Vec<String> = (1..groups).map(|i| format!("g{i}")).collect();
    let config = ParseRegexConfig {
        field: "message".into(),
        pattern: pattern.clone(),
        keys: Some(names.clone()),
        keep_source: false,
        on_failure: Default::default(),
        error_field: None,
    };
    let keys = KeyTable::new();
    let mut parsers = vec![config.build(&keys).expect("a pattern meta::Regex takes builds")];
    // The scanner, when the pattern compiles to it, and the one-pass DFA, when it is one:
    // each is checked, whatever `Auto` picks.
    for choice in [EngineChoice::Scanner, EngineChoice::OnePass] {
        if let Ok(p) = config.with_engine(&keys, choice) {
            parsers.push(p);
        }
    }
    let name_keys: Vec<_> = names.iter().map(|n| keys.intern(n)).collect();

    let mut text = Vec::new();
    for (i, line) in case.hay.iter().take(8).enumerate() {
        if i > 0 {
            text.push(b'\n');
        }
        for &b in line {
            if (b as usize) < 200 {
                text.extend_from_slice(HAY[b as usize % HAY.len()]);
            } else if b != b'\n' {
                text.push(b);
            }
        }
    }
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let mut caps = Captures::all(regex.group_info().clone());
    let expected: Vec<Option<Vec<(usize, Vec<u8>)>>> = lines
        .iter()
        .map(|line| {
            regex.search_captures(&Input::new(line), &mut caps);
            caps.is_match().then(|| {
                (1..groups)
                    .filter_map(|g| caps.get_group(g).map(|s| (g - 1, line[s.range()].to_vec())))
                    .collect()
            })
        })
        .collect();

    for mut parser in parsers {
        let engine = parser.parser().engine_name();
        let mut batch = batch_of_lines(&text);
        parser.process(&mut batch);
        let mut failures = 0;
        for (i, want) in expected.iter().enumerate() {
            let event = &batch.events()[i];
            let got: Option<Vec<(usize, Vec<u8>)>> = if event.get(weir_core::model::Key::MESSAGE).is_some() {
                failures += 1;
                None
            } else {
                Some(
                    event
                        .fields()
                        .iter()
                        .map(|f| {
                            let g = name_keys.iter().position(|k| *k == f.key).expect("a group's key");
                            let Value::Str(s) = f.value else {
                                panic!("a group is a string")
                            };
                            (g, batch.bytes(s).to_vec())
                        })
                        .collect(),
                )
            };
            assert_eq!(
                &got,
                want,
                "engine {engine}, pattern {pattern:?}, line {:?}",
                String::from_utf8_lossy(lines[i])
            );
        }
        assert_eq!(parser.take_failures(), failures, "engine {engine}: failures counted");
    }
});
