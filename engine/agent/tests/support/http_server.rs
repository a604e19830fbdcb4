//! A local HTTP server for output tests: it answers each request as a script says (200,
//! a status with `Retry-After`, a dropped connection, `_bulk` items) and records what it
//! accepted, gunzipping bodies.
#![allow(dead_code)] // each user takes what it needs

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// 200, and the body is recorded as accepted.
    Ok,
    /// This status, with `Retry-After: N` when given; nothing is accepted.
    Status(u16, Option<u64>),
    /// The connection is closed without an answer.
    Drop,
    /// 200 with a `_bulk` response giving each item this status; items with 2xx are
    /// accepted.
    BulkItems(Vec<u16>),
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub action: Action,
    /// The request path: `/_bulk` bodies are read as Elasticsearch bulk requests.
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The body, gunzipped when it came with `Content-Encoding: gzip`.
    pub body: Vec<u8>,
}

/// Answers request number `n` (from 0) with this body.
pub type Script = Box<dyn Fn(usize, &[u8]) -> Action + Send + Sync>;

pub struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    done: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// A server that answers request number `n` (from 0) with `script(n)`. Scripts run one
    /// request at a time, under the lock that numbers the requests: a script that sleeps
    /// paces the whole server, whatever the number of connections.
    pub fn start(script: impl Fn(usize) -> Action + Send + Sync + 'static) -> Server {
        Server::start_with_body(move |n, _| script(n))
    }

    /// A server that answers request number `n` with body `b` with `script(n, b)`.
    pub fn start_with_body(script: impl Fn(usize, &[u8]) -> Action + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(Box::new(script));
        let accept = {
            let (seen, done) = (seen.clone(), done.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (seen, script) = (seen.clone(), script.clone());
                    std::thread::spawn(move || serve(conn, &seen, &script));
                }
            })
        };
        Server {
            addr,
            seen,
            done,
            accept: Some(accept),
        }
    }

    pub fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The JSON lines of the accepted requests (for `_bulk`, the documents of the items
    /// that were accepted).
    pub fn accepted_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for s in self.seen() {
            let text = String::from_utf8(s.body).unwrap();
            match s.action {
                Action::Ok if !s.path.ends_with("/_bulk") => {
                    lines.extend(text.lines().map(str::to_string));
                }
                Action::Ok => lines.extend(bulk_docs(&text).into_iter().map(|(_, d)| d)),
                Action::BulkItems(statuses) => {
                    let docs = bulk_docs(&text);
                    assert_eq!(docs.len(), statuses.len(), "script gave a status per item");
                    for ((_, doc), status) in docs.into_iter().zip(statuses) {
                        if (200..300).contains(&status) {
                            lines.push(doc);
                        }
                    }
                }
                _ => {}
            }
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Pairs (action, document) of a `_bulk` body; panics when it is not one.
pub fn bulk_docs(body: &str) -> Vec<(serde_json::Value, String)> {
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines.len().is_multiple_of(2),
        "a _bulk body has an action per document: {body}"
    );
    lines
        .chunks(2)
        .map(|pair| {
            let action: serde_json::Value = serde_json::from_str(pair[0]).expect("action line is JSON");
            serde_json::from_str::<serde_json::Value>(pair[1]).expect("document line is JSON");
            (action, pair[1].to_string())
        })
        .collect()
}

/// Answers the requests of one connection, keep-alive, until it closes.
fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, script: &Script) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = match request_line.split(' ').collect::<Vec<_>>()[..] {
            ["POST", path, "HTTP/1.1\r\n"] => path.to_string(),
            _ => panic!("unexpected request {request_line:?}"),
        };
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let len: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
            body = plain;
        }
        let action = {
            let mut seen = seen.lock().unwrap();
            let action = script(seen.len(), &body);
            seen.push(Seen {
                at: Instant::now(),
                action: action.clone(),
                path,
                headers,
                body,
            });
            action
        };
        let (status, extra, payload) = match &action {
            Action::Ok => (200, String::new(), r#"{"errors":false}"#.to_string()),
            Action::Status(code, retry_after) => (
                *code,
                retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default(),
                format!("{{\"error\":\"scripted {code}\"}}"),
            ),
            Action::Drop => {
                let _ = conn.shutdown(std::net::Shutdown::Both);
                return;
            }
            Action::BulkItems(statuses) => {
                let items: Vec<String> = statuses
                    .iter()
                    .map(|s| {
                        let error = if (200..300).contains(s) {
                            String::new()
                        } else {
                            format!(r#","error":{{"type":"scripted","reason":"status {s}"}}"#)
                        };
                        format!(r#"{{"index":{{"_index":"logs","status":{s}{error}}}}}"#)
                    })
                    .collect();
                let errors = statuses.iter().any(|s| !(200..300).contains(s));
                (
                    200,
                    String::new(),
                    format!(r#"{{"errors":{errors},"items":[{}]}}"#, items.join(",")),
                )
            }
        };
        let response = format!(
            "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{extra}\r\n{payload}",
            payload.len()
        );
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
