//! The `enrich` stage: link each award's company to a USAspending recipient (UEI exact, DUNS
//! exact, normalised name exact, then token-set-ratio fuzzy over blocked candidates), keep
//! every award, record method and score, and measure the match quality.
//!
//! The recipient index is the only large structure held; awards stream through in chunks.

pub mod checkpoint;
pub mod fuzzy;
pub mod matcher;
pub mod recipients;
pub mod weighted;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{EnrichSettings, OutputSettings};
use crate::io::IoError;
use crate::io::checks::{Gate, Severity};
use crate::io::input::InputInfo;
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::metrics::round2;
use crate::names::Normalizer;
use crate::progress::Progress;
use crate::records::{self, Award, enriched};
pub use matcher::{Match, MatchMethod, Matcher, Rule};
use recipients::{LoadReport, RecipientIndex};

/// Why enrichment could not run.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("{path}: missing required column(s) {}; the header has: {}", missing.join(", "), found.join(", "))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot build the enriched table: {0}")]
    Arrow(String),
    #[error("no award {id} in {path}")]
    NoSuchAward { id: String, path: PathBuf },
}

impl EnrichError {
    /// True when the inputs are unusable as given (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::MissingColumns { .. } | Self::Read { .. })
            || matches!(self, Self::Io(e) if e.is_input())
    }
}

/// What to enrich and how.
#[derive(Debug, Clone)]
pub struct EnrichOptions {
    pub awards: PathBuf,
    pub recipients: PathBuf,
    pub settings: EnrichSettings,
    /// Add the top-k candidates as a list column.
    pub candidates: bool,
    /// Ground-truth links (`award_id,recipient_uei`) to measure precision and recall.
    pub truth: Option<PathBuf>,
    /// Save finished chunks here and resume from them (see [`checkpoint`]).
    pub checkpoint_dir: Option<PathBuf>,
}

/// Linked and total awards of one group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rate {
    pub awards: u64,
    pub linked: u64,
    pub match_rate: f64,
}

/// Links made and links correct (precision) for one method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Quality {
    pub linked: u64,
    pub correct: u64,
    pub precision: f64,
}

/// Accuracy against a truth file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TruthReport {
    pub awards_with_truth: u64,
    /// Awards whose truth names a recipient.
    pub positives: u64,
    /// Awards whose truth is "no link" (a row with an empty UEI).
    pub negatives: u64,
    /// Of those, the awards linked anyway (each one a false link).
    pub negatives_linked: u64,
    /// `negatives_linked / negatives`.
    pub false_link_rate: f64,
    pub linked: u64,
    pub correct: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub by_method: BTreeMap<String, Quality>,
    /// Of the positives that reached the fuzzy stage, the share whose true recipient was among
    /// the blocked candidates (blocking recall).
    pub blocking_recall: f64,
    pub fuzzy_positives: u64,
}

/// Counts and quality figures of one enrichment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrichReport {
    pub awards: u64,
    pub linked: u64,
    pub match_rate: f64,
    /// Awards per method; `none` when no recipient shared an identifier or blocking key.
    pub by_method: BTreeMap<String, u64>,
    /// Of those, awards recorded but not linked (candidates, low scores, ambiguous ties).
    pub unlinked_by_method: BTreeMap<String, u64>,
    /// Match rate by phase, agency and identifier type.
    pub breakdown: BTreeMap<String, BTreeMap<String, Rate>>,
    pub recipients: LoadReport,
    pub inputs: Vec<InputInfo>,
    /// Mean blocked candidates per award that reached the fuzzy stage.
    pub mean_blocked: f64,
    pub truth: Option<TruthReport>,
    /// Null rate of each match column.
    pub null_rates: BTreeMap<String, f64>,
    /// Chunks loaded from the checkpoint folder instead of matched again.
    pub resumed_chunks: usize,
}

