//! Synthetic log corpora.
//!
//! Each kind is a source of records ([`Records`]): a closure that appends one or more
//! whole lines to a buffer and returns how many output events they make (a Java log line
//! and its stack trace are one record; a container message split into partial lines is
//! one). [`collect`] gathers records in memory up to a size ([`Corpus`]); [`write`] streams
//! the same bytes to a writer, so a large corpus never has to fit in memory (the benchmark
//! harness keeps its own memory small: a child's peak RSS includes its parent's). Records
//! are never cut: a corpus ends at the last record that fits, a little short of its size.
//! The same seed gives the same bytes on every machine.
//!
//! ```
//! let corpus = weir_perf::corpus::java(64 << 10, 1);
//! assert!(corpus.data.len() <= 64 << 10);
//! // Stack traces: fewer records than lines.
//! assert!(corpus.lines < corpus.data.iter().filter(|&&b| b == b'\n').count() as u64);
//! ```

use std::fmt::Write as _;
use std::io;

/// Changes whenever any generator's output changes; part of the benchmark's cache key.
pub const VERSION: u32 = 1;

/// A small, fast, deterministic PRNG (SplitMix64). Not for cryptography; stable across
/// versions and platforms, which a seeded corpus needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A generated corpus and what it holds.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The bytes, whole lines only.
    pub data: Vec<u8>,
    /// Number of records in `data`: the events its matching pipeline makes (lines for
    /// single-line kinds; multiline records; container messages with partials joined).
    pub lines: u64,
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// Records written (as [`Corpus::lines`]).
    pub records: u64,
}

/// A source of records: appends whole lines to the buffer and returns how many records
/// (output events) they make. Called until what it appends no longer fits.
pub type Records = Box<dyn FnMut(&mut Rng, &mut String) -> u64>;

