/*!
ONNX Runtime's `HistogramCollector` (entropy, percentile, distribution) on the fast kernels,
with results identical to `quantproof_reference::calibrate::onnxruntime`: the same thresholds,
bit for bit, and the same errors.

# What runs where

[`one_collect`] and [`compute`] are the twins of the reference's exact streaming collector
(`HistogramCollector::streaming` after a `RangePass`) and of its `compute`. For one `collect`
call (the golden vectors' and ONNX Runtime's usual case) they run the reference's algorithm:

1. a range pass: [`Engine::min_max`] per batch (threaded), plus [`Engine::abs_min`] for the
   `|x|` histogram of symmetric percentile; a batch with NaN or an infinity fails with the
   reference's own error (`NonFinitePolicy::Error`);
2. the bins the reference builds from that range (`UniformBins`, the reference's code), and one
   [`Engine::histogram`] pass (SIMD, threaded, numpy's rule: see [`crate::kernels::HistBins`]);
3. `compute_collection_result`: the entropy search below; percentile and distribution are
   `O(bins)` and run the reference's code on the fast histogram.

One `collect` call per batch re-bins every batch in ONNX Runtime's order-dependent way: the
reference's compatible collector with the ISA's histogram kernel plugged in as its `CountKernel`
([`count_kernel`], single-threaded), then the fast [`compute`].

The observed minimum and maximum feed the final clamp, and a zero extreme's sign can reach the
result (`lo = max(lo, min)` returns `min` itself). The reference keeps the first of equal values
in data order; SIMD reductions return either zero, so a zero extreme takes the sign of the first
zero in the data (a scan that stops at the first zero, run only then).

# The entropy search

ONNX Runtime's `get_entropy_threshold` tries every candidate `i` in
`num_quantized_bins / 2 ..= num_bins / 2` (961 for 2048 bins and 128 quantized bins), each an
independent computation over up to `num_bins + 1` bins, and keeps the first minimum of the KL
divergences. [`entropy_threshold`] computes each candidate's divergence with exactly the
reference's operations in the reference's order, so every divergence has the reference's bits,
and the same `argmin` picks the same candidate:

* `P` and `Q` without rebuilding them bin by bin: prefix sums of the counts and of the non-zero
  bins give each candidate's outliers, group totals, non-zero counts per group and numbers of
  zero bins in `O(num_quantized_bins)`; the counts are converted to float32 once (`c as f32`,
  the conversion the reference's smoothing applies), and smoothing is then one add (or the
  constant `eps` for a zero bin) per bin, the two folded end bins patched;
* the float32 sums of the smoothed `P` and `Q` and of the KL terms use numpy's pairwise
  association ([`Kernels::pairwise_sum`], vectorized: numpy's eight accumulators are the eight
  lanes of one register);
* the KL terms ([`Kernels::kl_terms`]) divide and multiply in float32 as the reference does,
  and take the logarithm from a float64 polynomial rounded to float32 only where that rounding
  provably equals the reference's `(a as f64).ln() as f32` ([`crate::kernels::LN_GUARD_ULPS`]);
  other lanes call the reference's expression;
* candidates are split between threads by cost (candidate `i` costs about `2i + 1` bins); each
  thread writes its own divergences, and the first minimum over all of them is taken in order.

Anything the fast path does not reproduce by construction goes to the reference: a candidate
whose smoothing would fail (ONNX Runtime's assertions, `eps1 >= 1`) makes the whole search rerun
in the reference's code, which then reports the same error.

# Measured

AMD EPYC (Zen 5) virtual machine, 2 cores, about 3.9 GHz; 2M standard-normal float32 values,
2048 bins, 128 quantized bins; `quantproof bench calibrate-entropy --size 2M --bins 2048
--threads T --with-ort` (medians of 15 runs; ONNX Runtime 1.32's `HistogramCollector`, collect
plus compute, timed in the same run on the same data, found the same thresholds):

| implementation | 1 thread | 2 threads |
|---|---|---|
| ONNX Runtime (Python + numpy, single-threaded) | 364 ms | |
| AVX-512 | 2.8 ms (130x) | 1.7 ms (219x) |
| AVX2 | 4.1 ms (89x) | 2.4 ms (152x) |
| scalar kernels | 18.3 ms (20x) | 9.4 ms |
| the reference | 26 ms | |

Of the AVX-512 single-thread time, the histogram takes 0.65 ms (3.3 Gelem/s: one scalar
read-modify-write per element, see `Kernels::histogram`), the min/max pass 0.08 ms and the
entropy search about 1.9 ms: the KL terms about 45% (three float32 divisions and two float64
logarithms per 16 terms), building the smoothed `P` and `Q` about 35%, the pairwise sums 10%.
*/

