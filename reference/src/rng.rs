//! SplitMix64: the one seeded generator of the workspace.
//!
//! Stochastic rounding ([`crate::rounding::stochastic_uniform`]) draws from it as a counter-based
//! generator (element `i`'s number from `seed` and `i` alone), and every test, benchmark and report
//! in the workspace draws its data from [`Rng`], so a failing case or a reported figure is
//! reproduced from its seed alone. SplitMix64 (Steele, Lea and Flood, 2014) passes BigCrush,
//! needs no dependency and costs one addition and a 64-bit finalizer per draw; it is not a
//! cryptographic generator.
//!
//! ```
//! use quantproof_reference::rng::Rng;
//! let (mut a, mut b) = (Rng::new(7), Rng::new(7));
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!((0.0..1.0).contains(&a.unit()));
//! ```

/// The golden-ratio increment of the SplitMix64 state.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit finalizer (Stafford's "Mix13").
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: `state += GAMMA`, output `mix64(state)`.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator for a sub-stream: `seed` mixed with `salt` (for example [`hash_str`] of a
    /// test's name), so that two tests with one seed draw different data.
    pub fn derived(seed: u64, salt: u64) -> Rng {
        let mut r = Rng::new(seed ^ salt.rotate_left(17));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// Uniform in `0..n` by the multiply-shift method (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`; `lo` when `hi <= lo`. Exact over the whole `i64` range.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo);
        let off = if span == u64::MAX { self.next_u64() } else { self.below(span + 1) };
        lo.wrapping_add(off as i64)
    }

    /// Uniform in `lo..=hi`; `lo` when `hi <= lo`.
    pub fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64;
        let off = if span == u64::MAX { self.next_u64() } else { self.below(span + 1) };
        lo + off as usize
    }

    /// Uniform in `[0, 1)`: 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1)`, never exactly 0 or 1 (53 random bits, centred in their cell): the
    /// argument logarithms need in [`Rng::normal`] and [`Rng::laplace`].
    pub fn open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of `xs`, uniformly (`T::default()` for an empty slice).
    pub fn pick<T: Copy + Default>(&mut self, xs: &[T]) -> T {
        if xs.is_empty() {
            return T::default();
        }
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn with the given weights (the last index when they are all zero; 0 for an
    /// empty list).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let mut t = self.below(total.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if t < w as u64 {
                return i;
            }
            t -= w as u64;
        }
        weights.len().saturating_sub(1)
    }

    /// Standard normal (Box-Muller on two [`Rng::open_unit`] draws).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.open_unit(), self.open_unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Laplace with scale `b` and mean 0 (inverse CDF of one [`Rng::open_unit`] draw): heavier
    /// tails than the normal, like trained weights.
    pub fn laplace(&mut self, b: f64) -> f64 {
        let u = self.open_unit() - 0.5;
        -b * u.signum() * (1.0 - 2.0 * u.abs()).ln()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// FNV-1a of a string: a stable salt for [`Rng::derived`] (std's hasher is randomly keyed).
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let v = a.range_i64(-3, 5);
            b.range_i64(-3, 5);
            assert!((-3..=5).contains(&v));
            let u = a.unit();
            b.unit();
            assert!((0.0..1.0).contains(&u));
            let o = a.open_unit();
            b.open_unit();
            assert!(o > 0.0 && o < 1.0);
        }
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[a.weighted(&[1, 0, 3, 1])] = true;
        }
        assert_eq!(seen, [true, false, true, true]);
        assert_eq!(a.pick::<u8>(&[]), 0);
        let full = a.range_i64(i64::MIN, i64::MAX);
        let _ = full;
        assert_eq!(a.range_usize(5, 5), 5);
        assert_ne!(hash_str("quantize_i8"), hash_str("quantize_u8"));
    }

    #[test]
    fn roughly_normal_and_laplace() {
        let mut r = Rng::new(1);
        let n = 100_000;
        let a: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = a.iter().sum::<f64>() / n as f64;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let mean_abs = (0..n).map(|_| r.laplace(2.0).abs()).sum::<f64>() / n as f64;
        assert!((mean_abs - 2.0).abs() < 0.05, "{mean_abs}");
    }
}
