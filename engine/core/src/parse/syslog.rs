//! The syslog decoder: one message, as framing left it, into fields (the `syslog` input's
//! decoder; it runs on the workers).
//!
//! Both formats are told apart per message: `<PRI>1 ` starts RFC 5424, anything else after
//! `<PRI>` is RFC 3164 (BSD).
//!
//! | field | RFC 5424 | RFC 3164 |
//! |---|---|---|
//! | `facility`, `severity` | names from PRI: `kern` … `local7`; `emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`, `debug` | same |
//! | event time | TIMESTAMP (RFC 3339, its offset) | `Mmm dd hh:mm:ss[.frac]` in `timezone`, the year inferred (below); or an RFC 3339 stamp (rsyslog's forwarding format) |
//! | `hostname` | HOSTNAME | the word after the time, when there is a time |
//! | `appname`, `procid` | APP-NAME, PROCID | TAG and `[pid]` of `TAG[pid]: ` |
//! | `msgid` | MSGID | — |
//! | `structured_data` | a JSON object: `{"id@1":{"name":"value"}}` | — |
//! | `message` | MSG (a leading UTF-8 BOM removed) | the rest |
//!
//! A nil value (`-`) sets no field. Trailing `\r`, `\n` and NUL bytes are removed (Python's
//! `SysLogHandler` ends each message with NUL).
//!
//! **The year of RFC 3164 times.** They have none. The decoder takes the year that puts
//! the time at most a month ahead of now and at most eleven months behind: the current
//! year, unless that is more than a month ahead (a December message read in January: the
//! previous year) or more than eleven months behind (a January message from a clock a
//! little ahead, read on 31 December: the next year). Old messages are more likely than
//! ones from the future, hence the uneven window. The zone is the
//! input's `timezone` (the machine's own by default, as rsyslog and syslog-ng assume).
//!
//! A message without `<PRI>`, with a PRI over 191, an RFC 5424 header cut short, a time
//! that does not exist or structured data that does not close is a failure: kept whole in
//! `message`, with the reason in `_error`, and counted.

use std::ops::Range;

use super::time::TimestampParser;
use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed};
use crate::model::{Bufs, Key, KeyTable, Span, Value};
use crate::processors::BuildError;

/// Facility names by number (RFC 5424 table 1, as rsyslog and Vector name them).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names by number (RFC 5424 table 2).
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// How far ahead of now an RFC 3164 time may be in the current year, in nanoseconds.
const AHEAD: i64 = 31 * 86_400 * 1_000_000_000;
/// How far behind now it may be (about eleven months).
const BEHIND: i64 = 334 * 86_400 * 1_000_000_000;

/// The decoder over `message`: failures kept, with `_error`.
pub fn decoder(keys: &KeyTable, timezone: Option<&str>) -> Result<FieldParser<SyslogParser>, BuildError> {
    let common = Common::new(keys, "message", false, OnFailure::Keep, Some("_error"))?;
    Ok(FieldParser::new("syslog", SyslogParser::new(keys, timezone)?, common))
}

/// Parses one syslog message into fields ([module docs](self)).
#[derive(Debug)]
pub struct SyslogParser {
    keys: Keys,
    rfc3339: TimestampParser,
    bsd: TimestampParser,
    /// `[start, end)` of `bsd`'s year, UTC, in seconds: when now leaves it, the year moves.
    year_span: (i64, i64),
    /// Now in seconds, when fixed (tests); else the clock is read once per batch.
    fixed_now: Option<i64>,
    /// Now in seconds, for the batch being parsed.
    now: i64,
    /// The facility and severity names written to the batch's arena so far (by index:
    /// facilities, then severities): each is written once per batch.
    names: [Option<Span>; 32],
    /// The structured data of the message being parsed, as JSON.
    sd: Vec<u8>,
}

