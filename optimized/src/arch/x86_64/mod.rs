/*!
x86-64 kernels: AVX2 (256-bit, [`avx2`]) and AVX-512 F/BW/VL/DQ (512-bit, [`avx512`]).

Both families implement every method of [`crate::kernels::Kernels`] and are bit-exact with the
scalar kernels of [`crate::arch::generic`], which are their specification. This module holds what
the two share: the rounding-mode codes their kernels are monomorphized over, the rule dispatch,
and the arguments that make the vector arithmetic equal to the scalar one.

# Why the vector code gives the scalar bits

Every float operation is one correctly rounded IEEE operation (`vmulps`, `vdivps`, `vaddps`,
`vsubps`, `vroundps`/`vrndscaleps`, exact conversions), in the scalar code's order: no FMA, no
`rcp14`/`rcpps`. Three rewrites change the order of operations, and each is exact:

* **Clamp before rounding (quantize).** The scalar kernel computes `clamp(round(v), lo, hi)`; the
  vector kernels compute `round(clamp(v, lo, hi))`. `lo` and `hi` are integers (they are
  `qmin - z` and `qmax - z`). Every rounding sequence of `reference/src/rounding.rs` returns a
  value in `[floor(v), ceil(v)]` and returns integers unchanged, so for `v > hi` both sides give
  `hi` (`round(v) >= floor(v) >= hi`), for `v < lo` both give `lo`, and inside the range the clamp
  does nothing. Clamping first keeps the conversion to `i32` in range (±inf saturate for free)
  and lets AVX-512 round inside the conversion (`vcvtps2dq {rn-sae}` / `{rd-sae}`,
  `vcvttps2dq`), which is the same function as `vrndscaleps` followed by an exact conversion.
* **Half away from zero / half up in the integer domain (quantize).** The reference computes
  `t = trunc(v)`, `d = v - t`, `t + sign(v)` when `|d| >= 0.5`. `d` carries the sign of `v`
  (or is zero), so the vector code adds `+1` where `d >= 0.5` and `-1` where `d <= -0.5` to the
  integer `t`: the same comparisons on the same `d`, the same integer. Half up is
  `f = floor(v)`, `d = v - f`, `f + 1` where `d >= 0.5`, with the comparison on the same
  (possibly rounded) `d` the reference computes.
* **Zero point after narrowing (uniform quantize).** `q = r + z` with `r = clamp(...)` is formed
  in 16-bit lanes after a saturating pack of `r` to `i16`; the pack is exact and so is the sum,
  since the kernel first checks that `lo`, `hi` and `z` fit `i16` and that `[lo + z, hi + z]`
  lies in the output type (always true for parameters the planner builds from a valid
  `QuantParams`; otherwise the span runs on the scalar kernel). The final saturating pack to
  bytes then changes nothing. Per-element spans add `z` in `i32` and narrow by truncation, which
  is exactly the scalar `(r as i32 + z) as i8/u8`.

Fake-quantize rounds in float with the reference's exact sequence (it needs `round(v)` before
the clamp for its mask) and adds `0.0` after the clamp, so a `-0.0` becomes `+0.0` exactly as in
the scalar kernel; the product by `s` then has the scalar bits, sign of zero included.

# Division stays a division

[`ScaleOp::Divide`] (ONNX Runtime's rule) uses `vdivps`. On the development machine (AMD Zen 5)
one 512-bit `vdivps` issues every ~2.7 cycles, which caps the rule at ~20 Gelem/s on
cache-resident spans against ~33 for the multiply rule, and both rules are memory-bound on large
tensors. A certified alternative was built and proven (git history: `x * RN(1/s)` plus a per-lane
bound `|RN(x/s) - x RN(1/s)| < 3.0001 u |y| + 2^-148` checked against the distance to the
nearest rounding boundary, with a `vdivps` fallback; the certificate agreed with `vdivps` on
every f32 input for several divisors), but its three extra operations per vector compete for
the same pipes and it measured 17-19 Gelem/s, slower than dividing. It was removed.

# Calibration kernels

`histogram`, `pairwise_sum`, `kl_terms` and `abs_min` follow [`crate::kernels`]' calibration
section. The histogram's index uses the reference's float32 operations (`vdivps` included) and
compares against edges recomputed as `linspace` computes them, so its counts are numpy's by
construction; its increments are scalar (four sub-histograms) and interleaved with the next
block's vector work. `kl_terms` is the one place FMA appears: inside a float64 logarithm whose
float32 rounding is used only where it is certified equal to the reference's
(`crate::arch::ln`, [`crate::kernels::LN_GUARD_ULPS`]); every float32 operation of the terms
themselves is the reference's, unfused.

# NaN and infinities

A NaN input makes a kernel return `true`; the vector loops OR an unordered compare of the inputs
into an accumulator (one compare covers two vectors: `cmp_unord(a, b)` is true when either is
NaN). Outputs are unspecified then, as the trait allows. `±inf` reach the clamp as `±inf` (the
factor is finite and non-zero) and saturate to `hi`/`lo` like the scalar kernel.

`min_max` skips NaN with `vminps(x, acc)` / `vmaxps(x, acc)` (which return the second operand
when the first is NaN). The minimum or maximum of a set of floats is unique except for the sign
of a zero: when the extreme is a zero, the vector kernels may return `-0.0` where the scalar
kernel returns `+0.0` or the reverse (the trait allows either). `abs_max` has no such freedom
(`|x|` is never `-0.0`) and matches exactly.

# Memory

Loops over f32 inputs that write little (quantize, min/max) prefetch their input 8 KB ahead
(`PREFETCH_AHEAD`, with the measurements); dequantize prefetches its f32 output for writing
(`prefetchw`). Everything else was measured and left to the hardware prefetchers: prefetching
the byte streams (codes, nibbles) 8 KB ahead made a 16M-element dequantize drop from 9.6 to 6.7
Gelem/s and unpacking from 57 to 44, and prefetching fake-quantize's input and output changed
nothing.

Non-temporal stores were measured too: they lift a 16M-element quantize from about 9 to
10.5-11 Gelem/s and a dequantize from 8 to 9.6, but a kernel sees only its span (at most 64K
elements) and cannot tell a large tensor from a small one whose output the next operation would
read from cache, so they are not used (the planner could pass such a hint).

Main loops walk `as_chunks` arrays, so every full-vector load and store is in bounds by
construction. Tails: AVX-512 uses masked loads and stores (masked-off lanes are neither read nor
written, and cannot fault); AVX2 hands tails to the generic scalar functions, the specification
itself. No kernel reads or writes outside its slices, and none needs any alignment.
*/

