/*!
The float64 logarithm the SIMD [`kl_terms`](crate::kernels::Kernels::kl_terms) kernels share: a
table reduction and a degree-7 polynomial, accurate to a relative 2^-49 or so, whose result is
rounded to float32 only where that provably gives the reference's `(a as f64).ln() as f32`
([`crate::kernels::LN_GUARD_ULPS`]). [`ln_poly`] is the same computation in scalar code (the
specification of the vector versions and what the accuracy tests measure).

# The reduction (as in musl's `log`, simplified)

For `x > 0` (a float32 widened to float64, so always a normal float64), with
`OFF = 0x3fe6_0000_0000_0000` (0.6875):

```text
tmp = bits(x) - OFF
k   = tmp >> 52                         (arithmetic: the exponent, shifted so that z lands below)
i   = (tmp >> 45) % 128                 (the 7 bits after it: the sub-interval of z)
z   = from_bits(bits(x) - (tmp & 0xfff << 52))      z in [0.6875, 1.375),  x = 2^k z
r   = fma(z, INVC[i], -1)               |r| < 2^-7
ln x = k ln2 + LOGC[i] + log1p(r),      LOGC[i] = -ln(INVC[i])
log1p(r) ~ r + r^2 (-1/2 + r (1/3 + r (-1/4 + r (1/5 + r (-1/6 + r / 7)))))
```

`INVC[i]` is the reciprocal of the sub-interval's centre, except for the two sub-intervals that
touch 1 (`[1 - 2^-8, 1)` and `[1, 1 + 2^-7)`), where it is exactly 1 and `LOGC` exactly 0: near
`x = 1` the result is `log1p(z - 1)` with `z - 1` exact, so the relative error stays small where
`ln x` goes to 0 (and `ln 1 = +0` exactly, as the C library gives).

# Error

Truncating the series after `r^7` costs at most `|r|^7 / 8 < 2^-52` relative. Rounding: `r` is
one rounding (FMA), the polynomial's rounding is damped by `r^2`, and `fma(k, ln2, LOGC[i])` plus
the final sum add a few float64 roundings relative to terms that never exceed three times the
result (`|k ln2 + LOGC| >= 0.31 |k|` for `k != 0`, `|LOGC[i]| >= 2^-8 > |log1p(r)|` elsewhere).
The total stays below 2^-49 relative; the tests measure it against the C library on every
exponent and sub-interval, and [`crate::kernels::LN_GUARD_ULPS`] only assumes 2^-46.
*/

use std::sync::OnceLock;

/// `OFF` of the reduction (0.6875).
pub const OFF: u64 = 0x3fe6_0000_0000_0000;
/// Table bits.
pub const TABLE_BITS: u32 = 7;
/// ln 2 rounded to float64.
pub const LN2: f64 = std::f64::consts::LN_2;
/// Taylor coefficients of `log1p(r) = r + r^2 * (C2 + r * (C3 + ...))`.
pub const C: [f64; 6] = [-0.5, 1.0 / 3.0, -0.25, 0.2, -1.0 / 6.0, 1.0 / 7.0];

/// `INVC[i]` and `LOGC[i]` (module docs), as two arrays for gathers.
#[derive(Debug)]
pub struct Table {
    pub invc: [f64; 128],
    pub logc: [f64; 128],
}

/// The table (built once: `LOGC = -ln(INVC)` with the C library's `ln`).
pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Table { invc: [0.0; 128], logc: [0.0; 128] };
        for i in 0..128u64 {
            let lo = f64::from_bits(OFF + (i << 45));
            // Sub-intervals below 1 are 2^-8 wide, those above 2^-7 (the exponent changes at 1).
            let width = if lo < 1.0 { 1.0 / 256.0 } else { 1.0 / 128.0 };
            let centre = lo + width / 2.0;
            let touches_one = lo == 1.0 || lo + width == 1.0;
            let invc = if touches_one { 1.0 } else { 1.0 / centre };
            t.invc[i as usize] = invc;
            t.logc[i as usize] = if touches_one { 0.0 } else { -invc.ln() };
        }
        t
    })
}

/// The reduction and polynomial of the module docs, in scalar code, for `x` a positive finite
/// float32 widened to float64.
pub fn ln_poly(x: f64) -> f64 {
    let t = table();
    let u = x.to_bits();
    let tmp = u.wrapping_sub(OFF);
    let i = ((tmp >> (52 - TABLE_BITS)) % 128) as usize;
    let k = (tmp as i64 >> 52) as f64;
    let z = f64::from_bits(u.wrapping_sub(tmp & (0xfff << 52)));
    let r = z.mul_add(t.invc[i], -1.0);
    let hi = k.mul_add(LN2, t.logc[i]);
    let mut p = C[5];
    for &c in C[..5].iter().rev() {
        p = p.mul_add(r, c);
    }
    hi + (r * r).mul_add(p, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{ln_f32, ln_rounding_is_safe};

    fn rel_err(x: f64) -> f64 {
        let want = x.ln();
        let got = ln_poly(x);
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
        let mut worst = 0f64;
        let mut bits = 1u32; // the smallest subnormal float32
        while bits < 0x7f80_0000 {
            worst = worst.max(rel_err(f32::from_bits(bits) as f64));
            bits += 0x1_0001; // every exponent and sub-interval, many mantissas
        }
        for e in -149i32..=127 {
            for i in 0..128u64 {
                let z = f64::from_bits(OFF + (i << 45));
                for d in [0.0, 1e-12, 0.3, 0.5, 0.77, 0.999_999] {
                    let w = if z < 1.0 { 1.0 / 256.0 } else { 1.0 / 128.0 };
                    let x = ((z + d * w) * 2f64.powi(e)) as f32;
                    if x > 0.0 && x.is_finite() {
                        worst = worst.max(rel_err(x as f64));
                    }
                }
            }
        }
        assert!(worst < 2f64.powi(-48), "worst relative error {worst:e}");
        assert_eq!(ln_poly(1.0).to_bits(), 0.0f64.to_bits());
    }

    /// Where the guard says so, the polynomial rounds to the reference's float32.
    #[test]
    fn guarded_rounding_matches_the_reference() {
        let mut fallbacks = 0;
        let mut bits = 1u32;
        let mut n = 0;
        while bits < 0x7f80_0000 {
            let a = f32::from_bits(bits);
            let y = ln_poly(a as f64);
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
