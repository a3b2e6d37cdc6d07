//! Requantization: an `int32` value (an accumulator, a difference of codes, a sum) times a real
//! multiplier `M`, rounded, plus a zero point, saturated to an 8-bit code range.
//!
//! `y = clamp(z + round(acc * M), qmin, qmax)` is the formula every framework agrees on; the
//! variants below differ in how `M` is represented and how `round` is done, and each is one
//! framework's arithmetic, named:
//!
//! | variant | framework | `M` as | rounding |
//! |---|---|---|---|
//! | [`Requantizer::FloatTorch`] | PyTorch / fbgemm (`requantize_from_int`, fbgemm's `ReQuantizeOutput`) | `f32` | `RN_f32(RN_f32(acc) * M)`, then ties to even (`nearbyint`) |
//! | [`requantize_float_torch_with_float_bias`] | PyTorch / fbgemm with a float bias (quantized linear and conv) | `f32` | the bias divided by `RN(s_x s_w)` (or a fused multiply-add with its reciprocal) added to `RN(acc)` first, then as above |
//! | [`multiply_float_tflite_f64`] | TFLite 2.21's reference `FULLY_CONNECTED` | `f64` | `round(f64(acc) * M)`, ties away from zero |
//! | [`Requantizer::FloatOnnxRuntime`] | ONNX Runtime / MLAS (`MlasRequantizeOutput`) | `f32` | the same product, clamped to `[qmin - z, qmax - z]` in float, then ties to even (the `1.5 * 2^23` magic-number trick) |
//! | [`Requantizer::DoubleRounding`] | gemmlowp, TFLite's default `MultiplyByQuantizedMultiplier` | Q31 multiplier and shift | SRDHM (nearest, ties toward +inf), then RDBPOT (nearest, ties away from zero): twice |
//! | [`Requantizer::SingleRounding`] | TFLite built with `TFLITE_SINGLE_ROUNDING` | Q31 multiplier and shift | `(acc * m + 2^(t-1)) >> t` with `t = 31 - shift`: once, ties toward +inf |
//! | [`Requantizer::Rndnu`] | XNNPACK's `rndnu` | the `f32`'s 24-bit significand and a shift, exact | `(acc * m + 2^(s-1)) >> s`: once, ties toward +inf |
//! | [`Requantizer::PowerOfTwo`] | seed 000's chip without floating point | `2^k`, `k = round(log2 M)` | a shift; right shifts round to nearest, ties away (C's `round`) |
//!
//! The two float variants compute the same value for every input: clamping to integral bounds
//! before rounding to nearest commutes with the rounding (a test proves it over all edge values
//! and a random sample). They are kept apart because the frameworks are.
//!
//! ## Double versus single rounding
//!
//! Double rounding rounds `acc * m / 2^31` to an integer first, then divides by `2^-shift` and
//! rounds again; the second rounding sees the first one's result, so a value just below a tie can
//! be pushed onto it and then away, and the two roundings break exact ties differently for
//! negative values (SRDHM toward +infinity, RDBPOT away from zero). Measured by
//! `double_vs_single_rounding_rate` (`reference/tests/fixedpoint_requantize.rs`) over 10^6 random
//! `(acc, M)` pairs, `acc` uniform in `[-2^20, 2^20)` and `M` log-uniform in `[2^-20, 1)`: the two
//! disagree on **2.47 %** of inputs (24,692 of 10^6), always by exactly 1. The rate is highest for
//! small right shifts (a multiplier near 1, where a first-rounded value lands on a tie of the
//! second rounding often) and falls roughly as `2^-shift`. TensorFlow issue #25087 is one such input (`x = 7984`, `M = 1583594044`,
//! `shift = -9`: double rounding gives 12, single rounding 11).
//!
//! ## Converting a real multiplier to Q31
//!
//! [`QuantizedMultiplier::from_real`] is TFLite's `QuantizeMultiplier`: `M = q * 2^shift` with
//! `q` in `[0.5, 1)` (`frexp`), `m = round(q * 2^31)` (ties away from zero). Its edges:
//! `m` rounding up to `2^31` is halved and the shift incremented; `M = 0` gives `m = 0`;
//! a shift below `-31` (every result would round to zero; subnormal multipliers land here)
//! gives `m = 0, shift = 0`; a multiplier `>= 2^31`, negative, NaN or infinite is a typed error.

