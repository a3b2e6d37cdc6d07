//! `lsq`: PyTorch's learnable fake quantization (LSQ / LSQ+ style), forward and backward.
//!
//! `torch`: `torch._fake_quantize_learnable_per_tensor_affine` and its autograd backward,
//! reproduced by [`quantproof_reference::qat::run_lsq_case`] with the arithmetic of the x86 AVX2
//! build that recorded the vectors (FMA-fused expressions, ATen's cascade summation). Attrs
//! `qmin`, `qmax`, `grad_factor`; inputs `x`, `scale[1]`, `zero_point[1]` (f32, learnable),
//! `grad_y`; outputs `y`, `grad_x` (shaped like `x`), `grad_scale[1]`, `grad_zero_point[1]`.
//! Reference only: training-time gradients have no optimized twin.

use super::{input_f32, outputs, scalar, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::profile::Profile;
use quantproof_reference::qat::{run_lsq_case, LsqCase};

pub fn lsq(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if let Path::Optimized(_) = path {
        return Err(OpError::Unsupported("lsq has no optimized twin".into()));
    }
    if profile.name != "torch" {
        return Err(OpError::Unsupported(format!("lsq under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let grad_factor = a.opt_f64("grad_factor")?.unwrap_or(1.0);
    let (xt, x) = input_f32(case, "x")?;
    let (_, scale) = input_f32(case, "scale")?;
    let (_, zero_point) = input_f32(case, "zero_point")?;
    let (_, grad_y) = input_f32(case, "grad_y")?;
    let out = run_lsq_case(&LsqCase {
        qmin: a.int("qmin")?,
        qmax: a.int("qmax")?,
        grad_factor,
        x,
        scale,
        zero_point,
        grad_y,
    })?;
    Ok(outputs([
        ("y", Tensor::new(xt.shape.clone(), Data::F32(out.y))),
        ("grad_x", Tensor::new(xt.shape.clone(), Data::F32(out.grad_x))),
        ("grad_scale", scalar(Data::F32(out.grad_scale))),
        ("grad_zero_point", scalar(Data::F32(out.grad_zero_point))),
    ]))
}
