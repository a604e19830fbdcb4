//! The `syslog` input against independent senders: util-linux `logger` (RFC 5424 and RFC
//! 3164, TCP with newline and octet-counting framing, UDP) and Python's
//! `logging.handlers.SysLogHandler` (UDP, and TCP with its NUL-terminated messages), a
//! Python TLS client with the CA the test generates, a plaintext client on the TLS
//! listener (closed and counted), malformed and oversized messages (kept, counted). Under
//! load, 50 TCP senders for 30 s: nothing lost, the agent under 64 MiB; behind a stuck
//! output the input stops reading, so the sender waits and the agent's memory does not grow.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::agent::{metrics, peak_rss_kib, start_receiving, stop};

/// A free port on 127.0.0.1 for TCP and UDP (released again: the agent binds it next).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Writes `dir/pipeline.yaml`: `head` (the admin and inputs parts) and a `file` output to
/// `dir/out.jsonl`; returns both paths.
fn pipeline(dir: &Path, head: &str) -> (PathBuf, PathBuf) {
    let (pipeline, out) = (dir.join("pipeline.yaml"), dir.join("out.jsonl"));
    let text = format!("{head}outputs:\n  - type: file\n    path: \"{}\"\n", out.display());
    std::fs::write(&pipeline, text).unwrap();
    (pipeline, out)
}

/// The output's events by their `message`.
fn events(out: &Path) -> HashMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["message"].as_str().unwrap_or_default().to_string(), v))
        .collect()
}

