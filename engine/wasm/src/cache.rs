//! The on-disk cache of compiled plugins: a component is compiled once per machine (per
//! wasmtime version and settings) and later loads map the machine code from the cache.
//!
//! - **Filled ahead of the run.** `weir plugin build`, `weir plugin compile` and `weir check`
//!   compile into the cache ([`precompile`], or any [`WasmConfig::build`](crate::WasmConfig::build)),
//!   so `weir run` only maps the entry: compiling a plugin costs about a second of CPU and
//!   most of a cold start's peak memory.
//! - **Keyed by what the machine code depends on.** The component's bytes, the engine's
//!   compatibility hash (wasmtime version, target, settings) and whether fuel is metered: a
//!   pipeline with `fuel:` runs other machine code than one without.
//! - **Bounded.** After each store, the least recently used entries (a load refreshes an
//!   entry's modification time) are removed until the cache fits its limit
//!   (`$WEIR_PLUGIN_CACHE_MAX_BYTES`, default [`DEFAULT_MAX_BYTES`]); the entry just
//!   written is never removed, and temp files left by a killed writer are.
//! - **Never fatal to a run.** An entry that does not load is compiled again and replaced;
//!   a cache that cannot be written only costs the compile.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use weir_core::units::ByteSize;

/// The cache's size limit when `$WEIR_PLUGIN_CACHE_MAX_BYTES` is not set: 512 MiB (an entry
/// is typically 0.2 to 5 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// A temp file older than this is a writer's leftover (a write and rename take milliseconds).
const STALE_TMP: Duration = Duration::from_secs(600);

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

/// The cache's size limit: `$WEIR_PLUGIN_CACHE_MAX_BYTES` (`1073741824`, `512MiB`, `2GB`),
/// else [`DEFAULT_MAX_BYTES`]. An unreadable value is an error that names the variable.
pub fn cache_max_bytes() -> Result<u64, CacheError> {
    match std::env::var("WEIR_PLUGIN_CACHE_MAX_BYTES") {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_BYTES),
        Ok(v) if v.trim().is_empty() => Ok(DEFAULT_MAX_BYTES),
        Ok(v) => v.parse::<ByteSize>().map(|b| b.0).map_err(CacheError::MaxBytes),
        Err(std::env::VarError::NotUnicode(v)) => Err(CacheError::MaxBytes(format!(
            "{v:?} is not a size (examples: 512MiB, 2GB)"
        ))),
    }
}

/// What went wrong filling the cache ([`precompile`]).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// `WEIR_PLUGIN_CACHE=off`, or no cache directory can be found.
    #[error(
        "the compiled-plugin cache is off: set WEIR_PLUGIN_CACHE to a directory (it is `off` or unset, and so are XDG_CACHE_HOME and HOME)"
    )]
    Off,
    /// `WEIR_PLUGIN_CACHE_MAX_BYTES` is not a size.
    #[error("WEIR_PLUGIN_CACHE_MAX_BYTES: {0}")]
    MaxBytes(String),
    /// The plugin file cannot be read.
    #[error("cannot read plugin {path}: {io}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// Why.
        io: std::io::Error,
    },
    /// The file is not a Wasm component that wasmtime can compile.
    #[error("{path} is not a Wasm component: {message}")]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The compiled plugin cannot be written to the cache.
    #[error(
        "cannot write the compiled plugin to the cache {dir}: {message} (set WEIR_PLUGIN_CACHE to a writable directory)"
    )]
    Write {
        /// The cache directory.
        dir: PathBuf,
        /// Why.
        message: String,
    },
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// The compiled-plugin cache: a directory and its size limit.
#[derive(Clone, Debug)]
pub struct PluginCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// A plugin in the cache, from [`PluginCache::precompile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precompiled {
    /// The cache entry (`<key>.cwasm`).
    pub file: PathBuf,
    /// The entry was there already and loads; `false`: compiled now (it was missing or
    /// unusable), and the cache pruned.
    pub already_cached: bool,
}

/// Outcome of [`PluginCache::load_or_compile`].
enum Loaded {
    Cached,
    Compiled,
}

