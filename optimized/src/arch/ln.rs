/*!
The float64 logarithm the SIMD [`kl_terms`](crate::kernels::Kernels::kl_terms) kernels share: a
table reduction and a polynomial, accurate to a relative 2^-48 or better, whose result is
rounded to float32 only where that provably gives the reference's `(a as f64).ln() as f32`
([`crate::kernels::LN_GUARD_ULPS`]). [`ln_poly`] is the same computation in scalar code (the
specification of the vector versions and what the accuracy tests measure).

Two designs, one computation: [`WIDE`] (128-entry table, degree 7) for AVX2 and NEON, which
look the table up with gathers or loads, and [`NARROW`] (16-entry table, degree 12) for
AVX-512, where each 16-entry table is two registers and a lookup is one `vpermt2pd`: on Zen 5
the two gathers per 8 lanes cost more than five extra FMAs.

# The reduction (as in musl's `log`, simplified)

For `x > 0` (a float32 widened to float64, so always a normal float64), with
`OFF = 0x3fe6_0000_0000_0000` (0.6875):

```text
tmp = bits(x) - OFF
k   = tmp >> 52                         (arithmetic: the exponent, shifted so that z lands below)
i   = (tmp >> (52 - B)) % 2^B           (the B bits after it: the sub-interval of z)
z   = from_bits(bits(x) - (tmp & 0xfff << 52))      z in [0.6875, 1.375),  x = 2^k z
r   = fma(z, INVC[i], -1)               |r| < 2^-B
ln x = k ln2 + LOGC[i] + log1p(r),      LOGC[i] = -ln(INVC[i])
log1p(r) ~ r + r^2 (-1/2 + r (1/3 + r (-1/4 + ... + r (-1)^(d+1) / d)))       (Taylor, degree d)
```

Sub-intervals are `2^-(B+1)` wide below 1 and `2^-B` above (the exponent changes at 1).

`INVC[i]` is the reciprocal of the sub-interval's centre, except for the two sub-intervals that
touch 1 (`[1 - 2^-(B+1), 1)` and `[1, 1 + 2^-B)`), where it is exactly 1 and `LOGC` exactly 0: near
`x = 1` the result is `log1p(z - 1)` with `z - 1` exact, so the relative error stays small where
`ln x` goes to 0 (and `ln 1 = +0` exactly, as the C library gives).

# Error

Truncating the series after `r^d` costs at most `|r|^d / (d + 1)` relative: below `2^-52` for
[`WIDE`] (`B = 7, d = 7`) and `2^-51` for [`NARROW`] (`B = 4, d = 12`). Rounding: `r` is
one rounding (FMA), the polynomial's rounding is damped by `r^2`, and `fma(k, ln2, LOGC[i])` plus
the final sum add a few float64 roundings relative to terms that never exceed three times the
result (`|k ln2 + LOGC| >= 0.31 |k|` for `k != 0`, `|LOGC[i]| >= 2^-8 > |log1p(r)|` elsewhere).
The total stays below 2^-49 relative; the tests measure it against the C library on every
exponent and sub-interval of both designs, and [`crate::kernels::LN_GUARD_ULPS`] only assumes
2^-46.
*/

use std::sync::OnceLock;

/// `OFF` of the reduction (0.6875).
pub const OFF: u64 = 0x3fe6_0000_0000_0000;
/// ln 2 rounded to float64.
pub const LN2: f64 = std::f64::consts::LN_2;

/// One table size and polynomial degree.
#[derive(Debug)]
pub struct Design {
    /// `B`: the table has `2^B` entries.
    pub bits: u32,
    /// Taylor coefficients `C2 ..= Cd` of `log1p(r) = r + r^2 (C2 + r (C3 + ...))`.
    pub coeffs: &'static [f64],
}

/// 128 entries, degree 7 (AVX2, NEON).
pub const WIDE: Design = Design { bits: 7, coeffs: &[-0.5, 1.0 / 3.0, -0.25, 0.2, -1.0 / 6.0, 1.0 / 7.0] };

/// 16 entries, degree 12 (AVX-512: the tables fit two registers each).
pub const NARROW: Design = Design {
    bits: 4,
    coeffs: &[-0.5, 1.0 / 3.0, -0.25, 0.2, -1.0 / 6.0, 1.0 / 7.0, -0.125, 1.0 / 9.0, -0.1, 1.0 / 11.0, -1.0 / 12.0],
};

/// `INVC[i]` and `LOGC[i]` (module docs), as two arrays (for gathers or permutes).
#[derive(Debug)]
pub struct Table {
    pub invc: Vec<f64>,
    pub logc: Vec<f64>,
}

