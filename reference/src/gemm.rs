//! Integer matrix products: 8-bit operands, exact int32 accumulators, zero points on both sides.
//!
//! Every quantized linear layer, matrix product and convolution reduces to one integer kernel:
//!
//! ```text
//! acc[i][j] = sum_{k < K} (a[i][k] - za) * (b[k][j] - zb[j])          (exact, then must fit i32)
//! ```
//!
//! where `a` is the `M x K` activation matrix with one zero point `za`, and `b` the `K x N` weight
//! matrix with a zero point per tensor or per output column `zb[j]`. The result is defined by that
//! formula alone: no packing, blocking, tile order or summation order appears in it, because
//! integer addition is exact and associative. A fast kernel may reorder the sum however it likes;
//! it is correct when it produces these values.
//!
//! ## Two formulations, one value
//!
//! * **Direct** ([`accumulate`]): subtract the zero points from every element, multiply, sum.
//! * **Row and column sums** ([`accumulate_by_sums`], gemmlowp's identity, used by every fast
//!   library because the inner loop then multiplies raw codes):
//!
//!   ```text
//!   acc[i][j] = P[i][j] - zb[j] * R[i] - za * C[j] + K * za * zb[j]
//!   P = raw products sum_k a[i][k] b[k][j]     R[i] = sum_k a[i][k]     C[j] = sum_k b[k][j]
//!   ```
//!
//!   [`raw_products`], [`row_sums`] and [`column_sums`] compute the three pieces separately so a
//!   fast kernel can be checked stage by stage (weights are packed once with their column sums).
//!
//! Both are evaluated in `i64` here, where neither can overflow (`|P| <= K * 2^16`, `K < 2^31`),
//! and both must agree; the tests check that they do on every shape of an enumeration table. In
//! 32-bit wrapping arithmetic the identity still gives the exact result whenever that result fits
//! `i32` (wrapping addition and multiplication are a ring homomorphism to `Z / 2^32`), even when
//! `P`, `zb R` or `za C` do not fit: this is why the kernels may accumulate raw products in `i32`
//! ([`crate::overflow`] states the bounds).
//!
//! ## Overflow
//!
//! A result that leaves `i32` is [`QuantError::AccumulatorOverflow`] naming `K`, the element and
//! the value: no framework defines that case (ONNX says "may overflow only in 32 bits", TFLite's
//! accumulator is a C++ `int32_t`, where it is undefined behaviour), so the specification refuses
//! it rather than wrapping. [`crate::overflow::max_exact_depth`] gives the largest `K` for which
//! no input in given ranges can get there.
//!
//! ## Layouts
//!
//! The activation matrix is row-major `M x K`. The weight matrix is either `K x N` row-major
//! ([`WeightLayout::KxN`], ONNX `MatMulInteger` / `QLinearMatMul`'s `B`) or `N x K` row-major
//! ([`WeightLayout::NxK`], a linear layer's weight: PyTorch's `[out, in]` and TFLite's
//! fully-connected `[units, depth]`). The output is row-major `M x N`. Zero-sized `M` or `N` give
//! an empty output (every framework allows them); a zero `K` gives all-zero accumulators (ONNX
//! Runtime's behaviour for an empty reduction).

use crate::error::{QuantError, Result};
use crate::scheme::QType;

/// An 8-bit code type a matrix operand can hold: `u8` or `i8`.
pub trait Operand8: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// [`QType::U8`] or [`QType::I8`].
    const QTYPE: QType;
    fn value(self) -> i32;
    /// The code of value `v`, saturated to the type's range.
    fn from_value(v: i32) -> Self;
}

impl Operand8 for u8 {
    const QTYPE: QType = QType::U8;
    #[inline]
    fn value(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_value(v: i32) -> Self {
        v.clamp(0, 255) as u8
    }
}

impl Operand8 for i8 {
    const QTYPE: QType = QType::I8;
    #[inline]
    fn value(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_value(v: i32) -> Self {
        v.clamp(-128, 127) as i8
    }
}

/// How the weight matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// `K x N` row-major: element `(k, j)` at `k * N + j` (ONNX `MatMulInteger`'s `B`).
    KxN,
    /// `N x K` row-major: element `(k, j)` at `j * K + k` (a linear layer's `[out, in]` weight).
    NxK,
}

impl WeightLayout {
    /// Flat index of weight element `(k, j)` in a `K x N` product.
    #[inline]
    pub fn index(self, k: usize, j: usize, kdim: usize, n: usize) -> usize {
        match self {
            WeightLayout::KxN => k * n + j,
            WeightLayout::NxK => j * kdim + k,
        }
    }
}

/// The sizes of a product `(M x K) * (K x N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmDims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl GemmDims {
    pub fn new(m: usize, n: usize, k: usize) -> GemmDims {
        GemmDims { m, n, k }
    }

