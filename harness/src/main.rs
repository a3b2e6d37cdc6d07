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
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Info => quantproof_harness::cli::info::run(),
    };
    std::process::exit(code);
}
