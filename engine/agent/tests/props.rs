//! Property tests over the whole stage chain (in memory, as `weir run` runs it):
//! no processor panics or errors on arbitrary bytes, and framing (multiline, container
//! partial lines) gives the same events however the input is cut into reads and chunks.
//! Bounded in cases so the suite stays fast.

use proptest::prelude::*;
use weir::config::registry::ProcessorConfig;
use weir::config::{Loaded, parse};
use weir::runtime::run_in_memory;

fn loaded(yaml: &str) -> Loaded {
    let config = parse(yaml).unwrap_or_else(|(pos, msg)| panic!("{pos:?} {msg}\n{yaml}"));
    Loaded {
        file: "prop.yaml".into(),
        config,
        text: yaml.to_string(),
    }
}

/// Output lines of the first output; each must be a JSON object.
fn run(l: &Loaded, input: &[u8], cuts: &[usize], chunk: usize) -> Vec<u8> {
    let (outputs, _) = run_in_memory(l, input, cuts, chunk).expect("a run never fails on input bytes");
    for line in outputs[0].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("output is JSON");
        assert!(v.is_object());
    }
    outputs[0].clone()
}

/// Every processor type, with its example config and a few more demanding ones.
fn processor_pipelines() -> Vec<Loaded> {
    let mut configs: Vec<String> = ProcessorConfig::examples()
        .into_iter()
        .map(|(ty, example)| {
            let body: String = example.lines().map(|l| format!("    {l}\n")).collect();
            format!("  - type: {ty}\n{body}")
        })
        .collect();
    configs.extend([
        "  - type: parse_json\n    flatten: \".\"\n    field: message\n".to_string(),
        "  - type: parse_delimiter\n    keys: [a, b]\n    separator: \"||\"\n    overflow: keep\n".to_string(),
        "  - type: parse_kv\n    prefix: kv_\n".to_string(),
        "  - type: parse_timestamp\n    field: message\n    format: rfc3339\n".to_string(),
        "  - type: mask\n    pattern: '\\d+'\n    hash: sha256\n".to_string(),
    ]);
    configs
        .into_iter()
        .map(|p| {
            loaded(&format!(
                "inputs:\n  - type: stdin\n    max_line_bytes: 64\nprocessors:\n{p}outputs:\n  - type: stdout\n"
            ))
        })
        .collect()
}

fn bytes_with_structure() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"{"[..],
        b"}",
        b"\"",
        b"\\",
        b":",
        b",",
        b"=",
        b" ",
        b"\n",
        b"\r\n",
        b"a",
        b"key",
        b"42",
        b"-1.5e3",
        b"true",
        b"null",
        b"[",
        b"]",
        b"\xff",
        b"\xc3\xa9",
        b"2026-11-25T10:00:00Z",
        b"||",
        b"\t",
    ]);
    prop::collection::vec(pieces, 0..80).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_processor_panics_on_any_bytes(input in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        bytes_with_structure(),
    ]) {
        for pipeline in processor_pipelines() {
            run(&pipeline, &input, &[], 1 << 20);
            run(&pipeline, &input, &[input.len() / 2], 7);
        }
    }
}

/// Lines for multiline inputs: starts, continuations, ends, blanks, CRLF, long lines.
fn multiline_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::sample::select(vec![
        "2026-11-25 start",
        "\tat frame",
        "  indented",
        "END",
        "plain",
        "",
        "java.lang.Error: x",
        "Caused by: y",
        "a-very-long-line-that-gets-cut-by-the-small-max-line-bytes-setting",
    ]);
    (prop::collection::vec((line, any::<bool>()), 0..40), any::<bool>()).prop_map(|(lines, last_nl)| {
        let mut out = Vec::new();
        for (i, (l, crlf)) in lines.iter().enumerate() {
            out.extend_from_slice(l.as_bytes());
            if i + 1 < lines.len() || last_nl {
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
        out
    })
}

/// CRI or Docker lines, stdout and stderr interleaved, with partials; some garbage. A
/// Docker partial is joined only when it is a full 16 KiB piece: some are.
fn container_text(docker: bool) -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["hello", "", "at x", "2026-11-25 s", "é \"q\""]),
        any::<u8>(),
    );
    prop::collection::vec(entry, 0..30).prop_map(move |entries| {
        let mut out = String::new();
        for (i, (stderr, partial, text, junk)) in entries.into_iter().enumerate() {
            if junk < 8 {
                out.push_str("garbage line\n");
                continue;
            }
            let stream = if stderr { "stderr" } else { "stdout" };
            let time = format!("2026-11-25T10:00:{:02}.{:03}Z", i % 60, i);
            if docker {
                let text = if partial && junk < 40 {
                    "x".repeat(weir_core::frame::DOCKER_PIECE_BYTES)
                } else {
                    text.to_string()
                };
                let log = serde_json::to_string(&format!("{text}{}", if partial { "" } else { "\n" })).unwrap();
                out.push_str(&format!(
                    "{{\"log\":{log},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n"
                ));
            } else {
                out.push_str(&format!("{time} {stream} {} {text}\n", if partial { "P" } else { "F" }));
            }
        }
        out.into_bytes()
    })
}

fn same_whatever_the_chunking(pipeline: &Loaded, input: &[u8], cuts: &[usize]) {
    let whole = run(pipeline, input, &[], 1 << 20);
    let mut sorted: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    sorted.sort_unstable();
    for chunk in [7, 64, 1 << 20] {
        assert_eq!(
            run(pipeline, input, &sorted, chunk),
            whole,
            "chunk {chunk}, cuts {sorted:?}"
        );
    }
    let every_byte: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(pipeline, input, &every_byte, 7), whole, "one byte per read");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn multiline_is_independent_of_chunking(
        input in multiline_text(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        rules in prop::sample::select(vec![
            "{ start: '\\d{4}-' }",
            "{ start: '\\d{4}-', continue: '\\s|java|Caused' }",
            "{ start: '\\d{4}-', end: 'END', unmatched: discard }",
            "{ continue: '\\s' , max_lines: 3 }",
            "{ end: 'END', max_bytes: 40 }",
            "{ preset: java }",
        ]),
    ) {
        let p = loaded(&format!(
            "inputs:\n  - type: stdin\n    max_line_bytes: 32\n    multiline: {rules}\noutputs:\n  - type: stdout\n"
        ));
        same_whatever_the_chunking(&p, &input, &cuts);
    }

    #[test]
    fn container_joining_is_independent_of_chunking(
        (docker, input) in any::<bool>().prop_flat_map(|docker| (Just(docker), container_text(docker))),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        multiline in any::<bool>(),
        // Small enough that two joined Docker pieces pass it.
        capped in any::<bool>(),
    ) {
        let format = if docker { "docker" } else { "cri" };
        let ml = if multiline { "\n    multiline: { start: '\\d{4}-' }" } else { "" };
        let cap = if capped { "\n    max_line_bytes: 20000" } else { "" };
        let p = loaded(&format!(
            "inputs:\n  - type: stdin\n    format: {format}{ml}{cap}\noutputs:\n  - type: stdout\n"
        ));
        same_whatever_the_chunking(&p, &input, &cuts);
    }
}
