//! Accuracy: where quantization error comes from, computed on real-shaped tensors.
//!
//! Three tensors shaped like those of a small transformer (all-MiniLM-L6-v2's hidden size 384
//! and FFN width 1536), generated from a fixed seed (synthetic values, real shapes and the
//! statistical features that matter: heavy-tailed weights with channels of different
//! magnitudes, activations with a few outlier channels, skewed post-GELU activations):
//!
//! * **schemes**: each tensor under per-tensor / per-channel, symmetric (signed codes) / affine
//!   (unsigned codes), 8 / 4 bits and the three profiles' parameter rules, analysed by
//!   [`quantproof_reference::analysis::analyze`]: MSE split into round and clip error, SQNR,
//!   level utilization.
//! * **clip sweep** (seed 001): the weight tensor quantized per-tensor with a clipping threshold
//!   swept from 2% to 100% of `max|x|`: round error grows with the range, clip error shrinks,
//!   and the best threshold is far inside `max|x|` at 4 bits.
//! * **scale and zero point** (seed 004): a two-bump distribution quantized to 3 bits under
//!   several `(s, z)`, with the code counts from which the pictures are drawn.

use crate::bench::data::Rng;
use quantproof_reference::analysis::{analyze, ErrorStats};
use quantproof_reference::choose_params::quantproof_qparams;
use quantproof_reference::profile::{self, Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{quantize_codes, QuantizeRule};
use quantproof_reference::scheme::{CodeRange, QType};
use quantproof_reference::scheme::{Signedness, Symmetry};

type Result<T> = std::result::Result<T, String>;

fn err(e: quantproof_reference::QuantError) -> String {
    e.to_string()
}

/// A real-shaped test tensor.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: &'static str,
    /// What it imitates and how it was generated.
    pub what: &'static str,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// The axis its channels run along (0: rows are output channels; 1: columns are features).
    pub channel_axis: usize,
    pub x: Vec<f32>,
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x)).tanh())
}

/// The three tensors (seeded).
pub fn tensors() -> Vec<Tensor> {
    let mut r = Rng::new(0xACC0);
    // FFN weight [1536, 384]: Laplace values, per-output-channel std log-normal around 0.02.
    let (rows, cols) = (1536, 384);
    let mut w = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let std = 0.02 * (0.5 * r.normal()).exp();
        for _ in 0..cols {
            w.push(r.laplace(std / std::f64::consts::SQRT_2) as f32);
        }
    }
    // Hidden states [128, 384]: per-feature gain and bias, four outlier features at 25x.
    let (t, h) = (128, 384);
    let gains: Vec<f64> =
        (0..h).map(|c| if [17, 101, 233, 340].contains(&c) { 25.0 } else { 0.5 + r.open_unit() }).collect();
    let biases: Vec<f64> = (0..h).map(|_| 0.1 * r.normal()).collect();
    let mut a = Vec::with_capacity(t * h);
    for _ in 0..t {
        for c in 0..h {
            a.push((r.normal() * gains[c] + biases[c]) as f32);
        }
    }
    // Post-GELU FFN activations [128, 1536]: GELU of normal pre-activations (mean -0.3, std 1.2).
    let (t2, f) = (128, 1536);
    let g: Vec<f32> = (0..t2 * f).map(|_| gelu(-0.3 + 1.2 * r.normal()) as f32).collect();
    vec![
        Tensor {
            name: "ffn_weight",
            what: "FFN weight [1536 out, 384 in]: Laplace values, per-output-channel std log-normal around 0.02",
            shape: [rows, cols],
            channel_axis: 0,
            x: w,
        },
        Tensor {
            name: "hidden_states",
            what: "hidden states [128 tokens, 384 features]: normal, per-feature gain 0.5-1.5, four outlier features at gain 25",
            shape: [t, h],
            channel_axis: 1,
            x: a,
        },
        Tensor {
            name: "post_gelu",
            what: "FFN activations after GELU [128 tokens, 1536]: GELU(N(-0.3, 1.2^2)), skewed, min about -0.17",
            shape: [t2, f],
            channel_axis: 1,
            x: g,
        },
    ]
}