/// Calls `records` until the next group of lines would pass `size`, handing each group
/// that fits to `sink`.
fn drive(
    size: u64,
    seed: u64,
    mut records: Records,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Written> {
    let mut rng = Rng::new(seed);
    let mut record = String::with_capacity(64 << 10);
    let mut done = Written { bytes: 0, records: 0 };
    loop {
        record.clear();
        let n = records(&mut rng, &mut record);
        if done.bytes + record.len() as u64 > size {
            return Ok(done);
        }
        sink(record.as_bytes())?;
        done.bytes += record.len() as u64;
        done.records += n;
    }
}

/// Gathers records in memory until `size` bytes.
pub fn collect(size: usize, seed: u64, records: Records) -> Corpus {
    let mut data = Vec::with_capacity(size + 4096);
    let done = drive(size as u64, seed, records, |b| {
        data.extend_from_slice(b);
        Ok(())
    })
    .expect("writing to memory does not fail");
    Corpus {
        data,
        lines: done.records,
    }
}

/// Streams the corpus of `kind` (a name in [`KINDS`]) to `out`: the same bytes and count
/// as the in-memory generator, in bounded memory. `None` for an unknown kind.
pub fn write(kind: &str, size: u64, seed: u64, out: &mut dyn io::Write) -> Option<io::Result<Written>> {
    let records = records_by_name(kind)?;
    Some(drive(size, seed, records, |b| out.write_all(b)))
}

/// A clock for timestamps: starts at 2026-11-25T10:00:00Z and moves forward.
#[derive(Debug, Clone)]
struct Clock {
    nanos: u64,
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

impl Clock {
    fn new() -> Clock {
        Clock {
            nanos: 1_795_600_800 * 1_000_000_000,
        }
    }

    /// Moves forward by up to `max_ms` milliseconds (any nanosecond count).
    fn tick(&mut self, rng: &mut Rng, max_ms: u64) {
        self.nanos += rng.below(max_ms * 1_000_000 + 1);
    }

    /// (year, month, day, hour, minute, second, nanosecond).
    fn parts(&self) -> (u64, u64, u64, u64, u64, u64, u64) {
        let secs = self.nanos / 1_000_000_000;
        let (y, mo, d) = civil(secs / 86_400);
        let s = secs % 86_400;
        (y, mo, d, s / 3600, s / 60 % 60, s % 60, self.nanos % 1_000_000_000)
    }

    /// `2026-11-25T10:00:00.123456789Z`
    fn rfc3339_nanos(&self, out: &mut String) {
        let (y, mo, d, h, mi, s, ns) = self.parts();
        let _ = write!(out, "{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ns:09}Z");
    }

    /// `2026-11-25T10:00:00.123Z`
    fn rfc3339_millis(&self, out: &mut String) {
        let (y, mo, d, h, mi, s, ns) = self.parts();
        let _ = write!(out, "{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ns / 1_000_000);
    }

    /// `2026-11-25 10:00:00,123` (Python's logging default).
    fn python(&self, out: &mut String) {
        let (y, mo, d, h, mi, s, ns) = self.parts();
        let _ = write!(out, "{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{:03}", ns / 1_000_000);
    }

    /// `25/Nov/2026:10:00:00 +0000` (Apache's `%t`, without the brackets).
    fn apache(&self, out: &mut String) {
        let (y, mo, d, h, mi, s, _) = self.parts();
        let m = MONTHS[mo as usize - 1];
        let _ = write!(out, "{d:02}/{m}/{y}:{h:02}:{mi:02}:{s:02} +0000");
    }

    /// `Nov  5 10:00:00` (RFC 3164: day padded with a space).
    fn bsd(&self, out: &mut String) {
        let (_, mo, d, h, mi, s, _) = self.parts();
        let m = MONTHS[mo as usize - 1];
        let _ = write!(out, "{m} {d:>2} {h:02}:{mi:02}:{s:02}");
    }
}

const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v2/search",
    "/static/js/app.js",
    "/static/css/site.css",
    "/images/logo.png",
    "/login",
    "/healthz",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "curl/8.5.0",
    "kube-probe/1.29",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
];
const REFERERS: &[&str] = &["-", "https://example.com/", "https://www.google.com/search?q=weir"];
const STATUSES: &[u16] = &[
    200, 200, 200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 500, 502, 503,
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn nginx_records() -> Records {
    let mut second = 1_700_000_000u64;
    Box::new(move |rng, line| {
        second += rng.below(2);
        let (day, month, hms) = (
            1 + second / 86_400 % 28,
            MONTHS[(second / 2_419_200 % 12) as usize],
            second % 86_400,
        );
        let _ = writeln!(
            line,
            "{}.{}.{}.{} - {} [{:02}/{}/2026:{:02}:{:02}:{:02} +0000] \"{} {}?id={} HTTP/1.1\" {} {} \"{}\" \"{}\"",
            10 + rng.below(200),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254),
            if rng.below(10) == 0 { "alice" } else { "-" },
            day,
            month,
            hms / 3600,
            hms / 60 % 60,
            hms % 60,
            rng.pick(METHODS),
            rng.pick(PATHS),
            rng.below(100_000),
            rng.pick(STATUSES),
            rng.below(200_000),
            rng.pick(REFERERS),
            rng.pick(AGENTS),
        );
        1
    })
}

/// nginx "combined" access log lines (about 200 bytes each) until `size` bytes: the
/// last line is whole, so the corpus may end a little short of `size`.
pub fn nginx(size: usize, seed: u64) -> Corpus {
    collect(size, seed, nginx_records())
}

fn apache_records() -> Records {
    let mut clock = Clock::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 1500);
        let _ = write!(
            out,
            "{}.{}.{}.{} - {} [",
            10 + rng.below(200),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254),
            *rng.pick(&["-", "-", "-", "-", "frank", "alice", "svc-backup"]),
        );
        clock.apache(out);
        let status = *rng.pick(STATUSES);
        let _ = write!(
            out,
            "] \"{} {}{} HTTP/1.{}\" {status} ",
            rng.pick(METHODS),
            rng.pick(PATHS),
            if rng.one_in(3) { "?page=2&sort=desc" } else { "" },
            rng.below(2),
        );
        if matches!(status, 204 | 304) || rng.one_in(20) {
            out.push_str("-\n");
        } else {
            let _ = writeln!(out, "{}", rng.below(120_000));
        }
        1
    })
}

/// Apache "common" access log lines (`%h %l %u %t "%r" %>s %b`, about 90 bytes): `-`
/// for the size of empty responses, query strings, HTTP/1.0 and 1.1.
pub fn apache(size: usize, seed: u64) -> Corpus {
    collect(size, seed, apache_records())
}

const LEVELS: &[&str] = &["debug", "info", "info", "info", "info", "warn", "error"];
const SERVICES: &[&str] = &["checkout", "payments", "search", "auth", "inventory"];
const MESSAGES: &[&str] = &[
    "request completed",
    "cache miss for key \\\"user:42\\\"",
    "retrying upstream call",
    "connection reset by peer",
    "payment authorised \\u20ac 12.50",
    "slow query: SELECT * FROM orders WHERE id = ?",
    "user logged in from Zürich ✓",
    "path=C:\\\\temp\\\\x\\ttab",
];

