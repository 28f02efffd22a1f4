//! `sbir ingest`: validation rules, normalisation, CSV edge cases, outputs and counts.

use std::io::Write;

use crate::workdir::{HEADER, Workdir, award_line, awards_csv, stderr};

const CHECKS: &str = "data/processed/sbir_awards.checks.json";
const REJECTS: &str = "data/processed/sbir_awards.rejects.ndjson";

fn ingest(wd: &Workdir, input: &str, code: i32) -> serde_json::Value {
    wd.run(&["ingest", "--input", input], code);
    wd.json(CHECKS)
}

#[test]
fn valid_rows_are_written_typed_and_normalised() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        awards_csv(&[
            &[],
            &[
                ("Company", "  Beta Robotics LLC "),
                ("Phase", "PHASE 2"),
                ("Program", "sttr"),
                ("Award Amount", "$1,234,567.25"),
                ("Proposal Award Date", "6/15/2021 12:00:00 AM"),
                ("State", "new york"),
                ("Zip", "2110-1234"),
                ("UEI", "xyz987uvw654"),
                ("Duns", "12-345-6789"),
                ("HUBZone Owned", "Y"),
                ("Woman Owned", "U"),
                ("Number Employees", "1,200"),
            ],
        ]),
    );
    let checks = ingest(&wd, "a.csv", 0);
    assert_eq!(checks["status"], "pass");
    assert_eq!(checks["counts"]["written"], 2);
    let awards = wd.awards();
    assert_eq!(awards.len(), 2);
    let b = &awards[1];
    assert_eq!(b.company, "Beta Robotics LLC");
    assert_eq!(b.phase, "Phase II");
    assert_eq!(b.program, "STTR");
    assert_eq!(b.award_amount, 1_234_567.25);
    assert_eq!(b.proposal_award_date, Some(18793)); // 2021-06-15
    assert_eq!(b.state.as_deref(), Some("NY"));
    assert_eq!(b.state_name.as_deref(), Some("new york"));
    assert_eq!(b.zip.as_deref(), Some("02110-1234"));
    assert_eq!(b.uei.as_deref(), Some("XYZ987UVW654"));
    assert_eq!(b.duns.as_deref(), Some("123456789"));
    assert_eq!(b.hubzone_owned, Some(true));
    assert_eq!(b.woman_owned, None);
    assert_eq!(b.number_employees, Some(1200));
    assert_eq!(b.source_line, 3);
    // The DUNS lost its dashes (said so), the ZIP its dropped leading zero came back.
    assert_eq!(
        b.warning_codes(),
        vec!["punctuation_normalised", "zip_zero_padded"]
    );
    assert!(b.award_id.starts_with("sbir-") && b.award_id.len() == 21);
    assert_ne!(awards[0].award_id, b.award_id);

    // The Parquet schema carries real types.
    let batch = &wd.parquet("data/processed/sbir_awards.parquet")[0];
    let schema = batch.schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    use arrow_schema::DataType;
    assert_eq!(ty("proposal_award_date"), DataType::Date32);
    assert_eq!(ty("award_amount"), DataType::Float64);
    assert_eq!(ty("award_year"), DataType::Int32);
    assert_eq!(ty("hubzone_owned"), DataType::Boolean);
}

#[test]
fn every_required_rule_rejects_with_line_field_and_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("Company", "", "missing_required"),
        ("Award Title", "", "missing_required"),
        ("Agency", "", "missing_required"),
        ("Phase", "Phase IV", "invalid_phase"),
        ("Program", "SBIRX", "invalid_program"),
        ("Award Year", "1975", "year_out_of_range"),
        ("Award Year", "twenty", "invalid_year"),
        ("Award Amount", "TBD", "invalid_amount"),
        ("Award Amount", "-5", "negative_amount"),
        ("Award Amount", "", "missing_required"),
    ];
    let mut rows: Vec<Vec<(&str, &str)>> = vec![vec![]];
    rows.extend(cases.iter().map(|(c, v, _)| vec![(*c, *v)]));
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    let wd = Workdir::new();
    wd.write("a.csv", awards_csv(&refs));
    // 10 of 11 rows rejected: the reject-rate gate fails (exit 3) but outputs are written,
    // and stderr says why, most frequent reason first, with an example value.
    let out = wd.run(&["ingest", "--input", "a.csv"], 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 rows missing_required, e.g. Company \"\" at line 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 rows invalid_phase, e.g. Phase \"Phase IV\""),
        "{stderr}"
    );
    let checks = wd.json(CHECKS);
    assert_eq!(checks["status"], "fail");
    assert!(checks["reason"].as_str().unwrap().contains("reject_rate"));
    assert_eq!(checks["counts"]["rejected"], cases.len() as u64);
    assert_eq!(checks["counts"]["written"], 1);
    let rejects = wd.ndjson(REJECTS);
    assert_eq!(rejects.len(), cases.len());
    for (i, ((col, value, code), rej)) in cases.iter().zip(&rejects).enumerate() {
        assert_eq!(rej["line"], i as u64 + 3, "{rej}");
        let reason = &rej["reasons"][0];
        assert_eq!(reason["field"], *col, "{rej}");
        assert_eq!(reason["code"], *code, "{rej}");
        assert_eq!(reason["value"], *value, "{rej}");
        assert!(
            reason["message"].as_str().unwrap().starts_with("expected "),
            "{rej}"
        );
        assert_eq!(rej["raw"][col], *value);
        assert_eq!(rej["raw"].as_object().unwrap().len(), HEADER.len());
    }
    assert_eq!(checks["details"]["rejects_by_code"]["missing_required"], 4);
    assert_eq!(
        checks["details"]["reject_examples"]["invalid_amount"]["value"],
        "TBD"
    );
}

