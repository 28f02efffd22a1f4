//! Settings: built-in defaults, layered YAML files, `SBIR_ETL__` environment overrides and
//! command-line flags, merged in that order and validated once, before any work starts.
//!
//! The library never reads the environment: the binary collects the variables and passes
//! them in [`Sources`], so tests can inject any environment they like.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The defaults, compiled in so the binary works from any directory.
pub const BASE_YAML: &str = include_str!("../config/base.yaml");

/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "SBIR_ETL__";

/// A setting that could not be read or does not hold a usable value (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: not valid YAML: {message}")]
    Parse { origin: String, message: String },
    #[error("environment `{env}` has no settings file: expected {path}")]
    MissingEnvFile { env: String, path: PathBuf },
    #[error("setting `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

/// Every setting of the tool. Sections reject unknown keys so typos fail loudly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub paths: Paths,
    pub output: OutputSettings,
    pub logging: LoggingSettings,
    pub ingest: IngestSettings,
    pub enrich: EnrichSettings,
    pub cet: CetSettings,
    pub neo4j: Neo4jSettings,
    pub embed: EmbedSettings,
    pub sample_data: SampleDataSettings,
    pub benchmark: BenchmarkSettings,
}

/// Where outputs land.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub processed_dir: PathBuf,
    /// Alerts and reports (drift alerts, evaluations, benchmarks).
    pub reports_dir: PathBuf,
}

/// File formats every stage writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Parquet,
    Ndjson,
    Both,
}

/// Parquet page compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Snappy,
    None,
}

/// Parquet data page layout. V2 pages compress the values alone, which spares the writer two
/// copies of every page; V1 is for readers that predate V2 pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPage {
    V1,
    V2,
}

/// How tables are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    pub format: OutputFormat,
    pub parquet_compression: Compression,
    pub parquet_data_page: DataPage,
    pub zstd_level: i32,
    pub row_group_size: usize,
}

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging and progress reporting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub level: String,
    pub format: LogFormat,
    pub progress_interval_s: u64,
}

/// The `ingest` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub input: PathBuf,
    pub output_name: String,
    pub chunk_size: usize,
    pub min_award_year: i32,
    pub max_award_year: Option<i32>,
    pub large_amount_warning: f64,
    pub gates: IngestGates,
}

/// Quality gates of the `ingest` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestGates {
    pub max_reject_rate: f64,
    pub min_rows_written: u64,
}

/// The `enrich` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichSettings {
    /// Awards to enrich; empty means the ingest output in `paths.processed_dir`.
    pub awards: Option<PathBuf>,
    /// USAspending recipients (CSV, CSV.gz or Parquet).
    pub recipients: PathBuf,
    pub output_name: String,
    /// Weighted name scores at or above this link automatically (`name-fuzzy-auto`).
    pub high_threshold: f64,
    /// Weighted name scores at or above this are recorded as `name-fuzzy-candidate`.
    pub low_threshold: f64,
    /// Least indel similarity (0–1) at which two different words of two names pair as alike
    /// (`PHOTNICS` and `PHOTONICS`); unpaired words decide the guard and extra-words rules.
    pub alike_words: f64,
    /// Link `name-fuzzy-candidate` matches too (the strict rules still apply).
    pub accept_candidates: bool,
    /// Name matches link only if the states agree (when both sides have one, unless every
    /// recipient of that name is one UEI), neither name is the other plus extra words, and the
    /// words that differ are alike; otherwise they are recorded without a link.
    pub strict_name_links: bool,
    /// Candidates kept per award with `--candidates` and shown by `--explain`.
    pub top_k: usize,
    /// Blocking keys shared by more recipients than this are too common to use.
    pub max_block_size: usize,
    /// Recipients scored per award, the best-ranked by shared blocking keys.
    pub max_candidates: usize,
    /// Awards matched per parallel chunk.
    pub chunk_size: usize,
    pub recipient_columns: RecipientColumns,
    pub name_rules: NameRules,
    pub gates: EnrichGates,
}

