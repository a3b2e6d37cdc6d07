//! Running cases on every path and gathering a [`Summary`].
//!
//! A case runs on the reference and, when its op has an optimized twin, on every [`Engine`] the
//! runner holds (by default one per available ISA). It passes only when every path that ran
//! produced every output the case names, with the expected shape, within the tolerance. It is
//! skipped (never passed) when its profile is unknown, its op is not implemented (for that
//! profile), or the reference reports the variant unsupported. Everything else, a line that is
//! not a valid case included, is a failure.

use super::compare::{compare, Mismatch};
use super::ops::{self, OpError, Path};
use super::parse::{self, Case};
use quantproof_optimized::isa::{self, Isa};
use quantproof_optimized::ops::Engine;
use quantproof_reference::error::QuantError;
use quantproof_reference::profile::Profile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

/// A case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// One path's failure on one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathFailure {
    /// `reference`, an ISA name, or `-` for a case that could not be read.
    pub path: String,
    /// The output concerned, if one.
    pub output: Option<String>,
    pub message: String,
    /// The first few differing elements.
    pub mismatches: Vec<Mismatch>,
}

/// A path that did not run for a case, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotRun {
    pub path: String,
    pub reason: String,
}

/// The result of one case (or of a file that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    pub file: String,
    /// 1-based line number (0 for a whole-file problem).
    pub line: usize,
    pub profile: String,
    pub op: String,
    pub name: String,
    pub status: Status,
    /// The paths that ran and were compared.
    pub paths: Vec<String>,
    /// Optimized paths that did not run although the op has a twin.
    pub not_run: Vec<NotRun>,
    pub skip_reason: Option<String>,
    pub failures: Vec<PathFailure>,
}

impl CaseResult {
    /// `file:line`.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

/// Counts for one profile and op.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpRow {
    pub profile: String,
    pub op: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Every path that ran on at least one of the row's cases (reference first, then ISAs).
    pub paths: Vec<String>,
    /// The op has no optimized twin.
    pub reference_only: bool,
    /// Distinct reasons for the skipped cases.
    pub skip_reasons: Vec<String>,
}

impl OpRow {
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped
    }
}

/// Everything a run found: per-case results, per-(profile, op) rows and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub format: &'static str,
    /// The paths configured: `reference` and one per optimized ISA.
    pub paths: Vec<String>,
    /// The `*.jsonl` files read.
    pub files: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub rows: Vec<OpRow>,
    pub cases: Vec<CaseResult>,
}

impl Summary {
    /// Builds the rows and totals from case results.
    pub fn from_cases(paths: Vec<String>, files: Vec<String>, cases: Vec<CaseResult>) -> Summary {
        let mut rows: BTreeMap<(String, String), OpRow> = BTreeMap::new();
        for c in &cases {
            let row = rows.entry((c.profile.clone(), c.op.clone())).or_insert_with(|| OpRow {
                profile: c.profile.clone(),
                op: c.op.clone(),
                passed: 0,
                failed: 0,
                skipped: 0,
                paths: Vec::new(),
                reference_only: ops::lookup(&c.op).is_some_and(|s| !s.optimized),
                skip_reasons: Vec::new(),
            });
            match c.status {
                Status::Passed => row.passed += 1,
                Status::Failed => row.failed += 1,
                Status::Skipped => row.skipped += 1,
            }
            for p in &c.paths {
                if !row.paths.contains(p) {
                    row.paths.push(p.clone());
                }
            }
            if let Some(r) = &c.skip_reason {
                if !row.skip_reasons.contains(r) {
                    row.skip_reasons.push(r.clone());
                }
            }
        }
        let order = |p: &String| paths.iter().position(|q| q == p).unwrap_or(usize::MAX);
        let mut rows: Vec<OpRow> = rows.into_values().collect();
        for r in &mut rows {
            r.paths.sort_by_key(order);
        }
        let count = |s: Status| cases.iter().filter(|c| c.status == s).count();
        Summary {
            format: parse::FORMAT,
            passed: count(Status::Passed),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            paths,
            files,
            rows,
            cases,
        }
    }

