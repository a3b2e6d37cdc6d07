//! TFLite's integer softmax, the twin of `quantproof_reference::softmax::tflite_softmax`.
//!
//! The reference evaluates gemmlowp's `exp_on_negative_values` (a polynomial, a rescale and
//! five barrel-shifter steps) twice per element. But a row's differences `d = q - max` are
//! integers in `[-255, 0]`, so `E(d)` takes at most 256 values per call: [`Tables`] holds them,
//! built once by the reference's own [`SoftmaxPlan::exp`], with each one's share of the row sum
//! (`RoundingDivideByPOT(E, 12)`). A difference below `diff_min` is stored as `E = 0`, which
//! gives what the reference gives it: no share of the sum, and the code
//! `RDBPOT(SRDHM(R, 0), shift) + MIN = MIN`.
//!
//! Per row ([`rows_body`]): the maximum, the sum of the table shares in `i64` clamped to
//! `i32::MAX` (every share is non-negative, so this is the reference's saturating running sum
//! whatever the order), the reference's reciprocal, then each element's code by the reference's
//! [`SoftmaxPlan::code`]. The loops are portable Rust compiled once more for AVX2 and AVX-512
//! (`target_feature`), where the compiler turns the table reads into gathers and the 64-bit
//! products into vector multiplies: the same operations, so the same results, picked by the
//! engine's ISA. Rows are split across the engine's threads.
use crate::isa::Isa;
use quantproof_reference::scheme::Code;
use quantproof_reference::softmax::{sum_term, SoftmaxPlan};

/// `E` and its share of the row sum, indexed by `max - q` (`0..=255`).
pub(crate) struct Tables {
    exp: [i32; 256],
    term: [i32; 256],
}

impl Tables {
    pub(crate) fn new(plan: &SoftmaxPlan) -> Tables {
        let mut exp = [0i32; 256];
        let mut term = [0i32; 256];
        for i in 0..256usize {
            let e = plan.exp(-(i as i32)).unwrap_or(0);
            exp[i] = e;
            term[i] = sum_term(e);
        }
        Tables { exp, term }
    }
}

/// Softmax of whole rows of `plan.depth` codes (`x` and `out` hold the same number of them),
/// on `isa`'s compilation of [`rows_body`].
pub(crate) fn rows<C: Code>(isa: Isa, t: &Tables, plan: &SoftmaxPlan, x: &[C], out: &mut [C]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
        fn avx512<C: Code>(t: &Tables, plan: &SoftmaxPlan, x: &[C], out: &mut [C]) {
            rows_body(t, plan, x, out)
        }
        #[target_feature(enable = "avx2")]
        fn avx2<C: Code>(t: &Tables, plan: &SoftmaxPlan, x: &[C], out: &mut [C]) {
            rows_body(t, plan, x, out)
        }
        match isa {
            // SAFETY: the engine's kernels are AVX-512's only where `isa::detect` found AVX-512
            // F/BW/VL/DQ.
            Isa::Avx512 => return unsafe { avx512(t, plan, x, out) },
            // SAFETY: the engine's kernels are AVX2's only where AVX2 was detected.
            Isa::Avx2 => return unsafe { avx2(t, plan, x, out) },
            _ => {}
        }
    }
    let _ = isa;
    rows_body(t, plan, x, out)
}

/// [`rows`]' body, inlined into each of its compilations. The index `max - q` lies in
/// `0..=255`; masking it with 255 changes nothing and lets the compiler drop the bounds checks.
#[inline(always)]
fn rows_body<C: Code>(t: &Tables, plan: &SoftmaxPlan, x: &[C], out: &mut [C]) {
    let depth = plan.depth.max(1);
    for (row, o) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().map(|v| v.to_code()).fold(C::MIN, i32::max);
        let sum: i64 = row.iter().map(|v| t.term[((max - v.to_code()) & 255) as usize] as i64).sum();
        let r = plan.reciprocal(sum.min(i32::MAX as i64) as i32);
        match Merged::new(r) {
            Some(m) => {
                for (o, v) in o.iter_mut().zip(row) {
                    *o = C::from_code(m.code(t.exp[((max - v.to_code()) & 255) as usize]).min(C::MAX - C::MIN) + C::MIN);
                }
            }
            None => {
                for (o, v) in o.iter_mut().zip(row) {
                    *o = SoftmaxPlan::code::<C>(t.exp[((max - v.to_code()) & 255) as usize], r);
                }
            }
        }
    }
}

/// `RoundingDivideByPOT(SRDHM(R, E), s)` as one rounding, for `R >= 0` and `E >= 0` (every
/// table entry is: `exp_on_negative_values` lies in `[0, 2^31)`):
///
/// - SRDHM of a non-negative product `p = R E` adds the nudge `2^30` and truncates, which is
///   `floor((p + 2^30) / 2^31)` (the one saturating case, `i32::MIN` squared, cannot arise);
/// - `RoundingDivideByPOT(v, s)` of a non-negative `v` rounds up from a remainder of
///   `2^(s-1)`: `floor((v + 2^(s-1)) / 2^s)` for `s >= 1`, `v` for `s = 0`;
/// - nested floors by powers of two merge: `floor((p + 2^30 + [s >= 1] 2^(30+s)) / 2^(31+s))`,
///   with `p + c < 2^62 + 2^61 + 2^30`, inside `u64`.
///
/// One unsigned 32 x 32 -> 64-bit product, an add and a shift per element, which the compiler
/// vectorizes (`vpmuludq`); `merged_code_is_the_two_roundings` checks it against the
/// reference's two steps at every shift.
struct Merged {
    /// `R` (below `2^31`), a 32-bit operand so that the product is one `vpmuludq`.
    recip: u32,
    add: u64,
    shift: u32,
}

