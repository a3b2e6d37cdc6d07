//! The kernel interface every ISA implements, and the table that hands kernels out.
//!
//! A kernel works on a *span*: a slice of elements whose parameters are either one shared set
//! ([`Params::Uniform`]) or one set per element ([`Params::PerElement`], slices as long as the
//! span). The planner in [`crate::ops`] cuts per-tensor, per-axis and per-block work into such
//! spans, so kernels never see shapes or axes.
//!
//! ## The arithmetic kernels must reproduce
//!
//! With `v = x / d` ([`ScaleOp::Divide`], `d` the scale) or `v = x * d`
//! ([`ScaleOp::MultiplyByReciprocal`], `d = RN(1/s)`), `lo = qmin - z` and `hi = qmax - z`
//! (exact small integers, as f32):
//!
//! * quantize: `q = to_int(clamp(round(v), lo, hi)) + z`. Clamping before rounding gives the
//!   same result (every rounding mode is monotone and fixes integers), which lets kernels clamp
//!   in float and convert without overflow.
//! * fake-quantize: `y = (clamp(round(v), lo, hi) + 0.0) * s` (the `+ 0.0` turns a `-0.0` into
//!   `+0.0`, as the reference's integer path produces), `mask = lo <= round(v) <= hi`.
//! * dequantize: `y = f32(q - z) * s`.
//!
//! Every operation is an IEEE single operation with a unique result; no fused multiply-add, no
//! approximate reciprocal. That is what makes SIMD and scalar bit-identical. A NaN input makes
//! the kernel return `true` (its outputs are then unspecified); the caller reports the error.

use crate::isa::Isa;
use quantproof_reference::quantize::ScaleOp;
use quantproof_reference::rounding::RoundingMode;

/// One parameter set shared by a whole span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    /// The scale `s` (dequantize, fake-quantize output).
    pub scale: f32,
    /// The divisor `s` or the multiplier `RN(1/s)`, per the rule's [`ScaleOp`].
    pub factor: f32,
    /// `qmin - z` as f32.
    pub lo: f32,
    /// `qmax - z` as f32.
    pub hi: f32,
    /// The zero point `z`.
    pub zero_point: i32,
}

/// One parameter set per element; every slice is as long as the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerElement<'a> {
    pub scale: &'a [f32],
    pub factor: &'a [f32],
    pub lo: &'a [f32],
    pub hi: &'a [f32],
    pub zero_point: &'a [i32],
}

impl<'a> PerElement<'a> {
    /// The sub-span `start..start + len`.
    pub fn slice(&self, start: usize, len: usize) -> PerElement<'a> {
        let r = start..start + len;
        PerElement {
            scale: &self.scale[r.clone()],
            factor: &self.factor[r.clone()],
            lo: &self.lo[r.clone()],
            hi: &self.hi[r.clone()],
            zero_point: &self.zero_point[r],
        }
    }

    pub fn len(&self) -> usize {
        self.scale.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// The parameters of element `i` as a [`Uniform`].
    pub fn at(&self, i: usize) -> Uniform {
        Uniform {
            scale: self.scale[i],
            factor: self.factor[i],
            lo: self.lo[i],
            hi: self.hi[i],
            zero_point: self.zero_point[i],
        }
    }
}

/// A span's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Params<'a> {
    Uniform(Uniform),
    PerElement(PerElement<'a>),
}

/// The arithmetic rule, restricted to what kernels implement: the five deterministic rounding
/// modes (stochastic rounding runs in the planner's scalar loop on every ISA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub op: ScaleOp,
    pub mode: RoundingMode,
}

/// The kernels of one ISA. Callers guarantee that every slice argument has the span's length
/// (`x.len()`, or `2 * packed.len()` for nibbles); implementations may assert it.
pub trait Kernels: Sync {
    fn isa(&self) -> Isa;
    /// `out[i] = q(x[i])` as i8. Returns true when some `x[i]` is NaN.
    fn quantize_i8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool;
    /// `out[i] = q(x[i])` as u8. Returns true when some `x[i]` is NaN.
    fn quantize_u8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool;
    /// `out[i] = f32(q[i] - z) * s`.
    fn dequantize_i8(&self, q: &[i8], p: Params<'_>, out: &mut [f32]);
    fn dequantize_u8(&self, q: &[u8], p: Params<'_>, out: &mut [f32]);
    /// Fake-quantize with optional straight-through mask. Returns true when some `x[i]` is NaN.
    fn fake_quantize(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [bool]>)
        -> bool;
    /// Packs `2 * out.len()` codes (each in `[-8, 15]`, low four bits kept) two per byte: code
    /// `2k` into the low nibble of `out[k]`, code `2k + 1` into the high nibble.
    fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]);
    /// Unpacks `2 * packed.len()` codes; signed nibbles are sign-extended.
    fn unpack_nibbles(&self, packed: &[u8], signed: bool, out: &mut [i8]);
    /// `(min, max, saw_nan)` over `x`: `(+inf, -inf, false)` when empty. NaN elements are
    /// skipped for min and max and reported through the flag. Infinities count. Signed zeros
    /// are not ordered (either zero may be returned for a min or max of zero).
    fn min_max(&self, x: &[f32]) -> (f32, f32, bool);
    /// `(max |x|, saw_nan)`, `0` when empty; NaN handled as in [`Kernels::min_max`].
    fn abs_max(&self, x: &[f32]) -> (f32, bool);
}

/// The kernels of `isa`, or `None` when this CPU lacks it.
pub fn table(isa: Isa) -> Option<&'static dyn Kernels> {
    match isa {
        Isa::Scalar => Some(&crate::arch::generic::Scalar),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::avx2::Avx2::new().map(|k| k as &dyn Kernels),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::avx512::Avx512::new().map(|k| k as &dyn Kernels),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::neon::Neon::new().map(|k| k as &dyn Kernels),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
