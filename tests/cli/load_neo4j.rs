//! `sbir load-neo4j`: the import bundle parsed back against its sources, dry-run batches, and
//! identifier validation.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::workdir::{Workdir, awards_csv, stderr};

/// Ingests and classifies a small set: two companies (one without UEI), three CET areas.
fn classified(wd: &Workdir) {
    classify_fixture(
        wd,
        (
            "Deep learning for radar",
            "Machine learning and deep learning classify synthetic aperture radar returns. Radar data improve.",
        ),
    );
}

/// [`classified`] with the first award's title and abstract replaced.
fn classify_fixture(wd: &Workdir, first: (&str, &str)) {
    wd.write(
        "in.csv",
        awards_csv(&[
            &[
                ("Agency Tracking Number", "1"),
                ("Award Title", first.0),
                ("Abstract", first.1),
            ],
            &[
                ("Agency Tracking Number", "2"),
                ("Award Title", "Qubit control"),
                (
                    "Abstract",
                    "Superconducting qubits for quantum computing, it's said.",
                ),
            ],
            &[
                ("Agency Tracking Number", "3"),
                ("Company", "Beta Labs"),
                ("UEI", ""),
                ("Duns", ""),
                ("Award Title", "Hypersonic glide body"),
                ("Abstract", "A scramjet for hypersonic flight."),
            ],
        ]),
    );
    wd.run(&["ingest", "--input", "in.csv"], 0);
    wd.run(
        &["classify-cet", "--scorer", "rules", "--format", "both"],
        0,
    );
}

/// APPLICABLE_TO edges the current classifications call for: each primary plus supporting area.
fn applicable_edges(wd: &Workdir) -> u64 {
    wd.ndjson("data/processed/cet_award_classifications.ndjson")
        .iter()
        .map(|c| {
            u64::from(!c["primary_cet_id"].is_null())
                + c["supporting"].as_array().unwrap().len() as u64
        })
        .sum()
}

/// Rows of a bundle CSV as header → value maps.
fn csv_rows(wd: &Workdir, name: &str) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut r =
        csv::Reader::from_path(wd.path(&format!("data/loaded/neo4j-import/{name}"))).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (headers, rows)
}

