//! Collections: the documents to embed, read one at a time from the awards Parquet, a JSONL
//! file of `{id, text, metadata}` or a folder of `.txt`/`.md` files. Unreadable documents
//! (invalid UTF-8, malformed JSON, a missing id) become rejects naming the file and line.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EmbedError;

/// How a collection is stored, decided by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Awards Parquet (`sbir ingest` output): title + abstract, id `award_id`.
    Awards,
    /// JSON lines of `{id, text, metadata}`.
    Jsonl,
    /// A folder of `.txt` and `.md` files; id is the path inside the folder.
    Folder,
}

impl Kind {
    /// The kind of the collection at `path`.
    pub fn of(path: &Path) -> Result<Self, EmbedError> {
        if path.is_dir() {
            return Ok(Self::Folder);
        }
        if !path.is_file() {
            return Err(EmbedError::input(path, "no such file or folder"));
        }
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".parquet") {
            Ok(Self::Awards)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Ok(Self::Jsonl)
        } else {
            Err(EmbedError::input(
                path,
                "expected a .parquet awards file, a .jsonl/.ndjson file or a folder",
            ))
        }
    }
}

/// One document of a collection.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Value,
    /// Markdown: headings are repeated in each chunk of their section.
    pub markdown: bool,
}

/// A document that could not be read, kept with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    pub source: String,
    pub line: Option<u64>,
    pub reason: String,
}

/// Reads every document of the collection at `path`, in a stable order, calling `doc` for
/// each and `reject` for each one that cannot be read.
pub fn read(
    path: &Path,
    kind: Kind,
    doc: &mut dyn FnMut(Document) -> Result<(), EmbedError>,
    reject: &mut dyn FnMut(Reject),
) -> Result<(), EmbedError> {
    match kind {
        Kind::Awards => read_awards(path, doc),
        Kind::Jsonl => read_jsonl(path, doc, reject),
        Kind::Folder => read_folder(path, doc, reject),
    }
}

#[derive(Deserialize)]
struct AwardDoc {
    award_id: String,
    award_title: String,
    #[serde(default)]
    r#abstract: Option<String>,
    #[serde(default)]
    agency: Option<String>,
    #[serde(default)]
    award_year: Option<i32>,
    #[serde(default)]
    company: Option<String>,
}

/// The text of an award that is embedded: the title, a blank line, the abstract.
pub fn award_text(title: &str, r#abstract: Option<&str>) -> String {
    match r#abstract.map(str::trim) {
        Some(abs) if !abs.is_empty() => format!("{}\n\n{abs}", title.trim()),
        _ => title.trim().to_string(),
    }
}

fn read_awards(
    path: &Path,
    doc: &mut dyn FnMut(Document) -> Result<(), EmbedError>,
) -> Result<(), EmbedError> {
    let batches = crate::records::read_projected::<AwardDoc>(
        path,
        &["award_id", "award_title"],
        &["abstract", "agency", "award_year", "company"],
        4096,
    )?;
    for batch in batches {
        for a in batch? {
            doc(Document {
                text: award_text(&a.award_title, a.r#abstract.as_deref()),
                id: a.award_id,
                metadata: serde_json::json!({
                    "agency": a.agency, "award_year": a.award_year, "company": a.company
                }),
                markdown: false,
            })?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonDoc {
    id: Value,
    text: String,
    #[serde(default)]
    metadata: Value,
}

fn read_jsonl(
    path: &Path,
    doc: &mut dyn FnMut(Document) -> Result<(), EmbedError>,
    reject: &mut dyn FnMut(Reject),
) -> Result<(), EmbedError> {
    let file = std::fs::File::open(path).map_err(|e| EmbedError::input(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let source = path.display().to_string();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| EmbedError::input(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let bad = |reason: String| Reject {
            source: source.clone(),
            line: Some(line),
            reason,
        };
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                reject(bad(format!(
                    "invalid UTF-8 at byte {} of the line",
                    e.valid_up_to()
                )));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let parsed: JsonDoc = match serde_json::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                reject(bad(format!(
                    "expected a JSON object with string `text` and `id`: {e}"
                )));
                continue;
            }
        };
        let id = match parsed.id {
            Value::String(s) if !s.trim().is_empty() => s,
            Value::Number(n) => n.to_string(),
            other => {
                reject(bad(format!(
                    "field `id`: expected a non-empty string or a number, got {other}"
                )));
                continue;
            }
        };
        doc(Document {
            id,
            text: parsed.text,
            metadata: parsed.metadata,
            markdown: false,
        })?;
    }
}

fn read_folder(
    root: &Path,
    doc: &mut dyn FnMut(Document) -> Result<(), EmbedError>,
    reject: &mut dyn FnMut(Reject),
) -> Result<(), EmbedError> {
    let all = crate::io::files_under(root).map_err(|e| EmbedError::input(root, e))?;
    let texts = all.into_iter().filter(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("txt") || e.eq_ignore_ascii_case("md"))
    });
    for path in texts {
        let id = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&path).map_err(|e| EmbedError::input(&path, e))?;
        match String::from_utf8(bytes) {
            Ok(text) => {
                let markdown = id.to_ascii_lowercase().ends_with(".md");
                doc(Document {
                    metadata: serde_json::json!({ "path": id }),
                    id,
                    text,
                    markdown,
                })?;
            }
            Err(e) => reject(Reject {
                source: path.display().to_string(),
                line: None,
                reason: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            }),
        }
    }
    Ok(())
}
