//! `classify-cet train` as steps the command runs in turn (each with its own progress):
//! labelled documents, from a labels file or from a teacher scorer's confident decisions;
//! then fitting, and saving the artifact with a metadata file that says how it was made.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{file_info, load_classifier, load_parts};
use crate::cet::model::{LabelledDoc, Model, VectorSource};
use crate::cet::params::ScorerChoice;
use crate::cet::taxonomy::Taxonomy;
use crate::cet::training::{self, Dev, DevFigures};
use crate::cet::{self, CetError};
use crate::config::Settings;
use crate::io::checks::RunContext;
use crate::progress::Progress;

/// Labelled documents, warning about labelled award ids neither `texts` nor `awards` holds.
pub fn labelled(
    labels: &Path,
    taxonomy: &Taxonomy,
    awards: &Path,
    texts: Option<&Path>,
) -> Result<Vec<LabelledDoc>, CetError> {
    let (docs, missing) = cet::labelled::labelled_docs(labels, taxonomy, awards, texts)?;
    if missing > 0 {
        tracing::warn!(
            "{missing} labelled award id(s) are not in {}; skipped",
            texts.unwrap_or(awards).display()
        );
    }
    Ok(docs)
}

/// Weak labels: the decisions of `teacher` (rules, embedding or hybrid, never a trained
/// model) on `texts`, else the awards; written to `save` when given. Returns the documents
/// and a description of their source for the metadata.
pub fn bootstrap(
    s: &Settings,
    teacher: ScorerChoice,
    texts: Option<&Path>,
    save: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(Vec<LabelledDoc>, String), CetError> {
    if !matches!(
        teacher,
        ScorerChoice::Rules | ScorerChoice::Embedding | ScorerChoice::Hybrid
    ) {
        return Err(CetError::Invalid(
            "train --bootstrap learns from --scorer rules, embedding or hybrid, not from a trained model".into(),
        ));
    }
    let awards = super::Layout::new(s).awards();
    let (mut scorer, _) = load_classifier(s, Some(teacher), false)?;
    // The teacher never holds a trained model: the recipe does not depend on the artifact it
    // rebuilds (hybrid is rules + embedding here).
    scorer.model = None;
    let weak = cet::labelled::bootstrap_docs(&scorer, &awards, texts, progress)?;
    if let Some(out) = save {
        cet::labelled::write_labels(out, &weak, &scorer.taxonomy)?;
        tracing::info!(
            "classify-cet train: weak labels written to {}",
            out.display()
        );
    }
    let source = format!(
        "bootstrap:{}:{}",
        scorer.scorer(),
        texts.unwrap_or(&awards).display()
    );
    Ok((weak.into_iter().map(|w| w.doc).collect(), source))
}

/// Word vectors for the frequent words of `corpus`, from the sentence encoder.
pub fn word_vectors(
    s: &Settings,
    corpus: &[PathBuf],
    progress: &dyn Progress,
) -> Result<VectorSource, CetError> {
    let (_, params) = load_parts(s)?;
    cet::corpus::word_vectors(corpus, &s.embed, &params.model, progress)
}

/// Labelled awards to measure the new model on.
#[derive(Debug, Clone, Copy)]
pub struct DevSet<'a> {
    pub labels: &'a Path,
    /// Texts the labels' award ids refer to [default: the awards table].
    pub texts: Option<&'a Path>,
    /// Learn from the dev awards too and cross-validate in this many folds.
    pub folds: Option<usize>,
}

/// Everything one training run learns from, and where its artifact goes.
pub struct Recipe<'a> {
    pub docs: Vec<LabelledDoc>,
    /// Where the documents came from (`labels:<file>` or `bootstrap:<scorer>:<file>`).
    pub source: String,
    /// The file the documents were read from, fingerprinted in the metadata.
    pub training_file: PathBuf,
    pub vectors: Option<VectorSource>,
    /// The corpus the word vectors came from.
    pub corpus: &'a [PathBuf],
    pub dev: Option<DevSet<'a>>,
    pub model_path: PathBuf,
    /// The command line that ran the recipe, recorded in the metadata.
    pub command_line: String,
}

/// A saved model, its metadata file and how it did.
pub struct Saved {
    pub model: Model,
    pub path: PathBuf,
    pub metadata_path: PathBuf,
    pub dev: Option<DevFigures>,
}

/// Fits the model, saves the artifact and `<artifact>.metadata.json` beside it.
pub fn fit(s: &Settings, ctx: &RunContext, recipe: Recipe) -> Result<Saved, CetError> {
    let (taxonomy, params) = load_parts(s)?;
    let awards = super::Layout::new(s).awards();
    let dev = match recipe.dev {
        Some(d) => Some(Dev {
            docs: labelled(d.labels, &taxonomy, &awards, d.texts)?,
            folds: d.folds,
        }),
        None => None,
    };
    let trained = training::train(
        recipe.docs,
        dev,
        &taxonomy,
        &params,
        recipe.vectors,
        &recipe.source,
    )?;
    let model = trained.model;
    model.save(&recipe.model_path)?;
    let info = |p: &Path| {
        file_info(p).map(|i| json!({"path": i.path, "bytes": i.bytes, "sha256": i.sha256}))
    };
    let dev = match (recipe.dev, &trained.dev) {
        (Some(d), Some(figures)) => Some(json!({
            "labels": info(d.labels)?,
            "texts": d.texts.map(info).transpose()?,
            "cross_validated_folds": figures.cross_validated_folds,
            "evaluation": figures.evaluation,
        })),
        _ => None,
    };
    let metadata = json!({
        "model_version": model.version,
        "created_at": model.body.created_at,
        "tool_version": model.body.tool_version,
        "recipe": recipe.command_line,
        "settings_digest": ctx.config_digest,
        "inputs": {
            "training": info(&recipe.training_file)?,
            "corpus": recipe.corpus.iter().map(|c| info(c)).collect::<Result<Vec<_>, _>>()?,
            "taxonomy": info(&s.cet.taxonomy).ok(),
            "classification": info(&s.cet.classification).ok(),
        },
        "trained_on": model.body.trained_on,
        "dev_set": dev,
    });
    let metadata_path = recipe.model_path.with_extension("metadata.json");
    crate::io::atomic::write_json(&metadata_path, &metadata)?;
    Ok(Saved {
        model,
        path: recipe.model_path,
        metadata_path,
        dev: trained.dev,
    })
}
