//! The calibrators against golden vectors recorded from ONNX Runtime 1.32, and their properties:
//! exact merges, monotone percentiles, bounded memory, numpy's binning rule.

use proptest::prelude::*;
use quantproof_harness::vectors::ops::calib::{calibrate_spec, run_calibrate as run_calibrate_with, CollectCalls};
use quantproof_reference::calibrate::numpy_hist::{self, UniformBins};
use quantproof_reference::calibrate::onnxruntime::{
    self as ort, CalibrateResult, CalibrateSpec, HistogramCollector, Method, RangePass,
};
use quantproof_reference::calibrate::{aciq, modelopt, mse, tensorrt, NonFinitePolicy, Observer, Range};
use quantproof_reference::rng::Rng;
use quantproof_reference::scheme::Symmetry;
use quantproof_reference::QuantError;
use serde_json::Value;

/// All batches in one `collect` call.
fn run_calibrate_one(spec: &CalibrateSpec, batches: &[&[f32]]) -> Result<CalibrateResult, QuantError> {
    run_calibrate_with(spec, CollectCalls::One, batches)
}

// ---------------------------------------------------------------------------------------------
// Golden vectors
// ---------------------------------------------------------------------------------------------

struct Case {
    name: String,
    spec: CalibrateSpec,
    collect: CollectCalls,
    batches: Vec<Vec<f32>>,
    expected: Vec<(String, f64)>,
    abs: f64,
    rel: f64,
}

