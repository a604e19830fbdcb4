//! The host through real components (built from `wasm-plugins/` by `weir-test-plugins`):
//! the example plugins give the right answers, and the hostile ones are contained.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_core::model::{Batch, Buf, Event, KeyTable, Origin, Span, Value};
use weir_core::pipeline::Processor;
use weir_core::processors::filter::FilterConfig;
use weir_core::units::{ByteSize, Dur};
use weir_test_plugins as plugins;
use weir_wasm::{FailureKind, OnError, PluginConfig, WasmConfig, WasmProcessor};

/// A batch with one event per line (`message` = the line).
fn batch(lines: &[&str]) -> Batch {
    let mut chunk = Vec::new();
    let mut spans = Vec::new();
    for line in lines {
        spans.push(Span::new(Buf::Chunk, chunk.len(), line.len()));
        chunk.extend_from_slice(line.as_bytes());
        chunk.push(b'\n');
    }
    let mut batch = Batch::new(chunk, Origin::default());
    for span in spans {
        batch.push(Event::from_line(span));
    }
    batch
}

fn config(path: &str, pairs: &[(&str, &str)]) -> WasmConfig {
    let mut c = WasmConfig::new(path);
    c.config = PluginConfig::from_pairs(pairs.iter().copied());
    c
}

fn build(c: &WasmConfig, keys: &Arc<KeyTable>) -> WasmProcessor {
    c.build(keys)
        .unwrap_or_else(|e| panic!("{} builds: {e}", c.plugin.display()))
}

