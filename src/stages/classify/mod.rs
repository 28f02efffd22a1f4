//! The classify-cet stage: the classifier the settings ask for → `classify_to_files` → the
//! quality gates, the classifications and profiles checks files, the taxonomy table and the
//! drift alerts; plus the taxonomy check, one-text classification and drift comparison.

pub mod evaluate;
pub mod train;

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Done, Layout, StageError, Written};
use crate::cet::classify::{AwardText, Classification, Classifier, Scratch};
use crate::cet::embedding::CentroidOrigin;
use crate::cet::params::{ClassifierParams, ScorerChoice};
use crate::cet::taxonomy::{self, Taxonomy, TaxonomyIssue};
use crate::cet::{self, CetError, ClassifyOptions, ClassifyReport, Fallback, drift};
use crate::config::Settings;
use crate::io::IoError;
use crate::io::checks::{Checks, Gate, RunContext, Severity, now_rfc3339};
use crate::io::input::InputInfo;
use crate::io::table::TableWriter;
use crate::metrics::StageTimer;
use crate::progress::Progress;

/// What a run may ask for beyond the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// The scorer [default: the `scorer` of cet.classification].
    pub scorer: Option<ScorerChoice>,
    /// Fail with empty outputs instead of falling back to rules when the model is missing.
    pub require_model: bool,
}

/// What the run wrote besides its checks files.
pub struct Classified {
    pub report: ClassifyReport,
    /// The drift and analytics alert files, when an earlier output was there to compare.
    pub alerts: Vec<PathBuf>,
    /// The classifier that scored, for callers that go on to evaluate it.
    pub classifier: Classifier,
}

/// The taxonomy and the classification parameters the settings name.
pub fn load_parts(s: &Settings) -> Result<(Taxonomy, ClassifierParams), CetError> {
    Ok((
        Taxonomy::load(&s.cet.taxonomy)?,
        ClassifierParams::load(&s.cet.classification)?,
    ))
}

/// The classifier for `choice` (default: the settings'), logging where its parts came from
/// and any fallback to rules.
pub fn load_classifier(
    s: &Settings,
    choice: Option<ScorerChoice>,
    award_vectors: bool,
) -> Result<(Classifier, Option<Fallback>), CetError> {
    let (taxonomy, params) = load_parts(s)?;
    let choice = choice.unwrap_or(params.scorer);
    let sources = cet::ScorerSources {
        model_path: &s.cet.model_path,
        embed: &s.embed,
        award_vectors,
    };
    let (classifier, fallback) = cet::load_classifier(taxonomy, params, choice, &sources)?;
    if let Some(f) = &fallback {
        tracing::warn!(
            "classify-cet: no trained model ({}), scoring with rules instead: {}",
            f.reason,
            f.detail
        );
    }
    if let Some(b) = &classifier.embedding {
        let r = b.scorer.report();
        let centroids = match &r.centroids {
            CentroidOrigin::Bundle { path } => format!("from {}", path.display()),
            CentroidOrigin::Built { reason } => format!("built now ({reason})"),
        };
        tracing::info!(
            "classify-cet: encoder {} from {} ({:?}); CET centroids {centroids}",
            r.model_id,
            r.model_dir.display(),
            r.model_source
        );
    }
    Ok((classifier, fallback))
}

