//! `redact`: replaces personal data in string fields with placeholders: e-mail addresses
//! (`[EMAIL]`), credit-card numbers that pass the Luhn check (`[CARD]`), IPv4 (`[IPV4]`) and
//! IPv6 (`[IPV6]`) addresses.
//!
//! ```yaml
//! - type: wasm
//!   plugin: wasm-plugins/target/wasm32-wasip2/release/redact.wasm
//!   config:
//!     fields: message,user     # comma-separated; default: message
//!     emails: true             # each kind can be turned off
//!     cards: true
//!     ips: true
//!     count_field: _redacted   # optional: how many values were replaced, on changed events
//! ```
//!
//! Card numbers are 13 to 19 digits, optionally grouped by single spaces or dashes; a
//! digit run that fails the Luhn check (an order number, a timestamp) is left alone. IPv6
//! candidates are confirmed by the standard library's parser, so `10:00:01` is not one.
//! An event whose fields hold nothing to redact gets no edit.

use std::net::Ipv6Addr;
use std::ops::Range;

use regex::bytes::Regex;
use weir_sdk::{BatchView, Config, Edits, Error, Plugin};

struct Redact {
    fields: Vec<String>,
    email: Option<Regex>,
    card: Option<Regex>,
    ipv4: Option<Regex>,
    ipv6: Option<Regex>,
    count_field: Option<String>,
    /// Scratch: the matches found in one value, as (range, placeholder).
    found: Vec<(Range<usize>, &'static [u8])>,
}

fn flag(config: &Config, key: &str) -> Result<bool, Error> {
    config.parse_or(key, true)
}

fn regex(on: bool, pattern: &str) -> Option<Regex> {
    on.then(|| Regex::new(pattern).expect("built-in pattern"))
}

/// The Luhn checksum over the digits of `text` (separators skipped).
pub fn luhn(text: &[u8]) -> bool {
    let mut sum = 0;
    let mut n = 0;
    for &b in text.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    (13..=19).contains(&n) && sum % 10 == 0
}

impl Plugin for Redact {
    fn init(config: &Config) -> Result<Self, Error> {
        for (key, _) in config.iter() {
            if !["fields", "emails", "cards", "ips", "count_field"].contains(&key) {
                return Err(Error::fatal(format!(
                    "unknown config key `{key}` (expected fields, emails, cards, ips, count_field)"
                )));
            }
        }
        let fields: Vec<String> = config
            .get("fields")
            .unwrap_or("message")
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect();
        if fields.is_empty() {
            return Err(Error::fatal("config `fields`: no field named"));
        }
        let ips = flag(config, "ips")?;
        Ok(Redact {
            fields,
            email: regex(
                flag(config, "emails")?,
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
            ),
            card: regex(flag(config, "cards")?, r"\b\d(?:[ \-]?\d){12,18}\b"),
            ipv4: regex(
                ips,
                r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b",
            ),
            ipv6: regex(
                ips,
                r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?::|\.)\d{1,3}(?:\.\d{1,3}){2,3})?",
            ),
            count_field: config.get("count_field").map(str::to_string),
            found: Vec::new(),
        })
    }

    fn process(&mut self, batch: &BatchView<'_>, edits: &mut Edits<'_>) -> Result<(), Error> {
        let keys: Vec<_> = self.fields.iter().filter_map(|f| batch.key(f)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let count_key = self.count_field.as_deref().map(|f| edits.key(f));
        for event in batch.events() {
            let mut count = 0i64;
            for &key in &keys {
                let Some(text) = event.get(key).and_then(|v| v.as_bytes()) else {
                    continue;
                };
                self.scan(text);
                if self.found.is_empty() {
                    continue;
                }
                count += self.found.len() as i64;
                let found = &self.found;
                edits.set_str_with(&event, key, |out| {
                    let mut at = 0;
                    for (range, placeholder) in found {
                        out.extend_from_slice(&text[at..range.start]);
                        out.extend_from_slice(placeholder);
                        at = range.end;
                    }
                    out.extend_from_slice(&text[at..]);
                });
            }
            if let (Some(k), true) = (count_key, count > 0) {
                edits.set(&event, k, count);
            }
        }
        Ok(())
    }
}

impl Redact {
    /// Finds what to replace in `text`, into `self.found` (sorted, not overlapping).
    /// Order of precedence: e-mails, then IPv6 (which may embed an IPv4), then cards, then
    /// IPv4.
    fn scan(&mut self, text: &[u8]) {
        let found = &mut self.found;
        found.clear();
        let free = |found: &[(Range<usize>, &[u8])], r: &Range<usize>| {
            found.iter().all(|(f, _)| r.end <= f.start || f.end <= r.start)
        };
        if let Some(re) = &self.email {
            found.extend(re.find_iter(text).map(|m| (m.range(), &b"[EMAIL]"[..])));
        }
        if let Some(re) = &self.ipv6 {
            for m in re.find_iter(text) {
                let ok = std::str::from_utf8(m.as_bytes())
                    .ok()
                    .is_some_and(|s| s.parse::<Ipv6Addr>().is_ok());
                if ok && free(found, &m.range()) {
                    found.push((m.range(), b"[IPV6]"));
                }
            }
        }
        if let Some(re) = &self.card {
            for m in re.find_iter(text) {
                if luhn(m.as_bytes()) && free(found, &m.range()) {
                    found.push((m.range(), b"[CARD]"));
                }
            }
        }
        if let Some(re) = &self.ipv4 {
            for m in re.find_iter(text) {
                if free(found, &m.range()) {
                    found.push((m.range(), b"[IPV4]"));
                }
            }
        }
        found.sort_by_key(|(r, _)| r.start);
    }
}

weir_sdk::export!(Redact);
