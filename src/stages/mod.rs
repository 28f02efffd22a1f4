//! The pipeline's stages as `sbir <stage>`, `sbir run` and `sbir benchmark` all run them:
//! settings → the library's options → the library call → gates and counts in a checks file.
//! Nothing here prints: the caller reports what [`Done`] holds.

pub mod classify;
pub mod embed;
pub mod enrich;
pub mod graph;
pub mod ingest;
pub mod layout;
pub mod prepare_assets;

use std::path::PathBuf;

pub use layout::Layout;

use crate::assets::bundle::BundleError;
use crate::cet::CetError;
use crate::embed::EmbedError;
use crate::enrich::EnrichError;
use crate::graph::GraphError;
use crate::ingest::IngestError;
use crate::io::IoError;
use crate::io::checks::{Checks, Status};

/// A stage failed before it could judge its output.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    #[error(transparent)]
    Cet(#[from] CetError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl StageError {
    /// Errors caused by what the user gave (exit code 2) rather than by the run.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Ingest(e) => e.is_usage(),
            Self::Enrich(e) => e.is_usage(),
            Self::Cet(e) => e.is_usage(),
            Self::Graph(e) => e.is_usage(),
            Self::Bundle(BundleError::Embed(e)) | Self::Embed(e) => e.is_usage(),
            Self::Bundle(_) | Self::Io(_) => false,
        }
    }
}

/// A checks file a stage wrote, with its contents.
#[derive(Debug, Clone)]
pub struct Written {
    pub checks: Checks,
    pub path: PathBuf,
}

impl Written {
    /// Writes `checks` to `path`.
    pub fn write(checks: Checks, path: PathBuf) -> Result<Self, IoError> {
        let path = checks.write(&path)?;
        Ok(Self { checks, path })
    }
}

/// A finished stage: the checks files it wrote (in order) and the library's report.
pub struct Done<R> {
    pub checks: Vec<Written>,
    pub report: R,
}

impl<R> Done<R> {
    /// The worst status of the checks files: fail, else warn, else pass.
    pub fn status(&self) -> Status {
        worst(self.checks.iter().map(|w| w.checks.status))
    }
}

/// The worst of `statuses` (pass when there are none).
pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
    statuses.into_iter().max().unwrap_or(Status::Pass)
}
