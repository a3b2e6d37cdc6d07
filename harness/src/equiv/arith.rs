//! Descriptors for the integer arithmetic: QAdd / QSub / QMul ([`Binary`]), int32 ->
//! 8-bit requantization ([`Requantize`]), the 256-entry table lookup of every unary op
//! ([`Lut`]) and the packed `u8 x s8` GEMM ([`Qgemm`]). Their cases are named tensors with
//! attributes ([`super::gen::Input`], [`super::gen::Attr`]), so two inputs with broadcasting,
//! accumulators, tables and strided matrices go through the same runner, sweeps and failure
//! reports as the quantize family.
//!
//! The dedicated kernel tests (`tests/binary_kernels.rs`: every pair of codes;
//! `tests/requantize_kernels.rs`: every shift and multiplier edge; `tests/gemm_kernels.rs`: every
//! micro-kernel's tile edges) prove the exhaustive parts; these descriptors add the runner's
//! sweeps (lengths 0..=67 and large, misaligned starts, 1 and several threads, the proptest
//! random cases) on every ISA level through the `Engine`, the way a user calls it.

use super::gen::{Attr, Case, CaseSpec, Input};
use super::ops::{filler, Guarded, OpDescriptor, TestCode};
use super::outcome::{Data, Outcome, Tensor};
use super::rng::{hash_str, Rng};
use crate::path::Path;
use quantproof_optimized::gemm::{gemm_u8s8_threaded, GemmKernel, PackedWeights, BLOCK_K, BLOCK_M, KR, MR, NR};
use quantproof_reference::activation::{apply_table, table, UnaryOp};
use quantproof_reference::affine::{Activation, Affine};
use quantproof_reference::elementwise::{binary, BinaryOp, BinaryParams};
use quantproof_reference::gemm::{accumulate, GemmDims, WeightLayout, ZeroPoints};
use quantproof_reference::pool::{
    avg_pool2d as ref_avg_pool2d, max_pool2d as ref_max_pool2d, Layout as PoolLayout, Padding, Pool2d,
};
use quantproof_reference::profile::{ArithRule, Profile};
use quantproof_reference::requantize::{requantize as ref_requantize, RequantizeKind, Requantizer};
use quantproof_reference::scheme::{Code, CodeRange};
use std::marker::PhantomData;

fn rng_for(name: &str, spec: &CaseSpec) -> Rng {
    Rng::derived(spec.seed, hash_str(name))
}

/// A case with the spec's offset and no quantization parameters of its own.
fn frame(spec: &CaseSpec, shape: &[usize]) -> Case {
    let mut case = Case::manual(shape);
    case.spec = *spec;
    case.offset = spec.offset;
    case
}

/// `data` behind `offset` copies of `fill`, as the input called `name` of shape `shape`.
fn input<T: Clone>(
    name: &'static str,
    shape: &[usize],
    offset: usize,
    fill: T,
    data: Vec<T>,
    wrap: fn(Vec<T>) -> Data,
) -> Input {
    let mut v = vec![fill; offset];
    v.extend(data);
    Input {
        name,
        shape: shape.to_vec(),
        data: wrap(v),
        offset,
        tail: 0,
        row_stride: shape.last().copied().unwrap_or(1),
    }
}

fn codes_input<C: TestCode>(name: &'static str, shape: &[usize], offset: usize, data: Vec<C>) -> Input {
    let mut v = vec![C::from_code(C::MIN); offset];
    v.extend(data);
    Input {
        name,
        shape: shape.to_vec(),
        data: C::data(&v),
        offset,
        tail: 0,
        row_stride: shape.last().copied().unwrap_or(1),
    }
}

/// The view of input `name` as codes of `C` (inside its buffer, so a misaligned start stays
/// misaligned); empty when absent or of another type.
fn codes_of<'a, C: TestCode>(case: &'a Case, name: &str) -> &'a [C] {
    let Some(i) = case.input(name) else { return &[] };
    let Some(all) = C::view(&i.data) else { return &[] };
    let end = all.len().saturating_sub(i.tail);
    &all[i.offset.min(end)..end]
}

fn float(case: &Case, name: &str) -> f32 {
    match case.attr(name) {
        Some(Attr::Float(v)) => *v as f32,
        _ => f32::NAN,
    }
}

fn text<'a>(case: &'a Case, name: &str) -> &'a str {
    match case.attr(name) {
        Some(Attr::Text(v)) => v,
        _ => "",
    }
}

/// `n` codes: every code of the type first (so each pair, table entry and clamp edge is met),
/// then random ones, the type's ends and its middle.
fn codes<C: Code>(rng: &mut Rng, n: usize) -> Vec<C> {
    let span = (C::MAX - C::MIN + 1) as u64;
    (0..n)
        .map(|i| {
            let q = if (i as u64) < span && rng.chance(0.5) {
                C::MIN + i as i32
            } else {
                match rng.below(8) {
                    0 => C::MIN,
                    1 => C::MAX,
                    _ => C::MIN + rng.below(span) as i32,
                }
            };
            C::from_code(q)
        })
        .collect()
}

/// One drawn set of scales and zero points for QAdd / QSub / QMul on codes of `C`: `family` walks
/// equal scales, ratios near 1, exact powers of two, one ulp apart, extreme scales (where the
/// float kernels hand over to the portable loop) and log-uniform ones; zero points at both ends
/// of the range, its middle, or random. Shared with `tests/binary_kernels.rs`.
pub fn draw_binary_params<C: Code>(rng: &mut Rng, family: usize) -> (f32, f32, f32, i32, i32, i32) {
    let zp = |rng: &mut Rng| match rng.below(4) {
        0 => C::MIN,
        1 => C::MAX,
        2 => (C::MIN + C::MAX + 1) / 2,
        _ => rng.range_i64(C::MIN as i64, C::MAX as i64) as i32,
    };
    let log_uniform = |rng: &mut Rng, lo: f64, hi: f64| 2f64.powf(lo + rng.unit() * (hi - lo)) as f32;
    let sa = log_uniform(rng, -12.0, 2.0);
    let (sa, sb) = match family % 8 {
        0 => (sa, sa),
        1 => (sa, sa * (1.0 + (rng.unit() as f32 - 0.5) * 1e-3)),
        2 => (sa, sa * 2f32.powi(rng.range_i64(1, 6) as i32)),
        3 => (sa, sa * 2f32.powi(-(rng.range_i64(1, 6) as i32))),
        4 => (sa, f32::from_bits(sa.to_bits() + 1)),
        5 => (log_uniform(rng, -126.0, -100.0), log_uniform(rng, 100.0, 125.0)),
        _ => (sa, log_uniform(rng, -12.0, 2.0)),
    };
    let sy = match family % 5 {
        0 => sa.max(sb) * 2.0 + sa.min(sb),
        1 => sa * sb * (1.0 + rng.unit() as f32),
        2 => log_uniform(rng, -126.0, 120.0),
        _ => log_uniform(rng, -12.0, 2.0),
    };
    (sa, sb, sy, zp(rng), zp(rng), zp(rng))
}

