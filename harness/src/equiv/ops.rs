//! The descriptor table: every operation the runner proves equal, one [`OpDescriptor`] each.
//!
//! | descriptor | reference | engine | outputs |
//! |---|---|---|---|
//! | `quantize_i8`, `quantize_u8` | `quantize::quantize` | `Engine::quantize` | codes |
//! | `dequantize_i8`, `dequantize_u8` | `quantize::dequantize` | `Engine::dequantize` | f32 |
//! | `fake_quantize`, `fake_quantize_mask` | `quantize::fake_quantize` | `Engine::fake_quantize` | f32 (+ mask) |
//! | `quantize_packed4_i4`, `_u4` | `quantize::quantize_packed4` | `Engine::quantize_packed4` | bytes |
//! | `dequantize_packed4_i4`, `_u4` | `quantize::dequantize_packed4` | `Engine::dequantize_packed4` | f32 |
//! | `dynamic_quantize_torch`, `_onnxruntime` | `Profile::dynamic_quantize` | `Engine::dynamic_quantize` | codes, scale, zero point |
//! | `min_max` | a naive fold (one line) | `Engine::min_max` | min, max |
//! | `histogram`, `histogram_abs` | `numpy_hist::counts` (of `\|x\|`) | `Engine::histogram` | bin counts |
//! | `abs_max` | a naive fold | `Engine::abs_max` | max \|x\| |
//! | `calibrate_entropy`, `_per_batch`, `calibrate_percentile`, `_asym`, `calibrate_distribution` | `vectors::ops::calib::run_calibrate` | `run_calibrate_on` | thresholds (or mean, deviation, edges) |
//!
//! Every comparison is exact (see [`super::outcome`]), except `min_max`, whose kernels do not
//! order `-0.0` and `+0.0` (documented on `Kernels::min_max`): there a zero of either sign
//! matches.
//!
//! Output buffers start with different fillers on the two sides (zero for the reference, an
//! unlikely code or a NaN with a payload for the engine), so an element an engine forgets to
//! write shows up as a difference, and they are fenced by guard zones ([`Guarded`]): a write
//! outside the output slice fails the test. Float inputs sit between NaN fillers (`offset`
//! before, [`gen::GUARD`] after), so an engine that reads outside its input meets a NaN and
//! reports an error the reference does not.

use super::gen::{self, Case, CaseSpec, ElementParams, Layout, Mix};
use super::outcome::{Compare, Data, Outcome, Tensor};
use super::rng::{hash_str, Rng};
use crate::path::Path;
use quantproof_optimized::ops::FastCode;
use quantproof_reference::error::QuantError;
use quantproof_reference::pack::{packed_len, Int4};
use quantproof_reference::profile::Profile;
use quantproof_reference::quantize as refq;
use quantproof_reference::scheme::Signedness;
use quantproof_reference::scheme::{Code, QType};
use std::marker::PhantomData;

/// What the sweeps repeat a descriptor's cases under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// One per-tensor frame and no quantize rule: ops that read neither.
    Frame,
    /// Every parameter layout (per tensor, per axis, per block): the dequantizing ops.
    Layouts,
    /// Every layout under every rule: the quantizing ops.
    LayoutsAndRules,
}

/// One operation the runner proves equal on every ISA.
pub trait OpDescriptor: Send + Sync {
    /// A short stable name (also salts the case generator).
    fn name(&self) -> &'static str;
    /// What the sweeps repeat the op under (one per-tensor frame unless it says otherwise).
    fn sweep(&self) -> Sweep {
        Sweep::Frame
    }
    /// Whether the op reads the quantize rule (from [`OpDescriptor::sweep`]).
    fn uses_rule(&self) -> bool {
        self.sweep() == Sweep::LayoutsAndRules
    }
    /// The parameter layouts the op accepts (from [`OpDescriptor::sweep`]).
    fn layouts(&self) -> &'static [Layout] {
        match self.sweep() {
            Sweep::Frame => &[Layout::PerTensor],
            Sweep::Layouts | Sweep::LayoutsAndRules => &Layout::ALL,
        }
    }
    /// Builds the case of `spec` (deterministic).
    fn generate(&self, spec: &CaseSpec) -> Case;
    /// The outcome on one path (the reference, or the engine on one ISA level). Output buffers
    /// start with [`filler`]'s value for the path, so an element an engine forgets to write
    /// differs from the reference's.
    fn run(&self, path: &Path, case: &Case) -> Outcome;
    /// What produced element `index` of output `tensor` (for failure reports).
    fn explain(&self, case: &Case, tensor: &str, index: usize) -> String {
        let _ = tensor;
        case.explain(index)
    }
}

