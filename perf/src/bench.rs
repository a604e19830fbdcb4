//! The benchmark harness behind `weir bench`.
//!
//! For each workload it makes (or reuses) the corpus, then runs the pipeline N times as a
//! child `weir run` process and measures that child alone: user + system CPU seconds and
//! peak RSS from `wait4`'s rusage, wall time around it. Every run's output events are
//! counted and checked against the workload's expectation; a mismatch fails the whole
//! bench, so a broken pipeline cannot report a fast figure. With `--peers`, the same
//! corpus goes through Fluent Bit and/or Vector (when on `PATH`) with the configs in
//! `perf/peers/`. A workload whose input listens gets the corpus sent to it while it runs,
//! from outside the measured process ([`crate::send`]).
//!
//! Before anything is measured, every chosen pipeline goes through `weir check`: a
//! pipeline the binary rejects fails the bench at once rather than after the workloads
//! before it. One that uses a component type the binary does not have is left out of a
//! run of all workloads, with a note, and is an error when named.
//!
//! The headline is input MB per CPU-second (MB = 10^6 bytes): how much one core
//! processes, whatever the number of threads. The harness itself stays small (corpora are
//! streamed to disk, outputs counted in 1 MiB pieces): on Linux a child's `ru_maxrss`
//! counts its parent's resident pages at `exec`, so a large parent would inflate every
//! peak RSS it reports.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::corpus;
use crate::kafka::{self, Broker};
use crate::send;
use crate::workload::{self, KafkaRole, Workload};

/// Version of the JSON report's shape; bumped when a field changes meaning or goes away.
pub const SCHEMA: u32 = 1;

/// What `weir bench` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `weir` binary to run.
    pub weir: PathBuf,
    /// Its version, for the report.
    pub weir_version: String,
    /// Workloads to run, by name; empty for all.
    pub workloads: Vec<String>,
    /// Where the workload files are.
    pub workloads_dir: PathBuf,
    /// Where the peers' configs are (`<dir>/<peer>/<workload>.<ext>`).
    pub peers_dir: PathBuf,
    /// Corpus size in bytes.
    pub size: u64,
    /// Corpus seed.
    pub seed: u64,
    /// Runs per workload (and per peer).
    pub runs: usize,
    /// Where corpora are kept between benches.
    pub cache_dir: PathBuf,
    /// Where pipelines and outputs of the runs go (default: `<cache_dir>/../bench-runs`).
    pub work_dir: Option<PathBuf>,
    /// Write the JSON report here.
    pub json: Option<PathBuf>,
    /// Compare with this earlier JSON report.
    pub baseline: Option<PathBuf>,
    /// A workload regresses when its median MB/s per CPU-second is lower than the
    /// baseline's by more than this many percent.
    pub threshold: f64,
    /// Run the peers too.
    pub peers: bool,
    /// Draw the chart here.
    pub svg: Option<PathBuf>,
    /// A running Kafka-protocol broker for the Kafka workloads (`host:port`).
    pub kafka: Option<String>,
    /// Else a Tansu binary to start as their broker.
    pub tansu: Option<PathBuf>,
    /// Also run each workload at these worker counts (`--scale 1,2,4`).
    pub scale: Vec<usize>,
    /// Where the example Wasm plugins are built (`{plugins}` of the plugin workloads).
    pub plugins_dir: PathBuf,
}

impl Options {
    /// Defaults for everything but the binary: all workloads shipped with the source,
    /// 256 MiB corpora, seed 1, 3 runs, threshold 10 %.
    pub fn new(weir: PathBuf, weir_version: impl Into<String>) -> Options {
        Options {
            weir,
            weir_version: weir_version.into(),
            workloads: Vec::new(),
            workloads_dir: workload::default_dir(),
            peers_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("peers"),
            size: 256 << 20,
            seed: 1,
            runs: 3,
            cache_dir: default_cache_dir(),
            work_dir: None,
            json: None,
            baseline: None,
            threshold: 10.0,
            peers: false,
            svg: None,
            kafka: None,
            tansu: None,
            scale: Vec::new(),
            plugins_dir: default_plugins_dir(),
        }
    }
}

/// `$XDG_CACHE_HOME/weir/corpora`, else `~/.cache/weir/corpora`, else
/// `<temp dir>/weir-corpora`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    match base {
        Some(b) => b.join("weir").join("corpora"),
        None => std::env::temp_dir().join("weir-corpora"),
    }
}

/// How a bench ended, when it ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every workload ran and checked out (and none regressed against the baseline).
    Ok,
    /// At least one workload is slower than the baseline by more than the threshold.
    Regressed,
}

/// Median, minimum and maximum of a figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// The median (the mean of the two middle runs for an even count).
    pub median: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

impl Stat {
    fn of(values: impl IntoIterator<Item = f64>) -> Stat {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Stat {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// One measured run of a child process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Wall-clock seconds from spawn to exit.
    pub wall_s: f64,
    /// User CPU seconds, all threads.
    pub user_s: f64,
    /// System CPU seconds, all threads.
    pub sys_s: f64,
    /// Peak resident set size.
    pub max_rss_bytes: u64,
    /// Events in the output (lines).
    pub events: u64,
}

impl Run {
    fn cpu_s(&self) -> f64 {
        // A run too short to be charged a tick still took some time.
        (self.user_s + self.sys_s).max(1e-6)
    }
}

/// The figures of one engine (Weir or a peer) on one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Every run, in order.
    pub runs: Vec<Run>,
    /// Input MB (10^6 bytes) per CPU-second: the headline.
    pub mb_per_cpu_s: Stat,
    /// Output events per CPU-second.
    pub events_per_cpu_s: Stat,
    /// Output events per wall-clock second.
    pub events_per_s: Stat,
    /// Input MB per wall-clock second.
    pub wall_mb_per_s: Stat,
    /// User + system CPU seconds.
    pub cpu_s: Stat,
    /// Peak RSS in bytes.
    pub max_rss_bytes: Stat,
}

impl Figures {
    fn of(runs: Vec<Run>, input_bytes: u64) -> Figures {
        let mb = input_bytes as f64 / 1e6;
        Figures {
            mb_per_cpu_s: Stat::of(runs.iter().map(|r| mb / r.cpu_s())),
            events_per_cpu_s: Stat::of(runs.iter().map(|r| r.events as f64 / r.cpu_s())),
            events_per_s: Stat::of(runs.iter().map(|r| r.events as f64 / r.wall_s.max(1e-6))),
            wall_mb_per_s: Stat::of(runs.iter().map(|r| mb / r.wall_s.max(1e-6))),
            cpu_s: Stat::of(runs.iter().map(Run::cpu_s)),
            max_rss_bytes: Stat::of(runs.iter().map(|r| r.max_rss_bytes as f64)),
            runs,
        }
    }
}

/// A peer on one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerResult {
    /// `fluent-bit` or `vector`.
    pub name: String,
    /// The config used (absent when the peer has none for this workload).
    pub config: Option<String>,
    /// Its figures, when every run succeeded with the expected count.
    pub figures: Option<Figures>,
    /// Weir's median MB/s per CPU-second divided by the peer's.
    pub ratio: Option<f64>,
    /// Why there are no figures.
    pub error: Option<String>,
}

