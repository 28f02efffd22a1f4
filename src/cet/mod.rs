//! `classify-cet`: score every award against the CET taxonomy (rules or a trained model),
//! with evidence; aggregate company profiles; compare with the previous run for drift.
//!
//! The pipeline streams the awards Parquet batch by batch (only the columns it needs),
//! classifies each batch in parallel, and writes classifications as it goes; profiles and the
//! drift distribution are small accumulators, so memory does not grow with the award count.

pub mod classify;
pub mod corpus;
pub mod drift;
pub mod embedding;
pub mod eval;
pub mod labelled;
pub mod model;
pub mod params;
pub mod profiles;
pub mod rules;
pub mod taxonomy;
pub mod text;
pub mod training;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{CetSettings, EmbedSettings, NameRules, OutputSettings};
use crate::embed::EmbedError;
use crate::io::IoError;
use crate::io::input::InputInfo;
use crate::io::table::TableWriter;
use crate::metrics::ratio;
use crate::names::Normalizer;
use crate::progress::Progress;
use crate::records::enriched;
use classify::{AwardText, Blend, Classification, Classifier, Scratch};
use drift::{Distribution, DriftReport};
use model::Model;
use params::{ClassifierParams, ScorerChoice};
use profiles::{ProfileAward, ProfileBuilder};
use taxonomy::Taxonomy;

/// What can go wrong in CET classification.
#[derive(Debug, thiserror::Error)]
pub enum CetError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("taxonomy {path} has {} problem(s):\n  {}", issues.len(), issues.join("\n  "))]
    Taxonomy { path: PathBuf, issues: Vec<String> },
    #[error("{path}, line {line}: {message}")]
    Labels {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("no model artifact at {path}: {message}")]
    ModelMissing { path: PathBuf, message: String },
    #[error("model artifact rejected: {0}")]
    ModelInvalid(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl CetError {
    /// Errors caused by what the user gave (exit code 2) rather than by the run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Read { .. }
                | Self::Parse { .. }
                | Self::Taxonomy { .. }
                | Self::Labels { .. }
                | Self::Invalid(_)
        ) || matches!(self, Self::Embed(e) if e.is_usage())
            || matches!(self, Self::Io(e) if e.is_input())
    }
}

/// The award columns classification reads (USAspending ones only when present).
#[derive(Debug, Clone, Deserialize)]
pub struct AwardInput {
    pub award_id: String,
    pub company: String,
    pub award_title: String,
    #[serde(default)]
    pub r#abstract: Option<String>,
    #[serde(default)]
    pub topic_code: Option<String>,
    pub agency: String,
    #[serde(default)]
    pub branch: Option<String>,
    pub award_year: i32,
    pub award_amount: f64,
    #[serde(default)]
    pub uei: Option<String>,
    #[serde(default)]
    pub usaspending_recipient_uei: Option<String>,
    #[serde(default)]
    pub _usaspending_linked: Option<bool>,
}

const REQUIRED: &[&str] = &[
    "award_id",
    "company",
    "award_title",
    "abstract",
    "topic_code",
    "agency",
    "branch",
    "award_year",
    "award_amount",
    "uei",
];
const OPTIONAL: &[&str] = &[enriched::RECIPIENT_UEI, enriched::LINKED];

impl AwardInput {
    pub fn text(&self) -> AwardText<'_> {
        AwardText {
            title: &self.award_title,
            r#abstract: self.r#abstract.as_deref(),
            topic_code: self.topic_code.as_deref(),
            agency: Some(&self.agency),
            branch: self.branch.as_deref(),
            embedding: None,
        }
    }

    /// The company's UEI: its own, else the linked USAspending recipient's.
    pub fn company_uei(&self) -> Option<&str> {
        crate::records::company_uei(
            self.uei.as_deref(),
            self._usaspending_linked,
            self.usaspending_recipient_uei.as_deref(),
        )
    }
}

