//! Every NEON kernel against the scalar kernel of `generic`, bit for bit, on adversarial inputs:
//! exact ties `(k + 0.5) * s` and their 1–2 ulp neighbours at many magnitudes, values at and
//! just past the clamp bounds, ±0, subnormals, huge values, ±inf, quiet and signalling NaNs;
//! every length up to `4 * 4 + 3` and longer odd ones, misaligned starts, every rounding mode,
//! both scale operations, uniform and per-element parameters. Small domains are exhausted:
//! every i8/u8 code for dequantize, every byte for unpack, every pair of bytes for pack.
//!
//! Outputs at NaN inputs are unspecified by the kernel contract, so they are not compared; the
//! NaN flag always is.

use super::*;
use crate::arch::generic::Scalar;
use crate::kernels;
use quantproof_reference::rounding::round_f32;

/// The token. A missing NEON is a failure, never a skip: these tests exist to exercise it.
fn neon() -> &'static Neon {
    Neon::new().expect("NEON not detected: every AArch64 Linux CPU has it, so detection is broken")
}

/// SplitMix64: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / 16_777_216.0
    }
}

const OPS: [ScaleOp; 2] = [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal];

/// Powers of two (every `(k + 0.5) * s` is an exact tie), ordinary scales, and extremes: `1e-40`
/// is subnormal (its reciprocal overflows to inf, so `0 * inf` gives a NaN `v` from a non-NaN
/// `x`), `2.5e-30` makes `1/s` huge, `1e30` makes most `v` subnormal.
const SCALES: [f32; 10] = [1.0, 0.5, 0.0078125, 0.1, 3.7, 0.011_764_706, 1e-3, 2.5e-30, 1e-40, 1e30];

/// `(qmin, qmax, zero_point)` for i8 codes: full, restricted, extreme zero points, 4 and 2 bits.
const I8_RANGES: [(i32, i32, i32); 7] =
    [(-128, 127, 0), (-127, 127, 0), (-128, 127, -128), (-128, 127, 127), (-128, 127, -5), (-8, 7, 0), (-2, 1, 1)];
/// `(qmin, qmax, zero_point)` for u8 codes: full, extreme zero points, 4 bits, reduced range.
const U8_RANGES: [(i32, i32, i32); 6] =
    [(0, 255, 0), (0, 255, 128), (0, 255, 255), (0, 255, 37), (0, 15, 8), (0, 127, 64)];

const SNAN: u32 = 0x7F80_0001;
const NEG_NAN_PAYLOAD: u32 = 0xFFC0_1234;

fn nans() -> [f32; 4] {
    [f32::NAN, -f32::NAN, f32::from_bits(SNAN), f32::from_bits(NEG_NAN_PAYLOAD)]
}

/// Values with no relation to any scale: signed zeros, subnormals, the normal limits, huge values
/// and infinities.
fn specials() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        f32::from_bits(1),
        -f32::from_bits(1),
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MIN_POSITIVE.next_down(),
        1e-30,
        0.5,
        -0.5,
        0.49999997,
        -0.49999997,
        8388607.5,
        -8388607.5,
        8388608.0,
        16777217.0,
        3e38,
        -3e38,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ]
}

fn uniform(scale: f32, (qmin, qmax, z): (i32, i32, i32), op: ScaleOp) -> Uniform {
    let factor = match op {
        ScaleOp::Divide => scale,
        ScaleOp::MultiplyByReciprocal => 1.0 / scale,
    };
    Uniform { scale, factor, lo: (qmin - z) as f32, hi: (qmax - z) as f32, zero_point: z }
}

/// Every parameter set of a code family, for one scale operation.
fn param_sets(ranges: &[(i32, i32, i32)], op: ScaleOp) -> Vec<Uniform> {
    SCALES.iter().flat_map(|&s| ranges.iter().map(move |&r| uniform(s, r, op))).collect()
}

