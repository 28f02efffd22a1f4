//! The match cascade for one award: UEI exact, then DUNS exact, then normalised name exact,
//! then fuzzy matching over blocked candidates, ranked by a weighted word score (rare words
//! carry identity). First hit wins; every outcome records its method, the token-set ratio, the
//! weighted score and the rule that decided whether it links.

use std::collections::HashMap;

use serde::Serialize;

use super::fuzzy::token_set_ratio;
use super::recipients::{RecipientIndex, blocking_keys};
use super::weighted::{self, Comparison, Word};
use crate::config::EnrichSettings;
use crate::metrics::round2;
use crate::names::{LegalForm, Normalizer};
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

/// The rule that decided whether a match links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Linked by the award's UEI or DUNS.
    Identifier,
    /// Linked: an equal normalised name or a fuzzy score in the auto band passed every check.
    Linked,
    /// Linked from the candidate band because candidates are accepted.
    AcceptedCandidate,
    /// Not linked: the best candidates are different UEIs that score, state and city cannot
    /// tell apart.
    Tie,
    /// Not linked: the award's state is not the recipient's.
    StateDiffers,
    /// Not linked: one name is the other plus extra words (often a parent or a subsidiary).
    ExtraWords,
    /// Not linked: the words that differ between the names are not alike.
    WordsDiffer,
    /// Not linked: the weighted score is in the candidate band.
    CandidateBand,
    /// Not linked: the weighted score is below the candidate band.
    LowScore,
    /// No recipient shares an identifier or a blocking key with the award (or it has no name).
    #[default]
    NoCandidate,
}

impl Rule {
    /// One sentence for `--explain`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Identifier => "linked by the award's UEI or DUNS",
            Self::Linked => "linked: the name matched and passed every check",
            Self::AcceptedCandidate => "linked from the candidate band (accept_candidates)",
            Self::Tie => {
                "not linked: the best candidates are different UEIs that score, state and city cannot tell apart"
            }
            Self::StateDiffers => "not linked: the award's state differs from the recipient's",
            Self::ExtraWords => "not linked: one name is the other plus extra words",
            Self::WordsDiffer => {
                "not linked: the words that differ between the names are not alike"
            }
            Self::CandidateBand => "not linked: the weighted score is in the candidate band",
            Self::LowScore => "not linked: the weighted score is below the candidate band",
            Self::NoCandidate => "no recipient shares an identifier or a blocking key",
        }
    }
}

/// A scored candidate recipient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    pub recipient: u32,
    /// Token-set ratio, 0–100, as RapidFuzz computes it.
    pub score: f64,
    /// Weighted word score, 0–100 (what ranks and decides).
    pub weighted: f64,
    pub same_state: bool,
    pub same_city: bool,
    /// Both names end in the same legal form (`INC` and `INCORPORATED` are one).
    pub same_form: bool,
}