fn build(d: &Design) -> Table {
    let n = 1u64 << d.bits;
    let mut t = Table { invc: Vec::with_capacity(n as usize), logc: Vec::with_capacity(n as usize) };
    for i in 0..n {
        let lo = f64::from_bits(OFF + (i << (52 - d.bits)));
        let width = if lo < 1.0 { 2f64.powi(-(d.bits as i32) - 1) } else { 2f64.powi(-(d.bits as i32)) };
        let centre = lo + width / 2.0;
        let touches_one = lo == 1.0 || lo + width == 1.0;
        let invc = if touches_one { 1.0 } else { 1.0 / centre };
        t.invc.push(invc);
        t.logc.push(if touches_one { 0.0 } else { -invc.ln() });
    }
    t
}

/// The table of `d` (built once: `LOGC = -ln(INVC)` with the C library's `ln`).
pub fn table(d: &Design) -> &'static Table {
    static W: OnceLock<Table> = OnceLock::new();
    static N: OnceLock<Table> = OnceLock::new();
    if d.bits == WIDE.bits {
        W.get_or_init(|| build(&WIDE))
    } else {
        N.get_or_init(|| build(&NARROW))
    }
}

/// The reduction and polynomial of the module docs in scalar code, for `x` a positive finite
/// float32 widened to float64.
pub fn ln_poly(x: f64, d: &Design) -> f64 {
    let t = table(d);
    let u = x.to_bits();
    let tmp = u.wrapping_sub(OFF);
    let i = ((tmp >> (52 - d.bits)) % (1 << d.bits)) as usize;
    let k = (tmp as i64 >> 52) as f64;
    let z = f64::from_bits(u.wrapping_sub(tmp & (0xfff << 52)));
    let r = z.mul_add(t.invc[i], -1.0);
    let hi = k.mul_add(LN2, t.logc[i]);
    let (last, rest) = d.coeffs.split_last().unwrap_or((&0.0, &[]));
    let mut p = *last;
    for &c in rest.iter().rev() {
        p = p.mul_add(r, c);
    }
    hi + (r * r).mul_add(p, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{ln_f32, ln_rounding_is_safe};

    fn rel_err(x: f64, d: &Design) -> f64 {
        let want = x.ln();
        let got = ln_poly(x, d);
        if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        }
    }

    /// Every exponent a float32 has, every sub-interval, the ends of each and points inside:
    /// the relative error stays below 2^-48 (the guard assumes 2^-46).
    #[test]
    fn relative_error_is_below_2_pow_minus_48() {
        for d in [&WIDE, &NARROW] {
            let mut worst = 0f64;
            let mut bits = 1u32; // the smallest subnormal float32
            while bits < 0x7f80_0000 {
                worst = worst.max(rel_err(f32::from_bits(bits) as f64, d));
                bits += 0x1_0001; // every exponent and sub-interval, many mantissas
            }
            for e in -149i32..=127 {
                for i in 0..1u64 << d.bits {
                    let z = f64::from_bits(OFF + (i << (52 - d.bits)));
                    let w = if z < 1.0 { 2f64.powi(-(d.bits as i32) - 1) } else { 2f64.powi(-(d.bits as i32)) };
                    for f in [0.0, 1e-12, 0.3, 0.5, 0.77, 0.999_999] {
                        let x = ((z + f * w) * 2f64.powi(e)) as f32;
                        if x > 0.0 && x.is_finite() {
                            worst = worst.max(rel_err(x as f64, d));
                        }
                    }
                }
            }
            assert!(worst < 2f64.powi(-48), "{} bits: worst relative error {worst:e}", d.bits);
            assert_eq!(ln_poly(1.0, d).to_bits(), 0.0f64.to_bits());
        }
    }

    /// Where the guard says so, the polynomial rounds to the reference's float32.
    #[test]
    fn guarded_rounding_matches_the_reference() {
        let mut fallbacks = 0;
        let mut bits = 1u32;
        let mut n = 0;
        while bits < 0x7f80_0000 {
            let a = f32::from_bits(bits);
            let y = ln_poly(a as f64, if bits % 2 == 0 { &WIDE } else { &NARROW });
            if ln_rounding_is_safe(y.to_bits()) {
                assert_eq!((y as f32).to_bits(), ln_f32(a).to_bits(), "a = {a:e}");
            } else {
                fallbacks += 1;
            }
            n += 1;
            bits += if cfg!(target_arch = "aarch64") { 0x1_0007 } else { 0x7f };
        }
        assert!(fallbacks * 1000 < n, "{fallbacks} of {n}");
    }
}
