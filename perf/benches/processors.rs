//! One criterion bench per native processor and per framing mode, over generated corpora:
//! the engine alone (no I/O), buffers recycled as in the agent, `Throughput::Bytes` of the
//! input. Every iteration checks its answer (events out, failures), so a broken processor
//! fails the bench instead of reporting a great number.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::frame::{FrameKeys, Framed, Framer, fill_batch};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineChunker, LineOptions, for_each_batch};
use weir_core::model::{Batch, KeyTable, Origin};
use weir_core::parse::delimiter::ParseDelimiterConfig;
use weir_core::parse::json::ParseJsonConfig;
use weir_core::parse::kv::ParseKvConfig;
use weir_core::parse::time::ParseTimestampConfig;
use weir_core::pipeline::Processor;
use weir_core::pool::BufferPool;
use weir_core::processors::filter::FilterConfig;
use weir_core::processors::mask::MaskConfig;
use weir_core::processors::multiline::MultilineProcessorConfig;
use weir_core::processors::{AddFieldsConfig, DropFieldsConfig, RenameFieldsConfig};
use weir_perf::corpus::{self, Corpus, Rng};

const SIZE: usize = 16 << 20;

fn cfg<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
    serde_json::from_value(json).expect("bench config")
}

/// Runs `procs` over `corpus`; returns (live events out, failures).
fn run(corpus: &Corpus, procs: &mut [Box<dyn Processor>]) -> (u64, u64) {
    let (mut live, mut failures) = (0, 0);
    for_each_batch(
        &corpus.data[..],
        DEFAULT_CHUNK_BYTES,
        &LineOptions::default(),
        |batch| {
            for p in procs.iter_mut() {
                p.process(batch);
                failures += p.take_failures();
            }
            live += batch.live().count() as u64;
        },
    )
    .expect("reading from memory");
    (live, failures)
}

/// A bench of `procs` over `corpus` expecting `want` events out and no failure.
fn bench(c: &mut Criterion, name: &str, corpus: &Corpus, mut procs: Vec<Box<dyn Processor>>, want: u64) {
    let mut group = c.benchmark_group("processors");
    group.throughput(Throughput::Bytes(corpus.data.len() as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let (out, failures) = run(corpus, &mut procs);
            assert_eq!((out, failures), (want, 0), "{name}: events out, failures");
        })
    });
    group.finish();
}

/// logfmt lines (`weir_perf` has no logfmt corpus; this one is made here, seeded).
fn logfmt(size: usize) -> Corpus {
    let mut rng = Rng::new(5);
    let mut data = Vec::with_capacity(size);
    let mut lines = 0;
    while data.len() + 200 < size {
        let line = format!(
            "ts=2026-11-25T10:00:{:02}Z level={} msg=\"request {} done\" user=u{} status={} duration_ms={} cached\n",
            rng.below(60),
            rng.pick(&["info", "warn", "error"]),
            rng.below(100_000),
            rng.below(10_000),
            rng.pick(&[200, 404, 500]),
            rng.below(5000)
        );
        data.extend_from_slice(line.as_bytes());
        lines += 1;
    }
    Corpus { data, lines }
}

fn count_lines_matching(corpus: &Corpus, needles: &[&str]) -> u64 {
    corpus
        .data
        .split(|&b| b == b'\n')
        .filter(|l| needles.iter().any(|n| l.windows(n.len()).any(|w| w == n.as_bytes())))
        .count() as u64
}

