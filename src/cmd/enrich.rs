//! `sbir enrich`: `sbir_awards.parquet` + USAspending recipients → `enriched_sbir_awards.parquet`
//! (every award, with match method, score and recipient fields) and its checks file.

use std::path::PathBuf;

use anyhow::Context;
use sbir::config::FlagOverride;
use sbir::enrich::{self, EnrichOptions};
use sbir::io::checks::{Checks, Status, now_rfc3339};
use sbir::metrics::StageTimer;
use serde_json::json;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir enrich`.
#[derive(Debug, clap::Args)]
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

/// Runs the stage (or `--explain`) and writes its outputs and checks file.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let awards = s.enrich.awards.clone().unwrap_or_else(|| {
        s.paths
            .processed_dir
            .join(format!("{}.parquet", s.ingest.output_name))
    });
    let opts = EnrichOptions {
        awards,
        recipients: s.enrich.recipients.clone(),
        settings: s.enrich.clone(),
        candidates: args.candidates,
        truth: args.truth.clone(),
        checkpoint_dir: args.checkpoint_dir.clone(),
    };
    if let Some(id) = &args.explain {
        return explain(&opts, id);
    }
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let stem = s.paths.processed_dir.join(&s.enrich.output_name);
    let checks_path = Checks::path_for(&stem);
    let previous_rate = Checks::read(&checks_path)
        .ok()
        .and_then(|c| c.details.get("match_rate").and_then(|v| v.as_f64()));
    tracing::info!(
        "enrich: {} against {}",
        opts.awards.display(),
        opts.recipients.display()
    );
    let written = env.with_progress("enrich", "awards", |progress| {
        enrich::enrich_to_files(&opts, &stem, &s.output, progress)
            .with_context(|| format!("enrich of {} failed", opts.awards.display()))
    })?;
    let report = written.report;
    let mut checks = Checks::new(
        "enrich",
        &env.ctx,
        started_at,
        report.gates(&s.enrich, previous_rate),
    );
    checks.counts = report.counts();
    checks.metrics = timer.finish(report.awards);
    checks.inputs = report.inputs.clone();
    checks.outputs = written.paths;
    checks.details = json!({
        "match_rate": report.match_rate,
        "previous_match_rate": previous_rate,
        "by_method": report.by_method,
        "unlinked_by_method": report.unlinked_by_method,
        "breakdown": report.breakdown,
        "null_rates": report.null_rates,
        "recipients": report.recipients,
        "mean_blocked_candidates": report.mean_blocked,
        "resumed_chunks": report.resumed_chunks,
        "truth": report.truth,
        "thresholds": {"high": s.enrich.high_threshold, "low": s.enrich.low_threshold, "accept_candidates": s.enrich.accept_candidates},
    });
    super::finish_stage(&checks, &checks_path)
}

fn explain(opts: &EnrichOptions, id: &str) -> anyhow::Result<Status> {
    let normalizer = enrich::names::Normalizer::new(&opts.settings.name_rules);
    let award = sbir::records::read_awards(&opts.awards)?
        .into_iter()
        .find(|a| a.award_id == id)
        .with_context(|| format!("no award {id} in {}", opts.awards.display()))?;
    let rejects = std::env::temp_dir().join(format!(
        "sbir-explain-{}.rejects.ndjson",
        std::process::id()
    ));
    let (index, ..) = enrich::build_index(&opts.recipients, &opts.settings, &normalizer, &rejects)?;
    let _ = std::fs::remove_file(&rejects);
    let matcher = enrich::Matcher {
        index: &index,
        normalizer: &normalizer,
        settings: &opts.settings,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&enrich::explain(&matcher, &award))?
    );
    Ok(Status::Pass)
}
