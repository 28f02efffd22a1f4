//! End-to-end ingest benchmark: generates the synthetic awards file (default 250,000 awards,
//! the target size) and ingests it to Parquet in-process, reporting rows/s, MB/s and
//! the peak RSS of the ingest alone.
//!
//! Run: `cargo bench --bench ingest` (size: `SBIR_BENCH_AWARDS=50000 cargo bench --bench ingest`).

mod common;

use std::time::Instant;

use sbir::ingest::{self, IngestOptions};
use sbir::metrics;
use sbir::progress::NoProgress;
use sbir::sample;

fn main() {
    let awards = common::env_u64("SBIR_BENCH_AWARDS", 250_000);
    let repeats = common::env_u64("SBIR_BENCH_REPEAT", 3) as usize;
    let t = Instant::now();
    let fx = common::Fixture::generate(awards, awards);
    let (dir, settings) = (fx.dir.path(), &fx.settings);
    let input = fx.path(sample::AWARDS_FILE);
    let bytes = std::fs::metadata(&input).expect("input").len();
    println!(
        "generated {awards} awards ({:.0} MB) in {:.2}s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let mut ingest_settings = settings.ingest.clone();
    ingest_settings.input = input;
    let opts = IngestOptions::from_settings(&ingest_settings, 2026);
    let mut best = f64::MAX;
    for run in 1..=repeats {
        metrics::reset_peak_rss();
        let t = Instant::now();
        let written =
            ingest::ingest_to_files(&opts, &dir.join("out"), &settings.output, &NoProgress)
                .expect("ingest");
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        println!(
            "run {run}: {} rows in {secs:.3}s = {:.0} rows/s, {:.0} MB/s, peak RSS {:.0} MB",
            written.report.input_rows,
            written.report.input_rows as f64 / secs,
            bytes as f64 / 1e6 / secs,
            metrics::peak_rss_mb().unwrap_or_default()
        );
    }
    println!("best: {:.0} rows/s", awards as f64 / best);
}
