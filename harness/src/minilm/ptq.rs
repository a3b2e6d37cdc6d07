//! The PTQ algorithms of `quantproof_reference::ptq` on the real model: every Linear's weights
//! rounded to few bits (weight-only, activations in f32, so that what is measured is the weight
//! rounding these algorithms address), then the embeddings compared with fp32 on the corpus
//! ([`super::eval::accuracy`]).
//!
//! * **Round to nearest**: symmetric max-abs scales per output channel, `round(w / s)` half to
//!   even (`ptq::layer::fake_quantize_with`).
//! * **Bias correction** (Nagel et al. 2019, sec. 4.2, empirical): each Linear's bias becomes
//!   `b - (W~ - W) E[x]`, with `E[x]` that Linear's mean input over the calibration sentences
//!   (`ptq::bias::corrected_bias`).
//! * **AdaRound** (Nagel et al. 2020): per Linear, the up/down choice of every weight that
//!   reconstructs the Linear's output on its calibration inputs (`ptq::adaround::adaround`, the
//!   paper's lambda and beta schedule, `iterations` full-batch Adam steps), with and without bias
//!   correction afterwards.
//! * **Mixed precision** (seed 002): each Linear quantized alone to each width (the rest in
//!   f32), its error `1 - mean cosine` on the calibration sentences (`ptq::mixed::sensitivity`);
//!   the exact Pareto curve of summed error against weight size (`ptq::mixed::pareto`); the
//!   allocations under the budgets of uniform 3, 4 and 5 bits (`ptq::mixed::allocate`) measured on
//!   the corpus next to uniform widths of the same size.
//!
//! Calibration uses [`super::CALIBRATION`] (16 sentences, none of them in the corpus).

use super::eval::{accuracy, corpus, neighbours, Accuracy};
use super::model::{Bert, Linear, Linears, Which};
use super::ptsq::{Calibrator, Recorder};
use super::{load, CALIBRATION};
use quantproof_reference::ptq::adaround::{adaround, AdaRoundConfig};
use quantproof_reference::ptq::bias::{corrected_bias, input_mean};
use quantproof_reference::ptq::deploy::{
    Calibrator as DeployCalibrator, Deployment, Symmetry as DeploySymmetry, DEPLOYMENTS,
};
use quantproof_reference::ptq::layer::{fake_quantize_with, symmetric_scales, Dense, WeightGranularity};
use quantproof_reference::ptq::mixed::{allocate, pareto, sensitivity, Allocation};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::fake_quantize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What `quantproof minilm ptq` runs.
#[derive(Debug, Clone)]
pub struct PtqOptions {
    /// Weight bits for the rounding methods (2..=8).
    pub bits: u32,
    /// AdaRound's Adam steps per Linear (the paper's schedule scaled to this count).
    pub iterations: usize,
    /// The first `limit` corpus sentences only.
    pub limit: Option<usize>,
    /// Widths for mixed precision (empty: skip it).
    pub widths: Vec<u32>,
}

impl Default for PtqOptions {
    fn default() -> PtqOptions {
        PtqOptions { bits: 4, iterations: 200, limit: None, widths: vec![2, 3, 4, 8] }
    }
}

/// One rounding method's result.
#[derive(Debug, Clone)]
pub struct PtqRow {
    pub method: String,
    pub bits: String,
    /// Summed over the Linears: output MSE on the calibration inputs, relative to round to nearest.
    pub layer_mse_vs_nearest: Option<f64>,
    /// Weights rounded the other way than round to nearest.
    pub flipped: usize,
    pub weight_bytes: usize,
    pub accuracy: Accuracy,
}

/// One measured point of the mixed-precision curve.
#[derive(Debug, Clone)]
pub struct MixedRow {
    pub what: String,
    pub mean_bits: f64,
    pub weight_bytes: usize,
    /// The summed per-Linear calibration error the allocation predicts.
    pub predicted_error: f64,
    pub accuracy: Accuracy,
}

/// One deployment profile applied to the model: its weights, activations, rounding and bias rule.
#[derive(Debug, Clone)]
pub struct DeployRow {
    pub name: &'static str,
    pub weights: String,
    pub activations: String,
    pub calibrator: &'static str,
    pub accuracy: Result<Accuracy, String>,
}

