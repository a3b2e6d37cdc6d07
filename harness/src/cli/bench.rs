//! `quantproof bench OP`: measured speed, one JSON line per measurement.
//!
//! ```text
//! quantproof bench quantize --size 16M --threads 2 --json            every available ISA
//! quantproof bench quantize --size 16M --isa avx512 --reps 20
//! quantproof bench reference-quantize --size 1M                      the scalar reference
//! quantproof bench quantize --size 16M --threads 2 --with-ort --json also ONNX Runtime
//! quantproof bench calibrate-entropy --size 2M --bins 2048 --threads 2 --with-ort --json
//!                                                                    ours on every ISA, then ONNX Runtime's collector
//! quantproof bench calibrate-entropy --size 2M --isa onnxruntime     ONNX Runtime's collector only
//! quantproof bench limits --json                                     this machine's limits
//! quantproof bench list                                              the operations
//! ```

use crate::bench::data::normal_f32;
use crate::bench::timing::Reps;
use crate::bench::{self, format_size, Bench, Dtype, Gran, Path, Record, Setup};
use crate::cli::domain;
use crate::machine::{self, Effort, Limits};
use crate::ort;
use quantproof_reference::profile::Profile;
use std::io::Write;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// quantize, dequantize, fake-quantize, dynamic-quantize, min-max, abs-max, histogram,
    /// calibrate-entropy, calibrate-percentile, calibrate-distribution, reference-OP (the scalar
    /// reference of OP), limits (this machine's ceilings), list
    pub op: String,
    /// Elements per run: a number or 64K, 16M, ... (binary multiples)
    #[arg(long, default_value = "1M")]
    pub size: String,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Histogram bins of histogram and calibrate-* (default 2048)
    #[arg(long)]
    pub bins: Option<usize>,
    /// One implementation: scalar, avx2, avx512, neon, reference or onnxruntime (default: every
    /// available ISA)
    #[arg(long)]
    pub isa: Option<String>,
    /// torch, onnxruntime or quantproof (default: the operation's own, see `bench list`)
    #[arg(long)]
    pub profile: Option<String>,
    /// i8 or u8
    #[arg(long)]
    pub dtype: Option<String>,
    /// per-tensor or per-axis
    #[arg(long)]
    pub granularity: Option<String>,
    /// Timed repetitions (default: about a quarter second's worth, 5 to 2000)
    #[arg(long)]
    pub reps: Option<usize>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Also measure ONNX Runtime (sets up a Python venv on first use)
    #[arg(long)]
    pub with_ort: bool,
    /// `bench limits` only: shorter measurements
    #[arg(long)]
    pub quick: bool,
    /// `qgemm` only: rows M (default --size / K; with any of --m/--n/--k the activation elements
    /// M K replace --size)
    #[arg(long)]
    pub m: Option<usize>,
    /// `qgemm` only: columns N, the output channels (default 384)
    #[arg(long)]
    pub n: Option<usize>,
    /// `qgemm` only: depth K (default 384)
    #[arg(long)]
    pub k: Option<usize>,
    /// `qconv2d` only: N,C,H,W,OC,KH,KW (NCHW, 'same' padding, stride 1)
    #[arg(long)]
    pub shape: Option<String>,
}

/// The explicit dimensions of `--m/--n/--k` (qgemm) or `--shape` (qconv2d), checked.
fn dims_of(args: &Args) -> Result<Option<Vec<usize>>, String> {
    let gemm = [args.m, args.n, args.k];
    if gemm.iter().any(Option::is_some) {
        if args.op != "qgemm" {
            return Err(format!("--m/--n/--k belong to qgemm, not {}", args.op));
        }
        let k = args.k.unwrap_or(384);
        let size = bench::parse_size(&args.size)?;
        let d = vec![args.m.unwrap_or((size / k.max(1)).max(1)), args.n.unwrap_or(384), k];
        for (name, &v) in ["--m", "--n", "--k"].iter().zip(&d) {
            domain::in_range(name, v, 1, 1 << 16)?;
        }
        let bytes = (d[0] * d[2] + d[2] * d[1]) as u128 * 3 + (d[0] * d[1]) as u128 * 12;
        domain::fits_in_memory("--m x --n x --k", bytes)?;
        return Ok(Some(d));
    }
    let Some(shape) = &args.shape else { return Ok(None) };
    if args.op != "qconv2d" {
        return Err(format!("--shape belongs to qconv2d, not {}", args.op));
    }
    let d: Vec<usize> = shape
        .split(',')
        .map(|v| v.trim().parse::<usize>().map_err(|_| format!("--shape {shape:?}: N,C,H,W,OC,KH,KW as numbers")))
        .collect::<Result<_, _>>()?;
    if d.len() != 7 || d.contains(&0) {
        return Err(format!("--shape {shape:?}: seven dimensions N,C,H,W,OC,KH,KW, each at least 1"));
    }
    for (name, &v) in ["N", "C", "H", "W", "OC", "KH", "KW"].iter().zip(&d) {
        domain::in_range(&format!("--shape {name}"), v, 1, 1 << 14)?;
    }
    let (n, c, h, w, oc, kh, kw) =
        (d[0] as u128, d[1] as u128, d[2] as u128, d[3] as u128, d[4] as u128, d[5] as u128, d[6] as u128);
    // Input, im2col, weights, two i32 outputs.
    let bytes = n * c * h * w * (1 + kh * kw) + oc * c * kh * kw * 2 + n * oc * h * w * 12;
    domain::fits_in_memory("--shape", bytes)?;
    Ok(Some(d))
}

