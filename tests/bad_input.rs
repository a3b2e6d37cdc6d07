//! Bad input, class by class (issue 11): every parameter outside its domain gets the specific
//! typed error on the reference and on every optimized engine (each available ISA level, 1 and 3
//! threads), never a panic, an abort, an unbounded allocation or an answer that depends on the
//! path. A proptest then draws parameters from far outside their domains.

use proptest::prelude::*;
use quantproof_optimized::{calibrate as fast_calib, isa, Engine};
use quantproof_reference::calibrate::modelopt::{fake_tensor_quant, AmaxMethod, HistBackend, HistogramCalibrator};
use quantproof_reference::calibrate::mse::{MseCalibrator, MseConfig};
use quantproof_reference::calibrate::onnxruntime::{CalibrateSpec, HistogramCollector};
use quantproof_reference::calibrate::tensorrt::{EntropyCalibrator, EntropyConfig};
use quantproof_reference::calibrate::torch::{HistogramObserver, MovingAverageMinMaxObserver};
use quantproof_reference::calibrate::Observer;
use quantproof_reference::choose_params::TorchObserverConfig;
use quantproof_reference::error::QuantError;
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize as refq;
use quantproof_reference::scheme::RangeReduction;
use quantproof_reference::scheme::Signedness;
use quantproof_reference::scheme::Symmetry;
use quantproof_reference::scheme::{CodeRange, QType};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Every engine: each available ISA level with 1 and 3 threads (splitting even small inputs).
fn engines() -> Vec<Engine> {
    let mut v = Vec::new();
    for i in isa::available() {
        for t in [1, 3] {
            if let Ok(e) = Engine::new(i) {
                v.push(e.with_threads(t).with_parallel_threshold(1));
            }
        }
    }
    v
}

/// Runs `f`, failing the test on a panic or when it takes longer than `limit`.
fn bounded<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: panicked"));
    assert!(t.elapsed() < limit, "{what}: took {:?}", t.elapsed());
    r
}

