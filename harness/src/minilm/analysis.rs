//! Where MiniLM's accuracy goes under int8 (seed 001's question), Linear by Linear: for each of
//! the 36 Linear layers, the error statistics of its weight (int8 per channel) and of its input
//! activations under PTDQ (per-tensor parameters computed from each sentence at run time) and
//! under PTSQ (fixed parameters from the entropy calibrator on the calibration sentences): SQNR,
//! the share of the error that is rounding (the rest is clipping), the fraction of clipped
//! values and the share of the 256 codes used; and what quantizing that Linear alone (PTDQ,
//! every other Linear in f32) costs the sentence embeddings (mean `1 - cosine` to fp32).
//!
//! Everything is computed by the reference's `analysis::analyze` on the real tensors.

use super::model::{cosine, Bert, Which};
use super::ptdq::{OnlyOne, Ptdq};
use super::ptsq::{Calibrator, Ptsq, Recorder};
use quantproof_optimized::gemm::GemmKernel;
use quantproof_reference::analysis::{analyze, ErrorStats};
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::scheme::QType;

/// Error statistics summed over several tensors (sentences).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    /// `10 log10(sum x^2 / sum e^2)` over every element.
    pub sqnr_db: f64,
    /// Rounding's share of the squared error (1.0: no clipping at all).
    pub round_share: f64,
    pub clipped_fraction: f64,
    /// Mean over the tensors of the share of codes used.
    pub level_utilization: f64,
}

#[derive(Default)]
struct Sums {
    count: f64,
    signal: f64,
    error: f64,
    round: f64,
    clip: f64,
    clipped: f64,
    utilization: f64,
    tensors: f64,
}

impl Sums {
    fn add(&mut self, s: &ErrorStats) {
        let n = s.count as f64;
        self.count += n;
        self.error += s.mse * n;
        self.round += s.round_mse * n;
        self.clip += s.clip_mse * n;
        // sum x^2 = sum e^2 * 10^(SQNR / 10) (SQNR is infinite only without error).
        if s.sqnr_db.is_finite() {
            self.signal += s.mse * n * 10f64.powf(s.sqnr_db / 10.0);
        }
        self.clipped += s.clipped_fraction * n;
        self.utilization += s.level_utilization;
        self.tensors += 1.0;
    }

    fn finish(&self) -> Summary {
        let e = self.round + self.clip;
        Summary {
            count: self.count as usize,
            sqnr_db: if self.error > 0.0 { 10.0 * (self.signal / self.error).log10() } else { f64::INFINITY },
            round_share: if e > 0.0 { self.round / e } else { 1.0 },
            clipped_fraction: if self.count > 0.0 { self.clipped / self.count } else { 0.0 },
            level_utilization: if self.tensors > 0.0 { self.utilization / self.tensors } else { 0.0 },
        }
    }
}

/// One Linear's row of the analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRow {
    pub layer: usize,
    pub which: Which,
    pub weight: Summary,
    pub ptdq_input: Summary,
    pub ptsq_input: Summary,
    /// Mean `1 - cosine` to fp32 over the sentences when only this Linear is quantized (PTDQ).
    pub alone_cost: f64,
}

impl LinearRow {
    /// `encoder.layer.{i}.{name}`.
    pub fn name(&self) -> String {
        format!("encoder.layer.{}.{}", self.layer, self.which.name())
    }

    /// The `minilm analyze --json` line.
    pub fn to_json(&self) -> serde_json::Value {
        let s = |v: &Summary| {
            serde_json::json!({"sqnr_db": v.sqnr_db, "round_share": v.round_share,
                "clipped_fraction": v.clipped_fraction, "level_utilization": v.level_utilization, "count": v.count})
        };
        serde_json::json!({"linear": self.name(), "layer": self.layer, "weight": s(&self.weight),
            "ptdq_input": s(&self.ptdq_input), "ptsq_input": s(&self.ptsq_input), "alone_cost": self.alone_cost})
    }
}

fn err(e: quantproof_reference::QuantError) -> String {
    e.to_string()
}

