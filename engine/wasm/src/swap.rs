//! Picking up a plugin file replaced on disk: every worker's processor shares one
//! [`Current`], which looks at the file at most once per [`CHECK_EVERY`] and, when it
//! changed, loads and checks the new version and publishes it. Each processor switches
//! between two batches (it drops its instance and makes one of the new version), so no
//! event is lost or processed twice; a version that does not load or whose `init` fails is
//! logged and counted, and the previous one keeps running.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::plugin::Compiled;

/// How often the plugin file is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of the file: its modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Nanoseconds since the first call: a clock all workers share.
fn now_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The version of a plugin every worker should run, shared by them.
#[derive(Debug)]
pub(crate) struct Current {
    plugin: RwLock<Arc<Compiled>>,
    /// Bumped each time a new version is published.
    generation: AtomicU64,
    /// The file's stamp when it was last loaded (or last failed to load).
    seen: Mutex<Option<Stamp>>,
    /// When the file may be looked at next (see [`now_nanos`]).
    next_check: AtomicU64,
}

impl Current {
    pub(crate) fn new(plugin: Arc<Compiled>) -> Current {
        let seen = stamp(plugin.path());
        Current {
            plugin: RwLock::new(plugin),
            generation: AtomicU64::new(0),
            seen: Mutex::new(seen),
            next_check: AtomicU64::new(now_nanos() + CHECK_EVERY.as_nanos() as u64),
        }
    }

    /// The version to run now and its generation.
    pub(crate) fn get(&self) -> (Arc<Compiled>, u64) {
        let plugin = self.plugin.read().unwrap_or_else(|e| e.into_inner()).clone();
        (plugin, self.generation.load(Ordering::Acquire))
    }

    /// The generation published last.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Looks at the file if it is time (one worker does, the others go on), and publishes
    /// a new version when the file changed and the new one loads.
    pub(crate) fn check(&self) {
        let now = now_nanos();
        let next = self.next_check.load(Ordering::Relaxed);
        if now < next
            || self
                .next_check
                .compare_exchange(
                    next,
                    now + CHECK_EVERY.as_nanos() as u64,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let (old, _) = self.get();
        let Some(now_stamp) = stamp(old.path()) else {
            return; // Gone or unreadable for now: the running version goes on.
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == Some(now_stamp) {
            return;
        }
        *seen = Some(now_stamp);
        match old.reload() {
            Ok(new) => {
                old.stats.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    plugin = old.name(),
                    file = %old.path().display(),
                    version = new.version(),
                    "wasm plugin file changed: the new version runs from the next batch"
                );
                *self.plugin.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                old.stats.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    plugin = old.name(),
                    file = %old.path().display(),
                    "wasm plugin file changed, but the new version cannot run ({e}): the previous \
                     version keeps running"
                );
            }
        }
    }
}
