//! ONNX Runtime 1.32's `HistogramCollector` (`onnxruntime/quantization/calibrate.py`), the engine
//! behind its `entropy`, `percentile` and `distribution` calibrators, reproduced operation by
//! operation, with a streaming mode whose merge is exact.
//!
//! # What ONNX Runtime does
//!
//! `collect(name_to_arr)` flattens all the arrays it is given for a tensor into one float32
//! array (`np.asarray(list).flatten()`) and histograms it with numpy's rule
//! ([`super::numpy_hist`]):
//!
//! | method | histogram | first call | later calls |
//! |---|---|---|---|
//! | entropy, distribution, percentile with `symmetric=False` | `x` over `[-t, t]`, `t = max(|min x|, |max x|)` | `num_bins` bins | [`merge_value`]: re-bins the new data over a range grown by whole old-bin widths on both sides and adds the old counts by index |
//! | percentile with `symmetric=True` | `|x|` over numpy's default range `[min |x|, max |x|]` | `num_bins` bins | [`merge_absolute`]: appends edges of the old width (`np.arange`) up past the new maximum; values below the first edge are dropped |
//!
//! Both keep the float32 minimum and maximum of the raw values. `compute_collection_result`:
//!
//! * **entropy** ([`entropy_threshold`]): for `i` in `num_quantized_bins / 2 ..= num_bins / 2`,
//!   the slice `[zero - i, min(zero + i + 1, n))` around `zero = n / 2` is a candidate; `P` is the
//!   slice with the outside counts folded into its two end bins; `Q` merges the slice (without
//!   the outliers) into `num_quantized_bins` groups of `len / num_quantized_bins` bins (the
//!   remainder goes into the last group's total but is not expanded back, so `Q` is 0 there), and
//!   expands each group's total over the group's bins as an int64 (truncated) division by the
//!   number of non-zero bins of `P` in the group, writing it to every bin of the group;
//!   both are smoothed (`eps = 1e-4`, [`smooth_distribution`]) and compared with a float32 KL
//!   divergence ([`kl_divergence`]); the first minimum wins; its edges are clamped to the observed
//!   `[min, max]`. With the `EntropyCalibrater` defaults (`num_bins = num_quantized_bins = 128`)
//!   there is one candidate, the whole histogram, so the result is just `[min, max]`.
//! * **percentile** ([`percentile_range`], default 99.999, although the docstring says 99.99):
//!   `cdf = cumsum(hist / total)` in float64; symmetric: `t = edges[searchsorted(cdf, p / 100)]`
//!   and the range is `(-t, t)`; otherwise the two edges at `cut = (100 - p) / 200` and
//!   `1 - cut`. Then `lo = max(lo, min)`, `hi = min(hi, max)`: a symmetric result is not
//!   symmetric when the data are skewed, and a degenerate one can come out reversed.
//! * **distribution** ([`avg_std`]): average and standard deviation of the bin centres weighted
//!   by the counts (`scenario = "same"`), or of the signed cube roots of the centres (`"p3"`);
//!   ONNX Runtime requires `num_bins >= 512`.
//!
//! # Exactness
//!
//! Every step is reproduced in ONNX Runtime's precision (float32 where numpy computes in float32,
//! numpy's pairwise summation, its `searchsorted`, `arange` and float32 `//`). One operation is
//! not: numpy's float32 `np.log` is a SIMD approximation chosen by CPU (AVX-512F, AVX2, or the C
//! library), which differs from the correctly rounded logarithm in the last bit for about one
//! argument in four. We use the correctly rounded logarithm (`ln` in float64, rounded to
//! float32). The KL divergences of the entropy candidates can therefore differ from ONNX
//! Runtime's in their last bits, which changes the chosen threshold only when two candidates'
//! divergences tie within a few float32 ulps. Measured with numpy 2.4 on an AVX-512 machine
//! (where `np.log` is Intel's SVML `logf`): replacing it by the correctly rounded logarithm in
//! ONNX Runtime itself changed 1 threshold in 150 random 2048-bin entropy calibrations; none of
//! the 82 golden and extra cases is affected. A CPU-independent reproduction of numpy's
//! logarithm would need each of its dispatch targets (SVML on AVX-512, an FMA3 polynomial on
//! AVX2, the C library elsewhere).
//!
//! # Streaming and merging
//!
//! ONNX Runtime stores every intermediate output of every calibration batch and makes one
//! `collect` call at the end; that is what ran out of 256 GB on BERT (onnxruntime#10503). Two
//! modes here use memory bounded by the bins:
//!
//! * [`HistogramCollector::new`] (ONNX Runtime compatible): each `observe` is one `collect` call.
//!   With several calls the result depends on the order and split of the batches (the re-binning
//!   above), exactly as in ONNX Runtime, so `merge` is refused.
//! * [`HistogramCollector::streaming`] (exact streaming): a first pass ([`RangePass`], mergeable)
//!   finds the ranges; the second pass histograms over the bins that ONNX Runtime's single
//!   `collect` call would use for the same data, so its result equals that call's result, and
//!   partial histograms over these fixed bins merge exactly (counts add): "all batches in one
//!   `collect` call" is a [`RangePass`] over them, then this collector over them.
//!
//! # Degenerate inputs and non-finite values
//!
//! An empty tensor has min = max = 0 in ONNX Runtime; entropy and symmetric percentile then give
//! `(0, 0)`, non-symmetric percentile `(0, -0.5)` (reversed: the first edge of the widened range
//! `[-0.5, 0.5]` is clamped on one side only), and distribution gives NaN, which we report as
//! [`QuantError::EmptyInput`]. A constant tensor gives `(c, c)` for entropy. All of these are
//! in the extra golden vectors. ONNX Runtime ignores NaN in `min`/`max` and in the value
//! histogram but fails on infinities (and on NaN in the `|x|` histogram); here non-finite values
//! fail with [`QuantError::NonFinite`] unless the policy is [`NonFinitePolicy::Skip`], which drops
//! them (matching ONNX Runtime's handling of NaN in the value histogram).

