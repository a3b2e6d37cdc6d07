//! PyTorch's min/max observers: `MinMaxObserver`, `MovingAverageMinMaxObserver`,
//! `PerChannelMinMaxObserver`, `MovingAveragePerChannelMinMaxObserver` (PyTorch 2.11).

use super::{check_same_config, empty_observer_qparams, per_axis_params, per_tensor_params, unobserved};
use crate::calibrate::{ChannelObserver, NonFinitePolicy, Observer, Range};
use crate::choose_params::{torch_observer_qparams, ScaleZeroPoint, TorchObserverConfig};
use crate::error::{QuantError, Result};
use crate::quant_params::QuantParams;
use crate::scheme::{Axis, QType};

/// PyTorch's default `averaging_constant`.
pub const DEFAULT_AVERAGING_CONSTANT: f64 = 0.01;

/// `MinMaxObserver.__init__` refuses `reduce_range` with a symmetric quint8 scheme
/// ("Cannot reduce range for symmetric quantization for quint8"); so do its subclasses and the
/// per-channel observers.
fn check_minmax_config(cfg: &TorchObserverConfig) -> Result<()> {
    cfg.code_range()?;
    if cfg.symmetry.is_symmetric() && cfg.reduce_range.is_reduced() && cfg.dtype == QType::U8 {
        return Err(QuantError::Unsupported {
            what: "reduce_range with a symmetric quint8 scheme (PyTorch's min/max observers refuse it)".into(),
        });
    }
    Ok(())
}

/// The averaging constant's domain is `(0, 1]`: the moving average `m + c (x - m)` moves toward
/// the batch's value by the fraction `c`. PyTorch accepts any float; outside `(0, 1]` the average
/// overshoots, diverges or never moves, so it is refused here
/// ([`QuantError::OutOfDomain`]). Returned as PyTorch applies it: rounded to f32.
fn check_averaging_constant(c: f64) -> Result<f32> {
    let c32 = c as f32;
    if !(c32 > 0.0 && c32 <= 1.0) {
        return Err(QuantError::OutOfDomain { what: "averaging_constant", value: c, domain: "(0, 1]" });
    }
    Ok(c32)
}

/// `min(a, b)` keeping `a` unless `b` is strictly smaller (so the result never depends on which
/// of two equal zeros came first).
fn lesser(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

fn greater(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// `torch.aminmax` of a batch after the non-finite policy; `None` when nothing is left.
fn batch_minmax(x: &[f32], policy: NonFinitePolicy) -> Result<Option<(f32, f32)>> {
    if x.is_empty() {
        return Ok(None);
    }
    let x = policy.filter(x)?;
    if x.is_empty() {
        return Ok(None);
    }
    Ok(Some(x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lesser(lo, v), greater(hi, v)))))
}

/// The EMA step `m + c * (cur - m)`, three f32 operations as PyTorch's tensor expression
/// `min_val + self.averaging_constant * (min_val_cur - min_val)` (the Python float `c` is
/// rounded to f32 by the tensor multiplication). `cur - m` overflows f32 when the two are more
/// than `f32::MAX` apart; PyTorch then stores an infinity (and returns an infinite or NaN scale
/// later). That is refused here with [`QuantError::Overflow`], before the state changes.
fn ema(m: f32, c: f32, cur: f32) -> Result<f32> {
    let v = m + c * (cur - m);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(QuantError::Overflow { what: "moving average", detail: format!("{m} + {c} * ({cur} - {m}) overflows f32") })
    }
}

