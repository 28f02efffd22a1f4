//! Row types that cross stage boundaries, with their Arrow schemas. A stage writes these rows
//! as record batches and the next stage reads them back with [`from_batch`]: one definition
//! serves Parquet, NDJSON and the in-memory form.

use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, RecordBatch, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::io::table::HIGH_CARDINALITY;

/// One validated, normalised SBIR/STTR award (a row of `sbir_awards.parquet`).
///
/// Dates are days since 1970-01-01 (Arrow `Date32`); optional text is `None`, never `""`.
/// The text type is generic so ingest can build rows that borrow from the CSV buffer
/// (`Award<Cow<str>>`) and serialise them without copying each field into a `String`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Award<S = String> {
    /// Stable key: see `ingest::award_id`.
    pub award_id: S,
    pub company: S,
    pub award_title: S,
    pub agency: S,
    pub branch: Option<S>,
    /// `Phase I`, `Phase II` or `Phase III`.
    pub phase: S,
    /// `SBIR` or `STTR`.
    pub program: S,
    pub agency_tracking_number: Option<S>,
    pub contract: Option<S>,
    pub proposal_award_date: Option<i32>,
    pub contract_end_date: Option<i32>,
    pub solicitation_number: Option<S>,
    pub solicitation_year: Option<i32>,
    pub solicitation_close_date: Option<i32>,
    pub proposal_receipt_date: Option<i32>,
    pub date_of_notification: Option<i32>,
    pub topic_code: Option<S>,
    pub award_year: i32,
    pub award_amount: f64,
    /// 12 upper-case alphanumerics.
    pub uei: Option<S>,
    /// 9 digits.
    pub duns: Option<S>,
    pub hubzone_owned: Option<bool>,
    pub socially_economically_disadvantaged: Option<bool>,
    pub woman_owned: Option<bool>,
    pub number_employees: Option<i32>,
    pub company_website: Option<S>,
    pub address1: Option<S>,
    pub address2: Option<S>,
    pub city: Option<S>,
    /// Two-letter postal code.
    pub state: Option<S>,
    /// The State field as the source wrote it.
    pub state_name: Option<S>,
    /// `12345` or `12345-6789`.
    pub zip: Option<S>,
    pub r#abstract: Option<S>,
    pub contact_name: Option<S>,
    pub contact_title: Option<S>,
    pub contact_phone: Option<S>,
    pub contact_email: Option<S>,
    pub pi_name: Option<S>,
    pub pi_title: Option<S>,
    pub pi_phone: Option<S>,
    pub pi_email: Option<S>,
    pub ri_name: Option<S>,
    pub ri_poc_name: Option<S>,
    pub ri_poc_phone: Option<S>,
    /// 1-based line of the source file where the row starts.
    pub source_line: u64,
    /// What was repaired, nulled or noted in the row: a code, the column and its raw value.
    pub warnings: Vec<Warning<S>>,
}

/// The columns enrich adds to the award table: the contract between enrich, which writes
/// them, and classify-cet and the graph, which read them.
pub mod enriched {
    pub const MATCH_METHOD: &str = "_usaspending_match_method";
    /// Token-set ratio (0–100), as RapidFuzz computes it, for comparison with other tools.
    pub const MATCH_SCORE: &str = "_usaspending_match_score";
    /// Weighted word score (0–100): what ranked the candidates and decided the link.
    pub const MATCH_WEIGHTED_SCORE: &str = "_usaspending_match_weighted_score";
    /// The rule that decided whether the award links (`linked`, `tie`, `state-differs`, …).
    pub const MATCH_RULE: &str = "_usaspending_match_rule";
    /// True only for a link (a candidate without a link is false).
    pub const LINKED: &str = "_usaspending_linked";
    pub const RECIPIENT_NAME: &str = "usaspending_recipient_name";
    pub const RECIPIENT_UEI: &str = "usaspending_recipient_uei";
    pub const RECIPIENT_DUNS: &str = "usaspending_recipient_duns";
    pub const RECIPIENT_PARENT_NAME: &str = "usaspending_recipient_parent_name";
    pub const RECIPIENT_PARENT_UEI: &str = "usaspending_recipient_parent_uei";
    pub const RECIPIENT_CITY: &str = "usaspending_recipient_city";
    pub const RECIPIENT_STATE: &str = "usaspending_recipient_state";
    pub const RECIPIENT_ZIP: &str = "usaspending_recipient_zip";
    /// With `--candidates`: the top candidates, linked or not.
    pub const CANDIDATES: &str = "_usaspending_candidates";
}

