//! `hoist verify`: every target tag in scope points at a complete image at
//! the digest the rules give it.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::execute::StoreMap;
use crate::manifest::Manifest;
use crate::plan::{Action, Plan, PlanEntry, short_digest};
use crate::registry::Registry;
use crate::tree::{MAX_DEPTH, is_stored};

/// Problems found, one line each, in plan order.
pub fn verify(plan: &Plan, stores: &StoreMap) -> Vec<String> {
    // Each (target registry, repository, digest) is walked once.
    let mut images: BTreeMap<(String, String, String), Vec<&PlanEntry>> = BTreeMap::new();
    let mut problems: Vec<(usize, String)> = Vec::new();
    for (i, entry) in plan.entries.iter().enumerate() {
        let name = format!(
            "{}/{}:{}",
            entry.target.registry, entry.target.repository, entry.target.tag
        );
        let expected = match (&entry.action, &entry.reason) {
            // A floating tag kept at a newer version is where it should be.
            (Action::Unchanged, Some(_)) => entry.target.current_digest.clone(),
            _ => Some(entry.target_digest().to_string()),
        };
        match (&entry.target.current_digest, expected) {
            (None, _) => problems.push((i, format!("{name}: missing"))),
            (Some(current), Some(expected)) if *current != expected => problems.push((
                i,
                format!(
                    "{name}: points at {}, not {} (from {}/{}:{})",
                    short_digest(current),
                    short_digest(&expected),
                    entry.source.registry,
                    entry.source.repository,
                    entry.source.tag
                ),
            )),
            (Some(current), _) => images
                .entry((
                    entry.target.registry.clone(),
                    entry.target.repository.clone(),
                    current.clone(),
                ))
                .or_default()
                .push(entry),
        }
    }
    let walked: Vec<((String, String, String), Vec<String>)> = images
        .into_par_iter()
        .map(|((registry, repository, digest), entries)| {
            let found = match stores.get(&registry) {
                Some(store) => check_image(store.as_ref(), &repository, &digest),
                None => vec![format!("registry `{registry}` is not open")],
            };
            let tags: Vec<&str> = entries.iter().map(|e| e.target.tag.as_str()).collect();
            let found = found
                .into_iter()
                .map(|p| {
                    format!(
                        "{registry}/{repository}:{} ({}): {p}",
                        tags.join(","),
                        short_digest(&digest)
                    )
                })
                .collect();
            ((registry, repository, digest), found)
        })
        .collect();
    let mut lines: Vec<String> = problems.into_iter().map(|(_, p)| p).collect();
    for (_, found) in walked {
        lines.extend(found);
    }
    lines
}

/// What is missing or wrong below one manifest in the target.
fn check_image(store: &dyn Registry, repository: &str, digest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut blobs = BTreeSet::new();
    let mut seen = BTreeSet::new();
    walk(
        store,
        repository,
        digest,
        0,
        &mut blobs,
        &mut seen,
        &mut problems,
    );
    let missing: Vec<String> = blobs
        .into_par_iter()
        .filter_map(
            |(blob, size): (Digest, u64)| match store.blob_exists(repository, &blob) {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "blob {} ({size} bytes) is missing",
                    short_digest(&blob.to_string())
                )),
                Err(e) => Some(format!("blob {}: {e}", short_digest(&blob.to_string()))),
            },
        )
        .collect();
    problems.extend(missing);
    problems
}

fn walk(
    store: &dyn Registry,
    repository: &str,
    digest: &str,
    depth: usize,
    blobs: &mut BTreeSet<(Digest, u64)>,
    seen: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    if !seen.insert(digest.to_string()) {
        return;
    }
    let manifest: Manifest = match store.manifest_get(repository, digest) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => {
            problems.push(format!("manifest {} is missing", short_digest(digest)));
            return;
        }
        Err(e) => {
            problems.push(format!("manifest {}: {e}", short_digest(digest)));
            return;
        }
    };
    let view = match manifest.view() {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("manifest {}: {e}", short_digest(digest)));
            return;
        }
    };
    if depth >= MAX_DEPTH && !view.manifests.is_empty() {
        problems.push(format!(
            "manifest {}: indexes nested deeper than {MAX_DEPTH}",
            short_digest(digest)
        ));
    }
    if depth < MAX_DEPTH {
        for child in &view.manifests {
            walk(
                store,
                repository,
                &child.digest.to_string(),
                depth + 1,
                blobs,
                seen,
                problems,
            );
        }
    }
    for blob in view.blobs {
        if is_stored(&blob) {
            blobs.insert((blob.digest, blob.size));
        }
    }
}