pub mod avx2;
mod avx2_binary;
mod avx2_requant;
pub mod avx512;
mod avx512_binary;
mod avx512_requant;

use crate::kernels::Uniform;
use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
#[cfg(doc)]
use quantproof_reference::quantize::ScaleOp;

/// How far ahead of the current block streaming loops prefetch their input, in bytes.
///
/// Measured on the development machine (AMD Zen 5, one thread, 16M-element f32 -> i8 quantize):
/// no prefetch 7.3 Gelem/s, 2 KB ahead 7.5, 4 KB 8.2, 8 KB 9.0, 16 KB 8.6; on cache-resident
/// spans prefetching changes nothing measurable.
pub(crate) const PREFETCH_AHEAD: usize = 8192;

/// Prefetches `LINES` cache lines for writing (`prefetchw`) [`PREFETCH_AHEAD`] bytes past `block`.
#[inline(always)]
pub(crate) fn prefetch_w<T, const LINES: usize>(block: &T) {
    let p = (block as *const T).cast::<i8>().wrapping_add(PREFETCH_AHEAD);
    for i in 0..LINES {
        // SAFETY: as in `prefetch`: a hint that never faults or changes memory.
        unsafe { _mm_prefetch::<_MM_HINT_ET0>(p.wrapping_add(64 * i)) };
    }
}

/// Prefetches `LINES` cache lines starting [`PREFETCH_AHEAD`] bytes past the start of `block`
/// into all cache levels.
#[inline(always)]
pub(crate) fn prefetch<T, const LINES: usize>(block: &T) {
    let p = (block as *const T).cast::<i8>().wrapping_add(PREFETCH_AHEAD);
    for i in 0..LINES {
        // SAFETY: a prefetch is a hint: it never faults and never changes memory, so any
        // address is allowed (the pointer is only formed with wrapping arithmetic).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * i)) };
    }
}

/// Rounding-mode codes the kernels are monomorphized over (a const generic `u8`).
pub(crate) const EVEN: u8 = 0;
pub(crate) const AWAY: u8 = 1;
pub(crate) const UP: u8 = 2;
pub(crate) const FLOOR: u8 = 3;
pub(crate) const TRUNC: u8 = 4;

