//! Calibration ops: `observe` (PyTorch observers) and `calibrate` (ONNX Runtime's collectors).
//!
//! `observe` (torch): attrs `observer` (minmax, moving_average_minmax, per_channel_minmax,
//! moving_average_per_channel_minmax, histogram), `dtype`, `qscheme`, `reduce_range`, and the
//! optional `averaging_constant`, `ch_axis`, `bins`, `quant_min`/`quant_max`; inputs `batch0`,
//! `batch1`, ... observed in order; outputs `scale` (f32), `zero_point` (i64), `min_val`,
//! `max_val` (f32), one entry per tensor or per channel. quantproof's own extra cases may add
//! `skip_non_finite: true` ([`NonFinitePolicy::Skip`](quantproof_reference::calibrate::NonFinitePolicy)). Computed by
//! [`quantproof_reference::calibrate::torch::run_observe`]. Reference only.
//!
//! `calibrate` (onnxruntime): attrs `method` (entropy, percentile, distribution), `symmetric`,
//! `num_bins`, `num_quantized_bins`, `percentile`, `scenario`, and the optional `collect`
//! (`one`: every batch in one `collect()` call, which ONNX Runtime flattens into one array, the
//! default; `per_batch`: one call per batch); inputs `batch0`, `batch1`, ...; outputs `min`,
//! `max` (or `avg`, `std` for distribution) as f64 `[1]`. Computed by
//! [`quantproof_reference::calibrate::onnxruntime::run_calibrate`] and, on every ISA, by its fast
//! twin [`quantproof_optimized::calibrate::run_calibrate`] (SIMD histograms, parallel entropy
//! search).

use super::{input, input_f32, outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::calibrate::onnxruntime::{run_calibrate, CalibrateResult, CalibrateSpec};
use quantproof_reference::calibrate::torch::{run_observe, ObserveSpec, QScheme, TorchObserverKind};
use quantproof_reference::profile::Profile;
use quantproof_reference::scheme::{CodeRange, QType};

/// The inputs `batch0`, `batch1`, ... in order, as (data, shape).
fn batches(case: &Case) -> Result<Vec<(&[f32], &[usize])>, OpError> {
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
    let kind = TorchObserverKind::parse(
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
        spec.ch_axis = isize::try_from(ax).map_err(|_| OpError::Malformed(format!("attrs.ch_axis: {ax}")))?;
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
    let spec = CalibrateSpec::from_attrs(
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
        Path::Reference => run_calibrate(&spec, &data)?,
        Path::Optimized(engine) => quantproof_optimized::calibrate::run_calibrate(&engine, &spec, &data)?,
    };
    Ok(match result {
        CalibrateResult::Range { min, max } => outputs([("min", f64_1(min)), ("max", f64_1(max))]),
        CalibrateResult::Distribution { avg, std, .. } => outputs([("avg", f64_1(avg)), ("std", f64_1(std))]),
    })
}
