//! AVX-512 QAdd / QSub / QMul on 8-bit codes: the kernels of [`crate::arch::lanes`] on sixteen
//! i32 lanes (`__m512i`), bit for bit with `quantproof_reference::elementwise::BinaryKernel::apply`.
//!
//! Codes are widened with `vpmovsxbd` / `vpmovzxbd` and narrowed by truncation (`vpmovdb`),
//! which is exact because every result already lies in the code range; tails run with masks.
//! Rounding to nearest even is `vcvtps2dq` with embedded rounding; the double-rounding multiply is
//! [`Q31`], shared with requantization.
//!
//! TFLite's Add on CPUs with VBMI and VNNI has its own loop ([`tflite_add`]): each input's
//! rescaling, a function of one code, is split into a linear part computed with `vpdpbusd` and
//! a residue of one byte looked up with `vpermi2b`, 64 codes per step, instead of two gathers of
//! 32-bit table entries per 16 codes.

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
    const DIVIDE_BY_FMA: bool = true;
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
        fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 = _mm512_fmadd_ps;
        fn fnmadd(a: __m512, b: __m512, c: __m512) -> __m512 = _mm512_fnmadd_ps;
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
    // SAFETY: AVX-512 F/BW/VL/DQ are this function's contract.
    let done = unsafe { tflite_add::run(k, signedness, a, b, out) };
    let (a, b, out) = (&a[done..], &b[done..], &mut out[done..]);
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes::binary_bytes::<Avx512>(k, signedness, a, b, out) }
}

/// TFLite's Add with VBMI and VNNI, 64 codes per step.
///
/// Each input's rescaling `t(q) = MBQM((q - z) << 20, m)` is a function of one code, close to
/// linear in it. With `u = q - qmin` (the byte itself for `u8` codes, the byte with its top bit
/// flipped for `i8`), [`Linear::of`] writes the table the reference's own primitive fills as
/// `t = u s + c + e(u)` exactly, with an integer slope `s` and a residue `e` of one byte (the
/// residue is at most about 66 in magnitude: half the slope's rounding over half the codes, plus
/// the table's own rounding, and the construction checks it). Per 16 lanes, each 32-bit lane
/// holds the four bytes `(u_a, u_b, e_a + 128, e_b + 128)`, and three `vpdpbusd` with the signed
/// base-256 digits of the two slopes, chained by shifts of 8, give
/// `u_a s_a + u_b s_b + e_a + e_b + 256` (wrapping adds and shifts: exact modulo 2^32, and the
/// value fits `i32`, which the construction checks); the constant `c_a + c_b - 256` is folded
/// into the output multiplier ([`Q31::with_offset`]), so the lanes then hold `MBQM(t_a + t_b,
/// m_y)`, the reference's raw result. The residues come from two `vpermi2b` and a blend per
/// 64 codes; the lanes are interleaved with byte and word unpacks, whose order the saturating
/// packs of [`Narrow64::apply_lane_order`] undo.
mod tflite_add {
    use super::*;
    use crate::arch::lanes::{input_table, TFLITE_ADD_TABLES_FROM};

    /// `t[u] = u * slope + offset + residue[u]` for every `u` in `0..=255`.
    pub(super) struct Linear {
        pub(super) slope: i32,
        pub(super) offset: i64,
        pub(super) residue: [i8; 256],
    }