use crate::error::{QuantError, Result};
use crate::fixedpoint::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};
use crate::scheme::CodeRange;

/// A real multiplier as a Q31 fixed-point value and a power-of-two exponent:
/// `M = multiplier / 2^31 * 2^shift`, `multiplier` in `[2^30, 2^31)` (or 0 for `M = 0`).
/// `shift > 0` is a left shift (TFLite's "exponent" convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    pub multiplier: i32,
    pub shift: i32,
}

impl QuantizedMultiplier {
    /// TFLite's `QuantizeMultiplier` (see the module docs): `frexp`, round half away from zero,
    /// `2^31` halved, shifts below `-31` flushed to zero. Errors: NaN, infinity or a negative
    /// multiplier ([`QuantError::NonFinite`] / [`QuantError::InvalidArgument`]); a multiplier of
    /// `2^31` or more, whose left shift would exceed 31 ([`QuantError::InvalidArgument`]).
    pub fn from_real(real: f64) -> Result<QuantizedMultiplier> {
        if !real.is_finite() {
            return Err(QuantError::NonFinite { what: "real multiplier", index: 0, value: real });
        }
        if real < 0.0 {
            return Err(QuantError::InvalidArgument {
                what: "real multiplier",
                detail: format!("{real} is negative; a requantization multiplier is a ratio of scales"),
            });
        }
        if real == 0.0 {
            return Ok(QuantizedMultiplier { multiplier: 0, shift: 0 });
        }
        let (q, mut shift) = frexp(real);
        let mut fixed = (q * (1u64 << 31) as f64).round() as i64;
        if fixed == 1i64 << 31 {
            fixed /= 2;
            shift += 1;
        }
        if shift < -31 {
            return Ok(QuantizedMultiplier { multiplier: 0, shift: 0 });
        }
        if shift > 31 {
            return Err(QuantError::InvalidArgument {
                what: "real multiplier",
                detail: format!("{real:e} needs a left shift of {shift}; at most 31 is representable"),
            });
        }
        Ok(QuantizedMultiplier { multiplier: fixed as i32, shift })
    }

    /// TFLite's `QuantizeMultiplierSmallerThanOneExp`: [`QuantizedMultiplier::from_real`] of a
    /// multiplier that must lie in `(0, 1)` (TFLite aborts otherwise; here it is a typed error).
    pub fn smaller_than_one(real: f64, what: &'static str) -> Result<QuantizedMultiplier> {
        if real.is_nan() || real <= 0.0 || real >= 1.0 {
            return Err(QuantError::InvalidArgument {
                what,
                detail: format!("multiplier {real:e} must lie in (0, 1) (TFLite aborts on this model)"),
            });
        }
        QuantizedMultiplier::from_real(real)
    }

    /// TFLite's `QuantizeMultiplierGreaterThanOne`: the multiplier must exceed 1.
    pub fn greater_than_one(real: f64, what: &'static str) -> Result<QuantizedMultiplier> {
        if real.is_nan() || real <= 1.0 {
            return Err(QuantError::InvalidArgument { what, detail: format!("multiplier {real:e} must exceed 1") });
        }
        QuantizedMultiplier::from_real(real)
    }

    /// The exact real value `multiplier * 2^(shift - 31)`.
    pub fn to_real(self) -> f64 {
        self.multiplier as f64 * 2f64.powi(self.shift - 31)
    }
}

/// `x = q * 2^e` with `q` in `[0.5, 1)` for finite positive `x` (C's `frexp`), subnormals
/// included.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (q, e) = frexp(x * 2f64.powi(64));
        return (q, e - 64);
    }
    let e = biased - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, e)
}