/// The outcome for one award.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Match {
    /// `None` when no recipient shared any identifier or blocking key with the award.
    pub method: Option<MatchMethod>,
    /// Token-set ratio of the chosen recipient (100 for identifier and equal-name matches).
    pub score: Option<f64>,
    /// Weighted word score of the chosen recipient.
    pub weighted: Option<f64>,
    /// The chosen recipient (linked or not).
    pub recipient: Option<u32>,
    /// Whether the award is linked to `recipient`.
    pub linked: bool,
    /// What decided `linked`.
    pub rule: Rule,
    /// The best candidates, best first, one per UEI (name stages only).
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
    fn candidate<S: AsRef<str>>(
        &self,
        award: &Award<S>,
        form: Option<LegalForm>,
        recipient: u32,
        (score, weighted): (f64, f64),
    ) -> Candidate {
        let r = &self.index.recipients;
        let same = |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        Candidate {
            recipient,
            score,
            weighted,
            same_state: same(crate::records::opt(&award.state), r.state(recipient)),
            same_city: same(crate::records::opt(&award.city), r.city(recipient)),
            same_form: form.is_some() && form == r.form(recipient),
        }
    }

    /// The distinct words of a normalised name with their weights.
    fn words<'s>(&self, norm: &'s str) -> Vec<Word<'s>> {
        let mut seen: Vec<&str> = Vec::new();
        norm.split(' ')
            .filter(|t| {
                !t.is_empty() && !seen.contains(t) && {
                    seen.push(t);
                    true
                }
            })
            .map(|text| Word {
                text,
                weight: self.index.word_weight(text),
            })
            .collect()
    }

    /// The weighted words of each part of an award's normalised name (a "doing business as"
    /// name has two).
    fn parts<'s>(&self, award_norm: &'s str) -> Vec<Vec<Word<'s>>> {
        award_norm.split(" DBA ").map(|p| self.words(p)).collect()
    }

    /// Compares an award's name (as [`Self::parts`]) with a recipient's normalised name, word
    /// by word; the better part counts.
    fn compare_parts<'s>(
        &self,
        parts: &[Vec<Word<'s>>],
        recipient_norm: &'s str,
    ) -> Comparison<'s> {
        let theirs = self.words(recipient_norm);
        parts
            .iter()
            .map(|part| weighted::compare(part, &theirs, self.settings.alike_words))
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .unwrap_or_default()
    }

    /// Compares an award's normalised name with a recipient's, word by word.
    pub fn compare_names<'s>(
        &self,
        award_norm: &'s str,
        recipient_norm: &'s str,
    ) -> Comparison<'s> {
        self.compare_parts(&self.parts(award_norm), recipient_norm)
    }

    /// With `strict_name_links`, the rule that stops a name match from linking, if any: words
    /// on both sides without an alike partner (`WordsDiffer`), one name being the other plus
    /// words (`ExtraWords`: token-set ratio scores "ACME" vs "ACME HOLDINGS" 100, yet these are
    /// usually related, different entities), or states that disagree when both are known
    /// (unless `one_uei`: every recipient with that name is the same UEI).
    fn blocked_by<S: AsRef<str>>(
        &self,
        award: &Award<S>,
        cmp: &Comparison,
        c: &Candidate,
        one_uei: bool,
    ) -> Option<Rule> {
        if !self.settings.strict_name_links {
            return None;
        }
        let state_known =
            award.state.is_some() && self.index.recipients.state(c.recipient).is_some();
        match (cmp.only_a.is_empty(), cmp.only_b.is_empty()) {
            (false, false) => Some(Rule::WordsDiffer),
            (true, false) | (false, true) => Some(Rule::ExtraWords),
            _ if state_known && !c.same_state && !one_uei => Some(Rule::StateDiffers),
            _ => None,
        }
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
        let (normalized_name, form) = self.normalizer.normalize_with_form(award.company.as_ref());
        let exact = |method, recipient, rule| Match {
            method: Some(method),
            score: Some(100.0),
            weighted: Some(100.0),
            recipient: Some(recipient),
            linked: true,
            rule,
            normalized_name: normalized_name.clone(),
            ..Match::default()
        };
        if let Some(i) = award
            .uei
            .as_ref()
            .and_then(|u| self.index.by_uei(u.as_ref()))
        {
            return (exact(MatchMethod::UeiExact, i, Rule::Identifier), None);
        }
        if let Some(i) = award
            .duns
            .as_ref()
            .and_then(|d| self.index.by_duns(d.as_ref()))
        {
            return (exact(MatchMethod::DunsExact, i, Rule::Identifier), None);
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
            .map(|i| self.candidate(award, form, i, (100.0, 100.0)))
            .collect();
        if !same_name.is_empty() {
            sort_candidates(&mut same_name);
            let same_name = self.one_per_uei(same_name);
            let mut m = exact(MatchMethod::NameExact, same_name[0].recipient, Rule::Linked);
            let cmp = Comparison {
                score: 100.0,
                ..Comparison::default()
            };
            let block = if ambiguous(&same_name) {
                Some(Rule::Tie)
            } else {
                self.blocked_by(award, &cmp, &same_name[0], same_name.len() == 1)
            };
            if let Some(rule) = block {
                m.linked = false;
                m.rule = rule;
            }
            m.candidates = same_name.into_iter().take(self.settings.top_k).collect();
            return (m, None);
        }
        self.fuzzy(award, (normalized_name, form), target)
    }

    /// The best-ranked candidate of each UEI (recipients without one stay apart), at most
    /// `top_k` of them, so two rows of one firm never tie with each other.
    fn one_per_uei(&self, sorted: Vec<Candidate>) -> Vec<Candidate> {
        let r = &self.index.recipients;
        let mut seen: Vec<&str> = Vec::new();
        sorted
            .into_iter()
            .filter(|c| match r.uei(c.recipient) {
                Some(u) if seen.contains(&u) => false,
                Some(u) => {
                    seen.push(u);
                    true
                }
                None => true,
            })
            .take(self.settings.top_k.max(2))
            .collect()
    }

    /// Fuzzy stage: rank recipients by the blocking keys they share with the award (rarer keys
    /// weigh more; keys in blocks larger than `max_block_size` are skipped), score the best
    /// `max_candidates` (token-set ratio and weighted score), and keep the top `top_k` UEIs.
    fn fuzzy<S: AsRef<str>>(
        &self,
        award: &Award<S>,
        (normalized_name, form): (String, Option<LegalForm>),
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
        let parts = self.parts(&normalized_name);
        let mut scored: Vec<Candidate> = ranked
            .into_iter()
            .map(|(i, _)| {
                let weighted = self.compare_parts(&parts, r.norm(i)).score;
                let score = token_set_ratio(&normalized_name, r.norm(i));
                self.candidate(award, form, i, (score, weighted))
            })
            .collect();
        sort_candidates(&mut scored);
        let mut scored = self.one_per_uei(scored);
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
        let s = self.settings;
        let cmp = self.compare_parts(&parts, r.norm(best.recipient));
        let block = if best.weighted >= s.low_threshold {
            self.blocked_by(award, &cmp, &best, false)
        } else {
            None
        };
        let method = if best.weighted >= s.high_threshold && block.is_none() {
            MatchMethod::NameFuzzyAuto
        } else if best.weighted >= s.low_threshold {
            MatchMethod::NameFuzzyCandidate
        } else {
            MatchMethod::NameFuzzyLow
        };
        let rule = match (method, block) {
            (MatchMethod::NameFuzzyLow, _) => Rule::LowScore,
            (_, Some(rule)) => rule,
            _ if ambiguous(&scored) => Rule::Tie,
            (MatchMethod::NameFuzzyAuto, None) => Rule::Linked,
            _ if s.accept_candidates => Rule::AcceptedCandidate,
            _ => Rule::CandidateBand,
        };
        let m = Match {
            method: Some(method),
            score: Some(round2(best.score)),
            weighted: Some(round2(best.weighted)),
            recipient: Some(best.recipient),
            linked: matches!(rule, Rule::Linked | Rule::AcceptedCandidate),
            rule,
            candidates: scored,
            blocked,
            normalized_name,
        };
        (m, in_block)
    }
}

