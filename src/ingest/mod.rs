//! The `ingest` stage: stream the SBIR.gov awards bulk CSV, validate and normalise every row
//! in parallel, drop exact repeats, and hand valid awards and rejects to the caller's writers.
//!
//! Memory stays bounded: a reader thread parses chunks of rows while the previous chunk is
//! validated, so only a few chunks are ever held, whatever the file size.

pub mod columns;
pub mod dates;
pub mod row;
pub mod rules;

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use arrow_array::RecordBatch;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{IngestGates, IngestSettings, OutputSettings};
use crate::io::IoError;
use crate::io::checks::{Gate, Severity};
use crate::io::chunks::{Chunk, CsvReader};
use crate::io::input::{self, InputInfo};
use crate::io::json::{self, JsonReader, Layout};
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::progress::Progress;
use crate::records;
use crate::rng::Rng;
use columns::HeaderMap;
use row::{Position, ValidAward, Validated};

pub use row::{Limits, award_id};

/// Why ingestion could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: missing required column(s) {}; {}", missing.join(", "), header_preview(found))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("{path}: the file is empty (expected a header row or JSON awards)")]
    Empty { path: PathBuf },
    /// `at` is `line N` (CSV, NDJSON) or `record N` (JSON array).
    #[error("{path}: {at}: {message}")]
    Read {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot build the award table: {0}")]
    Arrow(String),
}

/// What the header holds, short enough to read: at most 12 names of at most 40 characters,
/// control characters shown escaped; a header that is mostly not text (a Parquet, Excel or
/// other binary file) is called that instead of printed.
fn header_preview(found: &[String]) -> String {
    let text: String = found.concat();
    let odd = text
        .chars()
        .filter(|c| c.is_control() || *c == char::REPLACEMENT_CHARACTER)
        .count();
    if text.contains('\0') || odd * 10 > text.chars().count() {
        return format!(
            "the file does not look like a CSV or JSON awards export (its first line is {} bytes of binary data; an .xlsx or Parquet file must be saved as CSV first)",
            text.len()
        );
    }
    const NAMES: usize = 12;
    const CHARS: usize = 40;
    let mut names: Vec<String> = found
        .iter()
        .take(NAMES)
        .map(|n| {
            let short: String = n
                .chars()
                .take(CHARS)
                .collect::<String>()
                .escape_debug()
                .to_string();
            if n.chars().count() > CHARS {
                format!("{short}…")
            } else {
                short
            }
        })
        .collect();
    if found.len() > NAMES {
        names.push(format!("… and {} more", found.len() - NAMES));
    }
    format!("the header has: {}", names.join(", "))
}

impl IngestError {
    /// True when the input itself is unusable as given (exit code 2), not a runtime failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::MissingColumns { .. }
                | Self::Empty { .. }
                | Self::Read { .. }
                | Self::Io(IoError::Read { .. })
        )
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

impl IngestOptions {
    /// Options from settings; `current_year` bounds Award Year when the settings leave the
    /// maximum open (next year is the newest accepted).
    pub fn from_settings(s: &IngestSettings, current_year: i32) -> Self {
        Self {
            input: s.input.clone(),
            limits: Limits {
                min_award_year: s.min_award_year,
                max_award_year: s.max_award_year.unwrap_or(current_year + 1),
                large_amount_warning: s.large_amount_warning,
            },
            chunk_size: s.chunk_size,
            limit: None,
            sample: None,
        }
    }
}

/// Where the stage's rows go; committed together when the stage has read every row.
pub struct Outputs {
    pub awards: TableWriter,
    pub rejects: NdjsonWriter,
}

/// What [`ingest_to_files`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub report: IngestReport,
    /// Final paths: the award table(s), then the rejects file.
    pub paths: Vec<PathBuf>,
    /// Share of non-null values per output column.
    pub completeness: BTreeMap<String, f64>,
}