#[test]
fn a_bad_optional_value_becomes_null_with_a_warning_naming_field_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        ("UEI", "ABC-123", "invalid_uei"),
        ("Duns", "1234", "invalid_duns"),
        ("Duns", "1234.5678", "invalid_duns"),
        ("Proposal Award Date", "2021-02-30", "invalid_date"),
        ("Contract End Date", "soon", "invalid_date"),
        ("State", "Atlantis", "invalid_state"),
        ("Zip", "ABCDE", "invalid_zip"),
        ("HUBZone Owned", "maybe", "invalid_flag"),
        ("Number Employees", "many", "invalid_integer"),
        ("Solicitation Year", "0.0", "year_out_of_range"),
    ];
    let rows: Vec<Vec<(&str, &str)>> = cases.iter().map(|(c, v, _)| vec![(*c, *v)]).collect();
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    let wd = Workdir::new();
    wd.write("a.csv", awards_csv(&refs));
    let checks = ingest(&wd, "a.csv", 0);
    assert_eq!(checks["counts"]["rejected"], 0);
    assert_eq!(checks["counts"]["written"], cases.len() as u64);
    let awards = wd.awards();
    for ((col, value, code), a) in cases.iter().zip(&awards) {
        let w = a
            .warnings
            .iter()
            .find(|w| w.code == *code)
            .unwrap_or_else(|| panic!("{col}: {:?}", a.warnings));
        assert_eq!(w.field.as_deref(), Some(*col));
        assert_eq!(w.value.as_deref(), Some(*value));
    }
    assert_eq!(awards[0].uei, None);
    assert_eq!(awards[1].duns, None);
    assert_eq!(
        awards[2].duns, None,
        "a dot inside a DUNS never shifts digits"
    );
    assert_eq!(awards[3].proposal_award_date, None);
    assert_eq!(awards[5].state, None);
    assert_eq!(awards[5].state_name.as_deref(), Some("Atlantis"));
    assert_eq!(awards[6].zip, None);
    assert_eq!(awards[7].hubzone_owned, None);
    assert_eq!(awards[9].solicitation_year, None);
    assert_eq!(checks["details"]["warnings_by_code"]["invalid_date"], 2);
}

#[test]
fn all_reasons_of_a_row_are_reported() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        awards_csv(&[
            &[("Company", ""), ("Award Amount", "-3"), ("Phase", "X")],
            &[],
        ]),
    );
    wd.run(&["ingest", "--input", "a.csv"], 3);
    let rej = &wd.ndjson(REJECTS)[0];
    let codes: Vec<&str> = rej["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["missing_required", "invalid_phase", "negative_amount"]
    );
}

#[test]
fn warnings_keep_the_row_and_are_counted() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        awards_csv(&[
            &[("Award Amount", "7500000")],
            &[
                ("Proposal Award Date", "2019-01-01"),
                ("Agency Tracking Number", "2"),
            ],
            &[("Duns", "12345678"), ("Agency Tracking Number", "3")],
        ]),
    );
    let checks = ingest(&wd, "a.csv", 0);
    let awards = wd.awards();
    assert_eq!(awards[0].warning_codes(), vec!["amount_above_threshold"]);
    assert_eq!(
        awards[1].warning_codes(),
        vec!["award_year_differs_from_award_date"]
    );
    assert_eq!(awards[2].warning_codes(), vec!["duns_zero_padded"]);
    assert_eq!(awards[2].duns.as_deref(), Some("012345678"));
    assert_eq!(checks["counts"]["rows_with_warnings"], 3);
    assert_eq!(checks["details"]["warnings_by_code"]["duns_zero_padded"], 1);
}

