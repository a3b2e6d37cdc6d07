//! PyTorch's observers (`torch.ao.quantization.observer`, PyTorch 2.11), exact, streaming and
//! mergeable where the algorithm allows.
//!
//! | PyTorch | here | merge |
//! |---|---|---|
//! | `MinMaxObserver` | [`MinMaxObserver`] | exact |
//! | `MovingAverageMinMaxObserver` | [`MovingAverageMinMaxObserver`] | refused: order-dependent |
//! | `PerChannelMinMaxObserver` | [`PerChannelMinMaxObserver`] | exact |
//! | `MovingAveragePerChannelMinMaxObserver` | [`MovingAveragePerChannelMinMaxObserver`] | refused |
//! | `HistogramObserver` | [`HistogramObserver`] | exact for equal ranges, else re-binned (documented) |
//!
//! Each observer sees batches one at a time and keeps what PyTorch keeps: two floats, two per
//! channel, or `bins` floats; never the data. The arithmetic is PyTorch's, operation by
//! operation: f32 tensors, Python floats (f64) where PyTorch computes in Python, rounded to f32
//! where they meet a tensor. The scale and zero point come from
//! [`crate::choose_params::torch_observer_qparams`] under a [`TorchObserverConfig`] (dtype, symmetric
//! or affine, `reduce_range`, custom `quant_min` / `quant_max`, `eps`), with PyTorch's default
//! `s = 1, z = 0` when no data was observed.
//!
//! Every observer hands out its result two ways: `scale_zero_point()` (`scale_zero_points()`
//! per channel), the pairs exactly as `calculate_qparams()` returns them, and `quant_params()`,
//! a ready [`QuantParams`] (per tensor, or per axis along the observer's `ch_axis`) with the code
//! range PyTorch quantizes with. That range is the configuration's `[quant_min, quant_max]`,
//! except in the one configuration where PyTorch's own zero point lies outside it: a symmetric
//! `quint8` scheme with `reduce_range` (only `HistogramObserver` accepts it; the min/max
//! observers refuse it as PyTorch does) gives `[0, 127]` and zero point 128. PyTorch's
//! `quantize_per_tensor` clamps to the dtype's range `[0, 255]`, not to `[quant_min, quant_max]`,
//! so that is the range the `QuantParams` carries: the same codes PyTorch produces, never a
//! zero point that [`QuantParams::layout`] would reject.
//!
//! Empty batches are ignored (PyTorch's `numel() == 0` early return). NaN and infinity are a
//! typed error under [`NonFinitePolicy::Error`] (the default) and are dropped under
//! [`NonFinitePolicy::Skip`]. What PyTorch itself does: the min/max observers propagate NaN
//! (`aminmax`) and infinities into their state and return NaN or infinite scales;
//! `HistogramObserver` drops infinities with a warning and raises on NaN.
//!
//! Merging needs the same configuration (and bins, and channel axis); the non-finite policy
//! only governs observation, so observers with different policies merge.
//!
//! ```
//! use quantproof_reference::calibrate::{torch::MinMaxObserver, Observer};
//! use quantproof_reference::choose_params::TorchObserverConfig;
//! use quantproof_reference::scheme::{QType, RangeReduction, Symmetry};
//!
//! let config = TorchObserverConfig::new(QType::U8, Symmetry::Affine, RangeReduction::Full);
//! let mut obs = MinMaxObserver::new(config).unwrap();
//! obs.observe(&[-1.0, 0.5]).unwrap();
//! obs.observe(&[3.0]).unwrap();
//! let p = obs.quant_params().unwrap(); // ready for quantize::quantize
//! assert_eq!((p.scales[0], p.zero_points[0]), (4.0 / 255.0, 64));
//! assert_eq!(p.range, QType::U8.full_range());
//! ```

mod histogram;
mod minmax;