/// Runs the stage into `<stem>.parquet`/`.ndjson` and `<stem>.rejects.ndjson`, atomically:
/// on any error nothing is renamed into place.
pub fn ingest_to_files(
    opts: &IngestOptions,
    stem: &Path,
    output: &OutputSettings,
    progress: &dyn Progress,
) -> Result<Written, IngestError> {
    let mut out = Outputs {
        awards: TableWriter::create(stem, records::award_schema(), output)?,
        rejects: NdjsonWriter::create(&crate::io::with_suffix(stem, ".rejects.ndjson"))?,
    };
    let report = run(opts, &mut out, progress)?;
    let completeness = out.awards.completeness();
    let Outputs { awards, rejects } = out;
    // Committed side by side: each commit mostly waits for the disk to confirm its sync.
    let (awards, rejects) = std::thread::scope(|scope| {
        let rejects = scope.spawn(move || rejects.commit());
        (awards.commit(), rejects.join())
    });
    let mut paths = awards?;
    paths.push(rejects.expect("committing the rejects does not panic")?);
    Ok(Written {
        report,
        paths,
        completeness,
    })
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
    /// Per reject code, the first rejected value seen and its field, for the error message.
    pub reject_examples: BTreeMap<String, Example>,
    /// Per warning code, the first value seen and its field.
    pub warning_examples: BTreeMap<String, Example>,
    /// `csv`, `json` (an array) or `ndjson`.
    pub input_format: &'static str,
    pub missing_optional_columns: Vec<String>,
    pub extra_columns: Vec<String>,
    /// The first few duplicates, to let a person look.
    pub duplicate_examples: Vec<Duplicate>,
}

const DUPLICATE_EXAMPLES: usize = 20;

/// One value that was rejected or warned about, as an example of its code.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub field: Option<String>,
    pub value: Option<String>,
    /// Where it was: `line N` or `record N`.
    pub at: String,
}

impl IngestReport {
    /// The most frequent reject codes, each with its count and an example
    /// (`588 rows invalid_duns, e.g. Duns "'079179794'" at line 7`), most frequent first.
    pub fn top_reject_reasons(&self, n: usize) -> Vec<String> {
        let mut codes: Vec<(&String, &u64)> = self.rejects_by_code.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        codes
            .into_iter()
            .take(n)
            .map(|(code, count)| {
                let e = self.reject_examples.get(code);
                let example = e.map_or(String::new(), |e| {
                    format!(
                        ", e.g. {} {:?} at {}",
                        e.field.as_deref().unwrap_or("(row)"),
                        e.value.as_deref().unwrap_or(""),
                        e.at
                    )
                });
                format!("{count} rows {code}{example}")
            })
            .collect()
    }
}

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
    /// award key → the content hashes kept under it, each with the line it was first seen on
    seen: HashMap<u64, Kept, BuildHasherDefault<KeyHasher>>,
}

/// The rows kept under one award key: nearly always one, so it needs no allocation.
struct Kept {
    first: (u64, u64),
    more: Vec<(u64, u64)>,
}

/// Award keys are already hashes (SHA-256 prefixes): the map uses them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

enum Seen {
    New,
    Repeat(u64),
    Collision(u32),
}

impl Dedup {
    fn check(&mut self, key: u64, content: u64, line: u64) -> Seen {
        match self.seen.entry(key) {
            Entry::Vacant(e) => {
                e.insert(Kept {
                    first: (content, line),
                    more: Vec::new(),
                });
                Seen::New
            }
            Entry::Occupied(mut e) => {
                let kept = e.get_mut();
                let all = std::iter::once(&kept.first).chain(&kept.more);
                if let Some((_, first)) = all.into_iter().find(|(c, _)| *c == content) {
                    return Seen::Repeat(*first);
                }
                kept.more.push((content, line));
                Seen::Collision(kept.more.len() as u32 + 1)
            }
        }
    }
}

/// Chunks of records (or the read error that ended them) from the reader thread.
type Chunks = mpsc::Receiver<Result<Chunk, IngestError>>;

