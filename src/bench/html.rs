//! `sbir benchmark report`: one self-contained HTML page (inline SVG, no script, nothing
//! fetched) with the trends over the benchmark history and the latest run's distributions.

use super::{BenchReport, Histogram};
use crate::config::BenchThresholds;

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// A horizontal reference line on a chart: label, value, colour, SVG dash pattern.
type Reference = (String, f64, &'static str, &'static str);

/// The report page for `history` (oldest first): the verdicts of the latest run against
/// `baseline`, per-stage duration charts with the baseline and its thresholds drawn in,
/// throughput, memory and quality over the runs on the latest run's inputs, and the latest
/// distributions.
pub fn report(
    history: &[BenchReport],
    baseline: Option<&BenchReport>,
    thresholds: &BenchThresholds,
) -> String {
    let Some(latest) = history.last() else {
        return page("<p>No benchmark runs in the history yet.</p>", "");
    };
    // Runs on other inputs measure other work: they are counted, not drawn.
    let same_inputs = |r: &BenchReport| {
        r.inputs.awards_sha256 == latest.inputs.awards_sha256
            && r.inputs.sample_size == latest.inputs.sample_size
    };
    let runs: Vec<(usize, &BenchReport)> = history
        .iter()
        .enumerate()
        .filter(|(_, r)| same_inputs(r))
        .collect();
    let labels: Vec<String> = runs.iter().map(|(i, r)| run_label(*i, r)).collect();
    let mut stages: Vec<String> = runs
        .iter()
        .flat_map(|(_, r)| r.stages.iter().filter(|s| s.skipped.is_none()))
        .map(|s| s.stage.clone())
        .collect();
    stages.sort();
    stages.dedup();
    let series =
        |f: &dyn Fn(&BenchReport, &str) -> Option<f64>| -> Vec<(String, Vec<Option<f64>>)> {
            stages
                .iter()
                .map(|st| (st.clone(), runs.iter().map(|(_, r)| f(r, st)).collect()))
                .collect()
        };
    let base = baseline.filter(|b| same_inputs(b));

    let mut body = verdict_table(latest, baseline, thresholds);
    for st in &stages {
        let line = vec![(
            format!("{st} median"),
            runs.iter()
                .map(|(_, r)| r.stage(st).map(|s| s.duration_s.median))
                .collect(),
        )];
        let refs: Vec<Reference> = base
            .and_then(|b| b.stage(st))
            .map(|b| {
                let d = b.duration_s.median;
                vec![
                    (format!("baseline {}", short(d)), d, "#555", "6 4"),
                    (
                        format!("warn +{}%", thresholds.time_warn_pct),
                        d * (1.0 + thresholds.time_warn_pct / 100.0),
                        "#e6a700",
                        "2 3",
                    ),
                    (
                        format!("fail +{}%", thresholds.time_fail_pct),
                        d * (1.0 + thresholds.time_fail_pct / 100.0),
                        "#d62728",
                        "2 3",
                    ),
                ]
            })
            .unwrap_or_default();
        body.push_str(&figure(
            &format!("duration-{st}"),
            &format!("{st}: duration (median run, seconds)"),
            &line_chart(&line, &labels, Scale::Linear, "seconds", &refs),
        ));
    }
    body.push_str(&figure(
        "throughput",
        "Throughput per stage (records/s)",
        &line_chart(
            &series(&|r, st| r.stage(st).map(|s| s.records_per_s)),
            &labels,
            Scale::Log,
            "records/s (log scale)",
            &[],
        ),
    ));
    body.push_str(&figure(
        "peak-memory",
        "Peak memory per stage (MiB, median run)",
        &line_chart(
            &series(&|r, st| r.stage(st).map(|s| s.peak_rss_mb.median)),
            &labels,
            Scale::Log,
            "MiB (log scale)",
            &[],
        ),
    ));
    let quality: Vec<(String, Vec<Option<f64>>)> = [
        ("enrich match rate", "enrich", "match_rate"),
        ("classify-cet macro F1", "classify-cet", "macro_f1"),
    ]
    .iter()
    .map(|(name, st, q)| {
        (
            name.to_string(),
            runs.iter()
                .map(|(_, r)| r.stage(st).and_then(|s| s.quality.get(*q).copied()))
                .collect(),
        )
    })
    .collect();
    body.push_str(&figure(
        "quality",
        "Quality against the generated truth",
        &line_chart(&quality, &labels, Scale::Unit, "rate (0–1)", &[]),
    ));
    for (id, title, stage, name) in [
        (
            "fuzzy-scores",
            "Fuzzy name-match scores",
            "enrich",
            "fuzzy_scores",
        ),
        (
            "match-methods",
            "Awards per match method",
            "enrich",
            "match_methods",
        ),
        (
            "cet-areas",
            "Awards per primary CET area",
            "classify-cet",
            "cet_areas",
        ),
        (
            "cet-scores",
            "Primary CET score distribution",
            "classify-cet",
            "cet_scores",
        ),
    ] {
        // The latest run that measured the stage (a run may have skipped it).
        let found = runs.iter().rev().find_map(|(i, r)| {
            r.stage(stage)
                .and_then(|s| s.histograms.get(name))
                .map(|h| (*i, r, h))
        });
        let (caption, chart) = match found {
            Some((i, r, h)) => (format!("{title} (run {})", run_label(i, r)), bar_chart(h)),
            None => (title.to_string(), empty()),
        };
        body.push_str(&figure(id, &caption, &chart));
    }
    let others: Vec<u64> = history
        .iter()
        .filter(|r| !same_inputs(r))
        .map(|r| r.inputs.awards_rows)
        .collect();
    let mut summary = format!(
        "<p>{} runs; drawn: the {} on the latest run's inputs ({} awards, sha256 {:.12}). Latest: {} on {} (commit {}).</p>",
        history.len(),
        runs.len(),
        latest.inputs.awards_rows,
        latest.inputs.awards_sha256,
        esc(&latest.created_at),
        esc(&latest.machine.fingerprint()),
        esc(latest.git_commit.as_deref().unwrap_or("unknown")),
    );
    if !others.is_empty() {
        let mut sizes = others.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let sizes: Vec<String> = sizes.iter().map(|n| n.to_string()).collect();
        summary.push_str(&format!(
            "<p>{} runs on other inputs ({} awards) are not drawn: they measure other work.</p>",
            others.len(),
            sizes.join(", ")
        ));
    }
    page(&summary, &body)
}

