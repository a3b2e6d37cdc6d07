//! The overflow and saturation checker: for given operand types, value ranges, zero points and
//! depth `K`, which integer-GEMM formulations compute the exact int32 accumulator.
//!
//! An 8-bit GEMM has two places where a kernel can silently lose the exact result:
//!
//! 1. **Intermediate 16-bit sums.** x86's `vpmaddubsw` multiplies `u8 x s8` and adds adjacent
//!    pairs *with signed saturation* to `i16`: `255 * 127 + 255 * 127 = 64770` comes out as
//!    `32767` (oneDNN #518; ONNX Runtime's MLAS documents it and asks for `reduce_range` or
//!    `u8 x u8`; PyTorch's fbgemm qconfig quantizes activations to 7 bits for the same reason).
//!    NEON's `smull` + `smlal` adds two `s8 x s8` products in an `i16` lane *without*
//!    saturation: `(-128)(-128) * 2 = 32768` wraps to `-32768` (ONNX Runtime #31573).
//! 2. **The 32-bit accumulator.** The exact sum `sum_k (a - za)(b - zb)` leaves `i32` once
//!    `K * max |(a - za)(b - zb)|` does; for `u8 255 x s8 127` with zero points 0 that is
//!    `K = 66312`.
//!
//! Everything else is exact: instructions without intermediate saturation (`vpmaddwd` on
//! operands widened to 16 bits, VNNI `vpdpbusd`, NEON `sdot` / `udot`, `smull` + `sadalp`) add
//! in wrapping 32-bit arithmetic, and wrapping arithmetic gives the exact result whenever that
//! result fits `i32` (`Z -> Z / 2^32` is a ring homomorphism), however large the raw-code
//! products `sum a b` or the zero-point terms of gemmlowp's identity are on the way. So a
//! formulation is exact for every input in the given ranges exactly when (1) none of its
//! intermediate 16-bit sums can leave `i16` and (2) `K <= max_exact_depth`.
//!
//! Each formulation sees the operands as its instruction needs them: `vpmaddubsw` and
//! `vpdpbusd` need `u8 x s8`, so signed activations are shifted by `+128` and unsigned weights
//! by `-128` (the compensation `128 * C[j]` or `128 * R[i]` is folded into the column or row
//! sums); `sdot` and `smull` need `s8 x s8`, so unsigned operands are shifted by `-128`; `udot`
//! needs `u8 x u8`. The worst cases below are over every pair of values in the given ranges,
//! which are intervals, so each extreme is a product of interval endpoints.

use crate::error::{QuantError, Result};
use crate::scheme::{CodeRange, QType};
use std::fmt::Write;

/// One operand of the product: its storage type, the range its values actually take (the full
/// type range unless a narrower one is known, e.g. `[0, 127]` with `reduce_range`, `[-127, 127]`
/// for symmetric weights) and its zero point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperandSpec {
    pub qtype: QType,
    pub range: CodeRange,
    pub zero_point: i32,
}

impl OperandSpec {
    /// The full range of `qtype`, zero point 0.
    pub fn full(qtype: QType) -> OperandSpec {
        OperandSpec { qtype, range: qtype.full_range(), zero_point: 0 }
    }

    pub fn with_range(mut self, range: CodeRange) -> OperandSpec {
        self.range = range;
        self
    }

    pub fn with_zero_point(mut self, zero_point: i32) -> OperandSpec {
        self.zero_point = zero_point;
        self
    }

    /// The range must fit the type and the zero point must lie in the type's range.
    pub fn validate(&self, what: &'static str) -> Result<()> {
        let full = self.qtype.full_range();
        if self.range.qmin() < full.qmin() || self.range.qmax() > full.qmax() {
            return Err(QuantError::InvalidArgument {
                what,
                detail: format!(
                    "value range [{}, {}] does not fit {} [{}, {}]",
                    self.range.qmin(),
                    self.range.qmax(),
                    self.qtype.name(),
                    full.qmin(),
                    full.qmax()
                ),
            });
        }
        full.check_zero_point(0, self.zero_point)
    }

    fn shifted(&self, by: i64) -> (i64, i64) {
        (self.range.qmin() as i64 + by, self.range.qmax() as i64 + by)
    }
}

