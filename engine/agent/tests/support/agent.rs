//! Starting `weir run` as a user would, and reading its admin endpoint.
#![allow(dead_code)] // each user takes what it needs

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The binary under test.
pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// `weir run -c CONFIG` with `WEIR_LOG=warn`, stdin closed and stdout discarded; the caller
/// sets stderr (see [`append_to`]) and any environment.
pub fn weir_run(config: &Path) -> Command {
    let mut cmd = Command::new(WEIR);
    cmd.args(["run", "-c"])
        .arg(config)
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// `path` opened for appending (created if missing): the stderr of successive runs in one file.
pub fn append_to(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// `GET /metrics` from the admin endpoint at `addr`: each sample's value by its name with
/// labels (`weir_x_total{component="..."}`); empty when the endpoint does not answer.
pub fn metrics(addr: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return out;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    if conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").is_err() {
        return out;
    }
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.trim().parse()
        {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// The peak resident set of process `pid` so far (`VmHWM` of `/proc/PID/status`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
