//! `weir doctor`: a broken setup names each problem and exits non-zero; a healthy one exits 0,
//! warnings (stale checkpoints) included.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use weir::delivery::checkpoint::{Checkpoints, FileIdentity};

/// Runs `weir doctor -c pipeline` and returns whether it succeeded, and its stdout.
fn doctor(dir: &Path, pipeline: &str) -> (bool, String) {
    doctor_as(dir, pipeline, None)
}

/// [`doctor`], as user `uid` when given.
fn doctor_as(dir: &Path, pipeline: &str, uid: Option<u32>) -> (bool, String) {
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let mut bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_weir"));
    if uid.is_some() {
        // The checkout may sit where another user cannot reach (a 0700 home or temporary
        // folder): that user runs a copy of the binary from `dir`, which the caller opened.
        use std::os::unix::fs::PermissionsExt;
        let copy = dir.join("weir");
        std::fs::copy(&bin, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin = copy;
    }
    let mut cmd = Command::new(&bin);
    cmd.args(["doctor", "-c"]).arg(&file);
    if let Some(uid) = uid {
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout)
}

/// The lines of `status` (`pass`, `warn`, `fail`) that mention every one of `words`.
fn lines_with<'a>(out: &'a str, status: &str, words: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(status) && words.iter().all(|w| l.contains(w)))
        .collect()
}

fn assert_line(out: &str, status: &str, words: &[&str]) {
    assert!(
        !lines_with(out, status, words).is_empty(),
        "no `{status}` line with {words:?} in:\n{out}"
    );
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn broken_setup_names_each_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    // A directory where a log file is expected.
    std::fs::create_dir_all(tmp.path().join("logs/app.log")).unwrap();
    // data_dir under a regular file: it can never be created.
    std::fs::write(tmp.path().join("plain"), "not a directory").unwrap();
    let port = closed_port();

    let (ok, out) = doctor(
        tmp.path(),
        &format!(
            "data_dir: {t}/plain/state\n\
             inputs:\n  - type: file\n    mode: once\n    paths: [\"{t}/missing/*.log\", \"{t}/logs/*.log\"]\n\
             outputs:\n  - type: http\n    uri: http://127.0.0.1:{port}/ingest\n  - type: stdout\n"
        ),
    );
    assert!(!ok, "doctor must fail on a broken setup");
    assert_line(&out, "pass", &["config", "is valid"]);
    // The unreadable path: a pattern whose directory does not exist...
    assert_line(
        &out,
        "fail",
        &["inputs[0] file", "missing/*.log", "matches no file", "does not exist"],
    );
    // ...and a directory in place of a file.
    assert_line(
        &out,
        "fail",
        &["inputs[0] file", "logs/app.log", "is a directory, not a file"],
    );
    // The unwritable data_dir, naming what is in the way.
    assert_line(
        &out,
        "fail",
        &[
            "data_dir",
            "plain/state",
            "cannot be created",
            &format!("{t}/plain is not a directory"),
        ],
    );
    // The dead output.
    assert_line(
        &out,
        "fail",
        &["outputs[0] http", &format!("127.0.0.1:{port}"), "not reachable"],
    );
    assert_line(&out, "pass", &["outputs[1] stdout"]);
    assert_line(&out, "pass", &["clock"]);
    assert!(out.trim_end().lines().last().unwrap().starts_with("doctor: "), "{out}");
}

