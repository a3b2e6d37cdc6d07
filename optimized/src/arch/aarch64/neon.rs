/*!
AArch64 Advanced SIMD (NEON, 128-bit) kernels, bit-exact with the scalar kernels of
[`crate::arch::generic`].

# Layout

Every span kernel runs a main loop over *blocks* of 16 elements (four `float32x4_t`, or one
byte vector of codes) and hands the last `len % 16` elements to the matching scalar function of
`generic` — so any length, including 0, and any start address work, and no load or store ever
leaves the caller's slices. Loads and stores are `ld1`/`st1` (and `ld2`/`st2` for nibbles), which
have no alignment requirement beyond the element's.

The rule's scale operation and rounding mode are const generics: each of the ten (op, mode)
pairs gets its own loop with no branch inside (`by_rule!`). Parameters come from a `Source`:
`Broadcast` splats a [`Params::Uniform`] set once per span, `Gather` loads four lanes of a
[`Params::PerElement`] set per vector.

# The instructions, and why they give the scalar kernels' exact bits

Every step is one IEEE single-precision operation with a unique result, applied in the scalar
kernels' order (see [`crate::kernels`]): no fused multiply-add, no `frecpe` estimate.

| step | scalar (`generic`) | NEON |
|---|---|---|
| `v = x / s` or `x * RN(1/s)` | `/`, `*` | `fdiv` (`vdivq_f32`), `fmul` (`vmulq_f32`) |
| half to even | `round_ties_even` | `frintn` (`vrndnq_f32`) |
| half away from zero | `t = trunc(v)`, `t ± 1` when `\|v - t\| >= 0.5` | `frinta` (`vrndaq_f32`) |
| half up | `f = floor(v)`, `f + 1` when `v - f >= 0.5` | `frintm`, `fsub`, `fcmge`, `fadd`, `bsl` |
| floor / toward zero | `floor` / `trunc` | `frintm` / `frintz` |
| clamp | `r.max(lo).min(hi)` | `fmaxnm`, `fminnm` |
| code | `r as i32 + z`, then `as i8` / `as u8` | `fcvtzs`, `add`, `xtn` twice (truncating) |
| fake-quantize | `(clamp + 0.0) * s`, `lo <= r <= hi` | `fadd` of `+0.0`, `fmul`, `fcmge`/`fcmle` |
| dequantize | `f32(q - z) * s` | `sxtl`/`uxtl`, `sub`, `scvtf`, `fmul` |
| NaN flag | `x.is_nan()` | `fcmeq x, x` is false |

Notes on the less obvious rows:

* `frinta` is round-half-away by definition (ties away from zero, otherwise nearest), which is
  what the scalar formula computes: `v - t` is the exact fraction, and `t ± 1` is exact below
  2^23 (above it `v` is already integral). Both keep the sign of a zero result. The
  `round_matches_scalar_*` tests compare the two on a sweep of bit patterns and every tie
  neighbourhood; the ignored `round_matches_scalar_on_every_f32` test checks all 2^32 patterns.
* `fmaxnm`/`fminnm` return the number when the other operand is a quiet NaN, like Rust's
  `f32::max`/`min` (a NaN `v` from a non-NaN `x`, e.g. `0 * inf`, clamps to `lo` on both sides).
  Rounding and arithmetic only ever produce quiet NaNs.
* `fcvtzs` truncates (the value is already integral) and saturates like `as i32`; `xtn` keeps
  the low bits like `as i8`/`as u8`, so even out-of-range parameters give the scalar bits.
* Infinities: `±inf / s` is `±inf`, every rounding keeps it, and the clamp saturates it.
* Subnormals: AArch64 Linux runs with `FPCR.FZ = 0`, so vector operations keep subnormal inputs
  and results exactly like scalar ones (unlike AArch32 NEON, which always flushes).
* min / max: `fmin`/`fmax` propagate NaN and `fminnm`/`fmaxnm` do not propagate a *quiet* one —
  but a signalling NaN makes them return NaN. So the kernels replace every NaN lane (found with
  `fcmeq x, x`) by the identity (`+inf` for min, `-inf` for max, `+0` for `|x|`) before `fmin`/
  `fmax`: any NaN, quiet or signalling, is skipped and flagged.

# Safety

[`Neon`] is a token: [`Neon::new`] returns it only after run-time detection found NEON, and the
`#[target_feature(enable = "neon")]` functions are reachable only through its methods. Those
functions are `unsafe fn`s whose other preconditions (slice lengths) are asserted by the safe
trait methods before the call; each load and store sits in an `unsafe` block stating the bound
that keeps it inside its slice.
*/

#![deny(unsafe_op_in_unsafe_fn)]

