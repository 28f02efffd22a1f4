//! The `enrich` stage: link each award's company to a USAspending recipient (UEI exact, DUNS
//! exact, normalised name exact, then token-set-ratio fuzzy over blocked candidates), keep
//! every award, record method and score, and measure the match quality.
//!
//! The recipient index is the only large structure held; awards stream through in chunks.

pub mod checkpoint;
pub mod fuzzy;
pub mod matcher;
pub mod recipients;
mod report;
pub mod weighted;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{EnrichSettings, OutputSettings};
use crate::io::IoError;
use crate::io::input::InputInfo;
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::metrics::round2;
use crate::names::Normalizer;
use crate::progress::Progress;
use crate::records::{self, Award, enriched};
pub use matcher::{Match, MatchMethod, Matcher, Rule};
use recipients::{LoadReport, RecipientIndex};
use report::Tally;
pub use report::{EnrichReport, Quality, Rate, Truth, TruthReport, read_truth};

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
