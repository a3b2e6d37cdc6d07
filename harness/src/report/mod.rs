//! # The accuracy-speed report
//!
//! `quantproof report` measures and computes everything it shows, in one run, and writes
//! `report.md` with CSV files (full-precision numbers) and SVG charts next to it:
//!
//! 1. **machine**: CPU, features, ISAs, and its limits measured by [`crate::machine`];
//! 2. **correctness**: the golden-vector summary ([`correctness`]) and the checks made in this
//!    run (every timed kernel's output equals the reference's);
//! 3. **speed** ([`speed`]): each operation x implementation x size x thread count, against
//!    the read bandwidth at the same working set, the reference and ONNX Runtime; ONNX
//!    Runtime's calibrator timings;
//! 4. **accuracy** ([`accuracy`]): error analysis of real-shaped tensors under several schemes,
//!    round error against clip error, and the seed-004 pictures of scale and zero point.
//!
//! Nothing is copied from elsewhere: the only numbers not computed in the run are the
//! quiet-machine reference values of [`crate::machine::QUIET_REFERENCE`], labelled as such.
//! The load average before and after the run is printed, so a reader can tell a quiet
//! machine's figures from a busy one's.

pub mod accuracy;
pub mod correctness;
pub mod gemm;
pub mod minilm;
pub mod plots;
pub mod speed;
pub mod table;

use crate::bench::data::normal_f32;
use crate::bench::timing::Reps;
use crate::bench::{format_size, Record};
use crate::machine::{self, Effort, Limits, MachineInfo};
use crate::ort::{self, Ort};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use table::{Cell, Table};

/// What `quantproof report` does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output directory.
    pub out: PathBuf,
    /// Smaller sizes and shorter timings, for smoke runs.
    pub quick: bool,
    /// Measure ONNX Runtime (sets up the Python venv when needed).
    pub ort: bool,
    pub threads: Vec<usize>,
    /// The MiniLM cache directory when the model is there (`quantproof minilm fetch`): the
    /// report then has its real-model section.
    pub minilm: Option<PathBuf>,
}

impl Options {
    pub fn sizes(&self) -> Vec<usize> {
        if self.quick {
            vec![64 << 10, 1 << 20]
        } else {
            vec![64 << 10, 16 << 20]
        }
    }

    fn reps(&self) -> Reps {
        if self.quick {
            Reps::Budget { budget_s: 0.05, min: 3, max: 200 }
        } else {
            Reps::DEFAULT
        }
    }

    fn effort(&self) -> Effort {
        if self.quick {
            Effort::QUICK
        } else {
            Effort::FULL
        }
    }

    /// Elements of the calibrator benchmark (issue 3's 2M normal values; 256K when quick).
    fn calib_size(&self) -> usize {
        if self.quick {
            256 << 10
        } else {
            2 << 20
        }
    }
}

/// Draws one chart of a report into a file.
type ChartFn = Box<dyn Fn(&Report, &Path) -> Result<(), String>>;

/// Everything a report shows.
pub struct Report {
    pub options: Options,
    pub machine: MachineInfo,
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
    pub seconds: f64,
    pub limits: Limits,
    pub limit_errors: Vec<String>,
    pub ort: Result<Ort, String>,
    pub speed: speed::SpeedResults,
    /// The square GEMM sweep against the int8 peaks.
    pub gemm: gemm::GemmResults,
    pub calibrators: Vec<Result<Record, String>>,
    pub tensors: Vec<accuracy::Tensor>,
    pub schemes: Vec<accuracy::SchemeRow>,
    pub sweeps: Vec<accuracy::Sweep>,
    pub panels: Vec<accuracy::Panel>,
    pub panel_data: Vec<f32>,
    pub golden: correctness::Golden,
    /// Charts that could not be drawn, with why.
    pub chart_errors: Vec<String>,
    /// The real-model section, when the model is in the cache.
    pub minilm: Option<minilm::Section>,
}

