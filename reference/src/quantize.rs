//! Quantize, dequantize and fake-quantize: the linear uniform quantizer.
//!
//! For an element `x` with scale `s`, zero point `z` and code range `[qmin, qmax]`:
//!
//! ```text
//! v = x / s                  (ScaleOp::Divide: IEEE f32 division, as ONNX Runtime)
//!   | x * (1 / s)            (ScaleOp::MultiplyByReciprocal: the reciprocal rounded to f32 once,
//!                             then an f32 product, as PyTorch/fbgemm)
//! r = round(v)               (RoundingMode, in f32: see crate::rounding)
//! q = clamp(r + z, qmin, qmax)        quantize
//! x^ = (q - z) * s                    dequantize: integer subtraction, one f32 product
//! y = (clamp(r + z, qmin, qmax) - z) * s,  mask = qmin <= r + z <= qmax     fake-quantize
//! ```
//!
//! `r + z` is formed exactly (in f64), so the clamp sees the true integer. ±∞ inputs saturate to
//! `qmin`/`qmax`; a NaN input is an error ([`QuantError::NanInput`]), since no code stands for it.
//! The two ways of applying the scale really differ: on the golden vectors (which are rich in
//! ties) PyTorch's `x * (1/s)` and ONNX Runtime's `x / s` give different codes for 125 of 4,237
//! torch elements and 33 of 2,093 ONNX Runtime elements, so the choice is part of a
//! [`crate::profile::Profile`], never an accident of the code.
//!
//! On error the output buffers' contents are unspecified (they may be partly written).

use crate::error::{check_len, QuantError, Result};
use crate::pack::{self, Int4};
use crate::quant_params::{ParamLayout, QuantParams};
use crate::rounding::{round_f32, RoundingMode};
use crate::scheme::{Code, CodeRange};

/// How the scale is applied to `x` before rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleOp {
    /// `x / s` (ONNX Runtime's MLAS `QuantizeLinear`, numpy's `x / scale`).
    Divide,
    /// `x * RN(1 / s)`, with the f32 reciprocal computed once (PyTorch's `quantize_val` and
    /// fbgemm's `Quantize`, TFLite's float path).
    MultiplyByReciprocal,
}

impl ScaleOp {
    pub fn name(self) -> &'static str {
        match self {
            ScaleOp::Divide => "divide",
            ScaleOp::MultiplyByReciprocal => "multiply_reciprocal",
        }
    }

    pub fn parse(s: &str) -> Option<ScaleOp> {
        match s {
            "divide" | "div" => Some(ScaleOp::Divide),
            "multiply_reciprocal" | "mul" | "reciprocal" => Some(ScaleOp::MultiplyByReciprocal),
            _ => None,
        }
    }
}

/// The arithmetic of `x -> q`: how the scale is applied and how the result is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizeRule {
    pub scale_op: ScaleOp,
    pub rounding: RoundingMode,
}

impl QuantizeRule {
    pub const fn new(scale_op: ScaleOp, rounding: RoundingMode) -> QuantizeRule {
        QuantizeRule { scale_op, rounding }
    }
}

/// A scale prepared for one rule: the value `v = x op s` is computed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreparedScale {
    /// The scale `s`.
    pub scale: f32,
    /// `RN(1 / s)` (used only by [`ScaleOp::MultiplyByReciprocal`]).
    pub reciprocal: f32,
}

impl PreparedScale {
    /// Checks `scale` for `op` and precomputes its reciprocal. `index` names it in errors.
    pub fn new(index: usize, scale: f32, op: ScaleOp) -> Result<PreparedScale> {
        crate::quant_params::check_scale(index, scale)?;
        let reciprocal = 1.0f32 / scale;
        if op == ScaleOp::MultiplyByReciprocal && !reciprocal.is_finite() {
            return Err(QuantError::ReciprocalOverflow { index, scale: scale as f64 });
        }
        Ok(PreparedScale { scale, reciprocal })
    }

    /// `x / s` or `x * (1/s)`.
    #[inline]
    pub fn apply(&self, x: f32, op: ScaleOp) -> f32 {
        match op {
            ScaleOp::Divide => x / self.scale,
            ScaleOp::MultiplyByReciprocal => x * self.reciprocal,
        }
    }
}

