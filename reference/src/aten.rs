//! The handful of ATen CPU kernels that `HistogramObserver` and the learnable fake-quantize
//! backward ([`crate::qat`]) are built from, reproduced operation
//! by operation in f32 (PyTorch 2.11, x86-64 with its AVX2 or AVX-512 kernels).
//!
//! Each function names the kernel it mirrors and the arithmetic that kernel performs. Where the
//! kernel's result depends on how the CPU build was compiled, the choice made here is stated:
//!
//! * `linspace` is compiled with FMA contraction in the AVX2 and AVX-512 builds of ATen (the
//!   ones PyTorch picks on any x86 machine with AVX2), so `start + step * i` is one fused
//!   multiply-add. The `DEFAULT` (no-AVX) build rounds twice; we follow the AVX builds.
//! * `sum` of an f32 vector is ATen's cascade sum (`SumKernel.cpp`: `vectorized_inner_sum` over
//!   `row_sum` / `multi_row_sum`), whose order depends on the vector width: 8 lanes, the AVX2
//!   build, which PyTorch uses for its reductions on AVX-512 machines too.
//! * `cumsum` accumulates in f64 (`at::acc_type<float, false>`) and rounds each prefix to f32.

/// `torch.linspace(start, end, steps)` for f32 (`RangeFactoriesKernel.cpp`), element `i`:
///
/// ```text
/// step = (end - start) / (steps - 1)                         (f32)
/// i <  steps / 2:  fma(step, i, start)
/// i >= steps / 2:  fma(-step, steps - 1 - i, end)
/// ```
/// so the first element is `start` and the last is `end` exactly (for a finite step).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linspace {
    start: f32,
    end: f32,
    step: f32,
    steps: usize,
}

impl Linspace {
    /// `steps >= 2`.
    pub(crate) fn new(start: f32, end: f32, steps: usize) -> Linspace {
        let step = (end - start) / (steps - 1) as f32;
        Linspace { start, end, step, steps }
    }

    pub(crate) fn at(&self, i: usize) -> f32 {
        if i < self.steps / 2 {
            self.step.mul_add(i as f32, self.start)
        } else {
            (-self.step).mul_add((self.steps - 1 - i) as f32, self.end)
        }
    }
}

/// `c10::div_floor_floating(a, b)`: Python's `a // b` on floats, as ATen computes it for
/// `torch.div(a, b, rounding_mode="floor")`: the same operations as numpy's float32 `//`
/// ([`crate::calibrate::numpy_hist::floor_divide_f32`]).
pub(crate) fn div_floor(a: f32, b: f32) -> f32 {
    crate::calibrate::numpy_hist::floor_divide_f32(a, b)
}

/// `torch.clamp(x, lo, hi)` on f32: NaN propagates, otherwise `min(max(x, lo), hi)`.
pub(crate) fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    if x.is_nan() {
        x
    } else {
        let y = if x < lo { lo } else { x };
        if y > hi {
            hi
        } else {
            y
        }
    }
}

/// `torch.histc(x, bins, min, max)` (f32), added into `hist` (`hist.len() == bins`).
///
/// ATen's `histogram_histc_out` (`Histogram.cpp`) and `histogramdd_cpu_contiguous` with
/// `LINEAR_INTERPOLATION` (no local search):
///
/// ```text
/// lo, hi = min, max                                    (f64 copies of f32 values)
/// if lo == hi and x not empty: lo, hi = min(x), max(x)
/// if lo == hi: lo = min(next_down(f32(lo)), lo - 1), hi = max(next_up(f32(hi)), hi + 1)
/// edges = linspace(lo, hi, bins + 1) in f32;  left = edges[0], right = edges[bins]
/// for each element e with left <= e <= right (NaN never is):
///     pos = trunc((e - left) * bins / (right - left))  (f32), bins -> bins - 1
///     hist[pos] += 1
/// ```
/// PyTorch accumulates each thread's counts in f32, which stops counting at 2^24 in one bin;
/// here counts are exact integers rounded once to f32 and then added to `hist` in f32.
///
/// Returns `false` (and adds nothing) where PyTorch raises: a range that is not finite after
/// the correction, or `lo >= hi`.
pub(crate) fn histc_into(x: &[f32], lo: f32, hi: f32, hist: &mut [f32]) -> bool {
    let bins = hist.len();
    if bins == 0 {
        return false;
    }
    let (mut lo, mut hi) = (lo as f64, hi as f64);
    if lo == hi && !x.is_empty() {
        let (mn, mx) = aminmax(x);
        lo = mn as f64;
        hi = mx as f64;
    }
    if lo == hi {
        lo = ((lo as f32).next_down() as f64).min(lo - 1.0);
        hi = ((hi as f32).next_up() as f64).max(hi + 1.0);
    }
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return false;
    }
    // `Scalar::to<float>()` of the corrected edges: exact unless the correction left f32.
    let (lo32, hi32) = (lo as f32, hi as f32);
    if !(lo32.is_finite() && hi32.is_finite()) {
        return false;
    }
    let edges = Linspace::new(lo32, hi32, bins + 1);
    let (left, right) = (edges.at(0), edges.at(bins));
    let width = right - left;
    let n = bins as f32;
    let mut counts = vec![0u64; bins];
    for &e in x {
        if !(e >= left && e <= right) {
            continue;
        }
        // `static_cast<int64_t>` of a non-negative value; saturating, so never out of bounds.
        let pos = (((e - left) * n) / width) as usize;
        counts[pos.min(bins - 1)] += 1;
    }
    for (h, c) in hist.iter_mut().zip(counts) {
        if c != 0 {
            *h += c as f32;
        }
    }
    true
}

