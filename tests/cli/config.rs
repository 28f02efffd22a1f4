//! Settings layering: defaults < config/base.yaml < config/envs/<env>.yaml < SBIR_ETL__ variables
//! < flags, and clear exit-2 errors naming the key and its source.

use crate::workdir::{Workdir, awards_csv, stderr, stdout};

#[test]
fn show_prints_defaults() {
    let wd = Workdir::new();
    let out = wd.run(&["config", "show"], 0);
    let text = stdout(&out);
    assert!(text.contains("chunk_size: 2048"), "{text}");
    assert!(text.contains("every value is a built-in default"), "{text}");
}

#[test]
fn layers_apply_in_order_and_origins_are_named() {
    let wd = Workdir::new();
    wd.write(
        "config/base.yaml",
        "output:\n  format: ndjson\ningest:\n  chunk_size: 100\n",
    );
    wd.write(
        "config/envs/prod.yaml",
        "ingest:\n  chunk_size: 200\n  min_award_year: 1990\n",
    );
    let mut cmd = wd.cmd(&["config", "show", "--env", "prod"]);
    cmd.env("SBIR_ETL__INGEST__MIN_AWARD_YEAR", "1995");
    let text = stdout(&wd.run_expect(cmd, 0));
    assert!(text.contains("format: ndjson"), "{text}");
    assert!(text.contains("chunk_size: 200"), "{text}");
    assert!(text.contains("min_award_year: 1995"), "{text}");
    assert!(text.contains("output.format: config/base.yaml"), "{text}");
    assert!(
        text.contains("ingest.chunk_size: config/envs/prod.yaml"),
        "{text}"
    );
    assert!(
        text.contains(
            "ingest.min_award_year: environment variable SBIR_ETL__INGEST__MIN_AWARD_YEAR"
        ),
        "{text}"
    );

    // SBIR_ENV selects the layer too, and a flag beats everything.
    let mut cmd = wd.cmd(&["config", "show", "--log-format", "json"]);
    cmd.env("SBIR_ENV", "prod")
        .env("SBIR_ETL__LOGGING__FORMAT", "text");
    let text = stdout(&wd.run_expect(cmd, 0));
    assert!(text.contains("chunk_size: 200"), "{text}");
    assert!(
        text.contains("logging.format: command-line flag --log-format"),
        "{text}"
    );
}

#[test]
fn env_override_changes_a_real_run() {
    let wd = Workdir::new();
    wd.write("a.csv", awards_csv(&[&[("Award Year", "1990")]]));
    let mut cmd = wd.cmd(&["ingest", "--input", "a.csv"]);
    cmd.env("SBIR_ETL__INGEST__MIN_AWARD_YEAR", "2000");
    wd.run_expect(cmd, 3);
    let rejects = wd.read("data/processed/sbir_awards.rejects.ndjson");
    assert!(rejects.contains("year_out_of_range"), "{rejects}");
}

#[test]
fn bad_values_stop_with_exit_2_naming_key_and_source() {
    let wd = Workdir::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "SBIR_ETL__INGEST__CHUNK_SIZE",
            "lots",
            &[
                "ingest.chunk_size",
                "SBIR_ETL__INGEST__CHUNK_SIZE",
                "a whole number",
            ],
        ),
        (
            "SBIR_ETL__INGEST__CHUNK_SIZE",
            "0",
            &["ingest.chunk_size", "at least 1"],
        ),
        (
            "SBIR_ETL__INGEST__CHUNKSIZE",
            "5",
            &[
                "`ingest.chunksize`",
                "unknown setting",
                "did you mean `chunk_size`?",
            ],
        ),
        (
            "SBIR_ETL__OUTPUT__FORMAT",
            "xml",
            &["output.format", "SBIR_ETL__OUTPUT__FORMAT"],
        ),
        (
            "SBIR_ETL__INGEST__GATES__MAX_REJECT_RATE",
            "2",
            &["ingest.gates.max_reject_rate", "between 0 and 1"],
        ),
    ];
    for (var, value, needles) in cases {
        let mut cmd = wd.cmd(&["config", "show"]);
        cmd.env(var, value);
        let err = stderr(&wd.run_expect(cmd, 2));
        for n in *needles {
            assert!(err.contains(n), "{var}={value}: {err}");
        }
        assert!(!err.contains("chunksize.chunksize"), "the key once: {err}");
    }
    wd.write("config/envs/bad.yaml", "ingest:\n  chunk_size: [1, 2]\n");
    let err = stderr(&wd.run(&["config", "show", "--env", "bad"], 2));
    assert!(
        err.contains("config/envs/bad.yaml") && err.contains("ingest.chunk_size"),
        "{err}"
    );
    wd.write("config/envs/broken.yaml", "ingest: [unclosed\n");
    let err = stderr(&wd.run(&["config", "show", "--env", "broken"], 2));
    assert!(err.contains("config/envs/broken.yaml"), "{err}");
    let err = stderr(&wd.run(&["config", "show", "--env", "nowhere"], 2));
    assert!(err.contains("config/envs/nowhere.yaml"), "{err}");
    wd.write("afile", "x");
    let mut cmd = wd.cmd(&["config", "show"]);
    cmd.env("SBIR_ETL__PATHS__PROCESSED_DIR", "afile");
    let err = stderr(&wd.run_expect(cmd, 2));
    assert!(
        err.contains("paths.processed_dir") && err.contains("not a directory"),
        "{err}"
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let wd = Workdir::new();
    for sub in [
        &["run"][..],
        &["ingest"],
        &["sample-data"],
        &["config", "show"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let text = stdout(&wd.run(&args, 0));
        assert!(text.contains("Example"), "{sub:?}: {text}");
    }
    let text = stdout(&wd.run(&["--help"], 0));
    for sub in ["run", "ingest", "sample-data", "config"] {
        assert!(text.contains(sub), "{text}");
    }
}

#[test]
fn json_logs_are_json_lines() {
    let wd = Workdir::new();
    wd.write("a.csv", awards_csv(&[&[]]));
    let out = wd.run(&["ingest", "--input", "a.csv", "--log-format", "json"], 0);
    let err = stderr(&out);
    assert!(!err.is_empty());
    let mut summary = None;
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v.get("level").is_some(), "{line}");
        if v["fields"]["records"].is_u64() {
            summary = Some(v);
        }
    }
    // The stage's summary carries its figures as fields, not only in the message.
    let f = &summary.expect("a summary line with fields")["fields"];
    assert_eq!(
        (f["stage"].as_str(), f["records"].as_u64()),
        (Some("ingest"), Some(1))
    );
    assert_eq!(f["status"], "pass");
    assert!(f["duration_s"].is_f64() && f["peak_rss_mb"].is_f64(), "{f}");
    // What an analyst asks first: counts and gates, in the line and as fields.
    let counts = f["counts"].as_str().unwrap();
    for c in ["written 1", "rejected 0", "duplicates 0"] {
        assert!(counts.contains(c), "{counts}");
    }
    assert!(
        f["gates"]
            .as_str()
            .unwrap()
            .contains("reject_rate 0.0000 (<= 0.05)"),
        "{f}"
    );
    assert!(
        f["message"].as_str().unwrap().contains("; duplicates 0,"),
        "{f}"
    );
    // A failure's last line is JSON too, with the exit code as a field.
    let out = wd.run(
        &["ingest", "--input", "nope.csv", "--log-format", "json"],
        2,
    );
    let last: serde_json::Value =
        serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["exit_code"], 2);
    assert!(
        last["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("nope.csv"),
        "{last}"
    );
    // --quiet silences the logs; the paths written are data and still reach stdout.
    let quiet = wd.run(&["ingest", "--input", "a.csv", "--quiet"], 0);
    assert!(quiet.stderr.is_empty());
    let paths = stdout(&quiet);
    assert!(
        paths.lines().any(|l| l.ends_with("sbir_awards.parquet"))
            && paths
                .lines()
                .any(|l| l.ends_with("sbir_awards.checks.json")),
        "{paths}"
    );
}

