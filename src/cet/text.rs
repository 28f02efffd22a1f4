//! Text shared by every CET scorer: the award's text view ([`AwardText`]), word tokens with a
//! normalised key (lower case, plural folded) and their byte offsets, and sentence boundaries
//! for evidence excerpts.
//!
//! Keywords and award text go through the same [`tokenize`], so "Neural Networks",
//! "neural-network" and "neural networks" all match the keyword "neural network", and a
//! keyword can only match whole words ("ai" never matches inside "said").

use xxhash_rust::xxh3::xxh3_64;

/// The text and context of one award the scorers read.
#[derive(Debug, Clone, Copy)]
pub struct AwardText<'a> {
    pub title: &'a str,
    pub r#abstract: Option<&'a str>,
    pub topic_code: Option<&'a str>,
    pub agency: Option<&'a str>,
    pub branch: Option<&'a str>,
    /// The award's dense vector, for the embedding and hybrid scorers.
    pub embedding: Option<&'a [f32]>,
}

/// One word of a text: its byte range and the hash of its normalised form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: u32,
    pub end: u32,
    pub key: u64,
}

/// A map keyed by word keys ([`word_key`], [`pair_key`]): they are hashes already, so the map
/// uses them as they are.
pub type KeyMap<V> = std::collections::HashMap<u64, V, nohash_hasher::BuildNoHashHasher<u64>>;

/// A set of word keys (see [`KeyMap`]).
pub type KeySet = std::collections::HashSet<u64, nohash_hasher::BuildNoHashHasher<u64>>;

/// Key of a normalised word (stable across versions: xxh3 is a fixed algorithm).
pub fn word_key(normalised: &str) -> u64 {
    xxh3_64(normalised.as_bytes())
}

/// Key of two consecutive words (a bigram feature).
pub fn pair_key(a: u64, b: u64) -> u64 {
    xxh3_64(&[a.to_le_bytes(), b.to_le_bytes()].concat())
}

/// Lower-cases `word` into `out` and folds English plurals to the singular ("batteries" →
/// "battery", "processes" → "process", "sensors" → "sensor"); short words stay as they are.
pub fn normalise_into(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        // The common case, without per-character Unicode case mapping.
        out.push_str(word);
        out.make_ascii_lowercase();
    } else {
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
    let n = out.len();
    if n <= 3 || !out.ends_with('s') {
        return;
    }
    if out.ends_with("ies") && n > 4 {
        out.truncate(n - 3);
        out.push('y');
    } else if out.ends_with("sses")
        || out.ends_with("xes")
        || out.ends_with("ches")
        || out.ends_with("shes")
    {
        out.truncate(n - 2);
    } else if !(out.ends_with("ss") || out.ends_with("us") || out.ends_with("is")) {
        out.truncate(n - 1);
    }
}

/// The normalised form of one word.
pub fn normalise(word: &str) -> String {
    let mut s = String::new();
    normalise_into(word, &mut s);
    s
}

/// Splits `text` into word tokens (maximal runs of letters and digits), appending to `out`.
/// `buf` is scratch space reused between calls.
pub fn tokenize(text: &str, buf: &mut String, out: &mut Vec<Token>) {
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                normalise_into(&text[s..i], buf);
                out.push(Token {
                    start: s as u32,
                    end: i as u32,
                    key: word_key(buf),
                });
                start = None;
            }
            _ => {}
        }
    }
}

/// The word keys of a phrase, as [`tokenize`] would produce them.
pub fn phrase_keys(phrase: &str) -> Vec<u64> {
    let (mut buf, mut out) = (String::new(), Vec::new());
    tokenize(phrase, &mut buf, &mut out);
    out.iter().map(|t| t.key).collect()
}

/// Words after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "al", "fig",
    "figs", "no", "nos", "approx", "inc", "corp", "ltd", "co", "u.s", "ref", "eq", "vol", "dept",
    "gov", "lt", "col", "gen", "capt", "cf",
];

/// Byte ranges of the sentences of `text`: a sentence ends at `.`, `!` or `?` followed by
/// white space, unless the word before the period is a known abbreviation ("Dr.", "e.g.")
/// or a single letter (an initial); a blank line always ends one. Ranges are trimmed.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next_ws = bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
        let ends = match b {
            b'!' | b'?' => next_ws,
            b'.' => next_ws && !abbreviation_before(&text[start..i]),
            b'\n' => bytes.get(i + 1) == Some(&b'\n'),
            _ => false,
        };
        if ends {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn abbreviation_before(head: &str) -> bool {
    let word = head
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_ascii_lowercase();
    (word.len() == 1 && word.chars().all(|c| c.is_ascii_uppercase()))
        || ABBREVIATIONS.contains(&lower.as_str())
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail < s.len() {
        out.push((start + lead, end - trail));
    }
}

/// At most `max_words` words of `sentence` around the byte range `focus` (relative to the
/// sentence), with "…" where words were cut.
pub fn excerpt(sentence: &str, focus: (usize, usize), max_words: usize) -> String {
    let words: Vec<(usize, &str)> = sentence
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - sentence.as_ptr() as usize, w))
        .collect();
    if words.len() <= max_words {
        return sentence.to_string();
    }
    let first = words.iter().rposition(|(o, _)| *o <= focus.0).unwrap_or(0);
    let last = words
        .iter()
        .rposition(|(o, _)| *o < focus.1)
        .unwrap_or(first);
    let span = last - first + 1;
    let before = max_words.saturating_sub(span) / 2;
    let from = first.saturating_sub(before).min(words.len() - max_words);
    let to = (from + max_words).min(words.len());
    let body = words[from..to]
        .iter()
        .map(|(_, w)| *w)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{}{body}{}",
        if from > 0 { "… " } else { "" },
        if to < words.len() { " …" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_fold_to_one_form() {
        for (a, b) in [
            ("Batteries", "battery"),
            ("processes", "process"),
            ("process", "process"),
            ("Sensors", "sensor"),
            ("boxes", "box"),
            ("status", "status"),
            ("analysis", "analysis"),
            ("gas", "gas"),
            ("UAS", "uas"),
            ("Qubits", "qubit"),
        ] {
            assert_eq!(normalise(a), b, "{a}");
        }
    }

    #[test]
    fn tokens_are_whole_words() {
        let keys = phrase_keys("He said: AI-enabled, 3D printing!");
        assert_eq!(keys.len(), 6);
        assert_eq!(keys[2], word_key("ai"));
        assert!(!phrase_keys("maintain said").contains(&word_key("ai")));
        assert_eq!(
            phrase_keys("neural-networks"),
            phrase_keys("Neural Network")
        );
    }

    #[test]
    fn sentences_respect_abbreviations() {
        let text =
            "Dr. Smith leads the work, e.g. radar tests. It uses U.S. data! Does it?\n\nNew part";
        let got: Vec<&str> = sentences(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            got,
            [
                "Dr. Smith leads the work, e.g. radar tests.",
                "It uses U.S. data!",
                "Does it?",
                "New part"
            ]
        );
    }

    #[test]
    fn excerpts_keep_the_focus() {
        let sentence = (0..80)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let at = sentence.find("w60").unwrap();
        let e = excerpt(&sentence, (at, at + 3), 50);
        assert!(e.contains("w60") && e.starts_with("… ") && e.ends_with("w79"));
        assert_eq!(e.split_whitespace().filter(|w| *w != "…").count(), 50);
        assert_eq!(excerpt("short one", (0, 5), 50), "short one");
    }
}
