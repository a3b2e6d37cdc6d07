//! Persistent worker pools, one per thread count, whose idle workers spin before they sleep.
//!
//! Spawning OS threads costs tens of microseconds, as much as quantizing a million elements, so
//! `Engine::with_threads(T)` runs its work on a pool of `T - 1` workers plus the calling thread,
//! built on first use and kept for the rest of the process. A pool that cannot be built (the OS
//! refuses threads) is not an error: the work then runs on the calling thread, with the same
//! results, since every parallel split in this crate is exact.
//!
//! **Why not a general-purpose pool.** Waking a sleeping thread goes through the kernel (a futex,
//! an inter-processor interrupt, the scheduler), and on this project's virtual machines that took
//! a median of 38 us and up to 160 us (rayon's pools, which this module used before: measured
//! from the call to the moment the worker's task started, with 50 us between calls). A call that
//! then waits for the worker to finish pays a second wake-up on its own side. Two such wake-ups
//! cost a two-thread 1024^3 GEMM (0.4 ms) a fifth of its time: 1.36 to 1.64x one thread, where
//! two independent one-thread processes ran at 1.83x. So here:
//!
//! - an idle worker **spins** for [`SPIN_FOR`] after its last job (checking one atomic word, with
//!   the CPU's spin-loop hint, yielding to the OS scheduler between rounds so that an
//!   oversubscribed machine still makes progress), and only then sleeps on a condition variable;
//!   back-to-back calls, as in a model's layers or a benchmark's repetitions, find it awake;
//! - the calling thread takes tasks like any worker, then **spins** until the workers that joined
//!   the call have finished (never sleeping);
//! - a worker that has not joined by the time the tasks are all taken is not waited for: the
//!   caller closes the call, and a late worker finds it closed.
//!
//! **The protocol.** One atomic word per pool holds the call's epoch, an *open* flag and the count
//! of workers inside the call. The caller publishes the call (a pointer to a [`Job`] on its own
//! stack), then sets *open* with a new epoch. A worker joins only by incrementing the count while
//! *open* is set (compare-and-swap), reads the job pointer after joining, runs it, and decrements.
//! The caller, after its own share, clears *open* and waits for the count to reach zero, and does
//! so in a drop guard, so that even a panicking task on the calling thread cannot free the job
//! while a worker still reads it. A task that panics on a worker is caught there and re-raised
//! on the caller. One call at a time per pool: a second caller (another thread, or a task that
//! itself calls `run`) that finds the pool busy runs its tasks on its own thread.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps: long enough to bridge the gaps between the
/// calls of a model's layers or of benchmark repetitions, short enough that a pool nobody uses
/// any more goes quiet at once (OpenMP runtimes spin for 200 ms by default).
pub const SPIN_FOR: Duration = Duration::from_micros(500);

/// The state word's *open* flag; the bits above it are the epoch, the bits below the number of
/// workers inside the current call.
const OPEN: u64 = 1 << 31;
const COUNT: u64 = OPEN - 1;
const EPOCH: u64 = OPEN << 1;

/// One call's work, on the calling thread's stack. `run` takes tasks until none is left, so
/// running it on any number of threads (or again, on a thread that finds nothing left) does
/// each task once.
struct Job<'a> {
    /// Called with `true` on the calling thread, `false` on workers.
    run: &'a (dyn Fn(bool) + Sync),
    panicked: AtomicBool,
}

struct Shared {
    /// Epoch (above [`OPEN`]), open flag, workers inside the call (below it).
    state: AtomicU64,
    /// The open call's job (null between calls).
    job: AtomicPtr<Job<'static>>,
    /// Workers asleep (or about to be) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// A pool of `threads - 1` workers; the calling thread is the last one.
pub struct Pool {
    shared: Arc<Shared>,
    /// Held for the duration of a call: one call at a time.
    busy: Mutex<()>,
}

/// The pool that, with the calling thread, makes `threads` workers (`None` when `threads <= 1`
/// or its threads cannot be created).
pub fn get(threads: usize) -> Option<Arc<Pool>> {
    if threads <= 1 {
        return None;
    }
    type Pools = Mutex<Vec<(usize, Arc<Pool>)>>;
    static POOLS: OnceLock<Pools> = OnceLock::new();
    let mut pools = POOLS.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(t, _)| *t == threads) {
        return Some(p.clone());
    }
    let pool = Arc::new(Pool::new(threads - 1)?);
    pools.push((threads, pool.clone()));
    Some(pool)
}

