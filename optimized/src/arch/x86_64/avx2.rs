/*!
AVX2 kernels (8 f32 lanes; the token also proves FMA, which only the float64 logarithm of
`kl_terms` uses: its result is certified, see `crate::arch::ln`).

Main loops take 32 elements per iteration (four vectors, one 32-byte store of codes), then
single vectors of 8, then hand the last `n % 8` elements to the generic scalar functions (AVX2
has no byte-masked stores, and the scalar functions are the specification). See the parent
module for why every result has the scalar kernel's bits.

Half to even converts with `vcvtps2dq`, which rounds under MXCSR: Rust code runs with the default
floating-point environment (round to nearest even), so it is the IEEE `roundTiesToEven`. Floor
rounds with `vroundps` and converts exactly with `vcvttps2dq`. Comparisons produce all-ones
lanes, that is `-1` as i32: half away from zero is `cvtt(c) - (d >= 0.5) + (d <= -0.5)`.
*/

use super::avx2_requant;
use super::{
    as_bools, i8_bytes, packs_exactly, prefetch, prefetch_w, scalar_quantize, with_rule, AWAY, EVEN, FLOOR, TRUNC,
};
use crate::arch::generic::{self, Scalar};
use crate::arch::ln;
use crate::isa::Isa;
use crate::kernels::{kl_term, HistBins, Kernels, Params, PerElement, Rule, Uniform, LN_GUARD_ULPS};
use crate::kernels::{LutKernels, QuantizeKernels};
use core::arch::x86_64::*;
use quantproof_reference::pack::Int4;

/// Proof that this CPU has AVX2 and FMA; only [`Avx2::new`] makes one.
#[derive(Debug)]
pub struct Avx2 {
    _private: (),
}

static TOKEN: Avx2 = Avx2 { _private: () };

impl Avx2 {
    /// The token, when the CPU has the features (cached detection).
    pub fn new() -> Option<&'static Avx2> {
        if Isa::Avx2.is_available() {
            Some(&TOKEN)
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Slices and lanes

/// Blocks of four 8-lane arrays, single 8-lane arrays, and the last `n % 8` elements.
type Split<'a, T> = (&'a [[[T; 8]; 4]], &'a [[T; 8]], &'a [T]);
type SplitMut<'a, T> = (&'a mut [[[T; 8]; 4]], &'a mut [[T; 8]], &'a mut [T]);

/// Splits `x` into blocks of four 8-lane arrays, then single 8-lane arrays, then the last
/// `x.len() % 8` elements.
#[inline(always)]
fn blocks<T>(x: &[T]) -> Split<'_, T> {
    let (v, tail) = x.as_chunks::<8>();
    let (b, v) = v.as_chunks::<4>();
    (b, v, tail)
}

#[inline(always)]
fn blocks_mut<T>(x: &mut [T]) -> SplitMut<'_, T> {
    let (v, tail) = x.as_chunks_mut::<8>();
    let (b, v) = v.as_chunks_mut::<4>();
    (b, v, tail)
}

/// The same split for byte outputs of 32 elements per block.
#[inline(always)]
fn byte_blocks_mut(x: &mut [u8]) -> (&mut [[u8; 32]], &mut [[u8; 8]], &mut [u8]) {
    let n = x.len() - x.len() % 32;
    let (b, rest) = x.split_at_mut(n);
    let (v, tail) = rest.as_chunks_mut::<8>();
    (b.as_chunks_mut::<32>().0, v, tail)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld(x: &[f32; 8]) -> __m256 {
    // SAFETY: `x` is 8 readable f32; unaligned loads are allowed.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld_i32(x: &[i32; 8]) -> __m256i {
    // SAFETY: `x` is 8 readable i32.
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn st(o: &mut [f32; 8], v: __m256) {
    // SAFETY: `o` is 8 writable f32.
    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn st32(o: &mut [u8; 32], v: __m256i) {
    // SAFETY: `o` is 32 writable bytes.
    unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) }
}

/// Stores the low 8 bytes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn st8(o: &mut [u8; 8], v: __m256i) {
    // SAFETY: `o` is 8 writable bytes; movq writes exactly 8.
    unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), _mm256_castsi256_si128(v)) }
}

/// Eight codes, sign- or zero-extended to i32.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld_codes<const SIGNED: bool>(q: &[u8; 8]) -> __m256i {
    // SAFETY: `q` is 8 readable bytes; movq reads exactly 8.
    let b = unsafe { _mm_loadl_epi64(q.as_ptr().cast()) };
    if SIGNED {
        _mm256_cvtepi8_epi32(b)
    } else {
        _mm256_cvtepu8_epi32(b)
    }
}

/// Lanes of `a` or `b` that are NaN (all-ones).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn unord(a: __m256, b: __m256) -> __m256 {
    _mm256_cmp_ps::<_CMP_UNORD_Q>(a, b)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn any(m: __m256) -> bool {
    _mm256_movemask_ps(m) != 0
}

/// The low byte of each i32 lane, in order, in the low 8 bytes (truncation, like `as u8`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn low_bytes(q: __m256i) -> __m256i {
    let pick = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, pick), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1))
}

/// Four vectors of all-ones/zero lanes, packed pairwise to 16 bits (`packs_epi32(m0, m1)`,
/// `packs_epi32(m2, m3)`), as 32 bytes of 1/0 in order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn mask_bytes(ab: __m256i, cd: __m256i) -> __m256i {
    let p = _mm256_and_si256(_mm256_packs_epi16(ab, cd), _mm256_set1_epi8(1));
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

// ---------------------------------------------------------------------------------------------
// The arithmetic

