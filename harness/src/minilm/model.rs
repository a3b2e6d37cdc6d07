//! all-MiniLM-L6-v2's forward pass in plain Rust: BERT (embeddings, six encoder layers of
//! self-attention and a GELU feed-forward block, each followed by a residual LayerNorm), then
//! sentence-transformers' mean pooling over the tokens and L2 normalization.
//!
//! ```text
//! h0 = LayerNorm(word[ids] + position[0..L] + token_type[types])
//! per layer:  q, k, v = h Wq^T + bq, h Wk^T + bk, h Wv^T + bv          (12 heads of 32)
//!             a = softmax(q k^T / sqrt(32) + mask) v
//!             h = LayerNorm(h + a Wo^T + bo)
//!             h = LayerNorm(h + GELU(h Wi^T + bi) Wout^T + bout)        GELU(x) = x (1 + erf(x / sqrt 2)) / 2
//! embedding = normalize(mean over tokens of h)
//! ```
//!
//! All in f32, sums in the order written (no claim of bit equality with another runtime: the
//! comparison with ONNX Runtime is by cosine and largest difference).

use std::collections::HashMap;

/// The model's shape (`config.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub eps: f32,
}

impl Config {
    /// all-MiniLM-L6-v2.
    pub const MINILM_L6: Config = Config {
        hidden: 384,
        heads: 12,
        intermediate: 1536,
        layers: 6,
        vocab: 30522,
        max_positions: 512,
        type_vocab: 2,
        eps: 1e-12,
    };

    /// Reads the fields of a Hugging Face BERT `config.json`.
    pub fn from_json(text: &str) -> Result<Config, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("config.json: {e}"))?;
        let u = |k: &str| {
            v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize).ok_or_else(|| format!("config.json: no integer {k}"))
        };
        let c = Config {
            hidden: u("hidden_size")?,
            heads: u("num_attention_heads")?,
            intermediate: u("intermediate_size")?,
            layers: u("num_hidden_layers")?,
            vocab: u("vocab_size")?,
            max_positions: u("max_position_embeddings")?,
            type_vocab: u("type_vocab_size")?,
            eps: v.get("layer_norm_eps").and_then(|x| x.as_f64()).ok_or("config.json: no layer_norm_eps")? as f32,
        };
        if c.heads == 0 || c.hidden % c.heads != 0 || c.hidden == 0 {
            return Err(format!("config.json: hidden size {} is not a multiple of {} heads", c.hidden, c.heads));
        }
        if v.get("hidden_act").and_then(|x| x.as_str()).is_some_and(|a| a != "gelu") {
            return Err("config.json: only hidden_act gelu (erf) is implemented".into());
        }
        Ok(c)
    }
}

/// `y = x W^T + b` with `W` as `[out, in]` (PyTorch's Linear layout).
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl Linear {
    /// `rows` rows of `x` (each `inputs` wide). Errors: an `x` that is not `rows x inputs`, a
    /// weight that is not `outputs x inputs`, a bias that is not `outputs` long.
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        if x.len() != rows * self.inputs
            || self.weight.len() != self.outputs * self.inputs
            || self.bias.len() != self.outputs
        {
            return Err(format!(
                "Linear {}x{}: input of {} values for {rows} rows, weight of {}, bias of {}",
                self.outputs,
                self.inputs,
                x.len(),
                self.weight.len(),
                self.bias.len()
            ));
        }
        let mut y = vec![0f32; rows * self.outputs];
        linear_rows(self, x, rows, &mut y)?;
        Ok(y)
    }
}

/// Runs `$call` (a call of an `#[inline(always)]` function) compiled for AVX2 when this CPU has
/// it, else for the baseline: the element-wise loops (GELU, softmax's `e^x`) in 8-lane vectors.
/// The arithmetic is the same either way (no FMA is enabled), so their results are identical;
/// only the speed differs. (The products go through `matrixmultiply`, which picks its own
/// kernels at run time, FMA among them: the fp32 model's last bits may differ between CPUs.)
macro_rules! with_avx2 {
    ($call:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2_version<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected just above.
                unsafe { avx2_version(|| $call) }
            } else {
                $call
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $call
        }
    }};
}

