//! Copies one image (a manifest, or an index with all its children) between
//! any two stores: blobs first, then child manifests, then the manifest by
//! digest, and only then tags, so no tag ever points at something incomplete.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};
use crate::registry::{MountOutcome, Registry, RegistryError, Result};

/// Index nesting followed before giving up (index → index → manifest is the deepest in use).
const MAX_DEPTH: usize = 3;
/// Children of one index accepted; more is a hostile or broken registry.
const MAX_INDEX_CHILDREN: usize = 1024;

/// What a copy did, counted across threads.
#[derive(Debug, Default)]
pub struct CopyStats {
    pub(super) blobs_copied: AtomicU64,
    pub(super) blobs_mounted: AtomicU64,
    pub(super) blobs_present: AtomicU64,
    pub(super) bytes_copied: AtomicU64,
    pub(super) manifests_written: AtomicU64,
    pub(super) manifests_present: AtomicU64,
    pub(super) tags_written: AtomicU64,
    pub(super) tags_unchanged: AtomicU64,
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
    /// Tags that already pointed at the right digest.
    pub tags_unchanged: u64,
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
            tags_unchanged: get(&self.tags_unchanged),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// One image's journey from a source repository to a target repository.
pub struct ImageCopy<'a> {
    /// Where the image comes from.
    pub source: &'a dyn Registry,
    /// Source repository path.
    pub source_repository: &'a str,
    /// Where it goes.
    pub target: &'a dyn Registry,
    /// Target repository path.
    pub target_repository: &'a str,
    /// Counters to add to.
    pub stats: &'a CopyStats,
}

impl ImageCopy<'_> {
    /// Copies the image `reference` (tag or digest) and points every tag in
    /// `tags` at it. Returns the copied root manifest.
    pub fn run(&self, reference: &str, tags: &[String]) -> Result<Manifest> {
        let manifest = self
            .source
            .manifest_get(self.source_repository, reference)?;
        self.copy_tree(&manifest, 0)?;
        for tag in tags {
            self.write_tag(tag, &manifest)?;
        }
        Ok(manifest)
    }

    /// Points `tag` at `manifest`, which must already be complete in the target.
    fn write_tag(&self, tag: &str, manifest: &Manifest) -> Result<()> {
        let current = self.target.manifest_head(self.target_repository, tag)?;
        if current.is_some_and(|head| head.digest == manifest.digest) {
            bump(&self.stats.tags_unchanged, 1);
            return Ok(());
        }
        self.target
            .manifest_put(self.target_repository, tag, manifest)?;
        bump(&self.stats.tags_written, 1);
        Ok(())
    }

    /// Makes `manifest` and everything it references present in the target,
    /// children before parents.
    fn copy_tree(&self, manifest: &Manifest, depth: usize) -> Result<()> {
        let digest = manifest.digest.to_string();
        if self
            .target
            .manifest_head(self.target_repository, &digest)?
            .is_some()
        {
            // A registry accepts a manifest only once all it references is present.
            bump(&self.stats.manifests_present, 1);
            return Ok(());
        }
        let view = manifest.view().map_err(|source| RegistryError::Manifest {
            what: format!(
                "{}/{}@{digest}",
                self.source.display_name(),
                self.source_repository
            ),
            source,
        })?;
        if manifest.is_index() {
            if depth >= MAX_DEPTH {
                return Err(self.broken(
                    &manifest.digest,
                    format!("indexes nested deeper than {MAX_DEPTH}"),
                ));
            }
            if view.manifests.len() > MAX_INDEX_CHILDREN {
                return Err(self.broken(
                    &manifest.digest,
                    format!(
                        "index has {} children (at most {MAX_INDEX_CHILDREN} accepted)",
                        view.manifests.len()
                    ),
                ));
            }
            view.manifests
                .par_iter()
                .try_for_each(|child| self.copy_child(child, depth))?;
        } else {
            view.blobs
                .par_iter()
                .try_for_each(|blob| self.copy_blob(blob))?;
        }
        self.target
            .manifest_put(self.target_repository, &digest, manifest)?;
        bump(&self.stats.manifests_written, 1);
        Ok(())
    }

    fn copy_child(&self, child: &Descriptor, depth: usize) -> Result<()> {
        let manifest = self
            .source
            .manifest_get(self.source_repository, &child.digest.to_string())?;
        if manifest.bytes.len() as u64 != child.size {
            return Err(self.broken(
                &child.digest,
                format!(
                    "child manifest is {} bytes, the index says {}",
                    manifest.bytes.len(),
                    child.size
                ),
            ));
        }
        self.copy_tree(&manifest, depth + 1)
    }

    fn broken(&self, digest: &Digest, message: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.source.display_name(),
            message: format!("{}@{digest}: {message}", self.source_repository),
        }
    }

    fn copy_blob(&self, blob: &Descriptor) -> Result<()> {
        if !blob.urls.is_empty() && blob.media_type.contains("foreign") {
            // Non-distributable layers live at their URLs, not in registries.
            return Ok(());
        }
        if self
            .target
            .blob_exists(self.target_repository, &blob.digest)?
        {
            bump(&self.stats.blobs_present, 1);
            return Ok(());
        }
        let mut session = None;
        if self.source.store_id() == self.target.store_id() {
            match self.target.blob_mount(
                self.target_repository,
                &blob.digest,
                self.source_repository,
            )? {
                MountOutcome::Mounted => {
                    bump(&self.stats.blobs_mounted, 1);
                    return Ok(());
                }
                MountOutcome::NotMounted(started) => session = started,
            }
        }
        let upload = |session| -> Result<()> {
            let mut reader =
                self.source
                    .blob_get(self.source_repository, &blob.digest, blob.size)?;
            self.target.blob_put(
                self.target_repository,
                &blob.digest,
                blob.size,
                &mut reader,
                session,
            )
        };
        match upload(session) {
            // A registry that refuses one big PUT gets the blob again in PATCH chunks
            // (the client switched modes on the 413), from a fresh source stream.
            Err(RegistryError::Status { status: 413, .. }) => upload(None)?,
            other => other?,
        }
        bump(&self.stats.blobs_copied, 1);
        bump(&self.stats.bytes_copied, blob.size);
        Ok(())
    }
}
