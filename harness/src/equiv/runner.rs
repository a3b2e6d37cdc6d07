//! The runner: descriptors x cases x every available ISA (x thread counts), and the sweeps.
//!
//! [`Runner::check`] runs the reference once and then the engine of every ISA in
//! `quantproof_optimized::isa::available()` (at every thread count the runner was built with),
//! and compares each outcome with the reference's ([`super::outcome::compare`]). An ISA this CPU
//! lacks is never skipped silently: [`announce_skipped`] writes `skipping avx512: not available
//! on this CPU` to stderr (past the test harness's output capture), once per process. Setting
//! `QUANTPROOF_REQUIRE_ISA=avx2,avx512` makes [`missing_required_isas`] report required ISAs that
//! are not available, so CI on a known machine can refuse to pass with an ISA untested (as
//! matrixmultiply's `MMTEST_ENSUREFEATURE` does).
//!
//! The deterministic sweeps ([`sweep_specs`], [`class_specs`], [`threaded_specs`]) enumerate
//! lengths 0..=67 and 255, 1000, 4099, 70000 (more than one 64K chunk), every layout, every rule
//! and every input class, with offsets 0..=3; [`Budget`] scales the expensive parts down (on
//! aarch64 under qemu, or by `QUANTPROOF_TEST_SCALE`) without dropping any class of check.

use super::gen::{all_rules, rule_name, Case, CaseSpec, Class, Mix};
use super::ops::OpDescriptor;
use super::outcome::{compare, Difference};
use super::rng::hash_str;
use crate::path::Path;
use quantproof_optimized::isa::{self, Isa};
use quantproof_optimized::ops::Engine;
use quantproof_reference::rounding::RoundingMode;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::Once;

/// Writes one `skipping <isa>: not available on this CPU` line per ISA in `Isa::ALL` that this CPU
/// (or this build's target) cannot run, to stderr, once per process; returns those ISAs.
pub fn announce_skipped() -> Vec<Isa> {
    static ONCE: Once = Once::new();
    let skipped: Vec<Isa> = Isa::ALL.into_iter().filter(|i| !i.is_available()).collect();
    ONCE.call_once(|| {
        // Direct to the stream: the test harness captures `eprintln!`, not this.
        let mut err = std::io::stderr().lock();
        for i in &skipped {
            let _ = writeln!(err, "skipping {}: not available on this CPU", i.name());
        }
        let names: Vec<&str> = isa::available().iter().map(|i| i.name()).collect();
        let _ = writeln!(err, "equivalence: testing ISAs {}", names.join(", "));
    });
    skipped
}

/// ISAs named in `QUANTPROOF_REQUIRE_ISA` (comma-separated) that are unknown or unavailable.
pub fn missing_required_isas() -> Vec<String> {
    let Ok(list) = std::env::var("QUANTPROOF_REQUIRE_ISA") else { return Vec::new() };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter(|s| !Isa::parse(s).is_some_and(|i| i.is_available()))
        .map(String::from)
        .collect()
}

/// How much of the expensive sweeps to run: `1.0` on x86-64, `0.2` elsewhere (aarch64 runs under
/// qemu in CI), or `QUANTPROOF_TEST_SCALE` when set to a positive number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub scale: f64,
}

impl Budget {
    pub fn from_env() -> Budget {
        let default = if cfg!(target_arch = "x86_64") { 1.0 } else { 0.2 };
        let scale = std::env::var("QUANTPROOF_TEST_SCALE")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(default);
        Budget { scale }
    }

    /// `full` scaled, at least 1.
    pub fn count(&self, full: usize) -> usize {
        ((full as f64 * self.scale).round() as usize).max(1)
    }
}

/// Cases and elements checked for one descriptor on one ISA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub cases: u64,
    /// Cases whose outcome was an error (on both sides, equal).
    pub errors: u64,
    pub elements: u64,
}

