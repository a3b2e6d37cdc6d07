//! # The generic equivalence runner
//!
//! Proves that every ISA's [`quantproof_optimized::ops::Engine`] computes exactly what the
//! reference computes, in the style of ruy's `test.h`, memchr's runner and XNNPACK's generated
//! tests: one table of operation descriptors, one case generator, one runner.
//!
//! * [`ops`]: the [`OpDescriptor`] trait and the table ([`descriptors`]): a name, a case
//!   generator, `run(&Path, case) -> Outcome` (the reference and every engine through one function).
//! * [`gen`]: cases from a seed, a length and a layout: shapes for every row of the planner's
//!   table, scales and zero points, and adversarial inputs (exact ties of `x / s` and of
//!   `x * RN(1/s)`, their ulp neighbours, clamp boundaries, signed zeros, subnormals, huge values,
//!   infinities, NaN).
//! * [`outcome`]: outputs or error, and the exact comparison (integers equal, floats
//!   bit-identical, errors equal).
//! * [`runner`]: descriptors x cases x every available ISA (x thread counts), the deterministic
//!   sweeps, and the announcement of every ISA that could not be tested.
//! * [`rng`]: the seedable generator behind all of it.
//!
//! The workspace tests drive it: `tests/equivalence.rs` (sweeps, one-class sweeps, threaded
//! mode, proptest) and `tests/errors.rs` (typed errors, the same on every path).
//!
//! ```
//! use quantproof_harness::equiv::{descriptors, gen::{all_rules, CaseSpec, Layout}, Runner};
//! let mut runner = Runner::single_threaded();
//! for op in descriptors() {
//!     let spec = CaseSpec::new(42, 33, Layout::PerTensor, all_rules()[0]);
//!     runner.check_spec(op.as_ref(), &spec).unwrap();
//! }
//! ```

pub mod arith;
pub mod calib;
pub mod gen;
pub mod ops;
pub mod outcome;
pub mod rng;
pub mod runner;

pub use gen::{Attr, Case, CaseSpec, Class, Input, Layout, Mix};
pub use ops::{descriptor, descriptors, OpDescriptor};
pub use outcome::{compare, Compare, Data, Difference, Outcome, Tensor};
pub use runner::{announce_skipped as announce, Budget, Mismatch, Runner};