/// Runs everything and writes the report; returns the path of `report.md`.
pub fn run(options: &Options, log: &mut dyn FnMut(&str)) -> Result<PathBuf, String> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&options.out).map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    let load_before = machine::load_average();
    let info = machine::describe();

    log("machine limits: read bandwidth, copy bandwidth, int8 and f32 peaks");
    let mut limits = Limits::new(options.effort());
    let limit_errors = limits.measure_standard(&options.threads);

    let ort = if options.ort {
        log("ONNX Runtime: finding or creating the Python venv");
        ort::setup(&mut |m| log(m))
    } else {
        Err("not requested (--no-ort)".to_string())
    };
    if let Err(why) = &ort {
        log(&format!("!!! ONNX Runtime will NOT be measured: {why}"));
    }

    let grid = speed::Grid {
        sizes: options.sizes(),
        calib_size: Some(options.calib_size()),
        threads: options.threads.clone(),
        reps: options.reps(),
    };
    let speed = speed::run(&grid, &mut limits, ort.as_ref().ok(), log);
    let gemm = gemm::run(options.quick, options.reps(), ort.as_ref().ok(), log);

    let calibrators = match &ort {
        Ok(o) => {
            log("ONNX Runtime calibrators (entropy, percentile, distribution)");
            ort::calibrator_suite(o, &normal_f32(options.calib_size(), 0xCA11B), if options.quick { 1 } else { 3 })
        }
        Err(_) => Vec::new(),
    };

    log("accuracy: schemes, clip sweeps, scale and zero-point panels");
    let tensors = accuracy::tensors();
    let schemes = accuracy::schemes(&tensors)?;
    let sweeps = vec![accuracy::clip_sweep(&tensors[0], 4, 40)?, accuracy::clip_sweep(&tensors[0], 8, 40)?];
    let panel_data = accuracy::two_bumps(if options.quick { 20_000 } else { 100_000 });
    let panels = accuracy::scale_zero_point_panels(&panel_data)?;
    let minilm = match &options.minilm {
        Some(dir) => Some(minilm::run(dir, options.quick, ort.is_ok(), log)),
        None => {
            log("MiniLM is not in the cache (`quantproof minilm fetch`): the real-model section is skipped");
            None
        }
    };

    let mut report = Report {
        options: options.clone(),
        machine: info,
        load_before,
        load_after: machine::load_average(),
        seconds: 0.0,
        limits,
        limit_errors,
        ort,
        speed,
        gemm,
        calibrators,
        tensors,
        schemes,
        sweeps,
        panels,
        panel_data,
        golden: correctness::golden_vectors(),
        chart_errors: Vec::new(),
        minilm,
    };
    report.seconds = t0.elapsed().as_secs_f64();
    log("writing report.md, CSV and SVG files");
    report.write()
}

fn date_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

fn git_describe() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out =
        std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        // The report's own files (written as the run goes) are not a change to the code measured.
        .args(["status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)reports"])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{commit} (with uncommitted changes)") } else { commit })
}

fn load_text(l: Option<[f64; 3]>) -> String {
    l.map_or("unknown".into(), |l| format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2]))
}

impl Report {
    /// Whether other work shared the machine: the one-minute load average above half the CPU
    /// count before the run, or after it above that plus the run's own threads (its last minute
    /// runs up to `max(threads)` of them, which the load average after the run counts).
    fn busy(&self) -> bool {
        let cpus = self.machine.logical_cpus as f64;
        let own = self.options.threads.iter().copied().max().unwrap_or(1) as f64;
        self.load_before.is_some_and(|l| l[0] > 0.5 * cpus) || self.load_after.is_some_and(|l| l[0] > own + 0.5 * cpus)
    }

