//! Labelled documents: hand labels resolved to award texts, weak labels from a scorer's
//! confident decisions, and scoring them for evaluation and training.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rayon::prelude::*;

use super::classify::{AwardText, Classifier, Scratch};
use super::taxonomy::Taxonomy;
use super::{AwardInput, CetError, corpus, eval, model, read_award_batches, sample_key, vector};
use crate::progress::Progress;

/// Labelled documents from a labels file (see [`eval::read_labels`]), award ids resolved
/// against `texts` (a CSV or NDJSON file, see [`corpus::read_texts`]) when given, else the
/// labels file itself when it holds a title or abstract column, else the awards Parquet; also
/// returns how many labelled ids were not found.
pub fn labelled_docs(
    labels_path: &Path,
    taxonomy: &Taxonomy,
    awards: &Path,
    texts: Option<&Path>,
) -> Result<(Vec<model::LabelledDoc>, usize), CetError> {
    use eval::LabelKey;
    let labels = eval::read_labels(labels_path, taxonomy)?;
    let texts = match texts {
        Some(t) => Some(t),
        None => corpus::has_text_columns(labels_path)?.then_some(labels_path),
    };
    let wanted: HashSet<&str> = labels
        .iter()
        .filter_map(|l| match &l.key {
            LabelKey::AwardId(id) => Some(id.as_str()),
            LabelKey::Text(_) => None,
        })
        .collect();
    let mut by_id = HashMap::new();
    if !wanted.is_empty() {
        let mut keep = |d: model::LabelledDoc| {
            if wanted.contains(d.id.as_str()) {
                by_id.insert(d.id.clone(), d);
            }
        };
        match texts {
            Some(t) => corpus::read_texts(t)?.into_iter().for_each(&mut keep),
            None => {
                for batch in read_award_batches(awards, 8192)? {
                    batch?
                        .into_iter()
                        .map(model::LabelledDoc::from)
                        .for_each(&mut keep);
                }
            }
        }
    }
    let mut missing = 0;
    let mut docs = Vec::with_capacity(labels.len());
    for l in labels {
        match l.key {
            LabelKey::AwardId(id) => match by_id.get(&id) {
                Some(d) => docs.push(model::LabelledDoc {
                    areas: l.areas,
                    ..d.clone()
                }),
                None => missing += 1,
            },
            LabelKey::Text(text) => docs.push(model::LabelledDoc {
                id: format!("line-{}", l.line),
                title: String::new(),
                r#abstract: Some(text),
                topic_code: None,
                agency: None,
                branch: None,
                areas: l.areas,
            }),
        }
    }
    Ok((docs, missing))
}

impl From<AwardInput> for model::LabelledDoc {
    /// The award's texts, with no areas yet.
    fn from(a: AwardInput) -> Self {
        Self {
            id: a.award_id,
            title: a.award_title,
            r#abstract: a.r#abstract,
            topic_code: a.topic_code,
            agency: Some(a.agency),
            branch: a.branch,
            areas: Vec::new(),
        }
    }
}

impl model::LabelledDoc {
    /// The document as an award to score.
    pub fn text(&self) -> AwardText<'_> {
        AwardText {
            title: &self.title,
            r#abstract: self.r#abstract.as_deref(),
            topic_code: self.topic_code.as_deref(),
            agency: self.agency.as_deref(),
            branch: self.branch.as_deref(),
            embedding: None,
        }
    }
}

/// A weak label: an award and the areas a scorer gave it, with its primary's score.
pub struct WeakLabel {
    pub doc: model::LabelledDoc,
    pub score: f64,
}