// Negated comparisons (`!(a < b)`) are deliberate: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::numpy_hist::{self, CountKernel, ScalarType, UniformBins};
use super::{NonFinitePolicy, Observer, Range};
use crate::error::{QuantError, Result};
use crate::scheme::Symmetry;

/// The largest histogram the ONNX Runtime-compatible mode grows to (ONNX Runtime has no limit;
/// a first batch with a tiny range followed by a huge one would otherwise allocate without
/// bound).
pub const MAX_BINS: usize = 1 << 24;

/// The most bins the entropy search accepts: it tries `num_bins / 2 - num_quantized_bins / 2`
/// thresholds, each over up to `num_bins` bins, so its work grows with the square of the bins
/// (2^15 bins: ~2^29 bin visits, about a second; ONNX Runtime accepts more and takes hours).
pub const MAX_ENTROPY_BINS: usize = 1 << 15;

/// ONNX Runtime's `smooth_distribution` epsilon.
pub const SMOOTH_EPS: f64 = 1e-4;

/// The calibration method (`CalibrationMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Entropy,
    Percentile,
    Distribution,
}

impl Method {
    /// Parses ONNX Runtime's method name (`entropy`, `percentile`, `distribution`).
    pub fn parse(s: &str) -> Result<Method> {
        match s {
            "entropy" => Ok(Method::Entropy),
            "percentile" => Ok(Method::Percentile),
            "distribution" => Ok(Method::Distribution),
            _ => Err(QuantError::InvalidArgument {
                what: "calibration method",
                detail: format!("{s:?}: only 'entropy', 'percentile' or 'distribution' are supported"),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Entropy => "entropy",
            Method::Percentile => "percentile",
            Method::Distribution => "distribution",
        }
    }
}

/// The `distribution` method's scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Statistics of the values (`"same"`).
    Same,
    /// Statistics of the signed cube roots of the values (`"p3"`).
    P3,
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Scenario> {
        match s {
            "same" => Ok(Scenario::Same),
            "p3" => Ok(Scenario::P3),
            _ => {
                Err(QuantError::InvalidArgument { what: "scenario", detail: format!("{s:?}: must be 'same' or 'p3'") })
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Same => "same",
            Scenario::P3 => "p3",
        }
    }
}

/// The `HistogramCollector` configuration (the `calibrate` op's attributes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrateSpec {
    pub method: Method,
    pub symmetry: Symmetry,
    pub num_bins: usize,
    pub num_quantized_bins: usize,
    pub percentile: f64,
    pub scenario: Scenario,
}

impl CalibrateSpec {
    /// `create_calibrator(..., CalibrationMethod.Entropy)` defaults: 128 bins, 128 quantized
    /// bins, not symmetric.
    pub fn entropy() -> CalibrateSpec {
        CalibrateSpec {
            method: Method::Entropy,
            symmetry: Symmetry::Affine,
            num_bins: 128,
            num_quantized_bins: 128,
            percentile: 99.999,
            scenario: Scenario::Same,
        }
    }

    /// `create_calibrator(..., CalibrationMethod.Percentile)` defaults: 2048 bins, 99.999,
    /// symmetric.
    pub fn percentile() -> CalibrateSpec {
        CalibrateSpec {
            method: Method::Percentile,
            symmetry: Symmetry::Symmetric,
            num_bins: 2048,
            num_quantized_bins: 2048,
            percentile: 99.999,
            scenario: Scenario::Same,
        }
    }

    /// `create_calibrator(..., CalibrationMethod.Distribution)` defaults: 2048 bins, `"same"`.
    pub fn distribution() -> CalibrateSpec {
        CalibrateSpec {
            method: Method::Distribution,
            symmetry: Symmetry::Affine,
            num_bins: 2048,
            num_quantized_bins: 2048,
            percentile: 99.999,
            scenario: Scenario::Same,
        }
    }

    /// Checks what ONNX Runtime checks (at collect or compute time) before any data is seen.
    pub fn validate(&self) -> Result<()> {
        let limit = if self.method == Method::Entropy { MAX_ENTROPY_BINS } else { MAX_BINS };
        crate::error::check_count("num_bins", self.num_bins, limit)?;
        match self.method {
            Method::Entropy => {
                if self.num_quantized_bins == 0 {
                    return Err(QuantError::InvalidArgument {
                        what: "num_quantized_bins",
                        detail: "must be positive".into(),
                    });
                }
                if self.num_bins / 2 < self.num_quantized_bins / 2 {
                    return Err(QuantError::InvalidArgument {
                        what: "num_quantized_bins",
                        detail: format!(
                            "{} quantized bins leave no entropy candidate in {} bins (ONNX Runtime fails in argmin)",
                            self.num_quantized_bins, self.num_bins
                        ),
                    });
                }
            }
            Method::Percentile => {
                if !(0.0..=100.0).contains(&self.percentile) {
                    return Err(QuantError::InvalidArgument {
                        what: "percentile",
                        detail: format!("{}: must be in [0, 100]", self.percentile),
                    });
                }
            }
            Method::Distribution => {
                if self.num_bins < 512 {
                    return Err(QuantError::InvalidArgument {
                        what: "num_bins",
                        detail: format!("{}: the distribution method needs at least 512 bins", self.num_bins),
                    });
                }
            }
        }
        Ok(())
    }