#[test]
fn csv_edge_cases_survive() {
    let wd = Workdir::new();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(HEADER.join(",").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    // Quoted newlines and quotes.
    let abstract_ = "First paragraph with \"quotes\", commas.\r\n\r\nSecond paragraph.";
    bytes.extend_from_slice(award_line(&[("Abstract", abstract_)]).as_bytes());
    bytes.extend_from_slice(b"\r\n");
    // Windows-1252 bytes (0x93/0x94 curly quotes, 0xE9 é).
    let line = award_line(&[("Abstract", "PLACEHOLDER"), ("Agency Tracking Number", "2")]);
    let line = line.replace("PLACEHOLDER", "\u{1}").into_bytes();
    let pos = line.iter().position(|&b| b == 1).unwrap();
    bytes.extend_from_slice(&line[..pos]);
    bytes.extend_from_slice(b"The \x93smart\x94 caf\xe9");
    bytes.extend_from_slice(&line[pos + 1..]);
    bytes.extend_from_slice(b"\r\n");
    // A short row (trailing optional columns missing) and a long one.
    let full = award_line(&[("Agency Tracking Number", "3")]);
    let cut: Vec<&str> = full.split(',').take(HEADER.len() - 4).collect();
    bytes.extend_from_slice(cut.join(",").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(
        format!(
            "{},EXTRA\r\n",
            award_line(&[("Agency Tracking Number", "4")])
        )
        .as_bytes(),
    );
    // A very long field.
    let long = "x".repeat(200_000);
    bytes.extend_from_slice(
        award_line(&[("Abstract", &long), ("Agency Tracking Number", "5")]).as_bytes(),
    );
    bytes.extend_from_slice(b"\r\n");
    wd.write("edge.csv", &bytes);

    let checks = ingest(&wd, "edge.csv", 3);
    assert_eq!(checks["counts"]["input_rows"], 5);
    assert_eq!(checks["counts"]["written"], 4);
    assert_eq!(checks["counts"]["rejected"], 1);
    let awards = wd.awards();
    assert_eq!(
        awards[0].company, "Acme Photonics, Inc.",
        "BOM must not leak into the first header"
    );
    assert_eq!(awards[0].r#abstract.as_deref(), Some(abstract_));
    assert_eq!(
        awards[1].r#abstract.as_deref(),
        Some("The \u{201c}smart\u{201d} caf\u{e9}")
    );
    assert_eq!(awards[1].warning_codes(), vec!["non_utf8_decoded"]);
    assert_eq!(
        awards[1].source_line, 5,
        "line numbers count the embedded newlines"
    );
    assert_eq!(awards[2].warning_codes(), vec!["short_row"]);
    assert_eq!(awards[3].r#abstract.as_ref().unwrap().len(), 200_000);
    let rej = &wd.ndjson(REJECTS)[0];
    assert_eq!(rej["reasons"][0]["code"], "too_many_fields");
    assert_eq!(rej["raw"]["_extra_1"], "EXTRA");
}

#[test]
fn gzip_input_gives_identical_outputs() {
    let wd = Workdir::new();
    let csv = awards_csv(&[
        &[],
        &[("Agency Tracking Number", "2"), ("Abstract", "multi\nline")],
    ]);
    wd.write("a.csv", &csv);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).unwrap();
    wd.write("b.dat", gz.finish().unwrap());
    wd.run(
        &[
            "ingest",
            "--input",
            "a.csv",
            "--out-dir",
            "plain",
            "--format",
            "both",
        ],
        0,
    );
    wd.run(
        &[
            "ingest",
            "--input",
            "b.dat",
            "--out-dir",
            "gz",
            "--format",
            "both",
        ],
        0,
    );
    for f in ["sbir_awards.parquet", "sbir_awards.ndjson"] {
        assert_eq!(
            std::fs::read(wd.path(&format!("plain/{f}"))).unwrap(),
            std::fs::read(wd.path(&format!("gz/{f}"))).unwrap(),
            "{f}"
        );
    }
    let checks = wd.json("gz/sbir_awards.checks.json");
    assert_eq!(checks["counts"]["written"], 2);
    assert_eq!(
        checks["inputs"][0]["bytes"],
        std::fs::metadata(wd.path("b.dat")).unwrap().len()
    );
}

#[test]
fn header_matching_tolerates_case_order_and_extras() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        "award amount,EXTRA COLUMN,company,AWARD_TITLE,agency,phase,Program,award year\n\"$50,000\",zzz,Acme,T,NSF,Phase I,SBIR,2020\n",
    );
    let checks = ingest(&wd, "a.csv", 0);
    assert_eq!(checks["details"]["extra_columns"][0], "EXTRA COLUMN");
    assert!(
        checks["details"]["missing_optional_columns"]
            .as_array()
            .unwrap()
            .len()
            > 30
    );
    assert_eq!(wd.awards()[0].award_amount, 50_000.0);
}

#[test]
fn missing_required_column_is_usage_error_naming_it() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        "Company,Award Title,Agency,Phase,Program,Award Year\nA,B,C,Phase I,SBIR,2020\n",
    );
    let out = wd.run(&["ingest", "--input", "a.csv"], 2);
    let err = stderr(&out);
    assert!(
        err.contains("missing required column(s) Award Amount"),
        "{err}"
    );
    assert!(err.contains("a.csv"), "{err}");
    assert!(
        wd.list("data/processed").is_empty(),
        "no outputs: {:?}",
        wd.list("data/processed")
    );
}

