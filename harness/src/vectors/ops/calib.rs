//! Calibration ops: `observe` (PyTorch observers) and `calibrate` (ONNX Runtime's collectors).
//!
//! `observe` (torch): attrs `observer` (minmax, moving_average_minmax, per_channel_minmax,
//! moving_average_per_channel_minmax, histogram), `dtype`, `qscheme`, `reduce_range`, and the
//! optional `averaging_constant`, `ch_axis`, `bins`, `quant_min`/`quant_max`; inputs `batch0`,
//! `batch1`, ... observed in order; outputs `scale` (f32), `zero_point` (i64), `min_val`,
//! `max_val` (f32), one entry per tensor or per channel. quantproof's own extra cases may add
//! `skip_non_finite: true` ([`NonFinitePolicy::Skip`](quantproof_reference::calibrate::NonFinitePolicy)). Computed by
//! [`run_observe`] from the reference's observers. Reference only.
//!
//! `calibrate` (onnxruntime): attrs `method` (entropy, percentile, distribution), `symmetric`,
//! `num_bins`, `num_quantized_bins`, `percentile`, `scenario`, and the optional `collect`
//! (`one`: every batch in one `collect()` call, which ONNX Runtime flattens into one array, the
//! default; `per_batch`: one call per batch); inputs `batch0`, `batch1`, ...; outputs `min`,
//! `max` (or `avg`, `std` for distribution) as f64 `[1]`. Computed by [`run_calibrate`] from the
//! reference's collectors and, on every ISA, by [`run_calibrate_on`] from the fast ones
//! (`quantproof_optimized::calibrate`: SIMD histograms, parallel entropy search).
//!
//! The adapters here ([`ObserveSpec`] / [`run_observe`], [`calibrate_spec`] / [`run_calibrate`])
//! are shaped after the vector format; they build the libraries' observers and collectors from a
//! case's attributes and feed them its batches.

use super::{input, input_f32, outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_optimized::ops::Engine;
use quantproof_reference::calibrate::onnxruntime::{
    self as ort, CalibrateResult, CalibrateSpec, HistogramCollector, Method, RangePass, Scenario,
};
use quantproof_reference::calibrate::torch::{
    HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver, QScheme, TorchObserverConfig, DEFAULT_AVERAGING_CONSTANT, DEFAULT_BINS,
};
use quantproof_reference::calibrate::{ChannelObserver, NonFinitePolicy, Observer};
use quantproof_reference::choose_params::ScaleZeroPoint;
use quantproof_reference::error::{QuantError, Result};
use quantproof_reference::profile::Profile;
use quantproof_reference::scheme::{Axis, CodeRange, QType};
use quantproof_reference::scheme::{RangeReduction, Symmetry};

/// Batches of a case, in order: (data, shape).
type Batches<'a> = Vec<(&'a [f32], &'a [usize])>;

/// The inputs `batch0`, `batch1`, ... in order, as (data, shape).
fn batches(case: &Case) -> std::result::Result<Batches<'_>, OpError> {
    let mut out = Vec::new();
    while case.inputs.contains_key(&format!("batch{}", out.len())) {
        let (t, v) = input_f32(case, &format!("batch{}", out.len()))?;
        out.push((v, t.shape.as_slice()));
    }
    if out.is_empty() {
        input(case, "batch0")?;
    }
    if out.len() != case.inputs.len() {
        return Err(OpError::Malformed(format!(
            "inputs must be batch0..batch{}, got {:?}",
            out.len().saturating_sub(1),
            case.inputs.keys().collect::<Vec<_>>()
        )));
    }
    Ok(out)
}

fn vec1(v: Vec<f32>) -> Tensor {
    Tensor::new(vec![v.len()], Data::F32(v))
}