/// Calls `$body` with `const $div: bool` (true for [`ScaleOp::Divide`]) and `const $mode: u8`
/// (one of the codes above) fixed from `$rule`, or evaluates `$other` for stochastic rounding
/// (which never reaches kernels: the planner runs it in the reference's scalar loop).
///
/// [`ScaleOp::Divide`]: quantproof_reference::quantize::ScaleOp::Divide
macro_rules! with_rule {
    ($rule:expr, |$div:ident, $mode:ident| $body:expr, $other:expr) => {{
        use quantproof_reference::quantize::ScaleOp as __Op;
        use quantproof_reference::rounding::RoundingMode as __M;
        use $crate::arch::x86_64::{AWAY as __AWAY, EVEN as __EVEN, FLOOR as __FLOOR, TRUNC as __TRUNC, UP as __UP};
        macro_rules! __mode {
            ($d:expr, $m:expr) => {{
                const $div: bool = $d;
                const $mode: u8 = $m;
                $body
            }};
        }
        let rule: $crate::kernels::Rule = $rule;
        match (rule.op, rule.mode) {
            (__Op::Divide, __M::HalfToEven) => __mode!(true, __EVEN),
            (__Op::Divide, __M::HalfAwayFromZero) => __mode!(true, __AWAY),
            (__Op::Divide, __M::HalfUp) => __mode!(true, __UP),
            (__Op::Divide, __M::Floor) => __mode!(true, __FLOOR),
            (__Op::Divide, __M::TowardZero) => __mode!(true, __TRUNC),
            (__Op::MultiplyByReciprocal, __M::HalfToEven) => __mode!(false, __EVEN),
            (__Op::MultiplyByReciprocal, __M::HalfAwayFromZero) => __mode!(false, __AWAY),
            (__Op::MultiplyByReciprocal, __M::HalfUp) => __mode!(false, __UP),
            (__Op::MultiplyByReciprocal, __M::Floor) => __mode!(false, __FLOOR),
            (__Op::MultiplyByReciprocal, __M::TowardZero) => __mode!(false, __TRUNC),
            (_, __M::Stochastic { .. }) => $other,
        }
    }};
}
pub(crate) use with_rule;

/// Whether a uniform span may add its zero point in 16-bit lanes after an exact pack to `i16`
/// (see the module docs): `lo <= hi`, `lo`, `hi` and `z` fit `i16`, and `[lo + z, hi + z]` lies in
/// `[min, max]`, the output type's range. Parameters built from a valid `QuantParams` always
/// pass; anything else runs on the scalar kernel.
pub(crate) fn packs_exactly(u: &Uniform, min: i32, max: i32) -> bool {
    let i16r = i16::MIN as f32..=i16::MAX as f32;
    let z = u.zero_point as i64;
    u.lo <= u.hi
        && i16r.contains(&u.lo)
        && i16r.contains(&u.hi)
        && u.lo.fract() == 0.0
        && u.hi.fract() == 0.0
        && (i16::MIN as i64..=i16::MAX as i64).contains(&z)
        && u.lo as i64 + z >= min as i64
        && u.hi as i64 + z <= max as i64
}

pub(crate) use crate::arch::generic::{i8_bytes, i8_bytes_mut};

/// A mask of bools as bytes, for kernels that store 0 or 1 into it.
#[inline(always)]
pub(crate) fn bool_bytes(m: &mut [bool]) -> &mut [u8] {
    // SAFETY: bool is one byte; the kernels store only 0 and 1, valid bools, and `as_bools`
    // turns the view back.
    unsafe { core::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<u8>(), m.len()) }
}

/// The byte view of a bool slice (from [`bool_bytes`]) back as bools.
pub(crate) fn as_bools(m: &mut [u8]) -> &mut [bool] {
    // SAFETY: the bytes come from a `&mut [bool]` (`bool_bytes`) and the kernels store only 0
    // and 1 in them, so every byte is a valid bool.
    unsafe { core::slice::from_raw_parts_mut(m.as_mut_ptr().cast(), m.len()) }
}

/// The scalar kernel on a byte view (tails, and parameters or rules the vector code does not
/// take).
pub(crate) fn scalar_quantize<const SIGNED: bool>(
    x: &[f32],
    p: crate::kernels::Params<'_>,
    rule: crate::kernels::Rule,
    out: &mut [u8],
) -> bool {
    if SIGNED {
        crate::arch::generic::quantize_span(x, p, rule, out, |q| q as i8 as u8)
    } else {
        crate::arch::generic::quantize_span(x, p, rule, out, |q| q as u8)
    }
}

/// Panics unless per-element parameters cover `n` elements (the kernels' precondition).
pub(crate) fn check_params(p: &crate::kernels::Params<'_>, n: usize) {
    if let crate::kernels::Params::PerElement(e) = p {
        assert!(
            [e.factor.len(), e.lo.len(), e.hi.len(), e.zero_point.len(), e.scale.len()].iter().all(|&l| l == n),
            "per-element parameters must cover the span"
        );
    }
}

