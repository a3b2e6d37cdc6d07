//! Calibration: turning observed data into a real range `[min, max]` (and from there, through a
//! [`crate::profile::Profile`], into a scale and zero point).
//!
//! Every calibrator is an [`Observer`]: it sees the data a batch at a time, can be merged with
//! another observer of the same configuration (so calibration runs in parallel, shard by shard),
//! uses memory bounded by its configuration (bins, channels), never by the data size, and
//! finishes into a [`Range`]. Each submodule reproduces one framework's algorithm exactly, with
//! its defaults and its quirks, and says where merging is exact and where the algorithm forbids it.
//!
//! NaN and infinity: by default an observer rejects them with a typed error
//! ([`NonFinitePolicy::Error`]); [`NonFinitePolicy::Skip`] drops them first, as PyTorch's
//! `HistogramObserver` drops infinities. An observer that saw no data, or only zeros, or one
//! value, finishes into a defined range (documented per observer), never a crash.
//!
//! | module | calibrators | follows |
//! |---|---|---|
//! | [`torch`] | MinMax, MovingAverageMinMax, PerChannelMinMax, MovingAveragePerChannelMinMax, Histogram (L2 search) | PyTorch 2.11 `torch.ao.quantization.observer` |
//! | [`onnxruntime`] | HistogramCollector: entropy, percentile (symmetric or not), distribution; ORT-compatible and exact-streaming modes | ONNX Runtime 1.32 `quantization/calibrate.py` |
//! | [`numpy_hist`] | numpy's histogram binning rule, the spec every fast histogram builder must match | numpy 2.4 `np.histogram` |
//! | [`tensorrt`] | entropy calibration: 2048 bins of \|x\|, 128 levels, KL argmin | TensorRT (GTC 2017) |
//! | [`modelopt`] | MaxCalibrator, HistogramCalibrator (entropy, mse, percentile) | NVIDIA pytorch-quantization / TensorRT-Model-Optimizer |
//! | [`aciq`] | analytic optimal clipping for Laplace and Gaussian data | Banner et al., ACIQ |
//! | [`mse`] | a plain MSE search over clipping thresholds on a histogram | quantproof's own |

use crate::error::{QuantError, Result};

pub mod torch;

/// A calibrated real range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    pub fn new(min: f32, max: f32) -> Result<Range> {
        check_range("range", min, max)?;
        Ok(Range { min, max })
    }
}

/// Fails unless `min` and `max` are finite ([`QuantError::NonFinite`] naming `what`, index 0 for
/// `min` and 1 for `max`) and `min <= max` ([`QuantError::InvalidRange`]).
pub(crate) fn check_range(what: &'static str, min: f32, max: f32) -> Result<()> {
    if !(min.is_finite() && max.is_finite()) {
        return Err(QuantError::NonFinite {
            what,
            index: if min.is_finite() { 1 } else { 0 },
            value: if min.is_finite() { max as f64 } else { min as f64 },
        });
    }
    if min > max {
        return Err(QuantError::InvalidRange { min: min as f64, max: max as f64 });
    }
    Ok(())
}

/// What an observer does with NaN and infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinitePolicy {
    /// Fail with [`QuantError::NonFinite`] naming the first offending element (the default).
    #[default]
    Error,
    /// Drop NaN and infinities before observing.
    Skip,
}

impl NonFinitePolicy {
    /// Applies the policy to a batch: the batch itself when it is all finite, the finite
    /// elements under `Skip`, an error under `Error`.
    pub fn filter<'a>(self, x: &'a [f32]) -> Result<std::borrow::Cow<'a, [f32]>> {
        match crate::error::first_non_finite(x) {
            None => Ok(std::borrow::Cow::Borrowed(x)),
            Some((index, value)) => match self {
                NonFinitePolicy::Error => Err(QuantError::NonFinite { what: "batch", index, value: value as f64 }),
                NonFinitePolicy::Skip => {
                    Ok(std::borrow::Cow::Owned(x.iter().copied().filter(|v| v.is_finite()).collect()))
                }
            },
        }
    }
}

/// A streaming calibrator for one tensor (per-tensor range).
pub trait Observer {
    /// Observes one batch (flattened).
    fn observe(&mut self, x: &[f32]) -> Result<()>;
    /// Folds in another observer's statistics, as if this observer had also seen its data.
    /// Fails with [`QuantError::Unsupported`] where the algorithm is order-dependent and cannot
    /// merge (each implementation's docs say why), or when the configurations differ.
    fn merge(&mut self, other: &Self) -> Result<()>
    where
        Self: Sized;
    /// The calibrated range.
    fn range(&self) -> Result<Range>;
}

/// A streaming calibrator with one range per channel along an axis.
pub trait ChannelObserver {
    /// Observes one batch of the given shape; the channel axis is part of the configuration.
    fn observe(&mut self, x: &[f32], shape: &[usize]) -> Result<()>;
    fn merge(&mut self, other: &Self) -> Result<()>
    where
        Self: Sized;
    /// One range per channel.
    fn ranges(&self) -> Result<Vec<Range>>;
}

pub mod aciq;
pub mod modelopt;
pub mod mse;
pub mod numpy_hist;
pub mod onnxruntime;
pub mod tensorrt;
