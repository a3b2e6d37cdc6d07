//! NVIDIA's calibrators for TensorRT: pytorch-quantization (`pytorch_quantization/calib/`) and its
//! successor TensorRT-Model-Optimizer (`modelopt/torch/quantization/calib/`), whose
//! `MaxCalibrator` and `HistogramCalibrator` are the same algorithms.
//!
//! # `MaxCalibrator`
//!
//! `amax = max |x|` over everything seen; the range is `[-amax, amax]`. Merging is exact.
//!
//! # `HistogramCalibrator`
//!
//! **Collection** (of `|x|`: a batch with a negative value is replaced by its absolute value;
//! `skip_zeros` drops zeros). The default `torch_hist=True` path:
//!
//! ```text
//! first batch:  hist  = torch.histc(x, bins=2048, min=0, max=x.max())
//!               edges = torch.linspace(0, x.max(), 2049)                 (float32)
//! later:        if x.max() > edges[-1]:
//!                   w = edges[1] - edges[0]; bins = ceil(x.max() / w)     (float32)
//!                   edges = torch.arange(0, x.max() + w, w)               (float32 values of float64 i * w)
//!               hist' = torch.histc(x, bins, min=0, max=edges[-1]); hist'[:len(hist)] += hist
//! ```
//!
//! `torch.histc` (ATen `LINEAR_INTERPOLATION`) puts `x` in `trunc((x - lo) * bins / (hi - lo))`
//! (float32, the last bin closed), skips `x` outside `[lo, hi]`, and widens `lo == hi` to
//! `[lo - 1, hi + 1]` (an all-zero batch lands in bin `bins / 2`). The `torch_hist=False` path is
//! numpy's: `np.histogram(x, 2048)` over `[min x, max x]`, later batches growing the edges with
//! `np.arange` like ONNX Runtime's `|x|` histogram (the edges become float64 and stay so).
//!
//! **`compute_amax`** (`amax` is returned as a float32 tensor):
//!
//! * `entropy` ([`entropy_amax`]): `bins = hist; bins[0] = bins[1]` (the zero bin, which ReLU
//!   outputs inflate, is replaced by its neighbour); for `i` in `start_bin ..= len` (default 128,
//!   stride 1): `P = bins[:i]` with `sum(bins[i:])` added to its last bin; `Q`: bin `j` belongs
//!   to level `floor(j * 2^(bits - 1 + unsigned) / i)` (numpy's `digitize` on exact float64
//!   edges), each non-zero bin gets the mean of the non-zero bins of its level, zero bins get 0;
//!   `KL = scipy.stats.entropy(P, Q)` in float64 (normalized, `P > 0` where `Q = 0` is infinite);
//!   no smoothing; the **last** minimum wins; `amax = edges[i]`.
//! * `mse` ([`mse_amax`]): for each bin centre `c_i` from `start_bin` on, fake-quantize all the
//!   centres with `amax = c_i` (narrow range, `scale = (2^(bits-1+unsigned) - 1) / amax`,
//!   round half to even) and weight the squared errors by the counts; the first minimum wins;
//!   `amax = c_i`.
//! * `percentile` ([`percentile_amax`], default 99.99): `edges[searchsorted(cumsum(hist / total),
//!   p / 100)]`.
//!
//! # Exactness, and where this follows a documented choice
//!
//! * The edges are computed with the scalar formulas of ATen's `linspace` / `arange` kernels;
//!   their vectorized loops (taken for the aligned part of the output) form
//!   `base + j * step` per vector and can differ in the last bit, which moves `amax` by an ulp at
//!   most. Bin membership depends only on the outer edges and is exact.
//! * torch counts in float32 (a bin stops counting at 2^24 per thread); we count in `u64`.
//! * `mse`: torch sums the float32 weighted errors in its own reduction order; we add the same
//!   float32 terms in float64. The chosen centre can differ only when two candidates' MSEs agree
//!   to float32 rounding.
//! * The consistency check of the entropy loop (`round(total_counts_new) != total_data` raises)
//!   is an invariant of exact arithmetic and is not reproduced.
//! * An empty batch (or one emptied by `skip_zeros`) is ignored; torch raises on `x.max()` of an
//!   empty tensor.
//!
//! # Streaming
//!
//! Both collection paths grow the range from the first batch, so the histogram depends on the
//! order of the batches and [`HistogramCalibrator`] does not merge. For an exact streaming
//! calibration, run [`MaxCalibrator`] first (mergeable) and give its `amax` to
//! [`HistogramCalibrator::with_fixed_amax`]: the histogram is then `histc(x, bins, 0, amax)` for
//! every batch, which is what the first `collect` call of all the data at once builds, and
//! partial histograms merge exactly.

