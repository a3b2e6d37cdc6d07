//! NEON calibration kernels: `abs_min`, the histogram, numpy's pairwise sum and the KL terms.
//! Same algorithms as the x86-64 kernels (see `crate::arch::x86_64::avx512` for the histogram's
//! interleaving and `crate::arch::ln` for the certified logarithm), on 4 float32 / 2 float64
//! lanes. NEON has no gather: the logarithm's two table lookups per vector are plain loads.
//!
//! Every function is an `unsafe fn` with `#[target_feature(enable = "neon")]`: its only
//! precondition is that NEON is present, which the `Neon` token proves at every call site.

use crate::arch::generic;
use crate::arch::ln;
use crate::kernels::{kl_term, HistBins, LN_GUARD_ULPS};
use core::arch::aarch64::*;

#[target_feature(enable = "neon")]
pub unsafe fn abs_min(x: &[f32]) -> (f32, bool) {
    let (v, tail) = x.as_chunks::<4>();
    let mut m = vdupq_n_f32(f32::INFINITY);
    let mut ok = vdupq_n_u32(u32::MAX);
    for c in v {
        // SAFETY: `c` is 4 readable f32.
        let x = unsafe { vld1q_f32(c.as_ptr()) };
        let num = vceqq_f32(x, x);
        ok = vandq_u32(ok, num);
        // NaN lanes (quiet or signalling) become +inf, the identity of min.
        m = vminq_f32(m, vbslq_f32(num, vabsq_f32(x), vdupq_n_f32(f32::INFINITY)));
    }
    let (tm, tnan) = generic::abs_min(tail);
    (vminvq_f32(m).min(tm), vminvq_u32(ok) == 0 || tnan)
}

struct BinConsts {
    first: float32x4_t,
    last: float32x4_t,
    width: float32x4_t,
    nf: float32x4_t,
    step: float32x4_t,
    nm1: uint32x4_t,
    none: uint32x4_t,
}

/// `HistBins::index` of 4 lanes (the AVX-512 kernel's `bin16`, with all-ones comparison lanes:
/// `i + down` steps down, `i - up` steps up).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn bin4(x: float32x4_t, c: &BinConsts) -> uint32x4_t {
    let inside = vandq_u32(vcgeq_f32(x, c.first), vcleq_f32(x, c.last));
    let f = vmulq_f32(vdivq_f32(vsubq_f32(x, c.first), c.width), c.nf);
    let i = vminq_u32(vreinterpretq_u32_s32(vcvtq_s32_f32(f)), c.nm1);
    let fi = vcvtq_f32_u32(i);
    let below = vaddq_f32(vmulq_f32(fi, c.step), c.first);
    let above = vaddq_f32(vmulq_f32(vaddq_f32(fi, vdupq_n_f32(1.0)), c.step), c.first);
    let down = vcltq_f32(x, below);
    let up = vbicq_u32(vcgeq_f32(x, above), vorrq_u32(down, vceqq_u32(i, c.nm1)));
    let i = vsubq_u32(vaddq_u32(i, down), up);
    vminq_u32(vbslq_u32(inside, i, c.none), c.none)
}

/// The histogram (see `Kernels::histogram`), binning one block while counting the previous one.
#[target_feature(enable = "neon")]
pub unsafe fn histogram<const ABS: bool>(x: &[f32], b: &HistBins, sub: &mut [u32]) {
    let c = BinConsts {
        first: vdupq_n_f32(b.first),
        last: vdupq_n_f32(b.last),
        width: vdupq_n_f32(b.last - b.first),
        nf: vdupq_n_f32(b.n as f32),
        step: vdupq_n_f32(b.step),
        nm1: vdupq_n_u32(b.n - 1),
        none: vdupq_n_u32(b.n),
    };
    let mut s = generic::split_sub(sub, b.n as usize + 1);
    let load = |p: &[f32; 4]| {
        // SAFETY: `p` is 4 readable f32.
        let v = unsafe { vld1q_f32(p.as_ptr()) };
        if ABS {
            vabsq_f32(v)
        } else {
            v
        }
    };
    let tail = generic::histogram_blocks::<4>(x, b.n, &mut s, |xv, nv| {
        // SAFETY: NEON is present (this function's precondition); `nv` is 4 writable u32.
        unsafe { vst1q_u32(nv.as_mut_ptr(), bin4(load(xv), &c)) };
    });
    let (xv, xt) = tail.as_chunks::<4>();
    let mut idx = [0u32; 4];
    for v in xv {
        // SAFETY: as above; `idx` is 4 writable u32.
        unsafe { vst1q_u32(idx.as_mut_ptr(), bin4(load(v), &c)) };
        generic::count_indices(&idx, &mut s);
    }
    let t: Vec<u32> = xt.iter().map(|&v| b.index(if ABS { v.abs() } else { v })).collect();
    generic::count_indices(&t, &mut s);
}

/// numpy's 8..=128-element leaf: accumulators `r0..r3` and `r4..r7` in two registers; `faddp`
/// twice gives `(r0+r1)+(r2+r3)` and `(r4+r5)+(r6+r7)`.
#[target_feature(enable = "neon")]
pub unsafe fn pairwise_leaf(a: &[f32]) -> f32 {
    let (v, rest) = a.as_chunks::<8>();
    // SAFETY (every load): each `[f32; 8]` is 8 readable f32.
    let (mut lo, mut hi) = unsafe { (vld1q_f32(v[0].as_ptr()), vld1q_f32(v[0].as_ptr().add(4))) };
    for c in &v[1..] {
        // SAFETY: `c` is 8 readable f32.
        unsafe {
            lo = vaddq_f32(lo, vld1q_f32(c.as_ptr()));
            hi = vaddq_f32(hi, vld1q_f32(c.as_ptr().add(4)));
        }
    }
    let h = vpaddq_f32(lo, hi);
    let h = vpaddq_f32(h, h);
    let mut res = vgetq_lane_f32::<0>(h) + vgetq_lane_f32::<1>(h);
    for &t in rest {
        res += t;
    }
    res
}

