//! Pooling on 8-bit codes: 2-D max and average pooling (NCHW as PyTorch lays tensors out, NHWC as
//! TFLite does) and TFLite's MEAN over any axes.
//!
//! Max pooling is a passive op: the output inherits the input's scale and zero point, and the
//! maximum of codes is the code of the maximum (quantization is monotone). Average pooling and
//! mean must divide, and each framework rounds that division its own way:
//!
//! | rule | average of the window |
//! |---|---|
//! | `Tflite` (`reference_integer_ops::AveragePool`) | sum of the raw codes over the window's positions inside the input, divided by their count with rounding half away from zero (`(acc ± n/2) / n` in C), then the fused activation's code bounds |
//! | `Torch` (`avg_pool2d_out_frame`, quantized) | `acc = sum(q) - size * zx` over the positions inside the input, `M = RN_f32((sx / sy) / divisor)` where the divisor counts the padded positions when `count_include_pad`, `y = clamp(nearbyint(RN(acc * M) + zy))`, ties to even |
//! | `OnnxRuntime` | the same formula as `Torch` (ONNX Runtime's QLinearAveragePool is not recorded; this is a stand-in, documented as such) |
//!
//! TFLite's MEAN (`reduce.cc` with `reference_ops::QuantizedMeanOrSum`, integer-only in 2.21):
//! `M = Q31(sx / sy)` (f64) is divided by the count `n` of reduced elements by folding it into the
//! multiplier: `k = min(floor(log2 n), 32, 31 + shift)`, `m' = (m * 2^k) / n` (64-bit, truncating),
//! `shift' = shift - k`; then `y = clamp(zy + MBQM(sum(q) - zx * n, m', shift'))`. The recorded
//! vectors (axes `{1, 2}` with and without `keep_dims`, single axes, all axes, negative axes) all
//! take this path; none has equal input and output quantization.

use crate::affine::{check_shape, element_count, Activation, Affine};
use crate::error::{QuantError, Result};
use crate::profile::ArithRule;
use crate::requantize::{multiply_by_quantized_multiplier_double_rounding as mbqm, QuantizedMultiplier};
use crate::scheme::Code;

/// How a 4-D tensor's dimensions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// batch, channel, height, width (PyTorch).
    Nchw,
    /// batch, height, width, channel (TFLite).
    Nhwc,
}

impl Layout {
    /// `(n, c, h, w)` of a shape in this layout.
    pub fn dims(self, shape: &[usize; 4]) -> (usize, usize, usize, usize) {
        match self {
            Layout::Nchw => (shape[0], shape[1], shape[2], shape[3]),
            Layout::Nhwc => (shape[0], shape[3], shape[1], shape[2]),
        }
    }

    /// The shape of `(n, c, h, w)` in this layout.
    pub fn shape(self, n: usize, c: usize, h: usize, w: usize) -> [usize; 4] {
        match self {
            Layout::Nchw => [n, c, h, w],
            Layout::Nhwc => [n, h, w, c],
        }
    }

    /// The flat index of `(n, c, y, x)` in a tensor of `(c, h, w)` in this layout.
    pub fn index(self, (c_len, h, w): (usize, usize, usize), n: usize, c: usize, y: usize, x: usize) -> usize {
        match self {
            Layout::Nchw => ((n * c_len + c) * h + y) * w + x,
            Layout::Nhwc => ((n * h + y) * w + x) * c_len + c,
        }
    }
}

/// How the borders are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// PyTorch's symmetric padding `[top/bottom, left/right]`: `out = (in + 2p - k) / s + 1`
    /// (floor); PyTorch requires `p <= k / 2`.
    Explicit([usize; 2]),
    /// TensorFlow's `SAME`: `out = ceil(in / s)`, total padding `max((out - 1) s + k - in, 0)`,
    /// half (rounded down) before.
    Same,
    /// TensorFlow's `VALID`: `out = (in - k) / s + 1`, no padding.
    Valid,
}

/// A 2-D pooling window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pool2d {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    pub padding: Padding,
    /// Average pooling: divide by the window size including padded positions (PyTorch's
    /// `count_include_pad`; TFLite never does).
    pub count_include_pad: bool,
    /// The fused activation (TFLite).
    pub activation: Activation,
}

