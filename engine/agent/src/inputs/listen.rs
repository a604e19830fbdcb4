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
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::InputStats;
use crate::admin::Labeled;
use crate::net::runtime;

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

/// Binds `address` and serves `handler` on the network runtime; `what` names the input
/// in metrics (`input` label) and logs.
pub fn serve(
    address: &str,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    what: String,
    stats: Arc<InputStats>,
    handler: Handler,
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
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let task = handle.spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
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
            let (handler, stats, what, acceptor) = (handler.clone(), stats.clone(), what.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    None => serve_connection(stream, limits, handler, stats, what).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        match handshake {
                            Ok(Ok(tls)) => serve_connection(tls, limits, handler, stats, what).await,
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

/// How long a TLS client has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 requests on one connection until the peer closes it.
async fn serve_connection<S>(stream: S, limits: Limits, handler: Handler, stats: Arc<InputStats>, what: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let (handler, stats, what) = (handler.clone(), stats.clone(), what.clone());
        async move {
            let reply = answer(req, limits, &handler, &stats.labeled, &what).await;
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
    let reply = if req.method() != hyper::Method::POST {
        Reply::text(405, "only POST\n")
    } else {
        match Limited::new(req.into_body(), limits.max_body_bytes).collect().await {
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                too_large(limits, metrics, what)
            }
            Err(e) => Reply::text(400, format!("cannot read the request body: {e}\n")),
            Ok(collected) => {
                let raw = collected.to_bytes();
                match if gzip {
                    gunzip(&raw, limits.max_body_bytes)
                } else {
                    Ok(raw.to_vec())
                } {
                    Err(Some(e)) => Reply::text(400, format!("the gzip body is not valid: {e}\n")),
                    Err(None) => too_large(limits, metrics, what),
                    Ok(body) => {
                        handler(Request {
                            path,
                            content_type,
                            authorization,
                            body,
                        })
                        .await
                    }
                }
            }
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