/// A disagreement between the reference and an engine, with everything needed to reproduce it.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub op: &'static str,
    pub isa: Isa,
    pub threads: usize,
    pub difference: Difference,
    /// [`Case::describe`].
    pub case: String,
    /// [`Case::explain`] of the first differing element, when the difference is in values.
    pub element: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} ({} thread(s)) differs from the reference: {}",
            self.op, self.isa, self.threads, self.difference
        )?;
        if let Some(e) = &self.element {
            write!(f, "\n  element: {e}")?;
        }
        write!(f, "\n  case: {}", self.case)
    }
}

/// Runs descriptors' cases on the reference and on every available ISA.
pub struct Runner {
    engines: Vec<Engine>,
    tally: BTreeMap<(&'static str, Isa), Tally>,
}

impl Runner {
    /// Engines for every available ISA at each of `threads` (announcing the skipped ISAs).
    pub fn new(threads: &[usize]) -> Runner {
        announce_skipped();
        let mut engines = Vec::new();
        for i in isa::available() {
            for &t in threads {
                if let Ok(e) = Engine::new(i) {
                    engines.push(e.with_threads(t).with_parallel_threshold(1));
                }
            }
        }
        Runner { engines, tally: BTreeMap::new() }
    }

    /// One thread per engine.
    pub fn single_threaded() -> Runner {
        Runner::new(&[1])
    }

    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Checks one case on every engine; stops at the first disagreement.
    pub fn check(&mut self, op: &dyn OpDescriptor, case: &Case) -> Result<(), Box<Mismatch>> {
        let reference = op.run(&Path::Reference, case);
        for &e in &self.engines {
            let got = op.run(&Path::Optimized(e), case);
            if let Err(difference) = compare(&reference, &got) {
                let element = match &difference {
                    Difference::Values { tensor, first, .. } => Some(op.explain(case, tensor, *first)),
                    _ => None,
                };
                return Err(Box::new(Mismatch {
                    op: op.name(),
                    isa: e.isa(),
                    threads: e.threads(),
                    difference,
                    case: case.describe(),
                    element,
                }));
            }
            let t = self.tally.entry((op.name(), e.isa())).or_default();
            t.cases += 1;
            t.errors += reference.is_err() as u64;
            t.elements += elements(case);
        }
        Ok(())
    }

    /// Builds the case of `spec` and checks it.
    pub fn check_spec(&mut self, op: &dyn OpDescriptor, spec: &CaseSpec) -> Result<(), Box<Mismatch>> {
        let case = op.generate(spec);
        self.check(op, &case)
    }

    /// Checks every spec, stopping at the first disagreement.
    pub fn check_all(&mut self, op: &dyn OpDescriptor, specs: &[CaseSpec]) -> Result<(), Box<Mismatch>> {
        specs.iter().try_for_each(|s| self.check_spec(op, s))
    }

    /// What was checked, per descriptor and ISA.
    pub fn tally(&self) -> &BTreeMap<(&'static str, Isa), Tally> {
        &self.tally
    }