/// Everything `quantproof minilm ptq` measured.
#[derive(Debug, Clone)]
pub struct PtqRun {
    pub sentences: usize,
    pub calibration_rows: usize,
    pub options: PtqOptions,
    pub rows: Vec<PtqRow>,
    /// The Pareto curve: (mean bits per weight, summed error), smallest first.
    pub pareto: Vec<(f64, f64)>,
    pub mixed: Vec<MixedRow>,
    /// Every deployment profile applied to the model.
    pub deployments: Vec<DeployRow>,
    pub seconds_adaround: f64,
    pub seconds_sensitivity: f64,
}

/// Every Linear computed in f32 with replaced weights where `map` has them.
struct Substituted<'a> {
    map: &'a HashMap<(usize, Which), Linear>,
}

impl Linears for Substituted<'_> {
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        self.map.get(&(layer, which)).unwrap_or(lin).forward(x, rows)
    }
}

type Key = (usize, Which);

/// One Linear's AdaRound result: its key, weights, flipped count, output MSE nearest / AdaRound.
type Rounded = (Key, Vec<f32>, usize, f64, f64);

fn keys(bert: &Bert) -> Vec<Key> {
    (0..bert.layers.len()).flat_map(|l| Which::ALL.into_iter().map(move |w| (l, w))).collect()
}

fn dense(lin: &Linear) -> Result<Dense, String> {
    Dense::new(lin.outputs, lin.inputs, lin.weight.clone(), lin.bias.clone()).map_err(|e| e.to_string())
}

fn rtn(lin: &Linear, bits: u32) -> Result<(Vec<f32>, Vec<f32>), String> {
    let scales = symmetric_scales(&lin.weight, lin.outputs, lin.inputs, bits, WeightGranularity::PerChannel)
        .map_err(|e| e.to_string())?;
    let w = fake_quantize_with(&lin.weight, lin.outputs, lin.inputs, &scales, bits).map_err(|e| e.to_string())?;
    Ok((w, scales))
}

fn weight_bytes(bert: &Bert, bits: &HashMap<Key, u32>) -> usize {
    keys(bert)
        .iter()
        .map(|k| {
            let lin = bert.layers[k.0].linear(k.1);
            // Codes, plus one f32 scale per output channel.
            (lin.outputs * lin.inputs * bits[k] as usize).div_ceil(8) + 4 * lin.outputs
        })
        .sum()
}

