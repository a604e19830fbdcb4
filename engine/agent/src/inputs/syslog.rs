//! `type: syslog`: RFC 5424 and RFC 3164 messages received over TCP (optionally TLS) or
//! UDP.
//!
//! The network side only frames: on TCP each frame is octet-counted (`LEN SP MSG`, RFC
//! 6587) when it starts with a digit and ends at a newline (or NUL) otherwise, decided per
//! frame;
//! on UDP each datagram is one message. Parsing is the input's decoder
//! ([`weir_core::parse::syslog`]), on the workers. Every message gets `source_ip`, the
//! sender's address.
//!
//! A message over `max_message_bytes` is kept cut to it (with `_cut`) and counted; the
//! rest of it is skipped. When the pipeline is full, reading stops: TCP senders are slowed
//! by TCP's own flow control, and memory holds at most a few chunks per connection. UDP
//! cannot be slowed: datagrams that arrive while the socket's buffer is full are dropped
//! by the kernel, which counts them (`RcvbufErrors` in `/proc/net/snmp`).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use weir_core::frame::{Framed, Record, Stream};
use weir_core::model::{Buf, KeyTable, Span, Value};
use weir_core::pipeline::Processor;
use weir_core::pool::BufferPool;
use weir_core::units::ByteSize;

use super::listen::{self, OnConnection};
use super::{ChunkPayload, Input, InputStats, Reading, Run, RunContext, SourceChunk};
use crate::config::error::{ConfigError, Pos};
use crate::net::runtime;
use crate::net::tls::TlsConfig;

/// Default `max_message_bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: u64 = 64 << 10;
/// Bytes read from a connection at a time, and the size a chunk is handed over at.
const READ_BYTES: usize = 64 << 10;
/// Chunks on their way from the connections to the pipeline; when they are all taken,
/// connections stop reading.
const IN_FLIGHT: usize = 8;

/// `type: syslog`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogInputConfig {
    /// `ip:port` to listen on, e.g. `0.0.0.0:5514`.
    pub address: Spanned<String>,
    /// `tcp` (default), `udp`, or `tls` (TCP with TLS; a `tcp` input with a `tls:` block
    /// is the same).
    #[serde(default)]
    pub mode: Option<Spanned<Mode>>,
    /// TCP connections open at once (default 256); more are closed at once and counted.
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// The longest message (default 64KiB); a longer one is cut to it and counted.
    #[serde(default)]
    pub max_message_bytes: Option<Spanned<ByteSize>>,
    /// The zone of RFC 3164 times (they carry none): an IANA name (`Europe/Paris`), a
    /// fixed offset (`+05:30`), `UTC`, or `local` (default: the machine's zone).
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// TLS (`mode: tls` or `tcp`): `crt_file` and `key_file` (and `ca_file` to require
    /// client certificates).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// The transport.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A stream per sender, newline or octet-counting framing, optionally TLS.
    #[default]
    Tcp,
    /// A datagram per message.
    Udp,
    /// TCP with TLS (RFC 5425): `tcp` with its `tls:` block required.
    Tls,
}

