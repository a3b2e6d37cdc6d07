//! ACIQ, analytical clipping for integer quantization (Banner, Nahshan, Soudry, "Post training
//! 4-bit quantization of convolutional networks for rapid-deployment", NeurIPS 2019).
//!
//! With the data modelled as a Laplace(`mu`, `b`) or Gaussian(`mu`, `sigma`) distribution and
//! `M`-bit uniform quantization of the clipped range `[mu - alpha, mu + alpha]` (`2^M` levels, step
//! `2 alpha / 2^M`, rounding noise `step^2 / 12`), the mean squared error is
//!
//! ```text
//! Laplace:  E(alpha) = 2 b^2 exp(-alpha / b) + alpha^2 / (3 * 4^M)
//! Gaussian: E(alpha) = (alpha^2 + sigma^2) erfc(alpha / (sqrt(2) sigma))
//!                      - sqrt(2 / pi) alpha sigma exp(-alpha^2 / (2 sigma^2)) + alpha^2 / (3 * 4^M)
//! ```
//!
//! Both are convex in `alpha`; the minimizer scales with `b` (or `sigma`), so the optimal clipping
//! is a fixed ratio per bit width ([`optimal_ratio`]): `alpha* / b` solves
//! `r = 3 * 4^M exp(-r)`, and `alpha* / sigma` solves
//! `a erfc(a / sqrt 2) - sqrt(2 / pi) exp(-a^2 / 2) + a / (3 * 4^M) = 0`. Both are found by
//! bisection to float64 precision:
//!
//! | bits | Laplace `alpha*/b` | Gaussian `alpha*/sigma` |
//! |---|---|---|
//! | 2 | 2.830683 | 1.710635 |
//! | 3 | 3.897229 | 2.151593 |
//! | 4 | 5.028640 | 2.559136 |
//! | 8 | 9.896760 | 3.924037 |
//!
//! The paper and its code publish these to two decimals (Laplace 2.83, 3.89, 5.03, 9.89;
//! Gaussian 1.71, 2.15, 2.55, 3.92), some truncated and some rounded; the authors' code also prints
//! the full values above (`int_quantizer.py`), which the tests match to their solver's precision
//! (5e-6).
//!
//! # The observer
//!
//! `b = mean |x - mu|` and `sigma = sqrt(mean (x - mu)^2)` (population) with `mu = mean x`.
//! [`AciqObserver`] estimates them in streaming, mergeable form: the first pass keeps count,
//! mean and the sum of squared deviations (merged with Chan et al.'s pairwise update), plus min and
//! max; that gives `sigma`. The Laplace `b` needs `mu` first, so a second pass
//! ([`AciqObserver::begin_second_pass`]) adds up `|x - mu|` with `mu` fixed. Merges agree with
//! sequential observation up to float64 rounding. The range is `[mu - alpha, mu + alpha]`
//! intersected with the observed `[min, max]` (clipping beyond the data would waste levels).

use super::{NonFinitePolicy, Observer, Range};
use crate::error::{QuantError, Result};

/// The distribution the data are modelled by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    Laplace,
    Gaussian,
}

/// `erfc(x)`, the complementary error function, to about 1e-15 relative: the series
/// `erf(x) = 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (1 * 3 * ... * (2n+1))` (all terms positive)
/// below 2, the continued fraction `erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x
/// + ...))))` from 2 on.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    let two_over_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI;
    if x < 2.0 {
        let x2 = x * x;
        let (mut term, mut sum) = (x, x);
        for n in 1..400 {
            term *= 2.0 * x2 / (2 * n + 1) as f64;
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
        }
        1.0 - two_over_sqrt_pi * (-x2).exp() * sum
    } else {
        // modified Lentz on b0 + a1/(b1 + a2/(b2 + ...)), b_k = x, a_k = k/2
        let tiny = 1e-300;
        let mut f = x;
        let (mut c, mut d) = (f, 0.0f64);
        for k in 1..2000 {
            let a = k as f64 / 2.0;
            d = x + a * d;
            d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
            c = x + a / c;
            if c.abs() < tiny {
                c = tiny;
            }
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        0.5 * two_over_sqrt_pi * (-x * x).exp() / f
    }
}

fn check_bits(bits: u32) -> Result<f64> {
    if !(1..=16).contains(&bits) {
        return Err(QuantError::BitWidthOutOfRange { bits });
    }
    Ok(4f64.powi(bits as i32))
}

/// The model's MSE of clipping at `alpha` with `M = bits` (module docs); `scale` is `b` or `sigma`.
pub fn clipping_mse(prior: Prior, alpha: f64, scale: f64, bits: u32) -> Result<f64> {
    let levels_sq = check_bits(bits)?;
    let noise = alpha * alpha / (3.0 * levels_sq);
    Ok(match prior {
        Prior::Laplace => 2.0 * scale * scale * (-alpha / scale).exp() + noise,
        Prior::Gaussian => {
            (alpha * alpha + scale * scale) * erfc(alpha / (std::f64::consts::SQRT_2 * scale))
                - (2.0 / std::f64::consts::PI).sqrt() * alpha * scale * (-alpha * alpha / (2.0 * scale * scale)).exp()
                + noise
        }
    })
}

