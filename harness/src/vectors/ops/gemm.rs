//! The matrix ops: `matmul_integer`, `qlinear_matmul` (onnxruntime), `qlinear` (torch, tflite),
//! `dynamic_linear` (torch), `qconv2d` (torch, tflite) and `depthwise_conv2d` (tflite).
//!
//! Attrs and layouts are those of `VECTORS.md`; the profile picks the framework's op in
//! [`quantproof_reference::linear`] and [`quantproof_reference::conv`]. The matrix ops run on
//! every path: the reference's `*_with` functions take the path's accumulator (the reference's
//! loop, or the engine's packed GEMM) and keep their checks and output stages; the convolutions
//! take a `conv::ConvAccumulator` the same way (the direct loop, or im2col on the engine's GEMM).
//!
//! | op | profile | reference |
//! |---|---|---|
//! | `matmul_integer` | onnxruntime | [`gemm::matmul_integer`] (`a` u8 or i8, `b` `[K, N]` u8 or i8) |
//! | `qlinear_matmul` | onnxruntime | [`linear::onnxruntime_qlinear_matmul`] |
//! | `qlinear` | torch | [`linear::torch_qlinear`] (`x` u8, `w` `[N, K]` i8, bias f32) |
//! | `qlinear` | tflite | [`linear::tflite_fully_connected`] (`x` i8, bias i32) |
//! | `dynamic_linear` | torch | [`linear::torch_dynamic_linear`] |
//! | `qconv2d` | torch | [`conv::torch_qconv2d`] (NCHW, OIHW) |
//! | `qconv2d` | tflite | [`conv::tflite_conv2d`] (NHWC, OHWI, SAME / VALID) |
//! | `depthwise_conv2d` | tflite | [`conv::tflite_depthwise_conv2d`] (NHWC, `[1, KH, KW, C * m]`) |
//!
//! Input tensors of more than two dimensions to the matrix ops are flattened to `[M, K]` over
//! their leading dimensions (PyTorch's and TFLite's rule); the output keeps them.

use super::{input, outputs, Attrs, OpError, OpResult, Path};
use crate::vectors::parse::{Case, Data, Tensor};
use quantproof_reference::conv::{self, Conv2dGeometry, TfPadding};
use quantproof_reference::gemm::{self, GemmDims, Operand8, ZeroPoints};
use quantproof_reference::linear::{self, Activation, WeightQuant};
use quantproof_reference::profile::Profile;
use quantproof_reference::requantize::RequantizeKind;
use quantproof_reference::scheme::RangeReduction;

/// `$body` with `$g` the path's accumulator: the reference's loop ([`gemm::Exact`]) or the
/// engine (`quantproof_optimized`'s `impl Accumulator for Engine` and `impl ConvAccumulator for
/// Engine`); the body is compiled once for each.
macro_rules! with_acc {
    ($path:expr, $g:ident => $body:expr) => {
        match $path {
            Path::Reference => {
                let $g = &gemm::Exact;
                $body
            }
            Path::Optimized(e) => {
                let $g = e;
                $body
            }
        }
    };
}

fn f32_attr(a: &Attrs<'_>, key: &str) -> Result<f32, OpError> {
    let v = a.opt_f64(key)?.ok_or_else(|| OpError::Malformed(format!("attrs.{key} is missing")))?;
    Ok(v as f32)
}

/// An element type a tensor's data can be read as (without conversion).
trait Elem: Sized {
    const NAME: &'static str;
    fn slice(d: &Data) -> Option<&[Self]>;
}

