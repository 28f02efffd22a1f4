//! Weighted name similarity: words that many recipients share (TECHNOLOGY, SYSTEMS) count
//! little, rare words carry a firm's identity. Words pair one to one, equal words first, then
//! alike ones (indel ratio at or above a floor, both words long enough that one letter does not
//! make another name); the score is the weighted cosine of the paired words (soft TF-IDF, as in
//! Cohen, Ravikumar and Fienberg 2003). A pair weighs as its more common word on both sides, so
//! a typo (a word no recipient uses) does not outweigh the word it misspells. The unpaired words
//! on each side are kept, for the rules that decide whether a match may link.

use rapidfuzz::fuzz;

/// A word of a normalised name and its weight (see [`idf`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Word<'a> {
    pub text: &'a str,
    pub weight: f64,
}

/// How two names compare word by word.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison<'a> {
    /// 0–100: 100 when every word pairs with an equal word.
    pub score: f64,
    /// Words of the first name with no equal or alike word in the second.
    pub only_a: Vec<&'a str>,
    /// Words of the second name with no equal or alike word in the first.
    pub only_b: Vec<&'a str>,
}

/// Words shorter than this pair only with an equal word (`ELO` is not `JELO`).
pub const MIN_ALIKE_LEN: usize = 5;

/// The weight of a word that `df` of `n` recipients use: 1 + ln((n + 1) / (df + 1)).
pub fn idf(df: u32, n: usize) -> f64 {
    1.0 + ((n as f64 + 1.0) / (df as f64 + 1.0)).ln()
}

/// Indel similarity 0–1 of two words when they may pair as alike, else 0.
fn alike(a: &str, b: &str, floor: f64) -> f64 {
    if a.len() < MIN_ALIKE_LEN || b.len() < MIN_ALIKE_LEN {
        return 0.0;
    }
    let s = fuzz::ratio(a.bytes(), b.bytes());
    if s >= floor { s } else { 0.0 }
}

