//! Quantized linear layers and matrix products, each framework's arithmetic named:
//! PyTorch's `quantized::linear` and `linear_dynamic` (fbgemm), ONNX Runtime's `QLinearMatMul`
//! (MLAS), TFLite's int8 `FULLY_CONNECTED` (reference kernels).
//!
//! Every op is the exact int32 accumulator of [`crate::gemm`] followed by one output stage:
//!
//! | op | bias | output stage |
//! |---|---|---|
//! | [`torch_qlinear`] | `f32`, divided by `s_x s_w` inside the stage | [`TorchOutputStage`]: `RN(RN(acc) + b / (s_x s_w)) * RN(RN(s_x s_w) / s_y)`, ties to even, `+ z_y`, clamp `[0 or z_y, 255]` |
//! | [`torch_dynamic_linear`] | `f32`, added last | `fma(RN(acc), RN(s_x s_w), b)`, `max(0, .)` with ReLU |
//! | [`onnxruntime_qlinear_matmul`] | none | `RN(acc) * RN(RN(s_a s_b) / s_y)`, clamped, ties to even, `+ z_y` |
//! | [`tflite_fully_connected`] | `i32` at scale `s_x s_w`, added to the accumulator | `round_half_away(f64(acc) * f64(s_x) f64(s_w) / f64(s_y))`, `+ z_y`, clamp to the activation's range |
//!
//! Weights are `N x K` (a linear layer's `[out, in]`) except for `QLinearMatMul`, whose `B` is
//! `K x N`. Per-channel weights have one scale and zero point per output column.

use crate::error::{check_finite, QuantError, Result};
use crate::gemm::{self, GemmDims, Operand8, WeightLayout, ZeroPoints};
use crate::requantize::{self, RequantizeKind, Requantizer};
use crate::scheme::CodeRange;

/// A weight tensor's quantization: one scale and zero point, or one per output channel.
///
/// The granularity is explicit (not inferred from the count) because PyTorch computes the
/// per-tensor and per-channel output stages differently even for one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightQuant<'a> {
    PerTensor { scale: f32, zero_point: i32 },
    PerChannel { scales: &'a [f32], zero_points: &'a [i32] },
}

impl<'a> WeightQuant<'a> {
    /// Checks counts against `n` channels, scales (finite, positive) and zero points (in the
    /// weight type's range).
    pub fn check<W: Operand8>(&self, n: usize) -> Result<()> {
        match *self {
            WeightQuant::PerTensor { scale, .. } => crate::quant_params::check_scale(0, scale)?,
            WeightQuant::PerChannel { scales, zero_points } => {
                if scales.len() != n {
                    return Err(QuantError::ParamCountMismatch {
                        what: "weight scales",
                        expected: n,
                        got: scales.len(),
                    });
                }
                scales.iter().enumerate().try_for_each(|(i, &s)| crate::quant_params::check_scale(i, s))?;
                let _ = zero_points;
            }
        }
        self.zero_points().check(n, W::QTYPE)
    }

    /// The zero points in [`gemm`]'s form.
    pub fn zero_points(&self) -> ZeroPoints<'a> {
        match *self {
            WeightQuant::PerTensor { zero_point, .. } => ZeroPoints::PerTensor(zero_point),
            WeightQuant::PerChannel { zero_points, .. } => ZeroPoints::PerColumn(zero_points),
        }
    }

    /// The scale of channel `j`.
    pub fn scale(&self, j: usize) -> f32 {
        match self {
            WeightQuant::PerTensor { scale, .. } => *scale,
            WeightQuant::PerChannel { scales, .. } => scales[j],
        }
    }

    pub fn is_per_channel(&self) -> bool {
        matches!(self, WeightQuant::PerChannel { .. })
    }
}

/// The fused activation of the linear and convolution ops: the one of the element-wise ops.
pub use crate::affine::Activation;

/// Whether a PyTorch quantized linear or convolution clamps at zero: PyTorch fuses ReLU
/// (`linear_relu`, `conv2d_relu`) or nothing; any other activation is a typed error.
pub fn torch_fused_relu(activation: Activation) -> Result<bool> {
    match activation {
        Activation::None => Ok(false),
        Activation::Relu => Ok(true),
        other => Err(QuantError::Unsupported {
            what: format!("fused activation {other:?} in PyTorch's quantized linear or convolution (ReLU or none)"),
        }),
    }
}

