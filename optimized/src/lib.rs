//! # quantproof-optimized: fast quantization kernels, proven equal to the reference
//!
//! The same operations as `quantproof-reference`, for AVX2, AVX-512 and NEON, with a portable
//! scalar fallback, chosen at run time:
//!
//! * [`isa`]: detection (cached), the `QUANTPROOF_ISA` environment variable and [`isa::force`];
//! * [`ops::Engine`]: the operations, with the reference's signatures and results;
//! * [`kernels`]: the span interface each ISA implements, and the arithmetic it must reproduce;
//! * [`calibrate`]: ONNX Runtime's histogram calibrators (entropy, percentile, distribution)
//!   on these kernels, threaded, with the reference's results;
//! * `arch`: the kernels themselves, one module per ISA.
//! * `softmax` (private, behind [`ops::Engine::tflite_softmax`]): TFLite's integer softmax with
//!   each row's exponentials read from a 256-entry table of the reference's own `exp`.
//!
//! Integer results are bit-exact with the reference on every ISA; float results (dequantize,
//! fake-quantize) are bit-exact too, because kernels use only correctly rounded IEEE operations
//! in the reference's order (no FMA, no approximate reciprocals).
//!
//! ```
//! use quantproof_optimized::ops::Engine;
//! use quantproof_reference::{quant_params::QuantParams, profile::Profile, scheme::QType};
//! let p = QuantParams::per_tensor(0.5, 3, QType::I8.full_range());
//! let mut q = [0i8; 3];
//! Engine::auto().quantize(&[0.25, 0.75, 100.0], &[3], &p, Profile::TORCH.quantize, &mut q).unwrap();
//! assert_eq!(q, [3, 5, 127]);
//! ```

pub mod aligned;
pub mod arch;
pub mod calibrate;
pub mod conv;
pub mod gemm;
pub mod isa;
pub mod kernels;
pub mod ops;
pub mod pool;
mod softmax;

pub use isa::Isa;
pub use kernels::HistogramOf;
pub use ops::Engine;
