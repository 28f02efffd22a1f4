//! `sbir enrich`: `sbir_awards.parquet` + USAspending recipients → `enriched_sbir_awards.parquet`
//! (every award, with match method, score and recipient fields) and its checks file.

use std::path::PathBuf;

use anyhow::Context;
use sbir::config::FlagOverride;
use sbir::io::checks::Status;
use sbir::stages;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir enrich`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir enrich --recipients recipient_lookup.csv.gz\n  sbir enrich --truth data/sample/award_recipient_truth.csv     # adds precision/recall to the checks file\n  sbir enrich --explain sbir-3f2a9c0d1e4b5a6f                    # why one award matched as it did\n  sbir enrich --checkpoint-dir data/checkpoints/enrich           # resumable after a kill"
)]
pub struct Args {
    /// Awards Parquet [default: enrich.awards, else the ingest output].
    #[arg(long)]
    pub awards: Option<PathBuf>,
    /// USAspending recipients: CSV, CSV.gz or Parquet [default: enrich.recipients].
    #[arg(long)]
    pub recipients: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Ground truth (award_id,recipient_uei) to measure precision, recall and F1.
    #[arg(long, value_name = "LINKS.csv")]
    pub truth: Option<PathBuf>,
    /// Add the top-k candidates of each award as a list column.
    #[arg(long)]
    pub candidates: bool,
    /// Link name-fuzzy-candidate matches too [default: enrich.accept_candidates].
    #[arg(long)]
    pub accept_candidates: bool,
    /// Save finished chunks here; a rerun after a crash or kill resumes from them and writes
    /// output identical to an uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Print why this award matched as it did (JSON) instead of enriching.
    #[arg(long, value_name = "AWARD_ID")]
    pub explain: Option<String>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = self.output.overrides();
        o.extend(FlagOverride::path(
            "enrich.awards",
            self.awards.as_deref(),
            "--awards",
        ));
        o.extend(FlagOverride::path(
            "enrich.recipients",
            self.recipients.as_deref(),
            "--recipients",
        ));
        if self.accept_candidates {
            o.push(FlagOverride::new(
                "enrich.accept_candidates",
                true,
                "--accept-candidates",
            ));
        }
        o
    }
}

/// Runs the stage (or `--explain`) and reports its outputs and checks file.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    if let Some(id) = &args.explain {
        let scratch = std::env::temp_dir().join(format!(
            "sbir-explain-{}.rejects.ndjson",
            std::process::id()
        ));
        let why = stages::enrich::explain(s, id, &scratch)?;
        outln!("{}", serde_json::to_string_pretty(&why)?)?;
        return Ok(Status::Pass);
    }
    let extra = stages::enrich::Extra {
        candidates: args.candidates,
        truth: args.truth.clone(),
        checkpoint_dir: args.checkpoint_dir.clone(),
    };
    let done = env
        .with_progress("enrich", "awards", |progress| {
            stages::enrich::run(s, &env.ctx, &extra, progress)
        })
        .with_context(|| {
            let awards = stages::Layout::new(s).enrich_input();
            format!("enrich of {} failed", awards.display())
        })?;
    Ok(super::finish(&done)?)
}
