//! Integer code types and ranges: what a quantized value may be.
//!
//! A *code* is the integer `q` that stands for the real value `(q - z) * s`. This module says which
//! codes exist:
//!
//! * [`QType`]: a bit width `b` in 2..=16 and a signedness. Signed codes span
//!   `[-2^(b-1), 2^(b-1) - 1]`, unsigned codes `[0, 2^b - 1]`.
//! * [`CodeRange`]: the `[qmin, qmax]` actually used, which may be narrower than the type:
//!   the *narrow* ("restricted") range drops one code so that the range is symmetric about its
//!   centre: `[-(2^(b-1) - 1), 2^(b-1) - 1]` signed (int8: `[-127, 127]`, 255 levels instead of
//!   256; the seeds' 3-bit example: 7 levels instead of 8) and `[0, 2^b - 2]` unsigned. Frameworks
//!   also *reduce* the range by one bit to dodge `vpmaddubsw` saturation; that choice belongs to a
//!   [`crate::profile::Profile`], because PyTorch and ONNX Runtime reduce int8 differently.
//! * [`Code`]: the Rust storage types codes live in (`i8`, `u8`, `i16`, `u16`). Four-bit codes
//!   are stored two per byte by [`crate::pack`].

use crate::error::{QuantError, Result};

/// Whether codes carry a sign: `Signed` codes are `[-2^(b-1), 2^(b-1) - 1]` (int8),
/// `Unsigned` codes `[0, 2^b - 1]` (uint8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signedness {
    Signed,
    Unsigned,
}

impl Signedness {
    pub fn is_signed(self) -> bool {
        self == Signedness::Signed
    }

    /// `Signed` when `signed` holds (for flags read from files and command lines).
    pub fn signed_if(signed: bool) -> Signedness {
        if signed {
            Signedness::Signed
        } else {
            Signedness::Unsigned
        }
    }
}

/// How the zero point is chosen: `Symmetric` pins it to the middle of the code range (0 for
/// signed codes, 128 for `[0, 255]`) and takes the scale from `max(|min|, |max|)`; `Affine`
/// chooses it from the data so that `[min, max]` fills the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symmetry {
    Symmetric,
    Affine,
}

impl Symmetry {
    pub fn is_symmetric(self) -> bool {
        self == Symmetry::Symmetric
    }

    /// `Symmetric` when `symmetric` holds (for flags read from files and command lines).
    pub fn symmetric_if(symmetric: bool) -> Symmetry {
        if symmetric {
            Symmetry::Symmetric
        } else {
            Symmetry::Affine
        }
    }
}

/// Whether one bit of range is dropped (`Reduced`), as PyTorch's `reduce_range` and ONNX
/// Runtime's `reduce_range` do for activations so that `u8 x s8` pair sums cannot saturate
/// `vpmaddubsw`; `Full` keeps every code of the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RangeReduction {
    #[default]
    Full,
    Reduced,
}

impl RangeReduction {
    pub fn is_reduced(self) -> bool {
        self == RangeReduction::Reduced
    }

    /// `Reduced` when `reduce_range` holds (for flags read from files and command lines).
    pub fn reduced_if(reduce_range: bool) -> RangeReduction {
        if reduce_range {
            RangeReduction::Reduced
        } else {
            RangeReduction::Full
        }
    }
}

/// Whether a code range keeps every code of its type (`Full`) or drops the most negative one
/// (`Narrow`, also called restricted: an odd number of levels, symmetric about the centre).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RangeWidth {
    #[default]
    Full,
    Narrow,
}

impl RangeWidth {
    /// `Narrow` when `narrow` holds (for flags read from files and command lines).
    pub fn narrow_if(narrow: bool) -> RangeWidth {
        if narrow {
            RangeWidth::Narrow
        } else {
            RangeWidth::Full
        }
    }
}

/// A code type: bit width (2..=16) and signedness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QType {
    bits: u8,
    signed: bool,
}

impl QType {
    pub const I4: QType = QType { bits: 4, signed: true };
    pub const U4: QType = QType { bits: 4, signed: false };
    pub const I8: QType = QType { bits: 8, signed: true };
    pub const U8: QType = QType { bits: 8, signed: false };
    pub const I16: QType = QType { bits: 16, signed: true };
    pub const U16: QType = QType { bits: 16, signed: false };

