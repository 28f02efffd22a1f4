//! `sbir benchmark report`: one self-contained HTML page (inline SVG, no script, nothing
//! fetched) with the trends over the benchmark history and the latest run's distributions.

use super::{BenchReport, Histogram};

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// The report page for `history` (oldest first).
pub fn report(history: &[BenchReport]) -> String {
    let latest = history.last();
    let stages: Vec<String> = {
        let mut v: Vec<String> = history
            .iter()
            .flat_map(|r| r.stages.iter().filter(|s| s.skipped.is_none()))
            .map(|s| s.stage.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let series =
        |f: &dyn Fn(&BenchReport, &str) -> Option<f64>| -> Vec<(String, Vec<Option<f64>>)> {
            stages
                .iter()
                .map(|st| (st.clone(), history.iter().map(|r| f(r, st)).collect()))
                .collect()
        };
    let throughput = series(&|r, st| r.stage(st).map(|s| s.records_per_s));
    let memory = series(&|r, st| r.stage(st).map(|s| s.peak_rss_mb.median));
    let match_rate = vec![(
        "enrich match rate".to_string(),
        history
            .iter()
            .map(|r| {
                r.stage("enrich")
                    .and_then(|s| s.quality.get("match_rate").copied())
            })
            .collect(),
    )];
    let hist = |stage: &str, name: &str| {
        latest
            .and_then(|r| r.stage(stage))
            .and_then(|s| s.histograms.get(name).cloned())
            .unwrap_or_default()
    };
    let labels: Vec<String> = history
        .iter()
        .map(|r| {
            r.created_at
                .get(..16)
                .unwrap_or(&r.created_at)
                .replace('T', " ")
        })
        .collect();
    let mut body = String::new();
    body.push_str(&figure(
        "throughput",
        "Throughput per stage (records/s)",
        &line_chart(&throughput, &labels, Scale::Log),
    ));
    body.push_str(&figure(
        "peak-memory",
        "Peak memory per stage (MiB, median run)",
        &line_chart(&memory, &labels, Scale::Log),
    ));
    body.push_str(&figure(
        "match-rate",
        "Enrich match rate",
        &line_chart(&match_rate, &labels, Scale::Unit),
    ));
    for (id, title, stage, histogram) in [
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
        body.push_str(&figure(
            id,
            &format!("{title} (latest run)"),
            &bar_chart(&hist(stage, histogram)),
        ));
    }
    let summary = latest.map_or_else(
        || "<p>No benchmark runs in the history yet.</p>".to_string(),
        |r| {
            format!(
                "<p>{} runs; latest {} on {} (commit {}), {} awards.</p>",
                history.len(),
                esc(&r.created_at),
                esc(&r.machine.fingerprint()),
                esc(r.git_commit.as_deref().unwrap_or("unknown")),
                r.inputs.awards_rows
            )
        },
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sbir benchmark report</title>\n<style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}}\
         figure{{margin:0 0 2rem 0}}figcaption{{font-weight:600;margin-bottom:.4rem}}\
         svg text{{font-size:11px;fill:#333}}.axis{{stroke:#999}}.grid{{stroke:#eee}}\
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
    /// 0 to 1, for rates.
    Unit,
}

/// One line per series over the history (gaps where a run lacks the value), with a legend.
fn line_chart(series: &[(String, Vec<Option<f64>>)], labels: &[String], scale: Scale) -> String {
    let log = scale == Scale::Log;
    let (w, h, left, top, bottom) = (900.0, 260.0, 70.0, 10.0, 40.0);
    let tf = |v: f64| if log { v.max(1e-9).log10() } else { v };
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().map(|&x| tf(x)))
        .collect();
    if values.is_empty() {
        return empty();
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if scale == Scale::Unit {
        (0.0, 1.0)
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
        "<line class=\"axis\" x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\"/>",
        h - bottom
    ));
    let step = (n / 8).max(1);
    for (i, l) in labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == n - 1)
    {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - bottom + 16.0,
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
