//! `weir top`: a table of every component of a running agent (events and bytes per second,
//! failures, queue depth, lag), refreshed in place, from its admin endpoint's
//! `/api/components`. Rates come from two samples an interval apart.
//!
//! On a terminal the table is redrawn on the alternate screen with plain ANSI escapes; `q`
//! or Ctrl-C leaves it as it was. `--once` (and any output that is not a terminal) prints
//! plain tables, which is what scripts and tests read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir_core::units::Dur;

/// Where the agent's admin endpoint is: `--admin ADDR`, or the `admin.address` of the
/// pipeline file it runs.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The agent's admin endpoint, host:port (the pipeline's `admin: { address: ... }`).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8686",
        conflicts_with = "config"
    )]
    pub admin: String,
    /// Or the pipeline file the agent runs: its `admin.address` is used.
    #[arg(short, long, value_name = "PIPELINE")]
    pub config: Option<PathBuf>,
}

impl AdminArgs {
    /// The address to connect to: a wildcard host (`0.0.0.0`, `[::]`) becomes loopback.
    pub fn address(&self) -> Result<String, String> {
        let Some(file) = &self.config else {
            return Ok(self.admin.clone());
        };
        let loaded = crate::config::load(file).map_err(|e| e.to_string())?;
        let admin = loaded.config.admin.as_ref().ok_or_else(|| {
            format!(
                "{} has no `admin: {{ address: ... }}`: the agent has no admin endpoint to ask",
                file.display()
            )
        })?;
        let address = &admin.value.address.value;
        Ok(match address.rsplit_once(':') {
            Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
            Some(("[::]", port)) => format!("[::1]:{port}"),
            _ => address.clone(),
        })
    }
}

/// Why nothing answered at `address`.
pub fn unreachable(address: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "no agent answering at {address}: is `weir run` running with its admin endpoint on? \
         Its pipeline needs `admin: {{ address: {address} }}` (or pass --admin / -c PIPELINE) ({e})"
    )
}

/// An HTTP client for the admin endpoint; `timeout` bounds a whole request (`None`: none).
pub fn client(timeout: Option<Duration>) -> ureq::Agent {
    let config = ureq::config::Config::builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(timeout)
        .build();
    ureq::Agent::new_with_config(config)
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Time between two samples (the rates are over it).
    #[arg(long, default_value = "1s")]
    pub interval: Dur,
    /// Print one table, from two samples an interval apart, without escapes, and exit.
    #[arg(long)]
    pub once: bool,
}

