//! Builds the `wasm-plugins/` workspace for wasm32-wasip2 in release mode, so that tests
//! and benches that depend on this crate find fresh components, with no manual step.
//!
//! The nested cargo gets its own target directory (`wasm-plugins/target`): sharing the
//! outer one would deadlock on its lock. Environment that the outer build sets for the
//! host (flags, wrappers, target dir) is removed so it does not leak into the Wasm build
//! and spoil its cache.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugin crates (package name -> constant name).
const PLUGINS: &[(&str, &str)] = &[
    ("filter", "FILTER"),
    ("redact", "REDACT"),
    ("enrich", "ENRICH"),
    ("noop", "NOOP"),
    ("split-array", "SPLIT_ARRAY"),
    ("count-by-service", "COUNT_BY_SERVICE"),
    ("route-by-field", "ROUTE_BY_FIELD"),
    ("level-drop", "LEVEL_DROP"),
    ("hostile-spin", "SPIN"),
    ("hostile-alloc-bomb", "ALLOC_BOMB"),
    ("hostile-trap", "TRAP"),
    ("hostile-sneaky", "SNEAKY"),
    ("hostile-emit-flood", "EMIT_FLOOD"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("../../..").canonicalize().expect("the repository root");
    let plugins = root.join("wasm-plugins");
    let sdk = root.join("sdk-wit");
    for dir in [
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        plugins.join(".cargo"),
        plugins.join("filter"),
        plugins.join("redact"),
        plugins.join("enrich"),
        plugins.join("noop"),
        plugins.join("split-array"),
        plugins.join("count-by-service"),
        plugins.join("route-by-field"),
        plugins.join("level-drop"),
        plugins.join("hostile"),
        sdk.join("wit"),
        sdk.join("rust/src"),
        sdk.join("rust/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let target_dir = plugins.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--workspace"])
        .env("CARGO_TARGET_DIR", &target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for wasm-plugins/: {e}"));
    if !status.success() {
        panic!(
            "building wasm-plugins/ for wasm32-wasip2 failed ({status}); the toolchain needs the \
             target: `rustup target add wasm32-wasip2` (rust-toolchain.toml lists it)"
        );
    }
    let out = target_dir.join("wasm32-wasip2/release");
    let mut consts = String::new();
    for (package, constant) in PLUGINS {
        let file = out.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        consts.push_str(&format!(
            "/// `{}`: the component built from `wasm-plugins/` crate `{package}`.\npub const {constant}: &str = {:?};\n",
            file.display(),
            path_str(&file)
        ));
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("plugins.rs");
    std::fs::write(&dest, consts).expect("writing plugins.rs");
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("the repository path is UTF-8").to_string()
}
