//! A field scanner: `parse_regex`'s cheapest engine, compiled from simple anchored patterns.
//!
//! Log patterns are mostly a chain of "a run of some class, then a literal that cannot be
//! in that class": `^(\S+) \S+ \[([^\]]+)\] "([^"]*)"`. For such a chain there is only one
//! way the regex can match, and it can be found by walking the line once, left to right,
//! with no state but the position: scan the run greedily, compare the literal, go on. The
//! scanner does exactly that, with `memchr` for a class that is "anything but one to
//! three ASCII bytes" (`[^"]`, `[^\]]`, `.`) and a 256-entry table for the others.
//!
//! # What compiles
//!
//! The pattern is parsed into regex-syntax's HIR with the very configuration
//! `meta::Regex` uses ([`regex_automata::util::syntax::parse`]), then turned into a
//! program of steps. It compiles when it starts with `^` and is a sequence of:
//!
//! - literals (any text, matched byte for byte);
//! - a class repeated, `C`, `C+`, `C*`, `C?`, `C{n}`, `C{n,m}`, `C{n,}` (greedy, or lazy
//!   where the count is forced), `C` any class (`\S`, `\d`, `\w`, `[^"]`, `[a-z]`, `.`,
//!   a single character, case-insensitive letters...);
//! - capture groups (named or not) around any of these, nested or around a sequence;
//! - alternations `(A|B|...)` whose branches cannot match empty and start with
//!   pairwise disjoint characters: `(\d+|-)`, `(GET|POST|PUT)`;
//! - an optional group `(?:...)?` whose body cannot match empty and starts with
//!   characters that cannot start what follows it: `(?: (\d+))?$`;
//! - a repeated group `(?:...)*` or `(?:...)+` (greedy, no capture group inside) whose
//!   body cannot match empty and starts with characters that cannot follow it: the
//!   structured data of RFC 5424, `(?:\[(?:[^\]\\]|\\.)*\])+`;
//! - `$` (the end of the input).
//!
//! Each choice must be decided by the next character alone (an LL(1) condition, checked
//! at build time against the set of characters that can follow, computed right to left):
//!
//! - a run `C{n,m}` with `n < m` must be followed by something that cannot start with a
//!   character of `C` and cannot be empty, or by `$`; or by nothing but more runs that
//!   may be empty up to the unanchored end of the pattern (then the greedy choice is the
//!   regex's first choice and nothing after it can fail);
//! - the branches of an alternation start with disjoint characters, so at most one can
//!   match; an optional body, and a repeated body, start with characters that cannot
//!   follow them (so the next character says whether another iteration comes).
//!
//! Everything else is refused, with a reason ([`Scanner::new`]): an unanchored pattern,
//! a run followed by what may continue it (`\S+\S`, `(\w+)(\d+)`), overlapping branches
//! (`(\S+|-)`, `(a|ab)`), a group repeated a bounded number of times (`(?:ab){2}`) or
//! holding a capture group, look-arounds other than `^` at the start and `$`, multi-line
//! anchors, empty branches, an optional or repeated part at the unanchored end. Such
//! patterns use the one-pass DFA or `meta::Regex`.
//!
//! # Why it is exact
//!
//! Under those conditions any match takes the path the scanner takes: a run that stops
//! early leaves a character of `C` where what follows needs a character outside `C`, so
//! the only run that can be followed is the longest (or the forced count); a choice
//! among branches, an optional part or one more iteration of a repeated group is fixed
//! by the next character. So the scanner matches exactly when the regex does, with the
//! same group spans (groups in a branch not taken are absent, as in the regex).
//!
//! Unicode is honoured, not approximated: classes are Unicode-aware in the regex (`\S`
//! matches `é`, `\d` matches `٣`), and they match here the same way. A byte below 0x80 is
//! looked up in the table; a byte from 0x80 up starts a UTF-8 sequence that is decoded
//! strictly (no overlong forms, no surrogates) and looked up in the class's ranges, and
//! an invalid sequence matches no class, as in the regex's UTF-8 automata. The memchr
//! path checks that the bytes it skipped are valid UTF-8 (one `is_ascii` pass in the
//! common case) and stops at the first invalid sequence. The LL(1) sets are sets of
//! characters, not bytes, so the conditions hold for any input, ASCII or not. There is
//! therefore no line the scanner cannot decide and no per-line fallback; the
//! differential tests below compare it with `meta::Regex::search_captures` on random
//! lines with non-ASCII bytes and invalid UTF-8.
//!
//! # Speed
//!
//! Runs are scanned sixteen bytes at a time (a membership mask from the table; its
//! trailing ones are the run), long runs of memchr classes with memchr; literals of up
//! to eight bytes are one masked word compare; a group's slots and the literal after a
//! run are folded into the run's step, so `(\S+) ` is one step.
//!
//! Measured on the 2-core build machine (shared, so +-5%), 32 MiB of generated nginx
//! combined lines, the pattern of `testdata/cases/parse_regex/nginx_combined.yaml`,
//! split + parse (`cargo bench -p weir-perf --bench parse`): scanner 587 MiB/s, one-pass
//! DFA 209 MiB/s, `meta::Regex` 198 MiB/s; the scanner itself is under half of its
//! run (about 1.3 GB/s). End to end (`weir run`, 100 MiB file in, JSON lines out):
//! 244-262 MB per CPU-second with the scanner (3 runs, mean 254), 154-157 with the
//! one-pass DFA; the scanner is then about a fifth of the profile, JSON encoding and
//! I/O most of the rest. The scanner allocates nothing per line.

use regex_automata::util::syntax;
use regex_syntax::hir::{Class as HirClass, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look};

/// The value of a capture slot that was not set.
pub(crate) const NONE: usize = usize::MAX;

/// A compiled field scanner: see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    steps: Box<[Step]>,
    classes: Box<[Class]>,
    /// Capture groups, the implicit group 0 included.
    groups: usize,
}

/// Why a pattern does not compile to a scanner (the regex engines take it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

#[derive(Debug, Clone)]
enum Step {
    /// These bytes, exactly.
    Lit(Box<[u8]>),
    /// These bytes (at most eight), exactly.
    Short(Short),
    /// Between `min` and `max` characters of class `class` (`max == u32::MAX`: no bound),
    /// as many as there are: the build checked that this is the only count that can match.
    /// The start is recorded in slot `open` and the end in slot `close` (a group around
    /// the run; the spare slot past the groups when there is none). Then the literal
    /// `then` (often empty) must follow.
    Run {
        class: u32,
        min: u32,
        max: u32,
        open: u32,
        close: u32,
        then: Short,
    },
    /// Record the position in capture slot `n` (`2 * group` opens, `2 * group + 1` closes).
    Slot(u32),
    /// `$`: the end of the input.
    End,
    /// The branch whose first-character class holds the next character.
    Alt(Box<Alt>),
    /// `body` when the next character is in class `first`, else nothing.
    Opt { first: u32, body: Box<[Step]> },
    /// `body` again and again while the next character is in class `first`; at least
    /// once when `min` is 1. `run`: the class of a one-character branch of `body` (an
    /// alternation), whose characters are skipped as a run before each other iteration.
    Loop {
        first: u32,
        min: u32,
        run: Option<u32>,
        body: Box<[Step]>,
    },
}

