//! # Integer GEMM: `u8` activations x `s8` weights -> exact `i32`
//!
//! The twin of [`quantproof_reference::gemm::accumulate`] for the common int8 case (ONNX
//! Runtime's `MatMulInteger` with u8 x s8, PyTorch's `quantized::linear` on fbgemm, the Linear
//! layers of a dynamically quantized transformer):
//!
//! ```text
//! C[i][j] = sum_k (A[i][k] - za) (B[k][j] - zb[j])
//!         = sum_k A[i][k] B[k][j] - za colsum[j] - zb[j] rowsum[i] + K za zb[j]      (gemmlowp)
//! ```
//!
//! The weights are packed once ([`PackedWeights`]): panels of `NR = 16` columns, `K` padded with
//! zeros to a multiple of `KR = 4`, each group of four `k` of the sixteen columns in 64 bytes (the
//! layout `vpdpbusd` reads), with their column sums. The raw products `sum_k A B` come from a
//! micro-kernel; the zero-point terms are added in `i64` and the result is converted to `i32`
//! exactly, or refused with [`QuantError::AccumulatorOverflow`] where the exact value leaves
//! `i32` (as the reference does).
//!
//! | micro-kernel | tile | needs | exact when |
//! |---|---|---|---|
//! | `qu8s8_gemm_32x32c4__amx` | 32 x 32, k by 64 | Intel AMX-TILE + AMX-INT8 (`tdpbusd` on 16 x 64-byte tiles; a packed panel's 16 groups are a B tile as they are), the OS's tile state and Linux's per-process tile permission | as `vpdpbusd` (no saturation; `K <= 65793`) |
//! | `qu8s8_gemm_6x64c4__avx512vnni` | 6 x 64, k by 4, cache-blocked | AVX-512 F/BW + VNNI | `K * 255 * 128 < 2^31` (`K <= 65793`: `vpdpbusd` adds without saturating, each product at most `255 * 128` in magnitude); larger `K` falls back to the portable kernel |
//! | `qu8s8_gemm_6x16c4__avxvnni` | 6 x 16, k by 4, cache-blocked | AVX-VNNI (`vpdpbusd` ymm) | as above |
//! | `qu8s8_gemm_6x16c4__avx2_maddubs` | 6 x 16, k by 4, cache-blocked | AVX2 (`vpmaddubsw` then `vpmaddwd` by ones: `vpdpbusd` in three instructions, whose pair sums saturate to `i16`) | as above, and only on a block whose pair sums [`overflow::check`](quantproof_reference::overflow::check) proves inside `i16` from the packed weights' range and the block's largest activation (weights in `[-64, 64]`, or activations at most 127 as with `reduce_range`); any other block runs the `vpmaddwd` kernel below |
//! | `qu8s8_gemm_4x8c4__avx2` | 4 x 8, k by 4 | AVX2 (`vpmovsxbw`, `vpmovzxbw`, `vpmaddwd`: no saturating `vpmaddubsw`) | as above |
//! | `qu8s8_gemm_1x16c4__neondot` | 1 x 16, k by 4 | NEON + dotprod (`sdot`, by inline assembly: the intrinsic is unstable): activations shifted to `a - 128`, `128 colsum` added back | as above |
//! | `qu8s8_gemm_1x16c4__neon_mlal` | 1 x 16, k by 4 | NEON (`smlal` of widened i16 values into four partial sums per column) | as above |
//! | `qu8s8_gemm_1x16c4__portable` | 1 x 16 | nothing | always (`i64` sums) |
//!
//! The two VNNI kernels run under a cache-blocked driver (`blocked`): [`BLOCK_M`] rows of
//! activations packed at a time, [`BLOCK_K`] `k` per pass, so that a group of panels stays in L1
//! while every 6-row tile of the block passes over it, and the raw sums go straight into the
//! output (finished in place where every exact value fits `i32`). The others take four rows (or
//! AMX's 32) at a time over the whole depth. AMX, where every exact value fits `i32`: with no
//! weight zero point its accumulator tiles start from the column terms and are stored straight
//! into the output (no epilogue), and weights larger than half of L2 are taken a range of
//! panels at a time by groups of blocks (each block streamed them from L3 otherwise);
//! otherwise the block's sums are finished in one AVX-512 pass.
//! The packed weights and the activation blocks are 64-byte aligned (`AlignedVec`); callers
//! get the most from aligned outputs too (a tile row store spanning two lines costs twice).
//!
//! [`gemm_u8s8_threaded`] cuts the rows into chunks the threads take dynamically; the
//! result does not depend on the thread count.

use quantproof_reference::error::{check_len, QuantError, Result};
use quantproof_reference::gemm::{to_i32_accumulator, GemmDims, WeightLayout, ZeroPoints};
use quantproof_reference::scheme::QType;

use crate::aligned::AlignedVec;

/// Columns per packed panel.
pub const NR: usize = 16;
/// `k` per packed group.
pub const KR: usize = 4;
/// Rows per AVX-512 VNNI micro-kernel call.
pub const MR: usize = 4;
/// Panels per AVX-512 VNNI micro-kernel call (the tile is MR x PANELS * NR = 4 x 64: sixteen
/// independent accumulators hide `vpdpbusd`'s latency).
pub const PANELS: usize = 4;
/// `k` per cache block of the blocked VNNI kernels (a multiple of [`KR`]): one group of panels'
/// block (`PANELS x BLOCK_K x NR` = 32 KiB) stays in L1 while every row tile passes over it.
pub const BLOCK_K: usize = 512;
/// Activation rows per packed block of the blocked VNNI kernels (a multiple of their tile rows).
pub const BLOCK_M: usize = 96;
/// AMX, direct path: packed weights above this size (half of a 2 MiB L2) no longer stay in L2
/// while every 32-row block passes over all of them (2048^3: 4 MiB of panels, streamed from L3
/// once per block); the blocks of a group then pass over one range of panels at a time.
/// Weights up to it (1024^3: 1 MiB) run whole, block after block, which measured faster for
/// them (1024^3: 2950 against 2600 GOPS ranged; 128 x 384 x 1536: 2465 against 2110).
#[cfg(target_arch = "x86_64")]
const AMX_RANGED_FROM: usize = 1 << 20;
/// AMX, ranged: the bytes of packed weights in one range of panels (measured against 512 KiB
/// and 1 MiB: 2048^3 2120 / 2090 / 1985 GOPS, 512 x 512 x 4096 2410 / 2255 / 2255).
#[cfg(target_arch = "x86_64")]
const AMX_PANEL_BYTES: usize = 1 << 18;
/// AMX, ranged: 32-row blocks per group (8: 512 KiB of activations at K = 2048; against 4:
/// 2048^3 2120 against 1985 GOPS).
#[cfg(target_arch = "x86_64")]
const AMX_GROUP: usize = 8;
/// The largest `K` whose raw `u8 x s8` sums cannot leave `i32` (`K * 255 * 128 <= 2^31 - 1`).
pub const MAX_EXACT_K: usize = (i32::MAX as usize) / (255 * 128);

/// A micro-kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmKernel {
    Portable,
    Avx2,
    /// AVX2 `vpmaddubsw` + `vpmaddwd` (fbgemm's and MLAS's AVX2 `u8 x s8` path), run only on
    /// blocks the overflow checker proves free of `i16` saturation; other blocks take [`Avx2`](GemmKernel::Avx2)'s
    /// `vpmaddwd` kernel.
    Avx2Maddubs,
    AvxVnni,
    Avx512Vnni,
    /// Intel AMX-INT8 tiles (`tdpbusd`), on CPUs that have them (Sapphire Rapids and later).
    AmxInt8,
    Neon,
    NeonDot,
}

impl GemmKernel {
    pub const ALL: [GemmKernel; 8] = [
        GemmKernel::Portable,
        GemmKernel::Avx2,
        GemmKernel::Avx2Maddubs,
        GemmKernel::AvxVnni,
        GemmKernel::Avx512Vnni,
        GemmKernel::AmxInt8,
        GemmKernel::Neon,
        GemmKernel::NeonDot,
    ];

    /// XNNPACK-style name: type, op, tile, ISA.
    pub fn name(self) -> &'static str {
        match self {
            GemmKernel::Portable => "qu8s8_gemm_1x16c4__portable",
            GemmKernel::Avx2 => "qu8s8_gemm_4x8c4__avx2",
            GemmKernel::Avx2Maddubs => "qu8s8_gemm_6x16c4__avx2_maddubs",
            GemmKernel::AvxVnni => "qu8s8_gemm_6x16c4__avxvnni",
            GemmKernel::Avx512Vnni => "qu8s8_gemm_6x64c4__avx512vnni",
            GemmKernel::AmxInt8 => "qu8s8_gemm_32x32c4__amx",
            GemmKernel::Neon => "qu8s8_gemm_1x16c4__neon_mlal",
            GemmKernel::NeonDot => "qu8s8_gemm_1x16c4__neondot",
        }
    }

    /// The micro-kernel's output tile (rows, columns) per call, as its name says.
    pub fn tile(self) -> (usize, usize) {
        match self {
            GemmKernel::Portable | GemmKernel::Neon | GemmKernel::NeonDot => (1, NR),
            GemmKernel::Avx2 => (MR, 8),
            GemmKernel::Avx2Maddubs => (6, NR),
            GemmKernel::AvxVnni => (6, NR),
            GemmKernel::Avx512Vnni => (6, PANELS * NR),
            GemmKernel::AmxInt8 => (32, 2 * NR),
        }
    }

    /// Whether this CPU can run it (detected at run time).
    pub fn is_available(self) -> bool {
        match self {
            GemmKernel::Portable => true,
            GemmKernel::Avx2 | GemmKernel::Avx2Maddubs => crate::isa::Isa::Avx2.is_available(),
            GemmKernel::AvxVnni => crate::isa::Extension::AvxVnni.is_available(),
            GemmKernel::Avx512Vnni => crate::isa::Extension::Avx512Vnni.is_available(),
            #[cfg(target_arch = "x86_64")]
            GemmKernel::AmxInt8 => amx::available(),
            #[cfg(not(target_arch = "x86_64"))]
            GemmKernel::AmxInt8 => false,
            GemmKernel::Neon => crate::isa::Isa::Neon.is_available(),
            GemmKernel::NeonDot => crate::isa::Extension::NeonDotprod.is_available(),
        }
    }

    /// Whether its int32 accumulation is exact for depth `k` (the portable kernel sums in i64;
    /// the others add at most `k` products of magnitude `255 * 128` in i32).
    pub fn exact_for(self, k: usize) -> bool {
        self == GemmKernel::Portable || k <= MAX_EXACT_K
    }

    /// The fastest available micro-kernel of one ISA level (the portable one for `scalar`):
    /// AVX-512 uses AMX tiles where the CPU has them, else VNNI; AVX2 uses AVX-VNNI where present,
    /// else `vpmaddubsw` where the checker allows it and `vpmaddwd` elsewhere; NEON uses sdot where the CPU has the dot-product extension.
    pub fn best_for(isa: crate::isa::Isa) -> GemmKernel {
        use crate::isa::Isa;
        let candidates: &[GemmKernel] = match isa {
            Isa::Avx512 => &[GemmKernel::AmxInt8, GemmKernel::Avx512Vnni],
            Isa::Avx2 => &[GemmKernel::AvxVnni, GemmKernel::Avx2Maddubs],
            Isa::Neon => &[GemmKernel::NeonDot, GemmKernel::Neon],
            _ => &[],
        };
        candidates.iter().copied().find(|k| k.is_available()).unwrap_or(GemmKernel::Portable)
    }

    /// The fastest available kernel.
    pub fn best() -> GemmKernel {
        [
            GemmKernel::AmxInt8,
            GemmKernel::Avx512Vnni,
            GemmKernel::AvxVnni,
            GemmKernel::Avx2Maddubs,
            GemmKernel::NeonDot,
            GemmKernel::Neon,
        ]
        .into_iter()
        .find(|k| k.is_available())
        .unwrap_or(GemmKernel::Portable)
    }
}

