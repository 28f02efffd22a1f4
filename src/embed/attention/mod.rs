//! Self-attention on the CPU in one pass per sequence and head: scores, the padding mask,
//! softmax and the weighted sum of values, read straight from the fused QKV product and written
//! straight into the context rows. Compared with candle's path (permuted copies of Q, K and V,
//! one threaded matmul per head, a softmax tensor, a transposed copy back), nothing is copied
//! but one head's keys and values, and padding positions are skipped.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape};
use rayon::prelude::*;

use super::cpu::f32_values;
use super::simd::Isa;
use super::softmax::softmax_in_place;

#[cfg(target_arch = "x86_64")]
mod bf16;

/// Query rows per register tile.
const ROWS: usize = 4;
/// Keys per vector of scores.
const LANES: usize = 16;
/// Below this bias a key position is padding (the mask adds −10⁴ there).
const MASKED: f32 = -1e3;

/// Attention over `qkv` `[batch, t, 3·hidden]` (queries, keys, values, each `heads × head_dim`)
/// with the additive padding bias `[batch, t]` (0 for tokens, −10⁴ for padding); the context
/// `[batch, t, hidden]`. Padding is taken to trail the tokens, as the encoder pads; padding
/// rows of the context are zero.
#[derive(Debug, Clone, Copy)]
pub struct Attention {
    pub heads: usize,
    /// Products in bf16 (see `bf16.rs`).
    bf16: bool,
}

impl Attention {
    /// Attention over `heads` heads; with `low_precision`, its products in bf16 where the CPU
    /// has AVX-512 BF16 (else f32, as without).
    pub fn new(heads: usize, low_precision: bool) -> Self {
        #[cfg(target_arch = "x86_64")]
        let bf16 = low_precision && bf16::available();
        #[cfg(not(target_arch = "x86_64"))]
        let bf16 = false;
        Self { heads, bf16 }
    }

    /// Whether this op handles heads of `head_dim` (the sizes BERT models use).
    pub fn supports(head_dim: usize) -> bool {
        matches!(head_dim, 32 | 64)
    }
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        qkv: &CpuStorage,
        ql: &Layout,
        bias: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (qkv, bias) = (
            f32_values(qkv, ql, "attention")?,
            f32_values(bias, bl, "attention")?,
        );
        let (batch, t, width) = ql.shape().dims3()?;
        let hidden = width / 3;
        let dh = hidden / self.heads;
        if width != 3 * hidden || bl.shape().elem_count() != batch * t || !Self::supports(dh) {
            candle_core::bail!("attention: qkv {:?}, bias {:?}", ql.shape(), bl.shape());
        }
        let mut out = vec![0f32; batch * t * hidden];
        out.par_chunks_mut(t * hidden)
            .zip(qkv.par_chunks(t * width))
            .zip(bias.par_chunks(t))
            .for_each(|((out, qkv), bias)| {
                let len = bias.iter().rposition(|&b| b > MASKED).map_or(0, |i| i + 1);
                let seq = Seq {
                    qkv,
                    len,
                    hidden,
                    dh,
                };
                self.sequence(&seq, out);
            });
        Ok((CpuStorage::F32(out), Shape::from((batch, t, hidden))))
    }
}

impl Attention {
    /// Every head's context rows of one sequence into `out`.
    fn sequence(&self, seq: &Seq, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.bf16 {
            for head in 0..self.heads {
                // SAFETY: `bf16` is set only where the CPU has the features (`new`).
                unsafe {
                    match seq.dh {
                        32 => bf16::head::<32>(seq, head, out),
                        _ => bf16::head::<64>(seq, head, out),
                    }
                }
            }
            return;
        }
        all_heads(seq, self.heads, out);
    }
}

super::simd::wide! {
    /// Every head's context rows of one sequence into `out`, f32 products.
    fn all_heads<M>(seq: &Seq, heads: usize, out: &mut [f32]) {
        for head in 0..heads {
            match seq.dh {
                32 => seq.head::<32, M>(head, out),
                _ => seq.head::<64, M>(head, out),
            }
        }
    }
}

/// One sequence's QKV rows and its length without padding.
struct Seq<'a> {
    qkv: &'a [f32],
    len: usize,
    hidden: usize,
    dh: usize,
}

impl Seq<'_> {
    /// Head `head`'s context rows into `out` (`t × hidden`, this head's columns).
    #[inline(always)]
    fn head<const DH: usize, M: Isa>(&self, head: usize, out: &mut [f32]) {
        let (len, hidden) = (self.len, self.hidden);
        let width = 3 * hidden;
        let padded = len.div_ceil(LANES) * LANES;
        // Keys transposed (DH × padded, zeros past len), values as rows (len × DH).
        let mut kt = vec![0f32; DH * padded];
        let mut v = vec![[0f32; DH]; len];
        for j in 0..len {
            let row = &self.qkv[j * width..];
            let k = &row[hidden + head * DH..][..DH];
            for (d, &x) in k.iter().enumerate() {
                kt[d * padded + j] = x;
            }
            v[j].copy_from_slice(&row[2 * hidden + head * DH..][..DH]);
        }
        let query = |i: usize| -> &[f32; DH] {
            self.qkv[i * width + head * DH..][..DH]
                .try_into()
                .expect("a query row")
        };
        let mut scores = vec![0f32; ROWS * padded];
        let mut i = 0;
        while i < len {
            let rows = (len - i).min(ROWS);
            // A short last tile repeats its last query; those rows are not read.
            let q: [&[f32; DH]; ROWS] = std::array::from_fn(|r| query(i + r.min(rows - 1)));
            scores_tile::<DH, M>(&q, &kt, padded, &mut scores);
            for r in 0..rows {
                softmax_in_place::<M>(&mut scores[r * padded..r * padded + len]);
            }
            let o = weighted_values::<DH, M>(&scores, padded, &v);
            for (r, o) in o.iter().enumerate().take(rows) {
                out[(i + r) * hidden + head * DH..][..DH].copy_from_slice(o);
            }
            i += rows;
        }
    }
}

