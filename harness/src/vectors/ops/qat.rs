//! `lsq`: PyTorch's learnable fake quantization (LSQ / LSQ+ style), forward and backward.
//!
//! `torch`: `torch._fake_quantize_learnable_per_tensor_affine` and its autograd backward,
//! reproduced by [`run_lsq_case`] (the reference's learnable fake-quantize forward and backward) with the arithmetic of the x86 AVX2
//! build that recorded the vectors (FMA-fused expressions, ATen's cascade summation). Attrs
//! `qmin`, `qmax`, `grad_factor`; inputs `x`, `scale[1]`, `zero_point[1]` (f32, learnable),
//! `grad_y`; outputs `y`, `grad_x` (shaped like `x`), `grad_scale[1]`, `grad_zero_point[1]`.
//! Reference only: training-time gradients have no optimized twin.

use super::{input_f32, outputs, scalar, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::error::{QuantError, Result};
use quantproof_reference::profile::Profile;
use quantproof_reference::qat::{
    torch_learnable_per_tensor_backward, torch_learnable_per_tensor_forward, TorchCpuArith,
};
use quantproof_reference::scheme::CodeRange;

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

// ---------------------------------------------------------------------------------------------
// The `lsq` case from its attributes and inputs
// ---------------------------------------------------------------------------------------------

/// One `lsq` case of the golden vectors (VECTORS.md): attrs `qmin`, `qmax`, `grad_factor`;
/// inputs `x`, `scale[1]`, `zero_point[1]` (f32, learnable), `grad_y`.
#[derive(Debug, Clone, Copy)]
pub struct LsqCase<'a> {
    pub qmin: i64,
    pub qmax: i64,
    pub grad_factor: f64,
    pub x: &'a [f32],
    pub scale: &'a [f32],
    pub zero_point: &'a [f32],
    pub grad_y: &'a [f32],
}

/// The outputs of an `lsq` case: `y`, `grad_x` (one per element), `grad_scale[1]`,
/// `grad_zero_point[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LsqOutputs {
    pub y: Vec<f32>,
    pub grad_x: Vec<f32>,
    pub grad_scale: Vec<f32>,
    pub grad_zero_point: Vec<f32>,
}

/// Runs one `lsq` golden case under the `torch` profile with the arithmetic of the build that
/// recorded the vectors ([`TorchCpuArith::X86_AVX2`]): the forward
/// [`torch_learnable_per_tensor_forward`] and the backward
/// [`torch_learnable_per_tensor_backward`].
pub fn run_lsq_case(case: &LsqCase<'_>) -> Result<LsqOutputs> {
    run_lsq_case_with(case, TorchCpuArith::X86_AVX2)
}

/// [`run_lsq_case`] with another build's arithmetic. Errors: `qmin`/`qmax` outside i32 or
/// `qmin > qmax`, `scale` or `zero_point` not of length 1, and those of the forward and backward.
pub fn run_lsq_case_with(case: &LsqCase<'_>, arith: TorchCpuArith) -> Result<LsqOutputs> {
    let to_i32 = |v: i64| {
        i32::try_from(v)
            .map_err(|_| QuantError::InvalidArgument { what: "code range", detail: format!("{v} does not fit i32") })
    };
    let range = CodeRange::new(to_i32(case.qmin)?, to_i32(case.qmax)?)?;
    if case.scale.len() != 1 {
        return Err(QuantError::ParamCountMismatch { what: "scale", expected: 1, got: case.scale.len() });
    }
    if case.zero_point.len() != 1 {
        return Err(QuantError::ParamCountMismatch { what: "zero_point", expected: 1, got: case.zero_point.len() });
    }
    let (s, z) = (case.scale[0], case.zero_point[0]);
    let mut y = vec![0f32; case.x.len()];
    torch_learnable_per_tensor_forward(case.x, s, z, range, &mut y)?;
    let grads = torch_learnable_per_tensor_backward(case.x, s, z, range, case.grad_factor, case.grad_y, arith)?;
    Ok(LsqOutputs { y, grad_x: grads.grad_x, grad_scale: grads.grad_scale, grad_zero_point: grads.grad_zero_point })
}
