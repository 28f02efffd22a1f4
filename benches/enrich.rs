//! End-to-end enrich benchmark: generates the synthetic set (default 250,000 awards against
//! 3,500,000 recipients, the full size), ingests it, then enriches with the truth file and
//! reports awards/s, peak RSS and match quality.
//!
//! Run: `cargo bench --bench enrich` (smaller: `SBIR_BENCH_AWARDS=50000 SBIR_BENCH_RECIPIENTS=500000`).

use std::time::Instant;

use sbir::config::{self, Sources};
use sbir::enrich::{self, EnrichOptions};
use sbir::ingest::{self, IngestOptions};
use sbir::metrics;
use sbir::progress::NoProgress;
use sbir::sample::{self, SampleOptions};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let awards = env("SBIR_BENCH_AWARDS", 250_000);
    let recipients = env("SBIR_BENCH_RECIPIENTS", 3_500_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = config::load(&Sources::default())
        .expect("default settings")
        .settings;
    let t = Instant::now();
    let opts = SampleOptions {
        awards,
        recipients,
        seed: 42,
        out_dir: dir.path().to_path_buf(),
    };
    sample::generate(&opts, &NoProgress).expect("generate");
    println!(
        "generated {awards} awards and {recipients} recipients in {:.2}s",
        t.elapsed().as_secs_f64()
    );

    let mut ingest_settings = settings.ingest.clone();
    ingest_settings.input = dir.path().join(sample::AWARDS_FILE);
    let stem = dir.path().join("sbir_awards");
    ingest::ingest_to_files(
        &IngestOptions::from_settings(&ingest_settings, 2026),
        &stem,
        &settings.output,
        &NoProgress,
    )
    .expect("ingest");

    metrics::reset_peak_rss();
    let t = Instant::now();
    let opts = EnrichOptions {
        awards: stem.with_extension("parquet"),
        recipients: dir.path().join(sample::RECIPIENTS_FILE),
        settings: settings.enrich.clone(),
        candidates: false,
        truth: Some(dir.path().join(sample::TRUTH_FILE)),
        checkpoint_dir: None,
    };
    let written = enrich::enrich_to_files(
        &opts,
        &dir.path().join("enriched"),
        &settings.output,
        &NoProgress,
    )
    .expect("enrich");
    let secs = t.elapsed().as_secs_f64();
    let r = written.report;
    let truth = r.truth.expect("truth given");
    println!(
        "enrich: {} awards in {secs:.2}s = {:.0} awards/s, peak RSS {:.0} MB; match rate {}, precision {}, recall {}, blocking recall {}",
        r.awards,
        r.awards as f64 / secs,
        metrics::peak_rss_mb().unwrap_or_default(),
        r.match_rate,
        truth.precision,
        truth.recall,
        truth.blocking_recall
    );
    for (method, q) in &truth.by_method {
        println!("  {method}: linked {}, precision {}", q.linked, q.precision);
    }
}
