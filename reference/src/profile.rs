//! Framework profiles: every choice a framework makes, named in one place.
//!
//! Two frameworks can agree on the formula `q = clamp(round(x / s) + z)` and still disagree on
//! the bits: PyTorch multiplies by an f32 reciprocal where ONNX Runtime divides; they reduce the
//! int8 range to `[-64, 63]` and `[-64, 64]`; they compute a zero point in f32 and in f64. A
//! [`Profile`] is the complete list of those choices for one framework. Code never asks "am I
//! PyTorch?"; it asks the profile for its [`QuantizeRule`] or [`QParamsRule`]. A new framework
//! (TFLite, TensorRT, SNPE, ...) is a new `Profile` value, and a new variant of a rule enum where
//! its arithmetic is new.
//!
//! | choice | `torch` | `onnxruntime` | `quantproof` |
//! |---|---|---|---|
//! | quantize `x -> q` | `x * RN(1/s)`, half to even | `x / s`, half to even | `x / s`, half to even |
//! | fake-quantize | `x * RN(1/s)`, half to even | (none: ONNX has no op) | `x / s`, half to even |
//! | dequantize | `(q - z) * s` in f32 | `(q - z) * s` in f32 | `(q - z) * s` in f32 |
//! | scale and zero point | observer rule, f32 | `compute_scale_zp`, f64 | never clips, f64 |
//! | int8 reduced range | `[-64, 63]` | `[-64, 64]` | `[-64, 63]` |
//! | int8 symmetric range | `[-128, 127]` | `[-127, 127]` | narrow if asked |
//! | dynamic activations | `ChooseQuantizationParams` | `DynamicQuantizeLinear` | `DynamicQuantizeLinear` |
//!
//! The golden vectors recorded from PyTorch 2.11 and ONNX Runtime 1.32 decide each entry; the
//! test suite replays them through these profiles.
//!
//! ## Where a profile deliberately does not follow its framework
//!
//! Only where the framework's behaviour is a crash, a silent garbage value or an unchecked input;
//! each of these is a typed error or the formula's saturation here:
//!
//! | input | the framework | quantproof |
//! |---|---|---|
//! | `DynamicQuantizeLinear` of an empty tensor | ONNX Runtime: empty output, scale 1, zero point 0 | [`QuantError::EmptyInput`] (a range needs data) |
//! | `compute_scale_zp` with `rmin > rmax` | ONNX Runtime: widens both to 0 and carries on | [`QuantError::InvalidRange`] |
//! | quantize with `\|x / s\| >= 2^31` | fbgemm's AVX2 loop converts with `cvtps2dq` and adds the zero point in int32, which wraps: a huge negative value can come out as `qmax` (its scalar tail saturates correctly) | saturates to `qmin` / `qmax`, as the formula says |
//! | fake-quantize with `\|x / s\| >= 2^63` | PyTorch: the int64 conversion overflows to `INT64_MIN`, so large positive values come out as `qmin` | saturates to `qmax` |
//! | NaN input | an arbitrary code | [`QuantError::NanInput`] |
//!
//! The recorded vectors never reach the third and fourth rows (their largest `\|x / s\|` is about
//! 34,000).

use crate::choose_params::{self, ChooseOptions, ScaleZeroPoint, TorchObserverConfig};
use crate::error::{check_finite, QuantError, Result};
use crate::quant_params::QuantParams;
use crate::quantize::{self, QuantizeRule, ScaleOp};
use crate::rounding::RoundingMode;
use crate::scheme::{CodeRange, QType, RangeReduction, RangeWidth, Symmetry};

/// What the caller wants parameters for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParamsRequest {
    pub qtype: QType,
    pub symmetry: Symmetry,
    /// Drop one bit of range (for kernels whose `u8 x s8` pair sums can saturate).
    pub reduce_range: RangeReduction,
    /// Ask for the narrow (restricted) range.
    pub width: RangeWidth,
    /// An explicit `[qmin, qmax]`, overriding the type's range (PyTorch's `quant_min/quant_max`,
    /// ONNX Runtime's `qmin/qmax` arguments).
    pub custom_range: Option<CodeRange>,
}

impl QParamsRequest {
    pub fn new(qtype: QType, symmetry: Symmetry) -> QParamsRequest {
        QParamsRequest {
            qtype,
            symmetry,
            reduce_range: RangeReduction::Full,
            width: RangeWidth::Full,
            custom_range: None,
        }
    }

