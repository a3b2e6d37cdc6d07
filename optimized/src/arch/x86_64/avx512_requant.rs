//! AVX-512 requantization: int32 accumulators to codes, sixteen lanes at a time, bit for bit
//! with `quantproof_reference::requantize::Requantizer::apply`.
//!
//! | variant | vector arithmetic | why it is exact |
//! |---|---|---|
//! | `FloatTorch`, `FloatOnnxRuntime` | `vcvtdq2ps`, `vmulps`, clamp to `[qmin - z, qmax - z]` in f32, `vcvtps2dq` (ties to even), `+ z` | one rounded product as in the reference; clamping before rounding equals rounding before clamping because the bounds are integers; only used for a finite multiplier (no NaN can arise) |
//! | `DoubleRounding` | `x << max(shift, 0)` (wrapping, as TFLite), `vpmuldq` on even and odd lanes (exact 64-bit products `p`), both roundings at once as `floor((p + 2^30 + 2^(30+r) - [p < -2^30] 2^31) / 2^(31+r))` ([`Q31`]): the high halves, shifted by `r - 1` | gemmlowp's nudge (`2^30`, or `1 - 2^30` for a negative product) followed by a truncating division by 2^31 equals `floor((p + 2^30) / 2^31)` for every product, its `RoundingDivideByPOT` is a floor with a sign-dependent offset, and nested floors by powers of two merge (derivation at [`Q31`]); the one overflowing product (`i32::MIN * i32::MIN`) cannot occur (that multiplier goes to the portable loop, and `from_real` never makes it); right shifts above 31 go to the portable loop |
//! | `SingleRounding`, `Rndnu` | `(x * m + 2^(t-1)) >> t` with `vpmuldq` and `vpsraq` | the same 64-bit formula; the clamp to `[qmin - z, qmax - z]` is applied in 64 bits, which equals the reference's clamp to `i32` then to the range |
//! | `PowerOfTwo` | the portable loop | rare (chips without multipliers), kept simple |
//!
//! Bytes out (8-bit codes) from the float multipliers with `|M| < 1` and from double rounding:
//! the unclamped results of four vectors are narrowed at once with saturating packs
//! ([`Narrow64`]: `vpackssdw`, `vpaddsw` of `z`, `vpacksswb` / `vpackuswb`, `vpermd`, and a byte
//! clamp only for a range narrower than the byte type), 64 codes per step, instead of a clamp,
//! `+ z` and a `vpmovdb` per vector. The element-wise kernels (`avx512_binary.rs`) narrow the
//! same way.

use crate::arch::generic;
use crate::arch::lanes::{self, Map, Requant, RequantDriver};
use core::arch::x86_64::*;
use quantproof_reference::requantize::{QuantizedMultiplier, Requantizer};
use quantproof_reference::scheme::CodeRange;

/// Signed 32 x 32 -> 64-bit products of the even lanes and of the odd lanes.
#[inline(always)]
pub(super) unsafe fn mul_wide(x: __m512i, m: __m512i) -> (__m512i, __m512i) {
    // SAFETY: AVX-512 F is present (the caller's precondition).
    unsafe { (_mm512_mul_epi32(x, m), _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), m)) }
}

/// Even-lane results (in the low halves of `even`'s 64-bit lanes) and odd-lane results (low
/// halves of `odd`'s) back into sixteen 32-bit lanes.
#[inline(always)]
pub(super) unsafe fn interleave(even: __m512i, odd: __m512i) -> __m512i {
    // SAFETY: AVX-512 F is present (the caller's precondition).
    unsafe { _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd)) }
}

struct Shift64 {
    m: __m512i,
    round: __m512i,
    t: __m128i,
    lo: __m512i,
    hi: __m512i,
    z: __m512i,
}

impl Map<__m512i> for Shift64 {
    #[inline(always)]
    unsafe fn apply(&self, x: __m512i) -> __m512i {
        // SAFETY: AVX-512 F is present (the caller's precondition).
        unsafe {
            let (e, o) = mul_wide(x, self.m);
            let f = |p: __m512i| {
                let v = _mm512_sra_epi64(_mm512_add_epi64(p, self.round), self.t);
                _mm512_min_epi64(_mm512_max_epi64(v, self.lo), self.hi)
            };
            _mm512_add_epi32(interleave(f(e), f(o)), self.z)
        }
    }
}