/// Chunks the consumer is done with, handed back so the reader refills their buffers.
type Spares = mpsc::SyncSender<Chunk>;

/// A source of records: CSV rows or JSON records, into the same chunks.
enum Reader {
    Csv(CsvReader<std::io::BufReader<Box<dyn std::io::Read + Send>>>),
    Json(JsonReader<std::io::BufReader<Box<dyn std::io::Read + Send>>>),
}

impl Reader {
    fn read_into(&mut self, chunk: &mut Chunk) -> std::io::Result<bool> {
        match self {
            Self::Csv(r) => r.read_into(chunk),
            Self::Json(r) => r.read_into(chunk),
        }
    }

    /// Where reading stopped, for an error.
    fn at(&self) -> Position {
        (self.position_kind())(match self {
            Self::Csv(r) => r.line(),
            Self::Json(r) => r.position(),
        })
    }

    /// How a record's stored position reads.
    fn position_kind(&self) -> fn(u64) -> Position {
        match self {
            Self::Json(r) if r.layout() == Layout::Array => Position::Record,
            _ => Position::Line,
        }
    }

    fn format(&self) -> &'static str {
        match self {
            Self::Csv(_) => "csv",
            Self::Json(r) if r.layout() == Layout::Array => "json",
            Self::Json(_) => "ndjson",
        }
    }
}

/// What [`spawn_reader`] hands the validating thread.
struct Opened {
    map: HeaderMap,
    chunks: Chunks,
    spares: Spares,
    fingerprint: input::Fingerprint,
    position: fn(u64) -> Position,
    format: &'static str,
}

/// Opens `path` as CSV or JSON (told apart by content), reads the header (for JSON, the first
/// record's keys), then streams chunks of records from a reader thread; chunks sent back on
/// the returned [`Spares`] are reused.
fn spawn_reader(path: &Path, opts: &IngestOptions) -> Result<Opened, IngestError> {
    use std::io::BufRead;
    let (stream, fingerprint) = input::open(path)?;
    let mut buffered = std::io::BufReader::with_capacity(1 << 16, stream);
    let head = buffered.fill_buf().map_err(|e| IoError::read(path, e))?;
    let read_err = |e: std::io::Error, at: Position| IngestError::Read {
        path: path.to_path_buf(),
        at: at.to_string(),
        message: e.to_string(),
    };
    let empty = || IngestError::Empty {
        path: path.to_path_buf(),
    };
    let mut first = Chunk::default();
    let (mut reader, names) = match json::sniff(head) {
        Some(layout) => {
            let at = match layout {
                Layout::Array => Position::Record(0),
                Layout::Lines => Position::Line(1),
            };
            let r = JsonReader::new(buffered, layout)
                .map_err(|e| read_err(e, at))?
                .ok_or_else(empty)?;
            let names = r.header().to_vec();
            (Reader::Json(r), names)
        }
        None => {
            let mut r = CsvReader::new(buffered);
            if !r
                .read_into(&mut first)
                .map_err(|e| read_err(e, Position::Line(1)))?
            {
                return Err(empty());
            }
            let (names, _) = first.record(0).decode();
            let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
            first.clear();
            (Reader::Csv(r), names)
        }
    };
    let map = HeaderMap::resolve(path, &names)?;
    let position = reader.position_kind();
    let format = reader.format();

    let (tx, rx) = mpsc::sync_channel(2);
    let (spares_tx, spares) = mpsc::sync_channel::<Chunk>(2);
    let chunk_size = opts.chunk_size;
    let limit = opts.limit.unwrap_or(u64::MAX);
    let sample = opts.sample;
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let next_chunk = || {
            let mut c = spares.try_recv().unwrap_or_default();
            c.clear();
            c
        };
        let mut rows: u64 = 0;
        let mut chunk = Chunk::default();
        // Sampling keeps one single-record chunk per kept row (Algorithm R).
        let mut reservoir: Vec<Chunk> = Vec::new();
        let mut rng = sample.map(|(_, seed)| Rng::new(seed));
        while rows < limit {
            match reader.read_into(&mut chunk) {
                Ok(true) => rows += 1,
                Ok(false) => break,
                Err(e) => {
                    let _ = tx.send(Err(IngestError::Read {
                        path: path.clone(),
                        at: reader.at().to_string(),
                        message: e.to_string(),
                    }));
                    return;
                }
            }
            if let (Some((n, _)), Some(rng)) = (sample, rng.as_mut()) {
                // Every row is kept with probability n/rows.
                let slot = if (reservoir.len() as u64) < n {
                    reservoir.push(Chunk::default());
                    reservoir.last_mut()
                } else {
                    let j = rng.below(rows);
                    reservoir.get_mut(j as usize)
                };
                if let Some(slot) = slot {
                    let rec = chunk.record(0);
                    slot.clear();
                    slot.push(rec.line, rec.iter());
                }
                chunk.clear();
                continue;
            }
            if chunk.len() == chunk_size {
                // Sent before taking the next one: once the send returns, a chunk is spare.
                if tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
                chunk = next_chunk();
            }
        }
        reservoir.sort_by_key(|c| c.record(0).line);
        for part in reservoir.chunks(chunk_size) {
            let mut c = next_chunk();
            for rec in part.iter().map(|one| one.record(0)) {
                c.push(rec.line, rec.iter());
            }
            if tx.send(Ok(c)).is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk));
        }
    });
    Ok(Opened {
        map,
        chunks: rx,
        spares: spares_tx,
        fingerprint,
        position,
        format,
    })
}

