//! An image as a tree: its manifests, children first, and the blobs they
//! reference, each once. What apply copies, the plan estimates and verify checks.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, filter_index};
use crate::plan::short_digest;

/// Child manifests followed below an index.
pub const MAX_DEPTH: usize = 3;
/// Children of one index accepted.
const MAX_INDEX_CHILDREN: usize = 1024;

/// Reads a manifest by digest.
pub type Fetch<'a> = &'a dyn Fn(&str) -> Result<Manifest, String>;

/// An image's manifests (children first, root last) and its blobs, each once.
pub struct Tree {
    /// Manifests, children before the indexes that list them.
    pub manifests: Vec<Manifest>,
    /// Blobs registries store (foreign layers left out).
    pub blobs: Vec<Descriptor>,
}

/// Whether a registry stores the blob: non-distributable (foreign) layers
/// live at their URLs instead.
pub fn is_stored(blob: &Descriptor) -> bool {
    blob.urls.is_empty() || !blob.media_type.contains("foreign")
}

/// Reads an image's manifests through `fetch` (a GET by digest in
/// `repository`), children first, filtering
/// the root index to `platforms`; the root must come out as `expected`.
pub fn read_tree(
    fetch: Fetch<'_>,
    repository: &str,
    digest: &str,
    platforms: &[String],
    expected: &str,
) -> Result<Tree, String> {
    let mut root = fetch(digest)?;
    if !platforms.is_empty() && root.is_index() {
        root = filter_index(&root, platforms).map_err(|e| format!("platforms: {e}"))?;
    }
    if root.digest.to_string() != expected {
        return Err(format!(
            "the source image changed since planning: expected {}, read {}",
            short_digest(expected),
            short_digest(&root.digest.to_string())
        ));
    }
    let mut tree = Tree {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    walk(fetch, repository, root, 0, &mut tree, &mut seen)?;
    Ok(tree)
}

fn walk(
    fetch: Fetch<'_>,
    repository: &str,
    manifest: Manifest,
    depth: usize,
    tree: &mut Tree,
    seen: &mut BTreeSet<Digest>,
) -> Result<(), String> {
    let what = format!("{repository}@{}", manifest.digest);
    let view = manifest.view().map_err(|e| format!("{what}: {e}"))?;
    if manifest.is_index() {
        if depth >= MAX_DEPTH {
            return Err(format!("{what}: indexes nested deeper than {MAX_DEPTH}"));
        }
        if view.manifests.len() > MAX_INDEX_CHILDREN {
            return Err(format!(
                "{what}: index has {} children (at most {MAX_INDEX_CHILDREN} accepted)",
                view.manifests.len()
            ));
        }
        for child in &view.manifests {
            if !seen.insert(child.digest.clone()) {
                continue;
            }
            let bytes = fetch(&child.digest.to_string())?;
            if bytes.bytes.len() as u64 != child.size {
                return Err(format!(
                    "{repository}@{}: child manifest is {} bytes, the index says {}",
                    child.digest,
                    bytes.bytes.len(),
                    child.size
                ));
            }
            walk(fetch, repository, bytes, depth + 1, tree, seen)?;
        }
    }
    for blob in view.blobs {
        if is_stored(&blob) && seen.insert(blob.digest.clone()) {
            tree.blobs.push(blob);
        }
    }
    tree.manifests.push(manifest);
    Ok(())
}