const ARITH_RULES: [(ArithRule, &str); 3] =
    [(ArithRule::Tflite, "tflite"), (ArithRule::Torch, "torch"), (ArithRule::OnnxRuntime, "onnxruntime")];
const ACTIVATIONS: [(Activation, &str); 4] = [
    (Activation::None, "none"),
    (Activation::Relu, "relu"),
    (Activation::Relu6, "relu6"),
    (Activation::ReluN1To1, "relu_n1_to_1"),
];

/// A shape of about `n` elements for `a` and a shape `b` broadcasts from: the same shape, a
/// scalar, a trailing block, or a middle dimension of ones (gathered).
fn broadcast_shapes(rng: &mut Rng, n: usize) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        return (vec![0], if rng.chance(0.5) { vec![1] } else { vec![0] });
    }
    let c = [1usize, 3, 7, 16, 33][rng.below(5) as usize].min(n);
    let o = n / c;
    let (a, b) = match rng.below(5) {
        0 => (vec![n], vec![n]),
        1 => (vec![o, c], vec![o, c]),
        2 => (vec![o, c], vec![1]),
        3 => (vec![o, c], vec![c]),
        _ => (vec![o, c], vec![o, 1]),
    };
    (a, b)
}

/// QAdd, QSub or QMul on `i8` or `u8` codes under one framework's arithmetic (drawn from the
/// seed with the fused activation and the scales), `b` broadcast to `a`.
pub struct Binary<C> {
    pub op: BinaryOp,
    pub codes: PhantomData<C>,
}

impl<C: TestCode> OpDescriptor for Binary<C> {
    fn name(&self) -> &'static str {
        match (self.op, C::QTYPE.is_signed()) {
            (BinaryOp::Add, true) => "qadd_i8",
            (BinaryOp::Add, false) => "qadd_u8",
            (BinaryOp::Sub, true) => "qsub_i8",
            (BinaryOp::Sub, false) => "qsub_u8",
            (BinaryOp::Mul, true) => "qmul_i8",
            (BinaryOp::Mul, false) => "qmul_u8",
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let (a_shape, b_shape) = broadcast_shapes(&mut rng, spec.len);
        let (na, nb) = (a_shape.iter().product::<usize>(), b_shape.iter().product::<usize>());
        let mut case = frame(spec, &a_shape);
        let family = rng.below(40) as usize;
        let (sa, sb, sy, za, zb, zy) = draw_binary_params::<C>(&mut rng, family);
        let (rule_kind, rule) = ARITH_RULES[rng.below(3) as usize];
        // Mostly an activation the framework fuses (ONNX Runtime: none; PyTorch: none or ReLU;
        // TFLite: all four), sometimes any, whose refusal must then be the same everywhere.
        let fused = match rule_kind {
            ArithRule::OnnxRuntime => 1,
            ArithRule::Torch => 2,
            ArithRule::Tflite => 4,
        };
        let choices = if rng.chance(0.05) { 4 } else { fused };
        let (_, act) = ACTIVATIONS[rng.below(choices) as usize];
        for (name, v) in [("a_scale", sa), ("b_scale", sb), ("y_scale", sy)] {
            case.set_attr(name, Attr::Float(v as f64));
        }
        for (name, v) in [("a_zero_point", za), ("b_zero_point", zb), ("y_zero_point", zy)] {
            case.set_attr(name, Attr::Int(v as i64));
        }
        case.set_attr("rule", Attr::Text(rule.into()));
        case.set_attr("activation", Attr::Text(act.into()));
        let a = codes::<C>(&mut rng, na);
        let b = codes::<C>(&mut rng, nb);
        case.set_input(codes_input("a", &a_shape, spec.offset, a));
        case.set_input(codes_input("b", &b_shape, spec.offset, b));
        case.out_len = na;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let rule = ARITH_RULES.iter().find(|(_, n)| *n == text(c, "rule")).map_or(ArithRule::Torch, |r| r.0);
        let activation =
            ACTIVATIONS.iter().find(|(_, n)| *n == text(c, "activation")).map_or(Activation::None, |a| a.0);
        let affine = |s: &str, z: &str| Affine::new(float(c, s), c.int(z) as i32);
        let params = BinaryParams {
            a: affine("a_scale", "a_zero_point"),
            b: affine("b_scale", "b_zero_point"),
            y: affine("y_scale", "y_zero_point"),
            activation,
        };
        let (a, b) = (codes_of::<C>(c, "a"), codes_of::<C>(c, "b"));
        let a_shape = c.input("a").map(|i| i.shape.clone()).unwrap_or_default();
        let b_shape = c.input("b").map(|i| i.shape.clone()).unwrap_or_default();
        let mut out = Guarded::new(filler(path, C::default(), C::FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => binary(self.op, rule, &params, a, &a_shape, b, &b_shape, out.slice())?,
            Path::Optimized(e) => e.binary(self.op, rule, &params, a, &a_shape, b, &b_shape, out.slice())?,
        }
        Ok(vec![Tensor::new("y", C::data(&out.finish(path.name())))])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        let a = codes_of::<C>(case, "a");
        format!("a[{index}] = {:?} (b broadcast to a's shape)", a.get(index))
    }
}

/// The six ways to requantize (as `RequantizeKind::ALL`), by name.
const REQUANTIZERS: [(RequantizeKind, &str); 6] = [
    (RequantizeKind::FloatTorch, "float_torch"),
    (RequantizeKind::FloatOnnxRuntime, "float_onnxruntime"),
    (RequantizeKind::DoubleRounding, "double_rounding"),
    (RequantizeKind::SingleRounding, "single_rounding"),
    (RequantizeKind::Rndnu, "rndnu"),
    (RequantizeKind::PowerOfTwo, "power_of_two"),
];

/// int32 accumulators to `i8` / `u8` codes under each requantizer, with multipliers from 2^-40 to
/// 2^8 (powers of two, ulps below them, log-uniform) and accumulators at `i32`'s ends, at exact
/// ties of the power-of-two multipliers, and random.
pub struct Requantize<C>(pub PhantomData<C>);

impl<C: TestCode> OpDescriptor for Requantize<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "requantize_i8"
        } else {
            "requantize_u8"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let n = spec.len;
        let mut case = frame(spec, &[n]);
        let (_, kind) = REQUANTIZERS[rng.below(6) as usize];
        let e = rng.range_i64(-40, 8) as i32;
        let real = match rng.below(4) {
            0 => 2f64.powi(e),
            1 => f64::from_bits(2f64.powi(e).to_bits() - 1),
            _ => 2f64.powf(e as f64 + rng.unit()),
        };
        let (qmin, qmax) = (C::MIN, C::MAX);
        let (qmin, qmax) =
            if rng.chance(0.3) { (qmin + rng.below(20) as i32, qmax - rng.below(20) as i32) } else { (qmin, qmax) };
        let zp = rng.range_i64(qmin as i64, qmax as i64);
        case.set_attr("requantizer", Attr::Text(kind.into()));
        case.set_attr("multiplier", Attr::Float(real));
        case.set_attr("zero_point", Attr::Int(zp));
        case.set_attr("qmin", Attr::Int(qmin as i64));
        case.set_attr("qmax", Attr::Int(qmax as i64));
        let tie = 2f64.powi(-e.min(30)).round().max(1.0) as i64;
        let acc: Vec<i32> = (0..n)
            .map(|_| match rng.below(8) {
                0 => rng.pick(&[i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1, 0, -1, 1]),
                1 | 2 => {
                    ((rng.range_i64(-300, 300) * tie + tie / 2 * rng.pick(&[1i64, -1]))
                        .clamp(i32::MIN as i64, i32::MAX as i64)) as i32
                }
                3 => rng.range_i64(-1000, 1000) as i32,
                _ => rng.next_u64() as i32,
            })
            .collect();
        case.set_input(input("acc", &[n], spec.offset, 0i32, acc, Data::I32));
        case.out_len = n;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let kind =
            REQUANTIZERS.iter().find(|(_, n)| *n == text(c, "requantizer")).map_or(RequantizeKind::Rndnu, |k| k.0);
        let real = match c.attr("multiplier") {
            Some(Attr::Float(v)) => *v,
            _ => f64::NAN,
        };
        let r = Requantizer::new(kind, real)?;
        let range = CodeRange::new(c.int("qmin") as i32, c.int("qmax") as i32)?;
        let zp = c.int("zero_point") as i32;
        let acc = c.input("acc").map_or(&[][..], Input::i32);
        let mut out = Guarded::new(filler(path, C::default(), C::FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => {
                let mut wide = vec![0i32; acc.len()];
                ref_requantize(acc, &r, zp, range, &mut wide)?;
                if wide.len() != out.slice().len() {
                    return Err(quantproof_reference::error::QuantError::LengthMismatch {
                        what: "output",
                        expected: acc.len(),
                        got: out.slice().len(),
                    });
                }
                for (o, v) in out.slice().iter_mut().zip(wide) {
                    *o = C::from_code(v);
                }
            }
            Path::Optimized(e) => e.requantize(acc, &r, zp, range, out.slice())?,
        }
        Ok(vec![Tensor::new("y", C::data(&out.finish(path.name())))])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        let acc = case.input("acc").map_or(&[][..], Input::i32);
        format!("acc[{index}] = {:?}", acc.get(index))
    }
}

