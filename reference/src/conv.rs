//! 2-D convolution on 8-bit codes: geometry, the exact int32 accumulator, im2col.
//!
//! A quantized convolution is the GEMM of [`crate::gemm`] with its `K` dimension gathered from a
//! window of the input:
//!
//! ```text
//! acc[n][o][y][x] = sum_{c in group(o), ky, kx} (in[n][c][y*sh - pt + ky*dh][x*sw - pl + kx*dw] - zx)
//!                                              * (w[o][c - c0(o)][ky][kx] - zw[o])
//! ```
//!
//! with `group(o)` the `C / groups` input channels of output channel `o`'s group (`c0(o)` the
//! first). A tap that falls in the padding contributes nothing: the padding value is the input's
//! zero point `zx`, whose centred value is 0 (PyTorch's fbgemm pads im2col with `zx`, TFLite's
//! reference kernels skip the tap; the two agree). The output has
//!
//! ```text
//! out = (in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride + 1   (floor)
//! ```
//!
//! positions per spatial axis. PyTorch pads both sides by `padding`; TensorFlow's `VALID` pads
//! nothing and its `SAME` gives `ceil(in / stride)` outputs with
//! `total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - in)`, `before = total / 2`,
//! `after = total - before` ([`Conv2dGeometry::tf_padding`]).
//!
//! [`conv2d_accumulate`] is the direct loop, the definition; [`im2col`] + [`crate::gemm`] is the
//! formulation a fast path takes, and [`conv2d_accumulate_im2col`] computes it so the tests can
//! check that both agree (each group is one GEMM with `M = N * OH * OW`, `K = KH * KW * C / groups`,
//! `N = O / groups`). Depthwise convolution is `groups = C` with `O = C * depth_multiplier`.
//!
//! Layouts: activations `NCHW` (PyTorch) or `NHWC` (TFLite); weights `OIHW` (PyTorch, `I = C /
//! groups`), `OHWI` (TFLite conv) or `1HWO` (TFLite depthwise, `[1, KH, KW, C * multiplier]`).

use crate::error::{QuantError, Result};
use crate::gemm::{self, GemmDims, Operand8, WeightLayout, ZeroPoints};
use crate::linear::{Activation, TfliteOutputStage, TorchOutputStage, WeightQuant};
use crate::requantize::RequantizeKind;

/// How a 4-D activation tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationLayout {
    Nchw,
    Nhwc,
}

/// How a convolution's weights are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvWeightLayout {
    /// `[O, C / groups, KH, KW]` (PyTorch).
    Oihw,
    /// `[O, KH, KW, C / groups]` (TFLite `CONV_2D`).
    Ohwi,
    /// `[1, KH, KW, O]` (TFLite `DEPTHWISE_CONV_2D`; needs `C / groups = 1`).
    Ihwo,
}

/// TensorFlow's padding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TfPadding {
    Same,
    Valid,
}

/// Every size of one 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: [usize; 2],
    /// Padding before (top, left).
    pub pad_before: [usize; 2],
    /// Padding after (bottom, right).
    pub pad_after: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

fn invalid(what: &'static str, detail: String) -> QuantError {
    QuantError::InvalidArgument { what, detail }
}

