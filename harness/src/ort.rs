//! # ONNX Runtime, measured in the same run
//!
//! quantproof's speed is only meaningful next to what people use today. This module runs
//! ONNX Runtime's CPU provider on the *same data, sizes and thread counts* as our kernels, in the
//! same process run, through `harness/python/ort_bench.py` (embedded in the binary as
//! [`SCRIPT`]; its docstring says how it keeps the comparison fair: one-operator models, IO
//! binding to preallocated outputs, `intra_op_num_threads = T`, sequential execution, the median
//! of repeated runs, and the fixed per-call cost measured separately).
//!
//! ## The Python environment
//!
//! [`setup`] finds or creates a virtual environment and installs what the script needs
//! ([`PACKAGES`]) with pip:
//!
//! * `QUANTPROOF_VENV`, when set, names the venv to use (created if missing; packages installed
//!   into it if absent). Point it at an existing one, e.g. `QUANTPROOF_VENV=/work/venv`.
//! * otherwise `target/quantproof-venv` in the workspace.
//! * `QUANTPROOF_PYTHON` names the interpreter that creates the venv (default `python3`).
//!
//! When anything is missing (no Python, no `venv` module, no network for pip), [`setup`] returns
//! the reason; callers print it loudly and carry on without ONNX Runtime.
//!
//! ## Same data, checked output
//!
//! The input tensor is written to a temporary file and read by numpy, so ONNX Runtime sees the
//! very values our kernels saw. The outputs of one run come back the same way and are compared
//! bit for bit with the reference computed under ONNX Runtime's own semantics
//! ([`crate::bench::OrtCase::expected`]); [`Record::verified`] says whether they matched. A
//! mismatch does not hide the timing: it is reported next to it.

use crate::bench::{OrtCase, Record};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The benchmark script, embedded so that the binary needs no source tree.
pub const SCRIPT: &str = include_str!("../python/ort_bench.py");

/// What pip installs: ONNX Runtime pinned to the version the golden vectors were recorded with.
pub const PACKAGES: [&str; 3] = ["onnxruntime==1.32.0", "numpy", "onnx"];

/// A working Python environment with ONNX Runtime.
#[derive(Debug, Clone)]
pub struct Ort {
    pub venv: PathBuf,
    pub python: PathBuf,
    /// Where the script was written.
    pub script: PathBuf,
    /// `{"onnxruntime": ..., "numpy": ..., "onnx": ..., "python": ...}`.
    pub versions: serde_json::Value,
}

/// The venv directory: `QUANTPROOF_VENV`, else `target/quantproof-venv` in the workspace (or in
/// the current directory when the binary runs away from its source tree).
pub fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("QUANTPROOF_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent() {
        Some(root) if root.join("Cargo.toml").is_file() => root.join("target").join("quantproof-venv"),
        _ => PathBuf::from("target").join("quantproof-venv"),
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Runs a command, returning stdout, or a message with its stderr's tail.
fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{what} failed ({}): {}", out.status, tail.join(" | ")))
    }
}

/// Finds or creates the venv, installs [`PACKAGES`] when missing, writes the script. `log`
/// receives progress lines (creating, installing). Returns why ONNX Runtime cannot be measured
/// otherwise.
pub fn setup(log: &mut dyn FnMut(&str)) -> Result<Ort, String> {
    let venv = venv_dir();
    let python = venv_python(&venv);
    if !python.exists() {
        let base = std::env::var("QUANTPROOF_PYTHON").unwrap_or_else(|_| "python3".into());
        log(&format!("creating a Python venv in {} with {base} -m venv", venv.display()));
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        run(Command::new(&base).arg("-m").arg("venv").arg(&venv), "python -m venv")?;
    }
    let check = Command::new(&python).args(["-c", "import onnxruntime, numpy, onnx"]).output();
    if !matches!(check, Ok(ref o) if o.status.success()) {
        log(&format!("installing {} into {} with pip (once)", PACKAGES.join(" "), venv.display()));
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(PACKAGES),
            "pip install",
        )?;
    }
    let script = venv.join("quantproof_ort_bench.py");
    if std::fs::read_to_string(&script).ok().as_deref() != Some(SCRIPT) {
        std::fs::write(&script, SCRIPT).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    }
    let out = run(Command::new(&python).arg(&script).arg("versions"), "ort_bench.py versions")?;
    let versions =
        serde_json::from_str(out.trim()).map_err(|e| format!("ort_bench.py versions printed {out:?}: {e}"))?;
    Ok(Ort { venv, python, script, versions })
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("quantproof-ort-{}-{n}-{tag}.bin", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The last line of `out` that parses as a [`Record`].
fn parse_record(out: &str) -> Result<Record, String> {
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Record>(l.trim()).ok())
        .ok_or_else(|| format!("ort_bench.py printed no record: {:?}", out.chars().take(400).collect::<String>()))
}

