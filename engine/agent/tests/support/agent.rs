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

/// A free loopback address (bound, then let go).
pub fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
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

/// `weir run` on `pipeline` with `envs` and `WEIR_DATA_DIR` under `dir`, stderr piped, once
/// its receiving input accepts TCP connections at 127.0.0.1:`port` (within 20 s).
pub fn start_receiving(pipeline: &Path, dir: &Path, port: u16, envs: &[(&str, &str)]) -> std::process::Child {
    let child = weir_run(pipeline)
        .envs(envs.iter().copied())
        .env("WEIR_DATA_DIR", dir.join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiving input did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGTERM, then (within 30 s) its exit status and stderr.
pub fn stop(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "weir run did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Waits for `child` (wait4(2)) and returns its exit status, its peak resident set in KiB
/// and the CPU time it used (user and system), over its whole life.
pub fn wait_with_usage(child: std::process::Child) -> (std::process::ExitStatus, u64, Duration) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: all-zero bytes are a valid `rusage` (integers and timevals).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on our own child's pid, with pointers to live locals; std does not
    // reap it behind our back (we own the `Child` and never call its `wait`).
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        pid,
        child.id() as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64,
        tv(usage.ru_utime) + tv(usage.ru_stime),
    )
}
