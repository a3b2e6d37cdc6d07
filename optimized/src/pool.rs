//! Persistent worker pools, one per thread count.
//!
//! Spawning OS threads costs tens of microseconds, as much as quantizing a million elements, so
//! `Engine::with_threads(T)` runs its work on a pool of `T` workers that lives for the rest of the
//! process (rayon's pools, built on first use and cached per `T`). A pool that cannot be built
//! (the OS refuses threads) is not an error: the work then runs on the calling thread, with the
//! same results, since every parallel split in this crate is exact.

use rayon::ThreadPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The pool that, with the calling thread, makes `threads` workers (`None` when `threads <= 1`
/// or the pool cannot be built).
pub fn get(threads: usize) -> Option<Arc<ThreadPool>> {
    if threads <= 1 {
        return None;
    }
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(|| Mutex::new(HashMap::new())).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Some(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads - 1)
        .thread_name(move |i| format!("quantproof-{threads}-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    pools.insert(threads, pool.clone());
    Some(pool)
}

/// Runs every task, on the `threads`-worker pool when there is one and more than one task, else
/// one after the other on the calling thread. Returns the tasks' results in order. A panicking
/// task (a bug, never a property of the data) panics the caller.
pub fn run<'a, R: Send>(threads: usize, tasks: Vec<Box<dyn FnOnce() -> R + Send + 'a>>) -> Vec<R> {
    match get(threads) {
        Some(pool) if tasks.len() > 1 => {
            let mut slots: Vec<Option<R>> = (0..tasks.len()).map(|_| None).collect();
            // The calling thread runs the first task itself while the workers take the others:
            // it starts at once, and one wake-up fewer is paid.
            pool.in_place_scope(|s| {
                let mut pairs = tasks.into_iter().zip(slots.iter_mut());
                let first = pairs.next();
                for (task, slot) in pairs {
                    s.spawn(move |_| *slot = Some(task()));
                }
                if let Some((task, slot)) = first {
                    *slot = Some(task());
                }
            });
            slots.into_iter().flatten().collect()
        }
        _ => tasks.into_iter().map(|t| t()).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_in_order_on_any_thread_count() {
        for threads in 0..4 {
            let tasks: Vec<Box<dyn FnOnce() -> usize + Send>> =
                (0..7usize).map(|i| Box::new(move || i * i) as Box<dyn FnOnce() -> usize + Send>).collect();
            assert_eq!(super::run(threads, tasks), vec![0, 1, 4, 9, 16, 25, 36]);
        }
        assert!(super::get(1).is_none());
        assert!(std::sync::Arc::ptr_eq(&super::get(2).unwrap(), &super::get(2).unwrap()));
    }
}
