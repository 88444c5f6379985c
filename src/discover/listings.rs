//! Step 4c of discovery: referrers fallback indexes the target has added
//! to. A source's `sha256-<hex>` index is carried by merging it into the
//! target's (see `execute::manifests`), so a target index that lists every
//! referrer the source's lists holds all the source's says, whatever else
//! it lists (promotion records, signatures made in the target): the tag
//! is unchanged, not written back to the source's smaller listing.

use std::collections::BTreeMap;

use super::expand::Expansion;
use super::inventory::TagKey;
use super::reads::{Discovery, ReadFailure, Side, handle, read_par};
use crate::digest::Digest;
use crate::referrers::ReferrersIndex;
use crate::registry::ReadOnly;

/// Where the source's index of one target fallback tag is read.
struct SourceIndex {
    registry: String,
    repository: String,
    digest: Digest,
}

impl Discovery<'_> {
    /// Each target fallback tag that holds another index than the source's:
    /// whether it lists all the source's referrers.
    pub(super) fn compare_referrers_listings(&mut self, expansion: &Expansion) {
        let differing: BTreeMap<TagKey, SourceIndex> = expansion
            .candidates
            .iter()
            .filter(|c| c.role.is_referrers_listing(&c.target_tag))
            .filter(|c| {
                let current = self.inventory.target_heads.get(&c.target_key());
                current.is_some_and(|current| *current != c.digest)
            })
            .map(|c| {
                let source = SourceIndex {
                    registry: c.source.registry.clone(),
                    repository: c.source.repository.clone(),
                    digest: c.digest.clone(),
                };
                (c.target_key(), source)
            })
            .collect();
        let handles = self.handles;
        let read = read_par(differing, |(key, source)| {
            let from = handle(handles, &source.registry)?;
            let to = handle(handles, &key.registry)?;
            lists_all(from, source, to, key)
        });
        for ((key, _), lists) in self.keep(read) {
            if lists {
                self.inventory.listed_in_target.insert(key);
            }
        }
    }
}

/// Whether the target's index under `key` lists every referrer of the
/// source's. A tag that holds no index is not (the copy says why).
fn lists_all(
    from: &ReadOnly,
    source: &SourceIndex,
    to: &ReadOnly,
    key: &TagKey,
) -> Result<bool, ReadFailure> {
    let read = |store: &ReadOnly, side, registry: &str, repository: &str, reference: &str| {
        store
            .manifest_get(repository, reference)
            .map_err(|e| ReadFailure::Head {
                side,
                registry: registry.to_string(),
                repository: repository.to_string(),
                tag: reference.to_string(),
                source: Box::new(e),
            })
    };
    let theirs = read(
        from,
        Side::Source,
        &source.registry,
        &source.repository,
        &source.digest.to_string(),
    )?;
    let ours = read(to, Side::Target, &key.registry, &key.repository, &key.tag)?;
    Ok(
        match (ReferrersIndex::read(&ours), ReferrersIndex::read(&theirs)) {
            (Ok(ours), Ok(theirs)) => ours.lists_all(&theirs),
            _ => false,
        },
    )
}
