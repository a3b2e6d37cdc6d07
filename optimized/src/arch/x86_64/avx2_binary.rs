//! AVX2 QAdd / QSub / QMul on 8-bit codes: the kernels of [`crate::arch::lanes`] on eight i32
//! lanes (`__m256i`), bit for bit with `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Codes are widened with `vpmovsxbd` / `vpmovzxbd` and narrowed by a byte shuffle that keeps
//! each lane's low byte, then `vpermd` (exact: every result already lies in the code range).
//! Rounding to nearest even is `vcvtps2dq` in the default rounding mode; the double-rounding
//! multiply is [`Q31`], shared with requantization. Tails (fewer than eight pairs) run on the
//! portable loop.

use super::avx2_requant::{Narrow32, Q31};
use crate::arch::generic;
use crate::arch::lanes::{self, lane_intrinsics, Driver, Lanes, Pair};
use core::arch::x86_64::*;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::requantize::QuantizedMultiplier;
use quantproof_reference::scheme::Signedness;

impl Lanes for __m256i {
    type F = __m256;
    const DIVIDE_BY_FMA: bool = false;
    type Q31 = Q31;
    type Count = __m128i;

    lane_intrinsics! {
        fn splat(x: i32) -> Self = _mm256_set1_epi32;
        fn splat_f(x: f32) -> __m256 = _mm256_set1_ps;
        fn add(self, o) = _mm256_add_epi32;
        fn sub(self, o) = _mm256_sub_epi32;
        fn mul(self, o) = _mm256_mullo_epi32;
        fn min(self, o) = _mm256_min_epi32;
        fn max(self, o) = _mm256_max_epi32;
        fn and(self, o) = _mm256_and_si256;
        fn to_f32(self) -> __m256 = _mm256_cvtepi32_ps;
        fn fadd(a: __m256, b: __m256) -> __m256 = _mm256_add_ps;
        fn fsub(a: __m256, b: __m256) -> __m256 = _mm256_sub_ps;
        fn fmul(a: __m256, b: __m256) -> __m256 = _mm256_mul_ps;
        fn fdiv(a: __m256, b: __m256) -> __m256 = _mm256_div_ps;
        fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 = _mm256_fmadd_ps;
        fn fnmadd(a: __m256, b: __m256, c: __m256) -> __m256 = _mm256_fnmadd_ps;
        fn fmin(a: __m256, b: __m256) -> __m256 = _mm256_min_ps;
        fn fmax(a: __m256, b: __m256) -> __m256 = _mm256_max_ps;
        // `vcvtps2dq` in MXCSR's rounding mode, which Rust leaves at round-to-nearest-even.
        fn round(a: __m256) -> Self = _mm256_cvtps_epi32;
    }

    #[inline(always)]
    unsafe fn count(n: i32) -> __m128i {
        // SAFETY: a register set-up (SSE2, part of x86-64).
        unsafe { _mm_set_epi64x(0, n as i64) }
    }

    #[inline(always)]
    unsafe fn q31(q: QuantizedMultiplier) -> Option<Q31> {
        Q31::new(q)
    }

    #[inline(always)]
    unsafe fn shl(self, n: __m128i) -> Self {
        // SAFETY: `Lanes`' contract: the caller has AVX2.
        unsafe { _mm256_sll_epi32(self, n) }
    }

    #[inline(always)]
    unsafe fn gather(t: &[i32; 256], idx: Self) -> Self {
        // SAFETY: AVX2 (`Lanes`' contract); every lane of `idx` is in `0..=255` (this method's
        // contract), so each 4-byte read lies inside `t`.
        unsafe { _mm256_i32gather_epi32::<4>(t.as_ptr(), idx) }
    }

    #[inline(always)]
    unsafe fn mul_q31(self, q: &Q31) -> Self {
        // SAFETY: `Lanes`' contract: the caller has AVX2.
        unsafe { q.apply(self) }
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

/// Runs `pair` over the codes, thirty-two per step where the pair is [`Pair::narrowable`] (four
/// vectors narrowed at once with saturating packs, [`Narrow32`]), then eight per step; the tail
/// on the portable loop.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the three slices have one length.
#[target_feature(enable = "avx2,fma")]
unsafe fn run<P: Pair<__m256i>, const SIGNED: bool>(pair: &P, k: &BinaryKernel, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: this function's contract.
    let wide_done = unsafe { lanes::binary_wide::<Avx2, P, SIGNED>(pair, a, b, out) };
    let (a, b, out) = (&a[wide_done..], &b[wide_done..], &mut out[wide_done..]);
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


struct Avx2;

impl lanes::WideBinary for Avx2 {
    type V = __m256i;

    #[inline(always)]
    unsafe fn wide<P: Pair<__m256i>, const SIGNED: bool, const OUT_SIGNED: bool>(
        pair: &P,
        zy: i32,
        lo: i32,
        hi: i32,
        a: &[u8],
        b: &[u8],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (this function's contract).
        let narrow = unsafe { Narrow32::<OUT_SIGNED>::new(zy, lo, hi) };
        let (ablocks, _) = a.as_chunks::<32>();
        let (bblocks, _) = b.as_chunks::<32>();
        let (oblocks, _) = out.as_chunks_mut::<32>();
        for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
            let (x, y) = (x.as_ptr(), y.as_ptr());
            // SAFETY: `x`, `y` are 32 readable bytes (four 8-byte loads inside each) and `o` 32
            // writable ones; AVX2 is this function's contract.
            unsafe {
                let v = [
                    pair.raw(load::<SIGNED>(x), load::<SIGNED>(y)),
                    pair.raw(load::<SIGNED>(x.add(8)), load::<SIGNED>(y.add(8))),
                    pair.raw(load::<SIGNED>(x.add(16)), load::<SIGNED>(y.add(16))),
                    pair.raw(load::<SIGNED>(x.add(24)), load::<SIGNED>(y.add(24))),
                ];
                _mm256_storeu_si256(o.as_mut_ptr().cast(), narrow.apply(v));
            }
        }
        ablocks.len() * 32
    }
}

impl Driver for Avx2 {
    type V = __m256i;

    #[inline(always)]
    unsafe fn run<P: Pair<__m256i>>(pair: &P, k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
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
/// The CPU must have AVX2 and FMA; the three slices have one length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::binary_bytes::<Avx2>(k, signedness, a, b, out) }
}
