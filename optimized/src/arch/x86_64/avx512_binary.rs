//! AVX-512 QAdd / QSub / QMul on 8-bit codes, sixteen pairs at a time, bit for bit with
//! `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Codes are widened to 32-bit lanes (`vpmovsxbd` / `vpmovzxbd`), each framework's arithmetic
//! runs on them, and the clamped codes are narrowed back by truncation (`vpmovdb`), which is
//! exact because every result already lies in the code range.
//!
//! | kernel | vector arithmetic | why it is exact |
//! |---|---|---|
//! | `TfliteAdd` | `(q - z) << 20`, three gemmlowp double-rounding multiplies ([`Q31`], shared with requantization), `+ zy`, clamp | the reference's integer formulas; the centred codes are at most 255 in magnitude, so no 32-bit step overflows |
//! | `TfliteMul`, `EqualScale` | `vpmulld` / `vpaddd` of the centred codes, one [`Q31`] multiply, `+ zy`, clamp | the same integers |
//! | `TorchAddSub` | `vcvtdq2ps` of the centred codes (exact), `vmulps` by each scale, `vaddps` / `vsubps`, `vmaxps` with 0 for ReLU, `vmulps` by `RN(1/sy)`, clamp to `[lo - zy, hi - zy]` in f32, `vcvtps2dq` ties to even, `+ zy` | one IEEE operation per reference operation, in its order; clamping to integral bounds before rounding equals rounding before clamping |
//! | `TorchMul` | `vpmulld` of the centred codes (exact, at most 65025), `vcvtdq2ps`, `vmulps` by `M`, clamp, round, `+ zy` | as above |
//! | `OnnxRuntime` | dequantize both in f32, `vaddps` / `vmulps`, `vdivps` by `sy`, clamp to `[lo - zy, hi - zy]`, `vaddps zy`, `vcvtps2dq` ties to even, clamp | the reference's order of operations exactly |
//!
//! The float kernels run only where [`generic::binary_floats_stay_finite`] proves that no NaN
//! can arise (no `inf - inf`, no `0 * inf`); anything else, and a right shift above 31, runs on
//! the portable loop.

use super::avx512_requant::Q31;
use crate::arch::generic;
use core::arch::x86_64::*;
use quantproof_reference::affine::Affine;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::scheme::Signedness;

/// Sixteen pairs of codes (as i32 lanes) in, sixteen clamped output codes out.
trait Pair {
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ.
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i;
}

/// Integer bounds and zero point shared by every kernel.
struct Out {
    zy: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Out {
    /// Bounds `lo - zy` and `hi - zy` (exact: all three are codes).
    #[inline(always)]
    fn new(zy: i32, lo: i32, hi: i32) -> Out {
        // SAFETY: register broadcasts only; callers are AVX-512 F target-feature functions.
        unsafe { Out { zy: _mm512_set1_epi32(zy), lo: _mm512_set1_epi32(lo - zy), hi: _mm512_set1_epi32(hi - zy) } }
    }

    /// `clamp(v + zy, lo, hi)` with the exact sum, as `clamp(v, lo - zy, hi - zy) + zy` (the
    /// same integer, and no 32-bit overflow when `v` is near `i32::MAX`).
    #[inline(always)]
    unsafe fn finish(&self, v: __m512i) -> __m512i {
        // SAFETY: AVX-512 F is present (the caller's precondition).
        unsafe { _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, self.lo), self.hi), self.zy) }
    }
}

struct TfliteAdd {
    za: __m512i,
    zb: __m512i,
    shift: __m128i,
    ma: Q31,
    mb: Q31,
    my: Q31,
    out: Out,
}

impl Pair for TfliteAdd {
    #[inline(always)]
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/BW/VL/DQ are present (the caller's precondition).
        unsafe {
            let xa = self.ma.apply(_mm512_sll_epi32(_mm512_sub_epi32(a, self.za), self.shift));
            let xb = self.mb.apply(_mm512_sll_epi32(_mm512_sub_epi32(b, self.zb), self.shift));
            self.out.finish(self.my.apply(_mm512_add_epi32(xa, xb)))
        }
    }
}

/// `TfliteMul` (`MUL = true`: the product) and `EqualScale` (`MUL = false`: the sum or
/// difference) of the centred codes, then one multiplier.
struct OneMultiplier<const MUL: bool> {
    za: __m512i,
    zb: __m512i,
    negate_b: bool,
    m: Q31,
    out: Out,
}

