//! Kernel throughput per ISA against the reference implementation.
//!
//! `cargo bench -p quantproof-optimized --bench kernels [-- FILTER]`
//!
//! One group per kernel; in each, every ISA this CPU has (`Engine::new(isa)`, one thread) and
//! the reference function, at 64K elements (cache-resident: what one planner span holds) and
//! 16M elements (memory-bound). Throughput is in elements per second. Groups:
//!
//! * `quantize_i8_tensor_torch`: f32 -> i8 per tensor, `x * (1/s)`, half to even (PyTorch);
//! * `quantize_i8_tensor_onnxruntime`: the same with `x / s` (ONNX Runtime);
//! * `quantize_i8_span`: the same two rules on the kernel itself (`Engine::kernels()`), one 64K
//!   span as the planner hands it, without the planner's per-call work;
//! * `quantize_i8_per_element`: per-axis over the innermost axis of 4 channels, which the planner
//!   runs as per-element spans;
//! * `dequantize_i8_tensor`, `fake_quantize_tensor` (with the straight-through mask);
//! * `pack_nibbles` (the kernel; the reference is `pack::pack4` on i32 codes);
//! * `min_max` (the reference is a plain fold, since the reference crate has no bare min/max);
//! * `gemm_u8s8_256`, `gemm_u7s8_256`: every available GEMM micro-kernel on a 256^3 product with
//!   full-range and 7-bit activations (the second lets `vpmaddubsw` run).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use quantproof_optimized::kernels::{Params, Rule, Uniform};
use quantproof_optimized::{isa, Engine, Isa};
use quantproof_reference::pack::{self, Int4};
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{self as refq, ScaleOp};
use quantproof_reference::scheme::QType;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 2] = [1 << 16, 1 << 24];
const SCALE: f32 = 0.02;

fn engines() -> Vec<(&'static str, Engine)> {
    let mut v = Vec::new();
    for i in [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon] {
        match Engine::new(i) {
            Ok(e) => v.push((i.name(), e)),
            Err(_) if isa::available().len() > 1 || i == Isa::Neon => {
                eprintln!("note: {} is not available on this CPU; not benchmarked", i.name())
            }
            Err(_) => {}
        }
    }
    v
}

/// Pseudo-random values spread over the quantizer's range and a little past it.
fn data(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            (u - 0.5) * 300.0 * SCALE
        })
        .collect()
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    n: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    if n > 1 << 20 {
        g.sampling_mode(SamplingMode::Flat);
    }
    g
}

fn quantize_tensor(c: &mut Criterion) {
    for (name, rule) in [("torch", Profile::TORCH.quantize), ("onnxruntime", Profile::ONNXRUNTIME.quantize)] {
        for n in SIZES {
            let mut g = group(c, &format!("quantize_i8_tensor_{name}"), n);
            let x = data(n);
            let p = QuantParams::per_tensor(SCALE, 3, QType::I8.full_range());
            let mut out = vec![0i8; n];
            for (isa, e) in engines() {
                g.bench_function(BenchmarkId::new(isa, n), |b| {
                    b.iter(|| e.quantize(black_box(&x), &[n], &p, rule, &mut out).unwrap())
                });
            }
            g.bench_function(BenchmarkId::new("reference", n), |b| {
                b.iter(|| refq::quantize(black_box(&x), &[n], &p, rule, &mut out).unwrap())
            });
            g.finish();
        }
    }
}

fn quantize_span(c: &mut Criterion) {
    let n = 1 << 16;
    for (name, rule) in [("torch", Profile::TORCH.quantize), ("onnxruntime", Profile::ONNXRUNTIME.quantize)] {
        let mut g = group(c, &format!("quantize_i8_span_{name}"), n);
        let x = data(n);
        let factor = match rule.scale_op {
            ScaleOp::Divide => SCALE,
            ScaleOp::MultiplyByReciprocal => 1.0 / SCALE,
        };
        let u = Uniform { scale: SCALE, factor, lo: -131.0, hi: 124.0, zero_point: 3 };
        let r = Rule { op: rule.scale_op, mode: rule.rounding };
        let mut out = vec![0i8; n];
        for (isa, e) in engines() {
            let k = e.kernels();
            g.bench_function(BenchmarkId::new(isa, n), |b| {
                b.iter(|| k.quantize_i8(black_box(&x), Params::Uniform(u), r, &mut out))
            });
        }
        g.finish();
    }
}

