//! A validating pull scanner over one JSON text, for `parse_json`'s hot path.
//!
//! Why by hand: a log line is one small object whose members become fields. simd-json
//! first copies the line into a padded buffer, finds its structure, builds a tape, and the
//! fields are then made from the tape; profiles put that at about half of a JSON pipeline's
//! time, the tape building as much as the parsing. This scanner walks the original bytes
//! once and hands out what fields need directly: string spans (unescaped only when they hold
//! escapes), numbers, and nested values as spans of their text, checked for validity but
//! not built. It accepts exactly RFC 8259 JSON (UTF-8 checked once per input).
//!
//! Offsets are relative to the scanned input.

/// Where and why a text is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// The byte offset where it stops being JSON (`input.len()` at an unexpected end).
    pub at: usize,
    /// It stops because objects and arrays nest deeper than [`MAX_DEPTH`].
    pub too_deep: bool,
}

impl ScanError {
    /// Not JSON at `at`.
    pub(crate) fn at(at: usize) -> ScanError {
        ScanError { at, too_deep: false }
    }
}

/// 10^0 to 10^15, each exact in a double.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A scalar or nested value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    /// A string: content offsets (without quotes); `escaped` if it holds `\` escapes.
    Str { start: usize, end: usize, escaped: bool },
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer above `i64::MAX` that fits in `u64`: its digits at `start..end`.
    BigUint { start: usize, end: usize },
    /// Any other number.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object or array at `start..end`. `canonical` when its text is exactly what a
    /// compact re-encoding would write (no whitespace, no escapes, integers only), so the
    /// span can be used as is.
    Nested { start: usize, end: usize, canonical: bool },
}

/// The deepest nesting accepted: objects and arrays inside one another, the outermost
/// counted (a line `{"a":{"b":1}}` nests 2 deep). One level more is refused, the same texts
/// serde_json refuses (its recursion limit of 128 admits 127 levels). Every walk over JSON
/// that a log line can reach (this scanner, `parse_json`'s members and `flatten`, the
/// re-encoding of nested values) recurses at most this deep, so a hostile line can cost a
/// parse failure but never the worker's stack.
pub const MAX_DEPTH: u32 = 127;

