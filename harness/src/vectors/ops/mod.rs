//! The op registry: how each golden-vector op is computed, on each path.
//!
//! An op is one [`OpSpec`]: its name, the profiles it is implemented for, whether the optimized
//! crate has a twin of it, and one function from a case (attrs and named input tensors), the
//! case's [`Profile`] and a [`Path`] (the reference, or an [`Engine`] for one ISA) to named
//! output tensors. The runner calls the function once per path and compares every output the
//! case names. Adding an op is adding its run function to its entry of [`crate::registry::OPS`].
//!
//! An op function reports three kinds of trouble ([`OpError`]):
//!
//! | error | meaning | the runner counts |
//! |---|---|---|
//! | `Malformed` | the case lacks an attr or input, or has the wrong type | a failure |
//! | `Rejected` | the implementation returned a `QuantError` for these inputs | a failure |
//! | `Unsupported` | a variant this implementation does not provide (say an int16 code type on an optimized path) | on the reference: a skipped case; on an optimized path: that path did not run |

pub(crate) mod activation;
pub(crate) mod arith;
pub mod calib;
pub(crate) mod gemm;
pub(crate) mod passive;
pub(crate) mod pool;
pub mod qat;
pub(crate) mod qparams;
pub(crate) mod quant;

use super::parse::{exact_int, kind, Case, DType, Data, Tensor};
use quantproof_reference::error::QuantError;
use quantproof_reference::profile::Profile;
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::path::Path;

/// Why an op produced no outputs (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum OpError {
    Malformed(String),
    Rejected(QuantError),
    Unsupported(String),
}

impl From<QuantError> for OpError {
    fn from(e: QuantError) -> OpError {
        OpError::Rejected(e)
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Malformed(m) => write!(f, "malformed case: {m}"),
            OpError::Rejected(e) => write!(f, "error: {e}"),
            OpError::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

/// Named output tensors.
pub type Outputs = BTreeMap<String, Tensor>;

/// What an op function returns.
pub type OpResult = Result<Outputs, OpError>;

/// Computes an op's outputs for a case on one path.
pub type OpFn = fn(&Case, &Profile, Path) -> OpResult;

/// An op's golden-vector side, as listed in its [`crate::registry::OPS`] entry.
#[derive(Clone, Copy)]
pub struct VectorOp {
    /// The profiles (by [`Profile::name`]) it is implemented for.
    pub profiles: &'static [&'static str],
    pub run: OpFn,
    /// Whether `run` computes the op on an optimized path too (then every available ISA runs it).
    pub optimized: bool,
}

/// What the runner needs of an op: its name, profiles, whether `quantproof_optimized` has a twin
/// (then every available ISA runs it) and how a case is computed.
#[derive(Clone, Copy)]
pub struct OpSpec {
    /// The `op` field of the cases it runs.
    pub op: &'static str,
    pub profiles: &'static [&'static str],
    /// Whether `quantproof_optimized` has a twin, run on every available ISA.
    pub optimized: bool,
    pub run: OpFn,
}

/// The profiles the arithmetic ops are defined for.
pub const ALL_ARITH: &[&str] = &["torch", "onnxruntime", "tflite", "quantproof"];

/// Every op `VECTORS.md` (quant-vectors/1) defines, implemented or not.
pub const FORMAT_OPS: &[&str] = &[
    "quantize",
    "dequantize",
    "fake_quantize",
    "lsq",
    "observe",
    "choose_qparams",
    "calibrate",
    "dynamic_quantize",
    "qadd",
    "qmul",
    "sub",
    "requantize",
    "relu",
    "relu6",
    "softmax",
    "mean",
    "pad",
    "resize_bilinear",
    "resize_nearest",
    "gelu",
    "exp",
    "silu",
    "elu",
    "sigmoid",
    "tanh",
    "hardsigmoid",
    "hardswish",
    "clamp",
    "hardtanh",
    "leaky_relu",
    "max_pool2d",
    "avg_pool2d",
    "concat",
    "qlinear",
    "dynamic_linear",
    "qconv2d",
    "matmul_integer",
    "qlinear_matmul",
    "depthwise_conv2d",
];

/// The golden-vector side of `op`, from its [`crate::registry::OPS`] entry.
pub fn lookup(op: &str) -> Option<OpSpec> {
    let e = crate::registry::lookup(op)?;
    let v = e.vectors?;
    Some(OpSpec { op: e.op, profiles: v.profiles, optimized: v.optimized, run: v.run })
}