/// `x / d` or `x * d`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn apply<const DIV: bool>(x: __m256, d: __m256) -> __m256 {
    if DIV {
        _mm256_div_ps(x, d)
    } else {
        _mm256_mul_ps(x, d)
    }
}

/// `clamp(round(v), lo, hi)` as i32, computed as `round(clamp(v, lo, hi))` (see the parent
/// module). A NaN `v` gives `lo` (`vmaxps` returns its second operand on NaN).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn code<const DIV: bool, const MODE: u8>(x: __m256, d: __m256, lo: __m256, hi: __m256) -> __m256i {
    let c = _mm256_min_ps(_mm256_max_ps(apply::<DIV>(x, d), lo), hi);
    match MODE {
        EVEN => _mm256_cvtps_epi32(c),
        FLOOR => _mm256_cvttps_epi32(_mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c)),
        TRUNC => _mm256_cvttps_epi32(c),
        AWAY => {
            // t = trunc(c), d = c - t (exact, sign of c); +1 where d >= 0.5, -1 where d <= -0.5
            // (true compares are -1).
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(c);
            let d = _mm256_sub_ps(c, t);
            let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(d, _mm256_set1_ps(0.5)));
            let dn = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(d, _mm256_set1_ps(-0.5)));
            _mm256_add_epi32(_mm256_sub_epi32(_mm256_cvttps_epi32(c), up), dn)
        }
        _ => {
            // UP: f = floor(c), +1 where c - f >= 0.5.
            let f = _mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c);
            let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_sub_ps(c, f), _mm256_set1_ps(0.5)));
            _mm256_sub_epi32(_mm256_cvttps_epi32(f), up)
        }
    }
}

/// `round(v)` in float with the reference's exact operation sequence.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn round<const MODE: u8>(v: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    match MODE {
        EVEN => _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v),
        FLOOR => _mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v),
        TRUNC => _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v),
        AWAY => {
            // t + copysign(1, v) where |v - t| >= 0.5; v - t has the sign of v, and t - 1 is
            // the same IEEE result as t + (-1).
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
            let d = _mm256_sub_ps(v, t);
            let up = _mm256_cmp_ps::<_CMP_GE_OQ>(d, _mm256_set1_ps(0.5));
            let dn = _mm256_cmp_ps::<_CMP_LE_OQ>(d, _mm256_set1_ps(-0.5));
            let r = _mm256_blendv_ps(t, _mm256_add_ps(t, one), up);
            _mm256_blendv_ps(r, _mm256_sub_ps(t, one), dn)
        }
        _ => {
            // UP: f + 1 where v - f >= 0.5.
            let f = _mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v);
            let up = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_sub_ps(v, f), _mm256_set1_ps(0.5));
            _mm256_blendv_ps(f, _mm256_add_ps(f, one), up)
        }
    }
}

/// Fake-quantized values `(clamp(round(v), lo, hi) + 0.0) * s` and the mask `lo <= round(v) <= hi`
/// (all-ones lanes). With `EQ` the mask is computed as `clamp(r) == r`, the same predicate when
/// `lo <= hi` (callers check it).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fake<const DIV: bool, const MODE: u8, const EQ: bool>(
    x: __m256,
    d: __m256,
    lo: __m256,
    hi: __m256,
    s: __m256,
) -> (__m256, __m256) {
    fake_rounded::<EQ>(round::<MODE>(apply::<DIV>(x, d)), lo, hi, s)
}

/// [`fake`] from the rounded value `r`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fake_rounded<const EQ: bool>(r: __m256, lo: __m256, hi: __m256, s: __m256) -> (__m256, __m256) {
    let c = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    let inside = if EQ {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(c, r)
    } else {
        _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(r, lo), _mm256_cmp_ps::<_CMP_LE_OQ>(r, hi))
    };
    (_mm256_mul_ps(_mm256_add_ps(c, _mm256_setzero_ps()), s), inside)
}

/// `f32(q - z) * s`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dequant(q: __m256i, z: __m256i, s: __m256) -> __m256 {
    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, z)), s)
}

// ---------------------------------------------------------------------------------------------
// Kernels

#[target_feature(enable = "avx2,fma")]
fn quantize_uniform<const SIGNED: bool, const DIV: bool, const MODE: u8>(
    x: &[f32],
    u: &Uniform,
    out: &mut [u8],
) -> bool {
    let (d, lo, hi) = (_mm256_set1_ps(u.factor), _mm256_set1_ps(u.lo), _mm256_set1_ps(u.hi));
    // Four vectors of codes already clamped to `[lo - z, hi - z]` (so `|r| < 2^15`) plus `z`
    // as bytes in order, with the byte type's full range (no second clamp).
    let full = if SIGNED { (-128, 127) } else { (0, 255) };
    // SAFETY: broadcasts; this function's target features include the narrowing's.
    let narrow = unsafe { avx2_requant::Narrow32::<SIGNED>::new(u.zero_point, full.0, full.1) };
    let z = _mm256_set1_epi32(u.zero_point);
    let mut nan = _mm256_setzero_ps();
    let (xb, xv, xt) = blocks(x);
    let (ob, ov, ot) = byte_blocks_mut(out);
    for (xs @ [x0, x1, x2, x3], o) in xb.iter().zip(ob) {
        prefetch::<_, 2>(xs);
        let (a, b, c, e) = (ld(x0), ld(x1), ld(x2), ld(x3));
        nan = _mm256_or_ps(nan, _mm256_or_ps(unord(a, b), unord(c, e)));
        let r = [
            code::<DIV, MODE>(a, d, lo, hi),
            code::<DIV, MODE>(b, d, lo, hi),
            code::<DIV, MODE>(c, d, lo, hi),
            code::<DIV, MODE>(e, d, lo, hi),
        ];
        // SAFETY: AVX2 (this function's target features).
        st32(o, unsafe { narrow.apply(r) });
    }
    for (xs, os) in xv.iter().zip(ov) {
        let a = ld(xs);
        nan = _mm256_or_ps(nan, unord(a, a));
        st8(os, low_bytes(_mm256_add_epi32(code::<DIV, MODE>(a, d, lo, hi), z)));
    }
    let tail = scalar_quantize::<SIGNED>(xt, Params::Uniform(*u), Rule { op: op::<DIV>(), mode: mode::<MODE>() }, ot);
    any(nan) | tail
}