// Negated comparisons (`!(a < b)`) are deliberate: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::numpy_hist::{self, ScalarType, UniformBins};
use super::{NonFinitePolicy, Observer, Range};
use crate::error::{QuantError, Result};
use crate::scheme::Signedness;

/// `MaxCalibrator`: the absolute maximum of everything seen.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MaxCalibrator {
    amax: Option<f32>,
    policy: NonFinitePolicy,
}

impl MaxCalibrator {
    pub fn new(policy: NonFinitePolicy) -> MaxCalibrator {
        MaxCalibrator { amax: None, policy }
    }

    /// `max |x|` so far (`None` before any value, where modelopt returns `None`).
    pub fn amax(&self) -> Option<f32> {
        self.amax
    }
}

impl Observer for MaxCalibrator {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        for &v in x.iter() {
            let a = v.abs();
            self.amax = Some(match self.amax {
                Some(m) if m >= a => m,
                _ => a,
            });
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        if let Some(o) = other.amax {
            self.amax = Some(self.amax.map_or(o, |m| m.max(o)));
        }
        Ok(())
    }

    /// `[-amax, amax]`; an error before any value.
    fn range(&self) -> Result<Range> {
        match self.amax {
            None => Err(QuantError::EmptyInput { what: "MaxCalibrator (no data collected)" }),
            Some(a) => Range::new(-a, a),
        }
    }
}

/// `torch.linspace(start, end, steps)` for float32, ATen's scalar formula: `step = (end - start) /
/// (steps - 1)`; the first half counts up from `start`, the second half down from `end`.
pub fn torch_linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 0 {
        return Vec::new();
    }
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| if i < halfway { start + step * i as f32 } else { end - step * (steps - i - 1) as f32 })
        .collect()
}

/// `torch.arange(start, end, step)` for float32 output: `len = ceil((end - start) / step)` and
/// `y[i] = f32(start + step * i)`, both in float64 (ATen's accumulation type on CPU).
pub fn torch_arange_f32(start: f64, end: f64, step: f64) -> Result<Vec<f32>> {
    let len = ((end - start) / step).ceil();
    if step == 0.0 || !len.is_finite() || len < 0.0 || len > (1u64 << 32) as f64 {
        return Err(QuantError::InvalidArgument {
            what: "arange",
            detail: format!("torch.arange({start}, {end}, {step}) has no valid length"),
        });
    }
    Ok((0..len as usize).map(|i| (start + step * i as f64) as f32).collect())
}

