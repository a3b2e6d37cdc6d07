//! The fuzz targets of `quantproof_harness::fuzz`, run for a fixed number of inputs.
//!
//! `QUANTPROOF_FUZZ_ITERS=N` sets the number of inputs per target (default 20,000: a few seconds;
//! CI under qemu uses a fifth). `QUANTPROOF_FUZZ_SEED` changes the stream. Each target prints how
//! many inputs it ran.

use quantproof_harness::fuzz::{self, Corpus};
use quantproof_harness::vectors::Runner;
use std::path::Path;

fn iterations() -> u64 {
    let default = if cfg!(target_arch = "x86_64") { 20_000 } else { 4_000 };
    std::env::var("QUANTPROOF_FUZZ_ITERS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("QUANTPROOF_FUZZ_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0x5EED)
}

/// Every line of every golden-vector file in the repository: the seeds the mutator starts from.
fn vector_lines() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let mut lines = Vec::new();
    for dir in ["vectors", "vectors-extra"] {
        for f in quantproof_harness::vectors::runner::find_jsonl(&root.join(dir)).unwrap_or_default() {
            if let Ok(text) = std::fs::read_to_string(&f) {
                // Long lines (large tensors) make slow inputs; the short ones cover every op.
                lines.extend(text.lines().filter(|l| l.len() < 4096).map(|l| l.as_bytes().to_vec()));
            }
        }
    }
    lines
}

#[test]
fn fuzz_vector_parser_and_replay() {
    let seeds = vector_lines();
    assert!(seeds.len() > 100, "the golden vectors were not found");
    let runner = Runner::new(None).expect("engines for every available ISA");
    let mut corpus = Corpus::new(seed(), seeds);
    let n = iterations() / 4;
    for _ in 0..n {
        let input = corpus.next_input();
        fuzz::vector_line(&runner, &input);
    }
    println!("fuzz: {n} mutated vector lines replayed on {} paths, no panic", runner.path_names().len());
}

#[test]
fn fuzz_public_ops_agree_on_every_path() {
    let engines = fuzz::engines();
    let mut corpus = Corpus::new(seed() ^ 0xA5A5, Vec::new());
    let n = iterations();
    for _ in 0..n {
        let input = corpus.next_input();
        fuzz::ops(&engines, &input);
    }
    println!("fuzz: {n} drawn operations on the reference and {} engines, all equal", engines.len());
}

/// Inputs the coverage-guided fuzzer found (`harness/fuzz/regressions/<target>/`), replayed on
/// every run: each was a disagreement or a panic once.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/ops");
    let engines = fuzz::engines();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the regression directory exists") {
        let bytes = std::fs::read(entry.expect("a directory entry").path()).expect("readable");
        fuzz::ops(&engines, &bytes);
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
    println!("fuzz: {n} regression inputs replayed");
}
