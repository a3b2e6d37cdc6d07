//! Rounding a real (f32) value to an integer, under each rule frameworks use.
//!
//! | mode | ties (`k + 0.5`) go to | used by |
//! |---|---|---|
//! | [`RoundingMode::HalfToEven`] | the even neighbour | PyTorch (`nearbyint`), ONNX (`QuantizeLinear`), TensorRT, `cvtps2dq`, `vcvtnq` |
//! | [`RoundingMode::HalfAwayFromZero`] | away from zero | C `round`, Rust `f32::round`, NCNN/MNN, `vcvtaq` |
//! | [`RoundingMode::HalfUp`] | toward +infinity | XNNPACK `rndnu`, gemmlowp-style `floor(x + 0.5)` |
//! | [`RoundingMode::Floor`] | (no ties: always down) | power-of-two shifts without rounding |
//! | [`RoundingMode::TowardZero`] | (no ties: truncation) | C casts, TFLite's AVX2 requant path |
//! | [`RoundingMode::Stochastic`] | up with probability `frac(x)` | stochastic-rounding QAT |
//!
//! Every rule maps integers to themselves, is monotone (`a <= b` implies `r(a) <= r(b)`) and
//! works on f32 exactly: each is computed with IEEE operations whose results are exact, so a SIMD
//! kernel that uses the same operations gets the same bits. That is what lets an optimized kernel
//! clamp *before* rounding (`round(clamp(v, lo, hi)) == clamp(round(v), lo, hi)` for integral
//! `lo`, `hi`) and still be bit-exact with this spec.

/// How a value is rounded to an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundingMode {
    /// Nearest integer, ties to even (IEEE 754 `roundTiesToEven`).
    HalfToEven,
    /// Nearest integer, ties away from zero.
    HalfAwayFromZero,
    /// Nearest integer, ties toward +infinity (`floor(x + 1/2)` in exact arithmetic).
    HalfUp,
    /// Largest integer not above the value.
    Floor,
    /// Drop the fraction.
    TowardZero,
    /// `floor(x) + 1` with probability `x - floor(x)`, else `floor(x)`. The random number for an
    /// element depends only on `seed` and the element's flat index, so results are reproducible
    /// and independent of how the work is split (see [`stochastic_uniform`]).
    Stochastic { seed: u64 },
}

impl RoundingMode {
    /// The deterministic modes, for tests that enumerate them.
    pub const DETERMINISTIC: [RoundingMode; 5] = [
        RoundingMode::HalfToEven,
        RoundingMode::HalfAwayFromZero,
        RoundingMode::HalfUp,
        RoundingMode::Floor,
        RoundingMode::TowardZero,
    ];

    /// True for the three round-to-nearest modes, whose error is at most half a step.
    pub fn is_nearest(self) -> bool {
        matches!(self, RoundingMode::HalfToEven | RoundingMode::HalfAwayFromZero | RoundingMode::HalfUp)
    }

    /// A short name: `half_even`, `half_away`, `half_up`, `floor`, `toward_zero`, `stochastic`.
    pub fn name(self) -> &'static str {
        match self {
            RoundingMode::HalfToEven => "half_even",
            RoundingMode::HalfAwayFromZero => "half_away",
            RoundingMode::HalfUp => "half_up",
            RoundingMode::Floor => "floor",
            RoundingMode::TowardZero => "toward_zero",
            RoundingMode::Stochastic { .. } => "stochastic",
        }
    }

    /// Parses the names above (`stochastic` takes seed 0; `stochastic:SEED` sets it).
    pub fn parse(s: &str) -> Option<RoundingMode> {
        Some(match s {
            "half_even" | "half_to_even" | "even" => RoundingMode::HalfToEven,
            "half_away" | "half_away_from_zero" | "away" => RoundingMode::HalfAwayFromZero,
            "half_up" => RoundingMode::HalfUp,
            "floor" => RoundingMode::Floor,
            "toward_zero" | "trunc" => RoundingMode::TowardZero,
            "stochastic" => RoundingMode::Stochastic { seed: 0 },
            _ => {
                let seed = s.strip_prefix("stochastic:")?.parse().ok()?;
                RoundingMode::Stochastic { seed }
            }
        })
    }
}