/// Waits until the output holds `n` lines (or 30 s pass).
fn wait_for_lines(out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let have = std::fs::read(out).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        if have >= n || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the first metric whose name starts with `prefix`.
fn metric(all: &HashMap<String, f64>, prefix: &str) -> f64 {
    all.iter().find(|(k, _)| k.starts_with(prefix)).map_or(0.0, |(_, v)| *v)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logger_and_python_syslog_arrive_parsed_and_bad_messages_are_kept_and_counted() {
    if Command::new("logger").arg("--version").output().is_err() {
        support::skip(
            "logger_and_python_syslog_arrive_parsed_and_bad_messages_are_kept_and_counted",
            "no `logger` (util-linux, Debian's bsdutils)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let (pipeline, out) = pipeline(
        dir.path(),
        &format!(
            "admin: {{ address: 127.0.0.1:{admin} }}\n\
             inputs:\n  - type: syslog\n    address: 127.0.0.1:{port}\n    max_message_bytes: 1KiB\n    timezone: America/New_York\n\
             \x20 - type: syslog\n    mode: udp\n    address: 127.0.0.1:{port}\n"
        ),
    );
    let agent = start_receiving(&pipeline, dir.path(), port, &[]);
    let p = port.to_string();
    let logger = |args: &[&str], text: &str| {
        run(Command::new("logger")
            .args(["-n", "127.0.0.1", "-P", &p])
            .args(args)
            .arg(text))
    };
    logger(
        &[
            "-T",
            "-i",
            "--rfc5424",
            "-t",
            "app5424",
            "--msgid",
            "ID7",
            "--sd-id",
            "zoo@123",
            "--sd-param",
            "tiger=\"hungry\"",
        ],
        "tcp rfc5424",
    );
    logger(
        &["-T", "--rfc3164", "-t", "app3164", "-p", "auth.warning"],
        "tcp rfc3164",
    );
    logger(
        &["-T", "--octet-count", "--rfc5424", "-t", "counted"],
        "tcp octet counted",
    );
    logger(&["-d", "--rfc5424", "-t", "udpapp", "-p", "local3.err"], "udp rfc5424");
    logger(&["-d", "--rfc3164", "-t", "udpbsd"], "udp rfc3164");
    let python = format!(
        "import logging, logging.handlers, socket\n\
         udp = logging.handlers.SysLogHandler(address=('127.0.0.1', {port}), facility='daemon')\n\
         udp.setFormatter(logging.Formatter('pyudp[42]: %(message)s'))\n\
         tcp = logging.handlers.SysLogHandler(address=('127.0.0.1', {port}), socktype=socket.SOCK_STREAM)\n\
         tcp.setFormatter(logging.Formatter('pytcp: %(message)s'))\n\
         for name, h in (('udp', udp), ('tcp', tcp)):\n\
         \x20   log = logging.getLogger(name); log.addHandler(h); log.propagate = False\n\
         \x20   log.error('python %s first', name); log.warning('python %s second', name)\n\
         \x20   h.close()\n"
    );
    run(Command::new("python3").arg("-c").arg(&python));
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.write_all(b"not syslog at all\n<13>1 2026-13-01T00:00:00Z h a - - - bad month\n")
        .unwrap();
    raw.write_all(format!("<13>long {}\n<13>after the long one\n", "x".repeat(3000)).as_bytes())
        .unwrap();
    drop(raw);
    wait_for_lines(&out, 13);
    let m = metrics(&format!("127.0.0.1:{admin}"));
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    let got = events(&out);
    let field = |msg: &str, name: &str| -> String {
        let e = got
            .get(msg)
            .unwrap_or_else(|| panic!("no event {msg:?} in {:#?}", got.keys()));
        e[name]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| e[name].to_string())
    };
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let host = host.trim();
    // RFC 5424 over TCP, newline framing: every header field and the structured data.
    assert_eq!(field("tcp rfc5424", "appname"), "app5424");
    assert_eq!(field("tcp rfc5424", "msgid"), "ID7");
    assert_eq!(field("tcp rfc5424", "facility"), "user");
    assert_eq!(field("tcp rfc5424", "severity"), "notice");
    assert_eq!(field("tcp rfc5424", "source_ip"), "127.0.0.1");
    assert!(field("tcp rfc5424", "hostname").starts_with(host.split('.').next().unwrap()));
    assert_eq!(got["tcp rfc5424"]["structured_data"]["zoo@123"]["tiger"], "hungry");
    assert!(got["tcp rfc5424"]["procid"].is_string(), "logger -i sends its pid");
    // RFC 3164: the time has no zone and no year; `timezone` applies.
    assert_eq!(field("tcp rfc3164", "appname"), "app3164");
    assert_eq!(field("tcp rfc3164", "facility"), "auth");
    assert_eq!(field("tcp rfc3164", "severity"), "warning");
    let stamp: jiff::Timestamp = field("tcp rfc3164", "timestamp").parse().unwrap();
    let off_by = (jiff::Timestamp::now().as_second() - stamp.as_second()).abs();
    // logger wrote the machine's local time (UTC here); read as New York time it is 4 or 5 h
    // later.
    let local_is_utc = jiff::tz::TimeZone::system()
        .to_fixed_offset()
        .is_ok_and(|o| o.seconds() == 0);
    if local_is_utc {
        assert!((4 * 3600 - 60..=5 * 3600 + 60).contains(&off_by), "{off_by} s");
    }
    assert_eq!(field("tcp octet counted", "appname"), "counted");
    assert_eq!(field("udp rfc5424", "facility"), "local3");
    assert_eq!(field("udp rfc5424", "severity"), "err");
    assert_eq!(field("udp rfc3164", "appname"), "udpbsd");
    // Python: no time and no host; its tag and pid parsed from the message.
    assert_eq!(field("python udp first", "appname"), "pyudp");
    assert_eq!(field("python udp first", "procid"), "42");
    assert_eq!(field("python udp first", "facility"), "daemon");
    assert_eq!(field("python udp first", "severity"), "err");
    assert_eq!(field("python udp second", "severity"), "warning");
    assert_eq!(field("python tcp first", "appname"), "pytcp");
    assert_eq!(field("python tcp second", "appname"), "pytcp");
    // Malformed: kept whole, with the reason, and counted.
    assert!(field("not syslog at all", "_error").contains("no <PRI>"));
    let bad_month = "<13>1 2026-13-01T00:00:00Z h a - - - bad month";
    assert!(
        field(bad_month, "_error").contains("month"),
        "{}",
        field(bad_month, "_error")
    );
    assert_eq!(
        metric(&m, "weir_input_format_errors_total{component=\"inputs[0]"),
        2.0,
        "{m:?}"
    );
    // Over max_message_bytes: cut, counted; the next message is whole.
    let long = got.keys().find(|k| k.starts_with("long xxx")).expect("the cut message");
    assert_eq!(got[long]["_cut"], true);
    assert_eq!(field("after the long one", "severity"), "notice");
    assert_eq!(metric(&m, "weir_syslog_messages_cut_total"), 1.0, "{m:?}");
    assert_eq!(got.len(), 13, "{:#?}", got.keys());
}

#[test]
fn syslog_over_tls_arrives_and_a_plaintext_client_is_closed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = support::certs::generate(dir.path());
    let (port, admin) = (free_port(), free_port());
    let (pipeline, out) = pipeline(
        dir.path(),
        &format!(
            "admin: {{ address: 127.0.0.1:{admin} }}\n\
             inputs:\n  - type: syslog\n    mode: tls\n    address: 127.0.0.1:{port}\n\
             \x20   tls: {{ crt_file: \"{}\", key_file: \"{}\" }}\n",
            pki.server.0.display(),
            pki.server.1.display(),
        ),
    );
    let agent = start_receiving(&pipeline, dir.path(), port, &[]);
    // RFC 5425: octet-counted frames over TLS, from Python's ssl with the test's CA.
    let python = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         with socket.create_connection(('127.0.0.1', {port})) as raw:\n\
         \x20   with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n\
         \x20       for i in range(3):\n\
         \x20           m = ('<165>1 2026-12-06T10:00:0%dZ web-1 tlsapp - - - over tls %d' % (i, i)).encode()\n\
         \x20           s.sendall(b'%d %s' % (len(m), m))\n",
        ca = pki.ca.display().to_string(),
    );
    run(Command::new("python3")
        .arg("-c")
        .arg(&python)
        .env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE"));
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = plain.write_all(b"<13>1 - - plain - - - in clear\n");
    let _ = plain.set_read_timeout(Some(Duration::from_secs(10)));
    // The listener closes it: the read ends (EOF or reset) instead of timing out.
    let mut sink = [0u8; 64];
    let closed = Instant::now();
    let _ = std::io::Read::read(&mut plain, &mut sink);
    assert!(
        closed.elapsed() < Duration::from_secs(9),
        "the plaintext client was not closed"
    );
    wait_for_lines(&out, 3);
    // The connection is closed as the handshake fails, a moment before the count is made.
    let counted = Instant::now() + Duration::from_secs(5);
    let mut m = metrics(&format!("127.0.0.1:{admin}"));
    while metric(&m, "weir_listener_tls_handshake_failures_total") < 1.0 && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(20));
        m = metrics(&format!("127.0.0.1:{admin}"));
    }
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    let got = events(&out);
    assert_eq!(got.len(), 3, "{got:#?}");
    for i in 0..3 {
        let e = &got[&format!("over tls {i}")];
        assert_eq!(
            (e["appname"].as_str(), e["hostname"].as_str()),
            (Some("tlsapp"), Some("web-1"))
        );
        assert_eq!(e["timestamp"], format!("2026-12-06T10:00:0{i}Z"));
    }
    assert_eq!(metric(&m, "weir_listener_tls_handshake_failures_total"), 1.0, "{m:?}");
}