    /// True when the histogram is of `|x|` (`collect_absolute_value`).
    pub fn absolute(&self) -> bool {
        self.method == Method::Percentile && self.symmetry.is_symmetric()
    }
}

/// What `compute_collection_result` returns for one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrateResult {
    /// Entropy and percentile: the clamped thresholds (not necessarily `min <= max`, see the
    /// module docs).
    Range { min: f32, max: f32 },
    /// Distribution: `avg`, `std`, and the histogram's outer edges (`TensorData.lowest/highest`,
    /// what ONNX Runtime's `range_value` returns).
    Distribution { avg: f32, std: f32, lowest: f32, highest: f32 },
}

/// One tensor's entry of ONNX Runtime's `histogram_dict`.
#[derive(Debug, Clone, PartialEq)]
pub enum OrtHistogram {
    /// `collect_value`: counts of `x` over `[-threshold, threshold]`.
    Value { hist: Vec<u64>, edges: Vec<f32>, min: f32, max: f32, threshold: f32 },
    /// `collect_absolute_value`: counts of `|x|` over `edges`.
    Absolute { hist: Vec<u64>, edges: Vec<f32>, min: f32, max: f32 },
}

impl OrtHistogram {
    pub fn hist(&self) -> &[u64] {
        match self {
            OrtHistogram::Value { hist, .. } | OrtHistogram::Absolute { hist, .. } => hist,
        }
    }

    pub fn edges(&self) -> &[f32] {
        match self {
            OrtHistogram::Value { edges, .. } | OrtHistogram::Absolute { edges, .. } => edges,
        }
    }

