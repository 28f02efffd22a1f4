//! The CET taxonomy (`config/cet/taxonomy.yaml`): areas with definitions and keyword phrases,
//! its validation, and its table form (`cet_taxonomy.parquet`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::CetError;
use super::text::{normalise, phrase_keys};

/// A keyword phrase and the weight its matches carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Keyword {
    Plain(String),
    Weighted { phrase: String, weight: f64 },
}

impl Keyword {
    pub fn phrase(&self) -> &str {
        match self {
            Keyword::Plain(p) | Keyword::Weighted { phrase: p, .. } => p,
        }
    }

    pub fn weight(&self) -> f64 {
        match self {
            Keyword::Plain(_) => 1.0,
            Keyword::Weighted { weight, .. } => *weight,
        }
    }
}

/// One Critical and Emerging Technology area.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CetArea {
    pub id: String,
    pub name: String,
    pub definition: String,
    #[serde(default)]
    pub parent: Option<String>,
    pub keywords: Vec<Keyword>,
    #[serde(default)]
    pub negative_keywords: Vec<Keyword>,
}

/// A phrase two or more areas claim on purpose, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKeyword {
    pub phrase: String,
    pub areas: Vec<String>,
    pub note: String,
}

/// The whole taxonomy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    pub version: String,
    pub effective_date: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub shared_keywords: Vec<SharedKeyword>,
    pub areas: Vec<CetArea>,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// A problem `--check-taxonomy` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaxonomyIssue {
    pub area: Option<String>,
    pub problem: String,
}

