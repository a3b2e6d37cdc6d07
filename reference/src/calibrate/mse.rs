//! A plain MSE search: the clipping threshold that minimizes the expected squared quantization
//! error of a histogram.
//!
//! This is our calibrator, not a framework's; every choice is stated here.
//!
//! * **Histogram.** `x` over the fixed symmetric range `[-A, A]`, `A = max |x|` from a first pass
//!   (or a known bound), `num_bins` bins (default 2048) with numpy's binning rule
//!   ([`super::numpy_hist::UniformBins`]), so a fast counting kernel plugs in the same way.
//! * **Quantizer.** Symmetric with threshold `T`: `s = T / qmax`,
//!   `Q(u) = clamp(round(u / s), qmin, qmax) * s` for the given code range (narrow int8
//!   `[-127, 127]` by default; unsigned ranges clip negative values to 0).
//! * **Error.** Inside each bin the data are taken as uniformly spread, and the bin's error is the
//!   exact integral `(1 / w) * integral over the bin of (Q(u) - u)^2 du`, summed cell by cell of the
//!   quantizer (each cell contributes `((u1 - c)^3 - (u0 - c)^3) / 3`); the MSE is the
//!   count-weighted mean over the bins, in float64. Unlike a bin-centre estimate (what
//!   pytorch-quantization's `mse` does), it stays right when a bin is wider than the step: the
//!   rounding part tends to `s^2 / 12`.
//! * **Candidates.** `T_k = A * k / num_candidates` for `k = 1 ..= num_candidates` (default 512).
//!   The smallest `T` of minimal MSE wins; the range is `[-T, T]` (`[0, T]` for unsigned codes).
//!   `A = 0` gives `[0, 0]`.
//!
//! Observing is a fixed-bin histogram, so merging is exact (counts add).

// Negated comparisons (`!(a < b)`) are deliberate: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::numpy_hist::{self, CountKernel, UniformBins};
use super::{NonFinitePolicy, Observer, Range};
use crate::error::{QuantError, Result};
use crate::scheme::{CodeRange, QType};

/// The search's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MseConfig {
    pub codes: CodeRange,
    pub num_bins: usize,
    pub num_candidates: usize,
}

impl Default for MseConfig {
    fn default() -> Self {
        MseConfig { codes: QType::I8.narrow_range(), num_bins: 2048, num_candidates: 512 }
    }
}

/// The most histogram bins accepted (memory `8 * bins` bytes).
pub const MAX_BINS: usize = 1 << 20;
/// The most candidate ranges accepted.
pub const MAX_CANDIDATES: usize = 1 << 16;
/// The most bin-candidate pairs the search visits (each candidate's error sums over every bin).
pub const MAX_WORK: usize = 1 << 26;

impl MseConfig {
    fn validate(&self) -> Result<()> {
        if self.codes.qmin() > 0 || self.codes.qmax() <= 0 {
            return Err(QuantError::InvalidArgument {
                what: "code range",
                detail: format!("[{}, {}] must contain 0 and a positive code", self.codes.qmin(), self.codes.qmax()),
            });
        }
        crate::error::check_count("num_bins", self.num_bins, MAX_BINS)?;
        crate::error::check_count("num_candidates", self.num_candidates, MAX_CANDIDATES)?;
        let work = self.num_bins * self.num_candidates;
        if work > MAX_WORK {
            return Err(QuantError::TooLarge {
                what: "num_bins * num_candidates",
                value: work as u128,
                limit: MAX_WORK as u128,
            });
        }
        Ok(())
    }
}

/// `integral over [a, b] of (Q(u) - u)^2 du` for the quantizer of step `s` and codes
/// `[qmin, qmax]` (the outer cells extend to infinity: clipping).
pub fn bin_squared_error(a: f64, b: f64, s: f64, qmin: i64, qmax: i64) -> f64 {
    if !(b > a) || !(s > 0.0) {
        return 0.0;
    }
    let cell = |u: f64| ((u / s + 0.5).floor()).clamp(qmin as f64, qmax as f64) as i64;
    let mut total = 0.0;
    for k in cell(a)..=cell(b) {
        let lo = if k == qmin { f64::NEG_INFINITY } else { (k as f64 - 0.5) * s };
        let hi = if k == qmax { f64::INFINITY } else { (k as f64 + 0.5) * s };
        let (u0, u1) = (a.max(lo), b.min(hi));
        if u1 > u0 {
            let c = k as f64 * s;
            total += ((u1 - c).powi(3) - (u0 - c).powi(3)) / 3.0;
        }
    }
    total
}

/// The expected squared error of quantizing the histogram with threshold `t` (module docs).
pub fn expected_mse(hist: &[u64], edges: &[f32], t: f64, codes: CodeRange) -> Result<f64> {
    crate::error::check_len("histogram edges", hist.len() + 1, edges.len())?;
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return Ok(0.0);
    }
    let s = t / codes.qmax() as f64;
    let (qmin, qmax) = (codes.qmin() as i64, codes.qmax() as i64);
    let mut sum = 0.0;
    for (k, &n) in hist.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let (a, b) = (edges[k] as f64, edges[k + 1] as f64);
        let mean_sq = if s > 0.0 {
            bin_squared_error(a, b, s, qmin, qmax) / (b - a)
        } else {
            // t = 0: everything quantizes to 0
            (a * a + a * b + b * b) / 3.0
        };
        sum += n as f64 * mean_sq;
    }
    Ok(sum / total as f64)
}