#[test]
fn import_bundle_matches_its_sources() {
    let wd = Workdir::new();
    classified(&wd);
    wd.run(&["load-neo4j", "--export", "data/loaded/neo4j-import"], 0);
    let classes = wd.ndjson("data/processed/cet_award_classifications.ndjson");
    let profiles = wd.ndjson("data/processed/cet_company_profiles.ndjson");

    let (h, areas) = csv_rows(&wd, "nodes_cetarea.csv");
    assert_eq!(h[0], "cet_id:ID(CETArea)");
    assert_eq!(h.last().unwrap(), ":LABEL");
    assert_eq!(areas.len(), 21);
    let ai = areas
        .iter()
        .find(|a| a["cet_id:ID(CETArea)"] == "artificial_intelligence")
        .unwrap();
    assert!(
        ai["keywords:string[]"]
            .split(';')
            .any(|k| k == "machine learning")
    );

    let (h, awards) = csv_rows(&wd, "nodes_award.csv");
    assert!(
        h.contains(&"award_amount:float".to_string()) && h.contains(&"award_year:int".to_string())
    );
    assert_eq!(awards.len(), 3);
    for c in &classes {
        let id = c["award_id"].as_str().unwrap();
        let a = awards
            .iter()
            .find(|a| a["award_id:ID(Award)"] == id)
            .unwrap();
        assert_eq!(
            a["cet_primary_id"],
            c["primary_cet_id"].as_str().unwrap_or("")
        );
        assert_eq!(a[":LABEL"], "Award");
        let supporting: Vec<&str> = c["supporting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cet_id"].as_str().unwrap())
            .collect();
        let cell = &a["cet_supporting_ids:string[]"];
        let got: Vec<&str> = if cell.is_empty() {
            vec![]
        } else {
            cell.split(';').collect()
        };
        assert_eq!(got, supporting);
    }

    let (_, companies) = csv_rows(&wd, "nodes_company.csv");
    let keys: HashSet<&str> = companies
        .iter()
        .map(|c| c["company_key:ID(Company)"].as_str())
        .collect();
    assert_eq!(keys.len(), companies.len());
    assert_eq!(
        keys,
        HashSet::from(["ABC123DEF456", "name:BETA LABORATORY"])
    );
    let acme = companies
        .iter()
        .find(|c| c["company_key:ID(Company)"] == "ABC123DEF456")
        .unwrap();
    assert_eq!(acme["award_count:int"], "2");

    let (h, awarded) = csv_rows(&wd, "rels_awarded.csv");
    assert_eq!(h, [":START_ID(Company)", ":END_ID(Award)", ":TYPE"]);
    assert_eq!(awarded.len(), 3);
    assert!(
        awarded
            .iter()
            .all(|r| keys.contains(r[":START_ID(Company)"].as_str()))
    );

    let (_, applicable) = csv_rows(&wd, "rels_applicable_to.csv");
    let expected: usize = classes
        .iter()
        .map(|c| {
            usize::from(!c["primary_cet_id"].is_null()) + c["supporting"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(applicable.len(), expected);
    for r in applicable.iter().filter(|r| r["primary:boolean"] == "true") {
        let c = classes
            .iter()
            .find(|c| c["award_id"] == r[":START_ID(Award)"].as_str())
            .unwrap();
        assert_eq!(r[":END_ID(CETArea)"], c["primary_cet_id"].as_str().unwrap());
        assert_eq!(
            r["score:float"].parse::<f64>().unwrap(),
            c["primary_score"].as_f64().unwrap()
        );
        assert_eq!(r["rank:int"], "1");
    }

    let (_, spec) = csv_rows(&wd, "rels_specializes_in.csv");
    let areas_total: usize = profiles
        .iter()
        .map(|p| p["areas"].as_array().unwrap().len())
        .sum();
    assert_eq!(spec.len(), areas_total);
    assert_eq!(
        spec.iter()
            .filter(|r| r["primary:boolean"] == "true")
            .count(),
        profiles.len()
    );

    // The README holds the import command; load.cypher the schema and every batch.
    let readme = wd.read("data/loaded/neo4j-import/README.txt");
    assert!(
        readme.contains("neo4j-admin database import full")
            && readme.contains("--nodes=nodes_award.csv")
    );
    let cypher = wd.read("data/loaded/neo4j-import/load.cypher");
    assert!(cypher.starts_with("CREATE CONSTRAINT cetarea_cet_id_unique IF NOT EXISTS"));
    assert!(cypher.contains(":param rows => [{`cet_id`: 'advanced_computing'"));
    let checks = wd.json("data/loaded/neo4j/export.checks.json");
    assert_eq!(checks["status"], "pass");
    assert_eq!(checks["counts"]["nodes_award.csv"], 3);
}

#[test]
fn dry_run_writes_statements_and_typed_parameters() {
    let wd = Workdir::new();
    classified(&wd);
    let mut cmd = wd.cmd(&[
        "load-neo4j",
        "--dry-run",
        "--only",
        "award-enrichment,cetarea-nodes",
    ]);
    cmd.env("SBIR_ETL__NEO4J__BATCH_SIZE", "2");
    wd.run_expect(cmd, 0);
    let lines = wd.ndjson("data/loaded/neo4j/dry-run.ndjson");
    let schema = lines.iter().filter(|l| l["step"] == "schema").count();
    assert_eq!(schema, 8);
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["step"] != "schema")
        .map(|l| l["step"].as_str().unwrap())
        .collect();
    // Dependency order whatever the flag order; 21 areas in batches of 2, 3 awards in 2.
    assert_eq!(steps.iter().filter(|s| **s == "cetarea-nodes").count(), 11);
    assert_eq!(
        steps.iter().filter(|s| **s == "award-enrichment").count(),
        2
    );
    assert_eq!(steps[0], "cetarea-nodes");
    let award: &Value = &lines
        .iter()
        .find(|l| l["step"] == "award-enrichment")
        .unwrap()["params"]["rows"][0];
    assert!(award["props"]["award_amount"].is_f64());
    assert!(award["props"]["award_year"].is_i64());
    assert!(award["props"]["cet_supporting_ids"].is_array());
    assert!(award["props"]["topic_code"].is_null());
    let merge = lines
        .iter()
        .find(|l| {
            l["statement"]
                == "UNWIND $rows AS row MERGE (n:Award {award_id: row.award_id}) SET n += row.props"
        })
        .unwrap();
    // The first-load form: every property inline.
    let create = merge["when_empty"].as_str().unwrap();
    assert!(
        create.starts_with("UNWIND $rows AS row CREATE (n:Award {award_id: row.award_id, ")
            && create.contains("award_amount: row.props.award_amount")
            && !create.contains("SET"),
        "{create}"
    );
}

/// A local TCP listener standing in for a broken graph server: `on_accept` gets each
/// connection. Returns its port.
fn fake_server(mut on_accept: impl FnMut(std::net::TcpStream) + Send + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            on_accept(s);
        }
    });
    port
}