/// What `check` makes of the config.
struct Checked {
    mode: Mode,
    max_connections: usize,
    max_message: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl SyslogInputConfig {
    /// `mode: udp`.
    pub fn udp(&self) -> bool {
        self.mode.as_ref().is_some_and(|m| m.value == Mode::Udp)
    }

    fn check(&self) -> Result<Checked, (Pos, String)> {
        const WHAT: &str = "syslog input";
        let mut mode = self.mode.as_ref().map_or(Mode::Tcp, |m| m.value);
        if mode == Mode::Tls {
            if self.tls.is_none() {
                let at = self.mode.as_ref().map(Pos::of).unwrap_or_default();
                return Err((
                    at,
                    format!("{WHAT}: `mode: tls` needs a `tls:` block with `crt_file` and `key_file`"),
                ));
            }
            mode = Mode::Tcp;
        }
        if mode == Mode::Udp {
            if self.tls.is_some() {
                let at = self.mode.as_ref().map(Pos::of).unwrap_or_default();
                return Err((
                    at,
                    format!("{WHAT}: `tls` needs `mode: tcp` or `tls` (syslog has no TLS over UDP)"),
                ));
            }
            if let Some(m) = &self.max_connections {
                return Err((
                    Pos::of(m),
                    format!("{WHAT}: `max_connections` applies to `mode: tcp` only"),
                ));
            }
        }
        let (limits, tls) = listen::check(WHAT, &self.address, &self.max_connections, &None, &self.tls)?;
        // Syslog is one way: a sender writes and closes without reading. Data it never reads
        // (TLS 1.3 session tickets) makes its close a reset, which can discard messages it
        // sent last before they are read here; so the server sends none.
        let tls = tls.map(|config| {
            let mut config = (*config).clone();
            config.send_tls13_tickets = 0;
            Arc::new(config)
        });
        let max_message = self
            .max_message_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_MESSAGE_BYTES, |m| m.value.0);
        if max_message == 0 {
            let at = self.max_message_bytes.as_ref().map(Pos::of).unwrap_or_default();
            return Err((at, format!("{WHAT}: `max_message_bytes` must be more than 0")));
        }
        if let Some(zone) = &self.timezone {
            weir_core::parse::syslog::SyslogParser::new(&KeyTable::new(), Some(&zone.value))
                .map_err(|e| (Pos::of(zone), format!("{WHAT}: `timezone`: {}", e.0)))?;
        }
        Ok(Checked {
            mode,
            max_connections: limits.max_connections,
            max_message: usize::try_from(max_message).unwrap_or(usize::MAX),
            tls,
        })
    }
}

impl Input for SyslogInputConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check()
            .map(|_| ())
            .map_err(|(pos, msg)| ConfigError::at(file, pos, msg))
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        let c = self.check().map_err(|(pos, msg)| ConfigError::at(file, pos, msg))?;
        let scheme = match (c.mode, &c.tls) {
            (Mode::Udp, _) => "udp",
            (Mode::Tcp | Mode::Tls, None) => "tcp",
            (Mode::Tcp | Mode::Tls, Some(_)) => "tcp+tls",
        };
        Ok(Reading::Run(Box::new(SyslogReceiver {
            address: self.address.value.clone(),
            what: format!("syslog input {scheme}://{}", self.address.value),
            checked: c,
        })))
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        let zone = self.timezone.as_ref().map(|z| z.value.as_str());
        match weir_core::parse::syslog::decoder(keys, zone) {
            Ok(p) => Some(Box::new(p)),
            Err(e) => {
                tracing::error!("syslog input: {}", e.0);
                None
            }
        }
    }
}

/// The running input.
struct SyslogReceiver {
    address: String,
    what: String,
    checked: Checked,
}

impl std::fmt::Debug for SyslogReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogReceiver")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// A chunk of one connection (or of the UDP socket), or the news that it closed.
struct Piece {
    conn: u64,
    framed: Option<Framed>,
}

