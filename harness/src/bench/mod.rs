//! # Benchmarks: measured speed, checked output
//!
//! `quantproof bench OP` times one operation of [`ops::table`] (the bench workloads of [`crate::registry::OPS`]) on each implementation asked for:
//! the scalar reference (the oracle, for the speedup), each ISA's kernels through
//! [`Engine`], and, through [`crate::ort`], ONNX Runtime in the same run. Every measurement
//! becomes one [`Record`], printed as one JSON line.
//!
//! ## How a figure is taken
//!
//! 1. The [`Workload`] is built once per operation and size: inputs generated (deterministic,
//!    normal-ish values with channels of different magnitudes: [`data`]), parameters chosen from
//!    the data under the profile, the reference's output computed. Generating the inputs writes
//!    every page, so no page fault lands inside a timed run.
//! 2. For each implementation, the output buffers are scrambled, the operation runs once and its
//!    output is compared with the reference's, bit for bit. A kernel that is fast but wrong
//!    produces an error, never a number ([`Record::verified`] says what was checked).
//! 3. Warm-up runs (50 ms, [`timing::WARM_UP_S`]), then the median of `R` timed runs
//!    ([`timing`]), `std::time::Instant` around each call, inputs and outputs allocated once.
//!
//! Throughput is elements per second and *compulsory* bytes per second: every input byte read
//! once and every output byte written once ([`Workload::bytes_per_element`]), whatever the
//! implementation actually moves, so that figures compare with the machine's bandwidth
//! ([`crate::machine`]).
//!
//! ## Adding an operation
//!
//! Define a static [`OpSpec`] in [`ops`] (a name, the defaults, and a function that builds its
//! [`Workload`]) and list it in the op's entry of [`crate::registry::OPS`]. The calibrators ([`calib`]: entropy, percentile, distribution, histogram) plug
//! in the same way; their workloads return ONNX Runtime's matching collector from
//! [`Workload::ort_collector`], and `--with-ort` and the report then time it on the same data.

pub mod calib;
pub mod data;
pub mod ops;
pub mod timing;

use quantproof_reference::error::QuantError;
use quantproof_reference::profile::Profile;
use serde::{Deserialize, Serialize};
use timing::{Reps, Timing};

pub use ops::{table, OpSpec};

/// One measurement: the schema of `quantproof bench --json` lines (ONNX Runtime's lines, from
/// `harness/python/ort_bench.py`, use the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Operation name (see [`ops::table`] (the bench workloads of [`crate::registry::OPS`])).
    pub op: String,
    /// `reference`, an ISA name (`scalar`, `avx2`, `avx512`, `neon`) or `onnxruntime`.
    pub isa: String,
    /// Threads the implementation was allowed (the reference always runs on one).
    pub threads: usize,
    /// Elements processed per run.
    pub elements: usize,
    /// Profile whose arithmetic was used (`onnxruntime`'s own for ONNX Runtime).
    pub profile: String,
    /// Code type (`i8`, `u8`), or `f32` for operations without codes.
    pub dtype: String,
    /// `per-tensor` or `per-axis`.
    pub granularity: String,
    /// Timed repetitions (after the warm-up runs).
    pub reps: usize,
    pub seconds_median: f64,
    pub seconds_min: f64,
    pub seconds_max: f64,
    /// `elements / seconds_median / 1e9`.
    pub gelem_per_s: f64,
    /// `elements * bytes_per_element / seconds_median / 1e9` (compulsory traffic).
    pub gbytes_per_s: f64,
    /// Bytes read plus bytes written per element, each once.
    pub bytes_per_element: f64,
    /// What the output was checked against before timing.
    pub verified: String,
    /// Anything else worth keeping (parameters, ONNX Runtime's version and call overhead, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// Operations per second / 1e9 for ops counted that way (`detail.ops_per_element` x
    /// Gelem/s: `2 M N K / t` for a GEMM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gops: Option<f64>,
}

impl Record {
    /// Fills the derived throughput fields from `seconds_median`, `elements` and
    /// `bytes_per_element`.
    pub fn derive_rates(&mut self) {
        let s = self.seconds_median;
        let (e, b) = if s > 0.0 {
            (self.elements as f64 / s / 1e9, self.elements as f64 * self.bytes_per_element / s / 1e9)
        } else {
            (0.0, 0.0)
        };
        self.gelem_per_s = e;
        self.gops = self.detail.as_ref().and_then(|d| d.get("ops_per_element")).and_then(|v| v.as_f64()).map(|o| o * e);
        self.gbytes_per_s = b;
    }

    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Element types benchmarks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    I8,
    U8,
    F32,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::I8 => "i8",
            Dtype::U8 => "u8",
            Dtype::F32 => "f32",
        }
    }

    pub fn parse(s: &str) -> Option<Dtype> {
        match s.trim().to_ascii_lowercase().as_str() {
            // `u8s8` / `s8s8`: qgemm's names for its activation types (the weights are s8).
            "i8" | "int8" | "s8" | "s8s8" => Some(Dtype::I8),
            "u8" | "uint8" | "u8s8" => Some(Dtype::U8),
            "f32" | "float" | "float32" => Some(Dtype::F32),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::F32 => 4,
        }
    }
}