    /// `M * K`, `K * N` and `M * N`, or [`QuantError::InvalidArgument`] when one overflows
    /// `usize` (checked before anything is allocated).
    pub fn sizes(&self) -> Result<(usize, usize, usize)> {
        let mul = |a: usize, b: usize, what: &str| {
            a.checked_mul(b).ok_or_else(|| QuantError::InvalidArgument {
                what: "matrix size",
                detail: format!("{what} = {a} x {b} overflows usize"),
            })
        };
        Ok((mul(self.m, self.k, "M x K")?, mul(self.k, self.n, "K x N")?, mul(self.m, self.n, "M x N")?))
    }
}

/// Weight zero points: one for the tensor or one per output column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZeroPoints<'a> {
    PerTensor(i32),
    PerColumn(&'a [i32]),
}

impl ZeroPoints<'_> {
    /// The zero point of column `j` (call [`ZeroPoints::check`] first).
    #[inline]
    pub fn get(&self, j: usize) -> i32 {
        match self {
            ZeroPoints::PerTensor(z) => *z,
            ZeroPoints::PerColumn(z) => z[j],
        }
    }

    /// Checks the count against `n` columns and every value against the operand's type.
    pub fn check(&self, n: usize, qtype: QType) -> Result<()> {
        let range = qtype.full_range();
        match self {
            ZeroPoints::PerTensor(z) => range.check_zero_point(0, *z),
            ZeroPoints::PerColumn(z) => {
                if z.len() != n {
                    return Err(QuantError::ParamCountMismatch {
                        what: "weight zero points",
                        expected: n,
                        got: z.len(),
                    });
                }
                z.iter().enumerate().try_for_each(|(i, &v)| range.check_zero_point(i, v))
            }
        }
    }
}

/// Checks the operand and output lengths against `dims`.
/// [`accumulate`]'s checks before any product, in its order: the operand and output lengths
/// against `dims`, `a`'s zero point against `A`'s range, `b`'s zero points (count and range).
/// A faster [`Accumulator`] runs them first, so that a bad call fails as the reference's does.
pub fn check_accumulate<A: Operand8, B: Operand8>(
    a_len: usize,
    a_zero_point: i32,
    b_len: usize,
    b_zero_points: ZeroPoints<'_>,
    dims: GemmDims,
    out_len: usize,
) -> Result<()> {
    check_operands(dims, a_len, b_len, out_len)?;
    A::QTYPE.full_range().check_zero_point(0, a_zero_point)?;
    b_zero_points.check(dims.n, B::QTYPE)
}

fn check_operands(dims: GemmDims, a_len: usize, b_len: usize, out_len: usize) -> Result<()> {
    let (mk, kn, mn) = dims.sizes()?;
    if a_len != mk {
        return Err(QuantError::ShapeMismatch { shape: vec![dims.m, dims.k], len: a_len });
    }
    if b_len != kn {
        return Err(QuantError::ShapeMismatch { shape: vec![dims.k, dims.n], len: b_len });
    }
    crate::error::check_len("accumulator output (M x N)", mn, out_len)
}

/// Converts an exact accumulator to `i32`, or [`QuantError::AccumulatorOverflow`] naming `K`,
/// the element and the bound it crossed.
pub fn to_i32_accumulator(v: i64, k: usize, i: usize, j: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| QuantError::AccumulatorOverflow {
        what: "int32 GEMM accumulator",
        detail: format!("K = {k}: the exact value {v} of element ({i}, {j}) lies outside [{}, {}]", i32::MIN, i32::MAX),
    })
}

