//! `sbir prepare-assets`: copy the encoder into the bundle, embed the CET areas, list every
//! file with its checksum; `--verify` re-checks an existing bundle without writing.

use std::path::PathBuf;

use candle_core::Device;
use sbir::assets::bundle::{self, BundleError};
use sbir::cet::params::ScorerChoice;
use sbir::cet::taxonomy::Taxonomy;
use sbir::config::FlagOverride;
use sbir::embed::models::{self, Lookup};
use sbir::io::bundle::FileCheckError;
use sbir::io::checks::Status;

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
    let e = &s.embed;
    let out = models::bundle_root(e);
    let taxonomy = Taxonomy::load(&s.cet.taxonomy)?;
    if a.verify {
        // A fresh clone has no bundle: say so, not which file failed to open.
        if !out.join("deployment_metadata.json").is_file() {
            eprintln!(
                "no bundle in {} to verify (deployment_metadata.json is missing): `sbir prepare-assets` builds one",
                out.display()
            );
            return Ok(Status::Fail);
        }
        return match bundle::verify(&out, &e.model, &taxonomy, e, &Device::Cpu) {
            Ok(meta) => {
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
                Ok(Status::Pass)
            }
            Err(
                err @ (BundleError::Files(
                    FileCheckError::Checksum { .. } | FileCheckError::Missing(_),
                )
                | BundleError::Stale(_)),
            ) => {
                eprintln!("bundle {} failed verification: {err}", out.display());
                Ok(Status::Fail)
            }
            Err(err) => Err(err.into()),
        };
    }
    // The source is looked up outside the bundle first, so a damaged bundle can be rebuilt;
    // the bundle itself is the source of last resort.
    let lookup = |bundle_dir| {
        models::locate(&Lookup {
            bundle_dir,
            ..Lookup::new(e, &e.model, e.model_dir.as_deref())
        })
    };
    let model = lookup(None).or_else(|_| lookup(Some(&e.bundle_dir)))?;
    // The base scorer (model, else rules) picks the High-band awards added to centroids.
    let base = match a.with_award_embeddings {
        true => Some(super::classify_cet::load_classifier(s, Some(ScorerChoice::Auto), false)?.0),
        false => None,
    };
    let awards_path = a
        .awards
        .clone()
        .unwrap_or_else(|| super::classify_cet::awards_path(s));
    let awards = base.as_ref().map(|c| bundle::AwardInputs {
        path: &awards_path,
        classifier: c,
    });
    let prepared = bundle::prepare(&out, &model, &taxonomy, e, &Device::Cpu, awards.as_ref())?;
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
