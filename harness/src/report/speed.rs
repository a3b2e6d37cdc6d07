//! The speed grid: every operation x implementation x size x thread count, each figure next to
//! the machine's read bandwidth at the same working set, the reference's time and ONNX
//! Runtime's.

use crate::bench::timing::Reps;
use crate::bench::{Bench, Impl, Record, Setup, TABLE};
use crate::machine::Limits;
use crate::ort::Ort;

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
    pub threads: Vec<usize>,
    pub reps: Reps,
}

/// Runs the grid. `log` gets one line per workload.
pub fn run(grid: &Grid, limits: &mut Limits, ort: Option<&Ort>, log: &mut dyn FnMut(&str)) -> SpeedResults {
    let mut res = SpeedResults::default();
    for spec in TABLE.iter() {
        for &size in &grid.sizes {
            log(&format!("speed: {} x {}", spec.name, crate::bench::format_size(size)));
            let setup = match Setup::resolve(spec, size, None, None, None) {
                Ok(s) => s,
                Err(e) => {
                    res.failures.push(e);
                    continue;
                }
            };
            let mut bench = match Bench::new(spec, setup) {
                Ok(b) => b,
                Err(e) => {
                    res.failures.push(e);
                    continue;
                }
            };
            let mut records = Vec::new();
            let mut impls = vec![Impl::Reference];
            for &t in &grid.threads {
                impls.extend(Impl::all_isas(t));
            }
            for imp in &impls {
                match bench.measure(imp, grid.reps) {
                    Ok(r) => records.push(r),
                    Err(f) => res.failures.push(f.to_string()),
                }
            }
            if let Some(ort) = ort {
                let reps = match grid.reps {
                    Reps::Fixed(n) => Some(n),
                    _ => None,
                };
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
                        Ok(r) => records.push(r),
                        Err(e) => res.ort_failures.push(format!("{} {}: {e}", spec.name, size)),
                    }
                }
            }
            drop(bench);
            let ref_s = records.iter().find(|r| r.isa == "reference").map(|r| r.seconds_median);
            for r in &records {
                let ceiling = limits.read_bandwidth_at((r.elements as f64 * r.bytes_per_element) as usize, r.threads).ok();
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
    res
}
