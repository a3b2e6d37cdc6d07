//! QAT gradients against PyTorch's recordings, against finite differences, and against each
//! other (the identities between PyTorch's learnable op, LSQ and LSQ+ that `qat`'s module docs
//! state).

use quantproof_harness::vectors::ops::qat::{run_lsq_case, run_lsq_case_with, LsqCase};
use quantproof_reference::profile::Profile;
use quantproof_reference::qat::{self, LsqParams, SteFakeQuantize, TorchCpuArith, TorchLearnableFakeQuantize};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::rng::Rng;
use quantproof_reference::scheme::{CodeRange, QType, Symmetry};
use serde_json::Value;

// ---- helpers -----------------------------------------------------------------------------------

fn vectors(name: &str) -> Vec<Value> {
    let path = format!("{}/../tests/vectors/torch/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn f32s(t: &Value) -> Vec<f32> {
    t["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

fn shape(t: &Value) -> Vec<usize> {
    t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
}

fn tol(case: &Value, key: &str) -> f64 {
    case["tolerance"][key].as_f64().unwrap_or(0.0)
}

/// `|got - want| <= abs + rel |want|` element-wise, with the name of the first failure.
fn within(name: &str, what: &str, got: &[f32], want: &[f32], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{name}: {what} length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(err <= abs + rel * (w as f64).abs(), "{name}: {what}[{i}] = {g}, expected {w}");
    }
}

/// Bitwise equality, with 0.0 == -0.0 (as VECTORS.md counts them).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Uniform in [lo, hi), from the workspace's generator.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.unit()
}

fn range(qmin: i32, qmax: i32) -> CodeRange {
    CodeRange::new(qmin, qmax).unwrap()
}

/// The inputs of one recorded `lsq` case.
struct Recorded {
    qmin: i64,
    qmax: i64,
    grad_factor: f64,
    x: Vec<f32>,
    scale: Vec<f32>,
    zero_point: Vec<f32>,
    grad_y: Vec<f32>,
}

impl Recorded {
    fn parse(c: &Value) -> Recorded {
        let (a, i) = (&c["attrs"], &c["inputs"]);
        Recorded {
            qmin: a["qmin"].as_i64().unwrap(),
            qmax: a["qmax"].as_i64().unwrap(),
            grad_factor: a["grad_factor"].as_f64().unwrap(),
            x: f32s(&i["x"]),
            scale: f32s(&i["scale"]),
            zero_point: f32s(&i["zero_point"]),
            grad_y: f32s(&i["grad_y"]),
        }
    }

    fn case(&self) -> LsqCase<'_> {
        LsqCase {
            qmin: self.qmin,
            qmax: self.qmax,
            grad_factor: self.grad_factor,
            x: &self.x,
            scale: &self.scale,
            zero_point: &self.zero_point,
            grad_y: &self.grad_y,
        }
    }
}

// ---- golden vectors --------------------------------------------------------------------------

#[test]
fn lsq_golden_vectors_pass_and_are_bit_exact() {
    let cases = vectors("lsq");
    assert_eq!(cases.len(), 12);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        assert_eq!(c["op"], "lsq");
        let rec = Recorded::parse(c);
        let out = run_lsq_case(&rec.case()).unwrap();
        let (abs, rel) = (tol(c, "abs"), tol(c, "rel"));
        let o = &c["outputs"];
        for (key, got) in [
            ("y", &out.y),
            ("grad_x", &out.grad_x),
            ("grad_scale", &out.grad_scale),
            ("grad_zero_point", &out.grad_zero_point),
        ] {
            assert_eq!(shape(&o[key]), vec![got.len()], "{name}: {key} shape");
            let want = f32s(&o[key]);
            within(name, key, got, &want, abs, rel);
            // Stronger than the tolerance: the AVX2 build's arithmetic reproduces every bit.
            assert!(same_bits(got, &want), "{name}: {key} {got:?} is not bit-identical to {want:?}");
        }
    }
}

