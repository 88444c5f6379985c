//! What a run did, counted across threads, for the summary and the report.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What a run did, counted across threads.
#[derive(Debug, Default)]
pub struct CopyStats {
    pub(super) blobs_copied: AtomicU64,
    pub(super) blobs_mounted: AtomicU64,
    pub(super) blobs_present: AtomicU64,
    pub(super) bytes_copied: AtomicU64,
    pub(super) manifests_written: AtomicU64,
    pub(super) manifests_present: AtomicU64,
    pub(super) tags_written: AtomicU64,
}

/// A plain copy of [`CopyStats`] for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CopyStatsSnapshot {
    /// Blobs streamed from source to target.
    pub blobs_copied: u64,
    /// Blobs mounted from another repository of the target (no bytes moved).
    pub blobs_mounted: u64,
    /// Blobs the target already had.
    pub blobs_present: u64,
    /// Blob bytes streamed.
    pub bytes_copied: u64,
    /// Manifests written (by digest).
    pub manifests_written: u64,
    /// Manifests the target already had.
    pub manifests_present: u64,
    /// Tags written or moved.
    pub tags_written: u64,
}

impl CopyStats {
    /// The counts so far.
    pub fn snapshot(&self) -> CopyStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CopyStatsSnapshot {
            blobs_copied: get(&self.blobs_copied),
            blobs_mounted: get(&self.blobs_mounted),
            blobs_present: get(&self.blobs_present),
            bytes_copied: get(&self.bytes_copied),
            manifests_written: get(&self.manifests_written),
            manifests_present: get(&self.manifests_present),
            tags_written: get(&self.tags_written),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}
