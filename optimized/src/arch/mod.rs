//! Kernels per instruction set: `generic` (portable scalar, always compiled), `x86_64/avx2`,
//! `x86_64/avx512`, `aarch64/neon`. Each SIMD module exposes a zero-sized token type whose only
//! constructor checks the CPU, so holding a token proves its features are present.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(test)]
mod calib_tests;
pub mod generic;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod lanes;
pub mod ln;
#[cfg(test)]
mod testkit;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
