//! `parse_timestamp`: reads a time from one field and makes it the event time.
//!
//! The event gets `timestamp` (nanoseconds since the Unix epoch, UTC, so years 1677 to
//! 2262; others fail as out of range); no field is added, and the source field (default
//! `time`) is removed unless `keep_source`.
//!
//! # Formats
//!
//! `format` is either a name or a strftime-style pattern. Names:
//!
//! | name | accepts |
//! |---|---|
//! | `rfc3339` | `2026-11-25T10:00:01.5+01:00`; also a space (or `t`) instead of `T`, any number of fraction digits (past 9 they are ignored), `Z`, `+hh:mm`, `+hhmm`, or no offset at all (then `timezone` applies) |
//! | `epoch` | seconds since 1970, optionally negative, with an optional `.` fraction of 1 to 9 digits |
//! | `epoch_ms`, `epoch_us`, `epoch_ns` | integer milli-, micro-, nanoseconds since 1970 |
//!
//! Directives of a pattern (any other byte, UTF-8 included, must appear as written):
//!
//! | directive | reads |
//! |---|---|
//! | `%Y` | year, 4 digits |
//! | `%m` | month, 1 or 2 digits |
//! | `%b` (also `%B`, `%h`) | English month name, abbreviated or full, any case |
//! | `%d` | day of the month, 1 or 2 digits |
//! | `%e` | day of the month, space-padded or not (` 5`, `5`, `05`, `15`) |
//! | `%j` | day of the year, 1 to 3 digits (instead of a month and day) |
//! | `%H`, `%M`, `%S` | hour, minute, second, 1 or 2 digits; second 60 (a leap second) reads as 59 |
//! | `%f` | fraction of a second, 1 to 9 digits |
//! | `.%f`, `,%f` | an optional fraction: `.` or `,` then 1 to 9 digits, or nothing |
//! | `%z` | UTC offset: `Z`, `+hh`, `+hhmm`, `+hh:mm` (or `-`) |
//! | `%Z` | zone name: `UTC`, `GMT`, `Z` or an IANA name such as `Europe/Paris` |
//! | `%s` | epoch seconds as for `epoch` (cannot be combined with date or time directives) |
//! | `%%` | a `%` |
//!
//! Parsing is strict: the whole value must match, so trailing text is a failure (as is an
//! impossible date such as `2026-02-30`). A pattern needs a date (`%d`/`%e` with `%m`/`%b`,
//! or `%j`); fields it lacks default to midnight. Patterns without `%Y` (syslog's
//! `%b %e %H:%M:%S`) take the `year` option, or the current UTC year when the processor
//! was built; no guess is made around New Year.
//!
//! # Time zones
//!
//! An offset in the value (`%z`, or `rfc3339`'s) wins; else a zone name in the value
//! (`%Z`); else the `timezone` option: an IANA name, a fixed offset such as `+05:30` or
//! `-0800`, `local` (the machine's zone: `TZ`, else `/etc/localtime`), or UTC by default. Epoch formats are UTC by definition. A civil time in an
//! IANA zone is converted with jiff; a time that falls in a DST gap moves forward by the
//! gap, and one that happens twice in a fold takes the earlier instant (jiff's
//! "compatible" rule).
//!
//! # The second cache
//!
//! Logs repeat the same second many times. For calendar formats the parser keeps the last
//! value that resolved, with its fraction digits cut out, and its epoch second. A value
//! that is the same bytes around a run of fraction digits in the same place is that second
//! plus the new fraction: one comparison, no calendar, no time-zone lookup. This gives
//! exactly what a full parse would, because parsing is left to right without backtracking,
//! a fraction reads every digit in its run (so the byte after it is never a digit), and
//! nothing but the fraction depends on those digits; a test checks this against full
//! parses of randomly edited values. (The one format where an item before the fraction
//! reads into it, `%z` right before a bare `%f`, runs without the cache.) Any other value
//! is parsed in full and, if it resolves, replaces the cached one. Nothing is allocated
//! per event once the cache's buffer has grown to the length of a value; failures
//! allocate their message.

use std::borrow::Cow;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::{Common, FieldParse, FieldParser, OnFailure, ParseFailure, Parsed};
use crate::model::{Bufs, KeyTable, Span};
use crate::processors::BuildError;

/// `parse_timestamp`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParseTimestampConfig {
    /// The field holding the time (default `time`).
    #[serde(default = "default_time_field")]
    pub field: String,
    /// A strftime-style pattern (`%d/%b/%Y:%H:%M:%S %z`) or a format name: `rfc3339`,
    /// `epoch`, `epoch_ms`, `epoch_us`, `epoch_ns`. See the [module docs](self).
    pub format: String,
    /// The zone of values that carry no offset or zone name: an IANA name
    /// (`Europe/Paris`), a fixed offset (`+05:30`, `-0800`) or `local` (the machine's
    /// zone). Default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The year of values whose format has no `%Y` (default: the current UTC year when
    /// the processor is built).
    #[serde(default)]
    pub year: Option<i32>,
    /// Keep the source field on success.
    #[serde(default)]
    pub keep_source: bool,
    /// What to do when the value does not match the format.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Field that receives the failure reason.
    #[serde(default)]
    pub error_field: Option<String>,
}

fn default_time_field() -> String {
    "time".to_string()
}

impl ParseTimestampConfig {
    /// An example of this component's config.
    pub const EXAMPLE: &'static str = "field: time\nformat: \"%Y-%m-%d %H:%M:%S.%f\"\ntimezone: Europe/Paris\n";

    /// Compiles the format and resolves the time zone and the keys.
    pub fn build(&self, keys: &KeyTable) -> Result<FieldParser<TimestampParser>, BuildError> {
        let common = Common::new(
            keys,
            &self.field,
            self.keep_source,
            self.on_failure,
            self.error_field.as_deref(),
        )?;
        Ok(FieldParser::new("parse_timestamp", self.compile()?, common))
    }

    /// The parser without the shared settings.
    fn compile(&self) -> Result<TimestampParser, BuildError> {
        let format = Format::compile(&self.format)?;
        if format.epoch && self.timezone.is_some() {
            return Err(BuildError(
                "`timezone` does not apply to epoch formats (they are UTC)".into(),
            ));
        }
        let zone = match &self.timezone {
            Some(name) => Zone::parse(name)?,
            None => Zone::Fixed(0),
        };
        let year = match self.year {
            Some(_) if format.epoch => {
                return Err(BuildError("`year` does not apply to epoch formats".into()));
            }
            Some(_) if format.has_year => {
                return Err(BuildError(format!(
                    "`year` only applies to formats without `%Y`, and `{}` has one",
                    self.format
                )));
            }
            Some(year) if !(-9999..=9999).contains(&year) => {
                return Err(BuildError(format!("`year` {year} is out of range (-9999 to 9999)")));
            }
            Some(year) => year,
            None => i32::from(TimeZone::UTC.to_datetime(jiff::Timestamp::now()).year()),
        };
        Ok(TimestampParser {
            format,
            zone,
            year,
            cache: SecondCache::default(),
            named: (Vec::new(), TimeZone::UTC),
            misses: 0,
        })
    }
}

/// Runtime of [`ParseTimestampConfig`]: the compiled format, the default zone and year,
/// and the second cache (see the [module docs](self)). One per worker.
#[derive(Debug)]
pub struct TimestampParser {
    format: Format,
    zone: Zone,
    /// The year of formats without `%Y`.
    year: i32,
    cache: SecondCache,
    /// The last zone name read by `%Z` and its zone, so a repeated name is not looked up.
    named: (Vec<u8>, TimeZone),
    /// Values that missed the cache and went through the calendar (for tests).
    misses: u64,
}

impl FieldParse for TimestampParser {
    fn parse(&mut self, input: Span, bufs: &mut Bufs<'_>, out: &mut Parsed) -> Result<(), ParseFailure> {
        let bytes = bufs.bytes(input);
        match self.timestamp(bytes) {
            Ok(ts) => {
                out.timestamp = Some(ts);
                Ok(())
            }
            Err(why) => Err(self.failure(bytes, why)),
        }
    }
}

impl TimestampParser {
    /// A parser of `format` whose values without an offset are in `timezone` (UTC when
    /// `None`), for parsers that find a time inside a larger value (the syslog decoder).
    pub fn new(format: &str, timezone: Option<&str>) -> Result<TimestampParser, BuildError> {
        ParseTimestampConfig {
            field: default_time_field(),
            format: format.into(),
            timezone: timezone.map(Into::into),
            year: None,
            keep_source: false,
            on_failure: OnFailure::Keep,
            error_field: None,
        }
        .compile()
    }