/// Reads the awards Parquet batch by batch, only the columns classification needs.
pub fn read_award_batches(
    path: &Path,
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<Vec<AwardInput>, CetError>>, CetError> {
    let batches = crate::records::read_projected(path, REQUIRED, OPTIONAL, batch_size)?;
    // Awards Parquet from other tools may still hold HTML; ours is clean and passes untouched.
    Ok(batches.map(|b| {
        let mut awards: Vec<AwardInput> = b.map_err(CetError::Io)?;
        for a in &mut awards {
            a.award_title = crate::html::cleaned(std::mem::take(&mut a.award_title));
            a.r#abstract = a.r#abstract.take().map(crate::html::cleaned);
        }
        Ok(awards)
    }))
}

/// Checks that `path` can be read as awards (the columns classification needs, with their
/// types) without reading its rows, so a bad file fails before any output is written.
pub fn check_awards(path: &Path) -> Result<(), CetError> {
    read_award_batches(path, 1).map(|_| ())
}

/// Why the rules scorer runs instead of the model.
#[derive(Debug, Clone, Serialize)]
pub struct Fallback {
    /// `model_missing` or `model_load_failed`.
    pub reason: &'static str,
    pub detail: String,
}

/// Where the classifier finds its parts.
#[derive(Debug, Clone, Copy)]
pub struct ScorerSources<'a> {
    /// The trained model artifact.
    pub model_path: &'a Path,
    /// Encoder lookup and bundle location, for the embedding and hybrid scorers.
    pub embed: &'a EmbedSettings,
    /// Use the bundle's precomputed award vectors (not worth reading for one ad-hoc text).
    pub award_vectors: bool,
}

/// Builds the classifier: the model when the choice allows it and its artifact loads, and
/// the encoder with the area centroids for the embedding and hybrid scorers (a missing
/// encoder is an error naming every place looked).
pub fn load_classifier(
    taxonomy: Taxonomy,
    params: ClassifierParams,
    choice: ScorerChoice,
    src: &ScorerSources,
) -> Result<(Classifier, Option<Fallback>), CetError> {
    let embedding = if choice.needs_encoder() {
        let e = src.embed;
        let files = crate::embed::models::lookup(e, &e.model, e.model_dir.as_deref())?;
        let (encoder, chunker) = crate::embed::open_encoder(&files, &candle_core::Device::Cpu, e)?;
        let scorer = embedding::EmbeddingScorer::load(
            files,
            encoder,
            chunker,
            &taxonomy,
            params.embedding.clone(),
            &crate::embed::models::bundle_root(e),
            src.award_vectors,
        )?;
        let (base_weight, embedding_weight) = match choice {
            ScorerChoice::Hybrid => (params.hybrid.model_weight, params.hybrid.embedding_weight),
            _ => (0.0, 1.0),
        };
        Some(Blend {
            scorer,
            base_weight,
            embedding_weight,
        })
    } else {
        None
    };
    let (model, fallback) = match choice {
        ScorerChoice::Rules | ScorerChoice::Embedding => (None, None),
        ScorerChoice::Auto | ScorerChoice::Model | ScorerChoice::Hybrid => {
            match Model::load(src.model_path, &taxonomy) {
                Ok(m) => (Some(m), None),
                Err(e @ CetError::ModelMissing { .. }) => (
                    None,
                    Some(Fallback {
                        reason: "model_missing",
                        detail: e.to_string(),
                    }),
                ),
                Err(e) => (
                    None,
                    Some(Fallback {
                        reason: "model_load_failed",
                        detail: e.to_string(),
                    }),
                ),
            }
        }
    };
    Ok((
        Classifier::new(taxonomy, params, model, embedding)?,
        fallback,
    ))
}

/// Inputs of one classification run.
#[derive(Debug, Clone)]
pub struct ClassifyOptions {
    pub awards: PathBuf,
    pub settings: CetSettings,
    pub name_rules: NameRules,
    /// Where the two tables go: `<dir>/<output_name>` and `<dir>/<profiles_name>`.
    pub out_dir: PathBuf,
    /// With `--require-model`, a fallback writes empty outputs and fails.
    pub require_model: bool,
}

/// Counts and figures of a run, for the checks files.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifyReport {
    pub awards: u64,
    /// Awards with a title or abstract to score (the others cannot be classified).
    pub scored: u64,
    /// Awards given an area (the rest scored below `bands.none_below`: no area).
    pub classified: u64,
    pub bands: BTreeMap<String, u64>,
    pub with_evidence: u64,
    pub per_area: BTreeMap<String, u64>,
    pub scorer: String,
    pub model_version: Option<String>,
    pub taxonomy_version: String,
    pub fallback: Option<Fallback>,
    pub companies: u64,
    pub companies_by_key: BTreeMap<String, u64>,
    pub input: Option<InputInfo>,
    pub drift: Option<DriftReport>,
    /// Sampled awards (of how many), when sampling.
    pub sampled_from: Option<u64>,
    /// Encoder, centroids and award vectors of the embedding scorer, when in use.
    pub embedding: Option<embedding::EmbeddingReport>,
}

