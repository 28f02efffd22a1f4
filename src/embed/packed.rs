//! f32 matrix products for the encoder's linear layers with the weights packed once, when the
//! model loads, into panels the AVX kernels read front to back. gemm packs its operand again on
//! every call, which took a tenth of an fp32 encode; here the bias is added as the sums start
//! and the rows of a task are finished in one place while they are in cache.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::cpu::{RowProduct, rows_by_task};

/// Output channels per panel: one AVX-512 register (two AVX2 ones) of f32.
const PANEL: usize = 16;
/// Rows per register tile.
const TILE_ROWS: usize = 6;
/// Panels per register tile with AVX-512 (24 accumulators of its 32 registers); AVX2's 16
/// registers hold one panel of six rows (12 accumulators).
const WIDE_PANELS: usize = 4;
/// Inputs per pass: a pass's panels (4 × 16 × 384 f32, 96 KiB) and the task's rows (96 KiB)
/// stay in L2 while the tiles sweep them.
const DEPTH: usize = 384;
/// Rows per parallel task, a multiple of the tile's rows.
const TASK_ROWS: usize = 16 * TILE_ROWS;

/// A weight matrix `out × inp` packed in panels of 16 output channels, each panel input by
/// input: 16 contiguous f32 hold one input's weights for the panel's channels.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    /// The kernel that sums the products on this CPU.
    kernel: Kernel,
    out: usize,
    inp: usize,
    packed: Vec<f32>,
}

impl PackedMatrix {
    /// Packs a row-major `out × inp` matrix (a linear layer's weight), when this CPU has the
    /// kernels (AVX-512F, or AVX2 with FMA) and `out` is whole panels (every BERT width is);
    /// else `None`, and gemm runs the product.
    pub fn new(weight: &[f32], out: usize, inp: usize) -> Option<Self> {
        Self::for_kernel(weight, out, inp, Kernel::detect()?)
    }

    /// Whether [`PackedMatrix::new`] packs a weight of `out` channels on this CPU (checked
    /// before the weight is copied out of its tensor).
    pub fn packs(out: usize) -> bool {
        Kernel::detect().is_some() && whole_panels(out)
    }

    fn for_kernel(weight: &[f32], out: usize, inp: usize, kernel: Kernel) -> Option<Self> {
        assert_eq!(weight.len(), out * inp, "weight is out × inp");
        if inp == 0 || !whole_panels(out) {
            return None;
        }
        let mut packed = vec![0f32; out * inp];
        packed
            .par_chunks_mut(inp * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                for lane in 0..PANEL {
                    let row = &weight[(p * PANEL + lane) * inp..][..inp];
                    for (k, &w) in row.iter().enumerate() {
                        panel[k * PANEL + lane] = w;
                    }
                }
            });
        Some(Self {
            kernel,
            out,
            inp,
            packed,
        })
    }

    /// The weight as it was given, row-major `out × inp`.
    pub fn weight(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out * self.inp];
        for (o, row) in w.chunks_exact_mut(self.inp).enumerate() {
            let panel = &self.packed[(o / PANEL) * self.inp * PANEL..];
            for (k, v) in row.iter_mut().enumerate() {
                *v = panel[k * PANEL + o % PANEL];
            }
        }
        w
    }
}

/// Whether `out` channels fill whole panels (and at least one).
fn whole_panels(out: usize) -> bool {
    out > 0 && out.is_multiple_of(PANEL)
}

impl RowProduct for PackedMatrix {
    fn out(&self) -> usize {
        self.out
    }

    fn inp(&self) -> usize {
        self.inp
    }

    fn matmul(&self, x: &[f32], bias: &[f32], then: Option<fn(&mut [f32])>) -> Vec<f32> {
        assert!(x.len().is_multiple_of(self.inp), "x is rows × inp");
        assert_eq!(bias.len(), self.out, "one bias per output channel");
        let (inp, out) = (self.inp, self.out);
        // SAFETY: `task` writes every value of its rows (its first pass starts each from the
        // bias).
        unsafe {
            rows_by_task(x.len() / inp, out, TASK_ROWS, then, |first, y| {
                let n = y.len() / out;
                task(self, &x[first * inp..(first + n) * inp], bias, y);
            })
        }
    }
}

/// Which kernel sums the products on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Avx512,
    Avx2,
}

impl Kernel {
    /// Every kernel this CPU runs, the widest first.
    fn all() -> Vec<Self> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") {
                all.push(Self::Avx512);
            }
            if has!("avx2") && has!("fma") {
                all.push(Self::Avx2);
            }
        }
        all
    }

    fn detect() -> Option<Self> {
        Self::all().first().copied()
    }

    /// Panels per register tile.
    fn panels(self) -> usize {
        match self {
            Self::Avx512 => WIDE_PANELS,
            Self::Avx2 => 1,
        }
    }
}

