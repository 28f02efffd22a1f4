//! Inputs and outputs every stage shares: CSV and JSON sources (plain or gzip), atomic Parquet/NDJSON
//! table writers, reject files and the `<output>.checks.json` envelope.

pub mod atomic;
pub mod bundle;
pub mod checks;
pub mod chunks;
pub mod input;
pub mod json;
pub mod table;

use std::path::{Path, PathBuf};

/// A file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{path} lacks column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}: column `{column}` is {found}, expected {expected} (as sbir writes it)")]
    ColumnType {
        path: PathBuf,
        column: String,
        found: String,
        expected: String,
    },
}

impl IoError {
    /// True when the file given cannot serve as this input (unreadable, or a column missing or
    /// of another type): the user's to fix (exit code 2).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Read { .. } | Self::MissingColumn { .. } | Self::ColumnType { .. }
        )
    }

    /// A read failure of `path`.
    pub fn read(path: &Path, err: impl std::fmt::Display) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }

    /// A write failure of `path`.
    pub fn write(path: &Path, err: impl std::fmt::Display) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}

/// `stem` with `suffix` appended (`data/x` + `.rejects.ndjson`), keeping any dots in the stem.
pub fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Every file below `dir` (recursively), sorted by path.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IoError> {
        for entry in std::fs::read_dir(dir).map_err(|e| IoError::read(dir, e))? {
            let path = entry.map_err(|e| IoError::read(dir, e))?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    Ok(out)
}