    /// The row for `profile` and `op`.
    pub fn row(&self, profile: &str, op: &str) -> Option<&OpRow> {
        self.rows.iter().find(|r| r.profile == profile && r.op == op)
    }

    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.status == Status::Failed)
    }

    /// `vectors: P passed, F failed, S skipped`.
    pub fn summary_line(&self) -> String {
        format!("vectors: {} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// Runs cases on the reference and on a set of optimized engines.
#[derive(Debug, Clone)]
pub struct Runner {
    engines: Vec<Engine>,
}

impl Runner {
    /// The reference plus every available ISA, or only `isa` when given (an error if this CPU
    /// lacks it).
    pub fn new(isa: Option<Isa>) -> Result<Runner, QuantError> {
        let isas = match isa {
            Some(i) => vec![i],
            None => isa::available(),
        };
        let engines = isas.into_iter().map(Engine::new).collect::<Result<Vec<_>, _>>()?;
        Ok(Runner { engines })
    }

    /// The reference plus exactly these engines.
    pub fn with_engines(engines: Vec<Engine>) -> Runner {
        Runner { engines }
    }

    /// `reference` and the engines' ISA names.
    pub fn path_names(&self) -> Vec<String> {
        std::iter::once(Path::Reference)
            .chain(self.engines.iter().map(|&e| Path::Optimized(e)))
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Reads every `*.jsonl` under each root (recursively; a root may also be a file) and runs
    /// every case. Unreadable roots and files, and roots holding no `*.jsonl`, are failures.
    pub fn run_paths<P: AsRef<FsPath>>(&self, roots: &[P]) -> Summary {
        let mut cases = Vec::new();
        let mut files = Vec::new();
        for root in roots {
            let root = root.as_ref();
            match find_jsonl(root) {
                Ok(found) if found.is_empty() => cases.push(file_failure(root, "no *.jsonl files found".to_string())),
                Ok(found) => {
                    for f in found {
                        self.run_file(&f, &mut cases);
                        files.push(f.display().to_string());
                    }
                }
                Err(e) => cases.push(file_failure(root, e)),
            }
        }
        Summary::from_cases(self.path_names(), files, cases)
    }

    /// Runs every line of one file, appending the results.
    pub fn run_file(&self, file: &FsPath, out: &mut Vec<CaseResult>) {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                out.push(file_failure(file, format!("cannot read: {e}")));
                return;
            }
        };
        let name = file.display().to_string();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            out.push(self.run_line(&name, i + 1, line));
        }
    }

    /// Parses and runs one line of `file`.
    pub fn run_line(&self, file: &str, line: usize, text: &str) -> CaseResult {
        match parse::parse_case(text) {
            Ok(case) => self.run_case(&case, file, line),
            Err(e) => {
                let or_unknown = |s: Option<String>| s.unwrap_or_else(|| "?".to_string());
                let (profile, op, name) =
                    (or_unknown(e.partial.profile), or_unknown(e.partial.op), or_unknown(e.partial.name));
                unreadable(file, line, [profile, op, name], format!("{file}:{line}: {}", e.message))
            }
        }
    }

    /// Runs one case on every path (see the module docs); `file` and `line` locate it.
    pub fn run_case(&self, case: &Case, file: &str, line: usize) -> CaseResult {
        let mut r = CaseResult {
            file: file.to_string(),
            line,
            profile: case.profile.clone(),
            op: case.op.clone(),
            name: case.name.clone(),
            status: Status::Skipped,
            paths: Vec::new(),
            not_run: Vec::new(),
            skip_reason: None,
            failures: Vec::new(),
        };
        let profile = match Profile::by_name(&case.profile) {
            Ok(p) => p,
            Err(_) => {
                r.skip_reason = Some(format!("unknown profile {:?}", case.profile));
                return r;
            }
        };
        let Some(spec) = ops::lookup(&case.op) else {
            r.skip_reason = Some(if ops::FORMAT_OPS.contains(&case.op.as_str()) {
                "op not implemented yet".to_string()
            } else {
                format!("unknown op {:?}", case.op)
            });
            return r;
        };
        if !spec.profiles.contains(&profile.name) {
            r.skip_reason = Some(format!("op not implemented for profile {}", profile.name));
            return r;
        }
        let mut paths = vec![Path::Reference];
        if spec.optimized {
            paths.extend(self.engines.iter().map(|&e| Path::Optimized(e)));
        }
        for path in paths {
            let name = path.name().to_string();
            match (spec.run)(case, &profile, path) {
                Ok(got) => {
                    r.paths.push(name.clone());
                    for (out, expected) in &case.outputs {
                        let failure = match got.get(out) {
                            None => Some((format!("the op produced no output {out:?}"), Vec::new())),
                            Some(g) => {
                                compare(g, expected, case.tolerance.as_ref()).err().map(|f| (f.message, f.mismatches))
                            }
                        };
                        if let Some((message, mismatches)) = failure {
                            r.failures.push(PathFailure {
                                path: name.clone(),
                                output: Some(out.clone()),
                                message,
                                mismatches,
                            });
                        }
                    }
                }
                Err(OpError::Unsupported(reason)) => match path {
                    Path::Reference => {
                        r.skip_reason = Some(reason);
                        return r;
                    }
                    Path::Optimized(_) => r.not_run.push(NotRun { path: name, reason }),
                },
                Err(e) => {
                    r.paths.push(name.clone());
                    let message = match &e {
                        OpError::Malformed(_) => format!("{file}:{line}: {e}"),
                        _ => e.to_string(),
                    };
                    r.failures.push(PathFailure { path: name, output: None, message, mismatches: Vec::new() });
                }
            }
        }
        r.status = if r.failures.is_empty() { Status::Passed } else { Status::Failed };
        r
    }
}

