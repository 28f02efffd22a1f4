//! USAspending recipients: loading (CSV, CSV.gz or Parquet) with header spellings from settings,
//! row validation with rejects, and the lookup index the match cascade uses.
//!
//! Memory: columns are held as Arrow string arrays (contiguous bytes plus offsets), identifier
//! maps are keyed by 64-bit hashes, and the blocking index is one sorted postings array, so the
//! index grows linearly, about 2.5× the raw text size of the name and identifier columns.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, RecordBatch, RecordBatchReader, StringArray};
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::EnrichError;
use crate::config::RecipientColumns;
use crate::ingest::rules;
use crate::io::chunks::{Chunk, CsvReader};
use crate::io::input;
use crate::io::table::NdjsonWriter;
use crate::names::{LegalForm, Normalizer};

/// Columns of the recipients table, in this order.
pub const COLUMNS: [&str; 8] = [
    "recipient_name",
    "recipient_uei",
    "recipient_duns",
    "parent_name",
    "parent_uei",
    "city",
    "state",
    "zip",
];
const REQUIRED: usize = 3;

/// The loaded recipients, column-oriented; row `i` is recipient `i`.
#[derive(Debug)]
pub struct Recipients {
    /// The eight [`COLUMNS`].
    pub columns: Vec<StringArray>,
    /// Normalised names.
    pub norm: StringArray,
    /// The legal form each name ended in.
    pub forms: Vec<Option<LegalForm>>,
}

impl Recipients {
    /// Number of recipients.
    pub fn len(&self) -> usize {
        self.norm.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `c` (index into [`COLUMNS`]) of recipient `i`.
    pub fn get(&self, c: usize, i: u32) -> Option<&str> {
        let col = &self.columns[c];
        (!col.is_null(i as usize)).then(|| col.value(i as usize))
    }

    pub fn name(&self, i: u32) -> Option<&str> {
        self.get(0, i)
    }
    pub fn uei(&self, i: u32) -> Option<&str> {
        self.get(1, i)
    }
    pub fn state(&self, i: u32) -> Option<&str> {
        self.get(6, i)
    }
    pub fn city(&self, i: u32) -> Option<&str> {
        self.get(5, i)
    }
    pub fn norm(&self, i: u32) -> &str {
        self.norm.value(i as usize)
    }
    pub fn form(&self, i: u32) -> Option<LegalForm> {
        self.forms[i as usize]
    }
}

/// Counts from loading, for the checks file.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub rows: u64,
    pub loaded: u64,
    pub rejected: u64,
    /// Rows whose UEI an earlier row already had: they stay loaded (a name can still match)
    /// but the UEI and DUNS lookups keep the first row in file order.
    pub duplicate_uei: u64,
    pub duplicate_duns: u64,
    pub without_uei: u64,
}

#[derive(Serialize)]
struct Reject<'a> {
    line: u64,
    reasons: Vec<String>,
    raw: HashMap<&'a str, &'a str>,
}

struct Loader<'n> {
    builders: Vec<StringBuilder>,
    norm: StringBuilder,
    forms: Vec<Option<LegalForm>>,
    normalizer: &'n Normalizer,
    report: LoadReport,
}

