//! The `ingest` stage: stream the SBIR.gov awards bulk CSV, validate and normalise every row
//! in parallel, drop exact repeats, and hand valid awards and rejects to the caller's writers.
//!
//! Memory stays bounded: a reader thread parses chunks of rows while the previous chunk is
//! validated, so only a few chunks are ever held, whatever the file size.

pub mod columns;
pub mod row;
pub mod rules;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;
use serde::Serialize;

use crate::config::IngestGates;
use crate::io::IoError;
use crate::io::checks::{Gate, Severity};
use crate::io::input::{self, InputInfo};
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::progress::Progress;
use crate::records::{self, Award};
use crate::rng::Rng;
use columns::HeaderMap;
use row::{RawRow, Validated};

pub use row::{Limits, award_id};

/// Why ingestion could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: missing required column(s) {}; the header has: {}", missing.join(", "), found.join(", "))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("{path}: the file is empty (expected a header row)")]
    Empty { path: PathBuf },
    #[error("{path}: line {line}: {message}")]
    Read {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot build the award table: {0}")]
    Arrow(String),
}

impl IngestError {
    /// True when the input itself is unusable as given (exit code 2), not a runtime failure.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::MissingColumns { .. } | Self::Empty { .. } => true,
            Self::Io(IoError::Read { .. }) => true,
            _ => false,
        }
    }
}

/// What to read and how much of it.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub input: PathBuf,
    pub limits: Limits,
    /// Rows validated per parallel chunk.
    pub chunk_size: usize,
    /// Stop after this many data rows.
    pub limit: Option<u64>,
    /// Keep a uniform random sample of this many rows (`n`, `seed`), in file order.
    pub sample: Option<(u64, u64)>,
}

/// Where the stage's rows go; the caller commits them when the stage returns.
pub struct Outputs {
    pub awards: TableWriter,
    pub rejects: NdjsonWriter,
}

/// A row dropped as an exact repeat of an earlier one.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub line: u64,
    pub duplicate_of_line: u64,
}

/// Counts and details of one ingestion, for the checks file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub input: InputInfo,
    pub input_rows: u64,
    pub written: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Rows kept whose key equalled an earlier, different row's (id suffixed `-2`, `-3`, …).
    pub key_collisions: u64,
    pub rows_with_warnings: u64,
    pub warnings_by_code: BTreeMap<String, u64>,
    pub rejects_by_code: BTreeMap<String, u64>,
    pub rejects_by_field: BTreeMap<String, u64>,
    pub missing_optional_columns: Vec<String>,
    pub extra_columns: Vec<String>,
    /// The first few duplicates, to let a person look.
    pub duplicate_examples: Vec<Duplicate>,
}

const DUPLICATE_EXAMPLES: usize = 20;

impl IngestReport {
    /// Row counts for the checks file.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("input_rows".to_string(), self.input_rows),
            ("written".to_string(), self.written),
            ("rejected".to_string(), self.rejected),
            ("duplicates".to_string(), self.duplicates),
            ("key_collisions".to_string(), self.key_collisions),
            ("rows_with_warnings".to_string(), self.rows_with_warnings),
        ])
    }

    /// True when input rows = written + rejected + duplicates.
    pub fn reconciles(&self) -> bool {
        self.input_rows == self.written + self.rejected + self.duplicates
    }

    /// The stage's quality gates, thresholds from settings.
    pub fn gates(&self, settings: &IngestGates) -> Vec<Gate> {
        let reject_rate = if self.input_rows == 0 {
            0.0
        } else {
            self.rejected as f64 / self.input_rows as f64
        };
        vec![
            Gate::at_most(
                "reject_rate",
                reject_rate,
                settings.max_reject_rate,
                Severity::Error,
            ),
            Gate::at_least(
                "rows_written",
                self.written as f64,
                settings.min_rows_written as f64,
                Severity::Error,
            ),
        ]
    }
}

/// Keeps award ids unique: exact repeats are dropped, same-key different rows get a suffix.
#[derive(Default)]
struct Dedup {
    /// award id → (content hashes seen with their first line, rows kept under this key)
    seen: HashMap<String, (Vec<(u64, u64)>, u32)>,
}

