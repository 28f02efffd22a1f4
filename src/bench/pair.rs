//! `sbir benchmark --compare-binary`: this build and another one measured in the same job on
//! the same inputs, one process per stage set and round, in alternating order (this, other;
//! other, this; …) so the host's drift weighs on both alike. The rounds of each build merge
//! into one report, compared like a baseline: like with like, whatever the runner.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BenchError, BenchOptions, BenchReport, Spread, Stage, StageResult};
use crate::io::IoError;

/// The two builds and what to run.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// This build's binary.
    pub current: PathBuf,
    /// The build to compare with (e.g. the base branch's).
    pub base: PathBuf,
    pub stages: Vec<Stage>,
    /// A folder with the inputs (`--input` of `sbir benchmark`), the same for both builds.
    pub input: PathBuf,
    pub sample_size: Option<u64>,
    /// Runs of each build; each runs every stage once.
    pub rounds: usize,
    /// Scratch folder for the children's reports.
    pub work: PathBuf,
}

/// Which build a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Current,
    Base,
}

/// Runs both builds `rounds` times, alternating which goes first; `log` hears each finished
/// run. Returns the merged reports of this build and of the base.
pub fn run(
    o: &PairOptions,
    log: &dyn Fn(Build, usize),
) -> Result<(BenchReport, BenchReport), BenchError> {
    let (mut current, mut base) = (Vec::new(), Vec::new());
    for round in 0..o.rounds.max(1) {
        let order = match round % 2 {
            0 => [Build::Current, Build::Base],
            _ => [Build::Base, Build::Current],
        };
        for build in order {
            let (bin, into) = match build {
                Build::Current => (&o.current, &mut current),
                Build::Base => (&o.base, &mut base),
            };
            into.push(run_one(bin, o, &o.work.join(format!("{build:?}-{round}")))?);
            log(build, round + 1);
        }
    }
    Ok((merge(current)?, merge(base)?))
}

/// `opts` measured on `current` (this binary) and `base` alike: inputs prepared once in a
/// scratch folder, then [`run`]. The current report carries `opts`' commit and settings
/// digest (this build measured it), not the child's.
pub fn compare_builds(
    opts: &BenchOptions,
    current: &Path,
    base: &Path,
    log: &dyn Fn(Build, usize),
) -> Result<(BenchReport, BenchReport), BenchError> {
    let work = tempfile::tempdir().map_err(|e| IoError::write(Path::new("temp dir"), e))?;
    let (input, _) = super::inputs(opts, work.path())?;
    let pair = PairOptions {
        current: current.to_path_buf(),
        base: base.to_path_buf(),
        stages: opts.stages.clone(),
        input,
        sample_size: opts.sample_size,
        rounds: opts.repeat,
        work: work.path().join("runs"),
    };
    let (mut current, base) = run(&pair, log)?;
    current.git_commit = opts.git_commit.clone();
    current.settings_digest = opts.settings_digest.clone();
    Ok((current, base))
}

/// One `benchmark` process of `bin` over the inputs, every stage once; its report.
fn run_one(bin: &Path, o: &PairOptions, dir: &Path) -> Result<BenchReport, BenchError> {
    let out = dir.join("report.json");
    let stages: Vec<&str> = o.stages.iter().map(|s| s.name()).collect();
    let mut cmd = Command::new(bin);
    cmd.args(["-q", "benchmark", "--repeat", "1", "--format", "json"])
        .arg("--input")
        .arg(&o.input)
        .arg("--stages")
        .arg(stages.join(","))
        .arg("--output")
        .arg(&out)
        // Its history and no baseline of its own: the pair is the comparison.
        .env("SBIR_ETL__BENCHMARK__DIR", dir)
        .env(
            "SBIR_ETL__BENCHMARK__BASELINE",
            dir.join("no-baseline.json"),
        );
    if let Some(n) = o.sample_size {
        cmd.arg("--sample-size").arg(n.to_string());
    }
    let failed = |why: String| BenchError::Input(format!("{}: {why}", bin.display()));
    let run = cmd
        .output()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if !run.status.success() {
        let err = String::from_utf8_lossy(&run.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(failed(format!(
            "benchmark exited with {}: {}",
            run.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let bytes = std::fs::read(&out).map_err(|e| IoError::read(&out, e))?;
    serde_json::from_slice(&bytes).map_err(|e| failed(format!("its report {}: {e}", out.display())))
}

/// One report from the rounds of one build: per stage, the spread of every round's time and
/// memory (each round ran it once), the quality and histograms of the last round.
pub fn merge(reports: Vec<BenchReport>) -> Result<BenchReport, BenchError> {
    let mut merged = reports
        .last()
        .cloned()
        .ok_or_else(|| BenchError::Input("no benchmark round ran".into()))?;
    for stage in merged.stages.iter_mut().filter(|s| s.skipped.is_none()) {
        let rounds: Vec<&StageResult> = reports
            .iter()
            .filter_map(|r| r.stage(&stage.stage))
            .collect();
        let of = |f: fn(&StageResult) -> f64| {
            Spread::of(&rounds.iter().map(|s| f(s)).collect::<Vec<_>>())
        };
        stage.duration_s = of(|s| s.duration_s.median);
        stage.peak_rss_mb = of(|s| s.peak_rss_mb.median);
        stage.avg_rss_delta_mb = of(|s| s.avg_rss_delta_mb).median;
        stage.records_per_s = match stage.duration_s.median {
            d if d > 0.0 => stage.records as f64 / d,
            _ => 0.0,
        };
        stage.runs = rounds.iter().flat_map(|s| s.runs.clone()).collect();
    }
    merged.repeat = reports.len();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(durations: &[(&str, f64)]) -> BenchReport {
        let mut r: BenchReport =
            serde_json::from_str(include_str!("../../reports/benchmarks/baseline.json")).unwrap();
        r.stages = durations
            .iter()
            .map(|(name, d)| StageResult {
                stage: name.to_string(),
                records: 100,
                duration_s: Spread::of(&[*d]),
                peak_rss_mb: Spread::of(&[10.0 * d]),
                ..Default::default()
            })
            .collect();
        r
    }

    #[test]
    fn rounds_merge_into_the_spread_of_their_medians() {
        let m = merge(vec![
            report(&[("ingest", 2.0), ("enrich", 1.0)]),
            report(&[("ingest", 4.0), ("enrich", 1.0)]),
            report(&[("ingest", 3.0), ("enrich", 1.0)]),
        ])
        .unwrap();
        let ingest = m.stage("ingest").unwrap();
        assert_eq!(
            ingest.duration_s,
            Spread {
                min: 2.0,
                median: 3.0,
                max: 4.0
            }
        );
        assert_eq!(ingest.peak_rss_mb.median, 30.0);
        assert!((ingest.records_per_s - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.repeat, 3);
        assert!(merge(Vec::new()).is_err());
    }
}
