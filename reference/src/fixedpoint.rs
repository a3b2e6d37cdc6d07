//! Fixed-point primitives, gemmlowp style: the integer arithmetic behind every integer-only
//! requantization and every fixed-point activation.
//!
//! A fixed-point number here is an `i32` *raw* value with an implied number of integer bits
//! `I` (`0 <= I <= 31`): it stands for `raw / 2^(31 - I)`. gemmlowp's `FixedPoint<int32_t, I>`
//! carries `I` in its type; these functions take raw values and name `I` in their arguments or
//! their docs. Each primitive is tiny and documents its exact rounding; the composite functions
//! (exp, logistic, tanh, `1/(1+x)`) are written once, from those primitives, and reused by name
//! by the TFLite profile's logistic, tanh and softmax.
//!
//! | primitive | computes | rounding | saturation |
//! |---|---|---|---|
//! | [`saturating_rounding_doubling_high_mul`] (SRDHM, ARM `SQRDMULH`) | `a * b / 2^31` | nearest, ties toward +infinity | only `MIN * MIN -> MAX` |
//! | [`rounding_divide_by_pot`] (RDBPOT) | `x / 2^e` | nearest, ties away from zero | none (cannot overflow) |
//! | [`saturating_left_shift`] | `x * 2^e` | exact | to `[MIN, MAX]` |
//! | [`saturating_rounding_multiply_by_pot`] | `x * 2^e`, `e` of either sign | RDBPOT for `e < 0` | to `[MIN, MAX]` for `e > 0` |
//! | [`rounding_half_sum`] | `(a + b) / 2` | nearest, ties away from zero | none |
//!
//! The two roundings are not the same: SRDHM computes the product in 64 bits, adds `2^30` (or
//! `1 - 2^30` when the product is negative) and *truncates* the division by `2^31` toward zero,
//! which is rounding to nearest with ties toward +infinity (`-0.5 -> 0`, `-1.5 -> -1`, `0.5 ->
//! 1`), exactly ARM's `SQRDMULH`. RDBPOT rounds ties away from zero (`-0.5 -> -1`). Chained (gemmlowp's requantization: SRDHM, then RDBPOT) they round
//! twice; see [`crate::requantize`] for how often that differs from one rounding.
//!
//! Composite functions follow gemmlowp's `fixedpoint.h` bit for bit: the same polynomial, the
//! same constants, the same order of operations, the same wrapping additions (gemmlowp's `+` and
//! `-` on `FixedPoint<int32_t>` are plain two's-complement additions; they never overflow on the
//! inputs these functions are defined for).

/// The raw value of `2^exponent` in a fixed-point type with `integer_bits` integer bits
/// (gemmlowp's `ConstantPOT`). Requires `-(31 - integer_bits) <= exponent < integer_bits`.
pub const fn constant_pot(integer_bits: u32, exponent: i32) -> i32 {
    1i32 << ((31 - integer_bits as i32) + exponent)
}

/// The raw value of 1.0 with `integer_bits` integer bits: `2^(31 - I)`, or `i32::MAX` (the
/// largest value below 1) when `I = 0` (gemmlowp's `One()`).
pub const fn one(integer_bits: u32) -> i32 {
    if integer_bits == 0 {
        i32::MAX
    } else {
        1i32 << (31 - integer_bits)
    }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` (ARM `SQRDMULH`): `a * b / 2^31` rounded to
/// nearest, ties toward +infinity; the one overflowing case, `i32::MIN * i32::MIN`, saturates to
/// `i32::MAX`.
///
/// In fixed point: multiplying a number with `I` integer bits by one with `J` gives one with
/// `I + J` integer bits, which is how gemmlowp's `FixedPoint::operator*` uses it.
///
/// Exact formula: `p = a * b` in 64 bits; `nudge = 2^30` if `p >= 0`, else `1 - 2^30`; the result
/// is `(p + nudge) / 2^31` with C's truncating division.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let p = a as i64 * b as i64;
    let nudge: i64 = if p >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |p| <= 2^62 - 2^31 here, so p + nudge cannot overflow, and the quotient fits i32.
    ((p + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
///
/// Exact formula: `mask = 2^e - 1`, `remainder = x & mask`, `threshold = (mask >> 1) + (x < 0)`,
/// result `(x >> e) + (remainder > threshold)` with an arithmetic shift. `exponent = 0` returns
/// `x`. gemmlowp defines it for `0 <= e <= 31`; here any `e` up to 63 is accepted and still means
/// the correctly rounded quotient (it is computed in 64 bits), and larger `e` is treated as 63
/// (every `i32` divided by `2^63` rounds to 0).
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let e = exponent.min(63);
    let x = x as i64;
    let mask = ((1u64 << e) - 1) as i64;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((x >> e) + i64::from(remainder > threshold)) as i32
}

/// `x * 2^shift`, saturated to `[i32::MIN, i32::MAX]` (exact when it fits). `shift` above 31
/// saturates every non-zero `x`.
pub fn saturating_left_shift(x: i32, shift: u32) -> i32 {
    if x == 0 {
        return 0;
    }
    let s = shift.min(32);
    let wide = (x as i64) << s;
    wide.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT<exponent>`: for `exponent > 0` the saturating left
/// shift ([`saturating_left_shift`]), for `exponent < 0` [`rounding_divide_by_pot`], for 0 the
/// identity. This is how gemmlowp's `Rescale` changes a value's integer bits.
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    match exponent {
        e if e > 0 => saturating_left_shift(x, e as u32),
        e if e < 0 => rounding_divide_by_pot(x, e.unsigned_abs()),
        _ => x,
    }
}