fn quantize_per_element(c: &mut Criterion) {
    let rule = Profile::TORCH.quantize;
    for n in SIZES {
        let mut g = group(c, "quantize_i8_per_element", n);
        let x = data(n);
        let shape = [n / 4, 4];
        let p = QuantParams::per_axis(1, vec![0.02, 0.015, 0.03, 0.01], vec![0, 1, -2, 3], QType::I8.full_range());
        let mut out = vec![0i8; n];
        for (isa, e) in engines() {
            g.bench_function(BenchmarkId::new(isa, n), |b| {
                b.iter(|| e.quantize(black_box(&x), &shape, &p, rule, &mut out).unwrap())
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| refq::quantize(black_box(&x), &shape, &p, rule, &mut out).unwrap())
        });
        g.finish();
    }
}

fn dequantize_tensor(c: &mut Criterion) {
    for n in SIZES {
        let mut g = group(c, "dequantize_i8_tensor", n);
        let q: Vec<i8> = data(n).iter().map(|v| (v / SCALE) as i8).collect();
        let p = QuantParams::per_tensor(SCALE, 3, QType::I8.full_range());
        let mut out = vec![0f32; n];
        for (isa, e) in engines() {
            g.bench_function(BenchmarkId::new(isa, n), |b| {
                b.iter(|| e.dequantize(black_box(&q), &[n], &p, &mut out).unwrap())
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| refq::dequantize(black_box(&q), &[n], &p, &mut out).unwrap())
        });
        g.finish();
    }
}

fn fake_quantize_tensor(c: &mut Criterion) {
    let rule = Profile::TORCH.quantize;
    for n in SIZES {
        let mut g = group(c, "fake_quantize_tensor", n);
        let x = data(n);
        let p = QuantParams::per_tensor(SCALE, 3, QType::I8.full_range());
        let mut out = vec![0f32; n];
        let mut mask = vec![false; n];
        for (isa, e) in engines() {
            g.bench_function(BenchmarkId::new(isa, n), |b| {
                b.iter(|| e.fake_quantize(black_box(&x), &[n], &p, rule, &mut out, Some(&mut mask)).unwrap())
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| refq::fake_quantize(black_box(&x), &[n], &p, rule, &mut out, Some(&mut mask)).unwrap())
        });
        g.finish();
    }
}

fn pack_nibbles(c: &mut Criterion) {
    for n in SIZES {
        let mut g = group(c, "pack_nibbles", n);
        let codes: Vec<i8> = data(n).iter().map(|v| ((v / SCALE) as i32).clamp(-8, 7) as i8).collect();
        let wide: Vec<i32> = codes.iter().map(|&c| c as i32).collect();
        let mut out = vec![0u8; n / 2];
        for (isa, e) in engines() {
            g.bench_function(BenchmarkId::new(isa, n), |b| {
                b.iter(|| e.kernels().pack_nibbles(black_box(&codes), &mut out))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| pack::pack4(black_box(&wide), Int4::Signed, &mut out).unwrap())
        });
        g.finish();
    }
}

fn min_max(c: &mut Criterion) {
    for n in SIZES {
        let mut g = group(c, "min_max", n);
        let x = data(n);
        for (isa, e) in engines() {
            g.bench_function(BenchmarkId::new(isa, n), |b| b.iter(|| e.min_max(black_box(&x)).unwrap()));
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| black_box(&x).iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v))))
        });
        g.finish();
    }
}

/// Every GEMM micro-kernel this CPU has on one 256^3 `u8 x s8` product, with full-range
/// activations and with 7-bit ones (`reduce_range`, where the checker lets `vpmaddubsw` run);
/// throughput in multiply-adds (`2 x` for GOPS).
fn gemm(c: &mut Criterion) {
    use quantproof_optimized::gemm::{gemm_u8s8, GemmKernel, PackedWeights};
    use quantproof_reference::gemm::{WeightLayout, ZeroPoints};
    let (m, n, k) = (256usize, 256usize, 256usize);
    let mut state = 0x9E37_79B9u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let b: Vec<i8> = (0..k * n).map(|_| next() as u8 as i8).collect();
    let w = PackedWeights::new(&b, ZeroPoints::PerTensor(0), WeightLayout::KxN, k, n).unwrap();
    for (label, mask) in [("u8", 0xFFu32), ("u7", 0x7F)] {
        let a: Vec<u8> = (0..m * k).map(|_| (next() & mask) as u8).collect();
        let mut g = c.benchmark_group(format!("gemm_{label}s8_256"));
        g.throughput(Throughput::Elements((m * n * k) as u64)).sampling_mode(SamplingMode::Flat);
        let mut out = vec![0i32; m * n];
        for kernel in GemmKernel::ALL.into_iter().filter(|k| k.is_available()) {
            g.bench_function(kernel.name(), |bch| {
                bch.iter(|| gemm_u8s8(black_box(&a), k, m, 0, &w, kernel, &mut out).unwrap())
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
}

criterion_group! {
    name = benches;
    config = config();
    targets = quantize_tensor, quantize_span, quantize_per_element, dequantize_tensor, fake_quantize_tensor, pack_nibbles, min_max, gemm
}
criterion_main!(benches);