use crate::arch::generic;
use crate::isa::Isa;
use crate::kernels::{Kernels, Params, PerElement, Rule, Uniform};
use crate::kernels::{LutKernels, QuantizeKernels, ReduceKernels};
use core::arch::aarch64::*;
use quantproof_reference::pack::Int4;
use quantproof_reference::quantize::ScaleOp;
use quantproof_reference::rounding::RoundingMode;

/// Proof that this CPU has the Neon features; only [`Neon::new`] makes one.
#[derive(Debug)]
pub struct Neon {
    _private: (),
}

static TOKEN: Neon = Neon { _private: () };

impl Neon {
    /// The token, when the CPU has the features (cached detection).
    pub fn new() -> Option<&'static Neon> {
        if Isa::Neon.is_available() {
            Some(&TOKEN)
        } else {
            None
        }
    }
}

/// Elements per main-loop iteration: four f32 vectors, or one vector of 8-bit codes.
const BLOCK: usize = 16;

// Rounding modes as const-generic tags (`RoundingMode` carries a seed, so it cannot be one).
const HALF_EVEN: u8 = 0;
const HALF_AWAY: u8 = 1;
const HALF_UP: u8 = 2;
const FLOOR: u8 = 3;
const TOWARD_ZERO: u8 = 4;

/// `round(v)` under the mode tagged `MODE`, lane by lane, with the scalar kernels' exact bits.
#[inline]
#[target_feature(enable = "neon")]
fn round4<const MODE: u8>(v: float32x4_t) -> float32x4_t {
    match MODE {
        HALF_EVEN => vrndnq_f32(v),
        HALF_AWAY => vrndaq_f32(v),
        HALF_UP => {
            let f = vrndmq_f32(v);
            let up = vcgeq_f32(vsubq_f32(v, f), vdupq_n_f32(0.5));
            vbslq_f32(up, vaddq_f32(f, vdupq_n_f32(1.0)), f)
        }
        FLOOR => vrndmq_f32(v),
        _ => vrndq_f32(v),
    }
}

/// `x / factor` (`DIV`) or `x * factor`.
#[inline]
#[target_feature(enable = "neon")]
fn apply4<const DIV: bool>(x: float32x4_t, factor: float32x4_t) -> float32x4_t {
    if DIV {
        vdivq_f32(x, factor)
    } else {
        vmulq_f32(x, factor)
    }
}

/// The parameters of four consecutive elements.
#[derive(Clone, Copy)]
struct Lanes {
    scale: float32x4_t,
    factor: float32x4_t,
    lo: float32x4_t,
    hi: float32x4_t,
    zero_point: int32x4_t,
}

/// Where a kernel's per-lane parameters come from.
trait Source {
    /// The parameters of elements `i..i + 4`.
    ///
    /// # Safety
    /// `i + 4` must not exceed the span length the source was built for.
    unsafe fn lanes(&self, i: usize) -> Lanes;
}

/// One parameter set splatted over every lane.
struct Broadcast(Lanes);

impl Broadcast {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new(u: &Uniform) -> Broadcast {
        Broadcast(Lanes {
            scale: vdupq_n_f32(u.scale),
            factor: vdupq_n_f32(u.factor),
            lo: vdupq_n_f32(u.lo),
            hi: vdupq_n_f32(u.hi),
            zero_point: vdupq_n_s32(u.zero_point),
        })
    }
}

impl Source for Broadcast {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn lanes(&self, _i: usize) -> Lanes {
        self.0
    }
}

/// Per-element parameters, loaded four lanes at a time. Built only by [`Gather::new`], which
/// checks that all five slices have the span's length.
struct Gather<'a>(PerElement<'a>);

impl<'a> Gather<'a> {
    /// The source for a span of `n` elements; panics (a caller contract violation, as in the
    /// scalar kernels) when a parameter slice has another length.
    fn new(e: PerElement<'a>, n: usize) -> Gather<'a> {
        assert!(
            e.scale.len() == n && e.factor.len() == n && e.lo.len() == n && e.hi.len() == n && e.zero_point.len() == n,
            "per-element parameters must cover the span"
        );
        Gather(e)
    }
}

impl Source for Gather<'_> {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn lanes(&self, i: usize) -> Lanes {
        let e = &self.0;
        // SAFETY: the caller guarantees i + 4 <= n, and Gather::new checked that every slice
        // has length n, so each load reads four elements inside its slice.
        unsafe {
            Lanes {
                scale: vld1q_f32(e.scale.as_ptr().add(i)),
                factor: vld1q_f32(e.factor.as_ptr().add(i)),
                lo: vld1q_f32(e.lo.as_ptr().add(i)),
                hi: vld1q_f32(e.hi.as_ptr().add(i)),
                zero_point: vld1q_s32(e.zero_point.as_ptr().add(i)),
            }
        }
    }
}

