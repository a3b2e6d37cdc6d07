//! The text report: a table by profile and op, optionally every case, then each failure in
//! detail, and last the line `vectors: P passed, F failed, S skipped`.

use super::runner::{CaseResult, Status, Summary};
use std::fmt::Write;

/// Renders `summary` (with every case listed when `verbose`).
pub fn render(summary: &Summary, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "golden vectors ({}): {} files, paths: {}",
        summary.format,
        summary.files.len(),
        summary.paths.join(", ")
    );
    let _ = writeln!(s);
    s.push_str(&render_table(summary));
    if verbose {
        let _ = writeln!(s, "\ncases:");
        for c in &summary.cases {
            let _ = writeln!(s, "  {}", case_line(c));
        }
    }
    let failures: Vec<&CaseResult> = summary.failures().collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nfailures:");
        for c in failures {
            s.push_str(&render_failure(c));
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", summary.summary_line());
    s
}

/// The table alone.
pub fn render_table(summary: &Summary) -> String {
    let header = ["profile", "op", "passed", "failed", "skipped", "paths"];
    let mut rows: Vec<[String; 6]> = summary
        .rows
        .iter()
        .map(|r| {
            let paths = if r.total() == r.skipped {
                format!("skipped: {}", r.skip_reasons.join("; "))
            } else if r.reference_only {
                "reference only".to_string()
            } else {
                let mut p = r.paths.join(", ");
                if r.skipped > 0 {
                    let _ = write!(p, " ({} skipped: {})", r.skipped, r.skip_reasons.join("; "));
                }
                p
            };
            [r.profile.clone(), r.op.clone(), r.passed.to_string(), r.failed.to_string(), r.skipped.to_string(), paths]
        })
        .collect();
    rows.push([
        "total".to_string(),
        String::new(),
        summary.passed.to_string(),
        summary.failed.to_string(),
        summary.skipped.to_string(),
        String::new(),
    ]);
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut s = String::new();
    let mut line = |cells: [&str; 6]| {
        let _ = writeln!(
            s,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        );
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    // Trailing spaces of short last columns are noise.
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Skipped => "SKIP",
    }
}

/// One line per case for `--verbose`.
pub fn case_line(c: &CaseResult) -> String {
    let mut s = format!("{} {}/{} {} ({})", status_word(c.status), c.profile, c.op, c.name, c.location());
    match c.status {
        Status::Skipped => {
            let _ = write!(s, ": {}", c.skip_reason.as_deref().unwrap_or("skipped"));
        }
        _ => {
            let _ = write!(s, " [{}]", c.paths.join(", "));
        }
    }
    for n in &c.not_run {
        let _ = write!(s, " ({} not run: {})", n.path, n.reason);
    }
    s
}

/// The details of one failed case.
pub fn render_failure(c: &CaseResult) -> String {
    let mut s = format!("FAIL {}/{} {} ({})\n", c.profile, c.op, c.name, c.location());
    for f in &c.failures {
        let what = match &f.output {
            Some(o) => format!("path {}, output {o}", f.path),
            None if f.path == "-" => String::new(),
            None => format!("path {}", f.path),
        };
        if what.is_empty() {
            let _ = writeln!(s, "  {}", f.message);
        } else {
            let _ = writeln!(s, "  {what}: {}", f.message);
        }
        for m in &f.mismatches {
            let _ = writeln!(s, "    [{}] got {} expected {}", m.index, short(m.got), short(m.expected));
        }
    }
    s
}

/// A value in its shortest form: as f32 when it is exactly one (every value of an f32 or small
/// integer tensor), else as f64.
fn short(v: f64) -> String {
    let f = v as f32;
    if f as f64 == v {
        format!("{f}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::runner::Runner;
    use super::*;

    #[test]
    fn report_ends_with_the_summary_line() {
        let runner = Runner::with_engines(Vec::new());
        let line = r#"{"format": "quant-vectors/1", "profile": "torch", "op": "dequantize", "name": "d",
            "attrs": {"scale": [0.5], "zero_point": [1], "axis": null, "dtype": "u8", "qmin": 0, "qmax": 255},
            "inputs": {"x": {"dtype": "u8", "shape": [2], "data": [1, 4]}},
            "outputs": {"y": {"dtype": "f32", "shape": [2], "data": [0.0, 1.25]}}}"#;
        let cases = vec![runner.run_line("a.jsonl", 1, line), runner.run_line("a.jsonl", 2, "nope")];
        let summary = Summary::from_cases(runner.path_names(), vec!["a.jsonl".into()], cases);
        let text = render(&summary, true);
        assert!(text.ends_with("vectors: 0 passed, 2 failed, 0 skipped\n"), "{text}");
        assert!(text.contains("path reference, output y: 1 of 2 elements fail exact equality"), "{text}");
        assert!(text.contains("[1] got 1.5 expected 1.25"), "{text}");
        assert!(text.contains("a.jsonl:2: invalid JSON"), "{text}");
        assert_eq!(short(0.1f32 as f64), "0.1");
        assert_eq!(short(0.1), "0.1");
        assert_eq!(short(-128.0), "-128");
    }
}