/// The float64 logarithm of 2 lanes (`crate::arch::ln`) and the lanes safe to round (all-ones).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn ln2(x: float64x2_t, t: &ln::Table) -> (float64x2_t, uint64x2_t) {
    let u = vreinterpretq_u64_f64(x);
    let tmp = vsubq_u64(u, vdupq_n_u64(ln::OFF));
    let i = vandq_u64(vshrq_n_u64::<{ 52 - ln::WIDE.bits as i32 }>(tmp), vdupq_n_u64(127));
    let k = vcvtq_f64_s64(vshrq_n_s64::<52>(vreinterpretq_s64_u64(tmp)));
    let z = vreinterpretq_f64_u64(vsubq_u64(u, vandq_u64(tmp, vdupq_n_u64(0xfff << 52))));
    let (i0, i1) = (vgetq_lane_u64::<0>(i) as usize, vgetq_lane_u64::<1>(i) as usize);
    // Indices are below 128 (masked): the lookups are in bounds.
    let invc = [t.invc[i0], t.invc[i1]];
    let logc = [t.logc[i0], t.logc[i1]];
    // SAFETY (both loads): 2 readable f64.
    let (invc, logc) = unsafe { (vld1q_f64(invc.as_ptr()), vld1q_f64(logc.as_ptr())) };
    let r = vfmaq_f64(vdupq_n_f64(-1.0), z, invc);
    let hi = vfmaq_f64(logc, k, vdupq_n_f64(ln::LN2));
    let mut p = vdupq_n_f64(ln::WIDE.coeffs[5]);
    for &c in ln::WIDE.coeffs[..5].iter().rev() {
        p = vfmaq_f64(vdupq_n_f64(c), p, r);
    }
    let y = vaddq_f64(hi, vfmaq_f64(r, vmulq_f64(r, r), p));
    let low = vandq_u64(vreinterpretq_u64_f64(y), vdupq_n_u64((1 << 29) - 1));
    let d = vsubq_u64(low, vdupq_n_u64((1 << 28) - LN_GUARD_ULPS));
    (y, vcgtq_u64(d, vdupq_n_u64(2 * LN_GUARD_ULPS)))
}

/// `kl_term` of 4 lanes and the lanes to recompute with the reference's expression.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn kl4(
    p: float32x4_t,
    q: float32x4_t,
    sp: float32x4_t,
    sq: float32x4_t,
    t: &ln::Table,
) -> (float32x4_t, uint32x4_t) {
    let pk = vdivq_f32(p, sp);
    let qk = vdivq_f32(q, sq);
    let zero = vdupq_n_f32(0.0);
    let valid = vandq_u32(vcgtq_f32(pk, zero), vcgtq_f32(qk, zero));
    let a = vdivq_f32(pk, qk);
    let normal = vandq_u32(vcgtq_f32(a, zero), vcltq_f32(a, vdupq_n_f32(f32::INFINITY)));
    // SAFETY: NEON is present (this function's precondition).
    let (ylo, slo) = unsafe { ln2(vcvt_f64_f32(vget_low_f32(a)), t) };
    // SAFETY: as above.
    let (yhi, shi) = unsafe { ln2(vcvt_high_f64_f32(a), t) };
    let y = vcvt_high_f32_f64(vcvt_f32_f64(ylo), yhi);
    let safe = vcombine_u32(vmovn_u64(slo), vmovn_u64(shi));
    let term = vbslq_f32(valid, vmulq_f32(pk, y), vdupq_n_f32(f32::INFINITY));
    (term, vbicq_u32(valid, vandq_u32(normal, safe)))
}

#[target_feature(enable = "neon")]
pub unsafe fn kl_terms(p: &[f32], q: &[f32], sp: f32, sq: f32, out: &mut [f32]) {
    assert!(p.len() == q.len() && p.len() == out.len(), "kl_terms: slices of one length");
    let t = ln::table(&ln::WIDE);
    let (spv, sqv) = (vdupq_n_f32(sp), vdupq_n_f32(sq));
    let (pv, pt) = p.as_chunks::<4>();
    let (qv, qt) = q.as_chunks::<4>();
    let (ov, ot) = out.as_chunks_mut::<4>();
    for ((pc, qc), oc) in pv.iter().zip(qv).zip(ov) {
        // SAFETY: NEON is present; `pc`, `qc` are 4 readable and `oc` 4 writable f32.
        let (term, redo) = unsafe { kl4(vld1q_f32(pc.as_ptr()), vld1q_f32(qc.as_ptr()), spv, sqv, t) };
        let mut r = [0u32; 4];
        // SAFETY: `oc` is 4 writable f32 and `r` 4 writable u32.
        unsafe {
            vst1q_f32(oc.as_mut_ptr(), term);
            vst1q_u32(r.as_mut_ptr(), redo);
        }
        for j in 0..4 {
            if r[j] != 0 {
                oc[j] = kl_term(pc[j], qc[j], sp, sq);
            }
        }
    }
    generic::kl_terms(pt, qt, sp, sq, ot);
}
