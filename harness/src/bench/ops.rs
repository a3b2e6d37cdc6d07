//! The operations `quantproof bench` knows, as a table.
//!
//! | op | input | output | compulsory bytes / element |
//! |---|---|---|---|
//! | `quantize` | f32 | i8 / u8 codes | 4 + 1 |
//! | `dequantize` | i8 / u8 codes | f32 | 1 + 4 |
//! | `fake-quantize` | f32 | f32 (no mask) | 4 + 4 |
//! | `dynamic-quantize` | f32 | u8 codes, scale, zero point | 4 + 1 |
//! | `min-max` | f32 | min, max | 4 |
//! | `abs-max`, `histogram`, `calibrate-*` | f32 | see [`super::calib`] | 4 |
//!
//! Parameters come from the data: the tensor's (or each row's) min and max turned into a scale
//! and zero point by the profile's rule, symmetric for `i8` and affine for `u8` (the usual
//! weights / activations split). Per-axis tensors are `[channels, size / channels]` with one
//! parameter set per row ([`super::Setup::channels`]).

use super::calib;
use super::data::channel_scaled_f32;
use super::{Dtype, Gran, OrtCase, OrtInput, Path, Setup, Workload};
use quantproof_optimized::ops::FastCode;
use quantproof_reference::error::QuantError;
use quantproof_reference::profile::{self, Profile, QParamsRequest};
use quantproof_reference::quant_params::QuantParams;
use quantproof_reference::quantize::{self as refq, QuantizeRule};
use quantproof_reference::scheme::Symmetry;
use quantproof_reference::scheme::{Code, QType};
use serde_json::json;

type Result<T> = std::result::Result<T, QuantError>;

/// One operation: its name, defaults and how to build its workload.
pub struct OpSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// The profile used when `--profile` is not given.
    pub default_profile: Profile,
    /// The `--dtype` values it accepts; the first is the default.
    pub dtypes: &'static [Dtype],
    /// Whether `--granularity per-axis` applies.
    pub per_axis: bool,
    pub build: fn(&Setup) -> Result<Box<dyn Workload>>,
}

// The workloads of `quantproof bench`, one static each; `crate::registry::OPS` lists them with
// the rest of each op (its vectors and its equivalence descriptors).

/// Declares `quantproof bench` workloads, one entry each: `STATIC = "name", default profile,
/// [dtypes] (the first is the default), per_axis bool, build function: "summary";`.
macro_rules! bench_ops {
    ($($(#[$doc:meta])* $static:ident = $name:literal, $profile:ident, [$($dtype:ident),+], per_axis $per_axis:literal, $build:path: $summary:literal;)+) => {
        $(
            $(#[$doc])*
            pub static $static: OpSpec = OpSpec {
                name: $name,
                summary: $summary,
                default_profile: Profile::$profile,
                dtypes: &[$(Dtype::$dtype),+],
                per_axis: $per_axis,
                build: $build,
            };
        )+
    };
}

bench_ops! {
    /// `quantproof bench quantize`.
    QUANTIZE = "quantize", ONNXRUNTIME, [I8, U8], per_axis true, build_quantize:
        "f32 -> codes: clamp(round(x / s) + z)";
    /// `quantproof bench dequantize`.
    DEQUANTIZE = "dequantize", ONNXRUNTIME, [I8, U8], per_axis true, build_dequantize:
        "codes -> f32: (q - z) * s";
    /// `quantproof bench fake-quantize`.
    FAKE_QUANTIZE = "fake-quantize", TORCH, [I8, U8], per_axis true, build_fake_quantize:
        "f32 -> f32: quantize then dequantize (QAT forward pass)";
    /// `quantproof bench dynamic-quantize`.
    DYNAMIC_QUANTIZE = "dynamic-quantize", ONNXRUNTIME, [U8], per_axis false, build_dynamic:
        "f32 -> u8 codes with scale and zero point read from the data (min/max pass + quantize pass)";
    /// `quantproof bench min-max`.
    MIN_MAX = "min-max", ONNXRUNTIME, [F32], per_axis false, build_min_max:
        "f32 -> (min, max): the range scan of calibration and dynamic quantization";
    /// `quantproof bench abs-max`.
    ABS_MAX = "abs-max", ONNXRUNTIME, [F32], per_axis false, calib::build_abs_max:
        "f32 -> max |x|: the range scan of symmetric calibration";
    /// `quantproof bench histogram`.
    HISTOGRAM = "histogram", ONNXRUNTIME, [F32], per_axis false, calib::build_histogram:
        "f32 -> numpy's bin counts over [-t, t] (--bins): the histogram of ONNX Runtime's calibrators";
    /// `quantproof bench calibrate-entropy`.
    CALIBRATE_ENTROPY = "calibrate-entropy", ONNXRUNTIME, [F32], per_axis false, calib::build_entropy:
        "ONNX Runtime's entropy calibration (--bins, 128 quantized bins): min/max, histogram, KL search";
    /// `quantproof bench calibrate-percentile`.
    CALIBRATE_PERCENTILE = "calibrate-percentile", ONNXRUNTIME, [F32], per_axis false, calib::build_percentile:
        "ONNX Runtime's percentile calibration (99.999, symmetric, --bins): |x| histogram, cumulative search";
    /// `quantproof bench calibrate-distribution`.
    CALIBRATE_DISTRIBUTION = "calibrate-distribution", ONNXRUNTIME, [F32], per_axis false, calib::build_distribution:
        "ONNX Runtime's distribution calibration (--bins): histogram, weighted mean and deviation";
    /// `quantproof bench qgemm`: `u8 x s8 -> i32` with zero points (`--dtype s8s8`: `s8` activations,
    /// zero point 0, shifted to `u8` as they are packed). Default shape: `K = N = 384` (a
    /// MiniLM Linear), `M = size / 384` rows; `--m M --n N --k K` set it (then `size = M K`, the
    /// activation elements). `2 N K` operations per element, so `gops = 2 M N K / t`.
    QGEMM = "qgemm", ONNXRUNTIME, [U8, I8], per_axis false, build_qgemm:
        "u8 x s8 (--dtype u8s8) or s8 x s8 (--dtype s8s8) -> exact i32 GEMM with zero points; default K = N = 384, M = size / 384; --m/--n/--k set the shape (gops = 2MNK/t)";
    /// `quantproof bench qconv2d`: `u8 x s8 -> i32` convolution, NCHW, 'same' padding, stride 1,
    /// per-channel symmetric weights (zero points 0), input zero point 128. `--shape
    /// N,C,H,W,OC,KH,KW`; by default `C = OC = 64`, 3 x 3, `N = 1`, `H = W` from `size = C H W`.
    /// `2 OC KH KW` operations per input element (`gops = 2 N OC H W C KH KW / t`).
    QCONV2D = "qconv2d", ONNXRUNTIME, [U8], per_axis false, build_qconv2d:
        "u8 x s8 -> exact i32 convolution, NCHW, 'same' padding, stride 1; --shape N,C,H,W,OC,KH,KW (default 1,64,H,H,64,3,3 with 64 H^2 = size); gops = 2 N OC H W C KH KW / t";
    /// `quantproof bench max-pool2d`: 3 x 3 max pooling, stride 2, SAME padding, of an NHWC i8 tensor
    /// with 64 channels (`size` elements: `1 x H x H x 64`), ReLU fused; the rows of channels are
    /// maxed with the ISA's byte max.
    MAX_POOL2D = "max-pool2d", TFLITE, [I8], per_axis false, build_max_pool2d:
        "i8 NHWC 1 x H x H x 64 (64 H^2 = size), 3 x 3 window, stride 2, SAME, fused ReLU: the maximum of codes (a passive op)";
    /// `quantproof bench avg-pool2d`: the same shape and window as `max-pool2d`, each window's
    /// channels summed with the ISA's widening add and divided with the profile's rounding.
    AVG_POOL2D = "avg-pool2d", TFLITE, [I8], per_axis false, build_avg_pool2d:
        "i8 NHWC 1 x H x H x 64 (64 H^2 = size), 3 x 3 window, stride 2, SAME, fused ReLU: the mean of codes rounded the profile's way (tflite: half away from zero; torch: f32 multiplier, ties to even)";
    /// `quantproof bench requantize`.
    REQUANTIZE = "requantize", TFLITE, [U8, I8], per_axis false, build_requantize:
        "int32 accumulators -> 8-bit codes: clamp(z + round(acc * M)); the profile picks the rounding (torch: f32 multiply, onnxruntime: f32 multiply clamped first, tflite: Q31 double rounding)";
    /// `quantproof bench qadd`: QAdd of two 8-bit tensors with different scales, under the
    /// profile's arithmetic (tflite: three double-rounding multiplies; torch and onnxruntime: float).
    QADD = "qadd", ONNXRUNTIME, [I8, U8], per_axis false, build_qadd:
        "codes + codes with three scales, the profile's arithmetic (onnxruntime: f32 with a division, next to ONNX Runtime's QLinearAdd; torch: f32; tflite: Q31 double rounding)";
    /// `quantproof bench qadd-equal-scale`: seed 000's fast path, `sa == sb`, one multiplier.
    QADD_EQUAL_SCALE = "qadd-equal-scale", TFLITE, [I8, U8], per_axis false, build_qadd_equal_scale:
        "codes + codes with sa == sb: one Q31 multiply of the summed centred codes (seed 000's fast path; compare with qadd)";
    /// `quantproof bench qmul`.
    QMUL = "qmul", ONNXRUNTIME, [I8, U8], per_axis false, build_qmul:
        "codes * codes, the three scales folded into one multiplier (onnxruntime: f32, next to ONNX Runtime's QLinearMul; torch: f32; tflite: Q31)";
    /// `quantproof bench softmax`: TFLite's integer softmax over rows of 128 codes (an attention
    /// row of a 128-token sequence), `beta = 1`, input scale 1/16.
    SOFTMAX = "softmax", TFLITE, [I8, U8], per_axis false, build_softmax:
        "TFLite's integer softmax along rows of 128 codes (size / 128 rows; an attention score row), output 1/256";
}

/// Every workload, in the registry's order.
pub fn table() -> impl Iterator<Item = &'static OpSpec> {
    crate::registry::OPS.iter().flat_map(|e| e.bench.iter().copied())
}

/// The input tensor of a setup: `[channels, size / channels]` normal values, rows of different
/// magnitudes.
fn input(setup: &Setup) -> (Vec<f32>, Vec<usize>) {
    let c = setup.channels();
    let x = channel_scaled_f32(c, setup.size / c, 4.0, setup.seed);
    let shape = if c == 1 { vec![setup.size] } else { vec![c, setup.size / c] };
    (x, shape)
}

fn qtype(d: Dtype) -> QType {
    if d == Dtype::U8 {
        QType::U8
    } else {
        QType::I8
    }
}

/// Parameters from the data: per tensor or per row, symmetric for signed codes.
fn params_for(setup: &Setup, x: &[f32], shape: &[usize]) -> Result<QuantParams> {
    let qt = qtype(setup.dtype);
    let req = QParamsRequest::new(qt, Symmetry::symmetric_if(qt.is_signed()));
    let range = setup.profile.qparams.code_range(&req)?;
    let rows = if shape.len() == 2 { shape[0] } else { 1 };
    let cols = x.len() / rows.max(1);
    let mut scales = Vec::with_capacity(rows);
    let mut zps = Vec::with_capacity(rows);
    for r in x.chunks(cols.max(1)) {
        let (lo, hi) = profile::min_max(r)?;
        let p = setup.profile.choose_qparams(lo, hi, &req)?;
        scales.push(p.scale);
        zps.push(p.zero_point);
    }
    Ok(if setup.granularity == Gran::PerTensor {
        QuantParams::per_tensor(scales[0], zps[0], range)
    } else {
        QuantParams::per_axis(0, scales, zps, range)
    })
}

fn params_detail(setup: &Setup, p: &QuantParams, shape: &[usize]) -> serde_json::Value {
    if setup.granularity == Gran::PerTensor {
        json!({"shape": shape, "scale": p.scales[0], "zero_point": p.zero_points[0],
               "qmin": p.range.qmin(), "qmax": p.range.qmax()})
    } else {
        json!({"shape": shape, "channels": p.scales.len(), "axis": 0, "qmin": p.range.qmin(), "qmax": p.range.qmax()})
    }
}

/// The parameters ONNX Runtime runs with: per tensor only (`None` for another granularity), and
/// its QuantizeLinear saturates to the type's full range, whatever range the profile's parameter
/// rule used; the expected ORT output is computed that way.
fn ort_params(setup: &Setup, p: &QuantParams) -> Option<QuantParams> {
    if setup.granularity != Gran::PerTensor {
        return None;
    }
    Some(QuantParams::per_tensor(*p.scales.first()?, *p.zero_points.first()?, qtype(setup.dtype).full_range()))
}

fn first_difference<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T]) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("length {} instead of {}", got.len(), want.len()));
    }
    let bad = got.iter().zip(want).filter(|(g, w)| g != w).count();
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => {
            Err(format!("{bad} of {} elements differ; first at {i}: got {:?}, want {:?}", got.len(), got[i], want[i]))
        }
    }
}

