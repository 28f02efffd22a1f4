//! The Bolt loader: sends each step's statements in `UNWIND $rows` batches over neo4rs, a few
//! batches in flight, retrying connection failures with capped exponential backoff (the
//! driver itself retries transient server errors). A batch that still fails is written to
//! `<loaded_dir>/<step>.failed.ndjson`; `<step>.state.json` records the batches that landed
//! (on which server and database, and the counts after them), so `--resume` sends only the
//! rest, and only to the graph they landed on while it still holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use neo4rs::{BoltList, BoltMap, BoltNull, BoltString, BoltType, ConfigBuilder, Graph, query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cypher::Cypher;
use super::{GraphData, GraphError, Step};
use crate::config::Neo4jSettings;
use crate::io::IoError;
use crate::progress::Progress;

/// Where and as whom to connect. The password never leaves this struct.
#[derive(Clone)]
pub struct Connection {
    pub uri: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("uri", &redact_uri(&self.uri))
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The URI without any `user:password@` part.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &uri[..s + 3], &uri[at + 1..]),
        _ => uri.to_string(),
    }
}

/// JSON (as the graph rows hold it) to a Bolt value.
pub fn to_bolt(v: &Value) -> BoltType {
    match v {
        Value::Null => BoltType::Null(BoltNull),
        Value::Bool(b) => BoltType::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => BoltType::from(i),
            None => BoltType::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => BoltType::String(BoltString::new(s)),
        Value::Array(items) => {
            let mut l = BoltList::with_capacity(items.len());
            for i in items {
                l.push(to_bolt(i));
            }
            BoltType::List(l)
        }
        Value::Object(map) => {
            let mut m = BoltMap::with_capacity(map.len());
            for (k, v) in map {
                m.put(BoltString::new(k), to_bolt(v));
            }
            BoltType::Map(m)
        }
    }
}

/// What one step did, for its checks file.
#[derive(Debug, Clone, Serialize)]
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

fn fingerprint(statements: &[super::Statement]) -> String {
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

fn is_connection_error(e: &neo4rs::Error) -> bool {
    matches!(
        e,
        neo4rs::Error::IOError { .. }
            | neo4rs::Error::ConnectionError
            | neo4rs::Error::ConnectionTimedOut
            | neo4rs::Error::IncompleteBoltExchange
            | neo4rs::Error::ServerUnavailableError(_)
    )
}

fn server_code(e: &neo4rs::Error) -> Option<String> {
    match e {
        neo4rs::Error::Neo4j(n) => Some(n.code().to_string()),
        _ => None,
    }
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

/// Turns a driver error into what the user should read: credentials refused, server
/// unreachable (URI without credentials), or the server's own error.
fn explain(e: neo4rs::Error, conn: &Connection) -> GraphError {
    let uri = redact_uri(&conn.uri);
    match (&e, server_code(&e)) {
        (_, Some(code)) if code.contains("Security") => GraphError::Unauthorized {
            uri,
            user: conn.user.clone(),
            code,
        },
        (neo4rs::Error::AuthenticationError(m), _) => GraphError::Unauthorized {
            uri,
            user: conn.user.clone(),
            code: m.clone(),
        },
        _ if is_connection_error(&e) => GraphError::Unreachable {
            uri,
            message: e.to_string(),
        },
        _ => GraphError::Server(format!("{uri}: {e}")),
    }
}

/// What a reply that did not come in time is reported as.
fn no_reply(s: &Neo4jSettings) -> String {
    format!(
        "no reply within {} s (neo4j.receive_timeout_s)",
        s.receive_timeout_s
    )
}

/// A connection pool, checked (reachability and credentials) with the batches' retries.
async fn connect(conn: &Connection, s: &Neo4jSettings) -> Result<Arc<Graph>, GraphError> {
    let unreachable = |e: neo4rs::Error| GraphError::Unreachable {
        uri: redact_uri(&conn.uri),
        message: e.to_string(),
    };
    // neo4rs has one timeout for connecting and for every reply: it gets the receive timeout,
    // and the first connection (the check below) is bounded by the connect timeout here.
    let config = ConfigBuilder::default()
        .uri(conn.uri.clone())
        .user(conn.user.clone())
        .password(conn.password.clone())
        .db(conn.database.clone())
        .max_connections(s.concurrency + 1)
        .connection_timeout(Duration::from_secs(s.receive_timeout_s))
        .build()
        .map_err(unreachable)?;
    let graph = Arc::new(Graph::connect(config).map_err(unreachable)?);
    let connect_timeout = Duration::from_secs(s.connect_timeout_s);
    with_retries(s, || async {
        tokio::time::timeout(connect_timeout, graph.run(query("RETURN 1")))
            .await
            .unwrap_or(Err(neo4rs::Error::ConnectionTimedOut))
    })
    .await
    .0
    .map_err(|e| explain(e, conn))?;
    Ok(graph)
}

fn runtime() -> Result<tokio::runtime::Runtime, GraphError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| GraphError::Server(format!("cannot start the async runtime: {e}")))
}