/// Compares ONNX Runtime's output bytes with the expected ones; `elem` is the size of one
/// element of the main output.
pub fn compare_outputs(got: &[u8], want: &[u8], elem: usize) -> String {
    if got == want {
        return "bit-exact with the reference (onnxruntime semantics)".into();
    }
    if got.len() != want.len() {
        return format!("DIFFERS from the reference: {} output bytes instead of {}", got.len(), want.len());
    }
    let elem = elem.max(1);
    let bad = got.chunks(elem).zip(want.chunks(elem)).filter(|(g, w)| g != w).count();
    let first = got.chunks(elem).zip(want.chunks(elem)).position(|(g, w)| g != w).unwrap_or(0);
    format!("DIFFERS from the reference: {bad} of {} elements, first at {first}", want.len().div_ceil(elem))
}

impl Ort {
    /// Times ONNX Runtime on `case` with `threads` intra-op threads (`reps` timed runs, or a
    /// quarter-second budget when `None`), and checks its output.
    pub fn bench_case(&self, case: &OrtCase<'_>, threads: usize, reps: Option<usize>) -> Result<Record, String> {
        let input = TempFile::new("in");
        let output = TempFile::new("out");
        std::fs::write(&input.0, case.input.to_bytes())
            .map_err(|e| format!("cannot write {}: {e}", input.0.display()))?;
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .args(["op", "--op", case.op, "--dtype", case.dtype.name()])
            .arg("--input")
            .arg(&input.0)
            .arg("--out-file")
            .arg(&output.0)
            .args(["--scale", &format!("{:e}", case.scale), "--zero-point", &case.zero_point.to_string()])
            .args(["--threads", &threads.to_string(), "--reps", &reps.unwrap_or(0).to_string()]);
        // A two-input op: its second input in a file of its own, and the parameters.
        let second = TempFile::new("in-b");
        if let Some(bin) = &case.binary {
            std::fs::write(&second.0, bin.b.to_bytes())
                .map_err(|e| format!("cannot write {}: {e}", second.0.display()))?;
            cmd.arg("--input-b").arg(&second.0).args([
                "--b-scale",
                &format!("{:e}", bin.b_scale),
                "--b-zero-point",
                &bin.b_zero_point.to_string(),
                "--y-scale",
                &format!("{:e}", bin.y_scale),
                "--y-zero-point",
                &bin.y_zero_point.to_string(),
            ]);
            if let Some(dims) = &bin.dims {
                let list: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                cmd.args(["--dims", &list.join(",")]);
            }
        }
        if let Some(u) = &case.unary {
            cmd.args(["--y-scale", &format!("{:e}", u.y_scale), "--y-zero-point", &u.y_zero_point.to_string()]);
            if let Some(a) = u.alpha {
                cmd.args(["--alpha", &format!("{a:e}")]);
            }
        }
        let out = run(&mut cmd, &format!("ort_bench.py op {}", case.op))?;
        let mut r = parse_record(&out)?;
        let got = std::fs::read(&output.0).map_err(|e| format!("cannot read ONNX Runtime's output: {e}"))?;
        let elem = match case.op {
            "quantize" | "dynamic-quantize" | "qadd" | "qmul" | "sigmoid" | "leaky-relu" | "max-pool2d" => 1,
            _ => 4,
        };
        r.verified = compare_outputs(&got, &case.expected, elem);
        r.bytes_per_element = case.bytes_per_element;
        if let Some(ops) = case.ops_per_element {
            let mut d = r.detail.take().unwrap_or_else(|| serde_json::json!({}));
            if let Some(o) = d.as_object_mut() {
                o.insert("ops_per_element".into(), serde_json::json!(ops));
            }
            r.detail = Some(d);
        }
        r.derive_rates();
        Ok(r)
    }

