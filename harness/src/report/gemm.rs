//! The integer GEMM against this machine's int8 peaks: `u8 x s8 -> i32` square products from 64
//! to 2048 on every ISA level and ONNX Runtime's MatMulInteger (one thread, the same data, every
//! output checked bit for bit first), next to an f32 GEMM of the same shape, and the overflow
//! checker's verdicts on which formulations stay exact at which depth.

use super::table::{Cell, Table};
use crate::bench::timing::Reps;
use crate::bench::{Bench, Path, Record, Setup};
use crate::machine::Limit;
use crate::ort::Ort;
use quantproof_reference::overflow::{check, Formulation, OperandSpec};
use quantproof_reference::scheme::QType;

/// One measured point.
#[derive(Debug, Clone)]
pub struct Point {
    /// M = N = K.
    pub size: usize,
    pub record: Record,
}

impl Point {
    pub fn gops(&self) -> f64 {
        self.record.gops.unwrap_or(0.0)
    }

    /// The f32 GEMM's GFLOP/s of the same shape (ours only).
    pub fn f32_gflops(&self) -> Option<f64> {
        self.record.detail.as_ref()?.get("f32_gemm")?.get("gflops")?.as_f64()
    }

    /// The micro-kernel the ISA level used.
    pub fn kernel(&self) -> Option<String> {
        let d = self.record.detail.as_ref()?;
        Some(d.get("kernel_by_isa")?.get(&self.record.isa)?.as_str()?.to_string())
    }
}

/// The GEMM section's measurements.
#[derive(Debug, Clone, Default)]
pub struct GemmResults {
    pub points: Vec<Point>,
    pub failures: Vec<String>,
}

/// Square sizes measured: 64 to 2048 (`quick`: to 512).
pub fn sizes(quick: bool) -> Vec<usize> {
    if quick {
        vec![64, 128, 256, 512]
    } else {
        vec![64, 128, 256, 512, 1024, 2048]
    }
}

/// Measures every size on every optimized ISA level (one thread) and ONNX Runtime.
pub fn run(quick: bool, reps: Reps, ort: Option<&Ort>, log: &mut dyn FnMut(&str)) -> GemmResults {
    let mut res = GemmResults::default();
    let Some(spec) = crate::bench::table().find(|s| s.name == "qgemm") else {
        res.failures.push("qgemm is not in the bench table".into());
        return res;
    };
    for s in sizes(quick) {
        log(&format!("GEMM: {s} x {s} x {s}"));
        let setup = Setup::resolve(spec, s * s, None, None, None).map(|x| x.with_dims(Some(vec![s, s, s])));
        let Some(mut bench) = super::kept(setup.and_then(|x| Bench::new(spec, x)), &mut res.failures) else {
            continue;
        };
        for imp in Path::optimized(1) {
            match bench.measure(&imp, reps) {
                Ok(r) => res.points.push(Point { size: s, record: r }),
                Err(f) => res.failures.push(f.to_string()),
            }
        }
        if let (Some(ort), Some(case)) = (ort, bench.workload.ort_case()) {
            match ort.bench_case(&case, 1, reps.fixed()) {
                Ok(r) => res.points.push(Point { size: s, record: r }),
                Err(e) => res.failures.push(format!("qgemm {s}: ONNX Runtime: {e}")),
            }
        }
    }
    res
}

/// The int8 peaks this machine measured on one thread: `(kernel, GOPS)`.
pub fn peaks(limits: &[Limit]) -> Vec<(String, f64)> {
    limits
        .iter()
        .filter(|l| l.limit == "int8_dot_peak" && l.threads == 1)
        .map(|l| (l.kernel.clone(), l.value))
        .collect()
}

/// The peak of the instruction a micro-kernel is built on (`qu8s8_gemm_6x16c4__avxvnni` ->
/// `avx-vnni (vpdpbusd ymm)`), from the kernel name's ISA suffix.
pub fn instruction_peak(kernel: &str, peaks: &[(String, f64)]) -> Option<f64> {
    let isa = kernel.rsplit("__").next()?;
    let probe = match isa {
        "avx512vnni" => "avx512-vnni",
        "avxvnni" => "avx-vnni",
        "amx" => "amx-int8",
        "neondot" => "neon-dotprod",
        "neon_mlal" => "neon (",
        "portable" => "scalar",
        // `avx2`, `avx2_maddubs`: `vpmaddubsw` + `vpmaddwd` (the `vpmaddwd`-only kernel does as
        // many multiply-adds per instruction pair).
        i if i.starts_with("avx2") => "avx2 (",
        _ => return None,
    };
    peaks.iter().find(|p| p.0.starts_with(probe)).map(|p| p.1)
}

