//! How a command ended: its exit status, and what it observed on the way
//! (for `--metrics`).

use std::process::ExitCode;

/// How a run ended, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done, or nothing to do.
    Success = 0,
    /// Some promotion failed or was refused.
    Failure = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// `plan --detailed-exitcode`: changes are pending.
    Changes = 3,
    /// Stopped by SIGINT (128 + 2) after finishing what was in flight.
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15) after finishing what was in flight.
    Terminated = 143,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

/// What `apply` and `verify` found, as far as they got: their metrics.
#[derive(Default)]
pub struct Observed {
    /// `apply`'s report, once it ran.
    pub report: Option<crate::execute::ApplyReport>,
    /// `verify`'s findings, once it checked.
    pub verified: Option<crate::metrics::Verified>,
}

impl ExitStatus {
    /// This status, or a failure when it said success.
    pub(super) fn max_failure(self) -> ExitStatus {
        match self {
            ExitStatus::Success | ExitStatus::Changes => ExitStatus::Failure,
            other => other,
        }
    }
}
