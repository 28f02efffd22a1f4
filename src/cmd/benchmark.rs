//! `sbir benchmark`: measure stages, write the report and history, compare with the
//! baseline; `sbir benchmark report` draws the history as one HTML page.

use std::path::PathBuf;

use anyhow::Context;
use sbir::bench::compare::{self, Level};
use sbir::bench::{self, BenchError, BenchOptions, Stage, history};
use sbir::config::FlagOverride;
use sbir::io::atomic::write_file;
use sbir::io::checks::Status;

use super::Env;

/// Flags of `sbir benchmark`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  sbir benchmark                                        # every stage, generated input (benchmark.synthetic_*), 3 runs each\n  sbir benchmark --stages ingest,enrich --synthetic-awards 50000 --synthetic-recipients 500000\n  sbir benchmark --input data/sample --repeat 5 --format markdown\n  sbir benchmark --save-as-baseline                     # write reports/benchmarks/baseline.json\n  sbir benchmark report --out reports/benchmarks/report.html"
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Stages to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub stages: Vec<Stage>,
    /// Awards to generate [default: benchmark.synthetic_awards].
    #[arg(long, conflicts_with = "input")]
    pub synthetic_awards: Option<u64>,
    /// Recipients to generate [default: benchmark.synthetic_recipients].
    #[arg(long, conflicts_with = "input")]
    pub synthetic_recipients: Option<u64>,
    /// A folder with sbir_awards.csv and usaspending_recipients.csv (award_recipient_truth.csv
    /// and award_cet_labels.csv, when present, give the quality figures).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Keep a deterministic sample of N awards at ingest.
    #[arg(long)]
    pub sample_size: Option<u64>,
    /// Runs per stage [default: benchmark.repeat].
    #[arg(long)]
    pub repeat: Option<usize>,
    /// The report's path [default: <benchmark.dir>/benchmark_<UTC timestamp>.json].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Baseline to compare with [default: benchmark.baseline, when it exists].
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Also write this report as the baseline (atomically).
    #[arg(long)]
    pub save_as_baseline: bool,
    /// Compare even when the baseline was measured on another machine.
    #[arg(long)]
    pub force_compare: bool,
    /// Measure this build against another one (e.g. the base branch's binary) on the same
    /// inputs in this job, --repeat rounds each in alternating order, instead of against a
    /// saved baseline: the verdicts judge the two builds' ratio with the usual thresholds.
    #[arg(long, value_name = "BINARY", conflicts_with_all = ["baseline", "save_as_baseline"])]
    pub compare_binary: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Output formats of `sbir benchmark`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A line per stage and the verdicts.
    Text,
    /// The report, as written.
    Json,
    /// A pull-request comment: a table per stage with current, baseline, delta and verdict.
    Markdown,
}

/// What `benchmark` does besides measuring.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Draw the history as one self-contained HTML page.
    Report(ReportArgs),
}

/// Flags of `sbir benchmark report`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir benchmark report                                   # <benchmark.dir>/report.html\n  sbir benchmark report --history ci/history.ndjson --out report.html"
)]
pub struct ReportArgs {
    /// History file [default: <benchmark.dir>/history.ndjson].
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// The page [default: <benchmark.dir>/report.html].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        if let Some(n) = self.synthetic_awards {
            o.push(FlagOverride::new(
                "benchmark.synthetic_awards",
                n,
                "--synthetic-awards",
            ));
        }
        if let Some(n) = self.synthetic_recipients {
            o.push(FlagOverride::new(
                "benchmark.synthetic_recipients",
                n,
                "--synthetic-recipients",
            ));
        }
        if let Some(n) = self.repeat {
            o.push(FlagOverride::new("benchmark.repeat", n as u64, "--repeat"));
        }
        o.extend(FlagOverride::path(
            "benchmark.baseline",
            self.baseline.as_deref(),
            "--baseline",
        ));
        o
    }
}