fn too_large<T: std::fmt::Debug>(what: &str, r: quantproof_reference::error::Result<T>) {
    match r {
        Err(QuantError::TooLarge { .. }) => {}
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

#[test]
fn code_ranges_wider_than_16_bits_are_refused() {
    for (lo, hi) in [(i32::MIN, i32::MAX), (-1, 65535), (-32769, 0), (0, 65536), (-(1 << 25), 1 << 25)] {
        let r = bounded("CodeRange::new", Duration::from_secs(1), || CodeRange::new(lo, hi));
        assert!(matches!(r, Err(QuantError::OutOfDomain { .. })), "[{lo}, {hi}]: {r:?}");
    }
    assert!(matches!(QType::parse("i17"), Err(QuantError::BitWidthOutOfRange { bits: 17 })));
    assert!(matches!(QType::parse("u1"), Err(QuantError::BitWidthOutOfRange { bits: 1 })));
}

#[test]
fn counts_have_limits_checked_before_any_allocation() {
    let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 100.0).collect();
    let secs = Duration::from_secs(5);
    // ONNX Runtime's calibrators: entropy is quadratic in the bins.
    for (spec, bins) in [
        (CalibrateSpec::entropy(), 1usize << 24),
        (CalibrateSpec::entropy(), usize::MAX),
        (CalibrateSpec::percentile(), usize::MAX),
        (CalibrateSpec::distribution(), 1 << 40),
    ] {
        let spec = CalibrateSpec { num_bins: bins, ..spec };
        too_large("HistogramCollector::new", bounded("ort", secs, || HistogramCollector::new(spec.clone())));
        for e in engines() {
            too_large("optimized one_collect", bounded("ort fast", secs, || fast_calib::one_collect(&e, &spec, &[&x])));
        }
    }
    let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
    for bins in [1usize << 15, 1 << 40, usize::MAX] {
        too_large("HistogramObserver::new", bounded("torch", secs, || HistogramObserver::new(cfg, bins)));
    }
    for num_bins in [1usize << 15, usize::MAX] {
        let c = EntropyConfig { num_bins, ..EntropyConfig::default() };
        too_large("TensorRT", bounded("trt", secs, || EntropyCalibrator::new(1.0, c)));
    }
    for (num_bins, num_candidates) in [(usize::MAX, 1), (1, usize::MAX), (1 << 20, 1 << 16)] {
        let c = MseConfig { num_bins, num_candidates, ..MseConfig::default() };
        too_large("MSE", bounded("mse", secs, || MseCalibrator::new(1.0, c)));
    }
    for backend in [HistBackend::Torch, HistBackend::Numpy] {
        let mut h = HistogramCalibrator::new(AmaxMethod::ENTROPY).with_bins(usize::MAX).with_backend(backend);
        too_large("modelopt bins", bounded("modelopt", secs, || h.collect(&x)));
    }
}

#[test]
fn ordinary_batches_of_very_different_widths_stay_small() {
    // 2,049 values near 1.0, then one value of 2048: the range grows by 2000x.
    let first: Vec<f32> = (0..2049).map(|i| 1.0 + i as f32 * 1e-6).collect();
    let second = [2048.0f32];
    let secs = Duration::from_secs(20);
    let mut c = HistogramCollector::new(CalibrateSpec { symmetry: Symmetry::Symmetric, ..CalibrateSpec::percentile() })
        .unwrap();
    bounded("percentile collector", secs, || {
        let r = c.observe(&first).and_then(|_| c.observe(&second));
        assert!(r.is_ok() || matches!(r, Err(QuantError::TooLarge { .. })), "{r:?}");
    });
    assert!(c.heap_bytes() < 1 << 30, "the collector holds {} bytes", c.heap_bytes());
    for backend in [HistBackend::Torch, HistBackend::Numpy] {
        let mut h = HistogramCalibrator::new(AmaxMethod::ENTROPY).with_backend(backend);
        bounded("modelopt", secs, || {
            let r = h.collect(&first).and_then(|_| h.collect(&second));
            assert!(r.is_ok() || matches!(r, Err(QuantError::TooLarge { .. })), "{backend:?}: {r:?}");
            let amax = h.compute_amax(AmaxMethod::ENTROPY);
            assert!(amax.is_ok() || matches!(amax, Err(QuantError::TooLarge { .. })), "{backend:?}: {amax:?}");
        });
        assert!(h.heap_bytes() < 1 << 30, "{backend:?}: {} bytes", h.heap_bytes());
    }
}

#[test]
fn constants_outside_their_domain_are_refused() {
    let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
    for c in [0.0, -0.5, 1.5, 1e30, f64::NAN, f64::INFINITY] {
        let r = MovingAverageMinMaxObserver::new(cfg, c);
        assert!(matches!(r, Err(QuantError::OutOfDomain { what: "averaging_constant", .. })), "{c}: {r:?}");
    }
    // A signed 1-bit quantizer has no non-zero code: an error, not NaN.
    assert!(matches!(
        fake_tensor_quant(0.5, 1.0, 1, Signedness::Signed),
        Err(QuantError::BitWidthOutOfRange { bits: 1 })
    ));
    assert!(fake_tensor_quant(0.5, 1.0, 1, Signedness::Unsigned).is_ok_and(|v| v.is_finite()));
}

#[test]
fn huge_values_give_a_range_that_holds_the_data_or_an_error() {
    let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
    let mut o = HistogramObserver::new(cfg, 2048).unwrap();
    let x: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) * 1e15).collect();
    bounded("histogram observer at 1e18", Duration::from_secs(20), || {
        o.observe(&x).unwrap();
        match o.range() {
            Ok(r) => {
                // The search may clip outliers, never most of the data.
                let inside = x.iter().filter(|&&v| v >= r.min && v <= r.max).count();
                assert!(inside * 2 > x.len(), "range [{}, {}] holds {inside} of {}", r.min, r.max, x.len());
            }
            Err(e) => panic!("{e:?}"),
        }
    });
}

