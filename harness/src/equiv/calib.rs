//! Descriptors for the calibration path: the histogram builder against numpy's rule
//! (`numpy_hist::counts`), `max |x|` against a fold, and the fast calibrators
//! (`vectors::ops::calib::run_calibrate_on`) against the reference's
//! (`vectors::ops::calib::run_calibrate`), results and errors compared exactly.
//!
//! Inputs are adversarial for binning: values exactly on every kind of edge (first, interior,
//! last), one ulp either side of them, just outside the range, signed zeros, subnormals, NaN and
//! infinities, all-equal data (numpy's widened `[c - 0.5, c + 0.5]` range) and empty inputs
//! (length 0 is in every sweep). The runner's input classes steer them: `zero` makes all-equal
//! data, `nan` and `infinity` put a few of those in (the calibrators must then fail exactly as
//! the reference does), `subnormal` and `huge` pick tiny and huge ranges.

use super::gen::{Case, CaseSpec, Class, Mix};
use super::ops::OpDescriptor;
use super::outcome::{Outcome, Tensor};
use super::rng::{hash_str, Rng};
use crate::path::Path;
use crate::vectors::ops::calib::{run_calibrate, run_calibrate_on, CollectCalls};
use quantproof_optimized::HistogramOf;
use quantproof_reference::calibrate::numpy_hist::{self, UniformBins};
use quantproof_reference::calibrate::onnxruntime::{CalibrateResult, CalibrateSpec, Method};
use quantproof_reference::error::QuantError;
use quantproof_reference::scheme::Symmetry;

/// The range a case's values live in: `(lo, hi)`, from the seed and the class.
fn range_of(rng: &mut Rng, mix: Mix) -> (f32, f32) {
    let symmetric = [1.0f32, 4.716, 11.312944, 0.37, 1000.0];
    match mix {
        Mix::Only(Class::Subnormal) => (-3e-39, 3e-39),
        Mix::Only(Class::Huge) => (-3.0e37, 3.0e37),
        _ => match rng.below(4) {
            0 => (0.1, 0.7),
            1 => (1.0, 1.001),
            _ => {
                let t = rng.pick(&symmetric);
                (-t, t)
            }
        },
    }
}

/// `n` values over `[lo, hi]` with edges of `probe_bins` bins, their ulp neighbours, the outer
/// edges, values just outside, zeros and (by class) NaN or infinities.
fn adversarial(rng: &mut Rng, n: usize, mix: Mix, lo: f32, hi: f32, probe_bins: usize) -> Vec<f32> {
    if mix == Mix::Only(Class::Zero) {
        let c = rng.pick(&[0.0f32, -0.0, 3.0, -1.5]);
        return vec![c; n];
    }
    let probe = UniformBins::new(lo, hi, probe_bins).ok();
    let mut x = Vec::with_capacity(n);
    for _ in 0..n {
        let u = rng.unit() as f32;
        let v = match rng.below(10) {
            0..=3 => lo + (hi - lo) * u,
            4 | 5 => match &probe {
                Some(b) => {
                    let e = b.edges()[rng.below(b.edges().len() as u64) as usize];
                    match rng.below(3) {
                        0 => e,
                        1 => f32::next_up(e),
                        _ => f32::next_down(e),
                    }
                }
                None => lo,
            },
            6 => rng.pick(&[lo, hi, f32::next_up(hi), f32::next_down(lo), f32::next_down(hi), f32::next_up(lo)]),
            7 => rng.pick(&[0.0, -0.0, f32::from_bits(1), -f32::from_bits(1)]),
            8 => (lo + (hi - lo) * u) * 0.5,
            _ => -(lo + (hi - lo) * u),
        };
        x.push(v);
    }
    let special = match mix {
        Mix::Only(Class::Nan) => Some(f32::NAN),
        Mix::Only(Class::Infinity) => Some(f32::INFINITY),
        Mix::Mixed if n > 0 && rng.chance(0.05) => Some(rng.pick(&[f32::NAN, f32::NEG_INFINITY])),
        _ => None,
    };
    if let (Some(s), true) = (special, n > 0) {
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(n as u64) as usize;
            x[i] = s;
        }
    }
    x
}