// Negated comparisons (`!(a < b)`) are deliberate, as in the reference: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::isa::Isa;
use crate::kernels::{HistogramOf, Kernels};
use crate::ops::Engine;
use quantproof_reference::calibrate::numpy_hist::{self, CountKernel, UniformBins};
use quantproof_reference::calibrate::onnxruntime::{
    self as ort, CalibrateResult, CalibrateSpec, Method, OrtHistogram, SMOOTH_EPS,
};
use quantproof_reference::calibrate::NonFinitePolicy;
use quantproof_reference::error::{QuantError, Result};

/// Python's `max(a, b)`: `a` unless `b > a` (the reference's `py_max`).
fn py_max(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// The value `v` (a minimum or maximum found by a SIMD reduction) with the sign the reference
/// gives it: for a zero, the sign of the first zero in the data.
fn first_zero_sign(v: f32, batches: &[&[f32]]) -> f32 {
    if v != 0.0 {
        return v;
    }
    batches.iter().flat_map(|b| b.iter()).copied().find(|&e| e == 0.0).unwrap_or(v)
}

/// The histogram ONNX Runtime's single `collect` call builds for `batches` (what the reference's
/// streaming collector's `histogram()` returns).
pub fn one_collect(engine: &Engine, spec: &CalibrateSpec, batches: &[&[f32]]) -> Result<OrtHistogram> {
    spec.validate()?;
    let (mut min, mut max, mut abs_min, mut count) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, 0usize);
    for b in batches {
        let mm = engine.min_max(b);
        let finite = matches!(mm, Ok(m) if m.min.is_finite() && m.max.is_finite()) || b.is_empty();
        if !finite {
            // The reference's error: the first non-finite element of this batch.
            NonFinitePolicy::Error.filter(b)?;
            return Err(QuantError::NonFinite { what: "batch", index: 0, value: f64::NAN });
        }
        if let Ok(m) = mm {
            min = min.min(m.min);
            max = max.max(m.max);
        }
        if spec.absolute() && !b.is_empty() {
            abs_min = abs_min.min(engine.abs_min(b)?);
        }
        count += b.len();
    }
    let (min, max) =
        if count == 0 { (0.0, 0.0) } else { (first_zero_sign(min, batches), first_zero_sign(max, batches)) };
    let absolute = spec.absolute();
    let (bins, threshold) = if absolute {
        if count == 0 {
            (UniformBins::for_empty(spec.num_bins)?, 0.0)
        } else {
            // max |x| = max(|min|, |max|) exactly.
            (UniformBins::new(abs_min, py_max(min.abs(), max.abs()), spec.num_bins)?, 0.0)
        }
    } else {
        let t = py_max(min.abs(), max.abs());
        (UniformBins::new(-t, t, spec.num_bins)?, t)
    };
    let mut hist = vec![0u64; bins.len()];
    for b in batches {
        engine.histogram(b, &bins, if absolute { HistogramOf::Magnitudes } else { HistogramOf::Values }, &mut hist)?;
    }
    let edges = bins.edges().to_vec();
    Ok(if absolute {
        OrtHistogram::Absolute { hist, edges, min, max }
    } else {
        OrtHistogram::Value { hist, edges, min, max, threshold }
    })
}

