//! TLS and credentials end to end: `weir run` posts `_bulk` requests over HTTPS to a server
//! on Python's ssl module (OpenSSL, not rustls) with certificates the test generates. The
//! right CA delivers every line with the API key from `${...}`; a wrong CA, an expired
//! certificate and a host-name mismatch are each named in the log; a server that requires
//! client certificates (mutual TLS) gets one when `crt_file`/`key_file` are set, and the
//! failure without them says so. The API key never shows in the output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::agent::{WEIR, weir_run};
use support::certs::{Pki, generate};
use support::python::PyServer;

const API_KEY: &str = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
const PASSWORD: &str = "pw-Zq81-never-printed";
const LINES: usize = 2_000;

/// The Python HTTPS server of `support/https_server.py`.
struct HttpsServer {
    /// Killed when dropped.
    _server: PyServer,
    port: u16,
    record: PathBuf,
}

impl HttpsServer {
    fn start(dir: &Path, (crt, key): &(PathBuf, PathBuf), client_ca: Option<&Path>) -> HttpsServer {
        let record = dir.join(format!("record-{}.jsonl", rand_suffix()));
        let mut args = vec![crt.as_os_str(), key.as_os_str(), record.as_os_str()];
        args.extend(client_ca.map(Path::as_os_str));
        let server = PyServer::start("https_server.py", &args, None);
        HttpsServer {
            port: server.port,
            _server: server,
            record,
        }
    }