/// Output size and padding before, along one dimension.
fn out_size(len: usize, k: usize, s: usize, padding: Padding, dim: usize) -> Result<(usize, usize)> {
    if k == 0 || s == 0 {
        return Err(QuantError::InvalidArgument {
            what: "pooling window",
            detail: format!("kernel {k} and stride {s} must be positive"),
        });
    }
    let (out, pad) = match padding {
        Padding::Explicit(p) => {
            let p = p[dim];
            if p > k / 2 {
                return Err(QuantError::InvalidArgument {
                    what: "pooling padding",
                    detail: format!("padding {p} exceeds half the kernel {k} (PyTorch rejects it)"),
                });
            }
            let padded = len + 2 * p;
            (if padded >= k { (padded - k) / s + 1 } else { 0 }, p)
        }
        Padding::Same => {
            let out = len.div_ceil(s);
            let total = ((out.max(1) - 1) * s + k).saturating_sub(len);
            (out, total / 2)
        }
        Padding::Valid => (if len >= k { (len - k) / s + 1 } else { 0 }, 0),
    };
    if out == 0 {
        return Err(QuantError::InvalidArgument {
            what: "pooling window",
            detail: format!("kernel {k}, stride {s} and padding {padding:?} leave no output on an input of {len}"),
        });
    }
    Ok((out, pad))
}

enum PoolKind {
    Max,
    Avg,
}

/// Where a 2-D pooling's windows fall: the input's `(n, c, h, w)`, the output's height and width,
/// the padding before each, and the output shape in the input's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub out_shape: [usize; 4],
}

impl PoolGeometry {
    /// The input rows `[y0, y1)` and columns `[x0, x1)` of output `(oy, ox)`'s window (the part
    /// inside the input; empty when the window lies in the padding).
    pub fn window(&self, p: &Pool2d, oy: usize, ox: usize) -> (usize, usize, usize, usize) {
        let (y0, x0, y1, x1) = self.window_bounds(p, oy, ox);
        let (ys, ye) = (y0.max(0) as usize, (y1.min(self.h as i64)).max(0) as usize);
        let (xs, xe) = (x0.max(0) as usize, (x1.min(self.w as i64)).max(0) as usize);
        (ys, ye.max(ys), xs, xe.max(xs))
    }
}

impl PoolGeometry {
    /// Output `(oy, ox)`'s whole window `[y0, y1) x [x0, x1)` in input coordinates, reaching into
    /// the padding (negative or past the input).
    pub fn window_bounds(&self, p: &Pool2d, oy: usize, ox: usize) -> (i64, i64, i64, i64) {
        let y0 = (oy * p.stride[0]) as i64 - self.pad_h as i64;
        let x0 = (ox * p.stride[1]) as i64 - self.pad_w as i64;
        (y0, x0, y0 + p.kernel[0] as i64, x0 + p.kernel[1] as i64)
    }
}

