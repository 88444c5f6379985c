//! OCI 1.1 referrers (signatures, SBOMs pushed with a `subject`) copied with
//! their image, by digest, once the image is stored, where the source lists
//! them through the referrers API (elsewhere the tag convention carries
//! them as attached tags). Referrers of referrers follow (a signature of an
//! SBOM). A target with the API indexes them itself; one without gets them
//! listed under the subject's fallback tag `sha256-<hex>` in an index that
//! is read and added to, never overwritten. They are extras: a failure is
//! said, not fatal.

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::error::ExecError;
use super::graph::{BlobJob, BlobSource};
use super::scheduler::Executor;
use super::stats::bump;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::plan::ImageToWrite;
use crate::referrers::{ReferrerDescriptor, ReferrersIndex, ReferrersIndexError, fallback_tag};
use crate::registry::RegistryError;
use crate::tree::read_tree;

/// Referrers followed from one image, its referrers' referrers included:
/// a guard against a listing that never ends.
const MAX_REFERRERS: usize = 1024;

impl Executor<'_> {
    /// Copies the image's referrers and says what was written, or why
    /// they were not copied. Nothing starts once hoist is stopped.
    pub(super) fn referrers_or_note(&self, image: &ImageToWrite) {
        if super::stop::requested().is_some() {
            return;
        }
        match self.copy_referrers(image) {
            Ok(carried) => {
                if let Some(line) = carried.describe(image) {
                    crate::report::log(&line);
                }
            }
            Err(e) => crate::report::log(&format!(
                "warning: {}: referrers not copied: {e}",
                image.key
            )),
        }
    }

    /// The referrers of images already in their targets, which a source
    /// may have gained since they were promoted.
    pub(super) fn referrers_of_kept(&self, kept: &[ImageToWrite]) {
        kept.par_iter()
            .filter(|image| {
                self.images
                    .binary_search_by(|w| w.write.key.cmp(&image.key))
                    .is_err()
            })
            .for_each(|image| self.referrers_or_note(image));
    }

    /// Referrers of the image, where the source offers the API, and theirs
    /// in turn. A filtered index is a new image: the original's referrers
    /// are not about it.
    fn copy_referrers(&self, image: &ImageToWrite) -> Result<Carried, ReferrerError> {
        let mut carried = Carried::default();
        if !image.referrers || image.key.digest != image.source.digest {
            return Ok(carried);
        }
        let source = self.store(&image.source.registry)?;
        let mut seen = BTreeSet::from([image.source.digest.clone()]);
        let mut subjects = vec![image.source.digest.clone()];
        while let Some(subject) = subjects.pop() {
            let Some(listed) = source
                .referrers(&image.source.repository, &subject)
                .map_err(ReferrerError::Listing)?
            else {
                // No API: the tag convention carries them, as attached tags.
                return Ok(carried);
            };
            for referrer in &listed {
                if seen.insert(referrer.digest.clone()) {
                    subjects.push(referrer.digest.clone());
                }
            }
            if seen.len() > MAX_REFERRERS {
                return Err(ReferrerError::TooMany);
            }
            self.attach_referrers(image, &subject, &listed, &mut carried)?;
        }
        Ok(carried)
    }

    /// The referrers of `subject` into the target: each by digest; then,
    /// where the target has no referrers API, listed under the fallback tag.
    fn attach_referrers(
        &self,
        image: &ImageToWrite,
        subject: &Digest,
        listed: &[Descriptor],
        carried: &mut Carried,
    ) -> Result<(), ReferrerError> {
        let target = self.store(&image.key.registry)?;
        let indexed = target
            .referrers(&image.key.repository, subject)
            .map_err(ReferrerError::Listing)?;
        for referrer in listed {
            let known = indexed
                .iter()
                .flatten()
                .any(|d| d.digest == referrer.digest);
            if known {
                bump(&self.stats.manifests_present, 1);
                continue;
            }
            let copied = self
                .copy_referrer(image, subject, &referrer.digest)
                .map_err(|source| ReferrerError::Copy {
                    digest: referrer.digest.clone(),
                    source: Box::new(source),
                })?;
            carried.copied += usize::from(copied);
        }
        if indexed.is_none()
            && !listed.is_empty()
            && self.update_fallback_index(image, subject, listed)?
        {
            carried.fallback_tags.push(fallback_tag(subject));
        }
        Ok(())
    }

    /// One referrer is an image of its own, copied by digest like any
    /// other: blobs, then manifests; no tag. It must name `subject`.
    /// Whether it was copied (not found in the target already).
    fn copy_referrer(
        &self,
        image: &ImageToWrite,
        subject: &Digest,
        digest: &Digest,
    ) -> Result<bool, ExecError> {
        let source = self.store(&image.source.registry)?;
        let target = self.store(&image.key.registry)?;
        let repository = &image.key.repository;
        if target
            .manifest_head(repository, &digest.to_string())?
            .is_some()
        {
            bump(&self.stats.manifests_present, 1);
            return Ok(false);
        }
        let fetch = |d: &str| source.manifest_get(&image.source.repository, d);
        let tree = read_tree(&fetch, &image.source.repository, digest, &[], digest)?;
        let root = tree.manifests.last().ok_or(ExecError::EmptyTree)?;
        let names = root.view().ok().and_then(|v| v.subject).map(|s| s.digest);
        if names.as_ref() != Some(subject) {
            return Err(ExecError::NotAReferrer {
                digest: digest.clone(),
                subject: subject.clone(),
            });
        }
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
        self.put_manifests(target.as_ref(), repository, &tree, false, None)?;
        Ok(true)
    }

    /// Adds the referrers the target's fallback index of `subject` does
    /// not list yet to it, described from their manifests, and pushes it
    /// back; what it listed stays. Written only once every referrer it
    /// names is in the target, and only when something was added: whether
    /// it was.
    fn update_fallback_index(
        &self,
        image: &ImageToWrite,
        subject: &Digest,
        listed: &[Descriptor],
    ) -> Result<bool, ReferrerError> {
        let source = self.store(&image.source.registry)?;
        let target = self.store(&image.key.registry)?;
        let repository = &image.key.repository;
        let tag = fallback_tag(subject);
        let fallback = |source| ReferrerError::Fallback {
            tag: tag.clone(),
            source: Box::new(source),
        };
        let mut index = match target.manifest_get(repository, &tag) {
            Ok(current) => {
                ReferrersIndex::read(&current).map_err(|e| fallback(FallbackError::Index(e)))?
            }
            Err(e) if e.is_not_found() => ReferrersIndex::default(),
            Err(e) => return Err(fallback(FallbackError::Registry(e))),
        };
        let mut added = false;
        for referrer in listed {
            if index.lists(&referrer.digest) {
                continue;
            }
            let manifest = source
                .manifest_get(&image.source.repository, &referrer.digest.to_string())
                .map_err(|e| fallback(FallbackError::Registry(e)))?;
            let described = ReferrerDescriptor::of(&manifest)
                .map_err(|e| fallback(FallbackError::Referrer(e)))?;
            added |= index.add(&described);
        }
        if !added {
            return Ok(false);
        }
        target
            .manifest_put(repository, &tag, &index.to_manifest())
            .map_err(|e| fallback(FallbackError::Registry(e)))?;
        self.fallback_tags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(crate::keys::TagKey::new(
                &image.key.registry,
                repository,
                &tag,
            ));
        bump(&self.stats.tags_written, 1);
        Ok(true)
    }
}