/// One workload's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Its name.
    pub name: String,
    /// What it does.
    pub about: String,
    /// The corpus kind.
    pub corpus: String,
    /// Corpus bytes (the input).
    pub input_bytes: u64,
    /// Events every run had to write.
    pub expected_events: u64,
    /// Weir's figures.
    pub weir: Figures,
    /// The peers that ran or were tried.
    pub peers: Vec<PeerResult>,
    /// With `--scale`: Weir's figures at each worker count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale: Vec<ScalePoint>,
}

/// Weir's figures at one worker count (`--scale`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    /// `weir run --workers N`.
    pub workers: usize,
    /// The runs' figures.
    pub figures: Figures,
    /// Median wall MB/s over that of the first worker count asked (one worker with
    /// `--scale 1,...`).
    pub speedup: f64,
}

/// The machine the figures come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the bench.
    pub cores: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Kernel release.
    pub kernel: String,
}

/// How the bench ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Requested corpus size (each corpus ends at the last whole record that fits).
    pub size_bytes: u64,
    /// Corpus seed.
    pub seed: u64,
    /// Runs per workload and peer.
    pub runs: usize,
    /// The harness's own peak RSS: a lower bound of every child's reported peak.
    pub harness_max_rss_bytes: u64,
}

/// One workload against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The workload.
    pub name: String,
    /// The baseline's median MB/s per CPU-second (absent: new workload).
    pub baseline: Option<f64>,
    /// This run's.
    pub now: f64,
    /// Change in percent (negative: slower).
    pub change_pct: Option<f64>,
    /// Slower than the baseline by more than the threshold.
    pub regressed: bool,
}

/// The machine-readable report (`--json`); documented in `perf/README.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Version of the Weir that ran.
    pub weir_version: String,
    /// When the bench ended (RFC 3339, UTC).
    pub date: String,
    /// Where.
    pub machine: Machine,
    /// How.
    pub settings: Settings,
    /// The results, in the order run.
    pub workloads: Vec<WorkloadResult>,
    /// Peers asked for but not found on `PATH`.
    pub peers_missing: Vec<String>,
    /// The baseline comparison, with `--baseline`.
    pub baseline: Option<BaselineReport>,
}

/// The comparison with an earlier report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// The baseline file.
    pub file: String,
    /// The threshold in percent.
    pub threshold_pct: f64,
    /// Per workload of this run.
    pub workloads: Vec<Comparison>,
}

/// A peer engine and how to run it.
#[derive(Debug, Clone, Copy)]
struct Peer {
    name: &'static str,
    binary: &'static str,
    /// Arguments; `{config}` is the substituted config file.
    args: &'static [&'static str],
    /// The corpus is fed on standard input (the peer has no read-to-end file input).
    stdin_corpus: bool,
    /// Config file extensions, in order of preference.
    exts: &'static [&'static str],
}

const PEERS: &[Peer] = &[
    Peer {
        name: "fluent-bit",
        binary: "fluent-bit",
        args: &["-c", "{config}"],
        stdin_corpus: false,
        exts: &["yaml", "conf"],
    },
    Peer {
        name: "vector",
        binary: "vector",
        args: &["--quiet", "--config", "{config}"],
        stdin_corpus: true,
        exts: &["yaml", "toml"],
    },
];

