//! The `weir` command line: its arguments and one function per command. `run` and `check`
//! are here; `doctor`, `plugin`, `top`, `tap` and `bench`/`gen` have their own files.

pub mod bench;
pub mod doctor;
pub mod import;
pub mod plugin;
pub mod tap;
pub mod top;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{config, runtime};

/// Weir: a fast log processing engine and agent.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// Log level for Weir's own messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info", env = "WEIR_LOG")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline until every input ends (stdin at end of file, files with `mode: once`).
    Run {
        /// The pipeline file (YAML).
        #[arg(short, long)]
        config: PathBuf,
        /// Worker threads running the processors (default: the config's `workers`, else one
        /// per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Reload the pipeline when its file changes (as on SIGHUP): components that did
        /// not change go on (files stay open at their positions); a file that does not
        /// validate is refused and the running pipeline goes on.
        #[arg(long, conflicts_with = "exec")]
        watch_config: bool,
        /// Same-container mode: start COMMAND (after `--`, no shell) as Weir's child, read
        /// its stdout and stderr as the pipeline's exec input (copied unchanged to Weir's
        /// own), pass signals on to it, and exit with its code once everything it wrote is
        /// delivered.
        #[arg(long, requires = "command")]
        exec: bool,
        /// The command for --exec, and its arguments.
        #[arg(last = true, value_name = "COMMAND", requires = "exec")]
        command: Vec<std::ffi::OsString>,
    },
    /// Validate a pipeline file without running it; errors name file and line:column.
    Check {
        /// The pipeline file (YAML).
        #[arg(short, long)]
        config: PathBuf,
        /// Check it as `weir run --exec` runs it (its exec input implied).
        #[arg(long)]
        exec: bool,
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
    /// A running agent's components, live: events and bytes per second, failures, queue
    /// depth, lag (from its admin endpoint; `q` or Ctrl-C quits).
    Top(top::TopArgs),
    /// A sample of the events leaving one component of a running agent, as JSON lines (from
    /// its admin endpoint; rate-limited, it never slows the pipeline).
    Tap(tap::TapArgs),
    /// The plugin author's loop: scaffold, build and try a Wasm plugin.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Translate another agent's pipeline config into a Weir pipeline, listing what could
    /// not be translated.
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A workload to run (repeat for several; default: all of them).
    #[arg(short, long = "workload", value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
    /// Corpus size.
    #[arg(long, default_value = "256MiB")]
    pub size: weir_core::units::ByteSize,
    /// Runs per workload; the table shows their median and range.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the machine-readable report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Compare with an earlier `--json` report; exit non-zero when a workload is slower.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// How many percent slower than the baseline counts as a regression.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub threshold: f64,
    /// Also run Fluent Bit and Vector (those on PATH) on the same corpora.
    #[arg(long)]
    pub peers: bool,
    /// Draw a bar chart of MB/s per CPU-second here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// The workload files (default: perf/workloads of the source tree).
    #[arg(long, value_name = "DIR")]
    pub workloads_dir: Option<PathBuf>,
    /// The peers' configs (default: perf/peers of the source tree).
    #[arg(long, value_name = "DIR")]
    pub peers_dir: Option<PathBuf>,
    /// The built example Wasm plugins the json-filter-wasm* workloads load (default:
    /// wasm-plugins/target/wasm32-wasip2/release of the source tree).
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Where corpora are cached (default: $XDG_CACHE_HOME/weir/corpora).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where the runs' pipelines and outputs go (default: next to the cache).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Also run each workload with `weir run --workers N` for each of these counts, and
    /// report the speed-up over the first (e.g. 1,2,4,8,16).
    #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
    pub scale: Vec<usize>,
    /// The Kafka-protocol broker of the kafka-* workloads: one running at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "tansu")]
    pub kafka: Option<String>,
    /// Or Tansu, started for the bench from this binary (scripts/install-tansu.sh installs
    /// it at target/test-tools/tansu).
    #[arg(long, value_name = "PATH")]
    pub tansu: Option<PathBuf>,
}

/// Runs the command.
pub fn execute(command: Command) -> ExitCode {
    match command {
        Command::Run {
            config,
            workers,
            exec: true,
            command,
            ..
        } => run_exec(&config, workers, &command),
        Command::Run {
            config,
            workers,
            watch_config,
            ..
        } => run(&config, workers, watch_config),
        Command::Check { config, exec } => check(&config, exec),
        Command::Doctor { config } => doctor::main(&config),
        Command::Gen { kind, size, seed } => bench::gen_corpus(&kind, size, seed),
        Command::Bench(args) => bench::main(args),
        Command::Top(args) => top::main(args),
        Command::Tap(args) => tap::main(args),
        Command::Plugin { command } => plugin::run(command),
        Command::Import { command } => import::run(command),
    }
}

/// `weir check`: loads and validates the pipeline file (with `exec`, as `weir run --exec`
/// runs it).
fn check(file: &std::path::Path, exec: bool) -> ExitCode {
    let loaded = config::load(file).map(|mut l| {
        if exec {
            l.exec_input();
        }
        l
    });
    match loaded.and_then(|l| config::validate(&l).map(|()| l)) {
        Ok(loaded) => {
            let c = &loaded.config;
            println!(
                "{}: ok ({} inputs, {} processors, {} outputs)",
                file.display(),
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
    }
}

/// `weir run --exec -- COMMAND`: runs the pipeline around COMMAND, logs what each
/// component did, exits with COMMAND's code.
fn run_exec(file: &std::path::Path, workers: Option<usize>, command: &[std::ffi::OsString]) -> ExitCode {
    let loaded = match config::load(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e} (the command was not started)");
            return ExitCode::FAILURE;
        }
    };
    let end = runtime::run_exec(loaded, workers, command);
    if let Some(summary) = &end.summary {
        log_summary(summary);
    }
    ExitCode::from(u8::try_from(end.code).unwrap_or(1))
}

/// `weir run`: runs the pipeline, then logs what each component did.
fn run(file: &std::path::Path, workers: Option<usize>, watch_config: bool) -> ExitCode {
    let loaded = match config::load(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime::run(loaded, workers, watch_config) {
        Ok(summary) => {
            log_summary(&summary);
            if summary.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "error: the run ended with {} problem(s), logged above (unreadable sources, undelivered batches)",
                    summary.errors.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The summary of a run, one log line per component.
fn log_summary(summary: &runtime::Summary) {
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
}
