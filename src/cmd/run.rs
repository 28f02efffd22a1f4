//! `sbir run`: the main job. Runs the pipeline stage by stage (ingest → enrich → classify-cet
//! → load-neo4j) and stops before a stage whose upstream quality gate failed.

use sbir::config::FlagOverride;
use sbir::io::checks::Status;

use super::Env;
use crate::cli::OutputArgs;

/// Flags of `sbir run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir run                       # the configured input (the bundled sample by default)\n  sbir run --env prod\n  SBIR_ETL__INGEST__INPUT=award_data.csv.gz sbir run"
)]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        self.output.overrides()
    }
}

/// Runs every stage in order; the first failed gate stops the chain. The flags already took
/// effect as settings overrides.
pub fn run(_args: &Args, env: &Env) -> anyhow::Result<Status> {
    let ingest_args = super::ingest::Args {
        input: None,
        output: OutputArgs::default(),
        limit: None,
        sample: None,
        seed: 42,
    };
    let status = super::ingest::run(&ingest_args, env)?;
    if status == Status::Fail {
        tracing::error!("run: stopping after ingest: its quality gate failed");
        return Ok(status);
    }
    let enrich_args = super::enrich::Args {
        awards: None,
        recipients: None,
        output: OutputArgs::default(),
        truth: None,
        candidates: false,
        accept_candidates: false,
        checkpoint_dir: None,
        explain: None,
    };
    let status = super::enrich::run(&enrich_args, env)?;
    if status == Status::Fail {
        tracing::error!("run: stopping after enrich: its quality gate failed");
        return Ok(status);
    }
    let classify_args = super::classify_cet::Args {
        action: None,
        common: Default::default(),
        output: OutputArgs::default(),
        require_model: false,
        check_taxonomy: false,
        text: None,
        stdin: false,
    };
    let status = super::classify_cet::run(&classify_args, env)?;
    if status == Status::Fail {
        tracing::error!("run: stopping after classify-cet: its quality gate failed");
        return Ok(status);
    }
    super::load_neo4j::run(&super::load_neo4j::Args::default(), env)
}
