//! Rules × registries → inventory: lists what the rules need to see, in
//! parallel, through read-only handles. Each source catalog is listed once
//! however many rules use it; each repository's tags once; each tag's digest
//! once.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use self::reads::{Discovery, IndexToFilter, Listed, Tried, handle, read_par};
pub use self::reads::{DiscoveryError, Handles, ReadFailure, Side};
use crate::digest::Digest;
use crate::registry::{ManifestHead, ReadOnly};
use crate::rules::{Rule, RuleSet, SelectedTag};

/// Sees everything the plan needs; runs on the current rayon pool.
pub fn discover(rules: &RuleSet, handles: &Handles) -> Result<Inventory, DiscoveryError> {
    let mut discovery = Discovery::new(rules, handles);
    rayon::join(
        || discovery.list_source_repositories(),
        || prepare_targets(rules, handles),
    );
    discovery.read_repositories();
    discovery.resolve_attached_heads();
    discovery.check_gates();
    discovery.filter_platforms();
    let expansion = expand(rules, &discovery.inventory);
    discovery.list_target_tags(&expansion);
    discovery.probe_targets(&expansion);
    discovery.compare_referrers_listings(&expansion);
    discovery.read_prune_candidates(&expansion);
    discovery.read_contents(&expansion);
    discovery.finish()
}

/// A tag a rule selects in a source repository that exists, with that
/// repository's tags (where the image's signatures are found).
struct Selection<'a> {
    rule: &'a Rule,
    repository: &'a str,
    tags: &'a [String],
    tag: SelectedTag,
}

/// The `(source, target)` registries of move rules that are one store
/// under two names, with a location both reach. Only move rules pay for
/// the name lookups.
fn moves_within_one_store(
    rules: &RuleSet,
    handles: &Handles,
) -> BTreeMap<(String, String), String> {
    let pairs: BTreeSet<(&String, &String)> = rules
        .rules
        .iter()
        .filter(|rule| rule.travel.mode == crate::rules::Transfer::Move)
        .flat_map(|rule| rule.to.iter().map(move |to| (&rule.from, to)))
        .filter(|(from, to)| from != to)
        .collect();
    let names: BTreeSet<&String> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let locations: BTreeMap<&String, Vec<String>> = names
        .into_iter()
        .map(|name| {
            let found = handles.get(name).map(ReadOnly::locations);
            (name, found.unwrap_or_default())
        })
        .collect();
    let mut out = BTreeMap::new();
    for (from, to) in pairs {
        if let Some(location) = crate::registry::one_store(&locations[from], &locations[to]) {
            out.insert((from.clone(), to.clone()), location);
        }
    }
    out
}

impl<'a> Discovery<'a> {
    /// An empty inventory that knows which registries share a store.
    fn new(rules: &'a RuleSet, handles: &'a Handles) -> Self {
        let inventory = Inventory {
            stores: handles
                .iter()
                .map(|(name, h)| (name.clone(), h.store_id()))
                .collect(),
            one_store: moves_within_one_store(rules, handles),
            ..Inventory::default()
        };
        Discovery {
            rules,
            handles,
            inventory,
            failures: Vec::new(),
            tried: Tried::default(),
        }
    }

    /// Step 1: the source repositories, from the catalog unless every rule
    /// reading that registry spells its repositories out. A registry that
    /// does not list its repositories has only the names rules spell out;
    /// its rules matching by glob are then rule problems (planning says
    /// which), not a failed discovery.
    fn list_source_repositories(&mut self) {
        let handles = self.handles;
        let listed = read_par(repository_listings(self.rules), |(registry, literals)| {
            list_repositories(handles, registry, literals.as_ref())
        });
        for ((registry, _), (mut repositories, catalog)) in self.keep(listed) {
            if let Some(catalog) = catalog {
                self.inventory
                    .catalogs
                    .insert(registry.to_string(), catalog);
            }
            // A repository a rule names outright is looked up even when the
            // catalog does not show it, so a typo or a catalog the credentials
            // cannot fully see is reported, not ignored.
            for rule in self.rules.rules.iter().filter(|r| r.from == registry) {
                for name in rule.repositories.named() {
                    if !repositories.contains(&name) {
                        repositories.push(name);
                    }
                }
            }
            self.inventory
                .repositories
                .insert(registry.to_string(), repositories);
        }
    }