/// `torch.histc(x, bins, min, max)` for float32 input: counts of
/// `trunc((x - lo) * bins / (hi - lo))` (float32; `x == hi` in the last bin), where `lo, hi`
/// are `min, max`, or the data's own range when they are equal, widened by 1 on both sides when
/// still equal. Values outside `[lo, hi]` are skipped.
pub fn torch_histc(x: &[f32], bins: usize, min: f32, max: f32) -> Result<Vec<u64>> {
    if bins == 0 {
        return Err(QuantError::InvalidArgument { what: "bins", detail: "torch.histc needs at least one bin".into() });
    }
    let (mut lo, mut hi) = (min as f64, max as f64);
    if lo == hi && !x.is_empty() {
        let finite = x.iter().copied().filter(|v| !v.is_nan());
        lo = finite.clone().fold(f32::INFINITY, f32::min) as f64;
        hi = finite.fold(f32::NEG_INFINITY, f32::max) as f64;
    }
    if lo == hi {
        lo -= 1.0;
        hi += 1.0;
    }
    if !(lo < hi && lo.is_finite() && hi.is_finite()) {
        return Err(QuantError::InvalidRange { min: lo, max: hi });
    }
    let (left, right) = (lo as f32, hi as f32);
    let mut counts = vec![0u64; bins];
    for &v in x {
        if !(v >= left && v <= right) {
            continue;
        }
        let pos = ((v - left) * bins as f32 / (right - left)) as usize;
        counts[pos.min(bins - 1)] += 1;
    }
    Ok(counts)
}

/// Which histogram path `collect` takes (`torch_hist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistBackend {
    /// `torch_hist=True` (the default): `torch.histc` over `[0, max]`.
    Torch,
    /// `torch_hist=False`: `np.histogram` over `[min, max]`, then explicit growing edges.
    Numpy,
}

#[derive(Debug, Clone, PartialEq)]
enum Hist {
    Torch { counts: Vec<u64>, edges: Vec<f32> },
    Numpy { counts: Vec<u64>, edges: Vec<f64>, ty: ScalarType },
}

/// The amax method of `compute_amax`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AmaxMethod {
    Entropy { stride: usize, start_bin: usize },
    Mse { stride: usize, start_bin: usize },
    Percentile { percentile: f64 },
}

impl AmaxMethod {
    /// `compute_amax("entropy")` defaults: stride 1, start_bin 128.
    pub const ENTROPY: AmaxMethod = AmaxMethod::Entropy { stride: 1, start_bin: 128 };
    /// `compute_amax("mse")` defaults: stride 1, start_bin 128.
    pub const MSE: AmaxMethod = AmaxMethod::Mse { stride: 1, start_bin: 128 };
    /// `compute_amax("percentile")` default: 99.99.
    pub const PERCENTILE: AmaxMethod = AmaxMethod::Percentile { percentile: 99.99 };
}

/// `HistogramCalibrator` (per tensor).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramCalibrator {
    num_bits: u32,
    unsigned: bool,
    num_bins: usize,
    skip_zeros: bool,
    backend: HistBackend,
    method: AmaxMethod,
    fixed_amax: Option<f32>,
    policy: NonFinitePolicy,
    hist: Option<Hist>,
}

impl HistogramCalibrator {
    /// modelopt's defaults: 8 bits, signed, 2048 bins, `skip_zeros=False`, `torch_hist=True`;
    /// `method` is what [`Observer::range`] computes.
    pub fn new(method: AmaxMethod) -> HistogramCalibrator {
        HistogramCalibrator {
            num_bits: 8,
            unsigned: false,
            num_bins: 2048,
            skip_zeros: false,
            backend: HistBackend::Torch,
            method,
            fixed_amax: None,
            policy: NonFinitePolicy::Error,
            hist: None,
        }
    }

    pub fn with_bits(mut self, num_bits: u32, signedness: Signedness) -> HistogramCalibrator {
        self.num_bits = num_bits;
        self.unsigned = !signedness.is_signed();
        self
    }

    pub fn with_bins(mut self, num_bins: usize) -> HistogramCalibrator {
        self.num_bins = num_bins;
        self
    }

    pub fn with_skip_zeros(mut self, skip_zeros: bool) -> HistogramCalibrator {
        self.skip_zeros = skip_zeros;
        self
    }