/// Bisection for the root of an increasing `g` on `[lo, hi]` (with `g(lo) < 0 < g(hi)`), down to
/// adjacent floats.
fn bisect(mut lo: f64, mut hi: f64, g: impl Fn(f64) -> f64) -> f64 {
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            return mid;
        }
        if g(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
}

/// The optimal clipping ratio `alpha* / b` (Laplace) or `alpha* / sigma` (Gaussian) for `bits`
/// in 1..=16 (module docs).
pub fn optimal_ratio(prior: Prior, bits: u32) -> Result<f64> {
    let k = 3.0 * check_bits(bits)?;
    Ok(match prior {
        // d/dr [2 e^-r + r^2 / k] = 0  <=>  r - k e^-r = 0, increasing in r
        Prior::Laplace => bisect(0.0, 64.0, |r| r - k * (-r).exp()),
        // d/da E / 2 for sigma = 1, increasing in a (E is convex)
        Prior::Gaussian => bisect(0.0, 64.0, |a| {
            a * erfc(a / std::f64::consts::SQRT_2) - (2.0 / std::f64::consts::PI).sqrt() * (-a * a / 2.0).exp() + a / k
        }),
    })
}

/// Count, mean, sum of squared deviations, min and max (first pass).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    min: f32,
    max: f32,
}

impl Moments {
    const EMPTY: Moments = Moments { n: 0, mean: 0.0, m2: 0.0, min: f32::INFINITY, max: f32::NEG_INFINITY };

    fn of(x: &[f32]) -> Moments {
        if x.is_empty() {
            return Moments::EMPTY;
        }
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let m2 = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
        let min = x.iter().copied().fold(f32::INFINITY, f32::min);
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        Moments { n: x.len() as u64, mean, m2, min, max }
    }

    /// Chan, Golub and LeVeque's pairwise combination.
    fn merge(self, o: Moments) -> Moments {
        if o.n == 0 {
            return self;
        }
        if self.n == 0 {
            return o;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        let mean = self.mean + delta * (o.n as f64 / n as f64);
        let m2 = self.m2 + o.m2 + delta * delta * (self.n as f64 * o.n as f64 / n as f64);
        Moments { n, mean, m2, min: self.min.min(o.min), max: self.max.max(o.max) }
    }
}

/// ACIQ as a streaming, mergeable observer (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct AciqObserver {
    prior: Prior,
    bits: u32,
    policy: NonFinitePolicy,
    moments: Moments,
    /// Second pass (Laplace): `(mu, count, sum |x - mu|)`.
    deviation: Option<(f64, u64, f64)>,
}