    /// Times `onnxruntime.quantization`'s `HistogramCollector` on `x`: construction, one
    /// `collect` and `compute_collection_result`, the median of `reps` runs. The thresholds it
    /// found are in the record's `detail.result`.
    pub fn calibrator(&self, c: &Collector, x: &[f32], reps: usize) -> Result<Record, String> {
        let input = TempFile::new("calib");
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&input.0, bytes).map_err(|e| format!("cannot write {}: {e}", input.0.display()))?;
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script).args(["calib", "--method", c.method]).arg("--input").arg(&input.0).args([
            "--bins",
            &c.bins.to_string(),
            "--quantized-bins",
            &c.quantized_bins.to_string(),
            "--percentile",
            &c.percentile.to_string(),
            "--reps",
            &reps.to_string(),
        ]);
        if c.symmetric {
            cmd.arg("--symmetric");
        }
        let out = run(&mut cmd, &format!("ort_bench.py calib {}", c.method))?;
        let mut r = parse_record(&out)?;
        r.verified = "not compared (quantproof's calibrators are compared by their own tests)".into();
        r.bytes_per_element = 4.0;
        r.derive_rates();
        Ok(r)
    }

    /// `onnxruntime 1.32.0, numpy ..., onnx ..., python ...`.
    pub fn describe(&self) -> String {
        let v = |k: &str| self.versions.get(k).and_then(|s| s.as_str()).unwrap_or("?").to_string();
        format!("onnxruntime {}, numpy {}, onnx {}, python {}", v("onnxruntime"), v("numpy"), v("onnx"), v("python"))
    }
}

/// The settings of one `HistogramCollector`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collector {
    /// `entropy`, `percentile` or `distribution`.
    pub method: &'static str,
    pub bins: usize,
    pub quantized_bins: usize,
    pub percentile: f64,
    /// Histogram of `|x|` (percentile's symmetric mode).
    pub symmetric: bool,
}

impl Collector {
    /// The collectors issue 3 compares with: entropy (2048 bins, 128 quantized bins),
    /// percentile (99.999, 2048 bins, symmetric, as ONNX Runtime's percentile calibrator uses
    /// it by default) and distribution (2048 bins).
    pub const SUITE: [Collector; 3] = [
        Collector { method: "entropy", bins: 2048, quantized_bins: 128, percentile: 99.999, symmetric: false },
        Collector { method: "percentile", bins: 2048, quantized_bins: 128, percentile: 99.999, symmetric: true },
        Collector { method: "distribution", bins: 2048, quantized_bins: 128, percentile: 99.999, symmetric: false },
    ];

    /// The suite's collector for `method`.
    pub fn by_method(method: &str) -> Option<Collector> {
        Collector::SUITE.into_iter().find(|c| c.method == method)
    }
}

/// Every collector of [`Collector::SUITE`] on `x`.
pub fn calibrator_suite(ort: &Ort, x: &[f32], reps: usize) -> Vec<Result<Record, String>> {
    Collector::SUITE.iter().map(|c| ort.calibrator(c, x, reps)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_comparison() {
        assert!(compare_outputs(&[1, 2, 3, 4], &[1, 2, 3, 4], 1).starts_with("bit-exact"));
        assert_eq!(
            compare_outputs(&[1, 9, 3, 9], &[1, 2, 3, 4], 1),
            "DIFFERS from the reference: 2 of 4 elements, first at 1"
        );
        assert_eq!(
            compare_outputs(&[0, 0, 0, 0, 1, 0, 0, 0], &[0; 8], 4),
            "DIFFERS from the reference: 1 of 2 elements, first at 1"
        );
        assert!(compare_outputs(&[1], &[1, 2], 1).contains("1 output bytes instead of 2"));
    }

    #[test]
    fn records_are_found_among_other_lines() {
        let line = r#"{"op":"quantize","isa":"onnxruntime","threads":1,"elements":4,"profile":"onnxruntime","dtype":"i8","granularity":"per-tensor","reps":3,"seconds_median":1e-6,"seconds_min":1e-6,"seconds_max":2e-6,"gelem_per_s":0,"gbytes_per_s":0,"bytes_per_element":0,"verified":"not checked","detail":{"x":1}}"#;
        let r = parse_record(&format!("noise\n{line}\n\n")).unwrap();
        assert_eq!((r.op.as_str(), r.isa.as_str(), r.reps), ("quantize", "onnxruntime", 3));
        assert!(parse_record("nothing here").is_err());
    }

    #[test]
    fn the_script_is_embedded_and_names_its_subcommands() {
        for sub in ["\"versions\"", "\"op\"", "\"calib\"", "run_with_iobinding", "intra_op_num_threads"] {
            assert!(SCRIPT.contains(sub), "{sub}");
        }
    }
}
