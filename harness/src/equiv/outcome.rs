//! What an operation produced, and the exact comparison of two such results.
//!
//! An [`Outcome`] is either the output tensors of a call or the [`QuantError`] it returned.
//! [`compare`] holds the engine to the reference exactly:
//!
//! * integers (codes, masks, zero points) are equal;
//! * floats are **bit-identical** ([`Compare::Bits`]): the kernels promise IEEE operations in
//!   the reference's order, so even the sign of a zero must match;
//! * where an op promises less it says so in its tensor's [`Compare`]: `Engine::min_max` does not
//!   order signed zeros (see `Kernels::min_max`), so its outputs use [`Compare::ZeroSignFree`]
//!   (bit-identical, except that `+0.0` and `-0.0` match);
//! * errors are equal variant for variant and field for field. They are compared through their
//!   `Debug` text, so a `NaN` carried in an error (`InvalidScale { scale: NaN }`) equals itself.
//!
//! On error the output buffers' contents are unspecified, so they are not compared.

use quantproof_reference::error::QuantError;
use std::fmt;

/// How two float tensors must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Bit-identical (integers: equal).
    Bits,
    /// Bit-identical except that `+0.0` matches `-0.0`.
    ZeroSignFree,
}

/// The elements of one output tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Data::I8(_) => "i8",
            Data::U8(_) => "u8",
            Data::I32(_) => "i32",
            Data::F32(_) => "f32",
            Data::Bool(_) => "bool",
        }
    }

    /// Element `i` as text (floats with their bit pattern).
    pub fn show(&self, i: usize) -> String {
        match self {
            Data::I8(v) => v[i].to_string(),
            Data::U8(v) => v[i].to_string(),
            Data::I32(v) => v[i].to_string(),
            Data::F32(v) => show_f32(v[i]),
            Data::Bool(v) => v[i].to_string(),
        }
    }
}

/// `1.5e0 (0x3fc00000)`: a float with its bits, so `-0.0` and NaN payloads are visible.
pub fn show_f32(v: f32) -> String {
    format!("{v:e} (0x{:08x})", v.to_bits())
}

/// One named output.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: &'static str,
    pub data: Data,
    pub compare: Compare,
}

impl Tensor {
    pub fn new(name: &'static str, data: Data) -> Tensor {
        Tensor { name, data, compare: Compare::Bits }
    }

    pub fn i8(name: &'static str, v: &[i8]) -> Tensor {
        Tensor::new(name, Data::I8(v.to_vec()))
    }

    pub fn u8(name: &'static str, v: &[u8]) -> Tensor {
        Tensor::new(name, Data::U8(v.to_vec()))
    }

    pub fn i32(name: &'static str, v: &[i32]) -> Tensor {
        Tensor::new(name, Data::I32(v.to_vec()))
    }

    pub fn f32(name: &'static str, v: &[f32]) -> Tensor {
        Tensor::new(name, Data::F32(v.to_vec()))
    }

    pub fn bool(name: &'static str, v: &[bool]) -> Tensor {
        Tensor::new(name, Data::Bool(v.to_vec()))
    }

    /// The same tensor compared under `compare`.
    pub fn with_compare(mut self, compare: Compare) -> Tensor {
        self.compare = compare;
        self
    }
}

/// The outputs of a call, or its error.
pub type Outcome = Result<Vec<Tensor>, QuantError>;

