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
//! [`crate::qparams::torch_observer_qparams`] under a [`TorchObserverConfig`] (dtype, symmetric
//! or affine, `reduce_range`, custom `quant_min` / `quant_max`, `eps`), with PyTorch's default
//! `s = 1, z = 0` when no data was observed.
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
//! [`run_observe`] replays the golden vectors' `observe` op: an [`ObserveSpec`] (the op's
//! attributes) and the batches in order give an [`ObserveResult`] (scale, zero point, and
//! PyTorch's `min_val` / `max_val` buffers).
//!
//! ```
//! use quantproof_reference::calibrate::{torch::MinMaxObserver, Observer};
//! use quantproof_reference::qparams::TorchObserverConfig;
//! use quantproof_reference::QType;
//!
//! let mut obs = MinMaxObserver::new(TorchObserverConfig::new(QType::U8, false, false)).unwrap();
//! obs.observe(&[-1.0, 0.5]).unwrap();
//! obs.observe(&[3.0]).unwrap();
//! let p = obs.qparams().unwrap();
//! assert_eq!((p.scale, p.zero_point), (4.0 / 255.0, 64));
//! ```

mod aten;
mod histogram;
mod minmax;

pub use crate::qparams::TorchObserverConfig;
pub use histogram::{HistogramObserver, DEFAULT_BINS, MAX_BINS, SEARCH_STEP, UPSAMPLE_RATE};
pub use minmax::{
    MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver,
    DEFAULT_AVERAGING_CONSTANT,
};

use crate::calibrate::{ChannelObserver, NonFinitePolicy, Observer};
use crate::error::{QuantError, Result};
use crate::qparams::QParams;
use crate::scheme::{CodeRange, QType};

/// PyTorch's `calculate_qparams()` before any data: `tensor([1.0]), tensor([0])`.
fn empty_observer_qparams() -> QParams {
    QParams { scale: 1.0, zero_point: 0 }
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

/// Which PyTorch observer (the `observer` attribute of the golden vectors' `observe` op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchObserverKind {
    MinMax,
    MovingAverageMinMax,
    PerChannelMinMax,
    MovingAveragePerChannelMinMax,
    Histogram,
}

impl TorchObserverKind {
    /// The golden vectors' name: `minmax`, `moving_average_minmax`, `per_channel_minmax`,
    /// `moving_average_per_channel_minmax`, `histogram`.
    pub fn name(self) -> &'static str {
        match self {
            TorchObserverKind::MinMax => "minmax",
            TorchObserverKind::MovingAverageMinMax => "moving_average_minmax",
            TorchObserverKind::PerChannelMinMax => "per_channel_minmax",
            TorchObserverKind::MovingAveragePerChannelMinMax => "moving_average_per_channel_minmax",
            TorchObserverKind::Histogram => "histogram",
        }
    }

    /// Parses [`TorchObserverKind::name`] or PyTorch's class name (`MinMaxObserver`, ...).
    pub fn parse(s: &str) -> Result<TorchObserverKind> {
        use TorchObserverKind::*;
        let kinds = [MinMax, MovingAverageMinMax, PerChannelMinMax, MovingAveragePerChannelMinMax, Histogram];
        let classes = [
            "MinMaxObserver",
            "MovingAverageMinMaxObserver",
            "PerChannelMinMaxObserver",
            "MovingAveragePerChannelMinMaxObserver",
            "HistogramObserver",
        ];
        let t = s.trim();
        kinds
            .iter()
            .zip(classes)
            .find(|(k, class)| k.name() == t || *class == t)
            .map(|(k, _)| *k)
            .ok_or_else(|| QuantError::InvalidArgument { what: "observer", detail: format!("unknown observer {s:?}") })
    }

    pub fn is_per_channel(self) -> bool {
        matches!(self, TorchObserverKind::PerChannelMinMax | TorchObserverKind::MovingAveragePerChannelMinMax)
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

/// Everything that configures one PyTorch observer: the attributes of the golden vectors'
/// `observe` op, with PyTorch's defaults for the ones a case leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveSpec {
    pub observer: TorchObserverKind,
    /// `i8` is `torch.qint8`, `u8` is `torch.quint8` (see [`TorchObserverConfig`] for others).
    pub dtype: QType,
    pub qscheme: QScheme,
    pub reduce_range: bool,
    /// `quant_min` / `quant_max` when both are given.
    pub quant_range: Option<CodeRange>,
    /// PyTorch's default: `torch.finfo(torch.float32).eps`.
    pub eps: f32,
    /// Moving-average observers only; default [`DEFAULT_AVERAGING_CONSTANT`].
    pub averaging_constant: f64,
    /// Per-channel observers only; default 0; negative counts from the end.
    pub ch_axis: isize,
    /// `HistogramObserver` only; default [`DEFAULT_BINS`].
    pub bins: usize,
    pub non_finite: NonFinitePolicy,
}

