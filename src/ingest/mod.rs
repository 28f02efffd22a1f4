//! The `ingest` stage: stream the SBIR.gov awards bulk CSV, validate and normalise every row
//! in parallel, drop exact repeats, and hand valid awards and rejects to the caller's writers.
//!
//! Memory stays bounded: a reader thread parses chunks of rows while the previous chunk is
//! validated, so only a few chunks are ever held, whatever the file size.

pub mod columns;
pub mod dates;
mod dedup;
mod report;
pub mod row;
pub mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use arrow_array::RecordBatch;
use rayon::prelude::*;

use crate::config::{IngestSettings, OutputSettings};
use crate::io::IoError;
use crate::io::chunks::{Chunk, CsvReader};
use crate::io::input::{self, InputInfo};
use crate::io::json::{self, JsonReader, Layout};
use crate::io::table::{NdjsonWriter, TableWriter};
use crate::progress::Progress;
use crate::records;
use crate::rng::Rng;
use columns::HeaderMap;
use dedup::Dedup;
use row::{Position, Validated};

pub use report::{Duplicate, Example, IngestReport};
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
}
