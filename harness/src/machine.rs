//! # This machine: what it is, and the most it can do
//!
//! Speed figures are put next to ceilings measured here, in the same run, by the microkernels
//! of [`crate::probe`]:
//!
//! * **read bandwidth**: stream-sum of a buffer (best ISA), for a working set of a given size
//!   and a thread count. A buffer much larger than the last-level cache gives the memory
//!   bandwidth; a small one gives the cache's. [`Limits::read_bandwidth_at`] measures it at the
//!   size of a benchmark's own working set, so a 64K-element benchmark (cache-resident) is not
//!   held to the DRAM figure, nor a 16M one to the cache's.
//! * **copy bandwidth**: `copy_from_slice` (the platform's `memcpy`), counted as bytes read plus
//!   bytes written (STREAM's convention).
//! * **int8 dot-product peak**: independent chains of `vpdpbusd` (AVX-512 VNNI),
//!   `vpmaddubsw + vpmaddwd` (AVX2), `sdot` / `smlal` (NEON) or portable code, in GOPS with two
//!   operations per multiply-add.
//! * **f32 FMA peak** in GFLOP/s, two flops per fused multiply-add.
//!
//! A ceiling is the *best* of several runs (what the machine can do), where benchmarks report
//! medians (what an operation typically does). Every figure is measured; the only numbers not
//! measured in this run are [`QUIET_REFERENCE`], values measured earlier on a quiet machine of
//! this project, which are always labelled as such.

use crate::probe::{DotKernel, FmaKernel, ReadKernel};
use quantproof_optimized::isa::{self, Isa};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

/// Values measured earlier on a quiet machine of this project (AMD EPYC with AVX-512 VNNI, one
/// core), quoted only for comparison: `(limit, kernel prefix, value)`.
pub const QUIET_REFERENCE: [(&str, &str, f64); 3] =
    [("read_bandwidth", "avx512", 31.0), ("int8_dot_peak", "avx512-vnni", 940.0), ("f32_fma_peak", "avx512", 234.0)];

/// One measured ceiling: a line of `quantproof bench limits --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// `read_bandwidth`, `copy_bandwidth`, `int8_dot_peak` or `f32_fma_peak`.
    pub limit: String,
    /// The microkernel that measured it.
    pub kernel: String,
    pub threads: usize,
    /// Working-set size in bytes (bandwidth limits only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    pub value: f64,
    /// `GB/s`, `GOPS` or `GFLOP/s` (10^9).
    pub unit: String,
    /// Timed runs; `value` comes from the fastest.
    pub reps: usize,
    /// Seconds of the fastest run.
    pub seconds_best: f64,
    /// The value measured earlier on a quiet machine, where one exists for this limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_reference: Option<f64>,
}

impl Limit {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// What the machine is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineInfo {
    pub cpu_model: String,
    pub arch: String,
    pub os: String,
    pub logical_cpus: usize,
    /// `(feature, present)`.
    pub features: Vec<(String, bool)>,
    /// `(isa, available)`.
    pub isas: Vec<(String, bool)>,
    /// `(level and type, size)` from sysfs, where the OS exposes it.
    pub caches: Vec<(String, String)>,
    /// The 1, 5 and 15 minute load averages (Linux), which say how busy the machine was.
    pub load_average: Option<[f64; 3]>,
}

/// Describes this machine.
pub fn describe() -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model") || l.starts_with("CPU part"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    MachineInfo {
        cpu_model,
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
        logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        features: isa::cpu_features().into_iter().map(|(n, b)| (n.to_string(), b)).collect(),
        isas: Isa::ALL.iter().map(|i| (i.name().to_string(), i.is_available())).collect(),
        caches: caches(),
        load_average: load_average(),
    }
}

fn caches() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok().map(|s| s.trim().to_string());
        if let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) {
            v.push((format!("L{level} {}", kind.to_lowercase()), size));
        }
    }
    v
}

/// Parses sysfs cache sizes: `48K`, `32768K`, `2M`, `1024` (bytes).
fn parse_cache_size(s: &str) -> Option<usize> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1usize << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(mult)
}

/// The load averages from `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|t| t.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// How long and how hard to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effort {
    /// Timed runs per ceiling (the best is kept).
    pub reps: usize,
    /// Minimum seconds of one run of a compute probe.
    pub min_run_s: f64,
    /// Bytes streamed per run of a bandwidth probe (small buffers are swept repeatedly).
    pub bytes_per_run: usize,
    /// The "much larger than the caches" buffer (raised to 4x the largest cache the OS
    /// reports, when that is larger).
    pub large_buffer: usize,
}