#[derive(Debug)]
struct Keys {
    facility: Key,
    severity: Key,
    hostname: Key,
    appname: Key,
    procid: Key,
    msgid: Key,
    structured_data: Key,
}

/// What [`scan`] found: ranges of the message's bytes.
#[derive(Debug, Default, PartialEq)]
struct Scanned {
    pri: u8,
    stamp: Option<(Range<usize>, Stamp)>,
    hostname: Option<Range<usize>>,
    appname: Option<Range<usize>>,
    procid: Option<Range<usize>>,
    msgid: Option<Range<usize>>,
    structured_data: Option<Range<usize>>,
    message: Range<usize>,
}

/// The kind of a time in a message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamp {
    Rfc3339,
    /// `Mmm dd hh:mm:ss`, no year.
    Bsd,
}

impl SyslogParser {
    /// A parser whose RFC 3164 times (and RFC 3339 ones without an offset) are in
    /// `timezone`: an IANA name, a fixed offset, `local` or `UTC` (default `local`).
    pub fn new(keys: &KeyTable, timezone: Option<&str>) -> Result<SyslogParser, BuildError> {
        let zone = Some(timezone.unwrap_or("local"));
        Ok(SyslogParser {
            keys: Keys {
                facility: keys.intern("facility"),
                severity: keys.intern("severity"),
                hostname: keys.intern("hostname"),
                appname: keys.intern("appname"),
                procid: keys.intern("procid"),
                msgid: keys.intern("msgid"),
                structured_data: keys.intern("structured_data"),
            },
            rfc3339: TimestampParser::new("rfc3339", zone)?,
            bsd: TimestampParser::new("%b %e %H:%M:%S.%f", zone)?,
            year_span: (0, 0),
            fixed_now: None,
            now: 0,
            names: [None; 32],
            sd: Vec::new(),
        })
    }

    /// Takes `now` (seconds since the epoch) as the time, instead of the clock: for tests
    /// of the year inference.
    pub fn fix_now(&mut self, now: i64) {
        self.fixed_now = Some(now);
    }

    /// The time of an RFC 3164 stamp, its year inferred ([module docs](self)).
    fn bsd_time(&mut self, stamp: &[u8]) -> Result<i64, ParseFailure> {
        let now = self.now;
        if now < self.year_span.0 || now >= self.year_span.1 {
            let year = jiff::Timestamp::from_second(now)
                .map_or(1970, |t| i32::from(jiff::tz::TimeZone::UTC.to_datetime(t).year()));
            self.bsd.set_year(year);
            self.year_span = (
                super::time::days_from_civil(year, 1, 1) * 86_400,
                super::time::days_from_civil(year + 1, 1, 1) * 86_400,
            );
        }
        let year = self.bsd.year();
        let now = now.saturating_mul(1_000_000_000);
        let t = self.bsd.nanos(stamp, None)?;
        if t - now > AHEAD {
            self.bsd.nanos(stamp, Some(year - 1))
        } else if now - t > BEHIND {
            self.bsd.nanos(stamp, Some(year + 1))
        } else {
            Ok(t)
        }
    }
}

