//! Where quantization error comes from (seed 001): rounding inside the range, clipping outside it,
//! and levels wasted by a range wider than the data.
//!
//! For one element with parameters `s, z` the representable interval is
//! `[lo, hi] = [(qmin - z) s, (qmax - z) s]`. Its error `e = x - x^` splits exactly into
//!
//! * the **clip error** `c = x - clamp(x, lo, hi)` (zero inside the interval), and
//! * the **round error** `r = clamp(x, lo, hi) - x^` (at most `s / 2` under round-to-nearest,
//!   up to float slack: [`round_error_bound`]).
//!
//! Since `c != 0` only where `x` is clipped, and there `x^` is the end point itself so `r = 0`,
//! the mean squared errors add: `mse = round_mse + clip_mse`. [`analyze`] computes them all in
//! f64, with the signal-to-quantization-noise ratio `sqnr = 10 log10(sum x^2 / sum e^2)` dB,
//! effective bits `(sqnr - 1.76) / 6.02` (the uniform-noise rule `6.02 b + 1.76` solved for `b`)
//! and *level utilization*: distinct codes used over codes available.
//!
//! ## The theory the tests prove
//!
//! Uniform noise of a step `s` has power `s^2 / 12`. A signal uniform over the full range of
//! `2^b` steps has variance `(2^b s)^2 / 12`, so its SQNR against the variance
//! ([`ErrorStats::sqnr_ac_db`]) is `20 log10(2^b) = 6.02 b` dB; a full-scale sine has power
//! `(2^b s)^2 / 8`, which adds `10 log10(3/2) = 1.76` dB. `analyze`'s `sqnr_db` uses the total
//! power `mean(x^2)`, which also counts the signal's mean: a mid-tread signed range is centred on
//! `-s/2`, so full-range uniform data gives `10 log10(2^2b + 3)` there. A range `k` times wider
//! than the data leaves `log2 k` of the `b` bits unused ([`LevelUsage::unused_bits`],
//! [`predicted_unused_bits`]) and costs `6.02 log2 k` dB: the seed's "a too-wide range loses 1-2
//! bits".
//!
//! ## What to call
//!
//! | question | function |
//! |---|---|
//! | how large is the error, and is it rounding or clipping? | [`analyze`] |
//! | which channel suffers? | [`analyze_per_channel`] |
//! | per-tensor or per-channel for this tensor? | [`compare_granularity`] |
//! | which calibrated range is best? | [`compare_ranges`], [`compare`] |
//! | how many codes does the data really use? | [`level_usage`] |
//! | what does each bit width cost? | [`bit_sweep`] |
//!
//! Every function validates its input and returns a typed error: NaN or infinite data (error
//! statistics of an infinite value mean nothing), invalid parameters, shape mismatches.

use std::ops::RangeInclusive;

use crate::calibrate::Range;
use crate::error::{check_finite, check_len, QuantError, Result};
use crate::profile::{min_max, Profile, QParamsRequest};
use crate::quant_params::{ParamLayout, QuantParams};
use crate::quantize::{dequantize_value, quantize_codes, QuantizeRule};
use crate::scheme::{Axis, CodeRange, QType};

/// Error statistics of quantizing one tensor (or one channel of it).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorStats {
    pub count: usize,
    /// Mean of `(x - x^)^2`.
    pub mse: f64,
    /// Mean of the squared round error (over all elements).
    pub round_mse: f64,
    /// Mean of the squared clip error (over all elements).
    pub clip_mse: f64,
    /// Largest `|x - x^|`.
    pub max_abs_error: f64,
    /// Largest round error relative to its element's step `s` (0.5 means exactly half a step).
    pub max_round_error_steps: f64,
    /// Fraction of elements outside the representable interval.
    pub clipped_fraction: f64,
    /// `10 log10(sum x^2 / sum e^2)`; infinite when there is no error.
    pub sqnr_db: f64,
    /// `(sqnr_db - 1.76) / 6.02`.
    pub effective_bits: f64,
    /// Distinct codes produced.
    pub codes_used: u64,
    /// Codes in `[qmin, qmax]`.
    pub codes_available: u64,
    /// `codes_used / codes_available`.
    pub level_utilization: f64,
    /// Mean of `x`.
    pub signal_mean: f64,
    /// `10 log10(var(x) / mse)`: the SQNR against the signal's variance (its mean removed), the
    /// quantity the `6.02 b (+ 1.76)` dB rules are about.
    pub sqnr_ac_db: f64,
}

