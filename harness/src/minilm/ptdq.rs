//! Post-training dynamic quantization (PTDQ, seeds 002 and 003): every Linear runs as an int8
//! GEMM. Weights are quantized once, offline, per output channel and symmetric (`s_w[o] =
//! max|W[o]| / 127`, codes in `[-127, 127]`: the rule the int8 model's toolchain used, see
//! [`super::int8`]) and packed for the micro-kernel; activations are quantized at run time, per
//! tensor, to uint8 under the profile's dynamic rule (ONNX Runtime's `DynamicQuantizeLinear`, or
//! PyTorch's `ChooseQuantizationParams` as `quantize_dynamic` calls it); the exact int32 product
//! (`quantproof_optimized::gemm`, zero points folded in) is scaled back to f32 as ONNX Runtime's
//! `MatMulIntegerToFloat` does:
//!
//! ```text
//! (s_x, z_x) = dynamic_qparams(min(x), max(x));  q_x = quantize(x)
//! acc[r][o]  = sum_k (q_x[r][k] - z_x) q_w[o][k]                 exact int32
//! y[r][o]    = acc[r][o] * (s_x * s_w[o]) + b[o]                  f32
//! ```

use super::model::{Bert, Linear, Linears, Which};
use quantproof_optimized::gemm::{gemm_u8s8, GemmKernel, PackedWeights};
use quantproof_optimized::Engine;
use quantproof_reference::choose_params::ScaleZeroPoint;
use quantproof_reference::gemm::{WeightLayout, ZeroPoints};
use quantproof_reference::profile::{Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize;
use quantproof_reference::scheme::{QType, Symmetry};
use std::collections::HashMap;

/// One Linear's int8 weights, packed, with their per-channel scales.
pub struct QuantizedLinear {
    pub packed: PackedWeights,
    pub scales: Vec<f32>,
    pub codes: Vec<i8>,
}

/// How the Linear weights are quantized: one scale per output channel or one per tensor, and
/// the code width (8 bits: codes in `[-127, 127]`; 4 bits: `[-7, 7]`, one code per byte so that
/// the same int8 GEMM runs them), symmetric, zero point 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightScheme {
    pub per_channel: bool,
    pub bits: u32,
}

impl WeightScheme {
    /// The int8 model's scheme (and the usual one): int8, per output channel.
    pub const INT8_PER_CHANNEL: WeightScheme = WeightScheme { per_channel: true, bits: 8 };

    pub fn granularity(self) -> &'static str {
        if self.per_channel {
            "per-channel"
        } else {
            "per-tensor"
        }
    }

    /// `int8 per-channel`, `int4 per-tensor`, ...
    pub fn name(self) -> String {
        format!("int{} {}", self.bits, self.granularity())
    }

    /// The symmetric narrow code range.
    pub fn range(self) -> Result<quantproof_reference::scheme::CodeRange, String> {
        if !(2..=8).contains(&self.bits) {
            return Err(format!("weights of {} bits: the int8 GEMM takes 2 to 8", self.bits));
        }
        let q = QType::new(self.bits, quantproof_reference::scheme::Signedness::Signed).map_err(|e| e.to_string())?;
        Ok(q.narrow_range())
    }
}

/// Quantizes `lin`'s weight `[out, in]` under `scheme`, symmetric (the narrow range), with
/// `profile`'s scale and rounding rules (`s = max|w| / qmax` over the row or the tensor).
pub fn quantize_weight(lin: &Linear, profile: &Profile, scheme: WeightScheme) -> Result<QuantizedLinear, String> {
    let range = scheme.range()?;
    let req = QParamsRequest { custom_range: Some(range), ..QParamsRequest::new(QType::I8, Symmetry::Symmetric) };
    let (o, k) = (lin.outputs, lin.inputs);
    let choose = |w: &[f32]| -> Result<f32, String> {
        let lo = w.iter().copied().fold(0f32, f32::min);
        let hi = w.iter().copied().fold(0f32, f32::max);
        Ok(profile.qparams.choose(lo, hi, &req).map_err(|e| e.to_string())?.scale)
    };
    let scales = if scheme.per_channel {
        lin.weight.chunks(k).map(choose).collect::<Result<Vec<f32>, String>>()?
    } else {
        vec![choose(&lin.weight)?; o]
    };
    let params = QuantParams::per_axis(0, scales.clone(), vec![0; o], range);
    let mut codes = vec![0i8; o * k];
    quantize::quantize(&lin.weight, &[o, k], &params, profile.quantize, &mut codes).map_err(|e| e.to_string())?;
    let packed =
        PackedWeights::new(&codes, ZeroPoints::PerTensor(0), WeightLayout::NxK, k, o).map_err(|e| e.to_string())?;
    Ok(QuantizedLinear { packed, scales, codes })
}

/// Every Linear of the model on the int8 GEMM, activations quantized at run time.
pub struct Ptdq {
    pub profile: Profile,
    pub kernel: GemmKernel,
    pub engine: Engine,
    pub linears: HashMap<(usize, Which), QuantizedLinear>,
}

