//! Fuzz targets: the vector parser and the public ops, on arbitrary bytes.
//!
//! Each target is a plain function of a byte slice, so the same code runs three ways:
//!
//! * as a normal test (`harness/tests/fuzz.rs`): a fixed number of inputs drawn by [`Corpus`]
//!   (random bytes, and mutations of the real golden-vector lines: bit flips, cuts, splices,
//!   numbers replaced by extremes), every run of `cargo test` and CI;
//! * for long local runs: `QUANTPROOF_FUZZ_ITERS=10000000 cargo test --release -p quantproof-harness
//!   --test fuzz -- --nocapture`;
//! * under a coverage-guided fuzzer (cargo-fuzz / libFuzzer or AFL), by calling the target from
//!   its entry point (`fuzz_target!(|data: &[u8]| quantproof_harness::fuzz::ops(data))`).
//!
//! What a target asserts:
//!
//! * [`vector_line`]: parsing and replaying any line never panics, and replaying is
//!   deterministic (the same line gives the same verdict twice).
//! * [`ops`]: parameters drawn from far outside their domains (any `i32` code range and zero
//!   point, any `f32` scale including NaN, infinities, negatives and subnormals, any axis and
//!   block size, shapes that do not match the data) never panic, and every optimized path gives
//!   exactly the reference's answer: the same typed error, or the same bits.

use crate::vectors::Runner;
use arbitrary::{Arbitrary, Unstructured};
use quantproof_optimized::isa;
use quantproof_optimized::ops::Engine;
use quantproof_reference::error::QuantError;
use quantproof_reference::pack::{packed_len, Int4};
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{self as refq, QuantizeRule, ScaleOp};
use quantproof_reference::rng::Rng;
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::{Axis, CodeRange, Granularity};
use quantproof_reference::scheme::{RangeWidth, Signedness};

/// Most elements an [`ops`] input draws (keeps one execution in microseconds).
const MAX_ELEMENTS: usize = 96;

/// Parses `data` as one golden-vector line and replays it on the reference and every engine.
/// Panics (the fuzz failure) only when the runner panics or gives two verdicts for one line.
pub fn vector_line(runner: &Runner, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let a = runner.run_line("fuzz", 1, text);
    let b = runner.run_line("fuzz", 1, text);
    assert_eq!(a, b, "replaying one line twice gave two verdicts:\n{text}");
}

/// One drawn operation.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    QuantizeI8,
    QuantizeU8,
    DequantizeI8,
    DequantizeU8,
    FakeQuantize { mask: bool },
    QuantizePacked4 { signed: bool },
    DequantizePacked4 { signed: bool },
    DynamicQuantize { torch: bool },
    MinMax,
    AbsMax,
    /// TFLite's softmax over the last axis of the codes; `beta` is the first float, the input
    /// quantization the first scale and zero point, the output TFLite's (`1/256`, `C::MIN`)
    /// unless `odd_output`.
    Softmax { signed: bool, odd_output: bool },
}

/// A value drawn mostly from the interesting edges of its type.
fn edgy_f32(u: &mut Unstructured<'_>) -> arbitrary::Result<f32> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => *u.choose(&[0.0, -0.0, f32::MIN_POSITIVE, f32::from_bits(1), f32::MAX, f32::MIN, 1.0, -1.0])?,
        4..=6 => f32::from_bits(u32::arbitrary(u)?),
        _ => (i16::arbitrary(u)? as f32) / 64.0,
    })
}

fn edgy_i32(u: &mut Unstructured<'_>) -> arbitrary::Result<i32> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => *u.choose(&[i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1, 0, -1, 1])?,
        1 | 2 => i32::arbitrary(u)?,
        _ => u.int_in_range(-300..=300)?,
    })
}

fn edgy_usize(u: &mut Unstructured<'_>, small: usize) -> arbitrary::Result<usize> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => *u.choose(&[usize::MAX, usize::MAX / 2, 1 << 32, 1 << 40])?,
        1 => usize::arbitrary(u)?,
        _ => u.int_in_range(0..=small)?,
    })
}

