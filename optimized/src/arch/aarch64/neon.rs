//! PLACEHOLDER: the Neon token exists, but its kernels still forward to the scalar ones.
//! The SIMD kernels replace this file.

use crate::arch::generic::Scalar;
use crate::isa::Isa;
use crate::kernels::{Kernels, Params, Rule};

/// Proof that this CPU has the Neon features; only [`Neon::new`] makes one.
#[derive(Debug)]
pub struct Neon {
    _private: (),
}

static TOKEN: Neon = Neon { _private: () };

impl Neon {
    /// The token, when the CPU has the features (cached detection).
    pub fn new() -> Option<&'static Neon> {
        if Isa::Neon.is_available() {
            Some(&TOKEN)
        } else {
            None
        }
    }
}

impl Kernels for Neon {
    fn isa(&self) -> Isa {
        Isa::Neon
    }
    fn quantize_i8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [i8]) -> bool {
        Scalar.quantize_i8(x, p, rule, out)
    }
    fn quantize_u8(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [u8]) -> bool {
        Scalar.quantize_u8(x, p, rule, out)
    }
    fn dequantize_i8(&self, q: &[i8], p: Params<'_>, out: &mut [f32]) {
        Scalar.dequantize_i8(q, p, out)
    }
    fn dequantize_u8(&self, q: &[u8], p: Params<'_>, out: &mut [f32]) {
        Scalar.dequantize_u8(q, p, out)
    }
    fn fake_quantize(&self, x: &[f32], p: Params<'_>, rule: Rule, out: &mut [f32], mask: Option<&mut [bool]>) -> bool {
        Scalar.fake_quantize(x, p, rule, out, mask)
    }
    fn pack_nibbles(&self, codes: &[i8], out: &mut [u8]) {
        Scalar.pack_nibbles(codes, out)
    }
    fn unpack_nibbles(&self, packed: &[u8], signed: bool, out: &mut [i8]) {
        Scalar.unpack_nibbles(packed, signed, out)
    }
    fn min_max(&self, x: &[f32]) -> (f32, f32, bool) {
        Scalar.min_max(x)
    }
    fn abs_max(&self, x: &[f32]) -> (f32, bool) {
        Scalar.abs_max(x)
    }
}