    /// Writes every file; returns the path of `report.md`.
    pub fn write(&mut self) -> Result<PathBuf, String> {
        let out = self.options.out.clone();
        let charts: [(&str, ChartFn); 5] = [
            (
                "gemm.svg",
                Box::new(|r, p| {
                    let pts: Vec<(usize, String, f64)> =
                        r.gemm.points.iter().map(|q| (q.size, q.record.isa.clone(), q.gops())).collect();
                    plots::gemm_chart(p, &pts, &gemm::peaks(&r.limits.measured))
                }),
            ),
            ("bandwidth.svg", Box::new(|r, p| plots::bandwidth_chart(p, &r.limits.measured))),
            (
                "speed.svg",
                Box::new(|r, p| plots::speed_chart(p, &r.speed.rows, &r.options.sizes(), &r.options.threads)),
            ),
            ("clip_sweep.svg", Box::new(|r, p| plots::clip_sweep_chart(p, &r.sweeps))),
            ("scale_zero_point.svg", Box::new(|r, p| plots::scale_zero_point_chart(p, &r.panel_data, &r.panels))),
        ];
        for (name, draw) in charts.iter() {
            if let Err(m) = draw(self, &out.join(name)) {
                self.chart_errors.push(format!("{name}: {m}"));
            }
        }
        self.limits_table().write_csv(&out.join("limits.csv"))?;
        self.speed_table(None).write_csv(&out.join("speed.csv"))?;
        self.scheme_table(None).write_csv(&out.join("accuracy.csv"))?;
        self.sweep_table(false).write_csv(&out.join("clip_sweep.csv"))?;
        self.panel_table().write_csv(&out.join("scale_zero_point.csv"))?;
        self.calibrator_table().write_csv(&out.join("ort_calibrators.csv"))?;
        self.gemm.table(&self.limits.measured).write_csv(&out.join("gemm.csv"))?;
        gemm::overflow_table().write_csv(&out.join("overflow.csv"))?;
        if let Some(m) = &self.minilm {
            let errors = m.write(&out)?;
            self.chart_errors.extend(errors);
        }
        let md = self.markdown();
        let path = out.join("report.md");
        std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    fn limits_table(&self) -> Table {
        let mut t = Table::new(&[
            "limit",
            "kernel",
            "threads",
            "working set",
            "value",
            "unit",
            "best of",
            "quiet reference (earlier, not this run)",
        ]);
        let rank = |l: &str| {
            ["read_bandwidth", "copy_bandwidth", "int8_dot_peak", "f32_fma_peak"].iter().position(|&k| k == l)
        };
        let mut sorted: Vec<&machine::Limit> = self.limits.measured.iter().collect();
        sorted.sort_by_key(|l| (rank(&l.limit), l.kernel.clone(), l.threads, l.bytes));
        for l in sorted {
            t.push(vec![
                Cell::text(&l.limit),
                Cell::text(&l.kernel),
                Cell::num(l.threads as f64, 0),
                l.bytes.map_or(Cell::Missing("registers".into()), |b| Cell::text(format_size(b) + "B")),
                Cell::num(l.value, 1),
                Cell::text(&l.unit),
                Cell::num(l.reps as f64, 0),
                Cell::opt(l.quiet_reference, 0, ""),
            ]);
        }
        t
    }

    /// The speed table, for one operation or all.
    fn speed_table(&self, op: Option<&str>) -> Table {
        let mut t = Table::new(&[
            "op",
            "profile",
            "implementation",
            "elements",
            "threads",
            "median (us)",
            "Gelem/s",
            "GB/s",
            "ceiling GB/s",
            "% of ceiling",
            "x reference",
            "x ONNX Runtime",
            "reps",
            "output check",
        ]);
        for r in self.speed.rows.iter().filter(|r| op.is_none_or(|o| r.record.op == o)) {
            let rec = &r.record;
            t.push(vec![
                Cell::text(&rec.op),
                Cell::text(&rec.profile),
                Cell::text(&rec.isa),
                Cell::text(format_size(rec.elements)),
                Cell::num(rec.threads as f64, 0),
                Cell::num(rec.seconds_median * 1e6, 1),
                Cell::num(rec.gelem_per_s, 3),
                Cell::num(rec.gbytes_per_s, 2),
                Cell::opt(r.ceiling_gbs, 1, "not measured"),
                Cell::opt(r.fraction.map(|f| 100.0 * f), 0, "-"),
                Cell::opt(r.speedup, 2, "-"),
                Cell::opt(r.vs_ort, 2, if self.ort.is_ok() { "-" } else { "not measured" }),
                Cell::num(rec.reps as f64, 0),
                Cell::text(&rec.verified),
            ]);
        }
        t
    }

    fn scheme_table(&self, tensor: Option<&str>) -> Table {
        let mut t = Table::new(&[
            "tensor",
            "scheme",
            "profile",
            "codes",
            "MSE",
            "round MSE",
            "clip MSE",
            "clipped %",
            "SQNR dB",
            "eff. bits",
            "levels used",
            "max round err (steps)",
        ]);
        for r in self.schemes.iter().filter(|r| tensor.is_none_or(|n| r.tensor == n)) {
            let s = &r.stats;
            t.push(vec![
                Cell::text(r.tensor),
                Cell::text(r.scheme()),
                Cell::text(r.profile),
                Cell::text(format!("[{}, {}]", r.range.qmin(), r.range.qmax())),
                Cell::sci(s.mse, 3),
                Cell::sci(s.round_mse, 3),
                Cell::sci(s.clip_mse, 3),
                Cell::num(100.0 * s.clipped_fraction, 3),
                Cell::opt(Some(s.sqnr_db), 2, ""),
                Cell::opt(Some(s.effective_bits), 2, ""),
                Cell::num(100.0 * s.level_utilization, 1),
                Cell::num(s.max_round_error_steps, 3),
            ]);
        }
        t
    }

    fn sweep_table(&self, best_only: bool) -> Table {
        let mut t = Table::new(&[
            "tensor",
            "bits",
            "threshold / max|x|",
            "threshold",
            "scale",
            "MSE",
            "round MSE",
            "clip MSE",
            "clipped %",
            "SQNR dB",
            "best",
        ]);
        for sw in &self.sweeps {
            for (i, p) in sw.points.iter().enumerate() {
                let last = i + 1 == sw.points.len();
                if best_only && i != sw.best && !last {
                    continue;
                }
                t.push(vec![
                    Cell::text(sw.tensor),
                    Cell::num(sw.bits as f64, 0),
                    Cell::num(p.ratio, 3),
                    Cell::num(p.alpha as f64, 5),
                    Cell::num(p.scale as f64, 6),
                    Cell::sci(p.stats.mse, 3),
                    Cell::sci(p.stats.round_mse, 3),
                    Cell::sci(p.stats.clip_mse, 3),
                    Cell::num(100.0 * p.stats.clipped_fraction, 3),
                    Cell::opt(Some(p.stats.sqnr_db), 2, ""),
                    Cell::text(if i == sw.best {
                        "lowest MSE"
                    } else if last {
                        "min-max (no clipping)"
                    } else {
                        ""
                    }),
                ]);
            }
        }
        t
    }

    fn panel_table(&self) -> Table {
        let mut t = Table::new(&[
            "panel",
            "scale",
            "zero point",
            "codes",
            "codes used",
            "clipped %",
            "round MSE",
            "clip MSE",
            "SQNR dB",
        ]);
        for p in &self.panels {
            let s = &p.stats;
            t.push(vec![
                Cell::text(&p.title),
                Cell::num(p.scale as f64, 4),
                Cell::num(p.zero_point as f64, 0),
                Cell::text(format!("[{}, {}]", p.range.qmin(), p.range.qmax())),
                Cell::text(format!("{}/{}", s.codes_used, s.codes_available)),
                Cell::num(100.0 * s.clipped_fraction, 2),
                Cell::sci(s.round_mse, 3),
                Cell::sci(s.clip_mse, 3),
                Cell::opt(Some(s.sqnr_db), 2, ""),
            ]);
        }
        t
    }

    fn calibrator_table(&self) -> Table {
        let mut t = Table::new(&["collector", "elements", "median (s)", "min (s)", "reps", "result", "versions"]);
        for c in &self.calibrators {
            match c {
                Ok(r) => {
                    let d = r.detail.clone().unwrap_or_default();
                    t.push(vec![
                        Cell::text(&r.op),
                        Cell::text(format_size(r.elements)),
                        Cell::num(r.seconds_median, 3),
                        Cell::num(r.seconds_min, 3),
                        Cell::num(r.reps as f64, 0),
                        Cell::text(d.get("result").map(|v| v.to_string()).unwrap_or_default()),
                        Cell::text(
                            d.get("versions")
                                .and_then(|v| v.get("onnxruntime"))
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                        ),
                    ]);
                }
                Err(e) => t.push(vec![
                    Cell::text("failed"),
                    Cell::Missing(String::new()),
                    Cell::Missing(String::new()),
                    Cell::Missing(String::new()),
                    Cell::Missing(String::new()),
                    Cell::text(e),
                ]),
            }
        }
        t
    }

    /// `report.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let o = &self.options;
        let m = &self.machine;
        let _ = writeln!(s, "# quantproof accuracy-speed report\n");
        let _ = writeln!(
            s,
            "Generated by `cargo run --release -- report{}` on {}, quantproof {}{}; the run took {:.0} s.\n",
            if o.quick { " --quick" } else { "" },
            date_utc(),
            env!("CARGO_PKG_VERSION"),
            git_describe().map(|g| format!(", commit {g}")).unwrap_or_default(),
            self.seconds
        );
        let _ = writeln!(
            s,
            "Every number in this report was measured or computed in this run, except the column marked \
             *quiet reference*, which holds values measured earlier on a quiet machine of this project, for comparison only.\n"
        );
        let _ = writeln!(
            s,
            "Load average (1 / 5 / 15 min) before the run: {}, after: {}, on {} logical CPUs.",
            load_text(self.load_before),
            load_text(self.load_after),
            m.logical_cpus
        );
        if self.busy() {
            let _ = writeln!(
                s,
                "\n> **Warning: the machine was busy during this run** (load average above half the CPU count before the run, or above that plus the run's own threads after it). \
                 Timings and measured limits are indicative only; take final figures on a quiet machine."
            );
        }
        if o.quick {
            let _ = writeln!(s, "\n> **Quick run** (`--quick`): smaller sizes and shorter timings, for smoke tests; not for publication.");
        }

        // 1. Machine
        let _ = writeln!(s, "\n## 1. Machine\n");
        let _ = writeln!(s, "- CPU: {} ({}, {}), {} logical CPUs", m.cpu_model, m.arch, m.os, m.logical_cpus);
        if !m.caches.is_empty() {
            let c: Vec<String> = m.caches.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "- caches (per core where private): {}", c.join(", "));
        }
        let present: Vec<&str> = m.features.iter().filter(|f| f.1).map(|f| f.0.as_str()).collect();
        let absent: Vec<&str> = m.features.iter().filter(|f| !f.1).map(|f| f.0.as_str()).collect();
        let _ = writeln!(
            s,
            "- CPU features present: {}",
            if present.is_empty() { "none checked".into() } else { present.join(", ") }
        );
        if !absent.is_empty() {
            let _ = writeln!(s, "- CPU features absent: {}", absent.join(", "));
        }
        let isas: Vec<&str> = m.isas.iter().filter(|i| i.1).map(|i| i.0.as_str()).collect();
        let _ = writeln!(s, "- quantproof kernel families available: {}", isas.join(", "));
        let _ = writeln!(s, "\n### Measured limits\n");
        let _ = writeln!(
            s,
            "Microkernels in `optimized/src/probe.rs`, timed by `harness/src/machine.rs`; each value is the best of several runs \
             (what the machine can do). Bandwidth: stream-sum of a buffer of the given size (wrapping u64 sum, several vector \
             accumulators), and `copy_from_slice` counted as bytes read + written. int8 peak: independent chains of multiply-adds \
             on registers, 2 ops per multiply-add. f32 peak: independent FMA chains, 2 flops per FMA.\n"
        );
        s.push_str(&self.limits_table().to_markdown());
        for e in &self.limit_errors {
            let _ = writeln!(s, "\n- limit not measured: {e}");
        }
        let _ = writeln!(s, "\n![read bandwidth against working-set size](bandwidth.svg)\n");
        let _ = writeln!(
            s,
            "*Read bandwidth against working-set size: where the caches end, the ceiling drops to memory bandwidth. \
                            Speed figures below are held to the ceiling at their own working set.*"
        );

