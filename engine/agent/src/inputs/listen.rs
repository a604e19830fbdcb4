//! An HTTP/1.1 listener for the receiving inputs (`opentelemetry`; the `http` input next) on
//! the agent's network runtime: optional TLS (a client that does not complete the handshake
//! in 10 s, e.g. one speaking plaintext, is closed and counted), a connection limit (a
//! connection over it is closed at once and counted), a request body limit (413, counted,
//! checked again after gunzip so a small compressed bomb cannot grow memory), and a handler
//! that answers each request.

use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use crossbeam_channel::{RecvTimeoutError, TrySendError};
use tokio::sync::oneshot;
use weir_core::frame::{Framed, Record};
use weir_core::model::{Buf, Span, Value};

use super::{ChunkPayload, InputStats, Offered, RunContext, SourceChunk};
use crate::admin::Labeled;
use crate::config::error::Pos;
use crate::net::runtime;
use crate::net::tls::TlsConfig;

/// A request, its body read whole and gunzipped.
#[derive(Debug)]
pub struct Request {
    /// The path, without the query.
    pub path: String,
    /// `Content-Type`, lowercased, without parameters.
    pub content_type: String,
    /// `Authorization`, when sent.
    pub authorization: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

impl Reply {
    /// A plain-text answer.
    pub fn text(status: u16, text: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.into().into_bytes(),
            retry_after: None,
        }
    }
}

/// Answers one request.
pub type Handler = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Bytes of one request body, before and after gunzip.
    pub max_body_bytes: usize,
}

/// A running listener; stopped when dropped.
#[derive(Debug)]
pub struct Listening {
    task: tokio::task::JoinHandle<()>,
    /// Where it listens (the port chosen for `:0`).
    pub address: SocketAddr,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An accepted connection, TLS done when the listener has it.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// Serves one accepted connection from the given peer, until it ends.
pub type OnConnection =
    Arc<dyn Fn(Box<dyn Stream>, SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Binds `address` and serves HTTP/1.1 `handler` on the network runtime; `what` names the
/// input in metrics (`input` label) and logs.
pub fn serve(
    address: &str,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    what: String,
    stats: Arc<InputStats>,
    handler: Handler,
) -> std::io::Result<Listening> {
    let budget = Budget::new(limits.max_body_bytes);
    let on_connection: OnConnection = {
        let (stats, what) = (stats.clone(), what.clone());
        Arc::new(move |stream, _| {
            Box::pin(serve_connection(
                stream,
                limits,
                budget.clone(),
                handler.clone(),
                stats.clone(),
                what.clone(),
            ))
        })
    };
    accept(address, limits.max_connections, tls, what, stats, on_connection)
}

/// Binds `address` and accepts connections on the network runtime, each served by
/// `on_connection` once its TLS handshake (when `tls`) is done: the accept loop of every
/// TCP listener. A connection over `max_connections` is closed at once and counted.
pub fn accept(
    address: &str,
    max_connections: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    what: String,
    stats: Arc<InputStats>,
    on_connection: OnConnection,
) -> std::io::Result<Listening> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let std_listener = std::net::TcpListener::bind(address)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let handle = runtime::handle();
    let listener = {
        let _entered = handle.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let task = handle.spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("{what}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                stats.labeled.add(
                    "weir_listener_connections_refused_total",
                    "Connections closed at once because the listener had max_connections open.",
                    &[("input", what.as_str())],
                    1.0,
                );
                drop(stream);
                continue;
            };
            let (on_connection, stats, what, acceptor) =
                (on_connection.clone(), stats.clone(), what.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    None => on_connection(Box::new(stream), peer).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        match handshake {
                            Ok(Ok(tls)) => on_connection(Box::new(tls), peer).await,
                            // Closed before saying anything: a TCP probe, not a failure.
                            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                            Ok(Err(e)) => handshake_failed(&stats, &what, &e.to_string()),
                            Err(_) => handshake_failed(&stats, &what, "no handshake within 10 s"),
                        }
                    }
                }
                drop(slot);
            });
        }
    });
    Ok(Listening { task, address: local })
}

