//! Properties of the passive ops (quickcheck): they move codes, never change them, where the
//! scale and zero point are inherited.

use quantproof_reference::affine::{Activation, Affine};
use quantproof_reference::passive::{concat, pad, resize, ResizeMethod, ResizeMode};
use quantproof_reference::profile::ArithRule;
use quickcheck::{quickcheck, TestResult};

const A: Affine = Affine::new(0.05, -3);

quickcheck! {
    /// Concatenating inputs that share the output's qparams is a byte copy, under every rule.
    fn concat_of_equal_qparams_is_a_copy(a: Vec<i8>, b: Vec<i8>) -> bool {
        [ArithRule::Torch, ArithRule::Tflite, ArithRule::OnnxRuntime].into_iter().all(|rule| {
            let (y, s) = concat(rule, &[(&a, &[a.len()], A), (&b, &[b.len()], A)], 0, A, Activation::None).unwrap();
            y == [a.clone(), b.clone()].concat() && s == vec![a.len() + b.len()]
        })
    }

    /// Padding then cropping the padding gives the input back, and every pad is the zero point.
    fn pad_then_crop_is_identity(x: Vec<i8>, before: u8, after: u8) -> TestResult {
        let (b, a) = (before as usize % 5, after as usize % 5);
        let rows = 2usize;
        let cols = x.len() / rows;
        if cols == 0 {
            return TestResult::discard();
        }
        let x = &x[..rows * cols];
        let (y, s) = pad(x, &[rows, cols], &[[0, 0], [b, a]], A, A).unwrap();
        let width = s[1];
        let mut crop = Vec::new();
        for r in 0..rows {
            crop.extend_from_slice(&y[r * width + b..r * width + b + cols]);
        }
        let pads_ok = y.iter().enumerate().all(|(i, &v)| {
            let c = i % width;
            (c >= b && c < b + cols) || v == A.zero_point as i8
        });
        TestResult::from_bool(crop == x && pads_ok)
    }

    /// A resize to the same size is the identity (nearest and bilinear, without half-pixel centres).
    fn resize_to_the_same_size_is_identity(x: Vec<i8>) -> TestResult {
        let (h, w) = (2usize, x.len() / 2);
        if w == 0 {
            return TestResult::discard();
        }
        let x = &x[..h * w];
        let mode = ResizeMode { align_corners: false, half_pixel_centers: false };
        let (n, _) = resize(ResizeMethod::Nearest, x, [1, h, w, 1], [h, w], mode, A, A).unwrap();
        let (bl, _) = resize(ResizeMethod::Bilinear, x, [1, h, w, 1], [h, w], mode, A, A).unwrap();
        TestResult::from_bool(n == x && bl == x)
    }
}

#[test]
fn requantized_concat_follows_each_rule() {
    // Input 1 has twice the output's scale: its codes double (around the zero points).
    let x0 = [1i8, 2];
    let x1 = [3i8, -4];
    let a1 = Affine::new(0.1, 0);
    let y = Affine::new(0.05, 0);
    for rule in [ArithRule::Torch, ArithRule::Tflite] {
        let (q, _) = concat(rule, &[(&x0, &[2], y), (&x1, &[2], a1)], 0, y, Activation::None).unwrap();
        assert_eq!(q, vec![1, 2, 6, -8], "{rule:?}");
    }
    // Mismatched shapes and bad qparams are typed errors.
    assert!(concat(ArithRule::Torch, &[(&x0, &[1, 2], y), (&x1, &[2, 1], y)], 0, y, Activation::None).is_err());
    assert!(pad(&x0, &[2], &[[1, 1]], y, a1).is_err());
    assert!(resize(
        ResizeMethod::Nearest,
        &x0,
        [1, 1, 2, 1],
        [0, 2],
        ResizeMode { align_corners: false, half_pixel_centers: false },
        y,
        y
    )
    .is_err());
}

