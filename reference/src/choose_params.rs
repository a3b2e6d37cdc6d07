//! Choosing a scale and zero point from a real range `[rmin, rmax]`.
//!
//! Every framework has its own formula, and they disagree in ways that matter (the precision of
//! the arithmetic, how ties of the zero point round, what happens to an empty range, which
//! zero point a symmetric unsigned scheme gets). Each function here reproduces one framework's
//! rule *operation by operation*, in the precision that framework uses; a
//! [`crate::profile::Profile`] picks one. All of them first widen the range to contain 0, so that
//! the real value 0 has an exact code (zero padding, ReLU).
//!
//! Inputs must be finite and `rmin <= rmax`; anything else is a typed error (the frameworks would
//! silently return NaN or infinite scales).

use crate::error::{QuantError, Result};
use crate::scheme::{CodeRange, QType, RangeReduction, Symmetry};

/// One scale and one zero point: what a range rule chooses. A quantize call takes a
/// [`crate::QuantParams`] ([`ScaleZeroPoint::per_tensor`] makes one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleZeroPoint {
    pub scale: f32,
    pub zero_point: i32,
}

impl ScaleZeroPoint {
    /// Per-tensor [`QuantParams`](crate::QuantParams) with this pair and the code range it was
    /// chosen for.
    pub fn per_tensor(self, range: CodeRange) -> crate::QuantParams {
        crate::QuantParams::per_tensor(self.scale, self.zero_point, range)
    }
}

fn check_range(rmin: f32, rmax: f32) -> Result<()> {
    for (index, v) in [rmin, rmax].into_iter().enumerate() {
        if !v.is_finite() {
            return Err(QuantError::NonFinite { what: "range [rmin, rmax]", index, value: v as f64 });
        }
    }
    if rmin > rmax {
        return Err(QuantError::InvalidRange { min: rmin as f64, max: rmax as f64 });
    }
    Ok(())
}

fn check_contains_zero(qmin: i32, qmax: i32) -> Result<()> {
    if qmin > 0 || qmax < 0 {
        return Err(QuantError::InvalidArgument {
            what: "code range",
            detail: format!("[{qmin}, {qmax}] must contain 0 to choose parameters from a real range"),
        });
    }
    Ok(())
}

/// Checks a scale computed from the data range `[lo, hi]`; the error names that range (the user
/// gave no scale): a range too wide makes `(hi - lo) / levels` overflow f32.
fn finite_scale(scale: f32, lo: f64, hi: f64) -> Result<f32> {
    crate::quant_params::check_scale(0, scale).map(|_| scale).map_err(|_| QuantError::InvalidArgument {
        what: "data range",
        detail: format!(
            "[{:e}, {:e}] gives the scale {scale:e}, which no kernel can use: the range is too wide \
             (or too narrow) for a finite, normal f32 scale",
            lo as f32, hi as f32
        ),
    })
}

/// ONNX Runtime's `onnxruntime.quantization.quant_utils.compute_scale_zp` (1.32).
///
/// ```text
/// rmin' = min(rmin, 0), rmax' = max(rmax, 0)                      (f32)
/// if min_real_range: rmax' = max(rmax', rmin' + min_real_range)   (f32)
/// if symmetric: a = max(|rmin'|, |rmax'|); rmin' = -a; rmax' = a
/// s64 = (f64(rmax') - f64(rmin')) / (f64(qmax) - f64(qmin))
/// if s64 < f32::MIN_POSITIVE:  s = 1, z = 0
/// else s = f32(s64) (round to nearest), and
///      z = round_half_even((qmin + qmax) / 2)          symmetric (uint8 [0, 255] -> 128)
///      z = round_half_even(qmin - f64(rmin') / s64)    affine (with the f64 scale)
/// ```
/// The code range must contain 0 (ONNX Runtime raises `ValueError` otherwise).
pub fn onnxruntime_compute_scale_zp(
    rmin: f32,
    rmax: f32,
    range: CodeRange,
    symmetry: Symmetry,
    min_real_range: Option<f32>,
) -> Result<ScaleZeroPoint> {
    check_range(rmin, rmax)?;
    let (qmin, qmax) = (range.qmin(), range.qmax());
    check_contains_zero(qmin, qmax)?;
    let mut lo = rmin.min(0.0);
    let mut hi = rmax.max(0.0);
    if let Some(m) = min_real_range {
        if !m.is_finite() {
            return Err(QuantError::NonFinite { what: "min_real_range", index: 0, value: m as f64 });
        }
        hi = hi.max(lo + m);
    }
    if symmetry.is_symmetric() {
        let a = lo.abs().max(hi.abs());
        lo = -a;
        hi = a;
    }
    let scale = (hi as f64 - lo as f64) / (qmax as f64 - qmin as f64);
    if !(scale >= f32::MIN_POSITIVE as f64) {
        // Also taken when qmin == qmax (x/0 or 0/0), where ONNX Runtime would produce an infinite
        // or NaN scale: we return s = 1, z = 0 instead of a scale no kernel can use.
        return Ok(ScaleZeroPoint { scale: 1.0, zero_point: 0 });
    }
    let zero_point = if symmetry.is_symmetric() {
        ((qmin as f64 + qmax as f64) / 2.0).round_ties_even()
    } else {
        (qmin as f64 - lo as f64 / scale).round_ties_even()
    };
    Ok(ScaleZeroPoint {
        scale: finite_scale(scale as f32, lo as f64, hi as f64)?,
        zero_point: range.clamp_f64(zero_point) as i32,
    })
}