    /// Nanoseconds since the epoch of `value`. A format without `%Y` reads it in `year`
    /// when given (a full parse, past the cache), else in the parser's year.
    pub fn nanos(&mut self, value: &[u8], year: Option<i32>) -> Result<i64, ParseFailure> {
        let result = match year {
            None => self.timestamp(value),
            Some(year) => {
                let saved = std::mem::replace(&mut self.year, year);
                let result = self.uncached(value);
                self.year = saved;
                result
            }
        };
        result.map_err(|why| self.failure(value, why))
    }

    /// The year of values whose format has no `%Y`.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// Sets [`Self::year`], forgetting the cached second (it was of the old year).
    pub fn set_year(&mut self, year: i32) {
        if year != self.year {
            self.year = year;
            self.cache = SecondCache::default();
        }
    }

    /// `b` parsed in full, without the cache.
    fn uncached(&mut self, b: &[u8]) -> Result<i64, Why> {
        if b.is_empty() {
            return Err(Why::Empty);
        }
        let fields = self.format.scan(b)?;
        if let Some(nanos) = fields.epoch {
            return Ok(nanos);
        }
        let secs = self.seconds(b, &fields)?;
        join(secs, fields.nanos)
    }

    /// Nanoseconds since the epoch of `b`.
    fn timestamp(&mut self, b: &[u8]) -> Result<i64, Why> {
        if b.is_empty() {
            return Err(Why::Empty);
        }
        if self.format.cacheable
            && let Some((secs, nanos)) = self.cache.get(b, self.format.frac_max)
        {
            return join(secs, nanos);
        }
        let fields = self.format.scan(b)?;
        if let Some(nanos) = fields.epoch {
            return Ok(nanos);
        }
        let secs = self.seconds(b, &fields)?;
        self.misses += 1;
        if self.format.cacheable {
            let minute = match fields.second_at {
                Some(at) if self.format.minute_cacheable => {
                    self.minute_start(b, &fields, secs).map(|start| (at, start))
                }
                _ => None,
            };
            self.cache.put(b, fields.frac, minute, secs);
        }
        join(secs, fields.nanos)
    }

    /// The epoch second of second 0 of the minute of `f` (whose own is `secs`), when every
    /// second of that minute is that plus its number: true unless the zone's offset
    /// changes inside the minute, which second 59 shows.
    fn minute_start(&mut self, b: &[u8], f: &Fields, secs: i64) -> Option<i64> {
        let start = self.seconds(b, &Fields { second: 0, ..*f }).ok()?;
        let last = self.seconds(b, &Fields { second: 59, ..*f }).ok()?;
        (last - start == 59 && secs - start == i64::from(f.second.min(59))).then_some(start)
    }

    /// The epoch second of the civil time in `f`: validation, calendar and time zone.
    fn seconds(&mut self, b: &[u8], f: &Fields) -> Result<i64, Why> {
        let year = f.year.unwrap_or(self.year);
        let (month, day) = match f.yday {
            Some(yday) => month_day(year, yday).ok_or(Why::Detail("day of year out of range"))?,
            None => {
                if !(1..=12).contains(&f.month) {
                    return Err(Why::Detail("month out of range"));
                }
                if f.day < 1 || f.day > days_in_month(year, f.month) {
                    return Err(Why::Detail("day out of range"));
                }
                (f.month, f.day)
            }
        };
        if f.hour > 23 {
            return Err(Why::Detail("hour out of range"));
        }
        if f.minute > 59 {
            return Err(Why::Detail("minute out of range"));
        }
        if f.second > 60 {
            return Err(Why::Detail("second out of range"));
        }
        let civil = Civil {
            year,
            month,
            day,
            hour: f.hour,
            minute: f.minute,
            second: f.second.min(59),
        };
        let local = civil.local_seconds();
        if let Some((start, end)) = f.zone {
            let name = &b[start..end];
            if !is_utc_name(name) {
                let tz = self.named_zone(name)?;
                if f.offset.is_none() {
                    return civil.in_zone(tz);
                }
            } else if f.offset.is_none() {
                return Ok(local);
            }
        }
        if let Some(offset) = f.offset {
            return Ok(local - i64::from(offset));
        }
        match &self.zone {
            Zone::Fixed(offset) => Ok(local - i64::from(*offset)),
            Zone::Tz(tz) => civil.in_zone(tz),
        }
    }

    /// The IANA zone `name`, looked up unless it was the last one.
    fn named_zone(&mut self, name: &[u8]) -> Result<&TimeZone, Why> {
        let (last, tz) = &mut self.named;
        if last.as_slice() != name {
            *tz = std::str::from_utf8(name)
                .ok()
                .and_then(|name| TimeZone::get(name).ok())
                .ok_or(Why::Detail("unknown time zone"))?;
            last.clear();
            last.extend_from_slice(name);
        }
        Ok(tz)
    }

    fn failure(&self, b: &[u8], why: Why) -> ParseFailure {
        let shown = excerpt(b);
        let format = &self.format.text;
        let reason = match why {
            Why::Empty => return ParseFailure::fixed("empty value"),
            Why::OutOfRange => format!("`{shown}` is out of range"),
            Why::Detail(detail) => format!("`{shown}` does not match `{format}`: {detail}"),
            Why::Literal(b' ') => format!("`{shown}` does not match `{format}`: expected a space"),
            Why::Literal(c) if c.is_ascii_graphic() => {
                format!("`{shown}` does not match `{format}`: expected `{}`", c as char)
            }
            Why::Literal(_) => format!("`{shown}` does not match `{format}`"),
        };
        ParseFailure(Cow::Owned(reason))
    }
}

/// Why a value did not parse; turned into a message only on failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Empty,
    /// The value does not match, for this reason.
    Detail(&'static str),
    /// The format's literal byte was expected.
    Literal(u8),
    /// The time is outside what nanoseconds in an `i64` hold (years 1677 to 2262).
    OutOfRange,
}

/// At most 64 bytes of the value, for messages.
fn excerpt(b: &[u8]) -> Cow<'_, str> {
    const MAX: usize = 64;
    if b.len() <= MAX {
        String::from_utf8_lossy(b)
    } else {
        Cow::Owned(format!("{}…", String::from_utf8_lossy(&b[..MAX])))
    }
}

fn join(secs: i64, nanos: u32) -> Result<i64, Why> {
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(nanos)))
        .ok_or(Why::OutOfRange)
}

/// The zone of values without an offset or zone name.
#[derive(Debug)]
enum Zone {
    /// Seconds east of UTC (UTC itself, a fixed offset, or an IANA zone that never
    /// changes offset).
    Fixed(i32),
    /// An IANA zone with transitions.
    Tz(TimeZone),
}

impl Zone {
    fn parse(name: &str) -> Result<Zone, BuildError> {
        let b = name.as_bytes();
        if matches!(b.first(), Some(b'+' | b'-')) {
            let mut i = 0;
            return match offset(b, &mut i) {
                Some(seconds) if i == b.len() => Ok(Zone::Fixed(seconds)),
                _ => Err(BuildError(format!(
                    "invalid UTC offset `{name}` (expected +hh:mm or +hhmm)"
                ))),
            };
        }
        if is_utc_name(b) {
            return Ok(Zone::Fixed(0));
        }
        let tz = if name == "local" {
            TimeZone::system()
        } else {
            TimeZone::get(name).map_err(|_| BuildError(format!("unknown time zone `{name}`")))?
        };
        Ok(match tz.to_fixed_offset() {
            Ok(offset) => Zone::Fixed(offset.seconds()),
            Err(_) => Zone::Tz(tz),
        })
    }
}

fn is_utc_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"UTC") || name.eq_ignore_ascii_case(b"GMT") || name == b"Z"
}

/// One step of a compiled format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Year,
    Month,
    MonthName,
    Day,
    /// `%e`: an optional space, then the day.
    DaySpace,
    DayOfYear,
    Hour,
    Minute,
    Second,
    /// `%f`: required digits.
    Fraction,
    /// `.%f` or `,%f`: `.` or `,` then digits, or nothing.
    OptFraction,
    Offset,
    /// `rfc3339`'s offset, which may be missing.
    OptOffset,
    ZoneName,
    /// `%s` and `epoch`.
    EpochSeconds,
    /// `epoch_ms`, `epoch_us`, `epoch_ns`: an integer times this many nanoseconds.
    EpochInt(i64),
    /// `rfc3339`'s `T`, `t` or space.
    DateTimeSep,
    Literal(u8),
}