        // 2. Correctness
        let _ = writeln!(s, "\n## 2. Correctness\n");
        let _ = writeln!(s, "### Golden vectors (PyTorch 2.11, ONNX Runtime 1.32)\n");
        match &self.golden {
            correctness::Golden::Summary(sum) => {
                let _ = writeln!(
                    s,
                    "Every case replayed in this run through the reference and every available ISA ({}); a case passes only \
                     when every path passes. Skipped cases are ops whose issue has not landed yet; they are never counted as \
                     passed.\n",
                    sum.paths.join(", ")
                );
                let mut t = Table::new(&["profile", "op", "passed", "failed", "skipped", "paths"]);
                for r in &sum.rows {
                    let paths = if r.passed + r.failed == 0 { r.skip_reasons.join("; ") } else { r.paths.join(", ") };
                    t.push(vec![
                        Cell::text(&r.profile),
                        Cell::text(&r.op),
                        Cell::num(r.passed as f64, 0),
                        Cell::num(r.failed as f64, 0),
                        Cell::num(r.skipped as f64, 0),
                        Cell::text(&paths),
                    ]);
                }
                s.push_str(&t.to_markdown());
                let _ =
                    writeln!(s, "\n`vectors: {} passed, {} failed, {} skipped`", sum.passed, sum.failed, sum.skipped);
            }
            correctness::Golden::Unavailable(why) => {
                let _ = writeln!(s, "**Not run**: {why}. No golden-vector figure is claimed by this report.");
            }
        }
        let c = correctness::in_run_checks(&self.speed.rows);
        let _ = writeln!(s, "\n### Checked in this run\n");
        let _ = writeln!(
            s,
            "- {} kernel measurements: the output of each was compared with the reference's, bit for bit, before timing \
             (output buffers scrambled first); all {} were bit-exact. {} measurement(s) failed and were not timed{}.",
            c.kernels_exact + self.speed.failures.len(),
            c.kernels_exact,
            self.speed.failures.len(),
            if self.speed.failures.is_empty() { "" } else { " (listed under Speed)" }
        );
        let _ = writeln!(s, "- {} reference measurements (the oracle itself).", c.reference_runs);
        if self.ort.is_ok() {
            let _ = writeln!(
                s,
                "- ONNX Runtime's outputs compared with the reference under ONNX Runtime's semantics (division, ties to even, \
                 saturation to the type's range): {} operator output(s) bit-exact, {} calibrator result(s) identical, \
                 {} different, {} not compared.",
                c.ort_exact, c.ort_same_result, c.ort_differs, c.ort_not_compared
            );
        }

