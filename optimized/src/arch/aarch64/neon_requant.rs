//! NEON requantization: int32 accumulators to codes, four lanes at a time, bit for bit with
//! `quantproof_reference::requantize::Requantizer::apply`.
//!
//! | variant | NEON | why it is exact |
//! |---|---|---|
//! | `FloatTorch`, `FloatOnnxRuntime` | `scvtf`, `fmul`, clamp to `[qmin - z, qmax - z]` in f32, `fcvtns` (ties to even), `+ z` | one rounded product, as the reference; clamping before rounding is the same because the bounds are integers; only for a finite multiplier |
//! | `DoubleRounding` | `sshl` (wrapping left shift, as TFLite), `sqrdmulh` (gemmlowp's `SaturatingRoundingDoublingHighMul` is defined as this instruction), then `RoundingDivideByPOT` from its integer formula | right shifts above 31 go to the portable loop |
//! | `SingleRounding`, `Rndnu` | `smull`/`smull2` to 64 bits, `srshl` (adds `2^(t-1)` and shifts, without overflow), a 64-bit clamp, `xtn` | the reference's 64-bit formula |
//! | `PowerOfTwo` | the portable loop | |
//!
//! Bytes out from the float multipliers with `|M| < 1` and from double rounding: four vectors
//! narrowed at once with saturating narrows ([`Narrow16`]: `sqxtn`, `sqadd` of `z`, `sqxtn` /
//! `sqxtun`), 16 codes per step.

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
    /// The destination as bytes, when it is (then [`requantize`] may narrow four vectors at once).
    fn bytes(out: &mut [Self]) -> Option<&mut [u8]>;
}

impl Store4 for i32 {
    #[inline(always)]
    unsafe fn store(p: *mut i32, v: int32x4_t) {
        // SAFETY: the caller's precondition (four writable i32); NEON is baseline on aarch64.
        unsafe { vst1q_s32(p, v) }
    }
    fn bytes(_: &mut [i32]) -> Option<&mut [u8]> {
        None
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
    fn bytes(out: &mut [u8]) -> Option<&mut [u8]> {
        Some(out)
    }
}

impl Map<int32x4_t> for Q31 {
    #[inline(always)]
    unsafe fn apply(&self, x: int32x4_t) -> int32x4_t {
        // SAFETY: NEON (the caller's precondition).
        unsafe { Q31::apply(self, x) }
    }
}

/// Sixteen unclamped `i32` results `r` (four vectors) to bytes `clamp(r + z, lo, hi)` with
/// saturating narrows instead of a clamp and two `xtn` per vector: `sqxtn` (to `i16`), `sqadd`
/// of `z`, `sqxtn` / `sqxtun` (to the byte type), then `smax`/`smin` (or the unsigned pair)
/// where `[lo, hi]` is narrower than the byte type. Exact for every `r` and `|z| <= 255` (the
/// argument of the AVX-512 `Narrow64`); the narrows keep the lane order.
pub(super) struct Narrow16<const SIGNED: bool> {
    z: int16x8_t,
    lo: uint8x16_t,
    hi: uint8x16_t,
    clamp: bool,
}

impl<const SIGNED: bool> Narrow16<SIGNED> {
    /// # Safety
    /// NEON.
    #[inline(always)]
    pub(super) unsafe fn new(z: i32, lo: i32, hi: i32) -> Narrow16<SIGNED> {
        let full = if SIGNED { (-128, 127) } else { (0, 255) };
        // SAFETY: broadcasts only (NEON, the caller's precondition).
        unsafe {
            Narrow16 {
                z: vdupq_n_s16(z as i16),
                lo: vdupq_n_u8(lo as u8),
                hi: vdupq_n_u8(hi as u8),
                clamp: (lo, hi) != full,
            }
        }
    }

    /// # Safety
    /// NEON.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, v: [int32x4_t; 4]) -> uint8x16_t {
        // SAFETY: register operations only (NEON, the caller's precondition).
        unsafe {
            let w01 = vqaddq_s16(vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1])), self.z);
            let w23 = vqaddq_s16(vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3])), self.z);
            if SIGNED {
                let b = vcombine_s8(vqmovn_s16(w01), vqmovn_s16(w23));
                let b = if self.clamp {
                    let (lo, hi) = (vreinterpretq_s8_u8(self.lo), vreinterpretq_s8_u8(self.hi));
                    vminq_s8(vmaxq_s8(b, lo), hi)
                } else {
                    b
                };
                vreinterpretq_u8_s8(b)
            } else {
                let b = vcombine_u8(vqmovun_s16(w01), vqmovun_s16(w23));
                if self.clamp {
                    vminq_u8(vmaxq_u8(b, self.lo), self.hi)
                } else {
                    b
                }
            }
        }
    }
}

impl lanes::NarrowBytes for Neon {
    type V = int32x4_t;

    /// 16 codes per step.
    #[inline(always)]
    unsafe fn narrow_bytes<M: Map<int32x4_t>, const SIGNED: bool>(
        map: &M,
        z: i32,
        lo: i32,
        hi: i32,
        acc: &[i32],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (NEON).
        let narrow = unsafe { Narrow16::<SIGNED>::new(z, lo, hi) };
        let (blocks, _) = acc.as_chunks::<16>();
        let (oblocks, _) = out.as_chunks_mut::<16>();
        for (a, o) in blocks.iter().zip(oblocks) {
            let p = a.as_ptr();
            // SAFETY: `a` is 16 readable i32 (four 4-lane loads inside it) and `o` 16 writable
            // bytes; NEON is the caller's contract.
            unsafe {
                let v = [
                    map.apply(vld1q_s32(p)),
                    map.apply(vld1q_s32(p.add(4))),
                    map.apply(vld1q_s32(p.add(8))),
                    map.apply(vld1q_s32(p.add(12))),
                ];
                vst1q_u8(o.as_mut_ptr(), narrow.apply(v));
            }
        }
        blocks.len() * 16
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
    // Bytes from the float and double-rounding multipliers: four vectors narrowed at once
    // ([`lanes::requantize_bytes_wide`]), the rest by the loops below.
    let mut done = 0;
    if acc.len() >= 16 {
        if let Some(bytes) = O::bytes(out) {
            // SAFETY: the CPU features are this function's contract; equal lengths.
            done = unsafe { lanes::requantize_bytes_wide::<Neon>(acc, r, zero_point, range, bytes) };
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::requantize::<Neon, O>(&acc[done..], r, zero_point, range, &mut out[done..]) }
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
