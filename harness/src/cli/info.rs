//! `quantproof info`: what the CPU has and what the dispatcher picks.

use quantproof_optimized::isa::{self, Isa};
use std::fmt::Write;

/// The text `quantproof info` prints.
pub fn render() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "quantproof {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "target: {}-{}", std::env::consts::ARCH, std::env::consts::OS);
    let _ = writeln!(s, "\nCPU features:");
    for (name, has) in isa::cpu_features() {
        let _ = writeln!(s, "  {:<12} {}", name, if has { "yes" } else { "no" });
    }
    let _ = writeln!(s, "\ninstruction sets:");
    for i in Isa::ALL {
        let compiled = match i {
            Isa::Scalar => true,
            Isa::Avx2 | Isa::Avx512 => cfg!(target_arch = "x86_64"),
            Isa::Neon => cfg!(target_arch = "aarch64"),
            _ => false,
        };
        let state = if i.is_available() {
            "available"
        } else if compiled {
            "not available on this CPU"
        } else {
            "not compiled for this target"
        };
        let _ = writeln!(
            s,
            "  {:<8} {:<28} needs {}",
            i.name(),
            state,
            if i.features().is_empty() { "-".to_string() } else { i.features().join("+") }
        );
    }
    let _ = writeln!(s, "\nextensions (used by the kernels that need them, detected at run time):");
    for e in isa::Extension::ALL {
        let state = if e.is_available() { "available" } else { "no" };
        let _ =
            writeln!(s, "  {:<8} {:<10} on {:<7} needs {}", e.name(), state, e.family().name(), e.features().join("+"));
    }
    let _ = writeln!(s, "levels: {}", isa::available().into_iter().map(isa::level_name).collect::<Vec<_>>().join(", "));
    let env = match isa::env_override() {
        Ok(None) => "unset".to_string(),
        Ok(Some(i)) => i.name().to_string(),
        Err(e) => format!("ignored: {e}"),
    };
    let _ = writeln!(s, "\nQUANTPROOF_ISA: {env}");
    let _ = writeln!(s, "dispatcher picks: {}", isa::selected());
    s
}

pub fn run() -> i32 {
    print!("{}", render());
    0
}