    impl Linear {
        /// The slope through the table's ends (or one either side of it) with the offset that
        /// centres the residues, where they fit a byte.
        pub(super) fn of(t: &[i32; 256]) -> Option<Linear> {
            let ends = t[255] as i64 - t[0] as i64;
            let s0 = (2 * ends + 255).div_euclid(510);
            for slope in [s0, s0 - 1, s0 + 1] {
                let r: [i64; 256] = core::array::from_fn(|u| t[u] as i64 - u as i64 * slope);
                let (lo, hi) = r.iter().fold((i64::MAX, i64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                if hi - lo > 255 {
                    continue;
                }
                let offset = lo + 128;
                let mut residue = [0i8; 256];
                for (e, v) in residue.iter_mut().zip(r) {
                    *e = i8::try_from(v - offset).ok()?;
                }
                return Some(Linear { slope: i32::try_from(slope).ok()?, offset, residue });
            }
            None
        }

        /// The slope's signed base-256 digits, lowest first, where three suffice.
        pub(super) fn digits(&self) -> Option<[i8; 3]> {
            let mut v = self.slope as i64;
            let mut d = [0i8; 3];
            for x in d.iter_mut() {
                *x = v as i8;
                v = (v - *x as i64) >> 8;
            }
            (v == 0).then_some(d)
        }
    }

    /// The constants of one call.
    struct Prepared {
        /// `e + 128` per input, as `u8` tables in `vpermi2b` order.
        residue_a: [u8; 256],
        residue_b: [u8; 256],
        /// Weight dwords: bytes `(digit_a, digit_b, 1, 1)` for the lowest digit, `(digit_a,
        /// digit_b, 0, 0)` for the two above it.
        weights: [i32; 3],
        my: Q31,
        /// `i8` codes (their bytes' top bit flipped to give `u`).
        signed: bool,
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/VL/DQ.
    unsafe fn prepare(k: &BinaryKernel, s: Signedness) -> Option<(Prepared, i32, i32, i32)> {
        let BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } = *k else { return None };
        if !(-255..=255).contains(&zy) {
            return None;
        }
        let flip = if s == Signedness::Signed { 0x80 } else { 0 };
        let by_u = |t: [i32; 256]| -> [i32; 256] { core::array::from_fn(|u| t[u ^ flip]) };
        // SAFETY: AVX-512 F/BW/VL/DQ are this function's contract.
        let table = |z, m| unsafe { vector_table(z, left_shift, m, s) }.unwrap_or_else(|| input_table(z, left_shift, m, s));
        let (ta, tb) = (by_u(table(za, ma)), by_u(table(zb, mb)));
        // The reference adds the two rescaled codes in i32: keep to sums that fit.
        let big = |t: &[i32; 256]| t.iter().map(|&v| (v as i64).abs()).max().unwrap_or(0);
        if big(&ta) + big(&tb) > i32::MAX as i64 {
            return None;
        }
        let (la, lb) = (Linear::of(&ta)?, Linear::of(&tb)?);
        let (da, db) = (la.digits()?, lb.digits()?);
        // The lanes' value `u_a s_a + u_b s_b + e_a + e_b + 256` must fit i32 (it does for
        // every table of `i32` entries with these residues; checked all the same).
        if 255 * ((la.slope as i64).abs() + (lb.slope as i64).abs()) + 512 > i32::MAX as i64 {
            return None;
        }
        let offset = i32::try_from(la.offset + lb.offset - 256).ok()?;
        let my = Q31::with_offset(my, offset)?;
        let word = |x: i8, y: i8, e: u8| i32::from_le_bytes([x as u8, y as u8, e, e]);
        let bias = |l: &Linear| -> [u8; 256] { core::array::from_fn(|u| (l.residue[u] as i32 + 128) as u8) };
        let p = Prepared {
            residue_a: bias(&la),
            residue_b: bias(&lb),
            weights: [word(da[0], db[0], 1), word(da[1], db[1], 0), word(da[2], db[2], 0)],
            my,
            signed: s == Signedness::Signed,
        };
        Some((p, zy, lo, hi))
    }

    /// The leading whole 64-code steps of `k` where it is TFLite's Add and the CPU has VBMI and
    /// VNNI; returns how many codes were written (0 otherwise).
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL/DQ.
    pub(super) unsafe fn run(k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) -> usize {
        let n = a.len().min(b.len()).min(out.len()) / 64 * 64;
        if n < TFLITE_ADD_TABLES_FROM || !vbmi_vnni() {
            return 0;
        }
        // SAFETY: AVX-512 F/BW/VL/DQ are this function's contract.
        let Some((p, zy, lo, hi)) = (unsafe { prepare(k, s) }) else { return 0 };
        let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
        // SAFETY: AVX-512 F/BW/VL/DQ are this function's contract, VBMI and VNNI were detected
        // just above; the slices have one length, a multiple of 64.
        unsafe {
            match (lo < 0, p.my.form().1) {
                (true, true) => steps::<true, true>(&p, zy, lo, hi, a, b, out),
                (true, false) => steps::<true, false>(&p, zy, lo, hi, a, b, out),
                (false, true) => steps::<false, true>(&p, zy, lo, hi, a, b, out),
                (false, false) => steps::<false, false>(&p, zy, lo, hi, a, b, out),
            }
        }
        n
    }

    pub(super) fn vbmi_vnni() -> bool {
        crate::isa::Extension::Avx512Vbmi.is_available() && crate::isa::Extension::Avx512Vnni.is_available()
    }

    /// The 256-entry byte table `t` at `idx`: entries 0..127 and 128..255 by `vpermi2b` on the
    /// index's low seven bits, picked by its top bit.
    #[inline(always)]
    unsafe fn look(t: &[__m512i; 4], idx: __m512i) -> __m512i {
        // SAFETY: AVX-512 BW and VBMI (the callers' target features).
        unsafe {
            let low = _mm512_permutex2var_epi8(t[0], idx, t[1]);
            let high = _mm512_permutex2var_epi8(t[2], idx, t[3]);
            _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high)
        }
    }

