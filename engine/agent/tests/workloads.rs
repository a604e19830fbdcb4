//! Every shipped workload (`perf/workloads/*.yaml`) over a small corpus of its kind, run in
//! memory through the same stages as `weir run`: no processor failure, no line outside the
//! input's format, no cut record, and exactly the expected number of events. Together the
//! workloads cover every corpus kind, so this checks that every generator's output goes
//! through its matching pipeline cleanly.

use weir::config::{Loaded, parse};
use weir::runtime::run_in_memory;
use weir_perf::corpus::{KINDS, by_name};
use weir_perf::workload::{Expect, KafkaRole, default_dir, load_dir};

/// The Kafka workloads' placeholders (nothing connects in memory).
const KAFKA: &[(&str, &str)] = &[("bootstrap", "127.0.0.1:9"), ("topic", "logs"), ("group", "bench")];

/// Where the plugin workloads' plugins are: those the tests build.
fn plugins_dir() -> String {
    let filter = std::path::Path::new(weir_test_plugins::FILTER);
    filter.parent().unwrap().to_str().unwrap().to_string()
}

#[test]
fn every_generator_through_its_workload() {
    let workloads = load_dir(&default_dir()).unwrap();
    for (kind, _) in KINDS {
        assert!(
            workloads.iter().any(|w| w.corpus == *kind),
            "no workload reads `{kind}`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for w in &workloads {
        if w.kafka == Some(KafkaRole::Consume) {
            // It reads a topic, not the corpus: tests/bench.rs runs it against a broker.
            continue;
        }
        if w.send.is_some() {
            // It listens for the corpus: tests/bench.rs runs it with the harness sending.
            continue;
        }
        if !w.exec.is_empty() {
            // It reads a child's output: tests/bench.rs runs it under `weir run --exec`.
            continue;
        }
        let corpus = by_name(&w.corpus).unwrap()(2 << 20, 11);
        let input = dir.path().join(format!("{}.log", w.corpus));
        std::fs::write(&input, &corpus.data).unwrap();
        let output = dir.path().join(format!("{}.out", w.name));
        let plugins = plugins_dir();
        let mut more = KAFKA.to_vec();
        more.push(("plugins", plugins.as_str()));
        let config =
            parse(&w.pipeline(&input, &output, &more)).unwrap_or_else(|(pos, msg)| panic!("{}: {pos:?} {msg}", w.name));
        let loaded = Loaded {
            file: w.path.clone(),
            config,
            text: String::new(),
        };
        let want = w.expect.count(&input, corpus.lines).unwrap();
        assert!(want > 0, "{}: expects no event", w.name);
        if w.expect == Expect::Records {
            assert_eq!(want, corpus.lines);
        }
        // Chunks of 64 KiB: records and partial lines cross chunk boundaries.
        let (outputs, summary) =
            run_in_memory(&loaded, &corpus.data, &[], 64 << 10).unwrap_or_else(|e| panic!("{}: {e:#}", w.name));
        let failures: u64 = summary.processors.iter().map(|(_, s)| s.failures).sum();
        assert_eq!(failures, 0, "{}: processor failures", w.name);
        let text = std::str::from_utf8(&outputs[0]).unwrap();
        for bad in ["\"_error\"", "\"_cut\""] {
            if let Some(line) = text.lines().find(|l| l.contains(bad)) {
                panic!("{}: output has {bad}: {}", w.name, &line[..line.len().min(300)]);
            }
        }
        let events = text.lines().count() as u64;
        assert_eq!(events, want, "{}: output events", w.name);
        for line in text.lines().take(200) {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", w.name));
        }
        eprintln!("{}: {} bytes -> {events} events", w.name, corpus.data.len());
    }
}
