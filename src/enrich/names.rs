//! Company-name normalisation for matching: Unicode folded to ASCII, upper-cased, `&` read as
//! AND, punctuation to spaces, a leading article and trailing legal suffixes dropped. The rules
//! come from settings (`enrich.name_rules`) so users can extend them.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::config::NameRules;

/// Compiled normalisation rules.
#[derive(Debug, Clone)]
pub struct Normalizer {
    /// Legal suffixes as token sequences (`L L C` is three tokens), longest first.
    suffixes: Vec<Vec<String>>,
    articles: Vec<String>,
}

impl Normalizer {
    /// Compiles the rules from settings.
    pub fn new(rules: &NameRules) -> Self {
        let mut suffixes: Vec<Vec<String>> = rules
            .legal_suffixes
            .iter()
            .map(|s| tokens(&fold(s)).map(str::to_string).collect::<Vec<_>>())
            .filter(|t: &Vec<String>| !t.is_empty())
            .collect();
        suffixes.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let articles = rules
            .leading_articles
            .iter()
            .map(|a| fold(a).trim().to_string())
            .collect();
        Self { suffixes, articles }
    }

    /// The normalised form of `name`: tokens joined by single spaces; empty when nothing is left.
    /// A "doing business as" name keeps both parts, each normalised: `ACME PHOTONICS DBA ACME`.
    pub fn normalize(&self, name: &str) -> String {
        let folded = fold(name);
        let all: Vec<&str> = tokens(&folded).collect();
        match all.iter().position(|t| *t == "DBA") {
            Some(i) if i > 0 && i + 1 < all.len() => {
                format!(
                    "{} DBA {}",
                    self.normalize_tokens(all[..i].to_vec()),
                    self.normalize_tokens(all[i + 1..].to_vec())
                )
            }
            _ => self.normalize_tokens(all),
        }
    }

    fn normalize_tokens(&self, mut toks: Vec<&str>) -> String {
        if toks.len() > 1 && self.articles.iter().any(|a| a == toks[0]) {
            toks.remove(0);
        }
        // Drop trailing legal suffixes ("ACME CO INC" -> "ACME"), keeping at least one token.
        'strip: loop {
            for suffix in &self.suffixes {
                let n = suffix.len();
                if toks.len() > n
                    && toks[toks.len() - n..]
                        .iter()
                        .zip(suffix)
                        .all(|(a, b)| a == b)
                {
                    toks.truncate(toks.len() - n);
                    continue 'strip;
                }
            }
            break;
        }
        toks.join(" ")
    }
}

/// NFKD, combining marks dropped, ASCII upper case, `&` → ` AND `, anything else not a letter
/// or digit → space.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.nfkd().filter(|c| !is_combining_mark(*c)) {
        match c {
            '&' => out.push_str(" AND "),
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
            _ => out.push(' '),
        }
    }
    out
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm() -> Normalizer {
        let settings = crate::config::load(&crate::config::Sources::default())
            .unwrap()
            .settings;
        Normalizer::new(&settings.enrich.name_rules)
    }

    #[test]
    fn normalisation_table() {
        let n = norm();
        let table = [
            ("Acme Photonics, Inc.", "ACME PHOTONICS"),
            ("ACME PHOTONICS INC", "ACME PHOTONICS"),
            ("The Acme Photonics Corp", "ACME PHOTONICS"),
            ("Acme Photonics L.L.C.", "ACME PHOTONICS"),
            ("Acme Co., Inc.", "ACME"),
            (
                "Acme Photonics, Inc. DBA Acme Labs LLC",
                "ACME PHOTONICS DBA ACME LABS",
            ),
            ("Smith & Jones Associates", "SMITH AND JONES ASSOCIATES"),
            (
                "Société Générale Énergie SARL",
                "SOCIETE GENERALE ENERGIE SARL",
            ),
            ("Ｆｕｌｌｗｉｄｔｈ Labs", "FULLWIDTH LABS"),
            ("  Beta---Robotics ,LLC ", "BETA ROBOTICS"),
            ("The Company", "COMPANY"),
            ("INC", "INC"),
            ("", ""),
        ];
        for (raw, want) in table {
            assert_eq!(n.normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn normalisation_is_idempotent() {
        let n = norm();
        for raw in ["The Acme Co. Inc.", "Ünïcode & Co LLC", "a.b.c. corp", "X"] {
            let once = n.normalize(raw);
            assert_eq!(n.normalize(&once), once, "{raw}");
        }
    }
}