#[target_feature(enable = "avx2,fma")]
fn quantize_per_element<const SIGNED: bool, const DIV: bool, const MODE: u8>(
    x: &[f32],
    p: &PerElement<'_>,
    out: &mut [u8],
) -> bool {
    let mut nan = _mm256_setzero_ps();
    let (x8, _) = x.as_chunks::<8>();
    let (f8, _) = p.factor.as_chunks::<8>();
    let (l8, _) = p.lo.as_chunks::<8>();
    let (h8, _) = p.hi.as_chunks::<8>();
    let (z8, _) = p.zero_point.as_chunks::<8>();
    let (o8, _) = out.as_chunks_mut::<8>();
    for (((((xs, fs), ls), hs), zs), os) in x8.iter().zip(f8).zip(l8).zip(h8).zip(z8).zip(o8) {
        let a = ld(xs);
        nan = _mm256_or_ps(nan, unord(a, a));
        let q = _mm256_add_epi32(code::<DIV, MODE>(a, ld(fs), ld(ls), ld(hs)), ld_i32(zs));
        st8(os, low_bytes(q));
    }
    let done = x.len() - x.len() % 8;
    let rule = Rule { op: op::<DIV>(), mode: mode::<MODE>() };
    let tail = scalar_quantize::<SIGNED>(
        &x[done..],
        Params::PerElement(p.slice(done, x.len() - done)),
        rule,
        &mut out[done..],
    );
    any(nan) | tail
}

#[target_feature(enable = "avx2,fma")]
fn fake_uniform<const DIV: bool, const MODE: u8>(
    x: &[f32],
    u: &Uniform,
    out: &mut [f32],
    mask: Option<&mut [u8]>,
) -> bool {
    let (d, lo, hi, s) =
        (_mm256_set1_ps(u.factor), _mm256_set1_ps(u.lo), _mm256_set1_ps(u.hi), _mm256_set1_ps(u.scale));
    let mut nan = _mm256_setzero_ps();
    let (xb, xv, xt) = blocks(x);
    let (ob, ov, ot) = blocks_mut(out);
    let (mb, mv, mt): (&mut [[u8; 32]], &mut [[u8; 8]], &mut [u8]) = match mask {
        Some(m) => byte_blocks_mut(m),
        None => (&mut [], &mut [], &mut []),
    };
    // Sixteen ymm registers: the loop tests the rounded values for NaN (they are NaN exactly
    // when x is, since the caller checked that d is finite and non-zero) and packs the masks
    // pairwise, so no input stays live across the block.
    for (i, ([x0, x1, x2, x3], os)) in xb.iter().zip(ob).enumerate() {
        let [o0, o1, o2, o3] = os;
        let (ra, rb) = (round::<MODE>(apply::<DIV>(ld(x0), d)), round::<MODE>(apply::<DIV>(ld(x1), d)));
        nan = _mm256_or_ps(nan, unord(ra, rb));
        let ((ya, ka), (yb, kb)) = (fake_rounded::<true>(ra, lo, hi, s), fake_rounded::<true>(rb, lo, hi, s));
        st(o0, ya);
        st(o1, yb);
        let kab = _mm256_packs_epi32(_mm256_castps_si256(ka), _mm256_castps_si256(kb));
        let (rc, re) = (round::<MODE>(apply::<DIV>(ld(x2), d)), round::<MODE>(apply::<DIV>(ld(x3), d)));
        nan = _mm256_or_ps(nan, unord(rc, re));
        let ((yc, kc), (ye, ke)) = (fake_rounded::<true>(rc, lo, hi, s), fake_rounded::<true>(re, lo, hi, s));
        st(o2, yc);
        st(o3, ye);
        if let Some(m) = mb.get_mut(i) {
            let kce = _mm256_packs_epi32(_mm256_castps_si256(kc), _mm256_castps_si256(ke));
            st32(m, mask_bytes(kab, kce));
        }
    }
    for (i, (xs, os)) in xv.iter().zip(ov).enumerate() {
        let a = ld(xs);
        nan = _mm256_or_ps(nan, unord(a, a));
        let (y, k) = fake::<DIV, MODE, true>(a, d, lo, hi, s);
        st(os, y);
        if let Some(m) = mv.get_mut(i) {
            let k = _mm256_and_si256(_mm256_castps_si256(k), _mm256_set1_epi32(1));
            st8(m, low_bytes(k));
        }
    }
    let rule = Rule { op: op::<DIV>(), mode: mode::<MODE>() };
    let tail = Scalar.fake_quantize(xt, Params::Uniform(*u), rule, ot, (!mt.is_empty()).then(|| as_bools(mt)));
    any(nan) | tail
}