impl PluginCache {
    /// The cache in `dir`, pruned to `max_bytes` after each store.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> PluginCache {
        PluginCache {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The cache the environment sets up ([`cache_dir`], [`cache_max_bytes`]); `None` when
    /// it is off.
    pub fn from_env() -> Result<Option<PluginCache>, CacheError> {
        let Some(dir) = cache_dir() else { return Ok(None) };
        Ok(Some(PluginCache::new(dir, cache_max_bytes()?)))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Compiles the component at `path` into the cache, for pipelines with fuel metering
    /// (`fuel: true`) or without, unless a usable entry is there already; says which and
    /// where the entry lies.
    pub fn precompile(&self, path: &Path, fuel: bool) -> Result<Precompiled, CacheError> {
        let bytes = std::fs::read(path).map_err(|io| CacheError::Read {
            path: path.to_path_buf(),
            io,
        })?;
        let engine = crate::plugin::engine(fuel).map_err(|e| CacheError::Engine(e.to_string()))?;
        let file = self.entry(&engine, &bytes, fuel);
        if load(&engine, &file).is_some() {
            return Ok(Precompiled {
                file,
                already_cached: true,
            });
        }
        let component = Component::new(&engine, &bytes).map_err(|e| CacheError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        self.store(&file, &component).map_err(|e| CacheError::Write {
            dir: self.dir.clone(),
            message: format!("{e:#}"),
        })?;
        Ok(Precompiled {
            file,
            already_cached: false,
        })
    }

    /// The entry of `bytes` compiled by `engine`. The key covers the component's bytes,
    /// the engine's compatibility hash (wasmtime version, target, settings) and fuel.
    fn entry(&self, engine: &Engine, bytes: &[u8], fuel: bool) -> PathBuf {
        let mut h = Sha256Hasher(Sha256::new());
        h.0.update(b"weir-wasm cache 1\0");
        h.0.update([u8::from(fuel)]);
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        h.0.update(bytes);
        let key: String = h.0.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{key}.cwasm"))
    }

    /// Loads the entry of `bytes`, or compiles them and stores the result (a failure to
    /// store is logged: it costs only the compile). Also says which, and the entry's path.
    fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        fuel: bool,
    ) -> wasmtime::Result<(Component, Loaded, PathBuf)> {
        let file = self.entry(engine, bytes, fuel);
        if let Some(component) = load(engine, &file) {
            return Ok((component, Loaded::Cached, file));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&file, &component) {
            tracing::warn!(
                dir = %self.dir.display(),
                "cannot cache the compiled plugin, so each start compiles it again: {e:#} \
                 (set WEIR_PLUGIN_CACHE to a writable directory, or to `off`)"
            );
        }
        Ok((component, Loaded::Compiled, file))
    }

    /// Writes the compiled component atomically (temp file, rename), then prunes the cache.
    fn store(&self, file: &Path, component: &Component) -> wasmtime::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let code = component.serialize()?;
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, code)?;
        if let Err(e) = std::fs::rename(&tmp, file) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        self.prune(file);
        Ok(())
    }

    /// Removes the least recently used entries until the cache fits its limit, never
    /// `keep`; and temp files older than [`STALE_TMP`]. Entries that vanish meanwhile (another
    /// process pruning) are skipped.
    fn prune(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let now = SystemTime::now();
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for e in dir.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(now);
            match path.extension().and_then(|x| x.to_str()) {
                Some("cwasm") => entries.push((modified, meta.len(), path)),
                Some(x)
                    if x.starts_with("tmp")
                        && x[3..].bytes().all(|b| b.is_ascii_digit())
                        && now.duration_since(modified).is_ok_and(|age| age > STALE_TMP) =>
                {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort_by_key(|(modified, _, _)| *modified);
        let (mut removed, mut freed) = (0usize, 0u64);
        for (_, len, path) in &entries {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            match std::fs::remove_file(path) {
                Ok(()) => {
                    total -= len;
                    removed += 1;
                    freed += len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => tracing::debug!(file = %path.display(), "cannot prune the plugin cache entry: {e}"),
            }
        }
        tracing::debug!(
            dir = %self.dir.display(),
            removed,
            freed,
            left = total,
            limit = self.max_bytes,
            "plugin cache pruned (least recently used first)"
        );
    }
}

/// The entry at `file` if it loads (and then marked as used now, for pruning); `None`
/// when it is missing or unusable.
fn load(engine: &Engine, file: &Path) -> Option<Component> {
    if !file.exists() {
        return None;
    }
    // SAFETY: the file was written by `PluginCache::store` with `Component::serialize`, from
    // a component that compiled and validated, by an engine with the same compatibility
    // hash (it is part of the name), into the user's own cache directory: it is as trusted
    // as the weir binary itself. A file that does not load is compiled again and replaced.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(component) => {
            // Pruning removes the least recently used entries first: this one was used now.
            if let Err(e) = std::fs::File::open(file).and_then(|f| f.set_modified(SystemTime::now())) {
                tracing::debug!(file = %file.display(), "cannot mark the plugin cache entry as used: {e}");
            }
            Some(component)
        }
        Err(e) => {
            tracing::debug!(file = %file.display(), "compiled plugin cache entry unusable, compiling again: {e:#}");
            None
        }
    }
}

/// [`PluginCache::precompile`] on the cache the environment sets up: the error
/// [`CacheError::Off`] when it is off.
pub fn precompile(path: &Path, fuel: bool) -> Result<Precompiled, CacheError> {
    PluginCache::from_env()?.ok_or(CacheError::Off)?.precompile(path, fuel)
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

/// Compiles `bytes`, or loads the result of an earlier compilation from the cache (see the
/// module docs); any cache failure falls back to compiling. Says at `debug` which it did.
pub(crate) fn compile(engine: &Engine, bytes: &[u8], fuel: bool) -> wasmtime::Result<Component> {
    let start = Instant::now();
    let cache = match PluginCache::from_env() {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!("{e}; using the default limit, {}", ByteSize(DEFAULT_MAX_BYTES));
            cache_dir().map(|dir| PluginCache::new(dir, DEFAULT_MAX_BYTES))
        }
    };
    let Some(cache) = cache else {
        let component = Component::new(engine, bytes)?;
        tracing::debug!(
            ms = start.elapsed().as_millis() as u64,
            fuel,
            "wasm plugin compiled (the compiled-plugin cache is off)"
        );
        return Ok(component);
    };
    let (component, how, file) = cache.load_or_compile(engine, bytes, fuel)?;
    let ms = start.elapsed().as_millis() as u64;
    match how {
        Loaded::Cached => {
            tracing::debug!(cache = %file.display(), ms, fuel, "wasm plugin loaded from the compiled-plugin cache")
        }
        Loaded::Compiled => tracing::debug!(
            cache = %file.display(),
            ms,
            fuel,
            "wasm plugin compiled (it was not in the compiled-plugin cache; `weir plugin compile` or `weir check` fill it ahead)"
        ),
    }
    Ok(component)
}
