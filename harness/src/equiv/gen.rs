//! Cases: shapes, parameters and adversarial inputs, all derived from one seed.
//!
//! A [`CaseSpec`] (seed, target length, [`Layout`], rule, misalignment, [`Mix`]) is all a
//! descriptor needs to build its [`Case`]; the same spec always builds the same case.
//!
//! ## Layouts: one per row of the planner table in `quantproof_optimized::ops`
//!
//! | [`Layout`] | shape (axis in brackets) | planner row |
//! |---|---|---|
//! | `PerTensor` | `[n]`, `[1, n]`, `[n, 1]`, `[1, n, 1]` | per-tensor, cut into 64K chunks |
//! | `AxisInnermost` | `[o, (c)]`, `[(n)]`, `[a, b, (c)]` | per-axis, `inner == 1` |
//! | `AxisOuter` | `[(c), inner]`, `[o, (c), inner]`, `inner >= 16` | per-axis, one uniform span per run |
//! | `AxisMiddle` | `[o, (c), inner]`, `1 < inner < 16` | per-axis, rows with per-element parameters |
//! | `BlockSmall` | `[o, (nb * b)]`, `b < 16`, `inner == 1` | per-block, expanded parameters |
//! | `BlockLarge` | `[o, (nb * b)]`, `b >= 16`, `inner == 1` | per-block, one uniform span per block |
//! | `BlockInner` | `[o, (nb * b), inner]`, `inner > 1` | per-block, parameter slices per row |
//!
//! Per-tensor cases have exactly the target length; the other layouts pick their dimensions
//! randomly (span lengths cover every vector tail) with a product near the target, and exactly 0
//! for a target of 0 (so empty tensors with non-empty parameter lists are covered too).
//!
//! ## Inputs: adversarial classes ([`Class`])
//!
//! For an element whose parameters are `s, z` and range `[qmin, qmax]`, with `lo = qmin - z` and
//! `hi = qmax - z`:
//!
//! * `Tie`: `x` with `x / s == k + 1/2` exactly in f32 (or `x * RN(1/s) == k + 1/2`, for the
//!   other scale op: a tie for one op is a near-tie for the other), `k` in `[lo - 2, hi + 1]`, so
//!   the ties at and just past both clamp boundaries are included;
//! * `NearTie`: a tie moved by 1 or 2 ulps either way;
//! * `Boundary`: `RN(k s)` for `k` in `{lo - 1, lo, hi, hi + 1}`, and 1 ulp either side;
//! * `Dequantized`: `f32(k) * s` for `k` in `[lo, hi]`, exactly what dequantize produces;
//! * `Ordinary`: uniform over `[(lo - 3) s, (hi + 3) s]`;
//! * `Zero` (`+0.0`, `-0.0`), `Subnormal`, `Huge` (`±3e38`, `±f32::MAX`, random above `1e30`),
//!   `Infinity`;
//! * `Nan`: a few NaNs among ordinary values (every op must then return the same error).
//!
//! [`Mix::Mixed`] draws every element's class at random (NaN and, for ops that need finite input,
//! infinities only in a few whole cases); [`Mix::Only`] fills a case with one class, so each
//! class is also tested on its own. Scales include awkward values (`0.1`, `1/3`, `7.77`,
//! `1e-20`, powers of two, random bit patterns, rarely a subnormal); zero points span the range
//! and its ends.

use super::outcome::Data;
use super::rng::Rng;
use quantproof_reference::pack::{packed_len, Int4};
use quantproof_reference::profile::Profile;
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{QuantizeRule, ScaleOp};
use quantproof_reference::rounding::RoundingMode;
use quantproof_reference::scheme::{Axis, CodeRange, Granularity, QType};
use std::fmt;

/// How a case's parameters are laid out over its tensor (see the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    PerTensor,
    AxisInnermost,
    AxisOuter,
    AxisMiddle,
    BlockSmall,
    BlockLarge,
    BlockInner,
}

impl Layout {
    pub const ALL: [Layout; 7] = [
        Layout::PerTensor,
        Layout::AxisInnermost,
        Layout::AxisOuter,
        Layout::AxisMiddle,
        Layout::BlockSmall,
        Layout::BlockLarge,
        Layout::BlockInner,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::PerTensor => "per_tensor",
            Layout::AxisInnermost => "axis_innermost",
            Layout::AxisOuter => "axis_outer",
            Layout::AxisMiddle => "axis_middle",
            Layout::BlockSmall => "block_small",
            Layout::BlockLarge => "block_large",
            Layout::BlockInner => "block_inner",
        }
    }
}

/// A class of input values (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Tie,
    NearTie,
    Boundary,
    Dequantized,
    Ordinary,
    Zero,
    Subnormal,
    Huge,
    Infinity,
    Nan,
}