/// Every descriptor, in the order of [`crate::registry::OPS`] (see the module docs).
pub fn descriptors() -> Vec<Box<dyn OpDescriptor>> {
    crate::registry::OPS.iter().filter_map(|e| e.equiv).flat_map(|make| make()).collect()
}

/// `quantize` to `i8` and `u8`.
pub fn quantize() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Quantize::<i8>(PhantomData)), Box::new(Quantize::<u8>(PhantomData))]
}

/// `dequantize` from `i8` and `u8`.
pub fn dequantize() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Dequantize::<i8>(PhantomData)), Box::new(Dequantize::<u8>(PhantomData))]
}

/// `fake_quantize` without and with the straight-through mask.
pub fn fake_quantize() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(FakeQuantize { mask: false }), Box::new(FakeQuantize { mask: true })]
}

/// `quantize_packed4` to signed and unsigned nibbles.
pub fn quantize_packed4() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(QuantizePacked4 { kind: Int4::Signed }), Box::new(QuantizePacked4 { kind: Int4::Unsigned })]
}

/// `dequantize_packed4` from signed and unsigned nibbles.
pub fn dequantize_packed4() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(DequantizePacked4 { kind: Int4::Signed }), Box::new(DequantizePacked4 { kind: Int4::Unsigned })]
}

/// Dynamic quantization under torch's and onnxruntime's rules.
pub fn dynamic_quantize() -> Vec<Box<dyn OpDescriptor>> {
    vec![
        Box::new(DynamicQuantize { profile: Profile::TORCH }),
        Box::new(DynamicQuantize { profile: Profile::ONNXRUNTIME }),
    ]
}

/// `min_max`.
pub fn min_max() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(MinMax)]
}

/// The descriptor called `name`.
pub fn descriptor(name: &str) -> Option<Box<dyn OpDescriptor>> {
    descriptors().into_iter().find(|d| d.name() == name)
}

/// The output filler for `path`: `reference` on the reference, `engine` on an optimized path.
pub fn filler<T>(path: &Path, reference: T, engine: T) -> T {
    match path {
        Path::Reference => reference,
        Path::Optimized(_) => engine,
    }
}

/// A code storage type the engine has kernels for, with its test fillers.
pub trait TestCode: FastCode + SameBits {
    const QTYPE: QType;
    /// The engine side's output filler.
    const FILLER: Self;
    fn data(v: &[Self]) -> Data;
    /// The elements of `d` when it holds this type.
    fn view(d: &Data) -> Option<&[Self]>;
}

impl TestCode for i8 {
    const QTYPE: QType = QType::I8;
    const FILLER: i8 = -77;
    fn data(v: &[i8]) -> Data {
        Data::I8(v.to_vec())
    }
    fn view(d: &Data) -> Option<&[i8]> {
        match d {
            Data::I8(v) => Some(v),
            _ => None,
        }
    }
}

impl TestCode for u8 {
    const QTYPE: QType = QType::U8;
    const FILLER: u8 = 0xB3;
    fn data(v: &[u8]) -> Data {
        Data::U8(v.to_vec())
    }
    fn view(d: &Data) -> Option<&[u8]> {
        match d {
            Data::U8(v) => Some(v),
            _ => None,
        }
    }
}

/// The engine side's float output filler: a quiet NaN with a payload no operation produces.
pub const F32_FILLER: f32 = f32::from_bits(0x7FC0_BEEF);

