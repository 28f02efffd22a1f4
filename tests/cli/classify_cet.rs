//! `sbir classify-cet`: taxonomy checks, both scorers on hand-written abstracts, evidence,
//! supporting areas, priors, the model artifact and its fallbacks, profiles, drift, sampling.

use serde_json::Value;

use crate::workdir::{Workdir, awards_csv, real_model_missing, stderr, stdout};

/// Ingests `rows` (column → value changes on a valid award) into the default output folder.
fn ingest(wd: &Workdir, rows: &[&[(&str, &str)]]) {
    wd.write("in.csv", awards_csv(rows));
    wd.run(&["ingest", "--input", "in.csv"], 0);
}

/// Every classification row as JSON, in file order (rules scorer, expecting exit `code`).
fn classifications(wd: &Workdir, code: i32) -> Vec<Value> {
    wd.run(
        &[
            "classify-cet",
            "--scorer",
            "rules",
            "--format",
            "ndjson",
            "--out-dir",
            "ndjson",
            "--awards",
            "data/processed/sbir_awards.parquet",
        ],
        code,
    );
    wd.ndjson("ndjson/cet_award_classifications.ndjson")
}

/// A valid award with this tracking number, title and abstract.
type Row = Vec<(&'static str, &'static str)>;

fn award(id: &'static str, title: &'static str, abs: &'static str) -> Row {
    vec![
        ("Agency Tracking Number", id),
        ("Award Title", title),
        ("Abstract", abs),
    ]
}

fn ingest_rows(wd: &Workdir, rows: &[Row]) {
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    ingest(wd, &refs);
}

#[test]
fn check_taxonomy_writes_the_table() {
    let wd = Workdir::new();
    let out = wd.run(&["classify-cet", "--check-taxonomy"], 0);
    assert!(stdout(&out).contains("data/processed/cet_taxonomy.parquet"));
    let rows: usize = wd
        .parquet("data/processed/cet_taxonomy.parquet")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 21);
    let checks = wd.json("data/processed/cet_taxonomy.checks.json");
    assert_eq!(checks["status"], "pass");
    assert_eq!(checks["counts"]["areas"], 21);
}

