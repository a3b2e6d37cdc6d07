//! The dense layer the PTQ algorithms transform, and the weight quantizer they measure against.
//!
//! A [`Dense`] is `y = W x + b` with `W` stored row-major as `[out, in]` (PyTorch's `Linear`
//! layout). A convolution fits the same shape per output channel when its weights are flattened
//! to `[out, in * kh * kw]` and `groups = 1`; a depthwise convolution is a [`Dense`] whose rows
//! each read one input channel (see [`crate::ptq::cle`]).
//!
//! Weights are quantized the way TensorRT does it (and PyTorch's per-channel symmetric observer
//! with a narrow range): symmetric, zero point 0, codes in `[-(2^(b-1) - 1), 2^(b-1) - 1]`,
//! scale `max|w| / (2^(b-1) - 1)` over the tensor or over each output channel, round half to even.

use crate::error::{check_finite, QuantError, Result};
use crate::quant_params::QuantParams;
use crate::quantize::{fake_quantize, QuantizeRule, ScaleOp};
use crate::rounding::RoundingMode;
use crate::scheme::{Axis, CodeRange};

/// How many scales a weight tensor gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightGranularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per output channel (row).
    PerChannel,
}

/// `y = W x + b`, `W` row-major `[out, inp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub out: usize,
    pub inp: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Dense {
    /// Checks the lengths (`w` is `out * inp`, `b` is `out`) and that every value is finite.
    pub fn new(out: usize, inp: usize, w: Vec<f32>, b: Vec<f32>) -> Result<Dense> {
        if out == 0 || inp == 0 {
            return Err(QuantError::EmptyInput { what: "a dense layer's weights" });
        }
        let n = out.checked_mul(inp).ok_or(QuantError::TooLarge {
            what: "out * inp",
            value: out as u128 * inp as u128,
            limit: usize::MAX as u128,
        })?;
        crate::error::check_len("w", n, w.len())?;
        crate::error::check_len("b", out, b.len())?;
        check_finite("w", &w)?;
        check_finite("b", &b)?;
        Ok(Dense { out, inp, w, b })
    }

    /// Row `o` of `W`.
    pub fn row(&self, o: usize) -> &[f32] {
        &self.w[o * self.inp..(o + 1) * self.inp]
    }

    /// `W x + b` for one input vector (`f64` accumulation, rounded to `f32` once).
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        crate::error::check_len("x", self.inp, x.len())?;
        Ok((0..self.out)
            .map(|o| {
                let dot: f64 = self.row(o).iter().zip(x).map(|(&w, &v)| w as f64 * v as f64).sum();
                (dot + self.b[o] as f64) as f32
            })
            .collect())
    }

    /// The same layer with weights `w` (same shape).
    pub fn with_weights(&self, w: Vec<f32>) -> Result<Dense> {
        Dense::new(self.out, self.inp, w, self.b.clone())
    }
}

/// The symmetric code range of `bits` bits: `[-(2^(b-1) - 1), 2^(b-1) - 1]` (2..=16 bits).
pub fn symmetric_range(bits: u32) -> Result<CodeRange> {
    if !(2..=16).contains(&bits) {
        return Err(QuantError::BitWidthOutOfRange { bits });
    }
    let m = (1i32 << (bits - 1)) - 1;
    CodeRange::new(-m, m)
}

/// The symmetric max-abs scales of `w` (`[rows, cols]`): one per tensor or one per row. An
/// all-zero tensor or row gets scale 1 (its codes are all 0 whatever the scale).
pub fn symmetric_scales(w: &[f32], rows: usize, cols: usize, bits: u32, g: WeightGranularity) -> Result<Vec<f32>> {
    crate::error::check_len("w", rows.saturating_mul(cols), w.len())?;
    check_finite("w", w)?;
    let qmax = symmetric_range(bits)?.qmax() as f32;
    let scale = |xs: &[f32]| {
        let m = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        if m > 0.0 {
            m / qmax
        } else {
            1.0
        }
    };
    Ok(match g {
        WeightGranularity::PerTensor => vec![scale(w)],
        WeightGranularity::PerChannel => w.chunks(cols.max(1)).map(scale).collect(),
    })
}

/// The rounding every PTQ algorithm compares against: `round(w / s)` half to even.
pub const NEAREST: QuantizeRule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);

/// `w` fake-quantized with the scales `scales` (one, or one per row): `clamp(round(w / s)) s`.
pub fn fake_quantize_with(w: &[f32], rows: usize, cols: usize, scales: &[f32], bits: u32) -> Result<Vec<f32>> {
    let range = symmetric_range(bits)?;
    let params = if scales.len() == 1 {
        QuantParams::per_tensor(scales[0], 0, range)
    } else {
        QuantParams::per_axis(Axis::new(0), scales.to_vec(), vec![0; scales.len()], range)
    };
    let mut out = vec![0f32; w.len()];
    fake_quantize(w, &[rows, cols], &params, NEAREST, &mut out, None)?;
    Ok(out)
}

/// `w` fake-quantized with round-to-nearest at `bits` bits and the max-abs scales of `g`.
pub fn fake_quantize_weights(w: &[f32], rows: usize, cols: usize, bits: u32, g: WeightGranularity) -> Result<Vec<f32>> {
    let scales = symmetric_scales(w, rows, cols, bits, g)?;
    fake_quantize_with(w, rows, cols, &scales, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_scales_and_codes() {
        let w = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0];
        assert_eq!(symmetric_scales(&w, 2, 3, 8, WeightGranularity::PerChannel).unwrap(), vec![1.0 / 127.0, 1.0]);
        let q = fake_quantize_weights(&w, 2, 3, 2, WeightGranularity::PerTensor).unwrap();
        // 2 bits: codes -1..=1, scale 1: 0.5 -> 0 (tie to even), 0.25 -> 0.
        assert_eq!(q, vec![1.0, -0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(matches!(symmetric_range(1), Err(QuantError::BitWidthOutOfRange { bits: 1 })));
    }

    #[test]
    fn dense_checks_shapes_and_values() {
        assert!(Dense::new(2, 2, vec![0.0; 3], vec![0.0; 2]).is_err());
        assert!(Dense::new(1, 1, vec![f32::NAN], vec![0.0]).is_err());
        let d = Dense::new(1, 2, vec![1.0, 2.0], vec![0.5]).unwrap();
        assert_eq!(d.forward(&[1.0, 1.0]).unwrap(), vec![3.5]);
    }
}
