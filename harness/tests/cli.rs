//! The `quantproof` tool on bad arguments and malformed files: every one gets a non-zero exit
//! status and a message that names the problem, never a panic, an abort or a silent success.
//!
//! Exit statuses: 0 success, 1 a failed check, 2 a usage error, 3 (`verify-vectors`) nothing was
//! verified.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tool, started through cargo's target runner when the tests themselves run under one
/// (`.ci/run` runs the aarch64 tests under qemu-user, and an emulated process cannot `exec` an
/// aarch64 binary directly: the host kernel has no loader for it).
fn tool() -> Command {
    let bin = env!("CARGO_BIN_EXE_quantproof");
    let runner_var = format!("CARGO_TARGET_{}_UNKNOWN_LINUX_GNU_RUNNER", std::env::consts::ARCH.to_uppercase());
    let runner = std::env::var(&runner_var).unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut c = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    c.env_remove("QUANTPROOF_ISA");
    c
}

fn run(args: &[&str]) -> Output {
    tool().args(args).output().expect("the quantproof binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit status and that stderr or stdout mentions every `needle`; never a panic.
fn expect(o: &Output, code: i32, needles: &[&str], what: &str) {
    let (out, err) = (stdout(o), stderr(o));
    assert!(!err.contains("panicked"), "{what}: the tool panicked:\n{err}");
    assert_eq!(o.status.code(), Some(code), "{what}: exit status\nstdout:\n{out}\nstderr:\n{err}");
    for n in needles {
        assert!(out.contains(n) || err.contains(n), "{what}: no {n:?} in\nstdout:\n{out}\nstderr:\n{err}");
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantproof-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(file);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    std::fs::write(&p, bytes).expect("write");
    p
}

const GOOD: &str = r#"{"format":"quant-vectors/1","profile":"onnxruntime","op":"quantize","name":"q","attrs":{"scale":[0.5],"zero_point":[0],"axis":null,"dtype":"i8","qmin":-128,"qmax":127},"inputs":{"x":{"dtype":"f32","shape":[3],"data":[0.25,0.75,100.0]}},"outputs":{"y":{"dtype":"i8","shape":[3],"data":[0,2,127]}}}"#;

#[test]
fn bench_arguments_outside_their_domains_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "quantize", "--size", "4K", "--threads", "0"], "--threads 0"),
        (&["bench", "quantize", "--size", "4K", "--threads", "100000"], "--threads 100000"),
        (&["bench", "quantize", "--size", "4K", "--reps", "0"], "--reps 0"),
        (&["bench", "histogram", "--size", "4K", "--bins", "0"], "--bins 0"),
        (&["bench", "histogram", "--size", "4K", "--bins", "1099511627776"], "--bins 1099511627776"),
        (&["bench", "quantize", "--size", "0"], "--size 0"),
        (&["bench", "quantize", "--size", "100G"], "--size"),
        (&["bench", "quantize", "--size", "12Q"], "not a size"),
        (&["bench", "quantize", "--size", "99999999999999999999G"], "not a size"),
        (&["bench", "frobnicate", "--size", "4K"], "unknown operation"),
        (&["bench", "quantize", "--size", "4K", "--isa", "mmx"], "mmx"),
        (&["bench", "quantize", "--size", "4K", "--profile", "caffe"], "caffe"),
        (&["bench", "quantize", "--size", "4K", "--dtype", "f64"], "f64"),
        (&["bench", "quantize", "--size", "4K", "--granularity", "per-galaxy"], "per-galaxy"),
        (&["bench", "quantize", "--size", "4K", "--m", "4"], "belong to qgemm"),
        (&["bench", "qgemm", "--m", "0", "--n", "4", "--k", "4"], "--m 0"),
        (&["bench", "qgemm", "--m", "4", "--n", "4", "--k", "100000000"], "--k 100000000"),
        (&["bench", "qgemm", "--shape", "1,2,3,4,5,6,7"], "belongs to qconv2d"),
        (&["bench", "qconv2d", "--shape", "1,2,3"], "seven dimensions"),
        (&["bench", "qconv2d", "--shape", "1,2,x,4,5,6,7"], "as numbers"),
        (&["bench", "qconv2d", "--shape", "1,0,3,4,5,3,3"], "at least 1"),
        (&["bench", "qconv2d", "--shape", "1,16384,16384,16384,16384,3,3"], "too large"),
        (&["report", "--threads", "0", "--quick", "--no-ort", "--out", "/nonexistent/never"], "--threads 0"),
    ];
    for (args, needle) in cases {
        expect(&run(args), 2, &[needle], &args.join(" "));
    }
}

#[test]
fn a_bogus_quantproof_isa_is_refused_not_ignored() {
    for args in [
        &["bench", "quantize", "--size", "4K", "--reps", "2"][..],
        &["verify-vectors", "../tests/vectors"][..],
        &["report", "--quick", "--no-ort", "--out", "/nonexistent/never"][..],
    ] {
        let o = tool().args(args).env("QUANTPROOF_ISA", "bogus").output().expect("runs");
        expect(&o, 2, &["QUANTPROOF_ISA", "bogus"], &args.join(" "));
    }
    // `info` reports it instead of failing: it is the command that explains the environment.
    let o = tool().arg("info").env("QUANTPROOF_ISA", "bogus").output().expect("runs");
    expect(&o, 0, &["QUANTPROOF_ISA: ignored"], "info");
}

