//! `sbir benchmark`: run stages in-process on generated (fixed seed) or given inputs, K times
//! each with the stage timer, and record time, memory and quality per stage in a
//! schema-versioned report; compare with a baseline ([`compare`]) and draw the history
//! ([`html`]).
//!
//! Each stage runs as its command runs it ([`crate::stages`]), in a scratch folder; adding a
//! stage is one [`Stage`] variant and one arm in `Runner::run_stage`.

pub mod compare;
pub mod history;
pub mod html;
pub mod pair;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cet;
use crate::config::Settings;
use crate::io::IoError;
use crate::io::checks::RunContext;
use crate::io::chunks::{Chunk, CsvReader};
use crate::metrics::{self, StageMetrics, StageTimer};
use crate::metrics::{ratio, round};
use crate::progress::NoProgress;
use crate::sample::{self, SampleOptions};
use crate::stages::{self, Layout};

/// Format of the benchmark report; bumped when a field changes meaning.
pub const SCHEMA_VERSION: &str = "sbir-benchmark-1";

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("stage {stage}: {message}")]
    Stage {
        stage: &'static str,
        message: String,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl BenchError {
    fn stage(stage: Stage, e: impl std::fmt::Display) -> Self {
        Self::Stage {
            stage: stage.name(),
            message: e.to_string(),
        }
    }

    /// Errors caused by what the user gave (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Input(_))
    }
}

/// A stage the benchmark can run, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stage {
    Ingest,
    Enrich,
    ClassifyCet,
    Embed,
    LoadNeo4jExport,
}

impl Stage {
    /// Every stage, in the order they run.
    pub const ALL: [Stage; 5] = [
        Stage::Ingest,
        Stage::Enrich,
        Stage::ClassifyCet,
        Stage::Embed,
        Stage::LoadNeo4jExport,
    ];

    /// The stage's name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Enrich => "enrich",
            Stage::ClassifyCet => "classify-cet",
            Stage::Embed => "embed",
            Stage::LoadNeo4jExport => "load-neo4j-export",
        }
    }
}

/// The inputs: the awards CSV, the recipients file, and (when known) the truth and labels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inputs {
    pub dir: PathBuf,
    /// Awards and recipients generated with this seed, when generated.
    pub generated: Option<Generated>,
    pub awards_rows: u64,
    pub awards_sha256: String,
    /// Awards kept by `--sample-size` (all when None).
    pub sample_size: Option<u64>,
}

/// How a generated input was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generated {
    pub awards: u64,
    pub recipients: u64,
    pub seed: u64,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_mb: u64,
    pub os: String,
}

impl Machine {
    /// This machine, from `/proc` and the OS release file where they exist.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb / 1024);
        let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let os = release
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb,
            os,
        }
    }

    /// What must match for two reports to be compared: CPU, cores, memory (to the GiB), OS.
    pub fn fingerprint(&self) -> String {
        format!(
            "{} | {} cores | {} GiB | {}",
            self.cpu_model,
            self.cores,
            (self.memory_mb as f64 / 1024.0).round(),
            self.os
        )
    }
}

/// Minimum, median and maximum of a figure over the repetitions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `xs` (zeros when empty).
    pub fn of(xs: &[f64]) -> Self {
        let mut v: Vec<f64> = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let median = match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Self {
            min: v.first().copied().unwrap_or(0.0),
            median,
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// Labelled counts to draw as bars.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Histogram {
    pub labels: Vec<String>,
    pub counts: Vec<u64>,
}

/// One stage's measurements over its repetitions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StageResult {
    pub stage: String,
    /// Records one run processes.
    pub records: u64,
    pub duration_s: Spread,
    /// Records per second at the median duration.
    pub records_per_s: f64,
    /// Peak RSS of one run (each run's own peak: the counter is reset before it), in MiB.
    pub peak_rss_mb: Spread,
    /// Mean RSS change over a run, in MiB.
    pub avg_rss_delta_mb: f64,
    pub runs: Vec<StageMetrics>,
    /// Quality figures (rates in 0..1, F1 in 0..1) and stage-specific throughput figures.
    pub quality: BTreeMap<String, f64>,
    pub histograms: BTreeMap<String, Histogram>,
    /// Why the stage was not measured, when it was skipped.
    pub skipped: Option<String>,
}