/// The 256-entry table lookup on `i8` / `u8` codes with one unary op's table, built by the
/// reference under a framework's rules drawn from the seed (with drawn input and output scales and
/// zero points), or a random table in a few cases (and where the framework lacks the op); applied
/// to every code and random ones.
pub struct Lut<C> {
    pub name: &'static str,
    pub op: UnaryOp,
    pub codes: PhantomData<C>,
}

impl<C: TestCode> OpDescriptor for Lut<C> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let n = spec.len;
        let mut case = frame(spec, &[n]);
        let mut t: Vec<C> = Vec::new();
        if rng.chance(0.8) {
            let p = Profile::FRAMEWORKS[rng.below(Profile::FRAMEWORKS.len() as u64) as usize];
            let z = |rng: &mut Rng| rng.range_i64(C::MIN as i64, C::MAX as i64) as i32;
            let (xq, yq) = (
                Affine::new(2f32.powf(-7.0 + 4.0 * rng.unit() as f32), z(&mut rng)),
                Affine::new(2f32.powf(-8.0 + 3.0 * rng.unit() as f32), z(&mut rng)),
            );
            if let Ok(v) = table::<C>(self.op, p.arith, xq, yq) {
                case.set_attr("table", Attr::Text(format!("{:?} under {}", self.op, p.name)));
                t = v;
            }
        }
        if t.is_empty() {
            case.set_attr("table", Attr::Text("random".into()));
            t = (0..256).map(|_| C::from_code(C::MIN + rng.below(256) as i32)).collect();
        }
        case.set_input(codes_input("table", &[256], 0, t));
        let x = codes::<C>(&mut rng, n);
        case.set_input(codes_input("x", &[n], spec.offset, x));
        case.out_len = n;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let (t, x) = (codes_of::<C>(c, "table"), codes_of::<C>(c, "x"));
        let mut out = Guarded::new(filler(path, C::default(), C::FILLER), c.offset, c.out_len);
        match path {
            Path::Reference => apply_table(t, x, out.slice())?,
            Path::Optimized(e) => e.lut(t, x, out.slice())?,
        }
        Ok(vec![Tensor::new("y", C::data(&out.finish(path.name())))])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        format!("x[{index}] = {:?}, table {}", codes_of::<C>(case, "x").get(index), text(case, "table"))
    }
}

/// The packed `u8 x s8` GEMM with int32 output (ONNX's MatMulInteger): `A` (`M x K`, rows
/// `lda >= K` apart, misaligned by the spec's offset) times `B` (`K x N` or `N x K`, packed once),
/// zero points per tensor or per column at their extremes. Shapes come from the micro-kernels'
/// tiles: `M` walks `1 ..= 33` (every row count of every tile) and past the blocked kernels' row
/// block, `K` the multiples of `KR` and their neighbours and one past the cache block, `N` one
/// panel group and its tails; an empty side at length 0. Each ISA level runs its best
/// micro-kernel ([`GemmKernel::best_for`]) at the engine's thread count.
pub struct Qgemm;

