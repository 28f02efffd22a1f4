//! `classify-cet evaluate`: each scorer asked for (by default every one that can load here)
//! against labelled awards, and the JSON report of their figures.

use std::path::Path;

use serde_json::json;

use super::load_parts;
use super::train::labelled;
use crate::cet::eval::Evaluation;
use crate::cet::params::ScorerChoice;
use crate::cet::{self, CetError};
use crate::config::Settings;
use crate::io::IoError;
use crate::io::checks::now_rfc3339;

/// The scorers `scorer` names: all of them (embedding and hybrid only `with_embedding`) for
/// none or `auto`, else that one.
fn choices(scorer: Option<ScorerChoice>, with_embedding: bool) -> Vec<ScorerChoice> {
    match scorer {
        Some(ScorerChoice::Auto) | None => [ScorerChoice::Rules, ScorerChoice::Model]
            .into_iter()
            .chain(
                [ScorerChoice::Embedding, ScorerChoice::Hybrid]
                    .into_iter()
                    .filter(|_| with_embedding),
            )
            .collect(),
        Some(c) => vec![c],
    }
}

/// The figures of every scorer evaluated.
#[derive(Debug)]
pub struct Evaluated {
    pub taxonomy_version: String,
    pub scorers: Vec<Evaluation>,
}

/// The figures of each scorer on the labelled awards (`texts` resolves their ids, else the
/// awards table). Evaluating every scorer, one that cannot load here is skipped with a
/// warning; asked for one, its failure is the error.
pub fn evaluate(
    s: &Settings,
    labels: &Path,
    texts: Option<&Path>,
    scorer: Option<ScorerChoice>,
    with_embedding: bool,
) -> Result<Evaluated, CetError> {
    let (taxonomy, params) = load_parts(s)?;
    let docs = labelled(labels, &taxonomy, &super::Layout::new(s).awards(), texts)?;
    if docs.is_empty() {
        return Err(CetError::Invalid("no labelled awards to evaluate".into()));
    }
    let all = matches!(scorer, Some(ScorerChoice::Auto) | None);
    let sources = cet::ScorerSources {
        model_path: &s.cet.model_path,
        embed: &s.embed,
        award_vectors: true,
    };
    let mut results = Vec::new();
    // Award vectors depend only on the encoder: computed once for every scorer using them.
    let mut vectors: Option<Vec<f32>> = None;
    for choice in choices(scorer, with_embedding) {
        let (classifier, fallback) =
            match cet::load_classifier(taxonomy.clone(), params.clone(), choice, &sources) {
                Err(CetError::Embed(e)) if all => {
                    tracing::warn!("evaluate: no {choice:?} scorer: {e}");
                    continue;
                }
                r => r?,
            };
        if classifier.embedding.is_some() && vectors.is_none() {
            vectors = cet::labelled::embed_docs(&classifier, &docs)?;
        }
        let v = vectors
            .as_deref()
            .filter(|_| classifier.embedding.is_some());
        let mut e = cet::labelled::evaluate_docs(&classifier, &docs, v);
        if let Some(f) = fallback {
            tracing::warn!("evaluate: no trained model ({}): {}", f.reason, f.detail);
            match choice {
                // Without a model, hybrid blends rules and embedding: still worth measuring.
                ScorerChoice::Hybrid => e.scorer = "hybrid (rules + embedding)".into(),
                _ => continue,
            }
        }
        results.push(e);
    }
    Ok(Evaluated {
        taxonomy_version: taxonomy.version,
        scorers: results,
    })
}

/// Writes the JSON report to `out`.
pub fn write_report(out: &Path, labels: &Path, e: &Evaluated) -> Result<(), IoError> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| IoError::write(dir, err))?;
    }
    let report = json!({"labels": labels, "generated_at": now_rfc3339(), "taxonomy_version": e.taxonomy_version, "scorers": e.scorers});
    crate::io::atomic::write_json(out, &report)?;
    Ok(())
}