/// Runs the stage: every input row ends up written, rejected, or counted as a duplicate.
///
/// Three steps overlap: a reader thread parses CSV chunks, this thread validates each chunk in
/// parallel and de-duplicates it, and a writer thread encodes the valid awards.
pub fn run(
    opts: &IngestOptions,
    out: &mut Outputs,
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let Opened {
        map,
        chunks: rx,
        spares,
        fingerprint,
        position,
        format,
    } = spawn_reader(&opts.input, opts)?;
    let mut report = IngestReport {
        input_format: format,
        missing_optional_columns: map.missing_optional.clone(),
        extra_columns: map.extra.clone(),
        ..IngestReport::default()
    };
    let mut dedup = Dedup::default();
    let Outputs {
        awards: table,
        rejects,
    } = out;
    // Progress is measured in bytes of the file: its size is the one total known up front.
    if let Ok(m) = std::fs::metadata(&opts.input) {
        progress.set_total(m.len());
    }
    let mut reported = 0u64;

    std::thread::scope(|scope| {
        let (tx, batches) = mpsc::sync_channel::<RecordBatch>(2);
        let writer = scope.spawn(move || -> Result<(), IngestError> {
            for batch in batches {
                table.write(&batch)?;
            }
            Ok(())
        });
        let schema = records::award_schema();
        let validate = || -> Result<(), IngestError> {
            for chunk in rx {
                let chunk = chunk?;
                let mut validated: Vec<Validated> = (0..chunk.len())
                    .into_par_iter()
                    .map(|i| {
                        let rec = chunk.record(i);
                        row::validate(rec, position(rec.line), &map, &opts.limits)
                    })
                    .collect();
                report.input_rows += chunk.len() as u64;
                let mut awards = Vec::with_capacity(validated.len());
                for v in &mut validated {
                    match v {
                        Validated::Rejected(rej) => {
                            report.count_reject(rej);
                            rejects.write(rej)?;
                        }
                        Validated::Award {
                            award,
                            key,
                            content,
                        } => {
                            let at = position(award.source_line);
                            if report.dedup(&mut dedup, award, at, *key, *content) {
                                awards.push(&*award);
                            }
                        }
                    }
                }
                report.written += awards.len() as u64;
                let batch = records::awards_to_batch(&schema, &awards)
                    .map_err(|e| IngestError::Arrow(e.to_string()))?;
                if tx.send(batch).is_err() {
                    break; // the writer failed; its error is returned below
                }
                let read = fingerprint.bytes_read();
                progress.inc(read.saturating_sub(reported));
                reported = reported.max(read);
                // The reader may have stopped (limit reached); then the chunk is just dropped.
                let _ = spares.try_send(chunk);
            }
            Ok(())
        };
        let validated = validate();
        drop(tx);
        let written = writer.join().expect("writer thread does not panic");
        validated.and(written)
    })?;

    let (sha256, bytes) = fingerprint.finish();
    report.input = InputInfo {
        path: opts.input.clone(),
        bytes,
        rows: report.input_rows,
        sha256,
    };
    Ok(report)
}

