//! Quantization-aware training: fake quantization forward, gradients backward.
//!
//! QAT trains through the fake quantizer `x^ = (clamp(round(x / s) + z, qmin, qmax) - z) s`
//! ([`crate::quantize::fake_quantize`]). Rounding has zero derivative almost everywhere, so every
//! method replaces it by something trainable. This module implements four of them:
//!
//! | method | learns | `dx^/dx` | `dx^/ds` (per element) | offset gradient | here |
//! |---|---|---|---|---|---|
//! | straight-through estimator (PyTorch `FakeQuantize`) | nothing | 1 inside, 0 clipped | - | - | [`SteFakeQuantize`] |
//! | LSQ (Esser et al., ICLR 2020) | `s` | 1 inside, 0 clipped | `round(v/s) - v/s` inside, `-Q_N` below, `Q_P` above | - | [`lsq_forward`], [`lsq_backward`] |
//! | LSQ+ (Bhalgat et al., CVPRW 2020) | `s`, `beta` | 1 inside, 0 clipped | `round(u) - u` inside, `n` below, `p` above | `dx^/dbeta`: 0 inside, 1 clipped | [`lsq_plus_forward`], [`lsq_plus_backward`] |
//! | PyTorch `_fake_quantize_learnable_per_{tensor,channel}_affine` | `s`, `z` | 1 inside, 0 clipped | `(x^ - x)/s` inside, `qmin - z` below, `qmax - z` above | `dx^/dz`: 0 inside, `-s` clipped | [`torch_learnable_per_tensor_backward`], [`torch_learnable_per_channel_backward`] |
//!
//! "Inside" means the unclamped code lies in `[qmin, qmax]` (LSQ: strictly inside `(-Q_N, Q_P)`).
//! Every per-element gradient is multiplied by the *gradient scale* `g`, summed over the elements
//! that share the parameter, and returned. LSQ sets `g = 1 / sqrt(N Q_P)` ([`lsq_grad_scale`]);
//! PyTorch's module does the same when `use_grad_scaling` is on ([`torch_grad_factor`]).
//!
//! ## How PyTorch's op relates to the papers
//!
//! LSQ+ writes `x^ = round(clamp((x - beta) / s, n, p)) s + beta` with a real offset `beta`.
//! PyTorch writes `x^ = (clamp(round(x / s) + z, qmin, qmax) - z) s` with the zero point `z`
//! stored as a float but **rounded to an integer code** before use. For integer `z` the two are
//! the same function with `n = qmin`, `p = qmax` and `beta = -z s`: the offset is a whole number
//! of steps, in code units. The gradients then differ only by the chain rule through `beta = -z s`:
//!
//! ```text
//! dL/dz |_s  = -s dL/dbeta                       (PyTorch's grad_zero_point: -s where clipped)
//! dL/ds |_z  = dL/ds |_beta - z dL/dbeta         (PyTorch's below/above terms qmin - z, qmax - z)
//! ```
//!
//! and the inside term `(x^ - x)/s = round(x/s + z) - z - x/s` is LSQ's `round(v/s) - v/s`. With
//! `z = 0` and `[qmin, qmax] = [-Q_N, Q_P]` PyTorch's `grad_scale` is LSQ's. The tests check these
//! identities numerically (for `z >= 0`: the per-tensor backward reads a negative `z` one code
//! higher than the forward, item 2 below).
//!
//! One difference remains, at the two end cells: the papers clip *before* rounding, so
//! `u = v/s >= Q_P` is "above" (`dx = 0`, `ds = Q_P`), while PyTorch rounds first, so
//! `u` in `[Q_P, Q_P + 1/2)` rounds to the in-range code `Q_P` (`dx = dy`, `ds = Q_P - u`, no
//! zero-point gradient); likewise below. The forward values agree; the gradients do not.
//!
//! All three learned-step methods are straight-through estimators: inside the range, the true
//! derivative of the (piecewise constant) `round(v/s) s` with respect to `s` is `round(v/s)`; LSQ
//! adds the STE term `-v/s`, which is what lets the gradient see *where* in its step `v` lies. The
//! finite-difference tests pin exactly this: on a region where no code changes, the numerical
//! derivative equals the LSQ gradient plus `g sum_inside(dy v/s)`, and in the clipped region the
//! two coincide.
//!
//! ## PyTorch's arithmetic, operation by operation
//!
//! Read from ATen (`FakeQuantPerTensorAffine.cpp`, `FakeQuantPerChannelAffine.cpp`,
//! `quantized/cpu/kernels/QuantizedOpKernels.cpp`, `cpu/SumKernel.cpp`) and confirmed bit for bit
//! on the 12 recorded `lsq` golden cases (PyTorch 2.11, x86):
//!
//! 1. **Zero point, forward:** `clamp(nearbyint(z), qmin, qmax)` (ties to even), then ordinary
//!    fake quantization: `q = z + nearbyint(x * RN(1/s))`, `y = (clamp(q) - z) * s` in f32
//!    ([`crate::profile::Profile::TORCH`]'s fake-quantize rule).
//! 2. **Zero point, backward (per tensor):** `(int64) clamp(z + 0.5f, qmin, qmax)`: the cast
//!    truncates toward zero, so this is `floor(z + 0.5)` only for `z >= -0.5`; `z = -4.1` gives
//!    `-3` in the backward pass but `-4` in the forward pass, and even an integer `z = -3` becomes
//!    `-2` ([`torch_backward_zero_point`]).
//!    Per channel both passes use `torch.round` (ties to even) and the backward keeps it as f32.
//! 3. **Code, backward:** recomputed as `nearbyint(z + x * inv_s)` (the add *before* rounding),
//!    not the forward's `z + nearbyint(x * inv_s)`; with item 2 this is why `grad_x`'s mask can
//!    differ from the forward's mask.
//! 4. **Fused multiply-add:** the x86 AVX2 build (GCC, `-mfma`, `-ffp-contract=fast`) contracts
//!    `z + x * inv_s` into `fma(x, inv_s, z)` and `x_fq - x` into `fma(q - z, s, -x)`. Without
//!    both contractions only 2 of the 12 recorded cases match; with them all 12 match exactly
//!    ([`TorchCpuArith`]).
//! 5. **Per element, in f32:** `dx = dy * inside`; inside: `dz = 0`,
//!    `ds = ((dy * (x_fq - x)) * inv_s) * g`; clipped: `dz = ((dy * -1) * s) * g`,
//!    `ds = (dy * (qmin - z or qmax - z)) * g`, with `g = (float) grad_factor`.
//! 6. **Reduction:** `dScale_vec.sum()` in f32 (`acc_type<float, true>` is float) by ATen's
//!    `cascade_sum` ([`torch_cascade_sum`]): 8-lane vector partial sums for AVX2, four
//!    interleaved accumulators, a 4-level cascade every 16 vectors, then the scalar tail and the
//!    lanes added in order. Per channel the sum runs over every axis but the channel axis
//!    ([`torch_sum_except_axis`]).
//!
//! Where we do not follow PyTorch, on purpose (each is documented at its function): tensors of
//! 32768 elements or more, which ATen sums across threads in a thread-count-dependent order (we
//! always use the single-thread order); `|x/s + z| >= 2^63`, which x86's float-to-int64
//! conversion turns into `INT64_MIN` ("below"; we classify by value); an empty input, for which
//! PyTorch returns the scale and zero point themselves as their gradients (we return zeros); a
//! 1-D per-channel input, whose backward passes an empty dimension list to `sum` (we return one
//! gradient per channel); invalid scales and zero points, which PyTorch does not check (we return
//! typed errors).
//!
//! ## LSQ and LSQ+ arithmetic (quantproof's own)
//!
//! The papers fix formulas, not floating-point details. Here the forward pass is f32, as a
//! PyTorch implementation of the papers would run it: `u = (x - beta) / s`,
//! `x^ = round_half_even(clamp(u, n, p)) * s + beta`. The gradients use the same `u` (so the
//! branches agree with the forward pass) and are formed and summed in f64.

