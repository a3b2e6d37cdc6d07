//! Accuracy of a quantized MiniLM against fp32 on the project's corpus
//! (`harness/data/minilm_corpus.txt`, 205 sentences written for quantproof in groups of five on
//! one topic): the cosine of each sentence's embedding to its fp32 embedding, and how well
//! nearest-neighbour retrieval over the corpus agrees with fp32's.
//!
//! Retrieval: every sentence is a query against all the others, ranked by cosine similarity
//! (the embeddings are L2-normalized, so by dot product; ties broken by index). **top-1
//! agreement** is the fraction of queries whose nearest neighbour is the one fp32 finds; **top-5
//! agreement** is the mean overlap of the five nearest neighbours with fp32's five, divided by
//! five (1.0 when every query retrieves fp32's five, in any order).

use super::model::{cosine, Bert, Linears, Which};
use super::ptdq::{Ptdq, WeightScheme};
use super::ptsq::{Calibrator, Ptsq, Recorder};
use super::{load, CALIBRATION};
use quantproof_optimized::gemm::GemmKernel;
use quantproof_reference::profile::Profile;
use std::path::Path;

/// The corpus, one sentence per non-empty, non-comment line.
pub const CORPUS_TEXT: &str = include_str!("../../data/minilm_corpus.txt");

/// The corpus's sentences.
pub fn corpus() -> Vec<&'static str> {
    CORPUS_TEXT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// A configuration's accuracy against fp32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub mean_cosine: f64,
    pub min_cosine: f64,
    pub top1_agreement: f64,
    pub top5_agreement: f64,
}