/// Every op with golden vectors implemented.
pub fn implemented() -> impl Iterator<Item = OpSpec> {
    crate::registry::OPS.iter().filter_map(|e| lookup(e.op))
}

// ---------------------------------------------------------------------------------------------
// Reading attrs and inputs, with messages that name the field.

/// Typed access to a case's `attrs`.
pub struct Attrs<'a>(pub &'a Case);

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.attrs.get(key).filter(|v| !v.is_null())
    }

    fn missing(key: &str) -> OpError {
        OpError::Malformed(format!("attrs.{key} is missing"))
    }

    /// An integer attr, `None` when absent or null.
    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, OpError> {
        self.get(key)
            .map(|v| {
                exact_int(v).ok_or_else(|| OpError::Malformed(format!("attrs.{key}: expected an integer, got {v}")))
            })
            .transpose()
    }

    pub fn int(&self, key: &str) -> Result<i64, OpError> {
        self.opt_int(key)?.ok_or_else(|| Self::missing(key))
    }

    /// An integer attr that must fit i32.
    pub fn i32(&self, key: &str) -> Result<i32, OpError> {
        let v = self.int(key)?;
        i32::try_from(v).map_err(|_| OpError::Malformed(format!("attrs.{key}: {v} does not fit i32")))
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, OpError> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| OpError::Malformed(format!("attrs.{key}: expected a number, got {v}"))))
            .transpose()
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, OpError> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| OpError::Malformed(format!("attrs.{key}: expected a boolean, got {v}"))))
            .transpose()
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, OpError> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| OpError::Malformed(format!("attrs.{key}: expected a string, got {v}"))))
            .transpose()
    }

    fn list(&self, key: &str) -> Result<&'a [Value], OpError> {
        match self.get(key) {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(OpError::Malformed(format!("attrs.{key}: expected a list, got {}", kind(other)))),
            None => Err(Self::missing(key)),
        }
    }

    /// A list of numbers, each rounded to f32 (a value that overflows f32 is malformed).
    pub fn f32_list(&self, key: &str) -> Result<Vec<f32>, OpError> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = v
                    .as_f64()
                    .ok_or_else(|| OpError::Malformed(format!("attrs.{key}[{i}]: expected a number, got {v}")))?;
                let y = x as f32;
                if y.is_finite() {
                    Ok(y)
                } else {
                    Err(OpError::Malformed(format!("attrs.{key}[{i}]: {x} is not a finite f32")))
                }
            })
            .collect()
    }

    /// A list of integers that fit i32.
    pub fn i32_list(&self, key: &str) -> Result<Vec<i32>, OpError> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                exact_int(v)
                    .and_then(|x| i32::try_from(x).ok())
                    .ok_or_else(|| OpError::Malformed(format!("attrs.{key}[{i}]: expected an i32 integer, got {v}")))
            })
            .collect()
    }
}

/// The input tensor `name`.
pub fn input<'a>(case: &'a Case, name: &str) -> Result<&'a Tensor, OpError> {
    case.inputs.get(name).ok_or_else(|| {
        let have: Vec<&str> = case.inputs.keys().map(String::as_str).collect();
        OpError::Malformed(format!("input {name:?} is missing (inputs: {})", have.join(", ")))
    })
}

/// The f32 data of input `name`.
pub fn input_f32<'a>(case: &'a Case, name: &str) -> Result<(&'a Tensor, &'a [f32]), OpError> {
    let t = input(case, name)?;
    match &t.data {
        Data::F32(v) => Ok((t, v)),
        other => Err(OpError::Malformed(format!("input {name}: expected f32 data, got {}", other.dtype().name()))),
    }
}

/// Builds an [`Outputs`] map.
pub fn outputs<const N: usize>(items: [(&str, Tensor); N]) -> Outputs {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A one-element tensor of shape `[1]` (how the format stores per-tensor parameters).
pub fn scalar(data: Data) -> Tensor {
    Tensor::new(vec![1], data)
}

/// `true -> 1.0`, `false -> 0.0`.
pub fn mask_to_f32(mask: &[bool]) -> Vec<f32> {
    mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect()
}

/// The dtype name of a data vector, for messages.
pub fn dtype_name(t: &Tensor) -> &'static str {
    DType::name(t.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for s in implemented() {
            assert!(FORMAT_OPS.contains(&s.op), "{} is not a format op", s.op);
            for p in s.profiles {
                assert_eq!(Profile::by_name(p).map(|p| p.name), Ok(*p));
            }
        }
        assert!(lookup("quantize").is_some());
        assert!(lookup("qlinear").is_some());
        assert!(lookup("no_such_op").is_none());
    }
}