/// `sbir load-neo4j` against the fake server on `port`, retrying once or twice quickly, with
/// the classified fixture; returns its stderr (exit 1 expected).
fn load_against(wd: &Workdir, port: u16, settings: &[(&str, &str)]) -> String {
    classified(wd);
    let mut cmd = wd.cmd(&["load-neo4j"]);
    cmd.env("NEO4J_URI", format!("bolt://127.0.0.1:{port}"))
        .env("NEO4J_PASSWORD", "x")
        .env("SBIR_ETL__NEO4J__BACKOFF_MS", "10");
    for (k, v) in settings {
        cmd.env(format!("SBIR_ETL__NEO4J__{k}"), v);
    }
    stderr(&wd.run_expect(cmd, 1))
}

#[test]
fn dropped_connections_are_retried_then_reported() {
    // A server that accepts and hangs up at once.
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let port = fake_server(move |s| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        drop(s);
    });
    let wd = Workdir::new();
    let err = load_against(&wd, port, &[("MAX_RETRIES", "2")]);
    assert!(err.contains("retry 2 in 20 ms"), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach the graph server at bolt://127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // A server that accepts and then says nothing.
    let mut open = Vec::new();
    let port = fake_server(move |s| open.push(s));
    let wd = Workdir::new();
    let err = load_against(
        &wd,
        port,
        &[("CONNECT_TIMEOUT_S", "1"), ("MAX_RETRIES", "1")],
    );
    assert!(err.contains("retry 1 in 10 ms"), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach the graph server at bolt://127.0.0.1:{port}: connection timed out"
        )),
        "{err}"
    );

    let mut cmd = wd.cmd(&["load-neo4j"]);
    cmd.env("NEO4J_URI", format!("bolt://127.0.0.1:{port}"))
        .env("SBIR_ETL__NEO4J__RECEIVE_TIMEOUT_S", "0");
    let out = wd.run_expect(cmd, 2);
    assert!(
        stderr(&out).contains("neo4j.receive_timeout_s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unsafe_names_are_refused() {
    let wd = Workdir::new();
    classified(&wd);
    let mut cmd = wd.cmd(&["load-neo4j", "--export", "data/loaded/neo4j-import"]);
    cmd.env(
        "SBIR_ETL__NEO4J__REL_TYPES__APPLICABLE_TO",
        "X]->(n) DETACH DELETE n//",
    );
    let out = wd.run_expect(cmd, 2);
    assert!(
        stderr(&out).contains("neo4j.rel_types.applicable_to"),
        "{}",
        stderr(&out)
    );
    let out = wd.run(&["load-neo4j", "--dry-run", "--only", "everything"], 2);
    assert!(stderr(&out).contains("unknown step `everything`"));
}

/// The live graph server: `SBIR_TEST_NEO4J_*` (what `make test` sets), else `NEO4J_*`; None
/// when absent, unless `SBIR_REQUIRE_LIVE_GRAPH=1` makes that a failure.
fn live_server() -> Option<(String, String, String)> {
    let get = |k: &str| {
        [format!("SBIR_TEST_{k}"), k.to_string()]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    };
    match (get("NEO4J_URI"), get("NEO4J_USER"), get("NEO4J_PASSWORD")) {
        (Some(u), Some(n), Some(p)) => Some((u, n, p)),
        _ => {
            assert!(
                get("SBIR_REQUIRE_LIVE_GRAPH").is_none(),
                "SBIR_REQUIRE_LIVE_GRAPH is set but SBIR_TEST_NEO4J_URI/USER/PASSWORD are not"
            );
            eprintln!("no live graph server (SBIR_TEST_NEO4J_URI): skipped");
            None
        }
    }
}

/// `sbir <args>` against the live server, with labels and types private to `tag` so tests
/// running at the same time do not see each other's nodes.
fn live_cmd(
    wd: &Workdir,
    server: &(String, String, String),
    tag: &str,
    args: &[&str],
) -> std::process::Command {
    let mut c = wd.cmd(args);
    c.env("NEO4J_URI", &server.0)
        .env("NEO4J_USER", &server.1)
        .env("NEO4J_PASSWORD", &server.2);
    for (key, name) in [
        ("LABELS__CET_AREA", "CETArea"),
        ("LABELS__AWARD", "Award"),
        ("LABELS__COMPANY", "Company"),
        ("REL_TYPES__AWARDED", "AWARDED"),
        ("REL_TYPES__APPLICABLE_TO", "APPLICABLE_TO"),
        ("REL_TYPES__SPECIALIZES_IN", "SPECIALIZES_IN"),
    ] {
        c.env(format!("SBIR_ETL__NEO4J__{key}"), format!("{name}_{tag}"));
    }
    c
}

/// Deletes the nodes (and so the relationships) of `tag`'s labels, so a test starts from an
/// empty graph even on a server an earlier run left data in.
fn clear(wd: &Workdir, server: &(String, String, String), tag: &str) {
    execute(
        wd,
        server,
        tag,
        &format!(
            "MATCH (n) WHERE n:CETArea_{tag} OR n:Award_{tag} OR n:Company_{tag} DETACH DELETE n;"
        ),
    );
}

/// Runs statements that write through `load-neo4j --execute`.
fn execute(wd: &Workdir, server: &(String, String, String), tag: &str, cypher: &str) {
    wd.write("execute.cypher", cypher);
    wd.run_expect(
        live_cmd(
            wd,
            server,
            tag,
            &["load-neo4j", "--execute", "execute.cypher"],
        ),
        0,
    );
}

fn step_checks(wd: &Workdir, step: &str) -> Value {
    wd.json(&format!("data/loaded/neo4j/{step}.checks.json"))
}

/// Node and relationship counts after the load: each step reports the labels and types it
/// writes.
fn graph_counts(wd: &Workdir) -> Value {
    let mut all = serde_json::Map::new();
    for step in [
        "cetarea-nodes",
        "award-enrichment",
        "company-enrichment",
        "award-relationships",
        "company-relationships",
    ] {
        let c = step_checks(wd, step);
        all.extend(c["details"]["counts_after"].as_object().unwrap().clone());
    }
    Value::Object(all)
}

/// Every property of the tagged nodes and relationships, as `--query` prints them, in a fixed
/// order: what a load wrote, to compare a first load (CREATE) with a reload (MERGE).
fn graph_properties(wd: &Workdir, server: &(String, String, String), tag: &str) -> String {
    wd.write(
        "props.cypher",
        format!(
            "MATCH (n:CETArea_{tag}) RETURN properties(n) AS p ORDER BY n.cet_id;
             MATCH (n:Award_{tag}) RETURN properties(n) AS p ORDER BY n.award_id;
             MATCH (n:Company_{tag}) RETURN properties(n) AS p ORDER BY n.company_key;
             MATCH (a)-[r:AWARDED_{tag}]->(b) RETURN a.company_key AS a, b.award_id AS b, properties(r) AS p ORDER BY a, b;
             MATCH (a)-[r:APPLICABLE_TO_{tag}]->(b) RETURN a.award_id AS a, b.cet_id AS b, properties(r) AS p ORDER BY a, b;
             MATCH (a)-[r:SPECIALIZES_IN_{tag}]->(b) RETURN a.company_key AS a, b.cet_id AS b, properties(r) AS p ORDER BY a, b;"
        ),
    );
    let out = wd.run_expect(
        live_cmd(wd, server, tag, &["load-neo4j", "--query", "props.cypher"]),
        0,
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn live_load_is_idempotent_resumable_and_drops_stale_edges() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    classified(&wd);
    let tag = "idem";
    // A first load, even on a server an earlier run left data in.
    clear(&wd, &server, tag);
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j"]), 0);
    assert_eq!(
        step_checks(&wd, "award-enrichment")["details"]["counts_before"][format!("Award_{tag}")],
        0
    );
    let first = graph_counts(&wd);
    assert_eq!(first[format!("CETArea_{tag}")], 21);
    assert_eq!(first[format!("Award_{tag}")], 3);
    assert_eq!(first[format!("Company_{tag}")], 2);
    assert_eq!(first[format!("AWARDED_{tag}")], 3);
    let edges = applicable_edges(&wd);
    assert_eq!(first[format!("APPLICABLE_TO_{tag}")], edges);
    // The first load CREATEs with the properties inline: they are all there.
    let props = graph_properties(&wd, &server, tag);
    for expected in [
        r#""taxonomy_version":"#,
        r#""award_amount":"#,
        r#""cet_primary_id":"#,
        r#""total_award_amount":"#,
        r#""band":"#,
        r#""specialization_score":"#,
    ] {
        assert!(props.contains(expected), "{expected} missing:\n{props}");
    }

    // Loading the same data again (MERGE) changes no count and no property.
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j"]), 0);
    let again = graph_counts(&wd);
    assert_eq!(again, first);
    assert_eq!(graph_properties(&wd, &server, tag), props);
    for step in [
        "cetarea-nodes",
        "award-enrichment",
        "company-enrichment",
        "award-relationships",
    ] {
        let created = &step_checks(&wd, step)["details"]["created"];
        assert!(
            created.as_object().unwrap().values().all(|v| v == 0),
            "{step}: {created}"
        );
    }
    let details = &step_checks(&wd, "award-enrichment")["details"];
    assert_eq!(details["updated"][format!("Award_{tag}")], 3, "{details}");
    let details = &step_checks(&wd, "award-relationships")["details"];
    assert_eq!(details["updated"][format!("AWARDED_{tag}")], 3, "{details}");
    assert_eq!(
        details["deleted"][format!("APPLICABLE_TO_{tag}")],
        0,
        "{details}"
    );

    // --resume after a complete load sends nothing.
    wd.run_expect(
        live_cmd(
            &wd,
            &server,
            tag,
            &["load-neo4j", "--resume", "--only", "award-enrichment"],
        ),
        0,
    );
    let c = step_checks(&wd, "award-enrichment");
    assert_eq!(c["counts"]["rows_skipped_resume"], c["counts"]["rows"]);

    // Re-classified: the radar award becomes pure quantum; its old edges go.
    classify_fixture(
        &wd,
        (
            "Qubit readout",
            "Superconducting qubits and quantum computing.",
        ),
    );
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j"]), 0);
    let after = graph_counts(&wd);
    let edges = applicable_edges(&wd);
    assert_eq!(
        after[format!("APPLICABLE_TO_{tag}")],
        edges,
        "stale edges must go"
    );
    let details = &step_checks(&wd, "award-relationships")["details"];
    let deleted = details["deleted"][format!("APPLICABLE_TO_{tag}")]
        .as_u64()
        .unwrap();
    assert!(deleted >= 1, "{details}");
    assert_eq!(
        details["created"][format!("APPLICABLE_TO_{tag}")]
            .as_i64()
            .unwrap(),
        edges as i64 - first[format!("APPLICABLE_TO_{tag}")].as_i64().unwrap() + deleted as i64,
        "{details}"
    );
    assert_eq!(after[format!("Award_{tag}")], 3);
}

#[test]
fn live_bad_credentials_and_unreachable_server_exit_1_without_the_password() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    classified(&wd);
    let secret = "not-the-password-9f3a";
    let mut cmd = live_cmd(&wd, &server, "auth", &["-vv", "load-neo4j"]);
    cmd.env("NEO4J_PASSWORD", secret);
    let out = wd.run_expect(cmd, 1);
    let err = stderr(&out);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains(secret) && !crate::workdir::stdout(&out).contains(secret));
    let out = wd.run(&["config", "show"], 0);
    assert!(!crate::workdir::stdout(&out).contains(secret));

    let mut cmd = live_cmd(&wd, &server, "auth", &["load-neo4j"]);
    cmd.env("NEO4J_URI", "bolt://user:hunter2@127.0.0.1:1")
        .env("SBIR_ETL__NEO4J__BACKOFF_MS", "10");
    let out = wd.run_expect(cmd, 1);
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the graph server at bolt://127.0.0.1:1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
}