fn rng_for(name: &str, spec: &CaseSpec) -> Rng {
    Rng::derived(spec.seed, hash_str(name))
}

/// Float inputs for a generated frame: per-element adversarial values, between NaN fillers.
fn fill_x(rng: &mut Rng, case: &mut Case, finite_only: bool) {
    let eps = gen::element_params(case);
    let x = gen::gen_xs(rng, eps.len(), case.spec.mix, case.rule().scale_op, finite_only, |i| eps[i]);
    gen::set_x(case, x);
}

/// An output buffer with `offset` filler elements before the slice an op writes and
/// [`gen::GUARD`] after it. [`Guarded::finish`] panics if either zone changed: an engine wrote
/// outside its output (a memory-safety bug in unsafe kernel code, caught as a test failure).
pub struct Guarded<T> {
    buf: Vec<T>,
    offset: usize,
    len: usize,
    fill: T,
}

/// Identity of buffer elements for guard checks (floats by bits, so a NaN filler matches itself).
pub trait SameBits: Copy + std::fmt::Debug {
    fn same(self, other: Self) -> bool;
}

macro_rules! same_by_eq {
    ($($t:ty),*) => { $(impl SameBits for $t { fn same(self, other: Self) -> bool { self == other } })* };
}
same_by_eq!(i8, u8, bool, i32);

impl SameBits for f32 {
    fn same(self, other: Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl<T: SameBits> Guarded<T> {
    pub fn new(fill: T, offset: usize, len: usize) -> Guarded<T> {
        Guarded { buf: vec![fill; offset + len + gen::GUARD], offset, len, fill }
    }

    /// The slice the op writes.
    pub fn slice(&mut self) -> &mut [T] {
        &mut self.buf[self.offset..self.offset + self.len]
    }

    /// The written slice, after checking that nothing outside it changed.
    pub fn finish(self, who: &str) -> Vec<T> {
        let end = self.offset + self.len;
        let outside = (0..self.offset).chain(end..self.buf.len());
        if let Some(i) = outside.into_iter().find(|&i| !self.buf[i].same(self.fill)) {
            panic!(
                "{who} wrote outside its output slice: buffer element {i} (slice {}..{end}) is {:?}, was {:?}",
                self.offset, self.buf[i], self.fill
            );
        }
        self.buf[self.offset..end].to_vec()
    }
}

fn codes_of<C: Code>(case: &Case) -> Vec<C> {
    // The whole buffer, fillers included, so the view starts misaligned as the case says.
    match case.input("codes").map(|i| &i.data) {
        Some(Data::I32(v)) => v.iter().map(|&q| C::from_code(q)).collect(),
        _ => Vec::new(),
    }
}

/// `quantize` into `i8` or `u8` codes.
pub struct Quantize<C>(PhantomData<C>);

impl<C: TestCode> OpDescriptor for Quantize<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "quantize_i8"
        } else {
            "quantize_u8"
        }
    }
    fn sweep(&self) -> Sweep {
        Sweep::LayoutsAndRules
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let mut case = gen::gen_frame(&mut rng, spec, C::QTYPE);
        fill_x(&mut rng, &mut case, false);
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let mut out = Guarded::new(filler(path, C::default(), C::FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => refq::quantize(c.x(), &c.shape, &c.params(), c.rule(), out.slice())?,
            Path::Optimized(e) => e.quantize(c.x(), &c.shape, &c.params(), c.rule(), out.slice())?,
        }
        Ok(vec![Tensor::new("y", C::data(&out.finish(path.name())))])
    }
}

/// `dequantize` from `i8` or `u8` codes (every code of the type, not only those in range).
pub struct Dequantize<C>(PhantomData<C>);