/// gemmlowp's and TFLite's default `MultiplyByQuantizedMultiplier`: `x * 2^max(shift, 0)` (a
/// 32-bit multiplication, as in TFLite; callers keep it in range), then
/// [`saturating_rounding_doubling_high_mul`] by `multiplier` (nearest, ties toward +infinity),
/// then [`rounding_divide_by_pot`] by `max(-shift, 0)` (nearest, ties away from zero): two
/// roundings.
pub fn multiply_by_quantized_multiplier_double_rounding(x: i32, m: QuantizedMultiplier) -> i32 {
    let left = m.shift.max(0) as u32;
    let right = (-m.shift).max(0) as u32;
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32 << left.min(31)), m.multiplier),
        right,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplier` under `TFLITE_SINGLE_ROUNDING`: with
/// `t = 31 - shift`, `(x * multiplier + 2^(t-1)) >> t` in 64 bits (an arithmetic shift: one
/// rounding, to nearest with ties toward +infinity). The result saturates to `i32` (TFLite
/// only debug-checks that it fits).
pub fn multiply_by_quantized_multiplier_single_rounding(x: i32, m: QuantizedMultiplier) -> i32 {
    rounding_shift_product(x, m.multiplier, (31 - m.shift).clamp(1, 62) as u32)
}

/// The one rounding of TFLite's single-rounding path and XNNPACK's rndnu: `(x * multiplier +
/// 2^(t-1)) >> t` in 64 bits (an arithmetic shift: to nearest, ties toward +infinity), saturated
/// to `i32`; `t` in `1..=62`.
pub fn rounding_shift_product(x: i32, multiplier: i32, t: u32) -> i32 {
    let t = t.clamp(1, 62);
    let p = x as i64 * multiplier as i64 + (1i64 << (t - 1));
    (p >> t).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// XNNPACK's `rndnu` parameters for a scale: the `f32`'s significand (24 bits, implicit one
/// included) and the right shift that makes `scale = multiplier / 2^shift` exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RndnuParams {
    pub multiplier: i32,
    pub shift: u32,
}

impl RndnuParams {
    /// XNNPACK accepts scales in `[2^-32, 256)`; others are a typed error. Subnormal and
    /// non-finite scales are therefore errors too.
    pub fn from_scale(scale: f32) -> Result<RndnuParams> {
        if !(scale.is_finite() && scale >= 2f32.powi(-32) && scale < 256.0) {
            return Err(QuantError::InvalidArgument {
                what: "rndnu scale",
                detail: format!("{scale:e} lies outside XNNPACK's [2^-32, 256)"),
            });
        }
        let bits = scale.to_bits();
        let multiplier = ((bits & 0x007f_ffff) | 0x0080_0000) as i32;
        // scale = multiplier * 2^(biased - 127 - 23).
        let shift = (127 + 23 - (bits >> 23) as i32) as u32;
        Ok(RndnuParams { multiplier, shift })
    }
}

/// XNNPACK's `rndnu`: `(x * multiplier + 2^(shift-1)) >> shift` in 64 bits, an arithmetic
/// shift: round to nearest, ties toward +infinity, once. Saturates to `i32`.
pub fn multiply_rndnu(x: i32, p: RndnuParams) -> i32 {
    rounding_shift_product(x, p.multiplier, p.shift.clamp(1, 62))
}

/// fbgemm's and PyTorch's float requantization of `acc` by an `f32` multiplier:
/// `nearbyint(RN_f32(RN_f32(acc) * multiplier))`, ties to even, saturated to `i32`.
pub fn multiply_float_torch(acc: i32, multiplier: f32) -> i64 {
    round_half_even_f32(acc as f32 * multiplier)
}

/// fbgemm's `ReQuantizeOutput` with a float bias (`BIAS_TYPE = float`), as PyTorch's quantized
/// linear and conv run it on x86 (`requantizeOutputProcessingAvx2`, and its depthwise twin), before
/// the zero point: `act_times_w_scale = RN(s_x s_w)` and `multiplier = RN(act_times_w_scale / s_y)`
/// are the caller's `f32` values.
///
/// ```text
/// no bias:      v = RN(acc) * multiplier
/// per channel:  v = RN(RN(acc) + RN(bias / act_times_w_scale)) * multiplier          (_mm256_div_ps)
/// per tensor:   v = RN(fma(bias, RN(1 / act_times_w_scale), RN(acc))) * multiplier
/// result:       round_half_even(v)                                                    (cvtps2dq)
/// ```
///
/// The per-tensor reciprocal is computed in `f64` and rounded to `f32` (`_mm256_set1_ps(1.0 /
/// scale)`), and its product with the bias is contracted with the following addition into one
/// fused multiply-add (the same translation unit's `requantizeForFloatAvx2` shows the
/// contraction: PyTorch's dynamic linear matches the golden vectors only with it). Without a
/// bias this is [`multiply_float_torch`]. The product saturates to `i64` (never reached: it is
/// below `2^31 * 2^128`).
pub fn requantize_float_torch_with_float_bias(
    acc: i32,
    bias: Option<f32>,
    act_times_w_scale: f32,
    multiplier: f32,
    per_channel: bool,
) -> i64 {
    let raw = acc as f32;
    let with_bias = match bias {
        None => raw,
        Some(b) if per_channel => raw + b / act_times_w_scale,
        Some(b) => b.mul_add((1.0f64 / act_times_w_scale as f64) as f32, raw),
    };
    round_half_even_f32(with_bias * multiplier)
}

/// TFLite 2.21's reference int8 `FULLY_CONNECTED` requantization (the kernels that "receive the
/// scales in float and perform requant in float"), before the zero point:
/// `round(f64(acc) * multiplier)` with C's `round` (ties away from zero), `multiplier =
/// f64(s_x) f64(s_w) / f64(s_y)`; saturated to `i64` (C's cast to `int32_t` would be undefined
/// beyond `i32`; the caller clamps to the activation range).
pub fn multiply_float_tflite_f64(acc: i32, multiplier: f64) -> i64 {
    let v = (acc as f64 * multiplier).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

/// ONNX Runtime's `MlasRequantizeOutput` on one value, before its zero point is added:
/// `RN_f32(acc) * scale`, clamped to `[qmin - z, qmax - z]` in `f32`, rounded to nearest even.
pub fn multiply_float_onnxruntime(acc: i32, scale: f32, zero_point: i32, range: CodeRange) -> i64 {
    let lo = (range.qmin() - zero_point) as f32;
    let hi = (range.qmax() - zero_point) as f32;
    let v = (acc as f32 * scale).max(lo).min(hi);
    round_half_even_f32(v)
}

/// An `f32` rounded to the nearest integer, ties to even (`nearbyint` in the default rounding
/// mode); NaN gives 0 and values beyond `i64` saturate (neither occurs for a finite multiplier
/// times an `i32`).
pub fn round_half_even_f32(v: f32) -> i64 {
    v.round_ties_even() as i64
}

/// Seed 000's power-of-two multiplier: `M ~ 2^k` with `k = round(log2 M)` (ties away from zero).
/// Errors for a multiplier that is not finite and positive, or whose `|k|` exceeds 62.
pub fn power_of_two_exponent(real: f64) -> Result<i32> {
    if !real.is_finite() || real <= 0.0 {
        return Err(QuantError::InvalidArgument {
            what: "power-of-two multiplier",
            detail: format!("{real:e} must be finite and positive"),
        });
    }
    let k = real.log2().round();
    if k.abs() > 62.0 {
        return Err(QuantError::InvalidArgument {
            what: "power-of-two multiplier",
            detail: format!("{real:e} needs a shift of {k}; at most 62 either way"),
        });
    }
    Ok(k as i32)
}

/// `acc * 2^k` for seed 000's chip: a left shift (saturating to `i32`) for `k >= 0`, a rounding
/// right shift ([`rounding_divide_by_pot`]: nearest, ties away from zero) for `k < 0`.
pub fn multiply_power_of_two(acc: i32, k: i32) -> i32 {
    if k >= 0 {
        crate::fixedpoint::saturating_left_shift(acc, k as u32)
    } else {
        rounding_divide_by_pot(acc, k.unsigned_abs())
    }
}

/// One requantization variant, with its multiplier already converted (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Requantizer {
    FloatTorch { multiplier: f32 },
    FloatOnnxRuntime { multiplier: f32 },
    DoubleRounding(QuantizedMultiplier),
    SingleRounding(QuantizedMultiplier),
    Rndnu(RndnuParams),
    PowerOfTwo { exponent: i32 },
}

/// Which variant to build from a real multiplier ([`Requantizer::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequantizeKind {
    FloatTorch,
    FloatOnnxRuntime,
    DoubleRounding,
    SingleRounding,
    Rndnu,
    PowerOfTwo,
}

