//! The one kernel test kit, shared by every ISA's kernel tests (AVX2, AVX-512, NEON): adversarial inputs, and exact
//! comparisons of a kernel family against the scalar kernels (the specification).
//!
//! Every check runs the family and [`Scalar`] on the same input and demands identical bits
//! (quantized codes, fake-quantized floats including the sign of zero, masks, NaN flags,
//! dequantized floats, nibbles); `min_max` may differ only in the sign of a zero. Inputs sit at
//! every offset 0..4 of a larger buffer (so loads are misaligned), every length 0..=67 plus larger
//! odd ones, and the output buffers carry sentinels around the span to catch stray writes.

use crate::arch::generic::Scalar;
use crate::isa::Isa;
use crate::kernels::{self, Kernels, Params, PerElement, Rule, Uniform};
use crate::kernels::{QuantizeKernels, ReduceKernels};
use quantproof_reference::pack::Int4;
use quantproof_reference::quantize::ScaleOp;
pub use quantproof_reference::rng::Rng;
use quantproof_reference::rounding::RoundingMode;

/// The family's kernels, or `None` after printing that its tests could not run here.
pub fn family(isa: Isa) -> Option<&'static dyn Kernels> {
    let k = kernels::table(isa);
    if k.is_none() {
        println!("NOTE: {isa} is not available on this CPU: its kernel tests were NOT run");
    }
    k
}

/// Lengths that reach every tail shape of 8-, 16- and 64-element loops, and some long odd ones.
pub fn lengths() -> Vec<usize> {
    (0..=4 * 16 + 3).chain([127, 129, 255, 257, 1001, 4099]).collect()
}

pub const OFFSETS: std::ops::Range<usize> = 0..4;

/// The deterministic rules kernels implement.
pub fn rules() -> Vec<Rule> {
    let mut v = Vec::new();
    for op in [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal] {
        for mode in RoundingMode::DETERMINISTIC {
            v.push(Rule { op, mode });
        }
    }
    v
}

/// One quantizer: scale, zero point and code range (inside the output type).
#[derive(Debug, Clone, Copy)]
pub struct Q {
    pub scale: f32,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
}

impl Q {
    /// The kernel parameters for `op`, or `None` when `1/s` overflows (the reference rejects
    /// such a scale for [`ScaleOp::MultiplyByReciprocal`]).
    pub fn uniform(&self, op: ScaleOp) -> Option<Uniform> {
        let factor = match op {
            ScaleOp::Divide => self.scale,
            ScaleOp::MultiplyByReciprocal => 1.0 / self.scale,
        };
        factor.is_finite().then_some(Uniform {
            scale: self.scale,
            factor,
            lo: (self.qmin - self.zero_point) as f32,
            hi: (self.qmax - self.zero_point) as f32,
            zero_point: self.zero_point,
        })
    }

    /// Inputs that probe every decision of this quantizer: exact ties `(k + 1/2) s` and
    /// integers `k s` for every code `k` in and just outside the range, with their ±1, ±2 ulp
    /// neighbours; the clamp boundaries `lo s`, `hi s` and one ulp past them; zeros, subnormals,
    /// huge values, infinities; random values in and around the range.
    pub fn inputs(&self, rng: &mut Rng) -> Vec<f32> {
        let s = self.scale;
        let (lo, hi) = ((self.qmin - self.zero_point) as f32, (self.qmax - self.zero_point) as f32);
        let mut v = Vec::new();
        let around = |x: f32, v: &mut Vec<f32>| {
            if x.is_finite() {
                let (d1, d2) = (x.next_down(), x.next_down().next_down());
                let (u1, u2) = (x.next_up(), x.next_up().next_up());
                v.extend([d2, d1, x, u1, u2]);
            }
        };
        let (k0, k1) = (lo as i32 - 3, hi as i32 + 3);
        for k in k0..=k1 {
            let k = k as f32;
            for t in [k, k + 0.5, k - 0.25, k + 0.25] {
                around(t * s, &mut v);
                around((t as f64 * s as f64) as f32, &mut v);
            }
        }
        for b in [lo, hi, lo - 0.5, hi + 0.5, lo - 1.0, hi + 1.0] {
            around(b * s, &mut v);
        }
        for x in [
            0.0f32,
            1.0,
            0.5,
            0.49999997,
            0.50000006,
            1.5,
            2.5,
            f32::MIN_POSITIVE,
            1e-45,
            3e-45,
            1e-40,
            1e-30,
            1e-10,
            1e10,
            1e20,
            3e38,
            f32::MAX,
            f32::INFINITY,
            8388607.5,
            8388608.0,
            16777217.0,
            2147483648.0,
            4294967296.0,
        ] {
            v.extend([x, -x]);
        }
        let span = (hi - lo + 20.0) * s;
        for _ in 0..700 {
            v.push(((rng.unit() as f32) - 0.5) * 2.0 * span);
            let bits = rng.next_u64() as u32;
            if !f32::from_bits(bits).is_nan() {
                v.push(f32::from_bits(bits));
            }
        }
        v
    }
}

