//! Reads of whole images during discovery: a rule's platform filter
//! applied, and what an image to write references (for the estimate).

use std::collections::BTreeMap;

use super::inventory::{FilterKey, ImageContents};
use super::reads::{Handles, IndexToFilter, Listed, ReadFailure, handle, read_par};
use crate::digest::Digest;
use crate::manifest::FilterError;
use crate::registry::ReadOnly;
use crate::tree::{TreeError, read_tree};

/// Each image read and filtered to the platforms its key names: the new
/// index's digest (the image's own, for a single-platform image built for a
/// wanted platform), or why it cannot be promoted.
pub(super) fn filter_indexes(
    handles: &Handles,
    indexes: BTreeMap<FilterKey, IndexToFilter>,
) -> Listed<(FilterKey, IndexToFilter), Result<Digest, FilterError>> {
    read_par(
        indexes,
        |(
            FilterKey {
                registry, digest, ..
            },
            to_filter,
        )| {
            let store = handle(handles, registry)?;
            let filtered = crate::filter::filter_image(
                store,
                &to_filter.repository,
                digest,
                &to_filter.platforms,
            )
            .map_err(|source| ReadFailure::Index {
                registry: registry.clone(),
                repository: to_filter.repository.clone(),
                digest: digest.clone(),
                source: Box::new(source),
            })?;
            Ok(filtered)
        },
    )
}

/// Child manifests and blobs of image `digest` in `repository`, each once:
/// the tree apply copies (of an index filtered to `platforms`, only the
/// platforms it keeps), which is written at `written`.
pub fn image_contents(
    handle: &ReadOnly,
    repository: &str,
    digest: &Digest,
    platforms: &[crate::platform::Platform],
    written: &Digest,
) -> Result<ImageContents, TreeError> {
    let fetch = |d: &str| handle.manifest_get(repository, d);
    let tree = read_tree(&fetch, repository, digest, platforms, written)?;
    let mut manifests: Vec<Digest> = tree.manifests.iter().map(|m| m.digest.clone()).collect();
    // The root is the image itself, not a child.
    manifests.pop();
    manifests.sort();
    let mut blobs: Vec<(Digest, u64)> =
        tree.blobs.into_iter().map(|b| (b.digest, b.size)).collect();
    blobs.sort();
    Ok(ImageContents { manifests, blobs })
}
