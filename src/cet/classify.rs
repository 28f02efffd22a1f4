//! One award's classification: area scores from the active scorer, agency priors, the
//! primary area and its band, supporting areas, and evidence excerpts.

use serde::{Deserialize, Serialize};

use super::embedding::EmbeddingScorer;
use super::eval::NONE as NO_AREA;
use super::model::Model;
use super::params::ClassifierParams;
use super::rules::{Hit, PhraseMatcher, Source};
use super::taxonomy::Taxonomy;
pub use super::text::AwardText;
use super::text::{Token, excerpt, sentences, tokenize};
use crate::metrics::round2;

/// A non-primary area that also applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supporting {
    pub cet_id: String,
    pub score: f64,
}

/// A sentence that supports an area, with the phrase found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub cet_id: String,
    pub excerpt: String,
    pub phrase: String,
    pub source: String,
    pub weight: f64,
}

/// One row of `cet_award_classifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub award_id: String,
    /// None when no area scores enough (see [`Classifier::primary`]).
    pub primary_cet_id: Option<String>,
    pub primary_score: f64,
    /// High, Medium or Low; `none` when no area is given.
    pub band: String,
    pub supporting: Vec<Supporting>,
    pub evidence: Vec<Evidence>,
    pub scorer: String,
    pub model_version: Option<String>,
    pub taxonomy_version: String,
}

/// Buffers reused from award to award by one worker.
#[derive(Default)]
pub struct Scratch {
    buf: String,
    /// Tokens of title, abstract and topic code.
    pub tokens: [Vec<Token>; 3],
    pub hits: Vec<Hit>,
    /// The trained model's "no area" score of the last award scored (0 for other scorers).
    pub none: f64,
    model: super::model::Buffers,
}

const SOURCES: [Source; 3] = [Source::Title, Source::Abstract, Source::TopicCode];

/// The embedding scorer and how its scores blend with the base (model, else rules) scores.
pub struct Blend {
    pub scorer: EmbeddingScorer,
    /// Weight of the base scores; 0 for the embedding scorer alone.
    pub base_weight: f64,
    pub embedding_weight: f64,
}

/// The CET classifier: taxonomy, knobs, phrase matcher, and (when loaded) the trained model
/// and the embedding scorer.
pub struct Classifier {
    pub taxonomy: Taxonomy,
    pub params: ClassifierParams,
    pub matcher: PhraseMatcher,
    pub model: Option<Model>,
    pub embedding: Option<Blend>,
    /// (area, agency, branch, boost), names lower-cased.
    priors: Vec<(usize, String, Option<String>, f64)>,
}

impl Classifier {
    /// Builds the classifier; priors naming unknown areas are an error.
    pub fn new(
        taxonomy: Taxonomy,
        params: ClassifierParams,
        model: Option<Model>,
        embedding: Option<Blend>,
    ) -> Result<Self, super::CetError> {
        let priors = params
            .priors
            .iter()
            .map(|p| {
                let area = taxonomy.index_of(&p.cet_id).ok_or_else(|| {
                    super::CetError::Invalid(format!(
                        "prior for agency {:?} names unknown CET area `{}`",
                        p.agency, p.cet_id
                    ))
                })?;
                Ok((
                    area,
                    p.agency.to_lowercase(),
                    p.branch.as_ref().map(|b| b.to_lowercase()),
                    p.boost,
                ))
            })
            .collect::<Result<_, super::CetError>>()?;
        Ok(Self {
            matcher: PhraseMatcher::new(&taxonomy),
            taxonomy,
            params,
            model,
            embedding,
            priors,
        })
    }

