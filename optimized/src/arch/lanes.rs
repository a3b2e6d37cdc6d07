//! Requantization and QAdd / QSub / QMul on 8-bit codes, written once over a vector of 32-bit
//! lanes ([`Lanes`]) and instantiated per ISA (`x86_64/avx2_{binary,requant}.rs`,
//! `x86_64/avx512_{binary,requant}.rs`, `aarch64/neon_{binary,requant}.rs`), bit for bit with
//! `quantproof_reference::requantize::Requantizer::apply` and
//! `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Each ISA supplies the lane operations (one or two instructions each), its gemmlowp
//! double-rounding multiplier (`Q31`), and the loops: a [`Driver`] that widens codes to lanes,
//! runs a [`Pair`] kernel over them and narrows the results (exact: every result already lies in
//! the code range), and a [`RequantDriver`] that runs a [`Map`] over accumulators and owns the
//! 64-bit single-rounding form (`(x m + 2^(t-1)) >> t`, which needs 64-bit lanes).
//!
//! Requantization ([`requantize`]): the float multipliers (PyTorch's and ONNX Runtime's) as
//! `round_ties_even(clamp(x * M, qmin - z, qmax - z)) + z` in f32 (one rounded product, as the
//! reference; clamping to integral bounds before rounding equals clamping after; finite
//! multipliers only), gemmlowp's double rounding as `clamp(Q31(x), qmin - z, qmax - z) + z`,
//! single rounding and rndnu in the ISA's 64-bit form; the power-of-two shift, a non-finite
//! multiplier and a multiplier the ISA's `Q31` refuses run on the portable loop.
//!
//! The element-wise kernels below are the arithmetic, in the reference's order of operations:
//!
//! | kernel | lane arithmetic | why it is exact |
//! |---|---|---|
//! | `TfliteAdd` | `(q - z) << left_shift`, three double-rounding multiplies, clamp, `+ zy` | the reference's integer formulas; the centred codes are at most 255 in magnitude, so no 32-bit step overflows |
//! | `TfliteMul`, `EqualScale` | product / sum / difference of the centred codes, one multiply, clamp, `+ zy` | the same integers |
//! | `TorchAddSub` | the centred codes to f32 (exact), times each scale, add / subtract, `max` with 0 for ReLU, times `RN(1/sy)`, clamp to `[lo - zy, hi - zy]` in f32, round ties to even, `+ zy` | one IEEE operation per reference operation, in its order; clamping to integral bounds before rounding equals rounding before clamping |
//! | `TorchMul` | product of the centred codes (exact, at most 65025), to f32, times `M`, clamp, round, `+ zy` | as above |
//! | `OnnxRuntime` | dequantize both in f32, add / multiply, divide by `sy` (the division instruction, or its exact five-FMA form where [`markstein_fits`]), clamp to `[lo - zy, hi - zy]`, `+ zy` in f32, round ties to even | the reference's order of operations exactly; the sum lies in `[lo, hi]` already (monotone rounding, integral bounds) |
//!
//! The float kernels run only where [`generic::binary_floats_stay_finite`] proves that no NaN
//! can arise (no `inf - inf`, no `0 * inf`); anything else, and a multiplier an ISA's `Q31`
//! refuses (a right shift above 31), runs on the portable loop.

use crate::arch::generic;
use quantproof_reference::affine::Affine;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::requantize::{QuantizedMultiplier, Requantizer};
use quantproof_reference::scheme::CodeRange;
use quantproof_reference::scheme::Signedness;

/// One ISA's vector of 32-bit integer lanes, with its f32 twin and its double-rounding
/// multiplier.
///
/// # Safety
/// Every method needs the ISA's features; implementations are `#[inline(always)]` and are
/// called only from that ISA's `#[target_feature]` functions.
pub(crate) trait Lanes: Copy {
    /// The same number of f32 lanes.
    type F: Copy;
    /// Whether ONNX Runtime's division runs faster as five multiply-adds
    /// ([`div_markstein_lanes`]) than as the division instruction (measured: on AVX-512 the
    /// 512-bit division is the slower, on AVX2 the 256-bit one is faster).
    const DIVIDE_BY_FMA: bool;
    /// gemmlowp's `MultiplyByQuantizedMultiplier` prepared for these lanes (as a [`Map`]: the
    /// unclamped product, for [`requantize_bytes_wide`]).
    type Q31: Map<Self>;
    /// A left-shift count in the form the ISA's shift takes.
    type Count: Copy;

