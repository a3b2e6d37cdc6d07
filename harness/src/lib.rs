//! # quantproof-harness: proving and measuring
//!
//! The machinery behind `cargo test`, `cargo bench` and the `quantproof` tool.

pub mod bench;
pub mod cli;
pub mod vectors;
pub mod machine;
pub mod ort;
pub mod report;