impl Class {
    pub const ALL: [Class; 10] = [
        Class::Tie,
        Class::NearTie,
        Class::Boundary,
        Class::Dequantized,
        Class::Ordinary,
        Class::Zero,
        Class::Subnormal,
        Class::Huge,
        Class::Infinity,
        Class::Nan,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Tie => "tie",
            Class::NearTie => "near_tie",
            Class::Boundary => "boundary",
            Class::Dequantized => "dequantized",
            Class::Ordinary => "ordinary",
            Class::Zero => "zero",
            Class::Subnormal => "subnormal",
            Class::Huge => "huge",
            Class::Infinity => "infinity",
            Class::Nan => "nan",
        }
    }
}

/// Which classes a case's inputs are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mix {
    /// Every element's class at random.
    Mixed,
    /// Every element of one class (`Nan`: a few NaNs among ordinary values).
    Only(Class),
}

/// Everything a case is built from. The same spec always builds the same case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseSpec {
    pub seed: u64,
    /// Target element count (exact for per-tensor layouts).
    pub len: usize,
    pub layout: Layout,
    /// The quantize rule (a stochastic rule's seed is replaced by one drawn from `seed`).
    pub rule: QuantizeRule,
    /// Inputs and outputs start this many elements into their buffers (misalignment, 0..=3).
    pub offset: usize,
    pub mix: Mix,
}

impl CaseSpec {
    pub fn new(seed: u64, len: usize, layout: Layout, rule: QuantizeRule) -> CaseSpec {
        CaseSpec { seed, len, layout, rule, offset: 0, mix: Mix::Mixed }
    }

    pub fn offset(mut self, offset: usize) -> CaseSpec {
        self.offset = offset;
        self
    }

    pub fn mix(mut self, mix: Mix) -> CaseSpec {
        self.mix = mix;
        self
    }
}

/// Every rule the equivalence runner sweeps: the five deterministic rounding modes under both
/// scale ops, then stochastic rounding under both.
pub fn all_rules() -> Vec<QuantizeRule> {
    let mut v = Vec::new();
    for mode in RoundingMode::DETERMINISTIC.into_iter().chain([RoundingMode::Stochastic { seed: 0 }]) {
        for op in [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal] {
            v.push(QuantizeRule::new(op, mode));
        }
    }
    v
}

/// `divide/half_even`, ...
pub fn rule_name(rule: QuantizeRule) -> String {
    format!("{}/{}", rule.scale_op.name(), rule.rounding.name())
}

/// One named input tensor of a case, in the shape of a golden vector's: element type and data,
/// logical shape, and where the elements sit in their buffer. The buffer holds `offset` filler
/// elements before the tensor (misaligned starts) and `tail` after it (a kernel that reads past
/// its end meets them: NaN for floats, so it reports an error the reference does not). A matrix
/// may be stored with a row stride above its last dimension (`row_stride`; the gap holds filler
/// too), as a strided view of a larger buffer is.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: &'static str,
    pub shape: Vec<usize>,
    /// The whole buffer, fillers included.
    pub data: Data,
    pub offset: usize,
    pub tail: usize,
    /// Elements from one row's start to the next (`shape`'s last dimension when dense).
    pub row_stride: usize,
}

impl Input {
    /// A dense tensor with no fillers.
    pub fn dense(name: &'static str, shape: &[usize], data: Data) -> Input {
        let row_stride = shape.last().copied().unwrap_or(1);
        Input { name, shape: shape.to_vec(), data, offset: 0, tail: 0, row_stride }
    }

    /// Elements of the tensor's view in its buffer (rows with their stride gaps, without the
    /// leading and trailing fillers).
    pub fn view_len(&self) -> usize {
        self.data.len().saturating_sub(self.offset + self.tail)
    }

    fn view<'a, T>(&self, v: &'a [T]) -> &'a [T] {
        let end = v.len().saturating_sub(self.tail);
        &v[self.offset.min(end)..end]
    }

    /// The view as floats (empty for another element type).
    pub fn f32(&self) -> &[f32] {
        match &self.data {
            Data::F32(v) => self.view(v),
            _ => &[],
        }
    }

    pub fn i32(&self) -> &[i32] {
        match &self.data {
            Data::I32(v) => self.view(v),
            _ => &[],
        }
    }

    pub fn u8(&self) -> &[u8] {
        match &self.data {
            Data::U8(v) => self.view(v),
            _ => &[],
        }
    }

    pub fn i8(&self) -> &[i8] {
        match &self.data {
            Data::I8(v) => self.view(v),
            _ => &[],
        }
    }

    /// `name: u8[2, 3] (offset 1, row stride 5)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: {}{:?}", self.name, self.data.type_name(), self.shape);
        let dense = self.shape.last().copied().unwrap_or(1);
        if self.offset > 0 || self.row_stride != dense {
            s += &format!(" (offset {}, row stride {})", self.offset, self.row_stride);
        }
        s
    }
}

/// One attribute of a case: what the op is told besides its tensors (a profile's rule, a fused
/// activation, a requantizer), as text for reports and as a number where the op reads one.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Int(v) => write!(f, "{v}"),
            Attr::Float(v) => write!(f, "{v:e}"),
            Attr::Text(v) => write!(f, "{v}"),
        }
    }
}

