//! `quantize`, `dequantize`, `fake_quantize` and `dynamic_quantize`.
//!
//! Attrs (see `VECTORS.md`): `scale[]`, `zero_point[]`, `axis` (`null`: per-tensor, one scale and
//! zero point; otherwise per-axis, one per index along `axis`, a negative axis counting from the
//! end as in PyTorch and ONNX), `dtype` (the code type: `i8`, `u8`, and here also any width the
//! reference knows, `i4`, `u16`, ...) and `qmin`, `qmax` (the code range, which may be narrower
//! than the dtype; it defaults to the dtype's full range). The profile decides the arithmetic:
//! [`Profile::quantize`] for quantize, [`Profile::fake_quantize_rule`] for fake-quantize,
//! [`Profile::dynamic`] for dynamic quantization.
//!
//! Codes of up to 8 bits are stored as `i8` / `u8` and run on the reference and on every
//! optimized ISA; 9- to 16-bit codes are stored as `i16` / `u16`, which only the reference
//! provides (the format has no 16-bit dtype: they are given and returned as `i32`).

use super::{input, input_f32, mask_to_f32, outputs, scalar, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_optimized::ops::FastCode;
use quantproof_reference::error::QuantError;
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{self as refq, QuantizeRule};
use quantproof_reference::scheme::{Code, CodeRange, Granularity, QType};

/// The Rust type codes are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    I8,
    U8,
    I16,
    U16,
}

impl Storage {
    fn of(qtype: QType) -> Storage {
        match (qtype.bits() <= 8, qtype.is_signed()) {
            (true, true) => Storage::I8,
            (true, false) => Storage::U8,
            (false, true) => Storage::I16,
            (false, false) => Storage::U16,
        }
    }
}

/// The code type and range a case asks for.
struct Codes {
    qtype: QType,
    range: CodeRange,
}

impl Codes {
    /// From `attrs.dtype` (or `fallback` when absent) and `attrs.qmin/qmax` (default: the
    /// dtype's full range). The range must fit the dtype.
    fn from_attrs(case: &Case, fallback: Option<QType>) -> Result<Codes, OpError> {
        let a = Attrs(case);
        let qtype = match a.opt_str("dtype")? {
            Some(s) => QType::parse(s).map_err(|e| OpError::Malformed(format!("attrs.dtype: {e}")))?,
            None => fallback.ok_or_else(|| OpError::Malformed("attrs.dtype is missing".into()))?,
        };
        let full = qtype.full_range();
        let qmin = a.opt_int("qmin")?.unwrap_or(full.qmin() as i64);
        let qmax = a.opt_int("qmax")?.unwrap_or(full.qmax() as i64);
        if qmin < full.qmin() as i64 || qmax > full.qmax() as i64 {
            return Err(OpError::Malformed(format!(
                "attrs.qmin/qmax: [{qmin}, {qmax}] does not fit {} [{}, {}]",
                qtype.name(),
                full.qmin(),
                full.qmax()
            )));
        }
        // Both lie inside the dtype's range, so they fit i32.
        let range = CodeRange::new(qmin as i32, qmax as i32)?;
        Ok(Codes { qtype, range })
    }
}

/// The range `[qmin, qmax]` from attrs, both required (fake-quantize has no dtype).
fn required_range(case: &Case) -> Result<CodeRange, OpError> {
    let a = Attrs(case);
    Ok(CodeRange::new(a.i32("qmin")?, a.i32("qmax")?)?)
}

/// Scales, zero points and granularity from attrs, for a tensor of `shape`.
fn quant_params(case: &Case, shape: &[usize], range: CodeRange) -> Result<QuantParams, OpError> {
    let a = Attrs(case);
    let scales = a.f32_list("scale")?;
    let zero_points = a.i32_list("zero_point")?;
    let granularity = match a.opt_int("axis")? {
        None => Granularity::PerTensor,
        Some(axis) => Granularity::PerAxis { axis: normalize_axis(axis, shape.len())?.into() },
    };
    // Built field by field so that a wrong parameter count reaches the reference's own check.
    Ok(QuantParams { granularity, scales, zero_points, range })
}

/// `axis` in `[-rank, rank)`, negative counting from the end.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, OpError> {
    quantproof_reference::scheme::Axis::new(axis)
        .resolve(rank)
        .map_err(|e| OpError::Malformed(format!("attrs.axis: {e}")))
}