fn json_records() -> Records {
    let mut n = 0u64;
    Box::new(move |rng, out| {
        let _ = writeln!(
            out,
            r#"{{"time":"2026-11-25T10:{:02}:{:02}.{:03}Z","level":"{}","service":"{}","msg":"{}","status":{},"latency_ms":{}.{},"cached":{},"user":{{"id":{},"region":"eu-west-{}"}},"tags":["a","b{}"],"trace_id":"{:016x}"}}"#,
            n / 60 % 60,
            n % 60,
            rng.below(1000),
            rng.pick(LEVELS),
            rng.pick(SERVICES),
            rng.pick(MESSAGES),
            rng.pick(STATUSES),
            rng.below(2000),
            rng.below(10),
            rng.below(2) == 0,
            rng.below(100_000),
            1 + rng.below(3),
            rng.below(10),
            rng.next_u64(),
        );
        n += 1;
        1
    })
}

/// JSON lines (about 250 bytes): level, message (with escapes and unicode), numbers,
/// booleans, a nested object and an array. `lines` counts records.
pub fn json(size: usize, seed: u64) -> Corpus {
    collect(size, seed, json_records())
}

const FRAMES: &[&str] = &[
    "com.example.checkout.OrderService.place(OrderService.java:118)",
    "com.example.checkout.OrderController.post(OrderController.java:54)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:614)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)",
    "java.base/java.lang.Thread.run(Thread.java:1583)",
];

fn java_records() -> Records {
    let mut n = 0u64;
    Box::new(move |rng, out| {
        let level = if rng.below(5) == 0 {
            "ERROR"
        } else {
            *rng.pick(&["INFO", "INFO", "DEBUG", "WARN"])
        };
        let _ = writeln!(
            out,
            "2026-11-25 10:{:02}:{:02}.{:03} [http-nio-8080-exec-{}] {level} c.e.checkout.OrderService - order {} {}",
            n / 60 % 60,
            n % 60,
            rng.below(1000),
            1 + rng.below(16),
            rng.below(1_000_000),
            if level == "ERROR" { "failed" } else { "processed" },
        );
        if level == "ERROR" {
            let _ = writeln!(
                out,
                "java.lang.IllegalStateException: inventory unavailable for sku-{}",
                rng.below(10_000)
            );
            for _ in 0..5 + rng.below(20) {
                let _ = writeln!(out, "\tat {}", rng.pick(FRAMES));
            }
            if rng.below(2) == 0 {
                let _ = writeln!(out, "Caused by: java.net.SocketTimeoutException: Read timed out");
                for _ in 0..2 + rng.below(5) {
                    let _ = writeln!(out, "\tat {}", rng.pick(FRAMES));
                }
                let _ = writeln!(out, "\t... {} more", 10 + rng.below(30));
            }
        }
        n += 1;
        1
    })
}

/// Java application logs: timestamped lines, one in five followed by an exception with
/// 5-25 frames and sometimes a `Caused by:` section. `lines` counts records (what a
/// multiline `start` rule on the timestamp makes of it).
pub fn java(size: usize, seed: u64) -> Corpus {
    collect(size, seed, java_records())
}

/// (file, line, function, source line) of Python frames.
const PY_FRAMES: &[(&str, u32, &str, &str)] = &[
    ("/srv/app/app/worker.py", 88, "run", "result = self.handle(job)"),
    (
        "/srv/app/app/handlers.py",
        41,
        "handle",
        "payload = json.loads(job.body)",
    ),
    (
        "/srv/app/app/handlers.py",
        63,
        "charge",
        "resp = self.client.post(url, json=body, timeout=5)",
    ),
    (
        "/srv/app/.venv/lib/python3.12/site-packages/requests/sessions.py",
        589,
        "request",
        "resp = self.send(prep, **send_kwargs)",
    ),
    (
        "/srv/app/.venv/lib/python3.12/site-packages/requests/adapters.py",
        700,
        "send",
        "raise ConnectionError(e, request=request)",
    ),
    (
        "/usr/lib/python3.12/json/__init__.py",
        346,
        "loads",
        "return _default_decoder.decode(s)",
    ),
    (
        "/usr/lib/python3.12/json/decoder.py",
        355,
        "raw_decode",
        "raise JSONDecodeError(\"Expecting value\", s, err.value) from None",
    ),
    ("/srv/app/app/cache.py", 27, "get", "return self.store[key]"),
    (
        "/srv/app/app/models.py",
        112,
        "from_row",
        "quantity = int(row[\"qty\"])",
    ),
];
const PY_ERRORS: &[&str] = &[
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='payments.internal', port=443): Max retries exceeded with url: /v1/charge",
    "KeyError: 'user:42'",
    "ValueError: invalid literal for int() with base 10: 'three'",
    "TimeoutError: [Errno 110] Connection timed out",
    "app.errors.UpstreamError: inventory service returned 503",
];
const PY_LOGGERS: &[&str] = &[
    "app.worker",
    "app.api",
    "app.cache",
    "celery.worker.strategy",
    "urllib3.connectionpool",
];

