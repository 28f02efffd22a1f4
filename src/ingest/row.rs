//! Validation of one CSV row into an [`Award`], or a [`Reject`] that keeps the raw fields and
//! every reason. Pure and thread-safe: rows are validated in parallel.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::columns::{Col, HeaderMap, REQUIRED};
use super::dates;
use super::rules::{self, Fixed, Parsed, Problem};
use crate::html;
use crate::io::chunks::Record;
use crate::records::{Award, Warning, opt};

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
    /// Written as `"line": N` (CSV, NDJSON) or `"record": N` (JSON array index).
    #[serde(flatten)]
    pub at: Position,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Warning<String>>,
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
    /// A valid award; `key` is its [`award_key`], `content` hashes the row's mapped fields so
    /// exact repeats can be dropped.
    Award {
        award: ValidAward<'a>,
        key: u64,
        content: u64,
    },
    Rejected(Reject),
}

/// Warning codes a kept row may carry, besides the code of any optional value that broke its
/// rule (`invalid_date`, `invalid_duns`, …: the value is then null) and the repairs of
/// [`rules::fix`].
pub mod warning {
    pub const NON_UTF8: &str = "non_utf8_decoded";
    pub const SHORT_ROW: &str = "short_row";
    pub const EXTRA_EMPTY_FIELDS: &str = "extra_empty_fields";
    pub const LARGE_AMOUNT: &str = "amount_above_threshold";
    pub const ZERO_AMOUNT: &str = "zero_amount";
    pub const YEAR_MISMATCH: &str = "award_year_differs_from_award_date";
    pub const HTML_CLEANED: &str = "html_cleaned";
    pub const KEY_COLLISION: &str = "award_key_collision";
}

/// Where a row came from: the same spot serves rejects, messages (`line 7`, `record 3`) and
/// the award's `source_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    /// A CSV or NDJSON line (1-based).
    Line(u64),
    /// A JSON array index (0-based).
    Record(u64),
}

impl Position {
    /// The line or index itself.
    pub fn number(self) -> u64 {
        match self {
            Self::Line(n) | Self::Record(n) => n,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Record(n) => write!(f, "record {n}"),
        }
    }
}

struct Fields<'a> {
    values: Vec<Cow<'a, str>>,
    map: &'a HeaderMap,
    /// False when the row holds no `&` or `<` at all, so no field can hold HTML.
    may_hold_html: bool,
    reasons: Vec<Reason>,
    warnings: Vec<Warning<Cow<'a, str>>>,
}

impl<'a> Fields<'a> {
    fn raw(&self, col: Col) -> Option<&Cow<'a, str>> {
        self.map.position(col).and_then(|i| self.values.get(i))
    }

    fn get(&self, col: Col) -> &str {
        self.raw(col).map(|v| v.trim()).unwrap_or("")
    }

    /// The trimmed raw text of `col`, borrowed from the row when it was valid UTF-8.
    fn trimmed(&self, col: Col) -> Option<Cow<'a, str>> {
        let t = match self.raw(col)? {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        };
        (!t.is_empty()).then_some(t)
    }

    /// Free text of `col`: trimmed, with HTML entities decoded and tags removed (warned).
    fn text(&mut self, col: Col) -> Option<Cow<'a, str>> {
        let t = self.trimmed(col)?;
        if !self.may_hold_html {
            return Some(t);
        }
        match html::clean(&t) {
            None => Some(t),
            Some((clean, what)) => {
                self.warn(col, warning::HTML_CLEANED, Some(Cow::Owned(what)));
                (!clean.is_empty()).then_some(Cow::Owned(clean))
            }
        }
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

    /// A reason to reject the row.
    fn fail(&mut self, col: Col, p: Problem) {
        let value = self.get(col).to_string();
        self.reasons.push(Reason {
            field: col.header().to_string(),
            code: p.code,
            message: format!("expected {}", p.expected),
            value,
        });
    }

    /// A warning about `col`; `value` defaults to the field's raw text.
    fn warn(&mut self, col: Col, code: &'static str, value: Option<Cow<'a, str>>) {
        let value = value.or_else(|| self.trimmed(col));
        self.warnings.push(Warning {
            code: Cow::Borrowed(code),
            field: Some(Cow::Borrowed(col.header())),
            value,
        });
    }

    /// A warning about the whole row.
    fn warn_row(&mut self, code: &'static str) {
        self.warnings.push(Warning {
            code: Cow::Borrowed(code),
            field: None,
            value: None,
        });
    }

    /// An optional field: its value, or `None` with a warning when it breaks the rule.
    fn parse<T>(&mut self, col: Col, f: impl FnOnce(&str) -> Parsed<T>) -> Option<T> {
        let parsed = f(self.get(col));
        self.optional(col, parsed)
    }

    /// The value of an optional rule's outcome; a broken rule is a warning, not a reason.
    fn optional<T>(&mut self, col: Col, parsed: Parsed<T>) -> Option<T> {
        parsed.unwrap_or_else(|p| {
            self.warn(col, p.code, None);
            None
        })
    }

    /// Like [`Fields::parse`], for rules that may hand back the field's own text (borrowed
    /// from the row when the row was valid UTF-8) and name the repairs they made, each of
    /// which becomes a warning.
    fn parse_text(
        &mut self,
        col: Col,
        f: impl for<'s> Fn(&'s str) -> Parsed<Fixed<'s>>,
    ) -> Option<Cow<'a, str>> {
        let parsed = match self.trimmed(col) {
            Some(Cow::Borrowed(s)) => f(s),
            Some(Cow::Owned(s)) => f(&s).map(|v| v.map(|(t, x)| (t.into_owned().into(), x))),
            None => f(""),
        };
        let (value, fixes) = self.optional(col, parsed)?;
        for code in fixes {
            self.warn(col, code, None);
        }
        Some(value)
    }

    /// A required field: parsed, or a reason to reject the row (`missing_required` when
    /// empty).
    fn require<T>(&mut self, col: Col, f: impl FnOnce(&str) -> Parsed<T>) -> Option<T> {
        match f(self.get(col)) {
            Ok(None) => {
                self.missing(col);
                None
            }
            Ok(v) => v,
            Err(p) => {
                self.fail(col, p);
                None
            }
        }
    }

    /// Hash of the mapped fields' bytes and boundaries: rows equal in every mapped column
    /// hash alike, whatever their unmapped extra columns hold.
    fn content_hash(&self, row: &Record<'_>) -> u64 {
        if self.map.all_mapped {
            // Every column is mapped: the raw bytes and field lengths say it all.
            let lengths = row.iter().fold(0u64, |h, f| {
                (h ^ f.len() as u64).wrapping_mul(0x0000_0100_0000_01b3)
            });
            return xxh3_64_with_seed(row.as_slice(), lengths);
        }
        let mut bytes = Vec::with_capacity(row.as_slice().len() + Col::ALL.len());
        for &col in Col::ALL {
            if let Some(v) = self.raw(col) {
                bytes.extend_from_slice(v.as_bytes());
            }
            bytes.push(0x1f);
        }
        xxh3_64_with_seed(&bytes, 0)
    }
}

