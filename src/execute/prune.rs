//! `prune`: the target tags the plan deletes, after every write of the
//! run (images, tags, records) and never once hoist is stopped. Each tag
//! is read first and left, refused, when it no longer holds the digest the
//! plan saw (a reviewed plan is deleted exactly as reviewed). A registry
//! that deletes tags alone deletes the tag; one that deletes by digest only
//! (Distribution removes every tag of a manifest at once) deletes the
//! manifest when no tag outside the run's prunes points at it, directly or
//! as an index's child, and leaves the tags with a note otherwise. Blobs
//! are never touched; a deleted tag leaves nothing incomplete behind, and
//! a prune cut short is finished by the next run's plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::StoreMap;
use super::error::ExecError;
use super::moves::other_tags_at;
use super::options::lookup;
use super::status::{Status, Statuses};
use crate::digest::Digest;
use crate::plan::Plan;
use crate::registry::Registry;

/// A prune entry that still holds its planned digest, by its index.
type Held = Vec<(usize, Digest)>;

/// Deletes the target tags of the plan's prune entries; notes on those left.
pub(super) fn prune_targets(plan: &Plan, statuses: &Statuses, stores: &StoreMap) -> Vec<String> {
    let mut by_repository: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, entry) in plan.entries.iter().enumerate() {
        if entry.action.is_prune() && statuses.get(i).is_none() {
            let t = &entry.target;
            by_repository
                .entry((t.registry.as_str(), t.repository.as_str()))
                .or_default()
                .push(i);
        }
    }
    if let Some(signal) = super::stop::requested() {
        for i in by_repository.into_values().flatten() {
            statuses.set(
                i,
                Status::failed(ExecError::Stopped(super::stop::name(signal))),
            );
        }
        return Vec::new();
    }
    by_repository
        .into_par_iter()
        .flat_map_iter(
            |((registry, repository), entries)| match lookup(stores, registry) {
                Ok(store) => prune_repository(plan, statuses, store.as_ref(), repository, &entries),
                Err(e) => {
                    let e = Arc::new(e);
                    for i in entries {
                        statuses.set(i, Status::Failed(e.clone()));
                    }
                    Vec::new()
                }
            },
        )
        .collect()
}

/// The prunes of one target repository; notes on the tags left.
fn prune_repository(
    plan: &Plan,
    statuses: &Statuses,
    target: &dyn Registry,
    repository: &str,
    entries: &[usize],
) -> Vec<String> {
    let mut by_digest: BTreeMap<Digest, Held> = BTreeMap::new();
    for &i in entries {
        let entry = &plan.entries[i];
        let planned = entry
            .target
            .current_digest
            .clone()
            .unwrap_or_else(|| entry.target_digest().clone());
        let name = format!(
            "{}/{repository}:{}",
            entry.target.registry, entry.target.tag
        );
        match target.manifest_head(repository, &entry.target.tag) {
            // Gone already (a prune cut short, or someone else's delete).
            Ok(None) => statuses.set(i, Status::Pruned),
            Ok(Some(head)) if head.digest != planned => statuses.set(
                i,
                Status::Refused(Arc::new(ExecError::TargetChanged {
                    reference: name,
                    planned: planned.short(),
                    now: head.digest.short(),
                })),
            ),
            Ok(Some(_)) => match target.tag_delete(repository, &entry.target.tag) {
                Ok(true) => statuses.set(i, Status::Pruned),
                Err(e) if e.is_not_found() => statuses.set(i, Status::Pruned),
                Ok(false) => by_digest
                    .entry(planned.clone())
                    .or_default()
                    .push((i, planned)),
                Err(e) => statuses.set(i, deletion_failed(&name, e)),
            },
            Err(e) => statuses.set(i, Status::failed(ExecError::Registry(Box::new(e)))),
        }
    }
    by_digest
        .into_iter()
        .filter_map(|(digest, held)| {
            delete_by_digest(plan, statuses, target, repository, &digest, &held)
        })
        .collect()
}

/// Tags of a registry that deletes by digest only, all at `digest`: the
/// manifest is deleted when no other tag needs it; else a note.
fn delete_by_digest(
    plan: &Plan,
    statuses: &Statuses,
    target: &dyn Registry,
    repository: &str,
    digest: &Digest,
    held: &Held,
) -> Option<String> {
    let tags: Vec<String> = held
        .iter()
        .map(|(i, _)| plan.entries[*i].target.tag.clone())
        .collect();
    let registry = &plan.entries[held[0].0].target.registry;
    let names = tags
        .iter()
        .map(|t| format!("{registry}/{repository}:{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let left = |note: String| {
        for (i, _) in held {
            statuses.set(*i, Status::Unchanged);
        }
        Some(note)
    };
    match other_tags_at(target, repository, digest, &tags) {
        Ok(others) if others.is_empty() => {}
        Ok(others) => {
            let verb = if others.len() == 1 { "points" } else { "point" };
            return left(format!(
                "not pruned {names}: {} also {verb} at its image ({}), and the registry deletes by digest only, which would take {} with it",
                others.join(", "),
                digest.short(),
                if others.len() == 1 { "it" } else { "them" }
            ));
        }
        Err(e) => return left(format!("not pruned {names}: {e}")),
    }
    match target.manifest_delete(repository, digest) {
        Err(e) if !e.is_not_found() => {
            let error = Arc::new(ExecError::Write {
                what: format!("deleting {}", digest.short()),
                source: Box::new(e),
            });
            for (i, _) in held {
                statuses.set(*i, Status::Failed(error.clone()));
            }
        }
        _ => {
            for (i, _) in held {
                statuses.set(*i, Status::Pruned);
            }
        }
    }
    None
}

fn deletion_failed(name: &str, e: crate::registry::RegistryError) -> Status {
    Status::failed(ExecError::Write {
        what: format!("deleting {name}"),
        source: Box::new(e),
    })
}
