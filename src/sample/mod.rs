//! Deterministic synthetic data: an SBIR.gov-layout awards CSV, a USAspending-style recipients
//! file, the ground-truth award → recipient links and each award's CET label.
//!
//! Realism that later stages need: company names spelled with real-world variation, UEI/DUNS
//! missing or wrong at realistic rates, near-duplicate recipient names, abstracts written from
//! per-CET vocabulary, and a small share of every CSV edge case ingest must survive (BOM, CRLF,
//! quoted newlines and quotes, Windows-1252 bytes, ragged rows, very long fields, bad values,
//! exact duplicates). Blocks are generated in parallel from per-block seeds, so the output
//! depends only on the options, never on the thread count.

mod entities;
mod names;
pub mod text;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::Limits;
use crate::ingest::columns::{Col, HeaderMap};
use crate::ingest::row::{self, Validated};
use crate::io::IoError;
use crate::io::atomic::AtomicWriter;
use crate::io::chunks::Chunk;
use crate::progress::Progress;
use crate::rng::Rng;

use entities::{ENTITY_SALT, Entity, duns_for, entity, recipient_row, state_name, uei_for};
pub use text::CET_VOCAB;

/// File names written into the output folder.
pub const AWARDS_FILE: &str = "sbir_awards.csv";
pub const RECIPIENTS_FILE: &str = "usaspending_recipients.csv";
pub const TRUTH_FILE: &str = "award_recipient_truth.csv";
pub const LABELS_FILE: &str = "award_cet_labels.csv";

/// Header of the recipients file.
pub const RECIPIENT_COLUMNS: &[&str] = &[
    "recipient_name",
    "recipient_uei",
    "recipient_duns",
    "parent_name",
    "parent_uei",
    "parent_duns",
    "city",
    "state",
    "zip",
];

const BLOCK: u64 = 8192;
const AWARD_SALT: u64 = 0xA3A3;

/// How much to generate and where.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub awards: u64,
    pub recipients: u64,
    pub seed: u64,
    pub out_dir: PathBuf,
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SampleReport {
    pub files: Vec<PathBuf>,
    /// Data rows in the awards file (including the deliberately bad and repeated ones).
    pub award_rows: u64,
    pub recipients: u64,
    pub companies: u64,
    /// Rows carrying each injected edge case.
    pub edge_cases: BTreeMap<String, u64>,
}

/// Agencies with their branches and share of awards.
const AGENCIES: &[(&str, &[&str], u32)] = &[
    (
        "Department of Defense",
        &[
            "Air Force",
            "Army",
            "Navy",
            "Defense Advanced Research Projects Agency",
            "Missile Defense Agency",
            "Special Operations Command",
            "Defense Threat Reduction Agency",
        ],
        55,
    ),
    (
        "Department of Health and Human Services",
        &[
            "National Institutes of Health",
            "Centers for Disease Control and Prevention",
        ],
        17,
    ),
    ("National Aeronautics and Space Administration", &[""], 7),
    ("Department of Energy", &[""], 7),
    ("National Science Foundation", &[""], 6),
    ("Department of Agriculture", &[""], 2),
    ("Department of Homeland Security", &[""], 2),
    (
        "Department of Commerce",
        &[
            "National Oceanic and Atmospheric Administration",
            "National Institute of Standards and Technology",
        ],
        2,
    ),
    ("Department of Transportation", &[""], 1),
    ("Environmental Protection Agency", &[""], 1),
];

fn agency(rng: &mut Rng) -> (&'static str, &'static str) {
    let total: u32 = AGENCIES.iter().map(|a| a.2).sum();
    let mut x = rng.below(total as u64) as u32;
    for (name, branches, w) in AGENCIES {
        if x < *w {
            return (name, *rng.pick(branches));
        }
        x -= w;
    }
    (AGENCIES[0].0, AGENCIES[0].1[0])
}

fn render_date(rng: &mut Rng, y: i32, m: u32, d: u32) -> String {
    match rng.below(20) {
        0..=13 => format!("{y:04}-{m:02}-{d:02}"),
        14..=18 => format!("{m}/{d}/{y}"),
        _ => format!("{m:02}/{d:02}/{y} 12:00:00 AM"),
    }
}

/// One generated award row plus what the truth files say about it.
struct AwardRow {
    fields: Vec<Vec<u8>>,
    recipient_uei: String,
    area: usize,
    second_area: Option<usize>,
    edge: Option<&'static str>,
    repeat: bool,
}