/// Compares two names given as weighted words (each word once); `floor` is the least indel
/// similarity (0–1) at which two different words pair.
pub fn compare<'a>(a: &[Word<'a>], b: &[Word<'a>], floor: f64) -> Comparison<'a> {
    let mut pair_a: Vec<Option<(usize, f64)>> = vec![None; a.len()];
    let mut used_b = vec![false; b.len()];
    for (i, x) in a.iter().enumerate() {
        if let Some(j) = (0..b.len()).find(|&j| !used_b[j] && b[j].text == x.text) {
            pair_a[i] = Some((j, 1.0));
            used_b[j] = true;
        }
    }
    // Alike pairs, most alike first (ties in input order, so the result is deterministic).
    let mut alike_pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate().filter(|(i, _)| pair_a[*i].is_none()) {
        for (j, y) in b.iter().enumerate().filter(|(j, _)| !used_b[*j]) {
            let s = alike(x.text, y.text, floor);
            if s > 0.0 {
                alike_pairs.push((s, i, j));
            }
        }
    }
    alike_pairs.sort_by(|p, q| q.0.total_cmp(&p.0).then((p.1, p.2).cmp(&(q.1, q.2))));
    for (s, i, j) in alike_pairs {
        if pair_a[i].is_none() && !used_b[j] {
            pair_a[i] = Some((j, s));
            used_b[j] = true;
        }
    }
    // Squared norms with each pair weighing as its more common word, and the paired dot product.
    let (mut na, mut nb, mut dot) = (0.0, 0.0, 0.0);
    for (x, pair) in a.iter().zip(&pair_a) {
        match pair {
            Some((j, s)) => {
                let w = x.weight.min(b[*j].weight);
                na += w * w;
                nb += w * w;
                dot += s * w * w;
            }
            None => na += x.weight * x.weight,
        }
    }
    for (y, used) in b.iter().zip(&used_b) {
        if !used {
            nb += y.weight * y.weight;
        }
    }
    let score = if na > 0.0 && nb > 0.0 {
        (100.0 * dot / (na * nb).sqrt()).min(100.0)
    } else {
        0.0
    };
    Comparison {
        score,
        only_a: a
            .iter()
            .zip(&pair_a)
            .filter(|(_, p)| p.is_none())
            .map(|(w, _)| w.text)
            .collect(),
        only_b: b
            .iter()
            .zip(&used_b)
            .filter(|(_, u)| !**u)
            .map(|(w, _)| w.text)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words with weights as a 200,000-recipient table would give them.
    fn words<'a>(name: &'a str, common: &[&str]) -> Vec<Word<'a>> {
        name.split(' ')
            .map(|t| Word {
                text: t,
                weight: idf(if common.contains(&t) { 20_000 } else { 3 }, 200_000),
            })
            .collect()
    }

    const COMMON: &[&str] = &["TECHNOLOGY", "SYSTEM", "RESEARCH"];

    fn score(a: &str, b: &str) -> Comparison<'static> {
        let (a, b): (&'static str, &'static str) = (
            Box::leak(a.to_string().into_boxed_str()),
            Box::leak(b.to_string().into_boxed_str()),
        );
        compare(&words(a, COMMON), &words(b, COMMON), 0.85)
    }

    #[test]
    fn equal_names_score_100() {
        let c = score("AERODYNE RESEARCH", "RESEARCH AERODYNE");
        assert!((c.score - 100.0).abs() < 1e-9);
        assert!(c.only_a.is_empty() && c.only_b.is_empty());
    }

    #[test]
    fn a_shared_common_word_is_not_a_match() {
        // Token-set ratio scores these 90.9; only TECHNOLOGY is shared.
        let c = score("ADELPHI TECHNOLOGY", "K TECHNOLOGY");
        assert!(c.score < 30.0, "{c:?}");
        assert_eq!((c.only_a, c.only_b), (vec!["ADELPHI"], vec!["K"]));
    }

    #[test]
    fn a_typo_in_a_long_word_still_pairs() {
        let c = score("NOVA PHOTNICS", "NOVA PHOTONIC");
        assert!(c.score > 90.0, "{c:?}");
        assert!(c.only_a.is_empty() && c.only_b.is_empty());
    }

    #[test]
    fn a_misspelt_rare_word_does_not_outweigh_its_partner() {
        // GRAGYR and SEENSOR are in no recipient's name (the highest weight); each pairs with
        // the word it misspells and weighs as that word.
        let a = [
            Word {
                text: "GRANITE",
                weight: idf(40, 200_000),
            },
            Word {
                text: "GRAGYR",
                weight: idf(0, 200_000),
            },
            Word {
                text: "SEENSOR",
                weight: idf(0, 200_000),
            },
        ];
        let b = [
            Word {
                text: "GRANITE",
                weight: idf(40, 200_000),
            },
            Word {
                text: "GRAGYRR",
                weight: idf(2, 200_000),
            },
            Word {
                text: "SENSOR",
                weight: idf(3000, 200_000),
            },
        ];
        let c = compare(&a, &b, 0.85);
        assert!(c.score > 93.0, "{c:?}");
        assert!(c.only_a.is_empty() && c.only_b.is_empty());
    }

    #[test]
    fn short_words_pair_only_when_equal() {
        let c = score("ELO TECHNOLOGY", "JELO TECHNOLOGY");
        assert_eq!((c.only_a, c.only_b), (vec!["ELO"], vec!["JELO"]));
    }

    #[test]
    fn extra_words_are_reported_on_their_side() {
        let c = score("ADVANCED RESEARCH", "ADVANCED CERAMIC RESEARCH");
        assert!(c.only_a.is_empty());
        assert_eq!(c.only_b, vec!["CERAMIC"]);
        assert!(c.score < 90.0, "{c:?}");
    }

    #[test]
    fn rare_words_weigh_more() {
        assert!(idf(1, 1000) > idf(100, 1000));
        assert!((idf(999, 999) - 1.0).abs() < 1e-12);
    }
}