pub fn observe(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if let Path::Optimized(_) = path {
        return Err(OpError::Unsupported("observe has no optimized twin".into()));
    }
    if profile.name != "torch" {
        return Err(OpError::Unsupported(format!("observe under profile {}", profile.name)));
    }
    let a = Attrs(case);
    fn malformed(key: &'static str) -> impl Fn(quantproof_reference::QuantError) -> OpError {
        move |e| OpError::Malformed(format!("attrs.{key}: {e}"))
    }
    let kind = ObserverKind::parse(
        a.opt_str("observer")?.ok_or_else(|| OpError::Malformed("attrs.observer is missing".into()))?,
    )
    .map_err(malformed("observer"))?;
    let dtype = QType::parse(a.opt_str("dtype")?.unwrap_or("u8")).map_err(malformed("dtype"))?;
    let qscheme = QScheme::parse(a.opt_str("qscheme")?.unwrap_or("per_tensor_affine")).map_err(malformed("qscheme"))?;
    let mut spec = ObserveSpec::new(kind, dtype, qscheme, a.opt_bool("reduce_range")?.unwrap_or(false));
    if let Some(c) = a.opt_f64("averaging_constant")? {
        spec.averaging_constant = c;
    }
    if let Some(ax) = a.opt_int("ch_axis")? {
        spec.ch_axis = Axis::new(ax);
    }
    if let Some(b) = a.opt_int("bins")? {
        spec.bins = usize::try_from(b).map_err(|_| OpError::Malformed(format!("attrs.bins: {b}")))?;
    }
    if let (Some(lo), Some(hi)) = (a.opt_int("quant_min")?, a.opt_int("quant_max")?) {
        let (lo, hi) = (i32::try_from(lo), i32::try_from(hi));
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(OpError::Malformed("attrs.quant_min/quant_max do not fit i32".into()));
        };
        spec.quant_range = Some(CodeRange::new(lo, hi)?);
    }
    if let Some(eps) = a.opt_f64("eps")? {
        spec.eps = eps as f32;
    }
    // quantproof's extra cases: `skip_non_finite` drops NaN and infinities before observing.
    if a.opt_bool("skip_non_finite")? == Some(true) {
        spec.non_finite = quantproof_reference::calibrate::NonFinitePolicy::Skip;
    }
    let r = run_observe(&spec, &batches(case)?)?;
    Ok(outputs([
        ("scale", vec1(r.scale)),
        (
            "zero_point",
            Tensor::new(vec![r.zero_point.len()], Data::I64(r.zero_point.iter().map(|&z| z as i64).collect())),
        ),
        ("min_val", vec1(r.min_val)),
        ("max_val", vec1(r.max_val)),
    ]))
}

fn f64_1(v: f32) -> Tensor {
    Tensor::new(vec![1], Data::F64(vec![v as f64]))
}

