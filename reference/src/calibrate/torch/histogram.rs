//! `torch.ao.quantization.HistogramObserver` (PyTorch 2.11), exactly.

use super::{check_same_config, empty_observer_qparams, per_tensor_params, unobserved};
use crate::aten::{self, Linspace};
use crate::calibrate::{NonFinitePolicy, Observer, Range};
use crate::choose_params::{torch_observer_qparams, ScaleZeroPoint, TorchObserverConfig};
use crate::error::{QuantError, Result};

/// PyTorch's default number of histogram bins.
pub const DEFAULT_BINS: usize = 2048;
/// Each source bin is split into this many sub-bins when a histogram is re-binned onto a wider
/// range (`HistogramObserver.upsample_rate`, 16 in PyTorch 2.11; it was 128 before).
pub const UPSAMPLE_RATE: usize = 16;
/// The largest number of bins accepted: the range search takes up to `1 / SEARCH_STEP` steps,
/// each over every bin, so its work grows with the bins (2^14 bins: ~2^30 bin visits at worst;
/// PyTorch accepts more and can take hours).
pub const MAX_BINS: usize = 1 << 14;
/// The quantile step of the range search (`stepsize = 1e-5`).
pub const SEARCH_STEP: f64 = 1e-5;

/// PyTorch's `HistogramObserver`: a running histogram of `bins` equal bins over the observed
/// `[min, max]`, and at the end an L2 search for the clipping range.
///
/// **Observing** a batch (after the [`NonFinitePolicy`]; an empty batch changes nothing):
///
/// ```text
/// first batch:      [min, max] = aminmax(x);  hist = histc(x, bins, min, max)
/// later batches:    [lo, hi] = [min(min, min(x)), max(max, max(x))]
///                   h = histc(x, bins, lo, hi)
///                   same range:          hist = hist + h
///                   min == max before:   hist = h + histc([min], bins, lo, hi) * sum(hist)
///                   otherwise:           hist = h + upscale(hist, [min, max] -> [lo, hi])
/// upscale: every bin split into 16 equal parts of mass hist[i] / 16; each part goes to the
///          new bin whose edges (linspace(lo, hi, bins + 1)) contain its mid-point
///          (bucketize right=True, clamped), added in index order in f32 (bincount)
/// ```
///
/// **Finishing** (`_non_linear_param_search`): with `cSum = cumsum(hist)`, `total = sum(hist)`,
/// quantile bounds `alpha = 0, beta = 1` step by `1e-5`; each step moves the start bin (if the
/// left quantile moved it further than the right one moves the end bin) or the end bin, and
/// computes the L2 quantization error of `[start, end]` mapped onto `2^bits` destination bins
/// (for each source bin: the density integral `density * (end^3 - begin^3) / 3` over the parts of
/// the bin in its first and last destination bins plus the whole destination bins between). The
/// search stops at the first move that raises the error; the range is
/// `[min + w * start, min + w * (end + 1)]` with `w = (max - min) / bins`, and the scale and zero
/// point follow [`torch_observer_qparams`]. Every step is computed in PyTorch's precision: f32
/// tensors, f64 Python scalars (see the private `aten` module for the kernels).
///
/// **Non-finite values.** PyTorch drops infinities with a warning ("torch.inf detected in input
/// tensor, ignoring input") and fails inside `histc` on NaN ("range of [nan, nan] is not finite").
/// Here [`NonFinitePolicy::Error`] (the default) rejects both; [`NonFinitePolicy::Skip`] drops
/// both, which is PyTorch's behaviour for infinities.
///
/// **Degenerate input.** All zeros or a single repeated value gives `min == max`: the histogram
/// puts everything in the middle bin of `[v - 1, v + 1]` (histc's widening), the search keeps
/// `[v, v]`, and the parameters are those of the range `[v, v]` (PyTorch issue #39239 was a crash
/// here). The search does at most `2 / 1e-5` steps, each `O(log bins)` plus at most `bins` error
/// evaluations of `O(bins)` in all, and memory is `O(bins)` (re-binning streams the 16 sub-bins
/// instead of materialising them), whatever the data's range (PyTorch issue #122659 was an
/// out-of-memory on a tiny range under the older, range-dependent upsampling). A range whose
/// width overflows f32 (`max - min = inf`, PyTorch issue #100051), or a single value `±f32::MAX`
/// (whose widened histc range overflows: PyTorch raises), is rejected with
/// [`QuantError::InvalidRange`] before the state changes: PyTorch's arithmetic has no finite
/// answer there.
///
/// **Merging** is not sequential observation: once a batch is binned its values are gone, and a
/// later batch that widens the range re-bins the old histogram (PyTorch's own forward does
/// exactly this between batches). [`Observer::merge`] therefore treats the other observer's
/// histogram like a batch already binned: both histograms are carried onto the union range
/// `R = [min(a, b), max(a, b)]` by the rule above (as is if the range already is `R`; by
/// `histc` of the single point if the range is one value; by `upscale` otherwise) and added. So:
/// * the merged `[min, max]` is the union, exactly, and the mass (the sum of the bins) is kept
///   up to the f32 rounding of the re-binned sums;
/// * merging is commutative (bit for bit) and an empty observer is its identity;
/// * when both observers cover the same range `R` and the other one's first batch already
///   spanned `R` (so it never re-binned), the merged histogram is the bin-wise sum, bit for bit
///   the state of observing this observer's batches and then the other's;
/// * otherwise a histogram is re-binned once more than under sequential observation (its mass
///   spread uniformly over each source bin, then assigned by sub-bin mid-points, as PyTorch does
///   between batches), so the histogram, and possibly the parameters, can differ from
///   sequential observation.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramObserver {
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    bins: usize,
    /// `+inf` / `-inf` until the first non-empty batch.
    min: f32,
    max: f32,
    hist: Vec<f32>,
}