/// Header spellings accepted for each recipients column (compared case-insensitively).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientColumns {
    pub recipient_name: Vec<String>,
    pub recipient_uei: Vec<String>,
    pub recipient_duns: Vec<String>,
    pub parent_name: Vec<String>,
    pub parent_uei: Vec<String>,
    pub city: Vec<String>,
    pub state: Vec<String>,
    pub zip: Vec<String>,
}

/// Company-name normalisation rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRules {
    /// Legal forms and their spellings, dropped from the end of names (`INC: [INC,
    /// INCORPORATED]`); spellings of one form are the same form when candidates are compared.
    pub legal_forms: BTreeMap<String, Vec<String>>,
    /// Articles to drop at either end (`THE ACME`, `ACME, THE`).
    pub leading_articles: Vec<String>,
    /// Words spelled more than one way, read as one (`INTL` → `INTERNATIONAL`).
    pub abbreviations: BTreeMap<String, String>,
    /// Read plural words as singular (`CERAMICS` = `CERAMIC`, `TECHNOLOGIES` = `TECHNOLOGY`).
    pub fold_plurals: bool,
    /// Names exactly this long were cut by the source system (FPDS keeps 30 characters): a
    /// last word that begins a legal suffix (`…TECHNOLOGY, I`) is dropped. Null: never.
    pub truncated_length: Option<usize>,
}

/// Quality gates of the `enrich` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichGates {
    /// ERROR gate: linked awards / all awards.
    pub min_match_rate: f64,
    /// ERROR gate: null rate of each match column must stay below this.
    pub max_null_rate: f64,
    /// ERROR gate: allowed drop of the match rate against the previous run, in rate units.
    pub max_match_rate_drop: f64,
}

/// Settings of `sbir classify-cet` (the scorer knobs live in `cet.classification`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CetSettings {
    pub taxonomy: PathBuf,
    pub classification: PathBuf,
    /// The trained model artifact (`CET_MODEL_PATH` overrides it).
    pub model_path: PathBuf,
    /// Awards to classify; null means the enrich output when present, else the ingest output.
    pub awards: Option<PathBuf>,
    pub output_name: String,
    pub profiles_name: String,
    pub taxonomy_name: String,
    /// Classify a deterministic sample of this many awards (null: all).
    pub sample_size: Option<u64>,
    pub sample_seed: u64,
    /// Awards classified per parallel batch.
    pub batch_size: usize,
    pub gates: CetGates,
    pub drift: CetDriftSettings,
}

/// Quality gates of `classify-cet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CetGates {
    /// ERROR gate: awards scored (with a title or abstract) / awards.
    pub min_success_rate: f64,
    /// WARNING gate: awards given a CET area / awards ("no area" is an answer).
    pub min_classified_share: f64,
    /// WARNING gate: High-band awards / classified awards.
    pub min_high_conf_rate: f64,
    /// WARNING gate: classified awards with at least one evidence excerpt / classified awards.
    pub min_evidence_coverage: f64,
}

/// Thresholds of the drift and portfolio alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CetDriftSettings {
    /// PSI at or above which a distribution shift is a warning / an error.
    pub psi_warning: f64,
    pub psi_error: f64,
    /// Absolute change of an area's share of awards that raises a portfolio alert.
    pub share_change: f64,
}

/// Settings of `sbir embed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSettings {
    pub dir_name: String,
    /// Collection name → path (kind from the path: Parquet, JSONL or a folder).
    pub collections: BTreeMap<String, PathBuf>,
    /// Hugging Face id of the dense encoder.
    pub model: String,
    /// A folder holding the model files; searched first.
    pub model_dir: Option<PathBuf>,
    /// Where `prepare-assets` puts model folders.
    pub bundle_dir: PathBuf,
    /// Download from the hub when no local copy is found (unless `hub_offline`).
    pub allow_download: bool,
    /// The Hugging Face cache folder; when null, the binary uses the one huggingface_hub
    /// would (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub hf_cache: Option<PathBuf>,
    /// Never reach the hub (the binary sets it from `HF_HUB_OFFLINE`).
    pub hub_offline: bool,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    /// Padded tokens per encoder batch.
    pub batch_tokens: usize,
    pub write_npy: bool,
    pub sparse: SparseSettings,
    pub rerank: RerankSettings,
}