/// gemmlowp's `Rescale<dst>` of a value with `src` integer bits to `dst` integer bits:
/// [`saturating_rounding_multiply_by_pot`] by `src - dst`.
pub fn rescale(x: i32, src_integer_bits: u32, dst_integer_bits: u32) -> i32 {
    saturating_rounding_multiply_by_pot(x, src_integer_bits as i32 - dst_integer_bits as i32)
}

/// gemmlowp's `RoundingHalfSum`: `(a + b) / 2` rounded to nearest, ties away from zero
/// (`(sum + sign(sum)) / 2` in 64 bits with C's truncating division; `sign(0) = 1`).
pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// The 16-bit SRDHM (gemmlowp's `int16_t` overload, ARM `SQRDMULH` on halfwords):
/// `a * b / 2^15`, nearest with ties toward +infinity; `MIN * MIN` saturates to `i16::MAX`.
pub fn saturating_rounding_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let p = a as i32 * b as i32;
    let nudge = if p >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((p + nudge) / (1 << 15)) as i16
}

/// TFLite's `SaturatingDoublingHighMul` on `int16` (ARM `SQDMULH`): `a * b / 2^15` truncated
/// toward zero (no rounding nudge); `MIN * MIN` saturates to `i16::MAX`.
pub fn saturating_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// [`rounding_divide_by_pot`] on `int16` values (the result always fits `i16`).
pub fn rounding_divide_by_pot_i16(x: i16, exponent: u32) -> i16 {
    rounding_divide_by_pot(x as i32, exponent) as i16
}

/// `x * 2^shift` on `int16`, computed in 32 bits and saturated to `[i16::MIN, i16::MAX]`
/// (TFLite's `SaturatingLeftShift`, used by its int8 hard-swish). `shift` is capped at 16.
pub fn saturating_left_shift_i16(x: i16, shift: u32) -> i16 {
    ((x as i32) << shift.min(16)).clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// Fixed-point multiplication (gemmlowp's `FixedPoint::operator*`): SRDHM of the raw values.
/// The integer bits add up: `I(a) + I(b)`.
fn mul(a: i32, b: i32) -> i32 {
    saturating_rounding_doubling_high_mul(a, b)
}

/// `exp(a)` for `a` in `[-1/4, 0)`, `a` and the result with 0 integer bits (Q0.31). gemmlowp's
/// `exp_on_interval_between_negative_one_quarter_and_0_excl`: the degree-4 Taylor polynomial
/// around `-1/8`, `exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24)` with `x = a + 1/8`, each power by
/// SRDHM and the divisions by [`saturating_rounding_multiply_by_pot`] and the constant
/// `1/3 = 715827883 / 2^31`; `exp(-1/8) = 1895147668 / 2^31`.
pub fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668;
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(constant_pot(0, -3));
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let poly = saturating_rounding_multiply_by_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    EXP_MINUS_ONE_EIGHTH.wrapping_add(mul(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(poly)))
}

