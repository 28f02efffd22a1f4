//! Benchmark reports on disk: one JSON file per run, and `history.ndjson` with one report a
//! line, which `sbir benchmark report` draws.

use std::io::Write;
use std::path::Path;

use super::{BenchError, BenchReport};
use crate::io::IoError;

/// Appends `report` as one line of the history at `path` (its folder is created).
pub fn append(path: &Path, report: &BenchReport) -> Result<(), BenchError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| IoError::write(dir, e))?;
    }
    let mut line = serde_json::to_vec(report).map_err(|e| BenchError::Input(e.to_string()))?;
    line.push(b'\n');
    // One write of the whole line in append mode: concurrent runs never interleave lines.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(|e| IoError::write(path, e).into())
}

/// One report (a `benchmark_<timestamp>.json` or a baseline).
pub fn read_report(path: &Path) -> Result<BenchReport, BenchError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::read(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        BenchError::Input(format!("{} is not a benchmark report: {e}", path.display()))
    })
}

/// Every report of a history file, oldest first; a line that is not a report is an error
/// naming it.
pub fn read(path: &Path) -> Result<Vec<BenchReport>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::read(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                BenchError::Input(format!(
                    "{}, line {}: not a benchmark report: {e}",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}
