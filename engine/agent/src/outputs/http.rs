//! `type: http`: events POSTed to an HTTP endpoint, as JSON lines or as Elasticsearch
//! `_bulk` bodies, optionally gzip-compressed, in requests of at most `batch.max_bytes`.
//!
//! Delivery is at-least-once. A flush returns `Ok` only when every request holding the
//! written events was accepted (2xx) or rejected for good (a 4xx other than 408 and 429,
//! counted in [`OutputStats::rejected`]). Connection errors, timeouts, 408, 429 and 5xx
//! are retried inside the sink, forever, with exponential backoff and jitter (or the
//! server's `Retry-After`, in seconds or as a date, up to 5 minutes), until the shutdown
//! deadline sets `stop`; the flush then fails and the events stay unacknowledged, so they
//! are read again after a restart. A request in flight then ends within `request_timeout`.
//!
//! Rejected events are counted, not routed to `dead_letter`: the sink sees encoded lines.
//!
//! `https://` URIs speak TLS with the `tls:` block ([`crate::net::tls`]); `auth:` (basic or
//! bearer) or Elasticsearch's `api_key` set the `Authorization` header. Credentials are
//! secrets: they never appear in logs, errors or `weir doctor` ([`crate::secrets`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::units::{ByteSize, Dur};

use super::buffer::BufferConfig;
use super::{Format, Output, OutputStats, Sink};
use crate::config::error::{ConfigError, Pos};
use crate::net::auth::HttpAuthConfig;
use crate::net::tls::{TlsClient, TlsConfig};

/// Default `batch.max_bytes`: event bytes per request.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;
/// Default `batch.timeout`: how long written events wait for more before they are sent.
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(1);
/// Default `request_timeout`: one whole request, connect to last response byte.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `retry.initial_backoff`.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Default `retry.max_backoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Headers the sink sets itself; a `headers:` entry may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
];

/// How the body of a request is laid out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpEncoding {
    /// One JSON object per line (`Content-Type: application/x-ndjson`).
    #[default]
    JsonLines,
    /// An Elasticsearch / OpenSearch `_bulk` body: `{"index":{"_index":INDEX}}` before
    /// each event. Per-item failures in the response are retried (429, 5xx) or counted
    /// as rejected (other 4xx).
    EsBulk,
}

/// Request body compression.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpCompression {
    /// Sent as is.
    #[default]
    None,
    /// `Content-Encoding: gzip` (fast level: logs still shrink several times).
    Gzip,
}

/// `batch:` of an http output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBatchConfig {
    /// Event bytes per request, before compression and without `_bulk` action lines
    /// (default 1MiB). A single event longer than this is sent alone.
    #[serde(default)]
    pub max_bytes: Option<Spanned<ByteSize>>,
    /// How long written events may wait for more before they are sent (default 1s).
    #[serde(default)]
    pub timeout: Option<Spanned<Dur>>,
}

/// `retry:` of an http output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRetryConfig {
    /// Wait before the first retry (default 250ms); doubled per failure, with jitter.
    #[serde(default)]
    pub initial_backoff: Option<Spanned<Dur>>,
    /// The longest wait between retries (default 30s).
    #[serde(default)]
    pub max_backoff: Option<Spanned<Dur>>,
}

/// `type: http`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOutputConfig {
    /// A name, for the pipeline's `dead_letter`, metrics and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `buffer:`: where batches wait for the destination (default: in memory).
    #[serde(default)]
    pub buffer: Option<BufferConfig>,
    /// Where requests are POSTed: `http://host:port/path` or `https://...`.
    pub uri: Spanned<String>,
    /// TLS settings for an `https://` uri (default: the system's CAs, names verified).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Basic or bearer authentication.
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
    /// An Elasticsearch API key (the base64 `encoded` form): `Authorization: ApiKey KEY`.
    #[serde(default)]
    pub api_key: Option<Spanned<String>>,
    /// `json_lines` (default) or `es_bulk`.
    #[serde(default)]
    pub encoding: HttpEncoding,
    /// The Elasticsearch index (or data stream) for `encoding: es_bulk`.
    #[serde(default)]
    pub index: Option<Spanned<String>>,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: HttpCompression,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Request size and wait.
    #[serde(default)]
    pub batch: HttpBatchConfig,
    /// Limit on one request, connect to last response byte (default 10s). A request in
    /// flight when the shutdown deadline passes finishes or times out first.
    #[serde(default)]
    pub request_timeout: Option<Spanned<Dur>>,
    /// Backoff between retries.
    #[serde(default)]
    pub retry: HttpRetryConfig,
    /// What this config is, in messages: "http output", or the output built on it
    /// ("opentelemetry output").
    #[serde(skip, default = "http_output")]
    pub kind: &'static str,
}