/// The codes of four elements (as i32) under lane parameters `p`; clears the lanes of `ok`
/// whose `x` is NaN.
#[inline]
#[target_feature(enable = "neon")]
fn code4<const DIV: bool, const MODE: u8>(x: float32x4_t, p: &Lanes, ok: &mut uint32x4_t) -> int32x4_t {
    *ok = vandq_u32(*ok, vceqq_f32(x, x));
    let r = round4::<MODE>(apply4::<DIV>(x, p.factor));
    let r = vminnmq_f32(vmaxnmq_f32(r, p.lo), p.hi);
    vaddq_s32(vcvtq_s32_f32(r), p.zero_point)
}

/// The fake-quantized values of four elements and their inside-the-range mask (all ones where
/// `lo <= round(v) <= hi`); clears the lanes of `ok` whose `x` is NaN.
#[inline]
#[target_feature(enable = "neon")]
fn fake4<const DIV: bool, const MODE: u8>(x: float32x4_t, p: &Lanes, ok: &mut uint32x4_t) -> (float32x4_t, uint32x4_t) {
    *ok = vandq_u32(*ok, vceqq_f32(x, x));
    let r = round4::<MODE>(apply4::<DIV>(x, p.factor));
    let inside = vandq_u32(vcgeq_f32(r, p.lo), vcleq_f32(r, p.hi));
    let c = vminnmq_f32(vmaxnmq_f32(r, p.lo), p.hi);
    (vmulq_f32(vaddq_f32(c, vdupq_n_f32(0.0)), p.scale), inside)
}

/// True when some lane of `ok` was cleared.
#[inline]
#[target_feature(enable = "neon")]
fn any_cleared(ok: uint32x4_t) -> bool {
    vminvq_u32(ok) == 0
}

/// The 8-bit code types: the scalar store and load, and the NEON widening load.
trait Code8: Copy {
    /// `q as Self` (wrapping, like `xtn`).
    fn from_code(q: i32) -> Self;
    fn to_i32(self) -> i32;
    /// Sixteen codes at `p`, widened to i32.
    ///
    /// # Safety
    /// `p` must be valid for reading 16 elements.
    unsafe fn widen16(p: *const Self) -> [int32x4_t; 4];
}

impl Code8 for i8 {
    #[inline(always)]
    fn from_code(q: i32) -> i8 {
        q as i8
    }
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn widen16(p: *const i8) -> [int32x4_t; 4] {
        // SAFETY: the caller guarantees 16 readable elements at p.
        let b = unsafe { vld1q_s8(p) };
        let (w0, w1) = (vmovl_s8(vget_low_s8(b)), vmovl_high_s8(b));
        [vmovl_s16(vget_low_s16(w0)), vmovl_high_s16(w0), vmovl_s16(vget_low_s16(w1)), vmovl_high_s16(w1)]
    }
}

impl Code8 for u8 {
    #[inline(always)]
    fn from_code(q: i32) -> u8 {
        q as u8
    }
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn widen16(p: *const u8) -> [int32x4_t; 4] {
        // SAFETY: the caller guarantees 16 readable elements at p.
        let b = unsafe { vld1q_u8(p) };
        let (w0, w1) = (vmovl_u8(vget_low_u8(b)), vmovl_high_u8(b));
        [
            vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w0))),
            vreinterpretq_s32_u32(vmovl_high_u16(w0)),
            vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w1))),
            vreinterpretq_s32_u32(vmovl_high_u16(w1)),
        ]
    }
}

/// Picks the instance of a `<const DIV: bool, const MODE: u8, ..>` function for a rule, as a
/// function pointer; `None` for stochastic rounding (which kernels leave to the scalar code).
macro_rules! by_rule {
    ($rule:expr, $f:ident $(, $g:ty)*) => {{
        let div = matches!($rule.op, ScaleOp::Divide);
        match ($rule.mode, div) {
            (RoundingMode::HalfToEven, true) => Some($f::<true, HALF_EVEN $(, $g)*> as _),
            (RoundingMode::HalfToEven, false) => Some($f::<false, HALF_EVEN $(, $g)*> as _),
            (RoundingMode::HalfAwayFromZero, true) => Some($f::<true, HALF_AWAY $(, $g)*> as _),
            (RoundingMode::HalfAwayFromZero, false) => Some($f::<false, HALF_AWAY $(, $g)*> as _),
            (RoundingMode::HalfUp, true) => Some($f::<true, HALF_UP $(, $g)*> as _),
            (RoundingMode::HalfUp, false) => Some($f::<false, HALF_UP $(, $g)*> as _),
            (RoundingMode::Floor, true) => Some($f::<true, FLOOR $(, $g)*> as _),
            (RoundingMode::Floor, false) => Some($f::<false, FLOOR $(, $g)*> as _),
            (RoundingMode::TowardZero, true) => Some($f::<true, TOWARD_ZERO $(, $g)*> as _),
            (RoundingMode::TowardZero, false) => Some($f::<false, TOWARD_ZERO $(, $g)*> as _),
            (RoundingMode::Stochastic { .. }, _) => None,
        }
    }};
}

