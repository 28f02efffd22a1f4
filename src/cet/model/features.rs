//! Features of the trained scorer, shared by training and scoring: TF-IDF over words and word
//! pairs (stop words removed, sublinear term frequency, taxonomy keywords boosted) with
//! chi-squared selection, and the rows that append the dense parts (word vectors, phrase
//! evidence) after the TF-IDF columns.

use std::collections::HashMap;

use super::super::taxonomy::Taxonomy;
use super::super::text::{KeyMap, KeySet, Token, pair_key, phrase_keys, tokenize, word_key};
use super::LabelledDoc;

/// English function words every model drops (proposal boilerplate comes from settings).
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "may", "me",
    "more", "most", "must", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "us", "use", "used", "using", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "with",
    "within", "would", "you", "your", "new", "based", "well", "one", "two", "three",
];

/// The stop words of a model trained with `p`: English function words, then `p.stop_words`.
pub fn stop_words(p: &crate::cet::params::ModelParams) -> Vec<String> {
    ENGLISH_STOP_WORDS
        .iter()
        .map(|s| s.to_string())
        .chain(p.stop_words.iter().cloned())
        .collect()
}

/// Keys of the normalised stop words.
pub fn stop_set(words: &[String]) -> KeySet {
    words
        .iter()
        .map(|w| word_key(&super::super::text::normalise(w)))
        .collect()
}

/// Whether a token counts as a term: not a stop word, not a single character, not a number.
pub fn is_term(t: &Token, text: &str, stop: &KeySet) -> bool {
    let w = &text[t.start as usize..t.end as usize];
    !(stop.contains(&t.key) || w.len() < 2 || w.bytes().all(|b| b.is_ascii_digit()))
}

/// Term keys with their weighted frequency in one document: words that are terms
/// ([`is_term`]) and, when `ngram_max` is 2, pairs of consecutive terms within a field. Each
/// occurrence counts its field's weight. Sorted by key, unique. `name` sees every term with a
/// way to spell it (training uses it to name the selected features).
pub fn doc_terms(
    fields: &[Vec<Token>; 3],
    texts: [&str; 3],
    weights: [f64; 3],
    stop: &KeySet,
    ngram_max: usize,
    out: &mut Vec<(u64, f64)>,
    mut name: impl FnMut(u64, &dyn Fn() -> String),
) {
    use super::super::text::normalise;
    out.clear();
    for (f, tokens) in fields.iter().enumerate() {
        let text = texts[f];
        let word = |t: &Token| normalise(&text[t.start as usize..t.end as usize]);
        let mut prev: Option<&Token> = None;
        for t in tokens.iter().filter(|t| is_term(t, text, stop)) {
            out.push((t.key, weights[f]));
            name(t.key, &|| word(t));
            if ngram_max >= 2
                && let Some(p) = prev
            {
                let k = pair_key(p.key, t.key);
                out.push((k, weights[f]));
                name(k, &|| format!("{} {}", word(p), word(t)));
            }
            prev = Some(t);
        }
    }
    out.sort_unstable_by_key(|t| t.0);
    let mut w = 0;
    for r in 0..out.len() {
        if w > 0 && out[w - 1].0 == out[r].0 {
            out[w - 1].1 += out[r].1;
        } else {
            out[w] = out[r];
            w += 1;
        }
    }
    out.truncate(w);
}

fn tf(x: f64, sublinear: bool) -> f64 {
    if sublinear && x > 1.0 {
        1.0 + x.ln()
    } else {
        x
    }
}

/// A sparse row: (column, value), L2-normalised.
pub type Row = Vec<(u32, f32)>;

pub fn to_row(terms: &[(u64, f64)], columns: &KeyMap<u32>, idf: &[f32], sublinear: bool) -> Row {
    let mut row = Row::new();
    to_row_into(terms, columns, idf, sublinear, &mut row);
    row
}

