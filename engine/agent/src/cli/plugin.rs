//! `weir plugin new|build|test|compile`: the plugin author's loop.
//!
//! - `new NAME` writes a Rust plugin crate that builds as is: a `cdylib` depending on
//!   `weir-sdk` (feature `guest`), the wasm32-wasip2 target set in `.cargo/config.toml`,
//!   the repository's toolchain pin, a worked example plugin with a native test whose config
//!   keys all have defaults, and a sample input.
//! - `build [DIR]` runs `cargo build --release --target wasm32-wasip2` there, prints the
//!   path of the component and compiles it into the precompiled cache (for pipelines
//!   without `fuel:`), so the first `weir run` does not.
//! - `test PLUGIN.wasm --input FILE` runs the plugin over the file's lines in batches, as a
//!   pipeline would, and prints the events that come out (JSON lines on stdout) and the
//!   counters (stderr).
//! - `compile PLUGIN.wasm...` compiles components into the precompiled cache and says
//!   where each entry lies (for a deployment: run it where `weir run` will run).
//!
//! `new`, `build` and `test` end with the next command to run (on stderr for `build` and
//! `test`, whose stdout is for scripts).
//!
//! `weir-sdk` is not published: `new` points the crate at the SDK of the source tree this
//! `weir` was built from (or at `--sdk DIR`), as a path dependency.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use weir_core::encode::{Encoder, JsonEncoder, Route};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions, for_each_batch};
use weir_core::model::KeyTable;
use weir_core::pipeline::Processor;
use weir_core::units::{ByteSize, Dur};
use weir_wasm::{Compiled, FailureKind, OnError, PluginConfig, WasmConfig};