    /// The observed float32 minimum and maximum of the raw values.
    pub fn min_max(&self) -> (f32, f32) {
        match *self {
            OrtHistogram::Value { min, max, .. } | OrtHistogram::Absolute { min, max, .. } => (min, max),
        }
    }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
fn py_min(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's `max(a, b)`: `a` unless `b > a`.
fn py_max(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// `(np.nanmin(x), np.nanmax(x))`, or `(0, 0)` for an empty array (ONNX Runtime's convention).
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut it = x.iter().copied().filter(|v| !v.is_nan());
    match it.next() {
        None => (0.0, 0.0),
        Some(first) => {
            it.fold((first, first), |(lo, hi), v| (if v < lo { v } else { lo }, if v > hi { v } else { hi }))
        }
    }
}

fn check_bins(n: usize) -> Result<()> {
    if n > MAX_BINS {
        return Err(QuantError::InvalidArgument {
            what: "histogram growth",
            detail: format!("the histogram would grow to {n} bins (limit {MAX_BINS})"),
        });
    }
    Ok(())
}

fn counts_with(kernel: CountKernel, data: &[f32], bins: &UniformBins) -> Vec<u64> {
    let mut c = vec![0u64; bins.len()];
    kernel(data, bins, &mut c);
    c
}

/// `collect_value` for a tensor seen for the first time: `num_bins` bins over `[-t, t]`.
pub fn first_value(x: &[f32], num_bins: usize, kernel: CountKernel) -> Result<OrtHistogram> {
    let (min, max) = min_max(x);
    let threshold = py_max(min.abs(), max.abs());
    let bins = UniformBins::new(-threshold, threshold, num_bins)?;
    let hist = counts_with(kernel, x, &bins);
    Ok(OrtHistogram::Value { hist, edges: bins.edges().to_vec(), min, max, threshold })
}

/// `collect_value` for a tensor already seen (`merge_histogram`):
///
/// ```text
/// t' = max(|min x|, |max x|)
/// t' <= t:  histogram x over [-t, t] with the old bin count; add the old counts
/// t == 0:   histogram x over [-t', t'] with the old bin count; add the old counts
/// else:     stride = 2 t / n; h = int((t' - t) // stride + 1)        (float32)
///           t'' = h * stride + t; histogram x over [-t'', t''] with n + 2h bins and add the
///           old counts to bins h .. n + h (by index: the old bins are not re-binned)
/// ```
pub fn merge_value(old: &OrtHistogram, x: &[f32], kernel: CountKernel) -> Result<OrtHistogram> {
    let OrtHistogram::Value { hist: old_hist, edges: old_edges, min: old_min, max: old_max, threshold: old_t } = old
    else {
        return Err(QuantError::Unsupported { what: "merging a |x| histogram as a value histogram".into() });
    };
    let (new_min, new_max) = min_max(x);
    let new_t = py_max(new_min.abs(), new_max.abs());
    let n = old_hist.len();
    let (hist, edges, threshold) = if new_t <= *old_t {
        let bins = UniformBins::new(-*old_t, *old_t, n)?;
        let mut hist = counts_with(kernel, x, &bins);
        hist.iter_mut().zip(old_hist).for_each(|(h, o)| *h += o);
        (hist, old_edges.clone(), *old_t)
    } else if *old_t == 0.0 {
        let bins = UniformBins::new(-new_t, new_t, n)?;
        let mut hist = counts_with(kernel, x, &bins);
        hist.iter_mut().zip(old_hist).for_each(|(h, o)| *h += o);
        (hist, bins.edges().to_vec(), new_t)
    } else {
        let stride = 2.0 * *old_t / n as f32;
        let h = numpy_hist::floor_divide_f32(new_t - *old_t, stride) + 1.0;
        if !(h.is_finite() && (h as f64) <= MAX_BINS as f64) {
            return Err(QuantError::InvalidArgument {
                what: "histogram growth",
                detail: format!("range [-{old_t}, {old_t}] cannot grow to {new_t} within {MAX_BINS} bins"),
            });
        }
        let h = h as usize;
        let new_n = n + 2 * h;
        check_bins(new_n)?;
        let t = h as f32 * stride + *old_t;
        let bins = UniformBins::new(-t, t, new_n)?;
        let mut hist = counts_with(kernel, x, &bins);
        hist[h..new_n - h].iter_mut().zip(old_hist).for_each(|(v, o)| *v += o);
        (hist, bins.edges().to_vec(), t)
    };
    Ok(OrtHistogram::Value { hist, edges, min: py_min(*old_min, new_min), max: py_max(*old_max, new_max), threshold })
}

/// `collect_absolute_value` for a tensor seen for the first time: `np.histogram(|x|, num_bins)`
/// over numpy's default range `[min |x|, max |x|]` (`(0, 1)` for an empty tensor).
pub fn first_absolute(x: &[f32], num_bins: usize, kernel: CountKernel) -> Result<OrtHistogram> {
    let (min, max) = min_max(x);
    let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let bins = if abs.is_empty() {
        UniformBins::for_empty(num_bins)?
    } else {
        let (lo, hi) = min_max(&abs);
        UniformBins::new(lo, hi, num_bins)?
    };
    let hist = counts_with(kernel, &abs, &bins);
    Ok(OrtHistogram::Absolute { hist, edges: bins.edges().to_vec(), min, max })
}

/// `collect_absolute_value` for a tensor already seen:
///
/// ```text
/// a = max |x|                      (an empty batch fails here, as np.nanmax does)
/// if a > edges[-1]: edges = hstack(edges, np.arange(edges[-1] + w, a + w, w)), w = edges[1] - edges[0]
/// hist = np.histogram(|x|, bins=edges)       (explicit edges: |x| < edges[0] is dropped)
/// hist[:len(old)] += old; edges = edges as float32
/// ```
pub fn merge_absolute(old: &OrtHistogram, x: &[f32]) -> Result<OrtHistogram> {
    let OrtHistogram::Absolute { hist: old_hist, edges: old_edges, min: old_min, max: old_max } = old else {
        return Err(QuantError::Unsupported { what: "merging a value histogram as a |x| histogram".into() });
    };
    if x.is_empty() {
        return Err(QuantError::EmptyInput { what: "batch (ONNX Runtime's np.nanmax of a later empty batch fails)" });
    }
    let (new_min, new_max) = min_max(x);
    let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let (_, amax) = min_max(&abs);
    let mut edges: Vec<f64> = old_edges.iter().map(|&e| e as f64).collect();
    if let Some(&last) = old_edges.last() {
        if amax > last {
            edges = numpy_hist::grow_edges(&edges, amax as f64, ScalarType::F32)?;
            check_bins(edges.len())?;
        }
    }
    let mut hist = numpy_hist::counts_explicit(&abs, &edges)?;
    hist.iter_mut().zip(old_hist).for_each(|(h, o)| *h += o);
    Ok(OrtHistogram::Absolute {
        hist,
        edges: edges.into_iter().map(|e| e as f32).collect(),
        min: py_min(*old_min, new_min),
        max: py_max(*old_max, new_max),
    })
}

/// ONNX Runtime's `smooth_distribution(p, eps=1e-4)` (`quant_utils.py`): zero bins get `eps`,
/// non-zero bins lose `eps1 = eps * n_zeros / n_nonzeros`, in float32:
///
/// ```text
/// eps1 = 1e-4 * n_zeros / n_nonzeros                 (float64; must be < 1, else AssertionError)
/// out[i] = f32(p[i]) + (p[i] == 0 ? f32(1e-4) : f32(-eps1))   (float32)
/// ```
///
/// `None` when every bin is zero (ONNX Runtime returns `None`); an error where ONNX Runtime's
/// assertions fail.
pub fn smooth_distribution(p: &[u64]) -> Result<Option<Vec<f32>>> {
    let n_zeros = p.iter().filter(|&&c| c == 0).count() as f32;
    let n_nonzeros = p.len() as f32 - n_zeros;
    if n_nonzeros == 0.0 {
        return Ok(None);
    }
    let eps1 = SMOOTH_EPS * n_zeros as f64 / n_nonzeros as f64;
    if !(eps1 < 1.0) {
        return Err(QuantError::InvalidArgument {
            what: "smooth_distribution",
            detail: format!("n_zeros={n_zeros}, n_nonzeros={n_nonzeros}, eps1={eps1} (ONNX Runtime asserts eps1 < 1)"),
        });
    }
    let eps = SMOOTH_EPS as f32;
    let neg_eps1 = (-eps1) as f32;
    let out: Vec<f32> = p.iter().map(|&c| c as f32 + if c == 0 { eps } else { neg_eps1 }).collect();
    if out.iter().any(|&v| !(v > 0.0)) {
        return Err(QuantError::InvalidArgument {
            what: "smooth_distribution",
            detail: "a smoothed bin is not positive (ONNX Runtime asserts)".into(),
        });
    }
    Ok(Some(out))
}

/// ONNX Runtime's `entropy(pk, qk)` (its scipy replacement), in float32:
///
/// ```text
/// pk = pk / sum(pk); qk = qk / sum(qk)                       (numpy pairwise float32 sums)
/// term = pk > 0 and qk > 0 ? pk * ln(pk / qk) : +inf         (its rel_entr marks every
///                                                              other case infinite)
/// KL = sum(term)                                             (pairwise float32)
/// ```
///
/// `ln` is the correctly rounded float32 logarithm (see the module docs on numpy's `np.log`).
pub fn kl_divergence(p: &[f32], q: &[f32]) -> f32 {
    let sp = numpy_hist::pairwise_sum_f32(p);
    let sq = numpy_hist::pairwise_sum_f32(q);
    let terms: Vec<f32> = p
        .iter()
        .zip(q)
        .map(|(&pv, &qv)| {
            let (pk, qk) = (pv / sp, qv / sq);
            if pk > 0.0 && qk > 0.0 {
                pk * ln_f32(pk / qk)
            } else {
                f32::INFINITY
            }
        })
        .collect();
    numpy_hist::pairwise_sum_f32(&terms)
}

/// The correctly rounded float32 natural logarithm.
fn ln_f32(x: f32) -> f32 {
    (x as f64).ln() as f32
}

/// `HistogramCollector.get_entropy_threshold` (see the module docs), returning the clamped
/// thresholds. `edges.len()` must be `hist.len() + 1`.
pub fn entropy_threshold(
    hist: &[u64],
    edges: &[f32],
    num_quantized_bins: usize,
    min: f32,
    max: f32,
) -> Result<(f32, f32)> {
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    if num_quantized_bins == 0 {
        return Err(QuantError::InvalidArgument { what: "num_quantized_bins", detail: "must be positive".into() });
    }
    let n = hist.len();
    let zero = n / 2;
    let half = num_quantized_bins / 2;
    if n == 0 || zero < half {
        return Err(QuantError::InvalidArgument {
            what: "num_quantized_bins",
            detail: format!("{num_quantized_bins} quantized bins leave no entropy candidate in {n} bins"),
        });
    }
    // prefix[k] = sum(hist[..k]): the outlier counts of every candidate.
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0u64);
    for &c in hist {
        prefix.push(prefix[prefix.len() - 1] + c);
    }
    let total = prefix[n];
    let mut divergences = Vec::with_capacity(zero - half + 1);
    let mut thresholds = Vec::with_capacity(zero - half + 1);
    for i in half..=zero {
        let start = zero - i;
        let end = (zero + i + 1).min(n);
        thresholds.push((edges[start], edges[end]));
        let sliced = &hist[start..end];

        // reference distribution p: the slice with the outliers folded into its end bins
        let mut p = sliced.to_vec();
        let last = p.len() - 1;
        p[0] += prefix[start];
        p[last] += total - prefix[end];

        // candidate q: merge the slice into groups, expand over the non-zero bins of p
        let merged = sliced.len() / num_quantized_bins;
        let mut groups: Vec<u64> =
            (0..num_quantized_bins).map(|k| sliced[k * merged..k * merged + merged].iter().sum()).collect();
        groups[num_quantized_bins - 1] += sliced[num_quantized_bins * merged..].iter().sum::<u64>();
        let mut q = vec![0u64; p.len()];
        for (k, &g) in groups.iter().enumerate() {
            let (s, e) = (k * merged, k * merged + merged);
            let norm = p[s..e].iter().filter(|&&c| c != 0).count();
            if norm != 0 {
                // int64 array slot = float64 true division, truncated
                let v = (g as f64 / norm as f64) as u64;
                q[s..e].iter_mut().for_each(|x| *x = v);
            }
        }

        let ps = smooth_distribution(&p)?;
        let qs = smooth_distribution(&q)?;
        let div = match (ps, qs) {
            (Some(ps), Some(qs)) => kl_divergence(&ps, &qs),
            _ => f32::INFINITY,
        };
        divergences.push(div as f64);
    }
    let best = numpy_hist::argmin_first(&divergences).unwrap_or(0);
    let (mut lo, mut hi) = thresholds[best];
    if lo < min {
        lo = min;
    }
    if hi > max {
        hi = max;
    }
    Ok((lo, hi))
}

/// `HistogramCollector.compute_percentile` for one histogram (see the module docs).
pub fn percentile_range(
    hist: &[u64],
    edges: &[f32],
    percentile: f64,
    symmetry: Symmetry,
    min: f32,
    max: f32,
) -> Result<(f32, f32)> {
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    if !(0.0..=100.0).contains(&percentile) {
        return Err(QuantError::InvalidArgument {
            what: "percentile",
            detail: format!("{percentile}: must be in [0, 100]"),
        });
    }
    let cdf = numpy_hist::normalized_cumsum(hist);
    let (mut lo, mut hi) = if symmetry.is_symmetric() {
        let t = edges[numpy_hist::searchsorted_left(&cdf, percentile / 100.0)];
        (-t, t)
    } else {
        let cut = (100.0 - percentile) / 200.0;
        let right = numpy_hist::searchsorted_left(&cdf, 1.0 - cut);
        let left = numpy_hist::searchsorted_left(&cdf, cut);
        (edges[left], edges[right])
    };
    if lo < min {
        lo = min;
    }
    if hi > max {
        hi = max;
    }
    Ok((lo, hi))
}

/// `HistogramCollector._avg_std` for `power = 1` (`Same`) or `1/3` (`P3`):
///
/// ```text
/// v = (edges[:-1] + edges[1:]) * 0.5                         (float32)
/// P3: v = |v| ** f32(1/3) * sign(v), sign(0) = 1            (float32)
/// avg = sum(hist * v) / sum(hist)                            (float64, pairwise sum)
/// std = sqrt(sum(hist * f32(v * v)) / sum(hist) - avg^2)     (float64)
/// return (f32(avg), f32(std))
/// ```
///
/// An empty histogram gives NaN (0 / 0), as in ONNX Runtime.
pub fn avg_std(hist: &[u64], edges: &[f32], scenario: Scenario) -> Result<(f32, f32)> {
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    let power = (1.0f64 / 3.0) as f32;
    let values: Vec<f32> = edges
        .windows(2)
        .map(|w| {
            let v = (w[0] + w[1]) * 0.5;
            match scenario {
                Scenario::Same => v,
                Scenario::P3 => {
                    let fact = if v == 0.0 { 1.0 } else { v.abs() / v };
                    ((v.abs() as f64).powf(power as f64) as f32) * fact
                }
            }
        })
        .collect();
    let total = hist.iter().map(|&c| c as u128).sum::<u128>() as f64;
    let first: Vec<f64> = hist.iter().zip(&values).map(|(&c, &v)| c as f64 * v as f64).collect();
    let second: Vec<f64> = hist.iter().zip(&values).map(|(&c, &v)| c as f64 * (v * v) as f64).collect();
    let avg = numpy_hist::pairwise_sum_f64(&first) / total;
    let var = numpy_hist::pairwise_sum_f64(&second) / total - avg * avg;
    Ok((avg as f32, var.sqrt() as f32))
}

/// `compute_collection_result` for one tensor's histogram.
pub fn compute(spec: &CalibrateSpec, histogram: &OrtHistogram) -> Result<CalibrateResult> {
    spec.validate()?;
    let (hist, edges) = (histogram.hist(), histogram.edges());
    let (min, max) = histogram.min_max();
    match spec.method {
        Method::Entropy => {
            let (lo, hi) = entropy_threshold(hist, edges, spec.num_quantized_bins, min, max)?;
            Ok(CalibrateResult::Range { min: lo, max: hi })
        }
        Method::Percentile => {
            let (lo, hi) = percentile_range(hist, edges, spec.percentile, spec.symmetry, min, max)?;
            Ok(CalibrateResult::Range { min: lo, max: hi })
        }
        Method::Distribution => {
            if hist.iter().all(|&c| c == 0) {
                return Err(QuantError::EmptyInput { what: "distribution calibration data (ONNX Runtime gives NaN)" });
            }
            let (avg, std) = avg_std(hist, edges, spec.scenario)?;
            let lowest = edges.iter().copied().fold(f32::INFINITY, f32::min);
            let highest = edges.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            Ok(CalibrateResult::Distribution { avg, std, lowest, highest })
        }
    }
}

/// The first pass of the exact streaming mode: count, min, max, min |x|, max |x| of every
/// finite value (after the non-finite policy). Mergeable exactly (in any order: the result is
/// a set function of the values, up to the sign of a zero minimum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangePass {
    count: u64,
    min: f32,
    max: f32,
    abs_min: f32,
    abs_max: f32,
    policy: NonFinitePolicy,
}

