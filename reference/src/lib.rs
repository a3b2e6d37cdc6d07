//! # quantproof-reference: the specification of neural-network quantization
//!
//! This crate is the oracle. Every function is scalar, written to be read, and documents its
//! formula, its rounding and saturation rules, and the framework whose arithmetic it follows. The
//! optimized kernels in `quantproof-optimized` are proven bit-exact with it (integer outputs) or
//! within a stated bound (float outputs), and it is itself checked against golden vectors recorded
//! from PyTorch and ONNX Runtime.
//!
//! ## Map
//!
//! | module | what |
//! |---|---|
//! | [`scheme`] | code types (2 to 16 bits, signed or not), full / narrow ranges, granularity |
//! | [`rounding`] | half-to-even, half-away, half-up, floor, toward-zero, stochastic |
//! | [`params`] | scales and zero points per tensor, per axis, per block; validation |
//! | [`quantize`] | quantize, dequantize, fake-quantize and its straight-through mask; 4-bit packed |
//! | [`pack`] | 4-bit codes two per byte |
//! | [`qparams`] | scale and zero point from a range: PyTorch, ONNX Runtime, ours |
//! | [`profile`] | each framework's choices as one value: `torch`, `onnxruntime`, `quantproof` |
//! | [`qat`] | quantization-aware training: STE, LSQ, LSQ+, PyTorch's learnable fake quantization (bit-exact) |
//! | [`analysis`] | round error, clip error, MSE, SQNR, level utilization, error bounds |
//! | [`calibrate`] | observers and calibrators: ranges from data (PyTorch, ONNX Runtime, TensorRT, ACIQ, MSE) |
//! | [`fixedpoint`] | gemmlowp's fixed-point primitives (SRDHM, RDBPOT, saturating shifts) and its exp, logistic, tanh, `1/(1+x)` |
//! | [`requantize`] | `int32 -> 8 bits`: float (PyTorch, ONNX Runtime), double rounding (gemmlowp / TFLite), single rounding, XNNPACK rndnu, power of two; Q31 multipliers |
//! | [`activation`] | ReLU, ReLU6, clamp, hardtanh, sigmoid, tanh, hardsigmoid, hardswish, leaky ReLU, GELU, exp, SiLU, ELU on 8-bit codes: 256-entry tables under each profile |
//! | [`affine`] | one 8-bit tensor's scale and zero point for the arithmetic ops; fused activations; broadcasting |
//! | [`elementwise`] | QAdd, QSub, QMul under TFLite, PyTorch and ONNX Runtime; the equal-scale fast path |
//! | [`pool`] | max / average pooling (NCHW, NHWC; each framework's rounding of the mean), TFLite's MEAN |
//! | [`rng`] | SplitMix64, the one seeded generator (stochastic rounding, every test's data) |
//! | [`error`] | the typed errors every function returns instead of panicking |
//!
//! ## Notation
//!
//! `x` real input (f32), `s` scale, `z` zero point, `q` code, `[qmin, qmax]` code range,
//! `x^ = (q - z) s` the dequantized value. `RN(v)` is `v` rounded to the nearest f32.
//!
//! ```
//! use quantproof_reference::{profile::Profile, params::QuantParams, quantize, scheme::QType};
//! let p = QuantParams::per_tensor(0.5, 3, QType::I8.full_range());
//! let mut q = [0i8; 3];
//! quantize::quantize(&[0.25, 0.75, 100.0], &[3], &p, Profile::ONNXRUNTIME.quantize, &mut q).unwrap();
//! assert_eq!(q, [3, 5, 127]); // 0.5 and 1.5 are ties: to even; 200 saturates
//! ```

#![forbid(unsafe_code)]

pub mod activation;
pub mod affine;
pub mod analysis;
pub mod calibrate;
pub mod elementwise;
pub mod error;
pub mod fixedpoint;
pub mod pack;
pub mod params;
pub mod pool;
pub mod profile;
pub mod qat;
pub mod qparams;
pub mod quantize;
pub mod requantize;
pub mod rng;
pub mod rounding;
pub mod scheme;

pub use error::{QuantError, Result};
pub use params::QuantParams;
pub use profile::Profile;
pub use quantize::{QuantizeRule, ScaleOp};
pub use rounding::RoundingMode;
pub use scheme::{Code, CodeRange, Granularity, QType};