impl ClassifyReport {
    /// Awards scored / awards: what fails a run (an award without text cannot be scored).
    pub fn success_rate(&self) -> f64 {
        ratio(self.scored, self.awards)
    }
    /// Awards given an area / awards: "no area" is an answer, so this only warns.
    pub fn classified_share(&self) -> f64 {
        ratio(self.classified, self.awards)
    }
    pub fn high_conf_rate(&self) -> f64 {
        ratio(
            self.bands.get("High").copied().unwrap_or(0),
            self.classified,
        )
    }
    pub fn evidence_coverage(&self) -> f64 {
        ratio(self.with_evidence, self.classified)
    }
}

/// Schema of `cet_award_classifications`.
pub fn classification_schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| -> FieldRef { Arc::new(Field::new(n, t, null)) };
    let list = |fields: Vec<FieldRef>| {
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(Fields::from(fields)),
            false,
        )))
    };
    Arc::new(Schema::new(vec![
        f("award_id", DataType::Utf8, false),
        f("primary_cet_id", DataType::Utf8, true),
        f("primary_score", DataType::Float64, false),
        f("band", DataType::Utf8, true),
        f(
            "supporting",
            list(vec![
                f("cet_id", DataType::Utf8, false),
                f("score", DataType::Float64, false),
            ]),
            false,
        ),
        f(
            "evidence",
            list(vec![
                f("cet_id", DataType::Utf8, false),
                f("excerpt", DataType::Utf8, false),
                f("phrase", DataType::Utf8, false),
                f("source", DataType::Utf8, false),
                f("weight", DataType::Float64, false),
            ]),
            false,
        ),
        f("scorer", DataType::Utf8, false),
        f("model_version", DataType::Utf8, true),
        f("taxonomy_version", DataType::Utf8, false),
    ]))
}

fn to_batch(rows: &[Classification]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(classification_schema().fields(), &rows)
}

/// Award ids of a deterministic sample: the `n` ids with the smallest seeded hash.
fn sample_ids(path: &Path, n: u64, seed: u64) -> Result<(HashSet<u64>, u64), CetError> {
    #[derive(Deserialize)]
    struct Id {
        award_id: String,
    }
    let mut keys = Vec::new();
    for batch in crate::records::read_projected::<Id>(path, &["award_id"], &[], 8192)? {
        keys.extend(batch?.iter().map(|r| sample_key(&r.award_id, seed)));
    }
    let total = keys.len() as u64;
    if (n as usize) < keys.len() {
        keys.select_nth_unstable(n as usize);
        keys.truncate(n as usize);
    }
    Ok((keys.into_iter().collect(), total))
}

/// The seeded hash that orders awards for deterministic samples.
pub fn sample_key(id: &str, seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), seed)
}

/// The classifications and profiles written, with the report.
pub struct Written {
    pub report: ClassifyReport,
    pub classifications: Vec<PathBuf>,
    pub profiles: Vec<PathBuf>,
}

/// Reads the primary-area and score distribution of an earlier classifications Parquet.
pub fn read_distribution(path: &Path, taxonomy: &Taxonomy) -> Result<Distribution, CetError> {
    #[derive(Deserialize)]
    struct Primary {
        primary_cet_id: Option<String>,
        primary_score: f64,
    }
    let cols = ["primary_cet_id", "primary_score"];
    let mut d = Distribution::new(taxonomy.areas.len());
    for batch in crate::records::read_projected::<Primary>(path, &cols, &[], 8192)? {
        for p in batch? {
            let area = p.primary_cet_id.and_then(|i| taxonomy.index_of(&i));
            d.add(area, p.primary_score);
        }
    }
    Ok(d)
}

