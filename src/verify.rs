//! `hoist verify`: every target tag in scope points at a complete image at
//! the digest the rules give it.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::gate::PublicKey;
use crate::plan::{Action, ImageKey, Plan, PlanEntry};
use crate::record;
use crate::registry::{ReadOnly, RegistryError};
use crate::registry::{Registry, StoreMap};
use crate::rules::RuleSet;
use crate::tree::{TreeError, read_tree};

/// Problems found, one line each, in plan order.
pub fn verify(plan: &Plan, stores: &StoreMap) -> Vec<String> {
    check(plan, stores).lines
}

/// What verifying found: the problem lines, and the images whose tags are
/// where the rules put them but which lack a manifest or blob below
/// (what `verify --repair` copies again).
pub struct Checked {
    /// One line per problem, in plan order.
    pub lines: Vec<String>,
    /// Target images at the right digest, incomplete below.
    pub incomplete: BTreeSet<ImageKey>,
}

/// Like [`verify`], keeping which images are incomplete.
pub fn check(plan: &Plan, stores: &StoreMap) -> Checked {
    // Each (target registry, repository, digest) is walked once.
    let mut images: BTreeMap<ImageKey, Vec<&PlanEntry>> = BTreeMap::new();
    let mut problems: Vec<(usize, String)> = Vec::new();
    for (i, entry) in plan.entries.iter().enumerate() {
        let name = format!(
            "{}/{}:{}",
            entry.target.registry, entry.target.repository, entry.target.tag
        );
        let expected = match &entry.action {
            // A floating tag kept at a newer version is where it should be.
            Action::Unchanged { kept_at: Some(_) } => entry.target.current_digest.clone(),
            // A fallback index that lists all the source's, and more.
            Action::Unchanged { .. } if entry.role.is_referrers_listing(&entry.target.tag) => {
                entry.target.current_digest.clone()
            }
            _ => Some(entry.target_digest().clone()),
        };
        match (&entry.target.current_digest, expected) {
            (None, _) => problems.push((i, format!("{name}: missing"))),
            (Some(current), Some(expected)) if *current != expected => problems.push((
                i,
                format!(
                    "{name}: points at {}, not {} (from {}/{}:{})",
                    current.short(),
                    expected.short(),
                    entry.source.registry,
                    entry.source.repository,
                    entry.source.tag
                ),
            )),
            // What the target holds is walked, once per image.
            (Some(current), _) => images
                .entry(ImageKey {
                    digest: current.clone(),
                    ..entry.image_key()
                })
                .or_default()
                .push(entry),
        }
    }
    let walked: Vec<(ImageKey, Vec<String>)> = images
        .into_par_iter()
        .map(|(key, entries)| {
            let ImageKey {
                registry,
                repository,
                digest,
            } = &key;
            let found = match stores.get(registry) {
                Some(store) => check_image(store.as_ref(), repository, digest),
                None => vec![format!("registry `{registry}` is not open")],
            };
            let tags: Vec<&str> = entries.iter().map(|e| e.target.tag.as_str()).collect();
            let found = found
                .into_iter()
                .map(|p| {
                    format!(
                        "{registry}/{repository}:{} ({}): {p}",
                        tags.join(","),
                        digest.short()
                    )
                })
                .collect();
            (key, found)
        })
        .collect();
    let mut lines: Vec<String> = problems.into_iter().map(|(_, p)| p).collect();
    let mut incomplete = BTreeSet::new();
    for (key, found) in walked {
        if !found.is_empty() {
            incomplete.insert(key);
        }
        lines.extend(found);
    }
    Checked { lines, incomplete }
}