/// gemmlowp's `MultiplyByQuantizedMultiplier` (double rounding) on sixteen lanes, unclamped:
/// the reference's `multiply_by_quantized_multiplier_double_rounding`, shared by requantization
/// and the element-wise kernels (`avx512_binary.rs`).
///
/// Both roundings are taken in one step on the exact 64-bit product `p = (x << left) * m`:
///
/// - SRDHM: gemmlowp's nudge (`2^30`, or `1 - 2^30` for a negative product) and truncating
///   division by `2^31` are `v = floor((p + 2^30) / 2^31)` for every product but `i32::MIN *
///   i32::MIN` (excluded by `new`); `v` fits `i32`.
/// - `RoundingDivideByPOT(v, r)`, `r >= 1` (remainder above `2^(r-1) - 1 + [v < 0]` rounds up)
///   is `floor((v + 2^(r-1) - [v < 0]) / 2^r)`, and `v < 0` exactly when `p < -2^30`.
/// - Nested floors by powers of two merge (`floor((floor(y / a) + c) / b) = floor((y + c a) /
///   (a b))` for an integer `c`), so the result is `floor(T / 2^(31 + r))` with `T = p + 2^30 +
///   2^(30 + r) - [p < -2^30] 2^31`, `|T| < 2^63`: the high 32 bits of `T` (a shuffle of both
///   halves into one vector) shifted right by `r - 1`.
/// - `r = 0` is SRDHM alone: the high 32 bits of `2 (p + 2^30)`.
///
/// Eleven instructions for `r >= 1` (twelve with a left shift), where gemmlowp's two steps took
/// fourteen (fifteen).
pub(crate) struct Q31 {
    /// The multiplier in the low half of each 64-bit lane (`vpmuldq` reads only that half).
    m: __m512i,
    left: __m128i,
    has_left: bool,
    /// `r = 0`: SRDHM only.
    no_right: bool,
    /// `2^30 + 2^(30 + r)` (`r >= 1`), `2^30` (`r = 0`), per 64-bit lane.
    nudge: __m512i,
    /// `-2^30` per 64-bit lane: a product below it has a negative SRDHM quotient.
    negative_below: __m512i,
    /// `2^31` per 64-bit lane.
    away: __m512i,
    /// `r - 1` (`r >= 1`).
    right: __m128i,
}

impl Q31 {
    /// `None` for a right shift above 31 or the multiplier `i32::MIN` (the portable loop takes
    /// those; `QuantizedMultiplier::from_real` never makes that multiplier).
    #[inline(always)]
    pub(super) fn new(q: QuantizedMultiplier) -> Option<Q31> {
        Q31::offset_by(q, 0)
    }

    /// The multiplier of `x + c` instead of `x`, the addition folded into the 64-bit constants
    /// (`(x + c) m = x m + c m`: the nudge gains `c m` and the sign test's bound loses it), for
    /// lanes `x` with `x + c` inside `i32` (the caller's to ensure: [`Q31::apply`] then gives
    /// `MBQM(x + c)` exactly). `None` where [`Q31::new`] refuses, and for a left shift (which
    /// would shift the sum).
    pub(super) fn with_offset(q: QuantizedMultiplier, c: i32) -> Option<Q31> {
        if q.shift > 0 {
            return None;
        }
        Q31::offset_by(q, c)
    }

    /// [`Q31::new`] (`c = 0`) and [`Q31::with_offset`]: the constants for `x + c`.
    #[inline(always)]
    fn offset_by(q: QuantizedMultiplier, c: i32) -> Option<Q31> {
        let right = (-q.shift).max(0) as u32;
        if right > 31 || q.multiplier == i32::MIN {
            return None;
        }
        let left = q.shift.clamp(0, 31) as i64;
        let nudge = if right == 0 { 1i64 << 30 } else { (1i64 << 30) + (1i64 << (30 + right)) };
        // |c m| < 2^62 and the nudge is at most 2^61 + 2^30: no 64-bit overflow.
        let cm = c as i64 * q.multiplier as i64;
        // SAFETY: register set-ups only (SSE2 / AVX-512 F broadcasts, no memory access); callers
        // are target-feature functions of AVX-512 F.
        unsafe {
            Some(Q31 {
                m: _mm512_set1_epi64(q.multiplier as i64),
                left: _mm_set_epi64x(0, left),
                has_left: left != 0,
                no_right: right == 0,
                nudge: _mm512_set1_epi64(nudge + cm),
                negative_below: _mm512_set1_epi64(-(1i64 << 30) - cm),
                away: _mm512_set1_epi64(1i64 << 31),
                right: _mm_set_epi64x(0, right.saturating_sub(1) as i64),
            })
        }
    }

