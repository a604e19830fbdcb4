//! The `wasm` processor in pipelines: `weir run` through the example plugins, and `weir
//! check` errors that name the file and line:column.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use weir_test_plugins as plugins;

mod support;

fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("--log-level").arg("warn");
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-wasm-pipeline-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(pipeline: &Path, stdin: &str) -> Output {
    let mut child = weir()
        .args(["run", "-c"])
        .arg(pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn check(pipeline: &Path) -> Output {
    weir().args(["check", "-c"]).arg(pipeline).output().unwrap()
}

#[test]
fn run_filters_redacts_and_enriches_through_plugins() {
    let dir = temp_dir("run");
    let yaml = format!(
        r#"inputs:
  - type: stdin
processors:
  - type: parse_json
  - type: wasm
    plugin: {filter}
    config: {{ include: {{ level: '^(error|warn)$' }} }}
  - type: wasm
    plugin: {redact}
    config: {{ fields: msg }}
  - type: wasm
    plugin: {enrich}
    config:
      add: {{ env: prod }}
      route: {{ pay: 'card', other: '.' }}
      route_field: msg
outputs:
  - type: stdout
"#,
        filter = plugins::FILTER,
        redact = plugins::REDACT,
        enrich = plugins::ENRICH
    );
    let pipeline = write(&dir, "p.yaml", &yaml);
    let input = concat!(
        r#"{"level":"info","msg":"hello a@b.io"}"#,
        "\n",
        r#"{"level":"error","msg":"card 4111-1111-1111-1111 declined for a@b.io"}"#,
        "\n",
        r#"{"level":"warn","msg":"slow from 10.0.0.1"}"#,
        "\n",
    );
    let out = run(&pipeline, input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["msg"], "card [CARD] declined for [EMAIL]");
    assert_eq!(lines[0]["route"], "pay");
    assert_eq!(lines[0]["env"], "prod");
    assert_eq!(lines[1]["msg"], "slow from [IPV4]");
    assert_eq!(lines[1]["route"], "other");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_trapping_plugin_does_not_stop_the_run_and_dead_letters_go_to_their_output() {
    let dir = temp_dir("trap");
    let dead = dir.join("dead.jsonl");
    let yaml = format!(
        "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {trap}\n    on_error: dead_letter\noutputs:\n  - type: stdout\n  - type: file\n    name: dead\n    path: {dead}\ndead_letter: dead\n",
        trap = plugins::TRAP,
        dead = dead.display()
    );
    let pipeline = write(&dir, "p.yaml", &yaml);
    let out = run(&pipeline, "fine\nit's a trap\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // One batch holds both lines: both are dead-lettered, with the reason.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let dead = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(dead.lines().count(), 2, "{dead}");
    assert!(dead.contains(r#""_error":"wasm plugin hostile_trap: trap: "#), "{dead}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hostile_trap"),
        "the failure is logged with the plugin name: {stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn check_reports_wasm_config_errors_at_their_line_and_column() {
    let dir = temp_dir("check");
    let good = write(
        &dir,
        "good.yaml",
        &format!(
            "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    config: {{ include.level: x }}\n    timeout: 50ms\n    memory: 32MiB\noutputs:\n  - type: stdout\n",
            plugins::FILTER
        ),
    );
    let out = check(&good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad_timeout.yaml",
            format!(
                "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    timeout: 100\noutputs:\n  - type: stdout\n",
                plugins::FILTER
            ),
            ":6:",
        ),
        (
            "unknown_key.yaml",
            format!(
                "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    memroy: 1MiB\noutputs:\n  - type: stdout\n",
                plugins::FILTER
            ),
            ":6:5: unknown field `memroy`",
        ),
        (
            "bad_policy.yaml",
            format!(
                "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    on_error: retry\noutputs:\n  - type: stdout\n",
                plugins::FILTER
            ),
            ":6:",
        ),
        (
            "missing.yaml",
            "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: /nonexistent/p.wasm\noutputs:\n  - type: stdout\n"
                .to_string(),
            ":4:5: wasm: cannot read plugin /nonexistent/p.wasm",
        ),
        (
            "rejected.yaml",
            format!(
                "inputs:\n  - type: stdin\nprocessors:\n  - type: add_fields\n    fields: {{ a: b }}\n  - type: wasm\n    plugin: {}\n    config: {{ include.level: '(' }}\noutputs:\n  - type: stdout\n",
                plugins::FILTER
            ),
            ":6:5: wasm: plugin filter rejected its config: fatal: config `include.level`: bad pattern",
        ),
        (
            "dead_letter.yaml",
            format!(
                "inputs:\n  - type: stdin\nprocessors:\n  - type: wasm\n    plugin: {}\n    config: {{ include.level: x }}\n    on_error: dead_letter\noutputs:\n  - type: stdout\n",
                plugins::FILTER
            ),
            ":4:5: on_failure: dead_letter needs the pipeline's `dead_letter: OUTPUT_NAME`",
        ),
    ];
    for (name, yaml, want) in cases {
        let path = write(&dir, name, &yaml);
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} should be refused");
        assert!(
            stderr.contains(&format!("{}{want}", path.display())),
            "{name}: want `{want}` in:\n{stderr}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_gathering_plugin_is_flushed_on_its_timer_and_at_shutdown() {
    let dir = temp_dir("flush");
    let out = dir.join("counts.jsonl");
    let admin = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let yaml = format!(
        r#"admin: {{ address: "{admin}" }}
inputs:
  - type: stdin
processors:
  - type: parse_json
  - type: parse_timestamp
    field: ts
    format: rfc3339
  - type: wasm
    plugin: {counter}
    flush_interval: 50ms
    config: {{ drop_events: true }}
outputs:
  - type: file
    path: {out}
"#,
        counter = plugins::COUNT_BY_SERVICE,
        out = out.display()
    );
    let pipeline = write(&dir, "p.yaml", &yaml);
    // Stdin stays open a while after the first lines: the timer flushes them; the rest
    // comes out of the flush at shutdown.
    let mut child = weir()
        .args(["run", "-c"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = |service: &str, second: u32| {
        format!("{{\"service\":\"{service}\",\"ts\":\"2026-01-01T00:00:{second:02}Z\"}}\n")
    };
    for (s, t) in [("api", 1), ("db", 1), ("api", 1)] {
        stdin.write_all(line(s, t).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    while read().lines().count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer flushed nothing: {:?}",
            read()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The plugin's own counters, in /metrics while it runs.
    let m = support::agent::metrics(&admin);
    let get = |name: &str| m.get(&format!("{name}{{component=\"processors[2].wasm\"}}")).copied();
    assert_eq!(get("weir_wasm_plugin_events_total"), Some(3.0), "{m:?}");
    assert_eq!(get("weir_wasm_plugin_emitted_total"), Some(2.0), "{m:?}");
    assert!(get("weir_wasm_plugin_flushes_total").is_some_and(|n| n >= 1.0), "{m:?}");
    assert_eq!(get("weir_wasm_plugin_emits_refused_total"), Some(0.0), "{m:?}");
    assert!(
        get("weir_wasm_plugin_instances_total").is_some_and(|n| n >= 1.0),
        "{m:?}"
    );
    assert!(
        m.get("weir_wasm_plugin_failures_total{component=\"processors[2].wasm\",kind=\"trap\"}") == Some(&0.0),
        "{m:?}"
    );
    for (s, t) in [("api", 2), ("api", 2)] {
        stdin.write_all(line(s, t).as_bytes()).unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    // Each worker counts what it saw and a timer flush may fall between two lines, so a
    // (second, service) can come out in several parts: the parts add up to every event.
    let mut counts = std::collections::BTreeMap::new();
    for line in read().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (v["timestamp"].to_string(), v["service"].to_string());
        *counts.entry(key).or_insert(0) += v["count"].as_i64().unwrap();
    }
    let ts = |s: u32| format!("\"2026-01-01T00:00:{s:02}Z\"");
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ((ts(1), "\"api\"".to_string()), 2),
            ((ts(1), "\"db\"".to_string()), 1),
            ((ts(2), "\"api\"".to_string()), 2),
        ]
    );
}

#[test]
fn a_plugin_routes_events_to_named_outputs_and_an_unknown_name_fails_the_batch() {
    let dir = temp_dir("route");
    let (alerts, all, dead) = (dir.join("alerts.jsonl"), dir.join("all.jsonl"), dir.join("dead.jsonl"));
    let pipeline = |routes: &str| {
        format!(
            r#"inputs:
  - type: stdin
processors:
  - type: parse_json
  - type: wasm
    plugin: {router}
    on_error: dead_letter
    config: {{ field: level, routes: {routes} }}
outputs:
  - type: file
    name: alerts
    path: {alerts}
  - type: file
    path: {all}
  - type: file
    name: dead
    path: {dead}
dead_letter: dead
"#,
            router = plugins::ROUTE_BY_FIELD,
            alerts = alerts.display(),
            all = all.display(),
            dead = dead.display()
        )
    };
    let input = concat!(
        r#"{"level":"error","n":1}"#,
        "\n",
        r#"{"level":"info","n":2}"#,
        "\n",
        r#"{"level":"warn","n":3}"#,
        "\n",
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let p = write(&dir, "p.yaml", &pipeline("{ error: alerts, warn: alerts }"));
    let out = run(&p, input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Routed events go to `alerts` only; the others to every output but the dead-letter.
    assert_eq!(
        read(&alerts),
        concat!(
            r#"{"level":"error","n":1}"#,
            "\n",
            r#"{"level":"info","n":2}"#,
            "\n",
            r#"{"level":"warn","n":3}"#,
            "\n"
        )
    );
    assert_eq!(read(&all), concat!(r#"{"level":"info","n":2}"#, "\n"));
    assert_eq!(read(&dead), "");

    // A route to an output the pipeline does not have (or to the dead-letter one) fails the
    // batch, which follows on_error: the reason names the outputs it could use.
    for f in [&alerts, &all, &dead] {
        let _ = std::fs::remove_file(f);
    }
    let p = write(&dir, "p2.yaml", &pipeline("{ error: pager, warn: dead }"));
    let out = run(&p, input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((read(&alerts), read(&all)), (String::new(), String::new()));
    let dead = read(&dead);
    assert_eq!(dead.lines().count(), 3, "{dead}");
    assert!(
        dead.contains("route to `pager`: the pipeline has no output of that name")
            && dead.contains("can route to are the named ones but the dead-letter output: alerts"),
        "{dead}"
    );
}

#[test]
fn a_plugin_file_replaced_on_disk_is_picked_up_between_batches() {
    let dir = temp_dir("reload");
    let plugin = dir.join("plugin.wasm");
    let out = dir.join("out.jsonl");
    // Install a file the way deploy tools do: write beside it, then rename over it.
    let install = |from: &str| {
        let tmp = dir.join("plugin.wasm.new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, &plugin).unwrap();
    };
    install(plugins::NOOP);
    let admin = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let yaml = format!(
        r#"admin: {{ address: "{admin}" }}
inputs:
  - type: stdin
processors:
  - type: wasm
    plugin: {plugin}
outputs:
  - type: file
    path: {out}
"#,
        plugin = plugin.display(),
        out = out.display()
    );
    let pipeline = write(&dir, "p.yaml", &yaml);
    let mut child = weir()
        .args(["run", "-c"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    let wait_for = |lines: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while read().lines().count() < lines {
            assert!(
                std::time::Instant::now() < deadline,
                "waited for {lines} lines: {:?}",
                read()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // The noop version: arrays pass whole.
    stdin.write_all(b"[1,2]\n[3,4]\n").unwrap();
    stdin.flush().unwrap();
    wait_for(2);
    // The split-array version replaces it; the agent looks at the file once a second.
    install(plugins::SPLIT_ARRAY);
    let m = || support::agent::metrics(&admin);
    let reloads = |m: &std::collections::HashMap<String, f64>| {
        m.get("weir_wasm_plugin_reloads_total{component=\"processors[0].wasm\"}")
            .copied()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // A batch makes the workers look (the check runs between batches).
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        if reloads(&m()) == Some(1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload: {:?}", m());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // A broken file: logged and counted, the split-array version goes on.
    std::fs::write(dir.join("plugin.wasm.new"), b"not wasm").unwrap();
    std::fs::rename(dir.join("plugin.wasm.new"), &plugin).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        if m().get("weir_wasm_plugin_reload_failures_total{component=\"processors[0].wasm\"}") == Some(&1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failed reload: {:?}", m());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    stdin.write_all(b"[5,6]\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    // Every line exactly once: the arrays before the swap whole, the one after split; the
    // empty lines that prodded the workers pass as empty messages.
    let lines: Vec<String> = read()
        .lines()
        .filter(|l| *l != r#"{"message":""}"#)
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"message":"[1,2]"}"#,
            r#"{"message":"[3,4]"}"#,
            r#"{"message":5,"index":0}"#,
            r#"{"message":6,"index":1}"#
        ]
    );
}
