//! `sbir prepare-assets`: copy the encoder into the bundle, embed the CET areas, list every
//! file with its checksum; `--verify` re-checks an existing bundle without writing.

use std::path::PathBuf;

use sbir::config::FlagOverride;
use sbir::io::checks::Status;
use sbir::stages::prepare_assets::{self, Verified};

use super::Env;

/// Flags of `sbir prepare-assets`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir prepare-assets                         # artifacts/: models/<name>/, embeddings/cet_areas.npy, deployment_metadata.json\n  sbir prepare-assets --model-dir ~/models/all-MiniLM-L6-v2\n  sbir prepare-assets --with-award-embeddings   # + embeddings/awards.npy, award examples in the centroids\n  sbir prepare-assets --verify                # checksums, model load, taxonomy and model still current"
)]
pub struct Args {
    /// Bundle folder [default: the parent of embed.bundle_dir, i.e. artifacts/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Encoder model id [default: embed.model].
    #[arg(long)]
    pub model: Option<String>,
    /// Take the encoder's files from this folder.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Also embed every award of the awards file (classify-cet's input, or --awards) into
    /// embeddings/awards.npy, reused by the embedding scorer while an award's text is
    /// unchanged, and add the High-band awards of each area to its centroid.
    #[arg(long)]
    pub with_award_embeddings: bool,
    /// Awards Parquet for --with-award-embeddings [default: as classify-cet].
    #[arg(long, requires = "with_award_embeddings")]
    pub awards: Option<PathBuf>,
    /// Re-check the existing bundle (every checksum, the model loads, not stale); write nothing.
    #[arg(long)]
    pub verify: bool,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        if let Some(out) = &self.out {
            let dir = out.join("models").display().to_string();
            o.push(FlagOverride::new("embed.bundle_dir", dir, "--out"));
        }
        if let Some(m) = &self.model {
            o.push(FlagOverride::new("embed.model", m.as_str(), "--model"));
        }
        o.extend(FlagOverride::path(
            "embed.model_dir",
            self.model_dir.as_deref(),
            "--model-dir",
        ));
        o
    }
}

/// Runs `sbir prepare-assets`.
pub fn run(a: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let out = prepare_assets::bundle_dir(s);
    if a.verify {
        return Ok(match prepare_assets::verify(s)? {
            // A fresh clone has no bundle: say so, not which file failed to open.
            Verified::Missing => {
                eprintln!(
                    "no bundle in {} to verify (deployment_metadata.json is missing): `sbir prepare-assets` builds one",
                    out.display()
                );
                Status::Fail
            }
            Verified::Failed(err) => {
                eprintln!("bundle {} failed verification: {err}", out.display());
                Status::Fail
            }
            Verified::Ok(meta) => {
                if !env.quiet {
                    eprintln!(
                        "bundle {} OK: {} files, {:.1} MB, model {}, taxonomy {}",
                        out.display(),
                        meta.files.len(),
                        meta.total_bytes as f64 / 1e6,
                        meta.model_id,
                        meta.taxonomy_version
                    );
                }
                Status::Pass
            }
        });
    }
    let (prepared, model) =
        prepare_assets::prepare(s, a.with_award_embeddings, a.awards.as_deref())?;
    let m = &prepared.metadata;
    if !env.quiet {
        eprintln!(
            "bundle {}: {} ({} from {}), taxonomy {}; {}; {} files, {:.1} MB",
            prepared.dir.display(),
            m.model_id,
            m.steps.get("model").map_or("?", String::as_str),
            model.dir.display(),
            m.taxonomy_version,
            m.steps
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            m.files.len(),
            m.total_bytes as f64 / 1e6
        );
    }
    Ok(Status::Pass)
}
