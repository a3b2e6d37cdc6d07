//! numpy's histogram rule, and the few other numpy numerics that calibrators built on numpy
//! depend on, reproduced operation by operation (numpy 2.4, `numpy/lib/_histograms_impl.py`,
//! `numpy/_core/function_base.py`, the pairwise summation of `np.add.reduce`).
//!
//! ONNX Runtime's `HistogramCollector` and NVIDIA's pytorch-quantization (numpy path) build their
//! histograms with `np.histogram`. Matching their thresholds bit for bit needs numpy's exact rule,
//! not a naive `floor((x - lo) / width)`:
//!
//! ```text
//! np.histogram(a, bins=n, range=(first, last))        a: float32, first/last: float32
//!   if first == last: first -= 0.5; last += 0.5        (float32)
//!   edges = linspace(first, last, n + 1)               (float32, see linspace_f32)
//!   edges must be strictly increasing, else ValueError("Too many bins for data range")
//!   keep x with first <= x <= last                     (NaN and values outside are dropped)
//!   f = ((x - first) / (last - first)) * n             (float32, in this order)
//!   i = trunc(f); if i == n: i = n - 1
//!   if x < edges[i]:                       i -= 1      (one correction down,
//!   if x >= edges[i + 1] and i != n - 1:   i += 1       then one up)
//! ```
//!
//! The index arithmetic is within a fraction of a bin of the truth, so the two corrections make
//! the rule equal to "the bin `[edges[i], edges[i+1])` that holds `x`, the last bin closed" for
//! every float32 input; the tests prove it against a brute-force search on adversarial values
//! (values on edges, one ulp either side, the last edge).
//!
//! [`counts`] is the specification a fast (SIMD, threaded) builder must reproduce; a builder is
//! plugged into the calibrators as a [`CountKernel`].
//!
//! When the bins are given as an explicit array (ONNX Runtime after it grows its edges), numpy
//! sorts the data and uses `searchsorted`: bin `k` holds `edges[k] <= x < edges[k+1]`, the last bin
//! also holds `x == edges[last]`, anything else is dropped ([`counts_explicit`]).

// Negated comparisons (`!(a < b)`) are deliberate: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::error::{QuantError, Result};

/// A builder of bin counts: adds to `counts` the number of elements of `data` in each bin of
/// `bins`, exactly as [`accumulate`] does (which is the specification). `counts.len()` equals
/// `bins.len()`.
pub type CountKernel = fn(data: &[f32], bins: &UniformBins, counts: &mut [u64]);

/// `numpy.linspace(start, stop, num)` with float32 `start` and `stop` (numpy computes in the
/// dtype of its arguments):
///
/// ```text
/// div = num - 1; delta = stop - start; step = delta / div      (float32)
/// y[k] = k * step + start       (or (k / div) * delta + start when step == 0)
/// y[num - 1] = stop
/// ```
pub fn linspace_f32(start: f32, stop: f32, num: usize) -> Vec<f32> {
    linspace(start, stop, num)
}

/// `numpy.linspace(start, stop, num)` computed in float64 (Python number arguments).
pub fn linspace_f64(start: f64, stop: f64, num: usize) -> Vec<f64> {
    linspace(start, stop, num)
}

/// The float types `linspace` runs in (each in its own precision).
trait LinspaceFloat:
    Copy
    + PartialEq
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    fn from_usize(k: usize) -> Self;
}

impl LinspaceFloat for f32 {
    const ZERO: f32 = 0.0;
    fn from_usize(k: usize) -> f32 {
        k as f32
    }
}

impl LinspaceFloat for f64 {
    const ZERO: f64 = 0.0;
    fn from_usize(k: usize) -> f64 {
        k as f64
    }
}