/// Per-tensor or per-axis parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gran {
    PerTensor,
    /// One scale and zero point per row of a `[channels, size / channels]` tensor.
    PerAxis,
}

impl Gran {
    pub fn name(self) -> &'static str {
        match self {
            Gran::PerTensor => "per-tensor",
            Gran::PerAxis => "per-axis",
        }
    }

    pub fn parse(s: &str) -> Option<Gran> {
        match s.trim().to_ascii_lowercase().as_str() {
            "per-tensor" | "tensor" | "per_tensor" => Some(Gran::PerTensor),
            "per-axis" | "axis" | "per_axis" | "per-channel" | "per_channel" | "channel" => Some(Gran::PerAxis),
            _ => None,
        }
    }
}

/// Histogram bins of the calibration benchmarks unless `--bins` says otherwise (issue 3: 2048).
pub const DEFAULT_BINS: usize = 2048;

/// What to measure: the resolved options of one benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Elements per run.
    pub size: usize,
    pub profile: Profile,
    pub dtype: Dtype,
    pub granularity: Gran,
    /// Seed of the input data.
    pub seed: u64,
    /// Histogram bins of the calibrators and `histogram` (`--bins`, default 2048).
    pub bins: usize,
    /// Explicit dimensions where the op takes them (`qgemm`: `[M, N, K]`; `qconv2d`: `[N, C, H,
    /// W, OC, KH, KW]`); `None`: the op's default shape for `size`.
    pub dims: Option<Vec<usize>>,
}

impl Setup {
    /// `spec`'s defaults for whatever is `None`; fails on a combination the operation lacks.
    pub fn resolve(
        spec: &OpSpec,
        size: usize,
        profile: Option<Profile>,
        dtype: Option<Dtype>,
        granularity: Option<Gran>,
    ) -> Result<Setup, String> {
        let dtype = dtype.unwrap_or(spec.dtypes[0]);
        if !spec.dtypes.contains(&dtype) {
            let names: Vec<&str> = spec.dtypes.iter().map(|d| d.name()).collect();
            return Err(format!("{} takes --dtype {}, not {}", spec.name, names.join(" or "), dtype.name()));
        }
        let granularity = granularity.unwrap_or(Gran::PerTensor);
        if granularity == Gran::PerAxis && !spec.per_axis {
            return Err(format!("{} has no per-axis form", spec.name));
        }
        if size == 0 {
            return Err("--size must be at least 1".into());
        }
        let profile = profile.unwrap_or(spec.default_profile);
        Ok(Setup { size, profile, dtype, granularity, seed: 0x5EED_0000 ^ size as u64, bins: DEFAULT_BINS, dims: None })
    }

    /// The same setup with explicit dimensions.
    pub fn with_dims(mut self, dims: Option<Vec<usize>>) -> Setup {
        self.dims = dims;
        self
    }

    /// The same setup with `bins` histogram bins (at least 1).
    pub fn with_bins(mut self, bins: usize) -> Setup {
        self.bins = bins.max(1);
        self
    }

    /// Rows of the `[channels, size / channels]` layout: the largest of 256, 64, 16, 4, 2, 1
    /// dividing `size` (1 for per-tensor).
    pub fn channels(&self) -> usize {
        if self.granularity == Gran::PerTensor {
            return 1;
        }
        [256, 64, 16, 4, 2, 1].into_iter().find(|&c| self.size.is_multiple_of(c)).unwrap_or(1)
    }
}

pub use crate::path::Path;

/// The tensor ONNX Runtime reads.
#[derive(Debug, Clone, Copy)]
pub enum OrtInput<'a> {
    F32(&'a [f32]),
    I8(&'a [i8]),
    U8(&'a [u8]),
}

impl OrtInput<'_> {
    /// Raw little-endian bytes, as numpy's `fromfile` reads them.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            OrtInput::F32(x) => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
            OrtInput::I8(x) => x.iter().map(|&v| v as u8).collect(),
            OrtInput::U8(x) => x.to_vec(),
        }
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            OrtInput::F32(_) => Dtype::F32,
            OrtInput::I8(_) => Dtype::I8,
            OrtInput::U8(_) => Dtype::U8,
        }
    }
}