/// A quantize main loop: `(elements done, saw NaN)`.
type QuantizeBlocks<S> = unsafe fn(&[f32], &S, *mut u8) -> (usize, bool);

/// Quantizes the whole blocks of `x` into `out` (one byte per element, `q as i8` / `q as u8`).
///
/// # Safety
/// NEON must be available; `src` covers `x.len()` elements; `out` is valid for writing
/// `x.len()` bytes.
#[target_feature(enable = "neon")]
unsafe fn quantize_blocks<const DIV: bool, const MODE: u8, S: Source>(
    x: &[f32],
    src: &S,
    out: *mut u8,
) -> (usize, bool) {
    let (n, xp) = (x.len(), x.as_ptr());
    let mut ok = vdupq_n_u32(u32::MAX);
    let mut i = 0;
    while i + BLOCK <= n {
        // SAFETY: i + 16 <= n: the four loads read x[i..i + 16], the parameter lanes are those
        // of elements i..i + 16 (src covers n), and the store writes out[i..i + 16].
        unsafe {
            let q0 = code4::<DIV, MODE>(vld1q_f32(xp.add(i)), &src.lanes(i), &mut ok);
            let q1 = code4::<DIV, MODE>(vld1q_f32(xp.add(i + 4)), &src.lanes(i + 4), &mut ok);
            let q2 = code4::<DIV, MODE>(vld1q_f32(xp.add(i + 8)), &src.lanes(i + 8), &mut ok);
            let q3 = code4::<DIV, MODE>(vld1q_f32(xp.add(i + 12)), &src.lanes(i + 12), &mut ok);
            let h0 = vmovn_high_s32(vmovn_s32(q0), q1);
            let h1 = vmovn_high_s32(vmovn_s32(q2), q3);
            let b = vmovn_high_s16(vmovn_s16(h0), h1);
            vst1q_u8(out.add(i), vreinterpretq_u8_s8(b));
        }
        i += BLOCK;
    }
    (i, any_cleared(ok))
}

/// The shared body of `quantize_i8` / `quantize_u8`; the token proves NEON.
fn quantize<T: Code8>(_token: &Neon, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [T]) -> bool {
    assert_eq!(x.len(), out.len(), "quantize: x and out lengths differ");
    let n = x.len();
    // T is i8 or u8: one byte, every bit pattern valid, so the block loop may store raw bytes.
    let bytes = out.as_mut_ptr().cast::<u8>();
    let (done, nan) = match p {
        Params::Uniform(u) => {
            let f: Option<QuantizeBlocks<Broadcast>> = by_rule!(rule, quantize_blocks, Broadcast);
            match f {
                // SAFETY: the token proves NEON, the broadcast source covers any length, and out
                // has x.len() bytes (asserted above).
                Some(f) => unsafe { f(x, &Broadcast::new(&u), bytes) },
                None => (0, false),
            }
        }
        Params::PerElement(e) => {
            let src = Gather::new(e, n);
            let f: Option<QuantizeBlocks<Gather<'_>>> = by_rule!(rule, quantize_blocks, Gather<'_>);
            match f {
                // SAFETY: the token proves NEON, Gather::new checked that src covers n elements,
                // and out has n bytes (asserted above).
                Some(f) => unsafe { f(x, &src, bytes) },
                None => (0, false),
            }
        }
    };
    let tail = generic::quantize_span(&x[done..], tail_params(p, done, n), rule, &mut out[done..], T::from_code);
    nan | tail
}

/// The parameters of elements `done..n`.
fn tail_params<'a>(p: Params<'a>, done: usize, n: usize) -> Params<'a> {
    match p {
        Params::Uniform(u) => Params::Uniform(u),
        Params::PerElement(e) => Params::PerElement(e.slice(done, n - done)),
    }
}

/// A fake-quantize main loop: `(elements done, saw NaN)`.
type FakeBlocks<S> = unsafe fn(&[f32], &S, &mut [f32], Option<&mut [bool]>) -> (usize, bool);