/// Every candidate threshold with its expected MSE, and the chosen one (smallest of minimal MSE).
pub fn search(hist: &[u64], edges: &[f32], amax: f32, cfg: &MseConfig) -> Result<(f32, Vec<(f64, f64)>)> {
    cfg.validate()?;
    if !(amax.is_finite() && amax >= 0.0) {
        return Err(QuantError::InvalidArgument { what: "amax", detail: format!("{amax}: must be finite and >= 0") });
    }
    if amax == 0.0 {
        return Ok((0.0, Vec::new()));
    }
    let k = cfg.num_candidates;
    let mut curve = Vec::with_capacity(k);
    for i in 1..=k {
        let t = amax as f64 * i as f64 / k as f64;
        curve.push((t, expected_mse(hist, edges, t, cfg.codes)?));
    }
    let mses: Vec<f64> = curve.iter().map(|c| c.1).collect();
    let best = numpy_hist::argmin_first(&mses).unwrap_or(0);
    Ok((curve[best].0 as f32, curve))
}

/// The MSE calibrator over the fixed range `[-amax, amax]`.
#[derive(Debug, Clone)]
pub struct MseCalibrator {
    cfg: MseConfig,
    amax: f32,
    bins: UniformBins,
    hist: Vec<u64>,
    policy: NonFinitePolicy,
    kernel: CountKernel,
}

impl MseCalibrator {
    pub fn new(amax: f32, cfg: MseConfig) -> Result<MseCalibrator> {
        cfg.validate()?;
        if !(amax.is_finite() && amax >= 0.0) {
            return Err(QuantError::InvalidArgument {
                what: "amax",
                detail: format!("{amax}: must be finite and >= 0"),
            });
        }
        let bins = UniformBins::new(-amax, amax, cfg.num_bins)?;
        let hist = vec![0; bins.len()];
        Ok(MseCalibrator { cfg, amax, bins, hist, policy: NonFinitePolicy::Error, kernel: numpy_hist::accumulate })
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> MseCalibrator {
        self.policy = policy;
        self
    }

    pub fn with_kernel(mut self, kernel: CountKernel) -> MseCalibrator {
        self.kernel = kernel;
        self
    }

    pub fn histogram(&self) -> (&[u64], &[f32]) {
        (&self.hist, self.bins.edges())
    }

    /// The chosen threshold.
    pub fn threshold(&self) -> Result<f32> {
        search(&self.hist, self.bins.edges(), self.amax, &self.cfg).map(|r| r.0)
    }
}

impl Observer for MseCalibrator {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        if let Some(&v) = x.iter().find(|v| v.abs() > self.amax) {
            return Err(QuantError::InvalidArgument {
                what: "MSE calibration",
                detail: format!("{v} lies outside [-{0}, {0}] fixed by the first pass", self.amax),
            });
        }
        (self.kernel)(&x, &self.bins, &mut self.hist);
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.cfg != other.cfg || self.amax.to_bits() != other.amax.to_bits() {
            return Err(QuantError::Unsupported { what: "merging MSE calibrators over different ranges".into() });
        }
        self.hist.iter_mut().zip(&other.hist).for_each(|(h, o)| *h += o);
        Ok(())
    }

    fn range(&self) -> Result<Range> {
        let t = self.threshold()?;
        if self.cfg.codes.qmin() == 0 {
            Range::new(0.0, t)
        } else {
            Range::new(-t, t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_of_rounding_noise_is_step_squared_over_twelve() {
        // many whole cells inside the codes: mean error s^2 / 12
        let s = 0.25;
        let e = bin_squared_error(-10.0 * s - s / 2.0, 10.0 * s + s / 2.0, s, -127, 127) / (21.0 * s);
        assert!((e - s * s / 12.0).abs() < 1e-15);
        // entirely clipped: the error of [a, b] against qmax * s
        let e = bin_squared_error(2.0, 3.0, 1.0 / 127.0, -127, 127);
        assert!((e - ((2.0f64).powi(3) - 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn gaussian_threshold_is_inside_the_range() {
        // a deterministic bell shape
        let x: Vec<f32> = (0..20001)
            .map(|i| {
                let u = (i as f64 + 0.5) / 20001.0;
                // inverse of a logistic CDF: heavy enough tails
                (u / (1.0 - u)).ln() as f32
            })
            .collect();
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut c = MseCalibrator::new(amax, MseConfig::default()).unwrap();
        c.observe(&x).unwrap();
        let t = c.threshold().unwrap();
        assert!(t > 0.0 && t < amax, "t = {t}, amax = {amax}");
        assert!(c.observe(&[amax * 2.0]).is_err());
    }

    #[test]
    fn zero_range() {
        let mut c = MseCalibrator::new(0.0, MseConfig::default()).unwrap();
        c.observe(&[0.0, -0.0]).unwrap();
        assert_eq!(c.range().unwrap(), Range { min: -0.0, max: 0.0 });
    }
}
