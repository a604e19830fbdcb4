//! `parse_timestamp` against jiff: a time rendered by jiff's strftime with a format both
//! understand is read back by weir as the instant jiff's strptime reads from the same text
//! (in the configured zone, or at the offset in the text); the named formats (`rfc3339`,
//! `epoch*`) give the instant they render; and any bytes with any format never panic, and
//! where jiff reads an RFC 3339 timestamp that weir also accepts, both agree.
#![no_main]

use arbitrary::Arbitrary;
use jiff::Timestamp;
use jiff::fmt::strtime;
use jiff::tz::{Offset, TimeZone};
use libfuzzer_sys::fuzz_target;
use weir_core::model::KeyTable;
use weir_core::parse::time::ParseTimestampConfig;
use weir_core::pipeline::Processor;
use weir_fuzz::batch_of_lines;

/// Directives both sides read the same way, and separators.
const PIECES: [&str; 17] = [
    "%Y", "%m", "%d", "%H", "%M", "%S", "%f", ".%f", "%z", "%b", "%e", "%j", "-", ":", " ", "T", "/",
];
const ZONES: [Option<&str>; 5] = [
    None,
    Some("Europe/Paris"),
    Some("+05:30"),
    Some("America/New_York"),
    Some("-0800"),
];
const NAMED: [&str; 5] = ["rfc3339", "epoch", "epoch_ms", "epoch_us", "epoch_ns"];
/// 1678-01-01 to 2261-12-31: inside what nanoseconds in an i64 hold, with a day to spare.
const MIN_S: i64 = -9_183_110_400;
const MAX_S: i64 = 9_214_646_400;

#[derive(Arbitrary, Debug)]
struct Case {
    pieces: Vec<u8>,
    zone: u8,
    named: Option<u8>,
    seconds: i64,
    nanos: u32,
    offset_minutes: i16,
    /// Arbitrary input instead of a rendered time.
    raw: Option<(String, Vec<u8>)>,
}

fn parse_one(config: &ParseTimestampConfig, value: &[u8]) -> Option<Option<i64>> {
    let keys = KeyTable::new();
    let mut parser = config.build(&keys).ok()?;
    let mut batch = batch_of_lines(value);
    parser.process(&mut batch);
    let failures = parser.take_failures();
    let event = &batch.events()[0];
    assert_eq!(
        failures == 0,
        event.timestamp.is_some(),
        "a failure is counted, a success sets the time"
    );
    Some(event.timestamp)
}

fn config(format: &str, zone: Option<&str>, year: Option<i32>) -> ParseTimestampConfig {
    ParseTimestampConfig {
        field: "message".into(),
        format: format.into(),
        timezone: zone.map(String::from),
        year,
        keep_source: false,
        on_failure: Default::default(),
        error_field: None,
    }
}

