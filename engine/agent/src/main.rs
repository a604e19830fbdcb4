//! `weir`: the Weir agent and its command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use weir::{config, runtime};

/// Weir: a fast log processing engine and agent.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
struct Cli {
    /// Log level for Weir's own messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info", env = "WEIR_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline until every input ends (stdin at end of file, files with `mode: once`).
    Run {
        /// The pipeline file (YAML).
        #[arg(short, long)]
        config: PathBuf,
        /// Worker threads running the processors (default: the config's `workers`, else one
        /// per core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Validate a pipeline file without running it; errors name file and line:column.
    Check {
        /// The pipeline file (YAML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check what stops collection silently: the config, input paths and their files,
    /// data_dir, checkpoints, outputs, the admin address, the clock. Exits non-zero on a failure.
    Doctor {
        /// The pipeline file (YAML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Write a synthetic log corpus to stdout; the same seed gives the same bytes.
    Gen {
        /// What to generate.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(weir_perf::corpus::KINDS.iter().map(|(n, _)| *n)))]
        kind: String,
        /// How much (whole lines, at most this size): 1048576, 64KiB, 100MiB...
        #[arg(long, default_value = "10MiB")]
        size: weir_core::units::ByteSize,
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run named workloads as child `weir run` processes and report input MB/s per
    /// CPU-second, events/s, wall MB/s and peak RSS (see perf/README.md).
    Bench(BenchArgs),
    /// The plugin author's loop: scaffold, build and try a Wasm plugin.
    Plugin {
        #[command(subcommand)]
        command: weir::plugin_cli::PluginCommand,
    },
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// A workload to run (repeat for several; default: all of them).
    #[arg(short, long = "workload", value_name = "WORKLOAD")]
    workloads: Vec<String>,
    /// Corpus size.
    #[arg(long, default_value = "256MiB")]
    size: weir_core::units::ByteSize,
    /// Runs per workload; the table shows their median and range.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the machine-readable report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Compare with an earlier `--json` report; exit non-zero when a workload is slower.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// How many percent slower than the baseline counts as a regression.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    threshold: f64,
    /// Also run Fluent Bit and Vector (those on PATH) on the same corpora.
    #[arg(long)]
    peers: bool,
    /// Draw a bar chart of MB/s per CPU-second here.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// The workload files (default: perf/workloads of the source tree).
    #[arg(long, value_name = "DIR")]
    workloads_dir: Option<PathBuf>,
    /// The peers' configs (default: perf/peers of the source tree).
    #[arg(long, value_name = "DIR")]
    peers_dir: Option<PathBuf>,
    /// Where corpora are cached (default: $XDG_CACHE_HOME/weir/corpora).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Where the runs' pipelines and outputs go (default: next to the cache).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

fn bench(args: BenchArgs) -> ExitCode {
    let weir = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find the weir binary to run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut opts = weir_perf::bench::Options::new(weir, env!("CARGO_PKG_VERSION"));
    opts.workloads = args.workloads;
    opts.size = args.size.0;
    opts.runs = args.runs;
    opts.seed = args.seed;
    opts.json = args.json;
    opts.baseline = args.baseline;
    opts.threshold = args.threshold;
    opts.peers = args.peers;
    opts.svg = args.svg;
    opts.work_dir = args.work_dir;
    if let Some(d) = args.workloads_dir {
        opts.workloads_dir = d;
    }
    if let Some(d) = args.peers_dir {
        opts.peers_dir = d;
    }
    if let Some(d) = args.cache_dir {
        opts.cache_dir = d;
    }
    match weir_perf::bench::run(&opts) {
        Ok(weir_perf::bench::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(weir_perf::bench::Outcome::Regressed) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Check { config } => match config::load(&config).and_then(|l| runtime::validate(&l).map(|()| l)) {
            Ok(loaded) => {
                let c = &loaded.config;
                println!(
                    "{}: ok ({} inputs, {} processors, {} outputs)",
                    config.display(),
                    c.inputs.len(),
                    c.processors.len(),
                    c.outputs.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Gen { kind, size, seed } => {
            let make = weir_perf::corpus::by_name(&kind).expect("clap checked the kind");
            let Ok(size) = usize::try_from(size.0) else {
                eprintln!("error: --size {size} is too large for this machine");
                return ExitCode::FAILURE;
            };
            let corpus = make(size, seed);
            match std::io::Write::write_all(&mut std::io::stdout().lock(), &corpus.data) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: writing the corpus: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(args) => bench(args),
        Command::Doctor { config } => {
            let report = weir::doctor::check(&config, &weir::doctor::Options::default());
            for finding in &report.findings {
                println!("{finding}");
            }
            println!("{}", report.summary());
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Plugin { command } => weir::plugin_cli::run(command),
        Command::Run { config, workers } => {
            let loaded = match config::load(&config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime::run(&loaded, workers) {
                Ok(summary) => {
                    for i in &summary.inputs {
                        tracing::info!(
                            name = %i.name,
                            events = i.events,
                            bytes = i.bytes,
                            lines_cut = i.lines_cut,
                            empty_skipped = i.empty_skipped,
                            records_cut = i.records_cut,
                            unmatched_discarded = i.unmatched_discarded,
                            format_errors = i.format_errors,
                            bad_times = i.bad_times,
                            unfinished_messages = i.unfinished_messages,
                            read_errors = i.read_errors,
                            "input done"
                        );
                    }
                    for (name, s) in &summary.processors {
                        if s.failures > 0 {
                            tracing::warn!(%name, events_in = s.events_in, events_out = s.events_out, failures = s.failures, "processor done, with failures");
                        } else {
                            tracing::info!(%name, events_in = s.events_in, events_out = s.events_out, "processor done");
                        }
                    }
                    for (name, events, bytes) in &summary.outputs {
                        tracing::info!(%name, events, bytes, "output done");
                    }
                    if let Some((entries, pruned)) = summary.checkpoints {
                        tracing::info!(entries, pruned, "checkpoints saved");
                    }
                    if summary.errors.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("error: {} source(s) could not be read", summary.errors.len());
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
