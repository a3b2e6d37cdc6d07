//! Bad input gets a typed error, the same on every path.
//!
//! For each class of bad input the table below names the exact [`QuantError`] the reference must
//! return, and every ISA's `Engine` (one and three threads) must return the identical error
//! (compared field for field, through the same descriptors the equivalence runner uses). Then a
//! proptest throws arbitrary, mostly invalid, shapes, parameters and data at both and asserts that
//! neither panics and that they agree: the same error, or the same outputs.
//!
//! Two classes have no engine path because the types make them unrepresentable: an empty code
//! range (`qmin > qmax`) cannot be built as a `CodeRange`, and a bit width outside 2..=16 cannot
//! be built as a `QType`; their constructors' errors are asserted instead.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use quantproof_harness::equiv::gen::all_rules;
use quantproof_harness::equiv::outcome::{compare, same_error};
use quantproof_harness::equiv::{announce, descriptor, descriptors, Budget, Case, Data};
use quantproof_harness::path::Path;
use quantproof_optimized::{isa, Engine};
use quantproof_reference::error::QuantError;
use quantproof_reference::pack::{packed_len, Int4};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{QuantizeRule, ScaleOp};
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::Signedness;
use quantproof_reference::scheme::{Axis, CodeRange, Granularity, QType};
use std::panic::{catch_unwind, AssertUnwindSafe};

const QUANTIZE_OPS: &[&str] = &[
    "quantize_i8",
    "quantize_u8",
    "fake_quantize",
    "fake_quantize_mask",
    "quantize_packed4_i4",
    "quantize_packed4_u4",
];
const DEQUANTIZE_OPS: &[&str] = &["dequantize_i8", "dequantize_u8", "dequantize_packed4_i4", "dequantize_packed4_u4"];
const DYNAMIC_OPS: &[&str] = &["dynamic_quantize_torch", "dynamic_quantize_onnxruntime"];

fn param_ops() -> Vec<&'static str> {
    QUANTIZE_OPS.iter().chain(DEQUANTIZE_OPS).copied().collect()
}

/// Every available ISA at one and three threads.
fn engines() -> Vec<Engine> {
    announce();
    isa::available()
        .into_iter()
        .flat_map(|i| [1, 3].map(|t| Engine::new(i).map(|e| e.with_threads(t).with_parallel_threshold(1))))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A range every storage type holds (i8, u8, i4, u4).
fn r07() -> CodeRange {
    CodeRange::new(0, 7).unwrap()
}

const X6: [f32; 6] = [0.5, -1.0, 2.0, 3.0, 4.0, 5.0];

fn per_tensor(scale: f32, zero_point: i32) -> QuantParams {
    QuantParams::per_tensor(scale, zero_point, r07())
}

/// The case `op` reads, for data `x` of a tensor of `shape`: codes and nibbles derived from `x`,
/// output and mask lengths right for the op.
fn case_for(op: &str, shape: &[usize], params: QuantParams, x: &[f32]) -> Case {
    let n = x.len();
    let mut c = Case::quantized(shape, &params).with_x(x.to_vec());
    c.set_flat(
        "codes",
        Data::I32(x.iter().map(|&v| if v.is_finite() { (v as i32).clamp(0, 7) } else { 0 }).collect()),
        0,
    );
    c.set_flat("packed", Data::U8(vec![0x21; packed_len(n)]), 0);
    c.set_packed_type(if op.ends_with("u4") { Int4::Unsigned } else { Int4::Signed });
    c.out_len = if op.starts_with("quantize_packed4") { packed_len(n) } else { n };
    c.mask_len = n;
    c
}

fn base(op: &str) -> Case {
    case_for(op, &[2, 3], per_tensor(0.1, 0), &X6)
}

fn divide() -> QuantizeRule {
    QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven)
}

fn reciprocal() -> QuantizeRule {
    QuantizeRule::new(ScaleOp::MultiplyByReciprocal, RoundingMode::HalfToEven)
}