impl Default for RangePass {
    fn default() -> Self {
        RangePass::new(NonFinitePolicy::Error)
    }
}

impl RangePass {
    pub fn new(policy: NonFinitePolicy) -> RangePass {
        RangePass {
            count: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            abs_min: f32::INFINITY,
            abs_max: f32::NEG_INFINITY,
            policy,
        }
    }

    /// Number of values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `(min, max)`, `(0, 0)` when nothing was seen (ONNX Runtime's convention).
    pub fn min_max(&self) -> (f32, f32) {
        if self.count == 0 {
            (0.0, 0.0)
        } else {
            (self.min, self.max)
        }
    }

    /// `(min |x|, max |x|)`, `None` when nothing was seen.
    pub fn abs_range(&self) -> Option<(f32, f32)> {
        (self.count > 0).then_some((self.abs_min, self.abs_max))
    }
}

impl Observer for RangePass {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        for &v in x.iter() {
            self.min = py_min(self.min, v);
            self.max = py_max(self.max, v);
            self.abs_min = py_min(self.abs_min, v.abs());
            self.abs_max = py_max(self.abs_max, v.abs());
        }
        self.count += x.len() as u64;
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.min = py_min(self.min, other.min);
        self.max = py_max(self.max, other.max);
        self.abs_min = py_min(self.abs_min, other.abs_min);
        self.abs_max = py_max(self.abs_max, other.abs_max);
        self.count += other.count;
        Ok(())
    }

    fn range(&self) -> Result<Range> {
        let (lo, hi) = self.min_max();
        Range::new(lo, hi)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Each observe is one ONNX Runtime `collect` call.
    OrtCompatible,
    /// Fixed bins from a first pass; `seen` counts the values of the second pass.
    Streaming { bins: UniformBins, threshold: f32, hist: Vec<u64>, min: f32, max: f32, seen: u64 },
}