/// Inputs aimed at one parameter set: for `k` near 0, near the clamp bounds `lo`, `hi` and at
/// powers of two up to 2^24 (both signs), the points `k * s` and `(k + 0.5) * s` and their ±1
/// and ±2 ulp neighbours; then the specials and a few uniform draws over the range.
fn adversarial(u: &Uniform, rng: &mut Rng) -> Vec<f32> {
    let mut ks: Vec<f32> = (-4..=4).map(|k| k as f32).collect();
    for b in [u.lo, u.hi] {
        ks.extend((-2..=2).map(|d| b + d as f32));
    }
    for e in 0..=24 {
        let p = (1u32 << e) as f32;
        ks.extend([p, -p, p - 1.0, -(p - 1.0)]);
    }
    let mut v = Vec::new();
    for k in ks {
        for base in [k, k + 0.5, k - 0.5] {
            let x = base * u.scale;
            v.extend([x, x.next_up(), x.next_up().next_up(), x.next_down(), x.next_down().next_down()]);
        }
    }
    v.extend(specials());
    for _ in 0..32 {
        let t = u.lo - 10.0 + rng.unit() * (u.hi - u.lo + 20.0);
        v.push(t * u.scale);
    }
    v
}

/// A buffer of `len` elements starting `off` elements into its allocation, so that loads and
/// stores start at every alignment.
fn placed<T: Copy>(v: &[T], off: usize, fill: T) -> Vec<T> {
    let mut b = vec![fill; off];
    b.extend_from_slice(v);
    b
}

/// Lengths: every tail of the first blocks, then longer odd ones.
fn lengths() -> Vec<usize> {
    let mut l: Vec<usize> = (0..=4 * 4 + 3).collect();
    l.extend([31, 33, 47, 63, 65, 129, 1001]);
    l
}

/// A test case: inputs with their per-element parameters (one set per element), run at each of
/// the start offsets `offs`.
struct Case {
    x: Vec<f32>,
    p: Vec<Uniform>,
    offs: std::ops::Range<usize>,
}

/// Struct-of-arrays parameters that a `PerElement` can borrow.
struct Soa {
    scale: Vec<f32>,
    factor: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
    zero_point: Vec<i32>,
}

impl Soa {
    fn new(p: &[Uniform], off: usize) -> Soa {
        let pad = Uniform { scale: 7.0, factor: 7.0, lo: -1.0, hi: 1.0, zero_point: 3 };
        let p = placed(p, off, pad);
        Soa {
            scale: p.iter().map(|u| u.scale).collect(),
            factor: p.iter().map(|u| u.factor).collect(),
            lo: p.iter().map(|u| u.lo).collect(),
            hi: p.iter().map(|u| u.hi).collect(),
            zero_point: p.iter().map(|u| u.zero_point).collect(),
        }
    }
    fn params(&self, off: usize) -> Params<'_> {
        Params::PerElement(PerElement {
            scale: &self.scale[off..],
            factor: &self.factor[off..],
            lo: &self.lo[off..],
            hi: &self.hi[off..],
            zero_point: &self.zero_point[off..],
        })
    }
}

/// The cases for one family and operation. For each parameter set: its adversarial pool at two
/// rotations (so values meet different lanes of a block) and once more with NaNs mixed in, and
/// random draws from it at short lengths at every start offset. Then per-element cases mixing
/// all sets of the family element by element, at every length and offset.
fn cases(ranges: &[(i32, i32, i32)], op: ScaleOp, rng: &mut Rng) -> Vec<Case> {
    let sets = param_sets(ranges, op);
    let mut out = Vec::new();
    let mut pools = Vec::new();
    for (si, u) in sets.iter().enumerate() {
        let pool = adversarial(u, rng);
        let mut with_nan = pool.clone();
        with_nan.extend(nans());
        for (r, base) in [(0, &pool), (7, &pool), (3, &with_nan)] {
            let mut x = base.clone();
            x.rotate_left(r);
            let off = (si + r) % 4;
            out.push(Case { p: vec![*u; x.len()], x, offs: off..off + 1 });
        }
        for len in [0, 1, 3, 4, 5, 15, 16, 17, 19, 33] {
            let src = if rng.below(2) == 0 { &pool } else { &with_nan };
            let x: Vec<f32> = (0..len).map(|_| rng.pick(src)).collect();
            out.push(Case { p: vec![*u; len], x, offs: 0..4 });
        }
        pools.push(with_nan);
    }
    for len in lengths() {
        for _ in 0..4 {
            let (mut x, mut p) = (Vec::new(), Vec::new());
            for _ in 0..len {
                let s = rng.below(sets.len());
                x.push(rng.pick(&pools[s]));
                p.push(sets[s]);
            }
            out.push(Case { x, p, offs: 0..4 });
        }
    }
    out
}