    /// One line per descriptor: cases (of which errors) and elements, per ISA.
    pub fn summary(&self) -> String {
        let mut by_op: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((op, isa), t) in &self.tally {
            by_op
                .entry(op)
                .or_default()
                .push(format!("{isa}: {} cases ({} errors), {} elements", t.cases, t.errors, t.elements));
        }
        by_op.iter().map(|(op, v)| format!("{op}: {}\n", v.join("; "))).collect()
    }
}

/// Elements a case covers: its input length (codes, floats or nibbles).
fn elements(case: &Case) -> u64 {
    // Elements computed: the output's (for packed 4-bit output, two per byte), or the input's for
    // the ops that reduce.
    let packed = 2 * case.packed().len();
    let largest_input = case.inputs.iter().map(|i| i.view_len()).max().unwrap_or(0);
    case.out_len.max(largest_input).max(packed) as u64
}

/// The widest vector register of any ISA level quantproof has kernels for, in bytes.
const WIDEST_BYTES: usize = {
    let (mut w, mut i) = (0, 0);
    while i < Isa::ALL.len() {
        if Isa::ALL[i].vector_bytes() > w {
            w = Isa::ALL[i].vector_bytes();
        }
        i += 1;
    }
    w
};
/// Small lengths, derived from the ISAs' declared widths ([`Isa::vector_bytes`]): every tail of
/// every vector width for 32-bit elements, up to four of the widest vectors (the reductions'
/// unrolled block) plus 3 (`0..=67` with AVX-512's 64 bytes).
pub const SMALL_LENGTHS: std::ops::RangeInclusive<usize> = 0..=4 * (WIDEST_BYTES / 4) + 3;
/// Larger lengths: odd sizes, and 70000, more than one 64K chunk.
pub const LARGE_LENGTHS: [usize; 4] = [255, 1000, 4099, 70_000];

/// The edges of the byte kernels (one 8-bit code per byte), from each ISA's vector width `w`:
/// `w - 1`, `w`, `w + 1`, `2w + 1`, `4w - 1`, `4w + 3` (a block of four vectors and its tails),
/// those beyond [`SMALL_LENGTHS`] and not in [`LARGE_LENGTHS`].
pub fn width_lengths() -> Vec<usize> {
    let mut v: Vec<usize> = Isa::ALL
        .iter()
        .flat_map(|isa| {
            let w = isa.vector_bytes();
            [w - 1, w, w + 1, 2 * w + 1, 4 * w - 1, 4 * w + 3]
        })
        .filter(|n| !SMALL_LENGTHS.contains(n) && !LARGE_LENGTHS.contains(n))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
/// The threaded mode's length (more than three 64K chunks, with an odd tail).
pub const THREADED_LENGTH: usize = 200_003;

/// The rules a descriptor is swept under: every rule when it reads one, else one.
pub fn rules_for(op: &dyn OpDescriptor) -> Vec<quantproof_reference::quantize::QuantizeRule> {
    if op.uses_rule() {
        all_rules()
    } else {
        vec![quantproof_reference::quantize::QuantizeRule::new(
            quantproof_reference::quantize::ScaleOp::Divide,
            RoundingMode::HalfToEven,
        )]
    }
}

fn seed_of(op: &dyn OpDescriptor, parts: &[u64]) -> u64 {
    parts.iter().fold(hash_str(op.name()), |h, &p| (h ^ p).wrapping_mul(0x0100_0000_01b3).rotate_left(29))
}

/// The deterministic sweep of mixed inputs: every length in [`SMALL_LENGTHS`] x layout x rule,
/// then every length of [`width_lengths`] and [`LARGE_LENGTHS`] x layout under a rotating subset of the rules
/// (`budget.count(4)` of them per length and layout, so every rule meets large inputs).
/// Offsets cycle through 0..=3.
pub fn sweep_specs(op: &dyn OpDescriptor, budget: &Budget) -> Vec<CaseSpec> {
    let rules = rules_for(op);
    let mut v = Vec::new();
    for len in SMALL_LENGTHS {
        for (li, &layout) in op.layouts().iter().enumerate() {
            for (ri, &rule) in rules.iter().enumerate() {
                let seed = seed_of(op, &[len as u64, li as u64, ri as u64]);
                v.push(CaseSpec::new(seed, len, layout, rule).offset((len + li + ri) % 4));
            }
        }
    }
    let per = budget.count(4).min(rules.len());
    let mut slot = 0;
    let larger: Vec<usize> = width_lengths().into_iter().chain(LARGE_LENGTHS).collect();
    for (di, &len) in larger.iter().enumerate() {
        for (li, &layout) in op.layouts().iter().enumerate() {
            for k in 0..per {
                let ri = (slot + k) % rules.len();
                let seed = seed_of(op, &[len as u64, li as u64, ri as u64, 1]);
                v.push(CaseSpec::new(seed, len, layout, rules[ri]).offset((di + li + k) % 4));
            }
            slot += per;
        }
    }
    v
}

/// One class at a time: every [`Class`] x layout x rule (a rotating `budget.count(rules)` subset
/// of rules per class and layout), at lengths 67 and 1000.
pub fn class_specs(op: &dyn OpDescriptor, budget: &Budget) -> Vec<CaseSpec> {
    let rules = rules_for(op);
    let per = budget.count(rules.len()).min(rules.len());
    let mut v = Vec::new();
    let mut slot = 0;
    for (ci, &class) in Class::ALL.iter().enumerate() {
        for (li, &layout) in op.layouts().iter().enumerate() {
            for k in 0..per {
                let ri = (slot + k) % rules.len();
                for len in [67usize, 1000] {
                    let seed = seed_of(op, &[ci as u64, li as u64, ri as u64, len as u64, 2]);
                    v.push(CaseSpec::new(seed, len, layout, rules[ri]).offset((ci + k) % 4).mix(Mix::Only(class)));
                }
            }
            slot += per;
        }
    }
    v
}

/// The threaded mode's cases: every layout at [`THREADED_LENGTH`] elements, the rule rotating
/// with the layout, for runners built with several threads.
pub fn threaded_specs(op: &dyn OpDescriptor) -> Vec<CaseSpec> {
    let rules = rules_for(op);
    op.layouts()
        .iter()
        .enumerate()
        .map(|(li, &layout)| {
            let ri = li % rules.len();
            CaseSpec::new(seed_of(op, &[li as u64, 3]), THREADED_LENGTH, layout, rules[ri]).offset(li % 4)
        })
        .collect()
}

/// `divide/half_even` etc. for every rule the runner sweeps (for reports).
pub fn rule_names() -> Vec<String> {
    all_rules().into_iter().map(rule_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equiv::gen::Layout;
    use crate::equiv::ops::descriptors;
    use crate::equiv::outcome::Outcome;

    #[test]
    fn sweeps_cover_every_layout_rule_and_class() {
        let budget = Budget { scale: 1.0 };
        for op in descriptors() {
            let specs = sweep_specs(op.as_ref(), &budget);
            for &layout in op.layouts() {
                for rule in rules_for(op.as_ref()) {
                    for len in SMALL_LENGTHS {
                        assert!(specs.iter().any(|s| s.layout == layout && s.rule == rule && s.len == len));
                    }
                }
                for len in width_lengths().into_iter().chain(LARGE_LENGTHS) {
                    assert!(specs.iter().any(|s| s.layout == layout && s.len == len));
                }
            }
            for rule in rules_for(op.as_ref()) {
                assert!(specs.iter().any(|s| s.rule == rule && s.len == 70_000), "{} {rule:?}", op.name());
            }
            for off in 0..4 {
                assert!(specs.iter().any(|s| s.offset == off));
            }
            // A small budget keeps every class of check.
            let small = Budget { scale: 0.05 };
            let specs = class_specs(op.as_ref(), &small);
            for class in Class::ALL {
                for &layout in op.layouts() {
                    assert!(specs.iter().any(|s| s.mix == Mix::Only(class) && s.layout == layout));
                }
            }
            let specs = sweep_specs(op.as_ref(), &small);
            for &layout in op.layouts() {
                assert!(specs.iter().any(|s| s.layout == layout && s.len == 70_000));
            }
            assert_eq!(threaded_specs(op.as_ref()).len(), op.layouts().len());
        }
    }

    /// A real descriptor whose engine side is deliberately broken by `corrupt`: stands in for a
    /// buggy kernel (a fake `Kernels` impl cannot be made from outside the optimized crate).
    struct Broken {
        inner: Box<dyn OpDescriptor>,
        corrupt: fn(&Case, Outcome) -> Outcome,
    }

    impl OpDescriptor for Broken {
        fn name(&self) -> &'static str {
            self.inner.name()
        }
        fn sweep(&self) -> crate::equiv::ops::Sweep {
            self.inner.sweep()
        }
        fn generate(&self, spec: &CaseSpec) -> Case {
            self.inner.generate(spec)
        }
        fn run(&self, path: &Path, case: &Case) -> Outcome {
            match path {
                Path::Reference => self.inner.run(path, case),
                Path::Optimized(_) => (self.corrupt)(case, self.inner.run(path, case)),
            }
        }
    }

    fn broken(name: &str, corrupt: fn(&Case, Outcome) -> Outcome) -> Broken {
        Broken { inner: crate::equiv::ops::descriptor(name).unwrap(), corrupt }
    }

    /// The first index whose input is `pred`, for planting a bug where it matters.
    fn first_x(case: &Case, pred: impl Fn(f32) -> bool) -> Option<usize> {
        case.x().iter().position(|&v| pred(v))
    }

    #[test]
    fn runner_catches_deliberately_broken_engines() {
        use crate::equiv::outcome::{Data, Tensor};
        use quantproof_reference::error::QuantError;
        let rule = all_rules()[0];
        let spec = CaseSpec::new(11, 300, Layout::PerTensor, rule).mix(Mix::Only(Class::Tie));
        let mut runner = Runner::single_threaded();

        // Ties rounded the wrong way on the last element: the index is reported.
        let op = broken("quantize_i8", |_, o| {
            o.map(|mut ts| {
                if let Data::I8(v) = &mut ts[0].data {
                    let last = v.len() - 1;
                    v[last] = v[last].wrapping_add(1);
                }
                ts
            })
        });
        let m = runner.check_spec(&op, &spec).unwrap_err();
        assert_eq!(m.difference.first_index(), Some(299), "{m}");
        assert!(m.element.as_deref().unwrap_or("").contains("x[299]"), "{m}");
        assert!(m.to_string().contains("seed: 0xb"), "{m}");

        // A fake-quantize that returns -0.0 where the reference has +0.0.
        let op = broken("fake_quantize", |c, o| {
            o.map(|mut ts| {
                if let Data::F32(v) = &mut ts[0].data {
                    if let Some(i) = v.iter().position(|&y| y == 0.0 && y.is_sign_positive()) {
                        v[i] = -0.0;
                    }
                }
                let _ = c;
                ts
            })
        });
        let zspec = CaseSpec::new(3, 50, Layout::AxisMiddle, rule).mix(Mix::Only(Class::Zero));
        assert!(runner.check_spec(&op, &zspec).is_err());

        // A mask bit flipped where the input is a boundary tie.
        let op = broken("fake_quantize_mask", |c, o| {
            let i = first_x(c, |v| v.is_finite()).unwrap_or(0);
            o.map(|mut ts| {
                if let Data::Bool(m) = &mut ts[1].data {
                    m[i] = !m[i];
                }
                ts
            })
        });
        assert!(runner.check_spec(&op, &spec).is_err());

        // The right error with the wrong index, and an error where the reference succeeds.
        let op = broken("quantize_u8", |_, o| match o {
            Err(QuantError::NanInput { what, index }) => Err(QuantError::NanInput { what, index: index + 1 }),
            other => other,
        });
        let nspec = CaseSpec::new(8, 64, Layout::BlockSmall, rule).mix(Mix::Only(Class::Nan));
        assert!(matches!(runner.check_spec(&op, &nspec).unwrap_err().difference, Difference::Errors { .. }));
        let op = broken("dequantize_u8", |_, _| Err(QuantError::EmptyInput { what: "x" }));
        assert!(matches!(runner.check_spec(&op, &spec).unwrap_err().difference, Difference::OkVsErr { .. }));

        // A dynamic quantizer whose scale is one ulp off.
        let op = broken("dynamic_quantize_onnxruntime", |_, o| {
            o.map(|mut ts| {
                if let Data::F32(v) = &mut ts[1].data {
                    v[0] = v[0].next_up();
                }
                ts
            })
        });
        assert!(runner.check_spec(&op, &CaseSpec::new(1, 100, Layout::PerTensor, rule)).is_err());

        // A min/max that loses an infinity (zero signs alone are forgiven).
        let op = broken("min_max", |_, o| {
            o.map(|ts| {
                let fix = |t: &Tensor| match &t.data {
                    Data::F32(v) if v[0].is_infinite() => Tensor::f32(t.name, &[f32::MAX.copysign(v[0])]),
                    Data::F32(v) if v[0] == 0.0 => Tensor::f32(t.name, &[-v[0]]),
                    _ => t.clone(),
                };
                ts.iter().map(fix).collect()
            })
        });
        let ispec = CaseSpec::new(2, 20, Layout::PerTensor, rule).mix(Mix::Only(Class::Infinity));
        assert!(runner.check_spec(&op, &ispec).is_err());
        let zero = CaseSpec::new(2, 20, Layout::PerTensor, rule).mix(Mix::Only(Class::Zero));
        runner.check_spec(&op, &zero).unwrap();

        // And the unbroken descriptors pass on the same cases.
        for name in ["quantize_i8", "fake_quantize", "fake_quantize_mask", "quantize_u8", "dequantize_u8", "min_max"] {
            let op = crate::equiv::ops::descriptor(name).unwrap();
            for s in [spec, zspec, nspec, ispec] {
                runner.check_spec(op.as_ref(), &s).unwrap();
            }
        }
    }

    /// Every arithmetic descriptor (two inputs, accumulators, tables, strided matrices) is held
    /// to the reference: one wrong element planted in the engine's output is reported, with the
    /// case's named inputs and attributes in the failure text.
    #[test]
    fn runner_catches_broken_arithmetic_and_gemm_engines() {
        use crate::equiv::outcome::Data;
        fn flip_last(_: &Case, o: Outcome) -> Outcome {
            o.map(|mut ts| {
                match &mut ts[0].data {
                    Data::I8(v) => v.last_mut().into_iter().for_each(|x| *x = x.wrapping_add(1)),
                    Data::U8(v) => v.last_mut().into_iter().for_each(|x| *x = x.wrapping_add(1)),
                    Data::I32(v) => v.last_mut().into_iter().for_each(|x| *x = x.wrapping_add(1)),
                    _ => {}
                }
                ts
            })
        }
        let mut runner = Runner::single_threaded();
        for name in ["qadd_i8", "qsub_u8", "qmul_i8", "requantize_u8", "sigmoid_lut_i8", "qgemm_u8s8"] {
            let op = broken(name, flip_last);
            // Some seed gives a case the reference computes (not an error) with output.
            let caught = (0..20u64).find_map(|seed| {
                let spec = CaseSpec::new(seed, 41, Layout::PerTensor, all_rules()[0]);
                runner.check_spec(&op, &spec).err()
            });
            let m = caught.unwrap_or_else(|| panic!("{name}: a corrupted engine passed"));
            assert!(m.difference.first_index().is_some(), "{name}: {m}");
            assert!(m.case.contains("inputs [") && m.case.contains("attributes ["), "{name}: {m}");
        }
    }

    #[test]
    fn runner_reports_a_real_case_and_counts_it() {
        let mut r = Runner::single_threaded();
        assert!(!r.engines().is_empty());
        let ops = descriptors();
        let op = ops.iter().find(|d| d.name() == "quantize_i8").unwrap();
        let spec = CaseSpec::new(5, 40, Layout::AxisMiddle, all_rules()[0]);
        r.check_spec(op.as_ref(), &spec).unwrap();
        let t = r.tally()[&("quantize_i8", Isa::Scalar)];
        assert_eq!(t.cases, 1);
        assert!(r.summary().contains("quantize_i8"));
    }
}
