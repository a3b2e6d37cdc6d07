//! The public ops on parameters drawn from arbitrary bytes: the reference and every engine must
//! agree (`quantproof_harness::fuzz::ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engines() -> &'static [quantproof_optimized::ops::Engine] {
    static E: OnceLock<Vec<quantproof_optimized::ops::Engine>> = OnceLock::new();
    E.get_or_init(quantproof_harness::fuzz::engines)
}

fuzz_target!(|data: &[u8]| quantproof_harness::fuzz::ops(engines(), data));
