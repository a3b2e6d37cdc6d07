//! `optimized::conv::PackedConv` (u8 x s8 convolution through im2col + the packed GEMM, and the
//! depthwise path) against the reference's direct loop `conv::conv2d_accumulate`, bit for bit,
//! errors included, on every available GEMM micro-kernel at 1 and 3 threads: drawn geometries
//! (batch, channels, spatial sizes down to 1, kernels 1..3, strides, asymmetric padding,
//! dilation, groups 1 / 2 / depthwise with multipliers), NCHW and NHWC, every weight layout,
//! extreme and per-channel zero points; an accumulator that leaves i32; bad inputs.

use quantproof_optimized::conv::PackedConv;
use quantproof_reference::conv::{conv2d_accumulate, ActivationLayout, Conv2dGeometry, ConvWeightLayout};
use quantproof_reference::gemm::ZeroPoints;
use quantproof_reference::rng::Rng;

use quantproof_tests::available_gemm_kernels as kernels;

fn geometry(rng: &mut Rng) -> Conv2dGeometry {
    let pick = |rng: &mut Rng, v: &[usize]| v[rng.below(v.len() as u64) as usize];
    let c = pick(rng, &[1, 2, 3, 4, 8, 16]);
    let groups = match rng.below(3) {
        0 => 1,
        1 if c % 2 == 0 => 2,
        _ => c,
    };
    let mult = if groups == c { pick(rng, &[1, 1, 2, 3]) } else { 1 };
    let out = if groups == c { c * mult } else { groups * pick(rng, &[1, 2, 5, 16, 17]) };
    let (kh, kw) = (pick(rng, &[1, 2, 3]), pick(rng, &[1, 2, 3]));
    let dilation = [pick(rng, &[1, 1, 2]), pick(rng, &[1, 1, 2])];
    let pad = |rng: &mut Rng| pick(rng, &[0, 0, 1, 2]);
    let pad_before = [pad(rng), pad(rng)];
    let pad_after = [pad(rng), pad(rng)];
    // A window that fits the padded input.
    let min_h = (dilation[0] * (kh - 1) + 1).saturating_sub(pad_before[0] + pad_after[0]).max(1);
    let min_w = (dilation[1] * (kw - 1) + 1).saturating_sub(pad_before[1] + pad_after[1]).max(1);
    Conv2dGeometry {
        batch: pick(rng, &[1, 1, 2]),
        in_channels: c,
        in_h: min_h + rng.below(7) as usize,
        in_w: min_w + rng.below(7) as usize,
        out_channels: out,
        kernel_h: kh,
        kernel_w: kw,
        stride: [pick(rng, &[1, 1, 2, 3]), pick(rng, &[1, 1, 2])],
        pad_before,
        pad_after,
        dilation,
        groups,
    }
}

