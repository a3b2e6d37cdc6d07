//! AdaRound: adaptive rounding (Nagel, Amjad, van Baalen, Louizos, Blankevoort, *Up or Down?
//! Adaptive Rounding for Post-Training Quantization*, ICML 2020).
//!
//! Round-to-nearest minimizes each weight's own error, not the layer's output error. AdaRound
//! learns, per weight, whether to round down or up so that the layer's output on calibration
//! data is reconstructed:
//!
//! ```text
//! W~ = s clamp(floor(W / s) + h(V), qmin, qmax)
//! h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)          zeta = 1.1, gamma = -0.1   (eq. 23)
//! minimize over V:  (1/N) sum_n || W~ x_n - W x_n ||^2  +  lambda sum_ij (1 - |2 h(V_ij) - 1|^beta)   (eq. 25)
//! ```
//!
//! The rectified sigmoid `h` can reach exactly 0 and 1; the regularizer pushes every `h` to one
//! of them, more strongly as `beta` anneals from 20 to 2 after a warm start (the first 20% of the
//! iterations, without the regularizer), with `lambda = 0.01`. At the end each weight rounds up
//! where `h(V) >= 1/2`. `V` starts where `h(V)` equals the fractional part of `W / s`, so the
//! soft weights start at the real ones.
//!
//! The reconstruction term is written with the input's second moment `C = (1/N) sum_n x_n x_n^T`:
//! `sum_o d_o^T C d_o` with `d_o = W~[o, :] - W[o, :]`, gradient `2 C d_o`: for the whole layer
//! the matrix product `D C` (`ndarray`'s `dot`), so one iteration costs `out * inp^2`
//! multiply-adds whatever the number of calibration rows. The optimizer is Adam
//! (lr 0.01, beta1 0.9, beta2 0.999, eps 1e-8) on the full batch: no sampling, so the result
//! depends only on the inputs: the same on every run of one machine (`matrixmultiply`, under
//! `ndarray`'s `dot`, picks FMA kernels where the CPU has them, so two CPUs may differ in the
//! last bits of `D C`).

use super::layer::{symmetric_range, Dense};
use crate::error::{check_finite, check_len, QuantError, Result};
use ndarray::Array2;

/// AdaRound's settings (the paper's defaults in [`AdaRoundConfig::PAPER`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaRoundConfig {
    pub iterations: usize,
    pub lambda: f64,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Fraction of the iterations without the regularizer.
    pub warm_start: f64,
    pub learning_rate: f64,
}

impl AdaRoundConfig {
    /// `lambda = 0.01`, `beta` 20 -> 2 after a 20% warm start, Adam lr 0.01, 1000 iterations.
    pub const PAPER: AdaRoundConfig = AdaRoundConfig {
        iterations: 1000,
        lambda: 0.01,
        beta_start: 20.0,
        beta_end: 2.0,
        warm_start: 0.2,
        learning_rate: 0.01,
    };
}

const ZETA: f64 = 1.1;
const GAMMA: f64 = -0.1;

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The rectified sigmoid `h(V)` and its derivative.
fn rectified(v: f64) -> (f64, f64) {
    let s = sigmoid(v);
    let u = s * (ZETA - GAMMA) + GAMMA;
    if u <= 0.0 {
        (0.0, 0.0)
    } else if u >= 1.0 {
        (1.0, 0.0)
    } else {
        (u, (ZETA - GAMMA) * s * (1.0 - s))
    }
}

/// `beta` at iteration `t`: constant `beta_start` during the warm start, then linear to `beta_end`.
fn beta_at(cfg: &AdaRoundConfig, t: usize) -> Option<f64> {
    let start = (cfg.warm_start * cfg.iterations as f64) as usize;
    if t < start {
        return None;
    }
    let rel = (t - start) as f64 / (cfg.iterations - start).max(1) as f64;
    Some(cfg.beta_end + (cfg.beta_start - cfg.beta_end) * (1.0 - rel).max(0.0))
}

/// AdaRound's result for one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaRounded {
    /// The quantized weights (dequantized, `[out, inp]`).
    pub weights: Vec<f32>,
    /// Weights rounded the other way than round-to-nearest would.
    pub flipped: usize,
    /// Output MSE on the calibration data: round-to-nearest, then AdaRound.
    pub mse_nearest: f64,
    pub mse_adaround: f64,
}

/// The second moment `C = (1/N) X^T X` of the inputs (the rows of `X`), `inp x inp`.
fn second_moment(xs: &[Vec<f32>], inp: usize) -> Result<Array2<f64>> {
    if xs.is_empty() {
        return Err(QuantError::EmptyInput { what: "calibration inputs" });
    }
    let mut x = Array2::<f64>::zeros((xs.len(), inp));
    for (r, row) in xs.iter().enumerate() {
        check_len("calibration input", inp, row.len())?;
        check_finite("calibration input", row)?;
        x.row_mut(r).iter_mut().zip(row).for_each(|(d, &v)| *d = v as f64);
    }
    Ok(x.t().dot(&x) / xs.len() as f64)
}