#[test]
fn the_recorded_bits_need_fma_and_eight_lanes() {
    // The arithmetic choices are not cosmetic: without FMA contraction, or with AVX-512's 16
    // lanes, some recorded gradient is not reproduced bit for bit.
    for arith in [TorchCpuArith::DEFAULT_BUILD, TorchCpuArith::X86_AVX512] {
        let mismatches = vectors("lsq")
            .iter()
            .filter(|c| {
                let out = run_lsq_case_with(&Recorded::parse(c).case(), arith).unwrap();
                let o = &c["outputs"];
                !(same_bits(&out.grad_scale, &f32s(&o["grad_scale"])) && same_bits(&out.grad_x, &f32s(&o["grad_x"])))
            })
            .count();
        assert!(mismatches > 0, "{arith:?} unexpectedly reproduces every recording");
    }
}

#[test]
fn ste_matches_torch_fake_quantize_vectors() {
    let rule = Profile::TORCH.fake_quantize_rule().unwrap();
    let cases = vectors("fake_quantize");
    assert!(!cases.is_empty());
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let a = &c["attrs"];
        let x = f32s(&c["inputs"]["x"]);
        let shp = shape(&c["inputs"]["x"]);
        let scales: Vec<f32> = a["scale"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let zps: Vec<i32> = a["zero_point"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        let r = range(a["qmin"].as_i64().unwrap() as i32, a["qmax"].as_i64().unwrap() as i32);
        let params = match a["axis"].as_u64() {
            None => QuantParams::per_tensor(scales[0], zps[0], r),
            Some(axis) => QuantParams::per_axis(axis as usize, scales, zps, r),
        };
        let mut y = vec![0f32; x.len()];
        let ste = SteFakeQuantize::forward(&x, &shp, &params, rule, &mut y).unwrap();
        let mut grad = vec![0f32; x.len()];
        ste.backward(&vec![1.0; x.len()], &mut grad).unwrap();
        within(name, "y", &y, &f32s(&c["outputs"]["y"]), tol(c, "abs"), tol(c, "rel"));
        within(name, "grad_mask", &grad, &f32s(&c["outputs"]["grad_mask"]), 0.0, 0.0);
        // The mask is the straight-through rule: 1 exactly where the unclamped code is in range.
        let mut q = vec![0i32; x.len()];
        // The widest 16-bit range holds r strictly inside, so a code it clamps stays outside r.
        let wide = QuantParams { range: range(-32768, 32767), ..params.clone() };
        quantproof_reference::quantize::quantize_codes(&x, &shp, &wide, rule, &mut q).unwrap();
        for (i, (&m, &qi)) in ste.mask().iter().zip(&q).enumerate() {
            assert_eq!(m, r.contains(qi as i64), "{name}: mask[{i}]");
        }
    }
}

#[test]
fn learnable_grad_x_is_the_ste_mask_for_nonnegative_integer_zero_points() {
    // With an integer z >= 0 both passes use the same zero point; the backward's fused
    // nearbyint(z + x/s) then agrees with the forward's z + nearbyint(x/s) away from ties.
    let mut rng = Rng::new(7);
    let rule = Profile::TORCH.fake_quantize_rule().unwrap();
    for (qmin, qmax, z) in [(0, 255, 37), (-128, 127, 0), (0, 15, 3), (-8, 7, 2)] {
        let r = range(qmin, qmax);
        let s = 0.037f32;
        let x: Vec<f32> = (0..500).map(|_| uniform(&mut rng, -1.5, 1.5) as f32 * (qmax - qmin) as f32 * s).collect();
        let gy = vec![1f32; x.len()];
        let mut y = vec![0f32; x.len()];
        let ste = SteFakeQuantize::forward(&x, &[x.len()], &QuantParams::per_tensor(s, z, r), rule, &mut y).unwrap();
        let g =
            qat::torch_learnable_per_tensor_backward(&x, s, z as f32, r, 1.0, &gy, TorchCpuArith::X86_AVX2).unwrap();
        let mask: Vec<f32> = ste.mask().iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
        assert_eq!(g.grad_x, mask);
        let mut y2 = vec![0f32; x.len()];
        qat::torch_learnable_per_tensor_forward(&x, s, z as f32, r, &mut y2).unwrap();
        assert_eq!(y, y2);
    }
}

// ---- finite differences ------------------------------------------------------------------------

/// Data on a smooth region of `s`: `x = (k + d) s` with `|d| <= 0.3`, so that scaling `s` by
/// `1 +- 1e-3` moves no element across a rounding boundary (for `|k| <= 150`); `k` runs past
/// the code range on both sides so the clipped branches are exercised too.
fn smooth_data(mut rng: &mut Rng, s: f32, kmin: i32, kmax: i32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let k = (uniform(&mut rng, kmin as f64, kmax as f64 + 1.0)).floor();
            ((k + uniform(&mut rng, -0.3, 0.3)) * s as f64) as f32
        })
        .collect()
}

