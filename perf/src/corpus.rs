//! Synthetic log corpora.

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
}

/// A generated corpus and what it holds.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The bytes, whole lines only.
    pub data: Vec<u8>,
    /// Number of lines (records) in `data`.
    pub lines: u64,
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

/// nginx "combined" access log lines (about 200 bytes each) until `size` bytes: the
/// last line is whole, so the corpus may end a little short of `size`.
pub fn nginx(size: usize, seed: u64) -> Corpus {
    use std::fmt::Write;
    let mut rng = Rng::new(seed);
    let mut data = String::with_capacity(size + 512);
    let mut lines = 0;
    let mut second = 1_700_000_000u64;
    let mut line = String::with_capacity(512);
    loop {
        line.clear();
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
        if data.len() + line.len() > size {
            break;
        }
        data.push_str(&line);
        lines += 1;
    }
    Corpus {
        data: data.into_bytes(),
        lines,
    }
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

/// Pushes lines made by `line` until `size` bytes (whole lines only).
fn fill(size: usize, seed: u64, mut line: impl FnMut(&mut Rng, &mut String, u64)) -> Corpus {
    let mut rng = Rng::new(seed);
    let mut data = String::with_capacity(size + 4096);
    let mut record = String::with_capacity(4096);
    let mut lines = 0;
    let mut n = 0;
    loop {
        record.clear();
        line(&mut rng, &mut record, n);
        if data.len() + record.len() > size {
            break;
        }
        lines += record.matches('\n').count() as u64;
        data.push_str(&record);
        n += 1;
    }
    Corpus {
        data: data.into_bytes(),
        lines,
    }
}

/// JSON lines (about 250 bytes): level, message (with escapes and unicode), numbers,
/// booleans, a nested object and an array. `lines` counts records.
pub fn json(size: usize, seed: u64) -> Corpus {
    use std::fmt::Write;
    fill(size, seed, |rng, out, n| {
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
    })
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

/// Java application logs: timestamped lines, one in five followed by an exception with
/// 5-25 frames and sometimes a `Caused by:` section. `lines` counts records (what a
/// multiline `start` rule on the timestamp makes of it).
pub fn java(size: usize, seed: u64) -> Corpus {
    use std::fmt::Write;
    let mut corpus = fill(size, seed, |rng, out, n| {
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
    });
    // `fill` counted lines; a record is a line that starts with the date.
    corpus.lines = corpus
        .data
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"2026-"))
        .count() as u64;
    corpus
}

/// A corpus generator: (size, seed) -> corpus.
pub type Generator = fn(usize, u64) -> Corpus;

/// The generators by name.
pub const KINDS: &[(&str, Generator)] = &[("nginx", nginx), ("json", json), ("java", java)];

/// The generator called `name`.
pub fn by_name(name: &str) -> Option<Generator> {
    KINDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
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
            assert!(a.data.ends_with(b"\n") && a.lines > 0, "{name}");
        }
        for line in json(64 << 10, 3).data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).expect("every json line parses");
        }
    }
}
