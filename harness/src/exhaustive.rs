//! # Exhaustive proofs where the domain is small
//!
//! Random testing samples; where the domain is small enough we enumerate it. Each function here
//! checks one property over a whole domain and returns a [`Proof`]: how many instances were
//! checked, how many failed, and the first few failures spelled out. `tests/exhaustive.rs` asserts
//! them; the same functions can back a CLI report.
//!
//! ## Round trip: `quantize(dequantize(q)) == q`
//!
//! For a code `q` with zero point `z`, `dequantize(q) = RN((q - z) s)` depends only on
//! `k = q - z`, and `quantize` returns `q` exactly when `round(RN(k s) op s) == k`. So
//! [`round_trip_k`], which checks every `k` in `[-(2^16 - 1), 2^16 - 1]`, proves the round trip
//! for **every code and every zero point of every width up to 16 bits** at that scale and rule.
//! [`round_trip_width`] then runs the public `quantize_codes` path over every code of a width,
//! for every zero point (widths up to 8 bits) or a dense sample of them ([`zero_point_sample`],
//! wider widths, where all `2^b x 2^b` pairs would cost up to 4 billion quantizations and the
//! `k` sweep already covers them); [`round_trip_typed`] uses the `i8`/`u8` and packed 4-bit APIs.
//!
//! What holds (measured by these functions, asserted by the tests):
//!
//! * **Round-to-nearest modes** (half-even, half-away, half-up), both scale ops: the round trip
//!   is exact. `RN(k s) op s` is within `|k| 2^-23` of `k` (two roundings of relative error
//!   `2^-24` each, or three with the reciprocal), far less than the `1/2` a nearest mode
//!   tolerates for `|k| < 2^16`. This needs `k s` to be a normal float (scales from `1e-20` to
//!   `1e20` at 16 bits are).
//! * **Floor and toward-zero** are *not* round-trip exact in general. When the computed
//!   `RN(k s) op s` lands one ulp on the wrong side of `k` (below it for floor; toward zero for
//!   toward-zero), the mode takes it to the neighbouring code. Measured over every `k` up to
//!   `2^16 - 1` at scale 7.77: floor fails for 1,804 values of `k` dividing and 43,636 with the
//!   reciprocal; at scale 0.1 for 9,829 either way; at 1/3 toward-zero never fails. What does
//!   hold: the result is `k` or the neighbour in the rounding direction (`k - 1` for floor,
//!   `k - sign(k)` for toward-zero), never further ([`RoundTrip::off_by_one`]); and for
//!   power-of-two scales, where every step is exact, the round trip is exact in every mode.
//!
//! ## Monotonicity, idempotence, the round-error bound
//!
//! [`sweep`] builds a sorted set of inputs: for every code boundary (`k + 1/2` for the nearest
//! modes, `k` for the directed ones) across the whole range and one code past it, the 33 floats
//! around `RN(t s)` (5 for ranges of more than 256 codes) and the exact ties of both scale ops;
//! plus every 2^17-th f32 bit pattern from `-f32::MAX` to `f32::MAX`, the infinities, both zeros
//! and subnormals. On it:
//!
//! * [`Sweep::monotone`]: `x <= y` implies `q(x) <= q(y)`, for every deterministic mode
//!   (stochastic rounding is monotone only in expectation and is excluded);
//! * [`Sweep::idempotent`]: `q(dq(q(x))) == q(x)` and `fq(fq(x)) == fq(x)` bit for bit;
//! * [`Sweep::round_error_bound`]: `|x - dq(q(x))| <= analysis::round_error_bound(x, s)` for
//!   every `x` inside `[dq(qmin), dq(qmax)]`, under the nearest modes.
//!
//! ## Kernels on every ISA
//!
//! [`kernel_dequantize_every_code`] dequantizes every `i8` and `u8` code under every zero point
//! of the type on an `Engine` and compares bits with the reference, then quantizes the results
//! back on the engine; [`kernel_nibble_pairs`] packs every pair of 4-bit codes and unpacks every
//! byte, through the ISA's nibble kernels and through the packed public API.