fn rules() -> impl Iterator<Item = Rule> {
    OPS.into_iter().flat_map(|op| RoundingMode::DETERMINISTIC.into_iter().map(move |mode| Rule { op, mode }))
}

/// Runs `f(x, params, off, kind)` with the inputs and parameters placed at each of the case's
/// start offsets, with uniform parameters when the case has one set, and always with
/// per-element ones too.
fn each_layout(case: &Case, mut f: impl FnMut(&[f32], Params<'_>, usize, &str)) {
    for off in case.offs.clone() {
        let x = placed(&case.x, off, 1.0);
        let soa = Soa::new(&case.p, off);
        if let Some(u) = case.p.first() {
            if case.p.iter().all(|q| q == u) {
                f(&x[off..], Params::Uniform(*u), off, "uniform");
            }
        } else {
            f(&x[off..], Params::Uniform(uniform(1.0, (-128, 127, 0), ScaleOp::Divide)), off, "uniform");
        }
        f(&x[off..], soa.params(off), off, "per-element");
    }
}

fn check_quantize<T: Copy + PartialEq + std::fmt::Debug + Default>(
    ranges: &[(i32, i32, i32)],
    run: impl Fn(&dyn Kernels, &[f32], Params<'_>, Rule, &mut [T]) -> bool,
) {
    let mut rng = Rng(0x5EED);
    let mut checked = 0usize;
    for op in OPS {
        for case in cases(ranges, op, &mut rng) {
            for rule in rules().filter(|r| r.op == op) {
                each_layout(&case, |x, p, off, kind| {
                    let n = x.len();
                    let mut a = placed(&vec![T::default(); n], off + 1, T::default());
                    let mut b = a.clone();
                    let na = run(neon(), x, p, rule, &mut a[off + 1..]);
                    let nb = run(&Scalar, x, p, rule, &mut b[off + 1..]);
                    assert_eq!(na, nb, "NaN flag, {rule:?} {kind} len {n} off {off}");
                    assert_eq!(nb, x.iter().any(|v| v.is_nan()));
                    for i in 0..n {
                        if !x[i].is_nan() {
                            assert_eq!(
                                a[off + 1 + i],
                                b[off + 1 + i],
                                "x = {:e} ({:#x}) at {i}, {rule:?} {kind} len {n} off {off}, params {:?}",
                                x[i],
                                x[i].to_bits(),
                                case.p[i]
                            );
                        }
                    }
                    checked += n;
                });
            }
        }
    }
    assert!(checked > 1_000_000, "too few elements compared: {checked}");
}

#[test]
fn quantize_i8_matches_scalar() {
    check_quantize::<i8>(&I8_RANGES, |k, x, p, r, o| k.quantize_i8(x, p, r, o));
}

#[test]
fn quantize_u8_matches_scalar() {
    check_quantize::<u8>(&U8_RANGES, |k, x, p, r, o| k.quantize_u8(x, p, r, o));
}

#[test]
fn fake_quantize_matches_scalar_bit_for_bit() {
    let mut rng = Rng(0xFA4E);
    let mut checked = 0usize;
    let ranges: Vec<_> = I8_RANGES.iter().chain(&U8_RANGES).copied().collect();
    for op in OPS {
        for case in cases(&ranges, op, &mut rng) {
            for rule in rules().filter(|r| r.op == op) {
                each_layout(&case, |x, p, off, kind| {
                    let n = x.len();
                    for with_mask in [true, false] {
                        let mut ya = vec![f32::from_bits(0x7FC0_DEAD); n + 3];
                        let mut yb = ya.clone();
                        let (mut ma, mut mb) = (vec![true; n + 3], vec![true; n + 3]);
                        let (fa, fb) = if with_mask {
                            (
                                neon().fake_quantize(x, p, rule, &mut ya[3..], Some(&mut ma[3..])),
                                Scalar.fake_quantize(x, p, rule, &mut yb[3..], Some(&mut mb[3..])),
                            )
                        } else {
                            (
                                neon().fake_quantize(x, p, rule, &mut ya[3..], None),
                                Scalar.fake_quantize(x, p, rule, &mut yb[3..], None),
                            )
                        };
                        assert_eq!(fa, fb, "NaN flag, {rule:?} {kind} len {n} off {off}");
                        for i in 0..n {
                            if x[i].is_nan() {
                                continue;
                            }
                            let (a, b) = (ya[3 + i], yb[3 + i]);
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "x = {:e} at {i}: neon {a:e} scalar {b:e}, {rule:?} {kind} len {n} off {off}, {:?}",
                                x[i],
                                case.p[i]
                            );
                            if with_mask {
                                assert_eq!(ma[3 + i], mb[3 + i], "mask, x = {:e}, {rule:?} {:?}", x[i], case.p[i]);
                            }
                        }
                        // Nothing is written outside the span.
                        assert_eq!(ya[..3].iter().map(|v| v.to_bits()).collect::<Vec<_>>(), [0x7FC0_DEAD; 3]);
                        assert_eq!(ma[..3], [true; 3]);
                        checked += n;
                    }
                });
            }
        }
    }
    assert!(checked > 1_000_000, "too few elements compared: {checked}");
}

#[test]
fn fake_quantize_zero_is_positive_and_mask_marks_clipping() {
    // round(-0.3) is -0.0: the kernel must return +0.0 (as the reference's integer path does),
    // including when the zero is the clamp bound itself (u8 with z = 0, i8 with z = 127).
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
            assert!(!neon().fake_quantize(&x, Params::Uniform(u), Rule { op, mode }, &mut y, Some(&mut m)));
            assert!(y.iter().all(|v| v.to_bits() == 0), "{mode:?} {range:?}: {y:?}");
            assert!(m.iter().all(|&b| b));
        }
    }
    // Past the bounds: clipped, mask false; inf saturates.
    let u = uniform(0.5, (-128, 127, 0), ScaleOp::Divide);
    let x = [
        64.0f32,
        -64.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        63.5,
        -64.0,
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        6.0,
        7.0,
        8.0,
        9.0,
        10.0,
    ];
    let mut y = [0.0f32; 17];
    let mut m = [true; 17];
    neon().fake_quantize(
        &x,
        Params::Uniform(u),
        Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven },
        &mut y,
        Some(&mut m),
    );
    assert_eq!(&y[..6], &[63.5, -64.0, 63.5, -64.0, 63.5, -64.0]);
    assert_eq!(&m[..6], &[false, false, false, false, true, true]);
}