/// `[min, max]` of `x * y` over `x` in `a`, `y` in `b` (intervals: the extremes are products of
/// endpoints).
pub fn product_range(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    let c = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    (*c.iter().min().unwrap_or(&0), *c.iter().max().unwrap_or(&0))
}

/// `[min, max]` of one centred product `(a - za)(b - zb)`.
pub fn centred_product_range(a: &OperandSpec, b: &OperandSpec) -> (i64, i64) {
    product_range(a.shifted(-(a.zero_point as i64)), b.shifted(-(b.zero_point as i64)))
}

/// The largest depth `K` for which `sum_{k<K} (a - za)(b - zb)` fits `i32` for every input in
/// the ranges (`None`: every depth, when every centred product is 0).
pub fn max_exact_depth(a: &OperandSpec, b: &OperandSpec) -> Option<u64> {
    let (lo, hi) = centred_product_range(a, b);
    let up = if hi > 0 { Some(i32::MAX as u64 / hi as u64) } else { None };
    let down = if lo < 0 { Some((i32::MIN as i64).unsigned_abs() / lo.unsigned_abs()) } else { None };
    match (up, down) {
        (Some(u), Some(d)) => Some(u.min(d)),
        (x, None) | (None, x) => x,
    }
}

/// Fails with [`QuantError::AccumulatorOverflow`] (naming `K`, the largest exact depth and the
/// worst-case sum) when some input in the ranges makes the exact accumulator leave `i32`.
pub fn require_exact_int32(a: &OperandSpec, b: &OperandSpec, k: u64) -> Result<()> {
    a.validate("operand A")?;
    b.validate("operand B")?;
    match max_exact_depth(a, b) {
        Some(max) if k > max => {
            let (lo, hi) = centred_product_range(a, b);
            Err(QuantError::AccumulatorOverflow {
                what: "int32 GEMM accumulator",
                detail: format!(
                    "K = {k} exceeds {max}, the largest depth for which every sum of (a - {za})(b - {zb}) \
                     fits i32: the worst case is K x [{lo}, {hi}] = [{}, {}]",
                    k as i128 * lo as i128,
                    k as i128 * hi as i128,
                    za = a.zero_point,
                    zb = b.zero_point,
                ),
            })
        }
        _ => Ok(()),
    }
}

/// A way of computing the int32 accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Formulation {
    /// Zero points subtracted from every element, products summed in `i32` (the reference's
    /// direct formula; XNNPACK's `qu8` kernels subtract the weight zero point while widening).
    DirectI32,
    /// Raw-code products summed in wrapping `i32`, corrected by `- zb R[i] - za C[j] + K za zb`
    /// (gemmlowp's identity; fbgemm, MLAS, ruy).
    ZeroPointSumsI32,
    /// x86 AVX2 `vpmaddwd` on operands widened to `i16` (pairs summed to `i32`, which cannot
    /// saturate for 8-bit inputs); XNNPACK's `qs8` AVX2 kernels, MLAS's `u8 x u8` path.
    Vpmaddwd,
    /// x86 `vpmaddubsw` (`u8 x s8`, pairs summed with signed saturation to `i16`) then `vpmaddwd`
    /// by ones: fbgemm's and MLAS's AVX2 `u8 x s8` kernels.
    Vpmaddubsw,
    /// x86 AVX-512 VNNI / AVX-VNNI `vpdpbusd` (`u8 x s8`, four products added to the `i32`
    /// accumulator without intermediate rounding or saturation).
    Vpdpbusd,
    /// AArch64 `sdot` (`s8 x s8`) or `udot` (`u8 x u8`), four products into an `i32` lane.
    NeonDot,
    /// AArch64 `smull` + `smlal` (two `s8 x s8` products summed in a wrapping `i16` lane), then
    /// `sadalp` into `i32`: the pre-dotprod NEON kernels.
    NeonSmullSmlal,
    /// AArch64 `smull` then `sadalp` (one product per `i16` lane, pairs widened into `i32`).
    NeonSmullSadalp,
}

