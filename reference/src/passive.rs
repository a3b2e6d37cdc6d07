//! Passive ops: the ops that move codes without arithmetic, whose output scale and zero point are
//! inherited (seed 000: "their scale is inherited"): concatenation, padding and resizing, under
//! each framework's rules.
//!
//! | op | rule |
//! |---|---|
//! | [`concat`] | inputs with the output's scale and zero point are copied; others are requantized to it: PyTorch dequantizes `(q - z) s` in f32 and quantizes with its own rule (`x * RN(1/s_y)`, ties to even); TFLite's `ConcatenationWithScaling` computes `round(q * r + b) + z_y` with `r = s_i * (1 / s_y)`, `b = -z_i r` in f32 and rounds half away from zero |
//! | [`pad`] | the pad value is the code of real 0: the zero point (TFLite `PAD` without a constant); input and output share their scale and zero point |
//! | [`resize_nearest`] | TFLite's `ResizeNearestNeighbor`: source index `min(floor((i + o) r), n - 1)` (`round` with `align_corners`), `o = 0.5` with `half_pixel_centers`, `r = n_in / n_out` or `(n_in - 1) / (n_out - 1)` with `align_corners`, in f32 |
//! | [`resize_bilinear`] | TFLite's integer `ResizeBilinearInteger`: 10-bit fixed-point source positions and weights, the four products summed in 64 bits, rounded half away from zero at 2^20 |
//!
//! Shapes are NHWC for the resize ops (`[N, H, W, C]`). Shape mismatches, scale or zero-point
//! errors and sizes whose element count overflows are typed errors.

use crate::affine::{code_range, Activation, Affine};
use crate::error::{QuantError, Result};
use crate::profile::ArithRule;
use crate::quantize::{quantize_value, PreparedScale, QuantizeRule, ScaleOp};
use crate::rounding::RoundingMode;
use crate::scheme::Code;

fn invalid(what: &'static str, detail: String) -> QuantError {
    QuantError::InvalidArgument { what, detail }
}

fn numel(shape: &[usize]) -> Result<usize> {
    crate::affine::element_count(shape)
}

/// What [`concat`] checks and computes once, shared with the optimized twin
/// (`quantproof_optimized`'s `Engine::concat`, which converts each input through a 256-entry
/// table of [`ConcatPlan::convert`]).
#[derive(Debug, Clone)]
pub struct ConcatPlan {
    pub out_shape: Vec<usize>,
    /// The product of the dimensions before the axis (the number of output slabs).
    pub outer: usize,
    /// The product of the dimensions after the axis (codes per step along it).
    pub inner: usize,
    pub axis: usize,
    rule: ArithRule,
    y: Affine,
    y_scale: PreparedScale,
    range: crate::scheme::CodeRange,
    lo: i32,
    hi: i32,
}

impl ConcatPlan {
    /// [`concat`]'s checks, in its order: at least one input, the axis, the output's qparams,
    /// then per input its qparams, its shape (the first input's but along the axis), its data
    /// length, and the output length along the axis (overflow).
    pub fn new<C: Code>(
        rule: ArithRule,
        inputs: &[(&[C], &[usize], Affine)],
        axis: impl Into<crate::scheme::Axis>,
        y: Affine,
        activation: Activation,
    ) -> Result<ConcatPlan> {
        let Some(&(_, first, _)) = inputs.first() else {
            return Err(QuantError::EmptyInput { what: "concat inputs" });
        };
        let rank = first.len();
        let axis = axis.into().resolve(rank)?;
        y.check::<C>(inputs.len())?;
        let mut out_shape = first.to_vec();
        out_shape[axis] = 0;
        for (i, &(q, shape, a)) in inputs.iter().enumerate() {
            a.check::<C>(i)?;
            if shape.len() != rank || shape.iter().enumerate().any(|(d, &n)| d != axis && n != first[d]) {
                return Err(invalid(
                    "concat input shape",
                    format!("input {i} has shape {shape:?}, input 0 {first:?} (axis {axis})"),
                ));
            }
            crate::error::check_len("concat input", numel(shape)?, q.len())?;
            out_shape[axis] = out_shape[axis]
                .checked_add(shape[axis])
                .ok_or(QuantError::Overflow { what: "concat output shape", detail: format!("axis {axis}") })?;
        }
        let outer: usize = first[..axis].iter().product();
        let inner: usize = first[axis + 1..].iter().product();
        let (lo, hi) = activation.code_bounds::<C>(y);
        let y_scale = PreparedScale::new(0, y.scale, ScaleOp::MultiplyByReciprocal)?;
        Ok(ConcatPlan { out_shape, outer, inner, axis, rule, y, y_scale, range: code_range::<C>(), lo, hi })
    }