#[test]
fn every_kernel_equals_the_direct_loop_on_drawn_geometries() {
    let kernels = kernels();
    let mut rng = Rng::new(0xC0_4701);
    let mut checked = 0;
    for case in 0..400 {
        let g = geometry(&mut rng);
        let (xn, wn, _) = g.sizes().unwrap();
        let x: Vec<u8> = (0..xn).map(|_| rng.below(256) as u8).collect();
        let w: Vec<i8> = (0..wn).map(|_| rng.below(256) as u8 as i8).collect();
        let zx = [0, 255, 128, rng.below(256) as i32][case % 4];
        let zps: Vec<i32> = (0..g.out_channels)
            .map(|_| [-128, 127, 0, rng.range_i64(-128, 127) as i32][rng.below(4) as usize])
            .collect();
        let zw = if case % 3 == 0 { ZeroPoints::PerTensor(zps[0]) } else { ZeroPoints::PerColumn(&zps) };
        let layouts: &[ConvWeightLayout] = if g.group_in() == 1 {
            &[ConvWeightLayout::Oihw, ConvWeightLayout::Ohwi, ConvWeightLayout::Ihwo]
        } else {
            &[ConvWeightLayout::Oihw, ConvWeightLayout::Ohwi]
        };
        let wl = layouts[case % layouts.len()];
        let xl = if case % 2 == 0 { ActivationLayout::Nchw } else { ActivationLayout::Nhwc };
        let want = conv2d_accumulate(&g, xl, wl, &x, zx, &w, zw);
        let packed = PackedConv::new(&g, wl, &w, zw).unwrap();
        for &k in &kernels {
            for threads in [1, 3] {
                let got = packed.accumulate(xl, &x, zx, k, threads);
                assert_eq!(got, want, "{} x{threads}: {g:?} {xl:?} {wl:?} zx {zx}", k.name());
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 400);
}

/// A MiniLM-sized pointwise convolution and 3x3 ones, on every kernel, including AMX's tiles;
/// the last has more rows than two of the blocked kernels' row blocks and a depth past their
/// `k` block (`BLOCK_M`, `BLOCK_K`), on two threads.
#[test]
fn larger_shapes_on_every_kernel() {
    use quantproof_optimized::gemm::{BLOCK_K, BLOCK_M};
    let mut rng = Rng::new(0xC0_4702);
    let deep = BLOCK_K / 9 + 3;
    let tall = ((2 * BLOCK_M + 5) as f64).sqrt() as usize + 1;
    for (c, o, k, h) in [(64, 96, 1, 9), (32, 40, 3, 12), (130, 33, 3, 7), (deep, 70, 3, tall)] {
        let g = Conv2dGeometry {
            batch: 1,
            in_channels: c,
            in_h: h,
            in_w: h + 1,
            out_channels: o,
            kernel_h: k,
            kernel_w: k,
            stride: [1, 1],
            pad_before: [k / 2, k / 2],
            pad_after: [k / 2, k / 2],
            dilation: [1, 1],
            groups: 1,
        };
        let (xn, wn, _) = g.sizes().unwrap();
        let x: Vec<u8> = (0..xn).map(|_| rng.below(256) as u8).collect();
        let w: Vec<i8> = (0..wn).map(|_| rng.below(256) as u8 as i8).collect();
        for xl in [ActivationLayout::Nchw, ActivationLayout::Nhwc] {
            let want = conv2d_accumulate(&g, xl, ConvWeightLayout::Ohwi, &x, 3, &w, ZeroPoints::PerTensor(-5));
            let packed = PackedConv::new(&g, ConvWeightLayout::Ohwi, &w, ZeroPoints::PerTensor(-5)).unwrap();
            for kern in kernels() {
                assert_eq!(packed.accumulate(xl, &x, 3, kern, 2), want, "{} {c}x{o} k{k} {xl:?}", kern.name());
            }
        }
    }
}

/// An exact value outside i32 and bad inputs: the reference's errors, on every kernel.
#[test]
fn overflow_and_bad_inputs_give_the_reference_errors() {
    // K = 3 * 3 * 8000 = 72000 taps of (255 - 0) * (-128 - 127): far outside i32.
    let g = Conv2dGeometry {
        batch: 1,
        in_channels: 8000,
        in_h: 3,
        in_w: 3,
        out_channels: 2,
        kernel_h: 3,
        kernel_w: 3,
        stride: [1, 1],
        pad_before: [0, 0],
        pad_after: [0, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let (xn, wn, _) = g.sizes().unwrap();
    let (x, w) = (vec![255u8; xn], vec![-128i8; wn]);
    let zw = ZeroPoints::PerTensor(127);
    let want = conv2d_accumulate(&g, ActivationLayout::Nhwc, ConvWeightLayout::Oihw, &x, 0, &w, zw);
    assert!(want.is_err());
    let packed = PackedConv::new(&g, ConvWeightLayout::Oihw, &w, zw).unwrap();
    for k in kernels() {
        assert_eq!(packed.accumulate(ActivationLayout::Nhwc, &x, 0, k, 1), want, "{}", k.name());
        // A short input and a zero point outside u8.
        let short = conv2d_accumulate(&g, ActivationLayout::Nhwc, ConvWeightLayout::Oihw, &x[1..], 0, &w, zw);
        assert_eq!(packed.accumulate(ActivationLayout::Nhwc, &x[1..], 0, k, 1), short);
        let bad_zp = conv2d_accumulate(&g, ActivationLayout::Nhwc, ConvWeightLayout::Oihw, &x, 300, &w, zw);
        assert!(bad_zp.is_err());
        assert_eq!(packed.accumulate(ActivationLayout::Nhwc, &x, 300, k, 1), bad_zp);
    }
    // Weights of the wrong length, a bad geometry: typed errors when preparing.
    assert!(PackedConv::new(&g, ConvWeightLayout::Oihw, &w[1..], zw).is_err());
    let mut bad = g;
    bad.stride = [0, 1];
    assert!(PackedConv::new(&bad, ConvWeightLayout::Oihw, &w, zw).is_err());
}

/// `accumulate_into` on one prepared convolution, call after call: inputs, zero points, layouts
/// and kernels change between calls, the output vector arrives holding the last call's (or
/// garbage) values of another length, and two threads call at once (one of them finds the kept
/// buffers busy and uses its own): every result is the reference's.
#[test]
fn accumulate_into_reuses_buffers_without_leaking_a_call_into_the_next() {
    let mut rng = Rng::new(0xC0_4703);
    let g = Conv2dGeometry {
        batch: 2,
        in_channels: 19,
        in_h: 9,
        in_w: 7,
        out_channels: 33,
        kernel_h: 3,
        kernel_w: 3,
        stride: [1, 2],
        pad_before: [1, 0],
        pad_after: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let (xn, wn, _) = g.sizes().unwrap();
    let w: Vec<i8> = (0..wn).map(|_| rng.below(256) as u8 as i8).collect();
    let zw = ZeroPoints::PerTensor(-3);
    let packed = PackedConv::new(&g, ConvWeightLayout::Oihw, &w, zw).unwrap();
    let inputs: Vec<(Vec<u8>, i32, ActivationLayout)> = (0..12)
        .map(|i| {
            let x: Vec<u8> = (0..xn).map(|_| rng.below(256) as u8).collect();
            let xl = if i % 3 == 0 { ActivationLayout::Nhwc } else { ActivationLayout::Nchw };
            (x, [0, 255, 17][i % 3], xl)
        })
        .collect();
    let wants: Vec<_> = inputs
        .iter()
        .map(|(x, zx, xl)| conv2d_accumulate(&g, *xl, ConvWeightLayout::Oihw, x, *zx, &w, zw).unwrap())
        .collect();
    let mut out = vec![i32::MIN; 5];
    for kern in kernels() {
        for ((x, zx, xl), want) in inputs.iter().zip(&wants) {
            packed.accumulate_into(*xl, x, *zx, kern, 1 + want.len() % 2, &mut out).unwrap();
            assert_eq!(&out, want, "{} {xl:?} zx {zx}", kern.name());
        }
        // An error leaves the output empty; the next call is whole again.
        assert!(packed.accumulate_into(ActivationLayout::Nchw, &inputs[0].0[1..], 0, kern, 1, &mut out).is_err());
        assert!(out.is_empty());
    }
    std::thread::scope(|s| {
        for t in 0..2 {
            let (packed, inputs, wants) = (&packed, &inputs, &wants);
            s.spawn(move || {
                let mut out = Vec::new();
                for round in 0..40 {
                    let i = (round * 5 + t) % inputs.len();
                    let (x, zx, xl) = &inputs[i];
                    for kern in kernels() {
                        packed.accumulate_into(*xl, x, *zx, kern, 1, &mut out).unwrap();
                        assert_eq!(out, wants[i], "thread {t} round {round} {}", kern.name());
                    }
                }
            });
        }
    });
}

/// An NCHW input whose exact result leaves i32 in some output channels only: the error the
/// reference reports for the input as given (not for its NHWC transpose, which the GEMM path
/// reads), on every kernel.
#[test]
fn nchw_overflow_reports_the_reference_error() {
    let g = Conv2dGeometry {
        batch: 1,
        in_channels: 12000,
        in_h: 2,
        in_w: 3,
        out_channels: 3,
        kernel_h: 3,
        kernel_w: 3,
        stride: [1, 1],
        pad_before: [1, 1],
        pad_after: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let (xn, wn, _) = g.sizes().unwrap();
    // Channels ascending in value by position: the NHWC transpose is a different tensor.
    let x: Vec<u8> = (0..xn).map(|i| if (i / 6) % 3 == 0 { 255 } else { (i % 6) as u8 * 40 }).collect();
    let w: Vec<i8> = (0..wn).map(|i| if i < wn / 3 { 127 } else { -128 }).collect();
    let zw = ZeroPoints::PerTensor(-128);
    let want = conv2d_accumulate(&g, ActivationLayout::Nchw, ConvWeightLayout::Oihw, &x, 0, &w, zw);
    assert!(want.is_err());
    let packed = PackedConv::new(&g, ConvWeightLayout::Oihw, &w, zw).unwrap();
    for k in kernels() {
        let mut out = vec![7; 3];
        let got = packed.accumulate_into(ActivationLayout::Nchw, &x, 0, k, 2, &mut out).map(|()| out);
        assert_eq!(got, want, "{}", k.name());
    }
}
