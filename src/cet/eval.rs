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

/// One labelled row: the key and its CET areas, primary first (none when the primary is
/// [`NONE`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub line: u64,
    pub key: LabelKey,
    pub areas: Vec<usize>,
}

/// The label (and the evaluation's class) of an award that belongs to no CET area.
pub const NONE: &str = "none";

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
/// A primary of `none` labels an award that belongs to no area. Unknown CET ids and rows
/// without a key or label are errors naming the line.
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
        let primary = cell(Some(primary_col));
        if primary.eq_ignore_ascii_case(NONE) {
            out.push(Label {
                line,
                key,
                areas: Vec::new(),
            });
            continue;
        }
        let mut areas = Vec::new();
        for id in [primary, cell(secondary_col)]
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
    /// Supporting areas given against the labelled secondary areas (over every award).
    pub supporting: Prf,
    pub per_area: Vec<AreaFigures>,
    /// Most frequent (true → predicted) mistakes.
    pub confusions: Vec<(String, String, u64)>,
    /// Every award whose primary was wrong, in input order, to read beside its text.
    pub misses: Vec<Miss>,
}

/// One award the scorer got wrong: its labelled and predicted primary ([`NONE`] for no area),
/// the predicted one's score (the no-area score for none) and where the labelled area ranked.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub award_id: String,
    pub labelled: String,
    pub predicted: String,
    pub predicted_score: f64,
    /// 1 for the best score; `None` for a none label or an area scored 0.
    pub labelled_rank: Option<usize>,
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

/// One scored award: its labelled areas (primary first, empty for none), the scorer's score
/// per area, the primary it chose (`None`: no area) and its supporting areas.
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: String,
    pub truth: Vec<usize>,
    pub scores: Vec<f64>,
    /// The scorer's "no area" score (the model's; 0 for the others).
    pub none: f64,
    pub primary: Option<usize>,
    /// The supporting areas given with the primary.
    pub supporting: Vec<usize>,
}

