//! The `quantproof` subcommands, one module each.

pub mod info;
pub mod verify;