impl Formulation {
    pub const ALL: [Formulation; 8] = [
        Formulation::DirectI32,
        Formulation::ZeroPointSumsI32,
        Formulation::Vpmaddwd,
        Formulation::Vpmaddubsw,
        Formulation::Vpdpbusd,
        Formulation::NeonDot,
        Formulation::NeonSmullSmlal,
        Formulation::NeonSmullSadalp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Formulation::DirectI32 => "direct i32 (a-za)(b-zb)",
            Formulation::ZeroPointSumsI32 => "i32 raw products + row/col sums",
            Formulation::Vpmaddwd => "x86 vpmaddwd (i16 widened)",
            Formulation::Vpmaddubsw => "x86 vpmaddubsw (u8 x s8 -> sat i16 pairs)",
            Formulation::Vpdpbusd => "x86 vpdpbusd (VNNI u8 x s8)",
            Formulation::NeonDot => "neon sdot/udot",
            Formulation::NeonSmullSmlal => "neon smull+smlal (i16 pairs)",
            Formulation::NeonSmullSadalp => "neon smull+sadalp",
        }
    }
}

/// What a formulation's 16-bit stage does when a pair sum leaves `i16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOverflow {
    /// Clamped to `[-32768, 32767]` (`vpmaddubsw`).
    Saturates,
    /// Wrapped modulo `2^16` (`smlal`).
    Wraps,
}

/// The checker's verdict on one formulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub formulation: Formulation,
    /// The operand ranges as the instruction sees them (after the `+-128` shift it needs).
    pub operands: ((i64, i64), (i64, i64)),
    /// The worst-case 16-bit pair sum `[min, max]` and what happens beyond `i16`, for the
    /// formulations with a 16-bit stage.
    pub pair_sum: Option<((i64, i64), PairOverflow)>,
    /// Whether some pair sum can leave `i16`.
    pub pair_overflows: bool,
    /// The largest depth for which the formulation is exact for every input in the ranges
    /// (`Some(0)`: never, beyond `K = 1`, when the pair stage can fail; `None`: every depth).
    pub max_exact_depth: Option<u64>,
    /// Exact at the queried `K`.
    pub exact: bool,
}

/// The whole answer for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct OverflowReport {
    pub a: OperandSpec,
    pub b: OperandSpec,
    pub k: u64,
    /// `[min, max]` of one centred product `(a - za)(b - zb)`.
    pub centred_product: (i64, i64),
    /// `K x centred_product`: the exact accumulator's worst case.
    pub worst_accumulator: (i128, i128),
    /// `[min, max]` of the raw-code sum `sum a b` (what a raw-product kernel accumulates, in
    /// wrapping `i32`).
    pub worst_raw_sum: (i128, i128),
    pub max_exact_depth: Option<u64>,
    pub verdicts: Vec<Verdict>,
}

fn is8(q: QType) -> bool {
    q.bits() == 8
}

/// The operand ranges a formulation works on, or `None` when it does not apply to these types.
fn operands_for(f: Formulation, a: &OperandSpec, b: &OperandSpec) -> Option<((i64, i64), (i64, i64))> {
    let (sa, sb) = (a.qtype.is_signed(), b.qtype.is_signed());
    let to_u8 = |o: &OperandSpec, signed: bool| o.shifted(if signed { 128 } else { 0 });
    let to_s8 = |o: &OperandSpec, signed: bool| o.shifted(if signed { 0 } else { -128 });
    let eight = is8(a.qtype) && is8(b.qtype);
    match f {
        Formulation::DirectI32 => Some((a.shifted(-(a.zero_point as i64)), b.shifted(-(b.zero_point as i64)))),
        Formulation::ZeroPointSumsI32 => Some((a.shifted(0), b.shifted(0))),
        Formulation::Vpmaddwd => eight.then(|| (a.shifted(0), b.shifted(0))),
        Formulation::Vpmaddubsw | Formulation::Vpdpbusd => eight.then(|| (to_u8(a, sa), to_s8(b, sb))),
        Formulation::NeonDot => {
            // udot when both are unsigned, sdot otherwise (an unsigned operand shifted to s8).
            eight.then(|| if !sa && !sb { (a.shifted(0), b.shifted(0)) } else { (to_s8(a, sa), to_s8(b, sb)) })
        }
        Formulation::NeonSmullSmlal | Formulation::NeonSmullSadalp => eight.then(|| (to_s8(a, sa), to_s8(b, sb))),
    }
}

