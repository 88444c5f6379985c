//! Steps 2 and 3 of discovery, repository by repository: each source
//! repository's tags are listed together with the tags of the target
//! repositories it maps to; then, at once, its selected tags are resolved
//! and the target tags they would overwrite are read. No repository waits
//! for another, so across a WAN the reads overlap instead of each step
//! waiting for the slowest read of the step before.
//!
//! A source tag none of whose target tags exists will be copied, and its
//! manifest is read anyway (for the estimate, then the copy): it is
//! resolved with that one GET, which the registry's manifest cache keeps
//! for those reads, instead of a HEAD and then a GET. A tag the target has
//! keeps the HEAD, since a GET counts as a pull on Docker Hub and Harbor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use super::expand::matched_repositories;
use super::inventory::{RepositoryKey, TagKey};
use super::reads::{Discovery, Handles, Listed, ReadFailure, Side, handle, read_par, tags_of};
use crate::reference::validate_repository;
use crate::registry::ManifestHead;
use crate::rules::{Rule, SelectedTag};

/// How a source tag's head is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Read {
    /// `HEAD`: only the digest is needed (or the target has the tag).
    Head,
    /// `GET`: the manifest will be read anyway.
    Get,
}

/// What listing a repository's tags gave.
pub(super) enum TagList {
    /// Its tags (none when the registry says the repository does not exist).
    Listed(BTreeSet<String>),
    /// The registry does not list them (what it answered): each tag that
    /// matters is looked up on its own.
    Unlisted(String),
}

/// The tags of one target repository, listed by whichever source
/// repository needs them first.
type TargetListing = OnceLock<Result<TagList, ReadFailure>>;

/// What reading one source repository gave.
struct RepositoryReads {
    key: RepositoryKey,
    tags: Result<Option<Vec<String>>, ReadFailure>,
    heads: Listed<(TagKey, Read), Option<ManifestHead>>,
    probes: Listed<(TagKey, Read), Option<ManifestHead>>,
    /// The registry does not list its tags (what it answered): only the
    /// tags its rules name or pin were looked up.
    unlisted: Option<String>,
}

/// What the reads of every source repository share: the target listings
/// (each listed once), the target repositories a selected tag writes to,
/// the target tags already claimed for a probe, and the source registries
/// whose referrers API was asked about.
struct Shared<'a> {
    handles: &'a Handles,
    targets: BTreeMap<RepositoryKey, TargetListing>,
    needed: Mutex<BTreeSet<RepositoryKey>>,
    claimed: Mutex<BTreeSet<TagKey>>,
    referrers_asked: Mutex<BTreeSet<String>>,
}