/// Training documents from `scorer`'s confident decisions on `texts` (see
/// [`corpus::read_texts`]) when given, else the awards Parquet. At most `bootstrap_max_docs`
/// awards with a title or abstract are drawn first (by seeded hash of the award id, so the
/// sample does not depend on the scorer); each keeps its primary area (and supporting areas)
/// scoring at least `bootstrap_min_score`.
pub fn bootstrap_docs(
    scorer: &Classifier,
    awards: &Path,
    texts: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Vec<WeakLabel>, CetError> {
    let params = &scorer.params;
    let mut docs: Vec<model::LabelledDoc> = match texts {
        Some(t) => corpus::read_texts(t)?,
        None => {
            let mut docs = Vec::new();
            for b in read_award_batches(awards, 8192)? {
                docs.extend(b?.into_iter().map(model::LabelledDoc::from));
            }
            docs
        }
    };
    docs.retain(|d| !d.title.trim().is_empty() || d.r#abstract.is_some());
    if docs.len() > params.bootstrap_max_docs {
        let seed = params.model.seed;
        docs.sort_by_cached_key(|d| sample_key(&d.id, seed));
        docs.truncate(params.bootstrap_max_docs);
    }
    progress.set_total(docs.len() as u64);
    let min = params.bootstrap_min_score;
    let taxonomy = &scorer.taxonomy;
    let mut out = Vec::new();
    // Batches bound the vectors held at once when the scorer embeds.
    for batch in docs.chunks(1024) {
        let vectors = embed_docs(scorer, batch)?;
        let decided: Vec<WeakLabel> = batch
            .par_iter()
            .enumerate()
            .map_init(Scratch::default, |scratch, (i, d)| {
                let t = AwardText {
                    embedding: vector(scorer, vectors.as_deref(), i),
                    ..d.text()
                };
                let c = scorer.classify(&d.id, &t, scratch);
                let primary = c.primary_cet_id.filter(|_| c.primary_score >= min)?;
                let areas = std::iter::once(primary.as_str())
                    .chain(
                        c.supporting
                            .iter()
                            .filter(|s| s.score >= min)
                            .map(|s| s.cet_id.as_str()),
                    )
                    .filter_map(|id| taxonomy.index_of(id))
                    .collect();
                Some(WeakLabel {
                    doc: model::LabelledDoc { areas, ..d.clone() },
                    score: c.primary_score,
                })
            })
            .flatten()
            .collect();
        out.extend(decided);
        progress.inc(batch.len() as u64);
    }
    Ok(out)
}

/// Writes weak labels as a labels CSV (`award_id, primary_cet, secondary_cets, score`) that
/// `train --labels` and `evaluate --labels` read back.
pub fn write_labels(
    path: &Path,
    labels: &[WeakLabel],
    taxonomy: &Taxonomy,
) -> Result<(), CetError> {
    let err = |e: &dyn std::fmt::Display| CetError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["award_id", "primary_cet", "secondary_cets", "score"])
        .map_err(|e| err(&e))?;
    for l in labels {
        let ids: Vec<&str> = l
            .doc
            .areas
            .iter()
            .map(|&a| taxonomy.areas[a].id.as_str())
            .collect();
        let (primary, rest) = ids
            .split_first()
            .map_or((eval::NONE, &[][..]), |(p, r)| (*p, r));
        w.write_record([&l.doc.id, primary, &rest.join("|"), &l.score.to_string()])
            .map_err(|e| err(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| err(&e))?;
    crate::io::atomic::write_file(path, &bytes).map_err(|e| err(&e))?;
    Ok(())
}

/// Vectors of labelled documents when the classifier scores embeddings (row-major).
pub fn embed_docs(
    classifier: &Classifier,
    docs: &[model::LabelledDoc],
) -> Result<Option<Vec<f32>>, CetError> {
    let texts: Vec<(&str, AwardText)> = docs.iter().map(|d| (d.id.as_str(), d.text())).collect();
    classifier.embed(&texts)
}

/// Scores labelled documents and evaluates the classifier's primary area against them;
/// `vectors` (from [`embed_docs`]) feed the embedding scorer.
pub fn evaluate_docs(
    classifier: &Classifier,
    docs: &[model::LabelledDoc],
    vectors: Option<&[f32]>,
) -> eval::Evaluation {
    let items = score_docs(classifier, docs, vectors);
    eval::evaluate(classifier.scorer(), &items, &classifier.taxonomy.ids())
}

/// Each labelled document's scores, primary and supporting areas beside its labels.
pub fn score_docs(
    classifier: &Classifier,
    docs: &[model::LabelledDoc],
    vectors: Option<&[f32]>,
) -> Vec<eval::Scored> {
    docs.par_iter()
        .enumerate()
        .map_init(Scratch::default, |scratch, (i, d)| {
            let t = AwardText {
                embedding: vector(classifier, vectors, i),
                ..d.text()
            };
            let scores = classifier.scores(&t, scratch);
            let primary = classifier.primary(&scores, scratch.none);
            eval::Scored {
                id: d.id.clone(),
                truth: d.areas.clone(),
                supporting: primary.map_or_else(Vec::new, |p| classifier.supporting(&scores, p)),
                primary,
                scores,
                none: scratch.none,
            }
        })
        .collect()
}