impl RequantizeKind {
    pub const ALL: [RequantizeKind; 6] = [
        RequantizeKind::FloatTorch,
        RequantizeKind::FloatOnnxRuntime,
        RequantizeKind::DoubleRounding,
        RequantizeKind::SingleRounding,
        RequantizeKind::Rndnu,
        RequantizeKind::PowerOfTwo,
    ];
}

impl Requantizer {
    /// Converts a real multiplier for `kind`: `f32` rounding for the float variants,
    /// [`QuantizedMultiplier::from_real`] for the Q31 ones (single rounding additionally caps
    /// the shift at 30, as TFLite does), [`RndnuParams::from_scale`], [`power_of_two_exponent`].
    pub fn new(kind: RequantizeKind, real: f64) -> Result<Requantizer> {
        if !real.is_finite() || real < 0.0 {
            return Err(QuantError::InvalidArgument {
                what: "real multiplier",
                detail: format!("{real:e} must be finite and non-negative"),
            });
        }
        Ok(match kind {
            RequantizeKind::FloatTorch => Requantizer::FloatTorch { multiplier: real as f32 },
            RequantizeKind::FloatOnnxRuntime => Requantizer::FloatOnnxRuntime { multiplier: real as f32 },
            RequantizeKind::DoubleRounding => Requantizer::DoubleRounding(QuantizedMultiplier::from_real(real)?),
            RequantizeKind::SingleRounding => {
                let mut m = QuantizedMultiplier::from_real(real)?;
                if m.shift > 30 {
                    m = QuantizedMultiplier { multiplier: i32::MAX, shift: 30 };
                }
                Requantizer::SingleRounding(m)
            }
            RequantizeKind::Rndnu => Requantizer::Rndnu(RndnuParams::from_scale(real as f32)?),
            RequantizeKind::PowerOfTwo => Requantizer::PowerOfTwo { exponent: power_of_two_exponent(real)? },
        })
    }

