//! Native processors against the same work done by a Wasm plugin, on the same corpus in
//! the same run, plus the cost of the boundary per event.
//!
//! - `json/filter-native` vs `json/filter-wasm`: `parse_json` then the native `filter`, or
//!   the `filter` plugin (`wasm-plugins/filter`) with the same include, over the JSON corpus.
//! - `nginx/noop-wasm` vs `nginx/lines`: the `noop` plugin on raw lines (one field per
//!   event) against no processor at all: the difference is the boundary (flatten, copy into
//!   the guest, lift the view, lift the empty edits back).
//! - `json/filter-wasm-1field`: the plugin again, given only the `level` field (`fields:`).
//! - `json/noop-wasm`: the boundary with the ten parsed JSON fields per event.
//!
//! After criterion, a summary measures each pipeline again in MB per CPU-second
//! (getrusage, user+sys) and prints the Wasm/native ratio and the boundary ns per event.
//! Every run checks its event count, so a broken plugin fails the bench.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions, for_each_batch};
use weir_core::model::KeyTable;
use weir_core::parse::json::ParseJsonConfig;
use weir_core::pipeline::Processor;
use weir_core::processors::filter::FilterConfig;
use weir_perf::corpus::{self, Corpus};
use weir_wasm::{PluginConfig, WasmConfig};

const SIZE: usize = 16 << 20;
const LEVELS: &str = "^(error|warn)$";

type Procs = Vec<Box<dyn Processor>>;

/// Runs `procs` over `corpus`; returns (live events out, failures).
fn run(corpus: &Corpus, procs: &mut [Box<dyn Processor>]) -> (u64, u64) {
    let (mut live, mut failures) = (0, 0);
    for_each_batch(
        &corpus.data[..],
        DEFAULT_CHUNK_BYTES,
        &LineOptions::default(),
        |batch| {
            for p in procs.iter_mut() {
                p.process(batch);
                failures += p.take_failures();
            }
            live += batch.live().count() as u64;
        },
    )
    .expect("reading from memory");
    (live, failures)
}

fn count_lines_matching(corpus: &Corpus, needles: &[&str]) -> u64 {
    corpus
        .data
        .split(|&b| b == b'\n')
        .filter(|l| needles.iter().any(|n| l.windows(n.len()).any(|w| w == n.as_bytes())))
        .count() as u64
}

struct Case {
    name: &'static str,
    corpus: &'static Corpus,
    procs: Procs,
    want: u64,
}

fn cases(keys: &std::sync::Arc<KeyTable>, json: &'static Corpus, nginx: &'static Corpus) -> Vec<Case> {
    let parse_json = || -> Box<dyn Processor> {
        let c: ParseJsonConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        Box::new(c.build(keys).unwrap())
    };
    let native_filter = || -> Box<dyn Processor> {
        let c: FilterConfig = serde_json::from_value(serde_json::json!({ "include": { "level": LEVELS } })).unwrap();
        Box::new(c.build(keys).unwrap())
    };
    let plugin = |path: &str, pairs: &[(&str, &str)]| -> Box<dyn Processor> {
        let mut c = WasmConfig::new(path);
        c.config = PluginConfig::from_pairs(pairs.iter().copied());
        Box::new(c.build(keys).expect("the plugin builds"))
    };
    let kept = count_lines_matching(json, &["\"level\":\"error\"", "\"level\":\"warn\""]);
    vec![
        Case {
            name: "json/parse_json",
            corpus: json,
            procs: vec![parse_json()],
            want: json.lines,
        },
        Case {
            name: "json/filter-native",
            corpus: json,
            procs: vec![parse_json(), native_filter()],
            want: kept,
        },
        Case {
            name: "json/filter-wasm",
            corpus: json,
            procs: vec![
                parse_json(),
                plugin(weir_test_plugins::FILTER, &[("include.level", LEVELS)]),
            ],
            want: kept,
        },
        Case {
            name: "json/filter-wasm-1field",
            corpus: json,
            procs: vec![parse_json(), {
                let mut c = WasmConfig::new(weir_test_plugins::FILTER);
                c.config = PluginConfig::from_pairs([("include.level", LEVELS)]);
                c.fields = Some(vec!["level".into()]);
                Box::new(c.build(keys).expect("the plugin builds"))
            }],
            want: kept,
        },
        Case {
            name: "json/noop-wasm",
            corpus: json,
            procs: vec![parse_json(), plugin(weir_test_plugins::NOOP, &[])],
            want: json.lines,
        },
        Case {
            name: "nginx/lines",
            corpus: nginx,
            procs: vec![],
            want: nginx.lines,
        },
        Case {
            name: "nginx/noop-wasm",
            corpus: nginx,
            procs: vec![plugin(weir_test_plugins::NOOP, &[])],
            want: nginx.lines,
        },
    ]
}