use crate::aten;
use crate::error::{check_len, QuantError, Result};
use crate::profile::Profile;
use crate::quant_params::{check_scale, checked_numel, QuantParams};
use crate::quantize::{fake_quantize, fake_quantize_backward, PreparedScale, QuantizeRule, ScaleOp};
use crate::scheme::{Axis, CodeRange};

// ------------------------------------------------------------------------------------------------
// Straight-through estimator
// ------------------------------------------------------------------------------------------------

/// Straight-through fake quantization: the forward pass remembers which elements were inside the
/// code range; the backward pass lets their gradient through unchanged and zeroes the rest.
///
/// The forward pass is [`crate::quantize::fake_quantize`] (any rule: PyTorch's
/// `fake_quantize_per_{tensor,channel}_affine` is [`Profile::TORCH`]'s fake-quantize rule) and
/// the backward pass is [`crate::quantize::fake_quantize_backward`]; this type only keeps the
/// mask between them, as PyTorch's `_cachemask` ops do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteFakeQuantize {
    mask: Vec<bool>,
}

impl SteFakeQuantize {
    /// `y = fake_quantize(x)`, keeping `mask[i] = qmin <= round(x_i op s) + z <= qmax`.
    pub fn forward(
        x: &[f32],
        shape: &[usize],
        params: &QuantParams,
        rule: QuantizeRule,
        y: &mut [f32],
    ) -> Result<SteFakeQuantize> {
        let mut mask = vec![false; x.len()];
        fake_quantize(x, shape, params, rule, y, Some(&mut mask))?;
        Ok(SteFakeQuantize { mask })
    }

    /// The mask of the forward pass (`true`: inside the range, the gradient passes).
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }

    /// `grad_x[i] = mask[i] ? grad_y[i] : 0` (the golden vectors' `grad_mask` is this for
    /// `grad_y = 1`).
    pub fn backward(&self, grad_y: &[f32], grad_x: &mut [f32]) -> Result<()> {
        fake_quantize_backward(grad_y, &self.mask, grad_x)
    }
}

// ------------------------------------------------------------------------------------------------
// PyTorch's learnable fake quantization
// ------------------------------------------------------------------------------------------------

/// How a PyTorch CPU build evaluates the learnable fake-quantize backward kernels and the `sum`
/// that reduces their per-element gradients. ATen compiles these kernels once per CPU capability
/// and picks one at run time, so the bits depend on the build that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TorchCpuArith {
    /// `z + x * inv_s` and `x_fq - x` fused into single-rounding FMAs (GCC contracts them in the
    /// builds compiled with `-mfma`).
    pub fused_multiply_add: bool,
    /// f32 lanes of ATen's `Vectorized<float>` in that build (the width of `sum`'s partial sums).
    pub sum_lanes: usize,
}

impl TorchCpuArith {
    /// x86-64, `ATEN_CPU_CAPABILITY=avx2`: fused, 8 lanes. The golden vectors were recorded with
    /// this build; it reproduces all 12 `lsq` cases bit for bit.
    pub const X86_AVX2: TorchCpuArith = TorchCpuArith { fused_multiply_add: true, sum_lanes: 8 };
    /// x86-64, `ATEN_CPU_CAPABILITY=avx512`: fused, 16 lanes (read from the source; no recording).
    pub const X86_AVX512: TorchCpuArith = TorchCpuArith { fused_multiply_add: true, sum_lanes: 16 };
    /// `ATEN_CPU_CAPABILITY=default`: no FMA, the generic 32-byte vector (8 lanes) (read from the
    /// source; no recording).
    pub const DEFAULT_BUILD: TorchCpuArith = TorchCpuArith { fused_multiply_add: false, sum_lanes: 8 };

    fn check(&self) -> Result<()> {
        check_lanes(self.sum_lanes)
    }
}

fn check_lanes(lanes: usize) -> Result<()> {
    if (1..=64).contains(&lanes) {
        Ok(())
    } else {
        Err(QuantError::InvalidArgument { what: "sum lanes", detail: format!("{lanes} is outside 1..=64") })
    }
}

/// Gradients of a learnable fake quantizer with respect to its input and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnableGrads {
    /// `dL/dx`, one per element.
    pub grad_x: Vec<f32>,
    /// `dL/ds`, one per scale (one for per-tensor).
    pub grad_scale: Vec<f32>,
    /// `dL/dz`, one per zero point.
    pub grad_zero_point: Vec<f32>,
}

