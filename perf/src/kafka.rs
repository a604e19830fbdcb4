//! What the `kafka-*` workloads need around the measured run: a Kafka-protocol broker
//! (one already running, `--kafka HOST:PORT`, or Tansu started for the bench, `--tansu
//! PATH`), topics, and two helper pipelines run by the same `weir` binary and not
//! measured: one fills a topic with the corpus before a consuming run, one reads a topic
//! back into a file after a producing run so its events can be counted.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The broker of a bench.
#[derive(Debug)]
pub struct Broker {
    bootstrap: String,
    /// Tansu, when the bench started it: (process, binary); stopped when dropped.
    tansu: Option<(Child, PathBuf)>,
}

impl Broker {
    /// A broker already running at `bootstrap` (it creates topics on first use, as
    /// Kafka's `auto.create.topics.enable` does by default).
    pub fn running(bootstrap: &str) -> Broker {
        Broker {
            bootstrap: bootstrap.to_string(),
            tansu: None,
        }
    }

    /// Starts Tansu (`bin`) on a free port of 127.0.0.1 with in-memory storage.
    pub fn start_tansu(bin: &Path) -> Result<Broker, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port for the broker: {e}"))?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("--tansu {}: cannot start it: {e}", bin.display()))?;
        let broker = Broker {
            bootstrap: format!("127.0.0.1:{port}"),
            tansu: Some((child, bin.to_path_buf())),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("--tansu {}: not listening after 10 s", bin.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    /// `host:port` for clients.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Makes sure `topic` exists with `partitions` partitions where the bench started the
    /// broker (a running broker creates it on first use).
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), String> {
        let Some((_, bin)) = &self.tansu else {
            return Ok(());
        };
        let out = Command::new(bin)
            .args(["topic", "create", topic, "--partitions", &partitions.to_string()])
            .arg("--broker")
            .arg(format!("tcp://{}", self.bootstrap))
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "creating topic {topic}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.tansu {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Consumer settings for a quick first join: with librdkafka's default session timeout
/// (45 s) a fresh group had no partitions from Tansu after 20 s; with these, in seconds.
pub const GROUP_TIMEOUTS: &str = "session.timeout.ms: '6000', heartbeat.interval.ms: '1000'";

/// Writes `corpus` (one message per line, lz4) to `topic`.
pub fn fill(weir: &Path, dir: &Path, bootstrap: &str, topic: &str, corpus: &Path) -> Result<(), String> {
    let yaml = format!(
        "inputs:\n  - {{ type: file, paths: ['{}'], mode: once }}\n\
         outputs:\n  - {{ type: kafka, bootstrap_servers: '{bootstrap}', topic: '{topic}', \
         encoding: raw, compression: lz4 }}\n",
        quote(corpus)
    );
    run_helper(weir, dir, "fill", &yaml).map_err(|e| format!("filling topic {topic}: {e}"))
}

/// Reads every message of `topic` into `output` (one line each), ending when none came
/// for `idle`.
pub fn read_back(
    weir: &Path,
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    output: &Path,
    idle: Duration,
) -> Result<(), String> {
    let yaml = format!(
        "exit_when: {{ idle: {}ms }}\n\
         inputs:\n  - {{ type: kafka, bootstrap_servers: '{bootstrap}', topics: ['{topic}'], \
         group_id: 'weir-bench-read-{}-{topic}', librdkafka_options: {{ {GROUP_TIMEOUTS} }} }}\n\
         outputs:\n  - {{ type: file, path: '{}', format: raw, append: false }}\n",
        idle.as_millis(),
        std::process::id(),
        quote(output)
    );
    run_helper(weir, dir, "read-back", &yaml).map_err(|e| format!("reading topic {topic} back: {e}"))
}

/// A path inside YAML single quotes.
pub(crate) fn quote(path: &Path) -> String {
    path.to_string_lossy().replace('\'', "''")
}

/// Runs `weir run` on `yaml` (written to `<dir>/<name>.yaml`), stderr kept beside it.
fn run_helper(weir: &Path, dir: &Path, name: &str, yaml: &str) -> Result<(), String> {
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(&config, yaml).map_err(|e| format!("{}: {e}", config.display()))?;
    let stderr = dir.join(format!("{name}.stderr"));
    let file = std::fs::File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    let status = Command::new(weir)
        .args(["--log-level", "warn", "run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .map_err(|e| format!("starting {}: {e}", weir.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "weir run {} failed ({status}): {}",
            config.display(),
            crate::bench::tail(&stderr)
        ))
    }
}