/// The sparse stage of `sbir embed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseSettings {
    pub enabled: bool,
    /// A SPLADE model id or folder; `None` means BM25 over the dense model's vocabulary.
    pub splade_model: Option<String>,
    pub bm25_k1: f64,
    pub bm25_b: f64,
}

/// The rerank stage of `sbir embed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankSettings {
    pub enabled: bool,
    /// Hugging Face id of the cross-encoder.
    pub model: String,
    pub model_dir: Option<PathBuf>,
    pub top_n: usize,
    pub rrf_k: f64,
    pub batch_cap: usize,
}

/// Settings of `sbir load-neo4j`. The password is never a setting: it comes from
/// `NEO4J_PASSWORD` or `password_file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jSettings {
    /// Bolt URI (`NEO4J_URI` overrides); null means no server: write the import bundle.
    pub uri: Option<String>,
    pub user: String,
    pub database: String,
    pub password_file: Option<PathBuf>,
    pub batch_size: usize,
    /// Batches in flight at once.
    pub concurrency: usize,
    pub create_constraints: bool,
    pub create_indexes: bool,
    /// Seconds to wait for the server to answer a new connection.
    pub connect_timeout_s: u64,
    /// Seconds to wait for each reply (a batch's result); one that does not come in time
    /// counts as a dropped connection: retried, then recorded as failed.
    pub receive_timeout_s: u64,
    /// Retries of a batch after a connection error (transient server errors are retried by
    /// the driver), with exponential backoff from backoff_ms, capped at max_backoff_ms.
    pub max_retries: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Stop at the first batch that fails for good (otherwise record it and go on).
    pub fail_fast: bool,
    /// Per-step checks, failed batches and resume state.
    pub loaded_dir: PathBuf,
    /// Where `--export` writes the neo4j-admin import bundle by default.
    pub export_dir: PathBuf,
    pub array_delimiter: String,
    /// Property holding a Company's key (its UEI, else `name:<normalised name>`).
    pub company_key_property: String,
    pub labels: GraphLabels,
    pub rel_types: GraphRelTypes,
    /// ERROR gate: rows loaded / rows sent, per step.
    pub min_load_success_rate: f64,
}

/// Node labels of the graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphLabels {
    pub cet_area: String,
    pub award: String,
    pub company: String,
}

/// Relationship types of the graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRelTypes {
    pub awarded: String,
    pub applicable_to: String,
    pub specializes_in: String,
}

/// Defaults of `sbir sample-data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleDataSettings {
    pub awards: u64,
    pub recipients: u64,
    pub seed: u64,
    pub out_dir: PathBuf,
}

/// Defaults of `sbir benchmark`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkSettings {
    /// Where `benchmark_<timestamp>.json` and `history.ndjson` go.
    pub dir: PathBuf,
    /// The baseline compared against (and written by `--save-as-baseline`).
    pub baseline: PathBuf,
    pub synthetic_awards: u64,
    pub synthetic_recipients: u64,
    pub seed: u64,
    pub repeat: usize,
    /// Award texts the embed stage encodes (the encoder is by far the slowest stage).
    pub embed_texts: usize,
    pub thresholds: BenchThresholds,
}

/// When a change against the baseline is a warning or a failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchThresholds {
    /// Median duration increase, in percent.
    pub time_warn_pct: f64,
    pub time_fail_pct: f64,
    /// Peak RSS increase, in percent.
    pub memory_warn_pct: f64,
    pub memory_fail_pct: f64,
    /// Enrich match-rate drop, in percentage points.
    pub match_rate_fail_points: f64,
    /// Classification macro-F1 drop, in points (F1 × 100).
    pub macro_f1_fail_points: f64,
}

