//! # Integer convolution: `u8` activations x `s8` weights -> exact `i32`
//!
//! The twin of [`quantproof_reference::conv::conv2d_accumulate`] for u8 x s8 (NCHW or NHWC,
//! stride, padding, dilation, groups), bit for bit, errors included (the reference's own
//! `check_conv` validates). Weights are prepared once ([`PackedConv`]); two paths:
//!
//! * **GEMM** (any group size): per group, the im2col matrix (`M = N * OH * OW` rows of `K = KH *
//!   KW * C / groups`, padding taps filled with the input zero point, whose centred value is 0)
//!   times the group's packed weights on a [`GemmKernel`] ([`crate::gemm`], threaded by rows),
//!   then scattered to the output layout. NHWC rows are gathered as runs of `C / groups`
//!   contiguous channels.
//! * **Depthwise** (one input channel per group, `O = C * multiplier`): no GEMM (each group would
//!   be a `K = KH * KW`, `N = multiplier` product); per output pixel, the taps' centred products are
//!   summed in `i32` lanes across the output channels (a loop the compiler vectorizes). Exact
//!   while `KH * KW * 255 * 255 < 2^31` (the kernel checks; larger windows use `i64`).

use crate::gemm::{gemm_u8s8_threaded, GemmKernel, PackedWeights};
use quantproof_reference::conv::{check_conv, check_conv_weights, ActivationLayout, Conv2dGeometry, ConvWeightLayout};
use quantproof_reference::error::{QuantError, Result};
use quantproof_reference::gemm::{to_i32_accumulator, WeightLayout, ZeroPoints};

/// A convolution's weights prepared once: packed per group for the GEMM path, or gathered per
/// tap for the depthwise path.
#[derive(Debug, Clone)]
pub struct PackedConv {
    g: Conv2dGeometry,
    w_layout: ConvWeightLayout,
    w: Vec<i8>,
    zero_points: Vec<i32>,
    /// GEMM path: one packed `N x K` matrix per group.
    groups: Vec<PackedWeights>,
    /// Depthwise path: `[KH * KW][O]` centred weights `w - zw`.
    taps: Option<Vec<i32>>,
}