/// ONNX `DynamicQuantizeLinear`'s parameters from the data's min and max (uint8, `[0, 255]`),
/// all in f32 as ONNX Runtime computes them:
///
/// ```text
/// lo = min(min, 0), hi = max(max, 0)
/// s = hi == lo ? 1 : (hi - lo) / 255
/// z = round_half_even(clamp(0 - lo / s, 0, 255))
/// ```
pub fn onnxruntime_dynamic_qparams(min: f32, max: f32) -> Result<ScaleZeroPoint> {
    check_range(min, max)?;
    let lo = min.min(0.0);
    let hi = max.max(0.0);
    let scale = if hi == lo { 1.0 } else { (hi - lo) / 255.0 };
    let scale = finite_scale(scale, lo as f64, hi as f64)?;
    let z = (0.0f32 - lo / scale).clamp(0.0, 255.0).round_ties_even();
    Ok(ScaleZeroPoint { scale, zero_point: z as i32 })
}

/// The knobs of a PyTorch observer that decide its parameters
/// (`torch.ao.quantization.observer.UniformQuantizationObserverBase`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TorchObserverConfig {
    /// `torch.qint8` is [`QType::I8`], `torch.quint8` is [`QType::U8`], `torch.int16` /
    /// `torch.uint16` are [`QType::I16`] / [`QType::U16`]; other widths use their full range as
    /// a customized range of qint8 / quint8.
    pub dtype: QType,
    /// `per_tensor_symmetric` / `per_channel_symmetric`, or the affine schemes.
    pub symmetry: Symmetry,
    pub reduce_range: RangeReduction,
    /// `quant_min` / `quant_max` when both were given (`has_customized_qrange`).
    pub custom_range: Option<CodeRange>,
    /// Smallest scale; PyTorch's default is `torch.finfo(torch.float32).eps` = 2^-23.
    pub eps: f32,
}

impl TorchObserverConfig {
    pub fn new(dtype: QType, symmetry: Symmetry, reduce_range: RangeReduction) -> TorchObserverConfig {
        TorchObserverConfig { dtype, symmetry, reduce_range, custom_range: None, eps: f32::EPSILON }
    }

    /// `torch.ao.quantization.utils.calculate_qmin_qmax`: qint8 `[-128, 127]` (reduced
    /// `[-64, 63]`), quint8 `[0, 255]` (reduced `[0, 127]`), `torch.int16` / `torch.uint16` their
    /// full range whatever `reduce_range` says (PyTorch ignores it there); a customized range
    /// (and the full range of any other width, which PyTorch can only express as one) is halved
    /// with floor division when `reduce_range` is set.
    ///
    /// A custom range must contain 0 (PyTorch: "User-specified quantization range must include
    /// 0"); anything else is [`QuantError::InvalidArgument`].
    pub fn code_range(&self) -> Result<CodeRange> {
        if let Some(r) = self.custom_range {
            check_contains_zero(r.qmin(), r.qmax())?;
        }
        let custom = match self.custom_range {
            Some(r) => Some(r),
            None if self.dtype == QType::I8 || self.dtype == QType::U8 => None,
            None if self.dtype == QType::I16 || self.dtype == QType::U16 => return Ok(self.dtype.full_range()),
            None => Some(self.dtype.full_range()),
        };
        match custom {
            Some(r) => {
                if self.reduce_range.is_reduced() {
                    CodeRange::new(r.qmin().div_euclid(2), r.qmax().div_euclid(2))
                } else {
                    Ok(r)
                }
            }
            None => {
                let (lo, hi) = match (self.dtype == QType::I8, self.reduce_range.is_reduced()) {
                    (true, false) => (-128, 127),
                    (true, true) => (-64, 63),
                    (false, false) => (0, 255),
                    (false, true) => (0, 127),
                };
                CodeRange::new(lo, hi)
            }
        }
    }
}