/// Runs `op` on the reference and every engine: the reference must fail with exactly `want`
/// (`None`: must succeed), and every engine must agree with it.
fn expect(class: &str, op: &str, case: &Case, want: Option<QuantError>, engines: &[Engine]) {
    let d = descriptor(op).unwrap_or_else(|| panic!("no descriptor {op}"));
    let got = d.run(&Path::Reference, case);
    match (&got, &want) {
        (Err(e), Some(w)) => assert!(same_error(e, w), "{class}, {op}: reference gave {e:?}, expected {w:?}"),
        (Ok(_), None) => {}
        _ => panic!("{class}, {op}: reference gave {:?}, expected {want:?}", got.as_ref().map(|_| "Ok")),
    }
    for e in engines {
        let o = d.run(&Path::Optimized(*e), case);
        if let Err(diff) = compare(&got, &o) {
            panic!("{class}, {op} on {} ({} threads): {diff}\n  case: {}", e.isa(), e.threads(), case.describe());
        }
    }
}

#[test]
fn nan_input_is_an_error_with_its_index() {
    let engines = engines();
    let mut x = X6;
    x[4] = f32::NAN;
    x[5] = f32::NAN;
    for op in QUANTIZE_OPS {
        for rule in all_rules() {
            // Every rule, including stochastic rounding (which runs the scalar loop).
            let c = case_for(op, &[2, 3], per_tensor(0.1, 0), &x).with_rule(rule);
            expect("NaN input", op, &c, Some(QuantError::NanInput { what: "x", index: 4 }), &engines);
        }
    }
    expect(
        "NaN input",
        "min_max",
        &base("min_max").with_x(x.to_vec()),
        Some(QuantError::NanInput { what: "x", index: 4 }),
        &engines,
    );
    for op in DYNAMIC_OPS {
        let c = case_for(op, &[6], per_tensor(1.0, 0), &x);
        expect("NaN input", op, &c, Some(QuantError::NonFinite { what: "x", index: 4, value: f64::NAN }), &engines);
    }
}

#[test]
fn infinities_are_errors_only_where_a_range_is_read() {
    let engines = engines();
    for inf in [f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = X6;
        x[2] = inf;
        x[4] = f32::NAN;
        for op in DYNAMIC_OPS {
            let c = case_for(op, &[6], per_tensor(1.0, 0), &x);
            expect(
                "infinite input",
                op,
                &c,
                Some(QuantError::NonFinite { what: "x", index: 2, value: inf as f64 }),
                &engines,
            );
        }
        // Quantizers saturate infinities; min/max returns them.
        x[4] = 1.0;
        for op in QUANTIZE_OPS.iter().chain(&["min_max"]) {
            expect("infinite input", op, &case_for(op, &[2, 3], per_tensor(0.1, 0), &x), None, &engines);
        }
    }
}

#[test]
fn invalid_scales() {
    let engines = engines();
    for s in [0.0f32, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for op in param_ops() {
            let c = case_for(op, &[2, 3], per_tensor(s, 0), &X6);
            expect("invalid scale", op, &c, Some(QuantError::InvalidScale { index: 0, scale: s as f64 }), &engines);
        }
    }
    // The index of the bad parameter, per axis and per block.
    for op in param_ops() {
        let p = QuantParams::per_axis(1, vec![0.1, 0.2, -2.0], vec![0; 3], r07());
        expect(
            "invalid scale",
            op,
            &case_for(op, &[2, 3], p, &X6),
            Some(QuantError::InvalidScale { index: 2, scale: -2.0 }),
            &engines,
        );
        let p = QuantParams::per_block(1, 3, vec![0.1, f32::NAN], vec![0; 2], r07());
        let want = QuantError::InvalidScale { index: 1, scale: f64::NAN };
        expect("invalid scale", op, &case_for(op, &[2, 3], p, &X6), Some(want), &engines);
    }
}

#[test]
fn subnormal_scales_fail_only_with_the_reciprocal_rule() {
    let engines = engines();
    let s = 1e-40f32;
    assert!(s.is_subnormal() && (1.0 / s).is_infinite());
    for op in QUANTIZE_OPS {
        let c = case_for(op, &[2, 3], per_tensor(s, 0), &X6);
        let want = QuantError::ReciprocalOverflow { index: 0, scale: s as f64 };
        expect("subnormal scale", op, &c.clone().with_rule(reciprocal()), Some(want), &engines);
        // Dividing is well defined: the values saturate.
        expect("subnormal scale", op, &c.with_rule(divide()), None, &engines);
    }
    for op in DEQUANTIZE_OPS {
        expect("subnormal scale", op, &case_for(op, &[2, 3], per_tensor(s, 0), &X6), None, &engines);
    }
}

