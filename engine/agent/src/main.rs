//! `weir`: the Weir agent and its command line (the commands are in `weir::cli`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = weir::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(|| weir::secrets::Redacting(std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    weir::cli::execute(cli.command)
}