    pub fn with_range(mut self, range: CodeRange) -> QParamsRequest {
        self.custom_range = Some(range);
        self
    }

    pub fn reduced(mut self, reduce_range: RangeReduction) -> QParamsRequest {
        self.reduce_range = reduce_range;
        self
    }
}

/// How a profile turns a real range into a scale and zero point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QParamsRule {
    /// PyTorch's observers ([`choose_params::torch_observer_qparams`]) with their `eps`.
    TorchObserver { eps: f32 },
    /// ONNX Runtime's `compute_scale_zp` ([`choose_params::onnxruntime_compute_scale_zp`]).
    OnnxRuntime { min_real_range: Option<f32> },
    /// quantproof's default ([`choose_params::quantproof_qparams`]).
    Quantproof,
    /// TFLite's `ChooseQuantizationParams` ([`tflite_choose_quantization_params`]).
    Tflite,
}

impl QParamsRule {
    /// The code range `[qmin, qmax]` this rule uses for `req`.
    pub fn code_range(&self, req: &QParamsRequest) -> Result<CodeRange> {
        match self {
            QParamsRule::TorchObserver { eps } => torch_config(req, *eps).code_range(),
            QParamsRule::OnnxRuntime { .. } => {
                if let Some(r) = req.custom_range {
                    return Ok(r);
                }
                let (bits, signed) = (req.qtype.bits(), req.qtype.is_signed());
                if ![4, 8, 16].contains(&bits) {
                    return Err(QuantError::Unsupported {
                        what: format!("ONNX Runtime has no {}-bit integer type", bits),
                    });
                }
                let full = req.qtype.full_range();
                if req.reduce_range.is_reduced() {
                    // ONNX_INT_TYPE_REDUCED_RANGE: uint [0, 2^(b-1) - 1], int [-2^(b-2), 2^(b-2)].
                    let q = 1 << (bits - 2);
                    return if signed { CodeRange::new(-q, q) } else { CodeRange::new(0, 2 * q - 1) };
                }
                if (req.symmetry.is_symmetric() || req.width == RangeWidth::Narrow) && signed && bits >= 8 {
                    // ONNX_INT_TYPE_SYMMETRIC_RANGE: int8 [-127, 127], int16 [-32767, 32767].
                    return Ok(req.qtype.narrow_range());
                }
                Ok(full)
            }
            QParamsRule::Quantproof | QParamsRule::Tflite => {
                if let Some(r) = req.custom_range {
                    return Ok(r);
                }
                if req.reduce_range.is_reduced() {
                    let b = req.qtype.bits() - 1;
                    let reduced = QType::new(b, req.qtype.signedness())?;
                    return Ok(reduced.range(req.width));
                }
                Ok(req.qtype.range(req.width))
            }
        }
    }

    /// Scale and zero point for the real range `[rmin, rmax]`.
    pub fn choose(&self, rmin: f32, rmax: f32, req: &QParamsRequest) -> Result<ScaleZeroPoint> {
        match self {
            QParamsRule::TorchObserver { eps } => {
                choose_params::torch_observer_qparams(rmin, rmax, &torch_config(req, *eps))
            }
            QParamsRule::OnnxRuntime { min_real_range } => choose_params::onnxruntime_compute_scale_zp(
                rmin,
                rmax,
                self.code_range(req)?,
                req.symmetry,
                *min_real_range,
            ),
            QParamsRule::Quantproof => {
                choose_params::quantproof_qparams(rmin, rmax, self.code_range(req)?, req.symmetry)
            }
            QParamsRule::Tflite => tflite_choose_quantization_params(rmin, rmax, self.code_range(req)?),
        }
    }
}

fn torch_config(req: &QParamsRequest, eps: f32) -> TorchObserverConfig {
    TorchObserverConfig {
        dtype: req.qtype,
        symmetry: req.symmetry,
        reduce_range: req.reduce_range,
        custom_range: req.custom_range.or(if req.width == RangeWidth::Narrow {
            Some(req.qtype.narrow_range())
        } else {
            None
        }),
        eps,
    }
}

