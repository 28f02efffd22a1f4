//! What an enrichment measured: per-chunk tallies (what checkpoints save) merged into the
//! run's report, with match rates, breakdowns, quality against a truth file, and gates.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::recipients::{LoadReport, RecipientIndex};
use super::{EnrichError, Match, MatchMethod};
use crate::config::EnrichSettings;
use crate::io::checks::{Gate, Severity};
use crate::io::input::InputInfo;
use crate::metrics::{ratio, round};
use crate::records::{Award, enriched};

/// Linked and total awards of one group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rate {
    pub awards: u64,
    pub linked: u64,
    pub match_rate: f64,
}

/// Links made and links correct (precision) for one method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Quality {
    pub linked: u64,
    pub correct: u64,
    pub precision: f64,
}

/// Accuracy against a truth file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TruthReport {
    pub awards_with_truth: u64,
    /// Awards whose truth names a recipient.
    pub positives: u64,
    /// Awards whose truth is "no link" (a row with an empty UEI).
    pub negatives: u64,
    /// Of those, the awards linked anyway (each one a false link).
    pub negatives_linked: u64,
    /// `negatives_linked / negatives`.
    pub false_link_rate: f64,
    pub linked: u64,
    pub correct: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub by_method: BTreeMap<String, Quality>,
    /// Of the positives that reached the fuzzy stage, the share whose true recipient was among
    /// the blocked candidates (blocking recall).
    pub blocking_recall: f64,
    pub fuzzy_positives: u64,
}

/// Counts and quality figures of one enrichment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrichReport {
    pub awards: u64,
    pub linked: u64,
    pub match_rate: f64,
    /// Awards per method; `none` when no recipient shared an identifier or blocking key.
    pub by_method: BTreeMap<String, u64>,
    /// Of those, awards recorded but not linked (candidates, low scores, ambiguous ties).
    pub unlinked_by_method: BTreeMap<String, u64>,
    /// Match rate by phase, agency and identifier type.
    pub breakdown: BTreeMap<String, BTreeMap<String, Rate>>,
    pub recipients: LoadReport,
    pub inputs: Vec<InputInfo>,
    /// Mean blocked candidates per award that reached the fuzzy stage.
    pub mean_blocked: f64,
    pub truth: Option<TruthReport>,
    /// Null rate of each match column.
    pub null_rates: BTreeMap<String, f64>,
    /// Chunks loaded from the checkpoint folder instead of matched again.
    pub resumed_chunks: usize,
}

/// Ground truth: the UEIs each award may correctly link to; an empty list means "no link".
pub type Truth = HashMap<String, Vec<String>>;

/// Reads `award_id,recipient_uei` ground truth. An award may have several rows (one firm
/// registered under several UEIs: any of them is right); a row with an empty UEI says the
/// award should stay unlinked.
pub fn read_truth(path: &Path) -> Result<Truth, EnrichError> {
    let err = |e: &dyn std::fmt::Display| EnrichError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(&e))?;
    let headers = reader.headers().map_err(|e| err(&e))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(a), Some(u)) = (col("award_id"), col("recipient_uei")) else {
        return Err(EnrichError::MissingColumns {
            path: path.to_path_buf(),
            missing: vec!["award_id".into(), "recipient_uei".into()],
            found: headers.iter().map(str::to_string).collect(),
        });
    };
    let mut truth = Truth::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| err(&e))?;
        let ueis: &mut Vec<String> = truth.entry(rec[a].trim().to_string()).or_default();
        let uei = rec[u].trim().to_ascii_uppercase();
        if !uei.is_empty() && !ueis.contains(&uei) {
            ueis.push(uei);
        }
    }
    Ok(truth)
}

/// Raw counts of a set of awards; chunk tallies merge into the run's (and are what checkpoints
/// save), rates are derived once at the end.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct Tally {
    report: EnrichReport,
    truth: TruthReport,
    fuzzy_awards: u64,
    blocked_total: u64,
    truth_blocked: u64,
    nulls: [u64; 3],
}

impl Tally {
    pub(super) fn add(
        &mut self,
        award: &Award,
        m: &Match,
        index: &RecipientIndex,
        truth: Option<&Truth>,
        in_block: Option<bool>,
    ) {
        let r = &mut self.report;
        r.awards += 1;
        r.linked += m.linked as u64;
        let method = m.method.map(MatchMethod::as_str).unwrap_or("none");
        *r.by_method.entry(method.to_string()).or_default() += 1;
        if !m.linked {
            *r.unlinked_by_method.entry(method.to_string()).or_default() += 1;
        }
        self.nulls[0] += m.method.is_none() as u64;
        self.nulls[1] += m.score.is_none() as u64;
        self.nulls[2] += !m.linked as u64;
        let id_type = match (&award.uei, &award.duns) {
            (Some(_), _) => "uei_present",
            (None, Some(_)) => "duns_only",
            (None, None) => "neither",
        };
        for (dim, key) in [
            ("phase", award.phase.as_str()),
            ("agency", award.agency.as_str()),
            ("identifier", id_type),
        ] {
            let rate = r
                .breakdown
                .entry(dim.to_string())
                .or_default()
                .entry(key.to_string())
                .or_default();
            rate.awards += 1;
            rate.linked += m.linked as u64;
        }
        if matches!(
            m.method,
            Some(
                MatchMethod::NameFuzzyAuto
                    | MatchMethod::NameFuzzyCandidate
                    | MatchMethod::NameFuzzyLow
            ) | None
        ) && !m.normalized_name.is_empty()
        {
            self.fuzzy_awards += 1;
            self.blocked_total += m.blocked as u64;
        }
        let Some(truth) = truth else { return };
        let Some(want) = truth.get(&award.award_id) else {
            return;
        };
        let t = &mut self.truth;
        t.awards_with_truth += 1;
        t.positives += !want.is_empty() as u64;
        t.negatives += want.is_empty() as u64;
        t.negatives_linked += (want.is_empty() && m.linked) as u64;
        if let Some(b) = in_block {
            t.fuzzy_positives += 1;
            self.truth_blocked += b as u64;
        }
        if m.linked {
            let got = m
                .recipient
                .and_then(|i| index.recipients.uei(i))
                .unwrap_or("");
            let ok = want.iter().any(|w| w == got);
            t.linked += 1;
            t.correct += ok as u64;
            let q = t.by_method.entry(method.to_string()).or_default();
            q.linked += 1;
            q.correct += ok as u64;
        }
    }

