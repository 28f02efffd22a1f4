//! The offline import bundle: `neo4j-admin database import full` CSV files (header
//! conventions `:ID(space)`, `:LABEL`, `:START_ID`, `:END_ID`, `:TYPE`, typed columns, arrays
//! joined by the configured delimiter), a `README.txt` with the exact command, and a
//! `load.cypher` of the same idempotent statements the Bolt loader sends, for `cypher-shell`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cypher::Cypher;
use super::{GraphData, Rows, Step};
use crate::config::Neo4jSettings;
use crate::io::IoError;
use crate::io::atomic::AtomicWriter;

/// One CSV column: its header and where its value sits in a row.
struct Column {
    header: String,
    /// A top-level key of the row (`from`, `cet_id`…), or None: `props.<header name>`.
    top: Option<&'static str>,
}

/// A column holding a top-level row key (node id, relationship end).
fn top(header: String, key: &'static str) -> Column {
    Column {
        header,
        top: Some(key),
    }
}

/// A column holding `props.<name>`, the name being the header before any `:type`.
fn prop(header: &str) -> Column {
    Column {
        header: header.to_string(),
        top: None,
    }
}

impl Column {
    fn value<'a>(&self, row: &'a Value) -> &'a Value {
        match self.top {
            Some(k) => &row[k],
            None => &row["props"][self.header.split(':').next().unwrap_or_default()],
        }
    }
}

/// One bundle CSV: file name, columns, the constant `:LABEL`/`:TYPE` column, and its rows.
type CsvFile<'a> = (&'static str, Vec<Column>, (&'static str, &'a str), &'a Rows);

/// A CSV cell for neo4j-admin: empty for null, arrays joined by `delim`.
fn cell(v: &Value, delim: &str) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| cell(i, delim))
            .collect::<Vec<_>>()
            .join(delim),
        other => other.to_string(),
    }
}

fn write_csv(
    path: &Path,
    columns: &[Column],
    constant: (&str, &str),
    rows: &Rows,
    delim: &str,
) -> Result<u64, IoError> {
    let e = |x: &dyn std::fmt::Display| IoError::write(path, x);
    let out = AtomicWriter::create(path).map_err(|x| e(&x))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
    let mut header: Vec<&str> = columns.iter().map(|c| c.header.as_str()).collect();
    header.push(constant.0);
    w.write_record(&header).map_err(|x| e(&x))?;
    for i in 0..rows.len() {
        let r = rows.get(i);
        let mut rec: Vec<String> = columns.iter().map(|c| cell(c.value(&r), delim)).collect();
        rec.push(constant.1.to_string());
        w.write_record(&rec).map_err(|x| e(&x))?;
    }
    let inner = w.into_inner().map_err(|x| e(&x))?;
    let out = inner.into_inner().map_err(|x| e(&x.error()))?;
    out.commit().map_err(|x| e(&x))?;
    Ok(rows.len() as u64)
}

/// Writes the bundle into `dir`; returns the files written and the rows per file.
pub fn write_bundle(
    dir: &Path,
    g: &GraphData,
    s: &Neo4jSettings,
) -> Result<Vec<(PathBuf, u64)>, super::GraphError> {
    let c = Cypher::new(s)?;
    std::fs::create_dir_all(dir).map_err(|e| IoError::write(dir, e))?;
    let d = s.array_delimiter.as_str();
    let (l, r) = (&s.labels, &s.rel_types);
    let key = s.company_key_property.as_str();
    let files: Vec<CsvFile> = vec![
        (
            "nodes_cetarea.csv",
            vec![
                top(format!("cet_id:ID({})", l.cet_area), "cet_id"),
                prop("name"),
                prop("definition"),
                prop("keywords:string[]"),
                prop("parent_cet_id"),
                prop("taxonomy_version"),
            ],
            (":LABEL", &l.cet_area),
            &g.cet_areas,
        ),
        (
            "nodes_award.csv",
            vec![
                top(format!("award_id:ID({})", l.award), "award_id"),
                prop("title"),
                prop("agency"),
                prop("branch"),
                prop("phase"),
                prop("program"),
                prop("award_year:int"),
                prop("award_amount:float"),
                prop("topic_code"),
                prop("cet_primary_id"),
                prop("cet_primary_score:float"),
                prop("cet_band"),
                prop("cet_supporting_ids:string[]"),
                prop("cet_scorer"),
                prop("cet_model_version"),
            ],
            (":LABEL", &l.award),
            &g.awards,
        ),
        (
            "nodes_company.csv",
            vec![
                top(format!("{key}:ID({})", l.company), "company_key"),
                prop("uei"),
                prop("duns"),
                prop("name"),
                prop("normalized_name"),
                prop("state"),
                prop("city"),
                prop("usaspending_recipient_name"),
                prop("cet_dominant_id"),
                prop("cet_specialization_score:float"),
                prop("award_count:int"),
                prop("total_award_amount:float"),
            ],
            (":LABEL", &l.company),
            &g.companies,
        ),
        (
            "rels_awarded.csv",
            vec![
                top(format!(":START_ID({})", l.company), "from"),
                top(format!(":END_ID({})", l.award), "to"),
            ],
            (":TYPE", &r.awarded),
            &g.awarded,
        ),
        (
            "rels_applicable_to.csv",
            vec![
                top(format!(":START_ID({})", l.award), "from"),
                top(format!(":END_ID({})", l.cet_area), "to"),
                prop("primary:boolean"),
                prop("score:float"),
                prop("band"),
                prop("rank:int"),
            ],
            (":TYPE", &r.applicable_to),
            &g.applicable,
        ),
        (
            "rels_specializes_in.csv",
            vec![
                top(format!(":START_ID({})", l.company), "from"),
                top(format!(":END_ID({})", l.cet_area), "to"),
                prop("primary:boolean"),
                prop("score:float"),
                prop("specialization_score:float"),
                prop("award_share:float"),
                prop("dollar_share:float"),
            ],
            (":TYPE", &r.specializes_in),
            &g.specializes,
        ),
    ];
    // The CSVs and load.cypher are written in parallel.
    let cypher_path = dir.join("load.cypher");
    let (csvs, statements) = rayon::join(
        || -> Result<Vec<(PathBuf, u64)>, IoError> {
            files
                .iter()
                .map(|(name, columns, constant, rows)| {
                    let path = dir.join(name);
                    write_csv(&path, columns, *constant, rows, d).map(|n| (path, n))
                })
                .collect()
        },
        || write_load_cypher(&cypher_path, g, &c, s.batch_size),
    );
    let mut written = csvs?;
    let statements = statements?;

    let nodes: Vec<String> = files
        .iter()
        .filter(|f| f.0.starts_with("nodes_"))
        .map(|f| format!("  --nodes={} \\\n", f.0))
        .collect();
    let rels: Vec<String> = files
        .iter()
        .filter(|f| f.0.starts_with("rels_"))
        .map(|f| format!("  --relationships={} \\\n", f.0))
        .collect();
    let readme = format!(
        "CET graph import bundle written by sbir {version}.\n\n\
         Into a new (or replaced) database, from this folder, with Neo4j 5 stopped:\n\n\
         neo4j-admin database import full \\\n{}{}  --array-delimiter='{d}' --overwrite-destination=true {db}\n\n\
         Then start Neo4j and create the constraints and indexes (the first lines of load.cypher):\n\n\
         head -n {schema} load.cypher | cypher-shell -u neo4j -p \"$NEO4J_PASSWORD\" -d {db}\n\n\
         Into an existing database instead (idempotent MERGE statements; safe to rerun):\n\n\
         cypher-shell -u neo4j -p \"$NEO4J_PASSWORD\" -d {db} -f load.cypher\n",
        nodes.concat(),
        rels.concat(),
        version = env!("CARGO_PKG_VERSION"),
        db = s.database,
        schema = c.constraints().len() + c.indexes().len(),
    );
    let readme_path = dir.join("README.txt");
    crate::io::atomic::write_file(&readme_path, readme.as_bytes())
        .map_err(|e| IoError::write(&readme_path, e))?;
    written.push((readme_path, 0));

    written.push((cypher_path, statements));
    Ok(written)
}