    pub fn with_backend(mut self, backend: HistBackend) -> HistogramCalibrator {
        self.backend = backend;
        self
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> HistogramCalibrator {
        self.policy = policy;
        self
    }

    /// The exact streaming mode (torch path only): every batch is histogrammed with
    /// `histc(|x|, bins, 0, amax)` and `torch.linspace(0, amax, bins + 1)` edges, `amax` from a
    /// first pass ([`MaxCalibrator`]). Equal to the first `collect` of all the data at once;
    /// merges exactly.
    pub fn with_fixed_amax(mut self, amax: f32) -> HistogramCalibrator {
        self.backend = HistBackend::Torch;
        self.fixed_amax = Some(amax);
        self
    }

    /// The counts and edges collected so far (edges as float64 values).
    pub fn histogram(&self) -> Option<(Vec<u64>, Vec<f64>)> {
        match &self.hist {
            None => None,
            Some(Hist::Torch { counts, edges }) => Some((counts.clone(), edges.iter().map(|&e| e as f64).collect())),
            Some(Hist::Numpy { counts, edges, .. }) => Some((counts.clone(), edges.clone())),
        }
    }

    /// Heap memory held: the bins and edges, independent of the amount of data.
    pub fn heap_bytes(&self) -> usize {
        match &self.hist {
            None => 0,
            Some(Hist::Torch { counts, edges }) => counts.len() * 8 + edges.len() * 4,
            Some(Hist::Numpy { counts, edges, .. }) => counts.len() * 8 + edges.len() * 8,
        }
    }

    /// One `collect(x)` call.
    pub fn collect(&mut self, x: &[f32]) -> Result<()> {
        crate::error::check_count("num_bins", self.num_bins, super::onnxruntime::MAX_BINS)?;
        let x = self.policy.filter(x)?;
        let mut x: Vec<f32> = if x.iter().any(|&v| v < 0.0) { x.iter().map(|v| v.abs()).collect() } else { x.to_vec() };
        if self.skip_zeros {
            x.retain(|&v| v != 0.0);
        }
        if x.is_empty() {
            return Ok(());
        }
        let x_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        match self.backend {
            HistBackend::Torch => self.collect_torch(&x, x_max),
            HistBackend::Numpy => self.collect_numpy(&x, x_max),
        }
    }

    fn collect_torch(&mut self, x: &[f32], x_max: f32) -> Result<()> {
        if let Some(amax) = self.fixed_amax {
            if x_max > amax {
                return Err(QuantError::InvalidArgument {
                    what: "streaming calibration",
                    detail: format!("|x| = {x_max} exceeds the amax {amax} fixed by the first pass"),
                });
            }
            let add = torch_histc(x, self.num_bins, 0.0, amax)?;
            match &mut self.hist {
                Some(Hist::Torch { counts, .. }) => counts.iter_mut().zip(add).for_each(|(c, a)| *c += a),
                _ => {
                    self.hist =
                        Some(Hist::Torch { counts: add, edges: torch_linspace_f32(0.0, amax, self.num_bins + 1) })
                }
            }
            return Ok(());
        }
        match &self.hist {
            None => {
                let counts = torch_histc(x, self.num_bins, 0.0, x_max)?;
                let edges = torch_linspace_f32(0.0, x_max, self.num_bins + 1);
                self.hist = Some(Hist::Torch { counts, edges });
            }
            Some(Hist::Torch { counts: old, edges: old_edges }) => {
                let mut edges = old_edges.clone();
                let mut bins = self.num_bins;
                if let (Some(&last), true) = (edges.last(), edges.len() >= 2) {
                    if x_max > last {
                        let width = edges[1] - edges[0];
                        let n = (x_max / width).ceil();
                        if !(n.is_finite() && (n as f64) <= super::onnxruntime::MAX_BINS as f64) {
                            return Err(QuantError::InvalidArgument {
                                what: "histogram growth",
                                detail: format!("bin width {width} cannot cover {x_max}"),
                            });
                        }
                        bins = n as usize;
                        edges = torch_arange_f32(0.0, (x_max + width) as f64, width as f64)?;
                    }
                }
                let top = edges.last().copied().unwrap_or(0.0);
                let mut counts = torch_histc(x, bins, 0.0, top)?;
                if counts.len() < old.len() {
                    return Err(QuantError::InvalidArgument {
                        what: "histogram growth",
                        detail: format!("{} bins cannot hold the previous {} (torch raises)", counts.len(), old.len()),
                    });
                }
                counts.iter_mut().zip(old).for_each(|(c, o)| *c += o);
                self.num_bins = bins;
                self.hist = Some(Hist::Torch { counts, edges });
            }
            Some(Hist::Numpy { .. }) => {
                return Err(QuantError::Unsupported { what: "switching histogram backends".into() })
            }
        }
        Ok(())
    }

    fn collect_numpy(&mut self, x: &[f32], x_max: f32) -> Result<()> {
        match &self.hist {
            None => {
                let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
                let bins = UniformBins::new(lo, x_max, self.num_bins)?;
                let counts = numpy_hist::counts(x, &bins);
                let edges = bins.edges().iter().map(|&e| e as f64).collect();
                self.hist = Some(Hist::Numpy { counts, edges, ty: ScalarType::F32 });
            }
            Some(Hist::Numpy { counts: old, edges: old_edges, ty }) => {
                let (mut edges, mut ty) = (old_edges.clone(), *ty);
                if let Some(&last) = edges.last() {
                    if x_max as f64 > last {
                        edges = numpy_hist::grow_edges(&edges, x_max as f64, ty)?;
                        ty = ScalarType::F64;
                    }
                }
                let mut counts = numpy_hist::counts_explicit(x, &edges)?;
                counts.iter_mut().zip(old).for_each(|(c, o)| *c += o);
                self.hist = Some(Hist::Numpy { counts, edges, ty });
            }
            Some(Hist::Torch { .. }) => {
                return Err(QuantError::Unsupported { what: "switching histogram backends".into() })
            }
        }
        Ok(())
    }

    /// `compute_amax(method)`: the float32 `amax`.
    pub fn compute_amax(&self, method: AmaxMethod) -> Result<f32> {
        let Some((counts, edges)) = self.histogram() else {
            return Err(QuantError::EmptyInput { what: "HistogramCalibrator (no data collected)" });
        };
        if let AmaxMethod::Entropy { stride, start_bin } | AmaxMethod::Mse { stride, start_bin } = method {
            // Each candidate bin's error sums over every bin: bound the search before it runs.
            let candidates = counts.len().saturating_sub(start_bin) / stride.max(1);
            let work = candidates as u128 * counts.len() as u128;
            if work > MAX_SEARCH_WORK {
                return Err(QuantError::TooLarge {
                    what: "amax search (candidates x bins)",
                    value: work,
                    limit: MAX_SEARCH_WORK,
                });
            }
        }
        let amax = match method {
            AmaxMethod::Entropy { stride, start_bin } => {
                entropy_amax(&counts, &edges, self.num_bits, signedness(self.unsigned), stride, start_bin)?
            }
            AmaxMethod::Mse { stride, start_bin } => {
                let edges32: Vec<f32> = edges.iter().map(|&e| e as f32).collect();
                mse_amax(&counts, &edges32, self.num_bits, signedness(self.unsigned), stride, start_bin)? as f64
            }
            AmaxMethod::Percentile { percentile } => percentile_amax(&counts, &edges, percentile)?,
        };
        Ok(amax as f32)
    }
}

impl Observer for HistogramCalibrator {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        self.collect(x)
    }