/// The text of `field` in the live events, in order (`None` where absent or not text).
fn live_texts(batch: &Batch, keys: &KeyTable, field: &str) -> Vec<Option<String>> {
    let key = keys.intern(field);
    batch
        .live()
        .map(|e| match e.get(key) {
            Some(Value::Str(s)) | Some(Value::Json(s)) => Some(String::from_utf8_lossy(batch.bytes(s)).into_owned()),
            Some(Value::Int(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        })
        .collect()
}

fn live_lines(batch: &Batch) -> Vec<String> {
    batch
        .live()
        .map(|e| String::from_utf8_lossy(batch.bytes(e.raw())).into_owned())
        .collect()
}

#[test]
fn filter_plugin_keeps_what_the_native_filter_keeps() {
    let keys = KeyTable::new();
    let level = keys.intern("level");
    let status = keys.intern("status");
    let lines = [
        "a error",
        "b info",
        "c warn",
        "d debug",
        "e error",
        "f none",
        "g warning",
        "h ERROR",
    ];
    // Fields: level (a span of the line's first word... the second), status as an int.
    let make = || {
        let mut b = batch(&lines);
        let (mut bufs, events) = b.parts_mut();
        for (i, e) in events.iter_mut().enumerate() {
            let raw = e.raw();
            if i != 5 {
                e.set(level, Value::Str(raw.slice(2, raw.len() - 2)));
            }
            e.set(status, Value::Int(if i % 2 == 0 { 503 } else { 200 }));
        }
        // One value from the arena, as a parser that unescapes would make it.
        let s = bufs.push(b"error");
        events[3].set(level, Value::Str(s));
        b
    };
    let native_cfg: FilterConfig = serde_json::from_value(serde_json::json!({
        "include": { "level": "^(error|warn)$", "status": "^5" },
        "exclude": { "message": "^e " },
    }))
    .unwrap();
    let mut native = native_cfg.build(&keys).unwrap();
    let wasm_cfg = config(
        plugins::FILTER,
        &[
            ("include.level", "^(error|warn)$"),
            ("include.status", "^5"),
            ("exclude.message", "^e "),
        ],
    );
    let mut wasm = build(&wasm_cfg, &keys);
    let (mut a, mut b) = (make(), make());
    native.process(&mut a);
    wasm.process(&mut b);
    assert_eq!(live_lines(&b), live_lines(&a));
    // "a error" (503), "c warn" (503); "d debug" has level from the arena = error but 200;
    // "e error" excluded; "f none" has no level; "h ERROR" is not lower case.
    assert_eq!(live_lines(&b), ["a error", "c warn"]);
    assert_eq!(wasm.take_failures(), 0);
}

/// The plugin remembers its answers for short values (64 of them, by hash): many distinct
/// values, of every length around the 16 bytes it remembers, in batches after batches, get
/// the native filter's answers all the same.
#[test]
fn filter_plugin_answers_like_the_native_filter_for_many_distinct_values() {
    let keys = KeyTable::new();
    let level = keys.intern("level");
    let pattern = "^(error|warn|x.*7)$";
    let values: Vec<String> = (0..300)
        .map(|i| match i % 5 {
            0 => "error".to_string(),
            1 => "warn".to_string(),
            _ => "x".repeat(i % 23) + &i.to_string(),
        })
        .collect();
    let native_cfg: FilterConfig =
        serde_json::from_value(serde_json::json!({ "include": { "level": pattern } })).unwrap();
    let mut native = native_cfg.build(&keys).unwrap();
    let mut wasm = build(&config(plugins::FILTER, &[("include.level", pattern)]), &keys);
    for round in 0..4 {
        // Each round in another order, so values meet others in the remembered sets.
        let lines: Vec<&str> = (0..values.len())
            .map(|i| values[(i * (2 * round + 1) + round) % values.len()].as_str())
            .collect();
        let make = || {
            let mut b = batch(&lines);
            for e in b.parts_mut().1 {
                let raw = e.raw();
                e.set(level, Value::Str(raw));
            }
            b
        };
        let (mut a, mut b) = (make(), make());
        native.process(&mut a);
        wasm.process(&mut b);
        let kept = live_lines(&a);
        assert!(kept.len() > values.len() / 3, "round {round}: {}", kept.len());
        assert_eq!(live_lines(&b), kept, "round {round}");
    }
    assert_eq!(wasm.take_failures(), 0);
}

#[test]
fn filter_plugin_rejects_a_bad_config_at_build() {
    let keys = KeyTable::new();
    let err = config(plugins::FILTER, &[("include.level", "(")])
        .build(&keys)
        .unwrap_err();
    assert!(
        err.to_string().contains("rejected its config") && err.to_string().contains("bad pattern"),
        "{err}"
    );
    let err = config(plugins::FILTER, &[("levle", "x")]).build(&keys).unwrap_err();
    assert!(err.to_string().contains("unknown config key `levle`"), "{err}");
}

#[test]
fn redactor_replaces_emails_valid_cards_and_ip_addresses() {
    let keys = KeyTable::new();
    let c = config(plugins::REDACT, &[("count_field", "_redacted")]);
    let mut p = build(&c, &keys);
    let mut b = batch(&[
        "login bob@example.com from 10.1.2.3",
        "card 4111 1111 1111 1111 ok, order 4111111111111112 not a card",
        "v6 2001:db8::8a2e:370:7334 at 10:00:01 and ::1",
        "nothing here 1234",
        "dash 5500-0000-0000-0004, mapped ::ffff:192.168.0.1",
        "999.1.1.1 is no address",
    ]);
    p.process(&mut b);
    assert_eq!(
        live_texts(&b, &keys, "message"),
        [
            Some("login [EMAIL] from [IPV4]".to_string()),
            Some("card [CARD] ok, order 4111111111111112 not a card".to_string()),
            Some("v6 [IPV6] at 10:00:01 and [IPV6]".to_string()),
            Some("nothing here 1234".to_string()),
            Some("dash [CARD], mapped [IPV6]".to_string()),
            Some("999.1.1.1 is no address".to_string()),
        ]
    );
    assert_eq!(
        live_texts(&b, &keys, "_redacted"),
        [
            Some("2".into()),
            Some("1".into()),
            Some("2".into()),
            None,
            Some("2".into()),
            None
        ]
    );
    // The raw line is untouched: only the field changed.
    assert_eq!(live_lines(&b)[0], "login bob@example.com from 10.1.2.3");
}

#[test]
fn redactor_kinds_can_be_turned_off_and_fields_chosen() {
    let keys = KeyTable::new();
    let user = keys.intern("user");
    let c = config(plugins::REDACT, &[("fields", "user"), ("ips", "false")]);
    let mut p = build(&c, &keys);
    let mut b = batch(&["mail a@b.io from 1.2.3.4"]);
    let (mut bufs, events) = b.parts_mut();
    let s = bufs.push(b"c@d.org at 5.6.7.8");
    events[0].set(user, Value::Str(s));
    p.process(&mut b);
    assert_eq!(live_texts(&b, &keys, "user"), [Some("[EMAIL] at 5.6.7.8".to_string())]);
    assert_eq!(
        live_texts(&b, &keys, "message"),
        [Some("mail a@b.io from 1.2.3.4".to_string())]
    );
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[test]
fn enricher_adds_fields_hashes_samples_and_routes() {
    let keys = KeyTable::new();
    let lines: Vec<String> = (0..400)
        .map(|i| format!("user{} {}", i % 50, if i % 7 == 0 { "ERROR x" } else { "ok" }))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let c = config(
        plugins::ENRICH,
        &[
            ("add.env", "prod"),
            ("add.team", "payments"),
            ("hash_into", "_hash"),
            ("sample", "0.5"),
            ("buckets", "4"),
            ("route.errors", "ERROR"),
            ("route_default", "main"),
        ],
    );
    let mut p = build(&c, &keys);
    let mut b = batch(&refs);
    p.process(&mut b);
    let kept: Vec<&String> = lines
        .iter()
        .filter(|l| fnv1a(l.as_bytes()) % 1_000_000 < 500_000)
        .collect();
    assert!(
        kept.len() > 150 && kept.len() < 250,
        "about half is kept: {}",
        kept.len()
    );
    assert_eq!(live_lines(&b), kept.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let hashes = live_texts(&b, &keys, "_hash");
    let buckets = live_texts(&b, &keys, "_bucket");
    let routes = live_texts(&b, &keys, "route");
    for (i, line) in kept.iter().enumerate() {
        let h = fnv1a(line.as_bytes());
        assert_eq!(hashes[i].as_deref(), Some(format!("{h:016x}").as_str()));
        assert_eq!(buckets[i].as_deref(), Some((h % 4).to_string().as_str()));
        let want = if line.contains("ERROR") { "errors" } else { "main" };
        assert_eq!(routes[i].as_deref(), Some(want));
    }
    assert!(
        live_texts(&b, &keys, "env")
            .iter()
            .all(|v| v.as_deref() == Some("prod"))
    );
    assert!(
        live_texts(&b, &keys, "team")
            .iter()
            .all(|v| v.as_deref() == Some("payments"))
    );
    // Stable: a second run over the same lines makes the same choice.
    let mut again = batch(&refs);
    p.process(&mut again);
    assert_eq!(live_lines(&again), live_lines(&b));
}

#[test]
fn an_infinite_loop_is_stopped_within_twice_its_deadline_and_the_pipeline_goes_on() {
    let keys = KeyTable::new();
    let mut c = config(plugins::SPIN, &[]);
    c.timeout = Dur(Duration::from_millis(100));
    let mut p = build(&c, &keys);
    let mut b = batch(&["one", "loop forever", "three"]);
    let start = Instant::now();
    p.process(&mut b);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(100),
        "stopped at the deadline, not before: {took:?}"
    );
    assert!(
        took < Duration::from_millis(200),
        "stopped within twice the deadline: {took:?}"
    );
    // on_error: pass (the default): the batch goes on unchanged, every event counted.
    assert_eq!(live_lines(&b), ["one", "loop forever", "three"]);
    assert_eq!(live_texts(&b, &keys, "spin_ok"), [None, None, None]);
    assert_eq!(p.take_failures(), 3);
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Deadline), 1);
    // The next batch runs on a new instance.
    let mut next = batch(&["four", "five"]);
    p.process(&mut next);
    assert_eq!(
        live_texts(&next, &keys, "spin_ok"),
        [Some("true".into()), Some("true".into())]
    );
    assert_eq!(p.take_failures(), 0);
    assert_eq!(
        p.plugin().stats().instances.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn fuel_stops_an_infinite_loop_too() {
    let keys = KeyTable::new();
    let mut c = config(plugins::SPIN, &[]);
    c.fuel = Some(50_000_000);
    c.timeout = Dur(Duration::from_secs(30));
    c.on_error = OnError::Drop;
    let mut p = build(&c, &keys);
    let mut b = batch(&["loop"]);
    let start = Instant::now();
    p.process(&mut b);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "fuel, not the deadline, stopped it"
    );
    assert_eq!(live_lines(&b), Vec::<String>::new(), "on_error: drop");
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Fuel), 1);
    let mut next = batch(&["fine"]);
    p.process(&mut next);
    assert_eq!(live_texts(&next, &keys, "spin_ok"), [Some("true".into())]);
}

