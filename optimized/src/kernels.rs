//! The kernel interface every ISA implements, and the table that hands kernels out.
//!
//! A kernel works on a *span*: a slice of elements whose parameters are either one shared set
//! ([`Params::Uniform`]) or one set per element ([`Params::PerElement`], slices as long as the
//! span). The planner in [`crate::ops`] cuts per-tensor, per-axis and per-block work into such
//! spans, so kernels never see shapes or axes.
//!
//! ## The arithmetic kernels must reproduce
//!
//! With `v = x / d` ([`ScaleOp::Divide`], `d` the scale) or `v = x * d`
//! ([`ScaleOp::MultiplyByReciprocal`], `d = RN(1/s)`), `lo = qmin - z` and `hi = qmax - z`
//! (exact small integers, as f32):
//!
//! * quantize: `q = to_int(clamp(round(v), lo, hi)) + z`. Clamping before rounding gives the
//!   same result (every rounding mode is monotone and fixes integers), which lets kernels clamp
//!   in float and convert without overflow.
//! * fake-quantize: `y = (clamp(round(v), lo, hi) + 0.0) * s` (the `+ 0.0` turns a `-0.0` into
//!   `+0.0`, as the reference's integer path produces), `mask = lo <= round(v) <= hi`.
//! * dequantize: `y = f32(q - z) * s`.
//!
//! Every operation is an IEEE single operation with a unique result; no fused multiply-add, no
//! approximate reciprocal. That is what makes SIMD and scalar bit-identical. A NaN input makes
//! the kernel return `true` (its outputs are then unspecified); the caller reports the error.
//!
//! ## Calibration kernels
//!
//! * [`Kernels::histogram`]: numpy's uniform-bin rule ([`HistBins::index`], the reference's
//!   `numpy_hist::UniformBins::bin_index` with the edges recomputed by `linspace`'s own
//!   arithmetic), counted into four interleaved `u32` sub-histograms.
//! * [`Kernels::pairwise_sum`]: numpy's pairwise float32 summation (`np.sum`), the exact
//!   association of `numpy_hist::pairwise_sum_f32`.
//! * [`Kernels::kl_terms`]: the terms of ONNX Runtime's KL divergence, `pk * ln(pk / qk)`, with
//!   the reference's logarithm `(a as f64).ln() as f32`. SIMD kernels evaluate the logarithm
//!   with their own polynomial and keep its rounding only where it provably equals the
//!   reference's (see [`LN_GUARD_ULPS`]); the other lanes call the reference's expression.

use crate::arch::generic;
use crate::isa::Isa;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::pack::Int4;
use quantproof_reference::quantize::ScaleOp;
use quantproof_reference::requantize::Requantizer;
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::{CodeRange, Signedness};

/// One parameter set shared by a whole span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    /// The scale `s` (dequantize, fake-quantize output).
    pub scale: f32,
    /// The divisor `s` or the multiplier `RN(1/s)`, per the rule's [`ScaleOp`].
    pub factor: f32,
    /// `qmin - z` as f32.
    pub lo: f32,
    /// `qmax - z` as f32.
    pub hi: f32,
    /// The zero point `z`.
    pub zero_point: i32,
}

/// One parameter set per element; every slice is as long as the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerElement<'a> {
    pub scale: &'a [f32],
    pub factor: &'a [f32],
    pub lo: &'a [f32],
    pub hi: &'a [f32],
    pub zero_point: &'a [i32],
}

impl<'a> PerElement<'a> {
    /// The sub-span `start..start + len`.
    pub fn slice(&self, start: usize, len: usize) -> PerElement<'a> {
        let r = start..start + len;
        PerElement {
            scale: &self.scale[r.clone()],
            factor: &self.factor[r.clone()],
            lo: &self.lo[r.clone()],
            hi: &self.hi[r.clone()],
            zero_point: &self.zero_point[r],
        }
    }

    pub fn len(&self) -> usize {
        self.scale.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// The parameters of element `i` as a [`Uniform`].
    pub fn at(&self, i: usize) -> Uniform {
        Uniform {
            scale: self.scale[i],
            factor: self.factor[i],
            lo: self.lo[i],
            hi: self.hi[i],
            zero_point: self.zero_point[i],
        }
    }
}

/// A span's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Params<'a> {
    Uniform(Uniform),
    PerElement(PerElement<'a>),
}

