//! Where a blob job's blob went: the repositories passed over, the one it
//! landed in, or the failure that no other repository would escape.

use super::error::ExecError;

/// A blob job's first step: the repositories it passed over, and where
/// the blob landed.
pub(super) struct Landing<'j> {
    /// Repositories passed over on the way: missing (remembered: their
    /// images fail by name when written) or refusing the blob, with why.
    pub passed: Vec<(&'j str, Option<ExecError>)>,
    /// `None` when every repository was passed over.
    pub outcome: Option<Landed<'j>>,
}

impl<'j> Landing<'j> {
    /// A failure at `repositories` that no other repository would escape.
    pub(super) fn failed(
        passed: Vec<(&'j str, Option<ExecError>)>,
        error: ExecError,
        repositories: Vec<&'j str>,
    ) -> Landing<'j> {
        let outcome = Some(Landed::Failed {
            error,
            repositories,
        });
        Landing { passed, outcome }
    }
}

/// Where a blob job's blob went once past the repositories passed over.
pub(super) enum Landed<'j> {
    /// In `into` now; `rest` (the job's repositories after it) still to
    /// get it, by a mount or, where the registry does not mount, a copy.
    In { into: &'j str, rest: Vec<&'j str> },
    /// A failure no other repository of the job would escape (the source,
    /// a registry that does not answer), and the repositories it fails:
    /// the one it happened at and those not tried yet.
    Failed {
        error: ExecError,
        repositories: Vec<&'j str>,
    },
}

/// Why a landed blob is not in one more repository.
pub(super) enum Missed {
    /// That repository refused it: the others may not.
    Here(ExecError),
    /// Nothing the job has left would fare better.
    Everywhere(ExecError),
}
