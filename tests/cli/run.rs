//! `sbir run`: the main job on the configured input, stage by stage.

use serde_json::Value;

use crate::workdir::{Workdir, awards_csv, stderr, stdout};

#[test]
fn run_chains_ingest_enrich_and_classify_and_prints_outputs() {
    let wd = Workdir::new();
    wd.write("data/sample/sbir_awards.csv", awards_csv(&[&[]]));
    wd.write(
        "data/sample/usaspending_recipients.csv",
        "recipient_name,recipient_uei,recipient_duns\nACME PHOTONICS INC,ABC123DEF456,\n",
    );
    let out = wd.run(&["run"], 0);
    let printed = stdout(&out);
    for f in [
        "sbir_awards.parquet",
        "sbir_awards.checks.json",
        "enriched_sbir_awards.parquet",
        "enriched_sbir_awards.checks.json",
        "cet_award_classifications.parquet",
        "cet_company_profiles.parquet",
        "cet_taxonomy.parquet",
    ] {
        assert!(
            printed.contains(&format!("data/processed/{f}")),
            "{printed}"
        );
    }
    assert_eq!(
        wd.json("data/processed/sbir_awards.checks.json")["status"],
        "pass"
    );
    assert_eq!(
        wd.json("data/processed/enriched_sbir_awards.checks.json")["counts"]["linked"],
        1
    );
    // No model artifact in this folder: the shipped model compiled into the binary classifies.
    let cet = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(cet["details"]["scorer"], "model", "{cet}");
    assert_eq!(cet["details"]["reason"], Value::Null);
    assert_eq!(cet["counts"]["num_scored"], 1);
    // No graph server configured: the import bundle is written.
    assert!(
        printed.contains("data/loaded/neo4j-import/nodes_award.csv"),
        "{printed}"
    );
    // The run ends with one line per stage: status, records and its key figure.
    let err = stderr(&out);
    let table = &err[err
        .find("stage ")
        .unwrap_or_else(|| panic!("no summary: {err}"))..];
    for (stage, figure) in [
        ("ingest ", "reject_rate 0.0000"),
        ("enrich ", "match_rate 1.0000"),
        ("classify-cet ", "classification_success_rate 1.0000"),
        ("load-neo4j.export ", "award_nodes 1.0000"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("no {stage}line: {table}"));
        assert!(
            line.contains(figure) && (line.contains(" pass ") || line.contains(" warn ")),
            "{line}"
        );
    }
}

#[test]
fn run_stops_before_enrich_when_ingest_gate_fails() {
    let wd = Workdir::new();
    wd.write("in.csv", awards_csv(&[&[("Phase", "?")]]));
    let mut cmd = wd.cmd(&["run"]);
    cmd.env("SBIR_ETL__INGEST__INPUT", "in.csv");
    let out = wd.run_expect(cmd, 3);
    assert_eq!(
        wd.json("data/processed/sbir_awards.checks.json")["status"],
        "fail"
    );
    let err = stderr(&out);
    assert!(err.contains("stopping after ingest"));
    assert!(
        !wd.exists("data/processed/enriched_sbir_awards.checks.json"),
        "enrich must not run"
    );
    // The summary shows the one stage that ran, failed.
    let table = &err[err.find("stage ").expect("a summary")..];
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ingest ") && l.contains(" fail ")),
        "{table}"
    );
    assert!(!table.contains("enrich"), "{table}");
}

#[test]
fn run_without_recipients_skips_enrich_and_classifies_this_input() {
    let wd = Workdir::new();
    // An enrich output of an earlier run must not be read for this input.
    wd.write("data/sample/sbir_awards.csv", awards_csv(&[&[]]));
    wd.write(
        "data/sample/usaspending_recipients.csv",
        "recipient_name,recipient_uei,recipient_duns\nACME PHOTONICS INC,ABC123DEF456,\n",
    );
    wd.run(&["run"], 0);
    assert!(wd.exists("data/processed/enriched_sbir_awards.parquet"));

    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/real/sbir_search_results2_excerpt.json"
    );
    // Real awards: the rules scorer's success gate may stop the run after classify-cet.
    let out = wd.cmd(&["run", "--input", input]).output().unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("enrich skipped: no recipients file was given"),
        "{err}"
    );
    assert!(err.contains("enrich skipped: no recipients file)"), "{err}");
    let cet = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(cet["counts"]["num_awards"], 117, "{cet}");

    // With --recipients, enrich runs on the given file (its match-rate gate may then stop
    // the run: one recipient cannot link 117 real awards).
    let out = wd
        .cmd(&[
            "run",
            "--input",
            input,
            "--recipients",
            "data/sample/usaspending_recipients.csv",
        ])
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("enrich skipped"));
    let enrich = wd.json("data/processed/enriched_sbir_awards.checks.json");
    assert_eq!(enrich["counts"]["awards"], 117, "{enrich}");
}