fn http_output() -> &'static str {
    "http output"
}

fn pos_of<T>(s: &Option<Spanned<T>>) -> Pos {
    s.as_ref().map(Pos::of).unwrap_or_default()
}

fn value_or<T: Copy>(s: &Option<Spanned<T>>, default: T) -> T {
    s.as_ref().map(|s| s.value).unwrap_or(default)
}

impl HttpOutputConfig {
    /// Event bytes per request.
    pub fn max_bytes(&self) -> usize {
        value_or(&self.batch.max_bytes, ByteSize(DEFAULT_MAX_BYTES)).0 as usize
    }

    /// How long written events wait for more.
    pub fn batch_timeout(&self) -> Duration {
        value_or(&self.batch.timeout, Dur(DEFAULT_BATCH_TIMEOUT)).0
    }

    /// The limit on one request.
    pub fn request_timeout(&self) -> Duration {
        value_or(&self.request_timeout, Dur(DEFAULT_REQUEST_TIMEOUT)).0
    }

    /// First and longest retry waits.
    pub fn backoff(&self) -> (Duration, Duration) {
        (
            value_or(&self.retry.initial_backoff, Dur(DEFAULT_INITIAL_BACKOFF)).0,
            value_or(&self.retry.max_backoff, Dur(DEFAULT_MAX_BACKOFF)).0,
        )
    }

    /// What serde cannot check, with the position of the culprit.
    fn check(&self) -> Result<(), (Pos, String)> {
        self.check_uri()?;
        self.check_encoding()?;
        self.check_headers()?;
        self.authorization()?;
        self.tls_client()?;
        self.check_limits()
    }