impl Effort {
    pub const FULL: Effort = Effort { reps: 7, min_run_s: 0.02, bytes_per_run: 512 << 20, large_buffer: 256 << 20 };
    pub const QUICK: Effort = Effort { reps: 3, min_run_s: 0.005, bytes_per_run: 128 << 20, large_buffer: 64 << 20 };
}

fn quiet_reference(limit: &str, kernel: &str, threads: usize, bytes: Option<usize>, large: usize) -> Option<f64> {
    if threads != 1 || bytes.is_some_and(|b| b < large) {
        return None;
    }
    QUIET_REFERENCE.iter().find(|(l, k, _)| *l == limit && kernel.starts_with(k)).map(|&(_, _, v)| v)
}

/// Runs `work` on `threads` threads at once (`work(thread_index)`), returning the wall time.
fn timed_parallel(threads: usize, work: &(dyn Fn(usize) + Sync)) -> f64 {
    let t = Instant::now();
    if threads <= 1 {
        work(0);
    } else {
        std::thread::scope(|s| {
            for i in 0..threads {
                s.spawn(move || work(i));
            }
        });
    }
    t.elapsed().as_secs_f64()
}

/// Splits `0..n` into `parts` nearly equal ranges.
fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts).map(|i| (n * i / parts)..(n * (i + 1) / parts)).collect()
}

/// Read bandwidth for a working set of `bytes` on `threads` threads, with `kernel`.
pub fn read_bandwidth(kernel: ReadKernel, bytes: usize, threads: usize, effort: Effort) -> Result<Limit, String> {
    let words = (bytes / 8).max(threads * 64);
    let buf: Vec<u64> = (0..words as u64).collect();
    let want = (words as u64).wrapping_mul(words as u64 - 1) / 2;
    if kernel.sum(&buf).map_err(|e| e.to_string())? != want {
        return Err(format!("{} summed wrong", kernel.name()));
    }
    let passes = effort.bytes_per_run.div_ceil(words * 8).max(1);
    let parts = split(words, threads);
    let work = |t: usize| {
        let part = &buf[parts[t].clone()];
        for _ in 0..passes {
            black_box(kernel.sum(black_box(part)).unwrap_or(0));
        }
    };
    let best = (0..effort.reps).map(|_| timed_parallel(threads, &work)).fold(f64::INFINITY, f64::min);
    let moved = (words * 8 * passes) as f64;
    let name = kernel.name().to_string();
    Ok(Limit {
        limit: "read_bandwidth".into(),
        quiet_reference: quiet_reference("read_bandwidth", &name, threads, Some(words * 8), effort.large_buffer),
        kernel: name,
        threads,
        bytes: Some(words * 8),
        value: moved / best / 1e9,
        unit: "GB/s".into(),
        reps: effort.reps,
        seconds_best: best,
    })
}

/// Copy bandwidth (`copy_from_slice`) over `bytes` of source, counted as read plus written.
pub fn copy_bandwidth(bytes: usize, threads: usize, effort: Effort) -> Limit {
    let words = (bytes / 8).max(threads * 64);
    let src: Vec<u64> = (0..words as u64).collect();
    let dst: Vec<std::sync::Mutex<Vec<u64>>> =
        split(words, threads).into_iter().map(|r| std::sync::Mutex::new(vec![1u64; r.len()])).collect();
    let parts = split(words, threads);
    let passes = effort.bytes_per_run.div_ceil(2 * words * 8).max(1);
    let work = |t: usize| {
        if let Ok(mut d) = dst[t].lock() {
            for _ in 0..passes {
                d.copy_from_slice(black_box(&src[parts[t].clone()]));
                black_box(d.as_mut_ptr());
            }
        }
    };
    let best = (0..effort.reps).map(|_| timed_parallel(threads, &work)).fold(f64::INFINITY, f64::min);
    Limit {
        limit: "copy_bandwidth".into(),
        kernel: "copy_from_slice (memcpy)".into(),
        threads,
        bytes: Some(words * 8),
        value: (2 * words * 8 * passes) as f64 / best / 1e9,
        unit: "GB/s".into(),
        reps: effort.reps,
        seconds_best: best,
        quiet_reference: None,
    }
}

