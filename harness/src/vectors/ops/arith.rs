//! The quantized arithmetic ops on 8-bit codes: `requantize`, `qadd`, `sub`, `qmul` (and, in the
//! sibling files, activations, pooling, softmax, shape ops and resize), replayed on the reference.
//!
//! Attrs (see `VECTORS.md`): each tensor's `{name}_scale` and `{name}_zero_point`, `dtype` (or
//! `x_dtype` / `y_dtype`), the fused activation as TFLite's `activation` string or PyTorch's
//! `relu` flag. The profile's [`Profile::arith`] decides the arithmetic.

use super::{input, outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_optimized::ops::FastCode;
use quantproof_reference::affine::{Activation, Affine};
use quantproof_reference::elementwise::{self, BinaryOp, BinaryParams};
use quantproof_reference::profile::Profile;
use quantproof_reference::requantize;

/// 8-bit codes of either signedness.
pub enum Codes<'a> {
    I8(&'a [i8]),
    U8(&'a [u8]),
}

/// The 8-bit codes of input `name`.
pub fn codes<'a>(case: &'a Case, name: &str) -> Result<(&'a Tensor, Codes<'a>), OpError> {
    let t = input(case, name)?;
    match &t.data {
        Data::I8(v) => Ok((t, Codes::I8(v))),
        Data::U8(v) => Ok((t, Codes::U8(v))),
        other => {
            Err(OpError::Malformed(format!("input {name}: expected i8 or u8 codes, got {}", other.dtype().name())))
        }
    }
}

/// `{prefix}_scale` (rounded to f32) and `{prefix}_zero_point`.
pub fn affine(case: &Case, prefix: &str) -> Result<Affine, OpError> {
    let a = Attrs(case);
    let key = format!("{prefix}_scale");
    let scale = a.opt_f64(&key)?.ok_or_else(|| OpError::Malformed(format!("attrs.{key} is missing")))? as f32;
    let zero_point = a.i32(&format!("{prefix}_zero_point"))?;
    Ok(Affine::new(scale, zero_point))
}

/// The fused activation: `activation` (TFLite) or `relu` (PyTorch, ONNX Runtime), default none.
pub fn activation(case: &Case) -> Result<Activation, OpError> {
    let a = Attrs(case);
    if let Some(s) = a.opt_str("activation")? {
        return Activation::parse(s).map_err(|e| OpError::Malformed(format!("attrs.activation: {e}")));
    }
    Ok(if a.opt_bool("relu")?.unwrap_or(false) { Activation::Relu } else { Activation::None })
}

/// Wraps a code vector in the matching [`Data`] variant.
pub trait IntoData {
    fn into_data(self) -> Data;
}

impl IntoData for Vec<i8> {
    fn into_data(self) -> Data {
        Data::I8(self)
    }
}

impl IntoData for Vec<u8> {
    fn into_data(self) -> Data {
        Data::U8(self)
    }
}

fn binary(case: &Case, profile: &Profile, path: Path, op: BinaryOp) -> OpResult {
    let params = BinaryParams {
        a: affine(case, "a")?,
        b: affine(case, "b")?,
        y: affine(case, "y")?,
        activation: activation(case)?,
    };
    let (at, a) = codes(case, "a")?;
    let (bt, b) = codes(case, "b")?;
    #[allow(clippy::too_many_arguments)]
    fn run<C: FastCode + Default>(
        path: Path,
        op: BinaryOp,
        profile: &Profile,
        params: &BinaryParams,
        a: &[C],
        ash: &[usize],
        b: &[C],
        bsh: &[usize],
    ) -> Result<Vec<C>, OpError> {
        let mut out = vec![C::default(); a.len()];
        match path {
            Path::Reference => elementwise::binary(op, profile.arith, params, a, ash, b, bsh, &mut out)?,
            Path::Optimized(e) => e.binary(op, profile.arith, params, a, ash, b, bsh, &mut out)?,
        }
        Ok(out)
    }
    let y = match (a, b) {
        (Codes::I8(a), Codes::I8(b)) => run(path, op, profile, &params, a, &at.shape, b, &bt.shape)?.into_data(),
        (Codes::U8(a), Codes::U8(b)) => run(path, op, profile, &params, a, &at.shape, b, &bt.shape)?.into_data(),
        _ => return Err(OpError::Malformed("inputs a and b have different code types".into())),
    };
    Ok(outputs([("y", Tensor::new(at.shape.clone(), y))]))
}

/// `qadd`: `y = a + b` (see `quantproof_reference::elementwise`).
pub fn qadd(case: &Case, profile: &Profile, path: Path) -> OpResult {
    binary(case, profile, path, BinaryOp::Add)
}

/// `sub`: `y = a - b`.
pub fn sub(case: &Case, profile: &Profile, path: Path) -> OpResult {
    binary(case, profile, path, BinaryOp::Sub)
}

/// `qmul`: `y = a * b`.
pub fn qmul(case: &Case, profile: &Profile, path: Path) -> OpResult {
    binary(case, profile, path, BinaryOp::Mul)
}

/// `requantize`: codes `x` (`x_dtype`, `x_scale`, `x_zero_point`) to codes `y` (`y_dtype`, ...).
pub fn requantize(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let (xq, yq) = (affine(case, "x")?, affine(case, "y")?);
    let (xt, x) = codes(case, "x")?;
    let y_dtype = Attrs(case).opt_str("y_dtype")?.unwrap_or("i8");
    fn run<A: FastCode, B: FastCode>(
        x: &[A],
        xq: Affine,
        yq: Affine,
        profile: &Profile,
        path: Path,
    ) -> Result<Vec<B>, OpError> {
        let mut out = vec![B::default(); x.len()];
        match path {
            Path::Reference => requantize::requantize_codes(x, xq, yq, profile.arith, &mut out)?,
            Path::Optimized(e) => e.requantize_codes(x, xq, yq, profile.arith, &mut out)?,
        }
        Ok(out)
    }
    let y = match (x, y_dtype) {
        (Codes::I8(x), "i8") => run::<i8, i8>(x, xq, yq, profile, path)?.into_data(),
        (Codes::I8(x), "u8") => run::<i8, u8>(x, xq, yq, profile, path)?.into_data(),
        (Codes::U8(x), "i8") => run::<u8, i8>(x, xq, yq, profile, path)?.into_data(),
        (Codes::U8(x), "u8") => run::<u8, u8>(x, xq, yq, profile, path)?.into_data(),
        (_, other) => return Err(OpError::Malformed(format!("attrs.y_dtype: {other:?} is not i8 or u8"))),
    };
    Ok(outputs([("y", Tensor::new(xt.shape.clone(), y))]))
}
