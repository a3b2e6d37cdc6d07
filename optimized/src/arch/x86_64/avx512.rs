/*!
AVX-512 kernels (F, BW, VL, DQ; 16 f32 lanes).

Main loops take 64 elements per iteration (four vectors, one 64-byte store of codes); the last
`n % 64` elements run through the same vector code 16 lanes at a time with masked loads and
stores, so tails cost no scalar code and touch nothing outside the slices. See the parent module
for why every result has the scalar kernel's bits.

Rounding inside conversions: `vcvtps2dq {rn-sae}` (half to even), `{rd-sae}` (floor) and
`vcvttps2dq` (toward zero) round a clamped value and convert it in one instruction. Half away
and half up use `vrndscaleps` plus the reference's comparison on `v - t`, applied to the integer
with masked adds.
*/

use super::avx512_requant;
use super::{
    as_bools, i8_bytes, packs_exactly, prefetch, prefetch_w, scalar_quantize, with_rule, AWAY, EVEN, FLOOR, TRUNC,
};
use crate::arch::generic::{self, Scalar};
use crate::arch::ln;
use crate::isa::Isa;
use crate::kernels::{kl_term, HistBins, Kernels, Params, PerElement, Rule, Uniform, LN_GUARD_ULPS};
use crate::kernels::{LutKernels, QuantizeKernels};
use core::arch::x86_64::*;

/// Proof that this CPU has AVX-512 F/BW/VL/DQ; only [`Avx512::new`] makes one.
#[derive(Debug)]
pub struct Avx512 {
    _private: (),
}

static TOKEN: Avx512 = Avx512 { _private: () };

impl Avx512 {
    /// The token, when the CPU has the features (cached detection).
    pub fn new() -> Option<&'static Avx512> {
        if Isa::Avx512.is_available() {
            Some(&TOKEN)
        } else {
            None
        }
    }
}

/// Whether the CPU also has AVX-512 VBMI (`vpermi2b`: 128-entry byte permutes), detected once.
fn has_vbmi() -> bool {
    crate::isa::Extension::Avx512Vbmi.is_available()
}

/// `out[i] = table[x[i]]` with two `vpermi2b` (entries 0..127 and 128..255, each picking by the
/// index's low seven bits) and a blend on the index's top bit; the `n % 64` tail through masked
/// loads and stores.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `out.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn lut_vbmi(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    let t = table.as_ptr();
    // SAFETY: `table` holds 256 bytes: four unaligned 64-byte loads at offsets 0, 64, 128, 192.
    let (t0, t1, t2, t3) = unsafe {
        (
            _mm512_loadu_si512(t.cast()),
            _mm512_loadu_si512(t.add(64).cast()),
            _mm512_loadu_si512(t.add(128).cast()),
            _mm512_loadu_si512(t.add(192).cast()),
        )
    };
    let look = |idx: __m512i| {
        let lo = _mm512_permutex2var_epi8(t0, idx, t1);
        let hi = _mm512_permutex2var_epi8(t2, idx, t3);
        _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi)
    };
    let n = x.len().min(out.len());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: `i + 64 <= n` bytes are readable in `x` and writable in `out`.
        unsafe {
            let v = _mm512_loadu_si512(x.as_ptr().add(i).cast());
            _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), look(v));
        }
        i += 64;
    }
    if i < n {
        let m: __mmask64 = (1u64 << (n - i)) - 1;
        // SAFETY: the masked load and store touch only the `n - i < 64` bytes left in each slice.
        unsafe {
            let v = _mm512_maskz_loadu_epi8(m, x.as_ptr().add(i).cast());
            _mm512_mask_storeu_epi8(out.as_mut_ptr().add(i).cast(), m, look(v));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Slices and lanes

/// Splits `x` into blocks of four 16-lane arrays and the `x.len() % 64` elements after them.
#[inline(always)]
fn blocks<T>(x: &[T]) -> (&[[[T; 16]; 4]], &[T]) {
    let (main, tail) = x.split_at(x.len() - x.len() % 64);
    (main.as_chunks::<16>().0.as_chunks::<4>().0, tail)
}

#[inline(always)]
fn blocks_mut<T>(x: &mut [T]) -> (&mut [[[T; 16]; 4]], &mut [T]) {
    let n = x.len() - x.len() % 64;
    let (main, tail) = x.split_at_mut(n);
    (main.as_chunks_mut::<16>().0.as_chunks_mut::<4>().0, tail)
}

/// The mask of the first `n <= 16` lanes.
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld(x: &[f32; 16]) -> __m512 {
    // SAFETY: `x` is 16 readable f32; unaligned loads are allowed.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld_i32(x: &[i32; 16]) -> __m512i {
    // SAFETY: `x` is 16 readable i32.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn st(o: &mut [f32; 16], v: __m512) {
    // SAFETY: `o` is 16 writable f32.
    unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) }
}

