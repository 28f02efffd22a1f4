//! One module per subcommand: each turns its flags and the settings into a library call,
//! writes the outputs and returns the stage status. Shared here: the run environment,
//! logging set-up and progress display.

pub mod benchmark;
pub mod classify_cet;
pub mod config;
pub mod embed;
pub mod enrich;
pub mod ingest;
pub mod load_neo4j;
pub mod output;
pub mod prepare_assets;
pub mod run;
pub mod sample_data;

pub use output::OutputArgs;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sbir::config::{LogFormat, Settings};
use sbir::io::checks::RunContext;
use sbir::progress::Progress;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_indicatif::style::ProgressStyle;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What every subcommand gets: validated settings and the identity of this run.
pub struct Env {
    pub loaded: sbir::config::Loaded,
    pub ctx: RunContext,
    pub quiet: bool,
    bars: bool,
}

impl Env {
    /// Sets up logging from the settings and returns the environment.
    pub fn new(loaded: sbir::config::Loaded, quiet: bool, verbose: u8) -> Self {
        let bars = !quiet && std::io::stderr().is_terminal();
        init_logging(&loaded.settings, quiet, verbose, bars);
        let ctx = RunContext::new(loaded.digest());
        Self {
            loaded,
            ctx,
            quiet,
            bars,
        }
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.loaded.settings
    }

    /// The same environment with settings changed by `change` (for a stage that `sbir run`
    /// points elsewhere); logging is already set up.
    pub fn with_settings(&self, change: impl FnOnce(&mut Settings)) -> Env {
        let mut loaded = self.loaded.clone();
        change(&mut loaded.settings);
        Env {
            loaded,
            ctx: self.ctx.clone(),
            quiet: self.quiet,
            bars: self.bars,
        }
    }

    /// Runs `work` with progress for `stage`: a bar on a terminal, periodic log lines
    /// otherwise, nothing with `--quiet`. The stage's span is entered for the whole call.
    pub fn with_progress<R>(
        &self,
        stage: &'static str,
        unit: &'static str,
        work: impl FnOnce(&dyn Progress) -> R,
    ) -> R {
        // `stage`, not `name`: JSON logs already give the span's own name under `name`.
        let span = tracing::info_span!("stage", stage);
        let _entered = span.enter();
        if self.quiet {
            return work(&sbir::progress::NoProgress);
        }
        if self.bars {
            span.pb_set_style(
                &ProgressStyle::with_template(&format!(
                    "{{spinner}} {stage}: {{human_pos}} {unit} ({{per_sec}}, {{elapsed}})"
                ))
                .expect("valid template"),
            );
            return work(&Bar {
                span: span.clone(),
                stage,
                unit,
            });
        }
        // 0: a line at every step (tests, short inputs).
        let interval = Duration::from_secs(self.settings().logging.progress_interval_s);
        work(&LogLines::new(stage, unit, interval))
    }
}

/// A spinner with a count and rate; once the total is known, a bar with percentage and ETA.
struct Bar {
    span: tracing::Span,
    stage: &'static str,
    unit: &'static str,
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        let template = match self.unit {
            BYTES => format!(
                "{} {{wide_bar}} {{binary_bytes}}/{{binary_total_bytes}} {{percent}}% ({{binary_bytes_per_sec}}, ETA {{eta}})",
                self.stage
            ),
            unit => format!(
                "{} {{wide_bar}} {{human_pos}}/{{human_len}} {unit} {{percent}}% ({{per_sec}}, ETA {{eta}})",
                self.stage
            ),
        };
        self.span
            .pb_set_style(&ProgressStyle::with_template(&template).expect("valid template"));
        self.span.pb_set_length(total);
    }
    fn inc(&self, n: u64) {
        self.span.pb_inc(n);
    }
}

/// The progress unit counted in bytes of input, shown as MiB.
const BYTES: &str = "bytes";

/// `n` in the progress unit: MiB for bytes, else the number.
fn amount(n: u64, unit: &str) -> String {
    match unit {
        BYTES => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
        unit => format!("{n} {unit}"),
    }
}

/// Progress as a log line every `interval`, for CI logs and notebooks.
struct LogLines {
    stage: &'static str,
    unit: &'static str,
    interval: Duration,
    start: Instant,
    last: Mutex<Instant>,
    done: AtomicU64,
    /// 0 while unknown.
    total: AtomicU64,
}

