//! Reads the layers (defaults, YAML files, environment, flags), merges them, records where
//! every value came from and deserialises the result into [`Settings`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{BASE_YAML, ConfigError, ENV_PREFIX, Settings};
use crate::hex::hex_prefix;

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
pub(super) fn origin_of(origins: &BTreeMap<String, String>, key: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputFormat;

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