        // 3. Speed
        let _ = writeln!(s, "\n## 3. Speed\n");
        let sizes: Vec<String> = o.sizes().iter().map(|&n| format_size(n)).collect();
        let threads: Vec<String> = o.threads.iter().map(|t| t.to_string()).collect();
        let _ = writeln!(
            s,
            "Each operation at {} elements on {} thread(s): the reference (single-threaded, the oracle), every available ISA \
             (`Engine::with_threads`), and ONNX Runtime on the same data. Input: normal values, 256 rows of different magnitudes \
             (seeded); parameters from the data under the operation's default profile (dequantize, dynamic-quantize, \
             min-max: onnxruntime; fake-quantize: torch; quantize under both: onnxruntime divides by the scale, torch \
             multiplies by its f32 reciprocal, and vdivps caps the first), i8 symmetric (dynamic-quantize: u8), per-tensor; \
             the calibrators at 2M elements (the size their targets are stated at) and the largest grid size. Timing: warm-up runs \
             (50 ms, so that the OS has placed the pool's threads), then the median of repeated runs (`std::time::Instant`), inputs and outputs allocated and page-faulted once. \
             GB/s counts compulsory traffic (inputs read once, outputs written once). *Ceiling*: this machine's read bandwidth \
             over a buffer of the same size on the same threads (an optimistic bound: writes cost at least as much as reads). \
             *x reference*: reference time / this time. *x ONNX Runtime*: this throughput / ONNX Runtime's at the same size \
             and threads (above 1: faster than ONNX Runtime). A share of the ceiling above 100% means the ceiling's own \
             measurement was disturbed (a busy machine) or the operation's traffic stayed in a faster cache level than \
             the stream-sum's.\n",
            sizes.join(" and "),
            threads.join(" and ")
        );
        match &self.ort {
            Ok(ort) => {
                let overhead = self
                    .speed
                    .rows
                    .iter()
                    .find(|r| r.record.isa == "onnxruntime")
                    .and_then(|r| r.record.detail.as_ref()?.get("call_overhead_s")?.as_f64());
                let _ = writeln!(
                    s,
                    "ONNX Runtime: {} (venv `{}`), CPU execution provider, one-operator models (QuantizeLinear, DequantizeLinear, \
                     QuantizeLinear + DequantizeLinear for fake-quantize, DynamicQuantizeLinear, ReduceMin + ReduceMax), \
                     intra_op_num_threads = T, inter_op_num_threads = 1, sequential execution, IO binding to preallocated \
                     outputs, `run_with_iobinding` timed from Python{}.\n",
                    ort.describe(),
                    ort.venv.display(),
                    overhead.map(|v| format!("; the fixed cost of one such call (Identity on one element) is {:.1} us and is included in its times, which matters at small sizes", v * 1e6)).unwrap_or_default()
                );
            }
            Err(why) => {
                let _ = writeln!(
                    s,
                    "> **ONNX Runtime was NOT measured in this run**: {why}. The `x ONNX Runtime` column is empty.\n"
                );
            }
        }
        let _ = writeln!(s, "![throughput per operation and implementation](speed.svg)\n");
        let _ = writeln!(
            s,
            "*Throughput per operation, implementation, size and thread count (log scale); the black bar is the \
                            read-bandwidth ceiling at that working set expressed in elements per second.*\n"
        );
        let mut ops: Vec<String> = Vec::new();
        for r in &self.speed.rows {
            if !ops.contains(&r.record.op) {
                ops.push(r.record.op.clone());
            }
        }
        for op in &ops {
            let summary = crate::bench::table().find(|t| t.name == op.as_str()).map(|t| t.summary).unwrap_or("");
            let _ = writeln!(s, "### {op}\n\n{summary}\n");
            s.push_str(&self.speed_table(Some(op)).to_markdown());
            s.push('\n');
        }
        if !self.speed.failures.is_empty() || !self.speed.ort_failures.is_empty() {
            let _ = writeln!(s, "### Failed measurements\n");
            for f in self.speed.failures.iter().chain(&self.speed.ort_failures) {
                let _ = writeln!(s, "- {f}");
            }
        }
        let _ = writeln!(s, "\n### Integer GEMM against the int8 peak\n");
        let peaks: Vec<String> =
            gemm::peaks(&self.limits.measured).iter().map(|(k, v)| format!("{k} {v:.0} GOPS")).collect();
        let _ = writeln!(
            s,
            "`quantproof bench qgemm --m S --n S --k S --with-ort`: u8 x s8 -> exact i32 with an activation zero point of \
             128, one thread, S from {} to {}; every output checked bit for bit against the reference before timing (ONNX \
             Runtime's MatMulInteger against ours). GOPS = 2 M N K / t. Peaks measured on one thread in this run: {}. \
             *x f32*: against an f32 GEMM of the same shape (`ndarray`'s `dot`, `matrixmultiply`'s sgemm, one thread, timed \
             when the workload is built).\n",
            gemm::sizes(o.quick).first().copied().unwrap_or(0),
            gemm::sizes(o.quick).last().copied().unwrap_or(0),
            if peaks.is_empty() { "none".into() } else { peaks.join(", ") }
        );
        let _ = writeln!(s, "![GEMM GOPS against size and the int8 peaks](gemm.svg)\n");
        s.push_str(&self.gemm.table(&self.limits.measured).to_markdown());
        for f in &self.gemm.failures {
            let _ = writeln!(s, "- failed: {f}");
        }
        let _ = writeln!(
            s,
            "\nWhich formulations stay exact (the overflow checker, `quantproof check-overflow`): u8 activations with \
             zero point 128, s8 weights with zero point 0, by depth K. Raw-code sums that wrap in i32 are harmless where \
             the exact (centred) result fits, so the checker finds vpdpbusd exact to K = 131,071 here; quantproof's packed \
             kernels, which must hold for any zero points, finish in i32 with wrapping arithmetic up to K = 33,025 (K \
             255^2 < 2^31), check each value in i64 up to K = 65,793, and hand deeper products to the portable kernel \
             (i64). vpmaddubsw saturates already at K = 2 (255 x -128 twice), which is why no kernel here uses it.\n"
        );
        s.push_str(&gemm::overflow_table().to_markdown());
        let _ = writeln!(s, "\n### ONNX Runtime's calibrators\n");
        if self.calibrators.is_empty() {
            let _ = writeln!(s, "Not measured (ONNX Runtime unavailable or not requested).");
        } else {
            let _ = writeln!(
                s,
                "`onnxruntime.quantization.calibrate.HistogramCollector` on {} normal float32 values (seeded): construction, one \
                 `collect` and `compute_collection_result`, single process. entropy: 2048 bins, 128 quantized bins; percentile: \
                 99.999, 2048 bins, symmetric; distribution: 2048 bins (the same collectors are timed against quantproof's in the \
                 calibrate-* tables above, on the same data as ours, and their results compared with ours).\n",
                format_size(o.calib_size())
            );
            s.push_str(&self.calibrator_table().to_markdown());
        }