    /// An input code `q` of affine `a` as an output code: copied when `a` is the output's,
    /// else requantized by the rule (see the module docs); then clamped to the activation.
    pub fn convert(&self, q: i32, a: Affine) -> Result<i32> {
        let v = if a == self.y {
            q
        } else {
            match self.rule {
                ArithRule::Tflite => {
                    let r = a.scale * (1.0f32 / self.y.scale);
                    let b = -(a.zero_point as f32) * r;
                    ((q as f32 * r + b).round() as i32).saturating_add(self.y.zero_point)
                }
                ArithRule::Torch | ArithRule::OnnxRuntime => {
                    let torch_rule = QuantizeRule::new(ScaleOp::MultiplyByReciprocal, RoundingMode::HalfToEven);
                    quantize_value(a.dequantize(q), &self.y_scale, self.y.zero_point, self.range, torch_rule, 0)?
                }
            }
        };
        Ok(v.clamp(self.lo, self.hi))
    }
}

/// Concatenates `inputs` (codes with their shapes and affines) along `axis` into codes with the
/// affine `y`, under `rule` (see the module docs). Returns the codes and the output shape.
/// Errors: those of [`ConcatPlan::new`], then of the conversion of the first code that fails.
pub fn concat<C: Code>(
    rule: ArithRule,
    inputs: &[(&[C], &[usize], Affine)],
    axis: impl Into<crate::scheme::Axis>,
    y: Affine,
    activation: Activation,
) -> Result<(Vec<C>, Vec<usize>)> {
    let plan = ConcatPlan::new(rule, inputs, axis, y, activation)?;
    let mut out = Vec::with_capacity(numel(&plan.out_shape)?);
    for o in 0..plan.outer {
        for &(q, shape, a) in inputs {
            let chunk = shape[plan.axis] * plan.inner;
            for &v in &q[o * chunk..(o + 1) * chunk] {
                out.push(C::from_code(plan.convert(v.to_code(), a)?));
            }
        }
    }
    Ok((out, plan.out_shape))
}

/// [`pad`]'s checks, in its order (the qparams, equal in and out, one padding per dimension, the
/// data length, the output shape's overflow and its element count up to 2^31), and the output
/// shape with its element count; shared with the optimized twin (`quantproof_optimized`'s
/// `Engine::pad`).
pub fn pad_shape<C: Code>(
    x_len: usize,
    shape: &[usize],
    paddings: &[[usize; 2]],
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<usize>, usize)> {
    xq.check::<C>(0)?;
    yq.check::<C>(1)?;
    if xq != yq {
        return Err(invalid("pad output", format!("{yq:?} differs from the input's {xq:?}: PAD inherits its qparams")));
    }
    crate::error::check_len("paddings", shape.len(), paddings.len())?;
    crate::error::check_len("x", numel(shape)?, x_len)?;
    let out_shape: Vec<usize> = shape
        .iter()
        .zip(paddings)
        .map(|(&n, &[b, a])| n.checked_add(b).and_then(|v| v.checked_add(a)))
        .collect::<Option<_>>()
        .ok_or(QuantError::Overflow { what: "pad output shape", detail: format!("{shape:?} + {paddings:?}") })?;
    let total = numel(&out_shape)?;
    if total > 1 << 31 {
        return Err(QuantError::TooLarge { what: "pad output elements", value: total as u128, limit: 1 << 31 });
    }
    Ok((out_shape, total))
}

/// Pads `x` of `shape` with `paddings[d] = [before, after]` per dimension; the pad value is the
/// zero point (real 0). `x` and `y` must share their scale and zero point (TFLite's `PAD`).
/// Errors: [`pad_shape`]'s.
pub fn pad<C: Code>(
    x: &[C],
    shape: &[usize],
    paddings: &[[usize; 2]],
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, Vec<usize>)> {
    let (out_shape, total) = pad_shape::<C>(x.len(), shape, paddings, xq, yq)?;
    let fill = C::from_code(yq.zero_point);
    let mut out = vec![fill; total];
    let rank = shape.len();
    // Row-major strides of the output.
    let mut stride = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * out_shape[d + 1];
    }
    let mut idx = vec![0usize; rank];
    for &v in x {
        let at: usize = (0..rank).map(|d| (idx[d] + paddings[d][0]) * stride[d]).sum();
        out[at] = v;
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok((out, out_shape))
}