impl FieldParse for SyslogParser {
    fn begin_batch(&mut self) {
        self.names = [None; 32];
        self.now = self.fixed_now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    }

    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        let b = bufs.bytes(input);
        let mut end = b.len();
        while end > 0 && matches!(b[end - 1], b'\n' | b'\r' | 0) {
            end -= 1;
        }
        let b = &b[..end];
        let m = scan(b).map_err(ParseFailure::fixed)?;
        out.timestamp = match &m.stamp {
            None => None,
            Some((r, Stamp::Rfc3339)) => Some(self.rfc3339.nanos(&b[r.clone()], None)?),
            Some((r, Stamp::Bsd)) => Some(self.bsd_time(&b[r.clone()])?),
        };
        if let Some(r) = &m.structured_data {
            self.sd.clear();
            sd_json(&b[r.clone()], &mut self.sd).map_err(ParseFailure::fixed)?;
        }
        let k = &self.keys;
        let span = |r: &Range<usize>| Value::Str(input.slice(r.start, r.end - r.start));
        out.push(Key::MESSAGE, span(&m.message));
        let (facility, severity) = (usize::from(m.pri >> 3), usize::from(m.pri & 7));
        let facility = *self.names[facility].get_or_insert_with(|| bufs.push(FACILITIES[facility].as_bytes()));
        let severity = *self.names[24 + severity].get_or_insert_with(|| bufs.push(SEVERITIES[severity].as_bytes()));
        out.push(k.facility, Value::Str(facility));
        out.push(k.severity, Value::Str(severity));
        for (key, range) in [
            (k.hostname, &m.hostname),
            (k.appname, &m.appname),
            (k.procid, &m.procid),
            (k.msgid, &m.msgid),
        ] {
            if let Some(r) = range {
                out.push(key, span(r));
            }
        }
        if m.structured_data.is_some() {
            out.push(k.structured_data, Value::Json(bufs.push(&self.sd)));
        }
        Ok(())
    }

    fn distinct_keys(&self) -> bool {
        true
    }
}

/// Finds the parts of one message (trailing line ends already removed).
fn scan(b: &[u8]) -> Result<Scanned, &'static str> {
    let (pri, at) = pri(b)?;
    if b[at..].starts_with(b"1 ") {
        rfc5424(b, pri, at + 2)
    } else {
        Ok(rfc3164(b, pri, at))
    }
}

/// PRI and where the rest starts.
fn pri(b: &[u8]) -> Result<(u8, usize), &'static str> {
    if b.first() != Some(&b'<') {
        return Err("no <PRI> at the start: not a syslog message");
    }
    let digits = b[1..].iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || b.get(1 + digits) != Some(&b'>') {
        return Err("<PRI> is not 1 to 3 digits closed by `>`");
    }
    let value = b[1..1 + digits].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    if value > 191 {
        return Err("PRI is over 191");
    }
    Ok((value as u8, digits + 2))
}

/// The header of RFC 5424 from `at` (after the version).
fn rfc5424(b: &[u8], pri: u8, mut at: usize) -> Result<Scanned, &'static str> {
    const CUT: &str = "RFC 5424 header cut short (expected TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA)";
    let mut header = [0..0, 0..0, 0..0, 0..0, 0..0];
    for part in &mut header {
        let len = memchr::memchr(b' ', &b[at..]).ok_or(CUT)?;
        if len == 0 {
            return Err("RFC 5424 header has an empty field (two spaces in a row)");
        }
        *part = at..at + len;
        at += len + 1;
    }
    let nil = |r: &Range<usize>| (&b[r.clone()] != b"-").then(|| r.clone());
    let [stamp, hostname, appname, procid, msgid] = header;
    let structured_data = match b.get(at) {
        None => return Err(CUT),
        Some(b'-') => {
            at += 1;
            None
        }
        Some(b'[') => {
            let start = at;
            at = sd_end(b, at)?;
            Some(start..at)
        }
        Some(_) => return Err("RFC 5424 STRUCTURED-DATA is neither `-` nor `[...]`"),
    };
    let message = match b.get(at) {
        None => at..at,
        Some(b' ') => {
            let start = if b[at + 1..].starts_with(b"\xEF\xBB\xBF") {
                at + 4
            } else {
                at + 1
            };
            start..b.len()
        }
        Some(_) => return Err("RFC 5424 STRUCTURED-DATA is not followed by a space"),
    };
    Ok(Scanned {
        pri,
        stamp: nil(&stamp).map(|r| (r, Stamp::Rfc3339)),
        hostname: nil(&hostname),
        appname: nil(&appname),
        procid: nil(&procid),
        msgid: nil(&msgid),
        structured_data,
        message,
    })
}