/// A Cypher label, relationship type or property name safe to splice into a statement.
pub fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && s.len() <= 64
}

/// Everything settings are built from, gathered by the caller.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// Folder holding `base.yaml` and `envs/<env>.yaml`; skipped when it does not exist.
    pub config_dir: Option<PathBuf>,
    /// Environment layer name (`--env`, `SBIR_ENV`).
    pub env_name: Option<String>,
    /// Process environment variables; only `SBIR_ETL__*` ones are used.
    pub env_vars: Vec<(String, String)>,
    /// Command-line overrides: dotted key, value, and the flag that set it.
    pub flags: Vec<FlagOverride>,
}

/// One setting given on the command line.
#[derive(Debug, Clone)]
pub struct FlagOverride {
    pub key: String,
    pub value: Value,
    pub flag: String,
}

impl FlagOverride {
    /// An override of `key` (dotted) by command-line `flag`.
    pub fn new(key: &str, value: impl Into<Value>, flag: &str) -> Self {
        Self {
            key: key.to_string(),
            value: value.into(),
            flag: flag.to_string(),
        }
    }

    /// An override of `key` by the path `flag` names, when the flag was given.
    pub fn path(key: &str, value: Option<&Path>, flag: &str) -> Option<Self> {
        value.map(|p| Self::new(key, p.display().to_string(), flag))
    }
}

/// Validated settings plus where every non-default value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    /// Dotted key → origin, for each value not from the built-in defaults.
    pub origins: BTreeMap<String, String>,
}

/// Maps `SBIR_ETL__CET__SAMPLE_SIZE` to `["cet", "sample_size"]`; `None` for other variables.
pub fn env_key_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts)
}

/// Parses an environment value the way YAML would read it (`50` is a number, `true` a bool).
/// A value from an environment variable, typed as YAML would type it (`false`, `32`, text).
pub fn env_value(raw: &str) -> Value {
    serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn parse_yaml(text: &str, origin: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::Parse {
            origin: origin.to_string(),
            message: "expected a mapping of sections at the top level".into(),
        }),
    }
}

/// Deep-merges `layer` into `base`, recording `origin` for every leaf it sets.
fn merge(
    base: &mut Value,
    layer: Value,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) => {
            for (k, v) in layer {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let slot = base.entry(k).or_insert(Value::Null);
                if v.is_object() && slot.is_object() {
                    merge(slot, v, &key, origin, origins);
                } else {
                    *slot = v;
                    origins.insert(key, origin.to_string());
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

/// Builds a nested object `{a: {b: value}}` from a dotted or split key.
fn nested(path: &[String], value: Value) -> Value {
    path.iter().rev().fold(value, |acc, k| {
        let mut m = Map::new();
        m.insert(k.clone(), acc);
        Value::Object(m)
    })
}

fn read_layer(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml(&text, &path.display().to_string())
}

/// Finds the origin recorded for `key` or the nearest enclosing/contained key.
fn origin_of(origins: &BTreeMap<String, String>, key: &str) -> String {
    if let Some(o) = origins.get(key) {
        return o.clone();
    }
    origins
        .iter()
        .find(|(k, _)| k.starts_with(&format!("{key}.")) || key.starts_with(&format!("{k}.")))
        .map(|(_, o)| o.clone())
        .unwrap_or_else(|| "built-in defaults".to_string())
}

/// Loads, merges and validates settings from every source.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigError> {
    let mut origins = BTreeMap::new();
    let mut merged = parse_yaml(BASE_YAML, "built-in defaults")?;
    let mut scratch = BTreeMap::new();

    if let Some(dir) = &sources.config_dir {
        let base = dir.join("base.yaml");
        if base.is_file() {
            // Values equal to the defaults are not overrides; only record real changes.
            let layer = read_layer(&base)?;
            let before = merged.clone();
            merge(
                &mut merged,
                layer,
                "",
                &base.display().to_string(),
                &mut scratch,
            );
            for (k, o) in scratch {
                if lookup(&before, &k) != lookup(&merged, &k) {
                    origins.insert(k, o);
                }
            }
        }
    }
    if let Some(env) = &sources.env_name {
        let path = sources
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"))
            .join("envs")
            .join(format!("{env}.yaml"));
        if !path.is_file() {
            return Err(ConfigError::MissingEnvFile {
                env: env.clone(),
                path,
            });
        }
        let layer = read_layer(&path)?;
        merge(
            &mut merged,
            layer,
            "",
            &path.display().to_string(),
            &mut origins,
        );
    }
    let mut env_vars: Vec<_> = sources
        .env_vars
        .iter()
        .filter_map(|(k, v)| env_key_path(k).map(|p| (k, p, v)))
        .collect();
    env_vars.sort();
    for (name, path, raw) in env_vars {
        let origin = format!("environment variable {name}");
        merge(
            &mut merged,
            nested(&path, env_value(raw)),
            "",
            &origin,
            &mut origins,
        );
    }
    for f in &sources.flags {
        let path: Vec<String> = f.key.split('.').map(str::to_string).collect();
        let origin = format!("command-line flag {}", f.flag);
        merge(
            &mut merged,
            nested(&path, f.value.clone()),
            "",
            &origin,
            &mut origins,
        );
    }

    let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        let (key, message) = explain_serde_error(&path, &e.inner().to_string());
        ConfigError::Invalid {
            origin: origin_of(&origins, &key),
            key,
            message,
        }
    })?;
    let loaded = Loaded { settings, origins };
    loaded.validate()?;
    Ok(loaded)
}