impl Loader<'_> {
    /// Validates and appends one row given as the eight column values.
    fn push(
        &mut self,
        line: u64,
        values: [&str; 8],
        rejects: &mut NdjsonWriter,
    ) -> Result<(), EnrichError> {
        self.report.rows += 1;
        let v = values.map(str::trim);
        let mut reasons = Vec::new();
        let uei = rules::uei(v[1])
            .map(|u| u.map(|(u, _)| u.into_owned()))
            .unwrap_or_else(|p| {
                reasons.push(format!(
                    "recipient_uei: {} (expected {})",
                    p.code, p.expected
                ));
                None
            });
        let duns = rules::duns(v[2])
            .map(|d| d.map(|(d, _)| d.into_owned()))
            .unwrap_or_else(|p| {
                reasons.push(format!(
                    "recipient_duns: {} (expected {})",
                    p.code, p.expected
                ));
                None
            });
        let (norm, form) = self.normalizer.normalize_with_form(v[0]);
        if norm.is_empty() && uei.is_none() && duns.is_none() {
            reasons.push("no usable name, UEI or DUNS".to_string());
        }
        if !reasons.is_empty() {
            self.report.rejected += 1;
            let raw = COLUMNS.iter().copied().zip(values).collect();
            rejects.write(&Reject { line, reasons, raw })?;
            return Ok(());
        }
        self.report.loaded += 1;
        self.report.without_uei += uei.is_none() as u64;
        let opt = |s: &str| (!s.is_empty()).then_some(s.to_string());
        let cleaned = [
            opt(v[0]),
            uei,
            duns,
            opt(v[3]),
            rules::uei(v[4]).ok().flatten().map(|(u, _)| u.into_owned()),
            opt(&v[5].to_ascii_uppercase()),
            opt(&v[6].to_ascii_uppercase()),
            opt(v[7]),
        ];
        for (b, value) in self.builders.iter_mut().zip(cleaned) {
            b.append_option(value);
        }
        self.norm.append_value(norm);
        self.forms.push(form);
        Ok(())
    }
}

/// Finds each column's position among `headers` by the accepted spellings.
fn resolve(
    path: &Path,
    headers: &[String],
    spellings: &RecipientColumns,
) -> Result<[Option<usize>; 8], EnrichError> {
    let lists = [
        &spellings.recipient_name,
        &spellings.recipient_uei,
        &spellings.recipient_duns,
        &spellings.parent_name,
        &spellings.parent_uei,
        &spellings.city,
        &spellings.state,
        &spellings.zip,
    ];
    let norm: Vec<String> = headers
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let pos: Vec<Option<usize>> = lists
        .iter()
        .map(|names| {
            names
                .iter()
                .find_map(|n| norm.iter().position(|h| *h == n.to_ascii_lowercase()))
        })
        .collect();
    let missing: Vec<String> = (0..REQUIRED)
        .filter(|&c| pos[c].is_none())
        .map(|c| COLUMNS[c].to_string())
        .collect();
    if !missing.is_empty() {
        return Err(EnrichError::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: headers.to_vec(),
        });
    }
    Ok(pos.try_into().expect("eight columns"))
}

/// Loads recipients from CSV (plain or gzip) or Parquet (by its `PAR1` magic), writing rejected
/// rows to `rejects`.
pub fn load(
    path: &Path,
    spellings: &RecipientColumns,
    normalizer: &Normalizer,
    rejects: &mut NdjsonWriter,
) -> Result<(Recipients, LoadReport, input::InputInfo), EnrichError> {
    let mut loader = Loader {
        builders: (0..8).map(|_| StringBuilder::new()).collect(),
        norm: StringBuilder::new(),
        forms: Vec::new(),
        normalizer,
        report: LoadReport::default(),
    };
    let is_parquet = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut magic).map(|_| &magic == b"PAR1")
        })
        .unwrap_or(false);
    let info = if is_parquet {
        load_parquet(path, spellings, &mut loader, rejects)?
    } else {
        load_csv(path, spellings, &mut loader, rejects)?
    };
    let columns = loader.builders.iter_mut().map(|b| b.finish()).collect();
    let recipients = Recipients {
        columns,
        norm: loader.norm.finish(),
        forms: loader.forms,
    };
    Ok((recipients, loader.report, info))
}

