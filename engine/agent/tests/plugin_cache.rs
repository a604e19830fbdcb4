//! The precompiled plugin cache from the command line: `weir plugin compile` and `weir
//! check` fill it, so `weir run` maps the machine code instead of compiling (less CPU, a
//! lower memory peak); it stays under its size limit; a damaged entry is compiled again.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::agent::{WEIR, wait_with_usage};
use weir_test_plugins as plugins;

/// The bound on the peak resident set of a debug-build `weir run --workers 2` with the
/// filter plugin loaded from the cache, measured at about 36 MiB (100 MiB when it compiles
/// the plugin). A release build: about 21 MiB, against 87 MiB and 1.1 s of CPU compiling
/// (2 cores; `/usr/bin/time -v weir run -c PIPELINE`).
const CACHED_RUN_PEAK_KIB: u64 = 44 << 10;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-plugin-cache-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `weir ARGS` with the plugin cache in `cache`.
fn weir(cache: &Path, args: &[&str]) -> Output {
    Command::new(WEIR)
        .args(args)
        .env("WEIR_PLUGIN_CACHE", cache)
        .env("WEIR_LOG", "warn")
        .env_remove("WEIR_PLUGIN_CACHE_MAX_BYTES")
        .output()
        .unwrap()
}

/// The `.cwasm` entries in `cache`.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    out.sort();
    out
}

/// What `weir run` did, measured.
struct Run {
    ok: bool,
    stderr: String,
    peak_kib: u64,
    cpu: Duration,
}

/// `weir run -c PIPELINE --workers 2` at debug log level over `input` (stdin), with the
/// plugin cache in `cache`.
fn run(pipeline: &Path, input: &Path, cache: &Path) -> Run {
    let dir = pipeline.parent().unwrap();
    let stderr = dir.join("stderr.log");
    let child = Command::new(WEIR)
        .args(["run", "--workers", "2", "-c"])
        .arg(pipeline)
        .env("WEIR_PLUGIN_CACHE", cache)
        .env("WEIR_LOG", "debug")
        .env("WEIR_DATA_DIR", dir.join("data"))
        .env_remove("WEIR_PLUGIN_CACHE_MAX_BYTES")
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (status, peak_kib, cpu) = wait_with_usage(child);
    Run {
        ok: status.success(),
        stderr: std::fs::read_to_string(&stderr).unwrap(),
        peak_kib,
        cpu,
    }
}

const LOADED: &str = "wasm plugin loaded from the compiled-plugin cache";
const COMPILED: &str = "wasm plugin compiled";

/// A pipeline: stdin, parse_json, the filter plugin keeping error and warn, a file output.
fn filter_pipeline(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let out = dir.join("out.jsonl");
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "inputs:\n  - type: stdin\nprocessors:\n  - type: parse_json\n  - type: wasm\n    plugin: {}\n    config: {{ include: {{ level: '^(error|warn)$' }} }}\noutputs:\n  - type: file\n    path: {}\n",
            plugins::FILTER,
            out.display()
        ),
    )
    .unwrap();
    let input = dir.join("in.jsonl");
    std::fs::write(
        &input,
        "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"info\",\"msg\":\"b\"}\n{\"level\":\"warn\",\"msg\":\"c\"}\n",
    )
    .unwrap();
    (pipeline, input, out)
}

