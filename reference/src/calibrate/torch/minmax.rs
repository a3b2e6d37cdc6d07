//! PyTorch's min/max observers: `MinMaxObserver`, `MovingAverageMinMaxObserver`,
//! `PerChannelMinMaxObserver`, `MovingAveragePerChannelMinMaxObserver` (PyTorch 2.11).

use super::{check_same_config, empty_observer_qparams, unobserved};
use crate::calibrate::{ChannelObserver, NonFinitePolicy, Observer, Range};
use crate::choose_params::{torch_observer_qparams, ScaleZeroPoint, TorchObserverConfig};
use crate::error::{QuantError, Result};
use crate::scheme::QType;

/// PyTorch's default `averaging_constant`.
pub const DEFAULT_AVERAGING_CONSTANT: f64 = 0.01;

/// `MinMaxObserver.__init__` refuses `reduce_range` with a symmetric quint8 scheme
/// ("Cannot reduce range for symmetric quantization for quint8"); so do its subclasses and the
/// per-channel observers.
fn check_minmax_config(cfg: &TorchObserverConfig) -> Result<()> {
    cfg.code_range()?;
    if cfg.symmetric && cfg.reduce_range && cfg.dtype == QType::U8 {
        return Err(QuantError::Unsupported {
            what: "reduce_range with a symmetric quint8 scheme (PyTorch's min/max observers refuse it)".into(),
        });
    }
    Ok(())
}