/// Checks every [`Formulation`] for `A (M x K) * B (K x N)` with these operands and depth `k`.
/// Formulations that cannot take these operand types (the SIMD ones need 8-bit operands) are
/// left out of the report.
pub fn check(a: &OperandSpec, b: &OperandSpec, k: u64) -> Result<OverflowReport> {
    a.validate("operand A")?;
    b.validate("operand B")?;
    let centred = centred_product_range(a, b);
    let raw = product_range(a.shifted(0), b.shifted(0));
    let max_depth = max_exact_depth(a, b);
    let fits = |d: Option<u64>| d.is_none_or(|m| k <= m);
    let mut verdicts = Vec::new();
    for f in Formulation::ALL {
        let Some(ops) = operands_for(f, a, b) else { continue };
        let pair = match f {
            Formulation::Vpmaddubsw => Some(PairOverflow::Saturates),
            Formulation::NeonSmullSmlal => Some(PairOverflow::Wraps),
            _ => None,
        };
        let pair_sum = pair.map(|p| {
            let (lo, hi) = product_range(ops.0, ops.1);
            ((2 * lo, 2 * hi), p)
        });
        let pair_overflows = pair_sum.is_some_and(|((lo, hi), _)| lo < i16::MIN as i64 || hi > i16::MAX as i64);
        // A pair stage that can leave i16 is wrong from the first pair (K = 2) on.
        let depth = if pair_overflows { Some(1) } else { max_depth };
        verdicts.push(Verdict {
            formulation: f,
            operands: ops,
            pair_sum,
            pair_overflows,
            max_exact_depth: depth,
            exact: fits(depth),
        });
    }
    Ok(OverflowReport {
        a: *a,
        b: *b,
        k,
        centred_product: centred,
        worst_accumulator: (k as i128 * centred.0 as i128, k as i128 * centred.1 as i128),
        worst_raw_sum: (k as i128 * raw.0 as i128, k as i128 * raw.1 as i128),
        max_exact_depth: max_depth,
        verdicts,
    })
}

impl OverflowReport {
    /// The verdict for `f`, if it applies to these operand types.
    pub fn verdict(&self, f: Formulation) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.formulation == f)
    }

    /// The table `quantproof check-overflow` prints.
    pub fn render(&self) -> String {
        let op = |o: &OperandSpec| {
            format!("{} in [{}, {}], zero point {}", o.qtype.name(), o.range.qmin(), o.range.qmax(), o.zero_point)
        };
        let depth = |d: Option<u64>| d.map_or("every K".to_string(), |d| d.to_string());
        let mut s = String::new();
        let _ = writeln!(s, "A: {}", op(&self.a));
        let _ = writeln!(s, "B: {}", op(&self.b));
        let _ = writeln!(s, "K: {}", self.k);
        let _ = writeln!(
            s,
            "one product (a-za)(b-zb): [{}, {}]; exact accumulator at this K: [{}, {}] (i32 is [{}, {}])",
            self.centred_product.0,
            self.centred_product.1,
            self.worst_accumulator.0,
            self.worst_accumulator.1,
            i32::MIN,
            i32::MAX
        );
        let _ = writeln!(
            s,
            "raw-code sum a*b at this K: [{}, {}] (wraps in i32 harmlessly when the exact result fits)",
            self.worst_raw_sum.0, self.worst_raw_sum.1
        );
        let _ =
            writeln!(s, "largest K with an exact i32 accumulator for every input: {}\n", depth(self.max_exact_depth));
        let _ = writeln!(
            s,
            "| {:<42} | {:<24} | {:<28} | {:<13} | {:<6} |",
            "formulation", "operands as used", "i16 pair sum", "exact up to K", "exact"
        );
        let _ = writeln!(
            s,
            "|{}|{}|{}|{}|{}|",
            "-".repeat(44),
            "-".repeat(26),
            "-".repeat(30),
            "-".repeat(14),
            "-".repeat(8)
        );
        for v in &self.verdicts {
            let ops = format!("[{},{}] x [{},{}]", v.operands.0 .0, v.operands.0 .1, v.operands.1 .0, v.operands.1 .1);
            let pair = match v.pair_sum {
                None => "-".to_string(),
                Some(((lo, hi), how)) => format!(
                    "[{lo}, {hi}]{}",
                    if v.pair_overflows {
                        match how {
                            PairOverflow::Saturates => " SATURATES",
                            PairOverflow::Wraps => " WRAPS",
                        }
                    } else {
                        ""
                    }
                ),
            };
            let _ = writeln!(
                s,
                "| {:<42} | {:<24} | {:<28} | {:<13} | {:<6} |",
                v.formulation.name(),
                ops,
                pair,
                depth(v.max_exact_depth),
                if v.exact { "yes" } else { "NO" }
            );
        }
        s
    }
}