use quantproof_optimized::ops::Engine;
use quantproof_reference::analysis;
use quantproof_reference::error::Result;
use quantproof_reference::pack::{self, Int4};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{self as refq, PreparedScale, QuantizeRule, ScaleOp};
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::{CodeRange, QType};
use std::fmt;

/// The outcome of checking a property over a domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Proof {
    pub name: String,
    /// Instances checked.
    pub checked: u64,
    /// Instances where the property failed.
    pub failures: u64,
    /// The first few failures, spelled out.
    pub examples: Vec<String>,
}

impl Proof {
    pub fn new(name: impl Into<String>) -> Proof {
        Proof { name: name.into(), checked: 0, failures: 0, examples: Vec::new() }
    }

    /// Records one instance; `example` is only evaluated for the first few failures.
    pub fn record(&mut self, ok: bool, example: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures += 1;
            if self.examples.len() < 5 {
                self.examples.push(example());
            }
        }
    }

    /// Adds another proof's counts into this one.
    pub fn absorb(&mut self, other: Proof) {
        self.checked += other.checked;
        self.failures += other.failures;
        for e in other.examples {
            if self.examples.len() < 5 {
                self.examples.push(format!("[{}] {e}", other.name));
            }
        }
    }

    pub fn holds(&self) -> bool {
        self.failures == 0 && self.checked > 0
    }

    /// `Ok` when the property held on a non-empty domain, else the report.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.holds() {
            Ok(())
        } else {
            Err(self.to_string())
        }
    }
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} checked, {} failed", self.name, self.checked, self.failures)?;
        for e in &self.examples {
            write!(f, "\n    {e}")?;
        }
        Ok(())
    }
}

/// Scales the proofs run at: awkward decimals, a power of two, tiny and large magnitudes.
pub const SCALES: [f32; 9] = [0.1, 1.0 / 3.0, 1.0 / 1024.0, 1e-3, 7.77, 1e-20, 0.0123, 1.0 / 255.0, 1e20];

/// The three round-to-nearest modes under both scale ops (includes both profiles' rules:
/// PyTorch's `x * RN(1/s)` and ONNX Runtime's `x / s`, ties to even).
pub fn nearest_rules() -> Vec<QuantizeRule> {
    rules_of(&[RoundingMode::HalfToEven, RoundingMode::HalfAwayFromZero, RoundingMode::HalfUp])
}

/// Floor and toward-zero under both scale ops.
pub fn directed_rules() -> Vec<QuantizeRule> {
    rules_of(&[RoundingMode::Floor, RoundingMode::TowardZero])
}

/// Every deterministic mode under both scale ops.
pub fn deterministic_rules() -> Vec<QuantizeRule> {
    rules_of(&RoundingMode::DETERMINISTIC)
}

fn rules_of(modes: &[RoundingMode]) -> Vec<QuantizeRule> {
    modes
        .iter()
        .flat_map(|&m| [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal].map(|op| QuantizeRule::new(op, m)))
        .collect()
}

fn rule_name(r: QuantizeRule) -> String {
    format!("{}/{}", r.scale_op.name(), r.rounding.name())
}

/// How a round trip's failures are distributed.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTrip {
    pub proof: Proof,
    /// Failures where the result was the neighbour in the rounding direction (`k - 1` for floor,
    /// `k - sign(k)` for toward-zero; for nearest modes, any neighbour).
    pub off_by_one: u64,
}

/// The neighbour a directed mode can fall to from `k`: `k - 1` (floor), `k - sign(k)`
/// (toward zero), or either neighbour (nearest).
fn expected_slip(mode: RoundingMode, k: i64, got: i64) -> bool {
    match mode {
        RoundingMode::Floor => got == k - 1,
        RoundingMode::TowardZero => got == k - k.signum(),
        _ => (got - k).abs() == 1,
    }
}