#[derive(Debug, Clone)]
struct Alt {
    /// Branch index per ASCII byte (`NO_BRANCH` when none starts with it).
    ascii: [u8; 128],
    /// Class of the first characters of each branch (for non-ASCII characters).
    firsts: Box<[u32]>,
    branches: Box<[Box<[Step]>]>,
}

const NO_BRANCH: u8 = u8::MAX;

/// A literal of at most eight bytes, compared as one word.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Short {
    word: u64,
    mask: u64,
    len: u8,
}

impl Short {
    fn new(lit: &[u8]) -> Option<Short> {
        if lit.len() > 8 {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes[..lit.len()].copy_from_slice(lit);
        Some(Short {
            word: u64::from_le_bytes(bytes),
            mask: u64::MAX.checked_shr(64 - 8 * lit.len() as u32).unwrap_or(0),
            len: lit.len() as u8,
        })
    }

    /// True when the bytes at `at` start with the literal.
    #[inline(always)]
    fn matches(self, hay: &[u8], at: usize) -> bool {
        match hay.get(at..at + 8) {
            Some(block) => {
                let mut word = [0u8; 8];
                word.copy_from_slice(block);
                (u64::from_le_bytes(word) ^ self.word) & self.mask == 0
            }
            None => self.matches_near_end(hay, at),
        }
    }

    /// [`Short::matches`] with fewer than eight bytes from `at`: the line's last eight
    /// bytes, shifted to start at `at` (a slice compare here was a `memcmp` call, 4 % of an
    /// apache-lines run's time).
    #[inline(never)]
    fn matches_near_end(self, hay: &[u8], at: usize) -> bool {
        let len = usize::from(self.len);
        if at + len > hay.len() {
            return false;
        }
        if hay.len() < 8 {
            return hay[at..at + len]
                .iter()
                .zip(self.word.to_le_bytes())
                .all(|(a, b)| *a == b);
        }
        let tail = u64::from_le_bytes(hay[hay.len() - 8..].try_into().expect("eight bytes"));
        // Byte `at` is 1 to 8 bytes into the tail (8: `at` is the end, `len` is 0).
        let shifted = tail.checked_shr(8 * (at + 8 - hay.len()) as u32).unwrap_or(0);
        (shifted ^ self.word) & self.mask == 0
    }
}

/// A run's `open` or `close` before [`fuse`] sets it.
const NO_SLOT: u32 = u32::MAX;

/// Folds the slot steps around a run and the short literal after it into the run
/// (`Slot(a) Run Slot(b) Short`), so the common `(\S+) ` is one step; runs without a
/// group record into `spare`.
fn fuse(steps: Vec<Step>, spare: u32) -> Box<[Step]> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Run {
                class,
                min,
                max,
                open: _,
                close: _,
                then: _,
            } => {
                let open = match out.last() {
                    Some(Step::Slot(n)) => {
                        let n = *n;
                        out.pop();
                        n
                    }
                    _ => spare,
                };
                out.push(Step::Run {
                    class,
                    min,
                    max,
                    open,
                    close: spare,
                    then: Short::default(),
                });
            }
            Step::Slot(n) => match out.last_mut() {
                Some(Step::Run { close, then, .. }) if *close == spare && then.len == 0 => *close = n,
                _ => out.push(Step::Slot(n)),
            },
            Step::Short(short) => match out.last_mut() {
                Some(Step::Run { then, .. }) if then.len == 0 => *then = short,
                _ => out.push(Step::Short(short)),
            },
            Step::Alt(mut alt) => {
                alt.branches = std::mem::take(&mut alt.branches)
                    .into_vec()
                    .into_iter()
                    .map(|b| fuse(b.into_vec(), spare))
                    .collect();
                out.push(Step::Alt(alt));
            }
            Step::Opt { first, body } => out.push(Step::Opt {
                first,
                body: fuse(body.into_vec(), spare),
            }),
            Step::Loop { first, min, run, body } => out.push(Step::Loop {
                first,
                min,
                run,
                body: fuse(body.into_vec(), spare),
            }),
            other => out.push(other),
        }
    }
    out.into_boxed_slice()
}

/// A set of characters, as the scanner tests it.
#[derive(Debug, Clone, PartialEq)]
struct Class {
    /// Membership of each ASCII byte; false from 0x80 up (those start UTF-8 sequences).
    table: [bool; 256],
    /// The table as two nibble tables, for a 16-byte block at once with SSSE3's byte
    /// shuffle: byte `b` is a member when `lo[b & 15] & hi[b >> 4] != 0`. `hi` has one bit
    /// per ASCII row (`1 << row`) and none from 0x80 up; `lo[l]` has the bits of the rows
    /// whose byte `row << 4 | l` is a member.
    lo: [u8; 16],
    hi: [u8; 16],
    /// The class's characters from U+0080 up, sorted ranges.
    wide: Box<[(char, char)]>,
    /// Set when the class is every character but one to three ASCII bytes: runs use memchr.
    except: Option<Except>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Except {
    One(u8),
    Two(u8, u8),
    Three(u8, u8, u8),
}

impl Class {
    fn new(set: &ClassUnicode) -> Class {
        let mut table = [false; 256];
        let mut wide = Vec::new();
        for r in set.ranges() {
            let (start, end) = (u32::from(r.start()), u32::from(r.end()));
            for b in start..=end.min(0x7F) {
                table[b as usize] = true;
            }
            if end >= 0x80 {
                wide.push((r.start().max('\u{80}'), r.end()));
            }
        }
        // Characters from U+0080 up, surrogates excluded.
        let all_wide = 0x10FFFF - 0x80 + 1 - 0x800;
        let wide_count: u32 = wide
            .iter()
            .map(|&(s, e)| {
                let (s, e) = (u32::from(s), u32::from(e));
                let surrogates = if s < 0xD800 && e > 0xDFFF { 0x800 } else { 0 };
                e - s + 1 - surrogates
            })
            .sum();
        let missing: Vec<u8> = (0u8..0x80).filter(|&b| !table[b as usize]).collect();
        let except = match (wide_count == all_wide, &missing[..]) {
            (true, &[a]) => Some(Except::One(a)),
            (true, &[a, b]) => Some(Except::Two(a, b)),
            (true, &[a, b, c]) => Some(Except::Three(a, b, c)),
            _ => None,
        };
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        for row in 0..8 {
            hi[row] = 1 << row;
            for (l, bits) in lo.iter_mut().enumerate() {
                if table[row << 4 | l] {
                    *bits |= 1 << row;
                }
            }
        }
        Class {
            table,
            lo,
            hi,
            wide: wide.into_boxed_slice(),
            except,
        }
    }