/// ONNX Runtime's `HistogramCollector` for one tensor, in one of two modes (module docs).
#[derive(Debug, Clone)]
pub struct HistogramCollector {
    spec: CalibrateSpec,
    policy: NonFinitePolicy,
    kernel: CountKernel,
    mode: Mode,
    state: Option<OrtHistogram>,
}

impl HistogramCollector {
    /// The ONNX Runtime-compatible collector: every [`Observer::observe`] is one `collect` call.
    pub fn new(spec: CalibrateSpec) -> Result<HistogramCollector> {
        spec.validate()?;
        Ok(HistogramCollector {
            spec,
            policy: NonFinitePolicy::Error,
            kernel: numpy_hist::accumulate,
            mode: Mode::OrtCompatible,
            state: None,
        })
    }

    /// The exact streaming collector: the bins that ONNX Runtime's single `collect` call would
    /// build for the data the first pass saw (`num_bins` bins over `[-t, t]`, or over
    /// `[min |x|, max |x|]` for symmetric percentile). Its result equals that call's result when
    /// the second pass sees the same data; a value outside the bins is an error (the first pass
    /// did not see it).
    pub fn streaming(spec: CalibrateSpec, first_pass: &RangePass) -> Result<HistogramCollector> {
        spec.validate()?;
        let (bins, threshold) = if spec.absolute() {
            match first_pass.abs_range() {
                None => (UniformBins::for_empty(spec.num_bins)?, 0.0),
                Some((lo, hi)) => (UniformBins::new(lo, hi, spec.num_bins)?, 0.0),
            }
        } else {
            let (lo, hi) = first_pass.min_max();
            let t = py_max(lo.abs(), hi.abs());
            (UniformBins::new(-t, t, spec.num_bins)?, t)
        };
        let hist = vec![0u64; bins.len()];
        Ok(HistogramCollector {
            spec,
            policy: first_pass.policy,
            kernel: numpy_hist::accumulate,
            mode: Mode::Streaming { bins, threshold, hist, min: f32::INFINITY, max: f32::NEG_INFINITY, seen: 0 },
            state: None,
        })
    }

