//! Loading the model's pieces from the cache: the fp32 weights, the same weights with every
//! quantized tensor replaced by the int8 model's dequantized values (`q * scale`, as its graph
//! computes them), the tokenizer, and ONNX Runtime's run of the int8 model.

use super::int8::{self, F32Tensor};
use super::model::{Bert, Config, Tensors};
use super::{fetch, onnx};
use std::path::Path;

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// Every f32 tensor of the safetensors file.
pub fn fp32_tensors(cache: &Path) -> Result<Tensors, String> {
    let bytes = read(&fetch::cached_file(cache, "fp32/model.safetensors")?)?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut t = Tensors::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            continue;
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        t.insert(name, (view.shape().to_vec(), data));
    }
    Ok(t)
}

pub fn config(cache: &Path) -> Result<Config, String> {
    let p = fetch::cached_file(cache, "fp32/config.json")?;
    Config::from_json(&String::from_utf8_lossy(&read(&p)?))
}

/// The fp32 model.
pub fn fp32_model(cache: &Path) -> Result<Bert, String> {
    Bert::from_tensors(config(cache)?, &fp32_tensors(cache)?)
}

/// The fp32 model with every weight the int8 model quantized replaced by its dequantized int8
/// values (the other tensors, biases and norms, are the fp32 ones). Returns the model and the
/// number of tensors replaced.
pub fn dequantized_int8_model(cache: &Path) -> Result<(Bert, usize), String> {
    let mut t = fp32_tensors(cache)?;
    let model = onnx::decode(&read(&fetch::cached_file(cache, "int8/model.onnx")?)?)?;
    let weights = int8::int8_weights(&model)?;
    let fp32: std::collections::HashMap<String, F32Tensor> = t
        .iter()
        .filter(|(_, (s, _))| s.len() == 2)
        .map(|(k, (s, v))| (k.clone(), F32Tensor { shape: [s[0], s[1]], data: v.clone() }))
        .collect();
    let pairs = int8::pair(&weights, &fp32)?;
    for (w, (name, transposed)) in weights.iter().zip(&pairs) {
        let d = F32Tensor { shape: w.shape, data: (0..w.codes.len()).map(|i| w.dequantized(i)).collect() };
        let d = if *transposed { d.transposed() } else { d };
        t.insert(name.clone(), (d.shape.to_vec(), d.data));
    }
    Ok((Bert::from_tensors(config(cache)?, &t)?, pairs.len()))
}

/// The tokenizer (`tokenizer.json`, read by the `tokenizers` crate).
pub fn tokenizer(cache: &Path) -> Result<tokenizers::Tokenizer, String> {
    let p = fetch::cached_file(cache, "fp32/tokenizer.json")?;
    tokenizers::Tokenizer::from_file(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Token ids and type ids of a sentence (`[CLS] ... [SEP]`, truncated as the tokenizer says).
pub fn encode(tok: &tokenizers::Tokenizer, sentence: &str) -> Result<(Vec<u32>, Vec<u32>), String> {
    let e = tok.encode(sentence, true).map_err(|e| format!("tokenizing {sentence:?}: {e}"))?;
    // Padding, if the tokenizer adds it, is dropped: every remaining token is attended to.
    let n = e.get_attention_mask().iter().take_while(|&&m| m == 1).count();
    Ok((e.get_ids()[..n].to_vec(), e.get_type_ids()[..n].to_vec()))
}

/// Runs `python/minilm_ort.py` on `request` (the int8 model's path is added as `model`) and
/// returns its JSON answer.
fn run_ort_script(
    cache: &Path,
    mut request: serde_json::Value,
    log: &mut dyn FnMut(&str),
) -> Result<serde_json::Value, String> {
    let ort = crate::ort::setup(log)?;
    let model = fetch::cached_file(cache, "int8/model.onnx")?;
    request["model"] = serde_json::json!(model);
    let dir = std::env::temp_dir().join(format!("quantproof-minilm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (script, req, resp) = (dir.join("minilm_ort.py"), dir.join("request.json"), dir.join("response.json"));
    let result = (|| {
        std::fs::write(&script, include_str!("../../python/minilm_ort.py")).map_err(|e| e.to_string())?;
        std::fs::write(&req, request.to_string()).map_err(|e| e.to_string())?;
        let out = std::process::Command::new(&ort.python)
            .arg(&script)
            .arg(&req)
            .arg(&resp)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", ort.python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "ONNX Runtime failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            ));
        }
        serde_json::from_slice(&read(&resp)?).map_err(|e| format!("ONNX Runtime's answer: {e}"))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn sequences_json(seqs: &[(Vec<u32>, Vec<u32>)]) -> serde_json::Value {
    seqs.iter().map(|(ids, types)| serde_json::json!({"ids": ids, "types": types})).collect()
}

/// ONNX Runtime's last hidden state of the int8 model for each sequence, and its version.
pub fn onnxruntime_hidden(
    cache: &Path,
    seqs: &[(Vec<u32>, Vec<u32>)],
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<Vec<f32>>, String), String> {
    let v = run_ort_script(cache, serde_json::json!({"sequences": sequences_json(seqs)}), log)?;
    let version = v["onnxruntime"].as_str().unwrap_or("?").to_string();
    let hidden = v["hidden"]
        .as_array()
        .ok_or("ONNX Runtime's answer has no hidden states")?
        .iter()
        .map(|h| h.as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN) as f32).collect()))
        .collect::<Option<Vec<Vec<f32>>>>()
        .ok_or("ONNX Runtime's hidden states are not arrays of numbers")?;
    Ok((hidden, version))
}

/// ONNX Runtime running the int8 model on one thread: the median seconds of `reps` runs of the
/// first `batch` sequences as one `[batch, L]` input, for each batch size (all sequences have
/// one length), and its version.
pub fn onnxruntime_timing(
    cache: &Path,
    seqs: &[(Vec<u32>, Vec<u32>)],
    batches: &[usize],
    reps: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<f64>, String), String> {
    let body = serde_json::json!({"sequences": sequences_json(seqs), "bench": {"batches": batches, "reps": reps}});
    let v = run_ort_script(cache, body, log)?;
    let version = v["onnxruntime"].as_str().unwrap_or("?").to_string();
    let times = v["seconds_median"]
        .as_array()
        .ok_or("ONNX Runtime's answer has no timings")?
        .iter()
        .map(|t| t.as_f64())
        .collect::<Option<Vec<f64>>>()
        .ok_or("ONNX Runtime's timings are not numbers")?;
    if times.len() != batches.len() {
        return Err(format!("ONNX Runtime timed {} batch sizes instead of {}", times.len(), batches.len()));
    }
    Ok((times, version))
}
