//! One head of attention with bf16 products (AVX-512 BF16's `vdpbf16ps`, two products per f32
//! lane, twice the f32 FMA's): queries, keys, probabilities and values rounded to bf16, sums
//! and softmax in f32. Used with the int8 linear layers, whose own rounding is coarser.

use std::arch::x86_64::{
    __m512, __m512bh, __m512i, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_loadu_ps,
    _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::{ROWS, Seq};
use crate::embed::simd::Fused;
use crate::embed::softmax::softmax_in_place;

/// Keys per block of scores: two vectors a row, eight accumulators for four rows.
const KEYS: usize = 32;
/// Pairs of a query row at the widest head (64).
const MAX_PAIRS: usize = 32;

/// Whether this CPU has the instructions.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

/// `x` rounded to bf16 (to nearest, ties to even), in the low 16 bits.
#[inline(always)]
fn bf16(x: f32) -> u32 {
    let b = x.to_bits();
    b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16
}

/// Two values as one bf16 pair: `lo` in the low half, as `vdpbf16ps` pairs them.
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    bf16(lo) | (bf16(hi) << 16)
}

/// Head `head` of `seq` into `out` (`t × hidden`, this head's columns).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16 ([`available`]).
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn head<const DH: usize>(seq: &Seq, head: usize, out: &mut [f32]) {
    let (len, hidden) = (seq.len, seq.hidden);
    let width = 3 * hidden;
    let padded = len.div_ceil(KEYS) * KEYS;
    let pairs = len.div_ceil(2);
    // Keys as pairs along the head dimension, transposed: kt[p·padded + j] = k[j][2p, 2p+1].
    // Values as pairs along the keys: vp[i·DH + d] = v[2i, 2i+1][d]. Zeros past len.
    let mut kt = vec![0u32; DH / 2 * padded];
    let mut vp = vec![0u32; pairs * DH];
    let row = |j: usize, part: usize| &seq.qkv[j * width + part * hidden + head * DH..][..DH];
    for j in 0..len {
        for (c, k) in row(j, 1).chunks_exact(32).enumerate() {
            // SAFETY: the caller guarantees the CPU features; `k` holds 32 values.
            for (p, &k) in unsafe { pairs32(k) }.iter().enumerate() {
                kt[(16 * c + p) * padded + j] = k;
            }
        }
    }
    let zeros = [0f32; DH];
    for (i, vp) in vp.chunks_exact_mut(DH).enumerate() {
        let (a, b) = (
            row(2 * i, 2),
            if 2 * i + 1 < len {
                row(2 * i + 1, 2)
            } else {
                &zeros
            },
        );
        for ((vp, &a), &b) in vp.iter_mut().zip(a).zip(b) {
            *vp = pair(a, b);
        }
    }
    let scale = 1.0 / (DH as f32).sqrt();
    let mut scores = vec![0f32; ROWS * padded];
    let half = padded / 2;
    let mut probs = vec![0u32; ROWS * half];
    let mut i = 0;
    while i < len {
        let rows = (len - i).min(ROWS);
        // A short last tile repeats its last query; those rows are not written.
        let mut q = [[0u32; MAX_PAIRS]; ROWS];
        for (r, q) in q.iter_mut().enumerate() {
            for (c, x) in row(i + r.min(rows - 1), 0).chunks_exact(32).enumerate() {
                // SAFETY: as for the keys.
                q[16 * c..16 * c + 16].copy_from_slice(&unsafe { pairs32(x) });
            }
        }
        // SAFETY: the caller guarantees the CPU features; every load and store below is of
        // 16 lanes inside the vectors sized above (padded is a multiple of 32, DH of 16).
        unsafe {
            scores_tile::<DH>(&q, &kt, padded, scale, &mut scores);
            for (s, p) in scores
                .chunks_exact_mut(padded)
                .zip(probs.chunks_exact_mut(half))
            {
                softmax_in_place::<Fused<16>>(&mut s[..len]);
                s[len..].fill(0.0);
                for (c, p) in s.chunks_exact(KEYS).zip(p.chunks_exact_mut(KEYS / 2)) {
                    p.copy_from_slice(&pairs32(c));
                }
            }
            let o = weighted_values::<DH>(&probs, half, pairs, &vp);
            for (r, o) in o.iter().enumerate().take(rows) {
                out[(i + r) * hidden + head * DH..][..DH].copy_from_slice(&o[..DH]);
            }
        }
        i += rows;
    }
}

