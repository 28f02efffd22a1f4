//! Retrieval and reranking over an embedded collection: dense inner product over
//! `dense.faiss` and sparse dot products over `sparse.jsonl` (both streamed, so memory does
//! not grow with the collection), fused by reciprocal rank, then the top candidates rescored
//! by a cross-encoder. Serves the rerank stage of `sbir embed` and `sbir embed search`.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EmbedError;
use super::bert::{self, BertConfig, CrossEncoder};
use super::chunk::Chunker;
use super::encoder;
use super::export::FlatIndex;
use super::sparse::SparseVector;
use crate::embed::models::ModelFiles;
use crate::io::IoError;

/// A query of the queries file (`{query_id, text}` per line).
#[derive(Debug, Clone)]
pub struct Query {
    pub query_id: String,
    pub text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    query_id: Value,
    text: String,
}

/// Reads a JSONL queries file; a malformed line stops with its line number.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, EmbedError> {
    let file = std::fs::File::open(path).map_err(|e| EmbedError::input(path, e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = |reason: String| EmbedError::input(path, format!("line {}: {reason}", i + 1));
        let line = line.map_err(|e| at(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let q: QueryLine = serde_json::from_str(&line)
            .map_err(|e| at(format!("expected {{\"query_id\", \"text\"}}: {e}")))?;
        let query_id = match q.query_id {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(at(format!(
                    "query_id must be a string or number, got {other}"
                )));
            }
        };
        out.push(Query {
            query_id,
            text: q.text,
        });
    }
    Ok(out)
}

/// A candidate chunk of one query, with every score it has.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Row in `dense.faiss` / line in `chunks.jsonl`.
    pub row: u64,
    pub id: String,
    pub doc_id: String,
    pub dense_score: Option<f32>,
    pub sparse_score: Option<f32>,
    pub fused_score: f64,
    /// Rank after fusion (1-based).
    pub fused_rank: usize,
    pub rerank_score: Option<f32>,
    #[serde(skip)]
    pub text: String,
}

/// One query's results: candidates in fused order, and in reranked order when reranked.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub query: Query,
    pub fused: Vec<Candidate>,
    pub reranked: Option<Vec<Candidate>>,
    pub retrieval_ms: f64,
    pub rerank_ms: f64,
    pub truncated_pairs: u64,
}

/// The `k` best `(row, score)` pairs seen so far.
struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

/// Heap entry ordered so the heap's top is the worst kept score.
#[derive(PartialEq)]
struct Entry(f32, u64);

impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn push(&mut self, row: u64, score: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Entry(score, row));
        } else if self.heap.peek().is_some_and(|w| score > w.0) {
            self.heap.pop();
            self.heap.push(Entry(score, row));
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(u64, f32)> {
        let mut v: Vec<(u64, f32)> = self.heap.into_iter().map(|e| (e.1, e.0)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// The `k` rows with the highest inner product for each query vector.
pub fn dense_top(
    index: &Path,
    queries: &[Vec<f32>],
    k: usize,
) -> Result<Vec<Vec<(u64, f32)>>, EmbedError> {
    let err = |e: &dyn std::fmt::Display| IoError::read(index, e);
    let mut idx = FlatIndex::open(index).map_err(|e| err(&e))?;
    let d = idx.dims;
    let flat: Vec<f32> = queries.iter().flatten().copied().collect();
    let q = Tensor::from_vec(flat, (queries.len(), d), &Device::Cpu)
        .and_then(|t| t.t())
        .map_err(|e| EmbedError::Encode(e.to_string()))?;
    let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
    let (mut done, mut buf) = (0u64, Vec::new());
    while done < idx.rows {
        let n = (idx.rows - done).min(8192) as usize;
        idx.read_rows(n, &mut buf).map_err(|e| err(&e))?;
        let scores = Tensor::from_slice(&buf, (n, d), &Device::Cpu)
            .and_then(|b| b.matmul(&q))
            .and_then(|s| s.to_vec2::<f32>())
            .map_err(|e| EmbedError::Encode(e.to_string()))?;
        for (r, row) in scores.iter().enumerate() {
            for (t, &s) in tops.iter_mut().zip(row) {
                t.push(done + r as u64, s);
            }
        }
        done += n as u64;
    }
    Ok(tops.into_iter().map(TopK::into_sorted).collect())
}

#[derive(Deserialize)]
struct SparseLine {
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// The `k` rows with the highest sparse dot product (positive only) for each query vector.
pub fn sparse_top(
    path: &Path,
    queries: &[SparseVector],
    k: usize,
) -> Result<Vec<Vec<(u64, f32)>>, EmbedError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::read(path, e))?;
    let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
    for (row, line) in std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .enumerate()
    {
        let at = |e: &dyn std::fmt::Display| IoError::read(path, format!("line {}: {e}", row + 1));
        let line = line.map_err(|e| at(&e))?;
        let v: SparseLine = serde_json::from_str(&line).map_err(|e| at(&e))?;
        let v = SparseVector {
            indices: v.indices,
            values: v.values,
        };
        for (t, q) in tops.iter_mut().zip(queries) {
            let s = v.dot(q);
            if s > 0.0 {
                t.push(row as u64, s);
            }
        }
    }
    Ok(tops.into_iter().map(TopK::into_sorted).collect())
}

/// Reciprocal-rank fusion of ranked lists: `Σ 1 / (k + rank)`, best first, ties by row.
pub fn fuse(lists: &[&[(u64, f32)]], k: f32) -> Vec<(u64, f64)> {
    let mut score: HashMap<u64, f64> = HashMap::new();
    for list in lists {
        for (rank, (row, _)) in list.iter().enumerate() {
            *score.entry(*row).or_default() += 1.0 / (k as f64 + rank as f64 + 1.0);
        }
    }
    let mut v: Vec<(u64, f64)> = score.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[derive(Deserialize)]
struct ChunkLine {
    id: String,
    doc_id: String,
    text: String,
}

/// Id, document id and text of the wanted rows of `chunks.jsonl`.
fn chunk_rows(path: &Path, wanted: &HashSet<u64>) -> Result<HashMap<u64, ChunkLine>, EmbedError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::read(path, e))?;
    let mut out = HashMap::new();
    for (row, line) in std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .enumerate()
    {
        if !wanted.contains(&(row as u64)) {
            continue;
        }
        let line = line.map_err(|e| IoError::read(path, e))?;
        let c: ChunkLine = serde_json::from_str(&line)
            .map_err(|e| IoError::read(path, format!("line {}: {e}", row + 1)))?;
        out.insert(row as u64, c);
    }
    Ok(out)
}

/// A cross-encoder with its tokenizer.
pub struct Reranker {
    model: CrossEncoder,
    tokenizer: Chunker,
    batch_cap: usize,
}

impl Reranker {
    /// Loads a `BertForSequenceClassification` cross-encoder.
    pub fn load(files: &ModelFiles, device: &Device, batch_cap: usize) -> Result<Self, EmbedError> {
        let config = BertConfig::read(&files.file("config.json"))?;
        let weights = files.file("model.safetensors");
        let vb = bert::var_builder(&weights, device)?;
        let model = CrossEncoder::load(vb, &config).map_err(|e| EmbedError::model(&weights, e))?;
        let tok_path = files.file("tokenizer.json");
        let tok = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| EmbedError::model(&tok_path, e))?;
        let max = config.max_position_embeddings.min(512);
        Ok(Self {
            model,
            tokenizer: Chunker::new(tok, max, 0)?,
            batch_cap,
        })
    }

    /// Relevance of each passage to `query`, and how many pairs had to be cut to fit.
    pub fn score(&self, query: &str, passages: &[&str]) -> Result<(Vec<f32>, u64), EmbedError> {
        let mut pairs = Vec::with_capacity(passages.len());
        let mut truncated = 0;
        for p in passages {
            let (ids, types, cut) = self.tokenizer.pair(query, p)?;
            truncated += u64::from(cut);
            pairs.push((ids, types));
        }
        let seqs: Vec<&[u32]> = pairs.iter().map(|p| p.0.as_slice()).collect();
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let mut scores = vec![0f32; passages.len()];
        for batch in encoder::batches(&seqs, self.batch_cap * longest) {
            let len = batch.iter().map(|&i| seqs[i].len()).max().unwrap_or(0);
            let (ids, mask) = encoder::pad(batch.iter().map(|&i| seqs[i]), len);
            let (types, _) = encoder::pad(batch.iter().map(|&i| pairs[i].1.as_slice()), len);
            let run = || -> candle_core::Result<Vec<f32>> {
                let dev = &self.model.bert.device;
                let shape = (batch.len(), len);
                self.model
                    .forward(
                        &Tensor::from_slice(&ids, shape, dev)?,
                        &Tensor::from_slice(&types, shape, dev)?,
                        &Tensor::from_slice(&mask, shape, dev)?,
                    )?
                    .to_vec1()
            };
            let out = run().map_err(|e| EmbedError::Encode(e.to_string()))?;
            for (&i, s) in batch.iter().zip(out) {
                scores[i] = s;
            }
        }
        Ok((scores, truncated))
    }
}

