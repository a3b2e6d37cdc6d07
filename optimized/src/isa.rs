//! Instruction sets: detection (once, cached), forcing, and the proof tokens kernels require.
//!
//! [`Isa`] names a kernel family. A family is *available* when this CPU has every feature it needs
//! ([`Isa::features`]). Detection runs once per process and is cached. The dispatcher uses
//! [`selected`]: the ISA forced through [`force`] or the `QUANTPROOF_ISA` environment variable,
//! else the widest available one. Forcing an ISA the CPU lacks is an error, never a crash: no code
//! path can reach a kernel whose features were not detected, because the kernel tables
//! ([`crate::kernels::table`]) are built only from a detected ISA.

use quantproof_reference::error::{QuantError, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// A family of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust, no SIMD intrinsics. Always available.
    Scalar,
    /// x86-64 AVX2 (256-bit), with FMA present.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ (512-bit).
    Avx512,
    /// AArch64 Advanced SIMD (128-bit).
    Neon,
}

impl Isa {
    /// Every ISA quantproof has kernels for, narrowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// The width of this level's vector registers in bytes (the portable level: one 32-bit
    /// element). Kernels process whole vectors and finish with a tail, so tests derive their
    /// lengths from it (`harness::equiv::runner`).
    pub const fn vector_bytes(self) -> usize {
        match self {
            Isa::Scalar => 4,
            Isa::Avx2 => 32,
            Isa::Avx512 => 64,
            Isa::Neon => 16,
        }
    }

    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "generic" | "portable" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx-512" => Some(Isa::Avx512),
            "neon" | "asimd" => Some(Isa::Neon),
            _ => None,
        }
    }

    /// The CPU features the ISA's kernels are compiled for.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Isa::Scalar => &[],
            Isa::Avx2 => &["avx2", "fma"],
            Isa::Avx512 => &["avx512f", "avx512bw", "avx512vl", "avx512dq"],
            Isa::Neon => &["neon"],
        }
    }

    /// Widest vector in f32 lanes (for test lengths and alignment).
    pub fn f32_lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
            Isa::Neon => 4,
        }
    }

    /// Whether this CPU (and this build's target) can run the ISA's kernels. Cached.
    pub fn is_available(self) -> bool {
        detected().contains(&self)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An extension an ISA family may have on top of its base features. A kernel that needs one
/// checks [`Extension::is_available`] (detected once, cached) and otherwise leaves the work to its
/// family's kernel or the portable one, so an ISA level is a family plus a set of extensions
/// (AVX-512 with or without VNNI and VBMI, NEON with or without the dot product), not one more
/// entry of a flat list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Extension {
    /// AVX-512 VNNI: `vpdpbusd`, u8 x s8 dot products of four into i32 (512-bit).
    Avx512Vnni,
    /// AVX-512 VBMI: `vpermi2b`, byte permutes across 128-byte tables.
    Avx512Vbmi,
    /// AVX-VNNI: `vpdpbusd` on 256-bit registers without AVX-512.
    AvxVnni,
    /// The Armv8.2 dot product: `sdot` / `udot`, four i8 products into i32.
    NeonDotprod,
}

impl Extension {
    pub const ALL: [Extension; 4] =
        [Extension::Avx512Vnni, Extension::Avx512Vbmi, Extension::AvxVnni, Extension::NeonDotprod];

    pub fn name(self) -> &'static str {
        match self {
            Extension::Avx512Vnni => "vnni",
            Extension::Avx512Vbmi => "vbmi",
            Extension::AvxVnni => "avxvnni",
            Extension::NeonDotprod => "dotprod",
        }
    }

    /// The family it extends.
    pub fn family(self) -> Isa {
        match self {
            Extension::Avx512Vnni | Extension::Avx512Vbmi => Isa::Avx512,
            Extension::AvxVnni => Isa::Avx2,
            Extension::NeonDotprod => Isa::Neon,
        }
    }

    /// The CPU features it needs besides its family's.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Extension::Avx512Vnni => &["avx512vnni"],
            Extension::Avx512Vbmi => &["avx512vbmi"],
            Extension::AvxVnni => &["avxvnni"],
            Extension::NeonDotprod => &["dotprod"],
        }
    }

    /// Whether this CPU has the extension and its family. Detected once, cached.
    pub fn is_available(self) -> bool {
        static DETECTED: OnceLock<[bool; 4]> = OnceLock::new();
        let d = DETECTED.get_or_init(|| Extension::ALL.map(|e| e.family().is_available() && e.detect()));
        Extension::ALL.iter().position(|&e| e == self).is_some_and(|i| d[i])
    }

    fn detect(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Extension::Avx512Vnni => std::is_x86_feature_detected!("avx512vnni"),
            #[cfg(target_arch = "x86_64")]
            Extension::Avx512Vbmi => std::is_x86_feature_detected!("avx512vbmi"),
            #[cfg(target_arch = "x86_64")]
            Extension::AvxVnni => std::is_x86_feature_detected!("avxvnni"),
            #[cfg(target_arch = "aarch64")]
            Extension::NeonDotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl std::fmt::Display for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The extensions of `isa` this CPU has.
pub fn extensions(isa: Isa) -> Vec<Extension> {
    Extension::ALL.into_iter().filter(|e| e.family() == isa && e.is_available()).collect()
}

/// An ISA level as text: the family and its detected extensions, e.g. `avx512+vnni+vbmi`.
pub fn level_name(isa: Isa) -> String {
    std::iter::once(isa.name().to_string())
        .chain(extensions(isa).iter().map(|e| e.name().to_string()))
        .collect::<Vec<_>>()
        .join("+")
}

fn detect() -> Vec<Isa> {
    let mut v = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            v.push(Isa::Avx2);
        }
        // AVX-512 is a level above AVX2: its kernels call AVX2 ones for what they do not
        // widen (every AVX-512 CPU has AVX2 and FMA).
        if v.contains(&Isa::Avx2)
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            v.push(Isa::Avx512);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            v.push(Isa::Neon);
        }
    }
    v
}