/// `exp(a)` for `a <= 0` with `integer_bits` integer bits (1..=31); the result has 0 integer
/// bits. gemmlowp's `exp_on_negative_values`: `a` is split into `a mod 1/4 - 1/4` (in
/// `[-1/4, 0)`), evaluated by
/// [`exp_on_interval_between_negative_one_quarter_and_0_excl`], then multiplied by
/// `exp(-2^j)` for each bit `2^j` (`j = -2 .. I-1`, at most up to `2^4`) set in the remainder,
/// each constant a Q0.31 raw value; inputs below `-32` give 0 when `I > 5`, and `a = 0` gives
/// [`one`]`(0)`.
pub fn exp_on_negative_values(a: i32, integer_bits: u32) -> i32 {
    let fractional_bits = 31 - integer_bits as i32;
    let one_quarter = constant_pot(integer_bits, -2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^j) in Q0.31, for j = -2, -1, 0, 1, 2, 3, 4.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if (integer_bits as i32) > exponent {
            let bit = fractional_bits + exponent;
            if remainder & (1i32 << bit) != 0 {
                result = mul(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        // -32 with I integer bits is the raw value -32 * 2^(31 - I) = -2^(36 - I).
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = one(0);
    }
    result
}

/// The Newton-Raphson step shared by [`one_over_one_plus_x_for_x_in_0_1`] and
/// [`one_minus_x_over_one_plus_x_for_x_in_0_1`]: returns `x ~ 1 / half_denominator` with 2
/// integer bits, starting from `48/17 - 32/17 * d` and iterating `x += x * (1 - d * x)` three
/// times (gemmlowp's constants `48/17 = 1515870810 / 2^29`, `-32/17 = -1010580540 / 2^29`).
fn newton_reciprocal_of_half_denominator(half_denominator: i32) -> i32 {
    const C48_OVER_17: i32 = 1_515_870_810;
    const CNEG32_OVER_17: i32 = -1_010_580_540;
    let mut x = C48_OVER_17.wrapping_add(mul(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = mul(half_denominator, x);
        let one_minus = one(2).wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(rescale(mul(x, one_minus), 4, 2));
    }
    x
}

/// `1 / (1 + a)` for `a` in `[0, 1]`, both with 0 integer bits (gemmlowp's
/// `one_over_one_plus_x_for_x_in_0_1`): `d = (1 + a) / 2` by [`rounding_half_sum`], three
/// Newton-Raphson steps in Q2.29, then halved back to Q0.31 with saturation.
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, one(0));
    let x = newton_reciprocal_of_half_denominator(half_denominator);
    // ExactMulByPot<-1> keeps the raw value and drops an integer bit (Q2.29 -> Q1.30); Rescale<0>
    // then doubles it with saturation.
    rescale(x, 1, 0)
}

/// `(1 - a) / (1 + a)` for `a` in `[0, 1]`, both with 0 integer bits (gemmlowp's
/// `one_minus_x_over_one_plus_x_for_x_in_0_1`): the same Newton-Raphson reciprocal `x`, then
/// `x - 1` rescaled from Q2.29 to Q0.31 with saturation.
pub fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, one(0));
    let x = newton_reciprocal_of_half_denominator(half_denominator);
    rescale(x.wrapping_sub(one(2)), 2, 0)
}

/// The logistic function `1 / (1 + exp(-a))` of `a` with `integer_bits` integer bits (1..=31);
/// the result has 0 integer bits (gemmlowp's `logistic`). For `a > 0`:
/// `1/(1 + exp(-a))` from [`exp_on_negative_values`] and [`one_over_one_plus_x_for_x_in_0_1`];
/// for `a < 0`: `1 - logistic(-a)` (with 1 as `i32::MAX`); `a = 0` gives exactly `2^30`.
pub fn logistic(a: i32, integer_bits: u32) -> i32 {
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(abs.wrapping_neg(), integer_bits));
    if a == 0 {
        1 << 30
    } else if a > 0 {
        positive
    } else {
        one(0).wrapping_sub(positive)
    }
}

/// `tanh(a)` of `a` with `integer_bits` integer bits (1..=30); the result has 0 integer bits
/// (gemmlowp's `tanh`). With `n = -|a|`: `t = (1 - exp(2n)) / (1 + exp(2n))` from
/// [`exp_on_negative_values`] of `2n` (the same raw value read with one more integer bit) and
/// [`one_minus_x_over_one_plus_x_for_x_in_0_1`], which is `tanh(|a|)`; the result is `-t` for
/// `a < 0`, `t` for `a > 0` and 0 for `a = 0`.
pub fn tanh(a: i32, integer_bits: u32) -> i32 {
    let n = if a < 0 { a } else { a.wrapping_neg() };
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1));
    if a == 0 {
        0
    } else if a < 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

