//! A scratch directory to run the real `sbir` binary in, after xsv's `tests/workdir.rs`.

use std::path::PathBuf;
use std::process::{Command, Output};

use arrow_array::RecordBatch;

/// A unique temporary folder; the binary runs with it as the working directory.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("sbir-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (parents created).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// `sbir <args>` in this folder, with no `SBIR_*`, `NEO4J_*`, `EMBEDDER_*` or `CET_MODEL_PATH` variables
    /// inherited (tests that want a graph server pass it explicitly).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sbir"));
        c.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("SBIR_")
                || k.starts_with("NEO4J_")
                || k == "RUST_LOG"
                || k.starts_with("EMBEDDER_")
                || k == "CET_MODEL_PATH"
            {
                c.env_remove(k);
            }
        }
        c
    }

    /// [`Workdir::cmd`] that never asks the model hub: models come from this machine only.
    pub fn offline_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        c.env("HF_HUB_OFFLINE", "1");
        c
    }

    /// [`Workdir::offline_cmd`] with an empty Hugging Face cache of its own, so a model can only
    /// come from the project's folders (or its absence be reported).
    pub fn no_hub_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.offline_cmd(args);
        c.env("HF_HOME", self.path("hf")).env_remove("HF_HUB_CACHE");
        c
    }

    /// Runs `cmd` and asserts its exit code, printing everything it said when it differs.
    pub fn run_expect(&self, mut cmd: Command, code: i32) -> Output {
        let out = cmd.output().expect("run sbir");
        let got = out.status.code().unwrap_or(-1);
        assert_eq!(
            got,
            code,
            "exit code {got}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `sbir <args>` expecting exit code `code`.
    pub fn run(&self, args: &[&str], code: i32) -> Output {
        self.run_expect(self.cmd(args), code)
    }

    pub fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Every line of an NDJSON file, parsed.
    pub fn ndjson(&self, rel: &str) -> Vec<serde_json::Value> {
        self.read(rel)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every record batch of a Parquet file.
    pub fn parquet(&self, rel: &str) -> Vec<RecordBatch> {
        let file = std::fs::File::open(self.path(rel)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).unwrap();
        reader.map(|b| b.unwrap()).collect()
    }

    /// Awards read back from `sbir_awards.parquet` in the default output folder.
    pub fn awards(&self) -> Vec<sbir::records::Award> {
        self.parquet("data/processed/sbir_awards.parquet")
            .iter()
            .flat_map(|b| sbir::records::from_batch::<sbir::records::Award>(b).unwrap())
            .collect()
    }

    /// Names of the files in a folder (hidden ones included).
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Whether a run failed only because all-MiniLM-L6-v2 is not cached, so a test needing the
/// real model skips. Under `make test` (SBIR_REQUIRE_MODEL=1, the model fetched first) a
/// missing model fails the test instead.
pub fn real_model_missing(out: &Output) -> bool {
    let missing = out.status.code() == Some(2) && stderr(out).contains("not found");
    if missing {
        assert!(
            std::env::var_os("SBIR_REQUIRE_MODEL").is_none(),
            "SBIR_REQUIRE_MODEL is set but the model is missing: {}",
            stderr(out)
        );
        eprintln!("skipped: all-MiniLM-L6-v2 not cached (scripts/fetch-model.sh)");
    }
    missing
}

/// Stdout of a run as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of a run as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The bulk-file header, in SBIR.gov's order.
pub const HEADER: &[&str] = &[
    "Company",
    "Award Title",
    "Agency",
    "Branch",
    "Phase",
    "Program",
    "Agency Tracking Number",
    "Contract",
    "Proposal Award Date",
    "Contract End Date",
    "Solicitation Number",
    "Solicitation Year",
    "Solicitation Close Date",
    "Proposal Receipt Date",
    "Date of Notification",
    "Topic Code",
    "Award Year",
    "Award Amount",
    "UEI",
    "Duns",
    "HUBZone Owned",
    "Socially and Economically Disadvantaged",
    "Woman Owned",
    "Number Employees",
    "Company Website",
    "Address1",
    "Address2",
    "City",
    "State",
    "Zip",
    "Abstract",
    "Contact Name",
    "Contact Title",
    "Contact Phone",
    "Contact Email",
    "PI Name",
    "PI Title",
    "PI Phone",
    "PI Email",
    "RI Name",
    "RI POC Name",
    "RI POC Phone",
];

/// A valid award row, column by column.
fn default_value(col: &str) -> &'static str {
    match col {
        "Company" => "Acme Photonics, Inc.",
        "Award Title" => "Quantum sensors for navigation",
        "Agency" => "Department of Defense",
        "Branch" => "Air Force",
        "Phase" => "Phase I",
        "Program" => "SBIR",
        "Agency Tracking Number" => "F21-0001",
        "Contract" => "FA8650-21-C-0001",
        "Proposal Award Date" => "2021-06-15",
        "Award Year" => "2021",
        "Award Amount" => "149999.50",
        "UEI" => "ABC123DEF456",
        "Duns" => "123456789",
        "HUBZone Owned" => "N",
        "State" => "Massachusetts",
        "Zip" => "02110",
        "City" => "Boston",
        "Abstract" => "We will build quantum sensors.",
        _ => "",
    }
}

/// Quotes a field for CSV when needed.
fn quote(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// A CSV line of a valid award with `changes` applied (column name → value).
pub fn award_line(changes: &[(&str, &str)]) -> String {
    HEADER
        .iter()
        .map(|h| {
            let v = changes
                .iter()
                .find(|(c, _)| c == h)
                .map(|(_, v)| *v)
                .unwrap_or(default_value(h));
            quote(v)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A whole awards CSV (LF line ends): header plus one line per change set.
pub fn awards_csv(rows: &[&[(&str, &str)]]) -> String {
    let mut s = HEADER.join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&award_line(r));
        s.push('\n');
    }
    s
}