/// `torch.aminmax(x)` of a non-empty slice without NaN: the first minimum and first maximum in
/// index order (the sign of a zero is irrelevant to every use here).
pub(crate) fn aminmax(x: &[f32]) -> (f32, f32) {
    let mut mn = f32::INFINITY;
    let mut mx = f32::NEG_INFINITY;
    for &v in x {
        if v < mn {
            mn = v;
        }
        if v > mx {
            mx = v;
        }
    }
    (mn, mx)
}

/// `torch.bucketize(v, boundaries, right=True)`: ATen's `cus_upper_bound`, the number of
/// leading boundaries `b` with `!(b > v)` found by bisection (a NaN `v` goes past the end).
pub(crate) fn bucketize_right(v: f32, boundaries: &[f32]) -> usize {
    let (mut start, mut end) = (0usize, boundaries.len());
    while start < end {
        let mid = start + ((end - start) >> 1);
        // `!(b > v)`, not `b <= v`: a NaN `v` must move right, as in ATen.
        if boundaries[mid].partial_cmp(&v) != Some(std::cmp::Ordering::Greater) {
            start = mid + 1;
        } else {
            end = mid;
        }
    }
    start
}

/// `torch.cumsum(x, 0)` for f32 on the CPU: prefix sums accumulated in f64, each rounded to f32.
pub(crate) fn cumsum(x: &[f32]) -> Vec<f32> {
    let mut acc = 0.0f64;
    x.iter()
        .map(|&v| {
            acc += v as f64;
            acc as f32
        })
        .collect()
}

/// The vector width (f32 lanes) whose summation order [`cascade_sum`] reproduces: ATen's AVX2
/// kernels, which PyTorch also runs on AVX-512 machines (the sum kernel has no AVX-512 build).
pub(crate) const SUM_LANES: usize = 8;

/// `torch.sum(x)` of a contiguous f32 vector on the CPU (`SumKernel.cpp`), single-threaded,
/// for `lanes`-wide vectors (`lanes >= 1`):
///
/// ```text
/// n >= lanes (vectorized_inner_sum):
///   V = n / lanes full vectors, summed by row_sum; s = 0; s += each of the n % lanes tail
///   elements; s += each lane of the vector sum, in order
/// n < lanes (scalar_inner_sum): row_sum of the n scalars
/// row_sum of m items: 4 interleaved accumulators (ILP) over m / 4 rows of 4 items, each a
///   4-level cascade (multi_row_sum: level 0 takes 2^p rows, then carries into level 1, ...;
///   p = max(4, ceil_log2(rows) / 4)); leftover items go into accumulator 0; then
///   acc0 += acc1, acc2, acc3 (in order)
/// ```
/// Checked bit for bit against `torch.sum` (one thread) for lengths 1 to 300000. Above 32768
/// elements PyTorch splits the sum across threads, so its order then depends on the thread
/// count; this is the one-thread order (it matters only for histograms of more than 32768 bins).
pub(crate) fn cascade_sum(x: &[f32], lanes: usize) -> f32 {
    0.0 + contiguous_row_sum(x, lanes.max(1))
}

const SUM_LEVELS: usize = 4;
const SUM_ILP: usize = 4;

