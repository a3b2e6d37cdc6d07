//! # Probes: microkernels that measure this machine's ceilings
//!
//! A throughput figure means little without the ceiling it runs under. The kernels here *are*
//! the ceilings, measured rather than quoted from a data sheet:
//!
//! | probe | what it does | its figure |
//! |---|---|---|
//! | [`ReadKernel`] | wrapping sum of every `u64` of a buffer, several independent vector accumulators | bytes read per second |
//! | [`DotKernel`] | independent chains of int8 multiply-adds on registers, no memory traffic | int8 ops per second (a multiply-add is 2 ops) |
//! | [`FmaKernel`] | independent chains of f32 fused multiply-adds on registers | f32 flops per second (an FMA is 2 flops) |
//!
//! Timing belongs to the caller (`quantproof_harness::machine`): a probe only does a known
//! amount of work and returns a checksum, which the caller must consume
//! ([`std::hint::black_box`]) so that the work cannot be optimized away. Each checksum has a
//! closed form ([`DotKernel::expected`], [`FmaKernel::expected`], a scalar sum for reads), and the
//! tests hold every kernel to it: a probe that skipped work would fail them.
//!
//! ## Keeping the compiler honest
//!
//! A multiply-add chain `acc = acc + a * b` depends on its accumulator, so it cannot be hoisted
//! out of the loop. `vpmaddubsw` + `vpmaddwd` is different: the products do not depend on the
//! accumulator, and an optimizer would compute them once. That kernel passes its input through
//! an empty `asm!` block before each use, which claims to change the register and so forces the
//! products to be recomputed, at the cost of no instruction. Enough independent chains
//! (12 to 16) cover the multiply-add latency times the issue width of current cores (two 512-bit
//! `vpdpbusd` or FMA per cycle with a latency of about 4 cycles needs at least 8).
//!
//! ## Safety
//!
//! SIMD kernels are `#[target_feature]` functions, private to this module; the public entry
//! points check the CPU features ([`DotKernel::is_available`] and friends) before calling them
//! and return [`QuantError::Unsupported`] otherwise.

use quantproof_reference::error::{QuantError, Result};

/// Number of independent accumulators in the 512-bit kernels.
const CHAINS_512: usize = 16;
/// Number of independent accumulators in the 256-bit and 128-bit kernels (16 registers).
const CHAINS_256: usize = 10;
/// Number of independent accumulators in the scalar kernels.
const CHAINS_SCALAR: usize = 8;

fn unsupported(what: &str) -> QuantError {
    QuantError::Unsupported { what: format!("probe kernel {what} on this CPU") }
}

#[cfg(target_arch = "x86_64")]
fn x86_has(feature: &str) -> bool {
    match feature {
        "avx2" => std::is_x86_feature_detected!("avx2"),
        "fma" => std::is_x86_feature_detected!("fma"),
        "avx512f" => std::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
        "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
        "avxvnni" => std::is_x86_feature_detected!("avxvnni"),
        _ => false,
    }
}

/// A memory-read kernel: the wrapping sum of a buffer's `u64` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadKernel {
    /// 512-bit loads, four `vpaddq` accumulators.
    Avx512,
    /// 256-bit loads, four `vpaddq` accumulators.
    Avx2,
    /// 128-bit loads, four `add` accumulators.
    Neon,
    /// Portable Rust with four accumulators (the compiler vectorizes it for the baseline ISA).
    Scalar,
}