/// Fake-quantizes the whole blocks of `x`.
///
/// # Safety
/// NEON must be available; `src` covers `x.len()` elements; `out` and `mask` (when present)
/// have `x.len()` elements.
#[target_feature(enable = "neon")]
unsafe fn fake_quantize_blocks<const DIV: bool, const MODE: u8, S: Source>(
    x: &[f32],
    src: &S,
    out: &mut [f32],
    mut mask: Option<&mut [bool]>,
) -> (usize, bool) {
    let (n, xp, op) = (x.len(), x.as_ptr(), out.as_mut_ptr());
    let mut ok = vdupq_n_u32(u32::MAX);
    let mut i = 0;
    while i + BLOCK <= n {
        let mut inside = [vdupq_n_u32(0); 4];
        for (k, m) in inside.iter_mut().enumerate() {
            let j = i + 4 * k;
            // SAFETY: j + 4 <= i + 16 <= n: the load reads x[j..j + 4], the lanes are those of
            // elements j..j + 4 (src covers n) and the store writes out[j..j + 4].
            unsafe {
                let (y, inr) = fake4::<DIV, MODE>(vld1q_f32(xp.add(j)), &src.lanes(j), &mut ok);
                vst1q_f32(op.add(j), y);
                *m = inr;
            }
        }
        if let Some(m) = mask.as_deref_mut() {
            let h0 = vmovn_high_u32(vmovn_u32(inside[0]), inside[1]);
            let h1 = vmovn_high_u32(vmovn_u32(inside[2]), inside[3]);
            let b = vandq_u8(vmovn_high_u16(vmovn_u16(h0), h1), vdupq_n_u8(1));
            // SAFETY: i + 16 <= n == m.len(); bool has the size of u8 and every byte stored is
            // 0 or 1, a valid bool.
            unsafe { vst1q_u8(m.as_mut_ptr().add(i).cast::<u8>(), b) };
        }
        i += BLOCK;
    }
    (i, any_cleared(ok))
}