/// Quantizers for i8 outputs (`signed`) or u8 outputs, over scales from tiny to huge.
pub fn quantizers(signed: bool) -> Vec<Q> {
    let scales = [1.0f32, 0.5, 0.1, 0.0123, 3.0, 0.007_812_5, 1e-3, 1.0 / 1_048_576.0, 1e-30, 2.5e20, 1e-39];
    let ranges: &[(i32, i32, &[i32])] = if signed {
        &[(-128, 127, &[0, -128, 127, 5, -7]), (-127, 127, &[0]), (-8, 7, &[0, 3]), (-64, 63, &[-1])]
    } else {
        &[(0, 255, &[0, 128, 255, 3]), (0, 127, &[64]), (0, 15, &[8])]
    };
    let mut v = Vec::new();
    for (i, &scale) in scales.iter().enumerate() {
        for (j, &(qmin, qmax, zs)) in ranges.iter().enumerate() {
            // Every range with the first scales; a rotating range with the rest.
            if i < 4 || j == i % ranges.len() {
                for &zero_point in zs {
                    v.push(Q { scale, zero_point, qmin, qmax });
                }
            }
        }
    }
    v
}

/// Per-element parameter arrays (struct of arrays).
#[derive(Default, Clone)]
pub struct Soa {
    pub scale: Vec<f32>,
    pub factor: Vec<f32>,
    pub lo: Vec<f32>,
    pub hi: Vec<f32>,
    pub zero_point: Vec<i32>,
}

impl Soa {
    pub fn push(&mut self, u: Uniform) {
        self.scale.push(u.scale);
        self.factor.push(u.factor);
        self.lo.push(u.lo);
        self.hi.push(u.hi);
        self.zero_point.push(u.zero_point);
    }
    pub fn view(&self, start: usize, len: usize) -> PerElement<'_> {
        PerElement {
            scale: &self.scale[start..start + len],
            factor: &self.factor[start..start + len],
            lo: &self.lo[start..start + len],
            hi: &self.hi[start..start + len],
            zero_point: &self.zero_point[start..start + len],
        }
    }
}

/// A test case: an input buffer and its parameters, uniform or per element.
pub struct Case {
    pub what: String,
    pub x: Vec<f32>,
    pub uniform: Option<Uniform>,
    pub soa: Soa,
}

impl Case {
    pub fn params(&self, start: usize, len: usize) -> Params<'_> {
        match self.uniform {
            Some(u) => Params::Uniform(u),
            None => Params::PerElement(self.soa.view(start, len)),
        }
    }
}

/// Uniform cases, one per quantizer, and per-element cases that interleave several quantizers
/// (each element gets its own quantizer's adversarial values).
pub fn cases(signed: bool, op: ScaleOp, rng: &mut Rng) -> Vec<Case> {
    let qs: Vec<(Q, Uniform)> = quantizers(signed).into_iter().filter_map(|q| Some((q, q.uniform(op)?))).collect();
    let mut out = Vec::new();
    let mut pools = Vec::new();
    for (q, u) in &qs {
        let mut x = q.inputs(rng);
        rng.shuffle(&mut x);
        out.push(Case { what: format!("uniform {q:?}"), x: x.clone(), uniform: Some(*u), soa: Soa::default() });
        pools.push((*u, x));
    }
    for stride in [1usize, 5] {
        let mut case =
            Case { what: format!("per-element stride {stride}"), x: Vec::new(), uniform: None, soa: Soa::default() };
        let n = pools.iter().map(|p| p.1.len()).max().unwrap_or(0) * 2;
        for j in 0..n {
            let (u, pool) = &pools[(j / stride) % pools.len()];
            case.x.push(pool[(j * 7 + j / pools.len()) % pool.len()]);
            case.soa.push(*u);
        }
        out.push(case);
    }
    out
}

const SENTINEL_F: f32 = -1234.5;