    unsafe fn splat(x: i32) -> Self;
    unsafe fn splat_f(x: f32) -> Self::F;
    unsafe fn count(n: i32) -> Self::Count;
    /// `None` where this ISA's multiply is not the reference's (the portable loop takes those).
    unsafe fn q31(q: QuantizedMultiplier) -> Option<Self::Q31>;

    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    /// The low 32 bits of the product.
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn min(self, o: Self) -> Self;
    unsafe fn max(self, o: Self) -> Self;
    unsafe fn and(self, o: Self) -> Self;
    /// `t[idx[i]]` per lane.
    ///
    /// # Safety
    /// Besides the ISA: every lane of `idx` lies in `0..=255`.
    unsafe fn gather(t: &[i32; 256], idx: Self) -> Self;
    /// Wrapping left shift.
    unsafe fn shl(self, n: Self::Count) -> Self;
    unsafe fn mul_q31(self, q: &Self::Q31) -> Self;
    /// Exact for the centred codes and their products (magnitudes below 2^24); larger values
    /// (requantization's accumulators) round to nearest even, as the reference's `acc as f32`.
    unsafe fn to_f32(self) -> Self::F;

    unsafe fn fadd(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn fsub(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn fmul(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn fdiv(a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c` with one rounding.
    unsafe fn fmadd(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `c - a * b` with one rounding.
    unsafe fn fnmadd(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    unsafe fn fmin(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn fmax(a: Self::F, b: Self::F) -> Self::F;
    /// Round to nearest, ties to even (values within i32 range).
    unsafe fn round(a: Self::F) -> Self;
}

/// A lane-wise kernel: pairs of codes (as i32 lanes) in, clamped output codes out.
pub(crate) trait Pair<V: Lanes> {
    /// # Safety
    /// The CPU has `V`'s features.
    unsafe fn apply(&self, a: V, b: V) -> V;

    /// `Some((zy, lo, hi))` when [`Pair::raw`] gives this kernel's result before its output
    /// clamp, as an `i32` that needs no other care: `apply(a, b) == clamp(raw(a, b) + zy, lo,
    /// hi)` lane for lane. A driver may then narrow several vectors at once with saturating
    /// packs instead of clamping each.
    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        None
    }

    /// The result before the output clamp and zero point (see [`Pair::narrowable`]).
    ///
    /// # Safety
    /// The CPU has `V`'s features.
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.apply(a, b) }
    }
}

/// One ISA's byte loop for a [`Pair::narrowable`] pair: `out = clamp(pair.raw(a, b) + zy, lo,
/// hi)` over whole steps of four vectors, narrowed at once with saturating packs. `SIGNED`: the
/// input codes are `i8`; `OUT_SIGNED`: `[lo, hi]` lies inside `i8` (else inside `u8`).
pub(crate) trait WideBinary {
    type V: Lanes;

    /// Returns how many codes were written (whole steps from the start).
    ///
    /// # Safety
    /// The CPU has `V`'s features; the three slices have one length; `pair.narrowable() ==
    /// Some((zy, lo, hi))` with `|zy| <= 255`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn wide<P: Pair<Self::V>, const SIGNED: bool, const OUT_SIGNED: bool>(
        pair: &P,
        zy: i32,
        lo: i32,
        hi: i32,
        a: &[u8],
        b: &[u8],
        out: &mut [u8],
    ) -> usize;
}

/// The leading whole steps of a binary kernel on `D`'s narrowing loop where `pair` is
/// [`Pair::narrowable`] with `|zy| <= 255`; returns how many codes were written (0 otherwise),
/// the driver's own loops doing the rest.
///
/// # Safety
/// The CPU has `D::V`'s features; the three slices have one length.
#[inline(always)]
pub(crate) unsafe fn binary_wide<D: WideBinary, P: Pair<D::V>, const SIGNED: bool>(
    pair: &P,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) -> usize {
    match pair.narrowable() {
        // `lo < 0`: the output range lies inside i8 (else inside u8; a range inside both, such
        // as [0, 127], has the same bytes either way).
        // SAFETY: this function's contract, and `|zy| <= 255` checked here.
        Some((zy, lo, hi)) if (-255..=255).contains(&zy) => unsafe {
            if lo < 0 {
                D::wide::<P, SIGNED, true>(pair, zy, lo, hi, a, b, out)
            } else {
                D::wide::<P, SIGNED, false>(pair, zy, lo, hi, a, b, out)
            }
        },
        _ => 0,
    }
}

/// One ISA's loop: widen codes, apply a [`Pair`], narrow and store, tails included.
pub(crate) trait Driver {
    type V: Lanes;

    /// `out[i] = k.apply(a[i], b[i])`, where `pair` computes `k` on full vectors (the driver may
    /// hand a tail to the portable loop with `k`).
    ///
    /// # Safety
    /// The CPU has `V`'s features; the three slices have one length.
    unsafe fn run<P: Pair<Self::V>>(pair: &P, k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]);
}

/// `clamp(v, lo - zy, hi - zy) + zy`: the exact `clamp(v + zy, lo, hi)` (the same integer, and no
/// 32-bit overflow when `v` is near `i32::MAX`).
struct Out<V> {
    zy: V,
    lo: V,
    hi: V,
    /// `(zy, lo, hi)` as given.
    bounds: (i32, i32, i32),
}