/// Validates and normalises one row. Only the required columns can reject it: a bad optional
/// value becomes null and the row keeps a warning naming the column and the raw value.
pub fn validate<'a>(
    row: Record<'a>,
    at: Position,
    map: &'a HeaderMap,
    limits: &Limits,
) -> Validated<'a> {
    let (values, non_utf8) = row.decode();
    let mut f = Fields {
        values,
        map,
        may_hold_html: memchr::memchr2(b'&', b'<', row.as_slice()).is_some(),
        reasons: Vec::new(),
        warnings: Vec::new(),
    };
    if non_utf8 {
        f.warn_row(warning::NON_UTF8);
    }
    let invalid = map.invalid_record.and_then(|i| f.values.get(i));
    if let Some(msg) = invalid.filter(|v| !v.is_empty()) {
        f.reasons.push(Reason {
            field: "(record)".into(),
            code: "invalid_record",
            message: format!("expected a JSON object: {msg}"),
            value: String::new(),
        });
        return reject(at, f);
    }

    let width = map.names.len();
    if f.values.len() > width {
        if f.values[width..].iter().all(|v| v.trim().is_empty()) {
            f.warn_row(warning::EXTRA_EMPTY_FIELDS);
        } else {
            f.reasons.push(Reason {
                field: "(row)".into(),
                code: "too_many_fields",
                message: format!(
                    "expected {width} fields as in the header, found {}",
                    f.values.len()
                ),
                value: String::new(),
            });
        }
    } else if f.values.len() < width {
        f.warn_row(warning::SHORT_ROW);
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
        return reject(at, f);
    };
    if !f.reasons.is_empty() {
        return reject(at, f);
    }

    let proposal_award_date = f.parse(Col::ProposalAwardDate, dates::date);
    let contract_end_date = f.parse(Col::ContractEndDate, dates::date);
    let solicitation_close_date = f.parse(Col::SolicitationCloseDate, dates::date);
    let proposal_receipt_date = f.parse(Col::ProposalReceiptDate, dates::date);
    let date_of_notification = f.parse(Col::DateOfNotification, dates::date);
    let solicitation_year = f.parse(Col::SolicitationYear, |s| {
        rules::year(s, limits.min_award_year - 2, limits.max_award_year + 1)
    });
    let number_employees = f.parse(Col::NumberEmployees, rules::integer);
    let uei = f.parse_text(Col::Uei, rules::uei);
    let duns = f.parse_text(Col::Duns, rules::duns);
    let hubzone_owned = f.parse(Col::HubzoneOwned, rules::flag);
    let sed = f.parse(Col::SociallyEconomicallyDisadvantaged, rules::flag);
    let woman_owned = f.parse(Col::WomanOwned, rules::flag);
    let state = f.parse(Col::State, rules::state);
    let zip = f.parse_text(Col::Zip, rules::zip);

    if award_amount == 0.0 {
        f.warn(Col::AwardAmount, warning::ZERO_AMOUNT, None);
    } else if award_amount > limits.large_amount_warning {
        f.warn(Col::AwardAmount, warning::LARGE_AMOUNT, None);
    }
    if proposal_award_date.is_some_and(|d| dates::year_of(d) != award_year) {
        f.warn(Col::ProposalAwardDate, warning::YEAR_MISMATCH, None);
    }
    let content = f.content_hash(&row);

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
        uei,
        duns,
        hubzone_owned,
        socially_economically_disadvantaged: sed,
        woman_owned,
        number_employees,
        company_website: f.text(Col::CompanyWebsite),
        address1: f.text(Col::Address1),
        address2: f.text(Col::Address2),
        city: f.text(Col::City),
        state: state.map(Cow::Borrowed),
        state_name: f.trimmed(Col::State),
        zip,
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
        source_line: at.number(),
        warnings: std::mem::take(&mut f.warnings),
    };
    let key = award_key(&award);
    let award = Award {
        award_id: Cow::Owned(format_award_id(key)),
        ..award
    };
    Validated::Award {
        award,
        key,
        content,
    }
}