/// Finds an iteration count whose run takes at least `min_s` seconds.
fn calibrate(min_s: f64, run: &dyn Fn(u64)) -> u64 {
    let mut iters = 1u64 << 12;
    loop {
        let t = Instant::now();
        run(iters);
        if t.elapsed().as_secs_f64() >= min_s || iters >= 1 << 40 {
            return iters;
        }
        iters *= 2;
    }
}

/// int8 multiply-add peak of `kernel` on `threads` threads.
pub fn dot_peak(kernel: DotKernel, threads: usize, effort: Effort) -> Result<Limit, String> {
    let (a, b) = (black_box(3u8), black_box(-2i8));
    let got = kernel.run(1000, a, b).map_err(|e| e.to_string())?;
    if got != kernel.expected(1000, a, b) {
        return Err(format!("{} computed a wrong checksum", kernel.name()));
    }
    let iters = calibrate(effort.min_run_s, &|n| {
        black_box(kernel.run(n, a, b).unwrap_or(0));
    });
    let work = |_| {
        black_box(kernel.run(iters, a, b).unwrap_or(0));
    };
    let best = (0..effort.reps).map(|_| timed_parallel(threads, &work)).fold(f64::INFINITY, f64::min);
    let ops = (kernel.ops_per_iter() * iters * threads as u64) as f64;
    let name = kernel.name().to_string();
    Ok(Limit {
        limit: "int8_dot_peak".into(),
        quiet_reference: quiet_reference("int8_dot_peak", &name, threads, None, 0),
        kernel: name,
        threads,
        bytes: None,
        value: ops / best / 1e9,
        unit: "GOPS".into(),
        reps: effort.reps,
        seconds_best: best,
    })
}

/// f32 FMA peak of `kernel` on `threads` threads.
pub fn fma_peak(kernel: FmaKernel, threads: usize, effort: Effort) -> Result<Limit, String> {
    let (a, b) = (black_box(0.999f32), black_box(0.25f32));
    let got = kernel.run(1000, a, b).map_err(|e| e.to_string())?;
    if got != kernel.expected(1000, a, b) {
        return Err(format!("{} computed a wrong checksum", kernel.name()));
    }
    let iters = calibrate(effort.min_run_s, &|n| {
        black_box(kernel.run(n, a, b).unwrap_or(0.0));
    });
    let work = |_| {
        black_box(kernel.run(iters, a, b).unwrap_or(0.0));
    };
    let best = (0..effort.reps).map(|_| timed_parallel(threads, &work)).fold(f64::INFINITY, f64::min);
    let flops = (kernel.flops_per_iter() * iters * threads as u64) as f64;
    let name = kernel.name().to_string();
    Ok(Limit {
        limit: "f32_fma_peak".into(),
        quiet_reference: quiet_reference("f32_fma_peak", &name, threads, None, 0),
        kernel: name,
        threads,
        bytes: None,
        value: flops / best / 1e9,
        unit: "GFLOP/s".into(),
        reps: effort.reps,
        seconds_best: best,
    })
}

/// The ceilings of this machine, measured once and cached by working-set size.
#[derive(Debug, Clone)]
pub struct Limits {
    pub effort: Effort,
    /// Every ceiling measured so far, in measurement order.
    pub measured: Vec<Limit>,
    read_cache: BTreeMap<(usize, usize), f64>,
}

impl Limits {
    pub fn new(effort: Effort) -> Limits {
        Limits { effort, measured: Vec::new(), read_cache: BTreeMap::new() }
    }

    /// The standard set: read bandwidth over a sweep of working sets (one thread) and over the
    /// large buffer (each thread count), copy bandwidth, and every available int8 and FMA
    /// kernel's peak on one thread and on all `threads`. Failures become `Err` lines.
    pub fn measure_standard(&mut self, threads: &[usize]) -> Vec<String> {
        let mut errors = Vec::new();
        // "Much larger than the caches": at least 4x the largest cache this machine reports.
        let largest = caches().iter().filter_map(|(_, size)| parse_cache_size(size)).max().unwrap_or(0);
        self.effort.large_buffer = self.effort.large_buffer.max(4 * largest);
        let e = self.effort;
        let sizes: Vec<usize> = if e.large_buffer >= 256 << 20 {
            vec![32 << 10, 256 << 10, 2 << 20, 16 << 20, e.large_buffer]
        } else {
            vec![32 << 10, 256 << 10, e.large_buffer]
        };
        for &b in &sizes {
            if let Err(m) = self.read_bandwidth_at(b, 1) {
                errors.push(m);
            }
        }
        for &t in threads.iter().filter(|&&t| t > 1) {
            if let Err(m) = self.read_bandwidth_at(e.large_buffer, t) {
                errors.push(m);
            }
        }
        for &t in threads {
            self.measured.push(copy_bandwidth(e.large_buffer / 2, t, e));
        }
        let mut thread_counts: Vec<usize> = threads.to_vec();
        thread_counts.dedup();
        for k in DotKernel::available() {
            for &t in &thread_counts {
                match dot_peak(k, t, e) {
                    Ok(l) => self.measured.push(l),
                    Err(m) => errors.push(m),
                }
            }
        }
        for k in FmaKernel::available() {
            for &t in &thread_counts {
                match fma_peak(k, t, e) {
                    Ok(l) => self.measured.push(l),
                    Err(m) => errors.push(m),
                }
            }
        }
        errors
    }

