//! End-to-end enrich benchmark: generates the synthetic set (default 250,000 awards against
//! 3,500,000 recipients, the full size), ingests it, then enriches with the truth file and
//! reports awards/s, peak RSS and match quality.
//!
//! Run: `cargo bench --bench enrich` (smaller: `SBIR_BENCH_AWARDS=50000 SBIR_BENCH_RECIPIENTS=500000`).

mod common;

use std::time::Instant;

use sbir::enrich::{self, EnrichOptions};
use sbir::metrics;
use sbir::progress::NoProgress;
use sbir::sample;

fn main() {
    let awards = common::env_u64("SBIR_BENCH_AWARDS", 250_000);
    let recipients = common::env_u64("SBIR_BENCH_RECIPIENTS", 3_500_000);
    let t = Instant::now();
    let fx = common::Fixture::generate(awards, recipients);
    println!(
        "generated {awards} awards and {recipients} recipients in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let awards_parquet = fx.ingest();
    let settings = &fx.settings;

    metrics::reset_peak_rss();
    let t = Instant::now();
    let opts = EnrichOptions {
        awards: awards_parquet,
        recipients: fx.path(sample::RECIPIENTS_FILE),
        settings: settings.enrich.clone(),
        candidates: false,
        truth: Some(fx.path(sample::TRUTH_FILE)),
        checkpoint_dir: None,
    };
    let written =
        enrich::enrich_to_files(&opts, &fx.path("enriched"), &settings.output, &NoProgress)
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
