//! AVX2 QAdd / QSub / QMul on 8-bit codes, eight pairs at a time, bit for bit with
//! `quantproof_reference::elementwise::BinaryKernel::apply`: the AVX2 kernels'
//! (`avx512_binary.rs`) arithmetic in 256-bit registers.
//!
//! Codes are widened to 32-bit lanes (`vpmovsxbd` / `vpmovzxbd`), each framework's arithmetic
//! runs on them, and the clamped codes are narrowed back by a byte shuffle that keeps each lane's
//! low byte, which is exact because every result already lies in the code range. Rounding to
//! nearest even is `vcvtps2dq` in the default rounding mode. Tails (fewer than eight pairs) run
//! on the portable loop.
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

use super::avx2_requant::Q31;
use crate::arch::generic;
use core::arch::x86_64::*;
use quantproof_reference::affine::Affine;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::scheme::Signedness;

/// Eight pairs of codes (as i32 lanes) in, eight clamped output codes out.
trait Pair {
    /// # Safety
    /// The CPU must have AVX2.
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i;
}

/// Integer bounds and zero point shared by every kernel.
struct Out {
    zy: __m256i,
    lo: __m256i,
    hi: __m256i,
}

impl Out {
    /// Bounds `lo - zy` and `hi - zy` (exact: all three are codes).
    #[inline(always)]
    fn new(zy: i32, lo: i32, hi: i32) -> Out {
        // SAFETY: register broadcasts only; callers are AVX2 target-feature functions.
        unsafe { Out { zy: _mm256_set1_epi32(zy), lo: _mm256_set1_epi32(lo - zy), hi: _mm256_set1_epi32(hi - zy) } }
    }

    /// `clamp(v + zy, lo, hi)` with the exact sum, as `clamp(v, lo - zy, hi - zy) + zy` (the
    /// same integer, and no 32-bit overflow when `v` is near `i32::MAX`).
    #[inline(always)]
    unsafe fn finish(&self, v: __m256i) -> __m256i {
        // SAFETY: AVX2 is present (the caller's precondition).
        unsafe { _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, self.lo), self.hi), self.zy) }
    }
}

struct TfliteAdd {
    za: __m256i,
    zb: __m256i,
    shift: __m128i,
    ma: Q31,
    mb: Q31,
    my: Q31,
    out: Out,
}

impl Pair for TfliteAdd {
    #[inline(always)]
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 are present (the caller's precondition).
        unsafe {
            let xa = self.ma.apply(_mm256_sll_epi32(_mm256_sub_epi32(a, self.za), self.shift));
            let xb = self.mb.apply(_mm256_sll_epi32(_mm256_sub_epi32(b, self.zb), self.shift));
            self.out.finish(self.my.apply(_mm256_add_epi32(xa, xb)))
        }
    }
}

/// `TfliteMul` (`MUL = true`: the product) and `EqualScale` (`MUL = false`: the sum or
/// difference) of the centred codes, then one multiplier.
struct OneMultiplier<const MUL: bool> {
    za: __m256i,
    zb: __m256i,
    negate_b: bool,
    m: Q31,
    out: Out,
}

impl<const MUL: bool> Pair for OneMultiplier<MUL> {
    #[inline(always)]
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 are present (the caller's precondition).
        unsafe {
            let (ca, cb) = (_mm256_sub_epi32(a, self.za), _mm256_sub_epi32(b, self.zb));
            let v = if MUL {
                _mm256_mullo_epi32(ca, cb)
            } else if self.negate_b {
                _mm256_sub_epi32(ca, cb)
            } else {
                _mm256_add_epi32(ca, cb)
            };
            self.out.finish(self.m.apply(v))
        }
    }
}

/// `(q - z) as f32 * s`, the reference's `Affine::dequantize`.
#[derive(Clone, Copy)]
struct Deq {
    z: __m256i,
    s: __m256,
}

impl Deq {
    #[inline(always)]
    fn new(p: Affine) -> Deq {
        // SAFETY: register broadcasts only; callers are AVX2 target-feature functions.
        unsafe { Deq { z: _mm256_set1_epi32(p.zero_point), s: _mm256_set1_ps(p.scale) } }
    }

    #[inline(always)]
    unsafe fn apply(&self, q: __m256i) -> __m256 {
        // SAFETY: AVX2 is present (the caller's precondition).
        unsafe { _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, self.z)), self.s) }
    }
}

/// Rounds `v` clamped to `[flo, fhi]` (the integral `[lo - zy, hi - zy]`) ties to even.
#[inline(always)]
unsafe fn round_clamped(v: __m256, flo: __m256, fhi: __m256) -> __m256i {
    // SAFETY: AVX2 is present (the caller's precondition).
    unsafe { _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, flo), fhi)) }
}

struct TorchAddSub {
    a: Deq,
    b: Deq,
    inv_sy: __m256,
    negate_b: bool,
    relu: bool,
    flo: __m256,
    fhi: __m256,
    zy: __m256i,
}

impl Pair for TorchAddSub {
    #[inline(always)]
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 is present (the caller's precondition).
        unsafe {
            let (da, db) = (self.a.apply(a), self.b.apply(b));
            let mut c = if self.negate_b { _mm256_sub_ps(da, db) } else { _mm256_add_ps(da, db) };
            if self.relu {
                c = _mm256_max_ps(c, _mm256_setzero_ps());
            }
            _mm256_add_epi32(round_clamped(_mm256_mul_ps(c, self.inv_sy), self.flo, self.fhi), self.zy)
        }
    }
}

