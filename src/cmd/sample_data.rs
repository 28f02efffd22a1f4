//! `sbir sample-data`: write a deterministic synthetic awards file, recipients file,
//! ground-truth links and CET labels.

use std::path::PathBuf;

use sbir::config::FlagOverride;
use sbir::sample::{self, SampleOptions};

use super::Env;

/// Flags of `sbir sample-data`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir sample-data --awards 500 --recipients 5000 --seed 42 --out data/sample\n  sbir sample-data --awards 250000 --recipients 3500000 --out /tmp/full   # full benchmark scale"
)]
pub struct Args {
    /// Award rows to generate [default: sample_data.awards].
    #[arg(long, value_name = "N")]
    pub awards: Option<u64>,
    /// Recipient entities to generate [default: sample_data.recipients].
    #[arg(long, value_name = "M")]
    pub recipients: Option<u64>,
    /// Seed; the same seed gives byte-identical files [default: sample_data.seed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder [default: sample_data.out_dir].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        if let Some(n) = self.awards {
            o.push(FlagOverride::new("sample_data.awards", n, "--awards"));
        }
        if let Some(n) = self.recipients {
            o.push(FlagOverride::new(
                "sample_data.recipients",
                n,
                "--recipients",
            ));
        }
        if let Some(n) = self.seed {
            o.push(FlagOverride::new("sample_data.seed", n, "--seed"));
        }
        o.extend(FlagOverride::path(
            "sample_data.out_dir",
            self.out.as_deref(),
            "--out",
        ));
        o
    }
}

/// Generates the files and prints their paths.
pub fn run(_args: &Args, env: &Env) -> anyhow::Result<()> {
    let s = &env.settings().sample_data;
    let opts = SampleOptions {
        awards: s.awards,
        recipients: s.recipients,
        seed: s.seed,
        out_dir: s.out_dir.clone(),
    };
    let timer = sbir::metrics::StageTimer::start();
    let report = env.with_progress("sample-data", "rows", |progress| {
        sample::generate(&opts, progress)
    })?;
    let m = timer.finish(report.award_rows + report.recipients);
    tracing::info!(
        "sample-data: {} award rows ({} companies), {} recipients in {:.2}s, peak RSS {:.0} MB; edge cases: {:?}",
        report.award_rows,
        report.companies,
        report.recipients,
        m.duration_s,
        m.peak_rss_mb.unwrap_or_default(),
        report.edge_cases
    );
    for p in &report.files {
        outln!("{}", p.display())?;
    }
    Ok(())
}
