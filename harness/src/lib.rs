//! # quantproof-harness: proving and measuring
//!
//! The machinery behind `cargo test`, `cargo bench` and the `quantproof` tool:
//!
//! | module | what |
//! |---|---|
//! | [`registry`] | one entry per op: its vectors, equivalence descriptors and bench workloads |
//! | [`path`] | where an op runs: the reference or the engine on one ISA level (one type for every runner) |
//! | [`equiv`] | the generic equivalence runner: op descriptors x adversarial cases x every ISA |
//! | [`exhaustive`] | proofs over small domains: every code, every zero point, every pair |
//! | [`vectors`] | the golden-vector runner (`quantproof verify-vectors`) |
//! | [`bench`] | timed, output-checked measurements (`quantproof bench`) |
//! | [`machine`] | this machine's limits: bandwidth, int8 and f32 peaks |
//! | [`ort`] | ONNX Runtime measured in the same run |
//! | [`report`] | the accuracy-speed report (`quantproof report`) |
//! | [`cli`] | the subcommands |

pub mod bench;
pub mod cli;
pub mod equiv;
pub mod exhaustive;
pub mod fuzz;
pub mod machine;
pub mod minilm;
pub mod ort;
pub mod path;
pub mod probe;
pub mod registry;
pub mod report;
pub mod vectors;