/// Runs `f(kernels, start, len, out)` for every length and offset, with the whole case too, and
/// compares against the scalar kernel. `f` returns the NaN flag.
fn sweep<T: Copy + PartialEq + std::fmt::Debug>(
    what: &str,
    total: usize,
    sentinel: T,
    mut f: impl FnMut(&dyn Kernels, usize, usize, &mut [T]) -> bool,
    k: &dyn Kernels,
    same: impl Fn(T, T) -> bool,
) {
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for off in OFFSETS {
        if total > off {
            windows.push((off, total - off));
        }
    }
    for len in lengths() {
        for off in OFFSETS {
            if len + off > total {
                continue;
            }
            // A window that moves with the length, so short spans see many inputs.
            let start = off + (len * 131) % (total - len - off + 1) / 4 * 4;
            windows.push((start.min(total - len), len));
        }
    }
    for (start, len) in windows {
        // The output span sits 1..=4 elements into a buffer with 4 sentinels after it.
        let p = 1 + start % 4;
        let mut want = vec![sentinel; len + 8];
        let mut got = vec![sentinel; len + 8];
        let nan_want = f(&Scalar, start, len, &mut want[p..p + len]);
        let nan_got = f(k, start, len, &mut got[p..p + len]);
        assert_eq!(nan_got, nan_want, "{what}: NaN flag, start {start} len {len}");
        for i in 0..want.len() {
            assert!(
                same(got[i], want[i]),
                "{what}: start {start} len {len} element {} of the span: got {:?}, want {:?}",
                i as isize - p as isize,
                got[i],
                want[i]
            );
        }
    }
}

/// quantize_i8 / quantize_u8 against the scalar kernel.
pub fn quantize(k: &dyn Kernels) {
    let mut rng = Rng::new(1);
    for signed in [true, false] {
        for rule in rules() {
            for case in cases(signed, rule.op, &mut rng) {
                let what = format!("{} quantize {} {rule:?} {}", k.isa(), if signed { "i8" } else { "u8" }, case.what);
                let x = &case.x;
                if signed {
                    let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [i8]| {
                        k.quantize_i8(&x[s..s + n], case.params(s, n), rule, o)
                    };
                    sweep(&what, x.len(), 0x5A, f, k, |a, b| a == b);
                } else {
                    let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [u8]| {
                        k.quantize_u8(&x[s..s + n], case.params(s, n), rule, o)
                    };
                    sweep(&what, x.len(), 0xA5, f, k, |a, b| a == b);
                }
            }
        }
    }
}

/// fake_quantize (with and without mask) against the scalar kernel, bit for bit.
pub fn fake_quantize(k: &dyn Kernels) {
    let mut rng = Rng::new(2);
    for rule in rules() {
        for signed in [true, false] {
            for case in cases(signed, rule.op, &mut rng) {
                let what = format!("{} fake_quantize {rule:?} {}", k.isa(), case.what);
                let x = &case.x;
                let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [f32]| {
                    k.fake_quantize(&x[s..s + n], case.params(s, n), rule, o, None)
                };
                sweep(&what, x.len(), SENTINEL_F, f, k, |a: f32, b: f32| a.to_bits() == b.to_bits());
                // With a mask: outputs and mask together (the mask in a second buffer).
                let mut masks: Vec<Vec<bool>> = Vec::new();
                let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [(f32, u8)]| {
                    // The mask sits inside a larger buffer whose other bytes must stay untouched.
                    let mut y = vec![SENTINEL_F; n];
                    let mut m = vec![true; n + 8];
                    let nan = k.fake_quantize(&x[s..s + n], case.params(s, n), rule, &mut y, Some(&mut m[3..3 + n]));
                    assert!(m[..3].iter().chain(&m[3 + n..]).all(|&b| b), "mask written outside its slice");
                    for i in 0..n {
                        o[i] = (y[i], m[3 + i] as u8);
                    }
                    masks.push(m);
                    nan
                };
                sweep(&format!("{what} with mask"), x.len(), (SENTINEL_F, 7), f, k, |a: (f32, u8), b: (f32, u8)| {
                    a.0.to_bits() == b.0.to_bits() && a.1 == b.1
                });
                // Masks start true: make sure false is written too.
                assert!(masks.iter().any(|m| m.contains(&false)) || x.is_empty(), "{what}: no mask was ever false");
            }
        }
    }
}

