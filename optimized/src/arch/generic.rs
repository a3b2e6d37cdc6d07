//! The portable scalar kernels: the fallback on every CPU, and the tail loop SIMD kernels share.
//!
//! Each function applies the span arithmetic documented in [`crate::kernels`] one element at a
//! time, with exactly the operations the reference uses.

use crate::isa::Isa;
use crate::kernels::{kl_term, HistBins, HistogramOf, Kernels, Params, PerElement, Rule, Uniform};
use crate::kernels::{ArithKernels, CalibrationKernels, LutKernels, PoolKernels, QuantizeKernels, ReduceKernels};
use quantproof_reference::elementwise::BinaryKernel;
use quantproof_reference::pack::Int4;
use quantproof_reference::quantize::ScaleOp;
use quantproof_reference::requantize::Requantizer;
use quantproof_reference::rounding::{round_f32, RoundingMode};
use quantproof_reference::scheme::{CodeRange, Signedness};

/// `x op factor`.
#[inline(always)]
pub fn apply(x: f32, factor: f32, op: ScaleOp) -> f32 {
    match op {
        ScaleOp::Divide => x / factor,
        ScaleOp::MultiplyByReciprocal => x * factor,
    }
}

/// `round(v)` under a deterministic mode (the index only matters for stochastic rounding, which
/// never reaches kernels).
#[inline(always)]
pub fn round(v: f32, mode: RoundingMode) -> f32 {
    round_f32(v, mode, 0)
}

/// The quantized code of one element, or `None` for NaN.
#[inline(always)]
pub fn quantize_one(x: f32, p: &Uniform, rule: Rule) -> Option<i32> {
    if x.is_nan() {
        return None;
    }
    let r = round(apply(x, p.factor, rule.op), rule.mode).max(p.lo).min(p.hi);
    Some(r as i32 + p.zero_point)
}

/// The fake-quantized value and mask of one element, or `None` for NaN.
#[inline(always)]
pub fn fake_quantize_one(x: f32, p: &Uniform, rule: Rule) -> Option<(f32, bool)> {
    if x.is_nan() {
        return None;
    }
    let r = round(apply(x, p.factor, rule.op), rule.mode);
    let inside = r >= p.lo && r <= p.hi;
    Some(((r.max(p.lo).min(p.hi) + 0.0) * p.scale, inside))
}

#[inline(always)]
pub fn dequantize_one(q: i32, p: &Uniform) -> f32 {
    (q - p.zero_point) as f32 * p.scale
}

fn check(p: &Params<'_>, n: usize) {
    if let Params::PerElement(PerElement { scale, .. }) = p {
        assert_eq!(scale.len(), n, "per-element parameters must cover the span");
    }
}

/// A rounding mode as a type, so each mode gets its own loop (no branch per element).
trait Mode {
    fn round(v: f32) -> f32;
}

macro_rules! mode {
    ($name:ident, $m:expr) => {
        struct $name;
        impl Mode for $name {
            #[inline(always)]
            fn round(v: f32) -> f32 {
                round_f32(v, $m, 0)
            }
        }
    };
}
mode!(HalfEven, RoundingMode::HalfToEven);
mode!(HalfAway, RoundingMode::HalfAwayFromZero);
mode!(HalfUp, RoundingMode::HalfUp);
mode!(Floor, RoundingMode::Floor);
mode!(TowardZero, RoundingMode::TowardZero);

/// Evaluates `$body` with the type alias `$M` naming the rule's deterministic mode (stochastic
/// rounding never reaches kernels; it maps to half-to-even here only to keep this total).
macro_rules! by_mode {
    ($mode:expr, $M:ident => $body:expr) => {
        match $mode {
            RoundingMode::HalfToEven | RoundingMode::Stochastic { .. } => {
                type $M = HalfEven;
                $body
            }
            RoundingMode::HalfAwayFromZero => {
                type $M = HalfAway;
                $body
            }
            RoundingMode::HalfUp => {
                type $M = HalfUp;
                $body
            }
            RoundingMode::Floor => {
                type $M = Floor;
                $body
            }
            RoundingMode::TowardZero => {
                type $M = TowardZero;
                $body
            }
        }
    };
}

