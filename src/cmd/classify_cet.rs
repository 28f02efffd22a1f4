//! `sbir classify-cet`: awards → `cet_award_classifications` + `cet_company_profiles` (+ the
//! taxonomy table and drift alerts), and the `train`, `evaluate` and `drift` actions.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sbir::cet::embedding::CentroidOrigin as EmbeddingOrigin;
use sbir::cet::eval::Evaluation;
use sbir::cet::model::LabelledDoc;
use sbir::cet::params::{ClassifierParams, ScorerChoice};
use sbir::cet::taxonomy::Taxonomy;
use sbir::cet::{self, ClassifyOptions, drift};
use sbir::config::{FlagOverride, Settings};
use sbir::io::checks::{Checks, Gate, Severity, Status, now_rfc3339};
use sbir::io::table::TableWriter;
use sbir::metrics::StageTimer;
use serde_json::json;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir classify-cet`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  sbir classify-cet                                   # the enrich (else ingest) output\n  sbir classify-cet --check-taxonomy                  # validate config/cet/taxonomy.yaml\n  sbir classify-cet --text \"Hypersonic glide vehicle thermal protection\"   # one ad-hoc text, JSON out\n  sbir classify-cet train --bootstrap                 # train the model from confident rule decisions\n  sbir classify-cet train --labels data/sample/award_cet_labels.csv\n  sbir classify-cet evaluate --labels data/sample/award_cet_labels.csv [--with-embedding]\n  sbir classify-cet drift --baseline old/cet_award_classifications.parquet\n  SBIR_ETL__CET__SAMPLE_SIZE=500 sbir classify-cet    # a deterministic sample"
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Fail (exit 3, empty outputs) instead of falling back to rules when the model is missing
    /// or fails its checks.
    #[arg(long)]
    pub require_model: bool,
    /// Validate the taxonomy and write cet_taxonomy.parquet, nothing else.
    #[arg(long)]
    pub check_taxonomy: bool,
    /// Classify this text (an abstract, title first if you have one) and print the result as
    /// JSON; writes nothing.
    #[arg(long, conflicts_with = "stdin")]
    pub text: Option<String>,
    /// Like --text, reading the text from standard input.
    #[arg(long)]
    pub stdin: bool,
}

/// Flags every classify-cet action shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Awards Parquet [default: cet.awards, else the enrich output, else the ingest output].
    #[arg(long, global = true)]
    pub awards: Option<PathBuf>,
    /// Scorer [default: the `scorer` of cet.classification].
    #[arg(long, value_enum, global = true)]
    pub scorer: Option<ScorerChoice>,
    /// Model artifact [default: cet.model_path; CET_MODEL_PATH overrides it].
    #[arg(long, global = true)]
    pub model: Option<PathBuf>,
    /// For train and evaluate: award texts (CSV or NDJSON, gzip allowed: award_id, title,
    /// abstract, topic_code, agency, branch) the labels' award ids refer to, instead of the
    /// awards Parquet.
    #[arg(long, global = true)]
    pub texts: Option<PathBuf>,
}

/// What `classify-cet` does besides classifying.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Train the model artifact from labels, or from the rules' confident decisions.
    Train(TrainArgs),
    /// Precision, recall and F1 of each scorer against labelled awards.
    Evaluate(EvaluateArgs),
    /// Compare two classification outputs: area and score distribution shift.
    Drift(DriftArgs),
}

/// Flags of `classify-cet train`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir classify-cet train --labels data/sample/award_cet_labels.csv   # award_id,primary_cet[,secondary_cets]\n  sbir classify-cet train --bootstrap                                 # from the rules' confident decisions\n  CET_MODEL_PATH=/tmp/m.json sbir classify-cet train --bootstrap      # write the artifact elsewhere"
)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["labels", "bootstrap"])))]
pub struct TrainArgs {
    /// CSV of award_id (or text) and CET ids (primary_cet, optional secondary_cets).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Train on a scorer's decisions (--scorer, default rules) scoring at least
    /// bootstrap_min_score.
    #[arg(long)]
    pub bootstrap: bool,
    /// With --bootstrap: also write the weak labels (a labels CSV with the primary's score).
    #[arg(long, requires = "bootstrap")]
    pub save_labels: Option<PathBuf>,
    /// Evaluate the new model on these labels and record the figures in its metadata.
    #[arg(long)]
    pub dev_labels: Option<PathBuf>,
    /// Award texts the dev labels refer to (CSV or NDJSON) [default: the awards Parquet].
    #[arg(long, requires = "dev_labels")]
    pub dev_texts: Option<PathBuf>,
    /// Also learn from the dev labels; their figures are then K-fold cross-validated (each
    /// dev award scored by a model trained without it).
    #[arg(long, requires = "dev_labels", value_name = "K")]
    pub dev_folds: Option<usize>,
    /// Award texts (CSV, NDJSON or JSON arrays, gzip allowed; several files allowed) whose
    /// frequent words get word vectors from the sentence encoder (embed.model, located as
    /// `sbir embed` does); without it the model has no word vectors.
    #[arg(long, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
}

/// Flags of `classify-cet evaluate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir classify-cet evaluate --labels data/sample/award_cet_labels.csv\n  sbir classify-cet evaluate --labels labels.csv --with-embedding --out reports/eval.json"
)]
pub struct EvaluateArgs {
    /// CSV of award_id (or text) and CET ids (primary first).
    #[arg(long)]
    pub labels: PathBuf,
    /// Where the JSON report goes [default: <reports_dir>/cet_evaluation.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also evaluate the embedding and hybrid scorers (they encode every labelled award,
    /// ≈ 10 awards/s on 2 cores, unless `prepare-assets --with-award-embeddings` has).
    #[arg(long)]
    pub with_embedding: bool,
}

