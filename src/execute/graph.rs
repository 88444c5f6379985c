//! Which jobs a run has and what waits for what: a pure function of the
//! plan, the images' manifest trees and the stores' identities, so the
//! graph is unit-tested without a registry. The scheduler only runs it.

use std::collections::{BTreeMap, BTreeSet};

use super::image_run::ImageRun;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::plan::{Plan, RepositoryKey};

/// Store identities by registry name: equal identities share blobs, so a
/// blob in one can be mounted into another repository of the same store.
pub type StoreIds = BTreeMap<String, String>;

/// Where a blob is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobSource {
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
}

/// One blob for one target store: it crosses the network once, then is
/// mounted into every other repository needing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobJob {
    /// Target registry name.
    pub target_registry: String,
    /// The blob's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Where it is read from.
    pub source: BlobSource,
    /// Target repositories needing it, each with the images (indexes into
    /// the run's images) waiting for it there; it lands in the first, the
    /// others mount it.
    pub repositories: BTreeMap<String, Vec<usize>>,
    /// A repository of the target, outside this job, that may hold the blob
    /// already: one the plan shows holds an image of the same rule from an
    /// earlier run. The upload opens with a mount from it; a wrong guess
    /// still opens the upload, so it costs nothing.
    pub mount_hint: Option<String>,
}

impl BlobJob {
    /// A job for one blob into one repository, waited on by no image (a
    /// repair, a referrer's blob).
    pub fn single(
        target_registry: &str,
        blob: &Descriptor,
        source: BlobSource,
        repository: &str,
    ) -> BlobJob {
        BlobJob {
            target_registry: target_registry.to_string(),
            digest: blob.digest.clone(),
            size: blob.size,
            source,
            repositories: BTreeMap::from([(repository.to_string(), Vec::new())]),
            mount_hint: None,
        }
    }

    /// The images waiting for it, in every repository.
    pub fn images(&self) -> impl Iterator<Item = usize> + '_ {
        self.repositories.values().flatten().copied()
    }
}

/// The blob jobs of the images to copy (`trees[i]` is image `i`'s tree, or
/// `None` for an image needing no copy): one per blob per target store, the
/// most shared first (shared base layers gate the most images). A job reads
/// from a repository of the target's own store when one of its images comes
/// from there, so no bytes move.
pub fn blob_jobs(images: &[ImageRun<'_>], stores: &StoreIds) -> Vec<BlobJob> {
    let same_store = |a: &str, b: &str| stores.get(a).is_some() && stores.get(a) == stores.get(b);
    let mut jobs: BTreeMap<(&str, &Digest), BlobJob> = BTreeMap::new();
    for (
        i,
        ImageRun {
            write: image, tree, ..
        },
    ) in images.iter().enumerate()
    {
        let (Some(tree), Some(store)) = (tree, stores.get(&image.key.registry)) else {
            continue;
        };
        let source = BlobSource {
            registry: image.source.registry.clone(),
            repository: image.source.repository.clone(),
        };
        for blob in &tree.blobs {
            let job = jobs
                .entry((store, &blob.digest))
                .or_insert_with(|| BlobJob {
                    repositories: BTreeMap::new(),
                    ..BlobJob::single(&image.key.registry, blob, source.clone(), "")
                });
            if same_store(&source.registry, &image.key.registry)
                && !same_store(&job.source.registry, &image.key.registry)
            {
                job.source = source.clone();
            }
            job.repositories
                .entry(image.key.repository.clone())
                .or_default()
                .push(i);
        }
    }
    let mut jobs: Vec<BlobJob> = jobs.into_values().collect();
    jobs.sort_by_key(|job| std::cmp::Reverse(job.repositories.len()));
    jobs
}

/// Gives each job copying into another store a [`BlobJob::mount_hint`]:
/// a target repository where an image of a rule of the job's images is
/// already, as the plan's unchanged entries show (base layers are shared by
/// a rule's images far more often than not).
pub fn hint_mounts(plan: &Plan, images: &[ImageRun<'_>], jobs: &mut [BlobJob]) {
    let mut held: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for entry in &plan.entries {
        if entry.is_late() || entry.changes() || entry.action.blocked_reason().is_some() {
            continue;
        }
        for rule in &entry.rules {
            held.entry((entry.target.registry.as_str(), rule.as_str()))
                .or_default()
                .insert(entry.target.repository.as_str());
        }
    }
    if held.is_empty() {
        return;
    }
    for job in jobs.iter_mut() {
        // Each rule once: a base layer's job has thousands of images of
        // a few rules, and each rule's repositories are looked through once.
        let rules: BTreeSet<&str> = job
            .images()
            .flat_map(|i| &images[i].write.entries)
            .flat_map(|&e| &plan.entries[e].rules)
            .map(String::as_str)
            .collect();
        let hint = rules
            .into_iter()
            .filter_map(|rule| held.get(&(job.target_registry.as_str(), rule)))
            .flatten()
            .find(|repository| !job.repositories.contains_key(**repository));
        job.mount_hint = hint.map(|r| r.to_string());
    }
}

/// What waits for what in each target repository: its floating and attached
/// ("late") tags are written once every image of the repository is done.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepositoryWaits {
    /// Images of each repository still to finish.
    pub images: BTreeMap<RepositoryKey, usize>,
    /// Late entries of each repository, with the image each points at.
    pub late: BTreeMap<RepositoryKey, Vec<(usize, usize)>>,
    /// Every other entry of each repository, whatever its status: what the
    /// late tags follow.
    pub regular: BTreeMap<RepositoryKey, Vec<usize>>,
}

/// The waits of a run writing `images`.
pub fn repository_waits(plan: &Plan, images: &[ImageRun<'_>]) -> RepositoryWaits {
    let mut waits = RepositoryWaits::default();
    for (i, ImageRun { write: image, .. }) in images.iter().enumerate() {
        let repository = image.key.repository_key();
        *waits.images.entry(repository.clone()).or_default() += 1;
        for &e in &image.entries {
            if plan.entries[e].is_late() {
                waits
                    .late
                    .entry(repository.clone())
                    .or_default()
                    .push((e, i));
            }
        }
    }
    for (e, entry) in plan.entries.iter().enumerate() {
        if !entry.is_late() {
            waits
                .regular
                .entry(entry.repository_key())
                .or_default()
                .push(e);
        }
    }
    waits
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