/// The arithmetic rule, restricted to what kernels implement: the five deterministic rounding
/// modes (stochastic rounding runs in the planner's scalar loop on every ISA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub op: ScaleOp,
    pub mode: RoundingMode,
}

/// Uniform histogram bins in the form kernels use: numpy's rule (module docs of
/// `quantproof_reference::calibrate::numpy_hist`) with the edges recomputed as `linspace_f32`
/// computes them, `edge(k) = k * step + first` (a product and a sum, each rounded; no FMA) for
/// `k < n`, and `edge(n) = last`.
///
/// [`HistBins::from_edges`] builds one only when that arithmetic reproduces the given edges
/// exactly, so [`HistBins::index`] is numpy's bin for every input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistBins {
    /// The lower outer edge.
    pub first: f32,
    /// The upper outer edge.
    pub last: f32,
    /// `(last - first) / n` (float32), `linspace`'s step.
    pub step: f32,
    /// Number of bins, `1 ..= 2^24`.
    pub n: u32,
}

impl HistBins {
    /// The bins whose edges are `edges` (`n + 1` values, `edges[0] = first`,
    /// `edges[n] = last`), or `None` when they are not exactly `linspace`'s
    /// `k * step + first` (a degenerate `step == 0`, or edges from elsewhere) or `n` is 0 or
    /// above `2^24` (where float32 bin indices stop being exact). O(n).
    pub fn from_edges(first: f32, last: f32, edges: &[f32]) -> Option<HistBins> {
        let n = edges.len().checked_sub(1)?;
        if n == 0 || n > 1 << 24 || !(first.is_finite() && last.is_finite()) {
            return None;
        }
        let step = (last - first) / n as f32;
        let b = HistBins { first, last, step, n: n as u32 };
        let exact = step != 0.0
            && edges[n] == last
            && edges[..n].iter().enumerate().all(|(k, &e)| e.to_bits() == b.edge(k as u32).to_bits());
        exact.then_some(b)
    }

    /// `edge(k)`: `k * step + first` for `k < n`, `last` for `k = n`.
    #[inline(always)]
    pub fn edge(&self, k: u32) -> f32 {
        if k >= self.n {
            self.last
        } else {
            k as f32 * self.step + self.first
        }
    }

    /// numpy's bin of `x`, or `n` when `x` is counted in no bin (outside `[first, last]`, NaN):
    ///
    /// ```text
    /// f = ((x - first) / (last - first)) * n          (float32, in this order)
    /// i = min(trunc(f), n - 1)
    /// if x < edge(i):                      i -= 1
    /// if x >= edge(i + 1) and i != n - 1:  i += 1
    /// ```
    #[inline(always)]
    pub fn index(&self, x: f32) -> u32 {
        if !(x >= self.first && x <= self.last) {
            return self.n;
        }
        let n = self.n;
        let f = ((x - self.first) / (self.last - self.first)) * n as f32;
        let mut i = (f as u32).min(n - 1);
        if x < self.edge(i) {
            i = i.wrapping_sub(1);
        }
        if i != n - 1 && x >= self.edge(i.wrapping_add(1)) {
            i += 1;
        }
        // i < n here: x >= first = edge(0) keeps i from wrapping; the `min` so that an index is
        // a valid slot whatever happens.
        i.min(n)
    }

    /// The length of the sub-histogram buffer [`Kernels::histogram`] takes: four of `n + 1`.
    pub fn sub_len(&self) -> usize {
        4 * (self.n as usize + 1)
    }
}

/// SIMD logarithms in [`Kernels::kl_terms`] are kept only when their float64 value lies more
/// than this many float64 ulps away from every float32 rounding boundary (a midpoint between
/// two adjacent float32 values); other lanes are recomputed with the reference's expression.
///
/// Why that gives the reference's bits: the SIMD polynomial's relative error is below 2^-46
/// (documented and tested per ISA), i.e. under 2^7 ulps of its float64 result, and the C
/// library's `log` is within 1 ulp (glibc documents at most 1 ulp; the tests compare the SIMD
/// kernels with the reference on millions of arguments, and on every argument whose logarithm
/// lies near a boundary that the test can find). So the true logarithm, the polynomial's value
/// and the library's value all lie within `2^7 + 1 < 2^12` ulps of each other, and when the
/// polynomial's value is farther than that from every boundary, rounding either of them to
/// float32 gives the same value. About one lane in 2^16 falls back.
pub const LN_GUARD_ULPS: u64 = 1 << 12;

