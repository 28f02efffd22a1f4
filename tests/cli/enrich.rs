//! `sbir enrich`: the match cascade, gates, truth metrics, --explain and bad recipients input.

use crate::workdir::{Workdir, awards_csv, stderr, stdout};

const RECIPIENTS: &str = "\
recipient_name,recipient_uei,recipient_duns,parent_name,parent_uei,city,state,zip
\"ACME PHOTONICS, INC.\",ABC123DEF456,123456789,,,BOSTON,MA,02110
BETA ROBOTICS LLC,BBB222CCC333,987654321,,,DAYTON,OH,45402
GAMMA SENSORS CORP,GGG444HHH555,,,,AUSTIN,TX,73301
DELTA QUANTUM DYNAMICS LLC,DDD666EEE777,,,,BOULDER,CO,80301
DELTA QUANTUM DYNAMICS LLC,DDD666EEE888,,,,AUSTIN,TX,73301
EPSILON MATERIALS HOLDINGS LLC,EEE999FFF000,,,,SEATTLE,WA,98101
,,,,,,,
ZETA LABS,BAD-UEI,,,,,,
";

/// One award per cascade step, by company/identifiers.
fn awards() -> String {
    awards_csv(&[
        // uei-exact (wrong DUNS on purpose: UEI wins)
        &[("Agency Tracking Number", "1"), ("Duns", "111111111")],
        // duns-exact
        &[
            ("Agency Tracking Number", "2"),
            ("UEI", ""),
            ("Duns", "98-765-4321"),
            ("Company", "Whatever Inc"),
        ],
        // name-exact (normalisation drops punctuation, suffix, "The")
        &[
            ("Agency Tracking Number", "3"),
            ("UEI", ""),
            ("Duns", ""),
            ("Company", "The Gamma Sensors, Corporation"),
            ("State", "Texas"),
        ],
        // name-exact tie broken by state
        &[
            ("Agency Tracking Number", "4"),
            ("UEI", ""),
            ("Duns", ""),
            ("Company", "Delta Quantum Dynamics"),
            ("State", "Texas"),
        ],
        // name-fuzzy-auto: a typo
        &[
            ("Agency Tracking Number", "5"),
            ("UEI", ""),
            ("Duns", ""),
            ("Company", "Beta Robotcs LLC"),
            ("State", "Ohio"),
        ],
        // name-fuzzy-candidate: related entity with extra words is not linked
        &[
            ("Agency Tracking Number", "6"),
            ("UEI", ""),
            ("Duns", ""),
            ("Company", "Epsilon Materials"),
            ("State", "Washington"),
        ],
        // nothing shared at all
        &[
            ("Agency Tracking Number", "7"),
            ("UEI", ""),
            ("Duns", ""),
            ("Company", "Omicron Widgets"),
        ],
    ])
}

fn setup() -> Workdir {
    let wd = Workdir::new();
    wd.write("awards.csv", awards());
    wd.write("recipients.csv", RECIPIENTS);
    wd.run(&["ingest", "--input", "awards.csv"], 0);
    wd
}

fn enriched(wd: &Workdir) -> Vec<serde_json::Value> {
    wd.ndjson("data/processed/enriched_sbir_awards.ndjson")
}