    pub(super) fn merge(&mut self, other: Tally) {
        fn add_all(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
        let (r, o) = (&mut self.report, other.report);
        r.awards += o.awards;
        r.linked += o.linked;
        add_all(&mut r.by_method, o.by_method);
        add_all(&mut r.unlinked_by_method, o.unlinked_by_method);
        for (dim, groups) in o.breakdown {
            let mine = r.breakdown.entry(dim).or_default();
            for (key, rate) in groups {
                let m = mine.entry(key).or_default();
                m.awards += rate.awards;
                m.linked += rate.linked;
            }
        }
        let (t, o) = (&mut self.truth, other.truth);
        t.awards_with_truth += o.awards_with_truth;
        t.positives += o.positives;
        t.negatives += o.negatives;
        t.negatives_linked += o.negatives_linked;
        t.linked += o.linked;
        t.correct += o.correct;
        t.fuzzy_positives += o.fuzzy_positives;
        for (k, q) in o.by_method {
            let m = t.by_method.entry(k).or_default();
            m.linked += q.linked;
            m.correct += q.correct;
        }
        self.fuzzy_awards += other.fuzzy_awards;
        self.blocked_total += other.blocked_total;
        self.truth_blocked += other.truth_blocked;
        for (n, o) in self.nulls.iter_mut().zip(other.nulls) {
            *n += o;
        }
    }

    pub(super) fn finish(mut self, has_truth: bool) -> EnrichReport {
        let ratio = |a: u64, b: u64| round(ratio(a, b), 4);
        let r = &mut self.report;
        r.match_rate = ratio(r.linked, r.awards);
        for group in r.breakdown.values_mut() {
            for rate in group.values_mut() {
                rate.match_rate = ratio(rate.linked, rate.awards);
            }
        }
        r.mean_blocked = ratio(self.blocked_total, self.fuzzy_awards);
        for (name, n) in [
            enriched::MATCH_METHOD,
            enriched::MATCH_SCORE,
            enriched::RECIPIENT_NAME,
        ]
        .iter()
        .zip(self.nulls)
        {
            r.null_rates.insert(name.to_string(), ratio(n, r.awards));
        }
        if has_truth {
            let t = &mut self.truth;
            t.precision = ratio(t.correct, t.linked);
            t.recall = ratio(t.correct, t.positives);
            t.false_link_rate = ratio(t.negatives_linked, t.negatives);
            t.f1 = if t.precision + t.recall > 0.0 {
                round(2.0 * t.precision * t.recall / (t.precision + t.recall), 4)
            } else {
                0.0
            };
            for q in t.by_method.values_mut() {
                q.precision = ratio(q.correct, q.linked);
            }
            t.blocking_recall = ratio(self.truth_blocked, t.fuzzy_positives);
            r.truth = Some(self.truth);
        }
        self.report
    }
}

impl EnrichReport {
    /// The stage's gates; `previous_rate` is the match rate of the last run, when known.
    pub fn gates(&self, s: &EnrichSettings, previous_rate: Option<f64>) -> Vec<Gate> {
        let mut gates = vec![Gate::at_least(
            "match_rate",
            self.match_rate,
            s.gates.min_match_rate,
            Severity::Error,
        )];
        for (name, rate) in &self.null_rates {
            gates.push(Gate::at_most(
                &format!("completeness:{name}:null_rate"),
                *rate,
                s.gates.max_null_rate,
                Severity::Error,
            ));
        }
        if let Some(prev) = previous_rate {
            gates.push(Gate::at_most(
                "match_rate_regression",
                round(prev - self.match_rate, 4),
                s.gates.max_match_rate_drop,
                Severity::Error,
            ));
        }
        gates
    }

    /// Awards per method plus totals, for the checks file.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut c: BTreeMap<String, u64> = self
            .by_method
            .iter()
            .map(|(k, v)| (format!("method:{k}"), *v))
            .collect();
        c.insert("awards".into(), self.awards);
        c.insert("written".into(), self.awards);
        c.insert("linked".into(), self.linked);
        c.insert("unmatched".into(), self.awards - self.linked);
        c.insert("recipients_loaded".into(), self.recipients.loaded);
        c.insert("recipients_rejected".into(), self.recipients.rejected);
        c
    }
}