/// One concrete call: named input tensors ([`Input`]) and attributes, like a golden vector. The
/// quantize family's parameters are tensors and attributes too, in ONNX `QuantizeLinear`'s shape:
/// inputs `scale` (f32) and `zero_point` (i32), attributes `axis` and `block_size` (absent for
/// per-tensor), `qmin`, `qmax`; the rounding rule is the attribute `rule` (`divide/half_even`,
/// `multiply/stochastic:SEED`), a dynamic op's framework `profile`, a packed op's nibble type
/// `packed`. Every op reads the inputs and attributes it needs, through the typed accessors
/// ([`Case::params`], [`Case::rule`], [`Case::profile`], [`Case::packed_type`]).
#[derive(Debug, Clone)]
pub struct Case {
    pub spec: CaseSpec,
    /// The logical shape of the op's main tensor (the one the parameters describe).
    pub shape: Vec<usize>,
    /// Leading filler elements of the inputs and outputs (misalignment).
    pub offset: usize,
    pub inputs: Vec<Input>,
    pub attrs: Vec<(&'static str, Attr)>,
    /// Output length (elements; bytes for quantize_packed4).
    pub out_len: usize,
    /// Mask length (fake-quantize with mask).
    pub mask_len: usize,
}

/// The rule every hand-built case starts with.
const DEFAULT_RULE: QuantizeRule = QuantizeRule::new(ScaleOp::Divide, RoundingMode::HalfToEven);

impl Case {
    /// A case with the given shape and no inputs or attributes (for hand-built cases: add the
    /// inputs and attributes the op reads).
    pub fn manual(shape: &[usize]) -> Case {
        Case {
            spec: CaseSpec::new(0, 0, Layout::PerTensor, DEFAULT_RULE),
            shape: shape.to_vec(),
            offset: 0,
            inputs: Vec::new(),
            attrs: Vec::new(),
            out_len: 0,
            mask_len: 0,
        }
    }

    /// A quantize-family case: `shape` and `params` (see [`Case::set_params`]).
    pub fn quantized(shape: &[usize], params: &QuantParams) -> Case {
        let mut case = Case::manual(shape);
        case.set_params(params);
        case
    }

    /// Stores `params` as the inputs `scale`, `zero_point` and the attributes `axis`,
    /// `block_size`, `qmin`, `qmax`.
    pub fn set_params(&mut self, p: &QuantParams) {
        self.set_input(Input::dense("scale", &[p.scales.len()], Data::F32(p.scales.clone())));
        self.set_input(Input::dense("zero_point", &[p.zero_points.len()], Data::I32(p.zero_points.clone())));
        self.attrs.retain(|(n, _)| *n != "axis" && *n != "block_size");
        match p.granularity {
            Granularity::PerTensor => {}
            Granularity::PerAxis { axis } => self.set_attr("axis", Attr::Int(axis.get())),
            Granularity::PerBlock { axis, block_size } => {
                self.set_attr("axis", Attr::Int(axis.get()));
                self.set_attr("block_size", Attr::Int(block_size as i64));
            }
        }
        self.set_attr("qmin", Attr::Int(p.range.qmin() as i64));
        self.set_attr("qmax", Attr::Int(p.range.qmax() as i64));
    }

    /// The parameters [`Case::set_params`] stored (per-tensor scale 1, zero point 0 over the `i8`
    /// range where none were set).
    pub fn params(&self) -> QuantParams {
        let scales = self.input("scale").map_or(vec![1.0], |i| i.f32().to_vec());
        let zero_points = self.input("zero_point").map_or(vec![0], |i| i.i32().to_vec());
        let full = QType::I8.full_range();
        let (qmin, qmax) = match (self.attr("qmin"), self.attr("qmax")) {
            (Some(_), Some(_)) => (self.int("qmin") as i32, self.int("qmax") as i32),
            _ => (full.qmin(), full.qmax()),
        };
        // Every stored range came from a `CodeRange`, so it is one again.
        let range = CodeRange::new(qmin, qmax).unwrap_or(full);
        let granularity = match (self.attr("axis"), self.attr("block_size")) {
            (None, _) => Granularity::PerTensor,
            (Some(_), None) => Granularity::PerAxis { axis: Axis::new(self.int("axis")) },
            (Some(_), Some(_)) => Granularity::PerBlock {
                axis: Axis::new(self.int("axis")),
                block_size: usize::try_from(self.int("block_size")).unwrap_or(usize::MAX),
            },
        };
        QuantParams { granularity, scales, zero_points, range }
    }

    /// Sets the attribute `rule` (a stochastic rule with its seed).
    pub fn set_rule(&mut self, rule: QuantizeRule) {
        let rounding = match rule.rounding {
            RoundingMode::Stochastic { seed } => format!("stochastic:{seed}"),
            r => r.name().to_string(),
        };
        self.set_attr("rule", Attr::Text(format!("{}/{rounding}", rule.scale_op.name())));
    }

    pub fn with_rule(mut self, rule: QuantizeRule) -> Case {
        self.set_rule(rule);
        self
    }