/// Scores the predictions against `ids` (the taxonomy's areas); "no area" counts as one more
/// class, [`NONE`], in the per-area and macro figures.
pub fn evaluate(scorer: &str, items: &[Scored], ids: &[String]) -> Evaluation {
    let k = ids.len();
    let (mut tp, mut fp, mut fn_) = (vec![0u64; k + 1], vec![0u64; k + 1], vec![0u64; k + 1]);
    let (mut top1, mut top3, mut any, mut unclassified) = (0u64, 0u64, 0u64, 0u64);
    // Supporting areas: right (a labelled secondary), given, labelled.
    let (mut sup_right, mut sup_given, mut sup_labelled) = (0u64, 0u64, 0u64);
    let mut confusion: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    let name = |i: usize| ids.get(i).map_or(NONE, String::as_str).to_string();
    let mut misses = Vec::new();
    for item in items {
        let t = item.truth.first().copied().unwrap_or(k);
        let p = item.primary.unwrap_or(k);
        let scores = &item.scores;
        let mut order: Vec<usize> = (0..k).filter(|&i| scores[i] > 0.0).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        // A none label is found only by answering none; an area among the three best scores.
        if (t == k && p == k) || order.iter().take(3).any(|&a| a == t) {
            top3 += 1;
        }
        if p == k {
            unclassified += 1;
        }
        let secondary = item.truth.get(1..).unwrap_or(&[]);
        sup_labelled += secondary.len() as u64;
        sup_given += item.supporting.len() as u64;
        sup_right += item
            .supporting
            .iter()
            .filter(|a| secondary.contains(a))
            .count() as u64;
        if p == t {
            tp[t] += 1;
            top1 += 1;
            any += 1;
        } else {
            fp[p] += 1;
            fn_[t] += 1;
            *confusion.entry((t, p)).or_default() += 1;
            misses.push(Miss {
                award_id: item.id.clone(),
                labelled: name(t),
                predicted: name(p),
                predicted_score: scores.get(p).copied().unwrap_or(item.none),
                labelled_rank: order.iter().position(|&a| a == t).map(|r| r + 1),
            });
            if item.truth.contains(&p) {
                any += 1;
            }
        }
    }
    let n = items.len().max(1) as f64;
    let per_area: Vec<AreaFigures> = (0..=k)
        .filter(|&i| i < k || tp[k] + fp[k] + fn_[k] > 0)
        .map(|i| {
            let f = prf(tp[i], fp[i], fn_[i]);
            AreaFigures {
                cet_id: name(i),
                support: tp[i] + fn_[i],
                predicted: tp[i] + fp[i],
                precision: f.precision,
                recall: f.recall,
                f1: f.f1,
            }
        })
        .collect();
    // Macro averages over the classes labelled or predicted (as scikit-learn's `macro`).
    let present: Vec<&AreaFigures> = per_area
        .iter()
        .filter(|a| a.support > 0 || a.predicted > 0)
        .collect();
    let mean = |f: fn(&AreaFigures) -> f64| {
        present.iter().map(|a| f(a)).sum::<f64>() / present.len().max(1) as f64
    };
    let mut confusions: Vec<(String, String, u64)> = confusion
        .into_iter()
        .map(|((t, p), c)| (name(t), name(p), c))
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
        supporting: prf(sup_right, sup_given - sup_right, sup_labelled - sup_right),
        per_area,
        confusions,
        misses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_on_a_tiny_case() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let item = |truth: Vec<usize>, scores: Vec<f64>| {
            let primary = (0..3)
                .filter(|&i| scores[i] > 0.0)
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
            Scored {
                id: String::new(),
                truth,
                scores,
                none: 0.0,
                primary,
                supporting: Vec::new(),
            }
        };
        let items = vec![
            item(vec![0], vec![90.0, 10.0, 0.0]), // right
            item(vec![0], vec![10.0, 80.0, 0.0]), // a → b, a in top 3
            item(vec![1], vec![0.0, 70.0, 0.0]),  // right
            item(vec![2], vec![0.0, 0.0, 0.0]),   // unclassified
        ];
        let e = evaluate("rules", &items, &ids);
        assert_eq!(e.top1_accuracy, 0.5);
        assert_eq!(e.top3_recall, 0.75);
        assert_eq!(e.unclassified, 1);
        assert_eq!(e.per_area[0].precision, 1.0);
        assert_eq!(e.per_area[0].recall, 0.5);
        assert_eq!(e.per_area[1].precision, 0.5);
        // "No area" is a class: micro figures are the accuracy.
        assert_eq!(e.micro.precision, 0.5);
        assert_eq!(e.micro.recall, 0.5);
        assert_eq!(
            e.confusions,
            vec![("a".into(), "b".into(), 1), ("c".into(), "none".into(), 1)]
        );
        // The unclassified award makes "none" a predicted class: precision 0 (it was c).
        assert_eq!(e.per_area.len(), 4);
        assert_eq!(e.per_area[3].cet_id, "none");
        assert_eq!(e.per_area[3].predicted, 1);
        // Each miss, with where the labelled area ranked.
        let m: Vec<_> = e
            .misses
            .iter()
            .map(|m| (m.labelled.as_str(), m.predicted.as_str(), m.labelled_rank))
            .collect();
        assert_eq!(m, vec![("a", "b", Some(2)), ("c", "none", None)]);
        assert_eq!(e.misses[0].predicted_score, 80.0);
    }

    #[test]
    fn a_none_label_is_right_only_when_no_area_is_given() {
        let ids: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let items = vec![
            Scored {
                id: String::new(),
                truth: vec![],
                scores: vec![20.0, 0.0],
                none: 70.0,
                primary: None,
                supporting: vec![],
            },
            Scored {
                id: String::new(),
                truth: vec![],
                scores: vec![60.0, 0.0],
                none: 30.0,
                primary: Some(0),
                supporting: vec![],
            },
        ];
        let e = evaluate("model", &items, &ids);
        assert_eq!(e.top1_accuracy, 0.5);
        assert_eq!(e.top3_recall, 0.5);
        assert_eq!(e.per_area[2].cet_id, "none");
        assert_eq!(e.per_area[2].recall, 0.5);
        assert_eq!(e.per_area[2].precision, 1.0);
        assert_eq!(e.per_area[0].precision, 0.0);
        let m = &e.misses[0];
        assert_eq!(e.misses.len(), 1);
        assert_eq!((m.labelled.as_str(), m.predicted.as_str()), ("none", "a"));
        assert_eq!((m.predicted_score, m.labelled_rank), (60.0, None));
    }
}
