//! Rules × registries → inventory: lists what the rules need to see, in
//! parallel, through read-only handles. Each source catalog is listed once
//! however many rules use it; each repository's tags once; each tag's digest
//! once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::plan::{self, ImageContents, Inventory, RepoKey, TagKey};
use crate::registry::ReadOnly;
use crate::rules::RuleSet;
use crate::tree::read_tree;

/// Every read that failed while discovering.
#[derive(Debug)]
pub struct DiscoveryError {
    /// `what: why`, one per failure, in a stable order.
    pub failures: Vec<String>,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery failed ({} errors)", self.failures.len())?;
        for failure in self.failures.iter().take(20) {
            write!(f, "\n  {failure}")?;
        }
        if self.failures.len() > 20 {
            write!(f, "\n  ... and {} more", self.failures.len() - 20)?;
        }
        Ok(())
    }
}

impl std::error::Error for DiscoveryError {}

/// Results of parallel reads by key; the error is a message naming what failed.
type Listed<K, T> = Vec<(K, Result<T, String>)>;

/// Read-only handles to the registries the rules name, by name.
pub type Handles = BTreeMap<String, ReadOnly>;

/// Sees everything the plan needs; runs on the current rayon pool.
pub fn discover(rules: &RuleSet, handles: &Handles) -> Result<Inventory, DiscoveryError> {
    let mut failures = Vec::new();
    let mut inventory = Inventory {
        stores: handles
            .iter()
            .map(|(name, h)| (name.clone(), h.store_id()))
            .collect(),
        ..Inventory::default()
    };

    // 1. Source repositories: the catalog, unless every rule reading that
    //    registry spells its repositories out.
    let mut sources: BTreeMap<&str, Option<BTreeSet<String>>> = BTreeMap::new();
    for rule in &rules.rules {
        let literals = rule.repositories.literals();
        let slot = sources
            .entry(rule.from.as_str())
            .or_insert_with(|| Some(BTreeSet::new()));
        match (slot.as_mut(), literals) {
            (Some(names), Some(literals)) => names.extend(literals),
            _ => *slot = None,
        }
    }
    let listed: Listed<String, Vec<String>> = sources
        .into_par_iter()
        .map(|(registry, literals)| {
            let result = match literals {
                Some(names) => Ok(names.into_iter().collect()),
                None => handle(handles, registry)
                    .and_then(|h| h.catalog().map_err(|e| e.to_string()))
                    .map_err(|e| format!("listing the catalog of `{registry}`: {e}")),
            };
            (registry.to_string(), result)
        })
        .collect();
    for (registry, mut repositories) in collect(listed, &mut failures) {
        // A repository a rule names outright is looked up even when the
        // catalog does not show it, so a typo or a catalog the credentials
        // cannot fully see is reported, not ignored.
        for rule in rules.rules.iter().filter(|r| r.from == registry) {
            for name in rule.repositories.named() {
                if !repositories.contains(&name) {
                    repositories.push(name);
                }
            }
        }
        inventory.repositories.insert(registry, repositories);
    }

    // 2. Tags of each matched source repository.
    let repos: BTreeSet<RepoKey> = rules
        .rules
        .iter()
        .flat_map(|rule| {
            plan::matched_repositories(rule, &inventory)
                .into_iter()
                .map(|repo| plan::repo_key(&rule.from, repo))
        })
        .collect();
    for (key, tags) in collect(par_tags(handles, repos), &mut failures) {
        inventory.source_tags.insert(key, tags);
    }

    // 3. Digests of the selected source tags.
    let mut selected: BTreeSet<TagKey> = BTreeSet::new();
    for rule in &rules.rules {
        for repo in plan::matched_repositories(rule, &inventory) {
            if let Some(Some(tags)) = inventory.source_tags.get(&plan::repo_key(&rule.from, repo)) {
                for tag in rule.select_tags(tags) {
                    selected.insert(plan::tag_key(&rule.from, repo, &tag.tag));
                }
            }
        }
    }
    for (key, head) in collect(par_heads(handles, selected, "source"), &mut failures) {
        if let Some(head) = head {
            inventory.source_heads.insert(key, head);
        }
    }

    // 3b. Signature, attestation and SBOM tags of the selected images, for
    //     rules that carry them.
    let mut attached: BTreeSet<TagKey> = BTreeSet::new();
    // 3c. Indexes whose platforms a rule filters: read, filtered, digested.
    let mut to_filter: BTreeMap<(String, Digest, String), (String, Vec<String>)> = BTreeMap::new();
    for rule in rules
        .rules
        .iter()
        .filter(|r| r.referrers || !r.platforms.is_empty())
    {
        for repo in plan::matched_repositories(rule, &inventory) {
            let Some(Some(tags)) = inventory.source_tags.get(&plan::repo_key(&rule.from, repo))
            else {
                continue;
            };
            for tag in rule.select_tags(tags) {
                let Some(head) = inventory
                    .source_heads
                    .get(&plan::tag_key(&rule.from, repo, &tag.tag))
                else {
                    continue;
                };
                if rule.referrers {
                    for name in plan::attached_tag_names(&head.digest, tags) {
                        attached.insert(plan::tag_key(&rule.from, repo, name));
                    }
                }
                if !rule.platforms.is_empty() && crate::manifest::is_index(&head.media_type) {
                    to_filter
                        .entry((
                            rule.from.clone(),
                            head.digest.clone(),
                            rule.platforms.join(","),
                        ))
                        .or_insert_with(|| (repo.clone(), rule.platforms.clone()));
                }
            }
        }
    }
    attached.retain(|key| !inventory.source_heads.contains_key(key));
    for (key, head) in collect(par_heads(handles, attached, "source"), &mut failures) {
        if let Some(head) = head {
            inventory.source_heads.insert(key, head);
        }
    }
    let filtered: Vec<_> = to_filter
        .into_par_iter()
        .map(|(key, (repository, platforms))| {
            let result = handle(handles, &key.0).and_then(|h| {
                let index = h
                    .manifest_get(&repository, &key.1.to_string())
                    .map_err(|e| e.to_string())?;
                Ok(crate::manifest::filter_index(&index, &platforms).map(|m| m.digest))
            });
            (key, result)
        })
        .collect();
    for (key, result) in collect(filtered, &mut failures) {
        inventory.filtered.insert(key, result);
    }

    // 4. What the targets hold: their tag lists, then the tags the plan compares.
    let expansion = plan::expand(rules, &inventory);
    let target_repos: BTreeSet<RepoKey> = expansion
        .candidates
        .iter()
        .map(|c| plan::repo_key(&c.target_registry, &c.target_repository))
        .collect();
    for (key, tags) in collect(par_tags(handles, target_repos), &mut failures) {
        // A repository the target does not have yet holds no tags.
        inventory
            .target_tags
            .insert(key, tags.unwrap_or_default().into_iter().collect());
    }
    let probes = plan::target_probes(&expansion, &inventory);
    for (key, head) in collect(par_heads(handles, probes, "target"), &mut failures) {
        if let Some(head) = head {
            inventory.target_heads.insert(key, head.digest);
        }
    }

    // 5. Contents of the images that will be copied, for the estimate. A
    //    failure here only makes the estimate partial.
    // Each image once per source registry, read from one repository holding it.
    let changing: BTreeMap<(String, Digest), String> = expansion
        .candidates
        .iter()
        .filter(|c| {
            inventory
                .target_heads
                .get(&c.target_key())
                .is_none_or(|current| current.to_string() != c.digest)
        })
        .filter_map(|c| {
            let digest = c.source.digest.parse().ok()?;
            Some((
                (c.source.registry.clone(), digest),
                c.source.repository.clone(),
            ))
        })
        .collect();
    let contents: Vec<((String, Digest), Option<ImageContents>)> = changing
        .into_par_iter()
        .map(|((registry, digest), repository)| {
            let contents = handle(handles, &registry)
                .ok()
                .and_then(|h| image_contents(&h, &repository, &digest).ok());
            ((registry, digest), contents)
        })
        .collect();
    for (key, contents) in contents {
        if let Some(contents) = contents {
            inventory.contents.insert(key, contents);
        }
    }

    if failures.is_empty() {
        Ok(inventory)
    } else {
        failures.sort();
        Err(DiscoveryError { failures })
    }
}