/// Classifies the awards the layout names; writes both tables, the taxonomy table, both
/// checks files and, when an earlier output exists, the drift alerts.
pub fn run(
    s: &Settings,
    ctx: &RunContext,
    extra: Extra,
    progress: &dyn Progress,
) -> Result<Done<Classified>, StageError> {
    let layout = Layout::new(s);
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let (classifier, fallback) = load_classifier(s, extra.scorer, true)?;
    let opts = ClassifyOptions {
        awards: layout.awards(),
        settings: s.cet.clone(),
        name_rules: s.enrich.name_rules.clone(),
        out_dir: s.paths.processed_dir.clone(),
        require_model: extra.require_model,
    };
    tracing::info!(
        "classify-cet: {} with the {} scorer",
        opts.awards.display(),
        classifier.scorer()
    );
    cet::check_awards(&opts.awards)?;
    let taxonomy_paths = write_taxonomy(&classifier.taxonomy, &layout.taxonomy_stem(), s)?;
    let written = cet::classify_to_files(&opts, &classifier, fallback, &s.output, progress)?;
    let r = written.report;
    let mut checks = Checks::new(
        "classify-cet",
        ctx,
        started_at.clone(),
        gates(s, &r, extra.require_model),
    );
    if let (Some(f), Some(reason)) = (&r.fallback, &checks.reason) {
        checks.reason = Some(reason.replace(&model_gate(Severity::Warning).describe(), f.reason));
    }
    checks.counts = [
        ("num_awards".to_string(), r.awards),
        ("num_scored".to_string(), r.scored),
        ("num_classified".to_string(), r.classified),
        ("num_with_evidence".to_string(), r.with_evidence),
    ]
    .into_iter()
    .chain(r.bands.iter().map(|(b, n)| (format!("band_{b}"), *n)))
    .collect();
    checks.metrics = timer.finish(r.awards);
    checks.inputs = r.input.iter().cloned().collect();
    checks.outputs = written
        .classifications
        .iter()
        .chain(&taxonomy_paths)
        .cloned()
        .collect();
    checks.details = json!({
        "scorer": r.scorer,
        "reason": r.fallback.as_ref().map(|f| f.reason),
        "fallback": r.fallback,
        "model_version": r.model_version,
        "taxonomy_version": r.taxonomy_version,
        "high_conf_rate": r.high_conf_rate(),
        "evidence_coverage_rate": r.evidence_coverage(),
        "classification_success_rate": r.success_rate(),
        "classified_share": r.classified_share(),
        "per_area": r.per_area,
        "bands": r.bands,
        "sample": s.cet.sample_size.map(|n| json!({"size": n, "seed": s.cet.sample_seed, "from": r.sampled_from})),
        "embedding": r.embedding,
        "drift": r.drift.as_ref().map(|d| json!({"area_psi": d.area_psi, "score_psi": d.score_psi, "alerts": d.drift_alerts.len() + d.analytics_alerts.len()})),
    });
    let inputs = checks.inputs.clone();
    let classified = Written::write(checks, Checks::path_for(&layout.classifications_stem()))?;

    let mut pchecks = Checks::new("classify-cet.profiles", ctx, started_at, Vec::new());
    pchecks.counts = [("num_companies".to_string(), r.companies)]
        .into_iter()
        .chain(
            r.companies_by_key
                .iter()
                .map(|(k, n)| (format!("companies_keyed_by_{k}"), *n)),
        )
        .collect();
    pchecks.metrics = timer.finish(r.companies);
    pchecks.inputs = inputs;
    pchecks.outputs = written.profiles;
    pchecks.details = json!({
        "specialization_score": "share of a company's classified awards whose primary area is its dominant area",
        "key": "UEI when known (the award's, else its linked USAspending recipient's), else name:<normalised company name>",
    });
    let profiles = Written::write(pchecks, Checks::path_for(&layout.profiles_stem()))?;
    let alerts = match &r.drift {
        Some(d) => write_alerts(s, ctx, d, &layout.classifications())?,
        None => Vec::new(),
    };
    Ok(Done {
        checks: vec![classified, profiles],
        report: Classified {
            report: r,
            alerts,
            classifier,
        },
    })
}

/// The run's gates. A fallback to rules is a warning, or with `require_model` the one
/// failure (nothing was scored).
fn gates(s: &Settings, r: &ClassifyReport, require_model: bool) -> Vec<Gate> {
    let g = &s.cet.gates;
    if r.fallback.is_some() && require_model {
        return vec![model_gate(Severity::Error)];
    }
    let mut gates = vec![
        Gate::at_least(
            "classification_success_rate",
            r.success_rate(),
            g.min_success_rate,
            Severity::Error,
        ),
        Gate::at_least(
            "classified_share",
            r.classified_share(),
            g.min_classified_share,
            Severity::Warning,
        ),
        Gate::at_least(
            "high_conf_rate",
            r.high_conf_rate(),
            g.min_high_conf_rate,
            Severity::Warning,
        ),
        Gate::at_least(
            "evidence_coverage_rate",
            r.evidence_coverage(),
            g.min_evidence_coverage,
            Severity::Warning,
        ),
    ];
    gates.extend(r.fallback.as_ref().map(|_| model_gate(Severity::Warning)));
    gates
}

/// The gate a fallback fails: no model was loaded.
fn model_gate(severity: Severity) -> Gate {
    Gate::at_least("model_loaded", 0.0, 1.0, severity)
}

/// Checks the taxonomy; writes `cet_taxonomy` when it is valid, and its checks file. The
/// report lists the problems found.
pub fn check_taxonomy(
    s: &Settings,
    ctx: &RunContext,
) -> Result<Done<Vec<TaxonomyIssue>>, StageError> {
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let taxonomy = Taxonomy::read(&s.cet.taxonomy)?;
    let issues = taxonomy.issues();
    for i in &issues {
        tracing::error!("taxonomy {}: {i}", s.cet.taxonomy.display());
    }
    let stem = Layout::new(s).taxonomy_stem();
    let mut checks = Checks::new(
        "classify-cet.taxonomy",
        ctx,
        started_at,
        vec![Gate::at_most(
            "taxonomy_issues",
            issues.len() as f64,
            0.0,
            Severity::Error,
        )],
    );
    if issues.is_empty() {
        checks.outputs = write_taxonomy(&taxonomy, &stem, s)?;
    }
    checks.counts = [
        ("areas".to_string(), taxonomy.areas.len() as u64),
        (
            "keywords".to_string(),
            taxonomy.areas.iter().map(|a| a.keywords.len() as u64).sum(),
        ),
        ("issues".to_string(), issues.len() as u64),
    ]
    .into();
    checks.metrics = timer.finish(taxonomy.areas.len() as u64);
    // The compiled-in taxonomy (no file at the default path) has no file to fingerprint.
    checks.inputs = file_info(&s.cet.taxonomy).into_iter().collect();
    checks.details = json!({
        "taxonomy_version": taxonomy.version,
        "effective_date": taxonomy.effective_date,
        "issues": issues,
    });
    let checks = Written::write(checks, Checks::path_for(&stem))?;
    Ok(Done {
        checks: vec![checks],
        report: issues,
    })
}