/// Flags of `classify-cet drift`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir classify-cet drift --baseline last-month/cet_award_classifications.parquet\n  sbir classify-cet drift --baseline a.parquet --current b.parquet"
)]
pub struct DriftArgs {
    /// The earlier cet_award_classifications.parquet.
    #[arg(long)]
    pub baseline: PathBuf,
    /// The later one [default: the current output].
    #[arg(long)]
    pub current: Option<PathBuf>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = self.output.overrides();
        o.extend(FlagOverride::path(
            "cet.awards",
            self.common.awards.as_deref(),
            "--awards",
        ));
        o.extend(FlagOverride::path(
            "cet.model_path",
            self.common.model.as_deref(),
            "--model",
        ));
        o
    }
}

/// The awards file classify-cet reads: the setting, else the enrich output when present,
/// else the ingest output.
pub fn awards_path(s: &Settings) -> PathBuf {
    if let Some(p) = &s.cet.awards {
        return p.clone();
    }
    let enriched = s
        .paths
        .processed_dir
        .join(format!("{}.parquet", s.enrich.output_name));
    if enriched.exists() {
        enriched
    } else {
        s.paths
            .processed_dir
            .join(format!("{}.parquet", s.ingest.output_name))
    }
}

fn load_parts(s: &Settings) -> anyhow::Result<(Taxonomy, ClassifierParams)> {
    Ok((
        Taxonomy::load(&s.cet.taxonomy)?,
        ClassifierParams::load(&s.cet.classification)?,
    ))
}

/// Runs the chosen action.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    match &args.action {
        Some(Action::Train(t)) => train(t, &args.common, env),
        Some(Action::Evaluate(e)) => evaluate_cmd(e, &args.common, env),
        Some(Action::Drift(d)) => drift_cmd(d, env),
        None if args.check_taxonomy => check_taxonomy(env),
        None if args.text.is_some() || args.stdin => classify_text(args, env),
        None => classify(args, env),
    }
}

