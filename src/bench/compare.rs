//! Regression verdicts of a benchmark against a baseline, and the markdown table a pull
//! request shows. Medians are compared; reports from different machines are not compared
//! unless forced (a warning, not a failure).

use serde::{Deserialize, Serialize};

use super::{BenchReport, StageResult};
use crate::config::BenchThresholds;

/// How bad a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Failure,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "⚠️ warning",
            Level::Failure => "❌ failure",
        }
    }
}

/// One figure of one stage, current against baseline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub stage: String,
    pub metric: String,
    pub current: f64,
    pub baseline: f64,
    /// Percent change for time and memory, percentage points for rates and F1.
    pub delta: f64,
    pub unit: String,
    pub level: Level,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// What the current figures were compared with: "baseline", or "base build".
    pub against: String,
    /// False when the machines or the inputs differ and the comparison was not forced.
    pub compared: bool,
    pub warnings: Vec<String>,
    pub verdicts: Vec<Verdict>,
}

impl Comparison {
    /// The worst verdict (Ok when nothing was compared).
    pub fn worst(&self) -> Level {
        self.verdicts
            .iter()
            .map(|v| v.level)
            .max()
            .unwrap_or(Level::Ok)
    }
}

/// Compares `current` with `baseline` under the thresholds.
pub fn compare(
    current: &BenchReport,
    baseline: &BenchReport,
    t: &BenchThresholds,
    force: bool,
) -> Comparison {
    let mut warnings = Vec::new();
    // Another machine, or other inputs (other work): reported, and judged only when forced.
    let (a, b) = (
        current.machine.fingerprint(),
        baseline.machine.fingerprint(),
    );
    let (ci, bi) = (&current.inputs, &baseline.inputs);
    let differences = [
        (a != b).then(|| format!("the baseline was measured on another machine ({b}; this one: {a})")),
        (ci.awards_sha256 != bi.awards_sha256).then(|| format!(
            "the inputs differ from the baseline's ({} awards, sha256 {:.12}; the baseline: {} awards, sha256 {:.12})",
            ci.awards_rows, ci.awards_sha256, bi.awards_rows, bi.awards_sha256
        )),
    ];
    for msg in differences.into_iter().flatten() {
        if !force {
            warnings.push(format!(
                "{msg}: not compared (--force-compare compares anyway)"
            ));
            return Comparison {
                against: "baseline".into(),
                compared: false,
                warnings,
                verdicts: Vec::new(),
            };
        }
        warnings.push(format!("{msg}: compared because of --force-compare"));
    }
    // The same machine can run slower under other load (shared VMs): the embed stage's matmul
    // peak tells, so time verdicts can be read with it.
    let peak = |r: &BenchReport| {
        r.stage("embed")
            .and_then(|s| s.quality.get("matmul_peak_gflops").copied())
    };
    if let (Some(c), Some(b)) = (peak(current), peak(baseline))
        && (c - b).abs() > 0.1 * b
    {
        warnings.push(format!(
            "the machine's f32 matmul peak was {c:.0} GFLOP/s against {b:.0} for the baseline ({:+.0} %): time verdicts partly measure the machine's load",
            100.0 * (c - b) / b
        ));
    }
    let mut verdicts = Vec::new();
    for cur in current.stages.iter().filter(|s| s.skipped.is_none()) {
        let Some(base) = baseline.stage(&cur.stage) else {
            warnings.push(format!("stage {} has no baseline", cur.stage));
            continue;
        };
        verdicts.extend(stage_verdicts(cur, base, t));
    }
    Comparison {
        against: "baseline".into(),
        compared: true,
        warnings,
        verdicts,
    }
}

const EPS: f64 = 1e-9;