/// `sum(gy y(p))` in f64.
fn dot(gy: &[f32], y: &[f32]) -> f64 {
    gy.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

#[test]
fn torch_scale_gradient_matches_finite_differences() {
    let mut rng = Rng::new(11);
    let arith = TorchCpuArith::X86_AVX2;
    for (qmin, qmax, z) in [(0i32, 255i32, 100i32), (-8, 7, 0), (-128, 127, -2), (0, 15, 4)] {
        let r = range(qmin, qmax);
        let s = 0.05f32;
        let x = smooth_data(&mut rng, s, qmin - z - 12, qmax - z + 12, 400);
        let gy: Vec<f32> = (0..x.len()).map(|_| uniform(&mut rng, -1.0, 1.0) as f32).collect();
        // The backward zero point must equal the forward one. For z >= 0 an integer does; a
        // negative integer is moved up by one in the backward pass, and -2.5 is the one float
        // both passes read as -2 (ties to even forward, trunc(-2.5 + 0.5) backward).
        let zf = if z < 0 { z as f32 - 0.5 } else { z as f32 };
        assert_eq!(qat::torch_forward_zero_point(zf, r).unwrap(), qat::torch_backward_zero_point(zf, r).unwrap());
        let loss = |s: f32| {
            let mut y = vec![0f32; x.len()];
            qat::torch_learnable_per_tensor_forward(&x, s, zf, r, &mut y).unwrap();
            dot(&gy, &y)
        };
        let (sp, sm) = ((s as f64 * 1.001) as f32, (s as f64 * 0.999) as f32);
        let fd = (loss(sp) - loss(sm)) / (sp as f64 - sm as f64);
        let g = qat::torch_learnable_per_tensor_backward(&x, s, zf, r, 1.0, &gy, arith).unwrap();
        // The op's inside term is (x_fq - x)/s = (q - z) - x/s; the true derivative of the
        // piecewise-constant code is (q - z). So grad = FD - sum_inside(dy x / s).
        let ste_term: f64 = x
            .iter()
            .zip(&gy)
            .filter(|(&xi, _)| {
                let q = (xi as f64 / s as f64).round() + z as f64;
                q >= qmin as f64 && q <= qmax as f64
            })
            .map(|(&xi, &d)| d as f64 * xi as f64 / s as f64)
            .sum();
        let scale_of: f64 = x.iter().zip(&gy).map(|(&xi, &d)| (d as f64 * xi as f64 / s as f64).abs()).sum();
        let want = fd - ste_term;
        assert!(
            (g.grad_scale[0] as f64 - want).abs() <= 2e-4 * scale_of,
            "[{qmin}, {qmax}] z = {z}: grad {} vs FD-derived {want}",
            g.grad_scale[0]
        );
        // Where everything is clipped the STE gradient *is* the derivative.
        let clipped: Vec<f32> = x
            .iter()
            .map(|&v| if v >= 0.0 { v + (qmax - z + 2) as f32 * s } else { v + (qmin - z - 2) as f32 * s })
            .collect();
        let loss_c = |s: f32| {
            let mut y = vec![0f32; clipped.len()];
            qat::torch_learnable_per_tensor_forward(&clipped, s, zf, r, &mut y).unwrap();
            dot(&gy, &y)
        };
        let fd_c = (loss_c(sp) - loss_c(sm)) / (sp as f64 - sm as f64);
        let gc = qat::torch_learnable_per_tensor_backward(&clipped, s, zf, r, 1.0, &gy, arith).unwrap();
        assert!(gc.grad_x.iter().all(|&v| v == 0.0));
        assert!((gc.grad_scale[0] as f64 - fd_c).abs() <= 1e-3 * (1.0 + fd_c.abs()), "{} vs {fd_c}", gc.grad_scale[0]);
    }
}

#[test]
fn lsq_and_lsq_plus_gradients_match_finite_differences() {
    let mut rng = Rng::new(23);
    for (qmin, qmax, offset) in [(-8i32, 7i32, 0.0f32), (0, 15, -0.4), (-128, 127, 0.25), (0, 3, 0.1)] {
        let r = range(qmin, qmax);
        let s = 0.05f32;
        let g = qat::lsq_grad_scale(400, qmax).unwrap();
        // x = (k + d) s + beta keeps (x - beta)/s away from ties and from the clip points.
        let x: Vec<f32> = smooth_data(&mut rng, s, qmin - 10, qmax + 10, 400).iter().map(|&v| v + offset).collect();
        let gy: Vec<f32> = (0..x.len()).map(|_| uniform(&mut rng, -1.0, 1.0) as f32).collect();
        let p = LsqParams { scale: s, offset, range: r };
        let loss = |p: LsqParams| {
            let mut y = vec![0f32; x.len()];
            qat::lsq_plus_forward(&x, &p, &mut y).unwrap();
            dot(&gy, &y)
        };
        let grads = qat::lsq_plus_backward(&x, &p, &gy, g).unwrap();
        let inside: Vec<(f64, f64)> = x
            .iter()
            .zip(&gy)
            .filter_map(|(&xi, &d)| {
                let u = (xi as f64 - offset as f64) / s as f64;
                (u > qmin as f64 && u < qmax as f64).then_some((u, d as f64))
            })
            .collect();
        // Scale: LSQ's inside term round(u) - u is the true derivative round(u) minus the STE's u.
        let (sp, sm) = ((s as f64 * 1.001) as f32, (s as f64 * 0.999) as f32);
        let fd_s = (loss(LsqParams { scale: sp, ..p }) - loss(LsqParams { scale: sm, ..p })) / (sp as f64 - sm as f64);
        let want_s = g * (fd_s - inside.iter().map(|(u, d)| d * u).sum::<f64>());
        let mag: f64 = g * x.iter().zip(&gy).map(|(&xi, &d)| (d as f64 * xi as f64 / s as f64).abs()).sum::<f64>();
        assert!((grads.grad_scale - want_s).abs() <= 2e-4 * mag, "[{qmin},{qmax}]: {} vs {want_s}", grads.grad_scale);
        // Offset: the true derivative is 1 everywhere; LSQ+ keeps it only where clipped.
        let h = 1e-3 * s;
        let (bp, bm) = (offset + h, offset - h);
        let fd_b =
            (loss(LsqParams { offset: bp, ..p }) - loss(LsqParams { offset: bm, ..p })) / (bp as f64 - bm as f64);
        let want_b = g * (fd_b - inside.iter().map(|(_, d)| d).sum::<f64>());
        let mag_b = g * gy.iter().map(|&d| (d as f64).abs()).sum::<f64>();
        assert!(
            (grads.grad_offset - want_b).abs() <= 2e-3 * mag_b,
            "[{qmin},{qmax}]: {} vs {want_b}",
            grads.grad_offset
        );
    }
}

// ---- identities between the methods ------------------------------------------------------------

#[test]
fn torch_op_is_lsq_plus_with_offset_minus_z_s() {
    let mut rng = Rng::new(5);
    let arith = TorchCpuArith::X86_AVX2;
    for (qmin, qmax, z) in [(0i32, 255i32, 60i32), (-128, 127, 0), (0, 15, 5), (-8, 7, 3)] {
        let r = range(qmin, qmax);
        let s = 0.021f32;
        // Leave out the two end cells, where clip-then-round (LSQ+) and round-then-clamp
        // (PyTorch) disagree (see `clip_before_round_differs_in_the_end_cells`).
        let x: Vec<f32> = smooth_data(&mut rng, s, qmin - z - 20, qmax - z + 20, 300)
            .into_iter()
            .filter(|&v| {
                let k = (v as f64 / s as f64).round() as i32 + z;
                k != qmin && k != qmax
            })
            .collect();
        let gy: Vec<f32> = (0..x.len()).map(|_| uniform(&mut rng, -1.0, 1.0) as f32).collect();
        let g = qat::torch_grad_factor(x.len(), qmax.max(1)).unwrap();
        let torch = qat::torch_learnable_per_tensor_backward(&x, s, z as f32, r, g, &gy, arith).unwrap();
        let beta = -(z as f32) * s;
        let plus = qat::lsq_plus_backward(&x, &LsqParams { scale: s, offset: beta, range: r }, &gy, g).unwrap();
        assert_eq!(torch.grad_x, plus.grad_x, "z = {z}");
        let tol = 1e-4 * (1.0 + plus.grad_scale.abs() + (z as f64 * plus.grad_offset).abs());
        // dL/dz = -s dL/dbeta
        let dz = -(s as f64) * plus.grad_offset;
        assert!((torch.grad_zero_point[0] as f64 - dz).abs() <= 1e-4 * (1.0 + dz.abs()), "z = {z}");
        // dL/ds|z = dL/ds|beta - z dL/dbeta
        let ds = plus.grad_scale - z as f64 * plus.grad_offset;
        assert!((torch.grad_scale[0] as f64 - ds).abs() <= tol, "z = {z}: {} vs {ds}", torch.grad_scale[0]);
        // Forward: the same values.
        let (mut yt, mut yp) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        qat::torch_learnable_per_tensor_forward(&x, s, z as f32, r, &mut yt).unwrap();
        qat::lsq_plus_forward(&x, &LsqParams { scale: s, offset: beta, range: r }, &mut yp).unwrap();
        for (a, b) in yt.iter().zip(&yp) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
        }
        // With z = 0 it is plain LSQ with [-Q_N, Q_P] = [qmin, qmax].
        if z == 0 {
            let lsq = qat::lsq_backward(&x, s, r, &gy, g).unwrap();
            assert!((torch.grad_scale[0] as f64 - lsq.grad_scale).abs() <= 1e-4 * (1.0 + lsq.grad_scale.abs()));
        }
    }
}

