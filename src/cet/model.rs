//! The trained CET scorer: TF-IDF over words and word pairs (stop words removed, sublinear
//! term frequency, taxonomy keywords boosted), chi-squared feature selection, one-vs-rest
//! L2 logistic regression fitted jointly by L-BFGS, and Platt calibration on held-out awards.
//!
//! The artifact is one JSON file holding everything scoring needs plus a SHA-256 checksum of
//! its content; loading verifies the checksum, the format version and the taxonomy version.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CetError;
use super::params::{FieldWeights, ModelParams};
use super::taxonomy::Taxonomy;
use super::text::{Token, pair_key, phrase_keys, tokenize, word_key};
use crate::rng::Rng;

/// Artifact format identifier and version; loading refuses anything else.
pub const FORMAT: &str = "sbir-cet-classifier";
pub const FORMAT_VERSION: u32 = 1;

/// English function words every model drops (proposal boilerplate comes from settings).
const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "may", "me",
    "more", "most", "must", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "us", "use", "used", "using", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "with",
    "within", "would", "you", "your", "new", "based", "well", "one", "two", "three",
];

/// Everything the artifact stores; the checksum covers exactly this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelBody {
    pub format: String,
    pub format_version: u32,
    pub taxonomy_version: String,
    pub created_at: String,
    pub tool_version: String,
    /// Where the labels came from (a labels file, or the rules bootstrap).
    pub trained_on: TrainingInfo,
    pub params: ModelParams,
    pub field_weights: FieldWeights,
    pub stop_words: Vec<String>,
    /// CET ids, one per class, in weight-column order.
    pub classes: Vec<String>,
    /// Feature texts ("word" or "word word"), normalised as the tokenizer does.
    pub features: Vec<String>,
    /// IDF per feature, keyword boost included.
    #[serde(with = "f32_base64")]
    pub idf: Vec<f32>,
    /// Row-major features × classes.
    #[serde(with = "f32_base64")]
    pub weights: Vec<f32>,
    #[serde(with = "f32_base64")]
    pub intercepts: Vec<f32>,
    /// Platt calibration per class, (a, b) pairs flattened: probability =
    /// 1 / (1 + exp(-(a·f + b))).
    #[serde(with = "f32_base64")]
    pub platt: Vec<f32>,
}

/// Float arrays stored as base64 of little-endian `f32` bytes: exact (decimal text would round
/// on the way back, breaking the checksum) and compact. NumPy reads them with
/// `np.frombuffer(base64.b64decode(s), "<f4")`.
mod f32_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(
                "float array length is not a multiple of 4 bytes",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// What a model was trained on, and how well it fits its held-out awards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub source: String,
    pub documents: usize,
    pub calibration_documents: usize,
    pub positives: Vec<usize>,
    pub iterations: usize,
    pub final_loss: f64,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    checksum: String,
    model: ModelBody,
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    /// `cet_classifier_v1-<first 8 hex of the checksum>`.
    pub version: String,
    pub body: ModelBody,
    columns: HashMap<u64, u32>,
    stop: HashSet<u64>,
    /// Taxonomy area index of each class.
    class_area: Vec<usize>,
    /// Class of each taxonomy area, if any.
    area_class: Vec<Option<usize>>,
}

/// A labelled document for training.
#[derive(Debug, Clone)]
pub struct LabelledDoc {
    /// Stable identity (award id or a text hash), used for the calibration split.
    pub id: String,
    pub title: String,
    pub r#abstract: Option<String>,
    pub topic_code: Option<String>,
    /// Taxonomy area indexes.
    pub areas: Vec<usize>,
}

fn stop_set(words: &[String]) -> HashSet<u64> {
    words
        .iter()
        .map(|w| word_key(&super::text::normalise(w)))
        .collect()
}