#[test]
fn an_unreadable_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    std::fs::create_dir(tmp.path().join("logs")).unwrap();
    std::fs::write(tmp.path().join("logs/ok.log"), "fine\n").unwrap();
    let secret = tmp.path().join("logs/secret.log");
    std::fs::write(&secret, "hidden\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads mode 000 files: run doctor as `nobody` then, with the directories open to it.
    let uid = is_root().then_some(65534);
    if uid.is_some() {
        eprintln!("running as root: doctor runs as uid 65534 so that mode 000 is unreadable");
        for d in [tmp.path(), &tmp.path().join("logs")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(tmp.path().join("logs/ok.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::create_dir(tmp.path().join("state")).unwrap();
    std::fs::set_permissions(tmp.path().join("state"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, out) = doctor_as(
        tmp.path(),
        &format!(
            "data_dir: {t}/state\ninputs:\n  - type: file\n    mode: once\n    paths: [\"{t}/logs/*.log\"]\n\
             outputs:\n  - type: stdout\n"
        ),
        uid,
    );
    assert!(!ok);
    assert_line(&out, "pass", &["inputs[0] file", "matches 2 files"]);
    assert_line(
        &out,
        "fail",
        &[
            "inputs[0] file",
            "1 of 2 files cannot be read",
            "secret.log",
            "ermission denied",
        ],
    );
    assert_line(&out, "pass", &["data_dir", "is writable"]);
}

#[test]
fn a_config_that_does_not_load_is_the_one_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out) = doctor(
        tmp.path(),
        "inputs:\n  - type: stdin\n    colour: red\noutputs:\n  - type: stdout\n",
    );
    assert!(!ok);
    assert_line(&out, "fail", &["config", "pipeline.yaml:3:5", "unknown field `colour`"]);
    assert_eq!(out.lines().filter(|l| !l.starts_with("doctor:")).count(), 1, "{out}");
}

#[test]
fn corrupt_checkpoints_and_a_busy_admin_port_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    std::fs::create_dir(tmp.path().join("state")).unwrap();
    std::fs::write(tmp.path().join("state/checkpoints.json"), "{not json").unwrap();
    // Something that is not a Weir agent holds the admin port.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = busy.local_addr().unwrap();
    let (ok, out) = doctor(
        tmp.path(),
        &format!(
            "data_dir: {t}/state\nadmin: {{ address: \"{admin}\" }}\n\
             inputs:\n  - type: stdin\noutputs:\n  - type: stdout\n"
        ),
    );
    assert!(!ok);
    assert_line(&out, "pass", &["data_dir", "is writable"]);
    assert_line(
        &out,
        "fail",
        &["checkpoints", "corrupt checkpoint file", "checkpoints.json"],
    );
    assert_line(
        &out,
        "fail",
        &["admin", &admin.to_string(), "in use by another program"],
    );
    drop(busy);
}

#[test]
fn healthy_setup_passes_and_warns_about_stale_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for name in ["a.log", "gone.log", "short.log"] {
        std::fs::write(logs.join(name), "one line\nanother line\n").unwrap();
    }
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    // Checkpoints: one fine, one for a file deleted since, one past its file's end.
    let state = tmp.path().join("state");
    let mut store = Checkpoints::new(&state);
    for (name, offset) in [("a.log", 9), ("gone.log", 9), ("short.log", 1000)] {
        let path = logs.join(name);
        store.commit(&FileIdentity::of_path(&path).unwrap(), &path, offset);
    }
    std::fs::create_dir(&state).unwrap();
    store.save().unwrap();
    std::fs::remove_file(logs.join("gone.log")).unwrap();
    // A live http endpoint (the kernel completes the handshake; nothing needs to answer).
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();

    let pipeline = |data_dir: &str| {
        [
            format!("data_dir: {data_dir}"),
            "admin: { address: \"127.0.0.1:0\" }".into(),
            "inputs:".into(),
            "  - type: file".into(),
            format!("    paths: [\"{t}/logs/*.log\"]"),
            "outputs:".into(),
            "  - type: http".into(),
            format!("    uri: http://127.0.0.1:{port}/ingest"),
            "  - type: file".into(),
            format!("    path: {t}/out/events.json"),
            "  - type: stdout".into(),
        ]
        .join("\n")
    };
    let (ok, out) = doctor(tmp.path(), &pipeline(&format!("{t}/state")));
    assert!(ok, "a healthy setup exits 0 (warnings allowed)");
    assert!(lines_with(&out, "fail", &[]).is_empty(), "{out}");
    assert_line(
        &out,
        "pass",
        &["inputs[0] file", "matches 2 files", "a.log", "short.log"],
    );
    assert_line(&out, "pass", &["inputs[0] file", "2 files readable"]);
    assert_line(&out, "pass", &["inputs[0] file", "can be watched"]);
    assert_line(&out, "pass", &["data_dir", "is writable"]);
    assert_line(&out, "pass", &["checkpoints", "3 entries loaded; 1 within"]);
    assert_line(
        &out,
        "warn",
        &["checkpoints", "gone.log is gone", "checkpoint_prune_after (3600s)"],
    );
    assert_line(
        &out,
        "warn",
        &["checkpoints", "short.log", "offset 1000 is beyond its size 22"],
    );
    assert_line(
        &out,
        "pass",
        &["outputs[0] http", &format!("127.0.0.1:{port} accepts TCP connections")],
    );
    assert_line(&out, "pass", &["outputs[1] file", "events.json will be created"]);
    assert_line(&out, "pass", &["admin", "can be listened on"]);
    assert_line(&out, "pass", &["clock"]);
    assert!(out.contains("0 failed"), "{out}");
    // Doctor leaves nothing behind.
    assert!(!tmp.path().join("out/events.json").exists());
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1, "only checkpoints.json");

    // A data_dir that does not exist yet passes, and is not left behind.
    let (ok, out) = doctor(tmp.path(), &pipeline(&format!("{t}/new/state")));
    assert!(ok);
    assert_line(&out, "pass", &["data_dir", "new/state", "can be created"]);
    assert!(!tmp.path().join("new").exists(), "doctor removes what it created");
    drop(server);
}
