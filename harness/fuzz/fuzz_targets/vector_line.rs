//! One golden-vector line from arbitrary bytes, parsed and replayed on every path
//! (`quantproof_harness::fuzz::vector_line`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantproof_harness::vectors::Runner;
use std::sync::OnceLock;

fn runner() -> Option<&'static Runner> {
    static R: OnceLock<Option<Runner>> = OnceLock::new();
    R.get_or_init(|| Runner::new(None).ok()).as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = runner() {
        quantproof_harness::fuzz::vector_line(r, data)
    }
});