/// PyTorch's forward zero point (both granularities): `clamp(nearbyint(z), qmin, qmax)`, ties to
/// even. Fails on a non-finite `z`.
pub fn torch_forward_zero_point(zero_point: f32, range: CodeRange) -> Result<i32> {
    check_zero_point_finite(0, zero_point)?;
    Ok(clamp_code(zero_point.round_ties_even(), range) as i32)
}

/// PyTorch's per-tensor *backward* zero point (`_get_zero_point_from_tensor(..., false)`):
/// `(int64) clamp(z + 0.5f, qmin, qmax)`. The cast truncates toward zero, so for negative
/// values this is not `floor(z + 0.5)`: `-4.1 -> -3`, `-4.6 -> -4`, `-3 -> -2` (a negative
/// integer zero point is moved up by one), `2.5 -> 3`. Fails on a non-finite `z`.
pub fn torch_backward_zero_point(zero_point: f32, range: CodeRange) -> Result<i32> {
    check_zero_point_finite(0, zero_point)?;
    Ok(clamp_code(zero_point + 0.5, range).trunc() as i32)
}

/// The per-channel zero point of both passes: `torch.round(z).clamp(qmin, qmax)` (ties to even),
/// kept as f32 (the backward kernel reads it as a float).
fn torch_channel_zero_point(index: usize, zero_point: f32, range: CodeRange) -> Result<f32> {
    check_zero_point_finite(index, zero_point)?;
    Ok(clamp_code(zero_point.round_ties_even(), range))
}

/// `_LearnableFakeQuantize`'s gradient factor with `use_grad_scaling`:
/// `1 / sqrt(numel * quant_max)`, in f64 as Python computes it (the op then rounds it to f32).
/// Fails when `numel * quant_max <= 0` (Python would divide by zero or take a complex root).
pub fn torch_grad_factor(numel: usize, quant_max: i32) -> Result<f64> {
    let prod = numel as f64 * quant_max as f64;
    if prod > 0.0 {
        Ok(1.0 / prod.sqrt())
    } else {
        Err(QuantError::InvalidArgument {
            what: "grad_factor",
            detail: format!("1/sqrt(numel * quant_max) needs numel * quant_max > 0, got {numel} * {quant_max}"),
        })
    }
}

fn check_zero_point_finite(index: usize, z: f32) -> Result<()> {
    if z.is_finite() {
        Ok(())
    } else {
        Err(QuantError::NonFinite { what: "zero_point", index, value: z as f64 })
    }
}

/// `min(max(v, qmin), qmax)` in f32, as ATen's `std::min(std::max(...))` on floats.
fn clamp_code(v: f32, range: CodeRange) -> f32 {
    v.max(range.qmin() as f32).min(range.qmax() as f32)
}

fn check_grad_factor(grad_factor: f64) -> Result<f32> {
    let g = grad_factor as f32;
    if g.is_finite() {
        Ok(g)
    } else {
        Err(QuantError::NonFinite { what: "grad_factor", index: 0, value: grad_factor })
    }
}

/// The backward kernels check `quant_min <= 0 <= quant_max`.
fn check_backward_range(range: CodeRange) -> Result<()> {
    if range.qmin() <= 0 && range.qmax() >= 0 {
        Ok(())
    } else {
        Err(QuantError::InvalidArgument {
            what: "code range",
            detail: format!(
                "PyTorch's learnable fake-quantize backward needs qmin <= 0 <= qmax, got [{}, {}]",
                range.qmin(),
                range.qmax()
            ),
        })
    }
}

fn check_no_nan(x: &[f32]) -> Result<()> {
    match x.iter().position(|v| v.is_nan()) {
        None => Ok(()),
        Some(index) => Err(QuantError::NanInput { what: "x", index }),
    }
}

/// One element of ATen's `fake_quantize_learnable_{tensor,channel}_grad_kernel_cpu`. `zp` is the
/// backward zero point (an integer held in f32), `inv = RN(1 / s)`. Returns `(dx, ds, dz)`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn learnable_grad_element(
    x: f32,
    dy: f32,
    scale: f32,
    inv: f32,
    zp: f32,
    range: CodeRange,
    g: f32,
    fma: bool,
) -> (f32, f32, f32) {
    let (qmin, qmax) = (range.qmin() as f32, range.qmax() as f32);
    // xqi = nearbyint(zero_point + x * inv_scale)
    let t = if fma { x.mul_add(inv, zp) } else { zp + x * inv };
    let xq = t.round_ties_even();
    let below = xq < qmin;
    let above = xq > qmax;
    let inside = !(below || above);
    let dx = dy * if inside { 1.0 } else { 0.0 };
    if inside {
        // xfqi = (clamp(xqi) - zero_point) * scale; the residual xfqi - x (fused: one rounding).
        let d = xq - zp;
        let residual = if fma { d.mul_add(scale, -x) } else { d * scale - x };
        (dx, dy * residual * inv * g, 0.0)
    } else {
        let dscale = if below { qmin - zp } else { qmax - zp };
        // ATen's `dy * (-1) * scale * grad_factor`; `dy * -1` is exactly `-dy`.
        (dx, dy * dscale * g, -dy * scale * g)
    }
}

fn prepared(index: usize, scale: f32) -> Result<PreparedScale> {
    check_scale(index, scale)?;
    PreparedScale::new(index, scale, ScaleOp::MultiplyByReciprocal)
}

/// `torch._fake_quantize_learnable_per_tensor_affine` forward: `y = fake_quantize(x)` with the
/// zero point `clamp(nearbyint(z), qmin, qmax)` ([`torch_forward_zero_point`]) and PyTorch's
/// fake-quantize rule (`x * RN(1/s)`, ties to even). `x` is treated as flat (per-tensor
/// parameters do not depend on the shape). Errors: invalid or subnormal scale, non-finite zero
/// point, NaN in `x`, length mismatch.
pub fn torch_learnable_per_tensor_forward(
    x: &[f32],
    scale: f32,
    zero_point: f32,
    range: CodeRange,
    y: &mut [f32],
) -> Result<()> {
    let z = torch_forward_zero_point(zero_point, range)?;
    prepared(0, scale)?;
    let params = QuantParams::per_tensor(scale, z, range);
    fake_quantize(x, &[x.len()], &params, Profile::TORCH.fake_quantize_rule()?, y, None)
}