impl std::fmt::Display for TaxonomyIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.area {
            Some(a) => write!(f, "area `{a}`: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// The shipped taxonomy, compiled in so the binary works from any folder.
pub const BUILTIN_YAML: &str = include_str!("../../config/cet/taxonomy.yaml");
/// Where the shipped taxonomy lives in a checkout (the default setting).
pub const DEFAULT_PATH: &str = "config/cet/taxonomy.yaml";

/// The text of a settings-named file; the compiled-in copy when the path is the default one
/// and no such file exists (running outside a checkout).
pub fn read_or_builtin(path: &Path, default: &str, builtin: &str) -> Result<String, CetError> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == Path::new(default) => {
            Ok(builtin.to_string())
        }
        r => r.map_err(|e| CetError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

impl Taxonomy {
    /// Reads and parses the file (structure only; [`Taxonomy::issues`] checks the content).
    pub fn read(path: &Path) -> Result<Self, CetError> {
        let text = read_or_builtin(path, DEFAULT_PATH, BUILTIN_YAML)?;
        let mut t: Taxonomy = serde_saphyr::from_str(&text).map_err(|e| CetError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        t.path = path.to_path_buf();
        Ok(t)
    }

    /// Reads the file and refuses one with any issue.
    pub fn load(path: &Path) -> Result<Self, CetError> {
        let t = Self::read(path)?;
        let issues = t.issues();
        if issues.is_empty() {
            Ok(t)
        } else {
            Err(CetError::Taxonomy {
                path: path.to_path_buf(),
                issues: issues.iter().map(|i| i.to_string()).collect(),
            })
        }
    }

    /// Every content problem: duplicate or malformed ids, empty names, definitions or keyword
    /// lists, unknown parents, empty phrases, and phrases claimed by two areas that
    /// `shared_keywords` does not explain.
    pub fn issues(&self) -> Vec<TaxonomyIssue> {
        let mut out = Vec::new();
        let mut push = |area: Option<&str>, problem: String| {
            out.push(TaxonomyIssue {
                area: area.map(str::to_string),
                problem,
            })
        };
        if self.areas.is_empty() {
            push(None, "no areas".into());
        }
        let ids: BTreeSet<&str> = self.areas.iter().map(|a| a.id.as_str()).collect();
        let mut seen = BTreeSet::new();
        // normalised phrase → areas claiming it
        let mut claims: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for a in &self.areas {
            let id = Some(a.id.as_str());
            if !seen.insert(a.id.as_str()) {
                push(id, "duplicate id".into());
            }
            if a.id.is_empty()
                || !a
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                push(id, "id must be non-empty snake_case (a-z, 0-9, _)".into());
            }
            if a.name.trim().is_empty() {
                push(id, "empty name".into());
            }
            if a.definition.trim().is_empty() {
                push(id, "empty definition".into());
            }
            if a.keywords.is_empty() {
                push(id, "no keywords".into());
            }
            if let Some(p) = &a.parent
                && (!ids.contains(p.as_str()) || p == &a.id)
            {
                push(id, format!("parent `{p}` is not another area of this file"));
            }
            for k in a.keywords.iter().chain(&a.negative_keywords) {
                if phrase_keys(k.phrase()).is_empty() {
                    push(id, format!("keyword {:?} has no words", k.phrase()));
                }
                if !(k.weight() > 0.0 && k.weight().is_finite()) {
                    push(
                        id,
                        format!("keyword {:?}: weight must be positive", k.phrase()),
                    );
                }
            }
            for k in &a.keywords {
                claims
                    .entry(normalised_phrase(k.phrase()))
                    .or_default()
                    .insert(&a.id);
            }
        }
        let shared: BTreeMap<String, BTreeSet<&str>> = self
            .shared_keywords
            .iter()
            .map(|s| {
                (
                    normalised_phrase(&s.phrase),
                    s.areas.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        for s in &self.shared_keywords {
            if s.note.trim().is_empty() {
                push(None, format!("shared keyword {:?} has no note", s.phrase));
            }
        }
        for (phrase, areas) in claims.iter().filter(|(_, a)| a.len() > 1) {
            if shared.get(phrase).is_none_or(|s| !areas.is_subset(s)) {
                push(
                    None,
                    format!(
                        "keyword {phrase:?} is claimed by {} without a note in shared_keywords",
                        areas.iter().copied().collect::<Vec<_>>().join(" and ")
                    ),
                );
            }
        }
        out
    }

    /// Area ids in file order (the order scores and classes use).
    pub fn ids(&self) -> Vec<String> {
        self.areas.iter().map(|a| a.id.clone()).collect()
    }

    /// What the bundle's centroids are checked against: ids, version and file.
    pub fn identity(&self) -> crate::io::bundle::TaxonomyIdentity {
        crate::io::bundle::TaxonomyIdentity {
            ids: self.ids(),
            version: self.version.clone(),
            path: self.path.clone(),
        }
    }

    /// Position of an area by id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.areas.iter().position(|a| a.id == id)
    }

    /// The table form: one row per area.
    pub fn to_batch(&self) -> Result<RecordBatch, serde_arrow::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            cet_id: &'a str,
            name: &'a str,
            definition: &'a str,
            parent_cet_id: Option<&'a str>,
            keywords: Vec<&'a str>,
            negative_keywords: Vec<&'a str>,
            taxonomy_version: &'a str,
            effective_date: &'a str,
        }
        let rows: Vec<Row> = self
            .areas
            .iter()
            .map(|a| Row {
                cet_id: &a.id,
                name: &a.name,
                definition: &a.definition,
                parent_cet_id: a.parent.as_deref(),
                keywords: a.keywords.iter().map(Keyword::phrase).collect(),
                negative_keywords: a.negative_keywords.iter().map(Keyword::phrase).collect(),
                taxonomy_version: &self.version,
                effective_date: &self.effective_date,
            })
            .collect();
        serde_arrow::to_record_batch(taxonomy_schema().fields(), &rows)
    }
}

/// Schema of `cet_taxonomy`.
pub fn taxonomy_schema() -> SchemaRef {
    let text = |n: &str, null: bool| -> FieldRef { Arc::new(Field::new(n, DataType::Utf8, null)) };
    let list = |n: &str| -> FieldRef {
        Arc::new(Field::new(
            n,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ))
    };
    Arc::new(Schema::new(vec![
        text("cet_id", false),
        text("name", false),
        text("definition", false),
        text("parent_cet_id", true),
        list("keywords"),
        list("negative_keywords"),
        text("taxonomy_version", false),
        text("effective_date", false),
    ]))
}

/// A phrase as matching sees it: normalised words joined by one space.
pub fn normalised_phrase(phrase: &str) -> String {
    phrase
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(normalise)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Taxonomy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_shipped_taxonomy_has_no_issues() {
        let t = parse(BUILTIN_YAML);
        assert_eq!(t.issues(), Vec::new());
        assert_eq!(t.ids().len(), 21);
        assert_eq!(t.index_of(&t.ids()[3]), Some(3));
    }

    #[test]
    fn every_kind_of_issue_is_named_with_its_area() {
        let t = parse(
            r#"
version: "t"
effective_date: "2024-01-01"
shared_keywords:
  - {phrase: digital twin, areas: [a, b], note: ""}
areas:
  - {id: a, name: A, definition: d, keywords: [digital twin, "Quantum Sensors"]}
  - {id: b, name: B, definition: d, keywords: [digital twins, quantum sensor]}
  - {id: a, name: " ", definition: d, parent: zz, keywords: [{phrase: "--", weight: 0}]}
  - {id: Bad-Id, name: C, definition: "", keywords: []}
"#,
        );
        let issues: Vec<String> = t.issues().iter().map(ToString::to_string).collect();
        for want in [
            "area `a`: duplicate id",
            "area `a`: empty name",
            "area `a`: parent `zz` is not another area of this file",
            "area `a`: keyword \"--\" has no words",
            "area `a`: keyword \"--\": weight must be positive",
            "area `Bad-Id`: id must be non-empty snake_case (a-z, 0-9, _)",
            "area `Bad-Id`: empty definition",
            "area `Bad-Id`: no keywords",
            "shared keyword \"digital twin\" has no note",
        ] {
            assert!(issues.iter().any(|i| i == want), "{want}: {issues:#?}");
        }
        // Plural and case do not hide a phrase two areas claim; the shared one is explained.
        assert!(
            issues
                .iter()
                .any(|i| i.contains("quantum sensor") && i.contains("claimed by a and b")),
            "{issues:#?}"
        );
        assert!(
            !issues
                .iter()
                .any(|i| i.contains("\"digital twin\" is claimed")),
            "{issues:#?}"
        );
    }
}
