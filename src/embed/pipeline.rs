//! One collection, start to finish: read documents in blocks, chunk each block in parallel,
//! encode dense (and sparse) vectors into spill files, then export the index files, the
//! sparse payload, the rerank results and `processing_summary.json` (last).

use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};

use candle_core::Device;
use rayon::prelude::*;
use serde::Serialize;

use super::agreement;
use super::bert::Splade;
use super::chunk::{Chunk, Chunker};
use super::collection::{self, Document, Kind, Reject};
use super::encoder::{DenseEncoder, EncoderOptions};
use super::export::{self, DenseSpill, VectorFormat};
use super::models::ModelFiles;
use super::sparse::Bm25Builder;
use super::summary::{self, Comparison, Summary};
use super::{EmbedError, Searcher, load_splade, open_encoder, rerank, splade_vectors, write_ids};
use crate::config::{EmbedSettings, OutputSettings, Precision};
use crate::io::IoError;
use crate::io::table::NdjsonWriter;
use crate::metrics::StageTimer;
use crate::progress::Progress;

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

impl Job<'_> {
    fn out(&self, file: &str) -> PathBuf {
        self.out_dir.join(file)
    }
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
    let sparse = open_sparse(&job, &chunker)?;
    summary.dense_run.load_s = load.elapsed_s();

    let mut pass = Pass::new(&job, &encoder, &chunker, sparse)?;
    let mut rejects: Vec<Reject> = Vec::new();
    let mut block: Vec<Document> = Vec::with_capacity(BLOCK_DOCS);
    collection::read(
        job.input,
        kind,
        &mut |doc| {
            block.push(doc);
            if block.len() == BLOCK_DOCS {
                pass.block(&mut block, &mut summary, progress)?;
            }
            Ok(())
        },
        &mut |r| rejects.push(r),
    )?;
    pass.block(&mut block, &mut summary, progress)?;
    let Passed {
        mut outputs,
        splade,
        mut stats,
        rows,
    } = pass.finish(&job, &mut summary)?;

    rerank_queries(&job, encoder, chunker, splade, &mut summary, &mut outputs)?;
    if !rejects.is_empty() {
        outputs.push(NdjsonWriter::write_all(
            &job.out("rejects.ndjson"),
            &rejects,
        )?);
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
    stats.rejected = rejects.len() as u64;
    summary.finish(stats, timer.finish(rows), outputs);
    summary.write(&job.out("processing_summary.json"))?;
    Ok(summary)
}

/// The sparse encoder the job asks for: SPLADE writing as it goes, BM25 counting terms for
/// a second pass, or none.
fn open_sparse(job: &Job, chunker: &Chunker) -> Result<Option<SparseEncoder>, EmbedError> {
    Ok(match (&job.splade_model, job.sparse) {
        (_, false) => None,
        (Some(m), true) => Some(SparseEncoder::Splade(
            Box::new(load_splade(m, &job.device)?),
            NdjsonWriter::create(&job.out("sparse.jsonl"))?,
        )),
        (None, true) => Some(SparseEncoder::Bm25(
            Bm25Builder::new(chunker.tokenizer().get_vocab_size(true), &job.out_dir)
                .map_err(EmbedError::Spill)?,
        )),
    })
}

/// The pass over the documents: what has been written and spilled so far.
struct Pass<'a> {
    encoder: &'a DenseEncoder,
    chunker: &'a Chunker,
    settings: &'a EmbedSettings,
    sparse: Option<SparseEncoder>,
    chunks_out: NdjsonWriter,
    spill: DenseSpill,
    /// (chunk id, document id, chunk index) of every vector, in order.
    ids: Vec<(String, String, u32)>,
    stats: summary::Counts,
    dense_s: f64,
    sparse_s: f64,
    /// With int8: the first chunks, to compare with fp32 at the end.
    agreement: Option<agreement::Sample>,
}

