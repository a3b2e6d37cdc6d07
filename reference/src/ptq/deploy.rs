//! Deployment profiles as data: how each inference stack quantizes a model (seed 001's table of
//! chips and toolchains, completed from each stack's documentation).
//!
//! Each [`Deployment`] fixes the weights' and activations' granularity and symmetry, their code
//! ranges, the rounding, the activation calibrator, how the bias is stored and whether a user can
//! hand the stack external quantization parameters (ranges computed elsewhere, e.g. by
//! quantproof). `quantproof profiles` prints [`DEPLOYMENTS`]; [`Deployment::weight_granularity`]
//! and the other fields are what a model is quantized with under a profile.
//!
//! The arithmetic profiles of [`crate::profile::Profile`] (`torch`, `onnxruntime`, `tflite`) say
//! *how* a framework computes (rounding of quantize, the requantization, the observers' exact
//! formulas, proven bit-exact on golden vectors); a deployment says *which* choices a stack makes
//! when it quantizes a model. `profile` names the arithmetic profile a deployment runs under
//! where the project has one.

use super::layer::WeightGranularity;
use crate::error::{check_finite, check_len, QuantError, Result};
use crate::quant_params::QuantParams;
use crate::quantize::{QuantizeRule, ScaleOp};
use crate::rounding::RoundingMode;
use crate::scheme::{Axis, CodeRange};

/// Symmetric (zero point 0) or asymmetric (a zero point) ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetry {
    Symmetric,
    Asymmetric,
}

/// How activation ranges are calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calibrator {
    MinMax,
    /// KL divergence between the fp32 and the quantized histogram (TensorRT's entropy calibrator).
    Entropy,
    /// PyTorch's HistogramObserver (L2 search over histogram bins).
    HistogramL2,
    Percentile,
}

/// How the bias is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiasRule {
    /// Kept in float and added to the dequantized accumulator.
    Float,
    /// `int32` with scale `s_in * s_w` and zero point 0, added to the accumulator.
    Int32ScaleProduct,
}

/// One stack's quantization choices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deployment {
    pub name: &'static str,
    pub stack: &'static str,
    pub weight_granularity: WeightGranularity,
    pub weight_symmetry: Symmetry,
    /// The weights' code range, e.g. `[-127, 127]`.
    pub weight_range: (i32, i32),
    pub activation_symmetry: Symmetry,
    pub activation_range: (i32, i32),
    pub calibrator: Calibrator,
    pub rounding: RoundingMode,
    pub bias: BiasRule,
    /// Scales restricted to powers of two.
    pub power_of_two_scales: bool,
    /// Whether the stack accepts quantization parameters computed elsewhere.
    pub external_params: bool,
    /// The project's arithmetic profile for it, where one exists.
    pub profile: Option<&'static str>,
    pub source: &'static str,
}