/// Twin of `onnxruntime::compute` (`compute_collection_result`): the entropy search here,
/// percentile and distribution in the reference's code (they are `O(bins)`).
pub fn compute(engine: &Engine, spec: &CalibrateSpec, histogram: &OrtHistogram) -> Result<CalibrateResult> {
    if spec.method != Method::Entropy {
        return ort::compute(spec, histogram);
    }
    spec.validate()?;
    let (min, max) = histogram.min_max();
    let (lo, hi) = entropy_threshold(engine, histogram.hist(), histogram.edges(), spec.num_quantized_bins, min, max)?;
    Ok(CalibrateResult::Range { min: lo, max: hi })
}

fn count_with(isa: Isa, data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    match Engine::new(isa) {
        Ok(e) if e.histogram(data, bins, HistogramOf::Values, counts).is_ok() => {}
        _ => numpy_hist::accumulate(data, bins, counts),
    }
}

fn count_scalar(data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    count_with(Isa::Scalar, data, bins, counts)
}
fn count_avx2(data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    count_with(Isa::Avx2, data, bins, counts)
}
fn count_avx512(data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    count_with(Isa::Avx512, data, bins, counts)
}
fn count_neon(data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    count_with(Isa::Neon, data, bins, counts)
}

/// The ISA's histogram kernel as the reference's [`CountKernel`] (a plain function pointer).
pub fn count_kernel(isa: Isa) -> CountKernel {
    match isa {
        Isa::Avx2 => count_avx2,
        Isa::Avx512 => count_avx512,
        Isa::Neon => count_neon,
        _ => count_scalar,
    }
}

/// What every candidate shares: the counts as float32, prefix sums of the counts and of the
/// non-zero bins.
struct Shared<'a> {
    hist: &'a [u64],
    hf: Vec<f32>,
    prefix: Vec<u64>,
    nonzero: Vec<usize>,
    total: u64,
    nq: usize,
    zero: usize,
    half: usize,
}

/// One candidate's smoothing (`smooth_distribution`): `None` when every bin is zero, `Err(())`
/// where the reference's assertions fail (the caller then reruns the reference).
fn smoothing(len: usize, zeros: usize) -> std::result::Result<Option<f32>, ()> {
    let n_zeros = zeros as f32;
    let n_nonzeros = len as f32 - n_zeros;
    if n_nonzeros == 0.0 {
        return Ok(None);
    }
    let eps1 = SMOOTH_EPS * n_zeros as f64 / n_nonzeros as f64;
    if !(eps1 < 1.0) {
        return Err(());
    }
    let neg_eps1 = (-eps1) as f32;
    // Every non-zero count is at least 1 and `c as f32 + neg_eps1` grows with `c`: the smallest
    // smoothed non-zero bin is `1 + neg_eps1`. Zero bins get `eps > 0`.
    if !(1.0 + neg_eps1 > 0.0) {
        return Err(());
    }
    Ok(Some(neg_eps1))
}

/// Per-thread buffers.
struct Scratch {
    p: Vec<f32>,
    q: Vec<f32>,
    terms: Vec<f32>,
    groups: Vec<u64>,
}