fn no_kernel(what: &str) -> OpError {
    OpError::Unsupported(format!("quantproof_optimized has no kernel for {what}"))
}

fn quantize_fast<C: FastCode>(
    path: Path,
    x: &[f32],
    shape: &[usize],
    p: &QuantParams,
    rule: QuantizeRule,
) -> Result<Vec<C>, OpError> {
    let mut q = vec![C::default(); x.len()];
    match path {
        Path::Reference => refq::quantize(x, shape, p, rule, &mut q)?,
        Path::Optimized(e) => e.quantize(x, shape, p, rule, &mut q)?,
    }
    Ok(q)
}

/// 16-bit codes, which only the reference computes, widened to i32.
fn quantize_wide<C: Code + Into<i32>>(
    x: &[f32],
    shape: &[usize],
    p: &QuantParams,
    rule: QuantizeRule,
) -> Result<Vec<i32>, OpError> {
    let mut q = vec![C::default(); x.len()];
    refq::quantize(x, shape, p, rule, &mut q)?;
    Ok(q.into_iter().map(Into::into).collect())
}

/// `quantize`: `x` (f32) -> `y` (codes), `y = clamp(round(x op s) + z, qmin, qmax)` with the
/// profile's [`Profile::quantize`] rule.
pub fn quantize(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let (xt, x) = input_f32(case, "x")?;
    let codes = Codes::from_attrs(case, None)?;
    let p = quant_params(case, &xt.shape, codes.range)?;
    let (shape, rule) = (&xt.shape, profile.quantize);
    let y = match Storage::of(codes.qtype) {
        Storage::I8 => Data::I8(quantize_fast::<i8>(path, x, shape, &p, rule)?),
        Storage::U8 => Data::U8(quantize_fast::<u8>(path, x, shape, &p, rule)?),
        Storage::I16 | Storage::U16 if matches!(path, Path::Optimized(_)) => return Err(no_kernel("16-bit codes")),
        Storage::I16 => Data::I32(quantize_wide::<i16>(x, shape, &p, rule)?),
        Storage::U16 => Data::I32(quantize_wide::<u16>(x, shape, &p, rule)?),
    };
    Ok(outputs([("y", Tensor::new(xt.shape.clone(), y))]))
}

fn dequantize_fast<C: FastCode>(path: Path, q: &[C], shape: &[usize], p: &QuantParams) -> Result<Vec<f32>, OpError> {
    let mut y = vec![0f32; q.len()];
    match path {
        Path::Reference => refq::dequantize(q, shape, p, &mut y)?,
        Path::Optimized(e) => e.dequantize(q, shape, p, &mut y)?,
    }
    Ok(y)
}

/// Wide codes given as i32/i64 data, converted to the storage type `C` (each must fit `qtype`).
fn dequantize_wide<C: Code>(path: Path, t: &Tensor, qtype: QType, p: &QuantParams) -> Result<Vec<f32>, OpError> {
    if let Path::Optimized(_) = path {
        return Err(no_kernel("16-bit codes"));
    }
    let full = qtype.full_range();
    let q = (0..t.len())
        .map(|i| {
            let v = t.data.get_i64(i).ok_or_else(|| OpError::Malformed("input x: expected integer codes".into()))?;
            if !full.contains(v) {
                return Err(OpError::Malformed(format!("inputs.x.data[{i}]: {v} is not a {} code", qtype.name())));
            }
            Ok(C::from_code(v as i32))
        })
        .collect::<Result<Vec<C>, OpError>>()?;
    let mut y = vec![0f32; q.len()];
    refq::dequantize(&q, &t.shape, p, &mut y)?;
    Ok(y)
}

