//! Four-bit codes packed two per byte.
//!
//! Layout (ONNX `INT4`/`UINT4`, also what MLAS and most 4-bit runtimes use): element `2k` sits in
//! the low nibble of byte `k`, element `2k + 1` in the high nibble. An odd element count leaves
//! the last byte's high nibble zero. Signed nibbles are two's complement (`0x8` is -8, `0xF` is -1).

use crate::error::{check_len, QuantError, Result};
use crate::scheme::{CodeRange, QType};

/// Signed (`[-8, 7]`) or unsigned (`[0, 15]`) nibbles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int4 {
    Signed,
    Unsigned,
}

impl Int4 {
    pub fn qtype(self) -> QType {
        match self {
            Int4::Signed => QType::I4,
            Int4::Unsigned => QType::U4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Int4::Signed => "i4",
            Int4::Unsigned => "u4",
        }
    }

    /// Fails unless `range` lies within the nibble type's codes.
    pub fn check_range(self, range: CodeRange) -> Result<()> {
        let full = self.qtype().full_range();
        if range.qmin() >= full.qmin() && range.qmax() <= full.qmax() {
            Ok(())
        } else {
            Err(QuantError::CodeRangeExceedsStorage {
                qmin: range.qmin() as i64,
                qmax: range.qmax() as i64,
                storage: self.name(),
            })
        }
    }

    /// Decodes one nibble (the low four bits of `n`).
    #[inline]
    pub fn decode(self, n: u8) -> i32 {
        let n = (n & 0x0F) as i32;
        match self {
            Int4::Signed => (n ^ 8) - 8,
            Int4::Unsigned => n,
        }
    }
}

/// Bytes needed for `n` packed codes: `ceil(n / 2)`.
pub fn packed_len(n: usize) -> usize {
    n / 2 + n % 2
}

/// Packs codes into nibbles. Every code must lie in the nibble type's range.
pub fn pack4(codes: &[i32], kind: Int4, out: &mut [u8]) -> Result<()> {
    check_len("packed output", packed_len(codes.len()), out.len())?;
    let full = kind.qtype().full_range();
    if let Some(i) = codes.iter().position(|&q| !full.contains(q as i64)) {
        return Err(QuantError::InvalidArgument {
            what: "4-bit code",
            detail: format!("codes[{i}] = {} is outside [{}, {}]", codes[i], full.qmin(), full.qmax()),
        });
    }
    for (byte, pair) in out.iter_mut().zip(codes.chunks(2)) {
        let lo = (pair[0] & 0x0F) as u8;
        let hi = pair.get(1).map_or(0, |&q| (q & 0x0F) as u8);
        *byte = lo | (hi << 4);
    }
    Ok(())
}

/// Unpacks `out.len()` codes from nibbles.
pub fn unpack4(packed: &[u8], kind: Int4, out: &mut [i32]) -> Result<()> {
    check_len("packed input", packed_len(out.len()), packed.len())?;
    for (i, o) in out.iter_mut().enumerate() {
        let b = packed[i / 2];
        *o = kind.decode(if i % 2 == 0 { b } else { b >> 4 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_round_trips() {
        for kind in [Int4::Signed, Int4::Unsigned] {
            let r = kind.qtype().full_range();
            for a in r.qmin()..=r.qmax() {
                for b in r.qmin()..=r.qmax() {
                    let mut p = [0u8];
                    pack4(&[a, b], kind, &mut p).unwrap();
                    let mut back = [0i32; 2];
                    unpack4(&p, kind, &mut back).unwrap();
                    assert_eq!(back, [a, b]);
                }
            }
        }
    }

    #[test]
    fn layout_and_errors() {
        let mut p = [0u8; 2];
        pack4(&[1, 2, 3], Int4::Unsigned, &mut p).unwrap();
        assert_eq!(p, [0x21, 0x03]);
        assert!(pack4(&[16], Int4::Unsigned, &mut p[..1]).is_err());
        assert!(pack4(&[-9], Int4::Signed, &mut p[..1]).is_err());
        assert!(pack4(&[1, 2, 3], Int4::Unsigned, &mut p[..1]).is_err());
        assert_eq!(packed_len(0), 0);
        assert_eq!(packed_len(7), 4);
    }
}