/// Where the structured data starting at `at` (a `[`) ends: after its last `]`.
fn sd_end(b: &[u8], mut at: usize) -> Result<usize, &'static str> {
    const OPEN: &str = "RFC 5424 STRUCTURED-DATA does not close (`]` missing)";
    while b.get(at) == Some(&b'[') {
        let mut quoted = false;
        at += 1;
        loop {
            match b.get(at) {
                None => return Err(OPEN),
                Some(b'\\') if quoted => at += 1,
                Some(b'"') => quoted = !quoted,
                Some(b']') if !quoted => break,
                Some(_) => {}
            }
            at += 1;
        }
        at += 1;
    }
    Ok(at)
}

/// Structured data (`[id name="value" ...][id2 ...]`) as a JSON object of objects, into
/// `out`.
fn sd_json(b: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    const BAD: &str = "RFC 5424 STRUCTURED-DATA element is not `[ID name=\"value\" ...]`";
    out.push(b'{');
    let mut at = 0;
    while at < b.len() {
        // `[` ID
        at += 1;
        let id = name(b, &mut at);
        if id.is_empty() {
            return Err(BAD);
        }
        if out.len() > 1 {
            out.push(b',');
        }
        json_string(id, out);
        out.extend_from_slice(b":{");
        let mut first = true;
        while b.get(at) == Some(&b' ') {
            at += 1;
            let param = name(b, &mut at);
            if param.is_empty() || b.get(at) != Some(&b'=') || b.get(at + 1) != Some(&b'"') {
                return Err(BAD);
            }
            at += 2;
            if !first {
                out.push(b',');
            }
            first = false;
            json_string(param, out);
            out.push(b':');
            out.push(b'"');
            loop {
                // A run of bytes JSON takes as they are, then the byte that ended it.
                let run = b[at..].iter().take_while(|&&c| !needs_care(c)).count();
                out.extend_from_slice(&b[at..at + run]);
                at += run;
                match b.get(at) {
                    None => return Err(BAD),
                    Some(b'"') => break,
                    // RFC 5424 escapes `"`, `\` and `]`; any other `\` is itself.
                    Some(b'\\') if matches!(b.get(at + 1), Some(b'"' | b'\\' | b']')) => {
                        at += 1;
                        json_byte(b[at], out);
                    }
                    Some(&c) => json_byte(c, out),
                }
                at += 1;
            }
            out.push(b'"');
            at += 1;
        }
        if b.get(at) != Some(&b']') {
            return Err(BAD);
        }
        at += 1;
        out.push(b'}');
    }
    out.push(b'}');
    if std::str::from_utf8(out).is_err() {
        let fixed = String::from_utf8_lossy(out).into_owned();
        *out = fixed.into_bytes();
    }
    Ok(())
}

/// An SD-ID or PARAM-NAME: bytes up to ` `, `=`, `]` or `"`.
fn name<'a>(b: &'a [u8], at: &mut usize) -> &'a [u8] {
    let start = *at;
    while let Some(&c) = b.get(*at) {
        if matches!(c, b' ' | b'=' | b']' | b'"') {
            break;
        }
        *at += 1;
    }
    &b[start..*at]
}

fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    if s.iter().any(|&c| needs_care(c)) {
        for &c in s {
            json_byte(c, out);
        }
    } else {
        out.extend_from_slice(s);
    }
    out.push(b'"');
}

/// `"`, `\\` and control bytes: what a JSON string cannot hold as it is (and the value
/// scanner must look at).
fn needs_care(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// One byte of a JSON string's content, escaped when it must be.
fn json_byte(c: u8, out: &mut Vec<u8>) {
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        c if c < 0x20 => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        }
        c => out.push(c),
    }
}

