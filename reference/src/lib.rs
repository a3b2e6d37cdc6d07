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
//! | [`quant_params`] | [`QuantParams`]: the scales, zero points, granularity and code range a quantize call takes; validation against a shape |
//! | [`quantize`] | quantize, dequantize, fake-quantize and its straight-through mask; 4-bit packed |
//! | [`pack`] | 4-bit codes two per byte |
//! | [`choose_params`] | *choosing* a [`ScaleZeroPoint`] (one scale, one zero point) from a real range: PyTorch, ONNX Runtime, ours |
//! | [`profile`] | each framework's choices as one value: `torch`, `onnxruntime`, `quantproof` |
//! | [`qat`] | quantization-aware training: STE, LSQ, LSQ+, PyTorch's learnable fake quantization (bit-exact) |
//! | [`analysis`] | round error, clip error, MSE, SQNR, level utilization, error bounds |
//! | [`gemm`] | int8 matrix products: exact int32 accumulators, zero points directly and by row/column sums |
//! | [`linear`] | quantized linear layers and matrix products: PyTorch (static, dynamic), ONNX Runtime, TFLite |
//! | [`conv`] | 2-D convolution geometry (stride, padding, dilation, groups), its accumulators, im2col |
//! | [`overflow`] | which GEMM formulations are exact for given types, ranges, zero points and `K` |
//! | [`calibrate`] | observers and calibrators: ranges from data (PyTorch, ONNX Runtime, TensorRT, ACIQ, MSE) |
//! | [`fixedpoint`] | gemmlowp's fixed-point primitives (SRDHM, RDBPOT, saturating shifts) and its exp, logistic, tanh, `1/(1+x)` |
//! | [`requantize`] | `int32 -> 8 bits`: float (PyTorch, ONNX Runtime), double rounding (gemmlowp / TFLite), single rounding, XNNPACK rndnu, power of two; Q31 multipliers |
//! | [`activation`] | ReLU, ReLU6, clamp, hardtanh, sigmoid, tanh, hardsigmoid, hardswish, leaky ReLU, GELU, exp, SiLU, ELU on 8-bit codes: 256-entry tables under each profile |
//! | [`affine`] | one 8-bit tensor's scale and zero point for the arithmetic ops; fused activations; broadcasting |
//! | [`elementwise`] | QAdd, QSub, QMul under TFLite, PyTorch and ONNX Runtime; the equal-scale fast path |
//! | [`passive`] | concat, pad, resize (nearest, bilinear): qparams inherited, each framework's requantization and coordinate rules |
//! | [`pool`] | max / average pooling (NCHW, NHWC; each framework's rounding of the mean), TFLite's MEAN |
//! | [`ptq`] | post-training algorithms: cross-layer equalization, bias absorption and correction, AdaRound, mixed precision, deployment profiles as data |
//! | [`softmax`] | TFLite's integer-only softmax (gemmlowp exp, reciprocal, 1/256 output) |
//! | [`rng`] | SplitMix64, the one seeded generator (stochastic rounding, every test's data) |
//! | [`error`] | the typed errors every function returns instead of panicking |
//!
//! Two names that are easy to confuse are kept apart on purpose: a [`ScaleZeroPoint`] is one pair
//! `(s, z)`, what a range rule computes; a [`QuantParams`] is everything a quantize call needs
//! (every pair of a tensor, their granularity and the code range). Observers hand out ready
//! `QuantParams`.
//!
//! ## Notation
//!
//! `x` real input (f32), `s` scale, `z` zero point, `q` code, `[qmin, qmax]` code range,
//! `x^ = (q - z) s` the dequantized value. `RN(v)` is `v` rounded to the nearest f32.
//!
//! ```
//! use quantproof_reference::{profile::Profile, quant_params::QuantParams, quantize, scheme::QType};
//! let p = QuantParams::per_tensor(0.5, 3, QType::I8.full_range());
//! let mut q = [0i8; 3];
//! quantize::quantize(&[0.25, 0.75, 100.0], &[3], &p, Profile::ONNXRUNTIME.quantize, &mut q).unwrap();
//! assert_eq!(q, [3, 5, 127]); // 0.5 and 1.5 are ties: to even; 200 saturates
//! ```

#![forbid(unsafe_code)]

pub mod activation;
pub mod affine;
pub mod analysis;
mod aten;
pub mod calibrate;
pub mod choose_params;
pub mod conv;
pub mod elementwise;
pub mod error;
pub mod fixedpoint;
pub mod gemm;
pub mod linear;
pub mod overflow;
pub mod pack;
pub mod passive;
pub mod pool;
pub mod profile;
pub mod ptq;
pub mod qat;
pub mod quant_params;
pub mod quantize;
pub mod requantize;
pub mod rng;
pub mod rounding;
pub mod scheme;
pub mod softmax;

pub use choose_params::ScaleZeroPoint;
pub use error::{QuantError, Result};
pub use profile::Profile;
pub use quant_params::QuantParams;
pub use quantize::{QuantizeRule, ScaleOp};
pub use rounding::RoundingMode;
pub use scheme::{Code, CodeRange, Granularity, QType};