/// The stage timer's own cost, measured by timing it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TimerOverhead {
    /// One start + finish (a clock read and two `/proc/self/status` reads), in microseconds.
    pub per_run_us: f64,
    /// That cost over the shortest median stage duration, in percent.
    pub share_of_shortest_stage_pct: f64,
}

/// A benchmark report (`benchmark_<timestamp>.json`, one line of `history.ndjson`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    pub schema_version: String,
    pub tool_version: String,
    pub git_commit: Option<String>,
    pub created_at: String,
    pub machine: Machine,
    pub settings_digest: String,
    pub inputs: Inputs,
    pub repeat: usize,
    pub stages: Vec<StageResult>,
    pub timer_overhead: TimerOverhead,
}

impl BenchReport {
    /// The result of `stage`, when it ran.
    pub fn stage(&self, stage: &str) -> Option<&StageResult> {
        self.stages
            .iter()
            .find(|s| s.stage == stage && s.skipped.is_none())
    }
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub stages: Vec<Stage>,
    /// A folder with `sbir_awards.csv` and `usaspending_recipients.csv` (and optionally the
    /// truth and labels files), or None to generate them.
    pub input: Option<PathBuf>,
    pub synthetic_awards: u64,
    pub synthetic_recipients: u64,
    pub seed: u64,
    pub sample_size: Option<u64>,
    pub repeat: usize,
    pub settings_digest: String,
    /// The commit measured, when known.
    pub git_commit: Option<String>,
    /// Called before each timed run: the binary hands its allocator's free memory back to the
    /// OS there, so a run's peak RSS is not inflated by what earlier stages left cached.
    pub settle: Option<fn()>,
}

/// Runs the benchmark; `log` hears one line per finished stage.
pub fn run(
    opts: &BenchOptions,
    settings: &Settings,
    log: &dyn Fn(&StageResult),
) -> Result<BenchReport, BenchError> {
    let work = tempfile::tempdir().map_err(|e| IoError::write(Path::new("temp dir"), e))?;
    let (dir, generated) = inputs(opts, work.path())?;
    let awards_csv = dir.join(sample::AWARDS_FILE);
    let mut stages: Vec<Stage> = opts.stages.clone();
    stages.sort();
    stages.dedup();
    // Measured once, outside every timed run.
    let matmul_peak = match stages.contains(&Stage::Embed) {
        true => Some(
            crate::embed::perf::matmul_peak_gflops(&candle_core::Device::Cpu)
                .map_err(|e| BenchError::stage(Stage::Embed, e))?,
        ),
        false => None,
    };
    let runner = Runner {
        settings: scratch_settings(settings, &dir, work.path()),
        ctx: RunContext::new(opts.settings_digest.clone()),
        input: dir.clone(),
        sample_size: opts.sample_size,
        matmul_peak,
        settle: opts.settle,
    };
    let mut results = Vec::new();
    for stage in stages {
        let r = runner.measure(stage, opts.repeat.max(1))?;
        log(&r);
        results.push(r);
    }
    let overhead = timer_overhead(&results);
    let (awards_rows, awards_sha256) = count_rows(&awards_csv)?;
    Ok(BenchReport {
        schema_version: SCHEMA_VERSION.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: opts.git_commit.clone(),
        created_at: crate::io::checks::now_rfc3339(),
        machine: Machine::detect(),
        settings_digest: opts.settings_digest.clone(),
        inputs: Inputs {
            awards_rows,
            awards_sha256,
            dir: if generated.is_some() {
                PathBuf::from("(generated)")
            } else {
                dir
            },
            generated,
            sample_size: opts.sample_size,
        },
        repeat: opts.repeat.max(1),
        stages: results,
        timer_overhead: overhead,
    })
}

/// The folder of inputs: `opts.input`, else awards and recipients generated into
/// `work/input` (with how they were generated). Both files must be there.
pub fn inputs(
    opts: &BenchOptions,
    work: &Path,
) -> Result<(PathBuf, Option<Generated>), BenchError> {
    let (dir, generated) = match &opts.input {
        Some(d) => (d.clone(), None),
        None => {
            let g = Generated {
                awards: opts.synthetic_awards,
                recipients: opts.synthetic_recipients,
                seed: opts.seed,
            };
            let so = SampleOptions {
                awards: g.awards,
                recipients: g.recipients,
                seed: g.seed,
                out_dir: work.join("input"),
            };
            sample::generate(&so, &NoProgress)?;
            (so.out_dir, Some(g))
        }
    };
    for f in [sample::AWARDS_FILE, sample::RECIPIENTS_FILE] {
        if !dir.join(f).is_file() {
            return Err(BenchError::Input(format!(
                "{} is missing: --input must hold {} and {}",
                dir.join(f).display(),
                sample::AWARDS_FILE,
                sample::RECIPIENTS_FILE
            )));
        }
    }
    Ok((dir, generated))
}