fn detected() -> &'static [Isa] {
    static DETECTED: OnceLock<Vec<Isa>> = OnceLock::new();
    DETECTED.get_or_init(detect)
}

/// The ISAs this CPU can run, narrowest first (always starts with [`Isa::Scalar`]).
pub fn available() -> Vec<Isa> {
    detected().to_vec()
}

/// The widest available ISA.
pub fn best() -> Isa {
    *detected().last().unwrap_or(&Isa::Scalar)
}

const UNSET: u8 = u8::MAX;
static FORCED: AtomicU8 = AtomicU8::new(UNSET);

fn to_u8(isa: Isa) -> u8 {
    Isa::ALL.iter().position(|&i| i == isa).unwrap_or(0) as u8
}

/// Forces every dispatched call in this process to use `isa` (`None` undoes it). Fails, changing
/// nothing, when the CPU lacks the ISA.
pub fn force(isa: Option<Isa>) -> Result<()> {
    match isa {
        None => FORCED.store(UNSET, Ordering::Relaxed),
        Some(i) => {
            if !i.is_available() {
                return Err(unavailable(i));
            }
            FORCED.store(to_u8(i), Ordering::Relaxed)
        }
    }
    Ok(())
}

/// The error for an ISA the CPU lacks.
pub fn unavailable(isa: Isa) -> QuantError {
    QuantError::Unsupported {
        what: format!(
            "instruction set {} (needs {}) is not available on this CPU; available: {}",
            isa.name(),
            isa.features().join("+"),
            available().iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The value of `QUANTPROOF_ISA`, parsed and checked once. An unknown or unavailable value is
/// reported by [`env_override`] and otherwise ignored (dispatch then uses [`best`]).
fn env_forced() -> &'static Result<Option<Isa>> {
    static ENV: OnceLock<Result<Option<Isa>>> = OnceLock::new();
    ENV.get_or_init(|| match std::env::var("QUANTPROOF_ISA") {
        Err(_) => Ok(None),
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => match Isa::parse(&s) {
            None => Err(QuantError::InvalidArgument {
                what: "QUANTPROOF_ISA",
                detail: format!("{s:?} is not one of scalar, avx2, avx512, neon"),
            }),
            Some(i) if !i.is_available() => Err(unavailable(i)),
            Some(i) => Ok(Some(i)),
        },
    })
}

/// What `QUANTPROOF_ISA` asks for: `Ok(None)` when unset, an error when it names an unknown or
/// unavailable ISA (the CLI reports it; the library falls back to [`best`]).
pub fn env_override() -> Result<Option<Isa>> {
    env_forced().clone()
}

/// The ISA dispatched calls use: [`force`]d, else `QUANTPROOF_ISA`, else [`best`].
pub fn selected() -> Isa {
    let f = FORCED.load(Ordering::Relaxed);
    if let Some(&isa) = Isa::ALL.get(f as usize) {
        return isa;
    }
    match env_forced() {
        Ok(Some(i)) => *i,
        _ => best(),
    }
}

/// CPU features relevant to quantization kernels, with whether this CPU has them.
pub fn cpu_features() -> Vec<(&'static str, bool)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, bool)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! f {
            ($($name:tt),*) => { $( v.push(($name, std::is_x86_feature_detected!($name))); )* };
        }
        f!(
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512vnni",
            "avx512vbmi",
            "avx512bf16",
            "avx512fp16",
            "avxvnni"
        );
        // AMX needs CPUID, the OS's tile state and Linux's permission (the GEMM's own check).
        v.push(("amx-int8", crate::gemm::GemmKernel::AmxInt8.is_available()));
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! f {
            ($($name:tt),*) => { $( v.push(($name, std::arch::is_aarch64_feature_detected!($name))); )* };
        }
        f!("neon", "dotprod", "i8mm", "fp16", "sve", "sve2");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_there_and_names_round_trip() {
        assert!(Isa::Scalar.is_available());
        assert_eq!(available()[0], Isa::Scalar);
        for i in Isa::ALL {
            assert_eq!(Isa::parse(i.name()), Some(i));
        }
        assert_eq!(Isa::parse("mmx"), None);
    }

    #[test]
    fn an_extension_needs_its_family() {
        for e in Extension::ALL {
            if e.is_available() {
                assert!(e.family().is_available(), "{e}");
                assert!(extensions(e.family()).contains(&e));
            }
        }
        assert!(extensions(Isa::Scalar).is_empty());
        assert!(level_name(Isa::Scalar) == "scalar");
    }

    #[test]
    fn forcing_an_unavailable_isa_fails() {
        for i in Isa::ALL {
            if !i.is_available() {
                assert!(force(Some(i)).is_err());
            }
        }
        assert!(force(Some(Isa::Scalar)).is_ok());
        assert_eq!(selected(), Isa::Scalar);
        force(None).unwrap();
    }
}