    /// (Authorization header, body) of each request it accepted.
    fn requests(&self) -> Vec<(Option<String>, String)> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["authorization"].as_str().map(String::from),
                    v["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A file of numbered lines, and a pipeline sending it to `https://127.0.0.1:PORT/_bulk`
/// with this `tls:` block (YAML flow mapping).
fn pipeline(dir: &Path, port: u16, tls: &str) -> PathBuf {
    let log = dir.join("app.log");
    let text: String = (0..LINES).map(|i| format!("line {i:06}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let path = dir.join(format!("pipeline-{}.yaml", rand_suffix()));
    std::fs::write(
        &path,
        format!(
            "shutdown_timeout: 2s\n\
             inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: http\n    uri: https://127.0.0.1:{port}/_bulk\n\
             \x20   encoding: es_bulk\n    index: logs\n    compression: gzip\n\
             \x20   api_key: \"${{WEIR_TEST_API_KEY}}\"\n\
             \x20   batch: {{ max_bytes: 16KiB, timeout: 50ms }}\n\
             \x20   retry: {{ initial_backoff: 50ms, max_backoff: 200ms }}\n\
             \x20   tls: {tls}\n",
            log.display()
        ),
    )
    .unwrap();
    path
}

/// Runs the pipeline to its end: (succeeded, stderr). A run that cannot deliver retries
/// until stopped: once `stop_when` shows in its log it gets SIGTERM, and its shutdown
/// deadline ends it.
fn run(pipeline: &Path, dir: &Path, stop_when: Option<&str>) -> (bool, String) {
    let mut child = weir_run(pipeline)
        .env("WEIR_LOG", "info")
        .env("WEIR_TEST_API_KEY", API_KEY)
        .env("WEIR_TEST_PASSWORD", PASSWORD)
        .env("WEIR_DATA_DIR", dir.join(format!("data-{}", rand_suffix())))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (stderr, mut pipe) = (stderr.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                stderr.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stopped = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if !stopped && stop_when.is_some_and(|s| stderr.lock().unwrap().contains(s)) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            stopped = true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("weir run did not finish:\n{}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    let text = stderr.lock().unwrap().clone();
    (status.success(), text)
}

/// Every line, once, in `_bulk` bodies that carried the API key.
fn assert_delivered(server: &HttpsServer) {
    let mut numbers = Vec::new();
    for (authorization, body) in server.requests() {
        assert_eq!(authorization.as_deref(), Some(format!("ApiKey {API_KEY}").as_str()));
        for pair in body.lines().collect::<Vec<_>>().chunks(2) {
            assert_eq!(pair[0], r#"{"index":{"_index":"logs"}}"#);
            let doc: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
            numbers.push(doc["message"].as_str().unwrap()[5..].parse::<usize>().unwrap());
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (0..LINES).collect::<Vec<_>>());
}

fn setup() -> (tempfile::TempDir, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate(dir.path());
    (dir, pki)
}

#[test]
fn https_bulk_with_the_generated_ca_delivers_every_line_and_hides_the_api_key() {
    let (dir, pki) = setup();
    let server = HttpsServer::start(dir.path(), &pki.server, None);
    let tls = format!("{{ ca_file: \"{}\" }}", pki.ca.display());
    let (ok, stderr) = run(&pipeline(dir.path(), server.port, &tls), dir.path(), None);
    assert!(ok, "{stderr}");
    assert_delivered(&server);
    assert!(!stderr.contains(API_KEY), "the API key is in the log:\n{stderr}");
}

#[test]
fn server_name_verifies_a_certificate_for_another_name() {
    let (dir, pki) = setup();
    let server = HttpsServer::start(dir.path(), &pki.other_host, None);
    let tls = format!("{{ ca_file: \"{}\", server_name: other.example }}", pki.ca.display());
    let (ok, stderr) = run(&pipeline(dir.path(), server.port, &tls), dir.path(), None);
    assert!(ok, "{stderr}");
    assert_delivered(&server);
}

/// Each bad case fails the run with its reason in the log, and nothing is accepted.
#[test]
fn a_wrong_ca_an_expired_certificate_and_a_wrong_host_are_named() {
    let (dir, pki) = setup();
    let cases = [
        (
            &pki.server,
            pki.other_ca.clone(),
            "signed by an unknown CA (not one of tls.ca_file",
        ),
        (&pki.expired, pki.ca.clone(), "the server's certificate has expired"),
        (
            &pki.other_host,
            pki.ca.clone(),
            "wrong host: the server's certificate is not for 127.0.0.1 (it names other.example)",
        ),
    ];
    for (identity, ca, reason) in cases {
        let server = HttpsServer::start(dir.path(), identity, None);
        let tls = format!("{{ ca_file: \"{}\" }}", ca.display());
        let (ok, stderr) = run(&pipeline(dir.path(), server.port, &tls), dir.path(), Some("retrying"));
        assert!(!ok, "the run must fail: {reason}\n{stderr}");
        assert!(stderr.contains(reason), "expected {reason:?} in:\n{stderr}");
        if reason.contains("unknown CA") {
            assert!(
                stderr.contains(&pki.other_ca.display().to_string()),
                "the CA file is named:\n{stderr}"
            );
        }
        assert!(
            server.requests().is_empty(),
            "nothing is accepted over a refused connection"
        );
    }
}

#[test]
fn mutual_tls_required_by_the_server() {
    let (dir, pki) = setup();
    let server = HttpsServer::start(dir.path(), &pki.server, Some(&pki.ca));
    let without = format!("{{ ca_file: \"{}\" }}", pki.ca.display());
    let (ok, stderr) = run(
        &pipeline(dir.path(), server.port, &without),
        dir.path(),
        Some("retrying"),
    );
    assert!(!ok);
    // In TLS 1.3 the server refuses the missing certificate after the client's handshake is
    // done; its close can break the client's write of the request, and then the alert is
    // read after the failed write. Either way it is named, and nothing is accepted.
    assert!(
        stderr.contains("requires a client certificate") || stderr.contains("refused our client certificate"),
        "the failure is logged with its reason:\n{stderr}"
    );
    assert!(server.requests().is_empty());
    let with = format!(
        "{{ ca_file: \"{}\", crt_file: \"{}\", key_file: \"{}\" }}",
        pki.ca.display(),
        pki.client.0.display(),
        pki.client.1.display()
    );
    let (ok, stderr) = run(&pipeline(dir.path(), server.port, &with), dir.path(), None);
    assert!(ok, "{stderr}");
    assert_delivered(&server);
}

#[test]
fn weir_check_names_a_bad_tls_file_and_an_unset_variable() {
    let (dir, pki) = setup();
    let missing = dir.path().join("nope.pem");
    let check = |pipeline: &Path, env: Option<&str>| {
        let mut cmd = Command::new(WEIR);
        cmd.args(["check", "-c"]).arg(pipeline).env_remove("WEIR_TEST_API_KEY");
        if let Some(key) = env {
            cmd.env("WEIR_TEST_API_KEY", key);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let p = pipeline(dir.path(), 1, &format!("{{ ca_file: \"{}\" }}", missing.display()));
    let (ok, err) = check(&p, Some(API_KEY));
    assert!(!ok);
    assert!(
        err.contains(&format!("tls.ca_file {}: cannot read it", missing.display())),
        "{err}"
    );
    assert!(err.contains(":15:"), "the line of ca_file: {err}");
    let p = pipeline(dir.path(), 1, &format!("{{ ca_file: \"{}\" }}", pki.client.1.display()));
    let (ok, err) = check(&p, Some(API_KEY));
    assert!(!ok);
    assert!(err.contains("client.key: no certificate in it"), "{err}");
    let p = pipeline(
        dir.path(),
        1,
        &format!("{{ crt_file: \"{}\" }}", pki.client.0.display()),
    );
    let (ok, err) = check(&p, Some(API_KEY));
    assert!(!ok);
    assert!(err.contains("tls.crt_file needs tls.key_file"), "{err}");
    let p = pipeline(dir.path(), 1, &format!("{{ ca_file: \"{}\" }}", pki.ca.display()));
    let (ok, err) = check(&p, None);
    assert!(!ok);
    assert!(
        err.contains(":12:15: environment variable WEIR_TEST_API_KEY is not set (used by `api_key`)"),
        "{err}"
    );
    let (ok, err) = check(&p, Some(API_KEY));
    assert!(ok, "{err}");
}

/// A password from `${...}` in the uri: `weir check`'s error, `weir doctor` and the log of
/// `weir run` all show `${WEIR_TEST_PASSWORD}` in its place.
#[test]
fn a_secret_from_the_environment_never_shows_in_check_doctor_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.log"), "one line\n").unwrap();
    let write = |name: &str, uri: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "shutdown_timeout: 1s\ninputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
                 outputs:\n  - type: http\n    uri: \"{uri}\"\n\
                 \x20   retry: {{ initial_backoff: 50ms, max_backoff: 100ms }}\n",
                dir.path().join("one.log").display()
            ),
        )
        .unwrap();
        path
    };
    let bad = write("bad.yaml", "ftp://weir:${WEIR_TEST_PASSWORD}@127.0.0.1:1/x");
    let good = write("good.yaml", "http://weir:${WEIR_TEST_PASSWORD}@127.0.0.1:1/x");
    let shown = |text: String| {
        assert!(!text.contains(PASSWORD), "the secret was printed:\n{text}");
        text
    };
    let weir = |args: &[&str], config: &Path| {
        let out = Command::new(WEIR)
            .args(args)
            .arg(config)
            .env("WEIR_TEST_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        shown(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let check = weir(&["check", "-c"], &bad);
    assert!(
        check.contains("ftp://weir:${WEIR_TEST_PASSWORD}@127.0.0.1:1/x"),
        "{check}"
    );
    let doctor = weir(&["doctor", "-c"], &good);
    assert!(doctor.contains("${WEIR_TEST_PASSWORD}"), "{doctor}");
    // The line cannot be delivered: the failure is logged with the uri, then SIGTERM and
    // the shutdown deadline end the run.
    let (ok, log) = run(&good, dir.path(), Some("retrying"));
    assert!(!ok);
    let log = shown(log);
    assert!(log.contains("${WEIR_TEST_PASSWORD}@127.0.0.1"), "{log}");
}
