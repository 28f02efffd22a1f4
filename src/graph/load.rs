//! Loading a graph over Bolt: each step's statements in `UNWIND $rows` batches, a few in
//! flight, retried on connection failures; a batch that still fails is written to
//! `<loaded_dir>/<step>.failed.ndjson`, and `<step>.state.json` records the batches that
//! landed (on which server and database, and the counts after them), so `--resume` sends only
//! the rest, and only to the graph they landed on while it still holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use neo4rs::{BoltList, BoltType, Graph, query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bolt::{
    Connection, connect, explain, no_reply, redact_uri, runtime, to_bolt, with_retries,
};
use super::cypher::Cypher;
use super::{GraphData, GraphError, Statement, Step, WhenEmpty};
use crate::config::Neo4jSettings;
use crate::io::IoError;
use crate::progress::Progress;

/// What one step did, for its checks file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub rows: u64,
    pub rows_loaded: u64,
    pub rows_skipped_resume: u64,
    pub batches: u64,
    pub batches_failed: u64,
    pub retries: u64,
    pub duration_s: f64,
    /// Node count per label / relationship count per type, before and after the step.
    pub counts_before: BTreeMap<String, i64>,
    pub counts_after: BTreeMap<String, i64>,
    /// Per label / type: rows the step upserted, and relationships its stale-edge removals
    /// deleted (as the server counted them).
    pub upserted: BTreeMap<String, u64>,
    pub deleted: BTreeMap<String, u64>,
    pub failed_file: Option<PathBuf>,
}

impl StepReport {
    /// Per label / type: entities created (the count's change plus what was deleted) and
    /// updated (upserted rows that matched an existing entity).
    pub fn created_updated(&self) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
        let mut created = BTreeMap::new();
        let mut updated = BTreeMap::new();
        for (k, after) in &self.counts_after {
            let before = self.counts_before.get(k).copied().unwrap_or(0);
            let deleted = self.deleted.get(k).copied().unwrap_or(0) as i64;
            let c = after - before + deleted;
            created.insert(k.clone(), c);
            if let Some(&rows) = self.upserted.get(k) {
                updated.insert(k.clone(), (rows as i64 - c).max(0));
            }
        }
        (created, updated)
    }

    pub fn success_rate(&self) -> f64 {
        let sent = self.rows - self.rows_skipped_resume;
        if sent == 0 {
            1.0
        } else {
            (self.rows_loaded - self.rows_skipped_resume) as f64 / sent as f64
        }
    }
}

/// Batches of a step that landed, keyed by the step's content and by the server and database
/// they landed on, with the counts the graph had after them, so state of another graph, of
/// other data, or of data that has since gone is never trusted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    fingerprint: String,
    /// Server URI (without credentials) and database.
    #[serde(default)]
    server: String,
    done: BTreeSet<(usize, usize)>,
    /// Node or relationship counts of the step's targets when the state was written.
    #[serde(default)]
    counts: BTreeMap<String, i64>,
}

impl State {
    /// The state saved at `path` when it can be resumed from — it describes this state's
    /// statements and graph, and the graph (whose counts are `now`) still holds what it
    /// recorded — else this one, with a warning saying why not.
    fn resumed_from(self, path: &Path, now: &BTreeMap<String, i64>, step: Step) -> Self {
        let Some(saved) = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        else {
            return self;
        };
        match saved.unusable(&self.fingerprint, &self.server, now) {
            None => saved,
            Some(why) => {
                tracing::warn!(
                    "load-neo4j {}: not resuming from {} ({why}): loading every batch",
                    step.name(),
                    path.display()
                );
                self
            }
        }
    }

    /// Why this saved state cannot be resumed from on `server` whose counts are `now` (`None`:
    /// it can).
    fn unusable(
        &self,
        fingerprint: &str,
        server: &str,
        now: &BTreeMap<String, i64>,
    ) -> Option<String> {
        if self.fingerprint != fingerprint {
            return Some("the step's statements or rows changed".into());
        }
        if self.server != server {
            return Some(format!("it describes another graph ({})", self.server));
        }
        self.counts.iter().find_map(|(target, &had)| {
            let has = now.get(target).copied().unwrap_or(0);
            (has < had).then(|| format!("{target} has {has}, the state recorded {had}"))
        })
    }
}