fn load_csv(
    path: &Path,
    spellings: &RecipientColumns,
    loader: &mut Loader,
    rejects: &mut NdjsonWriter,
) -> Result<input::InputInfo, EnrichError> {
    let (stream, fingerprint) = input::open(path)?;
    let mut reader = CsvReader::new(stream);
    let mut read = |chunk: &mut Chunk| {
        chunk.clear();
        reader.read_into(chunk).map_err(|e| EnrichError::Read {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", reader.line()),
        })
    };
    let mut chunk = Chunk::default();
    let headers: Vec<String> = if read(&mut chunk)? {
        let (names, _) = chunk.record(0).decode();
        names.into_iter().map(Cow::into_owned).collect()
    } else {
        Vec::new()
    };
    let pos = resolve(path, &headers, spellings)?;
    while read(&mut chunk)? {
        let record = chunk.record(0);
        let (fields, _) = record.decode();
        let values = pos.map(|p| {
            p.and_then(|i| fields.get(i))
                .map(|f| f.as_ref())
                .unwrap_or("")
        });
        loader.push(record.line, values, rejects)?;
    }
    let (sha256, bytes) = fingerprint.finish();
    Ok(input::InputInfo {
        path: path.to_path_buf(),
        bytes,
        rows: loader.report.rows,
        sha256,
    })
}

fn load_parquet(
    path: &Path,
    spellings: &RecipientColumns,
    loader: &mut Loader,
    rejects: &mut NdjsonWriter,
) -> Result<input::InputInfo, EnrichError> {
    let read_err = |e: &dyn std::fmt::Display| EnrichError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| read_err(&e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 8192)
        .map_err(|e| read_err(&e))?;
    let headers: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let pos = resolve(path, &headers, spellings)?;
    let mut line = 0;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| read_err(&e))?;
        let cols: Vec<Option<StringArray>> = pos
            .iter()
            .map(|p| {
                p.map(|i| arrow_cast_to_strings(batch.column(i)))
                    .transpose()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| read_err(&e))?;
        for row in 0..batch.num_rows() {
            line += 1;
            let values = std::array::from_fn(|c| match &cols[c] {
                Some(a) if !a.is_null(row) => a.value(row),
                _ => "",
            });
            loader.push(line, values, rejects)?;
        }
    }
    let sha256 = input::sha256_file(path)?;
    Ok(input::InputInfo {
        path: path.to_path_buf(),
        bytes,
        rows: loader.report.rows,
        sha256,
    })
}

fn arrow_cast_to_strings(array: &arrow_array::ArrayRef) -> Result<StringArray, String> {
    array
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| {
            format!(
                "column of type {} where text was expected",
                array.data_type()
            )
        })
}

/// Lookup structures over [`Recipients`].
#[derive(Debug)]
pub struct RecipientIndex {
    pub recipients: Recipients,
    uei: HashMap<u64, u32>,
    duns: HashMap<u64, u32>,
    /// Sorted distinct key hashes; postings of `keys[k]` are `postings[offsets[k]..offsets[k+1]]`.
    keys: Vec<u64>,
    offsets: Vec<u32>,
    postings: Vec<u32>,
    /// Recipients whose normalised name holds each word (by word hash), for word weights.
    word_counts: HashMap<u64, u32>,
}

/// The blocking keys of a normalised name: each token, each adjacent token pair, and each
/// adjacent pair of 3-letter prefixes and of 3-letter suffixes (so one typo rarely loses every
/// key); a single-token name also gets its 4-letter prefix and suffix.
pub fn blocking_keys(norm: &str, out: &mut Vec<u64>) {
    let toks: Vec<&str> = norm.split(' ').filter(|t| !t.is_empty()).collect();
    let mut key = |tag: &[u8], parts: &[&str]| {
        let mut buf = Vec::with_capacity(32);
        buf.extend_from_slice(tag);
        for p in parts {
            buf.push(0);
            buf.extend_from_slice(p.as_bytes());
        }
        out.push(xxh3_64(&buf));
    };
    for t in &toks {
        key(b"T", &[t]);
    }
    for w in toks.windows(2) {
        key(b"P", &[w[0], w[1]]);
        key(b"Q", &[head(w[0], 3), head(w[1], 3)]);
        key(b"S", &[tail(w[0], 3), tail(w[1], 3)]);
    }
    if toks.len() == 1 && toks[0].len() >= 6 {
        key(b"A", &[head(toks[0], 4)]);
        key(b"Z", &[tail(toks[0], 4)]);
    }
}

fn head(t: &str, n: usize) -> &str {
    &t[..t.len().min(n)]
}