impl Shared<'_> {
    /// The KL divergence of candidate `i` (the reference's loop body), or `Err(())` when its
    /// smoothing fails.
    fn divergence(&self, k: &dyn Kernels, i: usize, s: &mut Scratch) -> std::result::Result<f32, ()> {
        let (hist, n, nq) = (self.hist, self.hist.len(), self.nq);
        let start = self.zero - i;
        let end = (self.zero + i + 1).min(n);
        let len = end - start;
        let last = len - 1;
        // The folded end bins, exactly as the reference adds them (the same bin when len == 1).
        let mut ends = [hist[start], hist[end - 1]];
        if len == 1 {
            ends[0] += self.prefix[start] + (self.total - self.prefix[end]);
            ends[1] = ends[0];
        } else {
            ends[0] += self.prefix[start];
            ends[1] += self.total - self.prefix[end];
        }
        let pval = |j: usize| -> u64 {
            if j == 0 {
                ends[0]
            } else if j == last {
                ends[1]
            } else {
                hist[start + j]
            }
        };
        // Non-zero bins of P in [a, b): the slice's, corrected at the (one or two) end bins.
        let end_bins: &[usize] = if last == 0 { &[0] } else { &[0, last] };
        let p_nonzero_in = |a: usize, b: usize| -> usize {
            let mut c = self.nonzero[start + b] - self.nonzero[start + a];
            for &j in end_bins {
                if (a..b).contains(&j) {
                    c = c + (pval(j) != 0) as usize - (hist[start + j] != 0) as usize;
                }
            }
            c
        };
        let p_nonzero = p_nonzero_in(0, len);
        let p_smooth = smoothing(len, len - p_nonzero)?;

        // Q: group totals of the slice (without the outliers), expanded over the non-zero bins
        // of P as an int64 (truncated) division, written to every bin of the group.
        let merged = len / nq;
        let mut q_zeros = len - nq * merged;
        let eps = SMOOTH_EPS as f32;
        // The end bins' corrections to the non-zero count of the group holding them (as signed
        // adjustments to the slice's count).
        let fix = |j: usize| (pval(j) != 0) as isize - (hist[start + j] != 0) as isize;
        let group_of = |j: usize| if merged > 0 && j < nq * merged { j / merged } else { usize::MAX };
        let (g0, fix0) = (group_of(0), fix(0));
        let (gl, fixl) = if last == 0 { (usize::MAX, 0) } else { (group_of(last), fix(last)) };
        let q_values = &mut s.groups;
        q_values.clear();
        let (pre, nz) = (&self.prefix[start..], &self.nonzero[start..]);
        for g in 0..nq {
            let (a, b) = (g * merged, g * merged + merged);
            let mut total = pre[b] - pre[a];
            if g == nq - 1 {
                total += self.prefix[end] - pre[nq * merged];
            }
            let mut norm = (nz[b] - nz[a]) as isize;
            if g == g0 {
                norm += fix0;
            }
            if g == gl {
                norm += fixl;
            }
            // int64 array slot = float64 true division, truncated (the reference's expression).
            let v = if norm != 0 { (total as f64 / norm as f64) as u64 } else { 0 };
            if v == 0 {
                q_zeros += merged;
            }
            q_values.push(v);
        }
        let q_smooth = smoothing(len, q_zeros)?;
        let (Some(neg_p), Some(neg_q)) = (p_smooth, q_smooth) else {
            return Ok(f32::INFINITY);
        };

        // Smoothed P: `c as f32 + (c == 0 ? eps : neg_p)`; a zero count is the only one whose
        // float32 is 0, and `0 + eps` is `eps`. A select over float32 lanes (vectorizes).
        s.p.resize(len, 0.0);
        for (o, &f) in s.p.iter_mut().zip(&self.hf[start..end]) {
            *o = if f == 0.0 { eps } else { f + neg_p };
        }
        for j in [0, last] {
            let c = pval(j);
            s.p[j] = c as f32 + if c == 0 { eps } else { neg_p };
        }
        // Smoothed Q: one value per group, `eps` after the last group.
        s.q.resize(len, 0.0);
        for (g, &v) in q_values.iter().enumerate() {
            s.q[g * merged..g * merged + merged].fill(if v == 0 { eps } else { v as f32 + neg_q });
        }
        s.q[nq * merged..].fill(eps);

        let sp = k.pairwise_sum(&s.p);
        let sq = k.pairwise_sum(&s.q);
        s.terms.resize(len, 0.0);
        k.kl_terms(&s.p, &s.q, sp, sq, &mut s.terms);
        Ok(k.pairwise_sum(&s.terms))
    }
}