impl ReadKernel {
    /// Every variant, widest first.
    pub const ALL: [ReadKernel; 4] = [ReadKernel::Avx512, ReadKernel::Avx2, ReadKernel::Neon, ReadKernel::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            ReadKernel::Avx512 => "avx512 (vmovdqu64 + vpaddq zmm)",
            ReadKernel::Avx2 => "avx2 (vmovdqu + vpaddq ymm)",
            ReadKernel::Neon => "neon (ld1 + add v.2d)",
            ReadKernel::Scalar => "scalar (portable Rust)",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            ReadKernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            ReadKernel::Avx512 => x86_has("avx512f"),
            #[cfg(target_arch = "x86_64")]
            ReadKernel::Avx2 => x86_has("avx2"),
            #[cfg(target_arch = "aarch64")]
            ReadKernel::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The widest available kernel.
    pub fn best() -> ReadKernel {
        ReadKernel::ALL.into_iter().find(|k| k.is_available()).unwrap_or(ReadKernel::Scalar)
    }

    /// `sum(buf)` with wrapping `u64` addition (the result does not depend on the kernel).
    pub fn sum(self, buf: &[u64]) -> Result<u64> {
        if !self.is_available() {
            return Err(unsupported(self.name()));
        }
        Ok(match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx512f above.
            ReadKernel::Avx512 => unsafe { x86::sum_avx512(buf) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx2 above.
            ReadKernel::Avx2 => unsafe { x86::sum_avx2(buf) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `is_available` checked neon above.
            ReadKernel::Neon => unsafe { arm::sum_neon(buf) },
            _ => sum_scalar(buf),
        })
    }
}

fn sum_scalar(buf: &[u64]) -> u64 {
    let mut acc = [0u64; 4];
    let chunks = buf.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(v);
        }
    }
    let mut s = acc.iter().fold(0u64, |s, &a| s.wrapping_add(a));
    for &v in tail {
        s = s.wrapping_add(v);
    }
    s
}

/// An int8 multiply-add kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DotKernel {
    /// Intel AMX `tdpbusd`: a 16 x 64 `u8` tile times a 16 x 64 `i8` tile, 16,384 multiply-adds
    /// into a 16 x 16 `i32` tile (four accumulator tiles).
    AmxInt8,
    /// 512-bit `vpdpbusd` (AVX-512 VNNI): 64 `u8 x i8` multiply-adds into 16 `i32` lanes.
    Avx512Vnni,
    /// 256-bit `vpdpbusd` (AVX-VNNI): 32 `u8 x i8` multiply-adds into 8 `i32` lanes, the AVX2
    /// level's GEMM kernel where the CPU has it.
    AvxVnni,
    /// 256-bit `vpmaddubsw` + `vpmaddwd` + `vpaddd` (AVX2): 32 multiply-adds through `i16`
    /// pair sums (which saturate: see the kernel anchors) into 8 `i32` lanes.
    Avx2Maddubs,
    /// 128-bit `sdot` (Armv8.2 dot product): 16 `i8 x i8` multiply-adds into 4 `i32` lanes.
    NeonSdot,
    /// 128-bit `smlal` (plain NEON): 8 `i8 x i8` multiply-adds into 8 `i16` lanes.
    NeonSmlal,
    /// Portable Rust `i32` multiply-adds (what the compiler makes of it for the baseline ISA).
    Scalar,
}

