//! Sentences per second of MiniLM on one thread: our fp32 forward pass, PTDQ and PTSQ on the
//! int8 GEMM, and ONNX Runtime running the int8 model, in the same run, on batches of
//! sequences of exactly `seq_len` tokens cut from the corpus's token stream.
//!
//! Our forward pass takes one sequence at a time (a batch is its sequences one after another,
//! each a `[seq_len, hidden]` matrix through every Linear); ONNX Runtime gets the batch as one
//! `[batch, seq_len]` input. Timing: the median of `reps` runs after the model is built
//! (weights quantized and packed, PTSQ calibrated), which is not timed.

use super::model::Linears;
use super::ptdq::Ptdq;
use super::ptsq::{Calibrator, Ptsq};
use super::{load, CALIBRATION};
use quantproof_optimized::gemm::GemmKernel;
use quantproof_reference::profile::Profile;
use std::path::Path;

/// The implementations [`run`] knows.
pub const IMPLEMENTATIONS: [&str; 4] = ["fp32", "ptdq", "ptsq", "onnxruntime-int8"];

/// One implementation at one batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub implementation: String,
    pub batch: usize,
    pub seq_len: usize,
    pub threads: usize,
    pub seconds_median: f64,
    pub sentences_per_s: f64,
    pub reps: usize,
    pub detail: String,
}

impl BenchRow {
    /// The `minilm bench --json` line.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "implementation": self.implementation, "batch": self.batch, "seq_len": self.seq_len,
            "threads": self.threads, "sentences_per_s": self.sentences_per_s,
            "seconds_median": self.seconds_median, "reps": self.reps, "detail": self.detail,
        })
    }
}

/// `count` sequences of exactly `seq_len` tokens (`[CLS]`, corpus text, `[SEP]`), each starting
/// at a different place of the corpus's token stream.
pub fn sequences(
    tok: &tokenizers::Tokenizer,
    seq_len: usize,
    count: usize,
) -> Result<Vec<(Vec<u32>, Vec<u32>)>, String> {
    let special = |t: &str| tok.token_to_id(t).ok_or_else(|| format!("the tokenizer has no {t} token"));
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    if !(2..=512).contains(&seq_len) {
        return Err(format!("--seq-len {seq_len}: 2 to 512 tokens"));
    }
    let mut stream = Vec::new();
    for s in super::eval::corpus() {
        let e = tok.encode(s, false).map_err(|e| format!("tokenizing {s:?}: {e}"))?;
        stream.extend_from_slice(e.get_ids());
    }
    let body = seq_len - 2;
    if stream.len() < body + count {
        return Err(format!("the corpus has {} tokens, too few for {count} sequences of {seq_len}", stream.len()));
    }
    let step = (stream.len() - body) / count.max(1);
    Ok((0..count)
        .map(|i| {
            let mut ids = vec![cls];
            ids.extend_from_slice(&stream[i * step..i * step + body]);
            ids.push(sep);
            (ids, vec![0; seq_len])
        })
        .collect())
}

/// Times each of `implementations` (names from [`IMPLEMENTATIONS`]) at each batch size and
/// hands every row to `row` as it is measured.
pub fn run(
    cache: &Path,
    seq_len: usize,
    batches: &[usize],
    reps: usize,
    implementations: &[String],
    log: &mut dyn FnMut(&str),
    row: &mut dyn FnMut(&BenchRow),
) -> Result<Vec<BenchRow>, String> {
    if let Some(bad) = implementations.iter().find(|i| !IMPLEMENTATIONS.contains(&i.as_str())) {
        return Err(format!("--impl {bad}: one of {}", IMPLEMENTATIONS.join(", ")));
    }
    if batches.is_empty() || batches.iter().any(|&b| b == 0 || b > 256) {
        return Err(format!("--batch {batches:?}: each batch size must be 1 to 256"));
    }
    let wants = |name: &str| implementations.iter().any(|i| i == name);
    let reps = reps.max(1);
    let tok = load::tokenizer(cache)?;
    let largest = batches.iter().copied().max().unwrap_or(1);
    let seqs = sequences(&tok, seq_len, largest)?;
    let fp32 = load::fp32_model(cache)?;
    let kernel = GemmKernel::best();
    // Built only when timed (quantizing and packing the weights, calibrating PTSQ's ranges).
    let ptdq = if wants("ptdq") { Some(Ptdq::new(&fp32, Profile::ONNXRUNTIME, kernel)?) } else { None };
    let ptsq = if wants("ptsq") {
        let calib = CALIBRATION.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
        Some(Ptsq::new(&fp32, &calib, Calibrator::Entropy, kernel)?)
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut push = |implementation: &str, batch: usize, seconds: f64, detail: String| {
        let r = BenchRow {
            implementation: implementation.into(),
            batch,
            seq_len,
            threads: 1,
            seconds_median: seconds,
            sentences_per_s: batch as f64 / seconds,
            reps,
            detail,
        };
        row(&r);
        rows.push(r);
    };
    let time = |lin: Option<&dyn Linears>, batch: usize| -> Result<f64, String> {
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = std::time::Instant::now();
            for (ids, types) in &seqs[..batch] {
                std::hint::black_box(match lin {
                    Some(l) => fp32.embed_with(ids, types, l)?,
                    None => fp32.embed(ids, types)?,
                });
            }
            samples.push(t.elapsed().as_secs_f64());
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples[samples.len() / 2])
    };
    for &b in batches {
        if wants("fp32") {
            push("fp32", b, time(None, b)?, "our f32 forward pass; every product on matrixmultiply's f32 GEMM".into());
        }
        if let Some(p) = &ptdq {
            let d = format!("every Linear on the int8 GEMM ({}), activations quantized at run time", kernel.name());
            push("ptdq", b, time(Some(p), b)?, d);
        }
        if let Some(p) = &ptsq {
            let d =
                format!("every Linear on the int8 GEMM ({}), activation ranges calibrated (entropy)", kernel.name());
            push("ptsq", b, time(Some(p), b)?, d);
        }
    }
    if wants("onnxruntime-int8") {
        let (times, version) = load::onnxruntime_timing(cache, &seqs, batches, reps, log)?;
        for (&b, &t) in batches.iter().zip(&times) {
            push(
                "onnxruntime-int8",
                b,
                t,
                format!("ONNX Runtime {version} on the int8 model, one [batch, seq_len] input"),
            );
        }
    }
    Ok(rows)
}
