//! Split + encode over a generated nginx corpus: the engine alone, no I/O, buffers
//! recycled as in the agent. Each iteration checks its counts, so a broken splitter or
//! encoder cannot report a fast time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::encode::{Encoder, JsonEncoder, RawEncoder};
use weir_core::line::{DEFAULT_CHUNK_BYTES, LineOptions, for_each_batch};
use weir_core::model::KeyTable;
use weir_perf::corpus::nginx;

fn split_and_encode(c: &mut Criterion) {
    let corpus = nginx(32 << 20, 1);
    let opts = LineOptions::default();
    let keys = KeyTable::new();
    let mut group = c.benchmark_group("nginx_32MiB");
    group.throughput(Throughput::Bytes(corpus.data.len() as u64));
    group.sample_size(20);

    group.bench_function("split", |b| {
        b.iter(|| {
            let mut events = 0;
            let stats = for_each_batch(&corpus.data[..], DEFAULT_CHUNK_BYTES, &opts, |batch| {
                events += batch.len() as u64
            })
            .unwrap();
            assert_eq!((stats.events, events), (corpus.lines, corpus.lines));
        })
    });

    let mut out = Vec::with_capacity(4 << 20);
    let mut json = JsonEncoder::new(keys.clone());
    group.bench_function("split_json_lines", |b| {
        b.iter(|| {
            let mut lines = 0;
            for_each_batch(&corpus.data[..], DEFAULT_CHUNK_BYTES, &opts, |batch| {
                out.clear();
                json.encode(batch, &mut out);
                lines += memchr::memchr_iter(b'\n', &out).count() as u64;
            })
            .unwrap();
            assert_eq!(lines, corpus.lines);
        })
    });

    group.bench_function("split_raw", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for_each_batch(&corpus.data[..], DEFAULT_CHUNK_BYTES, &opts, |batch| {
                out.clear();
                RawEncoder.encode(batch, &mut out);
                bytes += out.len();
            })
            .unwrap();
            assert_eq!(bytes, corpus.data.len());
        })
    });
    group.finish();
}

criterion_group!(benches, split_and_encode);
criterion_main!(benches);