impl OpDescriptor for Qgemm {
    fn name(&self) -> &'static str {
        "qgemm_u8s8"
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let len = spec.len;
        let (m, n, k) = if len == 0 {
            match rng.below(3) {
                0 => (0, 5, 7),
                1 => (3, 0, 7),
                _ => (3, 5, 0),
            }
        } else {
            let ks = [1, KR - 1, KR, KR + 1, 2 * KR + 1, 8 * KR - 1, 16 * KR, 16 * KR + 3, 97, 257, BLOCK_K + 1];
            let k = ks[rng.below(ks.len() as u64) as usize];
            // Every row count of the largest tile (AMX's 32) and one more; past the blocked
            // kernels' row block for the long sweep lengths.
            let m = if len > 1000 { BLOCK_M + 1 + len % 7 } else { 1 + len % (2 * MR.max(16) + 1) };
            let n_edges = [1, NR - 1, NR, NR + 1, 4 * NR - 1, 4 * NR + 1, 64, 65, 33];
            let n = if len > 1000 {
                (len / (m * k)).clamp(1, 300)
            } else {
                n_edges[rng.below(n_edges.len() as u64) as usize]
            };
            (m, n, k)
        };
        let lda = k + if rng.chance(0.5) { rng.below(9) as usize } else { 0 };
        let mut case = frame(spec, &[m, n]);
        let r = rng.range_i64(0, 255);
        let za = rng.pick(&[0i64, 128, 255, r]);
        let layout = if rng.chance(0.5) { "KxN" } else { "NxK" };
        case.set_attr("a_zero_point", Attr::Int(za));
        case.set_attr("b_layout", Attr::Text(layout.into()));
        let a: Vec<u8> = (0..m.saturating_sub(1) * lda + if m > 0 { k } else { 0 })
            .map(|_| match rng.below(4) {
                0 => 255,
                1 => 0,
                _ => rng.next_u64() as u8,
            })
            .collect();
        let mut a_in = input("a", &[m, k], spec.offset, 0xA5u8, a, Data::U8);
        a_in.row_stride = lda;
        case.set_input(a_in);
        let b: Vec<i8> = (0..k * n)
            .map(|_| match rng.below(4) {
                0 => 127,
                1 => -128,
                _ => rng.next_u64() as i8,
            })
            .collect();
        let b_shape = if layout == "KxN" { [k, n] } else { [n, k] };
        case.set_input(input("b", &b_shape, 0, 0i8, b, Data::I8));
        if rng.chance(0.5) {
            let zb: Vec<i32> = (0..n)
                .map(|_| {
                    let r = rng.range_i64(-128, 127) as i32;
                    rng.pick(&[-128i32, 127, 0, r])
                })
                .collect();
            case.set_input(input("b_zero_point", &[n], 0, 0i32, zb, Data::I32));
        } else {
            let r = rng.range_i64(-128, 127);
            case.set_attr("b_zero_point", Attr::Int(rng.pick(&[0i64, -128, 127, r])));
        }
        case.out_len = m * n;
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let Some(a_in) = c.input("a") else {
            return Err(quantproof_reference::error::QuantError::InvalidArgument { what: "qgemm case", detail: "no input a".into() });
        };
        let (m, k, lda) = (a_in.shape[0], a_in.shape[1], a_in.row_stride);
        let n = c.shape[1];
        let layout = if text(c, "b_layout") == "KxN" { WeightLayout::KxN } else { WeightLayout::NxK };
        let b = c.input("b").map_or(&[][..], Input::i8);
        let zb_cols = c.input("b_zero_point").map(Input::i32);
        let zb = match zb_cols {
            Some(z) => ZeroPoints::PerColumn(z),
            None => ZeroPoints::PerTensor(c.int("b_zero_point") as i32),
        };
        let za = c.int("a_zero_point") as i32;
        let a = a_in.u8();
        let mut out = Guarded::new(filler(path, 0i32, 0x5EED_5EED), c.offset, c.out_len);
        match path {
            Path::Reference => {
                let dense: Vec<u8> = (0..m).flat_map(|i| a[i * lda..i * lda + k].iter().copied()).collect();
                accumulate(&dense, za, b, zb, layout, GemmDims::new(m, n, k), out.slice())?;
            }
            Path::Optimized(e) => {
                let w = PackedWeights::new(b, zb, layout, k, n)?;
                gemm_u8s8_threaded(a, lda, m, za, &w, GemmKernel::best_for(e.isa()), e.threads(), out.slice())?;
            }
        }
        Ok(vec![Tensor::i32("acc", &out.finish(path.name()))])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        let n = case.shape.get(1).copied().unwrap_or(1).max(1);
        format!("row {}, column {} of the {:?} product", index / n, index % n, case.shape)
    }
}

/// 2-D max or average pooling on `i8` / `u8` codes, NCHW and NHWC: channels around the byte
/// vector widths (8, 16, 32, 64) and their tails, windows 1..=4 with strides 1..=3 and every
/// padding kind (windows reaching into the padding, or lying in it), every fused activation.
/// Max pooling: in a few cases an output quantization that differs from the input's (the
/// refusal must be the same). Average pooling: a framework's rule drawn per case, with
/// `count_include_pad` either way and a drawn output quantization (TFLite's refusal of a
/// different one included).
pub struct Pool<C> {
    pub avg: bool,
    pub codes: PhantomData<C>,
}

const POOL_LAYOUTS: [(PoolLayout, &str); 2] = [(PoolLayout::Nchw, "NCHW"), (PoolLayout::Nhwc, "NHWC")];