impl LogLines {
    fn new(stage: &'static str, unit: &'static str, interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            stage,
            unit,
            interval,
            start: now,
            last: Mutex::new(now),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl Progress for LogLines {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let mut last = self.last.lock().expect("progress lock");
        if last.elapsed() >= self.interval {
            *last = Instant::now();
            let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
            let (stage, unit) = (self.stage, self.unit);
            let per_s = match unit {
                BYTES => format!("{}/s", amount(rate as u64, unit)),
                _ => format!("{rate:.0}/s"),
            };
            match self.total.load(Ordering::Relaxed) {
                0 => tracing::info!("{stage}: {} so far ({per_s})", amount(done, unit)),
                total => {
                    let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
                    let pct = 100.0 * done as f64 / total as f64;
                    // "3.1 MiB of 8.0 MiB", "16384 of 29788 awards".
                    let done = match unit {
                        BYTES => amount(done, unit),
                        _ => done.to_string(),
                    };
                    let total = amount(total, unit);
                    tracing::info!(
                        "{stage}: {done} of {total} ({pct:.0} %, {per_s}, ETA {eta:.0} s)"
                    );
                }
            }
        }
    }
}

/// Set once logs go out as JSON lines, so the final error line can be one too.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True when logging was set up to write JSON lines.
pub fn json_logs() -> bool {
    JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed)
}

fn init_logging(settings: &Settings, quiet: bool, verbose: u8, bars: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => settings.logging.level.as_str(),
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = settings.logging.format == LogFormat::Json;
    JSON_LOGS.store(json, std::sync::atomic::Ordering::Relaxed);
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    if bars && json {
        let layer = IndicatifLayer::new();
        let writer = layer.get_stderr_writer();
        registry
            .with(fmt.json().with_writer(writer))
            .with(layer)
            .init();
    } else if bars {
        let layer = IndicatifLayer::new();
        let writer = layer.get_stderr_writer();
        registry.with(fmt.with_writer(writer)).with(layer).init();
    } else if json {
        registry
            .with(fmt.json().with_writer(std::io::stderr))
            .init();
    } else {
        registry
            .with(fmt.with_ansi(false).with_writer(std::io::stderr))
            .init();
    }
}

/// Writes to stdout (a newline after when `newline`). A reader that has gone (`sbir … | head`)
/// is not an error: the rest of the output is dropped and the exit code stays the command's own
/// (a failed gate still exits 3).
pub fn print_out(args: std::fmt::Arguments, newline: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Reports a finished stage: each checks file's verdict and figures in the log, every output
/// path on stdout; returns the worst status.
pub fn finish<R>(done: &sbir::stages::Done<R>) -> std::io::Result<sbir::io::checks::Status> {
    done.checks.iter().try_for_each(report)?;
    Ok(done.status())
}

/// Logs one checks file's verdict and figures and prints its outputs and its own path.
fn report(w: &sbir::stages::Written) -> std::io::Result<()> {
    use sbir::io::checks::Status;
    let checks = &w.checks;
    match (checks.status, &checks.reason) {
        (Status::Fail, Some(r)) => tracing::error!("{}: quality gate failed: {r}", checks.stage),
        (Status::Warn, Some(r)) => tracing::warn!("{}: {r}", checks.stage),
        _ => {}
    }
    let m = &checks.metrics;
    let status = checks.status.as_str();
    // What an analyst asks first: the stage's counts (rows, rejects, duplicates, links,
    // classified…) and its gates with their thresholds.
    let counts: Vec<String> = checks
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let gates: Vec<String> = checks.gates.iter().map(|g| g.figure()).collect();
    let (counts, gates) = (counts.join(", "), gates.join(", "));
    // The figures as fields too, for --log-format json.
    tracing::info!(
        stage = checks.stage.as_str(),
        records = m.records,
        duration_s = m.duration_s,
        records_per_s = m.records_per_s,
        peak_rss_mb = m.peak_rss_mb.unwrap_or_default(),
        status,
        counts,
        gates,
        "{}: {} records in {:.2}s ({:.0}/s, peak RSS {:.0} MB), status {status}; {counts}; {gates}",
        checks.stage,
        m.records,
        m.duration_s,
        m.records_per_s,
        m.peak_rss_mb.unwrap_or_default(),
    );
    // The written paths are data (stdout), printed even with --quiet.
    for p in checks.outputs.iter().chain(std::iter::once(&w.path)) {
        outln!("{}", p.display())?;
    }
    Ok(())
}