#[test]
fn quantize_saturates_and_flags_nan_in_every_lane() {
    let u = uniform(0.1, (-128, 127, 0), ScaleOp::Divide);
    let rule = Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven };
    for len in [16, 19, 32] {
        for at in 0..len {
            for nan in nans() {
                let mut x = vec![1.0f32; len];
                x[at] = nan;
                let mut q = vec![0i8; len];
                assert!(neon().quantize_i8(&x, Params::Uniform(u), rule, &mut q), "NaN at {at} of {len} missed");
                assert!(q.iter().enumerate().all(|(i, &v)| i == at || v == 10));
            }
        }
    }
    let x = [
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        12.7,
        -12.8,
        12.75,
        -12.85,
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        0.05,
        -0.05,
    ];
    let mut q = [0i8; 16];
    assert!(!neon().quantize_i8(&x, Params::Uniform(u), rule, &mut q));
    assert_eq!(q, [127, -128, 127, -128, 127, -128, 127, -128, 127, -128, 0, 0, 0, 0, 0, 0]);
}

/// Every i8 / u8 code, rotated through every lane and start offset, under every parameter set
/// of its family (uniform) and under mixed sets (per element).
fn check_dequantize<T: Code8 + std::fmt::Debug>(
    codes: &[T],
    ranges: &[(i32, i32, i32)],
    run: impl Fn(&dyn Kernels, &[T], Params<'_>, &mut [f32]),
) {
    let mut rng = Rng(0xDE0);
    let sets = param_sets(ranges, ScaleOp::Divide);
    let mut cases: Vec<(Vec<T>, Vec<Uniform>)> = Vec::new();
    for u in &sets {
        for r in [0, 1, 7, 15] {
            let mut q = codes.to_vec();
            q.rotate_left(r);
            cases.push((q, vec![*u; codes.len()]));
        }
    }
    for len in lengths().into_iter().chain([256]) {
        for _ in 0..4 {
            let q: Vec<T> = (0..len).map(|_| rng.pick(codes)).collect();
            let p: Vec<Uniform> = (0..len).map(|_| rng.pick(&sets)).collect();
            cases.push((q, p));
        }
    }
    for (q, p) in &cases {
        let n = q.len();
        for off in 0..4 {
            let qp = placed(q, off, codes[0]);
            let soa = Soa::new(p, off);
            let mut layouts = vec![soa.params(off)];
            if p.windows(2).all(|w| w[0] == w[1]) && n > 0 {
                layouts.push(Params::Uniform(p[0]));
            }
            for params in layouts {
                let mut a = vec![f32::NAN; n + 1];
                let mut b = vec![f32::NAN; n + 1];
                run(neon(), &qp[off..], params, &mut a[1..]);
                run(&Scalar, &qp[off..], params, &mut b[1..]);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "len {n} off {off}");
            }
        }
    }
}