/// The peers' names and their config file extensions, for tests of the shipped configs.
pub fn peer_config_exts() -> Vec<(&'static str, &'static [&'static str])> {
    PEERS.iter().map(|p| (p.name, p.exts)).collect()
}

/// Runs the bench: prints the table (and comparisons) to stdout, progress to stderr
/// when it is a terminal, and writes the report and chart when asked. An error means
/// the bench could not be trusted (a child failed, an output count was wrong).
pub fn run(opts: &Options) -> Result<Outcome, String> {
    if opts.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if opts.scale.contains(&0) {
        return Err("--scale: worker counts start at 1 (e.g. --scale 1,2,4,8,16)".into());
    }
    if !opts.threshold.is_finite() || opts.threshold < 0.0 {
        return Err(format!(
            "--threshold must be a positive percentage, not {}",
            opts.threshold
        ));
    }
    let all = workload::load_dir(&opts.workloads_dir)?;
    let chosen: Vec<&Workload> = if opts.workloads.is_empty() {
        all.iter().collect()
    } else {
        opts.workloads
            .iter()
            .map(|name| {
                all.iter().find(|w| &w.name == name).ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
                    format!("unknown workload `{name}` (known: {})", names.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut chosen = chosen;
    let baseline = match &opts.baseline {
        Some(path) => Some((path, read_baseline(path)?)),
        None => None,
    };
    let work_dir = opts.work_dir.clone().unwrap_or_else(|| {
        opts.cache_dir
            .parent()
            .map_or_else(|| opts.cache_dir.join("runs"), |p| p.join("bench-runs"))
    });
    for dir in [&opts.cache_dir, &work_dir] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    plugins_built(opts, &mut chosen)?;
    check_pipelines(opts, &work_dir, &chosen)?;
    let broker = kafka_broker(opts, &mut chosen)?;

    let mut peers: Vec<(Peer, PathBuf)> = Vec::new();
    let mut peers_missing = Vec::new();
    if opts.peers {
        for peer in PEERS {
            match find_on_path(peer.binary) {
                Some(bin) => peers.push((*peer, bin)),
                None => {
                    eprintln!("note: {} is not on PATH; skipping it", peer.binary);
                    peers_missing.push(peer.name.to_string());
                }
            }
        }
    }

    let steps = chosen.len() * opts.runs * (1 + peers.len() + opts.scale.len());
    let mut progress = Progress::new(steps);
    let mut results = Vec::new();
    for w in &chosen {
        progress.note(&format!("{}: corpus {} {}", w.name, w.corpus, human_bytes(opts.size)));
        let (corpus_path, records, input_bytes) = ensure_corpus(&opts.cache_dir, &w.corpus, opts.size, opts.seed)?;
        let expected = w
            .expect
            .count(&corpus_path, records)
            .map_err(|e| format!("{}: counting the expected events: {e}", w.name))?;
        warm(&corpus_path).map_err(|e| format!("reading {}: {e}", corpus_path.display()))?;

        let target = Target::new(
            w,
            opts,
            broker.as_ref(),
            (&corpus_path, &work_dir),
            expected,
            &mut progress,
        )?;
        let weir = Figures::of(target.runs(None, &mut progress)?, input_bytes);
        let scale = scale(&target, input_bytes, &mut progress)?;

        let mut peer_results = Vec::new();
        for (peer, bin) in &peers {
            let result = run_peer(
                peer,
                bin,
                w,
                opts,
                &corpus_path,
                &work_dir,
                input_bytes,
                expected,
                &weir,
                &mut progress,
            );
            if let Some(e) = &result.error {
                progress.clear();
                eprintln!("warning: {} on {}: {e}", peer.name, w.name);
            }
            peer_results.push(result);
        }
        results.push(WorkloadResult {
            name: w.name.clone(),
            about: w.about.clone(),
            corpus: w.corpus.clone(),
            input_bytes,
            expected_events: expected,
            weir,
            peers: peer_results,
            scale,
        });
    }
    progress.clear();

    let mut report = Report {
        schema: SCHEMA,
        weir_version: opts.weir_version.clone(),
        date: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .map(|t| t.to_string())
            .unwrap_or_default(),
        machine: machine(),
        settings: Settings {
            size_bytes: opts.size,
            seed: opts.seed,
            runs: opts.runs,
            harness_max_rss_bytes: own_max_rss(),
        },
        workloads: results,
        peers_missing,
        baseline: None,
    };
    print!(
        "{}{}",
        table(&report, &peers.iter().map(|(p, _)| p.name).collect::<Vec<_>>()),
        scale_table(&report)
    );
    let mut outcome = Outcome::Ok;
    if let Some((path, base)) = &baseline {
        let cmp = compare(&report, base, opts.threshold);
        print!("{}", comparison_table(path, base, &cmp, opts.threshold));
        if cmp.iter().any(|c| c.regressed) {
            outcome = Outcome::Regressed;
        }
        report.baseline = Some(BaselineReport {
            file: path.display().to_string(),
            threshold_pct: opts.threshold,
            workloads: cmp,
        });
    }
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, svg(&report)).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(outcome)
}

/// Where the example plugins of the source tree are built: `wasm-plugins/`'s own target
/// directory (`cargo build --release` there, or any build of the tests).
pub fn default_plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-plugins/target/wasm32-wasip2/release")
}

/// Checks that the plugins the chosen workloads load are built. A missing one leaves its
/// workloads out of a run of all workloads (with a note) and is an error when they are named.
fn plugins_built(opts: &Options, chosen: &mut Vec<&Workload>) -> Result<(), String> {
    let missing = |w: &Workload| {
        w.plugins
            .iter()
            .map(|p| opts.plugins_dir.join(format!("{p}.wasm")))
            .find(|f| !f.is_file())
    };
    let lacking: Vec<(String, PathBuf)> = chosen
        .iter()
        .filter_map(|w| missing(w).map(|f| (w.name.clone(), f)))
        .collect();
    let Some((_, file)) = lacking.first() else {
        return Ok(());
    };
    let names: Vec<&str> = lacking.iter().map(|(n, _)| n.as_str()).collect();
    let why = format!(
        "{} need(s) the example Wasm plugins, and {} is not there: build them with `cargo build \
         --release` in wasm-plugins/ (or name their directory with --plugins-dir DIR)",
        names.join(", "),
        file.display()
    );
    if !opts.workloads.is_empty() {
        return Err(why);
    }
    eprintln!("note: skipping {why}");
    chosen.retain(|w| missing(w).is_none());
    Ok(())
}

/// Runs `weir check` on each chosen workload's pipeline (placeholders filled with
/// stand-ins) before anything is measured: a pipeline it rejects (a typo, a component this
/// binary lacks) fails the bench at once, naming the workload, instead of after the
/// workloads before it have run. `weir check` also compiles the plugins a pipeline loads
/// into Weir's cache, so no measured run compiles one.
fn check_pipelines(opts: &Options, work_dir: &Path, chosen: &[&Workload]) -> Result<(), String> {
    let plugins = opts.plugins_dir.to_string_lossy();
    let stand_ins = [
        ("bootstrap", "127.0.0.1:9092"),
        ("topic", "weir-bench-check"),
        ("group", "weir-bench-check"),
        ("address", "127.0.0.1:0"),
        ("plugins", plugins.as_ref()),
    ];
    for w in chosen {
        let pipeline = work_dir.join(format!("{}.check.yaml", w.name));
        let text = w.pipeline(
            &work_dir.join("corpus.log"),
            &work_dir.join(format!("{}.out", w.name)),
            &stand_ins,
        );
        std::fs::write(&pipeline, text).map_err(|e| format!("writing {}: {e}", pipeline.display()))?;
        let out = Command::new(&opts.weir)
            .args(["check", "-c"])
            .arg(&pipeline)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("starting {}: {e}", opts.weir.display()))?;
        let _ = std::fs::remove_file(&pipeline);
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(format!("{}: weir check {}.yaml: {why}", w.name, w.name));
        }
    }
    Ok(())
}

/// The broker the chosen Kafka workloads need: `--kafka`, else Tansu started from
/// `--tansu`. Without either, Kafka workloads are left out of a run of all workloads (with
/// a note) and are an error when named.
fn kafka_broker(opts: &Options, chosen: &mut Vec<&Workload>) -> Result<Option<Broker>, String> {
    let kafka: Vec<&str> = chosen
        .iter()
        .filter(|w| w.kafka.is_some())
        .map(|w| w.name.as_str())
        .collect();
    if kafka.is_empty() {
        return Ok(None);
    }
    if let Some(bootstrap) = &opts.kafka {
        return Ok(Some(Broker::running(bootstrap)));
    }
    if let Some(bin) = &opts.tansu {
        return Broker::start_tansu(bin).map(Some);
    }
    let why = format!(
        "{} need(s) a Kafka-protocol broker: --kafka HOST:PORT (one running) or --tansu PATH \
         (Tansu, started for the bench; scripts/install-tansu.sh installs it)",
        kafka.join(", ")
    );
    if !opts.workloads.is_empty() {
        return Err(why);
    }
    eprintln!("note: skipping {why}");
    chosen.retain(|w| w.kafka.is_none());
    Ok(None)
}

/// Partitions of the topics the bench creates.
const KAFKA_PARTITIONS: u32 = 3;

/// How long the read-back of a produced topic waits for more before it ends.
const READ_BACK_IDLE: Duration = Duration::from_secs(5);

/// What every `weir run` of one workload needs. A Kafka workload gets its topic (filled
/// first, for `consume`) and, for `produce`, each run's topic is read back to count what
/// arrived; a listening workload gets a free address and the corpus sent to it while it
/// runs. None of these steps is measured.
struct Target<'a> {
    w: &'a Workload,
    opts: &'a Options,
    broker: Option<&'a Broker>,
    corpus: &'a Path,
    work_dir: &'a Path,
    expected: u64,
    /// Topic and group names start with this.
    base: String,
    /// Runs so far (each produce run gets a fresh topic, each consume run a fresh group).
    count: std::cell::Cell<usize>,
}