/// How a profile quantizes activations at run time (dynamic quantization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicRule {
    /// ONNX `DynamicQuantizeLinear`: uint8, [`choose_params::onnxruntime_dynamic_qparams`].
    OnnxRuntime,
    /// PyTorch's dynamic linear: uint8 `[0, 255]` through
    /// [`choose_params::torch_choose_quantization_params`] (`reduce_range` halves it, as fbgemm's
    /// default qconfig does).
    Torch { reduce_range: RangeReduction },
    /// The framework has no uint8 dynamic activation quantization (TFLite's hybrid kernels
    /// quantize activations to symmetric int8 per row inside the kernel): a typed error.
    None,
}

/// How a profile computes the quantized arithmetic ops (element-wise, activations, pooling,
/// softmax, resize): each op module documents the exact formula under each rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithRule {
    /// PyTorch's quantized CPU kernels (fbgemm engine), scalar path: dequantize to f32, compute
    /// in f32, quantize with `x * RN(1/s)` and ties to even.
    Torch,
    /// ONNX Runtime's `com.microsoft` QLinear ops on MLAS, scalar path: scale ratios in f32,
    /// ties to even.
    OnnxRuntime,
    /// TFLite's reference integer kernels: Q31 multipliers with gemmlowp's double rounding,
    /// gemmlowp's fixed-point exp / logistic / tanh.
    Tflite,
}

/// Every arithmetic choice of one framework.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// `torch`, `onnxruntime`, `quantproof`.
    pub name: &'static str,
    /// What the profile reproduces.
    pub framework: &'static str,
    /// `x -> q` for quantize.
    pub quantize: QuantizeRule,
    /// `x -> q` inside fake-quantize (`None`: the framework has no fake-quantize op).
    pub fake_quantize: Option<QuantizeRule>,
    pub qparams: QParamsRule,
    pub dynamic: DynamicRule,
    /// The arithmetic of the quantized ops.
    pub arith: ArithRule,
}

impl Profile {
    /// PyTorch 2.11 with the fbgemm (x86) engine.
    pub const TORCH: Profile = Profile {
        name: "torch",
        framework: "PyTorch 2.11, quantized engine fbgemm (x86)",
        quantize: QuantizeRule::new(ScaleOp::MultiplyByReciprocal, RoundingMode::HalfToEven),
        fake_quantize: Some(QuantizeRule::new(ScaleOp::MultiplyByReciprocal, RoundingMode::HalfToEven)),
        qparams: QParamsRule::TorchObserver { eps: f32::EPSILON },
        dynamic: DynamicRule::Torch { reduce_range: RangeReduction::Full },
        arith: ArithRule::Torch,
    };

