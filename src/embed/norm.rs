//! LayerNorm, with the residual sum before it when there is one, in one op over each row on the
//! CPU: candle's runs scalar code after a separate element-wise add, 6 % of an int8 encode.
//! Mean and variance are taken in two passes over the row, as PyTorch does.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::cpu::f32_values;
use super::simd::sum_by;

/// Rows a task normalises.
const ROWS_PER_TASK: usize = 32;

/// A LayerNorm layer: its parameters as a candle layer (other devices) and as slices (the CPU).
#[derive(Debug, Clone)]
pub struct Norm {
    layer: candle_nn::LayerNorm,
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Loads `weight`/`bias` (old checkpoints name them `gamma`/`beta`) of `size`.
    pub fn load(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        let (w, b) = if vb.contains_tensor("weight") {
            (vb.get(size, "weight")?, vb.get(size, "bias")?)
        } else {
            (vb.get(size, "gamma")?, vb.get(size, "beta")?)
        };
        Ok(Self {
            weight: w.to_vec1()?,
            bias: b.to_vec1()?,
            eps: eps as f32,
            layer: candle_nn::LayerNorm::new(w, b, eps),
        })
    }

    /// `LayerNorm(x)` over the last dimension.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() {
            x.contiguous()?.apply_op1_no_bwd(self)
        } else {
            self.layer.forward(x)
        }
    }

    /// `LayerNorm(y + residual)` over the last dimension.
    pub fn forward_sum(&self, y: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
        if y.device().is_cpu() {
            y.contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, self)
        } else {
            self.layer.forward(&(y + residual)?)
        }
    }

    /// The op's body: every row of `y` (plus `residual`'s, if any) normalised.
    fn rows(&self, y: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
        // The sum is made as the output is (one pass), not added to a copy of `y`.
        let mut out: Vec<f32> = match residual {
            Some(r) => y.par_iter().zip(r).map(|(y, r)| y + r).collect(),
            None => y.to_vec(),
        };
        out.par_chunks_mut(self.weight.len() * ROWS_PER_TASK)
            .for_each(|o| self.normalise(o));
        out
    }

    fn normalise(&self, rows: &mut [f32]) {
        normalise_rows(rows, &self.weight, &self.bias, self.eps);
    }

    /// The contiguous f32 slice a layout covers, with a row width that matches the layer.
    fn slice<'a>(&self, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
        let v = f32_values(s, l, "layer-norm")?;
        if l.dims().last() != Some(&self.weight.len()) {
            candle_core::bail!("layer-norm of {} over {:?}", self.weight.len(), l.shape());
        }
        Ok(v)
    }
}

impl CustomOp1 for Norm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = self.slice(s, l)?;
        Ok((CpuStorage::F32(self.rows(y, None)), l.shape().clone()))
    }
}

impl CustomOp2 for Norm {
    fn name(&self) -> &'static str {
        "residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("residual {:?} for {:?}", l2.shape(), l1.shape());
        }
        let (y, r) = (self.slice(s1, l1)?, self.slice(s2, l2)?);
        Ok((CpuStorage::F32(self.rows(y, Some(r))), l1.shape().clone()))
    }
}

super::simd::wide! {
    /// Each row of `rows` (rows as wide as `w`) to `(x − mean) / √(var + eps) · w + b`.
    fn normalise_rows(rows: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
        let n = w.len() as f32;
        for row in rows.chunks_exact_mut(w.len()) {
            let mean = sum_by(row, |x| x) / n;
            let var = sum_by(row, |x| (x - mean) * (x - mean)) / n;
            let inv = 1.0 / (var + eps).sqrt();
            for ((x, &w), &b) in row.iter_mut().zip(w).zip(b) {
                *x = (*x - mean) * inv * w + b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    #[test]
    fn matches_candle_layer_norm_with_and_without_the_residual() {
        let (rows, width) = (70, 48);
        let dev = Device::Cpu;
        let ramp = |n: usize, k: f32| -> Vec<f32> {
            (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * k).collect()
        };
        let tensors = HashMap::from([
            (
                "weight".to_string(),
                Tensor::new(ramp(width, 0.03), &dev).unwrap(),
            ),
            (
                "bias".to_string(),
                Tensor::new(ramp(width, 0.01), &dev).unwrap(),
            ),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let norm = Norm::load(vb, width, 1e-12).unwrap();
        let y = Tensor::from_vec(ramp(rows * width, 0.2), (rows, width), &dev).unwrap();
        let mut r = ramp(rows * width, -0.07);
        r.reverse();
        let r = Tensor::from_vec(r, (rows, width), &dev).unwrap();
        for (got, want) in [
            (norm.forward(&y).unwrap(), norm.layer.forward(&y).unwrap()),
            (
                norm.forward_sum(&y, &r).unwrap(),
                norm.layer.forward(&(&y + &r).unwrap()).unwrap(),
            ),
        ] {
            let diff = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "max difference {diff}");
        }
    }
}