/// Loads the first `x.len() <= 16` elements; the other lanes are zero and are not read.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld_tail(x: &[f32]) -> __m512 {
    // SAFETY: only the first `x.len()` lanes are enabled, and those are in bounds; masked-off
    // lanes are not accessed (no fault).
    unsafe { _mm512_maskz_loadu_ps(lanes(x.len()), x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld_tail_i32(x: &[i32]) -> __m512i {
    // SAFETY: as in `ld_tail`.
    unsafe { _mm512_maskz_loadu_epi32(lanes(x.len()), x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn st_tail(o: &mut [f32], v: __m512) {
    // SAFETY: only the first `o.len() <= 16` lanes are written, all in bounds.
    unsafe { _mm512_mask_storeu_ps(o.as_mut_ptr(), lanes(o.len()), v) }
}

/// Stores the low byte of each of the first `o.len() <= 16` lanes (truncation, `vpmovdb`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn st_bytes_tail(o: &mut [u8], v: __m512i) {
    // SAFETY: only the first `o.len() <= 16` bytes are written, all in bounds.
    unsafe { _mm512_mask_cvtepi32_storeu_epi8(o.as_mut_ptr().cast(), lanes(o.len()), v) }
}

/// Stores `1` or `0` per mask bit into the first `o.len() <= 16` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn st_mask_tail(o: &mut [u8], k: __mmask16) {
    // SAFETY: only the first `o.len() <= 16` bytes are written, all in bounds.
    unsafe { _mm_mask_storeu_epi8(o.as_mut_ptr().cast(), lanes(o.len()), _mm_maskz_set1_epi8(k, 1)) }
}

/// Sixteen codes, sign- or zero-extended to i32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn widen<const SIGNED: bool>(q: __m128i) -> __m512i {
    if SIGNED {
        _mm512_cvtepi8_epi32(q)
    } else {
        _mm512_cvtepu8_epi32(q)
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld_codes(q: &[u8; 16]) -> __m128i {
    // SAFETY: `q` is 16 readable bytes.
    unsafe { _mm_loadu_si128(q.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ld_codes_tail(q: &[u8]) -> __m128i {
    // SAFETY: only the first `q.len() <= 16` bytes are read.
    unsafe { _mm_maskz_loadu_epi8(lanes(q.len()), q.as_ptr().cast()) }
}

/// Whether a lane of `a` or `b` is NaN.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn unord(a: __m512, b: __m512) -> __mmask16 {
    _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, b)
}

// ---------------------------------------------------------------------------------------------
// The arithmetic

/// `x / d` or `x * d`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn apply<const DIV: bool>(x: __m512, d: __m512) -> __m512 {
    if DIV {
        _mm512_div_ps(x, d)
    } else {
        _mm512_mul_ps(x, d)
    }
}

/// `clamp(round(v), lo, hi)` as i32, computed as `round(clamp(v, lo, hi))` (see the parent
/// module). A NaN `v` gives `lo` (`vmaxps` returns its second operand on NaN).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn code<const DIV: bool, const MODE: u8>(x: __m512, d: __m512, lo: __m512, hi: __m512) -> __m512i {
    round_clamped::<MODE>(_mm512_min_ps(_mm512_max_ps(apply::<DIV>(x, d), lo), hi))
}

/// [`code`] with `DIV` (`x / d`, ONNX Runtime's quantize) where the division is done by FMAs:
/// `x` clamped to `±2^60`, then `q = RN(x y)` with `y = RN(1 / d)` and two corrections `q <- RN(q
/// + RN(x - d q) y)`, the exact division of [`crate::arch::lanes`]' ONNX Runtime kernels (by
/// Markstein's theorem, `RN(x / d)` wherever every step stays normal; its scalar twin is
/// checked against `/` there on 400 million quotients). Only for `d` in `[2^-30, 2^30]` and
/// rounding modes other than floor ([`divides_by_fma`]), where it gives the division's codes for
/// every `x`: for `2^-40 <= |x| <= 2^60` the quotient and the residual stay normal (the steps are
/// exact); a clamped `x` and an infinite one give quotients beyond `2^30`, past every code bound
/// (`packs_exactly`: `|lo|, |hi| < 2^15`), as the division does; for `|x| < 2^-40` both
/// quotients lie below `2^-9`, which every mode but floor rounds to 0 whatever their sign; NaN
/// becomes `-2^60` (`vmaxps` returns its second operand), whose code is `lo`, as NaN's is. Five
/// FMA-unit operations and two clamps against `vdivps`, whose throughput capped the loop.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn code_fma<const MODE: u8>(x: __m512, d: __m512, y: __m512, lo: __m512, hi: __m512) -> __m512i {
    const BOUND: f32 = 1_152_921_504_606_846_976.0; // 2^60
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-BOUND)), _mm512_set1_ps(BOUND));
    let q = _mm512_mul_ps(x, y);
    let q = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, q, x), y, q);
    let q = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, q, x), y, q);
    round_clamped::<MODE>(_mm512_min_ps(_mm512_max_ps(q, lo), hi))
}

/// Whether [`code_fma`] gives the division's codes: a divisor in `[2^-30, 2^30]` (the range the
/// QLinearAdd kernels' FMA division takes, [`crate::arch::lanes::markstein_fits`]) and any mode
/// but floor.
fn divides_by_fma(mode: u8, d: f32) -> bool {
    mode != FLOOR && crate::arch::lanes::markstein_fits(&[d])
}

/// `round(c)` as i32 for a clamped (finite, integral-bounded) `c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn round_clamped<const MODE: u8>(c: __m512) -> __m512i {
    let one = _mm512_set1_epi32(1);
    match MODE {
        EVEN => _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(c),
        FLOOR => _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c),
        TRUNC => _mm512_cvttps_epi32(c),
        AWAY => {
            // t = trunc(c), d = c - t (exact, sign of c); +1 where d >= 0.5, -1 where d <= -0.5.
            let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(c);
            let d = _mm512_sub_ps(c, t);
            let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d, _mm512_set1_ps(0.5));
            let dn = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d, _mm512_set1_ps(-0.5));
            let ti = _mm512_cvttps_epi32(c);
            _mm512_mask_sub_epi32(_mm512_mask_add_epi32(ti, up, ti, one), dn, ti, one)
        }
        _ => {
            // UP: f = floor(c), +1 where c - f >= 0.5.
            let f = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c);
            let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_sub_ps(c, f), _mm512_set1_ps(0.5));
            let fi = _mm512_cvttps_epi32(f);
            _mm512_mask_add_epi32(fi, up, fi, one)
        }
    }
}

/// `round(v)` in float with the reference's exact operation sequence.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn round<const MODE: u8>(v: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    match MODE {
        EVEN => _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v),
        FLOOR => _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v),
        TRUNC => _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v),
        AWAY => {
            // t + copysign(1, v) where |v - t| >= 0.5; v - t has the sign of v, and t - 1 is
            // the same IEEE result as t + (-1).
            let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
            let d = _mm512_sub_ps(v, t);
            let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d, _mm512_set1_ps(0.5));
            let dn = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d, _mm512_set1_ps(-0.5));
            _mm512_mask_sub_ps(_mm512_mask_add_ps(t, up, t, one), dn, t, one)
        }
        _ => {
            // UP: f + 1 where v - f >= 0.5.
            let f = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(v);
            let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_sub_ps(v, f), _mm512_set1_ps(0.5));
            _mm512_mask_add_ps(f, up, f, one)
        }
    }
}

/// Fake-quantized values `(clamp(round(v), lo, hi) + 0.0) * s` and the mask `lo <= round(v) <= hi`.
/// With `EQ` the mask is computed as `clamp(r) == r`, one compare instead of two, which is the
/// same predicate when `lo <= hi` (callers check it; `-0.0 == +0.0`, and ±inf clamp to a finite
/// bound).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn fake<const DIV: bool, const MODE: u8, const EQ: bool>(
    x: __m512,
    d: __m512,
    lo: __m512,
    hi: __m512,
    s: __m512,
) -> (__m512, __mmask16) {
    let r = round::<MODE>(apply::<DIV>(x, d));
    let c = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    let inside = if EQ {
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(c, r)
    } else {
        _mm512_mask_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(r, lo), r, hi)
    };
    (_mm512_mul_ps(_mm512_add_ps(c, _mm512_setzero_ps()), s), inside)
}