/// Weights `B` (`K x N`, s8) packed for the micro-kernels, with their zero points and column sums.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWeights {
    k: usize,
    n: usize,
    /// `K` rounded up to a multiple of [`KR`].
    kp: usize,
    /// `ceil(N / NR)` panels of `kp * NR` bytes.
    panels: AlignedVec<i8>,
    col_sums: Vec<i64>,
    /// `K zb[j] - colsum[j]` modulo 2^32: the column's zero-point term per unit of the activation
    /// zero point (`za` times it is the term modulo 2^32, what the wrapping epilogues add).
    col_coef: Vec<i32>,
    zero_points: Vec<i32>,
    /// Every weight zero point is 0 (no row term).
    symmetric: bool,
    /// The smallest and largest weight (what the saturation check of `vpmaddubsw` needs).
    range: (i8, i8),
}

impl PackedWeights {
    /// Packs `b` (stored as `layout` says, `K x N` logically) with its zero points.
    pub fn new(
        b: &[i8],
        zero_points: ZeroPoints<'_>,
        layout: WeightLayout,
        k: usize,
        n: usize,
    ) -> Result<PackedWeights> {
        let kn = k.checked_mul(n).ok_or(QuantError::TooLarge {
            what: "K x N",
            value: k as u128 * n as u128,
            limit: usize::MAX as u128,
        })?;
        check_len("weights (K x N)", kn, b.len())?;
        zero_points.check(n, QType::I8)?;
        let kp = k.div_ceil(KR) * KR;
        // Whole groups of PANELS panels (zero columns past N), so the micro-kernel never tails.
        let np = n.div_ceil(NR).div_ceil(PANELS) * PANELS;
        let mut panels = AlignedVec::<i8>::zeroed(np * kp * NR);
        let mut col_sums = vec![0i64; n];
        for j in 0..n {
            let (p, c) = (j / NR, j % NR);
            for kk in 0..k {
                let v = b[layout.index(kk, j, k, n)];
                col_sums[j] += v as i64;
                panels[p * kp * NR + (kk / KR) * KR * NR + c * KR + kk % KR] = v;
            }
        }
        let range = b.iter().fold((i8::MAX, i8::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let zero_points: Vec<i32> = (0..n).map(|j| zero_points.get(j)).collect();
        let col_coef = col_sums.iter().zip(&zero_points).map(|(&cs, &zb)| (k as i64 * zb as i64 - cs) as i32).collect();
        let symmetric = zero_points.iter().all(|&z| z == 0);
        Ok(PackedWeights { k, n, kp, panels, col_sums, col_coef, zero_points, symmetric, range })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }
}

/// `out[i*N + j] = sum_k (a[i*lda + k] - za) (B[k][j] - zb[j])` for `m` rows of `a` (row stride
/// `lda >= K`), with the micro-kernel `kernel` (an unavailable one is an error). Bit-exact with
/// [`quantproof_reference::gemm::accumulate`].
pub fn gemm_u8s8(
    a: &[u8],
    lda: usize,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    kernel: GemmKernel,
    out: &mut [i32],
) -> Result<()> {
    gemm_u8s8_threaded(a, lda, m, a_zero_point, w, kernel, 1, out)
}

/// [`gemm_u8s8`] on up to `threads` threads (0 counts as 1; products under 2^20 multiply-adds
/// run on the calling thread): the rows are cut into chunks ([`thread_chunks`]: at most
/// [`BLOCK_M`], shrinking towards the end) that the threads take in turn (dynamic scheduling),
/// each chunk with its own buffers. The result is the same
/// for any thread count (every output element is computed by one thread, the same way).
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8s8_threaded(
    a: &[u8],
    lda: usize,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    kernel: GemmKernel,
    threads: usize,
    out: &mut [i32],
) -> Result<()> {
    let k = w.k;
    check_rows(a.len(), lda, m, k)?;
    // Row `i` of `A` is its `K` bytes from `i * lda`.
    let dense = |i: usize, dst: &mut [u8]| dst.copy_from_slice(&a[i * lda..i * lda + k]);
    gemm_u8s8_rows(&dense, m, a_zero_point, w, kernel, threads, out)
}

/// `out` holds `M x N` values.
fn check_out(m: usize, n: usize, len: usize) -> Result<()> {
    let mn = m.checked_mul(n).ok_or(QuantError::TooLarge {
        what: "M x N",
        value: m as u128 * n as u128,
        limit: usize::MAX as u128,
    })?;
    check_len("output (M x N)", mn, len)
}

/// `lda >= K` and `a` long enough for `m` rows of stride `lda`.
fn check_rows(len: usize, lda: usize, m: usize, k: usize) -> Result<()> {
    if lda < k {
        return Err(QuantError::InvalidArgument { what: "lda", detail: format!("{lda} is below K = {k}") });
    }
    let need = if m == 0 { Some(0) } else { (m - 1).checked_mul(lda).and_then(|v| v.checked_add(k)) };
    let need = need.ok_or(QuantError::TooLarge {
        what: "M x lda",
        value: m as u128 * lda as u128,
        limit: usize::MAX as u128,
    })?;
    if len < need {
        return Err(QuantError::LengthMismatch { what: "a (M rows of stride lda)", expected: need, got: len });
    }
    Ok(())
}

/// `s8` activations times the packed `s8` weights (`s8 x s8 -> i32`, ONNX's MatMulInteger on
/// int8 inputs, TFLite's int8 fully-connected accumulators): `out[i*N + j] = sum_k (a[i*lda + k]
/// - za) (B[k][j] - zb[j])`, bit-exact with [`quantproof_reference::gemm::accumulate`] on `i8`
/// activations. The activations are shifted to `u8` as the rows are packed (`a + 128`, a flip of
/// the sign bit) and their zero point with them (`za + 128`): `(a + 128) - (za + 128) = a - za`
/// exactly, so every `u8 x s8` kernel computes the same exact sums (the `128 colsum` compensation
/// is the zero-point column term the GEMM already adds). Errors: as [`gemm_u8s8_threaded`], with
/// `za` checked against the `i8` range.
#[allow(clippy::too_many_arguments)]
pub fn gemm_s8s8_threaded(
    a: &[i8],
    lda: usize,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    kernel: GemmKernel,
    threads: usize,
    out: &mut [i32],
) -> Result<()> {
    let k = w.k;
    check_rows(a.len(), lda, m, k)?;
    check_out(m, w.n, out.len())?;
    QType::I8.full_range().check_zero_point(0, a_zero_point)?;
    let shifted = |i: usize, dst: &mut [u8]| {
        for (d, &v) in dst.iter_mut().zip(&a[i * lda..i * lda + k]) {
            *d = (v as u8) ^ 0x80;
        }
    };
    gemm_u8s8_rows(&shifted, m, a_zero_point + 128, w, kernel, threads, out)
}

/// Where a GEMM's activation rows come from: `fill(i, dst)` writes row `i`'s `K` bytes into `dst`
/// (`dst.len() == K`). A dense matrix copies its row; a convolution writes the row of the im2col
/// matrix it never builds (the GEMM packs rows into its own buffer anyway, so the activations
/// are copied once).
pub type RowSource<'a> = &'a (dyn Fn(usize, &mut [u8]) + Sync);

/// [`gemm_u8s8_threaded`] with rows from a [`RowSource`]: `out[i*N + j] = sum_k (row_i[k] - za)
/// (B[k][j] - zb[j])` for `i < m`. The source is asked for each row (once per block of rows,
/// from the thread that computes it) and must give the same bytes every time.
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8s8_rows(
    rows: RowSource<'_>,
    m: usize,
    a_zero_point: i32,
    w: &PackedWeights,
    kernel: GemmKernel,
    threads: usize,
    out: &mut [i32],
) -> Result<()> {
    let (k, n) = (w.k, w.n);
    check_out(m, n, out.len())?;
    QType::U8.full_range().check_zero_point(0, a_zero_point)?;
    if !kernel.is_available() {
        return Err(QuantError::Unsupported { what: format!("{}: not available on this CPU", kernel.name()) });
    }
    let _ = GemmDims::new(m, n, k);
    // Past the exact depth the i32 micro-kernels could wrap: the portable one (i64) takes over.
    let kernel = if kernel.exact_for(k) { kernel } else { GemmKernel::Portable };
    // The zero-point terms that depend on the column only: -za colsum[j] + K za zb[j].
    let col_bias = ColTerms::new(w, a_zero_point);
    // Threads only where each gets several row blocks of real work.
    let blocks = m.div_ceil(MR);
    let work = m.saturating_mul(n).saturating_mul(k);
    let threads = threads.clamp(1, blocks.max(1)).min(if work < (1 << 20) { 1 } else { usize::MAX });
    if threads <= 1 || n == 0 {
        return with_scratch(|scratch| rows_block(rows, 0, m, w, kernel, &col_bias, out, scratch));
    }
    // Dynamic scheduling over guided chunks (`thread_chunks`): each of the `threads` workers
    // (the calling thread among them) takes the next chunk until none is left, so a core that
    // runs slower (a busy sibling, a lower clock) takes fewer chunks instead of holding the
    // others up. Each chunk is computed the same way whoever takes it.
    let bounds = thread_chunks(m, threads, kernel.chunk_shape());
    // A chunk's first row and its output rows, taken once by the worker that computes it.
    type Slot<'o> = std::sync::Mutex<Option<(usize, &'o mut [i32])>>;
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(bounds.len());
    let mut rest = out;
    for &(i0, rows) in &bounds {
        let (o, tail) = std::mem::take(&mut rest).split_at_mut(rows * n);
        slots.push(std::sync::Mutex::new(Some((i0, o))));
        rest = tail;
    }
    let results: Vec<std::sync::Mutex<Option<Result<()>>>> =
        slots.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let col_bias = &col_bias;
    let work_loop = || {
        // One worker's buffers, reused by every chunk it takes (and by its next call).
        with_scratch(|scratch| loop {
            let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(slot) = slots.get(c) else { break };
            // Each chunk index is taken once, so its slot is never contended.
            let taken = slot.lock().map(|mut g| g.take()).unwrap_or(None);
            if let Some((i0, o)) = taken {
                let r = rows_block(rows, i0, o.len() / n, w, kernel, col_bias, o, scratch);
                if let Ok(mut g) = results[c].lock() {
                    *g = Some(r);
                }
            }
        })
    };
    let tasks: Vec<Box<dyn FnOnce() + Send + '_>> =
        (0..threads).map(|_| Box::new(&work_loop) as Box<dyn FnOnce() + Send + '_>).collect();
    // On the engine's persistent workers (no thread is created per call).
    crate::pool::run(threads, tasks);
    // The first error in row order (each chunk reports its first overflowing element).
    for r in results {
        match r.into_inner() {
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(()))) => {}
            // A chunk not computed (a poisoned lock: a panicking task panics the caller first).
            _ => {
                return Err(QuantError::InvalidArgument { what: "gemm", detail: "a row chunk was not computed".into() })
            }
        }
    }
    Ok(())
}

