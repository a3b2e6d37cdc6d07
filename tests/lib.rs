//! Shared helpers for the workspace-level tests (the test targets are listed in `Cargo.toml`).

use std::path::PathBuf;

/// `tests/vectors`: the golden vectors copied from the frameworks (see `VECTORS.md` there).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Every GEMM micro-kernel this CPU can run, printing a skip line for each one it cannot.
pub fn available_gemm_kernels() -> Vec<quantproof_optimized::gemm::GemmKernel> {
    quantproof_optimized::gemm::GemmKernel::ALL
        .into_iter()
        .filter(|k| {
            let ok = k.is_available();
            if !ok {
                eprintln!("skipping {}: not available on this CPU", k.name());
            }
            ok
        })
        .collect()
}