#[test]
fn taxonomy_problems_are_named() {
    let wd = Workdir::new();
    wd.write(
        "bad.yaml",
        r#"version: "t1"
effective_date: "2024-01-01"
shared_keywords:
  - {phrase: drone, areas: [a, b], note: ""}
areas:
  - {id: a, name: A, definition: d, keywords: [laser, Lasers beams]}
  - {id: a, name: A2, definition: d, keywords: [x]}
  - {id: b, name: B, definition: d, parent: nope, keywords: [Laser, drone]}
  - {id: c, name: C, definition: d, keywords: []}
"#,
    );
    let mut cmd = wd.cmd(&["classify-cet", "--check-taxonomy"]);
    cmd.env("SBIR_ETL__CET__TAXONOMY", "bad.yaml");
    wd.run_expect(cmd, 3);
    let checks = wd.json("data/processed/cet_taxonomy.checks.json");
    assert_eq!(checks["status"], "fail");
    let issues: Vec<String> = checks["details"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{} {}", i["area"], i["problem"].as_str().unwrap()))
        .collect();
    let all = issues.join("\n");
    for want in [
        "duplicate id",
        "parent `nope`",
        "no keywords",
        "\"laser\" is claimed by a and b",
        "shared keyword \"drone\" has no note",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    assert!(!wd.exists("data/processed/cet_taxonomy.parquet"));

    // Classifying with it is a usage error naming the file.
    ingest(&wd, &[&[]]);
    let mut cmd = wd.cmd(&["classify-cet"]);
    cmd.env("SBIR_ETL__CET__TAXONOMY", "bad.yaml");
    let out = wd.run_expect(cmd, 2);
    assert!(stderr(&out).contains("bad.yaml") && stderr(&out).contains("duplicate id"));
}

#[test]
fn rules_scorer_on_hand_written_abstracts() {
    let wd = Workdir::new();
    ingest_rows(
        &wd,
        &[
            award(
                "1",
                "Scramjet inlet testing for Mach 5 flight",
                "We will test a scramjet inlet. Hypersonic vehicles need it.",
            ),
            award(
                "2",
                "Explainable AI for mission planning",
                "The work advances explainable AI and adversarial robustness of planners.",
            ),
            award(
                "3",
                "Quantum dot coatings for infrared sensors",
                "We develop quantum dot infrared sensors with high quantum efficiency.",
            ),
            award(
                "4",
                "Trail maintenance",
                "The team said they maintain the trail; the rain fails to contain it.",
            ),
            award(
                "5",
                "Logistics planning",
                "Dr. Smith will apply machine learning, e.g. gradient boosting, to logistics. Results follow in a report.",
            ),
            award(
                "6",
                "Satellite communications using deep learning",
                "A software defined radio with deep learning links spacecraft. Satellite communications improve.",
            ),
            award("7", "Hypersonic", "A test article for the range."),
        ],
    );
    // One award of seven has no CET evidence: it gets no area, an answer (exit 0); the
    // success gate counts awards that could be scored, the classified share only warns.
    let rows = classifications(&wd, 0);
    let checks = wd.json("ndjson/cet_award_classifications.checks.json");
    assert_eq!(checks["counts"]["num_scored"], 7);
    assert_eq!(checks["counts"]["num_classified"], 6);
    assert_eq!(checks["status"], "pass", "{checks}");
    let primary: Vec<Value> = rows.iter().map(|r| r["primary_cet_id"].clone()).collect();
    assert_eq!(primary[0], "hypersonics");
    assert_eq!(primary[1], "trusted_ai_and_autonomy");
    assert_eq!(
        primary[2], "advanced_and_networked_sensing_and_signature_management",
        "quantum dot / quantum efficiency are negative phrases of quantum"
    );
    assert_eq!(primary[3], Value::Null, "'ai' must not match inside 'said'");
    assert_eq!(rows[3]["band"], "none");
    // One word alone scores High (a weight-2 phrase in the title) but is never a High band.
    assert_eq!(primary[6], "hypersonics");
    assert!(rows[6]["primary_score"].as_f64().unwrap() >= 70.0);
    assert_eq!(rows[6]["band"], "Medium");
    assert_eq!(primary[4], "artificial_intelligence");
    assert_eq!(
        rows[4]["evidence"][0]["excerpt"],
        "Dr. Smith will apply machine learning, e.g. gradient boosting, to logistics."
    );
    assert_eq!(rows[4]["evidence"][0]["source"], "abstract");
    assert_eq!(rows[4]["evidence"][0]["phrase"], "machine learning");
    assert_eq!(rows[0]["evidence"][0]["source"], "title");
    // Supporting areas: at most 3, each >= 10 and at least 5 below the primary.
    assert!(!rows[5]["supporting"].as_array().unwrap().is_empty());
    for r in &rows[..6] {
        let p = r["primary_score"].as_f64().unwrap();
        let sup = r["supporting"].as_array().unwrap();
        assert!(sup.len() <= 3);
        for s in sup {
            let v = s["score"].as_f64().unwrap();
            assert!(v >= 10.0 && v <= p - 5.0, "{r}");
        }
        assert!(r["evidence"].as_array().unwrap().len() <= 3);
        let band = match p {
            p if p >= 70.0 => "High",
            p if p >= 40.0 => "Medium",
            _ => "Low",
        };
        if !r["primary_cet_id"].is_null() {
            assert_eq!(r["band"], band, "{r}");
        }
    }
}

#[test]
fn agency_priors_boost_areas_with_evidence() {
    let wd = Workdir::new();
    let text = "A hypersonic test article.";
    ingest(
        &wd,
        &[
            &[
                ("Agency Tracking Number", "1"),
                ("Award Title", "Test article"),
                ("Abstract", text),
            ],
            &[
                ("Agency Tracking Number", "2"),
                ("Award Title", "Test article"),
                ("Abstract", text),
                ("Agency", "National Science Foundation"),
                ("Branch", ""),
            ],
        ],
    );
    let rows = classifications(&wd, 0);
    let dod = rows[0]["primary_score"].as_f64().unwrap();
    let nsf = rows[1]["primary_score"].as_f64().unwrap();
    assert_eq!(rows[0]["primary_cet_id"], "hypersonics");
    assert!((dod - nsf - 15.0).abs() < 0.02, "{dod} vs {nsf}");
}

#[test]
fn model_trains_scores_and_falls_back() {
    let wd = Workdir::new();
    wd.run(
        &[
            "sample-data",
            "--awards",
            "500",
            "--recipients",
            "50",
            "--out",
            "gen",
        ],
        0,
    );
    wd.run(&["ingest", "--input", "gen/sbir_awards.csv"], 0);
    let out = wd.run(
        &[
            "classify-cet",
            "train",
            "--labels",
            "gen/award_cet_labels.csv",
        ],
        0,
    );
    let version = stdout(&out).lines().last().unwrap().to_string();
    assert!(version.starts_with("cet_classifier_v1-"), "{version}");
    let model = wd.json("artifacts/models/cet_classifier_v1.json");
    assert_eq!(model["model"]["taxonomy_version"], "NSTC-2024.02");
    // The 21 areas and "none" (no area).
    assert_eq!(model["model"]["classes"].as_array().unwrap().len(), 22);

    // Deterministic: a second training gives the same weights.
    wd.run(
        &[
            "classify-cet",
            "train",
            "--labels",
            "gen/award_cet_labels.csv",
            "--model",
            "again.json",
        ],
        0,
    );
    assert_eq!(
        wd.json("again.json")["model"]["weights"],
        model["model"]["weights"]
    );

    // The model scorer classifies, with evidence.
    wd.run(&["classify-cet", "--scorer", "model"], 0);
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(checks["details"]["scorer"], "model");
    assert_eq!(checks["details"]["model_version"], version.as_str());
    assert_eq!(checks["status"], "pass", "{checks}");
    assert!(
        checks["details"]["evidence_coverage_rate"]
            .as_f64()
            .unwrap()
            > 0.95
    );

    // On hand-written text with none of the AI keywords, only paraphrases the model learned.
    wd.write(
        "hand.csv",
        awards_csv(&[&[
            ("Award Title", "Learned models for depot logistics"),
            (
                "Abstract",
                "We train classifiers on maintenance records. Predictive models learned from data drive data-driven inference about part failures.",
            ),
        ]]),
    );
    wd.run(&["ingest", "--input", "hand.csv", "--out-dir", "hand"], 0);
    let classify_hand = |scorer: &str, code: i32| {
        let args = [
            "classify-cet",
            "--scorer",
            scorer,
            "--awards",
            "hand/sbir_awards.parquet",
            "--out-dir",
            "hand",
            "--format",
            "ndjson",
        ];
        wd.run(&args, code);
        wd.ndjson("hand/cet_award_classifications.ndjson").remove(0)
    };
    let hand = classify_hand("model", 0);
    assert_eq!(hand["primary_cet_id"], "artificial_intelligence", "{hand}");
    assert!(
        !hand["evidence"].as_array().unwrap().is_empty(),
        "model evidence"
    );
    let hand = classify_hand("rules", 0);
    assert_eq!(
        hand["primary_cet_id"],
        Value::Null,
        "no keyword: rules give no area"
    );
    assert_eq!(hand["band"], "none");
    // "No area" is an answer: only the classified-share gate warns.
    let checks = wd.json("hand/cet_award_classifications.checks.json");
    assert_eq!(checks["status"], "warn", "{checks}");
    let failed: Vec<&str> = checks["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["passed"] == false)
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"classified_share"), "{checks}");

    // Evaluation reports both scorers.
    wd.run(
        &[
            "classify-cet",
            "evaluate",
            "--labels",
            "gen/award_cet_labels.csv",
            "--out",
            "eval.json",
        ],
        0,
    );
    let eval = wd.json("eval.json");
    let scorers: Vec<&Value> = eval["scorers"].as_array().unwrap().iter().collect();
    assert_eq!(scorers.len(), 2);
    for s in &scorers {
        assert!(s["top1_accuracy"].as_f64().unwrap() > 0.8, "{s}");
        // The 21 areas, then "none" when an award was labelled or classified as no area.
        let per_area = s["per_area"].as_array().unwrap();
        assert!(
            per_area.len() == 21 || per_area[21]["cet_id"] == "none",
            "{s}"
        );
        // Every miss is listed by award, and only misses: as many as top-1 leaves.
        let misses = s["misses"].as_array().unwrap();
        let awards = s["awards"].as_f64().unwrap();
        let wrong = (awards * (1.0 - s["top1_accuracy"].as_f64().unwrap())).round();
        assert_eq!(misses.len() as f64, wrong, "{s}");
        for m in misses {
            assert!(m["award_id"].as_str().is_some_and(|id| !id.is_empty()));
            assert_ne!(m["labelled"], m["predicted"], "{m}");
        }
    }

    // A tampered artifact fails its checksum: fallback to rules, said in the checks file.
    let text = wd.read("artifacts/models/cet_classifier_v1.json");
    let field = "\"tool_version\":\"";
    let at = text.find(field).unwrap() + field.len();
    let tampered = format!("{}9.{}", &text[..at], &text[at..]);
    wd.write("artifacts/models/cet_classifier_v1.json", tampered);
    wd.run(&["classify-cet"], 0);
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(checks["details"]["reason"], "model_load_failed");
    assert_eq!(checks["details"]["scorer"], "rules");
    assert_eq!(checks["status"], "warn");
    assert!(
        checks["details"]["fallback"]["detail"]
            .as_str()
            .unwrap()
            .contains("checksum mismatch")
    );

    // --require-model: empty, schema-compatible output and exit 3.
    let mut cmd = wd.cmd(&["classify-cet", "--require-model"]);
    cmd.env("CET_MODEL_PATH", "missing.json");
    wd.run_expect(cmd, 3);
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(checks["reason"], "model_missing");
    assert_eq!(checks["details"]["reason"], "model_missing");
    let batches = wd.parquet("data/processed/cet_award_classifications.parquet");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    // --bootstrap trains without labels.
    let out = wd.run(
        &[
            "classify-cet",
            "train",
            "--bootstrap",
            "--model",
            "boot.json",
        ],
        0,
    );
    assert!(stdout(&out).contains("boot.json"));
    let boot = wd.json("boot.json");
    assert!(
        boot["model"]["trained_on"]["source"]
            .as_str()
            .unwrap()
            .starts_with("bootstrap:")
    );
}

#[test]
fn company_profiles_add_up() {
    let wd = Workdir::new();
    let ai = "We apply machine learning and deep learning.";
    let q = "We build superconducting qubits for quantum computing.";
    ingest(
        &wd,
        &[
            &[
                ("Agency Tracking Number", "1"),
                ("Abstract", ai),
                ("Award Title", "Learning"),
                ("Award Amount", "100"),
                ("Award Year", "2020"),
            ],
            &[
                ("Agency Tracking Number", "2"),
                ("Abstract", ai),
                ("Award Title", "Learning"),
                ("Award Amount", "300"),
                ("Award Year", "2022"),
            ],
            &[
                ("Agency Tracking Number", "3"),
                ("Abstract", q),
                ("Award Title", "Qubits"),
                ("Award Amount", "600"),
                ("Award Year", "2021"),
            ],
            &[
                ("Agency Tracking Number", "4"),
                ("Company", "Beta Labs, LLC"),
                ("UEI", ""),
                ("Duns", ""),
                ("Abstract", q),
                ("Award Title", "Qubits"),
                ("Award Amount", "50"),
            ],
        ],
    );
    wd.run(
        &["classify-cet", "--scorer", "rules", "--format", "ndjson"],
        0,
    );
    let p = wd.ndjson("data/processed/cet_company_profiles.ndjson");
    assert_eq!(p.len(), 2);
    let acme = &p[0];
    assert_eq!(acme["company_key"], "ABC123DEF456");
    assert_eq!(acme["key_type"], "uei");
    assert_eq!(acme["award_count"], 3);
    assert_eq!(acme["total_award_amount"], 1000.0);
    assert_eq!(acme["dominant_cet_id"], "artificial_intelligence");
    assert!((acme["specialization_score"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(acme["first_award_year"], 2020);
    assert_eq!(acme["last_award_year"], 2022);
    let ai_area = acme["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["cet_id"] == "artificial_intelligence")
        .unwrap();
    assert!((ai_area["award_share"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!((ai_area["dollar_share"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    // Shares of AI by year: 2020 → 1, 2021 → 0, 2022 → 1: no trend.
    assert!(ai_area["trend"].as_f64().unwrap().abs() < 1e-9);
    let beta = &p[1];
    assert_eq!(beta["company_key"], "name:BETA LABORATORY");
    assert_eq!(beta["key_type"], "name");
    assert_eq!(beta["dominant_cet_id"], "quantum_information_science");
    let checks = wd.json("data/processed/cet_company_profiles.checks.json");
    assert_eq!(checks["counts"]["num_companies"], 2);
    assert_eq!(checks["counts"]["companies_keyed_by_name"], 1);
}

#[test]
fn drift_between_runs_raises_alerts() {
    let wd = Workdir::new();
    let ai = "We apply machine learning and deep learning.";
    let q = "We build superconducting qubits for quantum computing.";
    let ids: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let first: Vec<Vec<(&str, &str)>> = ids
        .iter()
        .map(|i| vec![("Agency Tracking Number", i.as_str()), ("Abstract", ai)])
        .collect();
    let refs: Vec<&[(&str, &str)]> = first.iter().map(|r| r.as_slice()).collect();
    ingest(&wd, &refs);
    wd.run(&["classify-cet", "--scorer", "rules"], 0);
    assert!(!wd.exists("reports/alerts/cet_drift_detection.alerts.json"));
    std::fs::copy(
        wd.path("data/processed/cet_award_classifications.parquet"),
        wd.path("base.parquet"),
    )
    .unwrap();
    let second: Vec<Vec<(&str, &str)>> = ids
        .iter()
        .enumerate()
        .map(|(n, i)| {
            vec![
                ("Agency Tracking Number", i.as_str()),
                ("Abstract", if n % 2 == 0 { ai } else { q }),
            ]
        })
        .collect();
    let refs: Vec<&[(&str, &str)]> = second.iter().map(|r| r.as_slice()).collect();
    ingest(&wd, &refs);
    // The run itself compares with the previous output.
    let out = wd.run(&["classify-cet", "--scorer", "rules"], 0);
    assert!(stdout(&out).contains("reports/alerts/cet_drift_detection.alerts.json"));
    let drift = wd.json("reports/alerts/cet_drift_detection.alerts.json");
    assert!(drift["area_psi"].as_f64().unwrap() > 0.25, "{drift}");
    assert_eq!(drift["alerts"][0]["severity"], "error");
    let analytics = wd.json("reports/alerts/cet_analytics.alerts.json");
    let metrics: Vec<&str> = analytics["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metric"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"share.quantum_information_science"));
    assert!(metrics.contains(&"share.artificial_intelligence"));
    // The explicit action exits 3 on an error-severity shift, 0 against itself.
    wd.run(&["classify-cet", "drift", "--baseline", "base.parquet"], 3);
    wd.run(
        &[
            "classify-cet",
            "drift",
            "--baseline",
            "base.parquet",
            "--current",
            "base.parquet",
        ],
        0,
    );
    let same = wd.json("reports/alerts/cet_drift_detection.alerts.json");
    assert_eq!(same["area_psi"], 0.0);
}

#[test]
fn sampling_is_deterministic() {
    let wd = Workdir::new();
    let ids: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    let rows: Vec<Vec<(&str, &str)>> = ids
        .iter()
        .map(|i| vec![("Agency Tracking Number", i.as_str())])
        .collect();
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
    ingest(&wd, &refs);
    let sample = |seed: &str| {
        let mut cmd = wd.cmd(&["classify-cet", "--format", "ndjson"]);
        cmd.env("SBIR_ETL__CET__SAMPLE_SIZE", "7")
            .env("SBIR_ETL__CET__SAMPLE_SEED", seed);
        wd.run_expect(cmd, 0);
        let mut ids: Vec<String> = wd
            .ndjson("data/processed/cet_award_classifications.ndjson")
            .iter()
            .map(|r| r["award_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let a = sample("1");
    assert_eq!(a.len(), 7);
    assert_eq!(a, sample("1"));
    assert_ne!(a, sample("2"));
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(checks["details"]["sample"]["from"], 30);
}

#[test]
fn ad_hoc_text_is_classified_from_a_flag_or_stdin() {
    let wd = Workdir::new();
    let out = wd.run(
        &[
            "classify-cet",
            "--scorer",
            "rules",
            "--text",
            "Hypersonic glide vehicle thermal protection\nWe will test ceramic matrix composite leading edges for hypersonic flight.",
        ],
        0,
    );
    let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(c["primary_cet_id"], "hypersonics");
    assert!(!c["evidence"].as_array().unwrap().is_empty());
    assert!(
        !wd.exists("data/processed/cet_award_classifications.parquet"),
        "writes nothing"
    );

    let mut cmd = wd.cmd(&["classify-cet", "--scorer", "rules", "--stdin"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Quantum sensing with trapped ions for navigation")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(c["primary_cet_id"], "quantum_information_science");

    let err = stderr(&wd.run(&["classify-cet", "--text", "  "], 2));
    assert!(err.contains("no text to classify"), "{err}");
    let mut cmd = wd.cmd(&[
        "classify-cet",
        "--require-model",
        "--text",
        "quantum sensing",
    ]);
    cmd.env("CET_MODEL_PATH", "nowhere.json");
    let err = stderr(&wd.run_expect(cmd, 2));
    assert!(err.contains("require-model"), "{err}");
}

/// The embedding and hybrid scorers with the real all-MiniLM-L6-v2 on hand-written
/// abstracts that paraphrase their area, through a `prepare-assets` bundle.
#[test]
fn embedding_and_hybrid_scorers_classify_hand_written_abstracts() {
    let wd = Workdir::new();
    let out = wd.offline_cmd(&["prepare-assets"]).output().unwrap();
    if real_model_missing(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cases = [
        (
            "Heat shields for flight above Mach 5\nWe develop ablative thermal protection and scramjet combustor liners for sustained high-speed flight through the atmosphere.",
            "hypersonics",
        ),
        (
            "Engineered microbes for therapeutic protein production\nWe edit yeast genomes to manufacture antibodies and vaccines at scale.",
            "biotechnologies",
        ),
        (
            "Error-corrected superconducting processors\nWe build entangled qubit arrays and run fault-tolerant algorithms on them.",
            "quantum_information_science",
        ),
    ];
    for scorer in ["embedding", "hybrid"] {
        for (text, want) in cases {
            let c = wd.offline_cmd(&["classify-cet", "--scorer", scorer, "--text", text]);
            let out = wd.run_expect(c, 0);
            let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(c["scorer"], scorer);
            assert_eq!(c["primary_cet_id"], want, "{scorer}: {text}");
            assert!(c["primary_score"].as_f64().unwrap() >= 40.0, "{c}");
            // Encoder and centroids came from the bundle, as the log says.
            let err = stderr(&out);
            assert!(
                err.contains("(Bundle)")
                    && err.contains("centroids from artifacts/embeddings/cet_areas.npy"),
                "{err}"
            );
        }
    }

    // `evaluate --with-embedding` measures them beside the rules and the model (the shipped
    // one, compiled in: this folder has no artifact), and hybrid blends model and embedding.
    let mut labels = String::from("text,primary_cet\n");
    for (text, want) in cases {
        labels.push_str(&format!("\"{}\",{want}\n", text.replace('\n', " ")));
    }
    wd.write("labels.csv", labels);
    let c = wd.offline_cmd(&[
        "classify-cet",
        "evaluate",
        "--labels",
        "labels.csv",
        "--with-embedding",
        "--out",
        "eval.json",
    ]);
    wd.run_expect(c, 0);
    let e = wd.json("eval.json");
    let scorers: Vec<&str> = e["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scorer"].as_str().unwrap())
        .collect();
    assert_eq!(scorers, ["rules", "model", "embedding", "hybrid"]);
    assert_eq!(e["scorers"][2]["top1_accuracy"], 1.0, "{e}");
}

#[test]
fn a_missing_awards_file_is_a_usage_error_as_in_ingest_and_enrich() {
    let wd = Workdir::new();
    let err = stderr(&wd.run(&["classify-cet", "--awards", "nope.parquet"], 2));
    assert!(err.contains("cannot read nope.parquet"), "{err}");
}

/// Rows of the project's labelled real awards (data/cet/training_awards.csv): its header and
/// the records in `range`.
fn real_labelled(range: std::ops::Range<usize>) -> (Vec<String>, Vec<csv::StringRecord>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/cet/training_awards.csv");
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r.records().skip(range.start).take(range.len());
    (header, rows.map(Result::unwrap).collect())
}

fn write_csv(wd: &Workdir, name: &str, header: &[&str], rows: &[Vec<&str>]) {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    wd.write(name, String::from_utf8(w.into_inner().unwrap()).unwrap());
}

/// The recipe of the shipped model on a slice of it: real labelled awards, word vectors from
/// the real all-MiniLM-L6-v2 over a JSON-array corpus, and a dev set learnt from with
/// cross-validated figures, all recorded in the metadata.
#[test]
fn train_learns_word_vectors_and_cross_validates_the_dev_set() {
    let wd = Workdir::new();
    let (header, rows) = real_labelled(0..190);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().collect()).collect();
    write_csv(&wd, "train.csv", &header, &rows[..150]);
    // The dev set: labels by award id, texts in another file.
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let dev_rows = &rows[150..];
    write_csv(
        &wd,
        "dev_texts.csv",
        &["award_id", "title", "abstract"],
        &dev_rows
            .iter()
            .map(|r| vec![r[col("award_id")], r[col("title")], r[col("abstract")]])
            .collect::<Vec<_>>(),
    );
    write_csv(
        &wd,
        "dev_labels.csv",
        &["award_id", "primary_cet", "secondary_cets"],
        &dev_rows
            .iter()
            .map(|r| {
                vec![
                    r[col("award_id")],
                    r[col("primary_cet")],
                    r[col("secondary_cets")],
                ]
            })
            .collect::<Vec<_>>(),
    );
    // The corpus as the API publishes it: a JSON array of awards.
    let corpus: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"link": r[col("award_id")], "title": r[col("title")],
                "abstract": r[col("abstract")], "agency": [r[col("agency")]]})
        })
        .collect();
    wd.write("awards_2018.json", serde_json::to_string(&corpus).unwrap());
    // A small vocabulary and few iterations keep the test short (the test build is not
    // optimised).
    let knobs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/cet/classification.yaml"
    ))
    .unwrap();
    assert!(knobs.contains("vector_words: 40000") && knobs.contains("max_iter: 300"));
    let knobs = knobs
        .replace("vector_words: 40000", "vector_words: 1500")
        .replace("max_iter: 300", "max_iter: 60");
    wd.write("classification.yaml", knobs);

    let mut cmd = wd.offline_cmd(&[
        "classify-cet",
        "train",
        "--labels",
        "train.csv",
        "--corpus",
        "awards_2018.json",
        "--dev-labels",
        "dev_labels.csv",
        "--dev-texts",
        "dev_texts.csv",
        "--dev-folds",
        "3",
        "--model",
        "m.json",
    ]);
    cmd.env("SBIR_ETL__CET__CLASSIFICATION", "classification.yaml");
    let out = cmd.output().unwrap();
    if real_model_missing(&out) {
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("m.metadata.json"));

    let m = wd.json("m.json");
    let v = &m["model"]["word_vectors"];
    assert_eq!(v["encoder"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(v["dims"], 384);
    let words = v["words"].as_array().unwrap().len();
    assert!(words > 500 && words <= 1500, "{words} words");
    assert_eq!(m["model"]["classes"].as_array().unwrap().len(), 22);
    // The dev awards were learnt from: 150 + 40 documents.
    assert_eq!(m["model"]["trained_on"]["documents"], 190);

    let meta = wd.json("m.metadata.json");
    assert_eq!(meta["dev_set"]["cross_validated_folds"], 3);
    let e = &meta["dev_set"]["evaluation"];
    assert_eq!(e["awards"], 40);
    assert!(e["top3_recall"].as_f64().unwrap() > 0.5, "{e}");
    assert_eq!(meta["inputs"]["corpus"][0]["path"], "awards_2018.json");
    assert_eq!(
        meta["inputs"]["corpus"][0]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(meta["recipe"].as_str().unwrap().contains("--dev-folds 3"));

    // The model classifies a text none of its keywords occur in, from meaning.
    let mut cmd = wd.cmd(&[
        "classify-cet",
        "--scorer",
        "model",
        "--text",
        "Antigens that teach the immune system\nWe design adjuvanted antigens that train immune responses against emerging viruses in patients.",
    ]);
    cmd.env("CET_MODEL_PATH", "m.json")
        .env("SBIR_ETL__CET__CLASSIFICATION", "classification.yaml");
    let c: Value = serde_json::from_str(&stdout(&wd.run_expect(cmd, 0))).unwrap();
    assert_eq!(c["primary_cet_id"], "biotechnologies", "{c}");
}
