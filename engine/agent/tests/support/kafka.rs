//! A real Kafka-protocol broker for tests (Tansu, installed by `scripts/install-tansu.sh`,
//! which the test command runs), on 127.0.0.1 behind a TCP proxy the test can cut, and a
//! reader that takes a topic back from it.
//!
//! Without the broker a test fails under `CI=true`; elsewhere it is skipped, saying why
//! (`scripts/test` prints the skipped tests at the end).
#![allow(dead_code)] // each user takes what it needs

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Where the broker binary is: `$WEIR_TANSU`, else where `scripts/install-tansu.sh` puts it.
fn tansu() -> PathBuf {
    std::env::var_os("WEIR_TANSU").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/tansu"),
        PathBuf::from,
    )
}

/// The broker binary for the test `test`, or `None` when it is missing (the test is then
/// skipped, or fails under `CI=true`).
pub fn tansu_for(test: &str) -> Option<PathBuf> {
    let bin = tansu();
    if bin.exists() {
        return Some(bin);
    }
    super::skip(
        test,
        &format!(
            "no Kafka-protocol broker at {} (run scripts/install-tansu.sh)",
            bin.display()
        ),
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A broker with in-memory storage; clients reach it through [`Proxy`] (the broker
/// advertises the proxy's address). Stopped when dropped.
pub struct Broker {
    child: Child,
    port: u16,
    pub proxy: Proxy,
}

impl Broker {
    /// Starts one, or says why the test `test` is skipped (`None`).
    pub fn start(test: &str) -> Option<Broker> {
        let bin = tansu_for(test)?;
        let port = free_port();
        let proxy = Proxy::start(port);
        let advertised = format!("tcp://127.0.0.1:{}", proxy.port);
        let child = Command::new(&bin)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(&advertised)
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let broker = Broker { child, port, proxy };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the broker did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }

    /// `host:port` for clients (the proxy).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args(["topic", "create", topic, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--partitions")
            .arg(partitions.to_string())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "cannot create topic {topic}");
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker process.
    pub fn freeze(&self, frozen: bool) {
        let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on the pid of a child we own.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Every message of `topic` (each partition in order), read from the beginning until
    /// none came for a second. (Tansu 0.6.0's high watermarks are not message counts, so
    /// the end is found by waiting, not by asking.)
    pub fn read_topic(&self, topic: &str) -> Vec<(i32, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "weir-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let mut list = TopicPartitionList::new();
        for p in meta.topics()[0].partitions() {
            list.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut out = Vec::new();
        let start = Instant::now();
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_secs(1) {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "reading {topic} took over 120 s"
            );
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    out.push((m.partition(), m.payload().unwrap_or_default().to_vec()));
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }

    /// The offset `group` has committed for `topic`'s `partition` (`None`: nothing yet).
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let got = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
        match got.find_partition(topic, partition)?.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.freeze(false);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to 127.0.0.1:`upstream` that can cut every connection and refuse new ones
/// (a network partition, as the clients see it).
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (c, d) = (cut.clone(), done.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if d.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(down) = conn else { continue };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (from, to) in [(down.try_clone().unwrap(), up.try_clone().unwrap()), (up, down)] {
                    let c = c.clone();
                    std::thread::spawn(move || pipe(from, to, &c));
                }
            }
        });
        Proxy { port, cut, done }
    }

    /// Cuts (and keeps cutting) every connection, or lets them through again.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if cut.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
