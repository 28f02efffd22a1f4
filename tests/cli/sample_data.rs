//! `sbir sample-data`: deterministic synthetic inputs that ingest reads cleanly.

use std::collections::HashSet;

use crate::workdir::Workdir;

#[test]
fn generated_files_are_deterministic_and_ingestible() {
    let wd = Workdir::new();
    let args = [
        "sample-data",
        "--awards",
        "3000",
        "--recipients",
        "9000",
        "--seed",
        "11",
    ];
    wd.run(&[&args[..], &["--out", "a"]].concat(), 0);
    wd.run(&[&args[..], &["--out", "b"]].concat(), 0);
    for f in [
        "sbir_awards.csv",
        "usaspending_recipients.csv",
        "award_recipient_truth.csv",
        "award_cet_labels.csv",
    ] {
        assert_eq!(
            std::fs::read(wd.path(&format!("a/{f}"))).unwrap(),
            std::fs::read(wd.path(&format!("b/{f}"))).unwrap(),
            "{f}"
        );
    }

    wd.run(&["ingest", "--input", "a/sbir_awards.csv"], 0);
    let checks = wd.json("data/processed/sbir_awards.checks.json");
    let c = &checks["counts"];
    assert_eq!(checks["details"]["reconciled"], true);
    assert!(c["input_rows"].as_u64().unwrap() >= 3000);
    assert!(
        c["rejected"].as_u64().unwrap() > 0,
        "edge cases include bad rows"
    );
    assert!(
        c["duplicates"].as_u64().unwrap() > 0,
        "edge cases include exact repeats"
    );
    assert!(
        checks["details"]["warnings_by_code"]["non_utf8_decoded"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Every truth and label row names an award that ingest wrote.
    let ids: HashSet<String> = wd.awards().into_iter().map(|a| a.award_id).collect();
    let truth = wd.read("a/award_recipient_truth.csv");
    let truth_rows: Vec<&str> = truth.lines().skip(1).collect();
    assert_eq!(truth_rows.len(), ids.len());
    assert!(
        truth_rows
            .iter()
            .all(|l| ids.contains(l.split(',').next().unwrap()))
    );
    let linked = truth_rows.iter().filter(|l| !l.ends_with(',')).count();
    assert!(
        linked as f64 > 0.85 * truth_rows.len() as f64,
        "most awardees exist in USAspending"
    );

    // Recipients: unique UEIs and the documented header.
    let recipients = wd.read("a/usaspending_recipients.csv");
    let mut lines = recipients.lines();
    assert_eq!(
        lines.next().unwrap(),
        "recipient_name,recipient_uei,recipient_duns,parent_name,parent_uei,parent_duns,city,state,zip"
    );
    let mut rdr = csv::Reader::from_reader(recipients.as_bytes());
    let ueis: Vec<String> = rdr.records().map(|r| r.unwrap()[1].to_string()).collect();
    assert!(ueis.len() > 8000);
    assert_eq!(ueis.iter().collect::<HashSet<_>>().len(), ueis.len());
}