pub fn calibrate(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if profile.name != "onnxruntime" {
        return Err(OpError::Unsupported(format!("calibrate under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let method = a.opt_str("method")?.ok_or_else(|| OpError::Malformed("attrs.method is missing".into()))?;
    let count = |key: &str, default: i64| -> Result<usize, OpError> {
        let v = a.opt_int(key)?.unwrap_or(default);
        usize::try_from(v).map_err(|_| OpError::Malformed(format!("attrs.{key}: {v} is not a count")))
    };
    let (spec, collect) = calibrate_spec(
        method,
        a.opt_bool("symmetric")?.unwrap_or(false),
        count("num_bins", 128)?,
        count("num_quantized_bins", 128)?,
        a.opt_f64("percentile")?.unwrap_or(99.999),
        a.opt_str("scenario")?.unwrap_or("same"),
        a.opt_str("collect")?,
    )
    .map_err(|e| OpError::Malformed(format!("attrs: {e}")))?;
    let data: Vec<&[f32]> = batches(case)?.into_iter().map(|(d, _)| d).collect();
    let result = match path {
        Path::Reference => run_calibrate(&spec, collect, &data)?,
        Path::Optimized(engine) => run_calibrate_on(&engine, &spec, collect, &data)?,
    };
    Ok(match result {
        CalibrateResult::Range { min, max } => outputs([("min", f64_1(min)), ("max", f64_1(max))]),
        CalibrateResult::Distribution { avg, std, .. } => outputs([("avg", f64_1(avg)), ("std", f64_1(std))]),
    })
}

// ---------------------------------------------------------------------------------------------
// `observe`: PyTorch's observers from a case's attributes
// ---------------------------------------------------------------------------------------------

/// Which PyTorch observer (the `observer` attribute of the golden vectors' `observe` op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObserverKind {
    MinMax,
    MovingAverageMinMax,
    PerChannelMinMax,
    MovingAveragePerChannelMinMax,
    Histogram,
}

impl ObserverKind {
    /// The golden vectors' name: `minmax`, `moving_average_minmax`, `per_channel_minmax`,
    /// `moving_average_per_channel_minmax`, `histogram`.
    pub fn name(self) -> &'static str {
        match self {
            ObserverKind::MinMax => "minmax",
            ObserverKind::MovingAverageMinMax => "moving_average_minmax",
            ObserverKind::PerChannelMinMax => "per_channel_minmax",
            ObserverKind::MovingAveragePerChannelMinMax => "moving_average_per_channel_minmax",
            ObserverKind::Histogram => "histogram",
        }
    }

    /// Parses [`ObserverKind::name`] or PyTorch's class name (`MinMaxObserver`, ...).
    pub fn parse(s: &str) -> Result<ObserverKind> {
        use ObserverKind::*;
        let kinds = [MinMax, MovingAverageMinMax, PerChannelMinMax, MovingAveragePerChannelMinMax, Histogram];
        let classes = [
            "MinMaxObserver",
            "MovingAverageMinMaxObserver",
            "PerChannelMinMaxObserver",
            "MovingAveragePerChannelMinMaxObserver",
            "HistogramObserver",
        ];
        let t = s.trim();
        kinds
            .iter()
            .zip(classes)
            .find(|(k, class)| k.name() == t || *class == t)
            .map(|(k, _)| *k)
            .ok_or_else(|| QuantError::InvalidArgument { what: "observer", detail: format!("unknown observer {s:?}") })
    }

    pub fn is_per_channel(self) -> bool {
        matches!(self, ObserverKind::PerChannelMinMax | ObserverKind::MovingAveragePerChannelMinMax)
    }
}

/// Everything that configures one PyTorch observer: the attributes of the golden vectors'
/// `observe` op, with PyTorch's defaults for the ones a case leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveSpec {
    pub observer: ObserverKind,
    /// `i8` is `torch.qint8`, `u8` is `torch.quint8` (see [`TorchObserverConfig`] for others).
    pub dtype: QType,
    pub qscheme: QScheme,
    pub reduce_range: bool,
    /// `quant_min` / `quant_max` when both are given.
    pub quant_range: Option<CodeRange>,
    /// PyTorch's default: `torch.finfo(torch.float32).eps`.
    pub eps: f32,
    /// Moving-average observers only; default [`DEFAULT_AVERAGING_CONSTANT`].
    pub averaging_constant: f64,
    /// Per-channel observers only; default 0; negative counts from the end.
    pub ch_axis: Axis,
    /// `HistogramObserver` only; default [`DEFAULT_BINS`].
    pub bins: usize,
    pub non_finite: NonFinitePolicy,
}

impl ObserveSpec {
    /// PyTorch's defaults for everything but the four attributes every case names.
    pub fn new(observer: ObserverKind, dtype: QType, qscheme: QScheme, reduce_range: bool) -> ObserveSpec {
        ObserveSpec {
            observer,
            dtype,
            qscheme,
            reduce_range,
            quant_range: None,
            eps: f32::EPSILON,
            averaging_constant: DEFAULT_AVERAGING_CONSTANT,
            ch_axis: Axis::new(0),
            bins: DEFAULT_BINS,
            non_finite: NonFinitePolicy::Error,
        }
    }

    /// The configuration the parameters are computed under. Fails where PyTorch's constructor
    /// does: a per-tensor observer with a per-channel scheme or the reverse.
    pub fn config(&self) -> Result<TorchObserverConfig> {
        if self.observer.is_per_channel() != self.qscheme.is_per_channel() {
            return Err(QuantError::Unsupported {
                what: format!("observer {} with qscheme {}", self.observer.name(), self.qscheme.name()),
            });
        }
        Ok(TorchObserverConfig {
            dtype: self.dtype,
            symmetry: Symmetry::symmetric_if(self.qscheme.is_symmetric()),
            reduce_range: RangeReduction::reduced_if(self.reduce_range),
            custom_range: self.quant_range,
            eps: self.eps,
        })
    }
}

/// What an `observe` case records: one entry per tensor (per channel for per-channel observers;
/// PyTorch's single default `[1.0] / [0]` before any data). `min_val` / `max_val` are PyTorch's
/// buffers (for `HistogramObserver` the observed range, not the searched one).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveResult {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    pub min_val: Vec<f32>,
    pub max_val: Vec<f32>,
}

