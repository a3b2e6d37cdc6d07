//! QAdd, QSub, QMul: element-wise arithmetic on two 8-bit tensors with their own scales and zero
//! points, under each framework's arithmetic.
//!
//! The real operation is `y_real = a_real op b_real`; with `a_real = (qa - za) sa` and so on, the
//! output code is `qy = clamp(zy + round(f(qa - za, qb - zb)))` where the frameworks differ only in
//! how they represent the scale ratios and round. A [`BinaryKernel`] is one such arithmetic with
//! its constants computed once (as each framework's `Prepare` does); [`binary`] applies it to two
//! tensors, `b` broadcast to `a`'s shape.
//!
//! ## TFLite (`ArithRule::Tflite`, reference kernels `reference_integer_ops::Add` / `Mul`)
//!
//! Add and Sub (`add.cc` / `sub.cc` `Prepare`, int8 and uint8 alike): `left_shift = 20`,
//! `t = 2 * max(sa, sb)` (f32, exact), `Ma = sa / t`, `Mb = sb / t`, `My = t / (2^20 * sy)` (f64),
//! each converted by `QuantizeMultiplierSmallerThanOneExp` (an error unless in `(0, 1)`: TFLite
//! aborts on an output multiplier >= 1). Sub negates `Mb`'s Q31 multiplier and runs the Add
//! kernel. Per element, with MBQM = [`multiply_by_quantized_multiplier_double_rounding`]:
//! `y = clamp(zy + MBQM(MBQM((qa - za) << 20, Ma) + MBQM((qb - zb) << 20, Mb), My), act)`.
//! Mul (`mul.cc`): `M = sa * sb / sy` computed in f32 then widened to f64, converted by
//! `QuantizeMultiplier`; `y = clamp(zy + MBQM((qa - za)(qb - zb), M), act)`.
//!
//! ## PyTorch (`ArithRule::Torch`, `qadd_kernel` / `qmul_kernel`, scalar path)
//!
//! Add: `c = (qa - za) sa + (qb - zb) sb` in f32 (each dequantized value rounded once, then the
//! sum), `c = max(c, 0)` for `add_relu`, `y = clamp(zy + nearbyint(c * RN(1/sy)))`. Sub uses
//! `-` (PyTorch has no quantized sub; this is its add arithmetic with the sign flipped). Mul:
//! `M = RN_f32(sa * sb / sy)` (f64), `y = clamp(zy + nearbyint(RN_f32(RN_f32((qa - za)(qb - zb)) * M)))`,
//! `mul_relu` clamping the code at `zy`. fbgemm's AVX2 path dequantizes with a fused
//! multiply-add and so can differ by one code on a few elements: the recorded vectors carry a
//! tolerance of 1 on 2 % of the elements for it.
//!
//! ## ONNX Runtime (`ArithRule::OnnxRuntime`, `QLinearAdd` / `QLinearMul`, MLAS scalar path)
//!
//! MLAS's portable kernels (`MlasQLinearAddKernelRawHelper`, the pure C++ `MlasQLinearMulKernel`):
//! `va = sa (qa - za)`, `vb = sb (qb - zb)` in f32, `c = (va + vb) / sy` (add) or `(va * vb) / sy`
//! (mul) in f32, clamped to `[qmin - zy, qmax - zy]`, then `y = nearbyint(c + zy)` (ties to even).
//! MLAS's SSE/AVX2 add kernel uses 22-bit integer multipliers instead and its SSE mul kernel
//! multiplies `RN_f32((qa - za)(qb - zb))` by `RN_f32(sa sb / sy)`; they can differ by one code (the
//! recorded vectors carry a tolerance of 1 on 2 % of the elements). There is no QLinearSub and no
//! fused activation: both are [`QuantError::Unsupported`].
//!
//! ## Saturation
//!
//! The output zero point is added to the rounded value exactly (in 64 bits; a float result
//! beyond `i64` saturates first) and the sum is then clamped to the activation's code bounds, so
//! an out-of-range value always saturates to `qmin` / `qmax`. The frameworks add in `int32` (TFLite,
//! where overflow is undefined) or `int64` (PyTorch, after a float-to-integer conversion that is
//! undefined beyond its range); both only matter for scale ratios no real model has, and here
//! they are defined.
//!
//! ## The equal-scale fast path (seed 000)
//!
//! When `sa == sb`, add and sub need one multiplication instead of two:
//! `y = clamp(zy + MBQM((qa - za) ± (qb - zb), sa / sy))` ([`BinaryKernel::equal_scale`]). It is
//! quantproof's own kernel, not any framework's: it rounds once where TFLite's general path rounds
//! three times, so the two can differ by one code (the tests measure how often).