/// A bit set over the `levels` codes of a range.
#[derive(Debug, Clone)]
struct CodeSet {
    words: Vec<u64>,
    count: u64,
}

impl CodeSet {
    fn new(levels: u64) -> CodeSet {
        CodeSet { words: vec![0; levels.div_ceil(64) as usize], count: 0 }
    }

    fn insert(&mut self, k: usize) {
        let (w, b) = (k / 64, k % 64);
        if self.words[w] & (1 << b) == 0 {
            self.words[w] |= 1 << b;
            self.count += 1;
        }
    }
}

/// Running sums for [`ErrorStats`].
#[derive(Debug, Clone)]
struct Accumulator {
    count: usize,
    se: f64,
    se_round: f64,
    se_clip: f64,
    signal_sq: f64,
    signal_sum: f64,
    max_abs: f64,
    max_steps: f64,
    clipped: usize,
    used: CodeSet,
    levels: u64,
}

impl Accumulator {
    fn new(range: CodeRange) -> Accumulator {
        Accumulator {
            count: 0,
            se: 0.0,
            se_round: 0.0,
            se_clip: 0.0,
            signal_sq: 0.0,
            signal_sum: 0.0,
            max_abs: 0.0,
            max_steps: 0.0,
            clipped: 0,
            used: CodeSet::new(range.levels()),
            levels: range.levels(),
        }
    }

    /// Adds element `x` quantized to code `q` (in `range`) under `s`, `z`.
    fn push(&mut self, x: f32, q: i32, s: f32, z: i32, range: CodeRange) {
        self.used.insert((q - range.qmin()) as usize);
        let xh = dequantize_value(q, s, z) as f64;
        let lo = dequantize_value(range.qmin(), s, z) as f64;
        let hi = dequantize_value(range.qmax(), s, z) as f64;
        let xd = x as f64;
        let inside = xd.clamp(lo, hi);
        let (c, r) = (xd - inside, inside - xh);
        if c != 0.0 {
            self.clipped += 1;
        }
        let e = xd - xh;
        self.count += 1;
        self.se += e * e;
        self.se_round += r * r;
        self.se_clip += c * c;
        self.signal_sq += xd * xd;
        self.signal_sum += xd;
        self.max_abs = self.max_abs.max(e.abs());
        self.max_steps = self.max_steps.max(r.abs() / s as f64);
    }

    fn finish(&self) -> ErrorStats {
        let n = self.count.max(1) as f64;
        let db = |p: f64| if self.se == 0.0 { f64::INFINITY } else { 10.0 * (p / self.se).log10() };
        let sqnr_db = db(self.signal_sq);
        let mean = self.signal_sum / n;
        // n var(x) = sum x^2 - n mean^2 (clamped against rounding below zero).
        let sqnr_ac_db = db((self.signal_sq - n * mean * mean).max(0.0));
        ErrorStats {
            count: self.count,
            mse: self.se / n,
            round_mse: self.se_round / n,
            clip_mse: self.se_clip / n,
            max_abs_error: self.max_abs,
            max_round_error_steps: self.max_steps,
            clipped_fraction: self.clipped as f64 / n,
            sqnr_db,
            effective_bits: (sqnr_db - 1.76) / 6.02,
            codes_used: self.used.count,
            codes_available: self.levels,
            level_utilization: self.used.count as f64 / self.levels as f64,
            signal_mean: mean,
            sqnr_ac_db,
        }
    }
}

/// Checks `x` is finite and quantizes it to codes ([`quantize_codes`]), returning the codes and
/// the parameter layout.
fn codes_of(x: &[f32], shape: &[usize], params: &QuantParams, rule: QuantizeRule) -> Result<(Vec<i32>, ParamLayout)> {
    check_finite("x", x)?;
    let mut codes = vec![0i32; x.len()];
    quantize_codes(x, shape, params, rule, &mut codes)?;
    Ok((codes, params.layout(shape, x.len())?))
}