/// NaN in every output element, so a kernel that writes nothing is caught.
fn scramble_floats(out: &mut [f32]) {
    out.fill(f32::NAN);
}

/// The first element whose bits differ from the expected ones (`expected` from [`bits`]).
fn same_floats(out: &[f32], expected: &[u32]) -> std::result::Result<(), String> {
    first_difference(&bits(out), expected)
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn le_bytes_f32(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn code_bytes<C: Code>(q: &[C]) -> Vec<u8> {
    q.iter().map(|c| c.to_code() as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// quantize

struct Quantize<C: FastCode> {
    setup: Setup,
    x: Vec<f32>,
    shape: Vec<usize>,
    params: QuantParams,
    rule: QuantizeRule,
    out: Vec<C>,
    expected: Vec<C>,
}

impl<C: FastCode> Quantize<C> {
    fn new(setup: &Setup) -> Result<Quantize<C>> {
        let (x, shape) = input(setup);
        let params = params_for(setup, &x, &shape)?;
        let rule = setup.profile.quantize;
        let mut expected = vec![C::default(); x.len()];
        refq::quantize(&x, &shape, &params, rule, &mut expected)?;
        let out = vec![C::default(); x.len()];
        Ok(Quantize { setup: setup.clone(), x, shape, params, rule, out, expected })
    }
}

impl<C: FastCode> Workload for Quantize<C> {
    fn run(&mut self, imp: &Path) -> Result<()> {
        match imp {
            Path::Reference => refq::quantize(&self.x, &self.shape, &self.params, self.rule, &mut self.out),
            Path::Optimized(e) => e.quantize(&self.x, &self.shape, &self.params, self.rule, &mut self.out),
        }
    }
    fn scramble(&mut self) {
        // Codes one past the range where possible, so a kernel that writes nothing is caught.
        let junk = C::from_code(self.params.range.qmin() - 1);
        let junk =
            if junk == C::from_code(self.params.range.qmin()) { C::from_code(self.params.range.qmax()) } else { junk };
        self.out.iter_mut().enumerate().for_each(|(i, o)| *o = if i % 2 == 0 { junk } else { C::from_code(0) });
    }
    fn verify(&self) -> std::result::Result<(), String> {
        first_difference(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        4.0 + 1.0
    }
    fn detail(&self) -> serde_json::Value {
        params_detail(&self.setup, &self.params, &self.shape)
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        let p = ort_params(&self.setup, &self.params)?;
        let mut want = vec![C::default(); self.x.len()];
        refq::quantize(&self.x, &self.shape, &p, Profile::ONNXRUNTIME.quantize, &mut want).ok()?;
        Some(OrtCase::one_input(
            "quantize",
            OrtInput::F32(&self.x),
            self.setup.dtype,
            (p.scales[0], p.zero_points[0]),
            code_bytes(&want),
            self.bytes_per_element(),
            self.x.len(),
        ))
    }
}

fn build_quantize(setup: &Setup) -> Result<Box<dyn Workload>> {
    Ok(match setup.dtype {
        Dtype::U8 => Box::new(Quantize::<u8>::new(setup)?),
        _ => Box::new(Quantize::<i8>::new(setup)?),
    })
}

// ---------------------------------------------------------------------------------------------
// dequantize

struct Dequantize<C: OrtCode> {
    setup: Setup,
    q: Vec<C>,
    shape: Vec<usize>,
    params: QuantParams,
    out: Vec<f32>,
    expected: Vec<u32>,
}

impl<C: OrtCode> Dequantize<C> {
    fn new(setup: &Setup) -> Result<Dequantize<C>> {
        let (x, shape) = input(setup);
        let params = params_for(setup, &x, &shape)?;
        let mut q = vec![C::default(); x.len()];
        refq::quantize(&x, &shape, &params, setup.profile.quantize, &mut q)?;
        drop(x);
        let mut out = vec![0f32; q.len()];
        refq::dequantize(&q, &shape, &params, &mut out)?;
        let expected = bits(&out);
        Ok(Dequantize { setup: setup.clone(), q, shape, params, out, expected })
    }
}

impl<C: OrtCode> Workload for Dequantize<C> {
    fn run(&mut self, imp: &Path) -> Result<()> {
        match imp {
            Path::Reference => refq::dequantize(&self.q, &self.shape, &self.params, &mut self.out),
            Path::Optimized(e) => e.dequantize(&self.q, &self.shape, &self.params, &mut self.out),
        }
    }
    fn scramble(&mut self) {
        scramble_floats(&mut self.out);
    }
    fn verify(&self) -> std::result::Result<(), String> {
        same_floats(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        1.0 + 4.0
    }
    fn detail(&self) -> serde_json::Value {
        params_detail(&self.setup, &self.params, &self.shape)
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        let p = ort_params(&self.setup, &self.params)?;
        let mut want = vec![0f32; self.q.len()];
        refq::dequantize(&self.q, &self.shape, &p, &mut want).ok()?;
        let input = C::ort_input(&self.q);
        Some(OrtCase::one_input(
            "dequantize",
            input,
            self.setup.dtype,
            (p.scales[0], p.zero_points[0]),
            le_bytes_f32(&want),
            self.bytes_per_element(),
            self.q.len(),
        ))
    }
}

/// Code types ONNX Runtime takes as input tensors.
trait OrtCode: FastCode {
    fn ort_input(q: &[Self]) -> OrtInput<'_>;
}

impl OrtCode for i8 {
    fn ort_input(q: &[i8]) -> OrtInput<'_> {
        OrtInput::I8(q)
    }
}

impl OrtCode for u8 {
    fn ort_input(q: &[u8]) -> OrtInput<'_> {
        OrtInput::U8(q)
    }
}

fn build_dequantize(setup: &Setup) -> Result<Box<dyn Workload>> {
    Ok(match setup.dtype {
        Dtype::U8 => Box::new(Dequantize::<u8>::new(setup)?),
        _ => Box::new(Dequantize::<i8>::new(setup)?),
    })
}

// ---------------------------------------------------------------------------------------------
// fake-quantize

struct FakeQuantize {
    setup: Setup,
    x: Vec<f32>,
    shape: Vec<usize>,
    params: QuantParams,
    rule: QuantizeRule,
    out: Vec<f32>,
    expected: Vec<u32>,
}

fn build_fake_quantize(setup: &Setup) -> Result<Box<dyn Workload>> {
    let rule = setup.profile.fake_quantize_rule()?;
    let (x, shape) = input(setup);
    let params = params_for(setup, &x, &shape)?;
    let mut out = vec![0f32; x.len()];
    refq::fake_quantize(&x, &shape, &params, rule, &mut out, None)?;
    let expected = bits(&out);
    Ok(Box::new(FakeQuantize { setup: setup.clone(), x, shape, params, rule, out, expected }))
}

impl Workload for FakeQuantize {
    fn run(&mut self, imp: &Path) -> Result<()> {
        match imp {
            Path::Reference => refq::fake_quantize(&self.x, &self.shape, &self.params, self.rule, &mut self.out, None),
            Path::Optimized(e) => e.fake_quantize(&self.x, &self.shape, &self.params, self.rule, &mut self.out, None),
        }
    }
    fn scramble(&mut self) {
        scramble_floats(&mut self.out);
    }
    fn verify(&self) -> std::result::Result<(), String> {
        same_floats(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        4.0 + 4.0
    }
    fn detail(&self) -> serde_json::Value {
        params_detail(&self.setup, &self.params, &self.shape)
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        // ONNX Runtime has no fake-quantize op: a QuantizeLinear -> DequantizeLinear pair (the
        // QDQ form of a quantized model) computes it, with ONNX Runtime's arithmetic.
        let p = ort_params(&self.setup, &self.params)?;
        let mut want = vec![0f32; self.x.len()];
        refq::fake_quantize(&self.x, &self.shape, &p, Profile::ONNXRUNTIME.quantize, &mut want, None).ok()?;
        Some(OrtCase::one_input(
            "fake-quantize",
            OrtInput::F32(&self.x),
            self.setup.dtype,
            (p.scales[0], p.zero_points[0]),
            le_bytes_f32(&want),
            self.bytes_per_element(),
            self.x.len(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// dynamic-quantize

struct Dynamic {
    setup: Setup,
    x: Vec<f32>,
    out: Vec<u8>,
    got: Option<(f32, i32)>,
    expected: Vec<u8>,
    expected_params: (f32, i32),
}

fn build_dynamic(setup: &Setup) -> Result<Box<dyn Workload>> {
    let (x, _) = input(setup);
    let mut expected = vec![0u8; x.len()];
    let p = setup.profile.dynamic_quantize(&x, &mut expected)?;
    let out = vec![0u8; x.len()];
    Ok(Box::new(Dynamic {
        setup: setup.clone(),
        x,
        out,
        got: None,
        expected,
        expected_params: (p.scale, p.zero_point),
    }))
}

impl Workload for Dynamic {
    fn run(&mut self, imp: &Path) -> Result<()> {
        let p = match imp {
            Path::Reference => self.setup.profile.dynamic_quantize(&self.x, &mut self.out)?,
            Path::Optimized(e) => e.dynamic_quantize(&self.setup.profile, &self.x, &mut self.out)?,
        };
        self.got = Some((p.scale, p.zero_point));
        Ok(())
    }
    fn scramble(&mut self) {
        self.got = None;
        let z = self.expected.first().map_or(0, |v| v.wrapping_add(1));
        self.out.iter_mut().for_each(|o| *o = z);
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match self.got {
            Some((s, z)) if s.to_bits() == self.expected_params.0.to_bits() && z == self.expected_params.1 => {}
            got => return Err(format!("parameters {got:?}, want {:?}", self.expected_params)),
        }
        first_difference(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        4.0 + 1.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": [self.x.len()], "scale": self.expected_params.0, "zero_point": self.expected_params.1})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        // ONNX's DynamicQuantizeLinear: outputs y (u8), y_scale (f32), y_zero_point (u8).
        let mut want = vec![0u8; self.x.len()];
        let p = Profile::ONNXRUNTIME.dynamic_quantize(&self.x, &mut want).ok()?;
        want.extend_from_slice(&p.scale.to_le_bytes());
        want.push(p.zero_point as u8);
        Some(OrtCase::one_input(
            "dynamic-quantize",
            OrtInput::F32(&self.x),
            Dtype::U8,
            (p.scale, p.zero_point),
            want,
            self.bytes_per_element(),
            self.x.len(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// min-max

struct MinMax {
    x: Vec<f32>,
    got: Option<(f32, f32)>,
    expected: (f32, f32),
}

fn build_min_max(setup: &Setup) -> Result<Box<dyn Workload>> {
    let (x, _) = input(setup);
    let expected = profile::min_max(&x)?;
    Ok(Box::new(MinMax { x, got: None, expected }))
}

impl Workload for MinMax {
    fn run(&mut self, imp: &Path) -> Result<()> {
        self.got = Some(match imp {
            Path::Reference => profile::min_max(&self.x)?,
            Path::Optimized(e) => {
                let m = e.min_max(&self.x)?;
                (m.min, m.max)
            }
        });
        Ok(())
    }
    fn scramble(&mut self) {
        self.got = None;
    }
    fn verify(&self) -> std::result::Result<(), String> {
        // Zeros compare equal whatever their sign (the kernels do not order signed zeros).
        match self.got {
            Some((lo, hi)) if lo == self.expected.0 && hi == self.expected.1 => Ok(()),
            got => Err(format!("got {got:?}, want {:?}", self.expected)),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        4.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": [self.x.len()], "min": self.expected.0, "max": self.expected.1})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        // ReduceMin and ReduceMax over the whole tensor, two outputs.
        let mut want = self.expected.0.to_le_bytes().to_vec();
        want.extend_from_slice(&self.expected.1.to_le_bytes());
        Some(OrtCase::one_input(
            "min-max",
            OrtInput::F32(&self.x),
            Dtype::F32,
            (1.0, 0),
            want,
            self.bytes_per_element(),
            self.x.len(),
        ))
    }
}

/// A unary op's bench on i8 codes through its 256-entry table: input codes at scale 0.05 (values
/// in [-6.4, 6.35]), the output quantized to cover the op's range there.
macro_rules! lut_bench {
    ($static:ident, $name:literal, $build:ident, $op:expr, $y:expr) => {
        #[doc = concat!("`quantproof bench ", $name, "`: ", $name, " on i8 codes through its 256-entry table.")]
        pub static $static: OpSpec = OpSpec {
            name: $name,
            summary: concat!(
                "i8 codes -> i8 codes: ",
                $name,
                " through a 256-entry table built by the reference under the profile's rules (the byte permute of every unary op)"
            ),
            default_profile: Profile::TFLITE,
            dtypes: &[Dtype::I8],
            per_axis: false,
            build: $build,
        };

        fn $build(setup: &Setup) -> Result<Box<dyn Workload>> {
            build_lut(setup, $name, $op, $y)
        }
    };
}

use quantproof_reference::activation::UnaryOp as U;
use quantproof_reference::affine::Affine as A;
lut_bench!(SIGMOID, "sigmoid", build_sigmoid, U::Sigmoid, A::new(1.0 / 256.0, -128));
lut_bench!(TANH, "tanh", build_tanh, U::Tanh, A::new(1.0 / 128.0, 0));
lut_bench!(HARDSIGMOID, "hardsigmoid", build_hardsigmoid, U::Hardsigmoid, A::new(1.0 / 256.0, -128));
lut_bench!(HARDSWISH, "hardswish", build_hardswish, U::Hardswish, A::new(0.05, 0));
lut_bench!(LEAKY_RELU, "leaky-relu", build_leaky_relu, U::LeakyRelu { negative_slope: 0.01 }, A::new(0.05, 0));
lut_bench!(GELU, "gelu", build_gelu, U::Gelu, A::new(0.05, 0));
lut_bench!(EXP, "exp", build_exp, U::Exp, A::new(2.25, -128));
lut_bench!(SILU, "silu", build_silu, U::Silu, A::new(0.05, 0));
lut_bench!(ELU, "elu", build_elu, U::Elu { alpha: 1.0 }, A::new(0.05, 0));
// The passive ops with the input's own quantization (the output shares it): integer compares
// in the reference, the same table here.
lut_bench!(RELU, "relu", build_relu, U::Relu, A::new(0.05, 0));
lut_bench!(RELU6, "relu6", build_relu6, U::Relu6, A::new(0.05, 0));
lut_bench!(CLAMP, "clamp", build_clamp, U::Clamp { min: Some(-2.0), max: Some(2.0) }, A::new(0.05, 0));
lut_bench!(HARDTANH, "hardtanh", build_hardtanh, U::Hardtanh { min: -1.0, max: 1.0 }, A::new(0.05, 0));

struct Lut {
    name: &'static str,
    table: Vec<i8>,
    x: Vec<i8>,
    out: Vec<i8>,
    expected: Vec<i8>,
    /// The output parameters and, for ONNX Runtime's contrib twin (QLinearSigmoid,
    /// QLinearLeakyRelu), its expected codes: the onnxruntime profile's table on the same input.
    y: quantproof_reference::affine::Affine,
    ort: Option<(Vec<i8>, Option<f32>)>,
}

fn build_lut(
    setup: &Setup,
    name: &'static str,
    op: quantproof_reference::activation::UnaryOp,
    y: quantproof_reference::affine::Affine,
) -> Result<Box<dyn Workload>> {
    use quantproof_reference::activation::UnaryOp;
    use quantproof_reference::activation::{apply_table, table};
    use quantproof_reference::affine::Affine;
    use quantproof_reference::profile::ArithRule;
    let t = table::<i8>(op, setup.profile.arith, Affine::new(0.05, 0), y)?;
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let x: Vec<i8> = (0..setup.size).map(|_| rng.below(256) as i32 as u8 as i8).collect();
    let mut expected = vec![0i8; x.len()];
    apply_table(&t, &x, &mut expected)?;
    // ONNX Runtime has contrib kernels for two of these ops (com.microsoft QLinearSigmoid and
    // QLinearLeakyRelu); its expected output is the onnxruntime profile's table.
    let alpha = match op {
        UnaryOp::Sigmoid => Some(None),
        UnaryOp::LeakyRelu { negative_slope } => Some(Some(negative_slope)),
        _ => None,
    };
    let ort = match alpha {
        Some(a) => {
            let t_ort = table::<i8>(op, ArithRule::OnnxRuntime, Affine::new(0.05, 0), y)?;
            let mut e = vec![0i8; x.len()];
            apply_table(&t_ort, &x, &mut e)?;
            Some((e, a))
        }
        None => None,
    };
    Ok(Box::new(Lut { name, table: t, out: vec![0; x.len()], x, expected, y, ort }))
}

impl Workload for Lut {
    fn run(&mut self, imp: &Path) -> Result<()> {
        match imp {
            Path::Reference => quantproof_reference::activation::apply_table(&self.table, &self.x, &mut self.out),
            Path::Optimized(e) => e.lut(&self.table, &self.x, &mut self.out),
        }
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = v.wrapping_add(77));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match self.out.iter().zip(&self.expected).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!("code {i}: got {}, want {}", self.out[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        2.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": [self.x.len()], "op": self.name, "table": 256})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        let (expected, alpha) = self.ort.as_ref()?;
        Some(OrtCase {
            unary: Some(super::OrtUnary { y_scale: self.y.scale, y_zero_point: self.y.zero_point, alpha: *alpha }),
            ..OrtCase::one_input(
                self.name,
                OrtInput::I8(&self.x),
                Dtype::I8,
                (0.05, 0),
                expected.iter().map(|&v| v as u8).collect(),
                self.bytes_per_element(),
                self.x.len(),
            )
        })
    }
}

/// Softmax rows' length in `bench softmax`.
const SOFTMAX_DEPTH: usize = 128;

struct Softmax<C> {
    x: Vec<C>,
    out: Vec<C>,
    expected: Vec<C>,
    shape: [usize; 2],
    xq: quantproof_reference::affine::Affine,
    yq: quantproof_reference::affine::Affine,
}

fn build_softmax(setup: &Setup) -> Result<Box<dyn Workload>> {
    match setup.dtype {
        Dtype::U8 => build_softmax_of::<u8>(setup),
        _ => build_softmax_of::<i8>(setup),
    }
}

fn build_softmax_of<C: OrtCode + Default + 'static>(setup: &Setup) -> Result<Box<dyn Workload>> {
    use quantproof_reference::affine::Affine;
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let rows = setup.size.div_ceil(SOFTMAX_DEPTH);
    // Scores spread over about 100 codes below each row's maximum, as attention scores are.
    let x: Vec<C> = (0..rows * SOFTMAX_DEPTH)
        .map(|_| C::from_code(C::MAX - rng.below(100) as i32 - rng.below(30) as i32))
        .collect();
    let shape = [rows, SOFTMAX_DEPTH];
    let (xq, yq) = (Affine::new(1.0 / 16.0, 0), Affine::new(1.0 / 256.0, C::MIN));
    let expected = quantproof_reference::softmax::tflite_softmax(&x, &shape, -1, 1.0, xq, yq)?;
    Ok(Box::new(Softmax { out: vec![C::default(); x.len()], x, expected, shape, xq, yq }))
}

impl<C: OrtCode + Default + std::fmt::Debug> Workload for Softmax<C> {
    fn run(&mut self, imp: &Path) -> Result<()> {
        match imp {
            Path::Reference => {
                let y = quantproof_reference::softmax::tflite_softmax(&self.x, &self.shape, -1, 1.0, self.xq, self.yq)?;
                self.out.copy_from_slice(&y);
                Ok(())
            }
            Path::Optimized(e) => e.tflite_softmax(&self.x, &self.shape, -1, 1.0, self.xq, self.yq, &mut self.out),
        }
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = C::from_code(v.to_code() ^ 0x55));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        first_difference(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        2.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": self.shape, "op": "softmax", "beta": 1.0, "x": [self.xq.scale, self.xq.zero_point]})
    }
}

const QGEMM_KN: usize = 384;

struct Qgemm {
    /// The requested size, which every record of this workload counts as its elements.
    elements: usize,
    m: usize,
    n: usize,
    k: usize,
    /// The activations' bytes (`s8` codes when `signed`) and their zero point.
    a: Vec<u8>,
    signed: bool,
    za: i32,
    b: Vec<i8>,
    /// `b` transposed to `[K, N]` (ONNX MatMul's layout).
    b_kxn: Vec<i8>,
    packed: quantproof_optimized::gemm::PackedWeights,
    /// 64-byte aligned, as the tensors of PyTorch's and ONNX Runtime's CPU allocators are (both
    /// align to 64 bytes; ONNX Runtime, measured beside it, writes into its own). A plain `Vec`
    /// of a few MiB starts 16 bytes past a cache line, and every 64-byte row an AMX tile store
    /// or a zmm store writes would span two lines: 15-20% of a 1024^3 GEMM's time here, a cost
    /// of the harness's buffer, not of the kernel.
    out: quantproof_optimized::aligned::AlignedVec<i32>,
    expected: Vec<i32>,
    /// An f32 GEMM of the same shape (`matrixmultiply`'s sgemm through `ndarray`), one thread:
    /// median seconds, for the int8 / f32 ratio.
    f32_seconds: f64,
}

/// The same bytes as `i8` codes.
fn bytemuck_i8(a: &[u8]) -> &[i8] {
    // SAFETY: `u8` and `i8` have the same size, alignment and validity (every bit pattern).
    unsafe { core::slice::from_raw_parts(a.as_ptr().cast::<i8>(), a.len()) }
}

/// `[M, N, K]` of a qgemm setup.
fn qgemm_dims(setup: &Setup) -> Result<(usize, usize, usize)> {
    match setup.dims.as_deref() {
        None => Ok(((setup.size / QGEMM_KN).max(1), QGEMM_KN, QGEMM_KN)),
        Some(&[m, n, k]) if m > 0 && n > 0 && k > 0 => Ok((m, n, k)),
        Some(d) => Err(QuantError::InvalidArgument {
            what: "qgemm shape",
            detail: format!("{d:?}: want M, N, K, each at least 1"),
        }),
    }
}

/// The median of a few timed runs of an f32 GEMM `[m, k] x [k, n]` (`ndarray`'s `dot`, which
/// calls `matrixmultiply`'s sgemm).
fn f32_gemm_seconds(m: usize, n: usize, k: usize, seed: u64) -> f64 {
    let mut rng = quantproof_reference::rng::Rng::new(seed);
    let a = ndarray::Array2::from_shape_fn((m, k), |_| rng.unit() as f32 - 0.5);
    let b = ndarray::Array2::from_shape_fn((k, n), |_| rng.unit() as f32 - 0.5);
    let mut times = Vec::new();
    let budget = std::time::Instant::now();
    for _ in 0..21 {
        let t = std::time::Instant::now();
        let c = a.dot(&b);
        std::hint::black_box(&c);
        times.push(t.elapsed().as_secs_f64());
        if times.len() >= 3 && budget.elapsed().as_secs_f64() > 0.5 {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn build_qgemm(setup: &Setup) -> Result<Box<dyn Workload>> {
    use quantproof_reference::gemm::{accumulate, GemmDims, WeightLayout, ZeroPoints};
    let (m, n, k) = qgemm_dims(setup)?;
    let elements = if setup.dims.is_some() { m * k } else { setup.size };
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let a: Vec<u8> = (0..m * k).map(|_| rng.below(256) as u8).collect();
    let b: Vec<i8> = (0..k * n).map(|_| rng.below(256) as i32 as u8 as i8).collect();
    let zb = ZeroPoints::PerTensor(0);
    let signed = setup.dtype == Dtype::I8;
    let za = if signed { 0 } else { 128 };
    let mut expected = vec![0i32; m * n];
    if signed {
        let a8: Vec<i8> = a.iter().map(|&v| v as i8).collect();
        accumulate(&a8, za, &b, zb, WeightLayout::NxK, GemmDims::new(m, n, k), &mut expected)?;
    } else {
        accumulate(&a, za, &b, zb, WeightLayout::NxK, GemmDims::new(m, n, k), &mut expected)?;
    }
    let packed = quantproof_optimized::gemm::PackedWeights::new(&b, zb, WeightLayout::NxK, k, n)?;
    let mut b_kxn = vec![0i8; b.len()];
    for j in 0..n {
        for kk in 0..k {
            b_kxn[kk * n + j] = b[j * k + kk];
        }
    }
    let f32_seconds = f32_gemm_seconds(m, n, k, setup.seed);
    Ok(Box::new(Qgemm {
        elements,
        m,
        n,
        k,
        a,
        signed,
        za,
        b,
        b_kxn,
        packed,
        out: quantproof_optimized::aligned::AlignedVec::zeroed(m * n),
        expected,
        f32_seconds,
    }))
}

impl Workload for Qgemm {
    fn run(&mut self, imp: &Path) -> Result<()> {
        use quantproof_optimized::gemm::{gemm_s8s8_threaded, gemm_u8s8_threaded, GemmKernel};
        use quantproof_reference::gemm::{accumulate, GemmDims, WeightLayout, ZeroPoints};
        let dims = GemmDims::new(self.m, self.n, self.k);
        let zb = ZeroPoints::PerTensor(0);
        // The activations as s8 codes (the same bytes), when they are.
        let a8 = || -> &[i8] { bytemuck_i8(&self.a) };
        match imp {
            Path::Reference if self.signed => {
                accumulate(a8(), self.za, &self.b, zb, WeightLayout::NxK, dims, &mut self.out[..])
            }
            Path::Reference => accumulate(&self.a, self.za, &self.b, zb, WeightLayout::NxK, dims, &mut self.out[..]),
            Path::Optimized(e) => {
                // Each ISA level's best micro-kernel (AMX or VNNI on AVX-512, AVX-VNNI on AVX2, sdot on NEON).
                let kernel = GemmKernel::best_for(e.isa());
                let (k, m, t) = (self.k, self.m, e.threads());
                if self.signed {
                    gemm_s8s8_threaded(a8(), k, m, self.za, &self.packed, kernel, t, &mut self.out[..])
                } else {
                    gemm_u8s8_threaded(&self.a, k, m, self.za, &self.packed, kernel, t, &mut self.out[..])
                }
            }
        }
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = v.wrapping_add(12345));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        match self.out.iter().zip(&self.expected).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: got {}, want {}", self.out[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        // Every operand once per call, over the M K activation elements: the activations (M K
        // bytes), the weights (K N bytes: with few rows the weight stream is what bounds the time,
        // so `gbytes_per_s` compares with the read bandwidth `bench limits` measures at that
        // size) and the i32 outputs (4 M N bytes).
        let (m, n, k) = (self.m as f64, self.n as f64, self.k as f64);
        1.0 + n / m.max(1.0) + 4.0 * n / k.max(1.0)
    }
    fn detail(&self) -> serde_json::Value {
        let ops = 2.0 * (self.m * self.n * self.k) as f64;
        json!({"m": self.m, "k": self.k, "n": self.n,
               "ops_per_element": ops / self.elements as f64,
               "kernel_by_isa": quantproof_optimized::isa::available().iter()
                   .map(|&i| (i.name().to_string(), serde_json::Value::from(quantproof_optimized::gemm::GemmKernel::best_for(i).name())))
                   .collect::<serde_json::Map<String, serde_json::Value>>(),
               "f32_gemm": {"implementation": "ndarray dot (matrixmultiply sgemm), 1 thread",
                            "seconds_median": self.f32_seconds, "gflops": ops / self.f32_seconds / 1e9}})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        // ONNX's MatMulInteger(A u8 [M, K], B s8 [K, N] constant, a_zero_point = 128): the same
        // exact int32 products, so its output must equal ours bit for bit.
        Some(OrtCase {
            op: "qgemm",
            input: if self.signed { OrtInput::I8(bytemuck_i8(&self.a)) } else { OrtInput::U8(&self.a) },
            dtype: if self.signed { Dtype::I8 } else { Dtype::U8 },
            scale: 1.0,
            zero_point: self.za,
            expected: self.expected.iter().flat_map(|v| v.to_le_bytes()).collect(),
            bytes_per_element: self.bytes_per_element(),
            // Counted as ours are (the requested size), so that the rates compare.
            elements: self.elements,
            ops_per_element: Some(2.0 * (self.m * self.n * self.k) as f64 / self.elements as f64),
            unary: None,
            binary: Some(super::OrtBinary {
                b: OrtInput::I8(&self.b_kxn),
                b_scale: 1.0,
                b_zero_point: 0,
                y_scale: 1.0,
                y_zero_point: 0,
                dims: Some(vec![self.m, self.k, self.n]),
            }),
        })
    }
}

struct Qconv2d {
    /// The requested size, which every record of this workload counts as its elements.
    elements: usize,
    g: quantproof_reference::conv::Conv2dGeometry,
    x: Vec<u8>,
    w: Vec<i8>,
    packed: quantproof_optimized::conv::PackedConv,
    out: Vec<i32>,
    expected: Vec<i32>,
}

fn build_qconv2d(setup: &Setup) -> Result<Box<dyn Workload>> {
    use quantproof_reference::conv::{conv2d_accumulate, ActivationLayout, Conv2dGeometry, ConvWeightLayout};
    use quantproof_reference::gemm::ZeroPoints;
    let d = match setup.dims.as_deref() {
        Some(d) if d.len() == 7 => d.to_vec(),
        Some(d) => {
            return Err(QuantError::InvalidArgument {
                what: "qconv2d shape",
                detail: format!("{d:?}: want N,C,H,W,OC,KH,KW"),
            })
        }
        None => {
            let h = ((setup.size / 64) as f64).sqrt().max(1.0) as usize;
            vec![1, 64, h, h, 64, 3, 3]
        }
    };
    let (kh, kw) = (d[5], d[6]);
    let g = Conv2dGeometry {
        batch: d[0],
        in_channels: d[1],
        in_h: d[2],
        in_w: d[3],
        out_channels: d[4],
        kernel_h: kh,
        kernel_w: kw,
        stride: [1, 1],
        pad_before: [(kh - 1) / 2, (kw - 1) / 2],
        pad_after: [kh - 1 - (kh - 1) / 2, kw - 1 - (kw - 1) / 2],
        dilation: [1, 1],
        groups: 1,
    };
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let x: Vec<u8> = (0..d[0] * d[1] * d[2] * d[3]).map(|_| rng.below(256) as u8).collect();
    let w: Vec<i8> = (0..d[4] * d[1] * kh * kw).map(|_| rng.below(256) as i32 as u8 as i8).collect();
    let zw = ZeroPoints::PerTensor(0);
    let expected = conv2d_accumulate(&g, ActivationLayout::Nchw, ConvWeightLayout::Oihw, &x, 128, &w, zw)?;
    let packed = quantproof_optimized::conv::PackedConv::new(&g, ConvWeightLayout::Oihw, &w, zw)?;
    Ok(Box::new(Qconv2d { elements: setup.size, g, x, w, packed, out: Vec::new(), expected }))
}

impl Qconv2d {
    /// Integer operations per run: `2 N OC OH OW C KH KW`.
    fn ops(&self) -> f64 {
        let g = &self.g;
        2.0 * (g.batch * g.out_channels * g.in_h * g.in_w * g.in_channels * g.kernel_h * g.kernel_w) as f64
    }
}

impl Workload for Qconv2d {
    fn run(&mut self, imp: &Path) -> Result<()> {
        use quantproof_reference::conv::{conv2d_accumulate, ActivationLayout, ConvWeightLayout};
        use quantproof_reference::gemm::ZeroPoints;
        self.out = match imp {
            Path::Reference => conv2d_accumulate(
                &self.g,
                ActivationLayout::Nchw,
                ConvWeightLayout::Oihw,
                &self.x,
                128,
                &self.w,
                ZeroPoints::PerTensor(0),
            )?,
            // Into the output of the last run, like ONNX Runtime's preallocated (IO-bound) output.
            Path::Optimized(e) => {
                let mut out = std::mem::take(&mut self.out);
                self.packed.accumulate_into(
                    ActivationLayout::Nchw,
                    &self.x,
                    128,
                    quantproof_optimized::gemm::GemmKernel::best_for(e.isa()),
                    e.threads(),
                    &mut out,
                )?;
                out
            }
        };
        Ok(())
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = v.wrapping_add(12345));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        if self.out.len() != self.expected.len() {
            return Err(format!("{} outputs, want {}", self.out.len(), self.expected.len()));
        }
        match self.out.iter().zip(&self.expected).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: got {}, want {}", self.out[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        // Each input byte read once, 4 bytes per output (OC outputs per C inputs at each pixel).
        1.0 + 4.0 * self.g.out_channels as f64 / self.g.in_channels as f64
    }
    fn detail(&self) -> serde_json::Value {
        let g = &self.g;
        json!({"shape": [g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.kernel_h, g.kernel_w],
               "layout": "NCHW", "padding": "same", "stride": 1,
               "ops_per_element": self.ops() / self.elements.max(1) as f64,
               "kernel_by_isa": quantproof_optimized::isa::available().iter()
                   .map(|&i| (i.name().to_string(), serde_json::Value::from(quantproof_optimized::gemm::GemmKernel::best_for(i).name())))
                   .collect::<serde_json::Map<String, serde_json::Value>>()})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        let g = &self.g;
        Some(OrtCase {
            op: "qconv2d",
            input: OrtInput::U8(&self.x),
            dtype: Dtype::U8,
            scale: 1.0,
            zero_point: 128,
            expected: self.expected.iter().flat_map(|v| v.to_le_bytes()).collect(),
            bytes_per_element: self.bytes_per_element(),
            elements: self.elements,
            ops_per_element: Some(self.ops() / self.elements.max(1) as f64),
            unary: None,
            binary: Some(super::OrtBinary {
                b: OrtInput::I8(&self.w),
                b_scale: 1.0,
                b_zero_point: 0,
                y_scale: 1.0,
                y_zero_point: 0,
                dims: Some(vec![g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.kernel_h, g.kernel_w]),
            }),
        })
    }
}

struct Pool2dBench {
    /// `None`: max pooling; `Some(rule)`: average pooling under the rule.
    avg: Option<quantproof_reference::profile::ArithRule>,
    x: Vec<i8>,
    /// `x` in NCHW order, for ONNX Runtime's MaxPool.
    x_nchw: Vec<i8>,
    shape: [usize; 4],
    pool: quantproof_reference::pool::Pool2d,
    q: quantproof_reference::affine::Affine,
    out: Vec<i8>,
    expected: Vec<i8>,
}

fn build_max_pool2d(setup: &Setup) -> Result<Box<dyn Workload>> {
    build_pool2d(setup, None)
}

fn build_avg_pool2d(setup: &Setup) -> Result<Box<dyn Workload>> {
    build_pool2d(setup, Some(setup.profile.arith))
}

fn build_pool2d(setup: &Setup, avg: Option<quantproof_reference::profile::ArithRule>) -> Result<Box<dyn Workload>> {
    use quantproof_reference::affine::{Activation, Affine};
    use quantproof_reference::pool::{Padding, Pool2d};
    let h = ((setup.size / 64) as f64).sqrt().max(1.0) as usize;
    let shape = [1, h, h, 64];
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let x: Vec<i8> = (0..h * h * 64).map(|_| rng.below(256) as i32 as u8 as i8).collect();
    let pool = Pool2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::Same,
        count_include_pad: false,
        activation: Activation::Relu,
    };
    let q = Affine::new(0.05, -3);
    let x_nchw = nhwc_to_nchw(&x, shape);
    let mut b = Pool2dBench { avg, x, x_nchw, shape, pool, q, out: Vec::new(), expected: Vec::new() };
    b.run(&Path::Reference)?;
    b.expected = std::mem::take(&mut b.out);
    Ok(Box::new(b))
}

impl Workload for Pool2dBench {
    fn run(&mut self, imp: &Path) -> Result<()> {
        use quantproof_reference::pool::{avg_pool2d, max_pool2d, Layout::Nhwc};
        let (x, shape, p, q) = (&self.x, self.shape, &self.pool, self.q);
        self.out = match (imp, self.avg) {
            (Path::Reference, None) => max_pool2d(x, shape, Nhwc, p, q, q)?.0,
            (Path::Optimized(e), None) => e.max_pool2d(x, shape, Nhwc, p, q, q)?.0,
            (Path::Reference, Some(rule)) => avg_pool2d(rule, x, shape, Nhwc, p, q, q)?.0,
            (Path::Optimized(e), Some(rule)) => e.avg_pool2d(rule, x, shape, Nhwc, p, q, q)?.0,
        };
        Ok(())
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = v.wrapping_add(77));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        if self.out.len() != self.expected.len() {
            return Err(format!("{} outputs, want {}", self.out.len(), self.expected.len()));
        }
        match self.out.iter().zip(&self.expected).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: got {}, want {}", self.out[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        // Each input byte read once (windows overlap, but the reuse stays in cache), a quarter of
        // a byte written.
        1.25
    }
    fn detail(&self) -> serde_json::Value {
        json!({"shape": self.shape, "layout": "NHWC", "kernel": [3, 3], "stride": [2, 2], "padding": "SAME"})
    }
    /// Max pooling: ONNX Runtime's `MaxPool` (NCHW only) on the same codes transposed, the fused
    /// ReLU as `Max` with the zero point; its output compared after transposing ours.
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        if self.avg.is_some() {
            return None;
        }
        let expected: Vec<u8> = nhwc_to_nchw(&self.expected, self.out_shape()).iter().map(|&v| v as u8).collect();
        Some(OrtCase::one_input(
            "max-pool2d",
            OrtInput::I8(&self.x_nchw),
            Dtype::I8,
            (self.q.scale, self.q.zero_point),
            expected,
            self.bytes_per_element(),
            self.x.len(),
        ))
    }
}

impl Pool2dBench {
    /// The output's NHWC shape: SAME padding, stride 2.
    fn out_shape(&self) -> [usize; 4] {
        let [n, h, w, c] = self.shape;
        [n, h.div_ceil(2), w.div_ceil(2), c]
    }
}

/// An NHWC tensor's elements in NCHW order.
fn nhwc_to_nchw<T: Copy>(x: &[T], [n, h, w, c]: [usize; 4]) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out.push(x[((b * h + y) * w + xx) * c + ch]);
                }
            }
        }
    }
    out
}

struct Requantize {
    acc: Vec<i32>,
    requantizer: quantproof_reference::requantize::Requantizer,
    zero_point: i32,
    range: quantproof_reference::scheme::CodeRange,
    out_u8: Vec<u8>,
    out_i8: Vec<i8>,
    expected: Vec<i32>,
    dtype: Dtype,
}

fn build_requantize(setup: &Setup) -> Result<Box<dyn Workload>> {
    use quantproof_reference::profile::ArithRule;
    use quantproof_reference::requantize::{requantize, RequantizeKind, Requantizer};
    let kind = match setup.profile.arith {
        ArithRule::Torch => RequantizeKind::FloatTorch,
        ArithRule::OnnxRuntime => RequantizeKind::FloatOnnxRuntime,
        ArithRule::Tflite => RequantizeKind::DoubleRounding,
    };
    // A typical output multiplier s_x s_w / s_y, and accumulators of a 384-deep int8 product.
    let requantizer = Requantizer::new(kind, 0.000_731_5)?;
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let acc: Vec<i32> = (0..setup.size).map(|_| rng.range_i64(-400_000, 400_000) as i32).collect();
    let (range, zero_point) = match setup.dtype {
        Dtype::I8 => (QType::I8.full_range(), -3),
        _ => (QType::U8.full_range(), 128),
    };
    let mut expected = vec![0i32; acc.len()];
    requantize(&acc, &requantizer, zero_point, range, &mut expected)?;
    let n = acc.len();
    Ok(Box::new(Requantize {
        acc,
        requantizer,
        zero_point,
        range,
        out_u8: vec![0; n],
        out_i8: vec![0; n],
        expected,
        dtype: setup.dtype,
    }))
}

impl Workload for Requantize {
    fn run(&mut self, imp: &Path) -> Result<()> {
        use quantproof_reference::requantize::requantize;
        match imp {
            Path::Reference => {
                // The reference writes i32 codes; narrowing them is part of its work.
                let mut codes = vec![0i32; self.acc.len()];
                requantize(&self.acc, &self.requantizer, self.zero_point, self.range, &mut codes)?;
                match self.dtype {
                    Dtype::I8 => self.out_i8.iter_mut().zip(&codes).for_each(|(o, &c)| *o = c as i8),
                    _ => self.out_u8.iter_mut().zip(&codes).for_each(|(o, &c)| *o = c as u8),
                }
                Ok(())
            }
            Path::Optimized(e) => match self.dtype {
                Dtype::I8 => e.requantize(&self.acc, &self.requantizer, self.zero_point, self.range, &mut self.out_i8),
                _ => e.requantize(&self.acc, &self.requantizer, self.zero_point, self.range, &mut self.out_u8),
            },
        }
    }
    fn scramble(&mut self) {
        self.out_u8.iter_mut().for_each(|v| *v = v.wrapping_add(77));
        self.out_i8.iter_mut().for_each(|v| *v = v.wrapping_add(77));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        let got: Vec<i32> = match self.dtype {
            Dtype::I8 => self.out_i8.iter().map(|&v| v as i32).collect(),
            _ => self.out_u8.iter().map(|&v| v as i32).collect(),
        };
        match got.iter().zip(&self.expected).position(|(a, b)| a != b) {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: got {}, want {}", got[i], self.expected[i])),
        }
    }
    fn bytes_per_element(&self) -> f64 {
        5.0
    }
    fn detail(&self) -> serde_json::Value {
        json!({"requantizer": format!("{:?}", self.requantizer), "zero_point": self.zero_point,
               "range": [self.range.qmin(), self.range.qmax()]})
    }
}

struct Binary<C> {
    name: &'static str,
    kernel: quantproof_reference::elementwise::BinaryKernel,
    params: quantproof_reference::elementwise::BinaryParams,
    a: Vec<C>,
    b: Vec<C>,
    out: Vec<C>,
    expected: Vec<C>,
    dtype: Dtype,
    /// ONNX Runtime's output for the same op (its own arithmetic), when it has the op.
    ort_expected: Option<Vec<u8>>,
}

fn build_binary(
    setup: &Setup,
    op: quantproof_reference::elementwise::BinaryOp,
    equal: bool,
) -> Result<Box<dyn Workload>> {
    match setup.dtype {
        Dtype::U8 => build_binary_of::<u8>(setup, op, equal),
        _ => build_binary_of::<i8>(setup, op, equal),
    }
}

fn build_binary_of<C: OrtCode + Default + 'static>(
    setup: &Setup,
    op: quantproof_reference::elementwise::BinaryOp,
    equal: bool,
) -> Result<Box<dyn Workload>> {
    use quantproof_reference::affine::{Activation, Affine};
    use quantproof_reference::elementwise::{apply_binary, BinaryKernel, BinaryOp, BinaryParams};
    use quantproof_reference::profile::ArithRule;
    let mut rng = quantproof_reference::rng::Rng::new(setup.seed);
    let n = setup.size;
    let code =
        |rng: &mut quantproof_reference::rng::Rng| C::from_code(rng.range_i64(C::MIN as i64, C::MAX as i64) as i32);
    let a: Vec<C> = (0..n).map(|_| code(&mut rng)).collect();
    let b: Vec<C> = (0..n).map(|_| code(&mut rng)).collect();
    let mid = (C::MIN + C::MAX + 1) / 2;
    // Typical activations: two residual branches of a transformer block.
    let (sa, sb) = if equal { (0.031, 0.031) } else { (0.031, 0.047) };
    let sy = if op == BinaryOp::Mul { 0.031 * 0.047 * 90.0 } else { 0.06 };
    let params = BinaryParams {
        a: Affine::new(sa, mid + 3),
        b: Affine::new(sb, mid - 5),
        y: Affine::new(sy, mid + 1),
        activation: Activation::None,
    };
    let kernel = if equal {
        BinaryKernel::equal_scale::<C>(op, &params)?
    } else {
        BinaryKernel::new::<C>(op, setup.profile.arith, &params)?
    };
    let shape = [n];
    let mut expected = vec![C::default(); n];
    apply_binary(&kernel, &a, &shape, &b, &shape, &mut expected)?;
    // ONNX Runtime's QLinearAdd / QLinearMul, timed next to the onnxruntime profile only.
    let ort_expected = if equal || op == BinaryOp::Sub || setup.profile.arith != ArithRule::OnnxRuntime {
        None
    } else {
        let k = BinaryKernel::new::<C>(op, ArithRule::OnnxRuntime, &params)?;
        let mut y = vec![C::default(); n];
        apply_binary(&k, &a, &shape, &b, &shape, &mut y)?;
        Some(code_bytes(&y))
    };
    let name = match (op, equal) {
        (BinaryOp::Mul, _) => "qmul",
        (_, true) => "qadd-equal-scale",
        _ => "qadd",
    };
    Ok(Box::new(Binary {
        name,
        kernel,
        params,
        out: vec![C::default(); n],
        a,
        b,
        expected,
        dtype: setup.dtype,
        ort_expected,
    }))
}

fn build_qadd(setup: &Setup) -> Result<Box<dyn Workload>> {
    build_binary(setup, quantproof_reference::elementwise::BinaryOp::Add, false)
}

fn build_qadd_equal_scale(setup: &Setup) -> Result<Box<dyn Workload>> {
    build_binary(setup, quantproof_reference::elementwise::BinaryOp::Add, true)
}

fn build_qmul(setup: &Setup) -> Result<Box<dyn Workload>> {
    build_binary(setup, quantproof_reference::elementwise::BinaryOp::Mul, false)
}

impl<C: OrtCode + Default + std::fmt::Debug> Workload for Binary<C> {
    fn run(&mut self, imp: &Path) -> Result<()> {
        let shape = [self.a.len()];
        match imp {
            Path::Reference => quantproof_reference::elementwise::apply_binary(
                &self.kernel,
                &self.a,
                &shape,
                &self.b,
                &shape,
                &mut self.out,
            ),
            Path::Optimized(e) => e.apply_binary(&self.kernel, &self.a, &shape, &self.b, &shape, &mut self.out),
        }
    }
    fn scramble(&mut self) {
        self.out.iter_mut().for_each(|v| *v = C::from_code(v.to_code() ^ 0x55));
    }
    fn verify(&self) -> std::result::Result<(), String> {
        first_difference(&self.out, &self.expected)
    }
    fn bytes_per_element(&self) -> f64 {
        3.0
    }
    fn detail(&self) -> serde_json::Value {
        let p = &self.params;
        json!({"shape": [self.a.len()], "op": self.name, "kernel": format!("{:?}", self.kernel),
               "a": [p.a.scale, p.a.zero_point], "b": [p.b.scale, p.b.zero_point], "y": [p.y.scale, p.y.zero_point]})
    }
    fn ort_case(&self) -> Option<OrtCase<'_>> {
        let expected = self.ort_expected.clone()?;
        Some(OrtCase {
            op: self.name,
            input: C::ort_input(&self.a),
            dtype: self.dtype,
            scale: self.params.a.scale,
            zero_point: self.params.a.zero_point,
            expected,
            bytes_per_element: self.bytes_per_element(),
            elements: self.a.len(),
            ops_per_element: None,
            unary: None,
            binary: Some(super::OrtBinary {
                b: C::ort_input(&self.b),
                b_scale: self.params.b.scale,
                b_zero_point: self.params.b.zero_point,
                y_scale: self.params.y.scale,
                y_zero_point: self.params.y.zero_point,
                dims: None,
            }),
        })
    }
}

#[cfg(test)]
const LUT_OPS: [&str; 13] = [
    "sigmoid",
    "tanh",
    "hardsigmoid",
    "hardswish",
    "leaky-relu",
    "gelu",
    "exp",
    "silu",
    "elu",
    "relu",
    "relu6",
    "clamp",
    "hardtanh",
];

#[cfg(test)]
mod tests {
    use super::super::{Bench, Path, Setup};
    use super::*;
    use crate::bench::timing::Reps;

    /// Every operation, every dtype and granularity it takes, every implementation: the output
    /// check passes and a record comes out.
    #[test]
    fn every_op_measures_and_verifies() {
        for spec in table() {
            for &dtype in spec.dtypes {
                for gran in [Gran::PerTensor, Gran::PerAxis] {
                    if gran == Gran::PerAxis && !spec.per_axis {
                        assert!(Setup::resolve(spec, 4096, None, Some(dtype), Some(gran)).is_err());
                        continue;
                    }
                    let setup = Setup::resolve(spec, 4096, None, Some(dtype), Some(gran)).unwrap();
                    let mut b = Bench::new(spec, setup).unwrap();
                    let mut impls = vec![Path::Reference];
                    impls.extend(Path::optimized(2));
                    for imp in impls {
                        let r = b.measure(&imp, Reps::Fixed(2)).unwrap();
                        assert_eq!((r.op.as_str(), r.reps, r.elements), (spec.name, 2, 4096));
                        assert!(r.seconds_median > 0.0 && r.gelem_per_s > 0.0);
                    }
                    if gran == Gran::PerTensor && b.workload.ort_collector().is_some() {
                        assert!(b.workload.ort_case().is_none());
                    } else if spec.name == "abs-max"
                        || (LUT_OPS.contains(&spec.name) && !["sigmoid", "leaky-relu"].contains(&spec.name))
                        || spec.name == "requantize"
                        || spec.name == "qadd-equal-scale"
                        || spec.name == "avg-pool2d"
                        || spec.name == "softmax"
                    {
                        // qadd-equal-scale is quantproof's own kernel: no framework has it.
                        // softmax: TFLite's integer kernel; ONNX Runtime's QLinearSoftmax
                        // (com.microsoft) computes another arithmetic, not recorded here.
                        // avg-pool2d: ONNX Runtime's QLinearAveragePool is not recorded (the
                        // onnxruntime profile's average pooling is a stand-in), so no twin.
                        // Of the lookup ops ONNX Runtime has only QLinearSigmoid and
                        // QLinearLeakyRelu (com.microsoft); the others have no twin.
                        assert!(b.workload.ort_case().is_none());
                    } else if gran == Gran::PerTensor {
                        let c = b.workload.ort_case().unwrap();
                        assert_eq!(c.elements, 4096);
                        assert!(c.expected.len() >= 8, "{}", spec.name);
                    } else {
                        assert!(b.workload.ort_case().is_none());
                    }
                }
            }
        }
    }

    /// A kernel that leaves its output alone is caught by the scrambled buffers.
    #[test]
    fn scrambled_outputs_fail_verification() {
        for spec in table() {
            let setup = Setup::resolve(spec, 1000, None, None, None).unwrap();
            let mut b = Bench::new(spec, setup).unwrap();
            b.workload.run(&Path::Reference).unwrap();
            assert!(b.workload.verify().is_ok(), "{}", spec.name);
            b.workload.scramble();
            assert!(b.workload.verify().is_err(), "{}", spec.name);
        }
    }

    #[test]
    fn unsupported_combinations() {
        let fq = table().find(|s| s.name == "fake-quantize").unwrap();
        let s = Setup::resolve(fq, 100, Some(Profile::ONNXRUNTIME), None, None).unwrap();
        assert!(Bench::new(fq, s).is_err(), "onnxruntime has no fake-quantize rule");
        let dq = table().find(|s| s.name == "dynamic-quantize").unwrap();
        assert!(Setup::resolve(dq, 100, None, Some(Dtype::I8), None).is_err());
    }
}