#[test]
fn clip_before_round_differs_in_the_end_cells() {
    // LSQ / LSQ+ clip u = x/s before rounding: u >= Q_P is "above" (dx = 0, ds = Q_P). PyTorch
    // rounds first: u in [Q_P, Q_P + 1/2) rounds to the code Q_P, which is in range (dx = dy,
    // ds = Q_P - u). Same forward value, different gradients, in half a cell at each end.
    let (r, s) = (range(-8, 7), 0.25f32);
    let x = [7.2 * s, -8.2 * s, 7.7 * s];
    let gy = [1.0f32; 3];
    let torch = qat::torch_learnable_per_tensor_backward(&x, s, 0.0, r, 1.0, &gy, TorchCpuArith::X86_AVX2).unwrap();
    let lsq = qat::lsq_backward(&x, s, r, &gy, 1.0).unwrap();
    assert_eq!(torch.grad_x, [1.0, 1.0, 0.0]);
    assert_eq!(lsq.grad_x, [0.0, 0.0, 0.0]);
    // torch: (7 - 7.2) + (-8 + 8.2) + 7 = 7;  LSQ: 7 - 8 + 7 = 6.
    assert!((torch.grad_scale[0] - 7.0).abs() < 1e-5, "{:?}", torch.grad_scale);
    assert!((lsq.grad_scale - 6.0).abs() < 1e-6, "{}", lsq.grad_scale);
    let (mut yt, mut yl) = ([0f32; 3], [0f32; 3]);
    qat::torch_learnable_per_tensor_forward(&x, s, 0.0, r, &mut yt).unwrap();
    qat::lsq_forward(&x, s, r, &mut yl).unwrap();
    assert_eq!(yt, yl);
}

