//! Deterministic test data: a small PRNG and the distributions benchmarks and reports use.
//!
//! Benchmarks run on realistic values, not zeros or ramps: normal-ish floats as activations and
//! weights are. Everything is seeded, so a report can be reproduced value for value.

pub use quantproof_reference::rng::Rng;

/// `n` standard-normal f32 values.
pub fn normal_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.normal() as f32).collect()
}

/// `rows x cols` normal values whose row `c` is scaled by a factor spread log-uniformly over
/// `[1/spread, spread]`: channels of different magnitudes, as trained weights have (the case
/// where per-channel parameters pay off).
pub fn channel_scaled_f32(rows: usize, cols: usize, spread: f64, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut x = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let f = spread.powf(2.0 * r.open_unit() - 1.0);
        for _ in 0..cols {
            x.push((r.normal() * f) as f32);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_roughly_normal() {
        let a = normal_f32(100_000, 7);
        assert_eq!(a, normal_f32(100_000, 7));
        assert_ne!(a, normal_f32(100_000, 8));
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let mut r = Rng::new(1);
        let l: Vec<f64> = (0..100_000).map(|_| r.laplace(2.0)).collect();
        let mean_abs = l.iter().map(|v| v.abs()).sum::<f64>() / l.len() as f64;
        assert!((mean_abs - 2.0).abs() < 0.05, "{mean_abs}");
    }

    #[test]
    fn channel_scales_differ() {
        let x = channel_scaled_f32(64, 1000, 4.0, 3);
        let rms: Vec<f64> =
            x.chunks(1000).map(|c| (c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 1000.0).sqrt()).collect();
        let (lo, hi) = rms.iter().fold((f64::MAX, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(lo > 0.2 && hi < 4.5 && hi / lo > 4.0, "{lo} {hi}");
    }
}