/// ATen's `utils::CeilLog2`: 1 for `x <= 2`, else `ceil(log2(x))`.
fn ceil_log2(x: usize) -> usize {
    if x <= 2 {
        1
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
}

/// ATen's `multi_row_sum`: `nrows` running sums, each `width` lanes wide, over `size` rows
/// (`load(i, k, lane)`). Rows are added into level 0; every `2^p` rows (`p = max(4,
/// ceil_log2(size) / 4)`) level 0 is carried into level 1, and so on up to level 3, so that only
/// partial sums of similar magnitude meet. Returns `nrows * width` sums, row-major.
fn multi_row_sum(nrows: usize, width: usize, size: usize, load: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let level_power = (ceil_log2(size) / SUM_LEVELS).max(4);
    let level_step = 1u64 << level_power;
    let level_mask = level_step - 1;
    let row = nrows * width;
    let mut acc = vec![0f32; SUM_LEVELS * row];
    let add_row = |acc: &mut [f32], i: usize| {
        for k in 0..nrows {
            for l in 0..width {
                acc[k * width + l] += load(i, k, l);
            }
        }
    };
    let mut i = 0usize;
    while (i as u64) + level_step <= size as u64 {
        for _ in 0..level_step {
            add_row(&mut acc, i);
            i += 1;
        }
        for j in 1..SUM_LEVELS {
            for e in 0..row {
                acc[j * row + e] += acc[(j - 1) * row + e];
                acc[(j - 1) * row + e] = 0.0;
            }
            if (i as u64) & (level_mask << (j * level_power)) != 0 {
                break;
            }
        }
    }
    while i < size {
        add_row(&mut acc, i);
        i += 1;
    }
    for j in 1..SUM_LEVELS {
        for e in 0..row {
            acc[e] += acc[j * row + e];
        }
    }
    acc.truncate(row);
    acc
}

/// ATen's `row_sum`: the rows split into `SUM_ILP = 4` interleaved partial sums
/// ([`multi_row_sum`] over rows of 4), the leftover rows added to the first, then partial sums
/// 1, 2, 3 added to it. `load(i, lane)`.
fn row_sum(width: usize, size: usize, load: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let size_ilp = size / SUM_ILP;
    let mut ps = multi_row_sum(SUM_ILP, width, size_ilp, |i, k, l| load(i * SUM_ILP + k, l));
    for i in size_ilp * SUM_ILP..size {
        for (l, p) in ps[..width].iter_mut().enumerate() {
            *p += load(i, l);
        }
    }
    for k in 1..SUM_ILP {
        for l in 0..width {
            ps[l] += ps[k * width + l];
        }
    }
    ps.truncate(width);
    ps
}

/// The sum of one contiguous row: `vectorized_inner_sum` when it holds at least `lanes`
/// elements, else the scalar `row_sum`.
pub(crate) fn contiguous_row_sum(row: &[f32], lanes: usize) -> f32 {
    if row.len() >= lanes {
        let vec_size = row.len() / lanes;
        let vacc = row_sum(lanes, vec_size, |i, l| row[i * lanes + l]);
        let mut acc = 0f32;
        for &v in &row[vec_size * lanes..] {
            acc += v;
        }
        for v in vacc {
            acc += v;
        }
        acc
    } else {
        row_sum(1, row.len(), |i, _| row[i])[0]
    }
}

/// Column sums of a row-major `[rows, cols]` block (`cols >= 2`): `vectorized_outer_sum` when
/// `cols >= lanes` (groups of `4 lanes` columns by [`multi_row_sum`], then groups of `lanes` by
/// [`row_sum`], then single columns), else `scalar_outer_sum` (groups of 4 columns, then single).
pub(crate) fn column_sums(v: &[f32], rows: usize, cols: usize, lanes: usize) -> Vec<f32> {
    let mut out = vec![0f32; cols];
    let at = |i: usize, c: usize| v[i * cols + c];
    let mut j = 0;
    let group = if cols >= lanes { 4 * lanes } else { 4 };
    while j + group <= cols {
        let w = group / 4;
        let sums = multi_row_sum(4, w, rows, |i, k, l| at(i, j + k * w + l));
        for (e, s) in sums.into_iter().enumerate() {
            out[j + e] += s;
        }
        j += group;
    }
    if cols >= lanes {
        while j + lanes <= cols {
            let sums = row_sum(lanes, rows, |i, l| at(i, j + l));
            for (l, s) in sums.into_iter().enumerate() {
                out[j + l] += s;
            }
            j += lanes;
        }
    }
    while j < cols {
        out[j] += row_sum(1, rows, |i, _| at(i, j))[0];
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_ends_are_exact() {
        let l = Linspace::new(-1.7, 3.3, 2049);
        assert_eq!(l.at(0), -1.7);
        assert_eq!(l.at(2048), 3.3);
        assert!((1..2049).all(|i| l.at(i) >= l.at(i - 1)));
    }

    /// Elements of `torch.linspace` (PyTorch 2.11, AVX2 kernels) recorded as f32 bits: the
    /// fused multiply-add shows in the last bit.
    #[test]
    fn linspace_matches_recorded_torch_values() {
        type Recorded = ((f32, f32, usize), [(usize, u32); 5]);
        let recorded: [Recorded; 2] = [
            (
                (-1.7, 3.3, 2049),
                [(1, 3218688410), (7, 3218565530), (1023, 1061956812), (1024, 1061997772), (2047, 1079184179)],
            ),
            (
                (0.1, 0.7, 32769),
                [(1, 1036834407), (7, 1036849152), (16383, 1053608550), (16384, 1053609165), (32767, 1060319744)],
            ),
        ];
        for ((a, b, n), elements) in recorded {
            let l = Linspace::new(a, b, n);
            for (i, bits) in elements {
                assert_eq!(l.at(i).to_bits(), bits, "linspace({a}, {b}, {n})[{i}]");
            }
        }
    }

    #[test]
    fn div_floor_is_python_floor_division() {
        for (a, b, q) in
            [(7.0f32, 2.0f32, 3.0f32), (-7.0, 2.0, -4.0), (7.0, -2.0, -4.0), (-0.5, 3.0, -1.0), (0.0, 3.0, 0.0)]
        {
            assert_eq!(div_floor(a, b), q, "{a} // {b}");
        }
        assert!(div_floor(1.0, 0.0).is_infinite());
        assert!(div_floor(-0.0, 3.0).is_sign_negative());
    }

    #[test]
    fn histc_bins_like_torch() {
        let mut h = vec![0.0f32; 4];
        assert!(histc_into(&[0.0, 0.999, 1.0, 2.5, 4.0, 4.5, -0.1, f32::NAN], 0.0, 4.0, &mut h));
        assert_eq!(h, [2.0, 1.0, 1.0, 1.0]);
        // A single value: the range is widened by one on each side, the value lands mid-way.
        let mut h = [0.0f32; 8];
        assert!(histc_into(&[5.0, 5.0], 5.0, 5.0, &mut h));
        assert_eq!(h, [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
        // Where PyTorch raises ("range of [..., inf] is not finite"; zero bins): nothing added.
        let mut h = [0.0f32; 8];
        assert!(!histc_into(&[f32::MAX], f32::MAX, f32::MAX, &mut h));
        assert!(!histc_into(&[-f32::MAX], -f32::MAX, -f32::MAX, &mut h));
        assert_eq!(h, [0.0; 8]);
        assert!(!histc_into(&[1.0], 0.0, 2.0, &mut h[..0]));
    }

    #[test]
    fn bucketize_is_upper_bound() {
        let b = [0.0f32, 1.0, 2.0, 3.0];
        assert_eq!(bucketize_right(-1.0, &b), 0);
        assert_eq!(bucketize_right(0.0, &b), 1);
        assert_eq!(bucketize_right(2.5, &b), 3);
        assert_eq!(bucketize_right(3.0, &b), 4);
        assert_eq!(bucketize_right(f32::NAN, &b), 4);
    }

    #[test]
    fn cascade_sum_is_a_sum() {
        for n in [0usize, 1, 7, 16, 63, 64, 65, 2048, 5000] {
            let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
            let exact: f32 = x.iter().sum();
            for lanes in [1, 8, 16] {
                assert_eq!(cascade_sum(&x, lanes), exact, "n={n} lanes={lanes}");
            }
        }
        assert_eq!(ceil_log2(1), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(1024), 10);
        assert_eq!(ceil_log2(1025), 11);
    }

    /// `torch.sum` (PyTorch 2.11, one thread) of a fixed vector whose elements span 20 binades
    /// of both signs, recorded as f32 bits: the order of the additions shows. `gen` is the hash
    /// formula the recording script used (a fixture, not a generator: the recorded bits depend
    /// on it).
    #[test]
    fn cascade_sum_matches_recorded_torch_sums() {
        let gen = |n: usize| -> Vec<f32> {
            (0..n as u64)
                .map(|i| {
                    let mut h = i.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(12345);
                    h ^= h >> 29;
                    let mant = (h & 0x7FFFFF) as u32;
                    let exp = ((h >> 23) % 20 + 117) as u32;
                    let sign = ((h >> 40) & 1) as u32;
                    f32::from_bits((sign << 31) | (exp << 23) | mant)
                })
                .collect()
        };
        assert_eq!(gen(2).iter().map(|v| v.to_bits()).collect::<Vec<_>>(), [981479481, 3144769925]);
        let recorded: [(usize, u32); 11] = [
            (1, 981479481),
            (3, 3261249209),
            (7, 1141977358),
            (8, 1141977443),
            (9, 1141977304),
            (15, 1143604856),
            (31, 1135688783),
            (100, 3305429287),
            (2048, 1178526503),
            (5000, 1179014597),
            (40000, 3338161505),
        ];
        for (n, bits) in recorded {
            assert_eq!(cascade_sum(&gen(n), SUM_LANES).to_bits(), bits, "n = {n}");
        }
    }

    #[test]
    fn cumsum_rounds_f64_prefixes() {
        let x = [1.0f32, 1e-8, 1e-8, 1e-8];
        let c = cumsum(&x);
        assert_eq!(c[3], (1.0f64 + 3.0 * 1e-8f32 as f64) as f32);
    }
}