pub use crate::choose_params::TorchObserverConfig;
pub use histogram::{HistogramObserver, DEFAULT_BINS, MAX_BINS, SEARCH_STEP, UPSAMPLE_RATE};
pub use minmax::{
    MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver,
    DEFAULT_AVERAGING_CONSTANT,
};

use crate::choose_params::ScaleZeroPoint;
use crate::error::{QuantError, Result};
use crate::quant_params::QuantParams;
use crate::scheme::{Axis, CodeRange};

/// PyTorch's `calculate_qparams()` before any data: `tensor([1.0]), tensor([0])`.
fn empty_observer_qparams() -> ScaleZeroPoint {
    ScaleZeroPoint { scale: 1.0, zero_point: 0 }
}

/// The code range PyTorch quantizes with for zero point `z` (module docs): the configuration's
/// range, or the dtype's full range when `z` lies outside it.
fn quantize_range(cfg: &TorchObserverConfig, zero_points: &[i32]) -> Result<CodeRange> {
    let range = cfg.code_range()?;
    if zero_points.iter().all(|&z| range.contains(z as i64)) {
        return Ok(range);
    }
    let full = cfg.dtype.full_range();
    match zero_points.iter().enumerate().find(|(_, &z)| !full.contains(z as i64)) {
        None => Ok(full),
        Some((index, &z)) => Err(QuantError::ZeroPointOutOfRange {
            index,
            zero_point: z as i64,
            qmin: full.qmin() as i64,
            qmax: full.qmax() as i64,
        }),
    }
}

fn per_tensor_params(cfg: &TorchObserverConfig, p: ScaleZeroPoint) -> Result<QuantParams> {
    Ok(p.per_tensor(quantize_range(cfg, &[p.zero_point])?))
}

fn per_axis_params(cfg: &TorchObserverConfig, axis: Axis, pairs: &[ScaleZeroPoint]) -> Result<QuantParams> {
    let zero_points: Vec<i32> = pairs.iter().map(|p| p.zero_point).collect();
    let range = quantize_range(cfg, &zero_points)?;
    Ok(QuantParams::per_axis(axis, pairs.iter().map(|p| p.scale).collect(), zero_points, range))
}

fn unobserved(what: &'static str) -> QuantError {
    QuantError::EmptyInput { what }
}

fn check_same_config(what: &str, same: bool) -> Result<()> {
    if same {
        Ok(())
    } else {
        Err(QuantError::Unsupported { what: format!("merging two {what}s with different configurations") })
    }
}

/// `torch.qscheme`: symmetric or affine, per tensor or per channel.
/// (`per_channel_affine_float_qparams` is not provided.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QScheme {
    PerTensorAffine,
    PerTensorSymmetric,
    PerChannelAffine,
    PerChannelSymmetric,
}

impl QScheme {
    pub fn name(self) -> &'static str {
        match self {
            QScheme::PerTensorAffine => "per_tensor_affine",
            QScheme::PerTensorSymmetric => "per_tensor_symmetric",
            QScheme::PerChannelAffine => "per_channel_affine",
            QScheme::PerChannelSymmetric => "per_channel_symmetric",
        }
    }

    /// Parses `per_tensor_affine` (also `torch.per_tensor_affine`) and the three others.
    pub fn parse(s: &str) -> Result<QScheme> {
        let t = s.trim();
        let t = t.strip_prefix("torch.").unwrap_or(t);
        [QScheme::PerTensorAffine, QScheme::PerTensorSymmetric, QScheme::PerChannelAffine, QScheme::PerChannelSymmetric]
            .into_iter()
            .find(|q| q.name() == t)
            .ok_or_else(|| QuantError::Unsupported { what: format!("qscheme {s:?}") })
    }

    pub fn is_symmetric(self) -> bool {
        matches!(self, QScheme::PerTensorSymmetric | QScheme::PerChannelSymmetric)
    }

    pub fn is_per_channel(self) -> bool {
        matches!(self, QScheme::PerChannelAffine | QScheme::PerChannelSymmetric)
    }
}
