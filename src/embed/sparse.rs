//! Lexical sparse vectors that need no extra weights: BM25 term weights over the dense model's
//! WordPiece vocabulary, with IDF computed over the collection. A query scores a chunk by the
//! sum of the chunk's weights for the query's terms (the BM25 score). Term counts spill to a
//! temporary file between the two passes, so memory stays flat whatever the collection size.

use std::io::{BufReader, BufWriter, Read, Seek, Write};

use serde::Serialize;

/// A sparse vector: term ids ascending, weights beside them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    /// Dot product with another sparse vector.
    pub fn dot(&self, other: &SparseVector) -> f32 {
        let (mut i, mut j, mut s) = (0, 0, 0.0);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += self.values[i] * other.values[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }

    /// A query's vector: weight 1 on each distinct term, so its dot product with a BM25
    /// chunk vector is the chunk's BM25 score for the query.
    pub fn query(terms: &[u32]) -> Self {
        let mut indices = terms.to_vec();
        indices.sort_unstable();
        indices.dedup();
        let values = vec![1.0; indices.len()];
        Self { indices, values }
    }
}

/// First pass: term counts per chunk (spilled) and document frequencies.
pub struct Bm25Builder {
    df: Vec<u32>,
    chunks: u64,
    total_len: u64,
    spill: BufWriter<std::fs::File>,
}

impl Bm25Builder {
    /// A builder for a vocabulary of `vocab` terms, spilling into a temporary file in `dir`.
    pub fn new(vocab: usize, dir: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self {
            df: vec![0; vocab],
            chunks: 0,
            total_len: 0,
            spill: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(dir)?),
        })
    }

    /// Adds one chunk's terms (special tokens excluded).
    pub fn add(&mut self, terms: &[u32]) -> std::io::Result<()> {
        let mut sorted = terms.to_vec();
        sorted.sort_unstable();
        let mut counts: Vec<(u32, u32)> = Vec::new();
        for t in sorted {
            match counts.last_mut() {
                Some((last, n)) if *last == t => *n += 1,
                _ => counts.push((t, 1)),
            }
        }
        self.spill.write_all(&(terms.len() as u32).to_le_bytes())?;
        self.spill.write_all(&(counts.len() as u32).to_le_bytes())?;
        for &(t, n) in &counts {
            if let Some(df) = self.df.get_mut(t as usize) {
                *df += 1;
            }
            self.spill.write_all(&t.to_le_bytes())?;
            self.spill.write_all(&n.to_le_bytes())?;
        }
        self.chunks += 1;
        self.total_len += terms.len() as u64;
        Ok(())
    }

    /// Second pass: calls `each` with every chunk's BM25 vector, in the order added.
    pub fn finish(
        self,
        k1: f32,
        b: f32,
        each: &mut dyn FnMut(SparseVector) -> Result<(), super::EmbedError>,
    ) -> Result<(), super::EmbedError> {
        let n = self.chunks as f32;
        let avg_len = (self.total_len as f32 / n.max(1.0)).max(1.0);
        let idf: Vec<f32> = self
            .df
            .iter()
            .map(|&df| (1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln())
            .collect();
        let mut file = self
            .spill
            .into_inner()
            .map_err(|e| super::EmbedError::Spill(e.into_error()))?;
        file.rewind().map_err(super::EmbedError::Spill)?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut word = [0u8; 4];
        let mut next = |r: &mut BufReader<std::fs::File>| -> Result<u32, super::EmbedError> {
            r.read_exact(&mut word).map_err(super::EmbedError::Spill)?;
            Ok(u32::from_le_bytes(word))
        };
        for _ in 0..self.chunks {
            let len = next(&mut r)? as f32;
            let terms = next(&mut r)? as usize;
            let norm = k1 * (1.0 - b + b * len / avg_len);
            let mut v = SparseVector::default();
            for _ in 0..terms {
                let t = next(&mut r)?;
                let tf = next(&mut r)? as f32;
                let w = idf.get(t as usize).copied().unwrap_or(0.0) * tf * (k1 + 1.0) / (tf + norm);
                v.indices.push(t);
                v.values.push(w);
            }
            each(v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_weights_favour_rare_terms_and_score_queries() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Bm25Builder::new(10, dir.path()).unwrap();
        b.add(&[1, 2, 2]).unwrap();
        b.add(&[1, 3]).unwrap();
        let mut out = Vec::new();
        b.finish(1.2, 0.75, &mut |v| {
            out.push(v);
            Ok(())
        })
        .unwrap();
        assert_eq!(out[0].indices, [1, 2]);
        // Term 2 is in one chunk of two, term 1 in both: 2 weighs more.
        assert!(out[0].values[1] > out[0].values[0]);
        let q = SparseVector::query(&[3, 3, 9]);
        assert_eq!(q.indices, [3, 9]);
        assert!(out[1].dot(&q) > 0.0);
        assert_eq!(out[0].dot(&q), 0.0);
    }
}
