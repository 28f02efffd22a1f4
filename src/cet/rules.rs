//! The rules scorer: the taxonomy's keyword phrases matched word by word over an award's
//! title, abstract and topic code, weighted by phrase and field, with negative phrases.

use super::params::{ClassifierParams, FieldWeights, RulesParams};
use super::taxonomy::Taxonomy;
use super::text::{KeyMap, Token, phrase_keys};

/// The award field a match was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Title,
    Abstract,
    TopicCode,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Title => "title",
            Source::Abstract => "abstract",
            Source::TopicCode => "topic_code",
        }
    }

    /// Position of the field: title 0, abstract 1, topic code 2.
    pub fn index(self) -> usize {
        self as usize
    }

    /// This field's weight.
    pub fn weight(self, w: &FieldWeights) -> f64 {
        match self {
            Source::Title => w.title,
            Source::Abstract => w.r#abstract,
            Source::TopicCode => w.topic_code,
        }
    }
}

/// One keyword phrase of one area, as word keys.
#[derive(Debug, Clone)]
pub struct Phrase {
    pub keys: Vec<u64>,
    pub area: usize,
    pub weight: f64,
    pub negative: bool,
    pub text: String,
}

/// A phrase found in a field, with its byte range there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub phrase: u32,
    pub source: Source,
    pub start: u32,
    pub end: u32,
}

/// Every phrase of the taxonomy, indexed by its first word.
#[derive(Debug, Clone)]
pub struct PhraseMatcher {
    pub phrases: Vec<Phrase>,
    by_first: KeyMap<Vec<u32>>,
}

impl PhraseMatcher {
    pub fn new(taxonomy: &Taxonomy) -> Self {
        let mut phrases = Vec::new();
        for (area, a) in taxonomy.areas.iter().enumerate() {
            for (list, negative) in [(&a.keywords, false), (&a.negative_keywords, true)] {
                for k in list {
                    phrases.push(Phrase {
                        keys: phrase_keys(k.phrase()),
                        area,
                        weight: k.weight(),
                        negative,
                        text: k.phrase().to_string(),
                    });
                }
            }
        }
        let mut by_first: KeyMap<Vec<u32>> = KeyMap::default();
        for (i, p) in phrases.iter().enumerate() {
            if let Some(&k) = p.keys.first() {
                by_first.entry(k).or_default().push(i as u32);
            }
        }
        Self { phrases, by_first }
    }

    /// Appends every phrase occurrence in `tokens` (of `text`, from `source`) to `out`.
    pub fn find(&self, tokens: &[Token], source: Source, out: &mut Vec<Hit>) {
        for (i, t) in tokens.iter().enumerate() {
            let Some(candidates) = self.by_first.get(&t.key) else {
                continue;
            };
            for &pi in candidates {
                let keys = &self.phrases[pi as usize].keys;
                let end = i + keys.len();
                if end <= tokens.len() && tokens[i..end].iter().zip(keys).all(|(t, k)| t.key == *k)
                {
                    out.push(Hit {
                        phrase: pi,
                        source,
                        start: t.start,
                        end: tokens[end - 1].end,
                    });
                }
            }
        }
    }

    /// The rules scorer's 0-100 score per area from the hits of one award: each distinct phrase
    /// counts once at its best field's weight, plus a bonus per repeat; negative phrases
    /// subtract; the sum maps to 100 * (1 - exp(-sum / saturation)).
    pub fn scores(&self, hits: &[Hit], params: &ClassifierParams, n_areas: usize) -> Vec<f64> {
        let fw = &params.field_weights;
        self.tally(hits, &params.rules, n_areas, |h, p| {
            (p.area, h.source.weight(fw))
        })
        .into_iter()
        .map(|e| {
            if e > 0.0 {
                100.0 * (1.0 - (-e / params.rules.saturation).exp())
            } else {
                0.0
            }
        })
        .collect()
    }

    /// The same evidence kept apart by field, unweighted: `3 × n_areas` sums laid out as
    /// title areas, abstract areas, topic-code areas (the trained model's phrase features).
    pub fn field_evidence(&self, hits: &[Hit], rules: &RulesParams, n_areas: usize) -> Vec<f64> {
        self.tally(hits, rules, 3 * n_areas, |h, p| {
            (h.source.index() * n_areas + p.area, 1.0)
        })
    }