/// A run's x-axis label: its number in the history, date and time, commit.
fn run_label(i: usize, r: &BenchReport) -> String {
    let when = r
        .created_at
        .get(5..16)
        .unwrap_or(&r.created_at)
        .replace('T', " ");
    let commit = r.git_commit.as_deref().map_or("", |c| &c[..c.len().min(7)]);
    format!("#{} {when} {commit}", i + 1).trim_end().to_string()
}

/// The latest run's verdicts against the baseline as a table, or why there are none.
fn verdict_table(
    latest: &BenchReport,
    baseline: Option<&BenchReport>,
    thresholds: &BenchThresholds,
) -> String {
    let Some(base) = baseline else {
        return "<p>No baseline: no verdicts.</p>\n".into();
    };
    let c = super::compare::compare(latest, base, thresholds, false);
    if !c.compared {
        return format!(
            "<p>Not compared with the baseline: {}</p>\n",
            esc(&c.warnings.join("; "))
        );
    }
    let mut s = format!(
        "<figure id=\"verdicts\"><figcaption>Latest run against the baseline ({}): {:?}</figcaption><table>\
         <tr><th>stage</th><th>metric</th><th>baseline</th><th>latest</th><th>delta</th><th>verdict</th></tr>",
        esc(&base.created_at),
        c.worst()
    );
    for v in &c.verdicts {
        let mark = match v.level {
            super::compare::Level::Ok => "ok",
            super::compare::Level::Warning => "warning",
            super::compare::Level::Failure => "failure",
        };
        s.push_str(&format!(
            "<tr class=\"{mark}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.2} {}</td><td>{mark}</td></tr>",
            esc(&v.stage),
            esc(&v.metric),
            short(v.baseline),
            short(v.current),
            v.delta,
            esc(&v.unit)
        ));
    }
    s.push_str("</table></figure>\n");
    s
}