    /// ONNX Runtime 1.32, CPU execution provider (MLAS) and its Python quantization tools.
    pub const ONNXRUNTIME: Profile = Profile {
        name: "onnxruntime",
        framework: "ONNX Runtime 1.32, CPU provider (MLAS) and onnxruntime.quantization",
        quantize: QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven),
        fake_quantize: None,
        qparams: QParamsRule::OnnxRuntime { min_real_range: None },
        dynamic: DynamicRule::OnnxRuntime,
        arith: ArithRule::OnnxRuntime,
    };

    /// quantproof's documented default: correctly rounded division, ties to even, parameters
    /// that never clip the observed range.
    pub const QUANTPROOF: Profile = Profile {
        name: "quantproof",
        framework: "quantproof's own default",
        quantize: QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven),
        fake_quantize: Some(QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven)),
        qparams: QParamsRule::Quantproof,
        dynamic: DynamicRule::OnnxRuntime,
        // Integer-only and identical on every machine.
        arith: ArithRule::Tflite,
    };

    /// TensorFlow Lite 2.21, its reference kernels (`BUILTIN_REF`), integer-only: quantize is
    /// `round(x / s)` in f32 with ties away from zero (`TfLiteRound`), dequantize `(q - z) * s`
    /// (computed in f64 from an f32 scale, which rounds to the same f32), and every integer op
    /// requantizes with Q31 multipliers and gemmlowp's double rounding (the default build;
    /// `TFLITE_SINGLE_ROUNDING` is off). The op families document each op's TFLite arithmetic.
    ///
    /// Where TFLite's optimized kernels and XNNPACK delegate differ from these reference kernels
    /// on the recorded models (`tests/vectors/tflite-meta.json`, output elements that differ / all):
    ///
    /// | op | optimized kernels | XNNPACK |
    /// |---|---|---|
    /// | quantize | 67 / 986 (6 cases, max 1) | 68 / 986 (7 cases, max 1) |
    /// | dequantize | 185 / 936 (6 cases, max 4.8e-7) | 0 |
    /// | requantize | 131 / 3584 (4 cases, max 1) | 180 / 3584 (8 cases, max 1) |
    /// | mean | 42 / 370 (1 case, max 1) | 28 / 370 (5 cases, max 1) |
    /// | qmul | 0 | 48 / 2504 (8 cases, max 1) |
    /// | sub | 0 | 1 / 673 (1 case, max 1) |
    /// | leaky_relu | 0 | 97 / 1407 (4 cases, max 1) |
    /// | resize_bilinear | 0 | 232 / 2137 (9 cases, max 1) |
    /// | qadd, relu, relu6, sigmoid, tanh, hardswish, softmax, max/avg pool, concat, pad, resize_nearest | 0 | 0 |
    ///
    /// The profile follows the reference kernels.
    pub const TFLITE: Profile = Profile {
        name: "tflite",
        framework: "TensorFlow Lite 2.21, reference kernels (BUILTIN_REF), integer-only",
        quantize: QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfAwayFromZero),
        fake_quantize: None,
        qparams: QParamsRule::Tflite,
        dynamic: DynamicRule::None,
        arith: ArithRule::Tflite,
    };

    /// Every built-in profile.
    pub const ALL: [Profile; 3] = [Profile::TORCH, Profile::ONNXRUNTIME, Profile::QUANTPROOF];

    /// The framework profiles with integer arithmetic ops, `ALL` plus `tflite`.
    pub const FRAMEWORKS: [Profile; 4] = [Profile::TORCH, Profile::ONNXRUNTIME, Profile::QUANTPROOF, Profile::TFLITE];

    /// Looks a profile up by name (`torch`/`pytorch`, `onnxruntime`/`ort`, `quantproof`).
    pub fn by_name(name: &str) -> Result<Profile> {
        match name.to_ascii_lowercase().as_str() {
            "torch" | "pytorch" | "fbgemm" => Ok(Profile::TORCH),
            "onnxruntime" | "ort" | "onnx" => Ok(Profile::ONNXRUNTIME),
            "quantproof" | "default" => Ok(Profile::QUANTPROOF),
            "tflite" | "tensorflow-lite" | "litert" => Ok(Profile::TFLITE),
            _ => Err(QuantError::Unsupported { what: format!("profile {name:?}") }),
        }
    }

    /// The fake-quantize rule, or an error naming the profile when it has none.
    pub fn fake_quantize_rule(&self) -> Result<QuantizeRule> {
        self.fake_quantize
            .ok_or_else(|| QuantError::Unsupported { what: format!("fake_quantize under profile {}", self.name) })
    }

    /// Scale and zero point for `[rmin, rmax]` under this profile.
    pub fn choose_qparams(&self, rmin: f32, rmax: f32, req: &QParamsRequest) -> Result<ScaleZeroPoint> {
        self.qparams.choose(rmin, rmax, req)
    }

    /// Dynamic quantization of `x` to uint8: the range is read from the data, the parameters
    /// chosen by [`Profile::dynamic`] and the data quantized with [`Profile::quantize`]. Fails on
    /// empty input and on NaN or infinity (a range needs finite values).
    pub fn dynamic_quantize(&self, x: &[f32], out: &mut [u8]) -> Result<ScaleZeroPoint> {
        let (min, max) = min_max(x)?;
        let p = self.dynamic_qparams(min, max)?;
        let params = QuantParams::per_tensor(p.scale, p.zero_point, QType::U8.full_range());
        quantize::quantize(x, &[x.len()], &params, self.quantize, out)?;
        Ok(p)
    }

    /// The dynamic rule's parameters for a data range.
    pub fn dynamic_qparams(&self, min: f32, max: f32) -> Result<ScaleZeroPoint> {
        match self.dynamic {
            DynamicRule::OnnxRuntime => choose_params::onnxruntime_dynamic_qparams(min, max),
            DynamicRule::Torch { reduce_range } => choose_params::torch_choose_quantization_params(
                min,
                max,
                0,
                255,
                ChooseOptions::with_reduce_range(reduce_range),
            ),
            DynamicRule::None => {
                Err(QuantError::Unsupported { what: format!("uint8 dynamic quantization under profile {}", self.name) })
            }
        }
    }
}

