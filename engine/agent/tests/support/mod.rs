//! Helpers shared by the integration tests and benches.

pub mod agent;
pub mod certs;
pub mod http_server;
pub mod kafka;
pub mod lines;
pub mod node;
pub mod output;
pub mod python;

/// A test whose real dependency is missing: a failure under `CI=true`, else a note on
/// stderr and in `$WEIR_SKIPPED_TESTS` (scripts/test prints them at the end).
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none_or(|v| v != "true"),
        "{test} cannot run under CI=true: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("WEIR_SKIPPED_TESTS")
        && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{test}: {why}");
    }
}
