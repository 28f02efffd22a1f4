//! Dynamic int8 matrix products for the encoder's linear layers, as ONNX Runtime's dynamic
//! quantization does them: weights quantized once per output channel (symmetric, i8), each
//! input row quantized when it arrives (asymmetric, u8), products summed exactly in i32 and
//! scaled back to f32. With AVX-512 VNNI one instruction does 64 u8×i8 products; with AVX2
//! `vpmaddubsw` does 32 into i16 pair sums, so there the weights keep 7 bits (±63, ONNX
//! Runtime's `reduce_range`) and no pair saturates; other CPUs run a portable loop. Every kernel
//! gives the same sums for the same quantized weights.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::cpu::{RowProduct, rows_by_task};
use super::simd::ROUNDER;

/// Output channels per packed panel: one 512-bit register of i32 sums.
const PANEL: usize = 16;
/// Inputs per group: one u8×i8 dot product of four pairs per lane.
const GROUP: usize = 4;
/// Rows and panels per register tile of the VNNI kernel (16 accumulators).
const TILE_ROWS: usize = 4;
const TILE_PANELS: usize = 4;
/// Rows per parallel task.
const TASK_ROWS: usize = 32;

/// A weight matrix `out × inp` quantized per output channel and packed for the kernels: panels
/// of 16 channels and, within a panel, groups of 4 inputs, so that 64 contiguous bytes hold
/// four inputs of sixteen channels.
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    /// The kernel the weights were quantized for (its range) and that sums them.
    kernel: Kernel,
    out: usize,
    inp: usize,
    groups: usize,
    packed: Vec<i8>,
    /// Per output channel (padded to whole panels): the dequantization scale and Σₖ q[o,k],
    /// which removes the activations' zero point from the sums.
    scale: Vec<f32>,
    sum: Vec<i32>,
}

/// Input rows quantized to u8: `groups × 4` bytes a row (zero padded), a scale and a zero
/// point each.
struct Rows {
    q: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl Int8Matrix {
    /// Quantizes a row-major `out × inp` f32 matrix (a linear layer's weight) for the best
    /// kernel this CPU has.
    pub fn new(weight: &[f32], out: usize, inp: usize) -> Self {
        Self::for_kernel(weight, out, inp, Kernel::detect())
    }

    fn for_kernel(weight: &[f32], out: usize, inp: usize, kernel: Kernel) -> Self {
        assert_eq!(weight.len(), out * inp, "weight is out × inp");
        let groups = inp.div_ceil(GROUP);
        let panels = out.div_ceil(PANEL);
        let qmax = kernel.weight_max();
        // Each channel symmetric: q = round(w / s), s = max |w| / qmax.
        let channels: Vec<(f32, Vec<i8>)> = weight
            .par_chunks_exact(inp)
            .map(|row| {
                let amax = row.iter().fold(0f32, |m, w| m.max(w.abs()));
                let s = if amax > 0.0 { amax / qmax } else { 1.0 };
                let q = row.iter().map(|w| (w / s).round().clamp(-qmax, qmax) as i8);
                (s, q.collect())
            })
            .collect();
        let mut packed = vec![0i8; panels * groups * PANEL * GROUP];
        let mut scale = vec![0f32; panels * PANEL];
        let mut sum = vec![0i32; panels * PANEL];
        for (o, (s, q)) in channels.iter().enumerate() {
            scale[o] = *s;
            sum[o] = q.iter().map(|&v| i32::from(v)).sum();
            let (p, lane) = (o / PANEL, o % PANEL);
            for (k, &v) in q.iter().enumerate() {
                let (g, sub) = (k / GROUP, k % GROUP);
                packed[((p * groups + g) * PANEL + lane) * GROUP + sub] = v;
            }
        }
        Self {
            kernel,
            out,
            inp,
            groups,
            packed,
            scale,
            sum,
        }
    }

    fn quantize(&self, x: &[f32]) -> Rows {
        let rows = x.len() / self.inp;
        let stride = self.groups * GROUP;
        let mut q = vec![0u8; rows * stride];
        let mut scale = vec![0f32; rows];
        let mut zero = vec![0i32; rows];
        q.par_chunks_mut(stride)
            .zip(x.par_chunks_exact(self.inp))
            .zip(scale.par_iter_mut().zip(zero.par_iter_mut()))
            .for_each(|((q, x), (scale, zero))| {
                (*scale, *zero) = quantize_row(x, q);
            });
        Rows { q, scale, zero }
    }

    /// i32 sums of `nr` quantized rows against `np` panels, row-major `nr × np·16`.
    fn tile(&self, x: &[u8], w: &[i8], nr: usize, np: usize, kernel: Kernel, sums: &mut [i32]) {
        let g = self.groups;
        // SAFETY: `Kernel::detect` chose the kernel for what the CPU has; the slices hold `nr`
        // rows of `groups × 4` bytes and `np` panels, as the kernels read them.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            match (kernel, nr, np) {
                (Kernel::Portable, ..) => {}
                (Kernel::Vnni, TILE_ROWS, TILE_PANELS) => {
                    return vnni::tile::<TILE_ROWS, TILE_PANELS>(x, w, g, sums);
                }
                (Kernel::Vnni, TILE_ROWS, 1) => return vnni::tile::<TILE_ROWS, 1>(x, w, g, sums),
                (Kernel::Vnni, 1, TILE_PANELS) => {
                    return vnni::tile::<1, TILE_PANELS>(x, w, g, sums);
                }
                (Kernel::Vnni, ..) => {
                    // Other shapes one row and panel at a time.
                    let (stride, panel) = (g * GROUP, g * PANEL * GROUP);
                    for r in 0..nr {
                        for p in 0..np {
                            let at = (r * np + p) * PANEL;
                            let (x, w) = (&x[r * stride..], &w[p * panel..]);
                            vnni::tile::<1, 1>(x, w, g, &mut sums[at..]);
                        }
                    }
                    return;
                }
                (Kernel::Avx2, ..) => return avx2::tile(x, w, g, nr, np, sums),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = kernel;
        portable_tile(x, w, g, nr, np, sums);
    }
}

impl RowProduct for Int8Matrix {
    fn out(&self) -> usize {
        self.out
    }