    /// The attribute `rule` ([`Case::set_rule`]; divide, ties to even where none was set).
    pub fn rule(&self) -> QuantizeRule {
        let Some(Attr::Text(t)) = self.attr("rule") else { return DEFAULT_RULE };
        let parsed =
            t.split_once('/').and_then(|(op, r)| Some(QuantizeRule::new(ScaleOp::parse(op)?, RoundingMode::parse(r)?)));
        parsed.unwrap_or(DEFAULT_RULE)
    }

    /// Sets the attribute `profile` (a dynamic op's framework, by name).
    pub fn set_profile(&mut self, profile: &Profile) {
        self.set_attr("profile", Attr::Text(profile.name.to_string()));
    }

    /// The attribute `profile` (ONNX Runtime's where none was set).
    pub fn profile(&self) -> Profile {
        match self.attr("profile") {
            Some(Attr::Text(t)) => Profile::by_name(t).unwrap_or(Profile::ONNXRUNTIME),
            _ => Profile::ONNXRUNTIME,
        }
    }

    /// Sets the attribute `packed`, a packed op's nibble type (`i4` or `u4`).
    pub fn set_packed_type(&mut self, kind: Int4) {
        self.set_attr("packed", Attr::Text(kind.name().to_string()));
    }

    /// The attribute `packed` (`i4` where none was set).
    pub fn packed_type(&self) -> Int4 {
        match self.attr("packed") {
            Some(Attr::Text(t)) if t == "u4" => Int4::Unsigned,
            _ => Int4::Signed,
        }
    }

    /// Sets the float input `x` (no leading or trailing filler) and the output and mask lengths
    /// to match it.
    pub fn with_x(mut self, x: Vec<f32>) -> Case {
        self.offset = 0;
        self.out_len = x.len();
        self.mask_len = self.out_len;
        let shape = [x.len()];
        self.set_input(Input::dense("x", &shape, Data::F32(x)));
        self
    }

    /// Adds `input`, replacing an input of the same name.
    pub fn set_input(&mut self, input: Input) {
        self.inputs.retain(|i| i.name != input.name);
        self.inputs.push(input);
    }

    /// Sets input `name` to the flat buffer `data`, whose first `offset` elements are filler.
    pub fn set_flat(&mut self, name: &'static str, data: Data, offset: usize) {
        let n = data.len().saturating_sub(offset);
        self.set_input(Input { name, shape: vec![n], data, offset, tail: 0, row_stride: n });
    }

    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// Sets attribute `name`.
    pub fn set_attr(&mut self, name: &'static str, value: Attr) {
        self.attrs.retain(|(n, _)| *n != name);
        self.attrs.push((name, value));
    }

    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Integer attribute `name` (0 when absent or not an integer).
    pub fn int(&self, name: &str) -> i64 {
        match self.attr(name) {
            Some(Attr::Int(v)) => *v,
            _ => 0,
        }
    }

    /// Float input `x` (quantize, fake-quantize, dynamic, min/max, calibration).
    pub fn x(&self) -> &[f32] {
        self.input("x").map_or(&[], Input::f32)
    }

    /// Code input `codes` (dequantize), converted by the op to its storage type.
    pub fn codes(&self) -> &[i32] {
        self.input("codes").map_or(&[], Input::i32)
    }

    /// Packed nibbles `packed` (dequantize_packed4).
    pub fn packed(&self) -> &[u8] {
        self.input("packed").map_or(&[], Input::u8)
    }

    /// A one-paragraph description for failure reports: enough to rebuild the case by hand.
    pub fn describe(&self) -> String {
        let show = |v: &[f32]| {
            let head: Vec<String> = v.iter().take(6).map(|s| format!("{s:e}")).collect();
            format!("[{}{}] ({} in all)", head.join(", "), if v.len() > 6 { ", ..." } else { "" }, v.len())
        };
        let scales = self.input("scale").map(|i| format!(", scales {}", show(i.f32()))).unwrap_or_default();
        format!(
            "spec {{ seed: {:#x}, len: {}, layout: {}, rule: {}, offset: {}, mix: {:?} }}; shape {:?}{scales}, \
             inputs [{}], attributes [{}], out_len {}, mask_len {}",
            self.spec.seed,
            self.spec.len,
            self.spec.layout.name(),
            rule_name(self.spec.rule),
            self.spec.offset,
            self.spec.mix,
            self.shape,
            self.inputs.iter().map(Input::describe).collect::<Vec<_>>().join(", "),
            self.attrs.iter().map(|(n, v)| format!("{n} = {v}")).collect::<Vec<_>>().join(", "),
            self.out_len,
            self.mask_len,
        )
    }