/// The checks every 2-D pooling makes, in its order (shape against the data length, both
/// quantizations, an empty input, the window), and its geometry. Max pooling checks first that
/// `yq == xq` ([`max_pool2d`]); the optimized twin calls this with the same arguments.
pub fn pool2d_geometry<C: Code>(
    len: usize,
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<PoolGeometry> {
    check_shape(&shape, len)?;
    xq.check::<C>(0)?;
    yq.check::<C>(1)?;
    let (n, c, h, w) = layout.dims(&shape);
    if len == 0 {
        return Err(QuantError::EmptyInput { what: "x" });
    }
    let (oh, pad_h) = out_size(h, p.kernel[0], p.stride[0], p.padding, 0)?;
    let (ow, pad_w) = out_size(w, p.kernel[1], p.stride[1], p.padding, 1)?;
    let out_shape = layout.shape(n, c, oh, ow);
    element_count(&out_shape)?;
    Ok(PoolGeometry { n, c, h, w, oh, ow, pad_h, pad_w, out_shape })
}

/// The checks of [`max_pool2d`] in its order, and its geometry.
pub fn max_pool2d_geometry<C: Code>(
    len: usize,
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<PoolGeometry> {
    check_passive(xq, yq, "max_pool2d output quantization")?;
    pool2d_geometry::<C>(len, shape, layout, p, xq, yq)
}

#[allow(clippy::too_many_arguments)]
fn pool2d<C: Code>(
    kind: PoolKind,
    rule: ArithRule,
    x: &[C],
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, [usize; 4])> {
    let g = pool2d_geometry::<C>(x.len(), shape, layout, p, xq, yq)?;
    let PoolGeometry { n, c, h, w, oh, ow, out_shape, .. } = g;
    let mut out = vec![C::default(); element_count(&out_shape)?];
    let (lo, hi) = p.activation.code_bounds::<C>(yq);
    for b in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    // The window's cells inside the input (padded positions are absent).
                    let (ys, ye, xs, xe) = g.window(p, oy, ox);
                    let cells = (ys..ye).flat_map(|y| (xs..xe).map(move |xx| (y, xx)));
                    let codes = cells.map(|(y, xx)| x[layout.index((c, h, w), b, ch, y, xx)].to_code());
                    let value = match kind {
                        // A window entirely in the padding has no maximum: the lowest code.
                        PoolKind::Max => codes.max().unwrap_or(C::MIN),
                        PoolKind::Avg => {
                            let sum: i64 = codes.map(i64::from).sum();
                            WindowAverage::new(rule, p, &g, oy, ox, xq, yq).apply::<C>(sum)
                        }
                    };
                    let (oc, ohh, oww) = (c, oh, ow);
                    out[layout.index((oc, ohh, oww), b, ch, oy, ox)] = C::from_code(value.clamp(lo, hi));
                }
            }
        }
    }
    Ok((out, out_shape))
}

/// How one window's average code is taken from the sum of its codes, under one framework's
/// rule (the table in the module docs): prepared once per window, applied per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowAverage {
    /// The window lies entirely in the padding: the output zero point.
    Empty { zy: i32 },
    /// TFLite: `sum / count`, rounded half away from zero.
    Tflite { count: i64 },
    /// PyTorch (and the ONNX Runtime stand-in): `nearbyint(RN(sum - count zx) * M + zy)` with
    /// `M = RN_f32((sx / sy) / divisor)` in f64, the divisor counting padded positions when
    /// `count_include_pad` (PyTorch clips the window at the padded border first).
    Torch { count: i64, zx: i32, zy: f32, multiplier: f32 },
}

impl WindowAverage {
    /// The rule of output `(oy, ox)`'s window.
    pub fn new(rule: ArithRule, p: &Pool2d, g: &PoolGeometry, oy: usize, ox: usize, xq: Affine, yq: Affine) -> Self {
        let (ys, ye, xs, xe) = g.window(p, oy, ox);
        let count = ((ye - ys) * (xe - xs)) as i64;
        if count == 0 {
            return WindowAverage::Empty { zy: yq.zero_point };
        }
        match rule {
            ArithRule::Tflite => WindowAverage::Tflite { count },
            ArithRule::Torch | ArithRule::OnnxRuntime => {
                let (y0, x0, y1, x1) = g.window_bounds(p, oy, ox);
                let ph1 = y1.min((g.h + g.pad_h) as i64);
                let pw1 = x1.min((g.w + g.pad_w) as i64);
                let divisor = if p.count_include_pad { (ph1 - y0) * (pw1 - x0) } else { count };
                let multiplier = ((xq.scale as f64 / yq.scale as f64) / divisor as f64) as f32;
                WindowAverage::Torch { count, zx: xq.zero_point, zy: yq.zero_point as f32, multiplier }
            }
        }
    }

    /// What output row `oy` contributes to its windows' rules: [`WindowAverage::new`] reads the
    /// row only through its clipped height and its height within the padded input, so two rows
    /// with one key have the same rule at every column (an optimized kernel prepares the rules
    /// once per key instead of once per row).
    pub fn row_key(p: &Pool2d, g: &PoolGeometry, oy: usize) -> (usize, i64) {
        let (ys, ye, _, _) = g.window(p, oy, 0);
        let (y0, _, y1, _) = g.window_bounds(p, oy, 0);
        (ye - ys, y1.min((g.h + g.pad_h) as i64) - y0)
    }

