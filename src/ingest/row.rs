//! Validation of one CSV row into an [`Award`], or a [`Reject`] that keeps the raw fields and
//! every reason. Pure and thread-safe: rows are validated in parallel.

use std::borrow::Cow;

use csv::ByteRecord;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

use super::columns::{Col, HeaderMap, REQUIRED};
use super::rules::{self, Parsed, Problem};
use crate::records::{Award, opt};

/// A record as read, with the line it starts on.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub line: u64,
    pub record: ByteRecord,
}

/// Limits that depend on settings.
#[derive(Debug, Clone)]
pub struct Limits {
    pub min_award_year: i32,
    pub max_award_year: i32,
    pub large_amount_warning: f64,
}

/// Why a field failed validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// The column header (or `(row)` for whole-row problems).
    pub field: String,
    pub code: &'static str,
    /// What was expected.
    pub message: String,
    pub value: String,
}

/// A quarantined row: where it was, why, and every raw field (by the file's header names).
#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    pub line: u64,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<&'static str>,
    #[serde(serialize_with = "ordered_map")]
    pub raw: Vec<(String, String)>,
}

fn ordered_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// A validated award whose text borrows from the row it came from.
pub type ValidAward<'a> = Award<Cow<'a, str>>;

/// The outcome of validating a row.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // nearly every row is an award: boxing would allocate per row
pub enum Validated<'a> {
    /// A valid award; `key` is its [`award_key`], `content` hashes the raw row so exact
    /// repeats can be dropped.
    Award {
        award: ValidAward<'a>,
        key: u64,
        content: u64,
    },
    Rejected(Reject),
}

/// Warning codes a kept row may carry.
pub mod warning {
    pub const NON_UTF8: &str = "non_utf8_decoded";
    pub const SHORT_ROW: &str = "short_row";
    pub const LARGE_AMOUNT: &str = "amount_above_threshold";
    pub const YEAR_MISMATCH: &str = "award_year_differs_from_award_date";
    pub const DUNS_PADDED: &str = "duns_zero_padded";
    pub const ZIP_PADDED: &str = "zip_zero_padded";
    pub const KEY_COLLISION: &str = "award_key_collision";
}

fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => {
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            (s, true)
        }
    }
}

/// Decodes a header or data record: UTF-8, else Windows-1252 (reported with `true`). Records
/// are split on `\n` only (so line numbers stay exact), and the `\r` of a CRLF line end is
/// removed here.
pub fn decode_record(record: &ByteRecord) -> (Vec<Cow<'_, str>>, bool) {
    let trim_cr = |i: usize, f: &'_ [u8]| -> usize {
        if i + 1 == record.len() && f.ends_with(b"\r") {
            f.len() - 1
        } else {
            f.len()
        }
    };
    // Fast path: one UTF-8 check over the whole record, then borrow each field (a field of a
    // valid buffer is valid when it starts and ends on character boundaries).
    if let Ok(all) = std::str::from_utf8(record.as_slice()) {
        let mut start = 0;
        let mut fields = Vec::with_capacity(record.len());
        for (i, f) in record.iter().enumerate() {
            match all.get(start..start + trim_cr(i, f)) {
                Some(s) => fields.push(Cow::Borrowed(s)),
                None => break,
            }
            start += f.len();
        }
        if fields.len() == record.len() {
            return (fields, false);
        }
    }
    let mut any = false;
    let fields = record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (s, bad) = decode(&f[..trim_cr(i, f)]);
            any |= bad;
            s
        })
        .collect();
    (fields, any)
}

struct Fields<'a> {
    values: Vec<Cow<'a, str>>,
    map: &'a HeaderMap,
    reasons: Vec<Reason>,
    warnings: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&self, col: Col) -> &str {
        self.map
            .position(col)
            .and_then(|i| self.values.get(i))
            .map(|v| v.trim())
            .unwrap_or("")
    }

    /// The trimmed text of `col`, borrowed from the row when it was valid UTF-8.
    fn text(&self, col: Col) -> Option<Cow<'a, str>> {
        let v = self.map.position(col).and_then(|i| self.values.get(i))?;
        let t = match v {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        };
        (!t.is_empty()).then_some(t)
    }

    /// Required text: a `missing_required` reason when empty.
    fn require_text(&mut self, col: Col) -> Option<Cow<'a, str>> {
        let v = self.text(col);
        if v.is_none() {
            self.missing(col);
        }
        v
    }

    fn missing(&mut self, col: Col) {
        self.fail(
            col,
            Problem {
                code: "missing_required",
                expected: "a value",
            },
        );
    }

    fn fail(&mut self, col: Col, p: Problem) {
        let value = self.get(col).to_string();
        self.reasons.push(Reason {
            field: col.header().to_string(),
            code: p.code,
            message: format!("expected {}", p.expected),
            value,
        });
    }

    fn parse<T>(&mut self, col: Col, f: impl FnOnce(&str) -> Parsed<T>) -> Option<T> {
        match f(self.get(col)) {
            Ok(v) => v,
            Err(p) => {
                self.fail(col, p);
                None
            }
        }
    }

    /// A required field: parsed, or a `missing_required` reason when empty.
    fn require<T>(&mut self, col: Col, f: impl FnOnce(&str) -> Parsed<T>) -> Option<T> {
        let empty = self.get(col).is_empty();
        let v = self.parse(col, f);
        if empty {
            self.missing(col);
        }
        v
    }
}

