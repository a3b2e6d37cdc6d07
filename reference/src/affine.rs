//! The scale and zero point of one 8-bit tensor, as the arithmetic ops take them, and the helpers
//! those ops share: validation, the fused activation and its code range, and the element-wise
//! broadcast of a second input.
//!
//! Codes are stored as `i8` or `u8` (any [`Code`]); the op's code range is the storage type's full
//! range `[C::MIN, C::MAX]`, as in every framework's 8-bit kernels.

use crate::error::{QuantError, Result};
use crate::scheme::{Code, CodeRange};

/// `real = (q - zero_point) * scale` for one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub scale: f32,
    pub zero_point: i32,
}

impl Affine {
    pub const fn new(scale: f32, zero_point: i32) -> Affine {
        Affine { scale, zero_point }
    }

    /// Fails with [`QuantError::InvalidScale`] unless the scale is finite and positive, and with
    /// [`QuantError::ZeroPointOutOfRange`] unless the zero point is a code of `C`. `index` names
    /// the tensor in the error (0 for the first input, 1 for the second, 2 for the output, ...).
    pub fn check<C: Code>(&self, index: usize) -> Result<()> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(QuantError::InvalidScale { index, scale: self.scale as f64 });
        }
        code_range::<C>().check_zero_point(index, self.zero_point)
    }

    /// `(q - z) * s` in f32 (exact difference, one rounding).
    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }
}

/// The full code range of the storage type `C` (`C::MIN <= C::MAX` for every [`Code`] type, so
/// the fallback is never taken).
pub fn code_range<C: Code>() -> CodeRange {
    CodeRange::new(C::MIN, C::MAX).unwrap_or(crate::scheme::QType::I8.full_range())
}

/// An activation fused into an op's output (TFLite's `fused_activation_function`, PyTorch's
/// `add_relu` / `mul_relu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    None,
    /// `max(y, 0)`.
    Relu,
    /// `min(max(y, 0), 6)`.
    Relu6,
    /// `min(max(y, -1), 1)`.
    ReluN1To1,
}

impl Activation {
    /// TFLite's names (`NONE`, `RELU`, `RELU6`, `RELU_N1_TO_1`), case-insensitive.
    pub fn parse(s: &str) -> Result<Activation> {
        match s.to_ascii_uppercase().as_str() {
            "NONE" | "" => Ok(Activation::None),
            "RELU" => Ok(Activation::Relu),
            "RELU6" => Ok(Activation::Relu6),
            "RELU_N1_TO_1" => Ok(Activation::ReluN1To1),
            _ => Err(QuantError::Unsupported { what: format!("fused activation {s:?}") }),
        }
    }

    /// The real interval the activation keeps, `None` for an unbounded side.
    pub fn bounds(self) -> (Option<f32>, Option<f32>) {
        match self {
            Activation::None => (None, None),
            Activation::Relu => (Some(0.0), None),
            Activation::Relu6 => (Some(0.0), Some(6.0)),
            Activation::ReluN1To1 => (Some(-1.0), Some(1.0)),
        }
    }

    /// The code interval the activation keeps on an output quantized with `y`, as TFLite's
    /// `CalculateActivationRangeQuantized` computes it: each real bound `r` becomes
    /// `z + round(r / s)` (f32 division, ties away from zero), intersected with `[C::MIN, C::MAX]`.
    /// PyTorch's and ONNX Runtime's fused ReLU clamp the real value at 0 before quantizing, which
    /// is the same as clamping the code at `z` (quantize(0) = z exactly).
    pub fn code_bounds<C: Code>(self, y: Affine) -> (i32, i32) {
        // `round(r / s)` saturates to i64 for a tiny scale: saturating the sum keeps the bound at
        // the type's end, where the clamps below put it (TFLite's `zero_point + round(f / scale)`).
        let q = |r: f32| -> i64 { (y.zero_point as i64).saturating_add((r / y.scale).round() as i64) };
        let (lo, hi) = self.bounds();
        let lo = lo.map_or(C::MIN as i64, |r| q(r).max(C::MIN as i64)).min(C::MAX as i64);
        let hi = hi.map_or(C::MAX as i64, |r| q(r).min(C::MAX as i64)).max(C::MIN as i64);
        (lo as i32, hi as i32)
    }
}

