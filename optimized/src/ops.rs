//! The public operations, dispatched to an ISA's kernels.
//!
//! Every function here has the same signature and the same results as its twin in
//! `quantproof_reference::quantize`: parameters are validated by the reference's own code
//! ([`quantproof_reference::quantize::prepare`]), so both sides accept and reject exactly the same
//! inputs, and the kernels reproduce the reference's arithmetic bit for bit (see
//! [`crate::kernels`]). The equivalence tests in `tests/` hold them to it on every ISA.
//!
//! ## The planner
//!
//! Kernels see *spans* (see [`crate::kernels`]). A [`Plan`] turns a tensor's layout into spans:
//!
//! | granularity | spans |
//! |---|---|
//! | per-tensor | the whole tensor, cut into chunks for threads |
//! | per-axis, `inner >= 16` | one uniform span per run of `inner` elements (an outer axis) |
//! | per-axis, `inner < 16` | rows of `axis_len * inner` elements with per-element parameters, several rows at a time when rows are short (the innermost axis) |
//! | per-block, `inner == 1`, `block >= 16` | one uniform span per block |
//! | per-block, `inner == 1`, `block < 16` | per-element parameters expanded over the tensor |
//! | per-block, `inner > 1` | rows of `inner` elements whose parameters are a contiguous slice |
//!
//! Stochastic rounding needs each element's flat index, so it runs the reference's scalar loop
//! on every ISA. 4-bit outputs are quantized to a temporary `i8` buffer and then packed by the
//! ISA's nibble kernel (and unpacked the same way), so packing never splits a span.

use crate::isa::{self, Isa};
use crate::kernels::{self, HistBins, HistogramOf, Kernels, Params, PerElement, Rule, Uniform};
use quantproof_reference::affine::broadcast_index;
use quantproof_reference::calibrate::numpy_hist::{self, UniformBins};
use quantproof_reference::choose_params::ScaleZeroPoint;
use quantproof_reference::elementwise::{check_binary_shapes, BinaryKernel, BinaryOp, BinaryParams};
use quantproof_reference::error::{check_len, QuantError, Result};
use quantproof_reference::pack::{packed_len, Int4};
use quantproof_reference::profile::ArithRule;
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::{ParamLayout, QuantParams};
use quantproof_reference::quantize::{self as refq, PreparedScale, QuantizeRule, ScaleOp};
use quantproof_reference::requantize::Requantizer;
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::Signedness;
use quantproof_reference::scheme::{Code, CodeRange, Granularity, QType};

/// Below this run length, per-element parameters beat one kernel call per run.
const MIN_RUN: usize = 16;
/// Short rows are repeated until a per-element span holds at least this many elements (the
/// per-element kernels reach their speed from about 1K elements per call).
const MIN_ROW: usize = 1024;
/// Largest span handed to one kernel call (lets threads share a per-tensor span).
const CHUNK: usize = 1 << 16;
/// Fewest elements worth a thread of their own, for the cheapest operations (a table lookup,
/// a clamp, max pooling: 30+ Gelem/s, 2 us per 64K elements); the arithmetic ones count
/// [`ARITH_COST`] per element. The pool's workers spin between calls (`pool`), so a call hands
/// work to one in about a microsecond; measured with `quantproof bench OP --size S --threads 2`
/// against one thread on this project's 2-vCPU machines: at 32K elements per thread, QAdd ran
/// 1.5x faster, TFLite's requantization 1.4x, but table lookups and max pooling 10 to 50% slower
/// (their halves take about as long as the hand-over); at 64K per thread the lookups break even
/// and at 1M elements QAdd runs 1.7x, quantize and dequantize 2.8x faster. (With rayon's pool,
/// whose workers slept between calls, the threshold had to be 2M: a wake-up cost ~40 us.)
pub const MIN_ELEMENTS_PER_THREAD: usize = 1 << 16;
/// How many lookup-equivalent elements one element of the arithmetic operations (QAdd/QMul, the
/// requantizers, average pooling: 3 to 18 Gelem/s) counts for [`Engine::useful_threads`]: two
/// threads from 64K elements.
pub const ARITH_COST: usize = 2;

/// Largest slice one histogram kernel call counts (its `u32` slots cannot overflow).
const HIST_CHUNK: usize = 1 << 31;
/// Below this many elements per thread, a histogram stays on one thread (64K elements take ~20
/// us to bin; set when a hand-over cost tens of microseconds, rayon's pool, not re-measured with
/// the spinning one).
const MIN_PER_THREAD_HIST: usize = 1 << 16;
/// The same for min/max and `max |x|` / `min |x|`, which read ~25 Gelem/s from cache: measured
/// on 2M elements with rayon's pool, two threads took 160 us against 75 us for one (not
/// re-measured with the spinning one).
const MIN_PER_THREAD_REDUCE: usize = 1 << 22;

/// Code types with SIMD kernels.
pub trait FastCode: Code {
    fn quantize(k: &dyn Kernels, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [Self]) -> bool;
    fn dequantize(k: &dyn Kernels, q: &[Self], p: Params<'_>, out: &mut [f32]);
    /// The code's byte (two's complement for `i8`).
    fn byte(self) -> u8;
    /// The codes' bytes, in place (no copy).
    fn bytes(s: &[Self]) -> &[u8];
    fn bytes_mut(s: &mut [Self]) -> &mut [u8];
}

impl FastCode for i8 {
    fn quantize(k: &dyn Kernels, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool {
        k.quantize_i8(x, p, rule, out)
    }
    fn dequantize(k: &dyn Kernels, q: &[i8], p: Params<'_>, out: &mut [f32]) {
        k.dequantize_i8(q, p, out)
    }
    fn byte(self) -> u8 {
        self as u8
    }
    fn bytes(s: &[i8]) -> &[u8] {
        crate::arch::generic::i8_bytes(s)
    }
    fn bytes_mut(s: &mut [i8]) -> &mut [u8] {
        crate::arch::generic::i8_bytes_mut(s)
    }
}

impl FastCode for u8 {
    fn quantize(k: &dyn Kernels, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
        k.quantize_u8(x, p, rule, out)
    }
    fn dequantize(k: &dyn Kernels, q: &[u8], p: Params<'_>, out: &mut [f32]) {
        k.dequantize_u8(q, p, out)
    }
    fn byte(self) -> u8 {
        self
    }
    fn bytes(s: &[u8]) -> &[u8] {
        s
    }
    fn bytes_mut(s: &mut [u8]) -> &mut [u8] {
        s
    }
}

/// Parameters in struct-of-arrays form, one entry per scale / zero-point pair.
#[derive(Debug, Clone, Default)]
struct Soa {
    scale: Vec<f32>,
    factor: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
    zero_point: Vec<i32>,
}

impl Soa {
    fn push(&mut self, u: Uniform) {
        self.scale.push(u.scale);
        self.factor.push(u.factor);
        self.lo.push(u.lo);
        self.hi.push(u.hi);
        self.zero_point.push(u.zero_point);
    }

    fn at(&self, i: usize) -> Uniform {
        self.all().at(i)
    }

    fn all(&self) -> PerElement<'_> {
        PerElement {
            scale: &self.scale,
            factor: &self.factor,
            lo: &self.lo,
            hi: &self.hi,
            zero_point: &self.zero_point,
        }
    }

    fn view(&self, start: usize, len: usize) -> PerElement<'_> {
        self.all().slice(start, len)
    }

    /// Element `j` takes parameter `map(j)`, for `j < len`.
    fn expand(&self, len: usize, map: impl Fn(usize) -> usize) -> Soa {
        let mut e = Soa::default();
        for j in 0..len {
            e.push(self.at(map(j)));
        }
        e
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Uniform(Uniform),
    /// Per-element parameters from `params` (the per-parameter arrays) starting at an offset.
    Params(usize),
    /// Per-element parameters from the expanded arrays starting at an offset.
    Expanded(usize),
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
    source: Source,
}

/// A tensor's parameters cut into kernel spans (see the module docs).
#[derive(Debug, Clone)]
pub struct Plan {
    params: Soa,
    expanded: Soa,
    spans: Vec<Span>,
    len: usize,
}

impl Plan {
    /// Validates `params` for a tensor of `shape` and `len` elements and plans its spans.
    pub fn new(params: &QuantParams, shape: &[usize], len: usize, op: ScaleOp) -> Result<Plan> {
        if params.granularity == Granularity::PerTensor {
            // The common case without per-parameter arrays: the same checks as `prepare`, in
            // its order, and no allocation besides the span list.
            params.layout(shape, len)?;
            let prepared = PreparedScale::new(0, params.scales[0], op)?;
            return Ok(Plan::per_tensor(uniform_of(&prepared, params.zero_points[0], params.range, op), len));
        }
        let (layout, prepared) = refq::prepare(params, shape, len, op)?;
        let soa = soa_of(&prepared, &params.zero_points, params.range, op);
        Ok(Plan::from_layout(soa, &layout, len))
    }

    fn per_tensor(u: Uniform, n: usize) -> Plan {
        let spans = (0..n)
            .step_by(CHUNK)
            .map(|start| Span { start, len: CHUNK.min(n - start), source: Source::Uniform(u) })
            .collect();
        Plan { params: Soa::default(), expanded: Soa::default(), spans, len: n }
    }

    fn from_layout(params: Soa, layout: &ParamLayout, n: usize) -> Plan {
        let mut spans = Vec::with_capacity(if layout.is_per_tensor() { n / CHUNK + 1 } else { 0 });
        let mut expanded = Soa::default();
        let (c, inner, block) = (layout.axis_len(), layout.inner(), layout.block());
        // Records a span, cut into CHUNK-sized pieces so threads can share long ones.
        let mut push = |start: usize, len: usize, source: Source| {
            for off in (0..len).step_by(CHUNK) {
                let source = match source {
                    Source::Uniform(u) => Source::Uniform(u),
                    Source::Params(o) => Source::Params(o + off),
                    Source::Expanded(o) => Source::Expanded(o + off),
                };
                spans.push(Span { start: start + off, len: CHUNK.min(len - off), source });
            }
        };
        if n == 0 {
        } else if layout.is_per_tensor() {
            push(0, n, Source::Uniform(params.at(0)));
        } else if layout.is_per_axis() {
            if inner >= MIN_RUN {
                for (r, start) in (0..n).step_by(inner).enumerate() {
                    push(start, inner, Source::Uniform(params.at(r % c)));
                }
            } else {
                let row = c * inner;
                let k = MIN_ROW.div_ceil(row).max(1);
                expanded = params.expand(k * row, |j| (j / inner) % c);
                let rows = n / row;
                let mut r = 0;
                while r < rows {
                    let take = k.min(rows - r);
                    push(r * row, take * row, Source::Expanded(0));
                    r += take;
                }
            }
        } else {
            let nb = c / block;
            if inner == 1 && block >= MIN_RUN {
                for (b, start) in (0..n).step_by(block).enumerate() {
                    push(start, block, Source::Uniform(params.at(b)));
                }
            } else if inner == 1 {
                expanded = params.expand(n, |j| (j / c) * nb + (j % c) / block);
                push(0, n, Source::Expanded(0));
            } else {
                for (r, start) in (0..n).step_by(inner).enumerate() {
                    let (o, ch) = (r / c, r % c);
                    push(start, inner, Source::Params((o * nb + ch / block) * inner));
                }
            }
        }
        Plan { params, expanded, spans, len: n }
    }

