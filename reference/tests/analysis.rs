//! The theory of quantization error, proved on the reference quantizer: the 6.02 b and
//! 6.02 b + 1.76 dB rules, the exact round/clip decomposition, the bits a too-wide range wastes,
//! the round-error bound, and the diagnostics built on them.

use proptest::prelude::*;
use quantproof_reference::analysis::{self, ErrorStats};
use quantproof_reference::calibrate::Range;
use quantproof_reference::profile::{Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{fake_quantize, QuantizeRule, ScaleOp};
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::Symmetry;
use quantproof_reference::scheme::{CodeRange, QType};
use quantproof_reference::scheme::{RangeWidth, Signedness};
use quantproof_reference::QuantError;

const RULE: QuantizeRule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);
/// `20 log10(2)`: the dB one bit is worth.
const DB_PER_BIT: f64 = 6.020599913279624;
/// `10 log10(3/2)`: a full-scale sine's advantage over full-range uniform data.
const SINE_DB: f64 = 1.7609125905568124;

fn stats(x: &[f32], params: &QuantParams) -> ErrorStats {
    analysis::analyze(x, &[x.len()], params, RULE).unwrap()
}

#[test]
fn uniform_full_range_gives_6_02_db_per_bit() {
    // K points per step, evenly spaced inside each of the 2^b cells [(q - 1/2) s, (q + 1/2) s]:
    // every cell's error runs evenly over (-s/2, s/2), whose mean square is s^2/12 (1 - 1/K^2).
    // s is a power of two so every x is exact in f32.
    const K: usize = 16;
    let s = 1.0f32 / 64.0;
    let noise_deficit_db = -10.0 * (1.0 - 1.0 / (K * K) as f64).log10(); // 0.017 dB
    for b in 2..=16u32 {
        for signed in [true, false] {
            let range = QType::new(b, Signedness::signed_if(signed)).unwrap().full_range();
            let p = QuantParams::per_tensor(s, 0, range);
            let n = K << b;
            let x: Vec<f32> =
                (0..n).map(|i| ((range.qmin() as f64 - 0.5 + (i as f64 + 0.5) / K as f64) * s as f64) as f32).collect();
            let st = stats(&x, &p);
            let noise = (s as f64).powi(2) / 12.0 * (1.0 - 1.0 / (K * K) as f64);
            assert!((st.mse / noise - 1.0).abs() < 1e-9, "b = {b}: mse {} vs {noise}", st.mse);
            assert_eq!(st.level_utilization, 1.0);
            // Against the variance: 6.02 b dB. Exactly, the grid of N = K 2^b points spaced s/K
            // has variance s^2 (4^b - 1/K^2) / 12 against the noise s^2 (1 - 1/K^2) / 12.
            let k2 = 1.0 / (K * K) as f64;
            let want = 10.0 * ((4f64.powi(b as i32) - k2) / (1.0 - k2)).log10();
            assert!((st.sqnr_ac_db - want).abs() < 1e-6, "b = {b} signed = {signed}: {} vs {want}", st.sqnr_ac_db);
            assert!((st.sqnr_ac_db - DB_PER_BIT * b as f64).abs() < 2.0 * noise_deficit_db);
            if signed {
                // Against the total power the mean -s/2 adds 3 s^2 / 12: 10 log10(2^2b + 3).
                let total = 10.0 * ((4f64.powi(b as i32) - k2 + 3.0) / (1.0 - k2)).log10();
                assert!((st.sqnr_db - total).abs() < 1e-6, "b = {b}: {} vs {total}", st.sqnr_db);
            }
        }
    }
}

