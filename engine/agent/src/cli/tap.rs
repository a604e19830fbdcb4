//! `weir tap COMPONENT`: a sample of the events leaving one component of a running agent,
//! as JSON lines on stdout, from its admin endpoint's `/tap` (see `admin::tap`). The agent
//! keeps to the rate; a tap never slows the pipeline (a slow reader loses samples there).

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use weir_core::units::Dur;

use super::top::{AdminArgs, client, unreachable};

#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The component: its name as `weir top` shows it (`processors[0].parse_json`), or its
    /// type alone when only one component has it (`parse_json`).
    pub component: String,
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Stop after this many events.
    #[arg(short = 'n', long)]
    pub limit: Option<u64>,
    /// At most this many events per second: `100`, `100/s`, `600/m`.
    #[arg(long, default_value = "100/s")]
    pub rate: Rate,
    /// Stop after this long: `10s`, `2m`.
    #[arg(long)]
    pub duration: Option<Dur>,
}

/// Events per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let (n, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let secs = match per {
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("`{s}`: a rate is N, N/s, N/m or N/h")),
        };
        match n.parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(Rate(n / secs)),
            _ => Err(format!("`{s}`: a rate is a positive number of events, like 100/s")),
        }
    }
}

/// `weir tap`.
pub fn main(args: TapArgs) -> ExitCode {
    match tap(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tap(args: &TapArgs) -> Result<(), String> {
    let address = args.admin.address()?;
    let mut url = format!(
        "http://{address}/tap?component={}&rate={}",
        percent_encode(&args.component),
        args.rate.0
    );
    if let Some(n) = args.limit {
        url.push_str(&format!("&limit={n}"));
    }
    if let Some(d) = args.duration {
        url.push_str(&format!("&duration_ms={}", d.0.as_millis().max(1)));
    }
    // The agent ends the stream at the limit or duration; this bounds a stream that stalls.
    let timeout = args.duration.map(|d| d.0 + Duration::from_secs(10));
    let response = client(timeout)
        .get(&url)
        .call()
        .map_err(|e| unreachable(&address, &e))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body.read_to_string().unwrap_or_default();
        return Err(match status {
            404 if text.is_empty() => {
                format!("{address} answers, but has no /tap: is it a Weir agent of this version?")
            }
            _ => text.trim().to_string(),
        });
    }
    let reader = BufReader::new(body.into_reader());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seen = 0u64;
    for line in reader.lines() {
        let line = line.map_err(|e| format!("the stream from {address} ended early: {e}"))?;
        if line.is_empty() {
            continue;
        }
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // Whoever reads stdout left (`| head`): done.
            return Ok(());
        }
        seen += 1;
        if args.limit.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}

/// `name` with every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub(crate) fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_names() {
        assert_eq!("5/s".parse::<Rate>(), Ok(Rate(5.0)));
        assert_eq!("5".parse::<Rate>(), Ok(Rate(5.0)));
        assert_eq!("600/m".parse::<Rate>(), Ok(Rate(10.0)));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("5/week".parse::<Rate>().is_err());
        assert_eq!(
            percent_encode("processors[0].parse_json"),
            "processors%5B0%5D.parse_json"
        );
    }
}