/// What ONNX Runtime is asked to do for one workload, and what it must produce.
#[derive(Debug, Clone)]
pub struct OrtCase<'a> {
    /// Operation name in `ort_bench.py` (the same as ours).
    pub op: &'static str,
    pub input: OrtInput<'a>,
    /// Code type of the quantized side.
    pub dtype: Dtype,
    pub scale: f32,
    pub zero_point: i32,
    /// The bytes of every output, concatenated in the model's output order, as the reference
    /// computes them under ONNX Runtime's own semantics (division, ties to even, saturation to
    /// the type's full range).
    pub expected: Vec<u8>,
    pub bytes_per_element: f64,
    pub elements: usize,
    /// The second input and the output's parameters of a two-input op (QLinearAdd,
    /// QLinearMul); `None` for one-input ops.
    pub binary: Option<OrtBinary<'a>>,
    /// Integer operations per element, for ops counted in GOPS (GEMM, convolution).
    pub ops_per_element: Option<f64>,
    /// The output's parameters of a requantizing unary op (QLinearSigmoid, QLinearLeakyRelu).
    pub unary: Option<OrtUnary>,
}

impl<'a> OrtCase<'a> {
    /// A one-input op with per-tensor input parameters `(scale, zero_point)`; no second input,
    /// operation count or output parameters (struct update syntax adds them).
    pub fn one_input(
        op: &'static str,
        input: OrtInput<'a>,
        dtype: Dtype,
        (scale, zero_point): (f32, i32),
        expected: Vec<u8>,
        bytes_per_element: f64,
        elements: usize,
    ) -> OrtCase<'a> {
        OrtCase {
            op,
            input,
            dtype,
            scale,
            zero_point,
            expected,
            bytes_per_element,
            elements,
            binary: None,
            ops_per_element: None,
            unary: None,
        }
    }
}

/// The output parameters of a one-input op that requantizes (its input's are
/// [`OrtCase::scale`] and [`OrtCase::zero_point`]), and LeakyRelu's slope.
#[derive(Debug, Clone, Copy)]
pub struct OrtUnary {
    pub y_scale: f32,
    pub y_zero_point: i32,
    pub alpha: Option<f32>,
}

/// The second input of a two-input op, its parameters and the output's (the first input's are
/// [`OrtCase::scale`] and [`OrtCase::zero_point`]).
#[derive(Debug, Clone)]
pub struct OrtBinary<'a> {
    pub b: OrtInput<'a>,
    pub b_scale: f32,
    pub b_zero_point: i32,
    pub y_scale: f32,
    pub y_zero_point: i32,
    /// `[M, K, N]` for a matrix product (`x` is `[M, K]`, `b` is `[K, N]` and becomes a
    /// constant initializer, as a model's weights are), `[N, C, H, W, OC, KH, KW]` for a
    /// convolution (`b` is the `[OC, C, KH, KW]` weights); `None` for element-wise ops.
    pub dims: Option<Vec<usize>>,
}

/// One operation's prepared inputs, outputs and expected outputs.
pub trait Workload {
    /// Runs the operation once with `imp`, into this workload's output buffers.
    fn run(&mut self, imp: &Path) -> Result<(), QuantError>;
    /// Overwrites the outputs with values no correct run leaves behind.
    fn scramble(&mut self);
    /// Compares the outputs of the last run with the reference's, bit for bit.
    fn verify(&self) -> Result<(), String>;
    /// Compulsory bytes per element: inputs read once plus outputs written once.
    fn bytes_per_element(&self) -> f64;
    /// Parameters and shape, for [`Record::detail`].
    fn detail(&self) -> serde_json::Value;
    /// The same computation for ONNX Runtime, when it has one (per-tensor only).
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        None
    }
    /// For calibrators: ONNX Runtime's `HistogramCollector` with the same settings, and the
    /// data to run it on (`--with-ort` and the report time it next to ours).
    fn ort_collector(&self) -> Option<(crate::ort::Collector, &[f32])> {
        None
    }
}

/// A failed measurement: which one and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub op: String,
    pub isa: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}: {}", self.op, self.isa, self.message)
    }
}

/// A built workload with its description.
pub struct Bench {
    pub spec: &'static OpSpec,
    pub setup: Setup,
    pub workload: Box<dyn Workload>,
}

impl Bench {
    /// Builds the workload (inputs, parameters, the reference's outputs).
    pub fn new(spec: &'static OpSpec, setup: Setup) -> Result<Bench, String> {
        let workload = (spec.build)(&setup).map_err(|e| format!("{}: {e}", spec.name))?;
        Ok(Bench { spec, setup, workload })
    }

