//! The fixed-point primitives and the requantization variants against independent exact
//! formulations (128-bit integer arithmetic with floor divisions), at gemmlowp's and XNNPACK's
//! edge values and on random samples; their algebraic laws by quickcheck.

use quantproof_reference::fixedpoint::*;
use quantproof_reference::requantize::*;
use quantproof_reference::rng::Rng;
use quantproof_reference::scheme::{CodeRange, QType};
use quickcheck::quickcheck;

/// `n / d` rounded to nearest, ties toward +infinity, `d > 0`.
fn div_half_up(n: i128, d: i128) -> i128 {
    (2 * n + d).div_euclid(2 * d)
}

/// `n / d` rounded to nearest, ties away from zero, `d > 0`.
fn div_half_away(n: i128, d: i128) -> i128 {
    if n >= 0 {
        div_half_up(n, d)
    } else {
        -div_half_up(-n, d)
    }
}

fn exact_srdhm(a: i32, b: i32) -> i32 {
    div_half_up(a as i128 * b as i128, 1 << 31).clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

fn exact_double_rounding(x: i32, m: QuantizedMultiplier) -> i32 {
    let left = m.shift.max(0);
    let right = (-m.shift).max(0);
    let hi = div_half_up((x as i128) << left, 1).clamp(i32::MIN as i128, i32::MAX as i128);
    let hi = div_half_up(hi * m.multiplier as i128, 1 << 31).clamp(i32::MIN as i128, i32::MAX as i128);
    div_half_away(hi, 1 << right) as i32
}

fn exact_single_rounding(x: i32, m: QuantizedMultiplier) -> i32 {
    div_half_up(x as i128 * m.multiplier as i128, 1i128 << (31 - m.shift)) as i32
}

/// gemmlowp's and XNNPACK's edge inputs: `+-2^i + {-2..2}`, `MIN`, `MIN + 1..`, `MAX - 2..MAX`.
fn edge_values() -> Vec<i32> {
    let mut v = vec![i32::MIN, i32::MIN + 1, i32::MIN + 2, i32::MAX - 2, i32::MAX - 1, i32::MAX, 0];
    for i in 0..31 {
        for d in -2i64..=2 {
            for sign in [-1i64, 1] {
                let x = sign * (1i64 << i) + d;
                if let Ok(x) = i32::try_from(x) {
                    v.push(x);
                }
            }
        }
    }
    v
}

#[test]
fn srdhm_and_rdbpot_equal_exact_formulas_on_edges() {
    let edges = edge_values();
    for &a in &edges {
        for &b in &edges {
            assert_eq!(saturating_rounding_doubling_high_mul(a, b), exact_srdhm(a, b), "srdhm({a}, {b})");
        }
        for e in 0..=31u32 {
            assert_eq!(rounding_divide_by_pot(a, e) as i128, div_half_away(a as i128, 1 << e), "rdbpot({a}, {e})");
        }
    }
}

#[test]
fn requantize_edges_every_shift() {
    let edges = edge_values();
    let multipliers = [1 << 30, (1 << 30) + 1, i32::MAX, 1_583_594_044, 1_431_655_765, 0];
    for shift in -31..=0 {
        for &multiplier in &multipliers {
            let m = QuantizedMultiplier { multiplier, shift };
            for &x in &edges {
                assert_eq!(
                    multiply_by_quantized_multiplier_double_rounding(x, m),
                    exact_double_rounding(x, m),
                    "double({x}, {m:?})"
                );
                assert_eq!(
                    multiply_by_quantized_multiplier_single_rounding(x, m),
                    exact_single_rounding(x, m),
                    "single({x}, {m:?})"
                );
            }
        }
    }
}

#[test]
fn exact_divisions_by_powers_of_two() {
    // XNNPACK's exact_divide_by_po2: scale 2^-s, inputs k * 2^s: every variant returns k + z.
    let range = QType::I8.full_range();
    for s in 1..=31u32 {
        let real = 2f64.powi(-(s as i32));
        for z in [-128, -1, 0, 5, 127] {
            for k in -300i64..=300 {
                let x = k << s;
                let Ok(x) = i32::try_from(x) else { continue };
                let want = (k + z as i64).clamp(-128, 127) as i32;
                for kind in RequantizeKind::ALL {
                    let Ok(r) = Requantizer::new(kind, real) else { continue };
                    assert_eq!(r.apply(x, z, range), want, "{kind:?} s={s} k={k} z={z}");
                }
            }
        }
    }
}

#[test]
fn exact_ties() {
    // M = 1/2^s: x = (2k + 1) * 2^(s-1) is an exact tie.
    for s in 1..=30u32 {
        let m = QuantizedMultiplier::from_real(2f64.powi(-(s as i32))).unwrap();
        for k in [-3i64, -2, -1, 0, 1, 2] {
            let Ok(x) = i32::try_from((2 * k + 1) << (s - 1)) else { continue };
            // With s = 1 the only rounding is SRDHM's (ties up); otherwise SRDHM is exact and
            // RDBPOT rounds the tie away from zero.
            let double = if s == 1 || k >= 0 { k + 1 } else { k };
            assert_eq!(multiply_by_quantized_multiplier_double_rounding(x, m) as i64, double, "double s={s} k={k}");
            assert_eq!(multiply_by_quantized_multiplier_single_rounding(x, m) as i64, k + 1, "single s={s} k={k}");
            let r = Requantizer::new(RequantizeKind::FloatTorch, 2f64.powi(-(s as i32))).unwrap();
            let even = if k % 2 == 0 { k } else { k + 1 };
            assert_eq!(r.apply(x, 0, CodeRange::new(-1000, 1000).unwrap()) as i64, even, "float s={s} k={k}");
        }
    }
}

#[test]
fn multiplier_at_two_to_the_31() {
    // A real multiplier whose Q31 rounding reaches 2^31 is stored as 2^30 with shift + 1.
    let real = 1.0 - 2f64.powi(-40);
    let m = QuantizedMultiplier::from_real(real).unwrap();
    assert_eq!(m, QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
    for &x in &edge_values() {
        if (x as i64).abs() < 1 << 30 {
            assert_eq!(multiply_by_quantized_multiplier_double_rounding(x, m), x);
        }
    }
}

#[test]
fn random_sample_against_exact() {
    let mut rng = Rng::new(7);
    for _ in 0..200_000 {
        let x = rng.next_u64() as i32;
        let multiplier = (1 << 30) + (rng.next_u64() % (1 << 30)) as i32;
        let shift = -((rng.next_u64() % 32) as i32);
        let m = QuantizedMultiplier { multiplier, shift };
        assert_eq!(multiply_by_quantized_multiplier_double_rounding(x, m), exact_double_rounding(x, m));
        assert_eq!(multiply_by_quantized_multiplier_single_rounding(x, m), exact_single_rounding(x, m));
    }
}

#[test]
fn float_variants_agree() {
    // Clamping to integral bounds before rounding commutes with rounding to nearest.
    let mut rng = Rng::new(11);
    let range = QType::U8.full_range();
    let mut edges = edge_values();
    edges.extend((0..100_000).map(|_| (rng.next_u64() as i32) >> (rng.next_u64() % 31)));
    for &scale in &[1e-6f32, 0.0123, 0.5, 0.999, 3.7] {
        let t = Requantizer::FloatTorch { multiplier: scale };
        let o = Requantizer::FloatOnnxRuntime { multiplier: scale };
        for &x in &edges {
            for z in [0, 77, 255] {
                assert_eq!(t.apply(x, z, range), o.apply(x, z, range), "{x} * {scale} + {z}");
            }
        }
    }
}

/// The rate quoted in `requantize`'s module docs: double and single rounding disagree on
/// 2.47 % of these random inputs, always by 1.
#[test]
fn double_vs_single_rounding_rate() {
    let mut rng = Rng::new(2024);
    let n = 1_000_000;
    let mut differ = 0;
    for _ in 0..n {
        let x = (rng.next_u64() % (1 << 21)) as i32 - (1 << 20);
        let real = 2f64.powf(-20.0 * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64);
        let m = QuantizedMultiplier::from_real(real).unwrap();
        if m.shift > 0 {
            continue;
        }
        let d = multiply_by_quantized_multiplier_double_rounding(x, m);
        let s = multiply_by_quantized_multiplier_single_rounding(x, m);
        assert!((d - s).abs() <= 1);
        differ += usize::from(d != s);
    }
    let rate = differ as f64 / n as f64;
    println!("double vs single rounding: {differ} of {n} differ ({:.4} %)", rate * 100.0);
    assert!((0.02..0.03).contains(&rate), "rate {rate}");
}

#[test]
fn typed_errors() {
    assert!(Requantizer::new(RequantizeKind::DoubleRounding, f64::NAN).is_err());
    assert!(Requantizer::new(RequantizeKind::DoubleRounding, -0.5).is_err());
    assert!(Requantizer::new(RequantizeKind::DoubleRounding, 2f64.powi(32)).is_err());
    assert!(Requantizer::new(RequantizeKind::Rndnu, 1e-12).is_err());
    assert!(Requantizer::new(RequantizeKind::PowerOfTwo, 0.0).is_err());
    let r = Requantizer::new(RequantizeKind::DoubleRounding, 0.5).unwrap();
    let mut out = [0; 2];
    assert!(requantize(&[1, 2, 3], &r, 0, QType::I8.full_range(), &mut out).is_err());
    assert!(requantize(&[1, 2], &r, 200, QType::I8.full_range(), &mut out).is_err());
    requantize(&[1, 3], &r, 0, QType::I8.full_range(), &mut out).unwrap();
    assert_eq!(out, [1, 2]);
}

quickcheck! {
    fn srdhm_commutes(a: i32, b: i32) -> bool {
        saturating_rounding_doubling_high_mul(a, b) == saturating_rounding_doubling_high_mul(b, a)
    }

    fn srdhm_is_exact(a: i32, b: i32) -> bool {
        saturating_rounding_doubling_high_mul(a, b) == exact_srdhm(a, b)
    }

    fn rdbpot_is_exact(x: i32, e: u8) -> bool {
        let e = (e % 32) as u32;
        rounding_divide_by_pot(x, e) as i128 == div_half_away(x as i128, 1 << e)
    }

    fn rdbpot_is_odd(x: i32, e: u8) -> bool {
        let e = (e % 32) as u32;
        x == i32::MIN || rounding_divide_by_pot(-x, e) == -rounding_divide_by_pot(x, e)
    }

    fn rdbpot_is_monotone(x: i32, y: i32, e: u8) -> bool {
        let e = (e % 32) as u32;
        let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
        rounding_divide_by_pot(lo, e) <= rounding_divide_by_pot(hi, e)
    }

    fn rdbpot_composes(x: i32, e: u8) -> bool {
        // Dividing by 2^e then rounding never moves more than 1/2 from the exact quotient.
        let e = (e % 32) as u32;
        let q = rounding_divide_by_pot(x, e) as f64;
        (q - x as f64 / 2f64.powi(e as i32)).abs() <= 0.5
    }

    fn left_shift_saturates(x: i32, s: u8) -> bool {
        let s = (s % 40) as u32;
        let want = ((x as i128) << s.min(32)).clamp(i32::MIN as i128, i32::MAX as i128) as i32;
        saturating_left_shift(x, s) == want
    }

    fn half_sum_is_exact(a: i32, b: i32) -> bool {
        rounding_half_sum(a, b) as i128 == div_half_away(a as i128 + b as i128, 2)
    }

    fn double_and_single_differ_by_at_most_one(x: i32, m: u32, s: u8) -> bool {
        let q = QuantizedMultiplier { multiplier: ((m >> 1) | (1 << 30)) as i32, shift: -((s % 32) as i32) };
        (multiply_by_quantized_multiplier_double_rounding(x, q) - multiply_by_quantized_multiplier_single_rounding(x, q)).abs() <= 1
    }

    fn from_real_is_within_half_ulp(m: u64) -> bool {
        let real = (m % (1 << 52)) as f64 / (1u64 << 52) as f64;
        let q = QuantizedMultiplier::from_real(real).unwrap();
        real == 0.0 || q.multiplier == 0 || (q.to_real() - real).abs() <= 2f64.powi(q.shift - 32)
    }
}
