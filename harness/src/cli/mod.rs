//! The `quantproof` subcommands, one module each.

pub mod bench;
pub mod domain;
pub mod info;
pub mod minilm;
pub mod ops;
pub mod overflow;
pub mod profiles;
pub mod report;
pub mod verify;
