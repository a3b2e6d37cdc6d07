//! Comparing a computed tensor with the expected one, by the rules of `VECTORS.md`.
//!
//! * The shapes must be equal (the dtypes need not be: values are compared as numbers).
//! * Without a tolerance every element must be equal; integers are compared exactly as i64,
//!   floats as f64, so `0.0 == -0.0` and a NaN never equals anything.
//! * With a tolerance, every element must satisfy `|got - expected| <= abs + rel * |expected|`
//!   (in f64), and when `mismatch_fraction` is present at most that fraction of the elements
//!   may differ from expected at all.

use super::parse::{Tensor, Tolerance};
use serde::Serialize;

/// How many mismatching elements a failure lists.
pub const SHOWN_MISMATCHES: usize = 5;

/// One element that differs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mismatch {
    /// Flat (row-major) index.
    pub index: usize,
    pub got: f64,
    pub expected: f64,
}

/// Why a tensor does not match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareFailure {
    pub message: String,
    /// The first few offending elements ([`SHOWN_MISMATCHES`] at most).
    pub mismatches: Vec<Mismatch>,
}

/// Compares `got` with `expected` under `tolerance` (`None`: exact).
pub fn compare(got: &Tensor, expected: &Tensor, tolerance: Option<&Tolerance>) -> Result<(), CompareFailure> {
    if got.shape != expected.shape || got.len() != expected.len() {
        return Err(CompareFailure {
            message: format!("shape {:?} (got) differs from {:?} (expected)", got.shape, expected.shape),
            mismatches: Vec::new(),
        });
    }
    let n = expected.len();
    let both_int = !got.dtype().is_float() && !expected.dtype().is_float();
    let value = |t: &Tensor, i: usize| t.data.get_f64(i).unwrap_or(f64::NAN);
    let equal = |i: usize| {
        if both_int {
            got.data.get_i64(i) == expected.data.get_i64(i)
        } else {
            value(got, i) == value(expected, i)
        }
    };
    let mismatch = |i: usize| Mismatch { index: i, got: value(got, i), expected: value(expected, i) };
    let tol = tolerance.copied().unwrap_or_default();
    let within = |i: usize| {
        if equal(i) {
            return true;
        }
        let (g, e) = (value(got, i), value(expected, i));
        (g - e).abs() <= tol.abs + tol.rel * e.abs()
    };
    let outside: Vec<usize> = (0..n).filter(|&i| !within(i)).collect();
    if !outside.is_empty() {
        let bound = if tolerance.is_none() {
            "exact equality".to_string()
        } else {
            format!("|got - expected| <= {} + {} * |expected|", tol.abs, tol.rel)
        };
        return Err(CompareFailure {
            message: format!("{} of {n} elements fail {bound}", outside.len()),
            mismatches: outside.iter().take(SHOWN_MISMATCHES).map(|&i| mismatch(i)).collect(),
        });
    }
    if let Some(fraction) = tol.mismatch_fraction {
        let differ: Vec<usize> = (0..n).filter(|&i| !equal(i)).collect();
        if differ.len() as f64 > fraction * n as f64 {
            return Err(CompareFailure {
                message: format!(
                    "{} of {n} elements differ ({:.2}%), more than mismatch_fraction {}",
                    differ.len(),
                    100.0 * differ.len() as f64 / n as f64,
                    fraction
                ),
                mismatches: differ.iter().take(SHOWN_MISMATCHES).map(|&i| mismatch(i)).collect(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse::Data;
    use super::*;

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::new(vec![v.len()], Data::F32(v.to_vec()))
    }

    fn i8s(v: &[i8]) -> Tensor {
        Tensor::new(vec![v.len()], Data::I8(v.to_vec()))
    }

    #[test]
    fn exact() {
        assert!(compare(&f32s(&[0.0, 1.5]), &f32s(&[-0.0, 1.5]), None).is_ok());
        let e = compare(&f32s(&[0.0, 1.5]), &f32s(&[0.0, 1.25]), None).unwrap_err();
        assert_eq!(e.mismatches, vec![Mismatch { index: 1, got: 1.5, expected: 1.25 }]);
        assert!(compare(&f32s(&[f32::NAN]), &f32s(&[0.0]), None).is_err());
        // Integers compare by value whatever their dtype.
        let wide = Tensor::new(vec![2], Data::I64(vec![-3, 7]));
        assert!(compare(&i8s(&[-3, 7]), &wide, None).is_ok());
        assert!(compare(&i8s(&[-3, 8]), &wide, None).is_err());
    }

    #[test]
    fn shapes_must_match() {
        let a = Tensor::new(vec![2, 1], Data::I8(vec![1, 2]));
        let e = compare(&a, &i8s(&[1, 2]), None).unwrap_err();
        assert!(e.message.contains("shape"));
    }

    #[test]
    fn tolerances() {
        let t = Tolerance { abs: 1.0, rel: 0.0, mismatch_fraction: Some(0.25) };
        let exp = i8s(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(compare(&i8s(&[1, -1, 0, 0, 0, 0, 0, 0]), &exp, Some(&t)).is_ok());
        // Three of eight differ: more than a quarter.
        assert!(compare(&i8s(&[1, -1, 1, 0, 0, 0, 0, 0]), &exp, Some(&t)).unwrap_err().message.contains("differ"));
        // Within the fraction, but one element is 2 away.
        assert!(compare(&i8s(&[2, 0, 0, 0, 0, 0, 0, 0]), &exp, Some(&t)).is_err());
        let t = Tolerance { abs: 0.0, rel: 0.01, mismatch_fraction: None };
        assert!(compare(&f32s(&[100.9, -201.0]), &f32s(&[100.0, -200.0]), Some(&t)).is_ok());
        assert!(compare(&f32s(&[101.1]), &f32s(&[100.0]), Some(&t)).is_err());
        // An empty tensor matches an empty tensor of the same shape.
        assert!(compare(&f32s(&[]), &f32s(&[]), Some(&t)).is_ok());
    }
}