    /// What element `i` was: its input and its parameters (for failure reports).
    pub fn explain(&self, i: usize) -> String {
        let mut s = String::new();
        if let Some(&x) = self.x().get(i) {
            s += &format!("x[{i}] = {}", super::outcome::show_f32(x));
        }
        if let Some(&q) = self.codes().get(i) {
            s += &format!("code[{i}] = {q}");
        }
        if let Some(&b) = self.packed().get(i / 2) {
            s += &format!("packed[{}] = {b:#04x}", i / 2);
        }
        let n = numel(&self.shape);
        let params = self.params();
        if let Ok(layout) = params.layout(&self.shape, n) {
            if let (true, p) = (i < n, layout.index(i)) {
                if let (Some(&scale), Some(&z)) = (params.scales.get(p), params.zero_points.get(p)) {
                    s += &format!("; parameter {p}: scale {}, zero point {z}", super::outcome::show_f32(scale));
                }
            }
        }
        s
    }
}

/// The shape, granularity and parameter count of a layout, with a product near `len`.
pub fn gen_shape(rng: &mut Rng, layout: Layout, len: usize) -> (Vec<usize>, Granularity, usize) {
    // How many times `unit` fits in `len`: 0 only for an empty target.
    let fit = |unit: usize| if len == 0 { 0 } else { (len / unit).max(1) };
    match layout {
        Layout::PerTensor => {
            let shape = match rng.below(4) {
                0 => vec![len],
                1 => vec![1, len],
                2 => vec![len, 1],
                _ => vec![1, len, 1],
            };
            (shape, Granularity::PerTensor, 1)
        }
        Layout::AxisInnermost => {
            let c = if len == 0 { rng.range_usize(1, 8) } else { rng.pick(&divisors(len)) };
            let o = if len == 0 { 0 } else { len / c };
            if o == 1 && rng.chance(0.4) {
                (vec![c], Granularity::PerAxis { axis: Axis::new(0) }, c)
            } else if rng.chance(0.3) {
                let a = if o == 0 { 0 } else { rng.pick(&divisors(o)) };
                let b = o.checked_div(a).unwrap_or_else(|| rng.range_usize(1, 3));
                (vec![a, b, c], Granularity::PerAxis { axis: Axis::new(2) }, c)
            } else {
                (vec![o, c], Granularity::PerAxis { axis: Axis::new(1) }, c)
            }
        }
        Layout::AxisOuter => {
            let big: Vec<usize> = divisors(len).into_iter().filter(|&d| d >= 16).collect();
            let inner = if !big.is_empty() && rng.chance(0.5) {
                rng.pick(&big)
            } else {
                rng.range_usize(16, len.clamp(16, 16 + 80))
            };
            let c = fit(inner);
            if c >= 2 && rng.chance(0.4) {
                (vec![2, c / 2, inner], Granularity::PerAxis { axis: Axis::new(1) }, c / 2)
            } else {
                (vec![c, inner], Granularity::PerAxis { axis: Axis::new(0) }, c)
            }
        }
        Layout::AxisMiddle => {
            let inner = rng.range_usize(2, 15);
            let c = rng.range_usize(1, 12);
            let o = fit(c * inner);
            (vec![o, c, inner], Granularity::PerAxis { axis: Axis::new(1) }, c)
        }
        Layout::BlockSmall | Layout::BlockLarge => {
            let nb = rng.range_usize(1, 4);
            let block = if layout == Layout::BlockSmall {
                rng.range_usize(1, 15)
            } else {
                rng.range_usize(16, (len / nb).clamp(16, 16 + 120))
            };
            let axis_len = nb * block;
            let o = fit(axis_len);
            let g = Granularity::PerBlock { axis: Axis::new(1), block_size: block };
            if o == 1 && rng.chance(0.3) {
                (vec![axis_len], Granularity::PerBlock { axis: Axis::new(0), block_size: block }, nb)
            } else {
                (vec![o, axis_len], g, o * nb)
            }
        }
        Layout::BlockInner => {
            let inner = rng.range_usize(2, 40);
            let block = rng.range_usize(1, 6);
            let nb = rng.range_usize(1, 3);
            let axis_len = nb * block;
            let o = fit(axis_len * inner);
            if o == 1 && rng.chance(0.3) {
                (vec![axis_len, inner], Granularity::PerBlock { axis: Axis::new(0), block_size: block }, nb * inner)
            } else {
                (
                    vec![o, axis_len, inner],
                    Granularity::PerBlock { axis: Axis::new(1), block_size: block },
                    o * nb * inner,
                )
            }
        }
    }
}

/// The divisors of `n` (`[1]` for 0).
pub fn divisors(n: usize) -> Vec<usize> {
    if n == 0 {
        return vec![1];
    }
    let mut v = Vec::new();
    let mut d = 1;
    while d * d <= n {
        if n.is_multiple_of(d) {
            v.push(d);
            if d * d != n {
                v.push(n / d);
            }
        }
        d += 1;
    }
    v.sort_unstable();
    v
}

/// A code range inside `storage`: the full range, the narrow one, or a random sub-range.
pub fn gen_range(rng: &mut Rng, storage: QType) -> CodeRange {
    let full = storage.full_range();
    let (lo, hi) = (full.qmin() as i64, full.qmax() as i64);
    let r = match rng.below(6) {
        0..=2 => Some(full),
        3 => Some(storage.narrow_range()),
        _ => {
            let a = rng.range_i64(lo, hi);
            let b = rng.range_i64(lo, hi);
            CodeRange::new(a.min(b) as i32, a.max(b) as i32).ok()
        }
    };
    r.unwrap_or(full)
}

/// Scales that have broken quantizers before.
pub const AWKWARD_SCALES: [f32; 16] = [
    0.1,
    1.0 / 3.0,
    0.0123,
    7.77,
    1.0 / 1024.0,
    1e-3,
    1.0 / 127.0,
    1.0 / 255.0,
    1.0,
    0.5,
    3.0,
    1e-20,
    6.1e-5,
    0.2,
    1e20,
    0.007_874_016,
];

/// A positive, finite, normal scale (see [`AWKWARD_SCALES`]).
pub fn gen_scale(rng: &mut Rng) -> f32 {
    match rng.weighted(&[35, 25, 15, 15, 10]) {
        0 => (rng.unit() * 32.0 - 24.0).exp2() as f32,
        1 => rng.pick(&AWKWARD_SCALES),
        2 => (rng.range_i64(-30, 10) as f32).exp2(),
        3 => {
            // A random mantissa with an exponent in [2^-60, 2^60].
            let e = rng.range_i64(127 - 60, 127 + 60) as u32;
            f32::from_bits((e << 23) | (rng.next_u64() as u32 & 0x7F_FFFF))
        }
        _ => 1.0 + rng.unit() as f32,
    }
}

/// A zero point in `range`: its ends, 0 when inside, or uniform.
pub fn gen_zero_point(rng: &mut Rng, range: CodeRange) -> i32 {
    match rng.below(10) {
        0 => range.qmin(),
        1 => range.qmax(),
        2 if range.contains(0) => 0,
        _ => rng.range_i64(range.qmin() as i64, range.qmax() as i64) as i32,
    }
}

/// Parameters for `count` scale / zero-point pairs with codes stored in `storage`. About one
/// case in fifty gets a subnormal scale (valid when dividing, an error with the reciprocal rule).
pub fn gen_params(rng: &mut Rng, storage: QType, granularity: Granularity, count: usize) -> QuantParams {
    let range = gen_range(rng, storage);
    // Shared or distinct parameters: one case in four repeats a single pair.
    let shared = rng.chance(0.25);
    let (s0, z0) = (gen_scale(rng), gen_zero_point(rng, range));
    let mut scales = Vec::with_capacity(count);
    let mut zero_points = Vec::with_capacity(count);
    for _ in 0..count {
        if shared {
            scales.push(s0);
            zero_points.push(z0);
        } else {
            scales.push(gen_scale(rng));
            zero_points.push(gen_zero_point(rng, range));
        }
    }
    if count > 0 && rng.chance(0.02) {
        let i = rng.below(count as u64) as usize;
        scales[i] = f32::from_bits(rng.range_i64(1, 0x7F_FFFF) as u32);
    }
    QuantParams { granularity, scales, zero_points, range }
}

/// `x` moved by `d` ulps (toward +inf for `d > 0`).
pub fn step_ulps(x: f32, d: i32) -> f32 {
    let mut v = x;
    for _ in 0..d.unsigned_abs() {
        v = if d > 0 { v.next_up() } else { v.next_down() };
    }
    v
}

/// `x op s` as the reference computes it (the reciprocal rounded to f32 once).
pub fn apply(x: f32, s: f32, op: ScaleOp) -> f32 {
    match op {
        ScaleOp::Divide => x / s,
        ScaleOp::MultiplyByReciprocal => x * (1.0f32 / s),
    }
}

/// An `x` with `x op s == t` exactly when one exists within 4 ulps of the real solution,
/// else the nearest f32 to it.
pub fn tie_input(t: f32, s: f32, op: ScaleOp) -> f32 {
    let x0 = match op {
        ScaleOp::Divide => (t as f64 * s as f64) as f32,
        ScaleOp::MultiplyByReciprocal => (t as f64 / (1.0f32 / s) as f64) as f32,
    };
    for d in [0, 1, -1, 2, -2, 3, -3, 4, -4] {
        let x = step_ulps(x0, d);
        if apply(x, s, op) == t {
            return x;
        }
    }
    x0
}

/// Parameters of one element, as the value generator sees them.
#[derive(Debug, Clone, Copy)]
pub struct ElementParams {
    pub scale: f32,
    /// `qmin - z`
    pub lo: i64,
    /// `qmax - z`
    pub hi: i64,
}

/// One input value of `class` for an element with parameters `p` (`Nan` gives NaN).
pub fn gen_value(rng: &mut Rng, class: Class, p: ElementParams, op: ScaleOp) -> f32 {
    let s = p.scale;
    let ks = |k: i64| (k as f64 * s as f64) as f32;
    match class {
        Class::Tie | Class::NearTie => {
            let k = rng.range_i64(p.lo - 2, p.hi + 1);
            let op = if rng.chance(0.7) { op } else { other(op) };
            let x = tie_input(k as f32 + 0.5, s, op);
            if class == Class::Tie {
                x
            } else {
                step_ulps(x, rng.pick(&[-2, -1, 1, 2]))
            }
        }
        Class::Boundary => {
            let k = rng.pick(&[p.lo - 1, p.lo, p.hi, p.hi + 1]);
            step_ulps(ks(k), rng.pick(&[-1, 0, 0, 1]))
        }
        Class::Dequantized => rng.range_i64(p.lo, p.hi) as f32 * s,
        Class::Ordinary => {
            let a = (p.lo - 3) as f64 * s as f64;
            let b = (p.hi + 3) as f64 * s as f64;
            (a + (b - a) * rng.unit()) as f32
        }
        Class::Zero => rng.pick(&[0.0, -0.0]),
        Class::Subnormal => {
            let v = f32::from_bits(rng.range_i64(1, 0x7F_FFFF) as u32);
            if rng.chance(0.5) {
                -v
            } else {
                v
            }
        }
        Class::Huge => {
            let v = match rng.below(3) {
                0 => 3e38,
                1 => f32::MAX,
                _ => (rng.unit() * 27.9 + 100.0).exp2() as f32,
            };
            let v = if v.is_finite() { v } else { f32::MAX };
            if rng.chance(0.5) {
                -v
            } else {
                v
            }
        }
        Class::Infinity => rng.pick(&[f32::INFINITY, f32::NEG_INFINITY]),
        Class::Nan => f32::NAN,
    }
}

fn other(op: ScaleOp) -> ScaleOp {
    match op {
        ScaleOp::Divide => ScaleOp::MultiplyByReciprocal,
        ScaleOp::MultiplyByReciprocal => ScaleOp::Divide,
    }
}

/// The element classes drawn in a mixed case (`allow_inf`: may elements be infinite).
fn mixed_class(rng: &mut Rng, allow_inf: bool) -> Class {
    const MIXED: [(Class, u32); 9] = [
        (Class::Tie, 20),
        (Class::NearTie, 15),
        (Class::Boundary, 12),
        (Class::Dequantized, 8),
        (Class::Ordinary, 25),
        (Class::Zero, 5),
        (Class::Subnormal, 5),
        (Class::Huge, 5),
        (Class::Infinity, 3),
    ];
    let w: Vec<u32> = MIXED.iter().map(|&(c, w)| if c == Class::Infinity && !allow_inf { 0 } else { w }).collect();
    MIXED[rng.weighted(&w)].0
}

/// Fills `n` float inputs for parameters given per element by `param_of(i)`.
///
/// `finite_only`: infinities appear only in about one case in 25 (for ops that reject them).
/// In mixed cases, about one case in 25 also gets 1 to 3 NaNs.
pub fn gen_xs(
    rng: &mut Rng,
    n: usize,
    mix: Mix,
    op: ScaleOp,
    finite_only: bool,
    param_of: impl Fn(usize) -> ElementParams,
) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n)
        .map(|i| {
            let class = match mix {
                Mix::Mixed => mixed_class(rng, !finite_only),
                Mix::Only(Class::Nan) => Class::Ordinary,
                Mix::Only(c) => c,
            };
            gen_value(rng, class, param_of(i), op)
        })
        .collect();
    if n > 0 {
        let nans = match mix {
            Mix::Only(Class::Nan) => true,
            Mix::Mixed => rng.chance(0.04),
            Mix::Only(_) => false,
        };
        if nans {
            for _ in 0..rng.range_usize(1, 3) {
                let i = rng.below(n as u64) as usize;
                x[i] = f32::NAN;
            }
        }
        if finite_only && mix == Mix::Mixed && rng.chance(0.04) {
            let i = rng.below(n as u64) as usize;
            x[i] = rng.pick(&[f32::INFINITY, f32::NEG_INFINITY]);
        }
    }
    x
}

