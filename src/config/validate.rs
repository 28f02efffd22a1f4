//! Range, path and name checks on loaded settings that serde cannot express, one function per
//! section; the first failing check names its key and where the value came from.

use super::{ConfigError, Loaded, is_identifier, load::origin_of};

type Checked = Result<(), ConfigError>;

impl Loaded {
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            origin: origin_of(&self.origins, key),
            message: message.into(),
        }
    }

    /// Every section's checks, in the order of `config/base.yaml`'s main sections.
    pub(super) fn validate(&self) -> Checked {
        self.output()?;
        self.ingest()?;
        self.enrich()?;
        self.cet()?;
        self.neo4j()?;
        self.embed()?;
        self.paths_and_logging()
    }

    /// Each value lies in 0..=1 (rates and shares).
    fn fractions(&self, values: &[(&str, f64)]) -> Checked {
        match values.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            Some((key, _)) => Err(self.invalid(key, "must be between 0 and 1")),
            None => Ok(()),
        }
    }

    /// Each count is at least 1.
    fn counts(&self, values: &[(&str, usize)]) -> Checked {
        match values.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(self.invalid(key, "must be at least 1")),
            None => Ok(()),
        }
    }

    /// Each name is a plain file or folder name: not empty, no path separator.
    fn plain_names(&self, values: &[(&str, &str)], what: &str) -> Checked {
        match values
            .iter()
            .find(|(_, v)| v.is_empty() || v.contains(['/', '\\']))
        {
            Some((key, _)) => Err(self.invalid(key, format!("must be a plain {what}"))),
            None => Ok(()),
        }
    }

    fn output(&self) -> Checked {
        let o = &self.settings.output;
        if !(-7..=22).contains(&o.zstd_level) {
            return Err(self.invalid("output.zstd_level", "must be between -7 and 22"));
        }
        self.counts(&[("output.row_group_size", o.row_group_size)])
    }

    fn ingest(&self) -> Checked {
        let i = &self.settings.ingest;
        self.counts(&[("ingest.chunk_size", i.chunk_size)])?;
        self.fractions(&[("ingest.gates.max_reject_rate", i.gates.max_reject_rate)])?;
        if let Some(max) = i.max_award_year
            && max < i.min_award_year
        {
            return Err(self.invalid(
                "ingest.max_award_year",
                format!("{max} is before ingest.min_award_year {}", i.min_award_year),
            ));
        }
        self.plain_names(&[("ingest.output_name", &i.output_name)], "file name stem")
    }

    fn enrich(&self) -> Checked {
        let e = &self.settings.enrich;
        if !(0.0..=100.0).contains(&e.low_threshold)
            || !(0.0..=100.0).contains(&e.high_threshold)
            || e.low_threshold > e.high_threshold
        {
            return Err(self.invalid(
                "enrich.low_threshold",
                "thresholds must lie in 0..=100 with low_threshold <= high_threshold",
            ));
        }
        self.counts(&[
            ("enrich.top_k", e.top_k),
            ("enrich.max_block_size", e.max_block_size),
            ("enrich.max_candidates", e.max_candidates),
            ("enrich.chunk_size", e.chunk_size),
        ])?;
        self.fractions(&[
            ("enrich.alike_words", e.alike_words),
            ("enrich.gates.min_match_rate", e.gates.min_match_rate),
            ("enrich.gates.max_null_rate", e.gates.max_null_rate),
            (
                "enrich.gates.max_match_rate_drop",
                e.gates.max_match_rate_drop,
            ),
        ])
    }

    fn cet(&self) -> Checked {
        let c = &self.settings.cet;
        self.fractions(&[
            ("cet.gates.min_success_rate", c.gates.min_success_rate),
            (
                "cet.gates.min_classified_share",
                c.gates.min_classified_share,
            ),
            ("cet.gates.min_high_conf_rate", c.gates.min_high_conf_rate),
            (
                "cet.gates.min_evidence_coverage",
                c.gates.min_evidence_coverage,
            ),
            ("cet.drift.share_change", c.drift.share_change),
        ])?;
        if !(0.0 < c.drift.psi_warning && c.drift.psi_warning <= c.drift.psi_error) {
            return Err(self.invalid(
                "cet.drift.psi_warning",
                "must be positive and at most cet.drift.psi_error",
            ));
        }
        if c.batch_size == 0 || c.sample_size == Some(0) {
            return Err(self.invalid(
                "cet.batch_size",
                "batch_size and sample_size must be at least 1",
            ));
        }
        self.plain_names(
            &[
                ("cet.output_name", &c.output_name),
                ("cet.profiles_name", &c.profiles_name),
                ("cet.taxonomy_name", &c.taxonomy_name),
            ],
            "file name stem",
        )
    }

    fn neo4j(&self) -> Checked {
        let n = &self.settings.neo4j;
        for (key, v) in [
            ("neo4j.labels.cet_area", &n.labels.cet_area),
            ("neo4j.labels.award", &n.labels.award),
            ("neo4j.labels.company", &n.labels.company),
            ("neo4j.rel_types.awarded", &n.rel_types.awarded),
            ("neo4j.rel_types.applicable_to", &n.rel_types.applicable_to),
            (
                "neo4j.rel_types.specializes_in",
                &n.rel_types.specializes_in,
            ),
            ("neo4j.company_key_property", &n.company_key_property),
        ] {
            if !is_identifier(v) {
                return Err(self.invalid(
                    key,
                    format!(
                        "{v:?} is not a plain identifier (a letter, then letters, digits or _)"
                    ),
                ));
            }
        }
        if n.batch_size == 0 || n.concurrency == 0 {
            return Err(self.invalid(
                "neo4j.batch_size",
                "batch_size and concurrency must be at least 1",
            ));
        }
        for (key, v) in [
            ("neo4j.connect_timeout_s", n.connect_timeout_s),
            ("neo4j.receive_timeout_s", n.receive_timeout_s),
        ] {
            if v == 0 {
                return Err(self.invalid(key, "must be at least 1 (seconds)"));
            }
        }
        self.fractions(&[("neo4j.min_load_success_rate", n.min_load_success_rate)])?;
        if n.array_delimiter.chars().count() != 1 || n.array_delimiter == "," {
            return Err(self.invalid(
                "neo4j.array_delimiter",
                "must be one character other than ','",
            ));
        }
        Ok(())
    }

    fn embed(&self) -> Checked {
        let e = &self.settings.embed;
        if e.chunk_tokens < 8 || e.chunk_overlap >= e.chunk_tokens / 2 {
            return Err(self.invalid(
                "embed.chunk_tokens",
                format!(
                    "chunk_tokens must be at least 8 and chunk_overlap ({}) under half of it ({})",
                    e.chunk_overlap, e.chunk_tokens
                ),
            ));
        }
        if e.batch_tokens < e.chunk_tokens {
            return Err(self.invalid("embed.batch_tokens", "must be at least chunk_tokens"));
        }
        if e.gpu_memory_cap_mb < 256 {
            return Err(self.invalid(
                "embed.gpu_memory_cap_mb",
                "must be at least 256 (the model and one batch must fit)",
            ));
        }
        if e.rerank.top_n == 0 || e.rerank.batch_cap == 0 {
            return Err(self.invalid(
                "embed.rerank.top_n",
                "top_n and batch_cap must be at least 1",
            ));
        }
        self.plain_names(&[("embed.dir_name", &e.dir_name)], "folder name")
    }

    fn paths_and_logging(&self) -> Checked {
        let s = &self.settings;
        if s.paths.processed_dir.exists() && !s.paths.processed_dir.is_dir() {
            return Err(self.invalid(
                "paths.processed_dir",
                format!(
                    "{} exists and is not a directory",
                    s.paths.processed_dir.display()
                ),
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&s.logging.level.as_str()) {
            return Err(self.invalid(
                "logging.level",
                "expected one of error, warn, info, debug, trace",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Sources, load};

    fn with(env: &[(&str, &str)]) -> String {
        let sources = Sources {
            env_vars: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Sources::default()
        };
        load(&sources)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(with(&[]), "");
    }

    #[test]
    fn each_kind_of_check_names_its_key_and_origin() {
        for (var, value, want) in [
            (
                "SBIR_ETL__ENRICH__GATES__MIN_MATCH_RATE",
                "1.5",
                "enrich.gates.min_match_rate",
            ),
            ("SBIR_ETL__ENRICH__TOP_K", "0", "enrich.top_k"),
            ("SBIR_ETL__CET__OUTPUT_NAME", "a/b", "cet.output_name"),
            (
                "SBIR_ETL__NEO4J__LABELS__AWARD",
                "Award; DROP",
                "neo4j.labels.award",
            ),
            ("SBIR_ETL__EMBED__DIR_NAME", "x/y", "embed.dir_name"),
            ("SBIR_ETL__OUTPUT__ZSTD_LEVEL", "30", "output.zstd_level"),
        ] {
            let msg = with(&[(var, value)]);
            assert!(msg.contains(want) && msg.contains(var), "{var}: {msg}");
        }
    }
}