        // 4. Accuracy
        let _ = writeln!(s, "\n## 4. Accuracy\n");
        let _ = writeln!(
            s,
            "Error analysis by `quantproof_reference::analysis::analyze`: the error `x - x^` split into *round* error (inside the \
             representable range, at most half a step) and *clip* error (outside it); SQNR = 10 log10(sum x^2 / sum e^2); \
             effective bits = (SQNR - 1.76) / 6.02; levels used = distinct codes / codes available; clipped = the share of \
             elements outside the representable interval [(qmin - z) s, (qmax - z) s], by however little (a rounded zero \
             point or PyTorch's symmetric scale max / 127.5 puts the data's extremes just outside it). Tensors are synthetic \
             (seeded) with the shapes of all-MiniLM-L6-v2 and the features that matter:\n"
        );
        for t in &self.tensors {
            let _ = writeln!(s, "- `{}`: {}", t.name, t.what);
        }
        let _ = writeln!(
            s,
            "\nSchemes: per-tensor or per-channel (weights: per output channel; activations: per feature), symmetric (signed codes, \
             z = 0) or affine (unsigned codes), 8 or 4 bits, each profile's parameter rule and quantize arithmetic \
             (torch: x * (1/s); onnxruntime and quantproof: x / s; ties to even).\n"
        );
        for t in &self.tensors {
            let _ = writeln!(s, "### {}\n", t.name);
            s.push_str(&self.scheme_table(Some(t.name)).to_markdown());
            s.push('\n');
        }
        let _ = writeln!(s, "### Round error against clip error\n");
        let _ = writeln!(s, "![MSE against clipping threshold](clip_sweep.svg)\n");
        let _ = writeln!(
            s,
            "*`ffn_weight` quantized per tensor, symmetric, with the clipping threshold swept from 2% to 100% of max|x| \
             (40 thresholds, full table in clip_sweep.csv): a wide range costs round error, a narrow one clip error. The rows \
             below are each sweep's lowest MSE and min-max (no clipping).*\n"
        );
        s.push_str(&self.sweep_table(true).to_markdown());
        let _ = writeln!(s, "\n### How scale and zero point move a distribution\n");
        let _ = writeln!(s, "![scale and zero point panels](scale_zero_point.svg)\n");
        let _ = writeln!(
            s,
            "*{} values of 0.7 N(1, 0.6^2) + 0.3 N(-1.2, 0.4^2) (seeded), quantized with the quantproof rule (x / s, ties to \
             even). Grey: density of x; blue: density of the dequantized values x^ (each code's mass spread over its step s); \
             red: the code grid, q at (q - z) s. What each panel shows:*\n",
            self.panel_data.len()
        );
        for p in &self.panels {
            let _ = writeln!(s, "- {}: {}", p.title, p.note);
        }
        s.push('\n');
        s.push_str(&self.panel_table().to_markdown());