    /// True when the non-ASCII character `c` is in the class.
    fn has_wide(&self, c: char) -> bool {
        self.wide
            .binary_search_by(|&(s, e)| {
                if e < c {
                    std::cmp::Ordering::Less
                } else if s > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// The width of the character at `at` if it is in the class.
    #[inline]
    fn width_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let b = *hay.get(at)?;
        if self.table[b as usize] {
            return Some(1);
        }
        self.wide_at(hay, at, b)
    }

    /// The end of the run of `min..=max` characters of the class from `at`, as long as it
    /// goes; `None` when fewer than `min` are there.
    #[inline]
    fn run(&self, hay: &[u8], at: usize, min: u32, max: u32) -> Option<usize> {
        if max == u32::MAX && min <= 1 {
            let end = self.run_unbounded(hay, at);
            return (min == 0 || end > at).then_some(end);
        }
        let mut i = at;
        let mut n = 0u32;
        while n < max {
            let Some(&b) = hay.get(i) else { break };
            if self.table[b as usize] {
                i += 1;
            } else {
                match self.wide_at(hay, i, b) {
                    Some(w) => i += w,
                    None => break,
                }
            }
            n += 1;
        }
        (n >= min).then_some(i)
    }

    /// The width of the character starting with byte `b` (not in the table) at `at`, if
    /// it is in the class.
    #[inline(always)]
    fn wide_at(&self, hay: &[u8], at: usize, b: u8) -> Option<usize> {
        if b < 0x80 || self.wide.is_empty() {
            return None;
        }
        self.wide_char_at(hay, at)
    }

    /// [`Class::wide_at`] past its ASCII test: rare in log lines, so out of the run loop.
    #[cold]
    #[inline(never)]
    fn wide_char_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let (c, w) = decode(hay, at)?;
        self.has_wide(c).then_some(w)
    }

    /// The end of the longest run of the class from `at`.
    #[inline]
    fn run_unbounded(&self, hay: &[u8], at: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3 (checked just above).
            return unsafe { self.run_unbounded_ssse3(hay, at) };
        }
        self.run_unbounded_with(hay, at, |at| self.members_table(hay, at))
    }

    /// [`Class::run_unbounded`] compiled for SSSE3, so that the block test
    /// ([`members_ssse3`]) is inlined into the loop rather than called for each block.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "ssse3")]
    fn run_unbounded_ssse3(&self, hay: &[u8], at: usize) -> usize {
        self.run_unbounded_with(hay, at, |at| self.members_ssse3_at(hay, at))
    }

    /// The block test of [`Class::run_unbounded_ssse3`] at `at`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "ssse3")]
    #[inline]
    fn members_ssse3_at(&self, hay: &[u8], at: usize) -> u32 {
        match hay.get(at..at + 16) {
            Some(block) => members_ssse3(&self.lo, &self.hi, block),
            // Fewer than 16 bytes left (the line's last field): the line's last block,
            // shifted past the bytes before `at`, rather than a byte loop.
            None if hay.len() >= 16 => {
                members_ssse3(&self.lo, &self.hi, &hay[hay.len() - 16..]) >> (at + 16 - hay.len())
            }
            None => self.members_table(hay, at),
        }
    }

    /// The loop of [`Class::run_unbounded`], with `members(at)` to test each block: bit `k`
    /// set when byte `at + k` is an ASCII member of the class, for the (up to) sixteen bytes
    /// from `at`.
    #[inline(always)]
    fn run_unbounded_with(&self, hay: &[u8], at: usize, members: impl Fn(usize) -> u32) -> usize {
        // Sixteen bytes at a time: a mask of their membership says how far the run goes,
        // so there is one branch per block and no byte loop (and, for the short fields of
        // log lines, few mispredicted ones). memchr, for the classes that allow it, takes
        // over after the first block.
        let mut i = at;
        let mut blocks = if self.except.is_some() { 1 } else { usize::MAX };
        loop {
            if blocks == 0
                && let Some(except) = self.except
            {
                return i + self.skip(except, &hay[i..]);
            }
            let ones = members(i).trailing_ones() as usize;
            i += ones;
            if ones == 16 {
                blocks -= 1;
                continue;
            }
            // The run stops at `i`, unless a wide character of the class is there.
            let Some(&b) = hay.get(i) else { return i };
            match self.wide_at(hay, i, b) {
                Some(w) => i += w,
                None => return i,
            }
        }
    }

    /// The block test of the run loop: bit `k` set when byte `at + k` is an ASCII member
    /// of the class, for the (up to) sixteen bytes from `at`. The tests check its SIMD path
    /// against the table.
    #[cfg(test)]
    fn members(&self, hay: &[u8], at: usize) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3 (checked just above).
            return unsafe { self.members_ssse3_at(hay, at) };
        }
        self.members_table(hay, at)
    }

    /// The block test from the byte table, without SIMD.
    #[inline]
    fn members_table(&self, hay: &[u8], at: usize) -> u32 {
        let bit = |k: usize, b: u8| u32::from(self.table[b as usize]) << k;
        match hay.get(at..at + 16) {
            Some(block) => block.iter().enumerate().fold(0, |m, (k, &b)| m | bit(k, b)),
            None => hay[at..].iter().enumerate().fold(0, |m, (k, &b)| m | bit(k, b)),
        }
    }

    /// The length of the run at the start of `rest` of a class that is every character
    /// but the bytes of `except` (`rest` starts on a character boundary).
    fn skip(&self, except: Except, rest: &[u8]) -> usize {
        let stop = match except {
            Except::One(a) => memchr::memchr(a, rest),
            Except::Two(a, b) => memchr::memchr2(a, b, rest),
            Except::Three(a, b, c) => memchr::memchr3(a, b, c, rest),
        }
        .unwrap_or(rest.len());
        let region = &rest[..stop];
        // Every valid character but the excluded bytes is in the class; the run ends at
        // the first invalid UTF-8 sequence, as the regex's would.
        if region.is_ascii() {
            stop
        } else {
            match std::str::from_utf8(region) {
                Ok(_) => stop,
                Err(e) => e.valid_up_to(),
            }
        }
    }
}

