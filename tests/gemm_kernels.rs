//! The packed int8 GEMM micro-kernels against `quantproof_reference::gemm::accumulate`, bit for
//! bit, with cases generated from each kernel's tile (XNNPACK style): M from 1 to MR + 1 and
//! beyond, N around the panel width, K below, at and above the k-group and its multiples, strided
//! rows, extreme zero points, per-tensor and per-column weight zero points, both weight layouts,
//! and K at the edge of exact int32 accumulation.

use quantproof_optimized::gemm::{gemm_u8s8, GemmKernel, PackedWeights, BLOCK_K, BLOCK_M, KR, MAX_EXACT_K, NR};
use quantproof_reference::error::QuantError;
use quantproof_reference::gemm::{accumulate, GemmDims, WeightLayout, ZeroPoints};
use quantproof_reference::rng::Rng;

use quantproof_tests::available_gemm_kernels as kernels;

#[allow(clippy::too_many_arguments)]
fn check(
    kernel: GemmKernel,
    rng: &mut Rng,
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    za: i32,
    zb: &[i32],
    layout: WeightLayout,
) {
    let a: Vec<u8> = (0..m.saturating_sub(1) * lda + k).map(|_| rng.below(256) as u8).collect();
    let b: Vec<i8> = (0..k * n).map(|_| rng.below(256) as i32 as u8 as i8).collect();
    let zps = if zb.len() == 1 { ZeroPoints::PerTensor(zb[0]) } else { ZeroPoints::PerColumn(zb) };
    let dense: Vec<u8> = (0..m).flat_map(|i| a[i * lda..i * lda + k].to_vec()).collect();
    let mut want = vec![0i32; m * n];
    let want_r = accumulate(&dense, za, &b, zps, layout, GemmDims::new(m, n, k), &mut want);
    let w = PackedWeights::new(&b, zps, layout, k, n).unwrap();
    let mut got = vec![0i32; m * n];
    let got_r = gemm_u8s8(&a, lda, m, za, &w, kernel, &mut got);
    assert_eq!(got_r.is_ok(), want_r.is_ok(), "{}: m {m} n {n} k {k}: {got_r:?} vs {want_r:?}", kernel.name());
    if want_r.is_ok() {
        assert_eq!(got, want, "{}: m {m} n {n} k {k} lda {lda} za {za} zb {zb:?} {layout:?}", kernel.name());
    } else {
        assert!(matches!(got_r, Err(QuantError::AccumulatorOverflow { .. })), "{got_r:?}");
    }
}

/// `x - 1, x, x + 1` for each edge (above zero), sorted and unique.
fn around(edges: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = edges.iter().flat_map(|&e| [e.saturating_sub(1), e, e + 1]).filter(|&x| x > 0).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn every_kernel_equals_the_reference_over_its_tile() {
    let mut rng = Rng::new(8);
    for kernel in kernels() {
        // Generated from the kernel's tile (XNNPACK style): M as below, N around the tile's and a panel's width, K around
        // the k-group, its multiples and the cache block.
        let (tm, tn) = kernel.tile();
        // Every row count of one tile (the blocked kernels have a form per row count), half a
        // tile (AMX's 16-row tiles), two tiles, and around the blocked kernels' row block.
        let mut ms: Vec<usize> = (1..=tm.min(8) + 1).chain(around(&[tm / 2, 2 * tm, BLOCK_M, BLOCK_M + tm])).collect();
        ms.sort_unstable();
        ms.dedup();
        let ns = around(&[1, NR, tn, 2 * tn]);
        let ks = around(&[1, KR, 2 * KR, 64, BLOCK_K, 2 * BLOCK_K]);
        let mut cases = 0;
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    // The largest shapes (the row block with the longest K) on a sample only.
                    if m * n * k > 4_000_000 && (m + n + k) % 3 != 0 {
                        continue;
                    }
                    let lda = if (m + n + k) % 2 == 0 { k } else { k + 3 };
                    let za = [0, 128, 255, 7][(m + k) % 4];
                    let zb: Vec<i32> = match (n + k) % 3 {
                        0 => vec![[-128, 0, 127][k % 3]],
                        _ => (0..n).map(|_| rng.below(256) as i32 - 128).collect(),
                    };
                    let layout = if k % 2 == 0 { WeightLayout::NxK } else { WeightLayout::KxN };
                    check(kernel, &mut rng, m, n, k, lda, za, &zb, layout);
                    cases += 1;
                }
            }
        }
        println!("{}: {cases} tile cases bit-exact (tile {tm}x{tn})", kernel.name());
        assert!(kernel.name().contains(&format!("_{tm}x{tn}c")), "{}: the name says the tile", kernel.name());
    }
}

