//! AVX2 requantization: int32 accumulators to codes, eight lanes at a time, bit for bit with
//! `quantproof_reference::requantize::Requantizer::apply` (the same formulas as the AVX-512
//! kernel, `avx512_requant.rs`; AVX2 has no 64-bit arithmetic shift or 64-bit min/max, so
//! those are written out).
//!
//! | variant | AVX2 | why it is exact |
//! |---|---|---|
//! | `FloatTorch`, `FloatOnnxRuntime` | `vcvtdq2ps`, `vmulps`, clamp in f32, `vcvtps2dq` (ties to even in the default rounding mode), `+ z` | as AVX-512; finite multipliers only |
//! | `DoubleRounding` | `vpmuldq` on both lane parities, SRDHM as `(p + 2^30) >> 31` (gemmlowp's nudge and truncating division, rewritten exactly) with a *logical* 64-bit shift whose low 32 bits are the quotient (it fits i32: the multiplier `i32::MIN` goes to the portable loop, so `i32::MIN * i32::MIN` cannot occur), `RoundingDivideByPOT` in 32-bit lanes | right shifts above 31 go to the portable loop |
//! | `SingleRounding`, `Rndnu` | `vpmuldq`, `+ 2^(t-1)`, an arithmetic 64-bit shift as `((v ^ s) >>> t) ^ s` with `s` the sign mask, a 64-bit clamp by `vpcmpgtq` and blends | the reference's 64-bit formula |
//! | `PowerOfTwo` | the portable loop | |
//!
//! Bytes out from the float multipliers with `|M| < 1` and from double rounding: four vectors
//! narrowed at once with saturating packs ([`Narrow32`], as the AVX-512 `Narrow64`), 32 codes
//! per step.

use crate::arch::generic;
use crate::arch::lanes::{self, Map, Requant, RequantDriver};
use core::arch::x86_64::*;
use quantproof_reference::requantize::{QuantizedMultiplier, Requantizer};
use quantproof_reference::scheme::CodeRange;

/// A destination of eight results: `i32` codes, or their low bytes (exact because every
/// result already lies in a range of one byte type).
pub(super) trait Store8: generic::CodeOut {
    /// # Safety
    /// `p` points to eight writable elements; the CPU has AVX2.
    unsafe fn store(p: *mut Self, v: __m256i);
    /// The destination as bytes, when it is (then [`requantize`] may narrow four vectors at once).
    fn bytes(out: &mut [Self]) -> Option<&mut [u8]>;
}

impl Store8 for i32 {
    #[inline(always)]
    unsafe fn store(p: *mut i32, v: __m256i) {
        // SAFETY: the caller's precondition (eight writable i32, AVX2).
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }
    fn bytes(_: &mut [i32]) -> Option<&mut [u8]> {
        None
    }
}

impl Store8 for u8 {
    /// The low byte of each lane (`vpshufb` within each 128-bit half, `vpermd` to join the two
    /// halves' four bytes), stored as eight bytes.
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: __m256i) {
        // SAFETY: the caller's precondition (eight writable bytes, AVX2).
        unsafe {
            let pick = _mm256_setr_epi8(
                0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1,
                -1, -1, -1, -1, -1,
            );
            let b =
                _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick), _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
            _mm_storel_epi64(p.cast(), _mm256_castsi256_si128(b))
        }
    }
    fn bytes(out: &mut [u8]) -> Option<&mut [u8]> {
        Some(out)
    }
}

impl Map<__m256i> for Q31 {
    #[inline(always)]
    unsafe fn apply(&self, x: __m256i) -> __m256i {
        // SAFETY: AVX2 is present (the caller's precondition).
        unsafe { Q31::apply(self, x) }
    }
}

/// Thirty-two unclamped `i32` results `r` (four vectors) to bytes `clamp(r + z, lo, hi)` with
/// saturating packs, exact for every `r` and `|z| <= 255` (the argument of the AVX-512
/// `Narrow64`): `vpackssdw`, `vpaddsw` of `z`, `vpacksswb` / `vpackuswb`, `vpermd` (after the
/// packs, 128-bit lane `j` holds the dwords `(v0_j, v1_j, v2_j, v3_j)`: dword `4j + k` belongs
/// at `2k + j`), and the byte clamp where `[lo, hi]` is narrower than the byte type.
pub(super) struct Narrow32<const SIGNED: bool> {
    z: __m256i,
    lo: __m256i,
    hi: __m256i,
    clamp: bool,
    order: __m256i,
}