    /// The average code of a window whose codes sum to `sum`, within `C`'s range (the fused
    /// activation's bounds are the caller's).
    pub fn apply<C: Code>(&self, sum: i64) -> i32 {
        match *self {
            WindowAverage::Empty { zy } => zy,
            WindowAverage::Tflite { count } => div_round_half_away(sum, count) as i32,
            WindowAverage::Torch { count, zx, zy, multiplier } => {
                let acc = (sum - count * zx as i64) as f32;
                let v = (acc * multiplier + zy).round_ties_even();
                v.clamp(C::MIN as f32, C::MAX as f32) as i32
            }
        }
    }
}

/// `n / d` rounded half away from zero, `d > 0` (TFLite's `(acc ± d/2) / d` with C division).
fn div_round_half_away(n: i64, d: i64) -> i64 {
    if n > 0 {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    }
}

fn check_passive(xq: Affine, yq: Affine, op: &'static str) -> Result<()> {
    if xq != yq {
        return Err(QuantError::InvalidArgument {
            what: op,
            detail: format!("output quantization {yq:?} must equal the input's {xq:?} (a passive op inherits it)"),
        });
    }
    Ok(())
}

/// 2-D max pooling of a 4-D tensor in `layout`; the output inherits `xq`. Positions in the
/// padding never win (they are absent, not zero). Returns the output and its shape. Errors: a
/// shape that does not match the data, empty input, a zero kernel or stride, padding above half
/// the kernel (explicit), a window that yields no output, a bad scale or zero point, an output
/// quantization `yq` different from `xq`.
pub fn max_pool2d<C: Code>(
    x: &[C],
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, [usize; 4])> {
    check_passive(xq, yq, "max_pool2d output quantization")?;
    pool2d(PoolKind::Max, ArithRule::Tflite, x, shape, layout, p, xq, yq)
}

/// 2-D average pooling under `rule` (see the module docs for each framework's rounding).
/// Errors: as [`max_pool2d`]; TFLite requires `yq == xq`, PyTorch requantizes to `yq`.
pub fn avg_pool2d<C: Code>(
    rule: ArithRule,
    x: &[C],
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, [usize; 4])> {
    avg_pool2d_geometry::<C>(rule, x.len(), shape, layout, p, xq, yq)?;
    pool2d(PoolKind::Avg, rule, x, shape, layout, p, xq, yq)
}

/// The checks of [`avg_pool2d`] in its order (TFLite's `yq == xq` first), and its geometry.
pub fn avg_pool2d_geometry<C: Code>(
    rule: ArithRule,
    len: usize,
    shape: [usize; 4],
    layout: Layout,
    p: &Pool2d,
    xq: Affine,
    yq: Affine,
) -> Result<PoolGeometry> {
    if rule == ArithRule::Tflite {
        check_passive(xq, yq, "avg_pool2d output quantization")?;
    }
    pool2d_geometry::<C>(len, shape, layout, p, xq, yq)
}

