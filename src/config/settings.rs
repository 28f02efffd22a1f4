//! The typed settings: one struct per section of `config/base.yaml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// Arithmetic of the dense encoder's linear layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Int8,
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
    /// Padded tokens per encoder batch on the CPU.
    pub batch_tokens: usize,
    /// fp32, or int8: the linear layers as dynamic int8 products (CPU only).
    pub precision: Precision,
    /// int8 runs: chunks encoded again in fp32 to report the agreement (0: none).
    pub int8_check_chunks: usize,
    /// On a GPU, batches are sized so the encoder's activations fit under this many MB.
    pub gpu_memory_cap_mb: usize,
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