/// Runs every method (see the module docs) on the model in `cache`.
pub fn evaluate(cache: &Path, opts: &PtqOptions) -> Result<PtqRun, String> {
    if !(2..=8).contains(&opts.bits) {
        return Err(format!("--bits {}: 2 to 8", opts.bits));
    }
    if opts.widths.iter().any(|b| !(2..=8).contains(b)) {
        return Err(format!("--widths {:?}: each 2 to 8", opts.widths));
    }
    if opts.iterations == 0 || opts.iterations > 100_000 {
        return Err(format!("--iterations {}: 1 to 100000", opts.iterations));
    }
    let tok = load::tokenizer(cache)?;
    let mut sentences = corpus();
    if let Some(n) = opts.limit {
        if n < 6 {
            return Err(format!("--limit {n}: at least 6 sentences are needed for top-5 retrieval"));
        }
        sentences.truncate(n);
    }
    let seqs = sentences.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let calib = CALIBRATION.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let bert = load::fp32_model(cache)?;
    let embed_all = |seqs: &[(Vec<u32>, Vec<u32>)], map: &HashMap<Key, Linear>| -> Result<Vec<Vec<f32>>, String> {
        let sub = Substituted { map };
        seqs.iter().map(|(ids, types)| bert.embed_with(ids, types, &sub)).collect()
    };
    let none = HashMap::new();
    let reference = embed_all(&seqs, &none)?;
    let reference_nn = neighbours(&reference, 5);
    let measure = |map: &HashMap<Key, Linear>| -> Result<Accuracy, String> {
        accuracy(&reference, &reference_nn, &embed_all(&seqs, map)?)
    };

    // Every Linear's calibration inputs, one row per token.
    let rec = Recorder::default();
    for (ids, types) in &calib {
        bert.hidden_states_with(ids, types, &rec)?;
    }
    let recorded = rec.inputs.into_inner();
    let mut inputs: HashMap<Key, Vec<Vec<f32>>> = HashMap::new();
    for k in keys(&bert) {
        let width = bert.layers[k.0].linear(k.1).inputs;
        let rows: Vec<Vec<f32>> =
            recorded.get(&k).into_iter().flatten().flat_map(|batch| batch.chunks(width).map(<[f32]>::to_vec)).collect();
        inputs.insert(k, rows);
    }
    let calibration_rows = inputs.values().next().map_or(0, Vec::len);

    let bits = opts.bits;
    let uniform: HashMap<Key, u32> = keys(&bert).into_iter().map(|k| (k, bits)).collect();
    let bytes = weight_bytes(&bert, &uniform);
    let label = format!("int{bits} per-channel");
    let with = |k: Key, w: Vec<f32>, b: Vec<f32>| {
        let lin = bert.layers[k.0].linear(k.1);
        Linear { weight: w, bias: b, inputs: lin.inputs, outputs: lin.outputs }
    };

    // Round to nearest, with and without bias correction.
    let mut nearest = HashMap::new();
    let mut nearest_bc = HashMap::new();
    let mut scales_of = HashMap::new();
    for k in keys(&bert) {
        let lin = bert.layers[k.0].linear(k.1);
        let (w, scales) = rtn(lin, bits)?;
        let mean = input_mean(&inputs[&k], lin.inputs).map_err(|e| e.to_string())?;
        let b = corrected_bias(&dense(lin)?, &w, &mean).map_err(|e| e.to_string())?;
        nearest.insert(k, with(k, w.clone(), lin.bias.clone()));
        nearest_bc.insert(k, with(k, w, b));
        scales_of.insert(k, scales);
    }
    let mut rows = vec![
        PtqRow {
            method: "round to nearest".into(),
            bits: label.clone(),
            layer_mse_vs_nearest: Some(1.0),
            flipped: 0,
            weight_bytes: bytes,
            accuracy: measure(&nearest)?,
        },
        PtqRow {
            method: "round to nearest + bias correction".into(),
            bits: label.clone(),
            layer_mse_vs_nearest: None,
            flipped: 0,
            weight_bytes: bytes,
            accuracy: measure(&nearest_bc)?,
        },
    ];

    // AdaRound per Linear, the Linears shared between two threads.
    let cfg = AdaRoundConfig { iterations: opts.iterations, ..AdaRoundConfig::PAPER };
    let started = Instant::now();
    let all = keys(&bert);
    let results: Vec<Result<Rounded, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(all.len().div_ceil(2).max(1))
            .map(|part| {
                let (bert, inputs, scales_of) = (&bert, &inputs, &scales_of);
                s.spawn(move || {
                    part.iter()
                        .map(|&k| {
                            let lin = bert.layers[k.0].linear(k.1);
                            let r = adaround(&dense(lin)?, &scales_of[&k], bits, &inputs[&k], &cfg)
                                .map_err(|e| e.to_string())?;
                            Ok((k, r.weights, r.flipped, r.mse_nearest, r.mse_adaround))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err("AdaRound thread panicked".into())]))
            .collect()
    });
    let seconds_adaround = started.elapsed().as_secs_f64();
    let mut ada = HashMap::new();
    let mut ada_bc = HashMap::new();
    let (mut flipped, mut mse_n, mut mse_a) = (0usize, 0f64, 0f64);
    for r in results {
        let (k, w, f, mn, ma) = r?;
        let lin = bert.layers[k.0].linear(k.1);
        let mean = input_mean(&inputs[&k], lin.inputs).map_err(|e| e.to_string())?;
        let b = corrected_bias(&dense(lin)?, &w, &mean).map_err(|e| e.to_string())?;
        ada.insert(k, with(k, w.clone(), lin.bias.clone()));
        ada_bc.insert(k, with(k, w, b));
        flipped += f;
        mse_n += mn;
        mse_a += ma;
    }
    let ratio = if mse_n > 0.0 { Some(mse_a / mse_n) } else { None };
    rows.push(PtqRow {
        method: "AdaRound".into(),
        bits: label.clone(),
        layer_mse_vs_nearest: ratio,
        flipped,
        weight_bytes: bytes,
        accuracy: measure(&ada)?,
    });
    rows.push(PtqRow {
        method: "AdaRound + bias correction".into(),
        bits: label.clone(),
        layer_mse_vs_nearest: None,
        flipped,
        weight_bytes: bytes,
        accuracy: measure(&ada_bc)?,
    });

    // Mixed precision.
    let (mut curve, mut mixed, mut seconds_sensitivity) = (Vec::new(), Vec::new(), 0.0);
    if !opts.widths.is_empty() {
        let started = Instant::now();
        let all = keys(&bert);
        let calib_ref = embed_all(&calib, &none)?;
        let names: Vec<String> = all.iter().map(|k| format!("layer{}.{}", k.0, k.1.name())).collect();
        let params: Vec<u64> = all.iter().map(|k| bert.layers[k.0].linear(k.1).weight.len() as u64).collect();
        let layers = sensitivity(&names, &params, &opts.widths, |l, b| {
            let k = all[l];
            let lin = bert.layers[k.0].linear(k.1);
            let (w, _) = rtn(lin, b).map_err(|e| quantproof_reference::error::QuantError::Unsupported { what: e })?;
            let map = HashMap::from([(k, with(k, w, lin.bias.clone()))]);
            let got = embed_all(&calib, &map)
                .map_err(|e| quantproof_reference::error::QuantError::Unsupported { what: e })?;
            let mean_cos: f64 = calib_ref.iter().zip(&got).map(|(a, b)| super::model::cosine(a, b)).sum::<f64>()
                / calib_ref.len().max(1) as f64;
            Ok((1.0 - mean_cos).max(0.0))
        })
        .map_err(|e| e.to_string())?;
        seconds_sensitivity = started.elapsed().as_secs_f64();
        let total: u64 = params.iter().sum();
        let front = pareto(&layers).map_err(|e| e.to_string())?;
        curve = front.iter().map(|a| (a.size_bits as f64 / total as f64, a.error)).collect();
        let measure_alloc = |what: String, a: &Allocation| -> Result<MixedRow, String> {
            let bits_of: HashMap<Key, u32> = all.iter().copied().zip(a.bits.iter().copied()).collect();
            let mut map = HashMap::new();
            for &k in &all {
                let lin = bert.layers[k.0].linear(k.1);
                map.insert(k, with(k, rtn(lin, bits_of[&k])?.0, lin.bias.clone()));
            }
            Ok(MixedRow {
                what,
                mean_bits: a.size_bits as f64 / total as f64,
                weight_bytes: weight_bytes(&bert, &bits_of),
                predicted_error: a.error,
                accuracy: measure(&map)?,
            })
        };
        let narrowest = opts.widths.iter().copied().min().unwrap_or(8);
        for u in [3u32, 4, 5].into_iter().filter(|&u| u >= narrowest) {
            let budget = total * u as u64;
            if let Some(pos) = opts.widths.iter().position(|&w| w == u) {
                let uniform = Allocation {
                    bits: vec![u; all.len()],
                    size_bits: budget,
                    error: layers.iter().map(|l| l.errors[pos].1).sum(),
                };
                mixed.push(measure_alloc(format!("uniform int{u}"), &uniform)?);
            }
            match allocate(&layers, budget) {
                Ok(a) => mixed.push(measure_alloc(format!("mixed, budget of int{u}"), &a)?),
                Err(e) => return Err(format!("allocation under the int{u} budget: {e}")),
            }
        }
    }
    // Every deployment profile, simulated (quantize-dequantize) in f32.
    let mut deployments = Vec::new();
    for d in DEPLOYMENTS {
        let applied = apply_deployment(&bert, d, &recorded);
        deployments.push(DeployRow {
            name: d.name,
            weights: format!(
                "{} {} [{}, {}]{}",
                match d.weight_granularity {
                    WeightGranularity::PerChannel => "per-channel",
                    WeightGranularity::PerTensor => "per-tensor",
                },
                symmetry_name(d.weight_symmetry),
                d.weight_range.0,
                d.weight_range.1,
                if d.power_of_two_scales { ", power-of-two scales" } else { "" }
            ),
            activations: format!(
                "per-tensor {} [{}, {}]",
                symmetry_name(d.activation_symmetry),
                d.activation_range.0,
                d.activation_range.1
            ),
            calibrator: calibrator_for(d).name(),
            accuracy: applied.and_then(|q| {
                let emb =
                    seqs.iter().map(|(ids, types)| bert.embed_with(ids, types, &q)).collect::<Result<Vec<_>, _>>()?;
                accuracy(&reference, &reference_nn, &emb)
            }),
        });
    }
    Ok(PtqRun {
        deployments,
        sentences: seqs.len(),
        calibration_rows,
        options: opts.clone(),
        rows,
        pareto: curve,
        mixed,
        seconds_adaround,
        seconds_sensitivity,
    })
}

fn symmetry_name(s: DeploySymmetry) -> &'static str {
    match s {
        DeploySymmetry::Symmetric => "symmetric",
        DeploySymmetry::Asymmetric => "asymmetric",
    }
}