#[test]
fn an_allocation_bomb_is_stopped_at_the_memory_cap() {
    let keys = KeyTable::new();
    let mut c = config(plugins::ALLOC_BOMB, &[]);
    c.memory = ByteSize(16 << 20);
    let mut p = build(&c, &keys);
    let mut b = batch(&["tick", "bomb"]);
    p.process(&mut b);
    assert_eq!(live_lines(&b), ["tick", "bomb"], "on_error: pass");
    assert_eq!(p.take_failures(), 2);
    assert_eq!(p.plugin().stats().failures_of(FailureKind::Memory), 1);
    let mut next = batch(&["tock"]);
    p.process(&mut next);
    assert_eq!(live_texts(&next, &keys, "bomb_ok"), [Some("true".into())]);
}

#[test]
fn a_trap_follows_each_on_error_policy() {
    let keys = KeyTable::new();
    let error = keys.intern("_error");
    for policy in [OnError::Pass, OnError::Drop, OnError::DeadLetter] {
        let mut c = config(plugins::TRAP, &[]);
        c.on_error = policy;
        let mut p = build(&c, &keys);
        let mut b = batch(&["a", "it's a trap", "c"]);
        b.parts_mut().1[0].mark_dropped(); // dropped earlier: never crosses, never counted
        p.process(&mut b);
        assert_eq!(p.take_failures(), 2, "{policy:?}");
        assert_eq!(p.plugin().stats().failures_of(FailureKind::Trap), 1);
        match policy {
            OnError::Pass => assert_eq!(live_lines(&b), ["it's a trap", "c"]),
            OnError::Drop => assert!(live_lines(&b).is_empty()),
            OnError::DeadLetter => {
                assert!(live_lines(&b).is_empty());
                let dead: Vec<_> = b.dead_letters().collect();
                assert_eq!(dead.len(), 2);
                let Some(Value::Str(s)) = dead[0].get(error) else {
                    panic!("no _error")
                };
                let why = String::from_utf8_lossy(b.bytes(s));
                assert!(why.starts_with("wasm plugin hostile_trap: trap: "), "{why}");
            }
        }
        // And the pipeline goes on with a new instance.
        let mut next = batch(&["d"]);
        p.process(&mut next);
        assert_eq!(live_texts(&next, &keys, "trap_ok"), [Some("true".into())], "{policy:?}");
        assert_eq!(
            live_texts(&next, &keys, "trap_batches"),
            [Some("1".into())],
            "a fresh instance"
        );
    }
}