fn check_scale_named(what: &'static str, s: f32) -> Result<()> {
    if s.is_finite() && s > 0.0 {
        Ok(())
    } else {
        Err(QuantError::InvalidArgument { what, detail: format!("{s} must be finite and greater than zero") })
    }
}

fn check_bias_len<T>(bias: Option<&[T]>, n: usize) -> Result<()> {
    match bias {
        Some(b) => crate::error::check_len("bias", n, b.len()),
        None => Ok(()),
    }
}

/// The int32 accumulators `M x N` of `x (M x K)` and weights stored `layout`.
fn accumulators<G: gemm::Accumulator, X: Operand8, W: Operand8>(
    g: &G,
    x: &[X],
    x_zero_point: i32,
    w: &[W],
    wq: &WeightQuant<'_>,
    layout: WeightLayout,
    dims: GemmDims,
) -> Result<Vec<i32>> {
    wq.check::<W>(dims.n)?;
    let mut acc = vec![0i32; dims.sizes()?.2];
    g.accumulate(x, x_zero_point, w, wq.zero_points(), layout, dims, &mut acc)?;
    Ok(acc)
}

// ---------------------------------------------------------------------------------------------
// PyTorch (fbgemm)

/// fbgemm's `ReQuantizeOutput` for one output channel, as PyTorch's quantized linear and conv
/// set it up (`act_times_w_scale = RN(s_x s_w)`, `C_multiplier = RN(act_times_w_scale / s_y)`,
/// both in `f32`), applied by [`requantize::requantize_float_torch_with_float_bias`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TorchOutputStage {
    pub act_times_w_scale: f32,
    pub multiplier: f32,
    pub per_channel: bool,
    pub zero_point: i32,
    pub relu: bool,
}

impl TorchOutputStage {
    /// The stages of `n` output channels. Errors: scales not finite and positive, a multiplier
    /// that is not finite.
    pub fn new(
        x_scale: f32,
        wq: &WeightQuant<'_>,
        y_scale: f32,
        y_zero_point: i32,
        activation: Activation,
        n: usize,
    ) -> Result<Vec<TorchOutputStage>> {
        let relu = torch_fused_relu(activation)?;
        check_scale_named("x_scale", x_scale)?;
        check_scale_named("y_scale", y_scale)?;
        CodeRange::new(0, 255)?.check_zero_point(0, y_zero_point)?;
        let channels = if wq.is_per_channel() { n } else { 1 };
        let stages: Vec<TorchOutputStage> = (0..channels)
            .map(|j| {
                let act_times_w_scale = x_scale * wq.scale(j);
                TorchOutputStage {
                    act_times_w_scale,
                    multiplier: act_times_w_scale / y_scale,
                    per_channel: wq.is_per_channel(),
                    zero_point: y_zero_point,
                    relu,
                }
            })
            .collect();
        for (i, s) in stages.iter().enumerate() {
            if !(s.multiplier.is_finite() && s.act_times_w_scale > 0.0) {
                return Err(QuantError::InvalidArgument {
                    what: "output multiplier",
                    detail: format!(
                        "channel {i}: s_x * s_w = {:e} and (s_x * s_w) / s_y = {:e} must be finite and positive",
                        s.act_times_w_scale, s.multiplier
                    ),
                });
            }
        }
        Ok(if wq.is_per_channel() { stages } else { vec![stages[0]; n.max(1)] })
    }

    /// The output code of one accumulator (bias in real units, or none).
    pub fn apply(&self, acc: i32, bias: Option<f32>) -> u8 {
        let v = requantize::requantize_float_torch_with_float_bias(
            acc,
            bias,
            self.act_times_w_scale,
            self.multiplier,
            self.per_channel,
        );
        let lo = if self.relu { self.zero_point as i64 } else { 0 };
        (v + self.zero_point as i64).clamp(lo, 255) as u8
    }
}