impl<C: TestCode> OpDescriptor for Pool<C> {
    fn name(&self) -> &'static str {
        match (self.avg, C::QTYPE.is_signed()) {
            (false, true) => "max_pool2d_i8",
            (false, false) => "max_pool2d_u8",
            (true, true) => "avg_pool2d_i8",
            (true, false) => "avg_pool2d_u8",
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let channels = [1usize, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100];
        let c = channels[spec.len % channels.len()];
        let (n, h, w) = if spec.len == 0 {
            (1, 0, 3)
        } else {
            (1 + rng.below(2) as usize, 1 + rng.below(9) as usize, 1 + rng.below(9) as usize)
        };
        let (lay, lay_name) = POOL_LAYOUTS[rng.below(2) as usize];
        let shape = lay.shape(n, c, h, w);
        let mut case = frame(spec, &shape);
        let kernel = [1 + rng.below(4) as i64, 1 + rng.below(4) as i64];
        let stride = [1 + rng.below(3) as i64, 1 + rng.below(3) as i64];
        let padding = rng.below(3) as i64;
        let (pad_h, pad_w) = (rng.below(kernel[0] as u64 / 2 + 1) as i64, rng.below(kernel[1] as u64 / 2 + 1) as i64);
        for (name, v) in [
            ("kernel_h", kernel[0]),
            ("kernel_w", kernel[1]),
            ("stride_h", stride[0]),
            ("stride_w", stride[1]),
            ("padding", padding),
            ("pad_h", pad_h),
            ("pad_w", pad_w),
            ("count_include_pad", rng.below(2) as i64),
        ] {
            case.set_attr(name, Attr::Int(v));
        }
        case.set_attr("layout", Attr::Text(lay_name.into()));
        let (_, act) = ACTIVATIONS[rng.below(4) as usize];
        case.set_attr("activation", Attr::Text(act.into()));
        let scale = 2f64.powf(-8.0 + 6.0 * rng.unit());
        let zp = rng.range_i64(C::MIN as i64, C::MAX as i64);
        case.set_attr("x_scale", Attr::Float(scale));
        case.set_attr("x_zero_point", Attr::Int(zp));
        let (y_scale, y_zp) = if self.avg {
            let (_, rule) = ARITH_RULES[rng.below(3) as usize];
            case.set_attr("rule", Attr::Text(rule.into()));
            // TFLite needs the input's quantization (a few cases test its refusal).
            if rule == "tflite" && !rng.chance(0.05) {
                (scale, zp)
            } else {
                (scale * 2f64.powf(2.0 * rng.unit() - 1.0), rng.range_i64(C::MIN as i64, C::MAX as i64))
            }
        } else if rng.chance(0.05) {
            (scale, zp.saturating_add(1).min(C::MAX as i64))
        } else {
            (scale, zp)
        };
        case.set_attr("y_scale", Attr::Float(y_scale));
        case.set_attr("y_zero_point", Attr::Int(y_zp));
        let len = n * c * h * w;
        let x = codes::<C>(&mut rng, len);
        case.set_input(codes_input("x", &shape, spec.offset, x));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let x = codes_of::<C>(c, "x");
        let shape: [usize; 4] = c.input("x").and_then(|i| i.shape.clone().try_into().ok()).unwrap_or([0; 4]);
        let layout = POOL_LAYOUTS.iter().find(|(_, n)| *n == text(c, "layout")).map_or(PoolLayout::Nchw, |l| l.0);
        let activation =
            ACTIVATIONS.iter().find(|(_, n)| *n == text(c, "activation")).map_or(Activation::None, |a| a.0);
        let u = |name: &str| c.int(name) as usize;
        let padding = match c.int("padding") {
            0 => Padding::Explicit([u("pad_h"), u("pad_w")]),
            1 => Padding::Same,
            _ => Padding::Valid,
        };
        let p = Pool2d {
            kernel: [u("kernel_h"), u("kernel_w")],
            stride: [u("stride_h"), u("stride_w")],
            padding,
            count_include_pad: c.int("count_include_pad") != 0,
            activation,
        };
        let xq = Affine::new(float(c, "x_scale"), c.int("x_zero_point") as i32);
        let yq = Affine::new(float(c, "y_scale"), c.int("y_zero_point") as i32);
        let rule = ARITH_RULES.iter().find(|(_, n)| *n == text(c, "rule")).map_or(ArithRule::Torch, |r| r.0);
        let (y, out_shape) = match (path, self.avg) {
            (Path::Reference, false) => ref_max_pool2d(x, shape, layout, &p, xq, yq)?,
            (Path::Optimized(e), false) => e.max_pool2d(x, shape, layout, &p, xq, yq)?,
            (Path::Reference, true) => ref_avg_pool2d(rule, x, shape, layout, &p, xq, yq)?,
            (Path::Optimized(e), true) => e.avg_pool2d(rule, x, shape, layout, &p, xq, yq)?,
        };
        let dims: Vec<i32> = out_shape.iter().map(|&d| d as i32).collect();
        Ok(vec![Tensor::new("y", C::data(&y)), Tensor::i32("shape", &dims)])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        let kind = if self.avg { "average" } else { "max" };
        format!("output element {index} of a {} {kind} pooling of shape {:?}", text(case, "layout"), case.shape)
    }
}

/// TFLite's MEAN on `i8` / `u8`: ranks 1 to 4 (and a few scalars, over no axis), one to three drawn axes (negative ones and
/// repeats too), `keep_dims` either way, output quantization drawn (multipliers above and below
/// 1); in a few cases an axis out of range, or a reduction of a million codes of one sign whose
/// centred sum leaves TFLite's `int32` (refused alike).
pub struct Mean<C>(pub PhantomData<C>);

impl<C: TestCode> OpDescriptor for Mean<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "mean_i8"
        } else {
            "mean_u8"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let rank = if rng.chance(0.05) { 0 } else { 1 + rng.below(4) as usize };
        let side = ((spec.len.max(1) as f64).powf(1.0 / rank.max(1) as f64).ceil() as u64).max(1);
        let mut shape: Vec<usize> =
            (0..rank).map(|_| if spec.len == 0 { rng.below(2) as usize } else { 1 + rng.below(side) as usize }).collect();
        let scale = 2f64.powf(-8.0 + 6.0 * rng.unit());
        let mut zp = rng.range_i64(C::MIN as i64, C::MAX as i64);
        let overflow = rank >= 1 && rng.chance(0.02);
        if overflow {
            shape = vec![1 << 24];
            zp = C::MIN as i64;
        }
        let mut case = frame(spec, &shape);
        // A scalar has no axis to reduce (TFLite's MEAN of a scalar over no axes is the scalar).
        let n_axes = if rank == 0 { 0 } else { 1 + rng.below(3) as usize };
        let axes: Vec<i32> = (0..n_axes)
            .map(|_| {
                let r = rank.max(1) as i64;
                let a = rng.below(r as u64) as i64 - if rng.chance(0.3) { r } else { 0 };
                (if rng.chance(0.03) { a + 2 * r } else { a }) as i32
            })
            .collect();
        case.set_input(Input::dense("axes", &[axes.len()], Data::I32(axes)));
        case.set_attr("keep_dims", Attr::Int(rng.below(2) as i64));
        case.set_attr("x_scale", Attr::Float(scale));
        case.set_attr("x_zero_point", Attr::Int(zp));
        case.set_attr("y_scale", Attr::Float(scale * 2f64.powf(2.0 * rng.unit() - 1.0)));
        case.set_attr("y_zero_point", Attr::Int(rng.range_i64(C::MIN as i64, C::MAX as i64)));
        let len: usize = shape.iter().product();
        let x = if overflow { vec![C::from_code(C::MAX); len] } else { codes::<C>(&mut rng, len) };
        case.set_input(codes_input("x", &shape, spec.offset, x));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let x = codes_of::<C>(c, "x");
        let shape = c.input("x").map(|i| i.shape.clone()).unwrap_or_default();
        let axes: Vec<i64> = match c.input("axes").map(|i| &i.data) {
            Some(Data::I32(v)) => v.iter().map(|&a| a as i64).collect(),
            _ => Vec::new(),
        };
        let xq = Affine::new(float(c, "x_scale"), c.int("x_zero_point") as i32);
        let yq = Affine::new(float(c, "y_scale"), c.int("y_zero_point") as i32);
        let keep = c.int("keep_dims") != 0;
        let (out, s) = match path {
            Path::Reference => quantproof_reference::pool::mean(ArithRule::Tflite, x, &shape, &axes, keep, xq, yq)?,
            Path::Optimized(e) => e.mean(ArithRule::Tflite, x, &shape, &axes, keep, xq, yq)?,
        };
        let dims: Vec<i32> = s.iter().map(|&d| d as i32).collect();
        Ok(vec![Tensor::new("y", C::data(&out)), Tensor::i32("shape", &dims)])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        format!("output element {index} of a mean of shape {:?}", case.shape)
    }
}