/// A NaN anywhere (every position of short spans, sampled positions of long ones) sets the flag
/// of quantize and fake_quantize, for every rule and layout; without NaN the flag stays clear.
pub fn nan_flags(k: &dyn Kernels) {
    let nans = [f32::NAN, -f32::NAN, f32::from_bits(0x7F80_0001), f32::from_bits(0xFFC0_1234)];
    let q = Q { scale: 0.5, zero_point: 3, qmin: 0, qmax: 255 };
    for rule in rules() {
        let Some(u) = q.uniform(rule.op) else { continue };
        let mut soa = Soa::default();
        for _ in 0..5000 {
            soa.push(u);
        }
        for len in lengths() {
            let positions: Vec<usize> =
                if len <= 67 { (0..len).collect() } else { (0..len).step_by(len / 17 + 1).chain([len - 1]).collect() };
            for p in [Params::Uniform(u), Params::PerElement(soa.view(1, len))] {
                for off in [0usize, 3] {
                    let mut buf = vec![1.25f32; len + off];
                    let mut o8 = vec![0u8; len];
                    let mut of = vec![0f32; len];
                    let mut m = vec![false; len];
                    assert!(!k.quantize_u8(&buf[off..], p, rule, &mut o8), "len {len}");
                    assert!(!k.fake_quantize(&buf[off..], p, rule, &mut of, Some(&mut m)), "len {len}");
                    for (j, &pos) in positions.iter().enumerate() {
                        buf[off + pos] = nans[j % nans.len()];
                        let x = &buf[off..];
                        assert!(k.quantize_u8(x, p, rule, &mut o8), "{} {rule:?} len {len} NaN at {pos}", k.isa());
                        let mut o = vec![0i8; len];
                        assert!(k.quantize_i8(x, p, rule, &mut o), "{} {rule:?} len {len} NaN at {pos}", k.isa());
                        assert!(
                            k.fake_quantize(x, p, rule, &mut of, None),
                            "{} {rule:?} len {len} NaN at {pos}",
                            k.isa()
                        );
                        assert!(
                            k.fake_quantize(x, p, rule, &mut of, Some(&mut m)),
                            "{} {rule:?} len {len} NaN at {pos}",
                            k.isa()
                        );
                        buf[off + pos] = -7.75;
                    }
                }
            }
        }
    }
}

/// A strided walk over all f32 bit patterns (NaN excluded) for a few quantizers and every rule.
pub fn bit_pattern_walk(k: &dyn Kernels) {
    let xs: Vec<f32> = (0..=u32::MAX).step_by(4099).map(f32::from_bits).filter(|x| !x.is_nan()).collect();
    let qs = [
        Q { scale: 0.0123, zero_point: -7, qmin: -128, qmax: 127 },
        Q { scale: 1.0, zero_point: 128, qmin: 0, qmax: 255 },
        Q { scale: 3.1e-5, zero_point: 0, qmin: -127, qmax: 127 },
    ];
    for rule in rules() {
        for q in qs {
            let Some(u) = q.uniform(rule.op) else { continue };
            let p = Params::Uniform(u);
            let (mut a, mut b) = (vec![0u8; xs.len()], vec![0u8; xs.len()]);
            let (mut fa, mut fb) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
            let (mut ma, mut mb) = (vec![false; xs.len()], vec![false; xs.len()]);
            if q.qmin < 0 {
                let (mut a, mut b) = (vec![0i8; xs.len()], vec![0i8; xs.len()]);
                assert!(!k.quantize_i8(&xs, p, rule, &mut a));
                assert!(!Scalar.quantize_i8(&xs, p, rule, &mut b));
                assert!(a == b, "{} {rule:?} {q:?}", k.isa());
            } else {
                assert!(!k.quantize_u8(&xs, p, rule, &mut a));
                assert!(!Scalar.quantize_u8(&xs, p, rule, &mut b));
                assert!(a == b, "{} {rule:?} {q:?}", k.isa());
            }
            assert!(!k.fake_quantize(&xs, p, rule, &mut fa, Some(&mut ma)));
            assert!(!Scalar.fake_quantize(&xs, p, rule, &mut fb, Some(&mut mb)));
            for i in 0..xs.len() {
                assert_eq!(fa[i].to_bits(), fb[i].to_bits(), "{} {rule:?} {q:?} x = {:e}", k.isa(), xs[i]);
            }
            assert!(ma == mb);
        }
    }
}