/// `weir plugin ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Scaffold a Rust plugin crate that builds as is.
    New {
        /// The crate name (also its directory, unless --dir).
        name: String,
        /// Where to create it (default: ./NAME). Must not exist yet.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The weir-sdk crate to depend on (default: sdk-wit/rust of the source tree this
        /// weir was built from).
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2 in release mode; prints the component's path
    /// and compiles it into the precompiled cache (for pipelines without `fuel:`).
    Build {
        /// The crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin over a file and print the resulting events (JSON lines) and counters.
    Test {
        /// The component (`.wasm`).
        plugin: PathBuf,
        /// The input: one event per line (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// A plugin config entry (repeat for several), as the pipeline's `config:` would
        /// give it: `include.level=^error$`.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Parse each line as JSON first (as `parse_json` would), so the plugin sees fields.
        #[arg(long)]
        parse_json: bool,
        /// Time limit per call.
        #[arg(long, default_value = "1s")]
        timeout: Dur,
        /// Memory cap of the instance (all its memories and tables).
        #[arg(long, default_value = "64MiB")]
        memory: ByteSize,
        /// Fuel per call (off by default).
        #[arg(long)]
        fuel: Option<u64>,
        /// pass | drop | dead_letter (dead-lettered events are printed on stderr).
        #[arg(long, default_value = "pass", value_parser = parse_on_error)]
        on_error: OnError,
        /// Input bytes per batch at most (the plugin is called once per batch).
        #[arg(long, default_value = "1MiB")]
        batch_bytes: ByteSize,
    },
    /// Compile plugins into the precompiled cache, so that `weir run` does not (see
    /// WEIR_PLUGIN_CACHE); prints each cache entry and whether it was there already.
    Compile {
        /// The components (`.wasm`).
        #[arg(required = true)]
        plugins: Vec<PathBuf>,
        /// For pipelines that set `fuel:` (fuel metering compiles to other machine code).
        #[arg(long)]
        fuel: bool,
    },
}

fn parse_on_error(s: &str) -> Result<OnError, String> {
    match s {
        "pass" => Ok(OnError::Pass),
        "drop" => Ok(OnError::Drop),
        "dead_letter" => Ok(OnError::DeadLetter),
        _ => Err(format!("`{s}`: expected pass, drop or dead_letter")),
    }
}

/// Runs a `weir plugin` command.
pub fn run(command: PluginCommand) -> ExitCode {
    let result = match command {
        PluginCommand::New { name, dir, sdk } => new(&name, dir, sdk),
        PluginCommand::Build { dir } => build(&dir).and_then(|wasm| {
            println!("{}", wasm.display());
            precompile_built(&wasm)?;
            eprintln!(
                "next: weir plugin test {} --input {}",
                shell_quote(&wasm),
                shell_quote(&dir.join(SAMPLE_INPUT))
            );
            Ok(())
        }),
        PluginCommand::Test {
            plugin,
            input,
            config,
            parse_json,
            timeout,
            memory,
            fuel,
            on_error,
            batch_bytes,
        } => {
            let mut c = WasmConfig::new(plugin);
            c.timeout = timeout;
            c.memory = memory;
            c.fuel = fuel;
            c.on_error = on_error;
            parse_config(&config).and_then(|pairs| {
                c.config = PluginConfig::from_pairs(pairs);
                test(&c, &input, parse_json, batch_bytes)?;
                print_pipeline_next(&c);
                Ok(())
            })
        }
        PluginCommand::Compile { plugins, fuel } => plugins.iter().try_for_each(|p| compile(p, fuel)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `path` as a shell word: as is when it needs no quoting, else in single quotes.
fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@%".contains(&b));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// After `build`: the component compiled into the cache, so the first `weir run` loads it.
/// A cache that is off or not writable is a warning (the build itself succeeded); a
/// component that does not compile is an error.
fn precompile_built(wasm: &Path) -> anyhow::Result<()> {
    match weir_wasm::precompile(wasm, false) {
        Ok(p) => {
            eprintln!("compiled for this machine into the plugin cache: {}", p.file.display());
            Ok(())
        }
        Err(e @ weir_wasm::CacheError::Invalid { .. }) => Err(e.into()),
        Err(e) => {
            eprintln!("warning: not precompiled, the first `weir run` will compile it: {e}");
            Ok(())
        }
    }
}

/// `weir plugin compile`: one component into the cache, checked against the plugin world.
fn compile(plugin: &Path, fuel: bool) -> anyhow::Result<()> {
    let entry = weir_wasm::precompile(plugin, fuel)?;
    // It compiled; it must also be a plugin (the world's imports and exports). This loads
    // the entry just made, without running the plugin's `init`.
    let mut c = WasmConfig::new(plugin);
    c.fuel = fuel.then_some(1);
    Compiled::load(plugin, c.plugin_name(), Vec::new(), c.limits(), OnError::Pass, 0)?;
    let fuel = if fuel { " (for pipelines with `fuel:`)" } else { "" };
    if entry.already_cached {
        println!("{}: already cached{fuel}: {}", plugin.display(), entry.file.display());
    } else {
        println!("{}: compiled now{fuel}: {}", plugin.display(), entry.file.display());
    }
    Ok(())
}

/// After `test`: how to put the plugin in a pipeline, with the config it was tested with;
/// `weir check` then also compiles it ahead of `weir run`.
fn print_pipeline_next(c: &WasmConfig) {
    let plugin = std::path::absolute(&c.plugin).unwrap_or_else(|_| c.plugin.clone());
    let mut snippet = format!(
        "processors:\n  - type: wasm\n    plugin: {}\n",
        serde_json::Value::String(plugin.display().to_string())
    );
    if !c.config.entries.is_empty() {
        let entries: Vec<String> = c
            .config
            .entries
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    serde_json::Value::String(v.clone())
                )
            })
            .collect();
        snippet.push_str(&format!("    config: {{ {} }}\n", entries.join(", ")));
    }
    eprint!(
        "next: add the plugin to a pipeline file, then `weir check -c PIPELINE.yaml` \
         (it also compiles the plugin ahead of `weir run`):\n{snippet}"
    );
}

/// `KEY=VALUE` arguments as pairs.
fn parse_config(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("--config `{a}`: expected KEY=VALUE")),
        })
        .collect()
}

/// The SDK of the source tree this binary was built from, if it is still there.
fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk-wit/rust");
    sdk.join("Cargo.toml")
        .exists()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

/// The toolchain pin of the source tree (channel and the wasm32-wasip2 target).
const TOOLCHAIN: &str = include_str!("../../../../rust-toolchain.toml");

fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("`{name}` is not a crate name (letters, digits, `-` and `_`, starting with a letter)");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} already exists: choose another name or --dir", dir.display());
    }
    let sdk = match sdk {
        Some(s) => s
            .canonicalize()
            .with_context(|| format!("--sdk {}: no such directory", s.display()))?,
        None => default_sdk()
            .ok_or_else(|| anyhow!("cannot find weir-sdk (sdk-wit/rust of Weir's source tree): pass --sdk DIR"))?,
    };
    if !sdk.join("Cargo.toml").exists() {
        bail!("--sdk {}: no Cargo.toml there", sdk.display());
    }
    let files: [(&str, String); 7] = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        ("rust-toolchain.toml", TOOLCHAIN.to_string()),
        (".gitignore", "/target\n".to_string()),
        ("src/lib.rs", LIB_RS.replace("{{name}}", name)),
        ("README.md", README.replace("{{name}}", name)),
        (SAMPLE_INPUT, SAMPLE.to_string()),
    ];
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("created plugin crate {} in {}", name, dir.display());
    println!("next: weir plugin build {}", shell_quote(&dir));
    Ok(())
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A Weir plugin: a component for wasm32-wasip2 (the target is set in .cargo/config.toml).
[lib]
crate-type = ["cdylib"]