#[test]
fn live_query_files_are_read_only() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    classified(&wd);
    let tag = "readonly";
    clear(&wd, &server, tag);
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j"]), 0);
    let count = |wd: &Workdir| {
        wd.write(
            "count.cypher",
            format!("MATCH (n) WHERE n:Award_{tag} OR n:Company_{tag} RETURN count(n) AS n;"),
        );
        let out = wd.run_expect(
            live_cmd(wd, &server, tag, &["load-neo4j", "--query", "count.cypher"]),
            0,
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let row: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        row["n"].as_i64().unwrap()
    };
    let before = count(&wd);
    assert!(before > 0);
    // A write in a --query file is refused before anything runs: usage error, graph unchanged.
    wd.write(
        "wipe.cypher",
        format!("MATCH (n:Award_{tag}) RETURN count(n);\nMATCH (n) DETACH DELETE n;"),
    );
    let out = wd.run_expect(
        live_cmd(&wd, &server, tag, &["load-neo4j", "--query", "wipe.cypher"]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("wipe.cypher") && err.contains("statement 2") && err.contains("DETACH"),
        "{err}"
    );
    assert_eq!(count(&wd), before);
    // --execute is the way to write.
    execute(
        &wd,
        &server,
        tag,
        &format!("MATCH (n:Award_{tag}) DETACH DELETE n;"),
    );
    assert!(count(&wd) < before);
}

#[test]
fn live_resume_state_is_trusted_only_on_its_graph_while_the_graph_holds_it() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    classified(&wd);
    let tag = "resumeid";
    clear(&wd, &server, tag);
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j"]), 0);
    let full = graph_properties(&wd, &server, tag);
    let skipped =
        |wd: &Workdir| step_checks(wd, "award-enrichment")["counts"]["rows_skipped_resume"].clone();

    // The graph lost the awards the state says landed (a restore, a server restarted without
    // its data): every batch is sent again and the graph is whole.
    execute(
        &wd,
        &server,
        tag,
        &format!("MATCH (n:Award_{tag}) DETACH DELETE n;"),
    );
    let err = stderr(&wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j", "--resume"]), 0));
    assert!(err.contains("the state recorded"), "{err}");
    assert_eq!(skipped(&wd), 0);
    assert_eq!(graph_properties(&wd, &server, tag), full);

    // On its own, intact graph the state is used: a resume sends nothing.
    wd.run_expect(live_cmd(&wd, &server, tag, &["load-neo4j", "--resume"]), 0);
    let c = step_checks(&wd, "award-enrichment");
    assert_eq!(c["counts"]["rows_skipped_resume"], c["counts"]["rows"]);

    // The state names the server it describes: under another address nothing is skipped.
    let other = server.0.replace("127.0.0.1", "localhost");
    let mut cmd = live_cmd(&wd, &server, tag, &["load-neo4j", "--resume"]);
    cmd.env("NEO4J_URI", &other);
    let err = stderr(&wd.run_expect(cmd, 0));
    assert!(err.contains("another graph"), "{err}");
    assert_eq!(skipped(&wd), 0);
}

#[test]
fn live_a_reply_slower_than_the_receive_timeout_is_an_error() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    // 25 million rows to count: seconds on any server.
    wd.write(
        "slow.cypher",
        "UNWIND range(1, 5000) AS x UNWIND range(1, 5000) AS y RETURN count(*) AS n;",
    );
    let mut cmd = live_cmd(
        &wd,
        &server,
        "slow",
        &["load-neo4j", "--query", "slow.cypher"],
    );
    cmd.env("SBIR_ETL__NEO4J__RECEIVE_TIMEOUT_S", "1");
    let out = wd.run_expect(cmd, 1);
    let err = stderr(&out);
    assert!(
        err.contains("no reply within 1 s (neo4j.receive_timeout_s)"),
        "{err}"
    );
}

