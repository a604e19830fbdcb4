//! HTTPS for the HTTP clients (the `http` output; OTLP next): a ureq connector that wraps
//! each `https://` connection in rustls with the component's [`TlsClient`], so the `tls:`
//! block (own CA, client certificate, `server_name`, `min_version`, verification switches)
//! applies, and a failed handshake says why in words ([`super::tls::describe`]).

use std::io::{Read, Write};

use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector, Transport, TransportAdapter,
};

use super::tls::{TlsClient, describe};

/// A keep-alive ureq agent for `config`, speaking TLS with `tls` for `https://` URIs.
pub fn agent(config: ureq::config::Config, tls: Option<TlsClient>) -> ureq::Agent {
    let connector = TcpConnector::default().chain(HttpsConnector { tls });
    ureq::Agent::with_parts(
        config,
        connector,
        ureq::unversioned::resolver::DefaultResolver::default(),
    )
}

/// Wraps a connection in TLS when the URI is `https://`.
#[derive(Debug)]
struct HttpsConnector {
    tls: Option<TlsClient>,
}

impl<In: Transport> Connector<In> for HttpsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let Some(tls) = &self.tls else {
            return Err(io_error(
                "an https:// address needs a `tls:` client; this one has none".into(),
            ));
        };
        let host = details.uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = match &tls.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host.to_string())
                .map_err(|_| io_error(format!("{host:?} is not a host name TLS can verify")))?,
        };
        let mut conn = ClientConnection::new(tls.config.clone(), name).map_err(|e| io_error(e.to_string()))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(match alert_after(&e, &mut conn, &mut sock) {
                Some(alert) => tls_failed(&alert, &tls.roots, host),
                None => tls_error(e, &tls.roots, host),
            });
        }
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
            roots: tls.roots.clone(),
            host: host.to_string(),
        })))
    }
}

fn io_error(message: String) -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(message))
}

/// An I/O error of a TLS connection; a TLS failure (which in TLS 1.3 may come after the
/// handshake, e.g. a server refusing our client certificate) is described in words.
fn tls_error(e: std::io::Error, roots: &str, host: &str) -> ureq::Error {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => tls_failed(tls, roots, host),
        None => ureq::Error::Io(e),
    }
}

fn tls_failed(tls: &rustls::Error, roots: &str, host: &str) -> ureq::Error {
    io_error(format!("TLS with {host} failed: {}", describe(tls, roots)))
}

/// The server's reason for closing, when a write failed because it closed and its alert
/// is already here: a server that refuses our certificate (in TLS 1.3, once it has read
/// it) closes at once, which can break our next write (or the write of what rustls holds
/// that every read does first) before we have read why.
fn alert_after(e: &std::io::Error, conn: &mut ClientConnection, sock: &mut impl Read) -> Option<rustls::Error> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if !matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
        return None;
    }
    // The alert may have been read already (rustls then keeps the error), or be waiting
    // in the socket: the peer has closed, so each read returns at once.
    for _ in 0..8 {
        if let Err(tls) = conn.process_new_packets() {
            return Some(tls);
        }
        match conn.read_tls(sock) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// A TLS connection, as ureq reads and writes it.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    roots: String,
    host: String,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl TlsTransport {
    /// A failed read or write, described: with the server's alert when it has sent one.
    fn failed(&mut self, e: std::io::Error) -> ureq::Error {
        let StreamOwned { conn, sock } = &mut self.stream;
        match alert_after(&e, conn, sock) {
            Some(alert) => tls_failed(&alert, &self.roots, &self.host),
            None => tls_error(e, &self.roots, &self.host),
        }
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(|e| self.failed(e))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        // A read writes what rustls holds first, so it too can find the peer gone.
        let amount = match self.stream.read(input) {
            Ok(amount) => amount,
            Err(e) => return Err(self.failed(e)),
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
