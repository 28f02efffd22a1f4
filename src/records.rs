//! Row types that cross stage boundaries, with their Arrow schemas. A stage writes these rows
//! with [`to_batch`] and the next stage reads them back with [`from_batch`]: one definition
//! serves Parquet, NDJSON and the in-memory form.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

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
    /// Codes of the warnings the row was kept with.
    pub warnings: Vec<S>,
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Field metadata key marking mostly unique text (ids, titles, abstracts, contacts): Parquet
/// writers skip dictionary encoding and statistics for it, which would cost time and buy nothing.
pub const HIGH_CARDINALITY: &str = "sbir.high_cardinality";

fn unique_text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_metadata(std::collections::HashMap::from([(
        HIGH_CARDINALITY.to_string(),
        "true".to_string(),
    )]))
}

/// The Arrow schema of [`Award`], column for column.
pub fn award_schema() -> SchemaRef {
    use DataType::{Boolean, Date32, Float64, Int32, UInt64, Utf8};
    let text = |n: &str| field(n, Utf8, true);
    let date = |n: &str| field(n, Date32, true);
    Arc::new(Schema::new(vec![
        unique_text("award_id", false),
        field("company", Utf8, false),
        unique_text("award_title", false),
        field("agency", Utf8, false),
        text("branch"),
        field("phase", Utf8, false),
        field("program", Utf8, false),
        unique_text("agency_tracking_number", true),
        unique_text("contract", true),
        date("proposal_award_date"),
        date("contract_end_date"),
        text("solicitation_number"),
        field("solicitation_year", Int32, true),
        date("solicitation_close_date"),
        date("proposal_receipt_date"),
        date("date_of_notification"),
        text("topic_code"),
        field("award_year", Int32, false),
        field("award_amount", Float64, false),
        text("uei"),
        text("duns"),
        field("hubzone_owned", Boolean, true),
        field("socially_economically_disadvantaged", Boolean, true),
        field("woman_owned", Boolean, true),
        field("number_employees", Int32, true),
        text("company_website"),
        unique_text("address1", true),
        text("address2"),
        text("city"),
        text("state"),
        text("state_name"),
        text("zip"),
        unique_text("abstract", true),
        unique_text("contact_name", true),
        text("contact_title"),
        unique_text("contact_phone", true),
        unique_text("contact_email", true),
        unique_text("pi_name", true),
        text("pi_title"),
        unique_text("pi_phone", true),
        unique_text("pi_email", true),
        text("ri_name"),
        text("ri_poc_name"),
        text("ri_poc_phone"),
        field("source_line", UInt64, false),
        field(
            "warnings",
            DataType::List(Arc::new(Field::new("item", Utf8, false))),
            false,
        ),
    ]))
}

/// Serialises rows into a record batch of `schema`.
pub fn to_batch<T: Serialize>(
    schema: &SchemaRef,
    rows: &[T],
) -> Result<RecordBatch, serde_arrow::Error> {
    let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    serde_arrow::to_record_batch(&fields, &rows)
}

/// Reads rows back from a record batch.
pub fn from_batch<T: DeserializeOwned>(batch: &RecordBatch) -> Result<Vec<T>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_struct_fields() {
        let schema = award_schema();
        let award = crate::ingest::tests::sample_award();
        let json = serde_json::to_value(&award).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        let mut names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort();
        names.sort();
        assert_eq!(keys_sorted, names);
    }

    #[test]
    fn batch_round_trip_keeps_every_value() {
        let schema = award_schema();
        let mut a = crate::ingest::tests::sample_award();
        let mut b = a.clone();
        b.award_id = "x".into();
        b.branch = None;
        b.warnings = vec![];
        a.proposal_award_date = Some(-5);
        let batch = to_batch(&schema, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(batch.schema(), schema);
        let back: Vec<Award> = from_batch(&batch).unwrap();
        assert_eq!(back, vec![a, b]);
    }
}