#[target_feature(enable = "avx2,fma")]
fn fake_per_element<const DIV: bool, const MODE: u8>(
    x: &[f32],
    p: &PerElement<'_>,
    out: &mut [f32],
    mut mask: Option<&mut [u8]>,
) -> bool {
    let mut nan = _mm256_setzero_ps();
    let (x8, _) = x.as_chunks::<8>();
    let (f8, _) = p.factor.as_chunks::<8>();
    let (l8, _) = p.lo.as_chunks::<8>();
    let (h8, _) = p.hi.as_chunks::<8>();
    let (s8, _) = p.scale.as_chunks::<8>();
    let (o8, _) = out.as_chunks_mut::<8>();
    let m8: &mut [[u8; 8]] = match mask.as_deref_mut() {
        Some(m) => m.as_chunks_mut::<8>().0,
        None => &mut [],
    };
    for (i, (((((xs, fs), ls), hs), ss), os)) in x8.iter().zip(f8).zip(l8).zip(h8).zip(s8).zip(o8).enumerate() {
        let a = ld(xs);
        nan = _mm256_or_ps(nan, unord(a, a));
        let (y, k) = fake::<DIV, MODE, false>(a, ld(fs), ld(ls), ld(hs), ld(ss));
        st(os, y);
        if let Some(m) = m8.get_mut(i) {
            st8(m, low_bytes(_mm256_and_si256(_mm256_castps_si256(k), _mm256_set1_epi32(1))));
        }
    }
    let done = x.len() - x.len() % 8;
    let rule = Rule { op: op::<DIV>(), mode: mode::<MODE>() };
    let pt = Params::PerElement(p.slice(done, x.len() - done));
    let tail = Scalar.fake_quantize(&x[done..], pt, rule, &mut out[done..], mask.map(|m| as_bools(&mut m[done..])));
    any(nan) | tail
}

#[target_feature(enable = "avx2,fma")]
fn dequantize_uniform<const SIGNED: bool>(q: &[u8], u: &Uniform, out: &mut [f32]) {
    let (z, s) = (_mm256_set1_epi32(u.zero_point), _mm256_set1_ps(u.scale));
    let (qb, qv, qt) = blocks(q);
    let (ob, ov, ot) = blocks_mut(out);
    for ([q0, q1, q2, q3], os) in qb.iter().zip(ob) {
        prefetch_w::<_, 2>(os);
        let [o0, o1, o2, o3] = os;
        st(o0, dequant(ld_codes::<SIGNED>(q0), z, s));
        st(o1, dequant(ld_codes::<SIGNED>(q1), z, s));
        st(o2, dequant(ld_codes::<SIGNED>(q2), z, s));
        st(o3, dequant(ld_codes::<SIGNED>(q3), z, s));
    }
    for (qs, os) in qv.iter().zip(ov) {
        st(os, dequant(ld_codes::<SIGNED>(qs), z, s));
    }
    scalar_dequantize::<SIGNED>(qt, Params::Uniform(*u), ot);
}

#[target_feature(enable = "avx2,fma")]
fn dequantize_per_element<const SIGNED: bool>(q: &[u8], p: &PerElement<'_>, out: &mut [f32]) {
    let (q8, _) = q.as_chunks::<8>();
    let (z8, _) = p.zero_point.as_chunks::<8>();
    let (s8, _) = p.scale.as_chunks::<8>();
    let (o8, _) = out.as_chunks_mut::<8>();
    for (((qs, zs), ss), os) in q8.iter().zip(z8).zip(s8).zip(o8) {
        st(os, dequant(ld_codes::<SIGNED>(qs), ld_i32(zs), ld(ss)));
    }
    let done = q.len() - q.len() % 8;
    scalar_dequantize::<SIGNED>(&q[done..], Params::PerElement(p.slice(done, q.len() - done)), &mut out[done..]);
}

/// Pairs of codes `(c0, c1)` in the bytes of each 16-bit lane to `c0 & 15 | (c1 & 15) << 4`, in
/// the low byte of the lane: `vpmaddubsw` of the nibbles with the byte pair `(1, 16)`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pair_nibbles(c: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_and_si256(c, _mm256_set1_epi8(0x0F)), _mm256_set1_epi16(0x1001))
}

#[target_feature(enable = "avx2,fma")]
fn pack_nibbles(codes: &[i8], out: &mut [u8]) {
    let n = out.len() - out.len() % 32;
    let (cb, ct) = codes.split_at(2 * n);
    let (ob, ot) = out.split_at_mut(n);
    for ([c0, c1], o) in i8_bytes(cb).as_chunks::<32>().0.as_chunks::<2>().0.iter().zip(ob.as_chunks_mut::<32>().0) {
        // SAFETY: `c0` and `c1` are 32 readable bytes each.
        let (a, b) = unsafe { (_mm256_loadu_si256(c0.as_ptr().cast()), _mm256_loadu_si256(c1.as_ptr().cast())) };
        // packus leaves 128-bit lane l holding qwords [a_l, b_l]; reorder to a_0 a_1 b_0 b_1.
        let p = _mm256_packus_epi16(pair_nibbles(a), pair_nibbles(b));
        st32(o, _mm256_permute4x64_epi64::<0xD8>(p));
    }
    generic::pack_nibbles(ct, ot);
}

#[target_feature(enable = "avx2,fma")]
fn unpack_nibbles<const SIGNED: bool>(packed: &[u8], out: &mut [u8]) {
    let n = packed.len() - packed.len() % 16;
    let (pb, pt) = packed.split_at(n);
    let (ob, ot) = out.split_at_mut(2 * n);
    let lut = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, //
        0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,
    );
    for (p, o) in pb.as_chunks::<16>().0.iter().zip(ob.as_chunks_mut::<32>().0) {
        // SAFETY: `p` is 16 readable bytes.
        let w = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(p.as_ptr().cast()) });
        // Byte b becomes the 16-bit lane (b & 15) | (b >> 4) << 8 = (w | w << 4) & 0x0F0F.
        let t = _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16::<4>(w)), _mm256_set1_epi16(0x0F0F));
        st32(o, if SIGNED { _mm256_shuffle_epi8(lut, t) } else { t });
    }
    let ot = bytes_as_i8(ot);
    generic::unpack_nibbles(pt, if SIGNED { Int4::Signed } else { Int4::Unsigned }, ot);
}