/// PyTorch's `quantized::linear` / `linear_relu` (PyTorch 2.11, engine fbgemm, x86):
/// `y = W x + b` on `u8` activations and `i8` weights, `u8` output.
///
/// ```text
/// acc[i][j] = sum_k (x[i][k] - z_x) (w[j][k] - z_w[j])                   exact int32
/// y[i][j]   = clamp(z_y + round_half_even(stage_j(acc, b[j])), relu ? z_y : 0, 255)    relu: activation = Relu
/// ```
///
/// with `stage_j` fbgemm's float output stage ([`TorchOutputStage`]). `x` is `M x K`, `w` is
/// `N x K` (`[out, in]`), `bias` `f32 [N]` or none. Errors: shapes, scales, zero points, a
/// non-finite bias, an accumulator outside `i32`.
#[allow(clippy::too_many_arguments)]
pub fn torch_qlinear(
    x: &[u8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<u8>> {
    torch_qlinear_with(&gemm::Exact, x, x_scale, x_zero_point, w, wq, bias, y_scale, y_zero_point, activation, dims)
}

/// [`torch_qlinear`] with its accumulators from `g` (the reference's [`gemm::Exact`], or a faster
/// twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn torch_qlinear_with<G: gemm::Accumulator>(
    g: &G,
    x: &[u8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<u8>> {
    check_bias_len(bias, dims.n)?;
    if let Some(b) = bias {
        check_finite("bias", b)?;
    }
    let stages = TorchOutputStage::new(x_scale, wq, y_scale, y_zero_point, activation, dims.n)?;
    let acc = accumulators(g, x, x_zero_point, w, wq, WeightLayout::NxK, dims)?;
    Ok(acc
        .iter()
        .enumerate()
        .map(|(idx, &a)| {
            let j = idx % dims.n.max(1);
            stages[j].apply(a, bias.map(|b| b[j]))
        })
        .collect())
}

/// PyTorch's dynamically quantized linear (`torch.ao.nn.quantized.dynamic.Linear`,
/// `quantized::linear_dynamic`, engine fbgemm): `f32` in, `f32` out, `i8` weights quantized
/// offline, activations quantized at run time.
///
/// ```text
/// (s_x, z_x) = ChooseQuantizationParams(min(x), max(x), 0, 255, reduce_range)     qparams.rs
/// q = clamp(round_half_even(x * RN(1 / s_x)) + z_x, 0, 255)                       fbgemm QuantizeAvx2
/// acc[i][j] = sum_k (q[i][k] - z_x) (w[j][k] - z_w[j])                            exact int32
/// y[i][j] = fma(RN(acc), RN(s_x s_w[j]), b[j])    (with a bias: one rounding)
///         = RN(RN(acc) * RN(s_x s_w[j]))          (without)
/// relu: y = max(y, 0)                          (activation = Relu)
/// ```
///
/// The fused multiply-add is fbgemm's `requantizeForFloatAvx2` (`_mm256_mul_ps` then
/// `_mm256_add_ps`, contracted to one `vfmadd` by the compiler under `-mfma`); the golden
/// vectors with a bias differ from the two-rounding form by one ulp on about a third of their
/// elements and match this one bit for bit. An empty `x` (`M = 0` or `K = 0`) uses the range
/// `[0, 0]`. Errors: NaN or infinite `x` or bias, shapes, scales, zero points, an activation
/// other than ReLU or none ([`torch_fused_relu`]).
#[allow(clippy::too_many_arguments)]
pub fn torch_dynamic_linear(
    x: &[f32],
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    reduce_range: crate::scheme::RangeReduction,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<f32>> {
    torch_dynamic_linear_with(&gemm::Exact, x, w, wq, bias, reduce_range, activation, dims)
}

/// [`torch_dynamic_linear`] with its accumulators from `g` (the reference's [`gemm::Exact`], or a faster
/// twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn torch_dynamic_linear_with<G: gemm::Accumulator>(
    g: &G,
    x: &[f32],
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    reduce_range: crate::scheme::RangeReduction,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<f32>> {
    let relu = torch_fused_relu(activation)?;
    let (mk, _, _) = dims.sizes()?;
    crate::error::check_len("x (M x K)", mk, x.len())?;
    check_finite("x", x)?;
    check_bias_len(bias, dims.n)?;
    if let Some(b) = bias {
        check_finite("bias", b)?;
    }
    let (lo, hi) = x.iter().fold((0.0f32, 0.0f32), |(l, h), &v| (l.min(v), h.max(v)));
    let (lo, hi) = if x.is_empty() {
        (0.0, 0.0)
    } else {
        (
            x.iter().copied().fold(f32::INFINITY, f32::min).min(lo),
            x.iter().copied().fold(f32::NEG_INFINITY, f32::max).max(hi),
        )
    };
    let p = crate::choose_params::torch_choose_quantization_params(
        lo,
        hi,
        0,
        255,
        crate::choose_params::ChooseOptions::with_reduce_range(reduce_range),
    )?;
    let inv = 1.0f32 / p.scale;
    let q: Vec<u8> =
        x.iter().map(|&v| ((v * inv).round_ties_even() as i64 + p.zero_point as i64).clamp(0, 255) as u8).collect();
    let acc = accumulators(g, &q, p.zero_point, w, wq, WeightLayout::NxK, dims)?;
    let n = dims.n.max(1);
    Ok(acc
        .iter()
        .enumerate()
        .map(|(idx, &a)| {
            let j = idx % n;
            let m = p.scale * wq.scale(j);
            let y = match bias {
                Some(b) => (a as f32).mul_add(m, b[j]),
                None => a as f32 * m,
            };
            if relu {
                y.max(0.0)
            } else {
                y
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime (MLAS)

/// ONNX Runtime's `QLinearMatMul` (1.32, CPU provider), 2-D: `a` `M x K` (`u8` or `i8`),
/// `b` `K x N` (`u8` or `i8`, per-tensor or per-column scale and zero point), output `u8` or
/// `i8`.
///
/// ```text
/// acc[i][j] = sum_k (a[i][k] - z_a) (b[k][j] - z_b[j])                 exact int32 (MLAS QGEMM)
/// m_j       = RN(RN(s_a * s_b[j]) / s_y)                                 f32, as ComputeOutputScale
/// y[i][j]   = z_y + round_half_even(clamp(RN(acc) * m_j, qmin - z_y, qmax - z_y))   MlasRequantizeOutput
/// ```
/// ONNX Runtime returns an empty output for `M = 0` or `N = 0`. Errors: shapes, scales, zero
/// points, an accumulator outside `i32`.
#[allow(clippy::too_many_arguments)]
pub fn onnxruntime_qlinear_matmul<A: Operand8, B: Operand8, Y: Operand8>(
    a: &[A],
    a_scale: f32,
    a_zero_point: i32,
    b: &[B],
    bq: &WeightQuant<'_>,
    y_scale: f32,
    y_zero_point: i32,
    dims: GemmDims,
) -> Result<Vec<Y>> {
    onnxruntime_qlinear_matmul_with(&gemm::Exact, a, a_scale, a_zero_point, b, bq, y_scale, y_zero_point, dims)
}

/// [`onnxruntime_qlinear_matmul`] with its accumulators from `g` (the reference's [`gemm::Exact`], or a faster
/// twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn onnxruntime_qlinear_matmul_with<G: gemm::Accumulator, A: Operand8, B: Operand8, Y: Operand8>(
    g: &G,
    a: &[A],
    a_scale: f32,
    a_zero_point: i32,
    b: &[B],
    bq: &WeightQuant<'_>,
    y_scale: f32,
    y_zero_point: i32,
    dims: GemmDims,
) -> Result<Vec<Y>> {
    check_scale_named("a_scale", a_scale)?;
    check_scale_named("y_scale", y_scale)?;
    let range = Y::QTYPE.full_range();
    range.check_zero_point(0, y_zero_point)?;
    let acc = accumulators(g, a, a_zero_point, b, bq, WeightLayout::KxN, dims)?;
    let n = dims.n.max(1);
    let requant: Vec<Requantizer> =
        (0..n).map(|j| Requantizer::FloatOnnxRuntime { multiplier: a_scale * bq.scale(j) / y_scale }).collect();
    Ok(acc.iter().enumerate().map(|(idx, &v)| Y::from_value(requant[idx % n].apply(v, y_zero_point, range))).collect())
}

// ---------------------------------------------------------------------------------------------
// TFLite (reference kernels)

/// How TFLite rescales an output channel's int32 accumulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TfliteRescale {
    /// A Q31 multiplier and shift from `QuantizeMultiplier(f64(s_x) f64(s_w) / f64(s_y))`
    /// (`PopulateConvolutionQuantizationParams`), applied by the [`Requantizer`] (double rounding in
    /// TFLite's default build): `CONV_2D`, `DEPTHWISE_CONV_2D`.
    Q31(Requantizer),
    /// `round(f64(acc) * M)` with `M = f64(s_x) f64(s_w) / f64(s_y)`, ties away from zero
    /// ([`requantize::multiply_float_tflite_f64`]): TFLite 2.21's reference `FULLY_CONNECTED`,
    /// which "receives the scales in float and performs requant in float".
    FloatF64 { multiplier: f64 },
}

/// TFLite's output stage for one output channel: the rescale and the activation's clamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TfliteOutputStage {
    pub rescale: TfliteRescale,
    pub zero_point: i32,
    /// `[act_min, act_max]` from [`tflite_activation_range`].
    pub act_range: CodeRange,
}

/// TFLite's `CalculateActivationRangeQuantized` for an `i8` output:
/// `quantize(f) = z_y + (int) TfLiteRound(RN_f32(f / s_y))` (round half away from zero);
/// RELU: `[max(-128, quantize(0)), 127]`; RELU6: `[max(-128, quantize(0)), min(127, quantize(6))]`;
/// RELU_N1_TO_1: `[max(-128, quantize(-1)), min(127, quantize(1))]` ([`Activation::bounds`]).
pub fn tflite_activation_range(
    activation: Activation,
    y_scale: f32,
    y_zero_point: i32,
    range: CodeRange,
) -> (i32, i32) {
    let quantize = |f: f32| {
        let r = (f / y_scale).round();
        (y_zero_point as i64 + r.clamp(i32::MIN as f32, i32::MAX as f32) as i64).clamp(i32::MIN as i64, i32::MAX as i64)
            as i32
    };
    let (lo, hi) = activation.bounds();
    (
        lo.map_or(range.qmin(), |r| range.qmin().max(quantize(r))),
        hi.map_or(range.qmax(), |r| range.qmax().min(quantize(r))),
    )
}

impl TfliteOutputStage {
    /// The stages of `n` output channels, `float` choosing [`TfliteRescale::FloatF64`] (fully
    /// connected) or [`TfliteRescale::Q31`] under `kind` (convolutions; TFLite's default build
    /// is [`RequantizeKind::DoubleRounding`]). A per-tensor weight scale is broadcast to every
    /// channel, as TFLite does. Errors: scales, zero points, a multiplier TFLite cannot represent.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        x_scale: f32,
        wq: &WeightQuant<'_>,
        y_scale: f32,
        y_zero_point: i32,
        activation: Activation,
        float: bool,
        kind: RequantizeKind,
        n: usize,
    ) -> Result<Vec<TfliteOutputStage>> {
        check_scale_named("x_scale", x_scale)?;
        check_scale_named("y_scale", y_scale)?;
        let range = CodeRange::new(-128, 127)?;
        range.check_zero_point(0, y_zero_point)?;
        let (act_min, act_max) = tflite_activation_range(activation, y_scale, y_zero_point, range);
        let act_range = CodeRange::new(act_min, act_max)?;
        (0..n)
            .map(|j| {
                let real = x_scale as f64 * wq.scale(j) as f64 / y_scale as f64;
                let rescale = if float {
                    TfliteRescale::FloatF64 { multiplier: real }
                } else {
                    TfliteRescale::Q31(Requantizer::new(kind, real)?)
                };
                Ok(TfliteOutputStage { rescale, zero_point: y_zero_point, act_range })
            })
            .collect()
    }

    /// `clamp(z_y + rescale(acc), act_min, act_max)`.
    pub fn apply(&self, acc: i32) -> i8 {
        match self.rescale {
            TfliteRescale::Q31(r) => r.apply(acc, self.zero_point, self.act_range) as i8,
            TfliteRescale::FloatF64 { multiplier } => {
                let v = requantize::multiply_float_tflite_f64(acc, multiplier) + self.zero_point as i64;
                v.clamp(self.act_range.qmin() as i64, self.act_range.qmax() as i64) as i8
            }
        }
    }
}

/// A float bias quantized to `int32` at scale `s_bias[j] = s_x * s_w[j]` with zero point 0, as
/// TFLite, ONNX Runtime's QDQ quantizer and SNPE store it (added to the int32 accumulator):
///
/// ```text
/// q[j] = round(bias[j] / (s_x * s_w[j]))        s_x * s_w[j] computed in f64, `rounding` on the quotient
/// ```
///
/// `weight_scales` holds one scale (per tensor) or one per output. Errors: a non-finite bias, a
/// scale that is not finite and positive, a count
/// mismatch, and a quotient outside `i32` ([`QuantError::Overflow`]: the bias does not fit, as
/// happens with tiny scales).
pub fn quantize_bias_int32(
    bias: &[f32],
    input_scale: f32,
    weight_scales: &[f32],
    rounding: crate::rounding::RoundingMode,
) -> Result<Vec<i32>> {
    check_scale_named("input scale", input_scale)?;
    if weight_scales.len() != 1 && weight_scales.len() != bias.len() {
        return Err(QuantError::ParamCountMismatch {
            what: "weight scales",
            expected: bias.len(),
            got: weight_scales.len(),
        });
    }
    crate::error::check_finite("bias", bias)?;
    let mut out = Vec::with_capacity(bias.len());
    for (j, &b) in bias.iter().enumerate() {
        let sw = weight_scales[if weight_scales.len() == 1 { 0 } else { j }];
        check_scale_named("weight scale", sw)?;
        // Exact in f64, and normal: two positive f32 scales multiply to at least 2^-298.
        let s = input_scale as f64 * sw as f64;
        let q = crate::rounding::round_f64(b as f64 / s, rounding, j as u64);
        if !(i32::MIN as f64..=i32::MAX as f64).contains(&q) {
            return Err(QuantError::Overflow {
                what: "int32 bias",
                detail: format!("bias[{j}] = {b:e} at scale {s:e} is {q:e}, outside i32"),
            });
        }
        out.push(q as i32);
    }
    Ok(out)
}

/// Adds a TFLite `i32` bias (at scale `s_x s_w`, zero point 0) to an accumulator. TFLite adds
/// in `int32_t`; a sum outside `i32` is [`QuantError::AccumulatorOverflow`].
pub fn add_int32_bias(acc: i32, bias: i32, k: usize, index: usize) -> Result<i32> {
    acc.checked_add(bias).ok_or_else(|| QuantError::AccumulatorOverflow {
        what: "int32 accumulator plus bias",
        detail: format!("K = {k}: element {index}: {acc} + bias {bias} leaves i32"),
    })
}

/// TFLite's int8 `FULLY_CONNECTED` (TensorFlow 2.21, reference kernels
/// `reference_integer_ops::FullyConnected` / `FullyConnectedPerChannel`): `x` `M x K` `i8`,
/// weights `N x K` `i8`, bias `i32 [N]` or none, output `i8`.
///
/// ```text
/// acc = sum_k (x - z_x)(w - z_w) + bias[j]                          int32
/// M_j = f64(s_x) f64(s_w[j]) / f64(s_y)                             (s_w broadcast per tensor)
/// y   = clamp(z_y + round_half_away(f64(acc) * M_j), act_min, act_max)
/// ```
/// TFLite 2.21's reference fully-connected kernels take the float scales and requantize in
/// `f64` (not with a Q31 multiplier, unlike its convolutions): two golden vectors whose output
/// multiplier exceeds 1/2 tell the difference from gemmlowp's double rounding.
#[allow(clippy::too_many_arguments)]
pub fn tflite_fully_connected(
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<i8>> {
    tflite_fully_connected_with(&gemm::Exact, x, x_scale, x_zero_point, w, wq, bias, y_scale, y_zero_point, activation, dims)
}

/// [`tflite_fully_connected`] with its accumulators from `g` (the reference's [`gemm::Exact`], or a faster
/// twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn tflite_fully_connected_with<G: gemm::Accumulator>(
    g: &G,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    dims: GemmDims,
) -> Result<Vec<i8>> {
    check_bias_len(bias, dims.n)?;
    let stages = TfliteOutputStage::new(
        x_scale,
        wq,
        y_scale,
        y_zero_point,
        activation,
        true,
        RequantizeKind::DoubleRounding,
        dims.n,
    )?;
    let acc = accumulators(g, x, x_zero_point, w, wq, WeightLayout::NxK, dims)?;
    let n = dims.n.max(1);
    acc.iter()
        .enumerate()
        .map(|(idx, &a)| {
            let j = idx % n;
            let a = match bias {
                Some(b) => add_int32_bias(a, b[j], dims.k, idx)?,
                None => a,
            };
            Ok(stages[j].apply(a))
        })
        .collect()
}

#[cfg(test)]
mod bias_tests {
    use super::*;
    use crate::rounding::RoundingMode;

    #[test]
    fn int32_bias_rounds_at_the_scale_product_and_refuses_what_does_not_fit() {
        // 0.25 / (0.5 * 0.1) = 5 exactly; ties under each rounding: 0.0125 / 0.005 = 2.5.
        assert_eq!(quantize_bias_int32(&[0.25], 0.5, &[0.1], RoundingMode::HalfToEven).unwrap(), vec![5]);
        // 2.5 * 2^-5 over 2^-3 * 2^-2: exactly the tie 2.5 in f64.
        let (sx, sw) = (2f32.powi(-3), 2f32.powi(-2));
        let tie = 2.5 * (sx * sw);
        let q2 = |m| quantize_bias_int32(&[tie, -tie], sx, &[sw], m).unwrap();
        assert_eq!(q2(RoundingMode::HalfToEven), vec![2, -2]);
        assert_eq!(q2(RoundingMode::HalfAwayFromZero), vec![3, -3]);
        assert_eq!(q2(RoundingMode::HalfUp), vec![3, -2]);
        assert_eq!(q2(RoundingMode::TowardZero), vec![2, -2]);
        // One scale per output.
        assert_eq!(quantize_bias_int32(&[1.0, 1.0], 0.5, &[0.5, 0.25], RoundingMode::HalfToEven).unwrap(), vec![4, 8]);
        // i32's ends: 2^31 - 1 fits, 2^31 does not.
        assert_eq!(
            quantize_bias_int32(&[2147483647.0], 1.0, &[1.0], RoundingMode::HalfToEven).unwrap_err(),
            QuantError::Overflow {
                what: "int32 bias",
                detail: "bias[0] = 2.1474836e9 at scale 1e0 is 2.147483648e9, outside i32".into()
            }
        );
        assert_eq!(
            quantize_bias_int32(&[-2147483648.0], 1.0, &[1.0], RoundingMode::HalfToEven).unwrap(),
            vec![i32::MIN]
        );
        // Bad inputs.
        assert!(matches!(
            quantize_bias_int32(&[f32::NAN], 1.0, &[1.0], RoundingMode::HalfToEven),
            Err(QuantError::NonFinite { .. } | QuantError::NanInput { .. })
        ));
        assert!(matches!(
            quantize_bias_int32(&[1.0], 0.0, &[1.0], RoundingMode::HalfToEven),
            Err(QuantError::InvalidArgument { .. })
        ));
        assert!(matches!(
            quantize_bias_int32(&[1.0, 2.0, 3.0], 1.0, &[1.0, 1.0], RoundingMode::HalfToEven),
            Err(QuantError::ParamCountMismatch { .. })
        ));
        assert!(matches!(
            quantize_bias_int32(&[1.0], 1e-30, &[1e-30], RoundingMode::HalfToEven),
            Err(QuantError::Overflow { .. })
        ));
        let tiny = f32::from_bits(1);
        assert!(
            matches!(quantize_bias_int32(&[0.0, 1e-44], tiny, &[1.0], RoundingMode::HalfToEven), Ok(v) if v == vec![0, 7])
        );
        assert_eq!(quantize_bias_int32(&[], 1.0, &[1.0], RoundingMode::HalfToEven).unwrap(), Vec::<i32>::new());
    }
}