        match &self.minilm {
            Some(m) => m.markdown(&mut s),
            None => {
                let _ = writeln!(
                    s,
                    "\n## 5. A real model: all-MiniLM-L6-v2\n\n> Not in this run: the model was not in the cache \
                     (`quantproof minilm fetch` downloads it once; then `quantproof report` includes this section).\n"
                );
            }
        }

        if !self.chart_errors.is_empty() {
            let _ = writeln!(s, "\n## Charts not drawn\n");
            for e in &self.chart_errors {
                let _ = writeln!(s, "- {e}");
            }
        }
        let _ = writeln!(s, "\n## Files\n");
        for (f, what) in [
            ("limits.csv", "measured limits"),
            ("speed.csv", "every speed figure, full precision"),
            ("ort_calibrators.csv", "ONNX Runtime calibrator timings and thresholds"),
            ("accuracy.csv", "every scheme on every tensor"),
            ("clip_sweep.csv", "the clipping sweeps"),
            ("scale_zero_point.csv", "the seed-004 panels"),
            (
                "minilm_eval.csv, minilm_speed.csv, minilm_layers.csv",
                "the real model's accuracy, speed and per-Linear analysis (when it was in the cache)",
            ),
            ("bandwidth.svg, speed.svg, clip_sweep.svg, scale_zero_point.svg, minilm_layers.svg", "the charts"),
        ] {
            let _ = writeln!(s, "- `{f}`: {what}");
        }
        s
    }
}

/// `r`'s value, or `None` with its error added to `failures` (a workload that cannot be set up
/// is reported, and the report goes on).
fn kept<T>(r: Result<T, String>, failures: &mut Vec<String>) -> Option<T> {
    r.map_err(|e| failures.push(e)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = date_utc();
        assert!(d.len() == 20 && d.ends_with("UTC") && d.starts_with("20"), "{d}");
    }
}
