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
//! The plugins target the current contract (`weir:plugin@0.2.0`). With
//! `WEIR_BENCH_PLUGINS_0_1=DIR` (a directory holding `filter.wasm` and `noop.wasm` built
//! against 0.1.0, e.g. `wasm-plugins/` of a checkout before 0.2), the Wasm cases run again
//! with those, named `...@0.1`, in the same run: the two boundaries side by side.
//!
//! After criterion, a summary measures each pipeline again in MB per CPU-second
//! (getrusage, user+sys) and prints the Wasm/native ratio and the boundary ns per event.
//! It runs the cases in turn, one pass each per round, and takes each figure per round before
//! the median of the rounds: this machine's speed drifts by up to 15 % from one minute to the
//! next, and measuring the native cases first and the Wasm ones after (best of a few runs
//! each, as the summary did before) moved the ratios between 77 % and 87 % for one binary.
//! Every run checks its event count, so a broken plugin fails the bench.

use std::time::Duration;

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
    let native_filter = || -> Box<dyn Processor> {
        let c: FilterConfig = serde_json::from_value(serde_json::json!({ "include": { "level": LEVELS } })).unwrap();
        Box::new(c.build(keys).unwrap())
    };
    let kept = count_lines_matching(json, &["\"level\":\"error\"", "\"level\":\"warn\""]);
    let mut cases = vec![
        Case {
            name: "json/parse_json",
            corpus: json,
            procs: vec![parse_json(keys)],
            want: json.lines,
        },
        Case {
            name: "json/filter-native",
            corpus: json,
            procs: vec![parse_json(keys), native_filter()],
            want: kept,
        },
        Case {
            name: "nginx/lines",
            corpus: nginx,
            procs: vec![],
            want: nginx.lines,
        },
    ];
    cases.extend(wasm_cases(
        keys,
        (json, nginx),
        weir_test_plugins::FILTER,
        weir_test_plugins::NOOP,
        "",
    ));
    if let Some(dir) = std::env::var_os("WEIR_BENCH_PLUGINS_0_1") {
        let dir = std::path::PathBuf::from(dir);
        let (filter, noop) = (dir.join("filter.wasm"), dir.join("noop.wasm"));
        let (filter, noop) = (filter.to_str().expect("UTF-8 path"), noop.to_str().expect("UTF-8 path"));
        cases.extend(wasm_cases(keys, (json, nginx), filter, noop, "@0.1"));
    }
    cases
}

fn parse_json(keys: &std::sync::Arc<KeyTable>) -> Box<dyn Processor> {
    let c: ParseJsonConfig = serde_json::from_value(serde_json::json!({})).unwrap();
    Box::new(c.build(keys).unwrap())
}

/// The Wasm cases with the given `filter` and `noop` components, their names ending in
/// `suffix`.
fn wasm_cases(
    keys: &std::sync::Arc<KeyTable>,
    (json, nginx): (&'static Corpus, &'static Corpus),
    filter: &str,
    noop: &str,
    suffix: &str,
) -> Vec<Case> {
    let plugin = |path: &str, pairs: &[(&str, &str)], only: Option<&str>| -> Box<dyn Processor> {
        let mut c = WasmConfig::new(path);
        c.config = PluginConfig::from_pairs(pairs.iter().copied());
        c.fields = only.map(|f| vec![f.to_string()]);
        Box::new(c.build(keys).expect("the plugin builds"))
    };
    let kept = count_lines_matching(json, &["\"level\":\"error\"", "\"level\":\"warn\""]);
    let name = |n: &str| -> &'static str { Box::leak(format!("{n}{suffix}").into_boxed_str()) };
    vec![
        Case {
            name: name("json/filter-wasm"),
            corpus: json,
            procs: vec![parse_json(keys), plugin(filter, &[("include.level", LEVELS)], None)],
            want: kept,
        },
        Case {
            name: name("json/filter-wasm-1field"),
            corpus: json,
            procs: vec![
                parse_json(keys),
                plugin(filter, &[("include.level", LEVELS)], Some("level")),
            ],
            want: kept,
        },
        Case {
            name: name("json/noop-wasm"),
            corpus: json,
            procs: vec![parse_json(keys), plugin(noop, &[], None)],
            want: json.lines,
        },
        Case {
            name: name("nginx/noop-wasm"),
            corpus: nginx,
            procs: vec![plugin(noop, &[], None)],
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

/// CPU seconds of one pass of `case` over its corpus (checking its event count).
fn cpu_once(case: &mut Case) -> f64 {
    let cpu = cpu_time();
    let got = run(case.corpus, &mut case.procs);
    let spent = (cpu_time() - cpu).as_secs_f64();
    assert_eq!(got, (case.want, 0), "{}", case.name);
    spent
}

/// Rounds of the summary: every case once per round, in turn.
const ROUNDS: usize = 15;

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn summary() {
    let keys = KeyTable::new();
    let (json, nginx) = corpora();
    let mut cases = cases(&keys, json, nginx);
    println!(
        "\nwasm summary (MB per CPU-second over {} MiB; medians of {ROUNDS} rounds, each case once a round):",
        SIZE >> 20
    );
    // A first pass of each (plugin instances, first touches), not counted.
    for case in &mut cases {
        cpu_once(case);
    }
    let mut secs: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (case, secs) in cases.iter_mut().zip(&mut secs) {
            secs.push(cpu_once(case));
        }
    }
    for (case, secs) in cases.iter().zip(&secs) {
        let mbps = case.corpus.data.len() as f64 / 1e6 / median(secs.clone());
        println!("  {:<22} {:>8.1} MB/s", case.name, mbps);
    }
    let of = |name: &str| cases.iter().position(|c| c.name == name).map(|i| &secs[i]);
    let by_round =
        |a: &[f64], b: &[f64], f: &dyn Fn(f64, f64) -> f64| median(a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect());
    let (native, lines, parsed) = (
        of("json/filter-native").expect("case"),
        of("nginx/lines").expect("case"),
        of("json/parse_json").expect("case"),
    );
    let (json_events, nginx_events) = (json.lines as f64, nginx.lines as f64);
    for suffix in ["", "@0.1"] {
        let Some(wasm) = of(&format!("json/filter-wasm{suffix}")) else {
            continue;
        };
        let contract = if suffix.is_empty() { "0.2" } else { "0.1" };
        println!("  contract {contract}:");
        println!(
            "    filter as a Wasm plugin, all fields: {:.0}% of native (target >= 85%)",
            100.0 * by_round(native, wasm, &|n, w| n / w)
        );
        let wasm1 = of(&format!("json/filter-wasm-1field{suffix}")).expect("case");
        println!(
            "    the same, sending only `level` (fields: [level]): {:.0}% of native (target >= 95%)",
            100.0 * by_round(native, wasm1, &|n, w| n / w)
        );
        let noop = of(&format!("nginx/noop-wasm{suffix}")).expect("case");
        println!(
            "    boundary, raw lines (1 field):     {:.1} ns/event (target <= 50)",
            by_round(noop, lines, &|w, n| (w - n) * 1e9 / nginx_events)
        );
        let noop = of(&format!("json/noop-wasm{suffix}")).expect("case");
        println!(
            "    boundary, parsed JSON (10 fields): {:.1} ns/event (target <= 150)",
            by_round(noop, parsed, &|w, n| (w - n) * 1e9 / json_events)
        );
    }
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