/// How a resize maps output to input coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizeMode {
    pub align_corners: bool,
    pub half_pixel_centers: bool,
}

/// [`resize`]'s checks, in its order: the qparams (equal in and out), the data length, positive
/// spatial sizes, and an output of at most 2^31 elements (bilinear adds
/// [`check_bilinear`]). Shared with the optimized twin (`quantproof_optimized`'s
/// `Engine::resize`).
pub fn check_resize<C: Code>(x: &[C], shape: [usize; 4], size: [usize; 2], xq: Affine, yq: Affine) -> Result<()> {
    xq.check::<C>(0)?;
    yq.check::<C>(1)?;
    if xq != yq {
        return Err(invalid(
            "resize output",
            format!("{yq:?} differs from the input's {xq:?}: resizing inherits qparams"),
        ));
    }
    crate::error::check_len("x", numel(&shape)?, x.len())?;
    if size.contains(&0) || shape[1] == 0 || shape[2] == 0 {
        return Err(invalid("size", format!("{size:?} from {shape:?}: every spatial size must be positive")));
    }
    let out = numel(&[shape[0], size[0], size[1], shape[3]])?;
    if out > 1 << 31 {
        return Err(QuantError::TooLarge { what: "resize output elements", value: out as u128, limit: 1 << 31 });
    }
    Ok(())
}

/// TFLite's `GetNearestNeighbor`: the source index of output index `i` (f32 arithmetic).
pub fn nearest_source(i: usize, n_in: usize, n_out: usize, mode: ResizeMode) -> usize {
    let scale = if mode.align_corners && n_out > 1 {
        (n_in - 1) as f32 / (n_out - 1) as f32
    } else {
        n_in as f32 / n_out as f32
    };
    let offset = if mode.half_pixel_centers { 0.5f32 } else { 0.0 };
    let v = (i as f32 + offset) * scale;
    let s = if mode.align_corners { v.round() } else { v.floor() };
    (s.max(0.0) as usize).min(n_in - 1)
}

/// How a resize computes an output from its input neighbourhood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMethod {
    /// TFLite's `ResizeNearestNeighbor` (see [`nearest_source`]).
    Nearest,
    /// TFLite's `ResizeBilinearInteger` (see [`bilinear_source`] and the formula below).
    Bilinear,
}

/// TFLite's int8/uint8 resize of NHWC codes (`shape = [n, h, w, c]`) to `size = [h', w']`; the
/// output has the input's qparams (`yq` must equal `xq`). Returns the codes and the output shape.
///
/// Nearest: output pixel `(oy, ox)` copies input pixel `(nearest_source(oy), nearest_source(ox))`.
/// Bilinear, with 10-bit fixed-point source positions from [`bilinear_source`]:
///
/// ```text
/// wy = y_10 - 2^10 y0, wx = x_10 - 2^10 x0                  (10-bit fractions)
/// v_20 = q[y0,x0] (2^10 - wy)(2^10 - wx) + q[y1,x0] wy (2^10 - wx)
///      + q[y0,x1] (2^10 - wy) wx + q[y1,x1] wy wx           (int64)
/// y = (v_20 + sign(v_20) 2^19) / 2^20                      (C division: toward zero)
/// ```
///
/// Errors: bad or differing qparams, a data length that does not match `shape`, an empty size,
/// more than 2^31 output elements, bilinear spatial sizes above 2^20 or a bilinear upscale whose
/// last source lies past the input ([`check_bilinear`]).
pub fn resize<C: Code>(
    method: ResizeMethod,
    x: &[C],
    shape: [usize; 4],
    size: [usize; 2],
    mode: ResizeMode,
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, [usize; 4])> {
    check_resize(x, shape, size, xq, yq)?;
    match method {
        ResizeMethod::Nearest => Ok(resize_nearest(x, shape, size, mode)),
        ResizeMethod::Bilinear => resize_bilinear(x, shape, size, mode),
    }
}

fn resize_nearest<C: Code>(x: &[C], shape: [usize; 4], size: [usize; 2], mode: ResizeMode) -> (Vec<C>, [usize; 4]) {
    let [n, h, w, c] = shape;
    let mut out = Vec::with_capacity(n * size[0] * size[1] * c);
    for b in 0..n {
        for oy in 0..size[0] {
            let iy = nearest_source(oy, h, size[0], mode);
            for ox in 0..size[1] {
                let ix = nearest_source(ox, w, size[1], mode);
                let at = ((b * h + iy) * w + ix) * c;
                out.extend_from_slice(&x[at..at + c]);
            }
        }
    }
    (out, [n, size[0], size[1], c])
}