impl<'a> Target<'a> {
    fn new(
        w: &'a Workload,
        opts: &'a Options,
        broker: Option<&'a Broker>,
        (corpus, work_dir): (&'a Path, &'a Path),
        expected: u64,
        progress: &mut Progress,
    ) -> Result<Target<'a>, String> {
        let base = format!("weir-bench-{}-{}", std::process::id(), w.name);
        if w.kafka == Some(KafkaRole::Consume) {
            let broker = broker.ok_or_else(|| format!("{}: no broker", w.name))?;
            let fail = |e: String| format!("{}: {e}", w.name);
            broker.create_topic(&base, KAFKA_PARTITIONS).map_err(fail)?;
            progress.note(&format!("{}: filling topic {base}", w.name));
            kafka::fill(&opts.weir, work_dir, broker.bootstrap(), &base, corpus).map_err(fail)?;
        }
        Ok(Target {
            w,
            opts,
            broker,
            corpus,
            work_dir,
            expected,
            base,
            count: std::cell::Cell::new(0),
        })
    }

    /// Runs the workload `opts.runs` times (with `--workers N` when given) and checks each
    /// run's event count.
    fn runs(&self, workers: Option<usize>, progress: &mut Progress) -> Result<Vec<Run>, String> {
        let w = self.w;
        let output = self.work_dir.join(format!("{}.out", w.name));
        let with = workers.map_or(String::new(), |n| format!(", {n} worker(s)"));
        let mut runs = Vec::new();
        for i in 0..self.opts.runs {
            progress.step(&format!("{}: weir run {}/{}{with}", w.name, i + 1, self.opts.runs));
            let fail = |e: String| format!("{}: weir run {}{with}: {e}", w.name, i + 1);
            let run = self.run(workers, &output).map_err(fail)?;
            if run.events != self.expected {
                return Err(format!(
                    "{}: weir run {}{with} wrote {} events, expected {} (pipeline {}.yaml, output kept at {})",
                    w.name,
                    i + 1,
                    run.events,
                    self.expected,
                    self.work_dir.join(&w.name).display(),
                    output.display()
                ));
            }
            runs.push(run);
        }
        let _ = std::fs::remove_file(&output);
        Ok(runs)
    }

    /// One measured run into `output` (for `produce`, the topic read back into it).
    fn run(&self, workers: Option<usize>, output: &Path) -> Result<Run, String> {
        let (w, n) = (self.w, self.count.get());
        self.count.set(n + 1);
        let bootstrap = self.broker.map_or("", Broker::bootstrap);
        let produce = w.kafka == Some(KafkaRole::Produce);
        let (topic, group) = if produce {
            (format!("{}-{n}", self.base), String::new())
        } else {
            (self.base.clone(), format!("{}-{n}", self.base))
        };
        if let (true, Some(broker)) = (produce, self.broker) {
            broker.create_topic(&topic, KAFKA_PARTITIONS)?;
        }
        let address = match w.send {
            Some(_) => send::free_address()?,
            None => String::new(),
        };
        let plugins = self.opts.plugins_dir.to_string_lossy();
        let values = [
            ("bootstrap", bootstrap),
            ("topic", topic.as_str()),
            ("group", group.as_str()),
            ("address", address.as_str()),
            ("plugins", plugins.as_ref()),
        ];
        let pipeline = self.work_dir.join(format!("{}.yaml", w.name));
        std::fs::write(&pipeline, w.pipeline(self.corpus, output, &values))
            .map_err(|e| format!("writing {}: {e}", pipeline.display()))?;
        let mut cmd = Command::new(&self.opts.weir);
        cmd.args(["--log-level", "warn", "run", "-c"]).arg(&pipeline);
        if let Some(n) = workers {
            cmd.arg("--workers").arg(n.to_string());
        }
        if !w.exec.is_empty() {
            let corpus = self.corpus.to_string_lossy();
            cmd.args(["--exec", "--"])
                .args(w.exec.iter().map(|a| a.replace("{corpus}", &corpus)));
        }
        let stderr = self.work_dir.join(format!("{}.stderr", w.name));
        let to_check = (!produce).then_some(output);
        let measured = Measured::start(cmd, None, to_check, &stderr)?;
        if let Some(role) = w.send {
            let sent = send::send(
                role,
                &self.opts.weir,
                self.work_dir,
                self.corpus,
                &address,
                measured.pid,
            );
            if let Err(e) = sent {
                return Err(format!("sending the corpus: {e}; {}", measured.abandon()));
            }
        }
        let mut run = measured.finish(to_check, &w.forbid)?;
        if produce {
            kafka::read_back(
                &self.opts.weir,
                self.work_dir,
                bootstrap,
                &topic,
                output,
                READ_BACK_IDLE,
            )?;
            run.events = check(output, &w.forbid)?;
        }
        Ok(run)
    }
}

/// With `--scale`: the workload's figures at each worker count, and the speed-up of each
/// over the first.
fn scale(target: &Target<'_>, input_bytes: u64, progress: &mut Progress) -> Result<Vec<ScalePoint>, String> {
    let mut points: Vec<ScalePoint> = Vec::new();
    for &workers in &target.opts.scale {
        let figures = Figures::of(target.runs(Some(workers), progress)?, input_bytes);
        let first = points
            .first()
            .map_or(figures.wall_mb_per_s.median, |p| p.figures.wall_mb_per_s.median);
        points.push(ScalePoint {
            workers,
            speedup: figures.wall_mb_per_s.median / first.max(1e-9),
            figures,
        });
    }
    Ok(points)
}

/// The corpus of `kind` at `size`/`seed` in `dir`, generated unless already there:
/// (path, records, bytes).
fn ensure_corpus(dir: &Path, kind: &str, size: u64, seed: u64) -> Result<(PathBuf, u64, u64), String> {
    let stem = format!("{kind}-{size}-s{seed}-v{}", corpus::VERSION);
    let path = dir.join(format!("{stem}.log"));
    let meta = dir.join(format!("{stem}.json"));
    #[derive(Serialize, Deserialize)]
    struct Meta {
        bytes: u64,
        records: u64,
    }
    if let (Ok(text), Ok(file)) = (std::fs::read_to_string(&meta), std::fs::metadata(&path))
        && let Ok(m) = serde_json::from_str::<Meta>(&text)
        && m.bytes == file.len()
    {
        return Ok((path, m.records, m.bytes));
    }
    let fail = |e: io::Error| format!("generating {}: {e}", path.display());
    // Per process: two benches may fill the same cache at once.
    let tmp = dir.join(format!("{stem}.log.{}.tmp", std::process::id()));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(fail)?);
    let written = corpus::write(kind, size, seed, &mut out)
        .ok_or_else(|| format!("unknown corpus kind `{kind}`"))?
        .map_err(fail)?;
    out.into_inner().map_err(|e| fail(e.into_error()))?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    let m = Meta {
        bytes: written.bytes,
        records: written.records,
    };
    let text = serde_json::to_string(&m).map_err(|e| e.to_string())?;
    std::fs::write(&meta, text).map_err(fail)?;
    Ok((path, written.records, written.bytes))
}

/// Reads a file once so every run finds it in the page cache.
fn warm(path: &Path) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// Runs `cmd` as a measured child to its end ([`Measured`]) and checks `output` (when the
/// run writes one).
fn measure(
    cmd: Command,
    stdin: Option<&Path>,
    output: Option<&Path>,
    stderr_file: &Path,
    forbid: &[String],
) -> Result<Run, String> {
    Measured::start(cmd, stdin, output, stderr_file)?.finish(output, forbid)
}

/// A child being measured: started, not reaped yet. Reaped by `wait4`, which gives its
/// rusage; whatever runs meanwhile in the harness (sending it a corpus) is not counted.
#[derive(Debug)]
struct Measured<'a> {
    pid: libc::pid_t,
    started: Instant,
    stderr_file: &'a Path,
}