/// The direct formulation: `out[i*N + j] = sum_k (a[i][k] - za) (b[k][j] - zb[j])`, exact, row-major
/// `M x N`.
///
/// `a` is `M x K` row-major, `b` is stored as `layout` says. Zero points are checked against the
/// operand types (`za` against `A`'s full range, each `zb` against `B`'s): ONNX and PyTorch store
/// them in the operand's type. Errors: operand or output lengths that do not match `dims`, zero
/// points out of range or of the wrong count, a size product overflowing `usize`, and an exact
/// result outside `i32` ([`QuantError::AccumulatorOverflow`]).
pub fn accumulate<A: Operand8, B: Operand8>(
    a: &[A],
    a_zero_point: i32,
    b: &[B],
    b_zero_points: ZeroPoints<'_>,
    layout: WeightLayout,
    dims: GemmDims,
    out: &mut [i32],
) -> Result<()> {
    check_accumulate::<A, B>(a.len(), a_zero_point, b.len(), b_zero_points, dims, out.len())?;
    let GemmDims { m, n, k } = dims;
    for i in 0..m {
        for j in 0..n {
            let zb = b_zero_points.get(j) as i64;
            let mut acc = 0i64;
            for kk in 0..k {
                let av = a[i * k + kk].value() as i64 - a_zero_point as i64;
                let bv = b[layout.index(kk, j, k, n)].value() as i64 - zb;
                acc += av * bv;
            }
            out[i * n + j] = to_i32_accumulator(acc, k, i, j)?;
        }
    }
    Ok(())
}

/// Who computes the exact int32 accumulators of the framework ops ([`matmul_integer_with`],
/// and `crate::linear`'s `*_with` functions): [`accumulate`]'s contract, the same values and the
/// same errors in the same order. The reference's loop is [`Exact`]; `quantproof_optimized`'s
/// engine provides its packed GEMM, so that the framework ops run on every ISA with the
/// reference's checks and output stages around it.
pub trait Accumulator {
    #[allow(clippy::too_many_arguments)]
    fn accumulate<A: Operand8, B: Operand8>(
        &self,
        a: &[A],
        a_zero_point: i32,
        b: &[B],
        b_zero_points: ZeroPoints<'_>,
        layout: WeightLayout,
        dims: GemmDims,
        out: &mut [i32],
    ) -> Result<()>;
}

/// The reference's [`accumulate`].
#[derive(Debug, Clone, Copy)]
pub struct Exact;

impl Accumulator for Exact {
    fn accumulate<A: Operand8, B: Operand8>(
        &self,
        a: &[A],
        a_zero_point: i32,
        b: &[B],
        b_zero_points: ZeroPoints<'_>,
        layout: WeightLayout,
        dims: GemmDims,
        out: &mut [i32],
    ) -> Result<()> {
        accumulate(a, a_zero_point, b, b_zero_points, layout, dims, out)
    }
}

/// `R[i] = sum_k a[i][k]`: the row sums of the `M x K` activation matrix (gemmlowp's "row
/// offsets", fbgemm's `row_offsets`), exact in `i64`.
pub fn row_sums<A: Operand8>(a: &[A], m: usize, k: usize) -> Result<Vec<i64>> {
    let mk = GemmDims::new(m, 0, k).sizes()?.0;
    if a.len() != mk {
        return Err(QuantError::ShapeMismatch { shape: vec![m, k], len: a.len() });
    }
    Ok((0..m).map(|i| a[i * k..(i + 1) * k].iter().map(|v| v.value() as i64).sum()).collect())
}

/// `C[j] = sum_k b[k][j]`: the column sums of the weight matrix (what packing stores beside the
/// packed weights; fbgemm's `col_offsets` before its `- zb K` term), exact in `i64`.
pub fn column_sums<B: Operand8>(b: &[B], layout: WeightLayout, k: usize, n: usize) -> Result<Vec<i64>> {
    let kn = GemmDims::new(0, n, k).sizes()?.1;
    if b.len() != kn {
        return Err(QuantError::ShapeMismatch { shape: vec![k, n], len: b.len() });
    }
    Ok((0..n).map(|j| (0..k).map(|kk| b[layout.index(kk, j, k, n)].value() as i64).sum()).collect())
}