/// What carrying an image's referrers wrote.
#[derive(Debug, Default)]
struct Carried {
    /// Referrers copied (not found in the target already).
    copied: usize,
    /// Fallback tags written or updated.
    fallback_tags: Vec<String>,
}

impl Carried {
    /// The line that says it; `None` when nothing was written.
    fn describe(&self, image: &ImageToWrite) -> Option<String> {
        if self.copied == 0 && self.fallback_tags.is_empty() {
            return None;
        }
        let noun = if self.copied == 1 {
            "referrer"
        } else {
            "referrers"
        };
        let mut line = format!("copied {} {noun} of {}", self.copied, image.key);
        if !self.fallback_tags.is_empty() {
            line.push_str(&format!(
                "; listed under {} (the target has no referrers API)",
                self.fallback_tags.join(", ")
            ));
        }
        Some(line)
    }
}

/// Why an image's referrers were not copied.
#[derive(Debug, thiserror::Error)]
enum ReferrerError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("listing referrers: {0}")]
    Listing(RegistryError),
    #[error("copying referrer {}: {source}", .digest.short())]
    Copy {
        digest: Digest,
        source: Box<ExecError>,
    },
    #[error("referrers fallback tag {tag}: {source}")]
    Fallback {
        tag: String,
        source: Box<FallbackError>,
    },
    #[error("more than {MAX_REFERRERS} referrers")]
    TooMany,
}

/// Why a fallback index could not be brought up to date.
#[derive(Debug, thiserror::Error)]
enum FallbackError {
    #[error(transparent)]
    Registry(RegistryError),
    #[error(transparent)]
    Index(ReferrersIndexError),
    #[error("describing a referrer: {0}")]
    Referrer(crate::manifest::ManifestError),
}
