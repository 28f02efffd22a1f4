//! Real SBIR.gov exports (excerpts in `tests/fixtures/real/`, see PROVENANCE.md): every row
//! ingests or is rejected for a missing required value, and named rows parse to the values
//! their source text states.

use crate::workdir::Workdir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real");
const CHECKS: &str = "data/processed/sbir_awards.checks.json";

fn ingest_fixture(name: &str) -> (Workdir, serde_json::Value) {
    let wd = Workdir::new();
    let input = format!("{FIXTURES}/{name}");
    wd.run(&["ingest", "--input", &input], 0);
    let checks = wd.json(CHECKS);
    (wd, checks)
}

#[test]
fn bulk_csv_of_2020_keeps_every_award_with_a_required_value() {
    let (wd, checks) = ingest_fixture("sbir_1k_sample_excerpt.csv");
    assert_eq!(checks["counts"]["input_rows"], 113);
    // Three awards without a title, one without an amount; one exact repeat that differs only
    // in the unmapped `id` column.
    assert_eq!(checks["counts"]["rejected"], 4);
    assert_eq!(checks["details"]["rejects_by_code"]["missing_required"], 4);
    assert_eq!(checks["counts"]["duplicates"], 1);
    assert_eq!(checks["counts"]["written"], 108);
    assert_eq!(checks["details"]["input_format"], "csv");
    let w = &checks["details"]["warnings_by_code"];
    assert_eq!(w["zero_amount"], 4);
    assert_eq!(w["duns_zero_padded"], 3);
    assert!(w["quotes_removed"].as_u64().unwrap() > 50, "{w}");

    let awards = wd.awards();
    let by_company = |name: &str| {
        awards
            .iter()
            .find(|a| a.company == name)
            .unwrap_or_else(|| panic!("{name} not kept"))
    };
    let first = by_company("EXPEDITION TECHNOLOGY, INC.");
    assert_eq!(first.duns.as_deref(), Some("079179794"));
    assert_eq!(first.award_amount, 139882.0);
    assert_eq!(first.proposal_award_date, Some(18190)); // 10/21/2019
    assert_eq!(first.solicitation_year, Some(2019)); // "2019.0"
    assert_eq!(first.number_employees, Some(34)); // "34.0"
    assert_eq!(first.woman_owned, Some(false)); // the `Women Owned` header
    let dunsw = first
        .warnings
        .iter()
        .find(|w| w.code == "quotes_removed")
        .unwrap();
    assert_eq!(dunsw.field.as_deref(), Some("Duns"));
    assert_eq!(dunsw.value.as_deref(), Some("'079179794'"));

    // `'51-041170'`: eight digits with a dash, zero-padded and said so.
    let em = by_company("EM PHOTONICS INC");
    assert_eq!(em.duns.as_deref(), Some("051041170"));
    assert!(em.warning_codes().contains(&"duns_zero_padded"));
    // A $0 award of 2001-2004 is kept, with a warning.
    let giner = awards
        .iter()
        .find(|a| a.company == "GINER INC" && a.award_amount == 0.0)
        .unwrap();
    assert!(giner.warning_codes().contains(&"zero_amount"));
    // `<p>` and `&rsquo;` are gone from the abstract; the warning says what was cleaned.
    let hat = by_company("Human Automation Teaming Solutions, Inc");
    let abs = hat.r#abstract.as_deref().unwrap();
    assert!(
        abs.starts_with("UTM is a key NASA initiative, and one of UTM\u{2019}s key"),
        "{abs}"
    );
    assert!(!abs.contains("<p>") && !abs.contains("&rsquo;"));
    let html = hat
        .warnings
        .iter()
        .find(|w| w.code == "html_cleaned")
        .unwrap();
    assert_eq!(html.field.as_deref(), Some("Abstract"));
    assert!(html.value.as_deref().unwrap().contains("&rsquo;"));
}

#[test]
fn api_json_ingests_with_snake_case_names_and_month_name_dates() {
    let (wd, checks) = ingest_fixture("sbir_search_results2_excerpt.json");
    assert_eq!(checks["counts"]["input_rows"], 117);
    assert_eq!(checks["counts"]["rejected"], 0);
    assert_eq!(checks["counts"]["written"], 117);
    assert_eq!(checks["details"]["input_format"], "json");
    assert_eq!(
        checks["details"]["extra_columns"],
        serde_json::json!(["research_keywords"])
    );

    let awards = wd.awards();
    let first = &awards[0];
    assert_eq!(first.company, "Plasma Processes, LLC");
    assert_eq!(
        first.source_line, 0,
        "a JSON record's position is its array index"
    );
    assert_eq!(first.proposal_award_date, Some(17791)); // September 17, 2018
    assert_eq!(first.contract_end_date, Some(18500)); // August 26, 2020
    assert_eq!(first.award_amount, 1_000_000.0);
    assert_eq!(first.duns.as_deref(), Some("799114574"));
    assert_eq!(first.hubzone_owned, Some(true));
    assert_eq!(first.zip.as_deref(), Some("35811-1558"));
    assert_eq!(first.pi_name.as_deref(), Some("John S O'Dell"));

    let bayspec = awards
        .iter()
        .find(|a| a.company == "Bayspec, Inc.")
        .unwrap();
    assert_eq!(bayspec.zip.as_deref(), Some("95131"));
    let z = bayspec
        .warnings
        .iter()
        .find(|w| w.code == "zip_suffix_dropped")
        .unwrap();
    assert_eq!(z.value.as_deref(), Some("95131-Array"));
    // Entities, double-encoded ones too, are decoded in names and titles.
    let ams = awards
        .iter()
        .find(|a| {
            a.award_title
                .starts_with("Health Monitoring of Digital I&C Systems")
        })
        .unwrap();
    assert_eq!(ams.company, "Analysis & Measurement Serv Corp");
    assert!(
        awards
            .iter()
            .any(|a| a.award_title.contains("brewer's yeast"))
    );
    assert!(awards.iter().all(|a| !a.award_title.contains("&amp;")));
}

