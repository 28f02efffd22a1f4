//! The enrich stage: settings → [`EnrichOptions`] → `enrich_to_files` → gates (with the
//! previous run's match rate), counts and the `enriched_sbir_awards.checks.json` file.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Done, Layout, StageError, Written};
use crate::config::Settings;
use crate::enrich::{self, EnrichError, EnrichOptions, EnrichReport};
use crate::io::checks::{Checks, RunContext, now_rfc3339};
use crate::metrics::StageTimer;
use crate::progress::Progress;

/// What a run may ask for beyond the settings.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Add each award's top-k candidates as a list column.
    pub candidates: bool,
    /// Known links (award_id, recipient_uei) to measure precision and recall against.
    pub truth: Option<PathBuf>,
    /// Save finished chunks here so a rerun resumes.
    pub checkpoint_dir: Option<PathBuf>,
}

/// The library's options for these settings.
pub fn options(s: &Settings, extra: &Extra) -> EnrichOptions {
    EnrichOptions {
        awards: Layout::new(s).enrich_input(),
        recipients: s.enrich.recipients.clone(),
        settings: s.enrich.clone(),
        candidates: extra.candidates,
        truth: extra.truth.clone(),
        checkpoint_dir: extra.checkpoint_dir.clone(),
    }
}

/// Links the ingested awards to USAspending recipients; writes the table and checks file.
pub fn run(
    s: &Settings,
    ctx: &RunContext,
    extra: &Extra,
    progress: &dyn Progress,
) -> Result<Done<EnrichReport>, StageError> {
    let opts = options(s, extra);
    let started_at = now_rfc3339();
    let timer = StageTimer::start();
    let stem = Layout::new(s).enrich_stem();
    let checks_path = Checks::path_for(&stem);
    // The gate on a falling match rate compares with the last run's checks file.
    let previous_rate = Checks::read(&checks_path)
        .ok()
        .and_then(|c| c.details.get("match_rate").and_then(|v| v.as_f64()));
    tracing::info!(
        "enrich: {} against {}",
        opts.awards.display(),
        opts.recipients.display()
    );
    let written = enrich::enrich_to_files(&opts, &stem, &s.output, progress)?;
    let report = written.report;
    let gates = report.gates(&s.enrich, previous_rate);
    let mut checks = Checks::new("enrich", ctx, started_at, gates);
    checks.counts = report.counts();
    checks.metrics = timer.finish(report.awards);
    checks.inputs = report.inputs.clone();
    checks.outputs = written.paths;
    checks.details = json!({
        "match_rate": report.match_rate,
        "previous_match_rate": previous_rate,
        "by_method": report.by_method,
        "unlinked_by_method": report.unlinked_by_method,
        "breakdown": report.breakdown,
        "null_rates": report.null_rates,
        "recipients": report.recipients,
        "mean_blocked_candidates": report.mean_blocked,
        "resumed_chunks": report.resumed_chunks,
        "truth": report.truth,
        "thresholds": {"high": s.enrich.high_threshold, "low": s.enrich.low_threshold, "accept_candidates": s.enrich.accept_candidates},
    });
    let checks = Written::write(checks, checks_path)?;
    Ok(Done {
        checks: vec![checks],
        report,
    })
}

/// Why award `id` matched as it did (JSON); `scratch` takes the recipients' rejects.
pub fn explain(s: &Settings, id: &str, scratch: &Path) -> Result<serde_json::Value, EnrichError> {
    let opts = options(s, &Extra::default());
    let normalizer = crate::names::Normalizer::new(&opts.settings.name_rules);
    let award = crate::records::read_awards(&opts.awards)?
        .into_iter()
        .find(|a| a.award_id == id)
        .ok_or_else(|| EnrichError::NoSuchAward {
            id: id.to_string(),
            path: opts.awards.clone(),
        })?;
    let (index, ..) = enrich::build_index(&opts.recipients, &opts.settings, &normalizer, scratch)?;
    let _ = std::fs::remove_file(scratch);
    let matcher = enrich::Matcher {
        index: &index,
        normalizer: &normalizer,
        settings: &opts.settings,
    };
    Ok(enrich::explain(&matcher, &award))
}