/// Data rows of a CSV file (records after the header, read as ingest reads them, so quoted
/// newlines count once) and the SHA-256 of its bytes, in one pass.
fn count_rows(path: &Path) -> Result<(u64, String), BenchError> {
    let (stream, fingerprint) = crate::io::input::open(path)?;
    let mut reader = CsvReader::new(stream);
    let mut record = Chunk::default();
    let mut records: u64 = 0;
    while reader
        .read_into(&mut record)
        .map_err(|e| IoError::read(path, e))?
    {
        records += 1;
        record.clear();
    }
    Ok((records.saturating_sub(1), fingerprint.finish().0))
}

/// Times the timer: 1,000 start/finish pairs.
fn timer_overhead(results: &[StageResult]) -> TimerOverhead {
    const N: u32 = 1000;
    let t = std::time::Instant::now();
    for _ in 0..N {
        std::hint::black_box(StageTimer::start().finish(1));
    }
    let per_run_us = t.elapsed().as_secs_f64() * 1e6 / N as f64;
    let shortest = results
        .iter()
        .filter(|r| r.skipped.is_none() && r.duration_s.median > 0.0)
        .map(|r| r.duration_s.median)
        .fold(f64::INFINITY, f64::min);
    TimerOverhead {
        per_run_us: round(per_run_us, 3),
        share_of_shortest_stage_pct: if shortest.is_finite() {
            round(100.0 * per_run_us / 1e6 / shortest, 5)
        } else {
            0.0
        },
    }
}

/// `settings` pointed at the scratch folder `work`: every stage reads the inputs in `input`
/// and the previous stage's output in `work`, where it writes its own; no graph server.
fn scratch_settings(settings: &Settings, input: &Path, work: &Path) -> Settings {
    let mut s = settings.clone();
    s.paths.processed_dir = work.to_path_buf();
    s.paths.reports_dir = work.join("reports");
    s.ingest.input = input.join(sample::AWARDS_FILE);
    s.enrich.awards = None;
    s.enrich.recipients = input.join(sample::RECIPIENTS_FILE);
    s.cet.awards = None;
    s.neo4j.uri = None;
    s.neo4j.export_dir = work.join("neo4j-import");
    s.neo4j.loaded_dir = work.join("loaded");
    s
}

/// Runs stages, as the commands run them, over the inputs in a scratch folder.
struct Runner {
    settings: Settings,
    ctx: RunContext,
    input: PathBuf,
    sample_size: Option<u64>,
    /// The machine's f32 matmul GFLOP/s, when embed runs.
    matmul_peak: Option<f64>,
    settle: Option<fn()>,
}

/// What one run of a stage reports besides its timing.
struct Outcome {
    records: u64,
    quality: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Histogram>,
}

impl Runner {
    /// Runs `stage` `repeat` times; quality figures come from the last run.
    fn measure(&self, stage: Stage, repeat: usize) -> Result<StageResult, BenchError> {
        let mut runs = Vec::new();
        let mut last = None;
        for _ in 0..repeat {
            if let Some(settle) = self.settle {
                settle();
            }
            metrics::reset_peak_rss();
            let timer = StageTimer::start();
            match self.run_stage(stage)? {
                Ok(o) => {
                    runs.push(timer.finish(o.records));
                    last = Some(o);
                }
                Err(skipped) => {
                    return Ok(StageResult {
                        stage: stage.name().into(),
                        skipped: Some(skipped),
                        ..Default::default()
                    });
                }
            }
        }
        let o = last.expect("repeat >= 1");
        let durations: Vec<f64> = runs.iter().map(|m| m.duration_s).collect();
        let duration_s = Spread::of(&durations);
        let peaks: Vec<f64> = runs.iter().filter_map(|m| m.peak_rss_mb).collect();
        let deltas: Vec<f64> = runs.iter().filter_map(|m| m.rss_delta_mb).collect();
        Ok(StageResult {
            stage: stage.name().into(),
            records: o.records,
            records_per_s: if duration_s.median > 0.0 {
                round(o.records as f64 / duration_s.median, 1)
            } else {
                0.0
            },
            duration_s,
            peak_rss_mb: Spread::of(&peaks),
            avg_rss_delta_mb: round(deltas.iter().sum::<f64>() / deltas.len().max(1) as f64, 3),
            runs,
            quality: o.quality,
            histograms: o.histograms,
            skipped: None,
        })
    }