#[test]
fn fifty_tcp_senders_for_30_s_lose_nothing_and_the_agent_stays_under_64_mib() {
    const SENDERS: usize = 50;
    const FOR: Duration = Duration::from_secs(30);
    /// Messages per second each sender aims at (it sends as fast as it can while behind).
    const RATE: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (pipeline, out) = pipeline(
        dir.path(),
        &format!("inputs:\n  - type: syslog\n    address: 127.0.0.1:{port}\n"),
    );
    let agent = start_receiving(&pipeline, dir.path(), port, &[]);
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            std::thread::spawn(move || {
                let conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut w = std::io::BufWriter::with_capacity(16 << 10, conn);
                let mut sent = 0u64;
                while started.elapsed() < FOR {
                    let due = (started.elapsed().as_millis() as u64 * RATE / 1000).max(sent + 1);
                    while sent < due {
                        // Half octet-counted, half newline-terminated.
                        let m = format!("<14>1 2026-12-06T10:00:00.000Z node-{s} load - - - s{s} n{sent}");
                        if sent.is_multiple_of(2) {
                            write!(w, "{} {m}", m.len()).unwrap();
                        } else {
                            writeln!(w, "{m}").unwrap();
                        }
                        sent += 1;
                    }
                    w.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
                w.flush().unwrap();
                sent
            })
        })
        .collect();
    let sent: Vec<u64> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total: u64 = sent.iter().sum();
    wait_for_lines(&out, total as usize);
    let peak = peak_rss_kib(agent.id());
    let (status, stderr) = stop(agent);
    assert!(status.success(), "{stderr}");
    // Every message of every sender, once.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen: Vec<Vec<bool>> = sent.iter().map(|&n| vec![false; n as usize]).collect();
    let mut lines = 0u64;
    for line in text.lines() {
        lines += 1;
        let at = line.find("\"message\":\"s").expect(line) + 12;
        let rest = &line[at..];
        let (s, n) = rest[..rest.find('"').unwrap()].split_once(" n").unwrap();
        let (s, n): (usize, usize) = (s.parse().unwrap(), n.parse().unwrap());
        assert!(!seen[s][n], "s{s} n{n} twice");
        seen[s][n] = true;
    }
    let missing: u64 = seen.iter().map(|v| v.iter().filter(|&&x| !x).count() as u64).sum();
    assert_eq!((lines, missing), (total, 0), "sent {total}");
    eprintln!(
        "{SENDERS} senders, {total} messages in {:?}, peak RSS {} KiB",
        FOR, peak
    );
    assert!(peak < 64 << 10, "peak RSS {peak} KiB");
}

