//! Award texts from a CSV or NDJSON file (gzip allowed) for training and evaluation: the
//! SBIR.gov awards API shape (`title`, `abstract`, `agency` as a list), the dev-set CSV, or any
//! table with a title or an abstract. Awards need no amounts here, unlike `ingest`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::CetError;
use super::model::features::{stop_set, stop_words};
use super::model::{LabelledDoc, VectorSource, vectors};
use super::params::ModelParams;
use crate::config::EmbedSettings;
use crate::progress::Progress;

/// Names accepted for each field (case-insensitive), first match wins.
const ID: &[&str] = &["award_id", "id", "link"];
const TITLE: &[&str] = &["title", "award_title"];
const ABSTRACT: &[&str] = &["abstract", "text"];
const TOPIC: &[&str] = &["topic_code", "topic"];
const AGENCY: &[&str] = &["agency"];
const BRANCH: &[&str] = &["branch"];

/// Placeholders the SBIR.gov record uses for a missing abstract.
const EMPTY: &[&str] = &["", "n/a", "na", "none", "null", "-"];

/// Reads every award of `path` (without areas): NDJSON when the first byte opens a JSON
/// object, a JSON array (as the API's yearly files) when it opens an array, else CSV.
pub fn read_texts(path: &Path) -> Result<Vec<LabelledDoc>, CetError> {
    let (reader, _) = crate::io::input::open(path)?;
    let mut reader = std::io::BufReader::new(reader);
    let first = reader
        .fill_buf()
        .map(|b| b.iter().find(|c| !c.is_ascii_whitespace()).copied())
        .map_err(|e| read_err(path, e))?;
    match first {
        Some(b'{') => read_ndjson(path, reader),
        Some(b'[') => {
            let records: Vec<Value> = serde_json::from_reader(reader)
                .map_err(|e| bad_line(path, e.line() as u64, format!("not a JSON array: {e}")))?;
            Ok(records
                .iter()
                .enumerate()
                .map(|(i, v)| json_doc(i as u64 + 1, v))
                .collect())
        }
        _ => read_csv(path, reader),
    }
}

/// Word vectors for training: the vocabulary and IDF of the awards in `paths` (see
/// [`read_texts`]), each word's vector from the sentence encoder `embed` names (located as
/// `sbir embed` locates it).
pub fn word_vectors(
    paths: &[PathBuf],
    embed: &EmbedSettings,
    params: &ModelParams,
    progress: &dyn Progress,
) -> Result<VectorSource, CetError> {
    let mut docs = Vec::new();
    for p in paths {
        docs.extend(read_texts(p)?);
    }
    let files = crate::embed::models::lookup(embed, &embed.model, embed.model_dir.as_deref())?;
    let (encoder, chunker) = crate::embed::open_encoder(&files, &candle_core::Device::Cpu, embed)?;
    let stop = stop_set(&stop_words(params));
    progress.set_total(params.vector_words as u64);
    let mut encode = |words: &[&str]| -> Result<Vec<f32>, CetError> {
        let v = crate::embed::embed_texts(&encoder, &chunker, words)?;
        progress.inc(words.len() as u64);
        Ok(v)
    };
    let vectors = vectors::build(
        &docs,
        &stop,
        params.vector_words,
        params.vector_min_df,
        &files.id,
        &mut encode,
    )?;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(VectorSource {
        vectors,
        corpus: format!("{} ({} awards)", names.join(", "), docs.len()),
    })
}

