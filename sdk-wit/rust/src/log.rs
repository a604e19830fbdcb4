//! Logging through the host (WIT `logging`).

use std::fmt;

/// How important a log message is (WIT `level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing, normally off.
    Trace,
    /// Information useful when debugging the plugin.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something unexpected that the plugin worked around.
    Warn,
    /// A failure the operator should look at.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// Writes `message` to the agent's log at `level`.
///
/// In a component (feature `guest` on wasm32) it calls the host's `logging.log`, which
/// tags it with the plugin's name; natively (tests, no host) it goes to standard error.
pub fn log(level: Level, message: &str) {
    #[cfg(all(feature = "guest", target_family = "wasm"))]
    crate::guest::host_log(level, message);
    #[cfg(not(all(feature = "guest", target_family = "wasm")))]
    eprintln!("[plugin {level}] {message}");
}
