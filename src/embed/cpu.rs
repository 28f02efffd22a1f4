//! What the encoder's CPU ops share: the f32 values behind a contiguous tensor, and what a
//! linear layer's weights held by a CPU kernel (packed f32, int8) answer.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout};
use rayon::prelude::*;

/// The f32 values `l` covers in `s` when the tensor is f32 and contiguous, else an error
/// naming `op`.
pub fn f32_values<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op} takes contiguous f32 tensors"),
    }
}

/// The weights of a linear layer in a form a CPU kernel multiplies by rows of inputs.
pub trait RowProduct: std::fmt::Debug + Send + Sync {
    /// Input width.
    fn inp(&self) -> usize;
    /// Output width.
    fn out(&self) -> usize;
    /// `then(x · Wᵀ + bias)` for `x` row-major `rows × inp`; the result is row-major
    /// `rows × out`. `then` runs on blocks of finished rows while they are in cache (a fused
    /// activation).
    fn matmul(&self, x: &[f32], bias: &[f32], then: Option<fn(&mut [f32])>) -> Vec<f32>;
}

/// A row-major `rows × out` result made by parallel tasks of `task_rows` rows: `fill(first, y)`
/// writes rows `first..` into `y` (left unzeroed: zeroing took 4 % of an int8 encode), then
/// `then` runs on them while they are in cache.
///
/// # Safety
/// `fill` must write every value of the rows it is given.
pub unsafe fn rows_by_task(
    rows: usize,
    out: usize,
    task_rows: usize,
    then: Option<fn(&mut [f32])>,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * out);
    y.spare_capacity_mut()[..rows * out]
        .par_chunks_mut(task_rows * out)
        .enumerate()
        .for_each(|(task, y)| {
            fill(task * task_rows, y);
            // SAFETY: `fill` wrote every value of these rows (the caller's promise).
            let y = unsafe { &mut *(std::ptr::from_mut(y) as *mut [f32]) };
            if let Some(f) = then {
                f(y);
            }
        });
    // SAFETY: the tasks above wrote all `rows × out` values.
    unsafe { y.set_len(rows * out) };
    y
}
