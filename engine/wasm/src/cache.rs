//! The on-disk cache of compiled plugins: a component is compiled once per machine (per
//! wasmtime version and settings) and later loads map the machine code from the cache.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled plugins are kept: `$WEIR_PLUGIN_CACHE` (`off` turns the cache off), else
/// `$XDG_CACHE_HOME/weir/plugins`, else `$HOME/.cache/weir/plugins`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("WEIR_PLUGIN_CACHE") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("weir/plugins"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".cache/weir/plugins"))
}

/// Feeds `Hash` input into SHA-256, for a cache key stable across runs.
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Compiles `bytes`, or loads the result of an earlier compilation from the cache. The
/// cache key covers the component's bytes, the engine's compatibility hash (wasmtime
/// version, target, settings) and fuel; any cache failure falls back to compiling.
pub(crate) fn compile(engine: &Engine, bytes: &[u8], fuel: bool) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir() else {
        return Component::new(engine, bytes);
    };
    let mut h = Sha256Hasher(Sha256::new());
    h.0.update(b"weir-wasm cache 1\0");
    h.0.update([u8::from(fuel)]);
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    h.0.update(bytes);
    let key: String = h.0.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let file = dir.join(format!("{key}.cwasm"));
    if file.exists() {
        // SAFETY: the file was written below by `Component::serialize`, from a component
        // that compiled and validated, by an engine with the same compatibility hash (it is
        // part of the name), into the user's own cache directory: it is as trusted as the
        // weir binary itself. A file that does not load is compiled again and replaced.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::debug!(file = %file.display(), "compiled plugin cache entry unusable: {e:#}"),
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store_cached(&dir, &file, &component) {
        tracing::debug!(dir = %dir.display(), "cannot cache the compiled plugin: {e:#}");
    }
    Ok(component)
}

/// Writes the compiled component atomically (temp file, rename).
fn store_cached(dir: &Path, file: &Path, component: &Component) -> wasmtime::Result<()> {
    std::fs::create_dir_all(dir)?;
    let code = component.serialize()?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, code)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}