#[test]
fn config_show_masks_secrets_only_and_prints_decimals_as_written() {
    let wd = Workdir::new();
    let text = stdout(&wd.run(&["config", "show"], 0));
    assert!(text.contains("chunk_tokens: 256"), "{text}");
    assert!(text.contains("bm25_k1: 1.2\n"), "{text}");
}

#[test]
fn typos_of_subcommands_and_flags_get_a_suggestion() {
    let wd = Workdir::new();
    let err = stderr(&wd.run(&["ingset"], 2));
    assert!(err.contains("ingest"), "{err}");
    let err = stderr(&wd.run(&["ingest", "--inptu", "x.csv"], 2));
    assert!(err.contains("--input"), "{err}");
}

/// Progress lines know their totals: bytes of the file for ingest (the one total known up
/// front), awards from the Parquet footer for enrich and classify-cet.
#[test]
fn progress_lines_say_how_far_of_the_total() {
    let wd = Workdir::new();
    wd.write(
        "data/sample/sbir_awards.csv",
        awards_csv(&[&[], &[("Agency Tracking Number", "2")]]),
    );
    wd.write(
        "data/sample/usaspending_recipients.csv",
        "recipient_name,recipient_uei,recipient_duns\nACME PHOTONICS INC,ABC123DEF456,\n",
    );
    let mut cmd = wd.cmd(&["run"]);
    // 0 seconds between lines: one at every step.
    cmd.env("SBIR_ETL__LOGGING__PROGRESS_INTERVAL_S", "0");
    let err = stderr(&wd.run_expect(cmd, 0));
    let line = |stage: &str| {
        err.lines()
            .find(|l| l.contains(&format!("{stage}: ")) && l.contains("(100 %"))
            .unwrap_or_else(|| panic!("no {stage} progress line: {err}"))
            .to_string()
    };
    let ingest = line("ingest");
    assert!(
        ingest.contains(" MiB of ") && ingest.contains("MiB/s, ETA 0 s)"),
        "{ingest}"
    );
    assert!(line("enrich").contains("2 of 2 awards (100 %"));
    assert!(line("classify-cet").contains("2 of 2 awards (100 %"));
}

#[test]
fn a_closed_stdout_ends_quietly_and_keeps_the_exit_code() {
    // `sbir … | head -1`: the reader has gone before sbir writes. Printing must not panic, and a
    // failed gate still exits 3.
    let wd = Workdir::new();
    wd.write(
        "bad.yaml",
        "version: t1\neffective_date: 2024-01-01\nareas:\n  - {id: a, name: A, definition: d, keywords: []}\n",
    );
    for (args, code) in [
        (&["config", "show"][..], 0),
        (&["-q", "sample-data", "--awards", "20"][..], 0),
        (&["-q", "classify-cet", "--check-taxonomy"][..], 3),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = wd.cmd(args);
        cmd.stdout(writer)
            .env("SBIR_ETL__CET__TAXONOMY", "bad.yaml");
        let out = wd.run_expect(cmd, code);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // A failed gate says so on stderr; a passing quiet run says nothing.
        assert_eq!(err.trim().is_empty(), code == 0, "{args:?}: {err}");
    }
}