impl<C: TestCode> OpDescriptor for Dequantize<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "dequantize_i8"
        } else {
            "dequantize_u8"
        }
    }
    fn sweep(&self) -> Sweep {
        Sweep::Layouts
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let mut case = gen::gen_frame(&mut rng, spec, C::QTYPE);
        let n = gen::numel(&case.shape);
        let layout = case.params().layout(&case.shape, n).ok();
        let zps = case.params().zero_points.clone();
        let codes = gen::gen_codes(&mut rng, n, C::QTYPE, |i| layout.map_or(0, |l| zps[l.index(i)]));
        let shape = case.shape.clone();
        case.set_input(gen::Input {
            name: "codes",
            row_stride: shape.last().copied().unwrap_or(1),
            shape,
            data: Data::I32(gen::with_offset(case.offset, 0, codes)),
            offset: case.offset,
            tail: 0,
        });
        case.out_len = n;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let codes = codes_of::<C>(c);
        let q = &codes[c.offset.min(codes.len())..];
        let mut out = Guarded::new(filler(path, 0f32, F32_FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => refq::dequantize(q, &c.shape, &c.params(), out.slice())?,
            Path::Optimized(e) => e.dequantize(q, &c.shape, &c.params(), out.slice())?,
        }
        Ok(vec![Tensor::f32("y", &out.finish(path.name()))])
    }
}

/// `fake_quantize`, with or without the straight-through mask, over code ranges of every width
/// from 2 to 16 bits (fake-quantize stores no codes).
pub struct FakeQuantize {
    pub mask: bool,
}

impl FakeQuantize {
    fn outputs(&self, out: Guarded<f32>, mask: Guarded<bool>, who: &str) -> Outcome {
        let mut t = vec![Tensor::f32("y", &out.finish(who))];
        let mask = mask.finish(who);
        if self.mask {
            t.push(Tensor::bool("mask", &mask));
        }
        Ok(t)
    }
}

impl OpDescriptor for FakeQuantize {
    fn name(&self) -> &'static str {
        if self.mask {
            "fake_quantize_mask"
        } else {
            "fake_quantize"
        }
    }
    fn sweep(&self) -> Sweep {
        Sweep::LayoutsAndRules
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let qtype =
            QType::new(rng.range_i64(2, 16) as u32, Signedness::signed_if(rng.chance(0.5))).unwrap_or(QType::I8);
        let mut case = gen::gen_frame(&mut rng, spec, qtype);
        fill_x(&mut rng, &mut case, false);
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let mut out = Guarded::new(filler(path, 0f32, F32_FILLER), c.offset, c.out_len);
        let mut mask = Guarded::new(filler(path, false, true), c.offset, c.mask_len);
        let m = if self.mask { Some(mask.slice()) } else { None };
        match path {
            Path::Reference => refq::fake_quantize(c.x(), &c.shape, &c.params(), c.rule(), out.slice(), m)?,
            Path::Optimized(e) => e.fake_quantize(c.x(), &c.shape, &c.params(), c.rule(), out.slice(), m)?,
        }
        self.outputs(out, mask, path.name())
    }
}

/// `quantize_packed4`: 4-bit codes two per byte (odd lengths leave a zero high nibble).
pub struct QuantizePacked4 {
    pub kind: Int4,
}

impl OpDescriptor for QuantizePacked4 {
    fn name(&self) -> &'static str {
        match self.kind {
            Int4::Signed => "quantize_packed4_i4",
            Int4::Unsigned => "quantize_packed4_u4",
        }
    }
    fn sweep(&self) -> Sweep {
        Sweep::LayoutsAndRules
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let mut case = gen::gen_frame(&mut rng, spec, self.kind.qtype());
        case.set_packed_type(self.kind);
        fill_x(&mut rng, &mut case, false);
        case.out_len = packed_len(case.out_len);
        case
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        // Byte `index` holds elements 2 index (low nibble) and 2 index + 1 (high nibble).
        let hi = if 2 * index + 1 < case.x().len() { case.explain(2 * index + 1) } else { "none (odd length)".into() };
        format!("low nibble: {}; high nibble: {hi}", case.explain(2 * index))
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let mut out = Guarded::new(filler(path, 0u8, u8::FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => {
                refq::quantize_packed4(c.x(), &c.shape, &c.params(), c.rule(), c.packed_type(), out.slice())?
            }
            Path::Optimized(e) => {
                e.quantize_packed4(c.x(), &c.shape, &c.params(), c.rule(), c.packed_type(), out.slice())?
            }
        }
        Ok(vec![Tensor::u8("y", &out.finish(path.name()))])
    }
}

