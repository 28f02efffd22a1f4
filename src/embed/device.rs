//! What the encoder needs from its device: how many padded tokens a batch may hold (a budget
//! on the CPU, what fits under the memory cap on a GPU) and the device memory in use.

use candle_core::Device;

use super::bert::BertConfig;

const MB: usize = 1024 * 1024;

/// Bytes one padded token holds at the peak of a BERT layer over sequences of `len` tokens
/// (f32): the hidden state and its copies around attention, every head's attention scores and
/// probabilities, the feed-forward activations before and after the nonlinearity.
pub fn activation_bytes_per_token(c: &BertConfig, len: usize) -> usize {
    4 * (12 * c.hidden_size + 2 * c.intermediate_size + 3 * c.num_attention_heads * len)
}

/// Padded tokens per batch: `cpu_tokens` on the CPU; on a GPU, as many tokens of the model's
/// longest sequences as fit under `cap_mb` beside `weight_bytes` of weights (at least one).
pub fn batch_tokens(
    device: &Device,
    c: &BertConfig,
    weight_bytes: u64,
    cpu_tokens: usize,
    cap_mb: usize,
) -> usize {
    if device.is_cpu() {
        return cpu_tokens;
    }
    tokens_under_cap(c, weight_bytes, cap_mb)
}

fn tokens_under_cap(c: &BertConfig, weight_bytes: u64, cap_mb: usize) -> usize {
    let len = c.max_position_embeddings;
    let room = (cap_mb * MB).saturating_sub(weight_bytes as usize);
    (room / activation_bytes_per_token(c, len) / len).max(1) * len
}

/// Memory in use on the device (total − free, this process and any other), in MB; `None` on
/// the CPU.
pub fn memory_in_use_mb(device: &Device) -> Option<f64> {
    #[cfg(feature = "cuda")]
    if let Ok(d) = device.as_cuda_device() {
        let (free, total) = d.cuda_stream().context().mem_get_info().ok()?;
        return Some(crate::metrics::round((total - free) as f64 / MB as f64, 1));
    }
    let _ = device;
    None
}

/// The larger of two memory readings, either of which may be missing.
pub fn peak(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> BertConfig {
        serde_json::from_str(
            r#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                "num_attention_heads": 12, "intermediate_size": 1536,
                "max_position_embeddings": 512}"#,
        )
        .expect("config")
    }

    #[test]
    fn gpu_batches_fill_the_cap_in_whole_longest_sequences() {
        let c = minilm();
        // 4·(12·384 + 2·1536 + 3·12·512) = 104,448 bytes a token at 512 tokens.
        assert_eq!(activation_bytes_per_token(&c, 512), 104_448);
        let weights = 90 * MB as u64;
        let tokens = tokens_under_cap(&c, weights, 12_288);
        assert_eq!(tokens % 512, 0);
        let used = weights as usize + tokens * activation_bytes_per_token(&c, 512);
        assert!(used <= 12_288 * MB && used + 512 * 104_448 > 12_288 * MB);
        // A cap below the weights still runs one sequence at a time.
        assert_eq!(tokens_under_cap(&c, weights, 64), 512);
        assert_eq!(batch_tokens(&Device::Cpu, &c, weights, 2048, 12_288), 2048);
    }
}