    /// Name of the scorer in use.
    pub fn scorer(&self) -> &'static str {
        match (&self.embedding, &self.model) {
            (Some(b), _) if b.base_weight > 0.0 => "hybrid",
            (Some(_), _) => "embedding",
            (None, Some(_)) => "model",
            (None, None) => "rules",
        }
    }

    /// Tokenises and matches the award's fields into `s`, and returns the 0-100 score of
    /// every area, priors included (the model's "no area" score goes to `s.none`).
    pub fn scores(&self, a: &AwardText, s: &mut Scratch) -> Vec<f64> {
        s.hits.clear();
        for (i, text) in texts(a).into_iter().enumerate() {
            s.tokens[i].clear();
            tokenize(text, &mut s.buf, &mut s.tokens[i]);
            self.matcher.find(&s.tokens[i], SOURCES[i], &mut s.hits);
        }
        let n = self.taxonomy.areas.len();
        let base_weight = self.embedding.as_ref().map_or(1.0, |b| b.base_weight);
        let mut none = 0.0;
        let mut base = || match &self.model {
            Some(m) => {
                let evidence = self.matcher.field_evidence(&s.hits, &m.body.rules, n);
                let out = m.scores(&s.tokens, texts(a), &evidence, &mut s.model);
                none = base_weight * out.none;
                out.areas
            }
            None => self.matcher.scores(&s.hits, &self.params, n),
        };
        // Without a vector (none was computed) the embedding scorer has nothing to add.
        let mut scores = match (&self.embedding, a.embedding) {
            (Some(b), Some(v)) if b.base_weight > 0.0 => base()
                .iter()
                .zip(b.scorer.scores(v))
                .map(|(x, e)| b.base_weight * x + b.embedding_weight * e)
                .collect(),
            (Some(b), Some(v)) => b.scorer.scores(v),
            _ => base(),
        };
        s.none = none;
        let agency = a.agency.map(str::to_lowercase);
        let branch = a.branch.map(str::to_lowercase);
        for (area, ag, br, boost) in &self.priors {
            if agency.as_ref() == Some(ag)
                && (br.is_none() || branch.as_ref() == br.as_ref())
                && scores[*area] >= self.params.priors_min_score
            {
                scores[*area] = (scores[*area] + boost).min(100.0);
            }
        }
        scores
    }

    /// Classifies one award.
    pub fn classify(&self, award_id: &str, a: &AwardText, s: &mut Scratch) -> Classification {
        let scores = self.scores(a, s);
        let top = best(&scores).unwrap_or(0);
        let classified = self.primary(&scores, s.none).is_some();
        let supporting = if classified {
            self.supporting(&scores, top)
        } else {
            Vec::new()
        };
        let areas: Vec<usize> = classified
            .then_some(top)
            .into_iter()
            .chain(supporting.iter().copied())
            .collect();
        Classification {
            award_id: award_id.to_string(),
            primary_cet_id: classified.then(|| self.taxonomy.areas[top].id.clone()),
            primary_score: round2(scores[top]),
            band: match classified {
                true if self.corroborated(s, top) => self.band(scores[top]),
                // One word alone is never High: it may be incidental ("battery-free").
                true => match self.band(scores[top]) {
                    "High" => "Medium",
                    b => b,
                },
                false => NO_AREA,
            }
            .to_string(),
            supporting: supporting
                .iter()
                .map(|&i| Supporting {
                    cet_id: self.taxonomy.areas[i].id.clone(),
                    score: round2(scores[i]),
                })
                .collect(),
            evidence: self.evidence(a, s, &areas),
            scorer: self.scorer().to_string(),
            model_version: self.model.as_ref().map(|m| m.version.clone()),
            taxonomy_version: self.taxonomy.version.clone(),
        }
    }

    /// Vectors for a batch of awards when an embedding scorer is in use.
    pub fn embed(&self, awards: &[(&str, AwardText)]) -> Result<Option<Vec<f32>>, super::CetError> {
        match &self.embedding {
            Some(b) => Ok(Some(b.scorer.embed(awards)?)),
            None => Ok(None),
        }
    }

    /// The primary area of these scores: the best (first on ties), unless it scores nothing,
    /// below `bands.none_below` or below `none` (the model's "no area" score): then the award
    /// belongs to no area.
    pub fn primary(&self, scores: &[f64], none: f64) -> Option<usize> {
        let top = best(scores)?;
        let s = scores[top];
        (s > 0.0 && s >= self.params.bands.none_below && s >= none).then_some(top)
    }

    /// Supporting areas of an award whose primary is `top`: the next best areas scoring at
    /// least `supporting.min_score` and `min_gap` below the primary, at most `max`.
    pub fn supporting(&self, scores: &[f64], top: usize) -> Vec<usize> {
        let p = &self.params.supporting;
        let mut order: Vec<usize> = (0..scores.len()).filter(|&i| i != top).collect();
        order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]).then(x.cmp(&y)));
        order
            .into_iter()
            .filter(|&i| scores[i] >= p.min_score && scores[i] <= scores[top] - p.min_gap)
            .take(p.max)
            .collect()
    }

    /// Whether the award holds more than one word of evidence for `area`: two distinct
    /// phrases, or one phrase of several words.
    fn corroborated(&self, s: &Scratch, area: usize) -> bool {
        let mut found: Vec<u32> = s
            .hits
            .iter()
            .filter(|h| {
                let p = &self.matcher.phrases[h.phrase as usize];
                p.area == area && !p.negative
            })
            .map(|h| h.phrase)
            .collect();
        found.sort_unstable();
        found.dedup();
        found.len() >= 2
            || found
                .first()
                .is_some_and(|&p| self.matcher.phrases[p as usize].keys.len() >= 2)
    }

    /// High, Medium or Low.
    pub fn band(&self, score: f64) -> &'static str {
        self.params.bands.of(score)
    }

    /// Up to `max_excerpts` sentences holding matched phrases of `areas` (primary first, each
    /// area's heaviest phrases first, one excerpt per sentence); when the model classified an
    /// area none of whose phrases occur, the sentence with its strongest model feature.
    fn evidence(&self, a: &AwardText, s: &Scratch, areas: &[usize]) -> Vec<Evidence> {
        let p = &self.params.evidence;
        let abstract_sentences = a.r#abstract.map(sentences).unwrap_or_default();
        let mut out: Vec<Evidence> = Vec::new();
        let mut used: Vec<(Source, usize)> = Vec::new();
        for &area in areas {
            let mut hits: Vec<(Hit, f64)> = s
                .hits
                .iter()
                .filter(|h| {
                    let ph = &self.matcher.phrases[h.phrase as usize];
                    ph.area == area && !ph.negative
                })
                .map(|h| {
                    let w = self.matcher.phrases[h.phrase as usize].weight
                        * h.source.weight(&self.params.field_weights);
                    (*h, w)
                })
                .collect();
            if hits.is_empty()
                && let Some(m) = &self.model
            {
                hits.extend(m.strongest_feature(area, &s.tokens, texts(a)).map(
                    |(i, start, end, w)| {
                        (
                            Hit {
                                phrase: u32::MAX,
                                source: SOURCES[i],
                                start,
                                end,
                            },
                            w,
                        )
                    },
                ));
            }
            // Heaviest first, but each distinct phrase before any repeat of one.
            hits.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.start.cmp(&y.0.start)));
            let mut seen = Vec::new();
            let (first, repeats): (Vec<_>, Vec<_>) = hits.into_iter().partition(|(h, _)| {
                let key = (h.phrase, h.source);
                let new = !seen.contains(&key);
                seen.push(key);
                new
            });
            let hits = first.into_iter().chain(repeats);
            for (h, w) in hits {
                if out.len() >= p.max_excerpts {
                    return out;
                }
                let text = match h.source {
                    Source::Title => a.title,
                    Source::Abstract => a.r#abstract.unwrap_or(""),
                    Source::TopicCode => a.topic_code.unwrap_or(""),
                };
                let (from, to) = match h.source {
                    Source::Abstract => abstract_sentences
                        .iter()
                        .copied()
                        .find(|&(st, en)| (st..en).contains(&(h.start as usize)))
                        .unwrap_or((0, text.len())),
                    _ => (0, text.len()),
                };
                if used.contains(&(h.source, from)) {
                    continue;
                }
                used.push((h.source, from));
                let focus = (h.start as usize - from, h.end as usize - from);
                out.push(Evidence {
                    cet_id: self.taxonomy.areas[area].id.clone(),
                    excerpt: excerpt(&text[from..to], focus, p.max_words),
                    phrase: text[h.start as usize..h.end as usize].to_string(),
                    source: h.source.as_str().to_string(),
                    weight: round2(w),
                });
            }
        }
        out
    }
}

