//! How library stages report progress without knowing about terminals: the binary passes an
//! implementation (a progress bar, or periodic log lines) and the stage calls it.

/// Receives progress from a running stage. Implementations must be cheap to call.
pub trait Progress: Send + Sync {
    /// The total amount of work, when known.
    fn set_total(&self, _total: u64) {}
    /// `n` more units done.
    fn inc(&self, n: u64);
}

/// Progress that goes nowhere (tests, library callers that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn inc(&self, _n: u64) {}
}