/// Every deployment profile.
pub const DEPLOYMENTS: &[Deployment] = &[
    Deployment {
        name: "tensorrt",
        stack: "NVIDIA TensorRT (implicit INT8 with a calibrator, or explicit Q/DQ)",
        weight_granularity: WeightGranularity::PerChannel,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-127, 127),
        activation_symmetry: Symmetry::Symmetric,
        activation_range: (-127, 127),
        calibrator: Calibrator::Entropy,
        rounding: RoundingMode::HalfToEven,
        bias: BiasRule::Float,
        power_of_two_scales: false,
        external_params: true,
        profile: None,
        source: "TensorRT Developer Guide, 'Working with Quantized Types': symmetric INT8, per-channel max weights, \
                 per-tensor activations from IInt8EntropyCalibrator2, ranges settable with ITensor::setDynamicRange; seed 001",
    },
    Deployment {
        name: "snpe",
        stack: "Qualcomm SNPE / QNN (Hexagon DSP), default quantizer",
        weight_granularity: WeightGranularity::PerTensor,
        weight_symmetry: Symmetry::Asymmetric,
        weight_range: (0, 255),
        activation_symmetry: Symmetry::Asymmetric,
        activation_range: (0, 255),
        calibrator: Calibrator::MinMax,
        rounding: RoundingMode::HalfAwayFromZero,
        bias: BiasRule::Int32ScaleProduct,
        power_of_two_scales: false,
        external_params: false,
        profile: None,
        source: "SNPE documentation, 'Quantized vs Non-Quantized Models': per-tensor asymmetric min/max (tf mode) with 0 \
                 exactly representable, 8-bit unsigned; seed 001: no external parameters",
    },
    Deployment {
        name: "cambricon",
        stack: "Cambricon MLU (CNML / MagicMind)",
        weight_granularity: WeightGranularity::PerChannel,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-127, 127),
        activation_symmetry: Symmetry::Symmetric,
        activation_range: (-127, 127),
        calibrator: Calibrator::MinMax,
        rounding: RoundingMode::HalfAwayFromZero,
        bias: BiasRule::Float,
        power_of_two_scales: true,
        external_params: true,
        profile: None,
        source: "seed 001: per-tensor and per-channel symmetric INT8/INT16 with a power-of-two 'position' and a scale \
                 refinement; Cambricon MagicMind user guide (quantization parameters: position, scale)",
    },
    Deployment {
        name: "tflite",
        stack: "TensorFlow Lite int8 (full-integer post-training quantization)",
        weight_granularity: WeightGranularity::PerChannel,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-127, 127),
        activation_symmetry: Symmetry::Asymmetric,
        activation_range: (-128, 127),
        calibrator: Calibrator::MinMax,
        rounding: RoundingMode::HalfAwayFromZero,
        bias: BiasRule::Int32ScaleProduct,
        power_of_two_scales: false,
        external_params: true,
        profile: Some("tflite"),
        source: "TensorFlow Lite 8-bit quantization specification (tensorflow.org/lite/performance/quantization_spec): \
                 per-axis symmetric int8 weights in [-127, 127], per-tensor asymmetric int8 activations, int32 bias with \
                 scale s_in * s_w; representative-dataset min/max",
    },
    Deployment {
        name: "onnxruntime",
        stack: "ONNX Runtime static quantization (onnxruntime.quantization.quantize_static, QDQ)",
        weight_granularity: WeightGranularity::PerTensor,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-127, 127),
        activation_symmetry: Symmetry::Asymmetric,
        activation_range: (0, 255),
        calibrator: Calibrator::MinMax,
        rounding: RoundingMode::HalfToEven,
        bias: BiasRule::Int32ScaleProduct,
        power_of_two_scales: false,
        external_params: true,
        profile: Some("onnxruntime"),
        source: "onnxruntime.quantization: quantize_static defaults (QInt8 symmetric weights, per_channel=False, QUInt8 \
                 activations, CalibrationMethod.MinMax), bias quantized to int32 with s_in * s_w; read with search",
    },
    Deployment {
        name: "torch-fbgemm",
        stack: "PyTorch eager/FX post-training static quantization, x86 (fbgemm)",
        weight_granularity: WeightGranularity::PerChannel,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-128, 127),
        activation_symmetry: Symmetry::Asymmetric,
        activation_range: (0, 127),
        calibrator: Calibrator::HistogramL2,
        rounding: RoundingMode::HalfToEven,
        bias: BiasRule::Float,
        power_of_two_scales: false,
        external_params: true,
        profile: Some("torch"),
        source: "torch.ao.quantization.get_default_qconfig('fbgemm'): HistogramObserver(reduce_range=True) quint8 \
                 activations (7-bit range), default_per_channel_weight_observer (qint8, per-channel symmetric); float bias",
    },
    Deployment {
        name: "torch-qnnpack",
        stack: "PyTorch post-training static quantization, ARM (qnnpack)",
        weight_granularity: WeightGranularity::PerTensor,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-128, 127),
        activation_symmetry: Symmetry::Asymmetric,
        activation_range: (0, 255),
        calibrator: Calibrator::HistogramL2,
        rounding: RoundingMode::HalfToEven,
        bias: BiasRule::Float,
        power_of_two_scales: false,
        external_params: true,
        profile: Some("torch"),
        source: "torch.ao.quantization.get_default_qconfig('qnnpack'): HistogramObserver(reduce_range=False) quint8 \
                 activations, default_weight_observer (MinMaxObserver qint8 per-tensor symmetric)",
    },
    Deployment {
        name: "ncnn",
        stack: "Tencent ncnn int8 (ncnn2table + ncnn2int8)",
        weight_granularity: WeightGranularity::PerChannel,
        weight_symmetry: Symmetry::Symmetric,
        weight_range: (-127, 127),
        activation_symmetry: Symmetry::Symmetric,
        activation_range: (-127, 127),
        calibrator: Calibrator::Entropy,
        rounding: RoundingMode::HalfAwayFromZero,
        bias: BiasRule::Float,
        power_of_two_scales: false,
        external_params: true,
        profile: None,
        source: "ncnn wiki 'quantized int8 inference': per-channel weight scales 127 / max|w|, per-tensor activation \
                 scales from KL (ncnn2table method=kl), symmetric 127 range, float2int8 rounds half away from zero",
    },
];

impl Deployment {
    /// How values become codes under this deployment: divided by the scale, its rounding.
    pub fn rule(&self) -> QuantizeRule {
        QuantizeRule::new(ScaleOp::Divide, self.rounding)
    }