/// An axis: mostly one of the tensor's (counted from either end), sometimes far outside.
fn edgy_axis(u: &mut Unstructured<'_>, rank: usize) -> arbitrary::Result<Axis> {
    let r = rank as i64;
    Ok(Axis::from(match u.int_in_range(0u8..=5)? {
        0 => *u.choose(&[i64::MIN, i64::MAX, i64::MIN + 1, -(1 << 40), 1 << 40])?,
        1 => i64::arbitrary(u)?,
        _ => u.int_in_range(-r - 1..=r)?,
    }))
}

/// Quantization parameters drawn from everywhere, valid or not.
fn params(u: &mut Unstructured<'_>, shape: &[usize]) -> arbitrary::Result<QuantParams> {
    let range = match u.int_in_range(0u8..=3)? {
        0 => {
            let (a, b) = (edgy_i32(u)?, edgy_i32(u)?);
            match CodeRange::new(a.min(b), a.max(b)) {
                Ok(r) => r,
                Err(_) => quantproof_reference::scheme::QType::I8.full_range(),
            }
        }
        _ => {
            let bits = u.int_in_range(2u32..=16)?;
            match quantproof_reference::scheme::QType::new(bits, Signedness::signed_if(bool::arbitrary(u)?)) {
                Ok(t) => t.range(RangeWidth::narrow_if(bool::arbitrary(u)?)),
                Err(_) => quantproof_reference::scheme::QType::I8.full_range(),
            }
        }
    };
    let granularity = match u.int_in_range(0u8..=3)? {
        0 | 1 => Granularity::PerTensor,
        2 => Granularity::PerAxis { axis: edgy_axis(u, shape.len())? },
        _ => Granularity::PerBlock { axis: edgy_axis(u, shape.len())?, block_size: edgy_usize(u, 8)? },
    };
    let natural = match granularity {
        Granularity::PerTensor => 1,
        Granularity::PerAxis { axis } => {
            axis.resolve(shape.len()).ok().and_then(|a| shape.get(a)).copied().unwrap_or(1)
        }
        Granularity::PerBlock { axis, block_size } => {
            // Huge drawn shapes overflow usize: the count is then only a guess (saturated).
            let n = quantproof_reference::quant_params::checked_numel(shape).unwrap_or(usize::MAX);
            let len = axis.resolve(shape.len()).ok().and_then(|a| shape.get(a)).copied().unwrap_or(1);
            (n / len.max(1)).saturating_mul(len / block_size.max(1))
        }
    };
    let count = if bool::arbitrary(u)? { natural } else { u.int_in_range(0..=natural.saturating_add(2))? }
        .min(4 * MAX_ELEMENTS);
    let mut scales = Vec::with_capacity(count);
    let mut zero_points = Vec::with_capacity(count);
    let good_scale = bool::arbitrary(u)?;
    let good_zero = bool::arbitrary(u)?;
    for _ in 0..count {
        scales.push(if good_scale { u.int_in_range(1u32..=4000)? as f32 / 1000.0 } else { edgy_f32(u)? });
        zero_points.push(if good_zero {
            u.int_in_range(range.qmin()..=range.qmax()).unwrap_or(range.qmin())
        } else {
            edgy_i32(u)?
        });
    }
    Ok(QuantParams { granularity, scales, zero_points, range })
}

fn rule(u: &mut Unstructured<'_>) -> arbitrary::Result<QuantizeRule> {
    let op = if bool::arbitrary(u)? { ScaleOp::Divide } else { ScaleOp::MultiplyByReciprocal };
    let rounding = match u.int_in_range(0u8..=5)? {
        5 => RoundingMode::Stochastic { seed: u64::arbitrary(u)? },
        i => RoundingMode::DETERMINISTIC[i as usize],
    };
    Ok(QuantizeRule::new(op, rounding))
}

/// What one path computed: a typed error (compared by its `Debug` form, so that an error
/// carrying a NaN value equals itself), or the output bits.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Error(String),
    Bits(Vec<u32>),
}

/// The bits of `v`, with both zeros as `+0.0`: the sign of a zero extreme is the kernel test
/// kit's business (`optimized`), not this target's.
fn zero_bits(v: f32) -> u32 {
    (v + 0.0).to_bits()
}

fn bits_f32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The input of one [`ops`] execution.
#[derive(Debug)]
struct Input {
    op: Op,
    shape: Vec<usize>,
    params: QuantParams,
    rule: QuantizeRule,
    x: Vec<f32>,
    codes: Vec<i32>,
    out_len: usize,
}