/// `P[i][j] = sum_k a[i][k] b[k][j]`: the raw-code products a kernel's inner loop computes,
/// exact in `i64`, row-major `M x N`.
pub fn raw_products<A: Operand8, B: Operand8>(
    a: &[A],
    b: &[B],
    layout: WeightLayout,
    dims: GemmDims,
) -> Result<Vec<i64>> {
    let (mk, kn, mn) = dims.sizes()?;
    if a.len() != mk {
        return Err(QuantError::ShapeMismatch { shape: vec![dims.m, dims.k], len: a.len() });
    }
    if b.len() != kn {
        return Err(QuantError::ShapeMismatch { shape: vec![dims.k, dims.n], len: b.len() });
    }
    let GemmDims { m, n, k } = dims;
    let mut p = Vec::with_capacity(mn);
    for i in 0..m {
        for j in 0..n {
            p.push((0..k).map(|kk| a[i * k + kk].value() as i64 * b[layout.index(kk, j, k, n)].value() as i64).sum());
        }
    }
    Ok(p)
}

/// The row/column-sum formulation (gemmlowp's identity):
/// `out[i*N + j] = P[i][j] - zb[j] R[i] - za C[j] + K za zb[j]` with [`raw_products`],
/// [`row_sums`] and [`column_sums`]. Same arguments, checks and errors as [`accumulate`], and the
/// same values wherever both succeed.
pub fn accumulate_by_sums<A: Operand8, B: Operand8>(
    a: &[A],
    a_zero_point: i32,
    b: &[B],
    b_zero_points: ZeroPoints<'_>,
    layout: WeightLayout,
    dims: GemmDims,
    out: &mut [i32],
) -> Result<()> {
    check_accumulate::<A, B>(a.len(), a_zero_point, b.len(), b_zero_points, dims, out.len())?;
    let GemmDims { m, n, k } = dims;
    let p = raw_products(a, b, layout, dims)?;
    let r = row_sums(a, m, k)?;
    let c = column_sums(b, layout, k, n)?;
    let za = a_zero_point as i64;
    for i in 0..m {
        for j in 0..n {
            let zb = b_zero_points.get(j) as i64;
            let v = p[i * n + j] - zb * r[i] - za * c[j] + k as i64 * za * zb;
            out[i * n + j] = to_i32_accumulator(v, k, i, j)?;
        }
    }
    Ok(())
}

/// ONNX `MatMulInteger` (ONNX Runtime 1.32, CPU provider), 2-D: `y = (a - a_zp)(b - b_zp)` in
/// int32, `a` `M x K` (`u8` or `i8`), `b` `K x N` (`u8` or `i8`), `b_zp` per tensor or per column.
/// ONNX Runtime accepts `M = 0` or `N = 0` (empty output) and `K = 0` (zeros). A result outside
/// `i32`, which ONNX Runtime would wrap, is [`QuantError::AccumulatorOverflow`].
pub fn matmul_integer<A: Operand8, B: Operand8>(
    a: &[A],
    a_zero_point: i32,
    b: &[B],
    b_zero_points: ZeroPoints<'_>,
    dims: GemmDims,
) -> Result<Vec<i32>> {
    matmul_integer_with(&Exact, a, a_zero_point, b, b_zero_points, dims)
}

/// [`matmul_integer`] with its accumulators from `g` (see [`Accumulator`]).
pub fn matmul_integer_with<G: Accumulator, A: Operand8, B: Operand8>(
    g: &G,
    a: &[A],
    a_zero_point: i32,
    b: &[B],
    b_zero_points: ZeroPoints<'_>,
    dims: GemmDims,
) -> Result<Vec<i32>> {
    let mn = dims.sizes()?.2;
    let mut out = vec![0i32; mn];
    g.accumulate(a, a_zero_point, b, b_zero_points, WeightLayout::KxN, dims, &mut out)?;
    Ok(out)
}