fn linspace<T: LinspaceFloat>(start: T, stop: T, num: usize) -> Vec<T> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = T::from_usize(num - 1);
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<T> = (0..num)
        .map(|k| {
            let k = T::from_usize(k);
            if step == T::ZERO {
                (k / div) * delta + start
            } else {
                k * step + start
            }
        })
        .collect();
    y[num - 1] = stop;
    y
}

/// The float dtype of numpy scalars given to [`arange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    F32,
    F64,
}

/// `numpy.arange(start, stop, step)` with numpy float scalars of type `ty`.
///
/// numpy returns float64 whatever the scalars' type, but computes the length and the second
/// element with the scalars' own arithmetic, then fills the rest in float64:
///
/// ```text
/// len  = max(0, ceil((stop - start) / step))        (the subtraction and division in `ty`)
/// y[0] = start; y[1] = start + step                  (the addition in `ty`)
/// y[k] = y[0] + k * (y[1] - y[0])                    (float64, k >= 2)
/// ```
///
/// Fails when `step` is zero or the length is not finite (numpy raises).
pub fn arange(start: f64, stop: f64, step: f64, ty: ScalarType) -> Result<Vec<f64>> {
    let round = |v: f64| match ty {
        ScalarType::F32 => v as f32 as f64,
        ScalarType::F64 => v,
    };
    let span = round(stop - start);
    let ratio = round(span / step);
    if step == 0.0 || !ratio.is_finite() {
        return Err(QuantError::InvalidArgument {
            what: "arange",
            detail: format!("numpy.arange({start}, {stop}, {step}) has no finite length"),
        });
    }
    let len = ratio.ceil().max(0.0);
    if len > MAX_GROWTH as f64 {
        // Checked before the allocation: a histogram grown to cover a far wider batch (a range
        // that jumps by 10^4 over a fine bin width) would otherwise take gigabytes.
        return Err(QuantError::TooLarge {
            what: "histogram growth (new bins)",
            value: len as u128,
            limit: MAX_GROWTH as u128,
        });
    }
    let len = len as usize;
    let mut y = Vec::with_capacity(len);
    if len > 0 {
        y.push(start);
    }
    if len > 1 {
        let second = round(start + step);
        let delta = second - start;
        y.push(second);
        for k in 2..len {
            y.push(start + k as f64 * delta);
        }
    }
    Ok(y)
}

/// Uniform bins as `np.histogram(a, bins=n, range=(first, last))` builds them for float32 data
/// and float32 range ends: the two outer edges (after numpy's widening of an empty range) and the
/// `n + 1` float32 edges from [`linspace_f32`].
#[derive(Debug, Clone, PartialEq)]
pub struct UniformBins {
    first: f32,
    last: f32,
    edges: Vec<f32>,
}

impl UniformBins {
    /// The bins numpy uses for `range=(first, last)` (or, with `first = a.min()` and
    /// `last = a.max()`, for numpy's automatic range).
    ///
    /// `first == last` widens the range to `[first - 0.5, last + 0.5]` (float32). Fails, as numpy
    /// does, on zero bins, a non-finite or reversed range, and edges that are not strictly
    /// increasing ("Too many bins for data range"); also fails when `last - first` overflows
    /// float32 (numpy would silently produce NaN edges).
    pub fn new(first: f32, last: f32, n: usize) -> Result<UniformBins> {
        if n == 0 {
            return Err(QuantError::InvalidArgument { what: "bins", detail: "at least one bin is needed".into() });
        }
        super::check_range("histogram range", first, last)?;
        let (first, last) = if first == last { (first - 0.5, last + 0.5) } else { (first, last) };
        if !(last - first).is_finite() {
            return Err(QuantError::InvalidArgument {
                what: "histogram range",
                detail: format!("[{first}, {last}] is wider than the largest float32"),
            });
        }
        let edges = linspace_f32(first, last, n + 1);
        check_strictly_increasing(&edges, n)?;
        Ok(UniformBins { first, last, edges })
    }