fn input(u: &mut Unstructured<'_>) -> arbitrary::Result<Input> {
    let op = Op::arbitrary(u)?;
    let n = u.int_in_range(0..=MAX_ELEMENTS)?;
    let rank = u.int_in_range(0usize..=4)?;
    let mut shape: Vec<usize> = (0..rank).map(|_| u.int_in_range(1usize..=6)).collect::<Result<_, _>>()?;
    let numel: usize = shape.iter().product();
    if numel != n && bool::arbitrary(u)? {
        // Usually make the shape describe the data; sometimes keep the mismatch (or a huge one).
        shape = vec![n];
    } else if u.ratio(1, 16)? {
        shape = vec![edgy_usize(u, 8)?, edgy_usize(u, 8)?];
    }
    let params = params(u, &shape)?;
    let rule = rule(u)?;
    let x = (0..n).map(|_| edgy_f32(u)).collect::<Result<Vec<f32>, _>>()?;
    let codes = (0..n).map(|_| edgy_i32(u)).collect::<Result<Vec<i32>, _>>()?;
    let out_len = if u.ratio(1, 12)? { u.int_in_range(0..=MAX_ELEMENTS + 1)? } else { n };
    Ok(Input { op, shape, params, rule, x, codes, out_len })
}

fn quantize_ref<C: quantproof_reference::scheme::Code>(i: &Input, out_len: usize) -> Outcome {
    let mut out = vec![C::default(); out_len];
    match refq::quantize(&i.x, &i.shape, &i.params, i.rule, &mut out) {
        Ok(()) => Outcome::Bits(out.iter().map(|c| c.to_code() as u32).collect()),
        Err(e) => Outcome::Error(format!("{e:?}")),
    }
}

fn quantize_engine<C: quantproof_optimized::ops::FastCode>(e: &Engine, i: &Input, out_len: usize) -> Outcome {
    let mut out = vec![C::default(); out_len];
    match e.quantize(&i.x, &i.shape, &i.params, i.rule, &mut out) {
        Ok(()) => Outcome::Bits(out.iter().map(|c| c.to_code() as u32).collect()),
        Err(e) => Outcome::Error(format!("{e:?}")),
    }
}

fn codes_as<C: quantproof_reference::scheme::Code>(codes: &[i32]) -> Vec<C> {
    codes.iter().map(|&q| C::from_code(q)).collect()
}