/// TFLite's `ChooseQuantizationParams` (`quantization_util.h`), in f64 like TFLite: the range is
/// first widened to contain 0 (TFLite requires it), `s = (rmax - rmin) / (qmax - qmin)`, the zero
/// point taken from whichever end (`qmin - rmin/s` or `qmax - rmax/s`) has the smaller error
/// `|q| + |r/s|`, nudged into `[qmin, qmax]` and rounded with ties away from zero; the scale is
/// then stored as f32. An all-zero range (TFLite's scale 0) is an
/// [`QuantError::InvalidRange`]-style typed error: a scale must be positive.
pub fn tflite_choose_quantization_params(rmin: f32, rmax: f32, range: CodeRange) -> Result<ScaleZeroPoint> {
    for (index, v) in [rmin, rmax].into_iter().enumerate() {
        if !v.is_finite() {
            return Err(QuantError::NonFinite { what: "range [rmin, rmax]", index, value: v as f64 });
        }
    }
    if rmin > rmax {
        return Err(QuantError::InvalidRange { min: rmin as f64, max: rmax as f64 });
    }
    let (lo, hi) = ((rmin as f64).min(0.0), (rmax as f64).max(0.0));
    if lo == hi {
        return Err(QuantError::InvalidArgument {
            what: "range [rmin, rmax]",
            detail: "the range is the single point 0; TFLite would give scale 0".into(),
        });
    }
    let (qmin, qmax) = (range.qmin() as f64, range.qmax() as f64);
    let scale = (hi - lo) / (qmax - qmin);
    let from_min = qmin - lo / scale;
    let from_max = qmax - hi / scale;
    let err_min = qmin.abs() + (lo / scale).abs();
    let err_max = qmax.abs() + (hi / scale).abs();
    let z = if err_min < err_max { from_min } else { from_max };
    let zero_point = if z < qmin {
        range.qmin()
    } else if z > qmax {
        range.qmax()
    } else {
        z.round() as i32
    };
    Ok(ScaleZeroPoint { scale: scale as f32, zero_point })
}

/// Minimum and maximum of finite data; fails on empty input, NaN or infinity.
pub fn min_max(x: &[f32]) -> Result<(f32, f32)> {
    if x.is_empty() {
        return Err(QuantError::EmptyInput { what: "x" });
    }
    check_finite("x", x)?;
    Ok(x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Signedness;

    #[test]
    fn reduced_ranges_differ_by_profile() {
        let req = QParamsRequest::new(QType::I8, Symmetry::Affine).reduced(RangeReduction::Reduced);
        assert_eq!(Profile::TORCH.qparams.code_range(&req).unwrap(), CodeRange::new(-64, 63).unwrap());
        assert_eq!(Profile::ONNXRUNTIME.qparams.code_range(&req).unwrap(), CodeRange::new(-64, 64).unwrap());
        let req = QParamsRequest::new(QType::I8, Symmetry::Symmetric);
        assert_eq!(Profile::ONNXRUNTIME.qparams.code_range(&req).unwrap(), CodeRange::new(-127, 127).unwrap());
        assert_eq!(Profile::TORCH.qparams.code_range(&req).unwrap(), CodeRange::new(-128, 127).unwrap());
        let req = QParamsRequest::new(QType::new(3, Signedness::Signed).unwrap(), Symmetry::Affine);
        assert!(Profile::ONNXRUNTIME.qparams.code_range(&req).is_err());
    }

    #[test]
    fn lookup() {
        assert_eq!(Profile::by_name("ort").unwrap().name, "onnxruntime");
        assert!(Profile::by_name("nope").is_err());
        assert!(Profile::ONNXRUNTIME.fake_quantize_rule().is_err());
    }

    #[test]
    fn dynamic_quantize_errors() {
        let mut out = [0u8; 2];
        assert!(matches!(
            Profile::ONNXRUNTIME.dynamic_quantize(&[], &mut out[..0]),
            Err(QuantError::EmptyInput { .. })
        ));
        assert!(matches!(
            Profile::ONNXRUNTIME.dynamic_quantize(&[1.0, f32::INFINITY], &mut out),
            Err(QuantError::NonFinite { .. })
        ));
        let p = Profile::ONNXRUNTIME.dynamic_quantize(&[-1.0, 3.0], &mut out).unwrap();
        assert_eq!(p.zero_point, 64);
        assert_eq!(out, [0, 255]);
    }
}