/// 16 bf16 pairs from `at`.
#[inline(always)]
unsafe fn load(at: *const u32) -> __m512bh {
    // SAFETY: the caller reads inside its slice; a pair vector has the f32 vector's bits.
    unsafe { std::mem::transmute::<__m512, __m512bh>(_mm512_loadu_ps(at.cast())) }
}

/// One bf16 pair in every lane.
#[inline(always)]
unsafe fn broadcast(pair: u32) -> __m512bh {
    // SAFETY: an integer vector and a pair vector have the same size.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair as i32)) }
}

/// The bf16 pairs of 32 consecutive values: pair `p` holds `x[2p]` (low) and `x[2p + 1]`.
#[inline(always)]
unsafe fn pairs32(x: &[f32]) -> [u32; 16] {
    assert!(x.len() >= 32);
    // SAFETY: two 16-lane loads inside `x` (checked above); the caller has the features.
    unsafe {
        let lo = _mm512_loadu_ps(x.as_ptr());
        let hi = _mm512_loadu_ps(x.as_ptr().add(16));
        std::mem::transmute::<__m512bh, [u32; 16]>(_mm512_cvtne2ps_pbh(hi, lo))
    }
}

/// `s[r][j] = scale · q[r] · k[j]` for every key column, 32 at a time.
#[inline(always)]
unsafe fn scores_tile<const DH: usize>(
    q: &[[u32; MAX_PAIRS]; ROWS],
    kt: &[u32],
    padded: usize,
    scale: f32,
    s: &mut [f32],
) {
    unsafe {
        let scale = _mm512_set1_ps(scale);
        for j in (0..padded).step_by(KEYS) {
            let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
            for p in 0..DH / 2 {
                let k = kt[p * padded + j..][..KEYS].as_ptr();
                let k = [load(k), load(k.add(16))];
                for (a, q) in acc.iter_mut().zip(q) {
                    let q = broadcast(q[p]);
                    a[0] = _mm512_dpbf16_ps(a[0], q, k[0]);
                    a[1] = _mm512_dpbf16_ps(a[1], q, k[1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                let at = s[r * padded + j..][..KEYS].as_mut_ptr();
                _mm512_storeu_ps(at, _mm512_mul_ps(a[0], scale));
                _mm512_storeu_ps(at.add(16), _mm512_mul_ps(a[1], scale));
            }
        }
    }
}

/// `o[r] = Σⱼ p[r][j] · v[j]` for the tile's rows, over the pairs of keys (`p` holds each
/// row's pairs `half` apart).
#[inline(always)]
unsafe fn weighted_values<const DH: usize>(
    p: &[u32],
    half: usize,
    pairs: usize,
    vp: &[u32],
) -> [[f32; 64]; ROWS] {
    let mut o = [[0f32; 64]; ROWS];
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 4]; ROWS];
        for (i, v) in vp.chunks_exact(DH).enumerate().take(pairs) {
            let v: [__m512bh; 4] =
                std::array::from_fn(|c| load(v[(16 * c).min(DH - 16)..].as_ptr()));
            for (r, a) in acc.iter_mut().enumerate() {
                let w = broadcast(p[r * half + i]);
                for (a, &v) in a.iter_mut().zip(&v).take(DH / 16) {
                    *a = _mm512_dpbf16_ps(*a, w, v);
                }
            }
        }
        for (o, a) in o.iter_mut().zip(&acc) {
            for (c, a) in a.iter().enumerate().take(DH / 16) {
                _mm512_storeu_ps(o.as_mut_ptr().add(16 * c), *a);
            }
        }
    }
    o
}