#[target_feature(enable = "avx2,fma")]
fn min_max(x: &[f32]) -> (f32, f32, bool) {
    let mut lo = [_mm256_set1_ps(f32::INFINITY); 4];
    let mut hi = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
    let mut nan = _mm256_setzero_ps();
    let (xb, xv, xt) = blocks(x);
    for xs @ [x0, x1, x2, x3] in xb {
        prefetch::<_, 2>(xs);
        let v = [ld(x0), ld(x1), ld(x2), ld(x3)];
        nan = _mm256_or_ps(nan, _mm256_or_ps(unord(v[0], v[1]), unord(v[2], v[3])));
        for k in 0..4 {
            // vminps/vmaxps return the second operand (the accumulator) when `v` is NaN.
            lo[k] = _mm256_min_ps(v[k], lo[k]);
            hi[k] = _mm256_max_ps(v[k], hi[k]);
        }
    }
    for xs in xv {
        let v = ld(xs);
        nan = _mm256_or_ps(nan, unord(v, v));
        lo[0] = _mm256_min_ps(v, lo[0]);
        hi[0] = _mm256_max_ps(v, hi[0]);
    }
    let lo = _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3]));
    let hi = _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3]));
    let (tlo, thi, tnan) = generic::min_max(xt);
    // No lane holds NaN, so the folds below only choose among numbers.
    let (mut l, mut h) = (tlo, thi);
    for (a, b) in lanes(lo).into_iter().zip(lanes(hi)) {
        l = l.min(a);
        h = h.max(b);
    }
    (l, h, any(nan) | tnan)
}

/// The largest (`MAX`) or smallest `|x|` and whether a NaN was seen (`abs_max` / `abs_min`).
#[target_feature(enable = "avx2,fma")]
fn abs_extreme<const MAX: bool>(x: &[f32]) -> (f32, bool) {
    // |NaN| is NaN, so vmaxps / vminps keep the accumulator.
    let pick = |a: __m256, b: __m256| if MAX { _mm256_max_ps(a, b) } else { _mm256_min_ps(a, b) };
    let mut m = [if MAX { _mm256_setzero_ps() } else { _mm256_set1_ps(f32::INFINITY) }; 4];
    let mut nan = _mm256_setzero_ps();
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let (xb, xv, xt) = blocks(x);
    for xs @ [x0, x1, x2, x3] in xb {
        prefetch::<_, 2>(xs);
        let v = [ld(x0), ld(x1), ld(x2), ld(x3)];
        nan = _mm256_or_ps(nan, _mm256_or_ps(unord(v[0], v[1]), unord(v[2], v[3])));
        for k in 0..4 {
            m[k] = pick(_mm256_and_ps(v[k], abs), m[k]);
        }
    }
    for xs in xv {
        let v = ld(xs);
        nan = _mm256_or_ps(nan, unord(v, v));
        m[0] = pick(_mm256_and_ps(v, abs), m[0]);
    }
    let m = pick(pick(m[0], m[1]), pick(m[2], m[3]));
    let (tm, tnan) = if MAX { generic::abs_max(xt) } else { generic::abs_min(xt) };
    let fold = if MAX { f32::max } else { f32::min };
    (lanes(m).into_iter().fold(tm, fold), any(nan) | tnan)
}

// ---------------------------------------------------------------------------------------------
// Calibration: histogram, pairwise sum, KL terms

/// The constants of [`HistBins::index`] in vectors.
struct BinConsts {
    first: __m256,
    last: __m256,
    width: __m256,
    nf: __m256,
    step: __m256,
    one: __m256,
    nm1: __m256i,
    none: __m256i,
}

impl BinConsts {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new(b: &HistBins) -> BinConsts {
        BinConsts {
            first: _mm256_set1_ps(b.first),
            last: _mm256_set1_ps(b.last),
            width: _mm256_set1_ps(b.last - b.first),
            nf: _mm256_set1_ps(b.n as f32),
            step: _mm256_set1_ps(b.step),
            one: _mm256_set1_ps(1.0),
            nm1: _mm256_set1_epi32(b.n as i32 - 1),
            none: _mm256_set1_epi32(b.n as i32),
        }
    }
}

/// [`HistBins::index`] of 8 lanes, as in the AVX-512 kernel (see its `bin16`). Comparison
/// results are all-ones lanes (`-1`): `i + down` steps down, `i - up` steps up.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bin8(x: __m256, c: &BinConsts) -> __m256i {
    let inside = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(x, c.first), _mm256_cmp_ps::<_CMP_LE_OQ>(x, c.last));
    let f = _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(x, c.first), c.width), c.nf);
    let i = _mm256_min_epi32(_mm256_cvttps_epi32(f), c.nm1);
    let fi = _mm256_cvtepi32_ps(i);
    let below = _mm256_add_ps(_mm256_mul_ps(fi, c.step), c.first);
    let above = _mm256_add_ps(_mm256_mul_ps(_mm256_add_ps(fi, c.one), c.step), c.first);
    let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(x, below));
    let up = _mm256_andnot_si256(
        _mm256_or_si256(down, _mm256_cmpeq_epi32(i, c.nm1)),
        _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(x, above)),
    );
    let i = _mm256_sub_epi32(_mm256_add_epi32(i, down), up);
    let i = _mm256_blendv_epi8(c.none, i, _mm256_castps_si256(inside));
    // Unsigned min: whatever a lane holds, the slot is at most n.
    _mm256_min_epu32(i, c.none)
}