[dependencies]
weir-sdk = {{ path = {sdk:?}, features = ["guest"] }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true

# Its own workspace, even when created inside another one.
[workspace]
"#,
        sdk = sdk.display().to_string()
    )
}

/// The scaffold's sample input, which `build` names in its next command.
const SAMPLE_INPUT: &str = "sample.log";

const SAMPLE: &str = "GET /healthcheck 200\ndisk error on /dev/sda1\nuser alice logged in\n";

const CARGO_CONFIG: &str =
    "# Plugins are components: build for wasm32-wasip2 by default.\n[build]\ntarget = \"wasm32-wasip2\"\n";

const LIB_RS: &str = r#"//! `{{name}}`: a Weir plugin. It marks the events whose `field` (default `message`)
//! contains `needle` (default `error`) with `matched: true`, and drops those that contain
//! `drop` (when set).
//!
//! ```yaml
//! - type: wasm
//!   plugin: target/wasm32-wasip2/release/{{name}}.wasm   # see `weir plugin build`
//!   config: { needle: error, drop: healthcheck }         # both optional
//! ```

use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

pub struct MyPlugin {
    field: String,
    needle: String,
    drop: Option<String>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Plugin for MyPlugin {
    /// Called once per instance with the pipeline's `config:` entries (give every key a
    /// default, or use `config.require("key")?`). A fatal error here stops the pipeline
    /// from starting, with this message.
    fn init(config: &Config) -> Result<Self, Error> {
        let needle = config.get("needle").unwrap_or("error");
        if needle.is_empty() {
            return Err(Error::fatal("config `needle` is empty: it would match every event"));
        }
        Ok(MyPlugin {
            field: config.get("field").unwrap_or("message").to_string(),
            needle: needle.to_string(),
            drop: config.get("drop").map(str::to_string),
        })
    }

    /// Called once per batch. Look keys up here, once, and compare ids per event.
    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let Some(field) = batch.key(&self.field) else { return Ok(()) };
        let matched = edits.key("matched");
        for event in batch.events() {
            let Some(text) = event.get(field).and_then(|v| v.as_bytes()) else { continue };
            if self.drop.as_deref().is_some_and(|d| contains(text, d.as_bytes())) {
                edits.drop(&event);
            } else if contains(text, self.needle.as_bytes()) {
                edits.set(&event, matched, true);
            }
        }
        Ok(())
    }
}

weir_sdk::export!(MyPlugin);

// Natively, through the same flat round trip the host makes:
//   cargo test --target x86_64-unknown-linux-gnu   (or your machine's target)
#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::testing::{OwnedEvent, OwnedValue, run};

    #[test]
    fn needle_defaults_to_error() {
        let mut plugin = MyPlugin::init(&Config::from_iter([("field", "message")])).unwrap();
        let out = run(&mut plugin, vec![OwnedEvent::line("disk error").with("message", "disk error")]).unwrap();
        assert!(out[0].fields.iter().any(|(k, v)| k == "matched" && *v == OwnedValue::Bool(true)));
    }

    #[test]
    fn marks_and_drops() {
        let config = Config::from_iter([("needle", "error"), ("drop", "healthcheck")]);
        let mut plugin = MyPlugin::init(&config).unwrap();
        let out = run(
            &mut plugin,
            vec![
                OwnedEvent::line("disk error").with("message", "disk error"),
                OwnedEvent::line("GET /healthcheck").with("message", "GET /healthcheck"),
                OwnedEvent::line("all good").with("message", "all good"),
            ],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        let matched = |e: &OwnedEvent| e.fields.iter().any(|(k, v)| k == "matched" && *v == OwnedValue::Bool(true));
        assert!(matched(&out[0]) && !matched(&out[1]));
    }
}
"#;

const README: &str = r#"# {{name}}

A Weir plugin (a WebAssembly component for `wasm32-wasip2`), made by `weir plugin new`.

```sh
weir plugin build .                                  # cargo build --release --target wasm32-wasip2
weir plugin test target/wasm32-wasip2/release/{{name}}.wasm --input sample.log
weir plugin test target/wasm32-wasip2/release/{{name}}.wasm --input sample.log --config needle=GET --config drop=alice
cargo test --target x86_64-unknown-linux-gnu         # the native unit tests
```

`build` also compiles the plugin for this machine into Weir's plugin cache, so the first
`weir run` starts without compiling it (`weir plugin compile FILE` does that alone, e.g. on
the machine that runs the pipeline).