/// TFLite's MEAN on `i8` and `u8`.
pub fn mean() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Mean::<i8>(PhantomData)), Box::new(Mean::<u8>(PhantomData))]
}

/// Padding on `i8` / `u8`: ranks 0 to 4 (empty dimensions included), paddings of 0 to 3 on
/// each side; in a few cases output qparams other than the input's, or one padding too few
/// (refused alike).
pub struct Pad<C>(pub PhantomData<C>);

impl<C: TestCode> OpDescriptor for Pad<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "pad_i8"
        } else {
            "pad_u8"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let rank = rng.below(5) as usize;
        let side = ((spec.len.max(1) as f64).powf(1.0 / rank.max(1) as f64).ceil() as u64).max(1);
        let shape: Vec<usize> =
            (0..rank).map(|_| if spec.len == 0 { rng.below(2) as usize } else { 1 + rng.below(side) as usize }).collect();
        let mut case = frame(spec, &shape);
        let n_pads = if rng.chance(0.04) { rank.saturating_sub(1) } else { rank };
        let pads: Vec<i32> = (0..2 * n_pads).map(|_| rng.below(4) as i32).collect();
        case.set_input(Input::dense("paddings", &[n_pads, 2], Data::I32(pads)));
        let scale = 2f64.powf(-8.0 + 6.0 * rng.unit());
        let zp = rng.range_i64(C::MIN as i64, C::MAX as i64);
        case.set_attr("x_scale", Attr::Float(scale));
        case.set_attr("x_zero_point", Attr::Int(zp));
        case.set_attr("y_zero_point", Attr::Int(if rng.chance(0.04) { zp ^ 1 } else { zp }));
        let len: usize = shape.iter().product();
        let x = codes::<C>(&mut rng, len);
        case.set_input(codes_input("x", &shape, spec.offset, x));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let x = codes_of::<C>(c, "x");
        let shape = c.input("x").map(|i| i.shape.clone()).unwrap_or_default();
        let pads: Vec<[usize; 2]> = match c.input("paddings").map(|i| &i.data) {
            Some(Data::I32(v)) => v.chunks_exact(2).map(|p| [p[0].max(0) as usize, p[1].max(0) as usize]).collect(),
            _ => Vec::new(),
        };
        let xq = Affine::new(float(c, "x_scale"), c.int("x_zero_point") as i32);
        let yq = Affine::new(float(c, "x_scale"), c.int("y_zero_point") as i32);
        let (out, s) = match path {
            Path::Reference => quantproof_reference::passive::pad(x, &shape, &pads, xq, yq)?,
            Path::Optimized(e) => e.pad(x, &shape, &pads, xq, yq)?,
        };
        let dims: Vec<i32> = s.iter().map(|&d| d as i32).collect();
        Ok(vec![Tensor::new("y", C::data(&out)), Tensor::i32("shape", &dims)])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        format!("output element {index} of a padding of shape {:?}", case.shape)
    }
}

/// Padding on `i8` and `u8`.
pub fn pad() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Pad::<i8>(PhantomData)), Box::new(Pad::<u8>(PhantomData))]
}

/// TFLite's nearest or bilinear resize on `i8` / `u8` NHWC codes: input sides 1 to 9 and output
/// sides 1 to 19 (down- and upscaling), 1 to 70 channels (past every vector width), every
/// combination of `align_corners` and `half_pixel_centers`; in a few cases output qparams other
/// than the input's, a zero output side, or (bilinear) a 1000-row input resized to 2^20 rows,
/// whose last source row lies past the input (all refused alike).
pub struct Resize<C> {
    pub bilinear: bool,
    pub codes: PhantomData<C>,
}

impl<C: TestCode> OpDescriptor for Resize<C> {
    fn name(&self) -> &'static str {
        match (self.bilinear, C::QTYPE.is_signed()) {
            (false, true) => "resize_nearest_i8",
            (false, false) => "resize_nearest_u8",
            (true, true) => "resize_bilinear_i8",
            (true, false) => "resize_bilinear_u8",
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let channels = [1usize, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70];
        let c = if spec.len == 0 { 0 } else { channels[spec.len % channels.len()] };
        let (n, h, w) = (1 + rng.below(2) as usize, 1 + rng.below(9) as usize, 1 + rng.below(9) as usize);
        let mut size = [1 + rng.below(19) as i64, 1 + rng.below(19) as i64];
        let mut shape = vec![n, h, w, c];
        if rng.chance(0.03) {
            size[rng.below(2) as usize] = 0;
        }
        if self.bilinear && rng.chance(0.02) {
            shape = vec![1, 1000, 1, 1];
            size = [1 << 20, 1];
        }
        let mut case = frame(spec, &shape);
        case.set_attr("size_h", Attr::Int(size[0]));
        case.set_attr("size_w", Attr::Int(size[1]));
        case.set_attr("align_corners", Attr::Int(rng.below(2) as i64));
        case.set_attr("half_pixel_centers", Attr::Int(rng.below(2) as i64));
        let scale = 2f64.powf(-8.0 + 6.0 * rng.unit());
        let zp = rng.range_i64(C::MIN as i64, C::MAX as i64);
        case.set_attr("x_scale", Attr::Float(scale));
        case.set_attr("x_zero_point", Attr::Int(zp));
        case.set_attr("y_zero_point", Attr::Int(if rng.chance(0.03) { zp ^ 1 } else { zp }));
        let len: usize = shape.iter().product();
        let x = codes::<C>(&mut rng, len);
        case.set_input(codes_input("x", &shape, spec.offset, x));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        use quantproof_reference::passive::{ResizeMethod, ResizeMode};
        let x = codes_of::<C>(c, "x");
        let shape: [usize; 4] = c.input("x").and_then(|i| i.shape.clone().try_into().ok()).unwrap_or([0; 4]);
        let size = [c.int("size_h").max(0) as usize, c.int("size_w").max(0) as usize];
        let mode = ResizeMode { align_corners: c.int("align_corners") != 0, half_pixel_centers: c.int("half_pixel_centers") != 0 };
        let method = if self.bilinear { ResizeMethod::Bilinear } else { ResizeMethod::Nearest };
        let xq = Affine::new(float(c, "x_scale"), c.int("x_zero_point") as i32);
        let yq = Affine::new(float(c, "x_scale"), c.int("y_zero_point") as i32);
        let (out, s) = match path {
            Path::Reference => quantproof_reference::passive::resize(method, x, shape, size, mode, xq, yq)?,
            Path::Optimized(e) => e.resize(method, x, shape, size, mode, xq, yq)?,
        };
        let dims: Vec<i32> = s.iter().map(|&d| d as i32).collect();
        Ok(vec![Tensor::new("y", C::data(&out)), Tensor::i32("shape", &dims)])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        format!(
            "output element {index} of a resize of shape {:?} to {}x{} (align_corners {}, half_pixel_centers {})",
            case.shape,
            case.int("size_h"),
            case.int("size_w"),
            case.int("align_corners"),
            case.int("half_pixel_centers")
        )
    }
}