fn print_record(out: &mut dyn Write, r: &Record, json: bool) {
    // A closed stdout (`| head`) is not an error worth reporting.
    let _ = if json {
        writeln!(out, "{}", r.to_json())
    } else {
        writeln!(
            out,
            "{:<18} {:<12} threads {:<2} {:>8} elements  median {:>10.1} us  {:>8.3} Gelem/s  {:>7.2} GB/s{}  ({} reps; {})",
            r.op,
            r.isa,
            r.threads,
            format_size(r.elements),
            r.seconds_median * 1e6,
            r.gelem_per_s,
            r.gbytes_per_s,
            r.gops.map(|g| format!("  {g:>7.1} GOPS")).unwrap_or_default(),
            r.reps,
            r.verified
        )
    };
}

/// Prints a loud notice that ONNX Runtime was not measured (stderr, and a JSON line when
/// `json`).
fn ort_unavailable(out: &mut dyn Write, op: &str, why: &str, json: bool) {
    eprintln!("!!! ONNX Runtime NOT MEASURED: {why}");
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({"op": op, "isa": "onnxruntime", "error": why}));
    }
}

fn limits(out: &mut dyn Write, args: &Args) -> i32 {
    let effort = if args.quick { Effort::QUICK } else { Effort::FULL };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut l = Limits::new(effort);
    let mut list = vec![1];
    if threads > 1 {
        list.push(threads);
    }
    let errors = l.measure_standard(&list);
    for x in &l.measured {
        let _ = if args.json {
            writeln!(out, "{}", x.to_json())
        } else {
            writeln!(
                out,
                "{:<15} {:<36} threads {:<2} {:>8} {:>9.1} {:<8}{}",
                x.limit,
                x.kernel,
                x.threads,
                x.bytes.map(|b| format_size(b) + "B").unwrap_or_default(),
                x.value,
                x.unit,
                x.quiet_reference.map(|q| format!("  (quiet machine earlier: {q})")).unwrap_or_default()
            )
        };
    }
    if let Some(load) = machine::load_average() {
        eprintln!("load average during measurement: {:.2} on {threads} CPUs", load[0]);
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        0
    } else {
        1
    }
}

fn list(out: &mut dyn Write) -> i32 {
    let mut text = format!("{:<18} {:<12} {:<10} {:<10} what\n", "op", "profile", "dtypes", "per-axis");
    for s in bench::table() {
        let d: Vec<&str> = s.dtypes.iter().map(|d| d.name()).collect();
        text += &format!(
            "{:<18} {:<12} {:<10} {:<10} {}\n",
            s.name,
            s.default_profile.name,
            d.join(","),
            s.per_axis,
            s.summary
        );
    }
    text += "reference-OP: the scalar reference of OP. limits: this machine's ceilings.\n";
    text += "histogram and calibrate-*: --bins B (default 2048); --with-ort or --isa onnxruntime times ONNX Runtime's HistogramCollector on the same data.\n";
    let _ = out.write_all(text.as_bytes());
    0
}

