//! The PTQ algorithms on networks built to show each effect, with the numbers they reach.
//!
//! Each test prints its figures (`cargo test -p quantproof-reference --test ptq -- --nocapture`);
//! the asserted bounds sit below the measured values so that they fail when an algorithm stops
//! doing its job, not when a seed changes a digit.

use quantproof_reference::analysis::sqnr_db;
use quantproof_reference::ptq::adaround::{adaround, AdaRoundConfig};
use quantproof_reference::ptq::bias::{corrected_bias, input_mean};
use quantproof_reference::ptq::cle::{apply, equalize_pair, Activation, Layer};
use quantproof_reference::ptq::layer::{fake_quantize_weights, symmetric_scales, Dense, WeightGranularity};
use quantproof_reference::ptq::mixed::{allocate, sensitivity};
use quantproof_reference::rng::Rng;

/// Normal weights scaled by `scale(row, column)`; biases by `scale(row, 0) / 10`.
fn random_dense(rng: &mut Rng, out: usize, inp: usize, scale: impl Fn(usize, usize) -> f32) -> Dense {
    let w = (0..out * inp).map(|k| rng.normal() as f32 * scale(k / inp, k % inp)).collect();
    let b = (0..out).map(|o| rng.normal() as f32 * 0.1 * scale(o, 0)).collect();
    Dense::new(out, inp, w, b).unwrap()
}

fn inputs(rng: &mut Rng, n: usize, inp: usize) -> Vec<Vec<f32>> {
    (0..n).map(|_| (0..inp).map(|_| rng.normal() as f32).collect()).collect()
}

/// `second(act(first(x)))` for every input, flattened.
fn run2(first: &Dense, act: Activation, clip: Option<&[f32]>, second: &Dense, xs: &[Vec<f32>]) -> Vec<f32> {
    xs.iter()
        .flat_map(|x| {
            let mut h = first.forward(x).unwrap();
            apply(act, &mut h, clip).unwrap();
            second.forward(&h).unwrap()
        })
        .collect()
}

fn quantized(d: &Dense, bits: u32, g: WeightGranularity) -> Dense {
    d.with_weights(fake_quantize_weights(&d.w, d.out, d.inp, bits, g).unwrap()).unwrap()
}

#[test]
fn cle_raises_per_tensor_sqnr_and_keeps_the_function() {
    let mut rng = Rng::new(2019);
    // The first layer's output channels spread over 100x (0.01 .. 1) and the second layer reads
    // them with the inverse spread, as after folding a BatchNorm with uneven scales: every
    // channel matters to the output as much as the others, and per-tensor quantization of either
    // layer drowns the small channels.
    let (c, inp, out) = (32, 24, 16);
    let spread = |o: usize| 0.01f32 * 100f32.powf(o as f32 / (c - 1) as f32);
    let first = random_dense(&mut rng, c, inp, |o, _| spread(o));
    let second = random_dense(&mut rng, out, c, |_, i| 0.01 / spread(i));
    let xs = inputs(&mut rng, 256, inp);
    for act in [Activation::Relu, Activation::ReluClip(6.0)] {
        let fp32 = run2(&first, act, None, &second, &xs);
        let e = equalize_pair(&Layer::linear(first.clone()), act, &Layer::linear(second.clone())).unwrap();
        let clip = e.clip.as_deref();
        let fp32_after = run2(&e.first.dense, act, clip, &e.second.dense, &xs);
        let max_change =
            fp32.iter().zip(&fp32_after).map(|(a, b)| (a - b).abs() / a.abs().max(1.0)).fold(0f32, f32::max);
        assert!(max_change < 1e-5, "{act:?}: equalization changed the fp32 output by {max_change}");
        let q = |a: &Dense, b: &Dense, clip| {
            run2(
                &quantized(a, 8, WeightGranularity::PerTensor),
                act,
                clip,
                &quantized(b, 8, WeightGranularity::PerTensor),
                &xs,
            )
        };
        let before = sqnr_db(&fp32, &q(&first, &second, None)).unwrap();
        let after = sqnr_db(&fp32, &q(&e.first.dense, &e.second.dense, clip)).unwrap();
        let per_channel = sqnr_db(
            &fp32,
            &run2(
                &quantized(&first, 8, WeightGranularity::PerChannel),
                act,
                None,
                &quantized(&second, 8, WeightGranularity::PerChannel),
                &xs,
            ),
        )
        .unwrap();
        println!(
            "CLE {act:?}: per-tensor int8 SQNR {before:.2} dB -> {after:.2} dB (+{:.2} dB); per-channel without CLE {per_channel:.2} dB; fp32 change {max_change:e}",
            after - before
        );
        assert!(after - before > 20.0, "{act:?}: CLE gained only {:.2} dB", after - before);
    }
}

