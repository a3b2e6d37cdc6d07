//! # The op registry: one entry per op
//!
//! Every op quantproof knows is one [`OpEntry`] of [`OPS`], and every consumer reads this table:
//! the golden-vector runner ([`crate::vectors`], through [`OpEntry::vectors`]), the equivalence
//! runner ([`crate::equiv`], through [`OpEntry::equiv`]), `quantproof bench` and the report's
//! speed section ([`crate::bench`], through [`OpEntry::bench`]), and `quantproof ops`, which
//! prints the table with what covers each op.
//!
//! ## Adding an op
//!
//! 1. Its specification in `quantproof-reference` (a module per op family).
//! 2. If it has kernels: the kernels in `quantproof-optimized` and an `Engine` method, and an
//!    equivalence descriptor ([`crate::equiv::OpDescriptor`]: a case generator and
//!    `run(&Path, case)`) in `harness/src/equiv/`.
//! 3. If the golden vectors have it: a run function in `harness/src/vectors/ops/`.
//! 4. If it is worth timing: a bench workload (a static [`crate::bench::OpSpec`]).
//! 5. One entry here naming them. Nothing else lists ops.

use crate::bench::ops as b;
use crate::bench::OpSpec as BenchOp;
use crate::equiv::arith as ea;
use crate::equiv::calib as eqc;
use crate::equiv::ops as eq;
use crate::equiv::OpDescriptor;
use crate::vectors::ops::{activation, arith, calib, gemm, passive, pool, qat, qparams, quant, VectorOp, ALL_ARITH};

/// Makes an op's equivalence descriptors.
pub type MakeDescriptors = fn() -> Vec<Box<dyn OpDescriptor>>;

/// One op and everything that proves, replays and times it.
pub struct OpEntry {
    /// The op's name: the `op` field of its golden vectors where it has any.
    pub op: &'static str,
    /// Its family (the reference module it lives in).
    pub family: &'static str,
    pub summary: &'static str,
    /// How its golden vectors are computed on a path, and under which profiles.
    pub vectors: Option<VectorOp>,
    /// Its equivalence descriptors (reference vs every ISA level); `None` when its kernels are
    /// proven elsewhere (the activations: the table lookup of `tests/lut.rs`) or it has none.
    pub equiv: Option<MakeDescriptors>,
    /// Its `quantproof bench` workloads.
    pub bench: &'static [&'static BenchOp],
}

impl OpEntry {
    /// Whether `quantproof-optimized` has kernels for it.
    pub fn optimized(&self) -> bool {
        self.equiv.is_some() || self.vectors.is_some_and(|v| v.optimized)
    }
}

/// The entry called `op`.
pub fn lookup(op: &str) -> Option<&'static OpEntry> {
    OPS.iter().find(|e| e.op == op)
}