    /// A `bits`-wide code type; fails outside 2..=16.
    pub fn new(bits: u32, signedness: Signedness) -> Result<QType> {
        if (2..=16).contains(&bits) {
            Ok(QType { bits: bits as u8, signed: signedness.is_signed() })
        } else {
            Err(QuantError::BitWidthOutOfRange { bits })
        }
    }

    pub fn bits(self) -> u32 {
        self.bits as u32
    }

    pub fn is_signed(self) -> bool {
        self.signed
    }

    pub fn signedness(self) -> Signedness {
        if self.signed {
            Signedness::Signed
        } else {
            Signedness::Unsigned
        }
    }

    /// Every code of the type: `[-2^(b-1), 2^(b-1)-1]` or `[0, 2^b-1]`.
    pub fn full_range(self) -> CodeRange {
        let b = self.bits as u32;
        if self.signed {
            CodeRange { qmin: -(1 << (b - 1)), qmax: (1 << (b - 1)) - 1 }
        } else {
            CodeRange { qmin: 0, qmax: (1 << b) - 1 }
        }
    }

    /// The narrow ("restricted", symmetric) range: one code fewer, an odd number of levels.
    /// Signed: `[-(2^(b-1)-1), 2^(b-1)-1]`; unsigned: `[0, 2^b-2]`.
    pub fn narrow_range(self) -> CodeRange {
        let full = self.full_range();
        if self.signed {
            CodeRange { qmin: full.qmin + 1, qmax: full.qmax }
        } else {
            CodeRange { qmin: 0, qmax: full.qmax - 1 }
        }
    }

    /// Full or narrow range.
    pub fn range(self, width: RangeWidth) -> CodeRange {
        match width {
            RangeWidth::Narrow => self.narrow_range(),
            RangeWidth::Full => self.full_range(),
        }
    }

    /// A short name: `i8`, `u4`, `i13`, ...
    pub fn name(self) -> String {
        format!("{}{}", if self.signed { 'i' } else { 'u' }, self.bits)
    }

    /// Parses `i8`, `u8`, `int8`, `uint4`, ...
    pub fn parse(s: &str) -> Result<QType> {
        let t = s.trim().to_ascii_lowercase();
        let (signed, digits) = if let Some(d) = t.strip_prefix("uint") {
            (false, d)
        } else if let Some(d) = t.strip_prefix("int") {
            (true, d)
        } else if let Some(d) = t.strip_prefix('u') {
            (false, d)
        } else if let Some(d) = t.strip_prefix('i') {
            (true, d)
        } else {
            return Err(QuantError::InvalidArgument { what: "code type", detail: format!("{s:?}") });
        };
        let bits: u32 =
            digits.parse().map_err(|_| QuantError::InvalidArgument { what: "code type", detail: format!("{s:?}") })?;
        QType::new(bits, Signedness::signed_if(signed))
    }
}

/// The codes `[qmin, qmax]` a quantizer may produce. Always `qmin <= qmax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeRange {
    pub(crate) qmin: i32,
    pub(crate) qmax: i32,
}

impl CodeRange {
    /// The lowest code any range may hold: `i16::MIN`.
    pub const LOWEST: i32 = -32768;
    /// The highest code any range may hold: `u16::MAX`.
    pub const HIGHEST: i32 = 65535;
    /// The most codes a range may hold: `2^16` (16-bit codes).
    pub const MAX_LEVELS: u64 = 1 << 16;

    /// `[qmin, qmax]`; fails when `qmin > qmax` ([`QuantError::EmptyCodeRange`]), or when the
    /// range leaves `[-32768, 65535]` or holds more than `2^16` codes
    /// ([`QuantError::OutOfDomain`]): the documented 2..16-bit codes. Inside that domain
    /// `q - z`, `qmin - z` and `qmax - z` never overflow `i32`, and every bound and every
    /// `q - z` is exact in `f32`, so every path computes the same clamp and the same mask.
    pub fn new(qmin: i32, qmax: i32) -> Result<CodeRange> {
        if qmin > qmax {
            return Err(QuantError::EmptyCodeRange { qmin: qmin as i64, qmax: qmax as i64 });
        }
        for (what, v) in [("qmin", qmin), ("qmax", qmax)] {
            if !(Self::LOWEST..=Self::HIGHEST).contains(&v) {
                return Err(QuantError::OutOfDomain {
                    what,
                    value: v as f64,
                    domain: "[-32768, 65535] (codes of 2 to 16 bits)",
                });
            }
        }
        let levels = (qmax as i64 - qmin as i64 + 1) as u64;
        if levels > Self::MAX_LEVELS {
            return Err(QuantError::OutOfDomain {
                what: "qmax - qmin + 1",
                value: levels as f64,
                domain: "at most 65536 codes (16 bits)",
            });
        }
        Ok(CodeRange { qmin, qmax })
    }

