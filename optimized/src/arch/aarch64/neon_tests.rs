//! NEON-only tests: the private rounding helper `round4` against the reference's `round_f32` on
//! every tie neighbourhood and a sweep of all bit patterns (all 2^32 behind `--ignored`), and
//! that NEON is detected and dispatched. Everything else (every kernel against the scalar kernels
//! on adversarial inputs, every length and misaligned start, every code, every pair of nibbles,
//! signed zeros, subnormals, NaN flags) is the shared kit, `crate::arch::testkit`, run below for
//! NEON exactly as for AVX2 and AVX-512.

use super::*;
use crate::kernels;
use quantproof_reference::rounding::{round_f32, RoundingMode};

/// The token. A missing NEON is a failure, never a skip: these tests exist to exercise it.
fn neon() -> &'static Neon {
    Neon::new().expect("NEON not detected: every AArch64 Linux CPU has it, so detection is broken")
}

const SNAN: u32 = 0x7F80_0001;

/// `round4::<MODE>` against `round_f32` on the given bit patterns.
fn check_round_bits(bits: impl Iterator<Item = u32>) -> usize {
    fn one<const MODE: u8>(mode: RoundingMode, v: [f32; 4]) {
        // SAFETY: reads and writes four f32 from and to four-element arrays.
        let got = unsafe {
            let mut o = [0f32; 4];
            vst1q_f32(o.as_mut_ptr(), round4::<MODE>(vld1q_f32(v.as_ptr())));
            o
        };
        for (g, x) in got.iter().zip(v) {
            let want = round_f32(x, mode, 0);
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "{mode:?}({x:e} = {:#x}): neon {g:e} scalar {want:e}",
                x.to_bits()
            );
        }
    }
    let mut n = 0;
    let mut buf = [0f32; 4];
    for (i, b) in bits.enumerate() {
        buf[i % 4] = f32::from_bits(b);
        if i % 4 == 3 {
            one::<HALF_EVEN>(RoundingMode::HalfToEven, buf);
            one::<HALF_AWAY>(RoundingMode::HalfAwayFromZero, buf);
            one::<HALF_UP>(RoundingMode::HalfUp, buf);
            one::<FLOOR>(RoundingMode::Floor, buf);
            one::<TOWARD_ZERO>(RoundingMode::TowardZero, buf);
            n += 4;
        }
    }
    n
}

#[test]
fn round_matches_scalar_near_every_small_tie() {
    // ±8 ulps around k and k + 0.5 for every |k| < 2^12, and around the large ties up to 2^23.
    let mut centres: Vec<f32> = (-4096..4096).flat_map(|k| [k as f32, k as f32 + 0.5]).collect();
    for e in 12..24 {
        let p = (1u32 << e) as f32;
        centres.extend([p - 0.5, p + 0.5, p - 1.5, -(p - 0.5), -(p + 0.5), p, -p]);
    }
    let bits = centres.into_iter().flat_map(|c| {
        let b = c.to_bits();
        (0..16u32).map(move |d| b.wrapping_add(d).wrapping_sub(8))
    });
    assert!(check_round_bits(bits) > 200_000);
}

#[test]
fn round_matches_scalar_on_a_sweep_of_all_bit_patterns() {
    // Every 1021st pattern (~4.2 million values) covers every exponent, both signs, subnormals,
    // infinities and NaNs.
    let bits = (0..=u32::MAX / 1021).map(|i| i * 1021).chain([0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, SNAN]);
    assert!(check_round_bits(bits) > 4_000_000);
}

#[test]
#[ignore = "exhaustive over 2^32 patterns: about 20 minutes under qemu (passed there)"]
fn round_matches_scalar_on_every_f32() {
    assert_eq!(check_round_bits(0..=u32::MAX), 1 << 32);
}

#[test]
fn neon_is_detected_and_dispatched() {
    assert_eq!(neon().isa(), Isa::Neon);
    let k = kernels::table(Isa::Neon).expect("table(Neon) must hand out the NEON kernels");
    assert_eq!(k.isa(), Isa::Neon);
    assert!(crate::isa::available().contains(&Isa::Neon));
}

crate::arch::testkit::kernel_tests!(Isa::Neon);