/// Every op.
pub static OPS: &[OpEntry] = &[
    OpEntry {
        op: "quantize",
        family: "quantize",
        summary: "f32 -> codes: clamp(round(x / s) + z)",
        vectors: Some(VectorOp {
            profiles: &["torch", "onnxruntime", "quantproof", "tflite"],
            run: quant::quantize,
            optimized: true,
        }),
        equiv: Some(eq::quantize),
        bench: &[&b::QUANTIZE],
    },
    OpEntry {
        op: "dequantize",
        family: "quantize",
        summary: "codes -> f32: (q - z) * s",
        vectors: Some(VectorOp {
            profiles: &["torch", "onnxruntime", "quantproof", "tflite"],
            run: quant::dequantize,
            optimized: true,
        }),
        equiv: Some(eq::dequantize),
        bench: &[&b::DEQUANTIZE],
    },
    OpEntry {
        op: "fake_quantize",
        family: "quantize",
        summary: "f32 -> f32: quantize then dequantize, with the straight-through mask",
        vectors: Some(VectorOp { profiles: &["torch", "quantproof"], run: quant::fake_quantize, optimized: true }),
        equiv: Some(eq::fake_quantize),
        bench: &[&b::FAKE_QUANTIZE],
    },
    OpEntry {
        op: "quantize_packed4",
        family: "quantize",
        summary: "f32 -> two 4-bit codes per byte",
        vectors: None,
        equiv: Some(eq::quantize_packed4),
        bench: &[],
    },
    OpEntry {
        op: "dequantize_packed4",
        family: "quantize",
        summary: "two 4-bit codes per byte -> f32",
        vectors: None,
        equiv: Some(eq::dequantize_packed4),
        bench: &[],
    },
    OpEntry {
        op: "dynamic_quantize",
        family: "quantize",
        summary: "f32 -> u8 with scale and zero point read from the data",
        vectors: Some(VectorOp {
            profiles: &["onnxruntime", "quantproof"],
            run: quant::dynamic_quantize,
            optimized: true,
        }),
        equiv: Some(eq::dynamic_quantize),
        bench: &[&b::DYNAMIC_QUANTIZE],
    },
    OpEntry {
        op: "choose_qparams",
        family: "calibrate",
        summary: "(min, max) -> scale and zero point",
        vectors: Some(VectorOp { profiles: &["onnxruntime"], run: qparams::choose_qparams, optimized: false }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "lsq",
        family: "qat",
        summary: "learned step size quantization: forward and gradients",
        vectors: Some(VectorOp { profiles: &["torch"], run: qat::lsq, optimized: false }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "observe",
        family: "calibrate",
        summary: "PyTorch's observers: running statistics -> qparams",
        vectors: Some(VectorOp { profiles: &["torch"], run: calib::observe, optimized: false }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "min_max",
        family: "calibrate",
        summary: "f32 -> (min, max): the range scan of calibration and dynamic quantization",
        vectors: None,
        equiv: Some(eq::min_max),
        bench: &[&b::MIN_MAX],
    },
    OpEntry {
        op: "abs_max",
        family: "calibrate",
        summary: "f32 -> max |x|: the range scan of symmetric calibration",
        vectors: None,
        equiv: Some(eqc::abs_max),
        bench: &[&b::ABS_MAX],
    },
    OpEntry {
        op: "histogram",
        family: "calibrate",
        summary: "f32 -> numpy's bin counts (of x or |x|)",
        vectors: None,
        equiv: Some(eqc::histogram),
        bench: &[&b::HISTOGRAM],
    },
    OpEntry {
        op: "calibrate",
        family: "calibrate",
        summary: "ONNX Runtime's calibrators: entropy, percentile, distribution",
        vectors: Some(VectorOp { profiles: &["onnxruntime"], run: calib::calibrate, optimized: true }),
        equiv: Some(eqc::calibrate),
        bench: &[&b::CALIBRATE_ENTROPY, &b::CALIBRATE_PERCENTILE, &b::CALIBRATE_DISTRIBUTION],
    },
    OpEntry {
        op: "requantize",
        family: "arithmetic",
        summary: "int32 -> 8-bit codes through a multiplier",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: arith::requantize, optimized: true }),
        equiv: Some(ea::requantize),
        bench: &[&b::REQUANTIZE],
    },
    OpEntry {
        op: "qadd",
        family: "arithmetic",
        summary: "codes + codes, each framework's integer or float path",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: arith::qadd, optimized: true }),
        equiv: Some(ea::qadd),
        bench: &[&b::QADD, &b::QADD_EQUAL_SCALE],
    },
    OpEntry {
        op: "sub",
        family: "arithmetic",
        summary: "codes - codes",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: arith::sub, optimized: true }),
        equiv: Some(ea::qsub),
        bench: &[],
    },
    OpEntry {
        op: "qmul",
        family: "arithmetic",
        summary: "codes * codes, the three scales folded into one multiplier",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: arith::qmul, optimized: true }),
        equiv: Some(ea::qmul),
        bench: &[&b::QMUL],
    },
    OpEntry {
        op: "relu",
        family: "activation",
        summary: "relu on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::relu, optimized: true }),
        equiv: Some(ea::relu),
        bench: &[&b::RELU],
    },
    OpEntry {
        op: "relu6",
        family: "activation",
        summary: "relu6 on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::relu6, optimized: true }),
        equiv: Some(ea::relu6),
        bench: &[&b::RELU6],
    },
    OpEntry {
        op: "clamp",
        family: "activation",
        summary: "clamp on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::clamp, optimized: true }),
        equiv: Some(ea::clamp),
        bench: &[&b::CLAMP],
    },
    OpEntry {
        op: "hardtanh",
        family: "activation",
        summary: "hardtanh on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::hardtanh, optimized: true }),
        equiv: Some(ea::hardtanh),
        bench: &[&b::HARDTANH],
    },
    OpEntry {
        op: "sigmoid",
        family: "activation",
        summary: "sigmoid on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::sigmoid, optimized: true }),
        equiv: Some(ea::sigmoid),
        bench: &[&b::SIGMOID],
    },
    OpEntry {
        op: "tanh",
        family: "activation",
        summary: "tanh on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::tanh, optimized: true }),
        equiv: Some(ea::tanh),
        bench: &[&b::TANH],
    },
    OpEntry {
        op: "hardsigmoid",
        family: "activation",
        summary: "hardsigmoid on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::hardsigmoid, optimized: true }),
        equiv: Some(ea::hardsigmoid),
        bench: &[&b::HARDSIGMOID],
    },
    OpEntry {
        op: "hardswish",
        family: "activation",
        summary: "hardswish on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::hardswish, optimized: true }),
        equiv: Some(ea::hardswish),
        bench: &[&b::HARDSWISH],
    },
    OpEntry {
        op: "leaky_relu",
        family: "activation",
        summary: "leaky_relu on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::leaky_relu, optimized: true }),
        equiv: Some(ea::leaky_relu),
        bench: &[&b::LEAKY_RELU],
    },
    OpEntry {
        op: "gelu",
        family: "activation",
        summary: "gelu on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::gelu, optimized: true }),
        equiv: Some(ea::gelu),
        bench: &[&b::GELU],
    },
    OpEntry {
        op: "exp",
        family: "activation",
        summary: "exp on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::exp, optimized: true }),
        equiv: Some(ea::exp),
        bench: &[&b::EXP],
    },
    OpEntry {
        op: "silu",
        family: "activation",
        summary: "silu on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::silu, optimized: true }),
        equiv: Some(ea::silu),
        bench: &[&b::SILU],
    },
    OpEntry {
        op: "elu",
        family: "activation",
        summary: "elu on 8-bit codes (a 256-entry table or integer compares)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: activation::elu, optimized: true }),
        equiv: Some(ea::elu),
        bench: &[&b::ELU],
    },
    OpEntry {
        op: "max_pool2d",
        family: "pool",
        summary: "max pooling on codes (qparams inherited)",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: pool::max_pool2d, optimized: true }),
        equiv: Some(ea::max_pool2d),
        bench: &[&b::MAX_POOL2D],
    },
    OpEntry {
        op: "avg_pool2d",
        family: "pool",
        summary: "average pooling with each framework's rounding of the mean",
        vectors: Some(VectorOp { profiles: ALL_ARITH, run: pool::avg_pool2d, optimized: true }),
        equiv: Some(ea::avg_pool2d),
        bench: &[&b::AVG_POOL2D],
    },
    OpEntry {
        op: "mean",
        family: "pool",
        summary: "TFLite's integer MEAN over axes",
        vectors: Some(VectorOp { profiles: &["tflite", "quantproof"], run: pool::mean, optimized: true }),
        equiv: Some(ea::mean),
        bench: &[],
    },
    OpEntry {
        op: "concat",
        family: "passive",
        summary: "concatenation; inputs requantized to the output's qparams unless they share them",
        vectors: Some(VectorOp { profiles: &["torch", "tflite"], run: passive::concat, optimized: true }),
        equiv: Some(ea::concat),
        bench: &[],
    },
    OpEntry {
        op: "pad",
        family: "passive",
        summary: "padding with the code of real 0 (qparams inherited)",
        vectors: Some(VectorOp { profiles: &["tflite"], run: passive::pad, optimized: true }),
        equiv: Some(ea::pad),
        bench: &[],
    },
    OpEntry {
        op: "resize_nearest",
        family: "passive",
        summary: "nearest-neighbour resize, TFLite's coordinate rules",
        vectors: Some(VectorOp { profiles: &["tflite"], run: passive::resize_nearest, optimized: true }),
        equiv: Some(ea::resize_nearest),
        bench: &[],
    },
    OpEntry {
        op: "resize_bilinear",
        family: "passive",
        summary: "bilinear resize in TFLite's 10-bit fixed point",
        vectors: Some(VectorOp { profiles: &["tflite"], run: passive::resize_bilinear, optimized: true }),
        equiv: Some(ea::resize_bilinear),
        bench: &[],
    },
    OpEntry {
        op: "softmax",
        family: "activation",
        summary: "TFLite's integer-only softmax (gemmlowp exp, reciprocal, 1/256 output)",
        vectors: Some(VectorOp { profiles: &["tflite"], run: passive::softmax, optimized: true }),
        equiv: Some(ea::softmax),
        bench: &[&b::SOFTMAX],
    },
    OpEntry {
        op: "matmul_integer",
        family: "gemm",
        summary: "ONNX MatMulInteger: u8/s8 GEMM with zero points, int32 out",
        vectors: Some(VectorOp { profiles: &["onnxruntime"], run: gemm::matmul_integer, optimized: true }),
        equiv: Some(ea::qgemm),
        bench: &[&b::QGEMM],
    },
    OpEntry {
        op: "qlinear_matmul",
        family: "gemm",
        summary: "ONNX QLinearMatMul: GEMM requantized to 8 bits",
        vectors: Some(VectorOp { profiles: &["onnxruntime"], run: gemm::qlinear_matmul, optimized: true }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "qlinear",
        family: "gemm",
        summary: "quantized Linear / fully connected",
        vectors: Some(VectorOp { profiles: &["torch", "tflite"], run: gemm::qlinear, optimized: true }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "dynamic_linear",
        family: "gemm",
        summary: "dynamically quantized Linear (activations quantized at run time)",
        vectors: Some(VectorOp { profiles: &["torch"], run: gemm::dynamic_linear, optimized: true }),
        equiv: None,
        bench: &[],
    },
    OpEntry {
        op: "qconv2d",
        family: "gemm",
        summary: "quantized 2-D convolution (torch NCHW, tflite NHWC)",
        vectors: Some(VectorOp { profiles: &["torch", "tflite"], run: gemm::qconv2d, optimized: true }),
        equiv: None,
        bench: &[&b::QCONV2D],
    },
    OpEntry {
        op: "depthwise_conv2d",
        family: "gemm",
        summary: "TFLite's depthwise convolution",
        vectors: Some(VectorOp { profiles: &["tflite"], run: gemm::depthwise_conv2d, optimized: true }),
        equiv: None,
        bench: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_once_and_every_piece_named_once() {
        for (i, e) in OPS.iter().enumerate() {
            assert!(OPS[..i].iter().all(|f| f.op != e.op), "{} registered twice", e.op);
            assert!(e.vectors.is_some() || e.equiv.is_some() || !e.bench.is_empty(), "{} has nothing", e.op);
        }
        let names: Vec<&str> = crate::equiv::descriptors().iter().map(|d| d.name()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "descriptor {n} twice");
        }
        let benches: Vec<&str> = crate::bench::table().map(|s| s.name).collect();
        for (i, n) in benches.iter().enumerate() {
            assert!(!benches[..i].contains(n), "bench {n} twice");
        }
        assert!(lookup("quantize").is_some_and(|e| e.optimized() && !e.bench.is_empty()));
        assert!(lookup("qlinear").is_some_and(|e| e.optimized()));
        assert!(lookup("qconv2d").is_some_and(|e| e.optimized()));
    }
}