    /// `input_table` on sixteen lanes at a time with [`Q31`] (equal to the reference's primitive,
    /// which the requantization tests prove on every shift): 16 vector steps where the scalar
    /// table took 256 calls. `None` where `Q31` refuses the multiplier.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL/DQ.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    unsafe fn vector_table(z: i32, left_shift: u32, m: QuantizedMultiplier, s: Signedness) -> Option<[i32; 256]> {
        if left_shift > 31 {
            return None;
        }
        let q = Q31::new(m)?;
        let mut t = [0i32; 256];
        let (first, shift) = (_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm_set_epi64x(0, left_shift as i64));
        for (i, chunk) in t.chunks_exact_mut(16).enumerate() {
            // SAFETY: register arithmetic and one 16-lane store into `chunk` (16 i32); AVX-512 F.
            unsafe {
                let bytes = _mm512_add_epi32(first, _mm512_set1_epi32(16 * i as i32));
                // The code of each byte: the byte itself, or its i8 value.
                let codes = match s {
                    Signedness::Unsigned => bytes,
                    Signedness::Signed => _mm512_srai_epi32::<24>(_mm512_slli_epi32::<24>(bytes)),
                };
                let x = _mm512_sll_epi32(_mm512_sub_epi32(codes, _mm512_set1_epi32(z)), shift);
                _mm512_storeu_si512(chunk.as_mut_ptr().cast(), q.apply(x));
            }
        }
        Some(t)
    }

