//! Docker json-file lines split into 16 KiB pieces, through the same stages as `weir run`
//! (in memory), at read sizes of 1 byte, 7 bytes and 64 KiB, chunk sizes of 7 bytes and
//! 1 MiB, and at 100 split points: the cases where Fluent Bit (join any piece without
//! a newline, flush on a line that is not JSON) and Vector (join only full pieces) differ,
//! and what Weir makes of each. The rule is in `weir_core::frame`'s module docs. The
//! inputs are built here because a 16 KiB line does not belong in a YAML case file.

use serde_json::{Value, json};
use weir::config::{Loaded, parse};
use weir::runtime::{InputSummary, run_in_memory};
use weir_core::frame::DOCKER_PIECE_BYTES;

fn pipeline(input_options: &str) -> Loaded {
    let yaml = format!("inputs:\n  - type: stdin\n    format: docker\n{input_options}outputs:\n  - type: stdout\n");
    Loaded {
        file: "pieces.yaml".into(),
        config: parse(&yaml).unwrap_or_else(|(pos, msg)| panic!("{pos:?} {msg}")),
        text: yaml,
    }
}

fn docker(log: &str, stream: &str, second: u32) -> String {
    format!(
        "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"2026-11-25T10:00:{second:02}Z\"}}\n",
        serde_json::to_string(log).unwrap()
    )
}

/// Runs `input` at every chunking; all must give the same events, which are returned with
/// the input's counters.
fn run_everywhere(loaded: &Loaded, input: &str) -> (Vec<Value>, InputSummary) {
    let bytes = input.as_bytes();
    let run = |cuts: &[usize], chunk: usize| {
        let (outputs, summary) = run_in_memory(loaded, bytes, cuts, chunk).unwrap();
        let events: Vec<Value> = outputs[0]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        (events, summary.inputs[0].clone())
    };
    let whole = run(&[], 1 << 20);
    for step in [1, 7, 64 << 10] {
        let cuts: Vec<usize> = (step..bytes.len()).step_by(step).collect();
        for chunk in [7, 1 << 20] {
            let got = run(&cuts, chunk);
            assert!(got == whole, "read size {step}, chunk {chunk}: {:?}", got.1);
        }
    }
    for at in (0..=bytes.len()).step_by(bytes.len() / 100 + 1) {
        assert!(run(&[at], 1 << 20) == whole, "split at {at}");
    }
    whole
}

fn event(message: &str, stream: &str, second: u32) -> Value {
    json!({ "timestamp": format!("2026-11-25T10:00:{second:02}Z"), "message": message, "stream": stream })
}

fn marked(message: &str, stream: &str, second: u32, error: &str) -> Value {
    let mut e = event(message, stream, second);
    e["_error"] = error.into();
    e
}

#[test]
fn full_pieces_are_joined_per_stream_and_short_ones_are_whole_messages() {
    let piece = |c: char| c.to_string().repeat(DOCKER_PIECE_BYTES);
    let (a, b, c, d, e) = (piece('a'), piece('b'), piece('c'), piece('d'), piece('e'));
    let input = [
        // A 16 KiB piece sequence, with the other stream's pieces in between.
        docker(&a, "stdout", 0),
        docker(&c, "stderr", 1),
        docker(&b, "stdout", 0),
        docker("c-end\n", "stderr", 1),
        docker("a-end\n", "stdout", 0),
        // A short piece without newline (the stream closed), then the next run's line:
        // Fluent Bit would join them; they are two messages.
        docker("bye", "stdout", 2),
        docker("hello\n", "stdout", 3),
        // A piece, then a line that is not JSON: the piece goes out, marked.
        docker(&d, "stdout", 4),
        "not json\n".to_string(),
        // A piece open at the end of the input.
        docker(&e, "stderr", 5),
    ]
    .concat();
    let (events, counters) = run_everywhere(&pipeline(""), &input);
    assert_eq!(
        events,
        [
            event(&format!("{c}c-end"), "stderr", 1),
            event(&format!("{a}{b}a-end"), "stdout", 0),
            event("bye", "stdout", 2),
            event("hello", "stdout", 3),
            marked(
                &d,
                "stdout",
                4,
                "docker: message without its last piece (a line not in the format came first)"
            ),
            json!({ "message": "not json", "_error": "docker: not a JSON object" }),
            marked(
                &e,
                "stderr",
                5,
                "docker: message without its last piece (the input ended or went quiet)"
            ),
        ]
    );
    assert_eq!(
        (
            counters.format_errors,
            counters.unfinished_messages,
            counters.bad_times,
            counters.lines_cut
        ),
        (1, 2, 0, 0)
    );
}

