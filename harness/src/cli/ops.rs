//! `quantproof ops`: the op registry ([`crate::registry::OPS`]) as a table: each op's family,
//! the profiles its golden vectors run under, whether it has optimized kernels (then proven on
//! every ISA level by the equivalence runner) and its `quantproof bench` workloads.

use crate::registry::OPS;
use std::fmt::Write;

/// The table `quantproof ops` prints.
pub fn render() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<20} {:<11} {:<38} {:<10} bench", "op", "family", "golden vectors (profiles)", "kernels");
    for e in OPS {
        let vectors = e.vectors.map(|v| v.profiles.join(",")).unwrap_or_else(|| "-".to_string());
        let kernels = if e.optimized() { "every ISA" } else { "reference" };
        let bench: Vec<&str> = e.bench.iter().map(|b| b.name).collect();
        let bench = if bench.is_empty() { "-".to_string() } else { bench.join(", ") };
        let _ = writeln!(s, "{:<20} {:<11} {:<38} {:<10} {}", e.op, e.family, vectors, kernels, bench);
    }
    let optimized = OPS.iter().filter(|e| e.optimized()).count();
    let _ = writeln!(
        s,
        "\n{} ops, {} with optimized kernels; `quantproof info` lists the ISA levels.",
        OPS.len(),
        optimized
    );
    s
}

pub fn run() -> i32 {
    print!("{}", render());
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_op_is_listed() {
        let t = super::render();
        for e in crate::registry::OPS {
            assert!(t.lines().any(|l| l.split_whitespace().next() == Some(e.op)), "{} missing", e.op);
        }
    }
}