/// `torch._fake_quantize_learnable_per_tensor_affine` backward, reproducing the CPU build
/// described by `arith` bit for bit (see the module docs, items 2 to 6):
///
/// ```text
/// zb = (int64) clamp(z + 0.5f, qmin, qmax)          inv = RN(1/s)     g = (float) grad_factor
/// t  = nearbyint(fma(x, inv, zb))                   (zb + RN(x inv) without FMA)
/// inside (qmin <= t <= qmax):  dx = dy   ds = ((dy * fma(t - zb, s, -x)) * inv) * g   dz = 0
/// below / above:               dx = 0    ds = (dy * (qmin - zb | qmax - zb)) * g
///                                        dz = ((dy * -1) * s) * g
/// grad_scale = cascade_sum(ds), grad_zero_point = cascade_sum(dz)        (f32, ATen's order)
/// ```
///
/// `grad_factor` is `1` or [`torch_grad_factor`]. Errors: invalid or subnormal scale,
/// non-finite zero point or grad factor, `qmin > 0` or `qmax < 0` (PyTorch's check), NaN in
/// `x`, length mismatch. An empty `x` gives zero gradients (PyTorch returns the parameters
/// themselves there).
pub fn torch_learnable_per_tensor_backward(
    x: &[f32],
    scale: f32,
    zero_point: f32,
    range: CodeRange,
    grad_factor: f64,
    grad_y: &[f32],
    arith: TorchCpuArith,
) -> Result<LearnableGrads> {
    arith.check()?;
    check_len("grad_y", x.len(), grad_y.len())?;
    check_backward_range(range)?;
    let ps = prepared(0, scale)?;
    let zb = torch_backward_zero_point(zero_point, range)? as f32;
    let g = check_grad_factor(grad_factor)?;
    check_no_nan(x)?;
    let n = x.len();
    let (mut dx, mut ds, mut dz) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        (dx[i], ds[i], dz[i]) =
            learnable_grad_element(x[i], grad_y[i], scale, ps.reciprocal, zb, range, g, arith.fused_multiply_add);
    }
    Ok(LearnableGrads {
        grad_x: dx,
        grad_scale: vec![torch_cascade_sum(&ds, arith.sum_lanes)?],
        grad_zero_point: vec![torch_cascade_sum(&dz, arith.sum_lanes)?],
    })
}

/// `torch._fake_quantize_learnable_per_channel_affine` forward: per-axis fake quantization along
/// `axis` with zero points `torch.round(z).clamp(qmin, qmax)` converted to int (ties to even),
/// PyTorch's rule `x * RN(1/s)`. Errors as [`crate::quantize::fake_quantize`], plus non-finite
/// zero points and a zero-point count that differs from the scale count.
pub fn torch_learnable_per_channel_forward(
    x: &[f32],
    shape: &[usize],
    axis: impl Into<Axis>,
    scales: &[f32],
    zero_points: &[f32],
    range: CodeRange,
    y: &mut [f32],
) -> Result<()> {
    check_len("zero_point", scales.len(), zero_points.len())?;
    let zs = zero_points
        .iter()
        .enumerate()
        .map(|(i, &z)| torch_channel_zero_point(i, z, range).map(|v| v as i32))
        .collect::<Result<Vec<_>>>()?;
    let params = QuantParams::per_axis(axis.into(), scales.to_vec(), zs, range);
    fake_quantize(x, shape, &params, Profile::TORCH.fake_quantize_rule()?, y, None)
}

/// `torch._fake_quantize_learnable_per_channel_affine` backward. Per element the arithmetic of
/// [`torch_learnable_per_tensor_backward`], with channel `c`'s scale, `inv = RN(1/s_c)` and the
/// zero point `torch.round(z_c).clamp(qmin, qmax)` (ties to even, kept in f32: unlike the
/// per-tensor op, forward and backward agree on it). `grad_scale[c]` and
/// `grad_zero_point[c]` are reduced over every other axis by [`torch_sum_except_axis`].
///
/// Errors: those of the per-tensor backward, plus axis out of range, wrong parameter count,
/// shape mismatch. For a 1-D input (every element its own channel) we return the per-element
/// gradients; PyTorch passes an empty dimension list to `sum` there, which reduces everything.
#[allow(clippy::too_many_arguments)]
pub fn torch_learnable_per_channel_backward(
    x: &[f32],
    shape: &[usize],
    axis: impl Into<Axis>,
    scales: &[f32],
    zero_points: &[f32],
    range: CodeRange,
    grad_factor: f64,
    grad_y: &[f32],
    arith: TorchCpuArith,
) -> Result<LearnableGrads> {
    arith.check()?;
    check_len("grad_y", x.len(), grad_y.len())?;
    check_len("zero_point", scales.len(), zero_points.len())?;
    check_backward_range(range)?;
    let axis = axis.into();
    let (_, channels, inner) = axis_split(shape, x.len(), axis)?;
    if scales.len() != channels {
        return Err(QuantError::ParamCountMismatch { what: "scales", expected: channels, got: scales.len() });
    }
    let prepared_scales = scales.iter().enumerate().map(|(i, &s)| prepared(i, s)).collect::<Result<Vec<_>>>()?;
    let zps = zero_points
        .iter()
        .enumerate()
        .map(|(i, &z)| torch_channel_zero_point(i, z, range))
        .collect::<Result<Vec<_>>>()?;
    let g = check_grad_factor(grad_factor)?;
    check_no_nan(x)?;
    let n = x.len();
    let (mut dx, mut ds, mut dz) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        let c = (i / inner) % channels;
        let ps = &prepared_scales[c];
        (dx[i], ds[i], dz[i]) = learnable_grad_element(
            x[i],
            grad_y[i],
            ps.scale,
            ps.reciprocal,
            zps[c],
            range,
            g,
            arith.fused_multiply_add,
        );
    }
    Ok(LearnableGrads {
        grad_x: dx,
        grad_scale: torch_sum_except_axis(&ds, shape, axis, arith.sum_lanes)?,
        grad_zero_point: torch_sum_except_axis(&dz, shape, axis, arith.sum_lanes)?,
    })
}

/// `(outer, axis_len, inner)` of `shape` around `axis`, after checking it describes `len`.
fn axis_split(shape: &[usize], len: usize, axis: Axis) -> Result<(usize, usize, usize)> {
    if checked_numel(shape) != Some(len) {
        return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len });
    }
    let axis = axis.resolve(shape.len())?;
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    Ok((outer, shape[axis], inner))
}