/// Quantizes `x` under `params` and `rule` ([`quantize_codes`]), dequantizes, and measures the
/// error. An empty `x` gives zero counts. Errors: NaN or infinity in `x`, and every error of
/// [`quantize_codes`] (bad parameters, shape mismatch).
pub fn analyze(x: &[f32], shape: &[usize], params: &QuantParams, rule: QuantizeRule) -> Result<ErrorStats> {
    let (codes, layout) = codes_of(x, shape, params, rule)?;
    Ok(stats_of(x, &codes, &layout, params))
}

fn stats_of(x: &[f32], codes: &[i32], layout: &ParamLayout, params: &QuantParams) -> ErrorStats {
    let mut acc = Accumulator::new(params.range);
    for (i, (&xi, &q)) in x.iter().zip(codes).enumerate() {
        let p = layout.index(i);
        acc.push(xi, q, params.scales[p], params.zero_points[p], params.range);
    }
    acc.finish()
}

/// [`analyze`] channel by channel: element `i` belongs to channel `(i / inner) % shape[axis]`
/// (`inner` the product of the dimensions after `axis`), whatever the granularity of `params`,
/// so per-tensor parameters can be judged channel by channel too. Returns one [`ErrorStats`]
/// per index along `axis`. Errors: those of [`analyze`], and an axis out of range.
pub fn analyze_per_channel(
    x: &[f32],
    shape: &[usize],
    axis: impl Into<Axis>,
    params: &QuantParams,
    rule: QuantizeRule,
) -> Result<Vec<ErrorStats>> {
    let axis = axis.into().resolve(shape.len())?;
    let (codes, layout) = codes_of(x, shape, params, rule)?;
    Ok(channel_stats(x, shape, axis, &codes, &layout, params))
}

fn channel_stats(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    codes: &[i32],
    layout: &ParamLayout,
    params: &QuantParams,
) -> Vec<ErrorStats> {
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut accs = vec![Accumulator::new(params.range); channels];
    for (i, (&xi, &q)) in x.iter().zip(codes).enumerate() {
        let p = layout.index(i);
        accs[(i / inner) % channels].push(xi, q, params.scales[p], params.zero_points[p], params.range);
    }
    accs.iter().map(Accumulator::finish).collect()
}

/// Mean squared error between two equal-length slices (f64 accumulation).
pub fn mse(a: &[f32], b: &[f32]) -> Result<f64> {
    check_len("second input", a.len(), b.len())?;
    let s: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    Ok(s / a.len().max(1) as f64)
}

/// `10 log10(sum signal^2 / sum (signal - approx)^2)` in dB; infinite when they are equal.
pub fn sqnr_db(signal: &[f32], approx: &[f32]) -> Result<f64> {
    check_len("approximation", signal.len(), approx.len())?;
    let p: f64 = signal.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = signal.iter().zip(approx).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
    Ok(if n == 0.0 { f64::INFINITY } else { 10.0 * (p / n).log10() })
}

/// A rigorous bound on `|x - dequant(quant(x))|` for an in-range `x` under a round-to-nearest
/// mode: half a step, plus what the float arithmetic can add. `v = x op s` carries a relative
/// error of at most 2^-24 (division) or about 2^-23 (reciprocal then product), which can move the
/// rounding decision by `|v| 2^-23` steps near a tie; the dequantize product adds half an ulp of
/// the result. So the bound is `s (1/2 + |v| 2^-22) + ulp(|x| + s)`.
pub fn round_error_bound(x: f32, scale: f32) -> f64 {
    let s = scale as f64;
    let v = (x as f64 / s).abs();
    let mag = (x.abs() as f64 + s) as f32;
    let ulp = (f32::from_bits(mag.to_bits() + 1) - mag) as f64;
    s * (0.5 + v * (2f64).powi(-22)) + ulp
}

// ------------------------------------------------------------------------------------------------
// Level utilization
// ------------------------------------------------------------------------------------------------