impl<V: Lanes> Out<V> {
    #[inline(always)]
    unsafe fn new(zy: i32, lo: i32, hi: i32) -> Out<V> {
        // SAFETY: forwarded from this function's contract (broadcasts only).
        unsafe { Out { zy: V::splat(zy), lo: V::splat(lo - zy), hi: V::splat(hi - zy), bounds: (zy, lo, hi) } }
    }

    #[inline(always)]
    unsafe fn finish(&self, v: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { v.max(self.lo).min(self.hi).add(self.zy) }
    }
}

struct TfliteAdd<V: Lanes> {
    za: V,
    zb: V,
    shift: V::Count,
    ma: V::Q31,
    mb: V::Q31,
    my: V::Q31,
    out: Out<V>,
}

impl<V: Lanes> Pair<V> for TfliteAdd<V> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.out.finish(self.raw(a, b))
        }
    }

    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        Some(self.out.bounds)
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let xa = a.sub(self.za).shl(self.shift).mul_q31(&self.ma);
            let xb = b.sub(self.zb).shl(self.shift).mul_q31(&self.mb);
            xa.add(xb).mul_q31(&self.my)
        }
    }
}

/// `TfliteAdd` with each input's rescaling `MBQM((q - z) << left_shift, m)`, a function of one
/// code, read from a 256-entry table the reference's own primitive filled ([`input_table`]):
/// one double-rounding multiply per pair instead of three.
struct TfliteAddTables<'t, V: Lanes> {
    ta: &'t [i32; 256],
    tb: &'t [i32; 256],
    byte: V,
    my: V::Q31,
    out: Out<V>,
}

impl<V: Lanes> Pair<V> for TfliteAddTables<'_, V> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: the ISA is the caller's contract; `& 255` keeps every index in the tables.
        unsafe { self.out.finish(self.raw(a, b)) }
    }

    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        Some(self.out.bounds)
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: the ISA is the caller's contract; `& 255` keeps every index in the tables.
        unsafe {
            let xa = V::gather(self.ta, a.and(self.byte));
            let xb = V::gather(self.tb, b.and(self.byte));
            xa.add(xb).mul_q31(&self.my)
        }
    }
}

/// From this many pairs on, `TfliteAdd` builds its two input tables (512 scalar multiplies)
/// rather than computing three multiplies per pair.
pub(crate) const TFLITE_ADD_TABLES_FROM: usize = 2048;

/// `t[byte] = MBQM((code - z) << left_shift, m)` for the code whose byte is `byte` (the
/// reference's `BinaryKernel::apply`, first step, exactly).
pub(crate) fn input_table(z: i32, left_shift: u32, m: QuantizedMultiplier, s: Signedness) -> [i32; 256] {
    let mut t = [0i32; 256];
    for (byte, v) in t.iter_mut().enumerate() {
        let q = generic::code_of_byte(byte as u8, s);
        *v = quantproof_reference::requantize::multiply_by_quantized_multiplier_double_rounding(
            (q - z) << left_shift,
            m,
        );
    }
    t
}

/// `TfliteMul` (`MUL = true`: the product) and `EqualScale` (`MUL = false`: the sum or
/// difference) of the centred codes, then one multiplier.
struct OneMultiplier<V: Lanes, const MUL: bool> {
    za: V,
    zb: V,
    negate_b: bool,
    m: V::Q31,
    out: Out<V>,
}

impl<V: Lanes, const MUL: bool> Pair<V> for OneMultiplier<V, MUL> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.out.finish(self.raw(a, b)) }
    }

    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        Some(self.out.bounds)
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let (ca, cb) = (a.sub(self.za), b.sub(self.zb));
            let v = if MUL {
                ca.mul(cb)
            } else if self.negate_b {
                ca.sub(cb)
            } else {
                ca.add(cb)
            };
            v.mul_q31(&self.m)
        }
    }
}

/// `(q - z) as f32 * s`, the reference's `Affine::dequantize`.
struct Deq<V: Lanes> {
    z: V,
    s: V::F,
}

impl<V: Lanes> Deq<V> {
    #[inline(always)]
    unsafe fn new(p: Affine) -> Deq<V> {
        // SAFETY: forwarded from this function's contract (broadcasts only).
        unsafe { Deq { z: V::splat(p.zero_point), s: V::splat_f(p.scale) } }
    }

    #[inline(always)]
    unsafe fn apply(&self, q: V) -> V::F {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::fmul(q.sub(self.z).to_f32(), self.s) }
    }
}

/// Float bounds `[lo - zy, hi - zy]` (integral, so clamping before rounding equals clamping
/// after) and the output zero point.
struct FloatOut<V: Lanes> {
    lo: V::F,
    hi: V::F,
    zy: V,
    /// `(zy, lo, hi)` as given.
    bounds: (i32, i32, i32),
}