/// The company's UEI: the award's own, else the USAspending recipient's when enrich linked
/// one (an unlinked candidate's UEI is never used). The one identity rule of CET profiles and
/// the graph.
pub fn company_uei<'a>(
    own: Option<&'a str>,
    linked: Option<bool>,
    recipient: Option<&'a str>,
) -> Option<&'a str> {
    own.or(if linked == Some(true) {
        recipient
    } else {
        None
    })
}

/// One warning a kept award carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning<S = String> {
    /// Stable code (`invalid_date`, `duns_zero_padded`, …).
    pub code: S,
    /// The column as SBIR.gov names it; `None` for a warning about the whole row.
    pub field: Option<S>,
    /// The value as the source wrote it (or, for cleaned HTML, what was cleaned).
    pub value: Option<S>,
}

impl<S: AsRef<str>> Award<S> {
    /// The codes of the row's warnings, in order.
    pub fn warning_codes(&self) -> Vec<&str> {
        self.warnings.iter().map(|w| w.code.as_ref()).collect()
    }
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// `field` marked [`HIGH_CARDINALITY`]: mostly unique values (ids, titles, abstracts,
/// contacts, amounts, line numbers) and company identity fields (name, UEI, DUNS, website, ZIP,
/// topic code), which take thousands of distinct values in every row group.
fn mostly_unique(field: Field) -> Field {
    field.with_metadata(std::collections::HashMap::from([(
        HIGH_CARDINALITY.to_string(),
        "true".to_string(),
    )]))
}

fn unique_text(name: &str, nullable: bool) -> Field {
    mostly_unique(Field::new(name, DataType::Utf8, nullable))
}

/// Builds one column of the award table from rows (borrowed, so callers need not move them).
type BuildColumn<S> = fn(&[&Award<S>]) -> ArrayRef;

/// Strings from `get`, with the value buffer sized up front (no regrowth while appending).
fn strings<'r, T>(rows: &'r [T], get: impl Fn(&'r T) -> Option<&'r str>) -> ArrayRef {
    let bytes = rows.iter().filter_map(&get).map(str::len).sum();
    let mut b = StringBuilder::with_capacity(rows.len(), bytes);
    for r in rows {
        b.append_option(get(r));
    }
    Arc::new(b.finish())
}

fn dates<T>(rows: &[T], get: impl Fn(&T) -> Option<i32>) -> ArrayRef {
    Arc::new(Date32Array::from_iter(rows.iter().map(get)))
}

fn ints<T>(rows: &[T], get: impl Fn(&T) -> Option<i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter(rows.iter().map(get)))
}

fn flags<T>(rows: &[T], get: impl Fn(&T) -> Option<bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(rows.iter().map(get)))
}

/// The fields of a [`Warning`] in the award table.
fn warning_fields() -> Fields {
    Fields::from(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
    ])
}

fn warning_item() -> Field {
    Field::new("item", DataType::Struct(warning_fields()), false)
}