fn handle(handles: &Handles, name: &str) -> Result<ReadOnly, String> {
    handles
        .get(name)
        .cloned()
        .ok_or_else(|| format!("registry `{name}` is not open"))
}

/// The successful reads; each failure's message joins `failures`.
fn collect<K, T>(listed: Listed<K, T>, failures: &mut Vec<String>) -> Vec<(K, T)> {
    let mut read = Vec::with_capacity(listed.len());
    for (key, result) in listed {
        match result {
            Ok(value) => read.push((key, value)),
            Err(failure) => failures.push(failure),
        }
    }
    read
}

/// Tags of each repository; `None` for a repository the registry does not have.
fn par_tags(handles: &Handles, keys: BTreeSet<RepoKey>) -> Listed<RepoKey, Option<Vec<String>>> {
    keys.into_par_iter()
        .map(|key| {
            let result = handle(handles, &key.0).and_then(|h| match h.tags(&key.1) {
                Ok(tags) => Ok(Some(tags)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(format!("listing tags of {}/{}: {e}", key.0, key.1)),
            });
            (key, result)
        })
        .collect()
}

/// What each tag points at; `None` for a tag that does not exist.
fn par_heads(
    handles: &Handles,
    keys: BTreeSet<TagKey>,
    side: &str,
) -> Listed<TagKey, Option<crate::registry::ManifestHead>> {
    keys.into_par_iter()
        .map(|key| {
            let result = handle(handles, &key.0).and_then(|h| {
                h.manifest_head(&key.1, &key.2)
                    .map_err(|e| format!("reading {side} tag {}/{}:{}: {e}", key.0, key.1, key.2))
            });
            (key, result)
        })
        .collect()
}

/// Child manifests and blobs of an image, each once: the tree apply copies.
fn image_contents(
    handle: &ReadOnly,
    repository: &str,
    digest: &Digest,
) -> Result<ImageContents, String> {
    let fetch = |d: &str| handle.manifest_get(repository, d);
    let tree = read_tree(&fetch, repository, digest, &[], digest).map_err(|e| e.to_string())?;
    let mut manifests: Vec<Digest> = tree.manifests.iter().map(|m| m.digest.clone()).collect();
    // The root is the image itself, not a child.
    manifests.pop();
    manifests.sort();
    let mut blobs: Vec<(Digest, u64)> =
        tree.blobs.into_iter().map(|b| (b.digest, b.size)).collect();
    blobs.sort();
    Ok(ImageContents { manifests, blobs })
}