impl Merged {
    /// `None` for a negative reciprocal (the reference's `get_reciprocal` of a positive sum never
    /// gives one; the reference's two steps then run instead).
    #[inline(always)]
    fn new((recip, shift): (i32, u32)) -> Option<Merged> {
        let shift = shift.min(31);
        let add = (1u64 << 30) + if shift >= 1 { 1u64 << (30 + shift) } else { 0 };
        (recip >= 0).then_some(Merged { recip: recip as u32, add, shift: 31 + shift })
    }

    /// The code minus `C::MIN` (before the clamp to the type's top), for `e >= 0`.
    #[inline(always)]
    fn code(&self, e: i32) -> i32 {
        ((self.recip as u64 * e as u32 as u64 + self.add) >> self.shift) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantproof_reference::affine::Affine;
    use quantproof_reference::rng::Rng;
    use quantproof_reference::softmax::tflite_softmax;

    /// Every compiled ISA's row loop against the reference, row by row, over `beta * scale`
    /// from `2^-12` to `2^4` (from every difference above `diff_min` to all but a few codes
    /// below it) and rows of 1 to 600 codes drawn from narrow and full ranges.
    fn rows_equal_the_reference<C: Code>() {
        let mut rng = Rng::new(0x50f7);
        for step in 0..33 {
            let scale = 2f32.powf(-12.0 + step as f32 * 0.5);
            for beta in [1.0f32, 0.75] {
                let xq = Affine::new(scale, 0);
                let yq = Affine::new(1.0 / 256.0, C::MIN);
                for _ in 0..24 {
                    let depth = 1 + rng.below(600) as usize;
                    let spread = [1u64, 4, 32, 256][rng.below(4) as usize];
                    let base = C::MIN as i64 + rng.below(257 - spread) as i64;
                    let x: Vec<C> =
                        (0..depth).map(|_| C::from_code((base + rng.below(spread) as i64) as i32)).collect();
                    let shape = [1, depth];
                    let want = tflite_softmax(&x, &shape, -1, beta, xq, yq).expect("a valid softmax");
                    let plan = SoftmaxPlan::new::<C>(x.len(), &shape, -1, beta, xq, yq).expect("a valid plan");
                    let t = Tables::new(&plan);
                    for isa in crate::isa::available() {
                        let mut got = vec![C::from_code(0); depth];
                        rows(isa, &t, &plan, &x, &mut got);
                        assert!(
                            got == want,
                            "{isa:?}: scale {scale} beta {beta} depth {depth} spread {spread}: {:?} vs {:?}",
                            got.iter().map(|c| c.to_code()).collect::<Vec<_>>(),
                            want.iter().map(|c| c.to_code()).collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
    }

    /// [`Merged`] against the reference's `RDBPOT(SRDHM(R, E), s)` at every shift, for the
    /// edges of `R` and `E` (0, 1, powers of two and their neighbours, `i32::MAX`), ties of both
    /// roundings, and random pairs.
    #[test]
    fn merged_code_is_the_two_roundings() {
        use quantproof_reference::fixedpoint::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};
        let mut edges = vec![0i32, 1, 2, 3, i32::MAX, i32::MAX - 1, 1 << 30, (1 << 30) + 1, (1 << 30) - 1];
        for k in 0..31 {
            edges.extend([1i32 << k, (1i32 << k) - 1, (1i32 << k) + 1]);
        }
        let mut rng = Rng::new(0x3e6d);
        for shift in 0..=31u32 {
            let mut pairs: Vec<(i32, i32)> = Vec::new();
            for &r in &edges {
                for &e in &edges {
                    pairs.push((r, e));
                }
            }
            for _ in 0..20_000 {
                let r = (rng.below(1 << 31)) as i32;
                let e = (rng.below(1 << 31)) as i32;
                pairs.push((r, e));
                // A product at an exact tie of the first or the merged rounding.
                if r > 0 {
                    let t = ((1u64 << (30 + shift)) / r as u64).min(i32::MAX as u64) as i32;
                    pairs.extend([(r, t), (r, t.saturating_add(1)), (r, t.saturating_sub(1).max(0))]);
                }
            }
            for (r, e) in pairs {
                let want = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(r, e), shift);
                let m = Merged::new((r, shift)).expect("a non-negative reciprocal");
                assert_eq!(m.code(e), want, "R {r} E {e} shift {shift}");
            }
        }
        assert!(Merged::new((-1, 3)).is_none());
    }

    #[test]
    fn rows_equal_the_reference_i8() {
        rows_equal_the_reference::<i8>();
    }

    #[test]
    fn rows_equal_the_reference_u8() {
        rows_equal_the_reference::<u8>();
    }
}