/// Writes `cet_taxonomy` (when valid) and its checks file.
fn check_taxonomy(env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let taxonomy = Taxonomy::read(&s.cet.taxonomy)?;
    let issues = taxonomy.issues();
    for i in &issues {
        tracing::error!("taxonomy {}: {i}", s.cet.taxonomy.display());
    }
    let stem = s.paths.processed_dir.join(&s.cet.taxonomy_name);
    let mut checks = Checks::new(
        "classify-cet.taxonomy",
        &env.ctx,
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
    checks.inputs = input_info(&s.cet.taxonomy).into_iter().collect();
    checks.details = json!({
        "taxonomy_version": taxonomy.version,
        "effective_date": taxonomy.effective_date,
        "issues": issues,
    });
    super::finish_stage(&checks, &Checks::path_for(&stem))
}

fn write_taxonomy(t: &Taxonomy, stem: &Path, s: &Settings) -> anyhow::Result<Vec<PathBuf>> {
    let mut w = TableWriter::create(stem, sbir::cet::taxonomy::taxonomy_schema(), &s.output)?;
    w.write(&t.to_batch()?)?;
    Ok(w.commit()?)
}

fn input_info(path: &Path) -> Result<sbir::io::input::InputInfo, std::io::Error> {
    Ok(sbir::io::input::InputInfo {
        path: path.to_path_buf(),
        bytes: std::fs::metadata(path)?.len(),
        rows: 0,
        sha256: sbir::io::input::sha256_file(path).map_err(std::io::Error::other)?,
    })
}

/// The classifier for `choice` (default: the settings'), logging where its parts came from
/// and any fallback to rules.
pub fn load_classifier(
    s: &Settings,
    choice: Option<ScorerChoice>,
    award_vectors: bool,
) -> anyhow::Result<(cet::classify::Classifier, Option<cet::Fallback>)> {
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
            EmbeddingOrigin::Bundle { path } => format!("from {}", path.display()),
            EmbeddingOrigin::Built { reason } => format!("built now ({reason})"),
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

/// Classifies one ad-hoc text (`--text` or `--stdin`) and prints the classification.
fn classify_text(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let text = match &args.text {
        Some(t) => t.clone(),
        None => std::io::read_to_string(std::io::stdin()).context("reading standard input")?,
    };
    if text.trim().is_empty() {
        return Err(cet::CetError::Invalid(
            "no text to classify: --text is empty or standard input had none".into(),
        )
        .into());
    }
    let s = env.settings();
    let (classifier, fallback) = load_classifier(s, args.common.scorer, false)?;
    if let Some(f) = &fallback
        && args.require_model
    {
        return Err(cet::CetError::Invalid(format!("--require-model: {}", f.detail)).into());
    }
    // The first line is taken as the title when the text has several, as in an award.
    let (title, rest) = match text.trim().split_once('\n') {
        Some((t, r)) if !r.trim().is_empty() => (t.trim(), Some(r.trim())),
        _ => ("", Some(text.trim())),
    };
    let mut award = cet::classify::AwardText {
        title,
        r#abstract: rest,
        topic_code: None,
        agency: None,
        branch: None,
        embedding: None,
    };
    let vector = classifier.embed(&[("text", award)])?;
    award.embedding = vector.as_deref();
    let c = classifier.classify("text", &award, &mut cet::classify::Scratch::default());
    println!("{}", serde_json::to_string_pretty(&c)?);
    Ok(Status::Pass)
}

/// Classifies the awards and writes every output and checks file.
fn classify(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let (classifier, fallback) = load_classifier(s, args.common.scorer, true)?;
    let opts = ClassifyOptions {
        awards: awards_path(s),
        settings: s.cet.clone(),
        name_rules: s.enrich.name_rules.clone(),
        out_dir: s.paths.processed_dir.clone(),
        require_model: args.require_model,
    };
    tracing::info!(
        "classify-cet: {} with the {} scorer",
        opts.awards.display(),
        classifier.scorer()
    );
    cet::check_awards(&opts.awards)
        .with_context(|| format!("classify-cet of {} failed", opts.awards.display()))?;
    let taxonomy_paths = write_taxonomy(
        &classifier.taxonomy,
        &s.paths.processed_dir.join(&s.cet.taxonomy_name),
        s,
    )?;
    let written = env.with_progress("classify-cet", "awards", |progress| {
        cet::classify_to_files(&opts, &classifier, fallback.clone(), &s.output, progress)
            .with_context(|| format!("classify-cet of {} failed", opts.awards.display()))
    })?;
    let r = &written.report;
    let g = &s.cet.gates;
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
    // A fallback is a warning, or with --require-model the one failure (nothing was scored).
    let model_gate = r.fallback.as_ref().map(|_| {
        let severity = if args.require_model {
            gates.clear();
            Severity::Error
        } else {
            Severity::Warning
        };
        Gate::at_least("model_loaded", 0.0, 1.0, severity)
    });
    gates.extend(model_gate.clone());
    let mut checks = Checks::new("classify-cet", &env.ctx, started_at.clone(), gates);
    if let (Some(f), Some(gate), Some(reason)) = (&r.fallback, &model_gate, &checks.reason) {
        checks.reason = Some(reason.replace(&gate.describe(), f.reason));
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
    let stem = s.paths.processed_dir.join(&s.cet.output_name);
    let status = super::finish_stage(&checks, &Checks::path_for(&stem))?;

    let pstem = s.paths.processed_dir.join(&s.cet.profiles_name);
    let mut pchecks = Checks::new("classify-cet.profiles", &env.ctx, started_at, Vec::new());
    pchecks.counts = [("num_companies".to_string(), r.companies)]
        .into_iter()
        .chain(
            r.companies_by_key
                .iter()
                .map(|(k, n)| (format!("companies_keyed_by_{k}"), *n)),
        )
        .collect();
    pchecks.metrics = timer.finish(r.companies);
    pchecks.inputs = checks.inputs.clone();
    pchecks.outputs = written.profiles.clone();
    pchecks.details = json!({
        "specialization_score": "share of a company's classified awards whose primary area is its dominant area",
        "key": "UEI when known (the award's, else its linked USAspending recipient's), else name:<normalised company name>",
    });
    super::finish_stage(&pchecks, &Checks::path_for(&pstem))?;
    if let Some(d) = &r.drift {
        write_alerts(env, d, &stem.with_extension("parquet"))?;
    }
    Ok(status)
}

/// Writes the two alert files and logs their alerts.
fn write_alerts(env: &Env, d: &drift::DriftReport, current: &Path) -> anyhow::Result<()> {
    let dir = env.settings().paths.reports_dir.join("alerts");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let header =
        json!({"run_id": env.ctx.run_id, "generated_at": now_rfc3339(), "current": current});
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
    for (name, value) in files {
        let path = dir.join(name);
        let mut bytes = serde_json::to_vec_pretty(&value)?;
        bytes.push(b'\n');
        sbir::io::atomic::write_file(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    for a in d.drift_alerts.iter().chain(&d.analytics_alerts) {
        tracing::warn!("classify-cet drift ({}): {}", a.severity, a.message);
    }
    Ok(())
}

/// `classify-cet drift`: compare two outputs and write the alert files; exit 3 on an
/// error-severity alert.
fn drift_cmd(args: &DriftArgs, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let taxonomy = Taxonomy::load(&s.cet.taxonomy)?;
    let current = args.current.clone().unwrap_or_else(|| {
        s.paths
            .processed_dir
            .join(format!("{}.parquet", s.cet.output_name))
    });
    let base = cet::read_distribution(&args.baseline, &taxonomy)?;
    let cur = cet::read_distribution(&current, &taxonomy)?;
    let d = drift::compare(&base, &cur, &taxonomy.ids(), &s.cet.drift);
    write_alerts(env, &d, &current)?;
    tracing::info!(
        "classify-cet drift: area PSI {:.4}, score PSI {:.4}, {} alert(s)",
        d.area_psi,
        d.score_psi,
        d.drift_alerts.len() + d.analytics_alerts.len()
    );
    Ok(if d.drift_alerts.iter().any(|a| a.severity == "error") {
        Status::Fail
    } else {
        Status::Pass
    })
}

/// Labelled documents, warning about labelled award ids the awards file lacks.
fn labelled(
    labels: &Path,
    taxonomy: &Taxonomy,
    awards: &Path,
    texts: Option<&Path>,
) -> anyhow::Result<Vec<LabelledDoc>> {
    let (docs, missing) = cet::labelled_docs(labels, taxonomy, awards, texts)?;
    if missing > 0 {
        tracing::warn!(
            "{missing} labelled award id(s) are not in {}; skipped",
            texts.unwrap_or(awards).display()
        );
    }
    Ok(docs)
}

/// `classify-cet train`.
fn train(args: &TrainArgs, common: &CommonArgs, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let (taxonomy, params) = load_parts(s)?;
    let awards = awards_path(s);
    let timer = StageTimer::start();
    let (docs, source) = match &args.labels {
        Some(labels) => (
            labelled(labels, &taxonomy, &awards, common.texts.as_deref())?,
            format!("labels:{}", labels.display()),
        ),
        None => {
            let choice = common.scorer.unwrap_or(ScorerChoice::Rules);
            anyhow::ensure!(
                matches!(
                    choice,
                    ScorerChoice::Rules | ScorerChoice::Embedding | ScorerChoice::Hybrid
                ),
                "train --bootstrap learns from --scorer rules, embedding or hybrid, not from a trained model"
            );
            let (mut scorer, _) = load_classifier(s, Some(choice), false)?;
            // The teacher never holds a trained model: the recipe does not depend on the
            // artifact it rebuilds (hybrid is rules + embedding here).
            scorer.model = None;
            let source = common.texts.as_deref().unwrap_or(&awards);
            let weak = env.with_progress("classify-cet train: labelling", "awards", |p| {
                cet::bootstrap_docs(&scorer, &awards, common.texts.as_deref(), p)
            })?;
            if let Some(out) = &args.save_labels {
                cet::write_labels(out, &weak, &taxonomy)?;
                tracing::info!(
                    "classify-cet train: weak labels written to {}",
                    out.display()
                );
            }
            (
                weak.into_iter().map(|w| w.doc).collect(),
                format!("bootstrap:{}:{}", scorer.scorer(), source.display()),
            )
        }
    };
    tracing::info!(
        "classify-cet train: {} labelled documents ({source})",
        docs.len()
    );
    let vectors = if args.corpus.is_empty() {
        None
    } else {
        Some(
            env.with_progress("classify-cet train: word vectors", "words", |p| {
                cet::corpus::word_vectors(&args.corpus, &s.embed, &params.model, p)
            })?,
        )
    };
    let dev = match &args.dev_labels {
        Some(labels) => Some(cet::training::Dev {
            docs: labelled(labels, &taxonomy, &awards, args.dev_texts.as_deref())?,
            folds: args.dev_folds,
        }),
        None => None,
    };
    let n_docs = docs.len();
    let trained = env.with_progress("classify-cet train", "docs", |_| {
        cet::training::train(docs, dev, &taxonomy, &params, vectors, &source)
    })?;
    let model = trained.model;
    let path = common
        .model
        .clone()
        .unwrap_or_else(|| s.cet.model_path.clone());
    model.save(&path)?;
    let dev = match (&args.dev_labels, trained.dev) {
        (Some(labels), Some(d)) => {
            print_evaluation(&d.evaluation);
            Some(json!({
                "labels": file_info(labels)?,
                "texts": args.dev_texts.as_deref().map(file_info).transpose()?,
                "cross_validated_folds": d.cross_validated_folds,
                "evaluation": d.evaluation,
            }))
        }
        _ => None,
    };
    let meta_path = path.with_extension("metadata.json");
    let source_path = match &args.labels {
        Some(l) => l.clone(),
        None => common.texts.clone().unwrap_or_else(|| awards.clone()),
    };
    let metadata = json!({
        "model_version": model.version,
        "created_at": model.body.created_at,
        "tool_version": model.body.tool_version,
        "recipe": std::env::args().collect::<Vec<_>>().join(" "),
        "settings_digest": env.ctx.config_digest,
        "inputs": {
            "training": file_info(&source_path)?,
            "corpus": args.corpus.iter().map(|c| file_info(c)).collect::<anyhow::Result<Vec<_>>>()?,
            "taxonomy": file_info(&s.cet.taxonomy).ok(),
            "classification": file_info(&s.cet.classification).ok(),
        },
        "trained_on": model.body.trained_on,
        "dev_set": dev,
    });
    sbir::io::atomic::write_file(&meta_path, &serde_json::to_vec_pretty(&metadata)?)?;
    let m = timer.finish(n_docs as u64);
    let t = &model.body.trained_on;
    tracing::info!(
        "classify-cet train: {} TF-IDF features, {} word vectors, {} classes, {} L-BFGS iterations (loss {:.4}), {:.1}s, peak RSS {:.0} MB",
        model.body.features.len(),
        model
            .body
            .word_vectors
            .as_ref()
            .map_or(0, |v| v.words.len()),
        model.body.classes.len(),
        t.iterations,
        t.final_loss,
        m.duration_s,
        m.peak_rss_mb.unwrap_or_default()
    );
    println!("{}", path.display());
    println!("{}", meta_path.display());
    println!("{}", model.version);
    Ok(Status::Pass)
}

/// A file's path, size and SHA-256, for the model metadata.
fn file_info(path: &Path) -> anyhow::Result<serde_json::Value> {
    let i = input_info(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(json!({"path": i.path, "bytes": i.bytes, "sha256": i.sha256}))
}

/// `classify-cet evaluate`: every available scorer against the labels.
fn evaluate_cmd(args: &EvaluateArgs, common: &CommonArgs, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let (taxonomy, params) = load_parts(s)?;
    let docs = labelled(
        &args.labels,
        &taxonomy,
        &awards_path(s),
        common.texts.as_deref(),
    )?;
    anyhow::ensure!(!docs.is_empty(), "no labelled awards to evaluate");
    let all = matches!(common.scorer, Some(ScorerChoice::Auto) | None);
    let choices: Vec<ScorerChoice> = match common.scorer {
        Some(ScorerChoice::Auto) | None => [ScorerChoice::Rules, ScorerChoice::Model]
            .into_iter()
            .chain(
                [ScorerChoice::Embedding, ScorerChoice::Hybrid]
                    .into_iter()
                    .filter(|_| args.with_embedding),
            )
            .collect(),
        Some(c) => vec![c],
    };
    let sources = cet::ScorerSources {
        model_path: &s.cet.model_path,
        embed: &s.embed,
        award_vectors: true,
    };
    let mut results: Vec<Evaluation> = Vec::new();
    // Award vectors depend only on the encoder: computed once for every scorer using them.
    let mut vectors: Option<Vec<f32>> = None;
    for choice in choices {
        let (classifier, fallback) =
            match cet::load_classifier(taxonomy.clone(), params.clone(), choice, &sources) {
                // Evaluating every scorer: one whose encoder is missing is skipped, not fatal.
                Err(cet::CetError::Embed(e)) if all => {
                    tracing::warn!("evaluate: no {choice:?} scorer: {e}");
                    continue;
                }
                r => r?,
            };
        if classifier.embedding.is_some() && vectors.is_none() {
            vectors = cet::embed_docs(&classifier, &docs)?;
        }
        let v = vectors
            .as_deref()
            .filter(|_| classifier.embedding.is_some());
        let mut e = cet::evaluate_docs(&classifier, &docs, v);
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
    for e in &results {
        print_evaluation(e);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| s.paths.reports_dir.join("cet_evaluation.json"));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let report = json!({"labels": args.labels, "generated_at": now_rfc3339(), "taxonomy_version": taxonomy.version, "scorers": results});
    sbir::io::atomic::write_file(&out, &serde_json::to_vec_pretty(&report)?)?;
    println!("{}", out.display());
    Ok(Status::Pass)
}

fn print_evaluation(e: &Evaluation) {
    println!(
        "scorer {}: {} awards, top-1 accuracy {:.3}, top-3 recall {:.3}, micro F1 {:.3}, macro P/R/F1 {:.3}/{:.3}/{:.3}, unclassified {}, supporting P/R {:.3}/{:.3}",
        e.scorer,
        e.awards,
        e.top1_accuracy,
        e.top3_recall,
        e.micro.f1,
        e.macro_avg.precision,
        e.macro_avg.recall,
        e.macro_avg.f1,
        e.unclassified,
        e.supporting.precision,
        e.supporting.recall
    );
    println!(
        "  {:<56} {:>7} {:>9} {:>6} {:>6}",
        "area", "support", "precision", "recall", "f1"
    );
    for a in e
        .per_area
        .iter()
        .filter(|a| a.support > 0 || a.predicted > 0)
    {
        println!(
            "  {:<56} {:>7} {:>9.3} {:>6.3} {:>6.3}",
            a.cet_id, a.support, a.precision, a.recall, a.f1
        );
    }
    for (t, p, n) in e.confusions.iter().take(5) {
        println!("  confused: {t} → {p} ({n})");
    }
}
