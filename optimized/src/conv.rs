//! # Integer convolution: `u8` activations x `s8` weights -> exact `i32`
//!
//! The twin of [`quantproof_reference::conv::conv2d_accumulate`] for u8 x s8 (NCHW or NHWC,
//! stride, padding, dilation, groups), bit for bit, errors included (the reference's own
//! `check_conv` validates). Weights are prepared once ([`PackedConv`]); two paths:
//!
//! * **GEMM** (any group size): per group, the im2col matrix (`M = N * OH * OW` rows of `K = KH *
//!   KW * C / groups`, padding taps filled with the input zero point, whose centred value is 0)
//!   times the group's packed weights on a [`GemmKernel`] ([`crate::gemm`], threaded by rows),
//!   then scattered to the output layout (whole channel runs for NHWC, a blocked transpose for
//!   NCHW). The im2col matrix is never built: the GEMM asks for each row as it packs a block
//!   ([`crate::gemm::gemm_u8s8_rows`]), and each row is gathered as runs of `C / groups`
//!   contiguous channels (NCHW input is transposed to NHWC once per call). The GEMM result and
//!   the transposed input live in buffers the prepared convolution keeps between calls, and
//!   [`PackedConv::accumulate_into`] reuses the caller's output: fresh megabytes per call cost
//!   a page fault every 4 KiB (1,64,128,128,64,3,3 on AMX: 252 -> 476 GOPS).
//! * **Depthwise** (one input channel per group, `O = C * multiplier`): no GEMM (each group would
//!   be a `K = KH * KW`, `N = multiplier` product); per output pixel, the taps' centred products are
//!   summed in `i32` lanes across the output channels (a loop the compiler vectorizes). Exact
//!   while `KH * KW * 255 * 255 < 2^31` (the kernel checks; larger windows use `i64`).

use crate::gemm::{gemm_u8s8_rows, GemmKernel, PackedWeights};
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
    /// The GEMM path's buffers, kept between calls.
    scratch: Scratch,
}

/// The GEMM path's per-call buffers (the `M x go` GEMM result and NCHW input transposed to
/// NHWC), kept between calls: allocated afresh, their megabytes cost a page fault per 4 KiB
/// every call, a fifth of a 1,64,128,128,64,3,3 convolution's time. A call that finds them in
/// use (another thread's call on the same weights) allocates its own. Every element of both is
/// written before it is read in each call.
#[derive(Default)]
struct Scratch(std::sync::Mutex<(Vec<i32>, Vec<u8>)>);

impl Clone for Scratch {
    /// A clone starts with no buffers.
    fn clone(&self) -> Scratch {
        Scratch::default()
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
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
        Ok(PackedConv { g: *g, w_layout, w: w.to_vec(), zero_points, groups, taps, scratch: Scratch::default() })
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
        let mut out = Vec::new();
        self.accumulate_into(x_layout, x, x_zero_point, kernel, threads, &mut out)?;
        Ok(out)
    }

    /// [`PackedConv::accumulate`] into `out` (resized to the output's length; its allocation is
    /// reused, which spares a large output's page faults on every call). On an error `out` is
    /// left empty.
    pub fn accumulate_into(
        &self,
        x_layout: ActivationLayout,
        x: &[u8],
        x_zero_point: i32,
        kernel: GemmKernel,
        threads: usize,
        out: &mut Vec<i32>,
    ) -> Result<()> {
        let r = self.compute_into(x_layout, x, x_zero_point, kernel, threads, out);
        if r.is_err() {
            out.clear();
        }
        r
    }