#[test]
fn per_channel_backward_is_per_tensor_backward_per_channel() {
    let mut rng = Rng::new(3);
    let arith = TorchCpuArith::X86_AVX2;
    let r = range(0, 255);
    // [outer, C, inner] = [3, 4, 10] along axis 1, and the channel-last layout [30, 4] along axis 1.
    for (shp, axis) in [(vec![3usize, 4, 10], 1usize), (vec![30, 4], 1), (vec![4, 30], 0)] {
        let n: usize = shp.iter().product();
        let c = shp[axis];
        let inner: usize = shp[axis + 1..].iter().product();
        let scales: Vec<f32> = (0..c).map(|i| 0.01 + 0.005 * i as f32).collect();
        let zps: Vec<f32> = (0..c).map(|i| 20.0 + 50.0 * i as f32).collect();
        let x: Vec<f32> = (0..n).map(|_| uniform(&mut rng, -3.0, 3.0) as f32).collect();
        let gy: Vec<f32> = (0..n).map(|_| uniform(&mut rng, -1.0, 1.0) as f32).collect();
        let pc = qat::torch_learnable_per_channel_backward(&x, &shp, axis, &scales, &zps, r, 0.5, &gy, arith).unwrap();
        let mut y = vec![0f32; n];
        qat::torch_learnable_per_channel_forward(&x, &shp, axis, &scales, &zps, r, &mut y).unwrap();
        for ch in 0..c {
            let idx: Vec<usize> = (0..n).filter(|i| (i / inner) % c == ch).collect();
            let xs: Vec<f32> = idx.iter().map(|&i| x[i]).collect();
            let gs: Vec<f32> = idx.iter().map(|&i| gy[i]).collect();
            let pt = qat::torch_learnable_per_tensor_backward(&xs, scales[ch], zps[ch], r, 0.5, &gs, arith).unwrap();
            let gx: Vec<f32> = idx.iter().map(|&i| pc.grad_x[i]).collect();
            assert_eq!(gx, pt.grad_x);
            // Same per-element terms; only the summation order differs.
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (1.0 + a.abs());
            assert!(close(pc.grad_scale[ch], pt.grad_scale[0]), "{} vs {}", pc.grad_scale[ch], pt.grad_scale[0]);
            assert!(close(pc.grad_zero_point[ch], pt.grad_zero_point[0]));
            let mut yt = vec![0f32; xs.len()];
            qat::torch_learnable_per_tensor_forward(&xs, scales[ch], zps[ch], r, &mut yt).unwrap();
            let yc: Vec<f32> = idx.iter().map(|&i| y[i]).collect();
            assert_eq!(yc, yt);
        }
    }
}

