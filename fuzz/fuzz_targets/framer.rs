//! The framer (`engine/core/src/frame.rs`, `multiline.rs`): plain lines, CRI and Docker
//! container lines, every multiline preset and custom start/continue/end rules, with
//! `max_lines`, `max_bytes`, `unmatched`, `max_line_bytes` and `skip_empty_lines`, fed
//! through the `LineChunker` at arbitrary read sizes, chunk sizes and flushes. The records
//! (bytes, stream, time, flags) and the counters must not depend on how the bytes
//! arrived, and for plain lines every byte of the input must come out, in order.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_core::frame::{Format, FrameStats, Framed, Framer};
use weir_core::line::{LineChunker, LineOptions};
use weir_core::model::Buf;
use weir_core::multiline::{MultilineConfig, Preset, Unmatched};
use weir_core::units::ByteSize;

#[derive(Arbitrary, Debug)]
enum Line {
    Raw(Vec<u8>),
    Template(u8),
    Cri {
        time: u8,
        stderr: bool,
        partial: bool,
        content: Vec<u8>,
    },
    Docker {
        time: u8,
        stderr: bool,
        partial: bool,
        content: String,
    },
}

#[derive(Arbitrary, Debug)]
struct Multiline {
    preset: Option<u8>,
    start: Option<u8>,
    cont: Option<u8>,
    end: Option<u8>,
    max_lines: u8,
    max_bytes: u16,
    discard: bool,
}

#[derive(Arbitrary, Debug)]
struct Case {
    format: u8,
    multiline: Option<Multiline>,
    max_line_bytes: u16,
    skip_empty: bool,
    chunk_bytes: u16,
    /// Read sizes (cycled) and, with the top bit, a flush after the read.
    reads: Vec<u16>,
    lines: Vec<(Line, u8)>,
}

const TEMPLATES: [&str; 14] = [
    "java.lang.IllegalStateException: boom",
    "\tat com.example.App.run(App.java:42)",
    "\t... 3 more",
    "Caused by: java.io.IOException: disk",
    "Traceback (most recent call last):",
    "  File \"app.py\", line 3, in <module>",
    "ValueError: bad value",
    "panic: runtime error: index out of range",
    "goroutine 1 [running]:",
    "2026-12-06 10:00:00 INFO started",
    "  continued here",
    "END;",
    "",
    "from app.rb:3:in `run'",
];
const TIMES: [&str; 5] = [
    "2026-12-06T10:00:00.123456789Z",
    "2026-12-06T10:00:01+01:00",
    "not-a-time",
    "",
    "1969-12-31T23:59:59.5Z",
];
const STARTS: [&str; 4] = [r"\d{4}-", r"\S", r"\[", "a"];
const CONTINUES: [&str; 4] = [r"\s", r"\t", " ", r"\.\.\."];
const ENDS: [&str; 3] = [";$", "END", r"\d$"];
const ENDINGS: [&[u8]; 3] = [b"\n", b"\r\n", b""];