#[target_feature(enable = "avx2,fma")]
fn histogram<const ABS: bool>(x: &[f32], b: &HistBins, sub: &mut [u32]) {
    let c = BinConsts::new(b);
    let mut s = generic::split_sub(sub, b.n as usize + 1);
    let absm = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let load = |v: __m256| if ABS { _mm256_and_ps(v, absm) } else { v };
    let tail = generic::histogram_blocks::<8>(x, b.n, &mut s, |xv, nv| {
        let i = bin8(load(ld(xv)), &c);
        // SAFETY: `nv` is 8 writable u32.
        unsafe { _mm256_storeu_si256(nv.as_mut_ptr().cast(), i) };
    });
    let (xv, xt) = tail.as_chunks::<8>();
    let mut idx = [0u32; 8];
    for v in xv {
        // SAFETY: `idx` is 8 writable u32.
        unsafe { _mm256_storeu_si256(idx.as_mut_ptr().cast(), bin8(load(ld(v)), &c)) };
        generic::count_indices(&idx, &mut s);
    }
    let t: Vec<u32> = xt.iter().map(|&v| b.index(if ABS { v.abs() } else { v })).collect();
    generic::count_indices(&t, &mut s);
}

/// numpy's 8..=128-element pairwise leaf (`generic::pairwise_leaf`): the eight accumulators are
/// the eight lanes of one register, added in numpy's order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pairwise_leaf(a: &[f32]) -> f32 {
    let (v, rest) = a.as_chunks::<8>();
    let mut r = ld(&v[0]);
    for c in &v[1..] {
        r = _mm256_add_ps(r, ld(c));
    }
    // hadd within 128-bit halves: [r0+r1, r2+r3, ..], [r4+r5, r6+r7, ..]; again:
    // [(r0+r1)+(r2+r3)], [(r4+r5)+(r6+r7)].
    let h = _mm256_hadd_ps(r, r);
    let h = _mm256_hadd_ps(h, h);
    let mut res = _mm_cvtss_f32(_mm256_castps256_ps128(h)) + _mm_cvtss_f32(_mm256_extractf128_ps::<1>(h));
    for &t in rest {
        res += t;
    }
    res
}

/// The f64 logarithm of 4 lanes (`crate::arch::ln`) and which lanes may be rounded to float32
/// (all-ones lanes). AVX2 has no 64-bit arithmetic shift nor `i64 -> f64` conversion: `k` is
/// the logical shift's 12 bits made a float64 through the `2^52` trick, minus 4096 when its sign
/// bit is set.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ln4(x: __m256d, t: &ln::Table) -> (__m256d, __m256i) {
    let u = _mm256_castpd_si256(x);
    let tmp = _mm256_sub_epi64(u, _mm256_set1_epi64x(ln::OFF as i64));
    let i = _mm256_and_si256(_mm256_srli_epi64::<{ 52 - ln::WIDE.bits as i32 }>(tmp), _mm256_set1_epi64x(127));
    let magic = _mm256_set1_pd(4503599627370496.0); // 2^52
    let k12 = _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<52>(tmp), _mm256_castpd_si256(magic))),
        magic,
    );
    let neg = _mm256_cmp_pd::<_CMP_GE_OQ>(k12, _mm256_set1_pd(2048.0));
    let k = _mm256_sub_pd(k12, _mm256_and_pd(neg, _mm256_set1_pd(4096.0)));
    let z =
        _mm256_castsi256_pd(_mm256_sub_epi64(u, _mm256_and_si256(tmp, _mm256_set1_epi64x((0xfff_u64 << 52) as i64))));
    // SAFETY (both gathers): every index is below 128 (masked with 127) and the tables have 128
    // entries.
    let invc = unsafe { _mm256_i64gather_pd::<8>(t.invc.as_ptr(), i) };
    // SAFETY: as above.
    let logc = unsafe { _mm256_i64gather_pd::<8>(t.logc.as_ptr(), i) };
    let r = _mm256_fmadd_pd(z, invc, _mm256_set1_pd(-1.0));
    let hi = _mm256_fmadd_pd(k, _mm256_set1_pd(ln::LN2), logc);
    let mut p = _mm256_set1_pd(ln::WIDE.coeffs[5]);
    for &c in ln::WIDE.coeffs[..5].iter().rev() {
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
    }
    let y = _mm256_add_pd(hi, _mm256_fmadd_pd(_mm256_mul_pd(r, r), p, r));
    // |low - 2^28| > G, with low < 2^29: signed 64-bit compares suffice.
    let low = _mm256_and_si256(_mm256_castpd_si256(y), _mm256_set1_epi64x((1 << 29) - 1));
    let d = _mm256_sub_epi64(low, _mm256_set1_epi64x(1 << 28));
    let g = LN_GUARD_ULPS as i64;
    let safe =
        _mm256_or_si256(_mm256_cmpgt_epi64(d, _mm256_set1_epi64x(g)), _mm256_cmpgt_epi64(_mm256_set1_epi64x(-g), d));
    (y, safe)
}

/// [`kl_term`] of 8 lanes; returns the lanes (as a bit mask) to recompute with the reference's
/// expression (special logarithm arguments and unsafe roundings).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn kl8(p: __m256, q: __m256, sp: __m256, sq: __m256, t: &ln::Table) -> (__m256, u32) {
    let pk = _mm256_div_ps(p, sp);
    let qk = _mm256_div_ps(q, sq);
    let zero = _mm256_setzero_ps();
    let valid = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(pk, zero), _mm256_cmp_ps::<_CMP_GT_OQ>(qk, zero));
    let a = _mm256_div_ps(pk, qk);
    let normal = _mm256_and_ps(
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, zero),
        _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(f32::INFINITY)),
    );
    let (ylo, slo) = ln4(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), t);
    let (yhi, shi) = ln4(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(a)), t);
    let y = _mm256_set_m128(_mm256_cvtpd_ps(yhi), _mm256_cvtpd_ps(ylo));
    let safe =
        (_mm256_movemask_pd(_mm256_castsi256_pd(slo)) | (_mm256_movemask_pd(_mm256_castsi256_pd(shi)) << 4)) as u32;
    let term = _mm256_blendv_ps(_mm256_set1_ps(f32::INFINITY), _mm256_mul_ps(pk, y), valid);
    let valid = _mm256_movemask_ps(valid) as u32;
    let normal = _mm256_movemask_ps(normal) as u32;
    (term, valid & !(normal & safe))
}