/// `x · Wᵀ + bias` for the rows of `x` into `y`: pass by pass over the inputs, panel group by
/// panel group, tile by tile of rows.
fn task(m: &PackedMatrix, x: &[f32], bias: &[f32], y: &mut [MaybeUninit<f32>]) {
    let rows = x.len() / m.inp;
    let panels = m.out / PANEL;
    let wide = m.kernel.panels();
    for k0 in (0..m.inp).step_by(DEPTH) {
        let pass = Pass {
            m,
            x,
            k0,
            k1: (k0 + DEPTH).min(m.inp),
            bias,
        };
        let mut p = 0;
        while p < panels {
            let np = if panels - p >= wide { wide } else { 1 };
            let mut r = 0;
            while r < rows {
                let nr = if rows - r >= TILE_ROWS { TILE_ROWS } else { 1 };
                match (nr, np) {
                    (TILE_ROWS, WIDE_PANELS) => pass.tile::<TILE_ROWS, WIDE_PANELS>(r, p, y),
                    (TILE_ROWS, _) => pass.tile::<TILE_ROWS, 1>(r, p, y),
                    (_, WIDE_PANELS) => pass.tile::<1, WIDE_PANELS>(r, p, y),
                    _ => pass.tile::<1, 1>(r, p, y),
                }
                r += nr;
            }
            p += np;
        }
    }
}

/// One pass of a task over inputs `k0..k1`: the first starts the sums from the bias, later
/// ones from what the previous pass wrote.
struct Pass<'a> {
    m: &'a PackedMatrix,
    x: &'a [f32],
    k0: usize,
    k1: usize,
    bias: &'a [f32],
}

impl Pass<'_> {
    /// Rows `r..r + MR` × panels `p..p + NP`, summed in registers over the pass's inputs and
    /// written to `y`.
    fn tile<const MR: usize, const NP: usize>(
        &self,
        r: usize,
        p: usize,
        y: &mut [MaybeUninit<f32>],
    ) {
        let (m, inp, out) = (self.m, self.m.inp, self.m.out);
        let c0 = p * PANEL;
        let depth = self.k1 - self.k0;
        let x = &self.x[r * inp + self.k0..(r + MR - 1) * inp + self.k1];
        let w = &m.packed[(p * inp + self.k0) * PANEL..((p + NP - 1) * inp + self.k1) * PANEL];
        let y = &mut y[r * out + c0..(r + MR - 1) * out + c0 + NP * PANEL];
        let y = y.as_mut_ptr().cast::<f32>();
        // The first pass starts every row from the bias, later ones from what was written.
        let (start, start_stride) = if self.k0 == 0 {
            (self.bias[c0..c0 + NP * PANEL].as_ptr(), 0)
        } else {
            (y.cast_const(), out)
        };
        // SAFETY: the CPU runs the kernel (one of `Kernel::all`); `x` holds the tile's rows at
        // stride `inp` and `w` its panels at stride `inp · 16`, `depth` inputs each; `y` (and
        // `start`) hold `MR` rows of `NP · 16` values at their strides, as sliced above. Later
        // passes read only values the first pass wrote.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let tile = Tile {
                x,
                xs: inp,
                w,
                ws: inp * PANEL,
                depth,
                start,
                start_stride,
                y,
                ys: out,
            };
            match m.kernel {
                Kernel::Avx512 => avx512::sums::<MR, NP>(&tile),
                Kernel::Avx2 => avx2::sums::<MR, NP>(&tile),
            }
        }
    }
}

