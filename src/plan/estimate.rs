//! How much work a plan means: blobs counted once per target registry, with
//! mounts for further repositories and for copies inside one store.

use std::collections::{BTreeMap, BTreeSet};

use super::inventory::Inventory;
use super::{Action, Estimate, PlanEntry};
use crate::digest::Digest;

/// Estimates the work of the entries that change something.
pub fn estimate(entries: &[PlanEntry], inventory: &Inventory) -> Estimate {
    let mut estimate = Estimate {
        complete: true,
        ..Estimate::default()
    };
    // Per target registry: each image (target repository, digest) once.
    let mut images: BTreeMap<&str, BTreeSet<(&str, &str, &str)>> = BTreeMap::new();
    // Images a target repository already holds under another tag need no copy.
    let held: BTreeSet<(&str, &str, String)> = inventory
        .target_heads
        .iter()
        .map(|((registry, repository, _), digest)| {
            (registry.as_str(), repository.as_str(), digest.to_string())
        })
        .collect();
    for entry in entries {
        let already_there = held.contains(&(
            entry.target.registry.as_str(),
            entry.target.repository.as_str(),
            entry.source.digest.clone(),
        ));
        if matches!(entry.action, Action::Create | Action::Update) && !already_there {
            images.entry(&entry.target.registry).or_default().insert((
                &entry.target.repository,
                &entry.source.registry,
                &entry.source.digest,
            ));
        }
    }
    for (target_registry, images) in images {
        let target_store = inventory.stores.get(target_registry);
        // blob -> (size, repositories needing it, whether it can come from the same store)
        let mut blobs: BTreeMap<&Digest, (u64, BTreeSet<&str>, bool)> = BTreeMap::new();
        let mut manifests: BTreeSet<(&str, String)> = BTreeSet::new();
        for (repository, source_registry, digest) in &images {
            estimate.images += 1;
            manifests.insert((repository, digest.to_string()));
            let same_store =
                target_store.is_some() && inventory.stores.get(*source_registry) == target_store;
            let contents = digest
                .parse::<Digest>()
                .ok()
                .and_then(|d| inventory.contents.get(&(source_registry.to_string(), d)));
            let Some(contents) = contents else {
                estimate.complete = false;
                continue;
            };
            for child in &contents.manifests {
                manifests.insert((repository, child.to_string()));
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