    /// Exact with a fixed amax (same configuration: counts add); refused otherwise (the growing
    /// histogram depends on the order of the batches).
    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.fixed_amax.is_none() || self.fixed_amax != other.fixed_amax {
            return Err(QuantError::Unsupported {
                what: "merging HistogramCalibrators without the same fixed amax: the collected histogram grows from the first batch, so it depends on the order of the batches".into(),
            });
        }
        let differences: Vec<String> = [
            ("num_bins", self.num_bins.to_string(), other.num_bins.to_string()),
            ("skip_zeros", self.skip_zeros.to_string(), other.skip_zeros.to_string()),
            ("num_bits", self.num_bits.to_string(), other.num_bits.to_string()),
            ("unsigned", self.unsigned.to_string(), other.unsigned.to_string()),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("{what} {a} vs {b}"))
        .collect();
        if !differences.is_empty() {
            return Err(QuantError::InvalidArgument {
                what: "merging HistogramCalibrators",
                detail: format!("their configurations differ: {}", differences.join(", ")),
            });
        }
        match (&mut self.hist, &other.hist) {
            (_, None) => {}
            (None, Some(h)) => self.hist = Some(h.clone()),
            (Some(Hist::Torch { counts, .. }), Some(Hist::Torch { counts: oc, .. })) => {
                counts.iter_mut().zip(oc).for_each(|(c, o)| *c += o)
            }
            _ => return Err(QuantError::Unsupported { what: "merging different histogram backends".into() }),
        }
        Ok(())
    }

    /// `[-amax, amax]` (`[0, amax]` when unsigned) for the configured method.
    fn range(&self) -> Result<Range> {
        let amax = self.compute_amax(self.method)?;
        if self.unsigned {
            Range::new(0.0, amax)
        } else {
            Range::new(-amax, amax)
        }
    }
}

