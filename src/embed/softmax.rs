//! Softmax and exp for attention on the CPU: reductions in independent lanes
//! (`simd::fold_by`) and an exp that vectorises (libm's `expf` per value was a tenth of the int8
//! encoder's time), 16 wide when called from a `simd::wide!` function on a CPU with AVX-512.

use super::simd::{Isa, ROUNDER, fold_by, sum_by};

/// Softmax of `o` in place (16 wide inside a `simd::wide!` function).
#[inline(always)]
pub fn softmax_in_place<M: Isa>(o: &mut [f32]) {
    let max = fold_by(
        o,
        f32::NEG_INFINITY,
        |x| x,
        |m, x| if x > m { x } else { m },
    );
    for o in o.iter_mut() {
        *o = exp::<M>(*o - max);
    }
    let inv = 1.0 / sum_by(o, |x| x);
    for o in o.iter_mut() {
        *o *= inv;
    }
}

/// eˣ for x ≤ 0 within 3e-7 relative (2ⁿ·p(r), r = x − n·ln 2, |r| ≤ ½ ln 2, a degree-6
/// polynomial); 0 below −87 (the masked positions). Branch-free, so it vectorises.
#[inline(always)]
pub fn exp<M: Isa>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x > -87.0 { x } else { -87.0 };
    // n = round(x·log₂e), and 2ⁿ built from t's bits with an integer add and a shift.
    let t = x * LOG2E + ROUNDER;
    let n = t - ROUNDER;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    let mut p = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = M::mul_add(p, r, c);
    }
    let biased = t
        .to_bits()
        .wrapping_sub(ROUNDER.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(biased << 23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::simd::{Fused, Separate};

    /// The largest relative error of `exp::<M>` against f64 over [−87, 0].
    fn worst<M: Isa>() -> f64 {
        (0..=870_000)
            .map(|i| {
                let x = -(i as f32) / 10_000.0;
                let want = f64::from(x).exp();
                ((f64::from(exp::<M>(x)) - want) / want).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_3e7_of_libm_where_attention_uses_it() {
        for worst in [worst::<Separate>(), worst::<Fused<16>>()] {
            assert!(worst < 3e-7, "max relative error {worst}");
        }
        assert!(exp::<Separate>(-1e4) < 1e-37);
    }

    #[test]
    fn rows_sum_to_one_and_masked_positions_get_nothing() {
        // The last position carries the padding bias the encoder adds.
        let mut o = [0.5, -1.0, 2.0, 3.0 - 1e4];
        softmax_in_place::<Separate>(&mut o);
        let e: Vec<f64> = [0.5f64, -1.0, 2.0].iter().map(|v| v.exp()).collect();
        let sum: f64 = e.iter().sum();
        for (got, want) in o.iter().zip(e.iter().map(|v| v / sum)) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{o:?}");
        }
        assert!(o[3] < 1e-30);
    }
}
