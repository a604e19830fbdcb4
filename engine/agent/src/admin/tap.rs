//! `GET /tap?component=NAME`: a sample of the events leaving one component, streamed as
//! JSON lines while the client stays connected (what `weir tap` reads).
//!
//! Every input, processor and output of a run has a [`TapPoint`]. With no tap attached a
//! point costs one relaxed atomic load per batch ([`TapPoint::is_attached`]). With one
//! attached, the events its rate allows are picked evenly from the batch, copied into a
//! small scratch batch, encoded by the agent's own [`JsonEncoder`] and handed to the
//! client's thread through a bounded channel with `try_send`: a client that reads slowly
//! loses samples (counted, and logged when it leaves), it never slows or blocks the
//! pipeline.
//!
//! Which events a point sees:
//! - an input: the events as read (after its decoder, before any processor);
//! - a processor: the live events after it (those it dropped or dead-lettered are gone);
//! - an output: the events the output is given, whatever its own `format`.
//!
//! Several taps may be attached at once, on one component or several, each with its own
//! rate, up to [`MAX_TAPS`] in all; one more is refused (503).
//!
//! Taps show the events themselves, so they answer only connections from the same host
//! (loopback) when the admin endpoint listens on a wildcard address (`0.0.0.0`, `[::]`):
//! such an address is usually chosen for scraping `/metrics`. An admin endpoint bound to a
//! specific non-loopback address was put there on purpose; its taps answer anyone who can
//! reach it.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use weir_core::encode::{Encoder, JsonEncoder, Route, routed};
use weir_core::model::{Batch, Buf, Event, Field, KeyTable, Span, Value};
use weir_core::pipeline::Processor;

/// Taps attached at once, over every component; one more is refused.
pub const MAX_TAPS: usize = 8;

/// Sampled blocks (one per sampled batch) waiting for a client's thread; past this, samples
/// are lost.
const QUEUE_BLOCKS: usize = 64;

/// The default and the highest rate a tap may ask for, in events per second.
pub const DEFAULT_RATE: f64 = 100.0;
const MAX_RATE: f64 = 100_000.0;

/// The tap points of a run: one per input, processor and output, in that order.
#[derive(Debug)]
pub struct Taps {
    points: Vec<Arc<TapPoint>>,
    inputs: usize,
    processors: usize,
    /// Taps attached now, over every point.
    attached: AtomicUsize,
    /// Set when the run ends: every tap's stream ends.
    closed: AtomicBool,
}