/// [`Class::members`] of a 16-byte block with two byte shuffles (see the class's `lo`):
/// about six instructions where the table takes sixteen lookups.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn members_ssse3(lo: &[u8; 16], hi: &[u8; 16], block: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8, _mm_setzero_si128,
        _mm_shuffle_epi8, _mm_srli_epi16,
    };
    assert!(block.len() >= 16);
    // SAFETY: each load reads 16 bytes: the tables are 16 bytes, `block` at least 16.
    let (v, lo, hi) = unsafe {
        (
            _mm_loadu_si128(block.as_ptr() as *const __m128i),
            _mm_loadu_si128(lo.as_ptr() as *const __m128i),
            _mm_loadu_si128(hi.as_ptr() as *const __m128i),
        )
    };
    let nibble = _mm_set1_epi8(0x0f);
    let low = _mm_and_si128(v, nibble);
    let high = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
    let hits = _mm_and_si128(_mm_shuffle_epi8(lo, low), _mm_shuffle_epi8(hi, high));
    let misses = _mm_movemask_epi8(_mm_cmpeq_epi8(hits, _mm_setzero_si128())) as u32;
    !misses & 0xffff
}

/// The character that starts at `at` (a byte from 0x80 up) and its width, or `None` when
/// the bytes there are not valid UTF-8 (overlong forms and surrogates included).
#[cold]
fn decode(hay: &[u8], at: usize) -> Option<(char, usize)> {
    let width = match hay[at] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let text = std::str::from_utf8(hay.get(at..at + width)?).ok()?;
    Some((text.chars().next()?, width))
}

/// What may come after a point of the pattern, for the build-time checks.
#[derive(Debug, Clone)]
struct Follow {
    /// Characters the rest can start with.
    first: ClassUnicode,
    /// The rest can match empty anywhere (the pattern's end is unanchored).
    open: bool,
    /// The rest matches (empty or not) from any position: it cannot fail.
    never_fails: bool,
}

impl Follow {
    fn consuming(first: ClassUnicode) -> Follow {
        Follow {
            first,
            open: false,
            never_fails: false,
        }
    }
}

/// One element of a flattened sequence, before compilation.
enum Item<'h> {
    Lit(&'h [u8]),
    Run {
        class: ClassUnicode,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    Slot(u32),
    End,
    Alt(&'h [Hir]),
    Opt(&'h Hir),
    Loop {
        sub: &'h Hir,
        min: u32,
    },
}

fn disjoint(a: &ClassUnicode, b: &ClassUnicode) -> bool {
    let mut x = a.clone();
    x.intersect(b);
    x.ranges().is_empty()
}

fn first_char(lit: &[u8]) -> Result<char, Refused> {
    match std::str::from_utf8(lit).ok().and_then(|t| t.chars().next()) {
        Some(c) => Ok(c),
        None => refuse("a literal is not UTF-8 text"),
    }
}

fn char_class(c: char) -> ClassUnicode {
    ClassUnicode::new([ClassUnicodeRange::new(c, c)])
}

fn to_class(class: &HirClass) -> Result<ClassUnicode, Refused> {
    match class {
        HirClass::Unicode(u) => Ok(u.clone()),
        HirClass::Bytes(b) => match b.to_unicode_class() {
            Some(u) => Ok(u),
            None => refuse("a byte class matches bytes outside ASCII"),
        },
    }
}

/// The class a repetition repeats, if it repeats one character at a time.
fn repeated_class(hir: &Hir) -> Option<Result<ClassUnicode, Refused>> {
    match hir.kind() {
        HirKind::Class(c) => Some(to_class(c)),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(t) if t.chars().count() == 1 => t.chars().next().map(|c| Ok(char_class(c))),
            _ => None,
        },
        _ => None,
    }
}

fn flatten<'h>(hir: &'h Hir, out: &mut Vec<Item<'h>>) -> Result<(), Refused> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => out.push(Item::Lit(&lit.0)),
        HirKind::Class(c) => out.push(Item::Run {
            class: to_class(c)?,
            min: 1,
            max: Some(1),
            greedy: true,
        }),
        HirKind::Look(Look::End) => out.push(Item::End),
        HirKind::Look(Look::Start) => return refuse("`^` is only allowed at the start"),
        HirKind::Look(look) => return refuse(format!("the assertion {look:?} is not supported")),
        HirKind::Repetition(rep) => match repeated_class(&rep.sub) {
            Some(class) => out.push(Item::Run {
                class: class?,
                min: rep.min,
                max: rep.max,
                greedy: rep.greedy,
            }),
            None if rep.min == 0 && rep.max == Some(1) => out.push(Item::Opt(&rep.sub)),
            None if rep.min <= 1 && rep.max.is_none() && rep.greedy => out.push(Item::Loop {
                sub: &rep.sub,
                min: rep.min,
            }),
            None => return refuse("a repeated group must be `(?:...)*` or `(?:...)+`, greedy"),
        },
        HirKind::Capture(cap) => {
            out.push(Item::Slot(cap.index * 2));
            flatten(&cap.sub, out)?;
            out.push(Item::Slot(cap.index * 2 + 1));
        }
        HirKind::Concat(subs) => {
            for sub in subs {
                flatten(sub, out)?;
            }
        }
        HirKind::Alternation(subs) => out.push(Item::Alt(subs)),
    }
    Ok(())
}

/// Compiles `hir` (a sequence) followed by `follow`; returns its steps, what may follow
/// the point before it, and whether it can match empty.
fn compile(hir: &Hir, follow: Follow, classes: &mut Vec<Class>) -> Result<(Vec<Step>, Follow, bool), Refused> {
    let mut items = Vec::new();
    flatten(hir, &mut items)?;
    compile_items(&items, follow, classes)
}

fn add_class(classes: &mut Vec<Class>, set: &ClassUnicode) -> u32 {
    let class = Class::new(set);
    let at = match classes.iter().position(|c| *c == class) {
        Some(at) => at,
        None => {
            classes.push(class);
            classes.len() - 1
        }
    };
    u32::try_from(at).expect("few classes")
}

