//! NEON QAdd / QSub / QMul on 8-bit codes, eight pairs at a time (two vectors of four i32
//! lanes), bit for bit with `quantproof_reference::elementwise::BinaryKernel::apply`: the
//! arithmetic of the x86 kernels (`arch/x86_64/avx512_binary.rs`, whose table says why each
//! step is exact) in NEON instructions.
//!
//! | kernel | NEON |
//! |---|---|
//! | `TfliteAdd`, `TfliteMul`, `EqualScale` | centred codes (`sub`), `shl` / `mul`, [`Q31`] (`sshl`, `sqrdmulh`, RoundingDivideByPOT; shared with requantization), clamp to `[lo - zy, hi - zy]`, `+ zy` |
//! | `TorchAddSub`, `TorchMul` | `scvtf`, `fmul`, `fadd` / `fsub`, `fmax` with 0 for ReLU, `fmul` by `RN(1/sy)` or `M`, clamp, `fcvtns` (ties to even), `+ zy` |
//! | `OnnxRuntime` | dequantize, `fadd` / `fmul`, `fdiv` by `sy`, clamp, `fadd zy`, `fcvtns` |
//!
//! Codes are widened with `sxtl` / `uxtl` and narrowed with `xtn` (exact: every result lies in
//! the code range). The float kernels run only where `generic::binary_floats_stay_finite`
//! proves no NaN can arise; anything else, and tails of fewer than eight pairs, run on the
//! portable loop.

use super::neon_requant::Q31;
use crate::arch::generic;
use core::arch::aarch64::*;
use quantproof_reference::affine::Affine;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::scheme::Signedness;

/// Four pairs of codes (as i32 lanes) in, four clamped output codes out.
trait Pair {
    /// # Safety
    /// The CPU must have NEON.
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t;
}

/// `clamp(v, lo - zy, hi - zy) + zy`: the exact `clamp(v + zy, lo, hi)` without 32-bit overflow.
struct Out {
    zy: int32x4_t,
    lo: int32x4_t,
    hi: int32x4_t,
}

impl Out {
    #[inline(always)]
    fn new(zy: i32, lo: i32, hi: i32) -> Out {
        // SAFETY: register broadcasts only; callers are NEON target-feature functions.
        unsafe { Out { zy: vdupq_n_s32(zy), lo: vdupq_n_s32(lo - zy), hi: vdupq_n_s32(hi - zy) } }
    }

    #[inline(always)]
    unsafe fn finish(&self, v: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe { vaddq_s32(vminq_s32(vmaxq_s32(v, self.lo), self.hi), self.zy) }
    }
}

struct TfliteAdd {
    za: int32x4_t,
    zb: int32x4_t,
    shift: int32x4_t,
    ma: Q31,
    mb: Q31,
    my: Q31,
    out: Out,
}

impl Pair for TfliteAdd {
    #[inline(always)]
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe {
            let xa = self.ma.apply(vshlq_s32(vsubq_s32(a, self.za), self.shift));
            let xb = self.mb.apply(vshlq_s32(vsubq_s32(b, self.zb), self.shift));
            self.out.finish(self.my.apply(vaddq_s32(xa, xb)))
        }
    }
}

/// `TfliteMul` (`MUL = true`: the product) and `EqualScale` (`MUL = false`: the sum or
/// difference) of the centred codes, then one multiplier.
struct OneMultiplier<const MUL: bool> {
    za: int32x4_t,
    zb: int32x4_t,
    negate_b: bool,
    m: Q31,
    out: Out,
}

impl<const MUL: bool> Pair for OneMultiplier<MUL> {
    #[inline(always)]
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe {
            let (ca, cb) = (vsubq_s32(a, self.za), vsubq_s32(b, self.zb));
            let v = if MUL {
                vmulq_s32(ca, cb)
            } else if self.negate_b {
                vsubq_s32(ca, cb)
            } else {
                vaddq_s32(ca, cb)
            };
            self.out.finish(self.m.apply(v))
        }
    }
}

/// `(q - z) as f32 * s`, the reference's `Affine::dequantize`.
struct Deq {
    z: int32x4_t,
    s: float32x4_t,
}

impl Deq {
    #[inline(always)]
    fn new(p: Affine) -> Deq {
        // SAFETY: register broadcasts only; callers are NEON target-feature functions.
        unsafe { Deq { z: vdupq_n_s32(p.zero_point), s: vdupq_n_f32(p.scale) } }
    }

    #[inline(always)]
    unsafe fn apply(&self, q: int32x4_t) -> float32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe { vmulq_f32(vcvtq_f32_s32(vsubq_s32(q, self.z)), self.s) }
    }
}

/// `v` clamped to the integral `[flo, fhi]`, rounded to nearest even.
#[inline(always)]
unsafe fn round_clamped(v: float32x4_t, flo: float32x4_t, fhi: float32x4_t) -> int32x4_t {
    // SAFETY: NEON is present (the caller's precondition).
    unsafe { vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, flo), fhi)) }
}

struct TorchAddSub {
    a: Deq,
    b: Deq,
    inv_sy: float32x4_t,
    negate_b: bool,
    relu: bool,
    flo: float32x4_t,
    fhi: float32x4_t,
    zy: int32x4_t,
}

