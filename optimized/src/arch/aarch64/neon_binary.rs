//! NEON QAdd / QSub / QMul on 8-bit codes: the kernels of [`crate::arch::lanes`] on four i32
//! lanes (`int32x4_t`), eight pairs a step, bit for bit with
//! `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Codes are widened with `sxtl` / `uxtl` and narrowed with `xtn` (exact: every result lies in
//! the code range); rounding to nearest even is `fcvtns`; the double-rounding multiply is
//! [`Q31`] (`sshl`, `sqrdmulh`, RoundingDivideByPOT), shared with requantization. Tails of fewer
//! than eight pairs run on the portable loop.

use super::neon_requant::{Narrow16, Q31};
use crate::arch::generic;
use crate::arch::lanes::{self, lane_intrinsics, Driver, Lanes, Pair};
use core::arch::aarch64::*;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::requantize::QuantizedMultiplier;
use quantproof_reference::scheme::Signedness;

impl Lanes for int32x4_t {
    type F = float32x4_t;
    const DIVIDE_BY_FMA: bool = false;
    type Q31 = Q31;
    type Count = int32x4_t;

    lane_intrinsics! {
        fn splat(x: i32) -> Self = vdupq_n_s32;
        fn splat_f(x: f32) -> float32x4_t = vdupq_n_f32;
        fn count(n: i32) -> int32x4_t = vdupq_n_s32;
        fn add(self, o) = vaddq_s32;
        fn sub(self, o) = vsubq_s32;
        fn mul(self, o) = vmulq_s32;
        fn min(self, o) = vminq_s32;
        fn max(self, o) = vmaxq_s32;
        fn and(self, o) = vandq_s32;
        fn shl(self, o) = vshlq_s32;
        fn to_f32(self) -> float32x4_t = vcvtq_f32_s32;
        fn fadd(a: float32x4_t, b: float32x4_t) -> float32x4_t = vaddq_f32;
        fn fsub(a: float32x4_t, b: float32x4_t) -> float32x4_t = vsubq_f32;
        fn fmul(a: float32x4_t, b: float32x4_t) -> float32x4_t = vmulq_f32;
        fn fdiv(a: float32x4_t, b: float32x4_t) -> float32x4_t = vdivq_f32;
        fn fmin(a: float32x4_t, b: float32x4_t) -> float32x4_t = vminq_f32;
        fn fmax(a: float32x4_t, b: float32x4_t) -> float32x4_t = vmaxq_f32;
        // `fcvtns`: to nearest, ties to even.
        fn round(a: float32x4_t) -> Self = vcvtnq_s32_f32;
    }

    #[inline(always)]
    unsafe fn q31(q: QuantizedMultiplier) -> Option<Q31> {
        Q31::new(q)
    }

    /// NEON has no gather: four lane reads.
    #[inline(always)]
    unsafe fn gather(t: &[i32; 256], idx: Self) -> Self {
        // SAFETY: NEON (`Lanes`' contract); every lane of `idx` is in `0..=255` (this method's
        // contract), so every index is inside `t`.
        unsafe {
            let at = |i: i32| t[(i & 255) as usize];
            let v = vdupq_n_s32(at(vgetq_lane_s32::<0>(idx)));
            let v = vsetq_lane_s32::<1>(at(vgetq_lane_s32::<1>(idx)), v);
            let v = vsetq_lane_s32::<2>(at(vgetq_lane_s32::<2>(idx)), v);
            vsetq_lane_s32::<3>(at(vgetq_lane_s32::<3>(idx)), v)
        }
    }

    #[inline(always)]
    unsafe fn fmadd(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: one instruction on registers; `Lanes`' contract: the caller has NEON.
        unsafe { vfmaq_f32(c, a, b) }
    }

    #[inline(always)]
    unsafe fn fnmadd(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: one instruction on registers; `Lanes`' contract: the caller has NEON.
        unsafe { vfmsq_f32(c, a, b) }
    }

    #[inline(always)]
    unsafe fn mul_q31(self, q: &Q31) -> Self {
        // SAFETY: `Lanes`' contract: the caller has NEON.
        unsafe { q.apply(self) }
    }
}

