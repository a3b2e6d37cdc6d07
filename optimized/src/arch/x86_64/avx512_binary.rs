//! AVX-512 QAdd / QSub / QMul on 8-bit codes: the kernels of [`crate::arch::lanes`] on sixteen
//! i32 lanes (`__m512i`), bit for bit with `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Codes are widened with `vpmovsxbd` / `vpmovzxbd` and narrowed by truncation (`vpmovdb`),
//! which is exact because every result already lies in the code range; tails run with masks.
//! Rounding to nearest even is `vcvtps2dq` with embedded rounding; the double-rounding multiply is
//! [`Q31`], shared with requantization.

use super::avx512_requant::{Narrow64, Q31};
use crate::arch::lanes::{self, lane_intrinsics, Driver, Lanes, Pair};
use core::arch::x86_64::*;
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::requantize::QuantizedMultiplier;
use quantproof_reference::scheme::Signedness;

/// Round to nearest even, whatever MXCSR says.
#[inline(always)]
unsafe fn round_even(a: __m512) -> __m512i {
    // SAFETY: `Lanes`' contract: the caller has AVX-512 F.
    unsafe { _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
}

impl Lanes for __m512i {
    type F = __m512;
    type Q31 = Q31;
    type Count = __m128i;

    lane_intrinsics! {
        fn splat(x: i32) -> Self = _mm512_set1_epi32;
        fn splat_f(x: f32) -> __m512 = _mm512_set1_ps;
        fn add(self, o) = _mm512_add_epi32;
        fn sub(self, o) = _mm512_sub_epi32;
        fn mul(self, o) = _mm512_mullo_epi32;
        fn min(self, o) = _mm512_min_epi32;
        fn max(self, o) = _mm512_max_epi32;
        fn and(self, o) = _mm512_and_si512;
        fn to_f32(self) -> __m512 = _mm512_cvtepi32_ps;
        fn fadd(a: __m512, b: __m512) -> __m512 = _mm512_add_ps;
        fn fsub(a: __m512, b: __m512) -> __m512 = _mm512_sub_ps;
        fn fmul(a: __m512, b: __m512) -> __m512 = _mm512_mul_ps;
        fn fdiv(a: __m512, b: __m512) -> __m512 = _mm512_div_ps;
        fn fmin(a: __m512, b: __m512) -> __m512 = _mm512_min_ps;
        fn fmax(a: __m512, b: __m512) -> __m512 = _mm512_max_ps;
        fn round(a: __m512) -> Self = round_even;
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
        // SAFETY: `Lanes`' contract: the caller has AVX-512 F.
        unsafe { _mm512_sll_epi32(self, n) }
    }

    #[inline(always)]
    unsafe fn gather(t: &[i32; 256], idx: Self) -> Self {
        // SAFETY: AVX-512 F (`Lanes`' contract); every lane of `idx` is in `0..=255` (this
        // method's contract), so each 4-byte read lies inside `t`.
        unsafe { _mm512_i32gather_epi32::<4>(idx, t.as_ptr()) }
    }

    #[inline(always)]
    unsafe fn mul_q31(self, q: &Q31) -> Self {
        // SAFETY: `Lanes`' contract: the caller has AVX-512 F/BW/VL/DQ.
        unsafe { q.apply(self) }
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

/// Runs `pair` over the codes, sixty-four per step where the pair is [`Pair::narrowable`]
/// (four vectors narrowed at once with saturating packs, [`Narrow64`]), then sixteen per step,
/// the tail with masks.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; the three slices have one length.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn run<P: Pair<__m512i>, const SIGNED: bool>(pair: &P, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: this function's contract.
    let done = unsafe { lanes::binary_wide::<Avx512, P, SIGNED>(pair, a, b, out) };
    let (a, b, out) = (&a[done..], &b[done..], &mut out[done..]);
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


struct Avx512;

impl lanes::WideBinary for Avx512 {
    type V = __m512i;

    #[inline(always)]
    unsafe fn wide<P: Pair<__m512i>, const SIGNED: bool, const OUT_SIGNED: bool>(
        pair: &P,
        zy: i32,
        lo: i32,
        hi: i32,
        a: &[u8],
        b: &[u8],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (this function's contract).
        let narrow = unsafe { Narrow64::<OUT_SIGNED>::new(zy, lo, hi) };
        let (ablocks, _) = a.as_chunks::<64>();
        let (bblocks, _) = b.as_chunks::<64>();
        let (oblocks, _) = out.as_chunks_mut::<64>();
        for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
            let (x, y) = (x.as_ptr(), y.as_ptr());
            // SAFETY: `x`, `y` are 64 readable bytes (four 16-byte loads inside each) and `o` 64
            // writable ones; the CPU features are this function's contract.
            unsafe {
                let v = [
                    pair.raw(load::<SIGNED>(x), load::<SIGNED>(y)),
                    pair.raw(load::<SIGNED>(x.add(16)), load::<SIGNED>(y.add(16))),
                    pair.raw(load::<SIGNED>(x.add(32)), load::<SIGNED>(y.add(32))),
                    pair.raw(load::<SIGNED>(x.add(48)), load::<SIGNED>(y.add(48))),
                ];
                _mm512_storeu_si512(o.as_mut_ptr().cast(), narrow.apply(v));
            }
        }
        ablocks.len() * 64
    }
}

impl Driver for Avx512 {
    type V = __m512i;

    #[inline(always)]
    unsafe fn run<P: Pair<__m512i>>(pair: &P, _: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            match s {
                Signedness::Signed => run::<P, true>(pair, a, b, out),
                Signedness::Unsigned => run::<P, false>(pair, a, b, out),
            }
        }
    }
}

/// `out[i] = k.apply(a[i], b[i])` (see [`crate::arch::lanes`]).
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; the three slices have one length.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::binary_bytes::<Avx512>(k, signedness, a, b, out) }
}