/// PyTorch's observer rule (`UniformQuantizationObserverBase._calculate_qparams`, torch 2.11),
/// on f32 tensors exactly as PyTorch evaluates it:
///
/// ```text
/// lo = min(min, 0), hi = max(max, 0)                                  (f32)
/// symmetric: s = max(max(-lo, hi) / ((qmax - qmin) / 2), eps)
///            z = 0 for signed types; 2^15 for uint16; for uint8 128, or (qmin + qmax) div 2 with
///            a custom range (and for other unsigned widths, which PyTorch expresses as a custom
///            range of quint8)
/// affine:    s = max((hi - lo) / (qmax - qmin), eps)                  (f32 subtraction and division)
///            z = clamp(qmin - round_half_even(lo / s), qmin, qmax)
/// ```
/// `qmin, qmax` come from [`TorchObserverConfig::code_range`]. The symmetric unsigned zero point
/// is 128 even when `reduce_range` shrinks the range to `[0, 127]` (PyTorch's behaviour: the
/// quantize op then clamps to the dtype's full range). An observer that saw no data returns
/// `s = 1, z = 0` in PyTorch; that case belongs to the observer, not to this function.
pub fn torch_observer_qparams(min: f32, max: f32, cfg: &TorchObserverConfig) -> Result<ScaleZeroPoint> {
    check_range(min, max)?;
    let range = cfg.code_range()?;
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let lo = min.min(0.0);
    let hi = max.max(0.0);
    if cfg.symmetry.is_symmetric() {
        let a = (-lo).max(hi);
        let scale = (a / ((qmax - qmin) as f32 / 2.0)).max(cfg.eps);
        let zero_point = if cfg.dtype.is_signed() {
            0
        } else if cfg.dtype == QType::U16 {
            1 << 15
        } else if cfg.dtype == QType::U8 && cfg.custom_range.is_none() {
            128
        } else {
            (qmin + qmax).div_euclid(2)
        };
        Ok(ScaleZeroPoint { scale: finite_scale(scale, lo as f64, hi as f64)?, zero_point })
    } else {
        let scale = ((hi - lo) / (qmax - qmin) as f32).max(cfg.eps);
        let scale = finite_scale(scale, lo as f64, hi as f64)?;
        let z = qmin as i64 - (lo / scale).round_ties_even() as i64;
        Ok(ScaleZeroPoint { scale, zero_point: z.clamp(qmin as i64, qmax as i64) as i32 })
    }
}

/// The modes of [`torch_choose_quantization_params`] (its three trailing arguments in ATen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChooseOptions {
    /// Keep 0 at the centre of the range for data spanning both signs (symmetric codes).
    pub preserve_sparsity: bool,
    /// Round the scale to a power of two (down below 1, up above).
    pub force_scale_power_of_two: bool,
    /// Halve `qmin` and `qmax` (C division) first.
    pub reduce_range: RangeReduction,
}

impl ChooseOptions {
    /// Dynamic quantization's call: no sparsity, free scales, the given range reduction.
    pub fn with_reduce_range(reduce_range: RangeReduction) -> ChooseOptions {
        ChooseOptions { reduce_range, ..ChooseOptions::default() }
    }
}