macro_rules! elem {
    ($($t:ty => $v:ident, $name:literal;)*) => {$(
        impl Elem for $t {
            const NAME: &'static str = $name;
            fn slice(d: &Data) -> Option<&[$t]> {
                match d {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}
elem! {
    u8 => U8, "u8";
    i8 => I8, "i8";
    f32 => F32, "f32";
    i32 => I32, "i32";
}

/// Input `name`'s data as `T`, or a typed error naming the type it has.
fn data<'a, T: Elem>(t: &'a Tensor, name: &str) -> Result<&'a [T], OpError> {
    T::slice(&t.data).ok_or_else(|| {
        OpError::Malformed(format!("input {name}: expected {} data, got {}", T::NAME, t.data.dtype().name()))
    })
}

/// `[M, K]` from a tensor of rank >= 2 (leading dimensions flattened) and the leading shape.
fn rows_cols(t: &Tensor, name: &str) -> Result<(usize, usize, Vec<usize>), OpError> {
    match t.shape.split_last() {
        Some((&k, lead)) if !lead.is_empty() => {
            let m = lead.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
            let m = m.ok_or_else(|| OpError::Malformed(format!("input {name}: shape {:?} overflows", t.shape)))?;
            Ok((m, k, lead.to_vec()))
        }
        _ => Err(OpError::Malformed(format!("input {name}: expected rank >= 2, got shape {:?}", t.shape))),
    }
}

fn matrix(t: &Tensor, name: &str) -> Result<(usize, usize), OpError> {
    match t.shape.as_slice() {
        [r, c] => Ok((*r, *c)),
        s => Err(OpError::Malformed(format!("input {name}: expected a matrix, got shape {s:?}"))),
    }
}

/// Weight quantization from `w_scale[]`, `w_zero_point[]`, `w_axis` (`null`: per tensor).
fn weight_quant<'a>(a: &Attrs<'_>, scales: &'a [f32], zps: &'a [i32]) -> Result<WeightQuant<'a>, OpError> {
    Ok(match a.opt_int("w_axis")? {
        None => match (scales, zps) {
            ([s], [z]) => WeightQuant::PerTensor { scale: *s, zero_point: *z },
            _ => {
                return Err(OpError::Malformed(format!(
                    "per-tensor weights need one scale and zero point, got {} and {}",
                    scales.len(),
                    zps.len()
                )))
            }
        },
        Some(_) => WeightQuant::PerChannel { scales, zero_points: zps },
    })
}

fn out_shape(lead: &[usize], n: usize) -> Vec<usize> {
    let mut s = lead.to_vec();
    s.push(n);
    s
}

fn y(shape: Vec<usize>, data: Data) -> OpResult {
    Ok(outputs([("y", Tensor::new(shape, data))]))
}

/// The Q31 rounding of TFLite's convolutions: gemmlowp's double rounding, as
/// [`Profile::TFLITE`] documents (TFLite's default build, `TFLITE_SINGLE_ROUNDING` off).
fn tflite_kind(_profile: &Profile) -> RequantizeKind {
    RequantizeKind::DoubleRounding
}

/// The operands of a matrix product: `a` `[.., M, K]` (its leading dimensions returned), `b`
/// `[K, N]`.
fn matmul_operands(case: &Case) -> Result<(&Tensor, &Tensor, GemmDims, Vec<usize>), OpError> {
    let (ta, tb) = (input(case, "a")?, input(case, "b")?);
    let (m, k, lead) = rows_cols(ta, "a")?;
    let (kb, n) = matrix(tb, "b")?;
    if kb != k {
        return Err(OpError::Malformed(format!("a is [.., {k}] and b is [{kb}, {n}]")));
    }
    Ok((ta, tb, GemmDims::new(m, n, k), lead))
}

/// `matmul_integer` (onnxruntime): `a` `[M, K]` u8 or i8, `b` `[K, N]` u8 or i8, zero points in
/// attrs -> `y` i32.
pub fn matmul_integer(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if profile.name != "onnxruntime" {
        return Err(OpError::Unsupported(format!("matmul_integer under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let za = a.opt_int("a_zero_point")?.unwrap_or(0);
    let zb = a.opt_int("b_zero_point")?.unwrap_or(0);
    let (za, zb) = (
        i32::try_from(za).map_err(|_| OpError::Malformed(format!("a_zero_point {za}")))?,
        i32::try_from(zb).map_err(|_| OpError::Malformed(format!("b_zero_point {zb}")))?,
    );
    let (ta, tb, dims, lead) = matmul_operands(case)?;
    let zbs = ZeroPoints::PerTensor(zb);
    fn go<G: gemm::Accumulator, A: Operand8, B: Operand8>(
        g: &G,
        a: &[A],
        za: i32,
        b: &[B],
        zb: ZeroPoints<'_>,
        d: GemmDims,
    ) -> Result<Vec<i32>, OpError> {
        Ok(gemm::matmul_integer_with(g, a, za, b, zb, d)?)
    }
    let out = with_acc!(&path, g => match (&ta.data, &tb.data) {
        (Data::U8(x), Data::I8(w)) => go(g, x, za, w, zbs, dims)?,
        (Data::U8(x), Data::U8(w)) => go(g, x, za, w, zbs, dims)?,
        (Data::I8(x), Data::I8(w)) => go(g, x, za, w, zbs, dims)?,
        (Data::I8(x), Data::U8(w)) => go(g, x, za, w, zbs, dims)?,
        (x, w) => {
            return Err(OpError::Malformed(format!(
                "matmul_integer takes u8 or i8 operands, got {} and {}",
                x.dtype().name(),
                w.dtype().name()
            )))
        }
    });
    y(out_shape(&lead, dims.n), Data::I32(out))
}

/// `qlinear_matmul` (onnxruntime): `a` `[M, K]`, `b` `[K, N]`, per-tensor scales and zero points
/// in attrs, `y_dtype` u8 or i8.
pub fn qlinear_matmul(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if profile.name != "onnxruntime" {
        return Err(OpError::Unsupported(format!("qlinear_matmul under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let (sa, sb, sy) = (f32_attr(&a, "a_scale")?, f32_attr(&a, "b_scale")?, f32_attr(&a, "y_scale")?);
    let (za, zb, zy) = (a.i32("a_zero_point")?, a.i32("b_zero_point")?, a.i32("y_zero_point")?);
    let y_dtype = a.opt_str("y_dtype")?.unwrap_or("u8");
    let (ta, tb, dims, lead) = matmul_operands(case)?;
    let bq = WeightQuant::PerTensor { scale: sb, zero_point: zb };
    macro_rules! run {
        ($x:expr, $w:expr, $y:ty, $wrap:expr) => {{
            let v: Vec<$y> = with_acc!(&path, g => linear::onnxruntime_qlinear_matmul_with(g, $x, sa, za, $w, &bq, sy, zy, dims))?;
            $wrap(v)
        }};
    }
    let out = match (&ta.data, &tb.data, y_dtype) {
        (Data::U8(x), Data::I8(w), "u8") => run!(x, w, u8, Data::U8),
        (Data::U8(x), Data::U8(w), "u8") => run!(x, w, u8, Data::U8),
        (Data::I8(x), Data::I8(w), "i8") => run!(x, w, i8, Data::I8),
        (x, w, yd) => {
            return Err(OpError::Unsupported(format!(
                "QLinearMatMul with {} x {} -> {yd} (ONNX Runtime's kernels: u8 x u8/i8 -> u8, i8 x i8 -> i8)",
                x.dtype().name(),
                w.dtype().name()
            )))
        }
    };
    y(out_shape(&lead, dims.n), out)
}

/// `qlinear`: torch (`x` u8, bias f32, `relu`) or tflite (`x` i8, bias i32, `activation`).
pub fn qlinear(case: &Case, profile: &Profile, path: Path) -> OpResult {
    let a = Attrs(case);
    let (sx, sy) = (f32_attr(&a, "x_scale")?, f32_attr(&a, "y_scale")?);
    let (zx, zy) = (a.i32("x_zero_point")?, a.i32("y_zero_point")?);
    let (scales, zps) = (a.f32_list("w_scale")?, a.i32_list("w_zero_point")?);
    let wq = weight_quant(&a, &scales, &zps)?;
    let (tx, tw) = (input(case, "x")?, input(case, "w")?);
    let (m, k, lead) = rows_cols(tx, "x")?;
    let (n, kw) = matrix(tw, "w")?;
    if kw != k {
        return Err(OpError::Malformed(format!("x is [.., {k}] and w is [{n}, {kw}]")));
    }
    let dims = GemmDims::new(m, n, k);
    let bias = case.inputs.get("bias");
    match profile.name {
        "torch" => {
            let relu = if a.opt_bool("relu")?.unwrap_or(false) { Activation::Relu } else { Activation::None };
            let b = bias.map(|t| data::<f32>(t, "bias")).transpose()?;
            let (x, w) = (data::<u8>(tx, "x")?, data::<i8>(tw, "w")?);
            let out = with_acc!(&path, g => linear::torch_qlinear_with(g, x, sx, zx, w, &wq, b, sy, zy, relu, dims))?;
            y(out_shape(&lead, n), Data::U8(out))
        }
        "tflite" => {
            let act = Activation::parse(a.opt_str("activation")?.unwrap_or("NONE"))?;
            let b = bias.map(|t| data::<i32>(t, "bias")).transpose()?;
            let (x, w) = (data::<i8>(tx, "x")?, data::<i8>(tw, "w")?);
            let out =
                with_acc!(&path, g => linear::tflite_fully_connected_with(g, x, sx, zx, w, &wq, b, sy, zy, act, dims))?;
            y(out_shape(&lead, n), Data::I8(out))
        }
        other => Err(OpError::Unsupported(format!("qlinear under profile {other}"))),
    }
}

/// `dynamic_linear` (torch): `x` f32 `[M, K]`, `w` i8 `[N, K]`, bias f32 -> `y` f32.
pub fn dynamic_linear(case: &Case, profile: &Profile, path: Path) -> OpResult {
    if profile.name != "torch" {
        return Err(OpError::Unsupported(format!("dynamic_linear under profile {}", profile.name)));
    }
    let a = Attrs(case);
    let (scales, zps) = (a.f32_list("w_scale")?, a.i32_list("w_zero_point")?);
    let wq = weight_quant(&a, &scales, &zps)?;
    let reduce_range = a.opt_bool("reduce_range")?.unwrap_or(false);
    let relu = if a.opt_bool("relu")?.unwrap_or(false) { Activation::Relu } else { Activation::None };
    let (tx, tw) = (input(case, "x")?, input(case, "w")?);
    let (m, k, lead) = rows_cols(tx, "x")?;
    let (n, kw) = matrix(tw, "w")?;
    if kw != k {
        return Err(OpError::Malformed(format!("x is [.., {k}] and w is [{n}, {kw}]")));
    }
    let b = case.inputs.get("bias").map(|t| data::<f32>(t, "bias")).transpose()?;
    let (x, w) = (data::<f32>(tx, "x")?, data::<i8>(tw, "w")?);
    let (rr, dims) = (RangeReduction::reduced_if(reduce_range), GemmDims::new(m, n, k));
    let out = with_acc!(&path, g => linear::torch_dynamic_linear_with(g, x, w, &wq, b, rr, relu, dims))?;
    y(out_shape(&lead, n), Data::F32(out))
}

fn pair(a: &Attrs<'_>, key: &str, default: usize) -> Result<[usize; 2], OpError> {
    let v = match a.0.attrs.get(key) {
        None | Some(serde_json::Value::Null) => return Ok([default, default]),
        Some(_) => a.i32_list(key)?,
    };
    match v.as_slice() {
        [h, w] if *h >= 0 && *w >= 0 => Ok([*h as usize, *w as usize]),
        _ => Err(OpError::Malformed(format!("attrs.{key}: expected two non-negative integers, got {v:?}"))),
    }
}

fn dims4(t: &Tensor, name: &str) -> Result<[usize; 4], OpError> {
    match t.shape.as_slice() {
        [a, b, c, d] => Ok([*a, *b, *c, *d]),
        s => Err(OpError::Malformed(format!("input {name}: expected rank 4, got shape {s:?}"))),
    }
}

/// `qconv2d`: torch (NCHW / OIHW, explicit padding, groups) or tflite (NHWC / OHWI, SAME /
/// VALID); `depthwise` (tflite only) reads `[1, KH, KW, C * m]` weights.
fn conv(case: &Case, profile: &Profile, path: Path, depthwise: bool) -> OpResult {
    let a = Attrs(case);
    let (sx, sy) = (f32_attr(&a, "x_scale")?, f32_attr(&a, "y_scale")?);
    let (zx, zy) = (a.i32("x_zero_point")?, a.i32("y_zero_point")?);
    let (scales, zps) = (a.f32_list("w_scale")?, a.i32_list("w_zero_point")?);
    let wq = weight_quant(&a, &scales, &zps)?;
    let stride = pair(&a, "stride", 1)?;
    let dilation = pair(&a, "dilation", 1)?;
    let (tx, tw) = (input(case, "x")?, input(case, "w")?);
    let (xs, ws) = (dims4(tx, "x")?, dims4(tw, "w")?);
    let bias = case.inputs.get("bias");
    match profile.name {
        "torch" if !depthwise => {
            let groups = a.opt_int("groups")?.unwrap_or(1);
            let groups = usize::try_from(groups).map_err(|_| OpError::Malformed(format!("attrs.groups: {groups}")))?;
            let padding = pair(&a, "padding", 0)?;
            let g = Conv2dGeometry {
                batch: xs[0],
                in_channels: xs[1],
                in_h: xs[2],
                in_w: xs[3],
                out_channels: ws[0],
                kernel_h: ws[2],
                kernel_w: ws[3],
                stride,
                pad_before: padding,
                pad_after: padding,
                dilation,
                groups,
            };
            if ws[1].checked_mul(groups) != Some(xs[1]) {
                return Err(OpError::Malformed(format!(
                    "w is {ws:?}: {} input channels per group x {groups} groups != {} channels",
                    ws[1], xs[1]
                )));
            }
            let relu = if a.opt_bool("relu")?.unwrap_or(false) { Activation::Relu } else { Activation::None };
            let b = bias.map(|t| data::<f32>(t, "bias")).transpose()?;
            let out =
                with_acc!(&path, c => conv::torch_qconv2d_with(c, &g, data::<u8>(tx, "x")?, sx, zx, data::<i8>(tw, "w")?, &wq, b, sy, zy, relu))?;
            let (oh, ow) = g.output_hw()?;
            y(vec![g.batch, g.out_channels, oh, ow], Data::U8(out))
        }
        "tflite" => {
            let padding = match a.opt_str("padding")? {
                Some(p) if p.eq_ignore_ascii_case("same") => TfPadding::Same,
                Some(p) if p.eq_ignore_ascii_case("valid") => TfPadding::Valid,
                other => {
                    return Err(OpError::Malformed(format!("attrs.padding: expected SAME or VALID, got {other:?}")))
                }
            };
            let (kh, kw, oc, groups) = if depthwise {
                let m = a.opt_int("depth_multiplier")?.unwrap_or(1);
                if ws[0] != 1 || usize::try_from(m).ok().and_then(|m| xs[3].checked_mul(m)) != Some(ws[3]) {
                    return Err(OpError::Malformed(format!(
                        "depthwise weights {ws:?} do not match {} channels x depth multiplier {m}",
                        xs[3]
                    )));
                }
                (ws[1], ws[2], ws[3], xs[3])
            } else {
                let groups = a.opt_int("groups")?.unwrap_or(1);
                let groups =
                    usize::try_from(groups).map_err(|_| OpError::Malformed(format!("attrs.groups: {groups}")))?;
                if ws[3].checked_mul(groups) != Some(xs[3]) {
                    return Err(OpError::Malformed(format!("w is {ws:?} for {} channels and {groups} groups", xs[3])));
                }
                (ws[1], ws[2], ws[0], groups)
            };
            let (ph, pw) = (
                Conv2dGeometry::tf_padding(padding, xs[1], kh, stride[0], dilation[0]),
                Conv2dGeometry::tf_padding(padding, xs[2], kw, stride[1], dilation[1]),
            );
            let g = Conv2dGeometry {
                batch: xs[0],
                in_channels: xs[3],
                in_h: xs[1],
                in_w: xs[2],
                out_channels: oc,
                kernel_h: kh,
                kernel_w: kw,
                stride,
                pad_before: [ph.0, pw.0],
                pad_after: [ph.1, pw.1],
                dilation,
                groups,
            };
            let act = Activation::parse(a.opt_str("activation")?.unwrap_or("NONE"))?;
            let b = bias.map(|t| data::<i32>(t, "bias")).transpose()?;
            let (x, w) = (data::<i8>(tx, "x")?, data::<i8>(tw, "w")?);
            let kind = tflite_kind(profile);
            let out = if depthwise {
                with_acc!(&path, c => conv::tflite_depthwise_conv2d_with(c, &g, x, sx, zx, w, &wq, b, sy, zy, act, kind))?
            } else {
                with_acc!(&path, c => conv::tflite_conv2d_with(c, &g, x, sx, zx, w, &wq, b, sy, zy, act, kind))?
            };
            let (oh, ow) = g.output_hw()?;
            y(vec![g.batch, oh, ow, g.out_channels], Data::I8(out))
        }
        other => Err(OpError::Unsupported(format!(
            "{} under profile {other}",
            if depthwise { "depthwise_conv2d" } else { "qconv2d" }
        ))),
    }
}

pub fn qconv2d(case: &Case, profile: &Profile, path: Path) -> OpResult {
    conv(case, profile, path, false)
}

pub fn depthwise_conv2d(case: &Case, profile: &Profile, path: Path) -> OpResult {
    conv(case, profile, path, true)
}
