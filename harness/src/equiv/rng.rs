//! The workspace's seeded generator ([`quantproof_reference::rng`]): the equivalence runner
//! derives every input of a case from one `u64` seed, so a failing case is reproduced by its seed
//! alone (the proptest regression files store exactly that).

pub use quantproof_reference::rng::{hash_str, Rng};