impl<const SIGNED: bool> Narrow32<SIGNED> {
    /// # Safety
    /// The CPU has AVX2.
    #[inline(always)]
    pub(super) unsafe fn new(z: i32, lo: i32, hi: i32) -> Narrow32<SIGNED> {
        let full = if SIGNED { (-128, 127) } else { (0, 255) };
        // SAFETY: broadcasts only (AVX, the caller's precondition).
        unsafe {
            Narrow32 {
                z: _mm256_set1_epi16(z as i16),
                lo: _mm256_set1_epi8(lo as i8),
                hi: _mm256_set1_epi8(hi as i8),
                clamp: (lo, hi) != full,
                order: _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, v: [__m256i; 4]) -> __m256i {
        // SAFETY: register operations only (AVX2, the caller's precondition).
        unsafe {
            let w01 = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), self.z);
            let w23 = _mm256_adds_epi16(_mm256_packs_epi32(v[2], v[3]), self.z);
            let b = if SIGNED { _mm256_packs_epi16(w01, w23) } else { _mm256_packus_epi16(w01, w23) };
            let b = _mm256_permutevar8x32_epi32(b, self.order);
            match (self.clamp, SIGNED) {
                (false, _) => b,
                (true, true) => _mm256_min_epi8(_mm256_max_epi8(b, self.lo), self.hi),
                (true, false) => _mm256_min_epu8(_mm256_max_epu8(b, self.lo), self.hi),
            }
        }
    }
}

impl lanes::NarrowBytes for Avx2 {
    type V = __m256i;

    /// 32 codes per step.
    #[inline(always)]
    unsafe fn narrow_bytes<M: Map<__m256i>, const SIGNED: bool>(
        map: &M,
        z: i32,
        lo: i32,
        hi: i32,
        acc: &[i32],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (the caller's AVX2).
        let narrow = unsafe { Narrow32::<SIGNED>::new(z, lo, hi) };
        let (blocks, _) = acc.as_chunks::<32>();
        let (oblocks, _) = out.as_chunks_mut::<32>();
        for (a, o) in blocks.iter().zip(oblocks) {
            super::prefetch::<_, 2>(a);
            let p = a.as_ptr();
            // SAFETY: `a` is 32 readable i32 (four 8-lane loads inside it) and `o` 32 writable
            // bytes; AVX2 is the caller's contract.
            unsafe {
                let v = [
                    map.apply(_mm256_loadu_si256(p.cast())),
                    map.apply(_mm256_loadu_si256(p.add(8).cast())),
                    map.apply(_mm256_loadu_si256(p.add(16).cast())),
                    map.apply(_mm256_loadu_si256(p.add(24).cast())),
                ];
                _mm256_storeu_si256(o.as_mut_ptr().cast(), narrow.apply(v));
            }
        }
        blocks.len() * 32
    }
}

pub(super) struct Avx2;

impl<O: Store8> RequantDriver<O> for Avx2 {
    type V = __m256i;

