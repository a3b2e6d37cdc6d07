//! Cross-layer equalization (Nagel, van Baalen, Blankevoort, Welling, *Data-Free Quantization
//! Through Weight Equalization and Bias Correction*, ICCV 2019, sec. 4.1).
//!
//! Two layers `y = W2 f(W1 x + b1) + b2` with an activation `f` that is positively homogeneous,
//! `f(s v) = s f(v)` for `s > 0` (ReLU, the identity), compute the same function after
//!
//! ```text
//! W1[i, :] <- W1[i, :] / s_i      b1[i] <- b1[i] / s_i      W2[:, i] <- W2[:, i] * s_i
//! ```
//!
//! for any `s_i > 0`: "scale one layer's channel down by s and the next one's up by s" (seed 003).
//! With `r1_i = max |W1[i, :]|` (the range of output channel `i` of the first layer) and
//! `r2_i = max |W2[:, i]|` (the range of input channel `i` of the second), the choice
//!
//! ```text
//! s_i = sqrt(r1_i / r2_i)          (paper, eq. 12: s_i = (1 / r2_i) sqrt(r1_i r2_i))
//! ```
//!
//! makes both ranges `sqrt(r1_i r2_i)`, which maximizes the product of the channels' precisions
//! relative to their tensors' ranges: per-tensor quantization then wastes fewer levels on
//! channels far smaller than the largest. A channel with `r1_i = 0` or `r2_i = 0` keeps `s_i = 1`.
//!
//! * **ReLU6** is homogeneous only up to its clip: `min(max(v, 0), 6)` becomes, for channel `i`,
//!   `min(max(v, 0), 6 / s_i)`; [`Equalized::clip`] returns those per-channel clips (the paper
//!   replaces ReLU6 by ReLU instead; keeping the adjusted clip keeps the function exact).
//! * **Depthwise then pointwise** (MobileNet): a depthwise layer's row `i` reads channel `i`
//!   only, so as the first layer its rows are scaled like any layer's, and as the second layer
//!   its row `i` (not a column) is multiplied by `s_i` ([`Kind::Depthwise`]).
//! * **Chains** of more than two layers are equalized pair by pair, repeated until no scale
//!   differs from 1 by more than a tolerance ([`equalize_chain`]).
//! * **GELU** (MiniLM's FFN) and other non-homogeneous activations are refused with
//!   [`QuantError::Unsupported`]: `s GELU(v / s) - GELU(v)` is not zero. Writing
//!   `GELU = ReLU + g` with `g` in `[-0.170, 0]`, treating GELU as homogeneous changes a channel's
//!   activation by `s g(v / s) - g(v)`, up to `0.170 max(s, 1)` in absolute value: an error in the
//!   fp32 function itself, before any quantization.

use super::layer::Dense;
use crate::error::{QuantError, Result};

/// The activation between two layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// `min(max(v, 0), clip)` (6 for ReLU6).
    ReluClip(f32),
    /// Any activation that is not positively homogeneous, by name (`"gelu"`, `"sigmoid"`, ...).
    NotHomogeneous(&'static str),
}

/// How a layer's weights read its input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every output reads every input channel: `W[o, i]` (Linear, or a convolution flattened to
    /// `[out, in * kh * kw]` with `kh * kw` consecutive columns per input channel).
    Dense { taps: usize },
    /// Row `i` reads input channel `i` only (a depthwise convolution, `[channels, kh * kw]`).
    Depthwise,
}

/// A layer with how it reads its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub dense: Dense,
    pub kind: Kind,
}

impl Layer {
    /// A Linear layer.
    pub fn linear(dense: Dense) -> Layer {
        Layer { dense, kind: Kind::Dense { taps: 1 } }
    }

    /// Input channels.
    fn in_channels(&self) -> usize {
        match self.kind {
            Kind::Dense { taps } => self.dense.inp / taps.max(1),
            Kind::Depthwise => self.dense.out,
        }
    }

    /// `r2_i`: the largest `|w|` that reads input channel `i`.
    fn input_range(&self, i: usize) -> f32 {
        let d = &self.dense;
        match self.kind {
            Kind::Dense { taps } => {
                (0..d.out).flat_map(|o| d.row(o)[i * taps..(i + 1) * taps].iter()).fold(0f32, |m, v| m.max(v.abs()))
            }
            Kind::Depthwise => d.row(i).iter().fold(0f32, |m, v| m.max(v.abs())),
        }
    }

