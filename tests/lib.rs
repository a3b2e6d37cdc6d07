//! Shared helpers for the workspace-level tests (the test targets are listed in `Cargo.toml`).

use std::path::PathBuf;

/// `tests/vectors`: the golden vectors copied from the frameworks (see `VECTORS.md` there).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}
