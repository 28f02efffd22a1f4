//! The match cascade for one award: UEI exact, then DUNS exact, then normalised name exact
//! (ties broken by state and city), then token-set-ratio fuzzy matching over blocked candidates.
//! First hit wins; every outcome records its method and a 0–100 score.

use std::collections::HashMap;

use serde::Serialize;

use super::fuzzy::token_set_ratio;
use super::names::Normalizer;
use super::recipients::{RecipientIndex, blocking_keys};
use crate::config::EnrichSettings;
use crate::records::Award;

/// How an award was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchMethod {
    UeiExact,
    DunsExact,
    NameExact,
    NameFuzzyAuto,
    NameFuzzyCandidate,
    NameFuzzyLow,
}

impl MatchMethod {
    /// The name written to outputs (`uei-exact`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UeiExact => "uei-exact",
            Self::DunsExact => "duns-exact",
            Self::NameExact => "name-exact",
            Self::NameFuzzyAuto => "name-fuzzy-auto",
            Self::NameFuzzyCandidate => "name-fuzzy-candidate",
            Self::NameFuzzyLow => "name-fuzzy-low",
        }
    }

    /// Every method, in cascade order.
    pub const ALL: [MatchMethod; 6] = [
        Self::UeiExact,
        Self::DunsExact,
        Self::NameExact,
        Self::NameFuzzyAuto,
        Self::NameFuzzyCandidate,
        Self::NameFuzzyLow,
    ];
}

/// A scored candidate recipient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    pub recipient: u32,
    pub score: f64,
    pub same_state: bool,
    pub same_city: bool,
}

/// The outcome for one award.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Match {
    /// `None` when no recipient shared any identifier or blocking key with the award.
    pub method: Option<MatchMethod>,
    pub score: Option<f64>,
    /// The chosen recipient (linked or not).
    pub recipient: Option<u32>,
    /// Whether the award is linked to `recipient`.
    pub linked: bool,
    /// The best candidates, best first (fuzzy stage only).
    pub candidates: Vec<Candidate>,
    /// Recipients the blocking step proposed (fuzzy stage only).
    pub blocked: usize,
    /// The award's normalised name.
    pub normalized_name: String,
}

/// Runs the cascade against an index.
pub struct Matcher<'a> {
    pub index: &'a RecipientIndex,
    pub normalizer: &'a Normalizer,
    pub settings: &'a EnrichSettings,
}

