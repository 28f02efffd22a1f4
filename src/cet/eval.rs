//! Labelled CET data (for training and evaluation) and the evaluation figures: precision,
//! recall and F1 of the primary area per area, micro and macro, top-1 accuracy, top-3 recall
//! and the most frequent confusions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::CetError;
use super::taxonomy::Taxonomy;

/// What a label row points at.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelKey {
    AwardId(String),
    Text(String),
}

/// One labelled row: the key and its CET areas, primary first.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub line: u64,
    pub key: LabelKey,
    pub areas: Vec<usize>,
}

/// Header names accepted for the key and the label columns (case-insensitive).
const ID_COLUMNS: &[&str] = &["award_id"];
const TEXT_COLUMNS: &[&str] = &["text", "abstract"];
const PRIMARY_COLUMNS: &[&str] = &[
    "primary_cet",
    "primary_cet_id",
    "cet_id",
    "cet_ids",
    "labels",
];
const SECONDARY_COLUMNS: &[&str] = &["secondary_cets", "secondary_cet_ids", "supporting_cets"];

/// Reads a labels CSV: `award_id` or `text`, plus `primary_cet` (or `cet_id`/`cet_ids`/`labels`)
/// and optional `secondary_cets`; several ids in one cell are separated by `;`, `|` or `,`.
/// Unknown CET ids and rows without a key or label are errors naming the line.
pub fn read_labels(path: &Path, taxonomy: &Taxonomy) -> Result<Vec<Label>, CetError> {
    let bad = |line: u64, message: String| CetError::Labels {
        path: path.to_path_buf(),
        line,
        message,
    };
    let (reader, _) = crate::io::input::open(path).map_err(CetError::Io)?;
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let id_col = find(ID_COLUMNS);
    let text_col = find(TEXT_COLUMNS);
    let primary_col = find(PRIMARY_COLUMNS).ok_or_else(|| {
        bad(
            1,
            format!(
                "no label column: expected one of {}",
                PRIMARY_COLUMNS.join(", ")
            ),
        )
    })?;
    if id_col.is_none() && text_col.is_none() {
        return Err(bad(1, "no key column: expected award_id or text".into()));
    }
    let secondary_col = find(SECONDARY_COLUMNS);
    let mut out = Vec::new();
    for (i, rec) in csv.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).unwrap_or("");
        let key = match (cell(id_col), cell(text_col)) {
            (id, _) if !id.is_empty() => LabelKey::AwardId(id.to_string()),
            (_, text) if !text.is_empty() => LabelKey::Text(text.to_string()),
            _ => return Err(bad(line, "neither award_id nor text is given".into())),
        };
        let mut areas = Vec::new();
        for id in [cell(Some(primary_col)), cell(secondary_col)]
            .iter()
            .flat_map(|c| c.split([';', '|', ',']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let a = taxonomy
                .index_of(id)
                .ok_or_else(|| bad(line, format!("unknown CET id `{id}`")))?;
            if !areas.contains(&a) {
                areas.push(a);
            }
        }
        if areas.is_empty() {
            return Err(bad(line, "no CET id given".into()));
        }
        out.push(Label { line, key, areas });
    }
    Ok(out)
}

/// Figures for one area.
#[derive(Debug, Clone, Serialize)]
pub struct AreaFigures {
    pub cet_id: String,
    pub support: u64,
    pub predicted: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The evaluation of one scorer against labels.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub scorer: String,
    pub awards: u64,
    /// Awards the scorer left unclassified.
    pub unclassified: u64,
    pub top1_accuracy: f64,
    /// Share of awards whose true primary is among the three best-scoring areas.
    pub top3_recall: f64,
    /// Share whose predicted primary is any of the labelled areas.
    pub any_label_accuracy: f64,
    pub micro: Prf,
    pub macro_avg: Prf,
    pub per_area: Vec<AreaFigures>,
    /// Most frequent (true → predicted) mistakes.
    pub confusions: Vec<(String, String, u64)>,
}