/// The reference calibrator a deployment's calibrator names: min/max; KL entropy as TensorRT and
/// ncnn compute it (symmetric, 2048 bins); PyTorch's HistogramObserver; ONNX Runtime's percentile.
fn calibrator_for(d: &Deployment) -> Calibrator {
    match d.calibrator {
        DeployCalibrator::MinMax => Calibrator::MinMax,
        DeployCalibrator::Entropy => Calibrator::TensorRtEntropy,
        DeployCalibrator::HistogramL2 => Calibrator::Histogram,
        DeployCalibrator::Percentile => Calibrator::Percentile,
    }
}

/// Every Linear as a deployment computes it, simulated in f32: its input quantized and
/// dequantized per tensor with the calibrated parameters, its weights quantized and dequantized
/// with the deployment's parameters, its bias as the deployment stores it.
struct Deployed {
    rule: quantproof_reference::quantize::QuantizeRule,
    linears: HashMap<Key, (Linear, QuantParams)>,
}

impl Linears for Deployed {
    fn forward(&self, layer: usize, which: Which, _: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        let (lin, p) =
            self.linears.get(&(layer, which)).ok_or_else(|| format!("layer {layer} {}: not prepared", which.name()))?;
        let mut xq = vec![0f32; x.len()];
        fake_quantize(x, &[x.len()], p, self.rule, &mut xq, None).map_err(|e| e.to_string())?;
        lin.forward(&xq, rows)
    }
}