struct TorchMul {
    za: __m256i,
    zb: __m256i,
    m: __m256,
    flo: __m256,
    fhi: __m256,
    zy: __m256i,
}

impl Pair for TorchMul {
    #[inline(always)]
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 are present (the caller's precondition).
        unsafe {
            let p = _mm256_mullo_epi32(_mm256_sub_epi32(a, self.za), _mm256_sub_epi32(b, self.zb));
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(p), self.m);
            _mm256_add_epi32(round_clamped(v, self.flo, self.fhi), self.zy)
        }
    }
}

struct OnnxRuntime {
    a: Deq,
    b: Deq,
    sy: __m256,
    mul: bool,
    flo: __m256,
    fhi: __m256,
    fzy: __m256,
}

impl Pair for OnnxRuntime {
    #[inline(always)]
    unsafe fn apply(&self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 is present (the caller's precondition).
        unsafe {
            let (va, vb) = (self.a.apply(a), self.b.apply(b));
            let c = _mm256_div_ps(if self.mul { _mm256_mul_ps(va, vb) } else { _mm256_add_ps(va, vb) }, self.sy);
            let c = _mm256_add_ps(_mm256_min_ps(_mm256_max_ps(c, self.flo), self.fhi), self.fzy);
            // c + zy lies in [lo, hi] already (monotone rounding, integral bounds).
            _mm256_cvtps_epi32(c)
        }
    }
}

/// Eight codes at `p` widened to i32 lanes.
///
/// # Safety
/// AVX2; `p` points to 8 readable bytes.
#[inline(always)]
unsafe fn load<const SIGNED: bool>(p: *const u8) -> __m256i {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let v = _mm_loadl_epi64(p.cast());
        if SIGNED {
            _mm256_cvtepi8_epi32(v)
        } else {
            _mm256_cvtepu8_epi32(v)
        }
    }
}

/// Runs `pair` over the codes, eight per step; the tail on the portable loop.
///
/// # Safety
/// The CPU must have AVX2; the three slices have one length.
#[target_feature(enable = "avx2")]
unsafe fn run<P: Pair, const SIGNED: bool>(pair: &P, k: &BinaryKernel, a: &[u8], b: &[u8], out: &mut [u8]) {
    // The low byte of each 32-bit lane to the first four bytes of each 128-bit half, then the two
    // halves' first dwords side by side.
    let bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1,
    );
    let halves = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    let (ablocks, _) = a.as_chunks::<8>();
    let (bblocks, _) = b.as_chunks::<8>();
    let (oblocks, _) = out.as_chunks_mut::<8>();
    for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
        // SAFETY: `x`, `y` are 8 readable bytes and `o` 8 writable ones; AVX2 is present.
        unsafe {
            let r = pair.apply(load::<SIGNED>(x.as_ptr()), load::<SIGNED>(y.as_ptr()));
            let r = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(r, bytes), halves);
            _mm_storel_epi64(o.as_mut_ptr().cast(), _mm256_castsi256_si128(r));
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
#[target_feature(enable = "avx2")]
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
/// The CPU must have AVX2; the three slices have one length.
#[target_feature(enable = "avx2")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    let float_bounds = |zy: i32, lo: i32, hi: i32| (_mm256_set1_ps((lo - zy) as f32), _mm256_set1_ps((hi - zy) as f32));
    let ok = generic::binary_floats_stay_finite(k);
    match *k {
        BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } => {
            if let (Some(ma), Some(mb), Some(my)) = (Q31::new(ma), Q31::new(mb), Q31::new(my)) {
                let p = TfliteAdd {
                    za: _mm256_set1_epi32(za),
                    zb: _mm256_set1_epi32(zb),
                    shift: _mm_set_epi64x(0, left_shift as i64),
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
                let (za, zb) = (_mm256_set1_epi32(za), _mm256_set1_epi32(zb));
                let p = OneMultiplier::<true> { za, zb, negate_b: false, m, out: Out::new(zy, lo, hi) };
                // SAFETY: forwarded from this function's contract.
                return unsafe { run_signed(&p, k, signedness, a, b, out) };
            }
        }
        BinaryKernel::EqualScale { za, zb, zy, negate_b, m, lo, hi } => {
            if let Some(m) = Q31::new(m) {
                let (za, zb) = (_mm256_set1_epi32(za), _mm256_set1_epi32(zb));
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
                inv_sy: _mm256_set1_ps(inv_sy),
                negate_b,
                relu,
                flo,
                fhi,
                zy: _mm256_set1_epi32(zy),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        BinaryKernel::TorchMul { za, zb, zy, m, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(zy, lo, hi);
            let p = TorchMul {
                za: _mm256_set1_epi32(za),
                zb: _mm256_set1_epi32(zb),
                m: _mm256_set1_ps(m),
                flo,
                fhi,
                zy: _mm256_set1_epi32(zy),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        BinaryKernel::OnnxRuntime { a: pa, b: pb, y, mul, lo, hi } if ok => {
            let (flo, fhi) = float_bounds(y.zero_point, lo, hi);
            let p = OnnxRuntime {
                a: Deq::new(pa),
                b: Deq::new(pb),
                sy: _mm256_set1_ps(y.scale),
                mul,
                flo,
                fhi,
                fzy: _mm256_set1_ps(y.zero_point as f32),
            };
            // SAFETY: forwarded from this function's contract.
            return unsafe { run_signed(&p, k, signedness, a, b, out) };
        }
        _ => {}
    }
    generic::binary_bytes(k, signedness, a, b, out)
}
