//! The calibration kernels of every available ISA against their specifications: the histogram
//! against the reference's numpy rule (`numpy_hist::counts`), the pairwise sum against
//! `numpy_hist::pairwise_sum_f32`, the KL terms against the scalar [`kl_term`], `abs_min`
//! against a fold. Adversarial inputs: values exactly on every edge and one ulp either side, the
//! outer edges, NaN, infinities, signed zeros, subnormals; every length through two histogram
//! blocks plus tails; logarithm arguments whose logarithm lies next to a float32 rounding
//! boundary (the fallback path) and a sweep of float32 bit patterns.

use crate::isa;
use crate::kernels::{self, kl_term, ln_f32, HistBins, HistogramOf, Kernels};
#[allow(unused_imports)] // used by the kernel tests of some ISAs only
use crate::kernels::{CalibrationKernels, ReduceKernels};
use quantproof_reference::calibrate::numpy_hist::{self, UniformBins};
use quantproof_reference::rng::Rng;

fn all() -> Vec<&'static dyn Kernels> {
    isa::available().into_iter().filter_map(kernels::table).collect()
}

use quantproof_reference::calibrate::numpy_hist::ADVERSARIAL_RANGES as RANGES;

/// Probes: every edge, its two neighbours, the outer edges' outsides, specials, then random
/// values inside and a little outside the range.
fn probes(b: &UniformBins, rng: &mut Rng) -> Vec<f32> {
    let mut v = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, f32::from_bits(1), -f32::from_bits(1)];
    for &e in b.edges() {
        v.extend([e, f32::next_up(e), f32::next_down(e), -e]);
    }
    let (lo, hi) = (b.first(), b.last());
    for _ in 0..300 {
        let t = (rng.unit() as f32) * 1.2 - 0.1;
        v.push(lo + (hi - lo) * t);
    }
    v
}

#[test]
fn hist_bins_reproduce_numpy_edges_and_indices() {
    let mut rng = Rng::new(7);
    for &(lo, hi, n) in RANGES {
        let b = UniformBins::new(lo, hi, n).unwrap();
        let h = HistBins::from_edges(b.first(), b.last(), b.edges()).expect("linspace edges are reproduced");
        for x in probes(&b, &mut rng) {
            assert_eq!(h.index(x) as usize, b.bin_index(x).unwrap_or(n), "x = {x:e} over [{lo}, {hi}] / {n}");
        }
    }
    // Edges that are not linspace's are refused (the engine then uses the reference's builder).
    assert!(HistBins::from_edges(0.0, 1.0, &[0.0, 0.3, 1.0]).is_none());
    assert!(HistBins::from_edges(0.0, 1.0, &[0.0]).is_none());
}

#[test]
fn histogram_matches_numpy_counts_on_every_isa() {
    let mut rng = Rng::new(11);
    for &(lo, hi, n) in RANGES {
        let b = UniformBins::new(lo, hi, n).unwrap();
        let h = HistBins::from_edges(b.first(), b.last(), b.edges()).unwrap();
        let mut data = probes(&b, &mut rng);
        while data.len() < 1200 {
            let more = probes(&b, &mut rng);
            data.extend(more);
        }
        // Lengths around the 256-element blocks and every vector tail.
        let lens: Vec<usize> = (0..40).chain([255, 256, 257, 511, 512, 513, 600, data.len()]).collect();
        for k in all() {
            for &len in &lens {
                for of in [HistogramOf::Values, HistogramOf::Magnitudes] {
                    let x = &data[..len.min(data.len())];
                    let want = if of == HistogramOf::Magnitudes {
                        let a: Vec<f32> = x.iter().map(|v| v.abs()).collect();
                        numpy_hist::counts(&a, &b)
                    } else {
                        numpy_hist::counts(x, &b)
                    };
                    let mut sub = vec![0u32; h.sub_len()];
                    k.histogram(x, &h, of, &mut sub);
                    let got: Vec<u64> = (0..n).map(|i| (0..4).map(|s| sub[s * (n + 1) + i] as u64).sum()).collect();
                    assert_eq!(got, want, "{} len {len} abs {of:?} over [{lo}, {hi}] / {n}", k.isa());
                }
            }
        }
    }
}

/// A dense sweep: every float32 bit pattern with a stride, over a wide symmetric range, so that
/// every exponent and many mantissas meet the index arithmetic.
#[test]
fn histogram_dense_sweep() {
    let b = UniformBins::new(-3.0e5, 3.0e5, 2048).unwrap();
    let h = HistBins::from_edges(b.first(), b.last(), b.edges()).unwrap();
    let stride = if cfg!(target_arch = "aarch64") { 0x3F1 } else { 0x41 };
    let x: Vec<f32> = (0..u32::MAX / stride).map(|i| f32::from_bits(i * stride)).collect();
    let want = numpy_hist::counts(&x, &b);
    for k in all() {
        let mut sub = vec![0u32; h.sub_len()];
        k.histogram(&x, &h, HistogramOf::Values, &mut sub);
        let got: Vec<u64> = (0..2048).map(|i| (0..4).map(|s| sub[s * 2049 + i] as u64).sum()).collect();
        assert_eq!(got, want, "{}", k.isa());
    }
}