impl<'a> Measured<'a> {
    /// Spawns `cmd` (stdin from `stdin` or nothing, stdout discarded, stderr to
    /// `stderr_file`), after removing `output`.
    #[allow(clippy::zombie_processes)] // reaped by wait4 in `finish` or `abandon`
    fn start(
        mut cmd: Command,
        stdin: Option<&Path>,
        output: Option<&Path>,
        stderr_file: &'a Path,
    ) -> Result<Measured<'a>, String> {
        if let Some(output) = output {
            match std::fs::remove_file(output) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("removing {}: {e}", output.display())),
            }
        }
        let stderr = File::create(stderr_file).map_err(|e| format!("{}: {e}", stderr_file.display()))?;
        cmd.stdout(Stdio::null()).stderr(stderr);
        match stdin {
            Some(p) => cmd.stdin(File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
            None => cmd.stdin(Stdio::null()),
        };
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", cmd.get_program().to_string_lossy()))?;
        Ok(Measured {
            pid: child.id() as libc::pid_t,
            started,
            stderr_file,
        })
    }

    /// Waits for the child to exit, which must be with status 0, and checks `output`:
    /// its events, none of `forbid`.
    fn finish(self, output: Option<&Path>, forbid: &[String]) -> Result<Run, String> {
        let (status, usage) = self.reap()?;
        let wall_s = self.started.elapsed().as_secs_f64();
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(format!("failed ({}): {}", how(status), tail(self.stderr_file)));
        }
        let events = match output {
            Some(output) => check(output, forbid)?,
            None => 0,
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Run {
            wall_s,
            user_s: secs(usage.ru_utime),
            sys_s: secs(usage.ru_stime),
            // Linux reports kibibytes.
            max_rss_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
            events,
        })
    }

    /// Kills the child (its run cannot count any more) and reaps it; says how it ended,
    /// for the error that made the harness give up on it.
    fn abandon(self) -> String {
        // SAFETY: kill(2) on our own child, not reaped yet, so its pid is still ours.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        match self.reap() {
            Ok((status, _)) if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL => {
                format!("the measured weir run was stopped (stderr: {})", tail(self.stderr_file))
            }
            Ok((status, _)) => format!(
                "the measured weir run had ended ({}): {}",
                how(status),
                tail(self.stderr_file)
            ),
            Err(e) => e,
        }
    }

    /// `wait4` on the child: its wait status and rusage.
    fn reap(&self) -> Result<(libc::c_int, libc::rusage), String> {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waits for our own child, which nothing else reaps; both pointers
            // point to live locals.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
            if r == self.pid {
                return Ok((status, usage));
            }
            let e = io::Error::last_os_error();
            if r == -1 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("waiting for the child: {e}"));
        }
    }
}

/// `exit status 2`, `signal 9`.
fn how(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    }
}

/// The events (lines) of a run's `output`; an error when it contains any of `forbid`.
fn check(output: &Path, forbid: &[String]) -> Result<u64, String> {
    let check = workload::check_output(output, forbid).map_err(|e| format!("reading {}: {e}", output.display()))?;
    if !check.found.is_empty() {
        return Err(format!(
            "the output contains {} (output kept at {})",
            check.found.join(", "),
            output.display()
        ));
    }
    Ok(check.events)
}

/// The last lines of a child's stderr, for an error message.
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(2000)..]).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(8)..].join("\n");
    if last.trim().is_empty() {
        format!("no message (stderr in {})", path.display())
    } else {
        last
    }
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn run_peer(
    peer: &Peer,
    bin: &Path,
    w: &Workload,
    opts: &Options,
    corpus_path: &Path,
    work_dir: &Path,
    input_bytes: u64,
    expected: u64,
    weir: &Figures,
    progress: &mut Progress,
) -> PeerResult {
    let mut result = PeerResult {
        name: peer.name.to_string(),
        config: None,
        figures: None,
        ratio: None,
        error: None,
    };
    let dir = opts.peers_dir.join(peer.name);
    let Some((config, ext)) = peer
        .exts
        .iter()
        .map(|ext| (dir.join(format!("{}.{ext}", w.name)), ext))
        .find(|(p, _)| p.is_file())
    else {
        result.error = Some(format!("no config for this workload in {}", dir.display()));
        for _ in 0..opts.runs {
            progress.step(&format!("{}: {} (no config)", w.name, peer.name));
        }
        return result;
    };
    result.config = Some(config.display().to_string());
    let run_dir = work_dir.join(format!("{}-{}", peer.name, w.name));
    let output = run_dir.join("out.json");
    let data_dir = run_dir.join("data");
    let substituted = run_dir.join(format!("config.{ext}"));
    let prepared = (|| -> Result<(), String> {
        let template = std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        // A fresh data dir each time: no peer may resume from a checkpoint.
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let text = workload::substitute(
            &template,
            &[
                ("corpus", corpus_path),
                ("output", &output),
                ("output_dir", &run_dir),
                ("output_file", Path::new("out.json")),
                ("data_dir", &data_dir),
                ("config_dir", &dir),
            ],
        );
        std::fs::write(&substituted, text).map_err(|e| format!("{}: {e}", substituted.display()))
    })();
    if let Err(e) = prepared {
        result.error = Some(e);
        return result;
    }
    let mut runs = Vec::new();
    for i in 0..opts.runs {
        progress.step(&format!("{}: {} run {}/{}", w.name, peer.name, i + 1, opts.runs));
        // Peers keep state (tail offsets, buffers) in the data dir: start empty.
        let _ = std::fs::remove_dir_all(&data_dir);
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            result.error = Some(format!("{}: {e}", data_dir.display()));
            return result;
        }
        let mut cmd = Command::new(bin);
        for arg in peer.args {
            if *arg == "{config}" {
                cmd.arg(&substituted);
            } else {
                cmd.arg(arg);
            }
        }
        let stdin = peer.stdin_corpus.then_some(corpus_path);
        match measure(cmd, stdin, Some(&output), &run_dir.join("stderr.txt"), &[]) {
            Ok(run) if run.events == expected => runs.push(run),
            Ok(run) => {
                result.error = Some(format!(
                    "run {} wrote {} events, expected {expected} (output kept at {})",
                    i + 1,
                    run.events,
                    output.display()
                ));
                return result;
            }
            Err(e) => {
                result.error = Some(format!("run {}: {e}", i + 1));
                return result;
            }
        }
    }
    let _ = std::fs::remove_file(&output);
    let figures = Figures::of(runs, input_bytes);
    result.ratio = Some(weir.mb_per_cpu_s.median / figures.mb_per_cpu_s.median.max(1e-9));
    result.figures = Some(figures);
    result
}

/// The executable called `name` in one of the `PATH` directories.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// This process's peak RSS in bytes.
fn own_max_rss() -> u64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    (usage.ru_maxrss.max(0) as u64) * 1024
}

/// The per-workload medians of an earlier report: (name, MB/s per CPU-second), plus
/// what the report says about where it ran.
#[derive(Debug)]
struct Baseline {
    medians: Vec<(String, f64)>,
    about: String,
}