impl Discovery<'_> {
    /// Steps 2 and 3: the tags of each source repository a rule matches and
    /// of the target repositories it maps to, the digest of every selected
    /// source tag (by GET when it will be copied to every target of every
    /// rule selecting it), and the digests of the target tags those would
    /// overwrite.
    pub(super) fn read_repositories(&mut self) {
        let mut units: BTreeMap<RepositoryKey, Vec<&Rule>> = BTreeMap::new();
        for rule in &self.rules.rules {
            for repository in matched_repositories(rule, &self.inventory) {
                let rules = units.entry(RepositoryKey::new(&rule.from, repository));
                rules.or_default().push(rule);
            }
        }
        let units: Vec<(RepositoryKey, Vec<&Rule>, Vec<RepositoryKey>)> = units
            .into_iter()
            .map(|(key, rules)| {
                let mapped = mapped_targets(&rules, &key.repository);
                (key, rules, mapped)
            })
            .collect();
        let shared = Shared {
            handles: self.handles,
            targets: units
                .iter()
                .flat_map(|(_, _, mapped)| mapped.iter().cloned())
                .map(|key| (key, TargetListing::new()))
                .collect(),
            needed: Mutex::new(BTreeSet::new()),
            claimed: Mutex::new(BTreeSet::new()),
            referrers_asked: Mutex::new(BTreeSet::new()),
        };
        let read: Vec<RepositoryReads> = units
            .into_par_iter()
            .map(|(key, rules, mapped)| shared.read_repository(key, &rules, &mapped))
            .collect();
        for reads in read {
            if let Some(said) = reads.unlisted {
                self.inventory.unlisted.insert(reads.key.clone(), said);
            }
            match reads.tags {
                Ok(tags) => {
                    self.inventory.source_tags.insert(reads.key, tags);
                }
                Err(failure) => self.failures.push(failure),
            }
            for ((key, _), head) in self.keep(reads.heads) {
                if let Some(head) = head {
                    self.inventory.source_heads.insert(key, head);
                }
            }
            self.keep_probes(reads.probes);
        }
        // Targets are listed before their source's tags are known; one no
        // selected tag writes to is left out, listed or failed, as if never
        // read: step 4 lists it again if planning needs it after all.
        let needed = shared
            .needed
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        for (key, listing) in shared.targets {
            if let Some(listed) = listing.into_inner()
                && needed.contains(&key)
            {
                self.keep_target_listing(key, listed);
            }
        }
    }

    /// Lists the tags of the target repositories not listed yet.
    pub(super) fn list_target_repositories(&mut self, mut repos: BTreeSet<RepositoryKey>) {
        repos.retain(|key| !self.tried.targets.contains(key));
        let handles = self.handles;
        for (key, tags) in read_par(repos, |key| target_listing(handles, key)) {
            self.keep_target_listing(key, tags);
        }
    }

    /// A target repository's tags; one the target does not have yet holds
    /// none. A listing that failed is reported once and not tried again.
    fn keep_target_listing(&mut self, key: RepositoryKey, listed: Result<TagList, ReadFailure>) {
        self.tried.targets.insert(key.clone());
        match listed {
            Ok(TagList::Listed(tags)) => {
                self.inventory.target_tags.insert(key, tags);
            }
            Ok(TagList::Unlisted(said)) => {
                self.inventory.unlisted.insert(key, said);
            }
            Err(failure) => self.failures.push(failure),
        }
    }

    /// Reads the heads of the target tags not probed yet into the inventory.
    pub(super) fn probe_target_tags(&mut self, mut keys: BTreeSet<TagKey>) {
        keys.retain(|key| !self.tried.probes.contains(key));
        let keys = keys.into_iter().map(|key| (key, Read::Head)).collect();
        let listed = read_heads(self.handles, keys, Side::Target);
        self.keep_probes(listed);
    }

    /// The digests target tags hold; a tag that does not exist stays absent.
    fn keep_probes(&mut self, listed: Listed<(TagKey, Read), Option<ManifestHead>>) {
        self.tried
            .probes
            .extend(listed.iter().map(|((key, _), _)| key.clone()));
        for ((key, _), head) in self.keep(listed) {
            if let Some(head) = head {
                self.inventory.target_heads.insert(key, head.digest);
            }
        }
    }

    /// Reads the heads of source tags into the inventory; a tag that does
    /// not exist stays absent.
    pub(super) fn resolve_source_heads(&mut self, keys: impl IntoIterator<Item = (TagKey, Read)>) {
        let keys: Vec<(TagKey, Read)> = keys.into_iter().collect();
        let listed = read_heads(self.handles, keys, Side::Source);
        for ((key, _), head) in self.keep(listed) {
            if let Some(head) = head {
                self.inventory.source_heads.insert(key, head);
            }
        }
    }
}