#[test]
fn full_scale_sine_gives_6_02_b_plus_1_76_db() {
    // A sine spanning the whole code range [qmin s, qmax s], sampled evenly in phase, against its
    // variance. The rule assumes the error is uniform over the step, which holds to 0.1 dB from 5
    // bits on; at 2 to 4 bits the few levels make the error of a sine visibly non-uniform and the
    // SQNR falls short of the rule (by 1.58, 0.57 and 0.17 dB).
    let s = 1.0f32 / 64.0;
    for b in 2..=16u32 {
        let n = (16usize << b).max(1 << 16);
        let range = QType::new(b, Signedness::Signed).unwrap().full_range();
        let p = QuantParams::per_tensor(s, 0, range);
        let centre = (range.qmin() + range.qmax()) as f64 / 2.0;
        let amp = (range.qmax() - range.qmin()) as f64 / 2.0;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let t = std::f64::consts::TAU * (i as f64 + 0.5) / n as f64 + 0.1;
                ((centre + amp * t.sin()) * s as f64) as f32
            })
            .collect();
        let st = stats(&x, &p);
        let rule = DB_PER_BIT * b as f64 + SINE_DB;
        // Measured shortfalls at 2, 3, 4 bits: 1.58, 0.57, 0.17 dB.
        let (below, above) = match b {
            2 => (1.7, 0.1),
            3 => (0.7, 0.1),
            4 => (0.25, 0.1),
            _ => (0.1, 0.1),
        };
        assert!(
            st.sqnr_ac_db > rule - below && st.sqnr_ac_db < rule + above,
            "b = {b}: {} dB vs the rule's {rule}",
            st.sqnr_ac_db
        );
        if b >= 5 {
            assert!((st.effective_bits - b as f64).abs() < 0.03, "b = {b}: {}", st.effective_bits);
        }
    }
}