/// `dequantize_packed4`: every byte value, including a random unused high nibble at odd lengths.
pub struct DequantizePacked4 {
    pub kind: Int4,
}

impl OpDescriptor for DequantizePacked4 {
    fn name(&self) -> &'static str {
        match self.kind {
            Int4::Signed => "dequantize_packed4_i4",
            Int4::Unsigned => "dequantize_packed4_u4",
        }
    }
    fn sweep(&self) -> Sweep {
        Sweep::Layouts
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let mut case = gen::gen_frame(&mut rng, spec, self.kind.qtype());
        case.set_packed_type(self.kind);
        let n = gen::numel(&case.shape);
        let bytes: Vec<u8> = (0..packed_len(n)).map(|_| rng.next_u64() as u8).collect();
        let nb = bytes.len();
        case.set_input(gen::Input {
            name: "packed",
            shape: vec![nb],
            data: Data::U8(gen::with_offset(case.offset, 0xA5, bytes)),
            offset: case.offset,
            tail: 0,
            row_stride: nb,
        });
        case.out_len = n;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let mut out = Guarded::new(filler(path, 0f32, F32_FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => {
                refq::dequantize_packed4(c.packed(), &c.shape, &c.params(), c.packed_type(), out.slice())?
            }
            Path::Optimized(e) => {
                e.dequantize_packed4(c.packed(), &c.shape, &c.params(), c.packed_type(), out.slice())?
            }
        }
        Ok(vec![Tensor::f32("y", &out.finish(path.name()))])
    }
}

/// Dynamic quantization to uint8 under one profile's rules. Inputs are built around a chosen
/// range `[rmin, rmax]` (both present in the data): the values inside are drawn from the
/// adversarial classes for the parameters that range produces, so ties of the data-derived
/// scale are hit too.
pub struct DynamicQuantize {
    pub profile: Profile,
}

impl OpDescriptor for DynamicQuantize {
    fn name(&self) -> &'static str {
        match self.profile.name {
            "torch" => "dynamic_quantize_torch",
            "onnxruntime" => "dynamic_quantize_onnxruntime",
            _ => "dynamic_quantize",
        }
    }
    fn explain(&self, case: &Case, tensor: &str, index: usize) -> String {
        match tensor {
            "y" => case.explain(index),
            _ => {
                let mm = naive_min_max(case.x());
                format!("parameters read from the data: min/max {mm:?} over {} elements", case.x().len())
            }
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let n = spec.len;
        let magnitude = |rng: &mut Rng| -> f32 {
            match (spec.mix, rng.below(10)) {
                (Mix::Only(gen::Class::Huge), _) | (_, 0) => (rng.unit() * 28.0 + 100.0).exp2() as f32,
                (_, 1) => (-(rng.unit() * 28.0 + 98.0)).exp2() as f32,
                (_, 2) => 0.0,
                _ => (rng.unit() * 20.0 - 10.0).exp2() as f32,
            }
        };
        let rmin = -magnitude(&mut rng);
        let rmax = magnitude(&mut rng);
        let (scale, z) = match self.profile.dynamic_qparams(rmin, rmax) {
            Ok(p) => (p.scale, p.zero_point as i64),
            Err(_) => (1.0, 0),
        };
        let ep = ElementParams { scale, lo: -z, hi: 255 - z };
        let mut x = gen::gen_xs(&mut rng, n, spec.mix, self.profile.quantize.scale_op, true, |_| ep);
        for v in x.iter_mut() {
            if v.is_finite() {
                *v = v.clamp(rmin, rmax);
            }
        }
        if n >= 2 && spec.mix == Mix::Mixed {
            let i = rng.below(n as u64) as usize;
            let j = rng.below(n as u64) as usize;
            x[i] = rmin;
            x[j] = rmax;
        }
        let mut case = Case::manual(&[n]);
        case.spec = *spec;
        case.set_profile(&self.profile);
        case.set_rule(self.profile.quantize);
        case.offset = spec.offset;
        gen::set_x(&mut case, x);
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let mut out = Guarded::new(filler(path, 0u8, u8::FILLER), c.offset, c.out_len);
        let p = match path {
            Path::Reference => c.profile().dynamic_quantize(c.x(), out.slice())?,
            Path::Optimized(e) => e.dynamic_quantize(&c.profile(), c.x(), out.slice())?,
        };
        let y = out.finish(path.name());
        Ok(vec![Tensor::u8("y", &y), Tensor::f32("scale", &[p.scale]), Tensor::i32("zero_point", &[p.zero_point])])
    }
}

