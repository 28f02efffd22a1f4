//! The trained CET scorer: a multinomial logistic regression over three kinds of features —
//! TF-IDF of words and word pairs, word vectors distilled from a sentence encoder, and the
//! taxonomy's phrase evidence per field — with "no area" (`none`) as one more class, so an
//! award that fits no area is an answer, not a failure.

pub mod artifact;
pub mod features;
pub mod optim;
mod train;
pub mod vectors;

use std::path::Path;

use super::CetError;
use super::eval::NONE;
use super::taxonomy::Taxonomy;
use super::text::{KeyMap, KeySet, Token, pair_key};
pub use artifact::{DEFAULT_PATH, ModelBody, StoredVectors, TrainingInfo};
use features::{Row, doc_terms, feature_key, is_term, stop_set, to_row_into};
use vectors::WordVectors;

/// A labelled document for training.
#[derive(Debug, Clone)]
pub struct LabelledDoc {
    /// Stable identity (award id or a text hash).
    pub id: String,
    pub title: String,
    pub r#abstract: Option<String>,
    pub topic_code: Option<String>,
    /// Agency and branch (sub-agency), for the scorers' priors.
    pub agency: Option<String>,
    pub branch: Option<String>,
    /// Taxonomy area indexes, primary first; empty when the award belongs to no area.
    pub areas: Vec<usize>,
}

/// Word vectors for training, with the corpus they were read from.
#[derive(Clone)]
pub struct VectorSource {
    pub vectors: StoredVectors,
    pub corpus: String,
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    /// `cet_classifier_v1-<first 8 hex of the checksum>`.
    pub version: String,
    pub body: ModelBody,
    featurizer: Featurizer,
    /// Taxonomy area of each class (`None` for the no-area class).
    class_area: Vec<Option<usize>>,
    /// Class of each taxonomy area, if any.
    area_class: Vec<Option<usize>>,
}

/// Scores of one award: 0-100 per taxonomy area and for "no area".
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub areas: Vec<f64>,
    pub none: f64,
}

/// Buffers reused from award to award when scoring.
#[derive(Debug, Default)]
pub struct Buffers {
    terms: Vec<(u64, f64)>,
    found: Vec<(u32, f32)>,
    vector: Vec<f32>,
    row: Row,
    logits: Vec<f64>,
}

/// Turns a document into its feature row; the same for training and scoring.
#[derive(Debug, Clone)]
struct Featurizer {
    columns: KeyMap<u32>,
    idf: Vec<f32>,
    stop: KeySet,
    weights3: [f64; 3],
    ngram_max: usize,
    sublinear: bool,
    vectors: Option<WordVectors>,
    vector_weight: f32,
    n_areas: usize,
}

impl Featurizer {
    /// Columns: TF-IDF features, then vector dimensions, then 3 × areas phrase evidence.
    fn width(&self) -> usize {
        self.idf.len() + self.vectors.as_ref().map_or(0, |v| v.dims) + 3 * self.n_areas
    }

    /// The row of one document into `b.row` (`evidence`: [`field_evidence`](super::rules::PhraseMatcher::field_evidence)).
    fn row(&self, fields: &[Vec<Token>; 3], texts: [&str; 3], evidence: &[f64], b: &mut Buffers) {
        doc_terms(
            fields,
            texts,
            self.weights3,
            &self.stop,
            self.ngram_max,
            &mut b.terms,
            |_, _| {},
        );
        to_row_into(
            &b.terms,
            &self.columns,
            &self.idf,
            self.sublinear,
            &mut b.row,
        );
        let mut col = self.idf.len() as u32;
        if let Some(v) = &self.vectors {
            b.vector.resize(v.dims, 0.0);
            v.doc_vector(
                fields,
                texts,
                self.weights3,
                &self.stop,
                &mut b.found,
                &mut b.vector,
            );
            b.row.extend(
                b.vector
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x != 0.0)
                    .map(|(i, x)| (col + i as u32, x * self.vector_weight)),
            );
            col += v.dims as u32;
        }
        b.row.extend(
            evidence
                .iter()
                .enumerate()
                .filter(|(_, e)| **e > 0.0)
                .map(|(i, e)| (col + i as u32, e.ln_1p() as f32)),
        );
    }
}