/// Whether the float64 logarithm `y` (bits) may be rounded to float32 in place of the reference's
/// (see [`LN_GUARD_ULPS`]): its low 29 bits (the ones float32 rounding drops) are more than
/// [`LN_GUARD_ULPS`] away from the midpoint pattern `1 << 28`.
#[inline(always)]
pub fn ln_rounding_is_safe(y_bits: u64) -> bool {
    let low = y_bits & ((1 << 29) - 1);
    low.abs_diff(1 << 28) > LN_GUARD_ULPS
}

/// The reference's logarithm in ONNX Runtime's KL divergence: `ln` in float64, rounded to
/// float32.
#[inline(always)]
pub fn ln_f32(a: f32) -> f32 {
    (a as f64).ln() as f32
}

/// One term of ONNX Runtime's KL divergence (`quantproof_reference::calibrate::onnxruntime::kl_divergence`).
#[inline(always)]
pub fn kl_term(p: f32, q: f32, sp: f32, sq: f32) -> f32 {
    let (pk, qk) = (p / sp, q / sq);
    if pk > 0.0 && qk > 0.0 {
        pk * ln_f32(pk / qk)
    } else {
        f32::INFINITY
    }
}

/// The kernels of one ISA. Callers guarantee that every slice argument has the span's length
/// (`x.len()`, or `2 * packed.len()` for nibbles); implementations may assert it.
/// What a histogram counts: the values themselves, or their magnitudes `|x|` (ONNX Runtime's
/// symmetric collectors histogram `|x|` over `[0, max|x|]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramOf {
    Values,
    Magnitudes,
}

/// Every ISA's kernels, as one interface per op family. Each family trait has a default for every
/// method: the portable kernel of `arch/generic.rs`, which the `scalar` level uses as it is. An
/// ISA implements the families it accelerates and overrides only the methods it has SIMD for, so
/// a new op is one default method in its family and compiles for every ISA at once (the Engine
/// calls it through `Kernels`); an ISA without a faster kernel keeps the portable one.
pub trait Kernels:
    QuantizeKernels + ReduceKernels + CalibrationKernels + ArithKernels + LutKernels + PoolKernels + Sync
{
    fn isa(&self) -> Isa;
}

/// Quantize, dequantize, fake-quantize and 4-bit packing over spans of uniform or per-element
/// parameters.
pub trait QuantizeKernels {
    /// `out[i] = q(x[i])` as i8. Returns true when some `x[i]` is NaN.
    fn quantize_i8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool {
        generic::quantize_span(x, p, rule, out, |q| q as i8)
    }
    /// `out[i] = q(x[i])` as u8. Returns true when some `x[i]` is NaN.
    fn quantize_u8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
        generic::quantize_span(x, p, rule, out, |q| q as u8)
    }
    /// `out[i] = f32(q[i] - z) * s`.
    fn dequantize_i8(&self, q: &[i8], p: Params<'_>, out: &mut [f32]) {
        generic::dequantize_span(q, p, out, |v| v as i32)
    }
    fn dequantize_u8(&self, q: &[u8], p: Params<'_>, out: &mut [f32]) {
        generic::dequantize_span(q, p, out, |v| v as i32)
    }
    /// Fake-quantize with optional straight-through mask. Returns true when some `x[i]` is NaN.
    fn fake_quantize(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [bool]>) -> bool {
        generic::fake_quantize_span(x, p, rule, out, mask)
    }
    /// Packs `2 * out.len()` codes (each in `[-8, 15]`, low four bits kept) two per byte: code
    /// `2k` into the low nibble of `out[k]`, code `2k + 1` into the high nibble.
    fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]) {
        generic::pack_nibbles(codes, out)
    }
    /// Unpacks `2 * packed.len()` codes; signed nibbles are sign-extended.
    fn unpack_nibbles(&self, packed: &[u8], kind: Int4, out: &mut [i8]) {
        generic::unpack_nibbles(packed, kind, out)
    }
}