/// Runs `sbir benchmark`.
pub fn run(a: &Args, env: &Env) -> anyhow::Result<Status> {
    if let Some(Action::Report(r)) = &a.action {
        return report(r, env);
    }
    let s = env.settings();
    let b = &s.benchmark;
    // A baseline named but absent is an error, unless this run is to create it.
    if a.baseline.is_some() && !b.baseline.is_file() && !a.save_as_baseline {
        return Err(BenchError::Input(format!("no baseline at {}", b.baseline.display())).into());
    }
    // Read before measuring, so an unreadable baseline costs no benchmark run.
    let baseline = match b.baseline.is_file() {
        true => Some(history::read_report(&b.baseline)?),
        false => None,
    };
    let opts = BenchOptions {
        stages: if a.stages.is_empty() {
            Stage::ALL.to_vec()
        } else {
            a.stages.clone()
        },
        input: a.input.clone(),
        synthetic_awards: b.synthetic_awards,
        synthetic_recipients: b.synthetic_recipients,
        seed: b.seed,
        sample_size: a.sample_size,
        repeat: b.repeat,
        settings_digest: env.ctx.config_digest.clone(),
        git_commit: git_commit(),
        settle: Some(release_free_memory),
    };
    let quiet = env.quiet;
    let (report, cmp) = match &a.compare_binary {
        Some(base) => {
            let current = std::env::current_exe().context("cannot locate this binary")?;
            let (report, base_report) =
                bench::pair::compare_builds(&opts, &current, base, &|build, round| {
                    if !quiet {
                        tracing::info!("benchmark: round {round} of {build:?} done");
                    }
                })?;
            for r in &report.stages {
                log_stage(r, quiet);
            }
            let mut cmp = compare::compare(&report, &base_report, &b.thresholds, true);
            cmp.against = "base build".into();
            (report, Some(cmp))
        }
        None => {
            let report = bench::run(&opts, s, &|r| log_stage(r, quiet))?;
            let cmp = baseline
                .as_ref()
                .map(|base| compare::compare(&report, base, &b.thresholds, a.force_compare));
            (report, cmp)
        }
    };

    let path = a.output.clone().unwrap_or_else(|| {
        b.dir.join(format!(
            "benchmark_{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let json = serde_json::to_vec_pretty(&report)?;
    write_file(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
    history::append(&b.dir.join("history.ndjson"), &report)?;

    if a.save_as_baseline {
        write_file(&b.baseline, &json)
            .with_context(|| format!("cannot write {}", b.baseline.display()))?;
    }
    if let Some(c) = &cmp {
        for w in &c.warnings {
            tracing::warn!("benchmark: {w}");
        }
        for v in c.verdicts.iter().filter(|v| v.level == Level::Failure) {
            tracing::error!(
                "benchmark {} {}: {:.4} against {:.4} in the {} ({:+.2} {})",
                v.stage,
                v.metric,
                v.current,
                v.baseline,
                c.against,
                v.delta,
                v.unit
            );
        }
    }
    match a.format {
        Format::Json => outln!("{}", String::from_utf8_lossy(&json))?,
        Format::Markdown => out!("{}", compare::markdown(&report, cmp.as_ref()))?,
        Format::Text => {
            if !quiet {
                for v in cmp.iter().flat_map(|c| &c.verdicts) {
                    outln!(
                        "{:<18} {:<22} {:>12.4} vs {:>12.4}  {:+.2} {}  {:?}",
                        v.stage,
                        v.metric,
                        v.current,
                        v.baseline,
                        v.delta,
                        v.unit,
                        v.level
                    )?;
                }
            }
            // The written files are data, printed even with --quiet.
            outln!("{}", path.display())?;
            if a.save_as_baseline {
                outln!("{}", b.baseline.display())?;
            }
        }
    }
    Ok(match cmp.map(|c| c.worst()) {
        Some(Level::Failure) => Status::Fail,
        Some(Level::Warning) => Status::Warn,
        _ => Status::Pass,
    })
}

/// One line per measured (or skipped) stage, unless quiet.
fn log_stage(r: &bench::StageResult, quiet: bool) {
    if quiet {
        return;
    }
    match &r.skipped {
        Some(why) => tracing::warn!("benchmark {}: skipped: {why}", r.stage),
        None => tracing::info!(
            "benchmark {}: {} records, median {:.3}s ({:.0}/s), peak RSS {:.0} MB",
            r.stage,
            r.records,
            r.duration_s.median,
            r.records_per_s,
            r.peak_rss_mb.median
        ),
    }
}

/// The commit measured: `SBIR_GIT_COMMIT`, `GITHUB_SHA`, else `git rev-parse HEAD` here.
fn git_commit() -> Option<String> {
    ["SBIR_GIT_COMMIT", "GITHUB_SHA"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
}

/// Returns the memory mimalloc (the binary's allocator) holds free to the OS.
fn release_free_memory() {
    // SAFETY: mi_collect only walks and purges mimalloc's own heaps; it may be called from
    // any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// `sbir benchmark report`.
fn report(a: &ReportArgs, env: &Env) -> anyhow::Result<Status> {
    let b = &env.settings().benchmark;
    let history = a
        .history
        .clone()
        .unwrap_or_else(|| b.dir.join("history.ndjson"));
    let out = a.out.clone().unwrap_or_else(|| b.dir.join("report.html"));
    let runs = history::read(&history)?;
    // The baseline's figures and thresholds are drawn in when it can be read.
    let baseline = b
        .baseline
        .is_file()
        .then(|| history::read_report(&b.baseline))
        .transpose()?;
    let page = bench::html::report(&runs, baseline.as_ref(), &b.thresholds);
    write_file(&out, page.as_bytes()).with_context(|| format!("cannot write {}", out.display()))?;
    outln!("{}", out.display())?;
    Ok(Status::Pass)
}
