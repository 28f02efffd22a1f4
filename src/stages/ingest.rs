//! The ingest stage: settings → [`IngestOptions`] → `ingest_to_files` → gates, counts and the
//! `sbir_awards.checks.json` file.

use serde_json::json;

use super::{Done, Layout, StageError, Written};
use crate::config::Settings;
use crate::ingest::{self, IngestOptions, IngestReport};
use crate::io::checks::{Checks, RunContext, Status, now_rfc3339};
use crate::metrics::StageTimer;
use crate::progress::Progress;

/// What a run may ask for beyond the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// Read only the first N data rows.
    pub limit: Option<u64>,
    /// Keep a uniform random sample of N rows: (N, seed).
    pub sample: Option<(u64, u64)>,
}

/// Reads ingest.input into the awards table, rejects file and checks file.
pub fn run(
    s: &Settings,
    ctx: &RunContext,
    extra: Extra,
    progress: &dyn Progress,
) -> Result<Done<IngestReport>, StageError> {
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let opts = IngestOptions {
        limit: extra.limit,
        sample: extra.sample,
        ..IngestOptions::from_settings(&s.ingest, chrono::Datelike::year(&chrono::Utc::now()))
    };
    let stem = Layout::new(s).ingest_stem();
    tracing::info!("ingest: reading {}", opts.input.display());
    let written = ingest::ingest_to_files(&opts, &stem, &s.output, progress)?;
    let report = written.report;
    let mut checks = Checks::new("ingest", ctx, started_at, report.gates(&s.ingest.gates));
    if checks.status == Status::Fail && report.rejected > 0 {
        tracing::error!(
            "ingest: {} of {} rows rejected; top reasons: {}",
            report.rejected,
            report.input_rows,
            report.top_reject_reasons(5).join("; ")
        );
    }
    checks.counts = report.counts();
    checks.metrics = timer.finish(report.input_rows);
    checks.inputs = vec![report.input.clone()];
    checks.outputs = written.paths;
    checks.details = json!({
        "reconciled": report.reconciles(),
        "completeness": written.completeness,
        "warnings_by_code": report.warnings_by_code,
        "rejects_by_code": report.rejects_by_code,
        "rejects_by_field": report.rejects_by_field,
        "reject_examples": report.reject_examples,
        "warning_examples": report.warning_examples,
        "input_format": report.input_format,
        "missing_optional_columns": report.missing_optional_columns,
        "extra_columns": report.extra_columns,
        "duplicate_examples": report.duplicate_examples,
        "limit": extra.limit,
        "sample": extra.sample.map(|(n, seed)| json!({"rows": n, "seed": seed})),
    });
    let checks = Written::write(checks, Checks::path_for(&stem))?;
    Ok(Done {
        checks: vec![checks],
        report,
    })
}