/// Every i8 and u8 code, dequantized under several scales and zero points, uniform and per
/// element, at every length and offset.
pub fn dequantize(k: &dyn Kernels) {
    let params = [
        (1.0f32, 0i32),
        (0.0123, -7),
        (0.5, 128),
        (3.0e38, 255),
        (1e-39, -128),
        (0.1, 127),
        (2.5e-3, 100_000),
        (7.0, -2_000_000_000),
    ];
    let mut rng = Rng::new(3);
    for signed in [true, false] {
        let mut codes: Vec<u8> = (0..=255u8).cycle().take(256 * 9).collect();
        rng.shuffle(&mut codes[256..]);
        let mut soa = Soa::default();
        for i in 0..codes.len() {
            let (s, z) = params[(i * 5 + i / 3) % params.len()];
            soa.push(Uniform { scale: s, factor: s, lo: 0.0, hi: 0.0, zero_point: z });
        }
        let mut cases: Vec<(String, Option<Uniform>)> = params
            .iter()
            .map(|&(s, z)| {
                (
                    format!("uniform s {s:e} z {z}"),
                    Some(Uniform { scale: s, factor: s, lo: 0.0, hi: 0.0, zero_point: z }),
                )
            })
            .collect();
        cases.push(("per-element".into(), None));
        for (name, u) in cases {
            let what = format!("{} dequantize {} {name}", k.isa(), if signed { "i8" } else { "u8" });
            let p = |s: usize, n: usize| match u {
                Some(u) => Params::Uniform(u),
                None => Params::PerElement(soa.view(s, n)),
            };
            let same = |a: f32, b: f32| a.to_bits() == b.to_bits();
            if signed {
                let q: Vec<i8> = codes.iter().map(|&c| c as i8).collect();
                let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [f32]| {
                    k.dequantize_i8(&q[s..s + n], p(s, n), o);
                    false
                };
                sweep(&what, q.len(), SENTINEL_F, f, k, same);
            } else {
                let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [f32]| {
                    k.dequantize_u8(&codes[s..s + n], p(s, n), o);
                    false
                };
                sweep(&what, codes.len(), SENTINEL_F, f, k, same);
            }
        }
    }
}

/// Every pair of codes in [-8, 15] packed, at every length and offset.
pub fn pack_nibbles(k: &dyn Kernels) {
    let mut codes = Vec::new();
    for a in -8i8..=15 {
        for b in -8i8..=15 {
            codes.extend([a, b]);
        }
    }
    let pairs = codes.len() / 2;
    let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [u8]| {
        k.pack_nibbles(&codes[2 * s..2 * (s + n)], o);
        false
    };
    sweep(&format!("{} pack_nibbles", k.isa()), pairs, 0xEE, f, k, |a, b| a == b);
    // Odd code offsets: pairs that start at an odd index of a buffer.
    for off in OFFSETS {
        for n in lengths() {
            if 2 * n + off > codes.len() {
                continue;
            }
            let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
            k.pack_nibbles(&codes[off..off + 2 * n], &mut a);
            Scalar.pack_nibbles(&codes[off..off + 2 * n], &mut b);
            assert_eq!(a, b, "{} pack_nibbles code offset {off} len {n}", k.isa());
        }
    }
}

/// Every byte unpacked, signed and unsigned, at every length and offset.
pub fn unpack_nibbles(k: &dyn Kernels) {
    let mut rng = Rng::new(4);
    let mut packed: Vec<u8> = (0..=255u8).cycle().take(256 * 4).collect();
    rng.shuffle(&mut packed[256..]);
    for kind in [Int4::Signed, Int4::Unsigned] {
        // Outputs are pairs: compare as u16 per packed byte.
        let f = |k: &dyn Kernels, s: usize, n: usize, o: &mut [(i8, i8)]| {
            let mut codes = vec![99i8; 2 * n];
            k.unpack_nibbles(&packed[s..s + n], kind, &mut codes);
            for i in 0..n {
                o[i] = (codes[2 * i], codes[2 * i + 1]);
            }
            false
        };
        sweep(&format!("{} unpack_nibbles {kind:?}", k.isa()), packed.len(), (99, 99), f, k, |a, b| a == b);
        for off in OFFSETS {
            for n in lengths() {
                if n + off > packed.len() {
                    continue;
                }
                let mut a = vec![77i8; 2 * n + 8];
                let mut b = vec![77i8; 2 * n + 8];
                k.unpack_nibbles(&packed[off..off + n], kind, &mut a[off..off + 2 * n]);
                Scalar.unpack_nibbles(&packed[off..off + n], kind, &mut b[off..off + 2 * n]);
                assert_eq!(a, b, "{} unpack_nibbles offset {off} len {n}", k.isa());
            }
        }
    }
}

/// Equal floats, where a zero may have either sign.
fn same_up_to_zero_sign(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0)
}

