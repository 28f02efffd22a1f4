//! Command-line interface: the global flags and one subcommand per stage. Each subcommand's
//! own flags live beside its code in `cmd/<name>.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sbir::config::FlagOverride;
use sbir::io::checks::Status;

use crate::cmd::{self, Env};

/// Turn the SBIR/STTR award record into analysis-ready data.
#[derive(Debug, Parser)]
#[command(
    name = "sbir",
    version,
    after_help = "Examples:\n  sbir run                                  # the main job on the configured input\n  sbir ingest --input award_data.csv.gz     # validate and normalise the SBIR.gov bulk file\n  sbir config show --env prod               # effective settings and where they came from"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Settings environment: layers config/envs/<ENV>.yaml over the defaults.
    #[arg(long, global = true, env = "SBIR_ENV")]
    pub env: Option<String>,
    /// Folder holding base.yaml and envs/ (skipped when absent; defaults are built in).
    #[arg(long, global = true, default_value = "config")]
    pub config_dir: PathBuf,
    /// Print only errors on stderr: no progress, no summaries (the paths written still go to
    /// stdout).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log line format on stderr [default: logging.format].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// More detail in logs (-v debug, -vv trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the main job: ingest, enrich, classify-cet, load-neo4j (an import bundle without a server).
    Run(cmd::run::Args),
    /// Validate and normalise the SBIR.gov awards bulk CSV into Parquet/NDJSON.
    Ingest(cmd::ingest::Args),
    /// Link each award to its USAspending recipient (UEI, DUNS, name exact, fuzzy name).
    Enrich(cmd::enrich::Args),
    /// Score awards against the 21 CET areas, with evidence; company profiles; drift.
    ClassifyCet(cmd::classify_cet::Args),
    /// Load the CET graph into Neo4j, or write a neo4j-admin import bundle.
    LoadNeo4j(cmd::load_neo4j::Args),
    /// Dense and sparse vectors of text collections, with FAISS/NumPy exports and a manifest.
    Embed(cmd::embed::Args),
    /// Bundle the encoder and the CET area embeddings for offline, instant start-up.
    PrepareAssets(cmd::prepare_assets::Args),
    /// Time and measure stages, compare with a baseline, flag regressions; HTML history report.
    Benchmark(cmd::benchmark::Args),
    /// Write a realistic synthetic awards file, recipients file and ground-truth links.
    SampleData(cmd::sample_data::Args),
    /// Inspect settings.
    Config(cmd::config::Args),
}

impl Command {
    /// The settings the subcommand's flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        match self {
            Self::Run(a) => a.overrides(),
            Self::Ingest(a) => a.overrides(),
            Self::Enrich(a) => a.overrides(),
            Self::ClassifyCet(a) => a.overrides(),
            Self::LoadNeo4j(a) => a.overrides(),
            Self::Embed(a) => a.overrides(),
            Self::PrepareAssets(a) => a.overrides(),
            Self::Benchmark(a) => a.overrides(),
            Self::SampleData(a) => a.overrides(),
            Self::Config(_) => Vec::new(),
        }
    }

    /// Runs the subcommand; subcommands without quality gates pass when they succeed.
    pub fn run(&self, env: &Env) -> anyhow::Result<Status> {
        Ok(match self {
            Self::Run(a) => cmd::run::run(a, env)?,
            Self::Ingest(a) => cmd::ingest::run(a, env)?,
            Self::Enrich(a) => cmd::enrich::run(a, env)?,
            Self::ClassifyCet(a) => cmd::classify_cet::run(a, env)?,
            Self::LoadNeo4j(a) => cmd::load_neo4j::run(a, env)?,
            Self::Embed(a) => cmd::embed::run(a, env)?,
            Self::PrepareAssets(a) => cmd::prepare_assets::run(a, env)?,
            Self::Benchmark(a) => cmd::benchmark::run(a, env)?,
            Self::SampleData(a) => {
                cmd::sample_data::run(a, env)?;
                Status::Pass
            }
            Self::Config(a) => {
                cmd::config::run(a, env)?;
                Status::Pass
            }
        })
    }
}