    /// Step 3b: signature, attestation and SBOM tags of the selected images,
    /// for rules that carry them.
    fn resolve_attached_heads(&mut self) {
        let carrying = self.rules.rules.iter().filter(|r| r.travel.referrers);
        let mut attached: BTreeSet<TagKey> = BTreeSet::new();
        for selection in selections(carrying, &self.inventory) {
            let Some(head) = self.selected_head(&selection) else {
                continue;
            };
            for name in attached_tag_names(&head.digest, selection.tags) {
                attached.insert(TagKey::new(
                    &selection.rule.from,
                    selection.repository,
                    name,
                ));
            }
        }
        attached.retain(|key| !self.inventory.source_heads.contains_key(key));
        self.resolve_source_heads(attached.into_iter().map(|key| (key, Read::Head)));
    }

    /// Step 3d: indexes whose platforms a rule filters, each read and
    /// filtered once (from one repository holding it) for the new digest.
    fn filter_platforms(&mut self) {
        let filtering = self
            .rules
            .rules
            .iter()
            .filter(|r| !r.travel.platforms.is_empty());
        let mut to_filter: BTreeMap<FilterKey, IndexToFilter> = BTreeMap::new();
        for selection in selections(filtering, &self.inventory) {
            let Some(key) = self
                .selected_head(&selection)
                .and_then(|head| filter_key(selection.rule, head))
            else {
                continue;
            };
            to_filter.entry(key).or_insert_with(|| IndexToFilter {
                repository: selection.repository.to_string(),
                platforms: selection.rule.travel.platforms.clone(),
            });
        }
        let filtered = filter_indexes(self.handles, to_filter);
        for ((key, _), result) in self.keep(filtered) {
            self.inventory.filtered.insert(key, result);
        }
    }

    /// Step 4: the tags of the target repositories step 2 did not list
    /// (those of attached tags, and of repositories planning added).
    fn list_target_tags(&mut self, expansion: &Expansion) {
        let repos: BTreeSet<RepositoryKey> = expansion
            .candidates
            .iter()
            .map(|c| RepositoryKey::new(&c.target_registry, &c.target_repository))
            .collect();
        self.list_target_repositories(repos);
    }

    /// Step 4b: the digests of the target tags the plan compares with, of
    /// those step 3 did not read.
    fn probe_targets(&mut self, expansion: &Expansion) {
        let probes = target_probes(expansion, &self.inventory);
        self.probe_target_tags(probes);
    }

    /// Step 5: the contents of the images that will be copied, for the
    /// estimate; a failure here only makes the estimate partial.
    fn read_contents(&mut self, expansion: &Expansion) {
        let handles = self.handles;
        let read = read_par(
            changing_images(expansion, &self.inventory),
            |((registry, written), image)| {
                let contents = image_contents(
                    handle(handles, registry)?,
                    &image.repository,
                    &image.digest,
                    &image.platforms,
                    written,
                );
                Ok(contents.ok())
            },
        );
        for ((key, _), contents) in read {
            if let Ok(Some(contents)) = contents {
                self.inventory.contents.insert(key, contents);
            }
        }
    }

    /// The inventory, or every failed read in a stable order.
    fn finish(mut self) -> Result<Inventory, DiscoveryError> {
        if self.failures.is_empty() {
            Ok(self.inventory)
        } else {
            self.failures.sort_by_cached_key(ToString::to_string);
            Err(DiscoveryError {
                failures: self.failures,
            })
        }
    }

    /// What a selected tag points at, once step 3 has read it.
    fn selected_head(&self, selection: &Selection<'_>) -> Option<&ManifestHead> {
        let key = TagKey::new(
            &selection.rule.from,
            selection.repository,
            &selection.tag.tag,
        );
        self.inventory.source_heads.get(&key)
    }

    /// The successful reads; each failure joins the report.
    fn keep<K, T>(&mut self, listed: Listed<K, T>) -> Vec<(K, T)> {
        let mut read = Vec::with_capacity(listed.len());
        for (key, result) in listed {
            match result {
                Ok(value) => read.push((key, value)),
                Err(failure) => self.failures.push(failure),
            }
        }
        read
    }
}