/// TFLite's `ComputeInterpolationValuesInteger`: the 10-bit fixed-point source position of output
/// index `i` and its two neighbours `(scaled, lower, upper)`.
pub fn bilinear_source(i: usize, scale_10: i32, half_pixel_centers: bool, n_in: usize) -> (i32, usize, usize) {
    let i = i as i32;
    let scaled = if half_pixel_centers { i * scale_10 + scale_10 / 2 - (1 << 9) } else { i * scale_10 };
    let lower = (scaled / (1 << 10)).max(0) as usize;
    let upper = (((scaled + (1 << 10) - 1) / (1 << 10)).max(0) as usize).min(n_in - 1);
    (scaled, lower, upper)
}

/// `(2^10 n_in + n_out / 2) / n_out`, or with `align_corners` the same of `n_in - 1, n_out - 1`.
pub fn scale_10(n_in: usize, n_out: usize, align_corners: bool) -> i32 {
    let (a, b) = if align_corners && n_out > 1 { (n_in - 1, n_out - 1) } else { (n_in, n_out) };
    (((1i64 << 10) * a as i64 + b as i64 / 2) / b as i64) as i32
}

/// Bilinear resizing's extra checks: spatial sizes of at most 2^20 (so that the 10-bit
/// fixed-point positions fit `i32`), and a last output row and column whose lower source lies
/// inside the input. TFLite's `ComputeInterpolationValuesInteger` clamps the upper source but
/// not the lower one, and `(2^10 n_in + n_out / 2) / n_out` rounded up makes the lower source of
/// the last outputs of a large upscale pass the input's end (`n_in = 1000` to `n_out = 2^20`:
/// row 1023), where TFLite reads outside the tensor: here a typed error.
pub fn check_bilinear(shape: [usize; 4], size: [usize; 2], mode: ResizeMode) -> Result<()> {
    let [_, h, w, _] = shape;
    if h > 1 << 20 || w > 1 << 20 || size[0] > 1 << 20 || size[1] > 1 << 20 {
        return Err(QuantError::TooLarge {
            what: "resize spatial size",
            value: h.max(w).max(size[0]).max(size[1]) as u128,
            limit: 1 << 20,
        });
    }
    for (n_in, n_out) in [(h, size[0]), (w, size[1])] {
        if n_in == 0 || n_out == 0 {
            continue;
        }
        // The lower source grows with the output index: the last one is the largest.
        let (_, lower, _) = bilinear_source(n_out - 1, scale_10(n_in, n_out, mode.align_corners), mode.half_pixel_centers, n_in);
        if lower >= n_in {
            return Err(invalid(
                "bilinear resize",
                format!(
                    "{n_in} -> {n_out}: the 10-bit scale rounds up so far that the last output's source {lower} \
                     lies past the input (TFLite reads outside the tensor there)"
                ),
            ));
        }
    }
    Ok(())
}

fn resize_bilinear<C: Code>(
    x: &[C],
    shape: [usize; 4],
    size: [usize; 2],
    mode: ResizeMode,
) -> Result<(Vec<C>, [usize; 4])> {
    let [n, h, w, c] = shape;
    check_bilinear(shape, size, mode)?;
    let (sy, sx) = (scale_10(h, size[0], mode.align_corners), scale_10(w, size[1], mode.align_corners));
    let at = |b: usize, y: usize, xx: usize, ch: usize| x[((b * h + y) * w + xx) * c + ch].to_code() as i64;
    let mut out = Vec::with_capacity(n * size[0] * size[1] * c);
    for b in 0..n {
        for oy in 0..size[0] {
            let (y10, y0, y1) = bilinear_source(oy, sy, mode.half_pixel_centers, h);
            let wy = (y10 - (1 << 10) * y0 as i32) as i64;
            for ox in 0..size[1] {
                let (x10, x0, x1) = bilinear_source(ox, sx, mode.half_pixel_centers, w);
                let wx = (x10 - (1 << 10) * x0 as i32) as i64;
                for ch in 0..c {
                    let v = at(b, y0, x0, ch) * ((1 << 10) - wy) * ((1 << 10) - wx)
                        + at(b, y1, x0, ch) * wy * ((1 << 10) - wx)
                        + at(b, y0, x1, ch) * ((1 << 10) - wy) * wx
                        + at(b, y1, x1, ch) * wy * wx;
                    let round = if v > 0 { 1i64 << 19 } else { -(1i64 << 19) };
                    out.push(C::from_code(((v + round) / (1 << 20)) as i32));
                }
            }
        }
    }
    Ok((out, [n, size[0], size[1], c]))
}