/// What ranks candidates, best first; two candidates equal on it are a tie.
fn rank(c: &Candidate) -> impl Ord {
    (
        std::cmp::Reverse(OrdF64(c.weighted)),
        !c.same_state,
        !c.same_city,
        !c.same_form,
    )
}

/// The leading candidates of a sorted list that rank equal with the first.
pub fn ties(sorted: &[Candidate]) -> &[Candidate] {
    let n = match sorted.first() {
        Some(best) => sorted.iter().take_while(|c| rank(c) == rank(best)).count(),
        None => 0,
    };
    &sorted[..n]
}

/// True when the best two candidates tie on rank.
fn ambiguous(sorted: &[Candidate]) -> bool {
    ties(sorted).len() > 1
}

/// Best first by rank, then token-set ratio, then file order (deterministic).
fn sort_candidates(c: &mut [Candidate]) {
    c.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.score.total_cmp(&a.score))
            .then(a.recipient.cmp(&b.recipient))
    });
}

/// A score ordered by `total_cmp`.
#[derive(PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::recipients::tests::scratch_index;

    /// An award of `company` in `state`, without identifiers.
    fn award(company: &str, state: Option<&str>) -> Award {
        let mut a = crate::records::tests::sample_award();
        a.company = company.into();
        a.state = state.map(str::to_string);
        a.city = None;
        a.uei = None;
        a.duns = None;
        a
    }

    const HEADER: &str = "recipient_name,recipient_uei,recipient_duns,city,state\n";

    fn outcome(csv: &str, company: &str, state: Option<&str>) -> (Match, Option<String>) {
        let s = scratch_index(&format!("{HEADER}{csv}"));
        let index = &s.index;
        let m = Matcher {
            index,
            normalizer: &s.normalizer,
            settings: &s.settings,
        }
        .match_award(&award(company, state));
        let uei = m
            .recipient
            .filter(|_| m.linked)
            .and_then(|i| index.recipients.uei(i).map(str::to_string));
        (m, uei)
    }

    #[test]
    fn rows_of_one_uei_are_one_firm_not_a_tie() {
        let csv = "AERODYNE RESEARCH INCORPORATED,HTMHV7AL9A86,,BILLERICA,MA\n\
                   \"AERODYNE RESEARCH, INC.\",HTMHV7AL9A86,,BILLERICA,MA\n";
        let (m, uei) = outcome(csv, "AERODYNE RESEARCH INC", None);
        assert_eq!(
            (m.rule, uei.as_deref()),
            (Rule::Linked, Some("HTMHV7AL9A86"))
        );
        assert_eq!(m.candidates.len(), 1, "one candidate per UEI");
    }

    #[test]
    fn different_ueis_of_one_name_tie_unless_state_or_legal_form_tells_them_apart() {
        let csv = "ACME LLC,AAAAAAAAAAA1,,DAYTON,OH\nACME LLC,BBBBBBBBBBB2,,AUSTIN,TX\n";
        assert_eq!(outcome(csv, "Acme, LLC", None).0.rule, Rule::Tie);
        let (m, uei) = outcome(csv, "Acme, LLC", Some("TX"));
        assert_eq!(
            (m.rule, uei.as_deref()),
            (Rule::Linked, Some("BBBBBBBBBBB2"))
        );
        let csv = "ACME INC,AAAAAAAAAAA1,,DAYTON,OH\nACME LLC,BBBBBBBBBBB2,,DAYTON,OH\n";
        assert_eq!(
            outcome(csv, "Acme Incorporated", None).1.as_deref(),
            Some("AAAAAAAAAAA1")
        );
    }

    #[test]
    fn the_state_rule_spares_a_name_only_one_uei_carries() {
        let csv = "\"21ST CENTURY SYSTEMS, INC\",LE7PBYWQ5555,,HERNDON,VA\n";
        let (m, uei) = outcome(csv, "21ST CENTURY SYSTEMS, INC.", Some("NE"));
        assert_eq!(
            (m.rule, uei.as_deref()),
            (Rule::Linked, Some("LE7PBYWQ5555"))
        );
        // Two UEIs, neither in the award's state: not linked, and the rule says why.
        let csv = "ACME LLC,AAAAAAAAAAA1,,DAYTON,OH\nACME LLC,BBBBBBBBBBB2,,AUSTIN,TX\n";
        assert!(!outcome(csv, "Acme", Some("NE")).0.linked);
    }

    #[test]
    fn fuzzy_links_need_alike_differing_words_and_no_extra_ones() {
        let csv = "K TECHNOLOGY CORP,JCKBPA3AFG71,,HORSHAM,PA\n\
                   NOVA PHOTONICS INC,NNNNNNNNNNN1,,BOSTON,MA\n\
                   EPSILON MATERIALS HOLDINGS LLC,EEEEEEEEEEE1,,SEATTLE,WA\n";
        // Token-set ratio 90.9, but ADELPHI and K carry the names.
        let (m, uei) = outcome(csv, "ADELPHI TECHNOLOGY INC", None);
        assert_eq!(uei, None);
        assert!(
            m.weighted.unwrap() < 75.0 && m.score.unwrap() > 90.0,
            "{m:?}"
        );
        // A typo in a long word links.
        let (m, uei) = outcome(csv, "Nova Photnics", Some("MA"));
        assert_eq!(
            (m.rule, uei.as_deref()),
            (Rule::Linked, Some("NNNNNNNNNNN1"))
        );
        assert_eq!(m.method, Some(MatchMethod::NameFuzzyAuto));
        // The award's name plus HOLDINGS: a related entity, recorded, not linked.
        let (m, uei) = outcome(csv, "Epsilon Materials", Some("WA"));
        assert_eq!((m.rule, uei), (Rule::ExtraWords, None));
    }

    #[test]
    fn ties_are_the_leading_equals() {
        let c = |recipient, weighted, same_state| Candidate {
            recipient,
            score: 100.0,
            weighted,
            same_state,
            same_city: false,
            same_form: false,
        };
        let mut v = vec![c(2, 95.0, false), c(1, 95.0, true), c(0, 95.0, true)];
        sort_candidates(&mut v);
        assert_eq!(v.iter().map(|c| c.recipient).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(ties(&v).len(), 2);
        assert!(ambiguous(&v));
        assert_eq!(ties(&v[1..]).len(), 1);
        assert!(ties(&[]).is_empty());
    }
}