impl Pair for TorchAddSub {
    #[inline(always)]
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe {
            let (da, db) = (self.a.apply(a), self.b.apply(b));
            let mut c = if self.negate_b { vsubq_f32(da, db) } else { vaddq_f32(da, db) };
            if self.relu {
                c = vmaxq_f32(c, vdupq_n_f32(0.0));
            }
            vaddq_s32(round_clamped(vmulq_f32(c, self.inv_sy), self.flo, self.fhi), self.zy)
        }
    }
}

struct TorchMul {
    za: int32x4_t,
    zb: int32x4_t,
    m: float32x4_t,
    flo: float32x4_t,
    fhi: float32x4_t,
    zy: int32x4_t,
}

impl Pair for TorchMul {
    #[inline(always)]
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe {
            let p = vmulq_s32(vsubq_s32(a, self.za), vsubq_s32(b, self.zb));
            let v = vmulq_f32(vcvtq_f32_s32(p), self.m);
            vaddq_s32(round_clamped(v, self.flo, self.fhi), self.zy)
        }
    }
}

struct OnnxRuntime {
    a: Deq,
    b: Deq,
    sy: float32x4_t,
    mul: bool,
    flo: float32x4_t,
    fhi: float32x4_t,
    fzy: float32x4_t,
}

impl Pair for OnnxRuntime {
    #[inline(always)]
    unsafe fn apply(&self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is present (the caller's precondition).
        unsafe {
            let (va, vb) = (self.a.apply(a), self.b.apply(b));
            let c = vdivq_f32(if self.mul { vmulq_f32(va, vb) } else { vaddq_f32(va, vb) }, self.sy);
            // c + zy lies in [lo, hi] already (monotone rounding, integral bounds).
            vcvtnq_s32_f32(vaddq_f32(vminq_f32(vmaxq_f32(c, self.flo), self.fhi), self.fzy))
        }
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

/// Runs `pair` over the codes, eight per step; the tail on the portable loop.
///
/// # Safety
/// The CPU must have NEON; the three slices have one length.
#[target_feature(enable = "neon")]
unsafe fn run<P: Pair, const SIGNED: bool>(pair: &P, k: &BinaryKernel, a: &[u8], b: &[u8], out: &mut [u8]) {
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

/// Runs `pair` with the signedness fixed at compile time.
///
/// # Safety
/// As [`run`].
#[target_feature(enable = "neon")]
unsafe fn run_signed<P: Pair>(pair: &P, k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match signedness {
            Signedness::Signed => run::<P, true>(pair, k, a, b, out),
            Signedness::Unsigned => run::<P, false>(pair, k, a, b, out),
        }
    }
}

/// `out[i] = k.apply(a[i], b[i])` (see the module docs).
///
/// # Safety
/// The CPU must have NEON; the three slices have one length.
#[target_feature(enable = "neon")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    let float_bounds = |zy: i32, lo: i32, hi: i32| (vdupq_n_f32((lo - zy) as f32), vdupq_n_f32((hi - zy) as f32));
    let ok = generic::binary_floats_stay_finite(k);
    match *k {
        BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } => {
            if let (Some(ma), Some(mb), Some(my)) = (Q31::new(ma), Q31::new(mb), Q31::new(my)) {
                let p = TfliteAdd {
                    za: vdupq_n_s32(za),
                    zb: vdupq_n_s32(zb),
                    shift: vdupq_n_s32(left_shift as i32),
                    ma,
                    mb,
                    my,
                    out: Out::new(zy, lo, hi),
                };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, k, signedness, a, b, out) };
            }
        }
        BinaryKernel::TfliteMul { za, zb, zy, m, lo, hi } => {
            if let Some(m) = Q31::new(m) {
                let (za, zb) = (vdupq_n_s32(za), vdupq_n_s32(zb));
                let p = OneMultiplier::<true> { za, zb, negate_b: false, m, out: Out::new(zy, lo, hi) };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, k, signedness, a, b, out) };
            }
        }
        BinaryKernel::EqualScale { za, zb, zy, negate_b, m, lo, hi } => {
            if let Some(m) = Q31::new(m) {
                let (za, zb) = (vdupq_n_s32(za), vdupq_n_s32(zb));
                let p = OneMultiplier::<false> { za, zb, negate_b, m, out: Out::new(zy, lo, hi) };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, k, signedness, a, b, out) };
            }
        }
        BinaryKernel::TorchAddSub { a: pa, b: pb, zy, inv_sy, negate_b, relu, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(zy, lo, hi);
            let p = TorchAddSub {
                a: Deq::new(pa),
                b: Deq::new(pb),
                inv_sy: vdupq_n_f32(inv_sy),
                negate_b,
                relu,
                flo,
                fhi,
                zy: vdupq_n_s32(zy),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        BinaryKernel::TorchMul { za, zb, zy, m, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(zy, lo, hi);
            let p =
                TorchMul { za: vdupq_n_s32(za), zb: vdupq_n_s32(zb), m: vdupq_n_f32(m), flo, fhi, zy: vdupq_n_s32(zy) };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        BinaryKernel::OnnxRuntime { a: pa, b: pb, y, mul, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(y.zero_point, lo, hi);
            let p = OnnxRuntime {
                a: Deq::new(pa),
                b: Deq::new(pb),
                sy: vdupq_n_f32(y.scale),
                mul,
                flo,
                fhi,
                fzy: vdupq_n_f32(y.zero_point as f32),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        _ => {}
    }
    generic::binary_bytes(k, signedness, a, b, out)
}