/// Reductions over float spans.
pub trait ReduceKernels {
    /// `(min, max, saw_nan)` over `x`: `(+inf, -inf, false)` when empty. NaN elements are
    /// skipped for min and max and reported through the flag. Infinities count. Signed zeros
    /// are not ordered (either zero may be returned for a min or max of zero).
    fn min_max(&self, x: &[f32]) -> (f32, f32, bool) {
        generic::min_max(x)
    }
    /// `(max |x|, saw_nan)`, `0` when empty; NaN handled as in [`ReduceKernels::min_max`].
    fn abs_max(&self, x: &[f32]) -> (f32, bool) {
        generic::abs_max(x)
    }
    /// `(min |x|, saw_nan)`, `+inf` when empty; NaN handled as in [`ReduceKernels::min_max`].
    fn abs_min(&self, x: &[f32]) -> (f32, bool) {
        generic::abs_min(x)
    }
    /// numpy's pairwise sum of a float32 array, bit for bit
    /// (`quantproof_reference::calibrate::numpy_hist::pairwise_sum_f32`).
    fn pairwise_sum(&self, a: &[f32]) -> f32 {
        generic::pairwise_sum(a)
    }
}

/// The calibrators' inner loops: histograms and KL-divergence terms.
pub trait CalibrationKernels {
    /// Counts every element of `x` (of `|x|` when `abs`) into its bin [`HistBins::index`]:
    /// adds one to `sub[s * (n + 1) + bin]` for one of the four sub-histograms `s`. Slot `n` of
    /// each sub-histogram is scratch (elements in no bin go there, and kernels may add other
    /// counts to it): callers ignore it. `sub.len()` is [`HistBins::sub_len`]; callers keep
    /// `x.len()` below `2^31` so that no `u32` slot can overflow.
    fn histogram(&self, x: &[f32], bins: &HistBins, of: HistogramOf, sub: &mut [u32]) {
        generic::histogram(x, bins, of, sub)
    }
    /// `out[i] = kl_term(p[i], q[i], sp, sq)` ([`kl_term`]); all four slices have one length.
    fn kl_terms(&self, p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
        generic::kl_terms(p, q, sp, sq, out)
    }
}

/// Integer arithmetic on codes: requantization and the element-wise QAdd / QSub / QMul.
pub trait ArithKernels {
    /// `out[i] = r.apply(acc[i], zero_point, range)`: int32 accumulators to codes under one of the
    /// reference's requantizers (`quantproof_reference::requantize::Requantizer`), bit for bit.
    /// `out.len() == acc.len()`; `zero_point` lies in `range`. The default is the portable loop
    /// (the reference's `apply`); an ISA overrides it for the variants it vectorizes.
    fn requantize(&self, acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [i32]) {
        generic::requantize(acc, r, zero_point, range, out)
    }
    /// [`ArithKernels::requantize`] writing each code's byte (`out[i]` = the low byte of
    /// `r.apply(acc[i], zero_point, range)`: the `u8` code, or the `i8` code's two's complement).
    /// `range` lies inside `[-128, 127]` or `[0, 255]`, so no code is cut; the other
    /// preconditions are `requantize`'s.
    fn requantize_bytes(&self, acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [u8]) {
        generic::requantize(acc, r, zero_point, range, out)
    }
    /// `out[i] = k.apply(a[i], b[i])`: QAdd / QSub / QMul on 8-bit codes under one framework's
    /// prepared arithmetic (`quantproof_reference::elementwise::BinaryKernel`), bit for bit.
    /// The codes are bytes read as `signedness` says (`i8` codes are their two's-complement
    /// bytes); the kernel was prepared for that code type, so its results are codes of it.
    /// `a`, `b` and `out` have one length (broadcasting is the Engine's). The default is the
    /// portable loop; an ISA overrides it for the kernels it vectorizes.
    fn binary_bytes(&self, k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
        generic::binary_bytes(k, signedness, a, b, out)
    }
}