/// Classifies every (or every sampled) award of `opts.awards`, writes
/// `cet_award_classifications` and `cet_company_profiles`, and compares with the previous
/// classifications when there are some.
pub fn classify_to_files(
    opts: &ClassifyOptions,
    classifier: &Classifier,
    fallback: Option<Fallback>,
    output: &OutputSettings,
    progress: &dyn Progress,
) -> Result<Written, CetError> {
    let s = &opts.settings;
    let tax = &classifier.taxonomy;
    let ids: Vec<String> = tax.ids();
    let stem = opts.out_dir.join(&s.output_name);
    let previous = crate::io::with_suffix(&stem, ".parquet");
    let baseline = previous
        .exists()
        .then(|| read_distribution(&previous, tax))
        .transpose()
        .unwrap_or_else(|e| {
            tracing::warn!("classify-cet: previous output not comparable: {e}");
            None
        });
    let failed_required = opts.require_model && fallback.is_some();

    let sample = match s.sample_size {
        Some(n) if !failed_required => Some(sample_ids(&opts.awards, n, s.sample_seed)?),
        _ => None,
    };
    progress.set_total(match &sample {
        Some((keep, _)) => keep.len() as u64,
        None => crate::records::parquet_rows(&opts.awards)?,
    });
    let mut writer = TableWriter::create(&stem, classification_schema(), output)?;
    let mut report = ClassifyReport {
        awards: 0,
        scored: 0,
        classified: 0,
        bands: BTreeMap::new(),
        with_evidence: 0,
        per_area: BTreeMap::new(),
        scorer: classifier.scorer().into(),
        model_version: classifier.model.as_ref().map(|m| m.version.clone()),
        taxonomy_version: tax.version.clone(),
        fallback,
        companies: 0,
        companies_by_key: BTreeMap::new(),
        input: None,
        drift: None,
        sampled_from: sample.as_ref().map(|s| s.1),
        embedding: None,
    };
    let normalizer = Normalizer::new(&opts.name_rules);
    let mut profiles = ProfileBuilder::default();
    let mut dist = Distribution::new(tax.areas.len());
    if !failed_required {
        for batch in read_award_batches(&opts.awards, s.batch_size)? {
            let mut awards = batch?;
            if let Some((keep, _)) = &sample {
                awards.retain(|a| keep.contains(&sample_key(&a.award_id, s.sample_seed)));
            }
            let texts: Vec<(&str, AwardText)> = awards
                .iter()
                .map(|a| (a.award_id.as_str(), a.text()))
                .collect();
            let vectors = classifier.embed(&texts)?;
            let rows: Vec<(Classification, String)> = awards
                .par_iter()
                .enumerate()
                .map_init(Scratch::default, |scratch, (i, a)| {
                    let text = AwardText {
                        embedding: vector(classifier, vectors.as_deref(), i),
                        ..a.text()
                    };
                    (
                        classifier.classify(&a.award_id, &text, scratch),
                        normalizer.normalize(&a.company),
                    )
                })
                .collect();
            for (a, (c, normalized)) in awards.iter().zip(&rows) {
                let primary = c.primary_cet_id.as_deref().and_then(|id| tax.index_of(id));
                report.awards += 1;
                if !a.award_title.trim().is_empty()
                    || a.r#abstract
                        .as_deref()
                        .is_some_and(|t| !t.trim().is_empty())
                {
                    report.scored += 1;
                }
                if let Some(id) = &c.primary_cet_id {
                    report.classified += 1;
                    *report.per_area.entry(id.clone()).or_default() += 1;
                    if !c.evidence.is_empty() {
                        report.with_evidence += 1;
                    }
                }
                *report.bands.entry(c.band.clone()).or_default() += 1;
                dist.add(primary, c.primary_score);
                profiles.add(&ProfileAward {
                    uei: a.company_uei(),
                    company: &a.company,
                    normalized_name: normalized.clone(),
                    year: a.award_year,
                    amount: a.award_amount,
                    primary,
                });
            }
            let classifications: Vec<Classification> = rows.into_iter().map(|r| r.0).collect();
            let batch =
                to_batch(&classifications).map_err(|e| CetError::Io(IoError::write(&stem, e)))?;
            writer.write(&batch)?;
            progress.inc(awards.len() as u64);
        }
    }
    let classifications = writer.commit()?;
    report.embedding = classifier.embedding.as_ref().map(|b| b.scorer.report());
    report.input = Some(InputInfo {
        path: opts.awards.clone(),
        bytes: std::fs::metadata(&opts.awards)
            .map(|m| m.len())
            .unwrap_or(0),
        rows: report.sampled_from.unwrap_or(report.awards),
        sha256: crate::io::input::sha256_file(&opts.awards)?,
    });

    let profiles = profiles.finish(&ids);
    report.companies = profiles.len() as u64;
    for p in &profiles {
        *report
            .companies_by_key
            .entry(p.key_type.clone())
            .or_default() += 1;
    }
    let pstem = opts.out_dir.join(&s.profiles_name);
    let mut pw = TableWriter::create(&pstem, profiles::profile_schema(), output)?;
    for chunk in profiles.chunks(8192) {
        let batch = profiles::profiles_to_batch(chunk)
            .map_err(|e| CetError::Io(IoError::write(&pstem, e)))?;
        pw.write(&batch)?;
    }
    let profile_paths = pw.commit()?;
    if let Some(b) = baseline
        && !failed_required
    {
        report.drift = Some(drift::compare(&b, &dist, &ids, &s.drift));
    }
    Ok(Written {
        report,
        classifications,
        profiles: profile_paths,
    })
}

/// Row `i` of a batch's row-major vectors (from [`Classifier::embed`]).
fn vector<'a>(classifier: &Classifier, vectors: Option<&'a [f32]>, i: usize) -> Option<&'a [f32]> {
    let d = classifier.embedding.as_ref()?.scorer.dims();
    vectors.map(|v| &v[i * d..(i + 1) * d])
}