impl Conv2dGeometry {
    /// TensorFlow's `SAME` / `VALID` padding for one axis: `(before, after)`.
    pub fn tf_padding(
        padding: TfPadding,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> (usize, usize) {
        match padding {
            TfPadding::Valid => (0, 0),
            TfPadding::Same => {
                let out = input.div_ceil(stride.max(1));
                let eff = dilation.saturating_mul(kernel.saturating_sub(1)).saturating_add(1);
                let total = (out.saturating_sub(1)).saturating_mul(stride).saturating_add(eff).saturating_sub(input);
                (total / 2, total - total / 2)
            }
        }
    }

    /// Checks the geometry: positive strides, dilations, groups and kernel sizes; groups dividing
    /// both channel counts; a kernel window that fits the padded input. Zero batch, channels or
    /// spatial sizes are allowed (an empty output), as in PyTorch and TFLite.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("stride", self.stride[0]),
            ("stride", self.stride[1]),
            ("dilation", self.dilation[0]),
            ("dilation", self.dilation[1]),
            ("groups", self.groups),
        ] {
            if v == 0 {
                return Err(invalid(what, "must be at least 1, got 0".to_string()));
            }
        }
        if self.kernel_h == 0 || self.kernel_w == 0 {
            return Err(invalid("kernel size", format!("{} x {} has a zero side", self.kernel_h, self.kernel_w)));
        }
        if self.in_channels % self.groups != 0 || self.out_channels % self.groups != 0 {
            return Err(invalid(
                "groups",
                format!(
                    "{} groups must divide both the input channels ({}) and the output channels ({})",
                    self.groups, self.in_channels, self.out_channels
                ),
            ));
        }
        self.output_hw().map(|_| ())
    }

    /// `(OH, OW)`, or an error when the dilated kernel is larger than the padded input.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        let axis = |input: usize, k: usize, s: usize, d: usize, before: usize, after: usize, name: &'static str| {
            let padded = input.checked_add(before).and_then(|v| v.checked_add(after));
            let eff = d.checked_mul(k - 1).and_then(|v| v.checked_add(1));
            match (padded, eff) {
                (Some(p), Some(e)) if e <= p => Ok((p - e) / s + 1),
                (Some(_), Some(_)) if input == 0 => Ok(0),
                _ => Err(invalid(
                    name,
                    format!(
                        "the dilated kernel ({k} taps, dilation {d}) is larger than the padded input \
                         ({input} + {before} + {after})"
                    ),
                )),
            }
        };
        Ok((
            axis(
                self.in_h,
                self.kernel_h,
                self.stride[0],
                self.dilation[0],
                self.pad_before[0],
                self.pad_after[0],
                "height",
            )?,
            axis(
                self.in_w,
                self.kernel_w,
                self.stride[1],
                self.dilation[1],
                self.pad_before[1],
                self.pad_after[1],
                "width",
            )?,
        ))
    }

    /// Input channels per group.
    pub fn group_in(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group.
    pub fn group_out(&self) -> usize {
        self.out_channels / self.groups
    }

    /// Element counts of the input, the weights and the output, checked for overflow.
    pub fn sizes(&self) -> Result<(usize, usize, usize)> {
        let (oh, ow) = self.output_hw()?;
        let prod = |v: &[usize], what: &'static str| {
            v.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or_else(|| invalid(what, format!("{v:?} overflows usize")))
        };
        Ok((
            prod(&[self.batch, self.in_channels, self.in_h, self.in_w], "input size")?,
            prod(&[self.out_channels, self.group_in(), self.kernel_h, self.kernel_w], "weight size")?,
            prod(&[self.batch, self.out_channels, oh, ow], "output size")?,
        ))
    }

    /// The GEMM depth of one output: `KH * KW * C / groups`.
    pub fn depth(&self) -> usize {
        self.kernel_h * self.kernel_w * self.group_in()
    }

    /// Flat index of activation `(n, c, y, x)` in `layout`.
    #[inline]
    pub fn input_index(&self, layout: ActivationLayout, n: usize, c: usize, y: usize, x: usize) -> usize {
        match layout {
            ActivationLayout::Nchw => ((n * self.in_channels + c) * self.in_h + y) * self.in_w + x,
            ActivationLayout::Nhwc => ((n * self.in_h + y) * self.in_w + x) * self.in_channels + c,
        }
    }

    /// Flat index of output `(n, o, y, x)` in `layout` (`oh, ow` from [`Self::output_hw`]).
    #[inline]
    pub fn output_index(
        &self,
        layout: ActivationLayout,
        oh: usize,
        ow: usize,
        n: usize,
        o: usize,
        y: usize,
        x: usize,
    ) -> usize {
        match layout {
            ActivationLayout::Nchw => ((n * self.out_channels + o) * oh + y) * ow + x,
            ActivationLayout::Nhwc => ((n * oh + y) * ow + x) * self.out_channels + o,
        }
    }

    /// Flat index of weight `(o, ci, ky, kx)` (`ci` within the group) in `layout`.
    #[inline]
    pub fn weight_index(&self, layout: ConvWeightLayout, o: usize, ci: usize, ky: usize, kx: usize) -> usize {
        let gi = self.group_in();
        match layout {
            ConvWeightLayout::Oihw => ((o * gi + ci) * self.kernel_h + ky) * self.kernel_w + kx,
            ConvWeightLayout::Ohwi => ((o * self.kernel_h + ky) * self.kernel_w + kx) * gi + ci,
            ConvWeightLayout::Ihwo => (ky * self.kernel_w + kx) * self.out_channels + o,
        }
    }

    /// The input position of tap `k` of output position `o` along one axis, or `None` in the
    /// padding.
    #[inline]
    pub fn tap(o: usize, k: usize, stride: usize, dilation: usize, before: usize, len: usize) -> Option<usize> {
        (o * stride + k * dilation).checked_sub(before).filter(|&p| p < len)
    }

    /// The input row of kernel row `ky` at output row `oy` ([`Conv2dGeometry::tap`] along H).
    #[inline]
    pub fn tap_y(&self, oy: usize, ky: usize) -> Option<usize> {
        Self::tap(oy, ky, self.stride[0], self.dilation[0], self.pad_before[0], self.in_h)
    }

    /// The input column of kernel column `kx` at output column `ox` (along W).
    #[inline]
    pub fn tap_x(&self, ox: usize, kx: usize) -> Option<usize> {
        Self::tap(ox, kx, self.stride[1], self.dilation[1], self.pad_before[1], self.in_w)
    }

    /// Writes group `group`'s GEMM result `acc` (`N * OH * OW` rows in [`im2col`]'s order, row
    /// `(n * OH + y) * OW + x`, of [`Conv2dGeometry::group_out`] columns) to that group's output
    /// channels of `out` in `layout`.
    pub fn scatter_group(
        &self,
        layout: ActivationLayout,
        (oh, ow): (usize, usize),
        group: usize,
        acc: &[i32],
        out: &mut [i32],
    ) {
        let go = self.group_out();
        for n in 0..self.batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = (n * oh + oy) * ow + ox;
                    for oo in 0..go {
                        out[self.output_index(layout, oh, ow, n, group * go + oo, oy, ox)] = acc[r * go + oo];
                    }
                }
            }
        }
    }

    /// The taps of output position `(oy, ox)` that land inside the input, as `(ky, kx, iy, ix)`,
    /// kernel row by kernel row (taps in the padding are skipped: their centred value is 0).
    pub fn window(&self, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        (0..self.kernel_h)
            .filter_map(move |ky| Some((ky, self.tap_y(oy, ky)?)))
            .flat_map(move |(ky, iy)| (0..self.kernel_w).filter_map(move |kx| Some((ky, kx, iy, self.tap_x(ox, kx)?))))
    }
}

