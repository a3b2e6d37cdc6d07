//! Golden vectors recorded from PyTorch 2.11, ONNX Runtime 1.32 and TFLite 2.21 (`tests/vectors`, see
//! `VECTORS.md` there) and extra ONNX Runtime edge cases (`tests/vectors-extra`, recorded by
//! `generate_onnxruntime.py` there), replayed through the reference and every available ISA.
//!
//! Every case must pass; the implemented ops must not be skipped, must have run on the paths
//! they should (the reference, plus every available ISA when they have an optimized twin), and
//! must account for every case the recorders' `*-meta.json` files announce.

use quantproof_harness::vectors::{meta_counts, table, Runner, Summary};
use quantproof_tests::vectors_dir;
use std::path::PathBuf;

/// The ops this runner implements, by profile, and whether they have an optimized twin.
const IMPLEMENTED: &[(&str, &str, bool)] = &[
    ("torch", "quantize", true),
    ("torch", "dequantize", true),
    ("torch", "fake_quantize", true),
    ("onnxruntime", "quantize", true),
    ("onnxruntime", "dequantize", true),
    ("onnxruntime", "choose_qparams", false),
    ("onnxruntime", "dynamic_quantize", true),
    ("torch", "lsq", false),
    ("torch", "observe", false),
    ("onnxruntime", "calibrate", true),
    ("tflite", "quantize", true),
    ("tflite", "dequantize", true),
    ("tflite", "requantize", true),
    ("torch", "qadd", true),
    ("onnxruntime", "qadd", true),
    ("tflite", "qadd", true),
    ("tflite", "sub", true),
    ("torch", "qmul", true),
    ("onnxruntime", "qmul", true),
    ("tflite", "qmul", true),
    ("torch", "relu", true),
    ("torch", "clamp", true),
    ("torch", "hardtanh", true),
    ("torch", "sigmoid", true),
    ("torch", "tanh", true),
    ("torch", "hardsigmoid", true),
    ("torch", "hardswish", true),
    ("torch", "leaky_relu", true),
    ("tflite", "relu", true),
    ("tflite", "relu6", true),
    ("tflite", "sigmoid", true),
    ("tflite", "tanh", true),
    ("tflite", "hardswish", true),
    ("tflite", "leaky_relu", true),
    ("torch", "max_pool2d", true),
    ("torch", "avg_pool2d", true),
    ("tflite", "max_pool2d", true),
    ("tflite", "avg_pool2d", true),
    ("tflite", "mean", true),
    ("torch", "concat", true),
    ("tflite", "concat", true),
    ("tflite", "pad", true),
    ("tflite", "resize_nearest", true),
    ("tflite", "resize_bilinear", true),
    ("tflite", "softmax", true),
    ("onnxruntime", "matmul_integer", true),
    ("onnxruntime", "qlinear_matmul", true),
    ("torch", "qlinear", true),
    ("tflite", "qlinear", true),
    ("torch", "dynamic_linear", true),
    ("torch", "qconv2d", true),
    ("tflite", "qconv2d", true),
    ("tflite", "depthwise_conv2d", true),
];

fn extra_dir() -> PathBuf {
    vectors_dir().with_file_name("vectors-extra")
}

/// Runs `dir`, prints the report, and checks it against the meta counts.
fn check(dir: PathBuf) -> Summary {
    let runner = Runner::new(None).expect("every available ISA has an engine");
    let summary = runner.run_paths(&[&dir]);
    println!("{}", table::render(&summary, false));
    assert_eq!(summary.failed, 0, "golden vectors failed under {}", dir.display());

    let counts = meta_counts(&dir).expect("the recorders' meta files");
    assert!(!counts.is_empty(), "no counts in {}/*-meta.json", dir.display());
    for (key, &n) in &counts {
        let (profile, op) = key.split_once('/').expect("counts are keyed profile/op");
        let row = summary.row(profile, op).unwrap_or_else(|| panic!("no case of {key} ran"));
        assert_eq!(row.total(), n, "{key}: the meta file announces {n} cases");
    }
    let cases_per_row: usize = summary.rows.iter().map(|r| r.total()).sum();
    assert_eq!(cases_per_row, counts.values().sum::<usize>(), "cases without a meta count");

    let all_paths = runner.path_names();
    for &(profile, op, optimized) in IMPLEMENTED {
        let Some(row) = summary.row(profile, op) else { continue };
        assert_eq!(row.skipped, 0, "{profile}/{op} skipped: {:?}", row.skip_reasons);
        assert_eq!(row.passed, counts[&format!("{profile}/{op}")], "{profile}/{op}");
        let expected: Vec<String> = if optimized { all_paths.clone() } else { vec!["reference".to_string()] };
        assert_eq!(row.paths, expected, "{profile}/{op} ran on the wrong paths");
    }
    summary
}

#[test]
fn framework_vectors_pass_on_every_path() {
    let summary = check(vectors_dir());
    for &(profile, op, _) in IMPLEMENTED {
        assert!(summary.row(profile, op).is_some_and(|r| r.passed > 0), "{profile}/{op} has no golden vectors");
    }
}

#[test]
fn extra_vectors_pass_on_every_path() {
    let summary = check(extra_dir());
    for op in ["quantize", "dequantize", "choose_qparams", "dynamic_quantize"] {
        assert!(summary.row("onnxruntime", op).is_some_and(|r| r.passed > 0), "no extra {op} cases");
    }
}