fn read_baseline(path: &Path) -> Result<Baseline, String> {
    let fail = |m: String| format!("baseline {}: {m}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let workloads = v["workloads"]
        .as_array()
        .ok_or_else(|| fail("no `workloads` array (not a `weir bench --json` report?)".into()))?;
    let mut medians = Vec::new();
    for w in workloads {
        let name = w["name"]
            .as_str()
            .ok_or_else(|| fail("a workload without `name`".into()))?;
        let median = w["weir"]["mb_per_cpu_s"]["median"]
            .as_f64()
            .ok_or_else(|| fail(format!("{name}: no `weir.mb_per_cpu_s.median`")))?;
        medians.push((name.to_string(), median));
    }
    let about = format!(
        "weir {}, {}, {}",
        v["weir_version"].as_str().unwrap_or("?"),
        v["date"].as_str().unwrap_or("?"),
        v["machine"]["cpu_model"].as_str().unwrap_or("?")
    );
    Ok(Baseline { medians, about })
}

fn compare(report: &Report, base: &Baseline, threshold: f64) -> Vec<Comparison> {
    report
        .workloads
        .iter()
        .map(|w| {
            let now = w.weir.mb_per_cpu_s.median;
            let baseline = base.medians.iter().find(|(n, _)| *n == w.name).map(|(_, m)| *m);
            let change_pct = baseline.filter(|b| *b > 0.0).map(|b| (now - b) / b * 100.0);
            Comparison {
                name: w.name.clone(),
                baseline,
                now,
                change_pct,
                regressed: change_pct.is_some_and(|c| c < -threshold),
            }
        })
        .collect()
}

fn comparison_table(path: &Path, base: &Baseline, cmp: &[Comparison], threshold: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nAgainst baseline {} ({}):", path.display(), base.about);
    let width = cmp.iter().map(|c| c.name.len()).max().unwrap_or(8).max(8);
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>10}  {:>8}",
        "workload", "baseline", "now", "change"
    );
    for c in cmp {
        let (b, change) = match (c.baseline, c.change_pct) {
            (Some(b), Some(p)) => (format!("{b:.0}"), format!("{p:+.1}%")),
            (Some(b), None) => (format!("{b:.0}"), "-".into()),
            _ => ("-".into(), "new".into()),
        };
        let verdict = if c.regressed {
            format!("  REGRESSED: more than {threshold}% slower")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<width$}  {b:>10}  {:>10.0}  {change:>8}{verdict}",
            c.name, c.now
        );
    }
    let regressed: Vec<&str> = cmp.iter().filter(|c| c.regressed).map(|c| c.name.as_str()).collect();
    if regressed.is_empty() {
        let _ = writeln!(out, "No workload is more than {threshold}% slower than the baseline.");
    } else {
        let _ = writeln!(
            out,
            "Regression: {} slower than the baseline by more than {threshold}% (MB/s per CPU-second, median).",
            regressed.join(", ")
        );
    }
    out
}

/// `12.3 MiB`, `64 MiB`.
fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

/// `4.2 M`, `910 k`.
fn human_count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// A figure at a precision that suits its size.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The table for people.
fn table(report: &Report, peers: &[&str]) -> String {
    let m = &report.machine;
    let s = &report.settings;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "weir {} · {} · {} cores · corpora {} (seed {}) · {} run{} each",
        report.weir_version,
        m.cpu_model,
        m.cores,
        human_bytes(s.size_bytes),
        s.seed,
        s.runs,
        if s.runs == 1 { "" } else { "s" }
    );
    let mut rows = vec![{
        let mut h = vec![
            "workload".to_string(),
            "MB/s per CPU-s".into(),
            "(min-max)".into(),
            "events/CPU-s".into(),
            "events/s".into(),
            "wall MB/s".into(),
            "CPU s".into(),
            "peak RSS".into(),
        ];
        h.extend(peers.iter().map(|p| format!("vs {p}")));
        h
    }];
    for w in &report.workloads {
        let f = &w.weir;
        let mut row = vec![
            w.name.clone(),
            num(f.mb_per_cpu_s.median),
            format!("({}-{})", num(f.mb_per_cpu_s.min), num(f.mb_per_cpu_s.max)),
            human_count(f.events_per_cpu_s.median),
            human_count(f.events_per_s.median),
            num(f.wall_mb_per_s.median),
            format!("{:.2}", f.cpu_s.median),
            human_bytes(f.max_rss_bytes.median as u64),
        ];
        for p in peers {
            let cell = match w.peers.iter().find(|r| r.name == *p) {
                Some(PeerResult {
                    ratio: Some(r),
                    figures: Some(pf),
                    ..
                }) => format!("{r:.1}x ({} MB/s)", num(pf.mb_per_cpu_s.median)),
                Some(PeerResult { config: None, .. }) => "no config".into(),
                Some(_) => "failed".into(),
                None => "-".into(),
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 || c == 2 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str(if c == 1 { " " } else { "  " });
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * cols - 3));
        }
    }
    let _ = writeln!(
        out,
        "MB/s per CPU-s: input MB (10^6 bytes) / (user + sys CPU seconds of the whole process), median of the runs."
    );
    if !peers.is_empty() {
        let _ = writeln!(
            out,
            "vs PEER: Weir's MB/s per CPU-s divided by the peer's on the same corpus (the peer's figure in brackets)."
        );
    }
    out
}