/// The queries as vectors, and what to do with their candidates.
pub struct Retrieval<'a> {
    /// Dense query vectors (from the collection's encoder), one per query.
    pub dense: Vec<Vec<f32>>,
    /// Sparse query vectors, when the collection has sparse vectors.
    pub sparse: Option<Vec<SparseVector>>,
    pub reranker: Option<&'a Reranker>,
    pub top_n: usize,
    pub rrf_k: f32,
}

/// Retrieves, fuses and (with a reranker) reranks the candidates of every query over the
/// collection files in `dir`.
pub fn search(
    dir: &Path,
    queries: &[Query],
    r: &Retrieval,
) -> Result<Vec<QueryResult>, EmbedError> {
    let start = Instant::now();
    let dense = dense_top(&dir.join("dense.faiss"), &r.dense, r.top_n)?;
    let sparse = match &r.sparse {
        Some(v) => sparse_top(&dir.join("sparse.jsonl"), v, r.top_n)?,
        None => vec![Vec::new(); queries.len()],
    };
    let fused: Vec<Vec<(u64, f64)>> = dense
        .iter()
        .zip(&sparse)
        .map(|(d, s)| {
            let mut f = fuse(&[d, s], r.rrf_k);
            f.truncate(r.top_n);
            f
        })
        .collect();
    let wanted: HashSet<u64> = fused.iter().flatten().map(|(row, _)| *row).collect();
    let chunks = chunk_rows(&dir.join("chunks.jsonl"), &wanted)?;
    let retrieval_ms = start.elapsed().as_secs_f64() * 1e3 / queries.len().max(1) as f64;
    let mut out = Vec::with_capacity(queries.len());
    for (qi, q) in queries.iter().enumerate() {
        let lookup =
            |list: &[(u64, f32)], row: u64| list.iter().find(|(r, _)| *r == row).map(|(_, s)| *s);
        let candidates: Vec<Candidate> = fused[qi]
            .iter()
            .enumerate()
            .filter_map(|(rank, &(row, score))| {
                let c = chunks.get(&row)?;
                Some(Candidate {
                    row,
                    id: c.id.clone(),
                    doc_id: c.doc_id.clone(),
                    dense_score: lookup(&dense[qi], row),
                    sparse_score: lookup(&sparse[qi], row),
                    fused_score: score,
                    fused_rank: rank + 1,
                    rerank_score: None,
                    text: c.text.clone(),
                })
            })
            .collect();
        let t = Instant::now();
        let (reranked, truncated) = match r.reranker {
            Some(m) if !candidates.is_empty() => {
                let passages: Vec<&str> = candidates.iter().map(|c| c.text.as_str()).collect();
                let (scores, truncated) = m.score(&q.text, &passages)?;
                let mut v: Vec<Candidate> = candidates
                    .iter()
                    .cloned()
                    .zip(scores)
                    .map(|(mut c, s)| {
                        c.rerank_score = Some(s);
                        c
                    })
                    .collect();
                v.sort_by(|a, b| {
                    b.rerank_score
                        .unwrap_or(f32::MIN)
                        .total_cmp(&a.rerank_score.unwrap_or(f32::MIN))
                        .then(a.fused_rank.cmp(&b.fused_rank))
                });
                (Some(v), truncated)
            }
            Some(_) => (Some(Vec::new()), 0),
            None => (None, 0),
        };
        out.push(QueryResult {
            query: q.clone(),
            fused: candidates,
            reranked,
            retrieval_ms,
            rerank_ms: t.elapsed().as_secs_f64() * 1e3,
            truncated_pairs: truncated,
        });
    }
    Ok(out)
}

/// One line of `rerank.jsonl`.
#[derive(Serialize)]
pub struct RerankLine<'a> {
    pub run_id: &'a str,
    pub query_id: &'a str,
    pub query: &'a str,
    /// Candidates in fused order (before reranking).
    pub before: &'a [Candidate],
    /// Candidates in cross-encoder order.
    pub after: &'a [Candidate],
    pub retrieval_ms: f64,
    pub rerank_ms: f64,
    pub truncated_pairs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_and_fusion_rewards_agreement() {
        let mut t = TopK::new(2);
        for (row, s) in [(0, 0.1), (1, 0.9), (2, 0.5), (3, 0.7)] {
            t.push(row, s);
        }
        assert_eq!(t.into_sorted(), vec![(1, 0.9), (3, 0.7)]);
        let a = [(1, 0.9), (2, 0.8)];
        let b = [(2, 5.0), (3, 4.0)];
        let f = fuse(&[&a, &b], 60.0);
        assert_eq!(f[0].0, 2, "in both lists: first");
        assert!((f[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 1, 3]);
    }
}