quickcheck! {
    /// TFLite's integer softmax: the codes of a row count 256ths of probability, so they sum to
    /// 256 within one rounding per element, and the largest input gets the largest code.
    fn softmax_rows_sum_to_one(row: Vec<i8>, scale_milli: u16) -> TestResult {
        use quantproof_reference::softmax::tflite_softmax;
        if row.is_empty() || row.len() > 300 {
            return TestResult::discard();
        }
        let scale = (scale_milli % 200 + 1) as f32 / 1000.0;
        let y = tflite_softmax(&row, &[row.len()], -1, 1.0, Affine::new(scale, 0), Affine::new(1.0 / 256.0, -128)).unwrap();
        let total: i64 = y.iter().map(|&v| v as i64 + 128).sum();
        let argmax = row.iter().enumerate().max_by_key(|(_, &v)| v).map(|(i, _)| i).unwrap();
        let top = y.iter().copied().max().unwrap();
        TestResult::from_bool((total - 256).abs() <= row.len() as i64 + 1 && y[argmax] == top)
    }
}

/// `WindowAverage::row_key` is what `WindowAverage::new` reads of the row: over every small
/// geometry (sizes, kernels, strides, the three paddings, both counts of padded cells, every
/// rule), two output rows with one key have one rule at every column.
#[test]
fn rows_with_one_key_have_one_window_rule() {
    use quantproof_reference::pool::{avg_pool2d_geometry, Layout, Padding, Pool2d, WindowAverage};
    let (xq, yq) = (Affine::new(0.05, 3), Affine::new(0.07, -2));
    let mut checked = 0;
    for h in 1..=7usize {
        for kh in 1..=5usize {
            for sh in 1..=3usize {
                for padding in [Padding::Explicit([kh / 2, 1]), Padding::Same, Padding::Valid] {
                    for count_include_pad in [false, true] {
                        for rule in [ArithRule::Torch, ArithRule::Tflite, ArithRule::OnnxRuntime] {
                            let p = Pool2d {
                                kernel: [kh, 3],
                                stride: [sh, 2],
                                padding,
                                count_include_pad,
                                activation: Activation::None,
                            };
                            let shape = [1, 1, h, 5];
                            let yq = if rule == ArithRule::Tflite { xq } else { yq };
                            let Ok(g) = avg_pool2d_geometry::<i8>(rule, h * 5, shape, Layout::Nchw, &p, xq, yq) else {
                                continue;
                            };
                            for a in 0..g.oh {
                                for b in 0..g.oh {
                                    if WindowAverage::row_key(&p, &g, a) != WindowAverage::row_key(&p, &g, b) {
                                        continue;
                                    }
                                    for ox in 0..g.ow {
                                        let wa = WindowAverage::new(rule, &p, &g, a, ox, xq, yq);
                                        assert_eq!(wa, WindowAverage::new(rule, &p, &g, b, ox, xq, yq), "{p:?} h {h} rows {a} {b}");
                                        checked += 1;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

/// A large bilinear upscale whose 10-bit scale rounds up (1000 rows to 2^20: scale 1, so the
/// last output's lower source is row 1023) is refused with a typed error, where TFLite reads
/// outside the tensor (and this function once indexed past its input); the same resize to a
/// size whose sources stay inside runs.
#[test]
fn bilinear_sources_past_the_input_are_refused() {
    let x = vec![0i8; 1000];
    let q = Affine::new(0.1, 0);
    for (align_corners, half_pixel_centers) in [(false, false), (false, true)] {
        let mode = ResizeMode { align_corners, half_pixel_centers };
        let r = resize(ResizeMethod::Bilinear, &x, [1, 1000, 1, 1], [1 << 20, 1], mode, q, q);
        assert!(
            matches!(r, Err(quantproof_reference::error::QuantError::InvalidArgument { what: "bilinear resize", .. })),
            "{mode:?}: {:?}",
            r.map(|v| v.1)
        );
        let ok = resize(ResizeMethod::Bilinear, &x, [1, 1000, 1, 1], [4000, 1], mode, q, q);
        assert!(ok.is_ok(), "{mode:?}");
    }
}