    /// Scale and zero point for the real range `[lo, hi]` under `symmetry` and the code range
    /// `(qmin, qmax)`, as these stacks choose them:
    ///
    /// ```text
    /// lo, hi = min(lo, 0), max(hi, 0)                      zero is always exactly representable
    /// symmetric:  s = max(|lo|, |hi|) / ((qmax - qmin) / 2),  z = (qmin + qmax + 1) div 2  (0 for [-127, 127] and [-128, 127])
    /// asymmetric: s = (hi - lo) / (qmax - qmin),            z = clamp(qmin - round(lo / s), qmin, qmax)
    /// power-of-two scales: s = 2^ceil(log2 s)               (Cambricon's "position")
    /// ```
    ///
    /// in `f64`, the scale then rounded to `f32`; an all-zero range takes `s = 1`. Errors: a
    /// non-finite or inverted range, a scale that does not fit a normal `f32`.
    pub fn scale_zero_point(&self, lo: f32, hi: f32, symmetry: Symmetry, range: (i32, i32)) -> Result<(f32, i32)> {
        if !(lo.is_finite() && hi.is_finite()) || lo > hi {
            return Err(QuantError::InvalidRange { min: lo as f64, max: hi as f64 });
        }
        let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
        let (qmin, qmax) = (range.0 as f64, range.1 as f64);
        let mut s = match symmetry {
            Symmetry::Symmetric => lo.abs().max(hi) / ((qmax - qmin) / 2.0),
            Symmetry::Asymmetric => (hi - lo) / (qmax - qmin),
        };
        if s == 0.0 {
            s = 1.0;
        }
        if self.power_of_two_scales {
            s = 2f64.powi(s.log2().ceil() as i32);
        }
        let s32 = s as f32;
        if !s32.is_normal() {
            return Err(QuantError::InvalidScale { index: 0, scale: s });
        }
        let z = match symmetry {
            Symmetry::Symmetric => (range.0 + range.1 + 1).div_euclid(2),
            Symmetry::Asymmetric => (qmin - (lo / s32 as f64).round()).clamp(qmin, qmax) as i32,
        };
        Ok((s32, z))
    }

    /// The weights' parameters for `w` (`[rows, cols]`, one row per output channel): per tensor
    /// or per row as [`Deployment::weight_granularity`] says, from each row's (or the tensor's)
    /// min and max.
    pub fn weight_params(&self, w: &[f32], rows: usize, cols: usize) -> Result<QuantParams> {
        check_len("weights", rows.saturating_mul(cols), w.len())?;
        check_finite("weights", w)?;
        let range = CodeRange::new(self.weight_range.0, self.weight_range.1)?;
        let minmax = |v: &[f32]| v.iter().fold((0f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
        match self.weight_granularity {
            WeightGranularity::PerTensor => {
                let (lo, hi) = minmax(w);
                let (s, z) = self.scale_zero_point(lo, hi, self.weight_symmetry, self.weight_range)?;
                Ok(QuantParams::per_tensor(s, z, range))
            }
            WeightGranularity::PerChannel => {
                let mut scales = Vec::with_capacity(rows);
                let mut zps = Vec::with_capacity(rows);
                for r in w.chunks(cols.max(1)).take(rows) {
                    let (lo, hi) = minmax(r);
                    let (s, z) = self.scale_zero_point(lo, hi, self.weight_symmetry, self.weight_range)?;
                    scales.push(s);
                    zps.push(z);
                }
                Ok(QuantParams::per_axis(Axis::new(0), scales, zps, range))
            }
        }
    }

    /// The activations' per-tensor parameters for a calibrated range `[lo, hi]`.
    pub fn activation_params(&self, lo: f32, hi: f32) -> Result<QuantParams> {
        let range = CodeRange::new(self.activation_range.0, self.activation_range.1)?;
        let (s, z) = self.scale_zero_point(lo, hi, self.activation_symmetry, self.activation_range)?;
        Ok(QuantParams::per_tensor(s, z, range))
    }

    /// The bias as the stack stores it, back in `f32`: unchanged for [`BiasRule::Float`];
    /// for [`BiasRule::Int32ScaleProduct`], `q s_x s_w[j]` with `q` the int32 bias of
    /// [`crate::linear::quantize_bias_int32`] (this deployment's rounding; a bias that does not
    /// fit `i32` is an error).
    pub fn stored_bias(&self, bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> Result<Vec<f32>> {
        match self.bias {
            BiasRule::Float => Ok(bias.to_vec()),
            BiasRule::Int32ScaleProduct => {
                let q = crate::linear::quantize_bias_int32(bias, input_scale, weight_scales, self.rounding)?;
                Ok(q.iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let sw = weight_scales[if weight_scales.len() == 1 { 0 } else { j }];
                        (v as f64 * input_scale as f64 * sw as f64) as f32
                    })
                    .collect())
            }
        }
    }
}

/// The deployment called `name`.
pub fn deployment(name: &str) -> Option<&'static Deployment> {
    DEPLOYMENTS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_profiles_exist() {
        for (i, d) in DEPLOYMENTS.iter().enumerate() {
            assert!(DEPLOYMENTS[..i].iter().all(|e| e.name != d.name));
            assert!(d.weight_range.0 < d.weight_range.1 && d.activation_range.0 < d.activation_range.1);
            if let Some(p) = d.profile {
                assert!(crate::profile::Profile::by_name(p).is_ok(), "{p}");
            }
            assert!(!d.source.is_empty());
        }
        assert_eq!(deployment("TensorRT").map(|d| d.calibrator), Some(Calibrator::Entropy));
    }