fn base_case(spec: &CaseSpec, x: Vec<f32>) -> Case {
    let mut case = Case::manual(&[x.len()]);
    case.spec = *spec;
    case.offset = spec.offset;
    super::gen::set_x(&mut case, x);
    case
}

/// The bins a histogram case counts into: derived from the seed alone, so both sides rebuild them.
fn hist_bins(spec: &CaseSpec) -> (f32, f32, usize) {
    let mut rng = Rng::derived(spec.seed, hash_str("histogram-bins"));
    let (lo, hi) = range_of(&mut rng, spec.mix);
    let n = rng.pick(&[1usize, 3, 7, 128, 1000, 2048]);
    (lo, hi, n)
}

/// `Engine::histogram` against `numpy_hist::counts` (of `|x|` when `abs`).
pub struct Histogram {
    pub abs: bool,
}

impl Histogram {
    fn bins(&self, case: &Case) -> Result<UniformBins, QuantError> {
        let (lo, hi, n) = hist_bins(&case.spec);
        if case.spec.mix == Mix::Only(Class::Zero) {
            // All-equal data: numpy's automatic range around it.
            let c = case.x().first().map_or(0.0, |v| if self.abs { v.abs() } else { *v });
            return UniformBins::new(c, c, n);
        }
        UniformBins::new(lo, hi, n)
    }
}

impl OpDescriptor for Histogram {
    fn name(&self) -> &'static str {
        if self.abs {
            "histogram_abs"
        } else {
            "histogram"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let (lo, hi, n) = hist_bins(spec);
        let mut rng = Rng::derived(spec.seed, hash_str(self.name()));
        let x = adversarial(&mut rng, spec.len, spec.mix, lo, hi, n);
        base_case(spec, x)
    }
    fn run(&self, path: &Path, case: &Case) -> Outcome {
        let bins = self.bins(case)?;
        let c = match path {
            Path::Reference => {
                let x: Vec<f32> = if self.abs { case.x().iter().map(|v| v.abs()).collect() } else { case.x().to_vec() };
                numpy_hist::counts(&x, &bins)
            }
            Path::Optimized(engine) => {
                let mut c = vec![0u64; bins.len()];
                engine.histogram(
                    case.x(),
                    &bins,
                    if self.abs { HistogramOf::Magnitudes } else { HistogramOf::Values },
                    &mut c,
                )?;
                c
            }
        };
        Ok(vec![Tensor::i32("counts", &c.iter().map(|&v| v as i32).collect::<Vec<_>>())])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        match self.bins(case) {
            Ok(b) => format!(
                "bin {index} = [{:e}, {:e}) of {} over [{:e}, {:e}], {} elements",
                b.edges()[index],
                b.edges()[index + 1],
                b.len(),
                b.first(),
                b.last(),
                case.x().len()
            ),
            Err(e) => e.to_string(),
        }
    }
}

/// The oracle of `Engine::abs_max`: a fold, failing on the first NaN.
pub fn naive_abs_max(x: &[f32]) -> Result<f32, QuantError> {
    match x.iter().position(|v| v.is_nan()) {
        Some(index) => Err(QuantError::NanInput { what: "x", index }),
        None => Ok(x.iter().fold(0f32, |m, v| m.max(v.abs()))),
    }
}

/// `Engine::abs_max` against [`naive_abs_max`] (exact: `|x|` has no signed zero).
pub struct AbsMax;

impl OpDescriptor for AbsMax {
    fn name(&self) -> &'static str {
        "abs_max"
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = Rng::derived(spec.seed, hash_str(self.name()));
        let (lo, hi) = range_of(&mut rng, spec.mix);
        let x = adversarial(&mut rng, spec.len, spec.mix, lo, hi, 16);
        base_case(spec, x)
    }
    fn run(&self, path: &Path, case: &Case) -> Outcome {
        let m = match path {
            Path::Reference => naive_abs_max(case.x())?,
            Path::Optimized(engine) => engine.abs_max(case.x())?,
        };
        Ok(vec![Tensor::f32("abs_max", &[m])])
    }
}

