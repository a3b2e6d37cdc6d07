//! The domains of the tool's arguments, checked before any work starts.
//!
//! Every numeric argument has a documented range; a value outside it is a usage error (exit
//! status 2) that names the argument and the value given, never a silent coercion. Sizes are
//! checked against the memory this machine has before anything is allocated, so a typo such as
//! `--size 100G` gets "too large for this machine's memory" instead of an abort.
//!
//! | argument | domain |
//! |---|---|
//! | `--threads` | 1 ..= [`MAX_THREADS`] |
//! | `--reps` | 1 ..= [`MAX_REPS`] |
//! | `--bins` | 1 ..= [`MAX_BINS`] |
//! | `--size` | 1 ..= [`MAX_ELEMENTS`], and its buffers must fit in the memory available |
//! | `QUANTPROOF_ISA` | unset, empty, or an instruction set this CPU has |

use quantproof_optimized::isa;

/// Most worker threads a command accepts.
pub const MAX_THREADS: usize = 1024;
/// Most timed repetitions a benchmark accepts.
pub const MAX_REPS: usize = 1_000_000;
/// Most histogram bins (float32 bin indices stay exact up to 2^24).
pub const MAX_BINS: usize = 1 << 24;
/// Most elements a benchmark workload may hold (2^34: 64 GiB of f32 input alone).
pub const MAX_ELEMENTS: usize = 1 << 34;

/// `value` when it lies in `lo..=hi`, else a message naming `arg`.
pub fn in_range(arg: &str, value: usize, lo: usize, hi: usize) -> Result<usize, String> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{arg} {value} is outside its domain {lo}..={hi}"))
    }
}

/// Fails when `QUANTPROOF_ISA` names an unknown instruction set or one this CPU lacks (the
/// library would ignore it and dispatch to the widest one; a command must not measure or verify
/// something other than what the user asked for).
pub fn env_isa() -> Result<(), String> {
    isa::env_override().map(|_| ()).map_err(|e| format!("QUANTPROOF_ISA: {e}"))
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where it cannot be read).
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fails when `bytes` (what `what` needs) exceed the memory available, with both figures in the
/// message. Where the available memory cannot be read, only [`MAX_ELEMENTS`]-style caps apply.
pub fn fits_in_memory(what: &str, bytes: u128) -> Result<(), String> {
    match mem_available() {
        Some(avail) if bytes > avail as u128 => Err(format!(
            "{what} is too large for this machine's memory: it needs about {:.1} GiB, {:.1} GiB are available",
            bytes as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_argument() {
        assert_eq!(in_range("--threads", 2, 1, MAX_THREADS), Ok(2));
        let e = in_range("--threads", 0, 1, MAX_THREADS).unwrap_err();
        assert!(e.contains("--threads 0") && e.contains("1..=1024"), "{e}");
        assert!(in_range("--bins", MAX_BINS + 1, 1, MAX_BINS).is_err());
    }

    #[test]
    fn memory_check() {
        assert!(fits_in_memory("tiny", 1).is_ok());
        if mem_available().is_some() {
            let e = fits_in_memory("--size 100G", 1 << 70).unwrap_err();
            assert!(e.contains("too large for this machine's memory"), "{e}");
        }
    }
}