/// The accessors the two per-tensor observers share (`cfg`, `policy`, `min`, `max` fields).
macro_rules! per_tensor_accessors {
    ($t:ty) => {
        impl $t {
            /// Sets what happens to NaN and infinities.
            pub fn with_policy(mut self, policy: NonFinitePolicy) -> $t {
                self.policy = policy;
                self
            }

            pub fn config(&self) -> &TorchObserverConfig {
                &self.cfg
            }

            /// PyTorch's `min_val` buffer (`+inf` before any data).
            pub fn min_val(&self) -> f32 {
                self.min
            }

            /// PyTorch's `max_val` buffer (`-inf` before any data).
            pub fn max_val(&self) -> f32 {
                self.max
            }

            pub fn is_empty(&self) -> bool {
                self.min == f32::INFINITY && self.max == f32::NEG_INFINITY
            }

            /// `calculate_qparams()`: the scale and zero point PyTorch computes (its default
            /// `s = 1, z = 0` before any data).
            pub fn scale_zero_point(&self) -> Result<ScaleZeroPoint> {
                if self.is_empty() {
                    return Ok(empty_observer_qparams());
                }
                torch_observer_qparams(self.min, self.max, &self.cfg)
            }

            /// `calculate_qparams()` as ready per-tensor parameters, with the code range
            /// PyTorch quantizes with (see [`super::TorchObserverConfig`] and the module docs).
            pub fn quant_params(&self) -> Result<QuantParams> {
                per_tensor_params(&self.cfg, self.scale_zero_point()?)
            }
        }
    };
}

/// The accessors the two per-channel observers share (a `state: ChannelState` field).
macro_rules! per_channel_accessors {
    ($t:ty) => {
        impl $t {
            /// Sets what happens to NaN and infinities.
            pub fn with_policy(mut self, policy: NonFinitePolicy) -> $t {
                self.state.policy = policy;
                self
            }

            pub fn config(&self) -> &TorchObserverConfig {
                &self.state.cfg
            }

            /// The channel axis as given (negative counts from the back of each batch's shape).
            pub fn ch_axis(&self) -> Axis {
                self.state.ch_axis
            }

            /// PyTorch's `min_val` buffer: one value per channel, empty before any data.
            pub fn min_val(&self) -> &[f32] {
                &self.state.min
            }

            pub fn max_val(&self) -> &[f32] {
                &self.state.max
            }

            /// `calculate_qparams()`, one pair per channel (PyTorch's single `s = 1, z = 0`
            /// before any data; a channel that never saw a finite value, possible only under
            /// [`NonFinitePolicy::Skip`], also gets `s = 1, z = 0`).
            pub fn scale_zero_points(&self) -> Result<Vec<ScaleZeroPoint>> {
                self.state.scale_zero_points()
            }

            /// `calculate_qparams()` as ready per-axis parameters along [`Self::ch_axis`] (per
            /// tensor `s = 1, z = 0` before any data, as PyTorch).
            pub fn quant_params(&self) -> Result<QuantParams> {
                let pairs = self.scale_zero_points()?;
                if self.state.min.is_empty() {
                    return per_tensor_params(&self.state.cfg, pairs[0]);
                }
                per_axis_params(&self.state.cfg, self.state.ch_axis, &pairs)
            }
        }
    };
}

/// `MinMaxObserver`: the running minimum and maximum.
///
/// ```text
/// min = min(min, min(x)), max = max(max, max(x))     (+inf / -inf before data)
/// ```
/// Parameters: [`torch_observer_qparams`]`(min, max)`, or PyTorch's default `s = 1, z = 0`
/// before any data. Merging is exact: observing A then B gives the same state, bit for bit, as
/// merging an observer of A with an observer of B.
///
/// Non-finite values: PyTorch's `aminmax` propagates NaN into the state (and infinities into the
/// range), after which its scale is NaN or infinite. [`NonFinitePolicy::Error`] rejects them;
/// [`NonFinitePolicy::Skip`] ignores them.
#[derive(Debug, Clone, PartialEq)]
pub struct MinMaxObserver {
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    min: f32,
    max: f32,
}

impl MinMaxObserver {
    pub fn new(cfg: TorchObserverConfig) -> Result<MinMaxObserver> {
        check_minmax_config(&cfg)?;
        Ok(MinMaxObserver { cfg, policy: NonFinitePolicy::Error, min: f32::INFINITY, max: f32::NEG_INFINITY })
    }
}

per_tensor_accessors!(MinMaxObserver);