/// Bytes of request bodies one listener holds at once (read, gunzipped, decoded and waiting
/// for the pipeline), or `max_body_bytes` when that is more: what bounds a receiver's
/// memory however many clients send large requests at once.
pub const BODY_BUDGET: usize = 8 << 20;

/// The body bytes a listener may hold ([`BODY_BUDGET`]); a request waits up to
/// [`WAIT_FOR_ROOM`] for its share, else it is answered 429 unread.
#[derive(Debug, Clone)]
struct Budget {
    bytes: Arc<tokio::sync::Semaphore>,
    total: usize,
}

impl Budget {
    fn new(max_body_bytes: usize) -> Budget {
        let total = BODY_BUDGET.max(max_body_bytes).min(u32::MAX as usize);
        Budget {
            bytes: Arc::new(tokio::sync::Semaphore::new(total)),
            total,
        }
    }

    /// Room for `bytes` (at most the whole budget, so any one request can get in).
    async fn reserve(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = bytes.clamp(1, self.total) as u32;
        let wait = self.bytes.clone().acquire_many_owned(n);
        tokio::time::timeout(WAIT_FOR_ROOM, wait).await.ok()?.ok()
    }

    /// Grows `held` to `bytes`; false when there is no room for it in time.
    async fn grow(&self, held: &mut tokio::sync::OwnedSemaphorePermit, bytes: usize) -> bool {
        let more = bytes.min(self.total).saturating_sub(held.num_permits());
        if more == 0 {
            return true;
        }
        match self.reserve(more).await {
            Some(extra) => {
                held.merge(extra);
                true
            }
            None => false,
        }
    }
}

