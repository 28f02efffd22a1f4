//! The `prepare-assets` bundle: the encoder's files, the CET area centroids as a NumPy array,
//! and `deployment_metadata.json` listing every file with its size and sha256, so start-up
//! needs no network and a corrupted or stale bundle is caught instead of used.
//!
//! Each file is written atomically; the model folder is assembled beside its destination
//! and renamed into place. Unchanged inputs (by hash) are not rebuilt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::{ModelFiles, bundle_name};
use crate::cet::taxonomy::Taxonomy;
use crate::config::EmbedSettings;
use crate::embed::EmbedError;
use crate::embed::chunk::Chunker;
use crate::embed::encoder::DenseEncoder;
use crate::embed::export::{VectorFormat, write_vectors};
use crate::io::IoError;
use crate::io::atomic::write_file;
use crate::io::input::sha256_file;

/// Format of the bundle layout and metadata.
pub const BUNDLE_VERSION: &str = "sbir-bundle-1";
/// How centroids are built; a change rebuilds them.
const CENTROID_METHOD: &str =
    "l2norm(0.5 * embed(name + ': ' + definition) + 0.5 * mean(embed(keyword)))";
/// Model files copied when present, beyond the three required ones.
const OPTIONAL_FILES: [&str; 6] = [
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "modules.json",
    "tokenizer_config.json",
    "LICENSE",
    "NOTICE",
];
/// Sentence embedded to prove the copied model loads and runs.
const PROBE: &str = "hello world";

/// A bundle failed a check.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle file {path} is corrupted: sha256 {actual}, metadata says {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("bundle file {0} is listed in deployment_metadata.json but missing")]
    Missing(PathBuf),
    #[error("stale bundle: {0}")]
    Stale(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Io(#[from] IoError),
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
    /// Hash of everything the centroids depend on; equal means nothing to rebuild.
    pub inputs_sha256: String,
}

/// What `prepare` did.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub metadata: DeploymentMetadata,
    pub dir: PathBuf,
}

/// Builds or refreshes the bundle in `out` from the located `model` and `taxonomy`.
pub fn prepare(
    out: &Path,
    model: &ModelFiles,
    taxonomy: &Taxonomy,
    settings: &EmbedSettings,
    device: &Device,
) -> Result<Prepared, BundleError> {
    let mut steps = BTreeMap::new();
    let name = bundle_name(&model.id);
    let model_dir = out.join("models").join(name);
    steps.insert("model".into(), copy_model(model, &model_dir)?);

    // Load from the bundle's copy: proves the copy works, and the probe is recorded.
    let bundled = ModelFiles {
        dir: model_dir.clone(),
        source: super::ModelSource::Bundle,
        ..model.clone()
    };
    let (encoder, chunker) = crate::embed::open_encoder(&bundled, device, settings)?;
    let probe = embed_texts(&encoder, &chunker, &[PROBE])?;
    if probe.iter().any(|x| !x.is_finite()) {
        return Err(
            EmbedError::model(&model_dir, "the probe sentence gave non-finite values").into(),
        );
    }

    // Every file is hashed once: the model's before the centroids (which record the
    // weights' hash), the rest after they are written.
    let mut files = BTreeMap::new();
    let entry = |path: &Path| -> Result<(String, FileEntry), IoError> {
        let rel = path
            .strip_prefix(out)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let size = std::fs::metadata(path)
            .map_err(|e| IoError::read(path, e))?
            .len();
        Ok((
            rel,
            FileEntry {
                size,
                sha256: sha256_file(path)?,
            },
        ))
    };
    for path in crate::io::files_under(&model_dir)? {
        let (rel, e) = entry(&path)?;
        files.insert(rel, e);
    }
    let weights = format!("models/{name}/model.safetensors");
    let model_sha = files[&weights].sha256.clone();
    steps.insert(
        "cet_embeddings".into(),
        build_centroids(out, &encoder, &chunker, taxonomy, &model.id, &model_sha)?,
    );
    write_file(
        &out.join("VERSION"),
        format!("{BUNDLE_VERSION}\n").as_bytes(),
    )
    .map_err(|e| IoError::write(&out.join("VERSION"), e))?;
    let emb = out.join("embeddings");
    for path in [
        emb.join("cet_areas.npy"),
        emb.join("cet_areas.metadata.json"),
        out.join("VERSION"),
    ] {
        let (rel, e) = entry(&path)?;
        files.insert(rel, e);
    }
    let metadata = DeploymentMetadata {
        bundle_version: BUNDLE_VERSION.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::io::checks::now_rfc3339(),
        model_id: model.id.clone(),
        model_revision: model.revision.clone(),
        taxonomy_version: taxonomy.version.clone(),
        steps,
        total_bytes: files.values().map(|f| f.size).sum(),
        files,
    };
    let path = out.join("deployment_metadata.json");
    let mut bytes = serde_json::to_vec_pretty(&metadata).map_err(|e| IoError::write(&path, e))?;
    bytes.push(b'\n');
    write_file(&path, &bytes).map_err(|e| IoError::write(&path, e))?;
    Ok(Prepared {
        metadata,
        dir: out.to_path_buf(),
    })
}

