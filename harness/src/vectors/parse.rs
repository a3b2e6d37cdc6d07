//! Reading `quant-vectors/1` files: one JSON object (a [`Case`]) per line.
//!
//! Every value is checked as it is read, and every problem becomes a message naming the field
//! (`inputs.x.data[17]: ...`); the runner prefixes it with `file:line`. Nothing here panics on
//! any input.
//!
//! * Float data is parsed as f64 (serde_json with `float_roundtrip`, so every decimal rendering
//!   reads back as the value it was printed from) and then rounded to the tensor's dtype. A value
//!   that is not finite in that dtype is an error: the format has no NaN or infinity.
//! * Integer data must be exact integers inside the dtype's range (`3.0` is accepted as 3,
//!   `3.5` and `300` for `u8` are errors).
//! * The element count must equal the product of the shape (a zero-size dimension means no data).

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The only format version this runner reads.
pub const FORMAT: &str = "quant-vectors/1";

/// A tensor element type of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
    I8,
    U8,
    I32,
    I64,
}

impl DType {
    pub fn parse(s: &str) -> Option<DType> {
        Some(match s {
            "f32" => DType::F32,
            "f64" => DType::F64,
            "i8" => DType::I8,
            "u8" => DType::U8,
            "i32" => DType::I32,
            "i64" => DType::I64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The integer range of an integer dtype.
    fn int_range(self) -> (i64, i64) {
        match self {
            DType::I8 => (i8::MIN as i64, i8::MAX as i64),
            DType::U8 => (0, u8::MAX as i64),
            DType::I32 => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        }
    }
}

/// The flat, row-major elements of a tensor, in their dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64 (exact for every dtype but i64 beyond 2^53), `None` past the end.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            Data::F32(v) => v.get(i).map(|&x| x as f64),
            Data::F64(v) => v.get(i).copied(),
            Data::I8(v) => v.get(i).map(|&x| x as f64),
            Data::U8(v) => v.get(i).map(|&x| x as f64),
            Data::I32(v) => v.get(i).map(|&x| x as f64),
            Data::I64(v) => v.get(i).map(|&x| x as f64),
        }
    }

    /// Element `i` as an exact integer, `None` for float data or past the end.
    pub fn get_i64(&self, i: usize) -> Option<i64> {
        match self {
            Data::F32(_) | Data::F64(_) => None,
            Data::I8(v) => v.get(i).map(|&x| x as i64),
            Data::U8(v) => v.get(i).map(|&x| x as i64),
            Data::I32(v) => v.get(i).map(|&x| x as i64),
            Data::I64(v) => v.get(i).copied(),
        }
    }
}