/// The `warnings` column: a list of `{code, field, value}` per row.
fn warning_lists<S: AsRef<str>>(rows: &[&Award<S>]) -> ArrayRef {
    let parts: Vec<Box<dyn ArrayBuilder>> = (0..3)
        .map(|_| Box::new(StringBuilder::new()) as Box<dyn ArrayBuilder>)
        .collect();
    let mut b = ListBuilder::new(StructBuilder::new(warning_fields(), parts))
        .with_field(Arc::new(warning_item()));
    for r in rows {
        for w in &r.warnings {
            let item = b.values();
            let text = |item: &mut StructBuilder, i: usize, v: Option<&str>| {
                item.field_builder::<StringBuilder>(i)
                    .expect("warning fields are strings")
                    .append_option(v);
            };
            text(item, 0, Some(w.code.as_ref()));
            text(item, 1, opt(&w.field));
            text(item, 2, opt(&w.value));
            item.append(true);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// The text of an optional field.
pub(crate) fn opt<S: AsRef<str>>(v: &Option<S>) -> Option<&str> {
    v.as_ref().map(AsRef::as_ref)
}

/// Every column of the award table: its field and how to build it from rows. The one place
/// that lists the columns; [`award_schema`] and [`awards_to_batch`] both come from it.
fn award_columns<S: AsRef<str>>() -> Vec<(Field, BuildColumn<S>)> {
    use DataType::{Boolean, Date32, Float64, Int32, UInt64, Utf8};
    let text = |n: &str| field(n, Utf8, true);
    let date = |n: &str| field(n, Date32, true);
    vec![
        (unique_text("award_id", false), |r| {
            strings(r, |a| Some(a.award_id.as_ref()))
        }),
        (unique_text("company", false), |r| {
            strings(r, |a| Some(a.company.as_ref()))
        }),
        (unique_text("award_title", false), |r| {
            strings(r, |a| Some(a.award_title.as_ref()))
        }),
        (field("agency", Utf8, false), |r| {
            strings(r, |a| Some(a.agency.as_ref()))
        }),
        (text("branch"), |r| strings(r, |a| opt(&a.branch))),
        (field("phase", Utf8, false), |r| {
            strings(r, |a| Some(a.phase.as_ref()))
        }),
        (field("program", Utf8, false), |r| {
            strings(r, |a| Some(a.program.as_ref()))
        }),
        (unique_text("agency_tracking_number", true), |r| {
            strings(r, |a| opt(&a.agency_tracking_number))
        }),
        (unique_text("contract", true), |r| {
            strings(r, |a| opt(&a.contract))
        }),
        (date("proposal_award_date"), |r| {
            dates(r, |a| a.proposal_award_date)
        }),
        (date("contract_end_date"), |r| {
            dates(r, |a| a.contract_end_date)
        }),
        (text("solicitation_number"), |r| {
            strings(r, |a| opt(&a.solicitation_number))
        }),
        (field("solicitation_year", Int32, true), |r| {
            ints(r, |a| a.solicitation_year)
        }),
        (date("solicitation_close_date"), |r| {
            dates(r, |a| a.solicitation_close_date)
        }),
        (date("proposal_receipt_date"), |r| {
            dates(r, |a| a.proposal_receipt_date)
        }),
        (date("date_of_notification"), |r| {
            dates(r, |a| a.date_of_notification)
        }),
        (unique_text("topic_code", true), |r| {
            strings(r, |a| opt(&a.topic_code))
        }),
        (field("award_year", Int32, false), |r| {
            ints(r, |a| Some(a.award_year))
        }),
        (mostly_unique(field("award_amount", Float64, false)), |r| {
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|a| a.award_amount),
            ))
        }),
        (unique_text("uei", true), |r| strings(r, |a| opt(&a.uei))),
        (unique_text("duns", true), |r| strings(r, |a| opt(&a.duns))),
        (field("hubzone_owned", Boolean, true), |r| {
            flags(r, |a| a.hubzone_owned)
        }),
        (
            field("socially_economically_disadvantaged", Boolean, true),
            |r| flags(r, |a| a.socially_economically_disadvantaged),
        ),
        (field("woman_owned", Boolean, true), |r| {
            flags(r, |a| a.woman_owned)
        }),
        (field("number_employees", Int32, true), |r| {
            ints(r, |a| a.number_employees)
        }),
        (unique_text("company_website", true), |r| {
            strings(r, |a| opt(&a.company_website))
        }),
        (unique_text("address1", true), |r| {
            strings(r, |a| opt(&a.address1))
        }),
        (text("address2"), |r| strings(r, |a| opt(&a.address2))),
        (text("city"), |r| strings(r, |a| opt(&a.city))),
        (text("state"), |r| strings(r, |a| opt(&a.state))),
        (text("state_name"), |r| strings(r, |a| opt(&a.state_name))),
        (unique_text("zip", true), |r| strings(r, |a| opt(&a.zip))),
        (unique_text("abstract", true), |r| {
            strings(r, |a| opt(&a.r#abstract))
        }),
        (unique_text("contact_name", true), |r| {
            strings(r, |a| opt(&a.contact_name))
        }),
        (text("contact_title"), |r| {
            strings(r, |a| opt(&a.contact_title))
        }),
        (unique_text("contact_phone", true), |r| {
            strings(r, |a| opt(&a.contact_phone))
        }),
        (unique_text("contact_email", true), |r| {
            strings(r, |a| opt(&a.contact_email))
        }),
        (unique_text("pi_name", true), |r| {
            strings(r, |a| opt(&a.pi_name))
        }),
        (text("pi_title"), |r| strings(r, |a| opt(&a.pi_title))),
        (unique_text("pi_phone", true), |r| {
            strings(r, |a| opt(&a.pi_phone))
        }),
        (unique_text("pi_email", true), |r| {
            strings(r, |a| opt(&a.pi_email))
        }),
        (text("ri_name"), |r| strings(r, |a| opt(&a.ri_name))),
        (text("ri_poc_name"), |r| strings(r, |a| opt(&a.ri_poc_name))),
        (text("ri_poc_phone"), |r| {
            strings(r, |a| opt(&a.ri_poc_phone))
        }),
        (mostly_unique(field("source_line", UInt64, false)), |r| {
            Arc::new(UInt64Array::from_iter_values(
                r.iter().map(|a| a.source_line),
            ))
        }),
        (
            field("warnings", DataType::List(Arc::new(warning_item())), false),
            warning_lists,
        ),
    ]
}

/// The Arrow schema of [`Award`], column for column.
pub fn award_schema() -> SchemaRef {
    let fields: Vec<Field> = award_columns::<String>()
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    Arc::new(Schema::new(fields))
}

/// Builds a record batch of `schema` (from [`award_schema`]) from awards, the columns in
/// parallel (rayon), each with its buffers sized up front: the hot path of ingest.
pub fn awards_to_batch<S: AsRef<str> + Sync>(
    schema: &SchemaRef,
    rows: &[&Award<S>],
) -> Result<RecordBatch, ArrowError> {
    let columns = award_columns::<S>()
        .into_par_iter()
        .map(|(_, build)| build(rows))
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
}

/// Checks that `found` (a Parquet file's schema) has each of `columns` with the type the
/// awards table gives it, naming the first column that is missing or of another type. Columns
/// the awards table does not have are not checked here.
pub fn check_award_columns<'a>(
    path: &std::path::Path,
    found: &arrow_schema::Schema,
    columns: impl IntoIterator<Item = &'a str>,
) -> Result<(), crate::io::IoError> {
    let expected = award_schema();
    for name in columns {
        let Ok(want) = expected.field_with_name(name) else {
            continue;
        };
        let Ok(got) = found.field_with_name(name) else {
            return Err(crate::io::IoError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
            });
        };
        if !got.data_type().equals_datatype(want.data_type()) {
            return Err(crate::io::IoError::ColumnType {
                path: path.to_path_buf(),
                column: name.to_string(),
                found: got.data_type().to_string(),
                expected: want.data_type().to_string(),
            });
        }
    }
    Ok(())
}

