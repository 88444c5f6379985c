//! Steps 2b and 3 of discovery: what the selected source tags point at.
//!
//! The target repositories' tags are listed first. A source tag none of
//! whose target tags exists will be copied, and its manifest is read anyway
//! (for the estimate, then the copy): it is resolved with that one GET,
//! which the registry's manifest cache keeps for those reads, instead of a
//! HEAD and then a GET. A tag the target has keeps the HEAD, since a GET
//! counts as a pull on Docker Hub and Harbor.

use std::collections::BTreeSet;

use super::{
    Discovery, Handles, Listed, ReadFailure, Side, handle, list_tags, read_par, selections,
};
use crate::plan::{self, RepoKey, TagKey};
use crate::reference::validate_repository;
use crate::registry::ManifestHead;
use crate::rules::Values;

/// How a source tag's head is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Read {
    /// `HEAD`: only the digest is needed (or the target has the tag).
    Head,
    /// `GET`: the manifest will be read anyway.
    Get,
}

impl Discovery<'_> {
    /// Step 2b: the tags of the target repositories the selected source
    /// repositories map to, before their heads are read.
    pub(super) fn list_mapped_target_tags(&mut self) {
        let mut repos: BTreeSet<RepoKey> = BTreeSet::new();
        for selection in selections(self.rules.rules.iter(), &self.inventory) {
            let target = selection.rule.target_repository(selection.repository);
            if validate_repository(&target, &target).is_err() {
                continue;
            }
            for to in &selection.rule.to {
                repos.insert(plan::repo_key(to, &target));
            }
        }
        self.list_target_repositories(repos);
    }

    /// Lists the tags of the target repositories not listed yet; one the
    /// target does not have yet holds none.
    pub(super) fn list_target_repositories(&mut self, mut repos: BTreeSet<RepoKey>) {
        repos.retain(|key| !self.inventory.target_tags.contains_key(key));
        let listed = list_tags(self.handles, repos);
        for (key, tags) in self.keep(listed) {
            self.inventory
                .target_tags
                .insert(key, tags.unwrap_or_default().into_iter().collect());
        }
    }

    /// Step 3: the digest of every selected source tag, by GET when it
    /// will be copied to every target of every rule selecting it.
    pub(super) fn resolve_selected_heads(&mut self) {
        let mut reads: std::collections::BTreeMap<TagKey, Read> = Default::default();
        for selection in selections(self.rules.rules.iter(), &self.inventory) {
            let key = plan::tag_key(
                &selection.rule.from,
                selection.repository,
                &selection.tag.tag,
            );
            let read = if self.absent_from_targets(&selection) {
                Read::Get
            } else {
                Read::Head
            };
            // Any rule that finds a target tag present makes it a HEAD.
            let slot = reads.entry(key).or_insert(read);
            *slot = (*slot).min(read);
        }
        self.resolve_source_heads(reads);
    }

    /// Whether every target tag a selection writes is known to be absent
    /// (its target repositories listed, none holding it).
    fn absent_from_targets(&self, selection: &super::Selection<'_>) -> bool {
        let rule = selection.rule;
        let selected = &selection.tag;
        let Some(rendered) = rule.tag.render(&Values {
            tag: &selected.tag,
            version: selected.version.as_ref(),
            path: selection.repository,
        }) else {
            return false;
        };
        let target = rule.target_repository(selection.repository);
        rule.to.iter().all(|to| {
            self.inventory
                .target_tags
                .get(&plan::repo_key(to, &target))
                .is_some_and(|tags| {
                    let kept_source_tag = rule.keep_source_tag && tags.contains(&selected.tag);
                    !tags.contains(&rendered) && !kept_source_tag
                })
        })
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

/// What each tag points at; `None` for a tag that does not exist.
pub(super) fn read_heads(
    handles: &Handles,
    keys: Vec<(TagKey, Read)>,
    side: Side,
) -> Listed<(TagKey, Read), Option<ManifestHead>> {
    read_par(keys, |((registry, repository, tag), read)| {
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
    })
}