fn python_traceback(rng: &mut Rng, out: &mut String) {
    out.push_str("Traceback (most recent call last):\n");
    for _ in 0..2 + rng.below(5) {
        let (file, line, func, code) = rng.pick(PY_FRAMES);
        let _ = writeln!(out, "  File \"{file}\", line {line}, in {func}\n    {code}");
        if rng.one_in(4) {
            // Python 3.11+ points at the failing expression.
            let _ = writeln!(out, "    {}", "^".repeat(code.len().min(24)));
        }
    }
    let _ = writeln!(out, "{}", rng.pick(PY_ERRORS));
}

fn python_records() -> Records {
    let mut clock = Clock::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 40);
        clock.python(out);
        let error = rng.one_in(6);
        let level = if error {
            "ERROR"
        } else {
            *rng.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARNING"])
        };
        let _ = write!(
            out,
            " {level} [{}] {}: ",
            rng.pick(&["MainThread", "Thread-3", "ThreadPoolExecutor-0_1", "Worker-7"]),
            rng.pick(PY_LOGGERS)
        );
        let job = rng.below(1_000_000);
        if error {
            let _ = writeln!(out, "job {job} failed");
            python_traceback(rng, out);
            if rng.one_in(3) {
                out.push_str("\nDuring handling of the above exception, another exception occurred:\n\n");
                python_traceback(rng, out);
            }
        } else {
            let _ = writeln!(
                out,
                "{} job={job} queue={} elapsed_ms={}",
                rng.pick(&["processed", "received", "acked", "retrying in 5s"]),
                rng.pick(&["default", "emails", "payments"]),
                rng.below(5000)
            );
        }
        1
    })
}

/// Python service logs (`logging` default format): one record in six is an `ERROR` with
/// a traceback of 2-6 frames (code lines, sometimes `^^^` markers), a third of those
/// chained with `During handling of the above exception`. `lines` counts records (what
/// the multiline `preset: python` makes of it).
pub fn python(size: usize, seed: u64) -> Corpus {
    collect(size, seed, python_records())
}

/// (function call, file:line) of Go goroutine frames.
const GO_FRAMES: &[(&str, &str)] = &[
    (
        "github.com/example/shop/internal/orders.(*Service).Place(0x0, {0x8c1a40, 0xc0001a2000}, 0xc00012e0f0)",
        "/src/internal/orders/service.go:118 +0x4e",
    ),
    (
        "github.com/example/shop/internal/api.(*Handler).postOrder(0xc000114000, {0x8c0e20, 0xc0001b6000}, 0xc0001ac100)",
        "/src/internal/api/orders.go:54 +0x1f2",
    ),
    (
        "net/http.HandlerFunc.ServeHTTP(0xc0001a4000?, {0x8c0e20?, 0xc0001b6000?}, 0x0?)",
        "/usr/local/go/src/net/http/server.go:2220 +0x29",
    ),
    (
        "net/http.serverHandler.ServeHTTP({0xc0001a6000?}, {0x8c0e20?, 0xc0001b6000?}, 0x6?)",
        "/usr/local/go/src/net/http/server.go:3210 +0x8e",
    ),
    (
        "net/http.(*conn).serve(0xc0001b0000, {0x8c1a40, 0xc000110060})",
        "/usr/local/go/src/net/http/server.go:2092 +0x5d0",
    ),
    ("main.main()", "/src/cmd/shop/main.go:41 +0x1a5"),
];

