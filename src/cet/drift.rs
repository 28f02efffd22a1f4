//! Drift between two classification runs: how the primary-area distribution and the score
//! distribution moved (population stability index, share deltas), as alert files.

use serde::{Deserialize, Serialize};

use crate::config::CetDriftSettings;

/// Score histogram bins: [0,10), [10,20) … [90,100].
pub const SCORE_BINS: usize = 10;

/// What drift compares: primary-area counts (last slot: unclassified) and primary scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub awards: u64,
    pub area_counts: Vec<u64>,
    pub score_bins: Vec<u64>,
    pub score_sum: f64,
}

impl Distribution {
    pub fn new(areas: usize) -> Self {
        Self {
            awards: 0,
            area_counts: vec![0; areas + 1],
            score_bins: vec![0; SCORE_BINS],
            score_sum: 0.0,
        }
    }

    /// Counts one award (`area` None when unclassified).
    pub fn add(&mut self, area: Option<usize>, score: f64) {
        let n = self.area_counts.len();
        self.awards += 1;
        self.area_counts[area.unwrap_or(n - 1)] += 1;
        let bin = ((score / 10.0).floor().max(0.0) as usize).min(SCORE_BINS - 1);
        self.score_bins[bin] += 1;
        self.score_sum += score;
    }

    fn mean_score(&self) -> f64 {
        if self.awards == 0 {
            0.0
        } else {
            self.score_sum / self.awards as f64
        }
    }
}

/// Population stability index of two count vectors: Σ (c − b) · ln(c / b) over the shares,
/// each share floored at 1e-4 so empty bins stay finite.
pub fn psi(baseline: &[u64], current: &[u64]) -> f64 {
    let share = |v: &[u64]| {
        let t = v.iter().sum::<u64>().max(1) as f64;
        v.iter()
            .map(|&x| (x as f64 / t).max(1e-4))
            .collect::<Vec<_>>()
    };
    let (b, c) = (share(baseline), share(current));
    b.iter().zip(&c).map(|(b, c)| (c - b) * (c / b).ln()).sum()
}

/// One alert line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: String,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// The share of one area in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareShift {
    pub cet_id: String,
    pub baseline_share: f64,
    pub current_share: f64,
    pub delta: f64,
}

/// `cet_drift_detection.alerts.json` and the data of `cet_analytics.alerts.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReport {
    pub baseline_awards: u64,
    pub current_awards: u64,
    pub area_psi: f64,
    pub score_psi: f64,
    pub baseline_mean_score: f64,
    pub current_mean_score: f64,
    pub shares: Vec<ShareShift>,
    pub drift_alerts: Vec<Alert>,
    pub analytics_alerts: Vec<Alert>,
}

/// Compares two distributions; `ids` names the areas (unclassified is reported as such).
pub fn compare(
    baseline: &Distribution,
    current: &Distribution,
    ids: &[String],
    s: &CetDriftSettings,
) -> DriftReport {
    let area_psi = psi(&baseline.area_counts, &current.area_counts);
    let score_psi = psi(&baseline.score_bins, &current.score_bins);
    let share = |d: &Distribution, i: usize| d.area_counts[i] as f64 / d.awards.max(1) as f64;
    let shares: Vec<ShareShift> = (0..baseline.area_counts.len())
        .map(|i| {
            let (b, c) = (share(baseline, i), share(current, i));
            ShareShift {
                cet_id: ids
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| "(unclassified)".into()),
                baseline_share: b,
                current_share: c,
                delta: c - b,
            }
        })
        .collect();
    let level = |v: f64| {
        if v >= s.psi_error {
            Some(("error", s.psi_error))
        } else if v >= s.psi_warning {
            Some(("warning", s.psi_warning))
        } else {
            None
        }
    };
    let mut drift_alerts = Vec::new();
    for (metric, v, what) in [
        ("area_psi", area_psi, "primary CET area distribution"),
        ("score_psi", score_psi, "primary score distribution"),
    ] {
        if let Some((sev, t)) = level(v) {
            drift_alerts.push(Alert {
                severity: sev.into(),
                metric: metric.into(),
                value: v,
                threshold: t,
                message: format!("{what} shifted: PSI {v:.3} >= {t}"),
            });
        }
    }
    let analytics_alerts = shares
        .iter()
        .filter(|sh| sh.delta.abs() >= s.share_change)
        .map(|sh| Alert {
            severity: "warning".into(),
            metric: format!("share.{}", sh.cet_id),
            value: sh.delta,
            threshold: s.share_change,
            message: format!(
                "{} moved from {:.1}% to {:.1}% of awards",
                sh.cet_id,
                100.0 * sh.baseline_share,
                100.0 * sh.current_share
            ),
        })
        .collect();
    DriftReport {
        baseline_awards: baseline.awards,
        current_awards: current.awards,
        area_psi,
        score_psi,
        baseline_mean_score: baseline.mean_score(),
        current_mean_score: current.mean_score(),
        shares,
        drift_alerts,
        analytics_alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_shares_and_grows_with_shift() {
        assert!(psi(&[10, 20, 30], &[20, 40, 60]).abs() < 1e-12);
        let small = psi(&[50, 50], &[55, 45]);
        let large = psi(&[50, 50], &[90, 10]);
        assert!(
            small > 0.0 && large > small && large > 0.25,
            "{small} {large}"
        );
    }
}
