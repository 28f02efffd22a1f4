//! `processing_summary.json`: the versioned manifest of one `sbir embed` run over a
//! collection. Every stage payload carries the run id; skipped stages and missing payloads
//! are listed in `warnings`, so a consumer can tell a partial run from a full one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::agreement::Agreement;
use super::collection::Kind;
use super::encoder::Encoded;
use super::{EmbedError, Job, LEGACY_VERSIONS, SCHEMA_VERSION};
use crate::config::Precision;
use crate::embed::models::ModelFiles;
use crate::metrics::{StageMetrics, round};

/// Schema versions: the one written and the older ones readers accept.
#[derive(Debug, Clone, Serialize)]
pub struct Compatibility {
    pub current: &'static str,
    pub legacy: Vec<&'static str>,
}

/// The collection embedded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Documents with at least one chunk.
    pub documents: u64,
    pub empty_documents: u64,
    pub rejected: u64,
    pub chunks: u64,
    /// Non-zero sparse weights over all chunks.
    pub sparse_nnz: u64,
}

/// A model used by the run.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    #[serde(flatten)]
    pub files: ModelFiles,
    pub dims: Option<usize>,
}

/// Models of the three stages.
#[derive(Debug, Clone, Serialize)]
pub struct Models {
    pub dense: ModelInfo,
    /// `bm25` (over the dense model's vocabulary) or the SPLADE model.
    pub sparse: Option<ModelInfo>,
    pub rerank: Option<ModelInfo>,
}

/// Percentiles of per-batch (or per-query) latency, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Percentiles of `ms` (nearest rank).
    pub fn of(ms: &[f64]) -> Self {
        if ms.is_empty() {
            return Self::default();
        }
        let mut v = ms.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            round(
                v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1],
                3,
            )
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: round(v[v.len() - 1], 3),
        }
    }
}

/// How this run's dense vectors differ from the previous run's, matched by chunk id.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub previous_run_id: Option<String>,
    pub previous_sha256: Option<String>,
    pub identical: bool,
    /// Chunk ids present in both runs.
    pub common_chunks: u64,
    /// Largest `1 - cosine` between the two runs' vectors of one chunk.
    pub max_cosine_deviation: f64,
}

#[derive(Deserialize)]
struct PreviousSummary {
    run_id: Option<String>,
    dense_run: Option<PreviousDense>,
}

#[derive(Deserialize)]
struct PreviousDense {
    sha256: Option<String>,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

impl Comparison {
    /// Compares the vectors in `current` (rows in `ids` order) with the previous run's files
    /// in `dir`; `None` when there is no previous run.
    pub fn against_previous(
        dir: &Path,
        ids: &[(String, String, u32)],
        current: &mut BufReader<File>,
        dims: usize,
        sha256: &str,
    ) -> Result<Option<Self>, String> {
        let faiss = dir.join("dense.faiss");
        let ids_path = dir.join("dense.ids.parquet");
        if !faiss.is_file() || !ids_path.is_file() {
            return Ok(None);
        }
        let previous: Option<PreviousSummary> = std::fs::read(dir.join("processing_summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let index = super::export::FlatIndex::open(&faiss).map_err(|e| e.to_string())?;
        if index.dims != dims {
            return Err(format!(
                "previous vectors have {} dimensions, these {dims}",
                index.dims
            ));
        }
        let mut rows: HashMap<String, u64> = HashMap::new();
        let mut n = 0u64;
        for batch in crate::records::read_projected::<IdRow>(&ids_path, &["id"], &[], 65536)
            .map_err(|e| e.to_string())?
        {
            for r in batch.map_err(|e| e.to_string())? {
                rows.insert(r.id, n);
                n += 1;
            }
        }
        let file = File::open(&faiss).map_err(|e| e.to_string())?;
        current.rewind().map_err(|e| e.to_string())?;
        let (mut a, mut b) = (vec![0u8; dims * 4], vec![0u8; dims * 4]);
        let (mut common, mut worst) = (0u64, 0f64);
        for (id, _, _) in ids {
            current.read_exact(&mut a).map_err(|e| e.to_string())?;
            let Some(&row) = rows.get(id) else { continue };
            file.read_exact_at(&mut b, 45 + row * dims as u64 * 4)
                .map_err(|e| e.to_string())?;
            common += 1;
            if a == b {
                continue; // identical bytes: no deviation (1 - cos would round to 2e-16)
            }
            let f = |x: &[u8]| -> Vec<f64> {
                x.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                    .collect()
            };
            let (x, y) = (f(&a), f(&b));
            let dot: f64 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
            let nx: f64 = x.iter().map(|p| p * p).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|p| p * p).sum::<f64>().sqrt();
            let cos = if nx > 0.0 && ny > 0.0 {
                dot / (nx * ny)
            } else {
                0.0
            };
            worst = worst.max(1.0 - cos);
        }
        let previous_sha256 = previous
            .as_ref()
            .and_then(|p| p.dense_run.as_ref())
            .and_then(|d| d.sha256.clone());
        Ok(Some(Self {
            previous_run_id: previous.and_then(|p| p.run_id),
            identical: previous_sha256.as_deref() == Some(sha256),
            previous_sha256,
            common_chunks: common,
            max_cosine_deviation: worst.max(0.0),
        }))
    }
}

/// The dense stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DenseRun {
    pub run_id: String,
    pub chunks: u64,
    pub dims: usize,
    pub device: String,
    /// Arithmetic of the linear layers.
    pub precision: Precision,
    /// int8 runs: cosine against fp32 on the run's first chunks.
    pub int8_agreement: Option<Agreement>,
    /// Model load time, seconds.
    pub load_s: f64,
    /// Encoding time (model forward passes and pooling), seconds.
    pub duration_s: f64,
    pub chunks_per_s: f64,
    pub tokens_per_s: f64,
    pub tokens: u64,
    /// Padded tokens / real tokens (1.0 = no padding waste).
    pub padding_ratio: f64,
    /// Process peak RSS when the stage ended, MiB.
    pub peak_rss_mb: Option<f64>,
    pub batches: u64,
    pub batch_latency_ms: Latency,
    /// sha256 of every vector's little-endian f32 bytes, in row order.
    pub sha256: String,
    /// Compared with the previous run in the same folder, when there was one.
    pub previous: Option<Comparison>,
    #[serde(skip)]
    batch_ms: Vec<f64>,
    #[serde(skip)]
    padded: u64,
}

impl DenseRun {
    /// Accounts one `encode` call.
    pub fn add_batches(&mut self, e: &Encoded) {
        self.batch_ms.extend_from_slice(&e.batch_ms);
        self.tokens += e.tokens;
        self.padded += e.padded_tokens;
    }

