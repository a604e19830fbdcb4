//! What the listening workloads (`send:` in their bench block, [`SendRole`]) need around the
//! measured run: a free address for their input, and the corpus sent to it from outside
//! the measured process, so that sending costs the measured run nothing.
//!
//! - `syslog_tcp`: the harness itself writes the corpus file over one TCP connection
//!   (the kernel copies it: the harness's memory does not grow), then shuts down the
//!   write side and closes.
//! - `otlp`: a second `weir run` of the same binary reads the corpus (`file`, `mode:
//!   once`) into an `opentelemetry` output (protobuf, 1 MiB batches), and ends once every
//!   request got 200. It is unmeasured: it runs beside the measured process, which is
//!   where the input under test decodes what it sends.
//!
//! Both wait for the listener to come up: connecting is retried for up to
//! [`CONNECT_WITHIN`]; the `opentelemetry` output retries a refused connection and a 429
//! itself. When the measured run ends before the sending does (it failed, or it went
//! idle), the sending stops with an error.

use std::fs::File;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::workload::SendRole;

/// How long connecting to the measured run's listener is retried while it starts.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// `127.0.0.1:PORT` with a port that was free a moment ago (bound to port 0 and released:
/// the measured run binds it next).
pub fn free_address() -> Result<String, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Sends `corpus` to `address`, where the measured run (process `measured`, our child,
/// not reaped) listens, as `role` says; `weir` runs the OTLP sender, whose config and
/// stderr go into `dir`.
pub fn send(
    role: SendRole,
    weir: &Path,
    dir: &Path,
    corpus: &Path,
    address: &str,
    measured: libc::pid_t,
) -> Result<(), String> {
    match role {
        SendRole::SyslogTcp => syslog_tcp(corpus, address, measured),
        SendRole::Otlp => otlp(weir, dir, corpus, address, measured),
    }
}

/// The corpus as it is over one connection.
fn syslog_tcp(corpus: &Path, address: &str, measured: libc::pid_t) -> Result<(), String> {
    let mut stream = connect(address, measured)?;
    let mut file = File::open(corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    io::copy(&mut file, &mut stream).map_err(|e| format!("writing the corpus to {address}: {e}"))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("closing the connection to {address}: {e}"))
}

/// A connection to `address`, retried while the measured run starts.
fn connect(address: &str, measured: libc::pid_t) -> Result<TcpStream, String> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return Ok(stream),
            Err(e) if start.elapsed() >= CONNECT_WITHIN => {
                return Err(format!(
                    "nothing listens on {address} after {} s: {e}",
                    CONNECT_WITHIN.as_secs()
                ));
            }
            Err(_) if exited(measured) => return Err(format!("the measured run ended before {address} listened")),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Each corpus line as an OTLP log record, sent by a second `weir run`.
fn otlp(weir: &Path, dir: &Path, corpus: &Path, address: &str, measured: libc::pid_t) -> Result<(), String> {
    // Short backoff: a refused connection (the measured run still starting) is retried
    // within 50 ms, not the default 250 ms doubling to 30 s.
    let yaml = format!(
        "inputs:\n  - {{ type: file, paths: ['{}'], mode: once }}\n\
         outputs:\n  - type: opentelemetry\n    endpoint: 'http://{address}/v1/logs'\n\
         \x20   retry: {{ initial_backoff: 50ms, max_backoff: 1s }}\n",
        crate::kafka::quote(corpus)
    );
    let config = dir.join("otlp-send.yaml");
    std::fs::write(&config, yaml).map_err(|e| format!("{}: {e}", config.display()))?;
    let stderr = dir.join("otlp-send.stderr");
    let file = File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    let mut sender = Command::new(weir)
        .args(["--log-level", "warn", "run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", weir.display()))?;
    loop {
        if let Some(status) = sender.try_wait().map_err(|e| format!("waiting for the sender: {e}"))? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "the OTLP sender (weir run {}) failed ({status}): {}",
                    config.display(),
                    crate::bench::tail(&stderr)
                ))
            };
        }
        if exited(measured) {
            let _ = sender.kill();
            let _ = sender.wait();
            return Err(format!(
                "the measured run ended before the OTLP sender was done (sender's stderr: {})",
                crate::bench::tail(&stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether our child `pid` has exited, leaving it to be reaped (and its rusage read) by
/// the caller's `wait4`.
fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `pid` is our own child; `info` is a live local. WNOWAIT leaves it unreaped.
    let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
    // With WNOHANG, `si_pid` stays 0 while the child runs.
    // SAFETY: waitid filled in (or left zeroed) the fields si_pid reads.
    r == 0 && unsafe { info.si_pid() } == pid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by waitpid below, to see its status
    fn exited_sees_an_exit_without_reaping_it() {
        let child = Command::new("sh").args(["-c", "sleep 0.2"]).spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        assert!(!exited(pid), "still sleeping");
        let start = Instant::now();
        while !exited(pid) {
            assert!(start.elapsed() < Duration::from_secs(10), "sh did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Still there to be reaped, with its status.
        let mut status = 0;
        // SAFETY: our own child, not reaped yet; `status` is a live local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn syslog_tcp_writes_the_whole_file_and_closes() {
        let dir = std::env::temp_dir().join(format!("weir-perf-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let corpus = dir.join("c.log");
        let text: String = (0..50_000).map(|i| format!("<13>line {i}\n")).collect();
        std::fs::write(&corpus, &text).unwrap();
        // A listener that comes up late: the sender retries connecting.
        let address = free_address().unwrap();
        let bind = address.clone();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let listener = TcpListener::bind(&bind).unwrap();
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            io::Read::read_to_end(&mut conn, &mut got).unwrap();
            got
        });
        // A process that stays up as the "measured run".
        let mut alive = Command::new("sleep").arg("30").spawn().unwrap();
        syslog_tcp(&corpus, &address, alive.id() as libc::pid_t).unwrap();
        assert!(server.join().unwrap() == text.as_bytes(), "every byte, then EOF");
        alive.kill().unwrap();
        alive.wait().unwrap();

        // Nothing listens and the measured run is gone: an error at once, not in 15 s.
        let mut gone = Command::new("true").spawn().unwrap();
        let start = Instant::now();
        let err = syslog_tcp(&corpus, &free_address().unwrap(), gone.id() as libc::pid_t).unwrap_err();
        assert!(err.contains("ended before"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        gone.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