/// Fields added to every award row.
fn enrichment_fields(candidates: bool) -> Vec<FieldRef> {
    let text = |n: &str| Arc::new(Field::new(n, DataType::Utf8, true));
    let mut f = vec![
        text(enriched::MATCH_METHOD),
        Arc::new(Field::new(enriched::MATCH_SCORE, DataType::Float64, true)),
        Arc::new(Field::new(
            enriched::MATCH_WEIGHTED_SCORE,
            DataType::Float64,
            true,
        )),
        Arc::new(Field::new(enriched::LINKED, DataType::Boolean, false)),
        text(enriched::MATCH_RULE),
        text(enriched::RECIPIENT_NAME),
        text(enriched::RECIPIENT_UEI),
        text(enriched::RECIPIENT_DUNS),
        text(enriched::RECIPIENT_PARENT_NAME),
        text(enriched::RECIPIENT_PARENT_UEI),
        text(enriched::RECIPIENT_CITY),
        text(enriched::RECIPIENT_STATE),
        text(enriched::RECIPIENT_ZIP),
    ];
    if candidates {
        let item = Fields::from(vec![
            Field::new("recipient_uei", DataType::Utf8, true),
            Field::new("recipient_name", DataType::Utf8, true),
            Field::new("score", DataType::Float64, false),
            Field::new("weighted_score", DataType::Float64, false),
        ]);
        let list = DataType::List(Arc::new(Field::new("item", DataType::Struct(item), false)));
        f.push(Arc::new(Field::new(enriched::CANDIDATES, list, false)));
    }
    f
}

/// The schema of `enriched_sbir_awards`: every award column, then the match columns.
pub fn enriched_schema(candidates: bool) -> SchemaRef {
    let mut fields: Vec<FieldRef> = records::award_schema().fields().iter().cloned().collect();
    fields.extend(enrichment_fields(candidates));
    Arc::new(Schema::new(fields))
}

#[derive(Serialize)]
struct CandidateOut<'a> {
    recipient_uei: Option<&'a str>,
    recipient_name: Option<&'a str>,
    score: f64,
    weighted_score: f64,
}

#[derive(Serialize)]
struct EnrichmentRow<'a> {
    _usaspending_match_method: Option<&'static str>,
    _usaspending_match_score: Option<f64>,
    _usaspending_match_weighted_score: Option<f64>,
    _usaspending_linked: bool,
    _usaspending_match_rule: Option<Rule>,
    usaspending_recipient_name: Option<&'a str>,
    usaspending_recipient_uei: Option<&'a str>,
    usaspending_recipient_duns: Option<&'a str>,
    usaspending_recipient_parent_name: Option<&'a str>,
    usaspending_recipient_parent_uei: Option<&'a str>,
    usaspending_recipient_city: Option<&'a str>,
    usaspending_recipient_state: Option<&'a str>,
    usaspending_recipient_zip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    _usaspending_candidates: Option<Vec<CandidateOut<'a>>>,
}

fn enrichment_row<'a>(m: &Match, index: &'a RecipientIndex, candidates: bool) -> EnrichmentRow<'a> {
    let r = &index.recipients;
    let linked = m.recipient.filter(|_| m.linked);
    let col = |c: usize| linked.and_then(|i| r.get(c, i));
    EnrichmentRow {
        _usaspending_match_method: m.method.map(MatchMethod::as_str),
        _usaspending_match_score: m.score,
        _usaspending_match_weighted_score: m.weighted,
        _usaspending_linked: m.linked,
        _usaspending_match_rule: m.method.map(|_| m.rule),
        usaspending_recipient_name: col(0),
        usaspending_recipient_uei: col(1),
        usaspending_recipient_duns: col(2),
        usaspending_recipient_parent_name: col(3),
        usaspending_recipient_parent_uei: col(4),
        usaspending_recipient_city: col(5),
        usaspending_recipient_state: col(6),
        usaspending_recipient_zip: col(7),
        _usaspending_candidates: candidates.then(|| {
            m.candidates
                .iter()
                .map(|c| CandidateOut {
                    recipient_uei: r.uei(c.recipient),
                    recipient_name: r.name(c.recipient),
                    score: round2(c.score),
                    weighted_score: round2(c.weighted),
                })
                .collect()
        }),
    }
}

/// Ground truth: the UEIs each award may correctly link to; an empty list means "no link".
pub type Truth = HashMap<String, Vec<String>>;