use crate::affine::{broadcast_index, check_shape, Activation, Affine};
use crate::error::{check_len, QuantError, Result};
use crate::profile::ArithRule;
use crate::requantize::{multiply_by_quantized_multiplier_double_rounding as mbqm, QuantizedMultiplier};
use crate::scheme::Code;

/// Which element-wise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
}

/// The quantization of both inputs and the output, and the fused activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryParams {
    pub a: Affine,
    pub b: Affine,
    pub y: Affine,
    pub activation: Activation,
}

/// One framework's element-wise kernel with its constants prepared (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinaryKernel {
    TfliteAdd {
        za: i32,
        zb: i32,
        zy: i32,
        left_shift: u32,
        ma: QuantizedMultiplier,
        mb: QuantizedMultiplier,
        my: QuantizedMultiplier,
        lo: i32,
        hi: i32,
    },
    TfliteMul {
        za: i32,
        zb: i32,
        zy: i32,
        m: QuantizedMultiplier,
        lo: i32,
        hi: i32,
    },
    TorchAddSub {
        a: Affine,
        b: Affine,
        zy: i32,
        inv_sy: f32,
        negate_b: bool,
        relu: bool,
        lo: i32,
        hi: i32,
    },
    TorchMul {
        za: i32,
        zb: i32,
        zy: i32,
        m: f32,
        lo: i32,
        hi: i32,
    },
    OnnxRuntime {
        a: Affine,
        b: Affine,
        y: Affine,
        mul: bool,
        lo: i32,
        hi: i32,
    },
    EqualScale {
        za: i32,
        zb: i32,
        zy: i32,
        negate_b: bool,
        m: QuantizedMultiplier,
        lo: i32,
        hi: i32,
    },
}

fn check_params<C: Code>(p: &BinaryParams) -> Result<()> {
    p.a.check::<C>(0)?;
    p.b.check::<C>(1)?;
    p.y.check::<C>(2)
}