/// `vpmaddubsw` on one pair, as the instruction computes it: `sat_i16(a0 b0 + a1 b1)` for
/// unsigned `a` and signed `b` (the products themselves are exact in 17 bits).
pub fn vpmaddubsw_pair(a0: u8, b0: i8, a1: u8, b1: i8) -> i16 {
    let s = a0 as i32 * b0 as i32 + a1 as i32 * b1 as i32;
    s.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// `smull` + `smlal` on one pair: `wrap_i16(a0 b0 + a1 b1)` for signed `a` and `b`.
pub fn smlal_pair(a0: i8, b0: i8, a1: i8, b1: i8) -> i16 {
    (a0 as i16 * b0 as i16).wrapping_add(a1 as i16 * b1 as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u8s8() -> (OperandSpec, OperandSpec) {
        (OperandSpec::full(QType::U8), OperandSpec::full(QType::I8))
    }

    #[test]
    fn the_vpmaddubsw_trap() {
        let (a, b) = u8s8();
        let r = check(&a, &b, 64).unwrap();
        let v = r.verdict(Formulation::Vpmaddubsw).unwrap();
        assert!(v.pair_overflows && !v.exact);
        assert_eq!(v.pair_sum.unwrap().0, (2 * 255 * -128, 2 * 255 * 127));
        assert_eq!(vpmaddubsw_pair(255, 127, 255, 127), i16::MAX);
        // reduce_range activations: [0, 127] x s8 never saturates.
        let a7 = a.with_range(CodeRange::new(0, 127).unwrap());
        assert!(check(&a7, &b, 64).unwrap().verdict(Formulation::Vpmaddubsw).unwrap().exact);
    }

    #[test]
    fn depth_limit_of_u8_s8() {
        let (a, b) = u8s8();
        // max |(a)(b)| = 255 * 128 = 32640 on the negative side: 2^31 / 32640 = 65793.
        assert_eq!(max_exact_depth(&a, &b), Some(65793));
        let b7 = b.with_range(CodeRange::new(-127, 127).unwrap());
        assert_eq!(max_exact_depth(&a, &b7), Some(i32::MAX as u64 / (255 * 127)));
        assert!(require_exact_int32(&a, &b, 65793).is_ok());
        assert!(matches!(require_exact_int32(&a, &b, 65794), Err(QuantError::AccumulatorOverflow { .. })));
    }

    #[test]
    fn smlal_trap_is_the_minus_128_square() {
        let s8 = OperandSpec::full(QType::I8);
        let v = check(&s8, &s8, 16).unwrap();
        assert!(v.verdict(Formulation::NeonSmullSmlal).unwrap().pair_overflows);
        assert_eq!(smlal_pair(-128, -128, -128, -128), i16::MIN);
        let narrow = s8.with_range(CodeRange::new(-127, 127).unwrap());
        assert!(!check(&s8, &narrow, 16).unwrap().verdict(Formulation::NeonSmullSmlal).unwrap().pair_overflows);
    }

    #[test]
    fn bad_specs() {
        let a = OperandSpec::full(QType::U8).with_range(CodeRange::new(-1, 3).unwrap());
        assert!(check(&a, &OperandSpec::full(QType::I8), 4).is_err());
        let a = OperandSpec::full(QType::U8).with_zero_point(256);
        assert!(check(&a, &OperandSpec::full(QType::I8), 4).is_err());
    }
}
