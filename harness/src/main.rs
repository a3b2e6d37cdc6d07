//! `quantproof`: the command-line tool.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "quantproof", version, about = "Executable specification of neural-network quantization: verify, benchmark, report.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CPU features seen, the instruction sets available and the one dispatch picks.
    Info,
    /// Measure an operation's speed, checked against the reference (`bench limits`: this machine's limits).
    Bench(quantproof_harness::cli::bench::Args),
    /// Write the accuracy-speed report (reports/report.md, CSV and SVG).
    Report(quantproof_harness::cli::report::Args),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Info => quantproof_harness::cli::info::run(),
        Command::Bench(a) => quantproof_harness::cli::bench::run(a),
        Command::Report(a) => quantproof_harness::cli::report::run(a),
    };
    std::process::exit(code);
}