/// Min and max of each channel along `axis` of a `[rows, cols]` tensor.
pub fn channel_ranges(x: &[f32], shape: [usize; 2], axis: usize) -> Vec<(f32, f32)> {
    let [rows, cols] = shape;
    let n = if axis == 0 { rows } else { cols };
    let mut r = vec![(f32::INFINITY, f32::NEG_INFINITY); n];
    for (i, &v) in x.iter().enumerate() {
        let c = if axis == 0 { i / cols } else { i % cols };
        r[c] = (r[c].0.min(v), r[c].1.max(v));
    }
    r
}

/// One analysed scheme.
#[derive(Debug, Clone)]
pub struct SchemeRow {
    pub tensor: &'static str,
    pub per_channel: bool,
    pub symmetric: bool,
    pub bits: u32,
    pub profile: &'static str,
    pub range: CodeRange,
    pub stats: ErrorStats,
}

impl SchemeRow {
    pub fn scheme(&self) -> String {
        format!(
            "{} {} {}-bit",
            if self.per_channel { "per-channel" } else { "per-tensor" },
            if self.symmetric { "symmetric" } else { "affine" },
            self.bits
        )
    }
}

/// Parameters for `x` under `profile`: signed symmetric or unsigned affine codes of `bits`.
pub fn scheme_params(
    t: &Tensor,
    per_channel: bool,
    symmetric: bool,
    bits: u32,
    profile: &Profile,
) -> Result<QuantParams> {
    let qt = QType::new(bits, Signedness::signed_if(symmetric)).map_err(err)?;
    let req = QParamsRequest::new(qt, Symmetry::symmetric_if(symmetric));
    let range = profile.qparams.code_range(&req).map_err(err)?;
    if per_channel {
        let mut scales = Vec::new();
        let mut zps = Vec::new();
        for (lo, hi) in channel_ranges(&t.x, t.shape, t.channel_axis) {
            let p = profile.choose_qparams(lo, hi, &req).map_err(err)?;
            scales.push(p.scale);
            zps.push(p.zero_point);
        }
        Ok(QuantParams::per_axis(t.channel_axis, scales, zps, range))
    } else {
        let (lo, hi) = profile::min_max(&t.x).map_err(err)?;
        let p = profile.choose_qparams(lo, hi, &req).map_err(err)?;
        Ok(QuantParams::per_tensor(p.scale, p.zero_point, range))
    }
}