#[test]
fn zero_points_out_of_range() {
    let engines = engines();
    for z in [-1, 8, i32::MIN, i32::MAX] {
        for op in param_ops() {
            let c = case_for(op, &[2, 3], per_tensor(0.1, z), &X6);
            let want = QuantError::ZeroPointOutOfRange { index: 0, zero_point: z as i64, qmin: 0, qmax: 7 };
            expect("zero point out of range", op, &c, Some(want), &engines);
        }
    }
    for op in param_ops() {
        let p = QuantParams::per_axis(0, vec![0.1, 0.1], vec![3, 9], r07());
        let want = QuantError::ZeroPointOutOfRange { index: 1, zero_point: 9, qmin: 0, qmax: 7 };
        expect("zero point out of range", op, &case_for(op, &[2, 3], p, &X6), Some(want), &engines);
    }
}

#[test]
fn empty_code_ranges_and_bad_bit_widths_cannot_be_built() {
    // No engine path: `QuantParams` holds a `CodeRange`, which is never empty, and code types are
    // `QType`s, whose width is always in 2..=16. The constructors refuse.
    assert_eq!(CodeRange::new(5, 3).unwrap_err(), QuantError::EmptyCodeRange { qmin: 5, qmax: 3 });
    assert_eq!(CodeRange::new(0, -1).unwrap_err(), QuantError::EmptyCodeRange { qmin: 0, qmax: -1 });
    assert!(CodeRange::new(3, 3).is_ok());
    for bits in [0, 1, 17, 32, u32::MAX] {
        for signed in [true, false] {
            assert_eq!(
                QType::new(bits, Signedness::signed_if(signed)).unwrap_err(),
                QuantError::BitWidthOutOfRange { bits }
            );
        }
    }
    assert_eq!(QType::parse("i17").unwrap_err(), QuantError::BitWidthOutOfRange { bits: 17 });
    assert_eq!(QType::parse("uint1").unwrap_err(), QuantError::BitWidthOutOfRange { bits: 1 });
}

#[test]
fn axes_counts_and_blocks() {
    let engines = engines();
    let s3 = || vec![0.1f32; 3];
    let cases: Vec<(&str, QuantParams, QuantError)> = vec![
        (
            "axis out of range",
            QuantParams::per_axis(2, s3(), vec![0; 3], r07()),
            QuantError::AxisOutOfRange { axis: 2, rank: 2 },
        ),
        (
            "axis out of range",
            QuantParams::per_block(7, 1, s3(), vec![0; 3], r07()),
            QuantError::AxisOutOfRange { axis: 7, rank: 2 },
        ),
        (
            "per-axis count mismatch",
            QuantParams::per_axis(1, vec![0.1; 2], vec![0; 3], r07()),
            QuantError::ParamCountMismatch { what: "scales", expected: 3, got: 2 },
        ),
        (
            "per-axis count mismatch",
            QuantParams::per_axis(0, vec![0.1; 2], vec![0; 3], r07()),
            QuantError::ParamCountMismatch { what: "zero points", expected: 2, got: 3 },
        ),
        (
            "per-block count mismatch",
            QuantParams::per_block(1, 3, vec![0.1; 3], vec![0; 3], r07()),
            QuantError::ParamCountMismatch { what: "scales", expected: 2, got: 3 },
        ),
        (
            "per-tensor count mismatch",
            QuantParams { granularity: Granularity::PerTensor, scales: vec![], zero_points: vec![], range: r07() },
            QuantError::ParamCountMismatch { what: "scales", expected: 1, got: 0 },
        ),
        (
            "block size not dividing",
            QuantParams::per_block(1, 2, s3(), vec![0; 3], r07()),
            QuantError::InvalidBlockSize { block_size: 2, axis_len: 3 },
        ),
        (
            "block size zero",
            QuantParams::per_block(0, 0, s3(), vec![0; 3], r07()),
            QuantError::InvalidBlockSize { block_size: 0, axis_len: 2 },
        ),
    ];
    for (class, p, want) in cases {
        for op in param_ops() {
            expect(class, op, &case_for(op, &[2, 3], p.clone(), &X6), Some(want.clone()), &engines);
        }
    }
}