/// The most candidate-bin pairs the entropy and MSE amax searches visit (~2^31: seconds).
pub const MAX_SEARCH_WORK: u128 = 1 << 31;

/// modelopt's `unsigned` flag as a [`Signedness`].
fn signedness(unsigned: bool) -> Signedness {
    if unsigned {
        Signedness::Unsigned
    } else {
        Signedness::Signed
    }
}

fn check_bits(num_bits: u32, unsigned: bool) -> Result<u32> {
    let shift = num_bits as i64 - 1 + unsigned as i64;
    // A signed 1-bit quantizer has bound 2^0 - 1 = 0: its scale 0 / amax makes every value NaN.
    if num_bits == 0 || !(1..=30).contains(&shift) {
        return Err(QuantError::BitWidthOutOfRange { bits: num_bits });
    }
    Ok(shift as u32)
}

/// `scipy.stats.entropy(pk, qk)`: both normalized by their (numpy pairwise) sums, then
/// `sum(rel_entr(pk, qk))` with `rel_entr(x, y) = x ln(x / y)` for `x, y > 0`, 0 for `x = 0,
/// y >= 0`, infinity otherwise (NaN in, NaN out).
pub fn scipy_entropy(pk: &[f64], qk: &[f64]) -> f64 {
    let sp = numpy_hist::pairwise_sum_f64(pk);
    let sq = numpy_hist::pairwise_sum_f64(qk);
    let terms: Vec<f64> = pk
        .iter()
        .zip(qk)
        .map(|(&p, &q)| {
            let (x, y) = (p / sp, q / sq);
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else if x > 0.0 && y > 0.0 {
                x * (x / y).ln()
            } else if x == 0.0 && y >= 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        })
        .collect();
    numpy_hist::pairwise_sum_f64(&terms)
}