/// Reads `award_id,recipient_uei` ground truth. An award may have several rows (one firm
/// registered under several UEIs: any of them is right); a row with an empty UEI says the
/// award should stay unlinked.
pub fn read_truth(path: &Path) -> Result<Truth, EnrichError> {
    let err = |e: &dyn std::fmt::Display| EnrichError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(&e))?;
    let headers = reader.headers().map_err(|e| err(&e))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(a), Some(u)) = (col("award_id"), col("recipient_uei")) else {
        return Err(EnrichError::MissingColumns {
            path: path.to_path_buf(),
            missing: vec!["award_id".into(), "recipient_uei".into()],
            found: headers.iter().map(str::to_string).collect(),
        });
    };
    let mut truth = Truth::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| err(&e))?;
        let ueis: &mut Vec<String> = truth.entry(rec[a].trim().to_string()).or_default();
        let uei = rec[u].trim().to_ascii_uppercase();
        if !uei.is_empty() && !ueis.contains(&uei) {
            ueis.push(uei);
        }
    }
    Ok(truth)
}

/// Raw counts of a set of awards; chunk tallies merge into the run's (and are what checkpoints
/// save), rates are derived once at the end.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    report: EnrichReport,
    truth: TruthReport,
    fuzzy_awards: u64,
    blocked_total: u64,
    truth_blocked: u64,
    nulls: [u64; 3],
}

impl Tally {
    fn add(
        &mut self,
        award: &Award,
        m: &Match,
        index: &RecipientIndex,
        truth: Option<&Truth>,
        in_block: Option<bool>,
    ) {
        let r = &mut self.report;
        r.awards += 1;
        r.linked += m.linked as u64;
        let method = m.method.map(MatchMethod::as_str).unwrap_or("none");
        *r.by_method.entry(method.to_string()).or_default() += 1;
        if !m.linked {
            *r.unlinked_by_method.entry(method.to_string()).or_default() += 1;
        }
        self.nulls[0] += m.method.is_none() as u64;
        self.nulls[1] += m.score.is_none() as u64;
        self.nulls[2] += !m.linked as u64;
        let id_type = match (&award.uei, &award.duns) {
            (Some(_), _) => "uei_present",
            (None, Some(_)) => "duns_only",
            (None, None) => "neither",
        };
        for (dim, key) in [
            ("phase", award.phase.as_str()),
            ("agency", award.agency.as_str()),
            ("identifier", id_type),
        ] {
            let rate = r
                .breakdown
                .entry(dim.to_string())
                .or_default()
                .entry(key.to_string())
                .or_default();
            rate.awards += 1;
            rate.linked += m.linked as u64;
        }
        if matches!(
            m.method,
            Some(
                MatchMethod::NameFuzzyAuto
                    | MatchMethod::NameFuzzyCandidate
                    | MatchMethod::NameFuzzyLow
            ) | None
        ) && !m.normalized_name.is_empty()
        {
            self.fuzzy_awards += 1;
            self.blocked_total += m.blocked as u64;
        }
        let Some(truth) = truth else { return };
        let Some(want) = truth.get(&award.award_id) else {
            return;
        };
        let t = &mut self.truth;
        t.awards_with_truth += 1;
        t.positives += !want.is_empty() as u64;
        t.negatives += want.is_empty() as u64;
        t.negatives_linked += (want.is_empty() && m.linked) as u64;
        if let Some(b) = in_block {
            t.fuzzy_positives += 1;
            self.truth_blocked += b as u64;
        }
        if m.linked {
            let got = m
                .recipient
                .and_then(|i| index.recipients.uei(i))
                .unwrap_or("");
            let ok = want.iter().any(|w| w == got);
            t.linked += 1;
            t.correct += ok as u64;
            let q = t.by_method.entry(method.to_string()).or_default();
            q.linked += 1;
            q.correct += ok as u64;
        }
    }