fn check_averaging_constant(c: f64) -> Result<f32> {
    let c32 = c as f32;
    if !c32.is_finite() {
        return Err(QuantError::NonFinite { what: "averaging_constant", index: 0, value: c });
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
/// rounded to f32 by the tensor multiplication).
fn ema(m: f32, c: f32, cur: f32) -> f32 {
    m + c * (cur - m)
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

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> MinMaxObserver {
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

    /// `calculate_qparams()`.
    pub fn qparams(&self) -> Result<ScaleZeroPoint> {
        running_qparams(self.min, self.max, &self.cfg)
    }
}

/// `calculate_qparams()` of a running `[min, max]`: PyTorch's default before any data, its rule after.
fn running_qparams(min: f32, max: f32, cfg: &TorchObserverConfig) -> Result<ScaleZeroPoint> {
    if min == f32::INFINITY && max == f32::NEG_INFINITY {
        return Ok(empty_observer_qparams());
    }
    torch_observer_qparams(min, max, cfg)
}

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

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> MovingAverageMinMaxObserver {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &TorchObserverConfig {
        &self.cfg
    }

    /// The averaging constant as PyTorch applies it (rounded to f32).
    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
    }

    pub fn min_val(&self) -> f32 {
        self.min
    }

    pub fn max_val(&self) -> f32 {
        self.max
    }

    pub fn is_empty(&self) -> bool {
        self.min == f32::INFINITY && self.max == f32::NEG_INFINITY
    }

    /// `calculate_qparams()`.
    pub fn qparams(&self) -> Result<ScaleZeroPoint> {
        running_qparams(self.min, self.max, &self.cfg)
    }
}

impl Observer for MovingAverageMinMaxObserver {
    fn observe(&mut self, x: &[f32]) -> Result<()> {
        if let Some((lo, hi)) = batch_minmax(x, self.policy)? {
            if self.is_empty() {
                self.min = lo;
                self.max = hi;
            } else {
                self.min = ema(self.min, self.averaging_constant, lo);
                self.max = ema(self.max, self.averaging_constant, hi);
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
    ch_axis: isize,
    policy: NonFinitePolicy,
) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| QuantError::ShapeMismatch { shape: shape.to_vec(), len: x.len() })?;
    if numel != x.len() {
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
    let axis = if ch_axis < 0 { ch_axis + rank as isize } else { ch_axis };
    if axis < 0 || axis >= rank as isize {
        return Err(QuantError::AxisOutOfRange { axis: ch_axis.unsigned_abs(), rank });
    }
    let axis = axis as usize;
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

fn check_channels(what: &'static str, have: usize, got: usize) -> Result<()> {
    if have == got {
        Ok(())
    } else {
        Err(QuantError::ParamCountMismatch { what, expected: have, got })
    }
}

fn channel_unobserved(lo: f32, hi: f32) -> bool {
    lo == f32::INFINITY && hi == f32::NEG_INFINITY
}

/// Per-channel `calculate_qparams()`: PyTorch returns a single `s = 1, z = 0` before any data;
/// a channel that never saw a finite value (possible only under [`NonFinitePolicy::Skip`]) also
/// gets `s = 1, z = 0`.
fn channel_qparams(min: &[f32], max: &[f32], cfg: &TorchObserverConfig) -> Result<Vec<ScaleZeroPoint>> {
    if min.is_empty() {
        return Ok(vec![empty_observer_qparams()]);
    }
    min.iter()
        .zip(max)
        .map(|(&lo, &hi)| {
            if channel_unobserved(lo, hi) {
                Ok(empty_observer_qparams())
            } else {
                torch_observer_qparams(lo, hi, cfg)
            }
        })
        .collect()
}

fn channel_ranges(what: &'static str, min: &[f32], max: &[f32]) -> Result<Vec<Range>> {
    if min.is_empty() {
        return Err(unobserved(what));
    }
    min.iter()
        .zip(max)
        .map(|(&lo, &hi)| if channel_unobserved(lo, hi) { Err(unobserved(what)) } else { Range::new(lo, hi) })
        .collect()
}

/// `PerChannelMinMaxObserver`: the running minimum and maximum of each slice along `ch_axis`
/// (PyTorch permutes `ch_axis` to the front and reduces the flattened rest).
///
/// The number of channels is fixed by the first non-empty batch; a later batch with another
/// count is an error ([`QuantError::ParamCountMismatch`]; PyTorch would broadcast a 1-channel
/// state and fail otherwise). Merging is exact, channel by channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PerChannelMinMaxObserver {
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    ch_axis: isize,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl PerChannelMinMaxObserver {
    /// `ch_axis` may be negative (from the end), PyTorch's default is 0.
    pub fn new(cfg: TorchObserverConfig, ch_axis: isize) -> Result<PerChannelMinMaxObserver> {
        check_minmax_config(&cfg)?;
        Ok(PerChannelMinMaxObserver { cfg, policy: NonFinitePolicy::Error, ch_axis, min: vec![], max: vec![] })
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> PerChannelMinMaxObserver {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &TorchObserverConfig {
        &self.cfg
    }

    pub fn ch_axis(&self) -> isize {
        self.ch_axis
    }

    /// PyTorch's `min_val` buffer: one value per channel, empty before any data.
    pub fn min_val(&self) -> &[f32] {
        &self.min
    }

    pub fn max_val(&self) -> &[f32] {
        &self.max
    }

    /// `calculate_qparams()`, one per channel (see `channel_qparams` for the empty cases).
    pub fn qparams(&self) -> Result<Vec<ScaleZeroPoint>> {
        channel_qparams(&self.min, &self.max, &self.cfg)
    }
}

impl ChannelObserver for PerChannelMinMaxObserver {
    fn observe(&mut self, x: &[f32], shape: &[usize]) -> Result<()> {
        let Some((lo, hi)) = channel_minmax(x, shape, self.ch_axis, self.policy)? else {
            return Ok(());
        };
        if self.min.is_empty() {
            self.min = lo;
            self.max = hi;
            return Ok(());
        }
        check_channels("PerChannelMinMaxObserver channels", self.min.len(), lo.len())?;
        for c in 0..lo.len() {
            self.min[c] = lesser(self.min[c], lo[c]);
            self.max[c] = greater(self.max[c], hi[c]);
        }
        Ok(())
    }

    /// Exact, channel by channel.
    fn merge(&mut self, other: &PerChannelMinMaxObserver) -> Result<()> {
        check_same_config("PerChannelMinMaxObserver", (&self.cfg, self.ch_axis) == (&other.cfg, other.ch_axis))?;
        if other.min.is_empty() {
            return Ok(());
        }
        if self.min.is_empty() {
            self.min = other.min.clone();
            self.max = other.max.clone();
            return Ok(());
        }
        check_channels("PerChannelMinMaxObserver channels", self.min.len(), other.min.len())?;
        for c in 0..self.min.len() {
            self.min[c] = lesser(self.min[c], other.min[c]);
            self.max[c] = greater(self.max[c], other.max[c]);
        }
        Ok(())
    }

    fn ranges(&self) -> Result<Vec<Range>> {
        channel_ranges("PerChannelMinMaxObserver", &self.min, &self.max)
    }
}

/// `MovingAveragePerChannelMinMaxObserver`: [`MovingAverageMinMaxObserver`]'s average, channel
/// by channel. Order-dependent, so [`ChannelObserver::merge`] fails with
/// [`QuantError::Unsupported`]. Under [`NonFinitePolicy::Skip`] a channel with no finite value
/// in a batch keeps its average (and one never observed starts at its first observed batch).
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAveragePerChannelMinMaxObserver {
    cfg: TorchObserverConfig,
    policy: NonFinitePolicy,
    ch_axis: isize,
    averaging_constant: f32,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl MovingAveragePerChannelMinMaxObserver {
    pub fn new(
        cfg: TorchObserverConfig,
        ch_axis: isize,
        averaging_constant: f64,
    ) -> Result<MovingAveragePerChannelMinMaxObserver> {
        check_minmax_config(&cfg)?;
        Ok(MovingAveragePerChannelMinMaxObserver {
            cfg,
            policy: NonFinitePolicy::Error,
            ch_axis,
            averaging_constant: check_averaging_constant(averaging_constant)?,
            min: vec![],
            max: vec![],
        })
    }

    pub fn with_policy(mut self, policy: NonFinitePolicy) -> MovingAveragePerChannelMinMaxObserver {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &TorchObserverConfig {
        &self.cfg
    }

    pub fn ch_axis(&self) -> isize {
        self.ch_axis
    }

    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
    }

    pub fn min_val(&self) -> &[f32] {
        &self.min
    }

    pub fn max_val(&self) -> &[f32] {
        &self.max
    }

    /// `calculate_qparams()`, one per channel.
    pub fn qparams(&self) -> Result<Vec<ScaleZeroPoint>> {
        channel_qparams(&self.min, &self.max, &self.cfg)
    }
}

impl ChannelObserver for MovingAveragePerChannelMinMaxObserver {
    fn observe(&mut self, x: &[f32], shape: &[usize]) -> Result<()> {
        let Some((lo, hi)) = channel_minmax(x, shape, self.ch_axis, self.policy)? else {
            return Ok(());
        };
        if self.min.is_empty() {
            self.min = lo;
            self.max = hi;
            return Ok(());
        }
        check_channels("MovingAveragePerChannelMinMaxObserver channels", self.min.len(), lo.len())?;
        let c = self.averaging_constant;
        for k in 0..lo.len() {
            if channel_unobserved(lo[k], hi[k]) {
                continue;
            }
            if channel_unobserved(self.min[k], self.max[k]) {
                self.min[k] = lo[k];
                self.max[k] = hi[k];
            } else {
                self.min[k] = ema(self.min[k], c, lo[k]);
                self.max[k] = ema(self.max[k], c, hi[k]);
            }
        }
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
        channel_ranges("MovingAveragePerChannelMinMaxObserver", &self.min, &self.max)
    }
}
