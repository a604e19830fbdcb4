//! `weir bench` and `weir gen`: the wiring to `weir-perf`'s harness and corpus generators.

use std::process::ExitCode;

use super::BenchArgs;

/// `weir gen`: writes a synthetic corpus of `kind` to stdout.
pub fn gen_corpus(kind: &str, size: weir_core::units::ByteSize, seed: u64) -> ExitCode {
    let make = weir_perf::corpus::by_name(kind).expect("clap checked the kind");
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

/// `weir bench`: runs the workloads as child `weir run` processes of this binary.
pub fn main(args: BenchArgs) -> ExitCode {
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
    opts.kafka = args.kafka;
    opts.tansu = args.tansu;
    opts.scale = args.scale;
    if let Some(d) = args.workloads_dir {
        opts.workloads_dir = d;
    }
    if let Some(d) = args.plugins_dir {
        opts.plugins_dir = d;
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