impl BinaryKernel {
    /// Prepares `op` under `rule` for codes of type `C`. Errors: a bad scale or zero point
    /// (index 0 = a, 1 = b, 2 = y), a multiplier the framework cannot represent (TFLite's add
    /// output multiplier must be below 1), an op or activation the framework does not have.
    pub fn new<C: Code>(op: BinaryOp, rule: ArithRule, p: &BinaryParams) -> Result<BinaryKernel> {
        check_params::<C>(p)?;
        let (za, zb, zy) = (p.a.zero_point, p.b.zero_point, p.y.zero_point);
        let (lo, hi) = p.activation.code_bounds::<C>(p.y);
        match (rule, op) {
            (ArithRule::Tflite, BinaryOp::Add | BinaryOp::Sub) => {
                let left_shift = 20;
                let twice_max = 2.0 * p.a.scale.max(p.b.scale);
                let twice_max = twice_max as f64;
                let ma =
                    QuantizedMultiplier::smaller_than_one(p.a.scale as f64 / twice_max, "TFLite add input multiplier")?;
                let mut mb =
                    QuantizedMultiplier::smaller_than_one(p.b.scale as f64 / twice_max, "TFLite add input multiplier")?;
                if op == BinaryOp::Sub {
                    mb.multiplier = -mb.multiplier;
                }
                let out = (1u32 << left_shift) as f32 * p.y.scale;
                let my = QuantizedMultiplier::smaller_than_one(twice_max / out as f64, "TFLite add output multiplier")?;
                Ok(BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi })
            }
            (ArithRule::Tflite, BinaryOp::Mul) => {
                let real = (p.a.scale * p.b.scale / p.y.scale) as f64;
                let m = QuantizedMultiplier::from_real(real)?;
                Ok(BinaryKernel::TfliteMul { za, zb, zy, m, lo, hi })
            }
            (ArithRule::Torch, BinaryOp::Add | BinaryOp::Sub) => {
                torch_activation(p.activation).map(|relu| BinaryKernel::TorchAddSub {
                    a: p.a,
                    b: p.b,
                    zy,
                    inv_sy: 1.0 / p.y.scale,
                    negate_b: op == BinaryOp::Sub,
                    relu,
                    lo: C::MIN,
                    hi: C::MAX,
                })
            }
            (ArithRule::Torch, BinaryOp::Mul) => {
                let relu = torch_activation(p.activation)?;
                let m = (p.a.scale as f64 * p.b.scale as f64 / p.y.scale as f64) as f32;
                let lo = if relu { zy } else { C::MIN };
                Ok(BinaryKernel::TorchMul { za, zb, zy, m, lo, hi: C::MAX })
            }
            (ArithRule::OnnxRuntime, _) if p.activation != Activation::None => Err(QuantError::Unsupported {
                what: "a fused activation in ONNX Runtime's QLinearAdd / QLinearMul".into(),
            }),
            (ArithRule::OnnxRuntime, BinaryOp::Add | BinaryOp::Mul) => Ok(BinaryKernel::OnnxRuntime {
                a: p.a,
                b: p.b,
                y: p.y,
                mul: op == BinaryOp::Mul,
                lo: C::MIN,
                hi: C::MAX,
            }),
            (ArithRule::OnnxRuntime, BinaryOp::Sub) => Err(QuantError::Unsupported {
                what: "quantized sub under ONNX Runtime (there is no QLinearSub)".into(),
            }),
        }
    }

    /// Seed 000's equal-scale add / sub: one multiplier `sa / sy` applied to the sum of the
    /// centred codes, gemmlowp's double rounding, the activation's code bounds. Errors unless
    /// `sa == sb` and `op` is add or sub.
    pub fn equal_scale<C: Code>(op: BinaryOp, p: &BinaryParams) -> Result<BinaryKernel> {
        check_params::<C>(p)?;
        if p.a.scale != p.b.scale || op == BinaryOp::Mul {
            return Err(QuantError::InvalidArgument {
                what: "equal-scale path",
                detail: format!("needs add or sub with sa == sb, got {op:?} with {} and {}", p.a.scale, p.b.scale),
            });
        }
        let m = QuantizedMultiplier::from_real(p.a.scale as f64 / p.y.scale as f64)?;
        let (lo, hi) = p.activation.code_bounds::<C>(p.y);
        Ok(BinaryKernel::EqualScale {
            za: p.a.zero_point,
            zb: p.b.zero_point,
            zy: p.y.zero_point,
            negate_b: op == BinaryOp::Sub,
            m,
            lo,
            hi,
        })
    }

    /// The output code for one pair of input codes.
    pub fn apply(&self, qa: i32, qb: i32) -> i32 {
        let (v, lo, hi): (i64, i32, i32) = match *self {
            BinaryKernel::TfliteAdd { za, zb, zy, left_shift, ma, mb, my, lo, hi } => {
                let sa = mbqm((qa - za) << left_shift, ma);
                let sb = mbqm((qb - zb) << left_shift, mb);
                (mbqm(sa + sb, my) as i64 + zy as i64, lo, hi)
            }
            BinaryKernel::TfliteMul { za, zb, zy, m, lo, hi } => {
                (mbqm((qa - za) * (qb - zb), m) as i64 + zy as i64, lo, hi)
            }
            BinaryKernel::TorchAddSub { a, b, zy, inv_sy, negate_b, relu, lo, hi } => {
                let (da, db) = (a.dequantize(qa), b.dequantize(qb));
                let mut c = if negate_b { da - db } else { da + db };
                if relu {
                    c = c.max(0.0);
                }
                ((zy as i64).saturating_add((c * inv_sy).round_ties_even() as i64), lo, hi)
            }
            BinaryKernel::TorchMul { za, zb, zy, m, lo, hi } => {
                let c = ((qa - za) * (qb - zb)) as f32;
                ((zy as i64).saturating_add((c * m).round_ties_even() as i64), lo, hi)
            }
            BinaryKernel::OnnxRuntime { a, b, y, mul, lo, hi } => {
                let (va, vb) = (a.dequantize(qa), b.dequantize(qb));
                let c = if mul { va * vb } else { va + vb } / y.scale;
                let c = c.max((lo - y.zero_point) as f32).min((hi - y.zero_point) as f32);
                ((c + y.zero_point as f32).round_ties_even() as i64, lo, hi)
            }
            BinaryKernel::EqualScale { za, zb, zy, negate_b, m, lo, hi } => {
                let acc = if negate_b { (qa - za) - (qb - zb) } else { (qa - za) + (qb - zb) };
                (mbqm(acc, m) as i64 + zy as i64, lo, hi)
            }
        };
        v.clamp(lo as i64, hi as i64) as i32
    }
}