    /// The bins of `np.histogram(a, bins=n)` for an empty float32 `a`: numpy's range `(0, 1)` is
    /// a pair of Python integers, so the edges are computed in float64 and rounded to float32.
    pub fn for_empty(n: usize) -> Result<UniformBins> {
        if n == 0 {
            return Err(QuantError::InvalidArgument { what: "bins", detail: "at least one bin is needed".into() });
        }
        let edges: Vec<f32> = linspace_f64(0.0, 1.0, n + 1).into_iter().map(|e| e as f32).collect();
        check_strictly_increasing(&edges, n)?;
        Ok(UniformBins { first: 0.0, last: 1.0, edges })
    }

    /// Number of bins.
    pub fn len(&self) -> usize {
        self.edges.len() - 1
    }

    /// Always false: there is at least one bin.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The lower outer edge used by the index arithmetic.
    pub fn first(&self) -> f32 {
        self.first
    }

    /// The upper outer edge used by the index arithmetic.
    pub fn last(&self) -> f32 {
        self.last
    }

    /// The `n + 1` edges.
    pub fn edges(&self) -> &[f32] {
        &self.edges
    }

    /// numpy's bin for `x` (see the module docs), `None` for NaN and values outside
    /// `[first, last]`.
    pub fn bin_index(&self, x: f32) -> Option<usize> {
        if !(x >= self.first && x <= self.last) {
            return None;
        }
        let n = self.len();
        let f = ((x - self.first) / (self.last - self.first)) * n as f32;
        // f is in [0, n]: x - first >= 0 and rounds no higher than last - first.
        let mut i = (f as usize).min(n);
        if i == n {
            i -= 1;
        }
        if x < self.edges[i] {
            // i > 0 here: x >= first = edges[0].
            i -= 1;
        }
        if x >= self.edges[i + 1] && i != n - 1 {
            i += 1;
        }
        Some(i)
    }
}

fn check_strictly_increasing<T: PartialOrd + Copy>(edges: &[T], n: usize) -> Result<()> {
    if edges.windows(2).any(|w| !(w[0] < w[1])) {
        return Err(QuantError::InvalidArgument {
            what: "histogram bins",
            detail: format!("too many bins for the data range: cannot create {n} finite-sized bins"),
        });
    }
    Ok(())
}

/// Adds numpy's bin counts of `data` over `bins` to `counts` (the specification of
/// [`CountKernel`]). Elements outside the bins (and NaN) are not counted, as in numpy.
///
/// `counts.len()` must equal `bins.len()`; extra or missing slots are left alone / ignored so
/// that the function cannot panic (callers check the length first).
pub fn accumulate(data: &[f32], bins: &UniformBins, counts: &mut [u64]) {
    for &x in data {
        if let Some(i) = bins.bin_index(x) {
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
        }
    }
}

/// numpy's bin counts of `data` over `bins` (`np.histogram(data, bins=n, range=...)[0]`).
pub fn counts(data: &[f32], bins: &UniformBins) -> Vec<u64> {
    let mut c = vec![0u64; bins.len()];
    accumulate(data, bins, &mut c);
    c
}

/// The bin of `x` for explicit `edges` (`np.histogram(a, bins=edges)`): the `k` with
/// `edges[k] <= x < edges[k+1]`, the last bin also holding `x == edges[last]`; `None` outside
/// (and for NaN). Edges may repeat (an empty bin); the comparison is exact (float32 data against
/// float64 edges is compared in float64, as numpy does).
pub fn bin_index_explicit(x: f64, edges: &[f64]) -> Option<usize> {
    let m = edges.len();
    if m < 2 || x.is_nan() {
        return None;
    }
    let last = edges[m - 1];
    if x == last {
        return Some(m - 2);
    }
    if x > last {
        return None;
    }
    let below_or_equal = edges.partition_point(|&e| e <= x);
    if below_or_equal == 0 {
        None
    } else {
        Some(below_or_equal - 1)
    }
}