#[test]
fn missing_or_empty_input_is_usage_error() {
    let wd = Workdir::new();
    let out = wd.run(&["ingest", "--input", "nope.csv"], 2);
    assert!(stderr(&out).contains("nope.csv"));
    wd.write("empty.csv", "");
    let out = wd.run(&["ingest", "--input", "empty.csv"], 2);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
}

#[test]
fn failed_run_leaves_previous_outputs_and_no_partial_files() {
    let wd = Workdir::new();
    wd.write("good.csv", awards_csv(&[&[]]));
    wd.run(&["ingest", "--input", "good.csv"], 0);
    let before = std::fs::read(wd.path("data/processed/sbir_awards.parquet")).unwrap();

    // A gzip stream cut off in the middle fails mid-read: an unusable input.
    let mut rows: Vec<Vec<(&str, &str)>> = Vec::new();
    let numbers: Vec<String> = (0..3000).map(|i| format!("T-{i}")).collect();
    for n in &numbers {
        rows.push(vec![("Agency Tracking Number", n.as_str())]);
    }
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(awards_csv(&refs).as_bytes()).unwrap();
    let full = gz.finish().unwrap();
    wd.write("cut.csv.gz", &full[..full.len() / 2]);
    // An unusable input (exit 2), named with the line where reading stopped.
    let err = stderr(&wd.run(&["ingest", "--input", "cut.csv.gz"], 2));
    assert!(
        err.contains("cut.csv.gz") && err.contains("truncated or corrupt"),
        "{err}"
    );
    let line: u64 = err
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {err}"));
    assert!(
        line > 100,
        "the line reading stopped at, not the block's first: {err}"
    );
    assert_eq!(
        std::fs::read(wd.path("data/processed/sbir_awards.parquet")).unwrap(),
        before
    );
    assert_eq!(
        wd.list("data/processed"),
        vec![
            "sbir_awards.checks.json",
            "sbir_awards.parquet",
            "sbir_awards.rejects.ndjson"
        ],
        "no temporary files left behind"
    );
}

#[test]
fn counts_reconcile_with_duplicates_and_key_collisions() {
    let wd = Workdir::new();
    let a: &[(&str, &str)] = &[];
    let same_key_other_amount: &[(&str, &str)] = &[("Award Amount", "99000")];
    let bad: &[(&str, &str)] = &[("Phase", "?")];
    wd.write(
        "a.csv",
        awards_csv(&[
            a,
            a,
            same_key_other_amount,
            a,
            bad,
            &[("Agency Tracking Number", "Z")],
        ]),
    );
    let checks = ingest(&wd, "a.csv", 3);
    let c = &checks["counts"];
    assert_eq!(c["input_rows"], 6);
    assert_eq!(c["duplicates"], 2);
    assert_eq!(c["key_collisions"], 1);
    assert_eq!(c["rejected"], 1);
    assert_eq!(c["written"], 3);
    assert_eq!(checks["details"]["reconciled"], true);
    assert_eq!(
        checks["details"]["duplicate_examples"][0]["duplicate_of_line"],
        2
    );
    let awards = wd.awards();
    assert_eq!(awards[1].award_id, format!("{}-2", awards[0].award_id));
    assert!(awards[1].warning_codes().contains(&"award_key_collision"));
}