    fn optional_input(&self, name: &str) -> Option<PathBuf> {
        Some(self.input.join(name)).filter(|p| p.is_file())
    }

    /// Runs a stage once; `Ok(Err(reason))` when it cannot run here (skipped).
    fn run_stage(&self, stage: Stage) -> Result<Result<Outcome, String>, BenchError> {
        let s = &self.settings;
        let layout = Layout::new(s);
        let err = |e: &dyn std::fmt::Display| BenchError::stage(stage, e);
        let needs = |p: PathBuf, what: &str| match p.exists() {
            true => Ok(p),
            false => Err(err(&format!("needs {what}: add it to --stages"))),
        };
        let mut quality = BTreeMap::new();
        let mut histograms = BTreeMap::new();
        let records = match stage {
            Stage::Ingest => {
                let extra = stages::ingest::Extra {
                    limit: None,
                    sample: self.sample_size.map(|n| (n, 42)),
                };
                let done =
                    stages::ingest::run(s, &self.ctx, extra, &NoProgress).map_err(|e| err(&e))?;
                let r = &done.report;
                quality.insert("reject_rate".into(), ratio(r.rejected, r.input_rows));
                r.input_rows
            }
            Stage::Enrich => {
                needs(layout.ingested(), "ingest")?;
                let extra = stages::enrich::Extra {
                    truth: self.optional_input(sample::TRUTH_FILE),
                    ..Default::default()
                };
                let done =
                    stages::enrich::run(s, &self.ctx, &extra, &NoProgress).map_err(|e| err(&e))?;
                let r = &done.report;
                quality.insert("match_rate".into(), r.match_rate);
                if let Some(t) = &r.truth {
                    quality.insert("precision".into(), t.precision);
                    quality.insert("recall".into(), t.recall);
                }
                histograms.insert(
                    "match_methods".into(),
                    Histogram {
                        labels: r.by_method.keys().cloned().collect(),
                        counts: r.by_method.values().copied().collect(),
                    },
                );
                let enriched = crate::io::with_suffix(&layout.enrich_stem(), ".parquet");
                histograms.insert("fuzzy_scores".into(), fuzzy_histogram(&enriched)?);
                r.awards
            }
            Stage::ClassifyCet => {
                let awards = needs(layout.awards(), "ingest")?;
                let done = stages::classify::run(s, &self.ctx, Default::default(), &NoProgress)
                    .map_err(|e| err(&e))?;
                let (r, classifier) = (&done.report.report, &done.report.classifier);
                quality.insert("high_conf_rate".into(), r.high_conf_rate());
                quality.insert("evidence_coverage".into(), r.evidence_coverage());
                quality.insert("classified_rate".into(), r.success_rate());
                let taxonomy = &classifier.taxonomy;
                if let Some(labels) = self.optional_input(sample::LABELS_FILE) {
                    let (docs, _) = cet::labelled::labelled_docs(&labels, taxonomy, &awards, None)
                        .map_err(|e| err(&e))?;
                    if !docs.is_empty() {
                        let v =
                            cet::labelled::embed_docs(classifier, &docs).map_err(|e| err(&e))?;
                        let e = cet::labelled::evaluate_docs(classifier, &docs, v.as_deref());
                        quality.insert("macro_f1".into(), e.macro_avg.f1);
                        quality.insert("top1_accuracy".into(), e.top1_accuracy);
                    }
                }
                let d = cet::read_distribution(&layout.classifications(), taxonomy)
                    .map_err(|e| err(&e))?;
                let mut labels = taxonomy.ids();
                labels.push(cet::eval::NONE.into());
                histograms.insert(
                    "cet_areas".into(),
                    Histogram {
                        labels,
                        counts: d.area_counts.clone(),
                    },
                );
                let n = d.score_bins.len();
                histograms.insert(
                    "cet_scores".into(),
                    Histogram {
                        labels: (0..n)
                            .map(|i| format!("{}-{}", i * 100 / n, (i + 1) * 100 / n))
                            .collect(),
                        counts: d.score_bins.clone(),
                    },
                );
                r.awards
            }
            Stage::Embed => match self.embed(&mut quality)? {
                Ok(n) => n,
                Err(skipped) => return Ok(Err(skipped)),
            },
            Stage::LoadNeo4jExport => {
                needs(layout.classifications(), "classify-cet")?;
                stages::graph::export(s, &self.ctx)
                    .map_err(|e| err(&e))?
                    .report
            }
        };
        Ok(Ok(Outcome {
            records,
            quality,
            histograms,
        }))
    }

