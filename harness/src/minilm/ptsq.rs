//! Post-training static quantization (PTSQ, seed 003): every Linear's input range is calibrated
//! offline on a calibration set of sentences, then fixed: at run time the activations are
//! quantized to uint8 with those parameters (clipping what falls outside), the weights are int8
//! per channel ([`super::ptdq::quantize_weight`]), and the product runs on the int8 GEMM.
//!
//! Calibration records every Linear's input over the calibration sentences (one batch per
//! sentence) and hands the batches to one of the reference's calibrators ([`Calibrator`]); the
//! calibrated range becomes uint8 parameters under the `onnxruntime` profile's affine rule (a
//! symmetric calibrated range `[-a, a]` gives zero point 128).

use super::model::{Bert, Linear, Linears, Which};
use super::ptdq::{int8_linear, quantize_weight, QuantizedLinear, WeightScheme};
use quantproof_optimized::gemm::GemmKernel;
use quantproof_reference::calibrate::onnxruntime::{CalibrateSpec, HistogramCollector};
use quantproof_reference::calibrate::torch::{HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver};
use quantproof_reference::calibrate::{aciq, mse, tensorrt, NonFinitePolicy, Observer, Range};
use quantproof_reference::choose_params::{ScaleZeroPoint, TorchObserverConfig};
use quantproof_reference::profile::{Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::scheme::{QType, RangeReduction, Symmetry};
use std::cell::RefCell;
use std::collections::HashMap;

/// The calibrators PTSQ can use, each the reference's implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calibrator {
    /// PyTorch `MinMaxObserver`: the running min and max.
    MinMax,
    /// PyTorch `MovingAverageMinMaxObserver` (averaging constant 0.01).
    MovingAverage,
    /// PyTorch `HistogramObserver` (2048 bins, L2 search).
    Histogram,
    /// ONNX Runtime's entropy (KL) calibration (2048 bins, 128 levels).
    Entropy,
    /// ONNX Runtime's percentile calibration (99.999%, symmetric).
    Percentile,
    /// TensorRT's entropy calibrator (symmetric, 2048 bins).
    TensorRtEntropy,
    /// ACIQ with a Laplace prior, 8 bits.
    Aciq,
    /// MSE search over symmetric thresholds (2048 bins).
    Mse,
}

impl Calibrator {
    pub const ALL: [Calibrator; 8] = [
        Calibrator::MinMax,
        Calibrator::MovingAverage,
        Calibrator::Histogram,
        Calibrator::Entropy,
        Calibrator::Percentile,
        Calibrator::TensorRtEntropy,
        Calibrator::Aciq,
        Calibrator::Mse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Calibrator::MinMax => "minmax (torch)",
            Calibrator::MovingAverage => "moving average (torch)",
            Calibrator::Histogram => "histogram L2 (torch)",
            Calibrator::Entropy => "entropy/KL (onnxruntime)",
            Calibrator::Percentile => "percentile 99.999 (onnxruntime)",
            Calibrator::TensorRtEntropy => "entropy (tensorrt)",
            Calibrator::Aciq => "ACIQ Laplace",
            Calibrator::Mse => "MSE",
        }
    }

    /// The calibrated range of the batches.
    pub fn range(self, batches: &[Vec<f32>]) -> Result<Range, String> {
        let e = |e: quantproof_reference::error::QuantError| e.to_string();
        let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
        fn feed(o: &mut impl Observer, batches: &[Vec<f32>]) -> Result<Range, String> {
            for b in batches {
                o.observe(b).map_err(|e| e.to_string())?;
            }
            o.range().map_err(|e| e.to_string())
        }
        let refs: Vec<&[f32]> = batches.iter().map(|b| b.as_slice()).collect();
        match self {
            Calibrator::MinMax => feed(&mut MinMaxObserver::new(cfg).map_err(e)?, batches),
            Calibrator::MovingAverage => feed(&mut MovingAverageMinMaxObserver::new(cfg, 0.01).map_err(e)?, batches),
            Calibrator::Histogram => feed(&mut HistogramObserver::new(cfg, 2048).map_err(e)?, batches),
            Calibrator::Entropy => feed(&mut HistogramCollector::new(CalibrateSpec::entropy()).map_err(e)?, batches),
            Calibrator::Percentile => {
                feed(&mut HistogramCollector::new(CalibrateSpec::percentile()).map_err(e)?, batches)
            }
            Calibrator::TensorRtEntropy => {
                tensorrt::calibrate(&refs, tensorrt::EntropyConfig::default(), NonFinitePolicy::Error).map_err(e)
            }
            Calibrator::Aciq => aciq::calibrate(aciq::Prior::Laplace, 8, &refs, NonFinitePolicy::Error).map_err(e),
            Calibrator::Mse => {
                let amax = batches.iter().flatten().fold(0f32, |a, v| a.max(v.abs()));
                feed(&mut mse::MseCalibrator::new(amax, mse::MseConfig::default()).map_err(e)?, batches)
            }
        }
    }
}