fn go_records() -> Records {
    let mut clock = Clock::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 60);
        if rng.one_in(30) {
            if rng.one_in(4) {
                out.push_str("fatal error: concurrent map writes\n");
            } else {
                out.push_str("panic: runtime error: invalid memory address or nil pointer dereference\n");
                let _ = writeln!(
                    out,
                    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x{:x} pc=0x{:x}]",
                    rng.below(256),
                    0x40_0000 + rng.below(0x40_0000)
                );
            }
            for g in 0..1 + rng.below(3) {
                let state = if g == 0 {
                    "running"
                } else {
                    *rng.pick(&["IO wait", "select", "chan receive"])
                };
                let _ = writeln!(out, "\ngoroutine {} [{state}]:", 1 + rng.below(200));
                for _ in 0..2 + rng.below(5) {
                    let (call, at) = rng.pick(GO_FRAMES);
                    let _ = writeln!(out, "{call}\n\t{at}");
                }
                if rng.one_in(2) {
                    let _ = writeln!(
                        out,
                        "created by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3360 +0x485"
                    );
                }
            }
            out.push_str("exit status 2\n");
            return 1;
        }
        out.push_str("time=");
        clock.rfc3339_millis(out);
        let level = *rng.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]);
        let _ = writeln!(
            out,
            " level={level} msg=\"{}\" method={} path={} status={} duration={}.{}ms request_id={:016x}",
            rng.pick(&["request served", "request failed", "cache refreshed", "slow request"]),
            rng.pick(METHODS),
            rng.pick(PATHS),
            rng.pick(STATUSES),
            rng.below(900),
            rng.below(10),
            rng.next_u64(),
        );
        1
    })
}

/// Go service logs: `log/slog` text lines, and one record in thirty a `panic:` (nil
/// dereference with its `[signal ...]` line) or a `fatal error:`, followed by 1-3 goroutine
/// dumps and `exit status 2`. `lines` counts records (what the multiline `preset: go`
/// makes of it: every log line is a record, every crash one more).
pub fn go(size: usize, seed: u64) -> Corpus {
    collect(size, seed, go_records())
}

/// A message line a container might print, without a newline.
fn app_message(rng: &mut Rng, clock: &Clock, out: &mut String) {
    match rng.below(4) {
        0 => {
            out.push_str("time=");
            clock.rfc3339_millis(out);
            let _ = write!(
                out,
                " level={} msg=\"{}\" path={} status={}",
                rng.pick(&["INFO", "INFO", "WARN", "ERROR"]),
                rng.pick(&["request served", "upstream timeout", "cache refreshed"]),
                rng.pick(PATHS),
                rng.pick(STATUSES),
            );
        }
        1 => {
            let _ = write!(
                out,
                r#"{{"ts":"{}","level":"{}","msg":"{}","user":"u-{}","tab":"a\tb"}}"#,
                clock.nanos / 1_000_000,
                rng.pick(LEVELS),
                rng.pick(&[
                    "order placed",
                    "cart \\\"saved\\\"",
                    "payment <declined> & retried",
                    "café ✓"
                ]),
                rng.below(100_000),
            );
        }
        2 => {
            let _ = write!(
                out,
                "\x1b[32mINFO\x1b[0m [{}] worker {} picked job {} from queue \"{}\"",
                rng.below(64),
                rng.below(8),
                rng.below(1_000_000),
                rng.pick(&["default", "emails", "payments"]),
            );
        }
        _ => {
            let _ = write!(
                out,
                "{} {} {} {} {}ms",
                rng.pick(METHODS),
                rng.pick(PATHS),
                rng.pick(STATUSES),
                rng.below(200_000),
                rng.below(2000)
            );
        }
    }
}

/// A long ASCII message (a JSON dump) of about `len` bytes, without a newline.
fn long_message(rng: &mut Rng, len: usize, out: &mut String) {
    let start = out.len();
    let _ = write!(
        out,
        r#"{{"event":"cart_snapshot","cart":"c-{}","items":["#,
        rng.below(1_000_000)
    );
    while out.len() - start < len {
        let _ = write!(
            out,
            r#"{{"sku":"sku-{}","qty":{},"price":{}.{:02}}},"#,
            rng.below(100_000),
            1 + rng.below(5),
            rng.below(500),
            rng.below(100)
        );
    }
    out.pop();
    out.push_str("]}");
}

/// Where the runtime splits a long container message into partial lines (containerd's
/// `max_container_log_line_size`, Docker's json-file buffer).
const CONTAINER_SPLIT: usize = 16 << 10;