/// Pooling's inner loop on 8-bit codes.
pub trait PoolKernels {
    /// `out[i] = min(hi, max(lo, rows[0][i], .., rows[r - 1][i]))`: max pooling's window
    /// maximum over `r` rows of cells, read once each, with the fused activation's clamp. The
    /// bytes (`lo` and `hi` too) are read as codes of `signedness` (an `i8` code's byte compares
    /// as signed); `lo <= hi` as codes, and every row has `out`'s length. No rows: `out[i] =
    /// lo`. The default is the portable loop; an ISA overrides it with its byte max and min
    /// (`vpmaxsb`/`vpmaxub`, `vpminsb`/`vpminub`, NEON `smax`/`umax`, `smin`/`umin`).
    fn max_rows(&self, signedness: Signedness, lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8]) {
        generic::max_rows(signedness, lo, hi, rows, out, 0)
    }
    /// `out[i] = code(rows[0][i]) + .. + code(rows[r - 1][i])`: average pooling's column sums
    /// over a window's rows, each row read once, the bytes read as codes of `signedness`. Every
    /// row has `out`'s length; no rows: `out[i] = 0`. The sum wraps in `i32` (callers keep
    /// windows small enough that it cannot: at most `2^23` codes). The default is the portable
    /// loop; an ISA widens bytes to 32-bit lanes (`vpmovsxbd`/`vpmovzxbd`, NEON `sxtl`/`uxtl`).
    fn sum_rows(&self, signedness: Signedness, rows: &[&[u8]], out: &mut [i32]) {
        generic::sum_rows(signedness, rows, out, 0)
    }
}

/// `impl ArithKernels for $token` forwarding its methods to an ISA's `unsafe` kernels (modules
/// with `binary_bytes` and `requantize` of the trait's signatures, callable when the CPU has the
/// token's features and the slices have the trait's lengths): the length checks and the one
/// safety argument, written once for every ISA.
macro_rules! forward_arith_kernels {
    ($token:ty, $binary:path, $requant:path, $features:literal) => {
        #[doc = concat!("The ISA's requantization and QAdd / QSub / QMul kernels (", $features, ").")]
        impl $crate::kernels::ArithKernels for $token {
            fn binary_bytes(
                &self,
                k: &quantproof_reference::elementwise::BinaryKernel,
                signedness: quantproof_reference::scheme::Signedness,
                a: &[u8],
                b: &[u8],
                out: &mut [u8],
            ) {
                assert!(a.len() == out.len() && b.len() == out.len());
                use $binary as kernel;
                // SAFETY: a token of this type exists only when the CPU has the features named
                // in the macro call; the three lengths are equal (asserted above).
                unsafe { kernel::binary_bytes(k, signedness, a, b, out) }
            }

            fn requantize(
                &self,
                acc: &[i32],
                r: &quantproof_reference::requantize::Requantizer,
                zero_point: i32,
                range: quantproof_reference::scheme::CodeRange,
                out: &mut [i32],
            ) {
                assert_eq!(acc.len(), out.len());
                use $requant as kernel;
                // SAFETY: as above (features of the token; equal lengths).
                unsafe { kernel::requantize(acc, r, zero_point, range, out) }
            }

            fn requantize_bytes(
                &self,
                acc: &[i32],
                r: &quantproof_reference::requantize::Requantizer,
                zero_point: i32,
                range: quantproof_reference::scheme::CodeRange,
                out: &mut [u8],
            ) {
                assert_eq!(acc.len(), out.len());
                use $requant as kernel;
                // SAFETY: as above (features of the token; equal lengths).
                unsafe { kernel::requantize(acc, r, zero_point, range, out) }
            }
        }
    };
}
pub(crate) use forward_arith_kernels;

/// `impl PoolKernels for $token` forwarding to an ISA module's `unsafe` `max_rows` and
/// `sum_rows` (the trait's signatures without `&self`, callable when the CPU has the token's
/// features and every row has the output's length): the length check and the one safety
/// argument, written once for every ISA.
macro_rules! forward_pool_kernels {
    ($token:ty, $module:path, $features:literal) => {
        #[doc = concat!("The ISA's pooling kernels (", $features, ").")]
        impl $crate::kernels::PoolKernels for $token {
            fn max_rows(
                &self,
                signedness: quantproof_reference::scheme::Signedness,
                lo: u8,
                hi: u8,
                rows: &[&[u8]],
                out: &mut [u8],
            ) {
                assert!(rows.iter().all(|r| r.len() == out.len()));
                use $module as kernel;
                // SAFETY: a token of this type exists only when the CPU has the features named
                // in the macro call; every row has `out`'s length (asserted above).
                unsafe { kernel::max_rows(signedness, lo, hi, rows, out) }
            }

            fn sum_rows(&self, signedness: quantproof_reference::scheme::Signedness, rows: &[&[u8]], out: &mut [i32]) {
                assert!(rows.iter().all(|r| r.len() == out.len()));
                use $module as kernel;
                // SAFETY: as above (features of the token; every row has `out`'s length).
                unsafe { kernel::sum_rows(signedness, rows, out) }
            }
        }
    };
}
pub(crate) use forward_pool_kernels;