/// A tensor: shape (row-major) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    /// A tensor whose element count is known to match `shape` (the ops build their outputs so).
    pub fn new(shape: Vec<usize>, data: Data) -> Tensor {
        Tensor { shape, data }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The optional `tolerance` object; every field defaults to 0 (see `VECTORS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
    /// At most this fraction of the elements may differ from expected at all.
    pub mismatch_fraction: Option<f64>,
}

/// One golden-vector case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub profile: String,
    pub op: String,
    pub name: String,
    pub source: Option<String>,
    pub attrs: Map<String, Value>,
    pub inputs: BTreeMap<String, Tensor>,
    pub outputs: BTreeMap<String, Tensor>,
    /// `None`: every element must be equal.
    pub tolerance: Option<Tolerance>,
}

/// What could be read of a line that failed to parse as a case: its profile, op and name when
/// they are there, to file the failure under.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Partial {
    pub profile: Option<String>,
    pub op: Option<String>,
    pub name: Option<String>,
}

/// A line that is not a valid case.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub partial: Partial,
    pub message: String,
}

/// Parses one line (a JSON object) into a [`Case`].
pub fn parse_case(line: &str) -> Result<Case, ParseError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| ParseError { partial: Partial::default(), message: format!("invalid JSON: {e}") })?;
    let Value::Object(obj) = value else {
        return Err(ParseError { partial: Partial::default(), message: "a case must be a JSON object".into() });
    };
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
    let partial = Partial { profile: text("profile"), op: text("op"), name: text("name") };
    case_from_object(&obj).map_err(|message| ParseError { partial, message })
}

fn case_from_object(obj: &Map<String, Value>) -> Result<Case, String> {
    let string = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{key}: expected a string, got {}", kind(other))),
            None => Err(format!("missing field {key:?}")),
        }
    };
    let format = string("format")?;
    if format != FORMAT {
        return Err(format!("format {format:?} is not {FORMAT:?}"));
    }
    let profile = string("profile")?;
    let op = string("op")?;
    let name = string("name")?;
    let source = match obj.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("source: expected a string, got {}", kind(other))),
    };
    let attrs = match obj.get("attrs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("attrs: expected an object, got {}", kind(other))),
    };
    let inputs = tensors(obj, "inputs")?;
    let outputs = tensors(obj, "outputs")?;
    if outputs.is_empty() {
        return Err("outputs: a case must name at least one output".into());
    }
    let tolerance = match obj.get("tolerance") {
        None | Some(Value::Null) => None,
        Some(v) => Some(tolerance(v)?),
    };
    Ok(Case { profile, op, name, source, attrs, inputs, outputs, tolerance })
}

fn tensors(obj: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, Tensor>, String> {
    match obj.get(key) {
        Some(Value::Object(m)) => {
            m.iter().map(|(name, v)| Ok((name.clone(), tensor(v, &format!("{key}.{name}"))?))).collect()
        }
        Some(other) => Err(format!("{key}: expected an object of tensors, got {}", kind(other))),
        None => Err(format!("missing field {key:?}")),
    }
}

/// Parses `{"dtype": ..., "shape": [...], "data": [...]}`; `what` names it in errors.
pub fn tensor(v: &Value, what: &str) -> Result<Tensor, String> {
    let Value::Object(m) = v else {
        return Err(format!("{what}: expected a tensor object, got {}", kind(v)));
    };
    let dtype_name = match m.get("dtype") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("{what}.dtype: expected a string, got {}", kind(other))),
        None => return Err(format!("{what}: missing dtype")),
    };
    let dtype = DType::parse(dtype_name)
        .ok_or_else(|| format!("{what}.dtype: {dtype_name:?} is not one of f32, f64, i8, u8, i32, i64"))?;
    let shape = match m.get("shape") {
        Some(Value::Array(dims)) => dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| format!("{what}.shape[{i}]: expected a non-negative integer, got {d}"))
            })
            .collect::<Result<Vec<usize>, String>>()?,
        Some(other) => return Err(format!("{what}.shape: expected a list, got {}", kind(other))),
        None => return Err(format!("{what}: missing shape")),
    };
    let items = match m.get("data") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("{what}.data: expected a list, got {}", kind(other))),
        None => return Err(format!("{what}: missing data")),
    };
    let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if numel != Some(items.len()) {
        return Err(format!("{what}: shape {shape:?} needs {} elements, data has {}", fmt_numel(numel), items.len()));
    }
    let data = match dtype {
        DType::F32 => Data::F32(floats(items, what, |x| {
            let y = x as f32;
            y.is_finite().then_some(y)
        })?),
        DType::F64 => Data::F64(floats(items, what, Some)?),
        DType::I8 => Data::I8(ints(items, what, dtype)?.into_iter().map(|v| v as i8).collect()),
        DType::U8 => Data::U8(ints(items, what, dtype)?.into_iter().map(|v| v as u8).collect()),
        DType::I32 => Data::I32(ints(items, what, dtype)?.into_iter().map(|v| v as i32).collect()),
        DType::I64 => Data::I64(ints(items, what, dtype)?),
    };
    Ok(Tensor { shape, data })
}

/// Float element types that can hold a non-finite value.
trait FromNonFinite: Sized {
    fn from_non_finite(x: f64) -> Option<Self>;
}

impl FromNonFinite for f32 {
    fn from_non_finite(x: f64) -> Option<f32> {
        Some(x as f32)
    }
}

impl FromNonFinite for f64 {
    fn from_non_finite(x: f64) -> Option<f64> {
        Some(x)
    }
}

fn fmt_numel(n: Option<usize>) -> String {
    n.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
}

/// The value of the strings `"inf"`, `"-inf"`, `"nan"` (also `"Infinity"`, `"-Infinity"`, `"NaN"`).
fn non_finite(s: &str) -> Option<f64> {
    match s {
        "inf" | "Infinity" | "+inf" => Some(f64::INFINITY),
        "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        "nan" | "NaN" => Some(f64::NAN),
        _ => None,
    }
}

fn floats<T: FromNonFinite>(items: &[Value], what: &str, cast: impl Fn(f64) -> Option<T>) -> Result<Vec<T>, String> {
    let cast_non_finite = T::from_non_finite;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // quantproof's extension for its own extra cases: the strings "inf", "-inf" and "nan"
            // (the recorded framework vectors never hold non-finite values).
            if let Some(special) = v.as_str().and_then(non_finite) {
                return cast_non_finite(special)
                    .ok_or_else(|| format!("{what}.data[{i}]: {special} does not fit the dtype"));
            }
            let x = v.as_f64().ok_or_else(|| format!("{what}.data[{i}]: expected a number, got {}", kind(v)))?;
            cast(x).ok_or_else(|| format!("{what}.data[{i}]: {x} is not a finite value of the tensor's dtype"))
        })
        .collect()
}

fn ints(items: &[Value], what: &str, dtype: DType) -> Result<Vec<i64>, String> {
    let (lo, hi) = dtype.int_range();
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = exact_int(v).ok_or_else(|| format!("{what}.data[{i}]: expected an integer, got {v}"))?;
            if x < lo || x > hi {
                return Err(format!("{what}.data[{i}]: {x} does not fit {}", dtype.name()));
            }
            Ok(x)
        })
        .collect()
}

/// A JSON number that is exactly an i64 (`3` or `3.0`, not `3.5`).
pub fn exact_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let x = v.as_f64()?;
    // 2^63 is exactly representable; every integral f64 in [-2^63, 2^63) converts exactly.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    (x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x)).then_some(x as i64)
}

fn tolerance(v: &Value) -> Result<Tolerance, String> {
    let Value::Object(m) = v else {
        return Err(format!("tolerance: expected an object, got {}", kind(v)));
    };
    let mut t = Tolerance::default();
    for (key, val) in m {
        let x = match val {
            Value::Null => continue,
            other => {
                other.as_f64().ok_or_else(|| format!("tolerance.{key}: expected a number, got {}", kind(other)))?
            }
        };
        if !(x.is_finite() && x >= 0.0) {
            return Err(format!("tolerance.{key}: {x} must be finite and non-negative"));
        }
        match key.as_str() {
            "abs" => t.abs = x,
            "rel" => t.rel = x,
            "mismatch_fraction" => {
                if x > 1.0 {
                    return Err(format!("tolerance.mismatch_fraction: {x} is above 1"));
                }
                t.mismatch_fraction = Some(x)
            }
            other => return Err(format!("tolerance.{other}: unknown field (known: abs, rel, mismatch_fraction)")),
        }
    }
    Ok(t)
}

/// A short name for the JSON type of `v`, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(extra: &str) -> String {
        format!(
            r#"{{"format": "quant-vectors/1", "profile": "torch", "op": "quantize", "name": "c",
               "attrs": {{}}, "inputs": {{"x": {{"dtype": "f32", "shape": [2], "data": [0.1, -0.0]}}}},
               "outputs": {{"y": {{"dtype": "i8", "shape": [2, 1], "data": [1, 2.0]}}}}{extra}}}"#
        )
    }

    #[test]
    fn parses_a_case() {
        let c = parse_case(&line("")).unwrap();
        assert_eq!(c.inputs["x"].data, Data::F32(vec![0.1, -0.0]));
        assert_eq!(c.outputs["y"].data, Data::I8(vec![1, 2]));
        assert_eq!(c.outputs["y"].shape, vec![2, 1]);
        assert_eq!(c.tolerance, None);
        let c = parse_case(&line(r#", "tolerance": {"abs": 1, "mismatch_fraction": 0.02}"#)).unwrap();
        assert_eq!(c.tolerance, Some(Tolerance { abs: 1.0, rel: 0.0, mismatch_fraction: Some(0.02) }));
    }

    #[test]
    fn floats_round_trip_exactly() {
        // The shortest renderings of f32 values parse back to the same f32.
        for x in [0.1f32, 1.0e-45, f32::MAX, 0.048866514, f32::MIN_POSITIVE] {
            let v: Value = serde_json::from_str(&format!("[{}]", x as f64)).unwrap();
            let t = tensor(&serde_json::json!({"dtype": "f32", "shape": [1], "data": v}), "t").unwrap();
            assert_eq!(t.data, Data::F32(vec![x]));
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |json: &str| parse_case(json).unwrap_err().message;
        assert!(bad("{not json").starts_with("invalid JSON"));
        assert!(bad("[1]").contains("JSON object"));
        let base = line("");
        assert!(bad(&base.replace("quant-vectors/1", "quant-vectors/2")).contains("format"));
        assert!(bad(&base.replace(r#""shape": [2],"#, r#""shape": [3],"#)).contains("needs 3 elements"));
        assert!(bad(&base.replace("[1, 2.0]", "[1, 2.5]")).contains("outputs.y.data[1]"));
        assert!(bad(&base.replace("[1, 2.0]", "[1, 200]")).contains("does not fit i8"));
        assert!(bad(&base.replace(r#""dtype": "i8""#, r#""dtype": "i16""#)).contains("outputs.y.dtype"));
        assert!(bad(&base.replace("0.1, -0.0", "1e39, 0")).contains("inputs.x.data[0]"));
        assert!(bad(&base.replace(r#""shape": [2, 1]"#, r#""shape": [-2, 1]"#)).contains("shape[0]"));
        assert!(bad(&line(r#", "tolerance": {"ulp": 1}"#)).contains("unknown field"));
        assert!(bad(&line(r#", "tolerance": {"abs": -1}"#)).contains("non-negative"));
        let e = parse_case(&base.replace(r#""name": "c","#, "")).unwrap_err();
        assert!(e.message.contains("name"));
        assert_eq!(e.partial.op.as_deref(), Some("quantize"));
    }

    #[test]
    fn zero_size_tensors() {
        let t = tensor(&serde_json::json!({"dtype": "u8", "shape": [0, 3], "data": []}), "t").unwrap();
        assert!(t.is_empty());
        assert_eq!(t.shape, vec![0, 3]);
        let t = tensor(&serde_json::json!({"dtype": "f32", "shape": [], "data": [1.5]}), "t").unwrap();
        assert_eq!(t.len(), 1);
    }
}