#[test]
fn a_stuck_output_stops_the_reading_and_the_sender_waits_instead_of_memory_growing() {
    // An HTTP endpoint that takes connections and never answers.
    let stuck = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stuck_at = stuck.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in stuck.incoming() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("pipeline.yaml");
    std::fs::write(
        &config,
        format!(
            "shutdown_timeout: 2s\n\
             inputs:\n  - type: syslog\n    address: 127.0.0.1:{port}\n\
             outputs:\n  - type: http\n    uri: http://{stuck_at}/\n    request_timeout: 5s\n"
        ),
    )
    .unwrap();
    let agent = start_receiving(&config, dir.path(), port, &[]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let message = format!("<14>1 2026-12-06T10:00:00Z node load - - - {}\n", "x".repeat(960));
    let limit = 512u64 << 20;
    let mut written = 0u64;
    // Until a write waits 3 s: the agent has stopped reading.
    while written < limit {
        match conn.write(message.as_bytes()) {
            Ok(n) => written += n as u64,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("after {written} bytes: {e}"),
        }
    }
    let peak = peak_rss_kib(agent.id());
    let (_, stderr) = stop(agent);
    eprintln!(
        "the sender was held after {} KiB; agent peak RSS {peak} KiB",
        written >> 10
    );
    // What is held: the sockets' buffers (a few MiB each way), a few 64 KiB chunks per
    // connection and the pipeline's bounded queues.
    assert!(
        written < 64 << 20,
        "the agent read {written} bytes into a stuck pipeline\n{stderr}"
    );
    assert!(peak < 64 << 10, "peak RSS {peak} KiB");
    // Stopping with the pipeline full: what was read and not taken is counted and said.
    assert!(
        stderr.contains("messages read but not taken by the stopping pipeline"),
        "{stderr}"
    );
}