/// Copies the model's files into `dest` unless an identical copy is there; returns
/// `copied` or `unchanged`.
fn copy_model(model: &ModelFiles, dest: &Path) -> Result<String, BundleError> {
    let wanted: Vec<&str> = super::MODEL_FILES
        .iter()
        .copied()
        .chain(
            OPTIONAL_FILES
                .iter()
                .copied()
                .filter(|f| model.file(f).is_file()),
        )
        .collect();
    if model.dir == dest {
        return Ok("unchanged".into());
    }
    let same = wanted.iter().try_fold(true, |same, f| {
        let d = dest.join(f);
        Ok::<_, IoError>(same && d.is_file() && sha256_file(&d)? == sha256_file(&model.file(f))?)
    })?;
    if same {
        return Ok("unchanged".into());
    }
    let tmp = dest.with_file_name(format!(
        ".{}.tmp-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    for f in &wanted {
        let to = tmp.join(f);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| IoError::write(parent, e))?;
        }
        std::fs::copy(model.file(f), &to).map_err(|e| IoError::write(&to, e))?;
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&tmp, dest).map_err(|e| IoError::write(dest, e))?;
    Ok("copied".into())
}

/// L2-normalised embeddings of `texts`, row-major.
fn embed_texts(
    encoder: &DenseEncoder,
    chunker: &Chunker,
    texts: &[&str],
) -> Result<Vec<f32>, EmbedError> {
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| chunker.encode(t))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    Ok(encoder.encode(&refs)?.vectors)
}

/// Writes `cet_areas.npy` and its metadata unless their inputs are unchanged.
fn build_centroids(
    out: &Path,
    encoder: &DenseEncoder,
    chunker: &Chunker,
    taxonomy: &Taxonomy,
    model_id: &str,
    model_sha: &str,
) -> Result<String, BundleError> {
    let dir = out.join("embeddings");
    let meta_path = dir.join("cet_areas.metadata.json");
    let npy = dir.join("cet_areas.npy");
    let texts: Vec<Vec<String>> = taxonomy
        .areas
        .iter()
        .map(|a| {
            std::iter::once(format!("{}: {}", a.name, a.definition))
                .chain(a.keywords.iter().map(|k| k.phrase().to_string()))
                .collect()
        })
        .collect();
    let inputs = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for t in texts.iter().flatten() {
            h.update(t.as_bytes());
            h.update([0]);
        }
        h.update(taxonomy.version.as_bytes());
        h.update(model_sha.as_bytes());
        h.update(CENTROID_METHOD.as_bytes());
        crate::config::hex_prefix(&h.finalize(), 64)
    };
    let previous: Option<CentroidMetadata> = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if npy.is_file() && previous.is_some_and(|p| p.inputs_sha256 == inputs) {
        return Ok("unchanged".into());
    }
    let d = encoder.dims();
    let mut rows = Vec::with_capacity(texts.len() * d);
    for area in &texts {
        let refs: Vec<&str> = area.iter().map(String::as_str).collect();
        let v = embed_texts(encoder, chunker, &refs)?;
        let keywords = (area.len() - 1).max(1) as f32;
        let mut c: Vec<f32> = (0..d)
            .map(|j| {
                let kw: f32 = v.chunks(d).skip(1).map(|r| r[j]).sum::<f32>() / keywords;
                0.5 * v[j] + 0.5 * kw
            })
            .collect();
        let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        c.iter_mut().for_each(|x| *x /= norm);
        rows.extend(c);
    }
    let bytes: Vec<u8> = rows.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_vectors(
        &npy,
        VectorFormat::Npy,
        d,
        texts.len() as u64,
        &mut bytes.as_slice(),
    )
    .map_err(|e| IoError::write(&npy, e))?;
    let meta = CentroidMetadata {
        cet_ids: taxonomy.areas.iter().map(|a| a.id.clone()).collect(),
        taxonomy_version: taxonomy.version.clone(),
        model_id: model_id.to_string(),
        model_sha256: model_sha.to_string(),
        dims: d,
        method: CENTROID_METHOD.into(),
        texts_per_area: texts.iter().map(Vec::len).collect(),
        inputs_sha256: inputs,
    };
    let mut b = serde_json::to_vec_pretty(&meta).map_err(|e| IoError::write(&meta_path, e))?;
    b.push(b'\n');
    write_file(&meta_path, &b).map_err(|e| IoError::write(&meta_path, e))?;
    Ok("built".into())
}