    #[test]
    fn parameters_follow_each_stacks_rules() {
        let trt = deployment("tensorrt").unwrap();
        // Symmetric [-127, 127]: s = max|x| / 127, z = 0, whatever the sign of the larger end.
        assert_eq!(trt.scale_zero_point(-0.5, 2.54, trt.activation_symmetry, trt.activation_range).unwrap(), (0.02, 0));
        // torch-fbgemm weights: symmetric over [-128, 127], s = max|w| / 127.5.
        let fb = deployment("torch-fbgemm").unwrap();
        assert_eq!(fb.scale_zero_point(-2.55, 1.0, fb.weight_symmetry, fb.weight_range).unwrap(), (0.02, 0));
        // Asymmetric [0, 255] (ONNX Runtime activations): s = (hi - lo) / 255, z = -round(lo / s).
        let ort = deployment("onnxruntime").unwrap();
        let (s, z) = ort.scale_zero_point(-1.0, 1.55, ort.activation_symmetry, ort.activation_range).unwrap();
        assert_eq!((s, z), (0.01, 100));
        // A range that excludes zero is widened to include it.
        assert_eq!(ort.scale_zero_point(0.5, 2.55, ort.activation_symmetry, ort.activation_range).unwrap(), (0.01, 0));
        // Cambricon: the scale rounded up to a power of two.
        let cam = deployment("cambricon").unwrap();
        assert_eq!(cam.scale_zero_point(-1.0, 1.0, cam.weight_symmetry, cam.weight_range).unwrap().0, 1.0 / 64.0);
        // All zeros: scale 1.
        assert_eq!(trt.scale_zero_point(0.0, 0.0, trt.weight_symmetry, trt.weight_range).unwrap(), (1.0, 0));
        // Bad ranges are typed errors.
        assert!(matches!(
            trt.scale_zero_point(f32::NAN, 1.0, trt.weight_symmetry, trt.weight_range),
            Err(QuantError::InvalidRange { .. })
        ));
        assert!(matches!(
            trt.scale_zero_point(2.0, 1.0, trt.weight_symmetry, trt.weight_range),
            Err(QuantError::InvalidRange { .. })
        ));
        assert!(matches!(
            trt.scale_zero_point(-1e-45, 0.0, trt.weight_symmetry, trt.weight_range),
            Err(QuantError::InvalidScale { .. })
        ));
    }

    #[test]
    fn weights_per_channel_or_per_tensor_and_the_bias_as_stored() {
        let w = [1.0f32, -0.5, 0.25, 0.0, 2.54, -1.27];
        let trt = deployment("tensorrt").unwrap();
        let p = trt.weight_params(&w, 2, 3).unwrap();
        assert_eq!(p.scales, vec![1.0 / 127.0, 0.02]);
        let snpe = deployment("snpe").unwrap();
        let p = snpe.weight_params(&w, 2, 3).unwrap();
        assert_eq!(p.scales.len(), 1);
        assert_eq!(p.zero_points, vec![(1.27f64 / ((2.54 + 1.27) as f32 as f64 / 255.0)).round() as i32]);
        assert!(matches!(trt.weight_params(&w, 2, 2), Err(QuantError::LengthMismatch { .. })));
        // SNPE stores an int32 bias at s_x s_w: 0.1234 at scale 0.01 * 0.1 becomes 123 * 0.001.
        let b = snpe.stored_bias(&[0.1234], 0.01, &[0.1]).unwrap();
        assert!((b[0] - 0.123).abs() < 1e-7, "{b:?}");
        assert_eq!(trt.stored_bias(&[0.1234], 0.01, &[0.1]).unwrap(), vec![0.1234]);
        // A bias that leaves i32 at that scale is an error, not a wrapped value.
        assert!(matches!(snpe.stored_bias(&[1e9], 1e-3, &[1e-3]), Err(QuantError::Overflow { .. })));
    }
}
