//! Numbered test lines (`line-00000042 ...`) read back from an output.
#![allow(dead_code)] // each user takes what it needs

use std::collections::BTreeMap;
use std::path::Path;

/// How many times each line number is in the output file `out` (missing file: none).
pub fn counts(out: &Path) -> BTreeMap<u64, u32> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let n: u64 = line
            .split_whitespace()
            .next()
            .and_then(|w| w.strip_prefix("line-"))
            .unwrap_or_else(|| panic!("unexpected output line {line:?}"))
            .parse()
            .unwrap();
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

/// Every line number in `0..n` exactly once in `counts` (see [`counts`]).
pub fn assert_exactly_once(counts: &BTreeMap<u64, u32>, n: u64) {
    let dups: Vec<(u64, u32)> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, c)| (*k, *c))
        .take(10)
        .collect();
    assert!(dups.is_empty(), "duplicated lines (number, times): {dups:?}");
    assert_eq!(counts.len() as u64, n, "unexpected line numbers in the output");
}