/// Validates and normalises one row.
pub fn validate<'a>(row: &'a RawRow, map: &'a HeaderMap, limits: &Limits) -> Validated<'a> {
    let (values, non_utf8) = decode_record(&row.record);
    let mut f = Fields {
        values,
        map,
        reasons: Vec::new(),
        warnings: Vec::new(),
    };
    if non_utf8 {
        f.warnings.push(warning::NON_UTF8);
    }
    let width = map.names.len();
    if f.values.len() > width {
        f.reasons.push(Reason {
            field: "(row)".into(),
            code: "too_many_fields",
            message: format!(
                "expected {width} fields as in the header, found {}",
                f.values.len()
            ),
            value: String::new(),
        });
    } else if f.values.len() < width {
        f.warnings.push(warning::SHORT_ROW);
    }

    let company = f.require_text(Col::Company);
    let award_title = f.require_text(Col::AwardTitle);
    let agency = f.require_text(Col::Agency);
    let phase = f.require(Col::Phase, rules::phase);
    let program = f.require(Col::Program, rules::program);
    let award_year = f.require(Col::AwardYear, |s| {
        rules::year(s, limits.min_award_year, limits.max_award_year)
    });
    let award_amount = f.require(Col::AwardAmount, rules::amount);
    debug_assert_eq!(REQUIRED.len(), 7);

    let proposal_award_date = f.parse(Col::ProposalAwardDate, rules::date);
    let contract_end_date = f.parse(Col::ContractEndDate, rules::date);
    let solicitation_close_date = f.parse(Col::SolicitationCloseDate, rules::date);
    let proposal_receipt_date = f.parse(Col::ProposalReceiptDate, rules::date);
    let date_of_notification = f.parse(Col::DateOfNotification, rules::date);
    let solicitation_year = f.parse(Col::SolicitationYear, rules::integer);
    let number_employees = f.parse(Col::NumberEmployees, rules::integer);
    let uei = f.parse(Col::Uei, rules::uei);
    let duns = f.parse(Col::Duns, rules::duns);
    let hubzone_owned = f.parse(Col::HubzoneOwned, rules::flag);
    let sed = f.parse(Col::SociallyEconomicallyDisadvantaged, rules::flag);
    let woman_owned = f.parse(Col::WomanOwned, rules::flag);
    let state = f.parse(Col::State, rules::state);
    let zip = f.parse(Col::Zip, rules::zip);

    let (
        Some(company),
        Some(award_title),
        Some(agency),
        Some(phase),
        Some(program),
        Some(award_year),
        Some(award_amount),
    ) = (
        company,
        award_title,
        agency,
        phase,
        program,
        award_year,
        award_amount,
    )
    else {
        return reject(row, f);
    };
    if !f.reasons.is_empty() {
        return reject(row, f);
    }

    if award_amount > limits.large_amount_warning {
        f.warnings.push(warning::LARGE_AMOUNT);
    }
    if proposal_award_date.is_some_and(|d| rules::year_of(d) != award_year) {
        f.warnings.push(warning::YEAR_MISMATCH);
    }
    let duns = duns.map(|(d, padded)| {
        if padded {
            f.warnings.push(warning::DUNS_PADDED);
        }
        d
    });
    let zip = zip.map(|(z, padded)| {
        if padded {
            f.warnings.push(warning::ZIP_PADDED);
        }
        z
    });

    // Exact repeats are detected on the raw bytes and field boundaries.
    let mut content = Xxh3::new();
    content.update(row.record.as_slice());
    for field in row.record.iter() {
        content.update(&(field.len() as u32).to_le_bytes());
    }

    let award = Award {
        award_id: Cow::Borrowed(""),
        company,
        award_title,
        agency,
        branch: f.text(Col::Branch),
        phase: Cow::Borrowed(phase),
        program: Cow::Borrowed(program),
        agency_tracking_number: f.text(Col::AgencyTrackingNumber),
        contract: f.text(Col::Contract),
        proposal_award_date,
        contract_end_date,
        solicitation_number: f.text(Col::SolicitationNumber),
        solicitation_year,
        solicitation_close_date,
        proposal_receipt_date,
        date_of_notification,
        topic_code: f.text(Col::TopicCode),
        award_year,
        award_amount,
        uei: uei.map(Cow::Owned),
        duns: duns.map(Cow::Owned),
        hubzone_owned,
        socially_economically_disadvantaged: sed,
        woman_owned,
        number_employees,
        company_website: f.text(Col::CompanyWebsite),
        address1: f.text(Col::Address1),
        address2: f.text(Col::Address2),
        city: f.text(Col::City),
        state: state.map(Cow::Borrowed),
        state_name: f.text(Col::State),
        zip: zip.map(Cow::Owned),
        r#abstract: f.text(Col::Abstract),
        contact_name: f.text(Col::ContactName),
        contact_title: f.text(Col::ContactTitle),
        contact_phone: f.text(Col::ContactPhone),
        contact_email: f.text(Col::ContactEmail),
        pi_name: f.text(Col::PiName),
        pi_title: f.text(Col::PiTitle),
        pi_phone: f.text(Col::PiPhone),
        pi_email: f.text(Col::PiEmail),
        ri_name: f.text(Col::RiName),
        ri_poc_name: f.text(Col::RiPocName),
        ri_poc_phone: f.text(Col::RiPocPhone),
        source_line: row.line,
        warnings: f.warnings.iter().map(|w| Cow::Borrowed(*w)).collect(),
    };
    let key = award_key(&award);
    let award = Award {
        award_id: Cow::Owned(format_award_id(key)),
        ..award
    };
    Validated::Award {
        award,
        key,
        content: content.digest(),
    }
}