#[test]
fn bias_correction_removes_the_mean_output_shift() {
    let mut rng = Rng::new(2020);
    let (inp, out) = (64, 32);
    let layer = random_dense(&mut rng, out, inp, |_, _| 0.3);
    // Inputs with a non-zero mean (post-ReLU activations): the weight error then shifts outputs.
    let xs: Vec<Vec<f32>> =
        (0..2000).map(|_| (0..inp).map(|_| (rng.normal() as f32 + 0.8).max(0.0)).collect()).collect();
    let wq = fake_quantize_weights(&layer.w, out, inp, 4, WeightGranularity::PerTensor).unwrap();
    let mean_x = input_mean(&xs, inp).unwrap();
    let b = corrected_bias(&layer, &wq, &mean_x).unwrap();
    let shifted = layer.with_weights(wq.clone()).unwrap();
    let corrected = Dense::new(out, inp, wq, b).unwrap();
    let mean_shift = |q: &Dense| {
        let mut s = vec![0f64; out];
        for x in &xs {
            let (y, yq) = (layer.forward(x).unwrap(), q.forward(x).unwrap());
            for o in 0..out {
                s[o] += (yq[o] - y[o]) as f64 / xs.len() as f64;
            }
        }
        s.iter().map(|v| v.abs()).sum::<f64>() / out as f64
    };
    let (before, after) = (mean_shift(&shifted), mean_shift(&corrected));
    println!("bias correction (4-bit per-tensor): mean |output shift| {before:.3e} -> {after:.3e}");
    assert!(after < 1e-4 * before.max(1e-3) + 1e-5, "{before} -> {after}");
    assert!(before > 1e-3, "the network does not show a shift to correct ({before})");
}

#[test]
fn adaround_beats_round_to_nearest_on_the_layer_output() {
    let mut rng = Rng::new(2021);
    let (inp, out) = (16, 8);
    let layer = random_dense(&mut rng, out, inp, |_, _| 0.5);
    // Correlated inputs: the rounding errors of a row then interact.
    let xs: Vec<Vec<f32>> = (0..256)
        .map(|_| {
            let common = rng.normal() as f32;
            (0..inp).map(|_| common + 0.3 * rng.normal() as f32).collect()
        })
        .collect();
    let scales = symmetric_scales(&layer.w, out, inp, 4, WeightGranularity::PerChannel).unwrap();
    let r = adaround(&layer, &scales, 4, &xs, &AdaRoundConfig::PAPER).unwrap();
    println!(
        "AdaRound 4-bit per-channel: output MSE {:.4e} (nearest) -> {:.4e} ({:.1}x lower), {} of {} weights flipped",
        r.mse_nearest,
        r.mse_adaround,
        r.mse_nearest / r.mse_adaround,
        r.flipped,
        out * inp
    );
    assert!(r.mse_adaround < 0.8 * r.mse_nearest, "{} vs {}", r.mse_adaround, r.mse_nearest);
    // Deterministic.
    assert_eq!(adaround(&layer, &scales, 4, &xs, &AdaRoundConfig::PAPER).unwrap(), r);
}

#[test]
fn mixed_precision_respects_the_budget_and_beats_uniform_bits() {
    let mut rng = Rng::new(2002);
    // Four layers of one chain; layer 1's weights have outliers (sensitive at low bits).
    let dims = [(32, 32), (32, 32), (32, 32), (16, 32)];
    let layers: Vec<Dense> = dims
        .iter()
        .enumerate()
        .map(|(l, &(o, i))| {
            let mut d = random_dense(&mut rng, o, i, |_, _| 0.25);
            if l == 1 {
                d.w[5] = 12.0;
                d.w[77] = -10.0;
            }
            d
        })
        .collect();
    let xs = inputs(&mut rng, 128, 32);
    let run = |ls: &[Dense]| -> Vec<f32> {
        xs.iter()
            .flat_map(|x| {
                let mut h = x.clone();
                for (k, l) in ls.iter().enumerate() {
                    h = l.forward(&h).unwrap();
                    if k + 1 < ls.len() {
                        h.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                }
                h
            })
            .collect()
    };
    let fp32 = run(&layers);
    let error = |bits: &[u32]| {
        let q: Vec<Dense> =
            layers.iter().zip(bits).map(|(d, &b)| quantized(d, b, WeightGranularity::PerTensor)).collect();
        let y = run(&q);
        fp32.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / fp32.len() as f64
    };
    let names: Vec<String> = (0..layers.len()).map(|l| format!("layer{l}")).collect();
    let params: Vec<u64> = layers.iter().map(|d| d.w.len() as u64).collect();
    let sens = sensitivity(&names, &params, &[3, 4, 5, 6, 8], |l, b| {
        let mut bits = vec![16; layers.len()];
        bits[l] = b;
        Ok(error(&bits))
    })
    .unwrap();
    let uniform4: u64 = params.iter().map(|p| p * 4).sum();
    let a = allocate(&sens, uniform4).unwrap();
    let (mixed, uniform) = (error(&a.bits), error(&[4; 4]));
    println!(
        "mixed precision at the size of uniform 4-bit ({uniform4} bits): bits {:?} ({} bits), output MSE {mixed:.4e} vs uniform 4-bit {uniform:.4e}",
        a.bits, a.size_bits
    );
    assert!(a.size_bits <= uniform4);
    assert!(mixed < uniform, "{mixed} vs {uniform}");
}
