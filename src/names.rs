//! Company-name normalisation for matching: Unicode folded to ASCII, upper-cased, `&` read as
//! AND, a trailing parenthesised note dropped, punctuation to spaces, runs of single letters
//! joined, abbreviations spelled out, plurals folded, and articles at either end and trailing
//! legal suffixes dropped. The rules come from settings (`enrich.name_rules`) so users can
//! extend them.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::config::NameRules;

/// A legal form (`INC`, `LLC`, …): an index into the configured forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegalForm(u8);

/// Compiled normalisation rules.
#[derive(Debug, Clone)]
pub struct Normalizer {
    /// Legal-form spellings as token sequences (`LIMITED LIABILITY COMPANY` is three) with
    /// their form, longest first.
    suffixes: Vec<(Vec<String>, LegalForm)>,
    articles: Vec<String>,
    abbreviations: HashMap<String, String>,
    fold_plurals: bool,
    truncated_length: Option<usize>,
}

impl Normalizer {
    /// Compiles the rules from settings. Suffixes go through the same word rules as names, so
    /// `L L C` and `LLC` are one suffix.
    pub fn new(rules: &NameRules) -> Self {
        let mut n = Self {
            suffixes: Vec::new(),
            articles: Vec::new(),
            abbreviations: rules
                .abbreviations
                .iter()
                .map(|(k, v)| (fold(k).trim().to_string(), fold(v).trim().to_string()))
                .collect(),
            fold_plurals: rules.fold_plurals,
            truncated_length: rules.truncated_length,
        };
        let mut suffixes: Vec<(Vec<String>, LegalForm)> = rules
            .legal_forms
            .values()
            .zip((0..=u8::MAX).map(LegalForm))
            .flat_map(|(spellings, form)| spellings.iter().map(move |s| (s, form)))
            .map(|(s, form)| (n.words(&fold(s)), form))
            .filter(|(t, _)| !t.is_empty())
            .collect();
        suffixes.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        n.suffixes = suffixes;
        n.articles = rules
            .leading_articles
            .iter()
            .flat_map(|a| n.words(&fold(a)))
            .collect();
        n
    }

    /// The normalised form of `name`: tokens joined by single spaces; empty when nothing is left.
    /// A "doing business as" name keeps both parts, each normalised: `ACME PHOTONICS DBA ACME`.
    pub fn normalize(&self, name: &str) -> String {
        self.normalize_with_form(name).0
    }

    /// The normalised name and the legal form its (first) part ended in, if any.
    pub fn normalize_with_form(&self, name: &str) -> (String, Option<LegalForm>) {
        let name = name.trim();
        let truncated = self.truncated_length == Some(name.chars().count());
        let all = self.words(&fold(drop_trailing_note(name)));
        match all.iter().position(|t| t == "DBA") {
            Some(i) if i > 0 && i + 1 < all.len() => {
                let (own, form) = self.strip(all[..i].to_vec(), false);
                let (dba, _) = self.strip(all[i + 1..].to_vec(), truncated);
                (format!("{own} DBA {dba}"), form)
            }
            _ => self.strip(all, truncated),
        }
    }

    /// Folded text → words: single-letter runs joined, abbreviations spelled out, plurals folded.
    fn words(&self, folded: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut run = String::new();
        let flush = |run: &mut String, out: &mut Vec<String>| {
            if !run.is_empty() {
                out.push(std::mem::take(run));
            }
        };
        for t in folded.split_ascii_whitespace() {
            if t.len() == 1 && t.as_bytes()[0].is_ascii_alphabetic() {
                run.push_str(t);
                continue;
            }
            flush(&mut run, &mut out);
            out.push(t.to_string());
        }
        flush(&mut run, &mut out);
        for w in &mut out {
            if let Some(full) = self.abbreviations.get(w.as_str()) {
                w.clone_from(full);
            }
            if self.fold_plurals {
                singular(w);
            }
        }
        out
    }

    /// Drops a leading article, then trailing articles and legal forms (keeping at least one
    /// word; the outermost form is the name's); in a `truncated` name first a last word that is
    /// the start of a legal form.
    fn strip(&self, mut toks: Vec<String>, truncated: bool) -> (String, Option<LegalForm>) {
        let mut form = None;
        if toks.len() > 1 && self.articles.contains(&toks[0]) {
            toks.remove(0);
        }
        if truncated && toks.len() > 1 && self.ends_in_cut_suffix(&toks) {
            toks.pop();
        }
        'strip: loop {
            if toks.len() > 1 && self.articles.contains(&toks[toks.len() - 1]) {
                toks.pop();
                continue 'strip;
            }
            for (suffix, f) in &self.suffixes {
                let n = suffix.len();
                if toks.len() > n && toks[toks.len() - n..] == suffix[..] {
                    toks.truncate(toks.len() - n);
                    form = form.or(Some(*f));
                    continue 'strip;
                }
            }
            break;
        }
        (toks.join(" "), form)
    }

    /// True when the last word is a proper prefix of a suffix's word and the words before it
    /// are that suffix's earlier words (`… LIMITED LIAB`, `… I`).
    fn ends_in_cut_suffix(&self, toks: &[String]) -> bool {
        let last = &toks[toks.len() - 1];
        self.suffixes.iter().any(|(s, _)| {
            (1..=s.len().min(toks.len() - 1)).any(|k| {
                s[k - 1].len() > last.len()
                    && s[k - 1].starts_with(last.as_str())
                    && toks[toks.len() - k..toks.len() - 1] == s[..k - 1]
            })
        })
    }
}

