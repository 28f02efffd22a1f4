//! The on-disk format of the `prepare-assets` bundle: `deployment_metadata.json` (every file
//! with its size and sha256), the centroid metadata, and the checks of both. Model lookup and
//! the embedding scorer read it; `assets::bundle` writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IoError;
use super::input::sha256_file;

/// Format of the bundle layout and metadata.
pub const BUNDLE_VERSION: &str = "sbir-bundle-1";

/// A listed bundle file is missing or not what the metadata says.
#[derive(Debug, thiserror::Error)]
pub enum FileCheckError {
    #[error("bundle file {path} is corrupted: sha256 {actual}, metadata says {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("bundle file {0} is listed in deployment_metadata.json but missing")]
    Missing(PathBuf),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What a set of centroids must fit in a taxonomy: its area ids in order, its version, and
/// its file (for the message).
pub struct TaxonomyIdentity {
    pub ids: Vec<String>,
    pub version: String,
    pub path: PathBuf,
}

/// One file of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
}

/// `deployment_metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentMetadata {
    pub bundle_version: String,
    pub tool_version: String,
    pub created_at: String,
    pub model_id: String,
    pub model_revision: Option<String>,
    pub taxonomy_version: String,
    /// What this run did per part: `built`, `copied` or `unchanged`.
    pub steps: BTreeMap<String, String>,
    /// Path inside the bundle → size and checksum.
    pub files: BTreeMap<String, FileEntry>,
    pub total_bytes: u64,
}

/// `embeddings/cet_areas.metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CentroidMetadata {
    /// Row order of `cet_areas.npy`.
    pub cet_ids: Vec<String>,
    pub taxonomy_version: String,
    pub model_id: String,
    /// sha256 of the model's weights.
    pub model_sha256: String,
    pub dims: usize,
    pub method: String,
    /// Texts embedded per area (the definition line and each keyword phrase).
    pub texts_per_area: Vec<usize>,
    /// Per area, what its centroid averages (definition, keywords, award examples).
    #[serde(default)]
    pub built_from: Vec<String>,
    /// Hash of everything the centroids depend on; equal means nothing to rebuild.
    pub inputs_sha256: String,
}

impl CentroidMetadata {
    /// Reads `embeddings/cet_areas.metadata.json` of the bundle in `dir`.
    pub fn read(dir: &Path) -> Result<Self, IoError> {
        let path = dir.join("embeddings/cet_areas.metadata.json");
        let bytes = std::fs::read(&path).map_err(|e| IoError::read(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| IoError::read(&path, e))
    }

    /// Why these centroids do not fit `taxonomy` (area ids and version) and the model (id and
    /// weights sha256), or None when they do.
    pub fn staleness(
        &self,
        taxonomy: &TaxonomyIdentity,
        model_id: &str,
        model_sha: &str,
    ) -> Option<String> {
        if self.cet_ids != taxonomy.ids || self.taxonomy_version != taxonomy.version {
            return Some(format!(
                "centroids built for taxonomy {}, {} is {}",
                self.taxonomy_version,
                taxonomy.path.display(),
                taxonomy.version
            ));
        }
        (self.model_id != model_id || self.model_sha256 != model_sha).then(|| {
            format!(
                "centroids built with model {} ({}), the encoder in use is {model_id} ({})",
                self.model_id,
                &self.model_sha256[..self.model_sha256.len().min(12)],
                &model_sha[..model_sha.len().min(12)]
            )
        })
    }
}

/// Reads `deployment_metadata.json` of the bundle in `dir`.
pub fn read_metadata(dir: &Path) -> Result<DeploymentMetadata, IoError> {
    let path = dir.join("deployment_metadata.json");
    let bytes = std::fs::read(&path).map_err(|e| IoError::read(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| IoError::read(&path, e))
}

/// Checks the listed files whose bundle path starts with `prefix` (all with `""`) against
/// their sizes and checksums.
pub fn check_files(
    dir: &Path,
    meta: &DeploymentMetadata,
    prefix: &str,
) -> Result<(), FileCheckError> {
    for (rel, entry) in meta.files.iter().filter(|(r, _)| r.starts_with(prefix)) {
        let path = dir.join(rel);
        if !path.is_file() {
            return Err(FileCheckError::Missing(path));
        }
        let actual = sha256_file(&path)?;
        if actual != entry.sha256 {
            return Err(FileCheckError::Checksum {
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
    }
    Ok(())
}