#[test]
fn plugin_errors_follow_the_contract() {
    let keys = KeyTable::new();
    let mut c = config(plugins::TRAP, &[("retry_fails", "1")]);
    c.on_error = OnError::DeadLetter;
    let mut p = build(&c, &keys);
    // Retryable once, then it works: the retry is invisible but counted.
    let mut b = batch(&["retry me"]);
    p.process(&mut b);
    assert_eq!(live_texts(&b, &keys, "trap_ok"), [Some("true".into())]);
    assert_eq!(p.take_failures(), 0);
    assert_eq!(p.plugin().stats().retries.load(std::sync::atomic::Ordering::Relaxed), 1);
    // drop-batch: dropped whatever on_error says.
    let mut b = batch(&["drop-batch", "x"]);
    p.process(&mut b);
    assert!(live_lines(&b).is_empty() && b.dead_letters().count() == 0);
    assert_eq!(p.take_failures(), 2);
    // fatal: on_error (dead_letter), and a new instance next time.
    let mut b = batch(&["fatal"]);
    p.process(&mut b);
    assert_eq!(b.dead_letters().count(), 1);
    let mut b = batch(&["ok"]);
    p.process(&mut b);
    assert_eq!(
        live_texts(&b, &keys, "trap_batches"),
        [Some("1".into())],
        "re-created after fatal"
    );
    // Edits that break the layout: nothing applied, on_error.
    let mut b = batch(&["bad-edits", "y"]);
    p.process(&mut b);
    assert_eq!(b.dead_letters().count(), 2);
    assert_eq!(p.plugin().stats().failures_of(FailureKind::BadEdits), 1);
    // Retryable forever: given up after `retries`.
    let mut c = config(plugins::TRAP, &[]);
    c.retries = 3;
    let mut p = build(&c, &keys);
    let mut b = batch(&["retry"]);
    p.process(&mut b);
    assert_eq!(live_lines(&b), ["retry"], "on_error: pass");
    let stats = p.plugin().stats();
    assert_eq!(stats.failures_of(FailureKind::Retryable), 1);
    assert_eq!(stats.calls.load(std::sync::atomic::Ordering::Relaxed), 4);
}

