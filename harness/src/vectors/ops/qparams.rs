//! `choose_qparams`: a scale and zero point from a real range.
//!
//! `onnxruntime`: `onnxruntime.quantization.quant_utils.compute_scale_zp(rmin, rmax, qmin, qmax,
//! symmetric, min_real_range)` on f32 scalars, reproduced by
//! [`quantproof_reference::choose_params::onnxruntime_compute_scale_zp`]. Attrs `qmin`, `qmax`,
//! `symmetric` (default false) and the optional `min_real_range`; inputs `rmin`, `rmax` (one f32
//! element each); outputs `scale` (f32) and `zero_point` (i64), shaped like `rmin`. There is no
//! optimized twin: parameters are chosen once per tensor, not per element.

use super::{input_f32, outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::choose_params::onnxruntime_compute_scale_zp;
use quantproof_reference::profile::Profile;
use quantproof_reference::scheme::CodeRange;
use quantproof_reference::scheme::Symmetry;

fn one(case: &Case, name: &str) -> Result<(Vec<usize>, f32), OpError> {
    let (t, v) = input_f32(case, name)?;
    match v {
        [x] => Ok((t.shape.clone(), *x)),
        _ => Err(OpError::Malformed(format!("input {name}: expected one element, got {}", v.len()))),
    }
}

pub fn choose_qparams(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if let Path::Optimized(_) = path {
        return Err(OpError::Unsupported("choose_qparams has no optimized twin".into()));
    }
    if profile.name != "onnxruntime" {
        return Err(OpError::Unsupported(format!("choose_qparams under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let range = CodeRange::new(a.i32("qmin")?, a.i32("qmax")?)?;
    let symmetric = a.opt_bool("symmetric")?.unwrap_or(false);
    let min_real_range = a.opt_f64("min_real_range")?.map(|m| m as f32);
    let (shape, rmin) = one(case, "rmin")?;
    let (_, rmax) = one(case, "rmax")?;
    let p = onnxruntime_compute_scale_zp(rmin, rmax, range, Symmetry::symmetric_if(symmetric), min_real_range)?;
    Ok(outputs([
        ("scale", Tensor::new(shape.clone(), Data::F32(vec![p.scale]))),
        ("zero_point", Tensor::new(shape, Data::I64(vec![p.zero_point as i64]))),
    ]))
}
