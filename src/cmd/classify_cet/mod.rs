//! `sbir classify-cet`: awards → `cet_award_classifications` + `cet_company_profiles` (+ the
//! taxonomy table and drift alerts), and the `train`, `evaluate` and `drift` actions.

mod evaluate;
mod train;

use std::path::PathBuf;

use anyhow::Context;
use sbir::cet::params::ScorerChoice;
use sbir::config::FlagOverride;
use sbir::io::checks::Status;
use sbir::stages::{self, classify};

use super::{Env, OutputArgs};
pub use evaluate::EvaluateArgs;
pub use train::TrainArgs;

/// Flags of `sbir classify-cet`.
#[derive(Debug, Default, clap::Args)]
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

/// Runs the chosen action.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let extra = classify::Extra {
        scorer: args.common.scorer,
        require_model: args.require_model,
    };
    match &args.action {
        Some(Action::Train(t)) => train::run(t, &args.common, env),
        Some(Action::Evaluate(e)) => evaluate::run(e, &args.common, env),
        Some(Action::Drift(d)) => drift(d, env),
        None if args.check_taxonomy => Ok(super::finish(&classify::check_taxonomy(s, &env.ctx)?)?),
        None if args.text.is_some() || args.stdin => {
            let text = match &args.text {
                Some(t) => t.clone(),
                None => {
                    std::io::read_to_string(std::io::stdin()).context("reading standard input")?
                }
            };
            let c = classify::classify_text(s, &text, extra)?;
            outln!("{}", serde_json::to_string_pretty(&c)?)?;
            Ok(Status::Pass)
        }
        None => {
            let done = env
                .with_progress("classify-cet", "awards", |progress| {
                    classify::run(s, &env.ctx, extra, progress)
                })
                .with_context(|| {
                    let awards = stages::Layout::new(s).awards();
                    format!("classify-cet of {} failed", awards.display())
                })?;
            let status = super::finish(&done)?;
            for p in &done.report.alerts {
                outln!("{}", p.display())?;
            }
            Ok(status)
        }
    }
}

/// `classify-cet drift`: compare two outputs and write the alert files; exit 3 on an
/// error-severity alert.
fn drift(args: &DriftArgs, env: &Env) -> anyhow::Result<Status> {
    let (d, paths) = classify::drift(
        env.settings(),
        &env.ctx,
        &args.baseline,
        args.current.as_deref(),
    )?;
    for p in paths {
        outln!("{}", p.display())?;
    }
    Ok(if d.drift_alerts.iter().any(|a| a.severity == "error") {
        Status::Fail
    } else {
        Status::Pass
    })
}