fn code_range() -> impl Strategy<Value = CodeRange> {
    (2u32..=16, any::<bool>(), any::<bool>()).prop_map(|(b, signed, narrow)| {
        QType::new(b, Signedness::signed_if(signed)).unwrap().range(RangeWidth::narrow_if(narrow))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// mse = round_mse + clip_mse for any data and parameters, any scale op, any rounding mode.
    #[test]
    fn round_and_clip_errors_add_up(
        range in code_range(),
        zfrac in 0.0f64..=1.0,
        log_s in -12.0f64..4.0,
        x in prop::collection::vec(-1e4f32..1e4, 1..300),
        divide in any::<bool>(),
        mode in 0usize..5,
    ) {
        let z = (range.qmin() as f64 + zfrac * (range.qmax() - range.qmin()) as f64).round() as i32;
        let s = 2f64.powf(log_s) as f32;
        let p = QuantParams::per_tensor(s, z, range);
        let op = if divide { ScaleOp::Divide } else { ScaleOp::MultiplyByReciprocal };
        let rule = QuantizeRule::new(op, RoundingMode::DETERMINISTIC[mode]);
        let st = analysis::analyze(&x, &[x.len()], &p, rule).unwrap();
        prop_assert!((st.round_mse + st.clip_mse - st.mse).abs() <= 1e-12 * st.mse.max(f64::MIN_POSITIVE));
        prop_assert!(st.clipped_fraction >= 0.0 && st.clipped_fraction <= 1.0);
        prop_assert!(st.codes_used >= 1 && st.codes_used <= st.codes_available);
        if st.clipped_fraction == 0.0 {
            prop_assert_eq!(st.clip_mse, 0.0);
        }
        if RoundingMode::DETERMINISTIC[mode].is_nearest() {
            // Half a step, plus the float slack round_error_bound allows (at most 2^-22 |v| steps).
            prop_assert!(st.max_round_error_steps <= 0.5 + 1e-6 * (1.0 + 1e4 / s as f64), "{:?}", st);
        }
    }
}

#[test]
fn round_error_bound_holds_for_in_range_values() {
    // Sweep x across the representable interval, with extra points a few ulps around every tie,
    // for awkward scales, both scale ops and the three round-to-nearest modes.
    let range = QType::I16.full_range();
    for &s in &[0.1f32, 1.0 / 3.0, 0.0123, 1e-3, 7.5, 3.0e-7, 1234.5] {
        for z in [0, -1000, 20_000] {
            let p = QuantParams::per_tensor(s, z, range);
            let lo = (range.qmin() - z) as f64 * s as f64;
            let hi = (range.qmax() - z) as f64 * s as f64;
            let mut x = Vec::new();
            for k in 0..4000 {
                let v = lo + (hi - lo) * k as f64 / 3999.0;
                x.push(v as f32);
                // A tie near v, and its neighbours.
                let tie = (((v / s as f64).floor() + 0.5) * s as f64) as f32;
                for d in -3i32..=3 {
                    x.push(f32::from_bits((tie.to_bits() as i64 + d as i64) as u32));
                }
            }
            x.retain(|&v| (v as f64) >= lo && (v as f64) <= hi);
            for op in [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal] {
                for mode in [RoundingMode::HalfToEven, RoundingMode::HalfAwayFromZero, RoundingMode::HalfUp] {
                    let mut y = vec![0f32; x.len()];
                    fake_quantize(&x, &[x.len()], &p, QuantizeRule::new(op, mode), &mut y, None).unwrap();
                    for (&xi, &yi) in x.iter().zip(&y) {
                        let err = (xi as f64 - yi as f64).abs();
                        let bound = analysis::round_error_bound(xi, s);
                        assert!(err <= bound, "s = {s} z = {z} {op:?} {mode:?}: x = {xi}: |e| = {err} > {bound}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_wider_range_wastes_bits_as_predicted() {
    // Dense uniform data on [-1, 1]; symmetric 8-bit ranges k times wider. Each doubling should
    // leave one more bit unused, halve the codes used and cost 6.02 dB.
    let n = 100_000;
    let x: Vec<f32> = (0..n).map(|i| (-1.0 + 2.0 * (i as f64 + 0.5) / n as f64) as f32).collect();
    let widths = [1.0f32, 2.0, 4.0, 8.0, 16.0];
    let labels: Vec<String> = widths.iter().map(|k| format!("+-{k}")).collect();
    let ranges: Vec<(&str, Range)> =
        labels.iter().zip(&widths).map(|(l, &k)| (l.as_str(), Range::new(-k, k).unwrap())).collect();
    let req = QParamsRequest::new(QType::I8, Symmetry::Symmetric);
    let rows = analysis::compare_ranges(&x, &[n], &ranges, &Profile::QUANTPROOF, &req).unwrap();
    let base = &rows[0].stats;
    for (row, &k) in rows.iter().zip(&widths) {
        let usage = analysis::level_usage(&x, &[n], &row.params, Profile::QUANTPROOF.quantize).unwrap();
        let bits = (k as f64).log2();
        let predicted =
            analysis::predicted_unused_bits(Range::new(-1.0, 1.0).unwrap(), Range::new(-k, k).unwrap()).unwrap();
        assert!((predicted - bits).abs() < 1e-12);
        // Codes spanned: 2 * 127 / k + 1, so unused bits = log2(255 / (254 / k + 1)) ~ log2 k.
        assert!((usage.unused_bits - bits).abs() < 0.1, "k = {k}: {} unused bits", usage.unused_bits);
        assert!(
            (row.stats.level_utilization - 1.0 / k as f64).abs() < 0.01,
            "k = {k}: {}",
            row.stats.level_utilization
        );
        assert_eq!(row.stats.clip_mse, 0.0);
        let lost = base.sqnr_db - row.stats.sqnr_db;
        assert!((lost - DB_PER_BIT * bits).abs() < 0.1, "k = {k}: lost {lost} dB");
        // The error is rounding only, s^2/12 with s = k/127.
        let s = k as f64 / 127.0;
        assert!((row.stats.round_mse / (s * s / 12.0) - 1.0).abs() < 0.02);
    }
    assert_eq!(analysis::best_by_mse(&rows).unwrap().label, "+-1");
    // Too narrow a range clips instead: best is not the narrowest.
    let narrow = [("+-0.25", Range::new(-0.25, 0.25).unwrap()), ("+-1", Range::new(-1.0, 1.0).unwrap())];
    let rows = analysis::compare_ranges(&x, &[n], &narrow, &Profile::QUANTPROOF, &req).unwrap();
    assert!(rows[0].stats.clip_mse > 100.0 * rows[0].stats.round_mse);
    assert_eq!(analysis::best_by_mse(&rows).unwrap().label, "+-1");
}

#[test]
fn per_channel_rescues_the_small_channel() {
    // Weights [4 output channels, 64]: channel 2 is 100x smaller than the others.
    let (c, k) = (4usize, 64usize);
    let mags = [1.0f32, 0.8, 0.01, 1.2];
    let x: Vec<f32> =
        (0..c * k).map(|i| mags[i / k] * ((i as f32 * 0.731).sin() + 0.3 * (i as f32 * 2.1).cos())).collect();
    let req = QParamsRequest::new(QType::I8, Symmetry::Symmetric);
    let cmp = analysis::compare_granularity(&x, &[c, k], 0, &Profile::TORCH, &req).unwrap();
    assert_eq!(cmp.per_tensor_channels.len(), c);
    assert!(cmp.sqnr_gain_db() > 0.0, "{}", cmp.sqnr_gain_db());
    let small_t = &cmp.per_tensor_channels[2];
    let small_c = &cmp.per_channel_channels[2];
    // Per tensor the small channel sees a step sized for magnitude 1.2: a couple of codes only.
    assert!(small_t.codes_used <= 5, "{small_t:?}");
    assert!(small_t.sqnr_db < 10.0, "{small_t:?}");
    assert!(small_c.sqnr_db > small_t.sqnr_db + 30.0, "{} vs {}", small_c.sqnr_db, small_t.sqnr_db);
    // The big channels barely change.
    for ch in [0, 1, 3] {
        assert!((cmp.per_tensor_channels[ch].sqnr_db - cmp.per_channel_channels[ch].sqnr_db).abs() < 6.0);
    }
    // analyze_per_channel with explicit parameters agrees with the comparison.
    let again =
        analysis::analyze_per_channel(&x, &[c, k], 0, &cmp.per_channel.params, Profile::TORCH.quantize).unwrap();
    assert_eq!(again, cmp.per_channel_channels);
}

#[test]
fn bit_sweep_gains_6_db_per_bit() {
    // A smooth signal with min-max ranges: once the step is small against the signal's
    // variation (from about 6 bits here) the noise is uniform and each bit buys 6.02 dB.
    let n = 50_000;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let t = (i as f64 + 0.5) / n as f64;
            (3.0 * (t * 37.7).sin() * (t * 5.1).cos() + 0.5 * (t * 911.0).sin()) as f32
        })
        .collect();
    let req = QParamsRequest::new(QType::I8, Symmetry::Symmetric);
    let rows = analysis::bit_sweep(&x, &[n], 2..=16, None, &Profile::QUANTPROOF, &req).unwrap();
    assert_eq!(rows.iter().map(|r| r.bits).collect::<Vec<_>>(), (2..=16).collect::<Vec<_>>());
    for w in rows.windows(2) {
        let gain = w[1].stats.sqnr_db - w[0].stats.sqnr_db;
        assert!(gain > 3.0, "{} -> {} bits: {gain} dB", w[0].bits, w[1].bits);
        if w[0].bits >= 6 {
            assert!((gain - DB_PER_BIT).abs() < 0.15, "{} -> {} bits: {gain} dB", w[0].bits, w[1].bits);
        }
        assert_eq!(w[1].usage.codes_available, 2 * w[0].usage.codes_available);
    }
    let slope = (rows[14].stats.sqnr_db - rows[6].stats.sqnr_db) / 8.0;
    assert!((slope - DB_PER_BIT).abs() < 0.03, "8 to 16 bits: {slope} dB per bit");
    // Min-max parameters never clip.
    assert!(rows.iter().all(|r| r.stats.clip_mse == 0.0));
    // Per channel works too, and errors are typed.
    let per_ch = analysis::bit_sweep(&x, &[100, 500], 4..=8, Some(0.into()), &Profile::QUANTPROOF, &req).unwrap();
    assert_eq!(per_ch.len(), 5);
    assert_eq!(per_ch[0].params.scales.len(), 100);
    assert!(matches!(
        analysis::bit_sweep(&x, &[n], 1..=4, None, &Profile::QUANTPROOF, &req),
        Err(QuantError::BitWidthOutOfRange { bits: 1 })
    ));
    assert!(matches!(
        analysis::bit_sweep(&x, &[n], 3..=3, None, &Profile::ONNXRUNTIME, &req),
        Err(QuantError::Unsupported { .. })
    ));
    let fixed = req.with_range(CodeRange::new(-8, 7).unwrap());
    assert!(matches!(
        analysis::bit_sweep(&x, &[n], 4..=8, None, &Profile::QUANTPROOF, &fixed),
        Err(QuantError::InvalidArgument { .. })
    ));
    assert!(matches!(
        analysis::bit_sweep(&[1.0, f32::NAN], &[2], 4..=8, None, &Profile::QUANTPROOF, &req),
        Err(QuantError::NonFinite { .. })
    ));
}