fn processors(c: &mut Criterion) {
    let keys = KeyTable::new();
    let nginx = corpus::nginx(SIZE, 1);
    let json = corpus::json(SIZE, 1);
    let csv = corpus::csv(SIZE, 1);
    let java = corpus::java(SIZE, 1);
    let kv = logfmt(SIZE);
    let k = &keys;
    let boxed = |p: Box<dyn Processor>| p;

    let parse_json = || {
        boxed(Box::new(
            cfg::<ParseJsonConfig>(serde_json::json!({})).build(k).unwrap(),
        ))
    };
    bench(c, "parse_json", &json, vec![parse_json()], json.lines);
    let errors_and_warnings = count_lines_matching(&json, &["\"level\":\"error\"", "\"level\":\"warn\""]);
    let filter = cfg::<FilterConfig>(serde_json::json!({ "include": { "level": "^(error|warn)$" } }));
    bench(
        c,
        "parse_json+filter",
        &json,
        vec![parse_json(), Box::new(filter.build(k).unwrap())],
        errors_and_warnings,
    );
    let ts = cfg::<ParseTimestampConfig>(serde_json::json!({ "field": "time", "format": "rfc3339" }));
    bench(
        c,
        "parse_json+parse_timestamp",
        &json,
        vec![parse_json(), Box::new(ts.build(k).unwrap())],
        json.lines,
    );

    let keys9 = [
        "time",
        "level",
        "user",
        "ip",
        "method",
        "path",
        "status",
        "duration_ms",
        "message",
    ];
    let delimiter = cfg::<ParseDelimiterConfig>(serde_json::json!({ "keys": keys9 }));
    bench(
        c,
        "parse_delimiter",
        &csv,
        vec![Box::new(delimiter.build(k).unwrap())],
        csv.lines,
    );

    let syslog = corpus::syslog(SIZE, 1);
    let decoder = weir_core::parse::syslog::decoder(k, Some("UTC")).unwrap();
    bench(c, "syslog_decoder", &syslog, vec![Box::new(decoder)], syslog.lines);

    let parse_kv = cfg::<ParseKvConfig>(serde_json::json!({}));
    bench(c, "parse_kv", &kv, vec![Box::new(parse_kv.build(k).unwrap())], kv.lines);

    let mask = cfg::<MaskConfig>(serde_json::json!({ "pattern": r"\d+\.\d+\.\d+\.\d+", "hash": "sha256" }));
    bench(
        c,
        "mask_sha256",
        &nginx,
        vec![Box::new(mask.build(k).unwrap())],
        nginx.lines,
    );

    let add = cfg::<AddFieldsConfig>(serde_json::json!({ "fields": { "env": "prod", "shard": 3 } }));
    let rename = cfg::<RenameFieldsConfig>(serde_json::json!({ "fields": { "message": "line" } }));
    let drop = cfg::<DropFieldsConfig>(serde_json::json!({ "fields": ["shard"] }));
    let edits: Vec<Box<dyn Processor>> = vec![
        Box::new(add.build(k).unwrap()),
        Box::new(rename.build(k).unwrap()),
        Box::new(drop.build(k).unwrap()),
    ];
    bench(c, "add+rename+drop_fields", &nginx, edits, nginx.lines);

    let merge = cfg::<MultilineProcessorConfig>(serde_json::json!({ "rules": { "start": r"\d{4}-\d{2}-\d{2} " } }));
    // The processor merges within a batch: the lines of a record cut by a batch boundary
    // that fall in the next batch come out one event each (at most one trace, ~40 lines,
    // per 1 MiB chunk). The input option has no such limit (see the framing benches).
    let mut merge = Box::new(merge.build(k).unwrap()) as Box<dyn Processor>;
    let (out, _) = run(&java, std::slice::from_mut(&mut merge));
    let chunks = (SIZE / DEFAULT_CHUNK_BYTES) as u64 + 1;
    assert!(
        out >= java.lines && out <= java.lines + 40 * chunks,
        "{out} events for {} records",
        java.lines
    );
    bench(c, "multiline_processor", &java, vec![merge], out);
}

/// Framing (reader side) plus building batches from records.
fn frame(c: &mut Criterion, name: &str, corpus: &Corpus, framer: impl Fn() -> Framer, keys: &Arc<KeyTable>) {
    let frame_keys = FrameKeys {
        stream: keys.intern("stream"),
        error: keys.intern("_error"),
    };
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes(corpus.data.len() as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let pool = Arc::new(BufferPool::new(8));
            let mut chunker = LineChunker::with_pool(DEFAULT_CHUNK_BYTES, 1 << 20, 0, pool.clone());
            let mut framer = framer();
            let mut batch = Batch::default();
            let mut events = 0u64;
            let mut take = |framed: Framed, batch: &mut Batch| {
                let (chunk, arena, _) = fill_batch(batch, framed, frame_keys, &[], Origin::default());
                pool.give(chunk);
                pool.give(arena);
                events += batch.len() as u64;
            };
            let mut at = 0;
            loop {
                while let Some(chunk) = chunker.next_chunk(false, false) {
                    let mut framed = Framed::default();
                    framer.frame(chunk, &mut framed);
                    take(framed, &mut batch);
                }
                let spare = chunker.spare();
                let n = spare.len().min(corpus.data.len() - at);
                if n == 0 {
                    break;
                }
                spare[..n].copy_from_slice(&corpus.data[at..at + n]);
                chunker.commit(n);
                at += n;
            }
            while let Some(chunk) = chunker.next_chunk(true, true) {
                let mut framed = Framed::default();
                framer.frame(chunk, &mut framed);
                take(framed, &mut batch);
            }
            let mut framed = Framed::default();
            framer.finish(&mut framed);
            take(framed, &mut batch);
            assert_eq!(events, corpus.lines, "{name}: records");
            assert_eq!(framer.stats().format_errors, 0);
        })
    });
    group.finish();
}

fn framing(c: &mut Criterion) {
    use weir_core::frame::Format;
    use weir_core::multiline::MultilineConfig;
    let keys = KeyTable::new();
    let java = corpus::java(SIZE, 1);
    let rules = cfg::<MultilineConfig>(serde_json::json!({ "start": r"\d{4}-\d{2}-\d{2} " }))
        .build()
        .unwrap();
    frame(
        c,
        "multiline_java",
        &java,
        || Framer::new(Format::Raw, Some(rules.clone()), LineOptions::default()),
        &keys,
    );
    let cri = corpus::cri(SIZE, 1);
    frame(
        c,
        "cri",
        &cri,
        || Framer::new(Format::Cri, None, LineOptions::default()),
        &keys,
    );
    let docker = corpus::docker(SIZE, 1);
    frame(
        c,
        "docker",
        &docker,
        || Framer::new(Format::Docker, None, LineOptions::default()),
        &keys,
    );
}

criterion_group!(benches, processors, framing);
criterion_main!(benches);