/// min_max and abs_max on data with NaN, infinities and signed zeros at every length and offset.
pub fn min_max(k: &dyn Kernels) {
    let mut rng = Rng::new(5);
    let mut datasets: Vec<(String, Vec<f32>)> = Vec::new();
    let mut mixed: Vec<f32> = (0..3000).map(|_| ((rng.unit() as f32) - 0.5) * 100.0).collect();
    mixed.extend([0.0, -0.0, 1e-45, -1e-45, f32::MAX, f32::MIN, 3e38]);
    rng.shuffle(&mut mixed);
    datasets.push(("finite".into(), mixed.clone()));
    let mut inf = mixed.clone();
    for i in (0..inf.len()).step_by(97) {
        inf[i] = if i % 2 == 0 { f32::INFINITY } else { f32::NEG_INFINITY };
    }
    datasets.push(("with infinities".into(), inf));
    let mut nan = mixed.clone();
    for i in (5..nan.len()).step_by(41) {
        nan[i] = [f32::NAN, -f32::NAN, f32::from_bits(0x7F80_0001)][i % 3];
    }
    datasets.push(("with NaN".into(), nan));
    datasets.push(("all NaN".into(), vec![f32::NAN; 300]));
    datasets.push(("zeros".into(), (0..300).map(|i| if i % 3 == 0 { -0.0 } else { 0.0 }).collect()));
    datasets.push(("negative zeros".into(), vec![-0.0; 300]));
    datasets.push(("negative".into(), (0..300).map(|i| -1.0 - i as f32).collect()));
    datasets.push((
        "tiny".into(),
        (0..300).map(|i| f32::from_bits(i as u32 + 1) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect(),
    ));
    for (name, x) in &datasets {
        let mut windows: Vec<(usize, usize)> = OFFSETS.filter(|&o| o < x.len()).map(|o| (o, x.len() - o)).collect();
        for len in lengths() {
            for off in OFFSETS {
                if len + off <= x.len() {
                    windows.push(((off + len * 37) % (x.len() - len + 1), len));
                }
            }
        }
        for (s, n) in windows {
            let x = &x[s..s + n];
            let (lo, hi, nan) = k.min_max(x);
            let (wlo, whi, wnan) = Scalar.min_max(x);
            let what = format!("{} min_max {name} start {s} len {n}", k.isa());
            assert_eq!(nan, wnan, "{what}");
            assert!(same_up_to_zero_sign(lo, wlo), "{what}: min {lo:e} vs {wlo:e}");
            assert!(same_up_to_zero_sign(hi, whi), "{what}: max {hi:e} vs {whi:e}");
            let (m, nan) = k.abs_max(x);
            let (wm, wnan) = Scalar.abs_max(x);
            assert_eq!(nan, wnan, "{what} abs_max");
            assert_eq!(m.to_bits(), wm.to_bits(), "{what}: abs_max {m:e} vs {wm:e}");
        }
    }
}

fn uniform(scale: f32, (qmin, qmax, z): (i32, i32, i32), op: ScaleOp) -> Uniform {
    let factor = match op {
        ScaleOp::Divide => scale,
        ScaleOp::MultiplyByReciprocal => 1.0 / scale,
    };
    Uniform { scale, factor, lo: (qmin - z) as f32, hi: (qmax - z) as f32, zero_point: z }
}

/// round(-0.3) is -0.0: fake-quantize must return +0.0 (as the reference's integer path does),
/// also where the zero is the clamp bound itself; the mask marks exactly the clipped values.
pub fn zero_is_positive_and_mask_marks_clipping(k: &dyn Kernels) {
    let x = [-0.3f32; 21];
    for (range, op) in [
        ((0, 255, 0), ScaleOp::Divide),
        ((-128, 127, 127), ScaleOp::MultiplyByReciprocal),
        ((-128, 127, 0), ScaleOp::Divide),
    ] {
        let u = uniform(1.0, range, op);
        for mode in RoundingMode::DETERMINISTIC.into_iter().filter(|m| *m != RoundingMode::Floor) {
            let mut y = [1.0f32; 21];
            let mut m = [false; 21];
            assert!(!k.fake_quantize(&x, Params::Uniform(u), Rule { op, mode }, &mut y, Some(&mut m)));
            assert!(y.iter().all(|v| v.to_bits() == 0), "{} {mode:?} {range:?}: {y:?}", k.isa());
            assert!(m.iter().all(|&b| b));
        }
    }
    // Past the bounds: clipped, mask false; inf saturates.
    let u = uniform(0.5, (-128, 127, 0), ScaleOp::Divide);
    let mut x = vec![64.0f32, -64.5, f32::INFINITY, f32::NEG_INFINITY, 63.5, -64.0];
    x.extend((0..11).map(|i| i as f32));
    let mut y = [0.0f32; 17];
    let mut m = [true; 17];
    let rule = Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven };
    k.fake_quantize(&x, Params::Uniform(u), rule, &mut y, Some(&mut m));
    assert_eq!(&y[..6], &[63.5, -64.0, 63.5, -64.0, 63.5, -64.0], "{}", k.isa());
    assert_eq!(&m[..6], &[false, false, false, false, true, true], "{}", k.isa());
}