/// The oracle for `Engine::min_max`, in one line: the first NaN is an error, else a fold.
pub fn naive_min_max(x: &[f32]) -> Result<(f32, f32), QuantError> {
    match x.iter().position(|v| v.is_nan()) {
        Some(index) => Err(QuantError::NanInput { what: "x", index }),
        None => Ok(x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)))),
    }
}

/// `Engine::min_max` against [`naive_min_max`]; a zero of either sign matches (the kernels do
/// not order signed zeros).
pub struct MinMax;

impl OpDescriptor for MinMax {
    fn name(&self) -> &'static str {
        "min_max"
    }
    fn explain(&self, case: &Case, tensor: &str, _index: usize) -> String {
        let x = case.x();
        let at = |v: f32| x.iter().position(|&e| e.to_bits() == v.to_bits());
        let want = naive_min_max(x);
        format!(
            "{tensor} over {} elements; the oracle's answer {want:?} first occurs at {:?}",
            x.len(),
            want.as_ref().map(|&(a, b)| (at(a), at(b)))
        )
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let ep = ElementParams { scale: gen::gen_scale(&mut rng), lo: -128, hi: 127 };
        let x = gen::gen_xs(&mut rng, spec.len, spec.mix, spec.rule.scale_op, false, |_| ep);
        let n = x.len();
        let mut case = Case::manual(&[n]);
        case.spec = *spec;
        case.offset = spec.offset;
        gen::set_x(&mut case, x);
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        Ok(match path {
            Path::Reference => {
                let (lo, hi) = naive_min_max(c.x())?;
                vec![
                    Tensor::f32("min", &[lo]).with_compare(Compare::ZeroSignFree),
                    Tensor::f32("max", &[hi]).with_compare(Compare::ZeroSignFree),
                ]
            }
            Path::Optimized(e) => {
                let mm = e.min_max(c.x())?;
                vec![Tensor::f32("min", &[mm.min]), Tensor::f32("max", &[mm.max])]
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_pass_when_only_the_slice_is_written() {
        let mut g = Guarded::new(7u8, 3, 4);
        g.slice().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(g.finish("test"), vec![1, 2, 3, 4]);
    }

    #[test]
    #[should_panic(expected = "wrote outside its output slice")]
    fn a_write_past_the_end_is_caught() {
        let mut g = Guarded::new(7u8, 3, 4);
        g.buf[3 + 4] = 0; // what an unsafe store one element too far would do
        g.finish("test");
    }

    #[test]
    #[should_panic(expected = "wrote outside its output slice")]
    fn a_write_before_the_start_is_caught() {
        let mut g = Guarded::new(F32_FILLER, 2, 0);
        g.buf[1] = f32::NAN;
        g.finish("test");
    }

    #[test]
    fn inputs_are_fenced_by_nans() {
        let op = descriptor("quantize_i8").unwrap();
        let c = op.generate(&CaseSpec::new(1, 10, Layout::PerTensor, gen::all_rules()[0]).offset(3));
        assert_eq!(c.x().len(), 10);
        let Data::F32(buf) = &c.input("x").unwrap().data else { panic!("x is not f32") };
        assert!(buf[..3].iter().all(|v| v.is_nan()));
        assert_eq!(buf.len(), 3 + 10 + gen::GUARD);
        assert!(buf[13..].iter().all(|v| v.is_nan()));
    }
}