/// `_compute_amax_entropy(calib_hist, calib_bin_edges, num_bits, unsigned, stride, start_bin)`
/// (see the module docs). `edges.len()` must be `hist.len() + 1`.
pub fn entropy_amax(
    hist: &[u64],
    edges: &[f64],
    num_bits: u32,
    signedness: Signedness,
    stride: usize,
    start_bin: usize,
) -> Result<f64> {
    let unsigned = !signedness.is_signed();
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    let shift = check_bits(num_bits, unsigned)?;
    if hist.len() < 2 || stride == 0 || start_bin == 0 || start_bin > hist.len() {
        return Err(QuantError::InvalidArgument {
            what: "entropy calibration",
            detail: format!("{} bins, start_bin {start_bin}, stride {stride}: no candidate", hist.len()),
        });
    }
    let levels = 1usize << shift;
    let mut bins = hist.to_vec();
    bins[0] = bins[1];
    let mut suffix = vec![0u64; bins.len() + 1];
    for j in (0..bins.len()).rev() {
        suffix[j] = suffix[j + 1] + bins[j];
    }
    let mut divergences = Vec::new();
    let mut level_sum = vec![0f64; levels];
    let mut level_count = vec![0u64; levels];
    for i in (start_bin..=bins.len()).step_by(stride) {
        level_sum.iter_mut().for_each(|v| *v = 0.0);
        level_count.iter_mut().for_each(|v| *v = 0);
        let level = |j: usize| (j as u128 * levels as u128 / i as u128) as usize;
        for (j, &b) in bins[..i].iter().enumerate() {
            if b != 0 {
                level_sum[level(j)] += b as f64;
                level_count[level(j)] += 1;
            }
        }
        let candidate: Vec<f64> = bins[..i]
            .iter()
            .enumerate()
            .map(|(j, &b)| if b != 0 { level_sum[level(j)] / level_count[level(j)] as f64 } else { 0.0 })
            .collect();
        let mut reference: Vec<f64> = bins[..i].iter().map(|&b| b as f64).collect();
        reference[i - 1] = (bins[i - 1] + suffix[i]) as f64;
        divergences.push(scipy_entropy(&reference, &candidate));
    }
    let best = numpy_hist::argmin_last(&divergences).unwrap_or(0);
    Ok(edges[best * stride + start_bin])
}

/// `fake_tensor_quant(x, amax, num_bits, unsigned)` on CPU (`_tensor_quant`, narrow range):
/// `max_bound = 2^(bits-1+unsigned) - 1`, `scale = max_bound / amax` (0, then 1, for
/// `amax <= 2^-24`), `clamp(round_half_even(x * scale), -max_bound or 0, max_bound) / scale`, in
/// float32.
pub fn fake_tensor_quant(x: f32, amax: f32, num_bits: u32, signedness: Signedness) -> Result<f32> {
    let unsigned = !signedness.is_signed();
    let shift = check_bits(num_bits, unsigned)?;
    let max_bound = ((1u64 << shift) - 1) as f32;
    let min_bound = if unsigned { 0.0 } else { -max_bound };
    if amax <= 1.0 / (1u32 << 24) as f32 {
        let q = (x * 0.0).round_ties_even().clamp(min_bound, max_bound);
        return Ok(q / 1.0);
    }
    let scale = max_bound / amax;
    Ok((x * scale).round_ties_even().clamp(min_bound, max_bound) / scale)
}

/// `_compute_amax_mse`: the bin centre `c_i` (`i >= start_bin`, step `stride`) minimizing
/// `mean((fake_quant(c, c_i) - c)^2 * counts)` over all centres `c` (first minimum).
pub fn mse_amax(
    hist: &[u64],
    edges: &[f32],
    num_bits: u32,
    signedness: Signedness,
    stride: usize,
    start_bin: usize,
) -> Result<f32> {
    let unsigned = !signedness.is_signed();
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    check_bits(num_bits, unsigned)?;
    let centers: Vec<f32> = edges.windows(2).map(|w| (w[1] + w[0]) / 2.0).collect();
    if stride == 0 || start_bin >= centers.len() {
        return Err(QuantError::InvalidArgument {
            what: "mse calibration",
            detail: format!("{} bins, start_bin {start_bin}, stride {stride}: no candidate", centers.len()),
        });
    }
    let counts: Vec<f32> = hist.iter().map(|&c| c as f32).collect();
    let mut mses = Vec::new();
    let mut args = Vec::new();
    for i in (start_bin..centers.len()).step_by(stride) {
        let amax = centers[i];
        let mut sum = 0f64;
        for (&c, &n) in centers.iter().zip(&counts) {
            let d = fake_tensor_quant(c, amax, num_bits, signedness)? - c;
            sum += (d * d * n) as f64;
        }
        mses.push(sum / centers.len() as f64);
        args.push(i);
    }
    let best = numpy_hist::argmin_first(&mses).unwrap_or(0);
    Ok(centers[args[best]])
}