/// Kernels never receive stochastic rounding from the planner; if they do, they must still give
/// the scalar answer.
pub fn stochastic_rule_falls_back_to_scalar(k: &dyn Kernels) {
    let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.3 - 5.0).collect();
    let u = uniform(0.5, (-128, 127, 0), ScaleOp::Divide);
    let rule = Rule { op: ScaleOp::Divide, mode: RoundingMode::Stochastic { seed: 9 } };
    let (mut a, mut b) = (vec![0i8; 37], vec![0i8; 37]);
    k.quantize_i8(&x, Params::Uniform(u), rule, &mut a);
    Scalar.quantize_i8(&x, Params::Uniform(u), rule, &mut b);
    assert_eq!(a, b, "{}", k.isa());
    let (mut ya, mut yb) = (vec![0f32; 37], vec![0f32; 37]);
    k.fake_quantize(&x, Params::Uniform(u), rule, &mut ya, None);
    Scalar.fake_quantize(&x, Params::Uniform(u), rule, &mut yb, None);
    assert_eq!(ya, yb, "{}", k.isa());
}

/// The comparisons with the scalar kernels would not notice a flush-to-zero that hit scalar and
/// vector code alike, so exact subnormal results are checked directly: `(q - 0) * 2^-149` is the
/// subnormal with bit pattern `q`, and `3 * 2^-149 / 2^-149` is 3.
pub fn subnormals_are_kept_not_flushed(k: &dyn Kernels) {
    let tiny = f32::from_bits(1);
    let p = Params::Uniform(uniform(tiny, (-128, 127, 0), ScaleOp::Divide));
    let rule = Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven };
    let q: Vec<i8> = (1..=19).collect();
    let mut y = [0f32; 19];
    k.dequantize_i8(&q, p, &mut y);
    assert!(y.iter().zip(1u32..).all(|(v, b)| v.to_bits() == b), "{}: {y:?}", k.isa());
    let x = [f32::from_bits(3); 16];
    let mut c = [0i8; 16];
    k.quantize_i8(&x, p, rule, &mut c);
    assert_eq!(c, [3; 16], "{}", k.isa());
    let mut f = [0f32; 16];
    k.fake_quantize(&x, p, rule, &mut f, None);
    assert!(f.iter().all(|v| v.to_bits() == 3), "{}", k.isa());
    let (lo, hi, _) = k.min_max(&[f32::from_bits(5); 16]);
    assert_eq!((lo.to_bits(), hi.to_bits()), (5, 5), "{}", k.isa());
}

