//! `sbir load-neo4j`: the CET graph from the classify-cet (and enrich) outputs, loaded over
//! Bolt when a server is configured (`NEO4J_URI` or neo4j.uri), else written as a neo4j-admin
//! import bundle (`--export`), or as the exact statements and batches (`--dry-run`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use sbir::config::{FlagOverride, Settings};
use sbir::graph::bolt::Access;
use sbir::io::checks::Status;
use sbir::stages::graph;

use super::Env;

/// Flags of `sbir load-neo4j`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir load-neo4j --export data/loaded/neo4j-import   # neo4j-admin CSVs + README.txt + load.cypher\n  sbir load-neo4j --dry-run                           # statements and parameter batches as NDJSON\n  sbir load-neo4j --dry-run --only cetarea-nodes,award-enrichment\n  sbir load-neo4j --query deploy/spot_checks.cypher   # read-only: writes are refused and rolled back\n  sbir load-neo4j --execute cleanup.cypher            # writes, committed"
)]
pub struct Args {
    /// Write the import bundle here (without a server, the bundle goes to neo4j.export_dir).
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Write the statements and parameter batches to <loaded_dir>/dry-run.ndjson instead of
    /// loading.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only these steps (comma-separated): cetarea-nodes, award-enrichment,
    /// company-enrichment, award-relationships, company-relationships.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Send only the batches a previous run did not land (same inputs and settings).
    #[arg(long)]
    pub resume: bool,
    /// Stop at the first batch that fails for good [default: neo4j.fail_fast].
    #[arg(long)]
    pub fail_fast: bool,
    /// Run the read-only queries of this file (`;`-separated, e.g. deploy/spot_checks.cypher)
    /// and print their rows as JSON, instead of loading. A statement that writes is refused, and
    /// the file runs in a transaction that is rolled back.
    #[arg(long, value_name = "FILE.cypher", conflicts_with = "execute")]
    pub query: Option<PathBuf>,
    /// Run the statements of this file, writes included, in one committed transaction and print
    /// their rows as JSON, instead of loading (e.g. to delete an old graph).
    #[arg(long, value_name = "FILE.cypher")]
    pub execute: Option<PathBuf>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o: Vec<FlagOverride> =
            FlagOverride::path("neo4j.export_dir", self.export.as_deref(), "--export")
                .into_iter()
                .collect();
        if self.fail_fast {
            o.push(FlagOverride::new("neo4j.fail_fast", true, "--fail-fast"));
        }
        o
    }
}

/// Runs the command.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let steps = graph::steps(&args.only)?;
    if let Some(file) = &args.query {
        return run_queries(env, file, Access::ReadOnly);
    }
    if let Some(file) = &args.execute {
        return run_queries(env, file, Access::Write);
    }
    if args.dry_run {
        let (path, lines) = graph::dry_run(s, &steps)?;
        tracing::info!("load-neo4j --dry-run: {lines} statements/batches written");
        outln!("{}", path.display())?;
        return Ok(Status::Pass);
    }
    Ok(match &s.neo4j.uri {
        Some(_) if args.export.is_none() => {
            let conn = connection(s)?;
            super::finish(&env.with_progress("load-neo4j", "rows", |progress| {
                graph::load(s, &env.ctx, &conn, steps, args.resume, progress)
            })?)?
        }
        _ => super::finish(
            &env.with_progress("load-neo4j export", "files", |_| graph::export(s, &env.ctx))?,
        )?,
    })
}

/// Prints the rows of each statement in `file`.
fn run_queries(env: &Env, file: &Path, access: Access) -> anyhow::Result<Status> {
    let s = env.settings();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let statements = sbir::graph::readonly::split_statements(&text);
    let conn = connection(s)?;
    let results = sbir::graph::bolt::run_statements(&conn, &s.neo4j, &statements, access)
        .with_context(|| format!("{}", file.display()))?;
    for (stmt, rows) in results {
        outln!("// {stmt}")?;
        for r in rows {
            outln!("{r}")?;
        }
    }
    Ok(Status::Pass)
}

/// The server connection, with the password from `NEO4J_PASSWORD` when set.
fn connection(s: &Settings) -> anyhow::Result<sbir::graph::bolt::Connection> {
    Ok(graph::connection(s, std::env::var("NEO4J_PASSWORD").ok())?)
}