#[inline(always)]
fn q_one<M: Mode>(x: f32, factor: f32, lo: f32, hi: f32, zp: i32, op: ScaleOp) -> i32 {
    M::round(apply(x, factor, op)).max(lo).min(hi) as i32 + zp
}

fn quantize_loop<M: Mode, T>(x: &[f32], p: Params<'_>, op: ScaleOp, out: &mut [T], store: impl Fn(i32) -> T) -> bool {
    match p {
        Params::Uniform(u) => {
            for (&xi, o) in x.iter().zip(out.iter_mut()) {
                *o = store(q_one::<M>(xi, u.factor, u.lo, u.hi, u.zero_point, op));
            }
        }
        Params::PerElement(e) => {
            for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
                *o = store(q_one::<M>(xi, e.factor[i], e.lo[i], e.hi[i], e.zero_point[i], op));
            }
        }
    }
    x.iter().any(|v| v.is_nan())
}

/// Quantizes into any integer type through `store`; shared by i8 and u8 (and SIMD tails).
/// A NaN element's output is unspecified; the return value says whether there was one.
#[inline(always)]
pub fn quantize_span<T>(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [T], store: impl Fn(i32) -> T) -> bool {
    assert_eq!(x.len(), out.len());
    check(&p, x.len());
    by_mode!(rule.mode, M => quantize_loop::<M, T>(x, p, rule.op, out, store))
}

#[inline(always)]
pub fn dequantize_span<T: Copy>(q: &[T], p: Params<'_>, out: &mut [f32], load: impl Fn(T) -> i32) {
    assert_eq!(q.len(), out.len());
    check(&p, q.len());
    match p {
        Params::Uniform(u) => {
            for (&qi, o) in q.iter().zip(out.iter_mut()) {
                *o = (load(qi) - u.zero_point) as f32 * u.scale;
            }
        }
        Params::PerElement(e) => {
            for (i, (&qi, o)) in q.iter().zip(out.iter_mut()).enumerate() {
                *o = (load(qi) - e.zero_point[i]) as f32 * e.scale[i];
            }
        }
    }
}

#[inline(always)]
fn fq_one<M: Mode>(x: f32, u: &Uniform, op: ScaleOp) -> (f32, bool) {
    let r = M::round(apply(x, u.factor, op));
    ((r.max(u.lo).min(u.hi) + 0.0) * u.scale, r >= u.lo && r <= u.hi)
}

fn fake_quantize_loop<M: Mode>(
    x: &[f32],
    p: Params<'_>,
    op: ScaleOp,
    out: &mut [f32],
    mask: Option<&mut [bool]>,
) -> bool {
    let at = |i: usize| match &p {
        Params::Uniform(u) => *u,
        Params::PerElement(e) => e.at(i),
    };
    match mask {
        None => {
            for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
                *o = fq_one::<M>(xi, &at(i), op).0;
            }
        }
        Some(m) => {
            for (i, ((&xi, o), mo)) in x.iter().zip(out.iter_mut()).zip(m.iter_mut()).enumerate() {
                (*o, *mo) = fq_one::<M>(xi, &at(i), op);
            }
        }
    }
    x.iter().any(|v| v.is_nan())
}

pub fn fake_quantize_span(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [bool]>) -> bool {
    assert_eq!(x.len(), out.len());
    if let Some(m) = mask.as_deref() {
        assert_eq!(m.len(), x.len());
    }
    check(&p, x.len());
    by_mode!(rule.mode, M => fake_quantize_loop::<M>(x, p, rule.op, out, mask))
}