impl Matcher<'_> {
    fn candidate<S: AsRef<str>>(&self, award: &Award<S>, recipient: u32, score: f64) -> Candidate {
        let r = &self.index.recipients;
        let same = |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        Candidate {
            recipient,
            score,
            same_state: same(crate::records::opt(&award.state), r.state(recipient)),
            same_city: same(crate::records::opt(&award.city), r.city(recipient)),
        }
    }

    /// With `strict_name_links`, a name match links only if the states agree (when both sides
    /// have one) and neither name is the other plus extra words: token-set ratio scores "ACME" vs
    /// "ACME HOLDINGS" (or "DAVIS AND REYES" vs "REYES") 100, yet these are usually different,
    /// related entities. Words after `DBA` in the award name are left out of that comparison.
    fn trusted<S: AsRef<str>>(&self, award: &Award<S>, award_norm: &str, c: &Candidate) -> bool {
        if !self.settings.strict_name_links {
            return true;
        }
        let r = &self.index.recipients;
        let state_known = award.state.is_some() && r.state(c.recipient).is_some();
        let core: Vec<&str> = award_norm.split(' ').take_while(|t| *t != "DBA").collect();
        let other: Vec<&str> = r.norm(c.recipient).split(' ').collect();
        let inside = |a: &[&str], b: &[&str]| a.iter().all(|t| b.contains(t));
        let (a_in_b, b_in_a) = (inside(&core, &other), inside(&other, &core));
        let proper_subset = a_in_b != b_in_a;
        (!state_known || c.same_state) && !proper_subset
    }

    /// Matches one award.
    pub fn match_award<S: AsRef<str>>(&self, award: &Award<S>) -> Match {
        self.match_award_with_target(award, None).0
    }

    /// Matches one award; with the true recipient given (`target`), also says whether blocking
    /// proposed it when the award reached the fuzzy stage (for measuring blocking recall).
    pub fn match_award_with_target<S: AsRef<str>>(
        &self,
        award: &Award<S>,
        target: Option<u32>,
    ) -> (Match, Option<bool>) {
        let normalized_name = self.normalizer.normalize(award.company.as_ref());
        let exact = |method, recipient| Match {
            method: Some(method),
            score: Some(100.0),
            recipient: Some(recipient),
            linked: true,
            normalized_name: normalized_name.clone(),
            ..Match::default()
        };
        if let Some(i) = award
            .uei
            .as_ref()
            .and_then(|u| self.index.by_uei(u.as_ref()))
        {
            return (exact(MatchMethod::UeiExact, i), None);
        }
        if let Some(i) = award
            .duns
            .as_ref()
            .and_then(|d| self.index.by_duns(d.as_ref()))
        {
            return (exact(MatchMethod::DunsExact, i), None);
        }
        if normalized_name.is_empty() {
            return (
                Match {
                    normalized_name,
                    ..Match::default()
                },
                None,
            );
        }
        let mut same_name: Vec<Candidate> = self
            .index
            .by_name(&normalized_name)
            .into_iter()
            .map(|i| self.candidate(award, i, 100.0))
            .collect();
        if !same_name.is_empty() {
            sort_candidates(&mut same_name);
            let mut m = exact(MatchMethod::NameExact, same_name[0].recipient);
            // Several recipients share the name and state/city cannot tell them apart: record
            // the match, but do not link a coin flip.
            m.linked =
                !ambiguous(&same_name) && self.trusted(award, &normalized_name, &same_name[0]);
            m.candidates = same_name.into_iter().take(self.settings.top_k).collect();
            return (m, None);
        }
        self.fuzzy(award, normalized_name, target)
    }

    /// Fuzzy stage: rank recipients by the blocking keys they share with the award (rarer keys
    /// weigh more; keys in blocks larger than `max_block_size` are skipped), score the best
    /// `max_candidates` with token-set ratio, and keep the top `top_k`.
    fn fuzzy<S: AsRef<str>>(
        &self,
        award: &Award<S>,
        normalized_name: String,
        target: Option<u32>,
    ) -> (Match, Option<bool>) {
        let mut keys = Vec::new();
        blocking_keys(&normalized_name, &mut keys);
        keys.sort_unstable();
        keys.dedup();
        let mut weight: HashMap<u32, f32> = HashMap::new();
        for k in keys {
            let post = self.index.postings_of(k);
            if post.is_empty() || post.len() > self.settings.max_block_size {
                continue;
            }
            let w = 1.0 / (2.0 + post.len() as f32).ln();
            for &i in post {
                *weight.entry(i).or_default() += w;
            }
        }
        let blocked = weight.len();
        let in_block = target.map(|t| weight.contains_key(&t));
        let mut ranked: Vec<(u32, f32)> = weight.into_iter().collect();
        let keep = self.settings.max_candidates.min(ranked.len());
        if keep < ranked.len() {
            ranked.select_nth_unstable_by(keep, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(keep);
        }
        let r = &self.index.recipients;
        let mut scored: Vec<Candidate> = ranked
            .into_iter()
            .map(|(i, _)| self.candidate(award, i, token_set_ratio(&normalized_name, r.norm(i))))
            .collect();
        sort_candidates(&mut scored);
        scored.truncate(self.settings.top_k);
        let Some(best) = scored.first().copied() else {
            return (
                Match {
                    normalized_name,
                    blocked,
                    ..Match::default()
                },
                in_block,
            );
        };
        let auto_ok = self.trusted(award, &normalized_name, &best);
        let method = if best.score >= self.settings.high_threshold && auto_ok {
            MatchMethod::NameFuzzyAuto
        } else if best.score >= self.settings.low_threshold {
            MatchMethod::NameFuzzyCandidate
        } else {
            MatchMethod::NameFuzzyLow
        };
        let linked = (method == MatchMethod::NameFuzzyAuto && !ambiguous(&scored))
            || (method == MatchMethod::NameFuzzyCandidate && self.settings.accept_candidates);
        let m = Match {
            method: Some(method),
            score: Some((best.score * 100.0).round() / 100.0),
            recipient: Some(best.recipient),
            linked,
            candidates: scored,
            blocked,
            normalized_name,
        };
        (m, in_block)
    }
}

/// True when the best two candidates tie on score, state and city agreement.
fn ambiguous(sorted: &[Candidate]) -> bool {
    matches!(sorted, [a, b, ..] if a.score == b.score && a.same_state == b.same_state && a.same_city == b.same_city)
}

/// Best first: score, then same state, then same city, then file order (deterministic).
fn sort_candidates(c: &mut [Candidate]) {
    c.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.same_state.cmp(&a.same_state))
            .then(b.same_city.cmp(&a.same_city))
            .then(a.recipient.cmp(&b.recipient))
    });
}