/// ONNX Runtime's calibrators, for the ops quantproof's table does not have yet.
fn ort_calibrator(out: &mut dyn Write, args: &Args, method: &str, size: usize) -> i32 {
    let o = match ort::setup(&mut |m| eprintln!("{m}")) {
        Ok(o) => o,
        Err(why) => {
            ort_unavailable(out, &args.op, &why, args.json);
            return 1;
        }
    };
    let Some(c) = ort::Collector::by_method(method) else {
        eprintln!("error: unknown calibrator {method:?} (entropy, percentile, distribution)");
        return 2;
    };
    let x = normal_f32(size, 0xCA11B);
    match o.calibrator(&c, &x, args.reps.unwrap_or(3)) {
        Ok(r) => {
            print_record(out, &r, args.json);
            if !args.json {
                if let Some(res) = r.detail.as_ref().and_then(|d| d.get("result")) {
                    let _ = writeln!(out, "  result: {res}");
                }
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// ONNX Runtime on the same workload: its operator, or its collector for a calibrator.
fn measure_ort(out: &mut dyn Write, args: &Args, bench: &Bench) -> i32 {
    let name = bench.spec.name;
    let case = bench.workload.ort_case();
    let collector = bench.workload.ort_collector();
    if case.is_none() && collector.is_none() {
        let why = if bench.setup.granularity == Gran::PerAxis {
            "ONNX Runtime is compared per-tensor only (this run is per-axis)"
        } else {
            "ONNX Runtime has no counterpart of this operation"
        };
        ort_unavailable(out, name, why, args.json);
        return 0;
    }
    let o = match ort::setup(&mut |m| eprintln!("{m}")) {
        Ok(o) => o,
        Err(why) => {
            ort_unavailable(out, name, &why, args.json);
            return 0;
        }
    };
    let result = match (case, collector) {
        (Some(case), _) => o.bench_case(&case, args.threads, args.reps),
        (None, Some((c, x))) => o.calibrator(&c, x, args.reps.unwrap_or(3)),
        (None, None) => return 0,
    };
    match result {
        Ok(mut r) => {
            r.profile = "onnxruntime".into();
            print_record(out, &r, args.json);
            0
        }
        Err(e) => {
            ort_unavailable(out, name, &e, args.json);
            1
        }
    }
}

/// Bytes a workload holds per element at most: the f32 input, the reference's output, the
/// implementation's output and a mask or second output, each up to 4 bytes, plus the planner's
/// per-element parameters (fake-quantize per-axis is the largest).
const WORKLOAD_BYTES_PER_ELEMENT: u128 = 32;

/// Checks every argument against its domain ([`domain`]) before anything is allocated; returns
/// the size in elements.
fn check_args(args: &Args) -> Result<usize, String> {
    domain::env_isa()?;
    let size = bench::parse_size(&args.size)?;
    domain::in_range("--size", size, 1, domain::MAX_ELEMENTS)?;
    domain::in_range("--threads", args.threads, 1, domain::MAX_THREADS)?;
    if let Some(r) = args.reps {
        domain::in_range("--reps", r, 1, domain::MAX_REPS)?;
    }
    let bins = args.bins.unwrap_or(2048);
    if args.bins.is_some() {
        domain::in_range("--bins", bins, 1, domain::MAX_BINS)?;
    }
    // Histograms: one u64 count per bin per thread, and four u32 sub-histograms per thread.
    let per_thread_bins = bins as u128 * (8 + 16);
    let bytes = size as u128 * WORKLOAD_BYTES_PER_ELEMENT + per_thread_bins * args.threads as u128;
    domain::fits_in_memory(&format!("--size {}", args.size), bytes)?;
    Ok(size)
}

/// `quantproof bench`, printing to stdout.
pub fn run(args: Args) -> i32 {
    run_to(args, &mut std::io::stdout().lock())
}

/// `quantproof bench`, printing measurements to `out` (notes and errors go to stderr).
pub fn run_to(args: Args, out: &mut dyn Write) -> i32 {
    match args.op.as_str() {
        "limits" => return limits(out, &args),
        "list" => return list(out),
        _ => {}
    }
    let size = match check_args(&args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let want_ort_only =
        args.isa.as_deref().is_some_and(|i| i.eq_ignore_ascii_case("onnxruntime") || i.eq_ignore_ascii_case("ort"));
    let Some((spec, reference_only)) = bench::lookup(&args.op) else {
        if let Some(method) = args.op.strip_prefix("calibrate-") {
            if want_ort_only || args.with_ort {
                eprintln!(
                    "note: quantproof's {} is not in the benchmark table yet; measuring ONNX Runtime's only",
                    args.op
                );
                return ort_calibrator(out, &args, method, size);
            }
        }
        eprintln!("error: unknown operation {:?}; `quantproof bench list` shows them", args.op);
        return 2;
    };
    let profile = match args.profile.as_deref().map(Profile::by_name).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let dtype = match args.dtype.as_deref().map(|d| Dtype::parse(d).ok_or(d)).transpose() {
        Ok(d) => d,
        Err(d) => {
            eprintln!("error: unknown dtype {d:?} (i8, u8)");
            return 2;
        }
    };
    let gran = match args.granularity.as_deref().map(|g| Gran::parse(g).ok_or(g)).transpose() {
        Ok(g) => g,
        Err(g) => {
            eprintln!("error: unknown granularity {g:?} (per-tensor, per-axis)");
            return 2;
        }
    };
    let dims = match dims_of(&args) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // Explicit dimensions fix the element count: qgemm's activations (M K), qconv2d's input
    // (N C H W).
    let size = match dims.as_deref() {
        Some(&[m, _, k]) => m * k,
        Some(d) if d.len() == 7 => d[..4].iter().product(),
        _ => size,
    };
    let setup = match Setup::resolve(spec, size, profile, dtype, gran) {
        Ok(s) => match args.bins {
            Some(b) => s.with_bins(b),
            None => s,
        }
        .with_dims(dims),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let impls: Vec<Path> = if reference_only {
        vec![Path::Reference]
    } else if want_ort_only {
        Vec::new()
    } else if let Some(name) = &args.isa {
        match Path::parse(name, args.threads) {
            Ok(i) => vec![i],
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        Path::optimized(args.threads)
    };
    let mut bench = match Bench::new(spec, setup) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let reps = args.reps.map(Reps::Fixed).unwrap_or(Reps::DEFAULT);
    let mut code = 0;
    for imp in &impls {
        match bench.measure(imp, reps) {
            Ok(r) => print_record(out, &r, args.json),
            Err(f) => {
                eprintln!("error: {f}");
                code = 1;
            }
        }
    }
    if (args.with_ort || want_ort_only) && !reference_only {
        code = code.max(measure_ort(out, &args, &bench));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(op: &str) -> Args {
        Args {
            op: op.into(),
            size: "4096".into(),
            threads: 1,
            bins: None,
            isa: None,
            profile: None,
            dtype: None,
            granularity: None,
            reps: Some(3),
            json: true,
            with_ort: false,
            quick: true,
            m: None,
            n: None,
            k: None,
            shape: None,
        }
    }

    fn output(a: Args) -> (i32, String) {
        let mut buf = Vec::new();
        let code = run_to(a, &mut buf);
        (code, String::from_utf8(buf).unwrap())
    }

    /// The smoke test of the brief: `bench quantize --size 4096 --threads 1 --json --reps 3`
    /// prints one parseable record per available ISA, each checked against the reference.
    #[test]
    fn smoke_quantize() {
        let (code, out) = output(args("quantize"));
        assert_eq!(code, 0);
        let recs: Vec<Record> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let isas: Vec<String> = quantproof_optimized::isa::available().iter().map(|i| i.name().to_string()).collect();
        assert_eq!(recs.iter().map(|r| r.isa.clone()).collect::<Vec<_>>(), isas);
        for r in &recs {
            assert_eq!(
                (r.op.as_str(), r.threads, r.elements, r.reps, r.dtype.as_str()),
                ("quantize", 1, 4096, 3, "i8")
            );
            assert_eq!(r.verified, "bit-exact with the reference");
            assert!(r.seconds_min <= r.seconds_median && r.seconds_median <= r.seconds_max);
        }
        let (code, out) = output(args("reference-quantize"));
        assert_eq!(code, 0);
        let r: Record = serde_json::from_str(out.trim()).unwrap();
        assert_eq!((r.op.as_str(), r.isa.as_str()), ("quantize", "reference"));
        let (code, out) =
            output(Args { dtype: Some("u8".into()), granularity: Some("per-axis".into()), ..args("quantize") });
        assert_eq!(code, 0);
        assert!(out.lines().all(|l| l.contains(r#""granularity":"per-axis""#) && l.contains(r#""dtype":"u8""#)));
        let (code, out) = output(Args { json: false, isa: Some("scalar".into()), ..args("min-max") });
        assert_eq!(code, 0);
        assert!(out.starts_with("min-max") && out.contains("Gelem/s"), "{out}");
    }

    #[test]
    fn bad_arguments_fail_cleanly() {
        assert_eq!(run(args("nope")), 2);
        assert_eq!(run(Args { size: "12Q".into(), ..args("quantize") }), 2);
        assert_eq!(run(Args { isa: Some("mmx".into()), ..args("quantize") }), 2);
        assert_eq!(run(Args { profile: Some("tflite?".into()), ..args("quantize") }), 2);
        assert_eq!(run(Args { dtype: Some("i8".into()), ..args("dynamic-quantize") }), 2);
        for bad in [
            Args { threads: 0, ..args("quantize") },
            Args { threads: 1 << 20, ..args("quantize") },
            Args { reps: Some(0), ..args("quantize") },
            Args { bins: Some(0), ..args("histogram") },
            Args { bins: Some(1 << 40), ..args("histogram") },
            Args { size: "0".into(), ..args("quantize") },
            Args { size: "100G".into(), ..args("quantize") },
            Args { size: "1000000G".into(), ..args("quantize") },
        ] {
            let what = format!("{bad:?}");
            assert!(check_args(&bad).is_err(), "{what}");
            assert_eq!(run(bad), 2, "{what}");
        }
        let (code, out) = output(args("list"));
        assert_eq!(code, 0);
        for spec in bench::table() {
            assert!(out.contains(spec.name));
        }
    }
}