/// Twin of `onnxruntime::entropy_threshold` (`get_entropy_threshold`, see the module docs):
/// the clamped thresholds of the first candidate with the smallest KL divergence, on the engine's
/// ISA and threads.
pub fn entropy_threshold(
    engine: &Engine,
    hist: &[u64],
    edges: &[f32],
    num_quantized_bins: usize,
    min: f32,
    max: f32,
) -> Result<(f32, f32)> {
    let reference = || ort::entropy_threshold(hist, edges, num_quantized_bins, min, max);
    let n = hist.len();
    if edges.len() != n + 1 || num_quantized_bins == 0 || n == 0 || n / 2 < num_quantized_bins / 2 {
        // The reference's argument errors, in its order.
        return reference();
    }
    let mut prefix = Vec::with_capacity(n + 1);
    let mut nonzero = Vec::with_capacity(n + 1);
    prefix.push(0u64);
    nonzero.push(0usize);
    for &c in hist {
        prefix.push(prefix[prefix.len() - 1] + c);
        nonzero.push(nonzero[nonzero.len() - 1] + (c != 0) as usize);
    }
    let shared = Shared {
        hist,
        hf: hist.iter().map(|&c| c as f32).collect(),
        total: prefix[n],
        prefix,
        nonzero,
        nq: num_quantized_bins,
        zero: n / 2,
        half: num_quantized_bins / 2,
    };
    let candidates: Vec<usize> = (shared.half..=shared.zero).collect();
    let k = engine.kernels();
    let run = |cs: &[usize]| -> std::result::Result<Vec<f32>, ()> {
        let mut s = Scratch {
            p: Vec::with_capacity(n + 1),
            q: Vec::with_capacity(n + 1),
            terms: Vec::with_capacity(n + 1),
            groups: Vec::with_capacity(num_quantized_bins),
        };
        cs.iter().map(|&i| shared.divergence(k, i, &mut s)).collect()
    };
    // Split by cost (candidate i touches about 2i + 1 bins), contiguous, in order.
    let threads = engine.threads().min(candidates.len()).max(1);
    let work: usize = candidates.iter().map(|&i| 2 * i + 1).sum();
    let parts: Vec<&[usize]> = if threads == 1 || work < 1 << 14 {
        vec![&candidates[..]]
    } else {
        let mut parts = Vec::with_capacity(threads);
        let (mut begin, mut acc) = (0, 0);
        for (j, &i) in candidates.iter().enumerate() {
            acc += 2 * i + 1;
            if acc * threads >= work * (parts.len() + 1) && parts.len() + 1 < threads {
                parts.push(&candidates[begin..=j]);
                begin = j + 1;
            }
        }
        parts.push(&candidates[begin..]);
        parts
    };
    let results: Vec<std::result::Result<Vec<f32>, ()>> = if parts.len() == 1 {
        vec![run(parts[0])]
    } else {
        let run = &run;
        let tasks = parts
            .iter()
            .map(|&p| Box::new(move || run(p)) as Box<dyn FnOnce() -> std::result::Result<Vec<f32>, ()> + Send + '_>)
            .collect();
        crate::pool::run(parts.len(), tasks)
    };
    let mut divergences = Vec::with_capacity(candidates.len());
    for r in results {
        match r {
            Ok(d) => divergences.extend(d.into_iter().map(|v| v as f64)),
            Err(()) => return reference(),
        }
    }
    let best = numpy_hist::argmin_first(&divergences).unwrap_or(0);
    let i = candidates[best];
    let (mut lo, mut hi) = (edges[shared.zero - i], edges[(shared.zero + i + 1).min(n)]);
    if lo < min {
        lo = min;
    }
    if hi > max {
        hi = max;
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;
    use quantproof_reference::calibrate::onnxruntime::{HistogramCollector, RangePass};
    use quantproof_reference::calibrate::Observer;
    use quantproof_reference::rng::Rng;

    fn engines() -> Vec<Engine> {
        isa::available()
            .into_iter()
            .filter_map(|i| Engine::new(i).ok())
            .flat_map(|e| [e.with_threads(1), e.with_threads(2), e.with_threads(3)])
            .collect()
    }

    /// Histograms the entropy search meets rarely in real data: sparse, one full bin, all
    /// zero, huge counts, odd sizes, one or many quantized bins, and ones whose smoothing
    /// fails in some candidate (the reference's error must come back unchanged).
    #[test]
    fn entropy_threshold_equals_the_reference_on_unusual_histograms() {
        let mut rng = Rng::new(1);
        let mut cases: Vec<(Vec<u64>, usize)> = vec![
            (vec![0; 256], 128),
            (vec![5; 1], 1),
            (vec![0, 7], 2),
            ((0..129).map(|i| (i % 3) as u64).collect(), 128),
            ((0..300).map(|i| if i == 150 { 1_000_000 } else { 0 }).collect(), 16),
            ((0..2048).map(|i| if i % 97 == 0 { 1u64 << 40 } else { 0 }).collect(), 128),
            ((0..1000).map(|i| (i as u64 * 7919) % 13).collect(), 255),
        ];
        for n in [128usize, 131, 512, 777] {
            let h: Vec<u64> = (0..n).map(|_| if rng.next_u64() % 4 == 0 { 0 } else { rng.next_u64() % 1000 }).collect();
            cases.push((h, [1, 8, 128][(rng.next_u64() % 3) as usize].min(n)));
        }
        for (hist, nq) in cases {
            let n = hist.len();
            let edges = numpy_hist::linspace_f32(-3.0, 3.0, n + 1);
            for (min, max) in [(-3.0f32, 3.0f32), (-0.5, 2.0), (0.0, -0.0)] {
                let want = ort::entropy_threshold(&hist, &edges, nq, min, max);
                for e in engines() {
                    let got = entropy_threshold(&e, &hist, &edges, nq, min, max);
                    match (&got, &want) {
                        (Ok((a, b)), Ok((c, d))) => {
                            assert_eq!((a.to_bits(), b.to_bits()), (c.to_bits(), d.to_bits()), "{e:?} n {n} nq {nq}")
                        }
                        _ => assert_eq!(got, want, "{e:?} n {n} nq {nq}"),
                    }
                }
            }
        }
        // One non-zero bin among 10101: candidates wider than 10000 bins have eps1 >= 1 (ONNX
        // Runtime asserts) and the search must fail with the reference's error. The reference
        // first runs ~25M KL terms (0.2 s here, far longer under qemu: x86-64 only).
        if cfg!(target_arch = "x86_64") {
            let hist: Vec<u64> = (0..10101).map(|i| (i == 5050) as u64).collect();
            let edges = numpy_hist::linspace_f32(-3.0, 3.0, hist.len() + 1);
            let want = ort::entropy_threshold(&hist, &edges, 128, -3.0, 3.0);
            assert!(want.is_err());
            for i in isa::available() {
                let e = Engine::new(i).unwrap().with_threads(2);
                assert_eq!(entropy_threshold(&e, &hist, &edges, 128, -3.0, 3.0), want, "{e:?}");
            }
        }
        // Argument errors come from the reference itself.
        let e = Engine::auto();
        assert_eq!(
            entropy_threshold(&e, &[1, 2], &[0.0, 1.0], 1, 0.0, 1.0),
            ort::entropy_threshold(&[1, 2], &[0.0, 1.0], 1, 0.0, 1.0)
        );
        assert!(entropy_threshold(&e, &[1, 2], &[0.0, 1.0, 2.0], 4, 0.0, 2.0).is_err());
    }

    /// The first zero's sign reaches a clamped result: data whose minimum is a zero.
    #[test]
    fn zero_extremes_keep_the_references_sign() {
        let mut spec = CalibrateSpec::percentile();
        spec.num_bins = 128;
        spec.symmetry = quantproof_reference::scheme::Symmetry::Affine;
        for x in
            [vec![-0.0f32, 0.0, 1.0, 2.0, 3.0], vec![0.0, -0.0, 1.0, 2.0], vec![-1.0, -0.0, 0.0], vec![0.0; 70_000]]
        {
            for s in [spec, CalibrateSpec::entropy()] {
                let mut first = RangePass::new(NonFinitePolicy::Error);
                first.observe(&x).unwrap();
                let mut c = HistogramCollector::streaming(s, &first).unwrap();
                c.observe(&x).unwrap();
                let want = c.result().unwrap();
                for e in engines() {
                    let got = compute(&e, &s, &one_collect(&e, &s, &[&x]).unwrap()).unwrap();
                    let bits = |r: CalibrateResult| match r {
                        CalibrateResult::Range { min, max } => (min.to_bits(), max.to_bits()),
                        _ => (0, 0),
                    };
                    assert_eq!(bits(got), bits(want), "{e:?} {x:?}");
                }
            }
        }
    }
}