/// Checks the geometry, the buffers and the zero points shared by the convolution entry points
/// (and by the optimized twins, so that both reject the same inputs with the same errors);
/// returns the output length.
pub fn check_conv<X: Operand8, W: Operand8>(
    g: &Conv2dGeometry,
    w_layout: ConvWeightLayout,
    x: &[X],
    x_zero_point: i32,
    w: &[W],
    w_zero_points: ZeroPoints<'_>,
) -> Result<usize> {
    check_layout(g, w_layout)?;
    let (xn, _, yn) = g.sizes()?;
    if x.len() != xn {
        return Err(QuantError::ShapeMismatch { shape: vec![g.batch, g.in_channels, g.in_h, g.in_w], len: x.len() });
    }
    check_weights_len(g, w.len())?;
    X::QTYPE.full_range().check_zero_point(0, x_zero_point)?;
    w_zero_points.check(g.out_channels, W::QTYPE)?;
    Ok(yn)
}

/// The part of [`check_conv`] that does not need the input (the geometry, the weight layout,
/// the weights' length, their zero points), in its order, for code that prepares weights once.
pub fn check_conv_weights<W: Operand8>(
    g: &Conv2dGeometry,
    w_layout: ConvWeightLayout,
    w: &[W],
    w_zero_points: ZeroPoints<'_>,
) -> Result<()> {
    check_layout(g, w_layout)?;
    check_weights_len(g, w.len())?;
    w_zero_points.check(g.out_channels, W::QTYPE)
}