/// `impl QuantizeKernels for $token` forwarding to an x86 ISA module's `unsafe` kernels on
/// bytes: `quantize::<SIGNED>(x, p, rule, out) -> nan`, `dequantize::<SIGNED>(q, p, out)`,
/// `fake_quantize(x, p, rule, out, mask) -> nan`, `pack_nibbles(codes, out)` and
/// `unpack_nibbles::<SIGNED>(packed, out)`, callable when the CPU has the token's features, the
/// lengths agree and per-element parameters cover the span: the checks, the `i8` and `bool`
/// byte views and the safety argument, written once for both x86 levels.
macro_rules! forward_quantize_kernels {
    ($token:ty, $module:path, $features:literal) => {
        #[doc = concat!("The ISA's quantize / dequantize / fake-quantize / nibble kernels (", $features, ").")]
        impl $crate::kernels::QuantizeKernels for $token {
            fn quantize_i8(
                &self,
                x: &[f32],
                p: $crate::kernels::Params<'_>,
                rule: $crate::kernels::Rule,
                out: &mut [i8],
            ) -> bool {
                assert_eq!(x.len(), out.len());
                $crate::arch::x86_64::check_params(&p, x.len());
                use $module as kernel;
                // SAFETY: a token of this type exists only when the CPU has its features; the
                // lengths and the parameters were checked above.
                unsafe { kernel::quantize::<true>(x, p, rule, $crate::arch::x86_64::i8_bytes_mut(out)) }
            }

            fn quantize_u8(
                &self,
                x: &[f32],
                p: $crate::kernels::Params<'_>,
                rule: $crate::kernels::Rule,
                out: &mut [u8],
            ) -> bool {
                assert_eq!(x.len(), out.len());
                $crate::arch::x86_64::check_params(&p, x.len());
                use $module as kernel;
                // SAFETY: as in `quantize_i8`.
                unsafe { kernel::quantize::<false>(x, p, rule, out) }
            }

            fn dequantize_i8(&self, q: &[i8], p: $crate::kernels::Params<'_>, out: &mut [f32]) {
                assert_eq!(q.len(), out.len());
                $crate::arch::x86_64::check_params(&p, q.len());
                use $module as kernel;
                // SAFETY: as in `quantize_i8`.
                unsafe { kernel::dequantize::<true>($crate::arch::x86_64::i8_bytes(q), p, out) }
            }

            fn dequantize_u8(&self, q: &[u8], p: $crate::kernels::Params<'_>, out: &mut [f32]) {
                assert_eq!(q.len(), out.len());
                $crate::arch::x86_64::check_params(&p, q.len());
                use $module as kernel;
                // SAFETY: as in `quantize_i8`.
                unsafe { kernel::dequantize::<false>(q, p, out) }
            }

            fn fake_quantize(
                &self,
                x: &[f32],
                p: $crate::kernels::Params<'_>,
                rule: $crate::kernels::Rule,
                out: &mut [f32],
                mask: Option<&mut [bool]>,
            ) -> bool {
                assert_eq!(x.len(), out.len());
                $crate::arch::x86_64::check_params(&p, x.len());
                if let Some(m) = mask.as_deref() {
                    assert_eq!(m.len(), x.len());
                }
                use $module as kernel;
                // SAFETY: as in `quantize_i8` (the mask's length too).
                unsafe { kernel::fake_quantize(x, p, rule, out, mask.map($crate::arch::x86_64::bool_bytes)) }
            }

            fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]) {
                assert_eq!(codes.len(), 2 * out.len());
                use $module as kernel;
                // SAFETY: a token of this type exists only when the CPU has its features; two
                // codes per output byte (asserted).
                unsafe { kernel::pack_nibbles(codes, out) }
            }

            fn unpack_nibbles(&self, packed: &[u8], kind: quantproof_reference::pack::Int4, out: &mut [i8]) {
                assert_eq!(out.len(), 2 * packed.len());
                let out = $crate::arch::x86_64::i8_bytes_mut(out);
                use $module as kernel;
                if kind == quantproof_reference::pack::Int4::Signed {
                    // SAFETY: as in `pack_nibbles` (two output codes per packed byte).
                    unsafe { kernel::unpack_nibbles::<true>(packed, out) }
                } else {
                    // SAFETY: as in `pack_nibbles` (two output codes per packed byte).
                    unsafe { kernel::unpack_nibbles::<false>(packed, out) }
                }
            }
        }
    };
}
pub(crate) use forward_quantize_kernels;
