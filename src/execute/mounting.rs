//! What a target registry has shown of cross-repository mounts this run.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// What a registry has shown of mounts from another repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Support {
    /// Nothing yet.
    Unknown = 0,
    /// It mounted a blob (and has not refused a self-mount probe since).
    Works = 1,
    /// It refused a mount: it is not asked to mount again.
    Refused = 2,
    /// It answered a mount from a repository holding the blob with an
    /// upload session, without mounting: it is still asked (the mount
    /// opens the upload all the same), but nothing is waited for to learn.
    Ignores = 3,
}

/// What a target registry has shown of cross-repository mounts this run.
/// Jobs run side by side, so it changes only by the steps below: a refusal
/// stays, and a failed self-mount probe undoes only a success. Apart from
/// it: whether the registry refused a self-mount probe of a new
/// repository, which says nothing of cross-repository mounts (a registry
/// may answer a mount of a blob it lacks with an error) but stops those
/// probes.
#[derive(Debug, Default)]
pub(super) struct Mounting {
    /// A [`Support`], as its number.
    support: AtomicU8,
    /// A self-mount probe of a new repository was refused.
    probe_refused: AtomicBool,
}

impl Mounting {
    /// A registry that has shown nothing yet.
    pub(super) const fn new() -> Mounting {
        Mounting {
            support: AtomicU8::new(Support::Unknown as u8),
            probe_refused: AtomicBool::new(false),
        }
    }

    fn is(&self, support: Support) -> bool {
        self.support.load(Ordering::Relaxed) == support as u8
    }

    /// It mounted a blob (and has not refused a self-mount probe since).
    pub(super) fn works(&self) -> bool {
        self.is(Support::Works)
    }

    /// It refused a mount: it is not asked to mount again.
    pub(super) fn refused(&self) -> bool {
        self.is(Support::Refused)
    }

    /// It has shown nothing yet.
    pub(super) fn unknown(&self) -> bool {
        self.is(Support::Unknown)
    }

    /// From `from` to `to`, if it is at `from`: whether it was.
    fn step(&self, from: Support, to: Support) -> bool {
        self.support
            .compare_exchange(from as u8, to as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub(super) fn mounted(&self) {
        if !self.step(Support::Unknown, Support::Works) {
            self.step(Support::Ignores, Support::Works);
        }
    }

    pub(super) fn refuse(&self) {
        self.support
            .store(Support::Refused as u8, Ordering::Relaxed);
    }

    pub(super) fn ignored(&self) {
        self.step(Support::Unknown, Support::Ignores);
    }

    /// A self-mount probe was refused: ask the plain way again. Where it
    /// had mounted, that undoes the success; and no new repository's
    /// blobs are probed by a self-mount again.
    pub(super) fn probe_refused(&self) {
        self.step(Support::Works, Support::Unknown);
        self.probe_refused.store(true, Ordering::Relaxed);
    }

    /// A new repository's blob may be probed by a self-mount: no such
    /// probe was refused, and the registry has not shown that it refuses
    /// or ignores mounts (a mount it ignores would not find a blob there).
    pub(super) fn probes_new(&self) -> bool {
        !self.probe_refused.load(Ordering::Relaxed) && (self.unknown() || self.works())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_of_mounts_stays_and_a_failed_probe_undoes_only_a_success() {
        let mounting = Mounting::default();
        assert!(mounting.unknown());
        mounting.ignored();
        assert!(!mounting.unknown() && !mounting.works() && !mounting.refused());
        mounting.mounted();
        assert!(mounting.works());
        assert!(mounting.probes_new());
        mounting.probe_refused();
        assert!(mounting.unknown());
        assert!(!mounting.probes_new(), "a refused probe stops the probes");
        mounting.probe_refused();
        assert!(mounting.unknown(), "and says nothing of mounts");
        mounting.refuse();
        mounting.mounted();
        mounting.probe_refused();
        mounting.ignored();
        assert!(mounting.refused());
    }
}