impl<const MUL: bool> Pair for OneMultiplier<MUL> {
    #[inline(always)]
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/BW/VL/DQ are present (the caller's precondition).
        unsafe {
            let (ca, cb) = (_mm512_sub_epi32(a, self.za), _mm512_sub_epi32(b, self.zb));
            let v = if MUL {
                _mm512_mullo_epi32(ca, cb)
            } else if self.negate_b {
                _mm512_sub_epi32(ca, cb)
            } else {
                _mm512_add_epi32(ca, cb)
            };
            self.out.finish(self.m.apply(v))
        }
    }
}

/// `(q - z) as f32 * s`, the reference's `Affine::dequantize`.
#[derive(Clone, Copy)]
struct Deq {
    z: __m512i,
    s: __m512,
}

impl Deq {
    #[inline(always)]
    fn new(p: Affine) -> Deq {
        // SAFETY: register broadcasts only; callers are AVX-512 F target-feature functions.
        unsafe { Deq { z: _mm512_set1_epi32(p.zero_point), s: _mm512_set1_ps(p.scale) } }
    }

    #[inline(always)]
    unsafe fn apply(&self, q: __m512i) -> __m512 {
        // SAFETY: AVX-512 F is present (the caller's precondition).
        unsafe { _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, self.z)), self.s) }
    }
}

/// Rounds `v` clamped to `[flo, fhi]` (the integral `[lo - zy, hi - zy]`) ties to even.
#[inline(always)]
unsafe fn round_clamped(v: __m512, flo: __m512, fhi: __m512) -> __m512i {
    // SAFETY: AVX-512 F is present (the caller's precondition).
    unsafe {
        _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_min_ps(
            _mm512_max_ps(v, flo),
            fhi,
        ))
    }
}

struct TorchAddSub {
    a: Deq,
    b: Deq,
    inv_sy: __m512,
    negate_b: bool,
    relu: bool,
    flo: __m512,
    fhi: __m512,
    zy: __m512i,
}

impl Pair for TorchAddSub {
    #[inline(always)]
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 F is present (the caller's precondition).
        unsafe {
            let (da, db) = (self.a.apply(a), self.b.apply(b));
            let mut c = if self.negate_b { _mm512_sub_ps(da, db) } else { _mm512_add_ps(da, db) };
            if self.relu {
                c = _mm512_max_ps(c, _mm512_setzero_ps());
            }
            _mm512_add_epi32(round_clamped(_mm512_mul_ps(c, self.inv_sy), self.flo, self.fhi), self.zy)
        }
    }
}

struct TorchMul {
    za: __m512i,
    zb: __m512i,
    m: __m512,
    flo: __m512,
    fhi: __m512,
    zy: __m512i,
}

impl Pair for TorchMul {
    #[inline(always)]
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/DQ are present (the caller's precondition).
        unsafe {
            let p = _mm512_mullo_epi32(_mm512_sub_epi32(a, self.za), _mm512_sub_epi32(b, self.zb));
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(p), self.m);
            _mm512_add_epi32(round_clamped(v, self.flo, self.fhi), self.zy)
        }
    }
}

struct OnnxRuntime {
    a: Deq,
    b: Deq,
    sy: __m512,
    mul: bool,
    flo: __m512,
    fhi: __m512,
    fzy: __m512,
}

impl Pair for OnnxRuntime {
    #[inline(always)]
    unsafe fn apply(&self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 F is present (the caller's precondition).
        unsafe {
            let (va, vb) = (self.a.apply(a), self.b.apply(b));
            let c = _mm512_div_ps(if self.mul { _mm512_mul_ps(va, vb) } else { _mm512_add_ps(va, vb) }, self.sy);
            let c = _mm512_add_ps(_mm512_min_ps(_mm512_max_ps(c, self.flo), self.fhi), self.fzy);
            // c + zy lies in [lo, hi] already (monotone rounding, integral bounds).
            _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(c)
        }
    }
}

/// Sixteen codes at `p` widened to i32 lanes.
///
/// # Safety
/// AVX-512 F/BW/VL; `p` points to 16 readable bytes.
#[inline(always)]
unsafe fn load<const SIGNED: bool>(p: *const u8) -> __m512i {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let v = _mm_loadu_si128(p.cast());
        if SIGNED {
            _mm512_cvtepi8_epi32(v)
        } else {
            _mm512_cvtepu8_epi32(v)
        }
    }
}