/// TFLite's MEAN of `x` (shape `shape`) over `axes` (negative counting from the end, repeats
/// allowed), keeping reduced dimensions as 1 when `keep_dims`. Returns the output and its shape
/// (the formula is in the module docs). Errors: a shape that does not match the data, an axis out
/// of range, a bad scale or zero point, an unrepresentable multiplier; only the `Tflite` rule is
/// provided (PyTorch and ONNX Runtime means are not recorded).
pub fn mean<C: Code>(
    rule: ArithRule,
    x: &[C],
    shape: &[usize],
    axes: &[i64],
    keep_dims: bool,
    xq: Affine,
    yq: Affine,
) -> Result<(Vec<C>, Vec<usize>)> {
    let plan = MeanPlan::new::<C>(rule, x.len(), shape, axes, keep_dims, xq, yq)?;
    let rank = shape.len();
    // Sums of raw codes per output element.
    let mut sums = vec![0i64; plan.n_out];
    let mut strides_out = vec![0usize; rank];
    let mut s = 1;
    for k in (0..rank).rev() {
        strides_out[k] = if plan.reduced[k] { 0 } else { s };
        s *= plan.out_shape_kept[k];
    }
    let mut counter = vec![0usize; rank];
    for &q in x {
        let o: usize = counter.iter().zip(&strides_out).map(|(c, st)| c * st).sum();
        sums[o] += q.to_code() as i64;
        for d in (0..rank).rev() {
            counter[d] += 1;
            if counter[d] < shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
    Ok((plan.codes::<C>(&sums, x.len(), xq, yq)?, plan.out_shape))
}

/// What [`mean`] checks and computes before summing, shared with the optimized twin
/// (`quantproof_optimized`'s `Engine::mean`, which sums whole rows).
#[derive(Debug, Clone)]
pub struct MeanPlan {
    /// Which dimensions are reduced.
    pub reduced: Vec<bool>,
    /// The output shape with reduced dimensions kept as 1 (the sums' layout).
    pub out_shape_kept: Vec<usize>,
    /// The returned shape (`keep_dims` or not).
    pub out_shape: Vec<usize>,
    pub n_out: usize,
    /// Elements per output (the product of the reduced dimensions).
    pub count: usize,
}

impl MeanPlan {
    /// [`mean`]'s checks before summing, in its order: the rule, the shape against the data,
    /// the qparams, the axes, the output's element count.
    pub fn new<C: Code>(
        rule: ArithRule,
        len: usize,
        shape: &[usize],
        axes: &[i64],
        keep_dims: bool,
        xq: Affine,
        yq: Affine,
    ) -> Result<MeanPlan> {
        if rule != ArithRule::Tflite {
            return Err(QuantError::Unsupported { what: format!("quantized mean under {rule:?}") });
        }
        check_shape(shape, len)?;
        xq.check::<C>(0)?;
        yq.check::<C>(1)?;
        let rank = shape.len();
        let mut reduced = vec![false; rank];
        for &a in axes {
            reduced[crate::scheme::Axis::from(a).resolve(rank)?] = true;
        }
        let out_shape_kept: Vec<usize> = shape.iter().zip(&reduced).map(|(&d, &r)| if r { 1 } else { d }).collect();
        let out_shape: Vec<usize> = if keep_dims {
            out_shape_kept.clone()
        } else {
            shape.iter().zip(&reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).collect()
        };
        let n_out = element_count(&out_shape_kept)?;
        let count: usize = shape.iter().zip(&reduced).filter(|(_, &r)| r).map(|(&d, _)| d).product();
        Ok(MeanPlan { reduced, out_shape_kept, out_shape, n_out, count })
    }

    /// The codes from the sums of raw codes per output (`len`: the input's length): an empty
    /// input or reduction is an error, then TFLite's folded multiplier, then per output the
    /// centred sum (an error where it leaves TFLite's `int32`), requantized and clamped.
    pub fn codes<C: Code>(&self, sums: &[i64], len: usize, xq: Affine, yq: Affine) -> Result<Vec<C>> {
        if self.count == 0 || len == 0 {
            return Err(QuantError::EmptyInput { what: "x" });
        }
        let n = self.count as i64;
        let m = QuantizedMultiplier::from_real(xq.scale as f64 / yq.scale as f64)?;
        let k = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + m.shift);
        let folded =
            QuantizedMultiplier { multiplier: (((m.multiplier as i64) << k.max(0)) / n) as i32, shift: m.shift - k };
        let mut out = Vec::with_capacity(sums.len());
        for &sum in sums {
            let centred = sum - xq.zero_point as i64 * n;
            let centred = i32::try_from(centred).map_err(|_| QuantError::AccumulatorOverflow {
                what: "mean",
                detail: format!("the sum over {n} elements, {centred}, does not fit TFLite's int32 accumulator"),
            })?;
            out.push(C::from_code(
                (mbqm(centred, folded) as i64 + yq.zero_point as i64).clamp(C::MIN as i64, C::MAX as i64) as i32,
            ));
        }
        Ok(out)
    }
}
