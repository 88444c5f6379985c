//! An image as a tree: its manifests, children first, and the blobs they
//! reference, each once. What apply copies, the plan estimates and verify checks.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::manifest::{Descriptor, FilterError, Manifest, ManifestError, filter_index};
use crate::platform::Platform;
use crate::registry::RegistryError;

/// Child manifests followed below an index.
pub const MAX_DEPTH: usize = 3;
/// Children of one index accepted.
const MAX_INDEX_CHILDREN: usize = 1024;

/// Reads a manifest by digest.
pub type Fetch<'a> = &'a dyn Fn(&str) -> Result<Manifest, RegistryError>;

/// Why an image's manifest tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A manifest could not be read from the store.
    #[error("{error}")]
    Read {
        /// The manifest asked for.
        digest: Digest,
        /// What the store said.
        error: Box<RegistryError>,
    },
    /// The `platforms` filter could not be applied to the root index.
    #[error("platforms: {0}")]
    Platforms(#[from] FilterError),
    /// The source tag moved between planning and copying.
    #[error("the source image changed since planning: expected {}, read {}", .expected.short(), .read.short())]
    SourceChanged {
        /// The digest the plan wants.
        expected: Digest,
        /// The digest read now.
        read: Digest,
    },
    /// A manifest of the tree is not a manifest hoist understands.
    #[error("{what}: {source}")]
    Manifest {
        /// `repository@digest`.
        what: String,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// The tree is malformed: too deep, too wide, or a child of the wrong size.
    #[error("{what}: {problem}")]
    Malformed {
        /// `repository@digest`.
        what: String,
        /// What is wrong.
        problem: String,
    },
}

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
    digest: &Digest,
    platforms: &[Platform],
    expected: &Digest,
) -> Result<Tree, TreeError> {
    let mut root = read(fetch, digest)?;
    if !platforms.is_empty() && root.is_index() {
        root = filter_index(&root, platforms)?;
    }
    if root.digest != *expected {
        return Err(TreeError::SourceChanged {
            expected: expected.clone(),
            read: root.digest,
        });
    }
    let mut tree = Tree {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    walk(fetch, repository, root, 0, &mut tree, &mut seen)?;
    Ok(tree)
}

/// One manifest by digest; a failure names the manifest.
fn read(fetch: Fetch<'_>, digest: &Digest) -> Result<Manifest, TreeError> {
    fetch(&digest.to_string()).map_err(|error| TreeError::Read {
        digest: digest.clone(),
        error: Box::new(error),
    })
}

fn walk(
    fetch: Fetch<'_>,
    repository: &str,
    manifest: Manifest,
    depth: usize,
    tree: &mut Tree,
    seen: &mut BTreeSet<Digest>,
) -> Result<(), TreeError> {
    let what = format!("{repository}@{}", manifest.digest);
    let view = match manifest.view() {
        Ok(view) => view,
        Err(source) => return Err(TreeError::Manifest { what, source }),
    };
    let malformed = |problem: String| TreeError::Malformed {
        what: what.clone(),
        problem,
    };
    if manifest.is_index() {
        if depth >= MAX_DEPTH {
            return Err(malformed(format!("indexes nested deeper than {MAX_DEPTH}")));
        }
        if view.manifests.len() > MAX_INDEX_CHILDREN {
            return Err(malformed(format!(
                "index has {} children (at most {MAX_INDEX_CHILDREN} accepted)",
                view.manifests.len()
            )));
        }
        for child in &view.manifests {
            if !seen.insert(child.digest.clone()) {
                continue;
            }
            let bytes = read(fetch, &child.digest)?;
            if bytes.bytes.len() as u64 != child.size {
                return Err(TreeError::Malformed {
                    what: format!("{repository}@{}", child.digest),
                    problem: format!(
                        "child manifest is {} bytes, the index says {}",
                        bytes.bytes.len(),
                        child.size
                    ),
                });
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
