//! Dense encoder benchmark: the machine's f32 matmul peak (candle, square matrices), then
//! all-MiniLM-L6-v2 on batches of 128-token sequences in fp32 and in int8, reported as
//! sequences/s, GFLOP/s and the fraction of that peak, with peak RSS. FLOPs per sequence count
//! every matmul of the encoder: per token and layer 2·(4·h² + 2·h·i) for the projections and
//! feed-forward plus 2·2·t·h for attention (≈ 22.4 MFLOP per token for MiniLM-L6 at t = 128).
//!
//! Run: `cargo bench --bench embed` (needs the model: `scripts/fetch-model.sh`;
//! `SBIR_BENCH_SEQS=256` sets the sequence count, `SBIR_BENCH_BATCH_TOKENS` the batch budget).

mod common;

use std::time::Instant;

use candle_core::Device;
use sbir::config::Precision;
use sbir::embed::encoder::{DenseEncoder, EncoderOptions};
use sbir::embed::models::{self, Lookup};
use sbir::metrics;

// The same allocator as the `sbir` binary: candle allocates every intermediate tensor afresh.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let peak = sbir::embed::perf::matmul_peak_gflops(&Device::Cpu).expect("matmul");
    println!("matmul peak: {peak:.1} GFLOP/s");
    let mut settings = sbir::config::load(&sbir::config::Sources::default())
        .expect("default settings")
        .settings;
    settings.embed.hf_cache = models::default_hf_cache(|v| std::env::var(v).ok());
    let e = &settings.embed;
    let model = match models::locate(&Lookup {
        allow_download: false,
        ..Lookup::new(e, &e.model, e.model_dir.as_deref())
    }) {
        Ok(m) => m,
        Err(err) => {
            eprintln!("skipped the encoder: {err}");
            return;
        }
    };
    let budget = common::env_u64("SBIR_BENCH_BATCH_TOKENS", e.batch_tokens as u64) as usize;
    let (t, n) = (128usize, common::env_u64("SBIR_BENCH_SEQS", 256) as usize);
    // Word-piece ids from the ordinary vocabulary, framed by [CLS] (101) and [SEP] (102).
    let seqs: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            let mut s = vec![101u32];
            s.extend((0..t - 2).map(|j| 2000 + ((i * 131 + j * 17) % 20000) as u32));
            s.push(102);
            s
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    for precision in [Precision::Fp32, Precision::Int8] {
        let options = EncoderOptions {
            precision,
            batch_tokens: budget,
            ..EncoderOptions::from(e)
        };
        let encoder = DenseEncoder::load(&model, &Device::Cpu, options).expect("load");
        encoder.encode(&refs[..budget / t]).expect("warm-up");
        metrics::reset_peak_rss();
        let start = Instant::now();
        encoder.encode(&refs).expect("encode");
        let secs = start.elapsed().as_secs_f64();
        let per_token = encoder.flops_per_token(t);
        let per_s = n as f64 / secs;
        let gflops = per_s * t as f64 * per_token / 1e9;
        println!(
            "MiniLM-L6 {precision:?}, {n} × {t} tokens, batches of {budget} tokens: {per_s:.1} seqs/s, {gflops:.1} GFLOP/s = {:.0}% of the {peak:.0} GFLOP/s f32 matmul peak; peak RSS {:.0} MB",
            100.0 * gflops / peak,
            metrics::peak_rss_mb().unwrap_or(0.0)
        );
    }
}