fn file_failure(path: &FsPath, message: String) -> CaseResult {
    let file = path.display().to_string();
    let message = format!("{file}: {message}");
    unreadable(&file, 0, ["-".to_string(), "-".to_string(), file.clone()], message)
}

/// The failed result of a line (or, at line 0, a file) that could not be read as a case:
/// `[profile, op, name]` as far as they were read, and why.
fn unreadable(file: &str, line: usize, [profile, op, name]: [String; 3], message: String) -> CaseResult {
    CaseResult {
        file: file.to_string(),
        line,
        profile,
        op,
        name,
        status: Status::Failed,
        paths: Vec::new(),
        not_run: Vec::new(),
        skip_reason: None,
        failures: vec![PathFailure { path: "-".to_string(), output: None, message, mismatches: Vec::new() }],
    }
}

/// Every `*.jsonl` file under `root` (recursively, sorted), or `root` itself when it is a file.
pub fn find_jsonl(root: &FsPath) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(root).map_err(|e| format!("cannot read: {e}"))?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    walk(root, 0, &mut found)?;
    found.sort();
    Ok(found)
}

/// Deep enough for any sane tree; stops symlink cycles.
const MAX_DEPTH: usize = 32;

fn walk(dir: &FsPath, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{}: directories nested deeper than {MAX_DEPTH}", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?.path();
        let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            walk(&path, depth + 1, found)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            found.push(path);
        }
    }
    Ok(())
}

