//! Quantization parameters: scales, zero points, their granularity and the code range.
//!
//! [`QuantParams`] is what every quantize / dequantize / fake-quantize call takes. Before any
//! arithmetic it is checked against the tensor's shape by [`QuantParams::layout`], which returns
//! the [`ParamLayout`] that maps each element's flat (row-major) index to its parameter index:
//!
//! * per-tensor: always 0;
//! * per-axis: the element's index along `axis`, `(i / inner) % axis_len`, where `inner` is the
//!   product of the dimensions after `axis`;
//! * per-block: `outer * (nblocks * inner) + (c / block_size) * inner + (i % inner)` with
//!   `c = (i / inner) % axis_len`, `outer = i / (axis_len * inner)`, `nblocks = axis_len / block_size`
//!   (the parameter tensor is the input's shape with `axis_len` replaced by `nblocks`, as ONNX's
//!   blocked `QuantizeLinear` lays it out).

use crate::error::{QuantError, Result};
use crate::scheme::{Axis, CodeRange, Granularity};

/// Scales and zero points with their granularity and the code range `[qmin, qmax]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantParams {
    pub granularity: Granularity,
    pub scales: Vec<f32>,
    pub zero_points: Vec<i32>,
    pub range: CodeRange,
}

impl QuantParams {
    /// One scale and zero point for the whole tensor.
    pub fn per_tensor(scale: f32, zero_point: i32, range: CodeRange) -> QuantParams {
        QuantParams { granularity: Granularity::PerTensor, scales: vec![scale], zero_points: vec![zero_point], range }
    }

    /// One scale and zero point per index along `axis` (negative counts from the back).
    pub fn per_axis(axis: impl Into<Axis>, scales: Vec<f32>, zero_points: Vec<i32>, range: CodeRange) -> QuantParams {
        QuantParams { granularity: Granularity::PerAxis { axis: axis.into() }, scales, zero_points, range }
    }

    /// One scale and zero point per block of `block_size` indices along `axis`.
    pub fn per_block(
        axis: impl Into<Axis>,
        block_size: usize,
        scales: Vec<f32>,
        zero_points: Vec<i32>,
        range: CodeRange,
    ) -> QuantParams {
        QuantParams { granularity: Granularity::PerBlock { axis: axis.into(), block_size }, scales, zero_points, range }
    }

    /// Checks the parameters against a tensor of `shape` holding `len` elements and returns the
    /// index map. Errors: shape/length mismatch, axis out of range, wrong parameter count, block
    /// size zero or not dividing, a scale not finite or not positive, a zero point outside
    /// `[qmin, qmax]`.
    pub fn layout(&self, shape: &[usize], len: usize) -> Result<ParamLayout> {
        let numel = checked_numel(shape).filter(|&n| n == len);
        if numel.is_none() {
            return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len });
        }
        let rank = shape.len();
        let (axis, block) = match self.granularity {
            Granularity::PerTensor => (None, 0),
            Granularity::PerAxis { axis } => (Some(axis), 0),
            Granularity::PerBlock { axis, block_size } => (Some(axis), block_size),
        };
        let layout = match axis {
            None => ParamLayout { kind: LayoutKind::PerTensor, axis_len: 1, inner: 1, block: 1, count: 1 },
            Some(axis) => {
                let axis = axis.resolve(rank)?;
                let axis_len = shape[axis];
                let inner: usize = shape[axis + 1..].iter().product();
                let outer: usize = shape[..axis].iter().product();
                if block == 0 && matches!(self.granularity, Granularity::PerAxis { .. }) {
                    ParamLayout { kind: LayoutKind::PerAxis, axis_len, inner, block: 1, count: axis_len }
                } else {
                    if block == 0 || axis_len % block != 0 {
                        return Err(QuantError::InvalidBlockSize { block_size: block, axis_len });
                    }
                    let count = outer * (axis_len / block) * inner;
                    ParamLayout { kind: LayoutKind::PerBlock, axis_len, inner, block, count }
                }
            }
        };
        if self.scales.len() != layout.count {
            return Err(QuantError::ParamCountMismatch {
                what: "scales",
                expected: layout.count,
                got: self.scales.len(),
            });
        }
        if self.zero_points.len() != layout.count {
            return Err(QuantError::ParamCountMismatch {
                what: "zero points",
                expected: layout.count,
                got: self.zero_points.len(),
            });
        }
        for (index, &s) in self.scales.iter().enumerate() {
            check_scale(index, s)?;
        }
        for (index, &z) in self.zero_points.iter().enumerate() {
            self.range.check_zero_point(index, z)?;
        }
        Ok(layout)
    }
}

/// Fails unless `scale` is finite and greater than zero.
pub fn check_scale(index: usize, scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(QuantError::InvalidScale { index, scale: scale as f64 })
    }
}