impl Ptdq {
    /// Quantizes (int8 per channel) and packs every Linear weight of `bert` once.
    pub fn new(bert: &Bert, profile: Profile, kernel: GemmKernel) -> Result<Ptdq, String> {
        Ptdq::with_weights(bert, profile, WeightScheme::INT8_PER_CHANNEL, kernel)
    }

    /// [`Ptdq::new`] with the weights quantized under `scheme`.
    pub fn with_weights(
        bert: &Bert,
        profile: Profile,
        scheme: WeightScheme,
        kernel: GemmKernel,
    ) -> Result<Ptdq, String> {
        let mut linears = HashMap::new();
        for (i, layer) in bert.layers.iter().enumerate() {
            for w in Which::ALL {
                linears.insert((i, w), quantize_weight(layer.linear(w), &profile, scheme)?);
            }
        }
        Ok(Ptdq { profile, kernel, engine: Engine::auto(), linears })
    }
}

impl Linears for Ptdq {
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        let q = self
            .linears
            .get(&(layer, which))
            .ok_or_else(|| format!("layer {layer} {}: not quantized", which.name()))?;
        let mut qx = vec![0u8; x.len()];
        let p = self.engine.dynamic_quantize(&self.profile, x, &mut qx).map_err(|e| e.to_string())?;
        int8_linear(&qx, p, q, lin, rows, self.kernel)
    }
}

/// The quantized Linear both PTDQ and PTSQ run, once the activations are codes `qx` with
/// parameters `p`: the exact int32 product on the GEMM micro-kernel, then ONNX Runtime's
/// `MatMulIntegerToFloat` rescale `y = acc * (s_x * s_w[o]) + b[o]`.
pub fn int8_linear(
    qx: &[u8],
    p: ScaleZeroPoint,
    q: &QuantizedLinear,
    lin: &Linear,
    rows: usize,
    kernel: GemmKernel,
) -> Result<Vec<f32>, String> {
    let mut acc = vec![0i32; rows * lin.outputs];
    gemm_u8s8(qx, lin.inputs, rows, p.zero_point, &q.packed, kernel, &mut acc).map_err(|e| e.to_string())?;
    let mut y = vec![0f32; rows * lin.outputs];
    for r in 0..rows {
        for o in 0..lin.outputs {
            y[r * lin.outputs + o] = acc[r * lin.outputs + o] as f32 * (p.scale * q.scales[o]) + lin.bias[o];
        }
    }
    Ok(y)
}

/// Only one Linear quantized (PTDQ), every other in f32: how much that layer alone costs.
pub struct OnlyOne<'a> {
    pub ptdq: &'a Ptdq,
    pub layer: usize,
    pub which: Which,
}

impl Linears for OnlyOne<'_> {
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        if (layer, which) == (self.layer, self.which) {
            self.ptdq.forward(layer, which, lin, x, rows)
        } else {
            lin.forward(x, rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::cosine;
    use super::super::model::tests::{tensors, TINY};
    use super::*;
    use quantproof_reference::rng::Rng;

    /// PTDQ on a small random BERT: close to fp32, and the same bits on every GEMM kernel (the
    /// int32 products are exact, so the kernel cannot change the answer).
    #[test]
    fn ptdq_is_close_to_fp32_and_the_same_on_every_kernel() {
        let mut rng = Rng::new(5);
        let bert = Bert::from_tensors(TINY, &tensors(&mut rng, TINY)).unwrap();
        let ids = [3u32, 1, 4, 1, 5];
        let fp32 = bert.embed(&ids, &[0; 5]).unwrap();
        for profile in [Profile::ONNXRUNTIME, Profile::TORCH] {
            let mut outs = Vec::new();
            for kernel in GemmKernel::ALL.into_iter().filter(|k| k.is_available()) {
                let p = Ptdq::new(&bert, profile, kernel).unwrap();
                outs.push(bert.embed_with(&ids, &[0; 5], &p).unwrap());
            }
            assert!(outs.windows(2).all(|w| w[0] == w[1]), "{}: kernels disagree", profile.name);
            let c = cosine(&outs[0], &fp32);
            assert!(c > 0.99 && c < 1.0, "{}: cosine {c}", profile.name);
        }
    }

    #[test]
    fn weights_are_quantized_per_output_channel() {
        let lin = Linear { weight: vec![1.0, -0.5, 0.25, 0.0, 0.02, -0.04], bias: vec![0.0; 2], inputs: 3, outputs: 2 };
        let q = quantize_weight(&lin, &Profile::ONNXRUNTIME, WeightScheme::INT8_PER_CHANNEL).unwrap();
        assert_eq!(q.scales, vec![1.0 / 127.0, (0.04f64 / 127.0) as f32]);
        let want: Vec<i8> =
            lin.weight.iter().enumerate().map(|(i, &w)| (w / q.scales[i / 3]).round_ties_even() as i8).collect();
        assert_eq!(q.codes, want);
        assert_eq!((q.codes[0], q.codes[5]), (127, -127));
    }
}
