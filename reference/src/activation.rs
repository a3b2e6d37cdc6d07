//! Unary ops on 8-bit codes: the passive ones (ReLU, ReLU6, clamp, hardtanh), which reduce to
//! integer compares when input and output share their quantization, and the non-linear ones
//! (sigmoid, tanh, hardsigmoid, hardswish, leaky ReLU, GELU, exp, SiLU, ELU), each a 256-entry
//! lookup table.
//!
//! Every 8-bit unary op is a function of one code, so [`table`] builds its 256 outputs once from
//! the op's arithmetic under the profile's rule, and [`unary`] applies it. Where a framework does
//! not use a table (TFLite's int8 hard-swish and leaky ReLU have fixed-point paths, PyTorch
//! computes in float per element), the table holds exactly what that arithmetic computes for each
//! code: the tests check it over all 256 codes against the per-element formula.
//!
//! ## The rules
//!
//! | rule | table entry for code `q` |
//! |---|---|
//! | `Torch` | `clamp(zy + nearbyint(f(RN((q - zx) sx)) * RN(1/sy)))`: dequantize, the op's f32 function, fbgemm's quantize (ties to even). Clamp and hardtanh are `qclamp`: `clamp(q, Q(min), Q(max))` on the codes with `Q` that quantize, when the qparams match. |
//! | `OnnxRuntime` | `clamp(zy + nearbyint(f(RN((q - zx) sx)) / sy))`: ONNX Runtime's `QlinearBuildLookupTable` (dequantize, f32 function, `MlasQuantizeLinear`) |
//! | `Tflite` | per op, as TFLite 2.21's reference kernels compute int8 / uint8 (below) |
//!
//! TFLite: ReLU, ReLU6, clamp and hardtanh are `QuantizedReluX`: `M = sx / sy` (f32, then Q31),
//! `y = clamp(zy + MBQM(q - zx, M), lo, hi)` with `lo = max(qmin, zy + round(min / sy))`,
//! `hi = min(qmax, zy + round(max / sy))` (f32 division, ties away; an absent bound is the type's
//! limit). Leaky ReLU (`QuantizeLeakyRelu`): `Mid = sx / sy` and `Malpha = sx * alpha / sy` (both
//! in f32, then Q31), `y = clamp(zy + MBQM(q - zx, q >= zx ? Mid : Malpha))`. Hard-swish
//! (`reference_ops::HardSwish`): gemmlowp's 16-bit fixed point, see [`tflite_hard_swish`].
//! Sigmoid, tanh, ELU, exp, GELU and the rest use TFLite's `LUTPopulate`: `clamp(zy +
//! round_away(f(RN(sx (q - zx))) * RN(1/sy)))` with the f32 function (`1/(1+expf(-x))`,
//! `tanhf`, ...): TFLite 2.21's reference resolver evaluates int8 LOGISTIC and TANH with this
//! table (`EvalUsingLookupTable`), not with gemmlowp's fixed-point `logistic` (that is the
//! `kFixedPointOptimized` kernel and the int16 path; [`crate::fixedpoint::logistic`] has it).
//!
//! TFLite requires sigmoid's output at scale 1/256 and zero point -128 (int8) and tanh's at 1/128
//! and 0; the table is defined for any output quantization, so those constraints are not
//! enforced here.

use crate::affine::Affine;
use crate::error::{check_len, QuantError, Result};
use crate::fixedpoint::{
    rounding_divide_by_pot_i16, saturating_doubling_high_mul_i16, saturating_left_shift_i16,
    saturating_rounding_doubling_high_mul_i16,
};
use crate::profile::ArithRule;
use crate::requantize::{multiply_by_quantized_multiplier_double_rounding as mbqm, QuantizedMultiplier};
use crate::scheme::Code;

/// A unary op on 8-bit codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `min(max(x, min), max)`; either bound may be absent.
    Clamp {
        min: Option<f32>,
        max: Option<f32>,
    },
    /// PyTorch's hardtanh: the same as [`UnaryOp::Clamp`] with both bounds.
    Hardtanh {
        min: f32,
        max: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    Tanh,
    /// `min(max(x + 3, 0), 6) / 6`.
    Hardsigmoid,
    /// `x * min(max(x + 3, 0), 6) / 6`.
    Hardswish,
    /// `x` for `x > 0`, `negative_slope * x` otherwise.
    LeakyRelu {
        negative_slope: f32,
    },
    /// `x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2))`.
    Gelu,
    Exp,
    /// `x * sigmoid(x)` (swish).
    Silu,
    /// `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.
    Elu {
        alpha: f32,
    },
}

