//! `sbir ingest`: the SBIR.gov awards bulk CSV → `sbir_awards.parquet` (and/or NDJSON),
//! `sbir_awards.rejects.ndjson` and `sbir_awards.checks.json`.

use std::path::PathBuf;

use anyhow::Context;
use sbir::config::FlagOverride;
use sbir::io::checks::Status;
use sbir::stages;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir ingest`.
#[derive(Debug, Default, clap::Args)]
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

/// Runs the stage and reports its outputs and checks file.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let extra = stages::ingest::Extra {
        limit: args.limit,
        sample: args.sample.map(|n| (n, args.seed)),
    };
    let done = env
        .with_progress("ingest", "bytes", |progress| {
            stages::ingest::run(s, &env.ctx, extra, progress)
        })
        .with_context(|| format!("ingest of {} failed", s.ingest.input.display()))?;
    Ok(super::finish(&done)?)
}