#[test]
fn pairwise_sum_is_numpys_on_every_isa() {
    let mut rng = Rng::new(3);
    let data: Vec<f32> = (0..1100)
        .map(|i| {
            let m = ((rng.unit() as f32) - 0.5) * 2f32.powi((rng.next_u64() % 40) as i32 - 20);
            if i % 97 == 0 {
                1e30
            } else if i % 89 == 0 {
                -0.0
            } else {
                m
            }
        })
        .collect();
    for k in all() {
        for len in (0..300).chain([511, 512, 513, 1024, 1100]) {
            let a = &data[..len];
            let (got, want) = (k.pairwise_sum(a), numpy_hist::pairwise_sum_f32(a));
            assert_eq!(got.to_bits(), want.to_bits(), "{} len {len}", k.isa());
        }
        let inf = [1.0, f32::INFINITY, 2.0, -1.0, 0.5, 0.25, 3.0, 4.0, 5.0];
        assert_eq!(k.pairwise_sum(&inf), f32::INFINITY);
        assert!(k.pairwise_sum(&[f32::INFINITY, f32::NEG_INFINITY, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]).is_nan());
    }
}

/// Logarithm arguments whose float64 logarithm lies within a few ulps of a float32 rounding
/// boundary: where the SIMD kernels must fall back to the reference's expression.
fn near_boundary_arguments(want: usize) -> Vec<f32> {
    let mut out = Vec::new();
    let mut bits = 0x0080_0000u32;
    while out.len() < want && bits < 0x7f00_0000 {
        let a = f32::from_bits(bits);
        let y = (a as f64).ln().to_bits();
        let low = y & ((1 << 29) - 1);
        if low.abs_diff(1 << 28) < 2048 {
            out.push(a);
        }
        bits += 1 + (bits >> 17) % 7;
    }
    out
}

fn check_kl(k: &dyn Kernels, p: &[f32], q: &[f32], sp: f32, sq: f32) {
    let mut out = vec![f32::from_bits(0x7FC0_BEEF); p.len()];
    k.kl_terms(p, q, sp, sq, &mut out);
    for i in 0..p.len() {
        let want = kl_term(p[i], q[i], sp, sq);
        assert!(
            out[i].to_bits() == want.to_bits() || (out[i].is_nan() && want.is_nan()),
            "{}: p {:e} q {:e} sp {sp:e} sq {sq:e}: got {:e}, want {want:e}",
            k.isa(),
            p[i],
            q[i],
            out[i]
        );
    }
}

#[test]
fn kl_terms_match_the_reference_expression() {
    let near = near_boundary_arguments(if cfg!(target_arch = "aarch64") { 60 } else { 400 });
    assert!(near.len() >= 50, "found only {} near-boundary arguments", near.len());
    let mut rng = Rng::new(5);
    for k in all() {
        // a = p / 1 exactly: the near-boundary arguments themselves, in every lane position.
        for shift in 0..17 {
            let p: Vec<f32> = near.iter().cycle().skip(shift).take(near.len() + shift).copied().collect();
            let q = vec![1.0f32; p.len()];
            check_kl(k, &p, &q, 1.0, 1.0);
        }
        // Smoothed histograms as the entropy search builds them, and specials.
        for len in 0..70 {
            let p: Vec<f32> = (0..len)
                .map(|_| if rng.next_u64() % 3 == 0 { 1e-4 } else { (rng.next_u64() % 5000) as f32 - 0.37 })
                .collect();
            let q: Vec<f32> = (0..len)
                .map(|_| if rng.next_u64() % 4 == 0 { 1e-4 } else { (rng.next_u64() % 900) as f32 + 0.5 })
                .collect();
            let sp = numpy_hist::pairwise_sum_f32(&p).max(1.0);
            let sq = numpy_hist::pairwise_sum_f32(&q).max(1.0);
            check_kl(k, &p, &q, sp, sq);
        }
        let sp = [1.0, 3e-39, 1e38];
        let specials = [0.0, -0.0, 1e-45, 3e-39, 1.0, 1e38, 3e38, f32::INFINITY, -1.0, f32::NAN];
        for &s in &sp {
            let p: Vec<f32> = specials.iter().flat_map(|&a| specials.iter().map(move |_| a)).collect();
            let q: Vec<f32> = specials.iter().flat_map(|_| specials.iter().copied()).collect();
            check_kl(k, &p, &q, s, 1.0);
            check_kl(k, &q, &p, 1.0, s);
        }
    }
}

/// Every `stride`-th positive float32 as a logarithm argument (`p = a`, `q = 1`).
#[test]
fn kl_terms_sweep_of_arguments() {
    let stride = if cfg!(target_arch = "aarch64") { 0x1_0003 } else { 0x3f5 };
    let p: Vec<f32> = (1..0x7f80_0000u32 / stride).map(|i| f32::from_bits(i * stride)).collect();
    let q = vec![1.0f32; p.len()];
    for k in all() {
        let mut out = vec![0f32; p.len()];
        k.kl_terms(&p, &q, 1.0, 1.0, &mut out);
        for (i, (&o, &a)) in out.iter().zip(&p).enumerate() {
            assert_eq!(o.to_bits(), (a * ln_f32(a)).to_bits(), "{} a = {a:e} ({i})", k.isa());
        }
    }
}

#[test]
fn abs_min_is_a_fold() {
    let mut rng = Rng::new(9);
    let mut x: Vec<f32> = (0..300).map(|_| ((rng.unit() as f32) - 0.5) * 1e3).collect();
    x[77] = -0.001;
    x[200] = f32::NAN;
    x[201] = f32::NEG_INFINITY;
    for k in all() {
        for len in 0..x.len() {
            let s = &x[..len];
            let want = s.iter().filter(|v| !v.is_nan()).fold(f32::INFINITY, |m, v| m.min(v.abs()));
            let (got, nan) = k.abs_min(s);
            assert_eq!((got.to_bits(), nan), (want.to_bits(), s.iter().any(|v| v.is_nan())), "{} len {len}", k.isa());
        }
    }
}