/// How an engine's outcome differs from the reference's.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// One side failed, the other did not.
    OkVsErr { reference: String, engine: String },
    /// Both failed, differently.
    Errors { reference: QuantError, engine: QuantError },
    /// A different number of output tensors, or different names.
    Tensors { reference: Vec<&'static str>, engine: Vec<&'static str> },
    /// A tensor of another element type or length.
    Layout { tensor: &'static str, reference: String, engine: String },
    /// Elements differ: the first at `first`, `count` in all.
    Values { tensor: &'static str, first: usize, count: usize, reference: String, engine: String },
}

impl Difference {
    /// The flat index of the first differing element, when the difference is in values.
    pub fn first_index(&self) -> Option<usize> {
        match self {
            Difference::Values { first, .. } => Some(*first),
            _ => None,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::OkVsErr { reference, engine } => {
                write!(f, "reference: {reference}; engine: {engine}")
            }
            Difference::Errors { reference, engine } => {
                write!(f, "different errors: reference {reference:?}, engine {engine:?}")
            }
            Difference::Tensors { reference, engine } => {
                write!(f, "different outputs: reference {reference:?}, engine {engine:?}")
            }
            Difference::Layout { tensor, reference, engine } => {
                write!(f, "output {tensor}: reference {reference}, engine {engine}")
            }
            Difference::Values { tensor, first, count, reference, engine } => write!(
                f,
                "output {tensor}: {count} element(s) differ; first at index {first}: reference {reference}, engine {engine}"
            ),
        }
    }
}

/// True when two errors are the same variant with the same fields (compared through `Debug`, so
/// NaN fields match and `-0.0` does not match `0.0`).
pub fn same_error(a: &QuantError, b: &QuantError) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn summarize(o: &Outcome) -> String {
    match o {
        Ok(ts) => format!(
            "Ok({})",
            ts.iter()
                .map(|t| format!("{}: {}[{}]", t.name, t.data.type_name(), t.data.len()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("Err({e:?})"),
    }
}

fn f32_equal(a: f32, b: f32, c: Compare) -> bool {
    a.to_bits() == b.to_bits() || (c == Compare::ZeroSignFree && a == 0.0 && b == 0.0)
}

/// Indices where two tensors of the same type and length differ (`None`: type or length differ).
fn differing(r: &Tensor, e: &Tensor) -> Option<Vec<usize>> {
    fn diff<T>(a: &[T], b: &[T], eq: impl Fn(&T, &T) -> bool) -> Option<Vec<usize>> {
        if a.len() != b.len() {
            return None;
        }
        Some(a.iter().zip(b).enumerate().filter(|(_, (x, y))| !eq(x, y)).map(|(i, _)| i).collect())
    }
    // The reference decides how strictly its outputs are compared.
    let c = r.compare;
    match (&r.data, &e.data) {
        (Data::I8(a), Data::I8(b)) => diff(a, b, |x, y| x == y),
        (Data::U8(a), Data::U8(b)) => diff(a, b, |x, y| x == y),
        (Data::I32(a), Data::I32(b)) => diff(a, b, |x, y| x == y),
        (Data::Bool(a), Data::Bool(b)) => diff(a, b, |x, y| x == y),
        (Data::F32(a), Data::F32(b)) => diff(a, b, |x, y| f32_equal(*x, *y, c)),
        _ => None,
    }
}

/// Compares an engine's outcome with the reference's (see the module docs for the rules).
pub fn compare(reference: &Outcome, engine: &Outcome) -> Result<(), Difference> {
    match (reference, engine) {
        (Err(a), Err(b)) => {
            if same_error(a, b) {
                Ok(())
            } else {
                Err(Difference::Errors { reference: a.clone(), engine: b.clone() })
            }
        }
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            Err(Difference::OkVsErr { reference: summarize(reference), engine: summarize(engine) })
        }
        (Ok(rs), Ok(es)) => {
            let names = |ts: &[Tensor]| ts.iter().map(|t| t.name).collect::<Vec<_>>();
            if names(rs) != names(es) {
                return Err(Difference::Tensors { reference: names(rs), engine: names(es) });
            }
            for (r, e) in rs.iter().zip(es) {
                match differing(r, e) {
                    None => {
                        return Err(Difference::Layout {
                            tensor: r.name,
                            reference: format!("{}[{}]", r.data.type_name(), r.data.len()),
                            engine: format!("{}[{}]", e.data.type_name(), e.data.len()),
                        })
                    }
                    Some(idx) if !idx.is_empty() => {
                        let i = idx[0];
                        return Err(Difference::Values {
                            tensor: r.name,
                            first: i,
                            count: idx.len(),
                            reference: r.data.show(i),
                            engine: e.data.show(i),
                        });
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    //! The comparison must catch every kind of wrong answer a broken kernel can give: these
    //! tests feed it deliberately wrong engine outcomes.
    use super::*;

    fn ok(ts: Vec<Tensor>) -> Outcome {
        Ok(ts)
    }

    #[test]
    fn identical_outcomes_match() {
        let r = ok(vec![Tensor::i8("y", &[1, -2, 3]), Tensor::f32("z", &[0.5, -0.0, f32::INFINITY])]);
        assert_eq!(compare(&r, &r.clone()), Ok(()));
        let e: Outcome = Err(QuantError::InvalidScale { index: 2, scale: f64::NAN });
        assert_eq!(compare(&e, &e.clone()), Ok(()), "a NaN field in an error equals itself");
    }

    #[test]
    fn a_wrong_code_is_caught_with_its_index() {
        let r = ok(vec![Tensor::i8("y", &[1, -2, 3, 4])]);
        let e = ok(vec![Tensor::i8("y", &[1, -2, 4, 5])]);
        match compare(&r, &e) {
            Err(Difference::Values { tensor: "y", first: 2, count: 2, reference, engine }) => {
                assert_eq!((reference.as_str(), engine.as_str()), ("3", "4"));
            }
            other => panic!("{other:?}"),
        }
        let r = ok(vec![Tensor::u8("y", &[0, 255])]);
        let e = ok(vec![Tensor::u8("y", &[0, 254])]);
        assert!(compare(&r, &e).is_err());
        let r = ok(vec![Tensor::bool("mask", &[true, false])]);
        let e = ok(vec![Tensor::bool("mask", &[true, true])]);
        assert_eq!(compare(&r, &e).unwrap_err().first_index(), Some(1));
    }

    #[test]
    fn floats_must_be_bit_identical() {
        let r = ok(vec![Tensor::f32("y", &[0.0, 1.0])]);
        // The sign of zero.
        let e = ok(vec![Tensor::f32("y", &[-0.0, 1.0])]);
        assert_eq!(compare(&r, &e).unwrap_err().first_index(), Some(0));
        // One ulp.
        let e = ok(vec![Tensor::f32("y", &[0.0, f32::from_bits(1.0f32.to_bits() + 1)])]);
        assert_eq!(compare(&r, &e).unwrap_err().first_index(), Some(1));
        // A NaN where a number belongs, and NaNs with different payloads.
        let e = ok(vec![Tensor::f32("y", &[0.0, f32::NAN])]);
        assert!(compare(&r, &e).is_err());
        let r = ok(vec![Tensor::f32("y", &[f32::from_bits(0x7fc0_0001)])]);
        let e = ok(vec![Tensor::f32("y", &[f32::from_bits(0x7fc0_0002)])]);
        assert!(compare(&r, &e).is_err());
    }

    #[test]
    fn zero_sign_free_forgives_only_the_sign_of_zero() {
        let r = ok(vec![Tensor::f32("min", &[0.0, 2.0]).with_compare(Compare::ZeroSignFree)]);
        let e = ok(vec![Tensor::f32("min", &[-0.0, 2.0])]);
        assert_eq!(compare(&r, &e), Ok(()));
        let e = ok(vec![Tensor::f32("min", &[-0.0, f32::from_bits(2.0f32.to_bits() - 1)])]);
        assert_eq!(compare(&r, &e).unwrap_err().first_index(), Some(1));
        let e = ok(vec![Tensor::f32("min", &[1e-45, 2.0])]);
        assert_eq!(compare(&r, &e).unwrap_err().first_index(), Some(0), "a subnormal is not zero");
    }

    #[test]
    fn errors_must_match_exactly() {
        let a: Outcome = Err(QuantError::NanInput { what: "x", index: 3 });
        let b: Outcome = Err(QuantError::NanInput { what: "x", index: 4 });
        assert!(matches!(compare(&a, &b), Err(Difference::Errors { .. })));
        let c: Outcome = Err(QuantError::NonFinite { what: "x", index: 3, value: f64::NAN });
        assert!(compare(&a, &c).is_err());
        let d: Outcome = Err(QuantError::InvalidScale { index: 0, scale: 0.0 });
        let e: Outcome = Err(QuantError::InvalidScale { index: 0, scale: -0.0 });
        assert!(compare(&d, &e).is_err(), "-0.0 and 0.0 are different scales to report");
        let ok1 = ok(vec![Tensor::i8("y", &[])]);
        assert!(matches!(compare(&a, &ok1), Err(Difference::OkVsErr { .. })));
        assert!(matches!(compare(&ok1, &a), Err(Difference::OkVsErr { .. })));
    }

    #[test]
    fn shape_of_the_outputs_must_match() {
        let r = ok(vec![Tensor::i8("y", &[1, 2])]);
        assert!(matches!(compare(&r, &ok(vec![Tensor::i8("y", &[1])])), Err(Difference::Layout { .. })));
        assert!(matches!(compare(&r, &ok(vec![Tensor::u8("y", &[1, 2])])), Err(Difference::Layout { .. })));
        assert!(matches!(compare(&r, &ok(vec![Tensor::i8("q", &[1, 2])])), Err(Difference::Tensors { .. })));
        assert!(matches!(compare(&r, &ok(vec![])), Err(Difference::Tensors { .. })));
        let two = ok(vec![Tensor::i8("y", &[1, 2]), Tensor::i32("zero_point", &[3])]);
        assert!(compare(&r, &two).is_err());
        let two_bad = ok(vec![Tensor::i8("y", &[1, 2]), Tensor::i32("zero_point", &[4])]);
        assert_eq!(compare(&two, &two_bad).unwrap_err().first_index(), Some(0));
    }
}
