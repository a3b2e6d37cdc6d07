//! `Engine::binary` / `Engine::apply_binary` (QAdd, QSub, QMul on 8-bit codes) against the
//! reference's `elementwise::binary`, bit for bit, on every available ISA level at 1 and 3
//! threads:
//!
//! - exhaustive: every pair of 8-bit codes (65,536 pairs) under each framework's arithmetic
//!   (TFLite, PyTorch, ONNX Runtime, and the equal-scale fast path), each op and fused
//!   activation, i8 and u8, for many drawn sets of scales and zero points: equal scales, ratios
//!   near 1, exactly 2^k and 2^-k, log-uniform ones, zero points at both ends of the range, and
//!   scales so large or small that the float kernels must hand over to the portable loop;
//!   errors (a multiplier TFLite cannot represent, an op a framework lacks) must be the same;
//! - lengths 0 to several vector widths plus odd tails, misaligned starts;
//! - broadcasting `b` (a scalar, a trailing block, a middle dimension).

use quantproof_harness::equiv::announce;
use quantproof_optimized::ops::FastCode;
use quantproof_optimized::Engine;
use quantproof_reference::affine::{Activation, Affine};
use quantproof_reference::elementwise::{apply_binary, binary, BinaryKernel, BinaryOp, BinaryParams};
use quantproof_reference::profile::ArithRule;
use quantproof_reference::rng::Rng;
use quantproof_reference::scheme::Code;

fn engines() -> Vec<Engine> {
    announce();
    quantproof_harness::fuzz::engines()
}

const OPS: [BinaryOp; 3] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul];
const RULES: [ArithRule; 3] = [ArithRule::Tflite, ArithRule::Torch, ArithRule::OnnxRuntime];
const ACTIVATIONS: [Activation; 4] = [Activation::None, Activation::Relu, Activation::Relu6, Activation::ReluN1To1];

/// One drawn set of scales and zero points for codes of type `C` (the equivalence runner's
/// generator: special families first, then random ones).
fn draw_params<C: Code>(rng: &mut Rng, case: usize) -> (f32, f32, f32, i32, i32, i32) {
    quantproof_harness::equiv::arith::draw_binary_params::<C>(rng, case)
}

fn every_pair<C: Code>() -> (Vec<C>, Vec<C>) {
    let n = (C::MAX - C::MIN + 1) as usize;
    let a = (0..n * n).map(|i| C::from_code(C::MIN + (i % n) as i32)).collect();
    let b = (0..n * n).map(|i| C::from_code(C::MIN + (i / n) as i32)).collect();
    (a, b)
}

fn exhaustive<C: FastCode + PartialEq + std::fmt::Debug>(seed: u64, draws: usize) {
    let engines = engines();
    let (a, b) = every_pair::<C>();
    let shape = [a.len()];
    let mut rng = Rng::new(seed);
    let mut checked = 0usize;
    for case in 0..draws {
        let (sa, sb, sy, za, zb, zy) = draw_params::<C>(&mut rng, case);
        for activation in ACTIVATIONS {
            let p = BinaryParams { a: Affine::new(sa, za), b: Affine::new(sb, zb), y: Affine::new(sy, zy), activation };
            let mut kernels: Vec<(String, quantproof_reference::Result<BinaryKernel>)> = Vec::new();
            for rule in RULES {
                for op in OPS {
                    kernels.push((format!("{rule:?} {op:?}"), BinaryKernel::new::<C>(op, rule, &p)));
                }
            }
            for op in [BinaryOp::Add, BinaryOp::Sub] {
                let q = BinaryParams { b: Affine::new(sa, zb), ..p };
                kernels.push((format!("equal-scale {op:?}"), BinaryKernel::equal_scale::<C>(op, &q)));
            }
            for (name, kernel) in &kernels {
                let Ok(kernel) = kernel else { continue };
                let mut want = vec![C::from_code(0); a.len()];
                apply_binary(kernel, &a, &shape, &b, &shape, &mut want).unwrap();
                for e in &engines {
                    let mut got = vec![C::from_code(0); a.len()];
                    e.apply_binary(kernel, &a, &shape, &b, &shape, &mut got).unwrap();
                    if got != want {
                        let i = (0..a.len()).find(|&i| got[i] != want[i]).unwrap();
                        panic!(
                            "{name} on {} ({} threads), {} codes, {p:?}: a = {:?}, b = {:?}: got {:?}, want {:?}",
                            e.isa(),
                            e.threads(),
                            C::NAME,
                            a[i],
                            b[i],
                            got[i],
                            want[i]
                        );
                    }
                }
                checked += 1;
            }
            // The unprepared entry point: same results and the same errors.
            for rule in RULES {
                for op in OPS {
                    let mut want = vec![C::from_code(0); 256];
                    let want_r = binary(op, rule, &p, &a[..256], &[256], &b[..256], &[256], &mut want);
                    for e in &engines {
                        let mut got = vec![C::from_code(0); 256];
                        let got_r = e.binary(op, rule, &p, &a[..256], &[256], &b[..256], &[256], &mut got);
                        assert_eq!(got_r, want_r, "{rule:?} {op:?} on {}: {p:?}", e.isa());
                        assert_eq!(got, want);
                    }
                }
            }
        }
    }
    // Most draws prepare; a test that checked nothing would prove nothing.
    assert!(checked > draws * 8, "only {checked} kernels prepared over {draws} draws");
}