fn award_row(rng: &mut Rng, companies: &[Entity]) -> AwardRow {
    let c = ((rng.unit().powf(2.2)) * companies.len() as f64) as usize;
    let e = &companies[c.min(companies.len() - 1)];
    let year = 2025 - (rng.unit().powf(1.8) * 42.0) as i32;
    let area = if rng.chance(0.75) {
        e.area
    } else if rng.chance(0.5) {
        e.second_area
    } else {
        rng.below(21) as usize
    };
    let second_area = rng
        .chance(0.3)
        .then_some(e.second_area)
        .filter(|&s| s != area);
    let (agency, branch) = agency(rng);
    let phase = match rng.below(100) {
        0..=64 => 1,
        65..=97 => 2,
        _ => 3,
    };
    let program = if rng.chance(0.12) { "STTR" } else { "SBIR" };
    let amount = match phase {
        1 => rng.range(50_000, 300_000),
        2 => rng.range(500_000, 2_000_000),
        _ => rng.range(200_000, 4_000_000),
    } as f64
        * if rng.chance(0.01) { 4.0 } else { 1.0 };
    let (m, d) = (rng.range(1, 12) as u32, rng.range(1, 28) as u32);
    let award_date = rng.chance(0.5).then(|| render_date(rng, year, m, d));
    let end_year = year + 1 + rng.below(2) as i32;
    let end_date = render_date(rng, end_year, m, d);

    let uei_present = match year {
        2022.. => rng.chance(0.95),
        2018..=2021 => rng.chance(0.6),
        _ => rng.chance(0.1),
    };
    let uei = if !uei_present {
        String::new()
    } else if rng.chance(0.02) {
        uei_for(rng.below(1 << 40), rng.next_u64())
    } else {
        e.uei.clone()
    };
    let duns = match (&e.duns, year < 2022 && rng.chance(0.85) || rng.chance(0.3)) {
        (Some(d), true) if rng.chance(0.02) => duns_for(rng.below(1 << 30), rng.next_u64()),
        (Some(d), true) if d.starts_with('0') && rng.chance(0.3) => d[1..].to_string(),
        (Some(d), true) if rng.chance(0.1) => format!("{}-{}-{}", &d[..2], &d[2..5], &d[5..]),
        (Some(d), true) => d.clone(),
        _ => String::new(),
    };
    let company = names::award_variant(rng, &e.name);
    let flag = |rng: &mut Rng| rng.pick(&["Y", "N", "N", "N", "U"]).to_string();
    let zip = match rng.below(100) {
        0..=79 => e.zip.clone(),
        80..=93 => format!("{}-{:04}", e.zip, rng.below(10_000)),
        94..=96 => "-".to_string(),
        _ => e.zip.trim_start_matches('0').to_string(),
    };
    let pi = names::person(rng);
    let contact = names::person(rng);
    let prefix = rng.pick(&["F", "A", "N", "D", "H", "S"]);
    let abstract_text = text::abstract_text(rng, names::without_suffix(&e.name), area, second_area);
    let strings: Vec<String> = vec![
        company,
        text::title(rng, area),
        agency.to_string(),
        branch.to_string(),
        if phase == 1 {
            "Phase I"
        } else if phase == 2 {
            "Phase II"
        } else {
            "Phase III"
        }
        .to_string(),
        program.to_string(),
        format!("{prefix}{}-{:04}", year % 100, rng.below(10_000)),
        format!(
            "{prefix}A{:04}-{:02}-C-{:04}",
            rng.below(10_000),
            year % 100,
            rng.below(10_000)
        ),
        award_date.unwrap_or_default(),
        end_date,
        if rng.chance(0.52) {
            format!("{prefix}{}{}", year % 100, rng.range(1, 3))
        } else {
            String::new()
        },
        if rng.chance(0.8) {
            year.to_string()
        } else {
            String::new()
        },
        String::new(),
        String::new(),
        String::new(),
        if rng.chance(0.57) {
            format!("{prefix}{}-{:03}", year % 100, rng.below(300))
        } else {
            String::new()
        },
        year.to_string(),
        if rng.chance(0.3) {
            format!("${}", group_thousands(amount))
        } else {
            format!("{amount:.2}")
        },
        uei,
        duns,
        flag(rng),
        flag(rng),
        flag(rng),
        rng.range(1, 500).to_string(),
        format!(
            "www.{}.com",
            e.name
                .split([' ', ','])
                .next()
                .unwrap_or("example")
                .to_lowercase()
        ),
        format!(
            "{} {} St",
            rng.range(1, 9999),
            names::base_name(rng).split(' ').next().unwrap_or("Main")
        ),
        if rng.chance(0.2) {
            format!("Suite {}", rng.range(100, 999))
        } else {
            String::new()
        },
        e.city.to_string(),
        state_name(e.state),
        zip,
        abstract_text,
        contact.clone(),
        "President".to_string(),
        format!("({:03}) 555-{:04}", rng.range(200, 999), rng.below(10_000)),
        format!("{}@example.com", contact.to_lowercase().replace(' ', ".")),
        pi.clone(),
        rng.pick(&[
            "Principal Investigator",
            "Chief Scientist",
            "Senior Engineer",
        ])
        .to_string(),
        format!("({:03}) 555-{:04}", rng.range(200, 999), rng.below(10_000)),
        format!("{}@example.com", pi.to_lowercase().replace(' ', ".")),
        if program == "STTR" {
            "State University".to_string()
        } else {
            String::new()
        },
        if program == "STTR" {
            names::person(rng)
        } else {
            String::new()
        },
        String::new(),
    ];
    let mut fields: Vec<Vec<u8>> = strings.into_iter().map(String::into_bytes).collect();
    let edge = inject_edge_case(rng, &mut fields);
    AwardRow {
        fields,
        recipient_uei: if e.in_usaspending {
            e.uei.clone()
        } else {
            String::new()
        },
        area,
        second_area,
        edge,
        repeat: rng.below(1000) < 2,
    }
}