/// `_compute_amax_percentile`: `edges[searchsorted(cumsum(hist / total), percentile / 100)]`.
pub fn percentile_amax(hist: &[u64], edges: &[f64], percentile: f64) -> Result<f64> {
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    if !(0.0..=100.0).contains(&percentile) {
        return Err(QuantError::InvalidArgument {
            what: "percentile",
            detail: format!("{percentile}: must be in [0, 100]"),
        });
    }
    let cdf = numpy_hist::normalized_cumsum(hist);
    Ok(edges[numpy_hist::searchsorted_left(&cdf, percentile / 100.0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histc_follows_aten() {
        assert_eq!(torch_histc(&[0.0, 0.5, 1.0, 1.5], 2, 0.0, 1.0).unwrap(), vec![1, 2]);
        // all zeros: the range widens to [-1, 1] and zero lands in the middle bin
        assert_eq!(torch_histc(&[0.0; 3], 4, 0.0, 0.0).unwrap(), vec![0, 0, 3, 0]);
        assert!(torch_histc(&[1.0], 0, 0.0, 1.0).is_err());
    }

    #[test]
    fn linspace_counts_from_both_ends() {
        let e = torch_linspace_f32(0.0, 1.0, 5);
        assert_eq!(e, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let e = torch_linspace_f32(0.0, 0.3, 2049);
        assert_eq!(e[2048], 0.3);
        assert_eq!(e[0], 0.0);
    }

    #[test]
    fn torch_path_grows_by_whole_bins() {
        let mut h = HistogramCalibrator::new(AmaxMethod::PERCENTILE).with_bins(4);
        h.collect(&[0.1, -1.0, 0.6]).unwrap(); // |x|, edges 0, 0.25, .., 1
        h.collect(&[1.6, 0.3]).unwrap(); // w = 0.25: ceil(1.6 / 0.25) = 7 bins, edges arange(0, 1.85, 0.25)
        let (counts, edges) = h.histogram().unwrap();
        assert_eq!(edges, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]);
        // histc(x, 7, 0, 1.75) of [1.6, 0.3] plus the old [1, 0, 1, 1]
        assert_eq!(counts, vec![1, 1, 1, 1, 0, 0, 1]);
        assert_eq!(h.compute_amax(AmaxMethod::Percentile { percentile: 100.0 }).unwrap(), 1.5);
        // a batch inside the range keeps the bins
        h.collect(&[0.0]).unwrap();
        assert_eq!(h.histogram().unwrap().0, vec![2, 1, 1, 1, 0, 0, 1]);
    }

    #[test]
    fn max_calibrator_merges_exactly() {
        let mut a = MaxCalibrator::default();
        let mut b = MaxCalibrator::default();
        a.observe(&[1.0, -3.0]).unwrap();
        b.observe(&[2.5]).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a.range().unwrap(), Range { min: -3.0, max: 3.0 });
        assert!(MaxCalibrator::default().range().is_err());
        assert!(a.observe(&[f32::NAN]).is_err());
    }

    #[test]
    fn fake_quant_is_narrow_half_even() {
        // amax 127: scale 1, codes are the rounded values
        assert_eq!(fake_tensor_quant(2.5, 127.0, 8, Signedness::Signed).unwrap(), 2.0);
        assert_eq!(fake_tensor_quant(-300.0, 127.0, 8, Signedness::Signed).unwrap(), -127.0);
        assert_eq!(fake_tensor_quant(1.0, 0.0, 8, Signedness::Signed).unwrap(), 0.0);
    }

    #[test]
    fn entropy_prefers_the_last_minimum() {
        // a flat histogram: only the candidate that takes every bin has divergence 0
        let hist = vec![10u64; 256];
        let edges: Vec<f64> = (0..=256).map(|i| i as f64).collect();
        let amax = entropy_amax(&hist, &edges, 8, Signedness::Signed, 1, 128).unwrap();
        assert_eq!(amax, 256.0);
    }
}
