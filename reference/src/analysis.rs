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

use crate::error::{check_len, Result};
use crate::params::QuantParams;
use crate::quantize::{dequantize_value, prepare, quantize_value, QuantizeRule};

/// Error statistics of quantizing one tensor.
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
}

/// Quantizes and dequantizes `x` under `params` and `rule` and measures the error. Fails where
/// [`crate::quantize::quantize_codes`] fails (NaN input, bad parameters).
pub fn analyze(x: &[f32], shape: &[usize], params: &QuantParams, rule: QuantizeRule) -> Result<ErrorStats> {
    let (layout, scales) = prepare(params, shape, x.len(), rule.scale_op)?;
    let range = params.range;
    let levels = range.levels();
    let mut used = vec![false; levels as usize];
    let (mut se, mut se_round, mut se_clip, mut signal) = (0f64, 0f64, 0f64, 0f64);
    let (mut max_abs, mut max_steps, mut clipped) = (0f64, 0f64, 0usize);
    for (i, &xi) in x.iter().enumerate() {
        let p = layout.index(i);
        let (s, z) = (params.scales[p], params.zero_points[p]);
        let q = quantize_value(xi, &scales[p], z, range, rule, i)?;
        used[(q - range.qmin()) as usize] = true;
        let xh = dequantize_value(q, s, z) as f64;
        let lo = dequantize_value(range.qmin(), s, z) as f64;
        let hi = dequantize_value(range.qmax(), s, z) as f64;
        let xd = xi as f64;
        let inside = xd.clamp(lo, hi);
        let (c, r) = (xd - inside, inside - xh);
        if c != 0.0 {
            clipped += 1;
        }
        let e = xd - xh;
        se += e * e;
        se_round += r * r;
        se_clip += c * c;
        signal += xd * xd;
        max_abs = max_abs.max(e.abs());
        max_steps = max_steps.max(r.abs() / s as f64);
    }
    let n = x.len().max(1) as f64;
    let sqnr_db = if se == 0.0 { f64::INFINITY } else { 10.0 * (signal / se).log10() };
    let codes_used = used.iter().filter(|&&u| u).count() as u64;
    Ok(ErrorStats {
        count: x.len(),
        mse: se / n,
        round_mse: se_round / n,
        clip_mse: se_clip / n,
        max_abs_error: max_abs,
        max_round_error_steps: max_steps,
        clipped_fraction: clipped as f64 / n,
        sqnr_db,
        effective_bits: (sqnr_db - 1.76) / 6.02,
        codes_used,
        codes_available: levels,
        level_utilization: codes_used as f64 / levels as f64,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::ScaleOp;
    use crate::rounding::RoundingMode;
    use crate::scheme::QType;

    #[test]
    fn decomposition_and_theory() {
        // Uniform data over exactly the representable range: noise s^2/12 against signal
        // (2^b s)^2/12, so SQNR = 20 log10(2^b) = 6.02 b dB.
        let n = 200_000;
        let s = 2.0 / 255.0;
        let p = QuantParams::per_tensor(s, 0, QType::I8.full_range());
        let x: Vec<f32> = (0..n).map(|i| (-128.0 + 255.0 * (i as f64 + 0.5) / n as f64) as f32 * s).collect();
        let rule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);
        let st = analyze(&x, &[n], &p, rule).unwrap();
        assert!((st.sqnr_db - 6.02 * 8.0).abs() < 0.05, "{st:?}");
        assert_eq!(st.clip_mse, 0.0);
        assert_eq!(st.level_utilization, 1.0);
        assert!(st.max_round_error_steps <= 0.5 + 1e-5);

        // Data twice as wide: half of it clips; round + clip = total.
        let wide: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
        let st = analyze(&wide, &[n], &p, rule).unwrap();
        assert!((st.clipped_fraction - 0.5).abs() < 0.01);
        assert!((st.round_mse + st.clip_mse - st.mse).abs() <= 1e-12 * st.mse);
    }

    #[test]
    fn full_scale_sine_gains_1_76_db() {
        // The textbook 6.02 b + 1.76 dB is for a full-scale sinusoid.
        let n = 100_000;
        let s = 1.0 / 127.0;
        let p = QuantParams::per_tensor(s, 0, QType::I8.full_range());
        let x: Vec<f32> = (0..n).map(|i| (i as f64 * 0.012345).sin() as f32 * 127.0 * s).collect();
        let st = analyze(&x, &[n], &p, QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven)).unwrap();
        assert!((st.sqnr_db - (6.02 * 8.0 + 1.76)).abs() < 0.1, "{st:?}");
        assert!((st.effective_bits - 8.0).abs() < 0.02, "{st:?}");
    }

    #[test]
    fn utilization_of_a_narrow_signal() {
        let p = QuantParams::per_tensor(1.0, 0, QType::U8.full_range());
        let x: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let st = analyze(&x, &[64], &p, QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven)).unwrap();
        assert_eq!(st.codes_used, 64);
        assert_eq!(st.level_utilization, 0.25);
        assert_eq!(st.mse, 0.0);
        assert!(st.sqnr_db.is_infinite());
    }
}