/// How the codes of a range are used by some data: the "too wide a range wastes bits" picture.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelUsage {
    /// Codes in `[qmin, qmax]`.
    pub codes_available: u64,
    /// Distinct codes produced.
    pub codes_used: u64,
    /// Smallest and largest code produced.
    pub code_min: i32,
    pub code_max: i32,
    /// How many elements got each code; index `q - qmin`.
    pub histogram: Vec<u64>,
    /// Elements at `qmin` and at `qmax` (saturated or exactly at the ends).
    pub at_qmin: u64,
    pub at_qmax: u64,
    /// `log2(codes_available)`: the bits the code type offers.
    pub nominal_bits: f64,
    /// `log2(code_max - code_min + 1)`: the bits the data's span occupies.
    pub span_bits: f64,
    /// `nominal_bits - span_bits`: bits the range spends on values the data never takes.
    pub unused_bits: f64,
    /// Shannon entropy of the code histogram in bits: the information the codes carry (at most
    /// `span_bits`; lower for peaked data, even with a well-fitted range).
    pub entropy_bits: f64,
}

fn usage_of(codes: &[i32], range: CodeRange) -> Result<LevelUsage> {
    if codes.is_empty() {
        return Err(QuantError::EmptyInput { what: "x" });
    }
    let mut histogram = vec![0u64; range.levels() as usize];
    for &q in codes {
        histogram[(q - range.qmin()) as usize] += 1;
    }
    let code_min = codes.iter().copied().min().unwrap_or(range.qmin());
    let code_max = codes.iter().copied().max().unwrap_or(range.qmax());
    let n = codes.len() as f64;
    let entropy_bits = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum::<f64>();
    let nominal_bits = (range.levels() as f64).log2();
    let span_bits = ((code_max as i64 - code_min as i64 + 1) as f64).log2();
    Ok(LevelUsage {
        codes_available: range.levels(),
        codes_used: histogram.iter().filter(|&&c| c > 0).count() as u64,
        code_min,
        code_max,
        at_qmin: histogram[0],
        at_qmax: histogram[histogram.len() - 1],
        histogram,
        nominal_bits,
        span_bits,
        unused_bits: nominal_bits - span_bits,
        entropy_bits,
    })
}

/// Quantizes `x` ([`quantize_codes`]) and describes how its codes use the range. With per-axis
/// parameters the histogram pools every channel's codes. Errors: empty or non-finite `x`, and
/// those of [`quantize_codes`].
pub fn level_usage(x: &[f32], shape: &[usize], params: &QuantParams, rule: QuantizeRule) -> Result<LevelUsage> {
    let (codes, _) = codes_of(x, shape, params, rule)?;
    usage_of(&codes, params.range)
}

/// The bits a representable interval wastes on data occupying `data`: `log2(width(range) /
/// width(data ∩ range))`, the prediction [`LevelUsage::unused_bits`] approaches for data that
/// fills its own span densely (a range 4x wider than the data: 2 bits). Zero when the data covers
/// the range (clipping then costs instead). Errors: a data range of zero width, or one that does
/// not meet `range`.
pub fn predicted_unused_bits(data: Range, range: Range) -> Result<f64> {
    let lo = data.min.max(range.min) as f64;
    let hi = data.max.min(range.max) as f64;
    if hi <= lo {
        return Err(QuantError::InvalidArgument {
            what: "data range",
            detail: format!(
                "[{}, {}] must overlap the representable range [{}, {}] with a positive width",
                data.min, data.max, range.min, range.max
            ),
        });
    }
    Ok(((range.max as f64 - range.min as f64) / (hi - lo)).log2().max(0.0))
}

// ------------------------------------------------------------------------------------------------
// Comparisons
// ------------------------------------------------------------------------------------------------

/// One candidate of a comparison and what it costs on the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub label: String,
    pub params: QuantParams,
    pub stats: ErrorStats,
}

/// Analyzes the same data under each labelled set of parameters (any granularity, any range),
/// in order. Errors: no candidates ([`QuantError::EmptyInput`]), and those of [`analyze`].
pub fn compare(
    x: &[f32],
    shape: &[usize],
    candidates: &[(&str, QuantParams)],
    rule: QuantizeRule,
) -> Result<Vec<ComparisonRow>> {
    if candidates.is_empty() {
        return Err(QuantError::EmptyInput { what: "candidates" });
    }
    candidates
        .iter()
        .map(|(label, params)| {
            Ok(ComparisonRow {
                label: label.to_string(),
                params: params.clone(),
                stats: analyze(x, shape, params, rule)?,
            })
        })
        .collect()
}