#[test]
fn limit_and_sample_are_reproducible() {
    let wd = Workdir::new();
    let numbers: Vec<String> = (0..50).map(|i| format!("T-{i}")).collect();
    let rows: Vec<Vec<(&str, &str)>> = numbers
        .iter()
        .map(|n| vec![("Agency Tracking Number", n.as_str())])
        .collect();
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    wd.write("a.csv", awards_csv(&refs));
    let checks = {
        wd.run(&["ingest", "--input", "a.csv", "--limit", "7"], 0);
        wd.json(CHECKS)
    };
    assert_eq!(checks["counts"]["input_rows"], 7);
    assert_eq!(
        wd.awards()
            .last()
            .unwrap()
            .agency_tracking_number
            .as_deref(),
        Some("T-6")
    );

    let sample = |seed: &str| {
        wd.run(
            &[
                "ingest", "--input", "a.csv", "--sample", "10", "--seed", seed,
            ],
            0,
        );
        wd.awards()
            .iter()
            .map(|a| a.source_line)
            .collect::<Vec<_>>()
    };
    let first = sample("1");
    assert_eq!(first.len(), 10);
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "sample keeps file order"
    );
    assert_eq!(first, sample("1"));
    assert_ne!(first, sample("2"));
}

/// The kind of the first data page of each column of a Parquet file's first row group.
fn data_page_kinds(path: &std::path::Path) -> Vec<parquet::basic::PageType> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let group = reader.get_row_group(0).unwrap();
    (0..group.num_columns())
        .map(|c| {
            let mut pages = group.get_column_page_reader(c).unwrap();
            std::iter::from_fn(|| pages.get_next_page().unwrap())
                .map(|p| p.page_type())
                .find(|t| *t != parquet::basic::PageType::DICTIONARY_PAGE)
                .unwrap()
        })
        .collect()
}

#[test]
fn data_pages_are_v2_unless_v1_is_asked_for_and_hold_the_same_rows() {
    use parquet::basic::PageType;
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        awards_csv(&[&[], &[("Agency Tracking Number", "2"), ("Branch", "")]]),
    );
    wd.run(&["ingest", "--input", "a.csv", "--out-dir", "v2"], 0);
    let mut cmd = wd.cmd(&["ingest", "--input", "a.csv", "--out-dir", "v1"]);
    cmd.env("SBIR_ETL__OUTPUT__PARQUET_DATA_PAGE", "v1");
    wd.run_expect(cmd, 0);
    let v2 = data_page_kinds(&wd.path("v2/sbir_awards.parquet"));
    let v1 = data_page_kinds(&wd.path("v1/sbir_awards.parquet"));
    assert!(v2.iter().all(|t| *t == PageType::DATA_PAGE_V2), "{v2:?}");
    assert!(v1.iter().all(|t| *t == PageType::DATA_PAGE), "{v1:?}");
    assert_eq!(
        wd.parquet("v2/sbir_awards.parquet"),
        wd.parquet("v1/sbir_awards.parquet")
    );
}

#[test]
fn ndjson_format_holds_the_same_rows_with_explicit_nulls() {
    let wd = Workdir::new();
    wd.write(
        "a.csv",
        awards_csv(&[&[], &[("Agency Tracking Number", "2"), ("Branch", "")]]),
    );
    wd.run(&["ingest", "--input", "a.csv", "--format", "ndjson"], 0);
    assert!(!wd.exists("data/processed/sbir_awards.parquet"));
    let rows = wd.ndjson("data/processed/sbir_awards.ndjson");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["proposal_award_date"], "2021-06-15");
    assert!(rows[1]["branch"].is_null());
    assert_eq!(
        rows[0].as_object().unwrap().len(),
        rows[1].as_object().unwrap().len()
    );
}

#[test]
fn checks_file_has_the_shared_envelope() {
    let wd = Workdir::new();
    wd.write("a.csv", awards_csv(&[&[]]));
    let checks = ingest(&wd, "a.csv", 0);
    for key in [
        "stage",
        "status",
        "counts",
        "gates",
        "metrics",
        "inputs",
        "outputs",
        "config_digest",
        "tool_version",
        "run_id",
        "started_at",
        "finished_at",
        "details",
    ] {
        assert!(checks.get(key).is_some(), "missing {key}");
    }
    assert_eq!(checks["stage"], "ingest");
    assert!(checks["metrics"]["peak_rss_mb"].as_f64().unwrap() > 1.0);
    assert_eq!(checks["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(checks["details"]["completeness"]["company"], 1.0);
    assert_eq!(checks["details"]["completeness"]["contract_end_date"], 0.0);
}