    /// `x * 2^left` (wrapping), SRDHM by the multiplier, `RoundingDivideByPOT` by `right`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, x: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/BW/VL/DQ are present (the caller's precondition).
        unsafe {
            match (self.has_left, self.no_right) {
                (true, true) => self.apply_as::<true, true>(x),
                (true, false) => self.apply_as::<true, false>(x),
                (false, true) => self.apply_as::<false, true>(x),
                (false, false) => self.apply_as::<false, false>(x),
            }
        }
    }

    /// `(left shift above 0, right shift 0)`, for callers that pick [`Q31::apply_as`] once.
    pub(super) fn form(&self) -> (bool, bool) {
        (self.has_left, self.no_right)
    }

    /// [`Q31::apply`] with its [`Q31::form`] `(LEFT, NO_RIGHT)` known to the caller, which then
    /// branches once per loop rather than per vector.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VL/DQ; `(LEFT, NO_RIGHT)` is [`Q31::form`].
    #[inline(always)]
    pub(super) unsafe fn apply_as<const LEFT: bool, const NO_RIGHT: bool>(&self, x: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/BW/VL/DQ are present (the caller's precondition).
        unsafe {
            let a = if LEFT { _mm512_sll_epi32(x, self.left) } else { x };
            let (pe, po) = mul_wide(a, self.m);
            let (e, o) = (_mm512_add_epi64(pe, self.nudge), _mm512_add_epi64(po, self.nudge));
            if NO_RIGHT {
                return high_halves(_mm512_add_epi64(e, e), _mm512_add_epi64(o, o));
            }
            let e = _mm512_mask_sub_epi64(e, _mm512_cmplt_epi64_mask(pe, self.negative_below), e, self.away);
            let o = _mm512_mask_sub_epi64(o, _mm512_cmplt_epi64_mask(po, self.negative_below), o, self.away);
            _mm512_sra_epi32(high_halves(e, o), self.right)
        }
    }
}

/// The high 32 bits of each 64-bit lane of `even` (even-lane results) and of `odd` (odd-lane
/// results), interleaved back into sixteen 32-bit lanes: one `vpshufd` merged under a mask.
#[inline(always)]
unsafe fn high_halves(even: __m512i, odd: __m512i) -> __m512i {
    // SAFETY: AVX-512 F is present (the caller's precondition).
    unsafe { _mm512_mask_shuffle_epi32::<_MM_PERM_CDAB>(odd, 0x5555, even) }
}

/// A destination of sixteen results: `i32` codes, or their low bytes (`vpmovdb`, exact because
/// every result already lies in a range of one byte type).
pub(super) trait Store16: generic::CodeOut {
    /// # Safety
    /// `p` points to sixteen writable elements; the CPU has AVX-512 F/BW/VL/DQ.
    unsafe fn store(p: *mut Self, v: __m512i);
    /// The lanes of `k` only (the others are neither written nor faulting).
    ///
    /// # Safety
    /// The lanes of `k` are writable elements from `p` on; the CPU has AVX-512 F/BW/VL/DQ.
    unsafe fn store_masked(p: *mut Self, k: __mmask16, v: __m512i);
    /// The destination as bytes, when it is (then [`requantize`] may narrow four vectors at once).
    fn bytes(out: &mut [Self]) -> Option<&mut [u8]>;
}

impl Store16 for i32 {
    #[inline(always)]
    unsafe fn store(p: *mut i32, v: __m512i) {
        // SAFETY: the caller's precondition (sixteen writable i32, AVX-512 F).
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut i32, k: __mmask16, v: __m512i) {
        // SAFETY: the caller's precondition (the lanes of `k` are writable).
        unsafe { _mm512_mask_storeu_epi32(p.cast(), k, v) }
    }
    fn bytes(_: &mut [i32]) -> Option<&mut [u8]> {
        None
    }
}

impl Store16 for u8 {
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: __m512i) {
        // SAFETY: the caller's precondition (sixteen writable bytes, AVX-512 F).
        unsafe { _mm_storeu_si128(p.cast(), _mm512_cvtepi32_epi8(v)) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut u8, k: __mmask16, v: __m512i) {
        // SAFETY: the caller's precondition (the bytes of `k`'s lanes are writable).
        unsafe { _mm512_mask_cvtepi32_storeu_epi8(p.cast(), k, v) }
    }
    fn bytes(out: &mut [u8]) -> Option<&mut [u8]> {
        Some(out)
    }
}