    fn merge(&mut self, other: Tally) {
        fn add_all(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
        let (r, o) = (&mut self.report, other.report);
        r.awards += o.awards;
        r.linked += o.linked;
        add_all(&mut r.by_method, o.by_method);
        add_all(&mut r.unlinked_by_method, o.unlinked_by_method);
        for (dim, groups) in o.breakdown {
            let mine = r.breakdown.entry(dim).or_default();
            for (key, rate) in groups {
                let m = mine.entry(key).or_default();
                m.awards += rate.awards;
                m.linked += rate.linked;
            }
        }
        let (t, o) = (&mut self.truth, other.truth);
        t.awards_with_truth += o.awards_with_truth;
        t.positives += o.positives;
        t.negatives += o.negatives;
        t.negatives_linked += o.negatives_linked;
        t.linked += o.linked;
        t.correct += o.correct;
        t.fuzzy_positives += o.fuzzy_positives;
        for (k, q) in o.by_method {
            let m = t.by_method.entry(k).or_default();
            m.linked += q.linked;
            m.correct += q.correct;
        }
        self.fuzzy_awards += other.fuzzy_awards;
        self.blocked_total += other.blocked_total;
        self.truth_blocked += other.truth_blocked;
        for (n, o) in self.nulls.iter_mut().zip(other.nulls) {
            *n += o;
        }
    }

    fn finish(mut self, has_truth: bool) -> EnrichReport {
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                (a as f64 / b as f64 * 1e4).round() / 1e4
            }
        };
        let r = &mut self.report;
        r.match_rate = ratio(r.linked, r.awards);
        for group in r.breakdown.values_mut() {
            for rate in group.values_mut() {
                rate.match_rate = ratio(rate.linked, rate.awards);
            }
        }
        r.mean_blocked = ratio(self.blocked_total, self.fuzzy_awards);
        for (name, n) in [
            enriched::MATCH_METHOD,
            enriched::MATCH_SCORE,
            enriched::RECIPIENT_NAME,
        ]
        .iter()
        .zip(self.nulls)
        {
            r.null_rates.insert(name.to_string(), ratio(n, r.awards));
        }
        if has_truth {
            let t = &mut self.truth;
            t.precision = ratio(t.correct, t.linked);
            t.recall = ratio(t.correct, t.positives);
            t.false_link_rate = ratio(t.negatives_linked, t.negatives);
            t.f1 = if t.precision + t.recall > 0.0 {
                (2.0 * t.precision * t.recall / (t.precision + t.recall) * 1e4).round() / 1e4
            } else {
                0.0
            };
            for q in t.by_method.values_mut() {
                q.precision = ratio(q.correct, q.linked);
            }
            t.blocking_recall = ratio(self.truth_blocked, t.fuzzy_positives);
            r.truth = Some(self.truth);
        }
        self.report
    }
}

impl EnrichReport {
    /// The stage's gates; `previous_rate` is the match rate of the last run, when known.
    pub fn gates(&self, s: &EnrichSettings, previous_rate: Option<f64>) -> Vec<Gate> {
        let mut gates = vec![Gate::at_least(
            "match_rate",
            self.match_rate,
            s.gates.min_match_rate,
            Severity::Error,
        )];
        for (name, rate) in &self.null_rates {
            gates.push(Gate::at_most(
                &format!("completeness:{name}:null_rate"),
                *rate,
                s.gates.max_null_rate,
                Severity::Error,
            ));
        }
        if let Some(prev) = previous_rate {
            gates.push(Gate::at_most(
                "match_rate_regression",
                ((prev - self.match_rate) * 1e4).round() / 1e4,
                s.gates.max_match_rate_drop,
                Severity::Error,
            ));
        }
        gates
    }

    /// Awards per method plus totals, for the checks file.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut c: BTreeMap<String, u64> = self
            .by_method
            .iter()
            .map(|(k, v)| (format!("method:{k}"), *v))
            .collect();
        c.insert("awards".into(), self.awards);
        c.insert("written".into(), self.awards);
        c.insert("linked".into(), self.linked);
        c.insert("unmatched".into(), self.awards - self.linked);
        c.insert("recipients_loaded".into(), self.recipients.loaded);
        c.insert("recipients_rejected".into(), self.recipients.rejected);
        c
    }
}

/// Loads and indexes the recipients, writing rejected rows to `rejects_path`.
pub fn build_index(
    path: &Path,
    settings: &EnrichSettings,
    normalizer: &Normalizer,
    rejects_path: &Path,
) -> Result<(RecipientIndex, LoadReport, InputInfo, PathBuf), EnrichError> {
    let mut rejects = NdjsonWriter::create(rejects_path)?;
    let (recipients, mut report, info) =
        recipients::load(path, &settings.recipient_columns, normalizer, &mut rejects)?;
    let index = RecipientIndex::build(recipients, &mut report);
    let written = rejects.commit()?;
    Ok((index, report, info, written))
}