/// PyTorch fuses ReLU only (`add_relu`, `mul_relu`).
fn torch_activation(a: Activation) -> Result<bool> {
    match a {
        Activation::None => Ok(false),
        Activation::Relu => Ok(true),
        other => Err(QuantError::Unsupported { what: format!("fused {other:?} in PyTorch's quantized add / mul") }),
    }
}

/// `out = a op b` element-wise: `b` (shape `b_shape`) is broadcast to `a`'s shape (numpy rules,
/// [`broadcast_index`]); `out` has `a`'s shape. Errors: a data length that does not match its
/// shape, a `b` that does not broadcast, an `out` of the wrong length, and every error of
/// [`BinaryKernel::new`].
#[allow(clippy::too_many_arguments)]
pub fn binary<C: Code>(
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
    apply_binary(&kernel, a, a_shape, b, b_shape, out)
}

/// The shape checks of [`apply_binary`], in its order (shared with the optimized twin): each
/// data length matches its shape, `out` is as long as `a`, and `b` broadcasts to `a`. Returns
/// `b`'s shape without leading ones beyond `a`'s rank.
pub fn check_binary_shapes<'b>(
    a_shape: &[usize],
    a_len: usize,
    b_shape: &'b [usize],
    b_len: usize,
    out_len: usize,
) -> Result<&'b [usize]> {
    check_shape(a_shape, a_len)?;
    check_shape(b_shape, b_len)?;
    check_len("out", a_len, out_len)?;
    crate::affine::check_broadcast(a_shape, b_shape)
}

/// [`binary`] with a prepared kernel (for example [`BinaryKernel::equal_scale`]).
pub fn apply_binary<C: Code>(
    kernel: &BinaryKernel,
    a: &[C],
    a_shape: &[usize],
    b: &[C],
    b_shape: &[usize],
    out: &mut [C],
) -> Result<()> {
    check_binary_shapes(a_shape, a.len(), b_shape, b.len(), out.len())?;
    let index = broadcast_index(a_shape, b_shape)?;
    for ((o, &qa), &j) in out.iter_mut().zip(a).zip(&index) {
        *o = C::from_code(kernel.apply(qa.to_code(), b[j].to_code()));
    }
    Ok(())
}
