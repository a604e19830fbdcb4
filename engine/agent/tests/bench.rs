//! `weir gen` and `weir bench` end to end: generators are deterministic, the JSON report
//! has its documented shape, a regression against a baseline and a wrong event count
//! fail the run, peers on `PATH` run beside Weir, the Kafka workloads run against a
//! broker the bench starts, the listening workloads are sent their corpus, the plugin
//! workloads run the built example plugin (and say how to build it when it is not), and a
//! workload whose pipeline `weir check` refuses fails the bench before anything runs.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// `weir bench` with one run, and its cache and work dirs under `dir`.
fn bench(dir: &Path) -> Command {
    let mut cmd = weir();
    cmd.args(["bench", "--runs", "1", "--cache-dir"])
        .arg(dir.join("cache"))
        .arg("--work-dir")
        .arg(dir.join("work"));
    cmd
}

#[test]
fn gen_gives_the_same_bytes_for_the_same_seed() {
    let gen_ = |kind: &str, size: &str, seed: &str| {
        let out = weir()
            .args(["gen", kind, "--size", size, "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let a = gen_("nginx", "10MiB", "1");
    assert!(a.len() > 10_000_000 && a.len() <= 10 << 20);
    assert!(a == gen_("nginx", "10MiB", "1"), "nginx: two runs differ");
    for (kind, _) in weir_perf::corpus::KINDS {
        let one = gen_(kind, "256KiB", "1");
        assert!(!one.is_empty() && one.ends_with(b"\n"), "{kind}");
        assert!(one == gen_(kind, "256KiB", "1"), "{kind}: same seed, other bytes");
        assert!(one != gen_(kind, "256KiB", "2"), "{kind}: other seed, same bytes");
    }
}

fn f64_at(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64().unwrap_or_else(|| panic!("{path} is not a number: {at}"))
}

fn check_figures(f: &Value, events: u64) {
    let runs = f["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    for r in runs {
        for key in ["wall_s", "user_s", "sys_s"] {
            assert!(r[key].as_f64().unwrap() >= 0.0, "{key}");
        }
        assert!(r["max_rss_bytes"].as_u64().unwrap() > 1 << 20);
        assert_eq!(r["events"].as_u64().unwrap(), events);
    }
    for stat in [
        "mb_per_cpu_s",
        "events_per_cpu_s",
        "events_per_s",
        "wall_mb_per_s",
        "cpu_s",
        "max_rss_bytes",
    ] {
        let (min, median, max) = (
            f64_at(f, &format!("{stat}.min")),
            f64_at(f, &format!("{stat}.median")),
            f64_at(f, &format!("{stat}.max")),
        );
        assert!(
            0.0 < min && min <= median && median <= max,
            "{stat}: {min} {median} {max}"
        );
    }
}

#[test]
fn bench_writes_the_table_the_report_and_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("report.json"), dir.path().join("chart.svg"));
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "passthrough", "-w", "nginx-regex", "--size", "2MiB", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("MB/s per CPU-s") && stdout.contains("peak RSS"),
        "{stdout}"
    );
    let passthrough = stdout.find("\npassthrough ").expect("passthrough row");
    assert!(
        stdout[passthrough..].contains("\nnginx-regex "),
        "rows in the order asked: {stdout}"
    );

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["schema"], 1);
    assert_eq!(r["weir_version"], env!("CARGO_PKG_VERSION"));
    let date = r["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    for key in ["cpu_model", "os", "arch", "kernel"] {
        assert!(r["machine"][key].is_string(), "machine.{key}");
    }
    assert_eq!(r["settings"]["size_bytes"], 2 << 20);
    assert_eq!(r["settings"]["seed"], 1);
    assert_eq!(r["settings"]["runs"], 1);
    assert!(r["settings"]["harness_max_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["peers_missing"], Value::Array(vec![]));
    assert!(r["baseline"].is_null());
    let workloads = r["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);
    for (w, name) in workloads.iter().zip(["passthrough", "nginx-regex"]) {
        assert_eq!(w["name"], name);
        assert_eq!(w["corpus"], "nginx");
        assert!(w["about"].as_str().is_some_and(|s| !s.is_empty()));
        let bytes = w["input_bytes"].as_u64().unwrap();
        assert!(bytes > 2_000_000 && bytes <= 2 << 20, "{bytes}");
        let events = w["expected_events"].as_u64().unwrap();
        assert!(events > 10_000, "{events}");
        check_figures(&w["weir"], events);
        assert_eq!(w["peers"], Value::Array(vec![]));
    }
    // Both read the same cached corpus.
    assert_eq!(workloads[0]["input_bytes"], workloads[1]["input_bytes"]);
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache")).unwrap().collect();
    assert_eq!(cached.len(), 2, "one corpus and its record count");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("nginx-regex"));
}

fn write_baseline(path: &Path, median: f64) {
    let report = serde_json::json!({
        "schema": 1,
        "weir_version": "0.0.1",
        "date": "2026-01-01T00:00:00Z",
        "machine": { "cpu_model": "old box" },
        "workloads": [
            { "name": "passthrough", "weir": { "mb_per_cpu_s": { "median": median, "min": median, "max": median } } }
        ]
    });
    std::fs::write(path, report.to_string()).unwrap();
}

#[test]
fn a_regression_against_the_baseline_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baseline.json");
    let json = dir.path().join("now.json");
    write_baseline(&base, 1e9);
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "passthrough", "--size", "1MiB", "--threshold", "25", "--baseline"])
        .arg(&base)
        .arg("--json")
        .arg(&json));
    assert!(
        !out.status.success(),
        "a 1e9 MB/s baseline must be a regression\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("REGRESSED: more than 25% slower"), "{stdout}");
    assert!(stdout.contains("Regression: passthrough"), "{stdout}");
    assert!(stdout.contains("old box"), "the baseline's machine is named: {stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cmp = &r["baseline"]["workloads"][0];
    assert_eq!((&cmp["name"], &cmp["regressed"]), (&"passthrough".into(), &true.into()));
    assert!(cmp["change_pct"].as_f64().unwrap() < -99.0);
    assert_eq!(r["baseline"]["threshold_pct"], 25.0);

    write_baseline(&base, 1e-3);
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "passthrough", "--size", "1MiB", "--baseline"])
        .arg(&base));
    assert!(out.status.success(), "faster than the baseline\n{stdout}\n{stderr}");
    assert!(stdout.contains("No workload is more than 10% slower"), "{stdout}");

    std::fs::write(&base, "{}").unwrap();
    let (out, _, stderr) = run(bench(dir.path())
        .args(["-w", "passthrough", "--size", "1MiB", "--baseline"])
        .arg(&base));
    assert!(
        !out.status.success() && stderr.contains("no `workloads` array"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_event_count_or_an_unknown_workload_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let workloads = dir.path().join("workloads");
    std::fs::create_dir(&workloads).unwrap();
    // Only 2xx lines parse; the others are dropped, so the count is short.
    let shipped = weir_perf::workload::default_dir().join("nginx-regex.yaml");
    let broken = std::fs::read_to_string(shipped)
        .unwrap()
        .replace(r"(?P<status>\d{3})", r"(?P<status>2\d\d)");
    std::fs::write(workloads.join("broken.yaml"), broken).unwrap();
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["--size", "1MiB", "--workloads-dir"])
        .arg(&workloads));
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("broken: weir run 1 wrote") && stderr.contains("expected"),
        "{stderr}"
    );

    let (out, _, stderr) = run(bench(dir.path()).args(["-w", "nope"]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown workload `nope`") && stderr.contains("passthrough"),
        "{stderr}"
    );
}