/// Everything needed to enrich one chunk of awards.
struct ChunkContext<'a> {
    awards_path: &'a Path,
    matcher: &'a Matcher<'a>,
    truth: Option<&'a Truth>,
    schema: &'a SchemaRef,
    award_schema: &'a SchemaRef,
    extra: &'a [FieldRef],
    candidates: bool,
}

impl ChunkContext<'_> {
    /// Matches a batch of awards (in parallel) into enriched rows and their tally.
    fn enrich(&self, batch: &RecordBatch) -> Result<(RecordBatch, Tally), EnrichError> {
        let index = self.matcher.index;
        let awards: Vec<Award> = records::from_batch(batch).map_err(|e| EnrichError::Read {
            path: self.awards_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let results: Vec<(Match, Option<bool>)> = awards
            .par_iter()
            .map(|a| {
                let target = self
                    .truth
                    .and_then(|t| t.get(&a.award_id))
                    .and_then(|ueis| ueis.iter().find_map(|u| index.by_uei(u)));
                self.matcher.match_award_with_target(a, target)
            })
            .collect();
        let mut tally = Tally::default();
        for (a, (m, in_block)) in awards.iter().zip(&results) {
            tally.add(a, m, index, self.truth, *in_block);
        }
        let rows: Vec<EnrichmentRow> = results
            .iter()
            .map(|(m, _)| enrichment_row(m, index, self.candidates))
            .collect();
        let arrow = |e: &dyn std::fmt::Display| EnrichError::Arrow(e.to_string());
        let refs: Vec<&Award> = awards.iter().collect();
        let mut columns = records::awards_to_batch(self.award_schema, &refs)
            .map_err(|e| arrow(&e))?
            .columns()
            .to_vec();
        columns.extend(serde_arrow::to_arrow(self.extra, &rows).map_err(|e| arrow(&e))?);
        let out = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| arrow(&e))?;
        Ok((out, tally))
    }
}

/// What [`enrich_to_files`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub report: EnrichReport,
    pub paths: Vec<PathBuf>,
}