fn tail(t: &str, n: usize) -> &str {
    &t[t.len().saturating_sub(n)..]
}

fn exact_key(norm: &str) -> u64 {
    let mut buf = b"N\0".to_vec();
    buf.extend_from_slice(norm.as_bytes());
    xxh3_64(&buf)
}

fn word_key(word: &str) -> u64 {
    xxh3_64(word.as_bytes())
}

fn id_key(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

impl RecipientIndex {
    /// Builds the identifier maps and the name/blocking postings (in parallel).
    pub fn build(recipients: Recipients, report: &mut LoadReport) -> Self {
        let n = recipients.len() as u32;
        let (mut uei, mut duns) = (HashMap::new(), HashMap::new());
        for i in 0..n {
            if let Some(u) = recipients.get(1, i) {
                let slot = uei.entry(id_key(u)).or_insert(i);
                report.duplicate_uei += (*slot != i) as u64;
            }
            if let Some(d) = recipients.get(2, i) {
                let slot = duns.entry(id_key(d)).or_insert(i);
                report.duplicate_duns += (*slot != i) as u64;
            }
        }
        let mut words: Vec<u64> = (0..n)
            .into_par_iter()
            .fold(Vec::new, |mut acc, i| {
                let norm = recipients.norm(i).split_ascii_whitespace();
                let mut w: Vec<u64> = norm.map(word_key).collect();
                w.sort_unstable();
                w.dedup();
                acc.extend(w);
                acc
            })
            .reduce(Vec::new, |mut a, mut b| {
                a.append(&mut b);
                a
            });
        words.par_sort_unstable();
        let mut word_counts = HashMap::new();
        for run in words.chunk_by(|a, b| a == b) {
            word_counts.insert(run[0], run.len() as u32);
        }
        let mut pairs: Vec<(u64, u32)> = (0..n)
            .into_par_iter()
            .fold(Vec::new, |mut acc, i| {
                let norm = recipients.norm(i);
                if !norm.is_empty() {
                    let mut keys = vec![exact_key(norm)];
                    blocking_keys(norm, &mut keys);
                    keys.sort_unstable();
                    keys.dedup();
                    acc.extend(keys.into_iter().map(|k| (k, i)));
                }
                acc
            })
            .reduce(Vec::new, |mut a, mut b| {
                a.append(&mut b);
                a
            });
        pairs.par_sort_unstable();
        let mut keys = Vec::new();
        let mut offsets = Vec::new();
        let mut postings = Vec::with_capacity(pairs.len());
        for (k, i) in pairs {
            if keys.last() != Some(&k) {
                keys.push(k);
                offsets.push(postings.len() as u32);
            }
            postings.push(i);
        }
        offsets.push(postings.len() as u32);
        Self {
            recipients,
            uei,
            duns,
            keys,
            offsets,
            postings,
            word_counts,
        }
    }

    /// The weight of a word of a normalised name: high for words few recipients use.
    pub fn word_weight(&self, word: &str) -> f64 {
        let df = self.word_counts.get(&word_key(word)).copied().unwrap_or(0);
        super::weighted::idf(df, self.recipients.len())
    }

    /// The recipient with this UEI (first in file order).
    pub fn by_uei(&self, uei: &str) -> Option<u32> {
        self.uei
            .get(&id_key(uei))
            .copied()
            .filter(|&i| self.recipients.get(1, i) == Some(uei))
    }

    /// The recipient with this DUNS (first in file order).
    pub fn by_duns(&self, duns: &str) -> Option<u32> {
        self.duns
            .get(&id_key(duns))
            .copied()
            .filter(|&i| self.recipients.get(2, i) == Some(duns))
    }

    /// Recipients whose normalised name equals `norm`.
    pub fn by_name(&self, norm: &str) -> Vec<u32> {
        self.postings_of(exact_key(norm))
            .iter()
            .copied()
            .filter(|&i| self.recipients.norm(i) == norm)
            .collect()
    }

    /// The postings of a key hash (empty when absent).
    pub fn postings_of(&self, key: u64) -> &[u32] {
        match self.keys.binary_search(&key) {
            Ok(k) => &self.postings[self.offsets[k] as usize..self.offsets[k + 1] as usize],
            Err(_) => &[],
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An index over a recipients file, built as enrich builds it, with what built it.
    pub(crate) struct ScratchIndex {
        pub settings: crate::config::EnrichSettings,
        pub normalizer: Normalizer,
        pub index: RecipientIndex,
        pub report: LoadReport,
        /// The reject lines written.
        pub rejected: Vec<String>,
    }

    /// Builds the index over `csv` (a recipients file) in a scratch folder of its own (tests
    /// run in parallel), with the default settings.
    pub(crate) fn scratch_index(csv: &str) -> ScratchIndex {
        let settings = crate::config::load(&crate::config::Sources::default())
            .unwrap()
            .settings
            .enrich;
        let normalizer = Normalizer::new(&settings.name_rules);
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "sbir-recipients-{}-{call}-{:x}",
            std::process::id(),
            xxh3_64(csv.as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("r.csv"), csv).unwrap();
        let (index, report, _, rejects) = crate::enrich::build_index(
            &dir.join("r.csv"),
            &settings,
            &normalizer,
            &dir.join("rej.ndjson"),
        )
        .unwrap();
        let rejected = std::fs::read_to_string(rejects)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        ScratchIndex {
            settings,
            normalizer,
            index,
            report,
            rejected,
        }
    }

    fn index(csv: &str) -> (RecipientIndex, LoadReport, Vec<String>) {
        let s = scratch_index(csv);
        (s.index, s.report, s.rejected)
    }

    const CSV: &str = "legal_business_name,uei,duns,state\n\
        \"Acme Photonics, Inc.\",ABC123DEF456,123456789,MA\n\
        ACME PHOTONICS LLC,ABC123DEF456,,TX\n\
        Beta Robotics,BBB222CCC333,987654321,OH\n\
        Gamma Technologies,GGG444HHH555,,CA\n\
        Delta Technologies,DDD444HHH555,,CA\n\
        ,,,\n\
        Zeta,BAD-UEI,,\n";

    #[test]
    fn rows_are_validated_rejected_with_reasons_and_counted() {
        let (index, report, rejected) = index(CSV);
        assert_eq!((report.rows, report.loaded, report.rejected), (7, 5, 2));
        assert_eq!(report.duplicate_uei, 1);
        assert_eq!(index.recipients.len(), 5);
        assert!(
            rejected.iter().any(|r| r.contains("no usable name")),
            "{rejected:?}"
        );
        assert!(
            rejected
                .iter()
                .any(|r| r.contains("recipient_uei") && r.contains("BAD-UEI"))
        );
    }

    #[test]
    fn identifiers_and_names_find_their_rows() {
        let (index, ..) = index(CSV);
        // A UEI seen twice resolves to its first row; a name to every row that has it.
        assert_eq!(index.by_uei("ABC123DEF456"), Some(0));
        assert_eq!(index.by_duns("987654321"), Some(2));
        assert_eq!(index.by_uei("ZZZ999ZZZ999"), None);
        assert_eq!(index.by_name("ACME PHOTONIC"), vec![0, 1]);
        assert!(index.by_name("ACME").is_empty());
        assert_eq!(index.recipients.state(1), Some("TX"));
    }

    #[test]
    fn blocking_keys_survive_one_typo_and_common_words_weigh_less() {
        let (index, ..) = index(CSV);
        let keys = |n: &str| {
            let mut k = Vec::new();
            blocking_keys(n, &mut k);
            k
        };
        // "BETA ROBOTC" (a typo) still shares the BETA token and the prefix pair with the row.
        let shared = keys("BETA ROBOTC")
            .into_iter()
            .filter(|k| index.postings_of(*k).contains(&2))
            .count();
        assert!(shared >= 2, "{shared}");
        assert!(index.word_weight("TECHNOLOGY") < index.word_weight("GAMMA"));
        assert!(index.word_weight("GAMMA") < index.word_weight("NOWHERE"));
    }
}