impl IngestReport {
    fn count_reject(&mut self, rej: &row::Reject) {
        self.rejected += 1;
        for r in &rej.reasons {
            *self.rejects_by_code.entry(r.code.to_string()).or_default() += 1;
            *self.rejects_by_field.entry(r.field.clone()).or_default() += 1;
            self.reject_examples
                .entry(r.code.to_string())
                .or_insert_with(|| Example {
                    field: Some(r.field.clone()),
                    value: Some(r.value.clone()),
                    at: rej.at.to_string(),
                });
        }
    }

    /// Counts `award` as a duplicate (returning `false`) or keeps it, suffixing its id when
    /// an earlier, different row had the same key.
    fn dedup(
        &mut self,
        dedup: &mut Dedup,
        award: &mut ValidAward<'_>,
        at: Position,
        key: u64,
        content: u64,
    ) -> bool {
        match dedup.check(key, content, award.source_line) {
            Seen::Repeat(first) => {
                self.duplicates += 1;
                if self.duplicate_examples.len() < DUPLICATE_EXAMPLES {
                    self.duplicate_examples.push(Duplicate {
                        line: award.source_line,
                        duplicate_of_line: first,
                    });
                }
                return false;
            }
            Seen::Collision(n) => {
                self.key_collisions += 1;
                award.award_id = Cow::Owned(format!("{}-{n}", award.award_id));
                award.warnings.push(crate::records::Warning {
                    code: Cow::Borrowed(row::warning::KEY_COLLISION),
                    field: None,
                    value: None,
                });
            }
            Seen::New => {}
        }
        if !award.warnings.is_empty() {
            self.rows_with_warnings += 1;
        }
        for w in &award.warnings {
            let code = w.code.as_ref();
            match self.warnings_by_code.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    self.warnings_by_code.insert(code.to_string(), 1);
                    self.warning_examples.insert(
                        code.to_string(),
                        Example {
                            field: w.field.as_deref().map(str::to_string),
                            value: w.value.as_deref().map(str::to_string),
                            at: at.to_string(),
                        },
                    );
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_previews_are_short_and_name_binary_files() {
        let many: Vec<String> = (0..30).map(|i| format!("column {i}")).collect();
        let p = header_preview(&many);
        assert!(p.starts_with("the header has: column 0, column 1,"), "{p}");
        assert!(p.ends_with("column 11, … and 18 more"), "{p}");
        let long = vec!["x".repeat(100), "tab\there".into()];
        let p = header_preview(&long);
        assert!(
            p.contains(&format!("{}…", "x".repeat(40))) && p.contains("tab\\there"),
            "{p}"
        );
        let binary = vec!["PAR1\0\u{1}\u{2}\u{3}".into()];
        assert!(header_preview(&binary).contains("does not look like a CSV"));
    }

    #[test]
    fn dedup_drops_repeats_and_suffixes_collisions() {
        let mut d = Dedup::default();
        assert!(matches!(d.check(7, 1, 2), Seen::New));
        assert!(matches!(d.check(7, 1, 3), Seen::Repeat(2)));
        assert!(matches!(d.check(7, 9, 4), Seen::Collision(2)));
        assert!(matches!(d.check(7, 9, 5), Seen::Repeat(4)));
        assert!(matches!(d.check(8, 1, 6), Seen::New));
    }
}