/// An RFC 3164 message from `at` (after PRI): an optional time, a host name after it, an
/// optional `TAG[pid]:`, the rest.
fn rfc3164(b: &[u8], pri: u8, mut at: usize) -> Scanned {
    let mut m = Scanned {
        pri,
        ..Scanned::default()
    };
    if let Some((end, kind)) = bsd_stamp(b, at).map(|e| (e, Stamp::Bsd)).or_else(|| iso_stamp(b, at)) {
        m.stamp = Some((at..end, kind));
        at = end + usize::from(b.get(end) == Some(&b' '));
        // The host: a word followed by a space that is not the tag.
        let word = memchr::memchr(b' ', &b[at..]);
        if let Some(len) = word
            && len > 0
            && !b[at..at + len].ends_with(b":")
            && !b[at..at + len].contains(&b'[')
        {
            m.hostname = Some(at..at + len);
            at += len + 1;
        }
    }
    let len = memchr::memchr(b' ', &b[at..]).unwrap_or(b.len() - at);
    let word = &b[at..at + len];
    let tag = if let Some(tag) = word.strip_suffix(b":") {
        Some(tag)
    } else if word.ends_with(b"]") {
        Some(word)
    } else {
        None
    };
    if let Some(tag) = tag.filter(|t| !t.is_empty() && !t.contains(&b':') && t.len() <= 128) {
        match tag.iter().position(|&c| c == b'[') {
            Some(open) if tag.ends_with(b"]") && open > 0 => {
                m.appname = Some(at..at + open);
                m.procid = Some(at + open + 1..at + tag.len() - 1);
            }
            Some(_) => {}
            None => m.appname = Some(at..at + tag.len()),
        }
        if m.appname.is_some() {
            at = (at + len + 1).min(b.len());
        }
    }
    m.message = at..b.len();
    m
}

/// The end of a `Mmm dd hh:mm:ss[.frac]` time at `at` (day space-padded or not).
fn bsd_stamp(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..)?;
    if s.len() < 14 || !s[..3].iter().all(u8::is_ascii_alphabetic) || s[3] != b' ' {
        return None;
    }
    let mut i = 4 + usize::from(s[4] == b' ');
    let day = s[i..].iter().take(3).take_while(|c| c.is_ascii_digit()).count();
    if !(1..=2).contains(&day) || s.get(i + day) != Some(&b' ') {
        return None;
    }
    i += day + 1;
    let clock = s.get(i..i + 8)?;
    let shape = clock.iter().enumerate().all(|(j, c)| {
        if j == 2 || j == 5 {
            *c == b':'
        } else {
            c.is_ascii_digit()
        }
    });
    if !shape {
        return None;
    }
    i += 8;
    if s.get(i) == Some(&b'.') {
        let frac = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac > 0 {
            i += 1 + frac;
        }
    }
    matches!(s.get(i), None | Some(b' ')).then_some(at + i)
}