/// How [`thread_chunks`] cuts a kernel's rows: chunks are multiples of `tile` rows (the
/// kernel's row block), between `min` and `max` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkShape {
    pub tile: usize,
    pub min: usize,
    pub max: usize,
}

impl GemmKernel {
    /// The row chunks this kernel's threads take ([`thread_chunks`]). AMX computes 32 rows per
    /// block (two 16-row tiles), so its chunks are whole 32-row blocks, 32 to 128 rows: a chunk
    /// of 24 would run one full and one half-empty tile, and every chunk streams all the packed
    /// weights through the tiles. The other kernels: 6-row tiles (the blocked kernels' rows),
    /// 24 to [`BLOCK_M`] (one packed block) rows.
    pub fn chunk_shape(self) -> ChunkShape {
        match self {
            GemmKernel::AmxInt8 => ChunkShape { tile: 32, min: 32, max: 128 },
            _ => ChunkShape { tile: 6, min: 24, max: BLOCK_M },
        }
    }
}

/// The row chunks `(first row, rows)` that `threads` workers take in turn, in row order
/// (guided self-scheduling): each chunk is an even share of what is left, `ceil(left / (2 T))`
/// rounded up to a multiple of the shape's tile, between its `min` and `max` rows (the last chunk
/// may be shorter). Large chunks while much is left, then shrinking ones, so the workers finish
/// within a small chunk of each other: with fixed chunks of 96 rows, 1024 rows are 11 chunks,
/// six for one worker and five for the other, and two threads could not pass
/// 1024 / 576 = 1.78x one.
pub fn thread_chunks(m: usize, threads: usize, shape: ChunkShape) -> Vec<(usize, usize)> {
    let t = threads.max(1);
    let tile = shape.tile.max(1);
    let mut chunks = Vec::new();
    let mut i0 = 0;
    while i0 < m {
        let left = m - i0;
        let share = left.div_ceil(2 * t).div_ceil(tile) * tile;
        let rows = share.max(shape.min).min(shape.max.max(1)).min(left);
        chunks.push((i0, rows));
        i0 += rows;
    }
    chunks
}

/// The activation block and the AMX sums a thread reuses across the row chunks it takes and
/// across calls ([`with_scratch`]). Allocating them per chunk cost page faults and, for the
/// 128 KiB blocks the allocator maps and unmaps, a TLB shootdown on the other cores for every
/// chunk: with AMX, two threads ran at 1.1x one; per call, allocating and zeroing them was about
/// a tenth of a small-M product. The zero padding of every activation row past `K` (written at
/// allocation) stays zero while `K` and the row stride stay the same (the kernels write only each
/// row's first `K` bytes); [`Scratch::abuf`] zeroes the buffer when they change.
#[derive(Default)]
struct Scratch {
    abuf: Option<AlignedVec<u8>>,
    raw32: Option<AlignedVec<i32>>,
    /// Activation rows of `abuf` that may hold a previous block's codes (AMX reads all 32).
    filled: usize,
    /// `(K, row stride)` of the rows `abuf` holds.
    shape: (usize, usize),
}

impl Scratch {
    /// `abuf`, at least `len` bytes, for rows of `k` codes at stride `kstride`: zero past
    /// `filled` rows, and past `k` in every row.
    fn abuf(&mut self, len: usize, k: usize, kstride: usize) -> &mut AlignedVec<u8> {
        if self.shape != (k, kstride) {
            if let Some(a) = self.abuf.as_mut() {
                a.iter_mut().for_each(|v| *v = 0);
            }
            self.shape = (k, kstride);
            self.filled = 0;
        }
        if self.abuf.as_ref().is_none_or(|v| v.len() < len) {
            // A new, zeroed buffer.
            self.filled = 0;
        }
        reuse(&mut self.abuf, len)
    }
}

/// A thread keeps its [`Scratch`] between calls up to this size (a call that needed larger
/// buffers frees them when it ends).
const KEEP_SCRATCH_BYTES: usize = 4 << 20;

thread_local! {
    /// Each thread's GEMM buffers (the calling thread's and the pool workers'), kept between calls.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `f` with this thread's kept [`Scratch`] (a fresh one if it is in use: a nested call).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let r = f(&mut s);
            let bytes = s.abuf.as_ref().map_or(0, |v| v.len()) + 4 * s.raw32.as_ref().map_or(0, |v| v.len());
            if bytes > KEEP_SCRATCH_BYTES {
                *s = Scratch::default();
            }
            r
        }
        Err(_) => f(&mut Scratch::default()),
    })
}

/// The zero-point terms of the output that depend on the column only, `-za colsum[j] + K za
/// zb[j]`, computed once per call: modulo 2^32 for the wrapping epilogues, and exactly only for
/// the checked ones that need it.
struct ColTerms<'w> {
    w: &'w PackedWeights,
    za: i32,
    /// Modulo 2^32, zero padded to whole pairs of panels (the AMX kernel loads them 32 at a time).
    /// (Only x86-64's epilogues wrap.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    narrow: Vec<i32>,
    /// Exact, `N` entries, computed on first use.
    wide: std::sync::OnceLock<Vec<i64>>,
}