    /// Read bandwidth (best ISA) for a working set of `bytes` on `threads` threads, in GB/s:
    /// measured on first use, then cached (sizes are rounded to 1/16 of their power of two).
    pub fn read_bandwidth_at(&mut self, bytes: usize, threads: usize) -> Result<f64, String> {
        let key = (round_size(bytes), threads);
        if let Some(&v) = self.read_cache.get(&key) {
            return Ok(v);
        }
        let l = read_bandwidth(ReadKernel::best(), key.0, threads, self.effort)?;
        let v = l.value;
        self.measured.push(l);
        self.read_cache.insert(key, v);
        Ok(v)
    }

    /// The best measured value of a limit on `threads` threads (any kernel).
    pub fn best(&self, limit: &str, threads: usize) -> Option<&Limit> {
        self.measured
            .iter()
            .filter(|l| l.limit == limit && l.threads == threads)
            .max_by(|a, b| a.value.total_cmp(&b.value))
    }
}

/// Rounds up to a multiple of 1/16 of the size's power of two (at least 4 KiB).
fn round_size(bytes: usize) -> usize {
    let b = bytes.max(4096);
    let p = b.next_power_of_two();
    let step = (p / 16).max(4096);
    b.div_ceil(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Effort = Effort { reps: 2, min_run_s: 0.0005, bytes_per_run: 1 << 20, large_buffer: 1 << 20 };

    #[test]
    fn limits_have_sane_shapes() {
        let l = read_bandwidth(ReadKernel::best(), 64 << 10, 2, TINY).unwrap();
        assert_eq!(
            (l.limit.as_str(), l.unit.as_str(), l.threads, l.bytes),
            ("read_bandwidth", "GB/s", 2, Some(64 << 10))
        );
        assert!(l.value > 0.0 && l.value.is_finite());
        let c = copy_bandwidth(64 << 10, 1, TINY);
        assert!(c.value > 0.0 && c.value.is_finite());
        for k in DotKernel::available() {
            let d = dot_peak(k, 1, TINY).unwrap();
            assert!(d.value > 0.0 && d.unit == "GOPS");
        }
        let f = fma_peak(FmaKernel::Scalar, 1, TINY).unwrap();
        assert!(f.value > 0.0 && f.unit == "GFLOP/s");
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        assert_eq!(v["limit"], "f32_fma_peak");
    }

    #[test]
    fn cache_and_rounding() {
        assert_eq!(round_size(1), 4096);
        assert_eq!(round_size(320 << 10), 320 << 10);
        assert_eq!(round_size((320 << 10) + 1), 352 << 10);
        let mut l = Limits::new(TINY);
        let a = l.read_bandwidth_at(100 << 10, 1).unwrap();
        let b = l.read_bandwidth_at(100 << 10, 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(l.measured.len(), 1);
        assert!(l.best("read_bandwidth", 1).is_some());
        assert!(l.best("read_bandwidth", 3).is_none());
    }

    #[test]
    fn quiet_reference_only_where_it_applies() {
        assert_eq!(quiet_reference("int8_dot_peak", "avx512-vnni (vpdpbusd zmm)", 1, None, 0), Some(940.0));
        assert_eq!(quiet_reference("int8_dot_peak", "avx512-vnni (vpdpbusd zmm)", 2, None, 0), None);
        assert_eq!(quiet_reference("read_bandwidth", "avx512 (x)", 1, Some(1 << 10), 1 << 20), None);
        assert_eq!(quiet_reference("read_bandwidth", "avx512 (x)", 1, Some(1 << 20), 1 << 20), Some(31.0));
        assert_eq!(split(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("lots"), None);
    }
}
