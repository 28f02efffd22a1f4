//! Fitting: the multinomial (softmax) logistic regression's weighted loss and gradient, and
//! the L-BFGS minimiser that fits it.

use rayon::prelude::*;

use super::features::Row;

/// Multinomial logistic regression: each document's cross-entropy against its target classes
/// (the primary, and a share for the secondary ones), weighted by its primary's class weight
/// and averaged over the total weight, plus an L2 penalty on the feature weights' distance from
/// a prior. Parameters are laid out as features × classes, then the k intercepts.
pub struct Softmax<'a> {
    pub rows: &'a [Row],
    /// Classes of each row, primary first (never empty).
    pub targets: &'a [Vec<usize>],
    /// Target probability spread evenly over a row's secondary classes (the primary keeps
    /// the rest), so an award's supporting areas are learnt as second choices.
    pub secondary_share: f64,
    pub d: usize,
    pub k: usize,
    pub l2: f64,
    /// Where the L2 penalty pulls the feature weights (same layout; zeros for plain L2).
    pub prior: &'a [f64],
    /// Weight of a document of each class.
    pub class_weight: Vec<f64>,
}

impl Softmax<'_> {
    /// The loss at `x`; writes its gradient into `g`.
    pub fn loss_grad(&self, x: &[f64], g: &mut [f64]) -> f64 {
        let (d, k) = (self.d, self.k);
        let (w, b) = x.split_at(d * k);
        let total: f64 = self.targets.iter().map(|t| self.class_weight[t[0]]).sum();
        // Partial sums per fixed-size chunk, added in order: deterministic on any thread count.
        let idx: Vec<usize> = (0..self.rows.len()).collect();
        let parts: Vec<(f64, Vec<f64>)> = idx
            .par_chunks(1024)
            .map(|chunk| {
                let mut grad = vec![0.0; (d + 1) * k];
                let mut loss = 0.0;
                let mut z = vec![0.0; k];
                for &i in chunk {
                    let row = &self.rows[i];
                    let (y, rest) = self.targets[i].split_first().expect("a target class");
                    let sw = self.class_weight[*y];
                    logits(row, w, b, k, &mut z);
                    let lse = log_sum_exp(&z);
                    let share = if rest.is_empty() {
                        0.0
                    } else {
                        self.secondary_share / rest.len() as f64
                    };
                    let primary = 1.0 - share * rest.len() as f64;
                    loss += sw
                        * (lse - primary * z[*y] - rest.iter().map(|&c| share * z[c]).sum::<f64>());
                    for zc in z.iter_mut() {
                        let p = (*zc - lse).exp();
                        *zc = sw * p;
                    }
                    z[*y] -= sw * primary;
                    for &c in rest {
                        z[c] -= sw * share;
                    }
                    for &(j, v) in row {
                        let gj = &mut grad[j as usize * k..(j as usize + 1) * k];
                        for (gc, r) in gj.iter_mut().zip(&z) {
                            *gc += r * v as f64;
                        }
                    }
                    for (gc, r) in grad[d * k..].iter_mut().zip(&z) {
                        *gc += r;
                    }
                }
                (loss, grad)
            })
            .collect();
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut loss = 0.0;
        for (l, part) in parts {
            loss += l;
            g.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        let total = total.max(1e-12);
        g.iter_mut().for_each(|v| *v /= total);
        let mut penalty = 0.0;
        for ((gv, wv), pv) in g[..d * k].iter_mut().zip(w).zip(self.prior) {
            let dv = wv - pv;
            *gv += self.l2 * dv;
            penalty += dv * dv;
        }
        loss / total + 0.5 * self.l2 * penalty
    }
}

/// `z[c] = b[c] + row · w[:, c]` for weights laid out features × classes.
pub fn logits(row: &Row, w: &[f64], b: &[f64], k: usize, z: &mut [f64]) {
    z.copy_from_slice(b);
    for &(j, v) in row {
        let wj = &w[j as usize * k..(j as usize + 1) * k];
        for (zc, wc) in z.iter_mut().zip(wj) {
            *zc += wc * v as f64;
        }
    }
}

/// `ln Σ exp(z)` without overflow.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Minimises `f` (which writes its gradient into the second argument) with L-BFGS and a
/// backtracking Armijo line search. Returns the minimiser, iterations used and final value.
pub fn lbfgs(
    f: impl Fn(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    m: usize,
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, usize, f64) {
    let n = x.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut hist: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut iter = 0;
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    while iter < max_iter {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm < tol {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = hist
            .back()
            .map(|(s, y, _)| dot(s, y) / dot(y, y))
            .unwrap_or(1.0 / gnorm.max(1e-12));
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let bcoef = rho * dot(y, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += (a - bcoef) * si);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &dir);
        if slope >= 0.0 {
            hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut f_new;
        loop {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&dir)
                .for_each(|((xn, xi), di)| *xn = xi + step * di);
            f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        iter += 1;
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let decrease = fx - f_new;
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = f_new;
        if sy > 1e-12 {
            if hist.len() == m {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        if decrease.abs() <= tol * fx.abs().max(1.0) * 1e-3 {
            break;
        }
    }
    (x, iter, fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbfgs_finds_a_quadratic_minimum() {
        let (x, _, fx) = lbfgs(
            |x, g| {
                g[0] = 2.0 * (x[0] - 3.0);
                g[1] = 20.0 * (x[1] + 1.0);
                (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2)
            },
            vec![0.0, 0.0],
            5,
            100,
            1e-10,
        );
        assert!(
            (x[0] - 3.0).abs() < 1e-5 && (x[1] + 1.0).abs() < 1e-5,
            "{x:?}"
        );
        assert!(fx < 1e-9);
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        let rows: Vec<Row> = vec![
            vec![(0, 1.0), (2, 0.5)],
            vec![(1, 1.0)],
            vec![(0, 0.3), (1, 0.7)],
        ];
        let targets = [vec![0usize, 2], vec![1], vec![2, 0, 1]];
        let p = Softmax {
            rows: &rows,
            targets: &targets,
            secondary_share: 0.3,
            d: 3,
            k: 3,
            l2: 0.1,
            prior: &[0.2; 9],
            class_weight: vec![1.0, 2.0, 0.5],
        };
        let x: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut g = vec![0.0; 12];
        let f0 = p.loss_grad(&x, &mut g);
        for i in 0..12 {
            let mut xp = x.clone();
            xp[i] += 1e-6;
            let fp = p.loss_grad(&xp, &mut [0.0; 12]);
            assert!(((fp - f0) / 1e-6 - g[i]).abs() < 1e-4, "coordinate {i}");
        }
    }

    #[test]
    fn fitting_separates_separable_classes() {
        let rows: Vec<Row> = (0..30).map(|i| vec![((i % 3) as u32, 1.0)]).collect();
        let targets: Vec<Vec<usize>> = (0..30).map(|i| vec![i % 3]).collect();
        let p = Softmax {
            rows: &rows,
            targets: &targets,
            secondary_share: 0.0,
            d: 3,
            k: 3,
            l2: 1e-3,
            prior: &[0.0; 9],
            class_weight: vec![1.0; 3],
        };
        let (x, _, _) = lbfgs(|x, g| p.loss_grad(x, g), vec![0.0; 12], 10, 200, 1e-8);
        let mut z = vec![0.0; 3];
        logits(&rows[1], &x[..9], &x[9..], 3, &mut z);
        assert!(z[1] > z[0] && z[1] > z[2], "{z:?}");
    }
}
