//! The embedding scorer: an award's dense embedding (title and abstract, the mean of its
//! chunks' vectors) against one centroid per CET area. Centroids come from the
//! `prepare-assets` bundle when it is current, else they are built at start-up; award vectors
//! come from the bundle's precomputed award embeddings when the award's text is unchanged,
//! else from the encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::params::EmbeddingParams;
use super::taxonomy::Taxonomy;
use super::text::AwardText;
use crate::embed::chunk::Chunker;
use crate::embed::encoder::DenseEncoder;
use crate::embed::export::NpyFile;
use crate::embed::models::{ModelFiles, ModelSource};
use crate::embed::{EmbedError, embed_texts, l2_normalize};
use crate::io::bundle::{self, CentroidMetadata, DeploymentMetadata};

/// How centroids are built; recorded in their metadata, and a change rebuilds them.
pub const CENTROID_METHOD: &str = "c = l2norm(0.5 * embed(name + ': ' + definition) + 0.5 * mean(embed(keyword))); \
     with award examples c = l2norm(c + mean(the area's high-band awards) - mean(all high-band awards))";

/// The text of an award that is embedded, as `sbir embed` reads an awards collection.
pub fn award_text(a: &AwardText) -> String {
    crate::embed::collection::award_text(a.title, a.r#abstract)
}

/// The key under which an award's vector is cached: a hash of its embedded text.
pub fn text_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The texts a centroid is built from: `name: definition` first, then each keyword phrase.
pub fn area_texts(taxonomy: &Taxonomy) -> Vec<Vec<String>> {
    taxonomy
        .areas
        .iter()
        .map(|a| {
            std::iter::once(format!("{}: {}", a.name, a.definition))
                .chain(a.keywords.iter().map(|k| k.phrase().to_string()))
                .collect()
        })
        .collect()
}

/// Sums of award embeddings per area, to add award examples to the centroids.
#[derive(Debug, Clone)]
pub struct AwardMeans {
    dims: usize,
    sums: Vec<f32>,
    pub counts: Vec<usize>,
}

impl AwardMeans {
    pub fn new(areas: usize, dims: usize) -> Self {
        Self {
            dims,
            sums: vec![0.0; areas * dims],
            counts: vec![0; areas],
        }
    }

    /// The mean of every award added, whatever its area.
    fn mean_all(&self) -> Vec<f32> {
        let n = self.counts.iter().sum::<usize>().max(1) as f32;
        (0..self.dims)
            .map(|j| self.sums.chunks(self.dims).map(|r| r[j]).sum::<f32>() / n)
            .collect()
    }

    /// Adds one award's vector to `area`.
    pub fn add(&mut self, area: usize, v: &[f32]) {
        let row = &mut self.sums[area * self.dims..(area + 1) * self.dims];
        row.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        self.counts[area] += 1;
    }
}

/// Builds one L2-normalised centroid per area (row-major, taxonomy order); areas with at
/// least `min_examples` award examples in `awards` average those in too (see
/// [`CENTROID_METHOD`]). Returns the rows and, per area, what it was built from.
pub fn build_centroids(
    encoder: &DenseEncoder,
    chunker: &Chunker,
    taxonomy: &Taxonomy,
    awards: Option<&AwardMeans>,
    min_examples: usize,
) -> Result<(Vec<f32>, Vec<String>), EmbedError> {
    let d = encoder.dims();
    let mut rows = Vec::with_capacity(taxonomy.areas.len() * d);
    let mut built_from = Vec::new();
    for (area, texts) in area_texts(taxonomy).iter().enumerate() {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let v = embed_texts(encoder, chunker, &refs)?;
        let keywords = (texts.len() - 1).max(1) as f32;
        let examples = awards
            .map(|m| m.counts[area])
            .filter(|&n| n >= min_examples.max(1));
        let mut c: Vec<f32> = (0..d)
            .map(|j| {
                let kw: f32 = v.chunks(d).skip(1).map(|r| r[j]).sum::<f32>() / keywords;
                0.5 * v[j] + 0.5 * kw
            })
            .collect();
        let mut from = format!("definition + {} keywords", texts.len() - 1);
        // Only what sets the area's awards apart from all awards is added: the raw mean
        // carries the style every abstract shares, which pulls all centroids together.
        if let (Some(n), Some(m)) = (examples, awards) {
            l2_normalize(&mut c);
            let sums = &m.sums[area * d..(area + 1) * d];
            let all = m.mean_all();
            c.iter_mut()
                .zip(sums.iter().zip(&all))
                .for_each(|(x, (s, g))| *x += s / n as f32 - g);
            from.push_str(&format!(" + {n} high-band awards (centred)"));
        }
        l2_normalize(&mut c);
        rows.extend(c);
        built_from.push(from);
    }
    Ok((rows, built_from))
}

/// Where the centroids in use came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum CentroidOrigin {
    /// The bundle's `embeddings/cet_areas.npy`.
    Bundle { path: PathBuf },
    /// Built at start-up, and why the bundle's were not used.
    Built { reason: String },
}