/// Applies deployment `d` to every Linear of `bert`, calibrating the inputs on `recorded`.
fn apply_deployment(bert: &Bert, d: &Deployment, recorded: &HashMap<Key, Vec<Vec<f32>>>) -> Result<Deployed, String> {
    let calibrator = calibrator_for(d);
    let mut linears = HashMap::new();
    for k in keys(bert) {
        let what = |e: String| format!("{}: layer {} {}: {e}", d.name, k.0, k.1.name());
        let lin = bert.layers[k.0].linear(k.1);
        let batches = recorded.get(&k).ok_or_else(|| what("never called".into()))?;
        let r = calibrator.range(batches).map_err(what)?;
        let act = d.activation_params(r.min, r.max).map_err(|e| what(e.to_string()))?;
        let wp = d.weight_params(&lin.weight, lin.outputs, lin.inputs).map_err(|e| what(e.to_string()))?;
        let mut w = vec![0f32; lin.weight.len()];
        fake_quantize(&lin.weight, &[lin.outputs, lin.inputs], &wp, d.rule(), &mut w, None)
            .map_err(|e| what(e.to_string()))?;
        let bias = d.stored_bias(&lin.bias, act.scales[0], &wp.scales).map_err(|e| what(e.to_string()))?;
        linears.insert(k, (Linear { weight: w, bias, inputs: lin.inputs, outputs: lin.outputs }, act));
    }
    Ok(Deployed { rule: d.rule(), linears })
}