pub fn pack_nibbles(codes: &[i8], out: &mut [u8]) {
    assert_eq!(codes.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(codes.chunks_exact(2)) {
        *o = (pair[0] as u8 & 0x0F) | ((pair[1] as u8 & 0x0F) << 4);
    }
}

pub fn unpack_nibbles(packed: &[u8], kind: Int4, out: &mut [i8]) {
    let signed = kind == Int4::Signed;
    assert_eq!(out.len(), 2 * packed.len());
    for (pair, &b) in out.chunks_exact_mut(2).zip(packed) {
        let (lo, hi) = (b & 0x0F, b >> 4);
        if signed {
            pair[0] = ((lo << 4) as i8) >> 4;
            pair[1] = ((hi << 4) as i8) >> 4;
        } else {
            pair[0] = lo as i8;
            pair[1] = hi as i8;
        }
    }
}

pub fn min_max(x: &[f32]) -> (f32, f32, bool) {
    let (mut lo, mut hi, mut nan) = (f32::INFINITY, f32::NEG_INFINITY, false);
    for &v in x {
        if v.is_nan() {
            nan = true;
        } else {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi, nan)
}

pub fn abs_max(x: &[f32]) -> (f32, bool) {
    let (mut m, mut nan) = (0f32, false);
    for &v in x {
        if v.is_nan() {
            nan = true;
        } else {
            m = m.max(v.abs());
        }
    }
    (m, nan)
}

pub fn abs_min(x: &[f32]) -> (f32, bool) {
    let (mut m, mut nan) = (f32::INFINITY, false);
    for &v in x {
        if v.is_nan() {
            nan = true;
        } else {
            m = m.min(v.abs());
        }
    }
    (m, nan)
}

/// Splits the four interleaved sub-histograms of [`Kernels::histogram`].
#[inline(always)]
pub fn split_sub(sub: &mut [u32], stride: usize) -> [&mut [u32]; 4] {
    assert_eq!(sub.len(), 4 * stride, "four sub-histograms of n + 1 slots");
    let (s0, r) = sub.split_at_mut(stride);
    let (s1, r) = r.split_at_mut(stride);
    let (s2, s3) = r.split_at_mut(stride);
    [s0, s1, s2, s3]
}

/// Elements per histogram block of the vector kernels.
pub const HIST_BLOCK: usize = 256;

/// The driver every vector histogram kernel shares: bins block `k` of [`HIST_BLOCK`] elements
/// with `bin` (`L` lanes per call: `L` values in, `L` bin indices out) while counting the indices
/// of block `k - 1`, so that no count reads an index straight out of a just-written vector
/// (store-to-load forwarding from a wide store to 4-byte loads stalls). Returns the elements
/// after the last whole block, for the kernel's own tail.
#[inline(always)]
pub fn histogram_blocks<'a, const L: usize>(
    x: &'a [f32],
    n: u32,
    sub: &mut [&mut [u32]; 4],
    bin: impl Fn(&[f32; L], &mut [u32; L]),
) -> &'a [f32] {
    let mut bufs = [[n; HIST_BLOCK]; 2];
    let (blocks, tail) = x.as_chunks::<HIST_BLOCK>();
    let mut fresh = 0;
    for blk in blocks {
        let [b0, b1] = &mut bufs;
        let (new, old) = if fresh == 0 { (b0, &*b1) } else { (b1, &*b0) };
        let (xs, _) = blk.as_chunks::<L>();
        let (ns, _) = new.as_chunks_mut::<L>();
        let (os, _) = old.as_chunks::<L>();
        for ((xv, nv), ov) in xs.iter().zip(ns).zip(os) {
            bin(xv, nv);
            count_indices(ov, sub);
        }
        fresh ^= 1;
    }
    // The last block filled. (Before the first block, the `old` buffer holds `n`s: counted in
    // the scratch slot.)
    count_indices(&bufs[fresh ^ 1], sub);
    tail
}

