//! Set-up the benches share: their size knobs and the generated (and ingested) synthetic set.

use std::path::PathBuf;

use sbir::config::{self, Settings, Sources};
use sbir::ingest::{self, IngestOptions};
use sbir::progress::NoProgress;
use sbir::sample::{self, SampleOptions};

/// A `SBIR_BENCH_*` variable, or the default.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A generated synthetic set (seed 42) in a temporary folder, with the default settings.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub settings: Settings,
}

impl Fixture {
    #[allow(dead_code)] // the embed bench uses only env_u64
    pub fn generate(awards: u64, recipients: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = config::load(&Sources::default())
            .expect("default settings")
            .settings;
        let opts = SampleOptions {
            awards,
            recipients,
            seed: 42,
            out_dir: dir.path().to_path_buf(),
        };
        sample::generate(&opts, &NoProgress).expect("generate");
        Self { dir, settings }
    }

    /// A generated file's path.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Ingests the generated awards; returns the Parquet path.
    #[allow(dead_code)] // not every bench ingests outside its timed loop
    pub fn ingest(&self) -> PathBuf {
        let mut s = self.settings.ingest.clone();
        s.input = self.path(sample::AWARDS_FILE);
        let stem = self.path("sbir_awards");
        ingest::ingest_to_files(
            &IngestOptions::from_settings(&s, 2026),
            &stem,
            &self.settings.output,
            &NoProgress,
        )
        .expect("ingest");
        stem.with_extension("parquet")
    }
}
