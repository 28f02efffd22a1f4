//! `sbir benchmark`: the report, the history, the baseline and its verdicts, the markdown
//! summary and the HTML report, on a small generated input.

use serde_json::Value;

use crate::workdir::{Workdir, stderr, stdout};

const SMALL: &[&str] = &[
    "benchmark",
    "--stages",
    "ingest,enrich,classify-cet,load-neo4j-export",
    "--synthetic-awards",
    "300",
    "--synthetic-recipients",
    "2000",
    "--repeat",
    "2",
];

fn bench(wd: &Workdir, extra: &[&str], code: i32) -> std::process::Output {
    let mut args = SMALL.to_vec();
    args.extend_from_slice(extra);
    wd.run(&args, code)
}

fn reports(wd: &Workdir) -> Vec<String> {
    let mut v: Vec<String> = wd
        .list("reports/benchmarks")
        .into_iter()
        .filter(|f| f.starts_with("benchmark_"))
        .collect();
    v.sort();
    v
}

#[test]
fn benchmark_reports_history_baseline_and_verdicts() {
    let wd = Workdir::new();
    bench(&wd, &["--save-as-baseline", "--output", "first.json"], 0);
    let r = wd.json("first.json");
    assert_eq!(r["schema_version"], "sbir-benchmark-1");
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!r["machine"]["cpu_model"].as_str().unwrap().is_empty());
    assert_eq!(r["inputs"]["generated"]["seed"], 42);
    assert!(r["settings_digest"].as_str().is_some_and(|d| !d.is_empty()));
    let stages: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["ingest", "enrich", "classify-cet", "load-neo4j-export"]
    );
    for s in r["stages"].as_array().unwrap() {
        let d = &s["duration_s"];
        let (min, med, max) = (
            d["min"].as_f64().unwrap(),
            d["median"].as_f64().unwrap(),
            d["max"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= med && med <= max, "{d}");
        assert_eq!(s["runs"].as_array().unwrap().len(), 2);
        assert!(s["peak_rss_mb"]["median"].as_f64().unwrap() > 0.0);
        assert!(s["records"].as_u64().unwrap() > 0);
    }
    let enrich = &r["stages"][1]["quality"];
    for k in ["match_rate", "precision", "recall"] {
        let v = enrich[k].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&v), "{k} {v}");
    }
    let cet = &r["stages"][2];
    for k in ["high_conf_rate", "evidence_coverage", "macro_f1"] {
        assert!(cet["quality"][k].as_f64().unwrap() > 0.5, "{k}");
    }
    assert_eq!(
        cet["histograms"]["cet_areas"]["labels"]
            .as_array()
            .unwrap()
            .len(),
        22
    );
    assert!(r["timer_overhead"]["per_run_us"].as_f64().unwrap() > 0.0);
    assert!(
        r["timer_overhead"]["share_of_shortest_stage_pct"]
            .as_f64()
            .unwrap()
            < 5.0
    );
    // The baseline is the report, written whole (temp file renamed: nothing else is left
    // beside it); the history has its line.
    assert_eq!(wd.json("reports/benchmarks/baseline.json"), r);
    assert_eq!(
        wd.list("reports/benchmarks"),
        ["baseline.json", "history.ndjson"]
    );
    let history = wd.read("reports/benchmarks/history.ndjson");
    assert_eq!(history.lines().count(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(history.lines().next().unwrap()).unwrap(),
        r
    );

    // A baseline that was much slower and used far less memory: time ok, memory fails.
    let mut base = r.clone();
    for s in base["stages"].as_array_mut().unwrap() {
        s["duration_s"]["median"] = 1e6.into();
        s["peak_rss_mb"]["median"] = 1.0.into();
    }
    wd.write("base.json", base.to_string());
    let out = bench(&wd, &["--baseline", "base.json", "--format", "markdown"], 3);
    let md = stdout(&out);
    assert!(
        md.contains("| duration_s (median) |") && md.contains("| ok |"),
        "{md}"
    );
    assert!(
        md.contains("❌ failure") && md.contains("**Verdict: ❌ failure**"),
        "{md}"
    );
    assert_eq!(
        reports(&wd).len(),
        1,
        "--output named the first; this one is timestamped"
    );

    // Measured on another machine: not compared (a warning) unless forced.
    base["machine"]["cpu_model"] = "Some Other CPU".into();
    wd.write("other.json", base.to_string());
    let out = bench(&wd, &["--baseline", "other.json"], 0);
    assert!(stderr(&out).contains("another machine"), "{}", stderr(&out));
    bench(&wd, &["--baseline", "other.json", "--force-compare"], 3);
    // Against its own (unchanged) baseline a rerun's quality cannot regress.
    let mut args = SMALL.to_vec();
    args.extend(["--format", "json"]);
    // Timing noise may fail a stage's time verdict here; quality cannot move.
    let out = wd.cmd(&args).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let again: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        again["stages"][1]["quality"]["match_rate"], r["stages"][1]["quality"]["match_rate"],
        "fixed seed: same quality"
    );
    assert_eq!(
        wd.read("reports/benchmarks/history.ndjson").lines().count(),
        5
    );
    let err = stderr(&bench(&wd, &["--baseline", "nope.json"], 2));
    assert!(err.contains("nope.json"), "{err}");
    assert_eq!(
        wd.read("reports/benchmarks/history.ndjson").lines().count(),
        5,
        "a missing baseline stops before measuring"
    );
    // Other inputs are other work: not judged (a warning, exit 0) unless forced.
    base["machine"] = r["machine"].clone();
    base["inputs"]["awards_sha256"] = "f".repeat(64).into();
    wd.write("other-inputs.json", base.to_string());
    let out = bench(&wd, &["--baseline", "other-inputs.json"], 0);
    assert!(stderr(&out).contains("inputs differ"), "{}", stderr(&out));
    // A named baseline that does not exist yet is created by --save-as-baseline; with --quiet
    // the written paths still reach stdout.
    let out = bench(
        &wd,
        &["-q", "--baseline", "new.json", "--save-as-baseline"],
        0,
    );
    assert!(wd.exists("new.json"));
    assert!(
        stdout(&out).lines().any(|l| l.ends_with("new.json")),
        "{}",
        stdout(&out)
    );

    // The HTML report. Its history gets a run on other inputs (first) and a latest run that
    // skipped classify-cet.
    let history = wd.read("reports/benchmarks/history.ndjson");
    let first: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    let mut other = first.clone();
    other["inputs"]["awards_sha256"] = "e".repeat(64).into();
    other["inputs"]["awards_rows"] = 12345.into();
    let mut skipped = first.clone();
    skipped["stages"][2]["skipped"] = "not run".into();
    wd.write(
        "reports/benchmarks/history.ndjson",
        format!("{other}\n{history}{skipped}\n"),
    );
    wd.run(&["benchmark", "report", "--out", "r.html"], 0);
    let html = wd.read("r.html");
    for id in [
        "verdicts",
        "duration-ingest",
        "duration-enrich",
        "duration-classify-cet",
        "duration-load-neo4j-export",
        "throughput",
        "peak-memory",
        "quality",
        "fuzzy-scores",
        "match-methods",
        "cet-areas",
        "cet-scores",
    ] {
        assert!(html.contains(&format!("<figure id=\"{id}\">")), "{id}");
    }
    // Baseline and thresholds drawn on the duration charts; titled axes; one label per run.
    for text in [
        ">baseline ",
        ">warn +10%<",
        ">fail +25%<",
        ">records/s (log scale)<",
        ">MiB (log scale)<",
        ">seconds<",
        ">#2 ",
        ">#9 ",
        "1 runs on other inputs (12345 awards) are not drawn",
    ] {
        assert!(html.contains(text), "{text}");
    }
    // The other inputs' run is not a point on any chart.
    assert!(!html.contains(">#1 "), "run #1 is on other inputs");
    // The latest run skipped classify-cet: its charts come from the run before.
    assert!(
        html.contains("Awards per primary CET area (run #8 "),
        "{}",
        &html[html.find("cet-areas").unwrap()..][..200]
    );
    assert!(html.contains("<svg") && html.contains("<path d=\"M"));
    for external in ["http://", "https://", "<script", "src=", "@import"] {
        assert!(!html.contains(external), "{external}");
    }
    screenshot(&wd, "r.html");
}