impl Pool {
    /// `workers` threads, or `None` when the OS refuses one (those already started then idle
    /// asleep for good, which costs nothing but their stacks).
    fn new(workers: usize) -> Option<Pool> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        for i in 0..workers {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("quantproof-{}-{i}", workers + 1))
                .spawn(move || worker(&s))
                .ok()?;
        }
        Some(Pool { shared, busy: Mutex::new(()) })
    }

    /// Runs `body(true)` on the calling thread and `body(false)` on every worker that joins before
    /// that returns (`body` must share its work out itself and tolerate running on a thread that
    /// finds none left). Returns whether `body` panicked on a worker.
    fn call(&self, body: &(dyn Fn(bool) + Sync)) -> bool {
        let s = &*self.shared;
        let job = Job { run: body, panicked: AtomicBool::new(false) };
        // Publish the job, then open the call under a new epoch (no worker is inside: the last
        // call's guard waited for them all, and `busy` keeps calls apart).
        s.job.store(std::ptr::from_ref(&job).cast_mut().cast::<Job<'static>>(), Release);
        let epoch = (s.state.load(Relaxed) & !(OPEN | COUNT)).wrapping_add(EPOCH);
        s.state.store(epoch | OPEN, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        {
            // Closes the call and waits for the workers inside it, also when `body` panics here.
            let _close = Close(s);
            body(true);
        }
        job.panicked.load(Acquire)
    }
}

/// Drop guard of a call: clears *open* and spins until no worker is inside the call, then
/// retracts the job pointer.
struct Close<'a>(&'a Shared);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        let s = self.0;
        s.state.fetch_and(!OPEN, SeqCst);
        let start = Instant::now();
        while s.state.load(Acquire) & COUNT != 0 {
            std::hint::spin_loop();
            if start.elapsed() > SPIN_FOR {
                // A worker descheduled mid-task (an oversubscribed machine): let it run.
                std::thread::yield_now();
            }
        }
        s.job.store(std::ptr::null_mut(), Release);
    }
}

/// A worker's life: wait for a call of a new epoch, join it, run its job, leave; forever.
fn worker(s: &Shared) {
    let mut last_epoch = 0;
    loop {
        let state = wait_for_call(s, last_epoch);
        last_epoch = state & !(OPEN | COUNT);
        // Join: count ourselves in, only while the call is open.
        let mut cur = state;
        let joined = loop {
            if cur & OPEN == 0 || cur & !(OPEN | COUNT) != last_epoch {
                break false;
            }
            match s.state.compare_exchange_weak(cur, cur + 1, AcqRel, Acquire) {
                Ok(_) => break true,
                Err(now) => cur = now,
            }
        };
        if !joined {
            continue;
        }
        let ptr = s.job.load(Acquire);
        // SAFETY: we joined the open call (the count includes us), and the caller stored `ptr`
        // (its `Job`, on its stack) before opening the call with a SeqCst store that our acquiring
        // compare-and-swap observed, so `ptr` is that call's job, non-null. The caller does not
        // leave `Pool::call` (nor unwind out of it) until the count returns to zero (`Close`), so
        // the job outlives this reference, which ends before our decrement below.
        let job = unsafe { &*ptr };
        if catch_unwind(AssertUnwindSafe(|| (job.run)(false))).is_err() {
            job.panicked.store(true, Release);
        }
        s.state.fetch_sub(1, Release);
    }
}