enum Seen {
    New,
    Repeat(u64),
    Collision(u32),
}

impl Dedup {
    fn check(&mut self, id: &str, content: u64, line: u64) -> Seen {
        let entry = self.seen.entry(id.to_string()).or_default();
        if let Some((_, first)) = entry.0.iter().find(|(c, _)| *c == content) {
            return Seen::Repeat(*first);
        }
        entry.0.push((content, line));
        entry.1 += 1;
        if entry.1 == 1 {
            Seen::New
        } else {
            Seen::Collision(entry.1)
        }
    }
}

/// Reads the header, then streams chunks of raw rows from a reader thread.
fn spawn_reader(
    path: &Path,
    opts: &IngestOptions,
) -> Result<
    (
        HeaderMap,
        mpsc::Receiver<Result<Vec<RawRow>, IngestError>>,
        input::Fingerprint,
    ),
    IngestError,
> {
    let (stream, fingerprint) = input::open(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_reader(stream);
    let mut header = csv::ByteRecord::new();
    let read_err = |e: csv::Error, line| IngestError::Read {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    };
    if !reader
        .read_byte_record(&mut header)
        .map_err(|e| read_err(e, 1))?
    {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    // A UTF-8 byte-order mark is not part of the first header name.
    if let Some(first) = header.get(0)
        && let Some(rest) = first.strip_prefix(b"\xEF\xBB\xBF")
    {
        let mut fixed = csv::ByteRecord::new();
        fixed.push_field(rest);
        header.iter().skip(1).for_each(|f| fixed.push_field(f));
        header = fixed;
    }
    let (names, _) = row::decode_record(&header);
    let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    let map = HeaderMap::resolve(path, &names)?;

    let (tx, rx) = mpsc::sync_channel(4);
    let chunk_size = opts.chunk_size;
    let limit = opts.limit.unwrap_or(u64::MAX);
    let sample = opts.sample;
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut rows: u64 = 0;
        let mut chunk = Vec::with_capacity(chunk_size);
        let mut reservoir: Vec<RawRow> = Vec::new();
        let mut rng = sample.map(|(_, seed)| Rng::new(seed));
        let mut record = csv::ByteRecord::new();
        loop {
            if rows >= limit {
                break;
            }
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(rows + 2);
                    let _ = tx.send(Err(IngestError::Read {
                        path: path.clone(),
                        line,
                        message: e.to_string(),
                    }));
                    return;
                }
            }
            let line = record.position().map(|p| p.line()).unwrap_or(rows + 2);
            let raw = RawRow {
                line,
                record: record.clone(),
            };
            rows += 1;
            if let (Some((n, _)), Some(rng)) = (sample, rng.as_mut()) {
                // Reservoir sampling (Algorithm R): every row is kept with probability n/rows.
                if (reservoir.len() as u64) < n {
                    reservoir.push(raw);
                } else {
                    let j = rng.below(rows);
                    if j < n {
                        reservoir[j as usize] = raw;
                    }
                }
                continue;
            }
            chunk.push(raw);
            if chunk.len() == chunk_size {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                if tx.send(Ok(full)).is_err() {
                    return;
                }
            }
        }
        if sample.is_some() {
            reservoir.sort_by_key(|r| r.line);
            for part in reservoir.chunks(chunk_size) {
                if tx.send(Ok(part.to_vec())).is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk));
        }
    });
    Ok((map, rx, fingerprint))
}

