//! Unary ops on 8-bit codes: `relu`, `relu6`, `clamp`, `hardtanh`, `sigmoid`, `tanh`,
//! `hardsigmoid`, `hardswish`, `leaky_relu` (attrs `x_scale`, `x_zero_point`, `y_scale`,
//! `y_zero_point`; `min` / `max` for clamp and hardtanh, `negative_slope` for leaky ReLU), through
//! `quantproof_reference::activation`'s tables.

use super::arith::{affine, codes, Codes, IntoData};
use super::{outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Tensor};
use quantproof_optimized::ops::FastCode;
use quantproof_reference::activation::{self, UnaryOp};
use quantproof_reference::affine::Affine;
use quantproof_reference::profile::Profile;

/// `y` quantization: `y_scale` / `y_zero_point`, defaulting to `x`'s (pass-through ops).
pub fn output_affine(case: &Case, x: Affine) -> Result<Affine, OpError> {
    if Attrs(case).opt_f64("y_scale")?.is_some() {
        affine(case, "y")
    } else {
        Ok(x)
    }
}

/// The reference computes the op code by code through its table; an optimized path builds the
/// same table with the reference and applies it with `Engine::lut` (the ISA's byte permute).
fn run(case: &Case, profile: &Profile, path: Path, op: UnaryOp) -> OpResult {
    let xq = affine(case, "x")?;
    let yq = output_affine(case, xq)?;
    let (xt, x) = codes(case, "x")?;
    fn go<C: FastCode>(
        op: UnaryOp,
        p: &Profile,
        path: Path,
        xq: Affine,
        yq: Affine,
        x: &[C],
    ) -> Result<Vec<C>, OpError> {
        let mut out = vec![C::default(); x.len()];
        match path {
            Path::Reference => activation::unary(op, p.arith, xq, yq, x, &mut out)?,
            Path::Optimized(e) => e.lut(&activation::table::<C>(op, p.arith, xq, yq)?, x, &mut out)?,
        }
        Ok(out)
    }
    let y = match x {
        Codes::I8(x) => go(op, profile, path, xq, yq, x)?.into_data(),
        Codes::U8(x) => go(op, profile, path, xq, yq, x)?.into_data(),
    };
    Ok(outputs([("y", Tensor::new(xt.shape.clone(), y))]))
}

fn f32_attr(case: &Case, key: &str) -> Result<Option<f32>, OpError> {
    Ok(Attrs(case).opt_f64(key)?.map(|v| v as f32))
}

fn required_f32(case: &Case, key: &str) -> Result<f32, OpError> {
    f32_attr(case, key)?.ok_or_else(|| OpError::Malformed(format!("attrs.{key} is missing")))
}

pub fn relu(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Relu)
}

pub fn relu6(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Relu6)
}

pub fn clamp(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let op = UnaryOp::Clamp { min: f32_attr(case, "min")?, max: f32_attr(case, "max")? };
    run(case, profile, path, op)
}

pub fn hardtanh(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let op = UnaryOp::Hardtanh { min: required_f32(case, "min")?, max: required_f32(case, "max")? };
    run(case, profile, path, op)
}

pub fn sigmoid(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Sigmoid)
}

pub fn tanh(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Tanh)
}

pub fn hardsigmoid(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Hardsigmoid)
}

pub fn hardswish(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Hardswish)
}

pub fn leaky_relu(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let op = UnaryOp::LeakyRelu { negative_slope: required_f32(case, "negative_slope")? };
    run(case, profile, path, op)
}

pub fn gelu(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Gelu)
}

pub fn exp(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Exp)
}

pub fn silu(case: &Case, profile: &Profile, path: Path) -> OpResult {
    run(case, profile, path, UnaryOp::Silu)
}

pub fn elu(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let alpha = f32_attr(case, "alpha")?.unwrap_or(1.0);
    run(case, profile, path, UnaryOp::Elu { alpha })
}