/// A stand-in for Vector: copies the corpus from stdin to the file sink's path.
#[test]
fn peers_on_path_run_beside_weir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("vector");
    std::fs::write(
        &fake,
        "#!/bin/sh\n# weir bench calls: vector --quiet --config FILE\n\
         out=$(sed -n \"s/^    path: '\\(.*\\)'$/\\1/p\" \"$3\")\ncat > \"$out\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .env("PATH", path)
        .args(["-w", "passthrough", "--size", "1MiB", "--peers", "--json"])
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("vs vector"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let w = &r["workloads"][0];
    let peer = w["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vector")
        .expect("vector ran");
    assert!(peer["error"].is_null(), "{peer}");
    assert!(peer["ratio"].as_f64().unwrap() > 0.0);
    check_figures(&peer["figures"], w["expected_events"].as_u64().unwrap());
    if !stderr.contains("fluent-bit is not on PATH") {
        assert!(w["peers"].as_array().unwrap().iter().any(|p| p["name"] == "fluent-bit"));
    } else {
        assert_eq!(r["peers_missing"], serde_json::json!(["fluent-bit"]));
    }
}

#[test]
fn kafka_workloads_run_against_a_broker_the_bench_starts() {
    let Some(tansu) = support::kafka::tansu_for("kafka_workloads_run_against_a_broker_the_bench_starts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "kafka-out", "-w", "kafka-in", "--size", "2MiB", "--tansu"])
        .arg(&tansu)
        .arg("--json")
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let workloads = r["workloads"].as_array().unwrap();
    for (w, name) in workloads.iter().zip(["kafka-out", "kafka-in"]) {
        assert_eq!(w["name"], name);
        // The harness counted every event in the topic (kafka-out) or the file (kafka-in).
        check_figures(&w["weir"], w["expected_events"].as_u64().unwrap());
    }

    // Without a broker, naming them is an error that says what to pass.
    let (out, _, stderr) = run(bench(dir.path()).args(["-w", "kafka-out", "--size", "1MiB"]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("kafka-out need(s) a Kafka-protocol broker: --kafka"),
        "{stderr}"
    );
}

#[test]
fn the_listening_workloads_are_sent_their_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "otlp-in", "-w", "syslog-in", "--size", "1MiB", "--json"])
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let workloads = r["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);
    // otlp-in: a second weir run sent the corpus as OTLP; syslog-in: the harness wrote it
    // over TCP.
    for (w, (name, corpus)) in workloads.iter().zip([("otlp-in", "nginx"), ("syslog-in", "syslog")]) {
        assert_eq!((&w["name"], &w["corpus"]), (&name.into(), &corpus.into()));
        // Every record arrived as one event: the harness counted the output.
        check_figures(&w["weir"], w["expected_events"].as_u64().unwrap());
        let wall = w["weir"]["runs"][0]["wall_s"].as_f64().unwrap();
        assert!(wall >= 3.0, "{name}: the run ends 3 s after the last input: {wall}");
    }
}

#[test]
fn a_workload_whose_pipeline_weir_check_refuses_fails_the_bench_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let workloads = dir.path().join("workloads");
    std::fs::create_dir(&workloads).unwrap();
    let shipped = std::fs::read_to_string(weir_perf::workload::default_dir().join("passthrough.yaml")).unwrap();
    std::fs::write(workloads.join("passthrough.yaml"), &shipped).unwrap();
    let pigeon = shipped.replace("type: file\n    paths", "type: carrier_pigeon\n    paths");
    assert_ne!(pigeon, shipped);
    std::fs::write(workloads.join("pigeon.yaml"), pigeon).unwrap();
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["--size", "1MiB", "--workloads-dir"])
        .arg(&workloads));
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("pigeon: weir check") && stderr.contains("unknown input type `carrier_pigeon`"),
        "{stderr}"
    );
    assert!(!stdout.contains("passthrough"), "nothing ran: {stdout}");
}