/// The end of an RFC 3339 time at `at` (`2026-12-06T...` up to a space).
fn iso_stamp(b: &[u8], at: usize) -> Option<(usize, Stamp)> {
    let s = b.get(at..)?;
    let date = s.len() > 10 && s[..4].iter().all(u8::is_ascii_digit) && s[4] == b'-' && s[10] == b'T';
    if !date {
        return None;
    }
    let len = memchr::memchr(b' ', s).unwrap_or(s.len());
    Some((at + len, Stamp::Rfc3339))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Batch;
    use crate::pipeline::Processor;

    /// 2026-12-06T12:00:00Z.
    const NOW: i64 = 1_796_558_400;

    fn decode_at(now: i64, zone: &str, lines: &[&str]) -> (Vec<String>, Vec<Option<i64>>, u64) {
        let keys = KeyTable::new();
        let mut parser = SyslogParser::new(&keys, Some(zone)).unwrap();
        parser.fix_now(now);
        let mut p = FieldParser::new(
            "syslog",
            parser,
            Common::new(&keys, "message", false, OnFailure::Keep, Some("_error")).unwrap(),
        );
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let (mut batches, _) =
            crate::line::read_all(text.as_bytes(), 1 << 16, &crate::line::LineOptions::default()).unwrap();
        let mut batch: Batch = batches.remove(0);
        p.process(&mut batch);
        let rendered = batch
            .live()
            .map(|e| {
                let fields: Vec<String> = e
                    .fields()
                    .iter()
                    .map(|f| {
                        let (Value::Str(s) | Value::Json(s)) = f.value else {
                            panic!("{:?}", f.value)
                        };
                        format!("{}={}", keys.name(f.key), String::from_utf8_lossy(batch.bytes(s)))
                    })
                    .collect();
                fields.join(" ")
            })
            .collect();
        let times = batch.live().map(|e| e.timestamp).collect();
        (rendered, times, p.take_failures())
    }

    fn decode(lines: &[&str]) -> (Vec<String>, Vec<Option<i64>>, u64) {
        decode_at(NOW, "UTC", lines)
    }

    fn rfc3339(s: &str) -> i64 {
        let t: jiff::Timestamp = s.parse().unwrap();
        t.as_nanosecond() as i64
    }

    #[test]
    fn rfc5424_fields_structured_data_and_time() {
        let (events, times, failures) = decode(&[
            r#"<165>1 2026-12-06T10:00:01.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Appli\"cat\]ion"][examplePriority@32473 class="high"] An application event"#,
            "<34>1 2026-12-06T10:00:02+01:00 - su - - - \u{feff}'su root' failed",
            "<13>1 - host app - - -",
        ]);
        assert_eq!(failures, 0);
        assert_eq!(
            events[0],
            r#"message=An application event facility=local4 severity=notice hostname=mymachine.example.com appname=evntslog procid=1234 msgid=ID47 structured_data={"exampleSDID@32473":{"iut":"3","eventSource":"Appli\"cat]ion"},"examplePriority@32473":{"class":"high"}}"#
        );
        assert_eq!(
            events[1],
            "message='su root' failed facility=auth severity=crit appname=su"
        );
        assert_eq!(
            events[2],
            "message= facility=user severity=notice hostname=host appname=app"
        );
        assert_eq!(times[0], Some(rfc3339("2026-12-06T10:00:01.003Z")));
        assert_eq!(times[1], Some(rfc3339("2026-12-06T09:00:02Z")));
        assert_eq!(times[2], None);
    }

    #[test]
    fn structured_data_becomes_a_json_object() {
        let mut out = Vec::new();
        let sd = br#"[exampleSDID@32473 iut="3" eventSource="Appli\"cat\]ion" x="a\b"][p@1][q r="""#;
        assert!(sd_json(&sd[..sd.len()], &mut out).is_err());
        out.clear();
        let sd = br#"[exampleSDID@32473 iut="3" eventSource="Appli\"cat\]ion" x="a\b"][p@1]"#;
        sd_json(sd, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Appli\"cat]ion", "x": "a\\b"}, "p@1": {}})
        );
    }

    #[test]
    fn rfc3164_tags_hosts_and_python_style_messages() {
        let (events, times, failures) = decode(&[
            "<38>Dec  6 10:00:01 web-1 sshd[4242]: Failed password for root",
            "<13>Dec 16 10:00:01.250 web-1 CRON: (root) CMD (backup)",
            "<13>Dec 6 10:00:01 kernel: [  1.0] eth0 up",
            "<14>myapp: hello from python\0",
            "<14>just a message",
            "<30>2026-12-06T10:00:01.5+00:00 host app[7]: rsyslog forwarding format",
            "<13>Dec  6 10:00:01 host a message: with a colon later",
        ]);
        assert_eq!(failures, 0);
        assert_eq!(
            events,
            [
                "message=Failed password for root facility=auth severity=info hostname=web-1 appname=sshd procid=4242",
                "message=(root) CMD (backup) facility=user severity=notice hostname=web-1 appname=CRON",
                "message=[  1.0] eth0 up facility=user severity=notice appname=kernel",
                "message=hello from python facility=user severity=info appname=myapp",
                "message=just a message facility=user severity=info",
                "message=rsyslog forwarding format facility=daemon severity=info hostname=host appname=app procid=7",
                "message=a message: with a colon later facility=user severity=notice hostname=host",
            ]
        );
        assert_eq!(times[0], Some(rfc3339("2026-12-06T10:00:01Z")));
        assert_eq!(times[1], Some(rfc3339("2026-12-16T10:00:01.25Z")));
        assert_eq!(times[3], None);
        assert_eq!(times[5], Some(rfc3339("2026-12-06T10:00:01.5Z")));
    }

    #[test]
    fn the_year_of_rfc3164_times_is_the_one_nearest_to_now() {
        let jan_1 = rfc3339("2027-01-01T00:00:30Z") / 1_000_000_000;
        let (_, times, _) = decode_at(
            jan_1,
            "UTC",
            &["<13>Dec 31 23:59:59 h a: late", "<13>Jan  1 00:00:10 h a: on time"],
        );
        assert_eq!(times[0], Some(rfc3339("2026-12-31T23:59:59Z")));
        assert_eq!(times[1], Some(rfc3339("2027-01-01T00:00:10Z")));
        let dec_31 = rfc3339("2026-12-31T23:59:00Z") / 1_000_000_000;
        let (_, times, _) = decode_at(
            dec_31,
            "UTC",
            &["<13>Jan  1 00:00:05 h a: clock ahead", "<13>Jun  1 00:00:05 h a: old"],
        );
        assert_eq!(times[0], Some(rfc3339("2027-01-01T00:00:05Z")));
        assert_eq!(times[1], Some(rfc3339("2026-06-01T00:00:05Z")));
        // The same stamp again (the cached second) gets the same year.
        let (_, times, _) = decode_at(
            jan_1,
            "UTC",
            &["<13>Dec 31 23:59:59 h a: x", "<13>Dec 31 23:59:59 h a: y"],
        );
        assert_eq!(times[0], times[1]);
    }

    #[test]
    fn rfc3164_times_are_in_the_configured_zone() {
        let (_, times, _) = decode_at(
            NOW,
            "Europe/Paris",
            &["<13>Dec  6 10:00:01 h a: x", "<13>Jul  6 10:00:01 h a: x"],
        );
        assert_eq!(times[0], Some(rfc3339("2026-12-06T09:00:01Z")));
        assert_eq!(times[1], Some(rfc3339("2026-07-06T08:00:01Z")));
        let (_, times, _) = decode_at(NOW, "-05:00", &["<13>Dec  6 10:00:01 h a: x"]);
        assert_eq!(times[0], Some(rfc3339("2026-12-06T15:00:01Z")));
    }

    #[test]
    fn malformed_messages_are_kept_with_the_reason_and_counted() {
        let lines = [
            "no pri at all",
            "<1234>too many digits",
            "<192>1 2026-12-06T10:00:01Z h a - - - pri too high",
            "<13>1 2026-12-06T10:00:01Z h a",
            "<13>1 2026-13-06T10:00:01Z h a - - - bad month",
            "<13>1 2026-12-06T10:00:01Z h a - - [open x=\"1\" msg",
            "<13>Feb 30 10:00:01 h a: no such day",
        ];
        let (events, _, failures) = decode(&lines);
        assert_eq!(failures, lines.len() as u64);
        let reasons = [
            "no <PRI> at the start",
            "<PRI> is not 1 to 3 digits",
            "PRI is over 191",
            "RFC 5424 header cut short",
            "does not match `rfc3339`",
            "STRUCTURED-DATA does not close",
            "day out of range",
        ];
        for ((event, line), reason) in events.iter().zip(lines).zip(reasons) {
            assert!(event.starts_with(&format!("message={line} _error=syslog: ")), "{event}");
            assert!(event.contains(reason), "{event} lacks {reason}");
        }
    }
}
