//! The portable scalar kernels: the fallback on every CPU, and the tail loop SIMD kernels share.
//!
//! Each function applies the span arithmetic documented in [`crate::kernels`] one element at a
//! time, with exactly the operations the reference uses.

use crate::isa::Isa;
use crate::kernels::{Kernels, Params, PerElement, Rule, Uniform};
use quantproof_reference::quantize::ScaleOp;
use quantproof_reference::rounding::{round_f32, RoundingMode};

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

fn param(p: &Params<'_>, i: usize) -> Uniform {
    match p {
        Params::Uniform(u) => *u,
        Params::PerElement(e) => e.at(i),
    }
}

fn check(p: &Params<'_>, n: usize) {
    if let Params::PerElement(PerElement { scale, .. }) = p {
        assert_eq!(scale.len(), n, "per-element parameters must cover the span");
    }
}

/// Quantizes into any integer type through `store`; shared by i8 and u8 (and SIMD tails).
#[inline(always)]
pub fn quantize_span<T>(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [T], store: impl Fn(i32) -> T) -> bool {
    assert_eq!(x.len(), out.len());
    check(&p, x.len());
    let mut nan = false;
    for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        match quantize_one(xi, &param(&p, i), rule) {
            Some(q) => *o = store(q),
            None => nan = true,
        }
    }
    nan
}

#[inline(always)]
pub fn dequantize_span<T: Copy>(q: &[T], p: Params<'_>, out: &mut [f32], load: impl Fn(T) -> i32) {
    assert_eq!(q.len(), out.len());
    check(&p, q.len());
    for (i, (&qi, o)) in q.iter().zip(out.iter_mut()).enumerate() {
        *o = dequantize_one(load(qi), &param(&p, i));
    }
}

pub fn fake_quantize_span(x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mut mask: Option<&mut [bool]>) -> bool {
    assert_eq!(x.len(), out.len());
    if let Some(m) = mask.as_deref() {
        assert_eq!(m.len(), x.len());
    }
    check(&p, x.len());
    let mut nan = false;
    for (i, (&xi, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        match fake_quantize_one(xi, &param(&p, i), rule) {
            Some((y, inside)) => {
                *o = y;
                if let Some(m) = mask.as_deref_mut() {
                    m[i] = inside;
                }
            }
            None => nan = true,
        }
    }
    nan
}

pub fn pack_nibbles(codes: &[i8], out: &mut [u8]) {
    assert_eq!(codes.len(), 2 * out.len());
    for (o, pair) in out.iter_mut().zip(codes.chunks_exact(2)) {
        *o = (pair[0] as u8 & 0x0F) | ((pair[1] as u8 & 0x0F) << 4);
    }
}

pub fn unpack_nibbles(packed: &[u8], signed: bool, out: &mut [i8]) {
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

/// The scalar kernel family.
#[derive(Debug, Clone, Copy)]
pub struct Scalar;

impl Kernels for Scalar {
    fn isa(&self) -> Isa {
        Isa::Scalar
    }
    fn quantize_i8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool {
        quantize_span(x, p, rule, out, |q| q as i8)
    }
    fn quantize_u8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
        quantize_span(x, p, rule, out, |q| q as u8)
    }
    fn dequantize_i8(&self, q: &[i8], p: Params<'_>, out: &mut [f32]) {
        dequantize_span(q, p, out, |v| v as i32)
    }
    fn dequantize_u8(&self, q: &[u8], p: Params<'_>, out: &mut [f32]) {
        dequantize_span(q, p, out, |v| v as i32)
    }
    fn fake_quantize(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [bool]>) -> bool {
        fake_quantize_span(x, p, rule, out, mask)
    }
    fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]) {
        pack_nibbles(codes, out)
    }
    fn unpack_nibbles(&self, packed: &[u8], signed: bool, out: &mut [i8]) {
        unpack_nibbles(packed, signed, out)
    }
    fn min_max(&self, x: &[f32]) -> (f32, f32, bool) {
        min_max(x)
    }
    fn abs_max(&self, x: &[f32]) -> (f32, bool) {
        abs_max(x)
    }
}