/// The whole page around `summary` and `body`.
fn page(summary: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sbir benchmark report</title>\n<style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}}\
         figure{{margin:0 0 2rem 0}}figcaption{{font-weight:600;margin-bottom:.4rem}}\
         svg text{{font-size:11px;fill:#333}}.axis{{stroke:#999}}.grid{{stroke:#eee}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .6rem;text-align:left}}\
         tr.warning td{{background:#fff4d6}}tr.failure td{{background:#fde0e0}}tr.ok td:last-child{{color:#2ca02c}}\
         </style></head>\n<body><h1>sbir benchmark report</h1>\n{summary}\n{body}</body></html>\n"
    )
}

fn figure(id: &str, title: &str, svg: &str) -> String {
    format!(
        "<figure id=\"{id}\"><figcaption>{}</figcaption>{svg}</figure>\n",
        esc(title)
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The y axis of a line chart.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    /// log10, so stages of very different speed share one chart.
    Log,
    /// From zero (or the smallest value) up, for one stage's durations.
    Linear,
    /// 0 to 1, for rates.
    Unit,
}

/// One line per series over the runs (gaps where a run lacks the value), with a legend, the
/// y axis titled `y_title`, and dashed reference lines.
fn line_chart(
    series: &[(String, Vec<Option<f64>>)],
    labels: &[String],
    scale: Scale,
    y_title: &str,
    refs: &[Reference],
) -> String {
    let log = scale == Scale::Log;
    let (w, h, left, top, bottom) = (900.0, 260.0, 100.0, 10.0, 70.0);
    let tf = |v: f64| if log { v.max(1e-9).log10() } else { v };
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().map(|&x| tf(x)))
        .chain(refs.iter().map(|r| tf(r.1)))
        .collect();
    if values.is_empty() {
        return empty();
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if scale == Scale::Unit {
        (0.0, 1.0)
    } else if scale == Scale::Linear {
        // Durations from zero, so a 10 % change looks like one.
        (0.0, hi.max(1e-9) * 1.05)
    } else if (hi - lo).abs() < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    };
    let n = labels.len().max(1);
    let plot_w = w - left - 170.0;
    let x = |i: usize| {
        left + if n == 1 {
            plot_w / 2.0
        } else {
            plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (tf(v) - lo) / (hi - lo));
    let mut s = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">");
    for k in 0..=4 {
        let t = lo + (hi - lo) * k as f64 / 4.0;
        let yy = top + (h - top - bottom) * (1.0 - k as f64 / 4.0);
        let shown = if log { 10f64.powf(t) } else { t };
        s.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            short(shown)
        ));
    }
    s.push_str(&format!(
        "<line class=\"axis\" x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\"/>\
         <text transform=\"rotate(-90)\" x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>",
        h - bottom,
        -(top + (h - top - bottom) / 2.0),
        esc(y_title)
    ));
    for (label, v, color, dash) in refs {
        let yy = y(*v);
        s.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{color}\" stroke-dasharray=\"{dash}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{color}\">{}</text>",
            left + plot_w,
            left + plot_w - 4.0,
            yy - 3.0,
            esc(label)
        ));
    }
    let step = (n / 8).max(1);
    for (i, l) in labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == n - 1)
    {
        let (lx, ly) = (x(i), h - bottom + 12.0);
        s.push_str(&format!(
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-25 {lx:.1} {ly:.1})\">{}</text>",
            esc(l)
        ));
    }
    for (k, (name, vals)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mut path = String::new();
        let mut pen_up = true;
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(v) => {
                    path.push_str(&format!(
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(i),
                        y(*v)
                    ));
                    s.push_str(&format!(
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: {}</title></circle>",
                        x(i),
                        y(*v),
                        esc(name),
                        short(*v)
                    ));
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        s.push_str(&format!(
            "<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            left + plot_w + 20.0,
            top + 18.0 * k as f64,
            left + plot_w + 38.0,
            top + 18.0 * k as f64 + 10.0,
            esc(name)
        ));
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one per label, with the count at the end.
fn bar_chart(hist: &Histogram) -> String {
    if hist.counts.is_empty() {
        return empty();
    }
    let (w, left, row) = (1000.0, 400.0, 18.0);
    let h = row * hist.counts.len() as f64 + 10.0;
    let max = hist.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut s = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">");
    for (i, (label, &count)) in hist.labels.iter().zip(&hist.counts).enumerate() {
        let yy = 5.0 + row * i as f64;
        let bw = (w - left - 70.0) * count as f64 / max;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{count}</text>",
            left - 6.0,
            yy + 12.0,
            esc(label),
            row - 4.0,
            COLORS[0],
            left + bw + 4.0,
            yy + 12.0
        ));
    }
    s.push_str("</svg>");
    s
}

fn empty() -> String {
    "<svg width=\"900\" height=\"30\" role=\"img\"><text x=\"0\" y=\"20\">no data in the history for this chart</text></svg>".into()
}

fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}