/// `weir top`.
pub fn main(args: TopArgs) -> ExitCode {
    let address = match args.admin.address() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let interval = args.interval.0.max(Duration::from_millis(100));
    let top = Top {
        client: client(Some(Duration::from_secs(5))),
        address,
        interval,
    };
    let result = if args.once {
        top.once()
    } else if std::io::stdout().is_terminal() {
        top.live()
    } else {
        top.plain()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `/api/components` answers.
#[derive(Debug, Deserialize)]
struct Snapshot {
    #[serde(default)]
    work_queue: u64,
    #[serde(default)]
    work_queue_capacity: u64,
    components: Vec<Component>,
}

/// One component's counters since the agent started.
#[derive(Debug, Deserialize)]
struct Component {
    name: String,
    events_in: Option<u64>,
    #[serde(default)]
    events_out: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    failures: u64,
    queue: Option<u64>,
    lag: Option<f64>,
    lag_unit: Option<String>,
}

struct Top {
    client: ureq::Agent,
    address: String,
    interval: Duration,
}

impl Top {
    /// One sample of every component, and when it was taken.
    fn sample(&self) -> Result<(Snapshot, Instant), String> {
        let url = format!("http://{}/api/components", self.address);
        let mut response = self
            .client
            .get(&url)
            .call()
            .map_err(|e| unreachable(&self.address, &e))?;
        let at = Instant::now();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| unreachable(&self.address, &e))?;
        if status == 404 {
            return Err(format!(
                "{} answers, but has no /api/components: is it a Weir agent of this version?",
                self.address
            ));
        }
        if status != 200 {
            return Err(format!("{url}: {status}: {}", body.trim()));
        }
        let snapshot = serde_json::from_str(&body).map_err(|e| format!("{url}: not what a Weir agent answers: {e}"))?;
        Ok((snapshot, at))
    }

    /// `--once`: two samples an interval apart, one table.
    fn once(&self) -> Result<(), String> {
        let before = self.sample()?;
        std::thread::sleep(self.interval);
        let after = self.sample()?;
        print!("{}", self.table(&before, &after));
        Ok(())
    }

    /// Not a terminal: a table per interval, one after the other, until the agent is gone.
    fn plain(&self) -> Result<(), String> {
        let mut before = self.sample()?;
        loop {
            std::thread::sleep(self.interval);
            let after = self.sample()?;
            println!("{}", self.table(&before, &after));
            before = after;
        }
    }

    /// A terminal: the table redrawn in place every interval until `q` or Ctrl-C; while the
    /// agent does not answer, the last table stays with the reason above it.
    fn live(&self) -> Result<(), String> {
        let mut before = self.sample()?;
        let quit = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, quit.clone()).map_err(|e| format!("cannot handle signals: {e}"))?;
        }
        let keys = Keys::open();
        let mut screen = Screen::enter();
        screen.draw(&format!(
            "weir top  {}  waiting {:?} for a second sample\n",
            self.address, self.interval
        ));
        let mut last = String::new();
        loop {
            if keys.wait_for_quit(self.interval, &quit) {
                return Ok(());
            }
            match self.sample() {
                Ok(after) => {
                    last = self.table(&before, &after);
                    screen.draw(&last);
                    before = after;
                }
                Err(e) => screen.draw(&format!(
                    "{e}\n(retrying every {:?}; q to quit)\n\n{last}",
                    self.interval
                )),
            }
        }
    }

    /// The table of the rates between two samples.
    fn table(&self, (before, t0): &(Snapshot, Instant), (after, t1): &(Snapshot, Instant)) -> String {
        let secs = t1.duration_since(*t0).as_secs_f64().max(1e-3);
        let rate = |now: u64, then: Option<u64>| now.saturating_sub(then.unwrap_or(now)) as f64 / secs;
        let head = [
            "COMPONENT",
            "IN/s",
            "OUT/s",
            "BYTES/s",
            "FAILED",
            "FAILED/s",
            "QUEUE",
            "LAG",
        ];
        let mut rows: Vec<[String; 8]> = Vec::new();
        for c in &after.components {
            let old = before.components.iter().find(|o| o.name == c.name);
            let events_in = match (c.events_in, old.and_then(|o| o.events_in)) {
                (Some(now), then) => count(rate(now, then)),
                (None, _) => "-".into(),
            };
            let lag = match (c.lag, c.lag_unit.as_deref()) {
                (Some(v), Some("bytes")) => bytes(v),
                (Some(v), _) => count(v),
                (None, _) => "-".into(),
            };
            rows.push([
                c.name.clone(),
                events_in,
                count(rate(c.events_out, old.map(|o| o.events_out))),
                format!("{}/s", bytes(rate(c.bytes, old.map(|o| o.bytes)))),
                c.failures.to_string(),
                count(rate(c.failures, old.map(|o| o.failures))),
                c.queue.map_or("-".into(), |q| q.to_string()),
                lag,
            ]);
        }
        let mut widths = head.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = format!(
            "weir top  {}  every {}  work queue {}/{}\n",
            self.address,
            Dur(self.interval),
            after.work_queue,
            after.work_queue_capacity
        );
        let mut line = |cells: &[&str]| {
            let mut text = format!("{:<w$}", cells[0], w = widths[0]);
            for (cell, w) in cells.iter().zip(widths).skip(1) {
                text.push_str(&format!("  {cell:>w$}"));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&head);
        for row in &rows {
            line(&row.each_ref().map(String::as_str));
        }
        out
    }
}

/// A count or a rate, short: `950`, `12.5`, `12.3k`, `4.56M`.
fn count(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 100.0 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else if v < 10_000.0 {
        format!("{v:.0}")
    } else if v < 10_000_000.0 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}M", v / 1e6)
    }
}

/// Bytes, short: `512 B`, `1.5 KiB`, `12.3 MiB`, `1.20 GiB`.
fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// The alternate screen, left (with the cursor shown again) when dropped.
struct Screen {
    out: std::io::Stdout,
}

