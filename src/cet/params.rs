//! `config/cet/classification.yaml`: every knob of the CET scorers, read and checked once.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CetError;

/// The shipped knobs, compiled in so the binary works from any folder.
pub const BUILTIN_YAML: &str = include_str!("../../config/cet/classification.yaml");
/// Where the shipped knobs live in a checkout (the default setting).
pub const DEFAULT_PATH: &str = "config/cet/classification.yaml";

/// Which scorer classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScorerChoice {
    /// The trained model when its artifact loads, else rules.
    Auto,
    /// Weighted keyword phrases; needs no training.
    Rules,
    /// The trained model (falls back to rules, or fails with --require-model).
    Model,
    /// Cosine similarity of the award's dense embedding to each area's centroid.
    Embedding,
    /// The model's (else the rules') scores blended with the embedding scorer's.
    Hybrid,
}

impl ScorerChoice {
    /// Whether the dense encoder and area centroids are needed.
    pub fn needs_encoder(self) -> bool {
        matches!(self, Self::Embedding | Self::Hybrid)
    }
}

/// Weight of a match per field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldWeights {
    pub title: f64,
    pub r#abstract: f64,
    pub topic_code: f64,
}

/// The rules scorer's evidence-to-score mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesParams {
    pub saturation: f64,
    pub repeat_bonus: f64,
    pub max_repeats: u32,
}

/// Score band thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub high: f64,
    pub medium: f64,
    /// A best score below this gives the award no area (band `none`).
    pub none_below: f64,
}

impl Bands {
    /// `High`, `Medium` or `Low` for a score: the one band rule of classifications and the
    /// graph.
    pub fn of(&self, score: f64) -> &'static str {
        if score >= self.high {
            "High"
        } else if score >= self.medium {
            "Medium"
        } else {
            "Low"
        }
    }
}

/// Which non-primary areas are reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportingParams {
    pub max: usize,
    pub min_score: f64,
    pub min_gap: f64,
}

/// Evidence excerpt limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    pub max_excerpts: usize,
    pub max_words: usize,
}

/// A score boost for awards of one agency (and branch).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    pub agency: String,
    #[serde(default)]
    pub branch: Option<String>,
    pub cet_id: String,
    pub boost: f64,
}

/// The embedding scorer's calibration: a cosine similarity `c` scores
/// `100 * clamp((c - floor) / (ceiling - floor), 0, 1)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingParams {
    pub floor: f64,
    pub ceiling: f64,
    /// Centroids also average the embeddings of awards the base scorer put in the High band
    /// (`prepare-assets --with-award-embeddings`) when an area has at least this many.
    pub min_award_examples: usize,
}

/// Weights of the hybrid scorer (each area: model_weight x model + embedding_weight x embedding).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridParams {
    pub model_weight: f64,
    pub embedding_weight: f64,
}

/// Training knobs of the trained scorer (see `config/cet/classification.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    pub ngram_max: usize,
    pub min_df: u32,
    pub max_df: f64,
    pub sublinear_tf: bool,
    pub keyword_boost: f64,
    pub max_features: usize,
    /// Word vectors: the most frequent corpus words (in at least `vector_min_df` documents).
    pub vector_words: usize,
    pub vector_min_df: u32,
    /// Factor of the (unit-length) document vector in a feature row.
    pub vector_weight: f64,
    /// Prior weight of an area's own phrase evidence for that area (the L2 penalty pulls
    /// toward it), so areas with few labelled awards still follow the taxonomy's keywords.
    pub phrase_prior: f64,
    pub l2: f64,
    /// Share of a labelled award's target probability given to its secondary areas (0: the
    /// primary only); absent in artifacts trained before it existed.
    #[serde(default)]
    pub secondary_share: f64,
    pub balance_classes: bool,
    pub max_class_weight: f64,
    pub max_iter: usize,
    pub tolerance: f64,
    pub memory: usize,
    pub seed: u64,
    pub stop_words: Vec<String>,
}

/// Every knob of `config/cet/classification.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierParams {
    pub scorer: ScorerChoice,
    pub field_weights: FieldWeights,
    pub rules: RulesParams,
    pub bands: Bands,
    pub supporting: SupportingParams,
    pub evidence: EvidenceParams,
    pub priors_min_score: f64,
    pub priors: Vec<Prior>,
    pub model: ModelParams,
    pub embedding: EmbeddingParams,
    pub hybrid: HybridParams,
    pub bootstrap_min_score: f64,
    pub bootstrap_max_docs: usize,
}

impl ClassifierParams {
    /// Reads the file and checks ranges serde cannot express.
    pub fn load(path: &Path) -> Result<Self, CetError> {
        let text = super::taxonomy::read_or_builtin(path, DEFAULT_PATH, BUILTIN_YAML)?;
        let p: Self = serde_saphyr::from_str(&text).map_err(|e| CetError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let bad = |key: &str, why: &str| {
            Err(CetError::Parse {
                path: path.to_path_buf(),
                message: format!("`{key}` {why}"),
            })
        };
        let m = &p.model;
        let b = &p.bands;
        if !(0.0 <= b.none_below
            && b.none_below <= b.medium
            && b.medium <= b.high
            && b.high <= 100.0)
        {
            return bad(
                "bands",
                "must satisfy 0 <= none_below <= medium <= high <= 100",
            );
        }
        if p.rules.saturation <= 0.0 {
            return bad("rules.saturation", "must be positive");
        }
        if !(1..=2).contains(&m.ngram_max) {
            return bad("model.ngram_max", "must be 1 or 2");
        }
        if !(m.max_df > 0.0 && m.max_df <= 1.0) {
            return bad("model.max_df", "must be in (0, 1]");
        }
        if m.vector_weight < 0.0 || m.max_class_weight < 1.0 {
            return bad(
                "model.vector_weight/max_class_weight",
                "must be >= 0 and >= 1 respectively",
            );
        }
        if !(0.0..1.0).contains(&m.secondary_share) {
            return bad("model.secondary_share", "must be in [0, 1)");
        }
        if p.embedding.floor.partial_cmp(&p.embedding.ceiling) != Some(std::cmp::Ordering::Less) {
            return bad("embedding.floor", "must be below embedding.ceiling");
        }
        let h = &p.hybrid;
        if h.model_weight < 0.0
            || h.embedding_weight < 0.0
            || h.model_weight + h.embedding_weight <= 0.0
        {
            return bad("hybrid", "weights must be non-negative and not both zero");
        }
        if m.max_features == 0 || m.max_iter == 0 || m.memory == 0 {
            return bad("model.max_features/max_iter/memory", "must be at least 1");
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_split_at_their_thresholds() {
        let b = Bands {
            high: 0.7,
            medium: 0.4,
            none_below: 0.0,
        };
        assert_eq!(
            [b.of(0.7), b.of(0.69), b.of(0.4), b.of(0.1)],
            ["High", "Medium", "Medium", "Low"]
        );
    }
}