impl AciqObserver {
    pub fn new(prior: Prior, bits: u32) -> Result<AciqObserver> {
        check_bits(bits)?;
        Ok(AciqObserver { prior, bits, policy: NonFinitePolicy::Error, moments: Moments::EMPTY, deviation: None })
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> AciqObserver {
        self.policy = policy;
        self
    }

    /// Whether [`Self::begin_second_pass`] must be called (and the data observed again) before
    /// [`Observer::range`]: the Laplace prior's `b` needs the mean first.
    pub fn needs_second_pass(&self) -> bool {
        self.prior == Prior::Laplace && self.deviation.is_none()
    }

    /// Fixes `mu` from the first pass; from now on `observe` adds `|x - mu|`.
    pub fn begin_second_pass(&mut self) -> Result<()> {
        if self.moments.n == 0 {
            return Err(QuantError::EmptyInput { what: "ACIQ first pass" });
        }
        self.deviation = Some((self.moments.mean, 0, 0.0));
        Ok(())
    }

    /// `mu`.
    pub fn mean(&self) -> Result<f64> {
        if self.moments.n == 0 {
            return Err(QuantError::EmptyInput { what: "ACIQ observer" });
        }
        Ok(self.moments.mean)
    }

    /// `b` (Laplace, after the second pass) or `sigma` (Gaussian).
    pub fn scale(&self) -> Result<f64> {
        let _ = self.mean()?;
        match self.prior {
            Prior::Gaussian => Ok((self.moments.m2 / self.moments.n as f64).sqrt()),
            Prior::Laplace => match self.deviation {
                Some((_, n, sum)) if n > 0 => Ok(sum / n as f64),
                _ => Err(QuantError::InvalidArgument {
                    what: "ACIQ Laplace",
                    detail: "b = mean |x - mu| needs the second pass over the data".into(),
                }),
            },
        }
    }

    /// `alpha* = ratio(bits) * scale`.
    pub fn alpha(&self) -> Result<f64> {
        Ok(optimal_ratio(self.prior, self.bits)? * self.scale()?)
    }
}

impl Observer for AciqObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        let x = self.policy.filter(x)?;
        match &mut self.deviation {
            None => self.moments = self.moments.merge(Moments::of(&x)),
            Some((mu, n, sum)) => {
                *sum += x.iter().map(|&v| (v as f64 - *mu).abs()).sum::<f64>();
                *n += x.len() as u64;
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.prior != other.prior || self.bits != other.bits {
            return Err(QuantError::Unsupported {
                what: "merging ACIQ observers with different priors or bits".into(),
            });
        }
        match (&mut self.deviation, &other.deviation) {
            (None, None) => {
                self.moments = self.moments.merge(other.moments);
                Ok(())
            }
            (Some((mu, n, sum)), Some((omu, on, osum))) if mu.to_bits() == omu.to_bits() => {
                *n += on;
                *sum += osum;
                Ok(())
            }
            _ => Err(QuantError::Unsupported {
                what: "merging ACIQ observers in different passes (or second passes with different means)".into(),
            }),
        }
    }

    /// `[max(min, mu - alpha), min(max, mu + alpha)]`.
    fn range(&self) -> Result<Range> {
        let mu = self.mean()?;
        let alpha = self.alpha()?;
        let lo = ((mu - alpha) as f32).max(self.moments.min);
        let hi = ((mu + alpha) as f32).min(self.moments.max);
        Range::new(lo, hi)
    }
}

/// Both passes (as needed) over in-memory batches.
pub fn calibrate(prior: Prior, bits: u32, batches: &[&[f32]], policy: NonFinitePolicy) -> Result<Range> {
    let mut o = AciqObserver::new(prior, bits)?.with_policy(policy);
    batches.iter().try_for_each(|b| o.observe(b))?;
    if o.needs_second_pass() {
        o.begin_second_pass()?;
        batches.iter().try_for_each(|b| o.observe(b))?;
    }
    o.range()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_known_values() {
        let cases = [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (1.9999, 0.004679802092970608),
            (2.0, 0.004677734981047265),
            (3.0, 2.2090496998585438e-05),
            (5.0, 1.5374597944280351e-12),
            (-1.0, 1.842700792949715),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1e-12, "erfc({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn published_ratios() {
        // the paper's two decimals, and the full values printed in the authors' int_quantizer.py
        let laplace = [(2, 2.83, 2.83068299), (3, 3.89, 3.89722946), (4, 5.03, 5.02864014), (8, 9.89, 9.89675982)];
        let gauss = [(2, 1.71, 1.71063519), (3, 2.15, 2.15159277), (4, 2.55, 2.55913646), (8, 3.92, 3.92403714)];
        for (prior, table) in [(Prior::Laplace, laplace), (Prior::Gaussian, gauss)] {
            for (bits, two_decimals, full) in table {
                let r = optimal_ratio(prior, bits).unwrap();
                assert!((r - two_decimals).abs() < 0.01, "{prior:?} {bits} bits: {r}");
                // their solver stopped within 2e-6 (8-bit Gaussian: 3.92403714 vs 3.9240355)
                assert!((r - full).abs() < 5e-6, "{prior:?} {bits} bits: {r} vs {full}");
            }
        }
    }

    #[test]
    fn ratio_minimizes_the_model() {
        for prior in [Prior::Laplace, Prior::Gaussian] {
            for bits in [2, 4, 8] {
                let r = optimal_ratio(prior, bits).unwrap();
                let e = |a: f64| clipping_mse(prior, a, 1.0, bits).unwrap();
                assert!(e(r) <= e(r * 0.99) && e(r) <= e(r * 1.01));
            }
        }
    }

    #[test]
    fn observer_two_passes() {
        // symmetric data: mean 0, mean |x| = 1.5
        let x = [-2.0f32, -1.0, 1.0, 2.0];
        let r = calibrate(Prior::Laplace, 2, &[&x], NonFinitePolicy::Error).unwrap();
        // alpha = 2.83 * 1.5 > 2: clamped to the data
        assert_eq!(r, Range { min: -2.0, max: 2.0 });
        let mut o = AciqObserver::new(Prior::Laplace, 2).unwrap();
        o.observe(&x).unwrap();
        assert!(o.range().is_err());
        o.begin_second_pass().unwrap();
        o.observe(&x).unwrap();
        assert!((o.scale().unwrap() - 1.5).abs() < 1e-15);
        assert!(AciqObserver::new(Prior::Gaussian, 0).is_err());
        assert!(calibrate(Prior::Gaussian, 4, &[], NonFinitePolicy::Error).is_err());
        assert_eq!(
            calibrate(Prior::Gaussian, 4, &[&[3.0; 5]], NonFinitePolicy::Error).unwrap(),
            Range { min: 3.0, max: 3.0 }
        );
    }
}
