//! How a run is set up: its options, and the stores it reads and writes
//! by name.

use std::sync::Arc;

use super::error::ExecError;
use crate::record::Recorder;
use crate::registry::retry::RetryPolicy;
use crate::registry::{Registry, StoreMap};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Re-check every entry against the registries first (`apply --plan`):
    /// refuse those whose source or target moved since planning.
    pub check_preconditions: bool,
    /// Retries of a whole blob transfer (streams cannot be replayed request by request).
    pub retry: RetryPolicy,
    /// Sign and attach a promotion record to every image written
    /// (`[settings] record`).
    pub record: Option<Arc<Recorder>>,
}

/// The open store named `name`.
pub(super) fn lookup<'a>(
    stores: &'a StoreMap,
    name: &str,
) -> Result<&'a Arc<dyn Registry>, ExecError> {
    stores
        .get(name)
        .ok_or_else(|| ExecError::StoreNotOpen(name.to_string()))
}
