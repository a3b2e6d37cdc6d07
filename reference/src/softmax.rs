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

/// TFLite's integer softmax of codes `x` (shape `shape`) along the last axis (see the module
/// docs). `axis` must name the last dimension (TFLite has no other).
pub fn tflite_softmax<C: Code>(
    x: &[C],
    shape: &[usize],
    axis: impl Into<crate::scheme::Axis>,
    beta: f32,
    xq: Affine,
    yq: Affine,
) -> Result<Vec<C>> {
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
    crate::error::check_len("x", crate::affine::element_count(shape)?, x.len())?;
    let depth = shape[rank - 1];
    if depth == 0 {
        return Ok(Vec::new());
    }
    let (m, diff_min) = tflite_softmax_params(beta, xq.scale)?;
    let rescaled = |d: i32| saturating_rounding_doubling_high_mul(d.wrapping_mul(1 << m.shift), m.multiplier);
    let bits = 8 * std::mem::size_of::<C>() as i32;
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(depth) {
        let max = row.iter().map(|v| v.to_code()).max().unwrap_or(C::MIN);
        let mut sum = 0i32;
        for v in row {
            let d = v.to_code() - max;
            if d >= diff_min {
                let e = exp_on_negative_values(rescaled(d), DIFF_INTEGER_BITS);
                sum = sum.saturating_add(rounding_divide_by_pot(e, ACCUM_INTEGER_BITS));
            }
        }
        let (recip, over) = get_reciprocal(sum, ACCUM_INTEGER_BITS);
        for v in row {
            let d = v.to_code() - max;
            let y = if d >= diff_min {
                let e = exp_on_negative_values(rescaled(d), DIFF_INTEGER_BITS);
                let shift = (over + 31 - bits).clamp(0, 31) as u32;
                rounding_divide_by_pot(saturating_rounding_doubling_high_mul(recip, e), shift) + C::MIN
            } else {
                C::MIN
            };
            out.push(C::from_code(y.clamp(C::MIN, C::MAX)));
        }
    }
    Ok(out)
}