#[test]
fn dequantize_i8_every_code() {
    let codes: Vec<i8> = (i8::MIN..=i8::MAX).collect();
    check_dequantize(&codes, &I8_RANGES, |k, q, p, o| k.dequantize_i8(q, p, o));
}

#[test]
fn dequantize_u8_every_code() {
    let codes: Vec<u8> = (u8::MIN..=u8::MAX).collect();
    check_dequantize(&codes, &U8_RANGES, |k, q, p, o| k.dequantize_u8(q, p, o));
}

#[test]
fn pack_every_pair_of_codes() {
    // Every (even, odd) pair of i8 values (the kernels keep the low four bits of any code).
    let codes: Vec<i8> = (0..=u16::MAX).flat_map(|v| [(v & 0xFF) as u8 as i8, (v >> 8) as u8 as i8]).collect();
    let mut a = vec![0u8; codes.len() / 2];
    let mut b = vec![0u8; codes.len() / 2];
    neon().pack_nibbles(&codes, &mut a);
    Scalar.pack_nibbles(&codes, &mut b);
    assert_eq!(a, b);
    // Every length and start offset, on the nibble range [-8, 15].
    let nibbles: Vec<i8> = (0..48).map(|i| (i % 24) as i8 - 8).collect();
    let mut rng = Rng(0xBACC);
    for bytes in lengths() {
        for off in 0..4 {
            let c: Vec<i8> = (0..2 * bytes).map(|_| rng.pick(&nibbles)).collect();
            let c = placed(&c, off, 0);
            let mut a = vec![0xAAu8; bytes + 1];
            let mut b = a.clone();
            neon().pack_nibbles(&c[off..], &mut a[1..]);
            Scalar.pack_nibbles(&c[off..], &mut b[1..]);
            assert_eq!(a, b, "{bytes} bytes, off {off}");
        }
    }
}

#[test]
fn unpack_every_byte() {
    let all: Vec<u8> = (0..=255).collect();
    for signed in [false, true] {
        for r in 0..16 {
            for off in 0..4 {
                let mut bytes = all.clone();
                bytes.rotate_left(r);
                let bytes = placed(&bytes, off, 0x5A);
                let n = bytes.len() - off;
                let mut a = vec![0x55i8; 2 * n + 1];
                let mut b = a.clone();
                neon().unpack_nibbles(&bytes[off..], signed, &mut a[1..]);
                Scalar.unpack_nibbles(&bytes[off..], signed, &mut b[1..]);
                assert_eq!(a, b, "signed {signed}, rotation {r}, off {off}");
            }
        }
        for len in lengths() {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut a = vec![0i8; 2 * len];
            let mut b = vec![0i8; 2 * len];
            neon().unpack_nibbles(&bytes, signed, &mut a);
            Scalar.unpack_nibbles(&bytes, signed, &mut b);
            assert_eq!(a, b, "signed {signed}, len {len}");
        }
    }
    // Signed nibbles are sign-extended, unsigned ones are not.
    let mut out = [0i8; 32];
    neon().unpack_nibbles(&[0x8F; 16], true, &mut out);
    assert!(out.chunks(2).all(|p| p == [-1, -8]));
    neon().unpack_nibbles(&[0x8F; 16], false, &mut out);
    assert!(out.chunks(2).all(|p| p == [15, 8]));
}