/// `torch.sum` of a contiguous f32 tensor on the CPU, in ATen's order (`cascade_sum` in
/// `SumKernel.cpp`, single-threaded): with `lanes`-wide vectors `V_k = x[k lanes .. (k+1) lanes]`,
///
/// ```text
/// P_0..P_3 = multi_row_sum of (V_4i, V_4i+1, V_4i+2, V_4i+3)   (4-level cascade every 16 rows)
/// P_0 += leftover vectors; P = ((P_0 + P_1) + P_2) + P_3       (lane-wise)
/// s = 0; s += each tail element (the last len % lanes), in order; s += P[0], P[1], ...
/// ```
///
/// (fewer than `lanes` elements: the same structure with scalars). Everything is f32: ATen's
/// accumulate type for a float sum on the CPU is float. ATen sums tensors of 32768 elements or
/// more across threads, in an order that depends on the thread count; this function always
/// gives the single-thread result. `lanes` is 8 for AVX2 and the default build, 16 for AVX-512.
pub fn torch_cascade_sum(x: &[f32], lanes: usize) -> Result<f32> {
    check_lanes(lanes)?;
    Ok(aten::cascade_sum(x, lanes))
}

/// `v.sum(dims)` over every axis but `axis` of a contiguous f32 tensor of `shape`, in ATen's
/// order (single-threaded). With `shape = [outer..., C, inner...]`, after ATen's
/// `TensorIterator` drops size-1 dimensions and coalesces the rest:
///
/// * `C == 1`: the sum of everything ([`torch_cascade_sum`]);
/// * `inner > 1`: `out[c] = ((0 + S(row 0, c)) + S(row 1, c)) + ...` over the outer index,
///   `S` the contiguous row sum of the `inner` elements;
/// * `inner == 1`, `outer > 1`: column sums of the `[outer, C]` matrix (ATen's outer-reduction
///   kernels, whose grouping depends on the column index);
/// * `inner == outer == 1` (a 1-D tensor): the elements themselves.
pub fn torch_sum_except_axis(v: &[f32], shape: &[usize], axis: impl Into<Axis>, lanes: usize) -> Result<Vec<f32>> {
    check_lanes(lanes)?;
    let (outer, channels, inner) = axis_split(shape, v.len(), axis.into())?;
    if v.is_empty() {
        return Ok(vec![0.0; channels]);
    }
    if channels == 1 {
        return Ok(vec![aten::cascade_sum(v, lanes)]);
    }
    if inner == 1 {
        if outer == 1 {
            return Ok(v.iter().map(|&e| 0.0 + e).collect());
        }
        return Ok(aten::column_sums(v, outer, channels, lanes));
    }
    let mut out = vec![0f32; channels];
    for (c, o) in out.iter_mut().enumerate() {
        for k in 0..outer {
            let start = (k * channels + c) * inner;
            *o += aten::contiguous_row_sum(&v[start..start + inner], lanes);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------
// PyTorch's `_LearnableFakeQuantize` module
// ------------------------------------------------------------------------------------------------

/// `torch.ao.quantization._LearnableFakeQuantize` in parameter-learning mode (observer off):
/// what one training step does to the input and the parameters.
///
/// `forward` first clamps every scale to at least `f32::EPSILON` (`scale.data.clamp_(min=eps)`)
/// and, for a symmetric scheme, zeroes the zero points; the gradient factor is
/// `1 / sqrt(numel * quant_max)` with `use_grad_scaling`, else 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchLearnableFakeQuantize {
    /// One scale per tensor (`axis: None`) or per channel.
    pub scale: Vec<f32>,
    /// The learnable zero points (floats; the ops round them).
    pub zero_point: Vec<f32>,
    pub range: CodeRange,
    /// The channel axis (`ch_axis`) for per-channel schemes.
    pub axis: Option<Axis>,
    /// `per_tensor_symmetric` / `per_channel_symmetric`, or affine.
    pub symmetry: crate::scheme::Symmetry,
    pub use_grad_scaling: bool,
    pub arith: TorchCpuArith,
}

impl TorchLearnableFakeQuantize {
    /// The gradient factor for a tensor of `numel` elements.
    pub fn grad_factor(&self, numel: usize) -> Result<f64> {
        if self.use_grad_scaling {
            torch_grad_factor(numel, self.range.qmax())
        } else {
            Ok(1.0)
        }
    }

    /// Applies the module's parameter updates (scale clamp, symmetric zero point) and
    /// fake-quantizes `x`.
    pub fn forward(&mut self, x: &[f32], shape: &[usize], y: &mut [f32]) -> Result<()> {
        for s in &mut self.scale {
            // torch.clamp_(min=eps): NaN stays NaN (and is rejected below).
            if *s < f32::EPSILON {
                *s = f32::EPSILON;
            }
        }
        if self.symmetry.is_symmetric() {
            self.zero_point.iter_mut().for_each(|z| *z = 0.0);
        }
        match self.axis {
            None => {
                self.check_per_tensor()?;
                torch_learnable_per_tensor_forward(x, self.scale[0], self.zero_point[0], self.range, y)
            }
            Some(axis) => {
                torch_learnable_per_channel_forward(x, shape, axis, &self.scale, &self.zero_point, self.range, y)
            }
        }
    }

    /// Gradients for `grad_y = dL/dy`, with the parameters as the last `forward` left them.
    pub fn backward(&self, x: &[f32], shape: &[usize], grad_y: &[f32]) -> Result<LearnableGrads> {
        let g = self.grad_factor(x.len())?;
        match self.axis {
            None => {
                self.check_per_tensor()?;
                if checked_numel(shape) != Some(x.len()) {
                    return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len: x.len() });
                }
                torch_learnable_per_tensor_backward(
                    x,
                    self.scale[0],
                    self.zero_point[0],
                    self.range,
                    g,
                    grad_y,
                    self.arith,
                )
            }
            Some(axis) => torch_learnable_per_channel_backward(
                x,
                shape,
                axis,
                &self.scale,
                &self.zero_point,
                self.range,
                g,
                grad_y,
                self.arith,
            ),
        }
    }

    fn check_per_tensor(&self) -> Result<()> {
        if self.scale.len() != 1 {
            return Err(QuantError::ParamCountMismatch { what: "scales", expected: 1, got: self.scale.len() });
        }
        check_len("zero_point", 1, self.zero_point.len())
    }
}