impl<'w> ColTerms<'w> {
    fn new(w: &'w PackedWeights, za: i32) -> ColTerms<'w> {
        let mut narrow = vec![0i32; w.n.div_ceil(2 * NR) * 2 * NR];
        for (d, &c) in narrow.iter_mut().zip(&w.col_coef) {
            *d = za.wrapping_mul(c);
        }
        ColTerms { w, za, narrow, wide: std::sync::OnceLock::new() }
    }

    fn wide(&self) -> &[i64] {
        self.wide.get_or_init(|| {
            let (za, k) = (self.za as i64, self.w.k as i64);
            self.w.col_sums.iter().zip(&self.w.zero_points).map(|(&cs, &zb)| -za * cs + k * za * zb as i64).collect()
        })
    }
}

/// `slot`'s buffer, allocated zeroed at `len` (or longer) on first use.
fn reuse<T: Copy + Default>(slot: &mut Option<AlignedVec<T>>, len: usize) -> &mut AlignedVec<T> {
    if slot.as_ref().is_none_or(|v| v.len() < len) {
        *slot = Some(AlignedVec::zeroed(len));
    }
    slot.get_or_insert_with(|| AlignedVec::zeroed(len))
}

/// Rows `first .. first + rows` of the activations into `blk` (rows of `kstride` bytes, the
/// first `k` of each written). Rows `rows .. stale` (a last, short block, or rows an earlier
/// block filled) are zeroed, since AMX reads whole tiles; the `k..kstride` padding is never
/// written, so it stays zero.
fn pack_rows(
    rows_src: RowSource<'_>,
    first: usize,
    rows: usize,
    k: usize,
    kstride: usize,
    stale: usize,
    blk: &mut [u8],
) {
    if rows < stale {
        blk[rows * kstride..stale * kstride].iter_mut().for_each(|v| *v = 0);
    }
    for r in 0..rows {
        rows_src(first + r, &mut blk[r * kstride..r * kstride + k]);
    }
}

/// Rows `i0 .. i0 + m` of the product into `out` (`m` rows of `N`).
#[allow(clippy::too_many_arguments)]
fn rows_block(
    rows_src: RowSource<'_>,
    i0: usize,
    m: usize,
    w: &PackedWeights,
    kernel: GemmKernel,
    terms: &ColTerms<'_>,
    out: &mut [i32],
    scratch: &mut Scratch,
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    if let Some(micro) = blocked::micro(kernel) {
        return rows_blocked(micro, rows_src, i0, m, w, terms, out, scratch);
    }
    let (k, n) = (w.k, w.n);
    let zero_weight_zps = w.symmetric;
    // AMX takes 32 rows of `kp` rounded up to its 64-byte step; the others MR rows of `kp`.
    #[cfg(target_arch = "x86_64")]
    let (mr, kstride) =
        if kernel == GemmKernel::AmxInt8 { (amx::MR, w.kp.div_ceil(amx::KC) * amx::KC) } else { (MR, w.kp) };
    #[cfg(not(target_arch = "x86_64"))]
    let (mr, kstride) = (MR, w.kp);
    let amx_path = mr != MR;
    // The i32 sums of the AMX tiles, stored straight from the tiles into rows of `npad` (N
    // rounded up to two panels, so whole tiles fit); the other kernels write i64 sums to `raw`.
    let npad = n.div_ceil(2 * NR) * 2 * NR;
    // Every exact value |sum_k (a - za)(b - zb)| <= K 255^2 fits i32 for K <= 33025: then the i32
    // sums plus the column and row terms, all taken modulo 2^32 (wrapping), are the exact
    // values, and no element needs the i64 check (for the AMX tiles, which hold i32 sums). The
    // column terms as i32, padded with zeros to `npad` (`amx::Dest::Direct` loads them 32 at a
    // time).
    #[cfg(target_arch = "x86_64")]
    let (fits_i32, col_bias32) = ((k as u64) * 255 * 255 <= i32::MAX as u64, &terms.narrow[..npad]);
    // AMX with no weight zero point (no row term) where every value fits i32: the tiles start
    // from the column terms and are stored straight into the output (`amx::Dest::Direct`).
    #[cfg(target_arch = "x86_64")]
    let direct = amx_path && fits_i32 && zero_weight_zps;
    #[cfg(not(target_arch = "x86_64"))]
    let direct = false;
    // Weights larger than L2 can hold beside the rest (`AMX_RANGED_FROM`): every 32-row block
    // would stream all of them from L3. The direct path then packs a group of blocks at once and
    // passes them all over one range of panels at a time, which stays in L2.
    // (Groups of up to AMX_GROUP blocks.)
    #[cfg(target_arch = "x86_64")]
    let (ranged, group) = (direct && m > mr && w.kp * npad > AMX_RANGED_FROM, AMX_GROUP * mr);
    #[cfg(not(target_arch = "x86_64"))]
    let (ranged, group) = (false, 0);
    scratch.abuf(if ranged { group } else { mr } * kstride, k, kstride);
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let Scratch { abuf, raw32, filled, .. } = scratch;
    #[cfg(target_arch = "x86_64")]
    if ranged {
        let abuf = reuse(abuf, group * kstride);
        // Whole pairs of panels per range (at least one pair).
        let per = (AMX_PANEL_BYTES / (w.kp * NR)).max(2) / 2 * 2;
        for g0 in (0..m).step_by(group) {
            let gm = (m - g0).min(group);
            let blocks = gm.div_ceil(mr);
            for b in 0..blocks {
                let rows = (gm - b * mr).min(mr);
                let blk = &mut abuf[b * mr * kstride..(b + 1) * mr * kstride];
                pack_rows(rows_src, i0 + g0 + b * mr, rows, k, kstride, mr, blk);
            }
            let mut p0 = 0;
            while p0 * NR < n {
                for b in 0..blocks {
                    let (r0, rows) = (g0 + b * mr, (gm - b * mr).min(mr));
                    let dest = amx::Dest::Direct { out: &mut out[r0 * n..(r0 + rows) * n], col_bias: col_bias32 };
                    // SAFETY: as for the block-at-a-time direct call below: AMX is available,
                    // block `b` of `abuf` holds 32 rows of `kstride` bytes (`rows` filled, the
                    // rest zero), `dest` its `rows` output rows and `npad` column terms; `p0`
                    // is even.
                    unsafe { amx::raw_32x32(&abuf[b * mr * kstride..], rows, kstride, w, dest, p0..p0 + per) };
                }
                p0 += per;
            }
        }
        // The first block's rows may all hold codes now.
        *filled = mr;
        return Ok(());
    }
    let raw32 = reuse(raw32, if amx_path && !direct { mr * npad } else { 0 });
    let mut raw = vec![0i64; if amx_path { 0 } else { mr * n }];
    let abuf = reuse(abuf, mr * kstride);
    // The checked epilogue's row and the weights' zero points as i64 (only where it runs).
    #[cfg(target_arch = "x86_64")]
    let checked = !(amx_path && fits_i32);
    #[cfg(not(target_arch = "x86_64"))]
    let checked = true;
    let mut row32 = vec![0i32; if checked { n } else { 0 }];
    let zb_cols: Vec<i64> = if checked { w.zero_points.iter().map(|&z| z as i64).collect() } else { Vec::new() };
    let col_bias: &[i64] = if checked { terms.wide() } else { &[] };
    let mut r0 = 0;
    while r0 < m {
        let rows = (m - r0).min(mr);
        pack_rows(rows_src, i0 + r0, rows, k, kstride, *filled, &mut abuf[..]);
        *filled = rows;
        match kernel {
            #[cfg(target_arch = "x86_64")]
            GemmKernel::AmxInt8 if direct => {
                let dest = amx::Dest::Direct { out: &mut out[r0 * n..(r0 + rows) * n], col_bias: col_bias32 };
                // SAFETY: AMX is available (checked by the caller); `abuf` holds 32 rows of
                // `kstride` bytes (a multiple of 64, at least kp), `rows` of them filled; `dest`
                // holds the block's `rows` output rows of `n` and `npad` column terms (`n`
                // rounded up to 32).
                unsafe { amx::raw_32x32(&abuf, rows, kstride, w, dest, 0..usize::MAX) };
                r0 += rows;
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            GemmKernel::AmxInt8 => {
                let dest = amx::Dest::Raw { raw: &mut raw32[..], npad };
                // SAFETY: AMX is available (checked by the caller); `abuf` holds 32 rows of
                // `kstride` bytes (a multiple of 64, at least kp), `rows` of them filled;
                // `raw32` holds 32 rows of `npad` (a multiple of 32, at least n).
                unsafe { amx::raw_32x32(&abuf, rows, kstride, w, dest, 0..usize::MAX) }
            }
            // Every micro-kernel below: the caller checked `kernel.is_available()`, so the CPU
            // has its features; `abuf` holds MR rows of `kp` bytes and `raw` MR rows of `n` sums.
            // (The VNNI kernels took the blocked path above.)
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx2 => {
                // SAFETY: see above (AVX2 detected).
                unsafe { avx256::raw_4x8_avx2(&abuf, w, &mut raw) }
            }
            #[cfg(target_arch = "aarch64")]
            GemmKernel::NeonDot => {
                // SAFETY: see above (NEON + dotprod detected).
                unsafe { neon::raw_dot(&abuf, rows, w, &mut raw) }
            }
            #[cfg(target_arch = "aarch64")]
            GemmKernel::Neon => {
                // SAFETY: see above (NEON detected).
                unsafe { neon::raw_mlal(&abuf, rows, w, &mut raw) }
            }
            _ => portable_raw(&abuf, rows, w, &mut raw),
        }
        #[cfg(target_arch = "x86_64")]
        if amx_path && fits_i32 {
            let mut sums = [0i32; amx::MR];
            if !zero_weight_zps {
                // (At most K 255 <= 2^24: an i32.)
                for (r, s) in sums[..rows].iter_mut().enumerate() {
                    *s = abuf[r * kstride..r * kstride + k].iter().map(|&v| v as i32).sum();
                }
            }
            let out_blk = &mut out[r0 * n..(r0 + rows) * n];
            // SAFETY: AMX is available (checked by the caller), so AVX-512F is (`amx::available`).
            unsafe { amx::finish_rows(&raw32[..], npad, out_blk, &col_bias32[..n], &w.zero_points, &sums[..rows]) };
            r0 += rows;
            continue;
        }
        for r in 0..rows {
            // Only weights with nonzero zero points need the row's sum.
            let row_sum: i64 =
                if zero_weight_zps { 0 } else { abuf[r * kstride..r * kstride + k].iter().map(|&v| v as i64).sum() };
            let out_r = &mut out[(r0 + r) * n..(r0 + r + 1) * n];
            let checked = if amx_path {
                finish_row_checked(&raw32[r * npad..r * npad + n], col_bias, &zb_cols, row_sum, &mut row32, out_r)
            } else {
                finish_row_checked(&raw[r * n..(r + 1) * n], col_bias, &zb_cols, row_sum, &mut row32, out_r)
            };
            if let Err(j) = checked {
                let value = |j: usize| {
                    let sum = if amx_path { raw32[r * npad + j] as i64 } else { raw[r * n + j] };
                    sum + col_bias[j] - zb_cols[j] * row_sum
                };
                return to_i32_accumulator(value(j), k, i0 + r0 + r, j).map(|_| ());
            }
        }
        r0 += rows;
    }
    Ok(())
}

/// One output row in place from its raw `i32` sums, where every exact value
/// `|sum_k (a - za)(b - zb)| <= K 255^2` fits `i32` (`K <= 33025`): then the sums plus the column
/// and row terms, all taken modulo 2^32 (wrapping), are the exact values, and no element needs a
/// check. A zero `row_sum` skips the weight zero-point term.
#[cfg(target_arch = "x86_64")]
fn finish_row_wrapping(row: &mut [i32], col_bias32: &[i32], zb32: &[i32], row_sum: i32) {
    if row_sum == 0 {
        for (o, &cb) in row.iter_mut().zip(col_bias32) {
            *o = o.wrapping_add(cb);
        }
    } else {
        for ((o, &cb), &zb) in row.iter_mut().zip(col_bias32).zip(zb32) {
            *o = o.wrapping_add(cb).wrapping_sub(zb.wrapping_mul(row_sum));
        }
    }
}

/// One output row from its raw sums: the exact value `sum + col_bias[j] - zb[j] row_sum` in
/// `i64`, checked against `i32` (`v + 2^31` has high bits exactly when `v` is outside
/// `[-2^31, 2^31)`), computed into `scratch` and copied to `out_r` only when every value fits (an
/// error leaves the output row untouched, as the reference does). `Err(j)`: the first column
/// whose value does not fit. Branch-free loops the compiler vectorizes; a zero `row_sum` skips
/// the weight zero-point term.
fn finish_row_checked<S: Copy + Into<i64>>(
    sums: &[S],
    col_bias: &[i64],
    zb: &[i64],
    row_sum: i64,
    scratch: &mut [i32],
    out_r: &mut [i32],
) -> core::result::Result<(), usize> {
    let mut outside = 0u64;
    macro_rules! pass {
        ($exact:expr) => {
            for (((o, &v), &cb), &z) in scratch.iter_mut().zip(sums).zip(col_bias).zip(zb) {
                let x: i64 = $exact(v.into(), cb, z);
                outside |= (x as u64).wrapping_add(1 << 31) >> 32;
                *o = x as i32;
            }
        };
    }
    if row_sum == 0 {
        pass!(|s: i64, cb: i64, _z: i64| s + cb)
    } else {
        pass!(|s: i64, cb: i64, z: i64| s + cb - z * row_sum)
    }
    if outside == 0 {
        out_r.copy_from_slice(scratch);
        return Ok(());
    }
    let value = |j: usize| sums[j].into() + col_bias[j] - zb[j] * row_sum;
    Err((0..sums.len()).find(|&j| i32::try_from(value(j)).is_err()).unwrap_or(0))
}

/// What a blocked micro-kernel computes for `m <= BLOCK_M` rows of `a` (`K` bytes each, dense)
/// **without** its saturation gate: the raw sums `sum_k a B` as the instructions produce them.
/// For `Avx2Maddubs` they are wrong exactly where [`quantproof_reference::overflow::check`]
/// says `vpmaddubsw`'s pair sums leave `i16` (tests and the report show the trap with it); the
/// GEMM entry points never skip the gate. Errors: a kernel that is not blocked or not available
/// here, `m > BLOCK_M`, a short `a`, `K > MAX_EXACT_K`.
pub fn ungated_raw_sums(kernel: GemmKernel, a: &[u8], m: usize, w: &PackedWeights) -> Result<Vec<i32>> {
    if m > BLOCK_M {
        return Err(QuantError::TooLarge { what: "rows", value: m as u128, limit: BLOCK_M as u128 });
    }
    if w.k > MAX_EXACT_K {
        return Err(QuantError::TooLarge { what: "K", value: w.k as u128, limit: MAX_EXACT_K as u128 });
    }
    check_len("a (M x K)", m * w.k, a.len())?;
    #[cfg(target_arch = "x86_64")]
    if let Some(micro) = blocked::micro(kernel) {
        let k = w.k;
        let dense = |i: usize, dst: &mut [u8]| dst.copy_from_slice(&a[i * k..(i + 1) * k]);
        let mut abuf = vec![0u8; m * w.kp];
        let mut c = vec![0i32; m * w.n];
        blocked::raw_block(micro, &dense, 0, m, w, &mut abuf, &mut c, &mut [], false, None);
        return Ok(c);
    }
    Err(QuantError::Unsupported { what: format!("{}: not a blocked kernel available on this CPU", kernel.name()) })
}

/// [`rows_block`] on a blocked VNNI micro-kernel ([`blocked`]): each block of rows' raw sums go
/// straight into `out` where every exact value fits `i32` (finished in place, wrapping), else
/// into a scratch block finished with the checked `i64` epilogue.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn rows_blocked(
    micro: blocked::Micro,
    rows_src: RowSource<'_>,
    i0: usize,
    m: usize,
    w: &PackedWeights,
    terms: &ColTerms<'_>,
    out: &mut [i32],
    scratch: &mut Scratch,
) -> Result<()> {
    let (k, n) = (w.k, w.n);
    let col_bias32 = &terms.narrow[..n];
    let zero_weight_zps = w.symmetric;
    let fits_i32 = (k as u64) * 255 * 255 <= i32::MAX as u64;
    let zb_cols: Vec<i64> = if fits_i32 { Vec::new() } else { w.zero_points.iter().map(|&z| z as i64).collect() };
    let col_bias: &[i64] = if fits_i32 { &[] } else { terms.wide() };
    let abuf = scratch.abuf(blocked::MC.min(m) * w.kp, k, w.kp);
    let mut scratch = vec![0i32; if fits_i32 { 0 } else { blocked::MC.min(m) * n }];
    let mut row32 = vec![0i32; if fits_i32 { 0 } else { n }];
    // Each row's sum of activations (zero where no weight zero point needs it).
    // (At most K 255 <= 2^24: an i32.)
    let mut sums = vec![0i32; if zero_weight_zps { 0 } else { blocked::MC.min(m) }];
    let mut r0 = 0;
    while r0 < m {
        let mc = (m - r0).min(blocked::MC);
        let out_blk = &mut out[r0 * n..(r0 + mc) * n];
        if fits_i32 {
            // The zero-point terms are added by the last pass over each tile (wrapping, like
            // `finish_row_wrapping`), or afterwards where the block was not computed by tiles.
            let finish = blocked::Finish { col_bias: &col_bias32, zero_points: &w.zero_points };
            let finished = blocked::raw_block(
                micro,
                rows_src,
                i0 + r0,
                mc,
                w,
                &mut abuf[..],
                out_blk,
                &mut sums,
                true,
                Some(finish),
            );
            if !finished {
                for (r, out_r) in out_blk.chunks_exact_mut(n.max(1)).enumerate() {
                    finish_row_wrapping(out_r, &col_bias32, &w.zero_points, sums.get(r).copied().unwrap_or(0));
                }
            }
        } else {
            let raw = &mut scratch[..mc * n];
            blocked::raw_block(micro, rows_src, i0 + r0, mc, w, &mut abuf[..], raw, &mut sums, true, None);
            for r in 0..mc {
                let rs = sums.get(r).copied().unwrap_or(0) as i64;
                let sums = &raw[r * n..(r + 1) * n];
                if let Err(j) =
                    finish_row_checked(sums, col_bias, &zb_cols, rs, &mut row32, &mut out_blk[r * n..(r + 1) * n])
                {
                    let value = sums[j] as i64 + col_bias[j] - zb_cols[j] * rs;
                    return to_i32_accumulator(value, k, i0 + r0 + r, j).map(|_| ());
                }
            }
        }
        r0 += mc;
    }
    Ok(())
}

/// The portable micro-kernel: `raw[r*N + j] = sum_k a[r][k] B[k][j]` in `i64` from the panels.
fn portable_raw(abuf: &[u8], rows: usize, w: &PackedWeights, raw: &mut [i64]) {
    for r in 0..rows {
        let arow = &abuf[r * w.kp..(r + 1) * w.kp];
        for j in 0..w.n {
            let panel = &w.panels[(j / NR) * w.kp * NR..(j / NR + 1) * w.kp * NR];
            let c = j % NR;
            let mut s = 0i64;
            for (g, a4) in arow.chunks_exact(KR).enumerate() {
                let b4 = &panel[g * KR * NR + c * KR..g * KR * NR + c * KR + KR];
                s += a4.iter().zip(b4).map(|(&x, &y)| x as i64 * y as i64).sum::<i64>();
            }
            raw[r * w.n + j] = s;
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{PackedWeights, KR, NR};
    use core::arch::aarch64::*;

    /// `acc += sdot(a, b)`: each 32-bit lane adds the four products of its bytes (s8 x s8).
    #[inline(always)]
    unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: a register-only instruction; the caller is a `dotprod` target-feature function.
        unsafe {
            core::arch::asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack)
            )
        };
        acc
    }

