//! `weir plugin new|build|test`: a scaffolded plugin builds and runs as is, each step
//! printing the next command, and `test` prints the events and counters of a plugin run
//! over a file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weir_test_plugins as plugins;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--log-level")
        .arg("warn")
        .args(args)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-plugin-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command after `next: ` in `output` (the last such line), split into its words (the
/// test's paths have no spaces), with `weir` as the first.
fn next_command(output: &str) -> Vec<String> {
    let line = output
        .lines()
        .filter_map(|l| l.strip_prefix("next: "))
        .next_back()
        .unwrap_or_else(|| panic!("no `next: ` line in:\n{output}"));
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "weir", "{line}");
    words
}

/// Runs a `next_command`, with the plugin cache in `cache`.
fn run_next(words: &[String], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(&words[1..])
        .env("WEIR_PLUGIN_CACHE", cache)
        .env("CARGO_TARGET_DIR", root().join("target/plugin-cli-test"))
        .output()
        .unwrap()
}

#[test]
fn new_then_build_then_test_works_as_generated_following_the_next_commands() {
    let dir = temp_dir("scaffold");
    let cache = dir.join("cache");
    let krate = dir.join("my-plugin");
    let out = weir(&["plugin", "new", "my-plugin", "--dir", krate.to_str().unwrap()]);
    assert!(out.status.success(), "new: {}", text(&out.stderr));
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        ".cargo/config.toml",
        "rust-toolchain.toml",
        "README.md",
        "sample.log",
    ] {
        assert!(krate.join(f).exists(), "{f} scaffolded");
    }
    let next = next_command(&text(&out.stdout));
    assert_eq!(next, ["weir", "plugin", "build", krate.to_str().unwrap()]);
    // A second `new` into the same place is refused.
    let again = weir(&["plugin", "new", "my-plugin", "--dir", krate.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again.stderr).contains("already exists"));

    // Build it as `new` said (a shared target directory keeps repeated test runs
    // incremental): stdout is the component, and it is compiled into the plugin cache.
    let out = run_next(&next, &cache);
    assert!(out.status.success(), "build: {}", text(&out.stderr));
    let wasm = text(&out.stdout).trim().to_string();
    assert!(wasm.ends_with("wasm32-wasip2/release/my_plugin.wasm"), "{wasm}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "compiled for this machine into the plugin cache: {}",
            cache.display()
        )),
        "{stderr}"
    );
    let next = next_command(&stderr);
    let sample = krate.join("sample.log");
    assert_eq!(
        next,
        ["weir", "plugin", "test", &wasm, "--input", sample.to_str().unwrap()]
    );

    // Test it as `build` said: no --config, the defaults hold (`needle` is `error`).
    let out = run_next(&next, &cache);
    assert!(out.status.success(), "test: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        concat!(
            "{\"message\":\"GET /healthcheck 200\"}\n",
            "{\"message\":\"disk error on /dev/sda1\",\"matched\":true}\n",
            "{\"message\":\"user alice logged in\"}\n"
        )
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("events in 3, out 3, dropped 0"), "{stderr}");
    // `test` ends with the pipeline snippet, ready to paste into a pipeline that checks.
    assert!(
        stderr.contains("next: add the plugin to a pipeline file, then `weir check -c PIPELINE.yaml`"),
        "{stderr}"
    );
    let snippet = &stderr[stderr.find("processors:\n").expect("a snippet")..];
    assert!(snippet.contains(&format!("plugin: \"{wasm}\"")), "{snippet}");
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!("inputs:\n  - type: stdin\n{snippet}outputs:\n  - type: stdout\n"),
    )
    .unwrap();
    let out = weir(&["check", "-c", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "check: {}", text(&out.stderr));

    // Its config, as a pipeline would give it; the snippet carries it.
    let input = dir.join("in.log");
    std::fs::write(&input, "disk error\nGET /healthcheck\nall good\n").unwrap();
    let out = weir(&[
        "plugin",
        "test",
        &wasm,
        "--input",
        input.to_str().unwrap(),
        "--config",
        "needle=error",
        "--config",
        "drop=healthcheck",
    ]);
    assert!(out.status.success(), "test: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"message\":\"disk error\",\"matched\":true}\n{\"message\":\"all good\"}\n"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("events in 3, out 2, dropped 1"), "{stderr}");
    assert!(stderr.contains("calls 1"), "{stderr}");
    assert!(
        stderr.contains(r#"    config: { "needle": "error", "drop": "healthcheck" }"#),
        "{stderr}"
    );

    // Its init rejects a value it cannot use, and says which.
    let out = weir(&[
        "plugin",
        "test",
        &wasm,
        "--input",
        input.to_str().unwrap(),
        "--config",
        "needle=",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("config `needle` is empty: it would match every event"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn test_parses_json_and_reports_failures_by_kind() {
    let dir = temp_dir("test");
    let input = dir.join("in.jsonl");
    std::fs::write(
        &input,
        "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"info\",\"msg\":\"b\"}\n{\"level\":\"warn\",\"msg\":\"c\"}\n",
    )
    .unwrap();
    let out = weir(&[
        "plugin",
        "test",
        plugins::FILTER,
        "--input",
        input.to_str().unwrap(),
        "--parse-json",
        "--config",
        "include.level=^(error|warn)$",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"warn\",\"msg\":\"c\"}\n"
    );

    std::fs::write(&input, "one\nloop\n").unwrap();
    let out = weir(&[
        "plugin",
        "test",
        plugins::SPIN,
        "--input",
        input.to_str().unwrap(),
        "--timeout",
        "50ms",
        "--on-error",
        "dead_letter",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("dead-lettered 2, failed events 2"), "{stderr}");
    assert!(stderr.contains("failed batches: deadline 1"), "{stderr}");
    assert!(
        stderr.contains("dead_letter: {\"message\":\"one\",\"_error\":\"wasm plugin hostile_spin: deadline"),
        "{stderr}"
    );

    let out = weir(&[
        "plugin",
        "test",
        plugins::FILTER,
        "--input",
        "in.log",
        "--config",
        "novalue",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--config `novalue`: expected KEY=VALUE"),
        "{}",
        text(&out.stderr)
    );
    let out = weir(&[
        "plugin",
        "test",
        "/nonexistent.wasm",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        text(&out.stderr).contains("cannot read plugin /nonexistent.wasm"),
        "{}",
        text(&out.stderr)
    );
    let out = weir(&["plugin", "new", "9lives"]);
    assert!(
        text(&out.stderr).contains("is not a crate name"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn compiled_plugins_are_cached_on_disk() {
    let dir = temp_dir("cache");
    let cache = dir.join("cache");
    let input = dir.join("in.log");
    std::fs::write(&input, "a\n").unwrap();
    let run = |cache: &Path| {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["plugin", "test", plugins::NOOP, "--input"])
            .arg(&input)
            .env("WEIR_PLUGIN_CACHE", cache)
            .output()
            .unwrap()
    };
    let first = run(&cache);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    // The second run loads it; a damaged entry is compiled again and replaced.
    let second = run(&cache);
    assert!(second.status.success() && second.stdout == first.stdout);
    std::fs::write(&entries[0], b"garbage").unwrap();
    let third = run(&cache);
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert_eq!(third.stdout, first.stdout);
    assert!(std::fs::metadata(&entries[0]).unwrap().len() > 1000, "replaced");
    std::fs::remove_dir_all(dir).ok();
}