The contract, the SDK and the limits are described in Weir's `sdk-wit/README.md`.
"#;

/// Builds the crate in `dir` and returns the path of its component.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    if !dir.join("Cargo.toml").exists() {
        bail!("{}: no Cargo.toml (give the plugin crate's directory)", dir.display());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .status()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!(
            "cargo build --release --target wasm32-wasip2 failed in {} ({status}); is the target installed? \
             (`rustup target add wasm32-wasip2`)",
            dir.display()
        );
    }
    let meta = Command::new(&cargo)
        .current_dir(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !meta.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&meta.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).context("reading cargo metadata")?;
    let target_dir = meta["target_directory"]
        .as_str()
        .ok_or_else(|| anyhow!("cargo metadata has no target_directory"))?;
    let manifest = dir.join("Cargo.toml").canonicalize()?;
    let package = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .ok_or_else(|| anyhow!("{}: no package (a workspace root?)", manifest.display()))?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .ok_or_else(|| {
            anyhow!(
                "{}: no cdylib target: a plugin has `[lib] crate-type = [\"cdylib\"]`",
                manifest.display()
            )
        })?;
    let name = lib["name"].as_str().unwrap_or_default().replace('-', "_");
    let wasm = Path::new(target_dir)
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    if !wasm.exists() {
        bail!("the build succeeded but {} is missing", wasm.display());
    }
    Ok(wasm)
}

fn test(config: &WasmConfig, input: &Path, parse_json: bool, batch_bytes: ByteSize) -> anyhow::Result<()> {
    let keys = KeyTable::new();
    let mut stages: Vec<Box<dyn Processor>> = Vec::new();
    if parse_json {
        let c: weir_core::parse::json::ParseJsonConfig = serde_json::from_value(serde_json::json!({}))?;
        stages.push(Box::new(c.build(&keys).map_err(|e| anyhow!("parse_json: {e}"))?));
    }
    let plugin = config
        .build(&keys)
        .map_err(|e| anyhow!("{}: {e}", config.plugin.display()))?;
    let compiled = plugin.plugin().clone();
    stages.push(Box::new(plugin));
    let reader: Box<dyn std::io::Read> = if input == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(input).with_context(|| format!("--input {}", input.display()))?)
    };
    let mut encoder = JsonEncoder::new(Arc::clone(&keys));
    let mut out = Vec::new();
    let mut dead = Vec::new();
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let (mut events_in, mut events_out, mut dead_letters, mut batches, mut failures) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut write_err = None;
    let start = Instant::now();
    let chunk = usize::try_from(batch_bytes.0).unwrap_or(DEFAULT_CHUNK_BYTES).max(1);
    for_each_batch(reader, chunk, &LineOptions::default(), |batch| {
        batches += 1;
        events_in += batch.len() as u64;
        for stage in stages.iter_mut() {
            stage.process(batch);
        }
        failures += stages.last_mut().map_or(0, |s| s.take_failures());
        events_out += batch.live().count() as u64;
        dead_letters += batch.dead_letters().count() as u64;
        out.clear();
        encoder.encode_route(batch, Route::Main, &mut out);
        if write_err.is_none()
            && let Err(e) = stdout.write_all(&out)
        {
            write_err = Some(e);
        }
        encoder.encode_route(batch, Route::DeadLetter, &mut dead);
    })
    .with_context(|| format!("reading {}", input.display()))?;
    let elapsed = start.elapsed();
    match write_err {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e).context("writing the events"),
        _ => {}
    }
    let _ = stdout.flush();
    let stats = compiled.stats();
    let mut err = std::io::stderr().lock();
    for line in dead.split_inclusive(|&b| b == b'\n') {
        let _ = write!(err, "dead_letter: {}", String::from_utf8_lossy(line));
    }
    let _ = writeln!(
        err,
        "plugin {}: batches {batches}, events in {events_in}, out {events_out}, dropped {}, dead-lettered {dead_letters}, failed events {failures}",
        compiled.name(),
        events_in.saturating_sub(events_out + dead_letters),
    );
    let by_kind: Vec<String> = FailureKind::ALL
        .iter()
        .filter_map(|&k| {
            let n = stats.failures_of(k);
            (n > 0).then(|| format!("{} {n}", k.name()))
        })
        .collect();
    let _ = writeln!(
        err,
        "plugin {}: calls {}, retries {}, instances {}, failed batches: {}, {:.0} ns/event",
        compiled.name(),
        stats.calls.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.instances.load(Ordering::Relaxed),
        if by_kind.is_empty() {
            "none".to_string()
        } else {
            by_kind.join(", ")
        },
        elapsed.as_nanos() as f64 / events_in.max(1) as f64,
    );
    Ok(())
}