fn group_thousands(amount: f64) -> String {
    let whole = format!("{:.0}", amount);
    let mut out = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Applies at most one CSV or validation edge case to a row (about 1.7% of rows).
fn inject_edge_case(rng: &mut Rng, f: &mut Vec<Vec<u8>>) -> Option<&'static str> {
    let abs = Col::Abstract as usize;
    let edge = match rng.below(1000) {
        0..=2 => {
            f[abs] = b"Sensors for the \x93smart\x94 caf\xe9 of the future \x96 a r\xe9sum\xe9 of results.".to_vec();
            "windows_1252_bytes"
        }
        3..=4 => {
            f.truncate(f.len() - 5);
            "short_row"
        }
        5 => {
            f.push(b"stray extra field".to_vec());
            "too_many_fields"
        }
        6 => {
            let long = String::from_utf8_lossy(&f[abs]).repeat(40);
            f[abs] = long.into_bytes();
            "very_long_field"
        }
        7..=8 => {
            f[Col::Company as usize].clear();
            "missing_company"
        }
        9..=10 => {
            f[Col::AwardAmount as usize] = b"TBD".to_vec();
            "bad_amount"
        }
        11 => {
            f[Col::AwardYear as usize] = b"1975".to_vec();
            "year_out_of_range"
        }
        12 => {
            f[Col::Phase as usize] = b"Phase IV".to_vec();
            "bad_phase"
        }
        13 => {
            f[Col::Uei as usize] = b"UEI-123".to_vec();
            "bad_uei"
        }
        14..=16 => {
            f[abs].extend_from_slice(b"\r\nSee the \"attached\" plan, sections 2, 3 and 4.");
            "quoted_newlines_and_quotes"
        }
        _ => return None,
    };
    Some(edge)
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .flexible(true)
        .from_writer(Vec::new())
}

fn finish_csv(w: csv::Writer<Vec<u8>>, path: &Path) -> Result<Vec<u8>, IoError> {
    w.into_inner().map_err(|e| IoError::write(path, e.error()))
}