/// Runs the stage: every input row ends up written, rejected, or counted as a duplicate.
pub fn run(
    opts: &IngestOptions,
    out: &mut Outputs,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let (map, rx, fingerprint) = spawn_reader(&opts.input, opts)?;
    let schema = records::award_schema();
    let mut report = IngestReport {
        missing_optional_columns: map.missing_optional.clone(),
        extra_columns: map.extra.clone(),
        ..IngestReport::default()
    };
    let mut dedup = Dedup::default();

    for chunk in rx {
        let chunk = chunk?;
        let validated: Vec<Validated> = chunk
            .par_iter()
            .map(|r| row::validate(r, &map, &opts.limits))
            .collect();
        report.input_rows += chunk.len() as u64;
        let mut awards: Vec<Award> = Vec::with_capacity(validated.len());
        for v in validated {
            match v {
                Validated::Rejected(rej) => {
                    report.rejected += 1;
                    for r in &rej.reasons {
                        *report
                            .rejects_by_code
                            .entry(r.code.to_string())
                            .or_default() += 1;
                        *report.rejects_by_field.entry(r.field.clone()).or_default() += 1;
                    }
                    out.rejects.write(&rej)?;
                }
                Validated::Award { mut award, content } => {
                    match dedup.check(&award.award_id, content, award.source_line) {
                        Seen::Repeat(first) => {
                            report.duplicates += 1;
                            if report.duplicate_examples.len() < DUPLICATE_EXAMPLES {
                                report.duplicate_examples.push(Duplicate {
                                    line: award.source_line,
                                    duplicate_of_line: first,
                                });
                            }
                        }
                        seen => {
                            if let Seen::Collision(n) = seen {
                                report.key_collisions += 1;
                                award.award_id = format!("{}-{n}", award.award_id);
                                award.warnings.push(row::warning::KEY_COLLISION.to_string());
                            }
                            if !award.warnings.is_empty() {
                                report.rows_with_warnings += 1;
                            }
                            for w in &award.warnings {
                                *report.warnings_by_code.entry(w.clone()).or_default() += 1;
                            }
                            awards.push(award);
                        }
                    }
                }
            }
        }
        if !awards.is_empty() {
            let batch = records::to_batch(&schema, &awards)
                .map_err(|e| IngestError::Arrow(e.to_string()))?;
            out.awards.write(&batch)?;
            report.written += awards.len() as u64;
        }
        progress.inc(chunk.len() as u64);
    }
    let (sha256, bytes) = fingerprint.finish();
    report.input = InputInfo {
        path: opts.input.clone(),
        bytes,
        rows: report.input_rows,
        sha256,
    };
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fully populated award for schema and round-trip tests.
    pub fn sample_award() -> Award {
        let s = |v: &str| Some(v.to_string());
        Award {
            award_id: "sbir-0123456789abcdef".into(),
            company: "Acme Photonics, Inc.".into(),
            award_title: "Quantum sensing".into(),
            agency: "Department of Defense".into(),
            branch: s("Air Force"),
            phase: "Phase I".into(),
            program: "SBIR".into(),
            agency_tracking_number: s("F2-1234"),
            contract: s("FA8650-20-C-1234"),
            proposal_award_date: Some(18263),
            contract_end_date: Some(18500),
            solicitation_number: s("AF201"),
            solicitation_year: Some(2020),
            solicitation_close_date: Some(18000),
            proposal_receipt_date: Some(18100),
            date_of_notification: Some(18200),
            topic_code: s("AF201-001"),
            award_year: 2020,
            award_amount: 149_999.5,
            uei: s("ABC123DEF456"),
            duns: s("012345678"),
            hubzone_owned: Some(false),
            socially_economically_disadvantaged: None,
            woman_owned: Some(true),
            number_employees: Some(12),
            company_website: s("acme.example"),
            address1: s("1 Main St"),
            address2: None,
            city: s("Boston"),
            state: s("MA"),
            state_name: s("Massachusetts"),
            zip: s("02110-1234"),
            r#abstract: s("Line one.\nLine \"two\"."),
            contact_name: s("A"),
            contact_title: s("B"),
            contact_phone: s("C"),
            contact_email: s("D"),
            pi_name: s("E"),
            pi_title: s("F"),
            pi_phone: s("G"),
            pi_email: s("H"),
            ri_name: None,
            ri_poc_name: None,
            ri_poc_phone: None,
            source_line: 2,
            warnings: vec!["duns_zero_padded".into()],
        }
    }

    #[test]
    fn dedup_drops_repeats_and_suffixes_collisions() {
        let mut d = Dedup::default();
        assert!(matches!(d.check("a", 1, 2), Seen::New));
        assert!(matches!(d.check("a", 1, 3), Seen::Repeat(2)));
        assert!(matches!(d.check("a", 9, 4), Seen::Collision(2)));
        assert!(matches!(d.check("a", 9, 5), Seen::Repeat(4)));
        assert!(matches!(d.check("b", 1, 6), Seen::New));
    }
}