/// `load.cypher`: the schema statements, then per batch `:param rows => [...]` and the
/// statement, exactly as the Bolt loader sends them. Returns the statements written.
fn write_load_cypher(path: &Path, g: &GraphData, c: &Cypher, batch: usize) -> Result<u64, IoError> {
    let e = |x: &dyn std::fmt::Display| IoError::write(path, x);
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, AtomicWriter::create(path).map_err(|x| e(&x))?);
    let mut statements = 0u64;
    for stmt in c.constraints().iter().chain(&c.indexes()) {
        writeln!(out, "{stmt};").map_err(|x| e(&x))?;
        statements += 1;
    }
    for step in Step::ALL {
        for stmt in g.statements(step, c) {
            for range in stmt.rows.batches(batch) {
                out.write_all(b":param rows => [").map_err(|x| e(&x))?;
                for i in range.clone() {
                    if i > range.start {
                        out.write_all(b", ").map_err(|x| e(&x))?;
                    }
                    write_literal(&mut out, &stmt.rows.get(i)).map_err(|x| e(&x))?;
                }
                writeln!(out, "];\n{};", stmt.text).map_err(|x| e(&x))?;
                statements += 1;
            }
        }
    }
    let out = out.into_inner().map_err(|x| e(&x.error()))?;
    out.commit().map_err(|x| e(&x))?;
    Ok(statements)
}

/// Writes a JSON value as a Cypher literal (strings single-quoted with escapes).
pub fn write_literal(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Null => out.write_all(b"null"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Number(n) => write!(out, "{n}"),
        Value::String(s) => {
            out.write_all(b"'")?;
            let mut start = 0;
            for (i, ch) in s.char_indices() {
                let esc: &[u8] = match ch {
                    '\\' => b"\\\\",
                    '\'' => b"\\'",
                    '\n' => b"\\n",
                    '\r' => b"\\r",
                    '\t' => b"\\t",
                    _ => continue,
                };
                out.write_all(&s.as_bytes()[start..i])?;
                out.write_all(esc)?;
                start = i + ch.len_utf8();
            }
            out.write_all(&s.as_bytes()[start..])?;
            out.write_all(b"'")
        }
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b", ")?;
                }
                write_literal(out, item)?;
            }
            out.write_all(b"]")
        }
        Value::Object(map) => {
            out.write_all(b"{")?;
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.write_all(b", ")?;
                }
                write!(out, "{}: ", super::cypher::back_quoted(k))?;
                write_literal(out, item)?;
            }
            out.write_all(b"}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_escape_and_nest() {
        let v = json!({"a": "it's a \\ test\n", "b": [1, 2.5, null, true], "c": {"d": "x"}});
        let mut out = Vec::new();
        write_literal(&mut out, &v).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{`a`: 'it\\'s a \\\\ test\\n', `b`: [1, 2.5, null, true], `c`: {`d`: 'x'}}"
        );
    }

    #[test]
    fn cells_for_neo4j_admin() {
        assert_eq!(cell(&json!(null), ";"), "");
        assert_eq!(cell(&json!(["a", "b"]), ";"), "a;b");
        assert_eq!(cell(&json!(2.5), ";"), "2.5");
        assert_eq!(cell(&json!(true), ";"), "true");
    }
}