    /// Multiplies every weight that reads input channel `i` by `s`.
    fn scale_input(&mut self, i: usize, s: f32) {
        let inp = self.dense.inp;
        match self.kind {
            Kind::Dense { taps } => {
                for o in 0..self.dense.out {
                    for w in &mut self.dense.w[o * inp + i * taps..o * inp + (i + 1) * taps] {
                        *w *= s;
                    }
                }
            }
            Kind::Depthwise => self.dense.w[i * inp..(i + 1) * inp].iter_mut().for_each(|w| *w *= s),
        }
    }

    /// Divides output channel `o`'s weights and bias by `s`.
    fn scale_output(&mut self, o: usize, s: f32) {
        let inp = self.dense.inp;
        self.dense.w[o * inp..(o + 1) * inp].iter_mut().for_each(|w| *w /= s);
        self.dense.b[o] /= s;
    }
}

/// The result of equalizing one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Equalized {
    pub first: Layer,
    pub second: Layer,
    /// `s_i` per channel between the two layers.
    pub scales: Vec<f32>,
    /// For [`Activation::ReluClip`], the per-channel clip `clip / s_i` that keeps the function
    /// exact; `None` otherwise.
    pub clip: Option<Vec<f32>>,
}

/// `s_i = sqrt(r1_i / r2_i)`, or 1 where either range is 0.
pub fn equalization_scales(first: &Layer, second: &Layer) -> Result<Vec<f32>> {
    let c = first.dense.out;
    if second.in_channels() != c || (second.kind == Kind::Depthwise && second.dense.out != c) {
        return Err(QuantError::InvalidArgument {
            what: "second layer",
            detail: format!("reads {} channels, the first layer writes {c}", second.in_channels()),
        });
    }
    if let Kind::Dense { taps } = second.kind {
        if taps == 0 || second.dense.inp != c * taps {
            return Err(QuantError::InvalidArgument {
                what: "second layer",
                detail: format!("{} input columns are not {c} channels x {taps} taps", second.dense.inp),
            });
        }
    }
    Ok((0..c)
        .map(|i| {
            let r1 = first.dense.row(i).iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
            let r2 = second.input_range(i) as f64;
            if r1 > 0.0 && r2 > 0.0 {
                (r1 / r2).sqrt() as f32
            } else {
                1.0
            }
        })
        .collect())
}

fn check_homogeneous(act: Activation) -> Result<()> {
    match act {
        Activation::NotHomogeneous(name) => Err(QuantError::Unsupported {
            what: format!(
                "cross-layer equalization through {name}: it is not positively homogeneous (f(s v) != s f(v)); \
                 for GELU, treating it as homogeneous would change each channel's activation by up to \
                 0.170 * max(s_i, 1) before any quantization"
            ),
        }),
        Activation::ReluClip(c) if !(c.is_finite() && c > 0.0) => {
            Err(QuantError::OutOfDomain { what: "ReLU clip", value: c as f64, domain: "finite and > 0" })
        }
        _ => Ok(()),
    }
}

/// Equalizes one pair `second(act(first(x)))` (see the module docs). The function computed is
/// unchanged up to f32 rounding of the scaled weights (each weight changes by one rounding).
pub fn equalize_pair(first: &Layer, act: Activation, second: &Layer) -> Result<Equalized> {
    check_homogeneous(act)?;
    let scales = equalization_scales(first, second)?;
    let (mut a, mut b) = (first.clone(), second.clone());
    for (i, &s) in scales.iter().enumerate() {
        a.scale_output(i, s);
        b.scale_input(i, s);
    }
    let clip = match act {
        Activation::ReluClip(c) => Some(scales.iter().map(|&s| c / s).collect()),
        _ => None,
    };
    Ok(Equalized { first: a, second: b, scales, clip })
}

/// A chain equalized to convergence.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub layers: Vec<Layer>,
    /// The product of every scale applied between layer `k` and `k + 1`, per channel.
    pub scales: Vec<Vec<f32>>,
    /// Sweeps over the pairs until every scale was within `tolerance` of 1.
    pub sweeps: usize,
}

