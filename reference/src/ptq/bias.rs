//! High-bias absorption and bias correction (Nagel et al., ICCV 2019, sec. 4.2 and 4.3).
//!
//! **Bias correction.** Quantizing a layer's weights `W -> W~` adds the error `e = W~ - W`, and
//! its output `W~ x + b` is off by `e x`, whose mean over the data is `e E[x]`: a systematic
//! shift of each output channel that the next layers see as a wrong bias. The correction folds
//! it back:
//!
//! ```text
//! b' = b - e E[x]                  (paper, eq. 14 and 15)
//! ```
//!
//! with `E[x]` either **empirical**, the mean input over calibration data ([`input_mean`]), or
//! **analytic**, from the statistics of the BatchNorm that feeds the layer through a ReLU: a
//! pre-activation `N(beta, gamma^2)` gives
//!
//! ```text
//! E[ReLU(v)] = gamma phi(beta / gamma) + beta Phi(beta / gamma)        (paper, eq. 17)
//! ```
//!
//! (`phi`, `Phi` the standard normal density and distribution: [`relu_normal_mean`]).
//!
//! **High-bias absorption.** After equalization some channels have large biases that widen the
//! activation ranges. When a channel's pre-activation `v_i` is always at least `c_i >= 0`, then
//! `ReLU(v_i) = ReLU(v_i - c_i) + c_i`, and the constant `c_i` can move into the next layer:
//!
//! ```text
//! b1' = b1 - c          b2' = b2 + W2 c          (paper, eq. 11)
//! ```
//!
//! exact wherever `v_i >= c_i`. The paper picks `c_i = max(0, beta_i - 3 gamma_i)` from
//! BatchNorm statistics ([`absorption_from_batchnorm`], exact for 99.865% of a normal
//! pre-activation); [`absorption_from_data`] picks `c_i = max(0, min over the data of v_i)`,
//! exact on that data.

use super::layer::Dense;
use crate::error::{check_finite, check_len, QuantError, Result};

/// The mean of each input feature over calibration inputs `xs` (each of length `inp`).
pub fn input_mean(xs: &[Vec<f32>], inp: usize) -> Result<Vec<f32>> {
    if xs.is_empty() {
        return Err(QuantError::EmptyInput { what: "calibration inputs" });
    }
    let mut sum = vec![0f64; inp];
    for x in xs {
        check_len("calibration input", inp, x.len())?;
        check_finite("calibration input", x)?;
        for (s, &v) in sum.iter_mut().zip(x) {
            *s += v as f64;
        }
    }
    Ok(sum.iter().map(|s| (s / xs.len() as f64) as f32).collect())
}

/// The bias that removes the mean output shift of quantized weights `wq` (same shape as
/// `layer.w`) given the mean input `mean_x`: `b - (wq - w) mean_x`.
pub fn corrected_bias(layer: &Dense, wq: &[f32], mean_x: &[f32]) -> Result<Vec<f32>> {
    check_len("quantized weights", layer.w.len(), wq.len())?;
    check_len("mean input", layer.inp, mean_x.len())?;
    check_finite("quantized weights", wq)?;
    check_finite("mean input", mean_x)?;
    Ok((0..layer.out)
        .map(|o| {
            let r = o * layer.inp..(o + 1) * layer.inp;
            let shift: f64 = layer.w[r.clone()]
                .iter()
                .zip(&wq[r])
                .zip(mean_x)
                .map(|((&w, &q), &m)| (q as f64 - w as f64) * m as f64)
                .sum();
            (layer.b[o] as f64 - shift) as f32
        })
        .collect())
}

