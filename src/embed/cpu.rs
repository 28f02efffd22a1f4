//! What each of the encoder's CPU ops reads first: the f32 values behind a contiguous tensor.

use candle_core::{CpuStorage, Layout};

/// The f32 values `l` covers in `s` when the tensor is f32 and contiguous, else an error
/// naming `op`.
pub fn f32_values<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op} takes contiguous f32 tensors"),
    }
}