impl Item {
    /// The part of the time the item sets (a bit of [`slot`]), or 0.
    fn slot(self) -> u16 {
        match self {
            Item::Year => slot::YEAR,
            Item::Month | Item::MonthName => slot::MONTH,
            Item::Day | Item::DaySpace => slot::DAY,
            Item::DayOfYear => slot::YDAY,
            Item::Hour => slot::HOUR,
            Item::Minute => slot::MINUTE,
            Item::Second => slot::SECOND,
            Item::Fraction | Item::OptFraction => slot::FRACTION,
            Item::Offset | Item::OptOffset => slot::OFFSET,
            Item::ZoneName => slot::ZONE,
            Item::EpochSeconds | Item::EpochInt(_) => slot::EPOCH,
            Item::DateTimeSep | Item::Literal(_) => 0,
        }
    }
}

/// The parts of a time a format can set, as bits.
mod slot {
    pub const YEAR: u16 = 1;
    pub const MONTH: u16 = 1 << 1;
    pub const DAY: u16 = 1 << 2;
    pub const YDAY: u16 = 1 << 3;
    pub const HOUR: u16 = 1 << 4;
    pub const MINUTE: u16 = 1 << 5;
    pub const SECOND: u16 = 1 << 6;
    pub const FRACTION: u16 = 1 << 7;
    pub const OFFSET: u16 = 1 << 8;
    pub const ZONE: u16 = 1 << 9;
    pub const EPOCH: u16 = 1 << 10;

    /// The name of the part, for messages.
    pub fn name(slot: u16) -> &'static str {
        match slot {
            YEAR => "year",
            MONTH => "month",
            DAY => "day",
            YDAY => "day of year",
            HOUR => "hour",
            MINUTE => "minute",
            SECOND => "second",
            FRACTION => "fraction",
            OFFSET => "offset",
            ZONE => "zone",
            _ => "epoch time",
        }
    }
}

const RFC3339: &[Item] = &[
    Item::Year,
    Item::Literal(b'-'),
    Item::Month,
    Item::Literal(b'-'),
    Item::Day,
    Item::DateTimeSep,
    Item::Hour,
    Item::Literal(b':'),
    Item::Minute,
    Item::Literal(b':'),
    Item::Second,
    Item::OptFraction,
    Item::OptOffset,
];

/// A compiled format.
#[derive(Debug)]
struct Format {
    items: Box<[Item]>,
    /// The most fraction digits accepted (`%f`: 9; `rfc3339`: any, past 9 ignored).
    frac_max: usize,
    /// The format reads the year (so the `year` option does not apply).
    has_year: bool,
    /// An epoch format: no calendar, no zone, no cache.
    epoch: bool,
    /// The second cache gives what a full parse would (see [`Format::cacheable`]).
    cacheable: bool,
    /// ... and may keep a whole minute (see [`Format::minute_cacheable`]).
    minute_cacheable: bool,
    /// The format as written, for messages.
    text: Box<str>,
}

impl Format {
    fn compile(text: &str) -> Result<Format, BuildError> {
        let named = |items: &[Item], frac_max: usize, epoch: bool| Format {
            items: items.into(),
            frac_max,
            has_year: !epoch,
            epoch,
            cacheable: !epoch,
            minute_cacheable: !epoch,
            text: text.into(),
        };
        match text {
            "rfc3339" => return Ok(named(RFC3339, usize::MAX, false)),
            "epoch" => return Ok(named(&[Item::EpochSeconds], 9, true)),
            "epoch_ms" => return Ok(named(&[Item::EpochInt(1_000_000)], 9, true)),
            "epoch_us" => return Ok(named(&[Item::EpochInt(1_000)], 9, true)),
            "epoch_ns" => return Ok(named(&[Item::EpochInt(1)], 9, true)),
            "" => return Err(BuildError("`format` cannot be empty".into())),
            _ => {}
        }
        let b = text.as_bytes();
        let mut items = Vec::new();
        let mut seen = 0u16;
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                items.push(Item::Literal(b[i]));
                i += 1;
                continue;
            }
            let Some(&d) = b.get(i + 1) else {
                return Err(BuildError(format!(
                    "a lone `%` ends `{text}` (write `%%` for a literal `%`)"
                )));
            };
            let item = match d {
                b'Y' => Item::Year,
                b'm' => Item::Month,
                b'b' | b'B' | b'h' => Item::MonthName,
                b'd' => Item::Day,
                b'e' => Item::DaySpace,
                b'j' => Item::DayOfYear,
                b'H' => Item::Hour,
                b'M' => Item::Minute,
                b'S' => Item::Second,
                b'f' => Item::Fraction,
                b'z' => Item::Offset,
                b'Z' => Item::ZoneName,
                b's' => Item::EpochSeconds,
                b'%' => Item::Literal(b'%'),
                _ => {
                    // `i + 1` follows an ASCII `%`, so it starts a character.
                    let c = text[i + 1..].chars().next().unwrap_or('?');
                    return Err(BuildError(format!("unknown format directive `%{c}` in `{text}`")));
                }
            };
            i += 2;
            let part = item.slot();
            if seen & part != 0 {
                return Err(BuildError(format!(
                    "`%{}` gives the {} a second time in `{text}`",
                    d as char,
                    slot::name(part)
                )));
            }
            seen |= part;
            if item == Item::Fraction && matches!(items.last(), Some(Item::Literal(b'.' | b','))) {
                items.pop();
                items.push(Item::OptFraction);
            } else {
                items.push(item);
            }
        }
        let epoch = seen & slot::EPOCH != 0;
        if epoch && seen != slot::EPOCH {
            return Err(BuildError(format!(
                "`%s` cannot be combined with other date or time directives in `{text}`"
            )));
        }
        if !epoch {
            let month_day = seen & (slot::MONTH | slot::DAY);
            if seen & slot::YDAY != 0 && month_day != 0 {
                return Err(BuildError(format!(
                    "`%j` cannot be combined with a month or a day of the month in `{text}`"
                )));
            }
            if seen & slot::YDAY == 0 && month_day != slot::MONTH | slot::DAY {
                return Err(BuildError(format!(
                    "no date in `{text}`: add `%d` (or `%e`) and `%m` (or `%b`), or `%j`"
                )));
            }
        }
        let cacheable = Format::cacheable(&items, epoch);
        let minute_cacheable = cacheable && Format::minute_cacheable(&items);
        Ok(Format {
            items: items.into(),
            frac_max: 9,
            has_year: seen & slot::YEAR != 0,
            epoch,
            cacheable,
            minute_cacheable,
            text: text.into(),
        })
    }

    /// Whether the second cache is exact for `items`. It is when no item before the
    /// fraction reads past its own bytes into the fraction: a run of digits stops at a
    /// non-digit or at its maximum width, which the fraction's first digit reaches
    /// anyway. The exception is `%z` right before a bare `%f`: with `+01` then `5`
    /// cached, `+0155` would hit the cache, but a full parse reads the offset `+01:55`.
    /// Epoch formats have no calendar work to save.
    fn cacheable(items: &[Item], epoch: bool) -> bool {
        !epoch
            && !items
                .windows(2)
                .any(|w| matches!(w, [Item::Offset | Item::OptOffset, Item::Fraction]))
    }

    /// Whether the cache may also stand for the other seconds of a minute: when every
    /// `%S` follows a literal (`:%S`), no item before it can read into its digits, so a
    /// value that differs only there parses alike up to them.
    fn minute_cacheable(items: &[Item]) -> bool {
        items.iter().enumerate().all(|(i, item)| {
            *item != Item::Second || (i > 0 && matches!(items[i - 1], Item::Literal(_) | Item::DateTimeSep))
        })
    }

    /// Reads `b` item by item, left to right, without backtracking.
    fn scan(&self, b: &[u8]) -> Result<Fields, Why> {
        let mut f = Fields::default();
        let mut i = 0;
        for &item in self.items.iter() {
            match item {
                Item::Year => f.year = Some(digits(b, &mut i, 4, 4)? as i32),
                Item::Month => f.month = digits(b, &mut i, 1, 2)?,
                Item::MonthName => f.month = month_name(b, &mut i)?,
                Item::Day => f.day = digits(b, &mut i, 1, 2)?,
                Item::DaySpace => {
                    if b.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    f.day = digits(b, &mut i, 1, 2)?;
                }
                Item::DayOfYear => f.yday = Some(digits(b, &mut i, 1, 3)?),
                Item::Hour => f.hour = digits(b, &mut i, 1, 2)?,
                Item::Minute => f.minute = digits(b, &mut i, 1, 2)?,
                Item::Second => {
                    let at = i;
                    f.second = digits(b, &mut i, 1, 2)?;
                    f.second_at = (i - at == 2).then_some(at);
                }
                Item::Fraction => {
                    let at = i;
                    f.nanos = fraction(b, &mut i, self.frac_max)?;
                    f.frac = Some((at, i - at));
                }
                Item::OptFraction => {
                    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                        let at = i;
                        f.nanos = fraction(b, &mut i, self.frac_max)?;
                        f.frac = Some((at, i - at));
                    }
                }
                Item::Offset => {
                    f.offset = Some(offset(b, &mut i).ok_or(Why::Detail("expected a UTC offset"))?);
                }
                Item::OptOffset => f.offset = offset(b, &mut i),
                Item::ZoneName => {
                    let start = i;
                    while b.get(i).is_some_and(|&c| is_zone_byte(c)) {
                        i += 1;
                    }
                    if i == start {
                        return Err(Why::Detail("expected a time zone name"));
                    }
                    f.zone = Some((start, i));
                }
                Item::EpochSeconds => f.epoch = Some(epoch_seconds(b, &mut i)?),
                Item::EpochInt(scale) => {
                    let negative = sign(b, &mut i);
                    let n = integer(b, &mut i)?;
                    let n = n.checked_mul(scale).ok_or(Why::OutOfRange)?;
                    f.epoch = Some(if negative { -n } else { n });
                }
                Item::DateTimeSep => match b.get(i) {
                    Some(b'T' | b't' | b' ') => i += 1,
                    _ => return Err(Why::Literal(b'T')),
                },
                Item::Literal(c) => {
                    if b.get(i) != Some(&c) {
                        return Err(Why::Literal(c));
                    }
                    i += 1;
                }
            }
        }
        if i < b.len() {
            return Err(Why::Detail("trailing text"));
        }
        Ok(f)
    }
}