impl Map<__m512i> for Q31 {
    #[inline(always)]
    unsafe fn apply(&self, x: __m512i) -> __m512i {
        // SAFETY: AVX-512 F/BW/VL/DQ are present (the caller's precondition).
        unsafe { Q31::apply(self, x) }
    }
}

/// Sixty-four unclamped `i32` results `r` to bytes `clamp(r + z, lo, hi)` with saturating packs
/// instead of a clamp and a `vpmovdb` per vector: `vpackssdw` (to `i16`, saturating), `vpaddsw`
/// of `z`, `vpacksswb` / `vpackuswb` (to the byte type, saturating), `vpermd` (the packs work per
/// 128-bit lane), then `vpmaxsb`/`vpminsb` (or the unsigned pair) where `[lo, hi]` is narrower
/// than the byte type. Exact for every `i32` `r` and `|z| <= 255`: where `r` lies in `i16`,
/// `sat16(r + z)` differs from `r + z` only beyond `+-32767`, where the byte saturation gives
/// the same bound; where `r > 32767`, `sat16(r) + z >= 32512` is above every byte, as `r + z`
/// is (and symmetrically below `-32768`). The final clamp to `[lo, hi]` inside the byte type
/// then equals the reference's clamp of `r + z`.
pub(super) struct Narrow64<const SIGNED: bool> {
    z: __m512i,
    lo: __m512i,
    hi: __m512i,
    clamp: bool,
    order: __m512i,
}