#[test]
fn nan_and_inf_get_the_same_error_on_every_path() {
    let p = QuantParams::per_tensor(0.1, 0, QType::I8.full_range());
    let mut x = vec![0.5f32; 100];
    x[37] = f32::NAN;
    let mut q = vec![0i8; 100];
    let want = refq::quantize(&x, &[100], &p, Profile::ONNXRUNTIME.quantize, &mut q).unwrap_err();
    assert_eq!(want, QuantError::NanInput { what: "x", index: 37 });
    for e in engines() {
        let got = e.quantize(&x, &[100], &p, Profile::ONNXRUNTIME.quantize, &mut q).unwrap_err();
        assert_eq!(got, want, "{} x{}", e.isa().name(), e.threads());
        assert!(e.min_max(&x).is_err());
    }
    for s in [f32::NAN, f32::INFINITY, 0.0, -1.0, f32::MIN_POSITIVE / 4.0] {
        let p = QuantParams::per_tensor(s, 0, QType::I8.full_range());
        for rule in [Profile::ONNXRUNTIME.quantize, Profile::TORCH.quantize] {
            let mut want_q = [0i8; 1];
            let want = refq::quantize(&[1.0], &[1], &p, rule, &mut want_q);
            assert!(s > 0.0 && s.is_finite() || want.is_err(), "scale {s} accepted");
            for e in engines() {
                let mut got_q = [0i8; 1];
                let got = e.quantize(&[1.0], &[1], &p, rule, &mut got_q);
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "scale {s}");
                assert_eq!(got_q, want_q, "scale {s}");
            }
        }
    }
}

#[test]
fn data_too_wide_for_a_scale_is_named_as_the_data_range() {
    // The user gave no scale: the error must not blame "scale[0]".
    let x = [-3.4e38f32, 3.4e38];
    let mut out = [0u8; 2];
    for p in [Profile::ONNXRUNTIME, Profile::QUANTPROOF] {
        let want = p.dynamic_quantize(&x, &mut out).unwrap_err();
        assert!(matches!(&want, QuantError::InvalidArgument { what: "data range", .. }), "{}: {want:?}", p.name);
        assert!(want.to_string().contains("too wide"), "{want}");
        for e in engines() {
            let got = e.dynamic_quantize(&p, &x, &mut out).unwrap_err();
            assert_eq!(got, want, "{} on {}", p.name, e.isa().name());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Parameters drawn over whole i32 / f32 ranges: a typed error or the reference's exact
    /// answer, the same on every path.
    #[test]
    fn out_of_domain_parameters_agree_on_every_path(
        qmin in any::<i32>(), qmax in any::<i32>(), zp in any::<i32>(),
        scale_bits in any::<u32>(), x in proptest::collection::vec(any::<u32>(), 0..40),
    ) {
        let Ok(range) = CodeRange::new(qmin.min(qmax), qmin.max(qmax)) else { return Ok(()); };
        let scale = f32::from_bits(scale_bits);
        let x: Vec<f32> = x.into_iter().map(f32::from_bits).collect();
        let p = QuantParams::per_tensor(scale, zp, range);
        let rule = Profile::TORCH.quantize;
        let mut want = vec![0f32; x.len()];
        let want_r = catch_unwind(AssertUnwindSafe(|| refq::fake_quantize(&x, &[x.len()], &p, rule, &mut want, None)));
        prop_assert!(want_r.is_ok(), "the reference panicked");
        let want_r = want_r.unwrap();
        for e in engines() {
            let mut got = vec![0f32; x.len()];
            let got_r = catch_unwind(AssertUnwindSafe(|| e.fake_quantize(&x, &[x.len()], &p, rule, &mut got, None)));
            prop_assert!(got_r.is_ok(), "{} panicked", e.isa().name());
            let got_r = got_r.unwrap();
            prop_assert_eq!(&got_r, &want_r, "{}", e.isa().name());
            if want_r.is_ok() {
                let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same, "{}: {:?} vs {:?}", e.isa().name(), got, want);
            }
        }
    }
}