/// Whether the CSV at `path` has a title or abstract column (a labels file that carries its
/// awards' texts).
pub fn has_text_columns(path: &Path) -> Result<bool, CetError> {
    let (reader, _) = crate::io::input::open(path)?;
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| bad_line(path, 1, e.to_string()))?;
    Ok(headers.iter().any(|h| {
        let h = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        TITLE.contains(&h.as_str()) || ABSTRACT.contains(&h.as_str())
    }))
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> CetError {
    CetError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn bad_line(path: &Path, line: u64, message: String) -> CetError {
    CetError::Labels {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// The field's text, HTML cleaned; `None` for a placeholder.
fn text(v: Option<&str>) -> Option<String> {
    let t = crate::html::cleaned(v?.trim().to_string());
    (!EMPTY.contains(&t.to_ascii_lowercase().as_str())).then_some(t)
}

fn doc(line: u64, fields: [Option<String>; 6]) -> LabelledDoc {
    let [id, title, r#abstract, topic_code, agency, branch] = fields;
    LabelledDoc {
        id: id.unwrap_or_else(|| format!("line-{line}")),
        title: title.unwrap_or_default(),
        r#abstract,
        topic_code,
        agency,
        branch,
        areas: Vec::new(),
    }
}

fn read_csv(path: &Path, reader: impl std::io::Read) -> Result<Vec<LabelledDoc>, CetError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| bad_line(path, 1, e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h == n))
    };
    let cols = [ID, TITLE, ABSTRACT, TOPIC, AGENCY, BRANCH].map(find);
    if cols[1].is_none() && cols[2].is_none() {
        return Err(bad_line(
            path,
            1,
            format!(
                "no text column: expected one of {}; the header has {}",
                TITLE
                    .iter()
                    .chain(ABSTRACT)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                headers.join(", ")
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, rec) in csv.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad_line(path, line, e.to_string()))?;
        out.push(doc(line, cols.map(|c| text(c.and_then(|c| rec.get(c))))));
    }
    Ok(out)
}

fn read_ndjson(path: &Path, reader: impl BufRead) -> Result<Vec<LabelledDoc>, CetError> {
    let mut out = Vec::new();
    for (i, l) in reader.lines().enumerate() {
        let line = i as u64 + 1;
        let l = l.map_err(|e| bad_line(path, line, e.to_string()))?;
        if l.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&l)
            .map_err(|e| bad_line(path, line, format!("not a JSON object: {e}")))?;
        out.push(json_doc(line, &v));
    }
    Ok(out)
}

/// One award of the API's JSON shape; `position` (line or record number) names it when it has
/// no id.
fn json_doc(position: u64, v: &Value) -> LabelledDoc {
    let field = |names: &[&str]| names.iter().find_map(|n| v.get(*n));
    let string = |names: &[&str]| text(field(names).and_then(Value::as_str));
    // The API lists the agency hierarchy: ["Navy", "Department of Defense", …]; its last
    // entry is the agency and the first other entry the branch.
    let (agency, branch) = match field(AGENCY) {
        Some(Value::Array(a)) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            let agency = names.last().copied();
            let branch = names.iter().find(|n| Some(**n) != agency).copied();
            (text(agency), text(branch))
        }
        Some(Value::String(s)) => (text(Some(s)), string(BRANCH)),
        _ => (None, string(BRANCH)),
    };
    doc(
        position,
        [
            string(ID),
            string(TITLE),
            string(ABSTRACT),
            string(TOPIC),
            agency,
            branch,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        (dir, p)
    }

    #[test]
    fn reads_the_api_json_shape() {
        let (_d, p) = scratch(
            "a.ndjson",
            "{\"title\": \"Spinel domes\", \"abstract\": \"N/A\", \"agency\": [\"Navy\", \"Department of Defense\", \"Department of Defense\"], \"link\": \"https://www.sbir.gov/sbirsearch/detail/1\"}\n\n{\"title\": \"T\", \"abstract\": \"An <i>abstract</i> &amp; more.\", \"agency\": [\"National Science Foundation\"]}\n",
        );
        let docs = read_texts(&p).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id, "https://www.sbir.gov/sbirsearch/detail/1");
        assert_eq!(docs[0].r#abstract, None);
        assert_eq!(docs[0].agency.as_deref(), Some("Department of Defense"));
        assert_eq!(docs[0].branch.as_deref(), Some("Navy"));
        assert_eq!(docs[1].id, "line-3");
        assert_eq!(docs[1].r#abstract.as_deref(), Some("An abstract & more."));
        assert_eq!(docs[1].branch, None);
    }

    #[test]
    fn reads_a_csv_with_any_text_column() {
        let (_d, p) = scratch(
            "a.csv",
            "award_id,title,abstract,branch\nA1,Fiber laser,\"For CO2 lidar, a laser.\",Air Force\n",
        );
        let docs = read_texts(&p).unwrap();
        assert_eq!(docs[0].id, "A1");
        assert_eq!(docs[0].title, "Fiber laser");
        assert_eq!(docs[0].branch.as_deref(), Some("Air Force"));
        let (_d, p) = scratch("b.csv", "award_id,amount\nA1,5\n");
        let e = read_texts(&p).unwrap_err().to_string();
        assert!(e.contains("line 1: no text column"), "{e}");
    }

    #[test]
    fn reads_a_json_array_of_awards() {
        let (_d, p) = scratch(
            "awards_2018.json",
            "[\n {\"title\": \"Hypersonic &amp; glide\", \"abstract\": \"Text.\", \"agency\": [\"Department of Energy\"], \"link\": \"L1\"},\n {\"title\": \"Second\"}\n]",
        );
        let docs = read_texts(&p).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id, "L1");
        assert_eq!(docs[0].title, "Hypersonic & glide");
        assert_eq!(docs[0].agency.as_deref(), Some("Department of Energy"));
        assert_eq!(docs[1].id, "line-2");
    }

    #[test]
    fn names_the_line_of_broken_json() {
        let (_d, p) = scratch("a.ndjson", "{\"title\": \"a\"}\n{\"title\": \n");
        let e = read_texts(&p).unwrap_err().to_string();
        assert!(e.contains("line 2: not a JSON object"), "{e}");
    }
}