/// The product of the dimensions, or `None` when it overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayoutKind {
    PerTensor,
    PerAxis,
    PerBlock,
}

/// Maps an element's flat index to the index of its scale and zero point. Built only by
/// [`QuantParams::layout`], so every index it returns is in bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamLayout {
    kind: LayoutKind,
    axis_len: usize,
    inner: usize,
    block: usize,
    count: usize,
}

impl ParamLayout {
    /// The parameter index of flat element `i` (see the module docs for the formulas).
    #[inline]
    pub fn index(&self, i: usize) -> usize {
        match self.kind {
            LayoutKind::PerTensor => 0,
            LayoutKind::PerAxis => (i / self.inner) % self.axis_len,
            LayoutKind::PerBlock => {
                let c = (i / self.inner) % self.axis_len;
                let outer = i / (self.axis_len * self.inner);
                let nblocks = self.axis_len / self.block;
                outer * (nblocks * self.inner) + (c / self.block) * self.inner + i % self.inner
            }
        }
    }

    /// Number of scale / zero-point pairs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of the quantized axis (1 for per-tensor).
    pub fn axis_len(&self) -> usize {
        self.axis_len
    }

    /// Product of the dimensions after the axis (1 for per-tensor).
    pub fn inner(&self) -> usize {
        self.inner
    }

    /// Block size along the axis (1 for per-tensor and per-axis).
    pub fn block(&self) -> usize {
        self.block
    }

    pub fn is_per_tensor(&self) -> bool {
        self.kind == LayoutKind::PerTensor
    }

    pub fn is_per_axis(&self) -> bool {
        self.kind == LayoutKind::PerAxis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r8() -> CodeRange {
        CodeRange::new(-128, 127).unwrap()
    }

    #[test]
    fn per_axis_index() {
        let p = QuantParams::per_axis(1, vec![1.0; 4], vec![0; 4], r8());
        let l = p.layout(&[2, 4, 3], 24).unwrap();
        let got: Vec<usize> = (0..24).map(|i| l.index(i)).collect();
        let want: Vec<usize> = (0..2).flat_map(|_| (0..4).flat_map(|c| [c; 3])).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn per_block_index() {
        // shape [2, 4, 3], blocks of 2 along axis 1: params shape [2, 2, 3].
        let p = QuantParams::per_block(1, 2, vec![1.0; 12], vec![0; 12], r8());
        let l = p.layout(&[2, 4, 3], 24).unwrap();
        for o in 0..2 {
            for c in 0..4 {
                for k in 0..3 {
                    let i = (o * 4 + c) * 3 + k;
                    assert_eq!(l.index(i), (o * 2 + c / 2) * 3 + k);
                }
            }
        }
    }

    #[test]
    fn errors() {
        let r = r8();
        let bad = |p: QuantParams, shape: &[usize], n| p.layout(shape, n).unwrap_err();
        assert!(matches!(bad(QuantParams::per_tensor(0.0, 0, r), &[3], 3), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(QuantParams::per_tensor(f32::NAN, 0, r), &[3], 3), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(QuantParams::per_tensor(f32::INFINITY, 0, r), &[3], 3), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(QuantParams::per_tensor(1.0, 200, r), &[3], 3), QuantError::ZeroPointOutOfRange { .. }));
        assert!(matches!(bad(QuantParams::per_tensor(1.0, 0, r), &[3], 4), QuantError::ShapeMismatch { .. }));
        assert!(matches!(
            bad(QuantParams::per_tensor(1.0, 0, r), &[usize::MAX, 3], 4),
            QuantError::ShapeMismatch { .. }
        ));
        assert!(matches!(
            bad(QuantParams::per_axis(2, vec![1.0; 3], vec![0; 3], r), &[3, 3], 9),
            QuantError::AxisOutOfRange { .. }
        ));
        assert!(matches!(
            bad(QuantParams::per_axis(0, vec![1.0; 2], vec![0; 3], r), &[3, 3], 9),
            QuantError::ParamCountMismatch { .. }
        ));
        assert!(matches!(
            bad(QuantParams::per_block(0, 2, vec![1.0; 3], vec![0; 3], r), &[3, 3], 9),
            QuantError::InvalidBlockSize { .. }
        ));
        assert!(matches!(
            bad(QuantParams::per_block(0, 0, vec![1.0; 3], vec![0; 3], r), &[3, 3], 9),
            QuantError::InvalidBlockSize { .. }
        ));
    }

    #[test]
    fn empty_tensors_are_fine() {
        let p = QuantParams::per_axis(0, vec![], vec![], r8());
        assert_eq!(p.layout(&[0, 5], 0).unwrap().count(), 0);
        let p = QuantParams::per_tensor(1.0, 0, r8());
        assert!(p.layout(&[0], 0).is_ok());
    }
}