/// Generates every file of the sample into `opts.out_dir`.
pub fn generate(opts: &SampleOptions, progress: &dyn Progress) -> Result<SampleReport, IoError> {
    let seed = opts.seed;
    let companies_n = (opts.awards / 6).max(1);
    let companies: Vec<Entity> = (0..companies_n)
        .into_par_iter()
        .map(|i| entity(i, seed, companies_n))
        .collect();
    let entities_n = opts.recipients.max(1);
    progress.set_total(opts.awards + opts.recipients);

    let dir = &opts.out_dir;
    let paths = [AWARDS_FILE, RECIPIENTS_FILE, TRUTH_FILE, LABELS_FILE].map(|f| dir.join(f));
    let open = |p: &Path| AtomicWriter::create(p).map_err(|e| IoError::write(p, e));
    let mut awards_out = open(&paths[0])?;
    let mut recipients_out = open(&paths[1])?;
    let mut truth_out = open(&paths[2])?;
    let mut labels_out = open(&paths[3])?;
    let mut report = SampleReport {
        companies: companies_n,
        ..SampleReport::default()
    };

    // Awards, truth and labels.
    let headers: Vec<String> = Col::ALL.iter().map(|c| c.header().to_string()).collect();
    let map = HeaderMap::resolve(Path::new(AWARDS_FILE), &headers).expect("own header is complete");
    let limits = Limits {
        min_award_year: 1983,
        max_award_year: 2100,
        large_amount_warning: f64::MAX,
    };
    let mut head = csv_writer();
    head.write_record(&headers)
        .map_err(|e| IoError::write(&paths[0], e))?;
    let w = |p: &Path, r: std::io::Result<()>| r.map_err(|e| IoError::write(p, e));
    w(&paths[0], awards_out.write_all(b"\xEF\xBB\xBF"))?;
    w(
        &paths[0],
        awards_out.write_all(&finish_csv(head, &paths[0])?),
    )?;
    w(&paths[2], truth_out.write_all(b"award_id,recipient_uei\n"))?;
    w(
        &paths[3],
        labels_out.write_all(b"award_id,primary_cet,secondary_cets\n"),
    )?;
    let blocks = opts.awards.div_ceil(BLOCK);
    for start in (0..blocks).step_by(16) {
        let parts: Vec<_> = (start..(start + 16).min(blocks))
            .into_par_iter()
            .map(|b| {
                let mut rng = Rng::stream(seed ^ AWARD_SALT, b);
                let n = BLOCK.min(opts.awards - b * BLOCK);
                let (mut csv, mut truth, mut labels) = (csv_writer(), String::new(), String::new());
                let mut edges: BTreeMap<String, u64> = BTreeMap::new();
                let mut rows = 0;
                for _ in 0..n {
                    let r = award_row(&mut rng, &companies);
                    let copies = if r.repeat { 2 } else { 1 };
                    for _ in 0..copies {
                        csv.write_record(&r.fields).expect("write to memory");
                    }
                    rows += copies;
                    if let Some(e) = r.edge {
                        *edges.entry(e.to_string()).or_default() += 1;
                    }
                    if r.repeat {
                        *edges.entry("exact_duplicate".into()).or_default() += 1;
                    }
                    let mut record = Chunk::default();
                    record.push(0, r.fields.iter().map(|f| f.as_slice()));
                    if let Validated::Award { award, .. } =
                        row::validate(record.record(0), row::Position::Line(0), &map, &limits)
                    {
                        truth.push_str(&format!("{},{}\n", award.award_id, r.recipient_uei));
                        let second = r.second_area.map(|s| CET_VOCAB[s].0).unwrap_or("");
                        labels.push_str(&format!(
                            "{},{},{second}\n",
                            award.award_id, CET_VOCAB[r.area].0
                        ));
                    }
                }
                (
                    csv.into_inner().expect("memory writer"),
                    truth,
                    labels,
                    edges,
                    rows,
                    n,
                )
            })
            .collect();
        for (csv, truth, labels, edges, rows, n) in parts {
            w(&paths[0], awards_out.write_all(&csv))?;
            w(&paths[2], truth_out.write_all(truth.as_bytes()))?;
            w(&paths[3], labels_out.write_all(labels.as_bytes()))?;
            for (k, v) in edges {
                *report.edge_cases.entry(k).or_default() += v;
            }
            report.award_rows += rows;
            progress.inc(n);
        }
    }

    // Recipients: every awardee found in USAspending, then other entities up to the count.
    let mut head = csv_writer();
    head.write_record(RECIPIENT_COLUMNS)
        .map_err(|e| IoError::write(&paths[1], e))?;
    w(
        &paths[1],
        recipients_out.write_all(&finish_csv(head, &paths[1])?),
    )?;
    let blocks = entities_n.div_ceil(BLOCK);
    for start in (0..blocks).step_by(16) {
        let parts: Vec<_> = (start..(start + 16).min(blocks))
            .into_par_iter()
            .map(|b| {
                let mut rng = Rng::stream(seed ^ ENTITY_SALT ^ 0xFF, b);
                let mut csv = csv_writer();
                let mut rows = 0u64;
                let end = ((b + 1) * BLOCK).min(entities_n);
                for i in b * BLOCK..end {
                    let e = if i < companies_n {
                        companies[i as usize].clone()
                    } else {
                        entity(i, seed, companies_n)
                    };
                    if e.in_usaspending {
                        csv.write_record(recipient_row(&e, i, seed, companies_n, &mut rng))
                            .expect("write to memory");
                        rows += 1;
                    }
                }
                (
                    csv.into_inner().expect("memory writer"),
                    rows,
                    end - b * BLOCK,
                )
            })
            .collect();
        for (csv, rows, n) in parts {
            w(&paths[1], recipients_out.write_all(&csv))?;
            report.recipients += rows;
            progress.inc(n);
        }
    }

    for out in [awards_out, recipients_out, truth_out, labels_out] {
        let dest = out.dest().to_path_buf();
        report
            .files
            .push(out.commit().map_err(|e| IoError::write(&dest, e))?);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [&a, &b] {
            let opts = SampleOptions {
                awards: 300,
                recipients: 900,
                seed: 5,
                out_dir: d.path().to_path_buf(),
            };
            generate(&opts, &crate::progress::NoProgress).unwrap();
        }
        for f in [AWARDS_FILE, RECIPIENTS_FILE, TRUTH_FILE, LABELS_FILE] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }
}