    /// `raw[r*N + j] = sum_k a[r][k] B[k][j]` with `sdot`: per group of four `k` and 16 columns,
    /// four 16-byte loads (four columns each), the row's four bytes (minus 128, so s8) in every
    /// lane, four `sdot`; then `128 colsum[j]` is added back.
    ///
    /// # Safety
    /// The CPU must have NEON and dotprod; `abuf` holds `rows` rows of `kp` bytes; `raw.len() >=
    /// rows * w.n`.
    #[target_feature(enable = "neon,dotprod")]
    pub unsafe fn raw_dot(abuf: &[u8], rows: usize, w: &PackedWeights, raw: &mut [i64]) {
        let kp = w.kp;
        let stride = kp * NR;
        for r in 0..rows {
            for p in 0..w.n.div_ceil(NR) {
                let mut acc = [vdupq_n_s32(0); 4];
                for g in 0..kp / KR {
                    // SAFETY: 4 bytes of row `r` at `r * kp + 4 g` and the 64-byte group `g` of
                    // panel `p` lie inside `abuf` and the panels.
                    unsafe {
                        let word = abuf.as_ptr().add(r * kp + g * KR).cast::<u32>().read_unaligned();
                        let a = vreinterpretq_s8_u32(veorq_u32(vdupq_n_u32(word), vdupq_n_u32(0x8080_8080)));
                        let bp = w.panels.as_ptr().add(p * stride + g * KR * NR);
                        for (q, acc_q) in acc.iter_mut().enumerate() {
                            *acc_q = sdot(*acc_q, a, vld1q_s8(bp.add(16 * q)));
                        }
                    }
                }
                store(&acc, r, p, w, raw);
            }
        }
    }