/// `n` codes of `storage`: uniform, with a third at the type's ends or the element's zero point.
pub fn gen_codes(rng: &mut Rng, n: usize, storage: QType, zero_point_of: impl Fn(usize) -> i32) -> Vec<i32> {
    let full = storage.full_range();
    (0..n)
        .map(|i| match rng.below(6) {
            0 => full.qmin(),
            1 => full.qmax(),
            2 => zero_point_of(i),
            _ => rng.range_i64(full.qmin() as i64, full.qmax() as i64) as i32,
        })
        .collect()
}

/// A case's shape, parameters and rule (the part every quantizing op shares), from `spec`.
pub fn gen_frame(rng: &mut Rng, spec: &CaseSpec, storage: QType) -> Case {
    let (shape, granularity, count) = gen_shape(rng, spec.layout, spec.len);
    let params = gen_params(rng, storage, granularity, count);
    let rule = match spec.rule.rounding {
        RoundingMode::Stochastic { .. } => {
            QuantizeRule::new(spec.rule.scale_op, RoundingMode::Stochastic { seed: rng.next_u64() })
        }
        _ => spec.rule,
    };
    let mut case = Case::quantized(&shape, &params);
    case.spec = *spec;
    case.set_rule(rule);
    case.offset = spec.offset;
    case
}