#[target_feature(enable = "avx2,fma")]
fn kl_terms(p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
    assert!(p.len() == q.len() && p.len() == out.len(), "kl_terms: slices of one length");
    let t = ln::table(&ln::WIDE);
    let (spv, sqv) = (_mm256_set1_ps(sp), _mm256_set1_ps(sq));
    let (pv, pt) = p.as_chunks::<8>();
    let (qv, qt) = q.as_chunks::<8>();
    let (ov, ot) = out.as_chunks_mut::<8>();
    for ((pc, qc), oc) in pv.iter().zip(qv).zip(ov) {
        let (term, mut redo) = kl8(ld(pc), ld(qc), spv, sqv, t);
        st(oc, term);
        while redo != 0 {
            let j = redo.trailing_zeros() as usize;
            oc[j] = kl_term(pc[j], qc[j], sp, sq);
            redo &= redo - 1;
        }
    }
    generic::kl_terms(pt, qt, sp, sq, ot);
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn lanes(v: __m256) -> [f32; 8] {
    let mut a = [0f32; 8];
    st(&mut a, v);
    a
}

// ---------------------------------------------------------------------------------------------
// Scalar tails and the trait

const fn op<const DIV: bool>() -> quantproof_reference::quantize::ScaleOp {
    if DIV {
        quantproof_reference::quantize::ScaleOp::Divide
    } else {
        quantproof_reference::quantize::ScaleOp::MultiplyByReciprocal
    }
}

const fn mode<const MODE: u8>() -> quantproof_reference::rounding::RoundingMode {
    use quantproof_reference::rounding::RoundingMode as M;
    match MODE {
        EVEN => M::HalfToEven,
        AWAY => M::HalfAwayFromZero,
        FLOOR => M::Floor,
        TRUNC => M::TowardZero,
        _ => M::HalfUp,
    }
}

fn bytes_as_i8(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid for both.
    unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr().cast(), b.len()) }
}

fn scalar_dequantize<const SIGNED: bool>(q: &[u8], p: Params<'_>, out: &mut [f32]) {
    if SIGNED {
        generic::dequantize_span(q, p, out, |v| v as i8 as i32)
    } else {
        generic::dequantize_span(q, p, out, |v| v as i32)
    }
}

impl Kernels for Avx2 {
    fn isa(&self) -> Isa {
        Isa::Avx2
    }
}

/// The quantize kernel behind `forward_quantize_kernels!`: the vector loops for the rules and
/// parameters they take, the scalar kernel otherwise.
///
/// # Safety
/// The CPU must have AVX2 + FMA; `out.len() == x.len()`; per-element parameters cover the span.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize<const SIGNED: bool>(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
    let (min, max) = if SIGNED { (i8::MIN as i32, i8::MAX as i32) } else { (0, u8::MAX as i32) };
    with_rule!(
        rule,
        |DIV, MODE| match p {
            Params::Uniform(u) if packs_exactly(&u, min, max) => quantize_uniform::<SIGNED, DIV, MODE>(x, &u, out),
            Params::Uniform(u) => scalar_quantize::<SIGNED>(x, Params::Uniform(u), rule, out),
            Params::PerElement(e) => quantize_per_element::<SIGNED, DIV, MODE>(x, &e, out),
        },
        scalar_quantize::<SIGNED>(x, p, rule, out)
    )
}

/// The dequantize kernel behind `forward_quantize_kernels!`.
///
/// # Safety
/// As [`quantize`]'s (`q` for `x`).
#[target_feature(enable = "avx2,fma")]
unsafe fn dequantize<const SIGNED: bool>(q: &[u8], p: Params<'_>, out: &mut [f32]) {
    match p {
        Params::Uniform(u) => dequantize_uniform::<SIGNED>(q, &u, out),
        Params::PerElement(e) => dequantize_per_element::<SIGNED>(q, &e, out),
    }
}

/// The fake-quantize kernel behind `forward_quantize_kernels!` (`mask`, when given, as bytes of
/// a bool slice of `x`'s length).
///
/// # Safety
/// As [`quantize`]'s.
#[target_feature(enable = "avx2,fma")]
unsafe fn fake_quantize(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [u8]>) -> bool {
    with_rule!(
        rule,
        |DIV, MODE| match p {
            Params::Uniform(u) if u.lo <= u.hi && u.factor.is_finite() && u.factor != 0.0 =>
                fake_uniform::<DIV, MODE>(x, &u, out, mask),
            Params::PerElement(e) => fake_per_element::<DIV, MODE>(x, &e, out, mask),
            Params::Uniform(_) => Scalar.fake_quantize(x, p, rule, out, mask.map(as_bools)),
        },
        Scalar.fake_quantize(x, p, rule, out, mask.map(as_bools))
    )
}

super::forward_quantize_kernels!(Avx2, super::avx2, "AVX2 + FMA");

crate::kernels::forward_reduce_kernels!(Avx2, super::avx2, "AVX2 + FMA");

crate::kernels::forward_calibration_kernels!(Avx2, super::avx2, "AVX2 + FMA");

crate::kernels::forward_arith_kernels!(Avx2, super::avx2_binary, super::avx2_requant, "AVX2 + FMA");