    /// Summed phrase weights per slot (`place` gives a hit's slot and field factor): each
    /// distinct phrase counts once per slot at its best factor, plus `repeat_bonus` per repeat
    /// up to `max_repeats`; negative phrases subtract.
    fn tally(
        &self,
        hits: &[Hit],
        rules: &RulesParams,
        slots: usize,
        place: impl Fn(&Hit, &Phrase) -> (usize, f64),
    ) -> Vec<f64> {
        let mut out = vec![0.0f64; slots];
        // (phrase, slot, best factor, occurrences)
        let mut seen: Vec<(u32, usize, f64, u32)> = Vec::with_capacity(hits.len());
        for h in hits {
            let (slot, factor) = place(h, &self.phrases[h.phrase as usize]);
            match seen.iter_mut().find(|s| s.0 == h.phrase && s.1 == slot) {
                Some(s) => {
                    s.2 = s.2.max(factor);
                    s.3 += 1;
                }
                None => seen.push((h.phrase, slot, factor, 1)),
            }
        }
        for (pi, slot, factor, n) in seen {
            let p = &self.phrases[pi as usize];
            let repeats = (n - 1).min(rules.max_repeats) as f64;
            let w = p.weight * factor * (1.0 + rules.repeat_bonus * repeats);
            out[slot] += if p.negative { -w } else { w };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::tokenize;
    use super::*;

    fn matcher() -> (PhraseMatcher, ClassifierParams) {
        let taxonomy: Taxonomy = serde_saphyr::from_str(
            r#"
version: "t"
effective_date: "2024-01-01"
areas:
  - {id: quantum, name: Q, definition: d, keywords: [quantum sensor, {phrase: qubit, weight: 2.0}]}
  - {id: energy, name: E, definition: d, keywords: [battery], negative_keywords: [battery free]}
"#,
        )
        .unwrap();
        let params = serde_saphyr::from_str(super::super::params::BUILTIN_YAML).unwrap();
        (PhraseMatcher::new(&taxonomy), params)
    }

    fn hits(m: &PhraseMatcher, text: &str, source: Source) -> Vec<Hit> {
        let (mut buf, mut tokens, mut out) = (String::new(), Vec::new(), Vec::new());
        tokenize(text, &mut buf, &mut tokens);
        m.find(&tokens, source, &mut out);
        out
    }

    #[test]
    fn phrases_match_whole_words_in_any_case_and_number() {
        let (m, _) = matcher();
        let text = "Compact Quantum-Sensors; quantum  sensor arrays; a quantumsensor is not one.";
        let h = hits(&m, text, Source::Abstract);
        let found: Vec<&str> = h
            .iter()
            .map(|h| &text[h.start as usize..h.end as usize])
            .collect();
        assert_eq!(found, ["Quantum-Sensors", "quantum  sensor"]);
        assert!(hits(&m, "quantum computing sensor", Source::Title).is_empty());
    }

    #[test]
    fn scores_weigh_field_phrase_repeats_and_negatives() {
        let (m, p) = matcher();
        let score = |parts: &[(&str, Source)]| {
            let h: Vec<Hit> = parts.iter().flat_map(|(t, s)| hits(&m, t, *s)).collect();
            m.scores(&h, &p, 2)
        };
        let once = score(&[("a quantum sensor", Source::Abstract)])[0];
        // 100 * (1 - exp(-1 / 3)): one abstract match of weight 1.
        assert!((once - 28.35).abs() < 0.01, "{once}");
        assert!(
            score(&[("a quantum sensor", Source::Title)])[0] > once,
            "title weighs more"
        );
        assert!(
            score(&[("qubit", Source::Abstract)])[0] > once,
            "phrase weight 2"
        );
        let repeated = score(&[("quantum sensor, quantum sensor", Source::Abstract)])[0];
        let many = score(&[("quantum sensor ".repeat(20).as_str(), Source::Abstract)])[0];
        assert!(
            once < repeated && repeated < many,
            "{once} {repeated} {many}"
        );
        let capped = score(&[("quantum sensor ".repeat(40).as_str(), Source::Abstract)])[0];
        assert_eq!(capped, many, "repeats count up to max_repeats");
        // "battery free" is the negative phrase: it cancels the battery match inside it.
        assert_eq!(
            score(&[("a battery free RFID tag", Source::Abstract)])[1],
            0.0
        );
        assert!(score(&[("a battery pack", Source::Abstract)])[1] > 0.0);
    }
}