impl GemmResults {
    /// One row per size and implementation: GOPS, share of the best peak and of the peak of the
    /// micro-kernel's own instruction, x ONNX Runtime, x f32.
    pub fn table(&self, limits: &[Limit]) -> Table {
        let peaks = peaks(limits);
        let best_peak = peaks.iter().map(|p| p.1).fold(0.0, f64::max);
        let mut t = Table::new(&[
            "M = N = K",
            "implementation",
            "micro-kernel",
            "GOPS",
            "of the int8 peak",
            "of its instruction's peak",
            "x ONNX Runtime",
            "f32 GEMM GFLOP/s",
            "x f32",
        ]);
        for p in &self.points {
            let ort = self.points.iter().find(|q| q.size == p.size && q.record.isa == "onnxruntime").map(Point::gops);
            let ours = p.record.isa != "onnxruntime";
            t.push(vec![
                Cell::text(p.size.to_string()),
                Cell::text(&p.record.isa),
                Cell::text(p.kernel().unwrap_or_else(|| if ours { "-".into() } else { "MLAS (MatMulInteger)".into() })),
                Cell::num(p.gops(), 0),
                Cell::opt((best_peak > 0.0).then(|| 100.0 * p.gops() / best_peak), 0, "no peak measured"),
                Cell::opt(
                    p.kernel().and_then(|k| instruction_peak(&k, &peaks)).filter(|&v| v > 0.0).map(|v| 100.0 * p.gops() / v),
                    0,
                    "-",
                ),
                Cell::opt(ort.filter(|&o| ours && o > 0.0).map(|o| p.gops() / o), 2, "-"),
                Cell::opt(p.f32_gflops(), 0, "-"),
                Cell::opt(p.f32_gflops().filter(|&f| f > 0.0).map(|f| p.gops() / f), 1, "-"),
            ]);
        }
        t
    }
}

/// The overflow checker on `u8 x s8` with zero points 128 and 0 (ONNX Runtime's dynamic
/// quantization) at growing depths: which formulations stay exact.
pub fn overflow_table() -> Table {
    let a = OperandSpec::full(QType::U8).with_zero_point(128);
    let b = OperandSpec::full(QType::I8);
    let depths = [256u64, 1024, 33_025, 65_793, 65_794, 1 << 20];
    let mut headers = vec!["formulation".to_string()];
    headers.extend(depths.iter().map(|k| format!("K = {k}")));
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&refs);
    let reports: Vec<_> = depths.iter().map(|&k| check(&a, &b, k).ok()).collect();
    for f in Formulation::ALL {
        let mut row = vec![Cell::text(f.name())];
        for r in &reports {
            row.push(match r.as_ref().and_then(|r| r.verdict(f)) {
                Some(v) if v.exact => Cell::text("exact"),
                Some(v) if v.pair_overflows => Cell::text("pair sums overflow"),
                Some(_) => Cell::text("accumulator leaves i32"),
                None => Cell::text("n/a"),
            });
        }
        t.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::DotKernel;

    /// Every GEMM micro-kernel's name leads to the peak of the instruction it is built on.
    #[test]
    fn every_kernel_has_an_instruction_peak() {
        let peaks: Vec<(String, f64)> =
            DotKernel::ALL.iter().enumerate().map(|(i, k)| (k.name().to_string(), i as f64 + 1.0)).collect();
        let peak_of = |k: DotKernel| peaks.iter().find(|p| p.0 == k.name()).map(|p| p.1);
        for k in quantproof_optimized::gemm::GemmKernel::ALL {
            let got = instruction_peak(k.name(), &peaks);
            assert!(got.is_some(), "{}", k.name());
        }
        assert_eq!(instruction_peak("qu8s8_gemm_6x16c4__avxvnni", &peaks), peak_of(DotKernel::AvxVnni));
        assert_eq!(instruction_peak("qu8s8_gemm_6x64c4__avx512vnni", &peaks), peak_of(DotKernel::Avx512Vnni));
        assert_eq!(instruction_peak("qu8s8_gemm_6x16c4__avx2_maddubs", &peaks), peak_of(DotKernel::Avx2Maddubs));
        assert_eq!(instruction_peak("qu8s8_gemm_1x16c4__neondot", &peaks), peak_of(DotKernel::NeonSdot));
        assert_eq!(instruction_peak("qu8s8_gemm_1x16c4__neon_mlal", &peaks), peak_of(DotKernel::NeonSmlal));
        assert_eq!(instruction_peak("qu8s8_gemm_1x16c4__portable", &peaks), peak_of(DotKernel::Scalar));
        assert_eq!(instruction_peak("no kernel", &peaks), None);
    }
}