/// Rounds `v` to an integral f32 under `mode`. `index` is the element's flat index; only
/// [`RoundingMode::Stochastic`] reads it. NaN stays NaN and infinities stay infinite.
///
/// The exact operations, which SIMD kernels reproduce one for one:
/// * half to even: `v.round_ties_even()`;
/// * half away: `t = trunc(v)`, then `t + sign(v)` when `|v - t| >= 0.5` (`v - t` is exact);
/// * half up: `f = floor(v)`, then `f + 1` when `v - f >= 0.5` (the comparison is exact even
///   where `v - f` is rounded, since that only happens when the true difference exceeds 0.75);
/// * floor, toward zero: `floor`, `trunc`;
/// * stochastic: `f = floor(v)`, then `f + 1` when `v - f > u` with `u` from [`stochastic_uniform`].
#[inline]
pub fn round_f32(v: f32, mode: RoundingMode, index: u64) -> f32 {
    match mode {
        RoundingMode::HalfToEven => v.round_ties_even(),
        RoundingMode::HalfAwayFromZero => {
            let t = v.trunc();
            if (v - t).abs() >= 0.5 {
                t + 1.0f32.copysign(v)
            } else {
                t
            }
        }
        RoundingMode::HalfUp => {
            let f = v.floor();
            if v - f >= 0.5 {
                f + 1.0
            } else {
                f
            }
        }
        RoundingMode::Floor => v.floor(),
        RoundingMode::TowardZero => v.trunc(),
        RoundingMode::Stochastic { seed } => {
            let f = v.floor();
            if v - f > stochastic_uniform(seed, index) {
                f + 1.0
            } else {
                f
            }
        }
    }
}

/// [`round_f32`] in `f64` (for quotients that need the wider type, such as an int32 bias): the
/// same rule per mode, `index` read by stochastic rounding only.
#[inline]
pub fn round_f64(v: f64, mode: RoundingMode, index: u64) -> f64 {
    match mode {
        RoundingMode::HalfToEven => v.round_ties_even(),
        RoundingMode::HalfAwayFromZero => v.round(),
        RoundingMode::HalfUp => {
            let f = v.floor();
            if v - f >= 0.5 {
                f + 1.0
            } else {
                f
            }
        }
        RoundingMode::Floor => v.floor(),
        RoundingMode::TowardZero => v.trunc(),
        RoundingMode::Stochastic { seed } => {
            let f = v.floor();
            if v - f > stochastic_uniform(seed, index) as f64 {
                f + 1.0
            } else {
                f
            }
        }
    }
}