/// Dequantizes the whole blocks of `q`.
///
/// # Safety
/// NEON must be available; `src` covers `q.len()` elements; `out` has `q.len()` elements.
#[target_feature(enable = "neon")]
unsafe fn dequantize_blocks<T: Code8, S: Source>(q: &[T], src: &S, out: &mut [f32]) -> usize {
    let (n, qp, op) = (q.len(), q.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + BLOCK <= n {
        // SAFETY: i + 16 <= n: reads q[i..i + 16]; the lanes are those of elements i..i + 16 and
        // the stores write out[i..i + 16].
        unsafe {
            let w = T::widen16(qp.add(i));
            for (k, wk) in w.into_iter().enumerate() {
                let p = src.lanes(i + 4 * k);
                let y = vmulq_f32(vcvtq_f32_s32(vsubq_s32(wk, p.zero_point)), p.scale);
                vst1q_f32(op.add(i + 4 * k), y);
            }
        }
        i += BLOCK;
    }
    i
}

/// The shared body of `dequantize_i8` / `dequantize_u8`; the token proves NEON.
fn dequantize<T: Code8>(_token: &Neon, q: &[T], p: Params<'_>, out: &mut [f32]) {
    assert_eq!(q.len(), out.len(), "dequantize: q and out lengths differ");
    let n = q.len();
    let done = match p {
        // SAFETY: the token proves NEON; the broadcast source covers any length and out has
        // q.len() elements (asserted above).
        Params::Uniform(u) => unsafe { dequantize_blocks(q, &Broadcast::new(&u), out) },
        Params::PerElement(e) => {
            let src = Gather::new(e, n);
            // SAFETY: the token proves NEON; Gather::new checked that src covers n elements.
            unsafe { dequantize_blocks(q, &src, out) }
        }
    };
    generic::dequantize_span(&q[done..], tail_params(p, done, n), &mut out[done..], T::to_i32);
}

/// Packs whole blocks: 32 codes into 16 bytes per iteration. Returns the bytes written.
///
/// # Safety
/// NEON must be available; `codes.len() == 2 * out.len()`.
#[target_feature(enable = "neon")]
unsafe fn pack_blocks(codes: &[i8], out: &mut [u8]) -> usize {
    let (n, cp, op) = (out.len(), codes.as_ptr().cast::<u8>(), out.as_mut_ptr());
    let mut i = 0;
    while i + BLOCK <= n {
        // SAFETY: i + 16 <= n: reads codes[2i..2i + 32] (codes has 2n elements, i8 read as u8)
        // and writes out[i..i + 16].
        unsafe {
            let v = vld2q_u8(cp.add(2 * i));
            // sli: (odd << 4) | (even & 0x0F), the low nibble from the even code.
            vst1q_u8(op.add(i), vsliq_n_u8::<4>(v.0, v.1));
        }
        i += BLOCK;
    }
    i
}

/// Unpacks whole blocks: 16 bytes into 32 codes per iteration. Returns the bytes read.
///
/// # Safety
/// NEON must be available; `out.len() == 2 * packed.len()`.
#[target_feature(enable = "neon")]
unsafe fn unpack_blocks(packed: &[u8], signed: bool, out: &mut [i8]) -> usize {
    let (n, pp, op) = (packed.len(), packed.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + BLOCK <= n {
        // SAFETY: i + 16 <= n: reads packed[i..i + 16] and writes out[2i..2i + 32] (out has 2n
        // elements).
        unsafe {
            let b = vld1q_u8(pp.add(i));
            let (lo, hi) = if signed {
                let s = vreinterpretq_s8_u8(b);
                (vshrq_n_s8::<4>(vshlq_n_s8::<4>(s)), vshrq_n_s8::<4>(s))
            } else {
                (vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8::<4>(b)))
            };
            vst2q_s8(op.add(2 * i), int8x16x2_t(lo, hi));
        }
        i += BLOCK;
    }
    i
}

/// `(min, max, saw NaN, elements done)` over the whole blocks of `x`, NaN lanes skipped.
///
/// # Safety
/// NEON must be available.
#[target_feature(enable = "neon")]
unsafe fn min_max_blocks(x: &[f32]) -> (f32, f32, bool, usize) {
    let (n, xp) = (x.len(), x.as_ptr());
    let (pinf, ninf) = (vdupq_n_f32(f32::INFINITY), vdupq_n_f32(f32::NEG_INFINITY));
    let (mut lo, mut hi) = ([pinf; 4], [ninf; 4]);
    let mut ok = vdupq_n_u32(u32::MAX);
    let mut i = 0;
    while i + BLOCK <= n {
        for k in 0..4 {
            // SAFETY: i + 4k + 4 <= i + 16 <= n: reads x[i + 4k..i + 4k + 4].
            let v = unsafe { vld1q_f32(xp.add(i + 4 * k)) };
            let num = vceqq_f32(v, v);
            ok = vandq_u32(ok, num);
            lo[k] = vminq_f32(lo[k], vbslq_f32(num, v, pinf));
            hi[k] = vmaxq_f32(hi[k], vbslq_f32(num, v, ninf));
        }
        i += BLOCK;
    }
    let lo = vminq_f32(vminq_f32(lo[0], lo[1]), vminq_f32(lo[2], lo[3]));
    let hi = vmaxq_f32(vmaxq_f32(hi[0], hi[1]), vmaxq_f32(hi[2], hi[3]));
    (vminvq_f32(lo), vmaxvq_f32(hi), any_cleared(ok), i)
}

/// `(max |x|, saw NaN, elements done)` over the whole blocks of `x`, NaN lanes skipped.
///
/// # Safety
/// NEON must be available.
#[target_feature(enable = "neon")]
unsafe fn abs_max_blocks(x: &[f32]) -> (f32, bool, usize) {
    let (n, xp) = (x.len(), x.as_ptr());
    let mut m = [vdupq_n_f32(0.0); 4];
    let mut ok = vdupq_n_u32(u32::MAX);
    let mut i = 0;
    while i + BLOCK <= n {
        for (k, mk) in m.iter_mut().enumerate() {
            // SAFETY: i + 4k + 4 <= i + 16 <= n: reads x[i + 4k..i + 4k + 4].
            let v = unsafe { vld1q_f32(xp.add(i + 4 * k)) };
            let num = vceqq_f32(v, v);
            ok = vandq_u32(ok, num);
            // |v| with NaN lanes zeroed (+0 is the identity of max over |x|).
            let a = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vabsq_f32(v)), num));
            *mk = vmaxq_f32(*mk, a);
        }
        i += BLOCK;
    }
    let m = vmaxq_f32(vmaxq_f32(m[0], m[1]), vmaxq_f32(m[2], m[3]));
    (vmaxvq_f32(m), any_cleared(ok), i)
}