fn render(lines: &[(Line, u8)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (line, ending) in lines {
        match line {
            Line::Raw(bytes) => text.extend_from_slice(bytes),
            Line::Template(i) => text.extend_from_slice(TEMPLATES[*i as usize % TEMPLATES.len()].as_bytes()),
            Line::Cri {
                time,
                stderr,
                partial,
                content,
            } => {
                text.extend_from_slice(TIMES[*time as usize % TIMES.len()].as_bytes());
                text.extend_from_slice(if *stderr { b" stderr " } else { b" stdout " });
                text.extend_from_slice(if *partial { b"P " } else { b"F " });
                text.extend(content.iter().filter(|&&b| b != b'\n'));
            }
            Line::Docker {
                time,
                stderr,
                partial,
                content,
            } => {
                let log = if *partial {
                    content.clone()
                } else {
                    format!("{content}\n")
                };
                let line = serde_json::json!({
                    "log": log,
                    "stream": if *stderr { "stderr" } else { "stdout" },
                    "time": TIMES[*time as usize % TIMES.len()],
                });
                text.extend_from_slice(line.to_string().as_bytes());
            }
        }
        text.extend_from_slice(ENDINGS[*ending as usize % ENDINGS.len()]);
    }
    text
}

/// One record, owned: bytes, stream, time, cut, error.
type Rec = (Vec<u8>, u8, Option<i64>, bool, Option<&'static str>);

fn collect(out: &Framed, records: &mut Vec<Rec>) {
    for r in &out.records {
        let buf = match r.message.buf() {
            Buf::Chunk => &out.data,
            Buf::Arena => &out.arena,
        };
        let bytes = buf[r.message.start()..r.message.end()].to_vec();
        records.push((bytes, r.stream as u8, r.timestamp, r.cut, r.error));
    }
}

fn frame(
    text: &[u8],
    framer: &mut Framer,
    chunk_bytes: usize,
    max_line_bytes: usize,
    reads: &[u16],
) -> (Vec<Rec>, FrameStats, u64) {
    let mut chunker = LineChunker::new(chunk_bytes, max_line_bytes, 0);
    let mut out = Framed::default();
    let mut records = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < text.len() {
        let read = reads.get(i % reads.len().max(1)).copied().unwrap_or(u16::MAX);
        i += 1;
        let flush = read & 0x8000 != 0;
        let want = usize::from(read & 0x7fff).max(1);
        let spare = chunker.spare();
        let n = want.min(spare.len()).min(text.len() - pos);
        spare[..n].copy_from_slice(&text[pos..pos + n]);
        chunker.commit(n);
        pos += n;
        while let Some(chunk) = chunker.next_chunk(flush, false) {
            framer.frame(chunk, &mut out);
            collect(&out, &mut records);
        }
    }
    while let Some(chunk) = chunker.next_chunk(true, true) {
        framer.frame(chunk, &mut out);
        collect(&out, &mut records);
    }
    framer.finish(&mut out);
    collect(&out, &mut records);
    assert_eq!(framer.held_from(), None, "nothing is held after finish");
    (records, framer.stats(), chunker.lines_cut())
}

thread_local! {
    static RULES: std::cell::RefCell<std::collections::HashMap<String, Option<weir_core::multiline::Rules>>> =
        Default::default();
}

fn without_line_ends(bytes: impl IntoIterator<Item = u8>) -> Vec<u8> {
    bytes.into_iter().filter(|&b| b != b'\n' && b != b'\r').collect()
}

fuzz_target!(|case: Case| {
    let format = [Format::Raw, Format::Cri, Format::Docker][case.format as usize % 3];
    let mut discard = false;
    let rules = match &case.multiline {
        None => None,
        Some(m) => {
            let pick = |i: Option<u8>, list: &[&str]| i.map(|i| list[i as usize % list.len()].to_string());
            discard = m.discard;
            let config = MultilineConfig {
                start: pick(m.start, &STARTS),
                continue_: pick(m.cont, &CONTINUES),
                end: pick(m.end, &ENDS),
                preset: m
                    .preset
                    .map(|p| [Preset::Java, Preset::Python, Preset::Go, Preset::Ruby][p as usize % 4]),
                max_lines: 1,
                max_bytes: ByteSize(1),
                unmatched: Unmatched::SingleLine,
            };
            // Compiling the patterns is most of an input's time: once per distinct set (the
            // limits and `unmatched` are plain fields of the rules, set after).
            let built = RULES.with(|cache| {
                cache
                    .borrow_mut()
                    .entry(format!("{config:?}"))
                    .or_insert_with(|| config.build().ok())
                    .clone()
            });
            let built = built.map(|mut rules| {
                rules.max_lines = u32::from(m.max_lines % 8) + 1;
                rules.max_bytes = usize::from(m.max_bytes % 512) + 1;
                rules.unmatched = if m.discard {
                    Unmatched::Discard
                } else {
                    Unmatched::SingleLine
                };
                rules
            });
            match built {
                Some(rules) => Some(rules),
                None => return, // e.g. a preset with custom rules: refused at build
            }
        }
    };
    let opts = LineOptions {
        max_line_bytes: usize::from(case.max_line_bytes % 2048) + 1,
        skip_empty_lines: case.skip_empty,
    };
    let text = render(&case.lines);

    let mut whole = Framer::new(format, rules.clone(), opts);
    let (expected, stats, cut) = frame(&text, &mut whole, 1 << 20, opts.max_line_bytes, &[]);
    let mut pieces = Framer::new(format, rules.clone(), opts);
    let chunk_bytes = usize::from(case.chunk_bytes % 4096) + 1;
    let (got, got_stats, got_cut) = frame(&text, &mut pieces, chunk_bytes, opts.max_line_bytes, &case.reads);
    assert_eq!(got.len(), expected.len(), "record count at chunk_bytes {chunk_bytes}");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "record {i} at chunk_bytes {chunk_bytes}");
    }
    // A long line is cut by the chunker (no newline in reach) or by the framer's line
    // splitter (a newline in the chunk): which one depends on the reads, the sum must not.
    let total = |s: FrameStats, chunker_cut: u64| FrameStats {
        lines_cut: s.lines_cut + chunker_cut,
        ..s
    };
    assert_eq!(
        total(got_stats, got_cut),
        total(stats, cut),
        "stats at chunk_bytes {chunk_bytes}"
    );
    assert_eq!(stats.records, expected.len() as u64, "records counted");

    if format == Format::Raw && !discard {
        // Nothing lost, nothing added: the records hold every byte of the input but line
        // terminators, in order (empty lines skipped hold none).
        let out = without_line_ends(expected.iter().flat_map(|r| r.0.iter().copied()));
        assert_eq!(out, without_line_ends(text.iter().copied()), "bytes kept");
    }
});