    /// Encodes the first `embed_texts` award texts; texts/s, tokens/s and the fraction of
    /// the machine's matmul peak go into `quality`. Skipped when no encoder is found.
    fn embed(
        &self,
        quality: &mut BTreeMap<String, f64>,
    ) -> Result<Result<u64, String>, BenchError> {
        use crate::embed::{embed_texts, open_encoder};
        let s = &self.settings;
        let e = &s.embed;
        let model = match crate::embed::models::lookup(e, &e.model, e.model_dir.as_deref()) {
            Ok(m) => m,
            Err(err) => return Ok(Err(err.to_string())),
        };
        let err = |x: &dyn std::fmt::Display| BenchError::stage(Stage::Embed, x);
        let device = candle_core::Device::Cpu;
        let (encoder, chunker) = open_encoder(&model, &device, e).map_err(|x| err(&x))?;
        let awards = Layout::new(s).ingested();
        if !awards.exists() {
            return Err(err(&"needs ingest: add it to --stages"));
        }
        let mut texts = Vec::new();
        for batch in cet::read_award_batches(&awards, 1024).map_err(|x| err(&x))? {
            for a in batch.map_err(|x| err(&x))? {
                texts.push(cet::embedding::award_text(&a.text()));
                if texts.len() >= s.benchmark.embed_texts {
                    break;
                }
            }
            if texts.len() >= s.benchmark.embed_texts {
                break;
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokens: usize = refs
            .iter()
            .map(|t| chunker.encode(t).map(|ids| ids.len()))
            .sum::<Result<usize, _>>()
            .map_err(|x| err(&x))?;
        let t = std::time::Instant::now();
        embed_texts(&encoder, &chunker, &refs).map_err(|x| err(&x))?;
        let secs = t.elapsed().as_secs_f64().max(1e-9);
        let mean_len = tokens / refs.len().max(1);
        let gflops = tokens as f64 * encoder.flops_per_token(mean_len) / secs / 1e9;
        quality.insert("texts_per_s".into(), round(refs.len() as f64 / secs, 2));
        quality.insert("tokens_per_s".into(), round(tokens as f64 / secs, 1));
        quality.insert("gflops".into(), round(gflops, 2));
        if let Some(peak) = self.matmul_peak {
            quality.insert("matmul_peak_gflops".into(), round(peak, 2));
            quality.insert("fraction_of_matmul_peak".into(), round(gflops / peak, 4));
        }
        Ok(Ok(refs.len() as u64))
    }
}

/// Histogram (ten bins over 0-100) of the fuzzy name-match scores in an enriched file.
fn fuzzy_histogram(path: &Path) -> Result<Histogram, BenchError> {
    #[derive(Deserialize)]
    struct Row {
        _usaspending_match_method: Option<String>,
        _usaspending_match_score: Option<f64>,
    }
    let cols = [
        crate::records::enriched::MATCH_METHOD,
        crate::records::enriched::MATCH_SCORE,
    ];
    let mut counts = vec![0u64; 10];
    for batch in crate::records::read_projected::<Row>(path, &cols, &[], 8192)? {
        for r in batch? {
            if let (Some(m), Some(score)) =
                (r._usaspending_match_method, r._usaspending_match_score)
                && m.starts_with("name-fuzzy")
            {
                // Token-set ratios, 0-100.
                counts[((score / 10.0) as usize).min(9)] += 1;
            }
        }
    }
    Ok(Histogram {
        labels: (0..10)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 10))
            .collect(),
        counts,
    })
}
