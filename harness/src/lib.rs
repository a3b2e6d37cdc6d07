//! # quantproof-harness: proving and measuring
//!
//! The machinery behind `cargo test`, `cargo bench` and the `quantproof` tool.

pub mod cli;
pub mod equiv;
pub mod exhaustive;