/// What a full scan of one value read. Parts the format lacks stay 0 (midnight).
#[derive(Debug, Default, Clone, Copy)]
struct Fields {
    year: Option<i32>,
    month: u32,
    day: u32,
    yday: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Where the fraction digits start and how many there are: the bytes the cache key
    /// leaves out.
    frac: Option<(usize, usize)>,
    /// Where the second's digits start, when there are two of them (the minute cache
    /// leaves them out too).
    second_at: Option<usize>,
    /// Seconds east of UTC.
    offset: Option<i32>,
    /// The byte range of a `%Z` name.
    zone: Option<(usize, usize)>,
    /// Nanoseconds since the epoch, for epoch formats.
    epoch: Option<i64>,
}

/// `min..=max` digits at `*i`, as many as there are.
fn digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> Result<u32, Why> {
    let start = *i;
    let mut value = 0;
    while *i - start < max
        && let Some(&c) = b.get(*i)
        && c.is_ascii_digit()
    {
        value = value * 10 + u32::from(c - b'0');
        *i += 1;
    }
    if *i - start < min {
        return Err(Why::Detail("expected a digit"));
    }
    Ok(value)
}

/// Every digit at `*i` (at least one, at most `max`) as nanoseconds; digits past the
/// ninth are ignored.
fn fraction(b: &[u8], i: &mut usize, max: usize) -> Result<u32, Why> {
    let start = *i;
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    match *i - start {
        0 => Err(Why::Detail("expected fraction digits")),
        n if n > max => Err(Why::Detail("more than 9 fraction digits")),
        _ => Ok(fraction_value(&b[start..*i])),
    }
}

/// The nanoseconds of the fraction digits `digits` (past the ninth, ignored).
fn fraction_value(digits: &[u8]) -> u32 {
    let used = &digits[..digits.len().min(9)];
    let value = used.iter().fold(0, |v, &c| v * 10 + u32::from(c - b'0'));
    value * 10u32.pow(9 - used.len() as u32)
}

/// Consumes a `-` (true) or `+` (false) at `*i`.
fn sign(b: &[u8], i: &mut usize) -> bool {
    match b.get(*i) {
        Some(b'-') => {
            *i += 1;
            true
        }
        Some(b'+') => {
            *i += 1;
            false
        }
        _ => false,
    }
}

/// A non-negative decimal integer at `*i`.
fn integer(b: &[u8], i: &mut usize) -> Result<i64, Why> {
    let start = *i;
    let mut n: i64 = 0;
    while let Some(&c) = b.get(*i)
        && c.is_ascii_digit()
    {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(c - b'0')))
            .ok_or(Why::OutOfRange)?;
        *i += 1;
    }
    if *i == start {
        return Err(Why::Detail("expected a digit"));
    }
    Ok(n)
}

/// Epoch seconds with an optional sign and fraction, as nanoseconds.
fn epoch_seconds(b: &[u8], i: &mut usize) -> Result<i64, Why> {
    let negative = sign(b, i);
    let secs = integer(b, i)?;
    let mut nanos = 0;
    if b.get(*i) == Some(&b'.') && b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
        *i += 1;
        nanos = fraction(b, i, 9)?;
    }
    let total = join(secs, nanos)?;
    Ok(if negative { -total } else { total })
}