// ---- training --------------------------------------------------------------------------------

#[test]
fn learnable_module_trains_its_scale_and_zero_point() {
    // Gradient descent on the fake-quantization MSE of a skewed signal (range about [-1.3, 2.7]).
    let mut rng = Rng::new(99);
    let x: Vec<f32> = (0..2048)
        .map(|_| {
            let u: f64 = (0..4).map(|_| uniform(&mut rng, -1.0, 1.0)).sum::<f64>();
            (0.7 + 0.5 * u) as f32
        })
        .collect();
    let n = x.len();
    let module = |scale: f32, zero_point: f32| TorchLearnableFakeQuantize {
        scale: vec![scale],
        zero_point: vec![zero_point],
        range: QType::U8.full_range(),
        axis: None,
        symmetry: Symmetry::Affine,
        use_grad_scaling: true,
        arith: TorchCpuArith::X86_AVX2,
    };
    // (MSE, dL/dy) of the current parameters.
    let step = |m: &mut TorchLearnableFakeQuantize| {
        let mut y = vec![0f32; n];
        m.forward(&x, &[n], &mut y).unwrap();
        let e = x.iter().zip(&y).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / n as f64;
        let gy: Vec<f32> = x.iter().zip(&y).map(|(&a, &b)| 2.0 * (b - a) / n as f32).collect();
        (e, m.backward(&x, &[n], &gy).unwrap())
    };
    // A step 6x too coarse and no clipping: the scale gradient alone shrinks the error > 10x.
    let mut m = module(0.1, 100.0);
    let (start, _) = step(&mut m);
    for _ in 0..300 {
        let (_, g) = step(&mut m);
        assert_eq!(g.grad_zero_point, [0.0], "nothing is clipped, so z has no gradient");
        m.scale[0] -= 20.0 * g.grad_scale[0];
    }
    let (end, _) = step(&mut m);
    assert!(end < start / 10.0, "MSE {start} -> {end}, scale {:?}", m.scale);
    assert!(m.scale[0] < 0.05, "scale {:?}", m.scale);
    // A range [-4, 1.1] that clips the top of the data: the zero-point gradient is positive, so
    // descent lowers z and slides the range up, and the error falls with it.
    let mut m = module(0.02, 200.0);
    let (before, g) = step(&mut m);
    assert!(g.grad_zero_point[0] > 0.0, "{g:?}");
    for _ in 0..20 {
        let (_, g) = step(&mut m);
        m.zero_point[0] -= 2e5 * g.grad_zero_point[0];
    }
    let (after, _) = step(&mut m);
    assert!(m.zero_point[0] < 190.0 && after < before / 2.0, "z {:?}: MSE {before} -> {after}", m.zero_point);
}