/// A valid geometry, and `[1, KH, KW, O]` weights only with one input channel per group.
fn check_layout(g: &Conv2dGeometry, w_layout: ConvWeightLayout) -> Result<()> {
    g.validate()?;
    if w_layout == ConvWeightLayout::Ihwo && g.group_in() != 1 {
        return Err(invalid(
            "weight layout",
            format!("[1, KH, KW, O] weights need one input channel per group, got {}", g.group_in()),
        ));
    }
    Ok(())
}

fn check_weights_len(g: &Conv2dGeometry, len: usize) -> Result<()> {
    let (_, wn, _) = g.sizes()?;
    if len != wn {
        return Err(QuantError::ShapeMismatch {
            shape: vec![g.out_channels, g.group_in(), g.kernel_h, g.kernel_w],
            len,
        });
    }
    Ok(())
}

/// The exact int32 accumulators of a convolution, by the direct loop (the definition in the
/// module docs), laid out like the input (`NCHW` in, `NCHW` out). Errors: a bad geometry
/// ([`Conv2dGeometry::validate`]), buffer lengths, zero points, and an exact value outside `i32`
/// ([`QuantError::AccumulatorOverflow`] naming `K = KH * KW * C / groups`).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_accumulate<X: Operand8, W: Operand8>(
    g: &Conv2dGeometry,
    x_layout: ActivationLayout,
    w_layout: ConvWeightLayout,
    x: &[X],
    x_zero_point: i32,
    w: &[W],
    w_zero_points: ZeroPoints<'_>,
) -> Result<Vec<i32>> {
    let yn = check_conv(g, w_layout, x, x_zero_point, w, w_zero_points)?;
    let (oh, ow) = g.output_hw()?;
    let (gi, go) = (g.group_in(), g.group_out());
    let mut out = vec![0i32; yn];
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            let c0 = (o / go) * gi;
            let zw = w_zero_points.get(o) as i64;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i64;
                    for (ky, kx, iy, ix) in g.window(oy, ox) {
                        for ci in 0..gi {
                            let xv =
                                x[g.input_index(x_layout, n, c0 + ci, iy, ix)].value() as i64 - x_zero_point as i64;
                            let wv = w[g.weight_index(w_layout, o, ci, ky, kx)].value() as i64 - zw;
                            acc += xv * wv;
                        }
                    }
                    let idx = g.output_index(x_layout, oh, ow, n, o, oy, ox);
                    out[idx] = gemm::to_i32_accumulator(acc, g.depth(), idx, o)?;
                }
            }
        }
    }
    Ok(out)
}