#[test]
fn ndjson_and_gzip_json_read_alike_and_bad_records_are_kept_as_rejects() {
    let wd = Workdir::new();
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/sbir_search_results2_excerpt.json")).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    // 40 awards and two bad records (under the 5 % reject gate).
    let mut lines: Vec<String> = records[..40].iter().map(|r| r.to_string()).collect();
    lines.insert(2, "{not json".to_string());
    lines.push("[1, 2]".to_string());
    wd.write("a.ndjson", lines.join("\n") + "\n");
    wd.run(&["ingest", "--input", "a.ndjson"], 0);
    let checks = wd.json(CHECKS);
    assert_eq!(checks["details"]["input_format"], "ndjson");
    assert_eq!(checks["counts"]["written"], 40);
    assert_eq!(checks["counts"]["rejected"], 2);
    let rejects = wd.ndjson("data/processed/sbir_awards.rejects.ndjson");
    assert_eq!(rejects[0]["line"], 3);
    assert_eq!(rejects[0]["reasons"][0]["code"], "invalid_record");
    assert_eq!(rejects[0]["raw"]["(other keys)"], "{not json");
    assert_eq!(rejects[1]["line"], 42);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    wd.write("a.json.bin", gz.finish().unwrap());
    wd.run(&["ingest", "--input", "a.json.bin"], 0);
    let checks = wd.json(CHECKS);
    assert_eq!(checks["details"]["input_format"], "json");
    assert_eq!(checks["counts"]["written"], 117);
}

#[test]
fn spreadsheet_saved_workbook_forms_parse_without_shifting_digits() {
    // The forms a workbook re-saved by a spreadsheet or pandas takes: an older header
    // (`DUNS`, `Hubzone Owned`, `Woman Owned`), MM-DD-YYYY dates, floats for DUNS and years.
    let wd = Workdir::new();
    wd.write(
        "w.csv",
        "Company,Award Title,Agency,Phase,Program,Award Year,Award Amount,DUNS,Hubzone Owned,Woman Owned,Proposal Award Date,Zip\n\
         A Inc,T1,NASA,Phase I,SBIR,2017.0,124999.00,77990047.0,N,Y,02-21-2017,98383-\n\
         B Inc,T2,NASA,Phase II,STTR,2017,\"$1,234.56\",4820341.0,Y,N,Oct 16 2017,94111-Array\n",
    );
    wd.run(&["ingest", "--input", "w.csv"], 0);
    let awards = wd.awards();
    assert_eq!(awards[0].duns.as_deref(), Some("077990047"));
    assert_eq!(awards[1].duns.as_deref(), Some("004820341"));
    assert_eq!(awards[0].award_year, 2017);
    assert_eq!(awards[0].award_amount, 124999.0);
    assert_eq!(awards[1].award_amount, 1234.56);
    assert_eq!(awards[0].proposal_award_date, Some(17218)); // 2017-02-21
    assert_eq!(awards[1].proposal_award_date, Some(17455)); // 2017-10-16
    assert_eq!(awards[0].zip.as_deref(), Some("98383"));
    assert_eq!(awards[1].zip.as_deref(), Some("94111"));
    assert_eq!(awards[0].hubzone_owned, Some(false));
    assert_eq!(awards[0].woman_owned, Some(true));
    let codes = awards[0].warning_codes();
    assert!(codes.contains(&"spreadsheet_number_form") && codes.contains(&"duns_zero_padded"));
}

#[test]
fn a_binary_file_is_named_as_such_without_its_bytes() {
    let wd = Workdir::new();
    let input = format!("{FIXTURES}/sbir_1k_sample_excerpt.csv");
    wd.run(&["ingest", "--input", &input], 0);
    // The award table itself, given back as input: Parquet, not CSV.
    std::fs::copy(
        wd.path("data/processed/sbir_awards.parquet"),
        wd.path("a.parquet"),
    )
    .unwrap();
    let out = wd.run(&["ingest", "--input", "a.parquet"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not look like a CSV or JSON awards export"),
        "{err}"
    );
    assert!(err.len() < 1500, "{} bytes: {err}", err.len());
}

#[test]
fn json_repeats_that_differ_only_in_keys_the_header_lacks_are_dropped() {
    let wd = Workdir::new();
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/sbir_search_results2_excerpt.json")).unwrap();
    let mut records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    // Only mapped keys, so every header column but the reader's own fields is known.
    for r in &mut records {
        r.as_object_mut().unwrap().remove("research_keywords");
    }
    let mut lines: Vec<String> = records[..40].iter().map(|r| r.to_string()).collect();
    // Record 0 again, with a key the first record lacks (it lands in `(other keys)`).
    let mut again = records[0].clone();
    again["export_id"] = serde_json::json!("x-17");
    lines.push(again.to_string());
    wd.write("a.ndjson", lines.join("\n") + "\n");
    wd.run(&["ingest", "--input", "a.ndjson"], 0);
    let checks = wd.json(CHECKS);
    assert_eq!(checks["counts"]["duplicates"], 1, "{checks}");
    assert_eq!(checks["counts"]["written"], 40);
}
