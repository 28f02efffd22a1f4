//! `sbir embed`: chunk a collection with the model's tokenizer, encode dense vectors (BERT
//! through candle), build sparse vectors (BM25 over the WordPiece vocabulary, or SPLADE), and
//! export them with a versioned `processing_summary.json`, written last so a reader that sees
//! it sees every payload it lists.
//!
//! Documents are processed in blocks, and vectors and term counts spill to temporary files,
//! so memory stays bounded by the block size and the model, not by the collection.

pub mod agreement;
mod attention;
pub mod bert;
pub mod chunk;
pub mod collection;
mod cpu;
pub mod device;
pub mod encoder;
pub mod export;
pub mod int8;
pub mod models;
mod norm;
mod packed;
pub mod perf;
mod pipeline;
pub mod rerank;
mod simd;
mod softmax;
pub mod sparse;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use candle_core::{Device, Tensor};

use crate::config::{EmbedSettings, OutputFormat, OutputSettings};
use crate::embed::models::ModelFiles;
use crate::io::IoError;
use crate::io::table::TableWriter;
use bert::{BertConfig, Splade};
use chunk::Chunker;
use collection::Document;
use encoder::DenseEncoder;
pub use pipeline::{Job, embed_collection};
use sparse::SparseVector;

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    NotFound(#[from] crate::embed::models::ModelNotFound),
    #[error("model file {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("collection {path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("unknown collection {name:?}; configured: {known} (or use --input PATH --name NAME)")]
    UnknownCollection { name: String, known: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("temporary spill file: {0}")]
    Spill(std::io::Error),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl EmbedError {
    /// A problem with a model file.
    pub fn model(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Model {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// A problem with a collection's input.
    pub fn input(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Input {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// Errors in what the user gave (exit 2) rather than failures while running (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_)
                | Self::Model { .. }
                | Self::Tokenizer(_)
                | Self::Input { .. }
                | Self::UnknownCollection { .. }
        ) || matches!(self, Self::Io(e) if e.is_input())
    }
}

/// Summary schema version written by this build, and the older ones readers may meet.
pub const SCHEMA_VERSION: &str = "v4.1";
pub const LEGACY_VERSIONS: [&str; 1] = ["v4.0"];

/// What answering queries over an embedded collection needs: the collection's encoder and
/// tokenizer, its sparse encoder, and optionally a cross-encoder.
pub struct Searcher {
    pub encoder: DenseEncoder,
    pub chunker: Chunker,
    pub splade: Option<Splade>,
    /// Whether the collection has sparse vectors.
    pub sparse: bool,
    pub reranker: Option<rerank::Reranker>,
    pub batch_tokens: usize,
}

impl Searcher {
    /// Loads the models a search needs; `splade` only when the collection used SPLADE.
    pub fn load(
        dense: &ModelFiles,
        splade: Option<&ModelFiles>,
        sparse: bool,
        reranker: Option<rerank::Reranker>,
        settings: &EmbedSettings,
        device: &Device,
    ) -> Result<Self, EmbedError> {
        let (encoder, chunker) = open_encoder(dense, device, settings)?;
        let splade = match splade {
            Some(m) => Some(load_splade(m, device)?),
            None => None,
        };
        Ok(Self {
            encoder,
            chunker,
            splade,
            sparse,
            reranker,
            batch_tokens: settings.batch_tokens,
        })
    }

    /// Retrieves (dense + sparse, fused) and reranks the top `top_n` chunks for each query.
    pub fn search(
        &self,
        dir: &Path,
        queries: &[rerank::Query],
        top_n: usize,
        rrf_k: f32,
    ) -> Result<Vec<rerank::QueryResult>, EmbedError> {
        let ids: Vec<Vec<u32>> = queries
            .iter()
            .map(|q| self.chunker.encode(&q.text))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let d = self.encoder.dims();
        let dense = self
            .encoder
            .encode(&refs)?
            .vectors
            .chunks(d)
            .map(<[f32]>::to_vec)
            .collect();
        let sparse = match (&self.splade, self.sparse) {
            (_, false) => None,
            (Some(m), true) => Some(splade_vectors(m, &refs, self.batch_tokens)?),
            (None, true) => Some(
                refs.iter()
                    .map(|s| SparseVector::query(&s[1..s.len() - 1]))
                    .collect(),
            ),
        };
        let r = rerank::Retrieval {
            dense,
            sparse,
            reranker: self.reranker.as_ref(),
            top_n,
            rrf_k,
        };
        rerank::search(dir, queries, &r)
    }
}

/// The dense encoder of `model` and a chunker over its tokenizer, sized by the settings
/// (never beyond the model's own limit).
pub fn open_encoder(
    model: &ModelFiles,
    device: &Device,
    s: &EmbedSettings,
) -> Result<(DenseEncoder, Chunker), EmbedError> {
    let encoder = DenseEncoder::load(model, device, s.into())?;
    let tok_path = model.file("tokenizer.json");
    let tokenizer =
        tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| EmbedError::model(&tok_path, e))?;
    let size = s.chunk_tokens.min(encoder.max_tokens());
    let chunker = Chunker::new(tokenizer, size, s.chunk_overlap)?;
    Ok((encoder, chunker))
}

/// One L2-normalised vector per text: the mean of its chunks' vectors (so a long abstract is
/// read whole, never cut at the model's limit); a text without tokens gets zeros.
pub fn embed_texts(
    encoder: &DenseEncoder,
    chunker: &Chunker,
    texts: &[&str],
) -> Result<Vec<f32>, EmbedError> {
    let mut owner = Vec::new();
    let mut seqs = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let doc = Document {
            id: String::new(),
            text: t.to_string(),
            metadata: serde_json::Value::Null,
            markdown: false,
        };
        for c in chunker.chunk(&doc)? {
            owner.push(i);
            seqs.push(c.ids);
        }
    }
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let chunks = encoder.encode(&refs)?.vectors;
    let d = encoder.dims();
    let mut out = vec![0f32; texts.len() * d];
    for (&i, v) in owner.iter().zip(chunks.chunks_exact(d)) {
        for (o, x) in out[i * d..(i + 1) * d].iter_mut().zip(v) {
            *o += x;
        }
    }
    out.chunks_exact_mut(d).for_each(l2_normalize);
    Ok(out)
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Loads a SPLADE (`BertForMaskedLM`) model.
fn load_splade(m: &ModelFiles, device: &Device) -> Result<Splade, EmbedError> {
    let config = BertConfig::read(&m.file("config.json"))?;
    let weights = m.file("model.safetensors");
    let vb = bert::var_builder(&weights, device)?;
    Splade::load(vb, &config).map_err(|e| EmbedError::model(&weights, e))
}

/// Padded tokens per SPLADE batch.
const SPLADE_BATCH_TOKENS: usize = 512;

/// SPLADE vectors for token sequences, in input order.
fn splade_vectors(
    model: &Splade,
    seqs: &[&[u32]],
    budget: usize,
) -> Result<Vec<SparseVector>, EmbedError> {
    let mut out = vec![SparseVector::default(); seqs.len()];
    // The MLM logits are tokens × vocabulary floats (8 MB per 64 tokens with BERT's 30,522
    // words), several times over: smaller batches keep that bounded.
    for batch in encoder::batches(seqs, budget.min(SPLADE_BATCH_TOKENS)) {
        let longest = batch.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
        let (ids, mask) = encoder::pad(batch.iter().map(|&i| seqs[i]), longest);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let dev = &model.bert.device;
            let ids = Tensor::from_slice(&ids, (batch.len(), longest), dev)?;
            let mask = Tensor::from_slice(&mask, (batch.len(), longest), dev)?;
            model.forward(&ids, &ids.zeros_like()?, &mask)?.to_vec2()
        };
        let rows = run().map_err(|e| EmbedError::Encode(e.to_string()))?;
        for (&i, row) in batch.iter().zip(rows) {
            let v = &mut out[i];
            for (t, w) in row.into_iter().enumerate() {
                if w > 0.0 {
                    v.indices.push(t as u32);
                    v.values.push(w);
                }
            }
        }
    }
    Ok(out)
}

/// `dense.ids.parquet`: chunk id, document id and chunk index in vector row order.
fn write_ids(
    stem: &Path,
    ids: &[(String, String, u32)],
    output: &OutputSettings,
) -> Result<PathBuf, EmbedError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("chunk_index", DataType::UInt32, false),
    ]));
    let settings = OutputSettings {
        format: OutputFormat::Parquet,
        ..output.clone()
    };
    let mut w = TableWriter::create(stem, schema.clone(), &settings)?;
    for part in ids.chunks(65536) {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(part.iter().map(|r| &r.0))),
                Arc::new(StringArray::from_iter_values(part.iter().map(|r| &r.1))),
                Arc::new(UInt32Array::from_iter_values(part.iter().map(|r| r.2))),
            ],
        )
        .map_err(|e| IoError::write(stem, e))?;
        w.write(&batch)?;
    }
    Ok(w.commit()?.remove(0))
}