impl UnaryOp {
    /// The op's real function, evaluated in f32 the way the frameworks' scalar code does
    /// (PyTorch's `1.0f / (1.0f + std::exp(-x))`, TFLite's lambdas): each f32 operation rounded
    /// once, the library functions `expf`, `tanhf`, `expm1f`, `erff`.
    pub fn f32(&self, x: f32) -> f32 {
        match *self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Relu6 => x.max(0.0).min(6.0),
            UnaryOp::Clamp { min, max } => {
                let lo = min.map_or(x, |m| x.max(m));
                max.map_or(lo, |m| lo.min(m))
            }
            UnaryOp::Hardtanh { min, max } => x.max(min).min(max),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Hardsigmoid => (x + 3.0).max(0.0).min(6.0) / 6.0,
            UnaryOp::Hardswish => x * (x + 3.0).max(0.0).min(6.0) / 6.0,
            UnaryOp::LeakyRelu { negative_slope } => {
                if x > 0.0 {
                    x
                } else {
                    x * negative_slope
                }
            }
            UnaryOp::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Silu => x / (1.0 + (-x).exp()),
            UnaryOp::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
        }
    }

    /// The real interval a passive op keeps, `None` for the non-linear ops.
    fn clip_bounds(&self) -> Option<(Option<f32>, Option<f32>)> {
        match *self {
            UnaryOp::Relu => Some((Some(0.0), None)),
            UnaryOp::Relu6 => Some((Some(0.0), Some(6.0))),
            UnaryOp::Clamp { min, max } => Some((min, max)),
            UnaryOp::Hardtanh { min, max } => Some((Some(min), Some(max))),
            _ => None,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &'static str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(QuantError::NonFinite { what, index: 0, value: v as f64 })
            }
        };
        match *self {
            UnaryOp::Clamp { min, max } => {
                if let Some(m) = min {
                    bad("clamp min", m)?;
                }
                if let Some(m) = max {
                    bad("clamp max", m)?;
                }
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        return Err(QuantError::InvalidRange { min: lo as f64, max: hi as f64 });
                    }
                }
                Ok(())
            }
            UnaryOp::Hardtanh { min, max } => {
                bad("hardtanh min", min)?;
                bad("hardtanh max", max)?;
                if min > max {
                    return Err(QuantError::InvalidRange { min: min as f64, max: max as f64 });
                }
                Ok(())
            }
            UnaryOp::LeakyRelu { negative_slope } => bad("negative_slope", negative_slope),
            UnaryOp::Elu { alpha } => bad("elu alpha", alpha),
            _ => Ok(()),
        }
    }
}

/// fbgemm's quantize of one f32 value: `clamp(z + nearbyint(v * RN(1/s)))`.
fn torch_quantize<C: Code>(v: f32, y: Affine) -> i32 {
    let q = y.zero_point as f32 + (v * (1.0 / y.scale)).round_ties_even();
    q.clamp(C::MIN as f32, C::MAX as f32) as i32
}

/// `MlasQuantizeLinear` of one f32 value: `clamp(nearbyint(v / s) + z)`.
fn onnxruntime_quantize<C: Code>(v: f32, y: Affine) -> i32 {
    let q = (v / y.scale).round_ties_even() + y.zero_point as f32;
    q.clamp(C::MIN as f32, C::MAX as f32) as i32
}

/// TFLite's `LUTPopulate` entry: `clamp(round_away(v * RN(1/s)) + z)`.
fn tflite_lut_quantize<C: Code>(v: f32, y: Affine) -> i32 {
    let r = (v * (1.0 / y.scale)).round();
    let q = if r.is_nan() { 0 } else { (r as i64).saturating_add(y.zero_point as i64) };
    q.clamp(C::MIN as i64, C::MAX as i64) as i32
}