#[test]
fn verify_vectors_never_passes_with_nothing_verified() {
    let d = temp_dir("nothing");
    write(&d, "empty.jsonl", b"");
    expect(&run(&["verify-vectors", d.to_str().unwrap()]), 3, &["nothing was verified"], "an empty file");
    let unknown_op = GOOD.replace(r#""op":"quantize""#, r#""op":"frobnicate""#);
    write(&d, "op.jsonl", unknown_op.as_bytes());
    expect(&run(&["verify-vectors", d.to_str().unwrap()]), 3, &["nothing was verified", "1 skipped"], "unknown op");
    let unknown_profile = GOOD.replace(r#""profile":"onnxruntime""#, r#""profile":"caffe""#);
    write(&d, "op.jsonl", unknown_profile.as_bytes());
    expect(&run(&["verify-vectors", d.to_str().unwrap()]), 3, &["nothing was verified"], "unknown profile");
    let e = temp_dir("no-files");
    expect(&run(&["verify-vectors", e.to_str().unwrap()]), 1, &["no *.jsonl files found"], "no files");
    // The same good case passes.
    write(&d, "op.jsonl", GOOD.as_bytes());
    expect(&run(&["verify-vectors", d.to_str().unwrap()]), 0, &["vectors: 1 passed, 0 failed, 0 skipped"], "good");
}

#[test]
fn malformed_vector_files_fail_with_the_place_and_the_problem() {
    let d = temp_dir("malformed");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not-json", b"{not json\n".to_vec(), "not-json.jsonl:1"),
        ("not-utf8", b"\xff\xfe\x00garbage\n".to_vec(), "UTF-8"),
        ("wrong-format", GOOD.replace("quant-vectors/1", "quant-vectors/9").into_bytes(), "format"),
        (
            "no-outputs",
            GOOD.replace(r#""outputs":{"y":{"dtype":"i8","shape":[3],"data":[0,2,127]}}"#, r#""outputs":{}"#)
                .into_bytes(),
            "output",
        ),
        (
            "shape-vs-data",
            GOOD.replace(r#""shape":[3],"data":[0.25"#, r#""shape":[4],"data":[0.25"#).into_bytes(),
            "shape",
        ),
        ("bad-dtype", GOOD.replace(r#""dtype":"f32""#, r#""dtype":"f128""#).into_bytes(), "f128"),
        ("code-out-of-type", GOOD.replace("[0,2,127]", "[0,2,128]").into_bytes(), "128"),
        (
            "huge-shape",
            GOOD.replace(r#""shape":[3],"data":[0.25"#, r#""shape":[4294967296,4294967296,4294967296],"data":[0.25"#)
                .into_bytes(),
            "shape",
        ),
        ("missing-attr", GOOD.replace(r#""scale":[0.5],"#, "").into_bytes(), "scale"),
        ("nan-scale", GOOD.replace(r#""scale":[0.5]"#, r#""scale":[1e999]"#).into_bytes(), ""),
        ("truncated", GOOD.as_bytes()[..GOOD.len() / 2].to_vec(), "truncated.jsonl:1"),
    ];
    for (name, bytes, needle) in &cases {
        let f = write(&d, &format!("{name}.jsonl"), bytes);
        let o = run(&["verify-vectors", f.to_str().unwrap()]);
        expect(&o, 1, &[needle, "1 failed"], name);
    }
    expect(&run(&["verify-vectors", "/nonexistent/dir"]), 1, &["/nonexistent/dir", "cannot read"], "missing dir");
}

/// `quantproof minilm` without the model, with corrupt files, and (when the model was fetched)
/// the weight oracle's bar: every int8 value of the real model reproduced.
#[test]
fn minilm_check_int8() {
    let empty = temp_dir("minilm-empty");
    let cache = empty.to_str().unwrap();
    expect(&run(&["minilm", "check-int8", "--cache", cache]), 2, &["missing", "quantproof minilm fetch"], "no model");
    let bad = temp_dir("minilm-bad");
    write(&bad, "int8/model.onnx", b"\x0a\xff\xff\xff garbage");
    write(&bad, "fp32/model.safetensors", b"garbage");
    expect(&run(&["minilm", "check-int8", "--cache", bad.to_str().unwrap()]), 2, &["ONNX"], "corrupt model");
    expect(&run(&["minilm", "check-int8", "--cache", cache, "--profile", "nope"]), 2, &["nope"], "bad profile");

    let real = match std::env::var_os("QUANTPROOF_CACHE") {
        Some(d) => PathBuf::from(d).join("minilm"),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/quantproof/minilm"),
            None => PathBuf::from("/nonexistent"),
        },
    };
    if !real.join("int8/model.onnx").is_file() || !real.join("fp32/model.safetensors").is_file() {
        println!("skipping the real-model check: MiniLM not fetched (run quantproof minilm fetch)");
        return;
    }
    let o = run(&["minilm", "check-int8", "--cache", real.to_str().unwrap()]);
    expect(&o, 0, &["matched 22533888 of 22533888 int8 values", "largest scale difference: 0e0"], "real model");
}