/// `impl ReduceKernels for $token` forwarding to an ISA module's `unsafe` reductions `min_max`,
/// `abs_extreme::<MAX>` (`abs_max` / `abs_min`; whole slices) and `pairwise_leaf` (numpy's 128-element leaf, under the
/// portable recursion), callable when the CPU has the token's features. (x86 only: NEON finishes
/// its reductions' tails with the portable kernels itself.)
#[cfg(target_arch = "x86_64")]
macro_rules! forward_reduce_kernels {
    ($token:ty, $module:path, $features:literal) => {
        #[doc = concat!("The ISA's reductions (", $features, ").")]
        impl $crate::kernels::ReduceKernels for $token {
            fn min_max(&self, x: &[f32]) -> (f32, f32, bool) {
                use $module as kernel;
                // SAFETY: a token of this type exists only when the CPU has its features.
                unsafe { kernel::min_max(x) }
            }

            fn abs_max(&self, x: &[f32]) -> (f32, bool) {
                use $module as kernel;
                // SAFETY: as above.
                unsafe { kernel::abs_extreme::<true>(x) }
            }

            fn abs_min(&self, x: &[f32]) -> (f32, bool) {
                use $module as kernel;
                // SAFETY: as above.
                unsafe { kernel::abs_extreme::<false>(x) }
            }

            fn pairwise_sum(&self, a: &[f32]) -> f32 {
                use $module as kernel;
                // SAFETY: as above.
                $crate::arch::generic::pairwise_with(a, &|leaf| unsafe { kernel::pairwise_leaf(leaf) })
            }
        }
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use forward_reduce_kernels;

/// `impl CalibrationKernels for $token` forwarding to an ISA module's `unsafe` `histogram::<ABS>`
/// and `kl_terms`, callable when the CPU has the token's features.
macro_rules! forward_calibration_kernels {
    ($token:ty, $module:path, $features:literal) => {
        #[doc = concat!("The ISA's histogram and KL kernels (", $features, ").")]
        impl $crate::kernels::CalibrationKernels for $token {
            fn histogram(
                &self,
                x: &[f32],
                bins: &$crate::kernels::HistBins,
                of: $crate::kernels::HistogramOf,
                sub: &mut [u32],
            ) {
                use $module as kernel;
                // SAFETY: a token of this type exists only when the CPU has its features.
                unsafe {
                    if of == $crate::kernels::HistogramOf::Magnitudes {
                        kernel::histogram::<true>(x, bins, sub)
                    } else {
                        kernel::histogram::<false>(x, bins, sub)
                    }
                }
            }

            fn kl_terms(&self, p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
                use $module as kernel;
                // SAFETY: as above.
                unsafe { kernel::kl_terms(p, q, sp, sq, out) }
            }
        }
    };
}
pub(crate) use forward_calibration_kernels;

/// Table lookups on 8-bit codes (every unary op on codes).
pub trait LutKernels {
    /// `out[i] = table[x[i]]`: a 256-entry byte table indexed by the code's byte (the Engine
    /// rotates an `i8` table by 128 so that the bytes of `i8` codes index it). `out.len() ==
    /// x.len()`. The default is the portable loop; an ISA overrides it where it has a byte
    /// permute (AVX-512 VBMI `vpermi2b`, AVX2 `vpshufb`, NEON `tbl`).
    fn lut_bytes(&self, table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        generic::lut_bytes(table, x, out)
    }
}

/// The kernels of `isa`, or `None` when this CPU lacks it.
pub fn table(isa: Isa) -> Option<&'static dyn Kernels> {
    match isa {
        Isa::Scalar => Some(&crate::arch::generic::Scalar),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::avx2::Avx2::new().map(|k| k as &dyn Kernels),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::avx512::Avx512::new().map(|k| k as &dyn Kernels),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::neon::Neon::new().map(|k| k as &dyn Kernels),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