    /// The four 64-byte quarters of a 256-byte table.
    #[inline(always)]
    unsafe fn table(t: &[u8; 256]) -> [__m512i; 4] {
        // SAFETY: four 64-byte loads inside the 256 bytes; AVX-512 F (the callers' features).
        unsafe {
            let p = t.as_ptr();
            [
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(64).cast()),
                _mm512_loadu_si512(p.add(128).cast()),
                _mm512_loadu_si512(p.add(192).cast()),
            ]
        }
    }

    /// `u_a s_a + u_b s_b + (e_a + 128) + (e_b + 128)` from lanes of bytes `(u_a, u_b, e_a + 128,
    /// e_b + 128)`: the highest digits' products, shifted by 8, plus the middle ones', shifted
    /// by 8, plus the lowest ones' and the residues (wrapping, exact modulo 2^32).
    #[inline(always)]
    unsafe fn rescaled_sum(x: __m512i, w: &[__m512i; 3]) -> __m512i {
        // SAFETY: AVX-512 F and VNNI (the callers' features).
        unsafe {
            let v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), x, w[2]);
            let v = _mm512_dpbusd_epi32(_mm512_slli_epi32::<8>(v), x, w[1]);
            _mm512_dpbusd_epi32(_mm512_slli_epi32::<8>(v), x, w[0])
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/VL/DQ, VBMI and VNNI; the three slices have one length, a
    /// multiple of 64; `|zy| <= 255`; `OUT_SIGNED` is `lo < 0`; `(false, NO_RIGHT)` is `p.my.form()`
    /// (`Q31::with_offset` has no left shift).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni")]
    unsafe fn steps<const OUT_SIGNED: bool, const NO_RIGHT: bool>(p: &Prepared, zy: i32, lo: i32, hi: i32, a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: 256-byte tables (four 64-byte loads each), broadcasts; AVX-512 F/BW.
        let (ta, tb, w, flip) = unsafe {
            (
                table(&p.residue_a),
                table(&p.residue_b),
                [_mm512_set1_epi32(p.weights[0]), _mm512_set1_epi32(p.weights[1]), _mm512_set1_epi32(p.weights[2])],
                // The codes' bytes to `u = q - qmin`: the top bit flipped for i8 (`qmin = -128`).
                _mm512_set1_epi8(if p.signed { -128 } else { 0 }),
            )
        };
        // SAFETY: broadcasts (AVX-512 F/BW, this function's contract).
        let narrow = unsafe { Narrow64::<OUT_SIGNED>::new(zy, lo, hi) };
        let (ablocks, _) = a.as_chunks::<64>();
        let (bblocks, _) = b.as_chunks::<64>();
        let (oblocks, _) = out.as_chunks_mut::<64>();
        for ((x, y), o) in ablocks.iter().zip(bblocks).zip(oblocks.iter_mut()) {
            // SAFETY: `x`, `y` are 64 readable bytes and `o` 64 writable ones; the CPU features
            // are this function's contract.
            unsafe {
                let ua = _mm512_xor_si512(_mm512_loadu_si512(x.as_ptr().cast()), flip);
                let ub = _mm512_xor_si512(_mm512_loadu_si512(y.as_ptr().cast()), flip);
                let (ea, eb) = (look(&ta, ua), look(&tb, ub));
                let (u_lo, u_hi) = (_mm512_unpacklo_epi8(ua, ub), _mm512_unpackhi_epi8(ua, ub));
                let (e_lo, e_hi) = (_mm512_unpacklo_epi8(ea, eb), _mm512_unpackhi_epi8(ea, eb));
                let lanes = [
                    _mm512_unpacklo_epi16(u_lo, e_lo),
                    _mm512_unpackhi_epi16(u_lo, e_lo),
                    _mm512_unpacklo_epi16(u_hi, e_hi),
                    _mm512_unpackhi_epi16(u_hi, e_hi),
                ];
                let r = [
                    p.my.apply_as::<false, NO_RIGHT>(rescaled_sum(lanes[0], &w)),
                    p.my.apply_as::<false, NO_RIGHT>(rescaled_sum(lanes[1], &w)),
                    p.my.apply_as::<false, NO_RIGHT>(rescaled_sum(lanes[2], &w)),
                    p.my.apply_as::<false, NO_RIGHT>(rescaled_sum(lanes[3], &w)),
                ];
                _mm512_storeu_si512(o.as_mut_ptr().cast(), narrow.apply_lane_order(r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::generic;
    use crate::isa::Isa;
    use quantproof_reference::affine::{Activation, Affine};
    use quantproof_reference::elementwise::{BinaryOp, BinaryParams};
    use quantproof_reference::profile::ArithRule;
    use quantproof_reference::rng::Rng;

    /// The lane kernels alone (TFLite's Add through two gathers), without the VBMI loop.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    unsafe fn lanes_only(k: &BinaryKernel, s: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: this function's contract.
        unsafe { lanes::binary_bytes::<Avx512>(k, s, a, b, out) }
    }

    /// Every pair of codes under drawn TFLite Add and Sub parameters (equal scales, ratios of 2
    /// and 1/2, log-uniform ones over 2^-14..2^4, zero points anywhere, each fused activation),
    /// i8 and u8: the VBMI/VNNI loop takes every whole step (its decomposition exists for every
    /// multiplier TFLite makes) and equals the reference, and so do the lane kernels it
    /// replaces, which still run where the CPU lacks VBMI or VNNI.
    #[test]
    fn tflite_add_loops_equal_the_reference_on_every_pair() {
        if !Isa::Avx512.is_available() {
            println!("skipping avx512: not available on this CPU");
            return;
        }
        let fast = tflite_add::vbmi_vnni();
        if !fast {
            println!("skipping the avx512 vbmi+vnni TFLite add loop: not available on this CPU");
        }
        let a: Vec<u8> = (0..65536).map(|i| (i % 256) as u8).collect();
        let b: Vec<u8> = (0..65536).map(|i| (i / 256) as u8).collect();
        let mut rng = Rng::new(0x7F11);
        let mut runs = 0;
        for s in [Signedness::Signed, Signedness::Unsigned] {
            let (qmin, qmax) = if s == Signedness::Signed { (-128, 127) } else { (0, 255) };
            for case in 0..48 {
                let mut scale = || 2f64.powf(rng.unit() * 18.0 - 14.0) as f32;
                let (sa, sy) = (scale(), scale());
                let sb = match case % 4 {
                    0 => sa,
                    1 => 2.0 * sa,
                    2 => sa / 2.0,
                    _ => scale(),
                };
                let mut z = || rng.range_i64(qmin, qmax) as i32;
                let (za, zb, zy) = (z(), z(), z());
                let activation = [Activation::None, Activation::Relu, Activation::Relu6, Activation::ReluN1To1][case % 4];
                let p = BinaryParams { a: Affine::new(sa, za), b: Affine::new(sb, zb), y: Affine::new(sy, zy), activation };
                for op in [BinaryOp::Add, BinaryOp::Sub] {
                    let k = match s {
                        Signedness::Signed => BinaryKernel::new::<i8>(op, ArithRule::Tflite, &p),
                        Signedness::Unsigned => BinaryKernel::new::<u8>(op, ArithRule::Tflite, &p),
                    };
                    let Ok(k) = k else { continue };
                    let code = |x: u8| generic::code_of_byte(x, s);
                    let want: Vec<u8> = a.iter().zip(&b).map(|(&x, &y)| k.apply(code(x), code(y)) as u8).collect();
                    let mut got = vec![0u8; a.len()];
                    if fast {
                        // SAFETY: AVX-512 was detected above; equal lengths.
                        let n = unsafe { tflite_add::run(&k, s, &a, &b, &mut got) };
                        assert_eq!(n, a.len(), "the VBMI loop declined {k:?}");
                        assert!(got == want, "VBMI loop, {k:?}");
                    }
                    // SAFETY: as above.
                    unsafe { lanes_only(&k, s, &a, &b, &mut got) };
                    assert!(got == want, "lane kernels, {k:?}");
                    runs += 1;
                }
            }
        }
        assert!(runs > 150, "{runs} kernels checked");
    }
}
