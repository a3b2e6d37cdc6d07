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
    /// ONNX Runtime operator measurements whose output equalled the reference's bit for bit.
    pub ort_exact: usize,
    /// ONNX Runtime calibrator measurements whose thresholds equalled ours.
    pub ort_same_result: usize,
    /// ONNX Runtime measurements whose output was not compared (say so, never count them as
    /// differences).
    pub ort_not_compared: usize,
    /// ONNX Runtime measurements whose output differed from the reference's.
    pub ort_differs: usize,
}

/// How a record's `verified` field classifies an ONNX Runtime measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrtVerdict {
    Exact,
    SameResult,
    NotCompared,
    Differs,
}

/// The verdict of a `verified` text (the strings `crate::ort` and the report's speed grid
/// write). An unrecognised text counts as a difference: a check that cannot be read has not
/// passed.
pub fn ort_verdict(verified: &str) -> OrtVerdict {
    let v = verified.trim_start();
    if v.starts_with("bit-exact") {
        OrtVerdict::Exact
    } else if v.starts_with("same result") {
        OrtVerdict::SameResult
    } else if v.starts_with("not compared") || v.starts_with("not checked") {
        OrtVerdict::NotCompared
    } else {
        OrtVerdict::Differs
    }
}

pub fn in_run_checks(rows: &[SpeedRow]) -> InRun {
    let mut c = InRun::default();
    for r in rows {
        let v = &r.record.verified;
        match r.record.isa.as_str() {
            "reference" => c.reference_runs += 1,
            "onnxruntime" => match ort_verdict(v) {
                OrtVerdict::Exact => c.ort_exact += 1,
                OrtVerdict::SameResult => c.ort_same_result += 1,
                OrtVerdict::NotCompared => c.ort_not_compared += 1,
                OrtVerdict::Differs => c.ort_differs += 1,
            },
            _ if v.starts_with("bit-exact") => c.kernels_exact += 1,
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ort_verdicts_do_not_alarm_without_cause() {
        assert_eq!(ort_verdict("bit-exact with the reference (onnxruntime semantics)"), OrtVerdict::Exact);
        assert_eq!(ort_verdict("same result as the reference (low -1, high 1)"), OrtVerdict::SameResult);
        assert_eq!(
            ort_verdict("not compared (quantproof's calibrators are compared by their own tests)"),
            OrtVerdict::NotCompared
        );
        assert_eq!(ort_verdict("not checked"), OrtVerdict::NotCompared);
        assert_eq!(ort_verdict("DIFFERS from the reference: 3 of 9 elements, first at 2"), OrtVerdict::Differs);
        assert_eq!(
            ort_verdict("differs from the reference: low Some(1.0) (ONNX Runtime) vs None"),
            OrtVerdict::Differs
        );
        assert_eq!(ort_verdict(""), OrtVerdict::Differs);
    }
}