    /// Checks `imp`'s output against the reference, then times it.
    pub fn measure(&mut self, imp: &Path, reps: Reps) -> Result<Record, Failure> {
        let fail = |message: String| Failure { op: self.spec.name.to_string(), isa: imp.name().to_string(), message };
        self.workload.scramble();
        self.workload.run(imp).map_err(|e| fail(e.to_string()))?;
        let verified = match imp {
            Path::Reference => "oracle (this is the reference)".to_string(),
            Path::Optimized(_) => {
                self.workload.verify().map_err(|m| fail(format!("output differs from the reference: {m}")))?;
                "bit-exact with the reference".to_string()
            }
        };
        let w = &mut self.workload;
        let t: Timing = timing::measure(reps, || w.run(imp)).map_err(|e| fail(e.to_string()))?;
        Ok(self.record(
            imp.name(),
            imp.threads(),
            t,
            verified,
            self.workload.bytes_per_element(),
            Some(self.workload.detail()),
        ))
    }

    /// A record for this workload from a timing.
    pub fn record(
        &self,
        isa: &str,
        threads: usize,
        t: Timing,
        verified: String,
        bytes_per_element: f64,
        detail: Option<serde_json::Value>,
    ) -> Record {
        let mut r = Record {
            op: self.spec.name.to_string(),
            isa: isa.to_string(),
            threads,
            elements: self.setup.size,
            profile: self.setup.profile.name.to_string(),
            dtype: self.setup.dtype.name().to_string(),
            granularity: self.setup.granularity.name().to_string(),
            reps: t.reps,
            seconds_median: t.median,
            seconds_min: t.min,
            seconds_max: t.max,
            gelem_per_s: 0.0,
            gbytes_per_s: 0.0,
            bytes_per_element,
            verified,
            detail,
            gops: None,
        };
        r.derive_rates();
        r
    }
}

/// Looks an operation up by name. `reference-OP` names the reference implementation of `OP`
/// (returned with `true`).
pub fn lookup(name: &str) -> Option<(&'static OpSpec, bool)> {
    let n = name.trim().to_ascii_lowercase();
    if let Some(rest) = n.strip_prefix("reference-") {
        return table().find(|s| s.name == rest).map(|s| (s, true));
    }
    table().find(|s| s.name == n).map(|s| (s, false))
}

/// Parses a size: digits with an optional binary suffix `K` (2^10), `M` (2^20) or `G` (2^30).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1usize << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = digits.replace('_', "").parse().map_err(|_| format!("not a size: {s:?} (e.g. 65536, 64K, 16M)"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} overflows"))
}

/// A size written the short way: `64K`, `16M`, or the plain number.
pub fn format_size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_json_schema() {
        let spec = &ops::QUANTIZE;
        let setup = Setup::resolve(spec, 1000, None, None, None).unwrap();
        let b = Bench::new(spec, setup).unwrap();
        let t = Timing { reps: 3, median: 2e-6, min: 1e-6, max: 3e-6 };
        let r = b.record("scalar", 2, t, "checked".into(), 5.0, None);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "op",
            "isa",
            "threads",
            "elements",
            "profile",
            "dtype",
            "granularity",
            "reps",
            "seconds_median",
            "seconds_min",
            "seconds_max",
            "gelem_per_s",
            "gbytes_per_s",
            "bytes_per_element",
            "verified",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert!(v.get("detail").is_none());
        assert_eq!(v["op"], "quantize");
        assert_eq!(v["threads"], 2);
        assert!((r.gelem_per_s - 0.5).abs() < 1e-12);
        assert!((r.gbytes_per_s - 2.5).abs() < 1e-12);
        // Lines parse back (ONNX Runtime's lines are read this way).
        let back: Record = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn sizes() {
        for (s, n) in [("4096", 4096), ("64K", 65536), ("16m", 16 << 20), ("1_000", 1000), ("2G", 2 << 30)] {
            assert_eq!(parse_size(s).unwrap(), n, "{s}");
        }
        for s in ["", "K", "1.5M", "-3", "99999999999999999999G"] {
            assert!(parse_size(s).is_err(), "{s}");
        }
        assert_eq!(format_size(65536), "64K");
        assert_eq!(format_size(16 << 20), "16M");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn names() {
        assert_eq!(lookup("quantize").map(|(s, r)| (s.name, r)), Some(("quantize", false)));
        assert_eq!(lookup("reference-quantize").map(|(s, r)| (s.name, r)), Some(("quantize", true)));
        assert!(lookup("reference-nope").is_none());
        assert!(Path::parse("reference", 4).is_ok());
        assert!(Path::parse("mmx", 1).is_err());
        assert_eq!(Dtype::parse("uint8"), Some(Dtype::U8));
        assert_eq!(Gran::parse("per-channel"), Some(Gran::PerAxis));
    }
}