/// Arrays for the reductions: random picks from the specials, NaNs and ordinary values, at every
/// length and offset, with NaN in a given share of the elements.
fn reduction_inputs(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut pool = specials();
    pool.extend((-20..20).map(|i| i as f32 * 0.37));
    let mut out = Vec::new();
    for len in lengths() {
        for nan_share in [0, 1, 4] {
            for _ in 0..8 {
                out.push(
                    (0..len)
                        .map(|_| if rng.below(8) < nan_share { rng.pick(&nans()) } else { rng.pick(&pool) })
                        .collect(),
                );
            }
        }
    }
    // A single extreme value (or a signalling NaN) in each position of a block of zeros, every
    // value alone, and all NaN.
    for len in [16, 17, 35] {
        for at in 0..len {
            for v in [f32::INFINITY, f32::NEG_INFINITY, -1e-45, 3.0, f32::from_bits(SNAN), -f32::NAN] {
                let mut x = vec![0.0f32; len];
                x[at] = v;
                out.push(x);
            }
        }
        out.push(vec![f32::from_bits(SNAN); len]);
        out.push(vec![f32::NEG_INFINITY; len]);
        out.push(vec![-0.0; len]);
    }
    out
}

#[test]
fn min_max_and_abs_max_match_scalar() {
    let mut rng = Rng(0x3131);
    for x in reduction_inputs(&mut rng) {
        for off in 0..4 {
            let xp = placed(&x, off, f32::NAN);
            let x = &xp[off..];
            let (a, b) = (neon().min_max(x), Scalar.min_max(x));
            // == on floats: equal values, ±0 interchangeable (the contract leaves them unordered).
            assert!(a.0 == b.0 && a.1 == b.1 && a.2 == b.2, "min_max {x:?}: neon {a:?} scalar {b:?}");
            let (a, b) = (neon().abs_max(x), Scalar.abs_max(x));
            assert!(a.0 == b.0 && a.1 == b.1, "abs_max {x:?}: neon {a:?} scalar {b:?}");
            assert!(a.0.is_sign_positive());
        }
    }
    assert_eq!(neon().min_max(&[]), (f32::INFINITY, f32::NEG_INFINITY, false));
    assert_eq!(neon().abs_max(&[]), (0.0, false));
}

/// `round4::<MODE>` against `round_f32` on the given bit patterns.
fn check_round_bits(bits: impl Iterator<Item = u32>) -> usize {
    fn one<const MODE: u8>(mode: RoundingMode, v: [f32; 4]) {
        // SAFETY: reads and writes four f32 from and to four-element arrays.
        let got = unsafe {
            let mut o = [0f32; 4];
            vst1q_f32(o.as_mut_ptr(), round4::<MODE>(vld1q_f32(v.as_ptr())));
            o
        };
        for (g, x) in got.iter().zip(v) {
            let want = round_f32(x, mode, 0);
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "{mode:?}({x:e} = {:#x}): neon {g:e} scalar {want:e}",
                x.to_bits()
            );
        }
    }
    let mut n = 0;
    let mut buf = [0f32; 4];
    for (i, b) in bits.enumerate() {
        buf[i % 4] = f32::from_bits(b);
        if i % 4 == 3 {
            one::<HALF_EVEN>(RoundingMode::HalfToEven, buf);
            one::<HALF_AWAY>(RoundingMode::HalfAwayFromZero, buf);
            one::<HALF_UP>(RoundingMode::HalfUp, buf);
            one::<FLOOR>(RoundingMode::Floor, buf);
            one::<TOWARD_ZERO>(RoundingMode::TowardZero, buf);
            n += 4;
        }
    }
    n
}