/// [`matmul_integer`] on `ndarray` views: `a` is `[M, K]`, `b` is `[K, N]`; returns `[M, N]`.
/// Views of any strides are accepted (copied to row-major first).
pub fn matmul_integer_nd<A: Operand8, B: Operand8>(
    a: ndarray::ArrayView2<'_, A>,
    a_zero_point: i32,
    b: ndarray::ArrayView2<'_, B>,
    b_zero_points: ZeroPoints<'_>,
) -> Result<ndarray::Array2<i32>> {
    let (m, k) = a.dim();
    let (kb, n) = b.dim();
    if k != kb {
        return Err(QuantError::InvalidArgument {
            what: "matmul shapes",
            detail: format!("a is [{m}, {k}] and b is [{kb}, {n}]: the inner dimensions differ"),
        });
    }
    let a: Vec<A> = a.iter().copied().collect();
    let b: Vec<B> = b.iter().copied().collect();
    let y = matmul_integer(&a, a_zero_point, &b, b_zero_points, GemmDims::new(m, n, k))?;
    ndarray::Array2::from_shape_vec((m, n), y)
        .map_err(|e| QuantError::InvalidArgument { what: "matmul output", detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_and_sums_agree_on_a_small_case() {
        let a: [u8; 6] = [0, 255, 7, 128, 1, 2];
        let b: [i8; 6] = [-128, 127, 5, -1, 0, 3];
        let dims = GemmDims::new(2, 2, 3);
        let (mut d, mut s) = ([0i32; 4], [0i32; 4]);
        for layout in [WeightLayout::KxN, WeightLayout::NxK] {
            accumulate(&a, 3, &b, ZeroPoints::PerColumn(&[-2, 9]), layout, dims, &mut d).unwrap();
            accumulate_by_sums(&a, 3, &b, ZeroPoints::PerColumn(&[-2, 9]), layout, dims, &mut s).unwrap();
            assert_eq!(d, s);
        }
        // (0-3)(-128+2) + (255-3)(5+2) + (7-3)(0+2) with KxN: column 0 is b[0], b[2], b[4].
        accumulate(&a, 3, &b, ZeroPoints::PerColumn(&[-2, 9]), WeightLayout::KxN, dims, &mut d).unwrap();
        assert_eq!(d[0], (-3) * (-126) + 252 * 7 + 4 * 2);
    }

    #[test]
    fn empty_dimensions() {
        let y = matmul_integer::<u8, i8>(&[], 0, &[], ZeroPoints::PerTensor(0), GemmDims::new(0, 0, 5)).unwrap();
        assert!(y.is_empty());
        let y = matmul_integer::<u8, i8>(&[], 0, &[], ZeroPoints::PerTensor(0), GemmDims::new(2, 3, 0)).unwrap();
        assert_eq!(y, vec![0; 6]);
    }

    #[test]
    fn errors() {
        let e = matmul_integer::<u8, i8>(&[1, 2, 3], 0, &[1, 2], ZeroPoints::PerTensor(0), GemmDims::new(1, 1, 2));
        assert!(matches!(e, Err(QuantError::ShapeMismatch { .. })));
        let e = matmul_integer::<u8, i8>(&[1, 2], 300, &[1, 2], ZeroPoints::PerTensor(0), GemmDims::new(1, 1, 2));
        assert!(matches!(e, Err(QuantError::ZeroPointOutOfRange { .. })));
        let e = matmul_integer::<u8, i8>(&[1, 2], 0, &[1, 2], ZeroPoints::PerColumn(&[0, 0]), GemmDims::new(1, 1, 2));
        assert!(matches!(e, Err(QuantError::ParamCountMismatch { .. })));
        let e = matmul_integer::<u8, i8>(&[], 0, &[], ZeroPoints::PerTensor(0), GemmDims::new(usize::MAX, 3, 2));
        assert!(matches!(e, Err(QuantError::InvalidArgument { .. })));
    }

    #[test]
    fn ndarray_api() {
        let a = ndarray::arr2(&[[1u8, 2], [3, 4]]);
        let b = ndarray::arr2(&[[1i8, 0], [0, 1]]);
        let y = matmul_integer_nd(a.view(), 1, b.view(), ZeroPoints::PerTensor(0)).unwrap();
        assert_eq!(y, ndarray::arr2(&[[0, 1], [2, 3]]));
        // A transposed view (non-standard strides) gives the transposed product.
        let y = matmul_integer_nd(a.t(), 0, b.view(), ZeroPoints::PerTensor(0)).unwrap();
        assert_eq!(y, ndarray::arr2(&[[1, 3], [2, 4]]));
    }
}
