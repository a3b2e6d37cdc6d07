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
//! | `qu8s8_gemm_4x64c4__avx512vnni` | 4 x 64, k by 4 | AVX-512 F/BW + VNNI | `K * 255 * 128 < 2^31` (`K <= 65793`: `vpdpbusd` adds without saturating, each product at most `255 * 128` in magnitude); larger `K` falls back to the portable kernel |
//! | `qu8s8_gemm_4x16c4__avxvnni` | 4 x 8 per step, k by 4 | AVX-VNNI (`vpdpbusd` ymm) | as above |
//! | `qu8s8_gemm_4x8c4__avx2` | 4 x 8, k by 4 | AVX2 (`vpmovsxbw`, `vpmovzxbw`, `vpmaddwd`: no saturating `vpmaddubsw`) | as above |
//! | `qu8s8_gemm_1x16c4__neondot` | 1 x 16, k by 4 | NEON + dotprod (`sdot`, by inline assembly: the intrinsic is unstable): activations shifted to `a - 128`, `128 colsum` added back | as above |
//! | `qu8s8_gemm_1x16c4__neon_mlal` | 1 x 16, k by 4 | NEON (`smlal` of widened i16 values into four partial sums per column) | as above |
//! | `qu8s8_gemm_1x16c4__portable` | 1 x 16 | nothing | always (`i64` sums) |
//!
//! [`gemm_u8s8_threaded`] cuts the rows into one block per thread for large products; the
//! result does not depend on the thread count.

use quantproof_reference::error::{check_len, QuantError, Result};
use quantproof_reference::gemm::{to_i32_accumulator, GemmDims, WeightLayout, ZeroPoints};
use quantproof_reference::scheme::QType;

/// Columns per packed panel.
pub const NR: usize = 16;
/// `k` per packed group.
pub const KR: usize = 4;
/// Rows per AVX-512 VNNI micro-kernel call.
pub const MR: usize = 4;
/// Panels per AVX-512 VNNI micro-kernel call (the tile is MR x PANELS * NR = 4 x 64: sixteen
/// independent accumulators hide `vpdpbusd`'s latency).
pub const PANELS: usize = 4;
/// The largest `K` whose raw `u8 x s8` sums cannot leave `i32` (`K * 255 * 128 <= 2^31 - 1`).
pub const MAX_EXACT_K: usize = (i32::MAX as usize) / (255 * 128);

/// A micro-kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmKernel {
    Portable,
    Avx2,
    AvxVnni,
    Avx512Vnni,
    /// Intel AMX-INT8 tiles (`tdpbusd`), on CPUs that have them (Sapphire Rapids and later).
    AmxInt8,
    Neon,
    NeonDot,
}

