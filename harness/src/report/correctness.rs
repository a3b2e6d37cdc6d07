//! Correctness section of the report.
//!
//! Two sources, kept apart:
//!
//! * **golden vectors** recorded from PyTorch and ONNX Runtime (`tests/vectors/`) and the extra
//!   ONNX Runtime cases (`tests/vectors-extra/`), replayed in this run by the vector runner
//!   ([`crate::vectors`]) through the reference and every available ISA ([`golden_vectors`]);
//! * **in-run checks**: every benchmark compared its output with the reference bit for bit
//!   before it was timed, and ONNX Runtime's outputs were compared with the reference under
//!   ONNX Runtime's semantics. [`in_run_checks`] counts them.

use super::speed::SpeedRow;
use crate::vectors::{Runner, Summary};
use std::path::PathBuf;

/// The golden-vector summary of this run, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Golden {
    Summary(Box<Summary>),
    Unavailable(String),
}

/// The repository's vector directories (`tests/vectors`, `tests/vectors-extra`) that exist.
pub fn vector_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("tests");
    ["vectors", "vectors-extra"].iter().map(|d| root.join(d)).filter(|d| d.is_dir()).collect()
}

/// Replays the golden vectors through the reference and every available ISA.
pub fn golden_vectors() -> Golden {
    let dirs = vector_dirs();
    if dirs.is_empty() {
        return Golden::Unavailable("tests/vectors was not found next to this build's source".into());
    }
    match Runner::new(None) {
        Ok(r) => Golden::Summary(Box::new(r.run_paths(&dirs))),
        Err(e) => Golden::Unavailable(format!("no engine for an available ISA: {e}")),
    }
}

/// Counts of the checks the speed grid made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InRun {
    /// Kernel measurements whose output equalled the reference's bit for bit.
    pub kernels_exact: usize,
    /// Reference measurements (the oracle itself, nothing to compare).
    pub reference_runs: usize,
    /// ONNX Runtime measurements whose output equalled the reference's.
    pub ort_exact: usize,
    /// ONNX Runtime measurements whose output differed.
    pub ort_differs: usize,
}

pub fn in_run_checks(rows: &[SpeedRow]) -> InRun {
    let mut c = InRun::default();
    for r in rows {
        let v = &r.record.verified;
        match r.record.isa.as_str() {
            "reference" => c.reference_runs += 1,
            "onnxruntime" if v.starts_with("bit-exact") => c.ort_exact += 1,
            "onnxruntime" => c.ort_differs += 1,
            _ if v.starts_with("bit-exact") => c.kernels_exact += 1,
            _ => {}
        }
    }
    c
}