    /// Totals, once every chunk is encoded.
    pub fn finish(
        &mut self,
        chunks: u64,
        sha256: String,
        duration_s: f64,
        previous: Option<Comparison>,
    ) {
        self.chunks = chunks;
        self.sha256 = sha256;
        self.duration_s = round(duration_s, 3);
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                (n as f64 / duration_s).round()
            } else {
                0.0
            }
        };
        self.chunks_per_s = per_s(chunks);
        self.tokens_per_s = per_s(self.tokens);
        self.padding_ratio = if self.tokens > 0 {
            round(self.padded as f64 / self.tokens as f64, 3)
        } else {
            1.0
        };
        self.batches = self.batch_ms.len() as u64;
        self.batch_latency_ms = Latency::of(&self.batch_ms);
        self.previous = previous;
        self.peak_rss_mb = crate::metrics::peak_rss_mb();
    }
}

/// The sparse stage's payload.
#[derive(Debug, Clone, Serialize)]
pub struct SparsePayload {
    pub run_id: String,
    /// `bm25` or `splade`.
    pub kind: String,
    pub model: Option<String>,
    pub chunks: u64,
    pub avg_nnz: f64,
    pub duration_s: f64,
    pub chunks_per_s: f64,
    pub file: String,
    /// Process peak RSS when the stage ended, MiB.
    pub peak_rss_mb: Option<f64>,
}

/// The rerank stage's payload.
#[derive(Debug, Clone, Serialize)]
pub struct RerankPayload {
    pub run_id: String,
    pub model: String,
    pub queries: u64,
    pub candidates_per_query: usize,
    pub rrf_k: f64,
    pub pairs_scored: u64,
    pub query_latency_ms: Latency,
    pub truncated_pairs: u64,
    pub file: String,
    /// Process peak RSS when the stage ended, MiB.
    pub peak_rss_mb: Option<f64>,
}

/// A stage that may not have run: its payload, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct StageRun<T> {
    pub payload: Option<T>,
    pub skipped: Option<String>,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub schema_version: &'static str,
    pub compatibility: Compatibility,
    pub run_id: String,
    pub created_at: String,
    pub tool_version: &'static str,
    pub collection: CollectionInfo,
    pub models: Models,
    pub chunking: Chunking,
    pub dense_run: DenseRun,
    pub sparse_run: StageRun<SparsePayload>,
    pub rerank_run: StageRun<RerankPayload>,
    pub counts: Counts,
    /// Whole run: wall time, peak RSS (`gpu_memory_mb` is null on CPU).
    pub metrics: StageMetrics,
    pub gpu_memory_mb: Option<f64>,
    pub warnings: Vec<String>,
    pub outputs: Vec<PathBuf>,
}

/// What was embedded.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    pub name: String,
    pub input: PathBuf,
    pub kind: Kind,
}

/// Chunking settings in effect.
#[derive(Debug, Clone, Serialize)]
pub struct Chunking {
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    /// Chunks cut short by the encoder's limit: always 0, as chunks are sized to fit.
    pub truncated_chunks: u64,
}

