//! Calibration workloads: ONNX Runtime's histogram calibrators end to end, the histogram alone,
//! and `max |x|`.
//!
//! | op | what runs | checked against | ONNX Runtime (`--with-ort`) |
//! |---|---|---|---|
//! | `calibrate-entropy` | min/max pass, histogram, entropy search (`--bins`, 128 quantized bins) | the reference's collectors (`vectors::ops::calib::run_calibrate`), bit for bit | `HistogramCollector(method="entropy")`: collect + compute |
//! | `calibrate-percentile` | min/max and min \|x\| passes, \|x\| histogram, percentile 99.999 (symmetric) | the same | `HistogramCollector(method="percentile", symmetric=True)` |
//! | `calibrate-distribution` | min/max pass, histogram, weighted mean and deviation | the same | `HistogramCollector(method="distribution")` |
//! | `histogram` | numpy's bin counts over `[-t, t]`, `t = max(|min|, |max|)` (the entropy calibrator's bins) | `numpy_hist::counts` | `HistogramCollector(method="distribution")`, whose collect is exactly this (`np.histogram` plus min/max) and whose compute is `O(bins)` |
//! | `abs-max` | `max |x|` | a fold | none |
//!
//! The input is `size` standard-normal float32 values (seeded), the data issue 3 measures.

use super::data::normal_f32;
use super::{Path, Setup, Workload};
use crate::ort::Collector;
use crate::vectors::ops::calib::{run_calibrate, run_calibrate_on, CollectCalls};
use quantproof_optimized::HistogramOf;
use quantproof_reference::calibrate::numpy_hist::{self, UniformBins};
use quantproof_reference::calibrate::onnxruntime::{CalibrateResult, CalibrateSpec, Method};
use quantproof_reference::error::QuantError;
use serde_json::json;

type Result<T> = std::result::Result<T, QuantError>;

/// Quantized bins of the entropy benchmark (issue 3: 2048 bins, 128 quantized bins).
pub const QUANTIZED_BINS: usize = 128;

fn result_bits(r: &CalibrateResult) -> Vec<u32> {
    match *r {
        CalibrateResult::Range { min, max } => vec![min.to_bits(), max.to_bits()],
        CalibrateResult::Distribution { avg, std, lowest, highest } => {
            vec![avg.to_bits(), std.to_bits(), lowest.to_bits(), highest.to_bits()]
        }
    }
}

fn result_json(r: &CalibrateResult) -> serde_json::Value {
    match *r {
        CalibrateResult::Range { min, max } => json!({"low": min, "high": max}),
        CalibrateResult::Distribution { avg, std, lowest, highest } => {
            json!({"avg": avg, "std": std, "lowest": lowest, "highest": highest})
        }
    }
}

/// The calibrator spec of a setup.
pub fn spec_for(method: Method, bins: usize) -> CalibrateSpec {
    let mut s = match method {
        Method::Entropy => CalibrateSpec::entropy(),
        Method::Percentile => CalibrateSpec::percentile(),
        Method::Distribution => CalibrateSpec::distribution(),
    };
    s.num_bins = bins;
    if method == Method::Entropy {
        s.num_quantized_bins = QUANTIZED_BINS;
    }
    s
}

struct Calibrate {
    spec: CalibrateSpec,
    x: Vec<f32>,
    got: Option<CalibrateResult>,
    expected: CalibrateResult,
}

fn build(setup: &Setup, method: Method) -> Result<Box<dyn Workload>> {
    let spec = spec_for(method, setup.bins);
    spec.validate()?;
    let x = normal_f32(setup.size, setup.seed);
    let expected = run_calibrate(&spec, CollectCalls::One, &[&x])?;
    Ok(Box::new(Calibrate { spec, x, got: None, expected }))
}

pub fn build_entropy(setup: &Setup) -> Result<Box<dyn Workload>> {
    build(setup, Method::Entropy)
}

pub fn build_percentile(setup: &Setup) -> Result<Box<dyn Workload>> {
    build(setup, Method::Percentile)
}

pub fn build_distribution(setup: &Setup) -> Result<Box<dyn Workload>> {
    build(setup, Method::Distribution)
}