/// Checks `round(RN(k s) op s) == k` for every `k` in `[-kmax, kmax]` (see the module docs: at
/// `kmax = 2^16 - 1` this is the round trip of every code and zero point up to 16 bits).
pub fn round_trip_k(scale: f32, rule: QuantizeRule, kmax: i32) -> Result<RoundTrip> {
    let prepared = PreparedScale::new(0, scale, rule.scale_op)?;
    // k = q - z itself is no code (it spans 17 bits): the round trip is checked before the clamp.
    let mut proof = Proof::new(format!("round trip k in [-{kmax}, {kmax}], scale {scale:e}, {}", rule_name(rule)));
    let mut off_by_one = 0;
    for k in -kmax..=kmax {
        let x = refq::dequantize_value(k, scale, 0);
        let got = refq::unclamped_code(x, &prepared, 0, rule, k.unsigned_abs() as u64) as i64;
        let ok = got == k as i64;
        if !ok && expected_slip(rule.rounding, k as i64, got) {
            off_by_one += 1;
        }
        proof.record(ok, || format!("k = {k}: x = {x:e} ({:#010x}) quantizes to {got}", x.to_bits()));
    }
    Ok(RoundTrip { proof, off_by_one })
}

/// Zero points for a range: all of them when there are at most `all_up_to`, else the two ends,
/// the middle, 0 when inside, and `extra` more spread evenly (a documented dense sample).
pub fn zero_point_sample(range: CodeRange, all_up_to: u64, extra: usize) -> Vec<i32> {
    let (lo, hi) = (range.qmin() as i64, range.qmax() as i64);
    if range.levels() <= all_up_to {
        return (range.qmin()..=range.qmax()).collect();
    }
    let mut v = vec![lo, hi, (lo + hi) / 2];
    if range.contains(0) {
        v.push(0);
    }
    for i in 1..=extra as i64 {
        v.push(lo + (hi - lo) * i / (extra as i64 + 1));
    }
    v.sort_unstable();
    v.dedup();
    v.into_iter().map(|z| z as i32).collect()
}

/// The round trip through `quantize_codes`: every code of `qtype`'s full range, for each zero
/// point in `zero_points`, dequantized with `dequantize_value` then quantized back.
pub fn round_trip_width(qtype: QType, zero_points: &[i32], scale: f32, rule: QuantizeRule) -> Result<RoundTrip> {
    let range = qtype.full_range();
    let codes: Vec<i32> = (range.qmin()..=range.qmax()).collect();
    let n = codes.len();
    let mut proof = Proof::new(format!(
        "round trip {} ({} zero points), scale {scale:e}, {}",
        qtype.name(),
        zero_points.len(),
        rule_name(rule)
    ));
    let mut off_by_one = 0;
    let mut x = vec![0f32; n];
    let mut back = vec![0i32; n];
    for &z in zero_points {
        let p = QuantParams::per_tensor(scale, z, range);
        for (xi, &q) in x.iter_mut().zip(&codes) {
            *xi = refq::dequantize_value(q, scale, z);
        }
        refq::quantize_codes(&x, &[n], &p, rule, &mut back)?;
        for i in 0..n {
            let (q, got) = (codes[i], back[i]);
            let ok = q == got;
            if !ok && expected_slip(rule.rounding, (q - z) as i64, (got - z) as i64) {
                off_by_one += 1;
            }
            proof.record(ok, || format!("q = {q}, z = {z}: x = {:e} quantizes to {got}", x[i]));
        }
    }
    Ok(RoundTrip { proof, off_by_one })
}

