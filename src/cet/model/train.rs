//! Training: parse every document once, pick the vocabulary (document-frequency filter, then
//! chi-squared), build the feature rows, and fit the weighted softmax with L-BFGS.

use rayon::prelude::*;

use super::features::{
    Row, chi2_select, doc_terms, doc_texts, feature_names, keyword_term_keys, stop_set, to_row,
    tokenize_doc,
};
use super::vectors::WordVectors;
use super::{
    Buffers, Featurizer, LabelledDoc, Model, ModelBody, TrainingInfo, VectorSource, artifact,
    features, optim,
};
use crate::cet::CetError;
use crate::cet::eval::NONE;
use crate::cet::params::{ClassifierParams, ModelParams};
use crate::cet::rules::{PhraseMatcher, Source};
use crate::cet::taxonomy::Taxonomy;
use crate::cet::text::{KeyMap, KeySet, Token};

/// One document's tokens per field, weighted terms and phrase evidence.
struct Parsed {
    fields: [Vec<Token>; 3],
    terms: Vec<(u64, f64)>,
    evidence: Vec<f64>,
}

impl Model {
    /// Trains on `docs` (every area index must be valid for `taxonomy`), with word vectors
    /// when given.
    pub fn train(
        docs: &[LabelledDoc],
        taxonomy: &Taxonomy,
        params: &ClassifierParams,
        vectors: Option<VectorSource>,
        source: &str,
    ) -> Result<Self, CetError> {
        let p = &params.model;
        if docs.len() < 10 {
            return Err(CetError::Invalid(format!(
                "training needs at least 10 labelled documents, got {}",
                docs.len()
            )));
        }
        let n_areas = taxonomy.areas.len();
        let mut classes = taxonomy.ids();
        classes.push(NONE.to_string());
        let k = classes.len();
        // Classes per document, primary first; no area is the last class.
        let targets: Vec<Vec<usize>> = docs
            .iter()
            .map(|d| {
                if d.areas.is_empty() {
                    vec![n_areas]
                } else {
                    d.areas.clone()
                }
            })
            .collect();
        let labels: Vec<usize> = targets.iter().map(|t| t[0]).collect();
        let stop_words = features::stop_words(p);
        let stop = stop_set(&stop_words);
        let fw = &params.field_weights;
        let weights3 = [fw.title, fw.r#abstract, fw.topic_code];

        let parsed = parse(docs, taxonomy, params, &stop, weights3);
        let (vocab, idf) = vocabulary(&parsed, &labels, k, taxonomy, p);
        let (stored, corpus) = match vectors {
            Some(v) => (Some(v.vectors), Some(v.corpus)),
            None => (None, None),
        };
        let featurizer = Featurizer {
            columns: columns_of(&vocab),
            idf,
            stop,
            weights3,
            ngram_max: p.ngram_max,
            sublinear: p.sublinear_tf,
            vectors: stored.as_ref().map(WordVectors::new).transpose()?,
            vector_weight: p.vector_weight as f32,
            n_areas,
        };
        let rows: Vec<Row> = parsed
            .par_iter()
            .zip(docs)
            .map_init(Buffers::default, |b, (t, d)| {
                featurizer.row(&t.fields, doc_texts(d), &t.evidence, b);
                std::mem::take(&mut b.row)
            })
            .collect();
        drop(parsed);

        let (per_class, class_weight) = class_weights(&labels, k, p);
        let d = featurizer.width();
        let prior = phrase_prior(d, k, n_areas, p.phrase_prior);
        let problem = optim::Softmax {
            rows: &rows,
            targets: &targets,
            secondary_share: p.secondary_share,
            d,
            k,
            l2: p.l2,
            prior: &prior,
            class_weight,
        };
        let (theta, iterations, final_loss) = optim::lbfgs(
            |x, g| problem.loss_grad(x, g),
            vec![0.0; (d + 1) * k],
            p.memory,
            p.max_iter,
            p.tolerance,
        );
        let (w, b) = theta.split_at(d * k);

        let features = feature_names(docs, &vocab, weights3, &featurizer.stop, p.ngram_max);
        let body = ModelBody {
            format: artifact::FORMAT.into(),
            format_version: artifact::FORMAT_VERSION,
            taxonomy_version: taxonomy.version.clone(),
            created_at: crate::io::checks::now_rfc3339(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            trained_on: TrainingInfo {
                source: source.into(),
                documents: docs.len(),
                per_class,
                vector_corpus: corpus,
                iterations,
                final_loss,
            },
            params: p.clone(),
            field_weights: params.field_weights.clone(),
            rules: params.rules.clone(),
            stop_words,
            classes,
            features,
            idf: featurizer.idf.clone(),
            word_vectors: stored,
            weights: w.iter().map(|&v| v as f32).collect(),
            intercepts: b.iter().map(|&v| v as f32).collect(),
        };
        Self::from_body(body, taxonomy, None)
    }
}

/// Tokens, terms and phrase evidence of every document, in parallel.
fn parse(
    docs: &[LabelledDoc],
    taxonomy: &Taxonomy,
    params: &ClassifierParams,
    stop: &KeySet,
    weights3: [f64; 3],
) -> Vec<Parsed> {
    let matcher = PhraseMatcher::new(taxonomy);
    let n_areas = taxonomy.areas.len();
    docs.par_iter()
        .map_init(
            || (String::new(), Vec::new()),
            |(buf, hits), d| {
                let mut fields = <[Vec<Token>; 3]>::default();
                tokenize_doc(d, buf, &mut fields);
                hits.clear();
                for (i, src) in [Source::Title, Source::Abstract, Source::TopicCode]
                    .into_iter()
                    .enumerate()
                {
                    matcher.find(&fields[i], src, hits);
                }
                let mut terms = Vec::new();
                doc_terms(
                    &fields,
                    doc_texts(d),
                    weights3,
                    stop,
                    params.model.ngram_max,
                    &mut terms,
                    |_, _| {},
                );
                Parsed {
                    evidence: matcher.field_evidence(hits, &params.rules, n_areas),
                    fields,
                    terms,
                }
            },
        )
        .collect()
}

/// The vocabulary (term keys, sorted by key before selection) and each term's idf: terms
/// within the document-frequency bounds, then the `max_features` best by chi-squared; the
/// taxonomy's keywords get their idf boosted.
fn vocabulary(
    parsed: &[Parsed],
    labels: &[usize],
    k: usize,
    taxonomy: &Taxonomy,
    p: &ModelParams,
) -> (Vec<u64>, Vec<f32>) {
    let mut df: KeyMap<u32> = KeyMap::default();
    for t in parsed {
        for (key, _) in &t.terms {
            *df.entry(*key).or_default() += 1;
        }
    }
    let n = parsed.len() as f64;
    let max_df = (p.max_df * n).floor() as u32;
    let mut vocab: Vec<u64> = df
        .iter()
        .filter(|&(_, &d)| d >= p.min_df && d <= max_df)
        .map(|(key, _)| *key)
        .collect();
    vocab.sort_unstable();
    let keyword_keys = keyword_term_keys(taxonomy);
    let idf_of = |key: &u64| {
        let base = ((1.0 + n) / (1.0 + df[key] as f64)).ln() + 1.0;
        let boost = if keyword_keys.contains(key) {
            p.keyword_boost
        } else {
            1.0
        };
        (base * boost) as f32
    };
    let all_idf: Vec<f32> = vocab.iter().map(idf_of).collect();
    let all_columns = columns_of(&vocab);
    let tfidf_rows: Vec<Row> = parsed
        .par_iter()
        .map(|t| to_row(&t.terms, &all_columns, &all_idf, p.sublinear_tf))
        .collect();
    let selected = chi2_select(&tfidf_rows, labels, vocab.len(), k, p.max_features);
    let vocab: Vec<u64> = selected.iter().map(|&c| vocab[c]).collect();
    let idf = vocab.iter().map(idf_of).collect();
    (vocab, idf)
}

/// Each term key's column.
fn columns_of(vocab: &[u64]) -> KeyMap<u32> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, key)| (*key, i as u32))
        .collect()
}

/// Documents per class, and balanced class weights: n / (classes present × n_c), capped.
fn class_weights(labels: &[usize], k: usize, p: &ModelParams) -> (Vec<usize>, Vec<f64>) {
    let n = labels.len() as f64;
    let per_class: Vec<usize> = (0..k)
        .map(|c| labels.iter().filter(|&&y| y == c).count())
        .collect();
    let present = per_class.iter().filter(|&&c| c > 0).count().max(1) as f64;
    let weight = per_class
        .iter()
        .map(|&c| {
            if p.balance_classes && c > 0 {
                (n / (present * c as f64)).min(p.max_class_weight)
            } else {
                1.0
            }
        })
        .collect();
    (per_class, weight)
}

/// The weights' prior (d × k): an area's own phrase evidence, in any field, speaks for it.
fn phrase_prior(d: usize, k: usize, n_areas: usize, strength: f64) -> Vec<f64> {
    let mut prior = vec![0.0; d * k];
    let first_phrase = d - 3 * n_areas;
    for field in 0..3 {
        for a in 0..n_areas {
            prior[(first_phrase + field * n_areas + a) * k + a] = strength;
        }
    }
    prior
}
