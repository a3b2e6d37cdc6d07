//! Softmax on 8-bit codes: TFLite's integer-only kernel (seed 000: the non-linear ops have "no
//! unified algorithm"; this is TFLite's).
//!
//! TFLite 2.21's reference int8/uint8 `SOFTMAX` (`reference_ops::Softmax` with the parameters of
//! `SoftmaxPrepare` for `kReference`), along the last axis:
//!
//! ```text
//! m, e      = QuantizeMultiplierGreaterThanOne(min(beta s_x 2^(31-5), 2^31 - 1))   (Q31, left shift)
//! diff_min  = -floor((2^5 - 1) 2^(31-5) / 2^e)                 (CalculateInputRadius)
//! per row:  d_c = q_c - max_c q_c
//!           where d_c >= diff_min:  r_c = SRDHM(d_c 2^e, m)    (Q5.26: beta (x_c - max) in real)
//!                                   E_c = exp_on_negative_values(r_c)          (Q0.31)
//!           S = sum_c RoundingDivideByPOT(E_c, 12)              (Q12.19 accumulator)
//!           (R, k) = GetReciprocal(S, 12)                       (1/S as Q0.31 and a shift)
//!           y_c = RDBPOT(SRDHM(R, E_c), k + 31 - 8) + C::MIN    (where d_c >= diff_min)
//!           y_c = C::MIN                                        (elsewhere)
//!           saturated to C
//! ```
//!
//! The output scale is `1/256` and its zero point `C::MIN` (TFLite requires them: the code then
//! counts 256ths of probability). Every step is a gemmlowp fixed-point primitive of
//! [`crate::fixedpoint`]; nothing is floating point except preparing `m, e` and `diff_min`.

use crate::affine::Affine;
use crate::error::{QuantError, Result};
use crate::fixedpoint::{
    exp_on_negative_values, get_reciprocal, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
use crate::requantize::QuantizedMultiplier;
use crate::scheme::Code;

/// Integer bits of the scaled differences (`kScaledDiffIntegerBits`).
const DIFF_INTEGER_BITS: u32 = 5;
/// Integer bits of the sum of exponentials (`kAccumulationIntegerBits`).
const ACCUM_INTEGER_BITS: u32 = 12;

/// `(multiplier, left_shift, diff_min)` of `SoftmaxPrepare` for `beta` and the input scale.
pub fn tflite_softmax_params(beta: f32, x_scale: f32) -> Result<(QuantizedMultiplier, i32)> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(QuantError::OutOfDomain { what: "beta", value: beta as f64, domain: "finite and > 0" });
    }
    let real =
        (beta as f64 * x_scale as f64 * (1u64 << (31 - DIFF_INTEGER_BITS)) as f64).min((1u64 << 31) as f64 - 1.0);
    let m = QuantizedMultiplier::greater_than_one(real, "softmax input multiplier (beta * input scale * 2^26)")?;
    if m.shift < 0 {
        return Err(QuantError::InvalidArgument {
            what: "softmax input multiplier",
            detail: format!("negative shift {}", m.shift),
        });
    }
    let radius =
        ((1u64 << DIFF_INTEGER_BITS) - 1) as f64 * (1u64 << (31 - DIFF_INTEGER_BITS)) as f64 / (1u64 << m.shift) as f64;
    Ok((m, -(radius.floor() as i32)))
}

/// What [`tflite_softmax`] checks and computes once per call, shared with the optimized twin
/// (`quantproof_optimized`'s `Engine::tflite_softmax`), which then differs only in how it finds
/// each `E_c` (a 256-entry table of [`SoftmaxPlan::exp`], since `d_c` takes at most 256 values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxPlan {
    /// The length of the last axis (the rows' length).
    pub depth: usize,
    /// `(m with its left shift e, diff_min)` of [`tflite_softmax_params`]; `None` for an empty
    /// last axis (nothing to compute: `beta` is then not checked, as TFLite never reads it).
    pub params: Option<(QuantizedMultiplier, i32)>,
    /// Bits of the code type (8).
    pub bits: i32,
}

