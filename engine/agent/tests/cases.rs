//! The data-driven processor suite: every `testdata/cases/<processor>/*.yaml` runs through
//! the same stages as `weir run` (in memory), at read sizes of 1 byte, 7 bytes and 64 KiB,
//! at chunk sizes of 7 bytes and 1 MiB, and at every single split point of its input
//! (sampled for long inputs), and must give the expected events every time.
//!
//! A case file:
//! ```yaml
//! description: what the case shows
//! source: { skip_empty_lines: true }   # optional: options of the stdin input
//! processors: [ ... ]                  # as in a pipeline file
//! text: |                              # the input
//!   ...
//! expected: |                          # one JSON object per output event, in order
//!   {...}
//! dead_letter: |                       # optional: events expected at the dead-letter output
//!   {...}
//! failures: 0                          # optional: total failures counted by the processors
//! input: { format_errors: 1 }           # optional: the input's counters named here
//! ```
//!
//! `WEIR_CASES=multiline cargo test -p weir --test cases` runs only the matching cases.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use weir::config::{Loaded, parse};
use weir::runtime::run_in_memory;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default)]
    source: Option<serde_json::Map<String, serde_json::Value>>,
    processors: serde_json::Value,
    text: String,
    expected: String,
    #[serde(default)]
    dead_letter: Option<String>,
    #[serde(default)]
    failures: Option<u64>,
    #[serde(default)]
    input: std::collections::BTreeMap<String, u64>,
}

/// The input counter `name` of a run's summary.
fn input_counter(i: &weir::runtime::InputSummary, name: &str) -> u64 {
    match name {
        "lines_cut" => i.lines_cut,
        "empty_skipped" => i.empty_skipped,
        "records_cut" => i.records_cut,
        "unmatched_discarded" => i.unmatched_discarded,
        "format_errors" => i.format_errors,
        "bad_times" => i.bad_times,
        "unfinished_messages" => i.unfinished_messages,
        other => panic!("no input counter `{other}`"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn json_lines(text: &str, what: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad JSON line {l:?}: {e}")))
        .collect()
}

fn load(path: &Path) -> (Case, Loaded) {
    let text = std::fs::read_to_string(path).unwrap();
    let case: Case = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut stdin = serde_json::json!({ "type": "stdin" });
    if let Some(opts) = &case.source {
        stdin.as_object_mut().unwrap().extend(opts.clone());
    }
    let mut pipeline = serde_json::json!({
        "inputs": [stdin],
        "processors": case.processors,
        "outputs": [{ "type": "stdout", "format": "json" }],
    });
    if case.dead_letter.is_some() {
        pipeline["outputs"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "stdout", "name": "dl"}));
        pipeline["dead_letter"] = "dl".into();
    }
    // JSON is YAML: the pipeline goes through the same parser as a pipeline file.
    let config = parse(&pipeline.to_string()).unwrap_or_else(|(pos, msg)| panic!("{}: {pos:?} {msg}", path.display()));
    (
        case,
        Loaded {
            file: path.to_path_buf(),
            config,
            text: String::new(),
        },
    )
}

fn check_run(path: &Path, case: &Case, loaded: &Loaded, cuts: &[usize], chunk_bytes: usize, how: &str) {
    let (outputs, summary) = run_in_memory(loaded, case.text.as_bytes(), cuts, chunk_bytes)
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let got = json_lines(std::str::from_utf8(&outputs[0]).unwrap(), "output");
    let want = json_lines(&case.expected, "expected");
    assert_eq!(
        got,
        want,
        "{} ({}) {how}: main output differs",
        path.display(),
        case.description
    );
    if let Some(dl) = &case.dead_letter {
        let got = json_lines(std::str::from_utf8(&outputs[1]).unwrap(), "dead letter");
        assert_eq!(
            got,
            json_lines(dl, "dead_letter"),
            "{} {how}: dead-letter output differs",
            path.display()
        );
    }
    if let Some(want) = case.failures {
        let failures: u64 = summary.processors.iter().map(|(_, s)| s.failures).sum();
        assert_eq!(failures, want, "{} {how}: failures", path.display());
    }
    for (name, want) in &case.input {
        let got = input_counter(&summary.inputs[0], name);
        assert_eq!(got, *want, "{} {how}: input counter {name}", path.display());
    }
}

#[test]
fn every_case_at_every_chunking() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in std::fs::read_dir(root().join("testdata/cases")).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yaml") {
                files.push(f);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty());
    // WEIR_CASES=multiline runs only the cases whose path contains that text.
    if let Ok(only) = std::env::var("WEIR_CASES") {
        files.retain(|f| f.to_string_lossy().contains(&only));
    }
    for path in &files {
        let (case, loaded) = load(path);
        let len = case.text.len();
        for step in [1, 7, 64 << 10] {
            let cuts: Vec<usize> = (step..len).step_by(step).collect();
            for chunk_bytes in [7, 1 << 20] {
                check_run(
                    path,
                    &case,
                    &loaded,
                    &cuts,
                    chunk_bytes,
                    &format!("read size {step}, chunk {chunk_bytes}"),
                );
            }
        }
        // Every split point (at most 300 of them, spread over the input).
        let stride = (len / 300).max(1);
        for at in (0..=len).step_by(stride) {
            check_run(path, &case, &loaded, &[at], 1 << 20, &format!("split at {at}"));
        }
    }
}