/// The row with the lowest MSE (the first of equals); `None` for no rows.
pub fn best_by_mse(rows: &[ComparisonRow]) -> Option<&ComparisonRow> {
    rows.iter().reduce(|best, r| if r.stats.mse < best.stats.mse { r } else { best })
}

/// Compares calibrated ranges (from min-max, percentile, entropy, MSE, ACIQ calibrators, ...):
/// each range becomes per-tensor parameters under `profile`'s rule for `req`
/// ([`Profile::choose_qparams`], code range from [`crate::profile::QParamsRule::code_range`]) and
/// the data is quantized with `profile.quantize`. Errors: no ranges, and those of the profile's
/// rule and of [`analyze`].
pub fn compare_ranges(
    x: &[f32],
    shape: &[usize],
    ranges: &[(&str, Range)],
    profile: &Profile,
    req: &QParamsRequest,
) -> Result<Vec<ComparisonRow>> {
    if ranges.is_empty() {
        return Err(QuantError::EmptyInput { what: "ranges" });
    }
    let code_range = profile.qparams.code_range(req)?;
    let candidates = ranges
        .iter()
        .map(|(label, r)| {
            let p = profile.choose_qparams(r.min, r.max, req)?;
            Ok((*label, QuantParams::per_tensor(p.scale, p.zero_point, code_range)))
        })
        .collect::<Result<Vec<_>>>()?;
    compare(x, shape, &candidates, profile.quantize)
}

/// Per-tensor against per-channel quantization of the same tensor, both from min-max ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct GranularityComparison {
    /// One scale and zero point from the whole tensor's range.
    pub per_tensor: ComparisonRow,
    /// One scale and zero point per index along the axis, from that channel's range.
    pub per_channel: ComparisonRow,
    /// The per-tensor parameters' error, channel by channel (which channels pay for sharing).
    pub per_tensor_channels: Vec<ErrorStats>,
    /// The per-channel parameters' error, channel by channel.
    pub per_channel_channels: Vec<ErrorStats>,
}

impl GranularityComparison {
    /// What per-channel quantization gains over per-tensor, in dB of SQNR.
    pub fn sqnr_gain_db(&self) -> f64 {
        self.per_channel.stats.sqnr_db - self.per_tensor.stats.sqnr_db
    }
}

/// Minimum and maximum of each channel along `axis`.
fn channel_ranges(x: &[f32], shape: &[usize], axis: Axis) -> Result<Vec<(f32, f32)>> {
    if crate::quant_params::checked_numel(shape) != Some(x.len()) {
        return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len: x.len() });
    }
    let axis = axis.resolve(shape.len())?;
    if x.is_empty() {
        return Err(QuantError::EmptyInput { what: "x" });
    }
    check_finite("x", x)?;
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut r = vec![(f32::INFINITY, f32::NEG_INFINITY); channels];
    for (i, &v) in x.iter().enumerate() {
        let c = &mut r[(i / inner) % channels];
        *c = (c.0.min(v), c.1.max(v));
    }
    Ok(r)
}