/// PyTorch's `quant_utils::ChooseQuantizationParams` (ATen `QuantUtils.h`), used by dynamic
/// quantization (`quantized::linear_dynamic` picks the activation's parameters with it) and
/// documented there as identical to fbgemm's.
///
/// ```text
/// if reduce_range: qmin /= 2, qmax /= 2 (C division)
/// lo = min(min, 0), hi = max(max, 0)
/// s = (f64(hi) - lo) / (qmax - qmin); if f32(s) == 0 or 1/f32(s) == inf: s = 0.1
/// if s < 6.1e-5 (fp16's smallest normal, as f32): s = 6.1e-5 and [lo, hi] is stretched to match
/// z_min = qmin - lo / s, z_max = qmax - hi / s
/// z0 = (|qmin| - |lo / s|) < (|qmax| - |hi / s|) ? z_min : z_max
/// z = z0 < qmin ? qmin : z0 > qmax ? qmax : nearbyint(z0)   (half to even)
/// ```
/// The scale is returned as `f32(s)`, the value the quantize kernel then uses. `preserve_sparsity`
/// and power-of-two scales are the same function's other modes.
pub fn torch_choose_quantization_params(
    min: f32,
    max: f32,
    mut qmin: i32,
    mut qmax: i32,
    options: ChooseOptions,
) -> Result<ScaleZeroPoint> {
    let ChooseOptions { preserve_sparsity, force_scale_power_of_two, reduce_range } = options;
    check_range(min, max)?;
    if reduce_range.is_reduced() {
        qmin /= 2;
        qmax /= 2;
    }
    if qmin >= qmax {
        return Err(QuantError::InvalidArgument {
            what: "code range",
            detail: format!("ChooseQuantizationParams needs qmin < qmax, got [{qmin}, {qmax}]"),
        });
    }
    let (mut lo, mut hi) = (min, max);
    if lo < 0.0 && hi > 0.0 && preserve_sparsity {
        let sym_qmin = -((qmax - qmin) / 2 + 1);
        let sym_qmax = (qmax - qmin) / 2;
        let max_scale = ((lo / sym_qmin as f32).abs() as f64).max((hi / sym_qmax as f32).abs() as f64);
        lo = (max_scale * sym_qmin as f64) as f32;
        hi = (max_scale * sym_qmax as f64) as f32;
    }
    lo = lo.min(0.0);
    hi = hi.max(0.0);
    let mut scale = (hi as f64 - lo as f64) / (qmax - qmin) as f64;
    if scale as f32 == 0.0 || (1.0f32 / scale as f32).is_infinite() {
        scale = 0.1;
    }
    if force_scale_power_of_two {
        scale = if scale < 1.0 {
            1.0 / (1u64 << ((1.0 / scale).ln() / 2f64.ln()).floor().clamp(0.0, 62.0) as u32) as f64
        } else {
            (1u64 << (scale.ln() / 2f64.ln()).ceil().clamp(0.0, 62.0) as u32) as f64
        };
    }
    const SMALL_SCALE_THRESHOLD: f32 = 6.1e-5;
    if scale < SMALL_SCALE_THRESHOLD as f64 {
        let org_scale = scale as f32;
        scale = SMALL_SCALE_THRESHOLD as f64;
        if lo == 0.0 {
            hi = SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else if hi == 0.0 {
            lo = -SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else {
            let amplifier = SMALL_SCALE_THRESHOLD / org_scale;
            lo *= amplifier;
            hi *= amplifier;
        }
    }
    let z_from_min = qmin as f64 - lo as f64 / scale;
    let z_from_max = qmax as f64 - hi as f64 / scale;
    let err_min = (qmin as f64).abs() - (lo as f64 / scale).abs();
    let err_max = (qmax as f64).abs() - (hi as f64 / scale).abs();
    let mut z0 = if err_min < err_max { z_from_min } else { z_from_max };
    if lo < 0.0 && hi > 0.0 && preserve_sparsity {
        z0 = (qmin + qmax) as f64 / 2.0;
    }
    let zero_point = if z0 < qmin as f64 {
        qmin
    } else if z0 > qmax as f64 {
        qmax
    } else {
        z0.round_ties_even() as i32
    };
    Ok(ScaleZeroPoint { scale: finite_scale(scale as f32, lo as f64, hi as f64)?, zero_point })
}

/// quantproof's own rule, for users who follow no framework. It never clips the observed range
/// and represents 0 exactly:
///
/// ```text
/// lo = min(rmin, 0), hi = max(rmax, 0)
/// affine:    s = (hi - lo) / (qmax - qmin)          in f64, rounded to f32 upward
///            z = clamp(round_half_even(qmin - lo / s), qmin, qmax)
/// symmetric: z = ceil((qmin + qmax) / 2)             (0 for signed ranges, 128 for [0, 255])
///            s = max(-lo, hi) / min(qmax - z, z - qmin)   in f64, rounded to f32 upward
/// an all-zero range gives s = 1.
/// ```
/// Rounding the scale up (never down) keeps `hi / s <= qmax - z` and `lo / s >= qmin - z`, so
/// the extremes are not clipped by the scale's rounding; the zero point's rounding can still
/// move the affine extremes by up to half a step, which is the rounding error bound.
pub fn quantproof_qparams(rmin: f32, rmax: f32, range: CodeRange, symmetry: Symmetry) -> Result<ScaleZeroPoint> {
    check_range(rmin, rmax)?;
    let (qmin, qmax) = (range.qmin(), range.qmax());
    check_contains_zero(qmin, qmax)?;
    let lo = rmin.min(0.0) as f64;
    let hi = rmax.max(0.0) as f64;
    if symmetry.is_symmetric() {
        let z = (qmin + qmax).div_euclid(2) + (qmin + qmax).rem_euclid(2);
        let half = (qmax - z).min(z - qmin);
        let a = (-lo).max(hi);
        if a == 0.0 || half <= 0 {
            return Ok(ScaleZeroPoint { scale: 1.0, zero_point: z });
        }
        Ok(ScaleZeroPoint { scale: finite_scale(round_up_f32(a / half as f64), lo, hi)?, zero_point: z })
    } else {
        if hi == lo || qmax == qmin {
            return Ok(ScaleZeroPoint { scale: 1.0, zero_point: range.clamp_f64(0.0) as i32 });
        }
        let s = round_up_f32((hi - lo) / (qmax - qmin) as f64);
        let scale = finite_scale(s, lo, hi)?;
        let z = (qmin as f64 - lo / scale as f64).round_ties_even();
        Ok(ScaleZeroPoint { scale, zero_point: range.clamp_f64(z) as i32 })
    }
}

/// The smallest f32 not below `v` (for positive finite `v`).
fn round_up_f32(v: f64) -> f32 {
    let f = v as f32;
    if (f as f64) < v {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: i32, b: i32) -> CodeRange {
        CodeRange::new(a, b).unwrap()
    }

    #[test]
    fn ort_symmetric_zero_points() {
        let q = |a, b| onnxruntime_compute_scale_zp(-1.0, 2.0, r(a, b), Symmetry::Symmetric, None).unwrap().zero_point;
        assert_eq!(q(0, 255), 128);
        assert_eq!(q(-128, 127), 0);
        assert_eq!(q(0, 127), 64);
        assert_eq!(q(-8, 7), 0);
        assert_eq!(q(0, 254), 127);
        let p = onnxruntime_compute_scale_zp(0.0, 0.0, r(0, 255), Symmetry::Affine, None).unwrap();
        assert_eq!(p, ScaleZeroPoint { scale: 1.0, zero_point: 0 });
        assert!(onnxruntime_compute_scale_zp(0.0, 1.0, r(1, 255), Symmetry::Affine, None).is_err());
    }

    #[test]
    fn torch_rules() {
        let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
        let p = torch_observer_qparams(-1.0, 3.0, &cfg).unwrap();
        assert_eq!(p.scale, 4.0f32 / 255.0);
        assert_eq!(p.zero_point, 64);
        let cfg = TorchObserverConfig::new(QType::U8, Symmetry::Symmetric, RangeReduction::Full);
        assert_eq!(torch_observer_qparams(-1.0, 3.0, &cfg).unwrap().zero_point, 128);
        let cfg = TorchObserverConfig::new(QType::I8, Symmetry::Affine, RangeReduction::Reduced);
        assert_eq!(cfg.code_range().unwrap(), r(-64, 63));
        // torch.uint16 / torch.int16 ignore reduce_range; uint16's symmetric zero point is 2^15
        // (checked against PyTorch 2.11: MinMaxObserver on [-1, 3]).
        let cfg = TorchObserverConfig::new(QType::U16, Symmetry::Symmetric, RangeReduction::Full);
        assert_eq!(torch_observer_qparams(-1.0, 3.0, &cfg).unwrap().zero_point, 32768);
        let cfg = TorchObserverConfig::new(QType::I16, Symmetry::Affine, RangeReduction::Reduced);
        assert_eq!(cfg.code_range().unwrap(), r(-32768, 32767));
        assert_eq!(torch_observer_qparams(-1.0, 3.0, &cfg).unwrap().zero_point, -16384);
        let cfg = TorchObserverConfig::new(QType::U16, Symmetry::Affine, RangeReduction::Reduced);
        assert_eq!(torch_observer_qparams(-1.0, 3.0, &cfg).unwrap().zero_point, 16384);
        // A narrower unsigned type is a custom range: the zero point is its midpoint, not 128.
        let cfg = TorchObserverConfig::new(QType::U4, Symmetry::Symmetric, RangeReduction::Full);
        assert_eq!(torch_observer_qparams(-1.0, 3.0, &cfg).unwrap().zero_point, 7);
        let cfg = TorchObserverConfig {
            custom_range: Some(r(0, 15)),
            ..TorchObserverConfig::new(QType::U8, Symmetry::Symmetric, RangeReduction::Full)
        };
        let p = torch_observer_qparams(-1.0, 3.0, &cfg).unwrap();
        assert_eq!((p.scale, p.zero_point), (0.4, 7));
        // All zeros: scale falls back to eps.
        let cfg = TorchObserverConfig::new(QType::I8, Symmetry::Affine, RangeReduction::Full);
        assert_eq!(torch_observer_qparams(0.0, 0.0, &cfg).unwrap().scale, f32::EPSILON);
    }

    #[test]
    fn quantproof_rule_never_clips() {
        for (lo, hi) in [(-1.0f32, 3.0f32), (-0.3, 0.0), (0.0, 7.7), (-5.5, 5.5), (-1e-30, 1e30)] {
            for range in [QType::I8.full_range(), QType::U8.full_range(), QType::I4.narrow_range()] {
                for symmetric in [false, true] {
                    let p = quantproof_qparams(lo, hi, range, Symmetry::symmetric_if(symmetric)).unwrap();
                    let top = hi as f64 / p.scale as f64 + p.zero_point as f64;
                    let bottom = lo as f64 / p.scale as f64 + p.zero_point as f64;
                    assert!(top <= range.qmax() as f64 + 0.5, "{lo} {hi} {range:?} {symmetric} {p:?}");
                    assert!(bottom >= range.qmin() as f64 - 0.5, "{lo} {hi} {range:?} {symmetric} {p:?}");
                }
            }
        }
    }

    #[test]
    fn bad_ranges() {
        assert!(matches!(
            torch_observer_qparams(
                1.0,
                0.0,
                &TorchObserverConfig::new(QType::I8, Symmetry::Affine, RangeReduction::Full)
            ),
            Err(QuantError::InvalidRange { .. })
        ));
        assert!(matches!(onnxruntime_dynamic_qparams(f32::NAN, 0.0), Err(QuantError::NonFinite { .. })));
        assert!(matches!(
            quantproof_qparams(0.0, f32::INFINITY, QType::I8.full_range(), Symmetry::Affine),
            Err(QuantError::NonFinite { .. })
        ));
        // The f32 range overflows: PyTorch would return an infinite scale.
        assert!(matches!(
            torch_observer_qparams(
                -3e38,
                3e38,
                &TorchObserverConfig::new(QType::I8, Symmetry::Affine, RangeReduction::Full)
            ),
            Err(QuantError::InvalidArgument { what: "data range", .. })
        ));
    }

    #[test]
    fn choose_quantization_params_matches_hand_computation() {
        let p =
            torch_choose_quantization_params(-1.0, 3.0, 0, 255, ChooseOptions::with_reduce_range(RangeReduction::Full))
                .unwrap();
        assert_eq!(p.scale, (4.0f64 / 255.0) as f32);
        assert_eq!(p.zero_point, 64);
        let p = torch_choose_quantization_params(
            0.0,
            0.0,
            0,
            255,
            ChooseOptions::with_reduce_range(RangeReduction::Reduced),
        )
        .unwrap();
        assert_eq!(p.scale, 0.1);
        assert_eq!(p.zero_point, 0);
        // A tiny range is stretched to the fp16 threshold.
        let p =
            torch_choose_quantization_params(0.0, 1e-4, 0, 255, ChooseOptions::with_reduce_range(RangeReduction::Full))
                .unwrap();
        assert_eq!(p.scale, 6.1e-5);
    }
}