// ------------------------------------------------------------------------------------------------
// LSQ and LSQ+
// ------------------------------------------------------------------------------------------------

/// The parameters of an LSQ+ quantizer `x^ = round(clamp((x - offset) / scale, n, p)) scale +
/// offset` with `[n, p] = [range.qmin, range.qmax]`. LSQ is `offset = 0`, `n = -Q_N`, `p = Q_P`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsqParams {
    pub scale: f32,
    /// LSQ+'s learnable offset `beta` (a real value, not a code).
    pub offset: f32,
    pub range: CodeRange,
}

impl LsqParams {
    /// LSQ: no offset.
    pub fn lsq(scale: f32, range: CodeRange) -> LsqParams {
        LsqParams { scale, offset: 0.0, range }
    }

    fn check(&self) -> Result<()> {
        check_scale(0, self.scale)?;
        if !self.offset.is_finite() {
            return Err(QuantError::NonFinite { what: "offset", index: 0, value: self.offset as f64 });
        }
        Ok(())
    }
}

/// Gradients of LSQ / LSQ+, accumulated in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct LsqGrads {
    /// `dL/dx`: `grad_y` inside the range, 0 where clipped.
    pub grad_x: Vec<f32>,
    /// `dL/ds`, scaled by the gradient factor.
    pub grad_scale: f64,
    /// `dL/dbeta`, scaled by the gradient factor (LSQ does not learn it).
    pub grad_offset: f64,
}

/// Where `u = (x - beta) / s` falls: strictly inside `(n, p)`, or clipped.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Below,
    Inside,
    Above,
}

/// `(u, side, x^)` for one element, all f32.
#[inline]
fn lsq_element(x: f32, p: &LsqParams) -> (f32, Side, f32) {
    let (n, pp) = (p.range.qmin() as f32, p.range.qmax() as f32);
    let u = (x - p.offset) / p.scale;
    let side = if u <= n {
        Side::Below
    } else if u >= pp {
        Side::Above
    } else {
        Side::Inside
    };
    let r = u.max(n).min(pp).round_ties_even();
    (u, side, r * p.scale + p.offset)
}

/// LSQ+ forward: `y = round_half_even(clamp((x - beta) / s, n, p)) * s + beta`, in f32.
/// Errors: invalid scale, non-finite offset, NaN in `x`, length mismatch.
pub fn lsq_plus_forward(x: &[f32], params: &LsqParams, y: &mut [f32]) -> Result<()> {
    params.check()?;
    check_len("output", x.len(), y.len())?;
    check_no_nan(x)?;
    for (o, &xi) in y.iter_mut().zip(x) {
        *o = lsq_element(xi, params).2;
    }
    Ok(())
}

/// LSQ+ backward (Bhalgat et al., eq. 4-5), straight-through for the rounding:
///
/// ```text
/// u = (x - beta) / s               (f32, as the forward pass)
/// n < u < p:   dx = dy   ds = dy (round(u) - u)   dbeta = 0
/// u <= n:      dx = 0    ds = dy n                dbeta = dy
/// u >= p:      dx = 0    ds = dy p                dbeta = dy
/// grad_scale = g sum(ds), grad_offset = g sum(dbeta)       (f64)
/// ```
///
/// Errors: invalid scale, non-finite offset or gradient factor, NaN in `x`, length mismatch.
pub fn lsq_plus_backward(x: &[f32], params: &LsqParams, grad_y: &[f32], grad_factor: f64) -> Result<LsqGrads> {
    params.check()?;
    check_len("grad_y", x.len(), grad_y.len())?;
    if !grad_factor.is_finite() {
        return Err(QuantError::NonFinite { what: "grad_factor", index: 0, value: grad_factor });
    }
    check_no_nan(x)?;
    let (n, p) = (params.range.qmin() as f64, params.range.qmax() as f64);
    let mut grad_x = vec![0f32; x.len()];
    let (mut gs, mut gb) = (0f64, 0f64);
    for ((&xi, &dy), gx) in x.iter().zip(grad_y).zip(grad_x.iter_mut()) {
        let (u, side, _) = lsq_element(xi, params);
        let dy64 = dy as f64;
        match side {
            Side::Inside => {
                *gx = dy;
                gs += dy64 * (u.round_ties_even() as f64 - u as f64);
            }
            Side::Below => {
                gs += dy64 * n;
                gb += dy64;
            }
            Side::Above => {
                gs += dy64 * p;
                gb += dy64;
            }
        }
    }
    Ok(LsqGrads { grad_x, grad_scale: gs * grad_factor, grad_offset: gb * grad_factor })
}

/// LSQ forward (Esser et al., eq. 1-2): `v^ = round_half_even(clamp(v / s, -Q_N, Q_P)) * s` with
/// `[-Q_N, Q_P] = [range.qmin, range.qmax]` (signed b bits: `Q_N = 2^(b-1)`,
/// `Q_P = 2^(b-1) - 1`; unsigned: `Q_N = 0`, `Q_P = 2^b - 1`).
pub fn lsq_forward(x: &[f32], scale: f32, range: CodeRange, y: &mut [f32]) -> Result<()> {
    lsq_plus_forward(x, &LsqParams::lsq(scale, range), y)
}

/// LSQ backward (Esser et al., eq. 3): `dv^/ds = round(v/s) - v/s` for `-Q_N < v/s < Q_P`,
/// `-Q_N` below, `Q_P` above, times the gradient scale ([`lsq_grad_scale`]); `dv^/dv` is the
/// clipped straight-through estimator. `grad_offset` is what LSQ+ would learn for `beta` at 0.
pub fn lsq_backward(x: &[f32], scale: f32, range: CodeRange, grad_y: &[f32], grad_factor: f64) -> Result<LsqGrads> {
    lsq_plus_backward(x, &LsqParams::lsq(scale, range), grad_y, grad_factor)
}

/// LSQ's gradient scale `g = 1 / sqrt(N Q_P)` for `N` elements sharing the scale. Fails when
/// `N = 0` or `Q_P <= 0`.
pub fn lsq_grad_scale(numel: usize, q_p: i32) -> Result<f64> {
    torch_grad_factor(numel, q_p)
}

