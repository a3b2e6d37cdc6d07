//! `quantproof report`: measure, compute and write the accuracy-speed report.
//!
//! ```text
//! quantproof report                    reports/report.md (+ CSV, SVG), sizes 64K and 16M
//! quantproof report --quick            smaller sizes and shorter timings (smoke runs)
//! quantproof report --out /tmp/r --no-ort
//! ```

use crate::report::{self, Options};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Output directory
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Smaller sizes and shorter timings, for CI-style smoke runs
    #[arg(long)]
    pub quick: bool,
    /// Do not measure ONNX Runtime (no Python venv)
    #[arg(long)]
    pub no_ort: bool,
    /// Leave out the real-model section even when MiniLM is in the cache
    #[arg(long)]
    pub no_minilm: bool,
    /// MiniLM cache directory (default: as `quantproof minilm fetch`)
    #[arg(long, value_name = "DIR")]
    pub minilm_cache: Option<PathBuf>,
    /// Thread counts to measure, comma-separated
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub threads: Vec<usize>,
}

pub fn run(args: Args) -> i32 {
    if let Err(e) = crate::cli::domain::env_isa() {
        eprintln!("error: {e}");
        return 2;
    }
    for &t in &args.threads {
        if let Err(e) = crate::cli::domain::in_range("--threads", t, 1, crate::cli::domain::MAX_THREADS) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    if args.threads.is_empty() {
        eprintln!("error: --threads needs at least one thread count");
        return 2;
    }
    let mut threads = args.threads.clone();
    threads.sort();
    threads.dedup();
    let minilm = if args.no_minilm {
        None
    } else {
        crate::minilm::fetch::cache_dir(args.minilm_cache.as_deref())
            .ok()
            .filter(|d| crate::minilm::fetch::is_cached(d))
    };
    let options = Options { out: args.out, quick: args.quick, ort: !args.no_ort, threads, minilm };
    let start = std::time::Instant::now();
    match report::run(&options, &mut |m| eprintln!("[{:>6.1} s] {m}", start.elapsed().as_secs_f64())) {
        Ok(path) => {
            println!("{}", path.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