#[test]
fn every_pair_of_i8_codes_on_every_isa() {
    exhaustive::<i8>(0xB1_0001, 24);
}

#[test]
fn every_pair_of_u8_codes_on_every_isa() {
    exhaustive::<u8>(0xB1_0002, 24);
}

/// Lengths 0..=70 and a few long ones, starts misaligned by 0..3, against the reference.
#[test]
fn lengths_tails_and_misaligned_starts() {
    let engines = engines();
    let mut rng = Rng::new(0xB1_0003);
    let p = BinaryParams {
        a: Affine::new(0.05, 3),
        b: Affine::new(0.031, -7),
        y: Affine::new(0.07, -2),
        activation: Activation::None,
    };
    let lens: Vec<usize> = (0..=70).chain([127, 128, 129, 255, 1000, 4099]).collect();
    for rule in RULES {
        for op in OPS {
            let Ok(kernel) = BinaryKernel::new::<i8>(op, rule, &p) else { continue };
            for &n in &lens {
                for off in 0..4 {
                    let a: Vec<i8> = (0..n + off).map(|_| rng.below(256) as u8 as i8).collect();
                    let b: Vec<i8> = (0..n + off).map(|_| rng.below(256) as u8 as i8).collect();
                    let (a, b) = (&a[off..], &b[off..]);
                    let mut want = vec![0i8; n];
                    apply_binary(&kernel, a, &[n], b, &[n], &mut want).unwrap();
                    for e in &engines {
                        let mut buf = vec![0x55i8; n + off + 1];
                        e.apply_binary(&kernel, a, &[n], b, &[n], &mut buf[off..off + n]).unwrap();
                        assert_eq!(&buf[off..off + n], &want[..], "{rule:?} {op:?} on {} n={n} off={off}", e.isa());
                        assert!(
                            buf[..off].iter().chain(&buf[off + n..]).all(|&v| v == 0x55),
                            "wrote outside its slice"
                        );
                    }
                }
            }
        }
    }
}

/// Broadcast shapes of `b`, accepted and rejected, give the reference's outputs and errors.
#[test]
fn broadcasting_matches_the_reference() {
    let engines = engines();
    let mut rng = Rng::new(0xB1_0004);
    let p = BinaryParams {
        a: Affine::new(0.02, 100),
        b: Affine::new(0.02, 90),
        y: Affine::new(0.03, 128),
        activation: Activation::Relu,
    };
    let a_shape = [3usize, 4, 5];
    let b_shapes: [&[usize]; 10] =
        [&[1], &[5], &[4, 5], &[4, 1], &[3, 1, 5], &[1, 1, 1, 5], &[3, 4, 5], &[2, 5], &[6], &[2, 3, 4, 5]];
    let a: Vec<u8> = (0..60).map(|_| rng.below(256) as u8).collect();
    for rule in RULES {
        for op in OPS {
            for b_shape in b_shapes {
                let n: usize = b_shape.iter().product();
                let b: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                let mut want = vec![0u8; 60];
                let want_r = binary(op, rule, &p, &a, &a_shape, &b, b_shape, &mut want);
                for e in &engines {
                    let mut got = vec![0u8; 60];
                    let got_r = e.binary(op, rule, &p, &a, &a_shape, &b, b_shape, &mut got);
                    assert_eq!(got_r, want_r, "{rule:?} {op:?} b {b_shape:?} on {}", e.isa());
                    if want_r.is_ok() {
                        assert_eq!(got, want, "{rule:?} {op:?} b {b_shape:?} on {}", e.isa());
                    }
                }
            }
        }
    }
}