/// The best-scoring area (the first on ties).
fn best(scores: &[f64]) -> Option<usize> {
    (0..scores.len())
        .rev()
        .max_by(|&x, &y| scores[x].total_cmp(&scores[y]))
}

/// The three scored fields of an award, absent ones empty.
fn texts<'a>(a: &AwardText<'a>) -> [&'a str; 3] {
    [
        a.title,
        a.r#abstract.unwrap_or(""),
        a.topic_code.unwrap_or(""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules scorer over the shipped taxonomy and knobs.
    fn rules() -> Classifier {
        let taxonomy = serde_saphyr::from_str(super::super::taxonomy::BUILTIN_YAML).unwrap();
        let params = serde_saphyr::from_str(super::super::params::BUILTIN_YAML).unwrap();
        Classifier::new(taxonomy, params, None, None).unwrap()
    }

    fn classify(c: &Classifier, title: &str, abs: &str) -> Classification {
        let text = AwardText {
            title,
            r#abstract: Some(abs),
            topic_code: None,
            agency: None,
            branch: None,
            embedding: None,
        };
        c.classify("a", &text, &mut Scratch::default())
    }

    #[test]
    fn evidence_quotes_the_sentences_that_hold_the_phrases_primary_first() {
        let c = rules();
        let got = classify(
            &c,
            "Qubit control electronics",
            "We build cryogenic control for superconducting qubits. The qubit drive is calibrated \
             daily. A hypersonic test is out of scope. Unrelated closing sentence.",
        );
        assert_eq!(
            got.primary_cet_id.as_deref(),
            Some("quantum_information_science")
        );
        let e = &got.evidence;
        assert!(!e.is_empty() && e.len() <= 3, "{e:?}");
        assert_eq!(e[0].cet_id, "quantum_information_science");
        // The title match weighs most (field weight 2) and comes first.
        assert_eq!(
            (e[0].source.as_str(), e[0].phrase.as_str()),
            ("title", "Qubit")
        );
        for ev in e {
            assert!(ev.excerpt.contains(&ev.phrase), "{ev:?}");
            assert!(
                !ev.excerpt.contains("Unrelated"),
                "only sentences with a phrase: {ev:?}"
            );
        }
        // One excerpt per sentence: the two abstract sentences with "qubit" are two excerpts.
        let abstract_excerpts: Vec<_> = e.iter().filter(|x| x.source == "abstract").collect();
        let mut excerpts: Vec<&str> = abstract_excerpts
            .iter()
            .map(|x| x.excerpt.as_str())
            .collect();
        excerpts.dedup();
        assert_eq!(excerpts.len(), abstract_excerpts.len(), "{e:?}");
    }

    #[test]
    fn an_award_without_any_phrase_is_unclassified_without_evidence() {
        let got = classify(&rules(), "Office chairs", "Ergonomic seating for staff.");
        assert_eq!(got.primary_cet_id, None);
        assert_eq!(got.band, "none");
        assert!(got.evidence.is_empty() && got.supporting.is_empty());
    }
}
