//! Writing an image once its blobs are in: child manifests by digest, then
//! the root (stored by its first tag's PUT), then tags. A PUT the registry
//! refuses for something it lacks repairs the image and tries once more.

use super::error::ExecError;
use super::graph::{BlobJob, BlobSource};
use super::scheduler::Executor;
use super::stats::bump;
use crate::manifest::Manifest;
use crate::plan::{ImageToWrite, PlanEntry};
use crate::referrers::ReferrersIndex;
use crate::registry::{Registry, RegistryError};
use crate::tree::Tree;

impl Executor<'_> {
    /// Child manifests, then the root by digest unless a tag stores it.
    pub(super) fn write_image(&self, i: usize) -> Result<(), ExecError> {
        let image = &self.images[i].write;
        // Found missing by this image's blobs or another's: nothing to write.
        if let Some(missing) = self
            .missing
            .known(&image.key.registry, &image.key.repository)
        {
            return Err(ExecError::RepositoryMissing(missing));
        }
        let target = self.store(&image.key.registry)?;
        let Some(tree) = self.images[i].tree else {
            // Present in the target already.
            bump(&self.stats.manifests_present, 1);
            return Ok(());
        };
        // The first tag's PUT stores the root manifest: no PUT by digest before it.
        self.put_manifests(
            target.as_ref(),
            &image.key.repository,
            tree,
            self.tagged(image),
            Some(image),
        )
    }

    /// Whether a version tag of the image stores it (else it is stored by
    /// digest, and only late tags point at it).
    pub(super) fn tagged(&self, image: &ImageToWrite) -> bool {
        image
            .entries
            .iter()
            .any(|&e| !self.plan.entries[e].is_late())
    }

    /// Writes a tree's manifests by digest, children first. A child is PUT
    /// without asking whether the target has it: rewriting a present one
    /// costs the registry about what the HEAD would, and a new one (the
    /// usual case) is then one request instead of two.
    /// The root is left to the caller when a tag is written next (`tagged`):
    /// the tag's PUT stores it, and the registry refuses it while anything
    /// it references is missing, so the tag still lands last.
    ///
    /// With `image`, a PUT the registry refuses for a blob or child it
    /// lacks is repaired (see `repair`) and tried once more.
    pub(super) fn put_manifests(
        &self,
        target: &dyn Registry,
        repository: &str,
        tree: &Tree,
        tagged: bool,
        image: Option<&ImageToWrite>,
    ) -> Result<(), ExecError> {
        let root = tree.manifests.len().saturating_sub(1);
        for (i, manifest) in tree.manifests.iter().enumerate() {
            if i == root && tagged {
                continue;
            }
            let digest = manifest.digest.to_string();
            self.put_or_repair(
                &format!("writing manifest {}", manifest.digest.short()),
                image.map(|image| (image, tree)),
                || target.manifest_put(repository, &digest, manifest),
            )?;
            bump(&self.stats.manifests_written, 1);
        }
        Ok(())
    }

    /// Points one tag at its complete image.
    pub(super) fn write_tag(&self, entry: &PlanEntry, i: usize) -> Result<(), ExecError> {
        let image = &self.images[i].write;
        let target = self.store(&image.key.registry)?;
        let mut manifest = match self.images[i].tree {
            Some(tree) => tree.manifests.last().cloned().ok_or(ExecError::EmptyTree)?,
            // Present already: its bytes are the target's.
            None => target.manifest_get(&image.key.repository, &image.key.digest.to_string())?,
        };
        if entry.role.is_referrers_listing(&entry.target.tag) {
            match merged_listing(target.as_ref(), entry, &manifest)? {
                Some(merged) => manifest = merged,
                None => return Ok(()),
            }
        }
        self.put_or_repair(
            &format!("writing tag {}", entry.target.tag),
            self.images[i].tree.map(|tree| (image, tree)),
            || target.manifest_put(&image.key.repository, &entry.target.tag, &manifest),
        )?;
        bump(&self.stats.tags_written, 1);
        Ok(())
    }

    /// Runs a manifest PUT. When the registry refuses it for a blob or
    /// child it lacks and the image's tree is known, the image is repaired
    /// and the PUT runs once more; a second refusal is the error, in the
    /// registry's words. `what` begins the error message. A PUT refused
    /// because the repository does not exist names it (and it is
    /// remembered for the run).
    fn put_or_repair(
        &self,
        what: &str,
        image: Option<(&ImageToWrite, &Tree)>,
        put: impl Fn() -> Result<(), RegistryError>,
    ) -> Result<(), ExecError> {
        let result = match (put(), image) {
            (Err(e), Some((image, tree))) if e.lacks_reference() => {
                self.repair(image, tree, &e)?;
                put()
            }
            (result, _) => result,
        };
        result.map_err(|source| match image {
            Some((image, _)) if source.names_missing_repository() => ExecError::RepositoryMissing(
                self.missing
                    .found(&image.key.registry, &image.key.repository, &source),
            ),
            _ => ExecError::Write {
                what: what.to_string(),
                source: Box::new(source),
            },
        })
    }

    /// The target refused a manifest for a blob or child manifest it lacks,
    /// although the blob step saw or put it there (garbage-collected since,
    /// a mount that did not hold, or a HEAD that said 200 for a blob the
    /// registry cannot serve, as Artifactory's may). The registry is the
    /// truth: every blob of the image is read again, its first byte only
    /// (a HEAD is what may have lied), and copied when missing; then the
    /// child manifests are written again. The caller retries once.
    fn repair(
        &self,
        image: &ImageToWrite,
        tree: &Tree,
        refused: &RegistryError,
    ) -> Result<(), ExecError> {
        crate::report::log(&format!(
            "note: {}: the registry lacks part of the image ({refused}); reading every blob again",
            image.key
        ));
        let source = self.store(&image.source.registry)?;
        let target = self.store(&image.key.registry)?;
        let repository = &image.key.repository;
        for blob in &tree.blobs {
            let failed = |source: RegistryError| ExecError::RepairBlob {
                digest: blob.digest.clone(),
                source: Box::new(source),
            };
            if target
                .blob_readable(repository, &blob.digest)
                .map_err(failed)?
            {
                continue;
            }
            let from = BlobSource {
                registry: image.source.registry.clone(),
                repository: image.source.repository.clone(),
            };
            let job = BlobJob::single(&image.key.registry, blob, from, repository);
            self.transfer(source.as_ref(), target.as_ref(), &job, repository, None)
                .map_err(failed)?;
        }
        let root = tree.manifests.len().saturating_sub(1);
        for child in &tree.manifests[..root] {
            target
                .manifest_put(repository, &child.digest.to_string(), child)
                .map_err(|source| ExecError::Write {
                    what: format!("repairing manifest {}", child.digest.short()),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }
}

/// The index to write under a referrers fallback tag: the source's where
/// the target has none; else the target's with the source's referrers it
/// lacks added (none lacking: nothing to write). The target's own entries
/// (its signatures, promotion records) stay listed.
fn merged_listing(
    target: &dyn Registry,
    entry: &PlanEntry,
    source: &Manifest,
) -> Result<Option<Manifest>, ExecError> {
    let tag = &entry.target.tag;
    let current = match target.manifest_get(&entry.target.repository, tag) {
        Ok(current) => current,
        Err(e) if e.is_not_found() => return Ok(Some(source.clone())),
        Err(e) => return Err(ExecError::Registry(Box::new(e))),
    };
    let unmergeable = |source| ExecError::ReferrersListing {
        tag: tag.clone(),
        source,
    };
    let mut index = ReferrersIndex::read(&current).map_err(unmergeable)?;
    let theirs = ReferrersIndex::read(source).map_err(unmergeable)?;
    Ok(index.add_all(&theirs).then(|| index.to_manifest()))
}