/// Counts bin indices (each `<= n`, the slot of elements in no bin) four at a time into the four
/// sub-histograms, so that consecutive increments never wait on each other's store.
#[inline(always)]
pub fn count_indices(idx: &[u32], sub: &mut [&mut [u32]; 4]) {
    let (quads, rest) = idx.as_chunks::<4>();
    for q in quads {
        for k in 0..4 {
            sub[k][q[k] as usize] += 1;
        }
    }
    for &i in rest {
        sub[0][i as usize] += 1;
    }
}

/// The histogram spec, one element at a time ([`HistBins::index`]).
pub fn histogram(x: &[f32], bins: &HistBins, of: HistogramOf, sub: &mut [u32]) {
    let abs = of == HistogramOf::Magnitudes;
    let mut s = split_sub(sub, bins.n as usize + 1);
    let mut buf = [0u32; 64];
    for c in x.chunks(64) {
        for (b, &v) in buf.iter_mut().zip(c) {
            *b = bins.index(if abs { v.abs() } else { v });
        }
        count_indices(&buf[..c.len()], &mut s);
    }
}

/// numpy's leaf of 8 to 128 elements (the reference's).
pub use quantproof_reference::calibrate::numpy_hist::pairwise_leaf_f32 as pairwise_leaf;
/// numpy's pairwise recursion with the 8..=128-element leaves summed by `leaf` (which must
/// reproduce [`pairwise_leaf`]): the reference's, written once.
pub use quantproof_reference::calibrate::numpy_hist::pairwise_sum_f32_with as pairwise_with;

pub fn pairwise_sum(a: &[f32]) -> f32 {
    pairwise_with(a, &pairwise_leaf)
}

pub fn kl_terms(p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
    assert!(p.len() == q.len() && p.len() == out.len(), "kl_terms: slices of one length");
    for ((o, &pv), &qv) in out.iter_mut().zip(p).zip(q) {
        *o = kl_term(pv, qv, sp, sq);
    }
}

/// The scalar kernel family.
#[derive(Debug, Clone, Copy)]
pub struct Scalar;

/// Views `i8` codes as bytes (two's complement).
#[inline(always)]
pub fn i8_bytes(q: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid for both.
    unsafe { core::slice::from_raw_parts(q.as_ptr().cast(), q.len()) }
}

/// Views `i8` codes as bytes, mutably.
#[inline(always)]
pub fn i8_bytes_mut(q: &mut [i8]) -> &mut [u8] {
    // SAFETY: as in `i8_bytes`; the exclusive borrow moves to the returned slice.
    unsafe { core::slice::from_raw_parts_mut(q.as_mut_ptr().cast(), q.len()) }
}

/// The portable table lookup: `out[i] = table[x[i]]`.
pub fn lut_bytes(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    for (o, &b) in out.iter_mut().zip(x) {
        *o = table[b as usize];
    }
}

/// Where requantization writes a code: as an `i32`, or as its low byte (exact for a range
/// inside `[-128, 127]` or `[0, 255]`: the byte is the `i8` code's two's complement or the `u8`
/// code itself).
pub trait CodeOut: Copy {
    fn from_code(q: i32) -> Self;
}

impl CodeOut for i32 {
    #[inline(always)]
    fn from_code(q: i32) -> i32 {
        q
    }
}

impl CodeOut for u8 {
    #[inline(always)]
    fn from_code(q: i32) -> u8 {
        q as u8
    }
}

/// The requantize spec, one element at a time (the reference's `Requantizer::apply`).
pub fn requantize<O: CodeOut>(acc: &[i32], r: &Requantizer, zero_point: i32, range: CodeRange, out: &mut [O]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = O::from_code(r.apply(a, zero_point, range));
    }
}