fn reject<'a>(at: Position, f: Fields<'_>) -> Validated<'a> {
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
        at,
        reasons: f.reasons,
        warnings: f
            .warnings
            .into_iter()
            .map(|w| Warning {
                code: w.code.into_owned(),
                field: w.field.map(Cow::into_owned),
                value: w.value.map(Cow::into_owned),
            })
            .collect(),
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
    let mut id = String::with_capacity(21);
    id.push_str("sbir-");
    crate::hex::push_hex(&mut id, &key.to_be_bytes());
    id
}

/// The 64-bit key behind [`award_id`].
pub fn award_key<S: AsRef<str>>(a: &Award<S>) -> u64 {
    let date = a.proposal_award_date.map(dates::iso_date);
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
    // The key text is built in one buffer and hashed in one call: many small updates of the
    // hasher cost more than the hashing itself.
    let mut key = Vec::with_capacity(256);
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            key.push(0x1f);
        }
        push_upper_collapsed(&mut key, part.unwrap_or(""));
    }
    let digest = Sha256::digest(&key);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Appends `s` upper-cased, with runs of whitespace collapsed to one space and the ends trimmed.
fn push_upper_collapsed(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        // These six bytes are what `split_whitespace` splits ASCII text on: the space and the
        // controls \t \n \x0B \x0C \r (9 to 13).
        let control = |b: u8| b.wrapping_sub(b'\t') < 5;
        let ws = |b: u8| b == b' ' || control(b);
        let b = s.as_bytes();
        // Nearly every value is already trimmed with single spaces between words: then it is
        // copied and upper-cased in place. The checks have no early exit, so they vectorise.
        let tidy = !b.first().is_some_and(|&c| ws(c))
            && !b.last().is_some_and(|&c| ws(c))
            && !b.iter().fold(false, |any, &c| any | control(c))
            && !(b.iter().zip(b.get(1..).unwrap_or_default()))
                .fold(false, |any, (&x, &y)| any | ((x == b' ') & (y == b' ')));
        if tidy {
            let start = out.len();
            out.extend_from_slice(b);
            out[start..].make_ascii_uppercase();
            return;
        }
        let (mut words, mut gap) = (false, false);
        for &c in b {
            if ws(c) {
                gap = words;
            } else {
                if std::mem::take(&mut gap) {
                    out.push(b' ');
                }
                out.push(c.to_ascii_uppercase());
                words = true;
            }
        }
        return;
    }
    let mut utf8 = [0u8; 4];
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        for c in word.chars().flat_map(char::to_uppercase) {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn award_ids_are_the_key_in_sixteen_hex_digits() {
        assert_eq!(
            format_award_id(0x0123_4567_89ab_cdef),
            "sbir-0123456789abcdef"
        );
        assert_eq!(format_award_id(0xf), "sbir-000000000000000f");
        assert_eq!(format_award_id(u64::MAX), format!("sbir-{:016x}", u64::MAX));
    }

    #[test]
    fn ascii_and_unicode_keys_follow_one_whitespace_rule() {
        for s in [
            "  acme \t photonics,\r\n inc. ",
            "a\x0Bb\x0Cc",
            "Acme Photonics, Inc.",
            "a b",
            "a",
            " a",
            "a ",
            "a  b",
            "a\tb",
            "",
            " \n ",
            "Résumé  Labs",
        ] {
            let mut fast = Vec::new();
            push_upper_collapsed(&mut fast, s);
            let words: Vec<String> = s.split_whitespace().map(str::to_uppercase).collect();
            assert_eq!(String::from_utf8(fast).unwrap(), words.join(" "), "{s:?}");
        }
    }
}