/// Precision, recall, F1.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn prf(tp: u64, fp: u64, fn_: u64) -> Prf {
    let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (p, r) = (div(tp, tp + fp), div(tp, tp + fn_));
    Prf {
        precision: p,
        recall: r,
        f1: if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        },
    }
}

/// Scores the predictions: each item is the labelled areas (primary first) and the scorer's
/// score per area (all zero means unclassified).
pub fn evaluate(scorer: &str, items: &[(Vec<usize>, Vec<f64>)], ids: &[String]) -> Evaluation {
    let k = ids.len();
    let (mut tp, mut fp, mut fn_) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
    let (mut top1, mut top3, mut any, mut unclassified) = (0u64, 0u64, 0u64, 0u64);
    let mut confusion: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for (truth, scores) in items {
        let t = truth[0];
        let mut order: Vec<usize> = (0..k).filter(|&i| scores[i] > 0.0).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        if order.iter().take(3).any(|&a| a == t) {
            top3 += 1;
        }
        match order.first() {
            None => {
                unclassified += 1;
                fn_[t] += 1;
            }
            Some(&p) if p == t => {
                tp[t] += 1;
                top1 += 1;
                any += 1;
            }
            Some(&p) => {
                fp[p] += 1;
                fn_[t] += 1;
                *confusion.entry((t, p)).or_default() += 1;
                if truth.contains(&p) {
                    any += 1;
                }
            }
        }
    }
    let n = items.len().max(1) as f64;
    let per_area: Vec<AreaFigures> = (0..k)
        .map(|i| {
            let f = prf(tp[i], fp[i], fn_[i]);
            AreaFigures {
                cet_id: ids[i].clone(),
                support: tp[i] + fn_[i],
                predicted: tp[i] + fp[i],
                precision: f.precision,
                recall: f.recall,
                f1: f.f1,
            }
        })
        .collect();
    let present: Vec<&AreaFigures> = per_area.iter().filter(|a| a.support > 0).collect();
    let mean = |f: fn(&AreaFigures) -> f64| {
        present.iter().map(|a| f(a)).sum::<f64>() / present.len().max(1) as f64
    };
    let mut confusions: Vec<(String, String, u64)> = confusion
        .into_iter()
        .map(|((t, p), c)| (ids[t].clone(), ids[p].clone(), c))
        .collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    confusions.truncate(10);
    Evaluation {
        scorer: scorer.to_string(),
        awards: items.len() as u64,
        unclassified,
        top1_accuracy: top1 as f64 / n,
        top3_recall: top3 as f64 / n,
        any_label_accuracy: any as f64 / n,
        micro: prf(tp.iter().sum(), fp.iter().sum(), fn_.iter().sum()),
        macro_avg: Prf {
            precision: mean(|a| a.precision),
            recall: mean(|a| a.recall),
            f1: mean(|a| a.f1),
        },
        per_area,
        confusions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_on_a_tiny_case() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let items = vec![
            (vec![0], vec![90.0, 10.0, 0.0]), // right
            (vec![0], vec![10.0, 80.0, 0.0]), // a → b, a in top 3
            (vec![1], vec![0.0, 70.0, 0.0]),  // right
            (vec![2], vec![0.0, 0.0, 0.0]),   // unclassified
        ];
        let e = evaluate("rules", &items, &ids);
        assert_eq!(e.top1_accuracy, 0.5);
        assert_eq!(e.top3_recall, 0.75);
        assert_eq!(e.unclassified, 1);
        assert_eq!(e.per_area[0].precision, 1.0);
        assert_eq!(e.per_area[0].recall, 0.5);
        assert_eq!(e.per_area[1].precision, 0.5);
        assert!((e.micro.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.micro.recall, 0.5);
        assert_eq!(e.confusions, vec![("a".into(), "b".into(), 1)]);
    }
}