/// LSQ's initial step size `s0 = 2 mean(|v|) / sqrt(Q_P)` (in f64, rounded to f32). Fails on
/// empty or non-finite data, `Q_P <= 0`, or all-zero data (which would give `s0 = 0`).
pub fn lsq_init_scale(x: &[f32], q_p: i32) -> Result<f32> {
    if x.is_empty() {
        return Err(QuantError::EmptyInput { what: "x" });
    }
    crate::error::check_finite("x", x)?;
    if q_p <= 0 {
        return Err(QuantError::InvalidArgument { what: "Q_P", detail: format!("{q_p} must be positive") });
    }
    let mean_abs = x.iter().map(|v| v.abs() as f64).sum::<f64>() / x.len() as f64;
    let s = (2.0 * mean_abs / (q_p as f64).sqrt()) as f32;
    if s > 0.0 && s.is_finite() {
        Ok(s)
    } else {
        Err(QuantError::InvalidScale { index: 0, scale: s as f64 })
    }
}

/// LSQ+'s min-max initialization: `s = (max - min) / (p - n)`, `beta = min - n s` (in f64,
/// rounded to f32), so that `[min, max]` maps onto `[n, p]`. Fails on a non-finite or empty
/// range (`min >= max`) or a single-code range.
pub fn lsq_plus_init_min_max(min: f32, max: f32, range: CodeRange) -> Result<LsqParams> {
    crate::error::check_finite("range [min, max]", &[min, max])?;
    if min >= max {
        return Err(QuantError::InvalidRange { min: min as f64, max: max as f64 });
    }
    let (n, p) = (range.qmin() as f64, range.qmax() as f64);
    if p <= n {
        return Err(QuantError::InvalidArgument { what: "code range", detail: "needs at least two codes".into() });
    }
    let s = (max as f64 - min as f64) / (p - n);
    let params = LsqParams { scale: s as f32, offset: (min as f64 - n * s) as f32, range };
    params.check()?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::QType;

    fn r(qmin: i32, qmax: i32) -> CodeRange {
        CodeRange::new(qmin, qmax).unwrap()
    }

    #[test]
    fn zero_point_rounding_forward_and_backward() {
        let u8r = QType::U8.full_range();
        let i4 = r(-8, 7);
        // (z, range, forward, backward)
        let table = [
            (2.5f32, u8r, 2, 3),
            (3.5, u8r, 4, 4),
            (204.953, u8r, 205, 205),
            (-4.098, i4, -4, -3),
            (-4.6, i4, -5, -4),
            (-0.4, i4, 0, 0),
            (-20.5, r(-128, 127), -20, -20),
            (300.0, u8r, 255, 255),
            (-9.7, i4, -8, -8),
            (-3.0, i4, -3, -2),
            (3.0, i4, 3, 3),
        ];
        for (z, range, fwd, bwd) in table {
            assert_eq!(torch_forward_zero_point(z, range).unwrap(), fwd, "forward z = {z}");
            assert_eq!(torch_backward_zero_point(z, range).unwrap(), bwd, "backward z = {z}");
        }
        assert!(matches!(torch_forward_zero_point(f32::NAN, u8r), Err(QuantError::NonFinite { .. })));
        assert!(matches!(torch_backward_zero_point(f32::INFINITY, u8r), Err(QuantError::NonFinite { .. })));
    }

    #[test]
    fn cascade_sum_is_exact_on_integers_for_every_size() {
        // Integer values whose partial sums stay below 2^24 add exactly in any order, so any
        // dropped or doubled element shows. Sizes cover the tails, the 4-way interleave and
        // several cascade levels (16 rows of 4 vectors = 512 elements at 8 lanes).
        for lanes in [1usize, 4, 8, 16] {
            for n in (0..700).chain([1023, 1024, 1025, 4096 + 17, 20_000]) {
                let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
                let exact: f64 = x.iter().map(|&v| v as f64).sum();
                assert_eq!(torch_cascade_sum(&x, lanes).unwrap() as f64, exact, "n = {n}, lanes = {lanes}");
            }
        }
        assert!(torch_cascade_sum(&[1.0], 0).is_err());
    }

    #[test]
    fn cascade_sum_order_matters_and_is_fixed() {
        // 1e8 + 1 + ... : a left-to-right sum loses the ones; lane-wise partial sums keep some.
        let mut x = vec![1.0f32; 64];
        x[0] = 1e8;
        let seq = x.iter().fold(0f32, |a, &b| a + b);
        let c8 = torch_cascade_sum(&x, 8).unwrap();
        assert_eq!(seq, 1e8);
        // Lane 0 holds 1e8 + 7 ones (lost), lanes 1..7 hold 8 ones each = 56, added to 1e8 last.
        assert_eq!(c8, 1e8 + 56.0);
    }

    #[test]
    fn sum_except_axis_matches_exact_sums() {
        let shapes: [(&[usize], usize); 7] = [
            (&[3, 5], 0),
            (&[3, 5], 1),
            (&[40, 20], 1),
            (&[2, 3, 17], 1),
            (&[5, 1, 4], 1),
            (&[9], 0),
            (&[4, 70, 3], 2),
        ];
        for (shape, axis) in shapes {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 31) % 11) as f32).collect();
            let got = torch_sum_except_axis(&v, shape, axis, 8).unwrap();
            let inner: usize = shape[axis + 1..].iter().product();
            let mut want = vec![0f64; shape[axis]];
            for (i, &e) in v.iter().enumerate() {
                want[(i / inner) % shape[axis]] += e as f64;
            }
            let got64: Vec<f64> = got.iter().map(|&g| g as f64).collect();
            assert_eq!(got64, want, "shape {shape:?} axis {axis}");
        }
        assert!(matches!(torch_sum_except_axis(&[1.0; 6], &[2, 3], 2, 8), Err(QuantError::AxisOutOfRange { .. })));
        assert!(matches!(torch_sum_except_axis(&[1.0; 5], &[2, 3], 0, 8), Err(QuantError::ShapeMismatch { .. })));
    }

    #[test]
    fn backward_errors() {
        let x = [0.5f32, 1.0];
        let gy = [1.0f32, 1.0];
        let a = TorchCpuArith::X86_AVX2;
        let u8r = QType::U8.full_range();
        let bad = |s: f32, z: f32, range: CodeRange, g: f64, gy: &[f32]| {
            torch_learnable_per_tensor_backward(&x, s, z, range, g, gy, a).unwrap_err()
        };
        assert!(matches!(bad(0.0, 0.0, u8r, 1.0, &gy), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(-1.0, 0.0, u8r, 1.0, &gy), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(f32::NAN, 0.0, u8r, 1.0, &gy), QuantError::InvalidScale { .. }));
        assert!(matches!(bad(1e-40, 0.0, u8r, 1.0, &gy), QuantError::ReciprocalOverflow { .. }));
        assert!(matches!(bad(1.0, f32::NAN, u8r, 1.0, &gy), QuantError::NonFinite { .. }));
        assert!(matches!(bad(1.0, 0.0, u8r, f64::INFINITY, &gy), QuantError::NonFinite { .. }));
        assert!(matches!(bad(1.0, 0.0, r(1, 5), 1.0, &gy), QuantError::InvalidArgument { .. }));
        assert!(matches!(bad(1.0, 0.0, u8r, 1.0, &gy[..1]), QuantError::LengthMismatch { .. }));
        let e = torch_learnable_per_tensor_backward(&[1.0, f32::NAN], 1.0, 0.0, u8r, 1.0, &gy, a).unwrap_err();
        assert_eq!(e, QuantError::NanInput { what: "x", index: 1 });
        let e = torch_learnable_per_tensor_backward(&x, 1.0, 0.0, u8r, 1.0, &gy, TorchCpuArith { sum_lanes: 0, ..a });
        assert!(matches!(e, Err(QuantError::InvalidArgument { .. })));
        // Per channel: count and axis checks.
        let e = torch_learnable_per_channel_backward(&x, &[2], 0, &[1.0], &[0.0], u8r, 1.0, &gy, a);
        assert!(matches!(e, Err(QuantError::ParamCountMismatch { .. })));
        let e = torch_learnable_per_channel_backward(&x, &[2], 1, &[1.0], &[0.0], u8r, 1.0, &gy, a);
        assert!(matches!(e, Err(QuantError::AxisOutOfRange { .. })));
        let e = torch_learnable_per_channel_backward(&x, &[2], 0, &[1.0, 1.0], &[0.0], u8r, 1.0, &gy, a);
        assert!(matches!(e, Err(QuantError::LengthMismatch { .. })));
    }

    #[test]
    fn infinities_classify_by_value() {
        let a = TorchCpuArith::X86_AVX2;
        let g = torch_learnable_per_tensor_backward(
            &[f32::INFINITY, f32::NEG_INFINITY],
            0.5,
            10.0,
            QType::U8.full_range(),
            1.0,
            &[1.0, 1.0],
            a,
        )
        .unwrap();
        assert_eq!(g.grad_x, [0.0, 0.0]);
        // above: qmax - z = 245; below: qmin - z = -10.
        assert_eq!(g.grad_scale, [235.0]);
        assert_eq!(g.grad_zero_point, [-1.0]);
    }

    #[test]
    fn lsq_errors_and_init() {
        let range = QType::I4.full_range();
        let mut y = [0f32; 2];
        assert!(matches!(lsq_forward(&[1.0, 2.0], 0.0, range, &mut y), Err(QuantError::InvalidScale { .. })));
        assert!(matches!(lsq_forward(&[1.0, 2.0], 1.0, range, &mut y[..1]), Err(QuantError::LengthMismatch { .. })));
        assert!(matches!(lsq_forward(&[1.0, f32::NAN], 1.0, range, &mut y), Err(QuantError::NanInput { .. })));
        let p = LsqParams { scale: 1.0, offset: f32::INFINITY, range };
        assert!(matches!(lsq_plus_forward(&[1.0, 2.0], &p, &mut y), Err(QuantError::NonFinite { .. })));
        assert!(matches!(lsq_backward(&[1.0], 1.0, range, &[1.0], f64::NAN), Err(QuantError::NonFinite { .. })));
        assert_eq!(lsq_grad_scale(96, 7).unwrap(), 1.0 / (96.0f64 * 7.0).sqrt());
        assert!(lsq_grad_scale(0, 7).is_err());
        assert!(lsq_grad_scale(10, 0).is_err());
        // s0 = 2 mean|v| / sqrt(Q_P): mean |v| = 1.5, Q_P = 9 -> 1.
        assert_eq!(lsq_init_scale(&[1.0, -2.0], 9).unwrap(), 1.0);
        assert!(matches!(lsq_init_scale(&[0.0, 0.0], 9), Err(QuantError::InvalidScale { .. })));
        assert!(matches!(lsq_init_scale(&[], 9), Err(QuantError::EmptyInput { .. })));
        assert!(matches!(lsq_init_scale(&[1.0], -1), Err(QuantError::InvalidArgument { .. })));
        let p = lsq_plus_init_min_max(-1.0, 3.0, QType::U4.full_range()).unwrap();
        assert_eq!((p.scale, p.offset), (4.0 / 15.0, -1.0));
        assert!(lsq_plus_init_min_max(1.0, 1.0, range).is_err());
        assert!(lsq_plus_init_min_max(0.0, 1.0, r(3, 3)).is_err());
    }

    #[test]
    fn lsq_branches() {
        // s = 0.5, range [-4, 3]: v/s = 0.6 inside, -5 below (boundary -4 counts as below), 3.2 above.
        let x = [0.3f32, -2.5, -2.0, 1.6];
        let range = r(-4, 3);
        let mut y = [0f32; 4];
        lsq_forward(&x, 0.5, range, &mut y).unwrap();
        assert_eq!(y, [0.5, -2.0, -2.0, 1.5]);
        let g = lsq_backward(&x, 0.5, range, &[1.0, 1.0, 1.0, 1.0], 1.0).unwrap();
        assert_eq!(g.grad_x, [1.0, 0.0, 0.0, 0.0]);
        let want = (1.0 - 0.6f32 as f64) + -4.0 + -4.0 + 3.0;
        assert!((g.grad_scale - want).abs() < 1e-6, "{g:?}");
        assert_eq!(g.grad_offset, 3.0);
    }
}