impl Shared<'_> {
    /// One source repository: its tags listed beside its target
    /// repositories', then its selected tags and the target tags they would
    /// overwrite read together.
    fn read_repository(
        &self,
        key: RepositoryKey,
        rules: &[&Rule],
        mapped: &[RepositoryKey],
    ) -> RepositoryReads {
        let (tags, ()) = rayon::join(
            || source_tags(self.handles, &key, rules),
            || {
                mapped.par_iter().for_each(|target| {
                    self.target_tags(target);
                });
            },
        );
        let mut heads: BTreeMap<TagKey, Read> = BTreeMap::new();
        let mut probes: BTreeSet<TagKey> = BTreeSet::new();
        if let Ok((Some(source_tags), _)) = &tags {
            for rule in rules {
                let selected_tags = rule.selection.select_tags(source_tags);
                if !selected_tags.is_empty() {
                    let target = rule.naming.target_repository(&key.repository);
                    let mut needed = self.needed.lock().unwrap_or_else(|p| p.into_inner());
                    needed.extend(rule.to.iter().map(|to| RepositoryKey::new(to, &target)));
                }
                for selected in selected_tags {
                    let read = self.plan_reads(rule, &key.repository, &selected, &mut probes);
                    // Any rule that finds a target tag present makes it a HEAD.
                    let slot = heads.entry(TagKey::new(&rule.from, &key.repository, &selected.tag));
                    let slot = slot.or_insert(read);
                    *slot = (*slot).min(read);
                }
            }
        }
        probes.retain(|probe| {
            let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
            claimed.insert(probe.clone())
        });
        let probes = probes
            .into_iter()
            .map(|probe| (probe, Read::Head))
            .collect();
        let (heads, probes) = rayon::join(
            || read_heads(self.handles, heads.into_iter().collect(), Side::Source),
            || read_heads(self.handles, probes, Side::Target),
        );
        if rules.iter().any(|rule| rule.travel.referrers) {
            self.ask_referrers_api(&heads);
        }
        let (tags, unlisted) = match tags {
            Ok((tags, unlisted)) => (Ok(tags), unlisted),
            Err(failure) => (Err(failure), None),
        };
        RepositoryReads {
            key,
            tags,
            heads,
            probes,
            unlisted,
        }
    }

    /// Asks the source registry, once per run, whether it has the
    /// referrers API, with a listing of the first image read there. Copying
    /// (or keeping) images with their referrers asks it anyway; asked here,
    /// beside other reads, the answer is known (and kept by the registry's
    /// handle) before execution starts, instead of costing a round trip of
    /// its own after planning. What it answers is for execution to use.
    fn ask_referrers_api(&self, heads: &Listed<(TagKey, Read), Option<ManifestHead>>) {
        let Some((
            (
                TagKey {
                    registry,
                    repository,
                    ..
                },
                _,
            ),
            head,
        )) = heads
            .iter()
            .find_map(|(key, head)| Some((key, head.as_ref().ok()?.as_ref()?)))
        else {
            return;
        };
        let first = {
            let mut asked = self
                .referrers_asked
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            asked.insert(registry.clone())
        };
        if first && let Some(store) = self.handles.get(registry) {
            let _ = store.referrers(repository, &head.digest);
        }
    }

    /// How to read a selected source tag: by GET when every target tag it
    /// writes is known to be absent. The target tags it would overwrite
    /// join `probes`.
    fn plan_reads(
        &self,
        rule: &Rule,
        repository: &str,
        selected: &SelectedTag,
        probes: &mut BTreeSet<TagKey>,
    ) -> Read {
        let written = rule.naming.written_as(selected, repository);
        if written.is_empty() {
            return Read::Head;
        }
        let target = rule.naming.target_repository(repository);
        let mut absent = true;
        for to in &rule.to {
            let repo = RepositoryKey::new(to, &target);
            let Some(Ok(listed)) = self.targets.get(&repo).and_then(OnceLock::get) else {
                absent = false;
                continue;
            };
            for tag in &written {
                // Unlisted: the tag may be there; only its own HEAD can say.
                let present = match listed {
                    TagList::Listed(present) => present.contains(tag),
                    TagList::Unlisted(_) => true,
                };
                if present {
                    absent = false;
                    probes.insert(TagKey::new(to, &target, tag));
                }
            }
        }
        if absent { Read::Get } else { Read::Head }
    }

    /// The tags of a target repository, listed on first use.
    fn target_tags(&self, key: &RepositoryKey) -> Option<&Result<TagList, ReadFailure>> {
        let listing = self.targets.get(key)?;
        Some(listing.get_or_init(|| target_listing(self.handles, key)))
    }
}

