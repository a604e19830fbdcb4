//! The `kafka` output against a real Kafka-protocol broker (Tansu; `support/kafka.rs`):
//! every line of a file arrives exactly once across partitions, topics come from event
//! fields with a default, keys from a field, and a frozen broker (SIGSTOP, then SIGCONT)
//! loses nothing. The acknowledgement and backpressure checks every output shares are in
//! `tests/outputs.rs`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::agent::{append_to, weir_run};
use support::kafka::Broker;

fn numbered(path: &Path, n: u64) {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "line-{i:08} ns={} the quick brown fox\n",
            ["shop", "auth", "misc"][(i % 3) as usize]
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// How many times each line number is among the messages.
fn counts(messages: &[(i32, Vec<u8>)]) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for (_, m) in messages {
        let event: serde_json::Value = serde_json::from_slice(m).unwrap();
        let msg = event["message"].as_str().unwrap();
        let n: u64 = msg[5..13].parse().unwrap();
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

fn run_once(dir: &Path, yaml: &str) {
    let config = dir.join("pipeline.yaml");
    std::fs::write(&config, yaml).unwrap();
    let stderr = dir.join("stderr.log");
    let status = weir_run(&config).stderr(append_to(&stderr)).status().unwrap();
    assert!(
        status.success(),
        "weir run failed: {status}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

#[test]
fn every_line_of_a_file_arrives_once_across_partitions() {
    let Some(broker) = Broker::start("every_line_of_a_file_arrives_once_across_partitions") else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 100_000;
    numbered(&log, n);
    run_once(
        dir.path(),
        &format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             processors:\n  - type: parse_kv\n    field: message\n    keep_source: true\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n    key_field: ns\n\
             \x20   compression: lz4\n",
            log.display(),
            broker.bootstrap()
        ),
    );
    let messages = broker.read_topic("logs");
    let counts = counts(&messages);
    assert_eq!(counts.len() as u64, n, "every line arrived");
    assert!(counts.values().all(|&c| c == 1), "no line twice");
    let partitions: std::collections::BTreeSet<i32> = messages.iter().map(|(p, _)| *p).collect();
    assert!(
        partitions.len() > 1,
        "keyed messages spread over partitions: {partitions:?}"
    );
}

#[test]
fn topics_come_from_a_field_with_a_default() {
    let Some(broker) = Broker::start("topics_come_from_a_field_with_a_default") else {
        return;
    };
    for t in ["logs-shop", "logs-auth", "other"] {
        broker.create_topic(t, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    numbered(&log, 300);
    // `misc` lines lose their field: they go to the default topic.
    run_once(
        dir.path(),
        &format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             processors:\n  - type: parse_kv\n    field: message\n    keep_source: true\n\
             \x20 - type: filter\n    exclude: {{ ns: '^misc$' }}\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs-{{ns}}\n    default_topic: other\n",
            log.display(),
            broker.bootstrap()
        ),
    );
    assert_eq!(broker.read_topic("logs-shop").len(), 100);
    assert_eq!(broker.read_topic("logs-auth").len(), 100);
    assert_eq!(broker.read_topic("other").len(), 0, "filtered events go nowhere");
}

#[test]
fn a_frozen_broker_loses_nothing() {
    let Some(broker) = Broker::start("a_frozen_broker_loses_nothing") else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 200_000;
    numbered(&log, n);
    let config = dir.path().join("pipeline.yaml");
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nadmin: {{ address: \"{admin}\" }}\ninputs:\n  - type: file\n    paths: [\"{}\"]\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n    compression: lz4\n",
            dir.path().join("data").display(),
            log.display(),
            broker.bootstrap()
        ),
    )
    .unwrap();
    let stderr = dir.path().join("stderr.log");
    let mut agent = weir_run(&config).stderr(append_to(&stderr)).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    broker.freeze(true);
    std::thread::sleep(Duration::from_secs(10));
    broker.freeze(false);
    let start = Instant::now();
    let mut got = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(90) {
        got = counts(&broker.read_topic("logs"));
        if got.len() as u64 == n {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(1500)); // a statistics report
    let metrics = support::agent::metrics(&admin);
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    agent.wait().unwrap();
    assert_eq!(
        got.len() as u64,
        n,
        "lines missing after the broker was frozen for 10 s\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let sent = metrics.get("weir_kafka_messages_total{component=\"outputs[0].kafka\",topic=\"logs\"}");
    assert!(
        sent.is_some_and(|&s| s >= n as f64),
        "messages per topic in /metrics: {sent:?}"
    );
    assert_eq!(
        metrics.get("weir_kafka_queue_messages{component=\"outputs[0].kafka\"}"),
        Some(&0.0),
        "the producer's queue is empty once everything is delivered"
    );
    let dups = got.values().filter(|&&c| c > 1).count();
    eprintln!("{dups} line(s) delivered twice (at-least-once across the freeze)");
}

/// An aggregator: `kafka` input (group `group`) into a file, with its admin endpoint.
fn aggregator(dir: &Path, name: &str, broker: &Broker, group: &str) -> std::path::PathBuf {
    aggregator_with(dir, name, broker, group, "")
}

/// [`aggregator`] with more top-level settings (`top`, YAML lines).
fn aggregator_with(dir: &Path, name: &str, broker: &Broker, group: &str, top: &str) -> std::path::PathBuf {
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &config,
        format!(
            "{top}shutdown_timeout: 5s\ninputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topics: [logs]\n\
             \x20   group_id: {group}\n    metadata: {{ partition: kafka_partition }}\n\
             \x20   librdkafka_options: {{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\" }}\n\
             outputs:\n  - type: file\n    path: {}\n",
            broker.bootstrap(),
            dir.join(format!("{name}.out")).display()
        ),
    )
    .unwrap();
    config
}

/// Line numbers in the aggregators' output files, and how often each came.
fn delivered(dir: &Path, names: &[&str]) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for name in names {
        let text = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line being written
            };
            let outer: serde_json::Value = serde_json::from_str(event["message"].as_str().unwrap()).unwrap();
            let n: u64 = outer["message"].as_str().unwrap()[5..13].parse().unwrap();
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

fn sigterm(child: &mut std::process::Child) {
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

#[test]
fn agent_to_kafka_to_aggregator_every_line_once() {
    let Some(broker) = Broker::start("agent_to_kafka_to_aggregator_every_line_once") else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 50_000;
    numbered(&log, n);
    run_once(
        dir.path(),
        &format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n    compression: lz4\n",
            log.display(),
            broker.bootstrap()
        ),
    );
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let top = format!("admin: {{ address: \"{admin}\" }}\n");
    let config = aggregator_with(dir.path(), "agg", &broker, "every-line-once", &top);
    let stderr = dir.path().join("agg.stderr");
    let mut agg = weir_run(&config).stderr(append_to(&stderr)).spawn().unwrap();
    let start = Instant::now();
    let mut got = delivered(dir.path(), &["agg"]);
    while (got.len() as u64) < n && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        got = delivered(dir.path(), &["agg"]);
    }
    std::thread::sleep(Duration::from_millis(1500)); // a statistics report
    let metrics = support::agent::metrics(&admin);
    sigterm(&mut agg);
    let consumed = metrics
        .get("weir_kafka_consumed_messages_total{component=\"inputs[0].kafka\",topic=\"logs\"}")
        .copied();
    assert_eq!(consumed, Some(n as f64), "consumed messages in /metrics");
    assert!(
        metrics.keys().any(|k| k.starts_with("weir_kafka_consumer_lag{")),
        "consumer lag per partition in /metrics: {:?}",
        metrics.keys().filter(|k| k.contains("kafka")).collect::<Vec<_>>()
    );
    assert_eq!(
        got.len() as u64,
        n,
        "lines missing\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert!(got.values().all(|&c| c == 1), "a line came twice");

    // Its offsets were committed: a second run of the group reads nothing again.
    let mut again = weir_run(&config).stderr(append_to(&stderr)).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    sigterm(&mut again);
    let after = delivered(dir.path(), &["agg"]);
    assert!(
        after.values().all(|&c| c == 1),
        "the group read committed messages again"
    );
}

/// An agent following `log` into the `logs` topic.
fn agent_config(dir: &Path, log: &Path, broker: &Broker) -> std::path::PathBuf {
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\ncheckpoint_interval: 100ms\ninputs:\n  - type: file\n    paths: [\"{}\"]\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n    compression: lz4\n",
            dir.join("agent-data").display(),
            log.display(),
            broker.bootstrap()
        ),
    )
    .unwrap();
    config
}

/// Waits until every line in `0..n` is in the aggregators' outputs (or 120 s passed).
fn wait_delivered(dir: &Path, names: &[&str], n: u64) -> BTreeMap<u64, u32> {
    let start = Instant::now();
    loop {
        let got = delivered(dir, names);
        if got.len() as u64 >= n || start.elapsed() > Duration::from_secs(120) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn two_aggregators_in_a_group_share_the_partitions() {
    let Some(broker) = Broker::start("two_aggregators_in_a_group_share_the_partitions") else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 200_000;
    numbered(&log, n);
    let stderr = dir.path().join("stderr.log");
    let mut agent = weir_run(&agent_config(dir.path(), &log, &broker))
        .stderr(append_to(&stderr))
        .spawn()
        .unwrap();
    let mut a = weir_run(&aggregator(dir.path(), "a", &broker, "share"))
        .stderr(append_to(&stderr))
        .spawn()
        .unwrap();
    // Apart, so the group coordinator sees two joins.
    std::thread::sleep(Duration::from_secs(2));
    let mut b = weir_run(&aggregator(dir.path(), "b", &broker, "share"))
        .stderr(append_to(&stderr))
        .spawn()
        .unwrap();
    let got = wait_delivered(dir.path(), &["a", "b"], n);
    for child in [&mut agent, &mut a, &mut b] {
        sigterm(child);
    }
    let log_text = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(got.len() as u64, n, "lines missing\n{log_text}");
    let dups = got.values().filter(|&&c| c > 1).count();
    let (in_a, in_b) = (delivered(dir.path(), &["a"]).len(), delivered(dir.path(), &["b"]).len());
    eprintln!("aggregator a: {in_a} lines, b: {in_b} lines, {dups} duplicated");
    assert_eq!(dups, 0, "without faults every line arrives once");
    assert!(
        in_a > 0 && in_b > 0,
        "both members got partitions (a: {in_a}, b: {in_b})"
    );
}

#[test]
fn killed_aggregator_and_agent_lose_nothing() {
    let Some(broker) = Broker::start("killed_aggregator_and_agent_lose_nothing") else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n: u64 = 200_000;
    std::fs::write(&log, "").unwrap();
    // The application writes for about 12 s, so the kills land mid-stream.
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            for block in 0..60 {
                let mut text = String::new();
                for i in block * n / 60..(block + 1) * n / 60 {
                    text.push_str(&format!("line-{i:08} ns=shop the quick brown fox\n"));
                }
                f.write_all(text.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let stderr = dir.path().join("stderr.log");
    let agent_cfg = agent_config(dir.path(), &log, &broker);
    let mut agent = weir_run(&agent_cfg).stderr(append_to(&stderr)).spawn().unwrap();
    let mut a = weir_run(&aggregator(dir.path(), "a", &broker, "kills"))
        .stderr(append_to(&stderr))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut b = weir_run(&aggregator(dir.path(), "b", &broker, "kills"))
        .stderr(append_to(&stderr))
        .spawn()
        .unwrap();
    // Once lines flow through both tiers, the agent dies once, then aggregator a for good.
    let start = Instant::now();
    while delivered(dir.path(), &["a", "b"]).is_empty() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let before_kills = delivered(dir.path(), &["a", "b"]).len();
    agent.kill().unwrap();
    agent.wait().unwrap();
    let mut agent = weir_run(&agent_cfg).stderr(append_to(&stderr)).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    a.kill().unwrap();
    a.wait().unwrap();
    writer.join().unwrap();
    let got = wait_delivered(dir.path(), &["a", "b"], n);
    for child in [&mut agent, &mut b] {
        sigterm(child);
    }
    let log_text = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        before_kills > 0 && (before_kills as u64) < n,
        "the kills were not mid-stream: {before_kills} lines were delivered before"
    );
    let missing: Vec<u64> = (0..n).filter(|i| !got.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "lines missing, e.g. {missing:?}\n{log_text}");
    let dups: u32 = got.values().map(|c| c - 1).sum();
    eprintln!(
        "every line arrived ({before_kills} before the kills); {dups} duplicate deliveries (at-least-once across the kills)"
    );
}

#[test]
fn json_messages_become_fields() {
    let Some(broker) = Broker::start("json_messages_become_fields") else {
        return;
    };
    broker.create_topic("logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "{\"level\":\"warn\",\"n\":1}\nnot json\n{\"level\":\"info\",\"n\":2}\n",
    )
    .unwrap();
    run_once(
        dir.path(),
        &format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n    encoding: raw\n",
            log.display(),
            broker.bootstrap()
        ),
    );
    let config = dir.path().join("agg.yaml");
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    std::fs::write(
        &config,
        format!(
            "admin: {{ address: \"{admin}\" }}\ninputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topics: [logs]\n\
             \x20   group_id: json\n    decoding: json\n    metadata: {{ topic: kafka_topic }}\n\
             outputs:\n  - type: file\n    path: {}\n",
            broker.bootstrap(),
            dir.path().join("out").display()
        ),
    )
    .unwrap();
    let mut agg = weir_run(&config).spawn().unwrap();
    let start = Instant::now();
    let mut events: Vec<serde_json::Value> = Vec::new();
    while events.len() < 3 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap_or_default();
        events = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    }
    let metrics = support::agent::metrics(&admin);
    sigterm(&mut agg);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["level"], "warn");
    assert_eq!(events[0]["n"], 1);
    assert_eq!(events[0]["kafka_topic"], "logs");
    assert!(
        events[0].get("message").is_none(),
        "the JSON replaced the message: {}",
        events[0]
    );
    assert_eq!(events[1]["message"], "not json");
    assert!(events[1]["_error"].is_string(), "{}", events[1]);
    assert_eq!(events[2]["level"], "info");
    let errors = metrics.get("weir_input_format_errors_total{component=\"inputs[0].kafka\"}");
    assert_eq!(errors, Some(&1.0), "the message that is not JSON is counted");
}