/// `out[i] = table[x[i]]` with `tbl` over the first 64 entries and `tbx` over the next three
/// 64-entry quarters (an index outside a quarter leaves the lane unchanged), 16 bytes at a time;
/// the tail through a zero-padded stack buffer.
///
/// # Safety
/// The CPU must have NEON; `out.len() == x.len()`.
#[target_feature(enable = "neon")]
unsafe fn lut_tbl(table: &[u8; 256], x: &[u8], out: &mut [u8]) {
    let t = table.as_ptr();
    // SAFETY: `table` holds 256 bytes: four 64-byte groups of four 16-byte loads.
    let q = |k: usize| unsafe { vld1q_u8_x4(t.add(64 * k)) };
    let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
    let look = |idx: uint8x16_t| {
        let r = vqtbl4q_u8(q0, idx);
        let r = vqtbx4q_u8(r, q1, vsubq_u8(idx, vdupq_n_u8(64)));
        let r = vqtbx4q_u8(r, q2, vsubq_u8(idx, vdupq_n_u8(128)));
        vqtbx4q_u8(r, q3, vsubq_u8(idx, vdupq_n_u8(192)))
    };
    let n = x.len().min(out.len());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n` bytes are readable in `x` and writable in `out`.
        unsafe { vst1q_u8(out.as_mut_ptr().add(i), look(vld1q_u8(x.as_ptr().add(i)))) };
        i += 16;
    }
    if i < n {
        let mut buf = [0u8; 16];
        buf[..n - i].copy_from_slice(&x[i..n]);
        // SAFETY: `buf` holds 16 bytes.
        unsafe { vst1q_u8(buf.as_mut_ptr(), look(vld1q_u8(buf.as_ptr()))) };
        out[i..n].copy_from_slice(&buf[..n - i]);
    }
}

impl Kernels for Neon {
    fn isa(&self) -> Isa {
        Isa::Neon
    }
}

impl QuantizeKernels for Neon {
    fn quantize_i8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool {
        quantize(self, x, p, rule, out)
    }

    fn quantize_u8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
        quantize(self, x, p, rule, out)
    }

    fn dequantize_i8(&self, q: &[i8], p: Params<'_>, out: &mut [f32]) {
        dequantize(self, q, p, out)
    }

    fn dequantize_u8(&self, q: &[u8], p: Params<'_>, out: &mut [f32]) {
        dequantize(self, q, p, out)
    }

    fn fake_quantize(
        &self,
        x: &[f32],
        p: Params<'_>,
        rule: Rule,
        out: &mut [f32],
        mut mask: Option<&mut [bool]>,
    ) -> bool {
        let n = x.len();
        assert_eq!(n, out.len(), "fake_quantize: x and out lengths differ");
        if let Some(m) = mask.as_deref() {
            assert_eq!(n, m.len(), "fake_quantize: x and mask lengths differ");
        }
        let (done, nan) = match p {
            Params::Uniform(u) => {
                let f: Option<FakeBlocks<Broadcast>> = by_rule!(rule, fake_quantize_blocks, Broadcast);
                match f {
                    // SAFETY: self is a Neon token; the broadcast source covers any length; out
                    // and mask have n elements (asserted above).
                    Some(f) => unsafe { f(x, &Broadcast::new(&u), out, mask.as_deref_mut()) },
                    None => (0, false),
                }
            }
            Params::PerElement(e) => {
                let src = Gather::new(e, n);
                let f: Option<FakeBlocks<Gather<'_>>> = by_rule!(rule, fake_quantize_blocks, Gather<'_>);
                match f {
                    // SAFETY: self is a Neon token; Gather::new checked that src covers n
                    // elements; out and mask have n elements (asserted above).
                    Some(f) => unsafe { f(x, &src, out, mask.as_deref_mut()) },
                    None => (0, false),
                }
            }
        };
        let tail_mask = mask.map(|m| &mut m[done..]);
        let tail = generic::fake_quantize_span(&x[done..], tail_params(p, done, n), rule, &mut out[done..], tail_mask);
        nan | tail
    }

    fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]) {
        assert_eq!(codes.len(), 2 * out.len(), "pack_nibbles: codes must hold two codes per byte");
        // SAFETY: self is a Neon token; the lengths were asserted above.
        let done = unsafe { pack_blocks(codes, out) };
        generic::pack_nibbles(&codes[2 * done..], &mut out[done..]);
    }

    fn unpack_nibbles(&self, packed: &[u8], kind: Int4, out: &mut [i8]) {
        let signed = kind == Int4::Signed;
        assert_eq!(out.len(), 2 * packed.len(), "unpack_nibbles: out must hold two codes per byte");
        // SAFETY: self is a Neon token; the lengths were asserted above.
        let done = unsafe { unpack_blocks(packed, signed, out) };
        generic::unpack_nibbles(&packed[done..], kind, &mut out[2 * done..]);
    }
}

impl ReduceKernels for Neon {
    fn min_max(&self, x: &[f32]) -> (f32, f32, bool) {
        // SAFETY: self is a Neon token.
        let (lo, hi, nan, done) = unsafe { min_max_blocks(x) };
        let (tlo, thi, tnan) = generic::min_max(&x[done..]);
        (lo.min(tlo), hi.max(thi), nan | tnan)
    }

    fn abs_min(&self, x: &[f32]) -> (f32, bool) {
        // SAFETY: self is a Neon token.
        unsafe { super::neon_calib::abs_min(x) }
    }

    fn pairwise_sum(&self, a: &[f32]) -> f32 {
        // SAFETY: self is a Neon token.
        generic::pairwise_with(a, &|leaf| unsafe { super::neon_calib::pairwise_leaf(leaf) })
    }

    fn abs_max(&self, x: &[f32]) -> (f32, bool) {
        // SAFETY: self is a Neon token.
        let (m, nan, done) = unsafe { abs_max_blocks(x) };
        let (tm, tnan) = generic::abs_max(&x[done..]);
        (m.max(tm), nan | tnan)
    }
}

crate::kernels::forward_calibration_kernels!(Neon, super::neon_calib, "NEON");

crate::kernels::forward_arith_kernels!(Neon, super::neon_binary, super::neon_requant, "NEON");

crate::kernels::forward_pool_kernels!(Neon, super::neon, "NEON");

/// [`crate::kernels::PoolKernels::max_rows`], sixteen bytes at a time (`smax` / `umax` from `lo`
/// over the rows, then `smin` / `umin` with `hi`), the tail portable. Every row has `out`'s
/// length.
#[target_feature(enable = "neon")]
fn max_rows(signedness: quantproof_reference::scheme::Signedness, lo: u8, hi: u8, rows: &[&[u8]], out: &mut [u8]) {
    let n = out.len() / 16 * 16;
    let signed = signedness == quantproof_reference::scheme::Signedness::Signed;
    let (vlo, vhi) = (vdupq_n_u8(lo), vdupq_n_u8(hi));
    for i in (0..n).step_by(16) {
        let mut m = vlo;
        for r in rows {
            // SAFETY: `i + 16 <= n <= out.len() == r.len()`: 16 readable bytes.
            let b = unsafe { vld1q_u8(r.as_ptr().add(i)) };
            m = if signed { vreinterpretq_u8_s8(vmaxq_s8(vreinterpretq_s8_u8(m), vreinterpretq_s8_u8(b))) } else { vmaxq_u8(m, b) };
        }
        let c = if signed { vreinterpretq_u8_s8(vminq_s8(vreinterpretq_s8_u8(m), vreinterpretq_s8_u8(vhi))) } else { vminq_u8(m, vhi) };
        // SAFETY: 16 writable bytes of `out` from `i` (as above).
        unsafe { vst1q_u8(out.as_mut_ptr().add(i), c) };
    }
    generic::max_rows(signedness, lo, hi, rows, out, n);
}

/// [`crate::kernels::PoolKernels::sum_rows`], eight bytes of each row widened to 32-bit lanes at
/// a time (`sxtl` / `uxtl`, twice) and added, the tail portable. Every row has `out`'s length.
#[target_feature(enable = "neon")]
fn sum_rows(signedness: quantproof_reference::scheme::Signedness, rows: &[&[u8]], out: &mut [i32]) {
    let signed = signedness == quantproof_reference::scheme::Signedness::Signed;
    let n = out.len() / 8 * 8;
    for i in (0..n).step_by(8) {
        let (mut lo, mut hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
        for r in rows {
            // SAFETY: `i + 8 <= n <= out.len() == r.len()`: eight readable bytes.
            let b = unsafe { vld1_u8(r.as_ptr().add(i)) };
            // Widen to 16 bits (sign- or zero-extended), then to 32 in two halves.
            let w = if signed { vmovl_s8(vreinterpret_s8_u8(b)) } else { vreinterpretq_s16_u16(vmovl_u8(b)) };
            let (l, h) = if signed {
                (vmovl_s16(vget_low_s16(w)), vmovl_high_s16(w))
            } else {
                let u = vreinterpretq_u16_s16(w);
                (vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(u))), vreinterpretq_s32_u32(vmovl_high_u16(u)))
            };
            lo = vaddq_s32(lo, l);
            hi = vaddq_s32(hi, h);
        }
        // SAFETY: eight writable i32 of `out` from `i` (as above).
        unsafe {
            let p = out.as_mut_ptr().add(i);
            vst1q_s32(p, lo);
            vst1q_s32(p.add(4), hi);
        }
    }
    generic::sum_rows(signedness, rows, out, n);
}

impl LutKernels for Neon {
    fn lut_bytes(&self, table: &[u8; 256], x: &[u8], out: &mut [u8]) {
        assert_eq!(x.len(), out.len());
        // SAFETY: this token exists only when NEON was detected; the lengths are equal.
        unsafe { lut_tbl(table, x, out) }
    }
}

#[cfg(test)]
#[path = "neon_tests.rs"]
mod tests;