fn corpora() -> (&'static Corpus, &'static Corpus) {
    (
        Box::leak(Box::new(corpus::json(SIZE, 1))),
        Box::leak(Box::new(corpus::nginx(SIZE, 1))),
    )
}

fn wasm(c: &mut Criterion) {
    let keys = KeyTable::new();
    let (json, nginx) = corpora();
    let mut group = c.benchmark_group("wasm");
    group.sample_size(10);
    for mut case in cases(&keys, json, nginx) {
        group.throughput(Throughput::Bytes(case.corpus.data.len() as u64));
        group.bench_function(case.name, |b| {
            b.iter(|| {
                let got = run(case.corpus, &mut case.procs);
                assert_eq!(got, (case.want, 0), "{}: events out, failures", case.name);
            })
        });
    }
    group.finish();
}

/// Process CPU time (user + sys).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU seconds per run of `case`: the best of a few runs of at least a second in all.
fn cpu_per_run(case: &mut Case) -> f64 {
    let mut best = f64::MAX;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || start.elapsed() < Duration::from_secs(1) {
        let cpu = cpu_time();
        let got = run(case.corpus, &mut case.procs);
        let spent = (cpu_time() - cpu).as_secs_f64();
        assert_eq!(got, (case.want, 0), "{}", case.name);
        best = best.min(spent);
        runs += 1;
    }
    best
}

fn summary() {
    let keys = KeyTable::new();
    let (json, nginx) = corpora();
    let mut cases = cases(&keys, json, nginx);
    println!(
        "\nwasm summary (MB per CPU-second, best of >= 3 runs over {} MiB):",
        SIZE >> 20
    );
    let mut secs = std::collections::HashMap::new();
    for case in &mut cases {
        let s = cpu_per_run(case);
        let mbps = case.corpus.data.len() as f64 / 1e6 / s;
        println!("  {:<22} {:>8.1} MB/s", case.name, mbps);
        secs.insert(case.name, (s, case.corpus.lines));
    }
    let get = |n: &str| secs[n];
    let (native, _) = get("json/filter-native");
    let (wasm, _) = get("json/filter-wasm");
    println!(
        "  filter as a Wasm plugin: {:.0}% of native (target >= 50%, aim 80%)",
        100.0 * native / wasm
    );
    let (wasm1, _) = get("json/filter-wasm-1field");
    println!(
        "  the same, sending only `level` (fields: [level]): {:.0}% of native",
        100.0 * native / wasm1
    );
    let (lines, n) = get("nginx/lines");
    let (noop, _) = get("nginx/noop-wasm");
    println!(
        "  boundary, raw lines (1 field):       {:.1} ns/event",
        (noop - lines) * 1e9 / n as f64
    );
    let (parsed, n) = get("json/parse_json");
    let (noop, _) = get("json/noop-wasm");
    println!(
        "  boundary, parsed JSON (10 fields):   {:.1} ns/event",
        (noop - parsed) * 1e9 / n as f64
    );
}

criterion_group!(benches, wasm);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each bench once as a test: skip the summary there.
    if !std::env::args().any(|a| a == "--test") {
        summary();
    }
}