/// Figures of the embedding scorer for the checks file.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingReport {
    pub model_id: String,
    pub model_source: ModelSource,
    pub model_dir: PathBuf,
    pub centroids: CentroidOrigin,
    /// Award vectors read from the bundle / encoded in this run.
    pub award_vectors_reused: u64,
    pub award_vectors_encoded: u64,
}

/// Precomputed award vectors: award id → (row, text hash).
struct AwardCache {
    rows: HashMap<String, (u64, u64)>,
    npy: Mutex<NpyFile>,
}

/// `embeddings/awards.metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwardEmbeddingsMetadata {
    pub awards_path: PathBuf,
    pub count: u64,
    pub dims: usize,
    pub model_id: String,
    pub model_sha256: String,
    /// Hash of every (award id, text hash) pair in row order; equal means nothing to redo.
    pub texts_sha256: String,
}

/// The embedding scorer: encoder, centroids, calibration, and the award-vector cache.
pub struct EmbeddingScorer {
    encoder: DenseEncoder,
    chunker: Chunker,
    centroids: Vec<f32>,
    calibration: EmbeddingParams,
    cache: Option<AwardCache>,
    reused: AtomicU64,
    encoded: AtomicU64,
    model: ModelFiles,
    origin: CentroidOrigin,
}

impl EmbeddingScorer {
    /// Opens the scorer over a located encoder: centroids from the bundle under `bundle_root`
    /// when they match this taxonomy and model (a stale or corrupted bundle is logged as a
    /// warning and bypassed, never used), else built now.
    pub fn load(
        model: ModelFiles,
        encoder: DenseEncoder,
        chunker: Chunker,
        taxonomy: &Taxonomy,
        calibration: EmbeddingParams,
        bundle_root: &Path,
        award_vectors: bool,
    ) -> Result<Self, EmbedError> {
        // The bundle's file list (with checksums), read once for the three uses below.
        let listed = bundle::read_metadata(bundle_root);
        let sha = model_sha(&model, bundle_root, listed.as_ref().ok())?;
        let bundled = listed
            .as_ref()
            .map_err(|e| format!("no bundle: {e}"))
            .and_then(|meta| bundled_centroids(bundle_root, meta, taxonomy, &model.id, &sha));
        let (centroids, origin) = match bundled {
            Ok((rows, path)) if rows.len() == taxonomy.areas.len() * encoder.dims() => {
                (rows, CentroidOrigin::Bundle { path })
            }
            found => {
                let reason = match found {
                    Ok(_) => "the bundle's centroids have other dimensions than the model".into(),
                    Err(r) => r,
                };
                if bundle_root.join("deployment_metadata.json").is_file() {
                    tracing::warn!(
                        "classify-cet: not using the bundle's CET centroids ({reason}); building them now — rerun `sbir prepare-assets`"
                    );
                }
                let (rows, _) = build_centroids(
                    &encoder,
                    &chunker,
                    taxonomy,
                    None,
                    calibration.min_award_examples,
                )?;
                (rows, CentroidOrigin::Built { reason })
            }
        };
        let cache = match (&listed, award_vectors) {
            (Ok(meta), true) => award_cache(bundle_root, meta, &model.id, &sha),
            _ => None,
        };
        Ok(Self {
            encoder,
            chunker,
            centroids,
            calibration,
            cache,
            reused: AtomicU64::new(0),
            encoded: AtomicU64::new(0),
            model,
            origin,
        })
    }

    /// Vector dimension.
    pub fn dims(&self) -> usize {
        self.encoder.dims()
    }

    /// One vector per award (row-major): the bundle's when its text is unchanged, else
    /// encoded now.
    pub fn embed(&self, awards: &[(&str, AwardText)]) -> Result<Vec<f32>, EmbedError> {
        let d = self.dims();
        let mut out = vec![0f32; awards.len() * d];
        let mut todo: Vec<(usize, String)> = Vec::new();
        for (i, (id, a)) in awards.iter().enumerate() {
            let text = award_text(a);
            let row = self.cache.as_ref().and_then(|c| {
                let &(row, hash) = c.rows.get(*id)?;
                (hash == text_hash(&text)).then_some((c, row))
            });
            match row {
                Some((c, row)) => {
                    let mut npy = c.npy.lock().unwrap_or_else(|p| p.into_inner());
                    npy.read_row(row, &mut out[i * d..(i + 1) * d])
                        .map_err(|e| EmbedError::model(&self.model.dir, e))?;
                }
                None => todo.push((i, text)),
            }
        }
        self.reused
            .fetch_add((awards.len() - todo.len()) as u64, Ordering::Relaxed);
        self.encoded.fetch_add(todo.len() as u64, Ordering::Relaxed);
        let texts: Vec<&str> = todo.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = embed_texts(&self.encoder, &self.chunker, &texts)?;
        for ((i, _), v) in todo.iter().zip(vectors.chunks_exact(d)) {
            out[i * d..(i + 1) * d].copy_from_slice(v);
        }
        Ok(out)
    }