/// `sum_o d_o^T C d_o / out` with `D = Wq - W` (`out x inp`): the mean squared output error per
/// output, `sum(D * (D C)) / out`.
fn output_mse(w: &[f32], wq: &[f64], c: &Array2<f64>, out: usize, inp: usize) -> f64 {
    let d = Array2::from_shape_fn((out, inp), |(o, i)| wq[o * inp + i] - w[o * inp + i] as f64);
    (&d * &d.dot(c)).sum() / out as f64
}

/// AdaRound for `layer` with the weight scales `scales` (one, or one per output channel) at
/// `bits` bits, reconstructing its output on the calibration inputs `xs`.
pub fn adaround(layer: &Dense, scales: &[f32], bits: u32, xs: &[Vec<f32>], cfg: &AdaRoundConfig) -> Result<AdaRounded> {
    let (out, inp) = (layer.out, layer.inp);
    if scales.len() != 1 && scales.len() != out {
        return Err(QuantError::ParamCountMismatch { what: "scales", expected: out, got: scales.len() });
    }
    for (index, &s) in scales.iter().enumerate() {
        crate::quant_params::check_scale(index, s)?;
    }
    if cfg.iterations == 0 || cfg.iterations > 1_000_000 {
        return Err(QuantError::OutOfDomain {
            what: "iterations",
            value: cfg.iterations as f64,
            domain: "1..=1000000",
        });
    }
    let range = symmetric_range(bits)?;
    let (qmin, qmax) = (range.qmin() as f64, range.qmax() as f64);
    let c = second_moment(xs, inp)?;
    let scale = |k: usize| scales[if scales.len() == 1 { 0 } else { k / inp }] as f64;
    let n = out * inp;
    let floor: Vec<f64> = (0..n).map(|k| (layer.w[k] as f64 / scale(k)).floor()).collect();
    let to_weight = |k: usize, h: f64| (floor[k] + h).clamp(qmin, qmax) * scale(k);
    // V where h(V) = frac(W / s).
    let mut v: Vec<f64> = (0..n)
        .map(|k| {
            let frac = layer.w[k] as f64 / scale(k) - floor[k];
            let p = ((frac - GAMMA) / (ZETA - GAMMA)).clamp(1e-6, 1.0 - 1e-6);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let (mut m, mut s2) = (vec![0f64; n], vec![0f64; n]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let mut grad = vec![0f64; n];
    for t in 0..cfg.iterations {
        let hs: Vec<(f64, f64)> = v.iter().map(|&x| rectified(x)).collect();
        let wq: Vec<f64> = (0..n).map(|k| to_weight(k, hs[k].0)).collect();
        // The reconstruction gradient: 2 (D C)[o, i] / out, with D = W~ - W (C is symmetric).
        let d = Array2::from_shape_fn((out, inp), |(o, i)| wq[o * inp + i] - layer.w[o * inp + i] as f64);
        let dc = d.dot(&c);
        for (k, g) in grad.iter_mut().enumerate() {
            let q = floor[k] + hs[k].0;
            let inside = q > qmin && q < qmax || (q == qmin && hs[k].0 > 0.0) || (q == qmax && hs[k].0 < 1.0);
            let dw = if inside { scale(k) * hs[k].1 } else { 0.0 };
            *g = 2.0 * dc[(k / inp, k % inp)] / out as f64 * dw;
        }
        if let Some(beta) = beta_at(cfg, t) {
            for k in 0..n {
                let (h, dh) = hs[k];
                let a = 2.0 * h - 1.0;
                let dreg = -beta * a.abs().powf(beta - 1.0) * a.signum() * 2.0;
                grad[k] += cfg.lambda * dreg * dh;
            }
        }
        let step = (t + 1) as i32;
        for k in 0..n {
            m[k] = b1 * m[k] + (1.0 - b1) * grad[k];
            s2[k] = b2 * s2[k] + (1.0 - b2) * grad[k] * grad[k];
            let mh = m[k] / (1.0 - b1.powi(step));
            let vh = s2[k] / (1.0 - b2.powi(step));
            v[k] -= cfg.learning_rate * mh / (vh.sqrt() + eps);
        }
    }
    let hard: Vec<f64> = (0..n).map(|k| to_weight(k, if rectified(v[k]).0 >= 0.5 { 1.0 } else { 0.0 })).collect();
    let nearest: Vec<f64> = (0..n)
        .map(|k| {
            (crate::rounding::round_f32(
                (layer.w[k] as f64 / scale(k)) as f32,
                crate::rounding::RoundingMode::HalfToEven,
                0,
            ) as f64)
                .clamp(qmin, qmax)
                * scale(k)
        })
        .collect();
    let flipped = hard.iter().zip(&nearest).filter(|(a, b)| a != b).count();
    Ok(AdaRounded {
        weights: hard.iter().map(|&w| w as f32).collect(),
        flipped,
        mse_nearest: output_mse(&layer.w, &nearest, &c, out, inp),
        mse_adaround: output_mse(&layer.w, &hard, &c, out, inp),
    })
}