/// The analysis of every Linear on `eval` (token ids and types), PTSQ calibrated on
/// `calibration`. Rows in the model's order.
pub fn analyze_linears(
    bert: &Bert,
    calibration: &[(Vec<u32>, Vec<u32>)],
    eval: &[(Vec<u32>, Vec<u32>)],
    kernel: GemmKernel,
) -> Result<Vec<LinearRow>, String> {
    if eval.is_empty() {
        return Err("the analysis needs at least one sentence".into());
    }
    let profile = Profile::ONNXRUNTIME;
    let ptdq = Ptdq::new(bert, profile, kernel)?;
    let ptsq = Ptsq::new(bert, calibration, Calibrator::Entropy, kernel)?;
    let rec = Recorder::default();
    let mut reference = Vec::with_capacity(eval.len());
    for (ids, types) in eval {
        reference.push(bert.embed_with(ids, types, &rec)?);
    }
    let inputs = rec.inputs.borrow();
    let u8_range = QType::U8.full_range();
    let mut rows = Vec::new();
    for (i, layer) in bert.layers.iter().enumerate() {
        for w in Which::ALL {
            let lin = layer.linear(w);
            let q = ptdq.linears.get(&(i, w)).ok_or_else(|| format!("layer {i} {}: not quantized", w.name()))?;
            let range = QType::I8.narrow_range();
            let wp = QuantParams::per_axis(0, q.scales.clone(), vec![0; lin.outputs], range);
            let mut ws = Sums::default();
            ws.add(&analyze(&lin.weight, &[lin.outputs, lin.inputs], &wp, profile.quantize).map_err(err)?);
            let batches = inputs.get(&(i, w)).ok_or_else(|| format!("layer {i} {}: never called", w.name()))?;
            let sp = ptsq.activations.get(&(i, w)).ok_or_else(|| format!("layer {i} {}: not calibrated", w.name()))?;
            let static_params = QuantParams::per_tensor(sp.scale, sp.zero_point, u8_range);
            let (mut dynamic, mut fixed) = (Sums::default(), Sums::default());
            for x in batches {
                let mut codes = vec![0u8; x.len()];
                let p = ptdq.engine.dynamic_quantize(&profile, x, &mut codes).map_err(err)?;
                let dp = QuantParams::per_tensor(p.scale, p.zero_point, u8_range);
                dynamic.add(&analyze(x, &[x.len()], &dp, profile.quantize).map_err(err)?);
                fixed.add(&analyze(x, &[x.len()], &static_params, profile.quantize).map_err(err)?);
            }
            let only = OnlyOne { ptdq: &ptdq, layer: i, which: w };
            let mut cost = 0f64;
            for ((ids, types), r) in eval.iter().zip(&reference) {
                cost += 1.0 - cosine(&bert.embed_with(ids, types, &only)?, r);
            }
            rows.push(LinearRow {
                layer: i,
                which: w,
                weight: ws.finish(),
                ptdq_input: dynamic.finish(),
                ptsq_input: fixed.finish(),
                alone_cost: cost / eval.len() as f64,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{tensors, TINY};
    use super::*;
    use quantproof_reference::rng::Rng;

    #[test]
    fn every_linear_gets_a_row_with_sane_statistics() {
        let mut rng = Rng::new(21);
        let bert = Bert::from_tensors(TINY, &tensors(&mut rng, TINY)).unwrap();
        let seqs: Vec<(Vec<u32>, Vec<u32>)> =
            (0..3).map(|s| ((0..5).map(|t| (s * 5 + t) as u32 % 11).collect(), vec![0; 5])).collect();
        let rows = analyze_linears(&bert, &seqs[..2], &seqs, GemmKernel::Portable).unwrap();
        assert_eq!(rows.len(), bert.layers.len() * Which::ALL.len());
        for r in &rows {
            // Symmetric max-based weights never clip; dynamic u8 ranges clip the extremes by
            // at most half a step (the rounded zero point shifts the grid): mostly rounding.
            assert!(r.weight.sqnr_db > 20.0 && r.weight.round_share > 0.999, "{r:?}");
            assert!(r.ptdq_input.sqnr_db > 10.0 && r.ptdq_input.round_share > 0.9, "{r:?}");
            assert!(r.ptsq_input.sqnr_db.is_finite());
            assert!((0.0..=1.0).contains(&r.ptsq_input.round_share));
            assert!(r.alone_cost >= 0.0 && r.alone_cost < 0.5);
        }
        assert!(analyze_linears(&bert, &seqs, &[], GemmKernel::Portable).is_err());
    }
}