#[test]
fn shapes_that_do_not_match_the_data() {
    let engines = engines();
    for shape in [vec![2usize, 2], vec![7], vec![], vec![usize::MAX, 2], vec![0, 6]] {
        for op in param_ops() {
            let c = case_for(op, &shape, per_tensor(0.1, 0), &X6);
            expect(
                "shape mismatch",
                op,
                &c,
                Some(QuantError::ShapeMismatch { shape: shape.clone(), len: 6 }),
                &engines,
            );
        }
    }
}

#[test]
fn empty_input_to_dynamic_quantization() {
    let engines = engines();
    for op in DYNAMIC_OPS {
        expect(
            "empty input",
            op,
            &case_for(op, &[0], per_tensor(1.0, 0), &[]),
            Some(QuantError::EmptyInput { what: "x" }),
            &engines,
        );
    }
    // Elsewhere an empty tensor is fine.
    for op in param_ops().into_iter().chain(["min_max"]) {
        expect("empty input", op, &case_for(op, &[0], per_tensor(0.1, 0), &[]), None, &engines);
    }
}

#[test]
fn output_and_mask_lengths() {
    let engines = engines();
    for delta in [-1i64, 1, 5] {
        for op in param_ops().into_iter().chain(DYNAMIC_OPS.iter().copied()) {
            let mut c = base(op);
            let expected = c.out_len;
            c.out_len = (c.out_len as i64 + delta) as usize;
            let want = if op.starts_with("dequantize_packed4") {
                // There the output length sets the element count: the packed input is then wrong
                // (unless it still needs the same number of bytes, when the shape is).
                if packed_len(c.out_len) != c.packed().len() {
                    QuantError::LengthMismatch {
                        what: "packed input",
                        expected: packed_len(c.out_len),
                        got: c.packed().len(),
                    }
                } else {
                    QuantError::ShapeMismatch { shape: vec![2, 3], len: c.out_len }
                }
            } else {
                let what = if op.starts_with("quantize_packed4") { "packed output" } else { "output" };
                QuantError::LengthMismatch { what, expected, got: c.out_len }
            };
            expect("output length", op, &c, Some(want), &engines);
        }
        let mut c = base("fake_quantize_mask");
        c.mask_len = (6 + delta) as usize;
        expect(
            "mask length",
            "fake_quantize_mask",
            &c,
            Some(QuantError::LengthMismatch { what: "mask", expected: 6, got: c.mask_len }),
            &engines,
        );
    }
    // Packed input one byte too long.
    for op in ["dequantize_packed4_i4", "dequantize_packed4_u4"] {
        let mut c = base(op);
        let mut longer = c.packed().to_vec();
        longer.push(0x77);
        c.set_flat("packed", Data::U8(longer), 0);
        expect(
            "packed input length",
            op,
            &c,
            Some(QuantError::LengthMismatch { what: "packed input", expected: 3, got: 4 }),
            &engines,
        );
    }
}

#[test]
fn code_ranges_that_do_not_fit_the_storage_type() {
    let engines = engines();
    let cases: [(&str, i32, i32, &str); 6] = [
        ("quantize_u8", -1, 7, "u8"),
        ("quantize_u8", 0, 256, "u8"),
        ("quantize_i8", 0, 128, "i8"),
        ("quantize_i8", -129, 0, "i8"),
        ("quantize_packed4_i4", 0, 8, "i4"),
        ("quantize_packed4_u4", -1, 7, "u4"),
    ];
    for (op, qmin, qmax, storage) in cases {
        let p = QuantParams::per_tensor(0.1, 0, CodeRange::new(qmin, qmax).unwrap());
        let want = QuantError::CodeRangeExceedsStorage { qmin: qmin as i64, qmax: qmax as i64, storage };
        expect("storage", op, &case_for(op, &[2, 3], p, &X6), Some(want), &engines);
    }
    // The storage check comes first, before any other check.
    let p = QuantParams::per_tensor(f32::NAN, 900, CodeRange::new(0, 1000).unwrap());
    let want = QuantError::CodeRangeExceedsStorage { qmin: 0, qmax: 1000, storage: "u8" };
    expect("storage", "quantize_u8", &case_for("quantize_u8", &[9], p, &X6), Some(want), &engines);
    // Dequantize reads codes of its type whatever the range: no storage check, on both sides.
    for op in DEQUANTIZE_OPS {
        let p = QuantParams::per_tensor(0.1, 0, CodeRange::new(-1, 300).unwrap());
        expect("storage", op, &case_for(op, &[2, 3], p, &X6), None, &engines);
    }
}

