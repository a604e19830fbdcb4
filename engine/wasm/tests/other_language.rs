//! A plugin written in JavaScript (`wasm-plugins/js/level-drop`, built with componentize-js
//! from npm) runs through the same host as the Rust ones: the contract is the WIT, not the
//! Rust SDK.
//!
//! The toolchain is installed by `wasm-plugins/js/level-drop/install.sh` (`npm ci`), which
//! the test command (`scripts/test`) runs. Without node or without that install the test
//! fails under `CI=true`; elsewhere it is skipped and `scripts/test` prints why at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_core::model::{Batch, Buf, Event, KeyTable, Origin, Span, Value};
use weir_core::pipeline::Processor;
use weir_wasm::{PluginConfig, WasmConfig};

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wasm-plugins/js/level-drop")
}

/// Builds the JavaScript plugin, or says why it cannot.
fn build_js_plugin() -> Result<PathBuf, String> {
    let dir = plugin_dir();
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("node is not installed".into()),
    }
    if !dir.join("node_modules/@bytecodealliance/componentize-js").exists() {
        return Err(format!(
            "componentize-js is not installed: run {}",
            dir.join("install.sh").display()
        ));
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("level-drop-js.wasm");
    let run = Command::new("node")
        .arg(dir.join("build.mjs"))
        .arg(&out)
        .output()
        .map_err(|e| format!("running node: {e}"))?;
    // The toolchain is there: a failed build is a real failure, not a skip.
    assert!(
        run.status.success(),
        "node build.mjs failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
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

#[test]
fn a_javascript_plugin_runs_through_the_host() {
    let wasm = match build_js_plugin() {
        Ok(w) => w,
        Err(why) => return skip("a_javascript_plugin_runs_through_the_host", &why),
    };
    let keys = KeyTable::new();
    let mut c = WasmConfig::new(&wasm);
    c.config = PluginConfig::from_pairs([("drop_level", "debug")]);
    let mut p = c.build(&keys).unwrap_or_else(|e| panic!("the JS plugin builds: {e}"));
    for _ in 0..2 {
        // Twice: the instance is reused.
        let mut b = batch(
            &[
                ("starting", Some("info")),
                ("noise", Some("debug")),
                ("no level at all", None),
            ],
            &keys,
        );
        p.process(&mut b);
        assert_eq!(p.take_failures(), 0);
        let live: Vec<&Event> = b.live().collect();
        assert_eq!(live.len(), 2, "the debug event is dropped");
        let (lang, raw_len) = (keys.intern("lang"), keys.intern("raw_len"));
        for (e, len) in live.iter().zip([8, 15]) {
            let Some(Value::Str(s)) = e.get(lang) else {
                panic!("lang set")
            };
            assert_eq!(b.bytes(s), b"js");
            assert_eq!(e.get(raw_len), Some(Value::Int(len)));
        }
    }
    let mut bad = WasmConfig::new(&wasm);
    bad.config = PluginConfig::from_pairs([("drop_levle", "debug")]);
    let err = bad.build(&keys).unwrap_err().to_string();
    assert!(
        err.contains("rejected its config: fatal: unknown config key `drop_levle`"),
        "{err}"
    );
}