/// Whether a token counts as a term: not a stop word, not a single character, not a number.
fn is_term(t: &Token, text: &str, stop: &HashSet<u64>) -> bool {
    let w = &text[t.start as usize..t.end as usize];
    !(stop.contains(&t.key) || w.len() < 2 || w.bytes().all(|b| b.is_ascii_digit()))
}

/// Term keys with their weighted frequency in one document: words that are terms
/// ([`is_term`]) and, when `ngram_max` is 2, pairs of consecutive terms within a field. Each
/// occurrence counts its field's weight. Sorted by key, unique. `name` sees every term with a
/// way to spell it (training uses it to name the selected features).
fn doc_terms(
    fields: &[Vec<Token>; 3],
    texts: [&str; 3],
    weights: [f64; 3],
    stop: &HashSet<u64>,
    ngram_max: usize,
    out: &mut Vec<(u64, f64)>,
    mut name: impl FnMut(u64, &dyn Fn() -> String),
) {
    use super::text::normalise;
    out.clear();
    for (f, tokens) in fields.iter().enumerate() {
        let text = texts[f];
        let word = |t: &Token| normalise(&text[t.start as usize..t.end as usize]);
        let mut prev: Option<&Token> = None;
        for t in tokens.iter().filter(|t| is_term(t, text, stop)) {
            out.push((t.key, weights[f]));
            name(t.key, &|| word(t));
            if ngram_max >= 2
                && let Some(p) = prev
            {
                let k = pair_key(p.key, t.key);
                out.push((k, weights[f]));
                name(k, &|| format!("{} {}", word(p), word(t)));
            }
            prev = Some(t);
        }
    }
    out.sort_unstable_by_key(|t| t.0);
    let mut w = 0;
    for r in 0..out.len() {
        if w > 0 && out[w - 1].0 == out[r].0 {
            out[w - 1].1 += out[r].1;
        } else {
            out[w] = out[r];
            w += 1;
        }
    }
    out.truncate(w);
}

fn tf(x: f64, sublinear: bool) -> f64 {
    if sublinear && x > 1.0 {
        1.0 + x.ln()
    } else {
        x
    }
}

/// A sparse row: (column, value), L2-normalised.
type Row = Vec<(u32, f32)>;

fn to_row(terms: &[(u64, f64)], columns: &HashMap<u64, u32>, idf: &[f32], sublinear: bool) -> Row {
    let mut row: Row = terms
        .iter()
        .filter_map(|(k, n)| {
            columns
                .get(k)
                .map(|&c| (c, (tf(*n, sublinear) * idf[c as usize] as f64) as f32))
        })
        .collect();
    let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    row
}