fn stage_verdicts(cur: &StageResult, base: &StageResult, t: &BenchThresholds) -> Vec<Verdict> {
    let verdict =
        |metric: &str, current: f64, baseline: f64, delta: f64, unit: &str, level| Verdict {
            stage: cur.stage.clone(),
            metric: metric.into(),
            current,
            baseline,
            delta: crate::metrics::round2(delta),
            unit: unit.into(),
            level,
        };
    let increase = |c: f64, b: f64| if b > 0.0 { 100.0 * (c - b) / b } else { 0.0 };
    // Exactly at a threshold is still within it (EPS absorbs float rounding of the delta).
    let grade = |d: f64, warn: f64, fail: f64| {
        if d > fail + EPS {
            Level::Failure
        } else if d > warn + EPS {
            Level::Warning
        } else {
            Level::Ok
        }
    };
    let mut out = Vec::new();
    let (c, b) = (cur.duration_s.median, base.duration_s.median);
    let d = increase(c, b);
    out.push(verdict(
        "duration_s (median)",
        c,
        b,
        d,
        "%",
        grade(d, t.time_warn_pct, t.time_fail_pct),
    ));
    let (c, b) = (cur.peak_rss_mb.median, base.peak_rss_mb.median);
    let d = increase(c, b);
    out.push(verdict(
        "peak_rss_mb (median)",
        c,
        b,
        d,
        "%",
        grade(d, t.memory_warn_pct, t.memory_fail_pct),
    ));
    for (metric, fail) in [
        ("match_rate", t.match_rate_fail_points),
        ("macro_f1", t.macro_f1_fail_points),
    ] {
        if let (Some(&c), Some(&b)) = (cur.quality.get(metric), base.quality.get(metric)) {
            let drop = 100.0 * (b - c);
            let level = if drop > fail + EPS {
                Level::Failure
            } else {
                Level::Ok
            };
            out.push(verdict(metric, c, b, -drop, "points", level));
        }
    }
    out
}

/// A pull-request comment: per stage, current, baseline, delta and verdict.
pub fn markdown(current: &BenchReport, cmp: Option<&Comparison>) -> String {
    let mut s = String::from("## sbir benchmark\n\n");
    s.push_str(&format!(
        "{} awards{}, {} run(s) per stage, commit `{}`, {}\n\n",
        current.inputs.awards_rows,
        current
            .inputs
            .generated
            .as_ref()
            .map_or(String::new(), |g| format!(" (generated, seed {})", g.seed)),
        current.repeat,
        current
            .git_commit
            .as_deref()
            .map_or("unknown", |c| &c[..c.len().min(12)]),
        current.machine.fingerprint()
    ));
    for w in cmp.map(|c| c.warnings.as_slice()).unwrap_or_default() {
        s.push_str(&format!("> {w}\n"));
    }
    if cmp.is_some_and(|c| !c.warnings.is_empty()) {
        s.push('\n');
    }
    for st in &current.stages {
        s.push_str(&format!("### {}\n\n", st.stage));
        if let Some(why) = &st.skipped {
            s.push_str(&format!("skipped: {why}\n\n"));
            continue;
        }
        s.push_str(&format!(
            "| metric | current | {} | delta | verdict |\n| --- | ---: | ---: | ---: | --- |\n",
            cmp.map_or("baseline", |c| c.against.as_str())
        ));
        let verdicts: Vec<&Verdict> = cmp
            .filter(|c| c.compared)
            .map(|c| c.verdicts.iter().filter(|v| v.stage == st.stage).collect())
            .unwrap_or_default();
        for v in &verdicts {
            let delta = match v.unit.as_str() {
                "%" => format!("{:+.1} %", v.delta),
                _ => format!("{:+.2} pt", v.delta),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {delta} | {} |\n",
                v.metric,
                fmt(v.current),
                fmt(v.baseline),
                v.level.label()
            ));
        }
        let shown = |m: &str| verdicts.iter().any(|v| v.metric.starts_with(m));
        let mut rows: Vec<(String, f64)> = vec![("records_per_s".into(), st.records_per_s)];
        if !shown("duration_s") {
            rows.push(("duration_s (median)".into(), st.duration_s.median));
        }
        if !shown("peak_rss_mb") {
            rows.push(("peak_rss_mb (median)".into(), st.peak_rss_mb.median));
        }
        rows.extend(
            st.quality
                .iter()
                .filter(|(k, _)| !shown(k))
                .map(|(k, v)| (k.clone(), *v)),
        );
        for (k, v) in rows {
            s.push_str(&format!("| {k} | {} | | | |\n", fmt(v)));
        }
        s.push('\n');
    }
    let verdict = match cmp {
        Some(c) if c.compared => c.worst().label(),
        Some(_) => "not compared",
        None => "no baseline",
    };
    s.push_str(&format!("**Verdict: {verdict}**\n"));
    s
}

fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{BenchReport, Inputs, Machine, Spread, TimerOverhead};

    fn thresholds() -> BenchThresholds {
        BenchThresholds {
            time_warn_pct: 10.0,
            time_fail_pct: 25.0,
            memory_warn_pct: 20.0,
            memory_fail_pct: 50.0,
            match_rate_fail_points: 5.0,
            macro_f1_fail_points: 3.0,
        }
    }

    fn report(secs: f64, rss: f64, quality: &[(&str, f64)]) -> BenchReport {
        BenchReport {
            schema_version: crate::bench::SCHEMA_VERSION.into(),
            tool_version: "0.1.0".into(),
            git_commit: Some("abcdef0123456789".into()),
            created_at: "2026-11-24T00:00:00Z".into(),
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                memory_mb: 24_000,
                os: "Debian".into(),
            },
            settings_digest: "d".into(),
            inputs: Inputs {
                dir: "(generated)".into(),
                generated: None,
                awards_rows: 1000,
                awards_sha256: "s".into(),
                sample_size: None,
            },
            repeat: 3,
            stages: vec![StageResult {
                stage: "enrich".into(),
                records: 1000,
                duration_s: Spread {
                    min: secs,
                    median: secs,
                    max: secs,
                },
                records_per_s: 1000.0 / secs,
                peak_rss_mb: Spread {
                    min: rss,
                    median: rss,
                    max: rss,
                },
                quality: quality.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                ..Default::default()
            }],
            timer_overhead: TimerOverhead::default(),
        }
    }

    fn level(cur: &BenchReport, base: &BenchReport, metric: &str) -> Level {
        compare(cur, base, &thresholds(), false)
            .verdicts
            .iter()
            .find(|v| v.metric.starts_with(metric))
            .unwrap()
            .level
    }

    #[test]
    fn each_threshold_side() {
        let base = report(10.0, 100.0, &[("match_rate", 0.90), ("macro_f1", 0.95)]);
        // Time: +10 % is still ok, just above is a warning, +25 % a warning, above a failure.
        // Memory: +20 % / +50 %.
        for (seconds, rss_mb, metric, want) in [
            (11.0, 100.0, "duration", Level::Ok),
            (11.01, 100.0, "duration", Level::Warning),
            (12.5, 100.0, "duration", Level::Warning),
            (12.51, 100.0, "duration", Level::Failure),
            (5.0, 100.0, "duration", Level::Ok),
            (10.0, 120.0, "peak_rss", Level::Ok),
            (10.0, 121.0, "peak_rss", Level::Warning),
            (10.0, 150.0, "peak_rss", Level::Warning),
            (10.0, 151.0, "peak_rss", Level::Failure),
        ] {
            let got = level(&report(seconds, rss_mb, &[]), &base, metric);
            assert_eq!(got, want, "{metric} at {seconds} s, {rss_mb} MB");
        }
        // Match rate: a drop of 5 points is ok, more fails; a rise is fine.
        let m = |r: f64| report(10.0, 100.0, &[("match_rate", r), ("macro_f1", 0.95)]);
        assert_eq!(level(&m(0.85), &base, "match_rate"), Level::Ok);
        assert_eq!(level(&m(0.849), &base, "match_rate"), Level::Failure);
        assert_eq!(level(&m(0.99), &base, "match_rate"), Level::Ok);
        // Macro F1: 3 points.
        let f = |x: f64| report(10.0, 100.0, &[("match_rate", 0.9), ("macro_f1", x)]);
        assert_eq!(level(&f(0.92), &base, "macro_f1"), Level::Ok);
        assert_eq!(level(&f(0.919), &base, "macro_f1"), Level::Failure);
        let c = compare(&f(0.5), &base, &thresholds(), false);
        assert_eq!(c.worst(), Level::Failure);
    }

    #[test]
    fn another_machine_is_not_compared_unless_forced() {
        let base = report(10.0, 100.0, &[]);
        let mut cur = report(20.0, 100.0, &[]);
        cur.machine.cores = 64;
        let c = compare(&cur, &base, &thresholds(), false);
        assert!(!c.compared && c.verdicts.is_empty());
        assert_eq!(c.worst(), Level::Ok);
        assert!(
            c.warnings[0].contains("another machine"),
            "{:?}",
            c.warnings
        );
        let c = compare(&cur, &base, &thresholds(), true);
        assert!(c.compared);
        assert_eq!(c.worst(), Level::Failure);
    }

    #[test]
    fn other_inputs_are_not_compared_unless_forced() {
        // A 5k-award run twice as slow as the 20k-award baseline is not a regression.
        let base = report(10.0, 100.0, &[]);
        let mut cur = report(20.0, 100.0, &[]);
        cur.inputs.awards_rows = 5_000;
        cur.inputs.awards_sha256 = "f".repeat(64);
        let c = compare(&cur, &base, &thresholds(), false);
        assert!(!c.compared && c.verdicts.is_empty());
        assert_eq!(c.worst(), Level::Ok);
        assert!(
            c.warnings[0].contains("inputs differ") && c.warnings[0].contains("5000 awards"),
            "{:?}",
            c.warnings
        );
        let c = compare(&cur, &base, &thresholds(), true);
        assert!(c.compared);
        assert_eq!(c.worst(), Level::Failure);
    }

    #[test]
    fn a_slower_machine_moment_is_pointed_out() {
        let with_peak = |gflops: f64| {
            let mut r = report(10.0, 100.0, &[]);
            r.stages.push(StageResult {
                stage: "embed".into(),
                quality: [("matmul_peak_gflops".to_string(), gflops)].into(),
                ..Default::default()
            });
            r
        };
        let c = compare(&with_peak(120.0), &with_peak(170.0), &thresholds(), false);
        assert!(
            c.warnings.iter().any(|w| w.contains("matmul peak was 120")),
            "{:?}",
            c.warnings
        );
        let c = compare(&with_peak(165.0), &with_peak(170.0), &thresholds(), false);
        assert!(c.warnings.iter().all(|w| !w.contains("matmul")));
    }

    #[test]
    fn markdown_table_snapshot() {
        let base = report(10.0, 100.0, &[("match_rate", 0.90)]);
        let cur = report(12.0, 90.0, &[("match_rate", 0.80)]);
        let c = compare(&cur, &base, &thresholds(), false);
        let md = markdown(&cur, Some(&c));
        let want = "## sbir benchmark

1000 awards, 3 run(s) per stage, commit `abcdef012345`, Test CPU | 2 cores | 23 GiB | Debian

### enrich

| metric | current | baseline | delta | verdict |
| --- | ---: | ---: | ---: | --- |
| duration_s (median) | 12.00 | 10.00 | +20.0 % | ⚠️ warning |
| peak_rss_mb (median) | 90.00 | 100 | -10.0 % | ok |
| match_rate | 0.8000 | 0.9000 | -10.00 pt | ❌ failure |
| records_per_s | 83.33 | | | |

**Verdict: ❌ failure**
";
        assert_eq!(md, want);
    }
}