/// `f32(q - z) * s`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn dequant(q: __m512i, z: __m512i, s: __m512) -> __m512 {
    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, z)), s)
}

// ---------------------------------------------------------------------------------------------
// Kernels

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn quantize_uniform<const SIGNED: bool, const DIV: bool, const MODE: u8, const FMA: bool>(
    x: &[f32],
    u: &Uniform,
    out: &mut [u8],
) -> bool {
    let (d, lo, hi) = (_mm512_set1_ps(u.factor), _mm512_set1_ps(u.lo), _mm512_set1_ps(u.hi));
    let y = _mm512_set1_ps(1.0 / u.factor);
    // `FMA`: the division by FMAs (the caller checked `divides_by_fma`).
    let code = |x: __m512| if FMA { code_fma::<MODE>(x, d, y, lo, hi) } else { code::<DIV, MODE>(x, d, lo, hi) };
    // Four vectors of codes already clamped to `[lo - z, hi - z]` (so `|r| < 2^15`) plus `z`
    // as bytes in order, with the byte type's full range (no second clamp).
    let full = if SIGNED { (-128, 127) } else { (0, 255) };
    // SAFETY: broadcasts; this function's target features include the narrowing's.
    let narrow = unsafe { avx512_requant::Narrow64::<SIGNED>::new(u.zero_point, full.0, full.1) };
    let z = _mm512_set1_epi32(u.zero_point);
    let mut nan: __mmask16 = 0;
    let (xb, xt) = blocks(x);
    let (ob, ot) = out.split_at_mut(out.len() - out.len() % 64);
    for (xs @ [x0, x1, x2, x3], o) in xb.iter().zip(ob.as_chunks_mut::<64>().0) {
        prefetch::<_, 4>(xs);
        let (a, b, c, e) = (ld(x0), ld(x1), ld(x2), ld(x3));
        nan |= unord(a, b) | unord(c, e);
        let r = [code(a), code(b), code(c), code(e)];
        // SAFETY: AVX-512 F/BW (this function's target features).
        let p = unsafe { narrow.apply(r) };
        // SAFETY: `o` is 64 writable bytes.
        unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), p) };
    }
    for (xs, os) in xt.chunks(16).zip(ot.chunks_mut(16)) {
        let a = ld_tail(xs);
        nan |= unord(a, a);
        st_bytes_tail(os, _mm512_add_epi32(code(a), z));
    }
    nan != 0
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn quantize_per_element<const DIV: bool, const MODE: u8>(x: &[f32], p: &PerElement<'_>, out: &mut [u8]) -> bool {
    let mut nan: __mmask16 = 0;
    let (x16, xt) = x.as_chunks::<16>();
    let (f16, ft) = p.factor.as_chunks::<16>();
    let (l16, lt) = p.lo.as_chunks::<16>();
    let (h16, ht) = p.hi.as_chunks::<16>();
    let (z16, zt) = p.zero_point.as_chunks::<16>();
    let (o16, ot) = out.as_chunks_mut::<16>();
    for (((((xs, fs), ls), hs), zs), os) in x16.iter().zip(f16).zip(l16).zip(h16).zip(z16).zip(o16) {
        prefetch::<_, 1>(xs);
        let a = ld(xs);
        nan |= unord(a, a);
        let q = _mm512_add_epi32(code::<DIV, MODE>(a, ld(fs), ld(ls), ld(hs)), ld_i32(zs));
        // SAFETY: `os` is 16 writable bytes; vpmovdb truncates each lane to its low byte.
        unsafe { _mm_storeu_si128(os.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(q)) };
    }
    if !xt.is_empty() {
        let a = ld_tail(xt);
        nan |= unord(a, a);
        let r = code::<DIV, MODE>(a, ld_tail(ft), ld_tail(lt), ld_tail(ht));
        st_bytes_tail(ot, _mm512_add_epi32(r, ld_tail_i32(zt)));
    }
    nan != 0
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn fake_uniform<const DIV: bool, const MODE: u8>(
    x: &[f32],
    u: &Uniform,
    out: &mut [f32],
    mask: Option<&mut [u8]>,
) -> bool {
    let (d, lo, hi, s) =
        (_mm512_set1_ps(u.factor), _mm512_set1_ps(u.lo), _mm512_set1_ps(u.hi), _mm512_set1_ps(u.scale));
    let mut nan: __mmask16 = 0;
    let (xb, xt) = blocks(x);
    let (ob, ot) = blocks_mut(out);
    let (mb, mt): (&mut [[u8; 64]], &mut [u8]) = match mask {
        Some(m) => {
            let (mb, mt) = m.split_at_mut(m.len() - m.len() % 64);
            (mb.as_chunks_mut::<64>().0, mt)
        }
        None => (&mut [], &mut []),
    };
    for (i, ([x0, x1, x2, x3], os)) in xb.iter().zip(ob).enumerate() {
        let [o0, o1, o2, o3] = os;
        let (a, b, c, e) = (ld(x0), ld(x1), ld(x2), ld(x3));
        nan |= unord(a, b) | unord(c, e);
        let (ya, ka) = fake::<DIV, MODE, true>(a, d, lo, hi, s);
        let (yb, kb) = fake::<DIV, MODE, true>(b, d, lo, hi, s);
        let (yc, kc) = fake::<DIV, MODE, true>(c, d, lo, hi, s);
        let (ye, ke) = fake::<DIV, MODE, true>(e, d, lo, hi, s);
        st(o0, ya);
        st(o1, yb);
        st(o2, yc);
        st(o3, ye);
        if let Some(m) = mb.get_mut(i) {
            let k = _mm512_kunpackd(
                _mm512_kunpackw(ke as __mmask32, kc as __mmask32) as __mmask64,
                _mm512_kunpackw(kb as __mmask32, ka as __mmask32) as __mmask64,
            );
            // SAFETY: `m` is 64 writable bytes (of a bool slice; each byte becomes 0 or 1).
            unsafe { _mm512_storeu_si512(m.as_mut_ptr().cast(), _mm512_maskz_set1_epi8(k, 1)) };
        }
    }
    let mut mt = mt.chunks_mut(16);
    for (xs, os) in xt.chunks(16).zip(ot.chunks_mut(16)) {
        let a = ld_tail(xs);
        nan |= unord(a, a);
        let (y, k) = fake::<DIV, MODE, true>(a, d, lo, hi, s);
        st_tail(os, y);
        if let Some(m) = mt.next() {
            st_mask_tail(m, k);
        }
    }
    nan != 0
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn fake_per_element<const DIV: bool, const MODE: u8>(
    x: &[f32],
    p: &PerElement<'_>,
    out: &mut [f32],
    mask: Option<&mut [u8]>,
) -> bool {
    let mut nan: __mmask16 = 0;
    let (x16, xt) = x.as_chunks::<16>();
    let (f16, ft) = p.factor.as_chunks::<16>();
    let (l16, lt) = p.lo.as_chunks::<16>();
    let (h16, ht) = p.hi.as_chunks::<16>();
    let (s16, stl) = p.scale.as_chunks::<16>();
    let (o16, ot) = out.as_chunks_mut::<16>();
    let (m16, mt): (&mut [[u8; 16]], &mut [u8]) = match mask {
        Some(m) => m.as_chunks_mut::<16>(),
        None => (&mut [], &mut []),
    };
    for (i, (((((xs, fs), ls), hs), ss), os)) in x16.iter().zip(f16).zip(l16).zip(h16).zip(s16).zip(o16).enumerate() {
        let a = ld(xs);
        nan |= unord(a, a);
        let (y, k) = fake::<DIV, MODE, false>(a, ld(fs), ld(ls), ld(hs), ld(ss));
        st(os, y);
        if let Some(m) = m16.get_mut(i) {
            // SAFETY: `m` is 16 writable bytes (of a bool slice; each byte becomes 0 or 1).
            unsafe { _mm_storeu_si128(m.as_mut_ptr().cast(), _mm_maskz_set1_epi8(k, 1)) };
        }
    }
    if !xt.is_empty() {
        let a = ld_tail(xt);
        nan |= unord(a, a);
        let (y, k) = fake::<DIV, MODE, false>(a, ld_tail(ft), ld_tail(lt), ld_tail(ht), ld_tail(stl));
        st_tail(ot, y);
        if !mt.is_empty() {
            st_mask_tail(mt, k);
        }
    }
    nan != 0
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn dequantize_uniform<const SIGNED: bool>(q: &[u8], u: &Uniform, out: &mut [f32]) {
    let (z, s) = (_mm512_set1_epi32(u.zero_point), _mm512_set1_ps(u.scale));
    let (qb, qt) = blocks(q);
    let (ob, ot) = blocks_mut(out);
    for ([q0, q1, q2, q3], os) in qb.iter().zip(ob) {
        prefetch_w::<_, 4>(os);
        let [o0, o1, o2, o3] = os;
        st(o0, dequant(widen::<SIGNED>(ld_codes(q0)), z, s));
        st(o1, dequant(widen::<SIGNED>(ld_codes(q1)), z, s));
        st(o2, dequant(widen::<SIGNED>(ld_codes(q2)), z, s));
        st(o3, dequant(widen::<SIGNED>(ld_codes(q3)), z, s));
    }
    for (qs, os) in qt.chunks(16).zip(ot.chunks_mut(16)) {
        st_tail(os, dequant(widen::<SIGNED>(ld_codes_tail(qs)), z, s));
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn dequantize_per_element<const SIGNED: bool>(q: &[u8], p: &PerElement<'_>, out: &mut [f32]) {
    let (q16, qt) = q.as_chunks::<16>();
    let (z16, zt) = p.zero_point.as_chunks::<16>();
    let (s16, stl) = p.scale.as_chunks::<16>();
    let (o16, ot) = out.as_chunks_mut::<16>();
    for (((qs, zs), ss), os) in q16.iter().zip(z16).zip(s16).zip(o16) {
        st(os, dequant(widen::<SIGNED>(ld_codes(qs)), ld_i32(zs), ld(ss)));
    }
    if !qt.is_empty() {
        st_tail(ot, dequant(widen::<SIGNED>(ld_codes_tail(qt)), ld_tail_i32(zt), ld_tail(stl)));
    }
}

/// Pairs of codes `(c0, c1)` in the bytes of each 16-bit lane to `c0 & 15 | (c1 & 15) << 4`, in
/// the low byte of the lane: `vpmaddubsw` of the nibbles with the byte pair `(1, 16)`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn pair_nibbles(c: __m512i) -> __m512i {
    _mm512_maddubs_epi16(_mm512_and_si512(c, _mm512_set1_epi8(0x0F)), _mm512_set1_epi16(0x1001))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn pack_nibbles(codes: &[i8], out: &mut [u8]) {
    let codes = i8_bytes(codes);
    let n = out.len() - out.len() % 64;
    let (cb, ct) = codes.split_at(2 * n);
    let (ob, ot) = out.split_at_mut(n);
    for ([c0, c1], o) in cb.as_chunks::<64>().0.as_chunks::<2>().0.iter().zip(ob.as_chunks_mut::<64>().0) {
        // SAFETY: `c0` and `c1` are 64 readable bytes each.
        let (a, b) = unsafe { (_mm512_loadu_si512(c0.as_ptr().cast()), _mm512_loadu_si512(c1.as_ptr().cast())) };
        // packus leaves 128-bit lane l holding qwords [a_l, b_l]; put qword 2l + j at 4j + l.
        let p = _mm512_packus_epi16(pair_nibbles(a), pair_nibbles(b));
        let p = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), p);
        // SAFETY: `o` is 64 writable bytes.
        unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), p) };
    }
    for (cs, os) in ct.chunks(64).zip(ot.chunks_mut(32)) {
        // SAFETY: only the first `cs.len() <= 64` bytes are read and the first `os.len() <= 32`
        // bytes written, all in bounds.
        unsafe {
            let c = _mm512_maskz_loadu_epi8(mask64(cs.len()), cs.as_ptr().cast());
            _mm256_mask_storeu_epi8(
                os.as_mut_ptr().cast(),
                mask64(os.len()) as __mmask32,
                _mm512_cvtepi16_epi8(pair_nibbles(c)),
            );
        }
    }
}