/// [`run_calibrate_on`] (the fast calibrators) against [`run_calibrate`] (the reference's).
pub struct Calibrate {
    pub name: &'static str,
    pub method: Method,
    pub symmetric: bool,
    pub collect: CollectCalls,
}

impl Calibrate {
    /// The spec and the batch count of a case (from its seed).
    fn spec(&self, case: &CaseSpec) -> (CalibrateSpec, usize) {
        let mut rng = Rng::derived(case.seed, hash_str("calibrate-spec"));
        let mut s = match self.method {
            Method::Entropy => CalibrateSpec::entropy(),
            Method::Percentile => CalibrateSpec::percentile(),
            Method::Distribution => CalibrateSpec::distribution(),
        };
        s.symmetry = Symmetry::symmetric_if(self.symmetric);
        // 2048 bins costs the reference's entropy search ~10 ms on x86-64; far more under qemu.
        let many: &[usize] = if cfg!(target_arch = "x86_64") { &[512, 1000, 2048] } else { &[512, 600] };
        s.num_bins = match self.method {
            Method::Distribution => rng.pick(many),
            _ => {
                let big = rng.pick(many);
                rng.pick(&[128, 129, 256, big])
            }
        };
        if self.method == Method::Entropy {
            s.num_quantized_bins = rng.pick(&[128, 128, 16, 1, 255]).min(s.num_bins);
        }
        s.percentile = rng.pick(&[99.999, 99.99, 90.0, 100.0, 0.0]);
        (s, 1 + rng.below(3) as usize)
    }

    fn batches<'a>(&self, case: &'a Case, k: usize) -> Vec<&'a [f32]> {
        let x = case.x();
        let per = x.len() / k;
        if per == 0 {
            return vec![x];
        }
        x[..per * k].chunks(per).collect()
    }
}

fn result_tensor(r: CalibrateResult) -> Vec<Tensor> {
    match r {
        CalibrateResult::Range { min, max } => vec![Tensor::f32("range", &[min, max])],
        CalibrateResult::Distribution { avg, std, lowest, highest } => {
            vec![Tensor::f32("distribution", &[avg, std, lowest, highest])]
        }
    }
}

impl OpDescriptor for Calibrate {
    fn name(&self) -> &'static str {
        self.name
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = Rng::derived(spec.seed, hash_str(self.name));
        let (lo, hi) = range_of(&mut rng, spec.mix);
        let (s, _) = self.spec(spec);
        let x = adversarial(&mut rng, spec.len, spec.mix, lo, hi, s.num_bins);
        base_case(spec, x)
    }
    fn run(&self, path: &Path, case: &Case) -> Outcome {
        let (s, k) = self.spec(&case.spec);
        let batches = self.batches(case, k);
        Ok(result_tensor(match path {
            Path::Reference => run_calibrate(&s, self.collect, &batches)?,
            Path::Optimized(engine) => run_calibrate_on(engine, &s, self.collect, &batches)?,
        }))
    }
    fn explain(&self, case: &Case, tensor: &str, index: usize) -> String {
        let (s, k) = self.spec(&case.spec);
        format!("{tensor}[{index}] of {s:?} over {} elements in {k} batches", case.x().len())
    }
}

/// numpy's histogram of `x` and of `|x|`.
pub fn histogram() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Histogram { abs: false }), Box::new(Histogram { abs: true })]
}

/// `abs_max`.
pub fn abs_max() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(AbsMax)]
}

/// ONNX Runtime's calibrators (entropy in one or per-batch collect calls, percentile symmetric
/// and asymmetric, distribution).
pub fn calibrate() -> Vec<Box<dyn OpDescriptor>> {
    let cal = |name, method, symmetric, collect| {
        Box::new(Calibrate { name, method, symmetric, collect }) as Box<dyn OpDescriptor>
    };
    vec![
        cal("calibrate_entropy", Method::Entropy, false, CollectCalls::One),
        cal("calibrate_entropy_per_batch", Method::Entropy, false, CollectCalls::PerBatch),
        cal("calibrate_percentile", Method::Percentile, true, CollectCalls::One),
        cal("calibrate_percentile_asym", Method::Percentile, false, CollectCalls::One),
        cal("calibrate_distribution", Method::Distribution, false, CollectCalls::One),
    ]
}
