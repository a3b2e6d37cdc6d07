//! TensorRT's entropy calibration as NVIDIA presented it at GTC 2017 (Szymon Migacz, "8-bit
//! Inference with TensorRT", the "Entropy Calibration - pseudocode" slide):
//!
//! ```text
//! Input: FP32 histogram H with 2048 bins: bin[0], ..., bin[2047]
//! For i in range(128, 2048):
//!     reference_distribution_P = [bin[0], ..., bin[i-1]]
//!     outliers_count = sum(bin[i], ..., bin[2047])
//!     reference_distribution_P[i-1] += outliers_count
//!     P /= sum(P)
//!     candidate_distribution_Q = quantize [bin[0], ..., bin[i-1]] into 128 levels
//!     expand candidate_distribution_Q to i bins
//!     Q /= sum(Q)
//!     divergence[i] = KL_divergence(reference_distribution_P, candidate_distribution_Q)
//! End For
//! Find index m for which divergence[m] is minimal
//! threshold = (m + 0.5) * (width of a bin)
//! ```
//!
//! TensorRT's own implementation is closed; the talk leaves details open. This module pins each
//! one, and says so:
//!
//! 1. **Histogram.** `|x|` over `[0, amax]`, `amax = max |x|` of the calibration data, 2048 equal
//!    bins of width `amax / 2048`. Bin of `v = |x|`: `floor(v * 2048 / amax)` computed in float64,
//!    `v = amax` in the last bin. Values above `amax` (possible when `amax` is given rather than
//!    measured) are counted apart as overflow; they are outliers for every candidate.
//! 2. **Candidates.** `i = 128 ..= 2047` (Python's `range(128, 2048)`: the candidate that keeps
//!    all 2048 bins is not tried).
//! 3. **P.** `bin[0..i]` with every count at or beyond bin `i` (and the overflow) added to its last
//!    bin.
//! 4. **Q.** The bins `bin[0..i]` *without* the outliers are merged into 128 levels, bin `j`
//!    going to level `floor(128 j / i)` (exact integer arithmetic; equal groups when 128 divides
//!    `i`, which is the talk's example). Expansion, as in the talk's example (`[1 0 2 3 5 3 1 7]`
//!    into 2 levels gives `[2 0 2 2 4 4 4 4]`): each non-zero bin of the level receives the
//!    level's total divided by the number of non-zero bins in it; empty bins stay 0.
//! 5. **KL.** `sum over P_j > 0 of p_j ln(p_j / q_j)` with `p = P / sum P`, `q = Q / sum Q`, in
//!    float64, natural log, added left to right. It is `+inf` when some `p_j > 0` meets
//!    `q_j = 0` (bin `i - 1` empty while there are outliers) or when `Q` is all zero.
//! 6. **Choice.** `m` is the first (smallest) `i` of minimal divergence; `threshold = (m + 0.5) *
//!    amax / 2048`, rounded to float32. When every divergence is infinite (all the data at the
//!    top of the range, e.g. a constant `|x|`), the threshold is `amax`; when `amax = 0` (no
//!    data, or only zeros) it is 0. The range is `[-threshold, threshold]`.
//!
//! pytorch-quantization's `HistogramCalibrator` ([`super::modelopt`]) is NVIDIA's public
//! reimplementation; it differs in points 2 (`i` up to 2048), 4 (it uses `digitize`, the same
//! levels), 6 (last minimum, `amax = edges[i]`) and adds `bins[0] = bins[1]`.
//!
//! # Streaming
//!
//! The histogram needs `amax` first. [`EntropyCalibrator::new`] takes it (from a first pass with
//! [`super::modelopt::MaxCalibrator`], or a known bound), so observing is a fixed-bin histogram
//! and merging is exact (counts add). [`calibrate`] runs both passes over in-memory batches.

// Negated comparisons (`!(a < b)`) are deliberate: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::modelopt::MaxCalibrator;
use super::{NonFinitePolicy, Observer, Range};
use crate::error::{QuantError, Result};

/// The talk's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyConfig {
    /// Histogram bins (2048).
    pub num_bins: usize,
    /// Quantization levels of `|x|` (128: int8 is symmetric, so half of its 256 codes).
    pub num_levels: usize,
    /// First candidate bin count (128).
    pub first_candidate: usize,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        EntropyConfig { num_bins: 2048, num_levels: 128, first_candidate: 128 }
    }
}

impl EntropyConfig {
    fn validate(&self) -> Result<()> {
        crate::error::check_count("num_bins", self.num_bins, MAX_BINS)?;
        if self.num_levels == 0 || self.first_candidate == 0 || self.first_candidate >= self.num_bins {
            return Err(QuantError::InvalidArgument {
                what: "TensorRT entropy configuration",
                detail: format!("{self:?}: needs 0 < first_candidate < num_bins and num_levels > 0"),
            });
        }
        Ok(())
    }
}

