//! `load-neo4j`: the CET graph (CETArea, Award, Company nodes; AWARDED, APPLICABLE_TO,
//! SPECIALIZES_IN relationships) built from the stage outputs, as Cypher statements with
//! parameter batches that a Bolt loader sends, a dry run writes, or an import bundle holds.
//!
//! Every value travels as a parameter; only labels, relationship types and key property names
//! (validated identifiers from settings) are spliced into statements.

pub mod bolt;
pub mod bundle;
pub mod cypher;
pub mod load;
pub mod readonly;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::cet::params::Bands;
use crate::cet::profiles::{CompanyProfile, company_key};
use crate::cet::taxonomy::Taxonomy;
use crate::io::IoError;
use crate::metrics::round2;
use crate::names::Normalizer;
use crate::records::enriched;
use cypher::{Cypher, Write};

/// What can go wrong building or loading the graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{what} {value:?} is not a plain identifier (a letter, then letters, digits or _)")]
    Identifier { what: &'static str, value: String },
    #[error(
        "unknown step `{0}`: expected cetarea-nodes, award-enrichment, company-enrichment, award-relationships or company-relationships"
    )]
    UnknownStep(String),
    #[error(
        "cannot reach the graph server at {uri}: {message}. Check that the server runs, the URI and the port, and NEO4J_USER/NEO4J_PASSWORD"
    )]
    Unreachable { uri: String, message: String },
    #[error("the graph server at {uri} refused the credentials of user `{user}` ({code})")]
    Unauthorized {
        uri: String,
        user: String,
        code: String,
    },
    #[error("no password: set NEO4J_PASSWORD or neo4j.password_file")]
    NoPassword,
    #[error("no graph server: set NEO4J_URI (or neo4j.uri)")]
    NoServer,
    #[error(
        "statement {statement} of the query file writes ({clause} …): --query runs read-only statements; load-neo4j changes the graph"
    )]
    Writes {
        statement: usize,
        clause: &'static str,
    },
    #[error("{0}")]
    Server(String),
    #[error("cannot read the graph's inputs (run classify-cet first): {path}")]
    Inputs {
        path: PathBuf,
        source: Box<crate::cet::CetError>,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl GraphError {
    /// Errors caused by what the user gave (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Identifier { .. }
                | Self::UnknownStep(_)
                | Self::NoPassword
                | Self::NoServer
                | Self::Writes { .. }
        ) || matches!(self, Self::Inputs { source, .. } if source.is_usage())
    }
}

/// A load step users can run alone, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Step {
    CetAreaNodes,
    AwardEnrichment,
    CompanyEnrichment,
    AwardRelationships,
    CompanyRelationships,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::CetAreaNodes,
        Step::AwardEnrichment,
        Step::CompanyEnrichment,
        Step::AwardRelationships,
        Step::CompanyRelationships,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::CetAreaNodes => "cetarea-nodes",
            Step::AwardEnrichment => "award-enrichment",
            Step::CompanyEnrichment => "company-enrichment",
            Step::AwardRelationships => "award-relationships",
            Step::CompanyRelationships => "company-relationships",
        }
    }

    pub fn parse(s: &str) -> Result<Self, GraphError> {
        Self::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| GraphError::UnknownStep(s.to_string()))
    }
}

/// Graph rows kept as compact JSON text in one buffer and parsed back a batch at a time where
/// the loader, the dry run or the bundle needs them: the 250k-award graph held as
/// `serde_json::Value`s took about 2 GB.
#[derive(Debug, Default)]
pub struct Rows {
    text: String,
    /// Where each row's text ends.
    ends: Vec<usize>,
    /// The keys of the rows' `props` maps, each once, in first-seen order.
    prop_keys: Vec<String>,
}

