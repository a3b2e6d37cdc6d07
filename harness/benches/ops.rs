//! Criterion over the op registry: every bench workload of every op in
//! `quantproof_harness::registry::OPS` (the same workloads `quantproof bench` times), on the
//! scalar reference and on every instruction set this CPU has, one thread, at 64K elements
//! (cache-resident) and 1M. Adding an op's workload to the registry adds it here.
//!
//! `cargo bench -p quantproof-harness --bench ops [-- FILTER]`
//!
//! Each implementation's output is checked against the reference once before it is timed (a
//! kernel that is fast but wrong stops the bench instead of giving a figure).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quantproof_harness::bench::{table, Bench, Setup};
use quantproof_harness::path::Path;
use std::time::Duration;

const SIZES: [usize; 2] = [1 << 16, 1 << 20];

fn registry(c: &mut Criterion) {
    for spec in table() {
        let mut group = c.benchmark_group(spec.name);
        group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
        for size in SIZES {
            let setup = match Setup::resolve(spec, size, None, None, None) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("note: {}: {e}; not benchmarked", spec.name);
                    continue;
                }
            };
            let mut bench = match Bench::new(spec, setup) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("note: {e}; not benchmarked");
                    continue;
                }
            };
            group.throughput(Throughput::Elements(size as u64));
            for path in Path::all(1) {
                bench.workload.scramble();
                if let Err(e) = bench.workload.run(&path) {
                    eprintln!("note: {} on {}: {e}; not benchmarked", spec.name, path.name());
                    continue;
                }
                if let Path::Optimized(_) = path {
                    if let Err(m) = bench.workload.verify() {
                        panic!("{} on {}: output differs from the reference: {m}", spec.name, path.name());
                    }
                }
                group.bench_with_input(BenchmarkId::new(path.name(), size), &size, |b, _| {
                    b.iter(|| bench.workload.run(&path).map_err(|e| e.to_string()))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, registry);
criterion_main!(benches);