/// The tags of a target repository; one the target does not have yet
/// holds none, and one whose registry does not list tags is unlisted (an
/// empty listing would let a present tag be overwritten as new).
fn target_listing(handles: &Handles, key: &RepositoryKey) -> Result<TagList, ReadFailure> {
    match tags_of(handles, key) {
        Ok(tags) => Ok(TagList::Listed(
            tags.unwrap_or_default().into_iter().collect(),
        )),
        Err(ReadFailure::Tags { source, .. }) if source.is_unlisted() => {
            Ok(TagList::Unlisted(source.to_string()))
        }
        Err(failure) => Err(failure),
    }
}

/// The tags of a source repository (`None`: it does not exist). Where the
/// registry does not list them, the tags its rules name or pin stand in,
/// each looked up on its own, with what the registry answered: rules that
/// select by glob cannot be planned there, and say so.
fn source_tags(
    handles: &Handles,
    key: &RepositoryKey,
    rules: &[&Rule],
) -> Result<(Option<Vec<String>>, Option<String>), ReadFailure> {
    match tags_of(handles, key) {
        Ok(tags) => Ok((tags.map(|tags| with_digests_named(tags, rules)), None)),
        Err(ReadFailure::Tags { source, .. }) if source.is_unlisted() => {
            let named: BTreeSet<String> = rules
                .iter()
                .flat_map(|rule| {
                    rule.selection
                        .tags
                        .named()
                        .into_iter()
                        .chain(rule.selection.pins.keys().cloned())
                })
                .collect();
            Ok((Some(named.into_iter().collect()), Some(source.to_string())))
        }
        Err(failure) => Err(failure),
    }
}

/// A repository's tags, and the digests its rules name among their tags
/// (`hoist promote REPO@sha256:…`): no tag has a `:`, so such a name can
/// only be an image by digest, looked up as a tag is.
fn with_digests_named(mut tags: Vec<String>, rules: &[&Rule]) -> Vec<String> {
    for rule in rules {
        for name in rule.selection.tags.named() {
            if name.contains(':') && !tags.contains(&name) {
                tags.push(name);
            }
        }
    }
    tags
}

/// The target repositories `rules` map source `repository` to (those with
/// a valid name).
fn mapped_targets(rules: &[&Rule], repository: &str) -> Vec<RepositoryKey> {
    let mut mapped = Vec::new();
    for rule in rules {
        let target = rule.naming.target_repository(repository);
        if validate_repository(&target, &target).is_err() {
            continue;
        }
        mapped.extend(rule.to.iter().map(|to| RepositoryKey::new(to, &target)));
    }
    mapped
}

/// What each tag points at; `None` for a tag that does not exist.
pub(super) fn read_heads(
    handles: &Handles,
    keys: Vec<(TagKey, Read)>,
    side: Side,
) -> Listed<(TagKey, Read), Option<ManifestHead>> {
    read_par(
        keys,
        |(
            TagKey {
                registry,
                repository,
                tag,
            },
            read,
        )| {
            let store = handle(handles, registry)?;
            let head = match read {
                Read::Head => store.manifest_head(repository, tag),
                Read::Get => match store.manifest_get(repository, tag) {
                    Ok(manifest) => Ok(Some(ManifestHead {
                        size: manifest.bytes.len() as u64,
                        digest: manifest.digest,
                        media_type: manifest.media_type,
                    })),
                    Err(e) if e.is_not_found() => Ok(None),
                    // A manifest the client refuses (too large, of an unknown
                    // type, not hashing to its digest) fails its image when it is
                    // copied, not the whole plan: its digest by HEAD, as before.
                    Err(_) => store.manifest_head(repository, tag),
                },
            };
            head.map_err(|source| ReadFailure::Head {
                side,
                registry: registry.clone(),
                repository: repository.clone(),
                tag: tag.clone(),
                source: Box::new(source),
            })
        },
    )
}
