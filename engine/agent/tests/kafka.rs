//! Kafka against a real Kafka-protocol broker (Tansu; `support/kafka.rs`): every line of a
//! file arrives exactly once across partitions, topics come from event fields with a
//! default, keys from a field, a frozen broker (SIGSTOP, then SIGCONT) or a cut connection
//! loses nothing with bounded memory, refused messages go to `dead_letter`; aggregators in
//! a consumer group share partitions, survive kills, and commit only what was delivered (a
//! failed batch is read again after a restart). The acknowledgement and backpressure checks every output
//! shares are in `tests/outputs.rs`.
//!
//! `WEIR_KAFKA_LINES` and `WEIR_KAFKA_OUTAGE_S` scale the group, kill and outage tests up
//! (the acceptance runs: 1,000,000 lines, 30 s outages).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::agent::{append_to, weir_run};
use support::http_server::{Action, Server};
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

/// How many lines a test sends: `default`, or `$WEIR_KAFKA_LINES` (the acceptance runs use
/// 1,000,000).
fn lines(default: u64) -> u64 {
    std::env::var("WEIR_KAFKA_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How long an outage lasts: `default`, or `$WEIR_KAFKA_OUTAGE_S` seconds (the acceptance
/// runs use 30).
fn outage(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("WEIR_KAFKA_OUTAGE_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[test]
fn a_frozen_broker_loses_nothing() {
    broker_outage("a_frozen_broker_loses_nothing", |broker, down| broker.freeze(down));
}

#[test]
fn a_cut_connection_loses_nothing() {
    broker_outage("a_cut_connection_loses_nothing", |broker, down| broker.proxy.cut(down));
}

/// An agent follows a file into Kafka while the broker is out (`down(broker, true)`, then
/// `false`) for [`outage`]: every line arrives, and the agent's memory stays bounded.
fn broker_outage(test: &str, down: impl Fn(&Broker, bool)) {
    let Some(broker) = Broker::start(test) else {
        return;
    };
    broker.create_topic("logs", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = lines(200_000);
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
    let lasts = outage(10);
    down(&broker, true);
    std::thread::sleep(lasts);
    let rss_in_outage = support::agent::peak_rss_kib(agent.id()) * 1024;
    down(&broker, false);
    let start = Instant::now();
    let mut got = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(120) {
        got = counts(&broker.read_topic("logs"));
        if got.len() as u64 == n {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(1500)); // a statistics report
    let metrics = support::agent::metrics(&admin);
    let rss = support::agent::peak_rss_kib(agent.id()) * 1024;
    sigterm(&mut agent);
    assert_eq!(
        got.len() as u64,
        n,
        "lines missing after an outage of {lasts:?}\n{}",
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
    assert_eq!(
        metrics.get("weir_kafka_topic_queue_messages{component=\"outputs[0].kafka\",topic=\"logs\"}"),
        Some(&0.0),
        "queue depth per topic"
    );
    let dups = got.values().filter(|&&c| c > 1).count();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "{n} lines, outage {lasts:?}: peak RSS {:.1} MiB by its end, {:.1} MiB in all; \
         {dups} line(s) delivered twice",
        mib(rss_in_outage),
        mib(rss)
    );
    assert!(
        rss < 256 << 20,
        "the agent's memory grew with the outage: peak RSS {:.1} MiB",
        mib(rss)
    );
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
    // Statistics come once a second; the lag is there once the group has positions.
    let mut metrics = support::agent::metrics(&admin);
    let lag = |m: &std::collections::HashMap<String, f64>| m.keys().any(|k| k.starts_with("weir_kafka_consumer_lag{"));
    while !lag(&metrics) && start.elapsed() < Duration::from_secs(70) {
        std::thread::sleep(Duration::from_millis(250));
        metrics = support::agent::metrics(&admin);
    }
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

/// Waits until every line in `0..n` is in the aggregators' outputs (or 120 s passed, and
/// a second more per 5,000 lines).
fn wait_delivered(dir: &Path, names: &[&str], n: u64) -> BTreeMap<u64, u32> {
    let start = Instant::now();
    let limit = Duration::from_secs(120 + n / 5_000);
    loop {
        let got = delivered(dir, names);
        if got.len() as u64 >= n || start.elapsed() > limit {
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
    let n = lines(200_000);
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
    let n: u64 = lines(200_000);
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
             \x20   group_id: json\n    decoding: json\n\
             \x20   metadata: {{ topic: kafka_topic, offset: kafka_offset, key: kafka_key, timestamp: kafka_time }}\n\
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["kafka_offset"], i as i64, "each message's offset: {e}");
        assert!(e["kafka_key"].is_null(), "a message without a key: {e}");
        let ms = e["kafka_time"].as_i64().unwrap_or_else(|| panic!("a timestamp: {e}"));
        assert!((now_ms - 120_000..=now_ms).contains(&ms), "its Kafka time, in ms: {e}");
    }
    let errors = metrics.get("weir_input_format_errors_total{component=\"inputs[0].kafka\"}");
    assert_eq!(errors, Some(&1.0), "the message that is not JSON is counted");
}

/// The line number in an aggregator's JSON line (the agent's event, as the message).
fn line_number(line: &str) -> u64 {
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    let outer: serde_json::Value = serde_json::from_str(event["message"].as_str().unwrap()).unwrap();
    outer["message"].as_str().unwrap()[5..13].parse().unwrap()
}

#[test]
fn a_failed_batch_is_not_committed_and_comes_again_after_a_restart() {
    let test = "a_failed_batch_is_not_committed_and_comes_again_after_a_restart";
    let Some(broker) = Broker::start(test) else {
        return;
    };
    broker.create_topic("logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let n = 20_000;
    numbered(&log, n);
    run_once(
        dir.path(),
        &format!(
            "inputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n",
            log.display(),
            broker.bootstrap()
        ),
    );
    // The request holding line 15000 fails (503), and so does every retry of it, until
    // `healthy`. (Requests end at the output's flushes, so at batch boundaries.)
    let healthy = Arc::new(AtomicBool::new(false));
    let server = {
        let healthy = healthy.clone();
        Server::start_with_body(move |_, body| {
            let bad = body.windows(13).any(|w| w == b"line-00015000");
            if bad && !healthy.load(Ordering::SeqCst) {
                Action::Status(503, None)
            } else {
                Action::Ok
            }
        })
    };
    let config = dir.path().join("agg.yaml");
    std::fs::write(
        &config,
        format!(
            "shutdown_timeout: 2s\ninputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topics: [logs]\n\
             \x20   group_id: failed-batch\n\
             \x20   librdkafka_options: {{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"1000\" }}\n\
             outputs:\n  - type: http\n    uri: {}\n    batch: {{ max_bytes: 16MiB, timeout: 1ms }}\n\
             \x20   retry: {{ initial_backoff: 100ms, max_backoff: 200ms }}\n",
            broker.bootstrap(),
            server.uri("/ingest")
        ),
    )
    .unwrap();
    let stderr = dir.path().join("agg.stderr");
    let mut agg = weir_run(&config).stderr(append_to(&stderr)).spawn().unwrap();
    let start = Instant::now();
    let failed_at = || server.seen().iter().find(|s| s.action != Action::Ok).map(|s| s.at);
    // Retried for over a second: the delivered prefix has been committed meanwhile.
    while failed_at().is_none_or(|t| t.elapsed() < Duration::from_millis(1500)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no request failed in 60 s\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sigterm(&mut agg);
    let seen = server.seen();
    let failed = seen.iter().find(|s| s.action != Action::Ok).unwrap();
    let failed: Vec<u64> = String::from_utf8_lossy(&failed.body).lines().map(line_number).collect();
    let accepted: Vec<u64> = server.accepted_lines().iter().map(|l| line_number(l)).collect();
    assert_eq!(
        accepted,
        (0..failed[0]).collect::<Vec<_>>(),
        "the requests before the failed one hold the lines before it, in order"
    );
    eprintln!(
        "{} request(s) delivered lines 0..{} before the failed one",
        seen.iter().take_while(|s| s.action == Action::Ok).count(),
        failed[0]
    );
    // One partition written in order: line k is at offset k.
    assert_eq!(
        broker.committed("failed-batch", "logs", 0).unwrap_or(0),
        failed[0] as i64,
        "the group committed exactly the delivered prefix: up to the failed batch, not past it\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );

    healthy.store(true, Ordering::SeqCst);
    let before = server.seen().len();
    let mut agg = weir_run(&config).stderr(append_to(&stderr)).spawn().unwrap();
    let start = Instant::now();
    let mut got: BTreeMap<u64, u32> = BTreeMap::new();
    while (got.len() as u64) < n && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        got = BTreeMap::new();
        for l in server.accepted_lines() {
            *got.entry(line_number(&l)).or_insert(0) += 1;
        }
    }
    sigterm(&mut agg);
    assert_eq!(
        got.len() as u64,
        n,
        "every line delivered after the restart\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let after: Vec<u64> = server.seen()[before..]
        .iter()
        .flat_map(|s| {
            String::from_utf8_lossy(&s.body)
                .lines()
                .map(line_number)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        after.first(),
        Some(&failed[0]),
        "the restarted aggregator starts at the failed batch"
    );
    assert!(
        got.values().all(|&c| c == 1),
        "no line twice: the delivered prefix was committed"
    );
}

#[test]
fn refused_messages_go_to_the_dead_letter_output() {
    let Some(broker) = Broker::start("refused_messages_go_to_the_dead_letter_output") else {
        return;
    };
    broker.create_topic("logs", 1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // Every hundredth line is too large for the producer's `message.max.bytes`.
    let mut text = String::new();
    for i in 0..1000u64 {
        let pad = if i % 100 == 0 { "x".repeat(5000) } else { String::new() };
        text.push_str(&format!("line-{i:08} ns=shop {pad}\n"));
    }
    std::fs::write(&log, text).unwrap();
    let dead = dir.path().join("dead.out");
    run_once(
        dir.path(),
        &format!(
            "dead_letter: refused\ninputs:\n  - type: file\n    paths: [\"{}\"]\n    mode: once\n\
             outputs:\n  - type: kafka\n    bootstrap_servers: {}\n    topic: logs\n\
             \x20   batch: {{ max_bytes: 2000 }}\n    librdkafka_options: {{ message.max.bytes: \"4000\" }}\n\
             \x20 - type: file\n    name: refused\n    path: {}\n",
            log.display(),
            broker.bootstrap(),
            dead.display()
        ),
    );
    let got = counts(&broker.read_topic("logs"));
    assert_eq!(got.len(), 990, "every line that fits is in the topic");
    assert!(got.keys().all(|n| n % 100 != 0), "no large line is in the topic");
    let dead_letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let numbers: Vec<u64> = dead_letters
        .iter()
        .map(|e| e["message"].as_str().unwrap()[5..13].parse().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (0..10).map(|k| k * 100).collect::<Vec<_>>(),
        "the refused events, in order"
    );
    for e in &dead_letters {
        let why = e["_error"].as_str().unwrap();
        assert!(
            why.starts_with("kafka refused it") && why.contains("too large"),
            "{why}"
        );
    }
}