/// Quantizes `x` per tensor and per channel along `axis`, each with min-max parameters chosen by
/// `profile`'s rule for `req`, and reports both, overall and channel by channel: the typical
/// "one channel with small weights is crushed by another's large range" diagnosis. Errors:
/// empty or non-finite `x`, shape or axis errors, and those of the profile's rule.
pub fn compare_granularity(
    x: &[f32],
    shape: &[usize],
    axis: impl Into<Axis>,
    profile: &Profile,
    req: &QParamsRequest,
) -> Result<GranularityComparison> {
    let axis = axis.into();
    let per_channel_ranges = channel_ranges(x, shape, axis)?;
    let axis = axis.resolve(shape.len())?;
    let code_range = profile.qparams.code_range(req)?;
    let (lo, hi) = min_max(x)?;
    let t = profile.choose_qparams(lo, hi, req)?;
    let per_tensor = QuantParams::per_tensor(t.scale, t.zero_point, code_range);
    let (mut scales, mut zps) = (Vec::new(), Vec::new());
    for &(lo, hi) in &per_channel_ranges {
        let p = profile.choose_qparams(lo, hi, req)?;
        scales.push(p.scale);
        zps.push(p.zero_point);
    }
    let per_channel = QuantParams::per_axis(axis, scales, zps, code_range);
    let row = |label: &str, params: QuantParams| -> Result<(ComparisonRow, Vec<ErrorStats>)> {
        let (codes, layout) = codes_of(x, shape, &params, profile.quantize)?;
        let stats = stats_of(x, &codes, &layout, &params);
        let channels = channel_stats(x, shape, axis, &codes, &layout, &params);
        Ok((ComparisonRow { label: label.to_string(), params, stats }, channels))
    };
    let (per_tensor, per_tensor_channels) = row("per-tensor", per_tensor)?;
    let (per_channel, per_channel_channels) = row("per-channel", per_channel)?;
    Ok(GranularityComparison { per_tensor, per_channel, per_tensor_channels, per_channel_channels })
}

// ------------------------------------------------------------------------------------------------
// Bit-width sweeps
// ------------------------------------------------------------------------------------------------

/// One bit width of a [`bit_sweep`].
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub bits: u32,
    pub params: QuantParams,
    pub stats: ErrorStats,
    pub usage: LevelUsage,
}