impl PtqRun {
    /// JSON lines: one per method, one per mixed-precision point.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        let acc = |a: &Accuracy| {
            serde_json::json!({
                "mean_cosine": a.mean_cosine, "min_cosine": a.min_cosine,
                "top1_agreement": a.top1_agreement, "top5_agreement": a.top5_agreement,
            })
        };
        let mut out: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "kind": "ptq", "method": r.method, "weights": r.bits, "weight_bytes": r.weight_bytes,
                    "flipped": r.flipped, "layer_mse_vs_nearest": r.layer_mse_vs_nearest,
                    "sentences": self.sentences, "adaround_iterations": self.options.iterations,
                });
                if let Some(o) = v.as_object_mut() {
                    o.extend(acc(&r.accuracy).as_object().cloned().unwrap_or_default());
                }
                v
            })
            .collect();
        for m in &self.mixed {
            let mut v = serde_json::json!({
                "kind": "mixed", "allocation": m.what, "mean_bits": m.mean_bits, "weight_bytes": m.weight_bytes,
                "predicted_error": m.predicted_error, "sentences": self.sentences,
            });
            if let Some(o) = v.as_object_mut() {
                o.extend(acc(&m.accuracy).as_object().cloned().unwrap_or_default());
            }
            out.push(v);
        }
        for d in &self.deployments {
            let mut v = serde_json::json!({
                "kind": "deployment", "profile": d.name, "weights": d.weights, "activations": d.activations,
                "calibrator": d.calibrator, "sentences": self.sentences,
            });
            if let Some(o) = v.as_object_mut() {
                match &d.accuracy {
                    Ok(a) => o.extend(acc(a).as_object().cloned().unwrap_or_default()),
                    Err(e) => {
                        o.insert("error".into(), serde_json::Value::String(e.clone()));
                    }
                }
            }
            out.push(v);
        }
        out
    }

    /// A Markdown report of the run.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "PTQ on MiniLM: weight-only, {} corpus sentences against fp32, calibration on {} token rows \
             ({} sentences); AdaRound {} iterations per Linear ({:.0} s on 2 threads).\n\n",
            self.sentences,
            self.calibration_rows,
            CALIBRATION.len(),
            self.options.iterations,
            self.seconds_adaround
        );
        s += "| method | weights | layer output MSE vs nearest | weights flipped | mean cos | min cos | top-1 | top-5 |\n|---|---|---|---|---|---|---|---|\n";
        for r in &self.rows {
            let a = &r.accuracy;
            s += &format!(
                "| {} | {} | {} | {} | {:.5} | {:.5} | {:.1}% | {:.1}% |\n",
                r.method,
                r.bits,
                r.layer_mse_vs_nearest.map_or("-".into(), |v| format!("{v:.3}")),
                r.flipped,
                a.mean_cosine,
                a.min_cosine,
                100.0 * a.top1_agreement,
                100.0 * a.top5_agreement
            );
        }
        if !self.mixed.is_empty() {
            s += &format!(
                "\nMixed precision over widths {:?} ({:.0} s of sensitivity runs; {} Pareto points):\n\n",
                self.options.widths,
                self.seconds_sensitivity,
                self.pareto.len()
            );
            s += "| allocation | mean bits | weight bytes | predicted error | mean cos | top-1 | top-5 |\n|---|---|---|---|---|---|---|\n";
            for m in &self.mixed {
                let a = &m.accuracy;
                s += &format!(
                    "| {} | {:.2} | {} | {:.4} | {:.5} | {:.1}% | {:.1}% |\n",
                    m.what,
                    m.mean_bits,
                    m.weight_bytes,
                    m.predicted_error,
                    a.mean_cosine,
                    100.0 * a.top1_agreement,
                    100.0 * a.top5_agreement
                );
            }
        }
        if !self.deployments.is_empty() {
            s += "\nDeployment profiles (`quantproof profiles`) applied to every Linear, simulated in f32 (quantize-dequantize of \
                  weights and inputs, the bias as stored):\n\n";
            s += "| profile | weights | activations | calibrator | mean cos | min cos | top-1 | top-5 |\n|---|---|---|---|---|---|---|---|\n";
            for d in &self.deployments {
                match &d.accuracy {
                    Ok(a) => {
                        s += &format!(
                            "| {} | {} | {} | {} | {:.5} | {:.5} | {:.1}% | {:.1}% |\n",
                            d.name,
                            d.weights,
                            d.activations,
                            d.calibrator,
                            a.mean_cosine,
                            a.min_cosine,
                            100.0 * a.top1_agreement,
                            100.0 * a.top5_agreement
                        )
                    }
                    Err(e) => {
                        s += &format!(
                            "| {} | {} | {} | {} | error: {e} | | | |\n",
                            d.name, d.weights, d.activations, d.calibrator
                        )
                    }
                }
            }
        }
        s
    }
}
