//! Word vectors distilled from a sentence encoder: the encoder's vector of each frequent
//! corpus word, stored once in the artifact. A document's vector is the IDF-weighted sum of its
//! words' vectors (title weighing more), so the model reads related terms and paraphrases its
//! labelled awards never used, at the cost of a table lookup per word instead of a
//! transformer pass.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::super::CetError;
use super::super::text::{KeyMap, KeySet, Token, word_key};
use super::LabelledDoc;
use super::artifact::StoredVectors;
use super::features::{doc_texts, is_term, tokenize_doc};

/// Words encoded per call of the encoder.
const ENCODE_BATCH: usize = 512;

/// Encodes a batch of words into one row-major block of vectors.
pub type Encode<'a> = dyn FnMut(&[&str]) -> Result<Vec<f32>, CetError> + 'a;

/// The vocabulary of `corpus` (single-word terms in at least `min_df` documents, the
/// `max_words` most frequent, ties by word), each word's IDF over the corpus and its vector
/// from `encode` (one row-major block of vectors per batch of words).
pub fn build(
    corpus: &[LabelledDoc],
    stop: &KeySet,
    max_words: usize,
    min_df: u32,
    encoder: &str,
    encode: &mut Encode,
) -> Result<StoredVectors, CetError> {
    // Document frequency and one spelling (the normalised word) per key.
    let counts: HashMap<u64, (u32, String)> = corpus
        .par_iter()
        .fold(
            || (HashMap::new(), String::new(), <[Vec<Token>; 3]>::default()),
            |(mut acc, mut buf, mut fields): (HashMap<u64, (u32, String)>, _, _), d| {
                tokenize_doc(d, &mut buf, &mut fields);
                let texts = doc_texts(d);
                let mut seen = HashSet::new();
                for (f, tokens) in fields.iter().enumerate() {
                    for t in tokens.iter().filter(|t| is_term(t, texts[f], stop)) {
                        if seen.insert(t.key) {
                            let e = acc.entry(t.key).or_insert_with(|| {
                                (
                                    0,
                                    super::super::text::normalise(
                                        &texts[f][t.start as usize..t.end as usize],
                                    ),
                                )
                            });
                            e.0 += 1;
                        }
                    }
                }
                (acc, buf, fields)
            },
        )
        .map(|(acc, _, _)| acc)
        .reduce(HashMap::new, |mut a, b| {
            for (k, (n, w)) in b {
                let e = a.entry(k).or_insert((0, w.clone()));
                e.0 += n;
                // The same word from any thread: keep the smallest spelling for determinism.
                if w < e.1 {
                    e.1 = w;
                }
            }
            a
        });
    let mut words: Vec<(u32, String)> = counts
        .into_values()
        .filter(|(n, w)| *n >= min_df && w.chars().any(char::is_alphabetic))
        .collect();
    words.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    words.truncate(max_words);
    if words.is_empty() {
        return Err(CetError::Invalid(
            "the corpus has no word frequent enough for word vectors".into(),
        ));
    }
    let n = corpus.len() as f64;
    let idf: Vec<f32> = words
        .iter()
        .map(|(df, _)| (((1.0 + n) / (1.0 + *df as f64)).ln() + 1.0) as f32)
        .collect();
    let texts: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
    let mut dims = 0;
    let (mut scales, mut values) = (Vec::with_capacity(texts.len()), Vec::new());
    for batch in texts.chunks(ENCODE_BATCH) {
        let v = encode(batch)?;
        dims = v.len() / batch.len();
        if dims == 0 || v.len() != dims * batch.len() {
            return Err(CetError::Invalid(format!(
                "the encoder returned {} values for {} words",
                v.len(),
                batch.len()
            )));
        }
        for row in v.chunks_exact(dims) {
            let (scale, q) = quantize(row);
            scales.push(scale);
            values.extend(q);
        }
    }
    Ok(StoredVectors {
        encoder: encoder.to_string(),
        dims,
        words: words.into_iter().map(|(_, w)| w).collect(),
        idf,
        scales,
        values,
    })
}

/// A row as int8 with one scale: value ≈ byte × scale.
fn quantize(row: &[f32]) -> (f32, Vec<i8>) {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    (
        scale,
        row.iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
            .collect(),
    )
}

