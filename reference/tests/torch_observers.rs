//! PyTorch's observers against golden vectors recorded from PyTorch 2.11
//! (`tests/vectors/torch/observe.jsonl`, and `tests/data/torch_observe_extra.jsonl`: more cases
//! recorded the same way, aimed at the histogram observer's corners), plus the properties the
//! observers promise: exact merges, bounded work, the non-finite policy, degenerate inputs.

use proptest::prelude::*;
use quantproof_reference::calibrate::torch::{
    run_observe, HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
    ObserveSpec, PerChannelMinMaxObserver, QScheme, TorchObserverKind,
};
use quantproof_reference::calibrate::{ChannelObserver, NonFinitePolicy, Observer};
use quantproof_reference::qparams::TorchObserverConfig;
use quantproof_reference::{QType, QuantError};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Golden vectors

struct Case {
    name: String,
    spec: ObserveSpec,
    batches: Vec<(Vec<f32>, Vec<usize>)>,
    outputs: Value,
    tolerance: (f64, f64, Option<f64>),
}

fn parse_case(line: &str) -> Case {
    let v: Value = serde_json::from_str(line).expect("json");
    assert_eq!(v["op"], "observe");
    assert_eq!(v["profile"], "torch");
    let a = &v["attrs"];
    let mut spec = ObserveSpec::new(
        TorchObserverKind::parse(a["observer"].as_str().unwrap()).unwrap(),
        QType::parse(a["dtype"].as_str().unwrap()).unwrap(),
        QScheme::parse(a["qscheme"].as_str().unwrap()).unwrap(),
        a["reduce_range"].as_bool().unwrap(),
    );
    if let Some(c) = a.get("averaging_constant").and_then(Value::as_f64) {
        spec.averaging_constant = c;
    }
    if let Some(c) = a.get("ch_axis").and_then(Value::as_i64) {
        spec.ch_axis = c as isize;
    }
    if let Some(b) = a.get("bins").and_then(Value::as_u64) {
        spec.bins = b as usize;
    }
    if let (Some(lo), Some(hi)) = (a.get("quant_min").and_then(Value::as_i64), a.get("quant_max").and_then(Value::as_i64)) {
        spec.quant_range = Some(quantproof_reference::CodeRange::new(lo as i32, hi as i32).unwrap());
    }
    if a.get("skip_non_finite").and_then(Value::as_bool) == Some(true) {
        spec.non_finite = NonFinitePolicy::Skip;
    }
    let mut batches = vec![];
    for i in 0.. {
        let Some(b) = v["inputs"].get(format!("batch{i}")) else { break };
        let data = b["data"].as_array().unwrap().iter().map(|x| parse_f32(x)).collect();
        let shape = b["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        batches.push((data, shape));
    }
    let t = &v["tolerance"];
    let tolerance = (
        t.get("abs").and_then(Value::as_f64).unwrap_or(0.0),
        t.get("rel").and_then(Value::as_f64).unwrap_or(0.0),
        t.get("mismatch_fraction").and_then(Value::as_f64),
    );
    Case { name: v["name"].as_str().unwrap().to_string(), spec, batches, outputs: v["outputs"].clone(), tolerance }
}

/// Decimal renderings of f32 values, plus the strings "inf" / "-inf" / "nan" in the extra cases
/// (the shared format has no non-finite values).
fn parse_f32(x: &Value) -> f32 {
    match x {
        Value::String(s) => s.parse::<f32>().unwrap(),
        _ => x.as_f64().unwrap() as f32,
    }
}

/// Checks one case; returns a description of every mismatch.
fn check_case(case: &Case) -> Vec<String> {
    let batches: Vec<(&[f32], &[usize])> = case.batches.iter().map(|(d, s)| (d.as_slice(), s.as_slice())).collect();
    let got = match run_observe(&case.spec, &batches) {
        Ok(g) => g,
        Err(e) => return vec![format!("{}: error {e}", case.name)],
    };
    let mut problems = vec![];
    let fields: [(&str, Vec<f64>); 4] = [
        ("scale", got.scale.iter().map(|&v| v as f64).collect()),
        ("zero_point", got.zero_point.iter().map(|&v| v as f64).collect()),
        ("min_val", got.min_val.iter().map(|&v| v as f64).collect()),
        ("max_val", got.max_val.iter().map(|&v| v as f64).collect()),
    ];
    let (abs, rel, frac) = case.tolerance;
    for (name, got) in fields {
        let Some(exp) = case.outputs.get(name) else { continue };
        let exp: Vec<f64> = exp["data"].as_array().unwrap().iter().map(|x| parse_f32(x) as f64).collect();
        if exp.len() != got.len() {
            problems.push(format!("{}: {name} has {} values, expected {}", case.name, got.len(), exp.len()));
            continue;
        }
        let mut differ = 0usize;
        for (i, (g, e)) in got.iter().zip(&exp).enumerate() {
            if g != e {
                differ += 1;
            }
            if !((g - e).abs() <= abs + rel * e.abs()) {
                problems.push(format!("{}: {name}[{i}] = {g}, expected {e}", case.name));
            }
        }
        if let Some(f) = frac {
            if differ as f64 > f * exp.len() as f64 {
                problems.push(format!("{}: {name}: {differ} of {} differ", case.name, exp.len()));
            }
        }
    }
    problems
}

fn load(path: &str) -> Vec<Case> {
    let full = format!("{}/{}", env!("CARGO_MANIFEST_DIR"), path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(parse_case).collect()
}

#[test]
fn golden_observe_vectors_pass() {
    let cases = load("../tests/vectors/torch/observe.jsonl");
    assert_eq!(cases.len(), 24);
    let problems: Vec<String> = cases.iter().flat_map(check_case).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The golden files allow `rel 1e-3` for the histogram observer; ours is bit-exact on them.
#[test]
fn golden_histogram_vectors_are_bit_exact() {
    for mut case in load("../tests/vectors/torch/observe.jsonl") {
        case.tolerance = (0.0, 0.0, None);
        let problems = check_case(&case);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