fn load(rel_path: &str) -> Vec<Case> {
    let path = format!("{}/../{rel_path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| parse(&serde_json::from_str(l).unwrap())).collect()
}

fn parse(v: &Value) -> Case {
    assert_eq!(v["format"], "quant-vectors/1");
    assert_eq!(v["op"], "calibrate");
    assert_eq!(v["profile"], "onnxruntime");
    let a = &v["attrs"];
    let (spec, collect) = calibrate_spec(
        a["method"].as_str().unwrap(),
        a["symmetric"].as_bool().unwrap(),
        a["num_bins"].as_u64().unwrap() as usize,
        a["num_quantized_bins"].as_u64().unwrap() as usize,
        a["percentile"].as_f64().unwrap(),
        a["scenario"].as_str().unwrap(),
        a.get("collect").and_then(Value::as_str),
    )
    .unwrap();
    let inputs = v["inputs"].as_object().unwrap();
    let batches = (0..inputs.len())
        .map(|i| {
            let t = &inputs[&format!("batch{i}")];
            assert_eq!(t["dtype"], "f32");
            t["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect();
    let expected =
        v["outputs"].as_object().unwrap().iter().map(|(k, t)| (k.clone(), t["data"][0].as_f64().unwrap())).collect();
    let tol = &v["tolerance"];
    Case {
        name: v["name"].as_str().unwrap().to_string(),
        spec,
        collect,
        batches,
        expected,
        abs: tol.get("abs").and_then(Value::as_f64).unwrap_or(0.0),
        rel: tol.get("rel").and_then(Value::as_f64).unwrap_or(0.0),
    }
}

fn output(r: &CalibrateResult, name: &str) -> f64 {
    match (r, name) {
        (CalibrateResult::Range { min, .. }, "min") => *min as f64,
        (CalibrateResult::Range { max, .. }, "max") => *max as f64,
        (CalibrateResult::Distribution { avg, .. }, "avg") => *avg as f64,
        (CalibrateResult::Distribution { std, .. }, "std") => *std as f64,
        _ => panic!("output {name} of {r:?}"),
    }
}

fn refs(batches: &[Vec<f32>]) -> Vec<&[f32]> {
    batches.iter().map(|b| b.as_slice()).collect()
}

/// Runs every case; returns (passed within tolerance, bit-exact) and panics listing failures.
fn replay(file: &str, min_cases: usize) -> (usize, usize) {
    let cases = load(file);
    assert!(cases.len() >= min_cases, "{file}: {} cases", cases.len());
    let (mut exact, mut failures) = (0, Vec::new());
    for c in &cases {
        let r = run_calibrate_with(&c.spec, c.collect, &refs(&c.batches)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let mut all_exact = true;
        for (k, want) in &c.expected {
            let got = output(&r, k);
            if (got - want).abs() > c.abs + c.rel * want.abs() {
                failures.push(format!("{}: {k} = {got}, expected {want}", c.name));
            }
            if got != *want {
                eprintln!("{file} {}: {k} = {got:e}, expected {want:e} (rel {:e})", c.name, (got - want) / want);
            }
            all_exact &= got == *want;
        }
        exact += all_exact as usize;
    }
    assert!(failures.is_empty(), "{file}: {} of {} cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
    (cases.len(), exact)
}

#[test]
fn golden_onnxruntime_calibrate() {
    let (n, exact) = replay("tests/vectors/onnxruntime/calibrate.jsonl", 12);
    assert_eq!(n, 12);
    // every output is reproduced bit for bit, not just within the tolerance
    assert_eq!(exact, n);
}

#[test]
fn extra_onnxruntime_calibrate_one_collect() {
    let (n, exact) = replay("tests/vectors-extra/onnxruntime/calibrate_extra.jsonl", 50);
    assert_eq!(exact, n);
}

#[test]
fn extra_onnxruntime_calibrate_per_batch_collect() {
    let (n, exact) = replay("tests/vectors-extra/onnxruntime/calibrate_multi_collect.jsonl", 10);
    assert_eq!(exact, n);
}

/// The exact streaming mode (range pass, then fixed bins) equals ONNX Runtime's single collect
/// call over the concatenated batches, on every one-call golden case.
#[test]
fn streaming_equals_one_collect_call() {
    for file in ["tests/vectors/onnxruntime/calibrate.jsonl", "tests/vectors-extra/onnxruntime/calibrate_extra.jsonl"] {
        for c in load(file) {
            assert_eq!(c.collect, CollectCalls::One);
            let batches = refs(&c.batches);
            let mut compat = HistogramCollector::new(c.spec).unwrap();
            compat.collect_list(&batches).unwrap();
            let mut first = RangePass::default();
            batches.iter().for_each(|b| first.observe(b).unwrap());
            let mut streaming = HistogramCollector::streaming(c.spec, &first).unwrap();
            batches.iter().for_each(|b| streaming.observe(b).unwrap());
            assert_eq!(compat.histogram(), streaming.histogram(), "{}", c.name);
            assert_eq!(compat.result().unwrap(), streaming.result().unwrap(), "{}", c.name);
        }
    }
}

/// Streaming collectors merged shard by shard (in any grouping) give the sequential result.
#[test]
fn streaming_merge_equals_sequential_on_golden_data() {
    for c in load("tests/vectors/onnxruntime/calibrate.jsonl") {
        let all: Vec<f32> = c.batches.concat();
        let mut first = RangePass::default();
        for shard in all.chunks(777) {
            let mut part = RangePass::default();
            part.observe(shard).unwrap();
            first.merge(&part).unwrap();
        }
        let empty = HistogramCollector::streaming(c.spec, &first).unwrap();
        let mut merged = empty.clone();
        for shard in all.chunks(1234).rev() {
            let mut part = empty.clone();
            part.observe(shard).unwrap();
            merged.merge(&part).unwrap();
        }
        let mut sequential = empty.clone();
        sequential.observe(&all).unwrap();
        assert_eq!(merged.result().unwrap(), sequential.result().unwrap(), "{}", c.name);
        let want = run_calibrate_with(&c.spec, c.collect, &refs(&c.batches)).unwrap();
        assert_eq!(merged.result().unwrap(), want, "{}", c.name);
    }
}

#[test]
fn ort_collect_rejects_ragged_lists_and_nonfinite() {
    let spec = CalibrateSpec::entropy();
    let e = run_calibrate_one(&spec, &[&[1.0, 2.0], &[3.0]]).unwrap_err();
    assert!(matches!(e, QuantError::LengthMismatch { .. }));
    let e = run_calibrate_one(&spec, &[&[1.0, f32::INFINITY]]).unwrap_err();
    assert!(matches!(e, QuantError::NonFinite { index: 1, .. }));
    let mut c = HistogramCollector::new(spec).unwrap().with_policy(NonFinitePolicy::Skip);
    c.observe(&[1.0, f32::NAN, -4.0, f32::NEG_INFINITY]).unwrap();
    assert_eq!(c.result().unwrap(), CalibrateResult::Range { min: -4.0, max: 1.0 });
    // distribution needs 512 bins; percentile must be in [0, 100]
    assert!(calibrate_spec("distribution", false, 128, 128, 99.0, "same", None).is_err());
    assert!(calibrate_spec("percentile", true, 128, 128, 100.5, "same", None).is_err());
    assert!(calibrate_spec("minmax", true, 128, 128, 99.0, "same", None).is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Deterministic pseudo-random data of a few shapes (normal-ish, skewed, with zeros).
fn data(seed: u64, n: usize, shape: u8) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let u = rng.open_unit();
            let v = match shape % 4 {
                0 => (u / (1.0 - u)).ln(),  // logistic
                1 => -(1.0 - u).ln() * 3.0, // exponential, positive
                2 => {
                    if u < 0.3 {
                        0.0
                    } else {
                        (u - 0.3) * 10.0
                    }
                } // ReLU-like with zeros
                _ => (u - 0.5).powi(3) * 1000.0, // heavy centre, wide tails
            };
            v as f32
        })
        .collect()
}

fn range_of(r: CalibrateResult) -> (f32, f32) {
    match r {
        CalibrateResult::Range { min, max } => (min, max),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A higher percentile never gives a narrower range (ORT symmetric and not, modelopt).
    #[test]
    fn higher_percentile_never_narrower(seed in any::<u64>(), shape in 0u8..4, n in 1usize..3000,
                                        p1 in 0.0f64..100.0, dp in 0.0f64..10.0, sym in any::<bool>()) {
        let x = data(seed, n, shape);
        let p2 = (p1 + dp).min(100.0);
        let mut spec = CalibrateSpec::percentile();
        spec.symmetry = Symmetry::symmetric_if(sym);
        spec.num_bins = 512;
        let at = |p: f64| { let mut s = spec; s.percentile = p; range_of(run_calibrate_one(&s, &[&x]).unwrap()) };
        let (lo1, hi1) = at(p1);
        let (lo2, hi2) = at(p2);
        prop_assert!(lo2 <= lo1 && hi2 >= hi1, "p {p1} -> ({lo1}, {hi1}), p {p2} -> ({lo2}, {hi2})");

        let mut h = modelopt::HistogramCalibrator::new(modelopt::AmaxMethod::PERCENTILE).with_bins(512);
        h.observe(&x).unwrap();
        let a1 = h.compute_amax(modelopt::AmaxMethod::Percentile { percentile: p1 }).unwrap();
        let a2 = h.compute_amax(modelopt::AmaxMethod::Percentile { percentile: p2 }).unwrap();
        prop_assert!(a2 >= a1);
    }

    /// Streaming ORT collectors: any split into shards, merged in any order, equals one pass, and
    /// equals ONNX Runtime's single collect over the concatenation, for every method.
    #[test]
    fn ort_streaming_merge_is_exact(seed in any::<u64>(), shape in 0u8..4, n in 0usize..2500,
                                    cuts in proptest::collection::vec(0usize..2500, 0..5), method in 0u8..4) {
        let x = data(seed, n, shape);
        let mut spec = match method {
            0 => CalibrateSpec { num_bins: 1024, ..CalibrateSpec::entropy() },
            1 => CalibrateSpec::percentile(),
            2 => CalibrateSpec { symmetry: Symmetry::Affine, ..CalibrateSpec::percentile() },
            _ => CalibrateSpec::distribution(),
        };
        spec.num_quantized_bins = 128;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).collect();
        cuts.push(0);
        cuts.push(n);
        cuts.sort();
        let shards: Vec<&[f32]> = cuts.windows(2).map(|w| &x[w[0]..w[1]]).collect();

        let mut first = RangePass::default();
        for s in shards.iter().rev() {
            let mut p = RangePass::default();
            p.observe(s).unwrap();
            first.merge(&p).unwrap();
        }
        let empty = HistogramCollector::streaming(spec, &first).unwrap();
        let mut merged = empty.clone();
        for s in shards.iter().rev() {
            let mut p = empty.clone();
            p.observe(s).unwrap();
            merged.merge(&p).unwrap();
        }
        let mut compat = HistogramCollector::new(spec).unwrap();
        compat.observe(&x).unwrap();
        prop_assert_eq!(merged.histogram(), compat.histogram());
        let (a, b) = (merged.result(), compat.result());
        match (a, b) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
        }
    }

    /// Fixed-range calibrators (TensorRT, MSE, modelopt with a fixed amax, MaxCalibrator) merge
    /// exactly.
    #[test]
    fn fixed_range_calibrators_merge_exactly(seed in any::<u64>(), shape in 0u8..4, n in 1usize..2000,
                                             cut in 0usize..2000) {
        let x = data(seed, n, shape);
        let cut = cut.min(n);
        let (a, b) = x.split_at(cut);
        let mut max = modelopt::MaxCalibrator::default();
        let mut max_b = modelopt::MaxCalibrator::default();
        max.observe(a).unwrap();
        max_b.observe(b).unwrap();
        max.merge(&max_b).unwrap();
        let amax = max.amax().unwrap();
        prop_assert_eq!(amax, x.iter().fold(0f32, |m, v| m.max(v.abs())));

        fn check<O: Observer + Clone>(empty: O, a: &[f32], b: &[f32], all: &[f32]) -> Result<(), TestCaseError> {
            let (mut pa, mut pb, mut seq) = (empty.clone(), empty.clone(), empty);
            pa.observe(a).unwrap();
            pb.observe(b).unwrap();
            pb.merge(&pa).unwrap();
            seq.observe(all).unwrap();
            prop_assert_eq!(pb.range().unwrap(), seq.range().unwrap());
            Ok(())
        }
        check(tensorrt::EntropyCalibrator::new(amax, tensorrt::EntropyConfig::default()).unwrap(), a, b, &x)?;
        check(mse::MseCalibrator::new(amax, mse::MseConfig { num_bins: 512, num_candidates: 64, ..Default::default() }).unwrap(), a, b, &x)?;
        for method in [modelopt::AmaxMethod::ENTROPY, modelopt::AmaxMethod::MSE, modelopt::AmaxMethod::PERCENTILE] {
            let h = modelopt::HistogramCalibrator::new(method).with_bins(512).with_fixed_amax(amax);
            check(h, a, b, &x)?;
        }
        // the fixed-amax histogram is what the first collect of all the data builds
        let mut fixed = modelopt::HistogramCalibrator::new(modelopt::AmaxMethod::ENTROPY).with_bins(512).with_fixed_amax(amax);
        let mut grown = modelopt::HistogramCalibrator::new(modelopt::AmaxMethod::ENTROPY).with_bins(512);
        fixed.observe(&x).unwrap();
        grown.observe(&x).unwrap();
        prop_assert_eq!(fixed.histogram(), grown.histogram());
    }

    /// numpy's binning rule equals the definition (the bin whose half-open interval holds x, the
    /// last bin closed) on values at, just above and just below every edge, and random values.
    #[test]
    fn numpy_rule_equals_brute_force(lo in -1e6f32..1e6, width in 1e-3f32..1e6, n in 1usize..4096,
                                     scale in -30i32..30, probes in proptest::collection::vec(any::<f32>(), 64)) {
        let k = 2f32.powi(scale);
        let (lo, hi) = (lo * k, (lo + width) * k);
        let Ok(bins) = UniformBins::new(lo, hi, n) else { return Ok(()) };
        let e = bins.edges();
        let brute = |x: f32| -> Option<usize> {
            if !(x >= e[0] && x <= e[n]) { return None; }
            let i = e.partition_point(|&v| v <= x) - 1;
            Some(i.min(n - 1))
        };
        let mut xs: Vec<f32> = probes;
        for &v in e.iter().step_by((n / 64).max(1)).chain(e.iter().rev().take(3)) {
            xs.extend([v, f32::from_bits(v.to_bits().wrapping_add(1)), f32::from_bits(v.to_bits().wrapping_sub(1))]);
            xs.push(-v);
        }
        for &x in &xs {
            prop_assert_eq!(bins.bin_index(x), brute(x), "x = {:e} over [{:e}, {:e}] / {}", x, lo, hi, n);
        }
        let c = numpy_hist::counts(&xs, &bins);
        prop_assert_eq!(c.iter().sum::<u64>() as usize, xs.iter().filter(|x| brute(**x).is_some()).count());
    }
}

/// Memory is the bins, never the data: thousands of batches leave the state the same size.
#[test]
fn memory_is_bounded_by_bins() {
    let batches: Vec<Vec<f32>> = (0..300).map(|i| data(i, 1000, (i % 4) as u8)).collect();
    let mut first = RangePass::default();
    batches.iter().for_each(|b| first.observe(b).unwrap());
    let mut streaming = HistogramCollector::streaming(CalibrateSpec::percentile(), &first).unwrap();
    streaming.observe(&batches[0]).unwrap();
    let after_one = streaming.heap_bytes();
    batches.iter().for_each(|b| streaming.observe(b).unwrap());
    assert_eq!(streaming.heap_bytes(), after_one);
    assert_eq!(after_one, 2048 * 8 + 2049 * 4);

    // compatible mode: the bins grow with the range only, not with the data
    let mut compat =
        HistogramCollector::new(CalibrateSpec { num_bins: 2048, num_quantized_bins: 128, ..CalibrateSpec::entropy() })
            .unwrap();
    let widest = batches.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    compat.observe(&[-widest, widest]).unwrap();
    let size = compat.heap_bytes();
    batches.iter().for_each(|b| compat.observe(b).unwrap());
    assert_eq!(compat.heap_bytes(), size);

    let mut h = modelopt::HistogramCalibrator::new(modelopt::AmaxMethod::ENTROPY).with_fixed_amax(widest);
    h.observe(&batches[0]).unwrap();
    let size = h.heap_bytes();
    batches.iter().for_each(|b| h.observe(b).unwrap());
    assert_eq!(h.heap_bytes(), size);
}

#[test]
fn ort_compatible_mode_is_order_dependent() {
    // the same data split differently: ONNX Runtime's re-binning gives different histograms
    let x = data(7, 3000, 0);
    let mut spec = CalibrateSpec::entropy();
    spec.num_bins = 2048;
    let (small, large): (Vec<f32>, Vec<f32>) = x.iter().partition(|v| v.abs() < 2.0);
    let mut a = HistogramCollector::new(spec).unwrap();
    a.observe(&small).unwrap();
    a.observe(&large).unwrap();
    let mut b = HistogramCollector::new(spec).unwrap();
    b.observe(&large).unwrap();
    b.observe(&small).unwrap();
    assert_ne!(a.histogram(), b.histogram());
    assert!(matches!(a.merge(&b), Err(QuantError::Unsupported { .. })));
}

#[test]
fn percentile_symmetric_is_clamped_to_observed_values() {
    // all positive data: the symmetric range is cut at the observed minimum
    let x: Vec<f32> = (1..=1000).map(|i| i as f32 * 0.01).collect();
    let r = run_calibrate_one(&CalibrateSpec::percentile(), &[&x]).unwrap();
    assert_eq!(range_of(r).0, 0.01);
}

#[test]
fn ort_entropy_defaults_give_min_max_on_every_shape() {
    for shape in 0..4 {
        let x = data(11, 4000, shape);
        let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let r = run_calibrate_one(&CalibrateSpec::entropy(), &[&x]).unwrap();
        assert_eq!(r, CalibrateResult::Range { min: lo, max: hi });
    }
}

#[test]
fn method_names_round_trip() {
    for m in [Method::Entropy, Method::Percentile, Method::Distribution] {
        assert_eq!(Method::parse(m.name()).unwrap(), m);
    }
    let _ = ort::SMOOTH_EPS;
}

#[test]
fn modelopt_entropy_ignores_the_zero_bin() {
    // ReLU output: 60% zeros. Without bins[0] = bins[1] the zero spike dominates the divergence.
    let mut x = vec![0f32; 6000];
    x.extend(data(3, 4000, 1));
    let mut h = modelopt::HistogramCalibrator::new(modelopt::AmaxMethod::ENTROPY);
    h.observe(&x).unwrap();
    let (counts, edges) = h.histogram().unwrap();
    assert!(counts[0] >= 6000 && counts[0] > 20 * counts[1]);
    let amax = h.compute_amax(modelopt::AmaxMethod::ENTROPY).unwrap();
    let top = *edges.last().unwrap() as f32;
    assert!(amax > 0.0 && amax <= top);
    let r = h.range().unwrap();
    assert_eq!(r, Range { min: -amax, max: amax });
}

#[test]
fn tensorrt_and_aciq_on_gaussian_like_data() {
    let x = data(5, 50_000, 0);
    let r = tensorrt::calibrate(&[&x], tensorrt::EntropyConfig::default(), NonFinitePolicy::Error).unwrap();
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(r.max > 0.0 && r.max < amax, "{r:?} amax {amax}");
    let g = aciq::calibrate(aciq::Prior::Gaussian, 8, &[&x], NonFinitePolicy::Error).unwrap();
    let l = aciq::calibrate(aciq::Prior::Laplace, 8, &[&x], NonFinitePolicy::Error).unwrap();
    assert!(g.max > 0.0 && l.max > 0.0 && g.min < 0.0);
    // merging ACIQ observers agrees with one pass to float64 rounding
    let mut a = aciq::AciqObserver::new(aciq::Prior::Laplace, 4).unwrap();
    let mut b = a.clone();
    let mut one = a.clone();
    a.observe(&x[..12345]).unwrap();
    b.observe(&x[12345..]).unwrap();
    a.merge(&b).unwrap();
    one.observe(&x).unwrap();
    assert!((a.mean().unwrap() - one.mean().unwrap()).abs() < 1e-12);
    for o in [&mut a, &mut one] {
        o.begin_second_pass().unwrap();
    }
    let mut b2 = a.clone();
    a.observe(&x[..777]).unwrap();
    b2.observe(&x[777..]).unwrap();
    a.merge(&b2).unwrap();
    one.observe(&x).unwrap();
    assert!((a.scale().unwrap() - one.scale().unwrap()).abs() < 1e-12 * one.scale().unwrap());
}