/// Records every Linear's input (one batch per call) while computing it in f32.
#[derive(Default)]
pub struct Recorder {
    pub inputs: RefCell<HashMap<(usize, Which), Vec<Vec<f32>>>>,
}

impl Linears for Recorder {
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        self.inputs.borrow_mut().entry((layer, which)).or_default().push(x.to_vec());
        lin.forward(x, rows)
    }
}

/// Every Linear on the int8 GEMM with calibrated, fixed activation parameters.
pub struct Ptsq {
    pub kernel: GemmKernel,
    /// Quantizes the activations (the reference's arithmetic, bit for bit, on this CPU's ISA).
    pub engine: quantproof_optimized::Engine,
    pub profile: Profile,
    pub weights: HashMap<(usize, Which), QuantizedLinear>,
    pub activations: HashMap<(usize, Which), ScaleZeroPoint>,
}

impl Ptsq {
    /// Calibrates every Linear input of `bert` on `calibration` (token ids and types) with
    /// `calibrator`, and quantizes the weights.
    pub fn new(
        bert: &Bert,
        calibration: &[(Vec<u32>, Vec<u32>)],
        calibrator: Calibrator,
        kernel: GemmKernel,
    ) -> Result<Ptsq, String> {
        let rec = Recorder::default();
        for (ids, types) in calibration {
            bert.hidden_states_with(ids, types, &rec)?;
        }
        Ptsq::from_recorded(bert, &rec, calibrator, WeightScheme::INT8_PER_CHANNEL, kernel)
    }

    /// [`Ptsq::new`] from inputs already recorded (so that several calibrators share one pass).
    pub fn from_recorded(
        bert: &Bert,
        rec: &Recorder,
        calibrator: Calibrator,
        scheme: WeightScheme,
        kernel: GemmKernel,
    ) -> Result<Ptsq, String> {
        let profile = Profile::ONNXRUNTIME;
        let req = QParamsRequest::new(QType::U8, Symmetry::Affine);
        let mut weights = HashMap::new();
        let mut activations = HashMap::new();
        let inputs = rec.inputs.borrow();
        for (i, layer) in bert.layers.iter().enumerate() {
            for w in Which::ALL {
                weights.insert((i, w), quantize_weight(layer.linear(w), &profile, scheme)?);
                let batches = inputs.get(&(i, w)).ok_or_else(|| format!("layer {i} {}: never called", w.name()))?;
                let r = calibrator
                    .range(batches)
                    .map_err(|e| format!("layer {i} {} ({}): {e}", w.name(), calibrator.name()))?;
                let p = profile.qparams.choose(r.min, r.max, &req).map_err(|e| e.to_string())?;
                activations.insert((i, w), p);
            }
        }
        Ok(Ptsq { kernel, engine: quantproof_optimized::Engine::auto(), profile, weights, activations })
    }
}

impl Linears for Ptsq {
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        let key = (layer, which);
        let (q, p) = match (self.weights.get(&key), self.activations.get(&key)) {
            (Some(q), Some(p)) => (q, p),
            _ => return Err(format!("layer {layer} {}: not calibrated", which.name())),
        };
        let params = QuantParams::per_tensor(p.scale, p.zero_point, QType::U8.full_range());
        let mut qx = vec![0u8; x.len()];
        self.engine.quantize(x, &[x.len()], &params, self.profile.quantize, &mut qx).map_err(|e| e.to_string())?;
        int8_linear(&qx, *p, q, lin, rows, self.kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::cosine;
    use super::super::model::tests::{tensors, TINY};
    use super::*;
    use quantproof_reference::rng::Rng;

    #[test]
    fn calibrated_static_quantization_runs_with_every_calibrator() {
        let mut rng = Rng::new(11);
        let bert = Bert::from_tensors(TINY, &tensors(&mut rng, TINY)).unwrap();
        let calib: Vec<(Vec<u32>, Vec<u32>)> =
            (0..6).map(|s| ((0..5).map(|i| ((s * 7 + i * 3) % 11) as u32).collect(), vec![0; 5])).collect();
        let ids = [2u32, 9, 4, 4, 1];
        let fp32 = bert.embed(&ids, &[0; 5]).unwrap();
        let rec = Recorder::default();
        for (i, t) in &calib {
            bert.hidden_states_with(i, t, &rec).unwrap();
        }
        assert_eq!(rec.inputs.borrow().len(), 2 * 6);
        for c in Calibrator::ALL {
            // Every calibrator gives parameters or a typed error; min-max must be close to fp32.
            match Ptsq::from_recorded(&bert, &rec, c, WeightScheme::INT8_PER_CHANNEL, GemmKernel::Portable) {
                Ok(p) => {
                    let q = bert.embed_with(&ids, &[0; 5], &p).unwrap();
                    let cos = cosine(&q, &fp32);
                    assert!(cos.is_finite(), "{}", c.name());
                    if c == Calibrator::MinMax {
                        assert!(cos > 0.98, "{}: {cos}", c.name());
                    }
                }
                Err(e) => assert!(!e.is_empty()),
            }
        }
    }
}