/// Nearest-neighbour resize on `i8` and `u8`.
pub fn resize_nearest() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Resize::<i8> { bilinear: false, codes: PhantomData }), Box::new(Resize::<u8> { bilinear: false, codes: PhantomData })]
}

/// Bilinear resize on `i8` and `u8`.
pub fn resize_bilinear() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Resize::<i8> { bilinear: true, codes: PhantomData }), Box::new(Resize::<u8> { bilinear: true, codes: PhantomData })]
}

const CONCAT_INPUTS: [(&str, &str, &str); 4] =
    [("x0", "x0_scale", "x0_zero_point"), ("x1", "x1_scale", "x1_zero_point"), ("x2", "x2_scale", "x2_zero_point"), ("x3", "x3_scale", "x3_zero_point")];

/// Concatenation on `i8` / `u8`: one to four inputs of rank 1 to 4 (empty dimensions
/// included), a drawn axis (negative ones too), each input's quantization the output's (a copy)
/// or its own (requantized under a drawn framework's rule: TFLite's scaling, PyTorch's and ONNX
/// Runtime's dequantize-quantize), a drawn fused activation, and in a few cases an input whose
/// shape differs off the axis (refused alike).
pub struct Concat<C>(pub PhantomData<C>);

impl<C: TestCode> OpDescriptor for Concat<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "concat_i8"
        } else {
            "concat_u8"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let n_in = 1 + rng.below(4) as usize;
        let rank = 1 + rng.below(4) as usize;
        let axis = rng.below(rank as u64) as usize;
        // The spec's length spread over the dimensions: up to about `len` codes per input.
        let side = ((spec.len.max(1) as f64).powf(1.0 / rank as f64).ceil() as u64).max(1);
        let mut base: Vec<usize> = (0..rank).map(|_| rng.below(side + 1) as usize).collect();
        if spec.len > 0 {
            base.iter_mut().for_each(|d| *d = (*d).max(1));
        }
        let mut case = frame(spec, &base);
        let y = Affine::new(2f32.powf(-8.0 + 6.0 * rng.unit() as f32), rng.range_i64(C::MIN as i64, C::MAX as i64) as i32);
        case.set_attr("y_scale", Attr::Float(y.scale as f64));
        case.set_attr("y_zero_point", Attr::Int(y.zero_point as i64));
        for &(name, sn, zn) in &CONCAT_INPUTS[..n_in] {
            let mut shape = base.clone();
            shape[axis] = rng.below(side + 1) as usize;
            if rng.chance(0.04) {
                let d = rng.below(rank as u64) as usize;
                if d != axis {
                    shape[d] += 1;
                }
            }
            let (sc, zp) = if rng.chance(0.4) {
                (y.scale as f64, y.zero_point as i64)
            } else {
                (2f64.powf(-8.0 + 6.0 * rng.unit()), rng.range_i64(C::MIN as i64, C::MAX as i64))
            };
            case.set_attr(sn, Attr::Float(sc));
            case.set_attr(zn, Attr::Int(zp));
            let len: usize = shape.iter().product();
            let x = codes::<C>(&mut rng, len);
            case.set_input(codes_input(name, &shape, spec.offset, x));
        }
        case.set_attr("inputs", Attr::Int(n_in as i64));
        case.set_attr("axis", Attr::Int(axis as i64 - if rng.chance(0.3) { rank as i64 } else { 0 }));
        let (_, rule) = ARITH_RULES[rng.below(3) as usize];
        case.set_attr("rule", Attr::Text(rule.into()));
        let (_, act) = ACTIVATIONS[rng.below(4) as usize];
        case.set_attr("activation", Attr::Text(act.into()));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let n_in = (c.int("inputs").max(0) as usize).min(CONCAT_INPUTS.len());
        let shapes: Vec<Vec<usize>> =
            CONCAT_INPUTS[..n_in].iter().map(|(n, _, _)| c.input(n).map(|i| i.shape.clone()).unwrap_or_default()).collect();
        let ins: Vec<(&[C], &[usize], Affine)> = CONCAT_INPUTS[..n_in]
            .iter()
            .zip(&shapes)
            .map(|(&(n, sn, zn), shape)| (codes_of::<C>(c, n), shape.as_slice(), Affine::new(float(c, sn), c.int(zn) as i32)))
            .collect();
        let y = Affine::new(float(c, "y_scale"), c.int("y_zero_point") as i32);
        let rule = ARITH_RULES.iter().find(|(_, n)| *n == text(c, "rule")).map_or(ArithRule::Torch, |r| r.0);
        let act = ACTIVATIONS.iter().find(|(_, n)| *n == text(c, "activation")).map_or(Activation::None, |a| a.0);
        let axis = c.int("axis");
        let (out, shape) = match path {
            Path::Reference => quantproof_reference::passive::concat(rule, &ins, axis, y, act)?,
            Path::Optimized(e) => e.concat(rule, &ins, axis, y, act)?,
        };
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        Ok(vec![Tensor::new("y", C::data(&out)), Tensor::i32("shape", &dims)])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        format!("output element {index} of a concatenation along axis {} ({} rule)", case.int("axis"), text(case, "rule"))
    }
}

/// Concatenation on `i8` and `u8`.
pub fn concat() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Concat::<i8>(PhantomData)), Box::new(Concat::<u8>(PhantomData))]
}

/// TFLite's integer softmax along the last axis on `i8` / `u8`: rows of a length drawn from
/// the spec's (0, 1, vector widths and their neighbours, past 256 and past a thread's share),
/// rows of one repeated code, rows spanning every code (differences past `diff_min`) and random
/// ones; `beta` and the input scale drawn over the range where `diff_min` moves (from every
/// difference kept to most of them dropped); in a few cases an axis other than the last or
/// output qparams other than TFLite's (`1/256`, `C::MIN`), whose refusal must be the same.
pub struct Softmax<C>(pub PhantomData<C>);