impl Screen {
    fn enter() -> Screen {
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
        let _ = out.flush();
        Screen { out }
    }

    /// Redraws: home, each line then clear to its end, clear below.
    fn draw(&mut self, text: &str) {
        let mut frame = String::from("\x1b[H");
        for line in text.lines() {
            frame.push_str(line);
            frame.push_str("\x1b[K\n");
        }
        frame.push_str("\x1b[J");
        let _ = self.out.write_all(frame.as_bytes());
        let _ = self.out.flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.out.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = self.out.flush();
    }
}

/// Keys from a terminal on stdin, one at a time without echo (Ctrl-C still signals); the
/// terminal's settings are put back when dropped. Without a terminal, only signals quit.
struct Keys {
    saved: Option<libc::termios>,
}

impl Keys {
    fn open() -> Keys {
        if !std::io::stdin().is_terminal() {
            return Keys { saved: None };
        }
        // SAFETY: all-zero bytes are a valid `termios` (integers and arrays of them).
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr(3) on stdin, a terminal, into a live local.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut term) } != 0 {
            return Keys { saved: None };
        }
        let saved = term;
        term.c_lflag &= !(libc::ICANON | libc::ECHO);
        term.c_cc[libc::VMIN] = 1;
        term.c_cc[libc::VTIME] = 0;
        // SAFETY: tcsetattr(3) on stdin with settings read from it and two flags cleared.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) };
        Keys { saved: Some(saved) }
    }

    /// Waits `interval`; true as soon as `q` is typed or `quit` is set (a signal).
    fn wait_for_quit(&self, interval: Duration, quit: &AtomicBool) -> bool {
        let until = Instant::now() + interval;
        loop {
            if quit.load(Ordering::Relaxed) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let slice = left.min(Duration::from_millis(100));
            if self.saved.is_none() {
                std::thread::sleep(slice);
                continue;
            }
            let mut poll = libc::pollfd {
                fd: libc::STDIN_FILENO,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one live pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, slice.as_millis() as libc::c_int) };
            if ready > 0 {
                let mut key = [0u8; 1];
                // SAFETY: read(2) of one byte from stdin into a live one-byte buffer.
                let n = unsafe { libc::read(libc::STDIN_FILENO, key.as_mut_ptr().cast(), 1) };
                if n == 1 && matches!(key[0], b'q' | b'Q') {
                    return true;
                }
                if n == 0 {
                    // Stdin ended: keys can no longer come; wait out the slice.
                    std::thread::sleep(slice);
                }
            }
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: tcsetattr(3) on stdin with the settings it had.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(count(950.0), "950");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(45_600_000.0), "45.60M");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }

    #[test]
    fn the_table_has_a_row_per_component_with_rates_over_the_interval() {
        let snap = |n: u64| Snapshot {
            work_queue: 1,
            work_queue_capacity: 2,
            components: vec![
                Component {
                    name: "inputs[0].file".into(),
                    events_in: Some(n),
                    events_out: n,
                    bytes: n * 100,
                    failures: 0,
                    queue: None,
                    lag: Some(2048.0),
                    lag_unit: Some("bytes".into()),
                },
                Component {
                    name: "outputs[0].file".into(),
                    events_in: None,
                    events_out: n,
                    bytes: n * 120,
                    failures: 3,
                    queue: Some(1),
                    lag: None,
                    lag_unit: None,
                },
            ],
        };
        let top = Top {
            client: client(None),
            address: "127.0.0.1:8686".into(),
            interval: Duration::from_secs(1),
        };
        let t0 = Instant::now();
        let table = top.table(&(snap(1000), t0), &(snap(3000), t0 + Duration::from_secs(2)));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0], "weir top  127.0.0.1:8686  every 1s  work queue 1/2",
            "{table}"
        );
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1]),
            [
                "COMPONENT",
                "IN/s",
                "OUT/s",
                "BYTES/s",
                "FAILED",
                "FAILED/s",
                "QUEUE",
                "LAG"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "inputs[0].file",
                "1000",
                "1000",
                "97.7",
                "KiB/s",
                "0",
                "0",
                "-",
                "2.0",
                "KiB"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            ["outputs[0].file", "-", "1000", "117.2", "KiB/s", "3", "0", "1", "-"]
        );
    }
}