/// [`to_row`] into a reused buffer.
pub fn to_row_into(
    terms: &[(u64, f64)],
    columns: &KeyMap<u32>,
    idf: &[f32],
    sublinear: bool,
    row: &mut Row,
) {
    row.clear();
    row.extend(terms.iter().filter_map(|(k, n)| {
        columns
            .get(k)
            .map(|&c| (c, (tf(*n, sublinear) * idf[c as usize] as f64) as f32))
    }));
    let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|(_, v)| *v /= norm);
    }
}

/// The three scored fields of a document, absent ones empty.
pub fn doc_texts(d: &LabelledDoc) -> [&str; 3] {
    [
        d.title.as_str(),
        d.r#abstract.as_deref().unwrap_or(""),
        d.topic_code.as_deref().unwrap_or(""),
    ]
}

/// Tokens of a document's three fields, into `fields`.
pub fn tokenize_doc(d: &LabelledDoc, buf: &mut String, fields: &mut [Vec<Token>; 3]) {
    for (i, t) in doc_texts(d).iter().enumerate() {
        fields[i].clear();
        tokenize(t, buf, &mut fields[i]);
    }
}

/// Key of a feature text ("word" or "word word").
pub fn feature_key(feature: &str) -> u64 {
    let words: Vec<&str> = feature.split(' ').collect();
    match words.as_slice() {
        [a, b] => pair_key(word_key(a), word_key(b)),
        _ => word_key(feature),
    }
}

/// Keys of taxonomy keywords as features: one-word keywords, and every consecutive word pair
/// of longer ones.
pub fn keyword_term_keys(taxonomy: &Taxonomy) -> KeySet {
    let mut out = KeySet::default();
    for a in &taxonomy.areas {
        for k in &a.keywords {
            let keys = phrase_keys(k.phrase());
            if keys.len() == 1 {
                out.insert(keys[0]);
            }
            for w in keys.windows(2) {
                out.insert(pair_key(w[0], w[1]));
            }
        }
    }
    out
}

/// Texts of the selected features, recovered from the first documents that contain them.
pub fn feature_names(
    docs: &[LabelledDoc],
    vocab: &[u64],
    weights3: [f64; 3],
    stop: &KeySet,
    ngram_max: usize,
) -> Vec<String> {
    let wanted: HashMap<u64, usize> = vocab.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut names: Vec<Option<String>> = vec![None; vocab.len()];
    let mut missing = vocab.len();
    let (mut buf, mut fields, mut out) = (String::new(), <[Vec<Token>; 3]>::default(), Vec::new());
    for d in docs {
        if missing == 0 {
            break;
        }
        tokenize_doc(d, &mut buf, &mut fields);
        doc_terms(
            &fields,
            doc_texts(d),
            weights3,
            stop,
            ngram_max,
            &mut out,
            |k, name| {
                if let Some(&i) = wanted.get(&k)
                    && names[i].is_none()
                {
                    names[i] = Some(name());
                    missing -= 1;
                }
            },
        );
    }
    names.into_iter().map(Option::unwrap_or_default).collect()
}

/// Columns with the highest chi-squared statistic for any class (`labels`: class of each row) (sklearn's `chi2` on TF-IDF
/// values: observed = class sum of a feature, expected = its total × class share), best first
/// up to `keep`, returned in column order.
pub fn chi2_select(rows: &[Row], labels: &[usize], d: usize, k: usize, keep: usize) -> Vec<usize> {
    if d <= keep {
        return (0..d).collect();
    }
    let mut observed = vec![0.0f64; d * k];
    let mut total = vec![0.0f64; d];
    let mut class_n = vec![0.0f64; k];
    for (row, &y) in rows.iter().zip(labels) {
        class_n[y] += 1.0;
        for &(c, v) in row {
            total[c as usize] += v as f64;
            observed[c as usize * k + y] += v as f64;
        }
    }
    let n: f64 = class_n.iter().sum::<f64>().max(1.0);
    let score: Vec<f64> = (0..d)
        .map(|j| {
            (0..k)
                .map(|c| {
                    let e = total[j] * class_n[c] / n;
                    if e > 0.0 {
                        (observed[j * k + c] - e).powi(2) / e
                    } else {
                        0.0
                    }
                })
                .fold(0.0, f64::max)
        })
        .collect();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    order.truncate(keep);
    order.sort_unstable();
    order
}