/// The round trip through the typed APIs: `dequantize::<i8>` / `<u8>` then `quantize` for every
/// code and every zero point, and for 4-bit codes `dequantize_packed4` then `quantize_packed4`
/// (every code, every zero point, odd lengths included).
pub fn round_trip_typed(scale: f32, rule: QuantizeRule) -> Result<Proof> {
    fn typed<C: quantproof_reference::scheme::Code>(
        qtype: QType,
        scale: f32,
        rule: QuantizeRule,
        proof: &mut Proof,
    ) -> Result<()> {
        let range = qtype.full_range();
        let codes: Vec<C> = (range.qmin()..=range.qmax()).map(C::from_code).collect();
        let n = codes.len();
        let (mut x, mut back) = (vec![0f32; n], vec![C::default(); n]);
        for z in range.qmin()..=range.qmax() {
            let p = QuantParams::per_tensor(scale, z, range);
            refq::dequantize(&codes, &[n], &p, &mut x)?;
            refq::quantize(&x, &[n], &p, rule, &mut back)?;
            for i in 0..n {
                proof.record(codes[i] == back[i], || {
                    format!("{} q = {:?}, z = {z} -> {:?}", qtype.name(), codes[i], back[i])
                });
            }
        }
        Ok(())
    }
    let mut proof = Proof::new(format!("typed round trip i8, u8, i4, u4, scale {scale:e}, {}", rule_name(rule)));
    typed::<i8>(QType::I8, scale, rule, &mut proof)?;
    typed::<u8>(QType::U8, scale, rule, &mut proof)?;
    for kind in [Int4::Signed, Int4::Unsigned] {
        let range = kind.qtype().full_range();
        // Every code, then once more without the last, for an odd length.
        let all: Vec<i32> = (range.qmin()..=range.qmax()).collect();
        for codes in [&all[..], &all[..all.len() - 1]] {
            let n = codes.len();
            let mut packed = vec![0u8; pack::packed_len(n)];
            pack::pack4(codes, kind, &mut packed)?;
            for z in range.qmin()..=range.qmax() {
                let p = QuantParams::per_tensor(scale, z, range);
                let mut x = vec![0f32; n];
                refq::dequantize_packed4(&packed, &[n], &p, kind, &mut x)?;
                let mut again = vec![0u8; packed.len()];
                refq::quantize_packed4(&x, &[n], &p, rule, kind, &mut again)?;
                proof.record(again == packed, || format!("{} z = {z}: {packed:02x?} -> {again:02x?}", kind.name()));
            }
        }
    }
    Ok(proof)
}

/// The sorted input sweep for a range, scale and zero point (see the module docs).
pub fn sweep(range: CodeRange, scale: f32, zero_point: i32) -> Vec<f32> {
    sweep_strided(range, scale, zero_point, 1)
}

/// [`sweep`] around every `stride`-th code boundary only (and always the two past each end of
/// the range), for the widest ranges when time is short.
pub fn sweep_strided(range: CodeRange, scale: f32, zero_point: i32, stride: usize) -> Vec<f32> {
    // Ulps walked either side of each boundary: 16 for ranges of up to 256 codes, 2 above (a
    // 16-bit range has 131072 boundaries).
    let w: i32 = if range.levels() <= 256 { 16 } else { 2 };
    let s = scale as f64;
    let (lo, hi) = (range.qmin() as i64 - zero_point as i64, range.qmax() as i64 - zero_point as i64);
    let mut v = Vec::new();
    let around = |x: f32, v: &mut Vec<f32>| {
        let mut y = x;
        for _ in 0..w {
            y = y.next_down();
        }
        for _ in 0..=2 * w {
            v.push(y);
            y = y.next_up();
        }
    };
    let stride = stride.max(1) as i64;
    for k in (lo - 1)..=(hi + 1) {
        if (k - lo) % stride != 0 && k > lo && k < hi {
            continue;
        }
        for t in [k as f64, k as f64 + 0.5] {
            around((t * s) as f32, &mut v);
            for op in [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal] {
                v.push(crate::equiv::gen::tie_input(t as f32, scale, op));
            }
        }
    }
    // Coarse walk over every finite f32 (both signs), and the special values.
    let mut bits = 0u32;
    while bits < f32::INFINITY.to_bits() {
        let x = f32::from_bits(bits);
        v.push(x);
        v.push(-x);
        bits += 1 << 17;
    }
    v.extend([f32::MAX, -f32::MAX, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40]);
    v.retain(|x| !x.is_nan());
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup_by(|a, b| a.to_bits() == b.to_bits());
    v
}

fn quantize_all(xs: &[f32], p: &QuantParams, rule: QuantizeRule) -> Result<Vec<i32>> {
    let mut q = vec![0i32; xs.len()];
    refq::quantize_codes(xs, &[xs.len()], p, rule, &mut q)?;
    Ok(q)
}

