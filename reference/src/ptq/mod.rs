//! # Post-training quantization algorithms
//!
//! What recovers the accuracy a model loses when its weights are rounded to few bits, without
//! retraining (seed 001's toolbox), each written to be read and each citing its paper:
//!
//! | module | algorithm | source |
//! |---|---|---|
//! | [`layer`] | the dense layer the algorithms work on, and symmetric max-abs weight quantization per tensor or per channel at 2..16 bits | TensorRT's weight rule |
//! | [`cle`] | cross-layer equalization: `s_i = sqrt(r1_i / r2_i)` between two layers around a positively homogeneous activation | Nagel et al., *Data-Free Quantization Through Weight Equalization and Bias Correction*, ICCV 2019, sec. 4.1 |
//! | [`bias`] | high-bias absorption, and bias correction (empirical from calibration data; analytic from BatchNorm statistics) | Nagel et al. 2019, sec. 4.2 and 4.3 |
//! | [`adaround`] | adaptive rounding: a learned up/down choice per weight that reconstructs the layer's output | Nagel et al., *Up or Down? Adaptive Rounding for Post-Training Quantization*, ICML 2020 |
//! | [`mixed`] | mixed precision: per-layer sensitivity and a bit allocation under a size budget, with the Pareto curve | seed 002; the multiple-choice knapsack solved exactly over Pareto sets |
//! | [`deploy`] | deployment profiles as data: TensorRT, SNPE, Cambricon, TFLite, ONNX Runtime, PyTorch (fbgemm, qnnpack), ncnn | each entry cites its source |
//!
//! Everything is `f32` data with `f64` accumulation, deterministic for a seed, and every bad
//! input (shape mismatch, non-finite values, a non-homogeneous activation for CLE, a budget no
//! allocation meets) is a typed [`crate::error::QuantError`].

pub mod adaround;
pub mod bias;
pub mod cle;
pub mod deploy;
pub mod layer;
pub mod mixed;

pub use layer::{Dense, WeightGranularity};