impl Observer for MinMaxObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        if let Some((lo, hi)) = batch_minmax(x, self.policy)? {
            self.min = lesser(self.min, lo);
            self.max = greater(self.max, hi);
        }
        Ok(())
    }

    /// Exact: `min(min_a, min_b)`, `max(max_a, max_b)`.
    fn merge(&mut self, other: &MinMaxObserver) -> Result<()> {
        check_same_config("MinMaxObserver", self.cfg == other.cfg)?;
        self.min = lesser(self.min, other.min);
        self.max = greater(self.max, other.max);
        Ok(())
    }

    fn range(&self) -> Result<Range> {
        if self.is_empty() {
            return Err(unobserved("MinMaxObserver"));
        }
        Range::new(self.min, self.max)
    }
}

/// `MovingAverageMinMaxObserver`: an exponential moving average of each batch's min and max.
///
/// ```text
/// first batch:  min, max = min(x), max(x)
/// later:        min = min + c * (min(x) - min),  max = max + c * (max(x) - max)   (f32, c = f32(c))
/// ```
/// `c` is `averaging_constant` (PyTorch's default [`DEFAULT_AVERAGING_CONSTANT`] = 0.01). The
/// average depends on the order of the batches, so two observers **cannot be merged**:
/// [`Observer::merge`] fails with [`QuantError::Unsupported`] (there is no state from which the
/// EMA of A's batches followed by B's could be recovered).
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverageMinMaxObserver {
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    averaging_constant: f32,
    min: f32,
    max: f32,
}

impl MovingAverageMinMaxObserver {
    pub fn new(cfg: TorchObserverConfig, averaging_constant: f64) -> Result<MovingAverageMinMaxObserver> {
        check_minmax_config(&cfg)?;
        Ok(MovingAverageMinMaxObserver {
            cfg,
            policy: NonFinitePolicy::Error,
            averaging_constant: check_averaging_constant(averaging_constant)?,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        })
    }

    /// The averaging constant as PyTorch applies it (rounded to f32).
    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
    }
}

per_tensor_accessors!(MovingAverageMinMaxObserver);

impl Observer for MovingAverageMinMaxObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        if let Some((lo, hi)) = batch_minmax(x, self.policy)? {
            if self.is_empty() {
                self.min = lo;
                self.max = hi;
            } else {
                let min = ema(self.min, self.averaging_constant, lo)?;
                let max = ema(self.max, self.averaging_constant, hi)?;
                (self.min, self.max) = (min, max);
            }
        }
        Ok(())
    }

    /// Always [`QuantError::Unsupported`]: the moving average is order-dependent.
    fn merge(&mut self, _other: &MovingAverageMinMaxObserver) -> Result<()> {
        Err(QuantError::Unsupported {
            what: "merging MovingAverageMinMaxObservers: the moving average depends on the order of the batches".into(),
        })
    }

    fn range(&self) -> Result<Range> {
        if self.is_empty() {
            return Err(unobserved("MovingAverageMinMaxObserver"));
        }
        Range::new(self.min, self.max)
    }
}

/// The per-channel minimum and maximum of one batch: `x` of `shape` reduced over every axis but
/// `ch_axis` (negative counts from the end, as in Python). Channels with no value left after
/// the policy are `(+inf, -inf)`. `None` for an empty batch (ignored before any shape check but
/// the length, as PyTorch's `numel() == 0` early return). Rank 0 and 1 are refused, as PyTorch
/// refuses them.
fn channel_minmax(
    x: &[f32],
    shape: &[usize],
    ch_axis: Axis,
    policy: NonFinitePolicy,
) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    if crate::quant_params::checked_numel(shape) != Some(x.len()) {
        return Err(QuantError::ShapeMismatch { shape: shape.to_vec(), len: x.len() });
    }
    if x.is_empty() {
        return Ok(None);
    }
    let rank = shape.len();
    if rank < 2 {
        return Err(QuantError::InvalidArgument {
            what: "per-channel observer batch",
            detail: format!(
                "shape {shape:?}: PyTorch's per-channel observers need rank >= 2 (flatten(start_dim=1) fails below)"
            ),
        });
    }
    let axis = ch_axis.resolve(rank)?;
    if policy == NonFinitePolicy::Error {
        crate::error::check_finite("batch", x)?;
    }
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut lo = vec![f32::INFINITY; channels];
    let mut hi = vec![f32::NEG_INFINITY; channels];
    for (i, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let c = (i / inner) % channels;
        lo[c] = lesser(lo[c], v);
        hi[c] = greater(hi[c], v);
    }
    Ok(Some((lo, hi)))
}