impl Model {
    /// Builds the scoring form and checks the body against the taxonomy.
    fn from_body(
        body: ModelBody,
        taxonomy: &Taxonomy,
        checksum: Option<&str>,
    ) -> Result<Self, CetError> {
        let bad = |m: String| CetError::ModelInvalid(m);
        if body.format != artifact::FORMAT || body.format_version != artifact::FORMAT_VERSION {
            return Err(bad(format!(
                "format {} v{} (expected {} v{})",
                body.format,
                body.format_version,
                artifact::FORMAT,
                artifact::FORMAT_VERSION
            )));
        }
        if body.taxonomy_version != taxonomy.version {
            return Err(bad(format!(
                "trained for taxonomy {}, the taxonomy is {}",
                body.taxonomy_version, taxonomy.version
            )));
        }
        let class_area = body
            .classes
            .iter()
            .map(|c| match taxonomy.index_of(c) {
                Some(a) => Ok(Some(a)),
                None if c == NONE => Ok(None),
                None => Err(bad(format!("class `{c}` is not in the taxonomy"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut area_class = vec![None; taxonomy.areas.len()];
        for (c, a) in class_area.iter().enumerate() {
            if let Some(a) = a {
                area_class[*a] = Some(c);
            }
        }
        let b = &body;
        let featurizer = Featurizer {
            columns: b
                .features
                .iter()
                .enumerate()
                .map(|(i, f)| (feature_key(f), i as u32))
                .collect(),
            idf: b.idf.clone(),
            stop: stop_set(&b.stop_words),
            weights3: [
                b.field_weights.title,
                b.field_weights.r#abstract,
                b.field_weights.topic_code,
            ],
            ngram_max: b.params.ngram_max,
            sublinear: b.params.sublinear_tf,
            vectors: b.word_vectors.as_ref().map(WordVectors::new).transpose()?,
            vector_weight: b.params.vector_weight as f32,
            n_areas: taxonomy.areas.len(),
        };
        let k = b.classes.len();
        if b.idf.len() != b.features.len()
            || b.weights.len() != featurizer.width() * k
            || b.intercepts.len() != k
        {
            return Err(bad(
                "array sizes do not match (features + vector dims + phrase features) × classes"
                    .into(),
            ));
        }
        let checksum = match checksum {
            Some(c) => c.to_string(),
            None => artifact::checksum(&body)?,
        };
        Ok(Self {
            version: format!("cet_classifier_v1-{}", &checksum[..8]),
            featurizer,
            class_area,
            area_class,
            body,
        })
    }

    /// Writes the artifact atomically; returns its checksum.
    pub fn save(&self, path: &Path) -> Result<String, CetError> {
        artifact::save(&self.body, path)
    }

    /// Reads an artifact (see [`artifact::load`]) and checks it against the taxonomy.
    pub fn load(path: &Path, taxonomy: &Taxonomy) -> Result<Self, CetError> {
        let (body, checksum) = artifact::load(path)?;
        Self::from_body(body, taxonomy, Some(&checksum))
    }

    /// Probability × 100 of every taxonomy area (0 for areas without a class) and of no area,
    /// from the award's tokens and its phrase evidence per field
    /// ([`field_evidence`](super::rules::PhraseMatcher::field_evidence) with this model's `rules`); `b` is scratch space.
    pub fn scores(
        &self,
        fields: &[Vec<Token>; 3],
        texts: [&str; 3],
        evidence: &[f64],
        b: &mut Buffers,
    ) -> Scores {
        self.featurizer.row(fields, texts, evidence, b);
        let k = self.body.classes.len();
        let z = &mut b.logits;
        z.clear();
        z.extend(self.body.intercepts.iter().map(|&v| v as f64));
        for &(c, v) in &b.row {
            let w = &self.body.weights[c as usize * k..(c as usize + 1) * k];
            for (zc, wc) in z.iter_mut().zip(w) {
                *zc += (*wc * v) as f64;
            }
        }
        let lse = optim::log_sum_exp(z);
        let mut out = Scores {
            areas: vec![0.0; self.area_class.len()],
            none: 0.0,
        };
        for (c, zc) in z.iter().enumerate() {
            let p = 100.0 * (zc - lse).exp();
            match self.class_area[c] {
                Some(a) => out.areas[a] = p,
                None => out.none = p,
            }
        }
        out
    }

    /// The occurrence (field, byte range) of the TF-IDF feature that pushes `area` up the
    /// most, with its weight × idf, for evidence when none of the area's keywords occur.
    pub fn strongest_feature(
        &self,
        area: usize,
        fields: &[Vec<Token>; 3],
        texts: [&str; 3],
    ) -> Option<(usize, u32, u32, f64)> {
        let c = self.area_class[area]?;
        let k = self.body.classes.len();
        let f = &self.featurizer;
        let mut best: Option<(usize, u32, u32, f64)> = None;
        for (field, tokens) in fields.iter().enumerate() {
            let kept: Vec<&Token> = tokens
                .iter()
                .filter(|t| is_term(t, texts[field], &f.stop))
                .collect();
            for (i, t) in kept.iter().enumerate() {
                let mut cands = vec![(t.key, t.start)];
                if i > 0 {
                    cands.push((pair_key(kept[i - 1].key, t.key), kept[i - 1].start));
                }
                for (key, start) in cands {
                    if let Some(&col) = f.columns.get(&key) {
                        let w = self.body.weights[col as usize * k + c] as f64
                            * f.idf[col as usize] as f64;
                        if w > 0.0 && best.is_none_or(|b| w > b.3) {
                            best = Some((field, start, t.end, w));
                        }
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::features::{doc_texts, tokenize_doc};
    use super::*;
    use crate::cet::classify::{Classifier, Scratch};
    use crate::cet::params::ClassifierParams;
    use crate::cet::rules::{PhraseMatcher, Source};
    use crate::cet::text::phrase_keys;
    use crate::rng::Rng;

    fn shipped() -> (Taxonomy, ClassifierParams) {
        (
            Taxonomy::load(Path::new(super::super::taxonomy::DEFAULT_PATH)).unwrap(),
            ClassifierParams::load(Path::new(super::super::params::DEFAULT_PATH)).unwrap(),
        )
    }

    fn generated_docs(n: usize) -> Vec<LabelledDoc> {
        let mut rng = Rng::new(5);
        (0..n)
            .map(|i| {
                let area = i % 21;
                LabelledDoc {
                    id: format!("d{i}"),
                    title: crate::sample::text::title(&mut rng, area),
                    r#abstract: Some(crate::sample::text::abstract_text(
                        &mut rng, "Acme", area, None,
                    )),
                    topic_code: None,
                    agency: None,
                    branch: None,
                    // Every tenth document belongs to no area.
                    areas: if i % 10 == 9 { vec![] } else { vec![area] },
                }
            })
            .collect()
    }

    /// A model trained on 300 generated documents, with what it was trained from.
    fn trained() -> (Model, Taxonomy, ClassifierParams, Vec<LabelledDoc>) {
        let (taxonomy, mut params) = shipped();
        params.model.min_df = 1;
        let docs = generated_docs(300);
        let m = Model::train(&docs, &taxonomy, &params, None, "test").unwrap();
        (m, taxonomy, params, docs)
    }

    #[test]
    fn save_load_round_trip_is_exact_and_tampering_is_caught() {
        let (m, taxonomy, _, _) = trained();
        assert_eq!(m.body.classes.len(), 22);
        assert_eq!(m.body.classes[21], NONE);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        m.save(&path).unwrap();
        let back = Model::load(&path, &taxonomy).unwrap();
        assert_eq!(back.version, m.version);
        assert_eq!(back.body.weights, m.body.weights);

        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("\"documents\":300", "\"documents\":301", 1);
        assert_ne!(tampered, text);
        std::fs::write(&path, tampered).unwrap();
        let err = Model::load(&path, &taxonomy).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn scores_are_probabilities_over_areas_and_none() {
        let (m, taxonomy, params, docs) = trained();
        let d = &docs[3];
        let (mut buf, mut fields) = (String::new(), <[Vec<Token>; 3]>::default());
        tokenize_doc(d, &mut buf, &mut fields);
        let matcher = PhraseMatcher::new(&taxonomy);
        let mut hits = Vec::new();
        for (i, src) in [Source::Title, Source::Abstract, Source::TopicCode]
            .into_iter()
            .enumerate()
        {
            matcher.find(&fields[i], src, &mut hits);
        }
        let evidence = matcher.field_evidence(&hits, &params.rules, 21);
        let s = m.scores(&fields, doc_texts(d), &evidence, &mut Buffers::default());
        let total: f64 = s.areas.iter().sum::<f64>() + s.none;
        assert!((total - 100.0).abs() < 1e-6, "{total}");
        let best = (0..21)
            .max_by(|&a, &b| s.areas[a].total_cmp(&s.areas[b]))
            .unwrap();
        assert_eq!(best, 3, "a training document scores its own area first");
    }

    #[test]
    fn a_secondary_share_teaches_the_labelled_secondary_area_as_second_choice() {
        let (taxonomy, mut params) = shipped();
        params.model.min_df = 1;
        // Every area-a award also names area a + 1 as secondary.
        let mut docs = generated_docs(300);
        for d in &mut docs {
            if let Some(&a) = d.areas.first() {
                d.areas.push((a + 1) % 21);
            }
        }
        let mut second = |share: f64| {
            params.model.secondary_share = share;
            let m = Model::train(&docs, &taxonomy, &params, None, "test").unwrap();
            let c = Classifier::new(taxonomy.clone(), params.clone(), Some(m), None).unwrap();
            let mut s = Scratch::default();
            // How many awards score their labelled secondary area second.
            docs.iter()
                .filter(|d| d.areas.len() == 2)
                .filter(|d| {
                    let scores = c.scores(&d.text(), &mut s);
                    let mut order: Vec<usize> = (0..21).collect();
                    order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]));
                    order[1] == d.areas[1]
                })
                .count()
        };
        let (without, with) = (second(0.0), second(0.3));
        assert!(with > without + 100, "{without} → {with} of 270");
    }

    #[test]
    fn feature_keys_match_the_tokenizer() {
        let keys = phrase_keys("Neural Networks");
        assert_eq!(feature_key("neural network"), pair_key(keys[0], keys[1]));
        assert_eq!(feature_key("radar"), phrase_keys("radars")[0]);
    }
}