/// Per source registry: the repositories its rules spell out, or `None`
/// when some rule there matches by glob, so the catalog must be listed.
fn repository_listings(rules: &RuleSet) -> BTreeMap<&str, Option<BTreeSet<String>>> {
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
    sources
}

/// The repositories of a source registry: the names its rules spell out,
/// or else its catalog and what listing it gave. A registry that answers it
/// lists no catalog has no repositories but those spelled out.
fn list_repositories(
    handles: &Handles,
    registry: &str,
    literals: Option<&BTreeSet<String>>,
) -> Result<(Vec<String>, Option<CatalogListing>), ReadFailure> {
    let Some(names) = literals else {
        return match handle(handles, registry)?.catalog() {
            Ok(names) => {
                let listed = CatalogListing::Listed(names.len());
                Ok((names, Some(listed)))
            }
            Err(error) => match error.catalog_refusal() {
                Some(refusal) => Ok((Vec::new(), Some(CatalogListing::Refused(refusal)))),
                None => Err(ReadFailure::Catalog {
                    registry: registry.to_string(),
                    source: Box::new(error),
                }),
            },
        };
    };
    Ok((names.iter().cloned().collect(), None))
}

/// Every tag `rules` select in the source repositories they match, skipping
/// repositories whose tags are unknown or that do not exist.
fn selections<'r>(
    rules: impl Iterator<Item = &'r Rule>,
    inventory: &'r Inventory,
) -> impl Iterator<Item = Selection<'r>> {
    rules.flat_map(move |rule| {
        matched_repositories(rule, inventory)
            .into_iter()
            .filter_map(move |repository| {
                let key = RepositoryKey::new(&rule.from, repository);
                let Some(Some(tags)) = inventory.source_tags.get(&key) else {
                    return None;
                };
                Some((repository, tags))
            })
            .flat_map(move |(repository, tags)| {
                rule.selection
                    .select_tags(tags)
                    .into_iter()
                    .map(move |tag| Selection {
                        rule,
                        repository,
                        tags,
                        tag,
                    })
            })
    })
}

/// The images the plan may write, keyed by source registry and the digest
/// the target gets, each with where to read it: a repository holding the
/// source manifest, its digest, and the platforms a filtered index keeps.
fn changing_images(
    expansion: &Expansion,
    inventory: &Inventory,
) -> BTreeMap<(String, Digest), ImageToRead> {
    expansion
        .candidates
        .iter()
        .filter(|c| {
            let key = c.target_key();
            let current = inventory.target_heads.get(&key);
            current.is_none_or(|current| *current != c.digest)
                && !inventory.listed_in_target.contains(&key)
        })
        .map(|c| {
            (
                (c.source.registry.clone(), c.digest.clone()),
                ImageToRead {
                    repository: c.source.repository.clone(),
                    digest: c.source.digest.clone(),
                    platforms: c.travel.platforms.clone(),
                },
            )
        })
        .collect()
}

/// Where to read an image the plan may write.
struct ImageToRead {
    /// A source repository holding it.
    repository: String,
    /// The source manifest.
    digest: Digest,
    /// The platforms kept of an index (none: all).
    platforms: Vec<crate::platform::Platform>,
}

/// Opens the target registries (each registry's first request pings it)
/// while the sources' catalogs are listed, so the first reads there do not
/// wait for it.
fn prepare_targets(rules: &RuleSet, handles: &Handles) {
    let sources: BTreeSet<&str> = rules.rules.iter().map(|r| r.from.as_str()).collect();
    let targets: BTreeSet<&str> = rules
        .rules
        .iter()
        .flat_map(|r| r.to.iter().map(String::as_str))
        .filter(|to| !sources.contains(to))
        .collect();
    targets.into_par_iter().for_each(|name| {
        if let Some(store) = handles.get(name) {
            store.prepare();
        }
    });
}

mod expand;
mod gates;
mod heads;
mod images;
mod inventory;
mod listings;
mod prune;
mod reads;
mod source_checks;

use heads::Read;

pub use expand::{
    Candidate, Expansion, Series, attached_tag_names, expand, matched_repositories, target_probes,
};
use images::filter_indexes;
pub use images::image_contents;
pub use inventory::{
    CatalogListing, FilterKey, GateKey, ImageContents, Inventory, RepositoryKey, TagKey, filter_key,
};
pub use prune::{PruneCandidate, prune_candidates};

#[cfg(test)]
mod tests;