impl PackedConv {
    /// Prepares `w` (`w_layout`, `[O, C / groups, KH, KW]` logically) for geometry `g`. Errors:
    /// the reference's for the geometry, the weight length and layout, and the zero points
    /// ([`PackedConv::accumulate`] repeats the reference's whole check with the input).
    pub fn new(
        g: &Conv2dGeometry,
        w_layout: ConvWeightLayout,
        w: &[i8],
        w_zero_points: ZeroPoints<'_>,
    ) -> Result<PackedConv> {
        check_conv_weights(g, w_layout, w, w_zero_points)?;
        let zero_points: Vec<i32> = (0..g.out_channels).map(|o| w_zero_points.get(o)).collect();
        let (gi, go, k) = (g.group_in(), g.group_out(), g.depth());
        let taps = if gi == 1 {
            let kk = g.kernel_h * g.kernel_w;
            let mut t = vec![0i32; kk * g.out_channels];
            for o in 0..g.out_channels {
                for ky in 0..g.kernel_h {
                    for kx in 0..g.kernel_w {
                        t[(ky * g.kernel_w + kx) * g.out_channels + o] =
                            w[g.weight_index(w_layout, o, 0, ky, kx)] as i32 - zero_points[o];
                    }
                }
            }
            Some(t)
        } else {
            None
        };
        let mut groups = Vec::new();
        if taps.is_none() {
            for grp in 0..g.groups {
                let mut wk = Vec::with_capacity(go * k);
                for oo in 0..go {
                    let o = grp * go + oo;
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            for ci in 0..gi {
                                wk.push(w[g.weight_index(w_layout, o, ci, ky, kx)]);
                            }
                        }
                    }
                }
                let zps = &zero_points[grp * go..(grp + 1) * go];
                groups.push(PackedWeights::new(&wk, ZeroPoints::PerColumn(zps), WeightLayout::NxK, k, go)?);
            }
        }
        Ok(PackedConv { g: *g, w_layout, w: w.to_vec(), zero_points, groups, taps })
    }

    /// The exact accumulators for input `x` (`x_layout`, zero point `x_zero_point`), laid out
    /// like the input; the GEMM path on `kernel` with up to `threads` threads. Bit-exact with
    /// the reference's `conv2d_accumulate`, errors included.
    pub fn accumulate(
        &self,
        x_layout: ActivationLayout,
        x: &[u8],
        x_zero_point: i32,
        kernel: GemmKernel,
        threads: usize,
    ) -> Result<Vec<i32>> {
        let g = &self.g;
        let yn = check_conv(g, self.w_layout, x, x_zero_point, &self.w, ZeroPoints::PerColumn(&self.zero_points))?;
        let (oh, ow) = g.output_hw()?;
        let mut out = vec![0i32; yn];
        if yn == 0 {
            return Ok(out);
        }
        if let Some(taps) = &self.taps {
            return match self.depthwise(x_layout, x, x_zero_point, taps, oh, ow, &mut out) {
                Ok(()) => Ok(out),
                Err(QuantError::AccumulatorOverflow { .. }) => self.reference(x_layout, x, x_zero_point),
                Err(e) => Err(e),
            };
        }
        let (go, k) = (g.group_out(), g.depth());
        let rows = g.batch * oh * ow;
        let mut cols = vec![0u8; rows * k];
        let mut acc = vec![0i32; rows * go];
        for (grp, packed) in self.groups.iter().enumerate() {
            im2col(g, x_layout, x, grp, x_zero_point as u8, oh, ow, &mut cols);
            match gemm_u8s8_threaded(&cols, k, rows, x_zero_point, packed, kernel, threads, &mut acc) {
                Ok(()) => {}
                // An exact value outside i32: the reference names the first such element in its
                // own loop order, so it reports the error.
                Err(QuantError::AccumulatorOverflow { .. }) => return self.reference(x_layout, x, x_zero_point),
                Err(e) => return Err(e),
            }
            g.scatter_group(x_layout, (oh, ow), grp, &acc, &mut out);
        }
        Ok(out)
    }

    /// The reference's accumulation (used where it alone knows the error to report).
    fn reference(&self, x_layout: ActivationLayout, x: &[u8], x_zero_point: i32) -> Result<Vec<i32>> {
        quantproof_reference::conv::conv2d_accumulate(
            &self.g,
            x_layout,
            self.w_layout,
            x,
            x_zero_point,
            &self.w,
            ZeroPoints::PerColumn(&self.zero_points),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn depthwise(
        &self,
        x_layout: ActivationLayout,
        x: &[u8],
        zx: i32,
        taps: &[i32],
        oh: usize,
        ow: usize,
        out: &mut [i32],
    ) -> Result<()> {
        let g = &self.g;
        let o_n = g.out_channels;
        let mult = g.group_out();
        // Every centred product is at most 255 * 255 in magnitude: i32 lanes are exact while the
        // window is small enough; otherwise sum in i64.
        let exact_i32 = (g.kernel_h * g.kernel_w) as u64 * 255 * 255 <= i32::MAX as u64;
        let mut xs = vec![0i32; o_n];
        let mut acc32 = vec![0i32; o_n];
        let mut acc64 = vec![0i64; if exact_i32 { 0 } else { o_n }];
        for n in 0..g.batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    acc32.iter_mut().for_each(|v| *v = 0);
                    acc64.iter_mut().for_each(|v| *v = 0);
                    for (ky, kx, iy, ix) in g.window(oy, ox) {
                        // The input value of every output channel's group (channel o / mult).
                        for (o, v) in xs.iter_mut().enumerate() {
                            *v = x[g.input_index(x_layout, n, o / mult, iy, ix)] as i32 - zx;
                        }
                        let t = &taps[(ky * g.kernel_w + kx) * o_n..(ky * g.kernel_w + kx + 1) * o_n];
                        if exact_i32 {
                            for ((a, &xv), &wv) in acc32.iter_mut().zip(&xs).zip(t) {
                                *a += xv * wv;
                            }
                        } else {
                            for ((a, &xv), &wv) in acc64.iter_mut().zip(&xs).zip(t) {
                                *a += xv as i64 * wv as i64;
                            }
                        }
                    }
                    for o in 0..o_n {
                        let idx = g.output_index(x_layout, oh, ow, n, o, oy, ox);
                        out[idx] = if exact_i32 { acc32[o] } else { to_i32_accumulator(acc64[o], g.depth(), idx, o)? };
                    }
                }
            }
        }
        Ok(())
    }
}

/// The im2col matrix of group `grp` into `cols` (`rows x K`, column `(ky * KW + kx) * gi + ci`),
/// padding taps set to `pad` (the input zero point). NHWC copies runs of `gi` channels.
#[allow(clippy::too_many_arguments)]
fn im2col(
    g: &Conv2dGeometry,
    layout: ActivationLayout,
    x: &[u8],
    grp: usize,
    pad: u8,
    oh: usize,
    ow: usize,
    cols: &mut [u8],
) {
    let (gi, k) = (g.group_in(), g.depth());
    let c0 = grp * gi;
    for n in 0..g.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut cols[((n * oh + oy) * ow + ox) * k..((n * oh + oy) * ow + ox + 1) * k];
                for ky in 0..g.kernel_h {
                    let iy = g.tap_y(oy, ky);
                    for kx in 0..g.kernel_w {
                        let ix = g.tap_x(ox, kx);
                        let dst = &mut row[(ky * g.kernel_w + kx) * gi..(ky * g.kernel_w + kx + 1) * gi];
                        match (iy, ix, layout) {
                            (Some(iy), Some(ix), ActivationLayout::Nhwc) => {
                                let s = g.input_index(layout, n, c0, iy, ix);
                                dst.copy_from_slice(&x[s..s + gi]);
                            }
                            (Some(iy), Some(ix), ActivationLayout::Nchw) => {
                                for (ci, d) in dst.iter_mut().enumerate() {
                                    *d = x[g.input_index(layout, n, c0 + ci, iy, ix)];
                                }
                            }
                            _ => dst.iter_mut().for_each(|d| *d = pad),
                        }
                    }
                }
            }
        }
    }
}
