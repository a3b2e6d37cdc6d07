//! Where an op is computed: the reference (the specification) or the optimized engine on one
//! instruction-set level. The one type the equivalence runner, the golden-vector runner, the
//! benchmarks and the report all use, as ruy treats its paths: the reference is one path among
//! the others, and every available path is run and compared.

use quantproof_optimized::isa::{self, Isa};
use quantproof_optimized::ops::Engine;

/// One implementation of the ops.
#[derive(Debug, Clone, Copy)]
pub enum Path {
    /// `quantproof_reference`, scalar and single-threaded: the oracle.
    Reference,
    /// `quantproof_optimized` on one ISA level, with its thread count.
    Optimized(Engine),
}

impl Path {
    /// `reference`, or the ISA level's name (`scalar`, `avx2`, `avx512`, `neon`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Path::Reference => "reference",
            Path::Optimized(e) => e.isa().name(),
        }
    }

    /// Threads the path uses (the reference always 1).
    pub fn threads(&self) -> usize {
        match self {
            Path::Reference => 1,
            Path::Optimized(e) => e.threads(),
        }
    }

    /// The engine, for an optimized path.
    pub fn engine(&self) -> Option<&Engine> {
        match self {
            Path::Reference => None,
            Path::Optimized(e) => Some(e),
        }
    }

    /// Every ISA level available on this CPU, with `threads` threads, narrowest first.
    pub fn optimized(threads: usize) -> Vec<Path> {
        isa::available()
            .into_iter()
            .filter_map(|i| Engine::new(i).ok())
            .map(|e| Path::Optimized(e.with_threads(threads)))
            .collect()
    }

    /// The reference, then every available ISA level with `threads` threads.
    pub fn all(threads: usize) -> Vec<Path> {
        std::iter::once(Path::Reference).chain(Path::optimized(threads)).collect()
    }

    /// `reference` (or `ref`), or an available ISA level by name; an unknown or unavailable
    /// level is an error that says which exist.
    pub fn parse(name: &str, threads: usize) -> Result<Path, String> {
        if name.eq_ignore_ascii_case("reference") || name.eq_ignore_ascii_case("ref") {
            return Ok(Path::Reference);
        }
        let known = || {
            let mut names: Vec<&str> = vec!["reference"];
            names.extend(Isa::ALL.iter().map(|i| i.name()));
            names.join(", ")
        };
        let isa = Isa::parse(name).ok_or_else(|| format!("unknown ISA {name:?} ({})", known()))?;
        Engine::new(isa).map(|e| Path::Optimized(e.with_threads(threads))).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_reference_and_levels() {
        assert!(matches!(Path::parse("reference", 4), Ok(Path::Reference)));
        assert!(matches!(Path::parse("REF", 4), Ok(Path::Reference)));
        let err = Path::parse("mmx", 1).unwrap_err();
        assert!(err.contains("mmx") && err.contains("scalar"), "{err}");
        let scalar = Path::parse("scalar", 3).expect("scalar is always available");
        assert_eq!((scalar.name(), scalar.threads()), ("scalar", 3));
        assert_eq!(Path::all(2).len(), 1 + isa::available().len());
    }
}