    pub fn qmin(self) -> i32 {
        self.qmin
    }

    pub fn qmax(self) -> i32 {
        self.qmax
    }

    /// Number of codes, `qmax - qmin + 1`.
    pub fn levels(self) -> u64 {
        (self.qmax as i64 - self.qmin as i64 + 1) as u64
    }

    pub fn contains(self, q: i64) -> bool {
        (self.qmin as i64..=self.qmax as i64).contains(&q)
    }

    /// Clamps an integer (held exactly in f64) into the range.
    pub fn clamp_f64(self, q: f64) -> f64 {
        q.max(self.qmin as f64).min(self.qmax as f64)
    }

    /// Fails unless the range fits the storage type `C`.
    pub fn check_storage<C: Code>(self) -> Result<()> {
        if self.qmin >= C::MIN && self.qmax <= C::MAX {
            Ok(())
        } else {
            Err(QuantError::CodeRangeExceedsStorage {
                qmin: self.qmin as i64,
                qmax: self.qmax as i64,
                storage: C::NAME,
            })
        }
    }

    /// Fails unless `zero_point` lies in the range (`index` names it in the error).
    pub fn check_zero_point(self, index: usize, zero_point: i32) -> Result<()> {
        if self.contains(zero_point as i64) {
            Ok(())
        } else {
            Err(QuantError::ZeroPointOutOfRange {
                index,
                zero_point: zero_point as i64,
                qmin: self.qmin as i64,
                qmax: self.qmax as i64,
            })
        }
    }
}

/// A Rust integer type that stores codes.
pub trait Code: Copy + Default + PartialEq + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// `i8`, `u8`, `i16`, `u16`.
    const NAME: &'static str;
    const MIN: i32;
    const MAX: i32;
    /// Converts a code known to lie in `[MIN, MAX]` (callers check ranges first; out-of-range
    /// values saturate, they never wrap).
    fn from_code(q: i32) -> Self;
    fn to_code(self) -> i32;
}

macro_rules! impl_code {
    ($t:ty, $name:literal) => {
        impl Code for $t {
            const NAME: &'static str = $name;
            const MIN: i32 = <$t>::MIN as i32;
            const MAX: i32 = <$t>::MAX as i32;
            #[inline]
            fn from_code(q: i32) -> Self {
                q.clamp(<Self as Code>::MIN, <Self as Code>::MAX) as $t
            }
            #[inline]
            fn to_code(self) -> i32 {
                self as i32
            }
        }
    };
}
impl_code!(i8, "i8");
impl_code!(u8, "u8");
impl_code!(i16, "i16");
impl_code!(u16, "u16");

/// A tensor axis as the user wrote it: `0, 1, ...` from the front, `-1, -2, ...` from the back
/// (PyTorch's `ch_axis`, numpy's and ONNX's `axis`). It is resolved against a tensor's rank when
/// the shape is known ([`Axis::resolve`]); an axis the tensor does not have is
/// [`QuantError::AxisOutOfRange`] with the value exactly as given, sign included.
///
/// Every integer type converts into it, so `QuantParams::per_axis(1, ...)` and
/// `PerChannelMinMaxObserver::new(cfg, -1)` both read naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Axis(i64);

impl Axis {
    pub const fn new(axis: i64) -> Axis {
        Axis(axis)
    }

    /// The value as given (negative counts from the back).
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The index `0..rank` this axis names in a tensor of rank `rank`: `axis` itself when
    /// `0 <= axis < rank`, `rank + axis` when `-rank <= axis < 0`.
    pub fn resolve(self, rank: usize) -> Result<usize> {
        let r = i64::try_from(rank).unwrap_or(i64::MAX);
        let a = if self.0 < 0 { self.0.checked_add(r) } else { Some(self.0) };
        match a {
            Some(a) if (0..r).contains(&a) => Ok(a as usize),
            _ => Err(QuantError::AxisOutOfRange { axis: self.0, rank }),
        }
    }
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! axis_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Axis {
            fn from(a: $t) -> Axis {
                Axis(a as i64)
            }
        }
    )*};
}
axis_from!(i8, i16, i32, i64, u8, u16, u32);