/// Spins, then sleeps, until the state shows an open call of an epoch other than `last`;
/// returns that state.
fn wait_for_call(s: &Shared, last: u64) -> u64 {
    let fresh = |state: u64| state & OPEN != 0 && state & !(OPEN | COUNT) != last;
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            let state = s.state.load(Acquire);
            if fresh(state) {
                return state;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() > SPIN_FOR {
            break;
        }
        std::thread::yield_now();
    }
    let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
    s.sleepers.fetch_add(1, SeqCst);
    loop {
        // Checked after announcing ourselves (SeqCst on both sides): either the caller sees a
        // sleeper and notifies under the lock, or we see its open call here.
        let state = s.state.load(SeqCst);
        if fresh(state) {
            s.sleepers.fetch_sub(1, SeqCst);
            return state;
        }
        g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// Runs every task, on the `threads`-worker pool when there is one, it is free, and there is
/// more than one task; else one after the other on the calling thread. The calling thread runs
/// the first task, and it and the workers take the others in order as each becomes free. Returns the tasks' results in order.
/// A panicking task (a bug, never a property of the data) panics the caller.
pub fn run<'a, R: Send>(threads: usize, tasks: Vec<Box<dyn FnOnce() -> R + Send + 'a>>) -> Vec<R> {
    let sequential = |tasks: Vec<Box<dyn FnOnce() -> R + Send + 'a>>| tasks.into_iter().map(|t| t()).collect();
    if tasks.len() <= 1 {
        return sequential(tasks);
    }
    let Some(pool) = get(threads) else { return sequential(tasks) };
    // A busy pool (another caller, or a task of this pool calling `run`): this thread alone.
    let _busy = match pool.busy.try_lock() {
        Ok(g) => g,
        // Poisoned by a call whose task panicked: the pool itself is intact (`Close` waited).
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return sequential(tasks),
    };
    // Each task, taken once, and its result.
    type Slot<'a, R> = Mutex<(Option<Box<dyn FnOnce() -> R + Send + 'a>>, Option<R>)>;
    let slots: Vec<Slot<'a, R>> = tasks.into_iter().map(|t| Mutex::new((Some(t), None))).collect();
    // Task 0 is the calling thread's, the others go to whoever is free first: with as many
    // tasks as threads, each part of the data stays with the same thread from call to call
    // (and in its core's cache) unless a worker is late.
    let next = AtomicUsize::new(1);
    let body = |caller: bool| {
        let mut i = if caller { 0 } else { next.fetch_add(1, Relaxed) };
        while let Some(slot) = slots.get(i) {
            // Each index is taken once, so its lock is never contended; the task runs unlocked.
            let task = slot.lock().map(|mut g| g.0.take()).unwrap_or(None);
            if let Some(task) = task {
                let r = task();
                if let Ok(mut g) = slot.lock() {
                    g.1 = Some(r);
                }
            }
            i = next.fetch_add(1, Relaxed);
        }
    };
    if pool.call(&body) {
        panic!("a task on a quantproof pool worker panicked");
    }
    slots.into_iter().filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_on_any_thread_count() {
        for threads in 0..4 {
            for n in [0usize, 1, 2, 7, 100] {
                let tasks: Vec<Box<dyn FnOnce() -> usize + Send>> =
                    (0..n).map(|i| Box::new(move || i * i) as Box<dyn FnOnce() -> usize + Send>).collect();
                assert_eq!(run(threads, tasks), (0..n).map(|i| i * i).collect::<Vec<_>>());
            }
        }
        assert!(get(1).is_none());
        assert!(Arc::ptr_eq(&get(2).unwrap(), &get(2).unwrap()));
    }

    /// Many short calls in a row, with and without pauses longer than the spin (workers asleep
    /// and woken), from several threads at once (a busy pool runs the extra callers inline) and
    /// with a nested call: every task exactly once, every result in order.
    #[test]
    fn every_task_once_across_calls_sleeps_and_concurrent_callers() {
        let callers: Vec<_> = (0..3)
            .map(|c| {
                std::thread::spawn(move || {
                    for round in 0..300usize {
                        let counter = AtomicUsize::new(0);
                        let n = 1 + (round + c) % 9;
                        let tasks: Vec<Box<dyn FnOnce() -> usize + Send + '_>> = (0..n)
                            .map(|i| {
                                let counter = &counter;
                                Box::new(move || {
                                    counter.fetch_add(1, Relaxed);
                                    if i == 0 && round % 50 == 0 {
                                        // A nested call on the same pool: runs inline.
                                        let inner: Vec<Box<dyn FnOnce() -> usize + Send>> =
                                            vec![Box::new(|| 1), Box::new(|| 2)];
                                        assert_eq!(run(2, inner), vec![1, 2]);
                                    }
                                    i + round
                                }) as Box<dyn FnOnce() -> usize + Send + '_>
                            })
                            .collect();
                        let out = run(2, tasks);
                        assert_eq!(out, (0..n).map(|i| i + round).collect::<Vec<_>>());
                        assert_eq!(counter.load(Relaxed), n);
                        if round % 100 == 99 {
                            std::thread::sleep(SPIN_FOR * 3);
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    /// A task that panics, on whichever thread it runs, panics the caller, and the pool keeps
    /// working afterwards.
    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_survives() {
        for which in 0..4usize {
            let r = std::panic::catch_unwind(|| {
                let tasks: Vec<Box<dyn FnOnce() -> usize + Send>> = (0..4usize)
                    .map(|i| {
                        Box::new(move || {
                            if i == which {
                                std::thread::sleep(Duration::from_millis(1));
                                panic!("task {i}");
                            }
                            i
                        }) as Box<dyn FnOnce() -> usize + Send>
                    })
                    .collect();
                run(3, tasks)
            });
            assert!(r.is_err());
            let tasks: Vec<Box<dyn FnOnce() -> usize + Send>> =
                (0..5usize).map(|i| Box::new(move || i) as Box<dyn FnOnce() -> usize + Send>).collect();
            assert_eq!(run(3, tasks), vec![0, 1, 2, 3, 4]);
        }
    }
}
