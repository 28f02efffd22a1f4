//! The dense sentence encoder: BERT, mean pooling over the attention mask, L2 normalisation
//! (what sentence-transformers does for all-MiniLM-L6-v2). Sequences are sorted by length and
//! packed into batches under a padded-token budget, so little work goes to padding.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::bert::{self, Bert, BertConfig};
use super::{EmbedError, device};
use crate::config::{EmbedSettings, Precision};
use crate::embed::models::ModelFiles;

/// How an encoder runs: its arithmetic and the size of its batches.
#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    pub precision: Precision,
    /// Padded tokens per batch on the CPU.
    pub batch_tokens: usize,
    /// On a GPU, batches are sized to keep activations under this many MB.
    pub gpu_memory_cap_mb: usize,
}

impl From<&EmbedSettings> for EncoderOptions {
    fn from(s: &EmbedSettings) -> Self {
        Self {
            precision: s.precision,
            batch_tokens: s.batch_tokens,
            gpu_memory_cap_mb: s.gpu_memory_cap_mb,
        }
    }
}

/// A loaded sentence encoder.
pub struct DenseEncoder {
    bert: Bert,
    batch_tokens: usize,
    precision: Precision,
}

/// Vectors for a list of sequences, in input order, and what encoding them took.
pub struct Encoded {
    /// Row-major `n × dims`.
    pub vectors: Vec<f32>,
    /// Wall time of each batch, in milliseconds.
    pub batch_ms: Vec<f64>,
    /// Tokens encoded, padding excluded / included.
    pub tokens: u64,
    pub padded_tokens: u64,
    /// The most device memory in use after a batch, in MB (GPU only).
    pub device_memory_mb: Option<f64>,
}

impl DenseEncoder {
    /// Loads the encoder's config and weights from `model`.
    pub fn load(
        model: &ModelFiles,
        device: &Device,
        options: EncoderOptions,
    ) -> Result<Self, EmbedError> {
        if options.precision == Precision::Int8 && !device.is_cpu() {
            return Err(EmbedError::Unsupported(
                "int8 precision runs on the CPU only: use fp32 with --device cuda".into(),
            ));
        }
        let config = BertConfig::read(&model.file("config.json"))?;
        let weights = model.file("model.safetensors");
        let weight_bytes = std::fs::metadata(&weights).map_or(0, |m| m.len());
        let vb = bert::var_builder(&weights, device)?;
        let bert = bert::load_encoder(vb, &config, options.precision)
            .map_err(|e| EmbedError::model(&weights, e))?;
        let batch_tokens = device::batch_tokens(
            device,
            &config,
            weight_bytes,
            options.batch_tokens,
            options.gpu_memory_cap_mb,
        );
        Ok(Self {
            bert,
            batch_tokens,
            precision: options.precision,
        })
    }

    /// The arithmetic of the linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Vector dimension.
    pub fn dims(&self) -> usize {
        self.bert.config.hidden_size
    }

    /// FLOPs the encoder spends per token in a sequence of `t` tokens.
    pub fn flops_per_token(&self, t: usize) -> f64 {
        let c = &self.bert.config;
        super::perf::bert_flops_per_token(
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers,
            t,
        )
    }

    /// Longest sequence the model takes.
    pub fn max_tokens(&self) -> usize {
        self.bert.config.max_position_embeddings
    }

    /// Embeds token-id sequences (special tokens included).
    pub fn encode(&self, seqs: &[&[u32]]) -> Result<Encoded, EmbedError> {
        let dims = self.dims();
        let mut vectors = vec![0f32; seqs.len() * dims];
        let mut out = Encoded {
            vectors: Vec::new(),
            batch_ms: Vec::new(),
            tokens: 0,
            padded_tokens: 0,
            device_memory_mb: None,
        };
        let all = batches(seqs, self.batch_tokens);
        let done = all.iter().map(|batch| {
            let start = Instant::now();
            let longest = batch.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
            let (ids, mask) = pad(batch.iter().map(|&i| seqs[i]), longest);
            let rows = self.pooled(&ids, &mask, batch.len(), longest)?;
            Ok::<_, EmbedError>((rows, longest, start.elapsed().as_secs_f64() * 1e3))
        });
        for (batch, result) in all.iter().zip(done) {
            let (rows, longest, ms) = result?;
            for (&i, row) in batch.iter().zip(rows.chunks_exact(dims)) {
                vectors[i * dims..(i + 1) * dims].copy_from_slice(row);
                out.tokens += seqs[i].len() as u64;
            }
            out.padded_tokens += (batch.len() * longest) as u64;
            out.batch_ms.push(ms);
            let used = device::memory_in_use_mb(&self.bert.device);
            out.device_memory_mb = device::peak(out.device_memory_mb, used);
        }
        out.vectors = vectors;
        Ok(out)
    }

    fn pooled(
        &self,
        ids: &[u32],
        mask: &[u32],
        rows: usize,
        len: usize,
    ) -> Result<Vec<f32>, EmbedError> {
        let run = || -> candle_core::Result<Vec<f32>> {
            let dev = &self.bert.device;
            let ids = Tensor::from_slice(ids, (rows, len), dev)?;
            let mask = Tensor::from_slice(mask, (rows, len), dev)?;
            let hidden = self.bert.forward(&ids, &ids.zeros_like()?, &mask)?;
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&m)?.sum(1)?;
            let mean = summed.broadcast_div(&m.sum(1)?.clamp(1e-9, f64::MAX)?)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.flatten_all()?.to_vec1::<f32>()
        };
        run().map_err(|e| EmbedError::Encode(e.to_string()))
    }
}

/// Indices of `seqs` grouped into batches: longest first, each batch's rows × longest length
/// within `budget` tokens.
pub fn batches(seqs: &[&[u32]], budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut longest = 0;
    for i in order {
        let len = seqs[i].len().max(1);
        if !current.is_empty() && (current.len() + 1) * longest.max(len) > budget {
            out.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Row-major ids and attention mask, padded with id 0 to `len`.
pub fn pad<'a>(seqs: impl Iterator<Item = &'a [u32]>, len: usize) -> (Vec<u32>, Vec<u32>) {
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for s in seqs {
        ids.extend_from_slice(s);
        ids.resize(ids.len() + len - s.len(), 0);
        mask.resize(mask.len() + s.len(), 1);
        mask.resize(mask.len() + len - s.len(), 0);
    }
    (ids, mask)
}

#[cfg(test)]
mod tests {
    use super::{batches, pad};

    #[test]
    fn batches_respect_the_budget_and_keep_every_index() {
        let seqs: Vec<Vec<u32>> = [5, 1, 9, 3, 9, 2].iter().map(|&n| vec![1; n]).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let b = batches(&refs, 18);
        assert_eq!(b, vec![vec![2, 4], vec![0, 3, 5], vec![1]]);
        let (ids, mask) = pad([&[7u32, 8][..], &[9][..]].into_iter(), 3);
        assert_eq!(ids, [7, 8, 0, 9, 0, 0]);
        assert_eq!(mask, [1, 1, 0, 1, 0, 0]);
    }
}
