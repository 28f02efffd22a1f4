//! Where every stage's output goes and which awards file a stage reads: one answer for the
//! commands, `sbir run` and the benchmark.

use std::path::PathBuf;

use crate::config::Settings;
use crate::io::checks::Checks;

/// The paths of one run's files, all derived from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    s: &'a Settings,
}

impl<'a> Layout<'a> {
    pub fn new(s: &'a Settings) -> Self {
        Self { s }
    }

    fn processed(&self, stem: &str) -> PathBuf {
        self.s.paths.processed_dir.join(stem)
    }

    /// `<processed_dir>/sbir_awards` (ingest writes `.parquet`, `.ndjson`, `.rejects.ndjson`).
    pub fn ingest_stem(&self) -> PathBuf {
        self.processed(&self.s.ingest.output_name)
    }

    /// The ingested awards table.
    pub fn ingested(&self) -> PathBuf {
        parquet(&self.ingest_stem())
    }

    /// The awards enrich reads: enrich.awards, else the ingest output.
    pub fn enrich_input(&self) -> PathBuf {
        self.s
            .enrich
            .awards
            .clone()
            .unwrap_or_else(|| self.ingested())
    }

    /// `<processed_dir>/enriched_sbir_awards`.
    pub fn enrich_stem(&self) -> PathBuf {
        self.processed(&self.s.enrich.output_name)
    }

    /// The awards classify-cet, load-neo4j and prepare-assets read: cet.awards, else the
    /// enrich output when present, else the ingest output.
    pub fn awards(&self) -> PathBuf {
        if let Some(p) = &self.s.cet.awards {
            return p.clone();
        }
        let enriched = parquet(&self.enrich_stem());
        if enriched.exists() {
            enriched
        } else {
            self.ingested()
        }
    }

    /// `<processed_dir>/cet_award_classifications`.
    pub fn classifications_stem(&self) -> PathBuf {
        self.processed(&self.s.cet.output_name)
    }

    /// The classifications table.
    pub fn classifications(&self) -> PathBuf {
        parquet(&self.classifications_stem())
    }

    /// `<processed_dir>/cet_company_profiles`.
    pub fn profiles_stem(&self) -> PathBuf {
        self.processed(&self.s.cet.profiles_name)
    }

    /// The company profiles table.
    pub fn profiles(&self) -> PathBuf {
        parquet(&self.profiles_stem())
    }

    /// `<processed_dir>/cet_taxonomy`.
    pub fn taxonomy_stem(&self) -> PathBuf {
        self.processed(&self.s.cet.taxonomy_name)
    }

    /// The drift and analytics alert files' folder.
    pub fn alerts_dir(&self) -> PathBuf {
        self.s.paths.reports_dir.join("alerts")
    }

    /// The default `classify-cet evaluate` report.
    pub fn evaluation(&self) -> PathBuf {
        self.s.paths.reports_dir.join("cet_evaluation.json")
    }

    /// A load-neo4j checks file: `<loaded_dir>/<name>.checks.json` (a step, or `export`).
    pub fn graph_checks(&self, name: &str) -> PathBuf {
        self.s.neo4j.loaded_dir.join(format!("{name}.checks.json"))
    }

    /// The statements and batches of `load-neo4j --dry-run`.
    pub fn dry_run(&self) -> PathBuf {
        self.s.neo4j.loaded_dir.join("dry-run.ndjson")
    }

    /// An embedded collection's folder: `<processed_dir>/<embed.dir_name>/<name>`.
    pub fn collection(&self, name: &str) -> PathBuf {
        self.processed(&self.s.embed.dir_name).join(name)
    }

    /// Every checks file the main job writes, in stage order.
    pub fn run_checks(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = [
            self.ingest_stem(),
            self.enrich_stem(),
            self.classifications_stem(),
            self.profiles_stem(),
        ]
        .iter()
        .map(|stem| Checks::path_for(stem))
        .collect();
        paths.push(self.graph_checks("export"));
        paths.extend(
            crate::graph::Step::ALL
                .iter()
                .map(|st| self.graph_checks(st.name())),
        );
        paths
    }
}

/// The Parquet table of `stem` (a stem may hold dots: `with_extension` would cut them).
fn parquet(stem: &std::path::Path) -> PathBuf {
    crate::io::with_suffix(stem, ".parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path) -> Settings {
        let mut s = crate::config::load(&crate::config::Sources::default())
            .unwrap()
            .settings;
        s.paths.processed_dir = dir.to_path_buf();
        s
    }

    #[test]
    fn awards_prefers_the_setting_then_enriched_then_ingested() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        assert_eq!(
            Layout::new(&s).awards(),
            dir.path().join("sbir_awards.parquet")
        );
        let enriched = dir.path().join("enriched_sbir_awards.parquet");
        std::fs::write(&enriched, b"").unwrap();
        assert_eq!(Layout::new(&s).awards(), enriched);
        s.cet.awards = Some("x.parquet".into());
        assert_eq!(Layout::new(&s).awards(), PathBuf::from("x.parquet"));
    }

    #[test]
    fn enrich_reads_ingest_output_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        assert_eq!(
            Layout::new(&s).enrich_input(),
            dir.path().join("sbir_awards.parquet")
        );
        s.enrich.awards = Some("a.parquet".into());
        assert_eq!(Layout::new(&s).enrich_input(), PathBuf::from("a.parquet"));
    }
}