impl DotKernel {
    /// Every variant, fastest first.
    pub const ALL: [DotKernel; 7] = [
        DotKernel::AmxInt8,
        DotKernel::Avx512Vnni,
        DotKernel::AvxVnni,
        DotKernel::Avx2Maddubs,
        DotKernel::NeonSdot,
        DotKernel::NeonSmlal,
        DotKernel::Scalar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DotKernel::AmxInt8 => "amx-int8 (tdpbusd tiles)",
            DotKernel::Avx512Vnni => "avx512-vnni (vpdpbusd zmm)",
            DotKernel::AvxVnni => "avx-vnni (vpdpbusd ymm)",
            DotKernel::Avx2Maddubs => "avx2 (vpmaddubsw + vpmaddwd ymm)",
            DotKernel::NeonSdot => "neon-dotprod (sdot)",
            DotKernel::NeonSmlal => "neon (smlal)",
            DotKernel::Scalar => "scalar (portable Rust)",
        }
    }

    pub fn is_available(self) -> bool {
        match self {
            DotKernel::Scalar => true,
            DotKernel::AmxInt8 => quantproof_optimized::gemm::GemmKernel::AmxInt8.is_available(),
            #[cfg(target_arch = "x86_64")]
            DotKernel::Avx512Vnni => x86_has("avx512f") && x86_has("avx512vnni"),
            #[cfg(target_arch = "x86_64")]
            DotKernel::AvxVnni => x86_has("avx2") && x86_has("avxvnni"),
            #[cfg(target_arch = "x86_64")]
            DotKernel::Avx2Maddubs => x86_has("avx2"),
            #[cfg(target_arch = "aarch64")]
            DotKernel::NeonSdot => {
                std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            DotKernel::NeonSmlal => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The available kernels, fastest first.
    pub fn available() -> Vec<DotKernel> {
        DotKernel::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// (chains, multiply-adds per chain per iteration, accumulator lanes per chain, lane bits).
    fn shape(self) -> (u64, u64, u64, u32) {
        match self {
            DotKernel::AmxInt8 => (4, 16 * 16 * 64, 256, 32),
            DotKernel::Avx512Vnni => (CHAINS_512 as u64, 64, 16, 32),
            DotKernel::AvxVnni => (CHAINS_256 as u64, 32, 8, 32),
            DotKernel::Avx2Maddubs => (CHAINS_256 as u64, 32, 8, 32),
            DotKernel::NeonSdot => (CHAINS_256 as u64, 16, 4, 32),
            DotKernel::NeonSmlal => (CHAINS_256 as u64, 8, 8, 16),
            DotKernel::Scalar => (CHAINS_SCALAR as u64, 4, 1, 32),
        }
    }

    /// Integer operations per loop iteration: 2 per multiply-add (the `vpmaddwd` by ones that
    /// widens the AVX2 pair sums is not counted).
    pub fn ops_per_iter(self) -> u64 {
        let (chains, macs, _, _) = self.shape();
        2 * chains * macs
    }

    /// Runs `iters` iterations with every `a` byte equal to `a` and every `b` byte equal to `b`,
    /// returning the sum over all accumulator lanes (each lane wrapping at its width).
    /// `a` must stay within `0..=127` so that the unsigned and signed kernels agree.
    pub fn run(self, iters: u64, a: u8, b: i8) -> Result<i64> {
        if !self.is_available() {
            return Err(unsupported(self.name()));
        }
        if a > 127 {
            return Err(QuantError::InvalidArgument { what: "a", detail: format!("{a} > 127") });
        }
        Ok(match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked AMX-INT8 (CPU, OS state and the tile permission).
            DotKernel::AmxInt8 => unsafe { x86::dot_amx(iters, a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx512f and avx512vnni above.
            DotKernel::Avx512Vnni => unsafe { x86::dot_vnni512(iters, a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx2 and avxvnni above.
            DotKernel::AvxVnni => unsafe { x86::dot_vnni256(iters, a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx2 above.
            DotKernel::Avx2Maddubs => unsafe { x86::dot_maddubs256(iters, a, b) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `is_available` checked neon and dotprod above.
            DotKernel::NeonSdot => unsafe { arm::dot_sdot(iters, a as i8, b) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `is_available` checked neon above.
            DotKernel::NeonSmlal => unsafe { arm::dot_smlal(iters, a as i8, b) },
            _ => dot_scalar(iters, a, b),
        })
    }

    /// The checksum [`DotKernel::run`] must return: every lane gains `macs_per_lane * a * b`
    /// per iteration, wrapping at the lane width.
    pub fn expected(self, iters: u64, a: u8, b: i8) -> i64 {
        let (chains, macs, lanes, bits) = self.shape();
        let per_lane = (macs / lanes) as i64 * a as i64 * b as i64;
        let total = (per_lane as i128 * iters as i128) as i64;
        let lane = if bits == 16 { total as i16 as i64 } else { total as i32 as i64 };
        lane * (chains * lanes) as i64
    }
}

fn dot_scalar(iters: u64, a: u8, b: i8) -> i64 {
    let (a, b) = (std::hint::black_box([a as i32; 4]), std::hint::black_box([b as i32; 4]));
    let mut acc = [0i32; CHAINS_SCALAR];
    for _ in 0..iters {
        // The loop-invariant products would be hoisted (and the loop folded into one multiply)
        // without this barrier.
        let (a, b) = std::hint::black_box((a, b));
        for v in acc.iter_mut() {
            *v = v.wrapping_add(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]);
        }
    }
    acc.iter().map(|&v| v as i64).sum()
}

/// An f32 fused multiply-add kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FmaKernel {
    /// 512-bit `vfmadd` (AVX-512F), 16 lanes.
    Avx512,
    /// 256-bit `vfmadd` (FMA3), 8 lanes.
    Avx2,
    /// 128-bit `fmla` (NEON), 4 lanes.
    Neon,
    /// Portable Rust `acc * a + b` (two roundings: no FMA in the baseline ISA), 1 lane.
    Scalar,
}

impl FmaKernel {
    /// Every variant, fastest first.
    pub const ALL: [FmaKernel; 4] = [FmaKernel::Avx512, FmaKernel::Avx2, FmaKernel::Neon, FmaKernel::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            FmaKernel::Avx512 => "avx512 (vfmadd231ps zmm)",
            FmaKernel::Avx2 => "avx2+fma (vfmadd231ps ymm)",
            FmaKernel::Neon => "neon (fmla v.4s)",
            FmaKernel::Scalar => "scalar (portable Rust, mul + add)",
        }
    }

    pub fn is_available(self) -> bool {
        match self {
            FmaKernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            FmaKernel::Avx512 => x86_has("avx512f"),
            #[cfg(target_arch = "x86_64")]
            FmaKernel::Avx2 => x86_has("avx2") && x86_has("fma"),
            #[cfg(target_arch = "aarch64")]
            FmaKernel::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The available kernels, fastest first.
    pub fn available() -> Vec<FmaKernel> {
        FmaKernel::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// (chains, lanes per chain).
    fn shape(self) -> (u64, u64) {
        match self {
            FmaKernel::Avx512 => (CHAINS_512 as u64, 16),
            FmaKernel::Avx2 => (CHAINS_256 as u64, 8),
            FmaKernel::Neon => (CHAINS_256 as u64, 4),
            FmaKernel::Scalar => (CHAINS_SCALAR as u64, 1),
        }
    }

    /// Flops per loop iteration (2 per lane per chain).
    pub fn flops_per_iter(self) -> u64 {
        let (chains, lanes) = self.shape();
        2 * chains * lanes
    }

    /// Runs `iters` iterations of `acc = acc * a + b` on every lane (all starting at 0) and
    /// returns the sum of the lanes in f64. Choose `|a| < 1` so the values stay normal.
    pub fn run(self, iters: u64, a: f32, b: f32) -> Result<f64> {
        if !self.is_available() {
            return Err(unsupported(self.name()));
        }
        Ok(match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx512f above.
            FmaKernel::Avx512 => unsafe { x86::fma512(iters, a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_available` checked avx2 and fma above.
            FmaKernel::Avx2 => unsafe { x86::fma256(iters, a, b) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `is_available` checked neon above.
            FmaKernel::Neon => unsafe { arm::fma_neon(iters, a, b) },
            _ => fma_scalar(iters, a, b),
        })
    }

    /// The checksum [`FmaKernel::run`] must return: one lane's recurrence (fused for the SIMD
    /// kernels, `RN(RN(acc * a) + b)` for the scalar one) times the number of lanes.
    pub fn expected(self, iters: u64, a: f32, b: f32) -> f64 {
        let (chains, lanes) = self.shape();
        let mut acc = 0f32;
        for _ in 0..iters {
            acc = if self == FmaKernel::Scalar { acc * a + b } else { acc.mul_add(a, b) };
        }
        acc as f64 * (chains * lanes) as f64
    }
}

fn fma_scalar(iters: u64, a: f32, b: f32) -> f64 {
    let (a, b) = std::hint::black_box((a, b));
    let mut acc = [0f32; CHAINS_SCALAR];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = *v * a + b;
        }
    }
    acc.iter().map(|&v| v as f64).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS_256, CHAINS_512};
    use std::arch::asm;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn sum_avx512(buf: &[u64]) -> u64 {
        let mut acc = [_mm512_setzero_si512(); 4];
        let chunks = buf.chunks_exact(32);
        let tail = chunks.remainder();
        for c in chunks {
            let p = c.as_ptr();
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 32 u64 (4 x 64 bytes) and k < 4, so the 64 bytes at
                // p + 8k are inside it; loadu has no alignment requirement.
                let v = unsafe { _mm512_loadu_si512(p.add(8 * k).cast()) };
                *a = _mm512_add_epi64(*a, v);
            }
        }
        let v = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
        let s = _mm512_reduce_add_epi64(v) as u64;
        tail.iter().fold(s, |s, &x| s.wrapping_add(x))
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sum_avx2(buf: &[u64]) -> u64 {
        let mut acc = [_mm256_setzero_si256(); 4];
        let chunks = buf.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            let p = c.as_ptr();
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 16 u64 (4 x 32 bytes) and k < 4, so the 32 bytes at
                // p + 4k are inside it; loadu has no alignment requirement.
                let v = unsafe { _mm256_loadu_si256(p.add(4 * k).cast()) };
                *a = _mm256_add_epi64(*a, v);
            }
        }
        let v = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
        // SAFETY: __m256i and [u64; 4] have the same size and every bit pattern is valid.
        let lanes: [u64; 4] = unsafe { std::mem::transmute(v) };
        let s = lanes.iter().fold(0u64, |s, &x| s.wrapping_add(x));
        tail.iter().fold(s, |s, &x| s.wrapping_add(x))
    }

    fn lanes_i32_512(v: __m512i) -> i64 {
        // SAFETY: __m512i and [i32; 16] have the same size and every bit pattern is valid.
        let lanes: [i32; 16] = unsafe { std::mem::transmute(v) };
        lanes.iter().map(|&x| x as i64).sum()
    }

    fn lanes_i32_256(v: __m256i) -> i64 {
        // SAFETY: __m256i and [i32; 8] have the same size and every bit pattern is valid.
        let lanes: [i32; 8] = unsafe { std::mem::transmute(v) };
        lanes.iter().map(|&x| x as i64).sum()
    }

    /// Four independent `tdpbusd` chains on tiles loaded once (A of `a` bytes, B of `b` bytes),
    /// summed over every lane of the four accumulator tiles.
    ///
    /// # Safety
    /// AMX-INT8 must be usable (`GemmKernel::AmxInt8.is_available()`).
    pub(super) unsafe fn dot_amx(iters: u64, a: u8, b: i8) -> i64 {
        use core::arch::asm;
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut cfg = [0u8; 64];
        cfg[0] = 1;
        for t in [0usize, 1, 2, 3, 4, 6] {
            cfg[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
            cfg[48 + t] = 16;
        }
        let cfg = Config(cfg);
        let (ta, tb) = ([a; 1024], [b; 1024]);
        let mut c = [0i32; 4 * 256];
        // SAFETY: a valid palette-1 configuration (six tiles of 16 rows x 64 bytes); the loads
        // read 16 rows of 64 bytes (stride 64) inside `ta` / `tb`; the stores write 16 rows of
        // 64 bytes (stride 64) inside `c`; the tiles are released at the end.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
            asm!(
                "tileloadd tmm4, [{a} + {s}*1]",
                "tileloadd tmm6, [{b} + {s}*1]",
                "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
                a = in(reg) ta.as_ptr(), b = in(reg) tb.as_ptr(), s = in(reg) 64usize,
                options(nostack, readonly)
            );
            for _ in 0..iters {
                asm!(
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm6",
                    "tdpbusd tmm2, tmm4, tmm6",
                    "tdpbusd tmm3, tmm4, tmm6",
                    options(nostack, nomem)
                );
            }
            let p = c.as_mut_ptr();
            asm!(
                "tilestored [{c0} + {s}*1], tmm0",
                "tilestored [{c1} + {s}*1], tmm1",
                "tilestored [{c2} + {s}*1], tmm2",
                "tilestored [{c3} + {s}*1], tmm3",
                "tilerelease",
                c0 = in(reg) p, c1 = in(reg) p.add(256), c2 = in(reg) p.add(512), c3 = in(reg) p.add(768),
                s = in(reg) 64usize,
                options(nostack)
            );
        }
        c.iter().map(|&x| x as i64).sum()
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn dot_vnni512(iters: u64, a: u8, b: i8) -> i64 {
        let va = _mm512_set1_epi8(a as i8);
        let vb = _mm512_set1_epi8(b);
        let mut acc = [_mm512_setzero_si512(); CHAINS_512];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, va, vb);
            }
        }
        acc.iter().map(|&v| lanes_i32_512(v)).sum()
    }

    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) fn dot_vnni256(iters: u64, a: u8, b: i8) -> i64 {
        let va = _mm256_set1_epi8(a as i8);
        let vb = _mm256_set1_epi8(b);
        let mut acc = [_mm256_setzero_si256(); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_dpbusd_avx_epi32(*v, va, vb);
            }
        }
        acc.iter().map(|&v| lanes_i32_256(v)).sum()
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn dot_maddubs256(iters: u64, a: u8, b: i8) -> i64 {
        let va = _mm256_set1_epi8(a as i8);
        let vb = _mm256_set1_epi8(b);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                let mut x = va;
                // SAFETY: an empty asm block that only claims to modify the register holding
                // `x`: it touches no memory, no stack and no flags. It keeps the loop-invariant
                // products from being hoisted out of the loop (see the module docs).
                unsafe { asm!("/* {0} */", inout(ymm_reg) x, options(nomem, nostack, preserves_flags)) };
                let pairs = _mm256_maddubs_epi16(x, vb);
                *v = _mm256_add_epi32(*v, _mm256_madd_epi16(pairs, ones));
            }
        }
        acc.iter().map(|&v| lanes_i32_256(v)).sum()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn fma512(iters: u64, a: f32, b: f32) -> f64 {
        let (va, vb) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
        let mut acc = [_mm512_setzero_ps(); CHAINS_512];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, va, vb);
            }
        }
        acc.iter()
            .map(|&v| {
                // SAFETY: __m512 and [f32; 16] have the same size and every bit pattern is valid.
                let lanes: [f32; 16] = unsafe { std::mem::transmute(v) };
                lanes.iter().map(|&x| x as f64).sum::<f64>()
            })
            .sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma256(iters: u64, a: f32, b: f32) -> f64 {
        let (va, vb) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
        let mut acc = [_mm256_setzero_ps(); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, va, vb);
            }
        }
        acc.iter()
            .map(|&v| {
                // SAFETY: __m256 and [f32; 8] have the same size and every bit pattern is valid.
                let lanes: [f32; 8] = unsafe { std::mem::transmute(v) };
                lanes.iter().map(|&x| x as f64).sum::<f64>()
            })
            .sum()
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::CHAINS_256;
    use std::arch::aarch64::*;
    use std::arch::asm;

    #[target_feature(enable = "neon")]
    pub(super) fn sum_neon(buf: &[u64]) -> u64 {
        let mut acc = [vdupq_n_u64(0); 4];
        let chunks = buf.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            let p = c.as_ptr();
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 8 u64 and k < 4, so the two u64 at p + 2k are inside it.
                let v = unsafe { vld1q_u64(p.add(2 * k)) };
                *a = vaddq_u64(*a, v);
            }
        }
        let v = vaddq_u64(vaddq_u64(acc[0], acc[1]), vaddq_u64(acc[2], acc[3]));
        let s = vgetq_lane_u64::<0>(v).wrapping_add(vgetq_lane_u64::<1>(v));
        tail.iter().fold(s, |s, &x| s.wrapping_add(x))
    }

    #[target_feature(enable = "neon,dotprod")]
    pub(super) fn dot_sdot(iters: u64, a: i8, b: i8) -> i64 {
        let (va, vb) = (vdupq_n_s8(a), vdupq_n_s8(b));
        let mut acc = [vdupq_n_s32(0); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                // SAFETY: `sdot` reads two vector registers and accumulates into a third; no
                // memory or flags are touched, and the enclosing function enables dotprod,
                // which the caller detected. (`vdotq_s32` is not yet stable in Rust.)
                unsafe {
                    asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) *v, a = in(vreg) va,
                         b = in(vreg) vb, options(pure, nomem, nostack, preserves_flags));
                }
            }
        }
        acc.iter().map(|&v| vaddlvq_s32(v)).sum()
    }

    #[target_feature(enable = "neon")]
    pub(super) fn dot_smlal(iters: u64, a: i8, b: i8) -> i64 {
        let (va, vb) = (vdup_n_s8(a), vdup_n_s8(b));
        let mut acc = [vdupq_n_s16(0); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = vmlal_s8(*v, va, vb);
            }
        }
        acc.iter().map(|&v| vaddlvq_s16(v) as i64).sum()
    }

    #[target_feature(enable = "neon")]
    pub(super) fn fma_neon(iters: u64, a: f32, b: f32) -> f64 {
        let (va, vb) = (vdupq_n_f32(a), vdupq_n_f32(b));
        let mut acc = [vdupq_n_f32(0.0); CHAINS_256];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = vfmaq_f32(vb, *v, va);
            }
        }
        acc.iter()
            .map(|&v| {
                (vgetq_lane_f32::<0>(v) as f64)
                    + (vgetq_lane_f32::<1>(v) as f64)
                    + (vgetq_lane_f32::<2>(v) as f64)
                    + (vgetq_lane_f32::<3>(v) as f64)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_kernels_sum_every_word() {
        // Lengths that leave every possible tail, values that wrap.
        for n in [0usize, 1, 7, 31, 32, 33, 100, 1023] {
            let buf: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 60)).collect();
            let want = buf.iter().fold(0u64, |s, &x| s.wrapping_add(x));
            for k in ReadKernel::ALL {
                match k.sum(&buf) {
                    Ok(got) => assert_eq!(got, want, "{k:?} n={n}"),
                    Err(_) => assert!(!k.is_available()),
                }
            }
        }
    }

    #[test]
    fn dot_kernels_match_their_closed_form() {
        // Values that wrap i16 (smlal) and i32 lanes over the iterations, and stay below the
        // saturation of the AVX2 pair sums (2 * 127 * 127 < 32767).
        for (iters, a, b) in [(0u64, 3u8, -2i8), (1, 127, 127), (1000, 127, -128), (7777, 5, 7)] {
            for k in DotKernel::ALL {
                match k.run(iters, a, b) {
                    Ok(got) => assert_eq!(got, k.expected(iters, a, b), "{k:?} iters={iters} a={a} b={b}"),
                    Err(_) => assert!(!k.is_available()),
                }
            }
        }
        assert!(DotKernel::Scalar.run(1, 200, 1).is_err());
        assert!(DotKernel::available().contains(&DotKernel::Scalar));
    }

    #[test]
    fn fma_kernels_match_their_closed_form() {
        for (iters, a, b) in [(0u64, 0.5f32, 1.0f32), (1, 0.999, 0.25), (1000, 0.999, 0.25), (3333, -0.75, 1.5)] {
            for k in FmaKernel::ALL {
                match k.run(iters, a, b) {
                    Ok(got) => assert_eq!(got, k.expected(iters, a, b), "{k:?} iters={iters}"),
                    Err(_) => assert!(!k.is_available()),
                }
            }
        }
    }

    #[test]
    fn op_counts() {
        assert_eq!(DotKernel::Avx512Vnni.ops_per_iter(), 2 * 16 * 64);
        assert_eq!(DotKernel::Avx2Maddubs.ops_per_iter(), 2 * 10 * 32);
        assert_eq!(FmaKernel::Avx512.flops_per_iter(), 2 * 16 * 16);
        assert_eq!(FmaKernel::Scalar.flops_per_iter(), 16);
    }
}
