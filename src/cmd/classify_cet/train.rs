//! `sbir classify-cet train`: labelled documents (from labels or a teacher scorer), word
//! vectors from a corpus, then the fitted model and its metadata; each step with progress.

use std::path::PathBuf;

use sbir::cet::params::ScorerChoice;
use sbir::io::checks::Status;
use sbir::metrics::StageTimer;
use sbir::stages::classify::{self, train};

use super::{CommonArgs, evaluate::print_evaluation};
use crate::cmd::Env;

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

/// Trains and saves the model; prints its path, its metadata's path and its version.
pub fn run(args: &TrainArgs, common: &CommonArgs, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let timer = StageTimer::start();
    let awards = sbir::stages::Layout::new(s).awards();
    let (docs, source, training_file) = match &args.labels {
        Some(labels) => {
            let (taxonomy, _) = classify::load_parts(s)?;
            let docs = train::labelled(labels, &taxonomy, &awards, common.texts.as_deref())?;
            (docs, format!("labels:{}", labels.display()), labels.clone())
        }
        None => {
            let teacher = common.scorer.unwrap_or(ScorerChoice::Rules);
            let (docs, source) =
                env.with_progress("classify-cet train: labelling", "awards", |p| {
                    train::bootstrap(
                        s,
                        teacher,
                        common.texts.as_deref(),
                        args.save_labels.as_deref(),
                        p,
                    )
                })?;
            (docs, source, common.texts.clone().unwrap_or(awards))
        }
    };
    tracing::info!(
        "classify-cet train: {} labelled documents ({source})",
        docs.len()
    );
    let vectors = match args.corpus.is_empty() {
        true => None,
        false => Some(
            env.with_progress("classify-cet train: word vectors", "words", |p| {
                train::word_vectors(s, &args.corpus, p)
            })?,
        ),
    };
    let n_docs = docs.len() as u64;
    let recipe = train::Recipe {
        docs,
        source,
        training_file,
        vectors,
        corpus: &args.corpus,
        dev: args.dev_labels.as_deref().map(|labels| train::DevSet {
            labels,
            texts: args.dev_texts.as_deref(),
            folds: args.dev_folds,
        }),
        model_path: common
            .model
            .clone()
            .unwrap_or_else(|| s.cet.model_path.clone()),
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let saved = env.with_progress("classify-cet train", "docs", |_| {
        train::fit(s, &env.ctx, recipe)
    })?;
    if let Some(d) = &saved.dev {
        print_evaluation(&d.evaluation)?;
    }
    let m = timer.finish(n_docs);
    let body = &saved.model.body;
    tracing::info!(
        "classify-cet train: {} TF-IDF features, {} word vectors, {} classes, {} L-BFGS iterations (loss {:.4}), {:.1}s, peak RSS {:.0} MB",
        body.features.len(),
        body.word_vectors.as_ref().map_or(0, |v| v.words.len()),
        body.classes.len(),
        body.trained_on.iterations,
        body.trained_on.final_loss,
        m.duration_s,
        m.peak_rss_mb.unwrap_or_default()
    );
    outln!("{}", saved.path.display())?;
    outln!("{}", saved.metadata_path.display())?;
    outln!("{}", saved.model.version)?;
    Ok(Status::Pass)
}