impl HistogramObserver {
    /// A histogram observer with `bins` bins (PyTorch's default is [`DEFAULT_BINS`]); fails when
    /// `bins` is 0 or above [`MAX_BINS`].
    pub fn new(cfg: TorchObserverConfig, bins: usize) -> Result<HistogramObserver> {
        crate::error::check_count("histogram bins", bins, MAX_BINS)?;
        cfg.code_range()?;
        Ok(HistogramObserver {
            cfg,
            policy: NonFinitePolicy::Error,
            bins,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: vec![0.0; bins],
        })
    }

    /// Sets what happens to NaN and infinities.
    pub fn with_policy(mut self, policy: NonFinitePolicy) -> HistogramObserver {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &TorchObserverConfig {
        &self.cfg
    }

    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The destination bins of the error model: `2^bits` of the code type (256 for 8 bits, with
    /// or without `reduce_range`, as PyTorch's `2 ** torch.iinfo(dtype).bits`).
    pub fn dst_nbins(&self) -> usize {
        1usize << self.cfg.dtype.bits()
    }

    /// The observed minimum (PyTorch's `min_val` buffer; `+inf` before any data).
    pub fn min_val(&self) -> f32 {
        self.min
    }

    /// The observed maximum (`max_val`; `-inf` before any data).
    pub fn max_val(&self) -> f32 {
        self.max
    }

    /// The running histogram over `[min_val, max_val]`.
    pub fn histogram(&self) -> &[f32] {
        &self.hist
    }

    pub fn is_empty(&self) -> bool {
        self.min == f32::INFINITY && self.max == f32::NEG_INFINITY
    }

    /// The clipping range the search chooses (`_non_linear_param_search`); `Ok(None)` before
    /// data. Where the search's f32 error estimate overflows (data ranges beyond about 1e12,
    /// where the cubes of bin widths leave f32, or bins of subnormal width), PyTorch computes the
    /// same infinite values and then keeps a range that can exclude most of the data; quantproof
    /// returns the observed `[min, max]` instead (a deliberate deviation from PyTorch).
    pub fn searched_range(&self) -> Result<Option<(f32, f32)>> {
        if self.is_empty() {
            Ok(None)
        } else {
            self.search().map(Some)
        }
    }

    /// `calculate_qparams()`: PyTorch's default `s = 1, z = 0` before any data, otherwise
    /// [`torch_observer_qparams`] of the searched range.
    pub fn scale_zero_point(&self) -> Result<ScaleZeroPoint> {
        match self.searched_range()? {
            None => Ok(empty_observer_qparams()),
            Some((lo, hi)) => torch_observer_qparams(lo, hi, &self.cfg),
        }
    }

    /// `calculate_qparams()` as ready per-tensor parameters, with the code range PyTorch
    /// quantizes with (for a symmetric `quint8` scheme with `reduce_range`, `[0, 255]`: see the
    /// [`super`] module docs).
    pub fn quant_params(&self) -> Result<crate::QuantParams> {
        per_tensor_params(&self.cfg, self.scale_zero_point()?)
    }

    fn check_width(lo: f32, hi: f32) -> Result<()> {
        if (hi - lo).is_finite() {
            Ok(())
        } else {
            Err(QuantError::InvalidRange { min: lo as f64, max: hi as f64 })
        }
    }

    /// Carries this observer's histogram onto `[lo, hi]`, which contains `[min, max]`
    /// (`_combine_histograms` less the final addition), added into `out`.
    fn carry_into(&self, lo: f32, hi: f32, out: &mut [f32]) {
        if self.is_empty() {
            return;
        }
        if self.min == lo && self.max == hi {
            for (o, h) in out.iter_mut().zip(&self.hist) {
                *o += *h;
            }
        } else if self.min == self.max {
            let mass = aten::cascade_sum(&self.hist, aten::SUM_LANES);
            let mut one = vec![0.0f32; self.bins];
            aten::histc_into(&[self.min], lo, hi, &mut one);
            for (o, h) in out.iter_mut().zip(one) {
                *o += h * mass;
            }
        } else {
            let up = upscale(&self.hist, self.min, self.max, lo, hi);
            for (o, h) in out.iter_mut().zip(up) {
                *o += h;
            }
        }
    }

    /// `_non_linear_param_search`.
    fn search(&self) -> Result<(f32, f32)> {
        let bins = self.bins;
        let bin_width = (self.max - self.min) / bins as f32;
        let total = aten::cascade_sum(&self.hist, aten::SUM_LANES) as f64;
        let csum = aten::cumsum(&self.hist);
        let mut alpha = 0.0f64;
        let mut beta = 1.0f64;
        let mut start = 0usize;
        let mut end = bins - 1;
        let mut norm_min = f64::INFINITY;
        let mut scratch = vec![0.0f32; bins];
        while alpha < beta {
            let next_alpha = alpha + SEARCH_STEP;
            let next_beta = beta - SEARCH_STEP;
            // `cSum[l] < next_alpha * total`: the Python float is rounded to f32 for the compare.
            let (ta, tb) = ((next_alpha * total) as f32, (next_beta * total) as f32);
            // while l < end and cSum[l] < ta: l += 1   (cSum is non-decreasing: bisect)
            let l = start + csum[start..end].partition_point(|&c| c < ta);
            // while r > start and cSum[r] > tb: r -= 1
            let r = start + csum[start + 1..=end].partition_point(|&c| c <= tb);
            let (mut next_start, mut next_end) = (start, end);
            if l - start > end - r {
                next_start = l;
                alpha = next_alpha;
            } else {
                next_end = r;
                beta = next_beta;
            }
            if next_start == start && next_end == end {
                continue;
            }
            let norm = self.quantization_error(next_start, next_end, &mut scratch);
            if !norm.is_finite() {
                // The f32 error estimate overflowed (a data range beyond ~1e12, or bins of
                // subnormal width): every later comparison is meaningless and PyTorch goes on
                // shrinking the range until it excludes most of the data. quantproof keeps the
                // observed range instead (what MinMaxObserver gives): a documented deviation.
                return Ok((self.min, self.max));
            }
            if norm > norm_min {
                break;
            }
            norm_min = norm;
            start = next_start;
            end = next_end;
        }
        let new_min = self.min + bin_width * start as f32;
        let new_max = self.min + bin_width * (end + 1) as f32;
        Ok((new_min, new_max))
    }

    /// `_compute_quantization_error(start, end)`, as PyTorch evaluates it: `bin_width` and
    /// `dst_bin_width` are Python floats (f64), rounded to f32 where they meet a tensor; every
    /// tensor operation is one f32 operation; the sum is ATen's cascade sum.
    fn quantization_error(&self, start: usize, end: usize, norm: &mut [f32]) -> f64 {
        let bins = self.bins;
        let dst_nbins = self.dst_nbins();
        let bw64 = (self.max as f64 - self.min as f64) / bins as f64;
        let dbw64 = bw64 * (end - start + 1) as f64 / dst_nbins as f64;
        if dbw64 == 0.0 {
            return 0.0;
        }
        let bw = bw64 as f32;
        let dbw = dbw64 as f32;
        let half = (dbw64 / 2.0) as f32;
        let neg_half = (-dbw64 / 2.0) as f32;
        let top = (dst_nbins - 1) as f32;
        let cube = |v: f32| v * v * v;
        // `_get_norm(tensor(-w/2), tensor(w/2), density)` before the multiplication by density.
        let whole = (cube(half) - cube(neg_half)) / 3.0;
        for (k, out) in norm.iter_mut().enumerate() {
            let begin = (k as i64 - start as i64) as f32 * bw;
            let end_ = begin + bw;
            let dst_begin = aten::clamp(aten::div_floor(begin, dbw), 0.0, top);
            let dst_begin_center = (dst_begin + 0.5) * dbw;
            let dst_end = aten::clamp(aten::div_floor(end_, dbw), 0.0, top);
            let density = self.hist[k] / bw;
            let delta_begin = begin - dst_begin_center;
            let mut n = 0.0f32 + density * ((cube(half) - cube(delta_begin)) / 3.0);
            n += (dst_end - dst_begin - 1.0) * (density * whole);
            let dst_end_center = dst_end * dbw + half;
            let delta_end = end_ - dst_end_center;
            n += density * ((cube(delta_end) - cube(neg_half)) / 3.0);
            *out = n;
        }
        aten::cascade_sum(norm, aten::SUM_LANES) as f64
    }
}

/// `_upscale_histogram(hist, orig_min, orig_max, lo, hi)`, streamed: the 16 sub-bins of each bin
/// are generated in index order and added to their destination bin in f32, as `bincount` does.
fn upscale(hist: &[f32], orig_min: f32, orig_max: f32, lo: f32, hi: f32) -> Vec<f32> {
    let bins = hist.len();
    let fine = bins * UPSAMPLE_RATE;
    let bin_size = (orig_max - orig_min) / fine as f32;
    let half_bin = 0.5f32 * bin_size;
    let mids = Linspace::new(orig_min, orig_max, fine + 1);
    let edges = Linspace::new(lo, hi, bins + 1);
    let boundaries: Vec<f32> = (0..=bins).map(|i| edges.at(i)).collect();
    let mut out = vec![0.0f32; bins];
    for i in 0..fine {
        let mid = mids.at(i) + half_bin;
        let bucket = (aten::bucketize_right(mid, &boundaries) as i64 - 1).clamp(0, bins as i64 - 1) as usize;
        out[bucket] += hist[i / UPSAMPLE_RATE] / UPSAMPLE_RATE as f32;
    }
    out
}

impl Observer for HistogramObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        if x.is_empty() {
            return Ok(());
        }
        let x = self.policy.filter(x)?;
        if x.is_empty() {
            return Ok(());
        }
        let (x_min, x_max) = aten::aminmax(&x);
        if self.is_empty() {
            Self::check_width(x_min, x_max)?;
            let mut hist = vec![0.0f32; self.bins];
            if !aten::histc_into(&x, x_min, x_max, &mut hist) {
                return Err(QuantError::InvalidRange { min: x_min as f64, max: x_max as f64 });
            }
            self.min = x_min;
            self.max = x_max;
            self.hist = hist;
            return Ok(());
        }
        let lo = if x_min < self.min { x_min } else { self.min };
        let hi = if x_max > self.max { x_max } else { self.max };
        Self::check_width(lo, hi)?;
        let mut update = vec![0.0f32; self.bins];
        if !aten::histc_into(&x, lo, hi, &mut update) {
            return Err(QuantError::InvalidRange { min: lo as f64, max: hi as f64 });
        }
        self.carry_into(lo, hi, &mut update);
        self.hist = update;
        self.min = lo;
        self.max = hi;
        Ok(())
    }

