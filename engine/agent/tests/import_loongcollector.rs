//! `weir import loongcollector` end to end, with the real binary.
//!
//! Each case under `testdata/import/loongcollector/` is a LoongCollector pipeline
//! (`NAME.yaml`) with a sample of the logs it reads (`NAME.log`). A case is imported, the
//! written pipeline must pass `weir check` as it is, and is then run with `weir run` on
//! the sample: file inputs read `NAME.log` once, the outputs are replaced by one file
//! output, and the test looks at the events that came out. The report (left-out things,
//! exit code 3), errors (bad YAML, not a pipeline: exit 1 with file:line:column) and the
//! written YAML of a few cases (golden files `NAME.weir.yaml`) are checked too.
//!
//! Refresh the golden files with `BLESS=1 cargo test -p weir --test import_loongcollector`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CASES: &str = "testdata/import/loongcollector";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.current_dir(root()).arg("--log-level").arg("warn");
    cmd
}

/// `testdata/import/loongcollector/NAME.EXT`, relative to the repository root.
fn case(name: &str, ext: &str) -> PathBuf {
    Path::new(CASES).join(format!("{name}.{ext}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `weir import loongcollector CASE [-o out]`.
fn import(name: &str, out: Option<&Path>) -> Output {
    let mut cmd = weir();
    cmd.args(["import", "loongcollector"]).arg(case(name, "yaml"));
    if let Some(out) = out {
        cmd.arg("-o").arg(out);
    }
    cmd.output().unwrap()
}

/// Runs `cmd` to its end, killing it after `limit`.
fn run_with_limit(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("timed out after {limit:?}; stderr:\n{}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// What a case gave: the written pipeline and the events that came out of it.
struct Ran {
    imported: String,
    events: Vec<Value>,
}

/// Imports case `name` (everything must be translated), checks the written pipeline with
/// `weir check`, and runs it on the case's sample: file inputs read `NAME.log` once, the
/// outputs become one file output. `prepare` may change the pipeline further (it gets
/// the pipeline as JSON and a scratch directory).
fn run_case(name: &str, prepare: impl FnOnce(&mut Value, &Path)) -> Ran {
    let tmp = tempfile::tempdir().unwrap();
    let written = tmp.path().join("imported.yaml");
    let out = import(name, Some(&written));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: import did not translate everything:\n{}",
        text(&out.stderr)
    );
    let check = weir().arg("check").arg("-c").arg(&written).output().unwrap();
    assert!(
        check.status.success(),
        "{name}: the written pipeline fails `weir check`:\n{}",
        text(&check.stderr)
    );
    let imported = std::fs::read_to_string(&written).unwrap();
    let mut pipeline: Value = serde_saphyr::from_str(&imported).unwrap();
    let sample = root().join(case(name, "log"));
    for input in pipeline["inputs"].as_array_mut().unwrap() {
        if input["type"] == "file" {
            let input = input.as_object_mut().unwrap();
            input.insert("paths".into(), json!([sample]));
            input.insert("mode".into(), json!("once"));
            input.remove("exclude");
        }
    }
    let events = tmp.path().join("events.json");
    pipeline["outputs"] = json!([{ "type": "file", "path": events }]);
    pipeline["data_dir"] = json!(tmp.path().join("data"));
    prepare(&mut pipeline, tmp.path());
    // JSON is YAML: the pipeline to run is written as JSON.
    let run_file = tmp.path().join("run.yaml");
    std::fs::write(&run_file, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap();
    let mut cmd = weir();
    cmd.arg("run").arg("-c").arg(&run_file);
    let ran = run_with_limit(cmd, Duration::from_secs(60));
    assert!(
        ran.status.success(),
        "{name}: weir run failed:\n{}\npipeline:\n{}",
        text(&ran.stderr),
        serde_json::to_string_pretty(&pipeline).unwrap()
    );
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ran { imported, events }
}

/// The values of `key` in `events`, as strings (`-` where absent).
fn column(events: &[Value], key: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e[key] {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some()
}

/// Compares `got` with the golden file, or rewrites it under BLESS=1.
fn golden(path: &Path, got: &str) {
    let path = root().join(path);
    if bless() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden {}; run with BLESS=1", path.display()));
    assert!(
        got == want,
        "{} differs:\n--- got\n{got}\n--- want\n{want}",
        path.display()
    );
}

#[test]
fn regex_parser_on_a_file() {
    let ran = run_case("regex_file", |_, _| {});
    let e = &ran.events;
    // The line the regex does not match is dropped, as LoongCollector drops an event
    // whose only field failed to parse.
    assert_eq!(column(e, "remote_addr"), ["192.168.7.21", "192.168.7.22", "10.1.0.5"]);
    assert_eq!(column(e, "remote_user"), ["-", "alice", "-"]);
    assert_eq!(column(e, "method"), ["GET", "POST", "DELETE"]);
    assert_eq!(column(e, "uri"), ["/orders/118", "/orders", "/orders/118"]);
    assert_eq!(column(e, "status"), ["200", "201", "403"]);
    assert_eq!(column(e, "user_agent"), ["curl/8.4.0", "okhttp/4.12", "-"]);
    assert_eq!(column(e, "time_local")[0], "03/Feb/2027:08:15:02 +0000");
    assert!(e.iter().all(|e| e.get("message").is_none()), "{e:?}");
}

#[test]
fn multiline_regex_timestamp_and_kafka() {
    let ran = run_case("java_multiline_kafka", |_, _| {});
    let e = &ran.events;
    assert_eq!(column(e, "level"), ["INFO", "ERROR", "WARN"]);
    assert_eq!(column(e, "thread"), ["main", "http-7", "http-8"]);
    // Read in UTC+8, written in UTC.
    assert_eq!(
        column(e, "timestamp"),
        [
            "2027-02-03T08:00:01.120Z",
            "2027-02-03T08:00:05.004Z",
            "2027-02-03T08:00:06.500Z"
        ]
    );
    // The source of the time stays, as in LoongCollector.
    assert_eq!(column(e, "time")[1], "2027-02-03 16:00:05.004");
    assert_eq!(
        column(e, "msg")[1],
        "request failed\njava.lang.IllegalStateException: order 118 is closed\n\
         \tat com.example.orders.OrderService.pay(OrderService.java:88)\n\
         \tat com.example.orders.OrderController.pay(OrderController.java:41)"
    );
    // `**` with MaxDirSearchDepth 2, the topic template and the codec.
    assert!(
        ran.imported.contains(
            "paths: [/data/app/logs/service.log, '/data/app/logs/*/service.log', '/data/app/logs/*/*/service.log']"
        ),
        "{}",
        ran.imported
    );
    assert!(ran.imported.contains("topic: 'java-{level}'"), "{}", ran.imported);
    assert!(ran.imported.contains("compression: lz4"), "{}", ran.imported);
}

#[test]
fn multiline_start_and_end_markers() {
    let ran = run_case("multiline_start_end", |_, _| {});
    assert_eq!(
        column(&ran.events, "message"),
        [
            "[BEGIN import]\nrows=120\nrejected=3\n[END]",
            "[BEGIN export]\nrows=98\n[END]"
        ]
    );
}

#[test]
fn json_parser_native_filter_and_http() {
    let ran = run_case("json_filter_http", |_, _| {});
    // Only ERROR/WARN (whole value) with a 5xx status; the line that is not JSON is dropped.
    assert_eq!(column(&ran.events, "path"), ["/pay", "/refund"]);
    assert_eq!(column(&ran.events, "status"), ["503", "502"]);
    for want in [
        "uri: 'http://collector.internal:9428/insert/jsonline?_stream_fields=service'",
        "'X-Team': payments",
        "request_timeout: '30s'",
        "initial_backoff: '500ms'",
        "max_backoff: '60s'",
        "compression: gzip",
        "exclude: ['/var/log/api/health-*.json']",
    ] {
        assert!(ran.imported.contains(want), "no {want:?} in\n{}", ran.imported);
    }
}

#[test]
fn delimiter_parser_keeps_the_overflow_together() {
    let ran = run_case("delimiter", |_, _| {});
    let e = &ran.events;
    assert_eq!(column(e, "user"), ["alice", "bob|the builder", "carol"]);
    assert_eq!(column(e, "action"), ["login", "update", "-"]);
    assert_eq!(column(e, "__column0__"), ["-", "table=orders|rows=3", "-"]);
}

#[test]
fn timestamp_in_a_fixed_zone() {
    let ran = run_case("timestamp_zone", |_, _| {});
    let e = &ran.events;
    assert_eq!(column(e, "level"), ["INFO", "ERROR", "WARN"]);
    // UTC-5 to UTC; a fraction after the seconds is read; an unreadable time leaves the
    // event as it was.
    assert_eq!(
        column(e, "timestamp"),
        ["2027-02-03T15:30:00Z", "2027-02-03T15:30:42.250Z", "-"]
    );
    assert_eq!(
        column(e, "time"),
        ["03/Feb/2027:10:30:00", "03/Feb/2027:10:30:42.250", "yesterday"]
    );
}

#[test]
fn filter_condition_tree() {
    let ran = run_case("filter_condition", |_, _| {});
    assert_eq!(column(&ran.events, "msg"), ["disk almost full", "upstream unavailable"]);
}

#[test]
fn desensitize_native_and_go() {
    let ran = run_case("desensitize", |_, _| {});
    assert_eq!(
        column(&ran.events, "message"),
        [
            "user=alice&password=********&card=<card>",
            "user=bob&password=******** and later password=********",
            "nothing to hide here"
        ]
    );
}

#[test]
fn container_stdio_reads_the_chosen_containers() {
    let cri = |stream: &str, msg: &str| format!("2027-02-03T08:00:00.000000000Z {stream} F {msg}\n");
    let ran = run_case("container_stdio", |pipeline, tmp| {
        let pods = tmp.join("pods");
        let write = |dir: &str, lines: &[String]| {
            let d = pods.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("0.log"), lines.concat()).unwrap();
        };
        write(
            "prod_web-1_0a1b/app",
            &[
                cri("stdout", "2027-02-03T08:00:00Z INFO ready"),
                cri("stderr", "2027-02-03T08:00:01Z WARN on stderr, ignored"),
                cri("stdout", "2027-02-03T08:00:02Z ERROR boom"),
                cri("stdout", "  at handler (app.js:10)"),
            ],
        );
        write(
            "prod_db-1_0c2d/postgres",
            &[cri("stdout", "2027-02-03T08:00:00Z INFO not app")],
        );
        write(
            "dev_web-2_0e3f/app",
            &[cri("stdout", "2027-02-03T08:00:00Z INFO not prod")],
        );
        std::fs::create_dir_all(tmp.join("containers")).unwrap();
        let input = pipeline["inputs"][0].as_object_mut().unwrap();
        input.insert("paths".into(), json!([pods.join("*/*/*.log")]));
        input.insert("containers_dir".into(), json!(tmp.join("containers")));
        pipeline["exit_when"] = json!({ "idle": "1s" });
    });
    let e = &ran.events;
    assert_eq!(column(e, "level"), ["INFO", "ERROR"]);
    assert_eq!(column(e, "msg"), ["ready", "boom\n  at handler (app.js:10)"]);
    assert_eq!(column(e, "namespace"), ["prod", "prod"]);
    assert_eq!(column(e, "container"), ["app", "app"]);
    assert_eq!(column(e, "stream"), ["stdout", "stdout"]);
}

#[test]
fn go_filter_and_field_processors() {
    let ran = run_case("go_filter_fields", |_, _| {});
    assert_eq!(
        ran.events,
        [json!({
            "method": "POST",
            "service": "gateway",
            "cluster": "eu-1",
            "user_agent": "curl/8.4"
        })]
    );
}

#[test]
fn kafka_native_flusher_settings() {
    let ran = run_case("kafka_native", |_, _| {});
    assert_eq!(column(&ran.events, "order"), ["A-1001", "A-1002"]);
    for want in [
        "bootstrap_servers: 'kafka-0:9092,kafka-1:9092'",
        "key_field: service",
        "acks: '1'",
        "timeout: '50ms'",
        "mechanism: SCRAM-SHA-512",
        "partitioner: murmur2_random",
        "'compression.type': zstd",
        "'message.max.bytes': '5242880'",
    ] {
        assert!(ran.imported.contains(want), "no {want:?} in\n{}", ran.imported);
    }
}

#[test]
fn parser_source_policies() {
    let ran = run_case("keep_source", |_, _| {});
    let e = &ran.events;
    // Kept and renamed whether the regex matched or not; a failed JSON parse loses only
    // its source field.
    assert_eq!(
        column(e, "raw"),
        [
            r#"INFO {"user":"alice","action":"login"}"#,
            "WARN {broken json",
            "ERROR {not: json}",
            "plain text line"
        ]
    );
    assert_eq!(column(e, "level"), ["INFO", "-", "ERROR", "-"]);
    assert_eq!(column(e, "user"), ["alice", "-", "-", "-"]);
    assert_eq!(column(e, "payload"), ["-", "-", "-", "-"]);
    assert_eq!(column(e, "message"), ["-", "-", "-", "-"]);
}

#[test]
fn multiline_start_and_continue() {
    let ran = run_case("python_multiline", |_, _| {});
    assert_eq!(
        column(&ran.events, "message"),
        [
            "2027-02-03 09:00:00 job 7 started",
            "Traceback (most recent call last):\n  File \"worker.py\", line 12, in run\n    total = a / b\n\
             ZeroDivisionError: division by zero",
            "orphan line",
            "2027-02-03 09:00:02 job 8 started"
        ]
    );
}

#[test]
fn what_cannot_be_translated_is_reported_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let written = tmp.path().join("imported.yaml");
    let out = import("untranslatable", Some(&written));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let file = case("untranslatable", "yaml").display().to_string();
    // One stderr line per thing left out, at its line:column, with the reason.
    for (at, what) in [
        ("5:3", "global `DefaultLogQueueSize`"),
        ("9:5", "inputs[0] input_file `FileEncoding`: Weir reads files as UTF-8"),
        ("10:5", "inputs[0] input_file `TailSizeKB`"),
        ("11:5", "inputs[0] input_file `AppendingLogPositionMeta`"),
        (
            "13:7",
            "inputs[0] input_file `Multiline.Mode`: Weir has no JSON multiline mode",
        ),
        ("14:5", "inputs[1] input_journal: the importer has no Weir input"),
        (
            "19:5",
            "processors[0] processor_parse_regex_native `Regex`: Weir's linear-time regex engine",
        ),
        ("24:5", "processors[1] processor_parse_json_native `CopingRawLog`"),
        (
            "27:5",
            "processors[2] processor_desensitize_native `Method`: Weir has no MD5",
        ),
        (
            "32:5",
            "processors[3] processor_parse_timestamp_native `SourceFormat`: `%a` (a weekday name)",
        ),
        (
            "33:5",
            "processors[4] processor_spl: the importer has no Weir processor",
        ),
        ("40:5", "flushers[0] flusher_stdout `Tags`"),
        ("41:5", "flushers[1] flusher_sls: the importer has no Weir output"),
        ("47:5", "flushers[2] flusher_kafka_v2 `Topic`: `%{tag.host}`"),
    ] {
        let want = format!("{file}:{at}: not translated: {what}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "no line {want:?} in\n{stderr}"
        );
    }
    assert_eq!(stderr.matches(": not translated: ").count(), 14, "{stderr}");
    assert!(stderr.contains("14 thing(s) not translated"), "{stderr}");
    // The same list heads the written pipeline, which still passes `weir check`.
    let imported = std::fs::read_to_string(&written).unwrap();
    assert!(
        imported.contains("# Not translated (14), by line of untranslatable.yaml:\n"),
        "{imported}"
    );
    assert!(
        imported
            .contains("#   line 47: flushers[2] flusher_kafka_v2 `Topic`: `%{tag.host}`: Weir events carry no tags"),
        "{imported}"
    );
    let check = weir().arg("check").arg("-c").arg(&written).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn written_yaml_matches_golden() {
    for name in ["java_multiline_kafka", "container_stdio", "untranslatable"] {
        // Without -o the pipeline goes to stdout.
        let out = import(name, None);
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out.stderr));
        golden(&case(name, "weir.yaml"), &text(&out.stdout));
    }
}

#[test]
fn invalid_yaml_is_an_error_at_its_line_and_column() {
    let out = import("bad_yaml", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing is written");
    let stderr = text(&out.stderr);
    let want = format!("error: {}:4:9: not valid YAML: ", case("bad_yaml", "yaml").display());
    assert!(stderr.starts_with(&want), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_loongcollector_pipeline_is_an_error() {
    let out = import("not_a_pipeline", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing is written");
    let stderr = text(&out.stderr);
    let want = format!(
        "error: {}:3:5: not a LoongCollector pipeline: inputs[0] has no `Type` (`type` is Weir's key",
        case("not_a_pipeline", "yaml").display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");

    let tmp = tempfile::tempdir().unwrap();
    for (yaml, want) in [
        (
            "- a\n- b\n",
            "1:1: not a LoongCollector pipeline: the file holds a list",
        ),
        (
            "inputs:\n  - Type: input_file\n",
            "1:1: not a LoongCollector pipeline: no `flushers:` list",
        ),
        (
            "inputs: []\nflushers: []\n",
            "1:1: not a LoongCollector pipeline: `inputs` is empty",
        ),
        ("", "1:1: not a LoongCollector pipeline: the file is empty"),
    ] {
        let file = tmp.path().join("c.yaml");
        std::fs::write(&file, yaml).unwrap();
        let out = weir().args(["import", "loongcollector"]).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {}:{want}", file.display())),
            "{yaml:?}: {stderr}"
        );
    }
}