    fn params_of(&self, s: &Span) -> Params<'_> {
        match s.source {
            Source::Uniform(u) => Params::Uniform(u),
            Source::Params(o) => Params::PerElement(self.params.view(o, s.len)),
            Source::Expanded(o) => Params::PerElement(self.expanded.view(o, s.len)),
        }
    }

    /// Number of spans (for tests and diagnostics).
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Runs `f(span params, input span, output span)` over every span, on `threads` threads.
    /// Returns true when any call returned true.
    fn run<I: Sync, O: Outputs>(
        &self,
        threads: usize,
        input: &[I],
        output: O,
        f: &(dyn Fn(Params<'_>, &[I], O) -> bool + Sync),
    ) -> bool {
        let groups = split_groups(&self.spans, threads, self.len);
        if groups.len() <= 1 {
            return self.run_group(&self.spans, input, output, 0, f);
        }
        let mut rest = Some(output);
        let mut consumed = 0;
        let mut tasks: Vec<Box<dyn FnOnce() -> bool + Send + '_>> = Vec::new();
        for g in groups {
            let (Some(first), Some(last), Some(tmp)) = (g.first(), g.last(), rest.take()) else { continue };
            let (start, end) = (first.start, last.start + last.len);
            let (_, tail) = tmp.split_at(start - consumed);
            let (mine, tail) = tail.split_at(end - start);
            rest = Some(tail);
            consumed = end;
            tasks.push(Box::new(move || self.run_group(g, input, mine, start, f)));
        }
        crate::pool::run(threads, tasks).into_iter().fold(false, |acc, flag| acc | flag)
    }

    fn run_group<I, O: Outputs>(
        &self,
        spans: &[Span],
        input: &[I],
        mut output: O,
        base: usize,
        f: &(dyn Fn(Params<'_>, &[I], O) -> bool + Sync),
    ) -> bool {
        let mut flag = false;
        let mut at = base;
        for s in spans {
            let inp = &input[s.start..s.start + s.len];
            let (_, rest) = output.split_at(s.start - at);
            let (mine, rest) = rest.split_at(s.len);
            output = rest;
            at = s.start + s.len;
            flag |= f(self.params_of(s), inp, mine);
        }
        flag
    }
}

/// Output buffers indexed by element, which the planner can split between spans and threads.
trait Outputs: Send + Sized {
    /// Splits at element `mid`.
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T: Send> Outputs for &mut [T] {
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

impl<A: Outputs, B: Outputs> Outputs for (A, Option<B>) {
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split_at(mid);
        match self.1 {
            None => ((a0, None), (a1, None)),
            Some(b) => {
                let (b0, b1) = b.split_at(mid);
                ((a0, Some(b0)), (a1, Some(b1)))
            }
        }
    }
}

/// Splits spans into at most `threads` contiguous groups of roughly equal element counts.
fn split_groups(spans: &[Span], threads: usize, n: usize) -> Vec<&[Span]> {
    if threads <= 1 || spans.len() <= 1 {
        return vec![spans];
    }
    let target = n.div_ceil(threads).max(1);
    let mut groups = Vec::new();
    let (mut begin, mut acc) = (0, 0);
    for (i, s) in spans.iter().enumerate() {
        acc += s.len;
        if acc >= target && groups.len() + 1 < threads {
            groups.push(&spans[begin..=i]);
            begin = i + 1;
            acc = 0;
        }
    }
    if begin < spans.len() {
        groups.push(&spans[begin..]);
    }
    groups
}

/// The kernel parameters of one scale / zero-point pair.
fn uniform_of(p: &PreparedScale, z: i32, range: CodeRange, op: ScaleOp) -> Uniform {
    Uniform {
        scale: p.scale,
        factor: match op {
            ScaleOp::Divide => p.scale,
            ScaleOp::MultiplyByReciprocal => p.reciprocal,
        },
        lo: (range.qmin() - z) as f32,
        hi: (range.qmax() - z) as f32,
        zero_point: z,
    }
}

fn soa_of(prepared: &[PreparedScale], zero_points: &[i32], range: CodeRange, op: ScaleOp) -> Soa {
    let mut soa = Soa::default();
    for (p, &z) in prepared.iter().zip(zero_points) {
        soa.push(uniform_of(p, z, range, op));
    }
    soa
}

fn kernel_rule(rule: QuantizeRule) -> Option<Rule> {
    match rule.rounding {
        RoundingMode::Stochastic { .. } => None,
        mode => Some(Rule { op: rule.scale_op, mode }),
    }
}

fn first_nan(x: &[f32]) -> QuantError {
    QuantError::NanInput { what: "x", index: x.iter().position(|v| v.is_nan()).unwrap_or(0) }
}

/// The result of a min/max scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMax {
    /// Smallest element (`+inf` for an empty input).
    pub min: f32,
    /// Largest element (`-inf` for an empty input).
    pub max: f32,
}

/// A handle on one ISA's kernels and a thread count.
#[derive(Clone, Copy)]
pub struct Engine {
    kernels: &'static dyn Kernels,
    threads: usize,
    min_per_thread: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("isa", &self.isa())
            .field("threads", &self.threads)
            .field("min_per_thread", &self.min_per_thread)
            .finish()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::auto()
    }
}

impl Engine {
    /// The kernels of `isa`; fails when this CPU lacks it.
    pub fn new(isa: Isa) -> Result<Engine> {
        kernels::table(isa)
            .map(|kernels| Engine { kernels, threads: 1, min_per_thread: MIN_ELEMENTS_PER_THREAD })
            .ok_or_else(|| isa::unavailable(isa))
    }

    /// The dispatcher's choice ([`isa::selected`]).
    pub fn auto() -> Engine {
        let k = kernels::table(isa::selected()).unwrap_or(&crate::arch::generic::Scalar);
        Engine { kernels: k, threads: 1, min_per_thread: MIN_ELEMENTS_PER_THREAD }
    }

    /// Uses up to `threads` threads (at least 1) for large tensors: a thread is used only when it
    /// gets at least [`MIN_ELEMENTS_PER_THREAD`] elements (see [`Engine::with_parallel_threshold`]).
    /// Results never depend on the thread count.
    pub fn with_threads(mut self, threads: usize) -> Engine {
        self.threads = threads.max(1);
        self
    }

    /// Sets the fewest elements worth a thread (at least 1). Tests lower it so that small inputs
    /// exercise the parallel split; benchmarks can use it to measure where threads start to pay.
    pub fn with_parallel_threshold(mut self, min_elements_per_thread: usize) -> Engine {
        self.min_per_thread = min_elements_per_thread.max(1);
        self
    }

    /// Threads used for `n` elements (lookup-equivalent: the arithmetic passes its element count
    /// times [`ARITH_COST`]): at most [`Engine::threads`], each with at least the parallel
    /// threshold's elements, at least 1.
    pub fn useful_threads(&self, n: usize) -> usize {
        self.threads.min(n / self.min_per_thread).max(1)
    }

    /// Runs `f(first, rows)` over `out` cut into contiguous runs of whole rows of `row_len`
    /// elements (`first`: the index of the run's first row), one run per thread that `work`
    /// input elements keep busy ([`Engine::useful_threads`]); on the calling thread alone when
    /// that is one.
    fn split_rows<T: Send>(&self, work: usize, out: &mut [T], row_len: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
        let rows = out.len().checked_div(row_len).unwrap_or(0);
        let threads = self.useful_threads(work).min(rows).max(1);
        if threads <= 1 {
            return f(0, out);
        }
        let per = rows.div_ceil(threads);
        let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = out
            .chunks_mut(per * row_len)
            .enumerate()
            .map(|(t, chunk)| Box::new(move || f(t * per, chunk)) as Box<dyn FnOnce() + Send + '_>)
            .collect();
        crate::pool::run(threads, tasks);
    }

    pub fn isa(&self) -> Isa {
        self.kernels.isa()
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The kernel table itself (for benchmarks of single spans).
    pub fn kernels(&self) -> &'static dyn Kernels {
        self.kernels
    }

    /// Twin of [`quantproof_reference::quantize::quantize`] for `i8` and `u8` codes.
    pub fn quantize<C: FastCode>(
        &self,
        x: &[f32],
        shape: &[usize],
        params: &QuantParams,
        rule: QuantizeRule,
        out: &mut [C],
    ) -> Result<()> {
        params.range.check_storage::<C>()?;
        check_len("output", x.len(), out.len())?;
        let plan = Plan::new(params, shape, x.len(), rule.scale_op)?;
        let Some(krule) = kernel_rule(rule) else {
            return refq::quantize(x, shape, params, rule, out);
        };
        let k = self.kernels;
        let nan =
            plan.run(self.useful_threads(x.len()), x, out, &|p, xs, os: &mut [C]| C::quantize(k, xs, p, krule, os));
        if nan {
            return Err(first_nan(x));
        }
        Ok(())
    }

    /// Twin of [`quantproof_reference::activation::apply_table`]: `out[i] = table[x[i] - C::MIN]`
    /// for a 256-entry table of 8-bit codes (every unary op on 8-bit codes is one: see
    /// `quantproof_reference::activation::table`). The table is re-indexed by the codes' bytes
    /// once; the lookups run on the ISA's byte permute where it has one, in parallel spans for
    /// large inputs.
    pub fn lut<C: FastCode>(&self, table: &[C], x: &[C], out: &mut [C]) -> Result<()> {
        check_len("table", 256, table.len())?;
        check_len("output", x.len(), out.len())?;
        let mut bytes = [0u8; 256];
        for (k, &t) in table.iter().enumerate() {
            // Entry k is code k + C::MIN, whose byte indexes it.
            bytes[C::from_code(k as i32 + C::MIN).byte() as usize] = t.byte();
        }
        let k = self.kernels;
        self.split2(C::bytes(x), C::bytes_mut(out), 1, &|xs, os| k.lut_bytes(&bytes, xs, os));
        Ok(())
    }

    /// Twin of [`quantproof_reference::passive::concat`]: inputs concatenated along `axis`,
    /// each converted to the output's quantization under `rule` and clamped to the activation,
    /// bit for bit, errors included (the reference's
    /// [`quantproof_reference::passive::ConcatPlan`] checks and converts). A conversion is a
    /// function of one 8-bit code, so each input's 256 conversions are computed once by the
    /// plan and its runs of codes go through the ISA's table lookup
    /// ([`crate::kernels::LutKernels::lut_bytes`]), or are copied where the table is the
    /// identity. An input with a code the plan cannot convert (an error it would raise only
    /// for a code that occurs) is handed to the reference, which raises it or not as the data
    /// says.
    pub fn concat<C: FastCode>(
        &self,
        rule: ArithRule,
        inputs: &[(&[C], &[usize], quantproof_reference::affine::Affine)],
        axis: impl Into<quantproof_reference::scheme::Axis>,
        y: quantproof_reference::affine::Affine,
        activation: quantproof_reference::affine::Activation,
    ) -> Result<(Vec<C>, Vec<usize>)> {
        use quantproof_reference::passive::{concat as ref_concat, ConcatPlan};
        let plan = ConcatPlan::new(rule, inputs, axis, y, activation)?;
        let total = quantproof_reference::affine::element_count(&plan.out_shape)?;
        let mut tables: Vec<Option<[u8; 256]>> = Vec::with_capacity(inputs.len());
        for &(_, _, a) in inputs {
            let mut t = [0u8; 256];
            for k in 0..256 {
                let code = C::MIN + k;
                match plan.convert(code, a) {
                    Ok(v) => t[C::from_code(code).byte() as usize] = C::from_code(v).byte(),
                    Err(_) => return ref_concat(rule, inputs, plan.axis, y, activation),
                }
            }
            // `None`: the identity, a copy.
            tables.push((0..256).any(|b| t[b] != b as u8).then_some(t));
        }
        let mut out = vec![C::from_code(0); total];
        let k = self.kernels;
        let mut at = 0;
        for o in 0..plan.outer {
            for (&(q, shape, _), t) in inputs.iter().zip(&tables) {
                let chunk = shape[plan.axis] * plan.inner;
                let (src, dst) = (&q[o * chunk..(o + 1) * chunk], &mut out[at..at + chunk]);
                match t {
                    None => dst.copy_from_slice(src),
                    Some(t) => self.split2(C::bytes(src), C::bytes_mut(dst), 1, &|xs, os| k.lut_bytes(t, xs, os)),
                }
                at += chunk;
            }
        }
        Ok((out, plan.out_shape))
    }

    /// Twin of [`quantproof_reference::passive::pad`]: the output filled with the zero point and
    /// each innermost row of `x` copied into place (one `memcpy` per row where the reference
    /// places code by code), the same codes and shape, errors included (the reference's
    /// [`quantproof_reference::passive::pad_shape`]).
    pub fn pad<C: FastCode>(
        &self,
        x: &[C],
        shape: &[usize],
        paddings: &[[usize; 2]],
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
    ) -> Result<(Vec<C>, Vec<usize>)> {
        let (out_shape, total) = quantproof_reference::passive::pad_shape::<C>(x.len(), shape, paddings, xq, yq)?;
        let mut out = vec![C::from_code(yq.zero_point); total];
        let rank = shape.len();
        if x.is_empty() {
            return Ok((out, out_shape));
        }
        if rank == 0 {
            // One code, no padding.
            out.copy_from_slice(x);
            return Ok((out, out_shape));
        }
        let inner = shape[rank - 1];
        // Row-major strides of the output.
        let mut stride = vec![1usize; rank];
        for d in (0..rank - 1).rev() {
            stride[d] = stride[d + 1] * out_shape[d + 1];
        }
        let mut idx = vec![0usize; rank - 1];
        for row in x.chunks_exact(inner) {
            let at = (0..rank - 1).map(|d| (idx[d] + paddings[d][0]) * stride[d]).sum::<usize>() + paddings[rank - 1][0];
            out[at..at + inner].copy_from_slice(row);
            for d in (0..rank - 1).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok((out, out_shape))
    }

    /// Twin of [`quantproof_reference::passive::resize`]: TFLite's int8/uint8 nearest and
    /// bilinear resize of NHWC codes, bit for bit, errors included (the reference's checks).
    /// The source positions are computed once per output row and column by the reference's own
    /// `nearest_source` / `bilinear_source` (the reference recomputes them per pixel); nearest
    /// copies runs of channels; bilinear sums its four products in `i32`, exact because every
    /// weight's magnitude is at most `1536^2` and the weights sum to `2^20` (so `|v| < 255 *
    /// 2048^2 < 2^31`), in a loop over channels compiled again for AVX2 and AVX-512.
    #[allow(clippy::too_many_arguments)]
    pub fn resize<C: FastCode>(
        &self,
        method: quantproof_reference::passive::ResizeMethod,
        x: &[C],
        shape: [usize; 4],
        size: [usize; 2],
        mode: quantproof_reference::passive::ResizeMode,
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
    ) -> Result<(Vec<C>, [usize; 4])> {
        use quantproof_reference::passive as rp;
        rp::check_resize(x, shape, size, xq, yq)?;
        if method == rp::ResizeMethod::Bilinear {
            rp::check_bilinear(shape, size, mode)?;
        }
        let [n, h, w, c] = shape;
        let out_shape = [n, size[0], size[1], c];
        let mut out = vec![C::from_code(0); n * size[0] * size[1] * c];
        if out.is_empty() {
            return Ok((out, out_shape));
        }
        match method {
            rp::ResizeMethod::Nearest => {
                let xs: Vec<usize> = (0..size[1]).map(|ox| rp::nearest_source(ox, w, size[1], mode)).collect();
                let mut rows = out.chunks_exact_mut(size[1] * c);
                for b in 0..n {
                    for oy in 0..size[0] {
                        let iy = rp::nearest_source(oy, h, size[0], mode);
                        let src = &x[(b * h + iy) * w * c..(b * h + iy + 1) * w * c];
                        let Some(row) = rows.next() else { break };
                        for (o, &ix) in row.chunks_exact_mut(c).zip(&xs) {
                            o.copy_from_slice(&src[ix * c..(ix + 1) * c]);
                        }
                    }
                }
            }
            rp::ResizeMethod::Bilinear => {
                let (sy, sx) = (rp::scale_10(h, size[0], mode.align_corners), rp::scale_10(w, size[1], mode.align_corners));
                let taps = |i: usize, s: i32, n_in: usize| {
                    let (p10, lo, hi) = rp::bilinear_source(i, s, mode.half_pixel_centers, n_in);
                    (lo, hi, p10 - (1 << 10) * lo as i32)
                };
                let xs: Vec<(usize, usize, i32)> = (0..size[1]).map(|ox| taps(ox, sx, w)).collect();
                let isa = self.isa();
                let mut rows = out.chunks_exact_mut(size[1] * c);
                for b in 0..n {
                    let image = &x[b * h * w * c..(b + 1) * h * w * c];
                    for oy in 0..size[0] {
                        let (y0, y1, wy) = taps(oy, sy, h);
                        let Some(row) = rows.next() else { break };
                        let r0 = &image[y0 * w * c..(y0 + 1) * w * c];
                        let r1 = &image[y1 * w * c..(y1 + 1) * w * c];
                        bilinear_row(isa, BilinearRow { r0, r1, xs: &xs, wy, c, out: row });
                    }
                }
            }
        }
        Ok((out, out_shape))
    }

    /// Twin of [`quantproof_reference::pool::mean`]: TFLite's MEAN over `axes`, bit for bit,
    /// errors included (the reference's [`quantproof_reference::pool::MeanPlan`] checks and
    /// requantizes the sums). The sums go a whole innermost row at a time (one row sum where the
    /// last dimension is reduced, a row of element-wise adds where it is kept), where the
    /// reference walks an index counter per element.
    #[allow(clippy::too_many_arguments)]
    pub fn mean<C: FastCode>(
        &self,
        rule: ArithRule,
        x: &[C],
        shape: &[usize],
        axes: &[i64],
        keep_dims: bool,
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
    ) -> Result<(Vec<C>, Vec<usize>)> {
        let plan = quantproof_reference::pool::MeanPlan::new::<C>(rule, x.len(), shape, axes, keep_dims, xq, yq)?;
        let mut sums = vec![0i64; plan.n_out];
        let rank = shape.len();
        if rank == 0 {
            if let (Some(s), Some(v)) = (sums.first_mut(), x.first()) {
                *s = v.to_code() as i64;
            }
        } else if !x.is_empty() {
            let mut strides = vec![0usize; rank];
            let mut st = 1;
            for k in (0..rank).rev() {
                strides[k] = if plan.reduced[k] { 0 } else { st };
                st *= plan.out_shape_kept[k];
            }
            let inner = shape[rank - 1];
            let mut counter = vec![0usize; rank - 1];
            for row in x.chunks_exact(inner) {
                let o: usize = counter.iter().zip(&strides).map(|(c, s)| c * s).sum();
                if plan.reduced[rank - 1] {
                    sums[o] += row.iter().map(|v| v.to_code() as i64).sum::<i64>();
                } else {
                    for (s, v) in sums[o..o + inner].iter_mut().zip(row) {
                        *s += v.to_code() as i64;
                    }
                }
                for d in (0..rank - 1).rev() {
                    counter[d] += 1;
                    if counter[d] < shape[d] {
                        break;
                    }
                    counter[d] = 0;
                }
            }
        }
        Ok((plan.codes::<C>(&sums, x.len(), xq, yq)?, plan.out_shape))
    }

    /// Twin of [`quantproof_reference::softmax::tflite_softmax`]: TFLite's integer softmax along
    /// the last axis, bit for bit, errors included (the reference's
    /// [`quantproof_reference::softmax::SoftmaxPlan`] checks and prepares). Each row's `E(q -
    /// max)` comes from a 256-entry table the reference's own `exp` fills once per call, where
    /// the reference evaluates gemmlowp's exponential twice per element (`crate::softmax`);
    /// whole rows are split across the engine's threads. `out` has `x`'s length (checked after
    /// the reference's errors).
    #[allow(clippy::too_many_arguments)]
    pub fn tflite_softmax<C: FastCode>(
        &self,
        x: &[C],
        shape: &[usize],
        axis: impl Into<quantproof_reference::scheme::Axis>,
        beta: f32,
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
        out: &mut [C],
    ) -> Result<()> {
        let plan = quantproof_reference::softmax::SoftmaxPlan::new::<C>(x.len(), shape, axis, beta, xq, yq)?;
        check_len("output", x.len(), out.len())?;
        if plan.depth == 0 || x.is_empty() {
            return Ok(());
        }
        let tables = crate::softmax::Tables::new(&plan);
        let isa = self.isa();
        // About eight table-lookup equivalents per element; pieces of whole rows.
        self.split_units(x, out, plan.depth, 8, &|xs, os| crate::softmax::rows(isa, &tables, &plan, xs, os));
        Ok(())
    }

    /// Twin of [`quantproof_reference::requantize::requantize_codes`]: 8-bit codes of one
    /// quantization (and type) to another under `rule`, bit for bit, errors included. A function
    /// of one 8-bit code, so the reference computes its 256 outputs once and the ISA's table
    /// lookup ([`crate::kernels::LutKernels::lut_bytes`]) applies them.
    pub fn requantize_codes<A: FastCode, B: FastCode>(
        &self,
        x: &[A],
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
        rule: ArithRule,
        out: &mut [B],
    ) -> Result<()> {
        // The reference's checks in its order, before the table's own errors.
        xq.check::<A>(0)?;
        yq.check::<B>(1)?;
        check_len("out", x.len(), out.len())?;
        if A::MAX - A::MIN != 255 || B::MAX - B::MIN != 255 {
            return Err(QuantError::Unsupported {
                what: format!("a {} -> {} code table (8-bit only)", A::NAME, B::NAME),
            });
        }
        let codes: Vec<A> = (A::MIN..=A::MAX).map(A::from_code).collect();
        let mut entries = vec![B::default(); 256];
        quantproof_reference::requantize::requantize_codes(&codes, xq, yq, rule, &mut entries)?;
        let mut bytes = [0u8; 256];
        for (q, y) in codes.iter().zip(&entries) {
            bytes[q.byte() as usize] = y.byte();
        }
        let k = self.kernels;
        self.split2(A::bytes(x), B::bytes_mut(out), 1, &|xs, os| k.lut_bytes(&bytes, xs, os));
        Ok(())
    }

    /// Twin of [`quantproof_reference::pool::max_pool2d`]: 2-D max pooling of 8-bit codes in
    /// NCHW or NHWC, the output inheriting the input's quantization, the fused activation's code
    /// bounds applied; bit for bit with the reference, errors included (its checks, in its order).
    ///
    /// Separable, with the ISA's multi-row byte max ([`crate::kernels::PoolKernels::max_rows`])
    /// over long runs: per output row, the window's input rows are maxed element-wise into one
    /// padded row (whole rows of `W x C` bytes in NHWC, `W` bytes per plane in NCHW), then that
    /// row's windows are maxed along it ([`max_row_windows`]). Both passes start from the
    /// activation's lower bound and end with its upper one, which is the clamp of the maximum
    /// (clamping is monotone). The padding holds the lowest code, which changes no maximum; a
    /// window wholly in the padding comes out as the lower bound, the reference's clamped
    /// lowest code.
    pub fn max_pool2d<C: FastCode>(
        &self,
        x: &[C],
        shape: [usize; 4],
        layout: quantproof_reference::pool::Layout,
        p: &quantproof_reference::pool::Pool2d,
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
    ) -> Result<(Vec<C>, [usize; 4])> {
        use quantproof_reference::pool::{max_pool2d_geometry, Layout};
        let g = max_pool2d_geometry::<C>(x.len(), shape, layout, p, xq, yq)?;
        let (lo, hi) = p.activation.code_bounds::<C>(yq);
        // Every output row is written below; zeroed memory comes from the allocator untouched, so
        // its pages are first written by the threads that fill them.
        let mut out = vec![C::default(); g.out_shape.iter().product()];
        let signedness = Signedness::signed_if(C::MIN < 0);
        let (xb, k) = (C::bytes(x), self.kernels);
        let ob = C::bytes_mut(&mut out);
        let (lowest, lo, hi) = (C::from_code(C::MIN).byte(), C::from_code(lo).byte(), C::from_code(hi).byte());
        // Cells (pixels in NHWC, single codes in NCHW) of `cw` bytes; a padded row holds the
        // left padding, the input row, and every column the last window reaches. A window
        // wider than twice the input (its padding would outgrow the data) takes its clipped
        // cells from an unpadded row instead.
        let (kw, sw) = (p.kernel[1], p.stride[1]);
        let padded = kw <= 2 * g.w + 2;
        let (pad, cols) = match padded {
            true => (g.pad_w, (g.pad_w + g.w).max((g.ow.max(1) - 1) * sw + kw)),
            false => (0, g.w),
        };
        let cw = match layout {
            Layout::Nhwc => g.c,
            Layout::Nchw => 1,
        };
        let (in_row, out_row) = (g.w * cw, g.ow * cw);
        // Output rows (plane-major, as stored) in contiguous runs, one per thread.
        self.split_rows(x.len(), ob, out_row.max(1), &|first, chunk| {
            let mut row = vec![lowest; cols * cw];
            let mut runs = Vec::new();
            for (i, orow) in chunk.chunks_exact_mut(out_row.max(1)).enumerate() {
                let (plane, oy) = ((first + i) / g.oh, (first + i) % g.oh);
                let xin = &xb[plane * g.h * in_row..(plane + 1) * g.h * in_row];
                let (ys, ye, _, _) = g.window(p, oy, 0);
                let inputs: Vec<&[u8]> = (ys..ye).map(|y| &xin[y * in_row..(y + 1) * in_row]).collect();
                k.max_rows(signedness, lo, hi, &inputs, &mut row[pad * cw..pad * cw + in_row]);
                if padded {
                    max_row_windows(k, signedness, (lo, hi), &row, cw, kw, sw, orow, &mut runs);
                } else {
                    for (ox, o) in orow.chunks_exact_mut(cw.max(1)).enumerate() {
                        let (_, _, xs, xe) = g.window(p, oy, ox);
                        let cells: Vec<&[u8]> = (xs..xe).map(|c| &row[c * cw..(c + 1) * cw]).collect();
                        k.max_rows(signedness, lo, hi, &cells, o);
                    }
                }
            }
        });
        Ok((out, g.out_shape))
    }

    /// Twin of [`quantproof_reference::pool::avg_pool2d`]: 2-D average pooling of 8-bit codes in
    /// NCHW or NHWC under `rule` (each framework's rounding of the mean, through the reference's
    /// [`quantproof_reference::pool::WindowAverage`]), the fused activation's code bounds
    /// applied; bit for bit with the reference, errors included (its checks, in its order).
    /// Separable: per output row, the window's input rows are summed column-wise with the ISA's
    /// widening add ([`crate::kernels::PoolKernels::sum_rows`]: whole rows of `W x C` codes in
    /// NHWC, `W` per plane in NCHW), then each window's cells along that row, and each window's
    /// rule applied ([`average_row`]). Windows of more than `2^23` cells (where an `i32` sum
    /// could overflow) sum per output in `i64`.
    #[allow(clippy::too_many_arguments)]
    pub fn avg_pool2d<C: FastCode>(
        &self,
        rule: ArithRule,
        x: &[C],
        shape: [usize; 4],
        layout: quantproof_reference::pool::Layout,
        p: &quantproof_reference::pool::Pool2d,
        xq: quantproof_reference::affine::Affine,
        yq: quantproof_reference::affine::Affine,
    ) -> Result<(Vec<C>, [usize; 4])> {
        use quantproof_reference::pool::{avg_pool2d_geometry, Layout, WindowAverage};
        let g = avg_pool2d_geometry::<C>(rule, x.len(), shape, layout, p, xq, yq)?;
        let (lo, hi) = p.activation.code_bounds::<C>(yq);
        let mut out = vec![C::default(); g.out_shape.iter().product()];
        // One output row's windows: their rounding rules, prepared once for every plane or row
        // of channels (a row at a time, so that this never outgrows the output).
        let row_windows = |oy: usize| -> Vec<FastAverage> {
            (0..g.ow).map(|ox| FastAverage::new(WindowAverage::new(rule, p, &g, oy, ox, xq, yq))).collect()
        };
        let signedness = Signedness::signed_if(C::MIN < 0);
        let (xb, k) = (C::bytes(x), self.kernels);
        // Windows of at most 2^23 codes keep every i32 sum exact; larger ones sum in i64.
        if p.kernel[0].saturating_mul(p.kernel[1]) > 1 << 23 {
            for oy in 0..g.oh {
                let windows = row_windows(oy);
                for b in 0..g.n {
                    for ch in 0..g.c {
                        for (ox, f) in windows.iter().enumerate() {
                            let (ys, ye, xs, xe) = g.window(p, oy, ox);
                            let mut sum = 0i64;
                            for y in ys..ye {
                                for xx in xs..xe {
                                    sum += x[layout.index((g.c, g.h, g.w), b, ch, y, xx)].to_code() as i64;
                                }
                            }
                            let v = C::from_code(f.wa.apply::<C>(sum).clamp(lo, hi));
                            out[layout.index((g.c, g.oh, g.ow), b, ch, oy, ox)] = v;
                        }
                    }
                }
            }
            return Ok((out, g.out_shape));
        }
        // Separable, as max pooling: per output row, the window's input rows summed into one
        // row of i32 with the ISA's widening add (whole rows of `W x C` codes in NHWC, `W` per
        // plane in NCHW), then each window's input columns summed along it and divided under
        // its own rule (padding adds nothing; the rules count the window's cells as each
        // framework does).
        let cw = match layout {
            Layout::Nhwc => g.c,
            Layout::Nchw => 1,
        };
        let (in_row, out_row) = (g.w * cw, g.ow * cw);
        // Each window's input columns (the padding adds nothing).
        let spans: Vec<(usize, usize)> = (0..g.ow)
            .map(|ox| {
                let (_, _, xs, xe) = g.window(p, 0, ox);
                (xs, xe)
            })
            .collect();
        // Each output row's window rules, prepared once per row key (`WindowAverage::row_key`:
        // the rows away from the top and bottom edges share one) and kept once per run of rows
        // with one key.
        let (mut classes, mut class_of) = (Vec::<((usize, i64), Vec<FastAverage>)>::new(), Vec::with_capacity(g.oh));
        for oy in 0..g.oh {
            let key = WindowAverage::row_key(p, &g, oy);
            if classes.last().is_none_or(|(k, _)| *k != key) {
                classes.push((key, row_windows(oy)));
            }
            class_of.push(classes.len() - 1);
        }
        // Output rows (plane-major, as stored) in contiguous runs, one per thread.
        self.split_rows(x.len().saturating_mul(ARITH_COST), &mut out, out_row.max(1), &|first, chunk| {
            let (mut row, mut sums) = (vec![0i32; in_row], vec![0i32; cw]);
            for (i, orow) in chunk.chunks_exact_mut(out_row.max(1)).enumerate() {
                let (plane, oy) = ((first + i) / g.oh, (first + i) % g.oh);
                let xin = &xb[plane * g.h * in_row..(plane + 1) * g.h * in_row];
                let (ys, ye, _, _) = g.window(p, oy, 0);
                let inputs: Vec<&[u8]> = (ys..ye).map(|y| &xin[y * in_row..(y + 1) * in_row]).collect();
                k.sum_rows(signedness, &inputs, &mut row);
                let windows = &classes[class_of[oy]].1;
                let args =
                    AverageRow { row: &row, sums: &mut sums, cw, spans: &spans, windows, out: orow, bounds: (lo, hi) };
                average_row(k.isa(), args);
            }
        });
        Ok((out, g.out_shape))
    }

    /// Twin of [`quantproof_reference::elementwise::binary`]: QAdd / QSub / QMul of two 8-bit
    /// tensors under `rule`, `b` broadcast to `a`'s shape, bit for bit with the reference on
    /// every ISA and thread count. Errors: the reference's, in its order.
    #[allow(clippy::too_many_arguments)]
    pub fn binary<C: FastCode>(
        &self,
        op: BinaryOp,
        rule: ArithRule,
        params: &BinaryParams,
        a: &[C],
        a_shape: &[usize],
        b: &[C],
        b_shape: &[usize],
        out: &mut [C],
    ) -> Result<()> {
        let kernel = BinaryKernel::new::<C>(op, rule, params)?;
        self.apply_binary(&kernel, a, a_shape, b, b_shape, out)
    }

    /// Twin of [`quantproof_reference::elementwise::apply_binary`] (a prepared kernel, for
    /// example [`BinaryKernel::equal_scale`]). Same-shape inputs go straight to the ISA's
    /// [`Kernels::binary_bytes`] in parallel spans; a broadcast `b` is first expanded to `a`'s
    /// shape (repeated when it is a trailing block of `a`, gathered by the reference's
    /// `broadcast_index` otherwise).
    pub fn apply_binary<C: FastCode>(
        &self,
        kernel: &BinaryKernel,
        a: &[C],
        a_shape: &[usize],
        b: &[C],
        b_shape: &[usize],
        out: &mut [C],
    ) -> Result<()> {
        let core = check_binary_shapes(a_shape, a.len(), b_shape, b.len(), out.len())?;
        let expanded: Vec<C>;
        let b = if b.len() == a.len() {
            // Every dimension of b is a's (a broadcast one would make b smaller): the identity.
            b
        } else if a.is_empty() {
            &b[..0]
        } else if a_shape.ends_with(core) && !b.is_empty() {
            expanded = b.repeat(a.len() / b.len());
            &expanded
        } else {
            let index = broadcast_index(a_shape, b_shape)?;
            expanded = index.iter().map(|&j| b.get(j).copied().unwrap_or(C::from_code(0))).collect();
            &expanded
        };
        let signedness = Signedness::signed_if(C::MIN < 0);
        let k = self.kernels;
        let (ab, bb, ob) = (C::bytes(a), C::bytes(b), C::bytes_mut(out));
        let threads = self.useful_threads(a.len().saturating_mul(ARITH_COST));
        if threads <= 1 {
            k.binary_bytes(kernel, signedness, ab, bb, ob);
        } else {
            let chunk = a.len().div_ceil(threads);
            let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = ab
                .chunks(chunk)
                .zip(bb.chunks(chunk))
                .zip(ob.chunks_mut(chunk))
                .map(|((x, y), o)| {
                    Box::new(move || k.binary_bytes(kernel, signedness, x, y, o)) as Box<dyn FnOnce() + Send + '_>
                })
                .collect();
            crate::pool::run(threads, tasks);
        }
        Ok(())
    }

    /// Twin of [`quantproof_reference::requantize::requantize`]: `out[i] = r.apply(acc[i],
    /// zero_point, range)`, int32 accumulators to codes of any storage type whose range holds
    /// `range`, bit for bit under every requantizer, in parallel spans for large inputs.
    /// Errors: `out` of the wrong length, a zero point outside `range`, a range the output type
    /// cannot hold.
    pub fn requantize<C: Code>(
        &self,
        acc: &[i32],
        r: &Requantizer,
        zero_point: i32,
        range: CodeRange,
        out: &mut [C],
    ) -> Result<()> {
        check_len("output", acc.len(), out.len())?;
        range.check_zero_point(0, zero_point)?;
        if range.qmin() < C::MIN || range.qmax() > C::MAX {
            return Err(QuantError::InvalidArgument {
                what: "code range",
                detail: format!("[{}, {}] does not fit {}", range.qmin(), range.qmax(), C::NAME),
            });
        }
        let k = self.kernels;
        // The fixed-point requantizers take two to three times as long per element as the float
        // ones (8 against 18 Gelem/s at 64K on AVX-512), whose halves at 32K elements took
        // longer on two threads than on one.
        let cost = match r {
            Requantizer::DoubleRounding(_) | Requantizer::SingleRounding(_) | Requantizer::Rndnu(_) => ARITH_COST,
            _ => 1,
        };
        if let Some(bytes) = code_bytes_mut(out) {
            let span = |a: &[i32], o: &mut [u8]| k.requantize_bytes(a, r, zero_point, range, o);
            self.split2(acc, bytes, cost, &span);
            return Ok(());
        }
        let span = |a: &[i32], o: &mut [C]| {
            let mut buf = [0i32; 1024];
            for (a, o) in a.chunks(1024).zip(o.chunks_mut(1024)) {
                let b = &mut buf[..a.len()];
                k.requantize(a, r, zero_point, range, b);
                for (o, &v) in o.iter_mut().zip(b.iter()) {
                    *o = C::from_code(v);
                }
            }
        };
        self.split2(acc, out, cost, &span);
        Ok(())
    }

    /// Runs `span` over `a` and `out` (one length) in one piece, or in equal pieces on the
    /// pool's threads when the input, `cost` lookup-equivalents per element, is large enough for
    /// [`Engine::useful_threads`].
    fn split2<A: Sync, O: Send>(&self, a: &[A], out: &mut [O], cost: usize, span: &(dyn Fn(&[A], &mut [O]) + Sync)) {
        self.split_units(a, out, 1, cost, span)
    }

    /// [`Engine::split2`] in pieces of whole `unit`s (rows of `unit` elements; `a.len()` a
    /// multiple of it).
    fn split_units<A: Sync, O: Send>(
        &self,
        a: &[A],
        out: &mut [O],
        unit: usize,
        cost: usize,
        span: &(dyn Fn(&[A], &mut [O]) + Sync),
    ) {
        let threads = self.useful_threads(a.len().saturating_mul(cost));
        if threads <= 1 {
            span(a, out);
            return;
        }
        let unit = unit.max(1);
        let chunk = (a.len() / unit).div_ceil(threads).max(1) * unit;
        let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = a
            .chunks(chunk)
            .zip(out.chunks_mut(chunk))
            .map(|(a, o)| Box::new(move || span(a, o)) as Box<dyn FnOnce() + Send + '_>)
            .collect();
        crate::pool::run(threads, tasks);
    }

    /// Twin of [`quantproof_reference::quantize::dequantize`].
    pub fn dequantize<C: FastCode>(
        &self,
        q: &[C],
        shape: &[usize],
        params: &QuantParams,
        out: &mut [f32],
    ) -> Result<()> {
        check_len("output", q.len(), out.len())?;
        let plan = Plan::new(params, shape, q.len(), ScaleOp::Divide)?;
        let k = self.kernels;
        plan.run(self.useful_threads(q.len()), q, out, &|p, qs, os: &mut [f32]| {
            C::dequantize(k, qs, p, os);
            false
        });
        Ok(())
    }

    /// Twin of [`quantproof_reference::quantize::fake_quantize`].
    pub fn fake_quantize(
        &self,
        x: &[f32],
        shape: &[usize],
        params: &QuantParams,
        rule: QuantizeRule,
        out: &mut [f32],
        mask: Option<&mut [bool]>,
    ) -> Result<()> {
        check_len("output", x.len(), out.len())?;
        if let Some(m) = mask.as_deref() {
            check_len("mask", x.len(), m.len())?;
        }
        let plan = Plan::new(params, shape, x.len(), rule.scale_op)?;
        let Some(krule) = kernel_rule(rule) else {
            return refq::fake_quantize(x, shape, params, rule, out, mask);
        };
        let k = self.kernels;
        let nan =
            plan.run(
                self.useful_threads(x.len()),
                x,
                (out, mask),
                &|p, xs, (os, ms): (&mut [f32], Option<&mut [bool]>)| k.fake_quantize(xs, p, krule, os, ms),
            );
        if nan {
            return Err(first_nan(x));
        }
        Ok(())
    }

    /// Twin of [`quantproof_reference::quantize::quantize_packed4`].
    pub fn quantize_packed4(
        &self,
        x: &[f32],
        shape: &[usize],
        params: &QuantParams,
        rule: QuantizeRule,
        kind: Int4,
        out: &mut [u8],
    ) -> Result<()> {
        kind.check_range(params.range)?;
        check_len("packed output", packed_len(x.len()), out.len())?;
        let mut codes = vec![0i8; x.len() + x.len() % 2];
        self.quantize(x, shape, params, rule, &mut codes[..x.len()])?;
        self.kernels.pack_nibbles(&codes, out);
        Ok(())
    }

    /// Twin of [`quantproof_reference::quantize::dequantize_packed4`].
    pub fn dequantize_packed4(
        &self,
        packed: &[u8],
        shape: &[usize],
        params: &QuantParams,
        kind: Int4,
        out: &mut [f32],
    ) -> Result<()> {
        let n = out.len();
        check_len("packed input", packed_len(n), packed.len())?;
        let mut codes = vec![0i8; 2 * packed.len()];
        self.kernels.unpack_nibbles(packed, kind, &mut codes);
        self.dequantize(&codes[..n], shape, params, out)
    }

    /// Runs `f` on up to `threads` contiguous parts of `x`, each of at least `min_per_thread`
    /// elements (or the engine's parallel threshold, when that is lower: tests lower it), on the
    /// worker pool; results in order. A panicking worker's panic propagates.
    fn split_run<R: Send>(&self, x: &[f32], min_per_thread: usize, f: &(dyn Fn(&[f32]) -> R + Sync)) -> Vec<R> {
        let parts = self.threads.min(x.len() / min_per_thread.min(self.min_per_thread).max(1)).max(1);
        if parts == 1 {
            return vec![f(x)];
        }
        let tasks = x
            .chunks(x.len().div_ceil(parts))
            .map(|c| Box::new(move || f(c)) as Box<dyn FnOnce() -> R + Send + '_>)
            .collect();
        crate::pool::run(parts, tasks)
    }

    /// `max |x|` (`0` for an empty input); fails on NaN, like [`Engine::min_max`]. Exact: the
    /// maximum of a set does not depend on how the set is split.
    pub fn abs_max(&self, x: &[f32]) -> Result<f32> {
        let k = self.kernels;
        let mut m = 0f32;
        for (v, nan) in self.split_run(x, MIN_PER_THREAD_REDUCE, &|c| k.abs_max(c)) {
            if nan {
                return Err(first_nan(x));
            }
            m = m.max(v);
        }
        Ok(m)
    }

    /// `min |x|` (`+inf` for an empty input); fails on NaN.
    pub fn abs_min(&self, x: &[f32]) -> Result<f32> {
        let k = self.kernels;
        let mut m = f32::INFINITY;
        for (v, nan) in self.split_run(x, MIN_PER_THREAD_REDUCE, &|c| k.abs_min(c)) {
            if nan {
                return Err(first_nan(x));
            }
            m = m.min(v);
        }
        Ok(m)
    }

    /// Twin of [`numpy_hist::accumulate`] (with `abs`, of `accumulate` on `|x|`): adds numpy's bin
    /// counts of `x` over `bins` to `counts` (`np.histogram(x, bins=n, range=...)`; values outside
    /// the bins and NaN are not counted). Threads split `x` and add their counts (exact: integer
    /// sums). Bins whose edges are not `linspace`'s arithmetic ([`HistBins::from_edges`]) use the
    /// reference's builder. Fails when `counts.len() != bins.len()`.
    pub fn histogram(&self, x: &[f32], bins: &UniformBins, of: HistogramOf, counts: &mut [u64]) -> Result<()> {
        check_len("histogram counts", bins.len(), counts.len())?;
        let Some(hb) = HistBins::from_edges(bins.first(), bins.last(), bins.edges()) else {
            if of == HistogramOf::Magnitudes {
                let a: Vec<f32> = x.iter().map(|v| v.abs()).collect();
                numpy_hist::accumulate(&a, bins, counts);
            } else {
                numpy_hist::accumulate(x, bins, counts);
            }
            return Ok(());
        };
        let k = self.kernels;
        let n = bins.len();
        let parts = self.split_run(x, MIN_PER_THREAD_HIST, &|c| {
            let mut sub = vec![0u32; hb.sub_len()];
            let mut total = vec![0u64; n];
            for piece in c.chunks(HIST_CHUNK) {
                k.histogram(piece, &hb, of, &mut sub);
                for s in sub.chunks_exact_mut(n + 1) {
                    total.iter_mut().zip(&s[..n]).for_each(|(t, &v)| *t += v as u64);
                    s.fill(0);
                }
            }
            total
        });
        for part in parts {
            counts.iter_mut().zip(part).for_each(|(c, v)| *c += v);
        }
        Ok(())
    }

    /// Minimum and maximum of `x`; fails on NaN (infinities are returned as they are). An empty
    /// input gives `min = +inf, max = -inf`.
    pub fn min_max(&self, x: &[f32]) -> Result<MinMax> {
        let k = self.kernels;
        let mut mm = MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY };
        for (lo, hi, nan) in self.split_run(x, MIN_PER_THREAD_REDUCE, &|c| k.min_max(c)) {
            if nan {
                return Err(first_nan(x));
            }
            mm.min = mm.min.min(lo);
            mm.max = mm.max.max(hi);
        }
        Ok(mm)
    }

    /// Twin of [`Profile::dynamic_quantize`]: uint8 codes with parameters read from the data.
    pub fn dynamic_quantize(&self, profile: &Profile, x: &[f32], out: &mut [u8]) -> Result<ScaleZeroPoint> {
        if x.is_empty() {
            return Err(QuantError::EmptyInput { what: "x" });
        }
        // The output length is checked by `quantize` below: the reference's order of checks.
        // The same error as the reference: the first NaN or infinity, by index.
        let mm = match self.min_max(x) {
            Ok(mm) if mm.min.is_finite() && mm.max.is_finite() => mm,
            _ => {
                quantproof_reference::error::check_finite("x", x)?;
                return Err(QuantError::NonFinite { what: "x", index: 0, value: f64::NAN });
            }
        };
        let p = profile.dynamic_qparams(mm.min, mm.max)?;
        let params = QuantParams::per_tensor(p.scale, p.zero_point, QType::U8.full_range());
        self.quantize(x, &[x.len()], &params, profile.quantize, out)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantproof_reference::scheme::QType;

    /// The multiply-and-shift division of `FastAverage`, in every compilation of the row pass,
    /// equals the reference's C division on every divisor 1..=300, every power of two up to 2^23
    /// and its neighbours, and sums at the ends of the range (windows of up to 2^23 codes of
    /// magnitude up to 255), zero and the rounding ties around it; PyTorch's f32 rule likewise.
    #[test]
    fn fast_average_divides_exactly() {
        use quantproof_reference::pool::WindowAverage;
        let mut divisors: Vec<i64> = (1..=300).collect();
        for e in 9..=23 {
            divisors.extend([(1i64 << e) - 1, 1 << e, (1 << e) + 1]);
        }
        divisors.retain(|&d| d <= 1 << 23);
        let mut rng = quantproof_reference::rng::Rng::new(7);
        for &d in &divisors {
            let limit = d * 255;
            let mut sums: Vec<i32> = vec![0, 1, -1, limit as i32, -(limit as i32), (d * 128) as i32, -(d * 128) as i32];
            for k in -3..=3i64 {
                for off in [-1, 0, 1] {
                    sums.push((k * d + d / 2 + off).clamp(-limit, limit) as i32);
                    sums.push((k * d - d / 2 + off).clamp(-limit, limit) as i32);
                }
            }
            sums.extend((0..200).map(|_| rng.range_i64(-limit, limit) as i32));
            // Every compilation of the row pass (`average_row`: portable, and for AVX2 and
            // AVX-512 where the CPU has them), one window of `sums.len()` codes.
            let full = (i16::MIN as i32, i16::MAX as i32);
            let rows_of = |f: &FastAverage| -> Vec<(Isa, Vec<i16>)> {
                crate::isa::available()
                    .into_iter()
                    .map(|isa| {
                        let (mut scratch, mut out) = (vec![0i32; sums.len()], vec![0i16; sums.len()]);
                        let (spans, windows) = ([(0, 1)], [*f]);
                        let args = super::AverageRow {
                            row: &sums,
                            sums: &mut scratch,
                            cw: sums.len(),
                            spans: &spans,
                            windows: &windows,
                            out: &mut out,
                            bounds: full,
                        };
                        super::average_row(isa, args);
                        (isa, out)
                    })
                    .collect()
            };
            let wa = WindowAverage::Tflite { count: d };
            for (isa, row) in rows_of(&FastAverage::new(wa)) {
                for (&s, &g) in sums.iter().zip(&row) {
                    assert_eq!(g as i32, wa.apply::<i16>(s as i64), "{isa:?} sum {s} / {d}");
                }
            }
            // PyTorch's rounding: multipliers with exact halves (1/2^k), tiny and huge ones.
            for multiplier in [
                0.5f32 / d as f32,
                1.0 / d as f32,
                0.25,
                3.0e-7,
                1.7,
                1.0e6,
                2.0f32.powi(-(d % 20) as i32),
                f32::INFINITY,
            ] {
                for zx in [-128, 0, 77, 255] {
                    for zy in [-128.0f32, 0.0, 3.0, 255.0] {
                        let wa = WindowAverage::Torch { count: d, zx, zy, multiplier };
                        for (isa, row) in rows_of(&FastAverage::new(wa)) {
                            for (&s, &r) in sums.iter().zip(&row) {
                                assert_eq!(r as i32, wa.apply::<i16>(s as i64), "{isa:?} torch sum {s}, {wa:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// TFLite's division in f32 ([`divide_f32`], both floors) equals C's `(s ± d/2) / d` for
    /// every divisor it takes (1 to 2^13): every sum of the window's range for `d <= 64`, and
    /// for every `d` the sums whose `|s| + d/2` lies at a multiple of `d` or next to one (where
    /// a quotient one too high or too low would show), both signs, up to `255 d`.
    #[test]
    fn f32_division_is_c_division_for_every_window() {
        let c_division = |s: i64, d: i64| if s > 0 { (s + d / 2) / d } else { (s - d / 2) / d };
        for d in 1..=F32_DIVIDE_MAX {
            let Some(FastAverage { fdiv: Some((m, half)), .. }) =
                Some(FastAverage::new(quantproof_reference::pool::WindowAverage::Tflite { count: d }))
            else {
                panic!("no f32 division for a window of {d}")
            };
            let limit = 255 * d;
            let mut check = |s: i64| {
                if s.abs() <= limit {
                    let want = c_division(s, d);
                    assert_eq!(divide_f32::<true>(s as i32, m, half) as i64, want, "{s} / {d}");
                    assert_eq!(divide_f32::<false>(s as i32, m, half) as i64, want, "{s} / {d} (no floor)");
                }
            };
            if d <= 64 {
                (-limit..=limit).for_each(&mut check);
            } else {
                for k in 0..=256 {
                    for u in [k * d - 1, k * d, k * d + 1] {
                        let s = u - half as i64;
                        check(s);
                        check(-s);
                    }
                }
            }
        }
        let over = FastAverage::new(quantproof_reference::pool::WindowAverage::Tflite { count: F32_DIVIDE_MAX + 1 });
        assert!(over.fdiv.is_none() && over.div.is_some());
    }

    /// Threaded reductions and histograms split the data and combine the parts exactly.
    #[test]
    fn threaded_abs_reductions_and_histograms_combine_exactly() {
        let n = (MIN_PER_THREAD_REDUCE * 2) + 12_345;
        let x: Vec<f32> = (0..n).map(|i| ((i as u64 * 2_654_435_761) % 100_003) as f32 / 7919.0 - 6.0).collect();
        let (amax, amin) = x.iter().fold((0f32, f32::INFINITY), |(a, b), v| (a.max(v.abs()), b.min(v.abs())));
        let bins = UniformBins::new(-6.0, 6.0, 2048).unwrap();
        let want = numpy_hist::counts(&x[..MIN_PER_THREAD_HIST * 5], &bins);
        for isa in crate::isa::available() {
            for t in 1..=3 {
                let e = Engine::new(isa).unwrap().with_threads(t);
                assert_eq!(e.abs_max(&x).unwrap(), amax, "{isa} {t}");
                assert_eq!(e.abs_min(&x).unwrap(), amin, "{isa} {t}");
                let mut c = vec![0u64; 2048];
                e.histogram(&x[..MIN_PER_THREAD_HIST * 5], &bins, HistogramOf::Values, &mut c).unwrap();
                assert_eq!(c, want, "{isa} {t}");
            }
        }
        let mut y = x[..1000].to_vec();
        y[500] = f32::NAN;
        assert!(matches!(Engine::auto().abs_max(&y), Err(QuantError::NanInput { index: 500, .. })));
        assert!(Engine::auto().histogram(&y, &bins, HistogramOf::Values, &mut [0u64; 3]).is_err());
    }

    #[test]
    fn plans_cover_every_element_once() {
        let r = QType::I8.full_range();
        let cases: Vec<(QuantParams, Vec<usize>)> = vec![
            (QuantParams::per_tensor(1.0, 0, r), vec![200_000]),
            (QuantParams::per_axis(0, vec![1.0; 3], vec![0; 3], r), vec![3, 40]),
            (QuantParams::per_axis(1, vec![1.0; 5], vec![0; 5], r), vec![7, 5]),
            (QuantParams::per_axis(1, vec![1.0; 5], vec![0; 5], r), vec![7, 5, 3]),
            (QuantParams::per_block(1, 4, vec![1.0; 14], vec![0; 14], r), vec![7, 8]),
            (QuantParams::per_block(1, 16, vec![1.0; 14], vec![0; 14], r), vec![7, 32]),
            (QuantParams::per_block(0, 2, vec![1.0; 6], vec![0; 6], r), vec![4, 3]),
        ];
        for (p, shape) in cases {
            let n: usize = shape.iter().product();
            let plan = Plan::new(&p, &shape, n, ScaleOp::Divide).unwrap();
            let mut covered = vec![0u8; n];
            for s in &plan.spans {
                for c in &mut covered[s.start..s.start + s.len] {
                    *c += 1;
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "{shape:?}");
            for t in 1..5 {
                let groups = split_groups(&plan.spans, t, n);
                assert!(groups.len() <= t.max(1));
                assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), plan.spans.len());
            }
        }
    }
}

/// `out` as its bytes when `C` is `i8` or `u8` (an `i8` code's byte is its two's complement),
/// `None` for wider code types.
fn code_bytes_mut<C: Code>(out: &mut [C]) -> Option<&mut [u8]> {
    use std::any::TypeId;
    let id = TypeId::of::<C>();
    if id != TypeId::of::<u8>() && id != TypeId::of::<i8>() {
        return None;
    }
    // SAFETY: `C` is `u8` or `i8` (checked above): one byte, alignment 1, every bit pattern
    // valid for both; the new slice covers exactly `out` and takes over its mutable borrow.
    Some(unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len()) })
}

/// Max pooling along one padded row: `out` cell `ox` (`cw` bytes) is the element-wise maximum
/// of `row`'s cells `ox s .. ox s + kw`, clamped to `[lo, hi]` ([`PoolKernels::max_rows`]).
/// Overlapping windows, or cells narrower than a vector, first take the maximum of every run of
/// `kw` cells at stride 1 in one pass over the row (`kw` shifted views of it, into `scratch`),
/// then pick every `s`-th run; windows that do not overlap take their own cells. `row` holds
/// at least `(ow - 1) s + kw` cells, `ow = out.len() / cw`.
///
/// [`PoolKernels::max_rows`]: crate::kernels::PoolKernels::max_rows
#[allow(clippy::too_many_arguments)]
fn max_row_windows(
    k: &dyn Kernels,
    signedness: Signedness,
    (lo, hi): (u8, u8),
    row: &[u8],
    cw: usize,
    kw: usize,
    s: usize,
    out: &mut [u8],
    scratch: &mut Vec<u8>,
) {
    let ow = out.len().checked_div(cw).unwrap_or(0);
    if ow == 0 {
        return;
    }
    if s <= kw || cw < 64 {
        let n = ((ow - 1) * s + 1) * cw;
        let shifted: Vec<&[u8]> = (0..kw).map(|j| &row[j * cw..j * cw + n]).collect();
        if s == 1 {
            k.max_rows(signedness, lo, hi, &shifted, out);
            return;
        }
        scratch.resize(n, 0);
        k.max_rows(signedness, lo, hi, &shifted, scratch);
        if cw == 1 {
            // Single codes (NCHW): byte moves, not a copy call per code.
            for (o, &r) in out.iter_mut().zip(scratch.iter().step_by(s)) {
                *o = r;
            }
        } else {
            for (o, r) in out.chunks_exact_mut(cw).zip(scratch.chunks(cw * s)) {
                o.copy_from_slice(&r[..cw]);
            }
        }
    } else {
        let mut cells: Vec<&[u8]> = Vec::with_capacity(kw);
        for (ox, o) in out.chunks_exact_mut(cw).enumerate() {
            cells.clear();
            cells.extend((0..kw).map(|j| &row[(ox * s + j) * cw..(ox * s + j + 1) * cw]));
            k.max_rows(signedness, lo, hi, &cells, o);
        }
    }
}

/// One window's [`quantproof_reference::pool::WindowAverage`] on `i32` sums, with TFLite's
/// rounded division `(s ± d/2) / d` (C truncation) as a multiply and a shift (Granlund and
/// Montgomery's round-up reciprocal): with `l = ceil(log2 d)` and `m = ceil(2^(31 + l) / d)`,
/// `floor(n / d) = (n m) >> (31 + l)` for every `0 <= n < 2^31`, because `0 <= m d - 2^(31 + l)
/// < d <= 2^l`. Here `n = |s ± d/2| < 2^31` (windows of at most `2^23` codes of magnitude at most
/// 255, and `d <= 2^23`), and `m < 2^32` (since `d > 2^(l - 1)`; `m = 2^31` for `d = 1`), so
/// `n m` is one 32 x 32 -> 64-bit product (`vpmuludq` once vectorized; a full 64-bit multiply
/// costs three times as much). Other rules call the reference's `apply`.
///
/// Windows of at most `2^13` cells (every real pooling window) divide in `f32` instead
/// ([`divide_f32`]): two 32 x 32 -> 64-bit products per 16 lanes and their repacking were most
/// of average pooling's time.
///
/// PyTorch's `nearbyint(RN(RN(acc * M) + zy))` takes the same two f32 roundings, then rounds to
/// an integer, ties to even, by adding `1.5 * 2^23` and reading the integer off the sum's bits
/// (exact for `|v| <= 2^22`; `v` is first clamped there, which changes no result because the
/// output code range lies far inside): `round_ties_even` is a library call where the CPU
/// baseline lacks `roundss`, and a float-to-int cast does not vectorize.
#[derive(Debug, Clone, Copy)]
struct FastAverage {
    wa: quantproof_reference::pool::WindowAverage,
    /// `(m, 31 + l, d / 2)` for TFLite's division.
    div: Option<(u32, u32, i32)>,
    /// `(1/d rounded up to f32, d / 2)` where `d <= F32_DIVIDE_MAX`: TFLite's division in f32.
    fdiv: Option<(f32, i32)>,
}

/// The largest window [`divide_f32`] divides by.
const F32_DIVIDE_MAX: i64 = 1 << 13;

impl FastAverage {
    fn new(wa: quantproof_reference::pool::WindowAverage) -> FastAverage {
        use quantproof_reference::pool::WindowAverage;
        let div = match wa {
            WindowAverage::Tflite { count } if count > 0 && count <= 1 << 23 => {
                let d = count as u64;
                let l = 64 - (d - 1).leading_zeros();
                let m = u32::try_from((1u64 << (31 + l)).div_ceil(d)).ok();
                m.map(|m| (m, 31 + l, (count / 2) as i32))
            }
            _ => None,
        };
        let fdiv = match wa {
            WindowAverage::Tflite { count } if count > 0 && count <= F32_DIVIDE_MAX => {
                // 1/d rounded up: the nearest f32, or the next one where that is below 1/d
                // (exact: d and the f32 are both exact in f64, and so is their product).
                let r = 1.0f32 / count as f32;
                let m = if (r as f64) * (count as f64) < 1.0 { f32::from_bits(r.to_bits() + 1) } else { r };
                Some((m, (count / 2) as i32))
            }
            _ => None,
        };
        FastAverage { wa, div, fdiv }
    }

    /// `out[i] = clamp(wa.apply(sums[i]), lo, hi)`, the rule matched once for the row.
    #[inline(always)]
    fn apply_row<C: Code, const FLOOR: bool>(&self, sums: &[i32], out: &mut [C], lo: i32, hi: i32) {
        match (self.fdiv, self.div) {
            (Some((m, half)), _) => {
                for (o, &s) in out.iter_mut().zip(sums) {
                    *o = C::from_code(divide_f32::<FLOOR>(s, m, half).clamp(lo, hi));
                }
            }
            (None, Some((m, shift, half))) => {
                for (o, &s) in out.iter_mut().zip(sums) {
                    *o = C::from_code(divide(s, m, shift, half).clamp(lo, hi));
                }
            }
            (None, None) => {
                if let quantproof_reference::pool::WindowAverage::Torch { count, zx, zy, multiplier } = self.wa {
                    let czx = count * zx as i64;
                    // `|sum| <= 255 count` and `|zx| <= 255`: below `2^31 / 510` codes the
                    // difference is exact in i32 (which vectorizes at full width), and it is
                    // the same integer, so the same f32.
                    if count <= (1i64 << 31) / 510 {
                        let czx = czx as i32;
                        for (o, &s) in out.iter_mut().zip(sums) {
                            let acc = s.wrapping_sub(czx) as f32;
                            *o = C::from_code(torch_round::<C>(acc, multiplier, zy).clamp(lo, hi));
                        }
                    } else {
                        for (o, &s) in out.iter_mut().zip(sums) {
                            *o = C::from_code(torch_average::<C>(s, czx, multiplier, zy).clamp(lo, hi));
                        }
                    }
                } else {
                    for (o, &s) in out.iter_mut().zip(sums) {
                        *o = C::from_code(self.wa.apply::<C>(s as i64).clamp(lo, hi));
                    }
                }
            }
        }
    }
}

/// The engine as the framework ops' accumulator (`quantproof_reference::linear`'s and
/// `gemm::matmul_integer`'s `*_with` functions): the reference's checks first, in its order;
/// then `u8 x i8` and `i8 x i8` products on the packed GEMM of the engine's ISA and threads
/// (weights packed per call, activations copied into a byte buffer); other operand types
/// (`u8` weights), and any call the packed GEMM refuses, on the reference's loop, whose values
/// and errors define the result.
impl quantproof_reference::gemm::Accumulator for Engine {
    fn accumulate<A: quantproof_reference::gemm::Operand8, B: quantproof_reference::gemm::Operand8>(
        &self,
        a: &[A],
        a_zero_point: i32,
        b: &[B],
        b_zero_points: quantproof_reference::gemm::ZeroPoints<'_>,
        layout: quantproof_reference::gemm::WeightLayout,
        dims: quantproof_reference::gemm::GemmDims,
        out: &mut [i32],
    ) -> Result<()> {
        use crate::gemm::{gemm_s8s8_threaded, gemm_u8s8_threaded, GemmKernel, PackedWeights};
        use quantproof_reference::gemm::{accumulate, check_accumulate};
        check_accumulate::<A, B>(a.len(), a_zero_point, b.len(), b_zero_points, dims, out.len())?;
        let fast = (|| -> Option<()> {
            if B::QTYPE != QType::I8 {
                return None;
            }
            let w: Vec<i8> = b.iter().map(|v| v.value() as i8).collect();
            let packed = PackedWeights::new(&w, b_zero_points, layout, dims.k, dims.n).ok()?;
            let kernel = GemmKernel::best_for(self.isa());
            match A::QTYPE {
                QType::U8 => {
                    let x: Vec<u8> = a.iter().map(|v| v.value() as u8).collect();
                    gemm_u8s8_threaded(&x, dims.k, dims.m, a_zero_point, &packed, kernel, self.threads(), out).ok()
                }
                QType::I8 => {
                    let x: Vec<i8> = a.iter().map(|v| v.value() as i8).collect();
                    gemm_s8s8_threaded(&x, dims.k, dims.m, a_zero_point, &packed, kernel, self.threads(), out).ok()
                }
                _ => None,
            }
        })();
        match fast {
            Some(()) => Ok(()),
            None => accumulate(a, a_zero_point, b, b_zero_points, layout, dims, out),
        }
    }
}

/// The engine as the framework convolutions' accumulator (`quantproof_reference::conv`'s
/// `*_with` functions): the reference's im2col formulation with each group's GEMM on the
/// engine's [`quantproof_reference::gemm::Accumulator`] (its packed GEMM); on any error the
/// reference's direct loop runs instead, so that errors name the convolution's element as the
/// reference's do.
impl quantproof_reference::conv::ConvAccumulator for Engine {
    fn conv_accumulate<X: quantproof_reference::gemm::Operand8, W: quantproof_reference::gemm::Operand8>(
        &self,
        g: &quantproof_reference::conv::Conv2dGeometry,
        x_layout: quantproof_reference::conv::ActivationLayout,
        w_layout: quantproof_reference::conv::ConvWeightLayout,
        x: &[X],
        x_zero_point: i32,
        w: &[W],
        w_zero_points: quantproof_reference::gemm::ZeroPoints<'_>,
    ) -> Result<Vec<i32>> {
        use quantproof_reference::conv::{conv2d_accumulate, conv2d_accumulate_im2col_with};
        conv2d_accumulate_im2col_with(self, g, x_layout, w_layout, x, x_zero_point, w, w_zero_points)
            .or_else(|_| conv2d_accumulate(g, x_layout, w_layout, x, x_zero_point, w, w_zero_points))
    }
}

/// One output row of bilinear resizing: for each output column `(x0, x1, wx)` of `xs` and
/// each channel, `round_half_away((q00 (2^10 - wy)(2^10 - wx) + q10 wy (2^10 - wx) + q01
/// (2^10 - wy) wx + q11 wy wx) / 2^20)` from rows `r0` (`y0`) and `r1` (`y1`), in `i32` (see
/// `Engine::resize`). Portable code, compiled once more for AVX2 and AVX-512.
fn bilinear_row<C: Code>(isa: Isa, args: BilinearRow<'_, C>) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
        fn avx512<C: Code>(args: BilinearRow<'_, C>) {
            bilinear_row_body(args)
        }
        #[target_feature(enable = "avx2")]
        fn avx2<C: Code>(args: BilinearRow<'_, C>) {
            bilinear_row_body(args)
        }
        match isa {
            // SAFETY: the engine's kernels are AVX-512's only where `isa::detect` found AVX-512
            // F/BW/VL/DQ.
            Isa::Avx512 => return unsafe { avx512(args) },
            // SAFETY: the engine's kernels are AVX2's only where AVX2 was detected.
            Isa::Avx2 => return unsafe { avx2(args) },
            _ => {}
        }
    }
    let _ = isa;
    bilinear_row_body(args)
}

/// [`bilinear_row`]'s arguments.
struct BilinearRow<'a, C> {
    r0: &'a [C],
    r1: &'a [C],
    xs: &'a [(usize, usize, i32)],
    wy: i32,
    c: usize,
    out: &'a mut [C],
}

#[inline(always)]
fn bilinear_row_body<C: Code>(BilinearRow { r0, r1, xs, wy, c, out }: BilinearRow<'_, C>) {
    for (o, &(x0, x1, wx)) in out.chunks_exact_mut(c).zip(xs) {
        let (w00, w10) = (((1 << 10) - wy) * ((1 << 10) - wx), wy * ((1 << 10) - wx));
        let (w01, w11) = (((1 << 10) - wy) * wx, wy * wx);
        let (a, b) = (&r0[x0 * c..(x0 + 1) * c], &r1[x0 * c..(x0 + 1) * c]);
        let (d, e) = (&r0[x1 * c..(x1 + 1) * c], &r1[x1 * c..(x1 + 1) * c]);
        for ((((o, a), b), d), e) in o.iter_mut().zip(a).zip(b).zip(d).zip(e) {
            let v = a.to_code() * w00 + b.to_code() * w10 + d.to_code() * w01 + e.to_code() * w11;
            let round = if v > 0 { 1 << 19 } else { -(1 << 19) };
            *o = C::from_code((v + round) / (1 << 20));
        }
    }
}

/// One output row of average pooling from the window rows' column sums `row` (cells of `cw`
/// codes): output cell `ox` is its window's rule (`windows[ox]`) applied to the sum of the
/// cells `spans[ox]` (formed in `sums`, one cell long), clamped to `[lo, hi]`.
///
/// Portable code, compiled once more for AVX2 and for AVX-512 (`target_feature`), where the
/// compiler vectorizes the sums, TFLite's multiply-shift division (`vpmuludq`) and PyTorch's f32
/// arithmetic: the same Rust operations, so the same results (Rust never contracts a multiply
/// and an add into an FMA), picked by the engine's ISA.
fn average_row<C: Code>(isa: Isa, args: AverageRow<'_, C>) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
        fn avx512<C: Code>(args: AverageRow<'_, C>) {
            average_row_body::<C, true>(args)
        }
        #[target_feature(enable = "avx2")]
        fn avx2<C: Code>(args: AverageRow<'_, C>) {
            average_row_body::<C, true>(args)
        }
        match isa {
            // SAFETY: the engine's kernels are AVX-512's only where `isa::detect` found AVX-512
            // F/BW/VL/DQ.
            Isa::Avx512 => return unsafe { avx512(args) },
            // SAFETY: the engine's kernels are AVX2's only where AVX2 was detected.
            Isa::Avx2 => return unsafe { avx2(args) },
            _ => {}
        }
    }
    let _ = isa;
    // `floor` is an instruction of aarch64's baseline, a library call on x86-64's.
    average_row_body::<C, { cfg!(target_arch = "aarch64") }>(args)
}

/// [`average_row`]'s arguments.
struct AverageRow<'a, C> {
    /// The window rows' column sums, cells of `cw` codes.
    row: &'a [i32],
    /// Scratch, at least one cell long.
    sums: &'a mut [i32],
    cw: usize,
    /// Each output cell's window: its input columns and its rule.
    spans: &'a [(usize, usize)],
    windows: &'a [FastAverage],
    out: &'a mut [C],
    /// The fused activation's code bounds.
    bounds: (i32, i32),
}

/// [`average_row`]'s body, inlined into each of its compilations (`FLOOR`: where `f32::floor`
/// is one instruction, see [`divide_f32`]).
#[inline(always)]
fn average_row_body<C: Code, const FLOOR: bool>(
    AverageRow { row, sums, cw, spans, windows, out, bounds: (lo, hi) }: AverageRow<'_, C>,
) {
    let sums = &mut sums[..cw];
    for ((o, f), &(xs, xe)) in out.chunks_exact_mut(cw).zip(windows).zip(spans) {
        let mut cells = row[xs * cw..xe * cw].chunks_exact(cw);
        match (cells.next(), cells.next()) {
            (None, _) => sums.fill(0),
            (Some(a), None) => sums.copy_from_slice(a),
            (Some(a), Some(b)) => {
                // The first two cells in one pass (not a copy: no `memcpy` call per window).
                for ((r, &a), &b) in sums.iter_mut().zip(a).zip(b) {
                    *r = a.wrapping_add(b);
                }
                for c in cells {
                    for (r, &v) in sums.iter_mut().zip(c) {
                        *r = r.wrapping_add(v);
                    }
                }
            }
        }
        f.apply_row::<C, FLOOR>(sums, o, lo, hi);
    }
}

/// `WindowAverage::Torch`'s `apply`, rounding as [`torch_round`] does.
#[inline(always)]
fn torch_average<C: Code>(sum: i32, count_zx: i64, multiplier: f32, zy: f32) -> i32 {
    torch_round::<C>((sum as i64 - count_zx) as f32, multiplier, zy)
}

/// The rest of [`torch_average`] from `acc = RN(sum - count zx)`.
#[inline(always)]
fn torch_round<C: Code>(acc: f32, multiplier: f32, zy: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let v = acc * multiplier + zy;
    // A NaN (`0 * inf` from an overflowing multiplier) is the reference's `NaN as i32`, 0.
    let v = if v.is_nan() { 0.0 } else { v.clamp(-4_194_304.0, 4_194_304.0) };
    // `v + 1.5 * 2^23` lies in [2^23, 2^24], where the f32 step is 1: the sum is `v` rounded to
    // an integer, ties to even, and its bits minus those of `1.5 * 2^23` are that integer (2^24,
    // the one sum in the next binade, is the next bit pattern too). No float-to-int `as` cast,
    // whose saturation the compiler does not vectorize.
    let r = (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    r.clamp(C::MIN, C::MAX)
}

/// TFLite's `(s ± d/2) / d` (C truncation) in `f32`, for a window of `d <= 2^13` cells (so
/// `|s| <= 255 d`): `sign(s) floor(u / d)` with `u = |s| + d/2` (for `s = 0` both are 0), where
/// `floor(u / d) = floor(RN(u m))` with `m = 1/d` rounded up. Proof: `u` and `k = floor(u / d)`
/// are exact in f32 (`u <= 255.5 d + 1 < 2^21`). Below: `u m >= u / d >= k`, and rounding to
/// nearest never crosses the f32 `k`. Above: `m <= (1 + 2^-23) / d`, so
/// `u m <= u/d + (u/d) 2^-23 <= k + 1 - 1/d + (u + d) 2^-23 / d`, at least `(1 - (u + d) 2^-23) / d
/// >= 1 / (2d)` below `k + 1` (as `u + d <= 2^22`), while half an ulp at `k + 1 <= (u + d) / d`
/// is at most `(u + d) / d 2^-24 <= 1 / (4d)`: `RN(u m) < k + 1`. The floor of that non-negative
/// f32 `p < 2^22`: `t = RN(p + 2^23)` is `p` rounded to an integer plus `2^23` (the step there is
/// 1), read off `t`'s bits as [`torch_round`] does, less one where that rounded up (`t - 2^23 >
/// p`, exact), or with `FLOOR` `RN(floor(p) + 2^23)`, for code compiled where `floor` is one
/// instruction (`vrndscaleps`, `roundps`, `frintm`; elsewhere it is a library call). No
/// float-to-int cast, which does not vectorize.
#[inline(always)]
fn divide_f32<const FLOOR: bool>(sum: i32, m: f32, half: i32) -> i32 {
    const TWO_23: f32 = 8_388_608.0;
    let u = (sum.unsigned_abs() as i32).wrapping_add(half) as f32;
    let p = u * m;
    let r = if FLOOR {
        (p.floor() + TWO_23).to_bits() as i32 - TWO_23.to_bits() as i32
    } else {
        let t = p + TWO_23;
        (t.to_bits() as i32 - TWO_23.to_bits() as i32) - ((t - TWO_23) > p) as i32
    };
    if sum < 0 {
        r.wrapping_neg()
    } else {
        r
    }
}

/// TFLite's `(s ± d/2) / d` by [`FastAverage`]'s multiply and shift, written without branches
/// on the data (selects), so that rows of random signs neither mispredict nor stop
/// vectorization.
#[inline(always)]
fn divide(sum: i32, m: u32, shift: u32, half: i32) -> i32 {
    // `|sum| < 2^31 - 2^22` and `half <= 2^22`: `t` is exact in i32 (wrapping never wraps).
    let t = sum.wrapping_add(if sum > 0 { half } else { -half });
    let q = ((t.unsigned_abs() as u64 * m as u64) >> shift) as i32;
    if t < 0 {
        q.wrapping_neg()
    } else {
        q
    }
}
