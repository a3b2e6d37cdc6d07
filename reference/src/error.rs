//! Typed errors: every way an input can be wrong has its own variant.
//!
//! No function in this crate panics on bad input; each returns one of these instead. Where an
//! error concerns one element of a slice, the variant carries its index so the caller can find it.

use std::fmt;

/// Everything that can be wrong with the input to a quantization function.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QuantError {
    /// A NaN or an infinity where a finite value is needed (`what` names the argument).
    NonFinite { what: &'static str, index: usize, value: f64 },
    /// A NaN in data to be quantized (infinities there saturate; NaN has no code).
    NanInput { what: &'static str, index: usize },
    /// A scale that is zero, negative, NaN or infinite.
    InvalidScale { index: usize, scale: f64 },
    /// `1 / scale` overflows f32 (a subnormal scale) while the rule multiplies by the reciprocal.
    ReciprocalOverflow { index: usize, scale: f64 },
    /// A zero point outside `[qmin, qmax]`.
    ZeroPointOutOfRange { index: usize, zero_point: i64, qmin: i64, qmax: i64 },
    /// `qmin > qmax`.
    EmptyCodeRange { qmin: i64, qmax: i64 },
    /// `[qmin, qmax]` does not fit the storage type (for example 300 for `u8`).
    CodeRangeExceedsStorage { qmin: i64, qmax: i64, storage: &'static str },
    /// A bit width outside 2..=16.
    BitWidthOutOfRange { bits: u32 },
    /// An axis that the tensor does not have (`axis` as the caller gave it, negative counting
    /// from the back).
    AxisOutOfRange { axis: i64, rank: usize },
    /// A parameter list whose length does not match what the granularity needs.
    ParamCountMismatch { what: &'static str, expected: usize, got: usize },
    /// A block size that is zero or does not divide the length of its axis.
    InvalidBlockSize { block_size: usize, axis_len: usize },
    /// The data length does not match the shape (or the shape's element count overflows).
    ShapeMismatch { shape: Vec<usize>, len: usize },
    /// An output (or second input) buffer of the wrong length.
    LengthMismatch { what: &'static str, expected: usize, got: usize },
    /// An input that must hold at least one element is empty.
    EmptyInput { what: &'static str },
    /// A range with `min > max`.
    InvalidRange { min: f64, max: f64 },
    /// An argument outside its documented domain (percentile above 100, zero bins, ...).
    InvalidArgument { what: &'static str, detail: String },
    /// A numeric parameter outside its documented domain (`domain` says which values are
    /// accepted, for example `(0, 1]`).
    OutOfDomain { what: &'static str, value: f64, domain: &'static str },
    /// A count or size above the limit that keeps work and memory bounded (checked before any
    /// allocation; each limit is documented where the parameter is).
    TooLarge { what: &'static str, value: u128, limit: u128 },
    /// A computation whose f32 (or f64) arithmetic overflows for these inputs, where the
    /// framework would silently produce an infinity or NaN.
    Overflow { what: &'static str, detail: String },
    /// An accumulator that can overflow for the given sizes.
    AccumulatorOverflow { what: &'static str, detail: String },
    /// A combination this implementation does not provide (named, never silently approximated).
    Unsupported { what: String },
}

/// Short alias used across the workspace.
pub type Result<T, E = QuantError> = std::result::Result<T, E>;

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use QuantError::*;
        match self {
            NonFinite { what, index, value } => {
                write!(f, "{what}[{index}] = {value} is not finite; a finite value is needed")
            }
            NanInput { what, index } => write!(f, "{what}[{index}] is NaN, which has no quantized code"),
            InvalidScale { index, scale } => {
                write!(f, "scale[{index}] = {scale}: a scale must be finite and greater than zero")
            }
            ReciprocalOverflow { index, scale } => write!(
                f,
                "scale[{index}] = {scale:e}: 1/scale overflows f32, so it cannot be applied as a multiplication"
            ),
            ZeroPointOutOfRange { index, zero_point, qmin, qmax } => {
                write!(f, "zero_point[{index}] = {zero_point} lies outside the code range [{qmin}, {qmax}]")
            }
            EmptyCodeRange { qmin, qmax } => write!(f, "qmin = {qmin} is greater than qmax = {qmax}"),
            CodeRangeExceedsStorage { qmin, qmax, storage } => {
                write!(f, "code range [{qmin}, {qmax}] does not fit the storage type {storage}")
            }
            BitWidthOutOfRange { bits } => write!(f, "bit width {bits} is outside 2..=16"),
            AxisOutOfRange { axis, rank } => write!(
                f,
                "axis {axis} is out of range for a tensor of rank {rank} (valid: {} to {})",
                -(*rank as i128),
                *rank as i128 - 1
            ),
            ParamCountMismatch { what, expected, got } => {
                write!(f, "{what}: expected {expected} parameters, got {got}")
            }
            InvalidBlockSize { block_size, axis_len } => {
                write!(f, "block size {block_size} must be positive and divide the axis length {axis_len}")
            }
            ShapeMismatch { shape, len } => {
                write!(f, "shape {shape:?} does not describe {len} elements")
            }
            LengthMismatch { what, expected, got } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            EmptyInput { what } => write!(f, "{what} is empty; at least one element is needed"),
            InvalidRange { min, max } => write!(f, "range min {min} is greater than max {max}"),
            InvalidArgument { what, detail } => write!(f, "invalid {what}: {detail}"),
            OutOfDomain { what, value, domain } => {
                write!(f, "{what} = {value} is outside its domain {domain}")
            }
            TooLarge { what, value, limit } => {
                write!(f, "{what} = {value} is above the limit {limit} (it bounds work and memory)")
            }
            Overflow { what, detail } => write!(f, "{what} overflows: {detail}"),
            AccumulatorOverflow { what, detail } => write!(f, "{what} can overflow its accumulator: {detail}"),
            Unsupported { what } => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for QuantError {}

/// Checks that `got == expected`, naming the buffer in the error.
/// Checks a count against its domain `1..=limit` before anything is allocated or searched:
/// 0 is [`QuantError::InvalidArgument`], above `limit` is [`QuantError::TooLarge`].
pub fn check_count(what: &'static str, value: usize, limit: usize) -> Result<()> {
    if value == 0 {
        return Err(QuantError::InvalidArgument { what, detail: "must be at least 1".into() });
    }
    if value > limit {
        return Err(QuantError::TooLarge { what, value: value as u128, limit: limit as u128 });
    }
    Ok(())
}

pub fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(QuantError::LengthMismatch { what, expected, got })
    }
}

/// Returns the index and value of the first element that is NaN or infinite.
pub fn first_non_finite(xs: &[f32]) -> Option<(usize, f32)> {
    xs.iter().position(|v| !v.is_finite()).map(|i| (i, xs[i]))
}

/// Fails with [`QuantError::NonFinite`] at the first NaN or infinity in `xs`.
pub fn check_finite(what: &'static str, xs: &[f32]) -> Result<()> {
    match first_non_finite(xs) {
        None => Ok(()),
        Some((index, value)) => Err(QuantError::NonFinite { what, index, value: value as f64 }),
    }
}
