//! The handful of ATen CPU kernels that `HistogramObserver` is built from, reproduced operation
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
pub(super) struct Linspace {
    start: f32,
    end: f32,
    step: f32,
    steps: usize,
}

impl Linspace {
    /// `steps >= 2`.
    pub(super) fn new(start: f32, end: f32, steps: usize) -> Linspace {
        let step = (end - start) / (steps - 1) as f32;
        Linspace { start, end, step, steps }
    }

    pub(super) fn at(&self, i: usize) -> f32 {
        if i < self.steps / 2 {
            self.step.mul_add(i as f32, self.start)
        } else {
            (-self.step).mul_add((self.steps - 1 - i) as f32, self.end)
        }
    }
}

/// `c10::div_floor_floating(a, b)`: Python's `a // b` on floats, as ATen computes it for
/// `torch.div(a, b, rounding_mode="floor")`.
///
/// ```text
/// b == 0: a / b
/// mod = fmod(a, b); div = (a - mod) / b; if mod != 0 and sign(b) != sign(mod): div -= 1
/// div != 0: f = floor(div), plus 1 if div - f > 0.5;   div == 0: copysign(0, a / b)
/// ```
pub(super) fn div_floor(a: f32, b: f32) -> f32 {
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

/// `torch.clamp(x, lo, hi)` on f32: NaN propagates, otherwise `min(max(x, lo), hi)`.
pub(super) fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
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
pub(super) fn histc_into(x: &[f32], lo: f32, hi: f32, hist: &mut [f32]) -> bool {
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
pub(super) fn aminmax(x: &[f32]) -> (f32, f32) {
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
pub(super) fn bucketize_right(v: f32, boundaries: &[f32]) -> usize {
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
pub(super) fn cumsum(x: &[f32]) -> Vec<f32> {
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
pub(super) const SUM_LANES: usize = 8;

/// `torch.sum(x)` of a contiguous f32 vector on the CPU (`SumKernel.cpp`), single-threaded,
/// for `lanes`-wide vectors:
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
pub(super) fn cascade_sum(x: &[f32], lanes: usize) -> f32 {
    let lanes = lanes.max(1);
    if lanes > 1 && x.len() >= lanes {
        let vec_size = x.len() / lanes;
        let vector = row_sum(&x[..vec_size * lanes], lanes);
        let mut s = 0.0f32;
        for &v in &x[vec_size * lanes..] {
            s += v;
        }
        for &v in &vector {
            s += v;
        }
        0.0 + s
    } else {
        0.0 + row_sum(x, 1)[0]
    }
}

/// ATen's `row_sum` over `x` read as `x.len() / lanes` items of `lanes` lanes each.
fn row_sum(x: &[f32], lanes: usize) -> Vec<f32> {
    let items = x.len() / lanes;
    let item = |i: usize| &x[i * lanes..(i + 1) * lanes];
    let size_ilp = items / 4;
    let mut partial = multi_row_sum(size_ilp, lanes, |row, k| item(row * 4 + k));
    for i in size_ilp * 4..items {
        add_into(&mut partial[0], item(i));
    }
    for k in 1..4 {
        let p = partial[k].clone();
        add_into(&mut partial[0], &p);
    }
    let [first, ..] = partial;
    first
}

fn add_into(acc: &mut [f32], v: &[f32]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += *b;
    }
}

/// ATen's `multi_row_sum` with 4 rows of `lanes`-wide vectors.
fn multi_row_sum<'a>(size: usize, lanes: usize, load: impl Fn(usize, usize) -> &'a [f32]) -> [Vec<f32>; 4] {
    const LEVELS: usize = 4;
    let level_power = 4usize.max(ceil_log2(size) / LEVELS);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let zero = || -> [Vec<f32>; 4] { std::array::from_fn(|_| vec![0.0f32; lanes]) };
    let mut acc: [[Vec<f32>; 4]; LEVELS] = std::array::from_fn(|_| zero());
    let add_row = |acc0: &mut [Vec<f32>; 4], row: usize| {
        for (k, a) in acc0.iter_mut().enumerate() {
            add_into(a, load(row, k));
        }
    };
    let mut i = 0usize;
    while i + level_step <= size {
        for _ in 0..level_step {
            add_row(&mut acc[0], i);
            i += 1;
        }
        for j in 1..LEVELS {
            let lower = std::mem::replace(&mut acc[j - 1], zero());
            for (a, l) in acc[j].iter_mut().zip(&lower) {
                add_into(a, l);
            }
            let mask = level_mask << (j * level_power);
            if i & mask != 0 {
                break;
            }
        }
    }
    while i < size {
        add_row(&mut acc[0], i);
        i += 1;
    }
    let [mut first, rest @ ..] = acc;
    for level in &rest {
        for (a, l) in first.iter_mut().zip(level) {
            add_into(a, l);
        }
    }
    first
}

/// ATen's `utils::CeilLog2`: 1 for `x <= 2`, else `ceil(log2(x))`.
fn ceil_log2(x: usize) -> usize {
    if x <= 2 {
        1
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
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

    /// `torch.sum` (PyTorch 2.11, one thread) of a fixed pseudo-random vector whose elements
    /// span 20 binades of both signs, recorded as f32 bits: the order of the additions shows.
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