#[test]
fn scale_runs_each_worker_count_and_reports_the_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .args(["-w", "nginx-regex", "--size", "2MiB", "--scale", "1,2", "--json"])
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("scaling: weir run --workers N"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let w = &r["workloads"][0];
    let points = w["scale"].as_array().expect("a scale array");
    assert_eq!(points.len(), 2);
    let events = w["expected_events"].as_u64().unwrap();
    for (p, workers) in points.iter().zip([1, 2]) {
        assert_eq!(p["workers"], workers);
        check_figures(&p["figures"], events);
        assert!(p["speedup"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(
        points[0]["speedup"].as_f64(),
        Some(1.0),
        "the first count is the reference"
    );
    // A count of zero workers is refused before anything runs.
    let (out, _, stderr) = run(bench(dir.path()).args(["-w", "passthrough", "--size", "1MiB", "--scale", "0,2"]));
    assert!(!out.status.success());
    assert!(stderr.contains("--scale: worker counts start at 1"), "{stderr}");
}

#[test]
fn the_exec_workload_wraps_its_command_and_counts_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .args([
            "-w",
            "exec-passthrough",
            "-w",
            "passthrough",
            "--size",
            "1MiB",
            "--json",
        ])
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let workloads = r["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);
    // `cat` of the corpus under `weir run --exec`: every line an event, as when the same
    // corpus is read from its file.
    let events: Vec<u64> = workloads
        .iter()
        .map(|w| w["expected_events"].as_u64().unwrap())
        .collect();
    assert_eq!(events[0], events[1]);
    for w in workloads {
        check_figures(&w["weir"], w["expected_events"].as_u64().unwrap());
    }
}

#[test]
fn the_plugin_workloads_run_the_built_filter_plugin_and_need_it_built() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = Path::new(weir_test_plugins::FILTER).parent().unwrap();
    let json = dir.path().join("r.json");
    let (out, stdout, stderr) = run(bench(dir.path())
        .args([
            "-w",
            "json-filter",
            "-w",
            "json-filter-wasm",
            "-w",
            "json-filter-wasm-fields",
        ])
        .args(["--size", "1MiB", "--plugins-dir"])
        .arg(plugins)
        .arg("--json")
        .arg(&json));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let workloads = r["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 3);
    // The plugin keeps exactly what the native filter keeps (each run's count is checked
    // against the corpus by the harness; the three expect the same).
    let expected = workloads[0]["expected_events"].as_u64().unwrap();
    assert!(expected > 0);
    for w in workloads {
        assert_eq!(w["expected_events"].as_u64(), Some(expected), "{w}");
        check_figures(&w["weir"], expected);
    }

    // Not built there: named, it is an error that says how to build them.
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir(&empty).unwrap();
    let (out, _, stderr) = run(bench(dir.path())
        .args(["-w", "json-filter-wasm", "--size", "1MiB", "--plugins-dir"])
        .arg(&empty));
    assert!(!out.status.success());
    assert!(
        stderr.contains("json-filter-wasm need(s) the example Wasm plugins")
            && stderr.contains("no-plugins/filter.wasm is not there")
            && stderr.contains("cargo build --release` in wasm-plugins/"),
        "{stderr}"
    );
}