impl<V: Lanes> FloatOut<V> {
    #[inline(always)]
    unsafe fn new(zy: i32, lo: i32, hi: i32) -> FloatOut<V> {
        // SAFETY: forwarded from this function's contract (broadcasts only).
        unsafe {
            FloatOut {
                lo: V::splat_f((lo - zy) as f32),
                hi: V::splat_f((hi - zy) as f32),
                zy: V::splat(zy),
                bounds: (zy, lo, hi),
            }
        }
    }

    /// `round(clamp(v, lo - zy, hi - zy)) + zy`, ties to even.
    #[inline(always)]
    unsafe fn finish(&self, v: V::F) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::round(V::fmin(V::fmax(v, self.lo), self.hi)).add(self.zy) }
    }
}

struct TorchAddSub<V: Lanes> {
    a: Deq<V>,
    b: Deq<V>,
    inv_sy: V::F,
    negate_b: bool,
    relu: bool,
    out: FloatOut<V>,
    /// Every `(da +- db) / sy` lies within `+-2^30` ([`products_fit`]), so rounding it needs no
    /// clamp first.
    raw_fits: bool,
}

impl<V: Lanes> Pair<V> for TorchAddSub<V> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.out.finish(self.scaled(a, b))
        }
    }

    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        self.raw_fits.then_some(self.out.bounds)
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::round(self.scaled(a, b)) }
    }
}

impl<V: Lanes> TorchAddSub<V> {
    /// `(da +- db) * (1 / sy)` in f32, after the fused ReLU.
    #[inline(always)]
    unsafe fn scaled(&self, a: V, b: V) -> V::F {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let (da, db) = (self.a.apply(a), self.b.apply(b));
            let mut c = if self.negate_b { V::fsub(da, db) } else { V::fadd(da, db) };
            if self.relu {
                c = V::fmax(c, V::splat_f(0.0));
            }
            V::fmul(c, self.inv_sy)
        }
    }
}

/// Whether `bound` times `|multiplier|` (with a margin for the f32 roundings on the way) stays
/// within `2^30`, so that a vector round (`i32` lanes) of every such product is exact without a
/// clamp before it.
fn products_fit(bound: f64, multiplier: f32) -> bool {
    let v = bound * (multiplier as f64).abs() * (1.0 + 1e-3);
    v.is_finite() && v < (1u32 << 30) as f64
}

struct TorchMul<V: Lanes> {
    za: V,
    zb: V,
    m: V::F,
    out: FloatOut<V>,
    /// Every `(qa - za)(qb - zb) m` lies within `+-2^30` ([`products_fit`]).
    raw_fits: bool,
}

impl<V: Lanes> Pair<V> for TorchMul<V> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let p = a.sub(self.za).mul(b.sub(self.zb));
            self.out.finish(V::fmul(p.to_f32(), self.m))
        }
    }

    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        self.raw_fits.then_some(self.out.bounds)
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::round(V::fmul(a.sub(self.za).mul(b.sub(self.zb)).to_f32(), self.m)) }
    }
}

/// `RN(x / b)` from `y = RN(1 / b)` with fused multiply-adds (Markstein, "Computation of
/// elementary functions on the IBM RISC System/6000 processor", 1990): `q0 = RN(x y)`, then two
/// corrections `q <- RN(q + RN(x - b q) y)`. The first makes `q` faithful (within one ulp of
/// `x / b`); Markstein's theorem then makes the second correctly rounded: with `q` faithful and
/// `y` within half an ulp of `1 / b`, the residual `x - b q` is exact and `RN(q + r y) = RN(x /
/// b)`, in round-to-nearest, where nothing underflows. [`markstein_fits`] gives the scales for
/// which no step leaves the normal range; `divide_by_reciprocal_is_division` checks the scalar
/// twin (`div_markstein`) against `/` on 400 million quotients. Five multiply-adds in place of
/// a division, which is several times slower per vector.
#[inline(always)]
unsafe fn div_markstein_lanes<V: Lanes>(x: V::F, b: V::F, y: V::F) -> V::F {
    // SAFETY: forwarded from this function's contract (the ISA's features).
    unsafe {
        let q = V::fmul(x, y);
        let q = V::fmadd(V::fnmadd(b, q, x), y, q);
        V::fmadd(V::fnmadd(b, q, x), y, q)
    }
}

/// The scalar twin of [`div_markstein_lanes`], the same IEEE operations in the same order.
#[cfg(test)]
fn div_markstein(x: f32, b: f32, y: f32) -> f32 {
    let q = x * y;
    let q = (-b).mul_add(q, x).mul_add(y, q);
    (-b).mul_add(q, x).mul_add(y, q)
}

/// Whether every scale's magnitude lies in `[2^-30, 2^30]`: then ONNX Runtime's numerators (sums
/// or products of dequantized codes, each a multiple of at least `2^-53` or zero) and their
/// quotients stay in the normal range with room to spare, where [`div_markstein_lanes`] is the
/// division. Anything else keeps the division instruction.
pub(crate) fn markstein_fits(scales: &[f32]) -> bool {
    scales.iter().all(|s| (2f32.powi(-30)..=2f32.powi(30)).contains(&s.abs()))
}

