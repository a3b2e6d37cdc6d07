//! NEON requantization: int32 accumulators to codes, four lanes at a time, bit for bit with
//! `quantproof_reference::requantize::Requantizer::apply`.
//!
//! | variant | NEON | why it is exact |
//! |---|---|---|
//! | `FloatTorch`, `FloatOnnxRuntime` | `scvtf`, `fmul`, clamp to `[qmin - z, qmax - z]` in f32, `fcvtns` (ties to even), `+ z` | one rounded product, as the reference; clamping before rounding is the same because the bounds are integers; only for a finite multiplier |
//! | `DoubleRounding` | `sshl` (wrapping left shift, as TFLite), `sqrdmulh` (gemmlowp's `SaturatingRoundingDoublingHighMul` is defined as this instruction), then `RoundingDivideByPOT` from its integer formula | right shifts above 31 go to the portable loop |
//! | `SingleRounding`, `Rndnu` | `smull`/`smull2` to 64 bits, `srshl` (adds `2^(t-1)` and shifts, without overflow), a 64-bit clamp, `xtn` | the reference's 64-bit formula |
//! | `PowerOfTwo` | the portable loop | |

use crate::arch::generic;
use crate::arch::lanes::{self, Map, Requant, RequantDriver};
use core::arch::aarch64::*;
use quantproof_reference::requantize::{QuantizedMultiplier, Requantizer};
use quantproof_reference::scheme::CodeRange;

/// A destination of four results: `i32` codes, or their low bytes (exact because every result
/// already lies in a range of one byte type).
pub(super) trait Store4: generic::CodeOut {
    /// # Safety
    /// `p` points to four writable elements.
    unsafe fn store(p: *mut Self, v: int32x4_t);
}

impl Store4 for i32 {
    #[inline(always)]
    unsafe fn store(p: *mut i32, v: int32x4_t) {
        // SAFETY: the caller's precondition (four writable i32); NEON is baseline on aarch64.
        unsafe { vst1q_s32(p, v) }
    }
}

impl Store4 for u8 {
    /// The low byte of each lane (`xtn` twice), stored as four bytes.
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: int32x4_t) {
        // SAFETY: the caller's precondition (four writable bytes); NEON is baseline on aarch64.
        unsafe {
            let b = vmovn_u16(vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(v)), vdup_n_u16(0)));
            vst1_lane_u32::<0>(p.cast(), vreinterpret_u32_u8(b))
        }
    }
}

pub(super) struct Neon;

impl<O: Store4> RequantDriver<O> for Neon {
    type V = int32x4_t;

    #[inline(always)]
    unsafe fn run<M: Map<int32x4_t>>(map: &M, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
        let (blocks, _) = acc.as_chunks::<4>();
        let (oblocks, _) = out.as_chunks_mut::<4>();
        for (a, o) in blocks.iter().zip(oblocks.iter_mut()) {
            // SAFETY: `a` is four readable i32, `o` four writable outputs; NEON is present.
            unsafe { O::store(o.as_mut_ptr(), map.apply(vld1q_s32(a.as_ptr()))) };
        }
        let done = blocks.len() * 4;
        q.portable(&acc[done..], &mut out[done..]);
    }

    #[inline(always)]
    unsafe fn shift64(m: i32, t: u32, lo: i32, hi: i32, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
        // SAFETY: forwarded from this function's contract.
        unsafe { shift64(m, t as i64, lo, hi, q, acc, out) }
    }
}

/// `out[i] = r.apply(acc[i], zero_point, range)`, as `i32` or as the code's byte (then
/// `range` lies inside one byte type's); see [`crate::arch::lanes`].
///
/// # Safety
/// The CPU must have NEON; `out.len() == acc.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn requantize<O: Store4>(acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [O]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::requantize::<Neon, O>(acc, r, zero_point, range, out) }
}

/// `clamp((x * m + 2^(t-1)) >> t, lo, hi) + z` in 64-bit lanes, the tail on the portable loop.
#[target_feature(enable = "neon")]
fn shift64<O: Store4>(m: i32, t: i64, lo: i32, hi: i32, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
    let vm = vdup_n_s32(m);
    let vt = vdupq_n_s64(-t);
    let (vlo, vhi) = (vdupq_n_s64(lo as i64), vdupq_n_s64(hi as i64));
    let z = vdupq_n_s32(q.zero_point);
    let clamp = |p: int64x2_t| {
        let v = vrshlq_s64(p, vt);
        let v = vbslq_s64(vcltq_s64(v, vlo), vlo, v);
        vbslq_s64(vcgtq_s64(v, vhi), vhi, v)
    };
    let (blocks, _) = acc.as_chunks::<4>();
    let (oblocks, _) = out.as_chunks_mut::<4>();
    for (a, o) in blocks.iter().zip(oblocks.iter_mut()) {
        // SAFETY: `a` is four readable i32.
        let x = unsafe { vld1q_s32(a.as_ptr()) };
        let l = clamp(vmull_s32(vget_low_s32(x), vm));
        let h = clamp(vmull_high_s32(x, vdupq_n_s32(m)));
        let v = vaddq_s32(vcombine_s32(vmovn_s64(l), vmovn_s64(h)), z);
        // SAFETY: `o` is four writable outputs.
        unsafe { O::store(o.as_mut_ptr(), v) };
    }
    let done = blocks.len() * 4;
    q.portable(&acc[done..], &mut out[done..]);
}

/// gemmlowp's `MultiplyByQuantizedMultiplier` (double rounding) on four lanes, unclamped: the
/// reference's `multiply_by_quantized_multiplier_double_rounding`, shared by requantization and
/// the element-wise kernels (`neon_binary.rs`).
pub(crate) struct Q31 {
    left: int32x4_t,
    m: int32x4_t,
    mask: int32x4_t,
    half: int32x4_t,
    right: int32x4_t,
}

impl Q31 {
    /// `None` for a right shift above 31 (the portable loop takes those).
    #[inline(always)]
    pub(super) fn new(q: QuantizedMultiplier) -> Option<Q31> {
        let right = (-q.shift).max(0);
        if right > 31 {
            return None;
        }
        let mask = ((1u64 << right) - 1) as i32;
        // SAFETY: register broadcasts only; NEON is part of every aarch64 target this crate
        // builds for, and callers are NEON target-feature functions.
        unsafe {
            Some(Q31 {
                left: vdupq_n_s32(q.shift.clamp(0, 31)),
                m: vdupq_n_s32(q.multiplier),
                mask: vdupq_n_s32(mask),
                half: vdupq_n_s32(mask >> 1),
                right: vdupq_n_s32(-right),
            })
        }
    }

    /// `sshl` (wrapping left shift), `sqrdmulh` (gemmlowp's SRDHM is defined as this
    /// instruction), then `RoundingDivideByPOT`: `(v >> e) + (remainder > (mask >> 1) + (v < 0))`.
    #[target_feature(enable = "neon")]
    #[inline]
    pub(super) fn apply(&self, x: int32x4_t) -> int32x4_t {
        let v = vqrdmulhq_s32(vshlq_s32(x, self.left), self.m);
        let rem = vandq_s32(v, self.mask);
        let thr = vsubq_s32(self.half, vshrq_n_s32::<31>(v));
        let q = vshlq_s32(v, self.right);
        vsubq_s32(q, vreinterpretq_s32_u32(vcgtq_s32(rem, thr)))
    }
}