fuzz_target!(|case: Case| {
    if let Some((format, value)) = &case.raw {
        if value.contains(&b'\n') || format.len() > 64 {
            return;
        }
        let zone = ZONES[case.zone as usize % ZONES.len()];
        let got = parse_one(&config(format, zone, None), value);
        if format == "rfc3339"
            && let Some(Some(nanos)) = got
            && let Ok(ts) = std::str::from_utf8(value).unwrap_or("").parse::<Timestamp>()
        {
            assert_eq!(
                i128::from(nanos),
                ts.as_nanosecond(),
                "rfc3339 {:?}",
                String::from_utf8_lossy(value)
            );
        }
        return;
    }
    let seconds = MIN_S + case.seconds.rem_euclid(MAX_S - MIN_S);
    let nanos = (case.nanos % 1_000_000_000) as i32;
    let ts = Timestamp::new(seconds, nanos).expect("in jiff's range");
    if let Some(i) = case.named {
        let format = NAMED[i as usize % NAMED.len()];
        let n = ts.as_nanosecond();
        let (text, want) = match format {
            "rfc3339" => {
                let offset = Offset::from_seconds(i32::from(case.offset_minutes % (18 * 60)) * 60).unwrap();
                (
                    ts.to_zoned_datetime(TimeZone::fixed(offset))
                        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
                        .to_string(),
                    n,
                )
            }
            "epoch" => {
                let sign = if n < 0 { "-" } else { "" };
                (
                    format!("{sign}{}.{:09}", n.abs() / 1_000_000_000, n.abs() % 1_000_000_000),
                    n,
                )
            }
            "epoch_ms" => (n.div_euclid(1_000_000).to_string(), n.div_euclid(1_000_000) * 1_000_000),
            "epoch_us" => (n.div_euclid(1_000).to_string(), n.div_euclid(1_000) * 1_000),
            _ => (n.to_string(), n),
        };
        let got = parse_one(&config(format, None, None), text.as_bytes()).expect("a named format builds");
        assert_eq!(got.map(i128::from), Some(want), "{format} {text:?}");
        return;
    }
    let pieces: Vec<&str> = case
        .pieces
        .iter()
        .take(12)
        .map(|&p| PIECES[p as usize % PIECES.len()])
        .collect();
    // jiff's `%z` also reads seconds (`+hhmmss`): right before digits, the two read the
    // same text differently, and both readings are fair.
    if pieces
        .windows(2)
        .any(|w| w[0] == "%z" && w[1] != "%b" && w[1].contains('%'))
    {
        return;
    }
    // Likewise a fraction runs over every digit that follows (weir: the whole run; jiff:
    // nine at most): digits right after `%f` have no one right reading.
    if pieces
        .windows(2)
        .any(|w| w[0].ends_with("%f") && w[1] != "%b" && w[1] != "%z" && w[1].contains('%'))
    {
        return;
    }
    let format: String = pieces.concat();
    let has_offset = format.contains("%z");
    let zone_name = ZONES[case.zone as usize % ZONES.len()];
    let zone = match zone_name {
        None => TimeZone::UTC,
        Some(name) if name.starts_with(['+', '-']) => {
            let sign = if name.starts_with('-') { -1 } else { 1 };
            let digits: String = name[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, m): (i32, i32) = (digits[..2].parse().unwrap(), digits[2..].parse().unwrap());
            TimeZone::fixed(Offset::from_seconds(sign * (h * 3600 + m * 60)).unwrap())
        }
        Some(name) => TimeZone::get(name).expect("the zone is in the bundled database"),
    };
    let shown = if has_offset {
        let offset = Offset::from_seconds(i32::from(case.offset_minutes % (18 * 60)) * 60).unwrap();
        ts.to_zoned_datetime(TimeZone::fixed(offset))
    } else {
        ts.to_zoned_datetime(zone.clone())
    };
    let text = match strtime::format(&format, &shown) {
        Ok(t) => t,
        Err(_) => return,
    };
    let year = (!format.contains("%Y")).then(|| i32::from(shown.year()));
    let Some(got) = parse_one(&config(&format, zone_name, year), text.as_bytes()) else {
        return; // weir refuses the format (no date, say): nothing to compare
    };
    // jiff's reading of the same text.
    let Ok(mut tm) = strtime::parse(&format, &text) else {
        return;
    };
    if let Some(y) = year {
        tm.set_year(Some(y as i16)).unwrap();
    }
    let want = if tm.offset().is_some() {
        tm.to_timestamp().ok()
    } else {
        tm.to_datetime()
            .ok()
            .and_then(|dt| dt.to_zoned_datetime(zone).ok())
            .map(|z| z.timestamp())
    };
    let Some(want) = want else { return };
    if i64::try_from(want.as_nanosecond()).is_err() {
        // Adjacent numbers can read differently (`%e%Y` over ` 22147`): jiff's reading is
        // out of weir's documented range, where weir fails.
        assert_eq!(got, None, "out of range: format {format:?} text {text:?}");
        return;
    }
    assert_eq!(
        got.map(i128::from),
        Some(want.as_nanosecond()),
        "format {format:?} text {text:?} zone {zone_name:?}"
    );
});