fn stream_name(rng: &mut Rng) -> &'static str {
    if rng.one_in(5) { "stderr" } else { "stdout" }
}

fn other_stream(stream: &str) -> &'static str {
    if stream == "stdout" { "stderr" } else { "stdout" }
}

fn cri_records() -> Records {
    let mut clock = Clock::new();
    let mut msg = String::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 20);
        let stream = stream_name(rng);
        msg.clear();
        if !rng.one_in(40) {
            app_message(rng, &clock, &mut msg);
            clock.rfc3339_nanos(out);
            let _ = writeln!(out, " {stream} F {msg}");
            return 1;
        }
        let len = 17_000 + rng.below(40_000) as usize;
        long_message(rng, len, &mut msg);
        let mut records = 1;
        let mut rest = msg.as_str();
        while rest.len() > CONTAINER_SPLIT {
            let (piece, tail) = rest.split_at(CONTAINER_SPLIT);
            clock.rfc3339_nanos(out);
            let _ = writeln!(out, " {stream} P {piece}");
            rest = tail;
            if rng.one_in(3) {
                // The other stream goes on while this one is in the middle of a message.
                clock.rfc3339_nanos(out);
                let _ = write!(out, " {} F ", other_stream(stream));
                app_message(rng, &clock, out);
                out.push('\n');
                records += 1;
            }
        }
        clock.rfc3339_nanos(out);
        let _ = writeln!(out, " {stream} F {rest}");
        records
    })
}

/// Kubernetes CRI container log lines (`<time> <stream> <P|F> <message>`), stdout and
/// stderr interleaved; one message in forty is 17-57 KiB, split at 16 KiB into `P`
/// partial lines and a final `F` line, sometimes with the other stream's lines in
/// between. `lines` counts messages (partials joined).
pub fn cri(size: usize, seed: u64) -> Corpus {
    collect(size, seed, cri_records())
}

/// Appends `s` as the body of a JSON string, escaped the way Go's `encoding/json` does
/// (and so Docker): `<`, `>` and `&` as `\u003c` etc., control bytes as `\n`, `\t` or
/// `\u00XX`, other characters as they are.
fn go_json_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn docker_line(log: &str, stream: &str, clock: &Clock, out: &mut String) {
    out.push_str("{\"log\":\"");
    go_json_escape(log, out);
    let _ = write!(out, "\",\"stream\":\"{stream}\",\"time\":\"");
    clock.rfc3339_nanos(out);
    out.push_str("\"}\n");
}

fn docker_records() -> Records {
    let mut clock = Clock::new();
    let mut msg = String::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 20);
        let stream = stream_name(rng);
        msg.clear();
        if !rng.one_in(40) {
            app_message(rng, &clock, &mut msg);
            msg.push('\n');
            docker_line(&msg, stream, &clock, out);
            return 1;
        }
        let len = 17_000 + rng.below(40_000) as usize;
        long_message(rng, len, &mut msg);
        msg.push('\n');
        let mut records = 1;
        let mut rest = msg.as_str();
        while rest.len() > CONTAINER_SPLIT {
            // A partial: its `log` does not end with a newline.
            let (piece, tail) = rest.split_at(CONTAINER_SPLIT);
            docker_line(piece, stream, &clock, out);
            rest = tail;
            if rng.one_in(3) {
                let mut other = String::new();
                app_message(rng, &clock, &mut other);
                other.push('\n');
                docker_line(&other, other_stream(stream), &clock, out);
                records += 1;
            }
        }
        docker_line(rest, stream, &clock, out);
        records
    })
}

/// Docker json-file lines (`{"log":"...\n","stream":"stdout","time":"..."}`) with Go's
/// JSON escapes (ANSI colours as `\u001b`, `\u003c`, quotes, tabs, UTF-8); one message in
/// forty is 17-57 KiB, split at 16 KiB into partials whose `log` lacks the trailing
/// `\n`, sometimes with the other stream's lines in between. `lines` counts messages.
pub fn docker(size: usize, seed: u64) -> Corpus {
    collect(size, seed, docker_records())
}

const HOSTS: &[&str] = &["web-01", "web-02", "db-01", "lb-01.example.net", "worker-7"];

