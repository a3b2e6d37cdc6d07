//! x86-64 kernels: AVX2 (256-bit) and AVX-512 (512-bit).

pub mod avx2;
pub mod avx512;