fn fingerprint(statements: &[Statement]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for s in statements {
        h.update(s.text.as_bytes());
        h.update(s.rows.text().as_bytes());
    }
    format!("{:016x}", h.digest())
}

/// Options of one load.
pub struct LoadOptions<'a> {
    pub settings: &'a Neo4jSettings,
    pub steps: Vec<Step>,
    pub resume: bool,
}

/// Loads `steps` of `data`; returns one report per step.
pub fn load(
    conn: &Connection,
    data: &GraphData,
    cypher: &Cypher,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Vec<StepReport>, GraphError> {
    runtime()?.block_on(load_async(conn, data, cypher, opts, progress))
}

async fn load_async(
    conn: &Connection,
    data: &GraphData,
    cypher: &Cypher,
    opts: &LoadOptions<'_>,
    progress: &dyn Progress,
) -> Result<Vec<StepReport>, GraphError> {
    let s = opts.settings;
    let graph = connect(conn, s).await?;
    let mut schema = Vec::new();
    if s.create_constraints {
        schema.extend(cypher.constraints());
    }
    if s.create_indexes {
        schema.extend(cypher.indexes());
    }
    for stmt in schema {
        graph
            .run(query(&stmt))
            .await
            .map_err(|e| explain(e, conn))?;
    }
    std::fs::create_dir_all(&s.loaded_dir).map_err(|e| IoError::write(&s.loaded_dir, e))?;
    let mut reports = Vec::new();
    for &step in &opts.steps {
        let report = load_step(&graph, conn, step, data, cypher, opts, progress).await?;
        let stop = s.fail_fast && report.batches_failed > 0;
        reports.push(report);
        if stop {
            break;
        }
    }
    Ok(reports)
}

/// Loads one step: the batches its saved state does not already hold, then the counts after.
async fn load_step(
    graph: &Graph,
    conn: &Connection,
    step: Step,
    data: &GraphData,
    cypher: &Cypher,
    opts: &LoadOptions<'_>,
    progress: &dyn Progress,
) -> Result<StepReport, GraphError> {
    let s = opts.settings;
    let fail = |e: neo4rs::Error| explain(e, conn);
    let statements = data.statements(step, cypher);
    let started = Instant::now();
    let state_path = s.loaded_dir.join(format!("{}.state.json", step.name()));
    let counts_before = counts(graph, cypher, &statements).await.map_err(fail)?;
    let server = format!("{} database {}", redact_uri(&conn.uri), conn.database);
    let mut state = State {
        fingerprint: fingerprint(&statements),
        server,
        ..Default::default()
    };
    if opts.resume {
        state = state.resumed_from(&state_path, &counts_before, step);
    }
    let failed_path = s.loaded_dir.join(format!("{}.failed.ndjson", step.name()));
    let _ = std::fs::remove_file(&failed_path);
    let mut report = StepReport {
        step: step.name(),
        counts_before,
        ..Default::default()
    };
    let mut failures: Vec<Value> = Vec::new();
    'statements: for (si, stmt) in statements.iter().enumerate() {
        let batches: Vec<(usize, Range<usize>)> =
            stmt.rows.batches(s.batch_size).enumerate().collect();
        report.rows += stmt.rows.len() as u64;
        report.batches += batches.len() as u64;
        // While the target is empty: skip stale-edge removals, CREATE instead of MERGE.
        let empty = report.counts_before.get(&stmt.target) == Some(&0);
        let create = match (&stmt.when_empty, empty) {
            (WhenEmpty::Skip, true) => {
                report.rows_loaded += stmt.rows.len() as u64;
                continue;
            }
            (WhenEmpty::Create(text), true) => Some(text.clone()),
            _ => None,
        };
        let mut pending = Vec::new();
        for (bi, range) in batches {
            if state.done.contains(&(si, bi)) {
                report.rows_loaded += range.len() as u64;
                report.rows_skipped_resume += range.len() as u64;
                progress.inc(range.len() as u64);
                continue;
            }
            pending.push((bi, range));
        }
        for wave in pending.chunks(s.concurrency) {
            let mut set = tokio::task::JoinSet::new();
            for (bi, range) in wave.iter().cloned() {
                let param = BoltType::List(BoltList::from(
                    range
                        .clone()
                        .map(|i| to_bolt(&stmt.rows.get(i)))
                        .collect::<Vec<_>>(),
                ));
                let batch = send_batch(
                    graph.clone(),
                    stmt.text.clone(),
                    create.clone(),
                    param,
                    s.clone(),
                );
                set.spawn(async move { (bi, range, batch.await) });
            }
            let mut results = Vec::new();
            while let Some(r) = set.join_next().await {
                results.push(r.map_err(|e| GraphError::Server(e.to_string()))?);
            }
            results.sort_by_key(|r| r.0);
            for (bi, range, (res, retries)) in results {
                report.retries += retries;
                let n = range.len() as u64;
                match res {
                    Ok(deleted) => {
                        state.done.insert((si, bi));
                        report.rows_loaded += n;
                        let target = stmt.target.clone();
                        if matches!(stmt.when_empty, WhenEmpty::Skip) {
                            *report.deleted.entry(target).or_default() += deleted;
                        } else {
                            *report.upserted.entry(target).or_default() += n;
                        }
                    }
                    Err(e) => {
                        report.batches_failed += 1;
                        tracing::error!(
                            "load-neo4j {}: batch {bi} of statement {si} failed: {e}",
                            step.name()
                        );
                        failures.push(json!({"statement": stmt.text, "batch": bi, "error": e, "rows": stmt.rows.values(range)}));
                    }
                }
                progress.inc(n);
            }
            if s.fail_fast && !failures.is_empty() {
                break 'statements;
            }
        }
    }
    report.counts_after = counts(graph, cypher, &statements).await.map_err(fail)?;
    state.counts = report.counts_after.clone();
    crate::io::atomic::write_json(&state_path, &state)?;
    report.failed_file = write_failures(&failed_path, &failures)?;
    report.duration_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Sends one batch: the CREATE shortcut once when the target was empty, else (or when that
/// failed) the MERGE with retries. Returns the `deleted` count or the error, and the retries.
async fn send_batch(
    g: Graph,
    text: String,
    create: Option<String>,
    param: BoltType,
    s: Neo4jSettings,
) -> (Result<u64, String>, u64) {
    // Anything after the CREATE's one try is the MERGE, so a batch that committed before its
    // connection dropped is not doubled.
    let mut tried = 0;
    if let Some(c) = create {
        match g.run(query(&c).param("rows", param.clone())).await {
            Ok(_) => return (Ok(0), 0),
            Err(e) => {
                tracing::debug!("CREATE batch failed ({e}); sending the MERGE");
                tried = 1;
            }
        }
    }
    let (res, retries) = with_retries(&s, || {
        deleted_count(&g, query(&text).param("rows", param.clone()))
    })
    .await;
    let res = res.map_err(|e| match e {
        neo4rs::Error::ConnectionTimedOut => no_reply(&s),
        e => e.to_string(),
    });
    (res, retries + tried)
}

/// Writes the failed batches (when there are any) to `path`; returns it then.
fn write_failures(path: &Path, failures: &[Value]) -> Result<Option<PathBuf>, GraphError> {
    if failures.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::io::table::NdjsonWriter::write_all(
        path, failures,
    )?))
}

/// Runs a write statement; returns the `deleted` count it reports (0 when it returns none).
async fn deleted_count(g: &Graph, q: neo4rs::Query) -> Result<u64, neo4rs::Error> {
    let mut rows = g.execute(q).await?;
    let mut n = 0;
    while let Some(row) = rows.next().await? {
        n += row.get::<i64>("deleted").unwrap_or(0).max(0) as u64;
    }
    Ok(n)
}

/// Node or relationship counts of the labels and types the statements write.
async fn counts(
    graph: &Graph,
    cypher: &Cypher,
    statements: &[Statement<'_>],
) -> Result<BTreeMap<String, i64>, neo4rs::Error> {
    let mut out = BTreeMap::new();
    let targets: BTreeSet<&str> = statements.iter().map(|s| s.target.as_str()).collect();
    for (name, q) in cypher.count_queries() {
        if !targets.contains(name.as_str()) {
            continue;
        }
        let mut rows = graph.execute(query(&q)).await?;
        let n = match rows.next().await? {
            Some(row) => row.get::<i64>("n").unwrap_or(0),
            None => 0,
        };
        out.insert(name, n);
    }
    Ok(out)
}
