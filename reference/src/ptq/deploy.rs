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
use crate::rounding::RoundingMode;

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
}
