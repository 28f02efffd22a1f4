//! `sbir embed`: chunk a collection with the model's tokenizer, encode dense vectors (BERT
//! through candle), build sparse vectors (BM25 over the WordPiece vocabulary, or SPLADE), and
//! export them with a versioned `processing_summary.json`, written last so a reader that sees
//! it sees every payload it lists.
//!
//! Documents are processed in blocks, and vectors and term counts spill to temporary files,
//! so memory stays bounded by the block size and the model, not by the collection.

pub mod bert;
pub mod chunk;
pub mod collection;
pub mod encoder;
pub mod export;
pub mod models;
pub mod perf;
pub mod rerank;
pub mod sparse;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{EmbedSettings, OutputFormat, OutputSettings};
use crate::embed::models::ModelFiles;
use crate::io::IoError;
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::metrics::StageTimer;
use crate::progress::Progress;
use bert::{BertConfig, Splade};
use chunk::{Chunk, Chunker};
use collection::{Document, Kind, Reject};
use encoder::DenseEncoder;
use export::{DenseSpill, VectorFormat};
use sparse::{Bm25Builder, SparseVector};
use summary::{Comparison, Summary};

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

/// What to embed and how.
pub struct Job<'a> {
    pub name: &'a str,
    pub input: &'a Path,
    /// `<processed_dir>/<dir_name>/<name>/`.
    pub out_dir: PathBuf,
    pub settings: &'a EmbedSettings,
    pub output: &'a OutputSettings,
    pub dense_model: ModelFiles,
    /// The SPLADE model when one is configured and sparse is on.
    pub splade_model: Option<ModelFiles>,
    pub sparse: bool,
    /// Queries for the rerank stage (`--queries`).
    pub queries: Option<&'a Path>,
    /// The cross-encoder, when reranking is on and there are queries.
    pub rerank_model: Option<ModelFiles>,
    pub device: Device,
    pub run_id: &'a str,
}

/// Documents per block: chunked in parallel, then encoded.
const BLOCK_DOCS: usize = 512;

/// One line of `chunks.jsonl`.
#[derive(Serialize)]
struct ChunkRow<'a> {
    id: String,
    doc_id: &'a str,
    chunk_index: u32,
    char_start: usize,
    char_end: usize,
    tokens: usize,
    text: &'a str,
    metadata: &'a serde_json::Value,
}

/// One line of `sparse.jsonl`.
#[derive(Serialize)]
struct SparseRow<'a> {
    id: &'a str,
    indices: &'a [u32],
    values: &'a [f32],
}

/// The sparse encoder in use.
enum SparseEncoder {
    Bm25(Bm25Builder),
    Splade(Box<Splade>, NdjsonWriter),
}