fn channel_unobserved(lo: f32, hi: f32) -> bool {
    lo == f32::INFINITY && hi == f32::NEG_INFINITY
}

/// What both per-channel observers keep: the configuration and one `[min, max]` per channel.
#[derive(Debug, Clone, PartialEq)]
struct ChannelState {
    what: &'static str,
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    ch_axis: Axis,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl ChannelState {
    fn new(what: &'static str, cfg: TorchObserverConfig, ch_axis: Axis) -> Result<ChannelState> {
        check_minmax_config(&cfg)?;
        Ok(ChannelState { what, cfg, policy: NonFinitePolicy::Error, ch_axis, min: vec![], max: vec![] })
    }

    /// The batch's per-channel extremes, `None` for an empty batch. The number of channels is
    /// fixed by the first non-empty batch; a later batch with another count is an error
    /// ([`QuantError::ParamCountMismatch`]; PyTorch would broadcast a 1-channel state and fail
    /// otherwise). The first batch is stored and `None` returned.
    fn batch(&mut self, x: &[f32], shape: &[usize]) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        let Some((lo, hi)) = channel_minmax(x, shape, self.ch_axis, self.policy)? else {
            return Ok(None);
        };
        if self.min.is_empty() {
            self.min = lo;
            self.max = hi;
            return Ok(None);
        }
        self.check_channels(lo.len())?;
        Ok(Some((lo, hi)))
    }

    fn check_channels(&self, got: usize) -> Result<()> {
        if self.min.len() == got {
            Ok(())
        } else {
            Err(QuantError::ParamCountMismatch { what: self.what, expected: self.min.len(), got })
        }
    }

    fn scale_zero_points(&self) -> Result<Vec<ScaleZeroPoint>> {
        if self.min.is_empty() {
            return Ok(vec![empty_observer_qparams()]);
        }
        self.min
            .iter()
            .zip(&self.max)
            .map(|(&lo, &hi)| {
                if channel_unobserved(lo, hi) {
                    Ok(empty_observer_qparams())
                } else {
                    torch_observer_qparams(lo, hi, &self.cfg)
                }
            })
            .collect()
    }

    fn ranges(&self) -> Result<Vec<Range>> {
        if self.min.is_empty() {
            return Err(unobserved(self.what));
        }
        self.min
            .iter()
            .zip(&self.max)
            .map(|(&lo, &hi)| if channel_unobserved(lo, hi) { Err(unobserved(self.what)) } else { Range::new(lo, hi) })
            .collect()
    }
}

/// `PerChannelMinMaxObserver`: the running minimum and maximum of each slice along `ch_axis`
/// (PyTorch permutes `ch_axis` to the front and reduces the flattened rest).
///
/// The number of channels is fixed by the first non-empty batch; a later batch with another
/// count is an error ([`QuantError::ParamCountMismatch`]). Merging is exact, channel by channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PerChannelMinMaxObserver {
    state: ChannelState,
}

impl PerChannelMinMaxObserver {
    /// `ch_axis` may be negative (from the end), PyTorch's default is 0.
    pub fn new(cfg: TorchObserverConfig, ch_axis: impl Into<Axis>) -> Result<PerChannelMinMaxObserver> {
        Ok(PerChannelMinMaxObserver { state: ChannelState::new("PerChannelMinMaxObserver", cfg, ch_axis.into())? })
    }
}

