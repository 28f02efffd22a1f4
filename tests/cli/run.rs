//! `sbir run`: the main job on the configured input.

use crate::workdir::{Workdir, awards_csv, stdout};

#[test]
fn run_ingests_the_configured_input_and_prints_outputs() {
    let wd = Workdir::new();
    wd.write("data/sample/sbir_awards.csv", awards_csv(&[&[]]));
    let out = wd.run(&["run"], 0);
    let printed = stdout(&out);
    assert!(
        printed.contains("data/processed/sbir_awards.parquet"),
        "{printed}"
    );
    assert!(
        printed.contains("data/processed/sbir_awards.checks.json"),
        "{printed}"
    );
    assert_eq!(
        wd.json("data/processed/sbir_awards.checks.json")["status"],
        "pass"
    );
}

#[test]
fn run_exits_3_when_a_gate_fails() {
    let wd = Workdir::new();
    wd.write("in.csv", awards_csv(&[&[("Phase", "?")]]));
    let mut cmd = wd.cmd(&["run"]);
    cmd.env("SBIR_ETL__INGEST__INPUT", "in.csv");
    wd.run_expect(cmd, 3);
    assert_eq!(
        wd.json("data/processed/sbir_awards.checks.json")["status"],
        "fail"
    );
}
