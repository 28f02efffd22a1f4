//! `sbir ingest`: the SBIR.gov awards bulk CSV → `sbir_awards.parquet` (and/or NDJSON),
//! `sbir_awards.rejects.ndjson` and `sbir_awards.checks.json`.

use std::path::PathBuf;

use anyhow::Context;
use sbir::config::FlagOverride;
use sbir::ingest::{self, IngestOptions};
use sbir::io::checks::{Checks, Status, now_rfc3339};
use sbir::metrics::StageTimer;
use serde_json::json;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir ingest`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir ingest --input award_data.csv.gz\n  sbir ingest --input award_data.csv --format both --out-dir out/\n  sbir ingest --sample 1000 --seed 7      # a quick, reproducible subset"
)]
pub struct Args {
    /// The awards: the bulk CSV, or SBIR.gov API JSON (an array or NDJSON), plain or gzip,
    /// told apart by content [default: ingest.input].
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Read only the first N data rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Keep a uniform random sample of N rows (reproducible with --seed).
    #[arg(long, value_name = "N")]
    pub sample: Option<u64>,
    /// Seed for --sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = self.output.overrides();
        o.extend(FlagOverride::path(
            "ingest.input",
            self.input.as_deref(),
            "--input",
        ));
        o
    }
}

/// Runs the stage and writes its outputs and checks file.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let opts = IngestOptions {
        limit: args.limit,
        sample: args.sample.map(|n| (n, args.seed)),
        ..IngestOptions::from_settings(&s.ingest, chrono::Datelike::year(&chrono::Utc::now()))
    };
    let stem = s.paths.processed_dir.join(&s.ingest.output_name);
    tracing::info!("ingest: reading {}", opts.input.display());
    let written = env.with_progress("ingest", "bytes", |progress| {
        ingest::ingest_to_files(&opts, &stem, &s.output, progress)
            .with_context(|| format!("ingest of {} failed", opts.input.display()))
    })?;
    let report = written.report;

    let mut checks = Checks::new(
        "ingest",
        &env.ctx,
        started_at,
        report.gates(&s.ingest.gates),
    );
    if checks.status == Status::Fail && report.rejected > 0 {
        tracing::error!(
            "ingest: {} of {} rows rejected; top reasons: {}",
            report.rejected,
            report.input_rows,
            report.top_reject_reasons(5).join("; ")
        );
    }
    checks.counts = report.counts();
    checks.metrics = timer.finish(report.input_rows);
    checks.inputs = vec![report.input.clone()];
    checks.outputs = written.paths;
    checks.details = json!({
        "reconciled": report.reconciles(),
        "completeness": written.completeness,
        "warnings_by_code": report.warnings_by_code,
        "rejects_by_code": report.rejects_by_code,
        "rejects_by_field": report.rejects_by_field,
        "reject_examples": report.reject_examples,
        "warning_examples": report.warning_examples,
        "input_format": report.input_format,
        "missing_optional_columns": report.missing_optional_columns,
        "extra_columns": report.extra_columns,
        "duplicate_examples": report.duplicate_examples,
        "limit": args.limit,
        "sample": args.sample.map(|n| json!({"rows": n, "seed": args.seed})),
    });
    super::finish_stage(&checks, &Checks::path_for(&stem))
}
