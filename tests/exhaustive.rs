//! Exhaustive proofs where the domain is small (see `quantproof_harness::exhaustive` for what each
//! property means and why the `k` sweep covers every code and zero point up to 16 bits).
//!
//! What is asserted, per rounding mode:
//!
//! | property | round-to-nearest (3 modes x 2 scale ops) | floor, toward-zero |
//! |---|---|---|
//! | `quantize(dequantize(q)) == q` | exact, every width 2..=16, every code, every zero point | off by at most one step, always in the rounding direction; exact for power-of-two scales; *not* exact in general (asserted: it fails somewhere) |
//! | monotone | yes | yes |
//! | idempotent on dequantized values | yes (`q` and `fake_quantize`, bit for bit) | slips by at most one step in the rounding direction |
//! | round error `<= analysis::round_error_bound` in range | yes | (not claimed: the error reaches a whole step) |
//!
//! Kernel level, on every available ISA: every `i8`/`u8` code dequantizes bit-identically to the
//! reference under every zero point and quantizes back to itself; every pair of 4-bit codes packs
//! and every byte unpacks like the reference.

use quantproof_harness::equiv::{announce, Budget};
use quantproof_harness::exhaustive::*;
use quantproof_optimized::{isa, Engine};
use quantproof_reference::profile::Profile;
use quantproof_reference::quantize::QuantizeRule;
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::Signedness;
use quantproof_reference::scheme::{CodeRange, QType};

/// Scales whose every multiple `k s` (|k| < 2^16) and quotient is exact.
const POWER_OF_TWO_SCALES: [f32; 4] = [1.0 / 1024.0, 4.0, 1.0 / 1048576.0, 0.5];

fn assert_holds(p: &Proof) {
    if let Err(report) = p.check() {
        panic!("{report}");
    }
}

#[test]
fn round_trip_every_k_under_nearest_modes() {
    // Every k in [-(2^16 - 1), 2^16 - 1]: every code and zero point of every width up to 16 bits.
    let mut total = Proof::new("round trip, every k, nearest modes");
    for &s in SCALES.iter().chain(&POWER_OF_TWO_SCALES) {
        for rule in nearest_rules() {
            let r = round_trip_k(s, rule, 65535).unwrap();
            assert_holds(&r.proof);
            total.absorb(r.proof);
        }
    }
    eprintln!("{total}");
}

#[test]
fn round_trip_every_width_code_and_zero_point() {
    // Widths up to 8 bits: every zero point. Wider: the ends, the middle, 0 and an even spread
    // (the k sweep above covers the rest).
    let budget = Budget::from_env();
    let extra = budget.count(4);
    let mut total = Proof::new("round trip through quantize_codes, widths 2..=16");
    for bits in 2..=16 {
        for signed in [true, false] {
            let qtype = QType::new(bits, Signedness::signed_if(signed)).unwrap();
            let zps = zero_point_sample(qtype.full_range(), 256, extra);
            // Widths up to 8 bits at every scale; wider ones at a rotating subset when the
            // budget is reduced (every scale still meets several wide widths).
            let take = if bits <= 8 { SCALES.len() } else { budget.count(SCALES.len()).min(SCALES.len()) };
            let scales: Vec<f32> =
                (0..take).map(|i| SCALES[(i + 2 * bits as usize + signed as usize) % SCALES.len()]).collect();
            for &s in &scales {
                for rule in nearest_rules() {
                    let r = round_trip_width(qtype, &zps, s, rule).unwrap();
                    assert_holds(&r.proof);
                    total.absorb(r.proof);
                }
            }
        }
    }
    eprintln!("{total}");
}

#[test]
fn round_trip_through_typed_and_packed_apis() {
    let mut rules = nearest_rules();
    rules.extend([Profile::TORCH.quantize, Profile::ONNXRUNTIME.quantize]);
    for &s in &SCALES {
        for &rule in &rules {
            assert_holds(&round_trip_typed(s, rule).unwrap());
        }
    }
}