/// The indices of the `k` nearest neighbours of each embedding among the others (cosine,
/// descending; ties by index).
pub fn neighbours(emb: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let n = emb.len();
    (0..n)
        .map(|i| {
            let mut sims: Vec<(f64, usize)> =
                (0..n).filter(|&j| j != i).map(|j| (cosine(&emb[i], &emb[j]), j)).collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sims.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

/// `got`'s accuracy against `reference` (the fp32 embeddings of the same sentences), with the
/// reference's neighbours computed once by the caller ([`neighbours`] with `k = 5`).
pub fn accuracy(reference: &[Vec<f32>], reference_nn: &[Vec<usize>], got: &[Vec<f32>]) -> Result<Accuracy, String> {
    if reference.len() != got.len() || reference.len() != reference_nn.len() || got.len() < 2 {
        return Err(format!(
            "accuracy needs two or more sentences and one embedding each: {} reference, {} quantized",
            reference.len(),
            got.len()
        ));
    }
    let cos: Vec<f64> = reference.iter().zip(got).map(|(r, g)| cosine(r, g)).collect();
    let nn = neighbours(got, 5);
    let n = got.len() as f64;
    let top1 = nn.iter().zip(reference_nn).filter(|(a, b)| a.first() == b.first()).count() as f64 / n;
    let k = reference_nn.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let top5 =
        nn.iter().zip(reference_nn).map(|(a, b)| a.iter().filter(|j| b.contains(j)).count() as f64 / k).sum::<f64>()
            / n;
    Ok(Accuracy {
        mean_cosine: cos.iter().sum::<f64>() / n,
        min_cosine: cos.iter().copied().fold(1.0, f64::min),
        top1_agreement: top1,
        top5_agreement: top5,
    })
}

/// The model's size in bytes: every parameter in f32, except the Linear weights when `weights`
/// quantizes them (`bits / 8` bytes per weight, plus one f32 scale per output channel or per
/// tensor). Embedding tables, biases and LayerNorms stay f32, as in every scheme here.
pub fn model_bytes(bert: &Bert, weights: Option<WeightScheme>) -> usize {
    let norm = |n: &super::model::LayerNorm| n.gamma.len() + n.beta.len();
    let mut f32_params = bert.word.len() + bert.position.len() + bert.token_type.len() + norm(&bert.embedding_norm);
    let mut quantized_bits = 0usize;
    for layer in &bert.layers {
        f32_params += norm(&layer.attention_norm) + norm(&layer.output_norm);
        for w in Which::ALL {
            let lin = layer.linear(w);
            f32_params += lin.bias.len();
            match weights {
                None => f32_params += lin.weight.len(),
                Some(s) => {
                    quantized_bits += lin.weight.len() * s.bits as usize;
                    f32_params += if s.per_channel { lin.outputs } else { 1 };
                }
            }
        }
    }
    4 * f32_params + quantized_bits.div_ceil(8)
}

/// One configuration of [`evaluate`] and its accuracy.
#[derive(Debug, Clone)]
pub struct EvalRow {
    /// `weight-only` (the toolchain's int8 model), `ptdq` or `ptsq`.
    pub scheme: &'static str,
    /// The dynamic rule (`onnxruntime dynamic`, `torch dynamic`), a calibrator's name, or `none`.
    pub calibrator: String,
    pub activations: &'static str,
    pub weights: WeightScheme,
    /// Weights quantized by the toolchain that made the int8 model, not by quantproof.
    pub toolchain: bool,
    pub model_bytes: usize,
    pub result: Result<Accuracy, String>,
}

/// Every configuration of [`evaluate`] on one corpus.
#[derive(Debug, Clone)]
pub struct EvalRun {
    pub sentences: usize,
    pub fp32_bytes: usize,
    pub gemm: &'static str,
    pub rows: Vec<EvalRow>,
}

impl EvalRow {
    /// The `minilm eval --json` line.
    pub fn to_json(&self, run: &EvalRun) -> serde_json::Value {
        let w = self.weights;
        let mut v = serde_json::json!({
            "scheme": self.scheme, "calibrator": self.calibrator, "activations": self.activations,
            "weights": w.name(), "weight_bits": w.bits, "weight_granularity": w.granularity(),
            "weights_by": if self.toolchain { "toolchain (the int8 model)" } else { "quantproof" },
            "model_bytes": self.model_bytes, "fp32_model_bytes": run.fp32_bytes,
            "sentences": run.sentences, "gemm": run.gemm,
        });
        match &self.result {
            Ok(a) => {
                v["mean_cosine"] = a.mean_cosine.into();
                v["min_cosine"] = a.min_cosine.into();
                v["top1_agreement"] = a.top1_agreement.into();
                v["top5_agreement"] = a.top5_agreement.into();
            }
            Err(e) => v["error"] = e.clone().into(),
        }
        v
    }
}

/// Evaluates every configuration against fp32 on the corpus (its first `limit` sentences):
/// the toolchain's weight-only int8 model; PTDQ under ONNX Runtime's and PyTorch's dynamic
/// rules with int8 per-channel weights, and under ONNX Runtime's with int8 per-tensor and int4
/// weights; PTSQ with every calibrator (int8 per-channel weights) and the entropy calibrator
/// with int8 per-tensor and int4 per-channel weights. PTSQ calibrates on [`CALIBRATION`].
pub fn evaluate(cache: &Path, limit: Option<usize>) -> Result<EvalRun, String> {
    let tok = load::tokenizer(cache)?;
    let mut sentences = corpus();
    if let Some(n) = limit {
        if n < 6 {
            return Err(format!("--limit {n}: at least 6 sentences are needed for top-5 retrieval"));
        }
        sentences.truncate(n);
    }
    let seqs = sentences.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let calib = CALIBRATION.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let fp32 = load::fp32_model(cache)?;
    let embed_all = |lin: Option<&dyn Linears>, bert: &Bert| -> Result<Vec<Vec<f32>>, String> {
        seqs.iter()
            .map(|(ids, types)| match lin {
                Some(l) => bert.embed_with(ids, types, l),
                None => bert.embed(ids, types),
            })
            .collect()
    };
    let reference = embed_all(None, &fp32)?;
    let reference_nn = neighbours(&reference, 5);
    let kernel = GemmKernel::best();
    let rec = Recorder::default();
    for (ids, types) in &calib {
        fp32.hidden_states_with(ids, types, &rec)?;
    }
    let i8c = WeightScheme::INT8_PER_CHANNEL;
    let i8t = WeightScheme { per_channel: false, bits: 8 };
    let i4c = WeightScheme { per_channel: true, bits: 4 };
    let i4t = WeightScheme { per_channel: false, bits: 4 };
    let dynamic = "uint8 per-tensor, at run time";
    let fixed = "uint8 per-tensor, calibrated";
    // (scheme, dynamic profile or calibrator, weights)
    let mut configs: Vec<(&'static str, Result<Profile, Calibrator>, WeightScheme)> =
        vec![("weight-only", Ok(Profile::ONNXRUNTIME), i8c)];
    for (p, w) in [
        (Profile::ONNXRUNTIME, i8c),
        (Profile::TORCH, i8c),
        (Profile::ONNXRUNTIME, i8t),
        (Profile::ONNXRUNTIME, i4c),
        (Profile::ONNXRUNTIME, i4t),
    ] {
        configs.push(("ptdq", Ok(p), w));
    }
    for c in Calibrator::ALL {
        configs.push(("ptsq", Err(c), i8c));
    }
    for w in [i8t, i4c] {
        configs.push(("ptsq", Err(Calibrator::Entropy), w));
    }
    let mut rows = Vec::new();
    for (scheme, how, w) in configs {
        let embeddings = match (scheme, how) {
            ("weight-only", _) => load::dequantized_int8_model(cache).and_then(|(m, _)| embed_all(None, &m)),
            ("ptdq", Ok(p)) => Ptdq::with_weights(&fp32, p, w, kernel).and_then(|q| embed_all(Some(&q), &fp32)),
            (_, Err(c)) => Ptsq::from_recorded(&fp32, &rec, c, w, kernel).and_then(|q| embed_all(Some(&q), &fp32)),
            _ => Err("unknown configuration".into()),
        };
        let toolchain = scheme == "weight-only";
        rows.push(EvalRow {
            scheme,
            calibrator: match (toolchain, how) {
                (true, _) => "none".into(),
                (false, Ok(p)) => format!("{} dynamic", p.name),
                (false, Err(c)) => c.name().into(),
            },
            activations: match (toolchain, how) {
                (true, _) => "f32",
                (false, Ok(_)) => dynamic,
                (false, Err(_)) => fixed,
            },
            weights: w,
            toolchain,
            model_bytes: model_bytes(&fp32, Some(w)),
            result: embeddings.and_then(|e| accuracy(&reference, &reference_nn, &e)),
        });
    }
    Ok(EvalRun { sentences: seqs.len(), fp32_bytes: model_bytes(&fp32, None), gemm: kernel.name(), rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_has_two_hundred_distinct_sentences() {
        let c = corpus();
        assert!(c.len() >= 200, "{} sentences", c.len());
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), c.len(), "duplicate sentences");
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn identical_embeddings_agree_fully_and_a_swap_is_seen() {
        let emb: Vec<Vec<f32>> = (0..12).map(|i| unit(&[1.0, i as f32 * 0.1, (i * i) as f32 * 0.01])).collect();
        let nn = neighbours(&emb, 5);
        let a = accuracy(&emb, &nn, &emb).unwrap();
        assert_eq!((a.top1_agreement, a.top5_agreement), (1.0, 1.0));
        assert!((a.mean_cosine - 1.0).abs() < 1e-6 && (a.min_cosine - 1.0).abs() < 1e-6);
        // Move sentence 0 far away: its own neighbours change, and it leaves the others' lists.
        let mut moved = emb.clone();
        moved[0] = unit(&[-1.0, 0.0, 5.0]);
        let b = accuracy(&emb, &nn, &moved).unwrap();
        assert!(b.top1_agreement < 1.0 && b.top5_agreement < 1.0 && b.min_cosine < 0.5);
        assert!(accuracy(&emb, &nn, &moved[..3]).is_err());
    }
}