fn syslog_records() -> Records {
    let mut clock = Clock::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 800);
        let pri = rng.pick(&[13u64, 30, 34, 38, 86, 134, 165, 190]);
        let host = rng.pick(HOSTS);
        if rng.one_in(2) {
            // RFC 3164 (BSD): <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG
            let _ = write!(out, "<{pri}>");
            clock.bsd(out);
            match rng.below(4) {
                0 => {
                    let _ = writeln!(
                        out,
                        " {host} sshd[{}]: Failed password for invalid user {} from 203.0.113.{} port {} ssh2",
                        1000 + rng.below(60_000),
                        rng.pick(&["admin", "root", "oracle", "test"]),
                        rng.below(256),
                        1024 + rng.below(60_000)
                    );
                }
                1 => {
                    let _ = writeln!(
                        out,
                        " {host} CRON[{}]: (root) CMD (/usr/local/bin/backup.sh --incremental)",
                        1000 + rng.below(60_000)
                    );
                }
                2 => {
                    let _ = writeln!(
                        out,
                        " {host} kernel: [{}.{:06}] eth0: link up, 1000 Mbps, full duplex",
                        rng.below(900_000),
                        rng.below(1_000_000)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        " {host} systemd[1]: Started {}.service - {}.",
                        rng.pick(&["nginx", "postgresql", "weir"]),
                        rng.pick(&["A high performance web server", "PostgreSQL RDBMS", "Weir log agent"])
                    );
                }
            }
        } else {
            // RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
            let _ = write!(out, "<{pri}>1 ");
            clock.rfc3339_millis(out);
            let app = rng.pick(&["checkout", "payments", "auth"]);
            let _ = write!(
                out,
                " {host} {app} {} {} ",
                1000 + rng.below(60_000),
                rng.pick(&["-", "ID47", "REQ", "AUDIT"])
            );
            if rng.one_in(3) {
                out.push('-');
            } else {
                let _ = write!(
                    out,
                    "[exampleSDID@32473 iut=\"{}\" eventSource=\"Application\" eventID=\"{}\"]",
                    rng.below(10),
                    1000 + rng.below(100)
                );
                if rng.one_in(2) {
                    let _ = write!(
                        out,
                        "[meta@32473 region=\"eu-west-1\" msg=\"a \\\"quoted\\\" \\] value\"]"
                    );
                }
            }
            let _ = writeln!(
                out,
                " {} order={} user=u-{} amount={}.{:02}",
                rng.pick(&["order placed", "payment declined", "login ok", "token refreshed"]),
                rng.below(1_000_000),
                rng.below(100_000),
                rng.below(500),
                rng.below(100)
            );
        }
        1
    })
}

/// Syslog lines, half RFC 3164 (`<34>Nov 25 10:00:01 web-01 sshd[4242]: ...`, with and
/// without a PID) and half RFC 5424 (`<165>1 2026-11-25T10:00:01.003Z web-01 checkout
/// 4242 ID47 [sd@32473 k="v"] ...`, with `-`, one or two structured data elements and
/// escapes in them).
pub fn syslog(size: usize, seed: u64) -> Corpus {
    collect(size, seed, syslog_records())
}

fn csv_records() -> Records {
    let mut clock = Clock::new();
    Box::new(move |rng, out| {
        clock.tick(rng, 100);
        clock.rfc3339_millis(out);
        let user = *rng.pick(&["alice", "bob", "", "svc-batch", "o'brien"]);
        let _ = write!(
            out,
            ",{},{user},10.{}.{}.{},{},{},{},{}.{},",
            rng.pick(&["INFO", "INFO", "INFO", "WARN", "ERROR"]),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254),
            if rng.one_in(4) { "\"GET\"" } else { *rng.pick(METHODS) },
            rng.pick(PATHS),
            rng.pick(STATUSES),
            rng.below(2000),
            rng.below(10),
        );
        let _ = writeln!(
            out,
            "{}",
            match rng.below(5) {
                0 => "order placed",
                1 => "\"cart saved, 3 items\"",
                2 => "\"user \"\"bob\"\" said \"\"hi\"\", then left\"",
                3 => "\"address: 1 Main St, Springfield, \"\"Apt 4\"\"\"",
                _ => "",
            }
        );
        1
    })
}

/// CSV rows of 9 columns (`time,level,user,ip,method,path,status,duration_ms,message`),
/// no header: quoted values holding separators and doubled quotes, a quoted method,
/// empty values.
pub fn csv(size: usize, seed: u64) -> Corpus {
    collect(size, seed, csv_records())
}

/// A corpus generator: (size, seed) -> corpus.
pub type Generator = fn(usize, u64) -> Corpus;