    /// The `Authorization` header from `auth` or `api_key`, if any.
    fn authorization(&self) -> Result<Option<String>, (Pos, String)> {
        let configured = self
            .headers
            .as_ref()
            .filter(|h| h.value.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
        match (&self.auth, &self.api_key, configured) {
            (Some(auth), Some(_), _) | (Some(auth), None, Some(_)) => Err((
                Pos::of(&auth.strategy),
                "`auth` and `api_key` (or an `Authorization` header) both set the Authorization header: keep one"
                    .into(),
            )),
            (None, Some(key), Some(_)) => Err((
                Pos::of(key),
                "`api_key` and an `Authorization` header cannot both be set".into(),
            )),
            (Some(auth), None, None) => auth.header().map(Some).map_err(|m| (Pos::of(&auth.strategy), m)),
            (None, Some(key), None) if key.value.trim().is_empty() => Err((Pos::of(key), "`api_key` is empty".into())),
            (None, Some(key), None) => Ok(Some(format!("ApiKey {}", key.value.trim()))),
            (None, None, _) => Ok(None),
        }
    }

    /// The TLS client for an `https://` uri (`tls:` or the defaults); none for `http://`.
    fn tls_client(&self) -> Result<Option<TlsClient>, (Pos, String)> {
        let https = self.uri.value.starts_with("https://");
        match (&self.tls, https) {
            (Some(tls), true) => tls.client().map(Some),
            (None, true) => TlsConfig::default().client().map(Some),
            (Some(_), false) => Err((
                Pos::of(&self.uri),
                "`tls` is set but `uri` is http://; use https://".into(),
            )),
            (None, false) => Ok(None),
        }
    }

    /// The credentials this output holds, for [`crate::secrets`] to keep out of output.
    pub fn secrets(&self) -> Vec<&str> {
        let mut found = Vec::new();
        found.extend(self.auth.iter().flat_map(HttpAuthConfig::secrets));
        found.extend(self.api_key.as_ref().map(|k| k.value.as_str()));
        for (name, value) in self.headers.iter().flat_map(|h| h.value.iter()) {
            if name.eq_ignore_ascii_case("authorization") {
                found.push(value);
            }
        }
        // The password of `https://user:password@host/...`.
        let authority = self.uri.value.split_once("://").map_or("", |(_, rest)| rest);
        let authority = authority.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password);
        }
        found
    }

    /// `uri` is an http:// URI with a host.
    fn check_uri(&self) -> Result<(), (Pos, String)> {
        let uri_pos = Pos::of(&self.uri);
        let uri: ureq::http::Uri = self
            .uri
            .value
            .parse()
            .map_err(|e| (uri_pos, format!("`uri` {:?} is not a URI: {e}", self.uri.value)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err((
                uri_pos,
                format!("`uri` must start with http:// or https:// (got {:?})", self.uri.value),
            ));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err((uri_pos, format!("`uri` {:?} has no host", self.uri.value)));
        }
        Ok(())
    }

    /// `index` is set, and valid, exactly with `encoding: es_bulk`.
    fn check_encoding(&self) -> Result<(), (Pos, String)> {
        let uri_pos = Pos::of(&self.uri);
        match (&self.encoding, &self.index) {
            (HttpEncoding::EsBulk, None) => {
                return Err((
                    uri_pos,
                    "`encoding: es_bulk` needs `index` (the Elasticsearch index to write to)".into(),
                ));
            }
            (HttpEncoding::EsBulk, Some(index)) => check_index(&index.value).map_err(|m| (Pos::of(index), m))?,
            (HttpEncoding::JsonLines, Some(index)) => {
                return Err((Pos::of(index), "`index` is only used with `encoding: es_bulk`".into()));
            }
            (HttpEncoding::JsonLines, None) => {}
        }
        Ok(())
    }

    /// `headers` are valid and not ones weir sets.
    fn check_headers(&self) -> Result<(), (Pos, String)> {
        if let Some(headers) = &self.headers {
            for (name, value) in &headers.value {
                let at = Pos::of(headers);
                ureq::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| (at, format!("{name:?} is not a valid header name")))?;
                ureq::http::HeaderValue::from_str(value)
                    .map_err(|_| (at, format!("the value of header {name:?} is not valid in a header")))?;
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err((at, format!("header {name:?} is set by weir and cannot be configured")));
                }
            }
        }
        Ok(())
    }

    /// Sizes and durations are more than 0, and the backoff grows.
    fn check_limits(&self) -> Result<(), (Pos, String)> {
        if self.max_bytes() == 0 {
            return Err((
                pos_of(&self.batch.max_bytes),
                "`batch.max_bytes` must be more than 0".into(),
            ));
        }
        if self.request_timeout().is_zero() {
            return Err((
                pos_of(&self.request_timeout),
                "`request_timeout` must be more than 0".into(),
            ));
        }
        let (initial, max) = self.backoff();
        if initial.is_zero() {
            return Err((
                pos_of(&self.retry.initial_backoff),
                "`retry.initial_backoff` must be more than 0".into(),
            ));
        }
        if max < initial {
            let at = if self.retry.max_backoff.is_some() {
                pos_of(&self.retry.max_backoff)
            } else {
                pos_of(&self.retry.initial_backoff)
            };
            return Err((
                at,
                format!(
                    "`retry.max_backoff` ({}) is shorter than `retry.initial_backoff` ({})",
                    Dur(max),
                    Dur(initial)
                ),
            ));
        }
        Ok(())
    }

    /// Builds the sink. Nothing is connected yet: the first request connects.
    pub fn open(&self, stats: &Arc<OutputStats>, stop: &Arc<AtomicBool>) -> anyhow::Result<HttpSink> {
        let body: Box<dyn Body> = match (&self.encoding, &self.index) {
            (HttpEncoding::EsBulk, Some(index)) => {
                let index = serde_json::to_string(&index.value)?;
                Box::new(EsBulk {
                    action: format!("{{\"index\":{{\"_index\":{index}}}}}\n").into_bytes(),
                    buf: Vec::new(),
                })
            }
            _ => Box::new(JsonLines),
        };
        self.open_with(stats, stop, body)
    }

    /// Builds the sink with `body` making each request's body (what the outputs built on
    /// this one, e.g. `opentelemetry`, bring).
    pub fn open_with(
        &self,
        stats: &Arc<OutputStats>,
        stop: &Arc<AtomicBool>,
        body: Box<dyn Body>,
    ) -> anyhow::Result<HttpSink> {
        let failed = |(_, msg): (Pos, String)| anyhow::anyhow!("{}: {msg}", self.kind);
        self.check().map_err(failed)?;
        let tls = self.tls_client().map_err(failed)?;
        let authorization = self.authorization().map_err(failed)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(self.request_timeout()))
            .user_agent(format!("weir/{}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut headers = Vec::new();
        let mut content_type = None;
        for (name, value) in self.headers.iter().flat_map(|h| h.value.iter()) {
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.clone());
            } else {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers.extend(authorization.map(|a| ("authorization".to_string(), a)));
        let content_type = content_type.unwrap_or_else(|| body.content_type().into());
        let (initial_backoff, max_backoff) = self.backoff();
        let label = match &self.name {
            Some(name) => name.clone(),
            None => self.uri.value.clone(),
        };
        Ok(HttpSink {
            client: Client {
                agent: crate::net::https::agent(config, tls),
                uri: self.uri.value.clone(),
                headers,
                content_type,
                gzip: self.compression == HttpCompression::Gzip,
                es_bulk: self.encoding == HttpEncoding::EsBulk,
            },
            bufs: Bufs::default(),
            body,
            kind: self.kind,
            label,
            max_bytes: self.max_bytes(),
            interval: self.batch_timeout(),
            initial_backoff,
            max_backoff,
            stats: stats.clone(),
            stop: stop.clone(),
            pending: Vec::new(),
            rng: seed(),
            failing: None,
            rejects: RejectLog::default(),
        })
    }
}