/// The scanner: a position in `s`.
pub(crate) struct Scanner<'a> {
    s: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over `s`, or the offset of its first invalid UTF-8 byte.
    pub(crate) fn new(s: &'a [u8]) -> Result<Scanner<'a>, ScanError> {
        if !s.is_ascii()
            && let Err(e) = std::str::from_utf8(s)
        {
            return Err(ScanError::at(e.valid_up_to()));
        }
        Ok(Scanner { s, i: 0 })
    }

    fn err<T>(&self) -> Result<T, ScanError> {
        Err(ScanError::at(self.i))
    }

    /// Skips whitespace.
    #[inline]
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte, if any.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Takes `b` if it is next.
    #[inline]
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Takes `b`, or fails here.
    #[inline]
    pub(crate) fn expect(&mut self, b: u8) -> Result<(), ScanError> {
        if self.eat(b) { Ok(()) } else { self.err() }
    }

    /// The end: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<(), ScanError> {
        self.ws();
        if self.i == self.s.len() { Ok(()) } else { self.err() }
    }

    /// A string starting at the `"` here: its content offsets and whether it has escapes.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<(usize, usize, bool), ScanError> {
        self.expect(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i = find_string_special(self.s, self.i);
            match self.s.get(self.i) {
                Some(b'"') => {
                    let end = self.i;
                    self.i += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                // A high surrogate needs its low half.
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return self.err();
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err();
                                }
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return self.err();
                            }
                        }
                        _ => return self.err(),
                    }
                }
                // A control byte, or the end.
                _ => return self.err(),
            }
        }
    }

    #[inline(always)]
    fn hex4(&mut self) -> Result<u32, ScanError> {
        let Some(digits) = self.s.get(self.i..self.i + 4) else {
            self.i = self.s.len();
            return self.err();
        };
        let mut v = 0;
        for &d in digits {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.err(),
            };
            v = v * 16 + u32::from(x);
            self.i += 1;
        }
        Ok(v)
    }

    /// A number starting here.
    #[inline(always)]
    fn number(&mut self) -> Result<(Scalar, bool), ScanError> {
        let start = self.i;
        let negative = self.eat(b'-');
        let digits = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return self.err(),
        }
        let int_end = self.i;
        let mut float = false;
        let mut frac_end = int_end;
        if self.eat(b'.') {
            float = true;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err();
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            frac_end = self.i;
        }
        let exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if float && !exponent && frac_end - digits <= 16 {
            // A plain decimal of at most 15 digits (`1885.2`, `0.25`): all its digits as an
            // integer, exact in a double, divided by a power of ten that is exact too (at
            // most 10^15): one correctly rounded division gives the double nearest to the
            // text, which is what the general parser below returns (Clinger's fast path).
            let mut m: u64 = 0;
            for &d in self.s[digits..int_end].iter().chain(&self.s[int_end + 1..frac_end]) {
                m = m * 10 + u64::from(d - b'0');
            }
            let f = m as f64 / POW10[frac_end - int_end - 1];
            return Ok((Scalar::Float(if negative { -f } else { f }), false));
        }
        if exponent {
            float = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err();
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
        }
        if !float && int_end - digits <= 19 {
            let mut v: u64 = 0;
            for &d in &self.s[digits..int_end] {
                v = v * 10 + u64::from(d - b'0');
            }
            if negative {
                if v <= 1 << 63 {
                    // `-0` is 0, which a compact writer writes without the sign.
                    let canonical = v != 0;
                    return Ok((Scalar::Int((v as i64).wrapping_neg()), canonical));
                }
            } else if let Ok(i) = i64::try_from(v) {
                return Ok((Scalar::Int(i), true));
            } else {
                return Ok((Scalar::BigUint { start, end: int_end }, true));
            }
        } else if !float && !negative && int_end - digits == 20 {
            let text = std::str::from_utf8(&self.s[digits..int_end]).expect("ASCII digits");
            if text.parse::<u64>().is_ok() {
                return Ok((Scalar::BigUint { start, end: int_end }, true));
            }
        }
        // Fractions, exponents and integers beyond 64 bits: a double, as serde_json does.
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII number");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((Scalar::Float(f), false)),
            // Out of a double's range (`1e400`): refused, as serde_json and simd-json do.
            _ => Err(ScanError::at(start)),
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err()
        }
    }

    /// The value starting here (after whitespace), inside `open` enclosing objects or
    /// arrays (0 for a whole text).
    #[inline(always)]
    pub(crate) fn value(&mut self, open: u32) -> Result<Scalar, ScanError> {
        match self.peek() {
            Some(b'"') => {
                let (start, end, escaped) = self.string()?;
                Ok(Scalar::Str { start, end, escaped })
            }
            Some(b'{' | b'[') => {
                let start = self.i;
                let canonical = self.nested(open)?;
                Ok(Scalar::Nested {
                    start,
                    end: self.i,
                    canonical,
                })
            }
            Some(b't') => self.literal(b"true").map(|()| Scalar::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| Scalar::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| Scalar::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(|(v, _)| v),
            _ => self.err(),
        }
    }

    /// Refuses an object or array here when `open` others already enclose it and one
    /// more would pass [`MAX_DEPTH`].
    #[inline(always)]
    pub(crate) fn enter(&self, open: u32) -> Result<(), ScanError> {
        if open >= MAX_DEPTH {
            return Err(ScanError {
                at: self.i,
                too_deep: true,
            });
        }
        Ok(())
    }

    /// Validates the object or array here, inside `depth` enclosing ones; returns whether
    /// its text is canonical.
    fn nested(&mut self, depth: u32) -> Result<bool, ScanError> {
        self.enter(depth)?;
        let open = self.i;
        let object = self.eat(b'{');
        if !object {
            self.expect(b'[')?;
        }
        let close = if object { b'}' } else { b']' };
        let mut canonical = true;
        let ws = |sc: &mut Scanner<'_>, canonical: &mut bool| {
            let before = sc.i;
            sc.ws();
            *canonical &= sc.i == before;
        };
        ws(self, &mut canonical);
        if self.eat(close) {
            return Ok(canonical);
        }
        loop {
            if object {
                let (_, _, escaped) = self.string()?;
                canonical &= !escaped;
                ws(self, &mut canonical);
                self.expect(b':')?;
                ws(self, &mut canonical);
            }
            canonical &= match self.peek() {
                Some(b'"') => {
                    let (_, _, escaped) = self.string()?;
                    !escaped
                }
                Some(b'{' | b'[') => self.nested(depth + 1)?,
                Some(b't') => self.literal(b"true").map(|()| true)?,
                Some(b'f') => self.literal(b"false").map(|()| true)?,
                Some(b'n') => self.literal(b"null").map(|()| true)?,
                Some(b'-' | b'0'..=b'9') => self.number()?.1,
                _ => return self.err(),
            };
            ws(self, &mut canonical);
            if self.eat(b',') {
                ws(self, &mut canonical);
                continue;
            }
            if self.eat(close) {
                let _ = open;
                return Ok(canonical);
            }
            return self.err();
        }
    }
}