impl Run for SyslogReceiver {
    fn run(self: Box<Self>, ctx: RunContext<'_>) {
        let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
        let c = &self.checked;
        let shared = Shared {
            what: self.what.clone(),
            stats: ctx.stats.clone(),
            pool: ctx.pool.clone(),
            max: c.max_message,
        };
        let started = match c.mode {
            Mode::Tcp | Mode::Tls => tcp(&self.address, c, shared, tx).map(Listener::Tcp),
            Mode::Udp => udp(&self.address, shared, tx).map(|(task, at)| Listener::Udp(task, at)),
        };
        let listener = match started {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{}: cannot listen on {}: {e}", self.what, self.address);
                ctx.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        tracing::info!("{}: receiving on {}", self.what, listener.address());
        hand_over(&mut rx, ctx, &self.what);
        drop(listener);
    }
}

/// Hands each connection's chunks to the pipeline, in order, each connection its own
/// source; waits for room (so a full pipeline stops the reading), until the run stops.
/// Then the reading ends and what was read is handed over while the stopping pipeline
/// still takes it; what it does not take is counted and logged.
fn hand_over(rx: &mut mpsc::Receiver<Piece>, mut ctx: RunContext<'_>, what: &str) {
    let handle = runtime::handle();
    let mut sources: HashMap<u64, (u32, u64)> = HashMap::new();
    let mut lost = 0;
    while !ctx.stop.load(Ordering::Relaxed) {
        let next = handle.block_on(async { tokio::time::timeout(Duration::from_millis(100), rx.recv()).await });
        match next {
            Ok(Some(piece)) => {
                let records = piece.framed.as_ref().map_or(0, |f| f.records.len());
                if !give(piece, &mut sources, &mut ctx) {
                    lost += records;
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    // Stopping: no more reading; what was read is handed over while the pipeline takes it.
    rx.close();
    while let Ok(piece) = rx.try_recv() {
        let records = piece.framed.as_ref().map_or(0, |f| f.records.len());
        if !give(piece, &mut sources, &mut ctx) {
            lost += records;
        }
    }
    if lost > 0 {
        ctx.stats.labeled.add(
            "weir_syslog_messages_lost_total",
            "Syslog messages read from a connection but not taken by the stopping pipeline.",
            &[("input", what)],
            lost as f64,
        );
        tracing::warn!("{what}: {lost} messages read but not taken by the stopping pipeline");
    }
}

/// Hands one connection's chunk to the pipeline (or forgets a closed connection); false
/// when the pipeline did not take it.
fn give(piece: Piece, sources: &mut HashMap<u64, (u32, u64)>, ctx: &mut RunContext<'_>) -> bool {
    let Some(framed) = piece.framed else {
        sources.remove(&piece.conn);
        return true;
    };
    let (source, seq) = sources
        .entry(piece.conn)
        .or_insert_with(|| (ctx.next_source.fetch_add(1, Ordering::Relaxed), 0));
    let bytes = framed.data.len() as u64;
    let chunk = SourceChunk {
        payload: ChunkPayload::Framed(framed),
        source: *source,
        seq: *seq,
        fields: None,
        ack: None,
    };
    *seq += 1;
    if !(ctx.send)(chunk) {
        return false;
    }
    ctx.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
    true
}

/// What every connection task needs.
#[derive(Clone)]
struct Shared {
    what: String,
    stats: Arc<InputStats>,
    pool: Arc<BufferPool>,
    max: usize,
}

impl Shared {
    fn count_cut(&self, n: u64) {
        if n > 0 {
            self.stats.labeled.add(
                "weir_syslog_messages_cut_total",
                "Syslog messages over max_message_bytes, kept cut to it (with _cut).",
                &[("input", self.what.as_str())],
                n as f64,
            );
        }
    }
}

enum Listener {
    Tcp(listen::Listening),
    Udp(tokio::task::JoinHandle<()>, SocketAddr),
}

impl Listener {
    fn address(&self) -> SocketAddr {
        match self {
            Listener::Tcp(l) => l.address,
            Listener::Udp(_, a) => *a,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Udp(task, _) = self {
            task.abort();
        }
    }
}

/// Accepts TCP (or TLS) connections, each read by its own task.
fn tcp(address: &str, c: &Checked, shared: Shared, tx: mpsc::Sender<Piece>) -> std::io::Result<listen::Listening> {
    let next_conn = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (what, stats) = (shared.what.clone(), shared.stats.clone());
    let on_connection: OnConnection = Arc::new(move |stream, peer| {
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        Box::pin(read_connection(stream, peer, conn, shared.clone(), tx.clone()))
    });
    listen::accept(address, c.max_connections, c.tls.clone(), what, stats, on_connection)
}

/// Reads one connection into chunks of whole messages until it closes.
async fn read_connection(
    mut stream: Box<dyn listen::Stream>,
    peer: SocketAddr,
    conn: u64,
    shared: Shared,
    tx: mpsc::Sender<Piece>,
) {
    let ip = peer.ip().to_string();
    let mut framer = Framer::new(shared.max);
    let mut buf = shared.pool.take_empty(READ_BYTES * 2);
    loop {
        if buf.capacity() - buf.len() < READ_BYTES {
            buf.reserve(READ_BYTES);
        }
        // Into the spare capacity, not zeroed first.
        let n = match stream.read_buf(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("{}: {peer}: {e}", shared.what);
                0
            }
        };
        let mut framed = Framed::default();
        let used = if n == 0 {
            framer.finish(&buf, &mut framed.records)
        } else {
            framer.frame(&buf, &mut framed.records)
        };
        shared.count_cut(std::mem::take(&mut framer.cut));
        if !framed.records.is_empty() {
            let mut rest = shared.pool.take_empty(READ_BYTES * 2);
            rest.extend_from_slice(&buf[used..]);
            buf.truncate(used);
            framed.data = std::mem::replace(&mut buf, rest);
            source_ip(&mut framed, &ip);
            if tx
                .send(Piece {
                    conn,
                    framed: Some(framed),
                })
                .await
                .is_err()
            {
                return;
            }
        } else if used > 0 {
            buf.drain(..used);
        }
        if n == 0 {
            let _ = tx.send(Piece { conn, framed: None }).await;
            return;
        }
    }
}

/// Gives every record of `framed` the field `source_ip` (one copy of it in the arena).
fn source_ip(framed: &mut Framed, ip: &str) {
    let span = Span::new(Buf::Arena, framed.arena.len(), ip.len());
    framed.arena.extend_from_slice(ip.as_bytes());
    framed.field_names = vec!["source_ip"];
    for (i, record) in framed.records.iter_mut().enumerate() {
        record.fields = Some(i as u32);
        framed.fields.push(Value::Str(span));
    }
}

/// Receives datagrams, a message each, into chunks.
fn udp(
    address: &str,
    shared: Shared,
    tx: mpsc::Sender<Piece>,
) -> std::io::Result<(tokio::task::JoinHandle<()>, SocketAddr)> {
    let std_socket = std::net::UdpSocket::bind(address)?;
    std_socket.set_nonblocking(true)?;
    let local = std_socket.local_addr()?;
    let handle = runtime::handle();
    let socket = {
        let _entered = handle.enter();
        tokio::net::UdpSocket::from_std(std_socket)?
    };
    let task = handle.spawn(async move {
        let mut datagram = vec![0u8; 65_536];
        loop {
            let mut framed = Framed {
                data: shared.pool.take_empty(READ_BYTES * 2),
                field_names: vec!["source_ip"],
                ..Framed::default()
            };
            let mut cut = 0;
            // Wait for one, then take what is already there, up to a chunk.
            let mut next = socket.recv_from(&mut datagram).await;
            loop {
                match next {
                    Ok((n, peer)) => cut += add_datagram(&mut framed, &datagram[..n], peer, shared.max),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!("{}: {e}", shared.what);
                        break;
                    }
                }
                if framed.data.len() >= READ_BYTES || framed.records.len() >= 4096 {
                    break;
                }
                next = socket.try_recv_from(&mut datagram);
            }
            shared.count_cut(cut);
            if !framed.records.is_empty()
                && tx
                    .send(Piece {
                        conn: 0,
                        framed: Some(framed),
                    })
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    Ok((task, local))
}

/// Adds one datagram as a record with its sender's address; 1 when it was cut.
fn add_datagram(framed: &mut Framed, datagram: &[u8], peer: SocketAddr, max: usize) -> u64 {
    let len = datagram.len().min(max);
    let start = framed.data.len();
    framed.data.extend_from_slice(&datagram[..len]);
    // The address is written to the arena, and taken back when it is the last one's.
    let at = framed.arena.len();
    write!(framed.arena, "{}", peer.ip()).expect("writing to a Vec");
    let ip = Span::new(Buf::Arena, at, framed.arena.len() - at);
    let span = match framed.fields.last() {
        Some(Value::Str(last)) if framed.arena[last.start()..][..last.len()] == framed.arena[at..] => {
            framed.arena.truncate(at);
            *last
        }
        _ => ip,
    };
    framed.records.push(Record {
        fields: Some(framed.fields.len() as u32),
        ..record(start, len, len < datagram.len())
    });
    framed.fields.push(Value::Str(span));
    u64::from(len < datagram.len())
}

fn record(start: usize, len: usize, cut: bool) -> Record {
    Record {
        message: Span::new(Buf::Chunk, start, len),
        stream: Stream::None,
        timestamp: None,
        cut,
        error: None,
        fields: None,
    }
}

/// Splits a TCP stream into messages (RFC 6587), a frame at a time: octet-counted when it
/// starts with a digit (`LEN SP MSG`), else up to a newline (a trailing `\r` removed) or a
/// NUL (Python's `SysLogHandler` ends its TCP messages so).
#[derive(Debug)]
struct Framer {
    max: usize,
    /// The rest of a message over `max` being skipped.
    skip: Skip,
    /// Messages cut since last taken.
    cut: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Skip {
    None,
    /// Up to the next newline or NUL.
    Line,
    /// This many bytes.
    Bytes(usize),
}

impl Framer {
    fn new(max: usize) -> Framer {
        Framer {
            max,
            skip: Skip::None,
            cut: 0,
        }
    }

    /// Adds the whole messages of `data` to `records`; returns how many bytes they (and
    /// skipped bytes) took: the rest starts a message not yet whole.
    fn frame(&mut self, data: &[u8], records: &mut Vec<Record>) -> usize {
        let mut at = 0;
        loop {
            match self.skip {
                Skip::Line => match memchr::memchr2(b'\n', 0, &data[at..]) {
                    Some(nl) => {
                        at += nl + 1;
                        self.skip = Skip::None;
                    }
                    None => return data.len(),
                },
                Skip::Bytes(n) => {
                    let skipped = n.min(data.len() - at);
                    at += skipped;
                    self.skip = if skipped == n {
                        Skip::None
                    } else {
                        Skip::Bytes(n - skipped)
                    };
                    if self.skip != Skip::None {
                        return at;
                    }
                }
                Skip::None => {}
            }
            let rest = &data[at..];
            let Some(&first) = rest.first() else {
                return at;
            };
            if first.is_ascii_digit()
                && let Some((len, header)) = octet_count(rest)
            {
                let Some(header) = header else {
                    return at; // the count is not whole yet
                };
                let body = at + header;
                if len > self.max {
                    if data.len() - body < self.max {
                        return at;
                    }
                    records.push(record(body, self.max, true));
                    self.cut += 1;
                    self.skip = Skip::Bytes(len - self.max);
                    at = body + self.max;
                    continue;
                }
                if data.len() - body < len {
                    return at;
                }
                if len > 0 {
                    records.push(record(body, len, false));
                }
                at = body + len;
                continue;
            }
            match memchr::memchr2(b'\n', 0, rest) {
                Some(nl) if nl <= self.max => {
                    let line = &rest[..nl];
                    let len = line.strip_suffix(b"\r").unwrap_or(line).len();
                    if !line.trim_ascii().is_empty() {
                        records.push(record(at, len, false));
                    }
                    at += nl + 1;
                }
                None if rest.len() <= self.max => return at,
                _ => {
                    records.push(record(at, self.max, true));
                    self.cut += 1;
                    self.skip = Skip::Line;
                    at += self.max;
                }
            }
        }
    }

    /// At the end of the stream: [`Framer::frame`], then what is left (a last message
    /// without its newline, or an octet-counted one cut short) as a message of its own.
    fn finish(&mut self, data: &[u8], records: &mut Vec<Record>) -> usize {
        let mut at = self.frame(data, records);
        if self.skip != Skip::None {
            return data.len();
        }
        if let Some((len, Some(header))) = octet_count(&data[at..]) {
            // Cut short: keep what came.
            at += header;
            records.push(record(at, data.len() - at, len != data.len() - at));
            self.cut += 1;
        } else if !data[at..].trim_ascii().is_empty() {
            let len = (data.len() - at).min(self.max);
            records.push(record(at, len, len < data.len() - at));
        }
        data.len()
    }
}

/// `LEN SP` at the start of `b`: the length and the header's size (`None` when `b` ends
/// inside the digits); `None` when `b` does not start that way (then the frame is a line).
fn octet_count(b: &[u8]) -> Option<(usize, Option<usize>)> {
    let digits = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || b[0] == b'0' {
        return None;
    }
    match b.get(digits) {
        None if digits < 10 => Some((0, None)),
        Some(b' ') => {
            let len = b[..digits].iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
            Some((len, Some(digits + 1)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(data: &[u8], records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                let text = String::from_utf8_lossy(&data[r.message.start()..][..r.message.len()]);
                if r.cut {
                    format!("{text}[cut]")
                } else {
                    text.into_owned()
                }
            })
            .collect()
    }

    /// Frames `stream` fed in pieces of `step` bytes, as a connection would read it.
    fn frame_in_steps(stream: &[u8], step: usize, max: usize) -> (Vec<String>, u64) {
        let mut framer = Framer::new(max);
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut pieces = stream.chunks(step).peekable();
        while let Some(piece) = pieces.next() {
            buf.extend_from_slice(piece);
            let mut records = Vec::new();
            let used = if pieces.peek().is_none() {
                framer.finish(&buf, &mut records)
            } else {
                framer.frame(&buf, &mut records)
            };
            out.extend(messages(&buf, &records));
            buf.drain(..used);
        }
        (out, framer.cut)
    }

    #[test]
    fn newline_and_octet_counted_frames_mix_on_one_stream_in_any_pieces() {
        // A newline after an octet-counted frame ends an empty line, which is skipped.
        let stream = b"<13>a line\r\n11 <13>counted\n<13>after\n\n4 <1>x5 <2>y\n<12>python\0<14>last without newline";
        let expected = [
            "<13>a line",
            "<13>counted",
            "<13>after",
            "<1>x",
            "<2>y\n",
            "<12>python",
            "<14>last without newline",
        ];
        for step in [1, 2, 3, 7, 64, 1000] {
            let (got, cut) = frame_in_steps(stream, step, 1024);
            assert_eq!(cut, 0);
            assert_eq!(got, expected, "step {step}");
        }
    }

    #[test]
    fn messages_over_the_limit_are_cut_counted_and_the_rest_skipped() {
        let stream = b"<13>0123456789abcdef\n<13>ok\n20 <13>0123456789abcdef<13>next\n";
        for step in [1, 5, 100] {
            let (got, cut) = frame_in_steps(stream, step, 8);
            assert_eq!(
                got,
                ["<13>0123[cut]", "<13>ok", "<13>0123[cut]", "<13>next"],
                "step {step}"
            );
            assert_eq!(cut, 2);
        }
    }

    #[test]
    fn a_count_that_is_not_one_makes_a_line() {
        assert_eq!(octet_count(b"12 x"), Some((12, Some(3))));
        assert_eq!(octet_count(b"12"), Some((0, None)));
        assert_eq!(octet_count(b"12x"), None);
        assert_eq!(octet_count(b"012 x"), None);
        let (got, _) = frame_in_steps(b"2026-12-06 not syslog\n", 4, 100);
        assert_eq!(got, ["2026-12-06 not syslog"]);
    }

    #[test]
    fn datagrams_are_messages_with_their_sender() {
        let mut framed = Framed::default();
        let peer: SocketAddr = "10.0.0.7:514".parse().unwrap();
        assert_eq!(add_datagram(&mut framed, b"<13>one\n", peer, 100), 0);
        assert_eq!(add_datagram(&mut framed, b"<13>two, too long", peer, 8), 1);
        assert_eq!(messages(&framed.data, &framed.records), ["<13>one\n", "<13>two,[cut]"]);
        // One copy of the address for consecutive datagrams of one sender.
        assert_eq!(framed.arena, b"10.0.0.7");
        assert_eq!(framed.fields.len(), 2);
    }
}