/// The im2col matrix of group `group`: `N * OH * OW` rows (row `(n * OH + y) * OW + x`) of
/// `K = KH * KW * C / groups` columns (column `(ky * KW + kx) * (C / groups) + ci`), padding taps
/// filled with `pad` (the input zero point, whose centred value is 0).
pub fn im2col<X: Operand8>(
    g: &Conv2dGeometry,
    x_layout: ActivationLayout,
    x: &[X],
    group: usize,
    pad: X,
) -> Result<Vec<X>> {
    g.validate()?;
    let (xn, _, _) = g.sizes()?;
    if x.len() != xn {
        return Err(QuantError::ShapeMismatch { shape: vec![g.batch, g.in_channels, g.in_h, g.in_w], len: x.len() });
    }
    if group >= g.groups {
        return Err(invalid("group", format!("{group} is not below groups = {}", g.groups)));
    }
    let (oh, ow) = g.output_hw()?;
    let gi = g.group_in();
    let rows = g.batch.checked_mul(oh).and_then(|v| v.checked_mul(ow));
    let len =
        rows.and_then(|r| r.checked_mul(g.depth())).ok_or_else(|| invalid("im2col size", "overflows usize".into()))?;
    let mut m = Vec::with_capacity(len);
    for n in 0..g.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..g.kernel_h {
                    let iy = g.tap_y(oy, ky);
                    for kx in 0..g.kernel_w {
                        let ix = g.tap_x(ox, kx);
                        for ci in 0..gi {
                            m.push(match (iy, ix) {
                                (Some(iy), Some(ix)) => x[g.input_index(x_layout, n, group * gi + ci, iy, ix)],
                                _ => pad,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(m)
}

/// The same accumulators as [`conv2d_accumulate`], computed as one GEMM per group on the
/// [`im2col`] matrix (`M = N * OH * OW`, `K = KH * KW * C / groups`, `N = O / groups`) with the
/// weights gathered into `N x K` rows: the formulation a GEMM-based fast path takes.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_accumulate_im2col<X: Operand8, W: Operand8>(
    g: &Conv2dGeometry,
    x_layout: ActivationLayout,
    w_layout: ConvWeightLayout,
    x: &[X],
    x_zero_point: i32,
    w: &[W],
    w_zero_points: ZeroPoints<'_>,
) -> Result<Vec<i32>> {
    conv2d_accumulate_im2col_with(&gemm::Exact, g, x_layout, w_layout, x, x_zero_point, w, w_zero_points)
}

/// [`conv2d_accumulate_im2col`] with each group's GEMM from `acc` (a [`gemm::Accumulator`]).
/// Its overflow error names the GEMM's element, not the convolution's: a caller that must
/// match [`conv2d_accumulate`]'s errors falls back to it on an error.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_accumulate_im2col_with<G: gemm::Accumulator, X: Operand8, W: Operand8>(
    acc_with: &G,
    g: &Conv2dGeometry,
    x_layout: ActivationLayout,
    w_layout: ConvWeightLayout,
    x: &[X],
    x_zero_point: i32,
    w: &[W],
    w_zero_points: ZeroPoints<'_>,
) -> Result<Vec<i32>> {
    let yn = check_conv(g, w_layout, x, x_zero_point, w, w_zero_points)?;
    let (oh, ow) = g.output_hw()?;
    let (gi, go, k) = (g.group_in(), g.group_out(), g.depth());
    let pad = pad_code::<X>(x_zero_point);
    let rows = g.batch * oh * ow;
    let mut out = vec![0i32; yn];
    for grp in 0..g.groups {
        let cols = im2col(g, x_layout, x, grp, pad)?;
        let mut wk = Vec::with_capacity(go * k);
        let mut zps = Vec::with_capacity(go);
        for oo in 0..go {
            let o = grp * go + oo;
            zps.push(w_zero_points.get(o));
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    for ci in 0..gi {
                        wk.push(w[g.weight_index(w_layout, o, ci, ky, kx)]);
                    }
                }
            }
        }
        let mut acc = vec![0i32; rows * go];
        acc_with.accumulate(
            &cols,
            x_zero_point,
            &wk,
            ZeroPoints::PerColumn(&zps),
            WeightLayout::NxK,
            GemmDims::new(rows, go, k),
            &mut acc,
        )?;
        g.scatter_group(x_layout, (oh, ow), grp, &acc, &mut out);
    }
    Ok(out)
}

/// Who computes a convolution's exact int32 accumulators for the framework ops below
/// ([`conv2d_accumulate`]'s contract: the same values and errors). The reference's direct loop
/// is [`gemm::Exact`]'s; `quantproof_optimized`'s engine runs [`conv2d_accumulate_im2col_with`]
/// on its packed GEMM and hands any error to the direct loop.
pub trait ConvAccumulator {
    #[allow(clippy::too_many_arguments)]
    fn conv_accumulate<X: Operand8, W: Operand8>(
        &self,
        g: &Conv2dGeometry,
        x_layout: ActivationLayout,
        w_layout: ConvWeightLayout,
        x: &[X],
        x_zero_point: i32,
        w: &[W],
        w_zero_points: ZeroPoints<'_>,
    ) -> Result<Vec<i32>>;
}

impl ConvAccumulator for gemm::Exact {
    fn conv_accumulate<X: Operand8, W: Operand8>(
        &self,
        g: &Conv2dGeometry,
        x_layout: ActivationLayout,
        w_layout: ConvWeightLayout,
        x: &[X],
        x_zero_point: i32,
        w: &[W],
        w_zero_points: ZeroPoints<'_>,
    ) -> Result<Vec<i32>> {
        conv2d_accumulate(g, x_layout, w_layout, x, x_zero_point, w, w_zero_points)
    }
}

// ---------------------------------------------------------------------------------------------
// The framework ops: accumulators, then each framework's output stage per output channel.

/// PyTorch's `quantized::conv2d` (PyTorch 2.11, engine fbgemm, x86): `x` `u8` `NCHW`, weights
/// `i8` `OIHW` (`[O, C / groups, KH, KW]`, per-tensor or per-output-channel), bias `f32 [O]` or
/// none, output `u8` `NCHW`; stride, symmetric padding, dilation and groups in `g`.
///
/// ```text
/// acc[n][o][y][x] = conv2d_accumulate(...)                          exact int32 (module docs)
/// y[n][o][y][x]   = clamp(z_y + round_half_even(stage_o(acc, b[o])), relu ? z_y : 0, 255)    relu: activation = Relu
/// ```
/// with `stage_o` the same fbgemm output stage as [`crate::linear::torch_qlinear`]
/// ([`crate::linear::TorchOutputStage`]).
#[allow(clippy::too_many_arguments)]
pub fn torch_qconv2d(
    g: &Conv2dGeometry,
    x: &[u8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
) -> Result<Vec<u8>> {
    torch_qconv2d_with(&gemm::Exact, g, x, x_scale, x_zero_point, w, wq, bias, y_scale, y_zero_point, activation)
}

/// [`torch_qconv2d`] with its accumulators from `c` (the reference's direct loop, [`gemm::Exact`], or
/// a faster twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn torch_qconv2d_with<C: ConvAccumulator>(
    c: &C,
    g: &Conv2dGeometry,
    x: &[u8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[f32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
) -> Result<Vec<u8>> {
    g.validate()?;
    wq.check::<i8>(g.out_channels)?;
    if let Some(b) = bias {
        crate::error::check_len("bias", g.out_channels, b.len())?;
        crate::error::check_finite("bias", b)?;
    }
    let stages = TorchOutputStage::new(x_scale, wq, y_scale, y_zero_point, activation, g.out_channels)?;
    let acc = c.conv_accumulate(g, ActivationLayout::Nchw, ConvWeightLayout::Oihw, x, x_zero_point, w, wq.zero_points())?;
    let (oh, ow) = g.output_hw()?;
    let plane = oh * ow;
    Ok(acc
        .iter()
        .enumerate()
        .map(|(idx, &a)| {
            let o = (idx / plane.max(1)) % g.out_channels.max(1);
            stages[o].apply(a, bias.map(|b| b[o]))
        })
        .collect())
}

/// TFLite's output stage on `NHWC` accumulators: bias added in `int32`, then the channel's
/// [`TfliteOutputStage`].
fn tflite_finish(
    g: &Conv2dGeometry,
    acc: &[i32],
    bias: Option<&[i32]>,
    stages: &[TfliteOutputStage],
) -> Result<Vec<i8>> {
    let oc = g.out_channels.max(1);
    acc.iter()
        .enumerate()
        .map(|(idx, &a)| {
            let o = idx % oc;
            let a = match bias {
                Some(b) => crate::linear::add_int32_bias(a, b[o], g.depth(), idx)?,
                None => a,
            };
            Ok(stages[o].apply(a))
        })
        .collect()
}

/// TFLite's int8 `CONV_2D` (TensorFlow 2.21, reference kernel
/// `reference_integer_ops::ConvPerChannel`): `x` `i8` `NHWC`, weights `i8` `OHWI`, bias
/// `i32 [O]` at scale `s_x s_w[o]`, output `i8` `NHWC`; padding from
/// [`Conv2dGeometry::tf_padding`].
///
/// ```text
/// acc = sum over the window (x - z_x)(w - z_w[o]) + bias[o]           int32, padding taps skipped
/// y   = clamp(z_y + MultiplyByQuantizedMultiplier(acc, M_o), act_min, act_max)
/// M_o = f64(s_x) f64(s_w[o]) / f64(s_y)   (a per-tensor scale is broadcast to every channel)
/// ```
/// `kind` is the profile's rounding: [`RequantizeKind::DoubleRounding`] for TensorFlow 2.21's
/// default build (the golden vectors decide).
#[allow(clippy::too_many_arguments)]
pub fn tflite_conv2d(
    g: &Conv2dGeometry,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    kind: RequantizeKind,
) -> Result<Vec<i8>> {
    tflite_conv2d_with(&gemm::Exact, g, x, x_scale, x_zero_point, w, wq, bias, y_scale, y_zero_point, activation, kind)
}

/// [`tflite_conv2d`] with its accumulators from `c` (the reference's direct loop, [`gemm::Exact`], or
/// a faster twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn tflite_conv2d_with<C: ConvAccumulator>(
    c: &C,
    g: &Conv2dGeometry,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    kind: RequantizeKind,
) -> Result<Vec<i8>> {
    tflite_conv_impl(
        c,
        g,
        ConvWeightLayout::Ohwi,
        x,
        x_scale,
        x_zero_point,
        w,
        wq,
        bias,
        y_scale,
        y_zero_point,
        activation,
        kind,
    )
}

/// TFLite's int8 `DEPTHWISE_CONV_2D` (TensorFlow 2.21, reference kernel
/// `reference_integer_ops::DepthwiseConvPerChannel`): `x` `i8` `NHWC` with `C` channels, weights
/// `[1, KH, KW, C * depth_multiplier]`, output channel `o = c * depth_multiplier + m` reads input
/// channel `c`; bias `i32 [C * depth_multiplier]`. The arithmetic is [`tflite_conv2d`]'s with
/// `groups = C` (`g.groups` must equal `g.in_channels` and `g.out_channels` must be a multiple).
#[allow(clippy::too_many_arguments)]
pub fn tflite_depthwise_conv2d(
    g: &Conv2dGeometry,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    kind: RequantizeKind,
) -> Result<Vec<i8>> {
    tflite_depthwise_conv2d_with(&gemm::Exact, g, x, x_scale, x_zero_point, w, wq, bias, y_scale, y_zero_point, activation, kind)
}

/// [`tflite_depthwise_conv2d`] with its accumulators from `c` (the reference's direct loop, [`gemm::Exact`], or
/// a faster twin with the same values and errors).
#[allow(clippy::too_many_arguments)]
pub fn tflite_depthwise_conv2d_with<C: ConvAccumulator>(
    c: &C,
    g: &Conv2dGeometry,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    kind: RequantizeKind,
) -> Result<Vec<i8>> {
    if g.groups != g.in_channels {
        return Err(invalid(
            "groups",
            format!("a depthwise convolution has groups = channels = {}, got {}", g.in_channels, g.groups),
        ));
    }
    tflite_conv_impl(
        c,
        g,
        ConvWeightLayout::Ihwo,
        x,
        x_scale,
        x_zero_point,
        w,
        wq,
        bias,
        y_scale,
        y_zero_point,
        activation,
        kind,
    )
}

#[allow(clippy::too_many_arguments)]
fn tflite_conv_impl<C: ConvAccumulator>(
    c: &C,
    g: &Conv2dGeometry,
    w_layout: ConvWeightLayout,
    x: &[i8],
    x_scale: f32,
    x_zero_point: i32,
    w: &[i8],
    wq: &WeightQuant<'_>,
    bias: Option<&[i32]>,
    y_scale: f32,
    y_zero_point: i32,
    activation: Activation,
    kind: RequantizeKind,
) -> Result<Vec<i8>> {
    g.validate()?;
    wq.check::<i8>(g.out_channels)?;
    if let Some(b) = bias {
        crate::error::check_len("bias", g.out_channels, b.len())?;
    }
    let stages = TfliteOutputStage::new(x_scale, wq, y_scale, y_zero_point, activation, false, kind, g.out_channels)?;
    let acc = c.conv_accumulate(g, ActivationLayout::Nhwc, w_layout, x, x_zero_point, w, wq.zero_points())?;
    tflite_finish(g, &acc, bias, &stages)
}

/// The code whose value is `zero_point` (checked in range by the callers).
fn pad_code<X: Operand8>(zero_point: i32) -> X {
    X::from_value(zero_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(
        c: usize,
        h: usize,
        w: usize,
        o: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
        groups: usize,
    ) -> Conv2dGeometry {
        Conv2dGeometry {
            batch: 1,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: o,
            kernel_h: k,
            kernel_w: k,
            stride: [s, s],
            pad_before: [p, p],
            pad_after: [p, p],
            dilation: [d, d],
            groups,
        }
    }

    #[test]
    fn output_sizes() {
        assert_eq!(geom(1, 6, 8, 1, 3, 2, 0, 1, 1).output_hw().unwrap(), (2, 3));
        assert_eq!(geom(1, 4, 5, 1, 2, 1, 1, 1, 1).output_hw().unwrap(), (5, 6));
        assert_eq!(Conv2dGeometry::tf_padding(TfPadding::Same, 11, 3, 2, 1), (1, 1));
        assert_eq!(Conv2dGeometry::tf_padding(TfPadding::Same, 8, 2, 2, 1), (0, 0));
        assert_eq!(Conv2dGeometry::tf_padding(TfPadding::Same, 5, 2, 1, 1), (0, 1));
        assert!(geom(1, 2, 2, 1, 5, 1, 0, 1, 1).output_hw().is_err());
        assert!(geom(3, 4, 4, 4, 1, 1, 0, 1, 2).validate().is_err());
    }

    #[test]
    fn one_by_one_conv_is_a_gemm() {
        let g = geom(2, 1, 2, 1, 1, 1, 0, 1, 1);
        let x: [u8; 4] = [1, 2, 3, 4]; // NCHW: c0 = [1, 2], c1 = [3, 4]
        let w: [i8; 2] = [10, -1];
        let y =
            conv2d_accumulate(&g, ActivationLayout::Nchw, ConvWeightLayout::Oihw, &x, 1, &w, ZeroPoints::PerTensor(0))
                .unwrap();
        assert_eq!(y, vec![0 * 10 - 2, 10 - 3]);
    }
}