/// A range, scale and zero point with its [`sweep`] built once, for the sweep properties.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub range: CodeRange,
    pub scale: f32,
    pub zero_point: i32,
    /// The sorted inputs.
    pub xs: Vec<f32>,
}

impl Sweep {
    pub fn new(range: CodeRange, scale: f32, zero_point: i32) -> Sweep {
        Sweep::strided(range, scale, zero_point, 1)
    }

    /// Around every `stride`-th boundary only (see [`sweep_strided`]).
    pub fn strided(range: CodeRange, scale: f32, zero_point: i32, stride: usize) -> Sweep {
        Sweep { range, scale, zero_point, xs: sweep_strided(range, scale, zero_point, stride) }
    }

    fn params(&self) -> QuantParams {
        QuantParams::per_tensor(self.scale, self.zero_point, self.range)
    }

    fn name(&self, what: &str, rule: QuantizeRule) -> String {
        format!(
            "{what} [{}, {}] z = {}, scale {:e}, {}",
            self.range.qmin(),
            self.range.qmax(),
            self.zero_point,
            self.scale,
            rule_name(rule)
        )
    }

    /// `x <= y` implies `q(x) <= q(y)` (the inputs are sorted, so adjacent pairs suffice).
    pub fn monotone(&self, rule: QuantizeRule) -> Result<Proof> {
        let xs = &self.xs;
        let q = quantize_all(xs, &self.params(), rule)?;
        let mut proof = Proof::new(self.name("monotone", rule));
        for i in 1..xs.len() {
            proof.record(q[i - 1] <= q[i], || {
                format!("x = {:e} -> {} but x = {:e} -> {}", xs[i - 1], q[i - 1], xs[i], q[i])
            });
        }
        Ok(proof)
    }

    /// `q(dq(q(x))) == q(x)` and `fq(fq(x)) == fq(x)` (bit for bit, mask true on the second
    /// pass). `off_by_one` counts failures where the second quantization slipped to the
    /// neighbour in the rounding direction (or would have, but the clamp held it at an end of
    /// the range) and `fq(fq(x))` is exactly that neighbour's value.
    pub fn idempotent(&self, rule: QuantizeRule) -> Result<RoundTrip> {
        let (xs, n, p) = (&self.xs, self.xs.len(), self.params());
        let (scale, zero_point, range) = (self.scale, self.zero_point, self.range);
        let q1 = quantize_all(xs, &p, rule)?;
        let y: Vec<f32> = q1.iter().map(|&q| refq::dequantize_value(q, scale, zero_point)).collect();
        let q2 = quantize_all(&y, &p, rule)?;
        let (mut f1, mut f2, mut m2) = (vec![0f32; n], vec![0f32; n], vec![false; n]);
        refq::fake_quantize(xs, &[n], &p, rule, &mut f1, None)?;
        refq::fake_quantize(&f1, &[n], &p, rule, &mut f2, Some(&mut m2))?;
        let mut proof = Proof::new(self.name("idempotent", rule));
        let mut off_by_one = 0;
        for i in 0..n {
            let ok = q1[i] == q2[i] && f1[i].to_bits() == f2[i].to_bits() && m2[i];
            let k = (q1[i] - zero_point) as i64;
            let clamped = q1[i] == q2[i] && !m2[i] && (q1[i] == range.qmin() || q1[i] == range.qmax());
            let slipped = (clamped || expected_slip(rule.rounding, k, (q2[i] - zero_point) as i64))
                && f2[i].to_bits() == refq::dequantize_value(q2[i], scale, zero_point).to_bits();
            if !ok && slipped {
                off_by_one += 1;
            }
            proof.record(ok, || {
                format!(
                    "x = {:e}: q {} -> {:e} -> {}; fq {:e} -> {:e} (mask {})",
                    xs[i], q1[i], y[i], q2[i], f1[i], f2[i], m2[i]
                )
            });
        }
        Ok(RoundTrip { proof, off_by_one })
    }