    /// The same with widening multiply-accumulates (no dotprod): per group, each 16-byte load
    /// widened to two i16 vectors of two columns x four `k`, multiplied by the row's four values
    /// with `smlal` into one i32 vector per two columns (each holding 2 x 2 partial sums, added at
    /// the end).
    ///
    /// # Safety
    /// The CPU must have NEON; as [`raw_dot`] otherwise.
    #[target_feature(enable = "neon")]
    pub unsafe fn raw_mlal(abuf: &[u8], rows: usize, w: &PackedWeights, raw: &mut [i64]) {
        let kp = w.kp;
        let stride = kp * NR;
        for r in 0..rows {
            for p in 0..w.n.div_ceil(NR) {
                // acc[c]: column c's four products per group, summed over the groups.
                let mut acc = [vdupq_n_s32(0); 16];
                for g in 0..kp / KR {
                    // SAFETY: as in `raw_dot`.
                    unsafe {
                        let word = abuf.as_ptr().add(r * kp + g * KR).cast::<u32>().read_unaligned();
                        let a16 = vreinterpret_s16_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(word)))));
                        let bp = w.panels.as_ptr().add(p * stride + g * KR * NR);
                        for q in 0..4 {
                            let b = vld1q_s8(bp.add(16 * q));
                            let (lo, hi) = (vmovl_s8(vget_low_s8(b)), vmovl_s8(vget_high_s8(b)));
                            acc[4 * q] = vmlal_s16(acc[4 * q], vget_low_s16(lo), a16);
                            acc[4 * q + 1] = vmlal_s16(acc[4 * q + 1], vget_high_s16(lo), a16);
                            acc[4 * q + 2] = vmlal_s16(acc[4 * q + 2], vget_low_s16(hi), a16);
                            acc[4 * q + 3] = vmlal_s16(acc[4 * q + 3], vget_high_s16(hi), a16);
                        }
                    }
                }
                let col0 = p * NR;
                for c in 0..(w.n - col0).min(NR) {
                    raw[r * w.n + col0 + c] = vaddvq_s32(acc[c]) as i64;
                }
            }
        }
    }

    /// Writes the 16 sums of panel `p` for row `r` (adding `128 colsum` back after `sdot`).
    #[inline(always)]
    fn store(acc: &[int32x4_t; 4], r: usize, p: usize, w: &PackedWeights, raw: &mut [i64]) {
        let mut lanes = [0i32; NR];
        for (q, v) in acc.iter().enumerate() {
            // SAFETY: `lanes[4q..4q + 4]` is 4 writable i32; NEON is present (callers are NEON
            // target-feature functions).
            unsafe { vst1q_s32(lanes.as_mut_ptr().add(4 * q), *v) };
        }
        let col0 = p * NR;
        for c in 0..(w.n - col0).min(NR) {
            raw[r * w.n + col0 + c] = lanes[c] as i64 + 128 * w.col_sums[col0 + c];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx256 {
    use super::{PackedWeights, KR, MR, NR};
    use core::arch::x86_64::*;

    /// One group of four `k` for eight columns: the 32 weight bytes widened to two vectors of 16
    /// i16 (`vpmovsxbw`), the row's four activations widened and broadcast (`vpmovzxbw`), and
    /// `vpmaddwd`, which cannot saturate here (each pair sum is at most `2 * 255 * 128`); the
    /// accumulators hold two partial sums per column, added at the end.
    #[inline(always)]
    unsafe fn step(acc: &mut [__m256i; 2], a: *const u8, b: *const i8) {
        // SAFETY: the caller guarantees 4 readable bytes at `a` and 32 at `b`, and AVX2.
        unsafe {
            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.cast()));
            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(16).cast()));
            let x4 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(a.cast::<i32>().read_unaligned()));
            let x = _mm256_broadcastq_epi64(x4);
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(w0, x));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(w1, x));
        }
    }

    /// `qu8s8_gemm_4x8c4__avx2`: `raw[r*N + j] = sum_k a[r][k] B[k][j]` for the four rows of
    /// `abuf`, eight columns (half a panel) at a time.
    ///
    /// # Safety
    /// The CPU must have AVX2; `abuf.len() == MR * w.kp`, `raw.len() >= MR * w.n`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn raw_4x8_avx2(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
        let kp = w.kp;
        let stride = kp * NR;
        for p in 0..w.n.div_ceil(NR) {
            for half in 0..2 {
                let col0 = p * NR + half * 8;
                if col0 >= w.n {
                    break;
                }
                let mut acc = [[_mm256_setzero_si256(); 2]; MR];
                let bp = w.panels[p * stride + half * 32..].as_ptr();
                for g in 0..kp / KR {
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        // SAFETY: group `g` of panel `p` spans 64 bytes from `p * stride + g * 64`,
                        // of which this half reads 32; row `r`'s group is 4 bytes inside `abuf`.
                        unsafe { step(acc_r, abuf.as_ptr().add(r * kp + g * KR), bp.add(g * KR * NR)) };
                    }
                }
                for (r, acc_r) in acc.iter().enumerate() {
                    let mut l = [[0i32; 8]; 2];
                    // SAFETY: each `l[i]` holds 8 i32.
                    unsafe {
                        _mm256_storeu_si256(l[0].as_mut_ptr().cast(), acc_r[0]);
                        _mm256_storeu_si256(l[1].as_mut_ptr().cast(), acc_r[1]);
                    }
                    for c in 0..(w.n - col0).min(8) {
                        // vpmaddwd lanes: column c's two partial sums at 2c and 2c + 1 of the
                        // vector holding columns 4 * (c / 4) ..
                        let (v, i) = (c / 4, 2 * (c % 4));
                        raw[r * w.n + col0 + c] = l[v][i] as i64 + l[v][i + 1] as i64;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod amx {
    //! Intel AMX-INT8: `tdpbusd` multiplies a 16 x 64 u8 tile by a 16 x 64 s8 tile laid out as
    //! 16 groups of four `k` for 16 columns (exactly a packed panel's 1,024 bytes of 16 groups)
    //! and adds the 16 x 16 dot products of four into an i32 tile. Each call covers up to 32
    //! rows and two panels (32 columns) per step of 64 `k`; the sums are exact under the same
    //! bound as `vpdpbusd` (no saturation, `K <= MAX_EXACT_K`).
    use super::{PackedWeights, KR, NR};
    use core::arch::asm;
    use std::sync::OnceLock;

    /// Rows per block (two A tiles of 16 rows).
    pub const MR: usize = 32;
    /// Bytes of `k` per tile step: 16 groups of [`KR`].
    pub const KC: usize = 64;

    /// The 64-byte tile configuration `ldtilecfg` reads (palette 1): tiles 0-1 accumulate rows
    /// 0..16 of two panels and tiles 2-3 rows 16..32 (`rows0` and `rows1` rows of 16 i32), tiles
    /// 4-5 the two A row blocks (64 bytes of `k` each), tiles 6-7 the two panels' 16 groups
    /// (16 x 64 bytes). A tile of 0 rows is left unconfigured (and never used).
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    impl Config {
        fn new(rows0: usize, rows1: usize) -> Config {
            let mut c = [0u8; 64];
            c[0] = 1;
            for (t, r) in [(0, rows0), (1, rows0), (2, rows1), (3, rows1), (4, rows0), (5, rows1), (6, 16), (7, 16)] {
                if r > 0 {
                    c[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
                    c[48 + t] = r as u8;
                }
            }
            Config(c)
        }
    }

    /// Whether AMX-INT8 can run here: CPUID reports AMX-TILE and AMX-INT8 (and AVX-512F), the OS saves the
    /// tile state (XCR0 bits 17 and 18), and Linux granted this process the tile data
    /// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; without it the first tile
    /// instruction faults). Detected once.
    pub fn available() -> bool {
        static A: OnceLock<bool> = OnceLock::new();
        *A.get_or_init(detect)
    }

    fn detect() -> bool {
        use core::arch::x86_64::__cpuid_count;
        // CPUID is available on every x86-64 CPU.
        let (l1, l7) = (__cpuid_count(1, 0), __cpuid_count(7, 0));
        let osxsave = l1.ecx & (1 << 27) != 0;
        let (tile, int8) = (l7.edx & (1 << 24) != 0, l7.edx & (1 << 25) != 0);
        // The epilogue (`finish_rows`) is compiled for AVX-512F, which every AMX CPU has.
        if !(osxsave && tile && int8 && std::arch::is_x86_feature_detected!("avx512f")) {
            return false;
        }
        // SAFETY: OSXSAVE is set, so XGETBV is enabled.
        let xcr0 = unsafe { xgetbv0() };
        if xcr0 & (0b11 << 17) != 0b11 << 17 {
            return false;
        }
        request_permission()
    }

    /// # Safety
    /// CPUID.1:ECX.OSXSAVE must be set.
    #[target_feature(enable = "xsave")]
    unsafe fn xgetbv0() -> u64 {
        core::arch::x86_64::_xgetbv(0)
    }

    #[cfg(target_os = "linux")]
    fn request_permission() -> bool {
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: the arch_prctl system call with ARCH_REQ_XCOMP_PERM only asks the kernel to
        // allow a larger signal/XSAVE area for this process; it reads no user memory. `syscall`
        // clobbers rcx and r11, declared below.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        ret == 0
    }

    #[cfg(not(target_os = "linux"))]
    fn request_permission() -> bool {
        false
    }

    /// The AMX block's output rows where every exact value fits i32: `out[r * N + j] =
    /// raw[r * npad + j] + col_bias[j] - zero_points[j] row_sums[r]`, wrapping (the exact value,
    /// as `finish_row_wrapping`), for the `row_sums.len()` rows of the block, in one pass from the
    /// tiles' sums (no copy first). Compiled for AVX-512F, which every CPU [`available`] accepts
    /// has: the loops vectorize 16 lanes wide.
    #[target_feature(enable = "avx512f")]
    pub fn finish_rows(
        raw: &[i32],
        npad: usize,
        out: &mut [i32],
        col_bias: &[i32],
        zero_points: &[i32],
        row_sums: &[i32],
    ) {
        let n = col_bias.len();
        for ((o, s), &rs) in out.chunks_exact_mut(n.max(1)).zip(raw.chunks(npad.max(1))).zip(row_sums) {
            if rs == 0 {
                for ((o, &s), &c) in o.iter_mut().zip(s).zip(col_bias) {
                    *o = s.wrapping_add(c);
                }
            } else {
                for (((o, &s), &c), &z) in o.iter_mut().zip(s).zip(col_bias).zip(zero_points) {
                    *o = s.wrapping_add(c).wrapping_sub(z.wrapping_mul(rs));
                }
            }
        }
    }

    /// Where [`raw_32x32`] puts the sums `S[r][j] = sum_k a[r][k] B[k][j]` of a block's rows
    /// (i32, wrapping: exact for `K <= MAX_EXACT_K`).
    pub enum Dest<'a> {
        /// `raw[r * npad + j] = S[r][j]`: `npad` a multiple of 32 at least `N`, `raw` at least 32
        /// rows of it.
        Raw { raw: &'a mut [i32], npad: usize },
        /// `out[r * N + j] = col_bias[j] + S[r][j]` (wrapping) for the block's rows: the
        /// accumulator tiles start from the column terms (a 64-byte row loaded with stride 0, so
        /// every tile row holds it) instead of zero and are stored straight into the output rows
        /// (a last pair of panels past `N` through a 32 x 32 buffer): no epilogue pass. What the
        /// GEMM needs where every weight zero point is 0 (no row term) and every exact value
        /// fits i32 (wrapping sums are then exact). `col_bias` holds at least `N` rounded up to
        /// 32 entries (zero past `N`), `out` the block's rows of `N`.
        Direct { out: &'a mut [i32], col_bias: &'a [i32] },
    }

    /// One 32 x 32 block of sums (four tiles), aligned for `tilestored`.
    #[repr(C, align(64))]
    struct Block([[i32; 32]; 32]);

    /// The sums of the first `rows` (<= 32) rows of `abuf`, whose rows are `kp64` bytes (`w.kp`
    /// rounded up to [`KC`], zero padded), into `dest`: per step of 64 `k` and pair of panels,
    /// two A tiles and two B tiles feed four `tdpbusd` (each B tile serves 32 rows).
    ///
    /// Only the panels in `panels` (an even start; the end is clipped to `N`): a caller that
    /// passes several blocks over one range of panels keeps those weights in L2 (see
    /// `AMX_PANEL_BYTES`).
    ///
    /// # Safety
    /// [`available`] returned true; `1 <= rows <= 32`; `abuf.len() >= MR * kp64` with `kp64` a
    /// multiple of [`KC`] at least `w.kp`; `dest` as its variant's documentation says
    /// (`Direct`: `out.len() >= rows * N`, `col_bias.len() >= N` rounded up to 32); `panels.start`
    /// is even.
    pub unsafe fn raw_32x32(
        abuf: &[u8],
        rows: usize,
        kp64: usize,
        w: &PackedWeights,
        mut dest: Dest<'_>,
        panels: core::ops::Range<usize>,
    ) {
        let (rows0, rows1) = (rows.min(16), rows.saturating_sub(16));
        let cfg = Config::new(rows0, rows1);
        let (kp, n) = (w.kp, w.n);
        let (full, rem) = (kp / KC, kp % KC);
        let stride = kp * NR;
        // The last, partial step's B groups, zero padded to a whole tile (one per panel).
        let mut tail = [[0i8; KC * NR]; 2];
        // A last pair of panels that reaches past `N` (Direct only): stored here, then copied.
        let mut edge = Block([[0; 32]; 32]);
        let a0 = abuf.as_ptr();
        let a1 = abuf[16 * kp64..].as_ptr();
        // SAFETY: `cfg` is a valid 64-byte palette-1 configuration (at most 16 rows of 64 bytes).
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
        let mut p = panels.start;
        while p < panels.end && p * NR < n {
            // Panels p and p + 1 exist: panels are packed in whole groups of four.
            let b0 = w.panels[p * stride..].as_ptr();
            let b1 = w.panels[(p + 1) * stride..].as_ptr();
            // Every tile instruction below: the configuration is loaded; the A loads read
            // `rows0` / `rows1` rows of 64 bytes at `64 t` of rows 0 / 16 with stride `kp64`,
            // inside `abuf` (64 t + 64 <= kp64); the B loads read 16 rows of 64 bytes, 1,024
            // bytes of whole groups inside the panel (t < full) or the zero-padded tail copy;
            // `Direct` loads 64 bytes of `col_bias` at columns `16 p` and `16 p + 16` (`16 p + 32`
            // is at most `N` rounded up to 32 <= col_bias.len()); the stores write `rows0` /
            // `rows1` rows of 16 i32 at columns `16 p` and `16 p + 16` of rows of `npad` i32 in
            // `raw` (p is even and `16 p < n`, so `16 p + 32 <= npad`, a multiple of 32; rows < 32
            // <= raw.len() / npad), or of rows of `N` in `out` where `16 p + 32 <= N` (rows <
            // `rows`, out.len() >= rows N), or into `edge` (32 rows of 32). Tiles 2, 3 and 5 are
            // only touched when `rows1 > 0`.
            // SAFETY: the bounds just stated hold for every tile load and store.
            unsafe {
                let step = |a_off: usize, bb0: *const i8, bb1: *const i8| {
                    if rows1 > 0 {
                        asm!(
                            // Each load as late as its first use allows, so that the
                            // first products start after two loads, not four.
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm6, [{b0} + {sb}*1]",
                            "tdpbusd tmm0, tmm4, tmm6",
                            "tileloadd tmm7, [{b1} + {sb}*1]",
                            "tdpbusd tmm1, tmm4, tmm7",
                            "tileloadd tmm5, [{a1} + {sa}*1]",
                            "tdpbusd tmm2, tmm5, tmm6",
                            "tdpbusd tmm3, tmm5, tmm7",
                            a0 = in(reg) a0.add(a_off),
                            a1 = in(reg) a1.add(a_off),
                            sa = in(reg) kp64,
                            b0 = in(reg) bb0,
                            b1 = in(reg) bb1,
                            sb = in(reg) KC,
                            options(nostack, readonly)
                        );
                    } else {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm6, [{b0} + {sb}*1]",
                            "tdpbusd tmm0, tmm4, tmm6",
                            "tileloadd tmm7, [{b1} + {sb}*1]",
                            "tdpbusd tmm1, tmm4, tmm7",
                            a0 = in(reg) a0.add(a_off),
                            sa = in(reg) kp64,
                            b0 = in(reg) bb0,
                            b1 = in(reg) bb1,
                            sb = in(reg) KC,
                            options(nostack, readonly)
                        );
                    }
                };
                match &dest {
                    Dest::Raw { .. } => {
                        asm!("tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
                        if rows1 > 0 {
                            asm!("tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
                        }
                    }
                    Dest::Direct { col_bias, .. } => {
                        // Every row of tiles 0 and 2 (1 and 3) holds col_bias[16p..][..16]
                        // (col_bias[16p + 16..][..16]).
                        let c0 = col_bias.as_ptr().add(p * NR);
                        asm!(
                            "tileloadd tmm0, [{c0} + {z}*1]",
                            "tileloadd tmm1, [{c1} + {z}*1]",
                            c0 = in(reg) c0,
                            c1 = in(reg) c0.add(NR),
                            z = in(reg) 0usize,
                            options(nostack, readonly)
                        );
                        if rows1 > 0 {
                            asm!(
                                "tileloadd tmm2, [{c0} + {z}*1]",
                                "tileloadd tmm3, [{c1} + {z}*1]",
                                c0 = in(reg) c0,
                                c1 = in(reg) c0.add(NR),
                                z = in(reg) 0usize,
                                options(nostack, readonly)
                            );
                        }
                    }
                }
                for t in 0..full {
                    // (No software prefetch of the B tiles: with 64-byte aligned panels it measured
                    // 3% slower than none, 2,240 against 2,300 GOPS at 1024^3.)
                    step(t * KC, b0.add(t * KC * NR), b1.add(t * KC * NR));
                }
                if rem > 0 {
                    let g = (rem / KR) * KR * NR;
                    tail[0][..g].copy_from_slice(core::slice::from_raw_parts(b0.add(full * KC * NR), g));
                    tail[1][..g].copy_from_slice(core::slice::from_raw_parts(b1.add(full * KC * NR), g));
                    step(full * KC, tail[0].as_ptr(), tail[1].as_ptr());
                }
                let to_edge = matches!(&dest, Dest::Direct { .. }) && p * NR + 2 * NR > n;
                // The first tile's address and the row stride in i32.
                let (cp, row) = match &mut dest {
                    // Rows of `npad` i32 in `raw`: tile rows go straight to their place.
                    Dest::Raw { raw, npad } => (raw.as_mut_ptr().add(p * NR), *npad),
                    // A pair past `N`: rows of 32 in `edge`, copied below.
                    Dest::Direct { .. } if to_edge => (edge.0.as_mut_ptr().cast::<i32>(), 32),
                    // Rows of `N` in `out`.
                    Dest::Direct { out, .. } => (out.as_mut_ptr().add(p * NR), n),
                };
                let sc = row * 4;
                asm!(
                    "tilestored [{c0} + {sc}*1], tmm0",
                    "tilestored [{c1} + {sc}*1], tmm1",
                    c0 = in(reg) cp,
                    c1 = in(reg) cp.add(NR),
                    sc = in(reg) sc,
                    options(nostack)
                );
                if rows1 > 0 {
                    asm!(
                        "tilestored [{c0} + {sc}*1], tmm2",
                        "tilestored [{c1} + {sc}*1], tmm3",
                        c0 = in(reg) cp.add(16 * row),
                        c1 = in(reg) cp.add(16 * row + NR),
                        sc = in(reg) sc,
                        options(nostack)
                    );
                }
                if let (true, Dest::Direct { out, .. }) = (to_edge, &mut dest) {
                    let j0 = p * NR;
                    for (o, e) in out.chunks_exact_mut(n).zip(&edge.0[..rows]) {
                        o[j0..].copy_from_slice(&e[..n - j0]);
                    }
                }
            }
            p += 2;
        }
        // SAFETY: releases the tile state this function configured.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// Cache-blocked driver for the VNNI micro-kernels (AVX-512 `vpdpbusd` zmm and AVX-VNNI ymm),
/// GotoBLAS-style: a block of [`MC`](blocked::MC) activation rows is packed once (`kp` bytes per
/// row, zero padded), then for each block of [`KC`](blocked::KC) `k` and each group of panels
/// the micro-kernel passes every row tile of the block over the same weights, which stay in L1
/// (`PANELS x KC x NR` = 32 KiB), while the block's output rows (`MC x N` i32) stay in L2 across
/// the `k` blocks. Before, each 4-row call streamed all of `B` from L2 (1 MiB per four rows at
/// 1024^3), which capped the AVX-512 kernel at about 45% of `vpdpbusd`'s peak.
///
/// The micro-kernels write the raw sums `sum_k a B` (exact in `i32` for `K <= MAX_EXACT_K`:
/// `vpdpbusd` adds without saturating) into an `i32` tile with a row stride, adding to what is
/// there after the first `k` block; the zero-point terms are added per row afterwards.
#[cfg(target_arch = "x86_64")]
mod blocked {
    use super::{GemmKernel, PackedWeights, RowSource, KR, MR, NR, PANELS};
    use core::arch::x86_64::*;

    pub use super::{BLOCK_K as KC, BLOCK_M as MC};
    /// Rows of both VNNI tiles: AVX-512 holds 6 x 4 accumulators, 4 weight vectors and the
    /// broadcast row in 29 of its 32 registers; AVX-VNNI 6 x 2 + 2 + 1 = 15 of 16. Each kernel is
    /// also compiled for 1 to 5 rows, for the last rows of a block and for small `M` (a
    /// transformer's dynamic linear layers), which would otherwise pay for six.
    pub const ROWS: usize = 6;

    /// One micro-kernel call: its rows from `a` (row stride `kp`) times `groups` groups of four
    /// `k` from the panels at `b` (panel stride `stride`), into the first `cols` columns of `c`
    /// (row stride `ldc`); `load` adds to `c` instead of storing.
    /// `prefetch` fetches the weights a few groups ahead (for the first tile over a block, which
    /// brings them from L2 for the others, and for small `M`, where each weight is used once).
    /// The last three (null when not wanted): the column terms `col_bias` and weight zero points
    /// from the tile's first column, and the row sums from its first row (null: none needed).
    type TileFn = unsafe fn(
        *const u8,
        usize,
        *const i8,
        usize,
        usize,
        *mut i32,
        usize,
        usize,
        bool,
        bool,
        *const i32,
        *const i32,
        *const i32,
    );

    /// The zero-point terms of an output element, `col_bias[j] - zero_points[j] row_sum[i]`
    /// (`-za colsum[j] + K za zb[j] - zb[j] rowsum[i]`), added in wrapping `i32` arithmetic by
    /// the last pass over a tile: exact where every exact value fits `i32` (`K <= 33025`, the
    /// caller's condition), as in `finish_row_wrapping`.
    #[derive(Clone, Copy)]
    pub struct Finish<'a> {
        pub col_bias: &'a [i32],
        pub zero_points: &'a [i32],
    }

    /// Groups of four `k` between a weight load and its prefetch (8 lines per panel).
    const PREFETCH: usize = 8;

    /// A micro-kernel (`run[r - 1]` computes `r` rows) and the panels (of [`NR`] columns) one
    /// call covers.
    #[derive(Clone, Copy)]
    pub struct Micro {
        panels: usize,
        run: [TileFn; ROWS],
        /// `vpmaddubsw`'s pair sums can saturate: each block must be proven free of it first.
        gated: bool,
    }

    /// The blocked micro-kernel of `kernel`, if it has one and this CPU can run it.
    pub fn micro(kernel: GemmKernel) -> Option<Micro> {
        if !kernel.is_available() {
            return None;
        }
        // Each kernel's forms for 1 to ROWS rows (`rows / accumulator sets`: few rows take
        // several sets so that enough `vpdpbusd` chains are in flight).
        macro_rules! forms {
            ($f:ident; $($r:literal / $u:literal),+) => {
                [$($f::<$r, $u>),+]
            };
        }
        match kernel {
            GemmKernel::Avx512Vnni => Some(Micro {
                panels: PANELS,
                run: forms!(tile_x64_avx512vnni; 1 / 2, 2 / 2, 3 / 1, 4 / 1, 5 / 1, 6 / 1),
                gated: false,
            }),
            GemmKernel::AvxVnni => Some(Micro {
                panels: 1,
                run: forms!(tile_x16_avxvnni; 1 / 4, 2 / 2, 3 / 2, 4 / 1, 5 / 1, 6 / 1),
                gated: false,
            }),
            GemmKernel::Avx2Maddubs => Some(Micro {
                panels: 1,
                run: forms!(tile_x16_avx2maddubs; 1 / 4, 2 / 2, 3 / 2, 4 / 1, 5 / 1, 6 / 1),
                gated: true,
            }),
            _ => None,
        }
    }

    /// `step(set, g)` for every group `g < groups`, the sets of accumulators (`acc`, then each of
    /// `rest`) taking consecutive groups in turn and `acc` the groups left over.
    #[inline(always)]
    fn round_robin<S>(groups: usize, acc: &mut S, rest: &mut [S], mut step: impl FnMut(&mut S, usize)) {
        let u = rest.len() + 1;
        let mut g = 0;
        while g + u <= groups {
            step(acc, g);
            for (i, set) in rest.iter_mut().enumerate() {
                step(set, g + 1 + i);
            }
            g += u;
        }
        while g < groups {
            step(acc, g);
            g += 1;
        }
    }

    /// The mask of the valid lanes of column vector `q` (16 columns each) when `cols` are valid.
    #[inline(always)]
    fn col_mask(cols: usize, q: usize) -> u16 {
        let valid = cols.saturating_sub(q * NR).min(NR);
        ((1u32 << valid) - 1) as u16
    }

    /// `qu8s8_gemm_6x64c4__avx512vnni` (and its 1..5-row forms): per group of four `k`, four
    /// 64-byte weight loads (four panels), each row's four bytes broadcast, `4 R` `vpdpbusd`.
    ///
    /// # Safety
    /// AVX-512 F/BW + VNNI; `a` has `R` rows of `4 * groups` readable bytes at stride `kp`;
    /// `b + q * stride` has `64 * groups` readable bytes for `q < PANELS`; `c + r * ldc` has
    /// `cols` writable i32 for `r < R`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_x64_avx512vnni<const R: usize, const U: usize>(
        a: *const u8,
        kp: usize,
        b: *const i8,
        stride: usize,
        groups: usize,
        c: *mut i32,
        ldc: usize,
        cols: usize,
        load: bool,
        prefetch: bool,
        fin_cb: *const i32,
        fin_zb: *const i32,
        fin_rs: *const i32,
    ) {
        let masks: [u16; PANELS] = core::array::from_fn(|q| col_mask(cols, q));
        // `U` sets of accumulators take consecutive groups in turn (summed at the end), so that
        // a tile of few rows still has enough independent `vpdpbusd` chains.
        let mut split = [[[_mm512_setzero_si512(); PANELS]; R]; U];
        let (acc, rest) = split.split_at_mut(1);
        let acc = &mut acc[0];
        // Column vectors past `cols` are masked off entirely (a masked-off lane is never
        // accessed), so their addresses are formed with `wrapping_add`.
        let at = |r: usize, q: usize| c.wrapping_add(r * ldc + q * NR);
        if load {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                for (q, v) in acc_r.iter_mut().enumerate() {
                    // SAFETY: the unmasked lanes are row `r`'s first `cols` columns.
                    *v = unsafe { _mm512_maskz_loadu_epi32(masks[q], at(r, q)) };
                }
            }
        }
        // One group into one set of accumulators.
        let step = |acc: &mut [[__m512i; PANELS]; R], g: usize| {
            // SAFETY: group `g` of the four panels and row `r`'s four bytes of group `g` are
            // inside the caller's buffers (see the contract).
            unsafe {
                let o = g * KR * NR;
                let bv: [__m512i; PANELS] = core::array::from_fn(|q| _mm512_loadu_si512(b.add(q * stride + o).cast()));
                if prefetch {
                    // The weights' line `PREFETCH` groups ahead in each panel, into L1 (a
                    // prefetch never faults; past the panels it fetches nothing useful).
                    for q in 0..PANELS {
                        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(q * stride + o + PREFETCH * KR * NR).cast());
                    }
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_epi32(a.add(r * kp + g * KR).cast::<i32>().read_unaligned());
                    for (v, &bq) in acc_r.iter_mut().zip(&bv) {
                        *v = _mm512_dpbusd_epi32(*v, x, bq);
                    }
                }
            }
        };
        round_robin(groups, acc, rest, step);
        for set in rest.iter() {
            for (acc_r, set_r) in acc.iter_mut().zip(set) {
                for (v, &w) in acc_r.iter_mut().zip(set_r) {
                    *v = _mm512_add_epi32(*v, w);
                }
            }
        }
        if !fin_cb.is_null() {
            for q in 0..PANELS {
                // SAFETY: the unmasked lanes are the tile's valid columns of the caller's N-long
                // column terms; `fin_rs` (when not null) has `R` row sums.
                unsafe {
                    let cb = _mm512_maskz_loadu_epi32(masks[q], fin_cb.wrapping_add(q * NR));
                    let zb = _mm512_maskz_loadu_epi32(masks[q], fin_zb.wrapping_add(q * NR));
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let mut v = _mm512_add_epi32(acc_r[q], cb);
                        if !fin_rs.is_null() {
                            v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zb, _mm512_set1_epi32(*fin_rs.add(r))));
                        }
                        acc_r[q] = v;
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (q, v) in acc_r.iter().enumerate() {
                // SAFETY: as for the loads.
                unsafe { _mm512_mask_storeu_epi32(at(r, q), masks[q], *v) };
            }
        }
    }

    /// `acc + vpdpbusd(x, w)`.
    ///
    /// # Safety
    /// AVX2 + AVX-VNNI (inlined into a function that enables them).
    #[inline(always)]
    unsafe fn dot_vnni(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        // SAFETY: register-only; the caller enables the features.
        unsafe { _mm256_dpbusd_avx_epi32(acc, x, w) }
    }

    /// `acc + vpmaddwd(vpmaddubsw(x, w), 1)`: `vpdpbusd` exactly when no pair sum of
    /// `vpmaddubsw` leaves `i16`.
    ///
    /// # Safety
    /// AVX2 (inlined into a function that enables it).
    #[inline(always)]
    unsafe fn dot_maddubs(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        // SAFETY: register-only; the caller enables AVX2.
        unsafe { _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1))) }
    }

    /// The 16-column tile of both AVX2-width kernels, one function per dot product (a macro, so
    /// that its closures are compiled with the function's features; an `#[inline(always)]`
    /// generic body would compile them without).
    macro_rules! tile_x16 {
        ($(#[$doc:meta])* $name:ident, $features:literal, $dot:ident) => {
            $(#[$doc])*
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn $name<const R: usize, const U: usize>(
                a: *const u8,
                kp: usize,
                b: *const i8,
                _stride: usize,
                groups: usize,
                c: *mut i32,
                ldc: usize,
                cols: usize,
                load: bool,
                prefetch: bool,
                fin_cb: *const i32,
                fin_zb: *const i32,
                fin_rs: *const i32,
            ) {
        // `U` sets of accumulators, as in the AVX-512 kernel.
        let mut split = [[[_mm256_setzero_si256(); 2]; R]; U];
        let (acc, rest) = split.split_at_mut(1);
        let acc = &mut acc[0];
        // A partial tile goes through a full one on the stack.
        let mut scratch = [[0i32; NR]; R];
        let full = cols == NR;
        if load {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row `r` has `cols` readable i32 at `c + r * ldc`; a full row is 16.
                unsafe {
                    let src = if full {
                        c.add(r * ldc).cast_const()
                    } else {
                        core::ptr::copy_nonoverlapping(c.add(r * ldc), scratch[r].as_mut_ptr(), cols);
                        scratch[r].as_ptr()
                    };
                    acc_r[0] = _mm256_loadu_si256(src.cast());
                    acc_r[1] = _mm256_loadu_si256(src.add(8).cast());
                }
            }
        }
        let step = |acc: &mut [[__m256i; 2]; R], g: usize| {
            // SAFETY: group `g` of the panel and row `r`'s four bytes are inside the caller's
            // buffers (see the contract).
            unsafe {
                let o = g * KR * NR;
                let b0 = _mm256_loadu_si256(b.add(o).cast());
                let b1 = _mm256_loadu_si256(b.add(o + 32).cast());
                if prefetch {
                    // As in the AVX-512 kernel.
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(o + PREFETCH * KR * NR).cast());
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_epi32(a.add(r * kp + g * KR).cast::<i32>().read_unaligned());
                    acc_r[0] = $dot(acc_r[0], x, b0);
                    acc_r[1] = $dot(acc_r[1], x, b1);
                }
            }
        };
        round_robin(groups, acc, rest, step);
        for set in rest.iter() {
            for (acc_r, set_r) in acc.iter_mut().zip(set) {
                acc_r[0] = _mm256_add_epi32(acc_r[0], set_r[0]);
                acc_r[1] = _mm256_add_epi32(acc_r[1], set_r[1]);
            }
        }
        if !fin_cb.is_null() {
            // The column terms of the tile's valid columns (zero past them).
            let (mut cb, mut zb) = ([0i32; NR], [0i32; NR]);
            // SAFETY: the caller's column terms have at least `cols` entries from these
            // pointers; `fin_rs` (when not null) has `R` row sums.
            unsafe {
                core::ptr::copy_nonoverlapping(fin_cb, cb.as_mut_ptr(), cols);
                core::ptr::copy_nonoverlapping(fin_zb, zb.as_mut_ptr(), cols);
                let cbv = [_mm256_loadu_si256(cb.as_ptr().cast()), _mm256_loadu_si256(cb.as_ptr().add(8).cast())];
                let zbv = [_mm256_loadu_si256(zb.as_ptr().cast()), _mm256_loadu_si256(zb.as_ptr().add(8).cast())];
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    for h in 0..2 {
                        let mut v = _mm256_add_epi32(acc_r[h], cbv[h]);
                        if !fin_rs.is_null() {
                            v = _mm256_sub_epi32(v, _mm256_mullo_epi32(zbv[h], _mm256_set1_epi32(*fin_rs.add(r))));
                        }
                        acc_r[h] = v;
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            // SAFETY: as for the loads.
            unsafe {
                let dst = if full { c.add(r * ldc) } else { scratch[r].as_mut_ptr() };
                _mm256_storeu_si256(dst.cast(), acc_r[0]);
                _mm256_storeu_si256(dst.add(8).cast(), acc_r[1]);
                if !full {
                    core::ptr::copy_nonoverlapping(scratch[r].as_ptr(), c.add(r * ldc), cols);
                }
            }
        }
            }
        };
    }

    tile_x16!(
        /// `qu8s8_gemm_6x16c4__avxvnni` (and its 1..5-row forms): per group of four `k`, the
        /// panel's 64 bytes as two 32-byte loads (columns 0..8 and 8..16), each row's four bytes
        /// broadcast, `2 R` `vpdpbusd` ymm.
        ///
        /// # Safety
        /// AVX2 + AVX-VNNI; as [`tile_x64_avx512vnni`] with one panel.
        tile_x16_avxvnni,
        "avx2,avxvnni",
        dot_vnni
    );

    tile_x16!(
        /// `qu8s8_gemm_6x16c4__avx2_maddubs` (and its 1..5-row forms): as [`tile_x16_avxvnni`],
        /// each `vpdpbusd` done as `vpmaddubsw` (pairs of `u8 x s8` products summed to `i16` with
        /// saturation), `vpmaddwd` by ones and `vpaddd`: equal to `vpdpbusd` exactly when no pair
        /// sum leaves `i16`, which the caller has proven.
        ///
        /// # Safety
        /// AVX2; as [`tile_x16_avxvnni`].
        tile_x16_avx2maddubs,
        "avx2",
        dot_maddubs
    );

    /// The raw sums `sum_k a[r][k] B[k][j]` of rows `r0 .. r0 + mc` of the source (`mc <= MC`)
    /// into `c` (`mc` rows of `N`), with `abuf` (at least `mc * kp` bytes, its `k..kp` padding
    /// zero) as the packed block; each row's sum of activations into `sums[r]` where `sums` has
    /// room (it is empty where no weight zero point needs them). `gate: false` skips the
    /// saturation check of a gated kernel (only [`super::ungated_raw_sums`] does).
    #[allow(clippy::too_many_arguments)]
    pub fn raw_block(
        micro: Micro,
        rows_src: RowSource<'_>,
        r0: usize,
        mc: usize,
        w: &PackedWeights,
        abuf: &mut [u8],
        c: &mut [i32],
        sums: &mut [i32],
        gate: bool,
        finish: Option<Finish<'_>>,
    ) -> bool {
        let (k, n, kp) = (w.k, w.n, w.kp);
        for r in 0..mc {
            let row = &mut abuf[r * kp..r * kp + k];
            rows_src(r0 + r, row);
            if let Some(s) = sums.get_mut(r) {
                *s = row.iter().map(|&v| v as i32).sum();
            }
        }
        if kp == 0 {
            c.iter_mut().for_each(|v| *v = 0);
            return false;
        }
        if micro.gated && gate && !maddubs_exact(&abuf[..mc * kp], w) {
            vpmaddwd_block(&abuf[..mc * kp], mc, w, c);
            return false;
        }
        let stride = kp * NR;
        for kc0 in (0..kp).step_by(KC) {
            let groups = (kp - kc0).min(KC) / KR;
            // The zero-point terms go into the last pass (their columns and rows are in range:
            // `col_bias` and `zero_points` have N entries, `sums` mc).
            let fin = finish.filter(|f| kc0 + KC >= kp && f.col_bias.len() == n && f.zero_points.len() == n);
            let mut p = 0;
            while p * NR < n {
                let cols = (n - p * NR).min(micro.panels * NR);
                let mut t = 0;
                while t < mc {
                    let rows = (mc - t).min(ROWS);
                    // The kernel's features were detected (`micro` is built only for an available
                    // kernel). Rows `t .. t + rows` of `abuf` exist (`mc <= MC` rows of `kp`), and
                    // their bytes `kc0 .. kc0 + 4 groups` are inside; panels `p .. p +
                    // micro.panels` exist (whole groups of PANELS panels are packed) and their
                    // groups from `kc0 / 4` on are inside; rows `t .. t + rows` of `c` have
                    // columns `p * NR .. p * NR + cols <= N`.
                    // SAFETY: the features and bounds just stated.
                    unsafe {
                        (micro.run[rows - 1])(
                            abuf.as_ptr().add(t * kp + kc0),
                            kp,
                            w.panels.as_ptr().add(p * stride + kc0 * NR),
                            stride,
                            groups,
                            c.as_mut_ptr().add(t * n + p * NR),
                            n,
                            cols,
                            kc0 > 0,
                            t == 0,
                            fin.map_or(core::ptr::null(), |f| f.col_bias[p * NR..].as_ptr()),
                            fin.map_or(core::ptr::null(), |f| f.zero_points[p * NR..].as_ptr()),
                            if fin.is_some() && !sums.is_empty() { sums[t..].as_ptr() } else { core::ptr::null() },
                        )
                    };
                    t += ROWS;
                }
                p += micro.panels;
            }
        }
        finish.is_some_and(|f| f.col_bias.len() == n && f.zero_points.len() == n)
    }

    /// Whether `vpmaddubsw`'s pair sums stay inside `i16` for this block: the overflow checker
    /// ([`overflow::check`]) on raw codes, activations in `[0, max of the block]` and weights in
    /// the packed range (only the pair stage matters here: the `i32` sums are exact for
    /// `K <= MAX_EXACT_K`, which the caller has checked).
    fn maddubs_exact(block: &[u8], w: &PackedWeights) -> bool {
        use quantproof_reference::overflow::{check, Formulation, OperandSpec};
        use quantproof_reference::scheme::{CodeRange, QType};
        let amax = block.iter().copied().max().unwrap_or(0);
        let (lo, hi) = w.range;
        let (Ok(ar), Ok(br)) = (CodeRange::new(0, amax as i32), CodeRange::new(lo as i32, hi.max(lo) as i32)) else {
            return false;
        };
        let a = OperandSpec::full(QType::U8).with_range(ar);
        let b = OperandSpec::full(QType::I8).with_range(br);
        check(&a, &b, 1)
            .ok()
            .and_then(|r| r.verdict(Formulation::Vpmaddubsw).map(|v| !v.pair_overflows))
            .unwrap_or(false)
    }

    /// A block the checker could not clear for `vpmaddubsw`: its raw sums with the `vpmaddwd`
    /// kernel (`qu8s8_gemm_4x8c4__avx2`, exact for every input), four rows at a time.
    fn vpmaddwd_block(block: &[u8], mc: usize, w: &PackedWeights, c: &mut [i32]) {
        let (kp, n) = (w.kp, w.n);
        let mut rows4 = vec![0u8; MR * kp];
        let mut raw = vec![0i64; MR * n];
        for r0 in (0..mc).step_by(MR) {
            let rows = (mc - r0).min(MR);
            rows4[..rows * kp].copy_from_slice(&block[r0 * kp..(r0 + rows) * kp]);
            rows4[rows * kp..].iter_mut().for_each(|v| *v = 0);
            // SAFETY: AVX2 is available (the gated kernel is built only where it is); `rows4`
            // holds MR rows of `kp` bytes and `raw` MR rows of `n` sums.
            unsafe { super::avx256::raw_4x8_avx2(&rows4, w, &mut raw) };
            for (dst, &v) in c[r0 * n..(r0 + rows) * n].iter_mut().zip(&raw) {
                // Exact: |sum| <= K 255 128 < 2^31 for K <= MAX_EXACT_K.
                *dst = v as i32;
            }
        }
    }
}