    /// Sets the non-finite policy (the default is [`NonFinitePolicy::Error`]).
    pub fn with_policy(mut self, policy: NonFinitePolicy) -> HistogramCollector {
        self.policy = policy;
        self
    }

    /// Replaces the bin-count builder (a fast kernel proven equal to [`numpy_hist::accumulate`]).
    pub fn with_kernel(mut self, kernel: CountKernel) -> HistogramCollector {
        self.kernel = kernel;
        self
    }

    pub fn spec(&self) -> &CalibrateSpec {
        &self.spec
    }

    /// One `collect` call with a list of arrays, which ONNX Runtime flattens into one array
    /// first (`np.asarray(list)`, which raises for arrays of different lengths: so does this).
    /// In the streaming mode this is the same as observing each array.
    pub fn collect_list(&mut self, batches: &[&[f32]]) -> Result<()> {
        check_same_lengths(batches)?;
        match self.mode {
            Mode::OrtCompatible => {
                let all: Vec<f32> = batches.iter().flat_map(|b| b.iter().copied()).collect();
                self.observe(&all)
            }
            Mode::Streaming { .. } => batches.iter().try_for_each(|b| self.observe(b)),
        }
    }

    /// The histogram as ONNX Runtime would hold it in `histogram_dict` (`None` before any data in
    /// the compatible mode).
    pub fn histogram(&self) -> Option<OrtHistogram> {
        match &self.mode {
            Mode::OrtCompatible => self.state.clone(),
            Mode::Streaming { bins, threshold, hist, min, max, seen } => {
                let (min, max) = if *seen == 0 { (0.0, 0.0) } else { (*min, *max) };
                let edges = bins.edges().to_vec();
                Some(if self.spec.absolute() {
                    OrtHistogram::Absolute { hist: hist.clone(), edges, min, max }
                } else {
                    OrtHistogram::Value { hist: hist.clone(), edges, min, max, threshold: *threshold }
                })
            }
        }
    }

    /// `compute_collection_result` (fails, as ONNX Runtime does, when nothing was collected).
    pub fn result(&self) -> Result<CalibrateResult> {
        match self.histogram() {
            None => Err(QuantError::EmptyInput { what: "histogram (collect() was never called)" }),
            Some(h) => compute(&self.spec, &h),
        }
    }

    /// Heap memory held: the bins and edges, independent of how much data was observed.
    pub fn heap_bytes(&self) -> usize {
        let state = self.state.as_ref().map_or(0, |h| h.hist().len() * 8 + h.edges().len() * 4);
        let mode = match &self.mode {
            Mode::OrtCompatible => 0,
            Mode::Streaming { bins, hist, .. } => hist.len() * 8 + bins.edges().len() * 4,
        };
        state + mode
    }
}

impl Observer for HistogramCollector {
    /// One ONNX Runtime `collect` call with `x` (compatible mode), or adds `x` to the fixed bins
    /// (streaming mode).
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        let kernel = self.kernel;
        match &mut self.mode {
            Mode::OrtCompatible => {
                let next = match (&self.state, self.spec.absolute()) {
                    (None, false) => first_value(&x, self.spec.num_bins, kernel)?,
                    (None, true) => first_absolute(&x, self.spec.num_bins, kernel)?,
                    (Some(old), false) => merge_value(old, &x, kernel)?,
                    (Some(old), true) => merge_absolute(old, &x)?,
                };
                self.state = Some(next);
            }
            Mode::Streaming { bins, hist, min, max, seen, .. } => {
                let absolute = self.spec.absolute();
                let value = |v: f32| if absolute { v.abs() } else { v };
                if let Some(&v) = x.iter().find(|&&v| !(value(v) >= bins.first() && value(v) <= bins.last())) {
                    return Err(QuantError::InvalidArgument {
                        what: "streaming calibration",
                        detail: format!(
                            "{v} lies outside the range [{}, {}] fixed by the first pass",
                            bins.first(),
                            bins.last()
                        ),
                    });
                }
                if absolute {
                    let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
                    kernel(&abs, bins, hist);
                } else {
                    kernel(&x, bins, hist);
                }
                if !x.is_empty() {
                    let (lo, hi) = min_max(&x);
                    *min = py_min(*min, lo);
                    *max = py_max(*max, hi);
                    *seen += x.len() as u64;
                }
            }
        }
        Ok(())
    }

    /// Exact in the streaming mode (same spec and bins: counts add, min and max combine);
    /// refused in the compatible mode, where ONNX Runtime's re-binning depends on the order and
    /// split of the batches.
    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.spec != other.spec {
            return Err(QuantError::Unsupported { what: "merging collectors with different specs".into() });
        }
        match (&mut self.mode, &other.mode) {
            (
                Mode::Streaming { bins, hist, min, max, seen, .. },
                Mode::Streaming { bins: ob, hist: oh, min: omin, max: omax, seen: oseen, .. },
            ) => {
                if bins != ob {
                    return Err(QuantError::Unsupported {
                        what: "merging streaming collectors whose first passes differ".into(),
                    });
                }
                hist.iter_mut().zip(oh).for_each(|(h, o)| *h += o);
                *min = py_min(*min, *omin);
                *max = py_max(*max, *omax);
                *seen += oseen;
                Ok(())
            }
            _ => Err(QuantError::Unsupported {
                what: "merging ONNX Runtime-compatible histogram collectors: ONNX Runtime re-bins each collect() call over a range grown from the previous one, so the result depends on the order and split of the batches; use HistogramCollector::streaming".into(),
            }),
        }
    }

    /// The calibrated range: the thresholds for entropy and percentile (an error if ONNX Runtime's
    /// clamping reversed them), `(lowest, highest)` edges for distribution (ONNX Runtime's
    /// `TensorData.range_value`).
    fn range(&self) -> Result<Range> {
        match self.result()? {
            CalibrateResult::Range { min, max } => Range::new(min, max),
            CalibrateResult::Distribution { lowest, highest, .. } => Range::new(lowest, highest),
        }
    }
}