/// The most bins accepted: the divergence search tries every candidate from `first_candidate`
/// to `num_bins`, each over its bins, so its work grows with the square of the bins (2^14 bins:
/// ~2^27 bin visits).
pub const MAX_BINS: usize = 1 << 14;

/// The bin of `v = |x|` in `num_bins` bins over `[0, amax]` (point 1 of the module docs): `None`
/// above `amax` (overflow) and for NaN. `amax` must be positive.
pub fn bin_index(v: f32, amax: f32, num_bins: usize) -> Option<usize> {
    let v = v.abs();
    if !(v <= amax) {
        return None;
    }
    let b = (v as f64 * num_bins as f64 / amax as f64).floor() as usize;
    Some(b.min(num_bins - 1))
}

/// The divergence of every candidate `i = first_candidate .. num_bins` (points 3 to 5).
pub fn divergences(hist: &[u64], overflow: u64, cfg: &EntropyConfig) -> Result<Vec<f64>> {
    cfg.validate()?;
    crate::error::check_len("TensorRT histogram", cfg.num_bins, hist.len())?;
    let n = hist.len();
    let mut suffix = vec![0u64; n + 1];
    for j in (0..n).rev() {
        suffix[j] = suffix[j + 1] + hist[j];
    }
    let total = (suffix[0] + overflow) as f64;
    let levels = cfg.num_levels;
    let mut level_sum = vec![0u64; levels];
    let mut level_nonzero = vec![0u64; levels];
    let mut out = Vec::with_capacity(n - cfg.first_candidate);
    for i in cfg.first_candidate..n {
        let outliers = suffix[i] + overflow;
        let inside = suffix[0] - suffix[i];
        level_sum.iter_mut().for_each(|v| *v = 0);
        level_nonzero.iter_mut().for_each(|v| *v = 0);
        let level = |j: usize| (j as u128 * levels as u128 / i as u128) as usize;
        for (j, &c) in hist[..i].iter().enumerate() {
            level_sum[level(j)] += c;
            level_nonzero[level(j)] += (c != 0) as u64;
        }
        if inside == 0 {
            out.push(f64::INFINITY);
            continue;
        }
        let mut kl = 0.0f64;
        for (j, &c) in hist[..i].iter().enumerate() {
            let pc = if j == i - 1 { c + outliers } else { c };
            if pc == 0 {
                continue;
            }
            let p = pc as f64 / total;
            let q =
                if c == 0 { 0.0 } else { level_sum[level(j)] as f64 / level_nonzero[level(j)] as f64 / inside as f64 };
            if q == 0.0 {
                kl = f64::INFINITY;
                break;
            }
            kl += p * (p / q).ln();
        }
        out.push(kl);
    }
    Ok(out)
}

/// The threshold (point 6) for a histogram over `[0, amax]`.
pub fn entropy_threshold(hist: &[u64], overflow: u64, amax: f32, cfg: &EntropyConfig) -> Result<f32> {
    if !(amax.is_finite() && amax >= 0.0) {
        return Err(QuantError::InvalidArgument { what: "amax", detail: format!("{amax}: must be finite and >= 0") });
    }
    if amax == 0.0 {
        return Ok(0.0);
    }
    let div = divergences(hist, overflow, cfg)?;
    let mut best: Option<usize> = None;
    for (k, &d) in div.iter().enumerate() {
        if d.is_finite() && best.is_none_or(|b| d < div[b]) {
            best = Some(k);
        }
    }
    Ok(match best {
        None => amax,
        Some(k) => {
            let m = cfg.first_candidate + k;
            ((m as f64 + 0.5) * amax as f64 / cfg.num_bins as f64) as f32
        }
    })
}

/// The TensorRT entropy calibrator over a fixed `[0, amax]` (the exact streaming form).
#[derive(Debug, Clone, PartialEq)]
pub struct EntropyCalibrator {
    cfg: EntropyConfig,
    amax: f32,
    hist: Vec<u64>,
    overflow: u64,
    policy: NonFinitePolicy,
}

