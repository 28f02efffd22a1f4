//! The `prepare-assets` bundle: the encoder's files, the CET area centroids as a NumPy array,
//! and `deployment_metadata.json` listing every file with its size and sha256, so start-up
//! needs no network and a corrupted or stale bundle is caught instead of used.
//!
//! Each file is written atomically; the model folder is assembled beside its destination
//! and renamed into place. Unchanged inputs (by hash) are not rebuilt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use candle_core::Device;
use sha2::{Digest, Sha256};

use crate::cet::classify::{Classifier, Scratch};
use crate::cet::embedding::{
    AwardEmbeddingsMetadata, AwardMeans, CENTROID_METHOD, area_texts, award_text, build_centroids,
    read_award_ids, text_hash,
};
use crate::cet::taxonomy::Taxonomy;
use crate::config::EmbedSettings;
use crate::embed::chunk::Chunker;
use crate::embed::encoder::DenseEncoder;
use crate::embed::export::{DenseSpill, NpyFile, VectorFormat, write_vectors};
use crate::embed::models::{ModelFiles, ModelSource, bundle_name};
use crate::embed::{EmbedError, embed_texts};
use crate::io::IoError;
use crate::io::atomic::{write_file, write_json};
use crate::io::bundle::{
    self as format, BUNDLE_VERSION, CentroidMetadata, DeploymentMetadata, FileCheckError, FileEntry,
};
use crate::io::input::sha256_file;

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
    #[error(transparent)]
    Files(#[from] FileCheckError),
    #[error("stale bundle: {0}")]
    Stale(String),
    #[error("award embeddings: {0}")]
    Awards(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Io(#[from] IoError),
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
    awards: Option<&AwardInputs>,
) -> Result<Prepared, BundleError> {
    let mut steps = BTreeMap::new();
    let name = bundle_name(&model.id);
    let model_dir = out.join("models").join(name);
    steps.insert("model".into(), copy_model(model, &model_dir)?);

    // Load from the bundle's copy: proves the copy works, and the probe is recorded.
    let bundled = ModelFiles {
        dir: model_dir.clone(),
        source: ModelSource::Bundle,
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
    let enc = (&encoder, &chunker);
    let ids = (model.id.as_str(), model_sha.as_str());
    let mut written = vec![
        emb_dir(out).join("cet_areas.npy"),
        emb_dir(out).join("cet_areas.metadata.json"),
        out.join("VERSION"),
    ];
    let award_files = AWARD_FILES.map(|f| emb_dir(out).join(f));
    let examples = match awards {
        Some(a) => {
            let (step, means, digest) = write_award_embeddings(out, enc, taxonomy, ids, a)?;
            steps.insert("award_embeddings".into(), step);
            written.extend(award_files);
            Some((means, digest))
        }
        None => {
            // Award vectors of an earlier run stay listed (their model is checked when used).
            if award_files.iter().all(|f| f.is_file()) {
                written.extend(award_files);
            }
            None
        }
    };
    let min_examples = awards.map_or(0, |a| a.classifier.params.embedding.min_award_examples);
    steps.insert(
        "cet_embeddings".into(),
        write_centroids(
            out,
            enc,
            taxonomy,
            ids,
            examples.as_ref().map(|(m, d)| (m, d.as_str())),
            min_examples,
        )?,
    );
    write_file(
        &out.join("VERSION"),
        format!("{BUNDLE_VERSION}\n").as_bytes(),
    )
    .map_err(|e| IoError::write(&out.join("VERSION"), e))?;
    for path in &written {
        let (rel, e) = entry(path)?;
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
    write_json(&out.join("deployment_metadata.json"), &metadata)?;
    Ok(Prepared {
        metadata,
        dir: out.to_path_buf(),
    })
}

fn emb_dir(out: &Path) -> PathBuf {
    out.join("embeddings")
}

/// Copies the model's files into `dest` unless an identical copy is there; returns
/// `copied` or `unchanged`.
fn copy_model(model: &ModelFiles, dest: &Path) -> Result<String, BundleError> {
    let wanted: Vec<&str> = crate::embed::models::MODEL_FILES
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

/// Writes `cet_areas.npy` and its metadata unless their inputs are unchanged.
fn write_centroids(
    out: &Path,
    enc: (&DenseEncoder, &Chunker),
    taxonomy: &Taxonomy,
    model: (&str, &str),
    awards: Option<(&AwardMeans, &str)>,
    min_examples: usize,
) -> Result<String, BundleError> {
    let (model_id, model_sha) = model;
    let dir = emb_dir(out);
    let meta_path = dir.join("cet_areas.metadata.json");
    let npy = dir.join("cet_areas.npy");
    let texts = area_texts(taxonomy);
    let inputs = {
        let mut h = Sha256::new();
        for t in texts.iter().flatten() {
            h.update(t.as_bytes());
            h.update([0]);
        }
        h.update(taxonomy.version.as_bytes());
        h.update(model_sha.as_bytes());
        h.update(CENTROID_METHOD.as_bytes());
        if let Some((_, awards_digest)) = awards {
            h.update(awards_digest.as_bytes());
            h.update(min_examples.to_le_bytes());
        }
        crate::hex::hex_prefix(&h.finalize(), 64)
    };
    let previous: Option<CentroidMetadata> = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if npy.is_file() && previous.is_some_and(|p| p.inputs_sha256 == inputs) {
        return Ok("unchanged".into());
    }
    let (rows, built_from) =
        build_centroids(enc.0, enc.1, taxonomy, awards.map(|a| a.0), min_examples)?;
    let d = enc.0.dims();
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
        cet_ids: taxonomy.ids(),
        taxonomy_version: taxonomy.version.clone(),
        model_id: model_id.to_string(),
        model_sha256: model_sha.to_string(),
        dims: d,
        method: CENTROID_METHOD.into(),
        texts_per_area: texts.iter().map(Vec::len).collect(),
        built_from,
        inputs_sha256: inputs,
    };
    write_json(&meta_path, &meta)?;
    Ok("built".into())
}

/// Awards whose embeddings the bundle precomputes, and the scorer that picks the High-band
/// examples added to the centroids.
pub struct AwardInputs<'a> {
    pub path: &'a Path,
    /// Its `embedding.min_award_examples` is the least an area needs.
    pub classifier: &'a Classifier,
}

/// The files of the precomputed award embeddings.
const AWARD_FILES: [&str; 3] = ["awards.npy", "awards.ids.tsv", "awards.metadata.json"];

/// Awards per encoder call.
const AWARD_BLOCK: usize = 256;

/// Writes `awards.npy`, `awards.ids.tsv` and `awards.metadata.json` for every award of the
/// file (vectors of awards whose id and text are unchanged are copied from the previous
/// files, not re-encoded), and sums the vectors of High-band awards per primary area.
/// Returns the step (`built`/`unchanged`), the sums, and a digest of the texts.
fn write_award_embeddings(
    out: &Path,
    enc: (&DenseEncoder, &Chunker),
    taxonomy: &Taxonomy,
    model: (&str, &str),
    awards: &AwardInputs,
) -> Result<(String, AwardMeans, String), BundleError> {
    let (model_id, model_sha) = model;
    let dir = emb_dir(out);
    let npy_path = dir.join("awards.npy");
    let ids_path = dir.join("awards.ids.tsv");
    let meta_path = dir.join("awards.metadata.json");
    let d = enc.0.dims();
    let previous: Option<AwardEmbeddingsMetadata> = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|m: &AwardEmbeddingsMetadata| {
            m.model_id == model_id && m.model_sha256 == model_sha && m.dims == d
        });
    let mut old = match &previous {
        Some(_) => NpyFile::open(&npy_path)
            .ok()
            .zip(read_award_ids(&ids_path).ok())
            .map(|(npy, ids)| {
                let rows: HashMap<(String, u64), u64> = ids
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, i as u64))
                    .collect();
                (npy, rows)
            }),
        None => None,
    };
    std::fs::create_dir_all(&dir).map_err(|e| IoError::write(&dir, e))?;
    let mut spill = DenseSpill::new(d, &dir).map_err(|e| IoError::write(&dir, e))?;
    let mut ids = String::new();
    let mut digest = Sha256::new();
    let mut means = AwardMeans::new(taxonomy.areas.len(), d);
    let (mut reused, mut count) = (0u64, 0u64);
    for batch in crate::cet::read_award_batches(awards.path, AWARD_BLOCK)
        .map_err(|e| BundleError::Awards(e.to_string()))?
    {
        let batch = batch.map_err(|e| BundleError::Awards(e.to_string()))?;
        let texts: Vec<String> = batch.iter().map(|a| award_text(&a.text())).collect();
        let hashes: Vec<u64> = texts.iter().map(|t| text_hash(t)).collect();
        let mut vectors = vec![0f32; batch.len() * d];
        let mut todo = Vec::new();
        for (i, a) in batch.iter().enumerate() {
            let row = old
                .as_mut()
                .and_then(|(npy, rows)| Some((npy, *rows.get(&(a.award_id.clone(), hashes[i]))?)));
            match row {
                Some((npy, row)) => {
                    npy.read_row(row, &mut vectors[i * d..(i + 1) * d])
                        .map_err(|e| IoError::read(&npy_path, e))?;
                    reused += 1;
                }
                None => todo.push(i),
            }
        }
        let refs: Vec<&str> = todo.iter().map(|&i| texts[i].as_str()).collect();
        let fresh = embed_texts(enc.0, enc.1, &refs)?;
        for (&i, v) in todo.iter().zip(fresh.chunks_exact(d)) {
            vectors[i * d..(i + 1) * d].copy_from_slice(v);
        }
        let mut scratch = Scratch::default();
        for (i, a) in batch.iter().enumerate() {
            let line = format!("{}\t{:016x}\n", a.award_id, hashes[i]);
            digest.update(line.as_bytes());
            ids.push_str(&line);
            let c = awards
                .classifier
                .classify(&a.award_id, &a.text(), &mut scratch);
            if let (Some(area), "High") = (
                c.primary_cet_id
                    .as_deref()
                    .and_then(|p| taxonomy.index_of(p)),
                c.band.as_str(),
            ) {
                means.add(area, &vectors[i * d..(i + 1) * d]);
            }
        }
        spill.push(&vectors).map_err(|e| IoError::write(&dir, e))?;
        count += batch.len() as u64;
    }
    let texts_sha256 = crate::hex::hex_prefix(&digest.finalize(), 64);
    let classifier_digest = format!(
        "{texts_sha256}:{}:{}",
        awards.classifier.scorer(),
        awards
            .classifier
            .model
            .as_ref()
            .map_or("", |m| m.version.as_str())
    );
    if reused == count && previous.is_some_and(|p| p.texts_sha256 == texts_sha256) {
        return Ok(("unchanged".into(), means, classifier_digest));
    }
    drop(old);
    let mut reader = spill
        .into_reader()
        .map_err(|e| IoError::write(&npy_path, e))?;
    write_vectors(&npy_path, VectorFormat::Npy, d, count, &mut reader)
        .map_err(|e| IoError::write(&npy_path, e))?;
    write_file(&ids_path, ids.as_bytes()).map_err(|e| IoError::write(&ids_path, e))?;
    write_json(
        &meta_path,
        &AwardEmbeddingsMetadata {
            awards_path: awards.path.to_path_buf(),
            count,
            dims: d,
            model_id: model_id.to_string(),
            model_sha256: model_sha.to_string(),
            texts_sha256,
        },
    )?;
    tracing::info!(
        "prepare-assets: {count} award vectors, {reused} reused from the previous bundle"
    );
    Ok(("built".into(), means, classifier_digest))
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
    let meta = format::read_metadata(dir)?;
    format::check_files(dir, &meta, "")?;
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
    let cmeta = CentroidMetadata::read(dir)?;
    let weights = format!("models/{}/model.safetensors", bundle_name(model_id));
    let weights_sha = meta.files.get(&weights).map(|f| f.sha256.as_str());
    if let Some(why) = cmeta.staleness(
        &taxonomy.identity(),
        model_id,
        weights_sha.unwrap_or_default(),
    ) {
        return Err(BundleError::Stale(why));
    }
    let model = ModelFiles {
        id: model_id.to_string(),
        revision: meta.model_revision.clone(),
        source: ModelSource::Bundle,
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
