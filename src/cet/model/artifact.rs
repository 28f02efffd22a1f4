//! The model artifact: one JSON file holding everything scoring needs plus a SHA-256 checksum
//! of its content. Loading verifies the checksum, the format version and the taxonomy version;
//! the default path falls back to the shipped artifact compiled into the binary.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::CetError;
use super::super::params::{FieldWeights, ModelParams, RulesParams};

/// Artifact format identifier and version; loading refuses anything else.
pub const FORMAT: &str = "sbir-cet-classifier";
pub const FORMAT_VERSION: u32 = 2;

/// Default artifact path (`cet.model_path`; `CET_MODEL_PATH` overrides it in the binary).
pub const DEFAULT_PATH: &str = "artifacts/models/cet_classifier_v1.json";

/// The shipped artifact (`classify-cet train` on real awards, see its metadata file).
const BUILTIN: &[u8] = include_bytes!("../../../artifacts/models/cet_classifier_v1.json");

/// Everything the artifact stores; the checksum covers exactly this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelBody {
    pub format: String,
    pub format_version: u32,
    pub taxonomy_version: String,
    pub created_at: String,
    pub tool_version: String,
    /// Where the labels came from.
    pub trained_on: TrainingInfo,
    pub params: ModelParams,
    pub field_weights: FieldWeights,
    /// Phrase counting of the phrase features (as the rules scorer counts).
    pub rules: RulesParams,
    pub stop_words: Vec<String>,
    /// One per class, in weight-column order: taxonomy ids, then `none` (no area).
    pub classes: Vec<String>,
    /// TF-IDF feature texts ("word" or "word word"), normalised as the tokenizer does.
    pub features: Vec<String>,
    /// IDF per TF-IDF feature, keyword boost included.
    #[serde(with = "f32_base64")]
    pub idf: Vec<f32>,
    /// Word vectors (distilled from a sentence encoder), when the model was trained with them.
    pub word_vectors: Option<StoredVectors>,
    /// Row-major (TF-IDF features, vector dimensions, 3 × areas phrase features) × classes.
    #[serde(with = "f32_base64")]
    pub weights: Vec<f32>,
    #[serde(with = "f32_base64")]
    pub intercepts: Vec<f32>,
}

/// Word vectors as stored: words (normalised), their IDF, and one int8 row per word with its
/// scale (value = byte × scale), which keeps the file small and loses < 0.5 % per value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredVectors {
    /// Encoder the vectors come from (e.g. sentence-transformers/all-MiniLM-L6-v2).
    pub encoder: String,
    pub dims: usize,
    pub words: Vec<String>,
    #[serde(with = "f32_base64")]
    pub idf: Vec<f32>,
    #[serde(with = "f32_base64")]
    pub scales: Vec<f32>,
    #[serde(with = "i8_base64")]
    pub values: Vec<i8>,
}

/// What a model was trained on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub source: String,
    pub documents: usize,
    /// Training documents per class (same order as `classes`).
    pub per_class: Vec<usize>,
    /// Corpus the word vectors' vocabulary and IDF were read from.
    pub vector_corpus: Option<String>,
    pub iterations: usize,
    pub final_loss: f64,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    checksum: String,
    model: ModelBody,
}

/// Float arrays stored as base64 of little-endian `f32` bytes: exact (decimal text would round
/// on the way back, breaking the checksum) and compact. NumPy reads them with
/// `np.frombuffer(base64.b64decode(s), "<f4")`.
mod f32_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let bytes = STANDARD
            .decode(String::deserialize(d)?)
            .map_err(D::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(
                "float array length is not a multiple of 4 bytes",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Byte arrays stored as base64 (`np.frombuffer(base64.b64decode(s), "i1")`).
mod i8_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[i8], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().map(|&x| x as u8).collect();
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i8>, D::Error> {
        let bytes = STANDARD
            .decode(String::deserialize(d)?)
            .map_err(D::Error::custom)?;
        Ok(bytes.into_iter().map(|b| b as i8).collect())
    }
}

/// SHA-256 of the body's JSON, as 32 hex characters.
pub fn checksum(body: &ModelBody) -> Result<String, CetError> {
    let bytes = serde_json::to_vec(body).map_err(|e| CetError::Invalid(e.to_string()))?;
    Ok(crate::hex::hex_prefix(&Sha256::digest(&bytes), 32))
}

/// Writes the artifact atomically; returns its checksum.
pub fn save(body: &ModelBody, path: &Path) -> Result<String, CetError> {
    let checksum = checksum(body)?;
    let file = ModelFile {
        checksum: checksum.clone(),
        model: body.clone(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| CetError::Invalid(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_err(path, e))?;
    }
    crate::io::atomic::write_file(path, &bytes).map_err(|e| write_err(path, e))?;
    Ok(checksum)
}

/// Reads an artifact and verifies its checksum; returns the body and the checksum. The
/// default path, when no file is there, gives the shipped model compiled into the binary (so
/// a binary copied alone into a notebook or scratch folder classifies with it).
pub fn load(path: &Path) -> Result<(ModelBody, String), CetError> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == Path::new(DEFAULT_PATH) => {
            Ok(BUILTIN.to_vec())
        }
        r => r,
    }
    .map_err(|e| CetError::ModelMissing {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file: ModelFile = serde_json::from_slice(&bytes)
        .map_err(|e| CetError::ModelInvalid(format!("{}: {e}", path.display())))?;
    let actual = checksum(&file.model)?;
    if actual != file.checksum {
        return Err(CetError::ModelInvalid(format!(
            "{}: checksum mismatch (file says {}, content hashes to {actual})",
            path.display(),
            file.checksum
        )));
    }
    Ok((file.model, file.checksum))
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> CetError {
    CetError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
