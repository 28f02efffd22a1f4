//! The `<output>.checks.json` envelope every stage writes beside its output: status, counts,
//! quality gates, metrics, inputs and run identity, in one shape for all stages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::input::InputInfo;
use super::{IoError, atomic};
use crate::metrics::StageMetrics;

/// Overall verdict of a stage run, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// The name written to checks files and logs: `pass`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// How much a failed gate matters: `Error` fails the stage (exit 3), `Warning` only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One quality gate: `actual` compared with `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    /// `">="` or `"<="`: how `actual` must relate to `threshold`.
    pub comparison: String,
    pub threshold: f64,
    pub actual: f64,
    pub severity: Severity,
    pub passed: bool,
}

impl Gate {
    /// Passes when `actual >= threshold`.
    pub fn at_least(name: &str, actual: f64, threshold: f64, severity: Severity) -> Self {
        Self::new(name, ">=", actual, threshold, severity, actual >= threshold)
    }

    /// Passes when `actual <= threshold`.
    pub fn at_most(name: &str, actual: f64, threshold: f64, severity: Severity) -> Self {
        Self::new(name, "<=", actual, threshold, severity, actual <= threshold)
    }

    fn new(
        name: &str,
        cmp: &str,
        actual: f64,
        threshold: f64,
        severity: Severity,
        passed: bool,
    ) -> Self {
        Self {
            name: name.to_string(),
            comparison: cmp.to_string(),
            threshold,
            actual: (actual * 1e6).round() / 1e6,
            severity,
            passed,
        }
    }

    /// "name is actual (must be op threshold)", as the checks file reason lists it.
    /// `name actual (comparison threshold)`: the gate as a figure, for summaries.
    pub fn figure(&self) -> String {
        format!(
            "{} {:.4} ({} {})",
            self.name, self.actual, self.comparison, self.threshold
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "{} is {} (must be {} {})",
            self.name, self.actual, self.comparison, self.threshold
        )
    }
}

/// Identity shared by every checks file of one invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunContext {
    pub run_id: String,
    pub config_digest: String,
    pub tool_version: String,
}

impl RunContext {
    /// A new run with a unique id derived from the clock and process id.
    pub fn new(config_digest: String) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = chrono::Utc::now();
        let seed = format!(
            "{}-{}-{}",
            now.timestamp_nanos_opt().unwrap_or_default(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let hash = crate::hex::hex_prefix(&Sha256::digest(seed.as_bytes()), 8);
        Self {
            run_id: format!("{}-{hash}", now.format("%Y%m%dT%H%M%SZ")),
            config_digest,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The checks file contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checks {
    pub stage: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub counts: BTreeMap<String, u64>,
    pub gates: Vec<Gate>,
    pub metrics: StageMetrics,
    pub inputs: Vec<InputInfo>,
    pub outputs: Vec<PathBuf>,
    pub config_digest: String,
    pub tool_version: String,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// Stage-specific figures (completeness per field, warnings by code, …).
    pub details: serde_json::Value,
}

impl Checks {
    /// Builds the envelope; status follows from the gates (any failed error gate → `fail`,
    /// any failed warning gate → `warn`), and `reason` lists the failed gates.
    pub fn new(stage: &str, ctx: &RunContext, started_at: String, gates: Vec<Gate>) -> Self {
        let failed: Vec<&Gate> = gates.iter().filter(|g| !g.passed).collect();
        let status = if failed.iter().any(|g| g.severity == Severity::Error) {
            Status::Fail
        } else if failed.is_empty() {
            Status::Pass
        } else {
            Status::Warn
        };
        let reason = (!failed.is_empty()).then(|| {
            failed
                .iter()
                .map(|g| g.describe())
                .collect::<Vec<_>>()
                .join("; ")
        });
        Self {
            stage: stage.to_string(),
            status,
            reason,
            counts: BTreeMap::new(),
            gates,
            metrics: StageMetrics::default(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            config_digest: ctx.config_digest.clone(),
            tool_version: ctx.tool_version.clone(),
            run_id: ctx.run_id.clone(),
            started_at,
            finished_at: now_rfc3339(),
            details: serde_json::Value::Null,
        }
    }

    /// Path of the checks file for a table whose path without extension is `stem`.
    pub fn path_for(stem: &Path) -> PathBuf {
        super::with_suffix(stem, ".checks.json")
    }

    /// Writes the file atomically (pretty JSON).
    pub fn write(&self, path: &Path) -> Result<PathBuf, IoError> {
        atomic::write_json(path, self)
    }

    /// Reads a checks file written earlier.
    pub fn read(path: &Path) -> Result<Self, IoError> {
        let bytes = std::fs::read(path).map_err(|e| IoError::read(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| IoError::read(path, e))
    }
}

/// The current UTC time as RFC 3339 with seconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RunContext {
        RunContext::new("digest".into())
    }

    #[test]
    fn status_follows_the_worst_failed_gate() {
        let pass = Gate::at_least("a", 1.0, 0.5, Severity::Error);
        let warn = Gate::at_most("b", 2.0, 1.0, Severity::Warning);
        let fail = Gate::at_least("c", 0.1, 0.7, Severity::Error);
        assert_eq!(
            Checks::new("s", &ctx(), now_rfc3339(), vec![pass.clone()]).status,
            Status::Pass
        );
        let w = Checks::new("s", &ctx(), now_rfc3339(), vec![pass.clone(), warn.clone()]);
        assert_eq!(w.status, Status::Warn);
        assert_eq!(w.reason.as_deref(), Some("b is 2 (must be <= 1)"));
        let f = Checks::new("s", &ctx(), now_rfc3339(), vec![pass, warn, fail]);
        assert_eq!(f.status, Status::Fail);
        assert!(f.reason.unwrap().contains("c is 0.1 (must be >= 0.7)"));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(ctx().run_id, ctx().run_id);
    }
}