/// Checks that `b_shape` broadcasts to `a_shape` under [`broadcast_index`]'s rule, without
/// building the index; returns `b_shape` without the leading ones beyond `a`'s rank. The error
/// is [`broadcast_index`]'s.
pub fn check_broadcast<'b>(a_shape: &[usize], b_shape: &'b [usize]) -> Result<&'b [usize]> {
    let reject = || QuantError::InvalidArgument {
        what: "shape of b",
        detail: format!("{b_shape:?} does not broadcast to the shape of a {a_shape:?}"),
    };
    let extra = b_shape.len().saturating_sub(a_shape.len());
    // Leading ones are harmless.
    if b_shape[..extra].iter().any(|&d| d != 1) {
        return Err(reject());
    }
    let b_shape = &b_shape[extra..];
    let offset = a_shape.len() - b_shape.len();
    for (k, &d) in b_shape.iter().enumerate() {
        if d != 1 && d != a_shape[offset + k] {
            return Err(reject());
        }
    }
    Ok(b_shape)
}

/// How the second input of an element-wise op is indexed for each element of the first: its
/// shape must be numpy-broadcastable to `a_shape` (aligned at the last dimension, each dimension
/// equal or 1, rank at most `a`'s). Returns, for output element `i`, the index into `b`.
/// TFLite, PyTorch and ONNX Runtime all accept these; anything else is
/// [`QuantError::InvalidArgument`] (broadcasting `a` up to `b` is not provided: pass the larger
/// tensor first for commutative ops).
pub fn broadcast_index(a_shape: &[usize], b_shape: &[usize]) -> Result<Vec<usize>> {
    let b_shape = check_broadcast(a_shape, b_shape)?;
    let offset = a_shape.len() - b_shape.len();
    let n = crate::affine::element_count(a_shape)?;
    // Strides of b, 0 along broadcast dimensions.
    let mut strides = vec![0usize; a_shape.len()];
    let mut s = 1usize;
    for k in (0..b_shape.len()).rev() {
        strides[offset + k] = if b_shape[k] == 1 { 0 } else { s };
        s *= b_shape[k];
    }
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; a_shape.len()];
    for _ in 0..n {
        idx.push(counter.iter().zip(&strides).map(|(c, st)| c * st).sum());
        for d in (0..a_shape.len()).rev() {
            counter[d] += 1;
            if counter[d] < a_shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
    Ok(idx)
}

/// The element count of `shape`, or [`QuantError::ShapeMismatch`] when it overflows `usize`.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| QuantError::ShapeMismatch { shape: shape.to_vec(), len: usize::MAX })
}

/// Checks that `data` holds exactly the elements `shape` describes.
pub fn check_shape(shape: &[usize], len: usize) -> Result<()> {
    if element_count(shape)? == len {
        Ok(())
    } else {
        Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_bounds_saturate_for_tiny_and_huge_scales() {
        // round(6 / 1e-38) is far past i64: the bound saturates at the type's end, no wrap.
        let tiny = Affine::new(1e-38, 127);
        assert_eq!(Activation::Relu6.code_bounds::<i8>(tiny), (127, 127));
        assert_eq!(Activation::ReluN1To1.code_bounds::<i8>(Affine::new(1e-38, -128)), (-128, 127));
        assert_eq!(Activation::Relu.code_bounds::<u8>(Affine::new(f32::MIN_POSITIVE, 255)), (255, 255));
        // A huge scale maps every bound to the zero point.
        assert_eq!(Activation::Relu6.code_bounds::<u8>(Affine::new(1e30, 3)), (3, 3));
        // Ordinary: z + round(r / s), ties away from zero.
        assert_eq!(Activation::Relu6.code_bounds::<i8>(Affine::new(0.05, -10)), (-10, 110));
        assert_eq!(Activation::ReluN1To1.code_bounds::<i8>(Affine::new(0.008, 0)), (-125, 125));
    }
}
