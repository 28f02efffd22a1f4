//! Resumable enrichment: each finished chunk of awards is saved as `chunk-NNNNNN.parquet` (its
//! enriched rows) plus `chunk-NNNNNN.tally.json` (its counts) in the checkpoint folder. A rerun
//! with the same inputs and settings loads finished chunks instead of matching them again, so
//! the final output is identical to an uninterrupted run. A `manifest.json` fingerprint of the
//! inputs and settings guards against resuming with anything changed: stale chunks are removed.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use serde::{Deserialize, Serialize};

use super::{EnrichError, Tally};
use crate::io::IoError;
use crate::io::atomic::{AtomicWriter, write_file};

/// A checkpoint folder bound to one fingerprint of inputs and settings.
#[derive(Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    /// Chunks found finished when the folder was opened.
    pub resumed: usize,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct Manifest {
    fingerprint: String,
}

impl Checkpoints {
    /// Opens (or creates) `dir`; chunks written under another fingerprint are removed.
    pub fn open(dir: &Path, fingerprint: &str) -> Result<Self, EnrichError> {
        let io = |e: std::io::Error| EnrichError::Io(IoError::write(dir, e));
        std::fs::create_dir_all(dir).map_err(io)?;
        let manifest_path = dir.join("manifest.json");
        let want = Manifest {
            fingerprint: fingerprint.to_string(),
        };
        let current: Option<Manifest> = std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if current.as_ref() != Some(&want) {
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("chunk-"))
                {
                    std::fs::remove_file(&path).map_err(io)?;
                }
            }
            let bytes = serde_json::to_vec(&want).expect("manifest serialises");
            write_file(&manifest_path, &bytes).map_err(io)?;
        }
        let mut me = Self {
            dir: dir.to_path_buf(),
            resumed: 0,
        };
        while me.tally_path(me.resumed).exists() {
            me.resumed += 1;
        }
        Ok(me)
    }

    fn batch_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("chunk-{k:06}.parquet"))
    }

    fn tally_path(&self, k: usize) -> PathBuf {
        self.dir.join(format!("chunk-{k:06}.tally.json"))
    }

    /// The saved rows and counts of chunk `k`, if it finished in an earlier run.
    pub(super) fn load(
        &self,
        k: usize,
        schema: &SchemaRef,
    ) -> Result<Option<(RecordBatch, Tally)>, EnrichError> {
        let (batch_path, tally_path) = (self.batch_path(k), self.tally_path(k));
        if !tally_path.exists() {
            return Ok(None);
        }
        let err = |p: &Path, e: &dyn std::fmt::Display| EnrichError::Read {
            path: p.to_path_buf(),
            message: e.to_string(),
        };
        let tally: Tally =
            serde_json::from_slice(&std::fs::read(&tally_path).map_err(|e| err(&tally_path, &e))?)
                .map_err(|e| err(&tally_path, &e))?;
        let file = std::fs::File::open(&batch_path).map_err(|e| err(&batch_path, &e))?;
        let reader = ParquetRecordBatchReader::try_new(file, usize::MAX >> 1)
            .map_err(|e| err(&batch_path, &e))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&batch_path, &e))?;
        let batch = arrow_select::concat::concat_batches(schema, &batches)
            .map_err(|e| err(&batch_path, &e))?;
        Ok(Some((batch, tally)))
    }

    /// Saves chunk `k` (rows first, counts last: a chunk counts as finished once both exist).
    pub(super) fn save(
        &self,
        k: usize,
        batch: &RecordBatch,
        tally: &Tally,
    ) -> Result<(), EnrichError> {
        let path = self.batch_path(k);
        let wr = |e: &dyn std::fmt::Display| EnrichError::Io(IoError::write(&path, e));
        let out = AtomicWriter::create(&path).map_err(|e| wr(&e))?;
        let mut w = ArrowWriter::try_new(out, batch.schema(), None).map_err(|e| wr(&e))?;
        w.write(batch).map_err(|e| wr(&e))?;
        w.into_inner()
            .map_err(|e| wr(&e))?
            .commit()
            .map_err(|e| wr(&e))?;
        let tally_path = self.tally_path(k);
        let bytes = serde_json::to_vec(tally).expect("tally serialises");
        write_file(&tally_path, &bytes)
            .map_err(|e| EnrichError::Io(IoError::write(&tally_path, e)))?;
        Ok(())
    }
}
