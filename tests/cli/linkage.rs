//! Company linkage on real names (`tests/fixtures/real/linkage/`, see PROVENANCE.md): SBIR.gov
//! company names linked by name only to FPDS legal names and UEIs, scored against the hand and
//! automatic matches of another team, including the candidates it rejected.

use crate::workdir::{Workdir, stdout};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real/linkage");
const CHECKS: &str = "data/processed/enriched_sbir_awards.checks.json";

/// Ingests the fixture awards and writes `truth.csv` (award id → each acceptable UEI; an empty
/// UEI for a rejected name) from `pairs.csv`, keyed by tracking number.
fn setup() -> Workdir {
    let wd = Workdir::new();
    wd.run(&["ingest", "--input", &format!("{FIXTURES}/awards.csv")], 0);
    let ids: std::collections::HashMap<String, String> = wd
        .awards()
        .into_iter()
        .map(|a| (a.agency_tracking_number.unwrap(), a.award_id))
        .collect();
    let mut truth = String::from("award_id,recipient_uei\n");
    let mut pairs = csv::Reader::from_path(format!("{FIXTURES}/pairs.csv")).unwrap();
    for row in pairs.deserialize::<std::collections::HashMap<String, String>>() {
        let row = row.unwrap();
        let id = &ids[&row["tracking_number"]];
        for uei in row["recipient_ueis"].split(';') {
            truth.push_str(&format!("{id},{uei}\n"));
        }
    }
    wd.write("truth.csv", truth);
    wd
}

fn enrich(wd: &Workdir, extra: &[&str]) -> serde_json::Value {
    let recipients = format!("{FIXTURES}/recipients.csv");
    let mut args = vec![
        "enrich",
        "--recipients",
        &recipients,
        "--truth",
        "truth.csv",
        "--format",
        "both",
    ];
    args.extend(extra);
    wd.run(&args, 0);
    wd.json(CHECKS)["details"]["truth"].clone()
}

#[test]
fn real_names_link_precisely_and_rejected_names_stay_unlinked() {
    let wd = setup();
    let t = enrich(&wd, &[]);
    assert_eq!(t["awards_with_truth"], 250);
    assert_eq!(t["negatives"], 37, "{t}");
    // Renames and acquisitions (Mobile Energy Products → EEI TECHNOLOGIES) are out of reach of
    // any name matcher; everything else here links, and nothing links wrongly.
    assert!(t["precision"].as_f64().unwrap() >= 0.99, "{t}");
    assert!(t["recall"].as_f64().unwrap() >= 0.95, "{t}");
    assert_eq!(t["negatives_linked"], 0, "{t}");
    // Candidates below the auto band still face the strict rules.
    let t = enrich(&wd, &["--accept-candidates"]);
    assert!(t["precision"].as_f64().unwrap() >= 0.99, "{t}");
    assert_eq!(t["negatives_linked"], 0, "{t}");
}

/// The enriched row of the award of `company` (and `state`, when given).
fn row<'a>(
    rows: &'a [serde_json::Value],
    company: &str,
    state: Option<&str>,
) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["company"] == company && r["state"].as_str() == state)
        .unwrap_or_else(|| panic!("no award of {company} {state:?}"))
}

#[test]
fn each_failure_pattern_is_decided_by_its_rule() {
    let wd = setup();
    enrich(&wd, &[]);
    let rows = wd.ndjson("data/processed/enriched_sbir_awards.ndjson");
    let linked_to = |company: &str, state: Option<&str>| {
        let r = row(&rows, company, state);
        assert_eq!(r["_usaspending_linked"], true, "{r}");
        r["usaspending_recipient_uei"].as_str().unwrap().to_string()
    };
    // Two FPDS rows ("…INCORPORATED", "…, INC.") of one UEI are one firm, not a tie.
    assert_eq!(linked_to("AERODYNE RESEARCH INC", None), "HTMHV7AL9A86");
    // Another state (NE vs VA), but the only firm of that name.
    assert_eq!(
        linked_to("21ST CENTURY SYSTEMS, INC.", Some("NE")),
        "LE7PBYWQ5555"
    );
    // Spelled-out legal form, spaced letters, plural.
    assert_eq!(
        linked_to("DEFENSE LIFE SCIENCES, LLC", None),
        "PZZAVPE8NB77"
    );
    assert_eq!(linked_to("GDA CORP", None), "PFK3TMRJKRU6");
    assert_eq!(linked_to("Advanced Ceramic Research", None), "TKTAE1Q7ZPL8");
    // INC and LLC rows of the same name: the award's legal form decides.
    assert_eq!(
        linked_to("Deep Web Technologies, Llc", None),
        "KAXRR685LJM9"
    );
    // Token-set ratio gives ADELPHI TECHNOLOGY vs K TECHNOLOGY 90.9; the weighted score does not.
    let adelphi = row(&rows, "ADELPHI TECHNOLOGY INC", None);
    assert_eq!(adelphi["_usaspending_linked"], false, "{adelphi}");
    assert!(
        adelphi["_usaspending_match_weighted_score"]
            .as_f64()
            .unwrap()
            < 75.0
    );

    // --explain names the rule and the words only one side has.
    let id = row(&rows, "ADELPHI TECHNOLOGY INC", None)["award_id"]
        .as_str()
        .unwrap()
        .to_string();
    let recipients = format!("{FIXTURES}/recipients.csv");
    let out = wd.run(
        &["enrich", "--recipients", &recipients, "--explain", &id],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rule"], "low-score", "{v}");
    assert!(
        v["words"]["only_in_award"]
            .as_array()
            .unwrap()
            .contains(&"ADELPHI".into()),
        "{v}"
    );
}