fn split(params: &[ScaleZeroPoint]) -> (Vec<f32>, Vec<i32>) {
    (params.iter().map(|p| p.scale).collect(), params.iter().map(|p| p.zero_point).collect())
}

/// Builds the observer `spec` names, feeds it `batches` in order (each `(data, shape)`,
/// row-major; per-tensor observers only check that the shape describes the data), and returns
/// `calculate_qparams()` with the `min_val` / `max_val` buffers.
pub fn run_observe(spec: &ObserveSpec, batches: &[(&[f32], &[usize])]) -> Result<ObserveResult> {
    let cfg = spec.config()?;
    let policy = spec.non_finite;
    let per_tensor = |obs: &mut dyn Observer| -> Result<()> {
        for (data, shape) in batches {
            let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if numel != Some(data.len()) {
                return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len: data.len() });
            }
            obs.observe(data)?;
        }
        Ok(())
    };
    let per_channel = |obs: &mut dyn ChannelObserver| -> Result<()> {
        for (data, shape) in batches {
            obs.observe(data, shape)?;
        }
        Ok(())
    };
    let (params, min_val, max_val) = match spec.observer {
        ObserverKind::MinMax => {
            let mut o = MinMaxObserver::new(cfg)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.scale_zero_point()?], vec![o.min_val()], vec![o.max_val()])
        }
        ObserverKind::MovingAverageMinMax => {
            let mut o = MovingAverageMinMaxObserver::new(cfg, spec.averaging_constant)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.scale_zero_point()?], vec![o.min_val()], vec![o.max_val()])
        }
        ObserverKind::Histogram => {
            let mut o = HistogramObserver::new(cfg, spec.bins)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.scale_zero_point()?], vec![o.min_val()], vec![o.max_val()])
        }
        ObserverKind::PerChannelMinMax => {
            let mut o = PerChannelMinMaxObserver::new(cfg, spec.ch_axis)?.with_policy(policy);
            per_channel(&mut o)?;
            (o.scale_zero_points()?, o.min_val().to_vec(), o.max_val().to_vec())
        }
        ObserverKind::MovingAveragePerChannelMinMax => {
            let mut o = MovingAveragePerChannelMinMaxObserver::new(cfg, spec.ch_axis, spec.averaging_constant)?
                .with_policy(policy);
            per_channel(&mut o)?;
            (o.scale_zero_points()?, o.min_val().to_vec(), o.max_val().to_vec())
        }
    };
    let (scale, zero_point) = split(&params);
    Ok(ObserveResult { scale, zero_point, min_val, max_val })
}

