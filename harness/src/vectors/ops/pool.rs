//! `max_pool2d`, `avg_pool2d` (attrs `kernel`, `stride`, `padding` as `[ph, pw]` (PyTorch) or
//! `SAME` / `VALID` (TFLite), `count_include_pad`, `activation`, `layout` (default NCHW)) and
//! `mean` (`axis[]`, `keep_dims`), through `quantproof_reference::pool`.

use super::activation::output_affine;
use super::arith::{activation, affine, codes, Codes, IntoData};
use super::{outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Tensor};
use quantproof_optimized::ops::FastCode;
use quantproof_reference::affine::Affine;
use quantproof_reference::pool::{self, Layout, Padding, Pool2d};
use quantproof_reference::profile::Profile;
use serde_json::Value;

fn pair(case: &Case, key: &str) -> Result<[usize; 2], OpError> {
    let v = Attrs(case).i32_list(key)?;
    match v.as_slice() {
        [a, b] if *a >= 0 && *b >= 0 => Ok([*a as usize, *b as usize]),
        [a] if *a >= 0 => Ok([*a as usize, *a as usize]),
        _ => Err(OpError::Malformed(format!("attrs.{key}: expected two non-negative integers, got {v:?}"))),
    }
}

fn layout(case: &Case) -> Result<Layout, OpError> {
    match Attrs(case).opt_str("layout")?.unwrap_or("NCHW").to_ascii_uppercase().as_str() {
        "NCHW" => Ok(Layout::Nchw),
        "NHWC" => Ok(Layout::Nhwc),
        other => Err(OpError::Malformed(format!("attrs.layout: {other:?} is not NCHW or NHWC"))),
    }
}

fn padding(case: &Case) -> Result<Padding, OpError> {
    match case.attrs.get("padding") {
        Some(Value::String(s)) => match s.to_ascii_uppercase().as_str() {
            "SAME" => Ok(Padding::Same),
            "VALID" => Ok(Padding::Valid),
            other => Err(OpError::Malformed(format!("attrs.padding: {other:?}"))),
        },
        Some(Value::Array(_)) => Ok(Padding::Explicit(pair(case, "padding")?)),
        None | Some(Value::Null) => Ok(Padding::Explicit([0, 0])),
        Some(other) => Err(OpError::Malformed(format!("attrs.padding: {other}"))),
    }
}

fn shape4(t: &Tensor) -> Result<[usize; 4], OpError> {
    <[usize; 4]>::try_from(t.shape.as_slice())
        .map_err(|_| OpError::Malformed(format!("input x: expected a 4-D tensor, got shape {:?}", t.shape)))
}

fn pool(case: &Case, profile: &Profile, path: Path, max: bool) -> OpResult {
    let xq = affine(case, "x")?;
    let yq = output_affine(case, xq)?;
    let p = Pool2d {
        kernel: pair(case, "kernel")?,
        stride: pair(case, "stride")?,
        padding: padding(case)?,
        count_include_pad: Attrs(case).opt_bool("count_include_pad")?.unwrap_or(true),
        activation: activation(case)?,
    };
    let lay = layout(case)?;
    let (xt, x) = codes(case, "x")?;
    let shape = shape4(xt)?;
    #[allow(clippy::too_many_arguments)]
    fn go<C: FastCode>(
        path: Path,
        max: bool,
        profile: &Profile,
        x: &[C],
        shape: [usize; 4],
        lay: Layout,
        p: &Pool2d,
        xq: Affine,
        yq: Affine,
    ) -> Result<(Vec<C>, [usize; 4]), OpError> {
        Ok(if max {
            match path {
                Path::Reference => pool::max_pool2d(x, shape, lay, p, xq, yq)?,
                Path::Optimized(e) => e.max_pool2d(x, shape, lay, p, xq, yq)?,
            }
        } else {
            match path {
                Path::Reference => pool::avg_pool2d(profile.arith, x, shape, lay, p, xq, yq)?,
                Path::Optimized(e) => e.avg_pool2d(profile.arith, x, shape, lay, p, xq, yq)?,
            }
        })
    }
    let (y, s) = match x {
        Codes::I8(x) => {
            let (y, s) = go(path, max, profile, x, shape, lay, &p, xq, yq)?;
            (y.into_data(), s)
        }
        Codes::U8(x) => {
            let (y, s) = go(path, max, profile, x, shape, lay, &p, xq, yq)?;
            (y.into_data(), s)
        }
    };
    Ok(outputs([("y", Tensor::new(s.to_vec(), y))]))
}

pub fn max_pool2d(case: &Case, profile: &Profile, path: Path) -> OpResult {
    pool(case, profile, path, true)
}

pub fn avg_pool2d(case: &Case, profile: &Profile, path: Path) -> OpResult {
    pool(case, profile, path, false)
}

pub fn mean(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let xq = affine(case, "x")?;
    let yq = output_affine(case, xq)?;
    let axes: Vec<i64> = Attrs(case).i32_list("axis")?.into_iter().map(i64::from).collect();
    let keep_dims = Attrs(case).opt_bool("keep_dims")?.unwrap_or(false);
    let (xt, x) = codes(case, "x")?;
    #[allow(clippy::too_many_arguments)]
    fn go<C: FastCode>(
        path: &Path,
        profile: &Profile,
        x: &[C],
        shape: &[usize],
        axes: &[i64],
        keep_dims: bool,
        xq: Affine,
        yq: Affine,
    ) -> Result<(Vec<C>, Vec<usize>), OpError> {
        Ok(match path {
            Path::Reference => pool::mean(profile.arith, x, shape, axes, keep_dims, xq, yq)?,
            Path::Optimized(e) => e.mean(profile.arith, x, shape, axes, keep_dims, xq, yq)?,
        })
    }
    let (y, s) = match x {
        Codes::I8(x) => {
            let (y, s) = go(&path, profile, x, &xt.shape, &axes, keep_dims, xq, yq)?;
            (y.into_data(), s)
        }
        Codes::U8(x) => {
            let (y, s) = go(&path, profile, x, &xt.shape, &axes, keep_dims, xq, yq)?;
            (y.into_data(), s)
        }
    };
    Ok(outputs([("y", Tensor::new(s, y))]))
}