impl<'a> Pass<'a> {
    fn new(
        job: &'a Job,
        encoder: &'a DenseEncoder,
        chunker: &'a Chunker,
        sparse: Option<SparseEncoder>,
    ) -> Result<Self, EmbedError> {
        Ok(Self {
            encoder,
            chunker,
            settings: job.settings,
            sparse,
            chunks_out: NdjsonWriter::create(&job.out("chunks.jsonl"))?,
            spill: DenseSpill::new(encoder.dims(), &job.out_dir).map_err(EmbedError::Spill)?,
            ids: Vec::new(),
            stats: summary::Counts::default(),
            dense_s: 0.0,
            sparse_s: 0.0,
            agreement: (encoder.precision() == Precision::Int8
                && job.settings.int8_check_chunks > 0)
                .then(|| agreement::Sample::new(job.settings.int8_check_chunks)),
        })
    }

    /// Chunks, writes and encodes one block of documents, then empties it.
    fn block(
        &mut self,
        block: &mut Vec<Document>,
        summary: &mut Summary,
        progress: &dyn Progress,
    ) -> Result<(), EmbedError> {
        let chunker = self.chunker;
        let chunked: Vec<Result<Vec<Chunk>, EmbedError>> =
            block.par_iter().map(|d| chunker.chunk(d)).collect();
        let mut chunks = Vec::new();
        for (doc, c) in block.iter().zip(chunked) {
            let c = c?;
            if c.is_empty() {
                self.stats.empty_documents += 1;
                continue;
            }
            self.stats.documents += 1;
            for ch in &c {
                self.chunks_out.write(&ChunkRow {
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
        let enc = self.encoder.encode(&seqs)?;
        self.spill.push(&enc.vectors).map_err(EmbedError::Spill)?;
        self.dense_s += t.elapsed_s();
        summary.dense_run.add_batches(&enc);
        summary.gpu_memory_mb = super::device::peak(summary.gpu_memory_mb, enc.device_memory_mb);
        if let Some(a) = &mut self.agreement {
            a.offer(&seqs, &enc.vectors, self.encoder.dims());
        }
        let t = StageTimer::start();
        match &mut self.sparse {
            Some(SparseEncoder::Bm25(b)) => {
                for c in &chunks {
                    b.add(c.terms()).map_err(EmbedError::Spill)?;
                }
            }
            Some(SparseEncoder::Splade(model, w)) => {
                let vectors = splade_vectors(model, &seqs, self.settings.batch_tokens)?;
                for (c, v) in chunks.iter().zip(&vectors) {
                    w.write(&SparseRow {
                        id: &c.id(),
                        indices: &v.indices,
                        values: &v.values,
                    })?;
                    self.stats.sparse_nnz += v.indices.len() as u64;
                }
            }
            None => {}
        }
        self.sparse_s += t.elapsed_s();
        self.stats.chunks += chunks.len() as u64;
        for c in chunks {
            let id = c.id();
            self.ids.push((id, c.doc_id, c.chunk_index));
        }
        progress.inc(block.len() as u64);
        block.clear();
        Ok(())
    }

    /// Writes the dense index files (after comparing with the previous run's) and the sparse
    /// payload.
    fn finish(mut self, job: &Job, summary: &mut Summary) -> Result<Passed, EmbedError> {
        let s = self.settings;
        let dims = self.encoder.dims();
        // Dense: compare with the previous run before replacing it, then write the index files.
        let sha = self.spill.sha256();
        let rows = self.spill.rows;
        let mut reader = self.spill.into_reader().map_err(EmbedError::Spill)?;
        let previous =
            Comparison::against_previous(&job.out_dir, &self.ids, &mut reader, dims, &sha)
                .unwrap_or_else(|e| {
                    summary.warn(format!(
                        "dense vectors not compared with the previous run: {e}"
                    ));
                    None
                });
        let write = |path: PathBuf, f, r: &mut BufReader<std::fs::File>| {
            r.rewind().map_err(EmbedError::Spill)?;
            export::write_vectors(&path, f, dims, rows, r).map_err(|e| IoError::write(&path, e))?;
            Ok::<_, EmbedError>(path)
        };
        let mut outputs = vec![write(
            job.out("dense.faiss"),
            VectorFormat::Faiss,
            &mut reader,
        )?];
        if s.write_npy {
            outputs.push(write(job.out("dense.npy"), VectorFormat::Npy, &mut reader)?);
        }
        outputs.push(write_ids(&job.out("dense.ids"), &self.ids, job.output)?);
        outputs.push(self.chunks_out.commit()?);
        summary.dense_run.finish(rows, sha, self.dense_s, previous);
        if let Some(a) = self.agreement.take() {
            let options = EncoderOptions::from(s);
            let g = a.measure(&job.dense_model, &job.device, options)?;
            if let Some(g) = g.as_ref().filter(|g| g.min_cosine < agreement::MIN_COSINE) {
                summary.warn(format!(
                    "int8 vectors agree with fp32 down to cosine {} (under {}): this model may need --precision fp32",
                    g.min_cosine,
                    agreement::MIN_COSINE
                ));
            }
            summary.dense_run.int8_agreement = g;
        }

        // Sparse: the BM25 second pass, or the SPLADE file written as chunks went by.
        let stats = &mut self.stats;
        let splade = match self.sparse {
            Some(SparseEncoder::Bm25(b)) => {
                let t = StageTimer::start();
                let mut w = NdjsonWriter::create(&job.out("sparse.jsonl"))?;
                let mut i = 0;
                b.finish(s.sparse.bm25_k1 as f32, s.sparse.bm25_b as f32, &mut |v| {
                    stats.sparse_nnz += v.indices.len() as u64;
                    w.write(&SparseRow {
                        id: &self.ids[i].0,
                        indices: &v.indices,
                        values: &v.values,
                    })?;
                    i += 1;
                    Ok(())
                })?;
                outputs.push(w.commit()?);
                let secs = self.sparse_s + t.elapsed_s();
                summary.sparse_done("bm25", None, stats.chunks, stats.sparse_nnz, secs);
                None
            }
            Some(SparseEncoder::Splade(model, w)) => {
                outputs.push(w.commit()?);
                let id = job.splade_model.as_ref().map(|m| m.id.clone());
                summary.sparse_done("splade", id, stats.chunks, stats.sparse_nnz, self.sparse_s);
                Some(*model)
            }
            None => {
                summary.sparse_skipped("sparse stage disabled: no sparse.jsonl payload");
                None
            }
        };
        Ok(Passed {
            outputs,
            splade,
            stats: self.stats,
            rows,
        })
    }
}

/// What the pass leaves: the files written, the SPLADE model (for reranking), the counts and
/// the vector rows.
struct Passed {
    outputs: Vec<PathBuf>,
    splade: Option<Splade>,
    stats: summary::Counts,
    rows: u64,
}

/// Rerank: retrieval over the files just written, then the cross-encoder, into
/// `rerank.jsonl`; or why it was skipped.
fn rerank_queries(
    job: &Job,
    encoder: DenseEncoder,
    chunker: Chunker,
    splade: Option<Splade>,
    summary: &mut Summary,
    outputs: &mut Vec<PathBuf>,
) -> Result<(), EmbedError> {
    let s = job.settings;
    let (queries, model) = match (job.queries, &job.rerank_model) {
        (None, _) => {
            summary.rerank_skipped("rerank stage skipped: no --queries file given");
            return Ok(());
        }
        (Some(_), None) => {
            summary.rerank_skipped(
                "rerank stage skipped: reranking is off (embed.rerank.enabled, EMBEDDER_ENABLE_RERANK, --disable-rerank)",
            );
            return Ok(());
        }
        (Some(q), Some(m)) => (q, m),
    };
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
    let results = searcher.search(
        &job.out_dir,
        &queries,
        s.rerank.top_n,
        s.rerank.rrf_k as f32,
    )?;
    let mut w = NdjsonWriter::create(&job.out("rerank.jsonl"))?;
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
    Ok(())
}