/// The case counts the `*-meta.json` files directly in `dir` announce (`"counts"`: `{"profile/op":
/// n}`), merged. The recorders of the golden vectors write them; tests use them to check that
/// every recorded case ran.
pub fn meta_counts(dir: &FsPath) -> Result<BTreeMap<String, usize>, String> {
    let mut counts = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut metas: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("-meta.json")))
        .collect();
    metas.sort();
    for m in metas {
        let text = std::fs::read_to_string(&m).map_err(|e| format!("cannot read {}: {e}", m.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", m.display()))?;
        let Some(obj) = v.get("counts").and_then(|c| c.as_object()) else {
            return Err(format!("{}: no \"counts\" object", m.display()));
        };
        for (k, n) in obj {
            let n = n.as_u64().ok_or_else(|| format!("{}: counts.{k} is not a count", m.display()))?;
            *counts.entry(k.clone()).or_insert(0) += n as usize;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> Runner {
        Runner::new(None).unwrap()
    }

    const QUANT: &str = r#"{"format": "quant-vectors/1", "profile": "onnxruntime", "op": "quantize", "name": "q",
        "attrs": {"scale": [0.5], "zero_point": [3], "axis": null, "dtype": "i8", "qmin": -128, "qmax": 127},
        "inputs": {"x": {"dtype": "f32", "shape": [3], "data": [0.25, 0.75, 100.0]}},
        "outputs": {"y": {"dtype": "i8", "shape": [3], "data": [3, 5, 127]}}}"#;

    #[test]
    fn a_passing_case_runs_every_path() {
        let r = runner().run_line("f", 1, QUANT);
        assert_eq!(r.status, Status::Passed, "{r:?}");
        assert_eq!(r.paths, runner().path_names());
    }

    #[test]
    fn a_wrong_expectation_fails_on_every_path() {
        let r = runner().run_line("f", 7, &QUANT.replace("[3, 5, 127]", "[3, 4, 127]"));
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.failures.len(), runner().path_names().len());
        assert_eq!(r.failures[0].mismatches, vec![Mismatch { index: 1, got: 5.0, expected: 4.0 }]);
    }

    #[test]
    fn skips_are_not_passes() {
        let skip = |text: &str| {
            let r = runner().run_line("f", 1, text);
            assert_eq!(r.status, Status::Skipped, "{r:?}");
            r.skip_reason.unwrap()
        };
        assert_eq!(skip(&QUANT.replace("onnxruntime", "tensorrt")), "unknown profile \"tensorrt\"");
        // An op of the format that no registry entry implements (if one is left).
        if let Some(op) = ops::FORMAT_OPS.iter().find(|op| ops::lookup(op).is_none()) {
            assert_eq!(skip(&QUANT.replace("\"quantize\"", &format!("\"{op}\""))), "op not implemented yet");
        }
        assert!(skip(&QUANT.replace("\"quantize\"", "\"frobnicate\"")).starts_with("unknown op"));
        assert!(skip(&QUANT.replace("\"quantize\"", "\"fake_quantize\"")).contains("profile onnxruntime"));
    }

    #[test]
    fn malformed_cases_fail_with_their_location() {
        for bad in [
            "{".to_string(),
            QUANT.replace(r#""scale": [0.5], "#, ""),
            QUANT.replace(r#""axis": null"#, r#""axis": 1"#),
            QUANT.replace(r#""zero_point": [3]"#, r#""zero_point": [3, 4]"#),
            QUANT.replace(r#""qmax": 127"#, r#""qmax": 300"#),
            QUANT.replace(r#""dtype": "f32""#, r#""dtype": "f64""#),
        ] {
            let r = runner().run_line("dir/q.jsonl", 12, &bad);
            assert_eq!(r.status, Status::Failed, "{bad}");
            assert!(!r.failures.is_empty());
        }
        let r = runner().run_line("dir/q.jsonl", 12, "{");
        assert!(r.failures[0].message.starts_with("dir/q.jsonl:12: invalid JSON"));
    }

    #[test]
    fn no_line_makes_the_runner_panic() {
        let r = runner();
        for cut in (0..QUANT.len()).filter(|&c| QUANT.is_char_boundary(c)) {
            assert_eq!(r.run_line("f", 1, &QUANT[..cut]).status, Status::Failed);
        }
        let edits: &[(&str, &str)] = &[
            ("[0.5]", "[0]"),
            ("[0.5]", "[-1]"),
            ("[0.5]", "[1e-45]"),
            ("[0.5]", "[3e38]"),
            ("[0.5]", "[1e39]"),
            ("[0.5]", "[]"),
            ("[3]", "[2147483648]"),
            ("[3]", "[-200]"),
            ("null", "-5"),
            ("null", "0"),
            ("null", "\"a\""),
            ("\"i8\"", "\"i16\""),
            ("\"i8\"", "\"u4\""),
            ("\"i8\"", "\"f32\""),
            ("\"qmin\": -128", "\"qmin\": 200"),
            ("\"qmin\": -128", "\"qmin\": -4000000000"),
            ("\"shape\": [3]", "\"shape\": [3, 0]"),
            ("\"dtype\": \"f32\"", "\"dtype\": \"u8\""),
            ("[0.25, 0.75, 100.0]", "[0.25, 3e38, -3e38]"),
            ("\"x\"", "\"rmin\""),
        ];
        for op in ["quantize", "dequantize", "fake_quantize", "dynamic_quantize", "choose_qparams"] {
            let base = QUANT.replace("\"quantize\"", &format!("\"{op}\""));
            for profile in ["torch", "onnxruntime", "quantproof"] {
                let base = base.replace("onnxruntime", profile);
                for (from, to) in edits {
                    let _ = r.run_line("f", 1, &base.replace(from, to));
                }
            }
        }
    }

    #[test]
    fn missing_roots_fail() {
        let s = runner().run_paths(&["/nonexistent/quantproof-vectors"]);
        assert_eq!(s.failed, 1);
        assert_eq!(s.passed + s.skipped, 0);
    }
}
