//! A simulated Kubernetes node for tests and the `discovery` bench: a temporary folder laid
//! out like the kubelet's `/var/log/pods` and `/var/log/containers`, and the `weir` binary
//! running a `kubernetes_logs` pipeline over it.
#![allow(dead_code)] // each user takes what it needs

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("pods")).unwrap();
        fs::create_dir_all(dir.path().join("containers")).unwrap();
        Node { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config(&self, input_extra: &str, top_extra: &str) -> PathBuf {
        let cfg = format!(
            "data_dir: {data}\ncheckpoint_interval: 50ms\n{top_extra}\
             inputs:\n  - type: kubernetes_logs\n    paths: [\"{pods}/*/*/*.log\"]\n    containers_dir: {containers}\n    poll_interval: 50ms\n    rotate_wait: 300ms\n{input_extra}\
             outputs:\n  - type: file\n    path: {out}\n",
            data = self.path("data").display(),
            pods = self.path("pods").display(),
            containers = self.path("containers").display(),
            out = self.path("out.jsonl").display(),
        );
        let path = self.path("pipeline.yaml");
        fs::write(&path, cfg).unwrap();
        path
    }

    pub fn start(&self, config: &Path) -> Agent {
        Agent(
            super::agent::weir_run(config)
                .stderr(File::create(self.path("stderr.txt")).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    /// The container log file of a pod's container (and its /var/log/containers link).
    pub fn container_log(&self, ns: &str, pod: &str, container: &str, restart: u32) -> PathBuf {
        let uid = format!("uid-{pod}");
        let dir = self.path(&format!("pods/{ns}_{pod}_{uid}/{container}"));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{restart}.log"));
        File::options().create(true).append(true).open(&file).unwrap();
        let id = format!("{:0>64}", format!("{restart}{}", container.len()));
        let link = self.path(&format!("containers/{pod}_{ns}_{container}-{id}.log"));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, link).unwrap();
        file
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.path("out.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            assert!(
                start.elapsed() < limit,
                "after {limit:?}: {} of {n} events\nstderr: {}",
                events.len(),
                fs::read_to_string(self.path("stderr.txt")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A running agent, killed if the test ends (or panics) before it exits.
pub struct Agent(pub Child);

impl std::ops::Deref for Agent {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Agent {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn cri(stream: &str, tag: &str, msg: &str) -> String {
    format!("2024-05-01T10:00:00.000000001Z {stream} {tag} {msg}\n")
}

pub fn docker(stream: &str, msg: &str) -> String {
    format!("{{\"log\":\"{msg}\\n\",\"stream\":\"{stream}\",\"time\":\"2024-05-01T10:00:00.000000001Z\"}}\n")
}

pub fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

pub fn terminate(child: &mut Agent) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the pid of a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What [`short_lived`] measured.
#[derive(Debug)]
pub struct Report {
    /// Files made.
    pub files: usize,
    /// Creation to first event out, per file, sorted.
    pub latencies: Vec<Duration>,
}

impl Report {
    /// The `p`-th percentile.
    pub fn p(&self, p: usize) -> Duration {
        self.latencies[(self.latencies.len() * p / 100).min(self.latencies.len() - 1)]
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "creation -> first event out, {} short-lived files: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            self.files,
            self.p(50),
            self.p(90),
            self.p(99),
            self.latencies.last().unwrap()
        )
    }
}

/// Runs the agent over `files` short-lived containers, one every `every`: each writes
/// `lines` lines and its pod directory is deleted 300 ms after it was created. Panics if a
/// line is lost.
pub fn short_lived(node: &Node, files: usize, lines: usize, every: Duration) -> Report {
    let cfg = node.config("", "");
    let mut agent = node.start(&cfg);
    // Let the agent come up first.
    let warm = node.container_log("ns", "warm", "c", 0);
    append(&warm, &cri("stdout", "F", "warm 0"));
    node.wait_for(1, Duration::from_secs(10));
    // A watcher notes when each file's first event shows up in the output.
    let out = node.path("out.jsonl");
    let watcher = std::thread::spawn(move || {
        let mut first_seen: Vec<Option<Duration>> = vec![None; files];
        let mut seen_lines = 0;
        let limit = Instant::now() + every * files as u32 + Duration::from_secs(30);
        let mut offset = 0usize;
        while seen_lines < files * lines && Instant::now() < limit {
            let text = fs::read(&out).unwrap_or_default();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            for line in text[offset..].split_inclusive(|&b| b == b'\n') {
                if !line.ends_with(b"\n") {
                    break;
                }
                offset += line.len();
                let e: serde_json::Value = serde_json::from_slice(line).unwrap();
                let Some(i) = e["pod"].as_str().and_then(|p| p.strip_prefix("job-")) else {
                    continue;
                };
                let i: usize = i.parse().unwrap();
                seen_lines += 1;
                first_seen[i].get_or_insert(now);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (first_seen, seen_lines)
    });
    let mut created = Vec::new();
    for i in 0..files {
        let pod = format!("job-{i}");
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let log = node.container_log("batch", &pod, "main", 0);
        created.push(t);
        let mut text = String::new();
        for j in 0..lines {
            text.push_str(&cri("stdout", "F", &format!("{pod} {j}")));
        }
        append(&log, &text);
        let dir = node.path(&format!("pods/batch_{pod}_uid-{pod}"));
        // The pod is deleted 300 ms later, on another thread (the test goes on creating).
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            fs::remove_dir_all(dir).unwrap();
        });
        std::thread::sleep(every);
    }
    let (first_seen, seen_lines) = watcher.join().unwrap();
    assert!(terminate(&mut agent).success());
    assert_eq!(seen_lines, files * lines, "lines lost from short-lived files");
    let mut latencies: Vec<Duration> = first_seen
        .iter()
        .zip(&created)
        .map(|(seen, created)| seen.expect("every file seen").saturating_sub(*created))
        .collect();
    latencies.sort();
    Report { files, latencies }
}