/// The key a serde error is about and a message in the settings' words: an unknown key is
/// named in full (serde reports it at its parent, or at itself) with the closest known key;
/// Rust type names become what a person types (`usize` → "a whole number").
fn explain_serde_error(path: &str, message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let key = if path == "." || path.is_empty() {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.to_string()
        } else {
            format!("{path}.{field}")
        };
        let known: Vec<&str> = rest
            .split_once("expected ")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let hint = closest(field, &known)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        let list = known.join(", ");
        return (
            key,
            format!("unknown setting `{field}`{hint} (known here: {list})"),
        );
    }
    let mut message = message.to_string();
    for (rust, words) in [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected i64", "expected a whole number (may be negative)"),
        ("expected i32", "expected a whole number (may be negative)"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        if let Some(i) = message.find(rust)
            && !message[i + rust.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            message.replace_range(i..i + rust.len(), words);
        }
    }
    (path.to_string(), message)
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo (at
/// most a third of the word's letters differ).
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let distance = |c: &str| rapidfuzz::distance::levenshtein::distance(word.chars(), c.chars());
    candidates
        .iter()
        .map(|c| (distance(c), *c))
        .filter(|(d, _)| *d > 0 && *d <= word.chars().count().div_ceil(3).max(1))
        .min()
        .map(|(_, c)| c)
}

fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |v, k| v.get(k))
}