    /// [`PackedConv::accumulate_into`], leaving `out` as it is on an error.
    fn compute_into(
        &self,
        x_layout: ActivationLayout,
        x: &[u8],
        x_zero_point: i32,
        kernel: GemmKernel,
        threads: usize,
        out: &mut Vec<i32>,
    ) -> Result<()> {
        out.clear();
        let g = &self.g;
        let yn = check_conv(g, self.w_layout, x, x_zero_point, &self.w, ZeroPoints::PerColumn(&self.zero_points))?;
        let (oh, ow) = g.output_hw()?;
        out.resize(yn, 0);
        if yn == 0 {
            return Ok(());
        }
        // An exact value outside i32: the reference names the first such element in its own
        // loop order (of the input as given, not of a transposed copy), so it reports the error.
        let fallback = |out: &mut Vec<i32>| -> Result<()> {
            *out = self.reference(x_layout, x, x_zero_point)?;
            Ok(())
        };
        if let Some(taps) = &self.taps {
            return match self.depthwise(x_layout, x, x_zero_point, taps, oh, ow, out) {
                Err(QuantError::AccumulatorOverflow { .. }) => fallback(out),
                r => r,
            };
        }
        let mut own = (Vec::new(), Vec::new());
        let mut kept = self.scratch.0.try_lock().ok();
        let (acc, nhwc) = match kept.as_deref_mut() {
            Some((a, t)) => (a, t),
            None => (&mut own.0, &mut own.1),
        };
        let go = g.group_out();
        let rows = g.batch * oh * ow;
        // Fully written by each group's GEMM before it is read.
        acc.resize(rows * go, 0);
        // NCHW input is transposed to NHWC once, so that im2col copies runs of channels instead
        // of gathering one byte per channel plane.
        let x = match x_layout {
            ActivationLayout::Nhwc => x,
            ActivationLayout::Nchw => {
                let hw = g.in_h * g.in_w;
                nhwc.resize(x.len(), 0);
                for (src, dst) in x.chunks_exact(g.in_channels * hw).zip(nhwc.chunks_exact_mut(g.in_channels * hw)) {
                    transpose(src, g.in_channels, hw, dst);
                }
                &nhwc[..]
            }
        };
        for (grp, packed) in self.groups.iter().enumerate() {
            // The im2col matrix is never built: the GEMM asks for each of its rows as it packs.
            let row = |i: usize, dst: &mut [u8]| im2col_row(g, x, grp, x_zero_point as u8, (oh, ow), i, dst);
            match gemm_u8s8_rows(&row, rows, x_zero_point, packed, kernel, threads, acc) {
                Ok(()) => {}
                Err(QuantError::AccumulatorOverflow { .. }) => return fallback(out),
                Err(e) => return Err(e),
            }
            scatter_group(kernel, g, x_layout, (oh, ow), grp, acc, out);
        }
        Ok(())
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

/// `dst[c * rows + r] = src[r * cols + c]` (`src` is `rows x cols`, row-major; `dst` is `cols x
/// rows`). Whole 16 x 16 tiles go through a local array: sixteen contiguous row reads into it,
/// sixteen contiguous column writes out of it, with every index a constant inside the tile, so
/// no per-element bounds check or address arithmetic is left (the element-at-a-time loop this
/// replaces took about twice the GEMM's time in an NCHW convolution); the ragged right and
/// bottom edges go element by element.
fn transpose<T: Copy + Default>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const B: usize = 16;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    let (rb, cb) = (rows - rows % B, cols - cols % B);
    let mut tile = [[T::default(); B]; B];
    for r0 in (0..rb).step_by(B) {
        for c0 in (0..cb).step_by(B) {
            for (i, t) in tile.iter_mut().enumerate() {
                let s = (r0 + i) * cols + c0;
                t.copy_from_slice(&src[s..s + B]);
            }
            for j in 0..B {
                let d = (c0 + j) * rows + r0;
                for (o, t) in dst[d..d + B].iter_mut().zip(&tile) {
                    *o = t[j];
                }
            }
        }
    }
    // The last `cols % B` columns of the tiled rows, then every column of the last rows.
    transpose_part(src, (rows, cols), dst, 0..rb, cb..cols);
    transpose_part(src, (rows, cols), dst, rb..rows, 0..cols);
}

/// `dst[c * rows + r] = src[r * cols + c]` element by element for `r` in `rs` and `c` in `cs`:
/// the parts of a transpose outside whole tiles.
fn transpose_part<T: Copy>(
    src: &[T],
    (rows, cols): (usize, usize),
    dst: &mut [T],
    rs: core::ops::Range<usize>,
    cs: core::ops::Range<usize>,
) {
    for r in rs {
        for c in cs.clone() {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// [`transpose`] of `i32` (the NCHW output's accumulators): on AVX-512 (where `kernel` is an
/// AVX-512 or AMX kernel and AVX-512 F was detected), each 16 x 16 tile is sixteen zmm loads,
/// the four-stage shuffle network below and sixteen stores (64 shuffles per 256 elements, about
/// four elements a cycle against one for the portable tile); elsewhere the portable one.
fn transpose_i32(kernel: GemmKernel, src: &[i32], rows: usize, cols: usize, dst: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if matches!(kernel, GemmKernel::Avx512Vnni | GemmKernel::AmxInt8) && crate::isa::Isa::Avx512.is_available() {
        let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
        // Tiles start at the row `r` that puts every destination row's stores on whole 64-byte
        // lines (when `rows` is a multiple of 16, every destination row has the same alignment):
        // a store split over two lines, whose other half the next tile writes, is read back
        // for ownership when its line was evicted in between, and the sixteen rows of a tile,
        // 4 KiB apart at 1,024 pixels, all fall in one L1 set.
        let first = match rows % 16 {
            0 => ((64 - dst.as_ptr() as usize % 64) % 64 / 4).min(rows),
            _ => 0,
        };
        let tiles_r = (rows - first) / 16;
        let (r_end, c_end) = (first + 16 * tiles_r, cols - cols % 16);
        for r0 in (first..r_end).step_by(16) {
            for c0 in (0..c_end).step_by(16) {
                // SAFETY: AVX-512 F was detected; the tile's sixteen rows of sixteen `i32` at
                // `src[(r0 + i) cols + c0..]` and `dst[(c0 + j) rows + r0..]` (i, j < 16) lie in
                // the `rows x cols` slices, since `r0 + 16 <= rows` and `c0 + 16 <= cols`.
                unsafe {
                    x86::tile16_i32(src.as_ptr().add(r0 * cols + c0), cols, dst.as_mut_ptr().add(c0 * rows + r0), rows)
                };
            }
        }
        // The rest element by element: rows before and after the tiled ones, and the last
        // `cols % 16` columns of the tiled rows.
        for (rs, c0) in [(0..first, 0), (r_end..rows, 0), (first..r_end, c_end)] {
            transpose_part(src, (rows, cols), dst, rs, c0..cols);
        }
        return;
    }
    let _ = kernel;
    transpose(src, rows, cols, dst)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// `d[j * ds + i] = s[i * ss + j]` for `i, j < 16`: rows `r` loaded whole; then (1) 32-bit
    /// unpacks of row pairs, (2) 64-bit unpacks, after which lane `L` of `u[4k + m]` holds column
    /// `4L + m` of rows `4k..4k + 4`; (3, 4) 128-bit lane shuffles gather lane `L` of `u[m]`,
    /// `u[4 + m]`, `u[8 + m]`, `u[12 + m]` into output row `4L + m`.
    ///
    /// # Safety
    /// AVX-512 F is available; `s + i ss .. + 16` and `d + j ds .. + 16` are readable /
    /// writable `i32` for `i, j < 16`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile16_i32(s: *const i32, ss: usize, d: *mut i32, ds: usize) {
        // SAFETY: rows `i < 16` of `s` are readable (this function's contract).
        let r: [__m512i; 16] = core::array::from_fn(|i| unsafe { _mm512_loadu_si512(s.add(i * ss).cast()) });
        let mut t = [_mm512_setzero_si512(); 16];
        for k in 0..8 {
            t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
        }
        let mut u = [_mm512_setzero_si512(); 16];
        for k in 0..4 {
            u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
            u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
            u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
            u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
        }
        for m in 0..4 {
            let v0 = _mm512_shuffle_i32x4::<0x88>(u[m], u[4 + m]);
            let v1 = _mm512_shuffle_i32x4::<0xDD>(u[m], u[4 + m]);
            let w0 = _mm512_shuffle_i32x4::<0x88>(u[8 + m], u[12 + m]);
            let w1 = _mm512_shuffle_i32x4::<0xDD>(u[8 + m], u[12 + m]);
            let rows = [
                (m, _mm512_shuffle_i32x4::<0x88>(v0, w0)),
                (4 + m, _mm512_shuffle_i32x4::<0x88>(v1, w1)),
                (8 + m, _mm512_shuffle_i32x4::<0xDD>(v0, w0)),
                (12 + m, _mm512_shuffle_i32x4::<0xDD>(v1, w1)),
            ];
            for (j, v) in rows {
                // SAFETY: rows `j < 16` of `d` are writable (this function's contract).
                unsafe { _mm512_storeu_si512(d.add(j * ds).cast(), v) };
            }
        }
    }
}

/// [`Conv2dGeometry::scatter_group`] (group `grp`'s `M x go` GEMM result into the output
/// layout), with whole runs: NHWC output pixels take `go` contiguous channels, NCHW output is one
/// transpose per image (its `go` channel planes are contiguous).
fn scatter_group(
    kernel: GemmKernel,
    g: &Conv2dGeometry,
    layout: ActivationLayout,
    (oh, ow): (usize, usize),
    grp: usize,
    acc: &[i32],
    out: &mut [i32],
) {
    let (go, o_n, ohw) = (g.group_out(), g.out_channels, oh * ow);
    if go == 0 || ohw == 0 {
        return;
    }
    for (n, acc_n) in acc.chunks_exact(ohw * go).enumerate().take(g.batch) {
        match layout {
            ActivationLayout::Nhwc => {
                for (p, run) in acc_n.chunks_exact(go).enumerate() {
                    let o = (n * ohw + p) * o_n + grp * go;
                    out[o..o + go].copy_from_slice(run);
                }
            }
            ActivationLayout::Nchw => {
                let o = (n * o_n + grp * go) * ohw;
                transpose_i32(kernel, acc_n, ohw, go, &mut out[o..o + go * ohw]);
            }
        }
    }
}

/// `dst.copy_from_slice(src)` (equal lengths) in 32-byte pieces the compiler copies inline: a
/// tap's run of channels is tens of bytes, and `copy_from_slice` of a length known only at run
/// time is a `memcpy` call each (7% of a 1,64,32,32,64,3,3 convolution's time).
#[inline(always)]
fn copy_run(dst: &mut [u8], src: &[u8]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(32), src.chunks_exact(32));
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// Row `i` (output pixel `(n, oy, ox)` in row-major order) of group `grp`'s im2col matrix into
/// `dst` (`K` bytes, column `(ky * KW + kx) * gi + ci`) from NHWC input `x`: each tap is a run of
/// `gi` contiguous channels, a tap in the padding is `pad` (the input zero point, whose centred
/// value is 0).
fn im2col_row(g: &Conv2dGeometry, x: &[u8], grp: usize, pad: u8, (oh, ow): (usize, usize), i: usize, dst: &mut [u8]) {
    let gi = g.group_in();
    let c0 = grp * gi;
    let (n, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
    for ky in 0..g.kernel_h {
        let iy = g.tap_y(oy, ky);
        for kx in 0..g.kernel_w {
            let run = &mut dst[(ky * g.kernel_w + kx) * gi..(ky * g.kernel_w + kx + 1) * gi];
            match (iy, g.tap_x(ox, kx)) {
                (Some(iy), Some(ix)) => {
                    let s = g.input_index(ActivationLayout::Nhwc, n, c0, iy, ix);
                    copy_run(run, &x[s..s + gi]);
                }
                _ => run.iter_mut().for_each(|d| *d = pad),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The tiled transpose against the definition, for shapes below, at and across the tile
    /// (16) in both directions, on bytes and on `i32`.
    #[test]
    fn transpose_is_the_definition() {
        let sizes = [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 48, 50, 64, 100];
        for &rows in &sizes {
            for &cols in &sizes {
                let src: Vec<i32> = (0..rows * cols).map(|v| v as i32 * 7 - 3).collect();
                let mut dst = vec![i32::MIN; rows * cols];
                super::transpose(&src, rows, cols, &mut dst);
                // The i32 transpose on every available GEMM kernel's instruction set.
                // Destinations at every 4-byte offset within a cache line (the AVX-512 path aligns
                // its tiles to the destination).
                for kernel in crate::gemm::GemmKernel::ALL.into_iter().filter(|k| k.is_available()) {
                    let mut buf = vec![i32::MIN; rows * cols + 16];
                    for off in 0..16 {
                        let d = &mut buf[off..off + rows * cols];
                        super::transpose_i32(kernel, &src, rows, cols, d);
                        assert_eq!(d, &dst[..], "{} {rows} x {cols} at offset {off}", kernel.name());
                    }
                }
                let bytes: Vec<u8> = src.iter().map(|&v| v as u8).collect();
                let mut tb = vec![0u8; rows * cols];
                super::transpose(&bytes, rows, cols, &mut tb);
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(dst[c * rows + r], src[r * cols + c], "{rows} x {cols} at ({r}, {c})");
                        assert_eq!(tb[c * rows + r], bytes[r * cols + c], "{rows} x {cols} at ({r}, {c})");
                    }
                }
            }
        }
    }
}