/// `round(x op s) + z` before clamping, exact in f64 (NaN when `x` is NaN).
#[inline]
pub fn unclamped_code(x: f32, scale: &PreparedScale, zero_point: i32, rule: QuantizeRule, index: u64) -> f64 {
    round_f32(scale.apply(x, rule.scale_op), rule.rounding, index) as f64 + zero_point as f64
}

/// Quantizes one value: `clamp(round(x op s) + z, qmin, qmax)`. Fails on NaN (`index` is the
/// element's flat index, which also seeds stochastic rounding).
#[inline]
pub fn quantize_value(
    x: f32,
    scale: &PreparedScale,
    zero_point: i32,
    range: CodeRange,
    rule: QuantizeRule,
    index: usize,
) -> Result<i32> {
    if x.is_nan() {
        return Err(QuantError::NanInput { what: "x", index });
    }
    Ok(range.clamp_f64(unclamped_code(x, scale, zero_point, rule, index as u64)) as i32)
}

/// Dequantizes one code: `(q - z) * s`, the subtraction exact in i32 and one f32 product.
#[inline]
pub fn dequantize_value(q: i32, scale: f32, zero_point: i32) -> f32 {
    (q - zero_point) as f32 * scale
}

/// Fake-quantizes one value: returns `(y, mask)` with `y = (clamp(r + z) - z) * s` and
/// `mask = qmin <= r + z <= qmax` (the straight-through estimator's gradient is `mask ? 1 : 0`).
#[inline]
pub fn fake_quantize_value(
    x: f32,
    scale: &PreparedScale,
    zero_point: i32,
    range: CodeRange,
    rule: QuantizeRule,
    index: usize,
) -> Result<(f32, bool)> {
    if x.is_nan() {
        return Err(QuantError::NanInput { what: "x", index });
    }
    let q = unclamped_code(x, scale, zero_point, rule, index as u64);
    let inside = q >= range.qmin() as f64 && q <= range.qmax() as f64;
    let y = dequantize_value(range.clamp_f64(q) as i32, scale.scale, zero_point);
    Ok((y, inside))
}

/// Checks `params` for a tensor of `shape` with `len` elements and prepares every scale.
pub fn prepare(
    params: &QuantParams,
    shape: &[usize],
    len: usize,
    op: ScaleOp,
) -> Result<(ParamLayout, Vec<PreparedScale>)> {
    let layout = params.layout(shape, len)?;
    let scales =
        params.scales.iter().enumerate().map(|(i, &s)| PreparedScale::new(i, s, op)).collect::<Result<Vec<_>>>()?;
    Ok((layout, scales))
}

/// Quantizes `x` (row-major, `shape`) into codes of type `C`.
///
/// `out[i] = clamp(round(x[i] op s[p]) + z[p], qmin, qmax)` with `p` the parameter index of
/// element `i` (see [`crate::params`]). Fails on any invalid parameter, a code range that does not
/// fit `C`, a length mismatch or a NaN in `x`.
pub fn quantize<C: Code>(
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
    rule: QuantizeRule,
    out: &mut [C],
) -> Result<()> {
    params.range.check_storage::<C>()?;
    quantize_into(x, shape, params, rule, out, C::from_code)
}

/// Quantizes into `i32` codes (any range of up to 16 bits), for widths without a storage type.
pub fn quantize_codes(
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
    rule: QuantizeRule,
    out: &mut [i32],
) -> Result<()> {
    quantize_into(x, shape, params, rule, out, |q| q)
}

/// The loop both quantize functions share: each element through [`quantize_value`], stored by
/// `store`.
fn quantize_into<T>(
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
    rule: QuantizeRule,
    out: &mut [T],
    store: impl Fn(i32) -> T,
) -> Result<()> {
    check_len("output", x.len(), out.len())?;
    let (layout, scales) = prepare(params, shape, x.len(), rule.scale_op)?;
    for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        let p = layout.index(i);
        *o = store(quantize_value(xi, &scales[p], params.zero_points[p], params.range, rule, i)?);
    }
    Ok(())
}

/// Dequantizes codes: `out[i] = (q[i] - z[p]) * s[p]`. Codes outside `[qmin, qmax]` are still
/// dequantized by the formula (they are valid integers of their type); the range only constrains
/// the zero points.
pub fn dequantize<C: Code>(q: &[C], shape: &[usize], params: &QuantParams, out: &mut [f32]) -> Result<()> {
    check_len("output", q.len(), out.len())?;
    let layout = params.layout(shape, q.len())?;
    for (i, (&qi, o)) in q.iter().zip(out.iter_mut()).enumerate() {
        let p = layout.index(i);
        *o = dequantize_value(qi.to_code(), params.scales[p], params.zero_points[p]);
    }
    Ok(())
}