impl Workload for Calibrate {
    fn run(&mut self, imp: &Path) -> Result<()> {
        self.got = Some(match imp {
            Path::Reference => run_calibrate(&self.spec, CollectCalls::One, &[&self.x])?,
            Path::Optimized(e) => run_calibrate_on(e, &self.spec, CollectCalls::One, &[&self.x])?,
        });
        Ok(())
    }
    fn scramble(&mut self) {
        self.got = None;
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match &self.got {
            Some(g) if result_bits(g) == result_bits(&self.expected) => Ok(()),
            got => Err(format!("got {got:?}, want {:?}", self.expected)),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        4.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"method": self.spec.method.name(), "num_bins": self.spec.num_bins,
               "num_quantized_bins": self.spec.num_quantized_bins, "percentile": self.spec.percentile,
               "symmetric": self.spec.symmetry.is_symmetric(), "result": result_json(&self.expected),
               "timed": "min/max pass + histogram + compute_collection_result"})
    }
    fn ort_collector(&self) -> Option<(Collector, &[f32])> {
        let c = Collector {
            method: self.spec.method.name(),
            bins: self.spec.num_bins,
            quantized_bins: self.spec.num_quantized_bins,
            percentile: self.spec.percentile,
            symmetric: self.spec.symmetry.is_symmetric(),
        };
        Some((c, &self.x))
    }
}

struct Histogram {
    x: Vec<f32>,
    bins: UniformBins,
    counts: Vec<u64>,
    expected: Vec<u64>,
}

pub fn build_histogram(setup: &Setup) -> Result<Box<dyn Workload>> {
    let x = normal_f32(setup.size, setup.seed);
    let (lo, hi) = quantproof_reference::profile::min_max(&x)?;
    let t = lo.abs().max(hi.abs());
    let bins = UniformBins::new(-t, t, setup.bins)?;
    let expected = numpy_hist::counts(&x, &bins);
    let counts = vec![0; bins.len()];
    Ok(Box::new(Histogram { x, bins, counts, expected }))
}

impl Workload for Histogram {
    fn run(&mut self, imp: &Path) -> Result<()> {
        self.counts.fill(0);
        match imp {
            Path::Reference => numpy_hist::accumulate(&self.x, &self.bins, &mut self.counts),
            Path::Optimized(e) => e.histogram(&self.x, &self.bins, HistogramOf::Values, &mut self.counts)?,
        }
        Ok(())
    }
    fn scramble(&mut self) {
        self.counts.iter_mut().enumerate().for_each(|(i, c)| *c = i as u64 + 1);
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match self.counts.iter().zip(&self.expected).position(|(g, w)| g != w) {
            None => Ok(()),
            Some(i) => Err(format!("bin {i}: {} counted, want {}", self.counts[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        4.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"bins": self.bins.len(), "range": [self.bins.first(), self.bins.last()],
               "rule": "np.histogram(x, bins, range=(-t, t))"})
    }
    fn ort_collector(&self) -> Option<(Collector, &[f32])> {
        // ONNX Runtime's histogram building: the distribution collector's collect (np.histogram
        // plus min/max); its compute is O(bins).
        let c = Collector {
            method: "distribution",
            bins: self.bins.len(),
            quantized_bins: QUANTIZED_BINS,
            percentile: 99.999,
            symmetric: false,
        };
        Some((c, &self.x))
    }
}

struct AbsMax {
    x: Vec<f32>,
    got: Option<f32>,
    expected: f32,
}

pub fn build_abs_max(setup: &Setup) -> Result<Box<dyn Workload>> {
    let x = normal_f32(setup.size, setup.seed);
    let expected = naive_abs_max(&x)?;
    Ok(Box::new(AbsMax { x, got: None, expected }))
}

/// The oracle: a fold, failing on NaN like the engine.
fn naive_abs_max(x: &[f32]) -> Result<f32> {
    if let Some(index) = x.iter().position(|v| v.is_nan()) {
        return Err(QuantError::NanInput { what: "x", index });
    }
    Ok(x.iter().fold(0f32, |m, v| m.max(v.abs())))
}

impl Workload for AbsMax {
    fn run(&mut self, imp: &Path) -> Result<()> {
        self.got = Some(match imp {
            Path::Reference => naive_abs_max(&self.x)?,
            Path::Optimized(e) => e.abs_max(&self.x)?,
        });
        Ok(())
    }
    fn scramble(&mut self) {
        self.got = None;
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match self.got {
            Some(g) if g.to_bits() == self.expected.to_bits() => Ok(()),
            got => Err(format!("got {got:?}, want {}", self.expected)),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        4.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": [self.x.len()], "abs_max": self.expected})
    }
}
