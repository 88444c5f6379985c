//! What became of each plan entry, filled in by the jobs as they finish.

use std::sync::{Arc, Mutex};

use super::error::ExecError;
use crate::plan::{Action, Plan};

/// What became of one plan entry.
#[derive(Clone, Debug)]
pub enum Status {
    /// The tag now points at the image.
    Promoted,
    /// Nothing to do.
    Unchanged,
    /// The target tag was deleted (`prune`).
    Pruned,
    /// The plan refused it (its reason is in the plan).
    Blocked,
    /// The registries changed since the plan was made; not attempted.
    Refused(Arc<ExecError>),
    /// Attempted and failed.
    Failed(Arc<ExecError>),
}

impl Status {
    /// A failure with its cause.
    pub fn failed(error: ExecError) -> Status {
        Status::Failed(Arc::new(error))
    }
}

/// Results of a run, parallel to the plan's entries.
#[derive(Debug)]
pub struct Outcome {
    /// One status per plan entry.
    pub statuses: Vec<Status>,
    /// Source tags deleted by `mode = "move"` (`registry/repository:tag`).
    pub moved: Vec<String>,
    /// Things worth saying that are not failures (a source tag kept, …).
    pub notes: Vec<String>,
    /// The promotion records attached (`[settings] record`).
    pub records: Vec<crate::record::RecordWritten>,
}

/// Every entry's status while the run is under way; `None` until decided.
pub struct Statuses(Vec<Mutex<Option<Status>>>);

impl Statuses {
    /// Entries that write nothing are decided before anything runs.
    pub fn for_plan(plan: &Plan) -> Statuses {
        Statuses(
            plan.entries
                .iter()
                .map(|entry| {
                    Mutex::new(match entry.action {
                        Action::Blocked { .. } => Some(Status::Blocked),
                        Action::Unchanged { .. } => Some(Status::Unchanged),
                        Action::Create | Action::Update | Action::Prune { .. } => None,
                    })
                })
                .collect(),
        )
    }

    /// Records what became of entry `i`.
    pub fn set(&self, i: usize, status: Status) {
        *self.0[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
    }

    /// Entry `i`'s status so far.
    pub fn get(&self, i: usize) -> Option<Status> {
        self.0[i].lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The final statuses; an entry nothing decided is a failure.
    pub fn finish(self) -> Vec<Status> {
        self.0
            .into_iter()
            .map(|s| {
                s.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| Status::failed(ExecError::NotAttempted))
            })
            .collect()
    }
}