/// Runs `pair` over the codes, sixteen per step, the tail with masks.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; the three slices have one length.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn run<P: Pair, const SIGNED: bool>(pair: &P, a: &[u8], b: &[u8], out: &mut [u8]) {
    let (ablocks, _) = a.as_chunks::<16>();
    let (bblocks, _) = b.as_chunks::<16>();
    let (oblocks, _) = out.as_chunks_mut::<16>();
    for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
        // SAFETY: `x`, `y` are 16 readable bytes and `o` 16 writable ones; AVX-512 is present.
        unsafe {
            let r = pair.apply(load::<SIGNED>(x.as_ptr()), load::<SIGNED>(y.as_ptr()));
            _mm_storeu_si128(o.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(r));
        }
    }
    let done = ablocks.len() * 16;
    let n = a.len() - done;
    if n > 0 {
        let k: __mmask16 = ((1u32 << n) - 1) as __mmask16;
        // SAFETY: the masked loads and the masked store touch only the `n < 16` lanes inside the
        // three slices (masked-off lanes are neither read nor written and cannot fault).
        unsafe {
            let widen = |v: __m128i| if SIGNED { _mm512_cvtepi8_epi32(v) } else { _mm512_cvtepu8_epi32(v) };
            let x = widen(_mm_maskz_loadu_epi8(k, a.as_ptr().add(done).cast()));
            let y = widen(_mm_maskz_loadu_epi8(k, b.as_ptr().add(done).cast()));
            _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(done).cast(), k, pair.apply(x, y));
        }
    }
}

/// Runs `pair` with the signedness fixed at compile time.
///
/// # Safety
/// As [`run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn run_signed<P: Pair>(pair: &P, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match signedness {
            Signedness::Signed => run::<P, true>(pair, a, b, out),
            Signedness::Unsigned => run::<P, false>(pair, a, b, out),
        }
    }
}

/// `out[i] = k.apply(a[i], b[i])` (see the module docs).
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; the three slices have one length.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    let float_bounds = |zy: i32, lo: i32, hi: i32| (_mm512_set1_ps((lo - zy) as f32), _mm512_set1_ps((hi - zy) as f32));
    let ok = generic::binary_floats_stay_finite(k);
    match *k {
        BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } => {
            if let (Some(ma), Some(mb), Some(my)) = (Q31::new(ma), Q31::new(mb), Q31::new(my)) {
                let p = TfliteAdd {
                    za: _mm512_set1_epi32(za),
                    zb: _mm512_set1_epi32(zb),
                    shift: _mm_set_epi64x(0, left_shift as i64),
                    ma,
                    mb,
                    my,
                    out: Out::new(zy, lo, hi),
                };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, signedness, a, b, out) };
            }
        }
        BinaryKernel::TfliteMul { za, zb, zy, m, lo, hi } => {
            if let Some(m) = Q31::new(m) {
                let (za, zb) = (_mm512_set1_epi32(za), _mm512_set1_epi32(zb));
                let p = OneMultiplier::<true> { za, zb, negate_b: false, m, out: Out::new(zy, lo, hi) };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, signedness, a, b, out) };
            }
        }
        BinaryKernel::EqualScale { za, zb, zy, negate_b, m, lo, hi } => {
            if let Some(m) = Q31::new(m) {
                let (za, zb) = (_mm512_set1_epi32(za), _mm512_set1_epi32(zb));
                let p = OneMultiplier::<false> { za, zb, negate_b, m, out: Out::new(zy, lo, hi) };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, signedness, a, b, out) };
            }
        }
        BinaryKernel::TorchAddSub { a: pa, b: pb, zy, inv_sy, negate_b, relu, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(zy, lo, hi);
            let p = TorchAddSub {
                a: Deq::new(pa),
                b: Deq::new(pb),
                inv_sy: _mm512_set1_ps(inv_sy),
                negate_b,
                relu,
                flo,
                fhi,
                zy: _mm512_set1_epi32(zy),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, signedness, a, b, out) };
        }
        BinaryKernel::TorchMul { za, zb, zy, m, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(zy, lo, hi);
            let p = TorchMul {
                za: _mm512_set1_epi32(za),
                zb: _mm512_set1_epi32(zb),
                m: _mm512_set1_ps(m),
                flo,
                fhi,
                zy: _mm512_set1_epi32(zy),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, signedness, a, b, out) };
        }
        BinaryKernel::OnnxRuntime { a: pa, b: pb, y, mul, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(y.zero_point, lo, hi);
            let p = OnnxRuntime {
                a: Deq::new(pa),
                b: Deq::new(pb),
                sy: _mm512_set1_ps(y.scale),
                mul,
                flo,
                fhi,
                fzy: _mm512_set1_ps(y.zero_point as f32),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, signedness, a, b, out) };
        }
        _ => {}
    }
    generic::binary_bytes(k, signedness, a, b, out)
}