impl SoftmaxPlan {
    /// The checks of [`tflite_softmax`], in its order: the qparams, the axis (the last), the
    /// output qparams (`1/256`, `C::MIN`), the data length, then `beta` (unless the last axis is
    /// empty).
    pub fn new<C: Code>(
        x_len: usize,
        shape: &[usize],
        axis: impl Into<crate::scheme::Axis>,
        beta: f32,
        xq: Affine,
        yq: Affine,
    ) -> Result<SoftmaxPlan> {
        xq.check::<C>(0)?;
        yq.check::<C>(1)?;
        let rank = shape.len();
        let axis = axis.into().resolve(rank)?;
        if axis + 1 != rank {
            return Err(QuantError::Unsupported {
                what: format!("TFLite softmax along axis {axis} of {rank}: only the last"),
            });
        }
        if yq != Affine::new(1.0 / 256.0, C::MIN) {
            return Err(QuantError::InvalidArgument {
                what: "softmax output qparams",
                detail: format!("{yq:?}: TFLite's integer softmax writes scale 1/256 and zero point {}", C::MIN),
            });
        }
        crate::error::check_len("x", crate::affine::element_count(shape)?, x_len)?;
        let depth = shape[rank - 1];
        let params = if depth == 0 { None } else { Some(tflite_softmax_params(beta, xq.scale)?) };
        Ok(SoftmaxPlan { depth, params, bits: 8 * std::mem::size_of::<C>() as i32 })
    }

    /// `E = exp_on_negative_values(SRDHM(d 2^e, m))` (Q0.31) for a difference `d = q - max`
    /// at or above `diff_min`; `None` below it (the element then counts as 0 and writes
    /// `C::MIN`) and for an empty axis.
    pub fn exp(&self, d: i32) -> Option<i32> {
        let (m, diff_min) = self.params?;
        (d >= diff_min).then(|| {
            let r = saturating_rounding_doubling_high_mul(d.wrapping_mul(1 << m.shift), m.multiplier);
            exp_on_negative_values(r, DIFF_INTEGER_BITS)
        })
    }

    /// A row's reciprocal from the sum `S` of its `RoundingDivideByPOT(E_c, 12)` (the sum
    /// saturates at `i32::MAX`): `(R, shift)` with `shift = k + 31 - bits` clamped to `[0, 31]`.
    pub fn reciprocal(&self, sum: i32) -> (i32, u32) {
        let (recip, over) = get_reciprocal(sum, ACCUM_INTEGER_BITS);
        (recip, (over + 31 - self.bits).clamp(0, 31) as u32)
    }

    /// An element's code from its `E` and the row's [`SoftmaxPlan::reciprocal`]:
    /// `RDBPOT(SRDHM(R, E), shift) + C::MIN`, saturated to `C`.
    #[inline]
    pub fn code<C: Code>(e: i32, (recip, shift): (i32, u32)) -> C {
        let y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(recip, e), shift) + C::MIN;
        C::from_code(y.clamp(C::MIN, C::MAX))
    }
}

/// An element's share of the row sum: `RoundingDivideByPOT(E, 12)` (Q12.19).
#[inline]
pub fn sum_term(e: i32) -> i32 {
    rounding_divide_by_pot(e, ACCUM_INTEGER_BITS)
}

/// TFLite's integer softmax of codes `x` (shape `shape`) along the last axis (see the module
/// docs). `axis` must name the last dimension (TFLite has no other). Errors: those of
/// [`SoftmaxPlan::new`].
pub fn tflite_softmax<C: Code>(
    x: &[C],
    shape: &[usize],
    axis: impl Into<crate::scheme::Axis>,
    beta: f32,
    xq: Affine,
    yq: Affine,
) -> Result<Vec<C>> {
    let plan = SoftmaxPlan::new::<C>(x.len(), shape, axis, beta, xq, yq)?;
    if plan.depth == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(plan.depth) {
        let max = row.iter().map(|v| v.to_code()).max().unwrap_or(C::MIN);
        let mut sum = 0i32;
        for v in row {
            if let Some(e) = plan.exp(v.to_code() - max) {
                sum = sum.saturating_add(sum_term(e));
            }
        }
        let r = plan.reciprocal(sum);
        for v in row {
            out.push(match plan.exp(v.to_code() - max) {
                Some(e) => SoftmaxPlan::code::<C>(e, r),
                None => C::from_code(C::MIN),
            });
        }
    }
    Ok(out)
}