impl Output for HttpOutputConfig {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn buffer(&self) -> Option<&BufferConfig> {
        self.buffer.as_ref()
    }

    fn format(&self) -> Format {
        Format::Json
    }

    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check()
            .map_err(|(pos, msg)| ConfigError::at(file, pos, format!("{}: {msg}", self.kind)))
    }

    fn open(&self, stats: &Arc<OutputStats>, abort: &Arc<AtomicBool>) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(HttpOutputConfig::open(self, stats, abort)?))
    }

    fn secrets(&self) -> Vec<&str> {
        HttpOutputConfig::secrets(self)
    }
}

/// Elasticsearch's rules for index names, so a typo fails at `weir check`.
fn check_index(index: &str) -> Result<(), String> {
    if index.is_empty() {
        return Err("`index` is empty".into());
    }
    if index.starts_with(['-', '_', '+']) || index == "." || index == ".." {
        return Err(format!("index {index:?} cannot start with -, _ or + (nor be . or ..)"));
    }
    if let Some(c) = index
        .chars()
        .find(|c| c.is_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(*c))
    {
        return Err(format!(
            "index {index:?} contains {c:?}; Elasticsearch index names are lowercase, \
             without spaces or any of \\ / * ? \" < > | , # :"
        ));
    }
    Ok(())
}

/// The HTTP side: one keep-alive agent and what every request carries.
#[derive(Debug)]
struct Client {
    agent: ureq::Agent,
    uri: String,
    headers: Vec<(String, String)>,
    content_type: String,
    gzip: bool,
    es_bulk: bool,
}