/// Reads a word as singular: `…IES` → `…Y`, a final `S` dropped (not after `S`, `U` or `I`:
/// `CLASS`, `BUS`, `ANALYSIS`); words under four letters are left alone.
fn singular(w: &mut String) {
    let b = w.as_bytes();
    if b.len() >= 5 && w.ends_with("IES") {
        w.truncate(w.len() - 3);
        w.push('Y');
    } else if b.len() >= 4
        && b[b.len() - 1] == b'S'
        && !matches!(b[b.len() - 2], b'S' | b'U' | b'I')
    {
        w.pop();
    }
}

/// The name without a trailing parenthesised note (`ACME LLC (2146)`, `ACME (AMM)`), unless
/// the note is all there is.
fn drop_trailing_note(name: &str) -> &str {
    match name
        .strip_suffix(')')
        .and_then(|s| s.rfind('(').map(|i| &name[..i]))
    {
        Some(rest) if !rest.trim().is_empty() => rest.trim_end(),
        _ => name,
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
            ("Acme Photonics, Inc.", "ACME PHOTONIC"),
            ("ACME PHOTONICS INC", "ACME PHOTONIC"),
            ("The Acme Photonics Corp", "ACME PHOTONIC"),
            ("Acme Photonics L.L.C.", "ACME PHOTONIC"),
            ("Acme Co., Inc.", "ACME"),
            (
                "Acme Photonics, Inc. DBA Acme Labs LLC",
                "ACME PHOTONIC DBA ACME LABORATORY",
            ),
            ("Smith & Jones Associates", "SMITH AND JONE ASSOCIATE"),
            (
                "Société Générale Énergie SARL",
                "SOCIETE GENERALE ENERGIE SARL",
            ),
            ("Ｆｕｌｌｗｉｄｔｈ Labs", "FULLWIDTH LABORATORY"),
            ("  Beta---Robotics ,LLC ", "BETA ROBOTIC"),
            ("The Company", "COMPANY"),
            ("INC", "INC"),
            ("", ""),
            // Spelled-out legal forms, a trailing article, a parenthesised note.
            ("TIAX LIMITED LIABILITY COMPANY", "TIAX"),
            ("AZNA LIMITED LIABILITY COMPANY (2146)", "AZNA"),
            ("DCODE GROUP, INC., THE", "DCODE GROUP"),
            (
                "Advanced Methods & Materials (AMM)",
                "ADVANCED METHOD AND MATERIAL",
            ),
            // Single letters joined: the same firm spelled G D A and GDA.
            ("G D A CORP", "GDA"),
            ("GDA Corporation", "GDA"),
            ("Acme Photonics L L C", "ACME PHOTONIC"),
            ("K & M Environmental", "K AND M ENVIRONMENTAL"),
            // Abbreviations and plurals.
            ("Stottler Henke Assoc.", "STOTTLER HENKE ASSOCIATE"),
            ("ACME INTL", "ACME INTERNATIONAL"),
            ("Advanced Ceramics Research", "ADVANCED CERAMIC RESEARCH"),
            ("Quantum Technologies", "QUANTUM TECHNOLOGY"),
            ("Glass Analysis", "GLASS ANALYSIS"),
        ];
        for (raw, want) in table {
            assert_eq!(n.normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn names_cut_at_the_truncation_length_lose_a_partial_suffix() {
        let n = norm();
        // FPDS keeps 30 characters: these are cut inside "INC" and "LLC".
        assert_eq!(
            n.normalize("APPLIED ORDNANCE TECHNOLOGY, I"),
            "APPLIED ORDNANCE TECHNOLOGY"
        );
        assert_eq!(
            n.normalize("MATERIALS RESEARCH& DESIGN, IN"),
            "MATERIAL RESEARCH AND DESIGN"
        );
        // A cut inside an ordinary word is left as it is; shorter names are never cut.
        assert_eq!(
            n.normalize("APPLIED HYDRO-ACOUSTICS RESEAR"),
            "APPLIED HYDRO ACOUSTIC RESEAR"
        );
        assert_eq!(n.normalize("VITAMIN I"), "VITAMIN I");
    }

    #[test]
    fn spellings_of_one_legal_form_are_one_form() {
        let n = norm();
        let form = |name| n.normalize_with_form(name).1;
        assert_eq!(form("Acme, Inc."), form("ACME INCORPORATED"));
        assert_eq!(form("Acme L.L.C."), form("ACME LIMITED LIABILITY COMPANY"));
        assert_ne!(form("Acme Inc"), form("Acme LLC"));
        assert_eq!(form("Acme Co., Inc."), form("Acme Inc"));
        assert_eq!(form("Acme Photonics"), None);
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
