//! `Engine::requantize` (int32 accumulators to codes) against the reference's
//! `requantize::requantize`, bit for bit, on every available ISA level at 1 and 3 threads, under
//! every requantizer (`RequantizeKind::ALL`): multipliers from 2^-40 to 2^8 including exact
//! powers of two, values a hair below them and the Q31 edges; every shift the Q31 conversion
//! produces (right shifts above 31 included, which the vector kernels hand to the portable loop);
//! accumulators at `i32::MIN`, `i32::MAX`, 0, +-1, the exact ties of the multiplier and random
//! ones; i8, u8 and narrow ranges with zero points at both ends; lengths 0 to several vector
//! widths plus odd tails, misaligned starts.

use quantproof_harness::equiv::announce;
use quantproof_optimized::Engine;
use quantproof_reference::requantize::{requantize, QuantizedMultiplier, RequantizeKind, Requantizer};
use quantproof_reference::rng::Rng;
use quantproof_reference::scheme::{Code, CodeRange};

/// Every available ISA level at 1 and 3 threads (announcing the levels this CPU lacks).
fn engines() -> Vec<Engine> {
    announce();
    quantproof_harness::fuzz::engines()
}

fn multipliers(rng: &mut Rng) -> Vec<f64> {
    let mut m: Vec<f64> = (-40..=7).map(|e| 2f64.powi(e)).collect();
    m.extend((-40..=7).map(|e| 2f64.powi(e) * (1.0 - 2f64.powi(-30))));
    m.extend([0.0, 1.0 / 3.0, 0.1, 0.75, 0.999_999_9, 1.5, 3.7, 200.0, 2.5e-10, 1e-12]);
    m.extend((0..40).map(|_| 2f64.powf(rng.unit() * 40.0 - 32.0)));
    m
}

fn accumulators(rng: &mut Rng, m: f64, n: usize) -> Vec<i32> {
    let mut a = vec![i32::MIN, i32::MAX, 0, 1, -1, i32::MIN + 1, i32::MAX - 1, 1 << 30, -(1 << 30)];
    // Exact ties of acc * m for a few k (where m's reciprocal is a small integer multiple).
    if m > 0.0 {
        for k in [-3i64, -2, -1, 1, 2, 5, 127] {
            let v = ((k as f64 + 0.5) / m).round();
            if v.abs() < 2e9 {
                a.extend([v as i32, v as i32 + 1, v as i32 - 1]);
            }
        }
    }
    while a.len() < n {
        let v = match rng.below(3) {
            0 => rng.range_i64(i32::MIN as i64, i32::MAX as i64),
            1 => rng.range_i64(-70_000, 70_000),
            _ => rng.range_i64(-300, 300),
        };
        a.push(v as i32);
    }
    a.truncate(n);
    a
}

fn check<C: Code + Default + PartialEq + std::fmt::Debug>(
    engines: &[Engine],
    r: &Requantizer,
    z: i32,
    range: CodeRange,
    acc: &[i32],
    what: &str,
) -> usize {
    let mut want = vec![0i32; acc.len()];
    requantize(acc, r, z, range, &mut want).unwrap();
    let want: Vec<C> = want.into_iter().map(C::from_code).collect();
    for e in engines {
        for off in [0, 1, 3] {
            let mut buf = vec![0i32; acc.len() + off];
            buf[off..].copy_from_slice(acc);
            let mut got = vec![C::default(); acc.len() + off];
            e.requantize(&buf[off..], r, z, range, &mut got[off..]).unwrap();
            assert_eq!(
                &got[off..],
                &want[..],
                "{what} {r:?} z {z} {range:?} on {} x{} offset {off}",
                e.isa(),
                e.threads()
            );
        }
    }
    acc.len()
}

#[test]
fn every_requantizer_equals_the_reference_on_every_isa() {
    let engines = engines();
    let mut rng = Rng::new(0x5EC4);
    let lengths: Vec<usize> = (0..=67).chain([127, 128, 129, 197, 640, 1000, 3001]).collect();
    let mut n = 0;
    for m in multipliers(&mut rng) {
        for kind in RequantizeKind::ALL {
            let Ok(r) = Requantizer::new(kind, m) else { continue };
            let len = lengths[rng.below(lengths.len() as u64) as usize];
            let acc = accumulators(&mut rng, m, len.max(40));
            let acc = &acc[..len];
            for (range, z) in [
                (CodeRange::new(-128, 127).unwrap(), 0),
                (CodeRange::new(-128, 127).unwrap(), -128),
                (CodeRange::new(-127, 127).unwrap(), 127),
                (CodeRange::new(-100, 50).unwrap(), -20),
            ] {
                n += check::<i8>(&engines, &r, z, range, acc, "i8");
            }
            for (range, z) in [
                (CodeRange::new(0, 255).unwrap(), 128),
                (CodeRange::new(0, 255).unwrap(), 0),
                (CodeRange::new(0, 15).unwrap(), 15),
                (CodeRange::new(3, 200).unwrap(), 200),
            ] {
                n += check::<u8>(&engines, &r, z, range, acc, "u8");
            }
        }
    }
    println!("{n} requantized values compared per engine");
    assert!(n > 50_000);
}

/// Every shift a Q31 multiplier can carry, each with the extreme and random accumulators: the
/// double-rounding kernel's left shift (up to 31, wrapping as TFLite does) and right shift (the
/// vector path up to 31, the portable one beyond).
#[test]
fn every_shift_of_the_q31_variants() {
    let engines = engines();
    let mut rng = Rng::new(31);
    for shift in -40..=31 {
        // Negative multipliers too (no framework makes one, but the primitive takes any).
        for mult in [1 << 30, (1 << 30) + 1, i32::MAX, 1_518_500_250, -(1 << 30), -i32::MAX, -1_518_500_250] {
            let q = QuantizedMultiplier { multiplier: mult, shift };
            for r in [Requantizer::DoubleRounding(q), Requantizer::SingleRounding(q)] {
                let acc = accumulators(&mut rng, 0.0, 75);
                check::<i8>(&engines, &r, 3, CodeRange::new(-128, 127).unwrap(), &acc, "shift");
                check::<i16>(&engines, &r, -5, CodeRange::new(-32768, 32767).unwrap(), &acc, "shift i16");
            }
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let e = Engine::auto();
    let r = Requantizer::new(RequantizeKind::DoubleRounding, 0.5).unwrap();
    let mut out = [0u8; 3];
    assert!(e.requantize(&[1, 2, 3], &r, 300, CodeRange::new(0, 255).unwrap(), &mut out).is_err());
    assert!(e.requantize(&[1, 2, 3], &r, 0, CodeRange::new(-1, 255).unwrap(), &mut out).is_err());
    assert!(e.requantize(&[1, 2], &r, 0, CodeRange::new(0, 255).unwrap(), &mut out).is_err());
    let mut none: [u8; 0] = [];
    assert!(e.requantize(&[], &r, 0, CodeRange::new(0, 255).unwrap(), &mut none).is_ok());
}