fn write_taxonomy(t: &Taxonomy, stem: &Path, s: &Settings) -> Result<Vec<PathBuf>, CetError> {
    let mut w = TableWriter::create(stem, taxonomy::taxonomy_schema(), &s.output)?;
    let batch = t.to_batch().map_err(|e| CetError::Write {
        path: stem.to_path_buf(),
        message: e.to_string(),
    })?;
    w.write(&batch)?;
    Ok(w.commit()?)
}

/// A file's path, size and SHA-256.
pub fn file_info(path: &Path) -> Result<InputInfo, IoError> {
    Ok(InputInfo {
        path: path.to_path_buf(),
        bytes: std::fs::metadata(path)
            .map_err(|e| IoError::read(path, e))?
            .len(),
        rows: 0,
        sha256: crate::io::input::sha256_file(path)?,
    })
}

/// Classifies one ad-hoc text; its first line is taken as the title when it has several, as
/// in an award. With `require_model`, a fallback to rules is an error.
pub fn classify_text(s: &Settings, text: &str, extra: Extra) -> Result<Classification, CetError> {
    if text.trim().is_empty() {
        return Err(CetError::Invalid(
            "no text to classify: --text is empty or standard input had none".into(),
        ));
    }
    let (classifier, fallback) = load_classifier(s, extra.scorer, false)?;
    if let Some(f) = &fallback
        && extra.require_model
    {
        return Err(CetError::Invalid(format!("--require-model: {}", f.detail)));
    }
    let (title, rest) = match text.trim().split_once('\n') {
        Some((t, r)) if !r.trim().is_empty() => (t.trim(), Some(r.trim())),
        _ => ("", Some(text.trim())),
    };
    let mut award = AwardText {
        title,
        r#abstract: rest,
        topic_code: None,
        agency: None,
        branch: None,
        embedding: None,
    };
    let vector = classifier.embed(&[("text", award)])?;
    award.embedding = vector.as_deref();
    Ok(classifier.classify("text", &award, &mut Scratch::default()))
}

/// Compares an earlier classifications table with `current` (default: this layout's) and
/// writes the alert files.
pub fn drift(
    s: &Settings,
    ctx: &RunContext,
    baseline: &Path,
    current: Option<&Path>,
) -> Result<(drift::DriftReport, Vec<PathBuf>), CetError> {
    let taxonomy = Taxonomy::load(&s.cet.taxonomy)?;
    let current = current.map_or_else(|| Layout::new(s).classifications(), Path::to_path_buf);
    let base = cet::read_distribution(baseline, &taxonomy)?;
    let cur = cet::read_distribution(&current, &taxonomy)?;
    let d = drift::compare(&base, &cur, &taxonomy.ids(), &s.cet.drift);
    let paths = write_alerts(s, ctx, &d, &current)?;
    tracing::info!(
        "classify-cet drift: area PSI {:.4}, score PSI {:.4}, {} alert(s)",
        d.area_psi,
        d.score_psi,
        d.drift_alerts.len() + d.analytics_alerts.len()
    );
    Ok((d, paths))
}

/// Writes the two alert files and logs their alerts.
fn write_alerts(
    s: &Settings,
    ctx: &RunContext,
    d: &drift::DriftReport,
    current: &Path,
) -> Result<Vec<PathBuf>, IoError> {
    let dir = Layout::new(s).alerts_dir();
    std::fs::create_dir_all(&dir).map_err(|e| IoError::write(&dir, e))?;
    let header = json!({"run_id": ctx.run_id, "generated_at": now_rfc3339(), "current": current});
    let files = [
        (
            "cet_drift_detection.alerts.json",
            json!({"meta": header, "area_psi": d.area_psi, "score_psi": d.score_psi,
                "baseline_awards": d.baseline_awards, "current_awards": d.current_awards,
                "baseline_mean_score": d.baseline_mean_score, "current_mean_score": d.current_mean_score,
                "shares": d.shares, "alerts": d.drift_alerts}),
        ),
        (
            "cet_analytics.alerts.json",
            json!({"meta": header, "shares": d.shares, "alerts": d.analytics_alerts}),
        ),
    ];
    let mut paths = Vec::new();
    for (name, value) in files {
        paths.push(crate::io::atomic::write_json(&dir.join(name), &value)?);
    }
    for a in d.drift_alerts.iter().chain(&d.analytics_alerts) {
        tracing::warn!("classify-cet drift ({}): {}", a.severity, a.message);
    }
    Ok(paths)
}
