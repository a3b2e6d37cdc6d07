//! `concat` (inputs `x0`, `x1`, ...; attrs `axis`, `scales[]`, `zero_points[]`, `y_scale`,
//! `y_zero_point`, `activation`), `pad` (`paddings`), `resize_nearest` and `resize_bilinear`
//! (`size`, `align_corners`, `half_pixel_centers`, NHWC) through `quantproof_reference::passive`.

use super::activation::output_affine;
use super::arith::{activation, affine, codes, Codes, IntoData};
use super::{outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::affine::Affine;
use quantproof_reference::passive::{self, ResizeMethod, ResizeMode};
use quantproof_reference::profile::Profile;
use serde_json::Value;

pub fn concat(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let a = Attrs(case);
    let scales = a.f32_list("scales")?;
    let zps = a.i32_list("zero_points")?;
    let axis = a.int("axis")?;
    let y = affine(case, "y")?;
    let act = activation(case)?;
    let mut names: Vec<&String> = case.inputs.keys().filter(|k| k.starts_with('x')).collect();
    names.sort_by_key(|k| k[1..].parse::<usize>().unwrap_or(usize::MAX));
    if names.len() != scales.len() || names.len() != zps.len() {
        return Err(OpError::Malformed(format!(
            "{} inputs for {} scales and {} zero points",
            names.len(),
            scales.len(),
            zps.len()
        )));
    }
    fn go<C: quantproof_optimized::ops::FastCode>(
        path: Path,
        profile: &Profile,
        ins: Vec<(&[C], &[usize], Affine)>,
        axis: i64,
        y: Affine,
        act: quantproof_reference::affine::Activation,
    ) -> Result<(Vec<C>, Vec<usize>), OpError> {
        Ok(match path {
            Path::Reference => passive::concat(profile.arith, &ins, axis, y, act)?,
            Path::Optimized(e) => e.concat(profile.arith, &ins, axis, y, act)?,
        })
    }
    let tensors: Vec<&Tensor> = names.iter().map(|n| &case.inputs[*n]).collect();
    let aff = |i: usize| Affine::new(scales[i], zps[i]);
    let (data, shape) = match &tensors[0].data {
        Data::I8(_) => {
            let mut ins = Vec::new();
            for (i, t) in tensors.iter().enumerate() {
                let Data::I8(v) = &t.data else { return Err(OpError::Malformed("mixed input dtypes".into())) };
                ins.push((v.as_slice(), t.shape.as_slice(), aff(i)));
            }
            let (y, s) = go(path, profile, ins, axis, y, act)?;
            (y.into_data(), s)
        }
        Data::U8(_) => {
            let mut ins = Vec::new();
            for (i, t) in tensors.iter().enumerate() {
                let Data::U8(v) = &t.data else { return Err(OpError::Malformed("mixed input dtypes".into())) };
                ins.push((v.as_slice(), t.shape.as_slice(), aff(i)));
            }
            let (y, s) = go(path, profile, ins, axis, y, act)?;
            (y.into_data(), s)
        }
        other => {
            return Err(OpError::Malformed(format!("concat inputs: expected i8 or u8, got {}", other.dtype().name())))
        }
    };
    Ok(outputs([("y", Tensor::new(shape, data))]))
}

fn paddings(case: &Case) -> Result<Vec<[usize; 2]>, OpError> {
    let bad = || OpError::Malformed("attrs.paddings: expected [[before, after], ...] of non-negative integers".into());
    let Some(Value::Array(rows)) = case.attrs.get("paddings") else { return Err(bad()) };
    rows.iter()
        .map(|r| match r.as_array().map(|v| v.iter().map(|x| x.as_u64()).collect::<Vec<_>>()) {
            Some(v) if v.len() == 2 && v.iter().all(|x| x.is_some()) => {
                Ok([v[0].unwrap_or(0) as usize, v[1].unwrap_or(0) as usize])
            }
            _ => Err(bad()),
        })
        .collect()
}

pub fn pad(case: &Case, _profile: &Profile, path: Path) -> OpResult {
    let xq = affine(case, "x")?;
    let yq = output_affine(case, xq)?;
    let p = paddings(case)?;
    let (xt, x) = codes(case, "x")?;
    fn go<C: quantproof_optimized::ops::FastCode>(
        path: &Path,
        x: &[C],
        shape: &[usize],
        p: &[[usize; 2]],
        xq: Affine,
        yq: Affine,
    ) -> Result<(Vec<C>, Vec<usize>), OpError> {
        Ok(match path {
            Path::Reference => passive::pad(x, shape, p, xq, yq)?,
            Path::Optimized(e) => e.pad(x, shape, p, xq, yq)?,
        })
    }
    let (y, s) = match x {
        Codes::I8(x) => {
            let (y, s) = go(&path, x, &xt.shape, &p, xq, yq)?;
            (y.into_data(), s)
        }
        Codes::U8(x) => {
            let (y, s) = go(&path, x, &xt.shape, &p, xq, yq)?;
            (y.into_data(), s)
        }
    };
    Ok(outputs([("y", Tensor::new(s, y))]))
}

fn resize(case: &Case, path: Path, method: ResizeMethod) -> OpResult {
    let a = Attrs(case);
    if let Some(l) = a.opt_str("layout")? {
        if !l.eq_ignore_ascii_case("NHWC") {
            return Err(OpError::Unsupported(format!("resize in layout {l}: TFLite's kernels are NHWC")));
        }
    }
    let xq = affine(case, "x")?;
    let yq = output_affine(case, xq)?;
    let size = a.i32_list("size")?;
    let size = match size.as_slice() {
        [h, w] if *h > 0 && *w > 0 => [*h as usize, *w as usize],
        _ => return Err(OpError::Malformed(format!("attrs.size: expected [h, w] > 0, got {size:?}"))),
    };
    let mode = ResizeMode {
        align_corners: a.opt_bool("align_corners")?.unwrap_or(false),
        half_pixel_centers: a.opt_bool("half_pixel_centers")?.unwrap_or(false),
    };
    let (xt, x) = codes(case, "x")?;
    let shape = <[usize; 4]>::try_from(xt.shape.as_slice())
        .map_err(|_| OpError::Malformed(format!("input x: expected NHWC, got shape {:?}", xt.shape)))?;
    #[allow(clippy::too_many_arguments)]
    fn go<C: quantproof_optimized::ops::FastCode>(
        path: &Path,
        method: ResizeMethod,
        x: &[C],
        shape: [usize; 4],
        size: [usize; 2],
        mode: ResizeMode,
        xq: Affine,
        yq: Affine,
    ) -> Result<(Vec<C>, [usize; 4]), OpError> {
        Ok(match path {
            Path::Reference => passive::resize(method, x, shape, size, mode, xq, yq)?,
            Path::Optimized(e) => e.resize(method, x, shape, size, mode, xq, yq)?,
        })
    }
    let (y, s) = match x {
        Codes::I8(x) => {
            let (y, s) = go(&path, method, x, shape, size, mode, xq, yq)?;
            (y.into_data(), s)
        }
        Codes::U8(x) => {
            let (y, s) = go(&path, method, x, shape, size, mode, xq, yq)?;
            (y.into_data(), s)
        }
    };
    Ok(outputs([("y", Tensor::new(s.to_vec(), y))]))
}

pub fn resize_nearest(case: &Case, _profile: &Profile, path: Path) -> OpResult {
    resize(case, path, ResizeMethod::Nearest)
}

pub fn resize_bilinear(case: &Case, _profile: &Profile, path: Path) -> OpResult {
    resize(case, path, ResizeMethod::Bilinear)
}

pub fn softmax(case: &Case, _profile: &Profile, path: Path) -> OpResult {
    let a = Attrs(case);
    let xq = affine(case, "x")?;
    let yq = affine(case, "y")?;
    let beta = a.opt_f64("beta")?.unwrap_or(1.0) as f32;
    let axis = a.opt_int("axis")?.unwrap_or(-1);
    let (xt, x) = codes(case, "x")?;
    fn go<C: quantproof_optimized::ops::FastCode>(
        path: Path,
        x: &[C],
        shape: &[usize],
        axis: i64,
        beta: f32,
        xq: Affine,
        yq: Affine,
    ) -> Result<Vec<C>, OpError> {
        Ok(match path {
            Path::Reference => quantproof_reference::softmax::tflite_softmax(x, shape, axis, beta, xq, yq)?,
            Path::Optimized(e) => {
                let mut out = vec![C::from_code(C::MIN); x.len()];
                e.tflite_softmax(x, shape, axis, beta, xq, yq, &mut out)?;
                out
            }
        })
    }
    let y = match x {
        Codes::I8(x) => go(path, x, &xt.shape, axis, beta, xq, yq)?.into_data(),
        Codes::U8(x) => go(path, x, &xt.shape, axis, beta, xq, yq)?.into_data(),
    };
    Ok(outputs([("y", Tensor::new(xt.shape.clone(), y))]))
}