#[test]
fn floor_and_toward_zero_slip_by_at_most_one_step() {
    let mut slipped = 0;
    for &s in &SCALES {
        for rule in directed_rules() {
            let r = round_trip_k(s, rule, 65535).unwrap();
            // Every failure is the neighbour in the rounding direction, never further.
            assert_eq!(r.proof.failures, r.off_by_one, "{}", r.proof);
            slipped += r.proof.failures;
            // The same through quantize_codes with every i8 and u8 zero point.
            for qtype in [QType::I8, QType::U8] {
                let zps = zero_point_sample(qtype.full_range(), 256, 0);
                let w = round_trip_width(qtype, &zps, s, rule).unwrap();
                assert!(w.proof.checked > 0);
                assert_eq!(w.proof.failures, w.off_by_one, "{}", w.proof);
            }
        }
    }
    // Float error really does break the round trip under these modes (this is a documented
    // property of the arithmetic, not a bug): 0.1 = 0x3dcccccd is slightly above 1/10, so
    // RN(k * 0.1) / 0.1 lands just below k for many k.
    let floor = QuantizeRule::new(quantproof_reference::quantize::ScaleOp::Divide, RoundingMode::Floor);
    assert!(round_trip_k(0.1, floor, 65535).unwrap().proof.failures > 0);
    assert!(slipped > 0);
    // Power-of-two scales make every step exact: the round trip then holds in every mode.
    for &s in &POWER_OF_TWO_SCALES {
        for rule in deterministic_rules() {
            assert_holds(&round_trip_k(s, rule, 65535).unwrap().proof);
        }
    }
}

/// Ranges, scales and zero points for the sweeps: every 8-bit and 4-bit type, a narrow and an
/// odd sub-range, and one 16-bit type.
fn sweep_settings(budget: &Budget) -> Vec<Sweep> {
    let mut v = Vec::new();
    let ranges = [
        QType::I8.full_range(),
        QType::U8.full_range(),
        QType::I8.narrow_range(),
        QType::I4.full_range(),
        QType::U4.full_range(),
        CodeRange::new(-3, 40).unwrap(),
    ];
    let scales = [0.1f32, 7.77, 1.0 / 3.0, 1e-20, 1.0 / 1024.0];
    for (i, r) in ranges.iter().enumerate() {
        let zps = [r.qmin(), (r.qmin() + r.qmax()) / 2, r.qmax()];
        for (j, &s) in scales.iter().enumerate() {
            // Every scale with every range; zero points rotate through the ends and the middle.
            let take = budget.count(2).min(3);
            for k in 0..take {
                v.push(Sweep::new(*r, s, zps[(i + j + k) % 3]));
            }
        }
    }
    // 16 bits: every boundary under a full budget, every few otherwise.
    let stride = (1.0 / budget.scale).round().max(1.0) as usize;
    v.push(Sweep::strided(QType::U16.full_range(), 0.0123, 40000, stride));
    v.push(Sweep::strided(QType::I16.full_range(), 1e-3, -7, stride));
    v
}

#[test]
fn quantize_is_monotone_under_every_deterministic_mode() {
    let budget = Budget::from_env();
    let mut total = Proof::new("monotone");
    for sw in sweep_settings(&budget) {
        for rule in deterministic_rules() {
            let p = sw.monotone(rule).unwrap();
            assert_holds(&p);
            total.absorb(p);
        }
    }
    eprintln!("{total}");
}

#[test]
fn quantize_is_idempotent_on_dequantized_values() {
    let budget = Budget::from_env();
    let mut total = Proof::new("idempotent, nearest modes");
    for sw in sweep_settings(&budget) {
        for rule in nearest_rules() {
            let r = sw.idempotent(rule).unwrap();
            assert_holds(&r.proof);
            total.absorb(r.proof);
        }
        // Directed modes: a second pass can slip one step in the rounding direction, no more.
        for rule in directed_rules() {
            let r = sw.idempotent(rule).unwrap();
            assert!(r.proof.checked > 0);
            assert_eq!(r.proof.failures, r.off_by_one, "{}", r.proof);
        }
    }
    eprintln!("{total}");
}

#[test]
fn round_error_is_within_the_documented_bound() {
    let budget = Budget::from_env();
    let mut total = Proof::new("round error bound, nearest modes");
    for sw in sweep_settings(&budget) {
        for rule in nearest_rules() {
            let p = sw.round_error_bound(rule).unwrap();
            assert_holds(&p);
            total.absorb(p);
        }
    }
    eprintln!("{total}");
}

fn engines() -> Vec<Engine> {
    announce();
    isa::available().into_iter().map(|i| Engine::new(i).unwrap()).collect()
}

#[test]
fn every_i8_and_u8_code_on_every_isa() {
    for e in engines() {
        let p = kernel_dequantize_every_code(&e, &[0.1, 1.0 / 3.0, 7.77, 1.0 / 1024.0, 1e-20]).unwrap();
        assert_holds(&p);
        eprintln!("{p}");
    }
}

#[test]
fn every_nibble_pair_on_every_isa() {
    for e in engines() {
        let p = kernel_nibble_pairs(&e).unwrap();
        assert_holds(&p);
        eprintln!("{p}");
    }
}