/// Quantizes `x` at every bit width in `bits` (min-max parameters from `profile`'s rule for
/// `req` with its code type widened or narrowed to each width, signedness kept; per tensor, or
/// per channel along `axis`), through [`quantize_codes`], and reports each width's error and
/// level usage. Errors: a width outside 2..=16, a `req` with a custom code range (it would fix
/// the width), a width the profile has no type for (ONNX Runtime: only 4, 8, 16), and those of
/// [`analyze`].
pub fn bit_sweep(
    x: &[f32],
    shape: &[usize],
    bits: RangeInclusive<u32>,
    axis: Option<Axis>,
    profile: &Profile,
    req: &QParamsRequest,
) -> Result<Vec<SweepRow>> {
    if req.custom_range.is_some() {
        return Err(QuantError::InvalidArgument {
            what: "bit sweep request",
            detail: "a custom code range fixes the bit width; leave it unset".into(),
        });
    }
    let ranges = match axis {
        None => {
            check_finite("x", x)?;
            vec![min_max(x)?]
        }
        Some(axis) => channel_ranges(x, shape, axis)?,
    };
    let mut rows = Vec::new();
    for b in bits {
        let req_b = QParamsRequest { qtype: QType::new(b, req.qtype.signedness())?, ..*req };
        let code_range = profile.qparams.code_range(&req_b)?;
        let chosen =
            ranges.iter().map(|&(lo, hi)| profile.choose_qparams(lo, hi, &req_b)).collect::<Result<Vec<_>>>()?;
        let scales = chosen.iter().map(|p| p.scale).collect();
        let zps = chosen.iter().map(|p| p.zero_point).collect();
        let params = match axis {
            None => QuantParams::per_tensor(chosen[0].scale, chosen[0].zero_point, code_range),
            Some(axis) => QuantParams::per_axis(axis, scales, zps, code_range),
        };
        let (codes, layout) = codes_of(x, shape, &params, profile.quantize)?;
        let stats = stats_of(x, &codes, &layout, &params);
        let usage = usage_of(&codes, code_range)?;
        rows.push(SweepRow { bits: b, params, stats, usage });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::ScaleOp;
    use crate::rounding::RoundingMode;
    use crate::scheme::Symmetry;

    const RULE: QuantizeRule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);

    #[test]
    fn decomposition_on_half_clipped_data() {
        let n = 20_000;
        let s = 2.0 / 255.0;
        let p = QuantParams::per_tensor(s, 0, QType::I8.full_range());
        let x: Vec<f32> = (0..n).map(|i| 2.0 * (-128.0 + 255.0 * (i as f64 + 0.5) / n as f64) as f32 * s).collect();
        let st = analyze(&x, &[n], &p, RULE).unwrap();
        assert!((st.clipped_fraction - 0.5).abs() < 0.01);
        assert!((st.round_mse + st.clip_mse - st.mse).abs() <= 1e-12 * st.mse);
        assert_eq!(st.level_utilization, 1.0);
    }

    #[test]
    fn utilization_of_a_narrow_signal() {
        let p = QuantParams::per_tensor(1.0, 0, QType::U8.full_range());
        let x: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let st = analyze(&x, &[64], &p, RULE).unwrap();
        assert_eq!(st.codes_used, 64);
        assert_eq!(st.level_utilization, 0.25);
        assert_eq!(st.mse, 0.0);
        assert!(st.sqnr_db.is_infinite());
        let u = level_usage(&x, &[64], &p, RULE).unwrap();
        assert_eq!((u.code_min, u.code_max, u.codes_used), (0, 63, 64));
        assert_eq!((u.nominal_bits, u.span_bits, u.unused_bits), (8.0, 6.0, 2.0));
        assert!((u.entropy_bits - 6.0).abs() < 1e-12);
        assert_eq!((u.at_qmin, u.at_qmax), (1, 0));
    }

    #[test]
    fn errors_are_typed() {
        let p = QuantParams::per_tensor(1.0, 0, QType::I8.full_range());
        let bad = |x: &[f32]| analyze(x, &[x.len()], &p, RULE).unwrap_err();
        assert!(matches!(bad(&[1.0, f32::NAN]), QuantError::NonFinite { .. }));
        assert!(matches!(bad(&[f32::INFINITY]), QuantError::NonFinite { .. }));
        assert!(matches!(analyze(&[1.0; 4], &[3], &p, RULE), Err(QuantError::ShapeMismatch { .. })));
        assert!(matches!(analyze_per_channel(&[1.0; 4], &[4], 1, &p, RULE), Err(QuantError::AxisOutOfRange { .. })));
        assert!(matches!(level_usage(&[], &[0], &p, RULE), Err(QuantError::EmptyInput { .. })));
        assert!(matches!(compare(&[1.0], &[1], &[], RULE), Err(QuantError::EmptyInput { .. })));
        let bad_scale = QuantParams::per_tensor(-1.0, 0, QType::I8.full_range());
        assert!(matches!(analyze(&[1.0], &[1], &bad_scale, RULE), Err(QuantError::InvalidScale { .. })));
        let r = |a, b| Range::new(a, b).unwrap();
        assert!(predicted_unused_bits(r(1.0, 1.0), r(0.0, 2.0)).is_err());
        assert!(predicted_unused_bits(r(3.0, 4.0), r(0.0, 2.0)).is_err());
        assert_eq!(predicted_unused_bits(r(-1.0, 1.0), r(-4.0, 4.0)).unwrap(), 2.0);
        assert_eq!(predicted_unused_bits(r(-9.0, 9.0), r(-4.0, 4.0)).unwrap(), 0.0);
        assert!(compare_granularity(
            &[1.0, 2.0],
            &[2],
            0,
            &Profile::QUANTPROOF,
            &QParamsRequest::new(QType::I8, Symmetry::Symmetric)
        )
        .is_ok());
        assert!(matches!(
            compare_granularity(
                &[],
                &[0, 2],
                0,
                &Profile::QUANTPROOF,
                &QParamsRequest::new(QType::I8, Symmetry::Symmetric)
            ),
            Err(QuantError::EmptyInput { .. })
        ));
    }

    #[test]
    fn per_channel_stats_add_up_to_the_whole() {
        let x: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin() * (1 + i % 3) as f32).collect();
        let p = QuantParams::per_tensor(0.02, 3, QType::I8.full_range());
        let all = analyze(&x, &[20, 3], &p, RULE).unwrap();
        let ch = analyze_per_channel(&x, &[20, 3], 1, &p, RULE).unwrap();
        assert_eq!(ch.len(), 3);
        assert_eq!(ch.iter().map(|c| c.count).sum::<usize>(), 60);
        let se: f64 = ch.iter().map(|c| c.mse * c.count as f64).sum();
        assert!((se / 60.0 - all.mse).abs() <= 1e-12 * all.mse);
    }
}