/// The `--scale` table: per workload and worker count, wall MB/s, MB/s per CPU-second and
/// the speed-up over the first worker count (empty without `--scale`).
fn scale_table(report: &Report) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    for w in report.workloads.iter().filter(|w| !w.scale.is_empty()) {
        for (i, p) in w.scale.iter().enumerate() {
            rows.push([
                if i == 0 { w.name.clone() } else { String::new() },
                p.workers.to_string(),
                num(p.figures.wall_mb_per_s.median),
                num(p.figures.mb_per_cpu_s.median),
                format!("{:.2}x", p.speedup),
            ]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let head = ["workload", "workers", "wall MB/s", "MB/s per CPU-s", "speed-up"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .chain([&head])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 5]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| match c {
                0 => format!("{cell:<width$}", width = widths[c]),
                _ => format!("{cell:>width$}", width = widths[c]),
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let mut out = String::from("\nscaling: weir run --workers N (medians)\n");
    let _ = writeln!(out, "{}", line(&head));
    let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 8));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    let first = report
        .workloads
        .iter()
        .find_map(|w| w.scale.first())
        .map_or(1, |p| p.workers);
    let _ = writeln!(
        out,
        "speed-up: wall MB/s over that with {first} worker(s); MB/s per CPU-s falls where workers add CPU without adding speed."
    );
    out
}

/// XML text escape.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of MB/s per CPU-second by workload (median, with a min-max
/// whisker), one bar per engine.
pub fn svg(report: &Report) -> String {
    const COLORS: &[(&str, &str)] = &[("weir", "#2b6cb0"), ("fluent-bit", "#dd6b20"), ("vector", "#6b46c1")];
    let mut engines: Vec<&str> = vec!["weir"];
    for w in &report.workloads {
        for p in &w.peers {
            if p.figures.is_some() && !engines.contains(&p.name.as_str()) {
                engines.push(&p.name);
            }
        }
    }
    let color = |e: &str| COLORS.iter().find(|(n, _)| *n == e).map_or("#718096", |(_, c)| c);
    let bars: Vec<Vec<(&str, Stat)>> = report
        .workloads
        .iter()
        .map(|w| {
            let mut v = vec![("weir", w.weir.mb_per_cpu_s)];
            for e in &engines[1..] {
                if let Some(f) = w.peers.iter().find(|p| p.name == *e).and_then(|p| p.figures.as_ref()) {
                    v.push((e, f.mb_per_cpu_s));
                }
            }
            v
        })
        .collect();
    let max = bars.iter().flatten().map(|(_, s)| s.max).fold(1.0f64, f64::max);
    // A round axis end: 1, 2 or 5 times a power of ten.
    let mag = 10f64.powf(max.log10().floor());
    let top = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|t| *t >= max)
        .unwrap_or(10.0 * mag);
    let (label_w, plot_w, bar_h, gap) = (170.0, 560.0, 16.0, 14.0);
    let left = label_w + 10.0;
    let header = 58.0;
    let mut y = header;
    let mut body = String::new();
    for (w, row) in report.workloads.iter().zip(&bars) {
        let group_h = row.len() as f64 * bar_h;
        let _ = writeln!(
            body,
            r#"<text x="{label_w}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            y + group_h / 2.0,
            xml(&w.name)
        );
        for (engine, stat) in row {
            let width = stat.median / top * plot_w;
            let _ = writeln!(
                body,
                r#"<rect x="{left}" y="{y:.1}" width="{width:.1}" height="{:.1}" fill="{}"><title>{}: {} MB/s per CPU-s (min {}, max {})</title></rect>"#,
                bar_h - 2.0,
                color(engine),
                xml(engine),
                num(stat.median),
                num(stat.min),
                num(stat.max)
            );
            let (x0, x1) = (left + stat.min / top * plot_w, left + stat.max / top * plot_w);
            let mid = y + (bar_h - 2.0) / 2.0;
            let _ = writeln!(
                body,
                r##"<path d="M{x0:.1} {mid:.1}H{x1:.1}M{x0:.1} {:.1}V{:.1}M{x1:.1} {:.1}V{:.1}" stroke="#1a202c" stroke-width="1"/>"##,
                mid - 4.0,
                mid + 4.0,
                mid - 4.0,
                mid + 4.0
            );
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{mid:.1}" dominant-baseline="middle" font-size="11">{}</text>"#,
                left + width.max(x1 - left) + 6.0,
                num(stat.median)
            );
            y += bar_h;
        }
        y += gap;
    }
    let (scaling, below) = scale_chart(report, left, plot_w, y + 20.0);
    let height = below + 40.0;
    let width = left + plot_w + 90.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Input MB/s per CPU-second (median, whiskers min-max; higher is better)</text>"#
    );
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="38" fill="#4a5568">weir {} · {} · {} cores · {} corpora · {} runs · {}</text>"##,
        xml(&report.weir_version),
        xml(&report.machine.cpu_model),
        report.machine.cores,
        human_bytes(report.settings.size_bytes),
        report.settings.runs,
        xml(&report.date)
    );
    for i in 0..=5 {
        let v = top * i as f64 / 5.0;
        let label = if top >= 5.0 { format!("{v:.0}") } else { num(v) };
        let x = left + plot_w * i as f64 / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e2e8f0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#4a5568" font-size="11">{}</text>"##,
            header - 6.0,
            y - gap + 4.0,
            y - gap + 18.0,
            label
        );
    }
    out.push_str(&body);
    out.push_str(&scaling);
    let mut lx = left;
    for e in &engines {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" dominant-baseline="middle">{}</text>"#,
            height - 22.0,
            color(e),
            lx + 16.0,
            height - 16.0,
            xml(e)
        );
        lx += 28.0 + 7.0 * e.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

