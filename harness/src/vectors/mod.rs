//! # Golden vectors: replaying cases recorded from real frameworks
//!
//! `quant-vectors/1` files (see `tests/vectors/VECTORS.md`) hold cases recorded from PyTorch and
//! ONNX Runtime: an op, the profile whose arithmetic produced it, attrs, input tensors and the
//! expected output tensors with an optional tolerance. This module replays them through the
//! reference and through every optimized ISA, and says which pass, fail or were skipped.
//!
//! | module | what |
//! |---|---|
//! | [`parse`] | JSONL lines to [`Case`]s, every field checked, errors naming the field |
//! | [`compare`] | shape and tolerance rules |
//! | [`ops`] | the registry: one entry per op, a function of (case, profile, path) to outputs |
//! | [`runner`] | every case on every path, gathered into a [`Summary`] |
//! | [`table`] | the text report |
//!
//! ```no_run
//! use quantproof_harness::vectors::Runner;
//! let summary = Runner::new(None).unwrap().run_paths(&["tests/vectors"]);
//! print!("{}", quantproof_harness::vectors::table::render(&summary, false));
//! assert_eq!(summary.failed, 0);
//! ```
//!
//! A case passes only when the reference and every optimized path that ran pass; an op or
//! profile without an implementation is counted as skipped, never as passed.

pub mod compare;
pub mod ops;
pub mod parse;
pub mod runner;
pub mod table;

pub use parse::{Case, Tensor};
pub use runner::{meta_counts, CaseResult, OpRow, Runner, Status, Summary};