#[test]
fn a_joined_message_stops_growing_at_max_line_bytes() {
    let a = "a".repeat(DOCKER_PIECE_BYTES);
    let input = [
        docker(&a, "stdout", 0),
        docker(&a, "stdout", 0),
        docker(&a, "stdout", 0),
        docker("tail\n", "stdout", 0),
        docker("next\n", "stdout", 1),
    ]
    .concat();
    // Each line fits (about 16.4 KB); the joined message (48 KiB) does not.
    let (events, counters) = run_everywhere(&pipeline("    max_line_bytes: 20000\n"), &input);
    let whole = format!("{a}{a}{a}tail");
    let mut want: Vec<Value> = whole
        .as_bytes()
        .chunks(20_000)
        .map(|piece| {
            let mut e = event(std::str::from_utf8(piece).unwrap(), "stdout", 0);
            e["_cut"] = true.into();
            e
        })
        .collect();
    assert_eq!(want.len(), 3);
    want.push(event("next", "stdout", 1));
    assert_eq!(events, want);
    assert_eq!(counters.lines_cut, 1);
}

/// A GET of `path` on the admin address; the body.
fn get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(address).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// The value of the sample `name{component="inputs[0].file"}` in `/metrics`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{component=\"inputs[0].file\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

#[test]
fn a_followed_file_counts_bad_times_and_unfinished_messages_in_metrics() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let address = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let cfg = dir.path().join("pipeline.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {data}\nadmin: {{ address: \"{address}\" }}\n\
             inputs:\n  - type: file\n    paths: [\"{log}\"]\n    format: docker\n    poll_interval: 50ms\n    flush_timeout: 200ms\n\
             outputs:\n  - type: file\n    path: {out}\n",
            data = dir.path().join("data").display(),
            log = log.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    // A bad time, a good line, then a full piece whose rest never comes: after
    // `flush_timeout` of quiet it goes out, marked.
    let piece = "p".repeat(DOCKER_PIECE_BYTES);
    let text = [
        r#"{"log":"no time\n","stream":"stdout"}"#.to_string() + "\n",
        docker("fine\n", "stdout", 1),
        docker(&piece, "stderr", 2),
    ]
    .concat();
    std::fs::write(&log, text).unwrap();
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(&cfg)
        .env("WEIR_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (events, metrics) = loop {
        let events: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let metrics = std::net::TcpStream::connect(&address).map(|_| get(&address, "/metrics"));
        let metrics = metrics.unwrap_or_default();
        if events.len() == 3 && sample(&metrics, "weir_input_unfinished_messages_total") == Some(1.0) {
            break (events, metrics);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = agent.kill();
            panic!("after 20s: {} events; metrics:\n{metrics}", events.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(
        events,
        [
            json!({ "message": "no time", "stream": "stdout", "_error": "docker: no `time`" }),
            event("fine", "stdout", 1),
            marked(
                &piece,
                "stderr",
                2,
                "docker: message without its last piece (the input ended or went quiet)"
            ),
        ]
    );
    assert_eq!(sample(&metrics, "weir_input_bad_times_total"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "weir_input_format_errors_total"),
        Some(0.0),
        "{metrics}"
    );
}
