//! Every ISA's `Engine` against the reference, for every operation in the descriptor table
//! (`quantproof_harness::equiv`): deterministic sweeps of lengths, layouts, rules and offsets;
//! one input class at a time; a threaded mode on 200K-element tensors; and proptest for the rest.
//!
//! ISAs this CPU lacks are announced on stderr (`skipping avx512: not available on this CPU`);
//! `QUANTPROOF_REQUIRE_ISA=avx2,avx512` turns a missing one into a failure. Sizes scale with
//! `QUANTPROOF_TEST_SCALE` (default 1 on x86-64, 0.2 on other targets, which CI runs under qemu).

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use quantproof_harness::equiv::gen::all_rules;
use quantproof_harness::equiv::runner::{class_specs, missing_required_isas, sweep_specs, threaded_specs};
use quantproof_harness::equiv::{announce, descriptors, Budget, CaseSpec, Class, Layout, Mix, OpDescriptor, Runner};
use quantproof_optimized::isa;
use std::time::Instant;

fn run_specs(runner: &mut Runner, op: &dyn OpDescriptor, specs: &[CaseSpec]) {
    if let Err(m) = runner.check_all(op, specs) {
        panic!("{m}");
    }
}

/// Runs `specs_of(op)` for every descriptor, with the descriptors split over two threads.
fn sweep_all(threads: &[usize], specs_of: &(dyn Fn(&dyn OpDescriptor) -> Vec<CaseSpec> + Sync)) -> String {
    let ops = descriptors();
    let t0 = Instant::now();
    let summaries: Vec<String> = std::thread::scope(|s| {
        let halves: Vec<Vec<&Box<dyn OpDescriptor>>> =
            vec![ops.iter().step_by(2).collect(), ops.iter().skip(1).step_by(2).collect()];
        let handles: Vec<_> = halves
            .into_iter()
            .map(|half| {
                s.spawn(move || {
                    let mut runner = Runner::new(threads);
                    for op in half {
                        run_specs(&mut runner, op.as_ref(), &specs_of(op.as_ref()));
                    }
                    runner.summary()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let summary = summaries.concat();
    eprintln!("{summary}({:.2} s)", t0.elapsed().as_secs_f64());
    summary
}

#[test]
fn every_isa_is_tested_or_announced() {
    let skipped = announce();
    let available = isa::available();
    for i in isa::Isa::ALL {
        assert!(available.contains(&i) != skipped.contains(&i), "{i} is neither tested nor announced");
    }
    let missing = missing_required_isas();
    assert!(missing.is_empty(), "QUANTPROOF_REQUIRE_ISA names ISAs this CPU cannot run: {missing:?}");
    // Every available ISA gets cases for every descriptor.
    let mut runner = Runner::single_threaded();
    for op in descriptors() {
        let spec = CaseSpec::new(9, 37, Layout::PerTensor, all_rules()[0]);
        runner.check_spec(op.as_ref(), &spec).unwrap_or_else(|m| panic!("{m}"));
        for &i in &available {
            assert_eq!(runner.tally()[&(op.name(), i)].cases, 1, "{} on {i}", op.name());
        }
    }
}

#[test]
fn sweep_lengths_layouts_rules_offsets() {
    let budget = Budget::from_env();
    let summary = sweep_all(&[1], &|op| sweep_specs(op, &budget));
    for op in descriptors() {
        assert!(summary.contains(op.name()), "{} was not run", op.name());
    }
}

#[test]
fn sweep_one_input_class_at_a_time() {
    let budget = Budget::from_env();
    sweep_all(&[1], &|op| class_specs(op, &budget));
}

#[test]
fn threaded_mode_on_large_tensors() {
    sweep_all(&[2, 3], &|op| threaded_specs(op));
}

/// Small lengths most of the time, sometimes up to a few thousand, rarely past a 64K chunk.
fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![
        12 => 0usize..=67,
        6 => 68usize..=700,
        2 => 700usize..=5000,
        1 => 65_000usize..=70_000,
    ]
}

fn mixes() -> impl Strategy<Value = Mix> {
    prop_oneof![
        4 => Just(Mix::Mixed),
        1 => proptest::sample::select(Class::ALL.to_vec()).prop_map(Mix::Only),
    ]
}

fn config(cases: u32, file: &'static str) -> Config {
    Config { cases, failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))), ..Config::default() }
}

proptest! {
    #![proptest_config(config(
        Budget::from_env().count(1500) as u32,
        "proptest-regressions/equivalence.txt",
    ))]

    /// Random descriptor, seed, length, layout, rule, offset and input mix, on every ISA.
    #[test]
    fn random_cases_agree_on_every_isa(
        op_index in 0usize..64,
        seed in any::<u64>(),
        len in lengths(),
        layout_index in 0usize..7,
        rule_index in 0usize..12,
        offset in 0usize..4,
        mix in mixes(),
    ) {
        let ops = descriptors();
        let op = &ops[op_index % ops.len()];
        let layout = op.layouts()[layout_index % op.layouts().len()];
        let rules = all_rules();
        let spec = CaseSpec::new(seed, len, layout, rules[rule_index % rules.len()]).offset(offset).mix(mix);
        let mut runner = Runner::single_threaded();
        if let Err(m) = runner.check_spec(op.as_ref(), &spec) {
            return Err(TestCaseError::fail(m.to_string()));
        }
    }
}
