//! The line fixture: every case runs through every read size, chunk size and split point
//! and must give the same events as a plain reference splitter.

use std::io::Read;

use proptest::prelude::*;
use weir_core::line::{LineOptions, read_all};
use weir_core::model::{Key, Value};

/// (line bytes, cut flag) per event, the way a user sees them.
type Lines = Vec<(Vec<u8>, bool)>;

/// The specification: split on `\n`; a `\r` before `\n` belongs to the terminator; a last
/// line without `\n` still counts; longer lines become flagged pieces of `max` bytes.
fn reference(input: &[u8], opts: &LineOptions) -> (Lines, u64) {
    let mut out = Vec::new();
    let mut cut_lines = 0;
    let mut segments: Vec<(&[u8], bool)> = Vec::new();
    let mut rest = input;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        segments.push((line, true));
        rest = &rest[nl + 1..];
    }
    if !rest.is_empty() {
        segments.push((rest, false));
    }
    for (line, _) in segments {
        if line.len() <= opts.max_line_bytes {
            if !(line.is_empty() && opts.skip_empty_lines) {
                out.push((line.to_vec(), false));
            }
        } else {
            cut_lines += 1;
            for piece in line.chunks(opts.max_line_bytes) {
                out.push((piece.to_vec(), true));
            }
        }
    }
    (out, cut_lines)
}

/// Returns at most `step` bytes per read, or splits the input at the given points.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    cuts: Vec<usize>,
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut end = self.pos.saturating_add(self.step).min(self.data.len());
        if let Some(&cut) = self.cuts.iter().find(|&&c| c > self.pos) {
            end = end.min(cut);
        }
        let n = (end - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn run(reader: impl Read, chunk_bytes: usize, opts: &LineOptions) -> (Lines, u64) {
    let (batches, stats) = read_all(reader, chunk_bytes, opts).expect("reading from memory");
    let mut out = Vec::new();
    for batch in &batches {
        for event in batch.events() {
            let Some(Value::Str(span)) = event.get(Key::MESSAGE) else {
                panic!("event without message")
            };
            let cut = event.get(Key::CUT) == Some(Value::Bool(true));
            out.push((batch.bytes(span).to_vec(), cut));
        }
    }
    assert_eq!(stats.events as usize, out.len());
    (out, stats.lines_cut)
}

/// Runs `input` at read sizes 1, 7 and 64 KiB, with several chunk sizes, and at every
/// split point, comparing each run with the reference.
fn check(input: &[u8], opts: LineOptions) {
    let want = reference(input, &opts);
    for step in [1, 7, 64 << 10] {
        for chunk_bytes in [1, 7, 64 << 10] {
            let got = run(
                Trickle {
                    data: input,
                    pos: 0,
                    cuts: vec![],
                    step,
                },
                chunk_bytes,
                &opts,
            );
            assert_eq!(
                got, want,
                "read size {step}, chunk {chunk_bytes}, {opts:?}, input {input:?}"
            );
        }
    }
    for split in 0..=input.len() {
        let reader = Trickle {
            data: input,
            pos: 0,
            cuts: vec![split],
            step: usize::MAX,
        };
        let got = run(reader, 64 << 10, &opts);
        assert_eq!(got, want, "split at {split}, {opts:?}, input {input:?}");
    }
}

fn opts(max_line_bytes: usize, skip_empty_lines: bool) -> LineOptions {
    LineOptions {
        max_line_bytes,
        skip_empty_lines,
    }
}

#[test]
fn crlf_empty_lines_and_no_trailing_newline() {
    let input = b"a\r\nb\n\nc";
    check(input, LineOptions::default());
    check(input, opts(1 << 20, true));
    let (lines, _) = run(&input[..], 1 << 16, &LineOptions::default());
    let texts: Vec<&[u8]> = lines.iter().map(|(l, _)| l.as_slice()).collect();
    assert_eq!(texts, vec![&b"a"[..], b"b", b"", b"c"]);
    let (lines, _) = run(&input[..], 1 << 16, &opts(1 << 20, true));
    assert_eq!(lines.len(), 3);
}

#[test]
fn empty_input_gives_nothing() {
    check(b"", LineOptions::default());
    assert!(run(&b""[..], 7, &LineOptions::default()).0.is_empty());
}

#[test]
fn only_newlines_and_lone_carriage_returns() {
    check(b"\n\n\r\n", LineOptions::default());
    check(b"\r\r\n\ra\rb\r", LineOptions::default());
    check(b"x\r", LineOptions::default());
}

#[test]
fn long_lines_are_cut_flagged_and_counted() {
    let input = b"short\n0123456789abcdef\nok\r\n0123\r\nxxxxxxxxx";
    for max in [1, 3, 4, 5, 8, 16] {
        check(input, opts(max, false));
    }
    let (lines, cut) = run(&input[..], 1 << 16, &opts(4, false));
    assert_eq!(cut, 3, "three lines are longer than 4 bytes");
    assert_eq!(lines[0], (b"shor".to_vec(), true));
    assert_eq!(lines[1], (b"t".to_vec(), true));
    assert_eq!(lines[2], (b"0123".to_vec(), true));
    assert_eq!(lines[5], (b"cdef".to_vec(), true));
    assert_eq!(lines[6], (b"ok".to_vec(), false));
    // Exactly max bytes before `\r\n` is not a cut, however the reads arrive.
    assert_eq!(lines[7], (b"0123".to_vec(), false));
}

#[test]
fn invalid_utf8_passes_through_unchanged() {
    let input = b"\xff\xfe\n\xc3\x28 ok\n";
    check(input, LineOptions::default());
    let (lines, _) = run(&input[..], 7, &LineOptions::default());
    assert_eq!(lines[0].0, b"\xff\xfe");
}

#[test]
fn huge_line_keeps_memory_bounded() {
    // 5 MiB without a newline, 64 KiB cap: the chunker never holds more than its buffer.
    let input = vec![b'z'; 5 << 20];
    let opts = opts(64 << 10, false);
    let (batches, stats) = read_all(&input[..], 1 << 16, &opts).unwrap();
    assert_eq!(stats.lines_cut, 1);
    assert_eq!(stats.events, 80);
    assert!(batches.iter().all(|b| b.chunk().len() <= (64 << 10) + 2));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_matches_the_reference(
        input in proptest::collection::vec(prop::sample::select(vec![b'a', b'b', b'\r', b'\n', 0xff]), 0..40),
        max in 1usize..6,
        skip in any::<bool>(),
    ) {
        check(&input, opts(max, skip));
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300), max in 1usize..64) {
        let _ = run(&input[..], 13, &opts(max, false));
    }
}