    /// The 0-100 score of every area for one award vector.
    ///
    /// Calibration: MiniLM cosine similarities between an abstract and an area centroid sit
    /// around 0.05-0.25 for unrelated areas and 0.35-0.65 for the area an abstract is about
    /// (measured on the generated sample and the 100 real abstracts, see the issue note), so
    /// the linear map from `floor` (score 0: no evidence, the award stays unclassified if no
    /// area passes it) to `ceiling` (score 100) puts a typical on-topic abstract in the
    /// Medium-High bands and leaves unrelated areas at 0.
    pub fn scores(&self, v: &[f32]) -> Vec<f64> {
        let d = self.dims();
        let (lo, hi) = (self.calibration.floor, self.calibration.ceiling);
        self.centroids
            .chunks_exact(d)
            .map(|c| {
                let cos: f32 = c.iter().zip(v).map(|(a, b)| a * b).sum();
                100.0 * ((cos as f64 - lo) / (hi - lo)).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// What the scorer used and did so far.
    pub fn report(&self) -> EmbeddingReport {
        EmbeddingReport {
            model_id: self.model.id.clone(),
            model_source: self.model.source,
            model_dir: self.model.dir.clone(),
            centroids: self.origin.clone(),
            award_vectors_reused: self.reused.load(Ordering::Relaxed),
            award_vectors_encoded: self.encoded.load(Ordering::Relaxed),
        }
    }
}

/// sha256 of the model's weights: from the bundle's metadata when the model is the bundle's
/// (its checksums were verified when it was located), else hashed now.
fn model_sha(
    model: &ModelFiles,
    bundle_root: &Path,
    listed: Option<&DeploymentMetadata>,
) -> Result<String, EmbedError> {
    let weights = model.file("model.safetensors");
    if model.source == ModelSource::Bundle
        && let Some(meta) = listed
        && let Some(rel) = weights
            .strip_prefix(bundle_root)
            .ok()
            .map(|r| r.to_string_lossy().replace('\\', "/"))
        && let Some(entry) = meta.files.get(&rel)
    {
        return Ok(entry.sha256.clone());
    }
    crate::io::input::sha256_file(&weights).map_err(|e| EmbedError::model(&weights, e))
}

/// The bundle's centroids when they are current: listed with the right checksum, built for
/// this taxonomy (ids and version) and this model (id and weights). Otherwise why not.
fn bundled_centroids(
    root: &Path,
    meta: &DeploymentMetadata,
    taxonomy: &Taxonomy,
    model_id: &str,
    model_sha: &str,
) -> Result<(Vec<f32>, PathBuf), String> {
    bundle::check_files(root, meta, "embeddings/cet_areas").map_err(|e| e.to_string())?;
    let c = CentroidMetadata::read(root).map_err(|e| e.to_string())?;
    if let Some(why) = c.staleness(&taxonomy.identity(), model_id, model_sha) {
        return Err(format!("stale bundle: {why}"));
    }
    let path = root.join("embeddings/cet_areas.npy");
    let rows = NpyFile::open(&path)
        .and_then(|mut f| f.read_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((rows, path))
}

/// The bundle's precomputed award vectors, when they are listed in its metadata with their
/// checksums and were made with this model.
fn award_cache(
    root: &Path,
    listed: &DeploymentMetadata,
    model_id: &str,
    model_sha: &str,
) -> Option<AwardCache> {
    let dir = root.join("embeddings");
    if !listed.files.contains_key("embeddings/awards.npy") {
        return None;
    }
    if let Err(e) = bundle::check_files(root, listed, "embeddings/awards") {
        tracing::warn!("classify-cet: not using the bundle's award embeddings: {e}");
        return None;
    }
    let meta: AwardEmbeddingsMetadata =
        serde_json::from_slice(&std::fs::read(dir.join("awards.metadata.json")).ok()?).ok()?;
    if meta.model_id != model_id || meta.model_sha256 != model_sha {
        tracing::warn!(
            "classify-cet: the bundle's award embeddings were made with another model; encoding awards now"
        );
        return None;
    }
    let npy = NpyFile::open(&dir.join("awards.npy")).ok()?;
    let rows = read_award_ids(&dir.join("awards.ids.tsv")).ok()?;
    (npy.rows == rows.len() as u64).then(|| AwardCache {
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, (id, h))| (id, (i as u64, h)))
            .collect(),
        npy: Mutex::new(npy),
    })
}

/// Reads `awards.ids.tsv`: one `award_id<TAB>text hash (hex)` per row of `awards.npy`.
pub fn read_award_ids(path: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|l| {
            l.split_once('\t')
                .and_then(|(id, h)| Some((id.to_string(), u64::from_str_radix(h, 16).ok()?)))
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: bad line {l:?}", path.display()),
                    )
                })
        })
        .collect()
}