    fn inp(&self) -> usize {
        self.inp
    }

    fn matmul(&self, x: &[f32], bias: &[f32], then: Option<fn(&mut [f32])>) -> Vec<f32> {
        let q = self.quantize(x);
        // SAFETY: `rows_into` writes every value of its rows.
        unsafe {
            rows_by_task(x.len() / self.inp, self.out, TASK_ROWS, then, |first, y| {
                rows_into(self, &q, first, y.len() / self.out, bias, y);
            })
        }
    }
}

/// Which kernel sums the products on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Vnni,
    Avx2,
    Portable,
}

impl Kernel {
    /// The largest weight magnitude this kernel sums without saturating.
    fn weight_max(self) -> f32 {
        match self {
            Self::Avx2 => 63.0,
            Self::Vnni | Self::Portable => 127.0,
        }
    }

    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                return Self::Vnni;
            }
            if has!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }
}

super::simd::wide! {
    /// Rows `first..first + n` of the product, scaled and biased, into `y` (`n × out`, every
    /// value written).
    fn rows_into(m: &Int8Matrix, q: &Rows, first: usize, n: usize, bias: &[f32], y: &mut [MaybeUninit<f32>]) {
        let stride = m.groups * GROUP;
        let panels = m.out.div_ceil(PANEL);
        let mut sums = [0i32; TILE_ROWS * TILE_PANELS * PANEL];
        let mut p = 0;
        while p < panels {
            let np = if panels - p >= TILE_PANELS {
                TILE_PANELS
            } else {
                1
            };
            let mut r = 0;
            while r < n {
                let nr = if n - r >= TILE_ROWS { TILE_ROWS } else { 1 };
                let x = &q.q[(first + r) * stride..(first + r + nr) * stride];
                let w = &m.packed[p * m.groups * PANEL * GROUP..];
                let width = np * PANEL;
                m.tile(x, w, nr, np, m.kernel, &mut sums[..nr * width]);
                for i in 0..nr {
                    let row = first + r + i;
                    let (sx, zx) = (q.scale[row], q.zero[row]);
                    let start = p * PANEL;
                    let cols = width.min(m.out - start);
                    let out = &mut y[(r + i) * m.out + start..][..cols];
                    // Equal-length slices zipped, so the loop vectorises without alias checks.
                    let channels = m.scale[start..][..cols].iter().zip(&m.sum[start..][..cols]);
                    for (((o, &s), (&sw, &cs)), &b) in
                        out.iter_mut().zip(&sums[i * width..][..cols]).zip(channels).zip(&bias[start..][..cols])
                    {
                        o.write(sx * sw * (s - zx * cs) as f32 + b);
                    }
                }
                r += nr;
            }
            p += np;
        }
    }
}