fn reject<'a>(row: &RawRow, f: Fields<'_>) -> Validated<'a> {
    let raw = f
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = f
                .map
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("_extra_{}", i + 1 - f.map.names.len()));
            (name, v.to_string())
        })
        .collect();
    Validated::Rejected(Reject {
        line: row.line,
        reasons: f.reasons,
        warnings: f.warnings,
        raw,
    })
}

/// The stable award key: `sbir-` + the first 16 hex digits of the SHA-256 of these fields,
/// joined by the unit separator (0x1F): company (upper-case, spaces collapsed), agency
/// tracking number, contract, agency, branch, phase, program, proposal award date
/// (ISO, or empty) and solicitation number (upper-case). The same award gets the same id in
/// every run and every vintage of the file that spells those fields the same way.
pub fn award_id<S: AsRef<str>>(a: &Award<S>) -> String {
    format_award_id(award_key(a))
}

fn format_award_id(key: u64) -> String {
    format!("sbir-{key:016x}")
}

/// The 64-bit key behind [`award_id`].
pub fn award_key<S: AsRef<str>>(a: &Award<S>) -> u64 {
    let date = a.proposal_award_date.map(rules::iso_date);
    let parts = [
        Some(a.company.as_ref()),
        opt(&a.agency_tracking_number),
        opt(&a.contract),
        Some(a.agency.as_ref()),
        opt(&a.branch),
        Some(a.phase.as_ref()),
        Some(a.program.as_ref()),
        date.as_deref(),
        opt(&a.solicitation_number),
    ];
    let mut hasher = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        feed_upper_collapsed(&mut hasher, part.unwrap_or(""));
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Hashes `s` upper-cased with runs of whitespace collapsed to one space and the ends trimmed,
/// without building the normalised string (this runs for every row).
fn feed_upper_collapsed(hasher: &mut Sha256, s: &str) {
    let mut utf8 = [0u8; 4];
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            hasher.update(b" ");
        }
        if word.is_ascii() {
            for chunk in word.as_bytes().chunks(64) {
                let mut up = [0u8; 64];
                for (d, c) in up.iter_mut().zip(chunk) {
                    *d = c.to_ascii_uppercase();
                }
                hasher.update(&up[..chunk.len()]);
            }
        } else {
            for c in word.chars().flat_map(char::to_uppercase) {
                hasher.update(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&[u8]]) -> ByteRecord {
        fields.iter().copied().collect()
    }

    #[test]
    fn decodes_utf8_borrowed_and_strips_the_crlf_remainder() {
        let r = record(&[b"caf\xc3\xa9", b"", b"end\r"]);
        let (fields, bad) = decode_record(&r);
        assert!(!bad);
        assert_eq!(fields, vec!["café", "", "end"]);
        assert!(fields.iter().all(|f| matches!(f, Cow::Borrowed(_))));
    }

    #[test]
    fn a_character_split_across_fields_is_not_valid_utf8() {
        // Together the bytes spell "é", but each field alone is invalid: decode per field.
        let r = record(&[b"\xc3", b"\xa9"]);
        let (fields, bad) = decode_record(&r);
        assert!(bad);
        assert_eq!(fields, vec!["\u{c3}", "\u{a9}"]);
    }

    #[test]
    fn windows_1252_is_decoded_and_flagged() {
        let r = record(&[b"ok", b"\x93smart\x94"]);
        let (fields, bad) = decode_record(&r);
        assert!(bad);
        assert_eq!(fields[1], "\u{201c}smart\u{201d}");
    }
}