impl Taps {
    /// The points of the components named (by the names `/metrics` gives them).
    pub fn new(keys: &Arc<KeyTable>, inputs: Vec<String>, processors: Vec<String>, outputs: Vec<String>) -> Taps {
        let (n_inputs, n_processors) = (inputs.len(), processors.len());
        Taps {
            points: inputs
                .into_iter()
                .chain(processors)
                .chain(outputs)
                .map(|name| Arc::new(TapPoint::new(name, keys.clone())))
                .collect(),
            inputs: n_inputs,
            processors: n_processors,
            attached: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Input `i`'s point.
    pub fn input(&self, i: usize) -> &Arc<TapPoint> {
        &self.points[i]
    }

    /// Processor `i`'s point.
    pub fn processor(&self, i: usize) -> &Arc<TapPoint> {
        &self.points[self.inputs + i]
    }

    /// Output `i`'s point.
    pub fn output(&self, i: usize) -> &Arc<TapPoint> {
        &self.points[self.inputs + self.processors + i]
    }

    /// Whether a batch of input `i` must be made into events for a tap (the input's or an
    /// output's): the shortcut that encodes plain lines without making events is then not
    /// taken. One relaxed load per point.
    pub fn wants_events(&self, i: usize) -> bool {
        let outputs = &self.points[self.inputs + self.processors..];
        self.input(i).is_attached() || outputs.iter().any(|p| p.is_attached())
    }

    /// Every point, inputs first, then processors, then outputs.
    pub fn points(&self) -> &[Arc<TapPoint>] {
        &self.points
    }

    /// The point of the component called `name`: its full name (`processors[0].parse_json`),
    /// or what follows the dot when only one component has it (`parse_json`). The error
    /// lists the names there are.
    pub fn find(&self, name: &str) -> Result<&Arc<TapPoint>, String> {
        if let Some(p) = self.points.iter().find(|p| p.name == name) {
            return Ok(p);
        }
        let short: Vec<_> = self
            .points
            .iter()
            .filter(|p| p.name.split_once('.').is_some_and(|(_, s)| s == name))
            .collect();
        let names = || {
            self.points
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match short[..] {
            [one] => Ok(one),
            [] => Err(format!("unknown component `{name}`; the components are: {}", names())),
            _ => Err(format!(
                "`{name}` names several components ({}); use the full name",
                short.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Ends every tap's stream (the run is over).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Where the events leaving one component can be sampled.
pub struct TapPoint {
    name: String,
    /// True while at least one tap is attached: the only thing the pipeline reads when none is.
    attached: AtomicBool,
    state: Mutex<TapState>,
    /// Events sent to taps, and events their clients were too slow to take.
    sent: AtomicU64,
    lost: AtomicU64,
}

impl std::fmt::Debug for TapPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPoint")
            .field("name", &self.name)
            .field("attached", &self.attached)
            .finish_non_exhaustive()
    }
}

/// What sampling needs, behind the point's lock (taken only while a tap is attached).
struct TapState {
    sessions: Vec<Session>,
    next_id: u64,
    encoder: JsonEncoder,
    /// The picked events, copied with their values into its arena.
    scratch: Batch,
    fields: Vec<Field>,
}

/// One attached tap.
struct Session {
    id: u64,
    tx: Sender<Vec<u8>>,
    bucket: Bucket,
    /// xorshift state: where in a batch the picks start, so a low rate does not always show
    /// the first event of a batch.
    random: u64,
}

impl Session {
    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }
}

impl TapPoint {
    fn new(name: String, keys: Arc<KeyTable>) -> TapPoint {
        TapPoint {
            name,
            attached: AtomicBool::new(false),
            state: Mutex::new(TapState {
                sessions: Vec::new(),
                next_id: 0,
                encoder: JsonEncoder::new(keys),
                scratch: Batch::default(),
                fields: Vec::new(),
            }),
            sent: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a tap is attached: one relaxed load, the whole cost of a point with none.
    #[inline]
    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
    }

    /// Events sent to taps so far, and events lost because a tap's client was slow.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.lost.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a tap taking at most `rate` events per second; the receiver gets blocks of
    /// JSON lines.
    fn attach(&self, rate: f64) -> (u64, Receiver<Vec<u8>>) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_BLOCKS);
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        state.sessions.push(Session {
            id,
            tx,
            bucket: Bucket::new(rate, Instant::now()),
            random: (seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
        });
        self.attached.store(true, Ordering::Relaxed);
        (id, rx)
    }

    fn detach(&self, id: u64) {
        let mut state = self.lock();
        state.sessions.retain(|s| s.id != id);
        self.attached.store(!state.sessions.is_empty(), Ordering::Relaxed);
    }

    /// Offers the events of `batch` that `route` selects to every attached tap: each takes
    /// what its rate allows, picked evenly over the batch. Call it only when
    /// [`TapPoint::is_attached`].
    pub fn sample(&self, batch: &Batch, route: Route) {
        let live = routed(batch, route).count();
        if live == 0 {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        let TapState {
            sessions,
            encoder,
            scratch,
            fields,
            ..
        } = &mut *state;
        sessions.retain_mut(|session| {
            let k = session.bucket.take(now, live);
            if k == 0 {
                return true;
            }
            let phase = (session.next_random() % live as u64) as usize;
            copy_picked(batch, route, (live, k, phase), scratch, fields);
            let mut block = Vec::new();
            encoder.encode(scratch, &mut block);
            match session.tx.try_send(block) {
                Ok(()) => {
                    self.sent.fetch_add(k as u64, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Full(_)) => {
                    self.lost.fetch_add(k as u64, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        self.attached.store(!sessions.is_empty(), Ordering::Relaxed);
    }
}

/// Makes `into` a batch of `k` of the `live` events `route` selects in `batch`, picked
/// evenly from `phase` on (wrapping around), their values copied into `into`'s arena (the
/// raw lines are not: the JSON encoder does not read them).
fn copy_picked(
    batch: &Batch,
    route: Route,
    (live, k, phase): (usize, usize, usize),
    into: &mut Batch,
    fields: &mut Vec<Field>,
) {
    let _ = into.reset(Vec::new(), batch.origin);
    for (n, event) in routed(batch, route).enumerate() {
        // One event in each k-th of the batch: among any `live` numbers in a row, exactly k
        // have `m * k % live < k`.
        if (n + phase) * k % live >= k {
            continue;
        }
        fields.clear();
        for f in event.fields() {
            let value = match f.value {
                Value::Str(s) => Value::Str(into.push_arena(batch.bytes(s))),
                Value::Json(s) => Value::Json(into.push_arena(batch.bytes(s))),
                other => other,
            };
            fields.push(Field { key: f.key, value });
        }
        let mut copy = Event::bare(Span::new(Buf::Arena, 0, 0));
        copy.timestamp = event.timestamp;
        copy.extend_fields(fields);
        into.push(copy);
    }
}

/// A token bucket: `rate` events per second, at most a second's worth saved up, one to
/// start with (so the first event shows at once).
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: 1.0,
            last: now,
        }
    }

    /// Takes up to `wanted` events' worth; returns how many.
    fn take(&mut self, now: Instant, wanted: usize) -> usize {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.last = now;
        let k = (self.tokens.floor() as usize).min(wanted);
        self.tokens -= k as f64;
        k
    }
}

/// A processor with a tap point after it: runs the processor, then offers what comes out.
pub struct Tapped {
    inner: Box<dyn Processor>,
    point: Arc<TapPoint>,
}

impl std::fmt::Debug for Tapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tapped")
            .field("point", &self.point.name)
            .finish_non_exhaustive()
    }
}

impl Tapped {
    /// `inner`, tapped at `point`.
    pub fn new(inner: Box<dyn Processor>, point: Arc<TapPoint>) -> Tapped {
        Tapped { inner, point }
    }
}

impl Processor for Tapped {
    fn process(&mut self, batch: &mut Batch) {
        self.inner.process(batch);
        if self.point.is_attached() {
            self.point.sample(batch, Route::Main);
        }
    }

    fn take_failures(&mut self) -> u64 {
        self.inner.take_failures()
    }

    fn flush_interval(&self) -> Option<Duration> {
        self.inner.flush_interval()
    }

    fn flush(&mut self, batch: &mut Batch) {
        self.inner.flush(batch);
        if self.point.is_attached() {
            self.point.sample(batch, Route::Main);
        }
    }
}

/// What a `/tap` request asks for.
#[derive(Debug, PartialEq)]
struct TapQuery {
    component: String,
    rate: f64,
    limit: Option<u64>,
    duration: Option<Duration>,
}

impl TapQuery {
    /// From the query string: `component=NAME` (required), `rate=N` (events per second),
    /// `limit=N` (events), `duration_ms=N`.
    fn parse(query: &str) -> Result<TapQuery, String> {
        let mut q = TapQuery {
            component: String::new(),
            rate: DEFAULT_RATE,
            limit: None,
            duration: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            let number = |what: &str| -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| format!("{what}: `{value}` is not a positive number"))
            };
            match key {
                "component" => q.component = value.clone(),
                "rate" => q.rate = number("rate")?.min(MAX_RATE),
                "limit" => q.limit = Some(number("limit")? as u64),
                "duration_ms" => q.duration = Some(Duration::from_millis(number("duration_ms")? as u64)),
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (component, rate, limit, duration_ms)"
                    ));
                }
            }
        }
        if q.component.is_empty() {
            return Err("which component? add `component=NAME`".into());
        }
        Ok(q)
    }
}

/// `%XX` escapes and `+` decoded (bytes that do not make UTF-8 are replaced).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| (hi * 16 + lo) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 2;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a tap may answer `peer`: always from loopback; from elsewhere only when the
/// admin endpoint listens on a specific non-loopback address (`bound`).
pub fn peer_allowed(peer: Option<&SocketAddr>, bound: Option<SocketAddr>) -> bool {
    let chosen = bound.is_some_and(|b| !b.ip().is_unspecified() && !b.ip().is_loopback());
    chosen || peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
}

/// Answers a `GET /tap?...`: an error at once, or a stream of JSON lines from a thread of
/// its own until the client leaves, its limit or duration is reached, or the run ends.
pub fn answer(request: tiny_http::Request, query: &str, taps: &Arc<Taps>, bound: Option<SocketAddr>) {
    let refuse = |request: tiny_http::Request, status: u16, text: String| {
        let header = tiny_http::Header::from_bytes("Content-Type", "text/plain").expect("a valid header");
        let response = tiny_http::Response::from_string(text + "\n")
            .with_status_code(status)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            tracing::debug!("admin endpoint: cannot answer: {e}");
        }
    };
    if !peer_allowed(request.remote_addr(), bound) {
        let text = "taps answer only connections from this host while the admin endpoint listens on \
                    a wildcard address; run `weir tap` there (or through ssh or kubectl port-forward)";
        return refuse(request, 403, text.into());
    }
    let q = match TapQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return refuse(request, 400, e),
    };
    let point = match taps.find(&q.component) {
        Ok(p) => p.clone(),
        Err(e) => return refuse(request, 404, e),
    };
    if taps
        .attached
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_TAPS).then_some(n + 1))
        .is_err()
    {
        return refuse(
            request,
            503,
            format!("{MAX_TAPS} taps are attached already; try again later"),
        );
    }
    let (id, rx) = point.attach(q.rate);
    tracing::info!(component = %point.name, rate = q.rate, "tap attached");
    let spawned = std::thread::Builder::new().name("weir-tap".into()).spawn({
        let (point, taps) = (point.clone(), taps.clone());
        move || {
            let writer = request.into_writer();
            let (sent, error) = match stream(writer, &rx, &q, &taps) {
                Ok(sent) => (sent, None),
                Err((sent, e)) => (sent, Some(e)),
            };
            point.detach(id);
            taps.attached.fetch_sub(1, Ordering::AcqRel);
            let lost = point.lost.load(Ordering::Relaxed);
            match error {
                None => tracing::info!(component = %point.name, written = sent, lost_on_this_point = lost, "tap detached"),
                Some(e) => {
                    tracing::info!(component = %point.name, written = sent, lost_on_this_point = lost, "tap detached: {e}")
                }
            }
        }
    });
    if let Err(e) = spawned {
        point.detach(id);
        taps.attached.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("admin endpoint: cannot start a tap thread: {e}");
    }
}

