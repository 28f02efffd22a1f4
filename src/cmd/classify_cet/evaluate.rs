//! `sbir classify-cet evaluate`: every scorer against labelled awards, printed as a table per
//! scorer and written as a JSON report.

use std::path::PathBuf;

use sbir::cet::eval::Evaluation;
use sbir::io::checks::Status;
use sbir::stages::{Layout, classify::evaluate};

use super::CommonArgs;
use crate::cmd::Env;

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

/// Evaluates, prints each scorer's figures and writes the report.
pub fn run(args: &EvaluateArgs, common: &CommonArgs, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let evaluated = evaluate::evaluate(
        s,
        &args.labels,
        common.texts.as_deref(),
        common.scorer,
        args.with_embedding,
    )?;
    for e in &evaluated.scorers {
        print_evaluation(e)?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Layout::new(s).evaluation());
    evaluate::write_report(&out, &args.labels, &evaluated)?;
    outln!("{}", out.display())?;
    Ok(Status::Pass)
}

/// One scorer's figures: the summary line, then precision, recall and F1 per area.
pub fn print_evaluation(e: &Evaluation) -> std::io::Result<()> {
    outln!(
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
    )?;
    outln!(
        "  {:<56} {:>7} {:>9} {:>6} {:>6}",
        "area",
        "support",
        "precision",
        "recall",
        "f1"
    )?;
    for a in e
        .per_area
        .iter()
        .filter(|a| a.support > 0 || a.predicted > 0)
    {
        outln!(
            "  {:<56} {:>7} {:>9.3} {:>6.3} {:>6.3}",
            a.cet_id,
            a.support,
            a.precision,
            a.recall,
            a.f1
        )?;
    }
    for (t, p, n) in e.confusions.iter().take(5) {
        outln!("  confused: {t} → {p} ({n})")?;
    }
    Ok(())
}