    /// For the one-rounding variants (single rounding, rndnu): `(multiplier, t)` such that the
    /// product is [`rounding_shift_product`]`(acc, multiplier, t)`, the form vector kernels
    /// implement; `None` for the others.
    pub fn single_rounding_form(&self) -> Option<(i32, u32)> {
        match *self {
            Requantizer::SingleRounding(m) => Some((m.multiplier, (31 - m.shift).clamp(1, 62) as u32)),
            Requantizer::Rndnu(p) => Some((p.multiplier, p.shift.clamp(1, 62))),
            _ => None,
        }
    }

    /// `clamp(z + round(acc * M), qmin, qmax)` under this variant's rounding.
    pub fn apply(&self, acc: i32, zero_point: i32, range: CodeRange) -> i32 {
        let v: i64 = match *self {
            Requantizer::FloatTorch { multiplier } => multiply_float_torch(acc, multiplier),
            Requantizer::FloatOnnxRuntime { multiplier } => {
                multiply_float_onnxruntime(acc, multiplier, zero_point, range)
            }
            Requantizer::DoubleRounding(m) => multiply_by_quantized_multiplier_double_rounding(acc, m) as i64,
            Requantizer::SingleRounding(m) => multiply_by_quantized_multiplier_single_rounding(acc, m) as i64,
            Requantizer::Rndnu(p) => multiply_rndnu(acc, p) as i64,
            Requantizer::PowerOfTwo { exponent } => multiply_power_of_two(acc, exponent) as i64,
        };
        (v + zero_point as i64).clamp(range.qmin() as i64, range.qmax() as i64) as i32
    }
}

/// Requantizes a slice of `int32` values to codes: `out[i] = requantizer.apply(acc[i], z, range)`.
/// Errors: `out` of the wrong length, a zero point outside `range`.
pub fn requantize(
    acc: &[i32],
    requantizer: &Requantizer,
    zero_point: i32,
    range: CodeRange,
    out: &mut [i32],
) -> Result<()> {
    crate::error::check_len("out", acc.len(), out.len())?;
    range.check_zero_point(0, zero_point)?;
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = requantizer.apply(a, zero_point, range);
    }
    Ok(())
}