/// How long a TLS client has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 requests on one connection until the peer closes it.
async fn serve_connection(
    stream: Box<dyn Stream>,
    limits: Limits,
    budget: Budget,
    handler: Handler,
    stats: Arc<InputStats>,
    what: String,
) {
    let service = service_fn(move |req| {
        let (handler, stats, what, budget) = (handler.clone(), stats.clone(), what.clone(), budget.clone());
        async move {
            let reply = answer(req, limits, &budget, &handler, &stats.labeled, &what).await;
            Ok::<_, std::convert::Infallible>(reply)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A client that did not complete the TLS handshake (plaintext, a certificate refused):
/// closed, counted, logged at debug level (a scanner must not flood the log).
fn handshake_failed(stats: &InputStats, what: &str, why: &str) {
    stats.labeled.add(
        "weir_listener_tls_handshake_failures_total",
        "Connections closed because the client did not complete the TLS handshake (plaintext, refused certificate).",
        &[("input", what)],
        1.0,
    );
    tracing::debug!("{what}: TLS handshake failed: {why}");
}

/// Reads the request within the limits and hands it to `handler`.
async fn answer(
    req: hyper::Request<Incoming>,
    limits: Limits,
    budget: &Budget,
    handler: &Handler,
    metrics: &Labeled,
    what: &str,
) -> hyper::Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = req.uri().path().to_string();
    let content_type = header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let authorization = header("authorization");
    let gzip = header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let declared = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let reply = if req.method() != hyper::Method::POST {
        Reply::text(405, "only POST\n")
    } else if let Some(n) = declared.filter(|&n| n > limits.max_body_bytes) {
        // Read and dropped (up to four times the limit; nothing is kept), so a client that
        // sends its whole body before reading the answer hears 413 rather than a broken
        // pipe mid-send; a body declared larger than that is refused at once.
        if n <= limits.max_body_bytes.saturating_mul(4) {
            discard(req.into_body(), n).await;
        }
        too_large(limits, metrics, what)
    } else {
        // Room for the body in the listener's budget first (all it declares, or the most it
        // may be), then for what gunzip makes of it: held until the request is answered.
        let body = req.into_body();
        match budget.reserve(declared.unwrap_or(limits.max_body_bytes)).await {
            // Read and dropped, so the client hears 429 rather than a reset mid-send.
            None => {
                discard(body, limits.max_body_bytes).await;
                full()
            }
            Some(mut held) => match Limited::new(body, limits.max_body_bytes).collect().await {
                Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                    too_large(limits, metrics, what)
                }
                Err(e) => Reply::text(400, format!("cannot read the request body: {e}\n")),
                Ok(collected) => {
                    let raw = collected.to_bytes();
                    match if gzip {
                        gunzip(&raw, limits.max_body_bytes)
                    } else {
                        Ok(Vec::from(raw))
                    } {
                        Err(Some(e)) => Reply::text(400, format!("the gzip body is not valid: {e}\n")),
                        Err(None) => too_large(limits, metrics, what),
                        Ok(body) => match budget.grow(&mut held, body.len()).await {
                            false => full(),
                            true => {
                                handler(Request {
                                    path,
                                    content_type,
                                    authorization,
                                    body,
                                })
                                .await
                            }
                        },
                    }
                }
            },
        }
    };
    metrics.add(
        "weir_listener_requests_total",
        "Requests answered by a receiving input, by status.",
        &[("input", what), ("status", &reply.status.to_string())],
        1.0,
    );
    let mut response = hyper::Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    if let Some(secs) = reply.retry_after {
        response = response.header("retry-after", secs.to_string());
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid status and headers")
}

/// Reads up to `max` bytes of `body` and drops them as they come.
async fn discard(mut body: Incoming, max: usize) {
    let mut read = 0;
    while read <= max {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

fn too_large(limits: Limits, metrics: &Labeled, what: &str) -> Reply {
    metrics.add(
        "weir_listener_too_large_total",
        "Requests refused because their body was over max_body_bytes.",
        &[("input", what)],
        1.0,
    );
    Reply::text(
        413,
        format!("the body is over max_body_bytes ({} bytes)\n", limits.max_body_bytes),
    )
}

/// `raw` gunzipped; `Err(None)` when it would be over `max` bytes.
fn gunzip(raw: &[u8], max: usize) -> Result<Vec<u8>, Option<std::io::Error>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Some)?;
    if out.len() > max {
        return Err(None);
    }
    Ok(out)
}

/// What a receiving input makes of one request: its events and the answer to give once
/// they are in the pipeline, or an answer at once (a bad request).
pub type Decode = Arc<dyn Fn(&Request) -> Result<(Framed, Reply), Reply> + Send + Sync>;

/// Requests decoded and waiting for the pipeline; one more gets 429.
const QUEUE: usize = 2;
/// How long a request may wait for room in the pipeline before it gets 429.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);

/// A receiving input (OTLP, HTTP): a listener and its way into the pipeline.
///
/// A request is answered with its success reply only once its events are handed to the
/// workers. When the pipeline has no room for it within [`WAIT_FOR_ROOM`], or the queue of
/// decoded requests ([`QUEUE`]) is full, it gets 429 with `Retry-After: 1` and nothing of it
/// is kept: memory does not grow and a retried request is not a duplicate. A stopping agent
/// answers 503.
#[derive(Debug)]
pub struct Receiver {
    /// `ip:port`.
    pub address: String,
    /// Connection and body limits.
    pub limits: Limits,
    /// TLS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The input, in logs and metrics.
    pub what: String,
    /// The log line once listening; `{scheme}` and `{address}` are filled in.
    pub receives: &'static str,
}

/// A decoded request (in pieces), when it may wait until, where to say whether it got in.
type Queued = (Vec<Framed>, Instant, oneshot::Sender<Offered>);

impl Receiver {
    /// Listens until the run stops, handing each decoded request to the pipeline in order.
    pub fn run(self, ctx: RunContext<'_>, decode: Decode) {
        let (tx, rx) = crossbeam_channel::bounded::<Queued>(QUEUE);
        let handler: Handler = Arc::new(move |req| {
            let (tx, decode) = (tx.clone(), decode.clone());
            Box::pin(async move { queue(req, &tx, &decode).await })
        });
        let what = self.what;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let listening = match serve(
            &self.address,
            self.limits,
            self.tls,
            what.clone(),
            ctx.stats.clone(),
            handler,
        ) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{what}: cannot listen on {}: {e}", self.address);
                ctx.stats.read_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        };
        let receives = self
            .receives
            .replace("{scheme}", scheme)
            .replace("{address}", &listening.address.to_string());
        tracing::info!("{what}: receiving {receives}");
        hand_over(&rx, ctx);
        drop(listening);
        // Anything still queued did not get in: its sender hears 503 and retries.
        while let Ok((_, _, reply)) = rx.try_recv() {
            let _ = reply.send(Offered::Stopped);
        }
    }
}

/// Hands each decoded request to the pipeline in order, until the run stops.
fn hand_over(rx: &crossbeam_channel::Receiver<Queued>, ctx: RunContext<'_>) {
    use std::sync::atomic::Ordering;
    let source = ctx.next_source.fetch_add(1, Ordering::Relaxed);
    let mut seq = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let (pieces, deadline, reply) = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(queued) => queued,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // The first piece gets in by the deadline or the request is refused whole; once it
        // is in, the others wait for room (refusing them would duplicate the first).
        let mut offered = Offered::Taken;
        for (i, framed) in pieces.into_iter().enumerate() {
            let bytes = framed.data.len() as u64;
            let chunk = SourceChunk {
                payload: ChunkPayload::Framed(framed),
                source,
                seq,
                fields: None,
                ack: None,
            };
            offered = if i == 0 {
                (ctx.offer)(chunk, deadline)
            } else if (ctx.send)(chunk) {
                Offered::Taken
            } else {
                Offered::Stopped
            };
            if offered != Offered::Taken {
                break;
            }
            seq += 1;
            ctx.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        let _ = reply.send(offered);
        if offered == Offered::Stopped {
            return;
        }
    }
}

/// A request's events in pieces of at most [`PIECE_BYTES`] (a record larger than that is a
/// piece of its own), so the pipeline, whose queues count chunks, holds no more for a
/// large request than for a file.
fn pieces(framed: Framed) -> Vec<Framed> {
    if framed.data.len() + framed.arena.len() <= PIECE_BYTES {
        return vec![framed];
    }
    let mut out = Vec::new();
    let mut piece = Framed::default();
    let bytes = |span: Span| match span.buf() {
        Buf::Chunk => &framed.data[span.start()..][..span.len()],
        Buf::Arena => &framed.arena[span.start()..][..span.len()],
    };
    let copy = |piece: &mut Framed, span: Span| {
        let b = bytes(span);
        let at = piece.arena.len();
        piece.arena.extend_from_slice(b);
        Span::new(Buf::Arena, at, b.len())
    };
    for record in &framed.records {
        if !piece.records.is_empty() && piece.data.len() + piece.arena.len() + record.message.len() > PIECE_BYTES {
            out.push(std::mem::take(&mut piece));
        }
        let message = bytes(record.message);
        let at = piece.data.len();
        piece.data.extend_from_slice(message);
        let fields = record.fields.map(|first| {
            if piece.field_names.is_empty() {
                piece.field_names.clone_from(&framed.field_names);
            }
            let index = piece.fields.len() as u32;
            let values = &framed.fields[first as usize..][..framed.field_names.len()];
            for value in values {
                let value = match *value {
                    Value::Str(s) => Value::Str(copy(&mut piece, s)),
                    Value::Json(s) => Value::Json(copy(&mut piece, s)),
                    other => other,
                };
                piece.fields.push(value);
            }
            index
        });
        piece.records.push(Record {
            message: Span::new(Buf::Chunk, at, message.len()),
            fields,
            ..*record
        });
    }
    if !piece.records.is_empty() {
        out.push(piece);
    }
    out
}

/// The most bytes of one chunk a receiver hands over: the size of a file input's chunks.
const PIECE_BYTES: usize = 1 << 20;

/// Decodes a request, queues its events and answers once they are in (or not).
async fn queue(req: Request, tx: &crossbeam_channel::Sender<Queued>, decode: &Decode) -> Reply {
    if tx.is_full() {
        return full();
    }
    let (framed, ok) = match decode(&req) {
        Ok(decoded) => decoded,
        Err(reply) => return reply,
    };
    drop(req);
    if framed.records.is_empty() {
        return ok;
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    match tx.try_send((pieces(framed), Instant::now() + WAIT_FOR_ROOM, reply_tx)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return full(),
        Err(TrySendError::Disconnected(_)) => return stopping(),
    }
    match reply_rx.await {
        Ok(Offered::Taken) => ok,
        Ok(Offered::Full) => full(),
        Ok(Offered::Stopped) | Err(_) => stopping(),
    }
}

fn full() -> Reply {
    Reply {
        retry_after: Some(1),
        ..Reply::text(429, "the pipeline is full; retry later\n")
    }
}

fn stopping() -> Reply {
    Reply {
        retry_after: Some(5),
        ..Reply::text(503, "the agent is stopping; retry later\n")
    }
}

/// Default `max_connections` of a receiving input.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default `max_body_bytes` of a receiving input.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 << 20;

/// A receiving input's limits and TLS, from [`check`].
pub type Checked = (Limits, Option<Arc<rustls::ServerConfig>>);

/// The listener keys every receiving input has, checked: `address` is ip:port, limits are
/// more than 0, the TLS files load. `what` starts every message.
pub fn check(
    what: &str,
    address: &serde_saphyr::Spanned<String>,
    max_connections: &Option<serde_saphyr::Spanned<usize>>,
    max_body_bytes: &Option<serde_saphyr::Spanned<weir_core::units::ByteSize>>,
    tls: &Option<TlsConfig>,
) -> Result<Checked, (Pos, String)> {
    address.value.parse::<SocketAddr>().map_err(|_| {
        (
            Pos::of(address),
            format!(
                "{what}: `address` {:?} is not ip:port (e.g. 0.0.0.0:4318)",
                address.value
            ),
        )
    })?;
    let limits = Limits {
        max_connections: max_connections.as_ref().map_or(DEFAULT_MAX_CONNECTIONS, |m| m.value),
        max_body_bytes: max_body_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_BODY_BYTES, |m| m.value.0)
            .try_into()
            .unwrap_or(usize::MAX),
    };
    if limits.max_connections == 0 {
        let at = max_connections.as_ref().map(Pos::of).unwrap_or_default();
        return Err((at, format!("{what}: `max_connections` must be more than 0")));
    }
    if limits.max_body_bytes == 0 {
        let at = max_body_bytes.as_ref().map(Pos::of).unwrap_or_default();
        return Err((at, format!("{what}: `max_body_bytes` must be more than 0")));
    }
    let tls = match tls {
        Some(tls) => Some(tls.server().map_err(|(pos, msg)| (pos, format!("{what}: {msg}")))?),
        None => None,
    };
    Ok((limits, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_request_is_handed_over_in_pieces_with_its_records_whole() {
        let mut framed = Framed {
            field_names: vec!["sender"],
            ..Framed::default()
        };
        let sizes = [600 << 10, 10, 700 << 10, 2 << 20, 5];
        for (i, size) in sizes.into_iter().enumerate() {
            let start = framed.data.len();
            framed.data.extend(std::iter::repeat_n(b'a' + i as u8, size));
            let name = format!("s{i}");
            let value = Span::new(Buf::Arena, framed.arena.len(), name.len());
            framed.arena.extend_from_slice(name.as_bytes());
            framed.records.push(Record {
                message: Span::new(Buf::Chunk, start, size),
                stream: weir_core::frame::Stream::None,
                timestamp: Some(i as i64),
                cut: false,
                error: None,
                fields: Some(framed.fields.len() as u32),
            });
            framed.fields.push(Value::Str(value));
        }
        let pieces = pieces(framed);
        // 600 KiB + 10 B; 700 KiB; 2 MiB alone; 5 B.
        let shape: Vec<usize> = pieces.iter().map(|p| p.records.len()).collect();
        assert_eq!(shape, [2, 1, 1, 1]);
        let mut i = 0;
        for piece in &pieces {
            for r in &piece.records {
                let message = &piece.data[r.message.start()..][..r.message.len()];
                assert_eq!(message.len(), sizes[i]);
                assert!(message.iter().all(|&b| b == b'a' + i as u8));
                assert_eq!(r.timestamp, Some(i as i64));
                let Value::Str(v) = piece.fields[r.fields.unwrap() as usize] else {
                    panic!()
                };
                assert_eq!(&piece.arena[v.start()..][..v.len()], format!("s{i}").as_bytes());
                i += 1;
            }
        }
        assert_eq!(i, sizes.len());
    }
}
