//! `quantproof`: the command-line tool.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "quantproof",
    version,
    about = "Executable specification of neural-network quantization: verify, benchmark, report."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CPU features seen, the instruction sets available and the one dispatch picks.
    Info,
    /// List every op: its family, the profiles of its golden vectors, its kernels and its benches.
    Ops,
    /// The deployment profiles (TensorRT, SNPE, Cambricon, TFLite, ONNX Runtime, PyTorch, ncnn) with their sources.
    Profiles,
    /// Replay golden vectors (quant-vectors/1 JSONL) through the reference and every optimized ISA.
    VerifyVectors {
        /// Directories searched recursively for *.jsonl (files are read as they are).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<std::path::PathBuf>,
        /// Run only this optimized ISA (plus the reference).
        #[arg(long, value_name = "NAME")]
        isa: Option<String>,
        /// List every case.
        #[arg(long)]
        verbose: bool,
        /// Print a machine-readable JSON summary instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Measure an operation's speed, checked against the reference (`bench limits`: this machine's limits).
    Bench(quantproof_harness::cli::bench::Args),
    /// Which integer-GEMM formulations (vpmaddubsw, vpmaddwd, VNNI, NEON dot / smlal, int32 with
    /// zero-point sums) stay exact for given operand types, ranges, zero points and K.
    CheckOverflow(quantproof_harness::cli::overflow::Args),
    /// Write the accuracy-speed report (reports/report.md, CSV and SVG).
    Report(quantproof_harness::cli::report::Args),
    /// The real model, all-MiniLM-L6-v2: fetch it, check its int8 weights against the reference.
    Minilm(quantproof_harness::cli::minilm::Args),
}

fn main() {
    // Like other Unix command-line tools, stop quietly when the reader of stdout goes away
    // (`quantproof ... | head`): Rust's runtime ignores SIGPIPE, which turns such a write into an
    // error that `println!` panics on.
    #[cfg(unix)]
    // SAFETY: called once at start-up before any other thread exists; `signal` with `SIG_DFL`
    // only restores the default disposition of SIGPIPE and touches no Rust-managed state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Info => quantproof_harness::cli::info::run(),
        Command::Ops => quantproof_harness::cli::ops::run(),
        Command::Profiles => quantproof_harness::cli::profiles::run(),
        Command::VerifyVectors { dirs, isa, verbose, json } => {
            quantproof_harness::cli::verify::run(&quantproof_harness::cli::verify::Args { dirs, isa, verbose, json })
        }
        Command::Bench(a) => quantproof_harness::cli::bench::run(a),
        Command::Report(a) => quantproof_harness::cli::report::run(a),
        Command::CheckOverflow(a) => quantproof_harness::cli::overflow::run(a),
        Command::Minilm(a) => quantproof_harness::cli::minilm::run(a),
    };
    std::process::exit(code);
}
