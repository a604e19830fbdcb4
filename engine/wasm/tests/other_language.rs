//! Plugins written in other languages run through the same host as the Rust ones: the
//! contract is the WIT, not the Rust SDK. The same plugin, `level-drop`, in JavaScript
//! (`wasm-plugins/js/level-drop`, componentize-js from npm) and in Python
//! (`wasm-plugins/python/level-drop`, componentize-py from PyPI), is built by each test and
//! held to the same assertions.
//!
//! The toolchains are installed by each plugin's `install.sh` (`npm ci`; componentize-py in
//! a virtual environment), which the test command (`scripts/test`) runs. Without one the
//! test fails under `CI=true`; elsewhere it is skipped and `scripts/test` prints why at the
//! end.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weir_core::model::{Batch, Buf, Event, KeyTable, Origin, Span, Value};
use weir_core::pipeline::Processor;
use weir_wasm::{PluginConfig, WasmConfig};

fn plugin_dir(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../wasm-plugins")
        .join(lang)
        .join("level-drop")
}

/// Where a test's component is built.
fn out_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Runs `program --version`: is the program installed?
fn installed(program: impl AsRef<OsStr>) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Checks a build that ran: the toolchain is there, so a failed build is a real failure,
/// not a skip.
fn assert_built(what: &str, run: std::io::Result<Output>) {
    let run = run.unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        run.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Builds the JavaScript plugin, or says why it cannot.
fn build_js_plugin() -> Result<PathBuf, String> {
    let dir = plugin_dir("js");
    if !installed("node") {
        return Err("node is not installed".into());
    }
    if !dir.join("node_modules/@bytecodealliance/componentize-js").exists() {
        return Err(format!(
            "componentize-js is not installed: run {}",
            dir.join("install.sh").display()
        ));
    }
    let out = out_path("level-drop-js.wasm");
    let run = Command::new("node").arg(dir.join("build.mjs")).arg(&out).output();
    assert_built("node build.mjs", run);
    Ok(out)
}

/// Builds the Python plugin, or says why it cannot.
fn build_python_plugin() -> Result<PathBuf, String> {
    let dir = plugin_dir("python");
    if !installed("python3") {
        return Err("python3 is not installed".into());
    }
    if !installed(dir.join(".venv/bin/componentize-py")) {
        return Err(format!(
            "componentize-py is not installed: run {}",
            dir.join("install.sh").display()
        ));
    }
    let out = out_path("level-drop-python.wasm");
    let run = Command::new("bash").arg(dir.join("build.sh")).arg(&out).output();
    assert_built("build.sh", run);
    Ok(out)
}

/// A test whose dependency is missing: a failure under `CI=true` (a skip there would test
/// nothing), else a note on stderr and in `$WEIR_SKIPPED_TESTS`, which `scripts/test` prints
/// at the end of the run, where a person sees it.
fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none_or(|v| v != "true"),
        "{test} cannot run under CI=true: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("WEIR_SKIPPED_TESTS") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

fn batch(lines: &[(&str, Option<&str>)], keys: &KeyTable) -> Batch {
    let level = keys.intern("level");
    let mut chunk = Vec::new();
    let mut spans = Vec::new();
    for (line, lvl) in lines {
        let raw = Span::new(Buf::Chunk, chunk.len(), line.len());
        chunk.extend_from_slice(line.as_bytes());
        chunk.push(b'\n');
        let lvl = lvl.map(|l| {
            let s = Span::new(Buf::Chunk, chunk.len(), l.len());
            chunk.extend_from_slice(l.as_bytes());
            chunk.push(b'\n');
            s
        });
        spans.push((raw, lvl));
    }
    let mut b = Batch::new(chunk, Origin::default());
    for (raw, lvl) in spans {
        let mut e = Event::from_line(raw);
        if let Some(s) = lvl {
            e.set(level, Value::Str(s));
        }
        b.push(e);
    }
    b
}

/// What `level-drop` does in any language: drops the events whose `level` is `drop_level`
/// (`debug` unless configured), sets `lang` and `raw_len` on the others, and refuses an
/// unknown config key.
fn assert_level_drop(wasm: &Path, lang: &[u8]) {
    let keys = KeyTable::new();
    let lines = [
        ("starting", Some("info")),
        ("noise", Some("debug")),
        ("no level at all", None),
    ];
    let mut c = WasmConfig::new(wasm);
    c.config = PluginConfig::from_pairs([("drop_level", "debug")]);
    let mut p = c.build(&keys).unwrap_or_else(|e| panic!("the plugin builds: {e}"));
    for _ in 0..2 {
        // Twice: the instance is reused.
        let mut b = batch(&lines, &keys);
        p.process(&mut b);
        assert_eq!(p.take_failures(), 0);
        assert_eq!(
            raw_lines(&b),
            ["starting", "no level at all"],
            "the debug event is dropped"
        );
        assert_fields(&b, &keys, lang, &[8, 15]);
    }

    // The default is `debug`; another level drops other events.
    for (config, kept, raw_lens) in [
        (vec![], ["starting", "no level at all"], [8, 15]),
        (vec![("drop_level", "info")], ["noise", "no level at all"], [5, 15]),
    ] {
        let mut c = WasmConfig::new(wasm);
        c.config = PluginConfig::from_pairs(config);
        let mut p = c.build(&keys).unwrap_or_else(|e| panic!("the plugin builds: {e}"));
        let mut b = batch(&lines, &keys);
        p.process(&mut b);
        assert_eq!(p.take_failures(), 0);
        assert_eq!(raw_lines(&b), kept);
        assert_fields(&b, &keys, lang, &raw_lens);
    }

    let mut bad = WasmConfig::new(wasm);
    bad.config = PluginConfig::from_pairs([("drop_levle", "debug")]);
    let err = bad.build(&keys).unwrap_err().to_string();
    assert!(
        err.contains("rejected its config: fatal: unknown config key `drop_levle`"),
        "{err}"
    );
}

/// The raw lines of the live events.
fn raw_lines(b: &Batch) -> Vec<&str> {
    b.live()
        .map(|e| std::str::from_utf8(b.bytes(e.raw())).expect("UTF-8 lines"))
        .collect()
}

/// Every live event has `lang` set to `lang` and `raw_len` to the length of its raw line.
fn assert_fields(b: &Batch, keys: &KeyTable, lang: &[u8], raw_lens: &[i64]) {
    let (lang_key, raw_len) = (keys.intern("lang"), keys.intern("raw_len"));
    let live: Vec<&Event> = b.live().collect();
    assert_eq!(live.len(), raw_lens.len());
    for (e, &len) in live.iter().zip(raw_lens) {
        let Some(Value::Str(s)) = e.get(lang_key) else {
            panic!("lang set")
        };
        assert_eq!(b.bytes(s), lang);
        assert_eq!(e.get(raw_len), Some(Value::Int(len)));
    }
}

#[test]
fn the_same_plugin_in_rust_behaves_the_same() {
    assert_level_drop(Path::new(weir_test_plugins::LEVEL_DROP), b"rust");
}

#[test]
fn a_javascript_plugin_runs_through_the_host() {
    match build_js_plugin() {
        Ok(wasm) => assert_level_drop(&wasm, b"js"),
        Err(why) => skip("a_javascript_plugin_runs_through_the_host", &why),
    }
}

#[test]
fn a_python_plugin_runs_through_the_host() {
    match build_python_plugin() {
        Ok(wasm) => assert_level_drop(&wasm, b"python"),
        Err(why) => skip("a_python_plugin_runs_through_the_host", &why),
    }
}