/// `y = x W^T + b` for `rows` rows: one `[rows, inputs] x [inputs, outputs]` product
/// (`ndarray`'s `general_mat_mul`, `matrixmultiply`'s packed f32 kernels, FMA where the CPU has
/// it), then the bias. (A dot product per output, before, made the fp32 model about ten times
/// slower than a BLAS, which flattered the int8 paths' speed-ups.)
fn linear_rows(lin: &Linear, x: &[f32], rows: usize, y: &mut [f32]) -> Result<(), String> {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{ArrayView2, ArrayViewMut2};
    let shape = |e: ndarray::ShapeError| format!("Linear {}x{}: {e}", lin.outputs, lin.inputs);
    let xa = ArrayView2::from_shape((rows, lin.inputs), x).map_err(shape)?;
    let wa = ArrayView2::from_shape((lin.outputs, lin.inputs), &lin.weight[..]).map_err(shape)?;
    let mut ya = ArrayViewMut2::from_shape((rows, lin.outputs), y).map_err(shape)?;
    general_mat_mul(1.0, &xa, &wa.t(), 0.0, &mut ya);
    for mut row in ya.rows_mut() {
        row.iter_mut().zip(&lin.bias).for_each(|(y, b)| *y += b);
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl LayerNorm {
    fn apply(&self, x: &mut [f32], eps: f32) {
        let n = self.gamma.len();
        for row in x.chunks_mut(n) {
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * self.gamma[i] + self.beta[i];
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
}

/// The six Linear layers of an encoder layer, in the order the forward pass runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    Query,
    Key,
    Value,
    AttentionOutput,
    Intermediate,
    Output,
}

impl Which {
    pub const ALL: [Which; 6] =
        [Which::Query, Which::Key, Which::Value, Which::AttentionOutput, Which::Intermediate, Which::Output];

    pub fn name(self) -> &'static str {
        match self {
            Which::Query => "attention.self.query",
            Which::Key => "attention.self.key",
            Which::Value => "attention.self.value",
            Which::AttentionOutput => "attention.output.dense",
            Which::Intermediate => "intermediate.dense",
            Which::Output => "output.dense",
        }
    }
}

impl Layer {
    pub fn linear(&self, w: Which) -> &Linear {
        match w {
            Which::Query => &self.query,
            Which::Key => &self.key,
            Which::Value => &self.value,
            Which::AttentionOutput => &self.attention_output,
            Which::Intermediate => &self.intermediate,
            Which::Output => &self.output,
        }
    }
}

/// How the Linear layers are computed: in f32 ([`F32Linears`]) or quantized (PTDQ, PTSQ).
pub trait Linears {
    /// `y = x W^T + b` of Linear `which` of encoder layer `layer` on `rows` rows of `x`.
    fn forward(&self, layer: usize, which: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String>;
}

/// Every Linear in f32 ([`Linear::forward`]).
pub struct F32Linears;

impl Linears for F32Linears {
    fn forward(&self, _: usize, _: Which, lin: &Linear, x: &[f32], rows: usize) -> Result<Vec<f32>, String> {
        lin.forward(x, rows)
    }
}

/// The weights of the model.
#[derive(Debug, Clone)]
pub struct Bert {
    pub config: Config,
    pub word: Vec<f32>,
    pub position: Vec<f32>,
    pub token_type: Vec<f32>,
    pub embedding_norm: LayerNorm,
    pub layers: Vec<Layer>,
}

/// Where a model's tensors come from: name -> (shape, values).
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

impl Bert {
    /// Builds the model from Hugging Face BERT tensor names (`embeddings.word_embeddings.weight`,
    /// `encoder.layer.{i}.attention.self.query.weight`, ...), checking every shape.
    pub fn from_tensors(config: Config, t: &Tensors) -> Result<Bert, String> {
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let (s, v) = t.get(name).ok_or_else(|| format!("weights: no tensor {name}"))?;
            if s != shape {
                return Err(format!("weights: {name} has shape {s:?}, expected {shape:?}"));
            }
            Ok(v.clone())
        };
        let h = config.hidden;
        let linear = |p: &str, inputs: usize, outputs: usize| -> Result<Linear, String> {
            Ok(Linear {
                weight: get(&format!("{p}.weight"), &[outputs, inputs])?,
                bias: get(&format!("{p}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let norm = |p: &str| -> Result<LayerNorm, String> {
            Ok(LayerNorm { gamma: get(&format!("{p}.weight"), &[h])?, beta: get(&format!("{p}.bias"), &[h])? })
        };
        let mut layers = Vec::new();
        for i in 0..config.layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                query: linear(&format!("{p}.attention.self.query"), h, h)?,
                key: linear(&format!("{p}.attention.self.key"), h, h)?,
                value: linear(&format!("{p}.attention.self.value"), h, h)?,
                attention_output: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), h, config.intermediate)?,
                output: linear(&format!("{p}.output.dense"), config.intermediate, h)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            config,
            word: get("embeddings.word_embeddings.weight", &[config.vocab, h])?,
            position: get("embeddings.position_embeddings.weight", &[config.max_positions, h])?,
            token_type: get("embeddings.token_type_embeddings.weight", &[config.type_vocab, h])?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// The last hidden state `[L, hidden]` of one sequence (every token attended to).
    pub fn hidden_states(&self, ids: &[u32], types: &[u32]) -> Result<Vec<f32>, String> {
        self.hidden_states_with(ids, types, &F32Linears)
    }

    /// [`Bert::hidden_states`] with the Linear layers computed by `linears`.
    pub fn hidden_states_with(&self, ids: &[u32], types: &[u32], linears: &dyn Linears) -> Result<Vec<f32>, String> {
        let c = self.config;
        let (l, h) = (ids.len(), c.hidden);
        if l == 0 || l > c.max_positions || types.len() != l {
            return Err(format!("a sequence needs 1..={} tokens and one type per token", c.max_positions));
        }
        let mut x = vec![0f32; l * h];
        for (p, (&id, &ty)) in ids.iter().zip(types).enumerate() {
            let (id, ty) = (id as usize, ty as usize);
            if id >= c.vocab || ty >= c.type_vocab {
                return Err(format!("token {id} (type {ty}) is outside the vocabulary"));
            }
            for j in 0..h {
                x[p * h + j] = self.word[id * h + j] + self.position[p * h + j] + self.token_type[ty * h + j];
            }
        }
        self.embedding_norm.apply(&mut x, c.eps);
        let d = h / c.heads;
        let scale = 1.0 / (d as f32).sqrt();
        for (li, layer) in self.layers.iter().enumerate() {
            let run = |w: Which, x: &[f32]| linears.forward(li, w, layer.linear(w), x, l);
            let (q, k, v) = (run(Which::Query, &x)?, run(Which::Key, &x)?, run(Which::Value, &x)?);
            let mut ctx = vec![0f32; l * h];
            with_avx2!(attention(&q, &k, &v, l, h, c.heads, scale, &mut ctx))?;
            let a = run(Which::AttentionOutput, &ctx)?;
            x.iter_mut().zip(&a).for_each(|(x, a)| *x += a);
            layer.attention_norm.apply(&mut x, c.eps);
            let mut f = run(Which::Intermediate, &x)?;
            with_avx2!(f.iter_mut().for_each(|v| *v = gelu(*v)));
            let f = run(Which::Output, &f)?;
            x.iter_mut().zip(&f).for_each(|(x, f)| *x += f);
            layer.output_norm.apply(&mut x, c.eps);
        }
        Ok(x)
    }

    /// The sentence embedding: mean of the last hidden state over the tokens, L2-normalized.
    pub fn embed(&self, ids: &[u32], types: &[u32]) -> Result<Vec<f32>, String> {
        self.embed_with(ids, types, &F32Linears)
    }

    /// [`Bert::embed`] with the Linear layers computed by `linears`.
    pub fn embed_with(&self, ids: &[u32], types: &[u32], linears: &dyn Linears) -> Result<Vec<f32>, String> {
        let x = self.hidden_states_with(ids, types, linears)?;
        Ok(mean_pool_normalize(&x, self.config.hidden))
    }
}

/// Scaled dot-product attention of every head, every token attending to every token:
/// `ctx[i] += softmax_j(q_i . k_j * scale) v_j` per head (`h = heads * d` values per token).
/// Per head, the scores are one `[l, d] x [d, l]` product and the context one `[l, l] x [l, d]`
/// product (`ndarray`'s `general_mat_mul`, `matrixmultiply`'s packed f32 kernels, on strided
/// views of the head's columns); each row's softmax in between, `e^x` by [`exp_approx`] over the
/// whole row (vector lanes), then the row sum and the division. (A query at a time, with
/// libm's `exp` per score, this took half an int8 forward pass.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    l: usize,
    h: usize,
    heads: usize,
    scale: f32,
    ctx: &mut [f32],
) -> Result<(), String> {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
    let d = h / heads;
    let shape = |e: ndarray::ShapeError| format!("attention over {l} tokens of {h} values: {e}");
    let qa = ArrayView2::from_shape((l, h), q).map_err(shape)?;
    let ka = ArrayView2::from_shape((l, h), k).map_err(shape)?;
    let va = ArrayView2::from_shape((l, h), v).map_err(shape)?;
    let mut ca = ArrayViewMut2::from_shape((l, h), ctx).map_err(shape)?;
    let mut scores = Array2::<f32>::zeros((l, l));
    for head in 0..heads {
        let cols = s![.., head * d..(head + 1) * d];
        general_mat_mul(scale, &qa.slice(cols), &ka.slice(cols).t(), 0.0, &mut scores);
        for mut row in scores.rows_mut() {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|s| *s = exp_approx(*s - m));
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|s| *s /= sum);
        }
        general_mat_mul(1.0, &scores, &va.slice(cols), 1.0, &mut ca.slice_mut(cols));
    }
    Ok(())
}

/// sentence-transformers' mean pooling (every token counts) and L2 normalization (norm floored
/// at 1e-12, as `torch.nn.functional.normalize`).
pub fn mean_pool_normalize(x: &[f32], hidden: usize) -> Vec<f32> {
    let l = x.len() / hidden;
    let mut m = vec![0f32; hidden];
    for row in x.chunks(hidden) {
        m.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    m.iter_mut().for_each(|v| *v /= l.max(1) as f32);
    let norm = m.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    m.iter_mut().for_each(|v| *v /= norm);
    m
}

/// GELU with erf (BERT's `gelu`, `0.5 x (1 + erf(x / sqrt 2))`), erf by [`erf_approx`]:
/// branch-free, so a loop over a layer's activations runs in vector lanes (libm's `erff`, one
/// call per value, took a third of an int8 forward pass). Within 6e-7 of the exact erf (the
/// unit tests check it over [-10, 10]), below the rounding of the products that follow.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_approx(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `e^x` in f32 for `x <= 0` (softmax's `s - max`, GELU's `-x^2`), branch-free: `x = n ln 2 +
/// r` with `n` rounded to nearest (the 1.5 * 2^23 trick, no float-to-int conversion) and `r`
/// by Cody and Waite's two-part `ln 2`, `e^r` by Cephes' `expf` polynomial (degree 6 on `|r| <=
/// ln 2 / 2`), times `2^n` assembled in the exponent bits. Within 2 ulp of `e^x` for `x` in
/// `[-87, 0]` (checked); below -87 it returns `e^-87` (about 1.6e-38) instead of a smaller
/// value or 0, which no sum it enters can see.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 0.0);
    let v = x * std::f32::consts::LOG2_E + SHIFT;
    let n = v - SHIFT;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // n = the low bits of v's integer part; 2^n built in the exponent field (n >= -126).
    let n = (v.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    e * f32::from_bits(((n + 127) << 23) as u32)
}

/// erf by Abramowitz and Stegun's 7.1.26, `1 - (a1 t + ... + a5 t^5) e^(-x^2)` with `t = 1 / (1
/// + p |x|)`, odd in `x` (absolute error at most 1.5e-7 in exact arithmetic, 5.1e-7 measured
/// in f32 against f64's erf), with [`exp_approx`]; no branches.
#[inline(always)]
pub fn erf_approx(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_72 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_approx(-a * a);
    y.copysign(x)
}

/// Cosine similarity (in f64).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quantproof_reference::rng::Rng;

    pub(crate) const TINY: Config = Config {
        hidden: 8,
        heads: 2,
        intermediate: 12,
        layers: 2,
        vocab: 11,
        max_positions: 6,
        type_vocab: 2,
        eps: 1e-12,
    };

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| (rng.unit() as f32 - 0.5) * 0.8).collect()
    }

    pub(crate) fn tensors(rng: &mut Rng, c: Config) -> Tensors {
        let h = c.hidden;
        let mut t = Tensors::new();
        let mut put = |name: String, shape: Vec<usize>, rng: &mut Rng| {
            let n = shape.iter().product();
            t.insert(name, (shape, random(rng, n)));
        };
        put("embeddings.word_embeddings.weight".into(), vec![c.vocab, h], rng);
        put("embeddings.position_embeddings.weight".into(), vec![c.max_positions, h], rng);
        put("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab, h], rng);
        for p in ["embeddings.LayerNorm"] {
            put(format!("{p}.weight"), vec![h], rng);
            put(format!("{p}.bias"), vec![h], rng);
        }
        for i in 0..c.layers {
            let p = format!("encoder.layer.{i}");
            for (n, o, inp) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", c.intermediate, h),
                ("output.dense", h, c.intermediate),
            ] {
                put(format!("{p}.{n}.weight"), vec![o, inp], rng);
                put(format!("{p}.{n}.bias"), vec![o], rng);
            }
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                put(format!("{p}.{n}.weight"), vec![h], rng);
                put(format!("{p}.{n}.bias"), vec![h], rng);
            }
        }
        t
    }

    /// The forward pass in f64 with plain matrices, written independently of the f32 code.
    fn naive_embedding(t: &Tensors, c: Config, ids: &[u32]) -> Vec<f64> {
        let g = |n: &str| t[n].1.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let (l, h) = (ids.len(), c.hidden);
        let ln = |x: &mut Vec<Vec<f64>>, p: &str| {
            let (w, b) = (g(&format!("{p}.weight")), g(&format!("{p}.bias")));
            for row in x.iter_mut() {
                let m = row.iter().sum::<f64>() / h as f64;
                let v = row.iter().map(|a| (a - m).powi(2)).sum::<f64>() / h as f64;
                for j in 0..h {
                    row[j] = (row[j] - m) / (v + c.eps as f64).sqrt() * w[j] + b[j];
                }
            }
        };
        let lin = |x: &Vec<Vec<f64>>, p: &str| -> Vec<Vec<f64>> {
            let (w, b) = (g(&format!("{p}.weight")), g(&format!("{p}.bias")));
            let (o, i) = (b.len(), x[0].len());
            x.iter()
                .map(|r| (0..o).map(|k| b[k] + (0..i).map(|j| r[j] * w[k * i + j]).sum::<f64>()).collect())
                .collect()
        };
        let (we, pe, te) = (
            g("embeddings.word_embeddings.weight"),
            g("embeddings.position_embeddings.weight"),
            g("embeddings.token_type_embeddings.weight"),
        );
        let mut x: Vec<Vec<f64>> =
            (0..l).map(|p| (0..h).map(|j| we[ids[p] as usize * h + j] + pe[p * h + j] + te[j]).collect()).collect();
        ln(&mut x, "embeddings.LayerNorm");
        let d = h / c.heads;
        for i in 0..c.layers {
            let p = format!("encoder.layer.{i}");
            let q = lin(&x, &format!("{p}.attention.self.query"));
            let k = lin(&x, &format!("{p}.attention.self.key"));
            let v = lin(&x, &format!("{p}.attention.self.value"));
            let mut ctx = vec![vec![0f64; h]; l];
            for hd in 0..c.heads {
                for a in 0..l {
                    let s: Vec<f64> = (0..l)
                        .map(|b| (0..d).map(|t| q[a][hd * d + t] * k[b][hd * d + t]).sum::<f64>() / (d as f64).sqrt())
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                    for b in 0..l {
                        for t in 0..d {
                            ctx[a][hd * d + t] += (s[b] - m).exp() / z * v[b][hd * d + t];
                        }
                    }
                }
            }
            let a = lin(&ctx, &format!("{p}.attention.output.dense"));
            for r in 0..l {
                for j in 0..h {
                    x[r][j] += a[r][j];
                }
            }
            ln(&mut x, &format!("{p}.attention.output.LayerNorm"));
            let mut f = lin(&x, &format!("{p}.intermediate.dense"));
            f.iter_mut().flatten().for_each(|v| *v = 0.5 * *v * (1.0 + libm::erf(*v / 2f64.sqrt())));
            let o = lin(&f, &format!("{p}.output.dense"));
            for r in 0..l {
                for j in 0..h {
                    x[r][j] += o[r][j];
                }
            }
            ln(&mut x, &format!("{p}.output.LayerNorm"));
        }
        let mean: Vec<f64> = (0..h).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / l as f64).collect();
        let n = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        mean.iter().map(|v| v / n).collect()
    }

    #[test]
    fn the_forward_pass_equals_a_naive_f64_one() {
        let mut rng = Rng::new(9);
        let t = tensors(&mut rng, TINY);
        let bert = Bert::from_tensors(TINY, &t).unwrap();
        for ids in [vec![1u32], vec![2, 7, 3], vec![10, 0, 4, 4, 9, 1]] {
            let got = bert.embed(&ids, &vec![0; ids.len()]).unwrap();
            let want = naive_embedding(&t, TINY, &ids);
            let diff = got.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, f64::max);
            assert!(diff < 1e-5, "{ids:?}: {diff:e}");
            assert!((got.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut rng = Rng::new(3);
        let mut t = tensors(&mut rng, TINY);
        let bert = Bert::from_tensors(TINY, &t).unwrap();
        assert!(bert.embed(&[], &[]).is_err());
        assert!(bert.embed(&[11], &[0]).is_err()); // outside the vocabulary
        assert!(bert.embed(&[1, 2], &[0]).is_err());
        assert!(bert.embed(&[1; 7], &[0; 7]).is_err()); // longer than the positions
        t.get_mut("encoder.layer.1.output.dense.weight").unwrap().0 = vec![12, 8];
        assert!(Bert::from_tensors(TINY, &t).is_err());
        t.remove("embeddings.LayerNorm.bias");
        assert!(Bert::from_tensors(TINY, &t).is_err());
        assert!(Config::from_json("{}").is_err());
        assert!(Config::from_json("not json").is_err());
    }

    #[test]
    fn exp_and_erf_approximations_within_their_bounds() {
        // e^x on [-87, 0]: within 2 ulp (relative 2.4e-7) of the exact value.
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_approx(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 2.4e-7, "exp: relative error {worst:e}");
        assert!(exp_approx(-1000.0) > 0.0 && exp_approx(-1000.0) < 2e-38);
        assert_eq!(exp_approx(0.0), 1.0);
        // erf on [-10, 10]: within 6e-7 of the exact value (5.1e-7 measured); odd.
        let mut worst = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 5e-5;
            worst = worst.max((erf_approx(x) as f64 - libm::erf(x as f64)).abs());
            assert_eq!(erf_approx(-x), -erf_approx(x));
        }
        assert!(worst < 6e-7, "erf: absolute error {worst:e}");
        assert!(erf_approx(0.0).abs() < 2e-7);
        assert_eq!(erf_approx(30.0), 1.0);
    }

    #[test]
    fn gelu_and_cosine_at_known_points() {
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_3).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
