//! `quantproof verify-vectors DIR... [--isa NAME] [--verbose] [--json]`: replays golden vectors
//! through the reference and the optimized kernels (see [`crate::vectors`]).

use crate::vectors::{table, Runner};
use quantproof_optimized::isa::Isa;
use std::io::Write;
use std::path::PathBuf;

/// What `verify-vectors` was asked.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// Directories searched recursively for `*.jsonl` (or files).
    pub dirs: Vec<PathBuf>,
    /// Only this optimized ISA (plus the reference); default: every available one.
    pub isa: Option<String>,
    /// List every case.
    pub verbose: bool,
    /// Print the summary as JSON instead of the table.
    pub json: bool,
}

/// Exit status when no case failed but none passed either (every case skipped, or no case
/// found): nothing was verified, which a script must not mistake for success.
pub const NOTHING_VERIFIED: i32 = 3;

/// Runs the command; returns the exit status: 0 when every case that ran passed and at least one
/// did, 1 when a case failed, 2 for a usage error (an unknown or unavailable ISA, in `--isa` or
/// `QUANTPROOF_ISA`), [`NOTHING_VERIFIED`] when no case passed.
pub fn run(args: &Args) -> i32 {
    if let Err(e) = crate::cli::domain::env_isa() {
        eprintln!("quantproof verify-vectors: {e}");
        return 2;
    }
    let isa = match args.isa.as_deref().map(|s| (s, Isa::parse(s))) {
        None => None,
        Some((_, Some(i))) => Some(i),
        Some((s, None)) => {
            eprintln!("quantproof verify-vectors: unknown ISA {s:?} (scalar, avx2, avx512, neon)");
            return 2;
        }
    };
    let runner = match Runner::new(isa) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quantproof verify-vectors: {e}");
            return 2;
        }
    };
    let summary = runner.run_paths(&args.dirs);
    // A closed pipe (`| head`) is not an error worth a panic: write errors are ignored.
    let mut out = std::io::stdout().lock();
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(j) => {
                let _ = writeln!(out, "{j}");
            }
            Err(e) => {
                eprintln!("quantproof verify-vectors: cannot write JSON: {e}");
                return 2;
            }
        }
        eprintln!("{}", summary.summary_line());
    } else {
        let _ = out.write_all(table::render(&summary, args.verbose).as_bytes());
    }
    let _ = out.flush();
    if summary.failed > 0 {
        1
    } else if summary.passed == 0 {
        eprintln!(
            "quantproof verify-vectors: nothing was verified ({} case(s) found, all skipped): \
             no supported op and profile in {}",
            summary.skipped,
            args.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        NOTHING_VERIFIED
    } else {
        0
    }
}