    /// See the type's documentation: both histograms are carried onto the union range as PyTorch
    /// carries its histogram between batches, then added; bit-exact with sequential observation
    /// only when both cover the same range and the other never re-binned.
    fn merge(&mut self, other: &HistogramObserver) -> Result<()> {
        check_same_config("HistogramObserver", (&self.cfg, self.bins) == (&other.cfg, other.bins))?;
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() {
            self.min = other.min;
            self.max = other.max;
            self.hist.clone_from(&other.hist);
            return Ok(());
        }
        let lo = if other.min < self.min { other.min } else { self.min };
        let hi = if other.max > self.max { other.max } else { self.max };
        Self::check_width(lo, hi)?;
        let mut merged = vec![0.0f32; self.bins];
        other.carry_into(lo, hi, &mut merged);
        self.carry_into(lo, hi, &mut merged);
        self.hist = merged;
        self.min = lo;
        self.max = hi;
        Ok(())
    }

    /// The searched range (what the parameters are computed from); an error before any data.
    fn range(&self) -> Result<Range> {
        match self.searched_range()? {
            None => Err(unobserved("HistogramObserver")),
            Some((lo, hi)) => Range::new(lo, hi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::QType;
    use crate::scheme::RangeReduction;
    use crate::scheme::Symmetry;

    /// PyTorch's loop, transcribed literally (linear scans over `cSum`).
    fn search_linear(o: &HistogramObserver) -> (f32, f32) {
        let bins = o.bins;
        let bin_width = (o.max - o.min) / bins as f32;
        let total = aten::cascade_sum(&o.hist, aten::SUM_LANES) as f64;
        let csum = aten::cumsum(&o.hist);
        let (mut alpha, mut beta) = (0.0f64, 1.0f64);
        let (mut start, mut end) = (0usize, bins - 1);
        let mut norm_min = f64::INFINITY;
        let mut scratch = vec![0.0f32; bins];
        while alpha < beta {
            let next_alpha = alpha + SEARCH_STEP;
            let next_beta = beta - SEARCH_STEP;
            let mut l = start;
            let mut r = end;
            while l < end && csum[l] < (next_alpha * total) as f32 {
                l += 1;
            }
            while r > start && csum[r] > (next_beta * total) as f32 {
                r -= 1;
            }
            let (mut ns, mut ne) = (start, end);
            if l - start > end - r {
                ns = l;
                alpha = next_alpha;
            } else {
                ne = r;
                beta = next_beta;
            }
            if ns == start && ne == end {
                continue;
            }
            let norm = o.quantization_error(ns, ne, &mut scratch);
            if norm > norm_min {
                break;
            }
            norm_min = norm;
            start = ns;
            end = ne;
        }
        (o.min + bin_width * start as f32, o.min + bin_width * (end + 1) as f32)
    }

    #[test]
    fn bisection_search_equals_the_literal_loop() {
        let mut rng = crate::rng::Rng::new(0x2545F4914F6CDD1D);
        let mut next = move || rng.unit() as f32;
        for case in 0..24 {
            let bins = [2048, 100, 7, 1][case % 4];
            let mut o = HistogramObserver::new(
                TorchObserverConfig::new(QType::U8, Symmetry::symmetric_if(case % 3 == 0), RangeReduction::Full),
                bins,
            )
            .unwrap();
            for b in 0..1 + case % 3 {
                let n = 10 + (next() * 300.0) as usize;
                let spread = 1.0 + b as f32 * next() * 5.0;
                let x: Vec<f32> = (0..n)
                    .map(|i| {
                        let u = next() - 0.5;
                        if i % 50 == 0 {
                            u * 100.0 * spread
                        } else if case % 2 == 0 {
                            u * u * u * spread
                        } else {
                            (u * 8.0).round() * spread
                        }
                    })
                    .collect();
                o.observe(&x).unwrap();
            }
            assert_eq!(o.search().unwrap(), search_linear(&o), "case {case}");
        }
    }

    #[test]
    fn upscale_keeps_mass_and_identity() {
        let hist: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32).collect();
        let same = upscale(&hist, -1.0, 3.0, -1.0, 3.0);
        // Onto the same range every sub-bin's mid-point stays in its own bin.
        assert_eq!(same, hist);
        let wide = upscale(&hist, -1.0, 3.0, -5.0, 3.0);
        assert_eq!(wide.iter().sum::<f32>(), hist.iter().sum::<f32>());
        assert!(wide[..32].iter().all(|&v| v == 0.0));
    }
}
