//! `sbir run`: the main job. Runs the pipeline stage by stage (ingest → enrich → classify-cet
//! → load-neo4j) and stops before a stage whose upstream quality gate failed. Without a
//! recipients file for the input, enrich is skipped and companies are keyed by name. It ends
//! with one table of what each stage did, read back from this run's checks files.

use std::path::PathBuf;

use sbir::config::FlagOverride;
use sbir::io::checks::{Checks, Gate, Status};
use sbir::stages::Layout;

use super::Env;
use super::OutputArgs;

/// Flags of `sbir run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sbir run                       # the bundled sample (awards and recipients)\n  sbir run --input award_data.csv --recipients recipient_lookup.csv.gz\n  sbir run --input awards.json   # no recipients: enrich is skipped, companies keyed by name\n  sbir run --env prod"
)]
pub struct Args {
    /// The awards: bulk CSV or SBIR.gov API JSON, plain or gzip [default: ingest.input].
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// USAspending recipients for enrich: CSV, CSV.gz or Parquet [default: enrich.recipients,
    /// the bundled sample's, used only with the bundled awards].
    #[arg(long)]
    pub recipients: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl Args {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = self.output.overrides();
        o.extend(FlagOverride::path(
            "ingest.input",
            self.input.as_deref(),
            "--input",
        ));
        o.extend(FlagOverride::path(
            "enrich.recipients",
            self.recipients.as_deref(),
            "--recipients",
        ));
        o
    }
}

/// Why enrich cannot run for this input, if it cannot: the awards are not the bundled sample
/// but the recipients are still the sample's, or the default recipients file is absent.
fn no_recipients(env: &Env) -> Option<String> {
    let origins = &env.loaded.origins;
    if origins.contains_key("enrich.recipients") {
        return None;
    }
    let recipients = &env.settings().enrich.recipients;
    if origins.contains_key("ingest.input") {
        Some(format!(
            "no recipients file was given for {} ({} belongs to the bundled sample)",
            env.settings().ingest.input.display(),
            recipients.display()
        ))
    } else if !recipients.exists() {
        Some(format!(
            "the recipients file {} does not exist",
            recipients.display()
        ))
    } else {
        None
    }
}

/// Runs every stage in order; the first failed gate stops the chain; then prints the summary.
/// The flags already took effect as settings overrides.
pub fn run(_args: &Args, env: &Env) -> anyhow::Result<Status> {
    let status = stages(env);
    if !env.quiet {
        eprint!("{}", summary(env));
    }
    status
}

/// The checks files this run wrote, in stage order.
fn this_runs_checks(env: &Env) -> Vec<Checks> {
    Layout::new(env.settings())
        .run_checks()
        .iter()
        .filter_map(|p| Checks::read(p).ok())
        .filter(|c| c.run_id == env.ctx.run_id)
        .collect()
}

/// One line per stage: status, records, rejects, its first gate (the stage's key figure),
/// time and peak memory, as dbt ends a run with its models.
fn summary(env: &Env) -> String {
    let mut out = String::from(
        "\nstage                      status  records  rejected  key figure                                   time    peak RSS\n",
    );
    for c in this_runs_checks(env) {
        let gate = c.gates.first().map_or(String::new(), Gate::figure);
        let rejected = c
            .counts
            .get("rejected")
            .or(c.counts.get("recipients_rejected"))
            .map_or("-".to_string(), u64::to_string);
        out.push_str(&format!(
            "{:<26} {:<7} {:>7}  {:>8}  {:<44} {:>6.2}s  {:>5.0} MB\n",
            c.stage,
            c.status.as_str(),
            c.metrics.records,
            rejected,
            gate,
            c.metrics.duration_s,
            c.metrics.peak_rss_mb.unwrap_or_default(),
        ));
    }
    out
}

/// The stage chain itself: each stage as its own command runs it, with default flags.
fn stages(env: &Env) -> anyhow::Result<Status> {
    let status = super::ingest::run(&Default::default(), env)?;
    if status == Status::Fail {
        tracing::error!("run: stopping after ingest: its quality gate failed");
        return Ok(status);
    }
    let skipped = no_recipients(env);
    let unenriched;
    let env = match &skipped {
        Some(why) => {
            tracing::warn!(
                "run: enrich skipped: {why}; companies are keyed by name (pass --recipients FILE to link them to USAspending recipients)"
            );
            // Later stages read this run's ingest output, never an older enrich output.
            let ingested = Layout::new(env.settings()).ingested();
            unenriched = env.with_settings(|s| s.cet.awards = Some(ingested));
            &unenriched
        }
        None => {
            let status = super::enrich::run(&Default::default(), env)?;
            if status == Status::Fail {
                tracing::error!("run: stopping after enrich: its quality gate failed");
                return Ok(status);
            }
            env
        }
    };
    let note = if skipped.is_some() {
        " (enrich skipped: no recipients file)"
    } else {
        ""
    };
    let status = super::classify_cet::run(&Default::default(), env)?;
    if status == Status::Fail {
        tracing::error!("run: stopping after classify-cet: its quality gate failed{note}");
        return Ok(status);
    }
    let status = super::load_neo4j::run(&Default::default(), env)?;
    tracing::info!("run: finished, status {status:?}{note}");
    Ok(status)
}
