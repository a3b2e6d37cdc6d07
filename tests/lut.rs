//! `Engine::lut` (the byte-permute kernels: AVX-512 VBMI `vpermi2b`, AVX2 `vpshufb` over
//! sixteen 16-entry tables, NEON `tbl`/`tbx`, the portable loop) against the reference's
//! `apply_table`, on every available ISA level at 1 and 3 threads: every code through random tables and every activation table of every profile,
//! lengths 0 to several vector widths plus odd tails, misaligned starts.

use quantproof_harness::equiv::announce;
use quantproof_optimized::ops::FastCode;
use quantproof_optimized::Engine;
use quantproof_reference::activation::{apply_table, table, UnaryOp};
use quantproof_reference::affine::Affine;
use quantproof_reference::profile::Profile;
use quantproof_reference::rng::Rng;

/// Every available ISA level at 1 and 3 threads (announcing the levels this CPU lacks).
fn engines() -> Vec<Engine> {
    announce();
    quantproof_harness::fuzz::engines()
}

fn check<C: FastCode>(engines: &[Engine], t: &[C], x: &[C], what: &str) {
    let mut want = vec![C::default(); x.len()];
    apply_table(t, x, &mut want).unwrap();
    for e in engines {
        let mut got = vec![C::default(); x.len()];
        e.lut(t, x, &mut got).unwrap();
        assert_eq!(got, want, "{what} on {} x{}", e.isa().name(), e.threads());
    }
}

fn codes<C: FastCode>(rng: &mut Rng, n: usize) -> Vec<C> {
    // Every code first (so each table entry is read), then random ones.
    (0..n).map(|i| C::from_code(if i < 256 { C::MIN + i as i32 } else { C::MIN + rng.below(256) as i32 })).collect()
}

fn run<C: FastCode>(seed: u64) {
    let es = engines();
    let mut rng = Rng::new(seed);
    let lens: Vec<usize> = (0..=200).chain([255, 256, 257, 511, 1000, 4097, 65 * 1024 + 3]).collect();
    for &n in &lens {
        let t: Vec<C> = (0..256).map(|_| C::from_code(C::MIN + rng.below(256) as i32)).collect();
        let x = codes::<C>(&mut rng, n + 3);
        for offset in [0, 1, 3] {
            let end = (offset + n).min(x.len());
            check(&es, &t, &x[offset.min(end)..end], &format!("{} codes, offset {offset}", n));
        }
    }
    // The real tables: every unary op under every framework profile, all 256 codes.
    let x = codes::<C>(&mut rng, 256 + 77);
    let (xq, yq) =
        (Affine::new(0.05, if C::MIN < 0 { -3 } else { 128 }), Affine::new(0.02, if C::MIN < 0 { 5 } else { 120 }));
    for p in Profile::FRAMEWORKS {
        let ops = [
            UnaryOp::Relu,
            UnaryOp::Relu6,
            UnaryOp::Clamp { min: Some(-1.0), max: Some(2.0) },
            UnaryOp::Hardtanh { min: -0.5, max: 0.5 },
            UnaryOp::Sigmoid,
            UnaryOp::Tanh,
            UnaryOp::Hardsigmoid,
            UnaryOp::Hardswish,
            UnaryOp::LeakyRelu { negative_slope: 0.1 },
            UnaryOp::Gelu,
            UnaryOp::Exp,
            UnaryOp::Silu,
        ];
        for op in ops {
            if let Ok(t) = table::<C>(op, p.arith, xq, yq) {
                check(&es, &t, &x, &format!("{op:?} under {}", p.name));
            }
        }
    }
}

#[test]
fn lut_i8_equals_the_reference_on_every_isa() {
    run::<i8>(17);
}

#[test]
fn lut_u8_equals_the_reference_on_every_isa() {
    run::<u8>(29);
}

#[test]
fn lut_rejects_bad_lengths() {
    for e in engines() {
        assert!(e.lut(&[0i8; 255], &[1i8; 4], &mut [0i8; 4]).is_err());
        assert!(e.lut(&[0u8; 256], &[1u8; 4], &mut [0u8; 3]).is_err());
    }
}

/// `Engine::requantize_codes` (8-bit codes to 8-bit codes through a table the reference
/// computes) against the reference's `requantize_codes`: every code of every type pair under
/// every framework's rule, scale ratios from 2^-9 to 2^9 (equal scales and exact powers of two
/// included) and drawn zero points, in arrays long enough for every vector width's tail; the
/// errors (bad scales, zero points out of range, wrong lengths) identical.
fn requantize_codes_pair<A: FastCode, B: FastCode>(engines: &[Engine], rng: &mut Rng) {
    use quantproof_reference::profile::ArithRule;
    use quantproof_reference::requantize::requantize_codes;
    let mut x: Vec<A> = (A::MIN..=A::MAX).map(A::from_code).collect();
    x.extend(codes::<A>(rng, 333));
    for rule in [ArithRule::Tflite, ArithRule::Torch, ArithRule::OnnxRuntime] {
        for e in -9..=9 {
            for jitter in [1.0, 1.0 + rng.unit() as f32] {
                let sx = 0.02 * jitter;
                let sy = sx * 2f32.powi(e);
                let xq = Affine::new(sx, rng.range_i64(A::MIN as i64, A::MAX as i64) as i32);
                let yq = Affine::new(sy, rng.range_i64(B::MIN as i64, B::MAX as i64) as i32);
                let mut want = vec![B::default(); x.len()];
                let r = requantize_codes(&x, xq, yq, rule, &mut want);
                for eng in engines {
                    let mut got = vec![B::default(); x.len()];
                    let g = eng.requantize_codes(&x, xq, yq, rule, &mut got);
                    assert_eq!(g, r, "{rule:?} {xq:?} -> {yq:?} on {}", eng.isa());
                    assert_eq!(got, want, "{rule:?} {xq:?} -> {yq:?} on {}", eng.isa());
                }
            }
        }
    }
    // Bad input: the same typed errors in the same order.
    let bad = [
        (Affine::new(0.0, 0), Affine::new(0.1, 0), x.len()),
        (Affine::new(0.1, 0), Affine::new(f32::NAN, 0), x.len()),
        (Affine::new(0.1, 999), Affine::new(0.1, 0), x.len()),
        (Affine::new(0.1, 0), Affine::new(0.1, 0), x.len() - 1),
        (Affine::new(0.1, 0), Affine::new(0.1, -999), x.len() + 1),
    ];
    for (xq, yq, n) in bad {
        let mut want = vec![B::default(); n];
        let r = requantize_codes(&x, xq, yq, ArithRule::Tflite, &mut want);
        assert!(r.is_err());
        for eng in engines {
            let mut got = vec![B::default(); n];
            // Compared as text: a NaN scale inside the error is not equal to itself.
            let g = eng.requantize_codes(&x, xq, yq, ArithRule::Tflite, &mut got);
            assert_eq!(format!("{g:?}"), format!("{r:?}"), "{xq:?} {yq:?} {n}");
        }
    }
}

#[test]
fn requantize_codes_equals_the_reference_on_every_isa() {
    let engines = engines();
    let mut rng = Rng::new(0x4e0);
    requantize_codes_pair::<i8, i8>(&engines, &mut rng);
    requantize_codes_pair::<i8, u8>(&engines, &mut rng);
    requantize_codes_pair::<u8, i8>(&engines, &mut rng);
    requantize_codes_pair::<u8, u8>(&engines, &mut rng);
}