fn compile_items(
    items: &[Item<'_>],
    mut follow: Follow,
    classes: &mut Vec<Class>,
) -> Result<(Vec<Step>, Follow, bool), Refused> {
    let mut steps = Vec::with_capacity(items.len());
    let mut nullable = true;
    for item in items.iter().rev() {
        match item {
            Item::Slot(n) => steps.push(Step::Slot(*n)),
            Item::Lit(lit) => {
                let first = first_char(lit)?;
                steps.push(match Short::new(lit) {
                    Some(short) => Step::Short(short),
                    None => Step::Lit(Box::from(*lit)),
                });
                follow = Follow::consuming(char_class(first));
                nullable = false;
            }
            Item::End => {
                steps.push(Step::End);
                // Only the end of the input may follow, which is no character.
                follow = Follow::consuming(ClassUnicode::empty());
            }
            Item::Run {
                class,
                min,
                max,
                greedy,
            } => {
                let forced = Some(*min) == *max;
                if !forced {
                    if follow.open {
                        if !follow.never_fails || !greedy {
                            return refuse(
                                "a variable run near the unanchored end is followed by something that can fail",
                            );
                        }
                    } else if !disjoint(class, &follow.first) {
                        return refuse(
                            "a variable run is followed by something that can start with a character of its class",
                        );
                    }
                }
                let id = add_class(classes, class);
                steps.push(Step::Run {
                    class: id,
                    min: *min,
                    max: max.unwrap_or(u32::MAX),
                    open: NO_SLOT,
                    close: NO_SLOT,
                    then: Short::default(),
                });
                if *min >= 1 {
                    follow = Follow::consuming(class.clone());
                    nullable = false;
                } else {
                    follow.first.union(class);
                }
            }
            Item::Alt(branches) => {
                let mut ascii = [NO_BRANCH; 128];
                let mut firsts = Vec::with_capacity(branches.len());
                let mut bodies = Vec::with_capacity(branches.len());
                let mut union = ClassUnicode::empty();
                for (i, branch) in branches.iter().enumerate() {
                    let index = u8::try_from(i)
                        .ok()
                        .filter(|&i| i != NO_BRANCH)
                        .ok_or_else(|| Refused("too many branches".into()))?;
                    let (body, branch_follow, branch_nullable) = compile(branch, follow.clone(), classes)?;
                    if branch_nullable {
                        return refuse("an alternation has a branch that can match empty");
                    }
                    if !disjoint(&union, &branch_follow.first) {
                        return refuse("the branches of an alternation can start with the same character");
                    }
                    union.union(&branch_follow.first);
                    let id = add_class(classes, &branch_follow.first);
                    for (b, slot) in ascii.iter_mut().enumerate() {
                        if classes[id as usize].table[b] {
                            *slot = index;
                        }
                    }
                    firsts.push(id);
                    bodies.push(body.into_boxed_slice());
                }
                steps.push(Step::Alt(Box::new(Alt {
                    ascii,
                    firsts: firsts.into_boxed_slice(),
                    branches: bodies.into_boxed_slice(),
                })));
                follow = Follow::consuming(union);
                nullable = false;
            }
            Item::Opt(sub) => {
                if follow.open {
                    return refuse("an optional part at the unanchored end");
                }
                let (body, body_follow, body_nullable) = compile(sub, follow.clone(), classes)?;
                if body_nullable {
                    return refuse("an optional part can match empty");
                }
                if !disjoint(&body_follow.first, &follow.first) {
                    return refuse("an optional part can start with a character that can follow it");
                }
                let id = add_class(classes, &body_follow.first);
                steps.push(Step::Opt {
                    first: id,
                    body: body.into_boxed_slice(),
                });
                follow.first.union(&body_follow.first);
                follow.never_fails = false;
            }
            Item::Loop { sub, min } => {
                if follow.open {
                    return refuse("a repeated group at the unanchored end");
                }
                if sub.properties().explicit_captures_len() > 0 {
                    return refuse("a capture group inside a repeated group");
                }
                // What the body starts with does not depend on what follows it, as it
                // cannot match empty; the second compile checks the body against what
                // may follow each iteration: another one, or the rest.
                let (_, body_follow, body_nullable) = compile(sub, follow.clone(), classes)?;
                if body_nullable {
                    return refuse("a repeated group can match empty");
                }
                if !disjoint(&body_follow.first, &follow.first) {
                    return refuse("a repeated group can start with a character that can follow it");
                }
                let mut again = follow.clone();
                again.first.union(&body_follow.first);
                again.never_fails = false;
                let (body, _, _) = compile(sub, again, classes)?;
                let first = add_class(classes, &body_follow.first);
                steps.push(Step::Loop {
                    first,
                    min: *min,
                    run: one_char_branch(&body),
                    body: body.into_boxed_slice(),
                });
                if *min >= 1 {
                    follow = Follow::consuming(body_follow.first);
                    nullable = false;
                } else {
                    follow.first.union(&body_follow.first);
                    follow.never_fails = false;
                }
            }
        }
    }
    steps.reverse();
    Ok((steps, follow, nullable))
}

/// The class of a branch that is one character of a class and nothing else, when `body`
/// is an alternation with such a branch (`(?:[^\]\\]|\\.)*`): the loop skips a run of
/// them at once, as taking that branch once per character would (the branch is chosen
/// by the next character alone).
fn one_char_branch(body: &[Step]) -> Option<u32> {
    let [Step::Alt(alt)] = body else { return None };
    alt.branches.iter().find_map(|branch| match &**branch {
        [
            Step::Run {
                class,
                min: 1,
                max: 1,
                open: NO_SLOT,
                close: NO_SLOT,
                then,
            },
        ] if then.len == 0 => Some(*class),
        _ => None,
    })
}

impl Scanner {
    /// Compiles `pattern` (regex-automata syntax), or says why it is not simple enough.
    pub(crate) fn new(pattern: &str) -> Result<Scanner, Refused> {
        let hir = syntax::parse(pattern).map_err(|e| Refused(format!("bad pattern: {e}")))?;
        let groups = hir.properties().explicit_captures_len() + 1;
        let rest: &[Hir] = match hir.kind() {
            HirKind::Concat(subs) => subs,
            _ => std::slice::from_ref(&hir),
        };
        let Some((head, rest)) = rest.split_first() else {
            return refuse("the pattern is not anchored with `^`");
        };
        if *head.kind() != HirKind::Look(Look::Start) {
            return refuse("the pattern is not anchored with `^`");
        }
        let mut items = Vec::new();
        for sub in rest {
            flatten(sub, &mut items)?;
        }
        let mut classes = Vec::new();
        let end = Follow {
            first: ClassUnicode::empty(),
            open: true,
            never_fails: true,
        };
        let (steps, _, _) = compile_items(&items, end, &mut classes)?;
        let spare = u32::try_from(2 * groups).map_err(|_| Refused("too many groups".into()))?;
        Ok(Scanner {
            steps: fuse(steps, spare),
            classes: classes.into_boxed_slice(),
            groups,
        })
    }

    /// Capture groups, group 0 (the whole match) included.
    pub(crate) fn group_len(&self) -> usize {
        self.groups
    }

    /// The length of the slots [`Scanner::captures`] takes: two per group and a spare.
    pub(crate) fn slot_len(&self) -> usize {
        2 * self.groups + 1
    }

    /// Matches `hay` from its start. On a match, `slots` (two per group: start, end;
    /// [`NONE`] for a group that did not take part; then a spare slot) holds the groups
    /// and the result is true. `slots.len()` must be [`Scanner::slot_len`].
    pub(crate) fn captures(&self, hay: &[u8], slots: &mut [usize]) -> bool {
        assert_eq!(slots.len(), self.slot_len());
        slots.fill(NONE);
        match self.exec(&self.steps, hay, 0, slots) {
            Some(end) => {
                slots[0] = 0;
                slots[1] = end;
                true
            }
            None => false,
        }
    }

    fn exec(&self, steps: &[Step], hay: &[u8], mut at: usize, slots: &mut [usize]) -> Option<usize> {
        for step in steps {
            match step {
                Step::Short(short) => {
                    if !short.matches(hay, at) {
                        return None;
                    }
                    at += usize::from(short.len);
                }
                Step::Lit(lit) => {
                    let here = hay.get(at..at + lit.len())?;
                    // Log literals are a few bytes: a loop beats a call to memcmp.
                    if here.iter().zip(lit.iter()).any(|(a, b)| a != b) {
                        return None;
                    }
                    at += lit.len();
                }
                Step::Run {
                    class,
                    min,
                    max,
                    open,
                    close,
                    then,
                } => {
                    slots[*open as usize] = at;
                    at = self.classes[*class as usize].run(hay, at, *min, *max)?;
                    slots[*close as usize] = at;
                    if !then.matches(hay, at) {
                        return None;
                    }
                    at += usize::from(then.len);
                }
                Step::Slot(n) => slots[*n as usize] = at,
                Step::End => {
                    if at != hay.len() {
                        return None;
                    }
                }
                Step::Alt(alt) => {
                    let b = *hay.get(at)?;
                    let branch = if b < 0x80 {
                        match alt.ascii[b as usize] {
                            NO_BRANCH => return None,
                            i => i as usize,
                        }
                    } else {
                        let (c, _) = decode(hay, at)?;
                        alt.firsts.iter().position(|&f| self.classes[f as usize].has_wide(c))?
                    };
                    at = self.exec(&alt.branches[branch], hay, at, slots)?;
                }
                Step::Opt { first, body } => {
                    if self.classes[*first as usize].width_at(hay, at).is_some() {
                        at = self.exec(body, hay, at, slots)?;
                    }
                }
                Step::Loop { first, min, run, body } => {
                    let first = &self.classes[*first as usize];
                    let mut taken = false;
                    loop {
                        if let Some(run) = run {
                            let end = self.classes[*run as usize].run_unbounded(hay, at);
                            taken |= end > at;
                            at = end;
                        }
                        if first.width_at(hay, at).is_none() {
                            break;
                        }
                        at = self.exec(body, hay, at, slots)?;
                        taken = true;
                    }
                    if *min > 0 && !taken {
                        return None;
                    }
                }
            }
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex_automata::meta;
    use regex_automata::util::captures::Captures;

    const NGINX: &str = r#"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<proto>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)""#;
    const APACHE: &str = r#"^(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\S+)$"#;
    const SHORT_NGINX: &str =
        r#"^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)"#;
    /// `perf/workloads/syslog-regex.yaml`: RFC 5424 or 3164, structured data as a repeated
    /// group of a repeated alternation.
    const SYSLOG: &str = r#"^<(?P<pri>\d{1,3})>(?:1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)|(?P<bsd_time>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (?P<bsd_host>\S+) (?P<tag>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?:) (?P<msg>.*)$"#;
    const OWN: &[&str] = &[
        r"^(\w+)(?: (\d+))?$",
        r"^(?P<level>[A-Z]+) +(?P<code>\d{1,3})(?P<rest>.*)",
        r"^(?P<k>[a-z]+)=(?P<v>[^ ]*)(?: (?P<tail>.*))?$",
        r"^\[(?P<ts>[^\]]*)\] (?P<kind>GET|POST|-|\d+) (?P<msg>.*)$",
        r"^(?P<a>\d+|[a-z]+|é)\s+(?P<b>\S*)",
        r"^(?i)(?P<m>get|post) (?P<p>[^ ]{0,5})(?P<q>\S?)",
        r"^(\S+)\s+(\S+)\s*$",
        r#"^"(?P<in>[^"\]]*)"(?P<d>\d*)"#,
        r#"^(?P<a>[^"]*)"(?P<b>\d*)(?P<c>\w*)"#,
        r"^(?:(\d)|x)?$",
        r"^(a\d|a\s)(?P<sp>\s+)(?P<rest>\S+)",
        r"^[^ ]{2,5} (.)(?P<two>\S{2}) (\S{1,3})$",
        r"^(?:(?P<n>\d+)|(?P<w>[a-z]+))(?:\.(?P<f>\d+))?(?P<minus>-?)$",
        r#"^"(?P<q>(?:[^"\\]|\\.)*)"(?: (?P<rest>.*))?$"#,
        r"^(?:\[[^\]]*\])* (?P<m>.*)$",
        r"^(?P<kv>(?:[a-z]+=[^ ]* )+)-(?P<rest>.*)$",
        r"^(?:ab|c)+(?P<n>\d*)$",
    ];

    fn refused(pattern: &str) -> String {
        match Scanner::new(pattern) {
            Ok(s) => panic!("`{pattern}` compiled: {s:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn log_patterns_compile() {
        for p in [NGINX, APACHE, SHORT_NGINX, SYSLOG].iter().chain(OWN) {
            if let Err(e) = Scanner::new(p) {
                panic!("`{p}`: {e}");
            }
        }
        let s = Scanner::new(NGINX).unwrap();
        assert_eq!(s.group_len(), 11);
        // `[^\]]` and `[^"]` scan with memchr; `\S` and `\d` with the table.
        let memchr: Vec<_> = s.classes.iter().filter_map(|c| c.except).collect();
        assert!(memchr.contains(&Except::One(b']')), "{memchr:?}");
        assert!(memchr.contains(&Except::One(b'"')), "{memchr:?}");
        let dot = Scanner::new("^(.*)").unwrap();
        assert_eq!(dot.classes[0].except, Some(Except::One(b'\n')));
    }

    #[test]
    fn block_membership_agrees_with_the_table_for_every_byte() {
        let classes: Vec<Class> = [
            r"\S",
            r"\d",
            r"\w",
            r"[^\]]",
            r"[ \d]",
            r"[^:\[\s]",
            r".",
            r"[A-Z]",
            r"\s",
        ]
        .iter()
        .map(|p| match syntax::parse(p).unwrap().kind() {
            HirKind::Class(c) => Class::new(&to_class(c).unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
        for class in &classes {
            for start in (0..=255u8).step_by(16) {
                let block: Vec<u8> = (start..=start.saturating_add(15)).collect();
                let mut hay = block.clone();
                hay.extend_from_slice(&block);
                let want = block
                    .iter()
                    .enumerate()
                    .fold(0u32, |m, (k, &b)| m | u32::from(class.table[b as usize]) << k);
                assert_eq!(class.members(&hay, 0), want, "bytes from {start:#04x}");
                assert_eq!(class.members(&hay, 16), want, "bytes from {start:#04x}");
                // The byte loop of a tail shorter than a block says the same.
                assert_eq!(class.members(&block[..15], 0), want & 0x7fff, "tail from {start:#04x}");
                // So does the last block shifted, for a tail of a longer line.
                for at in 17..=32 {
                    assert_eq!(
                        class.members(&hay, at),
                        want >> (at - 16),
                        "tail at {at} from {start:#04x}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_short_literal_matches_as_a_slice_compare_does_near_the_end() {
        let lits: [&[u8]; 5] = [b"", b" ", b"\" ", b"] \"", b"abcdefgh"];
        for lit in lits {
            let short = Short::new(lit).unwrap();
            for len in 0..=20 {
                // Lines that hold the literal at every place, and lines that miss it by one
                // byte at every place.
                for place in 0..=len {
                    let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 7) as u8).collect();
                    for (i, &b) in lit.iter().enumerate() {
                        if place + i < len {
                            hay[place + i] = b;
                        }
                    }
                    let mut near = hay.clone();
                    if let Some(b) = near.get_mut(place + lit.len().saturating_sub(1)) {
                        *b ^= 1;
                    }
                    for h in [&hay, &near] {
                        for at in 0..=len {
                            let want = h.get(at..at + lit.len()) == Some(lit);
                            assert_eq!(short.matches(h, at), want, "{lit:?} in {h:?} at {at}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn patterns_that_need_a_regex_are_refused_with_a_reason() {
        assert!(refused(r"user=(\w+)").contains("not anchored"));
        assert!(refused(r"^a|b").contains("not anchored"));
        assert!(Scanner::new(r"^a|^b").is_ok(), "the HIR lifts `^`: `^[ab]`");
        assert!(refused(r"^(\S+)\S").contains("can start with a character of its class"));
        assert!(refused(r"^(\w+)(\d+) ").contains("can start with a character of its class"));
        assert!(refused(r"^(\S+)(?: x)? ").contains("a character that can follow it"));
        assert!(refused(r"^(\S+|-) ").contains("same character"));
        assert!(refused(r"^(a|ab) ").contains("same character"));
        assert!(refused(r"^(a|) ").contains("empty"));
        // `a\d|a\s` becomes `a(?:\d|\s)` in the HIR: disjoint branches.
        assert!(Scanner::new(r"^(a\d|a\s)").is_ok());
        assert!(refused(r"^(?:ab)+").contains("repeated group at the unanchored end"));
        assert!(refused(r"^(?P<x>(a+)+)b").contains("capture group inside a repeated group"));
        assert!(refused(r"^(?:ab)+a").contains("can start with a character that can follow it"));
        assert!(refused(r"^(?:ab|c)*?d").contains("greedy"));
        assert!(refused(r"^(?:ab){2,}c").contains("greedy"));
        assert!(refused(r"^(?:a*)+b").contains("can match empty"));
        assert!(refused(r"^\bword").contains("assertion"));
        assert!(refused(r"(?m)^a$").contains("not anchored"));
        assert!(refused(r"^a(?m:$)").contains("assertion"));
        assert!(refused(r"^a^").contains("only allowed at the start"));
        assert!(refused(r"^(?: x)?").contains("unanchored end"));
        assert!(refused(r"^(\d+)(?: x)?y*z?").contains("unanchored end"));
        assert!(refused(r"^(\S+?)x").contains("can start with a character of its class"));
        assert!(refused(r"^(\S*?)").contains("unanchored end"));
        assert!(refused(r"^(\S+)(x*)\S").contains("can start with a character of its class"));
        assert!(Scanner::new(r"^(?:(\d)|x)?$").is_ok());
        // Runs that may end the pattern are fine when nothing after them can fail.
        assert!(Scanner::new(r"^\d+\w*").is_ok());
        assert!(Scanner::new(r"^(\S+?) ").is_ok(), "a lazy run whose count is forced");
        assert!(Scanner::new(r"^a{3}\S{2}").is_ok(), "fixed counts need no condition");
    }

    /// Per group, its span (None when the group did not take part).
    type Groups = Vec<Option<(usize, usize)>>;

    /// `meta::Regex` and the scanner, side by side.
    struct Both {
        pattern: &'static str,
        scanner: Scanner,
        regex: meta::Regex,
        cache: meta::Cache,
        caps: Captures,
        slots: Vec<usize>,
    }

    impl Both {
        fn new(pattern: &'static str) -> Both {
            let scanner = Scanner::new(pattern).unwrap();
            let regex = meta::Regex::new(pattern).unwrap();
            assert_eq!(
                regex.group_info().group_len(regex_automata::PatternID::ZERO),
                scanner.group_len()
            );
            Both {
                pattern,
                slots: vec![NONE; scanner.slot_len()],
                scanner,
                cache: regex.create_cache(),
                caps: regex.create_captures(),
                regex,
            }
        }

        /// Both engines' answers: per group, its span (None when absent); None: no match.
        fn answers(&mut self, hay: &[u8]) -> (Option<Groups>, Option<Groups>) {
            self.regex
                .search_captures_with(&mut self.cache, &regex_automata::Input::new(hay), &mut self.caps);
            let want = self.caps.is_match().then(|| {
                (0..self.scanner.group_len())
                    .map(|g| self.caps.get_group(g).map(|s| (s.start, s.end)))
                    .collect::<Vec<_>>()
            });
            let got = self.scanner.captures(hay, &mut self.slots).then(|| {
                self.slots
                    .chunks_exact(2)
                    .map(|s| (s[0] != NONE).then_some((s[0], s[1])))
                    .collect::<Vec<_>>()
            });
            (want, got)
        }

        fn check(&mut self, hay: &[u8]) -> bool {
            let (want, got) = self.answers(hay);
            assert_eq!(got, want, "line {:?}", String::from_utf8_lossy(hay));
            want.is_some()
        }
    }

    const LINES: &[&[u8]] = &[
        b"10.1.2.3 - - [25/Nov/2026:10:00:01 +0000] \"GET /index.html?id=4 HTTP/1.1\" 200 612 \"-\" \"curl/8.5.0\"",
        b"192.168.1.20 - alice [25/Nov/2026:10:00:02 +0000] \"POST /api/v1/orders?id=42 HTTP/2.0\" 503 - \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\"",
        b"57.200.3.9 - - [03/Dec/2026:23:59:59 +0000] \"HEAD /healthz?id=99999 HTTP/1.1\" 304 0 \"https://www.google.com/search?q=weir\" \"kube-probe/1.29\"",
        "10.0.0.7 - jos\u{e9} [25/Nov/2026:10:00:03 +0000] \"GET /caf\u{e9} HTTP/1.1\" 200 12 \"-\" \"Z\u{fc}rich \u{2713}\"".as_bytes(),
        b"10.0.0.8 - - [25/Nov/2026:10:00:04 +0000] \"GET /\xff HTTP/1.1\" 200 12 \"-\" \"bad \xc3\x28 utf8\"",
        "10.0.0.9 - - [25/Nov/2026:10:00:05 +0000] \"GET / HTTP/1.1\" \u{663}00 1 \"-\" \"-\"".as_bytes(),
        b"10.0.0.9 - - [25/Nov/2026:10:00:05 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" trailing",
        b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
        b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 ",
        b"10.0.0.1\xc2\xa0- - [x] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        b"",
        b"garbage line",
        b"<30>1 2026-11-25T10:00:00.730Z db-01 auth 57556 ID47 [exampleSDID@32473 iut=\"0\" eventSource=\"Application\"] order placed",
        b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 x=\"]\\\"\"][b@2] - BOM msg",
        b"<13>1 - - - - - - ",
        b"<30>Nov 25 10:00:00 db-01 kernel: [424081.194259] eth0: link up",
        b"<86>Nov  5 10:00:01 worker-7 systemd[1]: Started nginx.service",
        b"<86>Nov 25 10:00:01 worker-7 systemd[x]: bad pid",
        b"<1>1 t h a p m [unterminated x",
        b"\"say \\\"hi\\\"\" rest",
        b"[a][b] c",
        b"k=v x=1 -tail",
        b"ababc42",
    ];

    #[test]
    fn real_lines_match_the_regex() {
        let mut matched = 0;
        for pattern in [NGINX, APACHE, SHORT_NGINX, SYSLOG].iter().chain(OWN) {
            let mut both = Both::new(pattern);
            for line in LINES {
                matched += usize::from(both.check(line));
            }
        }
        assert!(matched >= 12, "{matched}");
        let mut syslog = Both::new(SYSLOG);
        let hits = LINES.iter().filter(|line| syslog.check(line)).count();
        assert_eq!(hits, 4, "syslog lines of both formats match");
        let mut both = Both::new(NGINX);
        let (_, got) = both.answers(LINES[3]);
        let got = got.expect("a line with UTF-8 text matches");
        let (s, e) = got[10].unwrap();
        assert_eq!(&LINES[3][s..e], "Z\u{fc}rich \u{2713}".as_bytes());
        assert_eq!(
            both.answers(LINES[4]).1,
            None,
            "invalid UTF-8 in `[^\"]*` ends the run, as in the regex"
        );
        let got = both.answers(LINES[5]).1.expect("`\\d{3}` reads U+0663 as a digit");
        let (s, e) = got[7].unwrap();
        assert_eq!(&LINES[5][s..e], "\u{663}00".as_bytes());
    }

    /// Bytes that matter to the patterns: separators, quotes, brackets, digits, letters,
    /// a no-break space (C2 A0, `\s` in Unicode), `é`, an Arabic-Indic digit (`\d`), a
    /// stray continuation byte, a truncated sequence and invalid 0xFF.
    const ALPHABET: &[&[u8]] = &[
        b" ",
        b" ",
        b"\"",
        b"[",
        b"]",
        b"-",
        b"0",
        b"4",
        b"9",
        b"a",
        b"z",
        b"G",
        b"E",
        b"T",
        b"=",
        b"/",
        b":",
        b".",
        b"\n",
        b"\t",
        b"\xc2\xa0",
        "\u{e9}".as_bytes(),
        "\u{663}".as_bytes(),
        b"\xa0",
        b"\xc2",
        b"\xff",
    ];

    /// Pieces of log lines, so that random lines often match.
    const TOKENS: &[&[u8]] = &[
        b"10.0.0.1",
        b" ",
        b" - ",
        b"alice",
        b"[25/Nov/2026:10:00:01 +0000]",
        b"\"",
        b"GET",
        b"POST",
        b"/index.html",
        b"HTTP/1.1",
        b"200",
        b"404",
        b"612",
        b"-",
        b"\"-\"",
        b"\"curl/8.5.0\"",
        b"x=1",
        b"INFO",
        b"\xff",
        b"\xc2\xa0",
        "\u{e9}".as_bytes(),
        "\u{663}".as_bytes(),
        b"\xe2\x9c",
        b"]",
        b"[",
        b"<30>",
        b"1 ",
        b"Nov 25 10:00:00",
        b"[id@1 a=\"b\\\"c\"]",
        b"\\",
        b"=",
        b"k=v ",
        b"ab",
        b"c",
        b": ",
    ];

    fn line() -> impl Strategy<Value = Vec<u8>> {
        let bytes = prop::collection::vec(prop::sample::select(ALPHABET), 0..40).prop_map(|v| v.concat());
        let tokens = prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|v| v.concat());
        let mutated = (
            prop::sample::select(LINES),
            prop::collection::vec(
                (any::<prop::sample::Index>(), 0..3u8, prop::sample::select(ALPHABET)),
                1..4,
            ),
        )
            .prop_map(|(line, edits)| {
                let mut line = line.to_vec();
                for (at, op, with) in edits {
                    let i = if line.is_empty() { 0 } else { at.index(line.len()) };
                    match op {
                        0 => {
                            line.splice(i..i, with.iter().copied());
                        }
                        1 if !line.is_empty() => {
                            line.remove(i);
                        }
                        _ if !line.is_empty() => {
                            line.splice(i..i + 1, with.iter().copied());
                        }
                        _ => {}
                    }
                }
                line
            });
        prop_oneof![bytes, tokens, mutated]
    }

    #[test]
    fn scanner_equals_meta_regex_on_random_lines() {
        use proptest::test_runner::{Config, TestRunner};
        let mut engines: Vec<Both> = [NGINX, APACHE, SHORT_NGINX, SYSLOG]
            .iter()
            .chain(OWN)
            .map(|p| Both::new(p))
            .collect();
        let matched = std::cell::Cell::new(0usize);
        let engines = std::cell::RefCell::new(&mut engines);
        let mut runner = TestRunner::new(Config {
            cases: 500,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&prop::collection::vec(line(), 1..4), |lines| {
                for line in &lines {
                    for both in engines.borrow_mut().iter_mut() {
                        let (want, got) = both.answers(line);
                        matched.set(matched.get() + usize::from(want.is_some()));
                        prop_assert_eq!(
                            got,
                            want,
                            "pattern {} line {:?}",
                            both.pattern,
                            String::from_utf8_lossy(line)
                        );
                    }
                }
                Ok(())
            })
            .unwrap();
        // The generator must reach matching lines, not only garbage.
        assert!(matched.get() > 100, "only {} matches", matched.get());
    }
}