/// Writes the response: a header, then each block as an HTTP chunk, flushed at once (the
/// encoder behind `Response` would hold small samples back), then the last chunk. Returns
/// the events sent (with the error, if the client went away).
fn stream(
    mut w: Box<dyn Write + Send>,
    rx: &Receiver<Vec<u8>>,
    q: &TapQuery,
    taps: &Taps,
) -> Result<u64, (u64, std::io::Error)> {
    let until = q.duration.map(|d| Instant::now() + d);
    let limit = q.limit.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\
                Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    let mut go = || -> std::io::Result<()> {
        w.write_all(head.as_bytes())?;
        w.flush()?;
        while sent < limit && !taps.closed.load(Ordering::Relaxed) {
            let mut wait = Duration::from_millis(200);
            if let Some(until) = until {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                wait = wait.min(left);
            }
            let block = match rx.recv_timeout(wait) {
                Ok(block) => block,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let text = String::from_utf8_lossy(&block);
            let text = crate::secrets::redact(&text);
            let mut end = 0;
            for line in text.split_inclusive('\n') {
                if sent == limit {
                    break;
                }
                end += line.len();
                sent += 1;
            }
            write!(w, "{end:x}\r\n")?;
            w.write_all(&text.as_bytes()[..end])?;
            w.write_all(b"\r\n")?;
            w.flush()?;
        }
        w.write_all(b"0\r\n\r\n")?;
        w.flush()
    };
    match go() {
        Ok(()) => Ok(sent),
        Err(e) => Err((sent, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::model::Origin;

    fn batch_of(keys: &Arc<KeyTable>, lines: &[&str]) -> Batch {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut batch = Batch::new(text.into_bytes(), Origin::default());
        let level = keys.intern("level");
        let mut at = 0;
        for l in lines {
            let raw = Span::new(Buf::Chunk, at, l.len());
            let mut e = Event::from_line(raw);
            let v = batch.push_arena(b"info");
            e.set(level, Value::Str(v));
            batch.push(e);
            at += l.len() + 1;
        }
        batch
    }

    #[test]
    fn a_point_with_no_tap_is_not_attached_and_a_tap_gets_json_lines_at_its_rate() {
        let keys = KeyTable::new();
        let taps = Taps::new(&keys, vec!["inputs[0].file".into()], vec![], vec![]);
        let point = taps.input(0);
        assert!(!point.is_attached());
        let (id, rx) = point.attach(2.0);
        assert!(point.is_attached());
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let batch = batch_of(&keys, &refs);
        point.sample(&batch, Route::Main);
        // One token to start with: one event of the batch.
        let block = String::from_utf8(rx.try_recv().unwrap()).unwrap();
        assert!(block.starts_with("{\"message\":\"line "), "{block}");
        assert!(block.ends_with("\",\"level\":\"info\"}\n"), "{block}");
        assert_eq!(block.lines().count(), 1, "{block}");
        // No time passed: nothing more.
        point.sample(&batch, Route::Main);
        assert!(rx.try_recv().is_err());
        point.detach(id);
        assert!(!point.is_attached());
    }

    #[test]
    fn picks_are_spread_over_the_batch_and_a_full_queue_loses_samples() {
        let keys = KeyTable::new();
        let taps = Taps::new(&keys, vec![], vec!["processors[0].filter".into()], vec![]);
        let point = taps.processor(0);
        let (_id, rx) = point.attach(4.0);
        let lines: Vec<String> = (0..8).map(|i| format!("l{i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let batch = batch_of(&keys, &refs);
        let mut scratch = Batch::default();
        let mut fields = Vec::new();
        let mut picked = |phase| {
            copy_picked(&batch, Route::Main, (8, 4, phase), &mut scratch, &mut fields);
            let mut out = Vec::new();
            JsonEncoder::new(keys.clone()).encode(&scratch, &mut out);
            let text = String::from_utf8(out).unwrap();
            text.lines().map(|l| l[12..14].to_string()).collect::<Vec<_>>()
        };
        assert_eq!(picked(0), ["l0", "l2", "l4", "l6"]);
        assert_eq!(picked(3), ["l1", "l3", "l5", "l7"]);
        for _ in 0..QUEUE_BLOCKS + 3 {
            point.lock().sessions[0].bucket.tokens = 1.0;
            point.sample(&batch, Route::Main);
        }
        assert_eq!(rx.len(), QUEUE_BLOCKS);
        let (sent, lost) = point.counts();
        assert_eq!((sent, lost), (QUEUE_BLOCKS as u64, 3));
        drop(rx);
        point.lock().sessions[0].bucket.tokens = 1.0;
        point.sample(&batch, Route::Main);
        assert!(!point.is_attached(), "a tap whose client left is detached");
    }

    #[test]
    fn the_bucket_keeps_the_rate_and_saves_up_at_most_a_second() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, t0);
        assert_eq!(b.take(t0, 100), 1);
        let mut taken = 0;
        for ms in (10..=2000).step_by(10) {
            taken += b.take(t0 + Duration::from_millis(ms), 100);
        }
        assert_eq!(taken, 10);
        assert_eq!(b.take(t0 + Duration::from_secs(60), 100), 5);
    }

    #[test]
    fn components_are_found_by_full_or_short_name() {
        let keys = KeyTable::new();
        let taps = Taps::new(
            &keys,
            vec!["inputs[0].file".into()],
            vec!["processors[0].parse_json".into(), "processors[1].filter".into()],
            vec!["outputs[0].file".into()],
        );
        assert_eq!(taps.find("parse_json").unwrap().name(), "processors[0].parse_json");
        assert_eq!(taps.find("outputs[0].file").unwrap().name(), "outputs[0].file");
        assert!(taps.find("file").unwrap_err().contains("several components"));
        let e = taps.find("nope").unwrap_err();
        assert!(
            e.contains("inputs[0].file, processors[0].parse_json, processors[1].filter, outputs[0].file"),
            "{e}"
        );
    }

    #[test]
    fn queries_are_parsed_and_checked() {
        let q = TapQuery::parse("component=processors%5B0%5D.parse_json&rate=5&limit=10&duration_ms=2000").unwrap();
        assert_eq!(
            q,
            TapQuery {
                component: "processors[0].parse_json".into(),
                rate: 5.0,
                limit: Some(10),
                duration: Some(Duration::from_secs(2)),
            }
        );
        assert!(TapQuery::parse("rate=5").is_err());
        assert!(TapQuery::parse("component=x&rate=-1").is_err());
        assert!(TapQuery::parse("component=x&colour=red").is_err());
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn taps_answer_loopback_unless_the_endpoint_was_bound_to_a_chosen_address() {
        let peer: SocketAddr = "10.0.0.7:5555".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5555".parse().unwrap();
        let any = Some("0.0.0.0:8686".parse().unwrap());
        assert!(peer_allowed(Some(&local), any));
        assert!(peer_allowed(Some(&mapped), any));
        assert!(!peer_allowed(Some(&peer), any));
        assert!(!peer_allowed(Some(&peer), Some("127.0.0.1:8686".parse().unwrap())));
        assert!(peer_allowed(Some(&peer), Some("10.0.0.1:8686".parse().unwrap())));
        assert!(!peer_allowed(None, any));
    }
}