/// Fake-quantizes `x`: quantize then dequantize in one pass, writing the straight-through mask
/// (`true` where the unclamped code lies in `[qmin, qmax]`) when `mask` is given.
pub fn fake_quantize(
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
    rule: QuantizeRule,
    out: &mut [f32],
    mut mask: Option<&mut [bool]>,
) -> Result<()> {
    check_len("output", x.len(), out.len())?;
    if let Some(m) = mask.as_deref() {
        check_len("mask", x.len(), m.len())?;
    }
    let (layout, scales) = prepare(params, shape, x.len(), rule.scale_op)?;
    for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        let p = layout.index(i);
        let (y, inside) = fake_quantize_value(xi, &scales[p], params.zero_points[p], params.range, rule, i)?;
        *o = y;
        if let Some(m) = mask.as_deref_mut() {
            m[i] = inside;
        }
    }
    Ok(())
}

/// The straight-through estimator: `grad_x[i] = mask[i] ? grad_y[i] : 0`.
pub fn fake_quantize_backward(grad_y: &[f32], mask: &[bool], grad_x: &mut [f32]) -> Result<()> {
    check_len("mask", grad_y.len(), mask.len())?;
    check_len("grad_x", grad_y.len(), grad_x.len())?;
    for ((g, &m), o) in grad_y.iter().zip(mask).zip(grad_x.iter_mut()) {
        *o = if m { *g } else { 0.0 };
    }
    Ok(())
}

/// Quantizes to 4-bit codes packed two per byte ([`crate::pack`]: element `2k` in the low nibble
/// of byte `k`, `2k + 1` in the high nibble, an odd tail's high nibble zero). The code range must
/// fit the nibble type. `out.len()` must be `ceil(x.len() / 2)`.
pub fn quantize_packed4(
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
    rule: QuantizeRule,
    kind: Int4,
    out: &mut [u8],
) -> Result<()> {
    kind.check_range(params.range)?;
    check_len("packed output", pack::packed_len(x.len()), out.len())?;
    let mut codes = vec![0i32; x.len()];
    quantize_codes(x, shape, params, rule, &mut codes)?;
    pack::pack4(&codes, kind, out)
}