/// The mask of the first `n <= 64` lanes.
#[inline(always)]
fn mask64(n: usize) -> __mmask64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// 32 packed bytes to 64 codes: each byte `b` becomes the 16-bit lane `(b & 15) | (b >> 4) << 8`,
/// then signed codes are sign-extended by a 16-entry table.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn split_nibbles<const SIGNED: bool>(b: __m256i) -> __m512i {
    let w = _mm512_cvtepu8_epi16(b);
    // (w | w << 4) & 0x0F0F: ternary-logic function (A | B) & C.
    let t = _mm512_ternarylogic_epi32::<0xA8>(w, _mm512_slli_epi16::<4>(w), _mm512_set1_epi16(0x0F0F));
    if SIGNED {
        let lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1));
        _mm512_shuffle_epi8(lut, t)
    } else {
        t
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn unpack_nibbles<const SIGNED: bool>(packed: &[u8], out: &mut [u8]) {
    let n = packed.len() - packed.len() % 32;
    let (pb, pt) = packed.split_at(n);
    let (ob, ot) = out.split_at_mut(2 * n);
    for (p, o) in pb.as_chunks::<32>().0.iter().zip(ob.as_chunks_mut::<64>().0) {
        // SAFETY: `p` is 32 readable bytes, `o` 64 writable bytes.
        unsafe {
            let b = _mm256_loadu_si256(p.as_ptr().cast());
            _mm512_storeu_si512(o.as_mut_ptr().cast(), split_nibbles::<SIGNED>(b));
        }
    }
    if !pt.is_empty() {
        // SAFETY: only the first `pt.len() < 32` bytes are read and the first `ot.len() < 64`
        // bytes written, all in bounds.
        unsafe {
            let b = _mm256_maskz_loadu_epi8(mask64(pt.len()) as __mmask32, pt.as_ptr().cast());
            _mm512_mask_storeu_epi8(ot.as_mut_ptr().cast(), mask64(ot.len()), split_nibbles::<SIGNED>(b));
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn min_max(x: &[f32]) -> (f32, f32, bool) {
    let mut lo = [_mm512_set1_ps(f32::INFINITY); 4];
    let mut hi = [_mm512_set1_ps(f32::NEG_INFINITY); 4];
    let mut nan: __mmask16 = 0;
    let (xb, xt) = blocks(x);
    for xs @ [x0, x1, x2, x3] in xb {
        prefetch::<_, 4>(xs);
        let v = [ld(x0), ld(x1), ld(x2), ld(x3)];
        nan |= unord(v[0], v[1]) | unord(v[2], v[3]);
        for k in 0..4 {
            // vminps/vmaxps return the second operand (the accumulator) when `v` is NaN.
            lo[k] = _mm512_min_ps(v[k], lo[k]);
            hi[k] = _mm512_max_ps(v[k], hi[k]);
        }
    }
    for xs in xt.chunks(16) {
        let (v, k) = (ld_tail(xs), lanes(xs.len()));
        nan |= _mm512_mask_cmp_ps_mask::<_CMP_UNORD_Q>(k, v, v);
        lo[0] = _mm512_mask_min_ps(lo[0], k, v, lo[0]);
        hi[0] = _mm512_mask_max_ps(hi[0], k, v, hi[0]);
    }
    let lo = _mm512_min_ps(_mm512_min_ps(lo[0], lo[1]), _mm512_min_ps(lo[2], lo[3]));
    let hi = _mm512_max_ps(_mm512_max_ps(hi[0], hi[1]), _mm512_max_ps(hi[2], hi[3]));
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), nan != 0)
}

/// The largest (`MAX`) or smallest `|x|` and whether a NaN was seen (`abs_max` / `abs_min`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn abs_extreme<const MAX: bool>(x: &[f32]) -> (f32, bool) {
    // |NaN| is NaN, so vmaxps / vminps keep the accumulator.
    let pick = |a: __m512, b: __m512| if MAX { _mm512_max_ps(a, b) } else { _mm512_min_ps(a, b) };
    let mut m = [if MAX { _mm512_setzero_ps() } else { _mm512_set1_ps(f32::INFINITY) }; 4];
    let mut nan: __mmask16 = 0;
    let (xb, xt) = blocks(x);
    for xs @ [x0, x1, x2, x3] in xb {
        prefetch::<_, 4>(xs);
        let v = [ld(x0), ld(x1), ld(x2), ld(x3)];
        nan |= unord(v[0], v[1]) | unord(v[2], v[3]);
        for k in 0..4 {
            m[k] = pick(_mm512_abs_ps(v[k]), m[k]);
        }
    }
    for xs in xt.chunks(16) {
        let (v, k) = (ld_tail(xs), lanes(xs.len()));
        nan |= _mm512_mask_cmp_ps_mask::<_CMP_UNORD_Q>(k, v, v);
        // The masked-off lanes (zeros) take no part.
        m[0] = _mm512_mask_mov_ps(m[0], k, pick(_mm512_abs_ps(v), m[0]));
    }
    let m = pick(pick(m[0], m[1]), pick(m[2], m[3]));
    (if MAX { _mm512_reduce_max_ps(m) } else { _mm512_reduce_min_ps(m) }, nan != 0)
}

// ---------------------------------------------------------------------------------------------
// Calibration: histogram, pairwise sum, KL terms

/// The constants of [`HistBins::index`] in vectors.
struct BinConsts {
    first: __m512,
    last: __m512,
    width: __m512,
    nf: __m512,
    step: __m512,
    nm1: __m512i,
    none: __m512i,
}

impl BinConsts {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn new(b: &HistBins) -> BinConsts {
        BinConsts {
            first: _mm512_set1_ps(b.first),
            last: _mm512_set1_ps(b.last),
            width: _mm512_set1_ps(b.last - b.first),
            nf: _mm512_set1_ps(b.n as f32),
            step: _mm512_set1_ps(b.step),
            nm1: _mm512_set1_epi32(b.n as i32 - 1),
            none: _mm512_set1_epi32(b.n as i32),
        }
    }
}

/// [`HistBins::index`] of 16 lanes, with the same float32 operations: the index from
/// `((x - first) / (last - first)) * n` truncated and capped at `n - 1`, then the corrections
/// against `edge(i) = i * step + first` and `edge(i + 1) = (i + 1) * step + first` (`i + 1` is
/// exact in float32 below 2^24). The upward correction is taken only where the downward one was
/// not: after a step down, the reference compares `x` with `edge(i)` again, which it just found
/// greater than `x`. Lanes outside `[first, last]` (and NaN) get `n`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn bin16(x: __m512, c: &BinConsts) -> __m512i {
    let inside = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, c.first) & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, c.last);
    let f = _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(x, c.first), c.width), c.nf);
    let i = _mm512_min_epi32(_mm512_cvttps_epi32(f), c.nm1);
    let fi = _mm512_cvtepi32_ps(i);
    let below = _mm512_add_ps(_mm512_mul_ps(fi, c.step), c.first);
    let above = _mm512_add_ps(_mm512_mul_ps(_mm512_add_ps(fi, _mm512_set1_ps(1.0)), c.step), c.first);
    let down = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, below);
    let up = _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(!down, x, above) & _mm512_cmpneq_epi32_mask(i, c.nm1);
    let i = _mm512_mask_sub_epi32(i, down, i, _mm512_set1_epi32(1));
    let i = _mm512_mask_add_epi32(i, up, i, _mm512_set1_epi32(1));
    // Unsigned min: whatever a lane holds, the slot is at most n.
    _mm512_min_epu32(_mm512_mask_mov_epi32(c.none, inside, i), c.none)
}