super::simd::wide! {
    /// Quantizes one row to u8 (asymmetric, the range widened to hold 0); its scale and zero point.
    fn quantize_row(x: &[f32], q: &mut [u8]) -> (f32, i32) {
        const LANES: usize = 16;
        let (mut lo, mut hi) = ([0f32; LANES], [0f32; LANES]);
        let mut rest = x.chunks_exact(LANES);
        for c in &mut rest {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(c) {
                *l = if v < *l { v } else { *l };
                *h = if v > *h { v } else { *h };
            }
        }
        let (lo, hi) = rest
            .remainder()
            .iter()
            .zip(rest.remainder())
            .chain(lo.iter().zip(&hi))
            .fold((0f32, 0f32), |(l, h), (&a, &b)| (l.min(a), h.max(b)));
        let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let z = (-lo / s).round().clamp(0.0, 255.0);
        // Rounded through ROUNDER's bits (the low byte is the integer): f32::round is a libm
        // call per value on baseline x86-64 and `as u8` saturates value by value.
        let inv = 1.0 / s;
        for (q, &v) in q.iter_mut().zip(x) {
            *q = ((v * inv + z).clamp(0.0, 255.0) + ROUNDER).to_bits() as u8;
        }
        (s, z as i32)
    }
}

/// The kernels' sums with plain integer arithmetic.
fn portable_tile(x: &[u8], w: &[i8], groups: usize, nr: usize, np: usize, sums: &mut [i32]) {
    let stride = groups * GROUP;
    let width = np * PANEL;
    for r in 0..nr {
        let x = &x[r * stride..(r + 1) * stride];
        for p in 0..np {
            let panel = &w[p * groups * PANEL * GROUP..(p + 1) * groups * PANEL * GROUP];
            let mut acc = [0i32; PANEL];
            for (xg, wg) in x.chunks_exact(GROUP).zip(panel.chunks_exact(PANEL * GROUP)) {
                for (a, wl) in acc.iter_mut().zip(wg.chunks_exact(GROUP)) {
                    *a += xg
                        .iter()
                        .zip(wl)
                        .map(|(&u, &s)| i32::from(u) * i32::from(s))
                        .sum::<i32>();
                }
            }
            sums[r * width + p * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL};

    /// `MR` rows × `NP` panels of sums: per group of four inputs, `NP` 64-byte weight loads,
    /// `MR` broadcasts of four input bytes, `MR·NP` `vpdpbusd`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VNNI; `x` holds `MR` rows of `groups × 4` bytes, `w` at
    /// least `NP` panels of `groups × 64` bytes, `sums` `MR × NP·16` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile<const MR: usize, const NP: usize>(
        x: &[u8],
        w: &[i8],
        groups: usize,
        sums: &mut [i32],
    ) {
        let stride = groups * GROUP;
        let panel = groups * PANEL * GROUP;
        debug_assert!(x.len() >= MR * stride && w.len() >= NP * panel);
        debug_assert!(sums.len() >= MR * NP * PANEL);
        let mut acc = [[_mm512_setzero_si512(); NP]; MR];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for g in 0..groups {
            let mut wv = [_mm512_setzero_si512(); NP];
            for (p, v) in wv.iter_mut().enumerate() {
                // SAFETY: panel p's group g lies within `w` (checked above).
                *v = unsafe { _mm512_loadu_si512(wp.add(p * panel + g * 64).cast()) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: four bytes of row r at group g lie within `x`.
                let four = unsafe {
                    xp.add(r * stride + g * GROUP)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let xv = _mm512_set1_epi32(four);
                for (a, v) in acc.iter_mut().zip(&wv) {
                    *a = _mm512_dpbusd_epi32(*a, xv, *v);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (p, a) in acc.iter().enumerate() {
                let at = (r * NP + p) * PANEL;
                // SAFETY: 16 i32 at `at` lie within `sums` (checked above).
                unsafe { _mm512_storeu_si512(sums.as_mut_ptr().add(at).cast(), *a) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL};

    /// `nr` rows × `np` panels of sums, four rows (else one) per pass over a panel: per group of
    /// four inputs, the panel's 64 weight bytes in two registers of eight channels, each
    /// multiplied with a row's four inputs by `vpmaddubsw` (pairs into i16: exact, as the
    /// weights are within ±63) and `vpmaddwd` by ones (the pairs into i32 channel sums).
    ///
    /// # Safety
    /// The CPU must have AVX2; `x` holds `nr` rows of `groups × 4` bytes, `w` at least `np`
    /// panels of `groups × 64` bytes with weights within ±63, `sums` `nr × np·16` values.
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile(x: &[u8], w: &[i8], groups: usize, nr: usize, np: usize, s: &mut [i32]) {
        let stride = groups * GROUP;
        let panel = groups * PANEL * GROUP;
        assert!(x.len() >= nr * stride && w.len() >= np * panel && s.len() >= nr * np * PANEL);
        for p in 0..np {
            let w = &w[p * panel..(p + 1) * panel];
            let mut r = 0;
            while r < nr {
                let x = &x[r * stride..];
                let (four, one);
                let sums: &[[i32; PANEL]] = if nr - r >= 4 {
                    four = rows::<4>(x, w, groups);
                    &four
                } else {
                    one = rows::<1>(x, w, groups);
                    &one
                };
                for (i, v) in sums.iter().enumerate() {
                    s[((r + i) * np + p) * PANEL..][..PANEL].copy_from_slice(v);
                }
                r += sums.len();
            }
        }
    }

    /// One panel's sums for `R` rows (`x` rows of `groups × 4` bytes, `w` one panel).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rows<const R: usize>(x: &[u8], w: &[i8], groups: usize) -> [[i32; PANEL]; R] {
        let stride = groups * GROUP;
        assert!(x.len() >= (R - 1) * stride + groups * GROUP && w.len() >= groups * PANEL * GROUP);
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let ones = _mm256_set1_epi16(1);
        // Per row, channels 0-7 and 8-15.
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for g in 0..groups {
            // SAFETY: group g of the panel holds 64 bytes (checked above).
            let wv: [__m256i; 2] = std::array::from_fn(|h| unsafe {
                _mm256_loadu_si256(wp.add(g * PANEL * GROUP + h * 32).cast())
            });
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: four bytes of row r at group g lie within `x` (checked above).
                let four = unsafe {
                    xp.add(r * stride + g * GROUP)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let xv = _mm256_set1_epi32(four);
                for (a, wv) in acc.iter_mut().zip(&wv) {
                    let pairs = _mm256_maddubs_epi16(xv, *wv);
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        let mut out = [[0i32; PANEL]; R];
        for (out, acc) in out.iter_mut().zip(&acc) {
            // SAFETY: 16 i32 fit in `out`.
            unsafe {
                _mm256_storeu_si256(out.as_mut_ptr().cast(), acc[0]);
                _mm256_storeu_si256(out.as_mut_ptr().add(8).cast(), acc[1]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values in [-1, 1), with a few large ones as BERT has.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if i % 97 == 0 { v * 8.0 } else { v }
            })
            .collect()
    }

    fn reference(x: &[f32], w: &[f32], bias: &[f32], inp: usize) -> Vec<f32> {
        let out = bias.len();
        x.chunks_exact(inp)
            .flat_map(|row| {
                (0..out).map(move |o| {
                    let wr = &w[o * inp..(o + 1) * inp];
                    row.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + bias[o]
                })
            })
            .collect()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn products_follow_the_f32_ones_on_ragged_shapes() {
        // 37 rows (tiles of 4 and single rows), 70 inputs (not a multiple of 4), 100 outputs
        // (a partial panel) and 128 outputs (whole tiles of 4 panels).
        for out in [100, 128] {
            let (rows, inp) = (37, 70);
            let x = values(rows * inp, 1);
            let w = values(out * inp, 2);
            let bias = values(out, 3);
            let m = Int8Matrix::new(&w, out, inp);
            let y = m.matmul(&x, &bias, None);
            let r = reference(&x, &w, &bias, inp);
            assert_eq!(y.len(), rows * out);
            for (a, b) in y.chunks_exact(out).zip(r.chunks_exact(out)) {
                assert!(cosine(a, b) > 0.999, "row cosine {}", cosine(a, b));
            }
        }
    }

    #[test]
    fn every_kernel_this_cpu_has_sums_exactly_what_the_portable_loop_sums() {
        let (inp, out) = (64, 128);
        // A CPU with VNNI has AVX2 too.
        let kernels: &[Kernel] = match Kernel::detect() {
            Kernel::Vnni => &[Kernel::Vnni, Kernel::Avx2],
            Kernel::Avx2 => &[Kernel::Avx2],
            Kernel::Portable => &[],
        };
        for &kernel in kernels {
            // Every weight at the kernel's largest magnitude and a third of the inputs at 255:
            // the pairs' worst case.
            let signs: Vec<f32> = values(out * inp, 4).iter().map(|v| v.signum()).collect();
            let m = Int8Matrix::for_kernel(&signs, out, inp, kernel);
            let mut q = m.quantize(&values(TILE_ROWS * inp, 5));
            q.q.iter_mut().step_by(3).for_each(|v| *v = 255);
            for (nr, np) in [
                (TILE_ROWS, TILE_PANELS),
                (TILE_ROWS, 1),
                (3, 1),
                (2, 1),
                (3, 2),
                (1, TILE_PANELS),
                (1, 1),
            ] {
                let n = nr * np * PANEL;
                let (mut fast, mut slow) = (vec![0i32; n], vec![0i32; n]);
                m.tile(&q.q, &m.packed, nr, np, kernel, &mut fast);
                m.tile(&q.q, &m.packed, nr, np, Kernel::Portable, &mut slow);
                assert_eq!(fast, slow, "{kernel:?}: {nr} rows × {np} panels");
            }
        }
    }
}
