//! How close int8 vectors are to fp32 ones: the run's first chunks, encoded again with fp32
//! weights, compared by cosine (the figures `processing_summary.json` reports for int8 runs).

use candle_core::Device;
use serde::Serialize;

use super::EmbedError;
use super::encoder::{DenseEncoder, EncoderOptions};
use super::models::ModelFiles;
use crate::config::Precision;
use crate::metrics::round;

/// Below this cosine to fp32 on any sampled chunk, an int8 run carries a warning.
pub const MIN_COSINE: f64 = 0.99;

/// Cosine between the int8 and fp32 vectors of the same chunks.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub chunks: usize,
    pub min_cosine: f64,
    pub mean_cosine: f64,
}

/// The first chunks of a run and their int8 vectors.
#[derive(Debug, Default)]
pub struct Sample {
    size: usize,
    seqs: Vec<Vec<u32>>,
    vectors: Vec<f32>,
}

impl Sample {
    /// An empty sample that will keep `size` chunks.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            ..Self::default()
        }
    }

    /// Keeps chunks (with their vectors, `dims` each) until the sample is full.
    pub fn offer(&mut self, seqs: &[&[u32]], vectors: &[f32], dims: usize) {
        for (s, v) in seqs.iter().zip(vectors.chunks_exact(dims)) {
            if self.seqs.len() == self.size {
                return;
            }
            self.seqs.push(s.to_vec());
            self.vectors.extend_from_slice(v);
        }
    }

    /// Encodes the sample with `model`'s fp32 weights and compares; `None` when it is empty.
    pub fn measure(
        self,
        model: &ModelFiles,
        device: &Device,
        options: EncoderOptions,
    ) -> Result<Option<Agreement>, EmbedError> {
        if self.seqs.is_empty() {
            return Ok(None);
        }
        let fp32 = EncoderOptions {
            precision: Precision::Fp32,
            ..options
        };
        let encoder = DenseEncoder::load(model, device, fp32)?;
        let refs: Vec<&[u32]> = self.seqs.iter().map(Vec::as_slice).collect();
        let reference = encoder.encode(&refs)?.vectors;
        Ok(Some(agreement(&self.vectors, &reference, encoder.dims())))
    }
}

/// Cosines of row pairs of two row-major matrices (rows L2-normalised, as the encoder's are).
fn agreement(a: &[f32], b: &[f32], dims: usize) -> Agreement {
    let cos: Vec<f64> = a
        .chunks_exact(dims)
        .zip(b.chunks_exact(dims))
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| f64::from(p * q)).sum())
        .collect();
    Agreement {
        chunks: cos.len(),
        min_cosine: round(cos.iter().copied().fold(f64::INFINITY, f64::min), 6),
        mean_cosine: round(cos.iter().sum::<f64>() / cos.len() as f64, 6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_stops_when_full_and_cosines_pair_rows() {
        let mut s = Sample::new(8);
        let seq = [1u32, 2, 3];
        let many = vec![&seq[..]; 5];
        s.offer(&many, &[1.0; 10], 2);
        s.offer(&many, &[1.0; 10], 2);
        assert_eq!(s.seqs.len(), 8);
        assert_eq!(s.vectors.len(), 16);
        let a = [1.0, 0.0, 0.6, 0.8];
        let b = [1.0, 0.0, 0.8, 0.6];
        let g = agreement(&a, &b, 2);
        assert_eq!((g.chunks, g.min_cosine, g.mean_cosine), (2, 0.96, 0.98));
    }
}