impl From<isize> for Axis {
    fn from(a: isize) -> Axis {
        Axis(a as i64)
    }
}

/// `usize` axes above `i64::MAX` saturate there (they are out of range for any tensor anyway).
impl From<usize> for Axis {
    fn from(a: usize) -> Axis {
        Axis(i64::try_from(a).unwrap_or(i64::MAX))
    }
}

/// How many elements share one scale and zero point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale and zero point for the whole tensor ("per-layer").
    PerTensor,
    /// One per index along `axis` ("per-channel").
    PerAxis { axis: Axis },
    /// One per run of `block_size` consecutive indices along `axis`, separately for every
    /// position of the other axes (ONNX's blocked quantization: the parameter tensor has the
    /// input's shape with the axis length divided by `block_size`).
    PerBlock { axis: Axis, block_size: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges_stay_within_16_bit_codes() {
        assert!(CodeRange::new(-32768, 32767).is_ok());
        assert!(CodeRange::new(0, 65535).is_ok());
        assert!(matches!(CodeRange::new(-32769, 0), Err(QuantError::OutOfDomain { what: "qmin", .. })));
        assert!(matches!(CodeRange::new(0, 65536), Err(QuantError::OutOfDomain { what: "qmax", .. })));
        assert!(matches!(CodeRange::new(-1, 65535), Err(QuantError::OutOfDomain { what: "qmax - qmin + 1", .. })));
        assert!(matches!(CodeRange::new(i32::MIN, i32::MAX), Err(QuantError::OutOfDomain { .. })));
        assert!(matches!(CodeRange::new(2, 1), Err(QuantError::EmptyCodeRange { .. })));
    }

    #[test]
    fn ranges_of_every_width() {
        for bits in 2..=16u32 {
            let s = QType::new(bits, Signedness::Signed).unwrap();
            let u = QType::new(bits, Signedness::Unsigned).unwrap();
            assert_eq!(s.full_range().levels(), 1u64 << bits);
            assert_eq!(u.full_range().levels(), 1u64 << bits);
            assert_eq!(s.narrow_range().levels(), (1u64 << bits) - 1);
            assert_eq!(u.narrow_range().levels(), (1u64 << bits) - 1);
            assert_eq!(s.narrow_range().qmin(), -s.narrow_range().qmax());
        }
        assert_eq!(QType::I8.full_range(), CodeRange::new(-128, 127).unwrap());
        assert_eq!(QType::I8.narrow_range(), CodeRange::new(-127, 127).unwrap());
        assert_eq!(QType::new(3, Signedness::Signed).unwrap().narrow_range().levels(), 7);
        assert!(QType::new(1, Signedness::Signed).is_err());
        assert!(QType::new(17, Signedness::Unsigned).is_err());
    }

    #[test]
    fn axes_resolve_with_their_sign() {
        assert_eq!(Axis::from(1).resolve(3).unwrap(), 1);
        assert_eq!(Axis::from(-1).resolve(3).unwrap(), 2);
        assert_eq!(Axis::from(-3).resolve(3).unwrap(), 0);
        assert_eq!(Axis::from(-4).resolve(3), Err(QuantError::AxisOutOfRange { axis: -4, rank: 3 }));
        assert_eq!(Axis::from(3).resolve(3), Err(QuantError::AxisOutOfRange { axis: 3, rank: 3 }));
        assert_eq!(
            Axis::from(usize::MAX).resolve(3).unwrap_err(),
            QuantError::AxisOutOfRange { axis: i64::MAX, rank: 3 }
        );
        assert_eq!(
            Axis::from(i64::MIN).resolve(0).unwrap_err(),
            QuantError::AxisOutOfRange { axis: i64::MIN, rank: 0 }
        );
    }

    #[test]
    fn parse_names() {
        assert_eq!(QType::parse("int8").unwrap(), QType::I8);
        assert_eq!(QType::parse("u4").unwrap(), QType::U4);
        assert_eq!(QType::parse("i13").unwrap().name(), "i13");
        assert!(QType::parse("f32").is_err());
        assert!(QType::parse("i99").is_err());
    }

    #[test]
    fn storage_checks() {
        assert!(CodeRange::new(0, 255).unwrap().check_storage::<u8>().is_ok());
        assert!(CodeRange::new(0, 256).unwrap().check_storage::<u8>().is_err());
        assert!(CodeRange::new(-1, 5).unwrap().check_storage::<u8>().is_err());
        assert!(CodeRange::new(3, 2).is_err());
    }
}