/// Element count of a shape (saturating; generated shapes never overflow).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// The per-element view of `params` for a generated (valid-shaped) case: element `i`'s scale
/// and its `lo`, `hi`. Falls back to the first pair when the layout is invalid.
pub fn element_params(case: &Case) -> Vec<ElementParams> {
    let p = &case.params();
    let n = numel(&case.shape);
    let layout = p.layout(&case.shape, n).ok();
    (0..n)
        .map(|i| {
            let j = layout.map_or(0, |l| l.index(i)).min(p.scales.len().saturating_sub(1));
            let (s, z) = (p.scales.get(j).copied().unwrap_or(1.0), p.zero_points.get(j).copied().unwrap_or(0));
            ElementParams {
                scale: if s.is_finite() && s > 0.0 { s } else { 1.0 },
                lo: p.range.qmin() as i64 - z as i64,
                hi: p.range.qmax() as i64 - z as i64,
            }
        })
        .collect()
}

/// Prepends `offset` filler elements (never read by a correct implementation).
pub fn with_offset<T: Clone>(offset: usize, filler: T, data: Vec<T>) -> Vec<T> {
    let mut v = vec![filler; offset];
    v.extend(data);
    v
}

/// Filler elements after an input or output: a full AVX-512 vector of f32.
pub const GUARD: usize = 16;