/// The TFLite `HardSwishParams` for an input and output quantization (`HardSwishPrepare`): the
/// f32 ratios `(sx / 128) / sy` and `(sx / 128) / (3 / 32768)`, each converted by
/// `QuantizeMultiplier` and rounded to a Q15 multiplier (`DownScaleInt32ToInt16Multiplier`:
/// `(m + 2^15) >> 16`, saturating at `i16::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TfliteHardSwish {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub output_multiplier: i16,
    pub output_exponent: i32,
    pub reluish_multiplier: i16,
    pub reluish_exponent: i32,
}

fn down_scale_to_i16(m: i32) -> i16 {
    if m >= i32::MAX - (1 << 15) {
        i16::MAX
    } else {
        ((m + (1 << 15)) >> 16) as i16
    }
}

impl TfliteHardSwish {
    /// Errors where TFLite's `Prepare` fails: an output multiplier above 1 (positive exponent).
    pub fn new(x: Affine, y: Affine) -> Result<TfliteHardSwish> {
        let hires = (1.0f32 / 128.0) * x.scale;
        let out = QuantizedMultiplier::from_real((hires / y.scale) as f64)?;
        if out.shift > 0 {
            return Err(QuantError::InvalidArgument {
                what: "hard-swish output multiplier",
                detail: format!("(sx / 128) / sy = {:e} must not exceed 1 (TFLite refuses it)", hires / y.scale),
            });
        }
        let reluish = QuantizedMultiplier::from_real((hires / (3.0f32 / 32768.0)) as f64)?;
        Ok(TfliteHardSwish {
            input_zero_point: x.zero_point,
            output_zero_point: y.zero_point,
            output_multiplier: down_scale_to_i16(out.multiplier),
            output_exponent: out.shift,
            reluish_multiplier: down_scale_to_i16(reluish.multiplier),
            reluish_exponent: reluish.shift,
        })
    }
}

/// TFLite's `reference_ops::HardSwish` on one int8 / uint8 code, in 16-bit fixed point:
/// `v = (q - zx) * 2^7`; `pre = SRDHM16(v, output_multiplier)`; the "reluish" value `r` is `v`
/// scaled to `[-3, 3] -> [-32768, 32767]` by the reluish multiplier (a saturating left shift by
/// `exponent - 1`, SRDHM16, a saturating left shift by 1, or a rounding right shift), then mapped
/// to `[0, 1]` as `(r + 2^15) >> 1`; the output is `zy + RDBPOT(SDHM16(r, pre), -output_exponent)`
/// (SDHM16 truncates: ARM `SQDMULH`), saturated to the code type.
pub fn tflite_hard_swish<C: Code>(p: &TfliteHardSwish, q: i32) -> i32 {
    let input_value = (q - p.input_zero_point) as i16;
    let hires = input_value.wrapping_mul(1 << 7);
    let preshift_output = saturating_rounding_doubling_high_mul_i16(hires, p.output_multiplier);
    let mut reluish = hires;
    if p.reluish_exponent > 0 {
        reluish = saturating_left_shift_i16(reluish, (p.reluish_exponent - 1) as u32);
    }
    reluish = saturating_rounding_doubling_high_mul_i16(reluish, p.reluish_multiplier);
    if p.reluish_exponent > 0 {
        reluish = saturating_left_shift_i16(reluish, 1);
    }
    if p.reluish_exponent < 0 {
        reluish = rounding_divide_by_pot_i16(reluish, p.reluish_exponent.unsigned_abs());
    }
    let reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
    let preshift = saturating_doubling_high_mul_i16(reluish, preshift_output);
    let out = rounding_divide_by_pot_i16(preshift, p.output_exponent.unsigned_abs()) as i32 + p.output_zero_point;
    out.clamp(C::MIN, C::MAX)
}