/// Reads `deployment_metadata.json` of the bundle in `dir`.
pub fn read_metadata(dir: &Path) -> Result<DeploymentMetadata, IoError> {
    let path = dir.join("deployment_metadata.json");
    let bytes = std::fs::read(&path).map_err(|e| IoError::read(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| IoError::read(&path, e))
}

/// Checks the listed files whose bundle path starts with `prefix` (all with `""`) against
/// their sizes and checksums.
pub fn check_files(dir: &Path, meta: &DeploymentMetadata, prefix: &str) -> Result<(), BundleError> {
    for (rel, entry) in meta.files.iter().filter(|(r, _)| r.starts_with(prefix)) {
        let path = dir.join(rel);
        if !path.is_file() {
            return Err(BundleError::Missing(path));
        }
        let actual = sha256_file(&path)?;
        if actual != entry.sha256 {
            return Err(BundleError::Checksum {
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// Re-checks a bundle without writing: every checksum, the model loads and embeds the probe,
/// and the centroids match the current taxonomy and model.
pub fn verify(
    dir: &Path,
    model_id: &str,
    taxonomy: &Taxonomy,
    settings: &EmbedSettings,
    device: &Device,
) -> Result<DeploymentMetadata, BundleError> {
    let meta = read_metadata(dir)?;
    check_files(dir, &meta, "")?;
    if meta.model_id != model_id {
        return Err(BundleError::Stale(format!(
            "built for model {}, settings ask for {model_id}",
            meta.model_id
        )));
    }
    if meta.taxonomy_version != taxonomy.version {
        return Err(BundleError::Stale(format!(
            "built for taxonomy {}, {} is {}",
            meta.taxonomy_version,
            taxonomy.path.display(),
            taxonomy.version
        )));
    }
    let cmeta_path = dir.join("embeddings/cet_areas.metadata.json");
    let cmeta: CentroidMetadata = serde_json::from_slice(
        &std::fs::read(&cmeta_path).map_err(|e| IoError::read(&cmeta_path, e))?,
    )
    .map_err(|e| IoError::read(&cmeta_path, e))?;
    let ids: Vec<&str> = taxonomy.areas.iter().map(|a| a.id.as_str()).collect();
    if cmeta.cet_ids != ids {
        return Err(BundleError::Stale(
            "the CET areas differ from the taxonomy's".into(),
        ));
    }
    let model = ModelFiles {
        id: model_id.to_string(),
        revision: meta.model_revision.clone(),
        source: super::ModelSource::Bundle,
        dir: dir.join("models").join(bundle_name(model_id)),
    };
    let (encoder, chunker) = crate::embed::open_encoder(&model, device, settings)?;
    if encoder.dims() != cmeta.dims {
        return Err(BundleError::Stale(format!(
            "centroids have {} dimensions, the model {}",
            cmeta.dims,
            encoder.dims()
        )));
    }
    embed_texts(&encoder, &chunker, &[PROBE])?;
    Ok(meta)
}
