//! The load-neo4j stage: the classify-cet (and enrich) outputs the layout names → graph rows
//! → a Bolt load (one checks file per step), a neo4j-admin import bundle, or the exact
//! statements and batches of a dry run.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Done, Layout, StageError, Written};
use crate::cet::params::ClassifierParams;
use crate::cet::taxonomy::Taxonomy;
use crate::config::Settings;
use crate::graph::bolt::{self, Connection};
use crate::graph::cypher::Cypher;
use crate::graph::load::{self, LoadOptions, StepReport};
use crate::graph::{self, GraphData, GraphError, Sources, Step};
use crate::io::IoError;
use crate::io::checks::{Checks, Gate, RunContext, Severity, now_rfc3339};
use crate::metrics::{StageMetrics, StageTimer};
use crate::names::Normalizer;
use crate::progress::Progress;

/// Reads the stage outputs into graph rows.
pub fn data(s: &Settings) -> Result<GraphData, GraphError> {
    let layout = Layout::new(s);
    let src = Sources {
        taxonomy: s.cet.taxonomy.clone(),
        awards: layout.awards(),
        classifications: layout.classifications(),
        profiles: layout.profiles(),
    };
    let inputs = |source| GraphError::Inputs {
        path: src.classifications.clone(),
        source: Box::new(source),
    };
    let taxonomy = Taxonomy::load(&src.taxonomy).map_err(inputs)?;
    let params = ClassifierParams::load(&s.cet.classification).map_err(inputs)?;
    let normalizer = Normalizer::new(&s.enrich.name_rules);
    GraphData::build(&src, &taxonomy, &params.bands, &normalizer).map_err(inputs)
}

/// The steps `only` names (every step when empty), in dependency order.
pub fn steps(only: &[String]) -> Result<Vec<Step>, GraphError> {
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

/// The server connection: neo4j.uri, and `password` (from `NEO4J_PASSWORD`, which the
/// caller reads) else the first line of neo4j.password_file.
pub fn connection(s: &Settings, password: Option<String>) -> Result<Connection, GraphError> {
    let n = &s.neo4j;
    let uri = n.uri.clone().ok_or(GraphError::NoServer)?;
    let password = match (password, &n.password_file) {
        (Some(p), _) => p,
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| IoError::read(f, e))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (None, None) => return Err(GraphError::NoPassword),
    };
    Ok(Connection {
        uri,
        user: n.user.clone(),
        password,
        database: n.database.clone(),
    })
}

/// Writes the schema statements and every step's statements and parameter batches to the
/// layout's dry-run file; returns its path and line count.
pub fn dry_run(s: &Settings, steps: &[Step]) -> Result<(PathBuf, u64), GraphError> {
    let cypher = Cypher::new(&s.neo4j)?;
    let data = data(s)?;
    let path = Layout::new(s).dry_run();
    let dir = &s.neo4j.loaded_dir;
    std::fs::create_dir_all(dir).map_err(|e| IoError::write(dir, e))?;
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
    Ok((path, lines))
}

/// Loads the graph over `conn`, writing one checks file per step.
pub fn load(
    s: &Settings,
    ctx: &RunContext,
    conn: &Connection,
    steps: Vec<Step>,
    resume: bool,
    progress: &dyn Progress,
) -> Result<Done<Vec<StepReport>>, StageError> {
    let started_at = now_rfc3339();
    let cypher = Cypher::new(&s.neo4j)?;
    let data = data(s)?;
    tracing::info!(
        "load-neo4j: {} as {} (database {})",
        bolt::redact_uri(&conn.uri),
        conn.user,
        conn.database
    );
    let opts = LoadOptions {
        settings: &s.neo4j,
        steps,
        resume,
    };
    let reports = load::load(conn, &data, &cypher, &opts, progress)?;
    let mut written = Vec::new();
    for r in &reports {
        let mut checks = Checks::new(
            &format!("load-neo4j.{}", r.step),
            ctx,
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
        checks.metrics = StageMetrics {
            duration_s: r.duration_s,
            records: r.rows_loaded,
            records_per_s: if r.duration_s > 0.0 {
                r.rows_loaded as f64 / r.duration_s
            } else {
                0.0
            },
            peak_rss_mb: crate::metrics::peak_rss_mb(),
            rss_delta_mb: None,
        };
        let (created, updated) = r.created_updated();
        checks.outputs = r.failed_file.iter().cloned().collect();
        checks.details = json!({
            "uri": bolt::redact_uri(&conn.uri),
            "database": conn.database,
            "counts_before": r.counts_before,
            "counts_after": r.counts_after,
            "created": created,
            "updated": updated,
            "deleted": r.deleted,
            "resume": resume,
        });
        let path = Layout::new(s).graph_checks(r.step);
        written.push(Written::write(checks, path)?);
    }
    Ok(Done {
        checks: written,
        report: reports,
    })
}

/// Writes the neo4j-admin import bundle to neo4j.export_dir and its checks file; the report
/// is the rows written.
pub fn export(s: &Settings, ctx: &RunContext) -> Result<Done<u64>, StageError> {
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let data = data(s)?;
    let dir = &s.neo4j.export_dir;
    let files = graph::bundle::write_bundle(dir, &data, &s.neo4j)?;
    let rows: u64 = files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "csv"))
        .map(|(_, n)| n)
        .sum();
    let mut checks = Checks::new(
        "load-neo4j.export",
        ctx,
        started_at,
        vec![Gate::at_least(
            "award_nodes",
            data.awards.len() as f64,
            1.0,
            Severity::Warning,
        )],
    );
    checks.counts = files.iter().map(|(p, n)| (file_name(p), *n)).collect();
    checks.metrics = timer.finish(rows);
    checks.outputs = files.iter().map(|(p, _)| p.clone()).collect();
    checks.details = json!({"export_dir": dir, "array_delimiter": s.neo4j.array_delimiter});
    let loaded = &s.neo4j.loaded_dir;
    std::fs::create_dir_all(loaded).map_err(|e| IoError::write(loaded, e))?;
    let checks = Written::write(checks, Layout::new(s).graph_checks("export"))?;
    Ok(Done {
        checks: vec![checks],
        report: rows,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