/// `np.histogram(data, bins=edges)[0]` for explicit `edges` (which must not decrease; numpy
/// raises otherwise, and so does this).
pub fn counts_explicit(data: &[f32], edges: &[f64]) -> Result<Vec<u64>> {
    if edges.len() < 2 {
        return Err(QuantError::InvalidArgument {
            what: "histogram bins",
            detail: "at least two edges are needed".into(),
        });
    }
    if edges.iter().any(|e| e.is_nan()) || edges.windows(2).any(|w| w[0] > w[1]) {
        return Err(QuantError::InvalidArgument {
            what: "histogram bins",
            detail: "bins must increase monotonically".into(),
        });
    }
    let mut c = vec![0u64; edges.len() - 1];
    for &x in data {
        if let Some(i) = bin_index_explicit(x as f64, edges) {
            c[i] += 1;
        }
    }
    Ok(c)
}

/// numpy's float32 `a // b` (`npy_floor_divide`: `fmod`, then the quotient snapped to an
/// integer). ATen's `div_floor_floating` performs the same operations.
///
/// ```text
/// b == 0: a / b
/// m = fmod(a, b); div = (a - m) / b; if m != 0 and sign(b) != sign(m): div -= 1
/// div != 0: f = floor(div), plus 1 if div - f > 0.5;   div == 0: copysign(0, a / b)
/// ```
pub fn floor_divide_f32(a: f32, b: f32) -> f32 {
    if b == 0.0 {
        return a / b;
    }
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f32.copysign(a / b)
    }
}

/// numpy's pairwise summation of a contiguous float32 array, as `np.sum` runs it:
/// `0 + pairwise(a)` where `pairwise` adds blocks of up to 128 elements with eight interleaved
/// float32 accumulators and splits larger arrays in halves (rounded down to a multiple of 8).
pub fn pairwise_sum_f32(a: &[f32]) -> f32 {
    0.0 + pairwise(a)
}

/// numpy's pairwise summation of a contiguous float64 array (`np.sum`), as
/// [`pairwise_sum_f32`] in float64.
pub fn pairwise_sum_f64(a: &[f64]) -> f64 {
    0.0 + pairwise(a)
}

/// The float types numpy's pairwise summation runs in (each in its own precision).
trait PairwiseFloat: Copy + std::ops::Add<Output = Self> + std::ops::AddAssign {
    const NEG_ZERO: Self;
}

impl PairwiseFloat for f32 {
    const NEG_ZERO: f32 = -0.0;
}

impl PairwiseFloat for f64 {
    const NEG_ZERO: f64 = -0.0;
}

fn pairwise<T: PairwiseFloat>(a: &[T]) -> T {
    pairwise_rec(a, &pairwise_leaf)
}

/// numpy's recursion: fewer than 8 elements are added in order onto `-0.0`, 8 to 128 are one
/// leaf, more are split in halves rounded down to a multiple of 8.
#[inline(always)]
fn pairwise_rec<T: PairwiseFloat>(a: &[T], leaf: &impl Fn(&[T]) -> T) -> T {
    let n = a.len();
    if n < 8 {
        let mut res = T::NEG_ZERO;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        leaf(a)
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_rec(&a[..n2], leaf) + pairwise_rec(&a[n2..], leaf)
    }
}