impl Loaded {
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            origin: origin_of(&self.origins, key),
            message: message.into(),
        }
    }

    /// Range and path checks serde cannot express.
    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        if !(-7..=22).contains(&s.output.zstd_level) {
            return Err(self.invalid("output.zstd_level", "must be between -7 and 22"));
        }
        let e = &s.enrich;
        if !(0.0..=100.0).contains(&e.low_threshold)
            || !(0.0..=100.0).contains(&e.high_threshold)
            || e.low_threshold > e.high_threshold
        {
            return Err(self.invalid(
                "enrich.low_threshold",
                "thresholds must lie in 0..=100 with low_threshold <= high_threshold",
            ));
        }
        for (key, v) in [
            ("enrich.top_k", e.top_k),
            ("enrich.max_block_size", e.max_block_size),
            ("enrich.max_candidates", e.max_candidates),
            ("enrich.chunk_size", e.chunk_size),
        ] {
            if v == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        for (key, v) in [
            ("enrich.alike_words", e.alike_words),
            ("enrich.gates.min_match_rate", e.gates.min_match_rate),
            ("enrich.gates.max_null_rate", e.gates.max_null_rate),
            (
                "enrich.gates.max_match_rate_drop",
                e.gates.max_match_rate_drop,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(self.invalid(key, "must be between 0 and 1"));
            }
        }
        let c = &s.cet;
        for (key, v) in [
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
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(self.invalid(key, "must be between 0 and 1"));
            }
        }
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
        for (key, name) in [
            ("cet.output_name", &c.output_name),
            ("cet.profiles_name", &c.profiles_name),
            ("cet.taxonomy_name", &c.taxonomy_name),
        ] {
            if name.is_empty() || name.contains(['/', '\\']) {
                return Err(self.invalid(key, "must be a plain file name stem"));
            }
        }
        let n = &s.neo4j;
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
        if !(0.0..=1.0).contains(&n.min_load_success_rate) {
            return Err(self.invalid("neo4j.min_load_success_rate", "must be between 0 and 1"));
        }
        if n.array_delimiter.chars().count() != 1 || n.array_delimiter == "," {
            return Err(self.invalid(
                "neo4j.array_delimiter",
                "must be one character other than ','",
            ));
        }
        let e = &s.embed;
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
        if e.rerank.top_n == 0 || e.rerank.batch_cap == 0 {
            return Err(self.invalid(
                "embed.rerank.top_n",
                "top_n and batch_cap must be at least 1",
            ));
        }
        if e.dir_name.is_empty() || e.dir_name.contains(['/', '\\']) {
            return Err(self.invalid("embed.dir_name", "must be a plain folder name"));
        }
        if s.output.row_group_size == 0 {
            return Err(self.invalid("output.row_group_size", "must be at least 1"));
        }
        if s.ingest.chunk_size == 0 {
            return Err(self.invalid("ingest.chunk_size", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&s.ingest.gates.max_reject_rate) {
            return Err(self.invalid("ingest.gates.max_reject_rate", "must be between 0 and 1"));
        }
        if let Some(max) = s.ingest.max_award_year
            && max < s.ingest.min_award_year
        {
            return Err(self.invalid(
                "ingest.max_award_year",
                format!(
                    "{max} is before ingest.min_award_year {}",
                    s.ingest.min_award_year
                ),
            ));
        }
        if s.ingest.output_name.is_empty() || s.ingest.output_name.contains(['/', '\\']) {
            return Err(self.invalid("ingest.output_name", "must be a plain file name stem"));
        }
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

    /// The effective settings as JSON with secrets masked.
    pub fn masked(&self) -> Value {
        let mut v = serde_json::to_value(&self.settings).expect("settings serialise");
        mask_secrets(&mut v);
        v
    }

    /// Short, stable digest of the effective settings (secrets masked), for checks files.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(&self.masked()).expect("settings serialise");
        hex_prefix(&Sha256::digest(bytes), 16)
    }

    /// YAML of the effective settings, followed by a comment listing every override's origin.
    pub fn render_yaml(&self) -> String {
        let mut out = serde_saphyr::to_string(&self.masked()).expect("settings serialise");
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if self.origins.is_empty() {
            out.push_str("# every value is a built-in default\n");
        } else {
            out.push_str("# overridden values:\n");
            for (k, o) in &self.origins {
                let _ = writeln!(out, "#   {k}: {o}");
            }
        }
        out
    }
}