/// The generators by name.
pub const KINDS: &[(&str, Generator)] = &[
    ("nginx", nginx),
    ("apache", apache),
    ("json", json),
    ("java", java),
    ("python", python),
    ("go", go),
    ("cri", cri),
    ("docker", docker),
    ("syslog", syslog),
    ("csv", csv),
];

/// Makes a fresh record source.
type Source = fn() -> Records;

/// The record sources by name, in the order of [`KINDS`].
const SOURCES: &[(&str, Source)] = &[
    ("nginx", nginx_records),
    ("apache", apache_records),
    ("json", json_records),
    ("java", java_records),
    ("python", python_records),
    ("go", go_records),
    ("cri", cri_records),
    ("docker", docker_records),
    ("syslog", syslog_records),
    ("csv", csv_records),
];

/// The generator called `name`.
pub fn by_name(name: &str) -> Option<Generator> {
    KINDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The record source called `name`.
pub fn records_by_name(name: &str) -> Option<Records> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, f)| f())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = nginx(64 << 10, 1);
        assert_eq!(a.data, nginx(64 << 10, 1).data);
        assert_ne!(a.data, nginx(64 << 10, 2).data);
        assert!(a.data.len() <= 64 << 10 && a.data.len() > 63 << 10);
        assert_eq!(a.lines as usize, a.data.iter().filter(|&&b| b == b'\n').count());
        assert!(a.data.ends_with(b"\n"));
    }

    #[test]
    fn every_kind_is_deterministic_and_whole_lines() {
        for (name, make) in KINDS {
            let a = make(200 << 10, 7);
            assert_eq!(a.data, make(200 << 10, 7).data, "{name}");
            assert_ne!(a.data, make(200 << 10, 8).data, "{name}");
            assert!(a.data.ends_with(b"\n") && a.lines > 0, "{name}");
            assert!(a.data.len() <= 200 << 10, "{name}");
            assert!(std::str::from_utf8(&a.data).is_ok(), "{name}");
        }
        for line in json(64 << 10, 3).data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).expect("every json line parses");
        }
    }

    #[test]
    fn streaming_gives_the_same_bytes_and_counts() {
        assert_eq!(
            KINDS.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            SOURCES.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        for (name, make) in KINDS {
            let a = make(300 << 10, 5);
            let mut streamed = Vec::new();
            let w = write(name, 300 << 10, 5, &mut streamed).unwrap().unwrap();
            assert_eq!(streamed, a.data, "{name}");
            assert_eq!((w.bytes, w.records), (a.data.len() as u64, a.lines), "{name}");
        }
        assert!(write("nope", 1, 1, &mut Vec::new()).is_none());
    }

    #[test]
    fn timestamps() {
        let mut c = Clock::new();
        let mut s = String::new();
        c.rfc3339_nanos(&mut s);
        s.push(' ');
        c.nanos += 86_400 * 7 * 1_000_000_000 + 1_234_567;
        c.rfc3339_millis(&mut s);
        s.push(' ');
        c.bsd(&mut s);
        s.push(' ');
        c.apache(&mut s);
        s.push(' ');
        c.python(&mut s);
        assert_eq!(
            s,
            "2026-11-25T10:00:00.000000000Z 2026-12-02T10:00:00.001Z Dec  2 10:00:00 02/Dec/2026:10:00:00 +0000 \
             2026-12-02 10:00:00,001"
        );
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }

    #[test]
    fn docker_lines_are_json_and_partials_lack_the_newline() {
        let c = docker(2 << 20, 1);
        let (mut partials, mut whole) = (0, 0);
        for line in c.data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("docker line is JSON");
            let log = v["log"].as_str().unwrap();
            assert!(log.len() <= CONTAINER_SPLIT);
            if log.ends_with('\n') {
                whole += 1;
            } else {
                partials += 1;
            }
        }
        assert!(partials > 0);
        assert_eq!(whole, c.lines);
        let text = String::from_utf8(c.data).unwrap();
        assert!(text.contains("\\u001b[32m") && text.contains("\\u003c") && text.contains("café"));
    }

    #[test]
    fn cri_partials_and_streams() {
        let c = cri(2 << 20, 1);
        let text = std::str::from_utf8(&c.data).unwrap();
        let finals = text.lines().filter(|l| l.split(' ').nth(2) == Some("F")).count() as u64;
        assert_eq!(finals, c.lines);
        assert!(text.lines().any(|l| l.contains(" stdout P ")));
        assert!(text.lines().any(|l| l.contains(" stderr F ")));
    }
}
