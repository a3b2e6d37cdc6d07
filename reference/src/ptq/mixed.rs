//! Mixed precision: which layers can take fewer bits (seed 002: "different layers are not equally
//! sensitive to quantization").
//!
//! 1. **Sensitivity** ([`sensitivity`]): quantize one layer at a time to each candidate width
//!    (2/4/8/16 bits), everything else in full precision, and measure the model's output error
//!    (any error measure the caller's evaluation returns: MSE, `1 - cosine`, a loss).
//! 2. **Allocation** ([`pareto`], [`allocate`]): assuming the errors of different layers add up
//!    (the usual first-order approximation), choose one width per layer to minimize the summed
//!    error under a size budget. That is a multiple-choice knapsack; it is solved exactly by
//!    merging Pareto sets layer by layer: after each layer, keep only the (size, error) points
//!    that no other point beats on both. The final set is the accuracy-size Pareto curve; the
//!    best allocation under a budget is its last point that fits.

use crate::error::{QuantError, Result};

/// One layer's candidates: its parameter count and the error measured at each width.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSensitivity {
    pub name: String,
    pub params: u64,
    /// `(bits, error)` pairs, one per candidate width.
    pub errors: Vec<(u32, f64)>,
}

/// One point of the Pareto curve: a width per layer, the model's weight size in bits and the
/// summed error.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub bits: Vec<u32>,
    pub size_bits: u64,
    pub error: f64,
}

/// The most Pareto points kept after any layer (far above what real models reach: the sizes are
/// sums of a few widths times a few parameter counts).
pub const MAX_PARETO_POINTS: usize = 1 << 20;

/// Measures every layer at every width with `eval(layer, bits) -> error` (the model with only
/// `layer` quantized to `bits`).
pub fn sensitivity(
    names: &[String],
    params: &[u64],
    widths: &[u32],
    mut eval: impl FnMut(usize, u32) -> Result<f64>,
) -> Result<Vec<LayerSensitivity>> {
    crate::error::check_len("params", names.len(), params.len())?;
    let mut out = Vec::with_capacity(names.len());
    for (l, name) in names.iter().enumerate() {
        let mut errors = Vec::with_capacity(widths.len());
        for &b in widths {
            let e = eval(l, b)?;
            if !(e.is_finite() && e >= 0.0) {
                return Err(QuantError::OutOfDomain { what: "measured error", value: e, domain: "finite and >= 0" });
            }
            errors.push((b, e));
        }
        out.push(LayerSensitivity { name: name.clone(), params: params[l], errors });
    }
    Ok(out)
}

/// The exact accuracy-size Pareto curve of every allocation, smallest size first (the error
/// strictly decreases along it).
pub fn pareto(layers: &[LayerSensitivity]) -> Result<Vec<Allocation>> {
    if layers.is_empty() {
        return Err(QuantError::EmptyInput { what: "layers" });
    }
    let mut front = vec![Allocation { bits: Vec::new(), size_bits: 0, error: 0.0 }];
    for l in layers {
        if l.errors.is_empty() {
            return Err(QuantError::EmptyInput { what: "a layer's candidate widths" });
        }
        let mut next = Vec::with_capacity(front.len() * l.errors.len());
        for a in &front {
            for &(b, e) in &l.errors {
                if !(e.is_finite() && e >= 0.0) {
                    return Err(QuantError::OutOfDomain { what: "error", value: e, domain: "finite and >= 0" });
                }
                let size =
                    l.params.checked_mul(b as u64).and_then(|s| s.checked_add(a.size_bits)).ok_or(
                        QuantError::Overflow { what: "model size in bits", detail: format!("layer {}", l.name) },
                    )?;
                let mut bits = a.bits.clone();
                bits.push(b);
                next.push(Allocation { bits, size_bits: size, error: a.error + e });
            }
        }
        next.sort_by(|x, y| x.size_bits.cmp(&y.size_bits).then(x.error.total_cmp(&y.error)));
        front = Vec::new();
        for a in next {
            if front.last().is_none_or(|f: &Allocation| a.error < f.error) {
                front.push(a);
            }
        }
        if front.len() > MAX_PARETO_POINTS {
            return Err(QuantError::TooLarge {
                what: "Pareto points",
                value: front.len() as u128,
                limit: MAX_PARETO_POINTS as u128,
            });
        }
    }
    Ok(front)
}

/// The allocation with the least summed error whose size is at most `budget_bits`; an error when
/// even the smallest allocation does not fit.
pub fn allocate(layers: &[LayerSensitivity], budget_bits: u64) -> Result<Allocation> {
    let front = pareto(layers)?;
    let smallest = front[0].size_bits;
    front.into_iter().take_while(|a| a.size_bits <= budget_bits).last().ok_or(QuantError::InvalidArgument {
        what: "budget",
        detail: format!("{budget_bits} bits is below the smallest allocation ({smallest} bits)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, params: u64, e: &[(u32, f64)]) -> LayerSensitivity {
        LayerSensitivity { name: name.into(), params, errors: e.to_vec() }
    }

    #[test]
    fn the_sensitive_layer_keeps_its_bits() {
        let layers = [layer("a", 100, &[(4, 10.0), (8, 0.1)]), layer("b", 100, &[(4, 0.2), (8, 0.1)])];
        // Budget of 1200 bits: one layer at 8, one at 4. Uniform 4 bits costs 10.2, the allocator
        // gives `a` 8 bits: 0.3.
        let a = allocate(&layers, 1200).unwrap();
        assert_eq!(a.bits, vec![8, 4]);
        assert!((a.error - 0.3).abs() < 1e-12);
        assert!(allocate(&layers, 799).is_err());
        let p = pareto(&layers).unwrap();
        assert_eq!(p.iter().map(|a| a.size_bits).collect::<Vec<_>>(), vec![800, 1200, 1600]);
    }
}