#[test]
fn cascade_records_method_score_and_recipient() {
    let wd = setup();
    wd.run(
        &[
            "enrich",
            "--recipients",
            "recipients.csv",
            "--format",
            "both",
            "--candidates",
        ],
        0,
    );
    let rows = enriched(&wd);
    assert_eq!(rows.len(), 7, "every award is kept");
    let method = |i: usize| {
        rows[i]["_usaspending_match_method"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(method(0).as_deref(), Some("uei-exact"));
    assert_eq!(rows[0]["usaspending_recipient_uei"], "ABC123DEF456");
    assert_eq!(rows[0]["_usaspending_match_score"], 100.0);
    assert_eq!(method(1).as_deref(), Some("duns-exact"));
    assert_eq!(rows[1]["usaspending_recipient_name"], "BETA ROBOTICS LLC");
    assert_eq!(method(2).as_deref(), Some("name-exact"));
    assert_eq!(rows[2]["usaspending_recipient_uei"], "GGG444HHH555");
    assert_eq!(method(3).as_deref(), Some("name-exact"));
    assert_eq!(
        rows[3]["usaspending_recipient_uei"], "DDD666EEE888",
        "state breaks the tie"
    );
    assert_eq!(method(4).as_deref(), Some("name-fuzzy-auto"));
    assert_eq!(rows[4]["usaspending_recipient_uei"], "BBB222CCC333");
    assert!(rows[4]["_usaspending_match_score"].as_f64().unwrap() >= 90.0);
    assert_eq!(method(5).as_deref(), Some("name-fuzzy-candidate"));
    assert_eq!(rows[5]["_usaspending_linked"], false);
    assert!(
        rows[5]["usaspending_recipient_uei"].is_null(),
        "candidates are not linked"
    );
    assert_eq!(
        rows[5]["_usaspending_candidates"][0]["recipient_uei"],
        "EEE999FFF000"
    );
    assert!(method(6).is_none());

    // 5 of 7 linked = 0.714 passes 0.70; the candidate and the unmatched award do not count.
    let checks = wd.json("data/processed/enriched_sbir_awards.checks.json");
    assert_eq!(checks["counts"]["linked"], 5);
    assert_eq!(checks["details"]["match_rate"], 0.7143);
    assert_eq!(checks["details"]["by_method"]["name-exact"], 2);
    assert_eq!(
        checks["details"]["breakdown"]["identifier"]["uei_present"]["awards"],
        1
    );
    // Two malformed recipient rows were quarantined, not lost.
    assert_eq!(checks["counts"]["recipients_rejected"], 2);
    assert_eq!(
        wd.ndjson("data/processed/recipients.rejects.ndjson").len(),
        2
    );
    assert_eq!(checks["status"], "pass", "{checks}");

    // A second run compares with the first: an unchanged match rate passes the regression gate.
    wd.run(&["enrich", "--recipients", "recipients.csv"], 0);
    let checks = wd.json("data/processed/enriched_sbir_awards.checks.json");
    assert_eq!(checks["details"]["previous_match_rate"], 0.7143);
    let gate = checks["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "match_rate_regression")
        .unwrap();
    assert_eq!(gate["passed"], true);
}

#[test]
fn accepting_candidates_links_them_only_where_the_strict_rules_allow() {
    let wd = setup();
    // With the auto band moved above the typo's score, "Beta Robotcs" is a candidate.
    let mut cmd = wd.cmd(&[
        "enrich",
        "--recipients",
        "recipients.csv",
        "--format",
        "ndjson",
        "--accept-candidates",
    ]);
    cmd.env("SBIR_ETL__ENRICH__HIGH_THRESHOLD", "99.5");
    wd.run_expect(cmd, 0);
    let rows = enriched(&wd);
    assert_eq!(rows[4]["_usaspending_match_method"], "name-fuzzy-candidate");
    assert_eq!(rows[4]["_usaspending_match_rule"], "accepted-candidate");
    assert_eq!(rows[4]["_usaspending_linked"], true);
    assert_eq!(rows[4]["usaspending_recipient_uei"], "BBB222CCC333");
    // A related entity (the award's name plus HOLDINGS) stays unlinked even so.
    assert_eq!(rows[5]["_usaspending_match_rule"], "extra-words");
    assert_eq!(rows[5]["_usaspending_linked"], false);
}

#[test]
fn match_rate_gate_fails_with_outputs_written() {
    let wd = setup();
    wd.write(
        "other.csv",
        "recipient_name,recipient_uei,recipient_duns\nUNRELATED CO,ZZZ999ZZZ999,\n",
    );
    wd.run(&["enrich", "--recipients", "other.csv"], 3);
    let checks = wd.json("data/processed/enriched_sbir_awards.checks.json");
    assert_eq!(checks["status"], "fail");
    assert!(checks["reason"].as_str().unwrap().contains("match_rate"));
    assert!(wd.exists("data/processed/enriched_sbir_awards.parquet"));
}

#[test]
fn truth_file_adds_precision_and_recall() {
    let wd = setup();
    let ids: Vec<String> = wd.awards().into_iter().map(|a| a.award_id).collect();
    let truth = format!(
        "award_id,recipient_uei\n{},ABC123DEF456\n{},BBB222CCC333\n{},XXX000XXX000\n",
        ids[0], ids[1], ids[2]
    );
    wd.write("truth.csv", truth);
    wd.run(
        &[
            "enrich",
            "--recipients",
            "recipients.csv",
            "--truth",
            "truth.csv",
            "--accept-candidates",
        ],
        0,
    );
    let t = &wd.json("data/processed/enriched_sbir_awards.checks.json")["details"]["truth"];
    assert_eq!(t["awards_with_truth"], 3);
    assert_eq!(t["linked"], 3);
    assert_eq!(t["correct"], 2);
    assert_eq!(t["precision"], 0.6667);
    assert_eq!(t["by_method"]["uei-exact"]["precision"], 1.0);
    assert_eq!(t["by_method"]["name-exact"]["precision"], 0.0);
}

#[test]
fn explain_shows_candidates_and_scores() {
    let wd = setup();
    let id = wd.awards()[4].award_id.clone();
    let out = wd.run(
        &["enrich", "--recipients", "recipients.csv", "--explain", &id],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["normalized_name"], "BETA ROBOTC");
    assert_eq!(v["method"], "name-fuzzy-auto");
    assert_eq!(v["rule"], "linked");
    assert_eq!(v["candidates"][0]["recipient_uei"], "BBB222CCC333");
    assert_eq!(v["candidates"][0]["same_state"], true);
    assert!(v["candidates"][0]["weighted_score"].as_f64().unwrap() >= 90.0);
    // The related entity: which rule stopped it, and the words only one side has.
    let id = wd.awards()[5].award_id.clone();
    let out = wd.run(
        &["enrich", "--recipients", "recipients.csv", "--explain", &id],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rule"], "extra-words");
    assert!(v["reason"].as_str().unwrap().contains("extra words"), "{v}");
    assert_eq!(
        v["words"]["only_in_recipient"],
        serde_json::json!(["HOLDING"])
    );
    let out = wd.run(
        &[
            "enrich",
            "--recipients",
            "recipients.csv",
            "--explain",
            "sbir-nope",
        ],
        1,
    );
    assert!(stderr(&out).contains("no award sbir-nope"));
}

#[test]
fn recipients_missing_a_required_column_is_usage_error() {
    let wd = setup();
    wd.write(
        "bad.csv",
        "recipient_name,recipient_uei\nACME,ABC123DEF456\n",
    );
    let err = stderr(&wd.run(&["enrich", "--recipients", "bad.csv"], 2));
    assert!(
        err.contains("recipient_duns") && err.contains("bad.csv"),
        "{err}"
    );
}

#[test]
fn header_spellings_come_from_settings() {
    let wd = setup();
    wd.write(
        "lookup.csv",
        "legal_business_name,uei,duns,recipient_state_code\n\"ACME PHOTONICS, INC.\",ABC123DEF456,,MA\n",
    );
    wd.run(
        &["enrich", "--recipients", "lookup.csv", "--format", "ndjson"],
        3,
    );
    assert_eq!(enriched(&wd)[0]["usaspending_recipient_state"], "MA");
}

#[test]
fn generated_set_links_accurately_with_blocking() {
    let wd = Workdir::new();
    wd.run(
        &[
            "sample-data",
            "--awards",
            "3000",
            "--recipients",
            "30000",
            "--seed",
            "9",
            "--out",
            "gen",
        ],
        0,
    );
    wd.run(&["ingest", "--input", "gen/sbir_awards.csv"], 0);
    wd.run(
        &[
            "enrich",
            "--recipients",
            "gen/usaspending_recipients.csv",
            "--truth",
            "gen/award_recipient_truth.csv",
        ],
        0,
    );
    let checks = wd.json("data/processed/enriched_sbir_awards.checks.json");
    let t = &checks["details"]["truth"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!(f(&t["blocking_recall"]) >= 0.9, "{t}");
    assert!(f(&t["recall"]) >= 0.95, "{t}");
    assert!(f(&t["precision"]) >= 0.98, "{t}");
    for m in ["uei-exact", "duns-exact"] {
        assert!(f(&t["by_method"][m]["precision"]) >= 0.99, "{m}: {t}");
    }
    // Blocking proposes a few hundred of the 30,000 recipients per fuzzy award, not all of them.
    assert!(
        f(&checks["details"]["mean_blocked_candidates"]) < 3_000.0,
        "{checks}"
    );
}

#[test]
fn resume_after_kill_gives_identical_output() {
    let wd = Workdir::new();
    wd.run(
        &[
            "sample-data",
            "--awards",
            "6000",
            "--recipients",
            "60000",
            "--seed",
            "3",
            "--out",
            "gen",
        ],
        0,
    );
    wd.run(&["ingest", "--input", "gen/sbir_awards.csv"], 0);
    let args = |out: &str, extra: &[&str]| {
        let mut a = vec![
            "enrich",
            "--recipients",
            "gen/usaspending_recipients.csv",
            "--out-dir",
            out,
        ];
        a.extend_from_slice(extra);
        let mut cmd = wd.cmd(&a);
        cmd.env("SBIR_ETL__ENRICH__CHUNK_SIZE", "50");
        cmd.env(
            "SBIR_ETL__ENRICH__AWARDS",
            "data/processed/sbir_awards.parquet",
        );
        cmd
    };
    wd.run_expect(args("full", &[]), 0);

    // Kill the checkpointed run as soon as its first chunk is saved.
    let mut child = args("resumed", &["--checkpoint-dir", "ckpt"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = wd.path("ckpt/chunk-000000.tally.json");
    let start = std::time::Instant::now();
    while !first.exists() && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.exists(), "the first chunk was saved");
    assert!(
        !wd.exists("resumed/enriched_sbir_awards.parquet"),
        "killed before the output was written"
    );

    wd.run_expect(args("resumed", &["--checkpoint-dir", "ckpt"]), 0);
    let checks = wd.json("resumed/enriched_sbir_awards.checks.json");
    assert!(
        checks["details"]["resumed_chunks"].as_u64().unwrap() >= 1,
        "{}",
        checks["details"]
    );
    assert_eq!(
        std::fs::read(wd.path("resumed/enriched_sbir_awards.parquet")).unwrap(),
        std::fs::read(wd.path("full/enriched_sbir_awards.parquet")).unwrap(),
        "resumed output is byte-identical to the uninterrupted one"
    );
    assert_eq!(
        checks["counts"],
        wd.json("full/enriched_sbir_awards.checks.json")["counts"]
    );
    let leftovers: Vec<String> = wd
        .list("resumed")
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the killed run's temporary files are cleaned up: {leftovers:?}"
    );

    // Changed settings invalidate the checkpoints instead of mixing runs.
    let mut changed = args("changed", &["--checkpoint-dir", "ckpt"]);
    changed.env("SBIR_ETL__ENRICH__HIGH_THRESHOLD", "95");
    wd.run_expect(changed, 0);
    assert_eq!(
        wd.json("changed/enriched_sbir_awards.checks.json")["details"]["resumed_chunks"],
        0
    );
}

#[test]
fn recipients_can_be_gzip_or_parquet() {
    use std::io::Write;
    use std::sync::Arc;

    let wd = setup();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(RECIPIENTS.as_bytes()).unwrap();
    wd.write("recipients.csv.gz", gz.finish().unwrap());
    wd.run(
        &[
            "enrich",
            "--recipients",
            "recipients.csv.gz",
            "--format",
            "ndjson",
            "--out-dir",
            "gz",
            "--awards",
            "data/processed/sbir_awards.parquet",
        ],
        0,
    );

    let mut rdr = csv::Reader::from_reader(RECIPIENTS.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let fields: Vec<arrow_schema::Field> = headers
        .iter()
        .map(|h| arrow_schema::Field::new(h, arrow_schema::DataType::Utf8, true))
        .collect();
    let columns: Vec<arrow_array::ArrayRef> = (0..headers.len())
        .map(|c| {
            let values = rows
                .iter()
                .map(|r| Some(r[c].to_string()).filter(|v| !v.is_empty()));
            Arc::new(arrow_array::StringArray::from_iter(values)) as arrow_array::ArrayRef
        })
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(wd.path("recipients.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    wd.run(
        &[
            "enrich",
            "--recipients",
            "recipients.parquet",
            "--format",
            "ndjson",
            "--out-dir",
            "pq",
            "--awards",
            "data/processed/sbir_awards.parquet",
        ],
        0,
    );

    let gz_rows = wd.ndjson("gz/enriched_sbir_awards.ndjson");
    assert_eq!(
        gz_rows,
        wd.ndjson("pq/enriched_sbir_awards.ndjson"),
        "same matches from either format"
    );
    assert_eq!(gz_rows[0]["_usaspending_match_method"], "uei-exact");
    let pq_checks = wd.json("pq/enriched_sbir_awards.checks.json");
    assert_eq!(pq_checks["counts"]["recipients_rejected"], 2);
    assert_eq!(pq_checks["inputs"][1]["sha256"].as_str().unwrap().len(), 64);
}

/// Another tool's awards Parquet: the ingest output with `award_year` written as Int64.
fn awards_with_int64_year(wd: &Workdir) -> String {
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    let src = std::fs::File::open(wd.path("data/processed/sbir_awards.parquet")).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(src, 1024).unwrap();
    let batch = reader.into_iter().next().unwrap().unwrap();
    let i = batch.schema().index_of("award_year").unwrap();
    let years = batch
        .column(i)
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    let wide: Int64Array = years.iter().map(|y| y.map(i64::from)).collect();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    fields[i] = Field::new("award_year", DataType::Int64, false);
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(wide);
    let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let file = std::fs::File::create(wd.path("other.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, out.schema(), None).unwrap();
    w.write(&out).unwrap();
    w.close().unwrap();
    "other.parquet".to_string()
}

#[test]
fn awards_parquet_of_another_shape_is_a_usage_error_before_any_output() {
    let wd = setup();
    let other = awards_with_int64_year(&wd);
    let args = [
        "enrich",
        "--recipients",
        "recipients.csv",
        "--awards",
        &other,
    ];
    let err = stderr(&wd.run(&args, 2));
    assert!(
        err.contains("other.parquet") && err.contains("`award_year` is Int64, expected Int32"),
        "{err}"
    );
    assert!(!wd.exists("data/processed/recipients.rejects.ndjson"));
    assert!(!wd.exists("data/processed/enriched_sbir_awards.parquet"));
    let mut cmd = wd.cmd(&["classify-cet"]);
    cmd.env("SBIR_ETL__CET__AWARDS", &other);
    let err = stderr(&wd.run_expect(cmd, 2));
    assert!(err.contains("`award_year` is Int64"), "{err}");
    assert!(!wd.exists("data/processed/cet_taxonomy.parquet"));
}