/// `out[i] = min(hi, max(lo, rows[..][i]))` for `i >= start`, on bytes read as codes of
/// `signedness` ([`crate::kernels::PoolKernels::max_rows`]; the ISAs' tails start past their
/// last whole vector). Every row has `out`'s length.
pub fn max_rows(signedness: Signedness, lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8], start: usize) {
    assert!(rows.iter().all(|r| r.len() == out.len()));
    // Row after row (loops the compiler vectorizes), on bytes ordered as codes: an `i8` code's
    // byte with its top bit flipped orders as the code does.
    let flip = if signedness == Signedness::Signed { 0x80u8 } else { 0 };
    let start = start.min(out.len());
    let out = &mut out[start..];
    out.fill(lo ^ flip);
    for r in rows {
        for (o, &v) in out.iter_mut().zip(&r[start..]) {
            *o = (*o).max(v ^ flip);
        }
    }
    for o in out.iter_mut() {
        *o = (*o).min(hi ^ flip) ^ flip;
    }
}

/// `out[i] = code(rows[0][i]) + .. + code(rows[r - 1][i])` (wrapping) for `i >= start`, the
/// bytes read as codes of `signedness` ([`crate::kernels::PoolKernels::sum_rows`]; the ISAs'
/// tails start past their last whole vector). Every row has `out`'s length.
pub fn sum_rows(signedness: Signedness, rows: &[&[u8]], out: &mut [i32], start: usize) {
    assert!(rows.iter().all(|r| r.len() == out.len()));
    // Row after row (loops the compiler vectorizes).
    let start = start.min(out.len());
    let out = &mut out[start..];
    out.fill(0);
    for r in rows {
        let r = &r[start..];
        match signedness {
            Signedness::Signed => out.iter_mut().zip(r).for_each(|(o, &v)| *o = o.wrapping_add(v as i8 as i32)),
            Signedness::Unsigned => out.iter_mut().zip(r).for_each(|(o, &v)| *o = o.wrapping_add(v as i32)),
        }
    }
}

/// The code a byte stands for: itself (`u8`) or its two's-complement value (`i8`).
#[inline(always)]
pub fn code_of_byte(b: u8, signedness: Signedness) -> i32 {
    match signedness {
        Signedness::Signed => b as i8 as i32,
        Signedness::Unsigned => b as i32,
    }
}

/// The binary-op spec, one pair at a time (the reference's `BinaryKernel::apply`); the result
/// is a code of the kernel's type, so its low byte is its byte.
pub fn binary_bytes(k: &BinaryKernel, signedness: Signedness, a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = k.apply(code_of_byte(x, signedness), code_of_byte(y, signedness)) as u8;
    }
}

/// Whether a float element-wise kernel can never meet a NaN on 8-bit codes, so that SIMD
/// `min`/`max`/convert give the reference's results: centred codes are at most 255 in magnitude,
/// so each dequantized value `(q - z) s` is finite and far from overflow when `255 s <= MAX / 4`,
/// their sum or product is then finite or `+-inf` (never `inf - inf`), and multiplying by a finite
/// factor or dividing by a positive finite scale cannot make a NaN either; infinities are then
/// clamped like any other value. The integer kernels always return true.
pub fn binary_floats_stay_finite(k: &BinaryKernel) -> bool {
    let small = |s: f32| 255.0 * s as f64 <= f32::MAX as f64 / 4.0;
    match *k {
        BinaryKernel::TorchAddSub { a, b, inv_sy, .. } => small(a.scale) && small(b.scale) && inv_sy.is_finite(),
        BinaryKernel::TorchMul { m, .. } => m.is_finite(),
        BinaryKernel::OnnxRuntime { a, b, y, .. } => {
            small(a.scale) && small(b.scale) && y.scale.is_finite() && y.scale > 0.0
        }
        _ => true,
    }
}

impl Kernels for Scalar {
    fn isa(&self) -> Isa {
        Isa::Scalar
    }
}

// The portable level is every family's defaults, which call the functions of this module.
impl QuantizeKernels for Scalar {}
impl ReduceKernels for Scalar {}
impl CalibrationKernels for Scalar {}
impl ArithKernels for Scalar {}
impl LutKernels for Scalar {}
impl PoolKernels for Scalar {}