#[test]
fn live_resume_after_a_failed_batch_sends_only_what_did_not_land() {
    let Some(server) = live_server() else { return };
    let wd = Workdir::new();
    classified(&wd);
    let tag = "resume";
    clear(&wd, &server, tag);
    // Companies loaded under another key property hold the UEIs: loading with the default key
    // then breaks the Company.uei uniqueness constraint, failing the company batch.
    let mut cmd = live_cmd(&wd, &server, tag, &["load-neo4j"]);
    cmd.env("SBIR_ETL__NEO4J__COMPANY_KEY_PROPERTY", "alt_key");
    wd.run_expect(cmd, 0);
    wd.run_expect(
        live_cmd(&wd, &server, tag, &["load-neo4j", "--fail-fast"]),
        3,
    );
    let failed = wd.ndjson("data/loaded/neo4j/company-enrichment.failed.ndjson");
    assert_eq!(failed.len(), 1);
    assert!(!failed[0]["error"].as_str().unwrap().is_empty());
    assert_eq!(failed[0]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(step_checks(&wd, "company-enrichment")["status"], "fail");

    // Remove the conflicting nodes, then resume: only the company batch and the steps after it.
    execute(
        &wd,
        &server,
        tag,
        &format!("MATCH (n:Company_{tag}) WHERE n.alt_key IS NOT NULL DETACH DELETE n;"),
    );
    wd.run_expect(
        live_cmd(
            &wd,
            &server,
            tag,
            &["load-neo4j", "--resume", "--fail-fast"],
        ),
        0,
    );
    let awards = step_checks(&wd, "award-enrichment");
    assert_eq!(awards["counts"]["rows_skipped_resume"], 3, "{awards}");
    let companies = step_checks(&wd, "company-enrichment");
    assert_eq!(companies["counts"]["rows_skipped_resume"], 0);
    assert_eq!(companies["counts"]["rows_loaded"], 2);
    let counts = graph_counts(&wd);
    assert_eq!(counts[format!("Company_{tag}")], 2);
    assert_eq!(counts[format!("AWARDED_{tag}")], 3);
}