impl<const SIGNED: bool> Narrow64<SIGNED> {
    /// # Safety
    /// The CPU has AVX-512 F/BW.
    #[inline(always)]
    pub(super) unsafe fn new(z: i32, lo: i32, hi: i32) -> Narrow64<SIGNED> {
        let full = if SIGNED { (-128, 127) } else { (0, 255) };
        // SAFETY: broadcasts only (AVX-512 F/BW, the caller's precondition).
        unsafe {
            Narrow64 {
                z: _mm512_set1_epi16(z as i16),
                lo: _mm512_set1_epi8(lo as i8),
                hi: _mm512_set1_epi8(hi as i8),
                clamp: (lo, hi) != full,
                // After the packs, 128-bit lane j holds dwords (v0_j, v1_j, v2_j, v3_j): dword
                // 4j + k belongs at 4k + j.
                order: _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, v: [__m512i; 4]) -> __m512i {
        // SAFETY: register operations only (AVX-512 F/BW, the caller's precondition).
        unsafe { self.clamped(_mm512_permutexvar_epi32(self.order, self.packed(v))) }
    }

    /// As [`Narrow64::apply`] for results laid out the way the packs leave them: 128-bit lane
    /// `j` of `v[k]` holds the results of bytes `16 j + 4 k .. 16 j + 4 k + 4` (no `vpermd`).
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW.
    #[inline(always)]
    pub(super) unsafe fn apply_lane_order(&self, v: [__m512i; 4]) -> __m512i {
        // SAFETY: register operations only (AVX-512 F/BW, the caller's precondition).
        unsafe { self.clamped(self.packed(v)) }
    }

    /// The saturating packs with `z` added in `i16`.
    #[inline(always)]
    unsafe fn packed(&self, v: [__m512i; 4]) -> __m512i {
        // SAFETY: register operations only (AVX-512 F/BW, the caller's precondition).
        unsafe {
            let w01 = _mm512_adds_epi16(_mm512_packs_epi32(v[0], v[1]), self.z);
            let w23 = _mm512_adds_epi16(_mm512_packs_epi32(v[2], v[3]), self.z);
            if SIGNED { _mm512_packs_epi16(w01, w23) } else { _mm512_packus_epi16(w01, w23) }
        }
    }

    /// The clamp to `[lo, hi]` where it is narrower than the byte type.
    #[inline(always)]
    unsafe fn clamped(&self, b: __m512i) -> __m512i {
        // SAFETY: register operations only (AVX-512 F/BW, the caller's precondition).
        unsafe {
            match (self.clamp, SIGNED) {
                (false, _) => b,
                (true, true) => _mm512_min_epi8(_mm512_max_epi8(b, self.lo), self.hi),
                (true, false) => _mm512_min_epu8(_mm512_max_epu8(b, self.lo), self.hi),
            }
        }
    }
}

impl lanes::NarrowBytes for Avx512 {
    type V = __m512i;

    /// 64 codes per step.
    #[inline(always)]
    unsafe fn narrow_bytes<M: Map<__m512i>, const SIGNED: bool>(
        map: &M,
        z: i32,
        lo: i32,
        hi: i32,
        acc: &[i32],
        out: &mut [u8],
    ) -> usize {
        // SAFETY: broadcasts (the caller's AVX-512 F/BW).
        let narrow = unsafe { Narrow64::<SIGNED>::new(z, lo, hi) };
        let (blocks, _) = acc.as_chunks::<64>();
        let (oblocks, _) = out.as_chunks_mut::<64>();
        for (a, o) in blocks.iter().zip(oblocks) {
            super::prefetch::<_, 4>(a);
            super::prefetch_w::<_, 1>(o);
            let p = a.as_ptr();
            // SAFETY: `a` is 64 readable i32 (four 16-lane loads inside it) and `o` 64 writable
            // bytes; the CPU features are the caller's contract.
            unsafe {
                let v = [
                    map.apply(_mm512_loadu_si512(p.cast())),
                    map.apply(_mm512_loadu_si512(p.add(16).cast())),
                    map.apply(_mm512_loadu_si512(p.add(32).cast())),
                    map.apply(_mm512_loadu_si512(p.add(48).cast())),
                ];
                _mm512_storeu_si512(o.as_mut_ptr().cast(), narrow.apply(v));
            }
        }
        blocks.len() * 64
    }
}

pub(super) struct Avx512;

impl<O: Store16> RequantDriver<O> for Avx512 {
    type V = __m512i;

    /// Sixteen elements per iteration, the tail with masks.
    #[inline(always)]
    unsafe fn run<M: Map<__m512i>>(map: &M, _: Requant<'_>, acc: &[i32], out: &mut [O]) {
        let (blocks, _) = acc.as_chunks::<16>();
        let (oblocks, _) = out.as_chunks_mut::<16>();
        for (a, o) in blocks.iter().zip(oblocks) {
            // One cache line of accumulators per block: fetched ahead, as the streaming kernels do.
            super::prefetch::<_, 1>(a);
            super::prefetch_w::<_, 1>(o);
            // SAFETY: `a` is 16 readable i32 and `o` 16 writable outputs; AVX-512 F is present
            // (the caller's contract).
            unsafe { O::store(o.as_mut_ptr(), map.apply(_mm512_loadu_si512(a.as_ptr().cast()))) };
        }
        let done = blocks.len() * 16;
        let n = acc.len() - done;
        if n > 0 {
            let k: __mmask16 = (1u32 << n).wrapping_sub(1) as __mmask16;
            // SAFETY: the masked load and store touch only the `n < 16` lanes inside both slices
            // (masked-off lanes are neither read nor written and cannot fault).
            unsafe {
                let x = _mm512_maskz_loadu_epi32(k, acc.as_ptr().add(done).cast());
                O::store_masked(out.as_mut_ptr().add(done), k, map.apply(x));
            }
        }
    }

    #[inline(always)]
    unsafe fn shift64(m: i32, t: u32, lo: i32, hi: i32, q: Requant<'_>, acc: &[i32], out: &mut [O]) {
        // SAFETY: register set-ups, then `run`, under this function's contract.
        unsafe {
            let t = t as i64;
            let map = Shift64 {
                m: _mm512_set1_epi64(m as i64),
                round: _mm512_set1_epi64(1i64 << (t - 1)),
                t: _mm_set_epi64x(0, t),
                lo: _mm512_set1_epi64(lo as i64),
                hi: _mm512_set1_epi64(hi as i64),
                z: _mm512_set1_epi32(q.zero_point),
            };
            <Self as RequantDriver<O>>::run(&map, q, acc, out)
        }
    }
}

/// `out[i] = r.apply(acc[i], zero_point, range)`, as `i32` or as the code's byte (then
/// `range` lies inside one byte type's); see [`crate::arch::lanes`].
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; `out.len() == acc.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn requantize<O: Store16>(acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [O]) {
    // Bytes from the float and double-rounding multipliers: four vectors narrowed at once
    // ([`lanes::requantize_bytes_wide`]), the rest by the loops below.
    let mut done = 0;
    if acc.len() >= 64 {
        if let Some(bytes) = O::bytes(out) {
            // SAFETY: the CPU features are this function's contract; equal lengths.
            done = unsafe { lanes::requantize_bytes_wide::<Avx512>(acc, r, zero_point, range, bytes) };
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::requantize::<Avx512, O>(&acc[done..], r, zero_point, range, &mut out[done..]) }
}