/// Index of the first `"`, `\` or control byte in `s[from..]` (`s.len()` if none).
#[inline]
fn find_string_special(s: &[u8], mut from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; each load reads 16 bytes inside `s`
        // (`from + 16 <= s.len()`).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let ctrl = _mm_set1_epi8(0x1f);
            while from + 16 <= s.len() {
                let v = _mm_loadu_si128(s.as_ptr().add(from) as *const __m128i);
                // v <= 0x1f (unsigned) exactly when max(v, 0x1f) == 0x1f.
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                    _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl),
                );
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return from + mask.trailing_zeros() as usize;
                }
                from += 16;
            }
        }
    }
    while from < s.len() && !matches!(s[from], b'"' | b'\\' | 0x00..=0x1f) {
        from += 1;
    }
    from
}

/// Appends the unescaped content of a valid JSON string body (as checked by
/// [`Scanner::string`]) to `out`.
pub(crate) fn unescape(body: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < body.len() {
        let Some(at) = memchr::memchr(b'\\', &body[i..]) else {
            out.extend_from_slice(&body[i..]);
            return;
        };
        out.extend_from_slice(&body[i..i + at]);
        i += at + 1;
        let c = body[i];
        i += 1;
        let b = match c {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = |at: usize| {
                    u32::from_str_radix(std::str::from_utf8(&body[at..at + 4]).unwrap_or("0"), 16).unwrap_or(0)
                };
                let mut cp = hex(i);
                i += 4;
                if (0xD800..0xDC00).contains(&cp) {
                    let lo = hex(i + 2);
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other, // `"`, `\`, `/`
        };
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &str) -> bool {
        let Ok(mut sc) = Scanner::new(s.as_bytes()) else {
            return false;
        };
        sc.ws();
        sc.value(0).is_ok() && sc.finish().is_ok()
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let cases = [
            "{}",
            "[]",
            "{\"a\":1}",
            " {\"a\" : [1, 2.5e3, -0, true, false, null, {\"b\":\"\\u00e9\"}]} ",
            "{\"a\":}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1} x",
            "{\"a\":\"open}",
            "01",
            "-",
            "1.",
            "1e",
            "1e+",
            ".5",
            "-01",
            "\"\\ud800\"",
            "\"\\ud83d\\ude00\"",
            "\"\\udc00\"",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "1E400",
            "-9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "[[[]]]",
            "{\"a\":{\"b\":{}}}",
            "\"\\/\"",
            "nul",
        ];
        for c in cases {
            assert_eq!(valid(c), serde_json::from_str::<serde_json::Value>(c).is_ok(), "{c:?}");
        }
        assert!(Scanner::new(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn plain_decimals_parse_as_the_general_parser_does() {
        // Every shape the fast path takes (up to 15 digits, either side of the point,
        // signs, zeros), and a few just past it, against `str::parse`.
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut texts: Vec<String> = vec!["0.0".into(), "-0.0".into(), "0.1".into(), "1885.2".into()];
        for _ in 0..20_000 {
            let int_digits = 1 + next() as usize % 10;
            let frac_digits = 1 + next() as usize % 9;
            let mut t = String::new();
            if next() % 2 == 0 {
                t.push('-');
            }
            let first = if int_digits == 1 { next() % 10 } else { 1 + next() % 9 };
            t.push(char::from(b'0' + first as u8));
            for _ in 1..int_digits {
                t.push(char::from(b'0' + (next() % 10) as u8));
            }
            t.push('.');
            for _ in 0..frac_digits {
                t.push(char::from(b'0' + (next() % 10) as u8));
            }
            texts.push(t);
        }
        for t in &texts {
            let want: f64 = t.parse().unwrap();
            match Scanner::new(t.as_bytes()).unwrap().value(0).unwrap() {
                Scalar::Float(f) => assert_eq!(f.to_bits(), want.to_bits(), "{t}"),
                other => panic!("{t}: {other:?}"),
            }
        }
    }

    #[test]
    fn numbers_and_canonical_nested_text() {
        let scalar = |s: &str| Scanner::new(s.as_bytes()).unwrap().value(0).unwrap();
        assert_eq!(scalar("42"), Scalar::Int(42));
        assert_eq!(scalar("-9223372036854775808"), Scalar::Int(i64::MIN));
        assert_eq!(scalar("9223372036854775808"), Scalar::BigUint { start: 0, end: 19 });
        assert_eq!(scalar("18446744073709551616"), Scalar::Float(18446744073709551616.0));
        assert_eq!(scalar("2.5"), Scalar::Float(2.5));
        let canonical = |s: &str| matches!(scalar(s), Scalar::Nested { canonical: true, .. });
        assert!(canonical("{\"a\":[1,\"x\",null,{}]}"));
        assert!(!canonical("{\"a\": 1}"));
        assert!(!canonical("[1.5]"));
        assert!(!canonical("[\"\\n\"]"));
        assert!(!canonical("[-0]"));
    }

    #[test]
    fn unescapes_like_serde_json() {
        for s in [
            "\"plain\"",
            "\"a\\\"b\\\\c\\/d\"",
            "\"\\b\\f\\n\\r\\t\"",
            "\"\\u00e9\\ud83d\\ude00x\"",
        ] {
            let mut out = Vec::new();
            unescape(&s.as_bytes()[1..s.len() - 1], &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::from_str::<String>(s).unwrap(),
                "{s}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_bounded_where_serde_json_bounds_it() {
        let serde_ok = |t: &str| serde_json::from_str::<serde_json::Value>(t).is_ok();
        for depth in [1, 2, 100, 126, 127, 128, 129, 10_000] {
            let arrays = "[".repeat(depth) + &"]".repeat(depth);
            let objects = r#"{"":"#.repeat(depth) + "1" + &"}".repeat(depth);
            // Objects and arrays alternating: `depth` levels when it is even.
            let pairs = depth / 2;
            let mixed = r#"{"a":["#.repeat(pairs) + "0" + &"]}".repeat(pairs);
            for (text, levels) in [(arrays, depth), (objects, depth), (mixed, 2 * pairs)] {
                let ours = valid(&text);
                assert_eq!(ours, levels <= MAX_DEPTH as usize, "{levels} levels");
                assert_eq!(
                    ours,
                    serde_ok(&text),
                    "{levels} levels: {}",
                    &text[..text.len().min(40)]
                );
            }
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        let mut sc = Scanner::new(deep.as_bytes()).unwrap();
        let e = sc.value(0).unwrap_err();
        assert!(e.too_deep);
        assert_eq!(e.at, MAX_DEPTH as usize, "stops at the first bracket too many");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// Texts built from JSON's own tokens, valid or not: the scanner and serde_json agree.
        #[test]
        fn validity_matches_serde_json(parts in proptest::collection::vec(proptest::sample::select(vec![
            "{", "}", "[", "]", ":", ",", " ", "\"a\"", "\"\\n\"", "\"\\u00e9\"", "\"\\ud800\"", "\"\\q\"",
            "0", "-1", "1.5", "2e3", "01", "-", "true", "false", "null", "nul", "\"", "\u{1}", "é",
        ]), 0..12)) {
            let text: String = parts.concat();
            proptest::prop_assert_eq!(valid(&text), serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{:?}", text);
        }
    }
}