#[test]
fn a_plugin_that_rejects_its_config_fails_the_build() {
    let keys = KeyTable::new();
    let err = config(plugins::TRAP, &[("init", "fatal")]).build(&keys).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("hostile_trap rejected its config: fatal: asked to reject"),
        "{msg}"
    );
}

#[test]
fn files_environment_clock_and_network_are_denied() {
    let keys = KeyTable::new();
    // SAFETY: set before any thread of this test reads the environment; the plugin must
    // not see it either way.
    unsafe { std::env::set_var("WEIR_SECRET_FOR_TEST", "s3cret") };
    let dir = tempfile_dir();
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    for path in ["/etc/passwd", secret.to_str().unwrap(), "secret.txt"] {
        let c = config(plugins::SNEAKY, &[("path", path)]);
        let mut p = build(&c, &keys);
        let mut b = batch(&["x"]);
        p.process(&mut b);
        assert_eq!(p.take_failures(), 0);
        let get = |f: &str| live_texts(&b, &keys, f)[0].clone().unwrap_or_default();
        assert!(get("file").starts_with("denied"), "file {path}: {}", get("file"));
        assert!(
            get("dir").starts_with("denied") || get("dir") == "listed 0 entries",
            "{}",
            get("dir")
        );
        assert_eq!(get("env"), "0");
        assert_eq!(get("home"), "unset");
        assert_eq!(get("clock"), "0");
        assert!(get("net").starts_with("denied"), "{}", get("net"));
    }
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-wasm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn workers_share_one_compiled_plugin_and_keep_their_instances() {
    let keys = KeyTable::new();
    let c = config(plugins::TRAP, &[]);
    let mut a = build(&c, &keys);
    let mut b = build(&c, &keys);
    assert!(Arc::ptr_eq(a.plugin(), b.plugin()), "compiled once");
    for n in 1..=3 {
        let mut x = batch(&["x"]);
        a.process(&mut x);
        assert_eq!(
            live_texts(&x, &keys, "trap_batches"),
            [Some(n.to_string())],
            "state kept"
        );
    }
    let mut y = batch(&["y"]);
    b.process(&mut y);
    assert_eq!(
        live_texts(&y, &keys, "trap_batches"),
        [Some("1".into())],
        "one instance per worker"
    );
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused_with_its_path() {
    let keys = KeyTable::new();
    let dir = tempfile_dir();
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let err = config(bogus.to_str().unwrap(), &[])
        .build(&keys)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bogus.wasm is not a weir:plugin processor component (0.2.0 or 0.1.0)"),
        "{err}"
    );
    let err = config("/nonexistent/x.wasm", &[]).build(&keys).unwrap_err().to_string();
    assert!(err.contains("cannot read plugin /nonexistent/x.wasm"), "{err}");
}

#[test]
fn only_the_listed_fields_cross_and_the_others_stay() {
    let keys = KeyTable::new();
    let level = keys.intern("level");
    let mut c = config(plugins::REDACT, &[("fields", "message,level")]);
    c.fields = Some(vec!["level".into()]);
    let mut p = build(&c, &keys);
    let mut b = batch(&["mail a@b.io"]);
    let (mut bufs, events) = b.parts_mut();
    let s = bufs.push(b"x@y.io");
    events[0].set(level, Value::Str(s));
    p.process(&mut b);
    // `message` did not cross, so it is not redacted; `level` did.
    assert_eq!(live_texts(&b, &keys, "message"), [Some("mail a@b.io".to_string())]);
    assert_eq!(live_texts(&b, &keys, "level"), [Some("[EMAIL]".to_string())]);
    assert_eq!(b.events()[0].fields().len(), 2, "message kept, level replaced in place");
}
