//! Correctness section of the report.
//!
//! Two sources, kept apart:
//!
//! * **golden vectors** recorded from PyTorch and ONNX Runtime (`tests/vectors/`), replayed by
//!   the vector runner (`harness/src/vectors/`, written in another branch). Until that runner is
//!   part of this build, [`golden_vectors`] says so, and the report prints no number for it.
//! * **in-run checks**: every benchmark compared its output with the reference bit for bit
//!   before it was timed, and ONNX Runtime's outputs were compared with the reference under
//!   ONNX Runtime's semantics. [`in_run_checks`] counts them.

use super::speed::SpeedRow;

/// The golden-vector summary, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Golden {
    /// `(suite, cases passed, cases total)`.
    Summary(Vec<(String, usize, usize)>),
    NotIntegrated(&'static str),
}

/// INTEGRATION POINT: when `harness/src/vectors/` lands, call its library function here (the
/// one behind `quantproof vectors`) and turn its per-suite results into [`Golden::Summary`].
pub fn golden_vectors() -> Golden {
    Golden::NotIntegrated(
        "the golden-vector runner (harness/src/vectors/) is not part of this build yet; \
         see harness/src/report/correctness.rs::golden_vectors for the integration point",
    )
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
