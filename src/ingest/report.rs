//! What an ingestion counted: rows in, written, rejected and repeated, with the codes, fields
//! and first examples of rejects and warnings, and the stage's gates.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::dedup::{Dedup, Seen};
use super::row::{self, Position, ValidAward};
use crate::config::IngestGates;
use crate::io::checks::{Gate, Severity};
use crate::io::input::InputInfo;

/// A row dropped as an exact repeat of an earlier one.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub line: u64,
    pub duplicate_of_line: u64,
}

/// Counts and details of one ingestion, for the checks file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub input: InputInfo,
    pub input_rows: u64,
    pub written: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Rows kept whose key equalled an earlier, different row's (id suffixed `-2`, `-3`, …).
    pub key_collisions: u64,
    pub rows_with_warnings: u64,
    pub warnings_by_code: BTreeMap<String, u64>,
    pub rejects_by_code: BTreeMap<String, u64>,
    pub rejects_by_field: BTreeMap<String, u64>,
    /// Per reject code, the first rejected value seen and its field, for the error message.
    pub reject_examples: BTreeMap<String, Example>,
    /// Per warning code, the first value seen and its field.
    pub warning_examples: BTreeMap<String, Example>,
    /// `csv`, `json` (an array) or `ndjson`.
    pub input_format: &'static str,
    pub missing_optional_columns: Vec<String>,
    pub extra_columns: Vec<String>,
    /// The first few duplicates, to let a person look.
    pub duplicate_examples: Vec<Duplicate>,
}

const DUPLICATE_EXAMPLES: usize = 20;

/// One value that was rejected or warned about, as an example of its code.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub field: Option<String>,
    pub value: Option<String>,
    /// Where it was: `line N` or `record N`.
    pub at: String,
}

impl IngestReport {
    /// The most frequent reject codes, each with its count and an example
    /// (`588 rows invalid_duns, e.g. Duns "'079179794'" at line 7`), most frequent first.
    pub fn top_reject_reasons(&self, n: usize) -> Vec<String> {
        let mut codes: Vec<(&String, &u64)> = self.rejects_by_code.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        codes
            .into_iter()
            .take(n)
            .map(|(code, count)| {
                let e = self.reject_examples.get(code);
                let example = e.map_or(String::new(), |e| {
                    format!(
                        ", e.g. {} {:?} at {}",
                        e.field.as_deref().unwrap_or("(row)"),
                        e.value.as_deref().unwrap_or(""),
                        e.at
                    )
                });
                format!("{count} rows {code}{example}")
            })
            .collect()
    }
}

impl IngestReport {
    /// Row counts for the checks file.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("input_rows".to_string(), self.input_rows),
            ("written".to_string(), self.written),
            ("rejected".to_string(), self.rejected),
            ("duplicates".to_string(), self.duplicates),
            ("key_collisions".to_string(), self.key_collisions),
            ("rows_with_warnings".to_string(), self.rows_with_warnings),
        ])
    }

    /// True when input rows = written + rejected + duplicates.
    pub fn reconciles(&self) -> bool {
        self.input_rows == self.written + self.rejected + self.duplicates
    }

    /// The stage's quality gates, thresholds from settings.
    pub fn gates(&self, settings: &IngestGates) -> Vec<Gate> {
        let reject_rate = if self.input_rows == 0 {
            0.0
        } else {
            self.rejected as f64 / self.input_rows as f64
        };
        vec![
            Gate::at_most(
                "reject_rate",
                reject_rate,
                settings.max_reject_rate,
                Severity::Error,
            ),
            Gate::at_least(
                "rows_written",
                self.written as f64,
                settings.min_rows_written as f64,
                Severity::Error,
            ),
        ]
    }
}

impl IngestReport {
    pub(super) fn count_reject(&mut self, rej: &row::Reject) {
        self.rejected += 1;
        for r in &rej.reasons {
            *self.rejects_by_code.entry(r.code.to_string()).or_default() += 1;
            *self.rejects_by_field.entry(r.field.clone()).or_default() += 1;
            self.reject_examples
                .entry(r.code.to_string())
                .or_insert_with(|| Example {
                    field: Some(r.field.clone()),
                    value: Some(r.value.clone()),
                    at: rej.at.to_string(),
                });
        }
    }

    /// Counts `award` as a duplicate (returning `false`) or keeps it, suffixing its id when
    /// an earlier, different row had the same key.
    pub(super) fn dedup(
        &mut self,
        dedup: &mut Dedup,
        award: &mut ValidAward<'_>,
        at: Position,
        key: u64,
        content: u64,
    ) -> bool {
        match dedup.check(key, content, award.source_line) {
            Seen::Repeat(first) => {
                self.duplicates += 1;
                if self.duplicate_examples.len() < DUPLICATE_EXAMPLES {
                    self.duplicate_examples.push(Duplicate {
                        line: award.source_line,
                        duplicate_of_line: first,
                    });
                }
                return false;
            }
            Seen::Collision(n) => {
                self.key_collisions += 1;
                award.award_id = Cow::Owned(format!("{}-{n}", award.award_id));
                award.warnings.push(crate::records::Warning {
                    code: Cow::Borrowed(row::warning::KEY_COLLISION),
                    field: None,
                    value: None,
                });
            }
            Seen::New => {}
        }
        if !award.warnings.is_empty() {
            self.rows_with_warnings += 1;
        }
        for w in &award.warnings {
            let code = w.code.as_ref();
            match self.warnings_by_code.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    self.warnings_by_code.insert(code.to_string(), 1);
                    self.warning_examples.insert(
                        code.to_string(),
                        Example {
                            field: w.field.as_deref().map(str::to_string),
                            value: w.value.as_deref().map(str::to_string),
                            at: at.to_string(),
                        },
                    );
                }
            }
        }
        true
    }
}