/// What a file of statements may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A statement with a write clause is refused before anything is sent; the rest run in one
    /// transaction that is rolled back, so nothing a statement does can persist.
    ReadOnly,
    /// Everything runs in one transaction that is committed.
    Write,
}

/// Runs statements (no parameters) in one transaction and returns each one's rows as JSON
/// objects.
pub fn run_statements(
    conn: &Connection,
    s: &Neo4jSettings,
    statements: &[String],
    access: Access,
) -> Result<Vec<(String, Vec<Value>)>, GraphError> {
    if access == Access::ReadOnly {
        for (i, stmt) in statements.iter().enumerate() {
            if let Some(clause) = super::readonly::write_clause(stmt) {
                return Err(GraphError::Writes {
                    statement: i + 1,
                    clause,
                });
            }
        }
    }
    runtime()?.block_on(async {
        let graph = connect(conn, s).await?;
        let fail = |e: neo4rs::Error| match e {
            neo4rs::Error::ConnectionTimedOut => {
                GraphError::Server(format!("{}: {}", redact_uri(&conn.uri), no_reply(s)))
            }
            e => explain(e, conn),
        };
        let mut txn = graph.start_txn().await.map_err(fail)?;
        let mut out = Vec::new();
        for stmt in statements {
            let mut rows = txn.execute(query(stmt)).await.map_err(fail)?;
            let mut values = Vec::new();
            while let Some(row) = rows.next(txn.handle()).await.map_err(fail)? {
                values.push(
                    row.to::<Value>()
                        .map_err(|e| GraphError::Server(format!("unreadable row: {e}")))?,
                );
            }
            out.push((stmt.clone(), values));
        }
        match access {
            Access::ReadOnly => txn.rollback().await.map_err(fail)?,
            Access::Write => {
                txn.commit().await.map_err(fail)?;
            }
        }
        Ok(out)
    })
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
    let fail = |e: neo4rs::Error| explain(e, conn);
    let server = format!("{} database {}", redact_uri(&conn.uri), conn.database);

    let mut schema = Vec::new();
    if s.create_constraints {
        schema.extend(cypher.constraints());
    }
    if s.create_indexes {
        schema.extend(cypher.indexes());
    }
    for stmt in schema {
        graph.run(query(&stmt)).await.map_err(fail)?;
    }

    std::fs::create_dir_all(&s.loaded_dir).map_err(|e| IoError::write(&s.loaded_dir, e))?;
    let mut reports = Vec::new();
    for &step in &opts.steps {
        let statements = data.statements(step, cypher);
        let started = Instant::now();
        let state_path = s.loaded_dir.join(format!("{}.state.json", step.name()));
        let print = fingerprint(&statements);
        let counts_before = counts(&graph, cypher, &statements).await.map_err(fail)?;
        let saved = opts
            .resume
            .then(|| std::fs::read(&state_path).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<State>(&b).ok());
        let mut state = match saved {
            Some(st) => match st.unusable(&print, &server, &counts_before) {
                None => st,
                Some(why) => {
                    tracing::warn!(
                        "load-neo4j {}: not resuming from {} ({why}): loading every batch",
                        step.name(),
                        state_path.display()
                    );
                    State::default()
                }
            },
            None => State::default(),
        };
        state.fingerprint = print;
        state.server = server.clone();
        let failed_path = s.loaded_dir.join(format!("{}.failed.ndjson", step.name()));
        let _ = std::fs::remove_file(&failed_path);
        let mut report = StepReport {
            step: step.name(),
            rows: 0,
            rows_loaded: 0,
            rows_skipped_resume: 0,
            batches: 0,
            batches_failed: 0,
            retries: 0,
            duration_s: 0.0,
            counts_before,
            counts_after: BTreeMap::new(),
            upserted: BTreeMap::new(),
            deleted: BTreeMap::new(),
            failed_file: None,
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
                (super::WhenEmpty::Skip, true) => {
                    report.rows_loaded += stmt.rows.len() as u64;
                    continue;
                }
                (super::WhenEmpty::Create(text), true) => Some(text.clone()),
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
                    let g = graph.clone();
                    let text = stmt.text.clone();
                    let param = BoltType::List(BoltList::from(
                        range
                            .clone()
                            .map(|i| to_bolt(&stmt.rows.get(i)))
                            .collect::<Vec<_>>(),
                    ));
                    let settings = s.clone();
                    let create = create.clone();
                    set.spawn(async move {
                        // The CREATE shortcut gets one try; anything after is the MERGE, so a
                        // batch that committed before its connection dropped is not doubled.
                        let mut tried = 0;
                        if let Some(c) = create {
                            match g.run(query(&c).param("rows", param.clone())).await {
                                Ok(_) => return (bi, range, Ok(0), 0),
                                Err(e) => {
                                    tracing::debug!(
                                        "CREATE batch {bi} failed ({e}); sending the MERGE"
                                    );
                                    tried = 1;
                                }
                            }
                        }
                        let (res, retries) = with_retries(&settings, || {
                            deleted_count(&g, query(&text).param("rows", param.clone()))
                        })
                        .await;
                        (
                            bi,
                            range,
                            res.map_err(|e| match e {
                                neo4rs::Error::ConnectionTimedOut => no_reply(&settings),
                                e => e.to_string(),
                            }),
                            retries + tried,
                        )
                    });
                }
                let mut results = Vec::new();
                while let Some(r) = set.join_next().await {
                    results.push(r.map_err(|e| GraphError::Server(e.to_string()))?);
                }
                results.sort_by_key(|r| r.0);
                for (bi, range, res, retries) in results {
                    report.retries += retries;
                    let n = range.len() as u64;
                    match res {
                        Ok(deleted) => {
                            state.done.insert((si, bi));
                            report.rows_loaded += n;
                            let target = stmt.target.clone();
                            if matches!(stmt.when_empty, super::WhenEmpty::Skip) {
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
        report.counts_after = counts(&graph, cypher, &statements).await.map_err(fail)?;
        state.counts = report.counts_after.clone();
        crate::io::atomic::write_json(&state_path, &state)?;
        if !failures.is_empty() {
            let mut w = crate::io::table::NdjsonWriter::create(&failed_path)?;
            for f in &failures {
                w.write(f)?;
            }
            w.commit()?;
            report.failed_file = Some(failed_path);
        }
        report.duration_s = started.elapsed().as_secs_f64();
        let stop = s.fail_fast && report.batches_failed > 0;
        reports.push(report);
        if stop {
            break;
        }
    }
    Ok(reports)
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

/// Runs `op`, retrying connection errors `max_retries` times with doubling, capped backoff.
/// Returns the last result and the retries used.
async fn with_retries<T, F, Fut>(s: &Neo4jSettings, mut op: F) -> (Result<T, neo4rs::Error>, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, neo4rs::Error>>,
{
    let mut delay = s.backoff_ms;
    let mut retries = 0;
    loop {
        match op().await {
            Err(e) if is_connection_error(&e) && retries < s.max_retries as u64 => {
                tracing::warn!(
                    "graph server connection failed ({e}); retry {} in {delay} ms",
                    retries + 1
                );
                tokio::time::sleep(Duration::from_millis(delay)).await;
                delay = (delay * 2).min(s.max_backoff_ms);
                retries += 1;
            }
            r => return (r, retries),
        }
    }
}

/// Node or relationship counts of the labels and types the statements write.
async fn counts(
    graph: &Graph,
    cypher: &Cypher,
    statements: &[super::Statement<'_>],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_uris() {
        assert_eq!(
            redact_uri("bolt://neo4j:s3cret@db.example:7687"),
            "bolt://db.example:7687"
        );
        assert_eq!(redact_uri("neo4j://db:7687"), "neo4j://db:7687");
    }

    #[test]
    fn json_parameters_become_bolt_values() {
        let v =
            json!({"s": "x", "i": 3, "f": 2.5, "n": null, "l": ["a", 1], "b": true, "m": {"k": 1}});
        let BoltType::Map(m) = to_bolt(&v) else {
            panic!("map expected")
        };
        let get = |k: &str| m.value.get(&BoltString::new(k)).unwrap().clone();
        assert!(matches!(get("s"), BoltType::String(_)));
        assert!(matches!(get("i"), BoltType::Integer(_)));
        assert!(matches!(get("f"), BoltType::Float(_)));
        assert!(matches!(get("n"), BoltType::Null(_)));
        assert!(matches!(get("b"), BoltType::Boolean(_)));
        assert!(matches!(get("m"), BoltType::Map(_)));
        let BoltType::List(l) = get("l") else {
            panic!("list expected")
        };
        assert_eq!(l.value.len(), 2);
    }
}