/// Bins blocks of [`generic::HIST_BLOCK`] elements into one index buffer while counting the previous block's
/// indices from the other: the vector work of one block and the scalar increments of the
/// previous one interleave, so the two overlap in the core (measured on Zen 5 at 2M elements and
/// 2048 bins: 2.2 Gelem/s with a binning pass then a counting pass, 3.5 interleaved, against
/// 3.7 for the increments alone). The indices are read back one block after they were stored,
/// never straight out of a just-written vector (store-to-load forwarding from a 64-byte store to
/// 4-byte loads stalls: 1.4 Gelem/s).
///
/// The increments are the limit: one read-modify-write per element, about one per cycle here
/// (four sub-histograms break the store-to-load chains; packed 16-bit indices and other
/// block sizes measured no better). The index computation alone runs at ~5.4 Gelem/s. Two threads
/// reach 5.6-5.9 Gelem/s.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn histogram<const ABS: bool>(x: &[f32], b: &HistBins, sub: &mut [u32]) {
    let c = BinConsts::new(b);
    let mut s = generic::split_sub(sub, b.n as usize + 1);
    let load = |v: __m512| if ABS { _mm512_abs_ps(v) } else { v };
    let tail = generic::histogram_blocks::<16>(x, b.n, &mut s, |xv, nv| {
        let i = bin16(load(ld(xv)), &c);
        // SAFETY: `nv` is 16 writable u32.
        unsafe { _mm512_storeu_si512(nv.as_mut_ptr().cast(), i) };
    });
    let mut idx = [0u32; 16];
    for xs in tail.chunks(16) {
        let i = bin16(load(ld_tail(xs)), &c);
        // SAFETY: `idx` is 16 writable u32.
        unsafe { _mm512_storeu_si512(idx.as_mut_ptr().cast(), i) };
        generic::count_indices(&idx[..xs.len()], &mut s);
    }
}