// ---- Arbitrary input: no panic, and the same answer everywhere. ----

#[derive(Debug, Clone)]
struct Wild {
    op: usize,
    shape: Vec<usize>,
    granularity: Granularity,
    count_delta: i64,
    scales: Vec<f32>,
    zero_points: Vec<i32>,
    range: (i32, i32),
    x: Vec<f32>,
    len_delta: i64,
    out_delta: i64,
    mask_delta: i64,
    packed_delta: i64,
    rule: usize,
    offset: usize,
}

fn dims() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        10 => proptest::collection::vec(0usize..=5, 0..=4),
        1 => Just(vec![usize::MAX, 2]),
        1 => Just(vec![1usize << 40, 1 << 40]),
    ]
}

fn granularities() -> impl Strategy<Value = Granularity> {
    prop_oneof![
        Just(Granularity::PerTensor),
        (-5i64..=4).prop_map(|axis| Granularity::PerAxis { axis: Axis::new(axis) }),
        (-5i64..=4, 0usize..=4)
            .prop_map(|(axis, block_size)| Granularity::PerBlock { axis: Axis::new(axis), block_size }),
    ]
}

fn wild() -> impl Strategy<Value = Wild> {
    let scales = prop_oneof![
        4 => proptest::sample::select(vec![0.1f32, 1.0, 7.77, 1e-20, 3e38, 0.5]),
        1 => proptest::sample::select(vec![0.0f32, -1.0, f32::NAN, f32::INFINITY, 1e-40]),
    ];
    let zero_points = prop_oneof![3 => 0i32..=5, 1 => -10i32..=300];
    let xs = proptest::sample::select(vec![
        0.0f32,
        -0.0,
        1.5,
        -2.5,
        0.35,
        1e30,
        -1e30,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        100.0,
    ]);
    let ranges = proptest::sample::select(vec![
        (-128, 127),
        (0, 255),
        (-8, 7),
        (0, 15),
        (0, 7),
        (-1, 300),
        (5, 5),
        (-300, -200),
        (0, 0),
    ]);
    let small_delta = || prop_oneof![12 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64), 1 => -3i64..=3];
    (
        (0usize..13, dims(), granularities(), small_delta()),
        (proptest::collection::vec(scales, 0..=8), proptest::collection::vec(zero_points, 0..=8), ranges),
        (proptest::collection::vec(xs, 0..=40), small_delta(), small_delta(), small_delta(), small_delta()),
        (0usize..12, 0usize..4),
    )
        .prop_map(
            |(
                (op, shape, granularity, count_delta),
                (scales, zero_points, range),
                (x, len_delta, out_delta, mask_delta, packed_delta),
                (rule, offset),
            )| Wild {
                op,
                shape,
                granularity,
                count_delta,
                scales,
                zero_points,
                range,
                x,
                len_delta,
                out_delta,
                mask_delta,
                packed_delta,
                rule,
                offset,
            },
        )
}