/// Replaces the value of any key that names a secret (`password`, `token`, `secret` as a word
/// of the key: `api_token`, not `chunk_tokens`) with `****`.
pub fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                let secret = k
                    .split(['_', '-', '.'])
                    .any(|w| ["password", "token", "secret"].contains(&w));
                if secret && !v.is_null() {
                    *v = Value::String("****".into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Lower-case hex of the first `n` hex digits of a digest.
pub fn hex_prefix(bytes: &[u8], n: usize) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s.truncate(n);
    s
}

/// Appends `bytes` as lower-case hex (a table lookup per digit: ids are made per row).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_keys() {
        let table: &[(&str, Option<&[&str]>)] = &[
            ("SBIR_ETL__CET__SAMPLE_SIZE", Some(&["cet", "sample_size"])),
            (
                "SBIR_ETL__INGEST__GATES__MAX_REJECT_RATE",
                Some(&["ingest", "gates", "max_reject_rate"]),
            ),
            ("SBIR_ETL__OUTPUT__FORMAT", Some(&["output", "format"])),
            ("SBIR_ETL_OUTPUT__FORMAT", None),
            ("SBIR_ETL__", None),
            ("SBIR_ETL__A____B", None),
            ("PATH", None),
        ];
        for (name, want) in table {
            let got = env_key_path(name);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    fn sources(env: &[(&str, &str)]) -> Sources {
        Sources {
            env_vars: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn env_override_wins_and_is_recorded() {
        let loaded = load(&sources(&[("SBIR_ETL__INGEST__CHUNK_SIZE", "128")])).unwrap();
        assert_eq!(loaded.settings.ingest.chunk_size, 128);
        assert_eq!(
            loaded.origins["ingest.chunk_size"],
            "environment variable SBIR_ETL__INGEST__CHUNK_SIZE"
        );
    }

    #[test]
    fn flags_win_over_environment() {
        let mut s = sources(&[("SBIR_ETL__OUTPUT__FORMAT", "ndjson")]);
        s.flags
            .push(FlagOverride::new("output.format", "both", "--format"));
        let loaded = load(&s).unwrap();
        assert_eq!(loaded.settings.output.format, OutputFormat::Both);
        assert_eq!(
            loaded.origins["output.format"],
            "command-line flag --format"
        );
    }

    #[test]
    fn wrong_type_names_key_and_variable() {
        let err = load(&sources(&[("SBIR_ETL__INGEST__CHUNK_SIZE", "lots")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ingest.chunk_size"), "{msg}");
        assert!(msg.contains("SBIR_ETL__INGEST__CHUNK_SIZE"), "{msg}");
    }

    #[test]
    fn unknown_key_in_known_section_is_refused() {
        let err = load(&sources(&[("SBIR_ETL__INGEST__CHUNK_SIZ", "1")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ingest.chunk_siz"), "{msg}");
        assert!(msg.contains("SBIR_ETL__INGEST__CHUNK_SIZ"), "{msg}");
    }

    #[test]
    fn secrets_are_masked() {
        let mut v = serde_json::json!({"neo4j": {"password": "hunter22", "user": "neo4j"},
            "embed": {"hf_token": "t", "chunk_tokens": 256, "batch_tokens": 8192}});
        mask_secrets(&mut v);
        assert_eq!(v["neo4j"]["password"], "****");
        assert_eq!(v["neo4j"]["user"], "neo4j");
        assert_eq!(v["embed"]["hf_token"], "****");
        assert_eq!(v["embed"]["chunk_tokens"], 256);
        assert_eq!(v["embed"]["batch_tokens"], 8192);
    }

    #[test]
    fn serde_errors_speak_in_settings_words() {
        let (key, msg) = explain_serde_error(
            "ingest.chunk_siz",
            "unknown field `chunk_siz`, expected one of `input`, `chunk_size`, `gates`",
        );
        assert_eq!(key, "ingest.chunk_siz");
        assert!(msg.contains("did you mean `chunk_size`?"), "{msg}");
        let (key, _) = explain_serde_error("ingest", "unknown field `chunk_siz`, expected `x`");
        assert_eq!(key, "ingest.chunk_siz");
        let (_, msg) = explain_serde_error(
            "ingest.chunk_size",
            "invalid type: string \"abc\", expected usize",
        );
        assert_eq!(msg, "invalid type: string \"abc\", expected a whole number");
        assert_eq!(closest("ingset", &["ingest", "enrich"]), Some("ingest"));
        assert_eq!(closest("zzz", &["ingest", "enrich"]), None);
    }
}