/// numpy's 8..=128-element pairwise leaf (`generic::pairwise_leaf`): the eight accumulators are
/// the eight lanes of one `ymm` register, added in numpy's order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn pairwise_leaf(a: &[f32]) -> f32 {
    let n = a.len();
    let (v, rest) = a.as_chunks::<8>();
    // SAFETY (both loads): each `[f32; 8]` is 8 readable f32.
    let mut r = unsafe { _mm256_loadu_ps(v[0].as_ptr()) };
    for c in &v[1..] {
        // SAFETY: `c` is 8 readable f32.
        r = _mm256_add_ps(r, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    // hadd within 128-bit halves: [r0+r1, r2+r3, .., ..], [r4+r5, r6+r7, .., ..]; again:
    // [(r0+r1)+(r2+r3)], [(r4+r5)+(r6+r7)].
    let h = _mm256_hadd_ps(r, r);
    let h = _mm256_hadd_ps(h, h);
    let mut res = _mm_cvtss_f32(_mm256_castps256_ps128(h)) + _mm_cvtss_f32(_mm256_extractf128_ps::<1>(h));
    debug_assert_eq!(rest.len(), n % 8);
    for &t in rest {
        res += t;
    }
    res
}

/// The 16-entry tables of [`ln::NARROW`], two registers each.
struct LnTables {
    invc: [__m512d; 2],
    logc: [__m512d; 2],
}

impl LnTables {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    fn new() -> LnTables {
        let t = ln::table(&ln::NARROW);
        let (i, l) = (t.invc.as_chunks::<8>().0, t.logc.as_chunks::<8>().0);
        // SAFETY (all four loads): each `[f64; 8]` is 8 readable f64 (the tables have 16 entries).
        unsafe {
            LnTables {
                invc: [_mm512_loadu_pd(i[0].as_ptr()), _mm512_loadu_pd(i[1].as_ptr())],
                logc: [_mm512_loadu_pd(l[0].as_ptr()), _mm512_loadu_pd(l[1].as_ptr())],
            }
        }
    }
}

/// The float64 logarithm of 8 lanes ([`ln::NARROW`]: the table lookups are `vpermt2pd`) and the
/// lanes whose rounding to float32 is safe ([`crate::kernels::ln_rounding_is_safe`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn ln8(x: __m512d, t: &LnTables) -> (__m512d, __mmask8) {
    let u = _mm512_castpd_si512(x);
    let tmp = _mm512_sub_epi64(u, _mm512_set1_epi64(ln::OFF as i64));
    // vpermt2pd reads the low 4 bits of each index: no mask needed.
    let i = _mm512_srli_epi64::<{ 52 - ln::NARROW.bits }>(tmp);
    let k = _mm512_cvtepi64_pd(_mm512_srai_epi64::<52>(tmp));
    let z =
        _mm512_castsi512_pd(_mm512_sub_epi64(u, _mm512_and_si512(tmp, _mm512_set1_epi64((0xfff_u64 << 52) as i64))));
    let invc = _mm512_permutex2var_pd(t.invc[0], i, t.invc[1]);
    let logc = _mm512_permutex2var_pd(t.logc[0], i, t.logc[1]);
    let r = _mm512_fmadd_pd(z, invc, _mm512_set1_pd(-1.0));
    let hi = _mm512_fmadd_pd(k, _mm512_set1_pd(ln::LN2), logc);
    let (last, rest) = ln::NARROW.coeffs.split_last().unwrap_or((&0.0, &[]));
    let mut p = _mm512_set1_pd(*last);
    for &c in rest.iter().rev() {
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
    }
    let y = _mm512_add_pd(hi, _mm512_fmadd_pd(_mm512_mul_pd(r, r), p, r));
    let low = _mm512_and_si512(_mm512_castpd_si512(y), _mm512_set1_epi64((1 << 29) - 1));
    let d = _mm512_sub_epi64(low, _mm512_set1_epi64(((1 << 28) - LN_GUARD_ULPS) as i64));
    let safe = _mm512_cmpgt_epu64_mask(d, _mm512_set1_epi64((2 * LN_GUARD_ULPS) as i64));
    (y, safe)
}

