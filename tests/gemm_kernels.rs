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
        println!("{} (tile {tm}x{tn}): {cases} tile cases bit-exact", kernel.name());
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

/// Threads split the rows; every thread count gives the reference's result, and the first
/// overflowing element in row order is the one reported.
#[test]
fn threads_give_the_same_result() {
    use quantproof_optimized::gemm::gemm_u8s8_threaded;
    let mut rng = Rng::new(77);
    for (m, n, k) in [(64usize, 130usize, 300usize), (37, 70, 1000), (9, 33, 4000)] {
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
