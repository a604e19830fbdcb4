//! Discovery latency of short-lived containers: 1,000 container log files created over a
//! minute on a simulated node, each written and deleted within 300 ms; reports the time from
//! a file's creation to its first event out of `weir run` (p50/p90/p99/max) and checks that
//! no line is lost. Target: p99 under 200 ms.
//!
//! `cargo bench -p weir --bench discovery` (release build of the agent). `WEIR_DISCOVERY_FILES`
//! changes the number of files (the rate stays 1,000 a minute).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then run a short smoke.
    let bench = std::env::args().any(|a| a == "--bench");
    let files = std::env::var("WEIR_DISCOVERY_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 1000 } else { 20 });
    let node = support::node::Node::new();
    let report = support::node::short_lived(&node, files, 20, Duration::from_millis(60));
    println!("{report}");
    let p99 = report.p(99);
    println!(
        "p99 {} the 200 ms target",
        if p99 < Duration::from_millis(200) {
            "meets"
        } else {
            "misses"
        }
    );
}
