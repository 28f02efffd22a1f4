//! Table outputs: Parquet (arrow-rs) and/or NDJSON from the same Arrow record batches, so both
//! formats always hold the same rows and values. Files are written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression as PqCompression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde::Serialize;

use super::IoError;
use super::atomic::AtomicWriter;
use crate::config::{Compression, DataPage, OutputFormat, OutputSettings};

/// Field metadata key the table writer honours: a column so marked takes many distinct values
/// in every row group, so its Parquet pages skip dictionary encoding and statistics, which
/// would cost time and buy little (zstd still finds the repeats).
pub const HIGH_CARDINALITY: &str = "sbir.high_cardinality";

/// Parquet file whose column chunks are encoded and compressed in parallel (rayon), one
/// column writer per leaf column, as arrow-rs documents for parallel writing.
struct ParquetSink {
    file: SerializedFileWriter<AtomicWriter>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    columns: Vec<ArrowColumnWriter>,
    rows_in_group: usize,
    row_group_size: usize,
    row_groups: usize,
}

impl ParquetSink {
    fn create(
        path: &Path,
        schema: SchemaRef,
        settings: &OutputSettings,
    ) -> Result<Self, ParquetError> {
        let compression = match settings.parquet_compression {
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::try_new(settings.zstd_level)?),
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let mut props = WriterProperties::builder()
            .set_compression(compression)
            .set_created_by(format!("sbir {}", env!("CARGO_PKG_VERSION")))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_writer_version(match settings.parquet_data_page {
                DataPage::V1 => WriterVersion::PARQUET_1_0,
                DataPage::V2 => WriterVersion::PARQUET_2_0,
            })
            // Format 2 would otherwise pick delta encodings, which some readers (Spark's
            // vectorised reader before 3.3) cannot read; values stay PLAIN or dictionary.
            .set_encoding(Encoding::PLAIN);
        for f in schema.fields() {
            if f.metadata().contains_key(HIGH_CARDINALITY) {
                let col = ColumnPath::from(f.name().as_str());
                props = props
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_statistics_enabled(col, EnabledStatistics::None);
            }
        }
        let out = AtomicWriter::create(path)?;
        // ArrowWriter sets up the Parquet schema and the embedded Arrow schema; its parts
        // are then driven column by column.
        let (file, factory) = ArrowWriter::try_new(out, schema.clone(), Some(props.build()))?
            .into_serialized_writer()?;
        let columns = factory.create_column_writers(0)?;
        Ok(Self {
            file,
            factory,
            schema,
            columns,
            rows_in_group: 0,
            row_group_size: settings.row_group_size,
            row_groups: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let n = (self.row_group_size - self.rows_in_group).min(batch.num_rows() - offset);
            let part = batch.slice(offset, n);
            let mut leaves = Vec::with_capacity(self.columns.len());
            for (field, array) in self.schema.fields().iter().zip(part.columns()) {
                leaves.extend(compute_leaves(field, array)?);
            }
            self.columns
                .par_iter_mut()
                .zip(leaves.par_iter())
                .try_for_each(|(w, leaf)| w.write(leaf))?;
            self.rows_in_group += n;
            offset += n;
            if self.rows_in_group == self.row_group_size {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    fn flush_row_group(&mut self) -> Result<(), ParquetError> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        self.row_groups += 1;
        let next = self.factory.create_column_writers(self.row_groups)?;
        let done = std::mem::replace(&mut self.columns, next);
        let chunks: Vec<ArrowColumnChunk> = done
            .into_par_iter()
            .map(ArrowColumnWriter::close)
            .collect::<Result<_, _>>()?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.rows_in_group = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<AtomicWriter, ParquetError> {
        self.flush_row_group()?;
        self.file.into_inner()
    }
}

/// Writes one table to `<stem>.parquet` and/or `<stem>.ndjson`.
pub struct TableWriter {
    parquet: Option<(ParquetSink, PathBuf)>,
    ndjson: Option<(arrow_json::LineDelimitedWriter<AtomicWriter>, PathBuf)>,
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
        let parquet = if settings.format != OutputFormat::Ndjson {
            let path = super::with_suffix(stem, ".parquet");
            let sink = ParquetSink::create(&path, schema.clone(), settings)
                .map_err(|e| IoError::write(&path, e))?;
            Some((sink, path))
        } else {
            None
        };
        let ndjson = if settings.format != OutputFormat::Parquet {
            let path = super::with_suffix(stem, ".ndjson");
            let out = AtomicWriter::create(&path).map_err(|e| IoError::write(&path, e))?;
            let w = arrow_json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow_json::writer::LineDelimited>(out);
            Some((w, path))
        } else {
            None
        };
        let nulls = vec![0; schema.fields().len()];
        Ok(Self {
            parquet,
            ndjson,
            schema,
            nulls,
            rows: 0,
        })
    }

    /// Appends a batch to every open format.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), IoError> {
        if let Some((w, path)) = &mut self.parquet {
            w.write(batch).map_err(|e| IoError::write(path, e))?;
        }
        if let Some((w, path)) = &mut self.ndjson {
            w.write(batch).map_err(|e| IoError::write(path, e))?;
        }
        for (n, col) in self.nulls.iter_mut().zip(batch.columns()) {
            *n += col.null_count() as u64;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
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
                (f.name().clone(), crate::metrics::round(rate, 4))
            })
            .collect()
    }

    /// Finishes every file and renames it into place; returns the final paths.
    pub fn commit(self) -> Result<Vec<PathBuf>, IoError> {
        let mut done = Vec::new();
        if let Some((w, path)) = self.parquet {
            let out = w.finish().map_err(|e| IoError::write(&path, e))?;
            done.push(out.commit().map_err(|e| IoError::write(&path, e))?);
        }
        if let Some((mut w, path)) = self.ndjson {
            w.finish().map_err(|e| IoError::write(&path, e))?;
            done.push(
                w.into_inner()
                    .commit()
                    .map_err(|e| IoError::write(&path, e))?,
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

    /// Writes `records` to `path` as a whole file; returns its path.
    pub fn write_all<T: Serialize>(
        path: &Path,
        records: impl IntoIterator<Item = T>,
    ) -> Result<PathBuf, IoError> {
        let mut w = Self::create(path)?;
        for r in records {
            w.write(&r)?;
        }
        w.commit()
    }

    /// Renames the file into place.
    pub fn commit(self) -> Result<PathBuf, IoError> {
        let path = self.out.dest().to_path_buf();
        self.out.commit().map_err(|e| IoError::write(&path, e))
    }
}