/// ONNX Runtime's `np.asarray(list_of_arrays)` needs arrays of one shape: the check every
/// "one `collect` call with a list of arrays" makes first.
pub fn check_same_lengths(batches: &[&[f32]]) -> Result<()> {
    if let Some(first) = batches.first() {
        if let Some(b) = batches.iter().find(|b| b.len() != first.len()) {
            return Err(QuantError::LengthMismatch {
                what: "batches of one collect() call (ONNX Runtime's np.asarray of a ragged list raises)",
                expected: first.len(),
                got: b.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_follows_ort() {
        assert_eq!(smooth_distribution(&[0, 0]).unwrap(), None);
        let s = smooth_distribution(&[0, 4, 0, 1]).unwrap().unwrap();
        let eps1 = (-(1e-4 * 2.0 / 2.0f64)) as f32;
        assert_eq!(s, vec![1e-4f32, 4.0 + eps1, 1e-4, 1.0 + eps1]);
        // eps1 >= 1: ONNX Runtime's assertion
        let mut p = vec![0u64; 20001];
        p[0] = 1;
        assert!(smooth_distribution(&p).is_err());
    }

    #[test]
    fn default_entropy_collapses_to_min_max() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 40.0) * 0.25).collect();
        let mut c = HistogramCollector::new(CalibrateSpec::entropy()).unwrap();
        c.observe(&x).unwrap();
        let (lo, hi) = min_max(&x);
        assert_eq!(c.result().unwrap(), CalibrateResult::Range { min: lo, max: hi });
    }

    #[test]
    fn degenerate_inputs_have_ort_results() {
        let run = |spec: CalibrateSpec, x: &[f32]| {
            let mut first = RangePass::new(NonFinitePolicy::Error);
            first.observe(x)?;
            let mut c = HistogramCollector::streaming(spec, &first)?;
            c.observe(x)?;
            c.result()
        };
        let entropy = CalibrateSpec::entropy();
        let mut pct = CalibrateSpec::percentile();
        pct.num_bins = 128;
        let mut pct_asym = pct;
        pct_asym.symmetry = Symmetry::Affine;
        assert_eq!(run(entropy, &[]).unwrap(), CalibrateResult::Range { min: 0.0, max: 0.0 });
        assert_eq!(run(entropy, &[3.0; 10]).unwrap(), CalibrateResult::Range { min: 3.0, max: 3.0 });
        assert_eq!(run(pct, &[]).unwrap(), CalibrateResult::Range { min: -0.0, max: 0.0 });
        assert_eq!(run(pct_asym, &[]).unwrap(), CalibrateResult::Range { min: 0.0, max: -0.5 });
        assert_eq!(run(pct_asym, &[3.0; 10]).unwrap(), CalibrateResult::Range { min: 3.0, max: 2.953125 });
        assert_eq!(run(pct, &[-3.0; 10]).unwrap(), CalibrateResult::Range { min: -3.0, max: -3.0 });
        assert!(matches!(run(CalibrateSpec::distribution(), &[]), Err(QuantError::EmptyInput { .. })));
        // near-constant |x|: numpy cannot make 2048 bins
        let mut pct2048 = CalibrateSpec::percentile();
        pct2048.num_bins = 2048;
        assert!(run(pct2048, &[1.0, 1.0000001]).is_err());
    }

    #[test]
    fn non_finite_policy() {
        let x = [1.0, f32::NAN, -2.0, f32::INFINITY];
        let mut c = HistogramCollector::new(CalibrateSpec::entropy()).unwrap();
        assert!(matches!(c.observe(&x), Err(QuantError::NonFinite { index: 1, .. })));
        let mut c = HistogramCollector::new(CalibrateSpec::entropy()).unwrap().with_policy(NonFinitePolicy::Skip);
        c.observe(&x).unwrap();
        assert_eq!(c.result().unwrap(), CalibrateResult::Range { min: -2.0, max: 1.0 });
    }

    #[test]
    fn entropy_threshold_rejects_what_has_no_candidate() {
        assert!(entropy_threshold(&[], &[0.0], 1, 0.0, 0.0).is_err());
        assert!(entropy_threshold(&[1, 2], &[0.0, 1.0, 2.0], 4, 0.0, 2.0).is_err());
        assert!(entropy_threshold(&[1, 2], &[0.0, 1.0], 1, 0.0, 2.0).is_err());
        assert!(entropy_threshold(&[5], &[-1.0, 1.0], 1, -0.5, 0.5).is_ok());
    }

    #[test]
    fn compatible_mode_refuses_to_merge() {
        let mut a = HistogramCollector::new(CalibrateSpec::entropy()).unwrap();
        let b = a.clone();
        a.observe(&[1.0]).unwrap();
        assert!(matches!(a.merge(&b), Err(QuantError::Unsupported { .. })));
    }
}