/// ONNX Runtime's QLinearAdd (`MUL = false`) or QLinearMul (`MUL = true`), dividing with the
/// division instruction or, where `MARKSTEIN`, its exact FMA form ([`div_markstein_lanes`]);
/// both choices fixed at compile time, so that the loop has no branch.
struct OnnxRuntime<V: Lanes, const MARKSTEIN: bool, const MUL: bool> {
    a: Deq<V>,
    b: Deq<V>,
    sy: V::F,
    /// `RN(1 / sy)` (used where `MARKSTEIN`).
    inv_sy: V::F,
    lo: V::F,
    hi: V::F,
    fzy: V::F,
    /// `(lo, hi)`.
    bounds: (i32, i32),
    /// Every quotient `c / sy` lies within `+-2^30` ([`products_fit`]).
    raw_fits: bool,
}

impl<V: Lanes, const MARKSTEIN: bool, const MUL: bool> OnnxRuntime<V, MARKSTEIN, MUL> {
    /// `c = (va + vb) / sy` or `(va vb) / sy` in f32.
    #[inline(always)]
    unsafe fn quotient(&self, a: V, b: V) -> V::F {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let (va, vb) = (self.a.apply(a), self.b.apply(b));
            let x = if MUL { V::fmul(va, vb) } else { V::fadd(va, vb) };
            if MARKSTEIN {
                div_markstein_lanes::<V>(x, self.sy, self.inv_sy)
            } else {
                V::fdiv(x, self.sy)
            }
        }
    }
}

impl<V: Lanes, const MARKSTEIN: bool, const MUL: bool> Pair<V> for OnnxRuntime<V, MARKSTEIN, MUL> {
    #[inline(always)]
    unsafe fn apply(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let c = self.quotient(a, b);
            // c + zy lies in [lo, hi] already (monotone rounding, integral bounds).
            V::round(V::fadd(V::fmin(V::fmax(c, self.lo), self.hi), self.fzy))
        }
    }

    /// `raw = round(RN(c + zy))`, with the output zero point already in it (so the narrowing
    /// adds 0): the reference clamps `c` to `[lo - zy, hi - zy]` before adding `zy` and
    /// rounding, and since the bounds and `zy` are integers (their f32 sums exact) and `x ->
    /// round(RN(x + zy))` is monotone, that equals `clamp(round(RN(c + zy)), lo, hi)` =
    /// `clamp(raw, lo, hi)`. (Not `round(c) + zy`: adding `zy` in f32 can round `c + zy` onto a
    /// tie that `c` was not on.) An i32 where every quotient is within `2^30`.
    fn narrowable(&self) -> Option<(i32, i32, i32)> {
        self.raw_fits.then_some((0, self.bounds.0, self.bounds.1))
    }

    #[inline(always)]
    unsafe fn raw(&self, a: V, b: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::round(V::fadd(self.quotient(a, b), self.fzy)) }
    }
}

/// ONNX Runtime's kernel for `k` on `D` with its compile-time choices.
///
/// # Safety
/// As [`binary_bytes`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn onnxruntime<D: Driver, const MARKSTEIN: bool, const MUL: bool>(
    (pa, pb, y): (Affine, Affine, Affine),
    (lo, hi): (i32, i32),
    k: &BinaryKernel,
    s: Signedness,
    a: &[u8],
    b: &[u8],
    out: &mut [u8],
) {
    let zy = y.zero_point;
    // |qa - za| <= 510 for codes and zero points of one byte type (as for PyTorch's kernels).
    let (sa, sb) = (pa.scale.abs() as f64, pb.scale.abs() as f64);
    let bound = if MUL { 510.0 * 510.0 * sa * sb } else { 510.0 * (sa + sb) };
    // SAFETY: broadcasts and `D::run`, which this function's contract makes sound.
    unsafe {
        let p = OnnxRuntime::<D::V, MARKSTEIN, MUL> {
            a: Deq::new(pa),
            b: Deq::new(pb),
            sy: D::V::splat_f(y.scale),
            inv_sy: D::V::splat_f(1.0 / y.scale),
            lo: D::V::splat_f((lo - zy) as f32),
            hi: D::V::splat_f((hi - zy) as f32),
            fzy: D::V::splat_f(zy as f32),
            bounds: (lo, hi),
            raw_fits: products_fit(bound, 1.0 / y.scale),
        };
        D::run(&p, k, s, a, b, out)
    }
}