/// One path: `None` for the reference, `Some(engine)` for an optimized one.
fn compute(i: &Input, engine: Option<&Engine>) -> Outcome {
    let f = |r: quantproof_reference::error::Result<Vec<u32>>| match r {
        Ok(b) => Outcome::Bits(b),
        Err(e) => Outcome::Error(format!("{e:?}")),
    };
    match (i.op, engine) {
        (Op::QuantizeI8, None) => quantize_ref::<i8>(i, i.out_len),
        (Op::QuantizeI8, Some(e)) => quantize_engine::<i8>(e, i, i.out_len),
        (Op::QuantizeU8, None) => quantize_ref::<u8>(i, i.out_len),
        (Op::QuantizeU8, Some(e)) => quantize_engine::<u8>(e, i, i.out_len),
        (Op::DequantizeI8 | Op::DequantizeU8, _) => {
            let mut out = vec![0f32; i.out_len];
            let r = if matches!(i.op, Op::DequantizeI8) {
                let q: Vec<i8> = codes_as(&i.codes);
                match engine {
                    None => refq::dequantize(&q, &i.shape, &i.params, &mut out),
                    Some(e) => e.dequantize(&q, &i.shape, &i.params, &mut out),
                }
            } else {
                let q: Vec<u8> = codes_as(&i.codes);
                match engine {
                    None => refq::dequantize(&q, &i.shape, &i.params, &mut out),
                    Some(e) => e.dequantize(&q, &i.shape, &i.params, &mut out),
                }
            };
            f(r.map(|()| bits_f32(&out)))
        }
        (Op::FakeQuantize { mask }, _) => {
            let mut out = vec![0f32; i.out_len];
            let mut m = vec![false; i.out_len];
            let mk = if mask { Some(&mut m[..]) } else { None };
            let r = match engine {
                None => refq::fake_quantize(&i.x, &i.shape, &i.params, i.rule, &mut out, mk),
                Some(e) => e.fake_quantize(&i.x, &i.shape, &i.params, i.rule, &mut out, mk),
            };
            f(r.map(|()| bits_f32(&out).into_iter().chain(m.iter().map(|&b| b as u32)).collect()))
        }
        (Op::QuantizePacked4 { signed }, _) => {
            let kind = if signed { Int4::Signed } else { Int4::Unsigned };
            let mut out = vec![0u8; packed_len(i.out_len)];
            let r = match engine {
                None => refq::quantize_packed4(&i.x, &i.shape, &i.params, i.rule, kind, &mut out),
                Some(e) => e.quantize_packed4(&i.x, &i.shape, &i.params, i.rule, kind, &mut out),
            };
            f(r.map(|()| out.iter().map(|&b| b as u32).collect()))
        }
        (Op::DequantizePacked4 { signed }, _) => {
            let kind = if signed { Int4::Signed } else { Int4::Unsigned };
            let packed: Vec<u8> = i.codes.iter().take(packed_len(i.x.len())).map(|&q| q as u8).collect();
            let mut out = vec![0f32; i.out_len];
            let r = match engine {
                None => refq::dequantize_packed4(&packed, &i.shape, &i.params, kind, &mut out),
                Some(e) => e.dequantize_packed4(&packed, &i.shape, &i.params, kind, &mut out),
            };
            f(r.map(|()| bits_f32(&out)))
        }
        (Op::DynamicQuantize { torch }, _) => {
            let profile = if torch { Profile::TORCH } else { Profile::ONNXRUNTIME };
            let mut out = vec![0u8; i.out_len];
            let r = match engine {
                None => profile.dynamic_quantize(&i.x, &mut out),
                Some(e) => e.dynamic_quantize(&profile, &i.x, &mut out),
            };
            f(r.map(|p| {
                let mut b: Vec<u32> = out.iter().map(|&c| c as u32).collect();
                b.push(p.scale.to_bits());
                b.push(p.zero_point as u32);
                b
            }))
        }
        (Op::MinMax, None) => {
            // `Engine::min_max`'s contract: NaN is an error at its index, infinities count, an
            // empty input gives (+inf, -inf).
            let r = match i.x.iter().position(|v| v.is_nan()) {
                Some(index) => Err(QuantError::NanInput { what: "x", index }),
                None => Ok(i.x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)))),
            };
            f(r.map(|(a, b)| vec![zero_bits(a), zero_bits(b)]))
        }
        (Op::MinMax, Some(e)) => f(e.min_max(&i.x).map(|m| vec![zero_bits(m.min), zero_bits(m.max)])),
        (Op::AbsMax, None) => {
            let r = match i.x.iter().position(|v| v.is_nan()) {
                Some(index) => Err(QuantError::NanInput { what: "x", index }),
                None => Ok(i.x.iter().fold(0f32, |m, v| m.max(v.abs()))),
            };
            f(r.map(|m| vec![m.to_bits()]))
        }
        (Op::AbsMax, Some(e)) => f(e.abs_max(&i.x).map(|m| vec![m.to_bits()])),
        (Op::Softmax { signed, odd_output }, _) => {
            if signed {
                softmax::<i8>(i, odd_output, engine)
            } else {
                softmax::<u8>(i, odd_output, engine)
            }
        }
    }
}

fn softmax<C: quantproof_optimized::ops::FastCode>(i: &Input, odd_output: bool, engine: Option<&Engine>) -> Outcome {
    use quantproof_reference::affine::Affine;
    let x: Vec<C> = codes_as(&i.codes);
    let beta = i.x.first().copied().unwrap_or(1.0);
    let xq = Affine::new(
        i.params.scales.first().copied().unwrap_or(1.0),
        i.params.zero_points.first().copied().unwrap_or(0),
    );
    let yq = if odd_output { Affine::new(1.0 / 256.0, 0) } else { Affine::new(1.0 / 256.0, C::MIN) };
    let r = match engine {
        None => quantproof_reference::softmax::tflite_softmax(&x, &i.shape, -1, beta, xq, yq),
        Some(e) => {
            let mut out = vec![C::default(); i.out_len];
            e.tflite_softmax(&x, &i.shape, -1, beta, xq, yq, &mut out).map(|()| out)
        }
    };
    // The reference returns its output; the engine writes into one of `out_len` codes and
    // refuses another length after the reference's own checks, as the reference's caller would.
    let r = r.and_then(|y| quantproof_reference::error::check_len("output", x.len(), i.out_len).map(|()| y));
    match r {
        Ok(y) => Outcome::Bits(y.iter().map(|c| c.to_code() as u32).collect()),
        Err(e) => Outcome::Error(format!("{e:?}")),
    }
}