/// Dequantizes `n` 4-bit codes packed two per byte.
pub fn dequantize_packed4(
    packed: &[u8],
    shape: &[usize],
    params: &QuantParams,
    kind: Int4,
    out: &mut [f32],
) -> Result<()> {
    let n = out.len();
    check_len("packed input", pack::packed_len(n), packed.len())?;
    let mut codes = vec![0i32; n];
    pack::unpack4(packed, kind, &mut codes)?;
    let layout = params.layout(shape, n)?;
    for (i, (&q, o)) in codes.iter().zip(out.iter_mut()).enumerate() {
        let p = layout.index(i);
        *o = dequantize_value(q, params.scales[p], params.zero_points[p]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::QType;

    const EVEN_DIV: QuantizeRule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);
    const EVEN_MUL: QuantizeRule = QuantizeRule::new(ScaleOp::MultiplyByReciprocal, RoundingMode::HalfToEven);

    #[test]
    fn basic_per_tensor() {
        let p = QuantParams::per_tensor(0.5, 3, QType::I8.full_range());
        let x = [0.0f32, 0.25, 0.75, -0.25, 100.0, -100.0, f32::INFINITY, f32::NEG_INFINITY, -0.0];
        let mut q = [0i8; 9];
        quantize(&x, &[9], &p, EVEN_DIV, &mut q).unwrap();
        // 0.25/0.5 = 0.5 ties to 0; 0.75/0.5 = 1.5 ties to 2; -0.5 ties to 0.
        assert_eq!(q, [3, 3, 5, 3, 127, -128, 127, -128, 3]);
        let mut y = [0f32; 9];
        dequantize(&q, &[9], &p, &mut y).unwrap();
        assert_eq!(y[2], 1.0);
        assert_eq!(y[4], 62.0);
    }

    #[test]
    fn divide_and_reciprocal_differ() {
        // Find an x where RN(x / s) and RN(x * RN(1/s)) round to different integers.
        let s = 0.0123f32;
        let p = QuantParams::per_tensor(s, 0, QType::I16.full_range());
        let mut found = false;
        for i in 0..100_000u32 {
            let tie = ((i / 5) as f64 + 0.5) * s as f64;
            let x = f32::from_bits((tie as f32).to_bits() + i % 5 - 2);
            let mut a = [0i16];
            let mut b = [0i16];
            quantize(&[x], &[1], &p, EVEN_DIV, &mut a).unwrap();
            quantize(&[x], &[1], &p, EVEN_MUL, &mut b).unwrap();
            if a != b {
                found = true;
                break;
            }
        }
        assert!(found, "the two scale ops should disagree somewhere near ties");
    }

    #[test]
    fn nan_is_an_error_with_its_index() {
        let p = QuantParams::per_tensor(1.0, 0, QType::U8.full_range());
        let mut q = [0u8; 3];
        let e = quantize(&[1.0, f32::NAN, 2.0], &[3], &p, EVEN_DIV, &mut q).unwrap_err();
        assert_eq!(e, QuantError::NanInput { what: "x", index: 1 });
    }

    #[test]
    fn storage_and_length_errors() {
        let p = QuantParams::per_tensor(1.0, 0, CodeRange::new(-1, 300).unwrap());
        let mut q = [0u8; 1];
        assert!(matches!(
            quantize(&[1.0], &[1], &p, EVEN_DIV, &mut q),
            Err(QuantError::CodeRangeExceedsStorage { .. })
        ));
        let p = QuantParams::per_tensor(1.0, 0, QType::U8.full_range());
        let mut q = [0u8; 2];
        assert!(matches!(quantize(&[1.0], &[1], &p, EVEN_DIV, &mut q), Err(QuantError::LengthMismatch { .. })));
        let p = QuantParams::per_tensor(1e-40, 0, QType::U8.full_range());
        let mut q = [0u8; 1];
        assert!(matches!(quantize(&[1.0], &[1], &p, EVEN_MUL, &mut q), Err(QuantError::ReciprocalOverflow { .. })));
        // Dividing by a subnormal scale is well defined: it saturates.
        quantize(&[1.0], &[1], &p, EVEN_DIV, &mut q).unwrap();
        assert_eq!(q, [255]);
    }

    #[test]
    fn fake_quantize_mask() {
        let p = QuantParams::per_tensor(0.25, 0, CodeRange::new(-4, 3).unwrap());
        let x = [0.0f32, 0.8, 0.875, 0.9, -1.0, -1.2, -1.12];
        let mut y = [0f32; 7];
        let mut m = [false; 7];
        fake_quantize(&x, &[7], &p, EVEN_DIV, &mut y, Some(&mut m)).unwrap();
        // 0.875/0.25 = 3.5 ties to 4 (outside: mask false, clamped to 3).
        assert_eq!(y, [0.0, 0.75, 0.75, 0.75, -1.0, -1.0, -1.0]);
        assert_eq!(m, [true, true, false, false, true, false, true]);
        let mut g = [9f32; 7];
        fake_quantize_backward(&[1.0; 7], &m, &mut g).unwrap();
        assert_eq!(g, [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn per_axis_quantize() {
        let p = QuantParams::per_axis(1, vec![1.0, 0.5], vec![0, 10], QType::I8.full_range());
        let x = [1.0f32, 1.0, 2.0, 2.0];
        let mut q = [0i8; 4];
        quantize(&x, &[2, 2], &p, EVEN_DIV, &mut q).unwrap();
        assert_eq!(q, [1, 12, 2, 14]);
    }

    #[test]
    fn packed4_round_trip() {
        let p = QuantParams::per_tensor(1.0, 0, QType::I4.full_range());
        let x = [-8.0f32, 7.0, 3.0, -1.0, 100.0];
        let mut packed = [0u8; 3];
        quantize_packed4(&x, &[5], &p, EVEN_DIV, Int4::Signed, &mut packed).unwrap();
        assert_eq!(packed, [0x78, 0xF3, 0x07]);
        let mut y = [0f32; 5];
        dequantize_packed4(&packed, &[5], &p, Int4::Signed, &mut y).unwrap();
        assert_eq!(y, [-8.0, 7.0, 3.0, -1.0, 7.0]);
    }
}
