//! Talking to a Bolt server over neo4rs: the connection (checked for reachability and
//! credentials), JSON values as Bolt parameters, retries of connection failures with capped
//! exponential backoff (the driver itself retries transient server errors), driver errors
//! in words a user can act on, and statement files run in one transaction.

use std::sync::Arc;
use std::time::Duration;

use neo4rs::{BoltList, BoltMap, BoltNull, BoltString, BoltType, ConfigBuilder, Graph, query};
use serde_json::Value;

use super::GraphError;
use crate::config::Neo4jSettings;

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

/// Turns a driver error into what the user should read: credentials refused, server
/// unreachable (URI without credentials), or the server's own error.
pub(super) fn explain(e: neo4rs::Error, conn: &Connection) -> GraphError {
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
pub(super) fn no_reply(s: &Neo4jSettings) -> String {
    format!(
        "no reply within {} s (neo4j.receive_timeout_s)",
        s.receive_timeout_s
    )
}

/// A connection pool, checked (reachability and credentials) with the batches' retries.
pub(super) async fn connect(
    conn: &Connection,
    s: &Neo4jSettings,
) -> Result<Arc<Graph>, GraphError> {
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, GraphError> {
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

/// Runs `op`, retrying connection errors `max_retries` times with doubling, capped backoff.
/// Returns the last result and the retries used.
pub(super) async fn with_retries<T, F, Fut>(
    s: &Neo4jSettings,
    mut op: F,
) -> (Result<T, neo4rs::Error>, u64)
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
        let v = serde_json::json!({"s": "x", "i": 3, "f": 2.5, "n": null, "l": ["a", 1], "b": true, "m": {"k": 1}});
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