/// Equalizes `layers[0] -> acts[0] -> layers[1] -> ... ` pair by pair, sweeping until a sweep's
/// scales are all within `tolerance` of 1 (or `max_sweeps`, then [`QuantError::InvalidArgument`]
/// says it did not converge). `acts.len()` must be `layers.len() - 1`; [`Activation::ReluClip`]
/// is refused here (its clip would become per-channel and change on every sweep: equalize such
/// pairs with [`equalize_pair`]).
pub fn equalize_chain(layers: &[Layer], acts: &[Activation], tolerance: f32, max_sweeps: usize) -> Result<Chain> {
    if layers.len() < 2 {
        return Err(QuantError::InvalidArgument { what: "layers", detail: "a chain needs two layers or more".into() });
    }
    crate::error::check_len("acts", layers.len() - 1, acts.len())?;
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(QuantError::OutOfDomain { what: "tolerance", value: tolerance as f64, domain: "finite and > 0" });
    }
    for &a in acts {
        check_homogeneous(a)?;
        if let Activation::ReluClip(_) = a {
            return Err(QuantError::Unsupported {
                what: "ReLU6 inside a chain: equalize that pair with equalize_pair (its clip becomes per channel)"
                    .into(),
            });
        }
    }
    let mut layers = layers.to_vec();
    let mut total: Vec<Vec<f32>> = layers[..layers.len() - 1].iter().map(|l| vec![1.0; l.dense.out]).collect();
    for sweep in 1..=max_sweeps {
        let mut worst = 0f32;
        for k in 0..layers.len() - 1 {
            let e = equalize_pair(&layers[k], acts[k], &layers[k + 1])?;
            for (t, &s) in total[k].iter_mut().zip(&e.scales) {
                *t *= s;
                worst = worst.max((s - 1.0).abs());
            }
            layers[k] = e.first;
            layers[k + 1] = e.second;
        }
        if worst <= tolerance {
            return Ok(Chain { layers, scales: total, sweeps: sweep });
        }
    }
    Err(QuantError::InvalidArgument {
        what: "max_sweeps",
        detail: format!("cross-layer equalization did not converge to tolerance {tolerance} in {max_sweeps} sweeps"),
    })
}

/// `act` applied to `v` with per-channel clips (for checking that equalization keeps the
/// function): `clip[i]` overrides a [`Activation::ReluClip`]'s clip for channel `i`.
pub fn apply(act: Activation, v: &mut [f32], clip: Option<&[f32]>) -> Result<()> {
    check_homogeneous(act)?;
    for (i, x) in v.iter_mut().enumerate() {
        *x = match act {
            Activation::Identity => *x,
            Activation::Relu => x.max(0.0),
            Activation::ReluClip(c) => x.max(0.0).min(clip.and_then(|k| k.get(i).copied()).unwrap_or(c)),
            Activation::NotHomogeneous(_) => *x,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(out: usize, inp: usize, w: Vec<f32>) -> Layer {
        Layer::linear(Dense::new(out, inp, w, vec![0.5; out]).unwrap())
    }

    #[test]
    fn ranges_become_equal_and_the_function_stays() {
        let a = layer(2, 2, vec![8.0, -1.0, 0.5, 0.25]);
        let b = layer(1, 2, vec![0.5, 4.0]);
        let e = equalize_pair(&a, Activation::Relu, &b).unwrap();
        assert_eq!(e.scales[0], 4.0);
        assert!((e.scales[1] - 0.125f32.sqrt()).abs() < 1e-7);
        // r1' = r2' = sqrt(r1 r2) per channel.
        for i in 0..2 {
            let r1 = e.first.dense.row(i).iter().fold(0f32, |m, v| m.max(v.abs()));
            let r2 = e.second.dense.w[i].abs();
            assert!((r1 - r2).abs() <= 1e-6 * r1, "{r1} {r2}");
        }
        let x = [0.3, -0.7];
        let run = |l1: &Layer, l2: &Layer| {
            let mut h = l1.dense.forward(&x).unwrap();
            apply(Activation::Relu, &mut h, None).unwrap();
            l2.dense.forward(&h).unwrap()
        };
        let (y0, y1) = (run(&a, &b), run(&e.first, &e.second));
        assert!((y0[0] - y1[0]).abs() <= 1e-6 * y0[0].abs().max(1.0));
    }

    #[test]
    fn gelu_is_refused_with_the_cost() {
        let a = layer(1, 1, vec![1.0]);
        let e = equalize_pair(&a, Activation::NotHomogeneous("GELU"), &a).unwrap_err();
        assert!(e.to_string().contains("0.170"), "{e}");
    }
}