/// [`kl_term`] of 16 lanes; returns the lanes to recompute with the reference's expression
/// (special logarithm arguments and unsafe roundings).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn kl16(p: __m512, q: __m512, sp: __m512, sq: __m512, t: &LnTables) -> (__m512, __mmask16) {
    let pk = _mm512_div_ps(p, sp);
    let qk = _mm512_div_ps(q, sq);
    let zero = _mm512_setzero_ps();
    let valid = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(pk, zero) & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(qk, zero);
    let a = _mm512_div_ps(pk, qk);
    let normal =
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, zero) & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(f32::INFINITY));
    let (ylo, slo) = ln8(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), t);
    let (yhi, shi) = ln8(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)))), t);
    let y = _mm512_insertf32x8::<1>(_mm512_castps256_ps512(_mm512_cvtpd_ps(ylo)), _mm512_cvtpd_ps(yhi));
    let safe = (slo as __mmask16) | ((shi as __mmask16) << 8);
    let term = _mm512_mask_mov_ps(_mm512_set1_ps(f32::INFINITY), valid, _mm512_mul_ps(pk, y));
    (term, valid & !(normal & safe))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn kl_terms(p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
    assert!(p.len() == q.len() && p.len() == out.len(), "kl_terms: slices of one length");
    let t = LnTables::new();
    let (spv, sqv) = (_mm512_set1_ps(sp), _mm512_set1_ps(sq));
    for ((pc, qc), oc) in p.chunks(16).zip(q.chunks(16)).zip(out.chunks_mut(16)) {
        let (term, redo) = kl16(ld_tail(pc), ld_tail(qc), spv, sqv, &t);
        st_tail(oc, term);
        let mut redo = redo & lanes(oc.len());
        while redo != 0 {
            let j = redo.trailing_zeros() as usize;
            oc[j] = kl_term(pc[j], qc[j], sp, sq);
            redo &= redo - 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The trait

impl Kernels for Avx512 {
    fn isa(&self) -> Isa {
        Isa::Avx512
    }
}

/// The quantize kernel behind `forward_quantize_kernels!`: the vector loops for the rules and
/// parameters they take, the scalar kernel otherwise.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ; `out.len() == x.len()`; per-element parameters cover the span.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn quantize<const SIGNED: bool>(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
    let (min, max) = if SIGNED { (i8::MIN as i32, i8::MAX as i32) } else { (0, u8::MAX as i32) };
    with_rule!(
        rule,
        |DIV, MODE| match p {
            Params::Uniform(u) if packs_exactly(&u, min, max) => {
                if DIV && divides_by_fma(MODE, u.factor) {
                    quantize_uniform::<SIGNED, DIV, MODE, true>(x, &u, out)
                } else {
                    quantize_uniform::<SIGNED, DIV, MODE, false>(x, &u, out)
                }
            }
            Params::Uniform(u) => scalar_quantize::<SIGNED>(x, Params::Uniform(u), rule, out),
            Params::PerElement(e) => quantize_per_element::<DIV, MODE>(x, &e, out),
        },
        scalar_quantize::<SIGNED>(x, p, rule, out)
    )
}

/// The dequantize kernel behind `forward_quantize_kernels!`.
///
/// # Safety
/// As [`quantize`]'s (`q` for `x`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
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
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn fake_quantize(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [u8]>) -> bool {
    with_rule!(
        rule,
        |DIV, MODE| match p {
            Params::Uniform(u) if u.lo <= u.hi => fake_uniform::<DIV, MODE>(x, &u, out, mask),
            Params::PerElement(e) => fake_per_element::<DIV, MODE>(x, &e, out, mask),
            Params::Uniform(_) => Scalar.fake_quantize(x, p, rule, out, mask.map(as_bools)),
        },
        Scalar.fake_quantize(x, p, rule, out, mask.map(as_bools))
    )
}

super::forward_quantize_kernels!(Avx512, super::avx512, "AVX-512 F/BW/VL/DQ");

crate::kernels::forward_reduce_kernels!(Avx512, super::avx512, "AVX-512 F/BW/VL/DQ");

crate::kernels::forward_calibration_kernels!(Avx512, super::avx512, "AVX-512 F/BW/VL/DQ");

crate::kernels::forward_arith_kernels!(Avx512, super::avx512_binary, super::avx512_requant, "AVX-512 F/BW/VL/DQ");

crate::kernels::forward_pool_kernels!(Avx512, super::avx512, "AVX-512 F/BW");

/// [`crate::kernels::PoolKernels::sum_rows`], sixteen bytes of each row widened to 32-bit lanes
/// at a time (`vpmovsxbd` / `vpmovzxbd`) and added, the tail under a mask. Every row has
/// `out`'s length. One to four rows take a loop with their count and the signedness fixed;
/// more rows loop over the row list.
#[target_feature(enable = "avx512f,avx512bw")]
fn sum_rows(signedness: quantproof_reference::scheme::Signedness, rows: &[&[u8]], out: &mut [i32]) {
    use quantproof_reference::scheme::Signedness::{Signed, Unsigned};
    match (signedness, rows.len()) {
        (Signed, 1) => sum_rows_n::<true, 1>(rows, out),
        (Signed, 2) => sum_rows_n::<true, 2>(rows, out),
        (Signed, 3) => sum_rows_n::<true, 3>(rows, out),
        (Signed, 4) => sum_rows_n::<true, 4>(rows, out),
        (Signed, _) => sum_rows_n::<true, 0>(rows, out),
        (Unsigned, 1) => sum_rows_n::<false, 1>(rows, out),
        (Unsigned, 2) => sum_rows_n::<false, 2>(rows, out),
        (Unsigned, 3) => sum_rows_n::<false, 3>(rows, out),
        (Unsigned, 4) => sum_rows_n::<false, 4>(rows, out),
        (Unsigned, _) => sum_rows_n::<false, 0>(rows, out),
    }
}

/// [`sum_rows`] for `R` rows (`R = 0`: any number, looped over), codes signed if `S`.
#[target_feature(enable = "avx512f,avx512bw")]
fn sum_rows_n<const S: bool, const R: usize>(rows: &[&[u8]], out: &mut [i32]) {
    let widen = |b: __m128i| if S { _mm512_cvtepi8_epi32(b) } else { _mm512_cvtepu8_epi32(b) };
    let fixed: [*const u8; 4] = std::array::from_fn(|j| rows.get(j).map_or(std::ptr::null(), |r| r.as_ptr()));
    let n = out.len() / 16 * 16;
    for i in (0..n).step_by(16) {
        let mut s = _mm512_setzero_si512();
        if R == 0 {
            for r in rows {
                // SAFETY: `i + 16 <= n <= out.len() == r.len()`: sixteen readable bytes.
                s = _mm512_add_epi32(s, widen(unsafe { _mm_loadu_si128(r.as_ptr().add(i).cast()) }));
            }
        } else {
            for &p in &fixed[..R] {
                // SAFETY: `R == rows.len()` (the caller's match), so `p` is a row's start;
                // `i + 16 <= n <= out.len() == r.len()`: sixteen readable bytes.
                s = _mm512_add_epi32(s, widen(unsafe { _mm_loadu_si128(p.add(i).cast()) }));
            }
        }
        // SAFETY: as above, sixteen writable i32 of `out`.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), s) };
    }
    let rest = out.len() - n;
    if rest > 0 {
        let k: __mmask16 = ((1u32 << rest) - 1) as __mmask16;
        let mut s = _mm512_setzero_si512();
        for r in rows {
            // SAFETY: the mask covers only the `rest < 16` bytes from `n`, inside the row
            // (masked-off bytes are not read and cannot fault).
            s = _mm512_add_epi32(s, widen(unsafe { _mm_maskz_loadu_epi8(k, r.as_ptr().add(n).cast()) }));
        }
        // SAFETY: the same `rest` lanes of `out`; masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().add(n).cast(), k, s) };
    }
}

/// [`crate::kernels::PoolKernels::max_rows`], 64 bytes at a time (`vpmaxsb` / `vpmaxub` from
/// `lo` over the rows, then `vpminsb` / `vpminub` with `hi`), the tail under a mask. Every row
/// has `out`'s length. One to four rows (a window's height or width in most networks) take a
/// loop with their count and the signedness fixed; more rows loop over the row list.
#[target_feature(enable = "avx512f,avx512bw")]
fn max_rows(signedness: quantproof_reference::scheme::Signedness, lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8]) {
    use quantproof_reference::scheme::Signedness::{Signed, Unsigned};
    match (signedness, rows.len()) {
        (Signed, 1) => max_rows_n::<true, 1>(lo, hi, rows, out),
        (Signed, 2) => max_rows_n::<true, 2>(lo, hi, rows, out),
        (Signed, 3) => max_rows_n::<true, 3>(lo, hi, rows, out),
        (Signed, 4) => max_rows_n::<true, 4>(lo, hi, rows, out),
        (Signed, _) => max_rows_n::<true, 0>(lo, hi, rows, out),
        (Unsigned, 1) => max_rows_n::<false, 1>(lo, hi, rows, out),
        (Unsigned, 2) => max_rows_n::<false, 2>(lo, hi, rows, out),
        (Unsigned, 3) => max_rows_n::<false, 3>(lo, hi, rows, out),
        (Unsigned, 4) => max_rows_n::<false, 4>(lo, hi, rows, out),
        (Unsigned, _) => max_rows_n::<false, 0>(lo, hi, rows, out),
    }
}

/// [`max_rows`] for `R` rows (`R = 0`: any number, looped over), codes signed if `S`.
#[target_feature(enable = "avx512f,avx512bw")]
fn max_rows_n<const S: bool, const R: usize>(lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8]) {
    let max = |a: __m512i, b: __m512i| if S { _mm512_max_epi8(a, b) } else { _mm512_max_epu8(a, b) };
    let min = |a: __m512i, b: __m512i| if S { _mm512_min_epi8(a, b) } else { _mm512_min_epu8(a, b) };
    let (vlo, vhi) = (_mm512_set1_epi8(lo as i8), _mm512_set1_epi8(hi as i8));
    let fixed: [*const u8; 4] = std::array::from_fn(|j| rows.get(j).map_or(std::ptr::null(), |r| r.as_ptr()));
    let n = out.len() / 64 * 64;
    for i in (0..n).step_by(64) {
        let mut m = vlo;
        if R == 0 {
            for r in rows {
                // SAFETY: `i + 64 <= n <= out.len() == r.len()`: 64 readable bytes.
                m = max(m, unsafe { _mm512_loadu_si512(r.as_ptr().add(i).cast()) });
            }
        } else {
            for &p in &fixed[..R] {
                // SAFETY: `R == rows.len()` (the caller's match), so `p` is a row's start;
                // `i + 64 <= n <= out.len() == r.len()`: 64 readable bytes.
                m = max(m, unsafe { _mm512_loadu_si512(p.add(i).cast()) });
            }
        }
        // SAFETY: as above, 64 writable bytes of `out`.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), min(m, vhi)) };
    }
    let left = out.len() - n;
    if left > 0 {
        let k: __mmask64 = (1u64 << left) - 1;
        let mut m = vlo;
        for r in rows {
            // SAFETY: the mask covers only the `left < 64` bytes from `n`, inside the row
            // (masked-off bytes are not read and cannot fault).
            m = max(m, unsafe { _mm512_maskz_loadu_epi8(k, r.as_ptr().add(n).cast()) });
        }
        // SAFETY: the same `left` bytes of `out`; masked-off bytes are not written.
        unsafe { _mm512_mask_storeu_epi8(out.as_mut_ptr().add(n).cast(), k, min(m, vhi)) };
    }
}

impl LutKernels for Avx512 {
    fn lut_bytes(&self, table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        assert_eq!(x.len(), out.len());
        if has_vbmi() {
            // SAFETY: this token exists only when AVX-512 F/BW were detected, and VBMI was
            // detected just above; the lengths are equal.
            unsafe { lut_vbmi(table, x, out) }
        } else {
            // SAFETY: this token exists only where AVX2 was detected as well (`isa::detect`
            // puts AVX-512 on top of AVX2); the lengths are equal.
            unsafe { super::avx2::lut_shuffle(table, x, out) }
        }
    }
}

#[cfg(test)]
mod tests {
    crate::arch::testkit::kernel_tests!(crate::isa::Isa::Avx512);
}