/// Renders the report in headless Chromium when it is installed (Debian's `chromium`).
fn screenshot(wd: &Workdir, page: &str) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("chromium not installed: screenshot skipped");
        return;
    };
    let png = wd.path("report.png");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,2400",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", wd.path(page).display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "a drawn page"
    );
}

#[test]
fn benchmark_skips_embed_without_a_model_and_refuses_a_bad_input() {
    let wd = Workdir::new();
    let c = wd.no_hub_cmd(&[
        "benchmark",
        "--stages",
        "ingest,embed",
        "--synthetic-awards",
        "50",
        "--synthetic-recipients",
        "100",
        "--repeat",
        "1",
        "--output",
        "r.json",
    ]);
    wd.run_expect(c, 0);
    let r = wd.json("r.json");
    assert_eq!(r["stages"][1]["stage"], "embed");
    assert!(
        r["stages"][1]["skipped"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{}",
        r["stages"][1]
    );
    let err = stderr(&wd.run(&["benchmark", "--input", "nowhere"], 2));
    assert!(
        err.contains("nowhere") && err.contains("sbir_awards.csv"),
        "{err}"
    );
}

/// `--compare-binary`: two builds (here the same binary twice) on the same inputs, rounds
/// alternating, merged and judged against each other; a binary that cannot run is named.
#[test]
fn benchmark_compares_two_builds_run_side_by_side() {
    let wd = Workdir::new();
    let out = wd
        .cmd(&[
            "benchmark",
            "--stages",
            "ingest,classify-cet",
            "--synthetic-awards",
            "300",
            "--synthetic-recipients",
            "500",
            "--repeat",
            "2",
            "--compare-binary",
            env!("CARGO_BIN_EXE_sbir"),
            "--output",
            "pair.json",
            "--format",
            "markdown",
        ])
        .output()
        .unwrap();
    // The same build twice: a verdict on tiny inputs is noise (0 or 3), but every round ran.
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)),
        "{code:?}: {}",
        stderr(&out)
    );
    let md = stdout(&out);
    assert!(
        md.contains("| metric | current | base build | delta | verdict |"),
        "{md}"
    );
    assert!(
        md.contains("### ingest") && md.contains("### classify-cet"),
        "{md}"
    );
    let err = stderr(&out);
    for round in [
        "round 1 of Current",
        "round 1 of Base",
        "round 2 of Base",
        "round 2 of Current",
    ] {
        assert!(err.contains(round), "{round}: {err}");
    }
    // The merged report: one run per round, this build's.
    let r = wd.json("pair.json");
    assert_eq!(r["repeat"], 2);
    assert_eq!(r["stages"][0]["stage"], "ingest");
    assert_eq!(r["stages"][0]["runs"].as_array().unwrap().len(), 2);

    let err = stderr(&wd.run(
        &[
            "benchmark",
            "--stages",
            "ingest",
            "--synthetic-awards",
            "50",
            "--synthetic-recipients",
            "50",
            "--compare-binary",
            "no/such/sbir",
        ],
        2,
    ));
    assert!(
        err.contains("no/such/sbir") && err.contains("cannot run it"),
        "{err}"
    );
}
