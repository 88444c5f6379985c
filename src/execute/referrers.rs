//! OCI 1.1 referrers (signatures, SBOMs pushed with a `subject`) copied with
//! their image, by digest, once the image is stored. They are extras: a
//! failure is said, not fatal.

use super::error::ExecError;
use super::graph::{BlobJob, BlobSource};
use super::scheduler::Executor;
use super::stats::bump;
use crate::digest::Digest;
use crate::plan::ImageToWrite;
use crate::tree::read_tree;

impl Executor<'_> {
    /// Copies the image's referrers, or logs why they were not.
    pub(super) fn referrers_or_note(&self, image: &ImageToWrite) {
        if let Err(e) = self.copy_referrers(image) {
            crate::report::log(&format!(
                "warning: {}: referrers not copied: {e}",
                image.key
            ));
        }
    }

    /// Referrers of the image, where the source offers the API. A filtered
    /// index is a new image: the original's referrers are not about it.
    fn copy_referrers(&self, image: &ImageToWrite) -> Result<(), ReferrerError> {
        if !image.referrers || image.key.digest != image.source.digest {
            return Ok(());
        }
        let source = self.store(&image.source.registry)?;
        let digest = &image.source.digest;
        let Some(referrers) = source
            .referrers(&image.source.repository, digest)
            .map_err(ReferrerError::Listing)?
        else {
            return Ok(());
        };
        for referrer in referrers {
            self.copy_referrer(image, &referrer.digest)
                .map_err(|source| ReferrerError::Copy {
                    digest: referrer.digest.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// One referrer is an image of its own, copied by digest like any
    /// other: blobs, then manifests; no tag.
    fn copy_referrer(&self, image: &ImageToWrite, digest: &Digest) -> Result<(), ExecError> {
        let source = self.store(&image.source.registry)?;
        let target = self.store(&image.key.registry)?;
        let repository = &image.key.repository;
        if target
            .manifest_head(repository, &digest.to_string())?
            .is_some()
        {
            bump(&self.stats.manifests_present, 1);
            return Ok(());
        }
        let fetch = |d: &str| source.manifest_get(&image.source.repository, d);
        let tree = read_tree(&fetch, &image.source.repository, digest, &[], digest)?;
        for blob in &tree.blobs {
            let from = BlobSource {
                registry: image.source.registry.clone(),
                repository: image.source.repository.clone(),
            };
            self.blob(&BlobJob::single(
                &image.key.registry,
                blob,
                from,
                repository,
            ))?;
        }
        self.put_manifests(target.as_ref(), repository, &tree, false, None)
    }
}

/// Why an image's referrers were not copied.
#[derive(Debug, thiserror::Error)]
enum ReferrerError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("listing referrers: {0}")]
    Listing(crate::registry::RegistryError),
    #[error("copying referrer {}: {source}", .digest.short())]
    Copy {
        digest: Digest,
        source: Box<ExecError>,
    },
}
