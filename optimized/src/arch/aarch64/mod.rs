//! AArch64 kernels: Advanced SIMD (NEON, 128-bit).

pub mod neon;
mod neon_binary;
mod neon_calib;
mod neon_requant;