/// numpy's leaf of 8 to 128 elements: eight interleaved accumulators `r[j] += a[i + j]`, then
/// `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`, then the `n % 8` last elements in order.
#[inline(always)]
fn pairwise_leaf<T: PairwiseFloat>(a: &[T]) -> T {
    let n = a.len();
    let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
    let mut i = 8;
    while i < n - n % 8 {
        for j in 0..8 {
            r[j] += a[i + j];
        }
        i += 8;
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    while i < n {
        res += a[i];
        i += 1;
    }
    res
}

/// The float32 leaf of [`pairwise_sum_f32`] (8 to 128 elements): the bits a vector leaf must
/// reproduce.
#[inline(always)]
pub fn pairwise_leaf_f32(a: &[f32]) -> f32 {
    pairwise_leaf(a)
}

/// [`pairwise_sum_f32`] with its 8..=128-element leaves summed by `leaf`, which must give
/// [`pairwise_leaf_f32`]'s bits (a SIMD kernel's leaf): `0 + pairwise(a)`.
#[inline(always)]
pub fn pairwise_sum_f32_with(a: &[f32], leaf: &impl Fn(&[f32]) -> f32) -> f32 {
    0.0 + pairwise_rec(a, leaf)
}

/// numpy's ordering for floats in sorts and searches: NaN after everything.
fn np_less(a: f64, b: f64) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// `np.searchsorted(a, v)` (side `left`) for one key: numpy's binary search, which on a sorted
/// `a` returns the first index `i` with `a[i] >= v` (NaN sorting last), and on anything else
/// returns what that same search returns.
pub fn searchsorted_left(a: &[f64], v: f64) -> usize {
    let (mut lo, mut hi) = (0usize, a.len());
    while lo < hi {
        let mid = lo + ((hi - lo) >> 1);
        if np_less(a[mid], v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `np.cumsum(hist / hist.sum())` for integer counts: each count divided by the total in float64,
/// then added up left to right. An all-zero histogram gives NaN everywhere (0 / 0), as in numpy.
pub fn normalized_cumsum(hist: &[u64]) -> Vec<f64> {
    let total = hist.iter().map(|&c| c as u128).sum::<u128>() as f64;
    let mut acc = 0.0f64;
    hist.iter()
        .map(|&c| {
            acc += c as f64 / total;
            acc
        })
        .collect()
}

/// `np.argmin(v)`: the first index of the minimum; if any value is NaN, the first NaN.
/// `None` for an empty slice (numpy raises).
pub fn argmin_first(v: &[f64]) -> Option<usize> {
    if v.is_empty() {
        return None;
    }
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return Some(i);
    }
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x < v[best] {
            best = i;
        }
    }
    Some(best)
}

/// `len(v) - 1 - np.argmin(v[::-1])`: the last index of the minimum (the last NaN if any).
pub fn argmin_last(v: &[f64]) -> Option<usize> {
    let rev: Vec<f64> = v.iter().rev().copied().collect();
    argmin_first(&rev).map(|i| v.len() - 1 - i)
}

/// The most bins a histogram may grow by in one batch (its edges take `8 * bins` bytes).
pub const MAX_GROWTH: usize = 1 << 24;

/// Grows explicit edges the way ONNX Runtime's `collect_absolute_value` and pytorch-quantization's
/// numpy path do when a batch's maximum passes the last edge:
///
/// ```text
/// width = edges[1] - edges[0]                                   (in the edges' dtype)
/// new   = np.arange(edges[-1] + width, amax + width, width)     (see `arange`)
/// edges = np.hstack((edges, new))                               (float64)
/// ```
///
/// `edges` are given as float64 values of dtype `ty`; the result is float64 ("np.arange may
/// create an extra bin after the one containing amax", as both sources note).
pub fn grow_edges(edges: &[f64], amax: f64, ty: ScalarType) -> Result<Vec<f64>> {
    if edges.len() < 2 {
        return Err(QuantError::InvalidArgument {
            what: "histogram bins",
            detail: "at least two edges are needed".into(),
        });
    }
    let round = |v: f64| match ty {
        ScalarType::F32 => v as f32 as f64,
        ScalarType::F64 => v,
    };
    let last = edges[edges.len() - 1];
    let width = round(edges[1] - edges[0]);
    let start = round(last + width);
    let stop = round(amax + width);
    let new = arange(start, stop, width, ty)?;
    let mut out = edges.to_vec();
    out.extend(new);
    Ok(out)
}

/// Histogram ranges `(lo, hi, bins)` that stress the bin index: a calibrator's symmetric range, the
/// unit interval, a range whose width is not representable, subnormal-scale and near-overflow
/// ranges, a narrow range far from zero, a few bins, an empty range, signed zeros, one bin. The
/// reference's test and every optimized histogram kernel's test probe each edge of each.
pub const ADVERSARIAL_RANGES: &[(f32, f32, usize)] = &[
    (-11.312944, 11.312944, 2048),
    (0.0, 1.0, 2048),
    (0.1, 0.7, 1000),
    (-1e-30, 1e-30, 512),
    (-3.0e37, 3.0e37, 2048),
    (1.0, 1.001, 2048),
    (-7.25, 3.5, 7),
    (5.0, 5.0, 128),
    (-0.0, 0.0, 3),
    (-4.716, 4.716, 128),
    (0.0, 1.0, 1),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: the bin whose half-open interval holds x, the last bin closed.
    fn brute(x: f32, edges: &[f32]) -> Option<usize> {
        let n = edges.len() - 1;
        if !(x >= edges[0] && x <= edges[n]) {
            return None;
        }
        (0..n).find(|&i| edges[i] <= x && (x < edges[i + 1] || (i == n - 1 && x <= edges[n])))
    }

    #[test]
    fn linspace_matches_numpy_values() {
        // np.linspace(np.float32(-1.5), np.float32(2.25), 4): step 1.25
        assert_eq!(linspace_f32(-1.5, 2.25, 4), vec![-1.5, -0.25, 1.0, 2.25]);
        assert_eq!(linspace_f32(3.0, 3.0, 3), vec![3.0, 3.0, 3.0]);
        assert_eq!(linspace_f32(1.0, 2.0, 1), vec![1.0]);
        assert!(linspace_f32(1.0, 2.0, 0).is_empty());
        // the last edge is stop exactly, whatever the rounding of k * step
        let e = linspace_f32(0.1, 0.7, 2049);
        assert_eq!(e[0], 0.1);
        assert_eq!(e[2048], 0.7);
    }

    #[test]
    fn arange_length_and_values_follow_numpy() {
        // np.arange(np.float32(1.5), np.float32(3.3), np.float32(0.1)): 18 float64 values, the
        // second computed in float32
        let y = arange(1.5, 3.3f32 as f64, 0.1f32 as f64, ScalarType::F32).unwrap();
        assert_eq!(y.len(), 18);
        assert_eq!(y[0], 1.5);
        assert_eq!(y[1], 1.600000023841858);
        assert_eq!(y[2], 1.5 + 2.0 * (1.600000023841858 - 1.5));
        assert!(arange(2.0, 1.0, 0.5, ScalarType::F64).unwrap().is_empty());
        assert!(arange(0.0, 1.0, 0.0, ScalarType::F64).is_err());
    }

    #[test]
    fn bins_reject_what_numpy_rejects() {
        assert!(UniformBins::new(0.0, 1.0, 0).is_err());
        assert!(UniformBins::new(1.0, 0.0, 4).is_err());
        assert!(UniformBins::new(f32::NEG_INFINITY, 0.0, 4).is_err());
        assert!(UniformBins::new(-3e38, 3e38, 4).is_err());
        // two adjacent floats cannot hold 2048 bins
        assert!(UniformBins::new(1.0, 1.0f32.next_up(), 2048).is_err());
        let b = UniformBins::new(2.0, 2.0, 4).unwrap();
        assert_eq!(b.edges(), &[1.5, 1.75, 2.0, 2.25, 2.5]);
    }

    #[test]
    fn empty_range_bins_are_computed_in_f64() {
        let b = UniformBins::for_empty(3).unwrap();
        assert_eq!(b.edges(), &[0.0, (1.0f64 / 3.0) as f32, (2.0f64 / 3.0) as f32, 1.0]);
    }

    #[test]
    fn adversarial_values_match_brute_force() {
        for &(lo, hi, n) in ADVERSARIAL_RANGES {
            let b = UniformBins::new(lo, hi, n).unwrap();
            let mut probes = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
            for &e in b.edges() {
                probes.extend([e, e.next_up(), e.next_down()]);
            }
            for &x in &probes {
                assert_eq!(b.bin_index(x), brute(x, b.edges()), "x = {x:e} over [{lo}, {hi}] / {n}");
            }
        }
    }

    #[test]
    fn explicit_edges_follow_searchsorted() {
        let e = [0.0, 1.0, 1.0, 2.5];
        assert_eq!(bin_index_explicit(-0.1, &e), None);
        assert_eq!(bin_index_explicit(0.0, &e), Some(0));
        assert_eq!(bin_index_explicit(0.99, &e), Some(0));
        assert_eq!(bin_index_explicit(1.0, &e), Some(2)); // the zero-width bin 1 stays empty
        assert_eq!(bin_index_explicit(2.5, &e), Some(2));
        assert_eq!(bin_index_explicit(2.6, &e), None);
        assert_eq!(bin_index_explicit(f64::NAN, &e), None);
        assert!(counts_explicit(&[1.0], &[0.0, 2.0, 1.0]).is_err());
    }

    #[test]
    fn floor_divide_matches_python() {
        assert_eq!(floor_divide_f32(7.0, 2.0), 3.0);
        assert_eq!(floor_divide_f32(-7.0, 2.0), -4.0);
        // np.float32 values (Python's float64 0.3 // 0.1 is 2.0, float32's is 3.0)
        assert_eq!(floor_divide_f32(0.3, 0.1), 3.0);
        assert_eq!(floor_divide_f32(1.0, 0.1), 9.0);
        assert_eq!(floor_divide_f32(0.7, 0.1), 6.0);
        assert_eq!(floor_divide_f32(6.0, 2.0), 3.0);
    }

    #[test]
    fn pairwise_sums_follow_numpy_blocking() {
        // values chosen so that a left-to-right float32 sum differs from numpy's blocked one
        let a: Vec<f32> = (0..300).map(|i| 1.0 + (i as f32) * 1e-3 + if i % 7 == 0 { 1e4 } else { 0.0 }).collect();
        let seq: f32 = a.iter().fold(0.0, |s, &v| s + v);
        let exact: f64 = a.iter().map(|&v| v as f64).sum();
        let pw = pairwise_sum_f32(&a);
        assert!((pw as f64 - exact).abs() <= (seq as f64 - exact).abs());
        assert_eq!(pairwise_sum_f32(&[]), 0.0);
        assert_eq!(pairwise_sum_f32(&[1.5, 2.5]), 4.0);
        assert_eq!(pairwise_sum_f64(&[0.1; 10]), {
            let r = [0.1f64; 8];
            ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])) + 0.1 + 0.1
        });
    }

    #[test]
    fn searchsorted_and_argmin_follow_numpy() {
        let cdf = [0.1, 0.5, 0.5, 1.0];
        assert_eq!(searchsorted_left(&cdf, 0.5), 1);
        assert_eq!(searchsorted_left(&cdf, 0.0), 0);
        assert_eq!(searchsorted_left(&cdf, 2.0), 4);
        assert_eq!(searchsorted_left(&[f64::NAN, f64::NAN], 0.5), 0);
        assert_eq!(argmin_first(&[3.0, 1.0, 1.0]), Some(1));
        assert_eq!(argmin_last(&[3.0, 1.0, 1.0, 2.0]), Some(2));
        assert_eq!(argmin_first(&[3.0, f64::NAN, 0.0]), Some(1));
        assert_eq!(argmin_first(&[]), None);
        let c = normalized_cumsum(&[0, 0]);
        assert!(c.iter().all(|v| v.is_nan()));
    }
}