impl Summary {
    /// A summary for `job` before anything ran.
    pub fn new(job: &Job, kind: Kind, dims: usize) -> Self {
        let sparse = job.sparse.then(|| match &job.splade_model {
            Some(m) => ModelInfo {
                files: m.clone(),
                dims: None,
            },
            None => ModelInfo {
                files: ModelFiles {
                    id: format!("bm25:{}", job.dense_model.id),
                    ..job.dense_model.clone()
                },
                dims: None,
            },
        });
        Self {
            schema_version: SCHEMA_VERSION,
            compatibility: Compatibility {
                current: SCHEMA_VERSION,
                legacy: LEGACY_VERSIONS.to_vec(),
            },
            run_id: job.run_id.to_string(),
            created_at: crate::io::checks::now_rfc3339(),
            tool_version: env!("CARGO_PKG_VERSION"),
            collection: CollectionInfo {
                name: job.name.to_string(),
                input: job.input.to_path_buf(),
                kind,
            },
            models: Models {
                dense: ModelInfo {
                    files: job.dense_model.clone(),
                    dims: Some(dims),
                },
                sparse,
                rerank: None,
            },
            chunking: Chunking {
                chunk_tokens: job.settings.chunk_tokens,
                chunk_overlap: job.settings.chunk_overlap,
                truncated_chunks: 0,
            },
            dense_run: DenseRun {
                run_id: job.run_id.to_string(),
                dims,
                device: format!("{:?}", job.device.location()),
                precision: job.settings.precision,
                ..DenseRun::default()
            },
            sparse_run: StageRun {
                payload: None,
                skipped: None,
            },
            rerank_run: StageRun {
                payload: None,
                skipped: None,
            },
            counts: Counts::default(),
            metrics: StageMetrics::default(),
            gpu_memory_mb: None,
            warnings: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Adds a warning.
    pub fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// Records the sparse payload.
    pub fn sparse_done(
        &mut self,
        kind: &str,
        model: Option<String>,
        chunks: u64,
        nnz: u64,
        secs: f64,
    ) {
        self.sparse_run.payload = Some(SparsePayload {
            run_id: self.run_id.clone(),
            kind: kind.to_string(),
            model,
            chunks,
            avg_nnz: if chunks > 0 {
                round(nnz as f64 / chunks as f64, 3)
            } else {
                0.0
            },
            duration_s: round(secs, 3),
            chunks_per_s: if secs > 0.0 {
                (chunks as f64 / secs).round()
            } else {
                0.0
            },
            file: "sparse.jsonl".into(),
            peak_rss_mb: crate::metrics::peak_rss_mb(),
        });
    }

    /// Records the sparse stage as not run.
    pub fn sparse_skipped(&mut self, why: &str) {
        self.sparse_run.skipped = Some(why.to_string());
        self.warn(why.to_string());
    }

    /// Records the rerank payload and the cross-encoder.
    pub fn rerank_done(
        &mut self,
        model: &ModelFiles,
        s: &crate::config::EmbedSettings,
        results: &[super::rerank::QueryResult],
        pairs: u64,
    ) {
        let ms: Vec<f64> = results
            .iter()
            .map(|r| r.retrieval_ms + r.rerank_ms)
            .collect();
        let truncated: u64 = results.iter().map(|r| r.truncated_pairs).sum();
        if truncated > 0 {
            self.warn(format!(
                "{truncated} query-passage pair(s) cut to fit the cross-encoder"
            ));
        }
        self.models.rerank = Some(ModelInfo {
            files: model.clone(),
            dims: None,
        });
        self.rerank_run.payload = Some(RerankPayload {
            run_id: self.run_id.clone(),
            model: model.id.clone(),
            queries: results.len() as u64,
            candidates_per_query: s.rerank.top_n,
            rrf_k: s.rerank.rrf_k,
            pairs_scored: pairs,
            query_latency_ms: Latency::of(&ms),
            truncated_pairs: truncated,
            file: "rerank.jsonl".into(),
            peak_rss_mb: crate::metrics::peak_rss_mb(),
        });
    }

    /// Records the rerank stage as not run.
    pub fn rerank_skipped(&mut self, why: &str) {
        self.rerank_run.skipped = Some(why.to_string());
        self.warn(why.to_string());
    }

    /// Final counts, whole-run metrics and the files written.
    pub fn finish(&mut self, counts: Counts, metrics: StageMetrics, outputs: Vec<PathBuf>) {
        self.counts = counts;
        self.metrics = metrics;
        self.outputs = outputs;
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<PathBuf, EmbedError> {
        Ok(crate::io::atomic::write_json(path, self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::Latency;

    #[test]
    fn latency_percentiles_use_nearest_rank() {
        let l = Latency::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((l.p50, l.p95, l.max), (3.0, 5.0, 5.0));
        assert_eq!(Latency::of(&[]).max, 0.0);
    }
}