/// Runs the stage into `<stem>.parquet`/`.ndjson` (and `recipients.rejects.ndjson` beside it).
pub fn enrich_to_files(
    opts: &EnrichOptions,
    stem: &Path,
    output: &OutputSettings,
    progress: &dyn Progress,
) -> Result<Written, EnrichError> {
    // The awards and the truth are checked before the recipient index is built, so a bad
    // awards file costs nothing and leaves no output behind.
    let read_err = |e: &dyn std::fmt::Display| EnrichError::Read {
        path: opts.awards.clone(),
        message: e.to_string(),
    };
    let reader = records::open_awards(&opts.awards, opts.settings.chunk_size)?;
    progress.set_total(records::parquet_rows(&opts.awards)?);
    let awards_bytes = std::fs::metadata(&opts.awards)
        .map(|m| m.len())
        .unwrap_or(0);
    let truth = opts.truth.as_deref().map(read_truth).transpose()?;
    let normalizer = Normalizer::new(&opts.settings.name_rules);
    let dir = stem.parent().unwrap_or(Path::new("."));
    let indexing = std::time::Instant::now();
    let (index, load_report, recipients_info, rejects_path) = build_index(
        &opts.recipients,
        &opts.settings,
        &normalizer,
        &dir.join("recipients.rejects.ndjson"),
    )?;
    tracing::info!(
        "enrich: indexed {} recipients in {:.1} s",
        index.recipients.len(),
        indexing.elapsed().as_secs_f64()
    );
    let matcher = Matcher {
        index: &index,
        normalizer: &normalizer,
        settings: &opts.settings,
    };
    let schema = enriched_schema(opts.candidates);
    let award_schema = records::award_schema();
    let extra = enrichment_fields(opts.candidates);
    let mut table = TableWriter::create(stem, schema.clone(), output)?;
    let mut tally = Tally::default();

    let awards_sha = crate::io::input::sha256_file(&opts.awards)?;
    let checkpoints = match &opts.checkpoint_dir {
        Some(dir) => {
            let truth_sha = opts
                .truth
                .as_deref()
                .map(crate::io::input::sha256_file)
                .transpose()?;
            let settings = serde_json::to_string(&opts.settings).expect("settings serialise");
            let fingerprint = crate::hex::hex_prefix(
                &Sha256::digest(
                    format!(
                        "{awards_sha}|{}|{settings}|{}|{truth_sha:?}",
                        recipients_info.sha256, opts.candidates
                    )
                    .as_bytes(),
                ),
                64,
            );
            Some(checkpoint::Checkpoints::open(dir, &fingerprint)?)
        }
        None => None,
    };
    let chunk = ChunkContext {
        awards_path: &opts.awards,
        matcher: &matcher,
        truth: truth.as_ref(),
        schema: &schema,
        award_schema: &award_schema,
        extra: &extra,
        candidates: opts.candidates,
    };
    for (k, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| read_err(&e))?;
        let saved = match &checkpoints {
            Some(c) => c.load(k, &schema)?,
            None => None,
        };
        let (out, chunk_tally) = match saved {
            Some(done) => done,
            None => {
                let done = chunk.enrich(&batch)?;
                if let Some(c) = &checkpoints {
                    c.save(k, &done.0, &done.1)?;
                }
                done
            }
        };
        table.write(&out)?;
        progress.inc(out.num_rows() as u64);
        tally.merge(chunk_tally);
    }
    let mut report = tally.finish(truth.is_some());
    report.resumed_chunks = checkpoints.as_ref().map_or(0, |c| c.resumed);
    report.recipients = load_report;
    report.inputs = vec![
        InputInfo {
            path: opts.awards.clone(),
            bytes: awards_bytes,
            rows: report.awards,
            sha256: awards_sha,
        },
        recipients_info,
    ];
    let mut paths = table.commit()?;
    paths.push(rejects_path);
    Ok(Written { report, paths })
}

/// Why one award matched as it did: its normalised name, the method, and the scored
/// candidates with their names, identifiers and location agreement.
pub fn explain(matcher: &Matcher, award: &Award) -> serde_json::Value {
    let m = matcher.match_award(award);
    let r = &matcher.index.recipients;
    let describe = |i: u32| {
        serde_json::json!({
            "recipient_name": r.name(i), "recipient_uei": r.uei(i), "normalized_name": r.norm(i),
            "state": r.state(i), "city": r.city(i),
        })
    };
    let words = m.recipient.map(|i| {
        let c = matcher.compare_names(&m.normalized_name, r.norm(i));
        serde_json::json!({"only_in_award": c.only_a, "only_in_recipient": c.only_b})
    });
    let tied: Vec<Option<&str>> = match m.rule {
        Rule::Tie => matcher::ties(&m.candidates)
            .iter()
            .map(|c| r.uei(c.recipient))
            .collect(),
        _ => Vec::new(),
    };
    serde_json::json!({
        "award_id": award.award_id,
        "company": award.company,
        "normalized_name": m.normalized_name,
        "uei": award.uei, "duns": award.duns, "state": award.state, "city": award.city,
        "method": m.method.map(MatchMethod::as_str),
        "score": m.score,
        "weighted_score": m.weighted,
        "linked": m.linked,
        "rule": m.rule,
        "reason": m.rule.describe(),
        "tied_ueis": tied,
        "words": words,
        "recipient": m.recipient.map(describe),
        "blocked_candidates": m.blocked,
        "candidates": m.candidates.iter().map(|c| {
            let mut d = describe(c.recipient);
            d["score"] = serde_json::json!(round2(c.score));
            d["weighted_score"] = serde_json::json!(round2(c.weighted));
            d["same_state"] = c.same_state.into();
            d["same_city"] = c.same_city.into();
            d["same_legal_form"] = c.same_form.into();
            d
        }).collect::<Vec<_>>(),
        "thresholds": {"high": matcher.settings.high_threshold, "low": matcher.settings.low_threshold, "alike_words": matcher.settings.alike_words, "strict_name_links": matcher.settings.strict_name_links},
    })
}
