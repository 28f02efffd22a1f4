//! The prepare-assets stage: the encoder (located outside the bundle first, so a damaged
//! bundle can be rebuilt), the taxonomy and, when asked, the awards → the deployment bundle;
//! and the re-check of an existing bundle.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::{Layout, StageError};
use crate::assets::bundle::{self, BundleError, Prepared};
use crate::cet::params::ScorerChoice;
use crate::cet::taxonomy::Taxonomy;
use crate::config::Settings;
use crate::embed::models::{self, Lookup, ModelFiles};
use crate::io::bundle::{DeploymentMetadata, FileCheckError};

/// The bundle folder: the parent of embed.bundle_dir (`artifacts/`).
pub fn bundle_dir(s: &Settings) -> PathBuf {
    models::bundle_root(&s.embed)
}

/// What `verify` found.
#[derive(Debug)]
pub enum Verified {
    /// The folder holds no bundle (no deployment_metadata.json).
    Missing,
    Ok(DeploymentMetadata),
    /// A checksum, a missing file or a stale taxonomy or model: the bundle must be rebuilt.
    Failed(BundleError),
}

/// Re-checks the bundle: every checksum, the model loads, the taxonomy and model are current.
pub fn verify(s: &Settings) -> Result<Verified, StageError> {
    let out = bundle_dir(s);
    if !out.join("deployment_metadata.json").is_file() {
        return Ok(Verified::Missing);
    }
    let taxonomy = Taxonomy::load(&s.cet.taxonomy)?;
    let e = &s.embed;
    match bundle::verify(&out, &e.model, &taxonomy, e, &Device::Cpu) {
        Ok(meta) => Ok(Verified::Ok(meta)),
        Err(
            err @ (BundleError::Files(FileCheckError::Checksum { .. } | FileCheckError::Missing(_))
            | BundleError::Stale(_)),
        ) => Ok(Verified::Failed(err)),
        Err(err) => Err(err.into()),
    }
}

/// Builds or refreshes the bundle; with `award_embeddings`, also embeds the awards (`awards`,
/// else the layout's) and adds each area's High-band awards to its centroid. Returns the
/// bundle and where the encoder came from.
pub fn prepare(
    s: &Settings,
    award_embeddings: bool,
    awards: Option<&Path>,
) -> Result<(Prepared, ModelFiles), StageError> {
    let e = &s.embed;
    let taxonomy = Taxonomy::load(&s.cet.taxonomy)?;
    let lookup = |bundle_dir| {
        models::locate(&Lookup {
            bundle_dir,
            ..Lookup::new(e, &e.model, e.model_dir.as_deref())
        })
    };
    let model = lookup(None).or_else(|_| lookup(Some(&e.bundle_dir)))?;
    // The base scorer (model, else rules) picks the High-band awards added to centroids.
    let base = match award_embeddings {
        true => Some(super::classify::load_classifier(s, Some(ScorerChoice::Auto), false)?.0),
        false => None,
    };
    let awards_path = awards.map_or_else(|| Layout::new(s).awards(), Path::to_path_buf);
    let inputs = base.as_ref().map(|c| bundle::AwardInputs {
        path: &awards_path,
        classifier: c,
    });
    let prepared = bundle::prepare(
        &bundle_dir(s),
        &model,
        &taxonomy,
        e,
        &Device::Cpu,
        inputs.as_ref(),
    )?;
    Ok((prepared, model))
}