/// What one request came to.
#[derive(Debug)]
enum Outcome {
    /// 2xx, with the response body when it matters (`_bulk`).
    Accepted(Vec<u8>),
    /// A 4xx that no retry can fix.
    Rejected(u16, Vec<u8>),
    /// Worth another try, after at least `retry_after` when the server said so.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Client {
    fn post(&self, body: &[u8]) -> Outcome {
        let mut req = self.agent.post(&self.uri).header("content-type", &self.content_type);
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let mut resp = match req.send(body) {
            Ok(resp) => resp,
            Err(e) => {
                return Outcome::Retry {
                    reason: match e {
                        ureq::Error::Io(e) => e.to_string(), // not "io: ..."
                        e => e.to_string(),
                    },
                    retry_after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
            .map(|d| d.min(MAX_RETRY_AFTER));
        let accepted = (200..300).contains(&status);
        // A `_bulk` response lists every item; other bodies only go into logs. Reading
        // the body to its end also lets the connection be reused.
        let limit = if accepted && self.es_bulk { 256 << 20 } else { 64 << 10 };
        let body = resp.body_mut().with_config().limit(limit).read_to_vec();
        match status {
            200..=299 => match body {
                Ok(body) => Outcome::Accepted(body),
                Err(e) if self.es_bulk => Outcome::Retry {
                    reason: format!("status {status} but the _bulk response could not be read: {e}"),
                    retry_after: None,
                },
                Err(_) => Outcome::Accepted(Vec::new()),
            },
            408 | 429 | 500..=599 => Outcome::Retry {
                reason: format!("status {status}{}", excerpt(body.as_deref().unwrap_or_default())),
                retry_after,
            },
            400..=499 => Outcome::Rejected(status, body.unwrap_or_default()),
            _ => Outcome::Retry {
                reason: format!(
                    "unexpected status {status} (redirects are not followed: point `uri` at the final address)"
                ),
                retry_after,
            },
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`)
/// counted from `now`. `None` when it is neither.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate, the form HTTP/1.1 servers send.
    let (_, date) = value.split_once(", ")?;
    let parts: Vec<&str> = date.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()?;
    let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// `: <first bytes of body>` for a log line, or nothing.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// How a request's body is made from the JSON lines (one event per line) it carries.
pub trait Body: std::fmt::Debug + Send {
    /// The uncompressed body for `lines`. Never fails: a line it cannot read goes in as
    /// it is.
    fn encode<'a>(&'a mut self, lines: &'a [u8]) -> &'a [u8];

    /// The body's `Content-Type`, unless `headers` set one.
    fn content_type(&self) -> &'static str;

    /// Gives back memory after an outsized request.
    fn trim(&mut self, keep: usize) {
        let _ = keep;
    }
}

/// `encoding: json_lines`: the lines as they are.
#[derive(Debug)]
struct JsonLines;

impl Body for JsonLines {
    fn encode<'a>(&'a mut self, lines: &'a [u8]) -> &'a [u8] {
        lines
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }
}

/// `encoding: es_bulk`: an action line before each event.
#[derive(Debug)]
struct EsBulk {
    /// `{"index":{"_index":...}}\n`.
    action: Vec<u8>,
    buf: Vec<u8>,
}

impl Body for EsBulk {
    fn encode<'a>(&'a mut self, lines: &'a [u8]) -> &'a [u8] {
        self.buf.clear();
        for line in split_lines(lines) {
            self.buf.extend_from_slice(&self.action);
            self.buf.extend_from_slice(line);
            self.buf.push(b'\n');
        }
        &self.buf
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn trim(&mut self, keep: usize) {
        trim(&mut self.buf, keep);
    }
}

/// Drops a buffer that grew past four times `keep`.
pub fn trim(buf: &mut Vec<u8>, keep: usize) {
    if buf.capacity() > keep.saturating_mul(4) {
        *buf = Vec::new();
    }
}

/// The reused gzip buffer.
#[derive(Debug, Default)]
struct Bufs {
    gzip: Vec<u8>,
}

impl Bufs {
    /// `plain`, gzipped when `gzip` is set.
    fn compress<'a>(&'a mut self, plain: &'a [u8], gzip: bool) -> io::Result<&'a [u8]> {
        if !gzip {
            return Ok(plain);
        }
        self.gzip.clear();
        let mut enc = flate2::write::GzEncoder::new(std::mem::take(&mut self.gzip), flate2::Compression::fast());
        enc.write_all(plain)?;
        self.gzip = enc.finish()?;
        Ok(&self.gzip)
    }
}

/// The lines of `bytes`, without their `\n`; a last line without `\n` counts.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').filter(move |_| !bytes.is_empty())
}

/// How many events (lines) `bytes` holds.
fn count_lines(bytes: &[u8]) -> u64 {
    split_lines(bytes).count() as u64
}

/// The length of the next request's share of `pending`: whole lines, at most `max`
/// bytes, or the first line alone when it is longer than `max`.
fn chunk_len(pending: &[u8], max: usize) -> usize {
    if pending.len() <= max {
        return pending.len();
    }
    if let Some(i) = pending[..max].iter().rposition(|&b| b == b'\n') {
        return i + 1;
    }
    match pending[max..].iter().position(|&b| b == b'\n') {
        Some(i) => max + i + 1,
        None => pending.len(),
    }
}

/// A seed for the backoff jitter: differs between processes so that agents restarted
/// together do not retry in step.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

/// The run of failures being retried, for the log line when it ends.
#[derive(Debug)]
struct Failing {
    since: Instant,
    retries: u64,
}

/// Rejections are logged at most once per [`RejectLog::EVERY`], with a count of the rest.
#[derive(Debug, Default)]
struct RejectLog {
    last: Option<Instant>,
    unlogged_events: u64,
}

impl RejectLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn due(&mut self, events: u64) -> Option<u64> {
        self.unlogged_events += events;
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.unlogged_events))
    }
}

/// The http output's sink. See the module docs for its delivery rules.
#[derive(Debug)]
pub struct HttpSink {
    client: Client,
    bufs: Bufs,
    /// Makes each request's body.
    body: Box<dyn Body>,
    /// "http output", or the output built on it.
    kind: &'static str,
    label: String,
    max_bytes: usize,
    interval: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    stats: Arc<OutputStats>,
    stop: Arc<AtomicBool>,
    /// Written, not yet delivered: whole JSON lines.
    pending: Vec<u8>,
    rng: u64,
    failing: Option<Failing>,
    rejects: RejectLog,
}

impl HttpSink {
    /// Bytes written and not yet delivered. Stays under `batch.max_bytes` plus one
    /// write: a write that finds `max_bytes` waiting sends full requests first.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Delivers the first request's share of `pending` and drops it from there.
    fn send_next(&mut self) -> io::Result<()> {
        let n = chunk_len(&self.pending, self.max_bytes);
        let pending = std::mem::take(&mut self.pending);
        let result = self.deliver(&pending[..n]);
        self.pending = pending;
        if result.is_ok() {
            self.pending.drain(..n);
            if self.pending.capacity() > self.max_bytes.saturating_mul(4) && self.pending.len() <= self.max_bytes {
                self.pending.shrink_to(self.max_bytes.saturating_mul(2));
            }
            self.body.trim(self.max_bytes);
            trim(&mut self.bufs.gzip, self.max_bytes);
        }
        result
    }

    /// Sends `lines` until they are accepted or rejected for good, or `stop` is set.
    fn deliver(&mut self, lines: &[u8]) -> io::Result<()> {
        // With `_bulk`, the items the server could not take yet are sent again alone.
        let mut retry_lines: Option<Vec<u8>> = None;
        let mut attempt: u32 = 0;
        loop {
            let lines = retry_lines.as_deref().unwrap_or(lines);
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::Error::other(format!(
                    "{} `{}`: stopped with {} events undelivered{}; they stay unacknowledged \
                     and are read again after a restart",
                    self.kind,
                    self.label,
                    count_lines(lines),
                    if self.failing.is_some() {
                        " (the server kept failing)"
                    } else {
                        ""
                    },
                )));
            }
            let plain = self.body.encode(lines);
            let body = self.bufs.compress(plain, self.client.gzip)?;
            let (reason, retry_after) = match self.client.post(body) {
                Outcome::Accepted(response) => {
                    let again = if self.client.es_bulk {
                        self.bulk_items(lines, &response)
                    } else {
                        None
                    };
                    match again {
                        None => {
                            self.recovered();
                            return Ok(());
                        }
                        Some((again, reason)) => {
                            retry_lines = Some(again);
                            (reason, None)
                        }
                    }
                }
                Outcome::Rejected(status, response) => {
                    let events = count_lines(lines);
                    self.stats.rejected.fetch_add(events, Ordering::Relaxed);
                    if let Some(events) = self.rejects.due(events) {
                        tracing::warn!(
                            "{} `{}`: status {status}{}; {events} events rejected for good \
                             (not retried; counted as rejected)",
                            self.kind,
                            self.label,
                            excerpt(&response),
                        );
                    }
                    self.recovered();
                    return Ok(());
                }
                Outcome::Retry { reason, retry_after } => (reason, retry_after),
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            match &mut self.failing {
                Some(f) => f.retries += 1,
                None => {
                    tracing::warn!(
                        "{} `{}`: {reason}; retrying with backoff until it succeeds \
                         (further failures are not logged until then)",
                        self.kind,
                        self.label
                    );
                    self.failing = Some(Failing {
                        since: Instant::now(),
                        retries: 1,
                    });
                }
            }
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
            attempt = attempt.saturating_add(1);
            self.sleep(wait);
        }
    }

    /// Reads a `_bulk` response: counts the items rejected for good, and returns the
    /// lines of the items to send again (429, 5xx) with a reason, if any.
    fn bulk_items(&mut self, lines: &[u8], response: &[u8]) -> Option<(Vec<u8>, String)> {
        #[derive(Deserialize)]
        struct Response {
            #[serde(default)]
            errors: bool,
            #[serde(default)]
            items: Vec<BTreeMap<String, Item>>,
        }
        #[derive(Deserialize)]
        struct Item {
            status: u16,
            #[serde(default)]
            error: Option<serde_json::Value>,
        }
        let parsed: Response = match serde_json::from_slice(response) {
            Ok(r) => r,
            // A 2xx that is not a `_bulk` response: taken as accepted.
            Err(_) => return None,
        };
        if !parsed.errors {
            return None;
        }
        let events = count_lines(lines);
        if parsed.items.len() as u64 != events {
            tracing::warn!(
                "{} `{}`: the _bulk response has {} items for {events} events; taken as accepted",
                self.kind,
                self.label,
                parsed.items.len()
            );
            return None;
        }
        let mut again = Vec::new();
        let mut retry_reason = None;
        let mut rejected = 0;
        let mut reject_reason = None;
        for (line, item) in split_lines(lines).zip(&parsed.items) {
            let Some(item) = item.values().next() else { continue };
            match item.status {
                200..=299 => {}
                408 | 429 | 500..=599 => {
                    again.extend_from_slice(line);
                    again.push(b'\n');
                    retry_reason.get_or_insert_with(|| format!("_bulk item status {}", item.status));
                }
                _ => {
                    rejected += 1;
                    reject_reason.get_or_insert_with(|| {
                        let error = item.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
                        format!("status {}: {}", item.status, &error[..error.len().min(300)])
                    });
                }
            }
        }
        if rejected > 0 {
            self.stats.rejected.fetch_add(rejected, Ordering::Relaxed);
            if let Some(events) = self.rejects.due(rejected) {
                tracing::warn!(
                    "{} `{}`: _bulk item {}; {events} events rejected for good (counted as rejected)",
                    self.kind,
                    self.label,
                    reject_reason.unwrap_or_default()
                );
            }
        }
        if again.is_empty() {
            return None;
        }
        let n = count_lines(&again);
        Some((
            again,
            format!(
                "{} ({n} of {events} items to send again)",
                retry_reason.unwrap_or_default()
            ),
        ))
    }

    /// Logs the end of a run of failures.
    fn recovered(&mut self) {
        if let Some(f) = self.failing.take() {
            tracing::info!(
                "{} `{}`: delivering again after {} retries over {:.1?}",
                self.kind,
                self.label,
                f.retries,
                f.since.elapsed()
            );
        }
    }

    /// Exponential backoff with jitter: half the step, plus up to as much again at random.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_backoff);
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let half = step / 2;
        half + half.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Sleeps `wait`, waking early when `stop` is set.
    fn sleep(&self, wait: Duration) {
        let end = Instant::now() + wait;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}

impl Sink for HttpSink {
    fn write(&mut self, bytes: &[u8], _events: u64) -> io::Result<()> {
        // Full requests go out before more is taken, so what waits stays under
        // `max_bytes` plus this write, even when the server is down.
        while self.pending.len() >= self.max_bytes {
            self.send_next()?;
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.send_next()?;
        }
        Ok(())
    }

    fn flush_bytes(&self) -> usize {
        self.max_bytes
    }

    fn flush_interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_lines_within_max() {
        let p = b"aaa\nbb\ncccc\n";
        assert_eq!(chunk_len(p, 100), p.len());
        assert_eq!(chunk_len(p, 7), 7);
        assert_eq!(chunk_len(p, 6), 4);
        // A line longer than max goes alone.
        assert_eq!(chunk_len(p, 2), 4);
        assert_eq!(chunk_len(b"abcdef", 2), 6);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_retry_after("Tue, 01 Mar 2016 00:00:00 GMT", now),
            Some(Duration::from_secs(1_456_790_400 - 1_445_412_480))
        );
        // In the past: no wait.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("Wed, 21 Foo 2015 07:28:30 GMT", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn lines_are_counted() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\n"), 1);
        assert_eq!(count_lines(b"a\n\nb\n"), 3);
        assert_eq!(count_lines(b"a\nb"), 2);
    }

    #[test]
    fn backoff_grows_to_the_max_with_jitter() {
        let stats = Arc::new(OutputStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let cfg: HttpOutputConfig =
            serde_saphyr::from_str("uri: http://127.0.0.1:9/\nretry: { initial_backoff: 100ms, max_backoff: 1s }\n")
                .unwrap();
        let mut sink = cfg.open(&stats, &stop).unwrap();
        for attempt in 0..30 {
            let step = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(1));
            let d = sink.backoff(attempt);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?} for step {step:?}");
        }
    }

    #[test]
    fn auth_sets_the_authorization_header() {
        let header = |yaml: &str| {
            let cfg: HttpOutputConfig = serde_saphyr::from_str(yaml).unwrap();
            cfg.authorization().unwrap()
        };
        let basic = header("uri: https://x/\nauth: { strategy: basic, user: weir, password: s3cr3t }\n");
        assert_eq!(basic.as_deref(), Some("Basic d2VpcjpzM2NyM3Q="));
        let bearer = header("uri: https://x/\nauth: { strategy: bearer, token: t0k3n }\n");
        assert_eq!(bearer.as_deref(), Some("Bearer t0k3n"));
        assert_eq!(
            header("uri: https://x/\napi_key: abc=\n").as_deref(),
            Some("ApiKey abc=")
        );
        assert_eq!(header("uri: https://x/\n"), None);
    }

    #[test]
    fn config_errors_name_the_key() {
        let check = |yaml: &str| {
            let cfg: HttpOutputConfig = serde_saphyr::from_str(yaml).unwrap();
            cfg.check().map_err(|(pos, msg)| (pos.line, msg))
        };
        assert!(check("uri: http://localhost:9200/_bulk\nencoding: es_bulk\nindex: logs\n").is_ok());
        assert!(
            check("uri: https://example.invalid/\n").is_ok(),
            "https with the system's CAs"
        );
        let (line, msg) = check("uri: http://x/\ntls: { verify_hostname: false }\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(msg.contains("use https://"), "{msg}");
        let (line, msg) = check("uri: https://x/\nauth: { strategy: basic, user: a }\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("takes `user` and `password`"), "{msg}");
        let both = "uri: https://x/\napi_key: abcd\nheaders: { Authorization: x }\n";
        assert!(check(both).unwrap_err().1.contains("cannot both be set"));
        let (_, msg) = check("uri: https://x/\nauth: { strategy: bearer, token: t0k3n }\napi_key: k\n").unwrap_err();
        assert!(msg.contains("keep one"), "{msg}");
        assert!(check("uri: ftp://x/\n").unwrap_err().1.contains("http://"));
        assert!(
            check("uri: http://x/\nencoding: es_bulk\n")
                .unwrap_err()
                .1
                .contains("needs `index`")
        );
        let (line, msg) = check("uri: http://x/\nencoding: es_bulk\nindex: Logs\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("lowercase"), "{msg}");
        assert!(
            check("uri: http://x/\nindex: logs\n")
                .unwrap_err()
                .1
                .contains("only used with")
        );
        assert!(
            check("uri: http://x/\nheaders: { Content-Length: '5' }\n")
                .unwrap_err()
                .1
                .contains("set by weir")
        );
        assert!(
            check("uri: http://x/\nheaders: { 'a b': c }\n")
                .unwrap_err()
                .1
                .contains("header name")
        );
        let (line, msg) = check("uri: http://x/\nbatch:\n  max_bytes: 0\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("max_bytes"), "{msg}");
        let (line, msg) = check("uri: http://x/\nretry:\n  initial_backoff: 2s\n  max_backoff: 1s\n").unwrap_err();
        assert_eq!(line, 4);
        assert!(msg.contains("shorter"), "{msg}");
        assert!(
            check("uri: http://x/\nrequest_timeout: 0s\n")
                .unwrap_err()
                .1
                .contains("request_timeout")
        );
    }
}