/// `out[i] = k.apply(a[i], b[i])` on `D`'s lanes where a kernel above computes `k`, on the
/// portable loop otherwise.
///
/// # Safety
/// The CPU has `D::V`'s features (callers are that ISA's `#[target_feature]` functions, into
/// which this inlines); the three slices have one length.
#[inline(always)]
pub(crate) unsafe fn binary_bytes<D: Driver>(k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    let finite = generic::binary_floats_stay_finite(k);
    // SAFETY: register set-ups and `D::run`, which this function's contract (the CPU has
    // `D::V`'s features; equal lengths) makes sound.
    unsafe {
        match *k {
            BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi }
                if a.len() >= TFLITE_ADD_TABLES_FROM =>
            {
                if let Some(my) = D::V::q31(my) {
                    let (ta, tb) = (input_table(za, left_shift, ma, s), input_table(zb, left_shift, mb, s));
                    let (byte, out_) = (D::V::splat(255), Out::new(zy, lo, hi));
                    return D::run(&TfliteAddTables { ta: &ta, tb: &tb, byte, my, out: out_ }, k, s, a, b, out);
                }
            }
            BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } => {
                if let (Some(ma), Some(mb), Some(my)) = (D::V::q31(ma), D::V::q31(mb), D::V::q31(my)) {
                    let (za, zb, shift) = (D::V::splat(za), D::V::splat(zb), D::V::count(left_shift as i32));
                    let p = TfliteAdd { za, zb, shift, ma, mb, my, out: Out::new(zy, lo, hi) };
                    return D::run(&p, k, s, a, b, out);
                }
            }
            BinaryKernel::TfliteMul { za, zb, zy, m, lo, hi } => {
                if let Some(m) = D::V::q31(m) {
                    let (za, zb) = (D::V::splat(za), D::V::splat(zb));
                    let p = OneMultiplier::<D::V, true> { za, zb, negate_b: false, m, out: Out::new(zy, lo, hi) };
                    return D::run(&p, k, s, a, b, out);
                }
            }
            BinaryKernel::EqualScale { za, zb, zy, negate_b, m, lo, hi } => {
                if let Some(m) = D::V::q31(m) {
                    let (za, zb) = (D::V::splat(za), D::V::splat(zb));
                    let p = OneMultiplier::<D::V, false> { za, zb, negate_b, m, out: Out::new(zy, lo, hi) };
                    return D::run(&p, k, s, a, b, out);
                }
            }
            BinaryKernel::TorchAddSub { a: pa, b: pb, zy, inv_sy, negate_b, relu, lo, hi } if finite => {
                // |q - z| <= 510 for codes and zero points of one byte type.
                let bound = 510.0 * (pa.scale.abs() as f64 + pb.scale.abs() as f64);
                let raw_fits = products_fit(bound, inv_sy);
                let (a_, b_, inv_sy) = (Deq::new(pa), Deq::new(pb), D::V::splat_f(inv_sy));
                let p = TorchAddSub { a: a_, b: b_, inv_sy, negate_b, relu, out: FloatOut::new(zy, lo, hi), raw_fits };
                return D::run(&p, k, s, a, b, out);
            }
            BinaryKernel::TorchMul { za, zb, zy, m, lo, hi } if finite => {
                let raw_fits = products_fit(510.0 * 510.0, m);
                let (za, zb, m) = (D::V::splat(za), D::V::splat(zb), D::V::splat_f(m));
                let p = TorchMul { za, zb, m, out: FloatOut::new(zy, lo, hi), raw_fits };
                return D::run(&p, k, s, a, b, out);
            }
            BinaryKernel::OnnxRuntime { a: pa, b: pb, y, mul, lo, hi } if finite => {
                let (p, bounds) = ((pa, pb, y), (lo, hi));
                return match (D::V::DIVIDE_BY_FMA && markstein_fits(&[pa.scale, pb.scale, y.scale]), mul) {
                    (true, true) => onnxruntime::<D, true, true>(p, bounds, k, s, a, b, out),
                    (true, false) => onnxruntime::<D, true, false>(p, bounds, k, s, a, b, out),
                    (false, true) => onnxruntime::<D, false, true>(p, bounds, k, s, a, b, out),
                    (false, false) => onnxruntime::<D, false, false>(p, bounds, k, s, a, b, out),
                };
            }
            _ => {}
        }
    }
    generic::binary_bytes(k, s, a, b, out)
}

/// A lane-wise map of accumulators to results (one requantizer).
pub(crate) trait Map<V: Lanes> {
    /// # Safety
    /// The CPU has `V`'s features.
    unsafe fn apply(&self, x: V) -> V;
}

/// What a [`RequantDriver`] hands to the portable loop for the elements its vectors do not cover.
#[derive(Clone, Copy)]
pub(crate) struct Requant<'a> {
    pub r: &'a Requantizer,
    pub zero_point: i32,
    pub range: CodeRange,
}

impl Requant<'_> {
    /// The portable loop over `acc` (a tail, or everything).
    #[inline(always)]
    pub fn portable<O: generic::CodeOut>(&self, acc: &[i32], out: &mut [O]) {
        generic::requantize(acc, self.r, self.zero_point, self.range, out)
    }
}