#[test]
fn after_plugin_compile_run_loads_the_plugin_instead_of_compiling_it() {
    let dir = temp_dir("compile");
    let cache = dir.join("cache");
    let out = weir(&cache, &["plugin", "compile", plugins::FILTER]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let entry = entries(&cache);
    assert_eq!(entry.len(), 1, "{entry:?}");
    assert_eq!(
        stdout,
        format!("{}: compiled now: {}\n", plugins::FILTER, entry[0].display())
    );
    let again = weir(&cache, &["plugin", "compile", plugins::FILTER]);
    assert_eq!(
        text(&again.stdout),
        format!("{}: already cached: {}\n", plugins::FILTER, entry[0].display())
    );

    let (pipeline, input, events) = filter_pipeline(&dir);
    let cached = run(&pipeline, &input, &cache);
    assert!(cached.ok, "{}", cached.stderr);
    assert_eq!(
        std::fs::read_to_string(&events).unwrap(),
        "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"warn\",\"msg\":\"c\"}\n"
    );
    assert!(cached.stderr.contains(LOADED), "{}", cached.stderr);
    assert!(!cached.stderr.contains(COMPILED), "{}", cached.stderr);
    assert_eq!(entries(&cache), entry, "nothing new was cached");

    // The same run with an empty cache compiles: that is what a first run used to cost.
    let cold = run(&pipeline, &input, &dir.join("empty-cache"));
    assert!(cold.ok, "{}", cold.stderr);
    assert!(cold.stderr.contains(COMPILED), "{}", cold.stderr);
    eprintln!(
        "cached run: peak {} KiB, CPU {:?}; compiling run: peak {} KiB, CPU {:?}",
        cached.peak_kib, cached.cpu, cold.peak_kib, cold.cpu
    );
    assert!(
        cached.peak_kib < CACHED_RUN_PEAK_KIB,
        "a run with a cached plugin peaked at {} KiB",
        cached.peak_kib
    );
    assert!(
        cached.peak_kib + (20 << 10) < cold.peak_kib,
        "cached {} KiB, compiling {} KiB",
        cached.peak_kib,
        cold.peak_kib
    );
    assert!(
        cached.cpu * 4 < cold.cpu,
        "cached {:?} of CPU, compiling {:?}",
        cached.cpu,
        cold.cpu
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn check_fills_the_cache_for_the_fuel_each_plugin_is_configured_with() {
    let dir = temp_dir("check");
    let cache = dir.join("cache");
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    config: {{ include.level: x }}\n  - type: wasm\n    plugin: {}\n    fuel: 100000000\noutputs:\n  - type: stdout\n",
            plugins::FILTER,
            plugins::NOOP
        ),
    )
    .unwrap();
    let out = weir(&cache, &["check", "-c", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(entries(&cache).len(), 2);
    // Exactly what the pipeline needs is there: the filter without fuel, noop with fuel.
    let compile = |args: &[&str]| text(&weir(&cache, &[&["plugin", "compile"], args].concat()).stdout);
    assert!(compile(&[plugins::FILTER]).contains(": already cached: "));
    assert!(compile(&["--fuel", plugins::NOOP]).contains(": already cached (for pipelines with `fuel:`): "));
    assert!(compile(&[plugins::NOOP]).contains(": compiled now: "));

    let input = dir.join("in.log");
    std::fs::write(&input, "a\n").unwrap();
    let r = run(&pipeline, &input, &cache);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stderr.matches(LOADED).count(), 2, "{}", r.stderr);
    assert!(!r.stderr.contains(COMPILED), "{}", r.stderr);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_damaged_entry_is_compiled_again_and_the_run_goes_on() {
    let dir = temp_dir("damaged");
    let cache = dir.join("cache");
    assert!(weir(&cache, &["plugin", "compile", plugins::FILTER]).status.success());
    let entry = entries(&cache).remove(0);
    let good = std::fs::read(&entry).unwrap();
    let (pipeline, input, events) = filter_pipeline(&dir);
    for damaged in [b"garbage".to_vec(), good[..good.len() / 2].to_vec(), Vec::new()] {
        std::fs::write(&entry, &damaged).unwrap();
        let _ = std::fs::remove_file(&events);
        let r = run(&pipeline, &input, &cache);
        assert!(r.ok, "{}", r.stderr);
        assert!(
            r.stderr.contains("cache entry unusable, compiling again"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(COMPILED), "{}", r.stderr);
        assert_eq!(std::fs::read_to_string(&events).unwrap().lines().count(), 2);
        assert_eq!(
            std::fs::read(&entry).unwrap().len(),
            good.len(),
            "the entry is replaced"
        );
    }
    // `weir plugin compile` repairs one too.
    std::fs::write(&entry, b"garbage").unwrap();
    let out = weir(&cache, &["plugin", "compile", plugins::FILTER]);
    assert!(text(&out.stdout).contains(": compiled now: "), "{}", text(&out.stderr));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_cache_stays_under_its_size_limit_dropping_the_least_recently_used() {
    let dir = temp_dir("limit");
    let compile = |cache: &Path, plugin: &str, max: &str| {
        Command::new(WEIR)
            .args(["plugin", "compile", plugin])
            .env("WEIR_PLUGIN_CACHE", cache)
            .env("WEIR_PLUGIN_CACHE_MAX_BYTES", max)
            .output()
            .unwrap()
    };
    // The entry that `weir plugin compile` names, and its size.
    let entry = |out: &Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let file = PathBuf::from(stdout.trim_end().rsplit(": ").next().unwrap());
        let len = std::fs::metadata(&file).unwrap().len();
        (file, len)
    };
    let (_, sneaky_len) = entry(&compile(&dir.join("scratch"), plugins::SNEAKY, "1GiB"));

    let cache = dir.join("cache");
    let (spin, spin_len) = entry(&compile(&cache, plugins::SPIN, "1GiB"));
    let (trap, trap_len) = entry(&compile(&cache, plugins::TRAP, "1GiB"));
    let (noop, noop_len) = entry(&compile(&cache, plugins::NOOP, "1GiB"));
    // Using noop again makes spin the least recently used.
    std::thread::sleep(Duration::from_millis(20));
    assert!(text(&compile(&cache, plugins::NOOP, "1GiB").stdout).contains("already cached"));
    // A limit that holds all but spin once sneaky is in.
    let limit = trap_len + noop_len + sneaky_len;
    let (sneaky, _) = entry(&compile(&cache, plugins::SNEAKY, &limit.to_string()));
    assert_eq!(entries(&cache), {
        let mut want = vec![trap.clone(), noop.clone(), sneaky.clone()];
        want.sort();
        want
    });
    assert!(!spin.exists());
    let left: u64 = entries(&cache)
        .iter()
        .map(|e| std::fs::metadata(e).unwrap().len())
        .sum();
    assert!(left <= limit && spin_len > 0, "{left} bytes cached, limit {limit}");

    // A limit below one entry keeps just the entry written last.
    let (again, _) = entry(&compile(&cache, plugins::SPIN, "1"));
    assert_eq!(entries(&cache), vec![again]);

    let bad = compile(&cache, plugins::NOOP, "lots");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("WEIR_PLUGIN_CACHE_MAX_BYTES: `lots` is not a size"),
        "{}",
        text(&bad.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn compile_says_what_is_wrong() {
    let dir = temp_dir("errors");
    let cache = dir.join("cache");
    let not_wasm = dir.join("plugin.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let cases: Vec<(PathBuf, &str, String)> = vec![
        (
            cache.clone(),
            "/nonexistent/p.wasm",
            "cannot read plugin /nonexistent/p.wasm: No such file".to_string(),
        ),
        (
            cache.clone(),
            not_wasm.to_str().unwrap(),
            format!("{} is not a Wasm component", not_wasm.display()),
        ),
        (
            a_file.join("cache"),
            plugins::NOOP,
            format!(
                "cannot write the compiled plugin to the cache {}/cache",
                a_file.display()
            ),
        ),
        (
            PathBuf::from("off"),
            plugins::NOOP,
            "the compiled-plugin cache is off".to_string(),
        ),
    ];
    for (cache, plugin, want) in cases {
        let out = weir(&cache, &["plugin", "compile", plugin]);
        assert!(!out.status.success(), "{plugin}");
        assert!(
            text(&out.stderr).contains(&want),
            "want `{want}` in {}",
            text(&out.stderr)
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
