//! A small counter-free generator (SplitMix64) for reproducible test inputs.
//!
//! The equivalence runner derives every input of a case from one `u64` seed, so a failing case is
//! reproduced by its seed alone (the proptest regression files store exactly that). SplitMix64 is
//! enough for test data: it passes BigCrush, needs no dependency and is one line per draw.

/// SplitMix64: `state += 0x9E3779B97F4A7C15`, then a 64-bit finalizer.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator for a sub-stream: `seed` mixed with `salt` (for example a descriptor name's hash).
    pub fn derived(seed: u64, salt: u64) -> Rng {
        let mut r = Rng::new(seed ^ salt.rotate_left(17));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`), by the multiply-shift method.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range_i64(lo as i64, hi as i64) as usize
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn with the given (non-negative, not all zero) weights.
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
        }
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[a.weighted(&[1, 0, 3, 1])] = true;
        }
        assert_eq!(seen, [true, false, true, true]);
        assert_ne!(hash_str("quantize_i8"), hash_str("quantize_u8"));
    }
}