/// One ISA's requantization loops, writing `O` (`i32` codes or their bytes).
pub(crate) trait RequantDriver<O> {
    type V: Lanes;

    /// `out[i] = map(acc[i])`; elements past the last full vector may go to `q.portable`.
    ///
    /// # Safety
    /// The CPU has `V`'s features; `out.len() == acc.len()`.
    unsafe fn run<M: Map<Self::V>>(map: &M, q: Requant<'_>, acc: &[i32], out: &mut [O]);

    /// `out[i] = clamp((acc[i] m + 2^(t-1)) >> t, lo, hi) + zero_point` with 64-bit products,
    /// `1 <= t <= 62` (single rounding and rndnu, [`Requantizer::single_rounding_form`]).
    ///
    /// # Safety
    /// As [`RequantDriver::run`].
    unsafe fn shift64(m: i32, t: u32, lo: i32, hi: i32, q: Requant<'_>, acc: &[i32], out: &mut [O]);
}

/// The float multipliers: `round(clamp(x * M, lo, hi)) + z`.
struct FloatMap<V: Lanes> {
    m: V::F,
    out: FloatOut<V>,
}

impl<V: Lanes> Map<V> for FloatMap<V> {
    #[inline(always)]
    unsafe fn apply(&self, x: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.out.finish(V::fmul(x.to_f32(), self.m)) }
    }
}

/// `round(x * m)`, ties to even, unclamped: the float multipliers' product where `|m| < 1`, so
/// that `|x m| < 2^31` for every `i32` `x` and the vector round cannot overflow (the largest
/// product is `2^31 (1 - 2^-24)`, below `2^31`).
struct FloatRaw<V: Lanes> {
    m: V::F,
}

impl<V: Lanes> Map<V> for FloatRaw<V> {
    #[inline(always)]
    unsafe fn apply(&self, x: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { V::round(V::fmul(x.to_f32(), self.m)) }
    }
}

/// One ISA's byte loop for unclamped results: `out[i] = clamp(map(acc[i]) + z, lo, hi)` over
/// whole steps of four vectors, narrowed at once with saturating packs (exact for every `i32`
/// result and `|z| <= 255`; see the AVX-512 `Narrow64`). `SIGNED`: `[lo, hi]` lies inside `i8`,
/// else inside `u8`.
pub(crate) trait NarrowBytes {
    type V: Lanes;

    /// Returns how many elements were written (whole steps from the start).
    ///
    /// # Safety
    /// The CPU has `V`'s features; `out.len() == acc.len()`; `|z| <= 255`.
    unsafe fn narrow_bytes<M: Map<Self::V>, const SIGNED: bool>(
        map: &M,
        z: i32,
        lo: i32,
        hi: i32,
        acc: &[i32],
        out: &mut [u8],
    ) -> usize;
}

/// The leading whole steps of a byte requantization on `D`'s narrowing loop, where the
/// requantizer has an unclamped vector form: the float multipliers with `|M| < 1`
/// ([`FloatRaw`]) and double rounding ([`Lanes::Q31`]). Returns how many elements were written
/// (0 for the other variants, a zero point beyond `+-255`, or a short input); the caller's
/// loops do the rest.
///
/// # Safety
/// The CPU has `D::V`'s features; `out.len() == acc.len()`.
#[inline(always)]
pub(crate) unsafe fn requantize_bytes_wide<D: NarrowBytes>(
    acc: &[i32],
    r: &Requantizer,
    zero_point: i32,
    range: CodeRange,
    out: &mut [u8],
) -> usize {
    if !(-255..=255).contains(&zero_point) {
        return 0;
    }
    let (z, lo, hi) = (zero_point, range.qmin(), range.qmax());
    // SAFETY: this function's contract, and `|z| <= 255` checked above.
    unsafe {
        match *r {
            Requantizer::FloatTorch { multiplier: m } | Requantizer::FloatOnnxRuntime { multiplier: m }
                if m.is_finite() && m.abs() < 1.0 =>
            {
                let map = FloatRaw::<D::V> { m: D::V::splat_f(m) };
                if lo < 0 {
                    D::narrow_bytes::<_, true>(&map, z, lo, hi, acc, out)
                } else {
                    D::narrow_bytes::<_, false>(&map, z, lo, hi, acc, out)
                }
            }
            Requantizer::DoubleRounding(m) => match D::V::q31(m) {
                Some(q) if lo < 0 => D::narrow_bytes::<_, true>(&q, z, lo, hi, acc, out),
                Some(q) => D::narrow_bytes::<_, false>(&q, z, lo, hi, acc, out),
                None => 0,
            },
            _ => 0,
        }
    }
}

/// gemmlowp's double rounding: `clamp(Q31(x), lo, hi) + z`.
struct DoubleMap<V: Lanes> {
    q: V::Q31,
    out: Out<V>,
}

impl<V: Lanes> Map<V> for DoubleMap<V> {
    #[inline(always)]
    unsafe fn apply(&self, x: V) -> V {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.out.finish(x.mul_q31(&self.q)) }
    }
}