impl Rows {
    pub fn push(&mut self, row: &Value) {
        use std::fmt::Write;
        if let Some(props) = row.get("props").and_then(Value::as_object) {
            for k in props.keys() {
                if !self.prop_keys.contains(k) {
                    self.prop_keys.push(k.clone());
                }
            }
        }
        // Formatting into a String cannot fail.
        let _ = write!(self.text, "{row}");
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i` as the JSON text it was pushed as.
    pub fn raw(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Row `i` parsed back.
    pub fn get(&self, i: usize) -> Value {
        serde_json::from_str(self.raw(i)).expect("Rows hold the JSON text push wrote")
    }

    /// Rows `range` parsed back.
    pub fn values(&self, range: Range<usize>) -> Vec<Value> {
        range.map(|i| self.get(i)).collect()
    }

    /// Consecutive row ranges of at most `size` rows.
    pub fn batches(&self, size: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let size = size.max(1);
        (0..self.len())
            .step_by(size)
            .map(move |start| start..(start + size).min(self.len()))
    }

    /// All rows' text, back to back: what a fingerprint of the rows hashes.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn prop_keys(&self) -> &[String] {
        &self.prop_keys
    }
}

/// One parameterised statement and the rows it runs over (`UNWIND $rows AS row`).
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    /// The idempotent form (MERGE, or a stale-edge removal).
    pub text: String,
    pub rows: &'a Rows,
    /// The label or relationship type the statement writes.
    pub target: String,
    /// What to send instead while `target` has nothing in the database yet.
    pub when_empty: WhenEmpty,
}

/// The shortcut a statement has on a first load.
#[derive(Debug, Clone, PartialEq)]
pub enum WhenEmpty {
    /// CREATE instead of MERGE, every property inline (a batch that fails or is retried falls
    /// back to the MERGE).
    Create(String),
    /// Nothing to do (a stale-edge removal when there are no edges).
    Skip,
}

/// Every row of the graph, in the shape the statements take.
#[derive(Debug, Default)]
pub struct GraphData {
    pub cet_areas: Rows,
    pub awards: Rows,
    pub companies: Rows,
    pub awarded: Rows,
    pub applicable_keep: Rows,
    pub applicable: Rows,
    pub specializes_keep: Rows,
    pub specializes: Rows,
}

/// Where the graph's rows come from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub taxonomy: PathBuf,
    /// The enriched awards (or the ingested ones).
    pub awards: PathBuf,
    pub classifications: PathBuf,
    pub profiles: PathBuf,
}

/// Award columns the graph uses.
#[derive(Debug, Deserialize)]
struct AwardRow {
    award_id: String,
    award_title: String,
    agency: String,
    branch: Option<String>,
    phase: String,
    program: String,
    award_year: i32,
    award_amount: f64,
    topic_code: Option<String>,
    company: String,
    uei: Option<String>,
    duns: Option<String>,
    state: Option<String>,
    city: Option<String>,
    #[serde(default)]
    usaspending_recipient_uei: Option<String>,
    #[serde(default)]
    usaspending_recipient_name: Option<String>,
    #[serde(default)]
    _usaspending_linked: Option<bool>,
}

const AWARD_COLUMNS: &[&str] = &[
    "award_id",
    "award_title",
    "agency",
    "branch",
    "phase",
    "program",
    "award_year",
    "award_amount",
    "topic_code",
    "company",
    "uei",
    "duns",
    "state",
    "city",
];
const AWARD_OPTIONAL: &[&str] = &[
    enriched::RECIPIENT_UEI,
    enriched::RECIPIENT_NAME,
    enriched::LINKED,
];

/// Classification columns the graph uses (evidence is not loaded).
#[derive(Debug, Deserialize)]
struct ClassRow {
    award_id: String,
    primary_cet_id: Option<String>,
    primary_score: f64,
    band: Option<String>,
    supporting: Vec<crate::cet::classify::Supporting>,
    scorer: String,
    model_version: Option<String>,
}

/// A node row: its key and its other properties.
fn node(key: &str, id: &str, props: Map<String, Value>) -> Value {
    json!({ key: id, "props": props })
}

/// A relationship row: the two end keys and the relationship's properties.
fn rel(from: &str, to: &str, props: Value) -> Value {
    json!({ "from": from, "to": to, "props": props })
}

impl GraphData {
    /// Reads the taxonomy, awards, classifications and profiles into graph rows.
    pub fn build(
        src: &Sources,
        taxonomy: &Taxonomy,
        bands: &Bands,
        normalizer: &Normalizer,
    ) -> Result<Self, crate::cet::CetError> {
        let mut g = GraphData::default();
        for a in &taxonomy.areas {
            let mut p = Map::new();
            p.insert("name".into(), json!(a.name));
            p.insert("definition".into(), json!(a.definition));
            p.insert(
                "keywords".into(),
                json!(a.keywords.iter().map(|k| k.phrase()).collect::<Vec<_>>()),
            );
            p.insert("parent_cet_id".into(), json!(a.parent));
            p.insert("taxonomy_version".into(), json!(taxonomy.version));
            g.cet_areas.push(&node("cet_id", &a.id, p));
        }

        let mut classes: HashMap<String, ClassRow> = HashMap::new();
        let cols = [
            "award_id",
            "primary_cet_id",
            "primary_score",
            "band",
            "supporting",
            "scorer",
            "model_version",
        ];
        for batch in
            crate::records::read_projected::<ClassRow>(&src.classifications, &cols, &[], 8192)?
        {
            for c in batch? {
                classes.insert(c.award_id.clone(), c);
            }
        }

        let profiles: HashMap<String, CompanyProfile> = {
            let mut m = HashMap::new();
            for batch in crate::records::read_projected::<CompanyProfile>(
                &src.profiles,
                &[
                    "company_key",
                    "key_type",
                    "uei",
                    "company_name",
                    "normalized_name",
                    "award_count",
                    "classified_award_count",
                    "total_award_amount",
                    "dominant_cet_id",
                    "specialization_score",
                    "first_award_year",
                    "last_award_year",
                    "areas",
                ],
                &[],
                8192,
            )? {
                for p in batch? {
                    m.insert(p.company_key.clone(), p);
                }
            }
            m
        };

        // Companies: first-seen identity, award counts and dollars over all awards.
        let mut companies: HashMap<String, (Map<String, Value>, u64, f64)> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for batch in crate::records::read_projected::<AwardRow>(
            &src.awards,
            AWARD_COLUMNS,
            AWARD_OPTIONAL,
            8192,
        )? {
            for a in batch? {
                let uei = crate::records::company_uei(
                    a.uei.as_deref(),
                    a._usaspending_linked,
                    a.usaspending_recipient_uei.as_deref(),
                )
                .map(str::to_string);
                let normalized = normalizer.normalize(&a.company);
                let key = company_key(uei.as_deref(), &normalized);
                let c = classes.get(&a.award_id);
                let mut p = Map::new();
                p.insert("title".into(), json!(a.award_title));
                p.insert("agency".into(), json!(a.agency));
                p.insert("branch".into(), json!(a.branch));
                p.insert("phase".into(), json!(a.phase));
                p.insert("program".into(), json!(a.program));
                p.insert("award_year".into(), json!(a.award_year));
                p.insert("award_amount".into(), json!(a.award_amount));
                p.insert("topic_code".into(), json!(a.topic_code));
                p.insert(
                    "cet_primary_id".into(),
                    json!(c.and_then(|c| c.primary_cet_id.clone())),
                );
                p.insert(
                    "cet_primary_score".into(),
                    json!(
                        c.filter(|c| c.primary_cet_id.is_some())
                            .map(|c| c.primary_score)
                    ),
                );
                p.insert("cet_band".into(), json!(c.and_then(|c| c.band.clone())));
                p.insert(
                    "cet_supporting_ids".into(),
                    json!(
                        c.map(|c| c
                            .supporting
                            .iter()
                            .map(|s| s.cet_id.clone())
                            .collect::<Vec<_>>())
                            .unwrap_or_default()
                    ),
                );
                p.insert("cet_scorer".into(), json!(c.map(|c| c.scorer.clone())));
                p.insert(
                    "cet_model_version".into(),
                    json!(c.and_then(|c| c.model_version.clone())),
                );
                g.awards.push(&node("award_id", &a.award_id, p));
                g.awarded.push(&rel(&key, &a.award_id, json!({})));
                if let Some(c) = c {
                    let mut keep = Vec::new();
                    if let Some(primary) = &c.primary_cet_id {
                        keep.push(primary.clone());
                        g.applicable.push(&rel(
                            &a.award_id,
                            primary,
                            json!({
                                "primary": true, "score": c.primary_score,
                                "band": c.band, "rank": 1,
                            }),
                        ));
                    }
                    for (i, s) in c.supporting.iter().enumerate() {
                        keep.push(s.cet_id.clone());
                        g.applicable.push(&rel(
                            &a.award_id,
                            &s.cet_id,
                            json!({
                                "primary": false, "score": s.score,
                                "band": bands.of(s.score), "rank": i + 2,
                            }),
                        ));
                    }
                    g.applicable_keep
                        .push(&json!({"from": a.award_id, "keep": keep}));
                }
                let entry = companies.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    let mut p = Map::new();
                    p.insert("uei".into(), json!(uei));
                    p.insert("duns".into(), json!(a.duns));
                    p.insert("name".into(), json!(a.company));
                    p.insert("normalized_name".into(), json!(normalized));
                    p.insert("state".into(), json!(a.state));
                    p.insert("city".into(), json!(a.city));
                    p.insert(
                        "usaspending_recipient_name".into(),
                        json!(a.usaspending_recipient_name),
                    );
                    (p, 0, 0.0)
                });
                entry.1 += 1;
                entry.2 += a.award_amount;
            }
        }
        for key in order {
            let (mut p, n, dollars) = companies.remove(&key).expect("company seen");
            let prof = profiles.get(&key);
            p.insert(
                "cet_dominant_id".into(),
                json!(prof.and_then(|p| p.dominant_cet_id.clone())),
            );
            p.insert(
                "cet_specialization_score".into(),
                json!(
                    prof.filter(|p| p.dominant_cet_id.is_some())
                        .map(|p| round2(p.specialization_score))
                ),
            );
            p.insert("award_count".into(), json!(n));
            p.insert("total_award_amount".into(), json!(dollars));
            if let Some(prof) = prof {
                let mut keep = Vec::new();
                for area in &prof.areas {
                    keep.push(area.cet_id.clone());
                    g.specializes.push(&rel(&key, &area.cet_id, json!({
                        "primary": prof.dominant_cet_id.as_deref() == Some(area.cet_id.as_str()),
                        "score": round2(100.0 * area.award_share),
                        "specialization_score": round2(prof.specialization_score),
                        "award_share": area.award_share,
                        "dollar_share": area.dollar_share,
                    })));
                }
                g.specializes_keep.push(&json!({"from": key, "keep": keep}));
            }
            g.companies.push(&node("company_key", &key, p));
        }
        Ok(g)
    }

    /// The statements of one step, in the order they must run.
    pub fn statements(&self, step: Step, c: &Cypher) -> Vec<Statement<'_>> {
        fn upsert<'r>(
            build: impl Fn(&Write) -> String,
            target: &str,
            rows: &'r Rows,
        ) -> Statement<'r> {
            Statement {
                text: build(&Write::Merge(rows.prop_keys())),
                rows,
                target: target.to_string(),
                when_empty: WhenEmpty::Create(build(&Write::Create(rows.prop_keys()))),
            }
        }
        fn stale<'r>(text: String, target: &str, rows: &'r Rows) -> Statement<'r> {
            Statement {
                text,
                rows,
                target: target.to_string(),
                when_empty: WhenEmpty::Skip,
            }
        }
        match step {
            Step::CetAreaNodes => vec![upsert(|v| c.cet_areas(v), &c.cet, &self.cet_areas)],
            Step::AwardEnrichment => vec![upsert(|v| c.awards(v), &c.award, &self.awards)],
            Step::CompanyEnrichment => {
                vec![upsert(|v| c.companies(v), &c.company, &self.companies)]
            }
            Step::AwardRelationships => vec![
                upsert(|v| c.awarded(v), &c.awarded, &self.awarded),
                stale(
                    c.remove_stale_applicable(),
                    &c.applicable,
                    &self.applicable_keep,
                ),
                upsert(|v| c.applicable(v), &c.applicable, &self.applicable),
            ],
            Step::CompanyRelationships => vec![
                stale(
                    c.remove_stale_specializes(),
                    &c.specializes,
                    &self.specializes_keep,
                ),
                upsert(|v| c.specializes(v), &c.specializes, &self.specializes),
            ],
        }
    }
}

/// Writes every statement and parameter batch as NDJSON lines
/// `{"step", "statement", "when_empty", "batch", "params": {"rows": [...]}}` (schema statements
/// first, with empty params) instead of sending them; `when_empty` is the CREATE form (or
/// `skip`) the loader sends while the target has nothing yet. Returns the lines written.
pub fn write_dry_run(
    path: &Path,
    schema: &[String],
    steps: &[(Step, Vec<Statement<'_>>)],
    batch_size: usize,
) -> Result<u64, IoError> {
    let mut w = crate::io::table::NdjsonWriter::create(path)?;
    for s in schema {
        w.write(&json!({"step": "schema", "statement": s, "batch": 0, "params": {}}))?;
    }
    for (step, statements) in steps {
        for s in statements {
            // What the loader sends instead while the target is still empty.
            let when_empty = match &s.when_empty {
                WhenEmpty::Create(text) => text.as_str(),
                WhenEmpty::Skip => "skip",
            };
            for (i, range) in s.rows.batches(batch_size).enumerate() {
                w.write(&json!({"step": step.name(), "statement": s.text, "when_empty": when_empty, "batch": i, "params": {"rows": s.rows.values(range)}}))?;
            }
        }
    }
    let n = w.rows();
    w.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_in_batches_and_collect_property_keys() {
        let mut rows = Rows::default();
        assert!(rows.is_empty());
        let values = [
            json!({"award_id": "a", "props": {"title": "it's \"x\"", "year": 2021}}),
            json!({"award_id": "b", "props": {"title": null, "amount": 2.5, "ids": ["q", "r"]}}),
            json!({"from": "c", "keep": []}),
        ];
        for v in &values {
            rows.push(v);
        }
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.raw(1), values[1].to_string());
        assert_eq!(rows.values(0..3), values);
        assert_eq!(
            rows.text(),
            values.iter().map(Value::to_string).collect::<String>()
        );
        assert_eq!(rows.batches(2).collect::<Vec<_>>(), [0..2, 2..3]);
        assert_eq!(rows.batches(5).collect::<Vec<_>>(), vec![0..3; 1]);
        assert_eq!(Rows::default().batches(2).count(), 0);
        // serde_json maps keep their keys sorted: first-seen order is per row, sorted.
        assert_eq!(rows.prop_keys(), ["title", "year", "amount", "ids"]);
    }
}