/// With `--scale`, the chart's second part from `top` down: per workload, a bar per worker
/// count, as long as its speed-up of wall MB/s; the SVG elements and where they end.
fn scale_chart(report: &Report, left: f64, plot_w: f64, top: f64) -> (String, f64) {
    let rows: Vec<&WorkloadResult> = report.workloads.iter().filter(|w| !w.scale.is_empty()).collect();
    if rows.is_empty() {
        return (String::new(), top - 20.0);
    }
    let most = rows
        .iter()
        .flat_map(|w| &w.scale)
        .map(|p| p.speedup)
        .fold(1.0f64, f64::max);
    let (bar_h, gap) = (16.0, 14.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{top:.1}" font-size="14" font-weight="bold">Speed-up of wall MB/s by worker count (weir run --workers N)</text>"#
    );
    let mut y = top + 16.0;
    for w in rows {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            left - 10.0,
            y + w.scale.len() as f64 * bar_h / 2.0,
            xml(&w.name)
        );
        for p in &w.scale {
            let width = p.speedup / most * plot_w;
            let mid = y + (bar_h - 2.0) / 2.0;
            let _ = writeln!(
                out,
                r##"<rect x="{left}" y="{y:.1}" width="{width:.1}" height="{:.1}" fill="#38a169"/><text x="{:.1}" y="{mid:.1}" dominant-baseline="middle" font-size="11">{} worker(s): {:.2}x ({} MB/s, {} MB/s per CPU-s)</text>"##,
                bar_h - 2.0,
                left + width + 6.0,
                p.workers,
                p.speedup,
                num(p.figures.wall_mb_per_s.median),
                num(p.figures.mb_per_cpu_s.median)
            );
            y += bar_h;
        }
        y += gap;
    }
    (out, y)
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#[derive(Debug)]
struct Progress {
    total: usize,
    done: usize,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            on: io::stderr().is_terminal(),
        }
    }

    /// Starts the next step.
    fn step(&mut self, what: &str) {
        self.done += 1;
        self.draw(what);
    }

    /// Says what is happening without counting a step.
    fn note(&mut self, what: &str) {
        self.draw(what);
    }

    fn draw(&self, what: &str) {
        if !self.on {
            return;
        }
        let width = 24;
        let filled = (self.done.saturating_sub(1) * width) / self.total.max(1);
        let mut err = io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {}/{} {what}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total
        );
        let _ = err.flush();
    }

    /// Erases the bar (before other output).
    fn clear(&self) {
        if self.on {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        assert_eq!(
            Stat::of([3.0, 1.0, 2.0]),
            Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Stat::of([4.0, 1.0]).median, 2.5);
        let f = Figures::of(
            vec![Run {
                wall_s: 0.5,
                user_s: 0.75,
                sys_s: 0.25,
                max_rss_bytes: 10 << 20,
                events: 1000,
            }],
            200_000_000,
        );
        assert_eq!(f.mb_per_cpu_s.median, 200.0);
        assert_eq!(f.wall_mb_per_s.median, 400.0);
        assert_eq!(f.events_per_cpu_s.median, 1000.0);
        assert_eq!(f.events_per_s.median, 2000.0);
    }

    fn report(figures: &[(&str, f64)]) -> Report {
        let run = Run {
            wall_s: 1.0,
            user_s: 1.0,
            sys_s: 0.0,
            max_rss_bytes: 1 << 20,
            events: 10,
        };
        Report {
            schema: SCHEMA,
            weir_version: "0.0.0".into(),
            date: "2026-01-01T00:00:00Z".into(),
            machine: machine(),
            settings: Settings {
                size_bytes: 1 << 20,
                seed: 1,
                runs: 1,
                harness_max_rss_bytes: 0,
            },
            workloads: figures
                .iter()
                .map(|(name, mb)| {
                    let mut weir = Figures::of(vec![run], 1_000_000);
                    weir.mb_per_cpu_s = Stat {
                        median: *mb,
                        min: *mb * 0.9,
                        max: *mb * 1.1,
                    };
                    WorkloadResult {
                        name: name.to_string(),
                        about: String::new(),
                        corpus: "nginx".into(),
                        input_bytes: 1_000_000,
                        expected_events: 10,
                        peers: vec![PeerResult {
                            name: "vector".into(),
                            config: Some("x".into()),
                            figures: Some(Figures::of(vec![run], 100_000)),
                            ratio: Some(10.0),
                            error: None,
                        }],
                        weir,
                        scale: Vec::new(),
                    }
                })
                .collect(),
            peers_missing: vec![],
            baseline: None,
        }
    }

    #[test]
    fn baseline_comparison() {
        let base = Baseline {
            medians: vec![("a".into(), 100.0), ("b".into(), 100.0)],
            about: String::new(),
        };
        let cmp = compare(&report(&[("a", 95.0), ("b", 80.0), ("c", 5.0)]), &base, 10.0);
        assert_eq!(
            cmp.iter().map(|c| c.regressed).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(cmp[1].change_pct, Some(-20.0));
        assert_eq!(cmp[2].baseline, None);
        let text = comparison_table(Path::new("b.json"), &base, &cmp, 10.0);
        assert!(
            text.contains("REGRESSED") && text.contains("Regression: b slower"),
            "{text}"
        );
    }

    #[test]
    fn table_and_chart() {
        let r = report(&[("passthrough", 1234.4), ("nginx-regex", 321.0)]);
        let t = table(&r, &["vector"]);
        assert!(
            t.contains("passthrough") && t.contains("1234 (1111-1358)") && t.contains("10.0x (0.10 MB/s)"),
            "{t}"
        );
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<rect x=").count(), 4 + 2, "four bars and two legend keys");
        assert!(s.contains("nginx-regex") && s.contains(">vector<"));
        assert!(
            !s.contains("Speed-up") && scale_table(&r).is_empty(),
            "no scaling without --scale"
        );

        let mut r = r;
        let run = r.workloads[0].weir.runs[0];
        r.workloads[0].scale = [(1, 1.0), (2, 1.9)]
            .iter()
            .map(|&(workers, speedup)| ScalePoint {
                workers,
                figures: Figures::of(vec![run], 1_000_000),
                speedup,
            })
            .collect();
        let s = svg(&r);
        assert!(
            s.contains("Speed-up of wall MB/s") && s.contains("2 worker(s): 1.90x"),
            "{s}"
        );
        assert_eq!(s.matches("<rect x=").count(), 4 + 2 + 2, "and a bar per worker count");
        let t = scale_table(&r);
        assert!(t.contains("passthrough") && t.contains("1.90x"), "{t}");
    }

    /// Every config in `perf/peers/<peer>/` parses (after substitution), belongs to a
    /// shipped workload, reads the corpus and writes the output where the harness looks,
    /// and refers only to components it defines.
    #[test]
    fn shipped_peer_configs_parse_and_fit_the_harness() {
        let opts = Options::new(PathBuf::from("weir"), "0");
        let workloads = workload::load_dir(&opts.workloads_dir).unwrap();
        let (corpus, output, out_dir) = (Path::new("/c/it's.log"), Path::new("/o/out.json"), Path::new("/o"));
        for peer in PEERS {
            let dir = opts.peers_dir.join(peer.name);
            let mut covered = Vec::new();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                assert!(
                    peer.exts.contains(&ext),
                    "{}: not a {} config",
                    path.display(),
                    peer.name
                );
                let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
                assert!(
                    workloads.iter().any(|w| w.name == stem),
                    "{}: no such workload",
                    path.display()
                );
                let text = workload::substitute(
                    &std::fs::read_to_string(&path).unwrap(),
                    &[
                        ("corpus", corpus),
                        ("output", output),
                        ("output_dir", out_dir),
                        ("output_file", Path::new("out.json")),
                        ("data_dir", Path::new("/d")),
                        ("config_dir", &dir),
                    ],
                );
                assert!(
                    !text.contains("{corpus}") && !text.contains("{output"),
                    "{}",
                    path.display()
                );
                let v: serde_json::Value =
                    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let what = path.display().to_string();
                match peer.name {
                    "fluent-bit" => check_fluent_bit(&what, &v, corpus),
                    "vector" => check_vector(&what, &v, output),
                    other => panic!("no check for {other}"),
                }
                covered.push(stem);
            }
            // Peers get no broker, are sent nothing by the harness, wrap no command and run
            // no Wasm plugin: the Kafka, listening, `weir run --exec` and plugin workloads
            // are Weir's alone.
            for w in workloads
                .iter()
                .filter(|w| w.kafka.is_none() && w.send.is_none() && w.exec.is_empty() && w.plugins.is_empty())
            {
                assert!(covered.contains(&w.name), "{} has no config for {}", peer.name, w.name);
            }
        }
    }

    fn check_fluent_bit(what: &str, v: &serde_json::Value, corpus: &Path) {
        let inputs = v["pipeline"]["inputs"].as_array().expect("pipeline.inputs");
        let tail = &inputs[0];
        assert_eq!(inputs.len(), 1, "{what}");
        assert_eq!(tail["name"], "tail", "{what}");
        assert_eq!(tail["path"], corpus.to_str().unwrap(), "{what}");
        assert_eq!(tail["exit_on_eof"], true, "{what}: must stop at the end of the corpus");
        assert_eq!(tail["read_from_head"], true, "{what}");
        let out = &v["pipeline"]["outputs"][0];
        assert_eq!(
            (&out["name"], &out["format"]),
            (&"file".into(), &"plain".into()),
            "{what}"
        );
        assert_eq!(
            (&out["path"], &out["file"]),
            (&"/o".into(), &"out.json".into()),
            "{what}"
        );
        let names = |section: &str| -> Vec<String> {
            v[section]
                .as_array()
                .map(|a| a.iter().map(|p| p["name"].as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        if let Some(ml) = tail["multiline.parser"].as_str() {
            let builtin = ["cri", "docker", "go", "python", "java", "ruby"];
            assert!(
                builtin.contains(&ml) || names("multiline_parsers").contains(&ml.to_string()),
                "{what}: {ml}"
            );
        }
        for f in v["pipeline"]["filters"].as_array().into_iter().flatten() {
            if f["name"] == "parser" {
                let p = f["parser"].as_str().unwrap();
                assert!(
                    names("parsers").contains(&p.to_string()),
                    "{what}: parser {p} is not defined"
                );
                assert_eq!(f["key_name"], "log", "{what}");
            }
        }
    }

    fn check_vector(what: &str, v: &serde_json::Value, output: &Path) {
        assert_eq!(v["data_dir"], "/d", "{what}");
        let sources = v["sources"].as_object().expect("sources");
        assert!(
            sources.values().all(|s| s["type"] == "stdin"),
            "{what}: the corpus comes on stdin"
        );
        let transforms = v["transforms"].as_object().cloned().unwrap_or_default();
        let sinks = v["sinks"].as_object().expect("sinks");
        assert_eq!(sinks.len(), 1, "{what}");
        let sink = sinks.values().next().unwrap();
        assert_eq!(
            (&sink["type"], &sink["path"]),
            (&"file".into(), &output.to_str().unwrap().into()),
            "{what}"
        );
        assert_eq!(sink["encoding"]["codec"], "json", "{what}");
        for c in transforms.values().chain(sinks.values()) {
            for input in c["inputs"].as_array().expect("inputs") {
                let name = input.as_str().unwrap();
                assert!(
                    sources.contains_key(name) || transforms.contains_key(name),
                    "{what}: no component {name}"
                );
            }
        }
    }
}