/// Sets a case's float input to `x` behind `offset` NaNs and followed by [`GUARD`] NaNs, with
/// output and mask lengths to match.
pub fn set_x(case: &mut Case, x: Vec<f32>) {
    let n = x.len();
    let mut v = with_offset(case.offset, f32::NAN, x);
    v.extend([f32::NAN; GUARD]);
    case.set_input(Input {
        name: "x",
        shape: vec![n],
        data: Data::F32(v),
        offset: case.offset,
        tail: GUARD,
        row_stride: n,
    });
    case.out_len = n;
    case.mask_len = n;
}

/// Bytes needed for `n` nibbles (re-exported for descriptors).
pub fn nibble_bytes(n: usize) -> usize {
    packed_len(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_layouts() {
        let mut rng = Rng::new(1);
        for layout in Layout::ALL {
            for len in [0usize, 1, 2, 7, 16, 17, 67, 1000, 4099] {
                for _ in 0..20 {
                    let (shape, g, count) = gen_shape(&mut rng, layout, len);
                    let n = numel(&shape);
                    let p = QuantParams {
                        granularity: g,
                        scales: vec![1.0; count],
                        zero_points: vec![0; count],
                        range: QType::I8.full_range(),
                    };
                    let l = p.layout(&shape, n).unwrap_or_else(|e| panic!("{layout:?} {shape:?}: {e}"));
                    assert_eq!(len == 0, n == 0, "{layout:?} {shape:?}");
                    if layout == Layout::PerTensor {
                        assert_eq!(n, len);
                    }
                    if n == 0 {
                        continue;
                    }
                    match layout {
                        Layout::PerTensor => assert!(l.is_per_tensor()),
                        Layout::AxisInnermost => assert!(l.is_per_axis() && l.inner() == 1),
                        Layout::AxisOuter => assert!(l.is_per_axis() && l.inner() >= 16),
                        Layout::AxisMiddle => assert!(l.is_per_axis() && l.inner() > 1 && l.inner() < 16),
                        Layout::BlockSmall => assert!(!l.is_per_axis() && l.inner() == 1 && l.block() < 16),
                        Layout::BlockLarge => assert!(!l.is_per_axis() && l.inner() == 1 && l.block() >= 16),
                        Layout::BlockInner => assert!(!l.is_per_axis() && !l.is_per_tensor() && l.inner() > 1),
                    }
                }
            }
        }
    }

    #[test]
    fn ties_are_exact_where_possible() {
        let mut exact = [0usize; 2];
        let mut total = 0;
        for (j, op) in [ScaleOp::Divide, ScaleOp::MultiplyByReciprocal].into_iter().enumerate() {
            for &s in AWKWARD_SCALES.iter() {
                for k in -130i32..130 {
                    let t = k as f32 + 0.5;
                    let x = tie_input(t, s, op);
                    if apply(x, s, op) == t {
                        exact[j] += 1;
                    }
                    total += 1;
                }
            }
        }
        // Most ties are constructible exactly (not all: x / s can skip over k + 1/2).
        let per_op = total / 2;
        assert!(exact[0] * 10 > per_op * 9, "{exact:?} of {per_op}");
        assert!(exact[1] * 10 > per_op * 9, "{exact:?} of {per_op}");
        assert_eq!(tie_input(2.5, 0.5, ScaleOp::Divide), 1.25);
    }

    #[test]
    fn values_of_each_class() {
        let mut rng = Rng::new(3);
        let p = ElementParams { scale: 0.1, lo: -128, hi: 127 };
        for _ in 0..200 {
            assert!(gen_value(&mut rng, Class::Subnormal, p, ScaleOp::Divide).is_subnormal());
            assert!(gen_value(&mut rng, Class::Huge, p, ScaleOp::Divide).abs() >= 1e30);
            assert!(gen_value(&mut rng, Class::Infinity, p, ScaleOp::Divide).is_infinite());
            assert_eq!(gen_value(&mut rng, Class::Zero, p, ScaleOp::Divide), 0.0);
            let v = gen_value(&mut rng, Class::Ordinary, p, ScaleOp::Divide);
            assert!((-13.2..=13.1).contains(&v), "{v}");
        }
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors(13), vec![1, 13]);
        assert_eq!(all_rules().len(), 12);
    }
}