impl EntropyCalibrator {
    /// A calibrator whose histogram covers `[0, amax]`.
    pub fn new(amax: f32, cfg: EntropyConfig) -> Result<EntropyCalibrator> {
        cfg.validate()?;
        if !(amax.is_finite() && amax >= 0.0) {
            return Err(QuantError::InvalidArgument {
                what: "amax",
                detail: format!("{amax}: must be finite and >= 0"),
            });
        }
        Ok(EntropyCalibrator { cfg, amax, hist: vec![0; cfg.num_bins], overflow: 0, policy: NonFinitePolicy::Error })
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> EntropyCalibrator {
        self.policy = policy;
        self
    }

    /// The counts (and the overflow above `amax`).
    pub fn histogram(&self) -> (&[u64], u64) {
        (&self.hist, self.overflow)
    }

    /// The calibrated threshold `T` (the range is `[-T, T]`).
    pub fn threshold(&self) -> Result<f32> {
        entropy_threshold(&self.hist, self.overflow, self.amax, &self.cfg)
    }
}

impl Observer for EntropyCalibrator {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        if self.amax == 0.0 {
            // the range is the single point 0: zeros go to bin 0, anything else is overflow
            let zeros = x.iter().filter(|v| **v == 0.0).count() as u64;
            self.hist[0] += zeros;
            self.overflow += x.len() as u64 - zeros;
            return Ok(());
        }
        for &v in x.iter() {
            match bin_index(v, self.amax, self.cfg.num_bins) {
                Some(b) => self.hist[b] += 1,
                None => self.overflow += 1,
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.cfg != other.cfg || self.amax.to_bits() != other.amax.to_bits() {
            return Err(QuantError::Unsupported { what: "merging TensorRT calibrators over different ranges".into() });
        }
        self.hist.iter_mut().zip(&other.hist).for_each(|(h, o)| *h += o);
        self.overflow += other.overflow;
        Ok(())
    }

    fn range(&self) -> Result<Range> {
        let t = self.threshold()?;
        Range::new(-t, t)
    }
}

/// Both passes over in-memory batches: `amax = max |x|`, then the histogram and the threshold.
pub fn calibrate(batches: &[&[f32]], cfg: EntropyConfig, policy: NonFinitePolicy) -> Result<Range> {
    let mut first = MaxCalibrator::new(policy);
    batches.iter().try_for_each(|b| first.observe(b))?;
    let amax = first.amax().unwrap_or(0.0);
    let mut c = EntropyCalibrator::new(amax, cfg)?.with_policy(policy);
    batches.iter().try_for_each(|b| c.observe(b))?;
    c.range()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_zero_to_amax() {
        assert_eq!(bin_index(0.0, 2.0, 2048), Some(0));
        assert_eq!(bin_index(-2.0, 2.0, 2048), Some(2047));
        assert_eq!(bin_index(1.0, 2.0, 2048), Some(1024));
        assert_eq!(bin_index(2.5, 2.0, 2048), None);
        assert_eq!(bin_index(f32::NAN, 2.0, 2048), None);
    }

    #[test]
    fn the_talks_expansion_example() {
        // 8 bins into 2 levels: [1 0 2 3 5 3 1 7] -> Q = [2 0 2 2 4 4 4 4]; with no outliers P is the
        // bins themselves, so KL(P || Q) is the divergence of that pair.
        let cfg = EntropyConfig { num_bins: 9, num_levels: 2, first_candidate: 8 };
        let hist = [1, 0, 2, 3, 5, 3, 1, 7, 0];
        let d = divergences(&hist, 0, &cfg).unwrap();
        let p = [1.0, 0.0, 2.0, 3.0, 5.0, 3.0, 1.0, 7.0].map(|v: f64| v / 22.0);
        let q = [2.0, 0.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0].map(|v: f64| v / 22.0);
        let want: f64 = p.iter().zip(&q).filter(|(p, _)| **p > 0.0).map(|(p, q)| p * (p / q).ln()).sum();
        assert!((d[0] - want).abs() < 1e-15);
    }

    #[test]
    fn degenerate_inputs() {
        let cfg = EntropyConfig::default();
        assert_eq!(calibrate(&[], cfg, NonFinitePolicy::Error).unwrap(), Range { min: 0.0, max: 0.0 });
        assert_eq!(calibrate(&[&[0.0; 10]], cfg, NonFinitePolicy::Error).unwrap(), Range { min: 0.0, max: 0.0 });
        // a constant |x| lands in the last bin: no candidate can hold it, keep amax
        assert_eq!(calibrate(&[&[-3.0, 3.0]], cfg, NonFinitePolicy::Error).unwrap(), Range { min: -3.0, max: 3.0 });
        assert!(calibrate(&[&[1.0, f32::INFINITY]], cfg, NonFinitePolicy::Error).is_err());
    }

    #[test]
    fn uniform_data_keeps_nearly_everything() {
        let x: Vec<f32> = (0..20480).map(|i| (i as f32 + 0.5) / 20480.0).collect();
        let r = calibrate(&[&x], EntropyConfig::default(), NonFinitePolicy::Error).unwrap();
        assert!(r.max > 0.9 && r.max <= 1.0, "{r:?}");
    }
}