/// `scores[r][j] = q[r] · k[j] / √DH` for every key column, 16 at a time (the queries are read
/// in place and the scale applied to the sums).
#[inline(always)]
fn scores_tile<const DH: usize, M: Isa>(
    q: &[&[f32; DH]; ROWS],
    kt: &[f32],
    padded: usize,
    s: &mut [f32],
) {
    let scale = 1.0 / (DH as f32).sqrt();
    for j in (0..padded).step_by(LANES) {
        let mut acc = [[0f32; LANES]; ROWS];
        for d in 0..DH {
            let k: &[f32; LANES] = kt[d * padded + j..][..LANES].try_into().expect("16 keys");
            for (a, q) in acc.iter_mut().zip(q) {
                let x = q[d];
                for (a, &k) in a.iter_mut().zip(k) {
                    *a = M::mul_add(x, k, *a);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for (s, &a) in s[r * padded + j..][..LANES].iter_mut().zip(a) {
                *s = a * scale;
            }
        }
    }
}

/// `o[r] = Σⱼ p[r][j] · v[j]` for the tile's rows, eight registers of accumulators a pass (with
/// AVX2 two rows of 32, one of 64), so they stay in registers and keep the FMA units busy.
#[inline(always)]
fn weighted_values<const DH: usize, M: Isa>(
    p: &[f32],
    padded: usize,
    v: &[[f32; DH]],
) -> [[f32; DH]; ROWS] {
    let mut o = [[0f32; DH]; ROWS];
    let step = (8 * M::LANES / DH).clamp(1, ROWS);
    for first in (0..ROWS).step_by(step) {
        for (j, v) in v.iter().enumerate() {
            for (r, o) in o.iter_mut().enumerate().skip(first).take(step) {
                let w = p[r * padded + j];
                for (o, &x) in o.iter_mut().zip(v) {
                    *o = M::mul_add(w, x, *o);
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention the textbook way, in f64.
    fn reference(qkv: &[f32], bias: &[f32], t: usize, heads: usize, hidden: usize) -> Vec<f64> {
        let dh = hidden / heads;
        let mut out = vec![0f64; t * hidden];
        let at = |j: usize, part: usize, h: usize, d: usize| {
            f64::from(qkv[j * 3 * hidden + part * hidden + h * dh + d])
        };
        for h in 0..heads {
            for i in 0..t {
                let s: Vec<f64> = (0..t)
                    .map(|j| {
                        let dot: f64 = (0..dh).map(|d| at(i, 0, h, d) * at(j, 1, h, d)).sum();
                        dot / (dh as f64).sqrt() + f64::from(bias[j])
                    })
                    .collect();
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..dh {
                    out[i * hidden + h * dh + d] =
                        (0..t).map(|j| e[j] / sum * at(j, 2, h, d)).sum::<f64>();
                }
            }
        }
        out
    }

    /// The largest difference between `attn` and the textbook on random values in [−2, 2]: two
    /// heads of `dh`, 37 positions of which the last 4 are padding (not a multiple of the
    /// 4-row tiles or the 16- and 32-key blocks). Padding rows must be zero.
    fn worst_error(attn: Attention, dh: usize) -> f64 {
        let (t, len) = (37, 33);
        let hidden = attn.heads * dh;
        let mut seed = 7u64;
        let qkv: Vec<f32> = (0..t * 3 * hidden)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect();
        let bias: Vec<f32> = (0..t).map(|j| if j < len { 0.0 } else { -1e4 }).collect();
        let (ql, bl) = (
            Layout::contiguous((1, t, 3 * hidden)),
            Layout::contiguous((1, t)),
        );
        let (out, shape) = attn
            .cpu_fwd(
                &CpuStorage::F32(qkv.clone()),
                &ql,
                &CpuStorage::F32(bias.clone()),
                &bl,
            )
            .unwrap();
        assert_eq!(shape.dims(), &[1, t, hidden]);
        let CpuStorage::F32(out) = out else {
            panic!("f32")
        };
        assert!(out[len * hidden..].iter().all(|&x| x == 0.0));
        let want = reference(&qkv, &bias, t, attn.heads, hidden);
        (0..len * hidden)
            .map(|i| (f64::from(out[i]) - want[i]).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn matches_textbook_attention_with_padding_and_ragged_lengths() {
        for dh in [32, 64] {
            let worst = worst_error(Attention::new(2, false), dh);
            assert!(worst < 1e-5, "head of {dh}: {worst}");
        }
    }

    /// bf16 products (on CPUs with AVX-512 BF16; elsewhere the op runs f32, checked above)
    /// stay within bf16's rounding of the textbook.
    #[test]
    fn bf16_products_stay_close_to_textbook_attention() {
        for dh in [32, 64] {
            let attn = Attention::new(2, true);
            let worst = worst_error(attn, dh);
            let bound = if attn.bf16 { 2e-2 } else { 1e-5 };
            assert!(worst < bound, "head of {dh}: {worst} (bf16: {})", attn.bf16);
        }
    }
}