/// `dequantize`: `x` (codes) -> `y` (f32), `y = (x - z) * s` in f32. The codes' dtype must agree
/// with `attrs.dtype` (codes of up to 8 bits come as `i8` / `u8`, wider ones as `i32` / `i64`).
pub fn dequantize(case: &Case, _profile: &Profile, path: Path) -> OpResult {
    let xt = input(case, "x")?;
    let implied = match &xt.data {
        Data::I8(_) => Some(QType::I8),
        Data::U8(_) => Some(QType::U8),
        _ => None,
    };
    let codes = Codes::from_attrs(case, implied)?;
    let storage = Storage::of(codes.qtype);
    let p = quant_params(case, &xt.shape, codes.range)?;
    let y = match (&xt.data, storage) {
        (Data::I8(q), Storage::I8) => dequantize_fast(path, q, &xt.shape, &p)?,
        (Data::U8(q), Storage::U8) => dequantize_fast(path, q, &xt.shape, &p)?,
        (Data::I32(_) | Data::I64(_), Storage::I16) => dequantize_wide::<i16>(path, xt, codes.qtype, &p)?,
        (Data::I32(_) | Data::I64(_), Storage::U16) => dequantize_wide::<u16>(path, xt, codes.qtype, &p)?,
        (d, _) => {
            return Err(OpError::Malformed(format!(
                "input x is {} but attrs.dtype is {}",
                d.dtype().name(),
                codes.qtype.name()
            )))
        }
    };
    Ok(outputs([("y", Tensor::new(xt.shape.clone(), Data::F32(y)))]))
}

/// `fake_quantize`: `x` -> `y = (clamp(round(x op s) + z, qmin, qmax) - z) * s` and
/// `grad_mask` (1 where `qmin <= round(x op s) + z <= qmax`, else 0: the straight-through
/// estimator's `dL/dx` for `dL/dy = 1`), with [`Profile::fake_quantize_rule`].
pub fn fake_quantize(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let rule = profile.fake_quantize_rule().map_err(|e| OpError::Unsupported(e.to_string()))?;
    let (xt, x) = input_f32(case, "x")?;
    let range = required_range(case)?;
    let p = quant_params(case, &xt.shape, range)?;
    let mut y = vec![0f32; x.len()];
    let mut mask = vec![false; x.len()];
    match path {
        Path::Reference => refq::fake_quantize(x, &xt.shape, &p, rule, &mut y, Some(&mut mask))?,
        Path::Optimized(e) => e.fake_quantize(x, &xt.shape, &p, rule, &mut y, Some(&mut mask))?,
    }
    Ok(outputs([
        ("y", Tensor::new(xt.shape.clone(), Data::F32(y))),
        ("grad_mask", Tensor::new(xt.shape.clone(), Data::F32(mask_to_f32(&mask)))),
    ]))
}

/// `dynamic_quantize`: `x` -> `y` (u8), `scale`, `zero_point`, with parameters read from the
/// data by the profile's dynamic rule (ONNX `DynamicQuantizeLinear` for `onnxruntime`).
pub fn dynamic_quantize(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if let Some(d) = Attrs(case).opt_str("dtype")? {
        if QType::parse(d).ok() != Some(QType::U8) {
            return Err(OpError::Unsupported(format!("dynamic quantization to {d} (only u8 is defined)")));
        }
    }
    let (xt, x) = input_f32(case, "x")?;
    let mut y = vec![0u8; x.len()];
    let p = match path {
        Path::Reference => profile.dynamic_quantize(x, &mut y)?,
        Path::Optimized(e) => e.dynamic_quantize(profile, x, &mut y)?,
    };
    let z = u8::try_from(p.zero_point).map_err(|_| {
        OpError::Rejected(QuantError::InvalidArgument {
            what: "dynamic zero point",
            detail: format!("{} does not fit u8", p.zero_point),
        })
    })?;
    Ok(outputs([
        ("y", Tensor::new(xt.shape.clone(), Data::U8(y))),
        ("scale", scalar(Data::F32(vec![p.scale]))),
        ("zero_point", scalar(Data::U8(vec![z]))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantproof_reference::scheme::Signedness;

    #[test]
    fn axes() {
        assert_eq!(normalize_axis(-1, 3).unwrap(), 2);
        assert_eq!(normalize_axis(-3, 3).unwrap(), 0);
        assert_eq!(normalize_axis(2, 3).unwrap(), 2);
        assert!(normalize_axis(3, 3).is_err());
        assert!(normalize_axis(-4, 3).is_err());
        assert!(normalize_axis(0, 0).is_err());
    }

    #[test]
    fn storage_by_width() {
        assert_eq!(Storage::of(QType::I4), Storage::I8);
        assert_eq!(Storage::of(QType::U8), Storage::U8);
        assert_eq!(Storage::of(QType::new(12, Signedness::Signed).unwrap()), Storage::I16);
        assert_eq!(Storage::of(QType::U16), Storage::U16);
    }
}