    /// `|x - dq(q(x))| <= analysis::round_error_bound(x, s)` for every swept `x` inside the
    /// representable interval `[dq(qmin), dq(qmax)]`.
    pub fn round_error_bound(&self, rule: QuantizeRule) -> Result<Proof> {
        let (scale, zero_point) = (self.scale, self.zero_point);
        let lo = refq::dequantize_value(self.range.qmin(), scale, zero_point);
        let hi = refq::dequantize_value(self.range.qmax(), scale, zero_point);
        let xs: Vec<f32> = self.xs.iter().copied().filter(|&x| x >= lo && x <= hi).collect();
        let q = quantize_all(&xs, &self.params(), rule)?;
        let mut proof = Proof::new(self.name("round error bound", rule));
        for (&x, &qi) in xs.iter().zip(&q) {
            let err = (x as f64 - refq::dequantize_value(qi, scale, zero_point) as f64).abs();
            let bound = analysis::round_error_bound(x, scale);
            proof.record(err <= bound, || format!("x = {x:e} -> {qi}: error {err:e} > bound {bound:e}"));
        }
        Ok(proof)
    }
}

/// Every `i8` and `u8` code dequantized on `engine` under every zero point of the type at each
/// scale, compared bit for bit with the reference; then quantized back on the engine under each
/// nearest rule, which must return every code.
pub fn kernel_dequantize_every_code(engine: &Engine, scales: &[f32]) -> Result<Proof> {
    let mut proof = Proof::new(format!("every i8/u8 code on {}", engine.isa()));
    fn one<C: quantproof_optimized::ops::FastCode>(
        engine: &Engine,
        qtype: QType,
        scales: &[f32],
        proof: &mut Proof,
    ) -> Result<()> {
        let range = qtype.full_range();
        // Every code, in an order that puts each one in every vector lane over the zero points.
        let base: Vec<C> = (range.qmin()..=range.qmax()).map(C::from_code).collect();
        let n = base.len();
        for &s in scales {
            for z in range.qmin()..=range.qmax() {
                let shift = (z - range.qmin()) as usize % n;
                let codes: Vec<C> = (0..n + 7).map(|i| base[(i + shift) % n]).collect();
                let m = codes.len();
                let p = QuantParams::per_tensor(s, z, range);
                let (mut want, mut got) = (vec![0f32; m], vec![f32::NAN; m]);
                refq::dequantize(&codes, &[m], &p, &mut want)?;
                engine.dequantize(&codes, &[m], &p, &mut got)?;
                for i in 0..m {
                    proof.record(want[i].to_bits() == got[i].to_bits(), || {
                        format!(
                            "{} code {:?}, z = {z}, scale {s:e}: reference {:e}, engine {:e}",
                            qtype.name(),
                            codes[i],
                            want[i],
                            got[i]
                        )
                    });
                }
                for rule in nearest_rules() {
                    let mut back = vec![C::default(); m];
                    engine.quantize(&got, &[m], &p, rule, &mut back)?;
                    for i in 0..m {
                        proof.record(back[i] == codes[i], || {
                            format!(
                                "{} code {:?}, z = {z}, scale {s:e}, {}: back to {:?}",
                                qtype.name(),
                                codes[i],
                                rule_name(rule),
                                back[i]
                            )
                        });
                    }
                }
            }
        }
        Ok(())
    }
    one::<i8>(engine, QType::I8, scales, &mut proof)?;
    one::<u8>(engine, QType::U8, scales, &mut proof)?;
    Ok(proof)
}

