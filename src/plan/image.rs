//! The images a plan writes: one per target repository and digest, derived
//! in one place so the estimate, the progress total, the executor and
//! `verify` count the same things.

use std::collections::BTreeMap;

use super::PlanEntry;
use crate::digest::Digest;
use crate::keys::{ImageKey, RepositoryKey};
use crate::platform::Platform;

/// Where an image to write is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    /// Source registry name.
    pub registry: String,
    /// Source repository.
    pub repository: String,
    /// The source manifest's digest.
    pub digest: Digest,
    /// Platforms kept from an index (empty: the index verbatim).
    pub platforms: Vec<Platform>,
}

/// An image the plan writes, with the entries (tags) that point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageToWrite {
    /// Where it lands.
    pub key: ImageKey,
    /// Where it comes from (the first entry's source).
    pub source: ImageSource,
    /// Indexes of the plan entries writing a tag at it, in plan order.
    pub entries: Vec<usize>,
    /// Whether any of those entries carries the image's referrers.
    pub referrers: bool,
}

impl PlanEntry {
    /// The image this entry's tag points at once written.
    pub fn image_key(&self) -> ImageKey {
        ImageKey {
            registry: self.target.registry.clone(),
            repository: self.target.repository.clone(),
            digest: self.target_digest().clone(),
        }
    }

    /// The repository this entry writes into.
    pub fn repository_key(&self) -> RepositoryKey {
        RepositoryKey {
            registry: self.target.registry.clone(),
            repository: self.target.repository.clone(),
        }
    }
}

/// The images that the entries selected by `include` write, one per
/// [`ImageKey`], in key order. Only entries that change something count.
pub fn images_to_write(
    entries: &[PlanEntry],
    include: impl Fn(usize) -> bool,
) -> Vec<ImageToWrite> {
    images_of(entries, |i, entry| entry.changes() && include(i))
}

/// The images already in their targets that entries selected by
/// `unchanged` leave as they are, and whose referrers travel: a referrer
/// can reach the source after its image was promoted, and only the
/// registries' referrers listings, not the plan, show it. One per
/// [`ImageKey`], in key order.
pub fn images_kept(entries: &[PlanEntry], unchanged: impl Fn(usize) -> bool) -> Vec<ImageToWrite> {
    images_of(entries, |i, entry| {
        // A floating tag kept at a newer version points at that one.
        let kept_elsewhere = matches!(entry.action, super::Action::Unchanged { kept_at: Some(_) });
        entry.travel.referrers && !kept_elsewhere && unchanged(i)
    })
}

/// The images the entries selected by `include` point at, one per [`ImageKey`].
fn images_of(
    entries: &[PlanEntry],
    include: impl Fn(usize, &PlanEntry) -> bool,
) -> Vec<ImageToWrite> {
    let mut images: BTreeMap<ImageKey, ImageToWrite> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if !include(i, entry) {
            continue;
        }
        let image = images
            .entry(entry.image_key())
            .or_insert_with(|| ImageToWrite {
                key: entry.image_key(),
                source: ImageSource {
                    registry: entry.source.registry.clone(),
                    repository: entry.source.repository.clone(),
                    digest: entry.source.digest.clone(),
                    platforms: entry.travel.platforms.clone(),
                },
                entries: Vec::new(),
                referrers: false,
            });
        image.entries.push(i);
        image.referrers |= entry.travel.referrers;
    }
    images.into_values().collect()
}