per_channel_accessors!(PerChannelMinMaxObserver);

impl ChannelObserver for PerChannelMinMaxObserver {
    fn observe(&mut self, x: &[f32], shape: &[usize]) -> Result<()> {
        if let Some((lo, hi)) = self.state.batch(x, shape)? {
            let s = &mut self.state;
            for c in 0..lo.len() {
                s.min[c] = lesser(s.min[c], lo[c]);
                s.max[c] = greater(s.max[c], hi[c]);
            }
        }
        Ok(())
    }

    /// Exact, channel by channel.
    fn merge(&mut self, other: &PerChannelMinMaxObserver) -> Result<()> {
        let (s, o) = (&mut self.state, &other.state);
        check_same_config("PerChannelMinMaxObserver", (&s.cfg, s.ch_axis) == (&o.cfg, o.ch_axis))?;
        if o.min.is_empty() {
            return Ok(());
        }
        if s.min.is_empty() {
            s.min = o.min.clone();
            s.max = o.max.clone();
            return Ok(());
        }
        s.check_channels(o.min.len())?;
        for c in 0..s.min.len() {
            s.min[c] = lesser(s.min[c], o.min[c]);
            s.max[c] = greater(s.max[c], o.max[c]);
        }
        Ok(())
    }

    fn ranges(&self) -> Result<Vec<Range>> {
        self.state.ranges()
    }
}

/// `MovingAveragePerChannelMinMaxObserver`: [`MovingAverageMinMaxObserver`]'s average, channel
/// by channel. Order-dependent, so [`ChannelObserver::merge`] fails with
/// [`QuantError::Unsupported`]. Under [`NonFinitePolicy::Skip`] a channel with no finite value
/// in a batch keeps its average (and one never observed starts at its first observed batch).
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAveragePerChannelMinMaxObserver {
    state: ChannelState,
    averaging_constant: f32,
}

impl MovingAveragePerChannelMinMaxObserver {
    /// `ch_axis` may be negative (from the end); `averaging_constant` in `(0, 1]`.
    pub fn new(
        cfg: TorchObserverConfig,
        ch_axis: impl Into<Axis>,
        averaging_constant: f64,
    ) -> Result<MovingAveragePerChannelMinMaxObserver> {
        Ok(MovingAveragePerChannelMinMaxObserver {
            state: ChannelState::new("MovingAveragePerChannelMinMaxObserver", cfg, ch_axis.into())?,
            averaging_constant: check_averaging_constant(averaging_constant)?,
        })
    }

    /// The averaging constant as PyTorch applies it (rounded to f32).
    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
    }
}

per_channel_accessors!(MovingAveragePerChannelMinMaxObserver);

impl ChannelObserver for MovingAveragePerChannelMinMaxObserver {
    fn observe(&mut self, x: &[f32], shape: &[usize]) -> Result<()> {
        let Some((lo, hi)) = self.state.batch(x, shape)? else {
            return Ok(());
        };
        let c = self.averaging_constant;
        let (mut min, mut max) = (self.state.min.clone(), self.state.max.clone());
        for k in 0..lo.len() {
            if channel_unobserved(lo[k], hi[k]) {
                continue;
            }
            if channel_unobserved(min[k], max[k]) {
                min[k] = lo[k];
                max[k] = hi[k];
            } else {
                min[k] = ema(min[k], c, lo[k])?;
                max[k] = ema(max[k], c, hi[k])?;
            }
        }
        (self.state.min, self.state.max) = (min, max);
        Ok(())
    }

    /// Always [`QuantError::Unsupported`]: the moving average is order-dependent.
    fn merge(&mut self, _other: &MovingAveragePerChannelMinMaxObserver) -> Result<()> {
        Err(QuantError::Unsupported {
            what:
                "merging MovingAveragePerChannelMinMaxObservers: the moving average depends on the order of the batches"
                    .into(),
        })
    }

    fn ranges(&self) -> Result<Vec<Range>> {
        self.state.ranges()
    }
}
