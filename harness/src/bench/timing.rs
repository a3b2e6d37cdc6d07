//! Wall-clock timing: warm-up, then the median of repeated runs.
//!
//! The median, not the mean: on a shared machine a few runs are slowed by other processes, and
//! the median ignores them where the mean would not. The minimum and maximum are kept too, so a
//! reader can see the spread (a wide one means a noisy machine).

use std::time::Instant;

/// Statistics of repeated timings, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub reps: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The median of `samples` (the mean of the two middle values for an even count); `None` when
/// empty or when a sample is NaN.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Summarizes samples; `None` when empty or NaN.
pub fn summarize(samples: &[f64]) -> Option<Timing> {
    let median = median(samples)?;
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Timing { reps: samples.len(), median, min, max })
}

/// How many repetitions to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reps {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// Enough to fill about `budget_s` seconds, clamped to `min..=max`.
    Budget { budget_s: f64, min: usize, max: usize },
}

impl Reps {
    /// The repetition count when it is fixed (ONNX Runtime's runner takes it as is).
    pub fn fixed(self) -> Option<usize> {
        match self {
            Reps::Fixed(n) => Some(n),
            Reps::Budget { .. } => None,
        }
    }

    /// The default budget: a quarter of a second per measurement, 5 to 2000 repetitions.
    pub const DEFAULT: Reps = Reps::Budget { budget_s: 0.25, min: 5, max: 2000 };

    /// The repetition count for one run taking `one_run_s` seconds.
    pub fn count(self, one_run_s: f64) -> usize {
        match self {
            Reps::Fixed(n) => n.max(1),
            Reps::Budget { budget_s, min, max } => {
                let n = if one_run_s > 0.0 { (budget_s / one_run_s).ceil() } else { max as f64 };
                (n.max(min as f64).min(max as f64) as usize).max(1)
            }
        }
    }
}

/// Warm-up time before the timed runs: calls are repeated until this much has passed (or as many
/// calls as will be timed, at least one). One call was not enough where threads are used: the OS
/// places a pool's workers on CPUs within milliseconds, and the 2,000 runs of a 64K-element
/// two-thread QAdd (20 ms in all), timed right after one call, sometimes all ran while both
/// threads shared one CPU.
pub const WARM_UP_S: f64 = 0.05;

/// Times `f`: warm-up calls ([`WARM_UP_S`]; the last one, also timed, sizes the repetitions),
/// then `reps` timed calls. Stops at the first error.
pub fn measure<E>(reps: Reps, mut f: impl FnMut() -> Result<(), E>) -> Result<Timing, E> {
    let start = Instant::now();
    let mut warm_calls = 0;
    let (warm, n) = loop {
        let t = Instant::now();
        f()?;
        warm_calls += 1;
        let warm = t.elapsed().as_secs_f64();
        let n = reps.count(warm);
        if start.elapsed().as_secs_f64() >= WARM_UP_S || warm_calls >= n {
            break (warm, n);
        }
    };
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    // `samples` is non-empty (n >= 1) and holds no NaN (elapsed times are finite).
    Ok(summarize(&samples).unwrap_or(Timing { reps: 0, median: warm, min: warm, max: warm }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_cases() {
        let cases: &[(&[f64], Option<f64>)] = &[
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[3.0, 1.0], Some(2.0)),
            (&[5.0, 1.0, 3.0], Some(3.0)),
            (&[4.0, 1.0, 100.0, 2.0], Some(3.0)),
            (&[1.0, f64::NAN], None),
        ];
        for (s, want) in cases {
            assert_eq!(median(s), *want, "{s:?}");
        }
    }

    #[test]
    fn summary_spread() {
        let t = summarize(&[0.3, 0.1, 0.2]).unwrap();
        assert_eq!((t.reps, t.median, t.min, t.max), (3, 0.2, 0.1, 0.3));
    }

    #[test]
    fn rep_counts() {
        assert_eq!(Reps::Fixed(0).count(1.0), 1);
        assert_eq!(Reps::Fixed(7).count(1e-9), 7);
        let b = Reps::Budget { budget_s: 1.0, min: 3, max: 100 };
        assert_eq!(b.count(0.5), 3);
        assert_eq!(b.count(0.1), 10);
        assert_eq!(b.count(1e-9), 100);
        assert_eq!(b.count(0.0), 100);
    }

    #[test]
    fn measure_runs_warmup_plus_reps_and_stops_on_error() {
        let mut calls = 0;
        let t = measure::<()>(Reps::Fixed(4), || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        // Warm-up: as many calls as will be timed unless 50 ms pass first (these take no time).
        assert_eq!((calls, t.reps), (8, 4));
        let mut calls = 0;
        let t = measure::<()>(Reps::Fixed(3), || {
            calls += 1;
            std::thread::sleep(std::time::Duration::from_millis(30));
            Ok(())
        })
        .unwrap();
        assert_eq!((calls, t.reps), (2 + 3, 3), "two 30 ms warm-up calls pass the 50 ms");
        let mut calls = 0;
        let e = measure(Reps::Fixed(4), || {
            calls += 1;
            if calls == 3 {
                Err("boom")
            } else {
                Ok(())
            }
        });
        assert_eq!((e, calls), (Err("boom"), 3));
    }
}
