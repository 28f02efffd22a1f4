//! Stage timer: wall time, records/s and memory, read from the OS (`/proc/self/status`), so
//! the figures count mmapped files and native allocations, not just the Rust heap.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What one stage run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    pub duration_s: f64,
    pub records: u64,
    pub records_per_s: f64,
    /// Peak resident set size of the process so far (VmHWM), in MiB.
    pub peak_rss_mb: Option<f64>,
    /// Resident set size at the end minus at the start, in MiB.
    pub rss_delta_mb: Option<f64>,
}

/// Started when a stage begins; [`StageTimer::finish`] reads the clock and memory once.
#[derive(Debug, Clone)]
pub struct StageTimer {
    start: Instant,
    rss_start_mb: Option<f64>,
}

impl StageTimer {
    /// Starts timing now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
            rss_start_mb: rss_mb("VmRSS:"),
        }
    }

    /// Seconds since start.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The measurements for a stage that processed `records` records.
    pub fn finish(&self, records: u64) -> StageMetrics {
        let duration_s = self.elapsed_s();
        let rss_end = rss_mb("VmRSS:");
        StageMetrics {
            duration_s: round(duration_s, 3),
            records,
            records_per_s: if duration_s > 0.0 {
                (records as f64 / duration_s).round()
            } else {
                0.0
            },
            peak_rss_mb: peak_rss_mb(),
            rss_delta_mb: rss_end.zip(self.rss_start_mb).map(|(e, s)| round(e - s, 3)),
        }
    }
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if the OS reports it.
pub fn peak_rss_mb() -> Option<f64> {
    rss_mb("VmHWM:")
}

/// Resets the peak RSS counter so the next stage measures its own peak (Linux ≥ 4.0).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn rss_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(round(kb / 1024.0, 3))
}

/// Rounds a reported figure to two decimals (scores are reported, not computed with, at this
/// precision).
pub fn round2(x: f64) -> f64 {
    round(x, 2)
}

/// Rounds a reported figure to `places` decimals.
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `a / b`, or 0 when `b` is 0 (a rate over an empty set).
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_grows_with_a_touched_allocation() {
        let before = peak_rss_mb().expect("Linux reports VmHWM");
        let big = vec![1u8; 64 << 20];
        let after = peak_rss_mb().unwrap();
        assert!(big.iter().map(|&b| b as u64).sum::<u64>() > 0);
        assert!(after >= before + 32.0, "before {before} after {after}");
    }
}