/// The standard normal density.
fn phi(t: f64) -> f64 {
    (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal distribution function, `(1 + erf(t / sqrt 2)) / 2`.
fn big_phi(t: f64) -> f64 {
    0.5 * libm::erfc(-t / std::f64::consts::SQRT_2)
}

/// `E[ReLU(v)]` for `v ~ N(beta, gamma^2)` (`gamma >= 0`; `gamma = 0` gives `max(beta, 0)`).
pub fn relu_normal_mean(beta: f32, gamma: f32) -> Result<f32> {
    if !beta.is_finite() {
        return Err(QuantError::NonFinite { what: "beta", index: 0, value: beta as f64 });
    }
    if !(gamma.is_finite() && gamma >= 0.0) {
        return Err(QuantError::OutOfDomain { what: "gamma", value: gamma as f64, domain: "finite and >= 0" });
    }
    if gamma == 0.0 {
        return Ok(beta.max(0.0));
    }
    let (b, g) = (beta as f64, gamma as f64);
    Ok((g * phi(b / g) + b * big_phi(b / g)) as f32)
}

/// `c_i = max(0, beta_i - 3 gamma_i)`: the paper's absorbable amount from BatchNorm statistics.
pub fn absorption_from_batchnorm(beta: &[f32], gamma: &[f32]) -> Result<Vec<f32>> {
    check_len("gamma", beta.len(), gamma.len())?;
    check_finite("beta", beta)?;
    check_finite("gamma", gamma)?;
    Ok(beta.iter().zip(gamma).map(|(&b, &g)| (b - 3.0 * g.abs()).max(0.0)).collect())
}

/// `c_i = max(0, min_n v_i)` over the pre-activations `pre` of calibration data (each of length
/// `channels`): exact on that data.
pub fn absorption_from_data(pre: &[Vec<f32>], channels: usize) -> Result<Vec<f32>> {
    if pre.is_empty() {
        return Err(QuantError::EmptyInput { what: "pre-activations" });
    }
    let mut c = vec![f32::INFINITY; channels];
    for v in pre {
        check_len("pre-activation", channels, v.len())?;
        check_finite("pre-activation", v)?;
        for (m, &x) in c.iter_mut().zip(v) {
            *m = m.min(x);
        }
    }
    Ok(c.into_iter().map(|m| m.max(0.0)).collect())
}

/// Moves `c` (one non-negative amount per channel between the layers, a ReLU between them) from
/// `first`'s bias into `second`'s: `b1 - c`, `b2 + W2 c`.
pub fn absorb_high_bias(first: &Dense, second: &Dense, c: &[f32]) -> Result<(Dense, Dense)> {
    check_len("absorbed amounts", first.out, c.len())?;
    check_len("second layer inputs", first.out, second.inp)?;
    if let Some(&v) = c.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(QuantError::OutOfDomain { what: "absorbed amount", value: v as f64, domain: "finite and >= 0" });
    }
    let mut a = first.clone();
    let mut b = second.clone();
    for (bi, ci) in a.b.iter_mut().zip(c) {
        *bi -= ci;
    }
    for o in 0..b.out {
        let add: f64 = second.row(o).iter().zip(c).map(|(&w, &ci)| w as f64 * ci as f64).sum();
        b.b[o] = (b.b[o] as f64 + add) as f32;
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_mean_of_a_normal() {
        // E[ReLU(N(0, 1))] = 1 / sqrt(2 pi).
        assert!((relu_normal_mean(0.0, 1.0).unwrap() as f64 - 0.398_942_28).abs() < 1e-7);
        // Far positive: the mean itself; far negative: ~0.
        assert!((relu_normal_mean(10.0, 1.0).unwrap() - 10.0).abs() < 1e-5);
        assert!(relu_normal_mean(-10.0, 1.0).unwrap() < 1e-20);
        assert!(relu_normal_mean(0.0, -1.0).is_err());
    }

    #[test]
    fn correction_removes_the_mean_shift() {
        let l = Dense::new(1, 2, vec![1.0, 2.0], vec![0.0]).unwrap();
        let wq = [1.25, 1.5];
        let b = corrected_bias(&l, &wq, &[2.0, 1.0]).unwrap();
        // shift = 0.25 * 2 - 0.5 * 1 = 0.
        assert_eq!(b, vec![0.0]);
        let b = corrected_bias(&l, &wq, &[4.0, 1.0]).unwrap();
        assert_eq!(b, vec![-0.5]);
    }
}
