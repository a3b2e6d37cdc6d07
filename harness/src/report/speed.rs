//! The speed grid: every operation x implementation x size x thread count, each figure next to
//! the machine's read bandwidth at the same working set, the reference's time and ONNX
//! Runtime's.

use crate::bench::timing::Reps;
use crate::bench::{Bench, Path, Record, Setup};
use crate::machine::Limits;
use crate::ort::Ort;
use quantproof_reference::profile::Profile;

/// One measured figure with its comparisons.
#[derive(Debug, Clone)]
pub struct SpeedRow {
    pub record: Record,
    /// Read bandwidth (GB/s) over a buffer the size of this run's compulsory traffic, on the
    /// same number of threads.
    pub ceiling_gbs: Option<f64>,
    /// `gbytes_per_s / ceiling_gbs`.
    pub fraction: Option<f64>,
    /// Reference time / this time (same op and size).
    pub speedup: Option<f64>,
    /// This throughput / ONNX Runtime's (same op, size and threads); above 1 is faster.
    pub vs_ort: Option<f64>,
}

/// Everything the grid produced.
#[derive(Debug, Clone, Default)]
pub struct SpeedResults {
    pub rows: Vec<SpeedRow>,
    /// Measurements that failed (a wrong output, an error), with why.
    pub failures: Vec<String>,
    /// ONNX Runtime runs that failed, with why.
    pub ort_failures: Vec<String>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Grid {
    pub sizes: Vec<usize>,
    /// The calibrators' size (replacing the grid's sizes below it), when set.
    pub calib_size: Option<usize>,
    pub threads: Vec<usize>,
    pub reps: Reps,
}

/// The profiles an operation is measured under: quantize under both ways of applying the scale
/// (ONNX Runtime divides, PyTorch multiplies by the reciprocal: they run at different speeds),
/// everything else under its default.
fn profiles_of(op: &str) -> Vec<Option<Profile>> {
    match op {
        "quantize" => vec![Some(Profile::ONNXRUNTIME), Some(Profile::TORCH)],
        "qadd" | "qmul" | "requantize" => vec![Some(Profile::ONNXRUNTIME), Some(Profile::TORCH), Some(Profile::TFLITE)],
        _ => vec![None],
    }
}

/// The sizes an operation is measured at: the calibrators at `calib_size` (the size their
/// targets are stated for) instead of the smallest grid size.
fn sizes_of(op: &str, grid: &Grid) -> Vec<usize> {
    match (op.starts_with("calibrate-"), grid.calib_size) {
        (true, Some(c)) => {
            let mut v: Vec<usize> = grid.sizes.iter().copied().filter(|&s| s > c).collect();
            v.insert(0, c);
            v
        }
        _ => grid.sizes.clone(),
    }
}

/// `Some(description)` when ONNX Runtime's calibration result (its record's `detail.result`)
/// equals ours on the same data (`ours`: the workload's `detail.result`), an explanation when not.
fn compare_calibration(ort: &serde_json::Value, ours: &serde_json::Value) -> String {
    let keys: &[&str] = if ort.get("avg").is_some() { &["avg", "std"] } else { &["low", "high"] };
    let mut parts = Vec::new();
    for &k in keys {
        match (ort.get(k).and_then(|v| v.as_f64()), ours.get(k).and_then(|v| v.as_f64())) {
            (Some(a), Some(b)) if a as f32 == b as f32 => parts.push(format!("{k} {b}")),
            (a, b) => return format!("differs from the reference: {k} {a:?} (ONNX Runtime) vs {b:?}"),
        }
    }
    format!("same result as the reference ({})", parts.join(", "))
}

/// Runs the grid. `log` gets one line per workload.
pub fn run(grid: &Grid, limits: &mut Limits, ort: Option<&Ort>, log: &mut dyn FnMut(&str)) -> SpeedResults {
    let mut res = SpeedResults::default();
    for spec in crate::bench::table() {
        for profile in profiles_of(spec.name) {
            for size in sizes_of(spec.name, grid) {
                let label = profile.map_or(String::new(), |p| format!(" ({})", p.name));
                log(&format!("speed: {}{label} x {}", spec.name, crate::bench::format_size(size)));
                let setup = Setup::resolve(spec, size, profile, None, None);
                let Some(mut bench) = super::kept(setup.and_then(|s| Bench::new(spec, s)), &mut res.failures) else {
                    continue;
                };
                let mut records = Vec::new();
                let mut impls = vec![Path::Reference];
                for &t in &grid.threads {
                    impls.extend(Path::optimized(t));
                }
                for imp in &impls {
                    match bench.measure(imp, grid.reps) {
                        Ok(r) => records.push(r),
                        Err(f) => res.failures.push(f.to_string()),
                    }
                }
                if let Some(ort) = ort {
                    let reps = grid.reps.fixed();
                    if let Some(case) = bench.workload.ort_case() {
                        for &t in &grid.threads {
                            match ort.bench_case(&case, t, reps) {
                                Ok(r) => records.push(r),
                                Err(e) => res.ort_failures.push(format!("{} {} threads {t}: {e}", spec.name, size)),
                            }
                        }
                    } else if let Some((c, x)) = bench.workload.ort_collector() {
                        // ONNX Runtime's collectors are single-threaded Python/numpy.
                        match ort.calibrator(&c, x, reps.unwrap_or(3)) {
                            Ok(mut r) => {
                                let ours = bench.workload.detail();
                                if let (Some(o), Some(q)) =
                                    (r.detail.as_ref().and_then(|d| d.get("result")), ours.get("result"))
                                {
                                    r.verified = compare_calibration(o, q);
                                }
                                records.push(r)
                            }
                            Err(e) => res.ort_failures.push(format!("{} {}: {e}", spec.name, size)),
                        }
                    }
                }
                drop(bench);
                let ref_s = records.iter().find(|r| r.isa == "reference").map(|r| r.seconds_median);
                for r in &records {
                    let ceiling =
                        limits.read_bandwidth_at((r.elements as f64 * r.bytes_per_element) as usize, r.threads).ok();
                    let ort_rate = records
                        .iter()
                        .filter(|o| o.isa == "onnxruntime")
                        .find(|o| o.threads == r.threads)
                        .or_else(|| records.iter().find(|o| o.isa == "onnxruntime" && o.op.starts_with("calibrate-")))
                        .map(|o| o.gelem_per_s);
                    res.rows.push(SpeedRow {
                        ceiling_gbs: ceiling,
                        fraction: ceiling.map(|c| r.gbytes_per_s / c),
                        speedup: ref_s.map(|s| s / r.seconds_median),
                        vs_ort: ort_rate.filter(|&o| o > 0.0 && r.isa != "onnxruntime").map(|o| r.gelem_per_s / o),
                        record: r.clone(),
                    });
                }
            }
        }
    }
    res
}