/// Engines for every available ISA level, at one and three threads (with the parallel threshold
/// lowered so that three threads really split short inputs).
pub fn engines() -> Vec<Engine> {
    let mut v = Vec::new();
    for level in isa::available() {
        if let Ok(e) = Engine::new(level) {
            v.push(e);
            v.push(e.with_threads(3).with_parallel_threshold(1));
        }
    }
    v
}

/// Draws one operation from `data` and runs it on the reference and on every engine. Panics
/// (the fuzz failure) when a path panics or disagrees with the reference.
pub fn ops(engines: &[Engine], data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(i) = input(&mut u) else { return };
    let want = compute(&i, None);
    for e in engines {
        let got = compute(&i, Some(e));
        assert_eq!(
            got,
            want,
            "{:?} on {} ({} threads) differs from the reference on {i:?}",
            i.op,
            e.isa(),
            e.threads()
        );
    }
}

/// Inputs for the targets: random bytes, and mutations of seed lines (the golden vectors).
pub struct Corpus {
    rng: Rng,
    seeds: Vec<Vec<u8>>,
}

impl Corpus {
    pub fn new(seed: u64, seeds: Vec<Vec<u8>>) -> Corpus {
        Corpus { rng: Rng::new(seed), seeds }
    }

    /// The next input: one of the seeds mutated 1 to 4 times, or (one time in eight, or when
    /// there are no seeds) fresh random bytes.
    pub fn next_input(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        if self.seeds.is_empty() || r.below(8) == 0 {
            let n = r.below(512) as usize;
            return (0..n).map(|_| r.next_u64() as u8).collect();
        }
        let mut v = self.seeds[r.below(self.seeds.len() as u64) as usize].clone();
        for _ in 0..=r.below(4) {
            mutate(r, &mut v, &self.seeds);
        }
        v
    }
}

/// Numbers that break naive parsers and shape arithmetic.
const EXTREMES: &[&str] = &[
    "1e999",
    "-1e999",
    "1e-999",
    "-0",
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "3.4028235e38",
    "1.0e-45",
    "null",
    "[]",
    "{}",
    "\"\"",
    "true",
    "[[1,2],[3]]",
];

fn mutate(r: &mut Rng, v: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = v.len();
    match r.below(7) {
        0 if len > 0 => {
            let i = r.below(len as u64) as usize;
            v[i] ^= 1 << r.below(8);
        }
        1 if len > 0 => v.truncate(r.below(len as u64) as usize),
        2 if len > 1 => {
            let a = r.below(len as u64) as usize;
            let b = (a + r.below(16) as usize).min(len);
            v.drain(a..b);
        }
        3 if len > 0 => {
            let a = r.below(len as u64) as usize;
            let b = (a + r.below(32) as usize).min(len);
            let chunk = v[a..b].to_vec();
            let at = r.below(len as u64 + 1) as usize;
            v.splice(at..at, chunk);
        }
        4 | 5 => {
            // Replace one number token by an extreme.
            let starts: Vec<usize> = (0..len)
                .filter(|&i| (v[i].is_ascii_digit() || v[i] == b'-') && (i == 0 || !v[i - 1].is_ascii_alphanumeric()))
                .collect();
            if let Some(&s) = starts.get(r.below(starts.len() as u64) as usize) {
                let e = s + v[s..].iter().take_while(|c| c.is_ascii_digit() || b"-+.eE".contains(c)).count();
                let rep = EXTREMES[r.below(EXTREMES.len() as u64) as usize].as_bytes();
                v.splice(s..e.max(s + 1).min(len), rep.iter().copied());
            }
        }
        _ if !seeds.is_empty() => {
            // Splice: the head of this input and the tail of another.
            let other = &seeds[r.below(seeds.len() as u64) as usize];
            let a = r.below(len as u64 + 1) as usize;
            let b = r.below(other.len() as u64 + 1) as usize;
            v.truncate(a);
            v.extend_from_slice(&other[b..]);
        }
        _ => {}
    }
}