/// The byte kernels of pooling and table lookup (`max_rows`, `sum_rows`, `lut_bytes`)
/// against the scalar ones: both signednesses, every length and offset, bytes at both ends of
/// the code range, and sentinels around the span.
pub fn byte_kernels(k: &dyn Kernels) {
    use crate::kernels::{LutKernels, PoolKernels};
    use quantproof_reference::scheme::Signedness;
    let mut rng = Rng::new(0xb17e5);
    let mut table = [0u8; 256];
    for t in table.iter_mut() {
        *t = rng.below(256) as u8;
    }
    for n in lengths() {
        for off in OFFSETS {
            let mut x = vec![0u8; n + off + 4];
            for (i, v) in x.iter_mut().enumerate() {
                *v = match i % 7 {
                    0 => 0,
                    1 => 127,
                    2 => 128,
                    3 => 255,
                    _ => rng.below(256) as u8,
                };
            }
            let xs = &x[off..off + n];
            for sign in [Signedness::Signed, Signedness::Unsigned] {
                // Zero to six rows (past the four that AVX-512 fixes; the later ones other spans of `x`, misaligned against
                // each other), bounds drawn as codes with lo <= hi, the full range among them.
                let code = |b: u8| crate::arch::generic::code_of_byte(b, sign);
                let rows: Vec<&[u8]> = (0..=n.min(6)).map(|r| &x[off - off.min(r)..][..n]).collect();
                for r in 0..rows.len() {
                    let (a, b) = (rng.below(256) as u8, rng.below(256) as u8);
                    let (lo, hi) = match r % 3 {
                        0 => (a.min(b), a.max(b)),
                        1 => (if code(a) <= code(b) { a } else { b }, if code(a) <= code(b) { b } else { a }),
                        _ => (
                            if sign == Signedness::Signed { 0x80 } else { 0 },
                            if sign == Signedness::Signed { 0x7f } else { 0xff },
                        ),
                    };
                    if code(lo) > code(hi) {
                        continue;
                    }
                    let start: Vec<u8> = (0..n + off + 4).map(|_| rng.below(256) as u8).collect();
                    let (mut got, mut want) = (start.clone(), start.clone());
                    k.max_rows(sign, lo, hi, &rows[..r], &mut got[off..off + n]);
                    Scalar.max_rows(sign, lo, hi, &rows[..r], &mut want[off..off + n]);
                    assert_eq!(got, want, "{} max_rows {sign:?} rows {r} lo {lo} hi {hi} n {n} offset {off}", k.isa());
                }
                for r in 0..rows.len() {
                    let start: Vec<i32> = (0..n + off + 4).map(|_| rng.range_i64(-1 << 20, 1 << 20) as i32).collect();
                    let (mut got, mut want) = (start.clone(), start.clone());
                    k.sum_rows(sign, &rows[..r], &mut got[off..off + n]);
                    Scalar.sum_rows(sign, &rows[..r], &mut want[off..off + n]);
                    assert_eq!(got, want, "{} sum_rows {sign:?} rows {r} n {n} offset {off}", k.isa());
                }
            }
            let (mut got, mut want) = (vec![0xa5u8; n + off + 4], vec![0xa5u8; n + off + 4]);
            k.lut_bytes(&table, xs, &mut got[off..off + n]);
            Scalar.lut_bytes(&table, xs, &mut want[off..off + n]);
            assert_eq!(got, want, "{} lut_bytes n {n} offset {off}", k.isa());
        }
    }
}

/// Every test of this kit, as one `#[test]` per kernel in the family modules.
macro_rules! kernel_tests {
    ($isa:expr) => {
        use $crate::arch::testkit;
        #[test]
        fn quantize_matches_scalar() {
            if let Some(k) = testkit::family($isa) {
                testkit::quantize(k);
            }
        }
        #[test]
        fn fake_quantize_matches_scalar() {
            if let Some(k) = testkit::family($isa) {
                testkit::fake_quantize(k);
            }
        }
        #[test]
        fn nan_anywhere_sets_the_flag() {
            if let Some(k) = testkit::family($isa) {
                testkit::nan_flags(k);
            }
        }
        #[test]
        fn strided_walk_over_all_f32() {
            if let Some(k) = testkit::family($isa) {
                testkit::bit_pattern_walk(k);
            }
        }
        #[test]
        fn dequantize_every_code() {
            if let Some(k) = testkit::family($isa) {
                testkit::dequantize(k);
            }
        }
        #[test]
        fn pack_every_pair_of_nibbles() {
            if let Some(k) = testkit::family($isa) {
                testkit::pack_nibbles(k);
            }
        }
        #[test]
        fn unpack_every_byte() {
            if let Some(k) = testkit::family($isa) {
                testkit::unpack_nibbles(k);
            }
        }
        #[test]
        fn min_max_matches_scalar() {
            if let Some(k) = testkit::family($isa) {
                testkit::min_max(k);
            }
        }
        #[test]
        fn fake_quantize_zero_is_positive_and_mask_marks_clipping() {
            if let Some(k) = testkit::family($isa) {
                testkit::zero_is_positive_and_mask_marks_clipping(k);
            }
        }
        #[test]
        fn stochastic_rule_falls_back_to_scalar() {
            if let Some(k) = testkit::family($isa) {
                testkit::stochastic_rule_falls_back_to_scalar(k);
            }
        }
        #[test]
        fn byte_kernels_match_scalar() {
            if let Some(k) = testkit::family($isa) {
                testkit::byte_kernels(k);
            }
        }
        #[test]
        fn subnormals_are_kept_not_flushed() {
            if let Some(k) = testkit::family($isa) {
                testkit::subnormals_are_kept_not_flushed(k);
            }
        }
    };
}
pub(crate) use kernel_tests;