/// Every scheme on every tensor, under every profile.
pub fn schemes(tensors: &[Tensor]) -> Result<Vec<SchemeRow>> {
    let mut rows = Vec::new();
    for t in tensors {
        for per_channel in [false, true] {
            for symmetric in [true, false] {
                for bits in [8, 4] {
                    for p in Profile::ALL {
                        let params = scheme_params(t, per_channel, symmetric, bits, &p)?;
                        let stats = analyze(&t.x, &t.shape, &params, p.quantize).map_err(err)?;
                        rows.push(SchemeRow {
                            tensor: t.name,
                            per_channel,
                            symmetric,
                            bits,
                            profile: p.name,
                            range: params.range,
                            stats,
                        });
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// One clipping threshold of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// `alpha / max|x|`.
    pub ratio: f64,
    pub alpha: f32,
    pub scale: f32,
    pub stats: ErrorStats,
}

/// Error against the clipping threshold, symmetric narrow range, per tensor.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub tensor: &'static str,
    pub bits: u32,
    pub points: Vec<SweepPoint>,
    /// Index of the lowest MSE.
    pub best: usize,
}

/// Sweeps `alpha = ratio * max|x|` over `steps` ratios spaced geometrically from 0.02 to 1;
/// `s = alpha / qmax`, `z = 0`, codes in `[-qmax, qmax]`, ties to even after an IEEE division.
pub fn clip_sweep(t: &Tensor, bits: u32, steps: usize) -> Result<Sweep> {
    let range = QType::new(bits, Signedness::Signed).map_err(err)?.narrow_range();
    let amax = t.x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let rule = Profile::QUANTPROOF.quantize;
    let mut points = Vec::new();
    for i in 0..steps {
        let ratio = 0.02f64.powf(1.0 - i as f64 / (steps.max(2) - 1) as f64);
        let alpha = (amax as f64 * ratio) as f32;
        let scale = alpha / range.qmax() as f32;
        let p = QuantParams::per_tensor(scale, 0, range);
        let stats = analyze(&t.x, &t.shape, &p, rule).map_err(err)?;
        points.push(SweepPoint { ratio, alpha, scale, stats });
    }
    let best =
        points.iter().enumerate().min_by(|a, b| a.1.stats.mse.total_cmp(&b.1.stats.mse)).map(|(i, _)| i).unwrap_or(0);
    Ok(Sweep { tensor: t.name, bits, points, best })
}

/// One picture of how `s` and `z` place the code grid over a distribution.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    /// What the panel shows.
    pub note: &'static str,
    pub scale: f32,
    pub zero_point: i32,
    pub range: CodeRange,
    /// `(code, count)` for every code of the range.
    pub code_counts: Vec<(i32, usize)>,
    pub stats: ErrorStats,
}

impl Panel {
    /// The real value code `q` stands for, `(q - z) s`.
    pub fn value(&self, q: i32) -> f64 {
        ((q - self.zero_point) as f32 * self.scale) as f64
    }
}

/// The seed-004 data: 0.7 N(1, 0.6^2) + 0.3 N(-1.2, 0.4^2), `n` values.
pub fn two_bumps(n: usize) -> Vec<f32> {
    let mut r = Rng::new(0x5EED_0004);
    (0..n).map(|_| if r.open_unit() < 0.7 { 1.0 + 0.6 * r.normal() } else { -1.2 + 0.4 * r.normal() } as f32).collect()
}

fn panel(x: &[f32], title: String, note: &'static str, scale: f32, zero_point: i32, range: CodeRange) -> Result<Panel> {
    let p = QuantParams::per_tensor(scale, zero_point, range);
    let rule = QuantizeRule::new(Profile::QUANTPROOF.quantize.scale_op, Profile::QUANTPROOF.quantize.rounding);
    let mut q = vec![0i32; x.len()];
    quantize_codes(x, &[x.len()], &p, rule, &mut q).map_err(err)?;
    let mut counts = vec![0usize; range.levels() as usize];
    for &c in &q {
        counts[(c - range.qmin()) as usize] += 1;
    }
    let stats = analyze(x, &[x.len()], &p, rule).map_err(err)?;
    Ok(Panel {
        title,
        note,
        scale,
        zero_point,
        range,
        code_counts: counts.into_iter().enumerate().map(|(i, n)| (range.qmin() + i as i32, n)).collect(),
        stats,
    })
}

/// The seed-004 panels on `x`: min-max affine, symmetric, scale too large, scale too small,
/// zero point moved, and 4 bits for contrast.
pub fn scale_zero_point_panels(x: &[f32]) -> Result<Vec<Panel>> {
    let (lo, hi) = profile::min_max(x).map_err(err)?;
    let u3 = QType::new(3, Signedness::Unsigned).map_err(err)?.full_range();
    let s3 = QType::new(3, Signedness::Signed).map_err(err)?.narrow_range();
    let u4 = QType::U4.full_range();
    let a = quantproof_qparams(lo, hi, u3, Symmetry::Affine).map_err(err)?;
    let s = quantproof_qparams(lo, hi, s3, Symmetry::Symmetric).map_err(err)?;
    let a4 = quantproof_qparams(lo, hi, u4, Symmetry::Affine).map_err(err)?;
    let z_moved = (a.zero_point + 2).min(u3.qmax());
    Ok(vec![
        panel(
            x,
            format!("affine min-max, 3-bit [0, 7]: s = {:.3}, z = {}", a.scale, a.zero_point),
            "the grid spans [min, max]: every code is used",
            a.scale,
            a.zero_point,
            u3,
        )?,
        panel(
            x,
            format!("symmetric max|x|, 3-bit [-3, 3]: s = {:.3}, z = 0", s.scale),
            "z = 0 centres the grid on 0: codes below the data's minimum are wasted",
            s.scale,
            0,
            s3,
        )?,
        panel(
            x,
            format!("scale too large (2 s), 3-bit: s = {:.3}, z = {}", 2.0 * a.scale, a.zero_point),
            "a range twice too wide: coarser steps, codes past the data unused",
            2.0 * a.scale,
            a.zero_point,
            u3,
        )?,
        panel(
            x,
            format!("scale too small (s / 2), 3-bit: s = {:.3}, z = {}", 0.5 * a.scale, a.zero_point),
            "a range half as wide: fine steps, but both tails are clipped to the end codes",
            0.5 * a.scale,
            a.zero_point,
            u3,
        )?,
        panel(
            x,
            format!("zero point moved (z + 2), 3-bit: s = {:.3}, z = {}", a.scale, z_moved),
            "a larger z shifts the grid left by 2 s: the lower tail gains codes, the upper tail is clipped",
            a.scale,
            z_moved,
            u3,
        )?,
        panel(
            x,
            format!("affine min-max, 4-bit [0, 15]: s = {:.3}, z = {}", a4.scale, a4.zero_point),
            "one more bit halves the step and the round error's size",
            a4.scale,
            a4.zero_point,
            u4,
        )?,
    ])
}

/// A histogram of `x` over `[lo, hi)` in `bins` bins, as densities `(left, right, count / (n w))`.
pub fn density(x: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let w = (hi - lo) / bins.max(1) as f64;
    let mut counts = vec![0usize; bins.max(1)];
    for &v in x {
        let i = ((v as f64 - lo) / w).floor();
        if i >= 0.0 && (i as usize) < counts.len() {
            counts[i as usize] += 1;
        }
    }
    let n = x.len().max(1) as f64;
    counts.iter().enumerate().map(|(i, &c)| (lo + i as f64 * w, lo + (i + 1) as f64 * w, c as f64 / (n * w))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_have_their_shapes_and_features() {
        let ts = tensors();
        assert_eq!(ts.len(), 3);
        for t in &ts {
            assert_eq!(t.x.len(), t.shape[0] * t.shape[1], "{}", t.name);
            assert!(t.x.iter().all(|v| v.is_finite()));
        }
        let h = &ts[1];
        let r = channel_ranges(&h.x, h.shape, 1);
        assert!(r[17].1 > 20.0 && r[0].1 < 8.0, "{:?} {:?}", r[17], r[0]);
        let g = &ts[2];
        assert!(g.x.iter().all(|&v| v > -0.2));
    }

    #[test]
    fn per_channel_beats_per_tensor_on_the_weight_and_errors_add_up() {
        let ts = tensors();
        let rows = schemes(&ts[..1]).unwrap();
        assert_eq!(rows.len(), 2 * 2 * 2 * 3);
        let find = |pc: bool, bits: u32| {
            rows.iter()
                .find(|r| r.per_channel == pc && r.symmetric && r.bits == bits && r.profile == "quantproof")
                .unwrap()
        };
        for bits in [8, 4] {
            assert!(find(true, bits).stats.sqnr_db > find(false, bits).stats.sqnr_db + 1.0, "{bits}");
        }
        for r in &rows {
            let s = &r.stats;
            assert!((s.round_mse + s.clip_mse - s.mse).abs() <= 1e-9 * s.mse.max(1e-30), "{}", r.scheme());
        }
    }

    #[test]
    fn clip_sweep_finds_an_interior_optimum_at_4_bits() {
        let ts = tensors();
        let s = clip_sweep(&ts[0], 4, 30).unwrap();
        assert_eq!(s.points.len(), 30);
        assert!((s.points[29].ratio - 1.0).abs() < 1e-12);
        assert!(s.best > 0 && s.best < 29, "{}", s.best);
        // Round error grows with the range, clip error shrinks.
        assert!(s.points[29].stats.round_mse > s.points[0].stats.round_mse);
        assert!(s.points[29].stats.clip_mse < s.points[0].stats.clip_mse);
    }

    #[test]
    fn panels_count_every_element() {
        let x = two_bumps(20_000);
        let ps = scale_zero_point_panels(&x).unwrap();
        assert_eq!(ps.len(), 6);
        for p in &ps {
            assert_eq!(p.code_counts.iter().map(|c| c.1).sum::<usize>(), x.len(), "{}", p.title);
            assert_eq!(p.code_counts.len() as u64, p.range.levels());
        }
        // Min-max affine uses all 8 codes and clips nothing; s/2 clips.
        assert_eq!(ps[0].stats.codes_used, 8);
        assert!(ps[0].stats.clipped_fraction < 1e-3);
        assert!(ps[3].stats.clipped_fraction > 0.05);
        let d = density(&x, -4.0, 4.0, 80);
        let area: f64 = d.iter().map(|(a, b, h)| (b - a) * h).sum();
        assert!((area - 1.0).abs() < 1e-3, "{area}");
    }
}