/// Opens an awards Parquet file for reading in batches, after checking it has every award
/// column with its type.
pub fn open_awards(
    path: &std::path::Path,
    batch_size: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, crate::io::IoError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let err = |e: &dyn std::fmt::Display| crate::io::IoError::read(path, e);
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let names: Vec<String> = award_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    check_award_columns(path, builder.schema(), names.iter().map(String::as_str))?;
    builder
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| err(&e))
}

/// The row count of a Parquet file, from its footer (for progress totals).
pub fn parquet_rows(path: &std::path::Path) -> Result<u64, crate::io::IoError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let err = |e: &dyn std::fmt::Display| crate::io::IoError::read(path, e);
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| err(&e))?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// Reads every award of a `sbir_awards.parquet` file.
pub fn read_awards(path: &std::path::Path) -> Result<Vec<Award>, crate::io::IoError> {
    let err = |e: &dyn std::fmt::Display| crate::io::IoError::read(path, e);
    let reader = open_awards(path, 8192)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        out.extend(from_batch::<Award>(&batch).map_err(|e| err(&e))?);
    }
    Ok(out)
}

/// Reads a Parquet file batch by batch as rows of `T`, decoding only the `required` columns
/// and those `optional` ones the file has. A missing required column is named in the error.
pub fn read_projected<T: DeserializeOwned>(
    path: &std::path::Path,
    required: &[&str],
    optional: &[&str],
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<Vec<T>, crate::io::IoError>>, crate::io::IoError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let err = |e: &dyn std::fmt::Display| crate::io::IoError::read(path, e);
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let schema = builder.schema().clone();
    let present = optional.iter().filter(|n| schema.index_of(n).is_ok());
    check_award_columns(path, &schema, required.iter().chain(present).copied())?;
    let mut wanted = Vec::new();
    for name in required.iter().chain(optional) {
        match schema.index_of(name) {
            Ok(i) => wanted.push(i),
            Err(_) if optional.contains(name) => {}
            Err(_) => {
                return Err(crate::io::IoError::MissingColumn {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                });
            }
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| err(&e))?;
    let path = path.to_path_buf();
    Ok(reader.map(move |b| {
        let e = |x: &dyn std::fmt::Display| crate::io::IoError::read(&path, x);
        let batch = b.map_err(|x| e(&x))?;
        from_batch::<T>(&batch).map_err(|x| e(&x))
    }))
}

/// Reads rows back from a record batch.
pub fn from_batch<T: DeserializeOwned>(batch: &RecordBatch) -> Result<Vec<T>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fully populated award for schema and round-trip tests.
    pub fn sample_award() -> Award {
        let s = |v: &str| Some(v.to_string());
        Award {
            award_id: "sbir-0123456789abcdef".into(),
            company: "Acme Photonics, Inc.".into(),
            award_title: "Quantum sensing".into(),
            agency: "Department of Defense".into(),
            branch: s("Air Force"),
            phase: "Phase I".into(),
            program: "SBIR".into(),
            agency_tracking_number: s("F2-1234"),
            contract: s("FA8650-20-C-1234"),
            proposal_award_date: Some(18263),
            contract_end_date: Some(18500),
            solicitation_number: s("AF201"),
            solicitation_year: Some(2020),
            solicitation_close_date: Some(18000),
            proposal_receipt_date: Some(18100),
            date_of_notification: Some(18200),
            topic_code: s("AF201-001"),
            award_year: 2020,
            award_amount: 149_999.5,
            uei: s("ABC123DEF456"),
            duns: s("012345678"),
            hubzone_owned: Some(false),
            socially_economically_disadvantaged: None,
            woman_owned: Some(true),
            number_employees: Some(12),
            company_website: s("acme.example"),
            address1: s("1 Main St"),
            address2: None,
            city: s("Boston"),
            state: s("MA"),
            state_name: s("Massachusetts"),
            zip: s("02110-1234"),
            r#abstract: s("Line one.\nLine \"two\"."),
            contact_name: s("A"),
            contact_title: s("B"),
            contact_phone: s("C"),
            contact_email: s("D"),
            pi_name: s("E"),
            pi_title: s("F"),
            pi_phone: s("G"),
            pi_email: s("H"),
            ri_name: None,
            ri_poc_name: None,
            ri_poc_phone: None,
            source_line: 2,
            warnings: vec![Warning {
                code: "duns_zero_padded".into(),
                field: s("Duns"),
                value: s("12345678"),
            }],
        }
    }

    #[test]
    fn schema_matches_struct_fields() {
        let schema = award_schema();
        let award = sample_award();
        let json = serde_json::to_value(&award).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        let mut names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort();
        names.sort();
        assert_eq!(keys_sorted, names);
    }

    #[test]
    fn company_uei_is_the_awards_own_else_a_linked_recipients() {
        assert_eq!(company_uei(Some("A"), Some(true), Some("B")), Some("A"));
        assert_eq!(company_uei(None, Some(true), Some("B")), Some("B"));
        assert_eq!(company_uei(None, Some(false), Some("B")), None);
        assert_eq!(company_uei(None, None, Some("B")), None);
    }

    #[test]
    fn batch_round_trip_keeps_every_value() {
        let schema = award_schema();
        let mut a = sample_award();
        let mut b = a.clone();
        b.award_id = "x".into();
        b.branch = None;
        b.warnings = vec![];
        a.proposal_award_date = Some(-5);
        let batch = awards_to_batch(&schema, &[&a, &b]).unwrap();
        assert_eq!(batch.schema(), schema);
        let back: Vec<Award> = from_batch(&batch).unwrap();
        assert_eq!(back, vec![a, b]);
    }
}
