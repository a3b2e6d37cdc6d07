//! `quantproof check-overflow`: which integer-GEMM formulations compute the exact int32
//! accumulator for given operand types, value ranges, zero points and depth `K`
//! ([`quantproof_reference::overflow`]).
//!
//! ```text
//! quantproof check-overflow --a u8 --b s8 --k 4096 [--a-range 0,127] [--b-range -127,127]
//!                           [--a-zero-point 128] [--b-zero-point 0] [--k 65536 ...]
//! ```

use quantproof_reference::error::QuantError;
use quantproof_reference::overflow::{self, OperandSpec};
use quantproof_reference::scheme::{CodeRange, QType};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Type of the activations A: u8, s8 (i8), or any code type the reference knows (u16, i4, ...).
    #[arg(long, default_value = "u8")]
    pub a: String,
    /// Type of the weights B.
    #[arg(long, default_value = "s8")]
    pub b: String,
    /// The depth K (repeat for several: --k 64 --k 4096).
    #[arg(long, required = true, num_args = 1..)]
    pub k: Vec<u64>,
    /// The values A actually takes, `lo,hi` (default: the type's full range).
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
    pub a_range: Option<String>,
    /// The values B actually takes, `lo,hi`.
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
    pub b_range: Option<String>,
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub a_zero_point: i32,
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub b_zero_point: i32,
}

/// `s8` is accepted for `i8` (x86's and ARM's name for it).
fn parse_type(s: &str) -> Result<QType, QuantError> {
    let t = s.trim().to_ascii_lowercase();
    match t.strip_prefix('s') {
        Some(bits) if bits.chars().all(|c| c.is_ascii_digit()) && !bits.is_empty() => QType::parse(&format!("i{bits}")),
        _ => QType::parse(&t),
    }
}

fn parse_range(s: &str) -> Result<CodeRange, QuantError> {
    let bad = || QuantError::InvalidArgument { what: "range", detail: format!("{s:?}: expected LO,HI") };
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: i32 = lo.trim().parse().map_err(|_| bad())?;
    let hi: i32 = hi.trim().parse().map_err(|_| bad())?;
    CodeRange::new(lo, hi)
}

fn spec(t: &str, range: &Option<String>, zero_point: i32) -> Result<OperandSpec, QuantError> {
    let q = parse_type(t)?;
    let mut s = OperandSpec::full(q).with_zero_point(zero_point);
    if let Some(r) = range {
        s = s.with_range(parse_range(r)?);
    }
    Ok(s)
}

/// The tables `check-overflow` prints, one per `K`.
pub fn render(args: &Args) -> Result<String, QuantError> {
    let a = spec(&args.a, &args.a_range, args.a_zero_point)?;
    let b = spec(&args.b, &args.b_range, args.b_zero_point)?;
    let mut out = String::new();
    for (i, &k) in args.k.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&overflow::check(&a, &b, k)?.render());
    }
    Ok(out)
}

pub fn run(args: Args) -> i32 {
    match render(&args) {
        Ok(s) => {
            print!("{s}");
            0
        }
        Err(e) => {
            eprintln!("check-overflow: {e}");
            2
        }
    }
}
