//! What the encoder could do on this machine: the f32 matmul peak (candle, square matrices)
//! and the FLOPs a BERT encoder spends per token, so throughput can be reported as a
//! fraction of the peak.

use std::time::Instant;

use candle_core::{Device, Tensor};

use super::EmbedError;

/// Best GFLOP/s of candle's f32 matmul over 512², 1024² and 2048² products.
pub fn matmul_peak_gflops(dev: &Device) -> Result<f64, EmbedError> {
    let run = || -> candle_core::Result<f64> {
        let mut best: f64 = 0.0;
        for n in [512usize, 1024, 2048] {
            let a = Tensor::randn(0f32, 1.0, (n, n), dev)?;
            let b = Tensor::randn(0f32, 1.0, (n, n), dev)?;
            a.matmul(&b)?;
            let reps = (4096 / n).max(2);
            let t = Instant::now();
            for _ in 0..reps {
                a.matmul(&b)?;
            }
            let secs = t.elapsed().as_secs_f64();
            best = best.max(reps as f64 * 2.0 * (n as f64).powi(3) / secs / 1e9);
        }
        Ok(best)
    };
    run().map_err(|e| EmbedError::Encode(e.to_string()))
}

/// FLOPs per token of a BERT encoder at sequence length `t`: per layer 2·(4·h² + 2·h·i) for the
/// projections and feed-forward plus 2·2·t·h for attention (≈ 22.4 MFLOP for MiniLM-L6 at
/// t = 128).
pub fn bert_flops_per_token(hidden: usize, intermediate: usize, layers: usize, t: usize) -> f64 {
    let (h, i) = (hidden as f64, intermediate as f64);
    layers as f64 * (2.0 * (4.0 * h * h + 2.0 * h * i) + 4.0 * t as f64 * h)
}
