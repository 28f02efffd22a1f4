//! Table outputs: Parquet (arrow-rs) and/or NDJSON from the same Arrow record batches, so both
//! formats always hold the same rows and values. Files are written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use super::IoError;
use super::atomic::AtomicWriter;
use crate::config::{Compression, OutputFormat, OutputSettings};

/// Writes one table to `<stem>.parquet` and/or `<stem>.ndjson`.
pub struct TableWriter {
    parquet: Option<ArrowWriter<AtomicWriter>>,
    ndjson: Option<arrow_json::LineDelimitedWriter<AtomicWriter>>,
    paths: Vec<PathBuf>,
    schema: SchemaRef,
    nulls: Vec<u64>,
    rows: u64,
}

impl TableWriter {
    /// Opens the writers `settings.format` asks for; `stem` is the path without extension.
    pub fn create(
        stem: &Path,
        schema: SchemaRef,
        settings: &OutputSettings,
    ) -> Result<Self, IoError> {
        let mut paths = Vec::new();
        let parquet = if settings.format != OutputFormat::Ndjson {
            let path = super::with_suffix(stem, ".parquet");
            let compression = match settings.parquet_compression {
                Compression::Zstd => {
                    PqCompression::ZSTD(ZstdLevel::try_new(1).expect("valid level"))
                }
                Compression::Snappy => PqCompression::SNAPPY,
                Compression::None => PqCompression::UNCOMPRESSED,
            };
            let props = WriterProperties::builder()
                .set_compression(compression)
                .set_max_row_group_row_count(Some(settings.row_group_size))
                .set_created_by(format!("sbir {}", env!("CARGO_PKG_VERSION")))
                .build();
            let out = AtomicWriter::create(&path).map_err(|e| IoError::write(&path, e))?;
            let w = ArrowWriter::try_new(out, schema.clone(), Some(props))
                .map_err(|e| IoError::write(&path, e))?;
            paths.push(path);
            Some(w)
        } else {
            None
        };
        let ndjson = if settings.format != OutputFormat::Parquet {
            let path = super::with_suffix(stem, ".ndjson");
            let out = AtomicWriter::create(&path).map_err(|e| IoError::write(&path, e))?;
            paths.push(path);
            Some(
                arrow_json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow_json::writer::LineDelimited>(out),
            )
        } else {
            None
        };
        let nulls = vec![0; schema.fields().len()];
        Ok(Self {
            parquet,
            ndjson,
            paths,
            schema,
            nulls,
            rows: 0,
        })
    }

    /// Appends a batch to every open format.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), IoError> {
        if let Some(w) = &mut self.parquet {
            w.write(batch)
                .map_err(|e| IoError::write(&self.paths[0], e))?;
        }
        if let Some(w) = &mut self.ndjson {
            let path = self.paths.last().expect("ndjson path");
            w.write(batch).map_err(|e| IoError::write(path, e))?;
        }
        for (n, col) in self.nulls.iter_mut().zip(batch.columns()) {
            *n += col.null_count() as u64;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Share of non-null values per column over every row written (1.0 for an empty table).
    pub fn completeness(&self) -> BTreeMap<String, f64> {
        self.schema
            .fields()
            .iter()
            .zip(&self.nulls)
            .map(|(f, &n)| {
                let rate = if self.rows == 0 {
                    1.0
                } else {
                    1.0 - n as f64 / self.rows as f64
                };
                (f.name().clone(), (rate * 1e4).round() / 1e4)
            })
            .collect()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes every file and renames it into place; returns the final paths.
    pub fn commit(self) -> Result<Vec<PathBuf>, IoError> {
        let mut done = Vec::new();
        if let Some(w) = self.parquet {
            let path = &self.paths[0];
            let out = w.into_inner().map_err(|e| IoError::write(path, e))?;
            done.push(out.commit().map_err(|e| IoError::write(path, e))?);
        }
        if let Some(mut w) = self.ndjson {
            let path = self.paths.last().expect("ndjson path");
            w.finish().map_err(|e| IoError::write(path, e))?;
            done.push(
                w.into_inner()
                    .commit()
                    .map_err(|e| IoError::write(path, e))?,
            );
        }
        Ok(done)
    }
}

/// Writes serialisable records one JSON object per line, atomically.
pub struct NdjsonWriter {
    out: AtomicWriter,
    rows: u64,
}

impl NdjsonWriter {
    /// Opens `path` for writing (committed by [`NdjsonWriter::commit`]).
    pub fn create(path: &Path) -> Result<Self, IoError> {
        let out = AtomicWriter::create(path).map_err(|e| IoError::write(path, e))?;
        Ok(Self { out, rows: 0 })
    }

    /// Appends one record as a line.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), IoError> {
        let path = self.out.dest().to_path_buf();
        serde_json::to_writer(&mut self.out, record).map_err(|e| IoError::write(&path, e))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| IoError::write(&path, e))?;
        self.rows += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Renames the file into place.
    pub fn commit(self) -> Result<PathBuf, IoError> {
        let path = self.out.dest().to_path_buf();
        self.out.commit().map_err(|e| IoError::write(&path, e))
    }
}