// ---------------------------------------------------------------------------------------------
// `calibrate`: ONNX Runtime's collectors from a case's attributes
// ---------------------------------------------------------------------------------------------

/// How the batches of a `calibrate` case reach ONNX Runtime's `collect` (attribute `collect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectCalls {
    /// All batches in one `collect` call (what `HistogramCalibrater.collect_data` does, and what
    /// the golden vectors record; attribute absent or `"one"`).
    One,
    /// One `collect` call per batch (attribute `"collect": "per_batch"` in the extra vectors).
    PerBatch,
}

/// The collector configuration and the collect mode from the `calibrate` op's attributes
/// (VECTORS.md); `collect` is `"one"` (or absent) or `"per_batch"`.
pub fn calibrate_spec(
    method: &str,
    symmetric: bool,
    num_bins: usize,
    num_quantized_bins: usize,
    percentile: f64,
    scenario: &str,
    collect: Option<&str>,
) -> Result<(CalibrateSpec, CollectCalls)> {
    let collect = match collect {
        None | Some("one") => CollectCalls::One,
        Some("per_batch") => CollectCalls::PerBatch,
        Some(other) => {
            return Err(QuantError::InvalidArgument {
                what: "collect",
                detail: format!("{other:?}: must be 'one' or 'per_batch'"),
            })
        }
    };
    let spec = CalibrateSpec {
        method: Method::parse(method)?,
        symmetry: Symmetry::symmetric_if(symmetric),
        num_bins,
        num_quantized_bins,
        percentile,
        scenario: Scenario::parse(scenario)?,
    };
    spec.validate()?;
    Ok((spec, collect))
}

/// One `calibrate` case on the reference: the batches go to one `collect` call (through the
/// exact streaming collector: a [`RangePass`], then a histogram pass, no concatenated copy; like
/// ONNX Runtime it requires batches of equal length) or to one call each (the compatible
/// collector), then `compute_collection_result`.
pub fn run_calibrate(spec: &CalibrateSpec, collect: CollectCalls, batches: &[&[f32]]) -> Result<CalibrateResult> {
    spec.validate()?;
    match collect {
        CollectCalls::One => {
            ort::check_same_lengths(batches)?;
            let mut first = RangePass::new(NonFinitePolicy::Error);
            batches.iter().try_for_each(|b| first.observe(b))?;
            let mut c = HistogramCollector::streaming(*spec, &first)?;
            batches.iter().try_for_each(|b| c.observe(b))?;
            c.result()
        }
        CollectCalls::PerBatch => {
            let mut c = HistogramCollector::new(*spec)?;
            batches.iter().try_for_each(|b| c.observe(b))?;
            c.result()
        }
    }
}

/// [`run_calibrate`] on an engine's fast collectors (`quantproof_optimized::calibrate`): one
/// `collect` call is [`one_collect`](quantproof_optimized::calibrate::one_collect) (threaded
/// range and histogram passes); one call per batch runs the reference's compatible collector with
/// the ISA's histogram kernel plugged in; both finish with the fast `compute`.
pub fn run_calibrate_on(
    engine: &Engine,
    spec: &CalibrateSpec,
    collect: CollectCalls,
    batches: &[&[f32]],
) -> Result<CalibrateResult> {
    use quantproof_optimized::calibrate::{compute, count_kernel, one_collect};
    spec.validate()?;
    match collect {
        CollectCalls::One => {
            ort::check_same_lengths(batches)?;
            let histogram = one_collect(engine, spec, batches)?;
            compute(engine, spec, &histogram)
        }
        CollectCalls::PerBatch => {
            let mut c = HistogramCollector::new(*spec)?.with_kernel(count_kernel(engine.isa()));
            batches.iter().try_for_each(|b| c.observe(b))?;
            match c.histogram() {
                None => Err(QuantError::EmptyInput { what: "histogram (collect() was never called)" }),
                Some(h) => compute(engine, spec, &h),
            }
        }
    }
}