/// Requantizes 8-bit codes from one scale and zero point (and code type) to another, as each
/// framework's int-to-int QUANTIZE computes it:
///
/// - `Tflite` (`quantize.cc`, `reference_ops::Requantize`): `M = sx / sy` in f64, Q31 by
///   [`QuantizedMultiplier::from_real`], `y = clamp(zy + MBQM(x - zx, M))` with double rounding.
/// - `Torch` and `OnnxRuntime` have no such op: a dequantize `(x - zx) * sx` in f32 followed by the
///   profile's quantize (`* RN(1/sy)` for PyTorch, `/ sy` for ONNX Runtime), ties to even.
///
/// Errors: bad scales or zero points (index 0 = x, 1 = y), `out` of the wrong length.
pub fn requantize_codes<A: crate::scheme::Code, B: crate::scheme::Code>(
    x: &[A],
    xq: crate::affine::Affine,
    yq: crate::affine::Affine,
    rule: crate::profile::ArithRule,
    out: &mut [B],
) -> Result<()> {
    use crate::profile::ArithRule;
    xq.check::<A>(0)?;
    yq.check::<B>(1)?;
    crate::error::check_len("out", x.len(), out.len())?;
    let range = crate::affine::code_range::<B>();
    match rule {
        ArithRule::Tflite => {
            let r = Requantizer::DoubleRounding(QuantizedMultiplier::from_real(xq.scale as f64 / yq.scale as f64)?);
            for (o, &q) in out.iter_mut().zip(x) {
                *o = B::from_code(r.apply(q.to_code() - xq.zero_point, yq.zero_point, range));
            }
        }
        ArithRule::Torch | ArithRule::OnnxRuntime => {
            let inv = 1.0 / yq.scale;
            for (o, &q) in out.iter_mut().zip(x) {
                let real = xq.dequantize(q.to_code());
                let v = if rule == ArithRule::Torch { real * inv } else { real / yq.scale };
                let y = yq.zero_point as i64 + round_half_even_f32(v);
                *o = B::from_code(y.clamp(range.qmin() as i64, range.qmax() as i64) as i32);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_matches_c() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        let (q, e) = frexp(f64::MIN_POSITIVE / 8.0);
        assert_eq!((q, e), (0.5, -1024));
    }

    #[test]
    fn quantized_multiplier_edges() {
        let m = QuantizedMultiplier::from_real(0.5).unwrap();
        assert_eq!(m, QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        // Just below 1: q * 2^31 rounds up to 2^31, halved, shift + 1.
        let m = QuantizedMultiplier::from_real(1.0 - 1e-12).unwrap();
        assert_eq!(m, QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
        assert_eq!(QuantizedMultiplier::from_real(0.0).unwrap(), QuantizedMultiplier { multiplier: 0, shift: 0 });
        assert_eq!(QuantizedMultiplier::from_real(1e-300).unwrap(), QuantizedMultiplier { multiplier: 0, shift: 0 });
        assert_eq!(QuantizedMultiplier::from_real(5e-324).unwrap(), QuantizedMultiplier { multiplier: 0, shift: 0 });
        assert_eq!(QuantizedMultiplier::from_real(2f64.powi(-32)).unwrap().shift, -31);
        assert!(QuantizedMultiplier::from_real(2f64.powi(31)).is_err());
        assert_eq!(QuantizedMultiplier::from_real(2f64.powi(30)).unwrap().shift, 31);
        assert!(QuantizedMultiplier::from_real(-1.0).is_err());
        assert!(QuantizedMultiplier::from_real(f64::NAN).is_err());
        assert!(QuantizedMultiplier::smaller_than_one(1.0, "m").is_err());
        assert!(QuantizedMultiplier::greater_than_one(1.0, "m").is_err());
        let m = QuantizedMultiplier::from_real(3.0).unwrap();
        assert_eq!(m.to_real(), 3.0);
    }

    #[test]
    fn tensorflow_issue_25087() {
        let m = QuantizedMultiplier { multiplier: 1_583_594_044, shift: -9 };
        assert_eq!(multiply_by_quantized_multiplier_double_rounding(7984, m), 12);
        assert_eq!(multiply_by_quantized_multiplier_single_rounding(7984, m), 11);
    }

    #[test]
    fn rndnu_is_exact_scale() {
        for &s in &[0.5f32, 0.1, 1.0 / 3.0, 2f32.powi(-32), 255.9] {
            let p = RndnuParams::from_scale(s).unwrap();
            assert_eq!(p.multiplier as f64 / 2f64.powi(p.shift as i32), s as f64);
        }
        assert!(RndnuParams::from_scale(256.0).is_err());
        assert!(RndnuParams::from_scale(2f32.powi(-33)).is_err());
        assert!(RndnuParams::from_scale(f32::NAN).is_err());
        // Ties toward +inf.
        let half = RndnuParams::from_scale(0.5).unwrap();
        assert_eq!(multiply_rndnu(3, half), 2);
        assert_eq!(multiply_rndnu(-3, half), -1);
    }
}