#[test]
fn k_at_the_edge_of_exact_int32_accumulation() {
    for kernel in kernels() {
        for k in [MAX_EXACT_K - 1, MAX_EXACT_K, MAX_EXACT_K + 1] {
            // All products 255 x (-128) or 255 x 127: the extremes of the raw sums.
            for bv in [-128i8, 127] {
                let a = vec![255u8; k];
                let b = vec![bv; k];
                let w = PackedWeights::new(&b, ZeroPoints::PerTensor(0), WeightLayout::NxK, k, 1).unwrap();
                let mut got = [0i32];
                let mut want = [0i32];
                let r = accumulate(
                    &a,
                    0,
                    &b,
                    ZeroPoints::PerTensor(0),
                    WeightLayout::NxK,
                    GemmDims::new(1, 1, k),
                    &mut want,
                );
                let g = gemm_u8s8(&a, k, 1, 0, &w, kernel, &mut got);
                assert_eq!(g.is_ok(), r.is_ok(), "{} k {k} b {bv}: {g:?} vs {r:?}", kernel.name());
                assert_eq!(got, want, "{} k {k} b {bv}", kernel.name());
            }
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let w = PackedWeights::new(&[1i8; 8], ZeroPoints::PerTensor(0), WeightLayout::NxK, 4, 2).unwrap();
    let mut out = [0i32; 2];
    assert!(gemm_u8s8(&[1u8; 4], 3, 1, 0, &w, GemmKernel::Portable, &mut out).is_err()); // lda < K
    assert!(gemm_u8s8(&[1u8; 3], 4, 1, 0, &w, GemmKernel::Portable, &mut out).is_err()); // short a
    assert!(gemm_u8s8(&[1u8; 4], 4, 1, 256, &w, GemmKernel::Portable, &mut out).is_err()); // za
    assert!(gemm_u8s8(&[1u8; 4], 4, 1, 0, &w, GemmKernel::Portable, &mut out[..1]).is_err()); // out
    assert!(PackedWeights::new(&[1i8; 7], ZeroPoints::PerTensor(0), WeightLayout::NxK, 4, 2).is_err());
    assert!(PackedWeights::new(&[1i8; 8], ZeroPoints::PerColumn(&[0]), WeightLayout::NxK, 4, 2).is_err());
    assert!(PackedWeights::new(&[1i8; 8], ZeroPoints::PerTensor(200), WeightLayout::NxK, 4, 2).is_err());
    let mut none: [i32; 0] = [];
    assert!(gemm_u8s8(&[], 4, 0, 0, &w, GemmKernel::Portable, &mut none).is_ok());
}

/// Threads split the rows; every thread count gives the reference's result (141 rows: a worker
/// reuses its buffers from a 32-row AMX chunk, or a 24-row VNNI chunk, for a last chunk of 13
/// rows), and the first overflowing element in row order is the one reported.
/// The buffers a thread keeps between calls (its activation rows; the column terms are per
/// call) carry nothing from one call into the next: on one thread, every kernel, calls that
/// alternate K (the same row stride with fewer codes, and other strides), M (fewer rows than the
/// call before, one 32-row block and several), N, zero points and strides, each against the
/// reference.
#[test]
fn kept_buffers_carry_nothing_between_calls() {
    let mut rng = Rng::new(91);
    let shapes = [(40usize, 70usize, 300usize), (3, 70, 290), (33, 20, 64), (1, 100, 1000), (17, 100, 990), (2, 33, 5)];
    for kernel in kernels() {
        for (i, &(m, n, k)) in shapes.iter().cycle().take(3 * shapes.len()).enumerate() {
            let za = [0, 255, 128, 1][i % 4];
            let zb: &[i32] = if i % 3 == 0 {
                &[0]
            } else if i % 3 == 1 {
                &[-3]
            } else {
                &[127, -128, 5]
            };
            let zb = if zb.len() > 1 { zb.iter().cycle().take(n).copied().collect::<Vec<i32>>() } else { zb.to_vec() };
            check(kernel, &mut rng, m, n, k, k + i % 2 * 7, za, &zb, WeightLayout::KxN);
        }
    }
}

#[test]
fn threads_give_the_same_result() {
    use quantproof_optimized::gemm::gemm_u8s8_threaded;
    let mut rng = Rng::new(77);
    for (m, n, k) in [(64usize, 130usize, 300usize), (37, 70, 1000), (9, 33, 4000), (141, 40, 200)] {
        let a: Vec<u8> = (0..m * k).map(|_| rng.below(256) as u8).collect();
        let b: Vec<i8> = (0..k * n).map(|_| rng.below(256) as i32 as u8 as i8).collect();
        let zb: Vec<i32> = (0..n).map(|_| rng.below(256) as i32 - 128).collect();
        let zps = ZeroPoints::PerColumn(&zb);
        let mut want = vec![0i32; m * n];
        accumulate(&a, 131, &b, zps, WeightLayout::KxN, GemmDims::new(m, n, k), &mut want).unwrap();
        let w = PackedWeights::new(&b, zps, WeightLayout::KxN, k, n).unwrap();
        for kernel in kernels() {
            for threads in [1, 2, 3, 5] {
                let mut got = vec![0i32; m * n];
                gemm_u8s8_threaded(&a, k, m, 131, &w, kernel, threads, &mut got).unwrap();
                assert_eq!(got, want, "{} m {m} n {n} k {k} threads {threads}", kernel.name());
            }
        }
    }
    // Overflow: the same error on every thread count.
    let (m, n, k) = (40usize, 40usize, 70_000usize);
    let a = vec![255u8; m * k];
    let b = vec![-128i8; k * n];
    let mut want = vec![0i32; m * n];
    let r = accumulate(&a, 0, &b, ZeroPoints::PerTensor(127), WeightLayout::NxK, GemmDims::new(m, n, k), &mut want);
    let w = PackedWeights::new(&b, ZeroPoints::PerTensor(127), WeightLayout::NxK, k, n).unwrap();
    for threads in [1, 2, 4] {
        let mut got = vec![0i32; m * n];
        let g = gemm_u8s8_threaded(&a, k, m, 0, &w, GemmKernel::best(), threads, &mut got);
        assert_eq!(format!("{g:?}"), format!("{r:?}"), "threads {threads}");
    }
}

/// Weights larger than L2 (more than 1 MiB of panels), where the AMX kernel's direct path (no
/// weight zero point) passes groups of eight 32-row blocks over 256 KiB ranges of panels: rows
/// crossing a group and ending in a short block, N ending in a partial pair of panels, ranges
/// ending inside N, on 1 to 3 threads (whose row chunks are groups of their own); with a weight
/// zero point the same shapes take the block-at-a-time path. Every kernel, against the
/// reference. (x86-64 only: the path is AMX's; under qemu the reference alone would take minutes.)
#[test]
fn weights_larger_than_l2() {
    use quantproof_optimized::gemm::gemm_u8s8_threaded;
    if !cfg!(target_arch = "x86_64") {
        println!("skipping weights_larger_than_l2: x86-64 only (the AMX ranged path)");
        return;
    }
    let mut rng = Rng::new(2048);
    for (m, n, k, zb) in [(300usize, 600usize, 2048usize, 0i32), (40, 1000, 1100, 0), (70, 600, 2048, 3)] {
        let a: Vec<u8> = (0..m * k).map(|_| rng.below(256) as u8).collect();
        let b: Vec<i8> = (0..k * n).map(|_| rng.below(256) as i32 as u8 as i8).collect();
        let zps = ZeroPoints::PerTensor(zb);
        let mut want = vec![0i32; m * n];
        accumulate(&a, 77, &b, zps, WeightLayout::NxK, GemmDims::new(m, n, k), &mut want).unwrap();
        let w = PackedWeights::new(&b, zps, WeightLayout::NxK, k, n).unwrap();
        for kernel in kernels() {
            for threads in [1, 2, 3] {
                let mut got = vec![0i32; m * n];
                gemm_u8s8_threaded(&a, k, m, 77, &w, kernel, threads, &mut got).unwrap();
                assert!(got == want, "{} m {m} n {n} k {k} zb {zb} threads {threads}", kernel.name());
            }
        }
    }
}

/// The row chunks the threads take, for every kernel's chunk shape: contiguous, covering every
/// row once, at most the shape's largest chunk, whole tiles of at least its smallest chunk but
/// for the last, and balanced: simulated on `T` equally fast workers (each takes the next chunk
/// when it is free), the last one finishes within the smallest chunk of an even split (fixed
/// chunks of 96 rows left 1024 rows at 576 + 448).
#[test]
fn thread_chunks_cover_the_rows_and_balance() {
    use quantproof_optimized::gemm::thread_chunks;
    for kernel in GemmKernel::ALL {
        let shape = kernel.chunk_shape();
        let name = kernel.name();
        for threads in 1..=5usize {
            for m in (0..700).chain([1024, 1025, 2048, 4099]) {
                let chunks = thread_chunks(m, threads, shape);
                let mut next = 0;
                let mut load = vec![0usize; threads];
                for (c, &(i0, rows)) in chunks.iter().enumerate() {
                    let last = c + 1 == chunks.len();
                    let at = format!("{name}: m {m} threads {threads}: chunk {c} ({i0}, {rows})");
                    assert_eq!(i0, next, "{at}");
                    assert!(rows > 0 && rows <= shape.max, "{at}");
                    assert!(last || (rows >= shape.min && rows % shape.tile == 0), "{at}");
                    next += rows;
                    let free = (0..threads).min_by_key(|&t| load[t]).unwrap_or(0);
                    load[free] += rows;
                }
                assert_eq!(next, m, "{name}: m {m} threads {threads}");
                let span = load.iter().copied().max().unwrap_or(0);
                assert!(
                    span <= m.div_ceil(threads) + shape.min,
                    "{name}: m {m} threads {threads}: {span} rows on one worker"
                );
            }
        }
        assert_eq!(thread_chunks(1024, 2, shape).iter().map(|c| c.1).max(), Some(shape.max), "{name}");
    }
}

/// The `vpmaddubsw` kernel: exact on blocks the overflow checker clears (7-bit activations as
/// with `reduce_range`, or weights in `[-64, 64]`), and still exact on every other block (they
/// take the `vpmaddwd` kernel); without its gate it saturates exactly where the checker says.
#[test]
fn maddubs_is_gated_by_the_overflow_checker() {
    use quantproof_optimized::gemm::ungated_raw_sums;
    use quantproof_reference::overflow::{check, vpmaddubsw_pair, Formulation, OperandSpec};
    use quantproof_reference::scheme::{CodeRange, QType};
    let kernel = GemmKernel::Avx2Maddubs;
    if !kernel.is_available() {
        println!("skipping {}: not available on this CPU", kernel.name());
        return;
    }
    let mut rng = Rng::new(0x5A7);
    // (largest activation, weight range, whether the checker clears vpmaddubsw)
    let cases: [(u8, (i8, i8), bool); 6] = [
        (127, (-128, 127), true),
        (255, (-64, 64), true),
        // 2 * 128 * -128 = -32768 is still an i16; 2 * 129 * -128 is not.
        (128, (-128, 127), true),
        (129, (-128, 127), false),
        (255, (-65, 64), false),
        (255, (-128, 127), false),
    ];
    for (amax, (lo, hi), clear) in cases {
        let spec_a = OperandSpec::full(QType::U8).with_range(CodeRange::new(0, amax as i32).unwrap());
        let spec_b = OperandSpec::full(QType::I8).with_range(CodeRange::new(lo as i32, hi as i32).unwrap());
        let v = check(&spec_a, &spec_b, 1).unwrap();
        assert_eq!(!v.verdict(Formulation::Vpmaddubsw).unwrap().pair_overflows, clear, "{amax} {lo}..{hi}");
        for (m, n, k) in [(7usize, 33usize, 64usize), (BLOCK_M + 5, 20, BLOCK_K + 9)] {
            // Extremes included: the worst pairs are the ones that saturate.
            let a: Vec<u8> =
                (0..m * k).map(|i| if i % 3 == 0 { amax } else { rng.below(amax as u64 + 1) as u8 }).collect();
            let b: Vec<i8> = (0..k * n)
                .map(|i| match i % 4 {
                    0 => hi,
                    1 => lo,
                    _ => (lo as i64 + rng.below((hi as i64 - lo as i64 + 1) as u64) as i64) as i8,
                })
                .collect();
            let zps = ZeroPoints::PerTensor(3);
            let mut want = vec![0i32; m * n];
            accumulate(&a, 17, &b, zps, WeightLayout::KxN, GemmDims::new(m, n, k), &mut want).unwrap();
            let w = PackedWeights::new(&b, zps, WeightLayout::KxN, k, n).unwrap();
            let mut got = vec![0i32; m * n];
            gemm_u8s8(&a, k, m, 17, &w, kernel, &mut got).unwrap();
            assert_eq!(got, want, "{} amax {amax} w {lo}..{hi} m {m} n {n} k {k}", kernel.name());
            if m <= BLOCK_M {
                // The raw sums without the gate: exact where the checker clears the block.
                let mut raw = vec![0i32; m * n];
                accumulate(&a, 0, &b, ZeroPoints::PerTensor(0), WeightLayout::KxN, GemmDims::new(m, n, k), &mut raw)
                    .unwrap();
                let ungated = ungated_raw_sums(kernel, &a, m, &w).unwrap();
                if clear {
                    assert_eq!(ungated, raw, "amax {amax} w {lo}..{hi}: cleared, so exact without the gate");
                }
            }
        }
        if !clear {
            // The checker's worst pair, in every position: the ungated kernel saturates.
            let worst = if 2 * amax as i32 * (lo as i32) < i16::MIN as i32 { lo } else { hi };
            let k = 8;
            let w = PackedWeights::new(&vec![worst; k], ZeroPoints::PerTensor(0), WeightLayout::KxN, k, 1).unwrap();
            let ungated = ungated_raw_sums(kernel, &vec![amax; k], 1, &w).unwrap();
            assert_ne!(ungated[0], k as i32 * amax as i32 * worst as i32, "amax {amax} x {worst} must saturate");
        }
    }
    // The trap itself: 255 x 127 in every position, K = 64. Each group of four is two pair
    // sums of 64770, each saturated to 32767, so the kernel returns 16 * 2 * 32767 against
    // the exact 64 * 255 * 127.
    let (k, n) = (64usize, 16usize);
    let a = vec![255u8; k];
    let b = vec![127i8; k * n];
    let w = PackedWeights::new(&b, ZeroPoints::PerTensor(0), WeightLayout::KxN, k, n).unwrap();
    let ungated = ungated_raw_sums(kernel, &a, 1, &w).unwrap();
    let pair = vpmaddubsw_pair(255, 127, 255, 127) as i32;
    assert_eq!(pair, i16::MAX as i32);
    assert!(ungated.iter().all(|&v| v == (k / 2) as i32 * pair), "{ungated:?}");
    let mut got = vec![0i32; n];
    gemm_u8s8(&a, k, 1, 0, &w, kernel, &mut got).unwrap();
    assert!(got.iter().all(|&v| v == (k * 255 * 127) as i32), "the gated kernel is exact: {got:?}");
    println!("{}: saturates to {} where the exact sum is {}", kernel.name(), ungated[0], got[0]);
}

/// `s8 x s8` through every `u8 x s8` kernel (activations shifted by 128 as they are packed):
/// bit-exact with the reference on `i8` activations over each kernel's tile edges, zero points at
/// their extremes, and the same errors for bad arguments.
#[test]
fn s8s8_equals_the_reference_on_every_kernel() {
    use quantproof_optimized::gemm::gemm_s8s8_threaded;
    let mut rng = Rng::new(0x5858);
    for kernel in kernels() {
        let (tm, tn) = kernel.tile();
        let mut cases = 0;
        for &m in &around(&[1, tm, BLOCK_M + 1]) {
            for &n in &around(&[NR, tn]) {
                for &k in &around(&[KR, BLOCK_K]) {
                    let lda = k + (m + n) % 3;
                    let a: Vec<i8> = (0..m.saturating_sub(1) * lda + k).map(|_| rng.below(256) as u8 as i8).collect();
                    let b: Vec<i8> = (0..k * n).map(|_| rng.below(256) as u8 as i8).collect();
                    let za = [-128, 127, 0, 5][(m + k) % 4];
                    let zb: Vec<i32> = (0..n).map(|j| [-128, 127, 0, -3][(j + k) % 4]).collect();
                    let zps = ZeroPoints::PerColumn(&zb);
                    let dense: Vec<i8> = (0..m).flat_map(|i| a[i * lda..i * lda + k].to_vec()).collect();
                    let mut want = vec![0i32; m * n];
                    accumulate(&dense, za, &b, zps, WeightLayout::KxN, GemmDims::new(m, n, k), &mut want).unwrap();
                    let w = PackedWeights::new(&b, zps, WeightLayout::KxN, k, n).unwrap();
                    let mut got = vec![0i32; m * n];
                    gemm_s8s8_threaded(&a, lda, m, za, &w, kernel, 2, &mut got).unwrap();
                    assert_eq!(got, want, "{} s8s8 m {m} n {n} k {k} za {za}", kernel.name());
                    cases += 1;
                }
            }
        }
        println!("{}: {cases} s8 x s8 cases bit-exact", kernel.name());
    }
    let w = PackedWeights::new(&[1i8; 8], ZeroPoints::PerTensor(0), WeightLayout::NxK, 4, 2).unwrap();
    let mut out = [0i32; 2];
    let k = GemmKernel::Portable;
    assert!(matches!(
        gemm_s8s8_threaded(&[1i8; 4], 3, 1, 0, &w, k, 1, &mut out),
        Err(QuantError::InvalidArgument { .. })
    ));
    assert!(matches!(
        gemm_s8s8_threaded(&[1i8; 3], 4, 1, 0, &w, k, 1, &mut out),
        Err(QuantError::LengthMismatch { .. })
    ));
    assert!(gemm_s8s8_threaded(&[1i8; 4], 4, 1, 128, &w, k, 1, &mut out).is_err());
    assert!(gemm_s8s8_threaded(&[1i8; 4], 4, 1, -129, &w, k, 1, &mut out).is_err());
    assert!(matches!(
        gemm_s8s8_threaded(&[1i8; 4], 4, 1, 0, &w, k, 1, &mut out[..1]),
        Err(QuantError::LengthMismatch { .. })
    ));
}