/// A UTC offset at `*i`: `Z`, `z`, `+hh`, `+hhmm` or `+hh:mm` (or `-`), in seconds east.
/// Leaves `*i` alone when there is none.
fn offset(b: &[u8], i: &mut usize) -> Option<i32> {
    let negative = match b.get(*i)? {
        b'Z' | b'z' => {
            *i += 1;
            return Some(0);
        }
        b'+' => false,
        b'-' => true,
        _ => return None,
    };
    let two = |at: usize| match (b.get(at), b.get(at + 1)) {
        (Some(&h), Some(&l)) if h.is_ascii_digit() && l.is_ascii_digit() => {
            Some(i32::from(h - b'0') * 10 + i32::from(l - b'0'))
        }
        _ => None,
    };
    let mut j = *i + 1;
    let hours = two(j)?;
    j += 2;
    let minutes = if b.get(j) == Some(&b':')
        && let Some(m) = two(j + 1)
    {
        j += 3;
        m
    } else if let Some(m) = two(j) {
        j += 2;
        m
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    *i = j;
    let seconds = hours * 3600 + minutes * 60;
    Some(if negative { -seconds } else { seconds })
}

fn is_zone_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'+' | b'-')
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// An English month name, full or its first three letters, any case: 1 to 12.
fn month_name(b: &[u8], i: &mut usize) -> Result<u32, Why> {
    let rest = &b[*i..];
    if let Some(abbr) = rest.get(..3) {
        for (n, name) in MONTHS.iter().enumerate() {
            let name = name.as_bytes();
            if abbr.eq_ignore_ascii_case(&name[..3]) {
                let full = rest.get(..name.len()).is_some_and(|r| r.eq_ignore_ascii_case(name));
                *i += if full { name.len() } else { 3 };
                return Ok(n as u32 + 1);
            }
        }
    }
    Err(Why::Detail("unknown month name"))
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1 to 12) of `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The month and day of day `yday` (from 1) of `year`.
fn month_day(year: i32, yday: u32) -> Option<(u32, u32)> {
    let mut left = yday.checked_sub(1)?;
    for month in 1..=12 {
        let days = days_in_month(year, month);
        if left < days {
            return Some((month, left + 1));
        }
        left -= days;
    }
    None
}

/// A validated civil date and time.
#[derive(Clone, Copy, Debug)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// Seconds since the epoch if this were UTC.
    fn local_seconds(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    /// The epoch second of this civil time in `tz`.
    fn in_zone(self, tz: &TimeZone) -> Result<i64, Why> {
        let small = |v: u32| i8::try_from(v).map_err(|_| Why::OutOfRange);
        let year = i16::try_from(self.year).map_err(|_| Why::OutOfRange)?;
        let dt = DateTime::new(
            year,
            small(self.month)?,
            small(self.day)?,
            small(self.hour)?,
            small(self.minute)?,
            small(self.second)?,
            0,
        )
        .map_err(|_| Why::OutOfRange)?;
        tz.to_timestamp(dt)
            .map(|ts| ts.as_second())
            .map_err(|_| Why::OutOfRange)
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
pub(super) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The last value that resolved, without its fraction digits (and its second's, when the
/// cache stands for its whole minute), and its epoch second (or its minute's first).
#[derive(Debug, Default)]
struct SecondCache {
    valid: bool,
    key: Vec<u8>,
    /// Where the fraction digits were cut out of the value; `None` when it had none.
    frac_at: Option<usize>,
    /// Where its two second digits were cut out, when the key stands for the minute.
    second_at: Option<usize>,
    /// The value's epoch second, or with `second_at` that of second 0 of its minute.
    secs: i64,
}

impl SecondCache {
    /// The second and the nanoseconds of `b` if it is the cached value with other
    /// fraction digits (1 to `frac_max` of them) in the same place, and, when the cache
    /// holds a minute, any second from 00 to 60 in the place of its second.
    fn get(&self, b: &[u8], frac_max: usize) -> Option<(i64, u32)> {
        if !self.valid {
            return None;
        }
        // The value is the key with `cut` second digits put back at `s` and `n` fraction
        // digits at `f`: compare the three pieces around them.
        let (s, cut) = self.second_at.map_or((0, 0), |s| (s, 2));
        let n = b.len().checked_sub(self.key.len() + cut)?;
        let f = match self.frac_at {
            Some(f) if (1..=frac_max).contains(&n) => f,
            None if n == 0 => b.len(),
            _ => return None,
        };
        let k = &self.key;
        if b[..s] != k[..s] || b[s + cut..f] != k[s..f - cut] || b[f + n..] != k[f - cut..] {
            return None;
        }
        let digits = &b[f..f + n];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut secs = self.secs;
        if cut == 2 {
            let (tens, ones) = (b[s].wrapping_sub(b'0'), b[s + 1].wrapping_sub(b'0'));
            if tens > 9 || ones > 9 || tens * 10 + ones > 60 {
                return None;
            }
            // Second 60 (a leap second) is read as 59, as a full parse does.
            secs += i64::from((tens * 10 + ones).min(59));
        }
        Some((secs, if n == 0 { 0 } else { fraction_value(digits) }))
    }

    /// Remembers that `b`, whose fraction digits are at `frac`, is second `secs`; with
    /// `minute` (where its two second digits are, and the epoch second of second 0), the
    /// whole minute.
    fn put(&mut self, b: &[u8], frac: Option<(usize, usize)>, minute: Option<(usize, i64)>, secs: i64) {
        let (f, n) = frac.unwrap_or((b.len(), 0));
        self.key.clear();
        match minute {
            Some((s, start)) if s + 2 <= f => {
                self.key.extend_from_slice(&b[..s]);
                self.key.extend_from_slice(&b[s + 2..f]);
                self.second_at = Some(s);
                self.secs = start;
            }
            _ => {
                self.key.extend_from_slice(&b[..f]);
                self.second_at = None;
                self.secs = secs;
            }
        }
        self.key.extend_from_slice(&b[f + n..]);
        self.frac_at = frac.map(|(at, _)| at);
        self.valid = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{LineOptions, read_all};
    use crate::model::{Batch, Key, Value};
    use crate::pipeline::Processor;

    fn config(format: &str) -> ParseTimestampConfig {
        ParseTimestampConfig {
            field: "message".into(),
            format: format.into(),
            timezone: None,
            year: None,
            keep_source: false,
            on_failure: OnFailure::Keep,
            error_field: Some("why".into()),
        }
    }

    fn with_zone(format: &str, zone: &str) -> ParseTimestampConfig {
        ParseTimestampConfig {
            timezone: Some(zone.into()),
            ..config(format)
        }
    }

    /// Nanoseconds of an RFC 3339 time, read by jiff (an independent parser).
    fn ts(rfc3339: &str) -> i64 {
        let t: jiff::Timestamp = rfc3339.parse().unwrap();
        i64::try_from(t.as_nanosecond()).unwrap()
    }

    /// Runs `config` over the lines of `text` (which ends with a newline) in one batch.
    fn run(
        config: &ParseTimestampConfig,
        text: &str,
    ) -> (Batch, u64, FieldParser<TimestampParser>, std::sync::Arc<KeyTable>) {
        let keys = KeyTable::new();
        let mut parser = config.build(&keys).unwrap();
        let (mut batches, _) = read_all(text.as_bytes(), 1 << 16, &LineOptions::default()).unwrap();
        assert_eq!(batches.len(), 1);
        let mut batch = batches.remove(0);
        parser.process(&mut batch);
        let failures = parser.take_failures();
        (batch, failures, parser, keys)
    }

    /// The event time of each line, or the failure reason.
    fn times(config: &ParseTimestampConfig, lines: &[&str]) -> Vec<Result<i64, String>> {
        let (batch, _, _, keys) = run(config, &(lines.join("\n") + "\n"));
        let why = keys.intern("why");
        batch
            .events()
            .iter()
            .map(|e| match (e.timestamp, e.get(why)) {
                (Some(t), None) => Ok(t),
                (None, Some(Value::Str(s))) => Err(String::from_utf8(batch.bytes(s).to_vec()).unwrap()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The event time of each line (`None` where it failed), the failures and the full
    /// parses (cache misses).
    fn cached_times(format: &str, lines: &[&str]) -> (Vec<Option<i64>>, u64, u64) {
        let (batch, failures, parser, _) = run(&config(format), &(lines.join("\n") + "\n"));
        let got = batch.events().iter().map(|e| e.timestamp).collect();
        (got, failures, parser.parser().misses)
    }

    fn one(config: &ParseTimestampConfig, line: &str) -> Result<i64, String> {
        let mut all = times(config, &[line]);
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn ok(format: &str, line: &str, expected: &str) {
        assert_eq!(one(&config(format), line), Ok(ts(expected)), "`{line}` as `{format}`");
    }

    fn fails(format: &str, line: &str, reason: &str) {
        let got = one(&config(format), line).unwrap_err();
        assert!(got.contains(reason), "`{line}` as `{format}`: {got}");
    }

    fn build_error(config: &ParseTimestampConfig) -> String {
        config.build(&KeyTable::new()).unwrap_err().0
    }

    #[test]
    fn numeric_date_and_time_directives() {
        ok("%Y-%m-%d", "2024-02-29", "2024-02-29T00:00:00Z");
        ok("%Y%m%d%H%M%S", "20240229235958", "2024-02-29T23:59:58Z");
        ok("%d.%m.%Y %H:%M", "5.3.2026 7:08", "2026-03-05T07:08:00Z");
        ok("%Y-%m-%d %H:%M:%S", "1969-12-31 23:59:59", "1969-12-31T23:59:59Z");
        // A leap second reads as :59.
        ok("%Y-%m-%d %H:%M:%S", "2016-12-31 23:59:60", "2016-12-31T23:59:59Z");
        ok("%Y-%j", "2024-060", "2024-02-29T00:00:00Z");
        ok("%Y-%j", "2023-060", "2023-03-01T00:00:00Z");
        ok("%Y-%j", "2024-366", "2024-12-31T00:00:00Z");
        ok("%Y-%j", "2023-1", "2023-01-01T00:00:00Z");
        fails("%Y-%j", "2023-366", "day of year out of range");
        fails("%Y-%j", "2023-000", "day of year out of range");
    }

    #[test]
    fn month_names_and_space_padded_days() {
        ok("%d/%b/%Y", "25/Nov/2026", "2026-11-25T00:00:00Z");
        ok("%d/%b/%Y", "25/nov/2026", "2026-11-25T00:00:00Z");
        ok("%d/%b/%Y", "25/NOVEMBER/2026", "2026-11-25T00:00:00Z");
        ok("%B %d %Y", "May 05 2026", "2026-05-05T00:00:00Z");
        ok("%h %d %Y", "September 30 2026", "2026-09-30T00:00:00Z");
        ok("%b %e %Y", "Mar  5 2026", "2026-03-05T00:00:00Z");
        ok("%b %e %Y", "Mar 5 2026", "2026-03-05T00:00:00Z");
        ok("%b %e %Y", "Mar 05 2026", "2026-03-05T00:00:00Z");
        ok("%b %e %Y", "Mar 15 2026", "2026-03-15T00:00:00Z");
        fails("%d/%b/%Y", "25/Noe/2026", "unknown month name");
        fails("%d/%b/%Y", "25/No/2026", "unknown month name");
    }

    #[test]
    fn fractions() {
        let f = "%Y-%m-%d %H:%M:%S.%f";
        ok(f, "2026-11-25 10:00:01.5", "2026-11-25T10:00:01.5Z");
        ok(f, "2026-11-25 10:00:01.123456789", "2026-11-25T10:00:01.123456789Z");
        ok(f, "2026-11-25 10:00:01,25", "2026-11-25T10:00:01.25Z");
        // `.%f` is optional in the value.
        ok(f, "2026-11-25 10:00:01", "2026-11-25T10:00:01Z");
        fails(f, "2026-11-25 10:00:01.1234567891", "more than 9 fraction digits");
        fails(f, "2026-11-25 10:00:01.", "trailing text");
        // A bare `%f` needs its digits.
        let bare = "%Y%m%d%H%M%S%f";
        ok(bare, "20261125100001123", "2026-11-25T10:00:01.123Z");
        fails(bare, "20261125100001", "expected fraction digits");
    }

    #[test]
    fn offsets_and_zone_names() {
        let f = "%Y-%m-%d %H:%M:%S %z";
        ok(f, "2026-11-25 10:00:01 +0530", "2026-11-25T04:30:01Z");
        ok(f, "2026-11-25 10:00:01 +05:30", "2026-11-25T04:30:01Z");
        ok(f, "2026-11-25 10:00:01 -0800", "2026-11-25T18:00:01Z");
        ok(f, "2026-11-25 10:00:01 +01", "2026-11-25T09:00:01Z");
        ok(f, "2026-11-25 10:00:01 Z", "2026-11-25T10:00:01Z");
        fails(f, "2026-11-25 10:00:01 +2500", "expected a UTC offset");
        fails(f, "2026-11-25 10:00:01 CET", "expected a UTC offset");
        let f = "%Y-%m-%d %H:%M:%S %Z";
        ok(f, "2026-11-25 10:00:01 UTC", "2026-11-25T10:00:01Z");
        ok(f, "2026-11-25 10:00:01 GMT", "2026-11-25T10:00:01Z");
        ok(f, "2026-11-25 10:00:01 Z", "2026-11-25T10:00:01Z");
        ok(f, "2026-11-25 10:00:01 Europe/Paris", "2026-11-25T09:00:01Z");
        ok(f, "2026-07-01 10:00:01 Europe/Paris", "2026-07-01T08:00:01Z");
        ok(f, "2026-11-25 10:00:01 America/New_York", "2026-11-25T15:00:01Z");
        fails(f, "2026-11-25 10:00:01 Mars/Olympus", "unknown time zone");
        // An offset wins over the zone name.
        ok(
            "%Y-%m-%d %H:%M:%S %z %Z",
            "2026-11-25 10:00:01 +0000 Asia/Tokyo",
            "2026-11-25T10:00:01Z",
        );
        // A zone name wins over the `timezone` option.
        assert_eq!(
            one(&with_zone(f, "Asia/Tokyo"), "2026-11-25 10:00:01 UTC"),
            Ok(ts("2026-11-25T10:00:01Z"))
        );
    }

    #[test]
    fn zone_names_alternate_between_lines() {
        let f = config("%Y-%m-%d %H:%M:%S %Z");
        let got = times(
            &f,
            &[
                "2026-11-25 10:00:01 Europe/Paris",
                "2026-11-25 10:00:01 Asia/Tokyo",
                "2026-11-25 10:00:01 Europe/Paris",
                "2026-11-25 10:00:02 Europe/Paris",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(ts("2026-11-25T09:00:01Z")),
                Ok(ts("2026-11-25T01:00:01Z")),
                Ok(ts("2026-11-25T09:00:01Z")),
                Ok(ts("2026-11-25T09:00:02Z")),
            ]
        );
    }

    #[test]
    fn epoch_directive_percent_and_utf8_literals() {
        ok("%s", "1700000000", "2023-11-14T22:13:20Z");
        ok("%s", "1700000000.25", "2023-11-14T22:13:20.25Z");
        ok("%s", "-1.5", "1969-12-31T23:59:58.5Z");
        ok("[%s]", "[0]", "1970-01-01T00:00:00Z");
        ok("%Y-%m-%d 100%%", "2024-01-01 100%", "2024-01-01T00:00:00Z");
        ok("%Y年%m月%d日", "2024年01月02日", "2024-01-02T00:00:00Z");
        fails("%Y-%m-%d 100%%", "2024-01-01 100", "expected `%`");
        fails("%Y-%m-%d %H", "2024-01-01T10", "expected a space");
    }

    #[test]
    fn nginx() {
        let f = config("%d/%b/%Y:%H:%M:%S %z");
        let got = times(
            &f,
            &[
                "25/Nov/2026:10:00:01 +0100",
                "25/Nov/2026:10:00:01 +0100",
                "31/Dec/2026:23:59:59 -0800",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(ts("2026-11-25T09:00:01Z")),
                Ok(ts("2026-11-25T09:00:01Z")),
                Ok(ts("2027-01-01T07:59:59Z")),
            ]
        );
    }

    #[test]
    fn syslog_takes_the_year_option_or_the_current_year() {
        let f = ParseTimestampConfig {
            year: Some(2024),
            ..config("%b %e %H:%M:%S")
        };
        assert_eq!(
            times(&f, &["Feb 29 10:00:01", "Nov  5 23:59:59"]),
            [Ok(ts("2024-02-29T10:00:01Z")), Ok(ts("2024-11-05T23:59:59Z"))]
        );
        let f = ParseTimestampConfig {
            year: Some(2023),
            ..config("%b %e %H:%M:%S")
        };
        assert_eq!(
            one(&f, "Feb 29 10:00:01").unwrap_err(),
            "parse_timestamp: `Feb 29 10:00:01` does not match `%b %e %H:%M:%S`: day out of range"
        );
        let year = TimeZone::UTC.to_datetime(jiff::Timestamp::now()).year();
        assert_eq!(
            one(&config("%b %e %H:%M:%S"), "Jan  2 03:04:05"),
            Ok(ts(&format!("{year:04}-01-02T03:04:05Z")))
        );
    }

    #[test]
    fn rfc3339() {
        let f = config("rfc3339");
        let got = times(
            &f,
            &[
                "2026-11-25T10:00:01Z",
                "2026-11-25T10:00:01.5Z",
                "2026-11-25T10:00:01.123456789+01:00",
                "2026-11-25t10:00:01.123456789123-01:30",
                "2026-11-25 10:00:01,25+0100",
                "2026-11-25T10:00:01",
                "2026-11-25T10:00:01.75",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(ts("2026-11-25T10:00:01Z")),
                Ok(ts("2026-11-25T10:00:01.5Z")),
                Ok(ts("2026-11-25T09:00:01.123456789Z")),
                Ok(ts("2026-11-25T11:30:01.123456789Z")),
                Ok(ts("2026-11-25T09:00:01.25Z")),
                Ok(ts("2026-11-25T10:00:01Z")),
                Ok(ts("2026-11-25T10:00:01.75Z")),
            ]
        );
        // Without an offset, `timezone` applies.
        let paris = with_zone("rfc3339", "Europe/Paris");
        assert_eq!(one(&paris, "2026-07-01T10:00:01.5"), Ok(ts("2026-07-01T08:00:01.5Z")));
        assert_eq!(one(&paris, "2026-07-01T10:00:01.5Z"), Ok(ts("2026-07-01T10:00:01.5Z")));
        fails("rfc3339", "2026-11-25X10:00:01Z", "expected `T`");
        fails("rfc3339", "2026-11-25T10:00:01Z extra", "trailing text");
    }

    #[test]
    fn epoch_formats() {
        ok("epoch", "1764064801", "2025-11-25T10:00:01Z");
        ok("epoch", "1764064801.123", "2025-11-25T10:00:01.123Z");
        ok("epoch", "0.000000001", "1970-01-01T00:00:00.000000001Z");
        ok("epoch_ms", "1764064801123", "2025-11-25T10:00:01.123Z");
        ok("epoch_us", "1764064801123456", "2025-11-25T10:00:01.123456Z");
        ok("epoch_ns", "1764064801123456789", "2025-11-25T10:00:01.123456789Z");
        ok("epoch_ms", "-1", "1969-12-31T23:59:59.999Z");
        fails("epoch_ms", "1764064801123.5", "trailing text");
        fails("epoch", "1764064801.", "trailing text");
        fails("epoch", "abc", "expected a digit");
        let huge = one(&config("epoch"), "99999999999").unwrap_err();
        assert_eq!(huge, "parse_timestamp: `99999999999` is out of range");
        fails("epoch_ns", "99999999999999999999", "out of range");
    }

    #[test]
    fn timezone_option_follows_daylight_saving_time() {
        let f = with_zone("%Y-%m-%d %H:%M:%S", "Europe/Paris");
        let got = times(
            &f,
            &[
                "2026-03-01 12:00:00",
                "2026-07-01 12:00:00",
                // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
                "2026-03-29 01:30:00",
                "2026-03-29 02:30:00",
                "2026-03-29 03:30:00",
                // 2026-10-25: 02:00-03:00 happens twice; the earlier (CEST) is taken.
                "2026-10-25 02:30:00",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(ts("2026-03-01T11:00:00Z")),
                Ok(ts("2026-07-01T10:00:00Z")),
                Ok(ts("2026-03-29T00:30:00Z")),
                Ok(ts("2026-03-29T01:30:00Z")),
                Ok(ts("2026-03-29T01:30:00Z")),
                Ok(ts("2026-10-25T00:30:00Z")),
            ]
        );
    }

    #[test]
    fn fixed_offset_option() {
        let f = "%Y-%m-%d %H:%M:%S";
        for (zone, expected) in [
            ("+05:30", "2026-11-25T04:30:01Z"),
            ("+0530", "2026-11-25T04:30:01Z"),
            ("-0800", "2026-11-25T18:00:01Z"),
            ("-08", "2026-11-25T18:00:01Z"),
            ("UTC", "2026-11-25T10:00:01Z"),
            ("Etc/GMT+5", "2026-11-25T15:00:01Z"),
        ] {
            assert_eq!(
                one(&with_zone(f, zone), "2026-11-25 10:00:01"),
                Ok(ts(expected)),
                "{zone}"
            );
        }
        // An offset in the value wins.
        assert_eq!(
            one(&with_zone("rfc3339", "+05:30"), "2026-11-25T10:00:01+01:00"),
            Ok(ts("2026-11-25T09:00:01Z"))
        );
    }

    #[test]
    fn the_cache_reuses_the_second_and_reads_each_fraction() {
        let lines = [
            "2026-11-25 10:00:01.1 +0100",
            "2026-11-25 10:00:01.25 +0100",
            "2026-11-25 10:00:01.123456789 +0100",
            "2026-11-25 10:00:01 +0100",
            "2026-11-25 10:00:01 +0100",
            "2026-11-25 10:00:02.5 +0100",
            "2026-11-25 10:00:01.9 +0100",
            "2026-11-25 10:00:01.9 +0200",
            "2026-11-25 10:00:01. +0200",
            "2026-11-25 10:00:01.1234567890 +0200",
            "2026-11-25 10:00:01.9x +0200",
            "2026-11-25 10:00:01.7 +0200",
        ];
        let (got, failures, misses) = cached_times("%Y-%m-%d %H:%M:%S.%f %z", &lines);
        assert_eq!(
            got,
            [
                Some(ts("2026-11-25T09:00:01.1Z")),
                Some(ts("2026-11-25T09:00:01.25Z")),
                Some(ts("2026-11-25T09:00:01.123456789Z")),
                Some(ts("2026-11-25T09:00:01Z")),
                Some(ts("2026-11-25T09:00:01Z")),
                Some(ts("2026-11-25T09:00:02.5Z")),
                Some(ts("2026-11-25T09:00:01.9Z")),
                Some(ts("2026-11-25T08:00:01.9Z")),
                None,
                None,
                None,
                Some(ts("2026-11-25T08:00:01.7Z")),
            ]
        );
        assert_eq!(failures, 3);
        // Full parses: the first line, the one without a fraction, the next with one
        // again, the new offset. The rest came from the cache, the other second of the
        // minute included.
        assert_eq!(misses, 4);
    }

    #[test]
    fn the_cache_holds_a_minute_when_the_offset_cannot_change_within_it() {
        let lines = [
            "2026-11-25T10:00:01.5Z",
            "2026-11-25T10:00:59.25Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:07.125Z",
            "2026-11-25T10:00:60.5Z",
            "2026-11-25T10:00:61.5Z",
            "2026-11-25T10:00:5x.5Z",
            "2026-11-25T10:01:02.5Z",
            "2026-11-25T10:01:03.5Z",
        ];
        let (got, failures, misses) = cached_times("rfc3339", &lines);
        assert_eq!(
            got,
            [
                Some(ts("2026-11-25T10:00:01.5Z")),
                Some(ts("2026-11-25T10:00:59.25Z")),
                Some(ts("2026-11-25T10:00:00Z")),
                Some(ts("2026-11-25T10:00:07.125Z")),
                // A leap second reads as 59, cached or not.
                Some(ts("2026-11-25T10:00:59.5Z")),
                None,
                None,
                Some(ts("2026-11-25T10:01:02.5Z")),
                Some(ts("2026-11-25T10:01:03.5Z")),
            ]
        );
        assert_eq!(failures, 2);
        // The first line, the one without a fraction, the next with one, the next
        // minute (the two bad seconds fail in full parses, which are not counted).
        assert_eq!(misses, 4);
        // A minute in which the offset changes: Berlin's clocks went from local mean time
        // (+00:53:28) to +01:00 on 1 April 1893, skipping 00:00:00 to 00:06:31. Its
        // seconds are parsed in full, and agree with a parser without a cache.
        let berlin = with_zone("%Y-%m-%d %H:%M:%S", "Europe/Berlin");
        let mut cached = berlin.compile().unwrap();
        let mut fresh = berlin.compile().unwrap();
        let at = |p: &mut TimestampParser, second: u32| p.timestamp(format!("1893-04-01 00:06:{second:02}").as_bytes());
        assert_ne!(at(&mut fresh, 32).unwrap() - at(&mut fresh, 31).unwrap(), 1_000_000_000);
        for second in (0..60).chain((0..60).rev()) {
            fresh.cache.valid = false;
            assert_eq!(at(&mut cached, second), at(&mut fresh, second), "second {second}");
        }
    }

    #[test]
    fn the_cache_with_a_zone_and_a_bare_fraction() {
        let f = with_zone("%Y%m%d%H%M%S%f", "Europe/Paris");
        let got = times(
            &f,
            &[
                "20260701100001123",
                "20260701100001999999",
                "20260301100001123",
                "2026030110000112",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(ts("2026-07-01T08:00:01.123Z")),
                Ok(ts("2026-07-01T08:00:01.999999Z")),
                Ok(ts("2026-03-01T09:00:01.123Z")),
                Ok(ts("2026-03-01T09:00:01.12Z")),
            ]
        );
    }

    #[test]
    fn no_cache_when_an_offset_runs_into_a_bare_fraction() {
        let f = config("%Y-%m-%d %H:%M:%S %z%f");
        let got = times(&f, &["2026-11-25 10:00:01 +015", "2026-11-25 10:00:01 +01553"]);
        assert_eq!(
            got,
            [Ok(ts("2026-11-25T09:00:01.5Z")), Ok(ts("2026-11-25T08:05:01.3Z")),]
        );
        assert!(!Format::compile("%Y-%m-%d %H:%M:%S %z%f").unwrap().cacheable);
        assert!(Format::compile("%Y%m%d%H%M%S%f").unwrap().cacheable);
        assert!(Format::compile("rfc3339").unwrap().cacheable);
        assert!(!Format::compile("epoch").unwrap().cacheable);
    }

    /// Random edits of valid values, each parsed by a parser that keeps its cache and by
    /// one whose cache is emptied first: they must agree, and the cache must be used.
    #[test]
    fn the_cache_agrees_with_a_full_parse() {
        let cases = [
            ("rfc3339", None, "2026-11-25T10:00:01.5+01:00"),
            ("rfc3339", Some("Europe/Paris"), "2026-03-29 02:30:01.5"),
            ("%Y-%m-%d %H:%M:%S.%f %z", None, "2026-11-25 10:00:01.25 -0800"),
            ("%Y%m%d%H%M%S%f", Some("+05:30"), "20261125100001123"),
            ("%d/%b/%Y:%H:%M:%S,%f", None, "25/Nov/2026:10:00:01,999"),
            ("%Y-%m-%d %H:%M:%S %z%f", None, "2026-11-25 10:00:01 +015"),
            ("%b %e %H:%M:%S.%f %Z", None, "Oct 25 02:30:01.5 Europe/Paris"),
            ("%Y-%j %H%M%S%f", None, "2024-366 2359591"),
        ];
        let alphabet = b"0123456789.,:+-Z T";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for (format, zone, seed) in cases {
            let config = ParseTimestampConfig {
                timezone: zone.map(String::from),
                year: (!format.contains("%Y") && format != "rfc3339").then_some(2026),
                ..config(format)
            };
            let mut cached = config.compile().unwrap();
            let mut fresh = config.compile().unwrap();
            let (mut line, mut hits) = (seed.as_bytes().to_vec(), 0);
            for _ in 0..20_000 {
                let at = random(line.len() + 1);
                match random(10) {
                    0 => line = seed.as_bytes().to_vec(),
                    1 | 2 => line.insert(at, b'0' + random(10) as u8),
                    3 | 4 if at < line.len() => drop(line.remove(at)),
                    5 if at < line.len() => line[at] = alphabet[random(alphabet.len())],
                    _ if at < line.len() => line[at] = b'0' + random(10) as u8,
                    _ => {}
                }
                fresh.cache.valid = false;
                let before = cached.misses;
                let got = cached.timestamp(&line);
                assert_eq!(
                    got,
                    fresh.timestamp(&line),
                    "{format}: {:?}",
                    String::from_utf8_lossy(&line)
                );
                if got.is_ok() && cached.misses == before {
                    hits += 1;
                }
            }
            if cached.format.cacheable {
                assert!(hits > 500, "{format}: {hits} cache hits");
            } else {
                assert_eq!(hits, 0, "{format}");
            }
        }
    }

    #[test]
    fn failures_are_counted_and_follow_on_failure() {
        let lines = [
            "25/Nov/2026:10:00:01 +0100",
            "25/Foo/2026:10:00:01 +0100",
            "32/Nov/2026:10:00:01 +0100",
            "25/Nov/2026:10:00:01 +0100 trailing",
            "",
        ];
        let text = lines.join("\n") + "\n";
        let keep = ParseTimestampConfig {
            error_field: None,
            ..config("%d/%b/%Y:%H:%M:%S %z")
        };
        let (batch, failures, _, _) = run(&keep, &text);
        assert_eq!(failures, 4);
        assert_eq!(batch.live().count(), 5);
        let first = &batch.events()[0];
        assert_eq!(first.timestamp, Some(ts("2026-11-25T09:00:01Z")));
        assert_eq!(first.get(Key::MESSAGE), None);
        for (event, line) in batch.events()[1..].iter().zip(&lines[1..]) {
            assert_eq!(event.timestamp, None);
            assert_eq!(event.fields().len(), 1);
            let Some(Value::Str(message)) = event.get(Key::MESSAGE) else {
                panic!()
            };
            assert_eq!(batch.bytes(message), line.as_bytes());
        }

        let drop = ParseTimestampConfig {
            on_failure: OnFailure::Drop,
            ..keep.clone()
        };
        let (mut batch, failures, _, _) = run(&drop, &text);
        assert_eq!(failures, 4);
        batch.compact();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.events()[0].timestamp, Some(ts("2026-11-25T09:00:01Z")));

        let dead = ParseTimestampConfig {
            on_failure: OnFailure::DeadLetter,
            ..keep
        };
        let (batch, failures, _, keys) = run(&dead, &text);
        assert_eq!(failures, 4);
        let error = keys.intern("_error");
        let reasons: Vec<_> = batch
            .dead_letters()
            .map(|e| match e.get(error) {
                Some(Value::Str(s)) => String::from_utf8(batch.bytes(s).to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        let f = "`%d/%b/%Y:%H:%M:%S %z`";
        assert_eq!(
            reasons,
            [
                format!("parse_timestamp: `25/Foo/2026:10:00:01 +0100` does not match {f}: unknown month name"),
                format!("parse_timestamp: `32/Nov/2026:10:00:01 +0100` does not match {f}: day out of range"),
                format!("parse_timestamp: `25/Nov/2026:10:00:01 +0100 trailing` does not match {f}: trailing text"),
                "parse_timestamp: empty value".to_string(),
            ]
        );
    }

    #[test]
    fn impossible_dates_and_times() {
        let f = "%Y-%m-%d %H:%M:%S";
        fails(f, "2026-13-01 00:00:00", "month out of range");
        fails(f, "2026-00-01 00:00:00", "month out of range");
        fails(f, "2026-04-31 00:00:00", "day out of range");
        fails(f, "2026-02-29 00:00:00", "day out of range");
        fails(f, "2026-01-00 00:00:00", "day out of range");
        fails(f, "2026-01-01 24:00:00", "hour out of range");
        fails(f, "2026-01-01 00:60:00", "minute out of range");
        fails(f, "2026-01-01 00:00:61", "second out of range");
        fails(f, "2026-01-01 00:00", "expected `:`");
        fails(f, "20260-01-01 00:00:00", "expected `-`");
        fails(f, "2300-01-01 00:00:00", "out of range");
        fails(f, "1600-01-01 00:00:00", "out of range");
    }

    #[test]
    fn keep_source_and_other_fields() {
        let f = ParseTimestampConfig {
            keep_source: true,
            ..config("epoch")
        };
        let (batch, failures, _, _) = run(&f, "0\n");
        assert_eq!(failures, 0);
        assert_eq!(batch.events()[0].timestamp, Some(0));
        assert!(batch.events()[0].get(Key::MESSAGE).is_some());
        // The default field is `time`: lines have none.
        let f = ParseTimestampConfig {
            field: default_time_field(),
            ..config("epoch")
        };
        assert_eq!(one(&f, "0").unwrap_err(), "parse_timestamp: the field is missing");
    }

    #[test]
    fn config_keys_and_defaults() {
        let c: ParseTimestampConfig = serde_json::from_str(r#"{"format": "rfc3339"}"#).unwrap();
        assert_eq!(c.field, "time");
        assert_eq!(c.timezone, None);
        assert_eq!(c.year, None);
        assert!(!c.keep_source);
        assert_eq!(c.on_failure, OnFailure::Keep);
        assert_eq!(c.error_field, None);
        let c: ParseTimestampConfig = serde_json::from_str(
            r#"{"field": "t", "format": "%b %e %H:%M:%S", "timezone": "-0800", "year": 2024,
                "keep_source": true, "on_failure": "drop", "error_field": "e"}"#,
        )
        .unwrap();
        assert_eq!(c.year, Some(2024));
        assert_eq!(c.on_failure, OnFailure::Drop);
        c.build(&KeyTable::new()).unwrap();
        assert!(serde_json::from_str::<ParseTimestampConfig>(r#"{}"#).is_err());
        assert!(serde_json::from_str::<ParseTimestampConfig>(r#"{"format": "epoch", "tz": "UTC"}"#).is_err());
        // The example's values build.
        let example = ParseTimestampConfig {
            field: "time".into(),
            timezone: Some("Europe/Paris".into()),
            ..config("%Y-%m-%d %H:%M:%S.%f")
        };
        assert!(ParseTimestampConfig::EXAMPLE.contains("format: \"%Y-%m-%d %H:%M:%S.%f\"\ntimezone: Europe/Paris"));
        example.build(&KeyTable::new()).unwrap();
    }

    #[test]
    fn build_errors() {
        let cases = [
            (config("%Y %Q"), "unknown format directive `%Q` in `%Y %Q`"),
            (config("%Y-%m-%d %é"), "unknown format directive `%é` in `%Y-%m-%d %é`"),
            (config("%Y-%m-%d %"), "a lone `%` ends `%Y-%m-%d %`"),
            (config(""), "`format` cannot be empty"),
            (config("%H:%M:%S"), "no date in `%H:%M:%S`"),
            (config("%Y-%m"), "no date in `%Y-%m`"),
            (config("%Y-%m-%d %b"), "`%b` gives the month a second time"),
            (config("%Y-%m-%d %Y"), "`%Y` gives the year a second time"),
            (config("%Y-%j-%d"), "`%j` cannot be combined with a month"),
            (config("%s %Y"), "`%s` cannot be combined"),
            (
                with_zone("%Y-%m-%d", "Mars/Olympus"),
                "unknown time zone `Mars/Olympus`",
            ),
            (with_zone("%Y-%m-%d", "+5:3"), "invalid UTC offset `+5:3`"),
            (with_zone("%Y-%m-%d", "+24:00"), "invalid UTC offset `+24:00`"),
            (with_zone("epoch", "UTC"), "`timezone` does not apply"),
            (
                ParseTimestampConfig {
                    year: Some(2024),
                    ..config("%Y-%m-%d")
                },
                "`year` only applies to formats without `%Y`",
            ),
            (
                ParseTimestampConfig {
                    year: Some(2024),
                    ..config("epoch_ms")
                },
                "`year` does not apply to epoch formats",
            ),
            (
                ParseTimestampConfig {
                    year: Some(20000),
                    ..config("%m-%d")
                },
                "`year` 20000 is out of range",
            ),
            (
                ParseTimestampConfig {
                    field: String::new(),
                    ..config("rfc3339")
                },
                "`field` cannot be empty",
            ),
        ];
        for (config, expected) in cases {
            let got = build_error(&config);
            assert!(got.contains(expected), "{expected}: got {got}");
        }
    }

    #[test]
    fn calendar_matches_jiff() {
        for (y, m, d) in [
            (1970, 1, 1),
            (1969, 12, 31),
            (2000, 2, 29),
            (1900, 3, 1),
            (2400, 12, 31),
            (1, 1, 1),
        ] {
            let date = jiff::civil::date(y as i16, m as i8, d as i8);
            let jiff = TimeZone::UTC.to_timestamp(date.at(0, 0, 0, 0)).unwrap().as_second();
            assert_eq!(days_from_civil(y, m, d) * 86_400, jiff, "{y}-{m}-{d}");
        }
    }
}
