//! `quantproof profiles`: the deployment profiles
//! ([`quantproof_reference::ptq::deploy::DEPLOYMENTS`]) as a table, each with its source, and the
//! arithmetic profiles (`torch`, `onnxruntime`, `tflite`, `quantproof`) they run under.

use quantproof_reference::profile::Profile;
use quantproof_reference::ptq::deploy::{BiasRule, Calibrator, Symmetry, DEPLOYMENTS};
use quantproof_reference::ptq::WeightGranularity;
use std::fmt::Write;

fn gran(g: WeightGranularity) -> &'static str {
    match g {
        WeightGranularity::PerTensor => "per-tensor",
        WeightGranularity::PerChannel => "per-channel",
    }
}

fn sym(s: Symmetry) -> &'static str {
    match s {
        Symmetry::Symmetric => "sym",
        Symmetry::Asymmetric => "asym",
    }
}

fn calib(c: Calibrator) -> &'static str {
    match c {
        Calibrator::MinMax => "minmax",
        Calibrator::Entropy => "entropy (KL)",
        Calibrator::HistogramL2 => "histogram L2",
        Calibrator::Percentile => "percentile",
    }
}

/// The text `quantproof profiles` prints.
pub fn render() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:<28} {:<28} {:<14} {:<14} {:<20} {:<8} {:<6} {}",
        "deployment", "weights", "activations", "calibrator", "rounding", "bias", "pow2", "extern", "arithmetic"
    );
    for d in DEPLOYMENTS {
        let w = format!(
            "{} {} [{}, {}]",
            gran(d.weight_granularity),
            sym(d.weight_symmetry),
            d.weight_range.0,
            d.weight_range.1
        );
        let a =
            format!("per-tensor {} [{}, {}]", sym(d.activation_symmetry), d.activation_range.0, d.activation_range.1);
        let bias = match d.bias {
            BiasRule::Float => "float",
            BiasRule::Int32ScaleProduct => "int32, s_in * s_w",
        };
        let _ = writeln!(
            s,
            "{:<14} {:<28} {:<28} {:<14} {:<14} {:<20} {:<8} {:<6} {}",
            d.name,
            w,
            a,
            calib(d.calibrator),
            d.rounding.name(),
            bias,
            if d.power_of_two_scales { "yes" } else { "no" },
            if d.external_params { "yes" } else { "no" },
            d.profile.unwrap_or("-")
        );
    }
    let _ = writeln!(s, "\nsources:");
    for d in DEPLOYMENTS {
        let _ = writeln!(s, "  {:<14} {}: {}", d.name, d.stack, d.source);
    }
    let _ = writeln!(s, "\narithmetic profiles (bit-exact on golden vectors):");
    for p in Profile::FRAMEWORKS.iter() {
        let _ = writeln!(s, "  {:<14} {}", p.name, p.framework);
    }
    s
}

pub fn run() -> i32 {
    print!("{}", render());
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_deployment_is_listed_with_its_source() {
        let t = super::render();
        for d in quantproof_reference::ptq::deploy::DEPLOYMENTS {
            assert!(t.lines().any(|l| l.starts_with(d.name)), "{}", d.name);
            assert!(t.contains(d.source), "{}", d.name);
        }
    }
}
