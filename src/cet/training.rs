//! One training run of the CET model: the labelled awards, word vectors when given, and the
//! figures on a dev set — held out, or folded into the training set with k-fold
//! cross-validated figures (each dev award scored by a model that never saw it).

use serde::Serialize;

use super::classify::Classifier;
use super::eval::{self, Evaluation};
use super::labelled::score_docs;
use super::model::{LabelledDoc, Model, VectorSource};
use super::params::ClassifierParams;
use super::taxonomy::Taxonomy;
use super::{CetError, sample_key};

/// Labelled awards to measure the model on.
pub struct Dev {
    pub docs: Vec<LabelledDoc>,
    /// `Some(k)`: learn from the dev awards too, and report k-fold cross-validated figures.
    pub folds: Option<usize>,
}

/// The trained model and its figures on the dev set.
pub struct Trained {
    pub model: Model,
    pub dev: Option<DevFigures>,
}

/// How the model does on the dev set.
#[derive(Debug, Clone, Serialize)]
pub struct DevFigures {
    /// Folds of the cross-validation when the dev awards are in the training set; `None`
    /// when they were held out.
    pub cross_validated_folds: Option<usize>,
    pub evaluation: Evaluation,
}

/// Trains on `docs` (and the dev awards, when `dev.folds` says so) and measures on the dev set.
pub fn train(
    docs: Vec<LabelledDoc>,
    dev: Option<Dev>,
    taxonomy: &Taxonomy,
    params: &ClassifierParams,
    vectors: Option<VectorSource>,
    source: &str,
) -> Result<Trained, CetError> {
    let fit = |docs: &[LabelledDoc]| Model::train(docs, taxonomy, params, vectors.clone(), source);
    let score = |model: &Model, docs: &[LabelledDoc]| -> Result<Vec<eval::Scored>, CetError> {
        let c = Classifier::new(taxonomy.clone(), params.clone(), Some(model.clone()), None)?;
        Ok(score_docs(&c, docs, None))
    };
    let figures = |items: &[eval::Scored], folds| DevFigures {
        cross_validated_folds: folds,
        evaluation: eval::evaluate("model", items, &taxonomy.ids()),
    };
    let Some(dev) = dev else {
        return Ok(Trained {
            model: fit(&docs)?,
            dev: None,
        });
    };
    let Some(k) = dev.folds.map(|k| k.max(2)) else {
        let model = fit(&docs)?;
        let items = score(&model, &dev.docs)?;
        return Ok(Trained {
            model,
            dev: Some(figures(&items, None)),
        });
    };
    // Folds by seeded hash of the award id: the same split on every run.
    let fold = |d: &LabelledDoc| (sample_key(&d.id, params.model.seed) % k as u64) as usize;
    let mut items = Vec::with_capacity(dev.docs.len());
    for f in 0..k {
        let (held, kept): (Vec<&LabelledDoc>, Vec<&LabelledDoc>) =
            dev.docs.iter().partition(|d| fold(d) == f);
        if held.is_empty() {
            continue;
        }
        let train: Vec<LabelledDoc> = docs.iter().chain(kept).cloned().collect();
        let held: Vec<LabelledDoc> = held.into_iter().cloned().collect();
        items.extend(score(&fit(&train)?, &held)?);
    }
    let all: Vec<LabelledDoc> = docs.into_iter().chain(dev.docs).collect();
    Ok(Trained {
        model: fit(&all)?,
        dev: Some(figures(&items, Some(k))),
    })
}
