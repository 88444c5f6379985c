//! How much work a plan means: blobs counted once per target registry, with
//! mounts for further repositories and for copies inside one store.

use std::collections::{BTreeMap, BTreeSet};

use super::image::{ImageToWrite, images_to_write};
use crate::digest::Digest;
use crate::discover::Inventory;
use crate::entry::PlanEntry;
use crate::keys::TagKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The work applying the plan is expected to do, counting each blob once per
/// target registry; blobs already in a target are not known here, so byte
/// and copy counts are upper bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    /// Images (manifest digests per target repository) to write.
    pub images: usize,
    /// Manifests to write, children of indexes included.
    pub manifests: usize,
    /// Distinct blobs per target registry, summed over target registries.
    pub unique_blobs: usize,
    /// Blobs that cross the network (at most once per target registry).
    pub blobs_to_copy: usize,
    /// Their bytes.
    pub bytes_to_copy: u64,
    /// Blobs mounted from another repository of the same store instead of copied.
    pub blobs_to_mount: usize,
    /// False when some source manifest could not be read, so the figures are partial.
    pub complete: bool,
}

/// Estimates the work of the entries that change something.
pub fn estimate(entries: &[PlanEntry], inventory: &Inventory) -> Estimate {
    let mut estimate = Estimate {
        complete: true,
        ..Estimate::default()
    };
    // Images a target repository already holds under another tag need no copy.
    let held: BTreeSet<(&str, &str, &Digest)> = inventory
        .target_heads
        .iter()
        .map(
            |(
                TagKey {
                    registry,
                    repository,
                    ..
                },
                digest,
            )| (registry.as_str(), repository.as_str(), digest),
        )
        .collect();
    // Per target registry: the images to write, as apply and progress count them.
    let mut images: BTreeMap<String, Vec<ImageToWrite>> = BTreeMap::new();
    for image in images_to_write(entries, |_| true) {
        let key = &image.key;
        if !held.contains(&(key.registry.as_str(), key.repository.as_str(), &key.digest)) {
            images.entry(key.registry.clone()).or_default().push(image);
        }
    }
    for (target_registry, images) in &images {
        let target_store = inventory.stores.get(target_registry);
        // blob -> (size, repositories needing it, whether it can come from the same store)
        let mut blobs: BTreeMap<&Digest, (u64, BTreeSet<&str>, bool)> = BTreeMap::new();
        let mut manifests: BTreeSet<(&str, &Digest)> = BTreeSet::new();
        for ImageToWrite { key, source, .. } in images {
            let repository = key.repository.as_str();
            estimate.images += 1;
            manifests.insert((repository, &key.digest));
            let same_store =
                target_store.is_some() && inventory.stores.get(&source.registry) == target_store;
            // What the target gets: of a platform-filtered index, only the
            // platforms it keeps.
            let contents = inventory
                .contents
                .get(&(source.registry.clone(), key.digest.clone()));
            let Some(contents) = contents else {
                estimate.complete = false;
                continue;
            };
            for child in &contents.manifests {
                manifests.insert((repository, child));
            }
            for (blob, size) in &contents.blobs {
                let slot = blobs.entry(blob).or_insert((*size, BTreeSet::new(), false));
                slot.1.insert(repository);
                slot.2 |= same_store;
            }
        }
        estimate.manifests += manifests.len();
        for (size, repositories, same_store) in blobs.values() {
            estimate.unique_blobs += 1;
            if *same_store {
                estimate.blobs_to_mount += repositories.len();
            } else {
                estimate.blobs_to_copy += 1;
                estimate.bytes_to_copy += size;
                estimate.blobs_to_mount += repositories.len() - 1;
            }
        }
    }
    estimate
}