impl ObserveSpec {
    /// PyTorch's defaults for everything but the four attributes every case names.
    pub fn new(observer: TorchObserverKind, dtype: QType, qscheme: QScheme, reduce_range: bool) -> ObserveSpec {
        ObserveSpec {
            observer,
            dtype,
            qscheme,
            reduce_range,
            quant_range: None,
            eps: f32::EPSILON,
            averaging_constant: DEFAULT_AVERAGING_CONSTANT,
            ch_axis: 0,
            bins: DEFAULT_BINS,
            non_finite: NonFinitePolicy::Error,
        }
    }

    /// The configuration the parameters are computed under. Fails where PyTorch's constructor
    /// does: a per-tensor observer with a per-channel scheme or the reverse.
    pub fn config(&self) -> Result<TorchObserverConfig> {
        if self.observer.is_per_channel() != self.qscheme.is_per_channel() {
            return Err(QuantError::Unsupported {
                what: format!("observer {} with qscheme {}", self.observer.name(), self.qscheme.name()),
            });
        }
        Ok(TorchObserverConfig {
            dtype: self.dtype,
            symmetric: self.qscheme.is_symmetric(),
            reduce_range: self.reduce_range,
            custom_range: self.quant_range,
            eps: self.eps,
        })
    }
}

/// What an `observe` case records: one entry per tensor (per channel for per-channel observers;
/// PyTorch's single default `[1.0] / [0]` before any data). `min_val` / `max_val` are PyTorch's
/// buffers (for `HistogramObserver` the observed range, not the searched one).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveResult {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    pub min_val: Vec<f32>,
    pub max_val: Vec<f32>,
}

fn split(params: &[QParams]) -> (Vec<f32>, Vec<i32>) {
    (params.iter().map(|p| p.scale).collect(), params.iter().map(|p| p.zero_point).collect())
}

/// Builds the observer `spec` names, feeds it `batches` in order (each `(data, shape)`,
/// row-major; per-tensor observers only check that the shape describes the data), and returns
/// `calculate_qparams()` with the `min_val` / `max_val` buffers.
pub fn run_observe(spec: &ObserveSpec, batches: &[(&[f32], &[usize])]) -> Result<ObserveResult> {
    let cfg = spec.config()?;
    let policy = spec.non_finite;
    let per_tensor = |obs: &mut dyn Observer| -> Result<()> {
        for (data, shape) in batches {
            let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if numel != Some(data.len()) {
                return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len: data.len() });
            }
            obs.observe(data)?;
        }
        Ok(())
    };
    let per_channel = |obs: &mut dyn ChannelObserver| -> Result<()> {
        for (data, shape) in batches {
            obs.observe(data, shape)?;
        }
        Ok(())
    };
    let (params, min_val, max_val) = match spec.observer {
        TorchObserverKind::MinMax => {
            let mut o = MinMaxObserver::new(cfg)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.qparams()?], vec![o.min_val()], vec![o.max_val()])
        }
        TorchObserverKind::MovingAverageMinMax => {
            let mut o = MovingAverageMinMaxObserver::new(cfg, spec.averaging_constant)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.qparams()?], vec![o.min_val()], vec![o.max_val()])
        }
        TorchObserverKind::Histogram => {
            let mut o = HistogramObserver::new(cfg, spec.bins)?.with_policy(policy);
            per_tensor(&mut o)?;
            (vec![o.qparams()?], vec![o.min_val()], vec![o.max_val()])
        }
        TorchObserverKind::PerChannelMinMax => {
            let mut o = PerChannelMinMaxObserver::new(cfg, spec.ch_axis)?.with_policy(policy);
            per_channel(&mut o)?;
            (o.qparams()?, o.min_val().to_vec(), o.max_val().to_vec())
        }
        TorchObserverKind::MovingAveragePerChannelMinMax => {
            let mut o = MovingAveragePerChannelMinMaxObserver::new(cfg, spec.ch_axis, spec.averaging_constant)?
                .with_policy(policy);
            per_channel(&mut o)?;
            (o.qparams()?, o.min_val().to_vec(), o.max_val().to_vec())
        }
    };
    let (scale, zero_point) = split(&params);
    Ok(ObserveResult { scale, zero_point, min_val, max_val })
}