/// Every pair of 4-bit codes packed, and every byte unpacked, by `engine`'s nibble kernels and
/// by its packed public API, compared with the reference's `pack4` / `unpack4`.
pub fn kernel_nibble_pairs(engine: &Engine) -> Result<Proof> {
    let mut proof = Proof::new(format!("every 4-bit pair on {}", engine.isa()));
    let k = engine.kernels();
    for kind in [Int4::Signed, Int4::Unsigned] {
        let r = kind.qtype().full_range();
        let pairs: Vec<i32> =
            (r.qmin()..=r.qmax()).flat_map(|a| (r.qmin()..=r.qmax()).flat_map(move |b| [a, b])).collect();
        // Kernel level: all 256 pairs in one call, and again shifted by one pair (tails).
        let mut want = vec![0u8; pairs.len() / 2];
        pack::pack4(&pairs, kind, &mut want)?;
        for skip in [0usize, 1] {
            let codes: Vec<i8> = pairs[2 * skip..].iter().map(|&q| q as i8).collect();
            let mut got = vec![0u8; codes.len() / 2];
            k.pack_nibbles(&codes, &mut got);
            for (i, (&w, &g)) in want[skip..].iter().zip(&got).enumerate() {
                proof.record(w == g, || {
                    format!("{} pack pair {}: reference {w:#04x}, kernel {g:#04x}", kind.name(), i + skip)
                });
            }
        }
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut want_codes = vec![0i32; 512];
        pack::unpack4(&bytes, kind, &mut want_codes)?;
        for skip in [0usize, 1] {
            let mut got = vec![0i8; 2 * (256 - skip)];
            k.unpack_nibbles(&bytes[skip..], kind, &mut got);
            for (i, (&w, &g)) in want_codes[2 * skip..].iter().zip(&got).enumerate() {
                proof.record(w == g as i32, || {
                    format!("{} unpack code {}: reference {w}, kernel {g}", kind.name(), i + 2 * skip)
                });
            }
        }
        // Public API: quantize every pair (scale 1, zero point 0: codes are their own inputs),
        // and dequantize every byte, at even and odd lengths.
        for n in [pairs.len(), pairs.len() - 1] {
            let x: Vec<f32> = pairs[..n].iter().map(|&q| q as f32).collect();
            let p = QuantParams::per_tensor(1.0, 0, r);
            let rule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);
            let (mut want, mut got) = (vec![0u8; pack::packed_len(n)], vec![0xEEu8; pack::packed_len(n)]);
            refq::quantize_packed4(&x, &[n], &p, rule, kind, &mut want)?;
            engine.quantize_packed4(&x, &[n], &p, rule, kind, &mut got)?;
            proof.record(want == got, || format!("{} quantize_packed4 of every pair, n = {n}", kind.name()));
            let m = 2 * bytes.len() - (pairs.len() - n);
            let (mut wy, mut gy) = (vec![0f32; m], vec![f32::NAN; m]);
            refq::dequantize_packed4(&bytes, &[m], &p, kind, &mut wy)?;
            engine.dequantize_packed4(&bytes, &[m], &p, kind, &mut gy)?;
            let same = wy.iter().zip(&gy).all(|(a, b)| a.to_bits() == b.to_bits());
            proof.record(same, || format!("{} dequantize_packed4 of every byte, n = {m}", kind.name()));
        }
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_bookkeeping() {
        let mut p = Proof::new("p");
        assert!(!p.holds(), "an empty domain proves nothing");
        p.record(true, || unreachable!());
        assert!(p.holds());
        for i in 0..10 {
            p.record(false, || format!("bad {i}"));
        }
        assert_eq!((p.checked, p.failures, p.examples.len()), (11, 10, 5));
        assert!(p.check().unwrap_err().contains("bad 0"));
    }

    #[test]
    fn sweep_is_sorted_and_covers_boundaries() {
        let r = QType::I8.full_range();
        let xs = sweep(r, 0.1, 3);
        assert!(xs.windows(2).all(|w| w[0] < w[1] || (w[0] == 0.0 && w[1] == 0.0)));
        assert!(xs.contains(&f32::INFINITY) && xs.contains(&f32::NEG_INFINITY));
        // The tie at the upper clamp boundary: (qmax - z + 1/2) s.
        let t = crate::equiv::gen::tie_input(124.5, 0.1, ScaleOp::Divide);
        assert!(xs.contains(&t));
    }

    #[test]
    fn zero_point_samples() {
        let r = QType::I8.full_range();
        assert_eq!(zero_point_sample(r, 256, 4).len(), 256);
        let s = zero_point_sample(QType::U16.full_range(), 256, 5);
        assert!(s.contains(&0) && s.contains(&65535) && s.len() >= 7);
    }
}