impl<C: TestCode> OpDescriptor for Softmax<C> {
    fn name(&self) -> &'static str {
        if C::QTYPE.is_signed() {
            "softmax_i8"
        } else {
            "softmax_u8"
        }
    }
    fn generate(&self, spec: &CaseSpec) -> Case {
        let mut rng = rng_for(self.name(), spec);
        let depths = [1usize, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000];
        let depth = if spec.len == 0 { 0 } else { depths[spec.len % depths.len()] };
        let rows = if spec.len == 0 { 3 } else { (spec.len / depth.max(1)).clamp(1, 64) };
        let shape = [rows, depth];
        let mut case = frame(spec, &shape);
        let mut x = Vec::with_capacity(rows * depth);
        for _ in 0..rows {
            match rng.below(4) {
                0 => {
                    let q = C::MIN + rng.below(256) as i32;
                    x.extend((0..depth).map(|_| C::from_code(q)));
                }
                1 => x.extend((0..depth).map(|i| C::from_code(C::MIN + ((i * 255) / depth.max(2).saturating_sub(1).max(1)).min(255) as i32))),
                _ => x.extend(codes::<C>(&mut rng, depth)),
            }
        }
        // beta * scale from 2^-12 to 2^4: diff_min from below -255 (every difference kept) to a
        // few codes.
        let scale = 2f64.powf(-9.0 + 9.0 * rng.unit());
        let beta = if rng.chance(0.5) { 1.0 } else { 2f64.powf(-3.0 + 4.0 * rng.unit()) };
        case.set_attr("x_scale", Attr::Float(scale));
        case.set_attr("x_zero_point", Attr::Int(rng.range_i64(C::MIN as i64, C::MAX as i64)));
        case.set_attr("beta", Attr::Float(beta));
        let (y_scale, y_zp) = if rng.chance(0.05) { (1.0 / 128.0, 0) } else { (1.0 / 256.0, C::MIN as i64) };
        case.set_attr("y_scale", Attr::Float(y_scale));
        case.set_attr("y_zero_point", Attr::Int(y_zp));
        case.set_attr("axis", Attr::Int(if rng.chance(0.05) { 0 } else { -1 }));
        case.set_input(codes_input("x", &shape, spec.offset, x));
        case
    }
    fn run(&self, path: &Path, c: &Case) -> Outcome {
        let x = codes_of::<C>(c, "x");
        let shape = c.input("x").map(|i| i.shape.clone()).unwrap_or_default();
        let xq = Affine::new(float(c, "x_scale"), c.int("x_zero_point") as i32);
        let yq = Affine::new(float(c, "y_scale"), c.int("y_zero_point") as i32);
        let (beta, axis) = (float(c, "beta"), c.int("axis"));
        let y = match path {
            Path::Reference => quantproof_reference::softmax::tflite_softmax(x, &shape, axis, beta, xq, yq)?,
            Path::Optimized(e) => {
                let mut out = Guarded::new(filler(path, C::default(), C::FILLER), c.offset, x.len());
                e.tflite_softmax(x, &shape, axis, beta, xq, yq, out.slice())?;
                out.finish(path.name())
            }
        };
        Ok(vec![Tensor::new("y", C::data(&y))])
    }
    fn explain(&self, case: &Case, _tensor: &str, index: usize) -> String {
        let depth = case.shape.last().copied().unwrap_or(1).max(1);
        format!("row {} element {} of a softmax of shape {:?}", index / depth, index % depth, case.shape)
    }
}

/// TFLite's softmax on `i8` and `u8`.
pub fn softmax() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Softmax::<i8>(PhantomData)), Box::new(Softmax::<u8>(PhantomData))]
}

/// Max pooling on `i8` and `u8`.
pub fn max_pool2d() -> Vec<Box<dyn OpDescriptor>> {
    vec![
        Box::new(Pool::<i8> { avg: false, codes: PhantomData }),
        Box::new(Pool::<u8> { avg: false, codes: PhantomData }),
    ]
}

/// Average pooling on `i8` and `u8`.
pub fn avg_pool2d() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Pool::<i8> { avg: true, codes: PhantomData }), Box::new(Pool::<u8> { avg: true, codes: PhantomData })]
}

/// QAdd on `i8` and `u8`.
pub fn qadd() -> Vec<Box<dyn OpDescriptor>> {
    vec![
        Box::new(Binary::<i8> { op: BinaryOp::Add, codes: PhantomData }),
        Box::new(Binary::<u8> { op: BinaryOp::Add, codes: PhantomData }),
    ]
}

/// QSub on `i8` and `u8`.
pub fn qsub() -> Vec<Box<dyn OpDescriptor>> {
    vec![
        Box::new(Binary::<i8> { op: BinaryOp::Sub, codes: PhantomData }),
        Box::new(Binary::<u8> { op: BinaryOp::Sub, codes: PhantomData }),
    ]
}

/// QMul on `i8` and `u8`.
pub fn qmul() -> Vec<Box<dyn OpDescriptor>> {
    vec![
        Box::new(Binary::<i8> { op: BinaryOp::Mul, codes: PhantomData }),
        Box::new(Binary::<u8> { op: BinaryOp::Mul, codes: PhantomData }),
    ]
}

/// Requantization to `i8` and `u8`.
pub fn requantize() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Requantize::<i8>(PhantomData)), Box::new(Requantize::<u8>(PhantomData))]
}

macro_rules! lut_descriptors {
    ($($f:ident: $op:expr),* $(,)?) => {$(
        #[doc = concat!("The table lookup of `", stringify!($f), "` on `i8` and `u8`.")]
        pub fn $f() -> Vec<Box<dyn OpDescriptor>> {
            vec![
                Box::new(Lut::<i8> { name: concat!(stringify!($f), "_lut_i8"), op: $op, codes: PhantomData }),
                Box::new(Lut::<u8> { name: concat!(stringify!($f), "_lut_u8"), op: $op, codes: PhantomData }),
            ]
        }
    )*};
}

lut_descriptors!(
    relu: UnaryOp::Relu,
    relu6: UnaryOp::Relu6,
    clamp: UnaryOp::Clamp { min: Some(-1.0), max: Some(2.0) },
    hardtanh: UnaryOp::Hardtanh { min: -0.5, max: 0.5 },
    sigmoid: UnaryOp::Sigmoid,
    tanh: UnaryOp::Tanh,
    hardsigmoid: UnaryOp::Hardsigmoid,
    hardswish: UnaryOp::Hardswish,
    leaky_relu: UnaryOp::LeakyRelu { negative_slope: 0.1 },
    gelu: UnaryOp::Gelu,
    exp: UnaryOp::Exp,
    silu: UnaryOp::Silu,
    elu: UnaryOp::Elu { alpha: 1.0 },
);

/// The packed GEMM.
pub fn qgemm() -> Vec<Box<dyn OpDescriptor>> {
    vec![Box::new(Qgemm)]
}