impl GemmKernel {
    pub const ALL: [GemmKernel; 7] = [
        GemmKernel::Portable,
        GemmKernel::Avx2,
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
            GemmKernel::AvxVnni => "qu8s8_gemm_4x16c4__avxvnni",
            GemmKernel::Avx512Vnni => "qu8s8_gemm_4x64c4__avx512vnni",
            GemmKernel::AmxInt8 => "qu8s8_gemm_32x32c4__amx",
            GemmKernel::Neon => "qu8s8_gemm_1x16c4__neon_mlal",
            GemmKernel::NeonDot => "qu8s8_gemm_1x16c4__neondot",
        }
    }

    /// Whether this CPU can run it (detected at run time).
    pub fn is_available(self) -> bool {
        match self {
            GemmKernel::Portable => true,
            GemmKernel::Avx2 => crate::isa::Isa::Avx2.is_available(),
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
    /// else the vpmaddwd kernel; NEON uses sdot where the CPU has the dot-product extension.
    pub fn best_for(isa: crate::isa::Isa) -> GemmKernel {
        use crate::isa::Isa;
        let candidates: &[GemmKernel] = match isa {
            Isa::Avx512 => &[GemmKernel::AmxInt8, GemmKernel::Avx512Vnni],
            Isa::Avx2 => &[GemmKernel::AvxVnni, GemmKernel::Avx2],
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
            GemmKernel::Avx2,
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
    panels: Vec<i8>,
    col_sums: Vec<i64>,
    zero_points: Vec<i32>,
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
        let mut panels = vec![0i8; np * kp * NR];
        let mut col_sums = vec![0i64; n];
        for j in 0..n {
            let (p, c) = (j / NR, j % NR);
            for kk in 0..k {
                let v = b[layout.index(kk, j, k, n)];
                col_sums[j] += v as i64;
                panels[p * kp * NR + (kk / KR) * KR * NR + c * KR + kk % KR] = v;
            }
        }
        Ok(PackedWeights { k, n, kp, panels, col_sums, zero_points: (0..n).map(|j| zero_points.get(j)).collect() })
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
/// run on the calling thread): the rows are cut into contiguous blocks (whole
/// multiples of [`MR`]), one per thread, each with its own buffers. The result is the same for
/// any thread count (every output element is computed by one thread, the same way).
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
    let (k, n) = (w.k, w.n);
    if lda < k {
        return Err(QuantError::InvalidArgument { what: "lda", detail: format!("{lda} is below K = {k}") });
    }
    let need = if m == 0 { Some(0) } else { (m - 1).checked_mul(lda).and_then(|v| v.checked_add(k)) };
    let need = need.ok_or(QuantError::TooLarge {
        what: "M x lda",
        value: m as u128 * lda as u128,
        limit: usize::MAX as u128,
    })?;
    if a.len() < need {
        return Err(QuantError::LengthMismatch { what: "a (M rows of stride lda)", expected: need, got: a.len() });
    }
    let mn = m.checked_mul(n).ok_or(QuantError::TooLarge {
        what: "M x N",
        value: m as u128 * n as u128,
        limit: usize::MAX as u128,
    })?;
    check_len("output (M x N)", mn, out.len())?;
    QType::U8.full_range().check_zero_point(0, a_zero_point)?;
    if !kernel.is_available() {
        return Err(QuantError::Unsupported { what: format!("{}: not available on this CPU", kernel.name()) });
    }
    let _ = GemmDims::new(m, n, k);
    // Past the exact depth the i32 micro-kernels could wrap: the portable one (i64) takes over.
    let kernel = if kernel.exact_for(k) { kernel } else { GemmKernel::Portable };
    // The zero-point terms that depend on the column only: -za colsum[j] + K za zb[j].
    let za = a_zero_point as i64;
    let col_bias: Vec<i64> = (0..n).map(|j| -za * w.col_sums[j] + k as i64 * za * w.zero_points[j] as i64).collect();
    // Threads only where each gets several row blocks of real work.
    let blocks = m.div_ceil(MR);
    let work = m.saturating_mul(n).saturating_mul(k);
    let threads = threads.clamp(1, blocks.max(1)).min(if work < (1 << 20) { 1 } else { usize::MAX });
    if threads <= 1 || n == 0 {
        return rows_block(a, lda, 0, m, w, kernel, &col_bias, out);
    }
    let rows_per = blocks.div_ceil(threads) * MR;
    let col_bias = &col_bias;
    let tasks: Vec<Box<dyn FnOnce() -> Result<()> + Send + '_>> = out
        .chunks_mut(rows_per * n)
        .enumerate()
        .map(|(t, o)| {
            let (i0, rows) = (t * rows_per, o.len() / n);
            Box::new(move || rows_block(a, lda, i0, rows, w, kernel, col_bias, o))
                as Box<dyn FnOnce() -> Result<()> + Send + '_>
        })
        .collect();
    // On the engine's persistent workers (no thread is created per call).
    let results = crate::pool::run(threads, tasks);
    // The first error in row order (each block reports its first overflowing element).
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

/// Rows `i0 .. i0 + m` of the product into `out` (`m` rows of `N`).
#[allow(clippy::too_many_arguments)]
fn rows_block(
    a: &[u8],
    lda: usize,
    i0: usize,
    m: usize,
    w: &PackedWeights,
    kernel: GemmKernel,
    col_bias: &[i64],
    out: &mut [i32],
) -> Result<()> {
    let (k, n) = (w.k, w.n);
    let zb_cols: Vec<i64> = w.zero_points.iter().map(|&z| z as i64).collect();
    let zero_weight_zps = zb_cols.iter().all(|&z| z == 0);
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
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut raw32 = vec![0i32; if amx_path { mr * npad } else { 0 }];
    let mut raw = vec![0i64; if amx_path { 0 } else { mr * n }];
    let mut abuf = vec![0u8; mr * kstride];
    let mut row32 = vec![0i32; n];
    // Every exact value |sum_k (a - za)(b - zb)| <= K 255^2 fits i32 for K <= 33025: then the i32
    // sums plus the column and row terms, all taken modulo 2^32 (wrapping), are the exact
    // values, and no element needs the i64 check (for the AMX tiles, which hold i32 sums).
    let fits_i32 = (k as u64) * 255 * 255 <= i32::MAX as u64;
    let col_bias32: Vec<i32> = col_bias.iter().map(|&c| c as i32).collect();
    let zb32: Vec<i32> = w.zero_points.clone();
    let mut r0 = 0;
    let mut filled = 0;
    while r0 < m {
        let rows = (m - r0).min(mr);
        // Rows past `rows` (a last, short block) and the `k..kstride` padding must be zero; the
        // first `k` bytes of the used rows are overwritten below.
        if rows < filled {
            abuf[rows * kstride..filled * kstride].iter_mut().for_each(|v| *v = 0);
        }
        filled = rows;
        for r in 0..rows {
            let src = (i0 + r0 + r) * lda;
            abuf[r * kstride..r * kstride + k].copy_from_slice(&a[src..src + k]);
        }
        match kernel {
            #[cfg(target_arch = "x86_64")]
            GemmKernel::AmxInt8 => {
                // SAFETY: AMX is available (checked by the caller); `abuf` holds 32 rows of
                // `kstride` bytes (a multiple of 64, at least kp), `rows` of them filled;
                // `raw32` holds 32 rows of `npad` (a multiple of 32, at least n).
                unsafe { amx::raw_32x32(&abuf, rows, kstride, w, &mut raw32, npad) }
            }
            // Every micro-kernel below: the caller checked `kernel.is_available()`, so the CPU
            // has its features; `abuf` holds MR rows of `kp` bytes and `raw` MR rows of `n` sums.
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx512Vnni => {
                // SAFETY: see above (AVX-512 F/BW + VNNI detected).
                unsafe { vnni::raw_4x64(&abuf, w, &mut raw) }
            }
            #[cfg(target_arch = "x86_64")]
            GemmKernel::AvxVnni => {
                // SAFETY: see above (AVX2 + AVX-VNNI detected).
                unsafe { avx256::raw_4x16::<true>(&abuf, w, &mut raw) }
            }
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx2 => {
                // SAFETY: see above (AVX2 detected).
                unsafe { avx256::raw_4x16::<false>(&abuf, w, &mut raw) }
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
        for r in 0..rows {
            // Only weights with nonzero zero points need the row's sum.
            let row_sum: i64 =
                if zero_weight_zps { 0 } else { abuf[r * kstride..r * kstride + k].iter().map(|&v| v as i64).sum() };
            let out_r = &mut out[(r0 + r) * n..(r0 + r + 1) * n];
            if amx_path && fits_i32 {
                let sums = &raw32[r * npad..r * npad + n];
                if zero_weight_zps {
                    for ((o, &v), &cb) in out_r.iter_mut().zip(sums).zip(&col_bias32) {
                        *o = v.wrapping_add(cb);
                    }
                } else {
                    let rs = row_sum as i32;
                    for (((o, &v), &cb), &zb) in out_r.iter_mut().zip(sums).zip(&col_bias32).zip(&zb32) {
                        *o = v.wrapping_add(cb).wrapping_sub(zb.wrapping_mul(rs));
                    }
                }
                continue;
            }
            // The exact value in i64 and whether any leaves i32 (`v + 2^31` has high bits
            // exactly when `v` is outside [-2^31, 2^31)), computed into a scratch row and copied
            // out only when none does (an error leaves the output row untouched, as the
            // reference does): branch-free loops the compiler vectorizes; symmetric weights
            // (every zero point 0) skip the row-sum term.
            let mut outside = 0u64;
            macro_rules! epilogue {
                ($sums:expr, $exact:expr) => {
                    for (((o, &v), &cb), &zb) in row32.iter_mut().zip($sums).zip(col_bias).zip(zb_cols.iter()) {
                        let x: i64 = $exact(v as i64, cb, zb);
                        outside |= (x as u64).wrapping_add(1 << 31) >> 32;
                        *o = x as i32;
                    }
                };
            }
            match (amx_path, zero_weight_zps) {
                (true, true) => epilogue!(&raw32[r * npad..r * npad + n], |s: i64, cb: i64, _| s + cb),
                (true, false) => {
                    epilogue!(&raw32[r * npad..r * npad + n], |s: i64, cb: i64, zb: i64| s + cb - zb * row_sum)
                }
                (false, true) => epilogue!(&raw[r * n..(r + 1) * n], |s: i64, cb: i64, _| s + cb),
                (false, false) => epilogue!(&raw[r * n..(r + 1) * n], |s: i64, cb: i64, zb: i64| s + cb - zb * row_sum),
            }
            if outside == 0 {
                out_r.copy_from_slice(&row32);
            }
            if outside != 0 {
                // The first element in row order whose exact value leaves i32 (the reference's).
                let value = |j: usize| {
                    let sum = if amx_path { raw32[r * npad + j] as i64 } else { raw[r * n + j] };
                    sum + col_bias[j] - zb_cols[j] * row_sum
                };
                let j = (0..n).find(|&j| i32::try_from(value(j)).is_err()).unwrap_or(0);
                return to_i32_accumulator(value(j), k, i0 + r0 + r, j).map(|_| ());
            }
        }
        r0 += rows;
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

    /// One group of four `k` for eight columns: `acc += sum over the group of a * b`, by AVX-VNNI
    /// `vpdpbusd` (`VNNI`), or by AVX2: the 32 weight bytes widened to two vectors of 16 i16
    /// (`vpmovsxbw`), the row's four activations widened and broadcast (`vpmovzxbw`), and
    /// `vpmaddwd`, which cannot saturate here (each pair sum is at most `2 * 255 * 128`); the
    /// AVX2 accumulators hold two partial sums per column, added at the end.
    #[inline(always)]
    unsafe fn step<const VNNI: bool>(acc: &mut [__m256i; 2], a: *const u8, b: *const i8) {
        // SAFETY: the caller guarantees 4 readable bytes at `a` and 32 at `b`, and the features.
        unsafe {
            if VNNI {
                let w = _mm256_loadu_si256(b.cast());
                let x = _mm256_set1_epi32(a.cast::<i32>().read_unaligned());
                acc[0] = _mm256_dpbusd_avx_epi32(acc[0], x, w);
            } else {
                let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.cast()));
                let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(16).cast()));
                let x4 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(a.cast::<i32>().read_unaligned()));
                let x = _mm256_broadcastq_epi64(x4);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(w0, x));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(w1, x));
            }
        }
    }

    /// `raw[r*N + j] = sum_k a[r][k] B[k][j]` for the four rows of `abuf`, eight columns (half a
    /// panel) at a time.
    ///
    /// # Safety
    /// The CPU must have AVX2 (and AVX-VNNI when `VNNI`); `abuf.len() == MR * w.kp`,
    /// `raw.len() >= MR * w.n`.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn raw_vnni(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
        // SAFETY: forwarded.
        unsafe { raw_any::<true>(abuf, w, raw) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn raw_avx2(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
        // SAFETY: forwarded.
        unsafe { raw_any::<false>(abuf, w, raw) }
    }

    /// # Safety
    /// As [`raw_vnni`] / [`raw_avx2`]: the CPU has the kernel's features; `abuf.len() == MR * w.kp`,
    /// `raw.len() >= MR * w.n`.
    pub unsafe fn raw_4x16<const VNNI: bool>(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            if VNNI {
                raw_vnni(abuf, w, raw)
            } else {
                raw_avx2(abuf, w, raw)
            }
        }
    }

    #[inline(always)]
    unsafe fn raw_any<const VNNI: bool>(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
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
                        unsafe { step::<VNNI>(acc_r, abuf.as_ptr().add(r * kp + g * KR), bp.add(g * KR * NR)) };
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
                        raw[r * w.n + col0 + c] = if VNNI {
                            l[0][c] as i64
                        } else {
                            // vpmaddwd lanes: column c's two partial sums at 2c and 2c + 1 of
                            // the vector holding columns 4 * (c / 4) ..
                            let (v, i) = (c / 4, 2 * (c % 4));
                            l[v][i] as i64 + l[v][i + 1] as i64
                        };
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

    /// Whether AMX-INT8 can run here: CPUID reports AMX-TILE and AMX-INT8, the OS saves the
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
        if !(osxsave && tile && int8) {
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

    /// `raw[r*N + j] = sum_k a[r][k] B[k][j]` for the first `rows` (<= 32) rows of `abuf`, whose
    /// rows are `kp64` bytes (`w.kp` rounded up to [`KC`], zero padded): per step of 64 `k` and
    /// pair of panels, two A tiles and two B tiles feed four `tdpbusd` (each B tile serves 32
    /// rows).
    ///
    /// # Safety
    /// [`available`] returned true; `1 <= rows <= 32`; `abuf.len() >= MR * kp64` with `kp64` a
    /// multiple of [`KC`] at least `w.kp`; `raw.len() >= MR * npad` with `npad` a multiple of 32
    /// at least `w.n` (the sums of row `r` land at `raw[r * npad..][..w.n]`, as i32: exact for
    /// `K <= MAX_EXACT_K`).
    pub unsafe fn raw_32x32(abuf: &[u8], rows: usize, kp64: usize, w: &PackedWeights, raw: &mut [i32], npad: usize) {
        let (rows0, rows1) = (rows.min(16), rows.saturating_sub(16));
        let cfg = Config::new(rows0, rows1);
        let (kp, n) = (w.kp, w.n);
        let (full, rem) = (kp / KC, kp % KC);
        let stride = kp * NR;
        // The last, partial step's B groups, zero padded to a whole tile (one per panel).
        let mut tail = [[0i8; KC * NR]; 2];
        let a0 = abuf.as_ptr();
        let a1 = abuf[16 * kp64..].as_ptr();
        // SAFETY: `cfg` is a valid 64-byte palette-1 configuration (at most 16 rows of 64 bytes).
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
        let mut p = 0;
        while p * NR < n {
            // Panels p and p + 1 exist: panels are packed in whole groups of four.
            let b0 = w.panels[p * stride..].as_ptr();
            let b1 = w.panels[(p + 1) * stride..].as_ptr();
            // SAFETY: every tile instruction below: the configuration is loaded; the A loads
            // read `rows0` / `rows1` rows of 64 bytes at `64 t` of rows 0 / 16 with stride
            // `kp64`, inside `abuf` (64 t + 64 <= kp64); the B loads read 16 rows of 64 bytes,
            // 1,024 bytes of whole groups inside the panel (t < full) or the zero-padded tail
            // copy; the stores write `rows0` / `rows1` rows of 16 i32 at columns `16 p` and
            // `16 p + 16` of rows of `npad` i32 in `raw` (p is even and `16 p < n`, so `16 p + 32
            // <= npad`, a multiple of 32; rows < 32 <= raw.len() / npad). Tiles 2, 3 and 5 are
            // only touched when `rows1 > 0`.
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
                asm!("tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
                if rows1 > 0 {
                    asm!("tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
                }
                for t in 0..full {
                    // The B tiles two steps ahead, from L2 into L1 (tile loads are not seen by
                    // the L1 streamer): 32 lines, while this step's products run.
                    if t + 2 < full {
                        for l in 0..16 {
                            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                                b0.add((t + 2) * KC * NR + 64 * l),
                            );
                            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                                b1.add((t + 2) * KC * NR + 64 * l),
                            );
                        }
                    }
                    step(t * KC, b0.add(t * KC * NR), b1.add(t * KC * NR));
                }
                if rem > 0 {
                    let g = (rem / KR) * KR * NR;
                    tail[0][..g].copy_from_slice(core::slice::from_raw_parts(b0.add(full * KC * NR), g));
                    tail[1][..g].copy_from_slice(core::slice::from_raw_parts(b1.add(full * KC * NR), g));
                    step(full * KC, tail[0].as_ptr(), tail[1].as_ptr());
                }
                // Rows of `npad` i32 in `raw`: tile rows go straight to their place.
                let cp = raw.as_mut_ptr().add(p * NR);
                let sc = npad * 4;
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
                        c0 = in(reg) cp.add(16 * npad),
                        c1 = in(reg) cp.add(16 * npad + NR),
                        sc = in(reg) sc,
                        options(nostack)
                    );
                }
            }
            p += 2;
        }
        // SAFETY: releases the tile state this function configured.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{PackedWeights, KR, NR, PANELS};
    use core::arch::x86_64::*;

    /// `raw[r*N + j] = sum_k a[r][k] B[k][j]` for the four rows of `abuf` (`kp` bytes each, zero
    /// padded) with `vpdpbusd`: per group of four `k`, four 64-byte loads (four panels of 16
    /// columns x 4 `k`), each row's four bytes broadcast once, sixteen 16-lane accumulators.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `abuf.len() == MR * w.kp`, `raw.len() >= MR * w.n`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn raw_4x64(abuf: &[u8], w: &PackedWeights, raw: &mut [i64]) {
        let kp = w.kp;
        let groups = kp / KR;
        let stride = kp * NR;
        let panels = w.panels.len() / stride.max(1);
        let mut p = 0;
        while p < panels && p * NR < w.n {
            let base = &w.panels[p * stride..(p + PANELS) * stride];
            let z = _mm512_setzero_si512();
            let (mut c00, mut c01, mut c02, mut c03) = (z, z, z, z);
            let (mut c10, mut c11, mut c12, mut c13) = (z, z, z, z);
            let (mut c20, mut c21, mut c22, mut c23) = (z, z, z, z);
            let (mut c30, mut c31, mut c32, mut c33) = (z, z, z, z);
            let bp = base.as_ptr();
            let ap = abuf.as_ptr();
            for g in 0..groups {
                // SAFETY: group `g` of panels `p..p + 4` lies inside `base` (whole groups of PANELS
                // panels are packed); row `r`'s four bytes at `r * kp + 4 g` lie inside `abuf`.
                unsafe {
                    let o = g * KR * NR;
                    let b0 = _mm512_loadu_si512(bp.add(o).cast());
                    let b1 = _mm512_loadu_si512(bp.add(stride + o).cast());
                    let b2 = _mm512_loadu_si512(bp.add(2 * stride + o).cast());
                    let b3 = _mm512_loadu_si512(bp.add(3 * stride + o).cast());
                    let word = |r: usize| _mm512_set1_epi32(ap.add(r * kp + g * KR).cast::<i32>().read_unaligned());
                    let a0 = word(0);
                    c00 = _mm512_dpbusd_epi32(c00, a0, b0);
                    c01 = _mm512_dpbusd_epi32(c01, a0, b1);
                    c02 = _mm512_dpbusd_epi32(c02, a0, b2);
                    c03 = _mm512_dpbusd_epi32(c03, a0, b3);
                    let a1 = word(1);
                    c10 = _mm512_dpbusd_epi32(c10, a1, b0);
                    c11 = _mm512_dpbusd_epi32(c11, a1, b1);
                    c12 = _mm512_dpbusd_epi32(c12, a1, b2);
                    c13 = _mm512_dpbusd_epi32(c13, a1, b3);
                    let a2 = word(2);
                    c20 = _mm512_dpbusd_epi32(c20, a2, b0);
                    c21 = _mm512_dpbusd_epi32(c21, a2, b1);
                    c22 = _mm512_dpbusd_epi32(c22, a2, b2);
                    c23 = _mm512_dpbusd_epi32(c23, a2, b3);
                    let a3 = word(3);
                    c30 = _mm512_dpbusd_epi32(c30, a3, b0);
                    c31 = _mm512_dpbusd_epi32(c31, a3, b1);
                    c32 = _mm512_dpbusd_epi32(c32, a3, b2);
                    c33 = _mm512_dpbusd_epi32(c33, a3, b3);
                }
            }
            let acc = [[c00, c01, c02, c03], [c10, c11, c12, c13], [c20, c21, c22, c23], [c30, c31, c32, c33]];
            for (r, acc_r) in acc.iter().enumerate() {
                for (q, v) in acc_r.iter().enumerate() {
                    let col = (p + q) * NR;
                    if col >= w.n {
                        break;
                    }
                    let mut lanes = [0i32; NR];
                    // SAFETY: `lanes` holds 16 i32.
                    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *v) };
                    for c in 0..(w.n - col).min(NR) {
                        raw[r * w.n + col + c] = lanes[c] as i64;
                    }
                }
            }
            p += PANELS;
        }
    }
}