fn field_weights(w: &FieldWeights) -> [f64; 3] {
    [w.title, w.r#abstract, w.topic_code]
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `ln(1 + exp(z))` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

impl Model {
    /// Trains on `docs` (every area index must be valid for `taxonomy`).
    pub fn train(
        docs: &[LabelledDoc],
        taxonomy: &Taxonomy,
        params: &ModelParams,
        field_w: &FieldWeights,
        source: &str,
    ) -> Result<Self, CetError> {
        let n_classes = taxonomy.areas.len();
        if docs.len() < 10 {
            return Err(CetError::Invalid(format!(
                "training needs at least 10 labelled documents, got {}",
                docs.len()
            )));
        }
        let mut stop_words: Vec<String> =
            ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()).collect();
        stop_words.extend(params.stop_words.iter().cloned());
        let stop = stop_set(&stop_words);
        let weights3 = field_weights(field_w);

        // Terms of every document, with names for the ones that end up as features.
        let terms: Vec<Vec<(u64, f64)>> = docs
            .par_iter()
            .map_init(
                || (String::new(), Default::default()),
                |(buf, fields): &mut (String, [Vec<Token>; 3]), d| {
                    let texts = doc_texts(d);
                    for (i, t) in texts.iter().enumerate() {
                        fields[i].clear();
                        tokenize(t, buf, &mut fields[i]);
                    }
                    let mut out = Vec::new();
                    doc_terms(
                        fields,
                        texts,
                        weights3,
                        &stop,
                        params.ngram_max,
                        &mut out,
                        |_, _| {},
                    );
                    out
                },
            )
            .collect();

        // Document frequencies, then the min_df/max_df filter.
        let mut df: HashMap<u64, u32> = HashMap::new();
        for t in &terms {
            for (k, _) in t {
                *df.entry(*k).or_default() += 1;
            }
        }
        let n = docs.len() as f64;
        let max_df = (params.max_df * n).floor() as u32;
        let mut vocab: Vec<u64> = df
            .iter()
            .filter(|&(_, &d)| d >= params.min_df && d <= max_df)
            .map(|(k, _)| *k)
            .collect();
        vocab.sort_unstable();
        let keyword_keys = keyword_term_keys(taxonomy);
        let idf_of = |k: &u64| {
            let base = ((1.0 + n) / (1.0 + df[k] as f64)).ln() + 1.0;
            let boost = if keyword_keys.contains(k) {
                params.keyword_boost
            } else {
                1.0
            };
            (base * boost) as f32
        };

        // TF-IDF rows over a vocabulary: first all kept terms, for chi-squared selection, then
        // the selected ones.
        let tfidf = |vocab: &[u64]| -> (Vec<f32>, Vec<Row>) {
            let columns: HashMap<u64, u32> = vocab
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i as u32))
                .collect();
            let idf: Vec<f32> = vocab.iter().map(idf_of).collect();
            let rows = terms
                .par_iter()
                .map(|t| to_row(t, &columns, &idf, params.sublinear_tf))
                .collect();
            (idf, rows)
        };
        let (_, rows) = tfidf(&vocab);
        let selected = chi2_select(&rows, docs, vocab.len(), n_classes, params.max_features);
        let vocab: Vec<u64> = selected.iter().map(|&c| vocab[c]).collect();
        let (idf, rows) = tfidf(&vocab);
        drop(terms);

        // Held-out split for calibration: by a seeded hash of each document's id.
        let calib: Vec<bool> = docs
            .iter()
            .map(|d| {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(d.id.as_bytes(), params.seed);
                Rng::new(h).unit() < params.calibration_fraction
            })
            .collect();
        let fit_idx: Vec<usize> = (0..docs.len()).filter(|&i| !calib[i]).collect();
        let cal_idx: Vec<usize> = (0..docs.len()).filter(|&i| calib[i]).collect();
        let labels: Vec<Vec<bool>> = docs
            .iter()
            .map(|d| (0..n_classes).map(|c| d.areas.contains(&c)).collect())
            .collect();
        let positives: Vec<usize> = (0..n_classes)
            .map(|c| fit_idx.iter().filter(|&&i| labels[i][c]).count())
            .collect();

        let pos_weight: Vec<f64> = (0..n_classes)
            .map(|c| {
                let pos = positives[c].max(1) as f64;
                let neg = (fit_idx.len() - positives[c]) as f64;
                if params.balance_classes {
                    (neg / pos).clamp(1.0, params.max_positive_weight)
                } else {
                    1.0
                }
            })
            .collect();
        let totals = (0..n_classes)
            .map(|c| {
                let pos = positives[c] as f64;
                (pos * pos_weight[c] + fit_idx.len() as f64 - pos).max(1.0)
            })
            .collect();
        let problem = Problem {
            rows: &rows,
            labels: &labels,
            idx: &fit_idx,
            d: vocab.len(),
            k: n_classes,
            l2: params.l2,
            pos_weight,
            totals,
        };
        let (theta, iterations, final_loss) = lbfgs(
            |x, g| problem.loss_grad(x, g),
            vec![0.0; (vocab.len() + 1) * n_classes],
            params.memory,
            params.max_iter,
            params.tolerance,
        );
        let (w, b) = theta.split_at(vocab.len() * n_classes);

        // Platt scaling per class on the held-out decisions.
        let platt: Vec<f32> = (0..n_classes)
            .flat_map(|c| {
                let scored: Vec<(f64, bool)> = cal_idx
                    .iter()
                    .map(|&i| (decision(&rows[i], w, b, n_classes, c), labels[i][c]))
                    .collect();
                let (a, bb) = platt_fit(&scored);
                [a as f32, bb as f32]
            })
            .collect();

        let features = feature_names(docs, &vocab, weights3, &stop, params.ngram_max);
        let body = ModelBody {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            taxonomy_version: taxonomy.version.clone(),
            created_at: crate::io::checks::now_rfc3339(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            trained_on: TrainingInfo {
                source: source.into(),
                documents: docs.len(),
                calibration_documents: cal_idx.len(),
                positives,
                iterations,
                final_loss,
            },
            params: params.clone(),
            field_weights: field_w.clone(),
            stop_words,
            classes: taxonomy.ids(),
            features,
            idf,
            weights: w.iter().map(|&v| v as f32).collect(),
            intercepts: b.iter().map(|&v| v as f32).collect(),
            platt,
        };
        Self::from_body(body, taxonomy, None)
    }

    /// Builds the scoring form and checks the body against the taxonomy.
    fn from_body(
        body: ModelBody,
        taxonomy: &Taxonomy,
        checksum: Option<&str>,
    ) -> Result<Self, CetError> {
        let bad = |m: String| CetError::ModelInvalid(m);
        if body.format != FORMAT || body.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format {} v{} (expected {FORMAT} v{FORMAT_VERSION})",
                body.format, body.format_version
            )));
        }
        if body.taxonomy_version != taxonomy.version {
            return Err(bad(format!(
                "trained for taxonomy {}, the taxonomy is {}",
                body.taxonomy_version, taxonomy.version
            )));
        }
        let (d, k) = (body.features.len(), body.classes.len());
        if body.idf.len() != d
            || body.weights.len() != d * k
            || body.intercepts.len() != k
            || body.platt.len() != 2 * k
        {
            return Err(bad("array sizes do not match features × classes".into()));
        }
        let class_area = body
            .classes
            .iter()
            .map(|c| {
                taxonomy
                    .index_of(c)
                    .ok_or_else(|| bad(format!("class `{c}` is not in the taxonomy")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut area_class = vec![None; taxonomy.areas.len()];
        for (c, &a) in class_area.iter().enumerate() {
            area_class[a] = Some(c);
        }
        let columns = body
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (feature_key(f), i as u32))
            .collect();
        let checksum = match checksum {
            Some(c) => c.to_string(),
            None => body_checksum(&body)?,
        };
        Ok(Self {
            version: format!("cet_classifier_v1-{}", &checksum[..8]),
            stop: stop_set(&body.stop_words),
            columns,
            class_area,
            area_class,
            body,
        })
    }

    /// Writes the artifact atomically; returns its checksum.
    pub fn save(&self, path: &Path) -> Result<String, CetError> {
        let checksum = body_checksum(&self.body)?;
        let file = ModelFile {
            checksum: checksum.clone(),
            model: self.body.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| CetError::Invalid(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write_err(path, e))?;
        }
        crate::io::atomic::write_file(path, &bytes).map_err(|e| write_err(path, e))?;
        Ok(checksum)
    }

    /// Reads an artifact and verifies checksum, format and taxonomy version.
    pub fn load(path: &Path, taxonomy: &Taxonomy) -> Result<Self, CetError> {
        let bytes = std::fs::read(path).map_err(|e| CetError::ModelMissing {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let file: ModelFile = serde_json::from_slice(&bytes)
            .map_err(|e| CetError::ModelInvalid(format!("{}: {e}", path.display())))?;
        let actual = body_checksum(&file.model)?;
        if actual != file.checksum {
            return Err(CetError::ModelInvalid(format!(
                "{}: checksum mismatch (file says {}, content hashes to {actual})",
                path.display(),
                file.checksum
            )));
        }
        Self::from_body(file.model, taxonomy, Some(&file.checksum))
    }

    /// Calibrated probability × 100 for every taxonomy area (0 for areas without a class).
    pub fn scores(&self, fields: &[Vec<Token>; 3], texts: [&str; 3]) -> Vec<f64> {
        let mut terms = Vec::new();
        let b = &self.body;
        let weights = field_weights(&b.field_weights);
        let ngrams = b.params.ngram_max;
        doc_terms(
            fields,
            texts,
            weights,
            &self.stop,
            ngrams,
            &mut terms,
            |_, _| {},
        );
        let row = to_row(&terms, &self.columns, &b.idf, b.params.sublinear_tf);
        let k = b.classes.len();
        let mut z: Vec<f64> = b.intercepts.iter().map(|&v| v as f64).collect();
        for &(c, v) in &row {
            let w = &b.weights[c as usize * k..(c as usize + 1) * k];
            for (zc, wc) in z.iter_mut().zip(w) {
                *zc += (*wc * v) as f64;
            }
        }
        let mut out = vec![0.0; self.area_class.len()];
        for (c, zc) in z.into_iter().enumerate() {
            let (a, bb) = (b.platt[2 * c] as f64, b.platt[2 * c + 1] as f64);
            out[self.class_area[c]] = 100.0 * sigmoid(a * zc + bb);
        }
        out
    }

    /// The occurrence (field, byte range) of the feature that pushes `area` up the most, with
    /// its weight × idf, for evidence when none of the area's keywords occur.
    pub fn strongest_feature(
        &self,
        area: usize,
        fields: &[Vec<Token>; 3],
        texts: [&str; 3],
    ) -> Option<(usize, u32, u32, f64)> {
        let c = self.area_class[area]?;
        let k = self.body.classes.len();
        let mut best: Option<(usize, u32, u32, f64)> = None;
        for (f, tokens) in fields.iter().enumerate() {
            let kept: Vec<&Token> = tokens
                .iter()
                .filter(|t| is_term(t, texts[f], &self.stop))
                .collect();
            for (i, t) in kept.iter().enumerate() {
                let mut cands = vec![(t.key, t.start)];
                if i > 0 {
                    cands.push((pair_key(kept[i - 1].key, t.key), kept[i - 1].start));
                }
                for (key, start) in cands {
                    if let Some(&col) = self.columns.get(&key) {
                        let w = self.body.weights[col as usize * k + c] as f64
                            * self.body.idf[col as usize] as f64;
                        if w > 0.0 && best.is_none_or(|b| w > b.3) {
                            best = Some((f, start, t.end, w));
                        }
                    }
                }
            }
        }
        best
    }
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> CetError {
    CetError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn body_checksum(body: &ModelBody) -> Result<String, CetError> {
    let bytes = serde_json::to_vec(body).map_err(|e| CetError::Invalid(e.to_string()))?;
    Ok(crate::config::hex_prefix(&Sha256::digest(&bytes), 32))
}

fn doc_texts(d: &LabelledDoc) -> [&str; 3] {
    [
        d.title.as_str(),
        d.r#abstract.as_deref().unwrap_or(""),
        d.topic_code.as_deref().unwrap_or(""),
    ]
}

/// Key of a feature text ("word" or "word word").
fn feature_key(feature: &str) -> u64 {
    let words: Vec<&str> = feature.split(' ').collect();
    match words.as_slice() {
        [a, b] => pair_key(word_key(a), word_key(b)),
        _ => word_key(feature),
    }
}

/// Keys of taxonomy keywords as features: one-word keywords, and every consecutive word pair
/// of longer ones.
fn keyword_term_keys(taxonomy: &Taxonomy) -> HashSet<u64> {
    let mut out = HashSet::new();
    for a in &taxonomy.areas {
        for k in &a.keywords {
            let keys = phrase_keys(k.phrase());
            if keys.len() == 1 {
                out.insert(keys[0]);
            }
            for w in keys.windows(2) {
                out.insert(pair_key(w[0], w[1]));
            }
        }
    }
    out
}

/// Texts of the selected features, recovered from the first documents that contain them.
fn feature_names(
    docs: &[LabelledDoc],
    vocab: &[u64],
    weights3: [f64; 3],
    stop: &HashSet<u64>,
    ngram_max: usize,
) -> Vec<String> {
    let wanted: HashMap<u64, usize> = vocab.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut names: Vec<Option<String>> = vec![None; vocab.len()];
    let mut missing = vocab.len();
    let (mut buf, mut fields, mut out) = (String::new(), <[Vec<Token>; 3]>::default(), Vec::new());
    for d in docs {
        if missing == 0 {
            break;
        }
        let texts = doc_texts(d);
        for (i, t) in texts.iter().enumerate() {
            fields[i].clear();
            tokenize(t, &mut buf, &mut fields[i]);
        }
        doc_terms(
            &fields,
            texts,
            weights3,
            stop,
            ngram_max,
            &mut out,
            |k, name| {
                if let Some(&i) = wanted.get(&k)
                    && names[i].is_none()
                {
                    names[i] = Some(name());
                    missing -= 1;
                }
            },
        );
    }
    names.into_iter().map(Option::unwrap_or_default).collect()
}

/// Columns with the highest chi-squared statistic for any class (sklearn's `chi2` on TF-IDF
/// values: observed = class sum of a feature, expected = its total × class share), best first
/// up to `keep`, returned in column order.
fn chi2_select(rows: &[Row], docs: &[LabelledDoc], d: usize, k: usize, keep: usize) -> Vec<usize> {
    if d <= keep {
        return (0..d).collect();
    }
    let mut observed = vec![0.0f64; d * k];
    let mut total = vec![0.0f64; d];
    let mut class_n = vec![0.0f64; k];
    for (row, doc) in rows.iter().zip(docs) {
        for &a in &doc.areas {
            class_n[a] += 1.0;
        }
        for &(c, v) in row {
            total[c as usize] += v as f64;
            for &a in &doc.areas {
                observed[c as usize * k + a] += v as f64;
            }
        }
    }
    let n: f64 = class_n.iter().sum::<f64>().max(1.0);
    let score: Vec<f64> = (0..d)
        .map(|j| {
            (0..k)
                .map(|c| {
                    let e = total[j] * class_n[c] / n;
                    if e > 0.0 {
                        (observed[j * k + c] - e).powi(2) / e
                    } else {
                        0.0
                    }
                })
                .fold(0.0, f64::max)
        })
        .collect();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    order.truncate(keep);
    order.sort_unstable();
    order
}

fn decision(row: &Row, w: &[f64], b: &[f64], k: usize, c: usize) -> f64 {
    b[c] + row
        .iter()
        .map(|&(j, v)| w[j as usize * k + c] * v as f64)
        .sum::<f64>()
}

/// The joint one-vs-rest problem: k independent weighted logistic losses (each averaged over
/// its weights) plus an L2 penalty on the feature weights, parameters laid out as
/// features × classes then k intercepts.
struct Problem<'a> {
    rows: &'a [Row],
    labels: &'a [Vec<bool>],
    idx: &'a [usize],
    d: usize,
    k: usize,
    l2: f64,
    pos_weight: Vec<f64>,
    /// Total example weight per class: each class's loss is its weighted mean.
    totals: Vec<f64>,
}

impl Problem<'_> {
    fn loss_grad(&self, x: &[f64], g: &mut [f64]) -> f64 {
        let (d, k) = (self.d, self.k);
        let (w, b) = x.split_at(d * k);
        // Partial sums per fixed-size chunk, added in order: deterministic on any thread count.
        let parts: Vec<(Vec<f64>, Vec<f64>)> = self
            .idx
            .par_chunks(2048)
            .map(|chunk| {
                let mut grad = vec![0.0; (d + 1) * k];
                let mut loss = vec![0.0; k];
                let mut z = vec![0.0; k];
                for &i in chunk {
                    let row = &self.rows[i];
                    z.copy_from_slice(b);
                    for &(j, v) in row {
                        let wj = &w[j as usize * k..(j as usize + 1) * k];
                        for (zc, wc) in z.iter_mut().zip(wj) {
                            *zc += wc * v as f64;
                        }
                    }
                    for c in 0..k {
                        let y = self.labels[i][c];
                        let sw = if y { self.pos_weight[c] } else { 1.0 };
                        let m = if y { -z[c] } else { z[c] };
                        loss[c] += sw * softplus(m);
                        z[c] = sw * (sigmoid(z[c]) - if y { 1.0 } else { 0.0 });
                    }
                    for &(j, v) in row {
                        let gj = &mut grad[j as usize * k..(j as usize + 1) * k];
                        for (gc, r) in gj.iter_mut().zip(&z) {
                            *gc += r * v as f64;
                        }
                    }
                    for (gc, r) in grad[d * k..].iter_mut().zip(&z) {
                        *gc += r;
                    }
                }
                (loss, grad)
            })
            .collect();
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut loss = 0.0;
        for (l, part) in parts {
            loss += l.iter().zip(&self.totals).map(|(l, t)| l / t).sum::<f64>();
            g.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        for (i, v) in g.iter_mut().enumerate() {
            *v /= self.totals[i % k];
        }
        let mut penalty = 0.0;
        for (gv, wv) in g[..d * k].iter_mut().zip(w) {
            *gv += self.l2 * wv;
            penalty += wv * wv;
        }
        loss + 0.5 * self.l2 * penalty
    }
}

/// Minimises `f` (which writes its gradient into the second argument) with L-BFGS and a
/// backtracking Armijo line search. Returns the minimiser, iterations used and final value.
fn lbfgs(
    f: impl Fn(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    m: usize,
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, usize, f64) {
    let n = x.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut hist: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut iter = 0;
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    while iter < max_iter {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm < tol {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = hist
            .back()
            .map(|(s, y, _)| dot(s, y) / dot(y, y))
            .unwrap_or(1.0 / gnorm.max(1e-12));
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let bcoef = rho * dot(y, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += (a - bcoef) * si);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &dir);
        if slope >= 0.0 {
            hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut f_new;
        loop {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&dir)
                .for_each(|((xn, xi), di)| *xn = xi + step * di);
            f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        iter += 1;
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let decrease = fx - f_new;
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = f_new;
        if sy > 1e-12 {
            if hist.len() == m {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        if decrease.abs() <= tol * fx.abs().max(1.0) * 1e-3 {
            break;
        }
    }
    (x, iter, fx)
}

/// Platt's sigmoid fit (with his target smoothing) by Newton's method with backtracking:
/// returns (a, b) with P(y | f) = 1 / (1 + exp(-(a·f + b))).
fn platt_fit(scored: &[(f64, bool)]) -> (f64, f64) {
    let pos = scored.iter().filter(|s| s.1).count() as f64;
    let neg = scored.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return (1.0, 0.0);
    }
    let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
    let t: Vec<f64> = scored.iter().map(|s| if s.1 { hi } else { lo }).collect();
    let nll = |a: f64, b: f64| -> f64 {
        scored
            .iter()
            .zip(&t)
            .map(|((f, _), ti)| {
                let z = a * f + b;
                // -(t ln p + (1-t) ln(1-p)) with p = sigmoid(z)
                ti * softplus(-z) + (1.0 - ti) * softplus(z)
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, -((neg + 1.0) / (pos + 1.0)).ln());
    let mut val = nll(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for ((f, _), ti) in scored.iter().zip(&t) {
            let p = sigmoid(a * f + b);
            let r = p - ti;
            let h = p * (1.0 - p);
            ga += r * f;
            gb += r;
            haa += h * f * f;
            hab += h * f;
            hbb += h;
        }
        if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
            break;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = -(hbb * ga - hab * gb) / det;
        let db = -(haa * gb - hab * ga) / det;
        let mut step = 1.0;
        loop {
            let v = nll(a + step * da, b + step * db);
            if v < val + 1e-4 * step * (ga * da + gb * db) {
                a += step * da;
                b += step * db;
                val = v;
                break;
            }
            step *= 0.5;
            if step < 1e-8 {
                return (a, b);
            }
        }
    }
    (a, b)
}

/// Default artifact path, overridable with `CET_MODEL_PATH` (read by the binary).
pub fn default_path() -> PathBuf {
    PathBuf::from("artifacts/models/cet_classifier_v1.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbfgs_finds_a_quadratic_minimum() {
        let (x, _, fx) = lbfgs(
            |x, g| {
                g[0] = 2.0 * (x[0] - 3.0);
                g[1] = 20.0 * (x[1] + 1.0);
                (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2)
            },
            vec![0.0, 0.0],
            5,
            100,
            1e-10,
        );
        assert!(
            (x[0] - 3.0).abs() < 1e-5 && (x[1] + 1.0).abs() < 1e-5,
            "{x:?}"
        );
        assert!(fx < 1e-9);
    }

    #[test]
    fn platt_orders_and_calibrates() {
        // Decision values where positives sit higher: the fitted slope is positive and a
        // value in the middle gets a probability near the positives' share there.
        let mut s = Vec::new();
        for i in 0..200 {
            let f = i as f64 / 20.0 - 5.0;
            s.push((f, i % 10 < (i / 20)));
        }
        let (a, b) = platt_fit(&s);
        assert!(a > 0.0);
        let p_hi = sigmoid(a * 4.5 + b);
        let p_lo = sigmoid(a * -4.5 + b);
        assert!(p_hi > 0.7 && p_lo < 0.2, "{p_hi} {p_lo}");
    }

    #[test]
    fn save_load_round_trip_is_exact_and_tampering_is_caught() {
        let taxonomy = Taxonomy::load(Path::new(super::super::taxonomy::DEFAULT_PATH)).unwrap();
        let params = super::super::params::ClassifierParams::load(Path::new(
            "config/cet/classification.yaml",
        ))
        .unwrap();
        let mut rng = Rng::new(5);
        let docs: Vec<LabelledDoc> = (0..300)
            .map(|i| {
                let area = i % 21;
                LabelledDoc {
                    id: format!("d{i}"),
                    title: crate::sample::text::title(&mut rng, area),
                    r#abstract: Some(crate::sample::text::abstract_text(
                        &mut rng, "Acme", area, None,
                    )),
                    topic_code: None,
                    areas: vec![area],
                }
            })
            .collect();
        let mut p = params.model.clone();
        p.min_df = 1;
        let m = Model::train(&docs, &taxonomy, &p, &params.field_weights, "test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        m.save(&path).unwrap();
        let back = Model::load(&path, &taxonomy).unwrap();
        assert_eq!(back.version, m.version);
        assert_eq!(back.body.weights, m.body.weights);
        assert_eq!(back.body.platt, m.body.platt);

        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("\"documents\":300", "\"documents\":301", 1);
        assert_ne!(tampered, text);
        std::fs::write(&path, tampered).unwrap();
        let err = Model::load(&path, &taxonomy).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn feature_keys_match_the_tokenizer() {
        let keys = phrase_keys("Neural Networks");
        assert_eq!(feature_key("neural network"), pair_key(keys[0], keys[1]));
        assert_eq!(feature_key("radar"), phrase_keys("radars")[0]);
    }
}