impl LutKernels for Avx2 {
    fn lut_bytes(&self, table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        assert_eq!(x.len(), out.len());
        // SAFETY: the token proves AVX2; the lengths are equal.
        unsafe { lut_shuffle(table, x, out) }
    }
}

/// `out[i] = table[x[i]]` with sixteen `vpshufb` of 16-entry tables, 32 bytes at a time (the
/// tail portable).
///
/// `vpshufb` picks entry `i & 15` of a 16-byte table, or 0 where the index byte has its top bit
/// set. Entries 0..127 come from pass A on the index `a = x` as a signed byte, entries 128..255
/// from pass B on `b = x ^ 0x80`: each pass subtracts 16 per step with signed saturation
/// (`vpsubsb`, which keeps the low nibble while the value stays at or above -112 and keeps a
/// negative value negative), so step `k` yields a nonzero pick only for indices in chunks
/// `k..8` of its half, and always at position `x & 15`. With the pass's tables telescoped
/// (`t[k] = T[k] ^ T[k - 1]`, `t[0] = T[0]`, where `T[k]` is entries `16k..16k+16` of the
/// half), the XOR over the steps that pick is `T[j]` for the index's chunk `j`; the other
/// pass's index is negative throughout and adds 0.
///
/// # Safety
/// The CPU must have AVX2; `out.len() == x.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn lut_shuffle(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    let mut t = [_mm256_setzero_si256(); 16];
    for (k, tk) in t.iter_mut().enumerate() {
        let mut v = [0u8; 16];
        for (r, e) in v.iter_mut().enumerate() {
            let prev = if k % 8 == 0 { 0 } else { table[16 * (k - 1) + r] };
            *e = table[16 * k + r] ^ prev;
        }
        // SAFETY: `v` is 16 readable bytes.
        *tk = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(v.as_ptr().cast()) });
    }
    let sixteen = _mm256_set1_epi8(16);
    let flip = _mm256_set1_epi8(i8::MIN);
    let n = x.len() / 32 * 32;
    for i in (0..n).step_by(32) {
        // SAFETY: `i + 32 <= n <= x.len() == out.len()`: 32 readable bytes.
        let v = unsafe { _mm256_loadu_si256(x.as_ptr().add(i).cast()) };
        let (mut a, mut b) = (v, _mm256_xor_si256(v, flip));
        let mut y = _mm256_xor_si256(_mm256_shuffle_epi8(t[0], a), _mm256_shuffle_epi8(t[8], b));
        for k in 1..8 {
            a = _mm256_subs_epi8(a, sixteen);
            b = _mm256_subs_epi8(b, sixteen);
            y = _mm256_xor_si256(y, _mm256_xor_si256(_mm256_shuffle_epi8(t[k], a), _mm256_shuffle_epi8(t[8 + k], b)));
        }
        // SAFETY: as above, 32 writable bytes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), y) };
    }
    generic::lut_bytes(table, &x[n..], &mut out[n..]);
}

crate::kernels::forward_pool_kernels!(Avx2, super::avx2, "AVX2");

/// [`crate::kernels::PoolKernels::sum_rows`], eight bytes of each row widened to 32-bit lanes at
/// a time (`vpmovsxbd` / `vpmovzxbd`) and added, the tail portable. Every row has `out`'s
/// length.
#[target_feature(enable = "avx2")]
fn sum_rows(signedness: quantproof_reference::scheme::Signedness, rows: &[&[u8]], out: &mut [i32]) {
    let signed = signedness == quantproof_reference::scheme::Signedness::Signed;
    let widen = |b: __m128i| if signed { _mm256_cvtepi8_epi32(b) } else { _mm256_cvtepu8_epi32(b) };
    let n = out.len() / 8 * 8;
    for i in (0..n).step_by(8) {
        let mut s = _mm256_setzero_si256();
        for r in rows {
            // SAFETY: `i + 8 <= n <= out.len() == r.len()`: eight readable bytes.
            s = _mm256_add_epi32(s, widen(unsafe { _mm_loadl_epi64(r.as_ptr().add(i).cast()) }));
        }
        // SAFETY: as above, eight writable i32 of `out`.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), s) };
    }
    generic::sum_rows(signedness, rows, out, n);
}

/// [`crate::kernels::PoolKernels::max_rows`], 32 bytes at a time (`vpmaxsb` / `vpmaxub` from
/// `lo` over the rows, then `vpminsb` / `vpminub` with `hi`), the tail portable. Every row has
/// `out`'s length.
#[target_feature(enable = "avx2")]
fn max_rows(signedness: quantproof_reference::scheme::Signedness, lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8]) {
    let signed = signedness == quantproof_reference::scheme::Signedness::Signed;
    let max = |a: __m256i, b: __m256i| if signed { _mm256_max_epi8(a, b) } else { _mm256_max_epu8(a, b) };
    let min = |a: __m256i, b: __m256i| if signed { _mm256_min_epi8(a, b) } else { _mm256_min_epu8(a, b) };
    let (vlo, vhi) = (_mm256_set1_epi8(lo as i8), _mm256_set1_epi8(hi as i8));
    let n = out.len() / 32 * 32;
    for i in (0..n).step_by(32) {
        let mut m = vlo;
        for r in rows {
            // SAFETY: `i + 32 <= n <= out.len() == r.len()`: 32 readable bytes.
            m = max(m, unsafe { _mm256_loadu_si256(r.as_ptr().add(i).cast()) });
        }
        // SAFETY: as above, 32 writable bytes of `out`.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), min(m, vhi)) };
    }
    generic::max_rows(signedness, lo, hi, rows, out, n);
}

#[cfg(test)]
mod tests {
    crate::arch::testkit::kernel_tests!(crate::isa::Isa::Avx2);
}