/// TFLite's `GetReciprocal`: for a positive sum `x` with `x_integer_bits` integer bits, returns
/// `(r, num_bits_over_unit)` such that `1/x ~ r / 2^31 / 2^num_bits_over_unit`: `x` is shifted
/// left by its leading zeros into `[1, 2)`, one is subtracted, and
/// [`one_over_one_plus_x_for_x_in_0_1`] computes the reciprocal of the normalized value.
pub fn get_reciprocal(x: i32, x_integer_bits: u32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_bits as i32 - headroom_plus_one as i32;
    let shifted = ((x as u32).wrapping_shl(headroom_plus_one)).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted), num_bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw Q(I) value of a real number, for tests.
    fn raw(v: f64, integer_bits: u32) -> i32 {
        (v * (1u64 << (31 - integer_bits)) as f64).round() as i32
    }

    fn real(raw: i32, integer_bits: u32) -> f64 {
        raw as f64 / (1u64 << (31 - integer_bits)) as f64
    }

    #[test]
    fn srdhm_edges() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX), -i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
        // 1 * 2^30 / 2^31 = 0.5: ties toward +infinity.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 29), -1); // -1.25
        assert_eq!(saturating_rounding_doubling_high_mul(0, i32::MIN), 0);
    }

    #[test]
    fn rdbpot_edges() {
        for e in 0..=31u32 {
            assert_eq!(rounding_divide_by_pot(0, e), 0);
        }
        assert_eq!(rounding_divide_by_pot(5, 0), 5);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 0), i32::MIN);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 32), -1); // -0.5: away from zero
        assert_eq!(rounding_divide_by_pot(i32::MIN, 33), 0);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 200), 0);
        // Ties away from zero.
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(10, 2), 3); // 2.5
        assert_eq!(rounding_divide_by_pot(-10, 2), -3);
        assert_eq!(rounding_divide_by_pot(5, 2), 1); // 1.25
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
    }

    #[test]
    fn saturating_shifts() {
        assert_eq!(saturating_left_shift(1, 30), 1 << 30);
        assert_eq!(saturating_left_shift(1, 31), i32::MAX);
        assert_eq!(saturating_left_shift(-1, 31), i32::MIN);
        assert_eq!(saturating_left_shift(-2, 31), i32::MIN);
        assert_eq!(saturating_left_shift(3, 0), 3);
        assert_eq!(saturating_left_shift(0, 100), 0);
        assert_eq!(saturating_left_shift(7, 100), i32::MAX);
        assert_eq!(saturating_rounding_multiply_by_pot(-5, -1), -3);
        assert_eq!(saturating_left_shift_i16(300, 7), i16::MAX);
        assert_eq!(saturating_left_shift_i16(-300, 7), i16::MIN);
        assert_eq!(saturating_doubling_high_mul_i16(i16::MIN, i16::MIN), i16::MAX);
        assert_eq!(saturating_doubling_high_mul_i16(-3, 1 << 14), -1); // -1.5 truncates
        assert_eq!(saturating_rounding_doubling_high_mul_i16(-3, 1 << 14), -1);
        assert_eq!(saturating_rounding_doubling_high_mul_i16(3, 1 << 14), 2);
    }

    #[test]
    fn exp_matches_real_exp() {
        for integer_bits in [4u32, 5, 6] {
            let mut worst = 0.0f64;
            for i in 0..4000 {
                let v = -(i as f64) * 0.004;
                let r = exp_on_negative_values(raw(v, integer_bits), integer_bits);
                worst = worst.max((real(r, 0) - v.exp()).abs());
            }
            assert!(worst < 3e-7, "I = {integer_bits}: worst {worst}");
        }
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        assert_eq!(exp_on_negative_values(i32::MIN, 6), 0);
    }

    #[test]
    fn logistic_and_tanh_match_real_functions() {
        let mut worst: f64 = 0.0;
        for i in -3000..3000 {
            let v = i as f64 * 0.005;
            let l = real(logistic(raw(v, 4), 4), 0);
            let t = real(tanh(raw(v, 4), 4), 0);
            worst = worst.max((l - 1.0 / (1.0 + (-v).exp())).abs()).max((t - v.tanh()).abs());
        }
        assert!(worst < 1e-6, "worst {worst}");
        assert_eq!(logistic(0, 4), 1 << 30);
        assert_eq!(tanh(0, 4), 0);
    }

    #[test]
    fn reciprocal() {
        for &v in &[1.0f64, 1.5, 2.0, 3.25, 17.0, 100.5, 2047.0] {
            let (r, bits) = get_reciprocal(raw(v, 12), 12);
            let got = real(r, 0) / 2f64.powi(bits);
            assert!((got - 1.0 / v).abs() < 1e-8 * 2f64.powi(-bits).max(1.0) + 1e-9, "{v}: {got}");
        }
        for i in 0..=100 {
            let a = raw(i as f64 / 100.0, 0);
            let got = real(one_over_one_plus_x_for_x_in_0_1(a), 0);
            assert!((got - 1.0 / (1.0 + real(a, 0))).abs() < 1e-8);
        }
    }
}