/// `require_record`: every target image in scope of a rule that requires
/// records must carry a promotion record signed by one of its keys. One
/// line per image that does not.
pub fn records(plan: &Plan, rules: &RuleSet, stores: &StoreMap) -> Vec<String> {
    let mut images: BTreeMap<ImageKey, (Vec<&PublicKey>, Vec<&str>)> = BTreeMap::new();
    for entry in &plan.entries {
        let (Some(current), false) = (&entry.target.current_digest, entry.role.is_attached())
        else {
            continue;
        };
        let keys: Vec<&PublicKey> = entry
            .rules
            .iter()
            .filter_map(|name| rules.get(name)?.require_record.as_deref())
            .flatten()
            .collect();
        if keys.is_empty() {
            continue;
        }
        let key = ImageKey {
            digest: current.clone(),
            ..entry.image_key()
        };
        let (wanted, tags) = images.entry(key).or_default();
        wanted.extend(keys);
        tags.push(&entry.target.tag);
    }
    images
        .into_par_iter()
        .filter_map(|(key, (keys, tags))| {
            let keys: Vec<PublicKey> = keys.into_iter().cloned().collect();
            let why = match stores.get(&key.registry) {
                None => format!("registry `{}` is not open", key.registry),
                Some(store) => {
                    let store = ReadOnly::new(store.clone());
                    match record::records(&store, &key.repository, &key.digest, &keys) {
                        Ok(found) if found.iter().any(|f| f.verified_by.is_some()) => return None,
                        Ok(found) if found.is_empty() => "no promotion record".to_string(),
                        Ok(found) => format!(
                            "{}, none signed by a key of require_record",
                            crate::report::count(
                                found.len(),
                                "promotion record",
                                "promotion records"
                            )
                        ),
                        Err(e) => format!("its promotion records cannot be read: {e}"),
                    }
                }
            };
            Some(format!(
                "{}/{}:{} ({}): require_record: {why}",
                key.registry,
                key.repository,
                tags.join(","),
                key.digest.short()
            ))
        })
        .collect()
}

/// The plan that repairs `incomplete` images: their entries, each to be
/// written again as if the target lacked it (every blob asked for and
/// copied when missing, every manifest put again), copied, never moved.
pub fn repair_plan(plan: &Plan, incomplete: &BTreeSet<ImageKey>) -> Plan {
    let entries: Vec<PlanEntry> = plan
        .entries
        .iter()
        // A floating tag kept at a newer version stays there.
        .filter(|entry| !matches!(entry.action, Action::Unchanged { kept_at: Some(_) }))
        .filter(|entry| {
            entry.target.current_digest.as_ref().is_some_and(|current| {
                incomplete.contains(&ImageKey {
                    digest: current.clone(),
                    ..entry.image_key()
                })
            })
        })
        .cloned()
        .map(|mut entry| {
            entry.action = Action::Update;
            entry.target.current_digest = None;
            entry.travel.mode = crate::plan::Transfer::Copy;
            entry
        })
        .collect();
    Plan {
        new_repositories: Vec::new(),
        skipped: Vec::new(),
        rule_problems: Vec::new(),
        summary: crate::plan::summarize(&entries, 0),
        entries,
        ..plan.clone()
    }
}

/// What is missing or wrong below one manifest in the target: its tree is
/// read as apply reads a source (same depth and width limits, child sizes
/// checked), then every blob is asked for.
fn check_image(store: &dyn Registry, repository: &str, digest: &Digest) -> Vec<String> {
    let missing = |e: &RegistryError| e.is_not_found();
    let fetch = |d: &str| store.manifest_get(repository, d);
    let tree = match read_tree(&fetch, repository, digest, &[], digest) {
        Ok(tree) => tree,
        // The manifest missing may be a child of the image's index.
        Err(TreeError::Read {
            digest: absent,
            error,
        }) if missing(&error) => {
            return vec![format!("manifest {} is missing ({error})", absent.short())];
        }
        Err(e) => return vec![format!("manifest {}: {e}", digest.short())],
    };
    tree.blobs
        .into_par_iter()
        .filter_map(|blob| match store.blob_exists(repository, &blob.digest) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "blob {} ({} bytes) is missing",
                blob.digest.short(),
                blob.size
            )),
            Err(e) => Some(format!("blob {}: {e}", blob.digest.short())),
        })
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