/// What a kernel reads and writes for one tile.
struct Tile<'a> {
    /// The rows' inputs of the pass, row `i` at `i · xs`.
    x: &'a [f32],
    xs: usize,
    /// The panels' weights of the pass, panel `q` at `q · ws`.
    w: &'a [f32],
    ws: usize,
    depth: usize,
    /// Where row `i`'s sums start (`start + i · start_stride`) and go (`y + i · ys`).
    start: *const f32,
    start_stride: usize,
    y: *mut f32,
    ys: usize,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, Tile};

    /// `MR` rows × `NP` panels of sums: per input, `NP` panel loads, `MR` broadcasts and
    /// `MR·NP` FMAs on 16 lanes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `t` holds `MR` rows and `NP` panels of `depth` inputs, and
    /// its `start` and `y` `MR` rows of `NP · 16` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sums<const MR: usize, const NP: usize>(t: &Tile) {
        assert!(t.x.len() >= (MR - 1) * t.xs + t.depth);
        assert!(t.w.len() >= (NP - 1) * t.ws + t.depth * PANEL);
        let (xp, wp) = (t.x.as_ptr(), t.w.as_ptr());
        // SAFETY (every access below): within the tile, as the caller and the checks promise.
        let mut a: [[__m512; NP]; MR] = std::array::from_fn(|i| {
            std::array::from_fn(|q| unsafe {
                _mm512_loadu_ps(t.start.add(i * t.start_stride + q * PANEL))
            })
        });
        for k in 0..t.depth {
            let wv: [__m512; NP] =
                std::array::from_fn(|q| unsafe { _mm512_loadu_ps(wp.add(q * t.ws + k * PANEL)) });
            for (i, a) in a.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(unsafe { *xp.add(i * t.xs + k) });
                for (a, wv) in a.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xv, *wv, *a);
                }
            }
        }
        for (i, a) in a.iter().enumerate() {
            for (q, a) in a.iter().enumerate() {
                unsafe { _mm512_storeu_ps(t.y.add(i * t.ys + q * PANEL), *a) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{PANEL, Tile};

    /// As the AVX-512 kernel, each panel in two registers of eight lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `t` holds `MR` rows and `NP` panels of `depth` inputs,
    /// and its `start` and `y` `MR` rows of `NP · 16` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sums<const MR: usize, const NP: usize>(t: &Tile) {
        assert!(t.x.len() >= (MR - 1) * t.xs + t.depth);
        assert!(t.w.len() >= (NP - 1) * t.ws + t.depth * PANEL);
        let (xp, wp) = (t.x.as_ptr(), t.w.as_ptr());
        // SAFETY (every access below): within the tile, as the caller and the checks promise.
        let mut a: [[[__m256; 2]; NP]; MR] = std::array::from_fn(|i| {
            std::array::from_fn(|q| {
                std::array::from_fn(|h| unsafe {
                    _mm256_loadu_ps(t.start.add(i * t.start_stride + q * PANEL + h * 8))
                })
            })
        });
        for k in 0..t.depth {
            let wv: [[__m256; 2]; NP] = std::array::from_fn(|q| {
                std::array::from_fn(|h| unsafe {
                    _mm256_loadu_ps(wp.add(q * t.ws + k * PANEL + h * 8))
                })
            });
            for (i, a) in a.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(unsafe { *xp.add(i * t.xs + k) });
                for (a, wv) in a.iter_mut().zip(&wv) {
                    for (a, wv) in a.iter_mut().zip(wv) {
                        *a = _mm256_fmadd_ps(xv, *wv, *a);
                    }
                }
            }
        }
        for (i, a) in a.iter().enumerate() {
            for (q, a) in a.iter().enumerate() {
                for (h, a) in a.iter().enumerate() {
                    unsafe { _mm256_storeu_ps(t.y.add(i * t.ys + q * PANEL + h * 8), *a) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn values(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.unit() as f32 - 0.5).collect()
    }

    #[test]
    fn every_kernel_this_cpu_has_matches_a_plain_loop_on_ragged_shapes() {
        let mut rng = Rng::new(11);
        // Rows beyond whole tiles and tasks, inputs beyond one pass, panels beyond whole
        // groups.
        for (rows, inp, out) in [(TASK_ROWS + 13, DEPTH + 70, 5 * PANEL), (7, 20, PANEL)] {
            let (x, w, b) = (
                values(rows * inp, &mut rng),
                values(out * inp, &mut rng),
                values(out, &mut rng),
            );
            assert_eq!(
                PackedMatrix::new(&w, out, inp).is_some(),
                !Kernel::all().is_empty()
            );
            assert_eq!(PackedMatrix::packs(out), !Kernel::all().is_empty());
            for kernel in Kernel::all() {
                let m = PackedMatrix::for_kernel(&w, out, inp, kernel).expect("whole panels");
                assert_eq!(m.weight(), w);
                let y = m.matmul(&x, &b, None);
                assert_eq!(y.len(), rows * out);
                for (i, row) in y.chunks_exact(out).enumerate() {
                    for (o, &v) in row.iter().enumerate() {
                        let want: f64 = b[o] as f64
                            + (0..inp)
                                .map(|k| x[i * inp + k] as f64 * w[o * inp + k] as f64)
                                .sum::<f64>();
                        assert!(
                            (v as f64 - want).abs() < 1e-4,
                            "{kernel:?} row {i} col {o}: {v} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn widths_that_are_not_whole_panels_stay_with_gemm() {
        let w = vec![0.5f32; 3 * (PANEL + 1)];
        for kernel in Kernel::all() {
            assert!(PackedMatrix::for_kernel(&w, PANEL + 1, 3, kernel).is_none());
        }
        assert!(PackedMatrix::new(&w, PANEL + 1, 3).is_none());
        assert!(!PackedMatrix::packs(PANEL + 1));
    }
}