/// The 256-entry table of `op` for codes of type `C` (`table[q - C::MIN]` is the output for code
/// `q`) under `rule`, input quantization `x`, output quantization `y`. Errors: a bad scale or zero
/// point (index 0 = x, 1 = y), a non-finite or inverted op parameter, a multiplier the framework
/// cannot represent, an 8-bit code type only (`C` of more than 256 codes is rejected).
pub fn table<C: Code>(op: UnaryOp, rule: ArithRule, x: Affine, y: Affine) -> Result<Vec<C>> {
    x.check::<C>(0)?;
    y.check::<C>(1)?;
    op.check()?;
    if C::MAX - C::MIN != 255 {
        return Err(QuantError::Unsupported { what: format!("a lookup table for {}-codes (8-bit only)", C::NAME) });
    }
    let codes = C::MIN..=C::MAX;
    let entries: Vec<i32> = match rule {
        ArithRule::Torch => match (op.clip_bounds(), x == y) {
            (Some((lo, hi)), true) => {
                // qclamp: the bounds quantized once, then integer compares.
                let qlo = lo.map_or(C::MIN, |v| torch_quantize::<C>(v, y));
                let qhi = hi.map_or(C::MAX, |v| torch_quantize::<C>(v, y));
                codes.map(|q| q.max(qlo).min(qhi)).collect()
            }
            _ => codes.map(|q| torch_quantize::<C>(op.f32(x.dequantize(q)), y)).collect(),
        },
        ArithRule::OnnxRuntime => codes.map(|q| onnxruntime_quantize::<C>(op.f32(x.dequantize(q)), y)).collect(),
        ArithRule::Tflite => match op {
            op if op.clip_bounds().is_some() => {
                let (lo, hi) = op.clip_bounds().unwrap_or((None, None));
                let m = QuantizedMultiplier::from_real((x.scale / y.scale) as f64)?;
                let bound = |v: f32| y.zero_point as i64 + (v / y.scale).round() as i64;
                let qlo = lo.map_or(C::MIN as i64, |v| bound(v).max(C::MIN as i64)) as i32;
                let qhi = hi.map_or(C::MAX as i64, |v| bound(v).min(C::MAX as i64)) as i32;
                codes.map(|q| (y.zero_point + mbqm(q - x.zero_point, m)).max(qlo).min(qhi)).collect()
            }
            UnaryOp::LeakyRelu { negative_slope } => {
                let identity = QuantizedMultiplier::from_real((x.scale / y.scale) as f64)?;
                let alpha =
                    QuantizedMultiplier::from_real((x.scale * negative_slope / y.scale) as f64).or_else(|_| {
                        QuantizedMultiplier::from_real(-(x.scale * negative_slope / y.scale) as f64)
                            .map(|m| QuantizedMultiplier { multiplier: -m.multiplier, shift: m.shift })
                    })?;
                codes
                    .map(|q| {
                        let v = q - x.zero_point;
                        let m = if v >= 0 { identity } else { alpha };
                        (y.zero_point + mbqm(v, m)).clamp(C::MIN, C::MAX)
                    })
                    .collect()
            }
            UnaryOp::Hardswish => {
                let p = TfliteHardSwish::new(x, y)?;
                codes.map(|q| tflite_hard_swish::<C>(&p, q)).collect()
            }
            _ => codes.map(|q| tflite_lut_quantize::<C>(op.f32(x.dequantize_tflite(q)), y)).collect(),
        },
    };
    Ok(entries.into_iter().map(C::from_code).collect())
}

impl Affine {
    /// TFLite's `LUTPopulate` dequantization: `RN(sx * (q - zx))`, the same f32 product as
    /// [`Affine::dequantize`].
    fn dequantize_tflite(&self, q: i32) -> f32 {
        self.scale * (q - self.zero_point) as f32
    }
}

/// Applies a 256-entry table: `out[i] = table[x[i] - C::MIN]`.
pub fn apply_table<C: Code>(table: &[C], x: &[C], out: &mut [C]) -> Result<()> {
    check_len("table", 256, table.len())?;
    check_len("out", x.len(), out.len())?;
    for (o, &q) in out.iter_mut().zip(x) {
        *o = table[(q.to_code() - C::MIN) as usize];
    }
    Ok(())
}

/// `out = op(x)` code by code under `rule` (see the module docs), through [`table`].
pub fn unary<C: Code>(op: UnaryOp, rule: ArithRule, x_q: Affine, y_q: Affine, x: &[C], out: &mut [C]) -> Result<()> {
    check_len("out", x.len(), out.len())?;
    let t = table::<C>(op, rule, x_q, y_q)?;
    apply_table(&t, x, out)
}