    #[inline(always)]
    unsafe fn run<M: Map<__m256i>>(map: &M, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
        let (blocks, _) = acc.as_chunks::<8>();
        let (oblocks, _) = out.as_chunks_mut::<8>();
        for (a, o) in blocks.iter().zip(oblocks.iter_mut()) {
            super::prefetch::<_, 1>(a);
            super::prefetch_w::<_, 1>(o);
            // SAFETY: `a` is eight readable i32, `o` eight writable outputs; AVX2 is present
            // (the caller's contract).
            unsafe { O::store(o.as_mut_ptr(), map.apply(_mm256_loadu_si256(a.as_ptr().cast()))) };
        }
        let done = blocks.len() * 8;
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
/// The CPU must have AVX2; `out.len() == acc.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn requantize<O: Store8>(acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [O]) {
    // Bytes from the float and double-rounding multipliers: four vectors narrowed at once
    // ([`lanes::requantize_bytes_wide`]), the rest by the loops below.
    let mut done = 0;
    if acc.len() >= 32 {
        if let Some(bytes) = O::bytes(out) {
            // SAFETY: the CPU features are this function's contract; equal lengths.
            done = unsafe { lanes::requantize_bytes_wide::<Avx2>(acc, r, zero_point, range, bytes) };
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::requantize::<Avx2, O>(&acc[done..], r, zero_point, range, &mut out[done..]) }
}

/// `clamp((x * m + 2^(t-1)) >> t, lo, hi) + z` in 64-bit lanes, the tail on the portable loop.
#[target_feature(enable = "avx2")]
fn shift64<O: Store8>(m: i32, t: i64, lo: i32, hi: i32, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
    let vm = _mm256_set1_epi64x(m as i64);
    let round = _mm256_set1_epi64x(1i64 << (t - 1));
    let vt = _mm_set_epi64x(0, t);
    let (vlo, vhi) = (_mm256_set1_epi64x(lo as i64), _mm256_set1_epi64x(hi as i64));
    let z = _mm256_set1_epi32(q.zero_point);
    let zero = _mm256_setzero_si256();
    let f = |p: __m256i| {
        let v = _mm256_add_epi64(p, round);
        let s = _mm256_cmpgt_epi64(zero, v);
        let v = _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(v, s), vt), s);
        let v = _mm256_blendv_epi8(v, vlo, _mm256_cmpgt_epi64(vlo, v));
        _mm256_blendv_epi8(v, vhi, _mm256_cmpgt_epi64(v, vhi))
    };
    let (blocks, _) = acc.as_chunks::<8>();
    let (oblocks, _) = out.as_chunks_mut::<8>();
    for (a, o) in blocks.iter().zip(oblocks.iter_mut()) {
        super::prefetch::<_, 1>(a);
        super::prefetch_w::<_, 1>(o);
        // SAFETY: `a` is eight readable i32.
        let x = unsafe { _mm256_loadu_si256(a.as_ptr().cast()) };
        let e = f(_mm256_mul_epi32(x, vm));
        let od = f(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), vm));
        let v = _mm256_blend_epi32::<0b1010_1010>(e, _mm256_slli_epi64::<32>(od));
        // SAFETY: `o` is eight writable outputs; AVX2 is present.
        unsafe { O::store(o.as_mut_ptr(), _mm256_add_epi32(v, z)) };
    }
    let done = blocks.len() * 8;
    q.portable(&acc[done..], &mut out[done..]);
}

/// gemmlowp's `MultiplyByQuantizedMultiplier` (double rounding) on eight lanes, unclamped: the
/// reference's `multiply_by_quantized_multiplier_double_rounding`, shared by requantization and
/// the element-wise kernels (`avx2_binary.rs`). The SRDHM quotient is taken with a *logical*
/// 64-bit shift (or a doubling whose high half is kept): its 32 bits equal the arithmetic
/// shift's whenever the quotient fits `i32`, which holds for every multiplier above `i32::MIN`
/// (only `i32::MIN * i32::MIN` overflows, and `new` refuses that multiplier).
pub(crate) struct Q31 {
    m: __m256i,
    left: __m128i,
    right: __m128i,
    mask: __m256i,
    half_mask: __m256i,
}

impl Q31 {
    /// `None` for a right shift above 31 or the multiplier `i32::MIN` (the portable loop takes
    /// those).
    #[inline(always)]
    pub(super) fn new(q: QuantizedMultiplier) -> Option<Q31> {
        let right = (-q.shift).max(0) as u32;
        if right > 31 || q.multiplier == i32::MIN {
            return None;
        }
        let mask = ((1u64 << right) - 1) as i32;
        // SAFETY: register set-ups only (SSE2 / AVX broadcasts, no memory access); callers are
        // AVX2 target-feature functions.
        unsafe {
            Some(Q31 {
                m: _mm256_set1_epi64x(q.multiplier as i64),
                left: _mm_set_epi64x(0, q.shift.clamp(0, 31) as i64),
                right: _mm_set_epi64x(0, right as i64),
                mask: _mm256_set1_epi32(mask),
                half_mask: _mm256_set1_epi32(mask >> 1),
            })
        }
    }

    /// `x * 2^left` (wrapping), SRDHM by the multiplier, `RoundingDivideByPOT` by `right`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn apply(&self, x: __m256i) -> __m256i {
        // SRDHM as `floor((p + 2^30) / 2^31)` (see the AVX-512 `Q31`): even lanes take the low
        // half of `(p + 2^30) >> 31`, odd lanes the high half of `(p + 2^30) << 1`.
        let half = _mm256_set1_epi64x(1 << 30);
        let a = _mm256_sll_epi32(x, self.left);
        let even = _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epi32(a, self.m), half));
        let odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(a), self.m), half);
        let v = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_add_epi64(odd, odd));
        let rem = _mm256_and_si256(v, self.mask);
        let thr = _mm256_sub_epi32(self.half_mask, _mm256_srai_epi32::<31>(v));
        let q = _mm256_sra_epi32(v, self.right);
        _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr))
    }
}