/// Builds a case from arbitrary ingredients: the data length is the shape's element count (when
/// small) moved by `len_delta`, the parameter lists are cycled to the count the granularity needs
/// moved by `count_delta`, and the buffer lengths are moved by their deltas.
fn wild_case(op: &str, w: &Wild) -> Case {
    let numel = w.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= 64);
    let n = (numel.unwrap_or(w.x.len()) as i64 + w.len_delta).clamp(0, 70) as usize;
    let x: Vec<f32> = (0..n).map(|i| if w.x.is_empty() { 0.25 } else { w.x[i % w.x.len()] }).collect();
    let rank = w.shape.len();
    let dim = |a: usize| w.shape.get(a).copied().unwrap_or(1).min(64);
    let want_count = match w.granularity {
        Granularity::PerTensor => 1,
        Granularity::PerAxis { axis } => dim(axis.resolve(rank).unwrap_or(rank)),
        Granularity::PerBlock { axis, block_size } => {
            let axis = axis.resolve(rank).unwrap_or(rank);
            let outer: usize = w.shape[..axis.min(rank)].iter().map(|&d| d.min(64)).product();
            let inner: usize = w.shape.get(axis + 1..).map_or(1, |s| s.iter().map(|&d| d.min(64)).product());
            outer * (dim(axis) / block_size.max(1)) * inner
        }
    };
    let count = (want_count as i64 + w.count_delta).clamp(0, 300) as usize;
    let cycle =
        |v: &[f32], d: f32| (0..count).map(|i| if v.is_empty() { d } else { v[i % v.len()] }).collect::<Vec<_>>();
    let scales = cycle(&w.scales, 0.1);
    let zero_points: Vec<i32> =
        (0..count).map(|i| if w.zero_points.is_empty() { 0 } else { w.zero_points[i % w.zero_points.len()] }).collect();
    let params = QuantParams {
        granularity: w.granularity,
        scales,
        zero_points,
        range: CodeRange::new(w.range.0, w.range.1).unwrap(),
    };
    let mut c = case_for(op, &w.shape, params, &[]);
    c.offset = w.offset;
    let mut buf = vec![f32::NAN; w.offset];
    buf.extend(&x);
    c.set_flat("x", Data::F32(buf), w.offset);
    let mut codes = vec![0; w.offset];
    codes.extend(x.iter().map(|&v| if v.is_finite() { v.clamp(-300.0, 300.0) as i32 } else { 1 }));
    c.set_flat("codes", Data::I32(codes), w.offset);
    let mut packed = vec![0u8; w.offset];
    packed.extend((0..(packed_len(n) as i64 + w.packed_delta).max(0)).map(|i| (i * 37 + 5) as u8));
    c.set_flat("packed", Data::U8(packed), w.offset);
    let out = if op.starts_with("quantize_packed4") { packed_len(n) } else { n };
    c.out_len = (out as i64 + w.out_delta).max(0) as usize;
    c.mask_len = (n as i64 + w.mask_delta).max(0) as usize;
    c.set_rule(all_rules()[w.rule]);
    if let quantproof_reference::rounding::RoundingMode::Stochastic { .. } = c.rule().rounding {
        c.set_rule(QuantizeRule::new(c.rule().scale_op, RoundingMode::Stochastic { seed: w.op as u64 }));
    }
    c
}

proptest! {
    #![proptest_config(Config {
        cases: Budget::from_env().count(3000) as u32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/errors.txt"))),
        ..Config::default()
    })]

    /// Arbitrary (mostly invalid) shapes, parameters and data: no panic anywhere, and every
    /// engine gives the reference's answer, error for error.
    #[test]
    fn arbitrary_input_never_panics_and_agrees(w in wild()) {
        let ops = descriptors();
        let d = &ops[w.op % ops.len()];
        let case = wild_case(d.name(), &w);
        let reference = catch_unwind(AssertUnwindSafe(|| d.run(&Path::Reference, &case)));
        prop_assert!(reference.is_ok(), "the reference panicked on {}", case.describe());
        let reference = reference.unwrap();
        for e in isa::available().into_iter().flat_map(|i| [1, 2].map(|t| Engine::new(i).unwrap().with_threads(t).with_parallel_threshold(1))) {
            let got = catch_unwind(AssertUnwindSafe(|| d.run(&Path::Optimized(e), &case)));
            prop_assert!(got.is_ok(), "{} on {} panicked on {}", d.name(), e.isa(), case.describe());
            let got = got.unwrap();
            if let Err(diff) = compare(&reference, &got) {
                prop_assert!(
                    false,
                    "{} on {} ({} threads): {diff}\n  case: {}", d.name(), e.isa(), e.threads(), case.describe()
                );
            }
        }
    }
}
