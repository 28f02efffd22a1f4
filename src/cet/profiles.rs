//! Company CET profiles: per company, how its awards and dollars spread over the CET areas.
//!
//! Companies are keyed by UEI when the award (or its linked USAspending recipient) has one,
//! else by `name:` + the normalised company name, so companies without a UEI are kept rather
//! than dropped. Shares count classified awards only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// A company's key: its UEI when known, else `name:` + its normalised name.
pub fn company_key(uei: Option<&str>, normalized_name: &str) -> String {
    match uei {
        Some(u) => u.to_string(),
        None => format!("name:{normalized_name}"),
    }
}

/// One award as the profile builder sees it.
#[derive(Debug, Clone)]
pub struct ProfileAward<'a> {
    pub uei: Option<&'a str>,
    pub company: &'a str,
    pub normalized_name: String,
    pub year: i32,
    pub amount: f64,
    /// Primary area index, None when unclassified.
    pub primary: Option<usize>,
}

/// One area of a company profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaShare {
    pub cet_id: String,
    pub award_count: u64,
    pub award_share: f64,
    pub dollar_share: f64,
    /// Least-squares slope of this area's share of the company's classified awards per year,
    /// over the company's award years (share points per year; 0 with one year).
    pub trend: f64,
}

/// One row of `cet_company_profiles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanyProfile {
    pub company_key: String,
    /// `uei` or `name`.
    pub key_type: String,
    pub uei: Option<String>,
    pub company_name: String,
    pub normalized_name: String,
    pub award_count: u64,
    pub classified_award_count: u64,
    pub total_award_amount: f64,
    pub dominant_cet_id: Option<String>,
    /// Share of the company's classified awards whose primary area is the dominant one.
    pub specialization_score: f64,
    pub first_award_year: i32,
    pub last_award_year: i32,
    pub areas: Vec<AreaShare>,
}

#[derive(Default)]
struct Acc {
    uei: Option<String>,
    name: String,
    normalized: String,
    awards: u64,
    dollars: f64,
    first: i32,
    last: i32,
    /// area → (awards, dollars)
    areas: BTreeMap<usize, (u64, f64)>,
    /// (year, area or None) → awards
    by_year: BTreeMap<(i32, Option<usize>), u64>,
}

/// Accumulates awards into profiles; memory grows with companies, not awards.
#[derive(Default)]
pub struct ProfileBuilder {
    companies: HashMap<String, Acc>,
}

impl ProfileBuilder {
    pub fn add(&mut self, a: &ProfileAward) {
        let key = company_key(a.uei, &a.normalized_name);
        let acc = self.companies.entry(key).or_insert_with(|| Acc {
            uei: a.uei.map(str::to_string),
            name: a.company.to_string(),
            normalized: a.normalized_name.clone(),
            first: a.year,
            last: a.year,
            ..Acc::default()
        });
        acc.awards += 1;
        acc.dollars += a.amount;
        acc.first = acc.first.min(a.year);
        acc.last = acc.last.max(a.year);
        if let Some(area) = a.primary {
            let e = acc.areas.entry(area).or_default();
            e.0 += 1;
            e.1 += a.amount;
        }
        *acc.by_year.entry((a.year, a.primary)).or_default() += 1;
    }

    /// The profiles, sorted by company key; `ids` names the areas.
    pub fn finish(self, ids: &[String]) -> Vec<CompanyProfile> {
        let mut out: Vec<CompanyProfile> = self
            .companies
            .into_iter()
            .map(|(key, acc)| profile(key, acc, ids))
            .collect();
        out.sort_by(|a, b| a.company_key.cmp(&b.company_key));
        out
    }
}

fn profile(key: String, acc: Acc, ids: &[String]) -> CompanyProfile {
    let classified: u64 = acc.areas.values().map(|v| v.0).sum();
    let classified_dollars: f64 = acc.areas.values().map(|v| v.1).sum();
    // Yearly classified totals for the trend.
    let mut year_totals: BTreeMap<i32, u64> = BTreeMap::new();
    for (&(y, area), &n) in &acc.by_year {
        if area.is_some() {
            *year_totals.entry(y).or_default() += n;
        }
    }
    let dominant = acc
        .areas
        .iter()
        .max_by(|a, b| {
            (a.1.0, a.1.1)
                .partial_cmp(&(b.1.0, b.1.1))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.0.cmp(a.0))
        })
        .map(|(&area, &(n, _))| (area, n));
    let share = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
    let areas = acc
        .areas
        .iter()
        .map(|(&area, &(n, dollars))| {
            let points: Vec<(f64, f64)> = year_totals
                .iter()
                .map(|(&y, &tot)| {
                    let k = acc.by_year.get(&(y, Some(area))).copied().unwrap_or(0);
                    (y as f64, k as f64 / tot as f64)
                })
                .collect();
            AreaShare {
                cet_id: ids[area].clone(),
                award_count: n,
                award_share: share(n as f64, classified as f64),
                dollar_share: share(dollars, classified_dollars),
                trend: slope(&points),
            }
        })
        .collect();
    CompanyProfile {
        key_type: if acc.uei.is_some() { "uei" } else { "name" }.into(),
        company_key: key,
        uei: acc.uei,
        company_name: acc.name,
        normalized_name: acc.normalized,
        award_count: acc.awards,
        classified_award_count: classified,
        total_award_amount: acc.dollars,
        dominant_cet_id: dominant.map(|(a, _)| ids[a].clone()),
        specialization_score: dominant.map_or(0.0, |(_, n)| share(n as f64, classified as f64)),
        first_award_year: acc.first,
        last_award_year: acc.last,
        areas,
    }
}

/// Least-squares slope of y on x; 0 when x does not vary.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// Schema of `cet_company_profiles`.
pub fn profile_schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| -> FieldRef { Arc::new(Field::new(n, t, null)) };
    let area = Fields::from(vec![
        f("cet_id", DataType::Utf8, false),
        f("award_count", DataType::UInt64, false),
        f("award_share", DataType::Float64, false),
        f("dollar_share", DataType::Float64, false),
        f("trend", DataType::Float64, false),
    ]);
    Arc::new(Schema::new(vec![
        f("company_key", DataType::Utf8, false),
        f("key_type", DataType::Utf8, false),
        f("uei", DataType::Utf8, true),
        f("company_name", DataType::Utf8, false),
        f("normalized_name", DataType::Utf8, false),
        f("award_count", DataType::UInt64, false),
        f("classified_award_count", DataType::UInt64, false),
        f("total_award_amount", DataType::Float64, false),
        f("dominant_cet_id", DataType::Utf8, true),
        f("specialization_score", DataType::Float64, false),
        f("first_award_year", DataType::Int32, false),
        f("last_award_year", DataType::Int32, false),
        f(
            "areas",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(area), false))),
            false,
        ),
    ]))
}

/// Profiles as a record batch.
pub fn profiles_to_batch(rows: &[CompanyProfile]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(profile_schema().fields(), &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        assert!((slope(&[(2020.0, 0.0), (2021.0, 0.5), (2022.0, 1.0)]) - 0.5).abs() < 1e-12);
        assert_eq!(slope(&[(2020.0, 1.0)]), 0.0);
    }
}