/// Eight codes at `p` widened to two vectors of four i32 lanes.
///
/// # Safety
/// NEON; `p` points to 8 readable bytes.
#[inline(always)]
unsafe fn load<const SIGNED: bool>(p: *const u8) -> (int32x4_t, int32x4_t) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let v = vld1_u8(p);
        let w = if SIGNED { vmovl_s8(vreinterpret_s8_u8(v)) } else { vreinterpretq_s16_u16(vmovl_u8(v)) };
        (vmovl_s16(vget_low_s16(w)), vmovl_high_s16(w))
    }
}

/// Runs `pair` over the codes, sixteen per step where the pair is [`Pair::narrowable`] (four
/// vectors narrowed at once with saturating narrows, [`Narrow16`]), then eight per step; the
/// tail on the portable loop.
///
/// # Safety
/// The CPU must have NEON; the three slices have one length.
#[target_feature(enable = "neon")]
unsafe fn run<P: Pair<int32x4_t>, const SIGNED: bool>(pair: &P, k: &BinaryKernel, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: this function's contract.
    let wide_done = unsafe { lanes::binary_wide::<Neon, P, SIGNED>(pair, a, b, out) };
    let (a, b, out) = (&a[wide_done..], &b[wide_done..], &mut out[wide_done..]);
    let (ablocks, _) = a.as_chunks::<8>();
    let (bblocks, _) = b.as_chunks::<8>();
    let (oblocks, _) = out.as_chunks_mut::<8>();
    for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
        // SAFETY: `x`, `y` are 8 readable bytes and `o` 8 writable ones; NEON is present.
        unsafe {
            let ((x0, x1), (y0, y1)) = (load::<SIGNED>(x.as_ptr()), load::<SIGNED>(y.as_ptr()));
            let (r0, r1) = (pair.apply(x0, y0), pair.apply(x1, y1));
            let r = vmovn_s16(vcombine_s16(vmovn_s32(r0), vmovn_s32(r1)));
            vst1_u8(o.as_mut_ptr(), vreinterpret_u8_s8(r));
        }
    }
    let done = ablocks.len() * 8;
    let signedness = if SIGNED { Signedness::Signed } else { Signedness::Unsigned };
    generic::binary_bytes(k, signedness, &a[done..], &b[done..], &mut out[done..]);
}


struct Neon;

impl lanes::WideBinary for Neon {
    type V = int32x4_t;

    #[inline(always)]
    unsafe fn wide<P: Pair<int32x4_t>, const SIGNED: bool, const OUT_SIGNED: bool>(
        pair: &P,
        zy: i32,
        lo: i32,
        hi: i32,
        a: &[u8],
        b: &[u8],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (this function's contract).
        let narrow = unsafe { Narrow16::<OUT_SIGNED>::new(zy, lo, hi) };
        let (ablocks, _) = a.as_chunks::<16>();
        let (bblocks, _) = b.as_chunks::<16>();
        let (oblocks, _) = out.as_chunks_mut::<16>();
        for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
            let (x, y) = (x.as_ptr(), y.as_ptr());
            // SAFETY: `x`, `y` are 16 readable bytes (two 8-byte loads inside each) and `o` 16
            // writable ones; NEON is this function's contract.
            unsafe {
                let ((x0, x1), (y0, y1)) = (load::<SIGNED>(x), load::<SIGNED>(y));
                let ((x2, x3), (y2, y3)) = (load::<SIGNED>(x.add(8)), load::<SIGNED>(y.add(8)));
                let v = [pair.raw(x0, y0), pair.raw(x1, y1), pair.raw(x2, y2), pair.raw(x3, y3)];
                vst1q_u8(o.as_mut_ptr(), narrow.apply(v));
            }
        }
        ablocks.len() * 16
    }
}

impl Driver for Neon {
    type V = int32x4_t;

    #[inline(always)]
    unsafe fn run<P: Pair<int32x4_t>>(pair: &P, k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            match s {
                Signedness::Signed => run::<P, true>(pair, k, a, b, out),
                Signedness::Unsigned => run::<P, false>(pair, k, a, b, out),
            }
        }
    }
}

/// `out[i] = k.apply(a[i], b[i])` (see [`crate::arch::lanes`]).
///
/// # Safety
/// The CPU must have NEON; the three slices have one length.
#[target_feature(enable = "neon")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::binary_bytes::<Neon>(k, signedness, a, b, out) }
}