/// `out[i] = r.apply(acc[i], zero_point, range)` on `D`'s lanes (see the module docs).
///
/// # Safety
/// The CPU has `D::V`'s features (callers are that ISA's `#[target_feature]` functions, into
/// which this inlines); `out.len() == acc.len()`.
#[inline(always)]
pub(crate) unsafe fn requantize<D: RequantDriver<O>, O: generic::CodeOut>(
    acc: &[i32],
    r: &Requantizer,
    zero_point: i32,
    range: CodeRange,
    out: &mut [O],
) {
    let q = Requant { r, zero_point, range };
    let (lo, hi) = (range.qmin(), range.qmax());
    // SAFETY: register set-ups and the driver, which this function's contract (the CPU has
    // `D::V`'s features; equal lengths) makes sound.
    unsafe {
        if let Some((m, t)) = r.single_rounding_form() {
            return D::shift64(m, t, lo - zero_point, hi - zero_point, q, acc, out);
        }
        match *r {
            Requantizer::FloatTorch { multiplier: m } | Requantizer::FloatOnnxRuntime { multiplier: m }
                if m.is_finite() =>
            {
                let map = FloatMap::<D::V> { m: D::V::splat_f(m), out: FloatOut::new(zero_point, lo, hi) };
                D::run(&map, q, acc, out)
            }
            Requantizer::DoubleRounding(m) => match D::V::q31(m) {
                Some(qm) => D::run(&DoubleMap::<D::V> { q: qm, out: Out::new(zero_point, lo, hi) }, q, acc, out),
                None => q.portable(acc, out),
            },
            _ => q.portable(acc, out),
        }
    }
}

/// Writes [`Lanes`] methods that are one intrinsic each: `fn add(self, o) = _mm256_add_epi32;`
/// for the integer lanes, `fn fadd(a: F, b: F) -> F = _mm256_add_ps;` for the rest.
macro_rules! lane_intrinsics {
    () => {};
    (fn $name:ident(self, o) = $intr:path; $($rest:tt)*) => {
        #[inline(always)]
        unsafe fn $name(self, o: Self) -> Self {
            // SAFETY: one instruction on registers; `Lanes`' contract: the caller has the ISA.
            unsafe { $intr(self, o) }
        }
        lane_intrinsics!($($rest)*);
    };
    (fn $name:ident(self) -> $ret:ty = $intr:path; $($rest:tt)*) => {
        #[inline(always)]
        unsafe fn $name(self) -> $ret {
            // SAFETY: one instruction on registers; `Lanes`' contract: the caller has the ISA.
            unsafe { $intr(self) }
        }
        lane_intrinsics!($($rest)*);
    };
    (fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $intr:path; $($rest:tt)*) => {
        #[inline(always)]
        unsafe fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: one instruction on registers; `Lanes`' contract: the caller has the ISA.
            unsafe { $intr($($arg),*) }
        }
        lane_intrinsics!($($rest)*);
    };
}
pub(crate) use lane_intrinsics;

#[cfg(test)]
mod tests {
    use super::div_markstein;

    /// [`div_markstein`] (the lanes' five multiply-adds, in scalar) equals IEEE division on
    /// drawn quotients over the range [`super::markstein_fits`] admits and beyond: numerators
    /// with exponents -70..80 and either sign, divisors -30..30, significands random, all ones,
    /// all zeros and within 15 ulps of either (where reciprocals and quotients round hardest).
    /// 400 million on x86-64, 20 million elsewhere (NEON runs under qemu in CI).
    #[test]
    fn divide_by_reciprocal_is_division() {
        let n: u64 = if cfg!(target_arch = "x86_64") { 400_000_000 } else { 20_000_000 };
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bad = 0u64;
        for i in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let r = s;
            let sig = |r: u64, k: u64| -> u32 {
                match k % 5 {
                    0 => 0x7F_FFFF,
                    1 => 0,
                    2 => 0x7F_FFFF - (r as u32 & 0xF),
                    3 => r as u32 & 0xF,
                    _ => r as u32 & 0x7F_FFFF,
                }
            };
            let ea = (127 - 70 + (r >> 32) % 151) as u32;
            let eb = (127 - 30 + (r >> 40) % 61) as u32;
            let sign = ((r >> 60) & 1) as u32;
            let x = f32::from_bits((sign << 31) | (ea << 23) | sig(r >> 8, i));
            let b = f32::from_bits((eb << 23) | sig(r >> 20, i / 5));
            if div_markstein(x, b, 1.0 / b).to_bits() != (x / b).to_bits() {
                bad += 1;
                assert!(bad > 5, "{x:e} / {b:e}: {} against {}", div_markstein(x, b, 1.0 / b), x / b);
            }
        }
        assert_eq!(bad, 0, "{bad} of {n} quotients differ");
    }
}