/// The uniform random number in `[0, 1)` (a multiple of 2^-24) that stochastic rounding uses for
/// element `index` under `seed`: the top 24 bits of SplitMix64's output for the state
/// `seed + (index + 1) * 0x9E3779B97F4A7C15` (wrapping). A counter-based generator: any element's
/// number can be computed alone, so threads and SIMD lanes need no shared state.
#[inline]
pub fn stochastic_uniform(seed: u64, index: u64) -> f32 {
    let z = crate::rng::mix64(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(crate::rng::GAMMA)));
    (z >> 40) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoundingMode::*;

    fn r(v: f32, m: RoundingMode) -> f32 {
        round_f32(v, m, 0)
    }

    #[test]
    fn ties() {
        let cases: [(f32, [f32; 5]); 8] = [
            // v, [even, away, up, floor, trunc]
            (0.5, [0.0, 1.0, 1.0, 0.0, 0.0]),
            (1.5, [2.0, 2.0, 2.0, 1.0, 1.0]),
            (2.5, [2.0, 3.0, 3.0, 2.0, 2.0]),
            (-0.5, [0.0, -1.0, 0.0, -1.0, 0.0]),
            (-1.5, [-2.0, -2.0, -1.0, -2.0, -1.0]),
            (-2.5, [-2.0, -3.0, -2.0, -3.0, -2.0]),
            (2.4999998, [2.0, 2.0, 2.0, 2.0, 2.0]),
            (-2.5000002, [-3.0, -3.0, -3.0, -3.0, -2.0]),
        ];
        for (v, want) in cases {
            for (m, w) in RoundingMode::DETERMINISTIC.iter().zip(want) {
                assert_eq!(r(v, *m), w, "{v} under {m:?}");
            }
        }
    }

    #[test]
    fn just_below_half_is_not_a_tie() {
        // floor(v + 0.5) gets this wrong: 0.49999997 + 0.5 rounds to 1.0 in f32.
        let v = 0.49999997f32;
        for m in [HalfToEven, HalfAwayFromZero, HalfUp] {
            assert_eq!(r(v, m), 0.0, "{m:?}");
            assert_eq!(r(-v, m), 0.0, "{m:?}");
        }
    }

    #[test]
    fn large_and_special_values() {
        for m in RoundingMode::DETERMINISTIC {
            for v in [8388608.0f32, 16777216.0, -16777218.0, 3.0e38, -3.0e38] {
                assert_eq!(r(v, m), v);
            }
            assert!(r(f32::NAN, m).is_nan());
            assert_eq!(r(f32::INFINITY, m), f32::INFINITY);
            assert_eq!(r(f32::NEG_INFINITY, m), f32::NEG_INFINITY);
            assert_eq!(r(1e-45, m), 0.0);
        }
        // 8388607.5 is the largest f32 tie.
        assert_eq!(r(8388607.5, HalfToEven), 8388608.0);
        assert_eq!(r(8388606.5, HalfToEven), 8388606.0);
        assert_eq!(r(8388607.5, HalfAwayFromZero), 8388608.0);
    }

    #[test]
    fn matches_std_round() {
        // Walk f32 bit patterns around many ties and compare with std's half-away `round`.
        for k in -300i32..300 {
            let tie = k as f32 + 0.5;
            let mut v = tie;
            for _ in 0..4 {
                v = f32::from_bits(v.to_bits() - 1);
            }
            for _ in 0..9 {
                assert_eq!(r(v, HalfAwayFromZero), v.round(), "{v}");
                assert_eq!(r(v, HalfToEven), v.round_ties_even(), "{v}");
                assert_eq!(r(v, HalfUp), (v as f64 + 0.5).floor() as f32, "{v}");
                v = f32::from_bits(v.to_bits() + 1);
            }
        }
    }

    #[test]
    fn stochastic_is_reproducible_and_unbiased() {
        let m = Stochastic { seed: 42 };
        let v = 3.25f32;
        let ups = (0..100_000u64).filter(|&i| round_f32(v, m, i) == 4.0).count();
        assert!((ups as f64 / 100_000.0 - 0.25).abs() < 0.01, "{ups}");
        for i in 0..100 {
            assert_eq!(round_f32(v, m, i), round_f32(v, m, i));
            let x = round_f32(v, m, i);
            assert!(x == 3.0 || x == 4.0);
        }
        assert_eq!(round_f32(7.0, m, 5), 7.0);
        assert!(stochastic_uniform(1, 2) < 1.0);
    }

    #[test]
    fn names_round_trip() {
        for m in RoundingMode::DETERMINISTIC {
            assert_eq!(RoundingMode::parse(m.name()), Some(m));
        }
        assert_eq!(RoundingMode::parse("stochastic:7"), Some(Stochastic { seed: 7 }));
        assert_eq!(RoundingMode::parse("bogus"), None);
    }
}