#[test]
fn learnable_module_clamps_scale_and_zeroes_symmetric_zero_point() {
    let mut m = TorchLearnableFakeQuantize {
        scale: vec![-1.0, 1e-12],
        zero_point: vec![3.3, -1.0],
        range: QType::I8.full_range(),
        axis: Some(0.into()),
        symmetry: Symmetry::Symmetric,
        use_grad_scaling: true,
        arith: TorchCpuArith::X86_AVX2,
    };
    let x = [0.5f32, -0.25, 1.0, 2.0];
    let mut y = [0f32; 4];
    m.forward(&x, &[2, 2], &mut y).unwrap();
    assert_eq!(m.scale, [f32::EPSILON, f32::EPSILON]);
    assert_eq!(m.zero_point, [0.0, 0.0]);
    assert_eq!(m.grad_factor(4).unwrap(), 1.0 / (4.0f64 * 127.0).sqrt());
    let g = m.backward(&x, &[2, 2], &[1.0; 4]).unwrap();
    assert_eq!(g.grad_scale.len(), 2);
    // Every element saturates at 127 (or -128 for the negative one) with so small a step.
    assert_eq!(g.grad_x, [0.0; 4]);
    // Per-tensor modules reject several scales.
    let mut bad = TorchLearnableFakeQuantize { axis: None, ..m.clone() };
    assert!(bad.forward(&x, &[4], &mut y).is_err());
}
