//! `sbir load-neo4j`: the CET graph from the classify-cet (and enrich) outputs, written as a
//! neo4j-admin import bundle (`--export`, and the default without a server) or as the exact
//! statements and parameter batches (`--dry-run`).

use std::path::PathBuf;

use anyhow::Context;
use sbir::cet::params::ClassifierParams;
use sbir::cet::taxonomy::Taxonomy;
use sbir::config::{FlagOverride, Settings};
use sbir::enrich::names::Normalizer;
use sbir::graph::cypher::Cypher;
use sbir::graph::{self, GraphData, Sources, Step};
use sbir::io::checks::{Checks, Gate, Severity, Status, now_rfc3339};
use sbir::metrics::StageTimer;
use serde_json::json;

use super::Env;

/// Flags of `sbir load-neo4j`.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir load-neo4j --export data/loaded/neo4j-import   # neo4j-admin CSVs + README.txt + load.cypher\n  sbir load-neo4j --dry-run                           # statements and parameter batches as NDJSON\n  sbir load-neo4j --dry-run --only cetarea-nodes,award-enrichment"
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
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        self.export
            .iter()
            .map(|dir| FlagOverride::new("neo4j.export_dir", dir.display().to_string(), "--export"))
            .collect()
    }
}

/// Reads the stage outputs into graph rows.
pub fn graph_data(s: &Settings) -> anyhow::Result<GraphData> {
    let processed = &s.paths.processed_dir;
    let src = Sources {
        taxonomy: s.cet.taxonomy.clone(),
        awards: super::classify_cet::awards_path(s),
        classifications: processed.join(format!("{}.parquet", s.cet.output_name)),
        profiles: processed.join(format!("{}.parquet", s.cet.profiles_name)),
    };
    let taxonomy = Taxonomy::load(&src.taxonomy)?;
    let params = ClassifierParams::load(&s.cet.classification)?;
    let normalizer = Normalizer::new(&s.enrich.name_rules);
    GraphData::build(&src, &taxonomy, &params.bands, &normalizer).with_context(|| {
        format!(
            "cannot read the graph's inputs (run classify-cet first): {}",
            src.classifications.display()
        )
    })
}

fn steps(only: &[String]) -> anyhow::Result<Vec<Step>> {
    if only.is_empty() {
        return Ok(Step::ALL.to_vec());
    }
    let mut v = only
        .iter()
        .map(|s| Step::parse(s.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort();
    v.dedup();
    Ok(v)
}

/// Runs the command.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<Status> {
    let s = env.settings();
    let cypher = Cypher::new(&s.neo4j)?;
    let steps = steps(&args.only)?;
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let data = graph_data(s)?;
    if args.dry_run {
        let path = s.neo4j.loaded_dir.join("dry-run.ndjson");
        std::fs::create_dir_all(&s.neo4j.loaded_dir)?;
        let schema: Vec<String> = cypher
            .constraints()
            .into_iter()
            .filter(|_| s.neo4j.create_constraints)
            .chain(
                cypher
                    .indexes()
                    .into_iter()
                    .filter(|_| s.neo4j.create_indexes),
            )
            .collect();
        let statements: Vec<_> = steps
            .iter()
            .map(|&st| (st, data.statements(st, &cypher)))
            .collect();
        let lines = graph::write_dry_run(&path, &schema, &statements, s.neo4j.batch_size)?;
        tracing::info!("load-neo4j --dry-run: {lines} statements/batches written");
        if !env.quiet {
            println!("{}", path.display());
        }
        return Ok(Status::Pass);
    }
    export(env, &data, started_at, timer)
}

/// Writes the import bundle and its checks file.
pub fn export(
    env: &Env,
    data: &GraphData,
    started_at: String,
    timer: StageTimer,
) -> anyhow::Result<Status> {
    let s = env.settings();
    let dir = &s.neo4j.export_dir;
    let files = env.with_progress("load-neo4j export", "files", |_| {
        graph::bundle::write_bundle(dir, data, &s.neo4j)
    })?;
    let rows: u64 = files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "csv"))
        .map(|(_, n)| n)
        .sum();
    let mut checks = Checks::new(
        "load-neo4j.export",
        &env.ctx,
        started_at,
        vec![Gate::at_least(
            "award_nodes",
            data.awards.len() as f64,
            1.0,
            Severity::Warning,
        )],
    );
    checks.counts = files
        .iter()
        .map(|(p, n)| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                *n,
            )
        })
        .collect();
    checks.metrics = timer.finish(rows);
    checks.outputs = files.iter().map(|(p, _)| p.clone()).collect();
    checks.details = json!({"export_dir": dir, "array_delimiter": s.neo4j.array_delimiter});
    std::fs::create_dir_all(&s.neo4j.loaded_dir)?;
    super::finish_stage(env, &checks, &s.neo4j.loaded_dir.join("export.checks.json"))
}
