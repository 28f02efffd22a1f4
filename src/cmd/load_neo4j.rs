//! `sbir load-neo4j`: the CET graph from the classify-cet (and enrich) outputs, loaded over
//! Bolt when a server is configured (`NEO4J_URI` or neo4j.uri), else written as a neo4j-admin
//! import bundle (`--export`), or as the exact statements and batches (`--dry-run`).

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
    if let Some(file) = &args.query {
        return run_queries(env, file, graph::bolt::Access::ReadOnly);
    }
    if let Some(file) = &args.execute {
        return run_queries(env, file, graph::bolt::Access::Write);
    }
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
        println!("{}", path.display());
        return Ok(Status::Pass);
    }
    match &s.neo4j.uri {
        Some(uri) if args.export.is_none() => load(args, env, &data, &cypher, steps, uri),
        _ => export(env, &data, started_at, timer),
    }
}

/// Prints the rows of each statement in `file`.
fn run_queries(
    env: &Env,
    file: &std::path::Path,
    access: graph::bolt::Access,
) -> anyhow::Result<Status> {
    let s = env.settings();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let statements: Vec<String> = text
        .split(';')
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|q| !q.is_empty())
        .collect();
    let conn = connection(s)?;
    let results = graph::bolt::run_statements(&conn, &s.neo4j, &statements, access)
        .with_context(|| format!("{}", file.display()))?;
    for (stmt, rows) in results {
        println!("// {stmt}");
        for r in rows {
            println!("{r}");
        }
    }
    Ok(Status::Pass)
}

/// The server connection from settings and the environment's password.
fn connection(s: &Settings) -> anyhow::Result<graph::bolt::Connection> {
    let uri = s
        .neo4j
        .uri
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no graph server: set NEO4J_URI (or neo4j.uri)"))?;
    Ok(graph::bolt::Connection {
        uri,
        user: s.neo4j.user.clone(),
        password: password(&s.neo4j)?,
        database: s.neo4j.database.clone(),
    })
}

/// The password: `NEO4J_PASSWORD`, else the first line of neo4j.password_file.
fn password(s: &sbir::config::Neo4jSettings) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("NEO4J_PASSWORD") {
        return Ok(p);
    }
    match &s.password_file {
        Some(f) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("cannot read neo4j.password_file {}", f.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()),
        None => Err(graph::GraphError::NoPassword.into()),
    }
}

/// Loads over Bolt and writes one checks file per step.
fn load(
    args: &Args,
    env: &Env,
    data: &GraphData,
    cypher: &Cypher,
    steps: Vec<Step>,
    uri: &str,
) -> anyhow::Result<Status> {
    let s = env.settings();
    let conn = connection(s)?;
    tracing::info!(
        "load-neo4j: {} as {} (database {})",
        graph::bolt::redact_uri(uri),
        conn.user,
        conn.database
    );
    let started_at = now_rfc3339();
    let opts = graph::bolt::LoadOptions {
        settings: &s.neo4j,
        steps,
        resume: args.resume,
    };
    let reports = env.with_progress("load-neo4j", "rows", |progress| {
        graph::bolt::load(&conn, data, cypher, &opts, progress)
    })?;
    let mut worst = Status::Pass;
    for r in &reports {
        let mut checks = Checks::new(
            &format!("load-neo4j.{}", r.step),
            &env.ctx,
            started_at.clone(),
            vec![Gate::at_least(
                "load_success_rate",
                r.success_rate(),
                s.neo4j.min_load_success_rate,
                Severity::Error,
            )],
        );
        checks.counts = [
            ("rows", r.rows),
            ("rows_loaded", r.rows_loaded),
            ("rows_skipped_resume", r.rows_skipped_resume),
            ("batches", r.batches),
            ("batches_failed", r.batches_failed),
            ("retries", r.retries),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        checks.metrics = sbir::metrics::StageMetrics {
            duration_s: r.duration_s,
            records: r.rows_loaded,
            records_per_s: if r.duration_s > 0.0 {
                r.rows_loaded as f64 / r.duration_s
            } else {
                0.0
            },
            peak_rss_mb: sbir::metrics::peak_rss_mb(),
            rss_delta_mb: None,
        };
        let (created, updated) = r.created_updated();
        checks.outputs = r.failed_file.iter().cloned().collect();
        checks.details = json!({
            "uri": graph::bolt::redact_uri(uri),
            "database": conn.database,
            "counts_before": r.counts_before,
            "counts_after": r.counts_after,
            "created": created,
            "updated": updated,
            "deleted": r.deleted,
            "resume": args.resume,
        });
        let path = s.neo4j.loaded_dir.join(format!("{}.checks.json", r.step));
        let status = super::finish_stage(&checks, &path)?;
        if status == Status::Fail || (status == Status::Warn && worst == Status::Pass) {
            worst = status;
        }
    }
    Ok(worst)
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
    super::finish_stage(&checks, &s.neo4j.loaded_dir.join("export.checks.json"))
}