/// Word vectors ready to score: rows dequantised, looked up by word key.
#[derive(Debug, Clone)]
pub struct WordVectors {
    pub dims: usize,
    index: KeyMap<u32>,
    /// Row-major words × dims, each row already multiplied by its word's IDF.
    rows: Vec<f32>,
}

impl WordVectors {
    /// Checks the stored sizes and dequantises.
    pub fn new(s: &StoredVectors) -> Result<Self, CetError> {
        let n = s.words.len();
        if s.dims == 0 || s.idf.len() != n || s.scales.len() != n || s.values.len() != n * s.dims {
            return Err(CetError::ModelInvalid(
                "word vector array sizes do not match words × dims".into(),
            ));
        }
        let rows = s
            .values
            .chunks_exact(s.dims)
            .zip(s.scales.iter().zip(&s.idf))
            .flat_map(|(q, (&scale, &idf))| q.iter().map(move |&b| b as f32 * scale * idf))
            .collect();
        let index = s
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (word_key(w), i as u32))
            .collect();
        Ok(Self {
            dims: s.dims,
            index,
            rows,
        })
    }

    /// The document's vector into `out` (length `dims`): the sum over its terms of field
    /// weight × IDF × word vector, L2-normalised (zero when no word has a vector). `found` is
    /// scratch space: each word's weight is summed first, so its row is added once.
    pub fn doc_vector(
        &self,
        fields: &[Vec<Token>; 3],
        texts: [&str; 3],
        weights: [f64; 3],
        stop: &KeySet,
        found: &mut Vec<(u32, f32)>,
        out: &mut [f32],
    ) {
        found.clear();
        for (f, tokens) in fields.iter().enumerate() {
            let fw = weights[f] as f32;
            found.extend(
                tokens
                    .iter()
                    .filter(|t| is_term(t, texts[f], stop))
                    .filter_map(|t| self.index.get(&t.key).map(|&i| (i, fw))),
            );
        }
        found.sort_unstable_by_key(|w| w.0);
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut words = found.chunk_by(|a, b| a.0 == b.0);
        for group in &mut words {
            let w: f32 = group.iter().map(|g| g.1).sum();
            let i = group[0].0 as usize;
            let row = &self.rows[i * self.dims..(i + 1) * self.dims];
            out.iter_mut().zip(row).for_each(|(o, r)| *o += w * r);
        }
        crate::embed::l2_normalize(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str) -> LabelledDoc {
        LabelledDoc {
            id: id.into(),
            title: title.into(),
            r#abstract: None,
            topic_code: None,
            agency: None,
            branch: None,
            areas: Vec::new(),
        }
    }

    #[test]
    fn vocabulary_is_frequent_words_with_their_encoder_vectors() {
        let corpus = vec![
            doc("1", "Radar arrays for radars"),
            doc("2", "radar sensing"),
            doc("3", "Sensing with lasers"),
        ];
        let stop = KeySet::from_iter([word_key("for"), word_key("with")]);
        // A fake encoder that knows three words.
        let mut encode = |words: &[&str]| -> Result<Vec<f32>, CetError> {
            Ok(words
                .iter()
                .flat_map(|w| match *w {
                    "radar" => [1.0, 0.0],
                    "sensing" => [0.0, 1.0],
                    _ => [0.5, 0.5],
                })
                .collect())
        };
        let s = build(&corpus, &stop, 10, 2, "fake", &mut encode).unwrap();
        assert_eq!(s.words, ["radar", "sensing"]);
        assert_eq!(s.dims, 2);
        let v = WordVectors::new(&s).unwrap();
        let (mut buf, mut fields) = (String::new(), <[Vec<Token>; 3]>::default());
        let d = doc("x", "Radars and lasers");
        tokenize_doc(&d, &mut buf, &mut fields);
        let mut out = vec![0.0; 2];
        v.doc_vector(
            &fields,
            doc_texts(&d),
            [2.0, 1.0, 1.0],
            &stop,
            &mut Vec::new(),
            &mut out,
        );
        assert!(
            (out[0] - 1.0).abs() < 1e-6 && out[1].abs() < 1e-6,
            "{out:?}"
        );
    }

    #[test]
    fn quantisation_keeps_values_within_half_a_step() {
        let row = [0.3f32, -0.12, 0.0, 0.0419];
        let (scale, q) = quantize(&row);
        for (x, b) in row.iter().zip(q) {
            assert!((x - b as f32 * scale).abs() <= scale / 2.0 + 1e-7);
        }
    }
}
