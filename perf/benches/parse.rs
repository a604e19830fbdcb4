//! `parse_regex` over a generated nginx corpus with each engine forced: the field scanner,
//! the one-pass DFA and `meta::Regex`. Split + parse, no encoding, no I/O. Each iteration
//! checks that every line parsed and that the last field is set, so a broken engine
//! cannot report a fast time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions, for_each_batch};
use weir_core::model::{KeyTable, Value};
use weir_core::parse::OnFailure;
use weir_core::parse::regex::{EngineChoice, ParseRegexConfig};
use weir_core::pipeline::Processor;
use weir_perf::corpus::nginx;

/// The pattern of `testdata/cases/parse_regex/nginx_combined.yaml`.
const NGINX: &str = r#"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<proto>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)""#;

fn parse_regex(c: &mut Criterion) {
    let corpus = nginx(32 << 20, 1);
    let opts = LineOptions::default();
    let cfg = ParseRegexConfig {
        field: "message".into(),
        pattern: NGINX.into(),
        keys: None,
        keep_source: false,
        on_failure: OnFailure::Keep,
        error_field: None,
    };
    let mut group = c.benchmark_group("parse_regex_nginx_32MiB");
    group.throughput(Throughput::Bytes(corpus.data.len() as u64));
    group.sample_size(10);

    for (name, choice) in [
        ("scanner", EngineChoice::Scanner),
        ("onepass", EngineChoice::OnePass),
        ("meta", EngineChoice::Meta),
    ] {
        let keys = KeyTable::new();
        let mut parser = cfg.with_engine(&keys, choice).unwrap();
        assert_eq!(parser.parser().engine_name(), name);
        let agent = keys.get("agent").unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut events = 0;
                let mut parsed = 0;
                let mut batches = 0;
                for_each_batch(&corpus.data[..], DEFAULT_CHUNK_BYTES, &opts, |batch| {
                    parser.process(batch);
                    events += batch.len() as u64;
                    batches += 1;
                    let last = &batch.events()[batch.len() - 1];
                    parsed += u64::from(matches!(last.get(agent), Some(Value::Str(_))));
                })
                .unwrap();
                assert_eq!(parser.take_failures(), 0);
                assert_eq!(events, corpus.lines);
                assert_eq!(parsed, batches, "the last line of each batch has its fields");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_regex);
criterion_main!(benches);
