//! Settings: built-in defaults, layered YAML files, `SBIR_ETL__` environment overrides and
//! command-line flags, merged in that order and validated once, before any work starts.
//!
//! The library never reads the environment: the binary collects the variables and passes
//! them in [`Sources`], so tests can inject any environment they like. `settings` holds the
//! typed sections, `load` merges the layers, `validate` checks what serde cannot.

mod load;
mod settings;
mod validate;

use std::path::PathBuf;

pub use load::{
    FlagOverride, Loaded, Sources, closest, env_key_path, env_value, load, mask_secrets,
};
pub use settings::*;

/// The defaults, compiled in so the binary works from any directory.
pub const BASE_YAML: &str = include_str!("../../config/base.yaml");

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