/// Embeds one collection; returns the summary it wrote.
pub fn embed_collection(job: Job, progress: &dyn Progress) -> Result<Summary, EmbedError> {
    let timer = StageTimer::start();
    let s = job.settings;
    let kind = Kind::of(job.input)?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| IoError::write(&job.out_dir, e))?;
    let out = |f: &str| job.out_dir.join(f);

    let load = StageTimer::start();
    let (encoder, chunker) = open_encoder(&job.dense_model, &job.device, s)?;
    let mut summary = Summary::new(&job, kind, encoder.dims());
    let size = s.chunk_tokens.min(encoder.max_tokens());
    if size < s.chunk_tokens {
        summary.warn(format!(
            "chunk_tokens {} exceeds the model's limit; chunks hold at most {size} tokens",
            s.chunk_tokens
        ));
    }
    let mut sparse = match (&job.splade_model, job.sparse) {
        (_, false) => None,
        (Some(m), true) => {
            let model = load_splade(m, &job.device)?;
            Some(SparseEncoder::Splade(
                Box::new(model),
                NdjsonWriter::create(&out("sparse.jsonl"))?,
            ))
        }
        (None, true) => Some(SparseEncoder::Bm25(
            Bm25Builder::new(chunker.tokenizer().get_vocab_size(true), &job.out_dir)
                .map_err(EmbedError::Spill)?,
        )),
    };
    summary.dense_run.load_s = load.elapsed_s();

    let mut chunks_out = NdjsonWriter::create(&out("chunks.jsonl"))?;
    let mut spill = DenseSpill::new(encoder.dims(), &job.out_dir).map_err(EmbedError::Spill)?;
    let mut ids: Vec<(String, String, u32)> = Vec::new();
    let mut rejects: Vec<Reject> = Vec::new();
    let mut block: Vec<Document> = Vec::with_capacity(BLOCK_DOCS);
    let mut stats = summary::Counts::default();
    let mut dense_s = 0.0;
    let mut sparse_s = 0.0;

    let mut flush = |block: &mut Vec<Document>,
                     summary: &mut Summary,
                     stats: &mut summary::Counts|
     -> Result<(), EmbedError> {
        let chunked: Vec<Result<Vec<Chunk>, EmbedError>> =
            block.par_iter().map(|d| chunker.chunk(d)).collect();
        let mut chunks = Vec::new();
        for (doc, c) in block.iter().zip(chunked) {
            let c = c?;
            if c.is_empty() {
                stats.empty_documents += 1;
                continue;
            }
            stats.documents += 1;
            for ch in &c {
                chunks_out.write(&ChunkRow {
                    id: ch.id(),
                    doc_id: &ch.doc_id,
                    chunk_index: ch.chunk_index,
                    char_start: ch.char_start,
                    char_end: ch.char_end,
                    tokens: ch.ids.len(),
                    text: &ch.text,
                    metadata: &doc.metadata,
                })?;
            }
            chunks.extend(c);
        }
        let t = StageTimer::start();
        let seqs: Vec<&[u32]> = chunks.iter().map(|c| c.ids.as_slice()).collect();
        let enc = encoder.encode(&seqs)?;
        spill.push(&enc.vectors).map_err(EmbedError::Spill)?;
        dense_s += t.elapsed_s();
        summary.dense_run.add_batches(&enc);
        let t = StageTimer::start();
        match &mut sparse {
            Some(SparseEncoder::Bm25(b)) => {
                for c in &chunks {
                    b.add(c.terms()).map_err(EmbedError::Spill)?;
                }
            }
            Some(SparseEncoder::Splade(model, w)) => {
                let vectors = splade_vectors(model, &seqs, s.batch_tokens)?;
                for (c, v) in chunks.iter().zip(&vectors) {
                    w.write(&SparseRow {
                        id: &c.id(),
                        indices: &v.indices,
                        values: &v.values,
                    })?;
                    stats.sparse_nnz += v.indices.len() as u64;
                }
            }
            None => {}
        }
        sparse_s += t.elapsed_s();
        stats.chunks += chunks.len() as u64;
        for c in chunks {
            let id = c.id();
            ids.push((id, c.doc_id, c.chunk_index));
        }
        progress.inc(block.len() as u64);
        block.clear();
        Ok(())
    };

    collection::read(
        job.input,
        kind,
        &mut |doc| {
            block.push(doc);
            if block.len() == BLOCK_DOCS {
                flush(&mut block, &mut summary, &mut stats)?;
            }
            Ok(())
        },
        &mut |r| rejects.push(r),
    )?;
    flush(&mut block, &mut summary, &mut stats)?;
    stats.rejected = rejects.len() as u64;

    // Dense: compare with the previous run before replacing it, then write the index files.
    let sha = spill.sha256();
    let rows = spill.rows;
    let mut reader = spill.into_reader().map_err(EmbedError::Spill)?;
    let previous =
        Comparison::against_previous(&job.out_dir, &ids, &mut reader, encoder.dims(), &sha)
            .unwrap_or_else(|e| {
                summary.warn(format!(
                    "dense vectors not compared with the previous run: {e}"
                ));
                None
            });
    let mut outputs = Vec::new();
    let dims = encoder.dims();
    let write = |path: PathBuf, f, r: &mut std::io::BufReader<std::fs::File>| {
        use std::io::Seek;
        r.rewind().map_err(EmbedError::Spill)?;
        export::write_vectors(&path, f, dims, rows, r).map_err(|e| IoError::write(&path, e))?;
        Ok::<_, EmbedError>(path)
    };
    outputs.push(write(out("dense.faiss"), VectorFormat::Faiss, &mut reader)?);
    if s.write_npy {
        outputs.push(write(out("dense.npy"), VectorFormat::Npy, &mut reader)?);
    }
    outputs.push(write_ids(&out("dense.ids"), &ids, job.output)?);
    outputs.push(chunks_out.commit()?);
    summary.dense_run.finish(rows, sha, dense_s, previous);

    // Sparse: the BM25 second pass, or the SPLADE file written as chunks went by.
    let splade = match sparse {
        Some(SparseEncoder::Bm25(b)) => {
            let t = StageTimer::start();
            let mut w = NdjsonWriter::create(&out("sparse.jsonl"))?;
            let mut i = 0;
            b.finish(s.sparse.bm25_k1 as f32, s.sparse.bm25_b as f32, &mut |v| {
                stats.sparse_nnz += v.indices.len() as u64;
                w.write(&SparseRow {
                    id: &ids[i].0,
                    indices: &v.indices,
                    values: &v.values,
                })?;
                i += 1;
                Ok(())
            })?;
            outputs.push(w.commit()?);
            sparse_s += t.elapsed_s();
            summary.sparse_done("bm25", None, stats.chunks, stats.sparse_nnz, sparse_s);
            None
        }
        Some(SparseEncoder::Splade(model, w)) => {
            outputs.push(w.commit()?);
            let id = job.splade_model.as_ref().map(|m| m.id.clone());
            summary.sparse_done("splade", id, stats.chunks, stats.sparse_nnz, sparse_s);
            Some(*model)
        }
        None => {
            summary.sparse_skipped("sparse stage disabled: no sparse.jsonl payload");
            None
        }
    };

    // Rerank: retrieval over the files just written, then the cross-encoder.
    match (job.queries, &job.rerank_model) {
        (None, _) => summary.rerank_skipped("rerank stage skipped: no --queries file given"),
        (Some(_), None) => summary.rerank_skipped(
            "rerank stage skipped: reranking is off (embed.rerank.enabled, EMBEDDER_ENABLE_RERANK, --disable-rerank)",
        ),
        (Some(queries), Some(model)) => {
            let reranker = rerank::Reranker::load(model, &job.device, s.rerank.batch_cap)?;
            let searcher = Searcher {
                encoder,
                chunker,
                splade,
                sparse: job.sparse,
                reranker: Some(reranker),
                batch_tokens: s.batch_tokens,
            };
            let queries = rerank::read_queries(queries)?;
            let results = searcher.search(&job.out_dir, &queries, s.rerank.top_n, s.rerank.rrf_k as f32)?;
            let path = out("rerank.jsonl");
            let mut w = NdjsonWriter::create(&path)?;
            let mut pairs = 0;
            for r in &results {
                let after = r.reranked.as_deref().unwrap_or_default();
                pairs += after.len() as u64;
                w.write(&rerank::RerankLine {
                    run_id: job.run_id,
                    query_id: &r.query.query_id,
                    query: &r.query.text,
                    before: &r.fused,
                    after,
                    retrieval_ms: r.retrieval_ms,
                    rerank_ms: r.rerank_ms,
                    truncated_pairs: r.truncated_pairs,
                })?;
            }
            outputs.push(w.commit()?);
            summary.rerank_done(model, s, &results, pairs);
        }
    }

    if !rejects.is_empty() {
        let mut w = NdjsonWriter::create(&out("rejects.ndjson"))?;
        for r in &rejects {
            w.write(r)?;
        }
        outputs.push(w.commit()?);
        summary.warn(format!(
            "{} document(s) could not be read; see rejects.ndjson",
            rejects.len()
        ));
    }
    if stats.empty_documents > 0 {
        summary.warn(format!(
            "{} empty document(s) skipped",
            stats.empty_documents
        ));
    }
    summary.finish(stats, timer.finish(rows), outputs);
    summary.write(&out("processing_summary.json"))?;
    Ok(summary)
}

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
    let encoder = DenseEncoder::load(model, device, s.batch_tokens)?;
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
