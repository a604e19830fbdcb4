//! `type: http` (input): events POSTed as NDJSON (one JSON object per line) or as a JSON
//! array of objects, optionally gzip, with optional `auth` (a request without the right
//! `Authorization` gets 401) and `tls`. Each object becomes an event, its members fields (a
//! line that is not JSON is kept whole in `message`, with `_error`). Answered 200 once the
//! events are in the pipeline; 429 with `Retry-After` when it is full ([`listen::Receiver`]).

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::{Framed, Record, Stream};
use weir_core::model::{Buf, KeyTable, Span};
use weir_core::pipeline::Processor;
use weir_core::units::ByteSize;

use super::listen::{self, Reply};
use super::{Input, Reading, Run, RunContext};
use crate::config::error::{ConfigError, Pos};
use crate::net::auth::HttpAuthConfig;
use crate::net::tls::TlsConfig;

/// `type: http` (input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInputConfig {
    /// `ip:port` to listen on, e.g. `0.0.0.0:8080`.
    pub address: Spanned<String>,
    /// The only path accepted (default: any).
    #[serde(default)]
    pub path: Option<String>,
    /// Required credentials: `{ strategy: basic, user, password }` or `{ strategy: bearer, token }`.
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
    /// Connections open at once (default 256).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// The largest request body, compressed or not (default 8MiB); larger gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<Spanned<ByteSize>>,
    /// TLS: `crt_file` and `key_file` (and `ca_file` to require client certificates).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl HttpInputConfig {
    fn check(&self) -> Result<listen::Checked, (Pos, String)> {
        if let Some(auth) = &self.auth {
            auth.header()
                .map_err(|m| (Pos::of(&auth.strategy), format!("http input: {m}")))?;
        }
        listen::check(
            "http input",
            &self.address,
            &self.max_connections,
            &self.max_body_bytes,
            &self.tls,
        )
    }
}

impl Input for HttpInputConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check()
            .map(|_| ())
            .map_err(|(pos, msg)| ConfigError::at(file, pos, msg))
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        let (limits, tls) = self.check().map_err(|(pos, msg)| ConfigError::at(file, pos, msg))?;
        Ok(Reading::Run(Box::new(HttpReceiver {
            receiver: listen::Receiver {
                address: self.address.value.clone(),
                limits,
                tls,
                what: format!("http input {}", self.address.value),
                receives: "NDJSON or JSON arrays on {scheme}://{address}",
            },
            path: self.path.clone(),
            auth: self.auth.clone(),
        })))
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        super::json_decoder(keys, "http input")
    }

    fn secrets(&self) -> Vec<&str> {
        self.auth.iter().flat_map(HttpAuthConfig::secrets).collect()
    }
}

/// The running receiver.
#[derive(Debug)]
struct HttpReceiver {
    receiver: listen::Receiver,
    path: Option<String>,
    auth: Option<HttpAuthConfig>,
}

impl Run for HttpReceiver {
    fn run(self: Box<Self>, ctx: RunContext<'_>) {
        let (path, auth) = (self.path, self.auth);
        self.receiver
            .run(ctx, Arc::new(move |req| decode(req, path.as_deref(), auth.as_ref())));
    }
}

/// A request's events, and the 200 to answer once they are in the pipeline.
fn decode(req: &listen::Request, path: Option<&str>, auth: Option<&HttpAuthConfig>) -> Result<(Framed, Reply), Reply> {
    if path.is_some_and(|p| p != req.path) {
        return Err(Reply::text(
            404,
            format!("events are received on {}\n", path.unwrap_or("/")),
        ));
    }
    if auth.is_some_and(|a| !a.admits(req.authorization.as_deref())) {
        return Err(Reply::text(401, "missing or wrong Authorization\n"));
    }
    let mut framed = Framed::default();
    let body = req.body.trim_ascii();
    if body.starts_with(b"[") {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| Reply::text(400, format!("the body starts with [ but is not a JSON array: {e}\n")))?;
        for item in items {
            let start = framed.data.len();
            serde_json::to_writer(&mut framed.data, &item).expect("JSON values serialize");
            push(&mut framed, start);
        }
    } else {
        framed.data.extend_from_slice(body);
        let mut start = 0;
        for line in body.split(|&b| b == b'\n') {
            let end = start + line.len();
            let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
            if !trimmed.trim_ascii().is_empty() {
                framed.records.push(record(start, trimmed.len()));
            }
            start = end + 1;
        }
    }
    let ok = Reply {
        status: 200,
        content_type: "application/json",
        body: format!("{{\"events\":{}}}\n", framed.records.len()).into_bytes(),
        retry_after: None,
    };
    Ok((framed, ok))
}

/// Closes the record written from `start` to the end of `framed.data`.
fn push(framed: &mut Framed, start: usize) {
    let len = framed.data.len() - start;
    framed.records.push(record(start, len));
}

fn record(start: usize, len: usize) -> Record {
    Record {
        message: Span::new(Buf::Chunk, start, len),
        stream: Stream::None,
        timestamp: None,
        cut: false,
        error: None,
        fields: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str, authorization: Option<&str>) -> listen::Request {
        listen::Request {
            path: "/logs".into(),
            content_type: "application/json".into(),
            authorization: authorization.map(String::from),
            body: body.as_bytes().to_vec(),
        }
    }

    fn messages(framed: &Framed) -> Vec<&str> {
        framed
            .records
            .iter()
            .map(|r| std::str::from_utf8(&framed.data[r.message.start()..][..r.message.len()]).unwrap())
            .collect()
    }

    #[test]
    fn ndjson_lines_and_array_items_are_events() {
        let (framed, ok) = decode(&request("{\"a\":1}\r\n\n{\"b\":2}\nnot json", None), None, None).unwrap();
        assert_eq!(messages(&framed), ["{\"a\":1}", "{\"b\":2}", "not json"]);
        assert_eq!(ok.body, b"{\"events\":3}\n");
        let (framed, _) = decode(&request(" [{\"a\":1}, {\"b\":[2]}] ", None), None, None).unwrap();
        assert_eq!(messages(&framed), ["{\"a\":1}", "{\"b\":[2]}"]);
        assert_eq!(decode(&request("[1,", None), None, None).unwrap_err().status, 400);
    }

    #[test]
    fn auth_and_path_are_checked() {
        let auth: HttpAuthConfig = serde_saphyr::from_str("{ strategy: bearer, token: s3cret-token }").unwrap();
        let req = |a| request("{}", a);
        assert_eq!(decode(&req(None), None, Some(&auth)).unwrap_err().status, 401);
        assert_eq!(
            decode(&req(Some("Bearer wrong")), None, Some(&auth))
                .unwrap_err()
                .status,
            401
        );
        assert!(decode(&req(Some("Bearer s3cret-token")), None, Some(&auth)).is_ok());
        assert_eq!(decode(&req(None), Some("/other"), None).unwrap_err().status, 404);
    }
}