#[test]
fn round_matches_scalar_near_every_small_tie() {
    // ±8 ulps around k and k + 0.5 for every |k| < 2^12, and around the large ties up to 2^23.
    let mut centres: Vec<f32> = (-4096..4096).flat_map(|k| [k as f32, k as f32 + 0.5]).collect();
    for e in 12..24 {
        let p = (1u32 << e) as f32;
        centres.extend([p - 0.5, p + 0.5, p - 1.5, -(p - 0.5), -(p + 0.5), p, -p]);
    }
    let bits = centres.into_iter().flat_map(|c| {
        let b = c.to_bits();
        (0..16u32).map(move |d| b.wrapping_add(d).wrapping_sub(8))
    });
    assert!(check_round_bits(bits) > 200_000);
}

#[test]
fn round_matches_scalar_on_a_sweep_of_all_bit_patterns() {
    // Every 1021st pattern (~4.2 million values) covers every exponent, both signs, subnormals,
    // infinities and NaNs.
    let bits = (0..=u32::MAX / 1021).map(|i| i * 1021).chain([0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, SNAN]);
    assert!(check_round_bits(bits) > 4_000_000);
}

#[test]
#[ignore = "exhaustive over 2^32 patterns: about 20 minutes under qemu (passed there)"]
fn round_matches_scalar_on_every_f32() {
    assert_eq!(check_round_bits(0..=u32::MAX), 1 << 32);
}

#[test]
fn neon_is_detected_and_dispatched() {
    assert_eq!(neon().isa(), Isa::Neon);
    let k = kernels::table(Isa::Neon).expect("table(Neon) must hand out the NEON kernels");
    assert_eq!(k.isa(), Isa::Neon);
    assert!(crate::isa::available().contains(&Isa::Neon));
}

#[test]
fn stochastic_rule_falls_back_to_scalar() {
    // Kernels never receive stochastic rounding from the planner; if they do, they must still
    // give the scalar answer.
    let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.3 - 5.0).collect();
    let u = uniform(0.5, (-128, 127, 0), ScaleOp::Divide);
    let rule = Rule { op: ScaleOp::Divide, mode: RoundingMode::Stochastic { seed: 9 } };
    let (mut a, mut b) = (vec![0i8; 37], vec![0i8; 37]);
    neon().quantize_i8(&x, Params::Uniform(u), rule, &mut a);
    Scalar.quantize_i8(&x, Params::Uniform(u), rule, &mut b);
    assert_eq!(a, b);
    let (mut ya, mut yb) = (vec![0f32; 37], vec![0f32; 37]);
    neon().fake_quantize(&x, Params::Uniform(u), rule, &mut ya, None);
    Scalar.fake_quantize(&x, Params::Uniform(u), rule, &mut yb, None);
    assert_eq!(ya, yb);
}

#[test]
fn subnormals_are_kept_not_flushed() {
    // The comparisons above would not notice a flush-to-zero that hit scalar and vector code
    // alike, so check exact subnormal results directly: (q - 0) * 2^-149 is the subnormal with
    // bit pattern q, and 3 * 2^-149 / 2^-149 is 3.
    let tiny = f32::from_bits(1);
    let q: Vec<i8> = (1..=19).collect();
    let mut y = [0f32; 19];
    neon().dequantize_i8(&q, Params::Uniform(uniform(tiny, (-128, 127, 0), ScaleOp::Divide)), &mut y);
    assert!(y.iter().zip(1u32..).all(|(v, b)| v.to_bits() == b), "{y:?}");
    let x = [f32::from_bits(3); 16];
    let mut c = [0i8; 16];
    neon().quantize_i8(
        &x,
        Params::Uniform(uniform(tiny, (-128, 127, 0), ScaleOp::Divide)),
        Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven },
        &mut c,
    );
    assert_eq!(c, [3; 16]);
    let mut f = [0f32; 16];
    neon().fake_quantize(
        &x,
        Params::Uniform(uniform(tiny, (-128, 127, 0), ScaleOp::Divide)),
        Rule { op: ScaleOp::Divide, mode: RoundingMode::HalfToEven },
        &mut f,
        None,
    );
    assert!(f.iter().all(|v| v.to_bits() == 3));
    let (lo, hi, _) = neon().min_max(&[f32::from_bits(5); 16]);
    assert_eq!((lo.to_bits(), hi.to_bits()), (5, 5));
}
